// SVDF (the rank-decomposed fully connected layer over a sliding window of
// frames that streaming keyword spotting uses), int8 input and output, TFLM-
// exact.  The state holds, per batch and filter, the feature projections of the
// last memory_size frames (newest last) and persists between invocations.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

template <typename T, int32_t kMin, int32_t kMax>
void svdf(const te_svdf_params* p, const int8_t* input,
          const int8_t* weights_feature, const T* weights_time,
          const int32_t* bias, T* state, int8_t* output, void* scratch) {
  const int32_t batch = p->batch;
  const int32_t inputs = p->input_size;
  const int32_t filters = p->num_filters;
  const int32_t memory = p->memory_size;
  const int32_t rank = p->rank;
  const int32_t units = filters / rank;
  int32_t* dots = static_cast<int32_t*>(scratch);  // [batch, filters]
  // The history moves one frame left (TFLM shifts the whole buffer; the
  // elements crossing a row boundary land in the newest column, written next).
  const int32_t total = batch * filters * memory;
  for (int32_t i = 0; i + 1 < total; ++i) state[i] = state[i + 1];
  for (int32_t b = 0; b < batch; ++b) {
    const int8_t* x = input + b * inputs;
    for (int32_t f = 0; f < filters; ++f) {
      const int8_t* w = weights_feature + f * inputs;
      int32_t acc = 0;
      for (int32_t c = 0; c < inputs; ++c) {
        acc += w[c] * (x[c] - p->input_zero_point);
      }
      // TFLM clamps to the state type, then adds the zero point (and wraps).
      int32_t v = te::clamp_i32(te::multiply_by_quantized_multiplier(
                                    acc, p->feature_multiplier, p->feature_shift),
                                kMin, kMax);
      state[(b * filters + f) * memory + memory - 1] =
          static_cast<T>(v + p->state_zero_point);
    }
  }
  for (int32_t b = 0; b < batch; ++b) {
    for (int32_t f = 0; f < filters; ++f) {
      const T* s = state + (b * filters + f) * memory;
      const T* w = weights_time + f * memory;
      int32_t acc = 0;
      for (int32_t m = 0; m < memory; ++m) {
        acc += w[m] * (s[m] - p->state_zero_point);
      }
      dots[b * filters + f] = acc;
    }
    for (int32_t u = 0; u < units; ++u) {
      int32_t acc = bias[u];
      for (int32_t r = 0; r < rank; ++r) acc += dots[b * filters + u * rank + r];
      const int32_t y = te::multiply_by_quantized_multiplier(
                            acc, p->output_multiplier, p->output_shift) +
                        p->output_zero_point;
      output[b * units + u] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
    }
  }
}

}  // namespace

extern "C" void te_svdf_s8(const te_svdf_params* p, const int8_t* input,
                           const int8_t* weights_feature,
                           const int16_t* weights_time, const int32_t* bias,
                           int16_t* state, int8_t* output, void* scratch) {
  svdf<int16_t, INT16_MIN, INT16_MAX>(p, input, weights_feature, weights_time,
                                      bias, state, output, scratch);
}

extern "C" int32_t te_svdf_s8_get_buffer_size(const te_svdf_params* p) {
  return p->batch * p->num_filters * 4;
}

extern "C" int32_t te_svdf_s8_get_state_size(const te_svdf_params* p) {
  return p->batch * p->num_filters * p->memory_size * 2;
}

extern "C" void te_svdf_s8_int8_state(const te_svdf_params* p,
                                      const int8_t* input,
                                      const int8_t* weights_feature,
                                      const int8_t* weights_time,
                                      const int32_t* bias, int8_t* state,
                                      int8_t* output, void* scratch) {
  svdf<int8_t, INT8_MIN, INT8_MAX>(p, input, weights_feature, weights_time,
                                   bias, state, output, scratch);
}

extern "C" int32_t te_svdf_s8_int8_state_get_buffer_size(
    const te_svdf_params* p) {
  return p->batch * p->num_filters * 4;
}

extern "C" int32_t te_svdf_s8_int8_state_get_state_size(
    const te_svdf_params* p) {
  return p->batch * p->num_filters * p->memory_size;
}
