// LOGISTIC, int8 -> int8 (output scale 1/256, zero point -128).
//
// Integer algorithm of TFLM's reference_integer_ops::Logistic for int8:
// inputs whose distance from the zero point reaches input_range_radius
// saturate to 0 or 1; the others are rescaled into Q4.27, passed through the
// gemmlowp fixed-point logistic (result in Q0.31) and rounded to steps of
// 1/256.
#include "tinyengine_kernels.h"

#include "fixed_point.h"

namespace {
constexpr int kInputIntegerBits = 4;   // logistic() input format Q4.27
constexpr int kOutputIntegerBits = 8;  // int8 output holds Q0.31 >> 23
}  // namespace

extern "C" void te_logistic_s8(const te_logistic_params* p,
                               const int8_t* input, int8_t* output) {
  const int32_t size = p->size;
  const int32_t input_zero_point = p->input_zero_point;
  const int32_t input_range_radius = p->input_range_radius;
  const int32_t input_multiplier = p->input_multiplier;
  const int32_t input_left_shift = p->input_left_shift;
  for (int32_t i = 0; i < size; ++i) {
    const int32_t x = static_cast<int32_t>(input[i]) - input_zero_point;
    if (x <= -input_range_radius) {
      output[i] = INT8_MIN;
    } else if (x >= input_range_radius) {
      output[i] = INT8_MAX;
    } else {
      const int32_t x_q4 = te::multiply_by_quantized_multiplier(
          x, input_multiplier, input_left_shift);
      const int32_t y_q0 = te::logistic(x_q4, kInputIntegerBits);
      const int32_t y = te::rounding_divide_by_pot(y_q0, 31 - kOutputIntegerBits);
      output[i] = static_cast<int8_t>(
          te::clamp_i32(y + INT8_MIN, INT8_MIN, INT8_MAX));
    }
  }
}

// LOGISTIC, int16 -> int16 (zero points 0, output scale 2^-15): TFLM's
// interpolation in the 256-entry sigmoid table, which holds sigmoid over
// [0, 256 / 24) in steps of 1/24 (an input of 2^9 per step after scaling).
// Negative inputs read the table at |x| and take 1 - sigmoid.
extern "C" void te_logistic_s16(const te_logistic_params* p,
                                const int16_t* input, const uint16_t* table,
                                int16_t* output) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t d = te::scale_sigmoid_input(input[i], p->input_multiplier,
                                              p->input_left_shift);
    const int32_t a = d < 0 ? -d : d;
    uint32_t r = te::interpolate_sigmoid_table(
        table, a, 9, static_cast<uint32_t>(0x7FFF) << 10);
    r = d >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1;
    output[i] = static_cast<int16_t>(r >> 10);
  }
}
