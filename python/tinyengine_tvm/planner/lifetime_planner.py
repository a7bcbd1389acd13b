"""Static arena planning from buffer lifetimes.

Every buffer the generated code touches lives in one arena: model inputs
(written by the caller before the run), intermediate activations, outputs
(read by the caller after it) and per-step kernel scratch.  Two buffers may
share bytes only when their lifetimes (inclusive step ranges) are disjoint.

The live-set peak (the largest sum of sizes of buffers alive at one step) is a
lower bound for any placement.  The planner tries several placement orders
with a best-fit-by-offset rule and keeps the smallest arena; the result says
how far it is from the live-set peak.  Lifetimes and live bytes come from
the shared cost model (``cost_model``), the one MemoryAwareSchedule orders by.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, Hashable, List, Optional, Sequence

from ..kernel_graph import KernelGraph
from .cost_model import ALIGNMENT, CostModel, Scratch, align  # noqa: F401 - ALIGNMENT re-exported


@dataclasses.dataclass
class BufferPlacement:
    """One arena buffer.  ``key`` is a root tensor index, ("scratch", step) or ("state", step)."""

    key: Hashable
    size: int
    first: int  # first step during which it is live (-1: before the run)
    last: int  # last step during which it is live (num_steps: after the run)
    offset: int = -1

    def overlaps(self, other: "BufferPlacement") -> bool:
        """Whether the two lifetimes share a step."""
        return not (self.last < other.first or other.last < self.first)


@dataclasses.dataclass
class ArenaPlan:
    """Offsets of every buffer, the arena size and the live-set figures."""

    buffers: Dict[Hashable, BufferPlacement]
    arena_bytes: int
    num_steps: int
    strategy: str = ""
    _live: Optional[List[int]] = dataclasses.field(default=None, repr=False, compare=False)

    def live_bytes(self, step: int) -> int:
        """Bytes of the buffers alive during ``step`` (aligned sizes)."""
        if self._live is None:
            # Once per plan: the searches ask for every step many times.
            delta = [0] * (self.num_steps + 3)
            for b in self.buffers.values():
                delta[b.first + 1] += align(b.size)
                delta[b.last + 2] -= align(b.size)
            self._live, total = [], 0
            for d in delta[:-1]:
                total += d
                self._live.append(total)
        return self._live[step + 1] if -1 <= step <= self.num_steps else 0

    def live_before(self, step: int) -> int:
        """Bytes alive just before ``step`` starts (produced earlier, read at or after it)."""
        return sum(align(b.size) for b in self.buffers.values() if b.first < step <= b.last)

    def live_after(self, step: int) -> int:
        """Bytes alive just after ``step`` ends (produced by then, read later or by the caller)."""
        return sum(align(b.size) for b in self.buffers.values() if b.first <= step < b.last)

    def live_buffers(self, step: int) -> List[Hashable]:
        """Keys of the buffers alive during ``step``."""
        return [k for k, b in self.buffers.items() if b.first <= step <= b.last]

    @property
    def live_peak(self) -> int:
        """The live-set peak with aligned sizes: what an arena of aligned buffers
        cannot go below, up to the last buffer's alignment padding."""
        return max((self.live_bytes(s) for s in range(-1, self.num_steps + 1)), default=0)

    @property
    def scratch_bytes(self) -> int:
        """Largest scratch buffer of any step."""
        return max((b.size for k, b in self.buffers.items() if isinstance(k, tuple) and k[0] == "scratch"),
                   default=0)

    @property
    def state_bytes(self) -> int:
        """Bytes of the steps' persistent state (kept between invocations)."""
        return sum(b.size for k, b in self.buffers.items() if isinstance(k, tuple) and k[0] == "state")

    def offset_of(self, key: Hashable) -> int:
        """Arena offset of a root tensor or scratch buffer."""
        return self.buffers[key].offset


def collect_buffers(graph: KernelGraph, scratch: Scratch, count_inputs: bool = True) -> Dict[Hashable, BufferPlacement]:
    """Lifetimes of the arena buffers of a graph (see ``cost_model``); ``scratch``
    gives each step's scratch bytes (sequence or callable)."""
    return {k: BufferPlacement(k, size, first, last)
            for k, (size, first, last) in CostModel(graph, scratch, count_inputs).lifetimes().items()}


def _place(order: Sequence[BufferPlacement]) -> int:
    """Best-fit by offset in the given order; returns the arena size."""
    placed: List[BufferPlacement] = []
    for buf in order:
        first, last = buf.first, buf.last  # inlined overlaps(): the planner's hot loop
        conflicts = sorted((p for p in placed if not (p.last < first or last < p.first)), key=lambda p: p.offset)
        best: Optional[int] = None
        best_gap = None
        cursor = 0
        # Candidate gaps between conflicting buffers; pick the tightest that fits.
        for p in conflicts + [None]:
            end = p.offset if p is not None else None
            if end is None or end - cursor >= buf.size:
                gap = (end - cursor) if end is not None else float("inf")
                if best is None or gap < best_gap:
                    best, best_gap = cursor, gap
                if end is None:
                    break
            if p is not None:
                cursor = max(cursor, align(p.offset + p.size))
        buf.offset = best
        placed.append(buf)
    # Offsets are aligned; the arena ends where the last byte does.
    return max((b.offset + b.size for b in placed), default=0)


_ORDERS = {
    "size": lambda b: (-b.size, b.first, str(b.key)),
    "size*lifetime": lambda b: (-b.size * (b.last - b.first + 1), -b.size, str(b.key)),
    "first-use": lambda b: (b.first, -b.size, str(b.key)),
    "lifetime": lambda b: (-(b.last - b.first), -b.size, str(b.key)),
}


def plan_arena(graph: KernelGraph, scratch: Scratch = None, count_inputs: bool = True) -> ArenaPlan:
    """Place every buffer of ``graph`` in one arena, trying several orders.

    ``scratch``: bytes per step (sequence or callable); None means no scratch
    (``cost_model.kernel_scratch(graph)`` gives the kernels'); ``count_inputs=False``
    plans as if the model inputs were held outside the arena.
    """
    template = collect_buffers(graph, scratch if scratch is not None else (lambda s: 0), count_inputs)
    best: Optional[ArenaPlan] = None
    for name, key in _ORDERS.items():
        bufs = {k: dataclasses.replace(b) for k, b in template.items()}
        size = _place(sorted(bufs.values(), key=key))
        if best is None or size < best.arena_bytes:
            best = ArenaPlan(bufs, size, len(graph.steps), strategy=name)
        if best.arena_bytes == best.live_peak:
            break
    return best
