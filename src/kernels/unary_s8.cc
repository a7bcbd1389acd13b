// Portable int8 ABS, RSQRT, LEAKY_RELU and table lookups, TFLM-exact.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

inline int8_t saturate_s8(int32_t v) {
  return static_cast<int8_t>(te::clamp_i32(v, -128, 127));
}

// 1/sqrt(input) for input > 1 as (multiplier, left shift), by the fixed-point
// Newton-Raphson iteration of TFLite's GetInvSqrtQuantizedMultiplierExp with
// reverse_shift = -1.  Values are Q3 (3 integer bits) unless noted.
void inv_sqrt_multiplier(int32_t input, int32_t* multiplier, int* shift) {
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
      (te::count_leading_zeros_u32(static_cast<uint32_t>(input)) - 1) / 2 - 1;
  right_shift -= pairs;
  input <<= 2 * pairs;
  const int32_t half_input = te::rounding_divide_by_pot(input >> 1, 1);
  const int32_t three_halves = (1 << 28) + (1 << 27);
  int32_t x = 1 << 28;  // 1.0
  for (int i = 0; i < 5; ++i) {
    // x * x * x is Q9; each product of two Q3 values is Q6.
    const int32_t x2 = te::saturating_rounding_doubling_high_mul(x, x);
    const int32_t x3 = te::saturating_rounding_multiply_by_pot(
        te::saturating_rounding_doubling_high_mul(x2, x), 6);
    const int32_t a = te::saturating_rounding_doubling_high_mul(three_halves, x);
    const int32_t b = te::saturating_rounding_doubling_high_mul(half_input, x3);
    x = te::saturating_rounding_multiply_by_pot(te::wrapping_sub(a, b), 3);
  }
  // Times sqrt(2)/2 (Q0).
  x = te::saturating_rounding_doubling_high_mul(x, 1518500250);
  if (right_shift < 0) {
    x = static_cast<int32_t>(static_cast<uint32_t>(x) << -right_shift);
    right_shift = 0;
  }
  *multiplier = x;
  *shift = -right_shift;
}

}  // namespace

extern "C" void te_abs_s8(const te_unary_params* p, const int8_t* input,
                          int8_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    int32_t v = input[i] - p->input_zero_point;
    v = v < 0 ? -v : v;
    output[i] = saturate_s8(
        te::multiply_by_quantized_multiplier(v, p->multiplier, p->shift) +
        p->output_zero_point);
  }
}

extern "C" void te_rsqrt_s8(const te_unary_params* p, const int8_t* input,
                            int8_t* output) {
  const int kShift = 20;  // keeps 1/sqrt(v) an integer before the rescale
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t v = input[i] - p->input_zero_point;
    if (v == 0) {
      output[i] = 127;
      continue;
    }
    int32_t m;
    int s;
    inv_sqrt_multiplier(v, &m, &s);
    const int32_t data = te::multiply_by_quantized_multiplier(1, m, s + kShift);
    output[i] = saturate_s8(te::multiply_by_quantized_multiplier(
                                data, p->multiplier, p->shift - kShift) +
                            p->output_zero_point);
  }
}

extern "C" void te_leaky_relu_s8(const te_unary_params* p, const int8_t* input,
                                 int8_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t v = input[i] - p->input_zero_point;
    const int32_t scaled =
        v >= 0 ? te::multiply_by_quantized_multiplier(v, p->multiplier, p->shift)
               : te::multiply_by_quantized_multiplier(v, p->alpha_multiplier,
                                                      p->alpha_shift);
    output[i] = saturate_s8(scaled + p->output_zero_point);
  }
}

extern "C" void te_lut_s8(const te_lut_params* p, const int8_t* input,
                          const int8_t* table, int8_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    output[i] = table[static_cast<uint8_t>(input[i])];
  }
}
