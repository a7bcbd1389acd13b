// The integer LSTM step that follows the gate projections (TFLM's integer
// LSTM, no peephole, projection or layer norm), shared by the portable
// te_lstm_s8/_s16 (te_lstm.cc) and the Cortex-M te_arm_lstm_s8
// (arm/arm_lstm.cc), which differ only in how they compute the gates'
// matrix products: the gate activations, the cell and hidden updates and the
// state layout must be the same code for the two to stay bit-exact.
// Gates are int16 with scale 2^-12 before and 2^-15 after their activation;
// sigmoid and tanh interpolate in TFLite's 256-entry sigmoid table.
#ifndef TINYENGINE_KERNELS_LSTM_CELL_H_
#define TINYENGINE_KERNELS_LSTM_CELL_H_

#include <stdint.h>

#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace te_lstm {

enum { kInput = 0, kForget = 1, kCell = 2, kOutput = 3 };

inline int16_t saturate_s16(int32_t v) {
  return static_cast<int16_t>(te::clamp_i32(v, INT16_MIN, INT16_MAX));
}

// sigmoid of a Q3.12 value as Q0.15 (TFLM's int16 LOGISTIC, input multiplier 3).
inline int16_t sigmoid_q15(const uint16_t* table, int32_t x) {
  const int32_t d = te::scale_sigmoid_input(x, 0, 0);
  const int32_t a = d < 0 ? -d : d;
  uint32_t r = te::interpolate_sigmoid_table(table, a, 9,
                                             static_cast<uint32_t>(0x7FFF) << 10);
  r = d >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1;
  return static_cast<int16_t>(r >> 10);
}

// tanh of a value with 2^scale_power steps as Q0.15 (TFLM's int16 TANH).
inline int16_t tanh_q15(const uint16_t* table, int32_t x, int scale_power) {
  const int left = 15 + scale_power - 3;
  const int32_t d = left >= 0 ? te::scale_sigmoid_input(x, 0, left)
                              : te::scale_sigmoid_input(x, 3, -left);
  const int32_t a = d < 0 ? -d : d;
  const int32_t r = static_cast<int32_t>(te::interpolate_sigmoid_table(
      table, a, 8, static_cast<uint32_t>(0xFFFF) << 8));
  const int32_t v = d >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
  return static_cast<int16_t>(v >> 8);
}

// Gate g's activation of its Q3.12 pre-activation pre: the saturated sum of
// the input and recurrent projections, each rescaled and saturated.
inline int16_t gate_activation(const te_lstm_params* p, const uint16_t* table, int g, int32_t pre) {
  if (g != kCell) return sigmoid_q15(table, pre);
  // A cell gate activation other than tanh leaves it as it is (TFLM).
  return p->cell_gate_tanh ? tanh_q15(table, pre, -12) : static_cast<int16_t>(pre);
}

// The cells c and hidden values h of one sequence from this step's gates
// ([4, units]); the hidden values are also written to out.
template <typename T, int32_t kMin, int32_t kMax>
void update_cell_and_hidden(const te_lstm_params* p, const uint16_t* table, const int16_t* gates,
                            int16_t* c, T* h, T* out) {
  const int32_t units = p->units;
  for (int32_t r = 0; r < units; ++r) {
    int32_t cell = saturate_s16(te::multiply_by_quantized_multiplier(
        gates[kForget * units + r] * c[r], p->forget_multiplier, p->forget_shift));
    const int32_t update = saturate_s16(te::multiply_by_quantized_multiplier(
        gates[kInput * units + r] * gates[kCell * units + r], p->update_multiplier,
        p->update_shift));
    cell = saturate_s16(cell + update);
    if (p->cell_clip > 0) cell = te::clamp_i32(cell, -p->cell_clip, p->cell_clip);
    c[r] = static_cast<int16_t>(cell);
  }
  for (int32_t r = 0; r < units; ++r) {
    const int32_t squashed = tanh_q15(table, c[r], p->cell_scale_power);
    const int32_t v = p->hidden_zero_point +
                      te::multiply_by_quantized_multiplier(squashed * gates[kOutput * units + r],
                                                           p->hidden_multiplier, p->hidden_shift);
    h[r] = static_cast<T>(te::clamp_i32(v, kMin, kMax));
    out[r] = h[r];
  }
}

// The start of a sequence: cells 0, then the hidden values (of type T) at
// their zero point.
template <typename T>
void reset_state(const te_lstm_params* p, void* state) {
  int16_t* cells = static_cast<int16_t*>(state);
  T* hidden = reinterpret_cast<T*>(cells + p->batch * p->units);
  for (int32_t i = 0; i < p->batch * p->units; ++i) {
    cells[i] = 0;
    hidden[i] = static_cast<T>(p->hidden_zero_point);
  }
}

}  // namespace te_lstm

#endif  // TINYENGINE_KERNELS_LSTM_CELL_H_
