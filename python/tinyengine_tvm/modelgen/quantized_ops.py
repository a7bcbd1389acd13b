"""Builders of small, realistically quantized int8 TFLite models for tests.

Every model is produced by :class:`QuantizedGraph`, which runs a float
calibration pass in numpy alongside emitting the TFLite graph: each activation
carries a batch of float calibration samples (already fake-quantized to the
tensor's int8 grid), and an op's output scale/zero point are derived from the
range its float result actually takes. That keeps outputs off the saturation
rails, which is what makes these models useful for numerical comparisons.

Weights are symmetric int8 (zero point 0), per output channel or per tensor;
biases are int32 with scale ``input_scale * weight_scale``.
"""

from __future__ import annotations

import math
from typing import List

import numpy as np

from .tflite_writer import TFLiteWriter

__all__ = [
    "QTensor",
    "QuantizedGraph",
    "conv2d_model",
    "depthwise_conv2d_model",
    "fully_connected_model",
    "add_model",
    "mul_model",
    "avg_pool_model",
    "max_pool_model",
    "mean_model",
    "pad_model",
    "reshape_model",
    "squeeze_model",
    "transpose_model",
    "concat_model",
    "softmax_model",
    "logistic_model",
    "hard_swish_model",
    "resize_nearest_model",
    "quantize_dequantize_model",
    "relu_model",
    "relu6_model",
    "float_model",
    "two_op_model",
    "residual_model",
    "MODEL_BUILDERS",
]

_QMIN, _QMAX = -128, 127
#: Integer range of each activation data type.
_RANGE = {"int8": (-128, 127), "int16": (-32768, 32767)}
_NP = {"int8": np.int8, "int16": np.int16}


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def choose_qparams(lo: float, hi: float, dtype: str = "int8") -> tuple[float, int]:
    """Scale/zero point covering ``[lo, hi]`` (always including 0): asymmetric for
    int8, symmetric with zero point 0 for int16 (as TFLite's 16x8 quantization)."""
    lo, hi = min(float(lo), 0.0), max(float(hi), 0.0)
    if hi - lo < 1e-6:
        # A constant-zero tensor still needs a usable, non-zero scale.
        hi = lo + 1e-3
    if dtype == "int16":
        return max(-lo, hi) / 32767.0, 0
    scale = (hi - lo) / float(_QMAX - _QMIN)
    zp = int(np.clip(round(_QMIN - lo / scale), _QMIN, _QMAX))
    return scale, zp


def fake_quant(v, scale: float, zp: int, dtype: str = "int8"):
    """Round float values onto the integer grid of ``(scale, zp)`` and back."""
    qmin, qmax = _RANGE[dtype]
    q = np.clip(np.round(np.asarray(v) / scale) + zp, qmin, qmax)
    return (q - zp) * scale


def quantize(v, scale: float, zp: int, dtype: str = "int8") -> np.ndarray:
    """Quantize float values to ``dtype`` with ``(scale, zp)``."""
    qmin, qmax = _RANGE[dtype]
    return np.clip(np.round(np.asarray(v) / scale) + zp, qmin, qmax).astype(_NP[dtype])


def _apply_activation(y, activation):
    act = (activation or "NONE").upper()
    if act == "NONE":
        return y
    if act == "RELU":
        return np.maximum(y, 0.0)
    if act == "RELU6":
        return np.clip(y, 0.0, 6.0)
    if act == "RELU_N1_TO_1":
        return np.clip(y, -1.0, 1.0)
    raise ValueError(f"unsupported fused activation {activation!r}")


def _same_or_valid_pads(in_size, k, stride, dilation, padding):
    """Output size and (before, after) padding with TensorFlow's SAME/VALID rules."""
    eff_k = (k - 1) * dilation + 1
    if padding.upper() == "SAME":
        out = -(-in_size // stride)
        total = max((out - 1) * stride + eff_k - in_size, 0)
        return out, total // 2, total - total // 2
    out = (in_size - eff_k) // stride + 1
    if out <= 0:
        raise ValueError(f"VALID padding: kernel {eff_k} larger than input {in_size}")
    return out, 0, 0


def _windows(x, kernel, stride, dilation, padding, pad_value=0.0):
    """Yield (kh, kw, strided slice of the padded NHWC input) for every kernel tap."""
    n, h, w, c = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    oh, pt, pb = _same_or_valid_pads(h, kh, sh, dh, padding)
    ow, pl, pr = _same_or_valid_pads(w, kw, sw, dw, padding)
    xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)), constant_values=pad_value)
    for i in range(kh):
        for j in range(kw):
            r0, c0 = i * dh, j * dw
            yield i, j, xp[:, r0 : r0 + (oh - 1) * sh + 1 : sh, c0 : c0 + (ow - 1) * sw + 1 : sw, :]


def conv2d_ref(x, w, b, stride, dilation, padding):
    """Float NHWC conv; ``w`` is OHWI like TFLite."""
    out = None
    for i, j, win in _windows(x, w.shape[1:3], stride, dilation, padding):
        term = np.einsum("nhwc,oc->nhwo", win, w[:, i, j, :])
        out = term if out is None else out + term
    return out + b


def depthwise_conv2d_ref(x, w, b, stride, dilation, padding, depth_multiplier):
    """Float NHWC depthwise conv; ``w`` is 1HW(I*M) like TFLite."""
    xr = np.repeat(x, depth_multiplier, axis=-1)
    out = None
    for i, j, win in _windows(xr, w.shape[1:3], stride, dilation, padding):
        term = win * w[0, i, j, :]
        out = term if out is None else out + term
    return out + b


def pool2d_ref(x, kind, filt, stride, padding):
    """Float NHWC pooling; SAME-padded average pools divide by the valid count only."""
    if kind == "max":
        out = None
        for _, _, win in _windows(x, filt, stride, (1, 1), padding, pad_value=-np.inf):
            out = win if out is None else np.maximum(out, win)
        return out
    ones = np.ones(x.shape[:3] + (1,), dtype=x.dtype)
    total = count = None
    for (_, _, win), (_, _, cwin) in zip(
        _windows(x, filt, stride, (1, 1), padding), _windows(ones, filt, stride, (1, 1), padding)
    ):
        total = win if total is None else total + win
        count = cwin if count is None else count + cwin
    return total / count


def resize_nearest_ref(x, size, align_corners, half_pixel_centers):
    """Float NHWC nearest-neighbour resize following TFLite's index rule."""

    def index_map(in_size, out_size):
        if align_corners and out_size > 1:
            scale = (in_size - 1) / (out_size - 1)
        else:
            scale = in_size / out_size
        offset = 0.5 if half_pixel_centers else 0.0
        idx = []
        for o in range(out_size):
            v = (o + offset) * scale
            i = int(round(v)) if align_corners else int(math.floor(v))
            idx.append(max(0, min(i, in_size - 1)))
        return idx

    rows = index_map(x.shape[1], size[0])
    cols = index_map(x.shape[2], size[1])
    return x[:, rows][:, :, cols]


class QTensor:
    """An activation in a :class:`QuantizedGraph`.

    ``values`` holds float calibration samples with shape ``(samples, *shape)``;
    ``scale``/``zero_point`` are None for float32 tensors.
    """

    def __init__(self, index, shape, dtype, scale, zero_point, values):
        self.index = index
        self.shape = tuple(int(d) for d in shape)
        self.dtype = dtype
        self.scale = scale
        self.zero_point = zero_point
        self.values = values

    @property
    def quantized(self) -> bool:
        return self.scale is not None


class QuantizedGraph:
    """Emit an int8 TFLite graph while calibrating activations in float.

    Each op method takes and returns :class:`QTensor` handles. Samples are
    carried on an extra leading axis, so the model's own batch dimension is
    independent of the calibration batch.
    """

    def __init__(self, seed: int = 0, samples: int = 16, description: str | None = None):
        self.rng = np.random.default_rng(seed)
        self.samples = samples
        self.writer = TFLiteWriter(description or "tinyengine-tvm modelgen")
        self._inputs: list[QTensor] = []
        self._variables: dict = {}  # name -> (shape, dtype, scale, zero point, initial raw values or None)
        self._count = 0

    # ---------------------------------------------------------------- helpers
    def _name(self, prefix):
        self._count += 1
        return f"{prefix}_{self._count}"

    def _per_sample(self, fn, *tensors):
        """Apply an NHWC/plain float function to every calibration sample at once."""
        flat = [t.values.reshape((-1,) + t.shape[1:]) for t in tensors]
        return fn(*flat)

    def _emit_act(self, prefix, values, shape, activation=None, qparams=None, dtype="int8"):
        """Quantize calibration ``values`` (computed in float) into a new activation
        tensor of ``dtype`` (an op's output takes its input's type)."""
        values = np.asarray(values, dtype=np.float64).reshape((self.samples,) + tuple(shape))
        if dtype == "float32":
            idx = self.writer.tensor(self._name(prefix), shape, dtype="float32")
            return QTensor(idx, shape, "float32", None, None, values)
        if qparams is None:
            lo, hi = float(values.min()), float(values.max())
            act = (activation or "NONE").upper()
            # Keep the whole clamp interval representable, as the converter does.
            if act == "RELU6":
                lo, hi = 0.0, min(hi, 6.0)
            elif act == "RELU":
                lo = 0.0
            qparams = choose_qparams(lo, hi, dtype)
        scale, zp = qparams
        idx = self.writer.tensor(self._name(prefix), shape, dtype=dtype, scale=scale, zero_point=zp)
        return QTensor(idx, shape, dtype, scale, zp, fake_quant(values, scale, zp, dtype))

    def _weights(self, w, per_channel, axis):
        """Symmetric int8 weights; returns (int8 array, scales list)."""
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        if per_channel:
            amax = np.abs(moved).max(axis=1)
        else:
            amax = np.full(w.shape[axis], np.abs(moved).max())
        scales = np.maximum(amax, 1e-8) / 127.0
        shape = [1] * w.ndim
        shape[axis] = -1
        q = np.clip(np.round(w / scales.reshape(shape)), -127, 127).astype(np.int8)
        return q, (scales if per_channel else scales[:1])

    def _bias(self, prefix, b, x_scale, w_scales, n, dtype="int32"):
        """Bias quantized with input_scale * weight_scale (per channel if needed):
        int32 for int8 activations, int64 for int16 ones."""
        ws = np.broadcast_to(np.asarray(w_scales, dtype=np.float64), (n,))
        bscale = x_scale * ws
        bq = np.round(b / bscale).astype(dtype)
        scale_arg = bscale if len(w_scales) > 1 else float(bscale[0])
        idx = self.writer.tensor(self._name(prefix), [n], dtype=dtype, scale=scale_arg, data=bq)
        return idx, bq * bscale

    def _maybe_bias(self, prefix, use_bias, x, w_scales, n, dtype=None, values=None):
        """Bias input for conv/depthwise/FC: returns (tensor index or -1, dequantized bias).

        ``use_bias`` is True (random bias), False (an all-zero int32 bias, which
        is what the TFLite converter emits for a bias-free layer), or
        ``"absent"`` (the optional input marked -1).
        """
        if isinstance(use_bias, str):
            if use_bias != "absent":
                raise ValueError(f"use_bias must be True, False or 'absent', got {use_bias!r}")
            return -1, np.zeros(n)
        if values is not None:  # trained float values (quantized here like the converter does)
            b = np.asarray(values, dtype=np.float64).reshape(n)
        else:
            b = self.rng.normal(0.0, 0.1, size=n) if use_bias else np.zeros(n)
        return self._bias(prefix + "_b", b, x.scale, w_scales, n,
                          dtype or ("int64" if x.dtype == "int16" else "int32"))

    # ---------------------------------------------------------------- graph IO
    def input(self, shape, low=-1.0, high=1.0, dtype="int8", name="input", values=None) -> QTensor:
        """A model input (int8, int16 or float32) whose calibration data is uniform in ``[low, high]``,
        or ``values`` ([samples, *shape] real data, e.g. a dataset's images) while its quantization
        still covers ``[low, high]``."""
        shape = tuple(int(d) for d in shape)
        if values is not None:
            values = np.asarray(values, dtype=np.float64).reshape((self.samples,) + shape)
        else:
            values = self.rng.uniform(low, high, size=(self.samples,) + shape)
        if dtype == "float32":
            idx = self.writer.tensor(name, shape, dtype="float32")
            t = QTensor(idx, shape, "float32", None, None, values)
        else:
            scale, zp = choose_qparams(low, high, dtype)
            idx = self.writer.tensor(name, shape, dtype=dtype, scale=scale, zero_point=zp)
            t = QTensor(idx, shape, dtype, scale, zp, fake_quant(values, scale, zp, dtype))
        self._inputs.append(t)
        return t

    def constant(self, values, name="const", qparams=None) -> QTensor:
        """An int8 constant operand (e.g. the right-hand side of ADD/MUL), with
        its own quantization or ``qparams`` (scale, zero point)."""
        values = np.asarray(values, dtype=np.float64)
        scale, zp = qparams if qparams is not None else choose_qparams(values.min(), values.max())
        q = quantize(values, scale, zp)
        idx = self.writer.tensor(
            self._name(name), values.shape, scale=scale, zero_point=zp, data=q
        )
        deq = (q.astype(np.float64) - zp) * scale
        samples = np.broadcast_to(deq, (self.samples,) + values.shape)
        return QTensor(idx, values.shape, "int8", scale, zp, samples)

    def read_variable(self, name, shape, qparams, dtype="int8", initial=None, prefix=None) -> QTensor:
        """READ_VARIABLE of the resource variable ``name`` (VAR_HANDLE shared_name),
        an activation of ``qparams``.  ``initial`` (float values, quantized with
        qparams) is assigned once by a CALL_ONCE initialisation subgraph, as the
        converter writes a variable's initial value; without it the variable
        starts as TFLM leaves it."""
        shape = tuple(int(d) for d in shape)
        scale, zp = qparams
        if name not in self._variables:
            q = None if initial is None else quantize(np.broadcast_to(initial, shape), scale, zp, dtype)
            self._variables[name] = (shape, dtype, scale, zp, q)
        start = self._variables[name][4]
        values = np.zeros((self.samples,) + shape) if start is None else \
            np.broadcast_to((start.astype(np.float64) - zp) * scale, (self.samples,) + shape)
        handle = self._var_handle(self.writer, name)
        out = self._emit_act(prefix or f"{name}_read", values, shape, qparams=qparams, dtype=dtype)
        self.writer.op("READ_VARIABLE", [handle], [out.index])
        return out

    def assign_variable(self, name, value) -> None:
        """ASSIGN_VARIABLE: ``value``'s raw integers become variable ``name``'s."""
        self.writer.op("ASSIGN_VARIABLE", [self._var_handle(self.writer, name), value.index], [])

    def _var_handle(self, writer, name) -> int:
        handle = writer.tensor(self._name(f"{name}_handle"), [], dtype="resource")
        writer.op("VAR_HANDLE", [], [handle], shared_name=name)
        return handle

    def _init_subgraph(self) -> None:
        """CALL_ONCE of a subgraph assigning the variables' initial values (the
        converter's form), as the first operator."""
        initial = {n: v for n, v in self._variables.items() if v[4] is not None}
        if not initial:
            return
        sub = self.writer.subgraph()
        for name, (shape, dtype, scale, zp, q) in initial.items():
            value = sub.tensor(f"{name}_initial", shape, dtype=dtype, scale=scale, zero_point=zp, data=q)
            sub.op("ASSIGN_VARIABLE", [self._var_handle(sub, name), value], [])
        self.writer.op("CALL_ONCE", [], [], at=0, init_subgraph_index=len(self.writer._subgraphs))

    def finish(self, outputs) -> bytes:
        """Declare outputs (a QTensor or list) and serialize the model."""
        if isinstance(outputs, QTensor):
            outputs = [outputs]
        self._init_subgraph()
        self.writer.inputs([t.index for t in self._inputs])
        self.writer.outputs([t.index for t in outputs])
        return self.writer.finish()

    # ---------------------------------------------------------------- conv ops
    def conv2d(
        self,
        x,
        out_channels,
        kernel=(3, 3),
        stride=(1, 1),
        dilation=(1, 1),
        padding="SAME",
        activation="NONE",
        per_channel=True,
        use_bias=True,
        bias_dtype=None,
        prefix="conv",
        weights=None,
        bias=None,
    ) -> QTensor:
        """CONV_2D with He-initialised weights whose magnitude varies per channel, or the given
        float ``weights`` [out, kh, kw, in] and ``bias`` (a trained model)."""
        kh, kw = _pair(kernel)
        cin = x.shape[3]
        fan_in = kh * kw * cin
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(out_channels, kh, kw, cin)
        else:
            w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in), size=(out_channels, kh, kw, cin))
            # Uneven channel magnitudes give per-channel quantization something to do.
            w *= self.rng.uniform(0.3, 1.5, size=(out_channels, 1, 1, 1))
        wq, wscales = self._weights(w, per_channel, axis=0)
        widx = self.writer.tensor(
            self._name(prefix + "_w"),
            wq.shape,
            data=wq,
            scale=wscales if per_channel else float(wscales[0]),
            zero_point=0,
            quantized_dimension=0,
        )
        wdeq = wq * np.broadcast_to(wscales, (out_channels,)).reshape(-1, 1, 1, 1)
        bidx, bdeq = self._maybe_bias(prefix, use_bias, x, wscales, out_channels, bias_dtype, bias)
        s, d = _pair(stride), _pair(dilation)
        y = self._per_sample(lambda v: conv2d_ref(v, wdeq, bdeq, s, d, padding), x)
        y = _apply_activation(y, activation)
        out_shape = (x.shape[0],) + y.shape[1:]
        out = self._emit_act(prefix, y, out_shape, activation, dtype=x.dtype)
        self.writer.op(
            "CONV_2D",
            [x.index, widx, bidx],
            [out.index],
            padding=padding,
            stride=s,
            dilation=d,
            fused_activation=activation,
        )
        return out

    def depthwise_conv2d(
        self,
        x,
        kernel=(3, 3),
        stride=(1, 1),
        dilation=(1, 1),
        padding="SAME",
        depth_multiplier=1,
        activation="NONE",
        per_channel=True,
        use_bias=True,
        prefix="dwconv",
        weights=None,
        bias=None,
    ) -> QTensor:
        """DEPTHWISE_CONV_2D; weights are 1 x KH x KW x (C*M), quantized along dim 3 (random, or the
        given float ``weights`` and ``bias``)."""
        kh, kw = _pair(kernel)
        cout = x.shape[3] * depth_multiplier
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(1, kh, kw, cout)
        else:
            w = self.rng.normal(0.0, math.sqrt(2.0 / (kh * kw)), size=(1, kh, kw, cout))
            w *= self.rng.uniform(0.3, 1.5, size=(1, 1, 1, cout))
        wq, wscales = self._weights(w, per_channel, axis=3)
        widx = self.writer.tensor(
            self._name(prefix + "_w"),
            wq.shape,
            data=wq,
            scale=wscales if per_channel else float(wscales[0]),
            zero_point=0,
            quantized_dimension=3,
        )
        wdeq = wq.astype(np.float64) * np.broadcast_to(wscales, (cout,))
        bidx, bdeq = self._maybe_bias(prefix, use_bias, x, wscales, cout, values=bias)
        s, d = _pair(stride), _pair(dilation)
        y = self._per_sample(
            lambda v: depthwise_conv2d_ref(v, wdeq, bdeq, s, d, padding, depth_multiplier), x
        )
        y = _apply_activation(y, activation)
        out = self._emit_act(prefix, y, (x.shape[0],) + y.shape[1:], activation, dtype=x.dtype)
        self.writer.op(
            "DEPTHWISE_CONV_2D",
            [x.index, widx, bidx],
            [out.index],
            padding=padding,
            stride=s,
            dilation=d,
            depth_multiplier=depth_multiplier,
            fused_activation=activation,
        )
        return out

    def transpose_conv(self, x, out_channels, kernel=(3, 3), stride=(2, 2), padding="SAME", activation="NONE",
                       per_channel=True, use_bias=True, prefix="tconv") -> QTensor:
        """TRANSPOSE_CONV (a strided upsampling convolution); output size in*stride
        (SAME) or (in-1)*stride + kernel (VALID), weights OHWI quantized along O."""
        kh, kw = _pair(kernel)
        sh, sw = _pair(stride)
        n, h, w_in, cin = x.shape
        w = self.rng.normal(0.0, math.sqrt(2.0 / (kh * kw * cin)), size=(out_channels, kh, kw, cin))
        w *= self.rng.uniform(0.3, 1.5, size=(out_channels, 1, 1, 1))
        wq, wscales = self._weights(w, per_channel, axis=0)
        widx = self.writer.tensor(self._name(prefix + "_w"), wq.shape, data=wq,
                                  scale=wscales if per_channel else float(wscales[0]), zero_point=0)
        wdeq = wq * np.broadcast_to(wscales, (out_channels,)).reshape(-1, 1, 1, 1)
        bidx, bdeq = self._maybe_bias(prefix, use_bias, x, wscales, out_channels)
        same = padding.upper() == "SAME"
        oh, ow = (h * sh, w_in * sw) if same else ((h - 1) * sh + kh, (w_in - 1) * sw + kw)
        # TFLM pads the output as a convolution of the output would be padded.
        pad_t = max((-(-oh // sh) - 1) * sh + kh - oh, 0) // 2 if same else 0
        pad_l = max((-(-ow // sw) - 1) * sw + kw - ow, 0) // 2 if same else 0
        full = np.zeros((self.samples * n, (h - 1) * sh + kh, (w_in - 1) * sw + kw, out_channels))
        flat = x.values.reshape((-1,) + x.shape[1:])
        for ky in range(kh):
            for kx in range(kw):
                full[:, ky:ky + (h - 1) * sh + 1:sh, kx:kx + (w_in - 1) * sw + 1:sw, :] += np.einsum(
                    "nhwc,oc->nhwo", flat, wdeq[:, ky, kx, :])
        y = np.zeros((self.samples * n, oh, ow, out_channels))
        rows, cols = min(oh, full.shape[1] - pad_t), min(ow, full.shape[2] - pad_l)
        y[:, :rows, :cols] = full[:, pad_t:pad_t + rows, pad_l:pad_l + cols]
        y = _apply_activation(y + bdeq, activation)
        out = self._emit_act(prefix, y, (n, oh, ow, out_channels), activation, dtype=x.dtype)
        shape_idx = self._int32(prefix + "_output_shape", [n, oh, ow, out_channels])
        self.writer.op("TRANSPOSE_CONV", [shape_idx, widx, x.index, bidx], [out.index], padding=padding,
                       stride=(sh, sw), fused_activation=activation)
        return out

    def svdf(self, x, num_filters, memory_size, rank=1, state_dtype="int16", prefix="svdf") -> QTensor:
        """SVDF over frames x [batch, features]: num_filters feature projections
        remembered for memory_size invocations in a variable state tensor, weighted
        in time and summed per unit (rank filters each).  Weights: int8 features,
        int16 (or int8, with an int8 state) time weights, int32 bias.  Calibrated
        as if the history held the current frame's projections."""
        batch, features = x.shape
        units = num_filters // rank
        wf = self.rng.normal(0.0, math.sqrt(2.0 / features), size=(num_filters, features))
        wt = self.rng.normal(0.0, math.sqrt(1.0 / memory_size), size=(num_filters, memory_size))
        wf_scale = np.abs(wf).max() / 127.0
        wfq = np.clip(np.round(wf / wf_scale), -127, 127).astype(np.int8)
        qmax = 32767 if state_dtype == "int16" else 127
        wt_scale = np.abs(wt).max() / qmax
        wtq = np.clip(np.round(wt / wt_scale), -qmax, qmax).astype(_NP[state_dtype])
        feat = x.values.reshape(-1, features) @ (wfq * wf_scale).T
        st_scale, st_zp = choose_qparams(feat.min(), feat.max(), state_dtype)
        feat = fake_quant(feat, st_scale, st_zp, state_dtype)
        b = self.rng.normal(0.0, 0.1, size=units)
        b_scale = st_scale * wt_scale
        bq = np.round(b / b_scale).astype(np.int32)
        per_filter = feat * (wtq * wt_scale).sum(axis=1)
        y = per_filter.reshape(-1, units, rank).sum(axis=2) + bq * b_scale
        out = self._emit_act(prefix, y, (batch, units), dtype=x.dtype)
        wf_idx = self.writer.tensor(self._name(prefix + "_weights_feature"), wfq.shape, data=wfq, scale=wf_scale)
        wt_idx = self.writer.tensor(self._name(prefix + "_weights_time"), wtq.shape, dtype=state_dtype, data=wtq,
                                    scale=wt_scale)
        b_idx = self.writer.tensor(self._name(prefix + "_bias"), [units], dtype="int32", data=bq, scale=b_scale)
        st_idx = self.writer.tensor(self._name(prefix + "_state"), [batch, num_filters * memory_size],
                                    dtype=state_dtype, scale=st_scale, zero_point=st_zp, is_variable=True)
        self.writer.op("SVDF", [x.index, wf_idx, wt_idx, b_idx, st_idx], [out.index], rank=rank)
        return out

    def lstm(self, x, units, time_major=False, cell_clip=0.0, cell_scale=2.0 ** -11, intermediates=True,
             prefix="lstm", hidden_range=(-1.0, 1.0)) -> QTensor:
        """UNIDIRECTIONAL_SEQUENCE_LSTM (int8, int16 cell) over x [batch, time, features]
        (or [time, batch, features] when time_major): per-tensor int8 weights, int32
        biases, variable hidden (int8) and cell (int16) states, and, as the converter
        writes them, five empty intermediate tensors.  ``hidden_range`` is the float
        range the hidden state is quantized over (an asymmetric one gives it a
        nonzero zero point)."""
        if time_major:
            steps, batch, features = x.shape
        else:
            batch, steps, features = x.shape
        h_scale, h_zp = choose_qparams(hidden_range[0], hidden_range[1], x.dtype)
        bias_type = "int64" if x.dtype == "int16" else "int32"

        def weights(cols, name):
            w = self.rng.normal(0.0, 1.0 / math.sqrt(cols), size=(units, cols))
            scale = np.abs(w).max() / 127.0
            q = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
            return self.writer.tensor(self._name(f"{prefix}_{name}"), q.shape, data=q, scale=scale), q * scale

        wx = [weights(features, f"input_to_{g}") for g in ("input", "forget", "cell", "output")]
        wh = [weights(units, f"recurrent_to_{g}") for g in ("input", "forget", "cell", "output")]
        biases = []
        for g, (idx, w) in zip(("input", "forget", "cell", "output"), wx):
            b = self.rng.normal(1.0 if g == "forget" else 0.0, 0.1, size=units)
            b_scale = x.scale * (np.abs(w).max() / 127.0 if np.abs(w).max() else 1.0)
            bq = np.round(b / b_scale).astype(bias_type)
            biases.append((self.writer.tensor(self._name(f"{prefix}_{g}_bias"), [units], dtype=bias_type, data=bq,
                                              scale=b_scale), bq * b_scale))
        # Float reference for the calibration values: the sequence from zero states.
        seq = x.values if not time_major else np.swapaxes(x.values, 1, 2)
        h = np.zeros((self.samples, batch, units))
        c = np.zeros((self.samples, batch, units))
        outs = []
        sig = lambda v: 1.0 / (1.0 + np.exp(-v))  # noqa: E731
        for t in range(steps):
            xt = seq[:, :, t, :]
            gates = [xt @ w.T + h @ r.T + b for (_, w), (_, r), (_, b) in zip(wx, wh, biases)]
            c = sig(gates[1]) * c + sig(gates[0]) * np.tanh(gates[2])
            if cell_clip:
                c = np.clip(c, -cell_clip, cell_clip)
            h = sig(gates[3]) * np.tanh(c)
            outs.append(h)
        y = np.stack(outs, axis=2)
        if time_major:
            y = np.swapaxes(y, 1, 2)
        out = self._emit_act(prefix, y, y.shape[1:], qparams=(h_scale, h_zp), dtype=x.dtype)
        hidden = self.writer.tensor(self._name(prefix + "_output_state"), [batch, units], dtype=x.dtype,
                                    scale=h_scale, zero_point=h_zp, is_variable=True)
        cell = self.writer.tensor(self._name(prefix + "_cell_state"), [batch, units], dtype="int16",
                                  scale=cell_scale, is_variable=True)
        inputs = [x.index] + [i for i, _ in wx] + [i for i, _ in wh] + [-1] * 3 + [i for i, _ in biases]
        inputs += [-1, -1, hidden, cell] + [-1] * 4
        inter = []
        if intermediates:  # the converter's gate and hidden scales (TFLM reads none of them)
            for k in range(5):
                inter.append(self.writer.tensor(self._name(f"{prefix}_intermediate"), [0],
                                                dtype="int16" if k < 4 else x.dtype,
                                                scale=2.0 ** -12 if k < 4 else h_scale,
                                                zero_point=0 if k < 4 else h_zp))
        self.writer.op("UNIDIRECTIONAL_SEQUENCE_LSTM", inputs, [out.index], version=4 if x.dtype == "int16" else 3,
                       intermediates=inter,
                       time_major=time_major, cell_clip=cell_clip)
        return out

    def fully_connected(
        self,
        x,
        units,
        activation="NONE",
        per_channel=False,
        use_bias=True,
        keep_num_dims=False,
        bias_dtype=None,
        prefix="fc",
        qparams=None,
        weights=None,
        bias=None,
    ) -> QTensor:
        """FULLY_CONNECTED over the last axis; weights are (units, in_features).
        ``bias_dtype`` overrides the bias type (e.g. an int32 bias on a 16x8 layer);
        ``qparams`` (scale, zero point) fixes the output's quantization instead of
        calibrating it (e.g. logits with room to grow while a model is trained); ``weights``
        [units, in] and ``bias`` give trained float values instead of random ones."""
        fin = x.shape[-1]
        if weights is not None:
            w = np.asarray(weights, dtype=np.float64).reshape(units, fin)
        else:
            w = self.rng.normal(0.0, math.sqrt(2.0 / fin), size=(units, fin))
            w *= self.rng.uniform(0.3, 1.5, size=(units, 1))
        wq, wscales = self._weights(w, per_channel, axis=0)
        widx = self.writer.tensor(
            self._name(prefix + "_w"),
            wq.shape,
            data=wq,
            scale=wscales if per_channel else float(wscales[0]),
            zero_point=0,
            quantized_dimension=0,
        )
        wdeq = wq.astype(np.float64) * np.broadcast_to(wscales, (units,)).reshape(-1, 1)
        bidx, bdeq = self._maybe_bias(prefix, use_bias, x, wscales, units, bias_dtype, bias)
        flat = x.values.reshape(self.samples, -1, fin)
        y = _apply_activation(flat @ wdeq.T + bdeq, activation)
        if keep_num_dims:
            out_shape = x.shape[:-1] + (units,)
        else:
            out_shape = (int(np.prod(x.shape[:-1])), units)
        out = self._emit_act(prefix, y, out_shape, activation, qparams=qparams, dtype=x.dtype)
        self.writer.op(
            "FULLY_CONNECTED",
            [x.index, widx, bidx],
            [out.index],
            fused_activation=activation,
            keep_num_dims=keep_num_dims,
        )
        return out

    # ----------------------------------------------------------- elementwise
    def _binary(self, opname, fn, a, b, activation, prefix, qparams=None):
        # Right-align both operands' model dims behind the samples axis so numpy
        # broadcasts them the way TFLite does.
        rank = max(len(a.shape), len(b.shape))
        av = a.values.reshape((self.samples,) + (1,) * (rank - len(a.shape)) + a.shape)
        bv = b.values.reshape((self.samples,) + (1,) * (rank - len(b.shape)) + b.shape)
        y = _apply_activation(fn(av, bv), activation)
        out = self._emit_act(prefix, y, y.shape[1:], activation, qparams=qparams, dtype=a.dtype)
        options = {} if activation is None else dict(fused_activation=activation)
        self.writer.op(opname, [a.index, b.index], [out.index], **options)
        return out

    def add(self, a, b, activation="NONE", prefix="add") -> QTensor:
        """Broadcasting ADD with its own calibrated output scale."""
        return self._binary("ADD", np.add, a, b, activation, prefix)

    def mul(self, a, b, activation="NONE", prefix="mul") -> QTensor:
        """Broadcasting MUL with its own calibrated output scale."""
        return self._binary("MUL", np.multiply, a, b, activation, prefix)

    def sub(self, a, b, activation="NONE", prefix="sub") -> QTensor:
        """Broadcasting SUB (a - b) with its own calibrated output scale."""
        return self._binary("SUB", np.subtract, a, b, activation, prefix)

    def squared_difference(self, a, b, prefix="squared_difference") -> QTensor:
        """Broadcasting SQUARED_DIFFERENCE (a - b)^2 with its own calibrated output scale."""
        return self._binary("SQUARED_DIFFERENCE", lambda u, v: (u - v) ** 2, a, b, None, prefix)

    def maximum(self, a, b, prefix="maximum") -> QTensor:
        """Broadcasting MAXIMUM; inputs and output share ``a``'s quantization, as the converter makes them."""
        return self._binary("MAXIMUM", np.maximum, a, b, None, prefix, qparams=(a.scale, a.zero_point))

    def minimum(self, a, b, prefix="minimum") -> QTensor:
        """Broadcasting MINIMUM; inputs and output share ``a``'s quantization."""
        return self._binary("MINIMUM", np.minimum, a, b, None, prefix, qparams=(a.scale, a.zero_point))

    def _unary(self, opname, fn, x, prefix, qparams=None, **options):
        y = fn(x.values)
        out = self._emit_act(prefix, y, x.shape, qparams=qparams, dtype=x.dtype)
        self.writer.op(opname, [x.index], [out.index], **options)
        return out

    def relu(self, x, prefix="relu") -> QTensor:
        """Standalone RELU (requantizing to a calibrated output scale)."""
        return self._unary("RELU", lambda v: np.maximum(v, 0.0), x, prefix)

    def relu_n1_to_1(self, x, prefix="relu_n1_to_1") -> QTensor:
        """Standalone RELU_N1_TO_1 (clamp to [-1, 1], requantized to a calibrated output)."""
        return self._unary("RELU_N1_TO_1", lambda v: np.clip(v, -1.0, 1.0), x, prefix)

    def neg(self, x, prefix="neg") -> QTensor:
        """NEG: TFLite negates the raw integers (the output keeps the input's quantization here)."""
        out = self._same_q(x, -x.values, prefix)
        self.writer.op("NEG", [x.index], [out.index])
        return out

    def relu6(self, x, requantize=False, prefix="relu6") -> QTensor:
        """Standalone RELU6; the output shares the input's quantization by default.

        TFLite Micro's int8 RELU6 clamps in the input's integer domain and never
        rescales, so ``requantize=True`` (a calibrated output scale, which
        LiteRT honours) gives a model TFLite Micro silently computes wrongly.
        """
        qparams = None if requantize else (x.scale, x.zero_point)
        return self._unary("RELU6", lambda v: np.clip(v, 0.0, 6.0), x, prefix, qparams=qparams)

    def logistic(self, x, prefix="logistic") -> QTensor:
        """LOGISTIC; TFLite fixes the output at scale 1/256, zero point -128 (int8) or 2^-15, 0 (int16)."""
        qparams = (1.0 / 32768, 0) if x.dtype == "int16" else (1.0 / 256, -128)
        return self._unary("LOGISTIC", lambda v: 1.0 / (1.0 + np.exp(-v)), x, prefix, qparams=qparams)

    def hard_swish(self, x, prefix="hard_swish") -> QTensor:
        """HARD_SWISH x * relu6(x + 3) / 6 with a calibrated output scale."""
        return self._unary(
            "HARD_SWISH", lambda v: v * np.clip(v + 3.0, 0.0, 6.0) / 6.0, x, prefix
        )

    def tanh(self, x, prefix="tanh") -> QTensor:
        """TANH; TFLite fixes the output at scale 1/128 (int8) or 2^-15 (int16), zero point 0."""
        return self._unary("TANH", np.tanh, x, prefix, qparams=(1.0 / 32768 if x.dtype == "int16" else 1.0 / 128, 0))

    def elu(self, x, prefix="elu") -> QTensor:
        """ELU (exp(x) - 1 below zero) with a calibrated output scale."""
        return self._unary("ELU", lambda v: np.where(v < 0, np.expm1(np.minimum(v, 0)), v), x, prefix)

    def batch_matmul(self, a, b, adj_x=False, adj_y=False, prefix="batch_matmul") -> QTensor:
        """BATCH_MATMUL of two activations (batch axes broadcast), calibrated output scale."""
        av = np.swapaxes(a.values, -1, -2) if adj_x else a.values
        bv = np.swapaxes(b.values, -1, -2) if adj_y else b.values
        rank = max(len(a.shape), len(b.shape))
        av = av.reshape((self.samples,) + (1,) * (rank - len(a.shape)) + av.shape[1:])
        bv = bv.reshape((self.samples,) + (1,) * (rank - len(b.shape)) + bv.shape[1:])
        y = np.matmul(av, bv)
        out = self._emit_act(prefix, y, y.shape[1:], dtype=a.dtype)
        self.writer.op("BATCH_MATMUL", [a.index, b.index], [out.index], adj_x=adj_x, adj_y=adj_y)
        return out

    def prelu(self, x, alpha, prefix="prelu") -> QTensor:
        """PRELU with a constant ``alpha`` (broadcast against x; quantized on its own)."""
        alpha = np.asarray(alpha, dtype=np.float64)
        a = self.constant(alpha, name=prefix + "_alpha")
        av = a.values[0]
        y = np.where(x.values >= 0, x.values, x.values * av)
        out = self._emit_act(prefix, y, x.shape, dtype=x.dtype)
        self.writer.op("PRELU", [x.index, a.index], [out.index])
        return out

    def mirror_pad(self, x, paddings, mode="REFLECT", prefix="mirror_pad") -> QTensor:
        """MIRROR_PAD (REFLECT or SYMMETRIC); quantization unchanged."""
        paddings = np.asarray(paddings, dtype=np.int32).reshape(len(x.shape), 2)
        y = np.pad(x.values, [(0, 0)] + [tuple(p) for p in paddings], mode=mode.lower())
        pidx = self.writer.tensor(self._name(prefix + "_paddings"), paddings.shape, dtype="int32", data=paddings)
        out = self._same_q(x, y, prefix)
        self.writer.op("MIRROR_PAD", [x.index, pidx], [out.index], mode={"REFLECT": 0, "SYMMETRIC": 1}[mode])
        return out

    def abs(self, x, prefix="abs") -> QTensor:  # noqa: A003 - the operator's name
        """ABS with a calibrated output scale."""
        return self._unary("ABS", np.abs, x, prefix)

    def rsqrt(self, x, prefix="rsqrt") -> QTensor:
        """RSQRT; TFLM needs inputs at or above the zero point (x >= 0)."""
        return self._unary("RSQRT", lambda v: 1.0 / np.sqrt(np.maximum(v, 1e-3)), x, prefix)

    def leaky_relu(self, x, alpha=0.2, prefix="leaky_relu") -> QTensor:
        """LEAKY_RELU with a calibrated output scale."""
        return self._unary("LEAKY_RELU", lambda v: np.where(v >= 0, v, alpha * v), x, prefix, alpha=alpha)

    def softmax(self, x, beta=1.0, out_dtype=None, prefix="softmax") -> QTensor:
        """SOFTMAX over the last axis; TFLite fixes the output at 1/256, -128 (int8),
        1/32768, 0 (int16) or, for an int8 input with ``out_dtype="int16"``, 1/65536, -32768."""

        def fn(v):
            z = beta * (v - v.max(axis=-1, keepdims=True))
            e = np.exp(z)
            return e / e.sum(axis=-1, keepdims=True)

        if out_dtype == "int16" and x.dtype == "int8":
            out = self._emit_act(prefix, fn(x.values), x.shape, qparams=(1.0 / 65536, -32768), dtype="int16")
            self.writer.op("SOFTMAX", [x.index], [out.index], beta=beta)
            return out
        qparams = (1.0 / 32768, 0) if x.dtype == "int16" else (1.0 / 256, -128)
        return self._unary("SOFTMAX", fn, x, prefix, qparams=qparams, beta=beta)

    def l2_normalization(self, x, prefix="l2_norm") -> QTensor:
        """L2_NORMALIZATION over the last axis; TFLM writes int8 at scale 1/128, zero point 0."""
        def fn(v):
            return v / np.sqrt(np.maximum((v * v).sum(axis=-1, keepdims=True), 1e-12))

        return self._unary("L2_NORMALIZATION", fn, x, prefix, qparams=(1.0 / 128, 0))

    def resize_bilinear(self, x, size, align_corners=False, half_pixel_centers=False,
                        prefix="resize_bilinear") -> QTensor:
        """RESIZE_BILINEAR to ``size``; TFLM interpolates raw values, so the output keeps x's quantization."""
        oh, ow = _pair(size)
        _, h, w, _ = x.shape

        def source(n_out, n_in):
            if align_corners and n_out > 1:
                scale = (n_in - 1) / (n_out - 1)
            else:
                scale = n_in / n_out
            pos = (np.arange(n_out) + (0.5 if half_pixel_centers else 0.0)) * scale - (
                0.5 if half_pixel_centers else 0.0)
            pos = np.clip(pos, 0, n_in - 1)
            lo = np.floor(pos).astype(int)
            return lo, np.minimum(lo + 1, n_in - 1), pos - lo

        y0, y1, fy = source(oh, h)
        x0, x1, fx = source(ow, w)
        v = x.values
        top = v[:, :, y0][:, :, :, x0] * (1 - fx)[:, None] + v[:, :, y0][:, :, :, x1] * fx[:, None]
        bottom = v[:, :, y1][:, :, :, x0] * (1 - fx)[:, None] + v[:, :, y1][:, :, :, x1] * fx[:, None]
        y = top * (1 - fy)[:, None, None] + bottom * fy[:, None, None]
        out = self._emit_act(prefix, y, (x.shape[0], oh, ow, x.shape[3]), qparams=(x.scale, x.zero_point),
                             dtype=x.dtype)
        sidx = self._int32(prefix + "_size", [oh, ow])
        self.writer.op("RESIZE_BILINEAR", [x.index, sidx], [out.index], align_corners=align_corners,
                       half_pixel_centers=half_pixel_centers)
        return out

    def broadcast_to(self, x, shape, prefix="broadcast_to") -> QTensor:
        """BROADCAST_TO a constant shape; quantization unchanged (raw copy)."""
        shape = tuple(int(d) for d in shape)
        y = np.broadcast_to(x.values.reshape((self.samples,) + (1,) * (len(shape) - len(x.shape)) + x.shape),
                            (self.samples,) + shape)
        sidx = self._int32(prefix + "_shape", list(shape))
        out = self._same_q(x, y, prefix)
        self.writer.op("BROADCAST_TO", [x.index, sidx], [out.index])
        return out

    def cumsum(self, x, axis=-1, exclusive=False, reverse=False, prefix="cumsum") -> QTensor:
        """CUMSUM along ``axis`` (a constant int32), calibrated output."""
        ax = int(axis) % len(x.shape) + 1
        v = np.flip(x.values, ax) if reverse else x.values
        y = np.cumsum(v, axis=ax) - (v if exclusive else 0)
        y = np.flip(y, ax) if reverse else y
        aidx = self._int32(prefix + "_axis", [int(axis) % len(x.shape)], shape=[])
        out = self._emit_act(prefix, y, x.shape, dtype=x.dtype)
        self.writer.op("CUMSUM", [x.index, aidx], [out.index], exclusive=exclusive, reverse=reverse)
        return out

    def gather_nd(self, x, indices, prefix="gather_nd") -> QTensor:
        """GATHER_ND with constant int32 ``indices`` [..., depth]; quantization unchanged."""
        idx = np.asarray(indices, np.int32)
        depth = idx.shape[-1]
        flat = idx.reshape(-1, depth)
        y = np.stack([x.values[(slice(None),) + tuple(t)] for t in flat], axis=1)
        y = y.reshape((self.samples,) + idx.shape[:-1] + x.shape[depth:])
        iidx = self._int32(prefix + "_indices", idx)
        out = self._same_q(x, y, prefix)
        self.writer.op("GATHER_ND", [x.index, iidx], [out.index])
        return out

    def fill(self, shape, value, like, prefix="fill") -> QTensor:
        """FILL of a constant: ``value`` quantized like ``like`` (a graph input that
        makes the output a tensor of the graph)."""
        q = int(quantize(value, like.scale, like.zero_point, like.dtype))
        didx = self._int32(prefix + "_dims", list(shape))
        vidx = self.writer.tensor(self._name(prefix + "_value"), [], dtype=like.dtype,
                                  data=np.array(q, _NP[like.dtype]), scale=like.scale, zero_point=like.zero_point)
        y = np.full((self.samples,) + tuple(shape), (q - like.zero_point) * like.scale)
        out = self._emit_act(prefix, y, tuple(shape), qparams=(like.scale, like.zero_point), dtype=like.dtype)
        self.writer.op("FILL", [didx, vidx], [out.index])
        return out

    def shape(self, x, prefix="shape") -> QTensor:
        """SHAPE of ``x``: its dimensions as an int32 tensor."""
        dims = np.array(x.shape, np.int32)
        idx = self.writer.tensor(self._name(prefix), [len(dims)], dtype="int32")
        out = QTensor(idx, (len(dims),), "int32", None, None,
                      np.broadcast_to(dims, (self.samples, len(dims))).astype(np.float64))
        self.writer.op("SHAPE", [x.index], [out.index], out_type=2)
        return out

    def reshape_keeping_batch(self, x, tail, prefix="flatten") -> QTensor:
        """RESHAPE to ``[batch] + tail`` where the batch comes from the graph, as the
        converter writes it for a dynamic batch: SHAPE, STRIDED_SLICE of element 0,
        PACK with the constant tail, RESHAPE to the packed int32 shape."""
        shape = self.shape(x, prefix + "_shape")
        i32 = lambda n, v: self._int32(f"{prefix}_{n}", v)  # noqa: E731
        batch = self.writer.tensor(self._name(prefix + "_batch"), [], dtype="int32")
        self.writer.op("STRIDED_SLICE", [shape.index, i32("begin", [0]), i32("end", [1]), i32("strides", [1])],
                       [batch], shrink_axis_mask=1)
        dims = [batch] + [self.writer.tensor(self._name(f"{prefix}_dim"), [], dtype="int32",
                                             data=np.array(int(d), np.int32)) for d in tail]
        packed = self.writer.tensor(self._name(prefix + "_packed"), [len(dims)], dtype="int32")
        self.writer.op("PACK", dims, [packed], values_count=len(dims), axis=0)
        out = self._same_q(x, x.values.reshape((self.samples, x.shape[0]) + tuple(int(d) for d in tail)), prefix)
        self.writer.op("RESHAPE", [x.index, packed], [out.index])
        return out

    def zeros_like(self, x, prefix="zeros_like") -> QTensor:
        """ZEROS_LIKE (TFLM writes raw 0, not the zero point); quantization of x."""
        out = self._same_q(x, np.zeros_like(x.values), prefix)
        self.writer.op("ZEROS_LIKE", [x.index], [out.index])
        return out

    def add_n(self, xs, prefix="add_n") -> QTensor:
        """ADD_N of tensors sharing one quantization (TFLM requires it), calibrated output."""
        y = sum(t.values for t in xs)
        out = self._emit_act(prefix, y, xs[0].shape, dtype=xs[0].dtype)
        self.writer.op("ADD_N", [t.index for t in xs], [out.index])
        return out

    def space_to_batch(self, x, block, paddings=((0, 0), (0, 0)), prefix="space_to_batch") -> QTensor:
        """SPACE_TO_BATCH_ND of an NHWC tensor (TFLM leaves its padding uninitialised:
        bit-exact comparisons use zero paddings)."""
        (bh, bw), pads = _pair(block), np.asarray(paddings, np.int32).reshape(2, 2)
        v = np.pad(x.values, [(0, 0), (0, 0), tuple(pads[0]), tuple(pads[1]), (0, 0)])
        s, b, h, w, c = v.shape
        y = v.reshape(s, b, h // bh, bh, w // bw, bw, c).transpose(0, 3, 5, 1, 2, 4, 6)
        y = y.reshape(s, bh * bw * b, h // bh, w // bw, c)
        bidx, pidx = self._int32(prefix + "_block", [bh, bw]), self._int32(prefix + "_paddings", pads)
        out = self._same_q(x, y, prefix)
        self.writer.op("SPACE_TO_BATCH_ND", [x.index, bidx, pidx], [out.index])
        return out

    def batch_to_space(self, x, block, crops=((0, 0), (0, 0)), prefix="batch_to_space") -> QTensor:
        """BATCH_TO_SPACE_ND of an NHWC tensor with crops."""
        (bh, bw), cr = _pair(block), np.asarray(crops, np.int32).reshape(2, 2)
        s, b, h, w, c = (self.samples,) + x.shape
        n = b // (bh * bw)
        y = x.values.reshape(s, bh, bw, n, h, w, c).transpose(0, 3, 4, 1, 5, 2, 6).reshape(s, n, h * bh, w * bw, c)
        y = y[:, :, cr[0][0]:h * bh - cr[0][1], cr[1][0]:w * bw - cr[1][1], :]
        bidx, cidx = self._int32(prefix + "_block", [bh, bw]), self._int32(prefix + "_crops", cr)
        out = self._same_q(x, y, prefix)
        self.writer.op("BATCH_TO_SPACE_ND", [x.index, bidx, cidx], [out.index])
        return out

    def compare(self, opname, a, b, prefix=None) -> QTensor:
        """EQUAL, NOT_EQUAL, GREATER, GREATER_EQUAL, LESS or LESS_EQUAL: a bool tensor."""
        fn = {"EQUAL": np.equal, "NOT_EQUAL": np.not_equal, "GREATER": np.greater,
              "GREATER_EQUAL": np.greater_equal, "LESS": np.less, "LESS_EQUAL": np.less_equal}[opname]
        rank = max(len(a.shape), len(b.shape))
        av = a.values.reshape((self.samples,) + (1,) * (rank - len(a.shape)) + a.shape)
        bv = b.values.reshape((self.samples,) + (1,) * (rank - len(b.shape)) + b.shape)
        y = fn(av, bv)
        idx = self.writer.tensor(self._name(prefix or opname.lower()), y.shape[1:], dtype="bool")
        out = QTensor(idx, y.shape[1:], "bool", None, None, y.astype(np.float64))
        self.writer.op(opname, [a.index, b.index], [out.index])
        return out

    def select(self, condition, x, y, prefix="select") -> QTensor:
        """SELECT_V2 (broadcasting): x where the bool condition holds, else y; x, y and
        the output share x's quantization (y is requantized to it first when needed)."""
        if (y.scale, y.zero_point) != (x.scale, x.zero_point):
            y = self.quantize(y, qparams=(x.scale, x.zero_point), dtype=x.dtype)
        rank = max(len(t.shape) for t in (condition, x, y))
        vals = [t.values.reshape((self.samples,) + (1,) * (rank - len(t.shape)) + t.shape)
                for t in (condition, x, y)]
        out_v = np.where(vals[0] > 0.5, vals[1], vals[2])
        out = self._emit_act(prefix, out_v, out_v.shape[1:], qparams=(x.scale, x.zero_point), dtype=x.dtype)
        self.writer.op("SELECT_V2", [condition.index, x.index, y.index], [out.index])
        return out

    def arg_max(self, x, axis=-1, minimum=False, prefix=None) -> QTensor:
        """ARG_MAX (or ARG_MIN) over ``axis``: int32 indices."""
        opname = "ARG_MIN" if minimum else "ARG_MAX"
        ax = int(axis) % len(x.shape)
        y = (np.argmin if minimum else np.argmax)(x.values, axis=ax + 1)
        aidx = self._int32((prefix or opname.lower()) + "_axis", [ax], shape=[1])
        idx = self.writer.tensor(self._name(prefix or opname.lower()), y.shape[1:], dtype="int32")
        out = QTensor(idx, y.shape[1:], "int32", None, None, y.astype(np.float64))
        self.writer.op(opname, [x.index, aidx], [out.index], output_type=2)
        return out

    def cast(self, x, dtype, prefix="cast") -> QTensor:
        """CAST of the raw integer values to ``dtype`` (int8, int16 or int32)."""
        raw = np.round(x.values / x.scale + x.zero_point) if x.scale is not None else x.values
        idx = self.writer.tensor(self._name(prefix), x.shape, dtype=dtype)
        out = QTensor(idx, x.shape, dtype, None, None, raw)
        codes = {"int8": 9, "int16": 7, "int32": 2}
        self.writer.op("CAST", [x.index], [out.index], in_data_type=codes[x.dtype], out_data_type=codes[dtype])
        return out

    def log_softmax(self, x, prefix="log_softmax") -> QTensor:
        """LOG_SOFTMAX over the last axis; TFLite fixes the int8 output at 16/256, 127."""

        def fn(v):
            z = v - v.max(axis=-1, keepdims=True)
            return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))

        return self._unary("LOG_SOFTMAX", fn, x, prefix, qparams=(16.0 / 256, 127))

    # ------------------------------------------------------------- pooling
    def _pool(self, opname, kind, x, filt, stride, padding, activation, prefix):
        f, s = _pair(filt), _pair(stride)
        y = self._per_sample(lambda v: pool2d_ref(v, kind, f, s, padding), x)
        y = _apply_activation(y, activation)
        # int8 pooling kernels do not rescale, so the output shares the input's grid.
        out = self._emit_act(
            prefix, y, (x.shape[0],) + y.shape[1:], qparams=(x.scale, x.zero_point),
            dtype=x.dtype,
        )
        self.writer.op(
            opname,
            [x.index],
            [out.index],
            padding=padding,
            stride=s,
            filter=f,
            fused_activation=activation,
        )
        return out

    def avg_pool(self, x, filter=(2, 2), stride=(2, 2), padding="VALID", activation="NONE",
                 prefix="avgpool") -> QTensor:  # noqa: A002 - mirrors the TFLite option name
        """AVERAGE_POOL_2D; output quantization equals the input's."""
        return self._pool("AVERAGE_POOL_2D", "avg", x, filter, stride, padding, activation, prefix)

    def max_pool(self, x, filter=(2, 2), stride=(2, 2), padding="VALID", activation="NONE",
                 prefix="maxpool") -> QTensor:  # noqa: A002
        """MAX_POOL_2D; output quantization equals the input's."""
        return self._pool("MAX_POOL_2D", "max", x, filter, stride, padding, activation, prefix)

    def mean(self, x, axis=(1, 2), keep_dims=True, prefix="mean") -> QTensor:
        """MEAN over ``axis`` (given as a constant int32 tensor) with calibrated output."""
        return self._reduce("MEAN", np.mean, x, axis, keep_dims, prefix)

    def sum(self, x, axis=(1, 2), keep_dims=True, prefix="sum") -> QTensor:  # noqa: A003 - the operator's name
        """SUM over ``axis`` with calibrated output."""
        return self._reduce("SUM", np.sum, x, axis, keep_dims, prefix)

    def reduce_max(self, x, axis=(1, 2), keep_dims=True, prefix="reduce_max") -> QTensor:
        """REDUCE_MAX over ``axis``; the output keeps x's quantization (TFLM requires it)."""
        return self._reduce("REDUCE_MAX", np.max, x, axis, keep_dims, prefix, same_q=True)

    def reduce_min(self, x, axis=(1, 2), keep_dims=True, prefix="reduce_min") -> QTensor:
        """REDUCE_MIN over ``axis``; the output keeps x's quantization."""
        return self._reduce("REDUCE_MIN", np.min, x, axis, keep_dims, prefix, same_q=True)

    def _reduce(self, opname, fn, x, axis, keep_dims, prefix, same_q=False):
        axis = [int(a) % len(x.shape) for a in np.atleast_1d(axis)]
        y = fn(x.values, axis=tuple(a + 1 for a in axis), keepdims=keep_dims)
        aidx = self.writer.tensor(
            self._name(prefix + "_axis"), [len(axis)], dtype="int32", data=np.array(axis)
        )
        qparams = (x.scale, x.zero_point) if same_q else None
        out = self._emit_act(prefix, y, y.shape[1:], qparams=qparams, dtype=x.dtype)
        self.writer.op(opname, [x.index, aidx], [out.index], keep_dims=keep_dims)
        return out

    # ------------------------------------------------------------ data movement
    def _same_q(self, x, y, prefix):
        return self._emit_act(prefix, y, y.shape[1:], qparams=(x.scale, x.zero_point), dtype=x.dtype)

    def pad(self, x, paddings, prefix="pad") -> QTensor:
        """PAD with zeros (the zero point in int8); quantization is unchanged."""
        paddings = np.asarray(paddings, dtype=np.int32).reshape(len(x.shape), 2)
        y = np.pad(x.values, [(0, 0)] + [tuple(p) for p in paddings])
        pidx = self.writer.tensor(
            self._name(prefix + "_paddings"), paddings.shape, dtype="int32", data=paddings
        )
        out = self._same_q(x, y, prefix)
        self.writer.op("PAD", [x.index, pidx], [out.index])
        return out

    def pad_v2(self, x, paddings, value, prefix="padv2") -> QTensor:
        """PADV2 with a constant fill ``value`` (a real number, quantized like x)."""
        paddings = np.asarray(paddings, dtype=np.int32).reshape(len(x.shape), 2)
        q = int(quantize(value, x.scale, x.zero_point, x.dtype))
        y = np.pad(x.values, [(0, 0)] + [tuple(p) for p in paddings], constant_values=(q - x.zero_point) * x.scale)
        pidx = self.writer.tensor(self._name(prefix + "_paddings"), paddings.shape, dtype="int32", data=paddings)
        vidx = self.writer.tensor(self._name(prefix + "_value"), [], dtype=x.dtype, data=np.array(q, _NP[x.dtype]),
                                  scale=x.scale, zero_point=x.zero_point)
        out = self._same_q(x, y, prefix)
        self.writer.op("PADV2", [x.index, pidx, vidx], [out.index])
        return out

    def _int32(self, prefix, values, shape=None):
        values = np.asarray(values, dtype=np.int32)
        return self.writer.tensor(self._name(prefix), list(values.shape if shape is None else shape), dtype="int32",
                                  data=values)

    def space_to_depth(self, x, block, prefix="space_to_depth") -> QTensor:
        """SPACE_TO_DEPTH of an NHWC tensor by ``block``."""
        n, h, w, c = x.shape
        v = x.values.reshape(self.samples, n, h // block, block, w // block, block, c)
        y = v.transpose(0, 1, 2, 4, 3, 5, 6).reshape(self.samples, n, h // block, w // block, block * block * c)
        out = self._same_q(x, y, prefix)
        self.writer.op("SPACE_TO_DEPTH", [x.index], [out.index], block_size=block)
        return out

    def depth_to_space(self, x, block, prefix="depth_to_space") -> QTensor:
        """DEPTH_TO_SPACE of an NHWC tensor by ``block``."""
        n, h, w, c = x.shape
        v = x.values.reshape(self.samples, n, h, w, block, block, c // (block * block))
        y = v.transpose(0, 1, 2, 4, 3, 5, 6).reshape(self.samples, n, h * block, w * block, c // (block * block))
        out = self._same_q(x, y, prefix)
        self.writer.op("DEPTH_TO_SPACE", [x.index], [out.index], block_size=block)
        return out

    def strided_slice(self, x, begin, end, strides, begin_mask=0, end_mask=0, shrink_axis_mask=0,
                      prefix="strided_slice") -> QTensor:
        """STRIDED_SLICE with constant begin/end/strides and the begin/end/shrink masks."""
        index = []
        for d, (b, e, s) in enumerate(zip(begin, end, strides)):
            if shrink_axis_mask >> d & 1:
                index.append(int(b))
                continue
            index.append(slice(None if begin_mask >> d & 1 else int(b), None if end_mask >> d & 1 else int(e), int(s)))
        y = x.values[(slice(None),) + tuple(index)]
        out = self._same_q(x, y, prefix)
        n = len(x.shape)
        self.writer.op("STRIDED_SLICE", [x.index, self._int32(prefix + "_begin", begin),
                                         self._int32(prefix + "_end", end), self._int32(prefix + "_strides", strides)],
                       [out.index], begin_mask=begin_mask, end_mask=end_mask, shrink_axis_mask=shrink_axis_mask)
        assert len(begin) == n
        return out

    def slice(self, x, begin, size, prefix="slice") -> QTensor:
        """SLICE: ``size[d]`` elements from ``begin[d]`` (-1: to the end)."""
        index = tuple(slice(b, None if z == -1 else b + z) for b, z in zip(begin, size))
        y = x.values[(slice(None),) + index]
        out = self._same_q(x, y, prefix)
        self.writer.op("SLICE", [x.index, self._int32(prefix + "_begin", begin), self._int32(prefix + "_size", size)],
                       [out.index])
        return out

    def split(self, x, num, axis, prefix="split") -> List[QTensor]:
        """SPLIT into ``num`` equal parts along ``axis`` (a constant int32 scalar, the first input)."""
        ys = np.split(x.values, num, axis=int(axis) % len(x.shape) + 1)
        outs = [self._same_q(x, y, f"{prefix}_{k}") for k, y in enumerate(ys)]
        self.writer.op("SPLIT", [self._int32(prefix + "_axis", axis, []), x.index], [o.index for o in outs],
                       num_splits=num)
        return outs

    def split_v(self, x, sizes, axis, prefix="split_v") -> List[QTensor]:
        """SPLIT_V into parts of ``sizes`` along ``axis``."""
        ax = int(axis) % len(x.shape)
        cuts = np.cumsum(sizes)[:-1]
        ys = np.split(x.values, cuts, axis=ax + 1)
        outs = [self._same_q(x, y, f"{prefix}_{k}") for k, y in enumerate(ys)]
        self.writer.op("SPLIT_V", [x.index, self._int32(prefix + "_sizes", sizes), self._int32(prefix + "_axis", axis, [])],
                       [o.index for o in outs], num_splits=len(sizes))
        return outs

    def pack(self, xs, axis=0, prefix="pack") -> QTensor:
        """PACK (stack) tensors of one shape and quantization along a new ``axis``."""
        ax = int(axis) % (len(xs[0].shape) + 1)
        y = np.stack([t.values for t in xs], axis=ax + 1)
        out = self._same_q(xs[0], y, prefix)
        self.writer.op("PACK", [t.index for t in xs], [out.index], values_count=len(xs), axis=axis)
        return out

    def unpack(self, x, axis=0, prefix="unpack") -> List[QTensor]:
        """UNPACK (unstack) along ``axis``."""
        ax = int(axis) % len(x.shape)
        ys = [np.take(x.values, k, axis=ax + 1) for k in range(x.shape[ax])]
        outs = [self._same_q(x, y, f"{prefix}_{k}") for k, y in enumerate(ys)]
        self.writer.op("UNPACK", [x.index], [o.index for o in outs], num=x.shape[ax], axis=axis)
        return outs

    def expand_dims(self, x, axis, prefix="expand_dims") -> QTensor:
        """EXPAND_DIMS: a new axis of size 1 at ``axis`` (a constant int32 scalar)."""
        ax = int(axis) % (len(x.shape) + 1)
        y = np.expand_dims(x.values, ax + 1)
        out = self._same_q(x, y, prefix)
        self.writer.op("EXPAND_DIMS", [x.index, self._int32(prefix + "_axis", axis, [])], [out.index])
        return out

    def gather(self, x, indices, axis=0, prefix="gather") -> QTensor:
        """GATHER with constant int32 ``indices`` along ``axis``."""
        indices = np.asarray(indices, dtype=np.int32)
        ax = int(axis) % len(x.shape)
        y = np.take(x.values, indices, axis=ax + 1)
        out = self._same_q(x, y, prefix)
        self.writer.op("GATHER", [x.index, self._int32(prefix + "_indices", indices)], [out.index], axis=axis)
        return out

    def reshape(self, x, new_shape, shape_as_tensor=True, prefix="reshape") -> QTensor:
        """RESHAPE (shape given both as an int32 tensor and in the options, like the converter)."""
        new_shape = [int(d) for d in new_shape]
        y = x.values.reshape((self.samples,) + tuple(new_shape))
        out = self._same_q(x, y, prefix)
        inputs = [x.index]
        if shape_as_tensor:
            inputs.append(
                self.writer.tensor(
                    self._name(prefix + "_shape"),
                    [len(new_shape)],
                    dtype="int32",
                    data=np.array(new_shape),
                )
            )
        self.writer.op("RESHAPE", inputs, [out.index], new_shape=new_shape)
        return out

    def squeeze(self, x, squeeze_dims, prefix="squeeze") -> QTensor:
        """SQUEEZE the listed size-1 dims (all of them when ``squeeze_dims`` is empty)."""
        dims = [int(d) for d in squeeze_dims]
        axes = [d % len(x.shape) for d in dims] or [i for i, n in enumerate(x.shape) if n == 1]
        y = np.squeeze(x.values, axis=tuple(a + 1 for a in axes))
        out = self._same_q(x, y, prefix)
        self.writer.op("SQUEEZE", [x.index], [out.index], squeeze_dims=dims)
        return out

    def transpose(self, x, perm, prefix="transpose") -> QTensor:
        """TRANSPOSE with a constant int32 permutation tensor."""
        perm = [int(p) for p in perm]
        y = np.transpose(x.values, [0] + [p + 1 for p in perm])
        pidx = self.writer.tensor(
            self._name(prefix + "_perm"), [len(perm)], dtype="int32", data=np.array(perm)
        )
        out = self._same_q(x, y, prefix)
        self.writer.op("TRANSPOSE", [x.index, pidx], [out.index])
        return out

    def concat(self, xs, axis=-1, activation="NONE", prefix="concat") -> QTensor:
        """CONCATENATION; shares the inputs' quantization when they all agree."""
        rank = len(xs[0].shape)
        ax = int(axis) % rank
        y = _apply_activation(np.concatenate([t.values for t in xs], axis=ax + 1), activation)
        qs = {(t.scale, t.zero_point) for t in xs}
        if len(qs) == 1 and (activation or "NONE").upper() == "NONE":
            out = self._emit_act(prefix, y, y.shape[1:], qparams=qs.pop(), dtype=xs[0].dtype)
        else:
            out = self._emit_act(prefix, y, y.shape[1:], activation, dtype=xs[0].dtype)
        self.writer.op(
            "CONCATENATION", [t.index for t in xs], [out.index], axis=axis,
            fused_activation=activation,
        )
        return out

    def resize_nearest(self, x, size, align_corners=False, half_pixel_centers=False,
                       prefix="resize") -> QTensor:
        """RESIZE_NEAREST_NEIGHBOR to ``size`` (constant int32 tensor); quantization unchanged."""
        size = _pair(size)
        y = self._per_sample(
            lambda v: resize_nearest_ref(v, size, align_corners, half_pixel_centers), x
        )
        sidx = self.writer.tensor(
            self._name(prefix + "_size"), [2], dtype="int32", data=np.array(size)
        )
        out = self._emit_act(
            prefix, y, (x.shape[0],) + y.shape[1:], qparams=(x.scale, x.zero_point),
            dtype=x.dtype,
        )
        self.writer.op(
            "RESIZE_NEAREST_NEIGHBOR",
            [x.index, sidx],
            [out.index],
            align_corners=align_corners,
            half_pixel_centers=half_pixel_centers,
        )
        return out

    # ------------------------------------------------------------ (de)quantize
    def quantize(self, x, prefix="quantize", qparams=None, dtype="int8") -> QTensor:
        """QUANTIZE float32 -> int8/int16, or requantize int8/int16 -> ``dtype`` to new ``qparams``."""
        out = self._emit_act(prefix, x.values, x.shape, qparams=qparams, dtype=dtype)
        self.writer.op("QUANTIZE", [x.index], [out.index])
        return out

    def dequantize(self, x, prefix="dequantize") -> QTensor:
        """DEQUANTIZE int8/int16 -> float32."""
        out = self._emit_act(prefix, x.values, x.shape, dtype="float32")
        self.writer.op("DEQUANTIZE", [x.index], [out.index])
        return out


# ====================================================================== models
def conv2d_model(input_shape=(1, 9, 9, 3), out_channels=5, kernel=(3, 3), stride=(2, 2),
                 dilation=(1, 1), padding="SAME", activation="RELU6", per_channel=True,
                 use_bias=True, seed=0) -> bytes:
    """Single CONV_2D int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    y = g.conv2d(x, out_channels, kernel, stride, dilation, padding, activation, per_channel,
                 use_bias)
    return g.finish(y)


def depthwise_conv2d_model(input_shape=(1, 9, 9, 4), kernel=(3, 3), stride=(1, 1),
                           dilation=(1, 1), padding="SAME", depth_multiplier=2,
                           activation="RELU6", per_channel=True, use_bias=True,
                           seed=0) -> bytes:
    """Single DEPTHWISE_CONV_2D int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    y = g.depthwise_conv2d(x, kernel, stride, dilation, padding, depth_multiplier, activation,
                           per_channel, use_bias)
    return g.finish(y)


def fully_connected_model(input_shape=(1, 16), units=10, activation="NONE", per_channel=False,
                          use_bias=True, keep_num_dims=False, seed=0) -> bytes:
    """Single FULLY_CONNECTED int8 model (per-tensor weights by default, like the converter)."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    y = g.fully_connected(x, units, activation, per_channel, use_bias, keep_num_dims)
    return g.finish(y)


def _binary_model(kind, shape_a, shape_b, range_a, range_b, activation, const_b, seed):
    g = QuantizedGraph(seed)
    a = g.input(shape_a, *range_a, name="input_a")
    if const_b:
        same = (a.scale, a.zero_point) if kind in ("maximum", "minimum") else None
        b = g.constant(g.rng.uniform(range_b[0], range_b[1], size=shape_b), name="rhs", qparams=same)
    else:
        b = g.input(shape_b, *range_b, name="input_b")
    if kind in ("add", "mul", "sub"):
        y = getattr(g, kind)(a, b, activation)
    else:
        y = getattr(g, kind)(a, b)
    return g.finish(y)


def add_model(shape_a=(1, 4, 4, 8), shape_b=(1, 4, 4, 8), range_a=(-1.0, 1.0),
              range_b=(-3.0, 2.0), activation="NONE", const_b=False, seed=0) -> bytes:
    """Single ADD; shapes may broadcast and the two inputs have different scales."""
    return _binary_model("add", shape_a, shape_b, range_a, range_b, activation, const_b, seed)


def mul_model(shape_a=(1, 4, 4, 8), shape_b=(1, 4, 4, 8), range_a=(-1.0, 1.0),
              range_b=(-3.0, 2.0), activation="NONE", const_b=False, seed=0) -> bytes:
    """Single MUL; shapes may broadcast and the two inputs have different scales."""
    return _binary_model("mul", shape_a, shape_b, range_a, range_b, activation, const_b, seed)


def sub_model(shape_a=(1, 4, 4, 8), shape_b=(1, 4, 4, 8), range_a=(-1.0, 1.0),
              range_b=(-3.0, 2.0), activation="NONE", const_b=False, seed=0) -> bytes:
    """Single SUB; shapes may broadcast and the two inputs have different scales."""
    return _binary_model("sub", shape_a, shape_b, range_a, range_b, activation, const_b, seed)


def squared_difference_model(shape_a=(1, 4, 4, 8), shape_b=(1, 4, 4, 8), range_a=(-1.0, 1.0),
                             range_b=(-3.0, 2.0), const_b=False, seed=0) -> bytes:
    """Single SQUARED_DIFFERENCE; shapes may broadcast and the two inputs have different scales."""
    return _binary_model("squared_difference", shape_a, shape_b, range_a, range_b, None, const_b, seed)


def maximum_model(shape_a=(1, 4, 4, 8), shape_b=(1, 4, 4, 8), const_b=False, minimum=False, seed=0) -> bytes:
    """Single MAXIMUM (or MINIMUM); one quantization for inputs and output, as the converter gives."""
    return _binary_model("minimum" if minimum else "maximum", shape_a, shape_b, (-1.0, 1.0), (-1.0, 1.0), None,
                         const_b, seed)


def unary_math_model(seed=0) -> bytes:
    """ABS, RSQRT, LEAKY_RELU, TANH, ELU, MIRROR_PAD and PRELU in one int8 model (RSQRT on an input >= 0)."""
    g = QuantizedGraph(seed)
    x = g.input((1, 5, 6, 4), 0.0, 3.0)
    y = g.conv2d(x, 4, (1, 1), (1, 1))
    return g.finish([g.rsqrt(x), g.leaky_relu(g.abs(y), 0.25), g.tanh(y), g.elu(y),
                     g.prelu(g.mirror_pad(y, ((0, 0), (1, 2), (2, 1), (0, 0))), [[[0.1, -0.2, 0.3, 0.7]]])])


def batch_matmul_model(seed=0) -> bytes:
    """Attention-style scores: BATCH_MATMUL of two projections with adj_y, then SOFTMAX."""
    g = QuantizedGraph(seed)
    x = g.input((1, 4, 8, 16))
    q = g.conv2d(x, 16, (1, 1), (1, 1), prefix="query")
    k = g.conv2d(x, 16, (1, 1), (1, 1), prefix="key")
    return g.finish(g.softmax(g.batch_matmul(q, k, adj_y=True, prefix="scores")))


def reduction_model(seed=0) -> bytes:
    """SUM, REDUCE_MAX and REDUCE_MIN in one int8 model."""
    g = QuantizedGraph(seed)
    x = g.input((1, 6, 5, 4))
    return g.finish([g.sum(x, (1, 2)), g.reduce_max(x, 3, keep_dims=False), g.reduce_min(x, 1)])


def int16_audio_model(seed=0) -> bytes:
    """A 16x8 audio-style network (int16 activations, int8 weights, int64 bias):
    1-D convolutions over time, a residual ADD, SUB, MUL, STRIDED_SLICE, PAD,
    LEAKY_RELU, pooling, TRANSPOSE_CONV, MEAN, FULLY_CONNECTED, SOFTMAX, LOGISTIC
    and TANH."""
    g = QuantizedGraph(seed)
    x = g.input((1, 24, 1, 8), dtype="int16")
    y = g.conv2d(x, 12, kernel=(5, 1), padding="SAME", activation="RELU")
    d = g.depthwise_conv2d(y, kernel=(3, 1), dilation=(2, 1), activation="RELU6")
    y = g.add(y, g.conv2d(d, 12, kernel=(1, 1)))
    y = g.leaky_relu(g.pad(g.strided_slice(y, [0, 1, 0, 0], [1, 23, 1, 12], [1, 2, 1, 1]),
                           ((0, 0), (1, 1), (0, 0), (0, 0))), 0.1)
    y = g.mul(g.sub(y, g.max_pool(y, (3, 1), (1, 1), "SAME")), g.avg_pool(y, (3, 1), (1, 1), "SAME"))
    y = g.transpose_conv(y, 12, (3, 1), (2, 1), "SAME", activation="RELU")
    v = g.fully_connected(g.reshape(g.mean(y, (1, 2)), (1, 12)), 6)
    return g.finish([g.softmax(v), g.logistic(v), g.tanh(v)])


def mnist_mlp_model(seed=0) -> bytes:
    """An MNIST-style MLP as the TFLM examples train it: a 28x28 image flattened,
    two FULLY_CONNECTED layers and LOG_SOFTMAX over the ten classes."""
    g = QuantizedGraph(seed)
    x = g.input((1, 28, 28, 1), 0.0, 1.0)
    h = g.fully_connected(g.reshape(x, (1, 784)), 64, activation="RELU")
    return g.finish(g.log_softmax(g.fully_connected(h, 10)))


def svdf_kws_model(seed=0) -> bytes:
    """A streaming keyword spotter as TFLM's examples build it: one frame of 40
    filterbank features per invocation, two SVDF layers (int16 state) holding
    the last frames, FULLY_CONNECTED and SOFTMAX over four classes."""
    g = QuantizedGraph(seed)
    x = g.input((1, 40), -1.0, 1.0)
    h = g.svdf(x, 32, 8, rank=1, prefix="svdf_1")
    h = g.svdf(h, 16, 4, rank=2, prefix="svdf_2")
    return g.finish(g.softmax(g.fully_connected(h, 4)))


def streaming_conv_model(frames=5, features=10, channels=4, seed=0, initial=None) -> bytes:
    """A streaming audio network in the converter's stateful form: each invocation
    takes one frame; a resource variable keeps the previous ``frames - 1`` (read,
    concatenated with the new frame along time, the oldest frame sliced off and
    assigned back), a kx1 convolution over the window, a mean and a classifier.
    ``initial`` (a float) makes a CALL_ONCE subgraph assign the buffer's start."""
    g = QuantizedGraph(seed)
    x = g.input((1, 1, features, channels), -1.0, 1.0)
    past = g.read_variable("frames", (1, frames - 1, features, channels), (x.scale, x.zero_point),
                           initial=initial, prefix="past_frames")
    window = g.concat([past, x], axis=1, prefix="window")
    if (window.scale, window.zero_point) != (x.scale, x.zero_point):
        window = g.quantize(window, qparams=(x.scale, x.zero_point), prefix="window_q")
    g.assign_variable("frames", g.strided_slice(window, [0, 1, 0, 0], [1, frames, features, channels],
                                                [1, 1, 1, 1], prefix="kept_frames"))
    h = g.conv2d(window, 8, kernel=(frames, 3), stride=(1, 1), padding="VALID", activation="RELU")
    return g.finish(g.fully_connected(g.reshape(g.mean(h, axis=(1, 2), keep_dims=False), (1, 8)), 3))


def shape_model(seed=0) -> bytes:
    """SHAPE as a model output, and a dynamic batch's flatten (SHAPE, STRIDED_SLICE,
    PACK, RESHAPE) before a classifier."""
    g = QuantizedGraph(seed)
    x = g.input((1, 4, 5, 3), -1.0, 1.0)
    h = g.relu(x)
    return g.finish([g.fully_connected(g.reshape_keeping_batch(h, [60]), 7), g.shape(h, prefix="feature_shape")])


def comparison_model(seed=0) -> bytes:
    """Comparisons (bool outputs), SELECT_V2 on their result, ARG_MAX / ARG_MIN
    (int32 indices) and CAST: the int8 operators whose outputs are not int8."""
    g = QuantizedGraph(seed)
    a = g.input((1, 4, 6, 3), -1.0, 1.0, name="a")
    b = g.input((1, 1, 6, 3), -2.0, 0.5, name="b")
    scores = g.conv2d(a, 5, (1, 1), (1, 1))
    mask = g.compare("GREATER_EQUAL", a, b)
    return g.finish([mask, g.compare("NOT_EQUAL", a, b), g.select(mask, a, b), g.arg_max(scores, -1),
                     g.arg_max(scores, 1, minimum=True), g.cast(scores, "int32")])


def mnist_lstm_model(seed=0) -> bytes:
    """An MNIST LSTM as TFLM's mnist_lstm example builds it: the 28 image rows
    as 28 steps of 28 features, an integer LSTM (int16 cell), the last step's
    hidden state, FULLY_CONNECTED and SOFTMAX over ten classes."""
    g = QuantizedGraph(seed)
    x = g.input((1, 28, 28), 0.0, 1.0)
    h = g.lstm(x, 20)
    last = g.strided_slice(h, [0, 27, 0], [1, 28, 20], [1, 1, 1], shrink_axis_mask=0b010)
    return g.finish(g.softmax(g.fully_connected(last, 10)))


def ds_cnn_1d_model(seed=0, frames=49, features=40, channels=64, blocks=4) -> bytes:
    """A streaming keyword-spotting DS-CNN over time: MFCC frames as [1, frames,
    1, features], a strided 1-D convolution, depthwise-separable blocks of 3x1
    depthwise convolutions (dilated 1, 2, 4, ...) and 1x1 convolutions, average
    pooling over time, FULLY_CONNECTED and SOFTMAX over twelve classes."""
    g = QuantizedGraph(seed)
    x = g.input((1, frames, 1, features))
    y = g.conv2d(x, channels, kernel=(3, 1), stride=(2, 1), activation="RELU", prefix="conv_1d")
    for k in range(blocks):
        y = g.depthwise_conv2d(y, kernel=(3, 1), dilation=(2 ** k, 1), activation="RELU", prefix=f"dw_{k}")
        y = g.conv2d(y, channels, kernel=(1, 1), activation="RELU", prefix=f"pw_{k}")
    y = g.avg_pool(y, (y.shape[1], 1), (y.shape[1], 1), "VALID")
    return g.finish(g.softmax(g.fully_connected(g.reshape(y, (1, channels)), 12)))


def upsampling_model(seed=0) -> bytes:
    """A segmentation-style int8 decoder: strided convolutions down, TRANSPOSE_CONV
    back up with a skip connection (ADD) and a second TRANSPOSE_CONV without bias."""
    g = QuantizedGraph(seed)
    x = g.input((1, 12, 12, 3))
    d1 = g.conv2d(x, 8, stride=(2, 2), activation="RELU")
    d2 = g.conv2d(d1, 16, stride=(2, 2), activation="RELU")
    u1 = g.add(g.transpose_conv(d2, 8, (3, 3), (2, 2), activation="RELU"), d1)
    return g.finish(g.transpose_conv(u1, 2, (4, 4), (2, 2), use_bias="absent"))


def int16_elementwise_model(seed=0) -> bytes:
    """The 16x8 element-wise operators: SQUARED_DIFFERENCE (broadcast), RSQRT of
    its non-negative output, PRELU with an int8 alpha, BATCH_MATMUL of two int16
    activations and SELECT_V2 of int16 values on an int8 GREATER's condition."""
    g = QuantizedGraph(seed)
    a = g.input((1, 6, 8), -2.0, 2.0, dtype="int16", name="a")
    b = g.input((1, 1, 8), -1.0, 3.0, dtype="int16", name="b")
    c = g.input((1, 6, 1), -1.0, 1.0, name="c")
    r = g.rsqrt(g.squared_difference(a, b))
    p = g.prelu(a, np.linspace(-0.5, 1.5, 8))
    m = g.batch_matmul(p, r, adj_y=True)
    condition = g.compare("GREATER", c, g.constant(np.zeros((1, 1, 1)), name="zero"))
    return g.finish([m, g.select(condition, a, b)])


def mixed_int8_int16_model(seed=0) -> bytes:
    """int8 input, an int16 middle (QUANTIZE int8 -> int16 and back) and a
    float output: the mixed graphs of 16x8 models with int8 ends."""
    g = QuantizedGraph(seed)
    x = g.input((1, 8, 8, 3))
    y = g.conv2d(x, 8, stride=(2, 2), activation="RELU")
    z = g.quantize(y, dtype="int16")
    z = g.depthwise_conv2d(z, activation="RELU")
    a, b = g.conv2d(z, 4, kernel=(1, 1)), g.conv2d(z, 4, kernel=(1, 1))
    # 16x8 CONCATENATION inputs share the output's quantization (an int16 requantize first)
    z = g.concat([a, g.quantize(b, qparams=(a.scale, 0), dtype="int16")], axis=-1)
    z = g.quantize(z, dtype="int8")
    return g.finish(g.dequantize(g.add(z, g.conv2d(y, 8, kernel=(1, 1)))))


def int16_extras_model(seed=0) -> bytes:
    """The 16x8 forms TFLM runs besides the common ones: a CONV_2D and a
    FULLY_CONNECTED with int32 bias (summed in int32), int16 RESIZE_NEAREST_NEIGHBOR,
    an int8 SOFTMAX with an int16 output; and an int8 MIRROR_PAD SYMMETRIC."""
    g = QuantizedGraph(seed)
    x = g.input((1, 6, 6, 3))
    p = g.mirror_pad(x, ((0, 0), (2, 1), (1, 2), (0, 0)), "SYMMETRIC")
    z = g.quantize(p, dtype="int16")
    z = g.conv2d(z, 6, stride=(2, 2), activation="RELU", bias_dtype="int32")
    z = g.resize_nearest(z, (8, 8), half_pixel_centers=True)
    h = g.fully_connected(g.reshape(z, (1, 8 * 8 * 6)), 10, bias_dtype="int32")
    return g.finish([h, g.softmax(g.quantize(h, dtype="int8"), out_dtype="int16")])


def tflite_only_ops_model(seed=0) -> bytes:
    """The operators TFLite runs in int8 and TFLM does not (the reference is
    LiteRT's): NEG and a standalone RELU_N1_TO_1, around a convolution."""
    g = QuantizedGraph(seed)
    x = g.input((1, 6, 6, 3), -2.0, 2.0)
    y = g.conv2d(g.neg(x), 4, activation="NONE")
    return g.finish([g.relu_n1_to_1(y), g.neg(g.relu_n1_to_1(x, prefix="clamped"))])


def data_movement_model(seed=0) -> bytes:
    """STRIDED_SLICE, SPLIT_V, UNPACK, PACK, GATHER, SPACE_TO_DEPTH, PADV2 and
    EXPAND_DIMS in one int8 model (several outputs)."""
    g = QuantizedGraph(seed)
    x = g.input((1, 6, 8, 4))
    a = g.strided_slice(x, [0, 5, 0, 0], [1, 0, 8, 4], [1, -2, 3, 1])
    parts = g.split_v(x, [1, 3, 4], 2)
    rows = g.unpack(parts[1], 1)
    packed = g.pack(rows[:2], axis=-1)
    picked = g.gather(x, [7, 0, 3], axis=2)
    s2d = g.space_to_depth(g.pad_v2(x, ((0, 0), (0, 0), (0, 0), (0, 0)), 0.0), 2)
    return g.finish([a, packed, g.expand_dims(picked, 0), s2d])


def avg_pool_model(input_shape=(1, 8, 8, 4), filter=(2, 2), stride=(2, 2),  # noqa: A002
                   padding="VALID", activation="NONE", seed=0) -> bytes:
    """Single AVERAGE_POOL_2D int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.avg_pool(x, filter, stride, padding, activation))


def max_pool_model(input_shape=(1, 8, 8, 4), filter=(2, 2), stride=(2, 2),  # noqa: A002
                   padding="VALID", activation="NONE", seed=0) -> bytes:
    """Single MAX_POOL_2D int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.max_pool(x, filter, stride, padding, activation))


def mean_model(input_shape=(1, 6, 6, 8), axis=(1, 2), keep_dims=True, seed=0) -> bytes:
    """Single MEAN int8 model (output requantized to its own calibrated scale)."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.mean(x, axis, keep_dims))


def pad_model(input_shape=(1, 5, 5, 3), paddings=((0, 0), (1, 1), (2, 1), (0, 0)),
              seed=0) -> bytes:
    """Single PAD int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.pad(x, paddings))


def reshape_model(input_shape=(1, 4, 4, 8), new_shape=(1, 16, 8), shape_as_tensor=True,
                  seed=0) -> bytes:
    """Single RESHAPE int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.reshape(x, new_shape, shape_as_tensor))


def squeeze_model(input_shape=(1, 1, 1, 10), squeeze_dims=(1, 2), seed=0) -> bytes:
    """Single SQUEEZE int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.squeeze(x, squeeze_dims))


def transpose_model(input_shape=(1, 4, 6, 8), perm=(0, 3, 1, 2), seed=0) -> bytes:
    """Single TRANSPOSE int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.transpose(x, perm))


def concat_model(input_shapes=((1, 4, 4, 3), (1, 4, 4, 5)), axis=3, activation="NONE",
                 same_qparams=True, seed=0) -> bytes:
    """Single CONCATENATION int8 model.

    With ``same_qparams=False`` each input gets its own range and the output a
    calibrated union range (TFLite Micro's int8 kernel rejects that).
    """
    g = QuantizedGraph(seed)
    xs = []
    for i, shp in enumerate(input_shapes):
        rng = (-1.0, 1.0) if same_qparams else (-1.0 - i, 1.0 + 0.5 * i)
        xs.append(g.input(shp, *rng, name=f"input_{i}"))
    return g.finish(g.concat(xs, axis, activation))


def softmax_model(input_shape=(1, 10), beta=1.0, seed=0) -> bytes:
    """Single SOFTMAX int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -4.0, 4.0)
    return g.finish(g.softmax(x, beta))


def logistic_model(input_shape=(1, 16), seed=0) -> bytes:
    """Single LOGISTIC int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -6.0, 6.0)
    return g.finish(g.logistic(x))


def hard_swish_model(input_shape=(1, 4, 4, 8), seed=0) -> bytes:
    """Single HARD_SWISH int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -5.0, 5.0)
    return g.finish(g.hard_swish(x))


def resize_nearest_model(input_shape=(1, 4, 4, 3), size=(8, 8), align_corners=False,
                         half_pixel_centers=False, seed=0) -> bytes:
    """Single RESIZE_NEAREST_NEIGHBOR int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    return g.finish(g.resize_nearest(x, size, align_corners, half_pixel_centers))


def quantize_dequantize_model(input_shape=(1, 8, 8, 3), out_channels=4, requantize=False,
                              seed=0) -> bytes:
    """float32 -> QUANTIZE -> CONV_2D (int8) [-> QUANTIZE int8->int8] -> DEQUANTIZE -> float32."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -2.0, 2.0, dtype="float32")
    q = g.quantize(x)
    y = g.conv2d(q, out_channels, (3, 3), (1, 1), (1, 1), "SAME", "NONE", True)
    if requantize:
        lo, hi = float(y.values.min()), float(y.values.max())
        y = g.quantize(y, prefix="requantize", qparams=choose_qparams(1.5 * lo, 1.5 * hi))
    return g.finish(g.dequantize(y))


def relu_model(input_shape=(1, 4, 4, 8), seed=0) -> bytes:
    """Standalone RELU int8 model."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -2.0, 3.0)
    return g.finish(g.relu(x))


def relu6_model(input_shape=(1, 4, 4, 8), requantize=False, seed=0) -> bytes:
    """Standalone RELU6 int8 model (input range exceeds 6 so the clamp matters).

    See :meth:`QuantizedGraph.relu6` for why ``requantize`` defaults to False.
    """
    g = QuantizedGraph(seed)
    x = g.input(input_shape, -4.0, 9.0)
    return g.finish(g.relu6(x, requantize=requantize))


def float_model(input_shape=(1, 8, 8, 3), out_channels=4, seed=0) -> bytes:
    """A plain float32 CONV_2D model (for checking that float models are rejected)."""
    rng = np.random.default_rng(seed)
    kh = kw = 3
    cin = input_shape[3]
    w = rng.normal(0.0, math.sqrt(2.0 / (kh * kw * cin)), size=(out_channels, kh, kw, cin))
    b = rng.normal(0.0, 0.1, size=out_channels)
    tw = TFLiteWriter()
    x = tw.tensor("input", input_shape, dtype="float32")
    widx = tw.tensor("conv_w", w.shape, dtype="float32", data=w)
    bidx = tw.tensor("conv_b", b.shape, dtype="float32", data=b)
    y = conv2d_ref(np.zeros((1,) + tuple(input_shape[1:])), w, b, (1, 1), (1, 1), "SAME")
    out = tw.tensor("output", y.shape, dtype="float32")
    tw.op("CONV_2D", [x, widx, bidx], [out], padding="SAME", stride=1, activation="RELU")
    tw.inputs([x])
    tw.outputs([out])
    return tw.finish()


def two_op_model(input_shape=(1, 8, 8, 3), out_channels=6, seed=0) -> bytes:
    """CONV_2D (ReLU) followed by MAX_POOL_2D: the smallest multi-op chain."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    y = g.conv2d(x, out_channels, (3, 3), (1, 1), (1, 1), "SAME", "RELU", True)
    return g.finish(g.max_pool(y, (2, 2), (2, 2), "VALID"))


def residual_model(input_shape=(1, 8, 8, 8), expand=2, seed=0) -> bytes:
    """Inverted-residual block: the input branches into 1x1 expand -> 3x3 depthwise ->
    1x1 project, and a residual ADD joins it back with the input."""
    g = QuantizedGraph(seed)
    x = g.input(input_shape)
    c = input_shape[3]
    h = g.conv2d(x, c * expand, (1, 1), (1, 1), (1, 1), "SAME", "RELU6", True, prefix="expand")
    h = g.depthwise_conv2d(h, (3, 3), (1, 1), (1, 1), "SAME", 1, "RELU6", True, prefix="dw")
    h = g.conv2d(h, c, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix="project")
    return g.finish(g.add(x, h))


# Zero-argument builders for every default model, keyed by a short name.
MODEL_BUILDERS = {
    "conv2d": conv2d_model,
    "depthwise_conv2d": depthwise_conv2d_model,
    "fully_connected": fully_connected_model,
    "add": add_model,
    "mul": mul_model,
    "avg_pool": avg_pool_model,
    "max_pool": max_pool_model,
    "mean": mean_model,
    "pad": pad_model,
    "reshape": reshape_model,
    "squeeze": squeeze_model,
    "transpose": transpose_model,
    "concat": concat_model,
    "softmax": softmax_model,
    "logistic": logistic_model,
    "hard_swish": hard_swish_model,
    "resize_nearest": resize_nearest_model,
    "quantize_dequantize": quantize_dequantize_model,
    "relu": relu_model,
    "relu6": relu6_model,
    "two_op": two_op_model,
    "residual": residual_model,
}
