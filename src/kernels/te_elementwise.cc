// Portable int8 ADD, SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM, MINIMUM and PRELU
// with 4-D broadcasting, TFLM-exact; ADD, SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM
// and MINIMUM also on int16 (the same arithmetic; ADD and SUB with 15 bits of
// headroom, SQUARED_DIFFERENCE with none), PRELU of int16 values with an int8
// alpha; SELECT_V2 of int8 or int16 values.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

// Both inputs brought to a common scale with left_shift bits of headroom
// (ADD, SUB and SQUARED_DIFFERENCE share this first step in TFLM).
struct Rescaled {
  int32_t a, b;
};

inline Rescaled rescale_inputs(const te_elementwise_params* p, int32_t a,
                               int32_t b) {
  return {te::multiply_by_quantized_multiplier(
              (a + p->input1_offset) * (1 << p->left_shift),
              p->input1_multiplier, p->input1_shift),
          te::multiply_by_quantized_multiplier(
              (b + p->input2_offset) * (1 << p->left_shift),
              p->input2_multiplier, p->input2_shift)};
}

// Each operation below returns its clamped result, which the element type holds.
inline int32_t requantize_output(const te_elementwise_params* p, int32_t raw) {
  const int32_t out = te::multiply_by_quantized_multiplier(
                          raw, p->output_multiplier, p->output_shift) +
                      p->output_offset;
  return te::clamp_i32(out, p->act_min, p->act_max);
}

inline int32_t add_one(const te_elementwise_params* p, int32_t a, int32_t b) {
  const Rescaled r = rescale_inputs(p, a, b);
  return requantize_output(p, r.a + r.b);
}

inline int32_t sub_one(const te_elementwise_params* p, int32_t a, int32_t b) {
  const Rescaled r = rescale_inputs(p, a, b);
  return requantize_output(p, r.a - r.b);
}

inline int32_t squared_difference_one(const te_elementwise_params* p, int32_t a,
                                     int32_t b) {
  const Rescaled r = rescale_inputs(p, a, b);
  // |a - b| < 2^15 after the rescale (left_shift 7 for int8, 0 for int16:
  // each rescaled input is at most half its raw value), so the square fits.
  const int32_t diff = r.a - r.b;
  return requantize_output(p, diff * diff);
}

inline int32_t prelu_one(const te_elementwise_params* p, int32_t x,
                        int32_t alpha) {
  const int32_t a = x + p->input1_offset;
  const int32_t scaled =
      a >= 0 ? te::multiply_by_quantized_multiplier(a, p->output_multiplier,
                                                    p->output_shift)
             : te::multiply_by_quantized_multiplier(
                   a * (alpha + p->input2_offset), p->input2_multiplier,
                   p->input2_shift);
  return te::clamp_i32(scaled + p->output_offset, p->act_min, p->act_max);
}

inline int32_t maximum_one(const te_elementwise_params*, int32_t a, int32_t b) {
  return a > b ? a : b;
}

inline int32_t minimum_one(const te_elementwise_params*, int32_t a, int32_t b) {
  return a < b ? a : b;
}

inline int32_t mul_one(const te_elementwise_params* p, int32_t a, int32_t b) {
  return requantize_output(p, (a + p->input1_offset) * (b + p->input2_offset));
}

// Walks the output in order; each element reads both inputs through their
// (possibly zero) strides, which covers every broadcast pattern of rank <= 4.
template <int32_t (*Op)(const te_elementwise_params*, int32_t, int32_t),
          typename T, typename T2 = T, typename Out = T>
void broadcast_apply(const te_elementwise_params* p, const T* in1,
                     const T2* in2, Out* out) {
  const int32_t* d = p->dims;
  const int32_t* s1 = p->input1_strides;
  const int32_t* s2 = p->input2_strides;
  for (int32_t i0 = 0; i0 < d[0]; ++i0) {
    for (int32_t i1 = 0; i1 < d[1]; ++i1) {
      for (int32_t i2 = 0; i2 < d[2]; ++i2) {
        const int32_t base1 = i0 * s1[0] + i1 * s1[1] + i2 * s1[2];
        const int32_t base2 = i0 * s2[0] + i1 * s2[1] + i2 * s2[2];
        for (int32_t i3 = 0; i3 < d[3]; ++i3) {
          *out++ = static_cast<Out>(
              Op(p, in1[base1 + i3 * s1[3]], in2[base2 + i3 * s2[3]]));
        }
      }
    }
  }
}

}  // namespace

extern "C" void te_add_s8(const te_elementwise_params* p, const int8_t* input1,
                          const int8_t* input2, int8_t* output) {
  broadcast_apply<add_one>(p, input1, input2, output);
}

extern "C" void te_mul_s8(const te_elementwise_params* p, const int8_t* input1,
                          const int8_t* input2, int8_t* output) {
  broadcast_apply<mul_one>(p, input1, input2, output);
}

extern "C" void te_sub_s8(const te_elementwise_params* p, const int8_t* input1,
                          const int8_t* input2, int8_t* output) {
  broadcast_apply<sub_one>(p, input1, input2, output);
}

extern "C" void te_squared_difference_s8(const te_elementwise_params* p,
                                         const int8_t* input1,
                                         const int8_t* input2, int8_t* output) {
  broadcast_apply<squared_difference_one>(p, input1, input2, output);
}

extern "C" void te_maximum_s8(const te_elementwise_params* p,
                              const int8_t* input1, const int8_t* input2,
                              int8_t* output) {
  broadcast_apply<maximum_one>(p, input1, input2, output);
}

extern "C" void te_minimum_s8(const te_elementwise_params* p,
                              const int8_t* input1, const int8_t* input2,
                              int8_t* output) {
  broadcast_apply<minimum_one>(p, input1, input2, output);
}

extern "C" void te_prelu_s8(const te_elementwise_params* p, const int8_t* input1,
                            const int8_t* input2, int8_t* output) {
  broadcast_apply<prelu_one>(p, input1, input2, output);
}

extern "C" void te_add_s16(const te_elementwise_params* p,
                              const int16_t* input1, const int16_t* input2,
                              int16_t* output) {
  broadcast_apply<add_one>(p, input1, input2, output);
}

extern "C" void te_mul_s16(const te_elementwise_params* p,
                              const int16_t* input1, const int16_t* input2,
                              int16_t* output) {
  broadcast_apply<mul_one>(p, input1, input2, output);
}

extern "C" void te_sub_s16(const te_elementwise_params* p,
                              const int16_t* input1, const int16_t* input2,
                              int16_t* output) {
  broadcast_apply<sub_one>(p, input1, input2, output);
}

extern "C" void te_prelu_s16(const te_elementwise_params* p,
                             const int16_t* input1, const int8_t* input2,
                             int16_t* output) {
  broadcast_apply<prelu_one>(p, input1, input2, output);
}

extern "C" void te_squared_difference_s16(const te_elementwise_params* p,
                                          const int16_t* input1,
                                          const int16_t* input2,
                                          int16_t* output) {
  broadcast_apply<squared_difference_one>(p, input1, input2, output);
}

extern "C" void te_maximum_s16(const te_elementwise_params* p,
                              const int16_t* input1, const int16_t* input2,
                              int16_t* output) {
  broadcast_apply<maximum_one>(p, input1, input2, output);
}

extern "C" void te_minimum_s16(const te_elementwise_params* p,
                              const int16_t* input1, const int16_t* input2,
                              int16_t* output) {
  broadcast_apply<minimum_one>(p, input1, input2, output);
}

namespace {

// Comparisons of int8 values in TFLM's common scale (each input rescaled with
// 8 bits of headroom, as ADD does with 20); 1 or 0, written as bool.
template <bool (*Compare)(int32_t, int32_t)>
inline int32_t compare_one(const te_elementwise_params* p, int32_t a, int32_t b) {
  const Rescaled r = rescale_inputs(p, a, b);
  return Compare(r.a, r.b) ? 1 : 0;
}

inline bool equal(int32_t a, int32_t b) { return a == b; }
inline bool not_equal(int32_t a, int32_t b) { return a != b; }
inline bool greater(int32_t a, int32_t b) { return a > b; }
inline bool greater_equal(int32_t a, int32_t b) { return a >= b; }
inline bool less(int32_t a, int32_t b) { return a < b; }
inline bool less_equal(int32_t a, int32_t b) { return a <= b; }

}  // namespace

extern "C" void te_equal_s8(const te_elementwise_params* p,
                            const int8_t* input1, const int8_t* input2,
                            bool* output) {
  broadcast_apply<compare_one<equal>>(p, input1, input2, output);
}

extern "C" void te_not_equal_s8(const te_elementwise_params* p,
                                const int8_t* input1, const int8_t* input2,
                                bool* output) {
  broadcast_apply<compare_one<not_equal>>(p, input1, input2, output);
}

extern "C" void te_greater_s8(const te_elementwise_params* p,
                              const int8_t* input1, const int8_t* input2,
                              bool* output) {
  broadcast_apply<compare_one<greater>>(p, input1, input2, output);
}

extern "C" void te_greater_equal_s8(const te_elementwise_params* p,
                                    const int8_t* input1,
                                    const int8_t* input2, bool* output) {
  broadcast_apply<compare_one<greater_equal>>(p, input1, input2, output);
}

extern "C" void te_less_s8(const te_elementwise_params* p, const int8_t* input1,
                           const int8_t* input2, bool* output) {
  broadcast_apply<compare_one<less>>(p, input1, input2, output);
}

extern "C" void te_less_equal_s8(const te_elementwise_params* p,
                                 const int8_t* input1, const int8_t* input2,
                                 bool* output) {
  broadcast_apply<compare_one<less_equal>>(p, input1, input2, output);
}

namespace {

// SELECT_V2 of raw values (x, y and the output share one quantization).
template <typename T>
void select_apply(const te_select_params* p, const bool* condition, const T* x,
                  const T* y, T* output) {
  const int32_t* d = p->dims;
  for (int32_t i0 = 0; i0 < d[0]; ++i0) {
    for (int32_t i1 = 0; i1 < d[1]; ++i1) {
      for (int32_t i2 = 0; i2 < d[2]; ++i2) {
        for (int32_t i3 = 0; i3 < d[3]; ++i3) {
          const int32_t at[4] = {i0, i1, i2, i3};
          int32_t c = 0, a = 0, b = 0;
          for (int k = 0; k < 4; ++k) {
            c += at[k] * p->condition_strides[k];
            a += at[k] * p->x_strides[k];
            b += at[k] * p->y_strides[k];
          }
          *output++ = condition[c] ? x[a] : y[b];
        }
      }
    }
  }
}

}  // namespace

extern "C" void te_select_s8(const te_select_params* p, const bool* condition,
                             const int8_t* x, const int8_t* y,
                             int8_t* output) {
  select_apply(p, condition, x, y, output);
}

extern "C" void te_select_s16(const te_select_params* p, const bool* condition,
                              const int16_t* x, const int16_t* y,
                              int16_t* output) {
  select_apply(p, condition, x, y, output);
}

namespace {

// One term of ADD_N or CUMSUM with left_shift bits of headroom, rescaled (TFLM
// starts their sums at the rescaled -zero_point, one more term than the inputs).
inline int32_t rescale_term(const te_sum_params* p, int32_t v) {
  return te::multiply_by_quantized_multiplier(v * (1 << p->left_shift),
                                              p->input_multiplier,
                                              p->input_shift);
}

}  // namespace

extern "C" void te_add_n_s8(const te_sum_params* p,
                            const int8_t* const* inputs, int8_t* output) {
  const auto rescale = [p](int32_t v) { return rescale_term(p, v); };
  const int32_t start = rescale(p->input_offset);
  for (int32_t i = 0; i < p->size; ++i) {
    int32_t acc = start;
    for (int32_t k = 0; k < p->n_inputs; ++k) acc += rescale(inputs[k][i] + p->input_offset);
    const int32_t y = te::multiply_by_quantized_multiplier(acc, p->output_multiplier,
                                                           p->output_shift) +
                      p->output_offset;
    output[i] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
  }
}

extern "C" void te_cumsum_s8(const te_sum_params* p, const int8_t* input,
                             int8_t* output) {
  const auto rescale = [p](int32_t v) { return rescale_term(p, v); };
  const int32_t start = rescale(p->input_offset);
  for (int32_t o = 0; o < p->outer; ++o) {
    for (int32_t i = 0; i < p->inner; ++i) {
      int32_t sum = start;
      for (int32_t k = 0; k < p->axis_size; ++k) {
        const int32_t a = p->reverse ? p->axis_size - 1 - k : k;
        const int32_t at = (o * p->axis_size + a) * p->inner + i;
        const int32_t term = rescale(input[at] + p->input_offset);
        if (!p->exclusive) sum += term;
        const int32_t y = te::multiply_by_quantized_multiplier(
                              sum, p->output_multiplier, p->output_shift) +
                          p->output_offset;
        output[at] = static_cast<int8_t>(te::clamp_i32(y, INT8_MIN, INT8_MAX));
        if (p->exclusive) sum += term;
      }
    }
  }
}
