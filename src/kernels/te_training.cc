// Training kernels: gradients of the int8 forward layers and the QAS SGD
// update (the "Training" section of tinyengine_kernels.h states the number
// formats and conventions).  Single-precision float only: the Cortex-M4's
// FPU has no double, so every literal is a float and nothing promotes.
#include <math.h>

#include "tinyengine_kernels.h"

namespace {

inline void zero(float* x, int32_t n) {
  for (int32_t i = 0; i < n; ++i) x[i] = 0.0f;
}

// Input coordinate of output coordinate `o` at filter tap `k`.
inline int32_t tap(int32_t o, int32_t k, int32_t stride, int32_t dilation,
                   int32_t pad) {
  return o * stride - pad + k * dilation;
}

// ---------------------------------------------------------------- fully connected

void fc_grad_input(const te_fc_grad_params* p, const float* dy,
                   const int8_t* filter, const float* scale, float* dx) {
  const int32_t in_d = p->input_depth;
  for (int32_t b = 0; b < p->batch; ++b) {
    float* dx_b = dx + b * in_d;
    if (!p->accumulate) zero(dx_b, in_d);
    // Row order over the filter keeps both inner streams contiguous.
    for (int32_t o = 0; o < p->output_depth; ++o) {
      const float g = dy[b * p->output_depth + o] * scale[o];
      const int8_t* w = filter + o * in_d;
      for (int32_t i = 0; i < in_d; ++i) dx_b[i] += g * static_cast<float>(w[i]);
    }
  }
}

void fc_grad_weights(const te_fc_grad_params* p, const float* dy,
                     const int8_t* input, const float* scale, float* dw,
                     float* db) {
  const int32_t in_d = p->input_depth;
  const int32_t out_d = p->output_depth;
  if (!p->accumulate) {
    if (dw) zero(dw, out_d * in_d);
    if (db) zero(db, out_d);
  }
  for (int32_t o = 0; o < out_d; ++o) {
    const float k = scale[o] * p->input_scale;
    float* dw_o = dw ? dw + o * in_d : nullptr;
    for (int32_t b = 0; b < p->batch; ++b) {
      const float g = dy[b * out_d + o] * k;
      if (db) db[o] += g;
      if (!dw_o) continue;
      const int8_t* x = input + b * in_d;
      for (int32_t i = 0; i < in_d; ++i) {
        dw_o[i] += g * static_cast<float>(x[i] + p->input_offset);
      }
    }
  }
}

// ---------------------------------------------------------------- convolutions

// Scatter form: every (output pixel, tap) adds into the input pixel it read,
// which needs no scratch and keeps the channel loop contiguous in the OHWI
// filter and the NHWC gradient alike.
void conv_grad_input(const te_conv_grad_params* p, const float* dy,
                     const int8_t* filter, const float* scale, float* dx) {
  const int32_t ic = p->input_c;
  const int32_t oc_n = p->output_c;
  const int32_t in_size = p->input_h * p->input_w * ic;
  for (int32_t b = 0; b < p->batch; ++b) {
    float* dx_b = dx + b * in_size;
    if (!p->accumulate) zero(dx_b, in_size);
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const float* dy_px =
            dy + ((b * p->output_h + oy) * p->output_w + ox) * oc_n;
        for (int32_t oc = 0; oc < oc_n; ++oc) {
          const float g = dy_px[oc] * scale[oc];
          const int8_t* f_oc = filter + oc * p->kernel_h * p->kernel_w * ic;
          for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
            const int32_t iy = tap(oy, ky, p->stride_h, p->dilation_h, p->pad_top);
            if (iy < 0 || iy >= p->input_h) continue;
            for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
              const int32_t ix = tap(ox, kx, p->stride_w, p->dilation_w, p->pad_left);
              if (ix < 0 || ix >= p->input_w) continue;
              float* d = dx_b + (iy * p->input_w + ix) * ic;
              const int8_t* f = f_oc + (ky * p->kernel_w + kx) * ic;
              for (int32_t c = 0; c < ic; ++c) d[c] += g * static_cast<float>(f[c]);
            }
          }
        }
      }
    }
  }
}

// Adds g * (x + input_offset) over output pixel (oy, ox)'s receptive field
// into one filter's gradient dw_oc [kernel_h, kernel_w, input_c].  Padding
// taps are skipped: they hold the zero point, where (x + input_offset) == 0.
// P is te_conv_grad_params or te_conv_sgd_params (the same geometry fields),
// so the two weight-gradient paths take the same sums in the same order.
template <typename P>
inline void add_pixel_taps(const P* p, const int8_t* in_b, int32_t oy,
                           int32_t ox, float g, float* dw_oc) {
  const int32_t ic = p->input_c;
  for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
    const int32_t iy = tap(oy, ky, p->stride_h, p->dilation_h, p->pad_top);
    if (iy < 0 || iy >= p->input_h) continue;
    for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
      const int32_t ix = tap(ox, kx, p->stride_w, p->dilation_w, p->pad_left);
      if (ix < 0 || ix >= p->input_w) continue;
      const int8_t* x = in_b + (iy * p->input_w + ix) * ic;
      float* d = dw_oc + (ky * p->kernel_w + kx) * ic;
      for (int32_t c = 0; c < ic; ++c) {
        d[c] += g * static_cast<float>(x[c] + p->input_offset);
      }
    }
  }
}

void conv_grad_weights(const te_conv_grad_params* p, const float* dy,
                       const int8_t* input, const float* scale, float* dw,
                       float* db) {
  const int32_t ic = p->input_c;
  const int32_t oc_n = p->output_c;
  const int32_t f_size = p->kernel_h * p->kernel_w * ic;
  if (!p->accumulate) {
    if (dw) zero(dw, oc_n * f_size);
    if (db) zero(db, oc_n);
  }
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * p->input_h * p->input_w * ic;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const float* dy_px =
            dy + ((b * p->output_h + oy) * p->output_w + ox) * oc_n;
        for (int32_t oc = 0; oc < oc_n; ++oc) {
          const float g = dy_px[oc] * scale[oc] * p->input_scale;
          if (db) db[oc] += g;
          if (dw) add_pixel_taps(p, in_b, oy, ox, g, dw + oc * f_size);
        }
      }
    }
  }
}

void depthwise_grad_input(const te_conv_grad_params* p, const float* dy,
                          const int8_t* filter, const float* scale,
                          float* dx) {
  const int32_t ch = p->input_c;
  const int32_t in_size = p->input_h * p->input_w * ch;
  for (int32_t b = 0; b < p->batch; ++b) {
    float* dx_b = dx + b * in_size;
    if (!p->accumulate) zero(dx_b, in_size);
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const float* dy_px =
            dy + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
          const int32_t iy = tap(oy, ky, p->stride_h, p->dilation_h, p->pad_top);
          if (iy < 0 || iy >= p->input_h) continue;
          for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t ix = tap(ox, kx, p->stride_w, p->dilation_w, p->pad_left);
            if (ix < 0 || ix >= p->input_w) continue;
            float* d = dx_b + (iy * p->input_w + ix) * ch;
            const int8_t* f = filter + (ky * p->kernel_w + kx) * ch;
            for (int32_t c = 0; c < ch; ++c) {
              d[c] += dy_px[c] * scale[c] * static_cast<float>(f[c]);
            }
          }
        }
      }
    }
  }
}

void depthwise_grad_weights(const te_conv_grad_params* p, const float* dy,
                            const int8_t* input, const float* scale,
                            float* dw, float* db) {
  const int32_t ch = p->input_c;
  if (!p->accumulate) {
    if (dw) zero(dw, p->kernel_h * p->kernel_w * ch);
    if (db) zero(db, ch);
  }
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * p->input_h * p->input_w * ch;
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const float* dy_px =
            dy + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        if (db) {
          for (int32_t c = 0; c < ch; ++c) db[c] += dy_px[c] * scale[c] * p->input_scale;
        }
        if (!dw) continue;
        for (int32_t ky = 0; ky < p->kernel_h; ++ky) {
          const int32_t iy = tap(oy, ky, p->stride_h, p->dilation_h, p->pad_top);
          if (iy < 0 || iy >= p->input_h) continue;
          for (int32_t kx = 0; kx < p->kernel_w; ++kx) {
            const int32_t ix = tap(ox, kx, p->stride_w, p->dilation_w, p->pad_left);
            if (ix < 0 || ix >= p->input_w) continue;
            const int8_t* x = in_b + (iy * p->input_w + ix) * ch;
            float* d = dw + (ky * p->kernel_w + kx) * ch;
            for (int32_t c = 0; c < ch; ++c) {
              d[c] += dy_px[c] * scale[c] * p->input_scale *
                      static_cast<float>(x[c] + p->input_offset);
            }
          }
        }
      }
    }
  }
}

// ---------------------------------------------------------------- pooling

// The forward's window clipped to the input (te_pooling.cc's clip_window).
struct Window {
  int32_t y0, y1, x0, x1;
};

inline Window pool_window(const te_pool_params* p, int32_t oy, int32_t ox) {
  const int32_t iy = oy * p->stride_h - p->pad_top;
  const int32_t ix = ox * p->stride_w - p->pad_left;
  Window w;
  w.y0 = iy < 0 ? 0 : iy;
  w.x0 = ix < 0 ? 0 : ix;
  w.y1 = iy + p->filter_h > p->input_h ? p->input_h : iy + p->filter_h;
  w.x1 = ix + p->filter_w > p->input_w ? p->input_w : ix + p->filter_w;
  return w;
}

void avg_pool_grad(const te_pool_params* p, const float* dy, float* dx) {
  const int32_t ch = p->channels;
  const int32_t in_size = p->input_h * p->input_w * ch;
  for (int32_t b = 0; b < p->batch; ++b) {
    float* dx_b = dx + b * in_size;
    zero(dx_b, in_size);
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const Window w = pool_window(p, oy, ox);
        const int32_t count = (w.y1 - w.y0) * (w.x1 - w.x0);
        if (count <= 0) continue;  // the forward wrote a constant
        const float inv = 1.0f / static_cast<float>(count);
        const float* dy_px = dy + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        for (int32_t y = w.y0; y < w.y1; ++y) {
          for (int32_t x = w.x0; x < w.x1; ++x) {
            float* d = dx_b + (y * p->input_w + x) * ch;
            for (int32_t c = 0; c < ch; ++c) d[c] += dy_px[c] * inv;
          }
        }
      }
    }
  }
}

void max_pool_grad(const te_pool_params* p, const int8_t* input,
                   const float* dy, float* dx) {
  const int32_t ch = p->channels;
  const int32_t in_size = p->input_h * p->input_w * ch;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* in_b = input + b * in_size;
    float* dx_b = dx + b * in_size;
    zero(dx_b, in_size);
    for (int32_t oy = 0; oy < p->output_h; ++oy) {
      for (int32_t ox = 0; ox < p->output_w; ++ox) {
        const Window w = pool_window(p, oy, ox);
        if (w.y1 <= w.y0 || w.x1 <= w.x0) continue;
        const float* dy_px = dy + ((b * p->output_h + oy) * p->output_w + ox) * ch;
        for (int32_t c = 0; c < ch; ++c) {
          // Strictly greater replaces: the first maximum in scan order wins,
          // the element the forward's `if (v > m)` settles on.
          int32_t best = (w.y0 * p->input_w + w.x0) * ch + c;
          for (int32_t y = w.y0; y < w.y1; ++y) {
            for (int32_t x = w.x0; x < w.x1; ++x) {
              const int32_t at = (y * p->input_w + x) * ch + c;
              if (in_b[at] > in_b[best]) best = at;
            }
          }
          dx_b[best] += dy_px[c];
        }
      }
    }
  }
}

// ---------------------------------------------------------------- QAS SGD
// The gradient arrives with respect to the stored integer P = p / s, i.e.
// s * dL/dp; dividing by s^2 (QAS) makes -lr * step the integer image of a
// float SGD step on p (derivation at te_qas_sgd_params in the header).

// Half away from zero, exact for any float: t = trunc(v) is exact and
// v - t is exact (Sterbenz), unlike the common floor(v + 0.5f) whose add
// rounds 0.49999997f up.  |v| <= 2^32 so that the int64 holds it.
inline int64_t round_half_away(float v) {
  const int64_t t = static_cast<int64_t>(v);
  const float frac = v - static_cast<float>(t);
  if (frac >= 0.5f) return t + 1;
  if (frac <= -0.5f) return t - 1;
  return t;
}

// The rounded increment -lr * step, clamped to +-limit first: an increment
// beyond the stored type's whole range saturates the same either way, and
// the clamp keeps the conversion defined (inf included).  NaN gives 0.
inline int64_t increment(float lr, float step, float limit) {
  const float d = -lr * step;
  if (d != d) return 0;
  return round_half_away(d > limit ? limit : (d < -limit ? -limit : d));
}

// Walks a [outer, channels, inner] parameter; `apply(i, inv_s2)` updates
// element i, whose scale s gives inv_s2 = 1 / s^2.
template <typename F>
void per_channel(const te_qas_sgd_params* p, const float* scale,
                 float scale_factor, F apply) {
  const int32_t block = p->channels * p->inner;
  if (block <= 0) return;
  // Whole blocks only: a size that is not a multiple of the block must not
  // run past the parameter.
  for (int32_t base = 0; base + block <= p->size; base += block) {
    for (int32_t c = 0; c < p->channels; ++c) {
      const float s = scale[c] * scale_factor;
      const float inv_s2 = 1.0f / (s * s);
      const int32_t first = base + c * p->inner;
      for (int32_t i = first; i < first + p->inner; ++i) apply(i, inv_s2);
    }
  }
}

inline float qas_step(const te_qas_sgd_params* p, const float* grad,
                      float* velocity, int32_t i, float inv_s2) {
  const float step = grad[i] * inv_s2;
  if (!velocity) return step;
  velocity[i] = p->momentum * velocity[i] + step;
  return velocity[i];
}

}  // namespace

extern "C" void te_fully_connected_grad_input_s8(const te_fc_grad_params* p,
                                                 const float* grad_output,
                                                 const int8_t* filter,
                                                 const float* filter_scale,
                                                 float* grad_input) {
  fc_grad_input(p, grad_output, filter, filter_scale, grad_input);
}

extern "C" void te_fully_connected_grad_weights_s8(
    const te_fc_grad_params* p, const float* grad_output, const int8_t* input,
    const float* filter_scale, float* grad_filter, float* grad_bias) {
  fc_grad_weights(p, grad_output, input, filter_scale, grad_filter, grad_bias);
}

extern "C" void te_conv2d_grad_input_s8(const te_conv_grad_params* p,
                                        const float* grad_output,
                                        const int8_t* filter,
                                        const float* filter_scale,
                                        float* grad_input) {
  conv_grad_input(p, grad_output, filter, filter_scale, grad_input);
}

extern "C" void te_conv2d_grad_weights_s8(const te_conv_grad_params* p,
                                          const float* grad_output,
                                          const int8_t* input,
                                          const float* filter_scale,
                                          float* grad_filter,
                                          float* grad_bias) {
  conv_grad_weights(p, grad_output, input, filter_scale, grad_filter,
                    grad_bias);
}

extern "C" void te_depthwise_conv2d_grad_input_s8(const te_conv_grad_params* p,
                                                  const float* grad_output,
                                                  const int8_t* filter,
                                                  const float* filter_scale,
                                                  float* grad_input) {
  depthwise_grad_input(p, grad_output, filter, filter_scale, grad_input);
}

extern "C" void te_depthwise_conv2d_grad_weights_s8(
    const te_conv_grad_params* p, const float* grad_output,
    const int8_t* input, const float* filter_scale, float* grad_filter,
    float* grad_bias) {
  depthwise_grad_weights(p, grad_output, input, filter_scale, grad_filter,
                         grad_bias);
}

extern "C" void te_avg_pool_grad_f32(const te_pool_params* p,
                                     const float* grad_output,
                                     float* grad_input) {
  avg_pool_grad(p, grad_output, grad_input);
}

extern "C" void te_max_pool_grad_s8(const te_pool_params* p,
                                    const int8_t* input,
                                    const float* grad_output,
                                    float* grad_input) {
  max_pool_grad(p, input, grad_output, grad_input);
}

extern "C" void te_mean_grad_f32(const te_mean_params* p,
                                 const float* grad_output, float* grad_input) {
  const float inv = 1.0f / static_cast<float>(p->reduced);
  for (int32_t o = 0; o < p->outer; ++o) {
    const float* dy = grad_output + o * p->inner;
    for (int32_t r = 0; r < p->reduced; ++r) {
      float* dx = grad_input + (o * p->reduced + r) * p->inner;
      for (int32_t i = 0; i < p->inner; ++i) dx[i] = dy[i] * inv;
    }
  }
}

extern "C" void te_activation_grad_s8(const te_activation_grad_params* p,
                                      const int8_t* output,
                                      const float* grad_output,
                                      float* grad_input) {
  for (int32_t i = 0; i < p->size; ++i) {
    const int32_t q = output[i];
    const bool passes = q > p->act_min && q < p->act_max;
    grad_input[i] = passes ? grad_output[i] : 0.0f;
  }
}

extern "C" void te_softmax_cross_entropy_s8(const te_softmax_ce_params* p,
                                            const int8_t* logits,
                                            const int32_t* label, float* grad,
                                            float* loss) {
  const int32_t k_n = p->classes;
  const float inv_batch = 1.0f / static_cast<float>(p->batch);
  float total = 0.0f;
  for (int32_t b = 0; b < p->batch; ++b) {
    const int8_t* q = logits + b * k_n;
    float* g = grad + b * k_n;
    // Shift by the largest logit so that every expf argument is <= 0.
    int32_t q_max = q[0];
    for (int32_t k = 1; k < k_n; ++k) q_max = q[k] > q_max ? q[k] : q_max;
    float sum = 0.0f;
    for (int32_t k = 0; k < k_n; ++k) {
      g[k] = expf(p->input_scale * static_cast<float>(q[k] - q_max));
      sum += g[k];
    }
    const float inv_sum = 1.0f / sum;
    for (int32_t k = 0; k < k_n; ++k) g[k] *= inv_sum * inv_batch;
    const int32_t y = label[b];
    g[y] -= inv_batch;
    total += logf(sum) - p->input_scale * static_cast<float>(q[y] - q_max);
  }
  *loss = total * inv_batch;
}

extern "C" void te_qas_sgd_s8(const te_qas_sgd_params* p, int8_t* weights,
                              const float* grad, const float* scale,
                              float* velocity) {
  per_channel(p, scale, 1.0f, [&](int32_t i, float inv_s2) {
    const float step = qas_step(p, grad, velocity, i, inv_s2);
    // 256 already carries any int8 weight past either end.
    const int64_t v = weights[i] + increment(p->learning_rate, step, 256.0f);
    weights[i] = static_cast<int8_t>(v < -128 ? -128 : (v > 127 ? 127 : v));
  });
}

extern "C" void te_qas_sgd_s32(const te_qas_sgd_params* p, int32_t* bias,
                               const float* grad, const float* scale,
                               float* velocity) {
  per_channel(p, scale, p->input_scale, [&](int32_t i, float inv_s2) {
    const float step = qas_step(p, grad, velocity, i, inv_s2);
    // 2^32 carries any int32 bias past either end and is exact in float.
    const int64_t v = bias[i] + increment(p->learning_rate, step, 4294967296.0f);
    bias[i] = static_cast<int32_t>(v < INT32_MIN ? INT32_MIN : (v > INT32_MAX ? INT32_MAX : v));
  });
}

extern "C" int32_t te_fully_connected_sgd_s8_get_buffer_size(const te_fc_sgd_params* p) {
  return p->input_depth * (int32_t)sizeof(float);
}

extern "C" void te_fully_connected_sgd_s8(const te_fc_sgd_params* p, int8_t* filter,
                                          const float* grad_output, const int8_t* input,
                                          const float* filter_scale, void* scratch) {
  // One row at a time through the two public kernels: the fused form must stay
  // exactly what the separate steps compute, only with a row of scratch.
  te_fc_grad_params g;
  g.batch = 1;
  g.input_depth = p->input_depth;
  g.output_depth = 1;
  g.input_offset = p->input_offset;
  g.input_scale = p->input_scale;
  g.accumulate = 0;
  te_qas_sgd_params q;
  q.size = p->input_depth;
  q.channels = 1;
  q.inner = p->input_depth;
  q.learning_rate = p->learning_rate;
  q.momentum = 0.0f;
  q.input_scale = 0.0f;
  float* row = static_cast<float*>(scratch);
  for (int32_t o = 0; o < p->output_depth; ++o) {
    te_fully_connected_grad_weights_s8(&g, grad_output + o, input, filter_scale + o, row, nullptr);
    te_qas_sgd_s8(&q, filter + (size_t)o * (size_t)p->input_depth, row, filter_scale + o, nullptr);
  }
}

extern "C" int32_t te_conv2d_sgd_s8_get_buffer_size(const te_conv_sgd_params* p) {
  return p->kernel_h * p->kernel_w * p->input_c * (int32_t)sizeof(float);
}

extern "C" void te_conv2d_sgd_s8(const te_conv_sgd_params* p, int8_t* filter,
                                 const float* grad_output, const int8_t* input,
                                 const float* filter_scale, void* scratch) {
  // Filter o's gradient takes the same sums in the same pixel order as
  // conv_grad_weights (add_pixel_taps), so the update is bit for bit the
  // two-kernel path's.
  const int32_t ic = p->input_c;
  const int32_t oc_n = p->output_c;
  const int32_t f_size = p->kernel_h * p->kernel_w * ic;
  te_qas_sgd_params q;
  q.size = f_size;
  q.channels = 1;
  q.inner = f_size;
  q.learning_rate = p->learning_rate;
  q.momentum = 0.0f;
  q.input_scale = 0.0f;
  float* row = static_cast<float*>(scratch);
  for (int32_t o = 0; o < p->channels; ++o) {
    zero(row, f_size);
    for (int32_t b = 0; b < p->batch; ++b) {
      const int8_t* in_b = input + b * p->input_h * p->input_w * ic;
      for (int32_t oy = 0; oy < p->output_h; ++oy) {
        for (int32_t ox = 0; ox < p->output_w; ++ox) {
          const float g = grad_output[((b * p->output_h + oy) * p->output_w + ox) * oc_n + o] *
                          filter_scale[o] * p->input_scale;
          add_pixel_taps(p, in_b, oy, ox, g, row);
        }
      }
    }
    te_qas_sgd_s8(&q, filter + (size_t)o * (size_t)f_size, row, filter_scale + o, nullptr);
  }
}
