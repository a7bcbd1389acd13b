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
