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
//
// te_arm_lstm_s16 (16x8: int16 input and hidden state, int64 bias, zero
// points 0) does the same with the rows widened to int16 and SMLALD (two
// gate rows per input pair, 64-bit sums as te_lstm_s16's: exact).
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

// 16x8: acc0 / acc1 += x . w0 / w1 over n int16 values (rows k2 long,
// zero-padded); the last, unpaired value of an odd n is taken alone so that
// x is not read past its end.
inline void rows_s16(const int16_t* x, const int16_t* w0, const int16_t* w1, int32_t n, int64_t& acc0,
                     int64_t& acc1) {
  te_arm::dot2_s16(x, w0, w1, n >> 1, acc0, acc1);
  if (n & 1) {
    acc0 += static_cast<int64_t>(x[n - 1]) * w0[n - 1];
    acc1 += static_cast<int64_t>(x[n - 1]) * w1[n - 1];
  }
}

}  // namespace

extern "C" void te_arm_lstm_s16(const te_lstm_params* p, const int16_t* input, const uint16_t* table,
                                const int8_t* packed, void* state, int16_t* output, void* scratch) {
  const int32_t units = p->units, in = p->input_size, rows = 4 * units;
  const int32_t kx = (in + 1) & ~1, kh = (units + 1) & ~1;
  const int16_t* wx = reinterpret_cast<const int16_t*>(packed);  // [rows, kx]
  const int16_t* wh = wx + rows * kx;                             // [rows, kh]
  const int8_t* bias = reinterpret_cast<const int8_t*>(wh + rows * kh);  // int64 [rows]
  int16_t* cells = static_cast<int16_t*>(state);
  int16_t* hidden = cells + p->batch * units;
  int16_t* gates = static_cast<int16_t*>(scratch);
  for (int32_t b = 0; b < p->batch; ++b) {
    int16_t* c = cells + b * units;
    int16_t* h = hidden + b * units;
    for (int32_t t = 0; t < p->time; ++t) {
      const int32_t row = p->time_major ? t * p->batch + b : b * p->time + t;
      const int16_t* x = input + row * in;
      // rows is a multiple of 4: gate rows two at a time
      for (int32_t r = 0; r < rows; r += 2) {
        int64_t ax[2], ah[2] = {0, 0};
        memcpy(ax, bias + 8 * r, 16);
        rows_s16(x, wx + r * kx, wx + (r + 1) * kx, in, ax[0], ax[1]);
        rows_s16(h, wh + r * kh, wh + (r + 1) * kh, units, ah[0], ah[1]);
        for (int32_t k = 0; k < 2; ++k) {
          const int g = (r + k) / units;
          const int32_t from_input = te_lstm::saturate_s16(
              te::rescale_accumulator(ax[k], p->input_multiplier[g], p->input_shift[g]));
          const int32_t from_hidden = te_lstm::saturate_s16(
              te::rescale_accumulator(ah[k], p->recurrent_multiplier[g], p->recurrent_shift[g]));
          gates[r + k] = te_lstm::gate_activation(p, table, g, te_lstm::saturate_s16(from_input + from_hidden));
        }
      }
      te_lstm::update_cell_and_hidden<int16_t, INT16_MIN, INT16_MAX>(p, table, gates, c, h, output + row * units);
    }
  }
}

extern "C" int32_t te_arm_lstm_s16_get_buffer_size(const te_lstm_params* p) { return 4 * p->units * 2; }

extern "C" int32_t te_arm_lstm_s16_get_state_size(const te_lstm_params* p) { return p->batch * p->units * 4; }

extern "C" void te_arm_lstm_s16_reset_state(const te_lstm_params* p, void* state) {
  te_lstm::reset_state<int16_t>(p, state);
}

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
