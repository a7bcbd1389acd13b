// Conversions between quantizations: requantize, QUANTIZE, DEQUANTIZE.
#include <math.h>

#include "fixed_point.h"
#include "tinyengine_kernels.h"

extern "C" void te_requantize_s8(const int8_t* input, int8_t* output,
                                 int32_t size, int32_t input_offset,
                                 int32_t output_offset, int32_t multiplier,
                                 int32_t shift, int32_t act_min,
                                 int32_t act_max) {
  for (int32_t i = 0; i < size; ++i) {
    const int32_t v = te::multiply_by_quantized_multiplier(
                          input[i] + input_offset, multiplier, shift) +
                      output_offset;
    output[i] = static_cast<int8_t>(te::clamp_i32(v, act_min, act_max));
  }
}

extern "C" void te_quantize_f32_s8(const float* input, int8_t* output,
                                   int32_t size, float scale,
                                   int32_t zero_point) {
  for (int32_t i = 0; i < size; ++i) {
    // roundf rounds half away from zero, like TFLite's TfLiteRound.
    const float q = roundf(input[i] / scale);
    // Saturate in float first: a huge input must not overflow the cast.
    const float lo = -128.0f - static_cast<float>(zero_point);
    const float hi = 127.0f - static_cast<float>(zero_point);
    const float c = q < lo ? lo : (q > hi ? hi : q);
    output[i] = static_cast<int8_t>(static_cast<int32_t>(c) + zero_point);
  }
}

extern "C" void te_dequantize_s8_f32(const int8_t* input, float* output,
                                     int32_t size, double scale,
                                     int32_t zero_point) {
  for (int32_t i = 0; i < size; ++i) {
    output[i] = static_cast<float>(scale * (input[i] - zero_point));
  }
}
