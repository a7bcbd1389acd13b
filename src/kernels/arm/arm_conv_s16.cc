// 16x8 convolution and fully connected layers (int16 activations, int8
// weights, int64 bias) for Cortex-M cores with the DSP extension.  Results
// equal te_conv2d_s16's and te_fully_connected_s16's bit for bit.
//
// Exactness.  TFLM accumulates the int16 x int8 products in 64 bits.  The
// kernels do the same with SMLALD (two 16x16 products added to a 64-bit
// accumulator per instruction, no intermediate 32-bit sum), on weights widened
// to int16 at code-generation time, so every partial sum is exact whatever
// the layer's size: no overflow bound is needed.  The requantization is
// TFLite's 64-bit one, with its 16-bit rounded multiplier and total shift
// precomputed per channel (same expression as fixed_point.h's
// multiply_by_quantized_multiplier_64).  The input zero point is 0 (the
// generator keeps the portable kernel otherwise), so padding is 0.
//
// Packed filter (tinyengine_kernels.h at te_arm_conv2d_s16): per output
// channel, its K filter values widened to int16 (zero-padded to an even
// count k2), then int64 bias, int32 reduced multiplier, int32 total shift.
// Output channels are computed two at a time, so each input pair is loaded
// once for two SMLALDs.
//
// te_arm_transpose_conv2d_s16 is TRANSPOSE_CONV's scatter (as
// te_transpose_conv2d_s16 computes it) with the same SMLALD products: for
// every input pixel and every filter tap landing inside the output, the
// pixel's products with that tap's rows are added to the output pixel's
// int64 sums (exact, whatever the order).
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

namespace {

// Bytes of one output channel's record.
inline int32_t record_bytes(int32_t k2) { return 2 * k2 + 16; }

// All output channels of one input column x (k2 int16) into out.
void gemv(const int16_t* x, int32_t k2, const int8_t* packed, int32_t outs, int16_t* out, int32_t out_offset,
          int32_t act_min, int32_t act_max) {
  const int32_t rec = record_bytes(k2);
  const int32_t pairs = k2 >> 1;
  const int8_t* r = packed;
  int32_t o = 0;
  for (; o + 1 < outs; o += 2, r += 2 * rec) {
    int64_t acc0 = 0, acc1 = 0;
    te_arm::dot2_s16(x, reinterpret_cast<const int16_t*>(r), reinterpret_cast<const int16_t*>(r + rec), pairs, acc0, acc1);
    out[o] = te_arm::finish_s16(acc0, r + 2 * k2, out_offset, act_min, act_max);
    out[o + 1] = te_arm::finish_s16(acc1, r + rec + 2 * k2, out_offset, act_min, act_max);
  }
  if (o < outs) {
    int64_t acc = 0;
    te_arm::dot1_s16(x, reinterpret_cast<const int16_t*>(r), pairs, acc);
    out[o] = te_arm::finish_s16(acc, r + 2 * k2, out_offset, act_min, act_max);
  }
}

inline int32_t conv_k2(const te_conv_params* p) { return (p->kernel_h * p->kernel_w * p->input_c + 1) & ~1; }

// The receptive field of output pixel (oy, ox) in OHWI order, zeros outside
// the input (input zero point 0), zero-padded to k2.
void fill_column(const te_conv_params* p, const int16_t* in_b, int32_t oy, int32_t ox, int16_t* col) {
  const int32_t ic = p->input_c;
  const int32_t y0 = oy * p->stride_h - p->pad_top, x0 = ox * p->stride_w - p->pad_left;
  int16_t* d = col;
  for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
    const int32_t iy = y0 + ky * p->dilation_h;
    const bool row_in = iy >= 0 && iy < p->input_h;
    for (int32_t kx = 0; kx < p->kernel_w; ++kx, d += ic) {
      const int32_t ix = x0 + kx * p->dilation_w;
      if (row_in && ix >= 0 && ix < p->input_w) {
        memcpy(d, in_b + (iy * p->input_w + ix) * ic, 2 * ic);
      } else {
        memset(d, 0, 2 * ic);
      }
    }
  }
  if (d - col < conv_k2(p)) *d = 0;
}

}  // namespace

extern "C" void te_arm_conv2d_s16(const te_conv_params* p, const int16_t* input, const int8_t* packed,
                                  int16_t* output, void* scratch) {
  const int32_t ic = p->input_c, k2 = conv_k2(p);
  int16_t* col = static_cast<int16_t*>(scratch);
  // A 1x1 kernel over an even channel count reads its column straight from the input.
  const bool direct = p->kernel_h == 1 && p->kernel_w == 1 && (ic & 1) == 0;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int16_t* in_b = input + b * p->input_h * p->input_w * ic;
    int16_t* out = output + b * p->output_h * p->output_w * p->output_c;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      const int32_t iy = oy * p->stride_h - p->pad_top;
      for (int32_t ox = 0; ox < p->output_w; ++ox, out += p->output_c) {
        const int32_t ix = ox * p->stride_w - p->pad_left;
        const int16_t* x;
        if (direct && iy >= 0 && iy < p->input_h && ix >= 0 && ix < p->input_w) {
          x = in_b + (iy * p->input_w + ix) * ic;
        } else {
          fill_column(p, in_b, oy, ox, col);
          x = col;
        }
        gemv(x, k2, packed, p->output_c, out, p->output_offset, p->act_min, p->act_max);
      }
    }
  }
}

extern "C" int32_t te_arm_conv2d_s16_get_buffer_size(const te_conv_params* p) { return 2 * conv_k2(p); }

extern "C" void te_arm_transpose_conv2d_s16(const te_conv_params* p, const int16_t* input, const int8_t* packed,
                                            int16_t* output, void* scratch) {
  const int32_t ic = p->input_c, oc = p->output_c, k2 = (ic + 1) & ~1;
  const int32_t pairs = ic >> 1;
  const int32_t row_bytes = 2 * k2, tap_bytes = oc * row_bytes;
  const int32_t pixels = p->output_h * p->output_w;
  const int8_t* tails = packed + p->kernel_h * p->kernel_w * tap_bytes;  // 16x8 record tails, per channel
  int64_t* sums = static_cast<int64_t*>(scratch);                         // [output_h, output_w, output_c]
  for (int32_t b = 0; b < p->batch; ++b) {
    memset(sums, 0, 8 * pixels * oc);
    const int16_t* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t iy = 0; iy < p->input_h; ++iy) {
      for (int32_t ix = 0; ix < p->input_w; ++ix) {
        const int16_t* x = in_b + (iy * p->input_w + ix) * ic;
        const int32_t oy0 = iy * p->stride_h - p->pad_top, ox0 = ix * p->stride_w - p->pad_left;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
          const int32_t oy = oy0 + ky;
          if (oy < 0 || oy >= p->output_h) continue;
          for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t ox = ox0 + kx;
            if (ox < 0 || ox >= p->output_w) continue;
            int64_t* acc = sums + (oy * p->output_w + ox) * oc;
            const int8_t* r = packed + (ky * p->kernel_w + kx) * tap_bytes;
            int32_t o = 0;
            for (; o + 1 < oc; o += 2, r += 2 * row_bytes) {
              const int16_t* w0 = reinterpret_cast<const int16_t*>(r);
              const int16_t* w1 = reinterpret_cast<const int16_t*>(r + row_bytes);
              int64_t a0 = acc[o], a1 = acc[o + 1];
              te_arm::dot2_s16(x, w0, w1, pairs, a0, a1);
              if (ic & 1) {  // the pixel's last, unpaired value: no read past it
                a0 += static_cast<int64_t>(x[ic - 1]) * w0[ic - 1];
                a1 += static_cast<int64_t>(x[ic - 1]) * w1[ic - 1];
              }
              acc[o] = a0, acc[o + 1] = a1;
            }
            if (o < oc) {
              const int16_t* w0 = reinterpret_cast<const int16_t*>(r);
              int64_t a0 = acc[o];
              te_arm::dot1_s16(x, w0, pairs, a0);
              if (ic & 1) a0 += static_cast<int64_t>(x[ic - 1]) * w0[ic - 1];
              acc[o] = a0;
            }
          }
        }
      }
    }
    int16_t* out = output + b * pixels * oc;
    for (int32_t i = 0; i < pixels * oc; ++i) {
      out[i] = te_arm::finish_s16(sums[i], tails + 16 * (i % oc), p->output_offset, p->act_min, p->act_max);
    }
  }
}

extern "C" int32_t te_arm_transpose_conv2d_s16_get_buffer_size(const te_conv_params* p) {
  return 8 * p->output_h * p->output_w * p->output_c;
}

extern "C" void te_arm_fully_connected_s16(const te_fc_params* p, const int16_t* input, const int8_t* packed,
                                           int16_t* output) {
  const int32_t depth = p->input_depth, k2 = (depth + 1) & ~1;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int16_t* in = input + b * depth;
    int16_t* out = output + b * p->output_depth;
    if (depth & 1) {
      // The row's padding weight is 0, but the pair load must not read past
      // the input: the last, odd, value is taken alone.
      const int32_t rec = record_bytes(k2);
      const int8_t* r = packed;
      for (int32_t o = 0; o < p->output_depth; ++o, r += rec) {
        const int16_t* w = reinterpret_cast<const int16_t*>(r);
        int64_t acc = 0;
        te_arm::dot1_s16(in, w, (depth - 1) >> 1, acc);
        acc += static_cast<int64_t>(in[depth - 1]) * w[depth - 1];
        out[o] = te_arm::finish_s16(acc, r + 2 * k2, p->output_offset, p->act_min, p->act_max);
      }
    } else {
      gemv(in, k2, packed, p->output_depth, out, p->output_offset, p->act_min, p->act_max);
    }
  }
}
