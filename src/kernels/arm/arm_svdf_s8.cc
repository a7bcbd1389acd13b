// SVDF (int8 input and output, int16 state) for Cortex-M cores with the DSP
// extension.  Results equal te_svdf_s8's bit for bit.
//
// The two matrix products carry the MACs: the new frame's feature
// projections (te_arm::dot4_rows, four filters per input load) and each
// filter's time weighting (SMLAD on pairs of int16 state and time weights).
// Zero points are folded into the sums' initial values at code-generation
// time (-input_zero_point * sum(feature row), -state_zero_point * sum(time
// row)), so the int32 sums equal the portable ones exactly (two's complement
// sums do not depend on the order of their terms).  The history shift, the
// rescalings (fixed_point.h's multiply_by_quantized_multiplier), the
// state's clamp and the rank sums are the portable kernel's.
//
// Packed weights (tinyengine_kernels.h at te_arm_svdf_s8).
#include "arm_dsp.h"
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

inline int32_t feature_block_bytes(const te_svdf_params* p) { return 16 + 4 * ((p->input_size + 3) & ~3); }
inline int32_t time_record_bytes(const te_svdf_params* p) { return 4 + 2 * ((p->memory_size + 1) & ~1); }

// acc + sum over the memory of s[m] * w[m] (int16 each; s may be 2-byte aligned).
inline int32_t time_sum(const int16_t* s, const int16_t* w, int32_t memory, int32_t acc) {
  int32_t m = 0;
  for (; m + 1 < memory; m += 2) {
    acc = te_arm::smlad(static_cast<int32_t>(te_arm::load32(s + m)), static_cast<int32_t>(te_arm::load32(w + m)), acc);
  }
  if (m < memory) acc += s[m] * w[m];  // the last, unpaired value: no read past the state row
  return acc;
}

}  // namespace

extern "C" void te_arm_svdf_s8(const te_svdf_params* p, const int8_t* input, const int32_t* bias,
                               const int8_t* packed, int16_t* state, int8_t* output, void* scratch) {
  const int32_t batch = p->batch, inputs = p->input_size, filters = p->num_filters;
  const int32_t memory = p->memory_size, rank = p->rank, units = filters / rank;
  const int32_t f_blocks = (filters + 3) >> 2, f_block = feature_block_bytes(p);
  const int8_t* time_recs = packed + f_blocks * f_block;  // per filter: int32 init, int16 w[round_up2(memory)]
  const int32_t t_rec = time_record_bytes(p);
  int32_t* dots = static_cast<int32_t*>(scratch);  // [batch, filters]
  // The history moves one frame left, as the portable kernel moves it.
  const int32_t total = batch * filters * memory;
  if (total > 1) memmove(state, state + 1, 2 * (total - 1));
  for (int32_t b = 0; b < batch; ++b) {
    const int8_t* x = input + b * inputs;
    const int8_t* blk = packed;
    for (int32_t f0 = 0; f0 < filters; f0 += 4, blk += f_block) {
      int32_t acc[4];
      memcpy(acc, blk, 16);
      const int8_t* w = blk + 16;
      te_arm::dot4_rows(x, w, inputs >> 2, inputs & 3, acc);
      const int32_t n = filters - f0 < 4 ? filters - f0 : 4;
      for (int32_t r = 0; r < n; ++r) {
        // TFLM clamps to the state type, then adds the zero point (and wraps).
        const int32_t v = te::clamp_i32(
            te::multiply_by_quantized_multiplier(acc[r], p->feature_multiplier, p->feature_shift), INT16_MIN,
            INT16_MAX);
        state[(b * filters + f0 + r) * memory + memory - 1] = static_cast<int16_t>(v + p->state_zero_point);
      }
    }
  }
  for (int32_t b = 0; b < batch; ++b) {
    const int8_t* rec = time_recs;
    for (int32_t f = 0; f < filters; ++f, rec += t_rec) {
      int32_t init;
      memcpy(&init, rec, 4);
      dots[b * filters + f] = time_sum(state + (b * filters + f) * memory, reinterpret_cast<const int16_t*>(rec + 4),
                                       memory, init);
    }
    for (int32_t u = 0; u < units; ++u) {
      int32_t acc = bias[u];
      for (int32_t r = 0; r < rank; ++r) acc += dots[b * filters + u * rank + r];
      const int32_t y =
          te::multiply_by_quantized_multiplier(acc, p->output_multiplier, p->output_shift) + p->output_zero_point;
      output[b * units + u] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
    }
  }
}

extern "C" int32_t te_arm_svdf_s8_get_buffer_size(const te_svdf_params* p) { return p->batch * p->num_filters * 4; }

extern "C" int32_t te_arm_svdf_s8_get_state_size(const te_svdf_params* p) {
  return p->batch * p->num_filters * p->memory_size * 2;
}
