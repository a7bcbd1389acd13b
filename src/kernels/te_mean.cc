// MEAN and SUM, int8 -> int8 and int16 -> int16, over the contiguous middle block of a tensor
// viewed as [outer, reduced, inner]; REDUCE_MAX and REDUCE_MIN likewise.
//
// Integer algorithm of TFLM's MEAN for int8 (reference_ops::
// QuantizedMeanOrSum with compute_sum = false), used by TFLM for every axis
// set, keep_dims value and pair of input/output quantizations:
//   sum   = sum of the raw int8 inputs of one output (int32);
//   x     = sum - input_zero_point * count;
//   the requantization (multiplier, shift) for input_scale / output_scale is
//   folded with 1 / count: with s = min(floor(log2(count)), 32, 31 + shift),
//   multiplier' = (multiplier * 2^s) / count (truncated), shift' = shift - s;
//   out   = clamp(MultiplyByQuantizedMultiplier(x, multiplier', shift') +
//                 output_zero_point).
// SUM (compute_sum = true) skips the fold: multiplier and shift as given.
#include "tinyengine_kernels.h"

#include "fixed_point.h"

namespace {

template <bool kSum, typename T, int32_t kMin, int32_t kMax>
void mean_or_sum(const te_mean_params* p, const T* input, T* output) {
  const int32_t outer = p->outer;
  const int32_t reduced = p->reduced;
  const int32_t inner = p->inner;
  const int64_t count = reduced;

  if (count <= 0) {
    // TFLM leaves the zero-initialised output untouched for an empty
    // reduction.
    for (int64_t i = 0; i < static_cast<int64_t>(outer) * inner; ++i) {
      output[i] = 0;
    }
    return;
  }

  // Fold the division by the element count into the requantization.
  int s = 0;  // floor(log2(count))
  for (uint64_t c = static_cast<uint64_t>(count); c > 1; c >>= 1) ++s;
  if (s > 32) s = 32;
  if (s > 31 + p->shift) s = 31 + p->shift;
  if (s < 0) s = 0;  // only for shifts below -31, which QuantizeMultiplier
                     // never produces
  const int32_t multiplier =
      kSum ? p->multiplier
           : static_cast<int32_t>(
                 (static_cast<int64_t>(p->multiplier) * (int64_t{1} << s)) /
                 count);
  const int shift = kSum ? p->shift : p->shift - s;

  // input_offset is -input_zero_point.
  const int64_t zero_point_total = -static_cast<int64_t>(p->input_offset) * count;

  for (int32_t o = 0; o < outer; ++o) {
    const T* block = input + static_cast<int64_t>(o) * reduced * inner;
    T* out = output + static_cast<int64_t>(o) * inner;
    for (int32_t i = 0; i < inner; ++i) {
      int32_t sum = 0;
      const T* v = block + i;
      for (int32_t r = 0; r < reduced; ++r) {
        sum = te::wrapping_add(sum, v[static_cast<int64_t>(r) * inner]);
      }
      const int32_t centred = static_cast<int32_t>(static_cast<uint32_t>(
          static_cast<uint64_t>(static_cast<int64_t>(sum) - zero_point_total)));
      const int32_t y =
          te::multiply_by_quantized_multiplier(centred, multiplier, shift) +
          p->output_offset;
      out[i] = static_cast<T>(te::clamp_i32(y, kMin, kMax));
    }
  }
}

// The extreme value (REDUCE_MAX/MIN) or its index (ARG_MAX/MIN, the first of
// equals: a strict comparison) of each reduced run.  An empty run gives TFLM's
// initial value (the type's lowest for a maximum) and index 0.
template <bool kMax, bool kIndex, typename Out>
void extreme(const te_mean_params* p, const int8_t* input, Out* output) {
  for (int32_t o = 0; o < p->outer; ++o) {
    const int8_t* block = input + static_cast<int64_t>(o) * p->reduced * p->inner;
    Out* out = output + static_cast<int64_t>(o) * p->inner;
    for (int32_t i = 0; i < p->inner; ++i) {
      int8_t best = p->reduced > 0 ? block[i] : (kMax ? INT8_MIN : INT8_MAX);
      int32_t best_index = 0;
      for (int32_t r = 1; r < p->reduced; ++r) {
        const int8_t v = block[static_cast<int64_t>(r) * p->inner + i];
        if (kMax ? v > best : v < best) {
          best = v;
          best_index = r;
        }
      }
      out[i] = static_cast<Out>(kIndex ? best_index : best);
    }
  }
}

}  // namespace

extern "C" void te_mean_s8(const te_mean_params* p, const int8_t* input,
                           int8_t* output) {
  mean_or_sum<false, int8_t, INT8_MIN, INT8_MAX>(p, input, output);
}

extern "C" void te_mean_s16(const te_mean_params* p, const int16_t* input,
                            int16_t* output) {
  mean_or_sum<false, int16_t, INT16_MIN, INT16_MAX>(p, input, output);
}

extern "C" void te_sum_s8(const te_mean_params* p, const int8_t* input,
                          int8_t* output) {
  mean_or_sum<true, int8_t, INT8_MIN, INT8_MAX>(p, input, output);
}

extern "C" void te_sum_s16(const te_mean_params* p, const int16_t* input,
                           int16_t* output) {
  mean_or_sum<true, int16_t, INT16_MIN, INT16_MAX>(p, input, output);
}

extern "C" void te_reduce_max_s8(const te_mean_params* p, const int8_t* input,
                                 int8_t* output) {
  extreme<true, false>(p, input, output);
}

extern "C" void te_reduce_min_s8(const te_mean_params* p, const int8_t* input,
                                 int8_t* output) {
  extreme<false, false>(p, input, output);
}

extern "C" void te_arg_max_s8(const te_mean_params* p, const int8_t* input,
                              int32_t* output) {
  extreme<true, true>(p, input, output);
}

extern "C" void te_arg_min_s8(const te_mean_params* p, const int8_t* input,
                              int32_t* output) {
  extreme<false, true>(p, input, output);
}
