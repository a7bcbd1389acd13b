// Portable fully connected layers, TFLM-exact: int8 activations with int32
// accumulators and bias, int16 activations (16x8) with int64 ones, or with
// int32 ones when the model's bias is int32 (TFLM then sums in the bias type).
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

template <typename T, typename Acc>
void fully_connected(const te_fc_params* p, const T* input,
                     const int8_t* filter, const Acc* bias,
                     const int32_t* multiplier, const int32_t* shift,
                     T* output) {
  const int32_t depth = p->input_depth;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in = input + b * depth;
    for (int32_t o = 0; o < p->output_depth; ++o) {
      const int8_t* w = filter + o * depth;
      Acc acc = 0;
      for (int32_t d = 0; d < depth; ++d) {
        acc += (in[d] + p->input_offset) * (w[d] + p->filter_offset);
      }
      if (bias) acc += bias[o];
      int32_t v =
          te::rescale_accumulator(acc, multiplier[o], shift[o]);
      v += p->output_offset;
      output[b * p->output_depth + o] =
          static_cast<T>(te::clamp_i32(v, p->act_min, p->act_max));
    }
  }
}

}  // namespace

extern "C" void te_fully_connected_s8(const te_fc_params* p,
                                      const int8_t* input,
                                      const int8_t* filter,
                                      const int32_t* bias,
                                      const int32_t* multiplier,
                                      const int32_t* shift, int8_t* output) {
  fully_connected(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_fully_connected_s16(const te_fc_params* p,
                                       const int16_t* input,
                                       const int8_t* filter,
                                       const int64_t* bias,
                                       const int32_t* multiplier,
                                       const int32_t* shift, int16_t* output) {
  fully_connected(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_fully_connected_s16_b32(
    const te_fc_params* p, const int16_t* input, const int8_t* filter,
    const int32_t* bias, const int32_t* multiplier, const int32_t* shift,
    int16_t* output) {
  fully_connected(p, input, filter, bias, multiplier, shift, output);
}
