// UNIDIRECTIONAL_SEQUENCE_LSTM with int8 weights and an int16 cell state
// (TFLM's integer LSTM), TFLM-exact: int8 input, output and hidden state with
// int32 sums, or int16 ones (16x8) with int64 sums and bias.
// The gate activations and the cell and hidden updates are lstm_cell.h's
// (shared with the Cortex-M te_arm_lstm_s8).  The hidden and cell states
// persist between invocations.
#include "fixed_point.h"
#include "lstm_cell.h"
#include "tinyengine_kernels.h"

namespace {

using te_lstm::saturate_s16;

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
          gates[g * units + r] = te_lstm::gate_activation(p, table, g, pre);
        }
      }
      te_lstm::update_cell_and_hidden<T, kMin, kMax>(p, table, gates, c, h,
                                                     output + row * units);
    }
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
  te_lstm::reset_state<int8_t>(p, state);
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
  te_lstm::reset_state<int16_t>(p, state);
}
