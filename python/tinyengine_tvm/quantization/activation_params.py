"""Kernel parameters of SOFTMAX, LOGISTIC, HARD_SWISH and MEAN.

Each function derives, from the float32 scales and the zero points stored in
a model, exactly the integers TFLM's Prepare computes for the int8 kernel, so
that the generated C is bit-exact with TFLM.  The returned dict keys are the
argument / struct field names of the matching kernel in
``src/include/tinyengine_kernels.h``.

Float32 versus double matters: TFLM widens each stored float32 scale to
double before most of the arithmetic, but HARD_SWISH divides the scales in
float32 first.  Scales are therefore rounded to float32 on entry.
"""

from __future__ import annotations

import math
from typing import Tuple

import numpy as np

from .fixed_point import (
    as_float32,
    calculate_input_radius,
    downscale_int32_to_int16_multiplier,
    preprocess_softmax_scaling,
    quantize_multiplier,
    quantize_multiplier_smaller_than_one_exp,
    tflite_round,
)

__all__ = [
    "softmax_params",
    "log_softmax_params",
    "logistic_params",
    "sigmoid_s16_params",
    "checked_log2",
    "softmax_s16_params",
    "lut_s16",
    "sigmoid_table_s16",
    "hard_swish_params",
    "mean_params",
    "SOFTMAX_OUTPUT_SCALE",
    "SOFTMAX_OUTPUT_ZERO_POINT",
    "LOGISTIC_OUTPUT_SCALE",
    "LOGISTIC_OUTPUT_ZERO_POINT",
]

# TFLM requires these output quantizations for int8 SOFTMAX / LOGISTIC.
SOFTMAX_OUTPUT_SCALE = 1.0 / 256.0
SOFTMAX_OUTPUT_ZERO_POINT = -128
LOGISTIC_OUTPUT_SCALE = 1.0 / 256.0
LOGISTIC_OUTPUT_ZERO_POINT = -128

# Integer bits of the fixed-point formats the kernels use.
_SOFTMAX_SCALED_DIFF_INTEGER_BITS = 5  # exp() input in Q5.26
_LOGISTIC_INPUT_INTEGER_BITS = 4       # logistic() input in Q4.27


def _check_zero_point(zp: int, what: str) -> int:
    zp = int(zp)
    if not -128 <= zp <= 127:
        raise ValueError(f"{what} zero point {zp} is outside the int8 range")
    return zp


def _check_scale(scale: float, what: str) -> float:
    s = as_float32(scale)
    if not (s > 0.0 and math.isfinite(s)):
        raise ValueError(f"{what} scale must be a positive finite number, got {scale!r}")
    return s


def softmax_params(input_scale: float, beta: float = 1.0) -> dict:
    """Parameters of ``te_softmax_s8`` (TFLM ``CalculateSoftmaxParams``, int8).

    Returns ``{"input_beta_multiplier", "input_beta_left_shift", "diff_min"}``.
    The output must be quantized with scale 1/256 and zero point -128.
    """
    s = _check_scale(input_scale, "input")
    b = as_float32(beta)  # TfLiteSoftmaxParams::beta is a float
    multiplier, left_shift = preprocess_softmax_scaling(
        b, s, _SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    diff_min = -1.0 * calculate_input_radius(_SOFTMAX_SCALED_DIFF_INTEGER_BITS,
                                             left_shift)
    return {
        "input_beta_multiplier": int(multiplier),
        "input_beta_left_shift": int(left_shift),
        "diff_min": int(diff_min),
    }


def log_softmax_params(input_scale: float) -> dict:
    """Parameters of ``te_log_softmax_s8`` (TFLM's int8 LOG_SOFTMAX Prepare):
    {"input_multiplier", "input_left_shift"} bring input differences to Q5.26,
    {"reverse_multiplier", "reverse_shift"} take Q5.26 back to input steps, and
    "diff_min" is the smallest difference whose exp counts.  The output must be
    quantized with scale 16/256 and zero point 127."""
    s = _check_scale(input_scale, "input")
    multiplier, left_shift = preprocess_softmax_scaling(1.0, s, _SOFTMAX_SCALED_DIFF_INTEGER_BITS)
    reverse = float(1 << (31 - left_shift)) / float(multiplier)
    reverse_multiplier, reverse_shift = quantize_multiplier_smaller_than_one_exp(reverse)
    diff_min = -calculate_input_radius(_SOFTMAX_SCALED_DIFF_INTEGER_BITS, left_shift)
    return {"input_multiplier": int(multiplier), "input_left_shift": int(left_shift),
            "reverse_multiplier": int(reverse_multiplier), "reverse_shift": int(reverse_shift),
            "diff_min": int(diff_min)}


def logistic_params(input_scale: float, input_zero_point: int) -> dict:
    """Parameters of ``te_logistic_s8`` (TFLM ``CalculateArithmeticOpDataLogistic``).

    Returns ``{"input_zero_point", "input_range_radius", "input_multiplier",
    "input_left_shift"}``.  The output must be quantized with scale 1/256 and
    zero point -128.
    """
    s = _check_scale(input_scale, "input")
    zp = _check_zero_point(input_zero_point, "input")
    # TFLM uses frexp + round directly here (not QuantizeMultiplier): no
    # 2^31 correction and no flush of tiny values.
    real = s * float(1 << (31 - _LOGISTIC_INPUT_INTEGER_BITS))
    q, left_shift = math.frexp(real)
    q_fixed = tflite_round(q * float(1 << 31))
    if q_fixed >= (1 << 31):  # static_cast<int32_t> of 2^31 (cannot happen
        q_fixed -= 1 << 32    # for a float32 scale; kept for fidelity)
    radius = calculate_input_radius(_LOGISTIC_INPUT_INTEGER_BITS, left_shift, 31)
    return {
        "input_zero_point": zp,
        "input_range_radius": int(radius),
        "input_multiplier": int(q_fixed),
        "input_left_shift": int(left_shift),
    }


def sigmoid_table_s16() -> np.ndarray:
    """The 256-entry uint16 table behind TFLM's int16 LOGISTIC and TANH:
    65536 * sigmoid(i / 24) at i = 0..255, each entry lowered by half the
    chord's error over its interval (so that linear interpolation between
    entries errs equally above and below), rounded; the last entry is the
    full scale 65535, where interpolation saturates."""
    i = np.arange(256, dtype=np.float64)

    def f(x):
        return 65536.0 / (1.0 + np.exp(-x / 24.0))

    chord_error = (f(i) + f(i + 1)) / 2 - f(i + 0.5)
    table = np.minimum(np.round(f(i) - chord_error / 2), 65535).astype(np.uint16)
    table[-1] = 65535
    return table


def checked_log2(x: float) -> Tuple[bool, int]:
    """TFLite's CheckedLog2 in float32: (x is a power of two within 1e-3 in log2, rounded log2)."""
    log2 = np.float32(np.log(np.float32(x))) * np.float32(1.0 / np.log(np.float32(2.0)))
    rounded = np.float32(tflite_round(float(log2)))
    return bool(abs(np.float32(log2 - rounded)) < np.float32(1e-3)), int(rounded)


def sigmoid_s16_params(input_scale: float, tanh: bool) -> dict:
    """``te_logistic_params`` of the int16 LOGISTIC (``tanh=False``) or TANH kernels
    (TFLM's int16 Prepare): {"input_multiplier", "input_left_shift"}; a
    multiplier of 0 means a power-of-two input scale handled by the shift alone.
    Inputs and output have zero point 0 and the output scale is 2^-15."""
    s = _check_scale(input_scale, "input")
    pot, log2 = checked_log2(s)
    left_shift = 12 + log2
    if pot and (left_shift == 0 or tanh and left_shift == 1):
        return {"input_multiplier": 0, "input_left_shift": left_shift}
    multiplier, left_shift = float(s) * 4096.0 * 3.0, 0
    while multiplier <= 16383.5 and left_shift <= 30:
        left_shift += 1
        multiplier *= 2.0
    return {"input_multiplier": int(multiplier), "input_left_shift": left_shift}


def hard_swish_params(input_scale: float, input_zero_point: int,
                      output_scale: float, output_zero_point: int) -> dict:
    """``te_hard_swish_params`` fields (TFLM ``HardSwishPrepare``, int8).

    Returns ``{"input_zero_point", "output_zero_point",
    "reluish_multiplier_fixedpoint_int16", "reluish_multiplier_exponent",
    "output_multiplier_fixedpoint_int16", "output_multiplier_exponent"}``.
    """
    in_s = np.float32(_check_scale(input_scale, "input"))
    out_s = np.float32(_check_scale(output_scale, "output"))
    in_zp = _check_zero_point(input_zero_point, "input")
    out_zp = _check_zero_point(output_zero_point, "output")

    # These products / quotients are float32 operations in TFLM.
    with np.errstate(over="raise", invalid="raise", divide="raise"):
        hires_input_scale = np.float32(np.float32(1.0 / 128.0) * in_s)
        reluish_scale = np.float32(np.float32(3.0) / np.float32(32768.0))
        output_multiplier = float(np.float32(hires_input_scale / out_s))
        reluish_multiplier = float(np.float32(hires_input_scale / reluish_scale))

    out_m32, out_exp = quantize_multiplier(output_multiplier)
    if out_exp > 0:
        raise ValueError(
            "HARD_SWISH: input_scale / (128 * output_scale) must be < 1 "
            f"(TFLM rejects this model); got exponent {out_exp}")
    rel_m32, rel_exp = quantize_multiplier(reluish_multiplier)
    return {
        "input_zero_point": in_zp,
        "output_zero_point": out_zp,
        "reluish_multiplier_fixedpoint_int16": downscale_int32_to_int16_multiplier(rel_m32),
        "reluish_multiplier_exponent": int(rel_exp),
        "output_multiplier_fixedpoint_int16": downscale_int32_to_int16_multiplier(out_m32),
        "output_multiplier_exponent": int(out_exp),
    }


def mean_params(input_scale: float, input_zp: int, output_scale: float,
                output_zp: int, reduced_count: int | None = None) -> dict:
    """``te_mean_params`` fields other than outer/reduced/inner (TFLM MEAN, int8).

    Returns ``{"input_offset", "output_offset", "multiplier", "shift"}`` where
    ``(multiplier, shift) = QuantizeMultiplier(double(input_scale) /
    double(output_scale))``, exactly as TFLM's ``PrepareMeanOrSumHelper``.
    The division by the number of averaged elements is folded in at run time
    by ``te_mean_s8`` (as TFLM does in ``QuantizedMeanOrSum``), so
    ``reduced_count`` is only validated; the kernel takes it from
    ``te_mean_params.reduced``.
    """
    in_s = _check_scale(input_scale, "input")
    out_s = _check_scale(output_scale, "output")
    in_zp = _check_zero_point(input_zp, "input")
    out_zp = _check_zero_point(output_zp, "output")
    if reduced_count is not None and int(reduced_count) < 0:
        raise ValueError(f"reduced_count must be >= 0, got {reduced_count}")
    multiplier, shift = quantize_multiplier(in_s / out_s)
    return {
        "input_offset": -in_zp,
        "output_offset": out_zp,
        "multiplier": int(multiplier),
        "shift": int(shift),
    }


def _libm_expf():
    """The C library's expf (what TFLM calls on this host), or numpy's float32 exp."""
    import ctypes
    import ctypes.util

    try:
        libm = ctypes.CDLL(ctypes.util.find_library("m") or "libm.so.6")
        fn = libm.expf
        fn.restype, fn.argtypes = ctypes.c_float, [ctypes.c_float]
        return lambda v: np.float32(fn(float(v)))
    except (OSError, AttributeError):
        return lambda v: np.float32(np.exp(np.float32(v)))


def elu_table(input_scale: float, input_zero_point: int, output_scale: float,
              output_zero_point: int) -> np.ndarray:
    """The 256-entry int8 table of ELU, built as TFLM's Prepare builds it: in
    float32, exp(x) - 1 below zero, rounded half away from zero.  Indexed by
    the input's two's-complement byte (``te_lut_s8``)."""
    f32 = np.float32
    in_s, out_s = f32(_check_scale(input_scale, "input")), f32(_check_scale(output_scale, "output"))
    in_zp = _check_zero_point(input_zero_point, "input")
    out_zp = _check_zero_point(output_zero_point, "output")
    expf = _libm_expf()
    inverse = f32(1) / out_s
    table = np.zeros(256, np.int8)
    for val in range(-128, 128):
        x = in_s * f32(val - in_zp)
        y = expf(x) - f32(1) if x < 0 else x
        product = float(f32(y * inverse))
        rounded = f32(math.copysign(math.floor(abs(product) + 0.5), product))  # roundf
        q = int(f32(rounded + f32(out_zp)))
        table[val & 0xFF] = min(127, max(-128, q))
    return table


def _round_half_away(v):
    return np.float32(np.sign(v) * np.floor(np.abs(v) + np.float32(0.5)))


def lut_s16(input_scale: float, input_zp: int, output_scale: float, output_zp: int, f) -> np.ndarray:
    """A 513-entry int16 table of ``f`` over the int16 input range, as TFLite
    builds the int16 SOFTMAX tables (in float32): entry i samples f at the
    i-th of 512 steps, lowered by half the interpolation error at the step's
    midpoint; read with linear interpolation (``te_softmax_s16``)."""
    f32 = np.float32
    si, so = f32(input_scale), f32(output_scale)
    in_min, in_max = si * f32(-32768 - input_zp), si * f32(32767 - input_zp)
    out_min, out_max = so * f32(-32768 - output_zp), so * f32(32767 - output_zp)
    step = (in_max - in_min) / f32(512)
    half = step / f32(2)
    inverse = f32(65536) / (out_max - out_min)
    table = np.zeros(513, np.int16)
    for i in range(512):
        at = in_min + f32(i) * step
        sample = _round_half_away(f(at) * inverse)
        interpolated = _round_half_away((f(in_min + f32(i + 1) * step) * inverse + sample) / f32(2))
        midpoint = _round_half_away(f(at + half) * inverse)
        bias = _round_half_away((interpolated - midpoint) / f32(2))
        table[i] = int(min(max(sample - bias, f32(-32768)), f32(32767)))
    table[512] = int(min(max(_round_half_away(f(in_max) * inverse), f32(-32768)), f32(32767)))
    return table


#: The int16 SOFTMAX tables span exp over [-10, 0] and 1 / (1 + x) over [0, 1].
_SOFTMAX_S16_RANGE = 65535


def softmax_s16_params(input_scale: float, beta: float) -> Tuple[dict, np.ndarray, np.ndarray]:
    """``te_softmax_s16`` parameters (TFLM's int16 SOFTMAX Prepare): the fields
    {"input_multiplier", "input_shift"} rescaling input differences to the exp
    table's 10/65535 steps, the exp table and the 1 / (1 + x) table."""
    s = _check_scale(input_scale, "input")
    multiplier, shift = quantize_multiplier(float(s) * float(np.float32(beta)) / (10.0 / _SOFTMAX_S16_RANGE))
    f32 = np.float32
    expf = _libm_expf()
    span = f32(_SOFTMAX_S16_RANGE)
    exp_table = lut_s16(f32(10.0) / span, 32767, f32(2.0) / span, 0, expf)
    reciprocal_table = lut_s16(f32(1.0) / span, -32768, f32(2.0) / span, 0,
                               lambda v: f32(f32(1) / (f32(1) + f32(v))))
    return {"input_multiplier": int(multiplier), "input_shift": int(shift)}, exp_table, reciprocal_table
