"""Packing of the constants of the Cortex-M optimized kernels (layouts of tinyengine_kernels.h).

Bit-exactness.  The optimized kernels change only how the int32 accumulators
are formed (int8 values packed in pairs for SMLAD, ``input_offset`` folded
into the bias) and compute the requantization with a shorter instruction
sequence that is proven equal to ``te::multiply_by_quantized_multiplier`` (see
``src/kernels/arm/arm_dsp.h``) under conditions checked here per channel:
a non-negative multiplier in [2^30, 2^31) (or 0), a negative shift, and an
accumulator bound (from the weights and bias) that keeps the rounding add from
overflowing.  A layer failing them raises :class:`PackingRefused` and keeps
its portable kernel.

The ``pack_*`` functions take a step's attributes and its constant arrays and
return ``(kernel, packed int8 bytes, attribute updates)``.
"""
from __future__ import annotations

from typing import Dict, Optional, Tuple

import numpy as np

from .arm import W16_MAX_BYTES, conv_k4, conv_k_order, dw_kernel_name, dw_line

_I32 = np.int64(1) << 32

Packed = Tuple[str, np.ndarray, Dict]


class PackingRefused(Exception):
    """The layer keeps its portable kernel (the message says why)."""


def to_i32(values) -> np.ndarray:
    """Wrap int64 values to int32 (two's complement), as the C accumulators do."""
    v = np.asarray(values, dtype=np.int64) & 0xFFFFFFFF
    return np.where(v >= (1 << 31), v - (1 << 32), v).astype(np.int32)


def input_range(input_offset: int) -> int:
    """max |x + input_offset| over int8 x."""
    return max(abs(-128 + input_offset), abs(127 + input_offset))


def pack_requant(bias_eff: np.ndarray, multiplier: np.ndarray, shift: np.ndarray,
                 acc_bound: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Per-channel {bias_eff, m2, rounding, right_shift} (int32 [C, 4]) of the
    optimized kernels, and a bool mask of the channels whose multiplier is 0
    (their weights and bias must be zeroed by the caller).

    ``acc_bound`` bounds |accumulator| per channel (TFLM's accumulator, bias
    included).  Raises PackingRefused where the fast requantization would not be exact.
    """
    mult = np.asarray(multiplier, dtype=np.int64).reshape(-1)
    sh = np.asarray(shift, dtype=np.int64).reshape(-1)
    n = mult.size
    bias_eff = np.broadcast_to(np.asarray(bias_eff, dtype=np.int64), (n,)).copy()
    bound = np.broadcast_to(np.asarray(acc_bound, dtype=np.int64), (n,))
    dead = mult == 0
    if np.any(mult < 0) or np.any(mult >= (1 << 31)):
        raise PackingRefused("a requantization multiplier is outside [0, 2^31)")
    live = ~dead
    if np.any(live & (mult < (1 << 30))):
        raise PackingRefused("a requantization multiplier is below 2^30 (not normalized)")
    if np.any(live & (sh >= 0)):
        raise PackingRefused("a requantization shift is >= 0 (scale >= 0.5)")
    if np.any(live & (sh < -31)):
        raise PackingRefused("a requantization shift is below -31")
    rs = np.where(live, -sh, 1)
    m = np.where(live, mult, 1 << 30)
    rounding = np.int64(1) << (rs - 1)
    # |y| <= floor((B * m + 2^30) / 2^31); y + rounding must stay below 2^31.
    y_max = (bound.astype(object) * m.astype(object) + (1 << 30)) // (1 << 31)
    if any(int(y) + int(r) >= (1 << 31) for y, r, l in zip(y_max, rounding, live) if l):
        raise PackingRefused("the accumulator bound is too large for the fast rounding")
    bias_eff[dead] = 0
    q = np.stack([to_i32(bias_eff), to_i32(2 * m - _I32), rounding.astype(np.int32), rs.astype(np.int32)], axis=1)
    return np.ascontiguousarray(q.astype(np.int32)), dead


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


def fast_output(mult: int, shift: int, what: str) -> Tuple[int, int, int]:
    """(m2, rounding, rs) of a rescaling by the fast requantization, or PackingRefused."""
    if not (1 << 30) <= mult < (1 << 31):
        raise PackingRefused(f"{what} multiplier outside [2^30, 2^31)")
    if not -31 <= shift <= -1:
        raise PackingRefused(f"{what} shift outside [-31, -1]")
    rs = -shift
    return int(to_i32([2 * mult - (1 << 32)])[0]), 1 << (rs - 1), rs


# --------------------------------------------------------------------------- per kernel family
def pack_conv(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
              wide: Optional[bool] = None, narrow: bool = False) -> Packed:
    """te_arm_conv2d_s8 (or its int16-filter variant te_arm_conv2d_w16_s8) for a te_conv2d_s8 step.

    ``wide``: store the filter widened to int16 (twice the flash, one unpacking
    instruction less per four multiply-accumulates); None: only filters of at
    most W16_MAX_BYTES widened. ``narrow``: the one-column entry point
    (te_arm_conv2d_narrow_s8 / te_arm_conv2d_narrow_w16_s8: the same records,
    a quarter of the im2col scratch, more instructions)."""
    cout = a["output_c"]
    k = a["kernel_h"] * a["kernel_w"] * a["input_c"]
    k4 = conv_k4(a)
    wf = w.reshape(cout, k).astype(np.int64)
    off = int(a["input_offset"])
    bound = np.abs(bias) + input_range(off) * np.abs(wf).sum(axis=1)
    q, dead = pack_requant(bias + off * wf.sum(axis=1), mult, shift, bound)
    order = conv_k_order(a)
    wk = w.reshape(cout, k)
    rows = np.where(order[None, :] >= 0, wk[:, np.maximum(order, 0)], 0).astype(np.int8)
    rows[dead] = 0
    attrs = {}
    if fold_output_offset(q, np.where(dead, 0, bound), int(a["output_offset"])):
        attrs["output_offset"] = 0
    kernel = "te_arm_conv2d_s8"
    if wide or (wide is None and 2 * cout * k4 <= W16_MAX_BYTES):
        # small filter: store it widened to int16 in the columns' lane order
        # (k0, k2, k1, k3) per group, so the GEMM loads it without unpacking
        wide = rows.astype("<i2").reshape(cout, k4 // 4, 4)[:, :, [0, 2, 1, 3]].reshape(cout, k4)
        rows, kernel = np.ascontiguousarray(wide).view(np.int8), "te_arm_conv2d_w16_s8"
    if narrow:
        kernel = kernel.replace("te_arm_conv2d_", "te_arm_conv2d_narrow_")
    return kernel, pack_rows(q, rows), attrs


def check_depthwise(a: Dict) -> None:
    """PackingRefused for depthwise shapes the optimized kernels do not handle."""
    if a["depth_multiplier"] != 1:
        raise PackingRefused("depth multiplier != 1")
    if a["dilation_h"] != 1 or a["dilation_w"] != 1:
        raise PackingRefused("dilated depthwise convolution")


def pack_depthwise(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                   inplace: bool, specialized: bool = True) -> Packed:
    """te_arm_depthwise_conv2d*_s8 (in place or not) for a portable depthwise step; the
    shape's specialized entry point if it has one and ``specialized``, else the generic one
    (same constants)."""
    check_depthwise(a)
    kh, kw, ch = a["kernel_h"], a["kernel_w"], a["output_c"]
    pw = (kw + 1) // 2
    taps = w.reshape(kh * kw, ch).T.astype(np.int64)  # [ch, kh*kw]
    off = int(a["input_offset"])
    bound = np.abs(bias) + input_range(off) * np.abs(taps).sum(axis=1)
    q, dead = pack_requant(bias + off * taps.sum(axis=1), mult, shift, bound)
    words = (pw + 1) // 2
    pairs = np.zeros((ch, kh, 4 * words), dtype=np.int8)  # taps, zero-padded to whole words
    pairs[:, :, :kw] = taps.reshape(ch, kh, kw)
    pairs[dead] = 0
    # per word (p0.lo, p0.hi, p1.lo, p1.hi) -> (p0.lo, p1.lo, p0.hi, p1.hi): SXTB16 / SXTB16 ROR 8 give p0 / p1
    rows = pairs.reshape(ch, kh, words, 4)[:, :, :, [0, 2, 1, 3]].reshape(ch, -1)
    attrs = {}
    if fold_output_offset(q, np.where(dead, 0, bound), int(a["output_offset"])):
        attrs["output_offset"] = 0
    return dw_kernel_name(a, inplace, specialized), pack_rows(q, rows), attrs


def is_line_depthwise(a: Dict) -> bool:
    """Whether a depthwise convolution runs along one axis (kx1 over [.., H, 1, C] or
    1xk over [.., 1, W, C]), te_arm_depthwise_conv1d_s8's shapes."""
    if a["kernel_w"] == 1 and a["input_w"] == 1 and a["output_w"] == 1:  # the kernel's axis is H
        return a["pad_left"] == 0
    return a["kernel_h"] == 1 and a["input_h"] == 1 and a["output_h"] == 1 and a["pad_top"] == 0


def pack_depthwise_line(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray,
                        inplace: bool) -> Packed:
    """te_arm_depthwise_conv1d_s8 (in place or not) for a portable depthwise step
    along one axis (any kernel length, stride, dilation and padding)."""
    if a["depth_multiplier"] != 1:
        raise PackingRefused("depth multiplier != 1")
    if not is_line_depthwise(a):
        raise PackingRefused("not a depthwise convolution along one axis")
    k, ch = dw_line(a)[2], a["output_c"]
    taps = w.reshape(k, ch).T.astype(np.int64)  # [ch, k]: kh*kw == k since the other side is 1
    off = int(a["input_offset"])
    bound = np.abs(bias) + input_range(off) * np.abs(taps).sum(axis=1)
    q, dead = pack_requant(bias + off * taps.sum(axis=1), mult, shift, bound)
    attrs = {}
    if fold_output_offset(q, np.where(dead, 0, bound), int(a["output_offset"])):
        attrs["output_offset"] = 0
    groups = (ch + 3) // 4
    tw = np.zeros((groups * 4, k), dtype=np.int64)
    tw[:ch] = np.where(dead[:, None], 0, taps)
    qq = np.zeros((groups * 4, 4), dtype=np.int32)
    qq[:, 1], qq[:, 2], qq[:, 3] = -(1 << 31), 1, 1  # padding channels: m = 2^30, rs = 1, bias 0
    qq[:ch] = q
    out = []
    for g in range(groups):
        qg = qq[4 * g:4 * g + 4].astype("<i4")
        # per tap the lanes (c0, c2, c1, c3): the int16 pairs [c0, c2] and [c1, c3] of the widened line
        lanes = tw[4 * g:4 * g + 4][[0, 2, 1, 3]].T.astype("<i2")  # [k, 4]
        out += [qg[:, 0].copy().view(np.int8), np.ascontiguousarray(lanes).view(np.int8).reshape(-1),
                qg[:, 1:].copy().reshape(-1).view(np.int8)]
    kernel = "te_arm_depthwise_conv1d_inplace_s8" if inplace else "te_arm_depthwise_conv1d_s8"
    return kernel, np.concatenate(out), attrs


def check_fc(a: Dict) -> None:
    """PackingRefused for fully connected layers the optimized kernel does not handle."""
    if a["filter_offset"] != 0:
        raise PackingRefused("asymmetric weights (filter_offset != 0)")


def pack_fc(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> Packed:
    """te_arm_fully_connected_s8 for a te_fully_connected_s8 step."""
    check_fc(a)
    outs, depth = a["output_depth"], a["input_depth"]
    wf = w.reshape(outs, depth).astype(np.int64)
    off = int(a["input_offset"])
    bound = np.abs(bias) + input_range(off) * np.abs(wf).sum(axis=1)
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
    return "te_arm_fully_connected_s8", np.concatenate(out), {}


def four_row_blocks(rows: np.ndarray, init: np.ndarray) -> np.ndarray:
    """Rows (a multiple of four) in blocks of four, as int8 bytes: per block the
    rows' int32 initial sums (wrapped), then for each group of four inputs the
    four rows' weights for it (zero-padded to whole groups); te_arm::dot4_rows's
    layout (te_arm_lstm_s8's blocks in tinyengine_kernels.h)."""
    n, depth = rows.shape
    assert n % 4 == 0
    k4 = (depth + 3) // 4 * 4
    padded = np.zeros((n, k4), dtype=np.int8)
    padded[:, :depth] = rows
    inter = padded.reshape(n // 4, 4, k4 // 4, 4).transpose(0, 2, 1, 3).reshape(n // 4, -1)
    head = to_i32(init).astype("<i4").reshape(n // 4, 4).view(np.int8)
    return np.concatenate([head, inter], axis=1).reshape(-1)


def pack_lstm_s8(a: Dict, wx: np.ndarray, wh: np.ndarray, bias: np.ndarray) -> Packed:
    """te_arm_lstm_s8 for a te_lstm_s8 step: the gate rows of both projections with
    the zero points folded into their initial sums (exact in two's complement)."""
    units, depth = a["units"], a["input_size"]
    rx = wx.reshape(4 * units, depth)
    rh = wh.reshape(4 * units, units)
    init_x = np.asarray(bias, dtype=np.int64).reshape(-1) - int(a["input_zero_point"]) * rx.astype(np.int64).sum(1)
    init_h = -int(a["hidden_zero_point"]) * rh.astype(np.int64).sum(1)
    return "te_arm_lstm_s8", np.concatenate([four_row_blocks(rx, init_x), four_row_blocks(rh, init_h)]), {}


def pack_transpose_conv(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> Packed:
    """te_arm_transpose_conv2d_s8 for a te_transpose_conv2d_s8 step: per filter tap, the
    output channels' rows in four-row blocks with input_offset * sum(row) as their
    initial sums, then the per-channel {bias, multiplier, shift}."""
    oc, kh, kw, ic = a["output_c"], a["kernel_h"], a["kernel_w"], a["input_c"]
    wt = w.reshape(oc, kh, kw, ic)
    oc4 = (oc + 3) // 4 * 4
    off = int(a["input_offset"])
    taps = []
    for ky in range(kh):
        for kx in range(kw):
            rows = np.zeros((oc4, ic), dtype=np.int8)
            rows[:oc] = wt[:, ky, kx, :]
            taps.append(four_row_blocks(rows, off * rows.astype(np.int64).sum(1)))
    per_channel = [np.broadcast_to(np.asarray(v, dtype=np.int64).reshape(-1), (oc,)) for v in (bias, mult, shift)]
    tail = to_i32(np.stack(per_channel, axis=1)).astype("<i4").view(np.int8).reshape(-1)
    return "te_arm_transpose_conv2d_s8", np.concatenate(taps + [tail]), {}


def pack_svdf_s8(a: Dict, w_feature: np.ndarray, w_time: np.ndarray) -> Packed:
    """te_arm_svdf_s8 for a te_svdf_s8 step (int16 state): the feature rows in
    four-row blocks, then per filter its time weights, zero points folded into
    the sums' initial values."""
    filters, inputs, memory = a["num_filters"], a["input_size"], a["memory_size"]
    f4 = (filters + 3) // 4 * 4
    rows = np.zeros((f4, inputs), dtype=np.int8)
    rows[:filters] = w_feature.reshape(filters, inputs)
    feature = four_row_blocks(rows, -int(a["input_zero_point"]) * rows.astype(np.int64).sum(1))
    wt = w_time.reshape(filters, memory).astype(np.int64)
    init = to_i32(-int(a["state_zero_point"]) * wt.sum(1)).astype("<i4").reshape(filters, 1).view(np.int8)
    padded = np.zeros((filters, memory + (memory & 1)), dtype="<i2")
    padded[:, :memory] = wt
    time = np.concatenate([init, padded.view(np.int8)], axis=1).reshape(-1)
    return "te_arm_svdf_s8", np.concatenate([feature, time]), {}


# --------------------------------------------------------------------------- 16x8 (int16 activations)
def rescale64_params(mult: np.ndarray, shift: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """(reduced multiplier, total shift) per channel of TFLite's 64-bit rescaling
    (fixed_point.h's multiply_by_quantized_multiplier_64), or PackingRefused where
    the total shift is outside [1, 62] (the kernels' rounding term needs it)."""
    m = np.asarray(mult, dtype=np.int64).reshape(-1)
    total = 15 - np.asarray(shift, dtype=np.int64).reshape(-1)
    if np.any(total < 1) or np.any(total > 62):
        raise PackingRefused("a 16x8 requantization shift is outside [-47, 14]")
    reduced = np.where(m < 0x7FFF0000, (m + (1 << 15)) >> 16, 0x7FFF)
    return reduced, total


def pack_s16_records(rows: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> np.ndarray:
    """The 16x8 records of tinyengine_kernels.h (te_arm_conv2d_s16,
    te_arm_fully_connected_s16): per output channel, its K int8 filter values
    widened to int16 and zero-padded to even, int64 bias, int32 reduced
    multiplier, int32 total shift; as int8 bytes (little-endian)."""
    n, k = rows.shape
    mult = np.broadcast_to(np.asarray(mult).reshape(-1), (n,))
    shift = np.broadcast_to(np.asarray(shift).reshape(-1), (n,))
    reduced, total = rescale64_params(mult, shift)
    k2 = k + (k & 1)
    wide = np.zeros((n, k2), dtype="<i2")
    wide[:, :k] = rows
    b = np.broadcast_to(np.asarray(bias, dtype=np.int64).reshape(-1), (n,)).astype("<i8")
    tail = np.stack([reduced, total], axis=1).astype("<i4")
    return np.concatenate([wide.view(np.int8), b.reshape(n, 1).view(np.int8), tail.view(np.int8)], axis=1).reshape(-1)


def pack_conv_s16(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> Packed:
    """te_arm_conv2d_s16 for a te_conv2d_s16 step (input zero point 0)."""
    if a["input_offset"] != 0:
        raise PackingRefused("16x8 input zero point != 0")
    cout = a["output_c"]
    rows = w.reshape(cout, -1)
    return "te_arm_conv2d_s16", pack_s16_records(rows, bias, mult, shift), {}


def pack_fc_s16(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> Packed:
    """te_arm_fully_connected_s16 for a te_fully_connected_s16 step (zero points 0)."""
    if a["input_offset"] != 0 or a["filter_offset"] != 0:
        raise PackingRefused("16x8 fully connected with a nonzero input or filter zero point")
    rows = w.reshape(a["output_depth"], a["input_depth"])
    return "te_arm_fully_connected_s16", pack_s16_records(rows, bias, mult, shift), {}


def pack_lstm_s16(a: Dict, wx: np.ndarray, wh: np.ndarray, bias: np.ndarray) -> Packed:
    """te_arm_lstm_s16 for a te_lstm_s16 step (zero points 0): both projections' gate
    rows widened to int16 and zero-padded to even lengths, then the int64 bias."""
    if a["input_zero_point"] != 0 or a["hidden_zero_point"] != 0:
        raise PackingRefused("16x8 LSTM with a nonzero input or hidden zero point")
    units, depth = a["units"], a["input_size"]

    def widened(rows, n):
        out = np.zeros((4 * units, n + (n & 1)), dtype="<i2")
        out[:, :n] = rows.reshape(4 * units, n)
        return out.view(np.int8).reshape(-1)

    b = np.asarray(bias, dtype=np.int64).reshape(-1).astype("<i8").view(np.int8)
    return "te_arm_lstm_s16", np.concatenate([widened(wx, depth), widened(wh, units), b]), {}


def pack_transpose_conv_s16(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray, shift: np.ndarray) -> Packed:
    """te_arm_transpose_conv2d_s16 for a te_transpose_conv2d_s16 step (input zero point 0):
    per filter tap the output channels' rows widened to int16, then the 16x8 tails."""
    if a["input_offset"] != 0:
        raise PackingRefused("16x8 input zero point != 0")
    oc, kh, kw, ic = a["output_c"], a["kernel_h"], a["kernel_w"], a["input_c"]
    wt = w.reshape(oc, kh, kw, ic)
    k2 = ic + (ic & 1)
    rows = np.zeros((kh, kw, oc, k2), dtype="<i2")
    rows[..., :ic] = wt.transpose(1, 2, 0, 3)
    tails = pack_s16_records(np.zeros((oc, 0), dtype=np.int8), bias, mult, shift)
    return "te_arm_transpose_conv2d_s16", np.concatenate([rows.view(np.int8).reshape(-1), tails]), {}


def pack_depthwise_line_s16(a: Dict, w: np.ndarray, bias: np.ndarray, mult: np.ndarray,
                            shift: np.ndarray) -> Packed:
    """te_arm_depthwise_conv1d_s16 for a te_depthwise_conv2d_s16 step along one axis."""
    if a["depth_multiplier"] != 1:
        raise PackingRefused("depth multiplier != 1")
    if not is_line_depthwise(a):
        raise PackingRefused("16x8 depthwise convolution not along one axis")
    if a["input_offset"] != 0:
        raise PackingRefused("16x8 input zero point != 0")
    k, ch = dw_line(a)[2], a["output_c"]
    if k >= 512:
        raise PackingRefused("512 or more taps: 32-bit partial sums could overflow")
    taps = np.zeros((k, (ch + 1) // 2 * 2), dtype="<i2")
    taps[:, :ch] = w.reshape(k, ch)
    tails = pack_s16_records(np.zeros((ch, 0), dtype=np.int8), bias, mult, shift).reshape(ch, 16)
    if ch % 2:  # the padding channel: a valid record (multiplier 0, total shift 1), never output
        tails = np.concatenate([tails, pack_s16_records(np.zeros((1, 0), np.int8), [0], [0], [14]).reshape(1, 16)])
    out = []
    for g in range(taps.shape[1] // 2):
        out += [taps[:, 2 * g:2 * g + 2].copy().view(np.int8).reshape(-1), tails[2 * g:2 * g + 2].reshape(-1)]
    return "te_arm_depthwise_conv1d_s16", np.concatenate(out), {}


def pack_add(a: Dict, table1: np.ndarray, table2: np.ndarray, inplace: bool) -> Tuple[str, Dict]:
    """(kernel, attribute updates) of te_arm_add_s8 (or in place) given its input tables
    (int32 [256] each, codegen.kernel_selection.add_table)."""
    m2, rnd, rs = fast_output(int(a["output_multiplier"]), int(a["output_shift"]), "output")
    m = (m2 + (1 << 32)) // 2
    bound = int(np.abs(table1.astype(np.int64)).max() + np.abs(table2.astype(np.int64)).max())
    if bound >= (1 << 31) or (bound * m + (1 << 30)) // (1 << 31) + rnd >= (1 << 31):
        raise PackingRefused("output rescale rounding may overflow")
    kernel = "te_arm_add_inplace_s8" if inplace else "te_arm_add_s8"
    return kernel, dict(output_m2=m2, output_rounding=rnd, output_shift=rs)
