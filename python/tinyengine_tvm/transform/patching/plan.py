"""A stage cut into a grid: its windows, extra MACs, halo cache bytes and an arena estimate."""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ...kernel_graph import KernelGraph, Step
from ...kernels import macs as kernel_macs
from ...planner.cost_model import align
from .geometry import Window, grid
from .stages import Stage, stage_windows


def per_pixel_macs(step: Step, shape: Sequence[int]) -> float:
    """MACs per output pixel of a step whose output has ``shape``."""
    return kernel_macs(step.kernel, step.attrs) / (shape[1] * shape[2])


@dataclasses.dataclass
class PatchPlan:
    """The windows of one patched stage: per patch, the window of every tensor it
    needs (``need``) and the part of it the patch computes (``computed``: with the
    halo cache, the columns the patch to its left already computed are taken from
    the cache instead)."""

    patches: List[Window]
    need: List[Dict[int, Window]]
    computed: List[Dict[int, Window]]
    nw: int
    cache: bool

    def left(self, p: int) -> Optional[int]:
        """The patch computed just before ``p`` in the same row (whose halo ``p`` reuses)."""
        return p - 1 if self.cache and p % self.nw else None

    def right(self, p: int) -> Optional[int]:
        """The patch computed just after ``p`` in the same row."""
        return p + 1 if self.cache and (p + 1) % self.nw and p + 1 < len(self.patches) else None


def patch_plan(graph: KernelGraph, stage: Stage, nh: int, nw: int, cache: bool = False) -> PatchPlan:
    """Windows of ``stage`` cut into an nh x nw grid, with or without the halo cache."""
    _, H, W, _ = graph.tensors[stage.output].shape
    patches = grid(H, W, nh, nw)
    need = [stage_windows(graph, stage, p) for p in patches]
    computed = []
    for p in range(len(patches)):
        left = p - 1 if cache and p % nw else None
        cw = {}
        for t, w in need[p].items():
            if left is not None and t in need[left]:
                # Rows of one patch row agree, so the left patch's columns are reusable.
                w = Window(w.y0, w.y1, max(w.x0, need[left][t].x1), w.x1)
            cw[t] = w
        computed.append(cw)
    return PatchPlan(patches, need, computed, nw, cache)


def stage_extra_macs(graph: KernelGraph, stage: Stage, plan: PatchPlan) -> int:
    """MACs the patched stage computes beyond the unpatched one (halo recomputation)."""
    extra = 0.0
    for cw in plan.computed:
        for s in stage.steps:
            step = graph.steps[s]
            w = cw.get(step.output)
            if w is not None and w.w > 0:
                extra += per_pixel_macs(step, graph.tensors[step.output].shape) * w.h * w.w
    return int(round(extra - sum(kernel_macs(graph.steps[s].kernel, graph.steps[s].attrs) for s in stage.steps)))


def cache_bytes(graph: KernelGraph, stage: Stage, plan: PatchPlan) -> int:
    """Most bytes the halo cache holds at once (the columns kept for the next patch)."""
    most = 0
    for p in range(len(plan.patches)):
        right = plan.right(p)
        if right is None:
            continue
        kept = 0
        for t, w in plan.need[p].items():
            if t in plan.need[right] and t not in stage.sources and t != stage.output:
                cols = w.x1 - plan.need[right][t].x0
                if cols > 0:
                    kept += align(cols * w.h * graph.tensors[t].shape[3])
        most = max(most, kept)
    return most


def estimate_arena(graph: KernelGraph, plan, stage: Stage, nh: int, nw: int) -> Tuple[int, int]:
    """A cheap estimate of the arena with ``stage`` patched, and of its part inside
    the stage: outside, the unpatched plan's live bytes; inside, what stays live
    across the stage (sources, skip connections, the full stage output) plus the
    largest patch's windows of one step."""
    internal = {graph.steps[s].output for s in stage.steps} - {stage.output}
    outside = max([plan.live_bytes(s) for s in range(len(graph.steps)) if s not in stage.steps] + [0])
    keys_in = set()
    for s in stage.steps:
        keys_in.update(k for k in plan.live_buffers(s) if k not in internal and not isinstance(k, tuple))
    across = sum(align(plan.buffers[k].size) if k in plan.buffers else align(graph.tensors[k].nbytes)
                 for k in keys_in | {stage.output})
    _, H, W, _ = graph.tensors[stage.output].shape
    biggest = max(grid(H, W, nh, nw), key=lambda p: (p.h * p.w, -p.y0, -p.x0))
    need = stage_windows(graph, stage, biggest)
    patch_peak = 0
    for s in stage.steps:
        step = graph.steps[s]
        t = graph.tensors[step.output]
        ow = need.get(step.output)
        live = ow.h * ow.w * t.shape[3] if ow is not None else 0
        for i in step.inputs:
            ti = graph.tensors[i]
            if ti.kind != "constant" and i in need:
                live += need[i].h * need[i].w * ti.shape[3] * np.dtype(ti.dtype).itemsize
        patch_peak = max(patch_peak, live)
    return max(outside, across + patch_peak), across + patch_peak
