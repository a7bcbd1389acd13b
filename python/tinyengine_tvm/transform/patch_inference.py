"""PatchBasedInference: run memory-heavy stages patch by patch (MCUNetV2, msf-CNN).

A *stage* is a run of consecutive steps whose operators are spatially local
(convolutions of any kernel, stride and dilation, depthwise, pooling,
QUANTIZE/requantize and the other element-wise kernels, ADD and MUL including
a channel-broadcast operand such as a squeeze-excite gate, CONCATENATION along
channels, PAD) and of which exactly one tensor, the stage output, is read after it.
Its output is cut into an nh x nw grid; each patch is computed from the
matching windows of the stage's *sources* (the full tensors it reads that were
produced before it: the model input, or any earlier tensor).  Every tensor of
the stage gets, per patch, the window its consumers need (receptive fields
through kernel, stride, dilation and padding); each step runs on its window
with local geometry (border patches keep the real padding, interior ones read
their halo instead), and the last step's window is pasted into the full stage
output.  Only one patch's intermediates are alive at a time.

The search is greedy over stages: every candidate stage and grid whose extra
MACs (halo recomputation) fit what is left of ``max_mac_overhead`` is ranked
by a cheap estimate of the arena, the best few are built and planned for real,
and the smallest arena is applied; then the search runs again on the result
(patched steps are not patchable again) until no stage lowers the arena or
``max_stages`` are patched.  A second search chooses the stages together for a
target arena (``CoverSearch``); the smaller of the two plans is kept.  When nothing beats the unpatched plan the graph is
left unchanged and the report names the operator that stopped the search and
why.  Results are bit-exact: every output element is computed by the same
kernel arithmetic on the same input values.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import tvm
from tvm import relax

from ..kernel_graph import KernelGraph
from ..kernels import macs as kernel_macs
from ..planner import kernel_scratch, plan_arena
from .patching.emit import build_patched
from .patching.geometry import BINARY, CONCAT, PATCHABLE, POINTWISE, WINDOWED, Window, grid, input_window
from .patching.plan import CACHE_FORMS, PatchPlan, cache_bytes, patch_plan, stage_extra_macs
from .patching.search import CoverSearch, apply_stages, form_sets, rank_stages
from .patching.stages import Stage, find_stages, stage_windows
from .relax_utils import rewrite_lowered

__all__ = ["BINARY", "CONCAT", "PATCHABLE", "POINTWISE", "WINDOWED", "PatchBasedInference", "PatchPlan",
           "PatchPlanResult", "Stage", "Window", "build_patched", "cache_bytes", "find_stages", "grid",
           "input_window", "patch_function", "patch_plan", "stage_extra_macs", "stage_windows"]


@dataclasses.dataclass
class PatchPlanResult:
    """What the pass chose (or why it chose nothing)."""

    applied: bool
    reason: str
    arena_bytes: int
    baseline_arena_bytes: int
    mac_overhead: float = 0.0
    candidates: int = 0
    # One entry per patched stage, in the order they were chosen: first/last
    # operator (model names and step indices in the patched function's input),
    # grid, extra MACs, the halo cache form and its bytes, and every cache form's
    # extra MACs and bytes for the same grid (``cache_forms``).
    stages: List[Dict] = dataclasses.field(default_factory=list)
    # Pareto front of the plans built during the search: [arena bytes, extra MACs share].
    explored: List[List] = dataclasses.field(default_factory=list)


def _decline_reason(graph: KernelGraph, refusals: Dict[int, str], found_any: bool, least: Optional[float],
                    budget: float, best_arena: Optional[int], baseline: int, peak_step: int) -> str:
    if not found_any:
        near = min(refusals, key=lambda s: abs(s - peak_step), default=None)
        if near is None:
            return "no run of two or more steps can run patch by patch"
        step = graph.steps[near]
        return (f"no stage can run patch by patch; near the peak, op #{near} '{step.name}' ({step.kernel}) "
                f"stops it: {refusals[near]}")
    if best_arena is None:
        return (f"every stage needs more than {budget:.0%} extra MACs" +
                (f" (the least is {least:.1%})" if least is not None else ""))
    return f"the best patched plan ({best_arena:,} B) is not smaller than the unpatched one ({baseline:,} B)"


def patch_function(func: relax.Function, max_mac_overhead: float = 0.1, max_patches: int = 8,
                   split: Optional[int] = None, patches: Optional[int] = None,
                   max_stages: int = 16, halo_cache: str = "auto",
                   count_inputs: bool = True) -> Tuple[relax.Function, PatchPlanResult]:
    """``func`` with its best patched stages (or unchanged), and what was chosen or why not.

    ``split`` forces the last step of the (first) stage, ``patches`` an n x n grid;
    ``halo_cache`` "auto" weighs recomputing the overlaps of neighbouring
    patches against caching the columns of the patch to the left; "all" also
    weighs caching those and the rows of the patch above (nothing
    recomputed: the least arena, but the copies cost time the MAC budget does
    not count); "on", "columns" or "off" forces one form;
    ``count_inputs=False`` minimizes the arena without the model inputs (held
    by the caller, e.g. in a camera frame buffer; reported the same way).
    """
    max_mac_overhead, max_patches, max_stages = float(max_mac_overhead), int(max_patches), int(max_stages)
    original = func
    graph = KernelGraph.from_relax(func)
    plan = plan_arena(graph, kernel_scratch(graph), count_inputs)
    first_graph, first_plan = graph, plan
    baseline = current = plan.arena_bytes
    total_macs = sum(kernel_macs(s.kernel, s.attrs) for s in graph.steps) or 1
    spent, tried, chosen, explored = 0, 0, [], []
    first_refusals, found_any, least, best_failed = None, False, None, None
    peak_step = max(range(len(graph.steps)), key=plan.live_bytes, default=0)
    while len(chosen) < max_stages:
        stages, refusals = find_stages(graph)
        if first_refusals is None:
            first_refusals = refusals
        if split is not None and not chosen:
            stages = [s for s in stages if s.last == split]
        found_any = found_any or bool(stages)
        ranked, evaluated = rank_stages(graph, plan, stages, max_patches, patches, max_mac_overhead * total_macs - spent,
                                  halo_cache)
        for extra in evaluated:
            least = extra / total_macs if least is None else min(least, extra / total_macs)
        best = None
        for est, extra, stage, pp in ranked:
            new_func = build_patched(func, graph, stage, pp)
            new_graph = KernelGraph.from_relax(new_func)
            new_plan = plan_arena(new_graph, kernel_scratch(new_graph), count_inputs)
            tried += 1
            # Equal arenas (another peak dominates): prefer the stage that leaves the
            # least behind, so that the next round can lower the other peak.
            inside = max(new_plan.live_bytes(k) for k, st in enumerate(new_graph.steps)
                         if st.notes.get("patch_of") == graph.tensors[stage.output].name)
            key = (new_plan.arena_bytes, inside, extra)
            explored.append([int(new_plan.arena_bytes), (spent + extra) / total_macs])
            if best is None or key < best[0]:
                best = (key, new_func, new_graph, new_plan, stage, pp)
        if best is None:
            break
        if best[0][0] >= current:
            best_failed = best[0][0] if best_failed is None else min(best_failed, best[0][0])
            break
        (arena, _, extra), new_func, new_graph, new_plan, stage, pp = best
        chosen.append(_stage_report(graph, stage, pp, extra, total_macs, arena))
        spent += extra
        func, graph, plan, current = new_func, new_graph, new_plan, arena
        if split is not None or patches is not None:
            break  # a forced configuration is one stage
    if split is None and patches is None:
        # The stages chosen together for a target arena, when they beat one per round.
        search = CoverSearch(first_graph, first_plan, find_stages(first_graph)[0], max_patches, halo_cache)
        built = []
        for forms in form_sets(halo_cache):
            together = search.search(max_mac_overhead * total_macs, max_stages, current, forms)
            if not together or any(together == b for b in built):
                continue
            built.append(together)
            new_func, new_graph = apply_stages(original, together)
            new_plan = plan_arena(new_graph, kernel_scratch(new_graph), count_inputs)
            tried += 1
            cover_spent = sum(c[4] for c in together)
            explored.append([int(new_plan.arena_bytes), cover_spent / total_macs])
            if new_plan.arena_bytes < current:
                func, current, spent = new_func, new_plan.arena_bytes, cover_spent
                chosen = [_stage_report(first_graph, st, patch_plan(first_graph, st, nh, nw, cache), extra,
                                        total_macs, current) for st, nh, nw, cache, extra in together]
    if not chosen:
        why = _decline_reason(graph, first_refusals or {}, found_any, least, max_mac_overhead, best_failed,
                              baseline, peak_step)
        return func, PatchPlanResult(False, why, baseline, baseline, candidates=tried, explored=_pareto(explored))
    return func, PatchPlanResult(True, "", current, baseline, spent / total_macs, tried, chosen, _pareto(explored))


def _stage_report(graph: KernelGraph, stage: Stage, pp: PatchPlan, extra: int, total_macs: int,
                  arena: int) -> Dict:
    """What the report says of one patched stage (indices into ``graph``, the function it was chosen in)."""
    nh = len(pp.patches) // pp.nw
    # The same grid in every cache form: what the halo cache costs and saves.
    forms = {}
    for form in CACHE_FORMS:
        other = pp if form == pp.cache else patch_plan(graph, stage, nh, pp.nw, form, like=pp)
        forms[form] = dict(mac_overhead=stage_extra_macs(graph, stage, other) / total_macs,
                           cache_bytes=cache_bytes(graph, stage, other))
    return dict(
        first_op=graph.steps[stage.first].name, last_op=graph.steps[stage.last].name,
        first_index=stage.first, last_index=stage.last, grid=[nh, pp.nw], halo_cache=pp.cache,
        extra_macs=extra, mac_overhead=extra / total_macs, arena_bytes=arena,
        halo_cache_bytes=forms[pp.cache]["cache_bytes"], cache_forms=forms,
        recompute_mac_overhead=forms["off"]["mac_overhead"],
        halo_cache_mac_overhead=forms["full"]["mac_overhead"])


def _pareto(points: List[List]) -> List[List]:
    """The (arena bytes, extra MACs share) points no other point beats on both, by arena."""
    front: List[List] = []
    for arena, macs in sorted(points, key=lambda p: (p[1], p[0])):
        if not front or arena < front[-1][0]:
            front.append([arena, macs])
    return sorted(front)


@tvm.transform.module_pass(opt_level=0, name="PatchBasedInference")
class PatchBasedInference:
    """Run the memory-heavy stages of every lowered function patch by patch when
    that lowers the arena (report: the fields of PatchPlanResult).

    Options (PassContext keys ``tinyengine.PatchBasedInference.<option>``; a
    constructor argument overrides them): ``max_mac_overhead`` (default 0.1),
    extra MACs allowed for halo recomputation as a share of the model's MACs,
    over all stages; ``max_patches`` (default 8), the most patches along an
    axis; ``max_stages`` (default 16); ``halo_cache`` ("auto", "all", "on",
    "columns" or "off": reuse overlaps of neighbouring patches computed
    before instead of recomputing them; "auto" weighs the columns of the
    patch to the left, "all" also the rows above, "on" keeps every overlap); ``split``/``patches`` force one stage (step index of its last op,
    and an n x n grid); ``count_inputs`` (default true; false: minimize the
    arena the model needs besides its inputs, for callers that hold the image).
    """

    def __init__(self, max_mac_overhead: Optional[float] = None, max_patches: Optional[int] = None,
                 split: Optional[int] = None, patches: Optional[int] = None, max_stages: Optional[int] = None,
                 halo_cache: Optional[str] = None, count_inputs: Optional[bool] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("PatchBasedInference", dict(
            max_mac_overhead=max_mac_overhead, max_patches=max_patches, split=split, patches=patches,
            max_stages=max_stages, halo_cache=halo_cache, count_inputs=count_inputs))

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("PatchBasedInference", ctx, self.overrides)

        def rewrite(func):
            new, result = patch_function(func, **opts)
            return new, dataclasses.asdict(result)

        return rewrite_lowered(mod, "PatchBasedInference", rewrite)
