// Cortex-M DSP (ARMv7E-M / ARMv8.1-M) helpers of the optimized kernels.
//
// Every helper has two implementations with identical results: the ACLE
// intrinsic (or one inline-assembly instruction) when the compiler targets a
// core with the DSP extension (__ARM_FEATURE_DSP), and plain C otherwise.  So
// a project whose generated code calls the optimized kernels still builds and
// runs, bit-exactly, on the host or on a core without DSP: the host runs the
// very same algorithm (packing, accumulation order, requantization) slowly.
//
// Requantization.  The portable kernels rescale an int32 accumulator with
// te::multiply_by_quantized_multiplier(acc, m, shift) (fixed_point.h):
//   y = SaturatingRoundingDoublingHighMul(acc << max(shift, 0), m)
//   r = RoundingDivideByPOT(y, max(-shift, 0))
// The optimized kernels compute the same r with fewer instructions, from
// per-channel values packed at code-generation time (see
// tinyengine_tvm/codegen/kernel_selection.py, which also checks the
// preconditions below and keeps the portable kernel where they fail):
//  * y = smmulr(acc, m2) + acc with m2 = 2*m - 2^32 (an int32):
//      smmulr(a, m2) = floor((a*m2 + 2^31) / 2^32), so
//      smmulr(a, m2) + a = floor((2*a*m + 2^31) / 2^32) = floor((a*m + 2^30) / 2^31),
//    which is exactly SaturatingRoundingDoublingHighMul(a, m) for every int32
//    a and every 2^30 <= m < 2^31 (the nudge/truncation pair of gemmlowp equals
//    one floor with a +2^30 rounding term; saturation needs m == INT32_MIN).
//    Channels with m == 0 get zero weights and bias instead (their result is
//    0 whatever the accumulator), and m = 2^30.
//  * shift < 0 for every channel (so acc is not shifted left) and
//      r = (y + 2^(rs-1) - (y < 0)) >> rs,   rs = -shift >= 1,
//    which is RoundingDivideByPOT (round half away from zero) as long as
//    y + 2^(rs-1) does not overflow: the generator bounds |acc| from the
//    weights and bias and checks it.
#ifndef TINYENGINE_KERNELS_ARM_DSP_H_
#define TINYENGINE_KERNELS_ARM_DSP_H_

#include <stdint.h>
#include <string.h>

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define TE_ARM_DSP 1
#else
#define TE_ARM_DSP 0
#endif

namespace te_arm {

// ---------------------------------------------------------------- loads
// A word that may alias any object: aligned word access to int8/int16 arrays
// (weights, scratch), which the compiler may merge into LDRD/LDM.
typedef uint32_t __attribute__((may_alias)) word_t;

// A 32-bit load from any address (LDR allows unaligned addresses on ARMv7-M
// and later; the compiler never turns these into LDRD/LDM).
inline uint32_t load32(const void* p) {
  uint32_t v;
  memcpy(&v, p, 4);
  return v;
}

inline void store32(void* p, uint32_t v) { memcpy(p, &v, 4); }

// ---------------------------------------------------------------- SIMD
// [b0, b2] of x sign-extended to two int16 lanes (low lane first).
inline int32_t sxtb16(uint32_t x) {
#if TE_ARM_DSP
  return __sxtb16(static_cast<int32_t>(x));
#else
  const uint32_t lo = static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>(x & 0xff))) & 0xffffu;
  const uint32_t hi = static_cast<uint32_t>(static_cast<int32_t>(static_cast<int8_t>((x >> 16) & 0xff)));
  return static_cast<int32_t>(lo | (hi << 16));
#endif
}

// [b1, b3] of x sign-extended to two int16 lanes (SXTB16 with ROR #8).
inline int32_t sxtb16_ror8(uint32_t x) {
#if TE_ARM_DSP
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
#else
  return sxtb16((x >> 8) | (x << 24));
#endif
}

inline int32_t lo16(int32_t x) { return static_cast<int16_t>(static_cast<uint32_t>(x) & 0xffffu); }
inline int32_t hi16(int32_t x) { return static_cast<int16_t>(static_cast<uint32_t>(x) >> 16); }

// acc + a.lo * b.lo + a.hi * b.hi (wrapping).
inline int32_t smlad(int32_t a, int32_t b, int32_t acc) {
#if TE_ARM_DSP
  return __smlad(a, b, acc);
#else
  const int64_t s = static_cast<int64_t>(lo16(a)) * lo16(b) + static_cast<int64_t>(hi16(a)) * hi16(b);
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(s));
#endif
}

// acc + a.lo * b.lo
inline int32_t smlabb(int32_t a, int32_t b, int32_t acc) {
#if TE_ARM_DSP
  return __smlabb(a, b, acc);
#else
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(lo16(a) * lo16(b)));
#endif
}

// acc + a.hi * b.lo
inline int32_t smlatb(int32_t a, int32_t b, int32_t acc) {
#if TE_ARM_DSP
  return __smlatb(a, b, acc);
#else
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(hi16(a) * lo16(b)));
#endif
}

// acc + a.hi * b.hi
inline int32_t smlatt(int32_t a, int32_t b, int32_t acc) {
#if TE_ARM_DSP
  return __smlatt(a, b, acc);
#else
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(hi16(a) * hi16(b)));
#endif
}

// acc + a.lo * b.lo + a.hi * b.hi, accumulated in 64 bits (exact).
inline int64_t smlald(int32_t a, int32_t b, int64_t acc) {
#if TE_ARM_DSP
  return __smlald(a, b, acc);
#else
  return acc + static_cast<int64_t>(lo16(a)) * lo16(b) + static_cast<int64_t>(hi16(a)) * hi16(b);
#endif
}

// floor((a * b + 2^31) / 2^32): the high word of the product, rounded.
inline int32_t smmulr(int32_t a, int32_t b) {
#if TE_ARM_DSP
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
#else
  return static_cast<int32_t>((static_cast<int64_t>(a) * b + (int64_t{1} << 31)) >> 32);
#endif
}

// Saturate to int8.
inline int32_t ssat8(int32_t x) {
#if TE_ARM_DSP
  return __ssat(x, 8);
#else
  return x < -128 ? -128 : (x > 127 ? 127 : x);
#endif
}

// Two int16 lanes [lo, hi] in one word.
inline uint32_t pack16(int32_t lo, int32_t hi) {
  return (static_cast<uint32_t>(lo) & 0xffffu) | (static_cast<uint32_t>(hi) << 16);
}

// ---------------------------------------------------------------- 4-row int8 dot products
// acc[0..3] += rows . x over `groups` groups of four int8 inputs, the four
// rows interleaved per group ([r0 k0..k3][r1 ..][r2 ..][r3 ..] then the next
// group, te_arm_fully_connected_s8's layout); w advances past them.
inline void dot4_groups(const int8_t* x, const int8_t*& w, int32_t groups, int32_t acc[4]) {
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
    const uint32_t v = load32(x);
    const int32_t xa = sxtb16(v), xb = sxtb16_ror8(v);
    for (int r = 0; r < 4; ++r) {
      const uint32_t wr = load32(w + 4 * r);
      acc[r] = smlad(xa, sxtb16(wr), acc[r]);
      acc[r] = smlad(xb, sxtb16_ror8(wr), acc[r]);
    }
  }
#endif
}

// dot4_groups, then `rest` (< 4) more inputs against one more zero-padded
// group of the rows (read byte by byte: x may end there).
inline void dot4_rows(const int8_t* x, const int8_t*& w, int32_t groups, int32_t rest, int32_t acc[4]) {
  dot4_groups(x, w, groups, acc);
  if (rest) {
    uint32_t v = 0;
    for (int32_t i = 0; i < rest; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(x[4 * groups + i])) << (8 * i);
    const int32_t xa = sxtb16(v), xb = sxtb16_ror8(v);
    for (int r = 0; r < 4; ++r) {
      const uint32_t wr = load32(w + 4 * r);
      acc[r] = smlad(xa, sxtb16(wr), acc[r]);
      acc[r] = smlad(xb, sxtb16_ror8(wr), acc[r]);
    }
    w += 16;
  }
}

// ---------------------------------------------------------------- requantization
// Per-channel packed parameters: {bias_eff, m2, rounding, right_shift}.
enum { kQBias = 0, kQMult = 1, kQRound = 2, kQShift = 3, kQWords = 4 };

// multiply_by_quantized_multiplier(acc, m, shift) for the packed channel q
// (see the derivation at the top of this file); bias not included.
inline int32_t requantize(int32_t acc, int32_t m2, int32_t rounding, int32_t right_shift) {
  const int32_t y = static_cast<int32_t>(static_cast<uint32_t>(smmulr(acc, m2)) + static_cast<uint32_t>(acc));
  const int32_t t = static_cast<int32_t>(static_cast<uint32_t>(y) + static_cast<uint32_t>(rounding) -
                                         (static_cast<uint32_t>(y) >> 31));
  return t >> right_shift;
}

// Add the output offset, clamp to [lo, hi] (a single SSAT when the range is
// the whole int8 range) and narrow.
template <bool kFullRange>
inline int8_t finish(int32_t v, int32_t out_offset, int32_t lo, int32_t hi) {
  v += out_offset;
  if (kFullRange) return static_cast<int8_t>(ssat8(v));
  v = v < lo ? lo : v;
  v = v > hi ? hi : v;
  return static_cast<int8_t>(v);
}

// 16x8 dot products in 64 bits (exact): acc0 += x . w0 and acc1 += x . w1 over
// `pairs` int16 pairs (x may be 2-byte aligned; w0, w1 word-aligned rows).
inline void dot2_s16(const int16_t* x, const int16_t* w0, const int16_t* w1, int32_t pairs, int64_t& acc0,
                     int64_t& acc1) {
  int64_t a0 = acc0, a1 = acc1;
  for (; pairs >= 2; pairs -= 2, x += 4, w0 += 4, w1 += 4) {
    const int32_t xa = static_cast<int32_t>(load32(x)), xb = static_cast<int32_t>(load32(x + 2));
    a0 = smlald(xa, static_cast<int32_t>(load32(w0)), a0);
    a1 = smlald(xa, static_cast<int32_t>(load32(w1)), a1);
    a0 = smlald(xb, static_cast<int32_t>(load32(w0 + 2)), a0);
    a1 = smlald(xb, static_cast<int32_t>(load32(w1 + 2)), a1);
  }
  if (pairs) {
    const int32_t xa = static_cast<int32_t>(load32(x));
    a0 = smlald(xa, static_cast<int32_t>(load32(w0)), a0);
    a1 = smlald(xa, static_cast<int32_t>(load32(w1)), a1);
  }
  acc0 = a0, acc1 = a1;
}

inline void dot1_s16(const int16_t* x, const int16_t* w, int32_t pairs, int64_t& acc) {
  int64_t a = acc;
  for (; pairs > 0; --pairs, x += 2, w += 2) {
    a = smlald(static_cast<int32_t>(load32(x)), static_cast<int32_t>(load32(w)), a);
  }
  acc = a;
}

// 16x8 output: bias, TFLite's 64-bit rescaling, output offset and clamp,
// from a channel's {int64 bias, int32 reduced multiplier, int32 total shift}
// at tail (the 16x8 record of tinyengine_kernels.h): the expression of
// fixed_point.h's multiply_by_quantized_multiplier_64 with its two
// multiplier-only terms precomputed.
inline int16_t finish_s16(int64_t acc, const int8_t* tail, int32_t out_offset, int32_t act_min, int32_t act_max) {
  int64_t bias;
  int32_t mq[2];
  memcpy(&bias, tail, 8);
  memcpy(mq, tail + 8, 8);
  acc += bias;
  int32_t v = static_cast<int32_t>((acc * mq[0] + (int64_t{1} << (mq[1] - 1))) >> mq[1]);
  v += out_offset;
  v = v < act_min ? act_min : v;
  return static_cast<int16_t>(v > act_max ? act_max : v);
}

}  // namespace te_arm

#endif  // TINYENGINE_KERNELS_ARM_DSP_H_
