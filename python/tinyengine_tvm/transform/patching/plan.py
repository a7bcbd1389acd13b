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


#: Halo cache forms: recompute every overlap ("off"); reuse the columns the patch
#: to the left computed ("columns"); reuse those and the rows the patch above
#: computed ("full", StreamNet-style: nothing is computed twice).
CACHE_FORMS = ("off", "columns", "full")


@dataclasses.dataclass
class PatchPlan:
    """The windows of one patched stage: per patch, the window of every tensor it
    needs (``need``) and the part of it the patch computes (``computed``; the
    rest comes from the halo cache: the columns the patch to its left computed,
    and with the "full" cache the rows the patch above computed).  Patches run
    row-major; ``computed`` windows may be empty (all from the cache)."""

    patches: List[Window]
    need: List[Dict[int, Window]]
    computed: List[Dict[int, Window]]
    nw: int
    cache: str

    def left(self, p: int) -> Optional[int]:
        """The patch computed just before ``p`` in the same row (whose halo columns ``p`` reuses)."""
        return p - 1 if self.cache != "off" and p % self.nw else None

    def right(self, p: int) -> Optional[int]:
        """The patch computed just after ``p`` in the same row."""
        return p + 1 if self.cache != "off" and (p + 1) % self.nw and p + 1 < len(self.patches) else None

    def above(self, p: int) -> Optional[int]:
        """The patch of the row above ``p`` in its column (whose halo rows ``p`` reuses)."""
        return p - self.nw if self.cache == "full" and p >= self.nw else None

    def below(self, p: int) -> Optional[int]:
        """The patch of the row below ``p`` in its column."""
        return p + self.nw if self.cache == "full" and p + self.nw < len(self.patches) else None


def patch_plan(graph: KernelGraph, stage: Stage, nh: int, nw: int, cache: str = "off",
               like: Optional[PatchPlan] = None) -> PatchPlan:
    """Windows of ``stage`` cut into an nh x nw grid, with halo cache form ``cache``
    (CACHE_FORMS); ``like``: a plan of the same grid in another form, whose windows are reused."""
    if cache not in CACHE_FORMS:
        raise ValueError(f"halo cache form {cache!r} is not one of {CACHE_FORMS}")
    if like is not None:
        patches, need = like.patches, like.need
    else:
        _, H, W, _ = graph.tensors[stage.output].shape
        patches = grid(H, W, nh, nw)
        need = [stage_windows(graph, stage, p) for p in patches]
    pp = PatchPlan(patches, need, [], nw, cache)
    for p in range(len(patches)):
        left, above = pp.left(p), pp.above(p)
        cw = {}
        for t, w in need[p].items():
            # Windows are separable, so the patches of one grid row need the same
            # rows of t and those of one grid column the same columns: the left
            # patch's columns and the upper patch's rows are reusable as they are.
            y0, x0 = w.y0, w.x0
            if above is not None and t in need[above]:
                y0 = max(y0, need[above][t].y1)
            if left is not None and t in need[left]:
                x0 = max(x0, need[left][t].x1)
            cw[t] = Window(y0, w.y1, x0, w.x1)
        pp.computed.append(cw)
    return pp


def stage_extra_macs(graph: KernelGraph, stage: Stage, plan: PatchPlan) -> int:
    """MACs the patched stage computes beyond the unpatched one (halo recomputation)."""
    extra = 0.0
    for cw in plan.computed:
        for s in stage.steps:
            step = graph.steps[s]
            w = cw.get(step.output)
            if w is not None and w.w > 0 and w.h > 0:
                extra += per_pixel_macs(step, graph.tensors[step.output].shape) * w.h * w.w
    return int(round(extra - sum(kernel_macs(graph.steps[s].kernel, graph.steps[s].attrs) for s in stage.steps)))


def kept_windows(stage: Stage, plan: PatchPlan, p: int, t: int) -> Tuple[Optional[Window], Optional[Window]]:
    """The parts of patch ``p``'s window of ``t`` kept for later patches: the
    columns the patch to the right reuses (rows it computes), and the rows the
    patch below reuses (all columns); None where nothing is kept."""
    if t in stage.sources or t == stage.output:
        return None, None
    w, cw = plan.need[p][t], plan.computed[p][t]
    right, below = plan.right(p), plan.below(p)
    cols = rows = None
    if right is not None and t in plan.need[right]:
        keep = Window(max(cw.y0, w.y0), w.y1, plan.need[right][t].x0, w.x1)
        cols = keep if keep.h > 0 and keep.w > 0 else None
    if below is not None and t in plan.need[below]:
        keep = Window(plan.need[below][t].y0, w.y1, w.x0, w.x1)
        rows = keep if keep.h > 0 else None
    return cols, rows


def cache_bytes(graph: KernelGraph, stage: Stage, plan: PatchPlan) -> int:
    """Most bytes the halo cache keeps at once, as the search estimates it: the
    rows kept by the nw patches before p (for the patches below them) and
    what p keeps itself.  (The columns p reads from the patch before it are
    counted with that patch; the planner places both exactly.)"""
    if plan.cache == "off":
        return 0
    cols, rows = [], []
    for p in range(len(plan.patches)):
        c = r = 0
        for t in plan.need[p]:
            kc, kr = kept_windows(stage, plan, p, t)
            item = graph.tensors[t].shape[3] * np.dtype(graph.tensors[t].dtype).itemsize
            c += align(kc.h * kc.w * item) if kc else 0
            r += align(kr.h * kr.w * item) if kr else 0
        cols.append(c)
        rows.append(r)
    return max(sum(rows[max(0, p - plan.nw):p + 1]) + cols[p] for p in range(len(plan.patches)))


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
        live = ow.h * ow.w * t.shape[3] * np.dtype(t.dtype).itemsize if ow is not None else 0
        for i in step.inputs:
            ti = graph.tensors[i]
            if ti.kind != "constant" and i in need:
                live += need[i].h * need[i].w * ti.shape[3] * np.dtype(ti.dtype).itemsize
        patch_peak = max(patch_peak, live)
    return max(outside, across + patch_peak), across + patch_peak
