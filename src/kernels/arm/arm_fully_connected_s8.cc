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

namespace {

using te_arm::word_t;

// acc[0..3] += rows . x over `groups` groups of four inputs.
inline void dot4(const int8_t* x, const int8_t*& w, int32_t groups, int32_t acc[4]) {
#if TE_ARM_DSP
  int32_t a0 = acc[0], a1 = acc[1], a2 = acc[2], a3 = acc[3];
  if (groups > 0) {
    uint32_t xa, xb, w0, w1, t;
    __asm__ volatile(
        "1:\n\t"
        "ldr %[xa], [%[x]], #4\n\t"
        "sxtb16 %[xb], %[xa], ror #8\n\t"
        "sxtb16 %[xa], %[xa]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "sxtb16 %[t], %[w0]\n\t"
        "smlad %[a0], %[xa], %[t], %[a0]\n\t"
        "sxtb16 %[t], %[w0], ror #8\n\t"
        "smlad %[a0], %[xb], %[t], %[a0]\n\t"
        "sxtb16 %[t], %[w1]\n\t"
        "smlad %[a1], %[xa], %[t], %[a1]\n\t"
        "sxtb16 %[t], %[w1], ror #8\n\t"
        "smlad %[a1], %[xb], %[t], %[a1]\n\t"
        "ldrd %[w0], %[w1], [%[w]], #8\n\t"
        "sxtb16 %[t], %[w0]\n\t"
        "smlad %[a2], %[xa], %[t], %[a2]\n\t"
        "sxtb16 %[t], %[w0], ror #8\n\t"
        "smlad %[a2], %[xb], %[t], %[a2]\n\t"
        "sxtb16 %[t], %[w1]\n\t"
        "smlad %[a3], %[xa], %[t], %[a3]\n\t"
        "sxtb16 %[t], %[w1], ror #8\n\t"
        "smlad %[a3], %[xb], %[t], %[a3]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 1b\n\t"
        : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w),
          [n] "+r"(groups), [xa] "=&r"(xa), [xb] "=&r"(xb), [w0] "=&r"(w0), [w1] "=&r"(w1), [t] "=&r"(t)
        :
        : "cc", "memory");
  }
  acc[0] = a0, acc[1] = a1, acc[2] = a2, acc[3] = a3;
#else
  for (; groups > 0; --groups, x += 4, w += 16) {
    const uint32_t v = te_arm::load32(x);
    const int32_t xa = te_arm::sxtb16(v), xb = te_arm::sxtb16_ror8(v);
    for (int r = 0; r < 4; ++r) {
      const uint32_t wr = te_arm::load32(w + 4 * r);
      acc[r] = te_arm::smlad(xa, te_arm::sxtb16(wr), acc[r]);
      acc[r] = te_arm::smlad(xb, te_arm::sxtb16_ror8(wr), acc[r]);
    }
  }
#endif
}

}  // namespace

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
      dot4(in, w, groups, acc);
      if (rest) {  // the last, partial group of inputs (zero weights beyond)
        uint32_t v = 0;
        for (int32_t i = 0; i < rest; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(in[4 * groups + i])) << (8 * i);
        const int32_t xa = te_arm::sxtb16(v), xb = te_arm::sxtb16_ror8(v);
        for (int r = 0; r < 4; ++r) {
          const uint32_t wr = te_arm::load32(w + 4 * r);
          acc[r] = te_arm::smlad(xa, te_arm::sxtb16(wr), acc[r]);
          acc[r] = te_arm::smlad(xb, te_arm::sxtb16_ror8(wr), acc[r]);
        }
        w += 16;
      }
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
