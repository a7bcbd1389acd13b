// BATCH_MATMUL of two int8 activations for Cortex-M cores with the DSP
// extension.  Results equal te_batch_matmul_s8's bit for bit.
//
// Both operands are activations, so nothing can be packed ahead of time:
// per batch the right operand's columns, then each row of the left one, are
// gathered through their strides (any adj_x / adj_y / broadcast) into scratch
// as contiguous int16 with their offsets added (|v + offset| <= 255), and each
// output is then an SMLAD dot product of two int16 vectors, two columns per
// row load.  The int32 sums equal the portable ones exactly (the same terms,
// and two's complement sums do not depend on their order); the rescaling is
// fixed_point.h's multiply_by_quantized_multiplier, the portable kernel's.
#include "arm_dsp.h"
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

inline int32_t depth2(const te_batch_matmul_params* p) { return (p->depth + 1) & ~1; }

// n values from src (step elements apart) plus offset, as int16, zero-padded to k2.
inline void gather(const int8_t* src, int32_t step, int32_t n, int32_t k2, int32_t offset, int16_t* dst) {
  for (int32_t k = 0; k < n; ++k, src += step) dst[k] = static_cast<int16_t>(*src + offset);
  if (n < k2) dst[n] = 0;
}

inline int8_t finish(const te_batch_matmul_params* p, int32_t acc) {
  const int32_t v = te::multiply_by_quantized_multiplier(acc, p->output_multiplier, p->output_shift) +
                    p->output_offset;
  return static_cast<int8_t>(te::clamp_i32(v, -128, 127));
}

void matmul(const te_batch_matmul_params* p, const int8_t* l, const int8_t* r, int8_t* out, int16_t* cols,
            int16_t* row) {
  const int32_t k2 = depth2(p), pairs = k2 >> 1;
  for (int32_t j = 0; j < p->cols; ++j) {
    gather(r + j * p->rhs_col_stride, p->rhs_depth_stride, p->depth, k2, p->rhs_offset, cols + j * k2);
  }
  for (int32_t i = 0; i < p->rows; ++i) {
    gather(l + i * p->lhs_row_stride, p->lhs_depth_stride, p->depth, k2, p->lhs_offset, row);
    int32_t j = 0;
    for (; j + 1 < p->cols; j += 2) {
      const int16_t* c0 = cols + j * k2;
      const int16_t* c1 = c0 + k2;
      int32_t a0 = 0, a1 = 0;
      for (int32_t k = 0; k < pairs; ++k) {
        const int32_t x = static_cast<int32_t>(te_arm::load32(row + 2 * k));
        a0 = te_arm::smlad(x, static_cast<int32_t>(te_arm::load32(c0 + 2 * k)), a0);
        a1 = te_arm::smlad(x, static_cast<int32_t>(te_arm::load32(c1 + 2 * k)), a1);
      }
      *out++ = finish(p, a0);
      *out++ = finish(p, a1);
    }
    if (j < p->cols) {
      const int16_t* c0 = cols + j * k2;
      int32_t a0 = 0;
      for (int32_t k = 0; k < pairs; ++k) {
        a0 = te_arm::smlad(static_cast<int32_t>(te_arm::load32(row + 2 * k)),
                           static_cast<int32_t>(te_arm::load32(c0 + 2 * k)), a0);
      }
      *out++ = finish(p, a0);
    }
  }
}

}  // namespace

extern "C" void te_arm_batch_matmul_s8(const te_batch_matmul_params* p, const int8_t* lhs, const int8_t* rhs,
                                       int8_t* output, void* scratch) {
  int16_t* cols = static_cast<int16_t*>(scratch);  // [cols, k2]
  int16_t* row = cols + p->cols * depth2(p);        // [k2]
  const int32_t* d = p->batch_dims;
  const int32_t per_batch = p->rows * p->cols;
  for (int32_t b0 = 0; b0 < d[0]; ++b0)
    for (int32_t b1 = 0; b1 < d[1]; ++b1)
      for (int32_t b2 = 0; b2 < d[2]; ++b2)
        for (int32_t b3 = 0; b3 < d[3]; ++b3) {
          const int8_t* l = lhs + b0 * p->lhs_batch_strides[0] + b1 * p->lhs_batch_strides[1] +
                            b2 * p->lhs_batch_strides[2] + b3 * p->lhs_batch_strides[3];
          const int8_t* r = rhs + b0 * p->rhs_batch_strides[0] + b1 * p->rhs_batch_strides[1] +
                            b2 * p->rhs_batch_strides[2] + b3 * p->rhs_batch_strides[3];
          matmul(p, l, r, output, cols, row);
          output += per_batch;
        }
}

extern "C" int32_t te_arm_batch_matmul_s8_get_buffer_size(const te_batch_matmul_params* p) {
  return 2 * (p->cols + 1) * depth2(p);
}
