"""PatchBasedInference: run the memory-heavy first stage patch by patch (MCUNetV2).

The first layers of a CNN have the largest feature maps.  This pass cuts the
output of an initial stage (a prefix of the schedule, residual blocks
allowed) into an n x n grid and computes each patch from the matching window
of the model input: every tensor of the stage gets, per patch, the window its
consumers need (receptive fields through kernel, stride, dilation and
padding), each step runs on its window with local geometry (border patches
keep the real padding, interior ones read their halo instead), and the last
step's window is pasted into the full stage output.  Only one patch's
intermediates are alive at a time, so the stage's peak falls to about
input + stage output + one patch.

The split point and n are searched: every valid prefix and n in
[2, max_patches] whose extra MACs (halo recomputation) stay within
``max_mac_overhead`` of the model's MACs is planned, and the smallest arena
wins.  When nothing beats the unpatched plan the graph is left unchanged and
the report says why.  Results are bit-exact: every output element is computed
by the same kernel arithmetic on the same input values.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import tvm
from tvm import relax

from ..kernel_graph import KernelGraph
from ..planner import kernel_scratch, plan_arena
from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import bindings, function_attrs, rewrite_lowered, substitute

# Kernels a stage may contain, and how each maps output windows to input windows.
_WINDOWED = ("te_conv2d_s8", "te_depthwise_conv2d_s8", "te_avg_pool_s8", "te_max_pool_s8")
_ELEMENTWISE = ("te_add_s8", "te_requantize_s8")
PATCHABLE = _WINDOWED + _ELEMENTWISE


@dataclasses.dataclass(frozen=True)
class Window:
    """Rows [y0, y1) and columns [x0, x1) of an NHWC tensor."""

    y0: int
    y1: int
    x0: int
    x1: int

    @property
    def h(self) -> int:
        return self.y1 - self.y0

    @property
    def w(self) -> int:
        return self.x1 - self.x0

    def union(self, other: Optional["Window"]) -> "Window":
        if other is None:
            return self
        return Window(min(self.y0, other.y0), max(self.y1, other.y1), min(self.x0, other.x0), max(self.x1, other.x1))

    def contains(self, other: "Window") -> bool:
        return self.y0 <= other.y0 and other.y1 <= self.y1 and self.x0 <= other.x0 and other.x1 <= self.x1


def _geometry(step_attrs: Dict, kernel: str) -> Tuple[int, int, int, int, int, int, int, int]:
    """(kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w, pad_top, pad_left)."""
    a = step_attrs
    if kernel in ("te_conv2d_s8", "te_depthwise_conv2d_s8"):
        return (a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"], a["dilation_h"], a["dilation_w"],
                a["pad_top"], a["pad_left"])
    return (a["filter_h"], a["filter_w"], a["stride_h"], a["stride_w"], 1, 1, a["pad_top"], a["pad_left"])


def input_window(kernel: str, attrs: Dict, out: Window, in_h: int, in_w: int) -> Window:
    """The input window a windowed step reads to produce ``out`` (clipped to the input)."""
    if kernel in _ELEMENTWISE:
        return out
    kh, kw, sh, sw, dh, dw, pt, pl = _geometry(attrs, kernel)
    y0 = out.y0 * sh - pt
    y1 = (out.y1 - 1) * sh - pt + (kh - 1) * dh + 1
    x0 = out.x0 * sw - pl
    x1 = (out.x1 - 1) * sw - pl + (kw - 1) * dw + 1
    return Window(max(0, y0), min(in_h, y1), max(0, x0), min(in_w, x1))


def _grid(h: int, w: int, n: int) -> List[Window]:
    ys = [round(i * h / n) for i in range(n + 1)]
    xs = [round(i * w / n) for i in range(n + 1)]
    return [Window(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(n) for j in range(n)]


@dataclasses.dataclass
class _Stage:
    steps: List[int]  # step indices, execution order
    source: int  # root tensor of the stage input (the model input)
    output: int  # tensor index of the stage output


def find_stages(graph: KernelGraph) -> List[_Stage]:
    """Prefixes of the schedule that can run patch by patch.

    A prefix qualifies when all its steps are patchable NHWC kernels on batch
    1, it reads one model input (and constants), and exactly one tensor it
    produces (its last step's output) is read after it.
    """
    if len(graph.inputs) != 1:
        return []
    source = graph.inputs[0]
    if len(graph.tensors[source].shape) != 4 or graph.tensors[source].shape[0] != 1:
        return []
    produced = {}
    stages = []
    outputs = set(graph.outputs)
    for k, step in enumerate(graph.steps):
        if step.kernel not in PATCHABLE or len(graph.tensors[step.output].shape) != 4:
            break
        if step.kernel == "te_add_s8" and (0 in step.attrs["input1_strides"] or 0 in step.attrs["input2_strides"]):
            break  # broadcasting ADD
        ok = all(graph.tensors[i].kind == "constant" or i in produced or i == source for i in step.inputs)
        if not ok:
            break
        produced[step.output] = k
        if step.output in outputs:
            break
        later_reads = {i for s in graph.steps[k + 1:] for i in s.inputs}
        crossing = {t for t in produced if t in later_reads} | ({source} & later_reads)
        if crossing == {step.output} and k >= 1:
            stages.append(_Stage(list(range(k + 1)), source, step.output))
    return stages


@dataclasses.dataclass
class PatchPlanResult:
    """What the pass chose (or why it chose nothing)."""

    applied: bool
    reason: str
    arena_bytes: int
    baseline_arena_bytes: int
    split_op: Optional[str] = None
    split_index: Optional[int] = None
    patches: int = 0
    mac_overhead: float = 0.0
    candidates: int = 0
    # Estimates, not generated code: extra MACs and cache bytes if halo columns
    # were cached between horizontally adjacent patches (StreamNet-style).
    halo_cache_mac_overhead: Optional[float] = None
    halo_cache_bytes: Optional[int] = None


class _PatchedBuilder:
    """Emits the patched stage as Relax kernel calls."""

    def __init__(self, graph: KernelGraph, func: relax.Function, stage: _Stage, n: int):
        self.graph = graph
        self.stage = stage
        self.n = n
        self.step_values = [b for b in bindings(func) if parse_kernel_call(b.value) is not None]
        self.extra_macs = 0

    def _shape(self, t: int) -> List[int]:
        return self.graph.tensors[t].shape

    def windows(self, out_window: Window) -> Dict[int, Window]:
        """Window of every stage tensor needed for one patch of the stage output."""
        g = self.graph
        need: Dict[int, Window] = {self.stage.output: out_window}
        for s in reversed(self.stage.steps):
            step = g.steps[s]
            if step.output not in need:
                continue
            for i in step.inputs:
                if g.tensors[i].kind == "constant":
                    continue
                _, h, w, _ = self._shape(i)
                need[i] = input_window(step.kernel, step.attrs, need[step.output], h, w).union(need.get(i))
        return need

    def halo_cache_estimate(self) -> Tuple[int, int]:
        """(stage MACs, cache bytes) if halo columns were cached between horizontally
        adjacent patches (StreamNet-style) instead of recomputed.

        Within one row of patches every stage tensor's windows would then be
        computed once over their union; rows still recompute their vertical
        halo.  The cache holds, per tensor, the overlap columns of one patch
        row.  An estimate from the windows: the generated code recomputes.
        """
        from ..kernels import KERNELS

        g = self.graph
        _, H, W, _ = self._shape(self.stage.output)
        grid = _grid(H, W, self.n)
        macs, cache = 0, 0
        for r in range(self.n):
            row = [self.windows(p) for p in grid[r * self.n:(r + 1) * self.n]]
            for s in self.stage.steps:
                step = g.steps[s]
                wins = [need[step.output] for need in row if step.output in need]
                if not wins:
                    continue
                union = wins[0]
                for w in wins[1:]:
                    union = union.union(w)
                _, oh, ow, oc = self._shape(step.output)
                per_pixel = KERNELS[step.kernel].macs(step.attrs) / (oh * ow)
                macs += per_pixel * union.h * union.w
                overlap = sum(w.w for w in wins) - union.w
                cache = max(cache, overlap * union.h * oc)
        return int(macs), int(cache)

    def emit(self, const_of) -> List[Tuple[str, List, Dict, List[int], str]]:
        """Kernel calls (kernel, tensor args, attrs, out shape, name) of the whole patched stage.

        Tensor args are ("src",) for the model input, ("local", tensor) for a
        patch buffer, ("stage",) for the stage output buffer, or a constant.
        Names derive from the tensors' (the model's) names: ``<t>[patch k]`` is
        patch k (row-major in the grid) of tensor t, ``<t>[patch k crop]`` the
        part of it a step reads, ``<out>[paste k]`` the stage output once
        patch k is pasted into it.
        """
        g = self.graph
        calls = []
        out_shape = self._shape(self.stage.output)
        _, H, W, C = out_shape
        name = lambda t: g.tensors[t].name  # noqa: E731
        calls.append(("te_buffer", [], {}, out_shape, name(self.stage.output)))
        from ..kernels import KERNELS

        for p, patch in enumerate(_grid(H, W, self.n)):
            need = self.windows(patch)
            src = self.stage.source
            sw = need[src]
            _, sh_full, sw_full, sc = self._shape(src)
            local_of: Dict[int, int] = {}  # tensor -> index into calls producing its patch buffer
            crops: Dict[int, int] = {}  # tensor -> crops of its patch buffer so far (unique names)
            calls.append(("te_crop_s8", [("src",)], dict(
                src_stride=sw_full * sc, row_bytes=sw.w * sc, rows=sw.h,
                _in_offsets=[(sw.y0 * sw_full + sw.x0) * sc]), [1, sw.h, sw.w, sc], f"{name(src)}[patch {p}]"))
            local_of[src] = len(calls) - 1
            for s in self.stage.steps:
                step = g.steps[s]
                if step.output not in need:
                    continue
                ow = need[step.output]
                # The copy keeps the step's notes (op type, ...) as "_" keys, which
                # make_kernel_call files apart from the parameters again.
                args, attrs = [], dict(step.attrs, **{"_" + k: v for k, v in step.notes.items()})
                for k, i in enumerate(step.inputs):
                    if g.tensors[i].kind == "constant":
                        args.append(const_of(s, k))
                        continue
                    have = need[i]
                    _, ih, iw, ic = self._shape(i)
                    want = input_window(step.kernel, step.attrs, ow, ih, iw)
                    if step.kernel == "te_add_s8":
                        # ADD reads a sub-window of a larger patch buffer through strides.
                        strides = [have.h * have.w * ic, have.w * ic, ic, 1]
                        attrs[f"input{k + 1}_strides"] = strides
                        offs = attrs.setdefault("_in_offsets", [0] * len(step.inputs))
                        offs[k] = ((want.y0 - have.y0) * have.w + (want.x0 - have.x0)) * ic
                        args.append(("local", local_of[i]))
                        continue
                    if have != want:
                        calls.append(("te_crop_s8", [("local", local_of[i])], dict(
                            src_stride=have.w * ic, row_bytes=want.w * ic, rows=want.h,
                            _in_offsets=[((want.y0 - have.y0) * have.w + (want.x0 - have.x0)) * ic]),
                            [1, want.h, want.w, ic], f"{name(i)}[patch {p} crop{_nth(crops, i)}]"))
                        args.append(("local", len(calls) - 1))
                    else:
                        args.append(("local", local_of[i]))
                    if step.kernel in _WINDOWED:
                        kh, kw, sh, swd, dh, dw, pt, pl = _geometry(step.attrs, step.kernel)
                        attrs.update(input_h=want.h, input_w=want.w)
                        attrs["pad_top"] = pt + want.y0 - ow.y0 * sh
                        attrs["pad_left"] = pl + want.x0 - ow.x0 * swd
                    if step.kernel == "te_requantize_s8":
                        attrs["size"] = ow.h * ow.w * ic
                oc = self._shape(step.output)[3]
                if step.kernel in _WINDOWED:
                    attrs.update(output_h=ow.h, output_w=ow.w)
                if step.kernel == "te_add_s8":
                    attrs["dims"] = [1, ow.h, ow.w, oc]
                if "batch" in attrs:
                    attrs["batch"] = 1
                self.extra_macs += KERNELS[step.kernel].macs(attrs)
                calls.append((step.kernel, args, attrs, [1, ow.h, ow.w, oc], f"{name(step.output)}[patch {p}]"))
                local_of[step.output] = len(calls) - 1
            last = local_of[self.stage.output]
            calls.append(("te_paste_s8", [("stage",), ("local", last)], dict(
                row_bytes=patch.w * C, rows=patch.h, dst_stride=W * C,
                _inout_offset=(patch.y0 * W + patch.x0) * C), out_shape, f"{name(self.stage.output)}[paste {p}]"))
        return calls


def _nth(counts: Dict[int, int], key: int) -> str:
    """'' the first time ``key`` is counted, then ' 2', ' 3', ..."""
    counts[key] = counts.get(key, 0) + 1
    return "" if counts[key] == 1 else f" {counts[key]}"


def _build_patched(func: relax.Function, graph: KernelGraph, stage: _Stage, n: int):
    """The function with ``stage`` replaced by its n x n patched version, and the stage's MACs."""
    from ..kernels import KERNELS

    builder = _PatchedBuilder(graph, func, stage, n)
    step_bindings = builder.step_values
    stage_vars = {step_bindings[s].var for s in stage.steps}
    const_of = lambda s, k: parse_kernel_call(step_bindings[s].value).tensors[k]  # noqa: E731
    calls = builder.emit(const_of)
    stage_macs = sum(KERNELS[graph.steps[s].kernel].macs(graph.steps[s].attrs) for s in stage.steps)
    out_var = step_bindings[stage.steps[-1]].var
    src_var = func.params[0]

    params = list(func.params)
    bb = relax.BlockBuilder()
    ret_vars = set(relax.analysis.free_vars(func.body.body))
    # private=True: keep the original attrs (and global symbol, or its absence) as they are.
    with bb.function("f", params, attrs=function_attrs(func), pure=bool(func.is_pure), private=True):
        with bb.dataflow():
            emitted: List[relax.Expr] = []
            stage_buf = None
            for kernel, args, kattrs, shape, name in calls:
                targs = []
                for a in args:
                    if isinstance(a, tuple) and a[0] == "src":
                        targs.append(src_var)
                    elif isinstance(a, tuple) and a[0] == "stage":
                        targs.append(stage_buf)
                    elif isinstance(a, tuple) and a[0] == "local":
                        targs.append(emitted[a[1]])
                    else:
                        targs.append(a)
                v = bb.emit(make_kernel_call(kernel, targs, kattrs, shape, "int8"), name_hint=name)
                emitted.append(v)
                if kernel in ("te_buffer", "te_paste_s8"):
                    stage_buf = v
            remap = {out_var: stage_buf}

            for b in bindings(func):
                if b.var in stage_vars:
                    continue
                value = substitute(b.value, remap)
                new = bb.emit_output(value, name_hint=b.var.name) if b.var in ret_vars else bb.emit(value, name_hint=b.var.name)
                remap[b.var] = new
            ret = substitute(func.body.body, remap)
        bb.emit_func_output(ret)
    return bb.get()["f"], stage_macs, builder.extra_macs, builder


def patch_function(func: relax.Function, max_mac_overhead: float = 0.1, max_patches: int = 8, split: Optional[int] = None,
                   patches: Optional[int] = None) -> Tuple[relax.Function, PatchPlanResult]:
    """``func`` with its best patched stage (or unchanged), and what was chosen or why not."""
    from ..kernels import KERNELS

    max_mac_overhead, max_patches = float(max_mac_overhead), int(max_patches)
    graph = KernelGraph.from_relax(func)
    base_plan = plan_arena(graph, kernel_scratch(graph))
    baseline = base_plan.arena_bytes
    total_macs = sum(KERNELS[s.kernel].macs(s.attrs) for s in graph.steps) or 1
    stages = find_stages(graph)
    if split is not None:
        stages = [s for s in stages if s.steps[-1] == split]
    best = None
    tried = 0
    least_overhead = None
    for stage in stages:
        # Input and stage output are both alive while the stage runs, and
        # the steps after it are unchanged: no n can beat this bound.
        bound = max([graph.tensors[stage.source].nbytes + graph.tensors[stage.output].nbytes]
                    + [base_plan.live_bytes(s) for s in range(stage.steps[-1] + 1, len(graph.steps))])
        if best is not None and bound >= best[0][0]:
            continue
        H, W = graph.tensors[stage.output].shape[1:3]
        ns = [patches] if patches else range(2, min(max_patches, H, W) + 1)
        for n in ns:
            new_func, stage_macs, patched_macs, builder = _build_patched(func, graph, stage, n)
            overhead = (patched_macs - stage_macs) / total_macs
            tried += 1
            least_overhead = overhead if least_overhead is None else min(least_overhead, overhead)
            if overhead > max_mac_overhead + 1e-12:
                continue
            new_graph = KernelGraph.from_relax(new_func)
            arena = plan_arena(new_graph, kernel_scratch(new_graph)).arena_bytes
            key = (arena, overhead)
            if best is None or key < best[0]:
                best = (key, new_func, stage, n, overhead, builder, stage_macs)
    if best is None or best[0][0] >= baseline:
        why = ("no prefix of the graph can run patch by patch" if not stages else
               f"every split needs more than {max_mac_overhead:.0%} extra MACs "
               f"(the least is {least_overhead:.1%})" if best is None and least_overhead is not None else
               "no split was tried" if best is None else
               f"the best patched plan ({best[0][0]:,} B) is not smaller than the unpatched one ({baseline:,} B)")
        return func, PatchPlanResult(False, why, baseline, baseline, candidates=tried)
    (arena, overhead), new_func, stage, n, _, builder, stage_macs = best
    cached_macs, cache_bytes = builder.halo_cache_estimate()
    return new_func, PatchPlanResult(True, "", arena, baseline, graph.steps[stage.steps[-1]].name,
                                     stage.steps[-1], n, overhead, tried,
                                     (cached_macs - stage_macs) / total_macs, cache_bytes)


@tvm.transform.module_pass(opt_level=0, name="PatchBasedInference")
class PatchBasedInference:
    """Split the initial stage of every lowered function into n x n spatial
    patches when that lowers the arena (report: the fields of PatchPlanResult).

    Options (PassContext keys ``tinyengine.PatchBasedInference.<option>``; a
    constructor argument overrides them): ``max_mac_overhead`` (default 0.1),
    extra MACs allowed for halo recomputation as a share of the model's MACs;
    ``max_patches`` (default 8), the largest n tried; ``split``/``patches``
    force a configuration (step index of the stage's last op, and n).
    """

    def __init__(self, max_mac_overhead: Optional[float] = None, max_patches: Optional[int] = None,
                 split: Optional[int] = None, patches: Optional[int] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("PatchBasedInference", dict(
            max_mac_overhead=max_mac_overhead, max_patches=max_patches, split=split, patches=patches))

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("PatchBasedInference", ctx, self.overrides)

        def rewrite(func):
            new, result = patch_function(func, **opts)
            return new, dataclasses.asdict(result)

        return rewrite_lowered(mod, "PatchBasedInference", rewrite)
