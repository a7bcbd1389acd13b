// Conversions between quantizations: requantize, QUANTIZE, DEQUANTIZE.
#include <math.h>

#include "fixed_point.h"
#include "tinyengine_kernels.h"

extern "C" void te_requantize_s8(const te_requantize_params* p,
                                 const int8_t* input, int8_t* output) {
  const int32_t size = p->size;
  const int32_t input_offset = p->input_offset;
  const int32_t output_offset = p->output_offset;
  const int32_t multiplier = p->multiplier;
  const int32_t shift = p->shift;
  const int32_t act_min = p->act_min;
  const int32_t act_max = p->act_max;
  for (int32_t i = 0; i < size; ++i) {
    const int32_t v = te::multiply_by_quantized_multiplier(
                          input[i] + input_offset, multiplier, shift) +
                      output_offset;
    output[i] = static_cast<int8_t>(te::clamp_i32(v, act_min, act_max));
  }
}

extern "C" void te_quantize_f32_s8(const te_quant_params* p,
                                   const float* input, int8_t* output) {
  const int32_t size = p->size;
  const float scale = p->scale;
  const int32_t zero_point = p->zero_point;
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

// TFLM computes static_cast<float>(double(scale) * (x - zero_point)).  The
// exact product of a float and an integer below 2^24 in magnitude has at most
// 48 significant bits, so the double product is exact and TFLM rounds it to
// float once -- which is what the float multiplication below does (IEEE
// multiplication rounds the exact product once), without double arithmetic
// (software-emulated on Cortex-M4F/M33, whose FPU is single precision).
extern "C" void te_dequantize_s8_f32(const te_quant_params* p,
                                     const int8_t* input, float* output) {
  const int32_t size = p->size;
  const float scale = p->scale;
  const int32_t zero_point = p->zero_point;
  for (int32_t i = 0; i < size; ++i) {
    output[i] = scale * static_cast<float>(input[i] - zero_point);
  }
}
