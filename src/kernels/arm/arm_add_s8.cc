// Quantized ADD for Cortex-M cores with the DSP extension.  Results equal
// te_add_s8's bit for bit.
//
// An input's rescaled value -- MultiplyByQuantizedMultiplier((x + offset) <<
// left_shift, multiplier, shift) -- depends on the int8 x alone, so the code
// generator (codegen/kernel_selection.py) tabulates it, with TFLM's
// arithmetic, for the 256 values of x: table[(uint8_t)x] (int32, 1 KB per
// input).  What is left per element is two table reads, the sum and the
// output rescaling (arm_dsp.h's requantization).
// output may alias input1 or input2 when shapes match (as te_add_s8).
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

namespace {

// n elements with unit strides (not inlined: the loop needs all registers).
template <bool kFullRange>
__attribute__((noinline)) void add_contiguous(const te_arm_add_params* p, const int8_t* x, const int8_t* y, const int32_t* t1,
                    const int32_t* t2, int8_t* out, int32_t n) {
#if TE_ARM_DSP && defined(__OPTIMIZE__)  // at -O0 the frame pointer leaves too few registers
  if (kFullRange && n > 0) {
    const int8_t* end = out + n;
    int32_t a, b;
    __asm__ volatile(
        "1:\n\t"
        "ldrb %[a], [%[x]], #1\n\t"
        "ldrb %[b], [%[y]], #1\n\t"
        "ldr %[a], [%[t1], %[a], lsl #2]\n\t"
        "ldr %[b], [%[t2], %[b], lsl #2]\n\t"
        "add %[a], %[a], %[b]\n\t"
        "add %[b], %[a], %[rc]\n\t"
        "add %[b], %[b], %[a], asr #31\n\t"
        "smmlar %[a], %[a], %[m2], %[b]\n\t"
        "asr %[a], %[a], %[rs]\n\t"
        "add %[a], %[a], %[off]\n\t"
        "ssat %[a], #8, %[a]\n\t"
        "strb %[a], [%[out]], #1\n\t"
        "cmp %[out], %[end]\n\t"
        "bne 1b\n\t"
        : [x] "+r"(x), [y] "+r"(y), [out] "+r"(out), [a] "=&r"(a), [b] "=&r"(b)
        : [t1] "r"(t1), [t2] "r"(t2), [end] "r"(end), [rc] "r"(p->output_rounding), [m2] "r"(p->output_m2),
          [rs] "r"(p->output_shift), [off] "r"(p->output_offset)
        : "cc", "memory");
    return;
  }
#endif
  for (int32_t i = 0; i < n; ++i) {
    const int32_t sum = t1[static_cast<uint8_t>(x[i])] + t2[static_cast<uint8_t>(y[i])];
    out[i] = te_arm::finish<kFullRange>(
        te_arm::requantize(sum, p->output_m2, p->output_rounding, p->output_shift), p->output_offset,
        p->act_min, p->act_max);
  }
}

template <bool kFullRange>
void add(const te_arm_add_params* p, const int8_t* input1, const int8_t* input2, const int32_t* t1,
         const int32_t* t2, int8_t* output) {
  const int32_t* d = p->dims;
  const int32_t* a = p->input1_strides;
  const int32_t* b = p->input2_strides;
  for (int32_t i0 = 0; i0 < d[0]; ++i0) {
    for (int32_t i1 = 0; i1 < d[1]; ++i1) {
      for (int32_t i2 = 0; i2 < d[2]; ++i2, output += d[3]) {
        const int8_t* x = input1 + i0 * a[0] + i1 * a[1] + i2 * a[2];
        const int8_t* y = input2 + i0 * b[0] + i1 * b[1] + i2 * b[2];
        if (a[3] == 1 && b[3] == 1) {
          add_contiguous<kFullRange>(p, x, y, t1, t2, output, d[3]);
          continue;
        }
        for (int32_t i3 = 0; i3 < d[3]; ++i3) {
          const int32_t sum = t1[static_cast<uint8_t>(x[i3 * a[3]])] + t2[static_cast<uint8_t>(y[i3 * b[3]])];
          output[i3] = te_arm::finish<kFullRange>(
              te_arm::requantize(sum, p->output_m2, p->output_rounding, p->output_shift), p->output_offset,
              p->act_min, p->act_max);
        }
      }
    }
  }
}

}  // namespace

extern "C" void te_arm_add_s8(const te_arm_add_params* p, const int8_t* input1, const int8_t* input2,
                              const int32_t* table1, const int32_t* table2, int8_t* output) {
  if (p->act_min == -128 && p->act_max == 127) {
    add<true>(p, input1, input2, table1, table2, output);
  } else {
    add<false>(p, input1, input2, table1, table2, output);
  }
}
