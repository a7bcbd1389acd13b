// RESIZE_NEAREST_NEIGHBOR of an int8 or int16 NHWC tensor.
//
// Source index rule of TFLite's reference kernel, evaluated in float32 at run
// time exactly as TFLM does (the result depends on float rounding, so it is
// not replaced by integer arithmetic):
//   scale  = align_corners && out > 1 ? (in - 1) / (float)(out - 1)
//                                     : in / (float)out
//   offset = half_pixel_centers ? 0.5f : 0
//   src    = min(align_corners ? round((dst + offset) * scale)
//                              : floor((dst + offset) * scale), in - 1)
//   src    = max(src, 0) when half_pixel_centers.
#include <math.h>
#include <string.h>

#include "tinyengine_kernels.h"

namespace {

inline int32_t nearest_source_index(int32_t dst, int32_t in_size,
                                    int32_t out_size, bool align_corners,
                                    bool half_pixel_centers) {
  const float scale =
      (align_corners && out_size > 1)
          ? static_cast<float>(in_size - 1) / static_cast<float>(out_size - 1)
          : static_cast<float>(in_size) / static_cast<float>(out_size);
  const float offset = half_pixel_centers ? 0.5f : 0.0f;
  const float pos = (static_cast<float>(dst) + offset) * scale;
  int32_t src = static_cast<int32_t>(align_corners ? roundf(pos) : floorf(pos));
  if (src > in_size - 1) src = in_size - 1;
  if (half_pixel_centers && src < 0) src = 0;
  return src;
}

template <typename T>
void resize_nearest(const te_resize_params* p, const T* input, T* output) {
  const bool align = p->align_corners != 0;
  const bool half = p->half_pixel_centers != 0;
  const int64_t col_stride = p->channels;
  const int64_t row_stride = static_cast<int64_t>(p->block_w) * col_stride;
  const int64_t batch_stride = static_cast<int64_t>(p->block_h) * row_stride;
  const size_t pixel_bytes = static_cast<size_t>(p->channels) * sizeof(T);

  T* out = output;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in_batch = input + b * batch_stride;
    for (int32_t y = p->window_y0; y < p->window_y0 + p->window_h; ++y) {
      const int32_t in_y =
          nearest_source_index(y, p->input_h, p->output_h, align, half) -
          p->block_y0;
      const T* in_row = in_batch + in_y * row_stride;
      for (int32_t x = p->window_x0; x < p->window_x0 + p->window_w; ++x) {
        const int32_t in_x =
            nearest_source_index(x, p->input_w, p->output_w, align, half) -
            p->block_x0;
        memcpy(out, in_row + in_x * col_stride, pixel_bytes);
        out += p->channels;
      }
    }
  }
}

}  // namespace

extern "C" void te_resize_nearest_s8(const te_resize_params* p,
                                     const int8_t* input, int8_t* output) {
  resize_nearest(p, input, output);
}

extern "C" void te_resize_nearest_s16(const te_resize_params* p,
                                      const int16_t* input, int16_t* output) {
  resize_nearest(p, input, output);
}

namespace {

// Source rows (or columns) of one output coordinate in TFLite's integer
// bilinear resize: positions in 1/1024 steps, the two neighbours and the
// weight of the second.
struct BilinearTap {
  int32_t lo, hi, weight;
};

inline BilinearTap bilinear_tap(int32_t dst, int32_t in_size, int32_t out_size,
                                bool align_corners, bool half_pixel_centers) {
  int32_t scale = (1024 * in_size + out_size / 2) / out_size;
  if (align_corners && out_size > 1) {
    scale = (1024 * (in_size - 1) + (out_size - 1) / 2) / (out_size - 1);
  }
  const int32_t pos =
      half_pixel_centers ? dst * scale + scale / 2 - 512 : dst * scale;
  BilinearTap t;
  t.lo = pos / 1024 > 0 ? pos / 1024 : 0;  // C division truncates
  t.hi = (pos + 1023) / 1024 < in_size - 1 ? (pos + 1023) / 1024 : in_size - 1;
  t.weight = pos - 1024 * t.lo;
  return t;
}

}  // namespace

extern "C" void te_resize_bilinear_s8(const te_resize_params* p,
                                      const int8_t* input, int8_t* output) {
  const bool align = p->align_corners != 0;
  const bool half = p->half_pixel_centers != 0;
  const int32_t ch = p->channels;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * p->input_h * p->input_w * ch;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      const BilinearTap ty = bilinear_tap(oy, p->input_h, p->output_h, align, half);
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const BilinearTap tx = bilinear_tap(ox, p->input_w, p->output_w, align, half);
        const int8_t* r0 = in_b + ty.lo * p->input_w * ch;
        const int8_t* r1 = in_b + ty.hi * p->input_w * ch;
        const int64_t w00 = static_cast<int64_t>(1024 - ty.weight) * (1024 - tx.weight);
        const int64_t w10 = static_cast<int64_t>(ty.weight) * (1024 - tx.weight);
        const int64_t w01 = static_cast<int64_t>(1024 - ty.weight) * tx.weight;
        const int64_t w11 = static_cast<int64_t>(ty.weight) * tx.weight;
        for (int32_t c = 0; c < ch; ++c) {
          const int64_t sum = r0[tx.lo * ch + c] * w00 + r1[tx.lo * ch + c] * w10 +
                              r0[tx.hi * ch + c] * w01 + r1[tx.hi * ch + c] * w11;
          // Divide by 2^20 rounding half away from zero (C division truncates).
          const int64_t rounded = (sum + (sum > 0 ? (1 << 19) : -(1 << 19))) / (1 << 20);
          *output++ = static_cast<int8_t>(rounded);
        }
      }
    }
  }
}
