// TRANSPOSE_CONV (int8) for Cortex-M cores with the DSP extension.  Results
// equal te_transpose_conv2d_s8's bit for bit.
//
// The same scatter as the portable kernel (every input pixel adds, for each
// filter tap that lands inside the output, its products to that output
// pixel's int32 sums), with each (pixel, tap) product computed four output
// channels at a time on SMLAD (te_arm::dot4_rows, each input word unpacked
// once for four filter rows).  input_offset is folded into a per-tap,
// per-channel initial value added with each valid tap, so only taps that land
// inside the output contribute it, as in the portable kernel.  The int32 sums
// equal the portable ones exactly (two's complement sums do not depend on the
// order of their terms); bias, rescaling (fixed_point.h's
// multiply_by_quantized_multiplier, the portable kernel's) and clamp follow.
//
// Packed filter (tinyengine_kernels.h at te_arm_transpose_conv2d_s8).
#include "arm_dsp.h"
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

struct Layout {
  int32_t oc4, blocks, block_bytes, tap_bytes;
};

inline Layout layout(const te_conv_params* p) {
  Layout l;
  l.oc4 = (p->output_c + 3) & ~3;
  l.blocks = l.oc4 >> 2;
  l.block_bytes = 16 + 4 * ((p->input_c + 3) & ~3);
  l.tap_bytes = l.blocks * l.block_bytes;
  return l;
}

}  // namespace

extern "C" void te_arm_transpose_conv2d_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                           int8_t* output, void* scratch) {
  const Layout l = layout(p);
  const int32_t ic = p->input_c, oc = p->output_c;
  const int32_t pixels = p->output_h * p->output_w;
  const int8_t* tail = packed + p->kernel_h * p->kernel_w * l.tap_bytes;  // {bias, multiplier, shift} per channel
  int32_t* sums = static_cast<int32_t*>(scratch);                          // [output_h, output_w, oc4]
  for (int32_t b = 0; b < p->batch; ++b) {
    memset(sums, 0, 4 * pixels * l.oc4);
    const int8_t* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t iy = 0; iy < p->input_h; ++iy) {
      for (int32_t ix = 0; ix < p->input_w; ++ix) {
        const int8_t* in_px = in_b + (iy * p->input_w + ix) * ic;
        const int32_t oy0 = iy * p->stride_h - p->pad_top, ox0 = ix * p->stride_w - p->pad_left;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
          const int32_t oy = oy0 + ky;
          if (oy < 0 || oy >= p->output_h) continue;
          for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t ox = ox0 + kx;
            if (ox < 0 || ox >= p->output_w) continue;
            int32_t* acc_px = sums + (oy * p->output_w + ox) * l.oc4;
            const int8_t* blk = packed + (ky * p->kernel_w + kx) * l.tap_bytes;
            for (int32_t j = 0; j < l.blocks; ++j, blk += l.block_bytes, acc_px += 4) {
              int32_t acc[4];
              memcpy(acc, blk, 16);  // input_offset * sum(the four rows)
              for (int r = 0; r < 4; ++r) acc[r] += acc_px[r];
              const int8_t* w = blk + 16;
              te_arm::dot4_rows(in_px, w, ic >> 2, ic & 3, acc);
              memcpy(acc_px, acc, 16);
            }
          }
        }
      }
    }
    int8_t* out = output + b * pixels * oc;
    const int32_t* s = sums;
    for (int32_t i = 0; i < pixels; ++i, s += l.oc4, out += oc) {
      const int8_t* t = tail;
      for (int32_t c = 0; c < oc; ++c, t += 12) {
        int32_t q[3];
        memcpy(q, t, 12);
        const int32_t v = te::multiply_by_quantized_multiplier(s[c] + q[0], q[1], q[2]) + p->output_offset;
        out[c] = static_cast<int8_t>(te::clamp_i32(v, p->act_min, p->act_max));
      }
    }
  }
}

extern "C" int32_t te_arm_transpose_conv2d_s8_get_buffer_size(const te_conv_params* p) {
  return 4 * p->output_h * p->output_w * layout(p).oc4;
}
