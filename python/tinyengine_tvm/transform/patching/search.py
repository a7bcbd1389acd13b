"""Choosing stages and grids: one stage per round by estimate, or all together for a target arena."""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
from tvm import relax

from ...kernel_graph import KernelGraph
from ...planner.cost_model import align
from .emit import build_patched
from .plan import CACHE_FORMS, PatchPlan, cache_bytes, estimate_arena, patch_plan, stage_extra_macs
from .stages import Stage

#: Candidate stages built and planned per round (the rest are ranked by estimate only).
BUILT_PER_ROUND = 6


def candidate_grids(H: int, W: int, max_patches: int, patches: Optional[int]) -> List[Tuple[int, int]]:
    """Grids tried for an H x W stage output: n x n when forced, else near-square cells."""
    if patches:
        return [(patches, patches)] if patches <= min(H, W) else []
    out = set()
    for nh in range(1, min(max_patches, H) + 1):
        ideal = nh * W / H
        for nw in {int(np.floor(ideal)), int(np.ceil(ideal)), nh}:
            if 1 <= nw <= min(max_patches, W) and nh * nw > 1:
                out.add((nh, nw))
    return sorted(out)


def rank_stages(graph: KernelGraph, plan, stages: List[Stage], max_patches: int, patches: Optional[int],
          mac_budget: float, halo_cache: str):
    """The BUILT_PER_ROUND (estimate, extra MACs, stage, PatchPlan) of least estimated
    arena within ``mac_budget``, and the extra MACs of every configuration evaluated.

    Stages are visited by a lower bound of their arena (live bytes outside
    them; their full sources and output), so that most are never evaluated.
    ``halo_cache``: the option cache_forms reads."""
    n = len(graph.steps)
    live = [plan.live_bytes(s) for s in range(n)]
    before = [0] * (n + 1)  # before[s]: max live bytes of steps < s
    after = [0] * (n + 1)  # after[s]: max live bytes of steps >= s
    for s in range(n):
        before[s + 1] = max(before[s], live[s])
    for s in range(n - 1, -1, -1):
        after[s] = max(after[s + 1], live[s])

    def bound(st: Stage) -> int:
        full = sum(align(graph.tensors[t].nbytes) for t in set(st.sources) | set(st.whole) | {st.output}
                   if plan_counts(t))
        return max(before[st.first], after[st.last + 1], full)

    def plan_counts(t: int) -> bool:
        return graph.root(t) in plan.buffers and plan.buffers[graph.root(t)].size > 0

    ranked: List[Tuple] = []
    evaluated: List[int] = []
    for lb, _, stage in sorted(((bound(st), k, st) for k, st in enumerate(stages)), key=lambda r: r[:2]):
        if len(ranked) >= BUILT_PER_ROUND and lb >= ranked[-1][0][0]:
            break
        _, H, W, _ = graph.tensors[stage.output].shape
        for nh, nw in candidate_grids(H, W, max_patches, patches):
            base, base_inside = estimate_arena(graph, plan, stage, nh, nw)
            pp = None
            for cache in cache_forms(halo_cache, nh, nw):
                pp = patch_plan(graph, stage, nh, nw, cache, like=pp)
                held = cache_bytes(graph, stage, pp)
                est = (max(base, base_inside + held),)
                if len(ranked) >= BUILT_PER_ROUND and est >= ranked[-1][0]:
                    continue
                extra = stage_extra_macs(graph, stage, pp)
                evaluated.append(extra)
                if extra > mac_budget + 1e-9:
                    continue
                ranked.append((est, extra, stage, pp))
                ranked.sort(key=lambda r: (r[0], r[1], r[2].first, r[2].last, len(r[3].patches),
                                           CACHE_FORMS.index(r[3].cache)))
                del ranked[BUILT_PER_ROUND:]
    return ranked, evaluated


def cache_forms(halo_cache: str, nh: int, nw: int) -> Tuple[str, ...]:
    """Halo cache forms (CACHE_FORMS) tried for an nh x nw grid under the
    ``halo_cache`` option: "auto" weighs recomputing against caching the
    columns, "all" weighs every distinct form (the full cache too), "on"
    caches every overlap, "columns" only horizontal ones, "off" none."""
    if halo_cache == "off":
        return ("off",)
    if halo_cache == "on":
        return ("full",)
    if halo_cache == "columns":
        return ("columns",) if nw > 1 else ("off",)
    # With one row of patches "full" equals "columns"; with one column "columns" equals "off".
    forms = ("off",) + (("columns",) if nw > 1 else ())
    return forms + (("full",) if nh > 1 else ()) if halo_cache == "all" else forms


class CoverSearch:
    """Stages chosen together for a target arena T (msf-CNN's view of the problem):
    every step whose live bytes exceed T must lie in a stage whose estimated
    in-stage peak is at most T; left to right, each uncovered step takes the
    cheapest (fewest extra MACs) such stage, the longest on ties.  T is bisected
    down to the least one whose stages fit the MAC budget and ``max_stages``.
    Unlike one stage per round, this spends the budget where the peaks are."""

    def __init__(self, graph: KernelGraph, plan, stages: List[Stage], max_patches: int, halo_cache: str):
        self.graph, self.plan = graph, plan
        self.live = [plan.live_bytes(s) for s in range(len(graph.steps))]
        self.containing: Dict[int, List[Stage]] = {}
        for st in stages:
            for s in st.steps:
                self.containing.setdefault(s, []).append(st)
        self.max_patches = max_patches
        self.halo_cache = halo_cache
        self._options: Dict[Tuple[int, int], List[Tuple[int, int, int, int, str]]] = {}
        self._extra: Dict[Tuple, int] = {}
        self._plans: Dict[Tuple, PatchPlan] = {}

    def options(self, st: Stage) -> List[Tuple[int, int, int, int, str]]:
        """(estimated in-stage peak, grid size, nh, nw, cache) of every grid, by estimate."""
        key = (st.first, st.last)
        if key not in self._options:
            _, H, W, _ = self.graph.tensors[st.output].shape
            out = []
            for nh, nw in candidate_grids(H, W, self.max_patches, None):
                _, inside = estimate_arena(self.graph, self.plan, st, nh, nw)
                for cache in cache_forms(self.halo_cache, nh, nw):
                    held = cache_bytes(self.graph, st, self.plan_of(st, nh, nw, cache))
                    out.append((inside + held, nh * nw, nh, nw, cache))
            self._options[key] = sorted(out, key=lambda o: o[:4] + (CACHE_FORMS.index(o[4]),))
        return self._options[key]

    def plan_of(self, st: Stage, nh: int, nw: int, cache: str) -> PatchPlan:
        """The windows of ``st`` in that grid and form (computed once)."""
        key = (st.first, st.last, nh, nw, cache)
        if key not in self._plans:
            like = next((self._plans[key[:4] + (f,)] for f in CACHE_FORMS if key[:4] + (f,) in self._plans), None)
            self._plans[key] = patch_plan(self.graph, st, nh, nw, cache, like=like)
        return self._plans[key]

    def extra(self, st: Stage, nh: int, nw: int, cache: str) -> int:
        """Extra MACs of ``st`` in that grid and form (computed once)."""
        key = (st.first, st.last, nh, nw, cache)
        if key not in self._extra:
            self._extra[key] = stage_extra_macs(self.graph, st, self.plan_of(st, nh, nw, cache))
        return self._extra[key]

    def cover(self, target: int, budget: float, max_stages: int, forms=CACHE_FORMS):
        """[(stage, nh, nw, cache, extra)] bringing every step to ``target`` or below
        with cache forms among ``forms``, or None."""
        chosen, spent, s, n = [], 0, 0, len(self.live)
        while s < n:
            if self.live[s] <= target:
                s += 1
                continue
            best = None
            for st in self.containing.get(s, []):
                if chosen and st.first <= chosen[-1][0].last:
                    continue
                for inside, _, nh, nw, cache in self.options(st):
                    if inside > target:
                        break
                    if cache not in forms:
                        continue
                    extra = self.extra(st, nh, nw, cache)
                    if spent + extra <= budget + 1e-9:
                        key = (extra, -st.last, st.first, nh * nw)
                        if best is None or key < best[0]:
                            best = (key, (st, nh, nw, cache, extra))
            if best is None or len(chosen) >= max_stages:
                return None
            chosen.append(best[1])
            spent += best[1][4]
            s = best[1][0].last + 1
        return chosen

    def search(self, budget: float, max_stages: int, ceiling: int, forms=CACHE_FORMS):
        """The stages for the least target below ``ceiling`` that the budget affords
        with cache forms among ``forms`` (None if none)."""
        lo, hi, best = 0, ceiling - 1, None
        while lo <= hi and hi > 0:
            mid = (lo + hi) // 2
            found = self.cover(mid, budget, max_stages, forms)
            if found is not None:
                best, hi = found, mid - TARGET_STEP
            else:
                lo = mid + TARGET_STEP
        return best


def form_sets(halo_cache: str) -> List[Tuple[str, ...]]:
    """The sets of cache forms CoverSearch covers with, each built for real: the
    cover prefers the cheapest stage in MACs, and a free (cached) form can hold
    more bytes than recomputing would, so fewer forms may give a smaller arena."""
    return [CACHE_FORMS, ("off", "columns"), ("off",)] if halo_cache == "all" else [CACHE_FORMS]


#: Bisection resolution of CoverSearch's target arena (bytes).
TARGET_STEP = 64


def apply_stages(func: relax.Function, chosen) -> Tuple[relax.Function, KernelGraph]:
    """``func`` with every chosen stage patched: the last first, so that the step and
    tensor indices of the earlier ones stay valid."""
    graph = KernelGraph.from_relax(func)
    for st, nh, nw, cache, _ in sorted(chosen, key=lambda c: -c[0].first):
        func = build_patched(func, graph, st, patch_plan(graph, st, nh, nw, cache))
        graph = KernelGraph.from_relax(func)
    return func, graph
