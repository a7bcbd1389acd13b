"""Kernel selection: Cortex-M optimized kernels chosen at code-generation time.

``select_kernels(graph, core)`` rewrites the steps of a planned-to-be
:class:`KernelGraph` whose shapes an optimized kernel of ``src/kernels/arm/``
handles, for a core with the DSP extension (Cortex-M4, M7, M55): the step
calls the optimized kernel and its constants are re-laid-out here, in Python,
for it (constants belong to the generated code, so packing them costs nothing
at run time).  Everything else keeps its portable kernel, which stays the
reference and the fallback; each step whose optimized kernel was refused
records why in ``attrs["_kernel_note"]``.

Bit-exactness.  The optimized kernels change only how the int32 accumulators
are formed (int8 values packed in pairs for SMLAD, ``input_offset`` folded
into the bias) and compute the requantization with a shorter instruction
sequence that is proven equal to ``te::multiply_by_quantized_multiplier`` (see
``src/kernels/arm/arm_dsp.h``) under conditions checked here per channel:
a non-negative multiplier in [2^30, 2^31) (or 0), a negative shift, and an
accumulator bound (from the weights and bias) that keeps the rounding add from
overflowing.  A layer failing them keeps its portable kernel.

The generated project builds everywhere: the optimized sources fall back to
plain C (same algorithm, same results) when ``__ARM_FEATURE_DSP`` is not
defined, so a model compiled for a Cortex-M still runs on the host.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np

from ..kernel_graph import KernelGraph, Step, Tensor

#: Cores whose optimized kernels exist (all three have the DSP extension).
DSP_CORES = ("cortex-m4", "cortex-m7", "cortex-m55")

_I32 = np.int64(1) << 32


class _Refuse(Exception):
    """This step keeps its portable kernel (the message says why)."""


# --------------------------------------------------------------------------- requantization
def _to_i32(values) -> np.ndarray:
    """Wrap int64 values to int32 (two's complement), as the C accumulators do."""
    v = np.asarray(values, dtype=np.int64) & 0xFFFFFFFF
    return np.where(v >= (1 << 31), v - (1 << 32), v).astype(np.int32)


def pack_requant(bias_eff: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                 acc_bound: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel {bias_eff, m2, rounding, right_shift} (int32 [C, 4]) of the
    optimized kernels, and a bool mask of the channels whose multiplier is 0
    (their weights and bias must be zeroed by the caller).

    ``acc_bound`` bounds |accumulator| per channel (TFLM's accumulator, bias
    included).  Raises _Refuse where the fast requantization would not be exact.
    """
    mult = np.asarray(multiplier, dtype=np.int64).reshape(-1)
    sh = np.asarray(shift, dtype=np.int64).reshape(-1)
    n = mult.size
    bias_eff = np.broadcast_to(np.asarray(bias_eff, dtype=np.int64), (n,)).copy()
    bound = np.broadcast_to(np.asarray(acc_bound, dtype=np.int64), (n,))
    dead = mult == 0
    if np.any(mult < 0) or np.any(mult >= (1 << 31)):
        raise _Refuse("a requantization multiplier is outside [0, 2^31)")
    live = ~dead
    if np.any(live & (mult < (1 << 30))):
        raise _Refuse("a requantization multiplier is below 2^30 (not normalized)")
    if np.any(live & (sh >= 0)):
        raise _Refuse("a requantization shift is >= 0 (scale >= 0.5)")
    if np.any(live & (sh < -31)):
        raise _Refuse("a requantization shift is below -31")
    rs = np.where(live, -sh, 1)
    m = np.where(live, mult, 1 << 30)
    rounding = np.int64(1) << (rs - 1)
    # |y| <= floor((B * m + 2^30) / 2^31); y + rounding must stay below 2^31.
    y_max = (bound.astype(object) * m.astype(object) + (1 << 30)) // (1 << 31)
    if any(int(y) + int(r) >= (1 << 31) for y, r, l in zip(y_max, rounding, live) if l):
        raise _Refuse("the accumulator bound is too large for the fast rounding")
    bias_eff[dead] = 0
    q = np.stack([_to_i32(bias_eff), _to_i32(2 * m - _I32), rounding.astype(np.int32), rs.astype(np.int32)], axis=1)
    return np.ascontiguousarray(q.astype(np.int32)), dead


def _input_range(input_offset: int) -> int:
    """max |x + input_offset| over int8 x."""
    return max(abs(-128 + input_offset), abs(127 + input_offset))


# --------------------------------------------------------------------------- graph editing
class _Editor:
    """Adds constants to a graph and rewrites steps; compacts at the end."""

    def __init__(self, graph: KernelGraph):
        self.graph = graph
        self._made: Dict[Tuple, int] = {}

    def const(self, step: Step, role: str, data: np.ndarray) -> int:
        """A new constant tensor; identical packings (the same layer's weights in
        every patch of patch-based inference) share one."""
        data = np.ascontiguousarray(data)
        key = (str(data.dtype), data.shape, data.tobytes())
        if key in self._made:
            return self._made[key]
        t = Tensor(len(self.graph.tensors), f"{step.name}_{role}", list(data.shape), str(data.dtype),
                   "constant", data)
        self.graph.tensors.append(t)
        self._made[key] = t.index
        return t.index

    def data(self, index: int) -> Optional[np.ndarray]:
        t = self.graph.tensors[index]
        return t.data if t.kind == "constant" else None

    def rewrite(self, step: Step, kernel: str, keep: List[int], constants: List[np.ndarray],
                roles: List[str], attrs: Dict) -> None:
        """Make ``step`` call ``kernel`` on its inputs at positions ``keep``
        followed by new ``constants``; ``attrs`` are added to its attributes."""
        old_offsets = step.attrs.get("_in_offsets")
        new_inputs = [step.inputs[k] for k in keep] + [self.const(step, r, c) for r, c in zip(roles, constants)]
        new_attrs = dict(step.attrs)
        new_attrs.update(attrs)
        new_attrs["_portable_kernel"] = step.kernel
        if old_offsets is not None:
            new_attrs["_in_offsets"] = [old_offsets[k] for k in keep] + [0] * len(constants)
        step.kernel, step.inputs, step.attrs = kernel, new_inputs, new_attrs


def _compact(graph: KernelGraph) -> KernelGraph:
    """A copy of ``graph`` without the constants no step reads any more."""
    used = set()
    for s in graph.steps:
        used.update(s.inputs)
        used.add(s.output)
    keep = [t for t in graph.tensors if t.kind != "constant" or t.index in used]
    new_index = {t.index: k for k, t in enumerate(keep)}
    tensors = [dataclasses.replace(t, index=new_index[t.index],
                                   view_of=None if t.view_of is None else new_index[t.view_of]) for t in keep]
    steps = [dataclasses.replace(s, inputs=[new_index[i] for i in s.inputs], output=new_index[s.output])
             for s in graph.steps]
    return KernelGraph(tensors, steps, [new_index[i] for i in graph.inputs], [new_index[i] for i in graph.outputs])


# --------------------------------------------------------------------------- convolution
#: Filters of at most this many bytes once widened to int16 use te_arm_conv2d_w16_s8
#: (first layers, tiny pointwise layers): a few hundred bytes of flash for
#: one unpacking instruction less per four multiply-accumulates.
W16_MAX_BYTES = 4096


def conv_k4(a: Dict) -> int:
    """k4, the length of a packed filter row of te_arm_conv2d_s8 (K rounded up to whole
    groups of 4), as tinyengine_kernels.h defines it at te_arm_conv2d_s8."""
    seg = a["kernel_w"] * a["input_c"]
    return a["kernel_h"] * (seg // 4 * 4) + (a["kernel_h"] * (seg % 4) + 3) // 4 * 4


def conv_k_order(a: Dict) -> np.ndarray:
    """For each packed K position, the OHWI-flattened filter index it holds (-1: zero).

    The "conv K order" defined in tinyengine_kernels.h at te_arm_conv2d_s8: a
    filter row (kernel_w * input_c = 4a + b values, contiguous bytes in the
    input when dilation_w is 1) gives its 4a leading values as whole groups;
    the b trailing values of all rows follow together (arm_conv_s8.cc's
    fill_block_small reads a column in this order).  Natural order when b == 0.
    """
    kh, seg = a["kernel_h"], a["kernel_w"] * a["input_c"]
    a4, b = seg // 4 * 4, seg % 4
    order = [ky * seg + i for ky in range(kh) for i in range(a4)]
    order += [ky * seg + a4 + j for ky in range(kh) for j in range(b)]
    return np.array(order + [-1] * (conv_k4(a) - len(order)), dtype=np.int64)


def pack_rows(q: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Per output channel [int32 bias][int8 row...][int32 m2, rounding, rs], as int8
    bytes (little-endian, the byte order of every Cortex-M and of the hosts): the
    record of te_arm_conv2d_s8 / te_arm_depthwise_conv2d_s8 in tinyengine_kernels.h."""
    n, width = rows.shape
    assert width % 4 == 0
    q = q.astype("<i4")
    head = q[:, :1].copy().view(np.int8)
    tail = q[:, 1:].copy().view(np.int8).reshape(n, 12)
    return np.concatenate([head, rows, tail], axis=1).reshape(-1)


def fold_output_offset(q: np.ndarray, acc_bound: np.ndarray, out_offset: int) -> bool:
    """Fold ``out_offset`` into the rounding terms of ``q`` (in place) when no
    rounding sum can overflow: (y + rounding - s + off * 2^rs) >> rs equals
    ((y + rounding - s) >> rs) + off exactly.  Returns whether it folded."""
    if out_offset == 0:
        return True
    m = (q[:, 1].astype(np.int64) + (1 << 32)) // 2
    rs = q[:, 3].astype(np.int64)
    bound = np.broadcast_to(np.asarray(acc_bound, dtype=np.int64), m.shape)
    y_max = (bound.astype(object) * m.astype(object) + (1 << 30)) // (1 << 31)
    add = [int(r) + out_offset * (1 << int(k)) for r, k in zip(q[:, 2], rs)]
    if any(int(y) + a >= (1 << 31) or -int(y) - 1 + a < -(1 << 31) for y, a in zip(y_max, add)):
        return False
    q[:, 2] = np.array(add, dtype=np.int64).astype(np.int32)
    return True


def _conv_constants(ed: _Editor, step: Step):
    x, w_i, b_i, m_i, s_i = step.inputs
    w, mult, shift = ed.data(w_i), ed.data(m_i), ed.data(s_i)
    if w is None or mult is None or shift is None:
        raise _Refuse("weights or requantization tables are not constants")
    bias = ed.data(b_i)
    if bias is None:
        raise _Refuse("bias is not a constant")
    return x, w, bias.astype(np.int64).reshape(-1), mult, shift


def _select_conv(ed: _Editor, step: Step) -> None:
    a = step.attrs
    x, w, bias, mult, shift = _conv_constants(ed, step)
    cout = a["output_c"]
    k = a["kernel_h"] * a["kernel_w"] * a["input_c"]
    k4 = conv_k4(a)
    wf = w.reshape(cout, k).astype(np.int64)
    off = int(a["input_offset"])
    bound = np.abs(bias) + _input_range(off) * np.abs(wf).sum(axis=1)
    q, dead = pack_requant(bias + off * wf.sum(axis=1), mult, shift, bound)
    order = conv_k_order(a)
    wk = w.reshape(cout, k)
    rows = np.where(order[None, :] >= 0, wk[:, np.maximum(order, 0)], 0).astype(np.int8)
    rows[dead] = 0
    attrs = {}
    if fold_output_offset(q, np.where(dead, 0, bound), int(a["output_offset"])):
        attrs["output_offset"] = 0
    kernel = "te_arm_conv2d_s8"
    if 2 * cout * k4 <= W16_MAX_BYTES:
        # small filter: store it widened to int16 in the columns' lane order
        # (k0, k2, k1, k3) per group, so the GEMM loads it without unpacking
        wide = rows.astype("<i2").reshape(cout, k4 // 4, 4)[:, :, [0, 2, 1, 3]].reshape(cout, k4)
        rows, kernel = np.ascontiguousarray(wide).view(np.int8), "te_arm_conv2d_w16_s8"
    ed.rewrite(step, kernel, [0], [pack_rows(q, rows)], ["packed"], attrs)


# --------------------------------------------------------------------------- depthwise
#: (kernel, stride) pairs with a specialized depthwise entry point.
DW_SPECIALIZED = {(3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 2)}


def dw_plane_bytes(a: Dict) -> int:
    """Scratch of the optimized depthwise kernels: one int16 plane of the padded
    input channel, then a line of outputs -- the formula of
    te_arm_depthwise_conv2d_s8_get_buffer_size() in tinyengine_kernels.h
    (tests/test_kernel_abi.py checks that the two agree)."""
    pw = (a["kernel_w"] + 1) // 2
    ow4 = (a["output_w"] + 3) // 4 * 4
    h = (a["output_h"] - 1) * a["stride_h"] + a["kernel_h"]
    w = ((ow4 - 1) * a["stride_w"] + 2 * pw + 2) // 2 * 2
    return 2 * h * w + ow4


def dw_kernel_name(a: Dict, inplace: bool) -> str:
    kh, kw, sh, sw = a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"]
    shape = f"_{kh}x{kw}s{sh}" if kh == kw and sh == sw and (kh, sh) in DW_SPECIALIZED else ""
    return f"te_arm_depthwise_conv2d{shape}{'_inplace' if inplace else ''}_s8"


def _select_depthwise(ed: _Editor, step: Step) -> None:
    a = step.attrs
    if a["depth_multiplier"] != 1:
        raise _Refuse("depth multiplier != 1")
    if a["dilation_h"] != 1 or a["dilation_w"] != 1:
        raise _Refuse("dilated depthwise convolution")
    x, w, bias, mult, shift = _conv_constants(ed, step)
    kh, kw, ch = a["kernel_h"], a["kernel_w"], a["output_c"]
    pw = (kw + 1) // 2
    taps = w.reshape(kh * kw, ch).T.astype(np.int64)  # [ch, kh*kw]
    off = int(a["input_offset"])
    bound = np.abs(bias) + _input_range(off) * np.abs(taps).sum(axis=1)
    q, dead = pack_requant(bias + off * taps.sum(axis=1), mult, shift, bound)
    words = (pw + 1) // 2
    pairs = np.zeros((ch, kh, 4 * words), dtype=np.int8)  # taps, zero-padded to whole words
    pairs[:, :, :kw] = taps.reshape(ch, kh, kw)
    pairs[dead] = 0
    # per word (p0.lo, p0.hi, p1.lo, p1.hi) -> (p0.lo, p1.lo, p0.hi, p1.hi): SXTB16 / SXTB16 ROR 8 give p0 / p1
    rows = pairs.reshape(ch, kh, words, 4)[:, :, :, [0, 2, 1, 3]].reshape(ch, -1)
    inplace = step.kernel == "te_depthwise_conv2d_inplace_s8"
    attrs = {}
    if fold_output_offset(q, np.where(dead, 0, bound), int(a["output_offset"])):
        attrs["output_offset"] = 0
    ed.rewrite(step, dw_kernel_name(a, inplace), [0], [pack_rows(q, rows)], ["packed"], attrs)


# --------------------------------------------------------------------------- fully connected
def _select_fc(ed: _Editor, step: Step) -> None:
    a = step.attrs
    if a["filter_offset"] != 0:
        raise _Refuse("asymmetric weights (filter_offset != 0)")
    x, w, bias, mult, shift = _conv_constants(ed, step)
    outs, depth = a["output_depth"], a["input_depth"]
    wf = w.reshape(outs, depth).astype(np.int64)
    off = int(a["input_offset"])
    bound = np.abs(bias) + _input_range(off) * np.abs(wf).sum(axis=1)
    mult = np.broadcast_to(np.asarray(mult).reshape(-1), (outs,))
    shift = np.broadcast_to(np.asarray(shift).reshape(-1), (outs,))
    q, dead = pack_requant(bias + off * wf.sum(axis=1), mult, shift, bound)
    k4 = (depth + 3) // 4 * 4
    blocks = (outs + 3) // 4
    rows = np.zeros((blocks * 4, k4), dtype=np.int8)
    rows[:outs, :depth] = w.reshape(outs, depth)
    rows[:outs][dead] = 0
    qq = np.zeros((blocks * 4, 4), dtype=np.int32)
    qq[:, 1], qq[:, 2], qq[:, 3] = -(1 << 31), 1, 1  # padding rows: m = 2^30, rs = 1, bias 0
    qq[:outs] = q
    out = []
    for blk in range(blocks):
        r = rows[4 * blk:4 * blk + 4]                       # [4, k4]
        inter = r.reshape(4, k4 // 4, 4).transpose(1, 0, 2).reshape(-1)  # [group][row][4]
        qb = qq[4 * blk:4 * blk + 4].astype("<i4")
        out += [qb[:, 0].copy().view(np.int8), inter, qb[:, 1:].copy().reshape(-1).view(np.int8)]
    ed.rewrite(step, "te_arm_fully_connected_s8", [0], [np.concatenate(out)], ["packed"], {})


# --------------------------------------------------------------------------- add
def _fast_output(mult: int, shift: int, what: str):
    """(m2, rounding, rs) of a rescaling by the fast requantization, or _Refuse."""
    if not (1 << 30) <= mult < (1 << 31):
        raise _Refuse(f"{what} multiplier outside [2^30, 2^31)")
    if not -31 <= shift <= -1:
        raise _Refuse(f"{what} shift outside [-31, -1]")
    rs = -shift
    return int(_to_i32([2 * mult - (1 << 32)])[0]), 1 << (rs - 1), rs


def add_table(offset: int, left_shift: int, multiplier: int, shift: int) -> np.ndarray:
    """int32 [256]: MultiplyByQuantizedMultiplier((x + offset) << left_shift, m, shift)
    for x = int8(i), TFLM's arithmetic (te_arm_add_s8's input tables)."""
    from ..quantization.fixed_point import multiply_by_quantized_multiplier

    xs = np.arange(256, dtype=np.int64)
    xs = np.where(xs >= 128, xs - 256, xs)
    return np.array([multiply_by_quantized_multiplier((int(x) + offset) * (1 << left_shift), multiplier, shift)
                     for x in xs], dtype=np.int32)


def _select_add(ed: _Editor, step: Step) -> None:
    a = step.attrs
    ls = int(a["left_shift"])
    tables = [add_table(int(a[f"input{k}_offset"]), ls, int(a[f"input{k}_multiplier"]), int(a[f"input{k}_shift"]))
              for k in (1, 2)]
    m2, rnd, rs = _fast_output(int(a["output_multiplier"]), int(a["output_shift"]), "output")
    m = (m2 + (1 << 32)) // 2
    bound = int(np.abs(tables[0].astype(np.int64)).max() + np.abs(tables[1].astype(np.int64)).max())
    if bound >= (1 << 31) or (bound * m + (1 << 30)) // (1 << 31) + rnd >= (1 << 31):
        raise _Refuse("output rescale rounding may overflow")
    fields = dict(output_m2=m2, output_rounding=rnd, output_shift=rs)
    kernel = "te_arm_add_inplace_s8" if step.kernel == "te_add_inplace_s8" else "te_arm_add_s8"
    ed.rewrite(step, kernel, [0, 1], tables, ["table1", "table2"], fields)


# --------------------------------------------------------------------------- driver
_HANDLERS: Dict[str, Callable[[_Editor, Step], None]] = {
    "te_conv2d_s8": _select_conv,
    "te_depthwise_conv2d_s8": _select_depthwise,
    "te_depthwise_conv2d_inplace_s8": _select_depthwise,
    "te_fully_connected_s8": _select_fc,
    "te_add_s8": _select_add,
    "te_add_inplace_s8": _select_add,
}


def select_kernels(graph: KernelGraph, core, keep_portable=()) -> Tuple[KernelGraph, Dict]:
    """Optimized kernels for ``core`` (a name or :class:`~tinyengine_tvm.targets.Core`).

    Returns the rewritten graph (constants the optimized kernels no longer read
    dropped) and a report: {"core": name, "optimized": number of steps,
    "refused": [(step name, portable kernel, reason)]}.  Cores without DSP
    keep the graph (and its portable kernels).  Steps whose indices are in
    ``keep_portable`` are left alone (the caller's memory policy).
    """
    from ..targets.cores import get_core

    c = get_core(core) if isinstance(core, str) else core
    report = {"core": c.name, "optimized": 0, "refused": []}
    if not c.dsp:
        return graph, report
    ed = _Editor(graph)
    for index, step in enumerate(graph.steps):
        handler = _HANDLERS.get(step.kernel)
        if handler is None:
            continue
        if index in keep_portable:
            report["refused"].append((step.name, step.kernel, "its scratch would raise the arena"))
            continue
        try:
            handler(ed, step)
            report["optimized"] += 1
        except _Refuse as why:
            step.attrs = dict(step.attrs, _kernel_note=f"portable: {why}")
            report["refused"].append((step.name, step.kernel, str(why)))
    return _compact(graph), report


__all__ = ["DSP_CORES", "select_kernels", "pack_requant", "pack_rows", "fold_output_offset", "conv_k4",
           "conv_k_order", "dw_plane_bytes", "add_table"]
