// Portable convolutions (regular and depthwise), TFLM-exact: int8
// activations with int32 accumulators and bias, and int16 activations (16x8)
// with int64 accumulators and bias.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

// Both convolutions share the per-output-pixel requantization and clamp; the
// accumulator type picks TFLite's 32- or 64-bit multiplier arithmetic.
template <typename T, typename Acc>
inline T requantize_acc(Acc acc, const te_conv_params* p, int32_t multiplier,
                        int32_t shift) {
  int32_t v = te::rescale_accumulator(acc, multiplier, shift);
  v += p->output_offset;
  return static_cast<T>(te::clamp_i32(v, p->act_min, p->act_max));
}

// One output channel of a depthwise convolution over all pixels of one batch:
// `in` addresses input channel `c` with `in_pixel_stride` bytes between pixels,
// `out` addresses output channel `oc` with `out_pixel_stride` between pixels.
template <typename T, typename Acc>
void depthwise_channel(const te_conv_params* p, const T* in,
                       int32_t in_pixel_stride, const int8_t* filter,
                       const Acc* bias, const int32_t* multiplier,
                       const int32_t* shift, int32_t oc, T* out,
                       int32_t out_pixel_stride) {
  for (int32_t oy = 0; oy < p->output_h; ++oy) {
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    for (int32_t ox = 0; ox < p->output_w; ++ox) {
      const int32_t in_x0 = ox * p->stride_w - p->pad_left;
      Acc acc = 0;
      for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
        const int32_t iy = in_y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->input_h) continue;
        for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
          const int32_t ix = in_x0 + kx * p->dilation_w;
          if (ix < 0 || ix >= p->input_w) continue;
          const int32_t v = in[(iy * p->input_w + ix) * in_pixel_stride];
          acc += (v + p->input_offset) *
                 filter[(ky * p->kernel_w + kx) * p->output_c + oc];
        }
      }
      if (bias) acc += bias[oc];
      out[(oy * p->output_w + ox) * out_pixel_stride] =
          requantize_acc<T>(acc, p, multiplier[oc], shift[oc]);
    }
  }
}

template <typename T, typename Acc>
void conv2d(const te_conv_params* p, const T* input, const int8_t* filter,
            const Acc* bias, const int32_t* multiplier, const int32_t* shift,
            T* output) {
  const int32_t ic = p->input_c;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      const int32_t in_y0 = oy * p->stride_h - p->pad_top;
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const int32_t in_x0 = ox * p->stride_w - p->pad_left;
        T* out = output + ((b * p->output_h + oy) * p->output_w + ox) *
                              p->output_c;
        for (int32_t oc = 0; oc < p->output_c; ++oc) {
          const int8_t* f_oc = filter + oc * p->kernel_h * p->kernel_w * ic;
          Acc acc = 0;
          for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
            const int32_t iy = in_y0 + ky * p->dilation_h;
            // Padding contributes nothing: (zero_point + input_offset) == 0.
            if (iy < 0 || iy >= p->input_h) continue;
            for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
              const int32_t ix = in_x0 + kx * p->dilation_w;
              if (ix < 0 || ix >= p->input_w) continue;
              const T* in_px = in_b + (iy * p->input_w + ix) * ic;
              const int8_t* f_px = f_oc + (ky * p->kernel_w + kx) * ic;
              for (int32_t c = 0; c < ic; ++c) {
                acc += (in_px[c] + p->input_offset) * f_px[c];
              }
            }
          }
          if (bias) acc += bias[oc];
          out[oc] = requantize_acc<T>(acc, p, multiplier[oc], shift[oc]);
        }
      }
    }
  }
}

template <typename T, typename Acc>
void depthwise_conv2d(const te_conv_params* p, const T* input,
                      const int8_t* filter, const Acc* bias,
                      const int32_t* multiplier, const int32_t* shift,
                      T* output) {
  const int32_t ic = p->input_c;
  const int32_t oc_total = p->output_c;
  for (int32_t b = 0; b < p->batch; ++b) {
    const T* in_b = input + b * p->input_h * p->input_w * ic;
    T* out_b = output + b * p->output_h * p->output_w * oc_total;
    for (int32_t c = 0; c < ic; ++c) {
      for (int32_t m = 0; m < p->depth_multiplier; ++m) {
        const int32_t oc = c * p->depth_multiplier + m;
        depthwise_channel(p, in_b + c, ic, filter, bias, multiplier, shift, oc,
                          out_b + oc, oc_total);
      }
    }
  }
}

}  // namespace

extern "C" void te_conv2d_s8(const te_conv_params* p, const int8_t* input,
                             const int8_t* filter, const int32_t* bias,
                             const int32_t* multiplier, const int32_t* shift,
                             int8_t* output) {
  conv2d(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_conv2d_s16(const te_conv_params* p, const int16_t* input,
                              const int8_t* filter, const int64_t* bias,
                              const int32_t* multiplier, const int32_t* shift,
                              int16_t* output) {
  conv2d(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_conv2d_s16_b32(const te_conv_params* p,
                                  const int16_t* input, const int8_t* filter,
                                  const int32_t* bias,
                                  const int32_t* multiplier,
                                  const int32_t* shift, int16_t* output) {
  conv2d(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_depthwise_conv2d_s8(const te_conv_params* p,
                                       const int8_t* input,
                                       const int8_t* filter,
                                       const int32_t* bias,
                                       const int32_t* multiplier,
                                       const int32_t* shift, int8_t* output) {
  depthwise_conv2d(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_depthwise_conv2d_s16(const te_conv_params* p,
                                        const int16_t* input,
                                        const int8_t* filter,
                                        const int64_t* bias,
                                        const int32_t* multiplier,
                                        const int32_t* shift,
                                        int16_t* output) {
  depthwise_conv2d(p, input, filter, bias, multiplier, shift, output);
}

extern "C" void te_depthwise_conv2d_inplace_s8(
    const te_conv_params* p, int8_t* buffer, const int8_t* filter,
    const int32_t* bias, const int32_t* multiplier, const int32_t* shift,
    void* scratch_buffer) {
  int8_t* scratch = static_cast<int8_t*>(scratch_buffer);
  const int32_t ch = p->input_c;
  const int32_t in_pixels = p->input_h * p->input_w;
  const int32_t out_pixels = p->output_h * p->output_w;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = buffer + b * in_pixels * ch;
    int8_t* out_b = buffer + b * out_pixels * ch;
    for (int32_t c = 0; c < ch; ++c) {
      for (int32_t i = 0; i < in_pixels; ++i) scratch[i] = in_b[i * ch + c];
      depthwise_channel(p, scratch, 1, filter, bias, multiplier, shift, c,
                        out_b + c, ch);
    }
  }
}

extern "C" int32_t te_depthwise_conv2d_inplace_s8_get_buffer_size(
    const te_conv_params* p) {
  return p->input_h * p->input_w;  // one input channel
}

namespace {

// TRANSPOSE_CONV as TFLM's reference computes it: every input pixel scatters
// its products into the output positions it reaches (accumulated in
// `scratch`, one batch at a time), then bias, requantization and clamp.
template <typename T, typename Acc>
void transpose_conv2d(const te_conv_params* p, const T* input,
                      const int8_t* filter, const Acc* bias,
                      const int32_t* multiplier, const int32_t* shift,
                      T* output, Acc* scratch) {
  const int32_t ic = p->input_c;
  const int32_t oc_total = p->output_c;
  const int32_t out_size = p->output_h * p->output_w * oc_total;
  for (int32_t b = 0; b < p->batch; ++b) {
    for (int32_t i = 0; i < out_size; ++i) scratch[i] = 0;
    const T* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t iy = 0; iy < p->input_h; ++iy) {
      for (int32_t ix = 0; ix < p->input_w; ++ix) {
        const T* in_px = in_b + (iy * p->input_w + ix) * ic;
        const int32_t oy0 = iy * p->stride_h - p->pad_top;
        const int32_t ox0 = ix * p->stride_w - p->pad_left;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
          const int32_t oy = oy0 + ky;
          if (oy < 0 || oy >= p->output_h) continue;
          for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t ox = ox0 + kx;
            if (ox < 0 || ox >= p->output_w) continue;
            Acc* acc = scratch + (oy * p->output_w + ox) * oc_total;
            for (int32_t oc = 0; oc < oc_total; ++oc) {
              const int8_t* f = filter + ((oc * p->kernel_h + ky) * p->kernel_w + kx) * ic;
              Acc sum = 0;
              for (int32_t c = 0; c < ic; ++c) {
                sum += (in_px[c] + p->input_offset) * f[c];
              }
              acc[oc] += sum;
            }
          }
        }
      }
    }
    T* out_b = output + b * out_size;
    for (int32_t i = 0; i < out_size; ++i) {
      const int32_t oc = i % oc_total;
      Acc acc = scratch[i];
      if (bias) acc += bias[oc];
      out_b[i] = requantize_acc<T>(acc, p, multiplier[oc], shift[oc]);
    }
  }
}

}  // namespace

extern "C" void te_transpose_conv2d_s8(const te_conv_params* p,
                                       const int8_t* input,
                                       const int8_t* filter,
                                       const int32_t* bias,
                                       const int32_t* multiplier,
                                       const int32_t* shift, int8_t* output,
                                       void* scratch) {
  transpose_conv2d(p, input, filter, bias, multiplier, shift, output,
                   static_cast<int32_t*>(scratch));
}

extern "C" int32_t te_transpose_conv2d_s8_get_buffer_size(
    const te_conv_params* p) {
  return p->output_h * p->output_w * p->output_c * 4;
}

extern "C" void te_transpose_conv2d_s16(const te_conv_params* p,
                                        const int16_t* input,
                                        const int8_t* filter,
                                        const int64_t* bias,
                                        const int32_t* multiplier,
                                        const int32_t* shift, int16_t* output,
                                        void* scratch) {
  transpose_conv2d(p, input, filter, bias, multiplier, shift, output,
                   static_cast<int64_t*>(scratch));
}

extern "C" int32_t te_transpose_conv2d_s16_get_buffer_size(
    const te_conv_params* p) {
  return p->output_h * p->output_w * p->output_c * 8;
}
