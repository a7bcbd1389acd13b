// HARD_SWISH, int8 -> int8: y = x * relu6(x + 3) / 6.
//
// Integer algorithm of TFLite's reference_ops::HardSwish<int8_t>, which works
// in 16-bit fixed point:
//   - the centred input is moved to a "high-resolution" scale (x 2^7);
//   - one copy is rescaled to the output scale (before the final shift);
//   - another is rescaled to the "reluish" scale on which 3.0 is 32768,
//     saturated, and mapped affinely from [-1, 1] to [0, 1];
//   - the two are multiplied (truncating doubling high multiply) and the
//     product is shifted down to the output scale.
// All intermediate values are int16 and wrap or saturate exactly where the
// reference's int16 arithmetic does.
#include "tinyengine_kernels.h"

#include "fixed_point.h"

extern "C" void te_hard_swish_s8(const te_hard_swish_params* p,
                                 const int8_t* input, int8_t* output) {
  const int32_t size = p->size;
  const int16_t in_zp = te::wrap_i16(p->input_zero_point);
  const int16_t out_zp = te::wrap_i16(p->output_zero_point);
  const int16_t reluish_mult = te::wrap_i16(p->reluish_multiplier_fixedpoint_int16);
  const int reluish_exp = p->reluish_multiplier_exponent;
  const int16_t output_mult = te::wrap_i16(p->output_multiplier_fixedpoint_int16);
  const int output_exp = p->output_multiplier_exponent;

  for (int32_t i = 0; i < size; ++i) {
    const int16_t x = te::wrap_i16(static_cast<int32_t>(input[i]) - in_zp);
    const int16_t x_hires = te::wrap_i16(static_cast<int32_t>(x) * (1 << 7));

    // Input on the output scale, not yet shifted by output_exp.
    const int16_t x_preshift_out =
        te::saturating_rounding_doubling_high_mul_i16(x_hires, output_mult);

    // Rescale to the reluish scale (3.0 -> 32768), saturating.  A left shift
    // is split so that only its last bit can saturate the result.
    int16_t reluish = x_hires;
    if (reluish_exp > 0) {
      reluish = te::saturating_left_shift_i16(reluish, reluish_exp - 1);
    }
    reluish = te::saturating_rounding_doubling_high_mul_i16(reluish, reluish_mult);
    if (reluish_exp > 0) {
      reluish = te::saturating_left_shift_i16(reluish, 1);
    } else if (reluish_exp < 0) {
      reluish = te::rounding_divide_by_pot_i16(reluish, -reluish_exp);
    }
    // [-1, 1] -> [0, 1] in Q15.
    reluish = te::wrap_i16((static_cast<int32_t>(reluish) + (1 << 15)) >> 1);

    const int16_t preshift_out =
        te::saturating_doubling_high_mul_i16(reluish, x_preshift_out);
    int16_t y = te::rounding_divide_by_pot_i16(preshift_out, -output_exp);
    y = te::wrap_i16(static_cast<int32_t>(y) + out_zp);
    output[i] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
  }
}
