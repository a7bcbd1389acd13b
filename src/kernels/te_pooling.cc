// Portable average and max pooling of int8 and int16 values, TFLM-exact.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

// Window bounds clipped to the input, shared by both pools.
struct Window {
  int32_t y0, y1, x0, x1;
};

inline Window clip_window(const te_pool_params* p, int32_t oy, int32_t ox) {
  const int32_t iy = oy * p->stride_h - p->pad_top;
  const int32_t ix = ox * p->stride_w - p->pad_left;
  Window w;
  w.y0 = iy < 0 ? 0 : iy;
  w.x0 = ix < 0 ? 0 : ix;
  w.y1 = iy + p->filter_h > p->input_h ? p->input_h : iy + p->filter_h;
  w.x1 = ix + p->filter_w > p->input_w ? p->input_w : ix + p->filter_w;
  return w;
}

template <typename T>
void avg_pool(const te_pool_params* p, const T* input, T* output) {
  const int32_t ch = p->channels;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in_b = input + b * p->input_h * p->input_w * ch;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const Window w = clip_window(p, oy, ox);
        const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
        T* out = output + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) {
          int32_t acc = 0;
          for (int32_t y = w.y0; y < w.y1; ++y) {
            for (int32_t x = w.x0; x < w.x1; ++x) {
              acc += in_b[(y * p->input_w + x) * ch + c];
            }
          }
          if (count == 0) {
            out[c] = static_cast<T>(te::clamp_i32(0, p->act_min, p->act_max));
            continue;
          }
          // Round half away from zero, as TFLM does.
          acc = acc > 0 ? (acc + count / 2) / count : (acc - count / 2) / count;
          out[c] = static_cast<T>(te::clamp_i32(acc, p->act_min, p->act_max));
        }
      }
    }
  }
}

template <typename T, int32_t kLowest>
void max_pool(const te_pool_params* p, const T* input, T* output) {
  const int32_t ch = p->channels;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in_b = input + b * p->input_h * p->input_w * ch;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const Window w = clip_window(p, oy, ox);
        T* out = output + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) {
          int32_t m = kLowest;
          for (int32_t y = w.y0; y < w.y1; ++y) {
            for (int32_t x = w.x0; x < w.x1; ++x) {
              const int32_t v = in_b[(y * p->input_w + x) * ch + c];
              if (v > m) m = v;
            }
          }
          out[c] = static_cast<T>(te::clamp_i32(m, p->act_min, p->act_max));
        }
      }
    }
  }
}

}  // namespace

extern "C" void te_avg_pool_s8(const te_pool_params* p, const int8_t* input,
                               int8_t* output) {
  avg_pool(p, input, output);
}

extern "C" void te_avg_pool_s16(const te_pool_params* p, const int16_t* input,
                                int16_t* output) {
  avg_pool(p, input, output);
}

extern "C" void te_max_pool_s8(const te_pool_params* p, const int8_t* input,
                               int8_t* output) {
  max_pool<int8_t, INT8_MIN>(p, input, output);
}

extern "C" void te_max_pool_s16(const te_pool_params* p, const int16_t* input,
                                int16_t* output) {
  max_pool<int16_t, INT16_MIN>(p, input, output);
}
