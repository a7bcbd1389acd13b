"""Float64 NumPy reference of the training kernels (src/kernels/te_training.cc).

Written from the math, not from the C: every function dequantizes its int8
operands and does the calculus in float64.  Conventions are the header's
("Training" section of tinyengine_kernels.h):

* layouts are NHWC activations, OHWI filters, ``[1, kh, kw, C]`` depthwise
  filters; weights are symmetric with one scale per output channel;
* an activation gradient is ``dL/d(real activation)``; a parameter gradient
  is ``dL/d(stored integer)``: ``s_w * dL/dW_real`` for a weight of scale
  ``s_w`` and ``s_x * s_w * dL/db_real`` for an int32 bias;
* quantized rounding in the forward is treated as the identity
  (straight-through); clamps are handled by :func:`activation_grad`.

The float forward functions (:func:`fully_connected`, :func:`conv2d`, ...)
are what the gradients are gradients of; the tests check the gradients
against finite differences of them.
"""
from __future__ import annotations

from typing import Optional, Sequence, Tuple

import numpy as np

Pair = Tuple[int, int]

__all__ = ["activation_grad", "activation_range", "avg_pool", "avg_pool_grad", "conv2d", "conv2d_grad_input",
           "conv2d_grad_weights", "depthwise_conv2d", "depthwise_conv2d_grad_input",
           "depthwise_conv2d_grad_weights", "dequantize", "fully_connected", "fully_connected_grad_input",
           "fully_connected_grad_weights", "max_pool", "max_pool_grad", "mean", "mean_grad", "qas_sgd",
           "round_half_away", "softmax_cross_entropy"]


def dequantize(q, scale, zero_point=0) -> np.ndarray:
    """Real values ``scale * (q - zero_point)`` in float64 (``scale`` broadcasts, e.g. per channel)."""
    return np.asarray(scale, np.float64) * (np.asarray(q, np.float64) - zero_point)


def activation_range(kind: str, scale: float, zero_point: int) -> Pair:
    """``(act_min, act_max)`` of an int8 output for ``kind`` "none", "relu" or "relu6",
    as TFLite's CalculateActivationRangeQuantized sets them."""
    lo, hi = -128, 127
    if kind in ("relu", "relu6"):
        lo = max(lo, zero_point)
    if kind == "relu6":
        hi = min(hi, zero_point + int(round_half_away(6.0 / scale)))
    elif kind not in ("none", "relu"):
        raise ValueError(f"unknown activation {kind!r}")
    return lo, hi


def round_half_away(x) -> np.ndarray:
    """Round to nearest, ties away from zero (C's roundf, TFLite's TfLiteRound)."""
    x = np.asarray(x, np.float64)
    return np.sign(x) * np.floor(np.abs(x) + 0.5)


# --------------------------------------------------------------------------- window geometry
def _padded(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair,
            fill: float) -> Tuple[np.ndarray, int, int]:
    """``x`` [N, H, W, C] inside a frame of ``fill`` large enough for every window; (frame, H, W)."""
    n, h, w, c = x.shape
    need_h = (out_hw[0] - 1) * stride[0] + (kernel[0] - 1) * dilation[0] + 1
    need_w = (out_hw[1] - 1) * stride[1] + (kernel[1] - 1) * dilation[1] + 1
    fh, fw = max(need_h, padding[0] + h), max(need_w, padding[1] + w)
    frame = np.full((n, fh, fw, c), fill, np.float64)
    frame[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w] = x
    return frame, h, w


def _patches(x: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair, out_hw: Pair,
             fill: float = 0.0) -> np.ndarray:
    """im2col: [N, OH, OW, KH, KW, C], the input each window tap reads (``fill`` outside the input)."""
    frame, _, _ = _padded(x, kernel, stride, padding, dilation, out_hw, fill)
    oh, ow = out_hw
    out = np.empty((x.shape[0], oh, ow, kernel[0], kernel[1], x.shape[3]), np.float64)
    for ky in range(kernel[0]):
        for kx in range(kernel[1]):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            out[:, :, :, ky, kx] = frame[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
                                         x0:x0 + (ow - 1) * stride[1] + 1:stride[1]]
    return out


def _unpatch(cols: np.ndarray, input_shape: Sequence[int], stride: Pair, padding: Pair,
             dilation: Pair) -> np.ndarray:
    """The adjoint of :func:`_patches`: sums each tap's values back onto the input it read
    (what lands in the padding is dropped)."""
    n, oh, ow, kh, kw, c = cols.shape
    x = np.zeros(tuple(input_shape), np.float64)
    frame, h, w = _padded(x, (kh, kw), stride, padding, dilation, (oh, ow), 0.0)
    for ky in range(kh):
        for kx in range(kw):
            y0, x0 = ky * dilation[0], kx * dilation[1]
            frame[:, y0:y0 + (oh - 1) * stride[0] + 1:stride[0],
                  x0:x0 + (ow - 1) * stride[1] + 1:stride[1]] += cols[:, :, :, ky, kx]
    return frame[:, padding[0]:padding[0] + h, padding[1]:padding[1] + w]


# --------------------------------------------------------------------------- float forwards
def fully_connected(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray] = None) -> np.ndarray:
    """Real ``y = x W^T + b``: x [N, I], w [O, I], b [O]."""
    y = np.asarray(x, np.float64) @ np.asarray(w, np.float64).T
    return y if b is None else y + b


def conv2d(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Pair, padding: Pair,
           dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Real NHWC convolution with an OHWI filter, zero padding (the zero point's real value)."""
    cols = _patches(np.asarray(x, np.float64), w.shape[1:3], stride, padding, dilation, out_hw)
    y = np.einsum("nhwyxc,oyxc->nhwo", cols, np.asarray(w, np.float64))
    return y if b is None else y + b


def depthwise_conv2d(x: np.ndarray, w: np.ndarray, b: Optional[np.ndarray], stride: Pair, padding: Pair,
                     dilation: Pair, out_hw: Pair) -> np.ndarray:
    """Real depthwise convolution, depth multiplier 1: x [N, H, W, C], w [1, KH, KW, C]."""
    cols = _patches(np.asarray(x, np.float64), w.shape[1:3], stride, padding, dilation, out_hw)
    y = np.einsum("nhwyxc,yxc->nhwc", cols, np.asarray(w, np.float64)[0])
    return y if b is None else y + b


def _in_bounds(input_shape, window: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    ones = np.ones((1, input_shape[1], input_shape[2], 1))
    return _patches(ones, window, stride, padding, (1, 1), out_hw)  # [1, OH, OW, KH, KW, 1]


def avg_pool(x: np.ndarray, window: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    """Real average pooling; each window divides by its in-bounds count (TFLite's AVERAGE_POOL_2D)."""
    cols = _patches(np.asarray(x, np.float64), window, stride, padding, (1, 1), out_hw)
    count = _in_bounds(x.shape, window, stride, padding, out_hw).sum(axis=(3, 4))
    return cols.sum(axis=(3, 4)) / np.maximum(count, 1)


def max_pool(x: np.ndarray, window: Pair, stride: Pair, padding: Pair, out_hw: Pair) -> np.ndarray:
    """Real max pooling over each window's in-bounds elements."""
    cols = _patches(np.asarray(x, np.float64), window, stride, padding, (1, 1), out_hw, fill=-np.inf)
    return cols.max(axis=(3, 4))


def mean(x: np.ndarray) -> np.ndarray:
    """MEAN of [outer, reduced, inner] over the middle axis (global average pooling: [N, H*W, C])."""
    return np.asarray(x, np.float64).mean(axis=1)


# --------------------------------------------------------------------------- gradients
def fully_connected_grad_input(grad_output: np.ndarray, filter_q: np.ndarray,
                               filter_scale: np.ndarray) -> np.ndarray:
    """dX [N, I] = dY [N, O] @ W_real, W_real = filter_scale[o] * filter_q[o, i]."""
    return np.asarray(grad_output, np.float64) @ dequantize(filter_q, np.asarray(filter_scale)[:, None])


def fully_connected_grad_weights(grad_output: np.ndarray, input_q: np.ndarray, input_scale: float,
                                 input_zero_point: int, filter_scale: np.ndarray
                                 ) -> Tuple[np.ndarray, np.ndarray]:
    """(dL/dW_int [O, I], dL/db_int [O]) of ``y = x W_real^T + b_real``.

    dL/dW_real = dY^T X_real; W_real = s_w * W_int gives dL/dW_int = s_w * dL/dW_real.
    b_real = s_x * s_w * b_int gives dL/db_int = s_x * s_w * sum_n dY.
    """
    dy = np.asarray(grad_output, np.float64)
    s_w = np.asarray(filter_scale, np.float64)
    gw = dy.T @ dequantize(input_q, input_scale, input_zero_point)
    return s_w[:, None] * gw, input_scale * s_w * dy.sum(axis=0)


def conv2d_grad_input(grad_output: np.ndarray, filter_q: np.ndarray, filter_scale: np.ndarray,
                      input_shape: Sequence[int], stride: Pair, padding: Pair, dilation: Pair) -> np.ndarray:
    """dX [N, H, W, IC] of a convolution: each window tap's dY * W_real, summed onto the input it read."""
    w = dequantize(filter_q, np.asarray(filter_scale)[:, None, None, None])
    dcols = np.einsum("nhwo,oyxc->nhwyxc", np.asarray(grad_output, np.float64), w)
    return _unpatch(dcols, input_shape, stride, padding, dilation)


def conv2d_grad_weights(grad_output: np.ndarray, input_q: np.ndarray, input_scale: float, input_zero_point: int,
                        filter_scale: np.ndarray, kernel: Pair, stride: Pair, padding: Pair, dilation: Pair
                        ) -> Tuple[np.ndarray, np.ndarray]:
    """(dL/dW_int [OC, KH, KW, IC], dL/db_int [OC]) of a convolution.

    dL/dW_real[o, ky, kx, c] = sum_{n, oy, ox} dY[n, oy, ox, o] * X_real[n, iy, ix, c] (zero in the
    padding), times s_w[o] for the integer weight; the bias as in :func:`fully_connected_grad_weights`.
    """
    dy = np.asarray(grad_output, np.float64)
    s_w = np.asarray(filter_scale, np.float64)
    cols = _patches(dequantize(input_q, input_scale, input_zero_point), kernel, stride, padding, dilation,
                    dy.shape[1:3])
    gw = np.einsum("nhwo,nhwyxc->oyxc", dy, cols)
    return s_w[:, None, None, None] * gw, input_scale * s_w * dy.sum(axis=(0, 1, 2))


def depthwise_conv2d_grad_input(grad_output: np.ndarray, filter_q: np.ndarray, filter_scale: np.ndarray,
                                input_shape: Sequence[int], stride: Pair, padding: Pair,
                                dilation: Pair) -> np.ndarray:
    """dX [N, H, W, C] of a depthwise convolution (depth multiplier 1)."""
    w = dequantize(filter_q, filter_scale)[0]
    dcols = np.einsum("nhwc,yxc->nhwyxc", np.asarray(grad_output, np.float64), w)
    return _unpatch(dcols, input_shape, stride, padding, dilation)


def depthwise_conv2d_grad_weights(grad_output: np.ndarray, input_q: np.ndarray, input_scale: float,
                                  input_zero_point: int, filter_scale: np.ndarray, kernel: Pair, stride: Pair,
                                  padding: Pair, dilation: Pair) -> Tuple[np.ndarray, np.ndarray]:
    """(dL/dW_int [1, KH, KW, C], dL/db_int [C]) of a depthwise convolution (depth multiplier 1)."""
    dy = np.asarray(grad_output, np.float64)
    s_w = np.asarray(filter_scale, np.float64)
    cols = _patches(dequantize(input_q, input_scale, input_zero_point), kernel, stride, padding, dilation,
                    dy.shape[1:3])
    gw = np.einsum("nhwc,nhwyxc->yxc", dy, cols)[None]
    return s_w * gw, input_scale * s_w * dy.sum(axis=(0, 1, 2))


def avg_pool_grad(grad_output: np.ndarray, input_shape: Sequence[int], window: Pair, stride: Pair,
                  padding: Pair) -> np.ndarray:
    """dX of :func:`avg_pool`: each window's dY / (its in-bounds count) onto its in-bounds inputs."""
    dy = np.asarray(grad_output, np.float64)
    mask = _in_bounds(input_shape, window, stride, padding, dy.shape[1:3])
    count = np.maximum(mask.sum(axis=(3, 4), keepdims=True), 1)
    dcols = dy[:, :, :, None, None, :] * mask / count
    return _unpatch(dcols, input_shape, stride, padding, (1, 1))


def max_pool_grad(input_q: np.ndarray, grad_output: np.ndarray, window: Pair, stride: Pair,
                  padding: Pair) -> np.ndarray:
    """dX of :func:`max_pool`: each window's dY onto its largest in-bounds input, the first in
    row-major window order among equals (the element TFLite's forward scan keeps)."""
    dy = np.asarray(grad_output, np.float64)
    x = np.asarray(input_q, np.float64)
    cols = _patches(x, window, stride, padding, (1, 1), dy.shape[1:3], fill=-np.inf)
    n, oh, ow, kh, kw, c = cols.shape
    flat = cols.reshape(n, oh, ow, kh * kw, c)
    first = np.argmax(flat, axis=3)  # numpy returns the first maximum
    onehot = np.arange(kh * kw)[None, None, None, :, None] == first[:, :, :, None, :]
    any_in = np.isfinite(flat).any(axis=3, keepdims=True)
    dcols = (onehot & any_in) * dy[:, :, :, None, :]
    return _unpatch(dcols.reshape(cols.shape), x.shape, stride, padding, (1, 1))


def mean_grad(grad_output: np.ndarray, reduced: int) -> np.ndarray:
    """dX [outer, reduced, inner] of :func:`mean`: dY / reduced broadcast over the reduced axis."""
    dy = np.asarray(grad_output, np.float64)
    return np.repeat(dy[:, None, :] / reduced, reduced, axis=1)


def activation_grad(output_q: np.ndarray, grad_output: np.ndarray, act_min: int, act_max: int) -> np.ndarray:
    """dX = dY where the forward output lies strictly inside (act_min, act_max), else 0:
    an output at a clamp (ReLU's zero, ReLU6's six, int8 saturation) passes no gradient."""
    q = np.asarray(output_q, np.int64)
    return np.where((q > act_min) & (q < act_max), np.asarray(grad_output, np.float64), 0.0)


def softmax_cross_entropy(logits_q: np.ndarray, scale: float, zero_point: int,
                          labels: np.ndarray) -> Tuple[float, np.ndarray]:
    """(mean loss, dL/dz [N, K]) of softmax cross-entropy over real logits z = scale * (q - zero_point).

    loss = mean_n (log sum_k exp z[n, k] - z[n, label[n]]);
    dL/dz[n, k] = (softmax(z[n])[k] - [k == label[n]]) / N.
    """
    z = dequantize(logits_q, scale, zero_point)
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    total = e.sum(axis=1, keepdims=True)
    n = z.shape[0]
    rows = np.arange(n)
    loss = float(np.mean(np.log(total[:, 0]) - z[rows, labels]))
    grad = e / total
    grad[rows, labels] -= 1.0
    return loss, grad / n


def qas_sgd(param: np.ndarray, grad: np.ndarray, scale: np.ndarray, learning_rate: float, inner: int,
            momentum: float = 0.0, velocity: Optional[np.ndarray] = None, input_scale: Optional[float] = None,
            ) -> Tuple[np.ndarray, Optional[np.ndarray]]:
    """One SGD step with quantization-aware scaling (MCUNetV3, Lin et al. 2022, section 2.2).

    A parameter p of scale s is stored as P = p / s, so dL/dP = s * dL/dp: compared with float
    training, ||P|| / ||dL/dP|| is off by s^-2.  QAS rescales the integer gradient,
    dL/dP~ = dL/dP * s^-2, and then the integer SGD step
        P_new = saturate(P + round(-learning_rate * dL/dP~))
    equals float SGD on the real parameter, s * (P_new - P) = -learning_rate * dL/dp, up to the
    rounding.  With momentum: v = momentum * v + dL/dP~, and the step uses v.

    ``param`` is int8 weights (``input_scale`` None; s = scale[c]) or an int32 bias
    (s = input_scale * scale[c]), laid out [outer, channels, inner] with channels = len(scale);
    ``round`` is half away from zero applied to the increment; ``saturate`` clamps to the
    parameter's dtype; a NaN increment leaves the element unchanged.  Returns (new param,
    new velocity or None).
    """
    p = np.asarray(param)
    info = np.iinfo(p.dtype)
    s = np.asarray(scale, np.float64) * (1.0 if input_scale is None else input_scale)
    channels = s.size
    shape = (p.size // (channels * inner), channels, inner)
    step = np.asarray(grad, np.float64).reshape(shape) / (s ** 2)[None, :, None]
    new_v = None
    if velocity is not None:
        new_v = momentum * np.asarray(velocity, np.float64).reshape(shape) + step
        step = new_v
    with np.errstate(invalid="ignore"):
        delta = -learning_rate * step
    limit = float(info.max) - float(info.min) + 1.0  # any larger increment saturates the same way
    inc = round_half_away(np.clip(np.nan_to_num(delta, nan=0.0, posinf=limit, neginf=-limit), -limit, limit))
    new = np.clip(p.astype(np.int64).reshape(shape) + inc.astype(np.int64), info.min, info.max)
    return new.astype(p.dtype).reshape(p.shape), None if new_v is None else new_v.reshape(p.shape)
