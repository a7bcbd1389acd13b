// BATCH_MATMUL of two activations, TFLM-exact: int8 operands sum in int32 and
// requantize with the 32-bit rounding; int16 operands (16x8 models, zero
// points 0) sum in int64 and requantize with the 64-bit form, as TFLM's
// reference BatchMatMul<int16_t, int64_t>.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

template <typename T, typename Acc>
void batch_matmul(const te_batch_matmul_params* p, const T* lhs, const T* rhs,
                  T* output, int32_t lo, int32_t hi) {
  const int32_t* d = p->batch_dims;
  for (int32_t b0 = 0; b0 < d[0]; ++b0)
    for (int32_t b1 = 0; b1 < d[1]; ++b1)
      for (int32_t b2 = 0; b2 < d[2]; ++b2)
        for (int32_t b3 = 0; b3 < d[3]; ++b3) {
          const T* l = lhs + b0 * p->lhs_batch_strides[0] +
                       b1 * p->lhs_batch_strides[1] +
                       b2 * p->lhs_batch_strides[2] +
                       b3 * p->lhs_batch_strides[3];
          const T* r = rhs + b0 * p->rhs_batch_strides[0] +
                       b1 * p->rhs_batch_strides[1] +
                       b2 * p->rhs_batch_strides[2] +
                       b3 * p->rhs_batch_strides[3];
          for (int32_t i = 0; i < p->rows; ++i) {
            const T* row = l + i * p->lhs_row_stride;
            for (int32_t j = 0; j < p->cols; ++j) {
              const T* col = r + j * p->rhs_col_stride;
              Acc acc = 0;
              for (int32_t k = 0; k < p->depth; ++k) {
                acc += static_cast<Acc>(row[k * p->lhs_depth_stride] +
                                        p->lhs_offset) *
                       static_cast<Acc>(col[k * p->rhs_depth_stride] +
                                        p->rhs_offset);
              }
              const int32_t out = te::rescale_accumulator(
                                      acc, p->output_multiplier,
                                      p->output_shift) +
                                  p->output_offset;
              *output++ = static_cast<T>(te::clamp_i32(out, lo, hi));
            }
          }
        }
}

}  // namespace

extern "C" void te_batch_matmul_s8(const te_batch_matmul_params* p,
                                   const int8_t* lhs, const int8_t* rhs,
                                   int8_t* output) {
  batch_matmul<int8_t, int32_t>(p, lhs, rhs, output, INT8_MIN, INT8_MAX);
}

extern "C" void te_batch_matmul_s16(const te_batch_matmul_params* p,
                                    const int16_t* lhs, const int16_t* rhs,
                                    int16_t* output) {
  batch_matmul<int16_t, int64_t>(p, lhs, rhs, output, INT16_MIN, INT16_MAX);
}
