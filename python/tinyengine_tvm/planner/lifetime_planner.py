"""Lifetime-based static arena planner.

Every activation that is neither a model input nor a model output gets an
offset in a single arena.  Two buffers may share bytes only when their
lifetimes (first write to last read, in step order) are disjoint.  Buffers are
placed largest first at the lowest offset that does not collide with an
already placed, simultaneously live buffer (greedy best-fit by offset).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

from ..kernel_graph import KernelGraph

ALIGNMENT = 16


@dataclasses.dataclass
class BufferPlacement:
    """One arena buffer: the root tensor it holds, its bytes, lifetime and offset."""

    tensor: int
    size: int
    first: int  # index of the step that writes it
    last: int  # index of the last step that reads it
    offset: int = -1


@dataclasses.dataclass
class ArenaPlan:
    """Where every arena-resident tensor lives; ``io`` maps a root tensor to
    ("input", i) or ("output", j) when the caller's buffer holds it."""

    buffers: Dict[int, BufferPlacement]
    io: Dict[int, Tuple[str, int]]
    arena_bytes: int
    copies: List[Tuple[int, int]]  # (source root, output index) needing memcpy

    def live_bytes_timeline(self, num_steps: int) -> List[int]:
        """Arena bytes live during each step."""
        out = []
        for s in range(num_steps):
            out.append(sum(b.size for b in self.buffers.values() if b.first <= s <= b.last))
        return out


def _align(n: int) -> int:
    return (n + ALIGNMENT - 1) // ALIGNMENT * ALIGNMENT


def plan_arena(graph: KernelGraph) -> ArenaPlan:
    """Assign caller-owned I/O buffers and arena offsets for a KernelGraph."""
    io: Dict[int, Tuple[str, int]] = {}
    for i, t in enumerate(graph.inputs):
        io[graph.root(t)] = ("input", i)
    copies: List[Tuple[int, int]] = []
    for j, t in enumerate(graph.outputs):
        root = graph.root(t)
        if root in io:
            # An output that is (a view of) an input or of another output.
            copies.append((root, j))
        else:
            io[root] = ("output", j)

    first: Dict[int, int] = {}
    last: Dict[int, int] = {}
    for s, step in enumerate(graph.steps):
        root = graph.root(step.output)
        first.setdefault(root, s)
        last[root] = max(last.get(root, s), s)
        for i in step.inputs:
            if graph.tensors[i].kind == "constant":
                continue
            r = graph.root(i)
            last[r] = max(last.get(r, s), s)
    buffers = {
        r: BufferPlacement(r, graph.tensors[r].nbytes, first[r], last[r])
        for r in first
        if r not in io
    }
    for r, _ in copies:
        if r in buffers:
            buffers[r].last = len(graph.steps)  # read by the final copies

    placed: List[BufferPlacement] = []
    for buf in sorted(buffers.values(), key=lambda b: (-b.size, b.first, b.tensor)):
        conflicts = sorted(
            (p for p in placed if not (p.last < buf.first or buf.last < p.first)),
            key=lambda p: p.offset,
        )
        offset = 0
        for p in conflicts:
            if offset + buf.size <= p.offset:
                break
            offset = max(offset, _align(p.offset + p.size))
        buf.offset = offset
        placed.append(buf)
    arena = max((_align(b.offset + b.size) for b in placed), default=0)
    return ArenaPlan(buffers, io, arena, copies)
