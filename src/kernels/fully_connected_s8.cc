// Portable int8 fully connected layer, TFLM-exact.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

extern "C" void te_fully_connected_s8(const te_fc_params* p,
                                      const int8_t* input,
                                      const int8_t* filter,
                                      const int32_t* bias,
                                      const int32_t* multiplier,
                                      const int32_t* shift, int8_t* output) {
  const int32_t depth = p->input_depth;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * depth;
    for (int32_t o = 0; o < p->output_depth; ++o) {
      const int8_t* w = filter + o * depth;
      int32_t acc = 0;
      for (int32_t d = 0; d < depth; ++d) {
        acc += (in[d] + p->input_offset) * (w[d] + p->filter_offset);
      }
      if (bias) acc += bias[o];
      acc = te::multiply_by_quantized_multiplier(acc, multiplier[o], shift[o]);
      acc += p->output_offset;
      output[b * p->output_depth + o] =
          static_cast<int8_t>(te::clamp_i32(acc, p->act_min, p->act_max));
    }
  }
}
