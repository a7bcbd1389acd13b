// Portable int8 convolutions (regular and depthwise), TFLM-exact.
#include "fixed_point.h"
#include "tinyengine_kernels.h"

namespace {

// Both convolutions share the per-output-pixel requantization and clamp.
inline int8_t requantize_acc(int32_t acc, const te_conv_params* p,
                             int32_t multiplier, int32_t shift) {
  acc = te::multiply_by_quantized_multiplier(acc, multiplier, shift);
  acc += p->output_offset;
  return static_cast<int8_t>(te::clamp_i32(acc, p->act_min, p->act_max));
}

// One output channel of a depthwise convolution over all pixels of one batch:
// `in` addresses input channel `c` with `in_pixel_stride` bytes between pixels,
// `out` addresses output channel `oc` with `out_pixel_stride` between pixels.
void depthwise_channel(const te_conv_params* p, const int8_t* in,
                       int32_t in_pixel_stride, const int8_t* filter,
                       const int32_t* bias, const int32_t* multiplier,
                       const int32_t* shift, int32_t oc, int8_t* out,
                       int32_t out_pixel_stride) {
  for (int32_t oy = 0; oy < p->output_h; ++oy) {
    const int32_t in_y0 = oy * p->stride_h - p->pad_top;
    for (int32_t ox = 0; ox < p->output_w; ++ox) {
      const int32_t in_x0 = ox * p->stride_w - p->pad_left;
      int32_t acc = 0;
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
          requantize_acc(acc, p, multiplier[oc], shift[oc]);
    }
  }
}

}  // namespace

extern "C" void te_conv2d_s8(const te_conv_params* p, const int8_t* input,
                             const int8_t* filter, const int32_t* bias,
                             const int32_t* multiplier, const int32_t* shift,
                             int8_t* output) {
  const int32_t ic = p->input_c;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      const int32_t in_y0 = oy * p->stride_h - p->pad_top;
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const int32_t in_x0 = ox * p->stride_w - p->pad_left;
        int8_t* out = output + ((b * p->output_h + oy) * p->output_w + ox) *
                                   p->output_c;
        for (int32_t oc = 0; oc < p->output_c; ++oc) {
          const int8_t* f_oc = filter + oc * p->kernel_h * p->kernel_w * ic;
          int32_t acc = 0;
          for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
            const int32_t iy = in_y0 + ky * p->dilation_h;
            // Padding contributes nothing: (zero_point + input_offset) == 0.
            if (iy < 0 || iy >= p->input_h) continue;
            for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
              const int32_t ix = in_x0 + kx * p->dilation_w;
              if (ix < 0 || ix >= p->input_w) continue;
              const int8_t* in_px = in_b + (iy * p->input_w + ix) * ic;
              const int8_t* f_px = f_oc + (ky * p->kernel_w + kx) * ic;
              for (int32_t c = 0; c < ic; ++c) {
                acc += (in_px[c] + p->input_offset) * f_px[c];
              }
            }
          }
          if (bias) acc += bias[oc];
          out[oc] = requantize_acc(acc, p, multiplier[oc], shift[oc]);
        }
      }
    }
  }
}

extern "C" void te_depthwise_conv2d_s8(const te_conv_params* p,
                                       const int8_t* input,
                                       const int8_t* filter,
                                       const int32_t* bias,
                                       const int32_t* multiplier,
                                       const int32_t* shift, int8_t* output) {
  const int32_t ic = p->input_c;
  const int32_t oc_total = p->output_c;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * p->input_h * p->input_w * ic;
    int8_t* out_b = output + b * p->output_h * p->output_w * oc_total;
    for (int32_t c = 0; c < ic; ++c) {
      for (int32_t m = 0; m < p->depth_multiplier; ++m) {
        const int32_t oc = c * p->depth_multiplier + m;
        depthwise_channel(p, in_b + c, ic, filter, bias, multiplier, shift, oc,
                          out_b + oc, oc_total);
      }
    }
  }
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
