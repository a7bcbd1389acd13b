// L2_NORMALIZATION of int8 vectors, TFLM-exact: each row along the last axis
// divided by its root sum of squares, by TFLite's integer inverse square root,
// written with the output scale 1/128 and zero point 0 TFLM assumes.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

extern "C" void te_l2_normalization_s8(const te_l2_norm_params* p,
                                       const int8_t* input, int8_t* output) {
  const int kOutputShift = 7;  // output steps of 1/128
  const int32_t depth = p->depth;
  for (int32_t r = 0; r < p->rows; ++r) {
    const int8_t* in = input + r * depth;
    int8_t* out = output + r * depth;
    int32_t squares = 0;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t v = in[c] - p->input_zero_point;
      squares += v * v;
    }
    int32_t multiplier;
    int shift;
    te::inv_sqrt_multiplier(squares, &multiplier, &shift);
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t y = te::multiply_by_quantized_multiplier(
          in[c] - p->input_zero_point, multiplier, shift + kOutputShift);
      out[c] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
    }
  }
}

namespace {

// floor(sqrt(v)) of a 64-bit value, digit by digit (no division, no float).
uint32_t isqrt_u64(uint64_t v) {
  uint64_t root = 0;
  uint64_t bit = uint64_t{1} << 62;
  while (bit > v) bit >>= 2;
  while (bit != 0) {
    if (v >= root + bit) {
      v -= root + bit;
      root = (root >> 1) + bit;
    } else {
      root >>= 1;
    }
    bit >>= 2;
  }
  return static_cast<uint32_t>(root);
}

// a / 2^exponent (exponent 1..62) rounded to nearest, ties away from zero.
int64_t rounding_shift_i64(int64_t a, int exponent) {
  const int64_t half = int64_t{1} << (exponent - 1);
  return a >= 0 ? (a + half) >> exponent : -((-a + half) >> exponent);
}

}  // namespace

// LayerNormalization over the last axis, in integers only.  With
// d_i = depth * (x_i - mean) (exact), (x_i - mean) / sqrt(var + eps) =
// d_i / sqrt(sum_j d_j^2 / depth + eps * depth^2 / s_x^2); the per-element
// factor sqrt(depth) * gamma_i / s_y is folded into (multiplier, shift), so
// only one inverse square root per row remains, taken to 30 bits.
extern "C" void te_layer_norm_s8(const te_layer_norm_params* p,
                                 const int8_t* input, const int32_t* multiplier,
                                 const int32_t* shift, const int32_t* bias,
                                 int8_t* output) {
  const int32_t depth = p->depth;
  const int frac = p->fraction_bits;
  for (int32_t r = 0; r < p->rows; ++r) {
    const int8_t* in = input + r * depth;
    int8_t* out = output + r * depth;
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) sum += in[c] - p->input_zero_point;
    uint64_t w = static_cast<uint64_t>(p->epsilon_term);
    for (int32_t c = 0; c < depth; ++c) {
      const int64_t d = static_cast<int64_t>(depth) * (in[c] - p->input_zero_point) - sum;
      w += static_cast<uint64_t>(d * d);
    }
    // 1 / sqrt(w) = inv * 2^(k - 61), inv in (2^30, 2^31): w scaled by 4^k into [2^60, 2^62).
    int k = 0;
    int64_t inv = 0;
    if (w != 0) {
      while (w < (uint64_t{1} << 60)) {
        w <<= 2;
        ++k;
      }
      const uint64_t root = isqrt_u64(w);
      inv = static_cast<int64_t>((uint64_t{1} << 61) / root);
      if (inv > INT32_MAX) inv = INT32_MAX;
    }
    for (int32_t c = 0; c < depth; ++c) {
      const int64_t d = static_cast<int64_t>(depth) * (in[c] - p->input_zero_point) - sum;
      // |d| <= sqrt(w): y = d / sqrt(w) in Q30, within [-2^30, 2^30].
      const int32_t y = inv == 0 ? 0 : static_cast<int32_t>(rounding_shift_i64(d * inv, 31 - k));
      const int32_t scaled = te::multiply_by_quantized_multiplier(y, multiplier[c], shift[c]) + bias[c];
      const int32_t v = te::rounding_divide_by_pot(scaled, frac) + p->output_zero_point;
      out[c] = static_cast<int8_t>(te::clamp_i32(v, INT8_MIN, INT8_MAX));
    }
  }
}
