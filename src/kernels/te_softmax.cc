// SOFTMAX, int8 in -> int8 out (output scale 1/256, zero point -128) or int16
// out (scale 1/65536, zero point -32768); int16 in -> int16 out.
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

// int8 input; OutT is int8 (steps of 1/256 from -128) or int16 (steps of
// 1/65536 from -32768), TFLM's two outputs of an int8 softmax.
template <typename OutT>
void softmax_int8_input(const te_softmax_params* p, const int8_t* input,
                        OutT* output) {
  const int32_t rows = p->rows;
  const int32_t depth = p->depth;
  const int32_t input_beta_multiplier = p->input_beta_multiplier;
  const int32_t input_beta_left_shift = p->input_beta_left_shift;
  const int32_t diff_min = p->diff_min;
  for (int32_t r = 0; r < rows; ++r) {
    const int8_t* in = input + static_cast<int64_t>(r) * depth;
    OutT* out = output + static_cast<int64_t>(r) * depth;

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
    // Q0 product -> output steps (1/256 or 1/65536): drop 31 minus the output
    // bits, plus the bits by which the sum exceeded one.
    // TFLM aborts (TFLITE_CHECK) when exponent > 31, which needs a sum of
    // exps >= 2^bits (a long, nearly flat row).  Every output is then below
    // half a step, so we return the correctly rounded 0 instead.
    constexpr int kOutBits = 8 * static_cast<int>(sizeof(OutT));
    constexpr int32_t kOutMin = -(int32_t(1) << (kOutBits - 1));
    constexpr int32_t kOutMax = (int32_t(1) << (kOutBits - 1)) - 1;
    const int exponent = num_bits_over_unit + 31 - kOutBits;
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
        out[c] = static_cast<OutT>(
            te::clamp_i32(unsat + kOutMin, kOutMin, kOutMax));
      } else {
        out[c] = static_cast<OutT>(kOutMin);
      }
    }
  }
}

}  // namespace

extern "C" void te_softmax_s8(const te_softmax_params* p, const int8_t* input,
                              int8_t* output) {
  softmax_int8_input(p, input, output);
}

extern "C" void te_softmax_s8_s16(const te_softmax_params* p,
                                  const int8_t* input, int16_t* output) {
  softmax_int8_input(p, input, output);
}

namespace {

// Linear interpolation in a 513-entry int16 table over the int16 range: the
// top 9 bits of v pick the entry, the low 7 bits weigh the next one.
inline int32_t lookup_s16(const int16_t* table, int32_t v) {
  const int32_t index = 256 + (v >> 7);
  const int32_t offset = v & 0x7F;
  const int32_t base = table[index];
  const int32_t slope = static_cast<int16_t>(table[index + 1] - base);
  return static_cast<int16_t>(base + ((slope * offset + 64) >> 7));
}

}  // namespace

extern "C" void te_softmax_s16(const te_softmax_s16_params* p,
                               const int16_t* input, const int16_t* exp_table,
                               const int16_t* reciprocal_table,
                               int16_t* output) {
  const int32_t depth = p->depth;
  for (int32_t r = 0; r < p->rows; ++r) {
    const int16_t* in = input + r * depth;
    int16_t* out = output + r * depth;
    int32_t max_value = INT16_MIN;
    for (int32_t c = 0; c < depth; ++c) {
      if (in[c] > max_value) max_value = in[c];
    }
    // exp(x - max) from the table (differences scaled to its [-10, 0] range);
    // the output row holds them until the sum is known.
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t scaled = te::multiply_by_quantized_multiplier(
                                 in[c] - max_value, p->input_multiplier,
                                 p->input_shift) +
                             INT16_MAX;
      const int32_t e =
          lookup_s16(exp_table, te::clamp_i32(scaled, INT16_MIN, INT16_MAX));
      out[c] = static_cast<int16_t>(e);
      sum += e;
    }
    // 1 / sum: the sum normalised to [1, 2) in Q14 (as 1 + x, x in [0, 1)),
    // then the 1 / (1 + x) table.
    const int headroom = te::count_leading_zeros_u32(static_cast<uint32_t>(sum));
    const int32_t normalised = static_cast<int32_t>(
        ((static_cast<int64_t>(sum) << (headroom - 1)) + (1 << 13)) >> 14);
    const int32_t reciprocal = lookup_s16(
        reciprocal_table, te::clamp_i32(normalised - 98304, INT16_MIN, INT16_MAX));
    const int right_shift = 31 - headroom;
    for (int32_t c = 0; c < depth; ++c) {
      const int64_t product = static_cast<int64_t>(out[c]) * reciprocal;
      const int32_t y = static_cast<int32_t>(
          (product + (static_cast<int64_t>(1) << (right_shift - 1))) >> right_shift);
      out[c] = static_cast<int16_t>(te::clamp_i32(y, 0, INT16_MAX));
    }
  }
}

extern "C" void te_log_softmax_s8(const te_log_softmax_params* p,
                                  const int8_t* input, int8_t* output) {
  const int kInputBits = 5;   // differences in Q5.26
  const int kSumBits = 12;    // the sum of exps in Q12.19
  const int kOutputBits = 4;  // the output steps are 1/16
  const int32_t depth = p->depth;
  for (int32_t r = 0; r < p->rows; ++r) {
    const int8_t* in = input + r * depth;
    int8_t* out = output + r * depth;
    int32_t max_value = INT8_MIN;
    for (int32_t c = 0; c < depth; ++c) {
      if (in[c] > max_value) max_value = in[c];
    }
    int32_t sum = 0;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = in[c] - max_value;
      if (diff < p->diff_min) continue;
      const int32_t scaled = te::multiply_by_quantized_multiplier(
          diff, p->input_multiplier, p->input_left_shift);
      sum = te::wrapping_add(
          sum, te::rounding_divide_by_pot(
                   te::exp_on_negative_values(scaled, kInputBits), kSumBits));
    }
    const int32_t log_sum =
        te::log_x_for_x_greater_than_or_equal_to_1(sum, kSumBits, kInputBits);
    // Differences at or below this (in input steps) give the lowest output.
    const int32_t reachable = te::multiply_by_quantized_multiplier(
        te::wrapping_add(log_sum, INT32_MIN), p->reverse_multiplier,
        p->reverse_shift);
    const int32_t cutoff = reachable > p->diff_min - 1 ? reachable : p->diff_min - 1;
    for (int32_t c = 0; c < depth; ++c) {
      const int32_t diff = in[c] - max_value;
      if (diff <= cutoff) {
        out[c] = INT8_MIN;
        continue;
      }
      const int32_t scaled = te::multiply_by_quantized_multiplier(
          diff, p->input_multiplier, p->input_left_shift);
      const int32_t y =
          te::rounding_divide_by_pot(te::wrapping_sub(scaled, log_sum),
                                     31 - kInputBits - kOutputBits) +
          INT8_MAX;
      out[c] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
    }
  }
}
