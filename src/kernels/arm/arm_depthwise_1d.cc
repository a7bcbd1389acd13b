// Depthwise int8 convolution along one spatial axis (kernels kx1 over
// [.., H, 1, C] or 1xk over [.., 1, W, C]; any stride, dilation and padding;
// depth multiplier 1) for Cortex-M cores with the DSP extension, regular and
// in place.  This is the shape of streaming audio models (DS-CNN over time),
// where the 2-D kernel's per-channel planes are mostly padding.  Results
// equal te_depthwise_conv2d_s8's (and te_depthwise_conv2d_inplace_s8's) bit
// for bit (see arm_dsp.h for the requantization).
//
// Channels four at a time: the line of those four channels (every input
// position the outputs read, padding included) is first widened into
// scratch as two int16 pairs per position, [c0, c2] then [c1, c3] (SXTB16
// and SXTB16 ROR 8), so every tap of every output is one doubleword load and
// four 16x16 multiply-accumulates against a pre-widened tap record, whatever
// the dilation.  input_offset is folded into the bias, so padding positions
// hold the input zero point, whose contribution cancels exactly.
//
// Writing output channels c..c+3 touches only those channels of the input
// (already in scratch) or elements of earlier pixels, so the same code runs
// in place (output == input) under te_depthwise_conv2d_inplace_s8's contract.
//
// Packed filter (tinyengine_kernels.h at te_arm_depthwise_conv1d_s8): one
// record per group of four channels, the last group padded with channels
// whose weights and bias are 0.
//
// te_arm_depthwise_conv1d_s16 is the 16x8 version (int16 activations, input
// zero point 0): channels two at a time, their int16 values already the
// pairs SMLABB / SMLATT take.  Its k products per output are summed in
// 32 bits, exactly: |x * w| <= 2^15 * 2^7, so k < 512 taps cannot overflow
// (the generator checks k), then widened to TFLM's 64-bit accumulator for the
// int64 bias and the 64-bit rescaling (te_arm::finish_s16).
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

namespace {

using te_arm::word_t;

// The convolution as a 1-D one: lengths, kernel, stride, dilation and leading
// padding along the axis that is not 1, and span, the input positions (from
// -pad) that the outputs read.
struct Line {
  int32_t in_len, out_len, k, stride, dilation, pad, span;
};

inline Line line_geometry(const te_conv_params* p) {
  Line l;
  if (p->kernel_w == 1 && p->input_w == 1 && p->output_w == 1) {
    l.in_len = p->input_h, l.out_len = p->output_h, l.k = p->kernel_h;
    l.stride = p->stride_h, l.dilation = p->dilation_h, l.pad = p->pad_top;
  } else {
    l.in_len = p->input_w, l.out_len = p->output_w, l.k = p->kernel_w;
    l.stride = p->stride_w, l.dilation = p->dilation_w, l.pad = p->pad_left;
  }
  l.span = (l.out_len - 1) * l.stride + (l.k - 1) * l.dilation + 1;
  return l;
}

// Widen one input word of four channels into the two int16 pairs of a line position.
inline void put_position(word_t* d, uint32_t v) {
  d[0] = static_cast<uint32_t>(te_arm::sxtb16(v));
  d[1] = static_cast<uint32_t>(te_arm::sxtb16_ror8(v));
}

// Line positions 0 .. span-1 (input positions -pad ..) of channels c .. c+lanes-1.
void fill_line(const Line& l, const int8_t* in, int32_t ch, int32_t lanes, int32_t zp, word_t* line) {
  const uint32_t zp4 = (static_cast<uint32_t>(zp) & 0xffu) * 0x01010101u;
  int32_t lo = l.pad < 0 ? 0 : l.pad;                     // first position inside the input
  int32_t hi = l.pad + l.in_len;                          // one past the last
  if (hi > l.span) hi = l.span;
  if (lo > hi) lo = hi;
  int32_t j = 0;
  for (; j < lo; ++j) put_position(line + 2 * j, zp4);
  const int8_t* s = j < hi ? in + (j - l.pad) * ch : in;
  if (lanes == 4) {
    for (; j < hi; ++j, s += ch) put_position(line + 2 * j, te_arm::load32(s));
  } else {
    for (; j < hi; ++j, s += ch) {
      uint32_t v = 0;
      for (int32_t i = 0; i < lanes; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(s[i])) << (8 * i);
      put_position(line + 2 * j, v);
    }
  }
  for (; j < l.span; ++j) put_position(line + 2 * j, zp4);
}

// One output of a channel whose requantization record is q[0..2].
template <bool kFullRange>
inline int8_t output_lane(int32_t acc, const word_t* q, int32_t out_offset, int32_t act_min, int32_t act_max) {
  return te_arm::finish<kFullRange>(te_arm::requantize(acc, static_cast<int32_t>(q[0]), static_cast<int32_t>(q[1]),
                                                       static_cast<int32_t>(q[2])),
                                    out_offset, act_min, act_max);
}

// One tap of four channels: line position xt against the tap's weights w.
inline void tap(const word_t* xt, const word_t* w, int32_t& a0, int32_t& a1, int32_t& a2, int32_t& a3) {
  const int32_t xa = static_cast<int32_t>(xt[0]), xb = static_cast<int32_t>(xt[1]);
  const int32_t wa = static_cast<int32_t>(w[0]), wb = static_cast<int32_t>(w[1]);
  a0 = te_arm::smlabb(xa, wa, a0);
  a2 = te_arm::smlatt(xa, wa, a2);
  a1 = te_arm::smlabb(xb, wb, a1);
  a3 = te_arm::smlatt(xb, wb, a3);
}

// The outputs of one group of channels (lanes of them, 4 but in the last
// group).  K is the kernel length when known at compile time, else 0.
template <int K, bool kFullRange>
void group_outputs(const Line& l, const word_t* line, const int8_t* rec, int8_t* out, int32_t ch, int32_t lanes,
                   int32_t out_offset, int32_t act_min, int32_t act_max) {
  const int32_t k = K ? K : l.k;
  const word_t* bias = reinterpret_cast<const word_t*>(rec);
  const word_t* taps = bias + 4;  // per tap: [w c0, w c2], [w c1, w c3]
  const word_t* q = taps + 2 * k;
  const int32_t step = 2 * l.stride, tap_step = 2 * l.dilation;
  const word_t* x = line;
  for (int32_t o = 0; o < l.out_len; ++o, out += ch, x += step) {
    int32_t a0 = static_cast<int32_t>(bias[0]), a1 = static_cast<int32_t>(bias[1]);
    int32_t a2 = static_cast<int32_t>(bias[2]), a3 = static_cast<int32_t>(bias[3]);
    const word_t* xt = x;
    if (K != 0) {
#pragma GCC unroll 16
      for (int32_t t = 0; t < K; ++t, xt += tap_step) tap(xt, taps + 2 * t, a0, a1, a2, a3);
    } else {
#pragma GCC unroll 1
      for (int32_t t = 0; t < k; ++t, xt += tap_step) tap(xt, taps + 2 * t, a0, a1, a2, a3);
    }
    if (lanes == 4) {
      out[0] = output_lane<kFullRange>(a0, q, out_offset, act_min, act_max);
      out[1] = output_lane<kFullRange>(a1, q + 3, out_offset, act_min, act_max);
      out[2] = output_lane<kFullRange>(a2, q + 6, out_offset, act_min, act_max);
      out[3] = output_lane<kFullRange>(a3, q + 9, out_offset, act_min, act_max);
    } else {
      const int32_t acc[4] = {a0, a1, a2, a3};
      for (int32_t r = 0; r < lanes; ++r) out[r] = output_lane<kFullRange>(acc[r], q + 3 * r, out_offset, act_min, act_max);
    }
  }
}

template <int K, bool kFullRange>
void depthwise_line(const te_conv_params* p, const Line& l, const int8_t* input, const int8_t* packed,
                    int8_t* output, word_t* line) {
  const int32_t ch = p->input_c;
  const int32_t rec_bytes = 16 + 8 * l.k + 48;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * l.in_len * ch;
    int8_t* out = output + b * l.out_len * ch;
    const int8_t* rec = packed;
    for (int32_t c = 0; c < ch; c += 4, rec += rec_bytes) {
      const int32_t lanes = ch - c < 4 ? ch - c : 4;
      fill_line(l, in + c, ch, lanes, -p->input_offset, line);
      group_outputs<K, kFullRange>(l, line, rec, out + c, ch, lanes, p->output_offset, p->act_min, p->act_max);
    }
  }
}

template <int K>
void dispatch_range(const te_conv_params* p, const Line& l, const int8_t* input, const int8_t* packed,
                    int8_t* output, word_t* line) {
  if (p->act_min <= -128 && p->act_max >= 127) {
    depthwise_line<K, true>(p, l, input, packed, output, line);
  } else {
    depthwise_line<K, false>(p, l, input, packed, output, line);
  }
}

// ---------------------------------------------------------------- 16x8
// Line positions 0 .. span-1 of channels c .. c+lanes-1 (lanes 1 or 2) as
// int16 pairs, 0 (the zero point) outside the input.
void fill_line_s16(const Line& l, const int16_t* in, int32_t ch, int32_t lanes, word_t* line) {
  int32_t lo = l.pad < 0 ? 0 : l.pad;
  int32_t hi = l.pad + l.in_len;
  if (hi > l.span) hi = l.span;
  if (lo > hi) lo = hi;
  int32_t j = 0;
  for (; j < lo; ++j) line[j] = 0;
  const int16_t* s = j < hi ? in + (j - l.pad) * ch : in;
  if (lanes == 2) {
    for (; j < hi; ++j, s += ch) line[j] = te_arm::load32(s);
  } else {
    for (; j < hi; ++j, s += ch) line[j] = static_cast<uint16_t>(s[0]);
  }
  for (; j < l.span; ++j) line[j] = 0;
}

template <int K>
void group_outputs_s16(const te_conv_params* p, const Line& l, const word_t* line, const int8_t* rec, int16_t* out,
                       int32_t ch, int32_t lanes) {
  const int32_t k = K ? K : l.k;
  const word_t* taps = reinterpret_cast<const word_t*>(rec);  // per tap: [w c0, w c1]
  const int8_t* tails = rec + 4 * k;                          // {int64 bias, reduced, total shift} x 2
  const word_t* x = line;
  for (int32_t o = 0; o < l.out_len; ++o, out += ch, x += l.stride) {
    int32_t a0 = 0, a1 = 0;
    const word_t* xt = x;
    if (K != 0) {
#pragma GCC unroll 16
      for (int32_t t = 0; t < K; ++t, xt += l.dilation) {
        a0 = te_arm::smlabb(static_cast<int32_t>(xt[0]), static_cast<int32_t>(taps[t]), a0);
        a1 = te_arm::smlatt(static_cast<int32_t>(xt[0]), static_cast<int32_t>(taps[t]), a1);
      }
    } else {
#pragma GCC unroll 1
      for (int32_t t = 0; t < k; ++t, xt += l.dilation) {
        a0 = te_arm::smlabb(static_cast<int32_t>(xt[0]), static_cast<int32_t>(taps[t]), a0);
        a1 = te_arm::smlatt(static_cast<int32_t>(xt[0]), static_cast<int32_t>(taps[t]), a1);
      }
    }
    out[0] = te_arm::finish_s16(a0, tails, p->output_offset, p->act_min, p->act_max);
    if (lanes == 2) out[1] = te_arm::finish_s16(a1, tails + 16, p->output_offset, p->act_min, p->act_max);
  }
}

template <int K>
void depthwise_line_s16(const te_conv_params* p, const Line& l, const int16_t* input, const int8_t* packed,
                        int16_t* output, word_t* line) {
  const int32_t ch = p->input_c;
  const int32_t rec_bytes = 4 * l.k + 32;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int16_t* in = input + b * l.in_len * ch;
    int16_t* out = output + b * l.out_len * ch;
    const int8_t* rec = packed;
    for (int32_t c = 0; c < ch; c += 2, rec += rec_bytes) {
      const int32_t lanes = ch - c < 2 ? ch - c : 2;
      fill_line_s16(l, in + c, ch, lanes, line);
      group_outputs_s16<K>(p, l, line, rec, out + c, ch, lanes);
    }
  }
}

}  // namespace

extern "C" void te_arm_depthwise_conv1d_s16(const te_conv_params* p, const int16_t* input, const int8_t* packed,
                                            int16_t* output, void* scratch) {
  const Line l = line_geometry(p);
  word_t* line = static_cast<word_t*>(scratch);
  if (l.k == 3) {
    depthwise_line_s16<3>(p, l, input, packed, output, line);
  } else {
    depthwise_line_s16<0>(p, l, input, packed, output, line);
  }
}

extern "C" int32_t te_arm_depthwise_conv1d_s16_get_buffer_size(const te_conv_params* p) {
  return 4 * line_geometry(p).span;
}

extern "C" void te_arm_depthwise_conv1d_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                           int8_t* output, void* scratch) {
  const Line l = line_geometry(p);
  word_t* line = static_cast<word_t*>(scratch);
  if (l.k == 3) {  // the usual length of streaming models unrolls
    dispatch_range<3>(p, l, input, packed, output, line);
  } else {
    dispatch_range<0>(p, l, input, packed, output, line);
  }
}

extern "C" int32_t te_arm_depthwise_conv1d_s8_get_buffer_size(const te_conv_params* p) {
  return 8 * line_geometry(p).span;
}
