// Depthwise int8 convolution (depth multiplier 1, dilation 1) for Cortex-M
// cores with the DSP extension, regular and in place.  Results equal
// te_depthwise_conv2d_s8's (and te_depthwise_conv2d_inplace_s8's) bit for bit
// (see arm_dsp.h for the requantization).
//
// One channel at a time: the channel is copied into an int16 plane of the
// padded input (scratch), then every output of the channel is computed from
// the plane, two horizontally adjacent outputs per step, with SMLAD on pairs
// of neighbouring plane values (one 32-bit load each, halfword-aligned) and
// pairs of filter taps.  input_offset is folded into the bias, so the plane
// holds raw values and its padding holds the input zero point.
//
// Writing output channel c only touches channel-c elements of the input
// (already in the plane) or elements of earlier pixels, so the same code runs
// in place (output == input) under te_depthwise_conv2d_inplace_s8's contract.
//
// The packed filter and the scratch size are defined in
// tinyengine_kernels.h, at te_arm_depthwise_conv2d_s8: one record per channel
// of 16 + 4 * kernel_h * ceil(pw / 2) bytes, pw = (kernel_w + 1) / 2 tap
// pairs per filter row, two pairs per word stored so that SXTB16 gives the
// first pair and SXTB16 ROR #8 the second: (p0.lo, p1.lo, p0.hi, p1.hi) =
// (t0, t2, t1, t3).  output_offset is 0 when the generator folded it into the
// rounding term.
//
// Scratch: the plane, plane_h * plane_w int16 (see plane_geometry), then a
// line of output_w rounded up to 4 bytes (scratch_bytes()).
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

namespace {

using te_arm::word_t;

struct Plane {
  int32_t h, w;  // rows, columns (even, so rows stay 4-byte aligned)
  // The part of an input channel the plane holds: rows x cols elements from
  // input element src0 (channel 0; rows src_stride elements apart) to plane
  // element dst0.
  int32_t rows, cols, src0, src_stride, dst0;
};

inline Plane plane_geometry(const te_conv_params* p) {
  const int32_t pw = (p->kernel_w + 1) >> 1;
  const int32_t ow4 = (p->output_w + 3) & ~3;  // outputs are computed four at a time
  Plane pl;
  pl.h = (p->output_h - 1) * p->stride_h + p->kernel_h;
  pl.w = ((ow4 - 1) * p->stride_w + 2 * pw + 2) & ~1;
  const int32_t y_lo = p->pad_top > 0 ? 0 : -p->pad_top;
  int32_t y_hi = pl.h - p->pad_top;
  if (y_hi > p->input_h) y_hi = p->input_h;
  const int32_t x_lo = p->pad_left > 0 ? 0 : -p->pad_left;
  int32_t x_hi = pl.w - p->pad_left;
  if (x_hi > p->input_w) x_hi = p->input_w;
  pl.rows = y_hi > y_lo ? y_hi - y_lo : 0;
  pl.cols = x_hi > x_lo ? x_hi - x_lo : 0;
  pl.src0 = (y_lo * p->input_w + x_lo) * p->input_c;
  pl.src_stride = p->input_w * p->input_c;
  pl.dst0 = (y_lo + p->pad_top) * pl.w + x_lo + p->pad_left;
  return pl;
}

// Bytes of scratch depthwise() uses: the plane, then the output line.
inline int32_t scratch_bytes(const te_conv_params* p) {
  const Plane pl = plane_geometry(p);
  return 2 * pl.h * pl.w + ((p->output_w + 3) & ~3);
}

// Zero point everywhere (the border keeps it; the interior is rewritten per
// channel).
void fill_plane(int16_t* plane, const Plane& pl, int32_t zp) {
  const uint32_t v = te_arm::pack16(zp, zp);
  word_t* d = reinterpret_cast<word_t*>(plane);
  for (int32_t i = (pl.h * pl.w) >> 1; i > 0; --i) *d++ = v;
}

// Channel `c` of the (batch) input into the plane interior.
[[maybe_unused]] inline void copy_channel(const Plane& pl, const int8_t* in, int32_t ch, int16_t* plane) {
  const int8_t* s_row = in + pl.src0;
  int16_t* d_row = plane + pl.dst0;
  for (int32_t r = pl.rows; r > 0; --r, s_row += pl.src_stride, d_row += pl.w) {
    const int8_t* s = s_row;
    int16_t* d = d_row;
    int32_t i = pl.cols;
    for (; i >= 2; i -= 2, d += 2, s += 2 * ch) {
      te_arm::store32(d, te_arm::pack16(s[0], s[ch]));  // STR allows halfword alignment
    }
    if (i) d[0] = s[0];
  }
}

// Two adjacent outputs (x, x + 1) of one channel: rows of the plane from
// `row`, filter pairs from `wp`.  KH/KW/S are compile-time constants for the
// common shapes (the loops unroll) or 0 for the run-time ones.
// Tap pair j of a filter row (two pairs per int8 word, see the record layout).
inline int32_t tap_pair(const word_t* wp, int32_t j) {
  return (j & 1) ? te_arm::sxtb16_ror8(wp[j >> 1]) : te_arm::sxtb16(wp[j >> 1]);
}

template <int KH, int KW, int S>
inline void dot2(const int16_t* row, int32_t plane_w, const word_t* wp, int32_t kh_rt, int32_t kw_rt,
                 int32_t s_rt, int32_t& acc0, int32_t& acc1) {
  const int32_t kh = KH ? KH : kh_rt;
  const int32_t kw = KW ? KW : kw_rt;
  const int32_t s = S ? S : s_rt;
  const int32_t pw = (kw + 1) >> 1;
  for (int32_t ky = 0; ky < kh; ++ky, row += plane_w, wp += (pw + 1) >> 1) {
    if (s == 1 && (kw & 1)) {
      // acc1's last tap (x + kw, weight w_{kw-1}) is the high lane of acc0's
      // last pair: SMLATB instead of another load.
      int32_t j = 0;
      for (; j < pw - 1; ++j) {
        const int32_t w = tap_pair(wp, j);
        acc0 = te_arm::smlad(static_cast<int32_t>(te_arm::load32(row + 2 * j)), w, acc0);
        acc1 = te_arm::smlad(static_cast<int32_t>(te_arm::load32(row + 2 * j + 1)), w, acc1);
      }
      const int32_t w = tap_pair(wp, j);
      const int32_t last = static_cast<int32_t>(te_arm::load32(row + 2 * j));
      acc0 = te_arm::smlad(last, w, acc0);
      acc1 = te_arm::smlatb(last, w, acc1);
    } else {
      for (int32_t j = 0; j < pw; ++j) {
        const int32_t w = tap_pair(wp, j);
        acc0 = te_arm::smlad(static_cast<int32_t>(te_arm::load32(row + 2 * j)), w, acc0);
        acc1 = te_arm::smlad(static_cast<int32_t>(te_arm::load32(row + s + 2 * j)), w, acc1);
      }
    }
  }
}

#if TE_ARM_DSP
// Row ROW (0..2) of a 3x3 filter for four outputs at stride S: plane row at
// ROWPTR, tap pairs (w0, w1) / (w2, 0) loaded into wa / wb.
// Four int8 weights at rec + WOFF widened to int16 pairs:
// wa = bytes 0 and 2, wb = bytes 1 and 3.
#define TE_DW_ROW_WEIGHTS(WOFF)                         \
  "ldr %[wb], [%[rec], #" WOFF "]\n\t"                \
  "sxtb16 %[wa], %[wb]\n\t"                            \
  "sxtb16 %[wb], %[wb], ror #8\n\t"

#define TE_DW3_ROW_S1(ROWPTR, WOFF)                     \
  TE_DW_ROW_WEIGHTS(WOFF)                              \
  "ldr %[t], [" ROWPTR "]\n\t"                          \
  "smlad %[a0], %[t], %[wa], %[a0]\n\t"                \
  "ldr %[t], [" ROWPTR ", #2]\n\t"                      \
  "smlad %[a1], %[t], %[wa], %[a1]\n\t"                \
  "ldr %[t], [" ROWPTR ", #4]\n\t"                      \
  "smlad %[a0], %[t], %[wb], %[a0]\n\t"                \
  "smlatb %[a1], %[t], %[wb], %[a1]\n\t"               \
  "smlad %[a2], %[t], %[wa], %[a2]\n\t"                \
  "ldr %[t], [" ROWPTR ", #6]\n\t"                      \
  "smlad %[a3], %[t], %[wa], %[a3]\n\t"                \
  "ldr %[t], [" ROWPTR ", #8]\n\t"                      \
  "smlad %[a2], %[t], %[wb], %[a2]\n\t"                \
  "smlatb %[a3], %[t], %[wb], %[a3]\n\t"

#define TE_DW3_ROW_S2(ROWPTR, WOFF)                     \
  TE_DW_ROW_WEIGHTS(WOFF)                              \
  "ldr %[t], [" ROWPTR "]\n\t"                          \
  "smlad %[a0], %[t], %[wa], %[a0]\n\t"                \
  "ldr %[t], [" ROWPTR ", #4]\n\t"                      \
  "smlad %[a0], %[t], %[wb], %[a0]\n\t"                \
  "smlad %[a1], %[t], %[wa], %[a1]\n\t"                \
  "ldr %[t], [" ROWPTR ", #8]\n\t"                      \
  "smlad %[a1], %[t], %[wb], %[a1]\n\t"                \
  "smlad %[a2], %[t], %[wa], %[a2]\n\t"                \
  "ldr %[t], [" ROWPTR ", #12]\n\t"                     \
  "smlad %[a2], %[t], %[wb], %[a2]\n\t"                \
  "smlad %[a3], %[t], %[wa], %[a3]\n\t"                \
  "ldr %[t], [" ROWPTR ", #16]\n\t"                     \
  "smlad %[a3], %[t], %[wb], %[a3]\n\t"

#define TE_DW_REQ(A)                                    \
  "add %[t], %[" A "], %[wb]\n\t"                      \
  "add %[t], %[t], %[" A "], asr #31\n\t"              \
  "smmlar %[" A "], %[" A "], %[wa], %[t]\n\t"         \
  "asr %[" A "], %[" A "], %[q]\n\t"

// Rows for blocks of three outputs (S = 1: plane columns 0..4; S = 2: 0..6).
#define TE_DW3_ROW3_S1(ROWPTR, WOFF)                    \
  TE_DW_ROW_WEIGHTS(WOFF)                              \
  "ldr %[t], [" ROWPTR "]\n\t"                          \
  "smlad %[a0], %[t], %[wa], %[a0]\n\t"                \
  "ldr %[t], [" ROWPTR ", #2]\n\t"                      \
  "smlad %[a1], %[t], %[wa], %[a1]\n\t"                \
  "ldr %[t], [" ROWPTR ", #4]\n\t"                      \
  "smlad %[a0], %[t], %[wb], %[a0]\n\t"                \
  "smlatb %[a1], %[t], %[wb], %[a1]\n\t"               \
  "smlad %[a2], %[t], %[wa], %[a2]\n\t"                \
  "ldr %[t], [" ROWPTR ", #8]\n\t"                      \
  "smlabb %[a2], %[t], %[wb], %[a2]\n\t"

#define TE_DW3_ROW3_S2(ROWPTR, WOFF)                    \
  TE_DW_ROW_WEIGHTS(WOFF)                              \
  "ldr %[t], [" ROWPTR "]\n\t"                          \
  "smlad %[a0], %[t], %[wa], %[a0]\n\t"                \
  "ldr %[t], [" ROWPTR ", #4]\n\t"                      \
  "smlad %[a0], %[t], %[wb], %[a0]\n\t"                \
  "smlad %[a1], %[t], %[wa], %[a1]\n\t"                \
  "ldr %[t], [" ROWPTR ", #8]\n\t"                      \
  "smlad %[a1], %[t], %[wb], %[a1]\n\t"                \
  "smlad %[a2], %[t], %[wa], %[a2]\n\t"                \
  "ldr %[t], [" ROWPTR ", #12]\n\t"                     \
  "smlad %[a2], %[t], %[wb], %[a2]\n\t"

// Output offset (0 when the generator folded it into the rounding term).
#define TE_DW_OFF4                                      \
  "ldr %[t], %[off]\n\t"                              \
  "add %[a0], %[a0], %[t]\n\t"                        \
  "add %[a1], %[a1], %[t]\n\t"                        \
  "add %[a2], %[a2], %[t]\n\t"                        \
  "add %[a3], %[a3], %[t]\n\t"
#define TE_DW_OFF3                                      \
  "ldr %[t], %[off]\n\t"                              \
  "add %[a0], %[a0], %[t]\n\t"                        \
  "add %[a1], %[a1], %[t]\n\t"                        \
  "add %[a2], %[a2], %[t]\n\t"

// Four outputs: requantize, saturate, store with stride cs, advance.
#define TE_DW_FINISH4(OFFSET)                                                      \
  TE_DW_REQ("a0") TE_DW_REQ("a1") TE_DW_REQ("a2") TE_DW_REQ("a3")                   \
  OFFSET                                                                            \
  "ssat %[a0], #8, %[a0]\n\t"                                                      \
  "ssat %[a1], #8, %[a1]\n\t"                                                      \
  "ssat %[a2], #8, %[a2]\n\t"                                                      \
  "ssat %[a3], #8, %[a3]\n\t"                                                      \
  "ldr %[t], %[cs]\n\t"                                                            \
  "strb %[a0], [%[out]]\n\t"                                                       \
  "strb %[a1], [%[out], %[t]]\n\t"                                                 \
  "strb %[a2], [%[out], %[t], lsl #1]\n\t"                                         \
  "add %[wa], %[t], %[t], lsl #1\n\t"                                              \
  "strb %[a3], [%[out], %[wa]]\n\t"                                                \
  "add %[out], %[out], %[t], lsl #2\n\t"

#define TE_DW_FINISH3(OFFSET)                                                      \
  TE_DW_REQ("a0") TE_DW_REQ("a1") TE_DW_REQ("a2")                                   \
  OFFSET                                                                            \
  "ssat %[a0], #8, %[a0]\n\t"                                                      \
  "ssat %[a1], #8, %[a1]\n\t"                                                      \
  "ssat %[a2], #8, %[a2]\n\t"                                                      \
  "ldr %[t], %[cs]\n\t"                                                            \
  "strb %[a0], [%[out]]\n\t"                                                       \
  "strb %[a1], [%[out], %[t]]\n\t"                                                 \
  "strb %[a2], [%[out], %[t], lsl #1]\n\t"                                         \
  "add %[wa], %[t], %[t], lsl #1\n\t"                                              \
  "add %[out], %[out], %[wa]\n\t"

#define TE_DW_INIT4 "ldr %[a0], [%[rec]]\n\tmov %[a1], %[a0]\n\tmov %[a2], %[a0]\n\tmov %[a3], %[a0]\n\t"
#define TE_DW_INIT3 "ldr %[a0], [%[rec]]\n\tmov %[a1], %[a0]\n\tmov %[a2], %[a0]\n\t"

// Blocks of three or four outputs of one channel over `rows` output rows,
// `blocks` per row: `row` is the plane at the first output, `out` that
// output; after a row the plane pointer moves by row_adj bytes and the output
// pointer by out_adj bytes.  The channel record (bias, pairs, requantization)
// is read from `rec`.
#define TE_DW3_ASM(INIT, ROW, FINISH, STEP)                                          \
  __asm__ volatile(                                                                 \
      "0:\n\t"                                                                     \
      INIT                                                                          \
      ROW("%[p]", "4")                                                              \
      "add %[q], %[p], %[pw]\n\t"                                                  \
      ROW("%[q]", "8")                                                              \
      "add %[q], %[q], %[pw]\n\t"                                                  \
      ROW("%[q]", "12")                                                             \
      "ldrd %[wa], %[wb], [%[rec], #16]\n\t"                                       \
      "ldr %[q], [%[rec], #24]\n\t"                                                \
      FINISH                                                                        \
      "add %[p], %[p], #" STEP "\n\t"                                              \
      "ldr %[t], %[end]\n\t"                                                       \
      "cmp %[p], %[t]\n\t"                                                         \
      "bne 0b\n\t"                                                                 \
      "ldr %[t], %[rows]\n\t"                                                      \
      "subs %[t], %[t], #1\n\t"                                                    \
      "str %[t], %[rows]\n\t"                                                      \
      "beq 9f\n\t"                                                                 \
      "ldr %[t], %[radj]\n\t"                                                      \
      "add %[p], %[p], %[t]\n\t"                                                   \
      "ldr %[wa], %[end]\n\t"                                                      \
      "ldr %[t], %[rstep]\n\t"                                                     \
      "add %[wa], %[wa], %[t]\n\t"                                                 \
      "str %[wa], %[end]\n\t"                                                      \
      "ldr %[t], %[oadj]\n\t"                                                      \
      "add %[out], %[out], %[t]\n\t"                                               \
      "b 0b\n\t"                                                                   \
      "9:\n\t"                                                                     \
      : [p] "+r"(row), [out] "+r"(out), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), \
        [a3] "=&r"(a3), [wa] "=&r"(wa), [wb] "=&r"(wb), [t] "=&r"(t), [q] "=&r"(q),     \
        [end] "+m"(row_end), [rows] "+m"(rows)                                      \
      : [rec] "r"(rec), [pw] "r"(plane_bytes), [off] "m"(out_offset), [cs] "m"(ch),    \
        [radj] "m"(row_adj), [rstep] "m"(row_step), [oadj] "m"(out_adj)             \
      : "cc", "memory")

// `rows` output rows of `blocks` blocks of W (3 or 4) outputs, written with
// stride ch from out; the rows are `stride_h` plane rows and `ow` outputs
// apart.
template <int S, int W>
void dw3_blocks(const int16_t* row, int32_t plane_w, const int8_t* rec, int8_t* out, int32_t ch,
                int32_t out_offset, int32_t blocks, int32_t rows, int32_t stride_h, int32_t ow) {
  const int16_t* row_end = row + blocks * W * S;
  const int32_t plane_bytes = 2 * plane_w;
  const int32_t row_step = 2 * stride_h * plane_w;          // bytes from row to row
  const int32_t row_adj = row_step - blocks * 2 * W * S;      // after a row's blocks
  const int32_t out_adj = (ow - W * blocks) * ch;             // idem (< 0: a spill)
  int32_t a0, a1, a2, a3, wa, wb, t, q;
  if (W == 4) {
    if (S == 1) {
      if (out_offset) {
        TE_DW3_ASM(TE_DW_INIT4, TE_DW3_ROW_S1, TE_DW_FINISH4(TE_DW_OFF4), "8");
      } else {
        TE_DW3_ASM(TE_DW_INIT4, TE_DW3_ROW_S1, TE_DW_FINISH4(""), "8");
      }
    } else {
      if (out_offset) {
        TE_DW3_ASM(TE_DW_INIT4, TE_DW3_ROW_S2, TE_DW_FINISH4(TE_DW_OFF4), "16");
      } else {
        TE_DW3_ASM(TE_DW_INIT4, TE_DW3_ROW_S2, TE_DW_FINISH4(""), "16");
      }
    }
  } else {
    if (S == 1) {
      if (out_offset) {
        TE_DW3_ASM(TE_DW_INIT3, TE_DW3_ROW3_S1, TE_DW_FINISH3(TE_DW_OFF3), "6");
      } else {
        TE_DW3_ASM(TE_DW_INIT3, TE_DW3_ROW3_S1, TE_DW_FINISH3(""), "6");
      }
    } else {
      if (out_offset) {
        TE_DW3_ASM(TE_DW_INIT3, TE_DW3_ROW3_S2, TE_DW_FINISH3(TE_DW_OFF3), "12");
      } else {
        TE_DW3_ASM(TE_DW_INIT3, TE_DW3_ROW3_S2, TE_DW_FINISH3(""), "12");
      }
    }
  }
  (void)a0, (void)a1, (void)a2, (void)a3, (void)wa, (void)wb, (void)t, (void)q;
}

// All oh output rows of one channel in blocks of W.  When W does not divide
// ow, a row's last block spills into the next row's first outputs of this
// channel (rewritten later; in place, those are input elements of this
// channel, already in the plane), and the last row goes through `line`.
template <int S, int W>
void dw3_rows(const int16_t* plane, int32_t plane_w, const int8_t* rec, int8_t* out, int32_t ch,
              int32_t out_offset, int32_t blocks, int32_t oh, int32_t stride_h, int32_t ow, int8_t* line) {
  if (blocks * W == ow) {
    dw3_blocks<S, W>(plane, plane_w, rec, out, ch, out_offset, blocks, oh, stride_h, ow);
    return;
  }
  if (oh > 1) dw3_blocks<S, W>(plane, plane_w, rec, out, ch, out_offset, blocks, oh - 1, stride_h, ow);
  dw3_blocks<S, W>(plane + (oh - 1) * stride_h * plane_w, plane_w, rec, line, 1, out_offset, blocks, 1,
                   stride_h, W * blocks);
  out += (oh - 1) * ow * ch;
  for (int32_t ox = 0; ox < ow; ++ox, out += ch) *out = line[ox];
}

// Channel `in` (one channel of an NHWC tensor, ch bytes between pixels) into
// the plane interior: pairs of int16 per 32-bit store.
void copy_channel_asm(const Plane& pl, const int8_t* in, int32_t ch, int16_t* plane) {
  const int8_t* s_row = in + pl.src0;
  int16_t* d_row = plane + pl.dst0;
  const int32_t pairs = pl.cols >> 1;
  const int32_t ch2 = 2 * ch;
  for (int32_t r = pl.rows; r > 0; --r, s_row += pl.src_stride, d_row += pl.w) {
    const int8_t* src = s_row;
    int16_t* d = d_row;
    if (pairs) {
      int32_t n = pairs, t0, t1;
      __asm__ volatile(
          "1:\n\t"
          "ldrsb %[t0], [%[s]]\n\t"
          "ldrsb %[t1], [%[s], %[ch]]\n\t"
          "add %[s], %[s], %[ch2]\n\t"
          "pkhbt %[t0], %[t0], %[t1], lsl #16\n\t"
          "str %[t0], [%[d]], #4\n\t"
          "subs %[n], %[n], #1\n\t"
          "bne 1b\n\t"
          : [s] "+r"(src), [d] "+r"(d), [n] "+r"(n), [t0] "=&r"(t0), [t1] "=&r"(t1)
          : [ch] "r"(ch), [ch2] "r"(ch2)
          : "cc", "memory");
    }
    if (pl.cols & 1) *d = *src;
  }
}
#endif

template <int KH, int KW, int S>
void depthwise(const te_conv_params* p, const int8_t* input, const int8_t* packed, int8_t* output,
               int16_t* plane) {
  const int32_t kh = KH ? KH : p->kernel_h;
  const int32_t kw = KW ? KW : p->kernel_w;
  const int32_t s = S ? S : p->stride_w;
  const int32_t pw = (kw + 1) >> 1;
  const int32_t ch = p->input_c;
  const int32_t oh = p->output_h, ow = p->output_w;
  const int32_t rec = 16 + 4 * kh * ((pw + 1) >> 1);  // bytes per channel record
  const Plane pl = plane_geometry(p);
  const int32_t out_offset = p->output_offset;
  const int32_t in_pixels = p->input_h * p->input_w;
  const int32_t out_pixels = oh * ow;
  fill_plane(plane, pl, -p->input_offset);
  int8_t* line = reinterpret_cast<int8_t*>(plane + pl.h * pl.w);  // (ow + 3) & ~3 bytes
  (void)line;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * in_pixels * ch;
    int8_t* out_b = output + b * out_pixels * ch;
    const int8_t* r = packed;
    for (int32_t c = 0; c < ch; ++c, r += rec) {
#if TE_ARM_DSP
      copy_channel_asm(pl, in + c, ch, plane);
#else
      copy_channel(pl, in + c, ch, plane);
#endif
      int32_t bias, q[3];
      memcpy(&bias, r, 4);
      memcpy(q, r + rec - 12, 12);
      const word_t* wp = reinterpret_cast<const word_t*>(r + 4);
      int8_t* out = out_b + c;
      int32_t oy = 0;
#if TE_ARM_DSP
      if (KH == 3 && KW == 3 && (S == 1 || S == 2)) {
        // Blocks of four outputs, or of three where that computes fewer.
        const int32_t quads = (ow + 3) >> 2, triples = (ow + 2) / 3;
        if (3 * triples < 4 * quads) {
          dw3_rows<S, 3>(plane, pl.w, r, out, ch, out_offset, triples, oh, p->stride_h, ow, line);
        } else {
          dw3_rows<S, 4>(plane, pl.w, r, out, ch, out_offset, quads, oh, p->stride_h, ow, line);
        }
        continue;
      }
#endif
      for (; oy < oh; ++oy) {
        const int16_t* row = plane + oy * p->stride_h * pl.w;
        int32_t ox = 0;
        for (; ox + 1 < ow; ox += 2, row += 2 * s) {
          int32_t acc0 = bias, acc1 = bias;
          dot2<KH, KW, S>(row, pl.w, wp, kh, kw, s, acc0, acc1);
          out[0] = te_arm::finish<true>(te_arm::requantize(acc0, q[0], q[1], q[2]), out_offset, 0, 0);
          out[ch] = te_arm::finish<true>(te_arm::requantize(acc1, q[0], q[1], q[2]), out_offset, 0, 0);
          out += 2 * ch;
        }
        if (ox < ow) {
          int32_t acc0 = bias, acc1 = bias;
          dot2<KH, KW, S>(row, pl.w, wp, kh, kw, s, acc0, acc1);
          out[0] = te_arm::finish<true>(te_arm::requantize(acc0, q[0], q[1], q[2]), out_offset, 0, 0);
          out += ch;
        }
      }
    }
  }
  if (p->act_min > -128 || p->act_max < 127) {
    // clamp(saturate8(v), lo, hi) == clamp(v, lo, hi) for -128 <= lo <= hi <= 127.
    const int32_t n = p->batch * out_pixels * ch;
    for (int32_t i = 0; i < n; ++i) {
      int32_t v = output[i];
      v = v < p->act_min ? p->act_min : v;
      output[i] = static_cast<int8_t>(v > p->act_max ? p->act_max : v);
    }
  }
}

}  // namespace

#define TE_ARM_DW(NAME, KH, KW, S)                                                                      \
  extern "C" void NAME(const te_conv_params* p, const int8_t* input, const int8_t* packed, int8_t* output, \
                       void* scratch) {                                                                 \
    depthwise<KH, KW, S>(p, input, packed, output, static_cast<int16_t*>(scratch));                     \
  }                                                                                                     \
  extern "C" int32_t NAME##_get_buffer_size(const te_conv_params* p) { return scratch_bytes(p); }

TE_ARM_DW(te_arm_depthwise_conv2d_s8, 0, 0, 0)
TE_ARM_DW(te_arm_depthwise_conv2d_3x3s1_s8, 3, 3, 1)
TE_ARM_DW(te_arm_depthwise_conv2d_3x3s2_s8, 3, 3, 2)
TE_ARM_DW(te_arm_depthwise_conv2d_5x5s1_s8, 5, 5, 1)
TE_ARM_DW(te_arm_depthwise_conv2d_5x5s2_s8, 5, 5, 2)
TE_ARM_DW(te_arm_depthwise_conv2d_7x7s1_s8, 7, 7, 1)
TE_ARM_DW(te_arm_depthwise_conv2d_7x7s2_s8, 7, 7, 2)
