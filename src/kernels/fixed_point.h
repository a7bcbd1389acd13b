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

// The 64-bit accumulator form TFLite uses for int16 activations: the Q31
// multiplier is first rounded to 16 bits, so that x (below 2^47) times it
// cannot overflow 64 bits; shift is at most 15.
inline int32_t multiply_by_quantized_multiplier_64(int64_t x,
                                                   int32_t multiplier,
                                                   int shift) {
  const int32_t reduced =
      multiplier < 0x7FFF0000 ? (multiplier + (1 << 15)) >> 16 : 0x7FFF;
  const int total_shift = 15 - shift;
  const int64_t round = static_cast<int64_t>(1) << (total_shift - 1);
  return static_cast<int32_t>((x * reduced + round) >> total_shift);
}

// The accumulator's width picks the arithmetic: int32 sums of int8 products,
// int64 sums of int16 ones.
inline int32_t rescale_accumulator(int32_t acc, int32_t multiplier,
                                   int shift) {
  return multiply_by_quantized_multiplier(acc, multiplier, shift);
}

inline int32_t rescale_accumulator(int64_t acc, int32_t multiplier,
                                   int shift) {
  return multiply_by_quantized_multiplier_64(acc, multiplier, shift);
}

// Linear interpolation in TFLite's 256-entry sigmoid table (int16 LOGISTIC
// and TANH): entry h = a >> frac_bits, with the low frac_bits of a as the
// weight towards entry h + 1; `saturated` beyond the table.
inline uint32_t interpolate_sigmoid_table(const uint16_t* table, int32_t a,
                                          int frac_bits, uint32_t saturated) {
  const int32_t h = a >> frac_bits;
  if (h >= 255) return saturated;
  const int32_t weight = a & ((1 << frac_bits) - 1);
  return (static_cast<uint32_t>(table[h]) << frac_bits) +
         static_cast<uint32_t>(weight * (table[h + 1] - table[h]));
}

// An int16 input times the LOGISTIC/TANH input multiplier, rounded right by
// the left shift (a multiplier of 0 stands for 3 << shift, shift 0).
inline int32_t scale_sigmoid_input(int32_t x, int32_t multiplier, int shift) {
  if (multiplier == 0) {
    multiplier = 3 << shift;
    shift = 0;
  }
  const int32_t round = shift > 0 ? 1 << (shift - 1) : 0;
  return (x * multiplier + round) >> shift;
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

// a + b and a - b saturated to the int32 range.
inline int32_t saturating_add(int32_t a, int32_t b) {
  const int64_t v = static_cast<int64_t>(a) + b;
  return static_cast<int32_t>(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
}
inline int32_t saturating_sub(int32_t a, int32_t b) {
  const int64_t v = static_cast<int64_t>(a) - b;
  return static_cast<int32_t>(v > INT32_MAX ? INT32_MAX : v < INT32_MIN ? INT32_MIN : v);
}

// log(z) for z >= 1 given in Q(input_bits), returned in Q(output_bits).
// z = 2^e * m with m in [sqrt(1/2), sqrt(2)) (the normalisation tried with
// and without a factor sqrt(1/2), keeping the smaller mantissa), then
// log(z) = e * log(2) + log(m), log(m) from a rational approximation around
// 2^(-1/4).  The sum is formed with one more integer bit than the result.
inline int32_t log_x_for_x_greater_than_or_equal_to_1(int32_t z,
                                                      int input_bits,
                                                      int output_bits) {
  const int32_t kLog2 = 1488522236;          // log(2), Q0
  const int32_t kSqrtSqrtHalf = 1805811301;  // 2^(-1/4), Q0
  const int32_t kSqrtHalf = 1518500250;      // 2^(-1/2), Q0
  const int32_t kOneQuarter = 536870912;     // Q0
  const int32_t kAlphaN = 117049297;  // the approximation's coefficients, Q0
  const int32_t kAlphaD = 127690142;
  const int32_t kAlphaI = 1057819769;
  const int32_t kAlphaF = 638450708;
  const int acc_bits = output_bits + 1;
  const int32_t shifted_quarter =
      saturating_rounding_multiply_by_pot(kOneQuarter, -acc_bits);

  // z read as Q0 and normalised: mantissa r_a and exponent (in Q(acc_bits)).
  const int headroom_a = count_leading_zeros_u32(static_cast<uint32_t>(z));
  const int32_t r_a = saturating_rounding_multiply_by_pot(
      saturating_rounding_doubling_high_mul(
          saturating_rounding_multiply_by_pot(z, headroom_a - 1), kSqrtHalf),
      1);
  const int32_t exp_a = saturating_add(
      saturating_rounding_multiply_by_pot(input_bits - headroom_a,
                                          31 - acc_bits),
      shifted_quarter);
  // The same with z * sqrt(1/2).
  const int32_t z_b = saturating_rounding_doubling_high_mul(z, kSqrtHalf);
  const int headroom_b =
      count_leading_zeros_u32(static_cast<uint32_t>(z_b)) - 1;
  const int32_t r_b = saturating_rounding_multiply_by_pot(z, headroom_b);
  const int32_t exp_b = saturating_sub(
      saturating_rounding_multiply_by_pot(input_bits - headroom_b,
                                          31 - acc_bits),
      shifted_quarter);
  const int32_t r = r_a < r_b ? r_a : r_b;
  const int32_t exponent = exp_a > exp_b ? exp_a : exp_b;

  const int32_t p = rounding_half_sum(r, kSqrtSqrtHalf);
  int32_t q = wrapping_sub(r, kSqrtSqrtHalf);
  q = wrapping_add(q, q);
  const int32_t q2 = saturating_rounding_doubling_high_mul(q, q);
  const int32_t numerator = wrapping_add(
      saturating_rounding_doubling_high_mul(q, r),
      saturating_rounding_doubling_high_mul(
          saturating_rounding_doubling_high_mul(q, q2), kAlphaN));
  const int32_t denominator_minus_one = wrapping_add(
      saturating_rounding_doubling_high_mul(
          p, wrapping_add(wrapping_add(kAlphaI, q),
                          saturating_rounding_doubling_high_mul(kAlphaD, q2))),
      saturating_rounding_doubling_high_mul(kAlphaF, q));
  const int32_t reciprocal =
      one_over_one_plus_x_for_x_in_0_1(denominator_minus_one);
  const int32_t sum = wrapping_add(
      saturating_rounding_doubling_high_mul(exponent, kLog2),
      saturating_rounding_doubling_high_mul(
          saturating_rounding_multiply_by_pot(numerator, -acc_bits),
          reciprocal));
  return saturating_rounding_multiply_by_pot(sum, acc_bits - output_bits);
}

// 1/sqrt(input) for input > 1 as (multiplier, left shift), by the fixed-point
// Newton-Raphson iteration of TFLite's GetInvSqrtQuantizedMultiplierExp with
// reverse_shift = -1.  Values are Q3 (3 integer bits) unless noted.
inline void inv_sqrt_multiplier(int32_t input, int32_t* multiplier, int* shift) {
  if (input <= 1) {
    *multiplier = INT32_MAX;
    *shift = 0;
    return;
  }
  int right_shift = 11;
  while (input >= (1 << 29)) {
    input /= 4;
    ++right_shift;
  }
  const int pairs =
      (count_leading_zeros_u32(static_cast<uint32_t>(input)) - 1) / 2 - 1;
  right_shift -= pairs;
  input <<= 2 * pairs;
  const int32_t half_input = rounding_divide_by_pot(input >> 1, 1);
  const int32_t three_halves = (1 << 28) + (1 << 27);
  int32_t x = 1 << 28;  // 1.0
  for (int i = 0; i < 5; ++i) {
    // x * x * x is Q9; each product of two Q3 values is Q6.
    const int32_t x2 = saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = saturating_rounding_multiply_by_pot(
        saturating_rounding_doubling_high_mul(x2, x), 6);
    const int32_t a = saturating_rounding_doubling_high_mul(three_halves, x);
    const int32_t b = saturating_rounding_doubling_high_mul(half_input, x3);
    x = saturating_rounding_multiply_by_pot(wrapping_sub(a, b), 3);
  }
  // Times sqrt(2)/2 (Q0).
  x = saturating_rounding_doubling_high_mul(x, 1518500250);
  if (right_shift < 0) {
    x = static_cast<int32_t>(static_cast<uint32_t>(x) << -right_shift);
    right_shift = 0;
  }
  *multiplier = x;
  *shift = -right_shift;
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
