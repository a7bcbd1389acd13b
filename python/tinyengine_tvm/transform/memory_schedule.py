"""MemoryAwareSchedule: order the operators of a branching graph to lower peak memory.

The memory needed while a step runs is the sum of the buffers alive then:
every tensor already produced that a later step (or the caller) still reads,
plus the step's output and scratch.  Branches (residual ADD, concatenation,
several outputs) let the order change that sum.

The search is a dynamic program over "done" sets (downsets of the graph):
the best peak to reach a set is the min over its last step of
max(peak before, memory during that step).  Layers are explored by size; while
no layer exceeds ``max_states`` the result is the exact optimum, otherwise the
layer is cut to its best states (a beam search) and the result is reported as
heuristic.  Either way the chosen order's peak is never worse than the
original order's, which is kept when it is as good.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Set, Tuple

import tvm
from tvm import relax

from ..kernel_graph import KernelGraph
from ..planner.lifetime_planner import align
from .kernel_call import parse_kernel_call
from .relax_utils import bindings, rebuild_main


@dataclasses.dataclass
class ScheduleResult:
    """Outcome of the search: the order, its peak, the original peak, exactness."""

    order: List[int]
    peak: int
    original_peak: int
    exact: bool
    states: int


class _Problem:
    """The graph reduced to what the schedule changes: who writes/reads which root."""

    def __init__(self, graph: KernelGraph, scratch: Sequence[int]):
        self.n = len(graph.steps)
        self.size: Dict[int, int] = {}
        self.writes: List[int] = []
        self.reads: List[Set[int]] = []
        self.scratch = list(scratch)
        producer: Dict[int, int] = {}
        for s, step in enumerate(graph.steps):
            r = graph.root(step.output)
            self.writes.append(r)
            producer.setdefault(r, s)
            self.size[r] = align(graph.tensors[r].nbytes)
            self.reads.append({graph.root(i) for i in step.inputs if graph.tensors[i].kind != "constant"})
        self.inputs = {graph.root(t) for t in graph.inputs}
        for r in self.inputs:
            self.size[r] = align(graph.tensors[r].nbytes)
        self.outputs = {graph.root(t) for t in graph.outputs}
        self.readers: Dict[int, Set[int]] = {}
        for s, rs in enumerate(self.reads):
            for r in rs:
                self.readers.setdefault(r, set()).add(s)
        # Step t depends on the steps producing the tensors it reads (through
        # views).  In-place steps only overwrite inputs nobody else reads, so
        # no write-after-read ordering is needed.
        out_step = {step.output: s for s, step in enumerate(graph.steps)}

        def producing_step(i: int) -> Optional[int]:
            while i not in out_step and graph.tensors[i].view_of is not None:
                i = graph.tensors[i].view_of
            return out_step.get(i)

        # A patched stage (te_buffer ... last te_paste) keeps its order: its
        # patches are independent chains whose interleavings would only blow
        # up the search, and running them one after another is what keeps
        # one patch alive at a time.
        pinned = [s for s, step in enumerate(graph.steps) if step.kernel in ("te_buffer", "te_paste_s8")]
        serial = range(pinned[0] + 1, pinned[-1] + 1) if pinned else range(0)
        self.deps: List[int] = []
        for s, step in enumerate(graph.steps):
            mask = 0
            for i in step.inputs:
                p = producing_step(i) if graph.tensors[i].kind != "constant" else None
                if p is not None:
                    mask |= 1 << p
            if s in serial:
                mask |= 1 << (s - 1)
            self.deps.append(mask)
        self.producer = producer

    def memory(self, done: int, t: int) -> int:
        """Bytes alive while step t runs after the steps in ``done``."""
        total = self.scratch[t]
        after = done | (1 << t)
        for r, size in self.size.items():
            produced = r in self.inputs or (self.producer.get(r) is not None and (after >> self.producer[r]) & 1)
            if not produced:
                continue
            pending = any(not (after >> q) & 1 for q in self.readers.get(r, ())) or t in self.readers.get(r, ())
            if pending or r in self.outputs or self.writes[t] == r:
                total += size
        return total

    def peak_of(self, order: Sequence[int]) -> int:
        """Peak of a given order."""
        done, peak = 0, 0
        for t in order:
            peak = max(peak, self.memory(done, t))
            done |= 1 << t
        return peak


def search_schedule(graph: KernelGraph, scratch: Sequence[int], max_states: int = 20000) -> ScheduleResult:
    """Find a step order minimizing the peak of live bytes (see module docstring)."""
    prob = _Problem(graph, scratch)
    original = list(range(prob.n))
    original_peak = prob.peak_of(original)
    layer: Dict[int, Tuple[int, Optional[int], int]] = {0: (0, None, -1)}  # done -> (peak, prev done, step)
    history: List[Dict[int, Tuple[int, Optional[int], int]]] = [layer]
    exact, states = True, 1
    for _ in range(prob.n):
        nxt: Dict[int, Tuple[int, Optional[int], int]] = {}
        for done, (peak, _, _) in layer.items():
            for t in range(prob.n):
                if (done >> t) & 1 or (prob.deps[t] & done) != prob.deps[t]:
                    continue
                cand = max(peak, prob.memory(done, t))
                key = done | (1 << t)
                if key not in nxt or cand < nxt[key][0]:
                    nxt[key] = (cand, done, t)
        if len(nxt) > max_states:
            exact = False
            nxt = dict(sorted(nxt.items(), key=lambda kv: (kv[1][0], kv[0]))[:max_states])
        states += len(nxt)
        layer = nxt
        history.append(layer)
    full = (1 << prob.n) - 1
    if prob.n == 0 or full not in layer:
        return ScheduleResult(original, original_peak, original_peak, exact, states)
    order: List[int] = []
    key = full
    for depth in range(prob.n, 0, -1):
        _, prev, t = history[depth][key]
        order.append(t)
        key = prev
    order.reverse()
    peak = prob.peak_of(order)
    if peak >= original_peak:
        order, peak = original, original_peak
    return ScheduleResult(order, peak, original_peak, exact, states)


@tvm.transform.module_pass(opt_level=0, name="MemoryAwareSchedule")
class MemoryAwareSchedule:
    """Reorder the kernel calls of ``main`` to minimize peak live memory.

    ``scratch`` maps a kernel call to its scratch bytes (defaults to the kernel
    table's).  The last result is kept in ``self.result`` for reports.
    """

    def __init__(self, max_states: int = 20000):
        self.max_states = max_states
        self.result: Optional[ScheduleResult] = None
        self.report: dict = {}

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from ..codegen.kernel_specs import KERNELS

        func = mod["main"]
        graph = KernelGraph.from_relax(func)
        scratch = [KERNELS[s.kernel].scratch(s.attrs) for s in graph.steps]
        self.result = search_schedule(graph, scratch, self.max_states)
        r = self.result
        self.report = {"peak_bytes": r.peak, "original_peak_bytes": r.original_peak, "exact": r.exact,
                       "states": r.states, "reordered": r.order != list(range(len(r.order)))}
        if self.result.order == list(range(len(graph.steps))):
            return mod
        all_bindings = bindings(func)
        step_bindings = [b for b in all_bindings if parse_kernel_call(b.value) is not None]
        defs = {b.var: b for b in all_bindings}
        emitted: Set[relax.Var] = set()
        order: List[relax.Binding] = []

        def emit(b: relax.Binding) -> None:
            if b.var in emitted:
                return
            for v in relax.analysis.free_vars(b.value):
                if v in defs:
                    emit(defs[v])
            emitted.add(b.var)
            order.append(b)

        for s in self.result.order:
            emit(step_bindings[s])
        for b in all_bindings:
            emit(b)
        return tvm.IRModule({"main": rebuild_main(func, lambda var, value: value, order)})
