"""The memory cost model: which buffers are alive while a step runs, and their bytes.

The arena planner (which packs the buffers) and MemoryAwareSchedule (which
orders the steps) both read it, so the schedule minimises exactly the live set
the planner then has to place.

A buffer is a root tensor (views and in-place outputs share their root's
memory) or one step's kernel scratch (``tinyengine_tvm.kernels.scratch_bytes``).
A root is alive from the step that first writes it (a model input: from before
the run) to the last step that reads or writes it (a model output: until after
the run); scratch only during its step; a step's persistent state (SVDF's
history) during the whole run and between runs.  Sizes count aligned to
ALIGNMENT, as the planner places them.
"""
from __future__ import annotations

from typing import Callable, Dict, Hashable, List, Optional, Sequence, Tuple, Union

from ..kernel_graph import KernelGraph
from ..kernels import steps_scratch, steps_state

ALIGNMENT = 16

Scratch = Union[Sequence[int], Callable[[int], int], None]


def align(n: int) -> int:
    """Round ``n`` up to the arena alignment."""
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def kernel_scratch(graph: KernelGraph) -> List[int]:
    """Scratch bytes of every step, from the kernel table."""
    return steps_scratch(graph.steps)


class CostModel:
    """Live bytes of a graph's buffers under any step order that respects its dependences.

    ``scratch``: bytes per step, as a sequence or ``scratch(step)``; None takes
    the kernel table's.  ``count_inputs=False`` counts the model inputs as held
    outside the arena (0 bytes).
    """

    def __init__(self, graph: KernelGraph, scratch: Scratch = None, count_inputs: bool = True):
        self.n = len(graph.steps)
        if scratch is None:
            scratch = kernel_scratch(graph)
        self.scratch: List[int] = [int(scratch(s) if callable(scratch) else scratch[s]) for s in range(self.n)]
        self.state: List[int] = steps_state(graph.steps)
        self._state_total = sum(align(b) for b in self.state if b)
        # A variable's value is there before the run and, like the value assigned
        # to it, is kept to its end (then copied into the variable).
        values = {graph.root(v) for _, v, _ in graph.variables if v is not None}
        self.inputs = {graph.root(t) for t in graph.inputs} | values
        self.outputs = {graph.root(t) for t in graph.outputs} | {graph.root(t) for t in graph.persistent}
        self.size: Dict[int, int] = {r: graph.tensors[r].nbytes for r in self.inputs}
        self.producer: Dict[int, int] = {}  # root -> first step writing it
        self.users: Dict[int, int] = {}  # root -> bitmask of the steps reading or writing it
        self.writes: List[int] = []  # step -> root it writes
        for s, step in enumerate(graph.steps):
            for i in step.inputs:
                if graph.tensors[i].kind != "constant":
                    r = graph.root(i)
                    self.users[r] = self.users.get(r, 0) | (1 << s)
            r = graph.root(step.output)
            self.writes.append(r)
            self.producer.setdefault(r, s)
            self.users[r] = self.users.get(r, 0) | (1 << s)
            self.size[r] = graph.tensors[r].nbytes
        if not count_inputs:  # inputs held outside the arena (e.g. a camera frame buffer)
            for r in self.inputs - values:
                self.size[r] = 0
        # (aligned size, produced-by bitmask or 0 for an input, users, is output) per root.
        self._roots = [(align(self.size[r]), 0 if r in self.inputs else 1 << self.producer[r],
                        self.users.get(r, 0), r in self.outputs) for r in self.size]

    def lifetimes(self) -> Dict[Hashable, Tuple[int, int, int]]:
        """(bytes, first step, last step) of every buffer in program order; -1 is
        before the run and ``n`` after it.  Keys: root tensor, ("scratch", step)
        or ("state", step)."""
        out: Dict[Hashable, Tuple[int, int, int]] = {}
        for r, size in self.size.items():
            first = -1 if r in self.inputs else self.producer[r]
            users = self.users.get(r, 0)
            last = self.n if r in self.outputs else max(first, users.bit_length() - 1)
            out[r] = (size, first, last)
        for s, size in enumerate(self.scratch):
            if size > 0:
                out[("scratch", s)] = (size, s, s)
        for s, size in enumerate(self.state):
            if size > 0:
                out[("state", s)] = (size, -1, self.n)
        return out

    def step_bytes(self, done: int, t: int) -> int:
        """Bytes alive while step ``t`` runs after the steps in the bitmask ``done``:
        its scratch, and every buffer already produced that ``t`` or a later
        step still uses, or that the caller reads."""
        total = (align(self.scratch[t]) if self.scratch[t] else 0) + self._state_total
        after = done | (1 << t)
        for size, produced_by, users, is_output in self._roots:
            if produced_by and not after & produced_by:
                continue
            if is_output or users & ~after or (users >> t) & 1:
                total += size
        return total

    def peak(self, order: Optional[Sequence[int]] = None) -> int:
        """Largest :meth:`step_bytes` over the steps of ``order`` (default: program order)."""
        done, peak = 0, 0
        for t in (range(self.n) if order is None else order):
            peak = max(peak, self.step_bytes(done, t))
            done |= 1 << t
        return peak
