"""PatchBasedInference: run memory-heavy stages patch by patch (MCUNetV2, msf-CNN).

A *stage* is a run of consecutive steps whose operators are spatially local
(convolutions of any kernel, stride and dilation, depthwise, pooling,
QUANTIZE/requantize and the other element-wise kernels, ADD and MUL including
a channel-broadcast operand such as a squeeze-excite gate, CONCATENATION along
channels) and of which exactly one tensor, the stage output, is read after it.
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
target arena (``_CoverSearch``); the smaller of the two plans is kept.  When nothing beats the unpatched plan the graph is
left unchanged and the report names the operator that stopped the search and
why.  Results are bit-exact: every output element is computed by the same
kernel arithmetic on the same input values.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tvm
from tvm import relax

from ..kernel_graph import KernelGraph, Step
from ..kernels import macs as kernel_macs
from ..planner import kernel_scratch, plan_arena
from ..planner.cost_model import align
from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import bindings, function_attrs, rewrite_lowered, substitute

# How each patchable kernel maps a window of its output to windows of its inputs.
WINDOWED = ("te_conv2d_s8", "te_depthwise_conv2d_s8", "te_avg_pool_s8", "te_max_pool_s8")
POINTWISE = ("te_requantize_s8", "te_quantize_f32_s8", "te_logistic_s8", "te_hard_swish_s8")  # "size" elements
BINARY = ("te_add_s8", "te_mul_s8")
CONCAT = ("te_concat_s8",)
PATCHABLE = WINDOWED + POINTWISE + BINARY + CONCAT

#: Candidate stages built and planned per round (the rest are ranked by estimate only).
BUILT_PER_ROUND = 6


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
    """The input window a step reads to produce ``out`` (clipped to the input)."""
    if kernel not in WINDOWED:
        return out
    kh, kw, sh, sw, dh, dw, pt, pl = _geometry(attrs, kernel)
    y0 = out.y0 * sh - pt
    y1 = (out.y1 - 1) * sh - pt + (kh - 1) * dh + 1
    x0 = out.x0 * sw - pl
    x1 = (out.x1 - 1) * sw - pl + (kw - 1) * dw + 1
    return Window(max(0, y0), min(in_h, y1), max(0, x0), min(in_w, x1))


def grid(h: int, w: int, nh: int, nw: int) -> List[Window]:
    """An nh x nw grid of windows over an h x w map, row-major (sizes differ by at most 1)."""
    ys = [round(i * h / nh) for i in range(nh + 1)]
    xs = [round(i * w / nw) for i in range(nw + 1)]
    return [Window(ys[i], ys[i + 1], xs[j], xs[j + 1]) for i in range(nh) for j in range(nw)]


def _is_spatial(shape: Sequence[int]) -> bool:
    return len(shape) == 4 and shape[0] == 1


def _whole_operand(step: Step, k: int) -> bool:
    """Whether input k of a binary step is broadcast over the spatial axes (read whole, e.g. an SE gate)."""
    strides = step.attrs[f"input{k + 1}_strides"]
    return strides[1] == 0 and strides[2] == 0


def _refusal(graph: KernelGraph, step: Step) -> Optional[str]:
    """Why ``step`` cannot be part of a patch stage (None: it can)."""
    out = graph.tensors[step.output]
    if step.notes.get("patch_of") is not None:
        return "it already runs patch by patch"
    if step.kernel not in PATCHABLE:
        return "it is not spatially local (or has no patch form)"
    if not _is_spatial(out.shape) or out.shape[1] * out.shape[2] < 2:
        return f"its output {out.shape} is not an NHWC map of batch 1"
    if graph.tensors[step.output].view_of is not None:
        return "it writes in place"
    if step.kernel in BINARY:
        for k, i in enumerate(step.inputs):
            if graph.tensors[i].kind == "constant" and not _whole_operand(step, k):
                return "a constant operand varies over the map"
            strides = step.attrs[f"input{k + 1}_strides"]
            if (strides[1] == 0) != (strides[2] == 0):
                return "it broadcasts along one spatial axis only"
    if step.kernel in CONCAT and (step.attrs["inner"] != 1 or step.attrs["outer"] != out.shape[1] * out.shape[2]):
        return "it does not concatenate along channels"
    return None


@dataclasses.dataclass
class Stage:
    """Steps ``first..last`` (schedule order) run patch by patch."""

    first: int
    last: int
    sources: List[int]  # full tensors read through windows (produced before the stage)
    whole: List[int]  # full tensors read whole (broadcast operands)
    output: int

    @property
    def steps(self) -> range:
        return range(self.first, self.last + 1)


def find_stages(graph: KernelGraph) -> Tuple[List[Stage], Dict[int, str]]:
    """Every run of steps that can run patch by patch, and per step the reason it cannot
    be in a stage (for the report when nothing is patched)."""
    n = len(graph.steps)
    refusals = {s: r for s, step in enumerate(graph.steps) if (r := _refusal(graph, step)) is not None}
    last_use: Dict[int, int] = {}
    for s, step in enumerate(graph.steps):
        for i in step.inputs:
            last_use[graph.root(i)] = s
    outputs = {graph.root(t) for t in graph.outputs}
    stages = []
    for first in range(n):
        produced: Dict[int, int] = {}
        sources, whole = [], []
        for last in range(first, n):
            step = graph.steps[last]
            if last in refusals:
                break
            ok = True
            for k, i in enumerate(step.inputs):
                t = graph.tensors[i]
                if t.kind == "constant":
                    continue
                if i in produced:
                    continue
                if graph.root(i) in produced:
                    ok = False  # a view of a stage tensor
                    break
                if step.kernel in BINARY and _whole_operand(step, k):
                    whole.append(i) if i not in whole else None
                elif _is_spatial(t.shape):
                    sources.append(i) if i not in sources else None
                else:
                    ok = False
                    break
            if not ok:
                break
            produced[step.output] = last
            if last == first:
                continue
            crossing = {t for t in produced if last_use.get(t, -1) > last or t in outputs}
            if crossing == {step.output} and not (set(sources) & set(whole)):
                stages.append(Stage(first, last, list(sources), list(whole), step.output))
    return stages, refusals


def stage_windows(graph: KernelGraph, stage: Stage, out_window: Window) -> Dict[int, Window]:
    """Window of every stage tensor and source needed for one patch of the stage output."""
    need: Dict[int, Window] = {stage.output: out_window}
    for s in reversed(stage.steps):
        step = graph.steps[s]
        if step.output not in need:
            continue
        for k, i in enumerate(step.inputs):
            if graph.tensors[i].kind == "constant" or i in stage.whole:
                continue
            _, h, w, _ = graph.tensors[i].shape
            need[i] = input_window(step.kernel, step.attrs, need[step.output], h, w).union(need.get(i))
    return need


def _per_pixel_macs(step: Step, shape: Sequence[int]) -> float:
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
                extra += _per_pixel_macs(step, graph.tensors[step.output].shape) * w.h * w.w
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


class _PatchedStage:
    """The kernel calls of one patched stage."""

    def __init__(self, graph: KernelGraph, stage: Stage, plan: PatchPlan):
        self.graph = graph
        self.stage = stage
        self.plan = plan
        self.macs = 0

    def _shape(self, t: int) -> List[int]:
        return self.graph.tensors[t].shape

    def calls(self) -> List[Tuple[str, List, Dict, List[int], str, str]]:
        """(kernel, tensor args, attrs, out shape, out dtype, name) of the patched stage.

        Tensor args are ("tensor", t) for a full tensor of the graph (sources,
        whole operands), ("local", k) for the k-th call's output, ("stage",)
        for the stage output buffer, or a constant's position ("const", step, k).
        Names derive from the tensors' (the model's) names: ``<t>[patch k]`` is
        patch k (row-major in the grid) of tensor t, ``<src>[window k of
        <out>]`` the window of a source patch k of stage <out> reads (a
        tensor may be the source of several stages), ``<t>[patch k crop]`` the
        part of it a step reads, ``<t>[patch k new]`` the columns patch k
        computes when the rest comes from the halo cache ``<t>[patch k halo]``
        (kept by the patch before it; the two are pasted into ``<t>[patch k
        buffer]``), ``<out>[paste k]`` the stage output once patch k is pasted
        into it.
        """
        g, stage, plan = self.graph, self.stage, self.plan
        calls: List[Tuple[str, List, Dict, List[int], str, str]] = []
        out_shape = self._shape(stage.output)
        _, H, W, C = out_shape
        name = lambda t: g.tensors[t].name  # noqa: E731
        calls.append(("te_buffer", [], {}, out_shape, "int8", name(stage.output)))
        halo: Dict[int, int] = {}  # tensor -> call keeping the columns the next patch reuses
        for p, patch in enumerate(plan.patches):
            need, comp = plan.need[p], plan.computed[p]
            local_of: Dict[int, int] = {}  # tensor -> index of the call producing its patch buffer
            crops: Dict[int, int] = {}  # tensor -> crops of its patch buffer so far (unique names)
            for src in stage.sources:
                if src not in need:
                    continue
                sw = need[src]
                _, _, sw_full, sc = self._shape(src)
                item = np.dtype(g.tensors[src].dtype).itemsize
                calls.append(("te_crop_s8", [("tensor", src)], dict(
                    src_stride=sw_full * sc * item, row_bytes=sw.w * sc * item, rows=sw.h,
                    _in_offsets=[(sw.y0 * sw_full + sw.x0) * sc * item]), [1, sw.h, sw.w, sc],
                    g.tensors[src].dtype, f"{name(src)}[window {p} of {name(stage.output)}]"))
                local_of[src] = len(calls) - 1
            next_halo: Dict[int, int] = {}
            for s in stage.steps:
                step = g.steps[s]
                t = step.output
                if t not in need:
                    continue
                ow, cw = need[t], comp[t]
                oc = self._shape(t)[3]
                if cw.w <= 0:  # every column was computed by the patch to the left
                    local_of[t] = halo[t]
                elif cw == ow:
                    local_of[t] = self._step_call(calls, s, step, cw, need, local_of, crops, p, "")
                else:
                    new = self._step_call(calls, s, step, cw, need, local_of, crops, p, " new")
                    local_of[t] = self._assemble(calls, t, ow, cw, halo[t], new, p)
                right = plan.right(p)
                if right is not None and t != stage.output and t in plan.need[right]:
                    keep_x0 = plan.need[right][t].x0
                    if keep_x0 < ow.x1:
                        calls.append(("te_crop_s8", [("local", local_of[t])], dict(
                            src_stride=ow.w * oc, row_bytes=(ow.x1 - keep_x0) * oc, rows=ow.h,
                            _in_offsets=[(keep_x0 - ow.x0) * oc]), [1, ow.h, ow.x1 - keep_x0, oc], "int8",
                            f"{name(t)}[patch {right} halo]"))
                        next_halo[t] = len(calls) - 1
            halo = next_halo
            calls.append(("te_paste_s8", [("stage",), ("local", local_of[stage.output])], dict(
                row_bytes=patch.w * C, rows=patch.h, dst_stride=W * C,
                _inout_offset=(patch.y0 * W + patch.x0) * C), out_shape, "int8", f"{name(stage.output)}[paste {p}]"))
        return calls

    def _step_call(self, calls, s: int, step: Step, ow: Window, need, local_of, crops, p: int, suffix: str) -> int:
        """Append the call of ``step`` computing its output window ``ow``; returns its index."""
        g, stage = self.graph, self.stage
        name = lambda t: g.tensors[t].name  # noqa: E731
        # The copy keeps the step's notes (op type, ...) as "_" keys, which
        # make_kernel_call files apart from the parameters again.
        args, attrs = [], dict(step.attrs, **{"_" + k: v for k, v in step.notes.items()})
        oc = self._shape(step.output)[3]
        for k, i in enumerate(step.inputs):
            if g.tensors[i].kind == "constant":
                args.append(("const", s, k))
                continue
            if i in stage.whole:
                args.append(("tensor", i))
                continue
            have = need[i]
            _, ih, iw, ic = self._shape(i)
            want = input_window(step.kernel, step.attrs, ow, ih, iw)
            item = np.dtype(g.tensors[i].dtype).itemsize
            offset = ((want.y0 - have.y0) * have.w + (want.x0 - have.x0)) * ic * item
            if step.kernel in BINARY:
                # Read a sub-window of a larger patch buffer through strides.
                attrs[f"input{k + 1}_strides"] = [have.h * have.w * ic, have.w * ic, ic, 1]
                offs = attrs.setdefault("_in_offsets", [0] * len(step.inputs))
                offs[k] = offset
                args.append(("local", local_of[i]))
                continue
            if have != want:
                calls.append(("te_crop_s8", [("local", local_of[i])], dict(
                    src_stride=have.w * ic * item, row_bytes=want.w * ic * item, rows=want.h,
                    _in_offsets=[offset]), [1, want.h, want.w, ic], g.tensors[i].dtype,
                    f"{name(i)}[patch {p} crop{_nth(crops, i)}]"))
                args.append(("local", len(calls) - 1))
            else:
                args.append(("local", local_of[i]))
            if step.kernel in WINDOWED:
                kh, kw, sh, swd, dh, dw, pt, pl = _geometry(step.attrs, step.kernel)
                attrs.update(input_h=want.h, input_w=want.w)
                attrs["pad_top"] = pt + want.y0 - ow.y0 * sh
                attrs["pad_left"] = pl + want.x0 - ow.x0 * swd
        if step.kernel in WINDOWED:
            attrs.update(output_h=ow.h, output_w=ow.w)
        elif step.kernel in POINTWISE:
            attrs["size"] = ow.h * ow.w * oc
        elif step.kernel in BINARY:
            attrs["dims"] = [1, ow.h, ow.w, oc]
        elif step.kernel in CONCAT:
            attrs["outer"] = ow.h * ow.w
        if "batch" in attrs:
            attrs["batch"] = 1
        self.macs += kernel_macs(step.kernel, attrs)
        calls.append((step.kernel, args, attrs, [1, ow.h, ow.w, oc], g.tensors[step.output].dtype,
                      f"{name(step.output)}[patch {p}{suffix}]"))
        return len(calls) - 1

    def _assemble(self, calls, t: int, ow: Window, cw: Window, halo: int, new: int, p: int) -> int:
        """The patch's full window of ``t``: the cached columns, then the computed ones."""
        oc = self._shape(t)[3]
        name = self.graph.tensors[t].name
        kept = cw.x0 - ow.x0
        calls.append(("te_buffer", [], {}, [1, ow.h, ow.w, oc], "int8", f"{name}[patch {p} buffer]"))
        buf = len(calls) - 1
        for src, width, x, label in ((halo, kept, 0, f"patch {p} halo pasted"), (new, cw.w, kept, f"patch {p}")):
            calls.append(("te_paste_s8", [("local", buf), ("local", src)], dict(
                row_bytes=width * oc, rows=ow.h, dst_stride=ow.w * oc, _inout_offset=x * oc),
                [1, ow.h, ow.w, oc], "int8", f"{name}[{label}]"))
            buf = len(calls) - 1
        return buf


def _nth(counts: Dict[int, int], key: int) -> str:
    """'' the first time ``key`` is counted, then ' 2', ' 3', ..."""
    counts[key] = counts.get(key, 0) + 1
    return "" if counts[key] == 1 else f" {counts[key]}"


def build_patched(func: relax.Function, graph: KernelGraph, stage: Stage, plan: PatchPlan) -> relax.Function:
    """``func`` with ``stage`` replaced by its patched version (``plan``)."""
    step_bindings = [b for b in bindings(func) if parse_kernel_call(b.value) is not None]
    stage_vars = {step_bindings[s].var for s in stage.steps}
    calls = _PatchedStage(graph, stage, plan).calls()
    out_var = step_bindings[stage.last].var
    ret_vars = set(relax.analysis.free_vars(func.body.body))
    bb = relax.BlockBuilder()
    # private=True: keep the original attrs (and global symbol, or its absence) as they are.
    with bb.function("f", list(func.params), attrs=function_attrs(func), pure=bool(func.is_pure), private=True):
        with bb.dataflow():
            remap: Dict[relax.Var, relax.Expr] = {}
            for b in bindings(func):
                if b.var.same_as(out_var):
                    # Where the stage ends: every source is bound by then.
                    remap[out_var] = _emit_stage(bb, calls, step_bindings, graph, remap, stage.output)
                    continue
                if b.var in stage_vars:
                    continue
                value = substitute(b.value, remap)
                emit = bb.emit_output if b.var in ret_vars else bb.emit
                remap[b.var] = emit(value, name_hint=b.var.name)
            ret = substitute(func.body.body, remap)
        bb.emit_func_output(ret)
    return bb.get()["f"]


def _emit_stage(bb, calls, step_bindings, graph, remap, stage_output: int) -> relax.Var:
    """Emit the patched stage's calls; returns the Var of the complete stage output."""
    emitted: List[relax.Expr] = []
    stage = None
    for kernel, args, kattrs, shape, dtype, name in calls:
        targs = []
        for a in args:
            if a[0] == "tensor":
                var = graph.tensors[a[1]].var
                targs.append(remap.get(var, var))
            elif a[0] == "stage":
                targs.append(stage)
            elif a[0] == "local":
                targs.append(emitted[a[1]])
            else:  # ("const", step, k): the step's own constant
                targs.append(parse_kernel_call(step_bindings[a[1]].value).tensors[a[2]])
        # Every call of a patched stage notes the stage output it builds (not patched again).
        kattrs = dict(kattrs, _patch_of=graph.tensors[stage_output].name)
        v = bb.emit(make_kernel_call(kernel, targs, kattrs, shape, dtype), name_hint=name)
        emitted.append(v)
        if len(emitted) == 1 or args[:1] == [("stage",)]:  # the stage output's buffer, and each paste into it
            stage = v
    return stage


def _grids(H: int, W: int, max_patches: int, patches: Optional[int]) -> List[Tuple[int, int]]:
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


def _rank(graph: KernelGraph, plan, stages: List[Stage], max_patches: int, patches: Optional[int],
          mac_budget: float, halo_cache: str):
    """The BUILT_PER_ROUND (estimate, extra MACs, stage, PatchPlan) of least estimated
    arena within ``mac_budget``, and the extra MACs of every configuration evaluated.

    Stages are visited by a lower bound of their arena (live bytes outside
    them; their full sources and output), so that most are never evaluated.
    ``halo_cache``: "auto" weighs both forms of every grid, "on"/"off" one."""
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

    forms = {"auto": (False, True), "on": (True,), "off": (False,)}[halo_cache]
    ranked: List[Tuple] = []
    evaluated: List[int] = []
    for lb, _, stage in sorted(((bound(st), k, st) for k, st in enumerate(stages)), key=lambda r: r[:2]):
        if len(ranked) >= BUILT_PER_ROUND and lb >= ranked[-1][0][0]:
            break
        _, H, W, _ = graph.tensors[stage.output].shape
        for nh, nw in _grids(H, W, max_patches, patches):
            base, base_inside = estimate_arena(graph, plan, stage, nh, nw)
            for cache in forms:
                if cache and nw == 1:
                    continue
                pp = patch_plan(graph, stage, nh, nw, cache)
                held = cache_bytes(graph, stage, pp) if cache else 0
                est = (max(base, base_inside + held),)
                if len(ranked) >= BUILT_PER_ROUND and est >= ranked[-1][0]:
                    continue
                extra = stage_extra_macs(graph, stage, pp)
                evaluated.append(extra)
                if extra > mac_budget + 1e-9:
                    continue
                ranked.append((est, extra, stage, pp))
                ranked.sort(key=lambda r: (r[0], r[1], r[2].first, r[2].last, len(r[3].patches), r[3].cache))
                del ranked[BUILT_PER_ROUND:]
    return ranked, evaluated


class _CoverSearch:
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
        self.forms = {"auto": (False, True), "on": (True,), "off": (False,)}[halo_cache]
        self._options: Dict[Tuple[int, int], List[Tuple[int, int, int, int, bool]]] = {}
        self._extra: Dict[Tuple, int] = {}

    def options(self, st: Stage) -> List[Tuple[int, int, int, int, bool]]:
        """(estimated in-stage peak, grid size, nh, nw, cache) of every grid, by estimate."""
        key = (st.first, st.last)
        if key not in self._options:
            _, H, W, _ = self.graph.tensors[st.output].shape
            out = []
            for nh, nw in _grids(H, W, self.max_patches, None):
                _, inside = estimate_arena(self.graph, self.plan, st, nh, nw)
                for cache in self.forms:
                    if cache and nw == 1:
                        continue
                    held = cache_bytes(self.graph, st, patch_plan(self.graph, st, nh, nw, True)) if cache else 0
                    out.append((inside + held, nh * nw, nh, nw, cache))
            self._options[key] = sorted(out)
        return self._options[key]

    def extra(self, st: Stage, nh: int, nw: int, cache: bool) -> int:
        key = (st.first, st.last, nh, nw, cache)
        if key not in self._extra:
            self._extra[key] = stage_extra_macs(self.graph, st, patch_plan(self.graph, st, nh, nw, cache))
        return self._extra[key]

    def cover(self, target: int, budget: float, max_stages: int):
        """[(stage, nh, nw, cache, extra)] bringing every step to ``target`` or below, or None."""
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

    def search(self, budget: float, max_stages: int, ceiling: int):
        """The stages for the least target below ``ceiling`` that the budget affords (None if none)."""
        lo, hi, best = 0, ceiling - 1, None
        while lo <= hi and hi > 0:
            mid = (lo + hi) // 2
            found = self.cover(mid, budget, max_stages)
            if found is not None:
                best, hi = found, mid - TARGET_STEP
            else:
                lo = mid + TARGET_STEP
        return best


#: Bisection resolution of _CoverSearch's target arena (bytes).
TARGET_STEP = 64


def _apply_all(func: relax.Function, chosen) -> Tuple[relax.Function, KernelGraph]:
    """``func`` with every chosen stage patched: the last first, so that the step and
    tensor indices of the earlier ones stay valid."""
    graph = KernelGraph.from_relax(func)
    for st, nh, nw, cache, _ in sorted(chosen, key=lambda c: -c[0].first):
        func = build_patched(func, graph, st, patch_plan(graph, st, nh, nw, cache))
        graph = KernelGraph.from_relax(func)
    return func, graph


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
    # grid, extra MACs, and the halo-cache estimate (not generated code).
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
    ``halo_cache`` "auto" weighs caching the halo columns between horizontally
    adjacent patches against recomputing them, "on"/"off" force one;
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
        ranked, evaluated = _rank(graph, plan, stages, max_patches, patches, max_mac_overhead * total_macs - spent,
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
        search = _CoverSearch(first_graph, first_plan, find_stages(first_graph)[0], max_patches, halo_cache)
        together = search.search(max_mac_overhead * total_macs, max_stages, current)
        if together:
            new_func, new_graph = _apply_all(original, together)
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
    other = patch_plan(graph, stage, nh, pp.nw, not pp.cache)
    cached, recomputed = (pp, other) if pp.cache else (other, pp)
    return dict(
        first_op=graph.steps[stage.first].name, last_op=graph.steps[stage.last].name,
        first_index=stage.first, last_index=stage.last, grid=[nh, pp.nw], halo_cache=pp.cache,
        extra_macs=extra, mac_overhead=extra / total_macs, arena_bytes=arena,
        # The same grid both ways: what the halo cache costs and saves.
        halo_cache_bytes=cache_bytes(graph, stage, cached),
        recompute_mac_overhead=stage_extra_macs(graph, stage, recomputed) / total_macs,
        halo_cache_mac_overhead=stage_extra_macs(graph, stage, cached) / total_macs)


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
    axis; ``max_stages`` (default 16); ``halo_cache`` ("auto", "on" or "off":
    reuse the halo columns of the patch to the left instead of recomputing
    them); ``split``/``patches`` force one stage (step index of its last op,
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
