// Fully connected int8 layer for Cortex-M cores with the DSP extension: four
// output features at a time, each input word unpacked once (SXTB16) for the
// four filter rows.  Results equal te_fully_connected_s8's bit for bit (see
// arm_dsp.h for the requantization); symmetric weights only
// (filter_offset == 0).
//
// Packed filter (defined in tinyengine_kernels.h at te_arm_fully_connected_s8,
// packed by codegen/kernel_selection.py): output features in blocks of
// four (the last block zero-padded), each block
//   int32 bias + input_offset * sum(row), for the four rows
//   int8  rows interleaved per group of four inputs: [r0 k0..k3][r1 k0..k3]
//         [r2 ...][r3 ...][r0 k4..k7]...  (input_depth rounded up to 4,
//         zero-padded)
//   int32 {2 * multiplier - 2^32, 2^(rs - 1), rs} for the four rows
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

extern "C" void te_arm_fully_connected_s8(const te_fc_params* p, const int8_t* input, const int8_t* packed,
                                          int8_t* output) {
  const int32_t depth = p->input_depth;
  const int32_t groups = depth >> 2;
  const int32_t rest = depth & 3;
  const int32_t k4 = (depth + 3) & ~3;
  const int32_t outs = p->output_depth;
  const int32_t block = 16 + 4 * k4 + 48;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * depth;
    int8_t* out = output + b * outs;
    const int8_t* blk = packed;
    for (int32_t o = 0; o < outs; o += 4, blk += block) {
      int32_t acc[4];
      memcpy(acc, blk, 16);
      const int8_t* w = blk + 16;
      te_arm::dot4_rows(in, w, groups, rest, acc);
      int32_t q[12];
      memcpy(q, w, sizeof q);
      const int32_t n = outs - o < 4 ? outs - o : 4;
      for (int32_t r = 0; r < n; ++r) {
        int32_t v = te_arm::requantize(acc[r], q[3 * r], q[3 * r + 1], q[3 * r + 2]) + p->output_offset;
        v = v < p->act_min ? p->act_min : v;
        out[o + r] = static_cast<int8_t>(v > p->act_max ? p->act_max : v);
      }
    }
  }
}
