"""MemoryAwareSchedule: order the operators of a branching graph to lower peak memory.

The memory needed while a step runs is the planner's live set
(``planner.cost_model``, shared with the arena planner): every tensor already
produced that a later step (or the caller) still reads, plus the step's output
and scratch.  Branches (residual ADD, concatenation, several outputs) let the
order change that sum.

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
from typing import Any, Dict, List, Optional, Sequence, Set, Tuple

import tvm
from tvm import relax

from ..kernel_graph import KernelGraph
from ..planner.cost_model import CostModel
from .kernel_call import parse_kernel_call
from .relax_utils import bindings, rebuild_function, rewrite_lowered


@dataclasses.dataclass
class ScheduleResult:
    """Outcome of the search: the order, its peak, the original peak, exactness."""

    order: List[int]
    peak: int
    original_peak: int
    exact: bool
    states: int


def _dependences(graph: KernelGraph) -> List[int]:
    """Per step, the bitmask of the steps that must run before it."""
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
    deps: List[int] = []
    for s, step in enumerate(graph.steps):
        mask = 0
        for i in step.inputs:
            p = producing_step(i) if graph.tensors[i].kind != "constant" else None
            if p is not None:
                mask |= 1 << p
        if s in serial:
            mask |= 1 << (s - 1)
        deps.append(mask)
    return deps


def search_schedule(graph: KernelGraph, scratch: Optional[Sequence[int]] = None,
                    max_states: int = 20000) -> ScheduleResult:
    """Find a step order minimizing the peak of live bytes (see module docstring);
    ``scratch`` per step defaults to the kernel table's."""
    prob = CostModel(graph, scratch)
    deps = _dependences(graph)
    original = list(range(prob.n))
    original_peak = prob.peak(original)
    layer: Dict[int, Tuple[int, Optional[int], int]] = {0: (0, None, -1)}  # done -> (peak, prev done, step)
    history: List[Dict[int, Tuple[int, Optional[int], int]]] = [layer]
    exact, states = True, 1
    for _ in range(prob.n):
        nxt: Dict[int, Tuple[int, Optional[int], int]] = {}
        for done, (peak, _, _) in layer.items():
            for t in range(prob.n):
                if (done >> t) & 1 or (deps[t] & done) != deps[t]:
                    continue
                cand = max(peak, prob.step_bytes(done, t))
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
    peak = prob.peak(order)
    if peak >= original_peak:
        order, peak = original, original_peak
    return ScheduleResult(order, peak, original_peak, exact, states)


def schedule_function(func: relax.Function, max_states: int = 20000) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with its kernel calls in the order of least peak, and the report."""
    graph = KernelGraph.from_relax(func)
    r = search_schedule(graph, None, max_states)
    report = {"peak_bytes": r.peak, "original_peak_bytes": r.original_peak, "exact": r.exact,
              "states": r.states, "reordered": r.order != list(range(len(r.order)))}
    if not report["reordered"]:
        return func, report
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

    for s in r.order:
        emit(step_bindings[s])
    for b in all_bindings:
        emit(b)
    return rebuild_function(func, lambda var, value: value, order), report


@tvm.transform.module_pass(opt_level=0, name="MemoryAwareSchedule")
class MemoryAwareSchedule:
    """Reorder the kernel calls of every lowered function to minimize peak live memory.

    Report: ``peak_bytes``, ``original_peak_bytes``, ``exact``, ``states``,
    ``reordered``.  Option ``max_states`` (``tinyengine.MemoryAwareSchedule.max_states``,
    default 20000): the widest DP layer kept exact.  A constructor argument
    overrides the PassContext.
    """

    def __init__(self, max_states: Optional[int] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("MemoryAwareSchedule", {"max_states": max_states})

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("MemoryAwareSchedule", ctx, self.overrides)
        return rewrite_lowered(mod, "MemoryAwareSchedule", lambda f: schedule_function(f, opts["max_states"]))
