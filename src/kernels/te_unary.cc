// Portable ABS, RSQRT, LEAKY_RELU and table lookups, TFLM-exact: int8, and
// ABS, RSQRT and LEAKY_RELU on int16 too.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

template <typename T, int32_t kMin, int32_t kMax>
void abs_values(const te_unary_params* p, const T* input, T* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    int32_t v = input[i] - p->input_zero_point;
    v = v < 0 ? -v : v;
    output[i] = static_cast<T>(te::clamp_i32(
        te::multiply_by_quantized_multiplier(v, p->multiplier, p->shift) +
            p->output_zero_point,
        kMin, kMax));
  }
}

template <typename T, int32_t kMin, int32_t kMax>
void leaky_relu(const te_unary_params* p, const T* input, T* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t v = input[i] - p->input_zero_point;
    const int32_t scaled =
        v >= 0 ? te::multiply_by_quantized_multiplier(v, p->multiplier, p->shift)
               : te::multiply_by_quantized_multiplier(v, p->alpha_multiplier,
                                                      p->alpha_shift);
    output[i] =
        static_cast<T>(te::clamp_i32(scaled + p->output_zero_point, kMin, kMax));
  }
}

// RSQRT as TFLM computes it for int8 and int16: 1/sqrt(v) as a fixed-point
// multiplier applied to 2^kShift, then the output rescale; v == 0 gives the
// largest value of the type.
template <typename T, int32_t kMin, int32_t kMax>
void rsqrt_values(const te_unary_params* p, const T* input, T* output) {
  const int kShift = 20;  // keeps 1/sqrt(v) an integer before the rescale
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t v = input[i] - p->input_zero_point;
    if (v == 0) {
      output[i] = static_cast<T>(kMax);
      continue;
    }
    int32_t m;
    int s;
    te::inv_sqrt_multiplier(v, &m, &s);
    const int32_t data = te::multiply_by_quantized_multiplier(1, m, s + kShift);
    output[i] = static_cast<T>(
        te::clamp_i32(te::multiply_by_quantized_multiplier(
                          data, p->multiplier, p->shift - kShift) +
                          p->output_zero_point,
                      kMin, kMax));
  }
}

}  // namespace

namespace {

// The raw integers negated, wrapping (the type's minimum stays itself): what
// TFLite's int8/int16 NEG computes, ignoring the quantization parameters.
template <typename T>
void negate(const te_unary_params* p, const T* input, T* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    output[i] = static_cast<T>(-static_cast<int32_t>(input[i]));
  }
}

}  // namespace

extern "C" void te_neg_s8(const te_unary_params* p, const int8_t* input,
                          int8_t* output) {
  negate(p, input, output);
}

extern "C" void te_neg_s16(const te_unary_params* p, const int16_t* input,
                           int16_t* output) {
  negate(p, input, output);
}

extern "C" void te_abs_s8(const te_unary_params* p, const int8_t* input,
                          int8_t* output) {
  abs_values<int8_t, INT8_MIN, INT8_MAX>(p, input, output);
}

extern "C" void te_abs_s16(const te_unary_params* p, const int16_t* input,
                           int16_t* output) {
  abs_values<int16_t, INT16_MIN, INT16_MAX>(p, input, output);
}

extern "C" void te_rsqrt_s8(const te_unary_params* p, const int8_t* input,
                            int8_t* output) {
  rsqrt_values<int8_t, INT8_MIN, INT8_MAX>(p, input, output);
}

extern "C" void te_rsqrt_s16(const te_unary_params* p, const int16_t* input,
                             int16_t* output) {
  rsqrt_values<int16_t, INT16_MIN, INT16_MAX>(p, input, output);
}

extern "C" void te_leaky_relu_s8(const te_unary_params* p, const int8_t* input,
                                 int8_t* output) {
  leaky_relu<int8_t, INT8_MIN, INT8_MAX>(p, input, output);
}

extern "C" void te_leaky_relu_s16(const te_unary_params* p,
                                  const int16_t* input, int16_t* output) {
  leaky_relu<int16_t, INT16_MIN, INT16_MAX>(p, input, output);
}

extern "C" void te_lut_s8(const te_lut_params* p, const int8_t* input,
                          const int8_t* table, int8_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    output[i] = table[static_cast<uint8_t>(input[i])];
  }
}
