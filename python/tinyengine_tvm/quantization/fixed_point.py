"""Fixed-point parameter helpers that reproduce TFLite / TFLM exactly.

These are the compile-time halves of the integer kernels: they turn the float
scales stored in a model into the (multiplier, shift) pairs and radii that
TFLM's Prepare functions compute, bit for bit.  The conventions follow
``tensorflow/lite/kernels/internal/quantization_util.cc``:

* a quantized multiplier ``(m, shift)`` represents ``m * 2**(shift - 31)``
  with ``m`` in ``[2**30, 2**31)`` (or 0) and a positive ``shift`` meaning a
  left shift;
* all intermediate arithmetic is IEEE double unless TFLM uses float32, and
  rounding is ``TfLiteRound`` (round half away from zero).

Scales read from a model are float32; pass them through :func:`as_float32`
(or give ``numpy.float32`` values) so that a Python float that is not exactly
representable in float32 cannot change the result.

A few integer run-time helpers (:func:`saturating_rounding_doubling_high_mul`,
:func:`rounding_divide_by_pot`, :func:`multiply_by_quantized_multiplier`) are
included for reference models and tests.
"""

from __future__ import annotations

import math

import numpy as np

INT32_MIN = -(1 << 31)
INT32_MAX = (1 << 31) - 1

__all__ = [
    "INT32_MIN",
    "INT32_MAX",
    "as_float32",
    "tflite_round",
    "quantize_multiplier",
    "quantize_multiplier_greater_than_one",
    "quantize_multiplier_smaller_than_one_exp",
    "quantize_multiplier_smaller_than_one",
    "calculate_input_radius",
    "preprocess_softmax_scaling",
    "downscale_int32_to_int16_multiplier",
    "saturating_rounding_doubling_high_mul",
    "rounding_divide_by_pot",
    "multiply_by_quantized_multiplier",
]


def as_float32(value) -> float:
    """The Python float (double) equal to ``value`` rounded to float32.

    This is what ``static_cast<double>(tensor->params.scale)`` yields in TFLM.
    """
    return float(np.float32(value))


def tflite_round(x: float) -> int:
    """``TfLiteRound`` / ``std::round`` on a double: half away from zero."""
    if math.isnan(x) or math.isinf(x):
        raise ValueError(f"cannot round {x!r}")
    ax = abs(x)
    f = math.floor(ax)
    # ax - f is exact for doubles, so the tie test is exact too.
    r = f + 1 if ax - f >= 0.5 else f
    return int(r) if x >= 0 else -int(r)


def quantize_multiplier(double_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplier``: real value -> (int32 multiplier, shift).

    ``multiplier * 2**(shift - 31)`` approximates ``double_multiplier``.
    Mirrors the reference exactly, including:

    * 0 -> ``(0, 0)``;
    * a fraction that rounds up to ``2**31`` is halved and the shift bumped;
    * shifts below -31 (values below about ``2**-31``) flush to ``(0, 0)``.

    Uses the default double-rounding build (``TFLITE_SINGLE_ROUNDING`` off),
    which is what TFLM's reference kernels and the ``tflite_micro`` wheel use.
    """
    d = float(double_multiplier)
    if d == 0.0:
        return 0, 0
    if math.isnan(d) or math.isinf(d):
        raise ValueError(f"cannot quantize multiplier {d!r}")
    q, shift = math.frexp(d)  # same contract as std::frexp
    q_fixed = tflite_round(q * float(1 << 31))
    if q_fixed > (1 << 31):
        raise ValueError("QuantizeMultiplier: fraction out of range")
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if q_fixed > INT32_MAX:
        raise ValueError("QuantizeMultiplier: fraction out of range")
    if shift < -31:
        shift = 0
        q_fixed = 0
    return int(q_fixed), int(shift)


def quantize_multiplier_greater_than_one(double_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierGreaterThanOne``: requires a value > 1."""
    if not double_multiplier > 1.0:
        raise ValueError(f"multiplier must be > 1, got {double_multiplier!r}")
    m, shift = quantize_multiplier(double_multiplier)
    if shift < 0:
        raise ValueError("QuantizeMultiplierGreaterThanOne: negative shift")
    return m, shift


def quantize_multiplier_smaller_than_one_exp(double_multiplier: float) -> tuple[int, int]:
    """TFLite ``QuantizeMultiplierSmallerThanOneExp``: value in (0, 1).

    Returns ``(multiplier, left_shift)`` with ``left_shift <= 0``.
    """
    if not 0.0 < double_multiplier < 1.0:
        raise ValueError(f"multiplier must be in (0, 1), got {double_multiplier!r}")
    m, shift = quantize_multiplier(double_multiplier)
    if shift > 0:
        raise ValueError("QuantizeMultiplierSmallerThanOneExp: positive shift")
    return m, shift


# Short alias; the shift it returns is the (non-positive) left shift.
quantize_multiplier_smaller_than_one = quantize_multiplier_smaller_than_one_exp


def calculate_input_radius(input_integer_bits: int, input_left_shift: int,
                           total_signed_bits: int = 31) -> int:
    """TFLite ``CalculateInputRadius`` (floating-point build).

    ``floor((2**ib - 1) * 2**(total - ib) / 2**left_shift)``, evaluated in
    double like the reference (every step is exact here).
    """
    max_input_rescaled = (
        1.0 * ((1 << input_integer_bits) - 1)
        * math.ldexp(1.0, total_signed_bits - input_integer_bits)
        / math.ldexp(1.0, input_left_shift)
    )
    return int(math.floor(max_input_rescaled))


def preprocess_softmax_scaling(beta: float, input_scale: float,
                               input_integer_bits: int) -> tuple[int, int]:
    """TFLite ``PreprocessSoftmaxScaling`` (double-rounding build).

    ``beta * input_scale * 2**(31 - input_integer_bits)`` in double, capped at
    ``2**31 - 1``, quantized with a non-negative left shift.
    """
    max_real_multiplier = float((1 << 31) - 1)
    real = min(float(beta) * float(input_scale)
               * float(1 << (31 - input_integer_bits)), max_real_multiplier)
    return quantize_multiplier_greater_than_one(real)


def downscale_int32_to_int16_multiplier(multiplier_int32: int) -> int:
    """TFLite ``DownScaleInt32ToInt16Multiplier``: Q31 -> Q15, rounded."""
    if multiplier_int32 < 0:
        raise ValueError("multiplier must be non-negative")
    rounding_offset = 1 << 15
    if multiplier_int32 >= INT32_MAX - rounding_offset:
        return (1 << 15) - 1
    return (multiplier_int32 + rounding_offset) >> 16


# --------------------------------------------------------------------------
# Integer run-time arithmetic (reference versions of src/kernels/fixed_point.h)
# --------------------------------------------------------------------------

def _wrap32(v: int) -> int:
    return ((v + (1 << 31)) & 0xFFFFFFFF) - (1 << 31)


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp ``SaturatingRoundingDoublingHighMul`` on int32 values."""
    if a == b == INT32_MIN:
        return INT32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    num = ab + nudge
    # C++ integer division truncates toward zero.
    q = abs(num) >> 31
    return q if num >= 0 else -q


def rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp ``RoundingDivideByPOT`` on an int32: round half away from 0."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def multiply_by_quantized_multiplier(x: int, multiplier: int, shift: int) -> int:
    """TFLite ``MultiplyByQuantizedMultiplier`` (int32, double rounding)."""
    left = shift if shift > 0 else 0
    right = -shift if shift < 0 else 0
    return rounding_divide_by_pot(
        saturating_rounding_doubling_high_mul(_wrap32(x << left), multiplier), right)
