// Fixed-point helpers shared by the portable int8 kernels.
//
// The arithmetic is the integer requantization that TensorFlow Lite Micro's
// reference kernels use (gemmlowp-style "doubling high multiply" followed by
// a rounding right shift).  Every kernel that rescales an int32 accumulator
// goes through these helpers so that results stay bit-exact with TFLM.
#ifndef TINYENGINE_KERNELS_FIXED_POINT_H_
#define TINYENGINE_KERNELS_FIXED_POINT_H_

#include <stdint.h>

namespace te {

inline int32_t clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

// round(a * b / 2^31) with ties away from zero, saturating the single
// overflowing case (INT32_MIN * INT32_MIN).
inline int32_t saturating_rounding_doubling_high_mul(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  const int64_t ab = static_cast<int64_t>(a) * static_cast<int64_t>(b);
  const int64_t nudge = ab >= 0 ? (int64_t{1} << 30) : (1 - (int64_t{1} << 30));
  return static_cast<int32_t>((ab + nudge) / (int64_t{1} << 31));
}

// x / 2^exponent rounded to nearest, ties away from zero.
inline int32_t rounding_divide_by_pot(int32_t x, int exponent) {
  const int32_t mask = static_cast<int32_t>((int64_t{1} << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + (x < 0 ? 1 : 0);
  return (x >> exponent) + (remainder > threshold ? 1 : 0);
}

// x * multiplier * 2^shift, where multiplier is a Q31 value in [0.5, 1) and
// shift may be positive (left) or negative (right).
inline int32_t multiply_by_quantized_multiplier(int32_t x, int32_t multiplier,
                                                int shift) {
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  return rounding_divide_by_pot(
      saturating_rounding_doubling_high_mul(
          // Shifting the unsigned bit pattern keeps an (invalid) overflowing
          // model defined behaviour instead of undefined behaviour.
          static_cast<int32_t>(static_cast<uint32_t>(x) << left_shift),
          multiplier),
      right_shift);
}

inline int32_t saturating_left_shift(int32_t x, int shift) {
  const int64_t v = static_cast<int64_t>(x) * (int64_t{1} << shift);
  if (v > INT32_MAX) return INT32_MAX;
  if (v < INT32_MIN) return INT32_MIN;
  return static_cast<int32_t>(v);
}

// ---------------------------------------------------------------------------
// gemmlowp-style fixed-point transcendental helpers.
//
// A "Qm" value below is an int32 raw value with m integer bits and 31 - m
// fractional bits (sign bit excluded).  The functions reproduce the integer
// arithmetic of gemmlowp's fixedpoint.h (which TFLM's softmax and logistic
// use) step for step, including where it saturates and where it wraps.
// ---------------------------------------------------------------------------

// Two's complement add/sub without signed-overflow undefined behaviour.
inline int32_t wrapping_add(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) +
                              static_cast<uint32_t>(b));
}
inline int32_t wrapping_sub(int32_t a, int32_t b) {
  return static_cast<int32_t>(static_cast<uint32_t>(a) -
                              static_cast<uint32_t>(b));
}

// Number of leading zero bits of x (32 for x == 0).
inline int count_leading_zeros_u32(uint32_t x) {
  if (x == 0) return 32;
  int n = 0;
  while ((x & 0x80000000u) == 0) {
    x <<= 1;
    ++n;
  }
  return n;
}

// x * 2^exponent for a signed exponent: a left shift saturates to the int32
// range, a right shift rounds to nearest (ties away from zero).
inline int32_t saturating_rounding_multiply_by_pot(int32_t x, int exponent) {
  if (exponent == 0) return x;
  if (exponent < 0) return rounding_divide_by_pot(x, -exponent);
  const int32_t threshold =
      static_cast<int32_t>((int64_t{1} << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return static_cast<int32_t>(static_cast<uint32_t>(x) << exponent);
}

// (a + b) / 2 rounded half away from zero, computed without overflow.
inline int32_t rounding_half_sum(int32_t a, int32_t b) {
  const int64_t sum = static_cast<int64_t>(a) + static_cast<int64_t>(b);
  const int64_t sign = sum >= 0 ? 1 : -1;
  return static_cast<int32_t>((sum + sign) / 2);
}

// exp(a) for a Q0 value a in [-1/4, 0), as a Q0 value.  Fourth order Taylor
// polynomial around -1/8.
inline int32_t exp_on_interval_between_negative_one_quarter_and_0_excl(
    int32_t a) {
  const int32_t kExpMinusOneEighth = 1895147668;  // exp(-1/8) in Q0
  const int32_t kOneThird = 715827883;            // 1/3 in Q0
  const int32_t x = wrapping_add(a, int32_t{1} << 28);  // a + 1/8
  const int32_t x2 = saturating_rounding_doubling_high_mul(x, x);
  const int32_t x3 = saturating_rounding_doubling_high_mul(x2, x);
  const int32_t x4 = saturating_rounding_doubling_high_mul(x2, x2);
  const int32_t x4_over_4 = rounding_divide_by_pot(x4, 2);
  const int32_t poly = rounding_divide_by_pot(
      wrapping_add(saturating_rounding_doubling_high_mul(
                       wrapping_add(x4_over_4, x3), kOneThird),
                   x2),
      1);
  return wrapping_add(
      kExpMinusOneEighth,
      saturating_rounding_doubling_high_mul(kExpMinusOneEighth,
                                            wrapping_add(x, poly)));
}

// exp(a) for a <= 0 given in Q(integer_bits), returned in Q0.  The input is
// split into a part in [-1/4, 0) handled by the polynomial and a multiple of
// 1/4 whose bits select precomputed factors exp(-2^k).
inline int32_t exp_on_negative_values(int32_t a, int integer_bits) {
  const int fractional_bits = 31 - integer_bits;
  const int32_t one_quarter = int32_t{1} << (fractional_bits - 2);
  const int32_t mask = one_quarter - 1;
  const int32_t a_mod_quarter_minus_one_quarter =
      wrapping_sub(a & mask, one_quarter);
  int32_t result = exp_on_interval_between_negative_one_quarter_and_0_excl(
      saturating_rounding_multiply_by_pot(a_mod_quarter_minus_one_quarter,
                                          integer_bits));
  const int32_t remainder = wrapping_sub(a_mod_quarter_minus_one_quarter, a);

  // exp(-2^k) in Q0 for k = -2 .. 4.
  static const int32_t kFactors[7] = {1672461947, 1302514674, 790015084,
                                      290630308,  39332535,   720401,
                                      242};
  for (int i = 0; i < 7; ++i) {
    const int k = i - 2;
    if (integer_bits > k) {
      const int bit = fractional_bits + k;
      if (remainder & static_cast<int32_t>(uint32_t{1} << bit)) {
        result = saturating_rounding_doubling_high_mul(result, kFactors[i]);
      }
    }
  }
  if (integer_bits > 5) {
    // Below -32 the result is flushed to zero.
    const int32_t clamp = -(int32_t{1} << (36 - integer_bits));
    if (a < clamp) result = 0;
  }
  if (a == 0) result = INT32_MAX;  // exp(0) = "one" in Q0
  return result;
}

// 2 / (1 + a) in Q2 for a Q0 value a in [0, 1): Newton-Raphson on the half
// denominator, three iterations (gemmlowp's division step).
inline int32_t two_over_one_plus_x_q2(int32_t a) {
  const int32_t half_denominator = rounding_half_sum(a, INT32_MAX);
  const int32_t k48_over_17 = 1515870810;       // Q2
  const int32_t kMinus32_over_17 = -1010580540;  // Q2
  const int32_t kOneQ2 = int32_t{1} << 29;
  int32_t x = wrapping_add(
      k48_over_17,
      saturating_rounding_doubling_high_mul(half_denominator, kMinus32_over_17));
  for (int i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x =
        saturating_rounding_doubling_high_mul(half_denominator, x);
    const int32_t one_minus = wrapping_sub(kOneQ2, half_denominator_times_x);
    // Q2 * Q2 = Q4, brought back to Q2.
    x = wrapping_add(x, saturating_rounding_multiply_by_pot(
                            saturating_rounding_doubling_high_mul(x, one_minus),
                            2));
  }
  return x;
}

// 1 / (1 + a) for a Q0 value a in [0, 1), returned in Q0.
inline int32_t one_over_one_plus_x_for_x_in_0_1(int32_t a) {
  // 2 / (1 + a) in Q2 is 1 / (1 + a) in Q1; rescale to Q0.
  return saturating_rounding_multiply_by_pot(two_over_one_plus_x_q2(a), 1);
}

// (1 - a) / (1 + a) = 2 / (1 + a) - 1 for a Q0 value a in [0, 1), in Q0.
inline int32_t one_minus_x_over_one_plus_x_for_x_in_0_1(int32_t a) {
  const int32_t kOneQ2 = int32_t{1} << 29;
  return saturating_rounding_multiply_by_pot(
      wrapping_sub(two_over_one_plus_x_q2(a), kOneQ2), 2);
}

// tanh(a) for a in Q(integer_bits), returned in Q0: tanh(|a|) =
// (1 - exp(-2|a|)) / (1 + exp(-2|a|)), the sign restored afterwards.
inline int32_t tanh(int32_t a, int integer_bits) {
  if (a == 0) return 0;
  const int32_t neg_abs = a > 0 ? wrapping_sub(0, a) : a;
  // -2|a| has the raw bits of -|a| read with one more integer bit.
  const int32_t t = one_minus_x_over_one_plus_x_for_x_in_0_1(
      exp_on_negative_values(neg_abs, integer_bits + 1));
  return a < 0 ? wrapping_sub(0, t) : t;
}

// 1 / (1 + exp(-a)) for a in Q(integer_bits), returned in Q0.
inline int32_t logistic(int32_t a, int integer_bits) {
  if (a == 0) return int32_t{1} << 30;  // one half
  const int32_t neg_abs = a > 0 ? wrapping_sub(0, a) : a;
  const int32_t if_positive = one_over_one_plus_x_for_x_in_0_1(
      exp_on_negative_values(neg_abs, integer_bits));
  return a > 0 ? if_positive : wrapping_sub(INT32_MAX, if_positive);
}

// Reciprocal of a positive Q(x_integer_digits) value x: returns 1 / y in Q0
// where y = x / 2^num_bits_over_unit lies in [1, 2).
inline int32_t get_reciprocal(int32_t x, int x_integer_digits,
                              int* num_bits_over_unit) {
  const int headroom_plus_one =
      count_leading_zeros_u32(static_cast<uint32_t>(x));
  *num_bits_over_unit = x_integer_digits - headroom_plus_one;
  const int32_t shifted_minus_one = static_cast<int32_t>(
      (static_cast<uint32_t>(x) << headroom_plus_one) - (uint32_t{1} << 31));
  return one_over_one_plus_x_for_x_in_0_1(shifted_minus_one);
}

// ---------------------------------------------------------------------------
// int16 fixed-point helpers (gemmlowp's int16 specialisations, as used by
// TFLite's HARD_SWISH).  Results are narrowed back to int16 with two's
// complement wrap-around, exactly as the int16-typed reference code does.
// ---------------------------------------------------------------------------

inline int16_t wrap_i16(int32_t v) {
  return static_cast<int16_t>(static_cast<uint16_t>(static_cast<uint32_t>(v)));
}

// round(a * b / 2^15), ties away from zero; saturates -32768 * -32768.
inline int16_t saturating_rounding_doubling_high_mul_i16(int16_t a,
                                                         int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  const int32_t nudge = ab >= 0 ? (1 << 14) : (1 - (1 << 14));
  return wrap_i16((ab + nudge) / (1 << 15));
}

// a * b / 2^15 truncated toward zero; saturates -32768 * -32768.
inline int16_t saturating_doubling_high_mul_i16(int16_t a, int16_t b) {
  if (a == b && a == INT16_MIN) return INT16_MAX;
  const int32_t ab = static_cast<int32_t>(a) * static_cast<int32_t>(b);
  return wrap_i16(ab / (1 << 15));
}

// gemmlowp's RoundingDivideByPOT instantiated for int16 (0 <= exponent <=
// 31).  For exponent >= 16 the int16 mask degenerates to -1, which gemmlowp
// does not special-case; neither do we.
inline int16_t rounding_divide_by_pot_i16(int16_t x, int exponent) {
  const int16_t mask = wrap_i16(static_cast<int32_t>((int64_t{1} << exponent) - 1));
  const int16_t remainder = wrap_i16(x & mask);
  const int16_t threshold = wrap_i16((mask >> 1) + (x < 0 ? 1 : 0));
  return wrap_i16((static_cast<int32_t>(x) >> exponent) +
                  (remainder > threshold ? 1 : 0));
}

// value * 2^amount saturated to the int16 range (0 <= amount < 31).
inline int16_t saturating_left_shift_i16(int16_t value, int amount) {
  const int64_t v = static_cast<int64_t>(value) * (int64_t{1} << amount);
  if (v > INT16_MAX) return INT16_MAX;
  if (v < INT16_MIN) return INT16_MIN;
  return static_cast<int16_t>(v);
}

}  // namespace te

#endif  // TINYENGINE_KERNELS_FIXED_POINT_H_
