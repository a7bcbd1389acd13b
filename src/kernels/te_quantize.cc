// Conversions between quantizations: requantize (int8 and int16 in any
// direction), QUANTIZE from float, DEQUANTIZE to float.
#include <math.h>

#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

template <typename In, typename Out>
void requantize(const te_requantize_params* p, const In* input, Out* output) {
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
    output[i] = static_cast<Out>(te::clamp_i32(v, act_min, act_max));
  }
}

template <typename Out>
void quantize_from_float(const te_quant_params* p, const float* input,
                         Out* output, float type_min, float type_max) {
  const int32_t size = p->size;
  const float scale = p->scale;
  const int32_t zero_point = p->zero_point;
  // Saturate in float first: a huge input must not overflow the cast.
  const float lo = type_min - static_cast<float>(zero_point);
  const float hi = type_max - static_cast<float>(zero_point);
  for (int32_t i = 0; i < size; ++i) {
    // roundf rounds half away from zero, like TFLite's TfLiteRound.
    const float q = roundf(input[i] / scale);
    const float c = q < lo ? lo : (q > hi ? hi : q);
    output[i] = static_cast<Out>(static_cast<int32_t>(c) + zero_point);
  }
}

template <typename In>
void dequantize_to_float(const te_quant_params* p, const In* input,
                         float* output) {
  const int32_t size = p->size;
  const float scale = p->scale;
  const int32_t zero_point = p->zero_point;
  for (int32_t i = 0; i < size; ++i) {
    output[i] = scale * static_cast<float>(input[i] - zero_point);
  }
}

}  // namespace

extern "C" void te_requantize_s8(const te_requantize_params* p,
                                 const int8_t* input, int8_t* output) {
  requantize(p, input, output);
}

extern "C" void te_requantize_s16(const te_requantize_params* p,
                                  const int16_t* input, int16_t* output) {
  requantize(p, input, output);
}

extern "C" void te_requantize_s8_s16(const te_requantize_params* p,
                                     const int8_t* input, int16_t* output) {
  requantize(p, input, output);
}

extern "C" void te_requantize_s16_s8(const te_requantize_params* p,
                                     const int16_t* input, int8_t* output) {
  requantize(p, input, output);
}

extern "C" void te_requantize_s32_s8(const te_requantize_params* p,
                                     const int32_t* input, int8_t* output) {
  requantize(p, input, output);
}

extern "C" void te_requantize_s32_s16(const te_requantize_params* p,
                                      const int32_t* input, int16_t* output) {
  requantize(p, input, output);
}

extern "C" void te_quantize_f32_s8(const te_quant_params* p,
                                   const float* input, int8_t* output) {
  quantize_from_float(p, input, output, -128.0f, 127.0f);
}

extern "C" void te_quantize_f32_s16(const te_quant_params* p,
                                    const float* input, int16_t* output) {
  quantize_from_float(p, input, output, -32768.0f, 32767.0f);
}

// TFLM computes static_cast<float>(double(scale) * (x - zero_point)).  The
// exact product of a float and an integer below 2^24 in magnitude has at most
// 48 significant bits, so the double product is exact and TFLM rounds it to
// float once -- which is what the float multiplication below does (IEEE
// multiplication rounds the exact product once), without double arithmetic
// (software-emulated on Cortex-M4F/M33, whose FPU is single precision).
extern "C" void te_dequantize_s8_f32(const te_quant_params* p,
                                     const int8_t* input, float* output) {
  dequantize_to_float(p, input, output);
}

extern "C" void te_dequantize_s16_f32(const te_quant_params* p,
                                      const int16_t* input, float* output) {
  dequantize_to_float(p, input, output);
}

namespace {

// CAST between integer types: the raw values converted as C converts them
// (TFLM's CAST ignores quantization).
template <typename In, typename Out>
void cast(const te_quant_params* p, const In* input, Out* output) {
  for (int32_t i = 0; i < p->size; ++i) output[i] = static_cast<Out>(input[i]);
}

}  // namespace

extern "C" void te_cast_s8_s16(const te_quant_params* p, const int8_t* input,
                               int16_t* output) {
  cast(p, input, output);
}

extern "C" void te_cast_s8_s32(const te_quant_params* p, const int8_t* input,
                               int32_t* output) {
  cast(p, input, output);
}

extern "C" void te_cast_s16_s8(const te_quant_params* p, const int16_t* input,
                               int8_t* output) {
  cast(p, input, output);
}

extern "C" void te_cast_s16_s32(const te_quant_params* p, const int16_t* input,
                                int32_t* output) {
  cast(p, input, output);
}
