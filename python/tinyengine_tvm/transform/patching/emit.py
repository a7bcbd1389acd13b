"""The kernel calls of a patched stage, and the function with a stage replaced by them."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np
from tvm import relax

from ...kernel_graph import KernelGraph, Step
from ...kernels import macs as kernel_macs
from ..kernel_call import make_kernel_call, parse_kernel_call
from ..relax_utils import bindings, function_attrs, substitute
from .geometry import BINARY, CONCAT, PAD, POINTWISE, RESIZE, WINDOWED, Window, input_window, window_geometry
from .plan import PatchPlan, kept_windows
from .stages import Stage


class _PatchedStage:
    """The kernel calls of one patched stage."""

    def __init__(self, graph: KernelGraph, stage: Stage, plan: PatchPlan):
        self.graph = graph
        self.stage = stage
        self.plan = plan
        self.macs = 0

    def _shape(self, t: int) -> List[int]:
        return self.graph.tensors[t].shape

    def _item(self, t: int) -> int:
        """Bytes per element of ``t`` (crops and pastes copy bytes)."""
        return np.dtype(self.graph.tensors[t].dtype).itemsize

    def calls(self) -> List[Tuple[str, List, Dict, List[int], str, str]]:
        """(kernel, tensor args, attrs, out shape, out dtype, name) of the patched stage.

        Tensor args are ("tensor", t) for a full tensor of the graph (sources,
        whole operands), ("local", k) for the k-th call's output, ("stage",)
        for the stage output buffer, or a constant's position ("const", step, k).
        Names derive from the tensors' (the model's) names: ``<t>[patch k]`` is
        patch k (row-major in the grid) of tensor t, ``<src>[window k of
        <out>]`` the window of a source patch k of stage <out> reads (a
        tensor may be the source of several stages), ``<t>[patch k crop]`` the
        part of it a step reads, ``<t>[patch k new]`` the part patch k computes
        when the rest comes from the halo cache: ``<t>[patch k halo]`` (columns
        kept by the patch to its left) and ``<t>[patch k rows]`` (rows kept by
        the patch above); the parts are pasted into ``<t>[patch k buffer]``.
        ``<out>[paste k]`` is the stage output once patch k is pasted into it.
        """
        g, stage, plan = self.graph, self.stage, self.plan
        calls: List[Tuple[str, List, Dict, List[int], str, str]] = []
        out_shape = self._shape(stage.output)
        _, H, W, C = out_shape
        name = lambda t: g.tensors[t].name  # noqa: E731
        dtype, out_item = g.tensors[stage.output].dtype, self._item(stage.output)
        calls.append(("te_buffer", [], {}, out_shape, dtype, name(stage.output)))
        halo: Dict[int, int] = {}  # tensor -> call keeping the columns the next patch reuses
        rows_kept: Dict[Tuple[int, int], int] = {}  # (grid column, tensor) -> call keeping rows for the patch below
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
                if cw == ow:
                    local_of[t] = self._step_call(calls, s, step, cw, need, local_of, crops, p, "")
                else:
                    # The window from up to three parts: the rows kept by the patch
                    # above, the columns kept by the patch to the left, the rest computed.
                    parts = []
                    if cw.y0 > ow.y0:
                        parts.append((rows_kept.pop((p % plan.nw, t)), Window(ow.y0, min(cw.y0, ow.y1), ow.x0, ow.x1),
                                      "rows"))
                    if cw.x0 > ow.x0 and cw.h > 0:
                        parts.append((halo[t], Window(cw.y0, ow.y1, ow.x0, cw.x0), "halo"))
                    if cw.h > 0 and cw.w > 0:
                        parts.append((self._step_call(calls, s, step, cw, need, local_of, crops, p, " new"), cw, ""))
                    local_of[t] = self._assemble(calls, t, ow, parts, p)
                cols, rows = kept_windows(stage, plan, p, t)
                if cols is not None:
                    next_halo[t] = self._keep(calls, t, ow, cols, local_of[t], f"patch {plan.right(p)} halo")
                if rows is not None:
                    rows_kept[(p % plan.nw, t)] = self._keep(calls, t, ow, rows, local_of[t],
                                                             f"patch {plan.below(p)} rows")
            halo = next_halo
            calls.append(("te_paste_s8", [("stage",), ("local", local_of[stage.output])], dict(
                row_bytes=patch.w * C * out_item, rows=patch.h, dst_stride=W * C * out_item,
                _inout_offset=(patch.y0 * W + patch.x0) * C * out_item), out_shape, dtype,
                f"{name(stage.output)}[paste {p}]"))
        return calls

    def _keep(self, calls, t: int, ow: Window, keep: Window, local: int, label: str) -> int:
        """Append the crop of ``keep`` out of the patch buffer ``local`` (window ``ow`` of ``t``)."""
        oc, item = self._shape(t)[3], self._item(t)
        calls.append(("te_crop_s8", [("local", local)], dict(
            src_stride=ow.w * oc * item, row_bytes=keep.w * oc * item, rows=keep.h,
            _in_offsets=[((keep.y0 - ow.y0) * ow.w + keep.x0 - ow.x0) * oc * item]), [1, keep.h, keep.w, oc],
            self.graph.tensors[t].dtype, f"{self.graph.tensors[t].name}[{label}]"))
        return len(calls) - 1

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
                kh, kw, sh, swd, dh, dw, pt, pl = window_geometry(step.attrs, step.kernel)
                attrs.update(input_h=want.h, input_w=want.w)
                attrs["pad_top"] = pt + want.y0 - ow.y0 * sh
                attrs["pad_left"] = pl + want.x0 - ow.x0 * swd
            elif step.kernel in PAD:
                # Padding of this window: rows/columns of it outside the input window
                # (negative when the window read is beside it: all padding).
                before, after = list(step.attrs["before"]), list(step.attrs["after"])
                before[1] = want.y0 + step.attrs["before"][1] - ow.y0
                before[2] = want.x0 + step.attrs["before"][2] - ow.x0
                after[1] = ow.h - before[1] - want.h
                after[2] = ow.w - before[2] - want.w
                attrs.update(input_dims=[1, want.h, want.w, ic], before=before, after=after)
        if step.kernel in WINDOWED:
            attrs.update(output_h=ow.h, output_w=ow.w)
        elif step.kernel in POINTWISE:
            attrs["size"] = ow.h * ow.w * oc
        elif step.kernel in BINARY:
            attrs["dims"] = [1, ow.h, ow.w, oc]
        elif step.kernel in CONCAT:
            attrs["outer"] = ow.h * ow.w
        elif step.kernel in RESIZE:
            attrs.update(window_y0=ow.y0, window_x0=ow.x0, window_h=ow.h, window_w=ow.w)
            attrs.update(block_y0=want.y0, block_x0=want.x0, block_h=want.h, block_w=want.w)
        if "batch" in attrs:
            attrs["batch"] = 1
        self.macs += kernel_macs(step.kernel, attrs)
        calls.append((step.kernel, args, attrs, [1, ow.h, ow.w, oc], g.tensors[step.output].dtype,
                      f"{name(step.output)}[patch {p}{suffix}]"))
        return len(calls) - 1

    def _assemble(self, calls, t: int, ow: Window, parts, p: int) -> int:
        """The patch's window ``ow`` of ``t`` from (call, window, label) parts that tile it."""
        if len(parts) == 1 and parts[0][1] == ow:
            return parts[0][0]
        oc, item, dtype = self._shape(t)[3], self._item(t), self.graph.tensors[t].dtype
        name = self.graph.tensors[t].name
        calls.append(("te_buffer", [], {}, [1, ow.h, ow.w, oc], dtype, f"{name}[patch {p} buffer]"))
        buf = len(calls) - 1
        for src, w, label in parts:
            calls.append(("te_paste_s8", [("local", buf), ("local", src)], dict(
                row_bytes=w.w * oc * item, rows=w.h, dst_stride=ow.w * oc * item,
                _inout_offset=((w.y0 - ow.y0) * ow.w + w.x0 - ow.x0) * oc * item),
                [1, ow.h, ow.w, oc], dtype, f"{name}[patch {p}{' ' + label + ' pasted' if label else ''}]"))
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
