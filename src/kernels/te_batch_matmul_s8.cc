// BATCH_MATMUL of two int8 activations, TFLM-exact (an int32 sum per output,
// one per-tensor requantization).
#include "fixed_point.h"
#include "tinyengine_kernels.h"

extern "C" void te_batch_matmul_s8(const te_batch_matmul_params* p,
                                   const int8_t* lhs, const int8_t* rhs,
                                   int8_t* output) {
  const int32_t* d = p->batch_dims;
  for (int32_t b0 = 0; b0 < d[0]; ++b0)
    for (int32_t b1 = 0; b1 < d[1]; ++b1)
      for (int32_t b2 = 0; b2 < d[2]; ++b2)
        for (int32_t b3 = 0; b3 < d[3]; ++b3) {
          const int8_t* l = lhs + b0 * p->lhs_batch_strides[0] +
                            b1 * p->lhs_batch_strides[1] +
                            b2 * p->lhs_batch_strides[2] +
                            b3 * p->lhs_batch_strides[3];
          const int8_t* r = rhs + b0 * p->rhs_batch_strides[0] +
                            b1 * p->rhs_batch_strides[1] +
                            b2 * p->rhs_batch_strides[2] +
                            b3 * p->rhs_batch_strides[3];
          for (int32_t i = 0; i < p->rows; ++i) {
            const int8_t* row = l + i * p->lhs_row_stride;
            for (int32_t j = 0; j < p->cols; ++j) {
              const int8_t* col = r + j * p->rhs_col_stride;
              int32_t acc = 0;
              for (int32_t k = 0; k < p->depth; ++k) {
                acc += (row[k * p->lhs_depth_stride] + p->lhs_offset) *
                       (col[k * p->rhs_depth_stride] + p->rhs_offset);
              }
              const int32_t out = te::multiply_by_quantized_multiplier(
                                      acc, p->output_multiplier,
                                      p->output_shift) +
                                  p->output_offset;
              *output++ = static_cast<int8_t>(te::clamp_i32(out, -128, 127));
            }
          }
        }
}
