// RESIZE_NEAREST_NEIGHBOR of an int8 NHWC tensor.
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

}  // namespace

extern "C" void te_resize_nearest_s8(const te_resize_params* p,
                                     const int8_t* input, int8_t* output) {
  const bool align = p->align_corners != 0;
  const bool half = p->half_pixel_centers != 0;
  const int64_t col_stride = p->channels;
  const int64_t row_stride = static_cast<int64_t>(p->block_w) * col_stride;
  const int64_t batch_stride = static_cast<int64_t>(p->block_h) * row_stride;
  const size_t pixel_bytes = static_cast<size_t>(p->channels);

  int8_t* out = output;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_batch = input + b * batch_stride;
    for (int32_t y = p->window_y0; y < p->window_y0 + p->window_h; ++y) {
      const int32_t in_y =
          nearest_source_index(y, p->input_h, p->output_h, align, half) -
          p->block_y0;
      const int8_t* in_row = in_batch + in_y * row_stride;
      for (int32_t x = p->window_x0; x < p->window_x0 + p->window_w; ++x) {
        const int32_t in_x =
            nearest_source_index(x, p->input_w, p->output_w, align, half) -
            p->block_x0;
        memcpy(out, in_row + in_x * col_stride, pixel_bytes);
        out += pixel_bytes;
      }
    }
  }
}
