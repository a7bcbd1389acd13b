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

import numpy as np

from .fixed_point import (
    as_float32,
    calculate_input_radius,
    downscale_int32_to_int16_multiplier,
    preprocess_softmax_scaling,
    quantize_multiplier,
    tflite_round,
)

__all__ = [
    "softmax_params",
    "logistic_params",
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
