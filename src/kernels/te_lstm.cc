// UNIDIRECTIONAL_SEQUENCE_LSTM with int8 weights and an int16 cell state
// (TFLM's integer LSTM), TFLM-exact: int8 input, output and hidden state with
// int32 sums, or int16 ones (16x8) with int64 sums and bias.
// Gates are int16 with scale 2^-12 before and 2^-15 after their activation;
// sigmoid and tanh interpolate in TFLite's 256-entry sigmoid table.  The
// hidden and cell states persist between invocations.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

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

// One gate's pre-activation for unit r: the input and recurrent projections,
// each requantized to Q3.12 and saturated, then added with saturation.
template <typename T, typename Acc>
inline int32_t gate_input(const te_lstm_params* p, int g, int32_t r,
                          const T* x, const T* h,
                          const int8_t* input_weights,
                          const int8_t* recurrent_weights,
                          const Acc* bias) {
  const int32_t in = p->input_size;
  const int32_t units = p->units;
  const int8_t* wx = input_weights + (g * units + r) * in;
  const int8_t* wh = recurrent_weights + (g * units + r) * units;
  Acc acc = 0;
  for (int32_t d = 0; d < in; ++d) acc += wx[d] * (x[d] - p->input_zero_point);
  acc += bias[g * units + r];
  const int32_t from_input = saturate_s16(te::rescale_accumulator(
      acc, p->input_multiplier[g], p->input_shift[g]));
  acc = 0;
  for (int32_t d = 0; d < units; ++d) acc += wh[d] * (h[d] - p->hidden_zero_point);
  const int32_t from_hidden = saturate_s16(te::rescale_accumulator(
      acc, p->recurrent_multiplier[g], p->recurrent_shift[g]));
  return saturate_s16(from_input + from_hidden);
}

template <typename T, typename Acc, int32_t kMin, int32_t kMax>
void lstm(const te_lstm_params* p, const T* input, const int8_t* input_weights,
          const int8_t* recurrent_weights, const Acc* bias,
          const uint16_t* table, void* state, T* output, void* scratch) {
  enum { kInput = 0, kForget = 1, kCell = 2, kOutput = 3 };
  const int32_t units = p->units;
  int16_t* cells = static_cast<int16_t*>(state);           // [batch, units]
  T* hidden = reinterpret_cast<T*>(cells + p->batch * units);
  int16_t* gates = static_cast<int16_t*>(scratch);         // [4, units]
  for (int32_t b = 0; b < p->batch; ++b) {
    int16_t* c = cells + b * units;
    T* h = hidden + b * units;
    for (int32_t t = 0; t < p->time; ++t) {
      // Rows of [time, batch, ...] or [batch, time, ...]; every row is its own
      // recurrence, so the two layouts differ only in where they sit.
      const int32_t row = p->time_major ? t * p->batch + b : b * p->time + t;
      const T* x = input + row * p->input_size;
      for (int g = 0; g < 4; ++g) {
        for (int32_t r = 0; r < units; ++r) {
          const int32_t pre = gate_input(p, g, r, x, h, input_weights,
                                         recurrent_weights, bias);
          int16_t v;
          if (g != kCell) {
            v = sigmoid_q15(table, pre);
          } else {
            // A cell gate activation other than tanh leaves it as it is (TFLM).
            v = p->cell_gate_tanh ? tanh_q15(table, pre, -12)
                                  : static_cast<int16_t>(pre);
          }
          gates[g * units + r] = v;
        }
      }
      for (int32_t r = 0; r < units; ++r) {
        int32_t cell = saturate_s16(te::multiply_by_quantized_multiplier(
            gates[kForget * units + r] * c[r], p->forget_multiplier,
            p->forget_shift));
        const int32_t update = saturate_s16(te::multiply_by_quantized_multiplier(
            gates[kInput * units + r] * gates[kCell * units + r],
            p->update_multiplier, p->update_shift));
        cell = saturate_s16(cell + update);
        if (p->cell_clip > 0) cell = te::clamp_i32(cell, -p->cell_clip, p->cell_clip);
        c[r] = static_cast<int16_t>(cell);
      }
      T* out = output + row * units;
      for (int32_t r = 0; r < units; ++r) {
        const int32_t squashed = tanh_q15(table, c[r], p->cell_scale_power);
        const int32_t v = p->hidden_zero_point +
                          te::multiply_by_quantized_multiplier(
                              squashed * gates[kOutput * units + r],
                              p->hidden_multiplier, p->hidden_shift);
        h[r] = static_cast<T>(te::clamp_i32(v, kMin, kMax));
        out[r] = h[r];
      }
    }
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

}  // namespace

extern "C" void te_lstm_s8(const te_lstm_params* p, const int8_t* input,
                           const int8_t* input_weights,
                           const int8_t* recurrent_weights,
                           const int32_t* bias, const uint16_t* table,
                           void* state, int8_t* output, void* scratch) {
  lstm<int8_t, int32_t, INT8_MIN, INT8_MAX>(p, input, input_weights,
                                            recurrent_weights, bias, table,
                                            state, output, scratch);
}

extern "C" int32_t te_lstm_s8_get_buffer_size(const te_lstm_params* p) {
  return 4 * p->units * 2;
}

extern "C" int32_t te_lstm_s8_get_state_size(const te_lstm_params* p) {
  return p->batch * p->units * 3;  // int16 cells, then int8 hidden values
}

extern "C" void te_lstm_s8_reset_state(const te_lstm_params* p, void* state) {
  reset_state<int8_t>(p, state);
}

extern "C" void te_lstm_s16(const te_lstm_params* p, const int16_t* input,
                            const int8_t* input_weights,
                            const int8_t* recurrent_weights,
                            const int64_t* bias, const uint16_t* table,
                            void* state, int16_t* output, void* scratch) {
  lstm<int16_t, int64_t, INT16_MIN, INT16_MAX>(p, input, input_weights,
                                               recurrent_weights, bias, table,
                                               state, output, scratch);
}

extern "C" int32_t te_lstm_s16_get_buffer_size(const te_lstm_params* p) {
  return 4 * p->units * 2;
}

extern "C" int32_t te_lstm_s16_get_state_size(const te_lstm_params* p) {
  return p->batch * p->units * 4;  // int16 cells, then int16 hidden values
}

extern "C" void te_lstm_s16_reset_state(const te_lstm_params* p, void* state) {
  reset_state<int16_t>(p, state);
}
