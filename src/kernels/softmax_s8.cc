// SOFTMAX, int8 in -> int8 out (output scale 1/256, zero point -128).
//
// Integer algorithm of TFLM's reference int8 softmax:
//   1. per row, find the largest input value;
//   2. for every element whose difference d = x - max is not below diff_min,
//      rescale d by beta * input_scale into Q5.26 and evaluate exp(d) in
//      Q0.31 with the gemmlowp polynomial / barrel-shifter approximation;
//   3. accumulate the exps in Q12.19, take the fixed-point reciprocal of the
//      sum, and scale each exp by it into the int8 output range.
// The exponentials are recomputed in the second pass instead of being cached
// so that the kernel needs no scratch memory.
#include "tinyengine_kernels.h"

#include "fixed_point.h"

namespace {

constexpr int kScaledDiffIntegerBits = 5;    // exp() input format Q5.26
constexpr int kAccumulationIntegerBits = 12; // sum-of-exps format Q12.19

// exp(beta * input_scale * diff) in Q0 for a non-positive diff >= diff_min.
inline int32_t scaled_exp(int32_t diff, int32_t beta_multiplier,
                          int32_t beta_left_shift) {
  // The multiplier is >= 1 here (left shift >= 0), so this is a saturating
  // rounding doubling high multiply of the pre-shifted difference.
  const int32_t diff_q5_26 = te::saturating_rounding_doubling_high_mul(
      static_cast<int32_t>(static_cast<uint32_t>(diff) << beta_left_shift),
      beta_multiplier);
  return te::exp_on_negative_values(diff_q5_26, kScaledDiffIntegerBits);
}

}  // namespace

extern "C" void te_softmax_s8(const te_softmax_params* p, const int8_t* input,
                              int8_t* output) {
  const int32_t rows = p->rows;
  const int32_t depth = p->depth;
  const int32_t input_beta_multiplier = p->input_beta_multiplier;
  const int32_t input_beta_left_shift = p->input_beta_left_shift;
  const int32_t diff_min = p->diff_min;
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* in = input + static_cast<int64_t>(r) * depth;
    int8_t* out = output + static_cast<int64_t>(r) * depth;

    int32_t max_in_row = INT8_MIN;
    for (int32_t c = 0; c < depth; ++c) {
      if (in[c] > max_in_row) max_in_row = in[c];
    }

    int32_t sum_of_exps = 0;  // Q12.19
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(in[c]) - max_in_row;
      if (diff >= diff_min) {
        const int32_t e =
            scaled_exp(diff, input_beta_multiplier, input_beta_left_shift);
        sum_of_exps = te::wrapping_add(
            sum_of_exps,
            te::saturating_rounding_multiply_by_pot(e,
                                                    -kAccumulationIntegerBits));
      }
    }

    int num_bits_over_unit = 0;
    const int32_t reciprocal = te::get_reciprocal(
        sum_of_exps, kAccumulationIntegerBits, &num_bits_over_unit);
    // Q0 product -> int8 steps of 1/256: drop 31 - 8 bits plus the bits by
    // which the sum exceeded one.
    // TFLM aborts (TFLITE_CHECK) when exponent > 31, which needs a sum of
    // exps >= 256 (a long, nearly flat row).  Every output is then below
    // half a step, so we return the correctly rounded 0 instead.
    const int exponent = num_bits_over_unit + 31 - 8;
    const bool all_zero = exponent > 31;

    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = static_cast<int32_t>(in[c]) - max_in_row;
      if (diff >= diff_min) {
        const int32_t e =
            scaled_exp(diff, input_beta_multiplier, input_beta_left_shift);
        const int32_t unsat =
            all_zero ? 0
                     : te::rounding_divide_by_pot(
                           te::saturating_rounding_doubling_high_mul(
                               reciprocal, e),
                           exponent);
        out[c] = static_cast<int8_t>(
            te::clamp_i32(unsat + INT8_MIN, INT8_MIN, INT8_MAX));
      } else {
        out[c] = INT8_MIN;
      }
    }
  }
}
