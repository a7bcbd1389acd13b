// Regular int8 convolution for Cortex-M cores with the DSP extension:
// im2col of four output pixels into int16 columns, then a GEMM whose inner
// step is SMLAD (two multiply-accumulates per instruction).  Results equal
// te_conv2d_s8's bit for bit (see arm_dsp.h for the requantization).
//
// The packed filter (one record of k4 + 16 bytes per output channel: the
// effective bias, the filter in "conv K order", the requantization record)
// and the scratch size are defined in tinyengine_kernels.h, at
// te_arm_conv2d_s8; conv_k4() below is k4.  Folding input_offset into the
// bias lets the GEMM multiply raw int8 values; padding taps hold the input
// zero point (-input_offset), whose contribution then cancels exactly as
// TFLM's zero contribution does.
//
// te_arm_conv2d_w16_s8 (small layers, where flash is cheap): the filter is
// stored widened to int16, in the lane order of the columns ((k0, k2), (k1,
// k3) per group), 2 * k4 bytes per row, so nothing is unpacked.
//
// te_arm_conv2d_narrow_s8 / te_arm_conv2d_narrow_w16_s8 (same packed
// filters): one output pixel at a time, im2col into ONE int16 column whose
// groups are contiguous, computed two output channels at a time -- less scratch (2 * k4
// bytes plus the stage), more instructions (each filter word is loaded and
// unpacked once per pixel instead of once per four).
//
// Scratch: four int16 im2col columns (8 * k4 bytes), interleaved per group of
// four K values -- [col0 g0][col1 g0][col2 g0][col3 g0][col0 g1]... (8 bytes
// each), lanes (k0, k2, k1, k3) as SXTB16 makes them of four int8 values --
// so one LDRD reads a column's group and each filter word is unpacked once
// for four columns; then 4 * output_c bytes for a last, partial block of
// pixels; then, when input_c % 4 != 0, k4 + kernel_w * input_c bytes where a
// column is gathered as int8 where needed.
#include "arm_dsp.h"
#include "tinyengine_kernels.h"

namespace {

using te_arm::word_t;

constexpr int32_t kCols = 4;                // output pixels per GEMM block
constexpr int32_t kGroupWords = 2 * kCols;  // words per group of 4 K values

// K rounded up for whole groups of four (the conv K order of
// tinyengine_kernels.h; K = kernel_h * kernel_w * input_c when that is a
// multiple of 4).
inline int32_t conv_k4(const te_conv_params* p) {
  const int32_t seg = p->kernel_w * p->input_c;
  return p->kernel_h * (seg & ~3) + ((p->kernel_h * (seg & 3) + 3) & ~3);
}

// Bytes of the three scratch areas conv() carves (see the top of the file).
inline int32_t cols_bytes(int32_t k4) { return kCols * k4 * 2; }
inline int32_t partial_bytes(const te_conv_params* p) { return (4 * p->output_c + 3) & ~3; }
// The narrow kernel's one column (groups of 2 words, contiguous).
constexpr int32_t kNarrowStep = 2;
inline int32_t narrow_col_bytes(int32_t k4) { return 2 * k4; }
inline int32_t stage_bytes(const te_conv_params* p, int32_t k4) {
  return (p->input_c & 3) ? ((k4 + p->kernel_w * p->input_c + 3) & ~3) : 0;
}

// The geometry fill_block needs, copied out of te_conv_params once (so the
// compiler need not reload it after every byte store).
struct Geom {
  int32_t ic, zp, kh, kw, sh, sw, dh, dw, pt, pl, h, w, k4, ow;
};

typedef uint64_t __attribute__((may_alias)) dword_t;

// One group of a column: the two SXTB16 halves of four int8 values.
inline void put_group(word_t* dst, uint32_t v) {
  const uint64_t lo = static_cast<uint32_t>(te_arm::sxtb16(v));
  const uint64_t hi = static_cast<uint32_t>(te_arm::sxtb16_ror8(v));
  *reinterpret_cast<dword_t*>(dst) = lo | (hi << 32);  // one STRD (dst is 8-byte aligned)
}

// Widen `groups` words of int8 (four values each) into a column whose
// groups are kStep words apart (kGroupWords in the interleaved block of four
// columns, 2 in the narrow kernel's single column).
template <int32_t kStep>
inline void widen(const word_t* src, word_t* dst, int32_t groups) {
  for (; groups > 0; --groups, dst += kStep) put_group(dst, *src++);
}

// A column whose filter window lies partly outside the input (padding):
// taps outside read the zero point.
template <int32_t kStep>
__attribute__((noinline)) void fill_border_column(const Geom& g, const int8_t* in, int32_t y0, int32_t x0,
                                                  word_t* dst, int8_t* stage) {
  if ((g.ic & 3) == 0) {
    const uint32_t pad = te_arm::pack16(g.zp, g.zp);
    for (int32_t ky = 0; ky < g.kh; ++ky) {
      const int32_t iy = y0 + ky * g.dh;
      const bool row_in = iy >= 0 && iy < g.h;
      for (int32_t kx = 0; kx < g.kw; ++kx) {
        const int32_t ix = x0 + kx * g.dw;
        if (row_in && ix >= 0 && ix < g.w) {
          const int8_t* s = in + (iy * g.w + ix) * g.ic;
          for (int32_t c = g.ic >> 2; c > 0; --c, s += 4, dst += kStep) put_group(dst, te_arm::load32(s));
        } else {
          for (int32_t c = g.ic >> 2; c > 0; --c, dst += kStep) {
            dst[0] = pad;
            dst[1] = pad;
          }
        }
      }
    }
    return;
  }
  // input_c % 4 != 0: each filter row into `rowbuf` (zero point outside),
  // then split into its words and its trailing bytes (K order of conv_k4).
  const int32_t seg = g.kw * g.ic;
  const int32_t a4 = seg & ~3;
  const int32_t b = seg & 3;
  int8_t* lin = stage;
  int8_t* tail = stage + g.kh * a4;
  int8_t* rowbuf = stage + g.k4;
  const int8_t zp = static_cast<int8_t>(g.zp);
  for (int32_t ky = 0; ky < g.kh; ++ky) {
    const int32_t iy = y0 + ky * g.dh;
    int8_t* r = rowbuf;
    if (iy < 0 || iy >= g.h) {
      for (int32_t i = 0; i < seg; ++i) r[i] = zp;
    } else {
      for (int32_t kx = 0; kx < g.kw; ++kx, r += g.ic) {
        const int32_t ix = x0 + kx * g.dw;
        if (ix >= 0 && ix < g.w) {
          const int8_t* src = in + (iy * g.w + ix) * g.ic;
          for (int32_t c = 0; c < g.ic; ++c) r[c] = src[c];
        } else {
          for (int32_t c = 0; c < g.ic; ++c) r[c] = zp;
        }
      }
    }
    for (int32_t i = 0; i < a4; i += 4) te_arm::store32(lin + i, te_arm::load32(rowbuf + i));
    lin += a4;
    for (int32_t j = 0; j < b; ++j) *tail++ = rowbuf[a4 + j];
  }
  widen<kStep>(reinterpret_cast<const word_t*>(stage), dst, g.k4 >> 2);
}

// Columns 0 .. ncols-1 of the interleaved buffer for ncols consecutive output
// pixels from (oy, ox), input_c % 4 == 0 (groups kStep words apart, see
// widen; the narrow kernel fills one column, ncols == 1).
template <int32_t kStep>
void fill_block(const Geom& gm, const int8_t* in, int32_t oy, int32_t ox, int32_t ncols, int16_t* cols,
                int8_t* stage) {
  const Geom g = gm;
  const int32_t row_step = g.dh * g.w * g.ic;
  const int32_t tap_step = g.dw * g.ic;
  const int32_t words = g.ic >> 2;
  const int32_t y_last = (g.kh - 1) * g.dh, x_last = (g.kw - 1) * g.dw;
  for (int32_t n = 0; n < ncols; ++n) {
    const int32_t y0 = oy * g.sh - g.pt;
    const int32_t x0 = ox * g.sw - g.pl;
    if (++ox == g.ow) {
      ox = 0;
      ++oy;
    }
    word_t* dst = reinterpret_cast<word_t*>(cols) + 2 * n;
    if (y0 < 0 || x0 < 0 || y0 + y_last >= g.h || x0 + x_last >= g.w) {
      fill_border_column<kStep>(g, in, y0, x0, dst, stage);
      continue;
    }
    const int8_t* row = in + (y0 * g.w + x0) * g.ic;
    for (int32_t ky = g.kh; ky > 0; --ky, row += row_step) {
      const int8_t* tap = row;
      for (int32_t kx = g.kw; kx > 0; --kx, tap += tap_step) {
        const int8_t* s = tap;
        for (int32_t c = words; c > 0; --c, s += 4, dst += kStep) put_group(dst, te_arm::load32(s));
      }
    }
  }
}

// What fill_block_small's inner loop reads (assembly offsets).
struct SmallFill {
  int32_t words;        // 0: whole words per filter row
  int32_t bytes;        // 4: trailing bytes per filter row
  int32_t row_step;     // 8: bytes between filter rows in the input
  int32_t tail_groups;  // 12: groups of trailing bytes
  int8_t* tail;         // 16: where the stage keeps the trailing bytes
};

// fill_block for input_c % 4 != 0.  K is ordered so that whole words of a
// filter row (kernel_w * input_c = 4a + b bytes, contiguous when dilation_w
// is 1) are groups of their own: for each row its 4a leading bytes, then the
// b trailing bytes of all rows together, then zeros (the conv K order of
// tinyengine_kernels.h); the stage holds the trailing bytes (zero beyond).
template <int32_t kStep>
void fill_block_small(const Geom& gm, const int8_t* in, int32_t oy, int32_t ox, int32_t ncols, int16_t* cols,
                      int8_t* stage) {
  const Geom g = gm;
  const int32_t seg = g.kw * g.ic;
  const int32_t a4 = seg & ~3;
  SmallFill sf;
  sf.words = a4 >> 2;
  sf.bytes = seg & 3;
  sf.row_step = g.dh * g.w * g.ic;
  sf.tail_groups = (g.k4 - g.kh * a4) >> 2;
  sf.tail = stage + g.kh * a4;
  for (int32_t n = 0; n < ncols; ++n) {
    const int32_t y0 = oy * g.sh - g.pt;
    const int32_t x0 = ox * g.sw - g.pl;
    if (++ox == g.ow) {
      ox = 0;
      ++oy;
    }
    word_t* dst = reinterpret_cast<word_t*>(cols) + 2 * n;
    if (g.dw != 1 || y0 < 0 || x0 < 0 || y0 + (g.kh - 1) * g.dh >= g.h || x0 + g.kw > g.w) {
      fill_border_column<kStep>(g, in, y0, x0, dst, stage);
      continue;
    }
    const int8_t* row = in + (y0 * g.w + x0) * g.ic;
#if TE_ARM_DSP
    // per filter row: its whole words widened into the column, its trailing
    // bytes to the stage; then the stage's groups widened
    int32_t rows = g.kh, cnt, v, t0, t1;
    const int8_t* src;
    int8_t* tail;
    __asm__ volatile(
        "ldr %[tl], [%[sf], #16]\n\t"
        "1:\n\t"
        "mov %[s], %[row]\n\t"
        "ldr %[n], [%[sf]]\n\t"
        "cmp %[n], #0\n\t"
        "beq 3f\n\t"
        "2:\n\t"
        "ldr %[v], [%[s]], #4\n\t"
        "sxtb16 %[t0], %[v]\n\t"
        "sxtb16 %[t1], %[v], ror #8\n\t"
        "strd %[t0], %[t1], [%[dst]], %[st]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 2b\n\t"
        "3:\n\t"
        "ldr %[n], [%[sf], #4]\n\t"
        "cmp %[n], #0\n\t"
        "beq 5f\n\t"
        "4:\n\t"
        "ldrb %[v], [%[s]], #1\n\t"
        "strb %[v], [%[tl]], #1\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 4b\n\t"
        "5:\n\t"
        "ldr %[v], [%[sf], #8]\n\t"
        "add %[row], %[row], %[v]\n\t"
        "subs %[rows], %[rows], #1\n\t"
        "bne 1b\n\t"
        "ldr %[n], [%[sf], #12]\n\t"
        "cmp %[n], #0\n\t"
        "beq 7f\n\t"
        "ldr %[s], [%[sf], #16]\n\t"
        "6:\n\t"
        "ldr %[v], [%[s]], #4\n\t"
        "sxtb16 %[t0], %[v]\n\t"
        "sxtb16 %[t1], %[v], ror #8\n\t"
        "strd %[t0], %[t1], [%[dst]], %[st]\n\t"
        "subs %[n], %[n], #1\n\t"
        "bne 6b\n\t"
        "7:\n\t"
        : [row] "+r"(row), [dst] "+r"(dst), [rows] "+r"(rows), [tl] "=&r"(tail), [s] "=&r"(src),
          [n] "=&r"(cnt), [v] "=&r"(v), [t0] "=&r"(t0), [t1] "=&r"(t1)
        : [sf] "r"(&sf), [st] "n"(kStep * 4)
        : "cc", "memory");
#else
    int8_t* tail = sf.tail;
    for (int32_t ky = g.kh; ky > 0; --ky, row += sf.row_step) {
      const int8_t* s = row;
      for (int32_t i = sf.words; i > 0; --i, s += 4, dst += kStep) put_group(dst, te_arm::load32(s));
      for (int32_t j = 0; j < sf.bytes; ++j) *tail++ = s[j];
    }
    widen<kStep>(reinterpret_cast<const word_t*>(sf.tail), dst, sf.tail_groups);
#endif
  }
}

// What the GEMM block reads besides the filter rows (field offsets are used
// by the assembly below).
struct GemmCtx {
  const int16_t* cols;  // 0
  int32_t iterations;   // 4: loop iterations of two groups (the first may be half)
  int32_t unused;       // 8
  int8_t* out;          // 12: output of pixel 0, channel o
  int32_t cout;         // 16: output stride between pixels
  int32_t out_offset;   // 20
  const int8_t* w_end;  // 24: end of the packed filter
};

#if TE_ARM_DSP
// One group of four K values for the four columns with filter word W.
#define TE_GROUP(W)                                   \
  "sxtb16 %[wa], %[" W "]\n\t"                        \
  "sxtb16 %[" W "], %[" W "], ror #8\n\t"             \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a0], %[x0], %[wa], %[a0]\n\t"              \
  "smlad %[a0], %[x1], %[" W "], %[a0]\n\t"           \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a1], %[x0], %[wa], %[a1]\n\t"              \
  "smlad %[a1], %[x1], %[" W "], %[a1]\n\t"           \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a2], %[x0], %[wa], %[a2]\n\t"              \
  "smlad %[a2], %[x1], %[" W "], %[a2]\n\t"           \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a3], %[x0], %[wa], %[a3]\n\t"              \
  "smlad %[a3], %[x1], %[" W "], %[a3]\n\t"

// The same with int16 filter words (te_arm_conv2d_w16_s8): both lane pairs
// are loaded, nothing is unpacked.
#define TE_GROUP_W16                                  \
  "ldrd %[wa], %[w0], [%[w]], #8\n\t"                 \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a0], %[x0], %[wa], %[a0]\n\t"              \
  "smlad %[a0], %[x1], %[w0], %[a0]\n\t"              \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a1], %[x0], %[wa], %[a1]\n\t"              \
  "smlad %[a1], %[x1], %[w0], %[a1]\n\t"              \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a2], %[x0], %[wa], %[a2]\n\t"              \
  "smlad %[a2], %[x1], %[w0], %[a2]\n\t"              \
  "ldrd %[x0], %[x1], [%[c]], #8\n\t"                 \
  "smlad %[a3], %[x0], %[wa], %[a3]\n\t"              \
  "smlad %[a3], %[x1], %[w0], %[a3]\n\t"

// Requantize accumulator A (m2 in x0, rounding in x1, rs in wa; w1 is a
// temporary).
#define TE_REQUANT(A)                                 \
  "add %[w1], %[" A "], %[x1]\n\t"                    \
  "add %[w1], %[w1], %[" A "], asr #31\n\t"           \
  "smmlar %[" A "], %[" A "], %[x0], %[w1]\n\t"       \
  "asr %[" A "], %[" A "], %[wa]\n\t"
// Add the output offset (in w0).
#define TE_ADD_OFFSET                                 \
  "ldr %[w0], [%[ctx], #20]\n\t"                      \
  "add %[a0], %[a0], %[w0]\n\t"                       \
  "add %[a1], %[a1], %[w0]\n\t"                       \
  "add %[a2], %[a2], %[w0]\n\t"                       \
  "add %[a3], %[a3], %[w0]\n\t"

// Two groups per loop iteration; label 2 is the second one (where a row
// with an odd group count starts).
#define TE_PAIR_W8                                    \
  "1:\n\t"                                            \
  "ldrd %[w0], %[w1], [%[w]], #8\n\t"                 \
  TE_GROUP("w0")                                      \
  "2:\n\t"                                            \
  TE_GROUP("w1")
#define TE_PAIR_W16 "1:\n\t" TE_GROUP_W16 "2:\n\t" TE_GROUP_W16
#define TE_ODD_W8 "ldr %[w1], [%[w]], #4\n\tb 2f\n\t"
#define TE_ODD_W16 "b 2f\n\t"

// All output channels of one block of four pixels.  ENTRY: how a row with an
// odd group count starts.
#define TE_GEMM_ASM(ENTRY, OFFSET, PAIR)                                          \
  __asm__ volatile(                                                             \
      "0:\n\t"                                                                  \
      "ldr %[a0], [%[w]], #4\n\t"                                               \
      "mov %[a1], %[a0]\n\t"                                                    \
      "mov %[a2], %[a0]\n\t"                                                    \
      "mov %[a3], %[a0]\n\t"                                                    \
      "ldrd %[c], %[n], [%[ctx]]\n\t"                                           \
      ENTRY                                                                     \
      PAIR                                                                      \
      "subs %[n], %[n], #1\n\t"                                                 \
      "bne 1b\n\t"                                                              \
      "ldrd %[x0], %[x1], [%[w]], #8\n\t"                                       \
      "ldr %[wa], [%[w]], #4\n\t"                                               \
      TE_REQUANT("a0") TE_REQUANT("a1") TE_REQUANT("a2") TE_REQUANT("a3")       \
      OFFSET                                                                    \
      "ssat %[a0], #8, %[a0]\n\t"                                               \
      "ssat %[a1], #8, %[a1]\n\t"                                               \
      "ssat %[a2], #8, %[a2]\n\t"                                               \
      "ssat %[a3], #8, %[a3]\n\t"                                               \
      "ldrd %[c], %[n], [%[ctx], #12]\n\t"                                      \
      "strb %[a0], [%[c]]\n\t"                                                  \
      "strb %[a1], [%[c], %[n]]\n\t"                                            \
      "strb %[a2], [%[c], %[n], lsl #1]\n\t"                                    \
      "add %[w1], %[n], %[n], lsl #1\n\t"                                       \
      "strb %[a3], [%[c], %[w1]]\n\t"                                           \
      "add %[c], %[c], #1\n\t"                                                  \
      "str %[c], [%[ctx], #12]\n\t"                                             \
      "ldr %[w1], [%[ctx], #24]\n\t"                                            \
      "cmp %[w], %[w1]\n\t"                                                     \
      "bne 0b\n\t"                                                              \
      : [w] "+r"(w), [a0] "=&r"(a0), [a1] "=&r"(a1), [a2] "=&r"(a2), [a3] "=&r"(a3), \
        [c] "=&r"(c), [n] "=&r"(n), [x0] "=&r"(x0), [x1] "=&r"(x1), [wa] "=&r"(wa),   \
        [w0] "=&r"(w0), [w1] "=&r"(w1)                                          \
      : [ctx] "r"(ctx)                                                          \
      : "cc", "memory")
#endif

// All output channels of a block of four pixels (columns), written with
// stride cout from ctx->out; outputs saturate to [-128, 127] (any narrower
// fused activation is applied afterwards).
template <bool kW16>
void gemm_block(const int8_t* w, int32_t groups, GemmCtx* ctx) {
#if TE_ARM_DSP
  int32_t a0, a1, a2, a3, c, n, x0, x1, wa, w0, w1;
  const bool odd = groups & 1;
  // The asm text must be a literal, so each variant is spelled out once here.
#define TE_GEMM_DISPATCH(ODD, PAIR)                     \
  if (ctx->out_offset != 0) {                           \
    if (odd) {                                          \
      TE_GEMM_ASM(ODD, TE_ADD_OFFSET, PAIR);            \
    } else {                                            \
      TE_GEMM_ASM("", TE_ADD_OFFSET, PAIR);             \
    }                                                   \
  } else if (odd) {                                     \
    TE_GEMM_ASM(ODD, "", PAIR);                         \
  } else {                                              \
    TE_GEMM_ASM("", "", PAIR);                          \
  }
  if (kW16) {
    TE_GEMM_DISPATCH(TE_ODD_W16, TE_PAIR_W16)
  } else {
    TE_GEMM_DISPATCH(TE_ODD_W8, TE_PAIR_W8)
  }
#undef TE_GEMM_DISPATCH
  (void)a0, (void)a1, (void)a2, (void)a3, (void)c, (void)n, (void)x0, (void)x1, (void)wa, (void)w0, (void)w1;
#else
  const int32_t cout = ctx->cout;
  int8_t* out = ctx->out;
  while (w != ctx->w_end) {
    int32_t bias;
    memcpy(&bias, w, 4);
    w += 4;
    int32_t acc[kCols] = {bias, bias, bias, bias};
    const word_t* col = reinterpret_cast<const word_t*>(ctx->cols);
    for (int32_t g = 0; g < groups; ++g, col += kGroupWords) {
      int32_t wa, wb;
      if (kW16) {
        wa = static_cast<int32_t>(te_arm::load32(w));
        wb = static_cast<int32_t>(te_arm::load32(w + 4));
        w += 8;
      } else {
        const uint32_t wv = te_arm::load32(w);
        wa = te_arm::sxtb16(wv);
        wb = te_arm::sxtb16_ror8(wv);
        w += 4;
      }
      for (int32_t n = 0; n < kCols; ++n) {
        acc[n] = te_arm::smlad(static_cast<int32_t>(col[2 * n]), wa, acc[n]);
        acc[n] = te_arm::smlad(static_cast<int32_t>(col[2 * n + 1]), wb, acc[n]);
      }
    }
    int32_t q[3];
    memcpy(q, w, sizeof q);
    w += sizeof q;
    for (int32_t n = 0; n < kCols; ++n) {
      out[n * cout] = te_arm::finish<true>(te_arm::requantize(acc[n], q[0], q[1], q[2]), ctx->out_offset, 0, 0);
    }
    ++out;
  }
#endif
}

// All output channels of one column (groups kStep words apart: of the
// interleaved buffer, starting at `col`, or the narrow kernel's own column),
// written contiguously to out.
template <bool kW16, int32_t kStep>
void gemm_column(const int8_t* w, int32_t groups, const int16_t* col, int8_t* out, const int8_t* w_end,
                 int32_t out_offset) {
  while (w != w_end) {
    int32_t acc;
    memcpy(&acc, w, 4);
    w += 4;
    const word_t* c = reinterpret_cast<const word_t*>(col);
#if TE_ARM_DSP
    {
      int32_t n = groups;
      uint32_t wv, wa, x0, x1;
      if (kW16) {
        __asm__ volatile(
            "1:\n\t"
            "ldrd %[wa], %[wv], [%[w]], #8\n\t"
            "ldrd %[x0], %[x1], [%[c]], %[st]\n\t"
            "smlad %[acc], %[x0], %[wa], %[acc]\n\t"
            "smlad %[acc], %[x1], %[wv], %[acc]\n\t"
            "subs %[n], %[n], #1\n\t"
            "bne 1b\n\t"
            : [acc] "+r"(acc), [w] "+r"(w), [c] "+r"(c), [n] "+r"(n), [wv] "=&r"(wv), [wa] "=&r"(wa),
              [x0] "=&r"(x0), [x1] "=&r"(x1)
            : [st] "n"(kStep * 4)
            : "cc", "memory");
      } else __asm__ volatile(
          "1:\n\t"
          "ldr %[wv], [%[w]], #4\n\t"
          "sxtb16 %[wa], %[wv]\n\t"
          "sxtb16 %[wv], %[wv], ror #8\n\t"
          "ldrd %[x0], %[x1], [%[c]], %[st]\n\t"
          "smlad %[acc], %[x0], %[wa], %[acc]\n\t"
          "smlad %[acc], %[x1], %[wv], %[acc]\n\t"
          "subs %[n], %[n], #1\n\t"
          "bne 1b\n\t"
          : [acc] "+r"(acc), [w] "+r"(w), [c] "+r"(c), [n] "+r"(n), [wv] "=&r"(wv), [wa] "=&r"(wa),
            [x0] "=&r"(x0), [x1] "=&r"(x1)
          : [st] "n"(kStep * 4)
          : "cc", "memory");
    }
#else
    for (int32_t g = 0; g < groups; ++g, c += kStep) {
      if (kW16) {
        acc = te_arm::smlad(static_cast<int32_t>(c[0]), static_cast<int32_t>(te_arm::load32(w)), acc);
        acc = te_arm::smlad(static_cast<int32_t>(c[1]), static_cast<int32_t>(te_arm::load32(w + 4)), acc);
        w += 8;
      } else {
        const uint32_t wv = te_arm::load32(w);
        acc = te_arm::smlad(static_cast<int32_t>(c[0]), te_arm::sxtb16(wv), acc);
        acc = te_arm::smlad(static_cast<int32_t>(c[1]), te_arm::sxtb16_ror8(wv), acc);
        w += 4;
      }
    }
#endif
    int32_t q[3];
    memcpy(q, w, sizeof q);
    w += sizeof q;
    *out++ = te_arm::finish<true>(te_arm::requantize(acc, q[0], q[1], q[2]), out_offset, 0, 0);
  }
}

// All output channels of the narrow kernel's column (groups contiguous), written
// contiguously to out: two channels per pass over the column, so each column
// word loaded serves two filter rows; a last odd channel by gemm_column.
template <bool kW16>
void gemm_narrow(const int8_t* packed, int32_t groups, int32_t cout, const int16_t* col, int8_t* out,
                 int32_t out_offset) {
  const int32_t rec = (kW16 ? 8 * groups : 4 * groups) + 16;  // bytes per output channel record
  const int8_t* wa = packed;
  for (int32_t o = 0; o + 1 < cout; o += 2, wa += 2 * rec) {
    const int8_t* wb = wa + rec;
    int32_t acc0, acc1;
    memcpy(&acc0, wa, 4);
    memcpy(&acc1, wb, 4);
    const int8_t* pa = wa + 4;
    const int8_t* pb = wb + 4;
    const word_t* c = reinterpret_cast<const word_t*>(col);
#if TE_ARM_DSP
    int32_t n = groups;
    uint32_t va, ua, vb, ub, x0, x1;
    if (kW16) {
      __asm__ volatile(
          "1:\n\t"
          "ldrd %[ua], %[va], [%[pa]], #8\n\t"
          "ldrd %[ub], %[vb], [%[pb]], #8\n\t"
          "ldrd %[x0], %[x1], [%[c]], #8\n\t"
          "smlad %[acc0], %[x0], %[ua], %[acc0]\n\t"
          "smlad %[acc0], %[x1], %[va], %[acc0]\n\t"
          "smlad %[acc1], %[x0], %[ub], %[acc1]\n\t"
          "smlad %[acc1], %[x1], %[vb], %[acc1]\n\t"
          "subs %[n], %[n], #1\n\t"
          "bne 1b\n\t"
          : [acc0] "+r"(acc0), [acc1] "+r"(acc1), [pa] "+r"(pa), [pb] "+r"(pb), [c] "+r"(c), [n] "+r"(n),
            [va] "=&r"(va), [ua] "=&r"(ua), [vb] "=&r"(vb), [ub] "=&r"(ub), [x0] "=&r"(x0), [x1] "=&r"(x1)
          :
          : "cc", "memory");
    } else {
      __asm__ volatile(
          "1:\n\t"
          "ldr %[va], [%[pa]], #4\n\t"
          "ldr %[vb], [%[pb]], #4\n\t"
          "ldrd %[x0], %[x1], [%[c]], #8\n\t"
          "sxtb16 %[ua], %[va]\n\t"
          "sxtb16 %[va], %[va], ror #8\n\t"
          "smlad %[acc0], %[x0], %[ua], %[acc0]\n\t"
          "smlad %[acc0], %[x1], %[va], %[acc0]\n\t"
          "sxtb16 %[ub], %[vb]\n\t"
          "sxtb16 %[vb], %[vb], ror #8\n\t"
          "smlad %[acc1], %[x0], %[ub], %[acc1]\n\t"
          "smlad %[acc1], %[x1], %[vb], %[acc1]\n\t"
          "subs %[n], %[n], #1\n\t"
          "bne 1b\n\t"
          : [acc0] "+r"(acc0), [acc1] "+r"(acc1), [pa] "+r"(pa), [pb] "+r"(pb), [c] "+r"(c), [n] "+r"(n),
            [va] "=&r"(va), [ua] "=&r"(ua), [vb] "=&r"(vb), [ub] "=&r"(ub), [x0] "=&r"(x0), [x1] "=&r"(x1)
          :
          : "cc", "memory");
    }
#else
    for (int32_t g = 0; g < groups; ++g, c += kNarrowStep) {
      int32_t a0, a1, b0, b1;
      if (kW16) {
        a0 = static_cast<int32_t>(te_arm::load32(pa));
        a1 = static_cast<int32_t>(te_arm::load32(pa + 4));
        b0 = static_cast<int32_t>(te_arm::load32(pb));
        b1 = static_cast<int32_t>(te_arm::load32(pb + 4));
        pa += 8;
        pb += 8;
      } else {
        const uint32_t va = te_arm::load32(pa), vb = te_arm::load32(pb);
        a0 = te_arm::sxtb16(va);
        a1 = te_arm::sxtb16_ror8(va);
        b0 = te_arm::sxtb16(vb);
        b1 = te_arm::sxtb16_ror8(vb);
        pa += 4;
        pb += 4;
      }
      acc0 = te_arm::smlad(static_cast<int32_t>(c[0]), a0, acc0);
      acc0 = te_arm::smlad(static_cast<int32_t>(c[1]), a1, acc0);
      acc1 = te_arm::smlad(static_cast<int32_t>(c[0]), b0, acc1);
      acc1 = te_arm::smlad(static_cast<int32_t>(c[1]), b1, acc1);
    }
#endif
    int32_t q[3];
    memcpy(q, pa, sizeof q);
    out[o] = te_arm::finish<true>(te_arm::requantize(acc0, q[0], q[1], q[2]), out_offset, 0, 0);
    memcpy(q, pb, sizeof q);
    out[o + 1] = te_arm::finish<true>(te_arm::requantize(acc1, q[0], q[1], q[2]), out_offset, 0, 0);
  }
  if (cout & 1) {
    gemm_column<kW16, kNarrowStep>(packed + (cout - 1) * rec, groups, col, out + cout - 1, packed + cout * rec,
                                   out_offset);
  }
}

// The fused activation, when narrower than int8 (the GEMMs saturate to int8):
// clamp(saturate8(v), lo, hi) == clamp(v, lo, hi) for -128 <= lo <= hi <= 127.
void clamp_outputs(const te_conv_params* p, int8_t* output) {
  if (p->act_min == -128 && p->act_max == 127) return;
  const int32_t n = p->batch * p->output_h * p->output_w * p->output_c;
  for (int32_t i = 0; i < n; ++i) {
    int32_t v = output[i];
    v = v < p->act_min ? p->act_min : v;
    output[i] = static_cast<int8_t>(v > p->act_max ? p->act_max : v);
  }
}

template <bool kW16>
void conv(const te_conv_params* p, const int8_t* input, const int8_t* packed, int8_t* output, void* scratch) {
  const int32_t cout = p->output_c;
  const int32_t k4 = conv_k4(p);
  const int32_t groups = k4 >> 2;
  const int32_t pixels = p->output_h * p->output_w;
  const int32_t in_batch = p->input_h * p->input_w * p->input_c;
  int16_t* cols = static_cast<int16_t*>(scratch);
  int8_t* partial = static_cast<int8_t*>(scratch) + cols_bytes(k4);
  int8_t* stage = partial + partial_bytes(p);
  const Geom geom = {p->input_c, -p->input_offset, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                     p->dilation_h, p->dilation_w, p->pad_top, p->pad_left, p->input_h, p->input_w, k4,
                     p->output_w};
  GemmCtx ctx;
  ctx.cols = cols;
  ctx.iterations = (groups + 1) >> 1;
  ctx.unused = 0;
  ctx.cout = cout;
  ctx.out_offset = p->output_offset;
  ctx.w_end = packed + cout * ((kW16 ? 2 * k4 : k4) + 16);
  // The unused columns of a last, partial block are computed but not stored:
  // give them defined values once; the stage's K padding stays zero.
  for (int32_t i = 0; i < kCols * k4; ++i) cols[i] = 0;
  if (p->input_c & 3) {
    for (int32_t i = 0; i < k4; ++i) stage[i] = 0;
  }
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * in_batch;
    int8_t* out = output + b * pixels * cout;
    int32_t oy = 0, ox = 0;
    for (int32_t pix = 0; pix < pixels; pix += kCols) {
      const int32_t ncols = pixels - pix < kCols ? pixels - pix : kCols;
      if (p->input_c & 3) {
        fill_block_small<kGroupWords>(geom, in, oy, ox, ncols, cols, stage);
      } else {
        fill_block<kGroupWords>(geom, in, oy, ox, ncols, cols, stage);
      }
      ox += ncols;
      while (ox >= p->output_w) {
        ox -= p->output_w;
        ++oy;
      }
      if (ncols <= 2) {  // one or two columns: cheaper one at a time than as a block of four
        for (int32_t n = 0; n < ncols; ++n) {
          gemm_column<kW16, kGroupWords>(packed, groups, cols + 4 * n, out + (pix + n) * cout, ctx.w_end,
                                         p->output_offset);
        }
        continue;
      }
      ctx.out = ncols == kCols ? out + pix * cout : partial;
      gemm_block<kW16>(packed, groups, &ctx);
      if (ncols < kCols) memcpy(out + pix * cout, partial, static_cast<size_t>(ncols * cout));
    }
  }
  clamp_outputs(p, output);
}

// The narrow kernel (te_arm_conv2d_narrow_s8): one output pixel at a time,
// im2col into a single int16 column (groups contiguous, 2 words each) and
// gemm_narrow over every output channel.  Scratch: that column, then the
// stage when input_c % 4 != 0 -- no block of four columns, no partial block.
template <bool kW16>
void conv_narrow(const te_conv_params* p, const int8_t* input, const int8_t* packed, int8_t* output,
                 void* scratch) {
  const int32_t cout = p->output_c;
  const int32_t k4 = conv_k4(p);
  const int32_t groups = k4 >> 2;
  const int32_t in_batch = p->input_h * p->input_w * p->input_c;
  int16_t* col = static_cast<int16_t*>(scratch);
  int8_t* stage = static_cast<int8_t*>(scratch) + narrow_col_bytes(k4);
  const Geom geom = {p->input_c, -p->input_offset, p->kernel_h, p->kernel_w, p->stride_h, p->stride_w,
                     p->dilation_h, p->dilation_w, p->pad_top, p->pad_left, p->input_h, p->input_w, k4,
                     p->output_w};
  const bool small = (p->input_c & 3) != 0;
  if (small) {
    for (int32_t i = 0; i < k4; ++i) stage[i] = 0;  // the K padding of the stage stays zero
  }
  int8_t* out = output;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in = input + b * in_batch;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox, out += cout) {
        if (small) {
          fill_block_small<kNarrowStep>(geom, in, oy, ox, 1, col, stage);
        } else {
          fill_block<kNarrowStep>(geom, in, oy, ox, 1, col, stage);
        }
        gemm_narrow<kW16>(packed, groups, cout, col, out, p->output_offset);
      }
    }
  }
  clamp_outputs(p, output);
}

}  // namespace

extern "C" void te_arm_conv2d_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                 int8_t* output, void* scratch) {
  conv<false>(p, input, packed, output, scratch);
}

extern "C" void te_arm_conv2d_w16_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                     int8_t* output, void* scratch) {
  conv<true>(p, input, packed, output, scratch);
}

extern "C" int32_t te_arm_conv2d_s8_get_buffer_size(const te_conv_params* p) {
  const int32_t k4 = conv_k4(p);
  return cols_bytes(k4) + partial_bytes(p) + stage_bytes(p, k4);
}

extern "C" int32_t te_arm_conv2d_w16_s8_get_buffer_size(const te_conv_params* p) {
  return te_arm_conv2d_s8_get_buffer_size(p);
}

extern "C" void te_arm_conv2d_narrow_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                        int8_t* output, void* scratch) {
  conv_narrow<false>(p, input, packed, output, scratch);
}

extern "C" void te_arm_conv2d_narrow_w16_s8(const te_conv_params* p, const int8_t* input, const int8_t* packed,
                                            int8_t* output, void* scratch) {
  conv_narrow<true>(p, input, packed, output, scratch);
}

extern "C" int32_t te_arm_conv2d_narrow_s8_get_buffer_size(const te_conv_params* p) {
  const int32_t k4 = conv_k4(p);
  return narrow_col_bytes(k4) + stage_bytes(p, k4);
}

extern "C" int32_t te_arm_conv2d_narrow_w16_s8_get_buffer_size(const te_conv_params* p) {
  return te_arm_conv2d_narrow_s8_get_buffer_size(p);
}
