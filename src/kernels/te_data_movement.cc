// Portable data movement: PAD, MIRROR_PAD, TRANSPOSE, CONCATENATION, strided
// slices, GATHER, 2-D copies of int8 values; PAD, TRANSPOSE, CONCATENATION
// and strided slices of int16 values too (the same copies, wider elements).
#include <string.h>

#include "tinyengine_kernels.h"

namespace {

template <typename T>
void pad(const te_pad_params* p, const T* input, T* output) {
  const int32_t* in = p->input_dims;
  int32_t od[4];
  for (int i = 0; i < 4; ++i) od[i] = p->before[i] + in[i] + p->after[i];
  const T fill = static_cast<T>(p->pad_value);
  for (int32_t i0 = 0; i0 < od[0]; ++i0) {
    const int32_t s0 = i0 - p->before[0];
    for (int32_t i1 = 0; i1 < od[1]; ++i1) {
      const int32_t s1 = i1 - p->before[1];
      for (int32_t i2 = 0; i2 < od[2]; ++i2) {
        const int32_t s2 = i2 - p->before[2];
        const bool row_inside = s0 >= 0 && s0 < in[0] && s1 >= 0 &&
                                s1 < in[1] && s2 >= 0 && s2 < in[2];
        const T* src = input + ((s0 * in[1] + s1) * in[2] + s2) * in[3];
        for (int32_t i3 = 0; i3 < od[3]; ++i3) {
          const int32_t s3 = i3 - p->before[3];
          *output++ = (row_inside && s3 >= 0 && s3 < in[3]) ? src[s3] : fill;
        }
      }
    }
  }
}

template <typename T>
void transpose(const te_transpose_params* p, const T* input, T* output) {
  // Pad to 6-D so one loop nest serves every rank.
  int32_t in_dims[6], in_strides[6], out_dims[6], src_stride[6];
  const int32_t lead = 6 - p->rank;
  for (int i = 0; i < 6; ++i) in_dims[i] = 1;
  for (int i = 0; i < p->rank; ++i) in_dims[lead + i] = p->input_dims[i];
  in_strides[5] = 1;
  for (int i = 4; i >= 0; --i) in_strides[i] = in_strides[i + 1] * in_dims[i + 1];
  for (int i = 0; i < 6; ++i) {
    const int src = i < lead ? i : lead + p->perm[i - lead];
    out_dims[i] = in_dims[src];
    src_stride[i] = in_strides[src];
  }
  for (int32_t a = 0; a < out_dims[0]; ++a)
    for (int32_t b = 0; b < out_dims[1]; ++b)
      for (int32_t c = 0; c < out_dims[2]; ++c)
        for (int32_t d = 0; d < out_dims[3]; ++d)
          for (int32_t e = 0; e < out_dims[4]; ++e) {
            const int32_t base = a * src_stride[0] + b * src_stride[1] +
                                 c * src_stride[2] + d * src_stride[3] +
                                 e * src_stride[4];
            for (int32_t f = 0; f < out_dims[5]; ++f) {
              *output++ = input[base + f * src_stride[5]];
            }
          }
}

template <typename T>
void concat(const te_concat_params* p, const T* const* inputs, T* output) {
  const int32_t* axis_sizes = p->axis_sizes;
  const int32_t n_inputs = p->n_inputs;
  const int32_t outer = p->outer;
  const int32_t inner = p->inner;
  for (int32_t o = 0; o < outer; ++o) {
    for (int32_t i = 0; i < n_inputs; ++i) {
      const int32_t chunk = axis_sizes[i] * inner;
      const T* src = inputs[i] + o * chunk;
      for (int32_t k = 0; k < chunk; ++k) *output++ = src[k];
    }
  }
}

}  // namespace

extern "C" void te_copy_2d_s8(const te_copy_2d_params* p, const int8_t* src,
                              int8_t* dst) {
  const int32_t rows = p->rows;
  const int32_t row_bytes = p->row_bytes;
  const int32_t src_stride = p->src_stride;
  const int32_t dst_stride = p->dst_stride;
  // Rows of a patch window are short; the C library's memcpy moves them a
  // word at a time (source and destination never overlap here).
  for (int32_t r = 0; r < rows; ++r) {
    memcpy(dst + r * dst_stride, src + r * src_stride, static_cast<size_t>(row_bytes));
  }
}

namespace {

template <typename T>
void strided_slice(const te_strided_slice_params* p, const T* input,
                   T* output) {
  // Pad to 6-D (leading 1s) so one loop nest serves every rank; the innermost
  // dimension with step 1 is one memcpy per row.
  int32_t in_dims[6], begin[6], steps[6], out_dims[6], in_strides[6];
  const int32_t lead = 6 - p->rank;
  for (int i = 0; i < 6; ++i) {
    const bool real = i >= lead;
    in_dims[i] = real ? p->input_dims[i - lead] : 1;
    begin[i] = real ? p->begin[i - lead] : 0;
    steps[i] = real ? p->strides[i - lead] : 1;
    out_dims[i] = real ? p->output_dims[i - lead] : 1;
  }
  in_strides[5] = 1;
  for (int i = 4; i >= 0; --i) in_strides[i] = in_strides[i + 1] * in_dims[i + 1];
  int32_t step[6];
  int32_t base = 0;
  for (int i = 0; i < 6; ++i) {
    step[i] = steps[i] * in_strides[i];
    base += begin[i] * in_strides[i];
  }
  const bool contiguous_rows = steps[5] == 1;
  for (int32_t a = 0; a < out_dims[0]; ++a)
    for (int32_t b = 0; b < out_dims[1]; ++b)
      for (int32_t c = 0; c < out_dims[2]; ++c)
        for (int32_t d = 0; d < out_dims[3]; ++d)
          for (int32_t e = 0; e < out_dims[4]; ++e) {
            const T* row = input + base + a * step[0] + b * step[1] +
                           c * step[2] + d * step[3] + e * step[4];
            if (contiguous_rows) {
              memcpy(output, row, sizeof(T) * static_cast<size_t>(out_dims[5]));
              output += out_dims[5];
            } else {
              for (int32_t f = 0; f < out_dims[5]; ++f) *output++ = row[f * step[5]];
            }
          }
}

}  // namespace

extern "C" void te_pad_s8(const te_pad_params* p, const int8_t* input,
                          int8_t* output) {
  pad(p, input, output);
}

extern "C" void te_pad_s16(const te_pad_params* p, const int16_t* input,
                           int16_t* output) {
  pad(p, input, output);
}

extern "C" void te_transpose_s8(const te_transpose_params* p,
                                const int8_t* input, int8_t* output) {
  transpose(p, input, output);
}

extern "C" void te_transpose_s16(const te_transpose_params* p,
                                 const int16_t* input, int16_t* output) {
  transpose(p, input, output);
}

extern "C" void te_concat_s8(const te_concat_params* p,
                             const int8_t* const* inputs, int8_t* output) {
  concat(p, inputs, output);
}

extern "C" void te_concat_s16(const te_concat_params* p,
                              const int16_t* const* inputs, int16_t* output) {
  concat(p, inputs, output);
}

extern "C" void te_strided_slice_s8(const te_strided_slice_params* p,
                                    const int8_t* input, int8_t* output) {
  strided_slice(p, input, output);
}

extern "C" void te_strided_slice_s16(const te_strided_slice_params* p,
                                     const int16_t* input, int16_t* output) {
  strided_slice(p, input, output);
}

extern "C" void te_gather_s8(const te_gather_params* p, const int8_t* input,
                             const int32_t* indices, int8_t* output) {
  const size_t inner = static_cast<size_t>(p->inner);
  for (int32_t o = 0; o < p->outer; ++o) {
    const int8_t* block = input + static_cast<int64_t>(o) * p->axis_size * p->inner;
    for (int32_t k = 0; k < p->count; ++k) {
      memcpy(output, block + static_cast<int64_t>(indices[k]) * p->inner, inner);
      output += inner;
    }
  }
}

namespace {

// The input index mirror padding shows at output index o of one dimension.
inline int32_t mirror_index(int32_t o, int32_t before, int32_t size,
                            int32_t offset) {
  int32_t i = o - before;
  if (i < 0) return -i - 1 + offset;                // mirrored before the start
  if (i >= size) return 2 * size - i - 1 - offset;  // mirrored past the end
  return i;
}

}  // namespace

extern "C" void te_mirror_pad_s8(const te_mirror_pad_params* p,
                                 const int8_t* input, int8_t* output) {
  const int32_t* in = p->input_dims;
  int32_t od[4];
  for (int i = 0; i < 4; ++i) od[i] = p->before[i] + in[i] + p->after[i];
  for (int32_t a = 0; a < od[0]; ++a) {
    const int32_t sa = mirror_index(a, p->before[0], in[0], p->offset);
    for (int32_t b = 0; b < od[1]; ++b) {
      const int32_t sb = mirror_index(b, p->before[1], in[1], p->offset);
      for (int32_t c = 0; c < od[2]; ++c) {
        const int32_t sc = mirror_index(c, p->before[2], in[2], p->offset);
        const int8_t* row = input + ((sa * in[1] + sb) * in[2] + sc) * in[3];
        for (int32_t d = 0; d < od[3]; ++d) {
          *output++ = row[mirror_index(d, p->before[3], in[3], p->offset)];
        }
      }
    }
  }
}

namespace {

template <typename T>
void fill(const te_fill_params* p, T* output) {
  const T value = static_cast<T>(p->value);
  for (int32_t i = 0; i < p->size; ++i) output[i] = value;
}

}  // namespace

extern "C" void te_fill_s8(const te_fill_params* p, int8_t* output) {
  fill(p, output);
}

extern "C" void te_fill_s16(const te_fill_params* p, int16_t* output) {
  fill(p, output);
}

extern "C" void te_gather_nd_s8(const te_gather_nd_params* p,
                                const int8_t* input, const int32_t* indices,
                                int8_t* output) {
  for (int32_t n = 0; n < p->count; ++n) {
    const int32_t* index = indices + n * p->depth;
    int32_t offset = 0;
    for (int32_t k = 0; k < p->depth; ++k) offset += index[k] * p->strides[k];
    memcpy(output + n * p->slice_size, input + offset,
           static_cast<size_t>(p->slice_size));
  }
}
