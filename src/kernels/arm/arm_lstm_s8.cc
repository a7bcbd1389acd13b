// UNIDIRECTIONAL_SEQUENCE_LSTM (int8 activations, int8 weights, int16
// cells) for Cortex-M cores with the DSP extension.  Results equal
// te_lstm_s8's bit for bit.
//
// Only the gate projections change: the four gates' input and recurrent
// matrix products, which carry all the MACs, run four gate rows at a time on
// SMLAD (te_arm::dot4_rows, each input word unpacked once for four rows).
// Their int32 sums equal the portable kernel's exactly: two's complement
// sums do not depend on the order of their terms, and the zero points are
// folded into the sums' initial values at code-generation time
// (bias - input_zero_point * sum(wx) for the input projection,
// -hidden_zero_point * sum(wh) for the recurrent one).  The rescaling, gate
// activations, cell and hidden updates and the state are lstm_cell.h's, the
// same code as te_lstm_s8's.
//
// Packed weights (tinyengine_kernels.h at te_arm_lstm_s8): the 4 * units
// gate rows (gate g, unit r is row g * units + r) in blocks of four rows,
// first the input projection's blocks, then the recurrent projection's.
#include "arm_dsp.h"
#include "fixed_point.h"
#include "lstm_cell.h"
#include "tinyengine_kernels.h"

namespace {

// Bytes of one block of four rows of `depth` inputs.
inline int32_t block_bytes(int32_t depth) { return 16 + 4 * ((depth + 3) & ~3); }

// Four rows' sums over x (depth values) from the block at blk.
inline void block_sums(const int8_t* blk, const int8_t* x, int32_t depth, int32_t acc[4]) {
  memcpy(acc, blk, 16);
  const int8_t* w = blk + 16;
  te_arm::dot4_rows(x, w, depth >> 2, depth & 3, acc);
}

}  // namespace

extern "C" void te_arm_lstm_s8(const te_lstm_params* p, const int8_t* input, const uint16_t* table,
                               const int8_t* packed, void* state, int8_t* output, void* scratch) {
  const int32_t units = p->units, in = p->input_size;
  const int32_t in_block = block_bytes(in), h_block = block_bytes(units);
  const int8_t* recurrent = packed + units * in_block;  // 4 * units rows = units blocks
  int16_t* cells = static_cast<int16_t*>(state);        // [batch, units]
  int8_t* hidden = reinterpret_cast<int8_t*>(cells + p->batch * units);
  int16_t* gates = static_cast<int16_t*>(scratch);      // [4, units]
  for (int32_t b = 0; b < p->batch; ++b) {
    int16_t* c = cells + b * units;
    int8_t* h = hidden + b * units;
    for (int32_t t = 0; t < p->time; ++t) {
      const int32_t row = p->time_major ? t * p->batch + b : b * p->time + t;
      const int8_t* x = input + row * in;
      for (int32_t j = 0; j < units; ++j) {
        int32_t acc_x[4], acc_h[4];
        block_sums(packed + j * in_block, x, in, acc_x);
        block_sums(recurrent + j * h_block, h, units, acc_h);
        for (int32_t k = 0; k < 4; ++k) {
          const int32_t gate_row = 4 * j + k;
          const int g = gate_row / units;
          const int32_t from_input = te_lstm::saturate_s16(
              te::multiply_by_quantized_multiplier(acc_x[k], p->input_multiplier[g], p->input_shift[g]));
          const int32_t from_hidden = te_lstm::saturate_s16(
              te::multiply_by_quantized_multiplier(acc_h[k], p->recurrent_multiplier[g], p->recurrent_shift[g]));
          gates[gate_row] = te_lstm::gate_activation(p, table, g, te_lstm::saturate_s16(from_input + from_hidden));
        }
      }
      te_lstm::update_cell_and_hidden<int8_t, INT8_MIN, INT8_MAX>(p, table, gates, c, h, output + row * units);
    }
  }
}

extern "C" int32_t te_arm_lstm_s8_get_buffer_size(const te_lstm_params* p) { return 4 * p->units * 2; }

extern "C" int32_t te_arm_lstm_s8_get_state_size(const te_lstm_params* p) { return p->batch * p->units * 3; }

extern "C" void te_arm_lstm_s8_reset_state(const te_lstm_params* p, void* state) {
  te_lstm::reset_state<int8_t>(p, state);
}
