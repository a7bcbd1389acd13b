// TANH, int8 -> int8 (output scale 1/128, zero point 0).
//
// Integer algorithm of TFLM's reference_integer_ops::Tanh for int8: inputs
// whose distance from the zero point reaches input_range_radius saturate to
// -1 or 1; the others are rescaled into Q4.27, passed through the gemmlowp
// fixed-point tanh (result in Q0.31) and rounded to steps of 1/128.
#include "tinyengine_kernels.h"

#include "fixed_point.h"

namespace {
constexpr int kInputIntegerBits = 4;  // tanh() input format Q4.27
constexpr int kOutputFractionBits = 7;
}  // namespace

extern "C" void te_tanh_s8(const te_logistic_params* p, const int8_t* input,
                           int8_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t x = static_cast<int32_t>(input[i]) - p->input_zero_point;
    if (x <= -p->input_range_radius) {
      output[i] = INT8_MIN;
    } else if (x >= p->input_range_radius) {
      output[i] = INT8_MAX;
    } else {
      const int32_t x_q4 = te::multiply_by_quantized_multiplier(
          x, p->input_multiplier, p->input_left_shift);
      const int32_t y = te::rounding_divide_by_pot(
          te::tanh(x_q4, kInputIntegerBits), 31 - kOutputFractionBits);
      output[i] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
    }
  }
}

// TANH, int16 -> int16 (zero points 0, output scale 2^-15): tanh(x) =
// 2 sigmoid(2x) - 1 read from the same sigmoid table as te_logistic_s16 at
// twice the resolution (2^8 input steps per entry).
extern "C" void te_tanh_s16(const te_logistic_params* p, const int16_t* input,
                            const uint16_t* table, int16_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t d = te::scale_sigmoid_input(input[i], p->input_multiplier,
                                              p->input_left_shift);
    const int32_t a = d < 0 ? -d : d;
    const int32_t r = static_cast<int32_t>(te::interpolate_sigmoid_table(
        table, a, 8, static_cast<uint32_t>(0xFFFF) << 8));
    const int32_t v = d >= 0 ? r - (1 << 23) + (1 << 7)
                             : -r + (1 << 23) + (1 << 7) - 1;
    output[i] = static_cast<int16_t>(v >> 8);
  }
}
