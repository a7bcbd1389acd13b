"""Builders of small ONNX QDQ models for tests (the format onnxruntime's quantizer emits).

Every model is in the standard "QDQ format" that ``onnxruntime.quantization``
(``quantize_static(..., quant_format=QuantFormat.QDQ)``) produces, NCHW layout:

* activations are int8 per tensor: each float operator reads
  ``DequantizeLinear`` outputs and its result goes through ``QuantizeLinear``
  (scale and zero point are 0-d float32 / int8 initializers);
* weights are int8 symmetric (range [-127, 127], zero point 0) constant
  initializers followed by ``DequantizeLinear``: per channel (1-D scale and
  zero point, ``axis=0`` for Conv weights OIHW and Gemm ``transB=1`` weights,
  ``axis=1`` for MatMul/Gemm ``transB=0`` weights) or per tensor (0-d);
* biases are int32 with scale ``input_scale * weight_scale`` and zero point 0,
  followed by ``DequantizeLinear`` (``axis=0`` when per channel);
* data-movement operators (Reshape, Flatten, Transpose, MaxPool, Resize, Pad
  with a zero pad value) keep their input's scale and zero point, as the
  onnxruntime quantizer does; Softmax and Sigmoid outputs use the fixed
  ``(1/256, -128)``; everything else is calibrated.

Activation scales/zero points are calibrated from a float run: every operator
is evaluated with ``onnx.reference.ReferenceEvaluator`` on a batch of random
samples whose values are already on the int8 grid of the tensor they come
from (exactly what the QDQ graph computes), and its output parameters cover
the range the result actually takes, so outputs are not saturated.

I/O: with ``int8_io=False`` (default) the graph input is float32
(``x -> QuantizeLinear -> DequantizeLinear -> ...``) and the output is the
float32 result of the last ``DequantizeLinear``. With ``int8_io=True`` the
graph input is int8 (``DequantizeLinear`` first) and the graph output is the
int8 output of the last ``QuantizeLinear``. Inputs are named ``input``
(``input_0``, ``input_1``, ... with several) and outputs ``output``.

Every builder returns the serialized model (``bytes``); ``opset`` selects the
default-domain opset (13 by default; 19 and 21 are also checked by the tests).
"""

from __future__ import annotations

import math

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from .quantized_ops import choose_qparams, fake_quant

__all__ = [
    "QDQAct",
    "QDQGraph",
    "conv_model",
    "gemm_model",
    "matmul_model",
    "add_model",
    "mul_model",
    "avgpool_model",
    "maxpool_model",
    "global_avgpool_model",
    "pad_model",
    "reshape_model",
    "flatten_model",
    "transpose_model",
    "concat_model",
    "softmax_model",
    "sigmoid_model",
    "resize_nearest_model",
    "clip_model",
    "relu_model",
    "small_cnn_model",
    "qlinearconv_model",
    "sub_model",
    "leaky_relu_model",
    "prelu_model",
    "tanh_model",
    "batch_matmul_model",
    "slice_model",
    "split_model",
    "gather_model",
    "conv_transpose_model",
    "reduce_model",
    "layer_norm_model",
    "random_inputs",
    "MODEL_BUILDERS",
    "DEFAULT_OPSET",
]

DEFAULT_OPSET = 13
_FIXED_SIGMOID_SOFTMAX_QPARAMS = (1.0 / 256.0, -128)

_NP_TO_ONNX = {
    np.dtype(np.float32): TensorProto.FLOAT,
    np.dtype(np.int8): TensorProto.INT8,
    np.dtype(np.uint8): TensorProto.UINT8,
    np.dtype(np.int32): TensorProto.INT32,
    np.dtype(np.int64): TensorProto.INT64,
}


def _tuple(v, n=2):
    if np.isscalar(v):
        return tuple([int(v)] * n)
    v = tuple(int(x) for x in v)
    if len(v) != n:
        raise ValueError(f"expected {n} values, got {v}")
    return v


def _conv_pads(pads, kernel, dilation):
    """ONNX ``pads`` (top, left, bottom, right) from None / int / (ph, pw) / 4-tuple.

    None means the symmetric "same-ish" padding ``(eff_k - 1) // 2`` per side.
    """
    if pads is None:
        p = [((k - 1) * d) // 2 for k, d in zip(kernel, dilation)]
        return [p[0], p[1], p[0], p[1]]
    if np.isscalar(pads):
        return [int(pads)] * 4
    pads = [int(p) for p in pads]
    if len(pads) == 2:
        return [pads[0], pads[1], pads[0], pads[1]]
    if len(pads) == 4:
        return pads
    raise ValueError(f"pads must be an int, (ph, pw) or (top, left, bottom, right), got {pads}")


class QDQAct:
    """An int8 activation of a :class:`QDQGraph`.

    ``q_name`` is the int8 tensor (a QuantizeLinear output or an int8 graph
    input/initializer); ``values`` holds float calibration samples with shape
    ``(samples, *shape)``, already on the ``(scale, zero_point)`` grid.
    """

    def __init__(self, q_name, shape, scale, zero_point, values, qparam_names=None):
        self.q_name = q_name
        # (scale, zero point) initializer names, shared by its Q and DQ nodes as
        # onnxruntime's quantizer does; None until first needed.
        self.qparam_names = qparam_names
        self.shape = tuple(int(d) for d in shape)
        self.scale = float(np.float32(scale))  # the value the float32 initializer holds
        self.zero_point = int(zero_point)
        self.values = values
        self.dq_name = None  # set when the DequantizeLinear is emitted

    @property
    def qparams(self):
        return self.scale, self.zero_point


class QDQGraph:
    """Emit an ONNX QDQ graph while calibrating activations in float.

    Samples are carried on an extra leading axis; the model's own batch
    dimension is independent of the calibration batch.
    """

    def __init__(self, seed=0, opset=DEFAULT_OPSET, int8_io=False, samples=16,
                 name="tinyengine_qdq"):
        self.rng = np.random.default_rng(seed)
        self.opset = int(opset)
        self.int8_io = bool(int8_io)
        self.samples = int(samples)
        self.name = name
        self.nodes = []
        self.initializers = []
        self.graph_inputs = []
        self._count = 0

    # ------------------------------------------------------------------ helpers
    def _name(self, prefix):
        self._count += 1
        return f"{prefix}_{self._count}"

    def _init(self, prefix, array):
        """Add a constant initializer; returns its name."""
        name = self._name(prefix)
        self.initializers.append(numpy_helper.from_array(np.asarray(array), name))
        return name

    def _node(self, op_type, inputs, outputs, **attrs):
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.nodes.append(
            helper.make_node(op_type, list(inputs), list(outputs), name=self._name(op_type),
                             **attrs)
        )

    def _qparam_inits(self, prefix, scale, zp, zp_dtype=np.int8):
        """Scale/zero-point initializers: 0-d for per tensor, 1-D for per channel."""
        scale = np.asarray(scale, dtype=np.float32)
        zp = np.broadcast_to(np.asarray(zp, dtype=zp_dtype), scale.shape).copy()
        return self._init(prefix + "_scale", scale), self._init(prefix + "_zero_point", zp)

    def evaluate(self, op_type, inputs, attrs=None, n_outputs=1, domain=""):
        """Run one float operator on the calibration samples.

        ``inputs`` is a list of ``(array, per_sample)`` (or None for an absent
        optional input); per-sample arrays carry the samples axis first.
        Returns a list of output arrays with the samples axis first.
        """
        from onnx.reference import ReferenceEvaluator

        names, infos, feeds_const, feeds_sample = [], [], {}, {}
        for i, item in enumerate(inputs):
            if item is None:
                names.append("")
                continue
            arr, per_sample = item
            arr = np.asarray(arr)
            if arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            name = f"i{i}"
            names.append(name)
            shape = arr.shape[1:] if per_sample else arr.shape
            infos.append(helper.make_tensor_value_info(name, _NP_TO_ONNX[arr.dtype], list(shape)))
            (feeds_sample if per_sample else feeds_const)[name] = arr
        outs = [f"o{i}" for i in range(n_outputs)]
        node = helper.make_node(op_type, names, outs, domain=domain, **(attrs or {}))
        graph = helper.make_graph(
            [node], "calib", infos,
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outs],
        )
        model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", self.opset)])
        ev = ReferenceEvaluator(model)
        results = [[] for _ in outs]
        for s in range(self.samples):
            feeds = dict(feeds_const)
            feeds.update({k: v[s] for k, v in feeds_sample.items()})
            for r, o in zip(results, ev.run(None, feeds)):
                r.append(np.asarray(o, dtype=np.float64))
        return [np.stack(r) for r in results]

    # ------------------------------------------------------------------ QDQ core
    def input(self, shape, low=-1.0, high=1.0, name=None) -> QDQAct:
        """A model input whose calibration data is uniform in ``[low, high]``."""
        shape = tuple(int(d) for d in shape)
        if name is None:
            name = "input" if not self.graph_inputs else f"input_{len(self.graph_inputs)}"
        values = self.rng.uniform(low, high, size=(self.samples,) + shape)
        scale, zp = choose_qparams(low, high)
        scale = float(np.float32(scale))
        elem = TensorProto.INT8 if self.int8_io else TensorProto.FLOAT
        self.graph_inputs.append(helper.make_tensor_value_info(name, elem, list(shape)))
        q_name, qparam_names = name, None
        if not self.int8_io:
            q_name = self._name(name + "_q")
            qparam_names = self._qparam_inits(name, scale, zp)
            self._node("QuantizeLinear", [name, *qparam_names], [q_name])
        return QDQAct(q_name, shape, scale, zp, fake_quant(values, scale, zp), qparam_names)

    def dq(self, act: QDQAct, out_name=None) -> str:
        """The float (DequantizeLinear) view of ``act``; emitted once, on first use."""
        if act.dq_name is None:
            act.dq_name = out_name or self._name(act.q_name + "_dq")
            if act.qparam_names is None:
                act.qparam_names = self._qparam_inits(act.q_name, act.scale, act.zero_point)
            self._node("DequantizeLinear", [act.q_name, *act.qparam_names], [act.dq_name])
        return act.dq_name

    def quantize(self, float_name, values, qparams=None, prefix=None, share=None) -> QDQAct:
        """QuantizeLinear of the float tensor ``float_name``.

        Parameters are calibrated from ``values`` unless ``qparams`` is given or
        ``share`` (a QDQAct) supplies them, in which case its scale/zero-point
        initializers are reused (onnxruntime's form for data-movement ops).
        """
        values = np.asarray(values, dtype=np.float64)
        q_name = self._name((prefix or float_name) + "_q")
        if share is not None:
            scale, zp = share.qparams
            if share.qparam_names is None:
                share.qparam_names = self._qparam_inits(share.q_name, scale, zp)
            names = share.qparam_names
        else:
            if qparams is None:
                qparams = choose_qparams(values.min(), values.max())
            scale, zp = float(np.float32(qparams[0])), int(qparams[1])
            names = self._qparam_inits(q_name, scale, zp)
        self._node("QuantizeLinear", [float_name, *names], [q_name])
        return QDQAct(q_name, values.shape[1:], scale, zp, fake_quant(values, scale, zp), names)

    def float_op(self, op_type, inputs, attrs=None, prefix=None):
        """Emit a float operator on dequantized activations / constants.

        ``inputs`` items are a :class:`QDQAct` (read through its DequantizeLinear),
        a ``(name, values)`` pair of a float constant/weight (values without
        samples axis) or ``(name, values, True)`` for a per-sample float
        tensor, or None (absent optional input). Returns ``(name, values)``.
        """
        names, evals = [], []
        for item in inputs:
            if item is None:
                names.append("")
                evals.append(None)
            elif isinstance(item, QDQAct):
                names.append(self.dq(item))
                evals.append((item.values, True))
            else:
                per_sample = len(item) > 2 and item[2]
                names.append(item[0])
                evals.append((item[1], per_sample))
        out = self._name(prefix or op_type.lower())
        self._node(op_type, names, [out], **(attrs or {}))
        attrs = {k: v for k, v in (attrs or {}).items() if v is not None}
        (values,) = self.evaluate(op_type, evals, attrs)
        return out, values

    def weight(self, w, per_channel=True, axis=0, prefix="weight"):
        """Symmetric int8 weights + DequantizeLinear; returns (dq name, float values, scales)."""
        w = np.asarray(w, dtype=np.float64)
        moved = np.moveaxis(w, axis, 0).reshape(w.shape[axis], -1)
        if per_channel:
            amax = np.abs(moved).max(axis=1)
        else:
            amax = np.array(np.abs(moved).max())
        scales = (np.maximum(amax, 1e-8) / 127.0).astype(np.float32)
        bshape = [1] * w.ndim
        bshape[axis] = -1
        bscales = scales.astype(np.float64).reshape(bshape if per_channel else [])
        q = np.clip(np.round(w / bscales), -127, 127)
        q = q.astype(np.int8)
        q_name = self._init(prefix + "_quantized", q)
        s, z = self._qparam_inits(prefix, scales, 0)
        out = self._name(prefix + "_dq")
        self._node("DequantizeLinear", [q_name, s, z], [out], axis=axis if per_channel else None)
        deq = q.astype(np.float64) * bscales
        return out, deq, scales

    def bias(self, b, x_scale, w_scales, prefix="bias"):
        """int32 bias with scale ``x_scale * w_scale`` (zero point 0) + DequantizeLinear."""
        b = np.asarray(b, dtype=np.float64)
        bscale = (np.float32(x_scale) * np.asarray(w_scales, dtype=np.float32)).astype(np.float32)
        q = np.round(b / np.broadcast_to(bscale.astype(np.float64), b.shape)).astype(np.int32)
        q_name = self._init(prefix + "_quantized", q)
        s, z = self._qparam_inits(prefix, bscale, 0, zp_dtype=np.int32)
        out = self._name(prefix + "_dq")
        self._node("DequantizeLinear", [q_name, s, z], [out], axis=0 if bscale.ndim else None)
        return out, q.astype(np.float64) * np.broadcast_to(bscale.astype(np.float64), b.shape)

    def const_act(self, values, prefix="const") -> QDQAct:
        """A constant int8 operand (per-tensor symmetric, like the quantizer's weights)."""
        values = np.asarray(values, dtype=np.float64)
        amax = max(float(np.abs(values).max()), 1e-8)
        scale = np.float32(amax / 127.0)
        q = np.clip(np.round(values / float(scale)), -127, 127).astype(np.int8)
        q_name = self._init(prefix + "_quantized", q)
        deq = q.astype(np.float64) * float(scale)
        return QDQAct(q_name, values.shape, float(scale), 0,
                      np.broadcast_to(deq, (self.samples,) + values.shape))

    def _activation(self, name, values, activation, prefix, fold=False):
        """Optional Relu / Clip(0, 6) on a float tensor (no QDQ in between).

        Returns ``(name, values, qparams)``. With ``fold`` no node is emitted (the
        onnxruntime quantizer's form): the output parameters cover exactly
        ``[0, max]`` / ``[0, 6]`` with zero point -128 so that QuantizeLinear's
        saturation performs the clamp.
        """
        if activation is None:
            return name, values, None
        if fold:
            if activation == "Relu":
                return name, values, choose_qparams(0.0, max(float(values.max()), 1e-3))
            if activation in ("Clip6", "Clip"):
                return name, values, choose_qparams(0.0, 6.0)
            raise ValueError(f"activation must be None, 'Relu' or 'Clip6', got {activation!r}")
        return (*self._activation_node(name, values, activation, prefix), None)

    def _activation_node(self, name, values, activation, prefix):
        if activation == "Relu":
            return self.float_op("Relu", [(name, values, True)], prefix=prefix + "_relu")
        if activation in ("Clip6", "Clip"):
            lo = self._init("clip_min", np.array(0.0, np.float32))
            hi = self._init("clip_max", np.array(6.0, np.float32))
            return self.float_op(
                "Clip", [(name, values, True), (lo, np.float32(0.0)), (hi, np.float32(6.0))],
                prefix=prefix + "_clip",
            )
        raise ValueError(f"activation must be None, 'Relu' or 'Clip6', got {activation!r}")

    # ------------------------------------------------------------------ operators
    def conv(self, x, out_channels, kernel=3, stride=1, pads=None, dilation=1, group=1,
             per_channel=True, activation=None, bias=True, auto_pad=None, fold_activation=False,
             prefix="conv") -> QDQAct:
        kernel, stride, dilation = _tuple(kernel), _tuple(stride), _tuple(dilation)
        cin = x.shape[1]
        if cin % group or out_channels % group:
            raise ValueError(f"group {group} must divide channels {cin} and {out_channels}")
        fan_in = (cin // group) * kernel[0] * kernel[1]
        w = self.rng.normal(0.0, math.sqrt(2.0 / fan_in),
                            size=(out_channels, cin // group) + kernel)
        w *= self.rng.uniform(0.25, 1.5, size=(out_channels, 1, 1, 1))
        w_name, w_deq, w_scales = self.weight(w, per_channel, axis=0, prefix=prefix + "_weight")
        inputs = [x, (w_name, w_deq)]
        if bias:
            b_name, b_deq = self.bias(self.rng.normal(0.0, 0.1, size=out_channels), x.scale,
                                      w_scales, prefix=prefix + "_bias")
            inputs.append((b_name, b_deq))
        attrs = dict(kernel_shape=list(kernel), strides=list(stride), dilations=list(dilation),
                     group=int(group))
        if auto_pad is not None:
            attrs["auto_pad"] = auto_pad
        else:
            attrs["pads"] = _conv_pads(pads, kernel, dilation)
        name, values = self.float_op("Conv", inputs, attrs, prefix=prefix)
        name, values, qparams = self._activation(name, values, activation, prefix, fold_activation)
        return self.quantize(name, values, qparams, prefix=prefix)

    def gemm(self, x, out_features, trans_b=True, per_channel=False, bias=True, activation=None,
             fold_activation=False, prefix="gemm") -> QDQAct:
        k = x.shape[1]
        w = self.rng.normal(0.0, math.sqrt(2.0 / k), size=(out_features, k))
        w *= self.rng.uniform(0.25, 1.5, size=(out_features, 1))
        if not trans_b:
            w = w.T.copy()
        w_name, w_deq, w_scales = self.weight(w, per_channel, axis=0 if trans_b else 1,
                                              prefix=prefix + "_weight")
        inputs = [x, (w_name, w_deq)]
        if bias:
            b_name, b_deq = self.bias(self.rng.normal(0.0, 0.1, size=out_features), x.scale,
                                      w_scales, prefix=prefix + "_bias")
            inputs.append((b_name, b_deq))
        name, values = self.float_op("Gemm", inputs, dict(transB=1 if trans_b else 0),
                                     prefix=prefix)
        name, values, qparams = self._activation(name, values, activation, prefix, fold_activation)
        return self.quantize(name, values, qparams, prefix=prefix)

    def matmul(self, x, out_features, per_channel=False, prefix="matmul") -> QDQAct:
        k = x.shape[-1]
        w = self.rng.normal(0.0, math.sqrt(2.0 / k), size=(k, out_features))
        w *= self.rng.uniform(0.25, 1.5, size=(1, out_features))
        w_name, w_deq, _ = self.weight(w, per_channel, axis=1, prefix=prefix + "_weight")
        name, values = self.float_op("MatMul", [x, (w_name, w_deq)], prefix=prefix)
        return self.quantize(name, values, prefix=prefix)

    def binary(self, op_type, a, b, activation=None, prefix=None) -> QDQAct:
        prefix = prefix or op_type.lower()
        name, values = self.float_op(op_type, [a, b], prefix=prefix)
        name, values, qparams = self._activation(name, values, activation, prefix)
        return self.quantize(name, values, qparams, prefix=prefix)

    def unary(self, op_type, x, attrs=None, qparams=None, same_qparams=False, prefix=None,
              extra=()) -> QDQAct:
        """A one-activation-input op; ``same_qparams`` reuses the input's scale/zero point."""
        prefix = prefix or op_type.lower()
        name, values = self.float_op(op_type, [x, *extra], attrs, prefix=prefix)
        return self.quantize(name, values, qparams=qparams, prefix=prefix,
                             share=x if same_qparams else None)

    def int64_const(self, values, prefix):
        arr = np.asarray(values, dtype=np.int64)
        return self._init(prefix, arr), arr

    def float_const(self, values, prefix):
        arr = np.asarray(values, dtype=np.float32)
        return self._init(prefix, arr), arr

    # ------------------------------------------------------------------ finish
    def finish(self, outputs) -> bytes:
        """Declare outputs (a QDQAct or list) and serialize the model."""
        if isinstance(outputs, QDQAct):
            outputs = [outputs]
        out_infos = []
        for i, act in enumerate(outputs):
            out_name = "output" if len(outputs) == 1 else f"output_{i}"
            if self.int8_io:
                self._rename(act.q_name, out_name)
                act.q_name = out_name
                elem = TensorProto.INT8
            else:
                if act.dq_name is not None:
                    self._rename(act.dq_name, out_name)
                    act.dq_name = out_name
                else:
                    self.dq(act, out_name=out_name)
                elem = TensorProto.FLOAT
            out_infos.append(helper.make_tensor_value_info(out_name, elem, list(act.shape)))
        graph = helper.make_graph(self.nodes, self.name, self.graph_inputs, out_infos,
                                  initializer=self.initializers)
        opsets = [helper.make_opsetid("", self.opset)]
        model = helper.make_model(graph, opset_imports=opsets,
                                  producer_name="tinyengine-tvm modelgen")
        model.ir_version = helper.find_min_ir_version_for(opsets)
        onnx.checker.check_model(model, full_check=True)
        return model.SerializeToString()

    def _rename(self, old, new):
        for node in self.nodes:
            for lst in (node.input, node.output):
                for i, n in enumerate(lst):
                    if n == old:
                        lst[i] = new


# ---------------------------------------------------------------------- builders
def conv_model(input_shape=(1, 3, 9, 9), out_channels=5, kernel=3, stride=2, pads=None, dilation=1,
               group=1, per_channel=True, activation=None, bias=True, auto_pad=None,
               fold_activation=False, input_range=(-1.0, 1.0), int8_io=False, opset=DEFAULT_OPSET,
               seed=0) -> bytes:
    """Conv (+ optional Relu / Clip(0,6)); depthwise with ``group == C`` (``out_channels = C*M``).

    ``pads``: None (symmetric ``(eff_k-1)//2``), an int, ``(ph, pw)`` or ONNX
    ``(top, left, bottom, right)``; ``auto_pad`` (e.g. "SAME_UPPER", "VALID")
    replaces ``pads``. ``bias=False`` omits the optional bias input.
    ``activation`` emits a Relu / Clip(0, 6) node between Conv and QuantizeLinear;
    with ``fold_activation=True`` the node is left out and the output
    parameters cover exactly [0, max] / [0, 6] (zero point -128), which is how
    ``onnxruntime.quantization.quantize_static`` removes Relu/Clip.
    """
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    y = g.conv(x, out_channels, kernel, stride, pads, dilation, group, per_channel, activation,
               bias, auto_pad, fold_activation)
    return g.finish(y)


def gemm_model(input_shape=(1, 16), out_features=10, trans_b=True, per_channel=False, bias=True,
               activation=None, fold_activation=False, int8_io=False, opset=DEFAULT_OPSET,
               seed=0) -> bytes:
    """Gemm ``A(M,K) x B + C``: B is ``(N,K)`` with ``transB=1`` (PyTorch Linear) or ``(K,N)``.

    Per-channel weights are quantized along N (axis 0 with transB=1, axis 1 otherwise).
    ``activation``/``fold_activation`` as in :func:`conv_model`.
    """
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    y = g.gemm(x, out_features, trans_b, per_channel, bias, activation, fold_activation)
    return g.finish(y)


def matmul_model(input_shape=(1, 16), out_features=10, per_channel=False, int8_io=False,
                 opset=DEFAULT_OPSET, seed=0) -> bytes:
    """MatMul of an activation (rank >= 2) by a constant ``(K, N)`` weight (per channel: axis 1)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    return g.finish(g.matmul(x, out_features, per_channel))


def _binary_model(op_type, shape_a, shape_b, range_a, range_b, b_constant, activation, int8_io,
                  opset, seed):
    g = QDQGraph(seed, opset, int8_io)
    a = g.input(shape_a, *range_a, name="input_0")
    if b_constant:
        b = g.const_act(g.rng.uniform(*range_b, size=shape_b), prefix=op_type.lower() + "_const")
    else:
        b = g.input(shape_b, *range_b, name="input_1")
    return g.finish(g.binary(op_type, a, b, activation))


def add_model(shape_a=(1, 4, 5, 5), shape_b=(1, 4, 5, 5), range_a=(-1.0, 1.0), range_b=(-3.0, 0.5),
              b_constant=False, activation=None, int8_io=False, opset=DEFAULT_OPSET,
              seed=0) -> bytes:
    """Add of two int8 activations with different scales (numpy broadcasting, e.g.
    ``shape_b=(1,4,1,1)`` or ``(1,1,5,5)``); ``b_constant`` makes b an int8 initializer."""
    return _binary_model("Add", shape_a, shape_b, range_a, range_b, b_constant, activation, int8_io,
                         opset, seed)


def mul_model(shape_a=(1, 4, 5, 5), shape_b=(1, 4, 5, 5), range_a=(-1.0, 1.0), range_b=(-3.0, 0.5),
              b_constant=False, activation=None, int8_io=False, opset=DEFAULT_OPSET,
              seed=0) -> bytes:
    """Mul of two int8 activations (same options as :func:`add_model`)."""
    return _binary_model("Mul", shape_a, shape_b, range_a, range_b, b_constant, activation, int8_io,
                         opset, seed)


def avgpool_model(input_shape=(1, 4, 8, 8), kernel=3, stride=2, pads=(1, 1, 1, 1),
                  count_include_pad=0, ceil_mode=0, int8_io=False, opset=DEFAULT_OPSET,
                  seed=0) -> bytes:
    """AveragePool (calibrated output parameters)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    attrs = dict(kernel_shape=list(_tuple(kernel)), strides=list(_tuple(stride)),
                 pads=list(_tuple(pads, 4)), count_include_pad=int(count_include_pad),
                 ceil_mode=int(ceil_mode))
    return g.finish(g.unary("AveragePool", x, attrs))


def maxpool_model(input_shape=(1, 4, 8, 8), kernel=3, stride=2, pads=(1, 1, 1, 1), dilation=1,
                  ceil_mode=0, int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """MaxPool (output keeps the input's scale/zero point)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    attrs = dict(kernel_shape=list(_tuple(kernel)), strides=list(_tuple(stride)),
                 pads=list(_tuple(pads, 4)), dilations=list(_tuple(dilation)),
                 ceil_mode=int(ceil_mode))
    return g.finish(g.unary("MaxPool", x, attrs, same_qparams=True))


def global_avgpool_model(input_shape=(1, 6, 5, 5), input_range=(-1.0, 2.0), int8_io=False,
                         opset=DEFAULT_OPSET, seed=0) -> bytes:
    """GlobalAveragePool (calibrated output parameters)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("GlobalAveragePool", x))


def pad_model(input_shape=(1, 3, 4, 5), pads=(0, 0, 1, 2, 0, 0, 2, 1), mode="constant",
              constant_value=None, int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Pad with an int64 ``pads`` initializer (ONNX order: all begins, then all ends).

    ``constant_value`` None omits the optional input (pad with 0.0); a non-zero
    value is a float32 initializer and the output parameters are recalibrated
    to include it. ``mode`` is "constant", "reflect" or "edge".
    """
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    p_name, p_arr = g.int64_const(pads, "pads")
    extra = [(p_name, p_arr)]
    if constant_value is not None:
        extra.append(g.float_const(np.float32(constant_value), "pad_value"))
    same = constant_value is None or float(constant_value) == 0.0 or mode != "constant"
    return g.finish(g.unary("Pad", x, dict(mode=mode), same_qparams=same, extra=extra))


def reshape_model(input_shape=(1, 4, 3, 3), shape=(1, -1), int8_io=False, opset=DEFAULT_OPSET,
                  seed=0) -> bytes:
    """Reshape by an int64 ``shape`` initializer (0 copies, -1 infers)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    s_name, s_arr = g.int64_const(shape, "shape")
    return g.finish(g.unary("Reshape", x, same_qparams=True, extra=[(s_name, s_arr)]))


def flatten_model(input_shape=(1, 4, 3, 3), axis=1, int8_io=False, opset=DEFAULT_OPSET,
                  seed=0) -> bytes:
    """Flatten (same scale/zero point)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    return g.finish(g.unary("Flatten", x, dict(axis=int(axis)), same_qparams=True))


def transpose_model(input_shape=(1, 3, 4, 5), perm=(0, 2, 3, 1), int8_io=False,
                    opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Transpose (same scale/zero point)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    return g.finish(g.unary("Transpose", x, dict(perm=[int(p) for p in perm]), same_qparams=True))


def concat_model(shapes=((1, 2, 4, 4), (1, 3, 4, 4)), axis=1, ranges=((-1.0, 1.0), (-0.5, 3.0)),
                 int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Concat of several inputs with different scales (output calibrated over all)."""
    g = QDQGraph(seed, opset, int8_io)
    ranges = list(ranges) + [(-1.0, 1.0)] * max(0, len(shapes) - len(ranges))
    xs = [g.input(s, *r, name=f"input_{i}") for i, (s, r) in enumerate(zip(shapes, ranges))]
    name, values = g.float_op("Concat", xs, dict(axis=int(axis)), prefix="concat")
    return g.finish(g.quantize(name, values, prefix="concat"))


def softmax_model(input_shape=(1, 10), axis=-1, input_range=(-4.0, 4.0),
                  output_qparams=_FIXED_SIGMOID_SOFTMAX_QPARAMS, int8_io=False,
                  opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Softmax; output parameters fixed to (1/256, -128) unless ``output_qparams`` given
    (None: calibrated). onnxruntime's quantizer picks (1/255, -128)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("Softmax", x, dict(axis=int(axis)), qparams=output_qparams))


def sigmoid_model(input_shape=(1, 4, 5, 5), input_range=(-6.0, 6.0),
                  output_qparams=_FIXED_SIGMOID_SOFTMAX_QPARAMS, int8_io=False,
                  opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Sigmoid; output parameters fixed to (1/256, -128) unless ``output_qparams`` given
    (None: calibrated)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("Sigmoid", x, qparams=output_qparams))


def resize_nearest_model(input_shape=(1, 3, 4, 4), scales=(1.0, 1.0, 2.0, 2.0), sizes=None,
                         coordinate_transformation_mode="asymmetric", nearest_mode="floor",
                         int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Resize mode="nearest" by ``scales`` (float32, all 4 dims) or ``sizes`` (int64, all 4 dims).

    The default (asymmetric, floor, scales) is what PyTorch exports for
    ``nn.Upsample(mode="nearest")``; ONNX's defaults are half_pixel /
    round_prefer_floor. The roi input is left empty.
    """
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    if sizes is not None:
        extra = [None, None, g.int64_const(sizes, "sizes")]
    else:
        extra = [None, g.float_const(scales, "scales")]
    attrs = dict(mode="nearest", coordinate_transformation_mode=coordinate_transformation_mode,
                 nearest_mode=nearest_mode)
    return g.finish(g.unary("Resize", x, attrs, same_qparams=True, extra=extra))


def clip_model(input_shape=(1, 4, 5, 5), min=0.0, max=6.0, input_range=(-3.0, 8.0), int8_io=False,
               opset=DEFAULT_OPSET, seed=0) -> bytes:  # noqa: A002 (ONNX input names)
    """Standalone Clip with float32 ``min``/``max`` initializer inputs (None omits one)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    extra = [g.float_const(np.float32(min), "clip_min") if min is not None else None,
             g.float_const(np.float32(max), "clip_max") if max is not None else None]
    while extra and extra[-1] is None:
        extra.pop()
    return g.finish(g.unary("Clip", x, extra=extra))


def relu_model(input_shape=(1, 4, 5, 5), input_range=(-1.0, 2.0), int8_io=False,
               opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Standalone Relu (calibrated output, zero point -128)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("Relu", x))


def small_cnn_model(input_shape=(1, 3, 16, 16), num_classes=10, int8_io=False, opset=DEFAULT_OPSET,
                    seed=0) -> bytes:
    """conv3x3/s2+Relu -> depthwise3x3+Relu -> conv1x1 -> Add(residual) -> GlobalAveragePool
    -> Flatten -> Gemm."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    c1 = g.conv(x, 8, kernel=3, stride=2, activation="Relu", prefix="conv1")
    dw = g.conv(c1, 8, kernel=3, stride=1, group=8, activation="Relu", prefix="dwconv")
    pw = g.conv(dw, 8, kernel=1, stride=1, prefix="pwconv")
    res = g.binary("Add", pw, c1, prefix="add")
    gap = g.unary("GlobalAveragePool", res, prefix="gap")
    flat = g.unary("Flatten", gap, dict(axis=1), same_qparams=True, prefix="flatten")
    return g.finish(g.gemm(flat, num_classes, prefix="fc"))


def qlinearconv_model(input_shape=(1, 3, 9, 9), out_channels=5, kernel=3, stride=1, int8_io=False,
                      opset=DEFAULT_OPSET, seed=0) -> bytes:
    """The *operator* form (QLinearConv, no QDQ around a float Conv), which must be refused."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    kernel, stride = _tuple(kernel), _tuple(stride)
    cin = input_shape[1]
    w = g.rng.normal(0.0, math.sqrt(2.0 / (cin * kernel[0] * kernel[1])),
                     size=(out_channels, cin) + kernel)
    scales = (np.abs(w.reshape(out_channels, -1)).max(axis=1) / 127.0).astype(np.float32)
    wq = np.clip(np.round(w / scales.reshape(-1, 1, 1, 1)), -127, 127).astype(np.int8)
    w_deq = wq * scales.astype(np.float64).reshape(-1, 1, 1, 1)
    b = g.rng.normal(0.0, 0.1, size=out_channels)
    bscale = (np.float32(x.scale) * scales).astype(np.float64)
    bq = np.round(b / bscale).astype(np.int32)
    pads = _conv_pads(None, kernel, (1, 1))
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), pads=pads)
    (values,) = g.evaluate("Conv", [(x.values, True), (w_deq, False), (bq * bscale, False)], attrs)
    y_scale, y_zp = choose_qparams(values.min(), values.max())
    xs, xz = g._qparam_inits("x", x.scale, x.zero_point)
    ws, wz = g._qparam_inits("w", scales, 0)
    ys, yz = g._qparam_inits("y", y_scale, y_zp)
    wn = g._init("w_quantized", wq)
    bn = g._init("b_quantized", bq)
    y_name = g._name("qlinearconv")
    g._node("QLinearConv", [x.q_name, xs, xz, wn, ws, wz, ys, yz, bn], [y_name], **attrs)
    y = QDQAct(y_name, values.shape[1:], y_scale, y_zp, fake_quant(values, y_scale, y_zp))
    return g.finish(y)


def sub_model(shape_a=(1, 4, 5, 5), shape_b=(1, 4, 5, 5), range_a=(-1.0, 1.0), range_b=(-3.0, 0.5),
              b_constant=False, activation=None, int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Sub of two int8 activations (same options as :func:`add_model`)."""
    return _binary_model("Sub", shape_a, shape_b, range_a, range_b, b_constant, activation, int8_io,
                         opset, seed)


def leaky_relu_model(input_shape=(1, 4, 5, 5), alpha=0.1, input_range=(-2.0, 1.0), int8_io=False,
                     opset=DEFAULT_OPSET, seed=0) -> bytes:
    """LeakyRelu (calibrated output parameters)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("LeakyRelu", x, dict(alpha=float(alpha))))


def prelu_model(input_shape=(1, 4, 5, 5), slope_shape=(4, 1, 1), input_range=(-2.0, 1.0), int8_io=False,
                opset=DEFAULT_OPSET, seed=0) -> bytes:
    """PRelu with a constant int8 slope (per-tensor quantized) broadcast to the input
    (``slope_shape`` (C, 1, 1) is PyTorch's per-channel form, (1,) a shared slope)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    slope = g.const_act(g.rng.uniform(-0.5, 0.5, size=slope_shape), prefix="slope")
    name, values = g.float_op("PRelu", [x, slope], prefix="prelu")
    return g.finish(g.quantize(name, values, prefix="prelu"))


def tanh_model(input_shape=(1, 4, 5, 5), input_range=(-3.0, 3.0), output_qparams=None, int8_io=False,
               opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Tanh; calibrated output parameters unless ``output_qparams`` is given."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    return g.finish(g.unary("Tanh", x, qparams=output_qparams))


def batch_matmul_model(shape_a=(1, 3, 4, 5), shape_b=(1, 3, 5, 6), range_a=(-1.0, 1.0), range_b=(-2.0, 1.0),
                       int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """MatMul of two int8 activations (numpy batch broadcasting)."""
    g = QDQGraph(seed, opset, int8_io)
    a = g.input(shape_a, *range_a, name="input_0")
    b = g.input(shape_b, *range_b, name="input_1")
    return g.finish(g.binary("MatMul", a, b))


def slice_model(input_shape=(1, 4, 6, 7), starts=(1, 0), ends=(4, 7), axes=(1, -1), steps=(2, 2), int8_io=False,
                opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Slice with int64 initializers (``axes``/``steps`` None omit those inputs); same quantization."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    extra = [g.int64_const(starts, "starts"), g.int64_const(ends, "ends")]
    if axes is not None or steps is not None:
        extra.append(g.int64_const(axes, "axes") if axes is not None else None)
    if steps is not None:
        extra.append(g.int64_const(steps, "steps"))
    return g.finish(g.unary("Slice", x, same_qparams=True, extra=extra))


def split_model(input_shape=(1, 5, 4, 4), axis=1, split=(2, 3), num_outputs=None, int8_io=False,
                opset=DEFAULT_OPSET, seed=0) -> bytes:
    """Split into ``split`` sizes (an int64 input) or, with ``split=None``, ``num_outputs``
    parts (opset 18's attribute; before it, equal parts by the output count); each part
    keeps the input's quantization, as onnxruntime's quantizer writes it."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    n = len(split) if split is not None else int(num_outputs)
    inputs, evals = [g.dq(x)], [(x.values, True)]
    if split is not None:
        s_name, s_arr = g.int64_const(split, "split")
        inputs.append(s_name)
        evals.append((s_arr, False))
    attrs = dict(axis=int(axis))
    if split is None and opset >= 18:
        attrs["num_outputs"] = n
    outs = [g._name("split") for _ in range(n)]
    g._node("Split", inputs, outs, **attrs)
    parts = g.evaluate("Split", evals, attrs, n_outputs=n)
    return g.finish([g.quantize(o, v, share=x, prefix=o) for o, v in zip(outs, parts)])


def gather_model(input_shape=(1, 4, 5, 5), indices=(3, 0, -1), axis=1, int8_io=False, opset=DEFAULT_OPSET,
                 seed=0) -> bytes:
    """Gather with constant int64 indices (negative ones count from the end); same quantization."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    return g.finish(g.unary("Gather", x, dict(axis=int(axis)), same_qparams=True,
                            extra=[g.int64_const(indices, "indices")]))


def conv_transpose_model(input_shape=(1, 3, 4, 4), out_channels=4, kernel=3, stride=2, pads=(1, 1, 1, 1),
                         output_padding=None, dilation=1, group=1, per_channel=True, bias=True, int8_io=False,
                         opset=DEFAULT_OPSET, seed=0) -> bytes:
    """ConvTranspose with int8 weights ``(C_in, C_out / group, kh, kw)``, per channel along
    axis 1 or per tensor, and an optional int32 bias (one value per output channel)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape)
    kernel, stride, dilation = _tuple(kernel), _tuple(stride), _tuple(dilation)
    cin = input_shape[1]
    if cin % group or out_channels % group:
        raise ValueError(f"group {group} must divide channels {cin} and {out_channels}")
    per_group = out_channels // group
    w = g.rng.normal(0.0, math.sqrt(2.0 / (cin // group * kernel[0] * kernel[1])),
                     size=(cin, per_group) + kernel)
    w *= g.rng.uniform(0.25, 1.5, size=(1, per_group, 1, 1))
    w_name, w_deq, w_scales = g.weight(w, per_channel, axis=1, prefix="deconv_weight")
    inputs = [x, (w_name, w_deq)]
    if bias:
        b_scales = np.tile(w_scales, group) if per_channel else w_scales
        inputs.append(g.bias(g.rng.normal(0.0, 0.1, size=out_channels), x.scale, b_scales, prefix="deconv_bias"))
    attrs = dict(kernel_shape=list(kernel), strides=list(stride), dilations=list(dilation),
                 pads=list(_tuple(pads, 4)), group=int(group))
    if output_padding is not None:
        attrs["output_padding"] = list(_tuple(output_padding))
    if group == 1:
        name, values = g.float_op("ConvTranspose", inputs, attrs, prefix="deconv")
        return g.finish(g.quantize(name, values, prefix="deconv"))
    # onnx's reference ConvTranspose computes only group 1 (and depthwise): calibrate group by group.
    name = g._name("deconv")
    g._node("ConvTranspose", [g.dq(x)] + [item[0] for item in inputs[1:]], [name], **attrs)
    cg = cin // group
    one = dict(attrs, group=1)
    parts = []
    for k in range(group):
        ins = [(x.values[:, :, k * cg:(k + 1) * cg], True), (inputs[1][1][k * cg:(k + 1) * cg], False)]
        if bias:
            ins.append((inputs[2][1][k * per_group:(k + 1) * per_group], False))
        parts.append(g.evaluate("ConvTranspose", ins, one)[0])
    return g.finish(g.quantize(name, np.concatenate(parts, axis=2), prefix="deconv"))


def reduce_model(op_type="ReduceMean", input_shape=(1, 4, 5, 6), axes=(1,), keepdims=1, input_range=(-1.0, 2.0),
                 same_qparams=False, int8_io=False, opset=DEFAULT_OPSET, seed=0) -> bytes:
    """ReduceMean / ReduceMax over ``axes`` (None: all); from opset 18 the axes are an int64
    input, before it an attribute. ``same_qparams`` keeps the input's quantization (a max)."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    attrs, extra = dict(keepdims=int(keepdims)), []
    if axes is not None:
        if opset >= 18:
            extra.append(g.int64_const(axes, "axes"))
        else:
            attrs["axes"] = [int(a) for a in axes]
    return g.finish(g.unary(op_type, x, attrs, same_qparams=same_qparams, extra=extra))


def layer_norm_model(input_shape=(1, 6, 16), axis=-1, epsilon=1e-5, input_range=(-2.0, 3.0), bias=True,
                     int8_io=False, opset=17, seed=0) -> bytes:
    """LayerNormalization over the last axis as onnxruntime's quantizer writes it: the
    scale (gamma) as int8 weights per tensor, the bias (beta) as int32 with scale
    ``input_scale * gamma_scale``; calibrated output parameters."""
    g = QDQGraph(seed, opset, int8_io)
    x = g.input(input_shape, *input_range)
    n = input_shape[-1]
    gamma_name, gamma, gamma_scale = g.weight(g.rng.uniform(0.5, 1.5, size=n), per_channel=False, axis=0,
                                              prefix="ln_scale")
    inputs = [x, (gamma_name, gamma)]
    if bias:
        inputs.append(g.bias(g.rng.normal(0.0, 0.2, size=n), x.scale, gamma_scale, prefix="ln_bias"))
    name, values = g.float_op("LayerNormalization", inputs, dict(axis=int(axis), epsilon=float(epsilon)),
                              prefix="layer_norm")
    return g.finish(g.quantize(name, values, prefix="layer_norm"))


def random_inputs(model_bytes, seed=0):
    """Random feeds for a model: full-range int8, or float32 uniform over the range of the
    input's QuantizeLinear (``[-1, 1]`` when it has none)."""
    model = onnx.load_from_string(model_bytes)
    rng = np.random.default_rng(seed)
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    feeds = {}
    for vi in model.graph.input:
        shape = [d.dim_value for d in vi.type.tensor_type.shape.dim]
        if vi.type.tensor_type.elem_type == TensorProto.INT8:
            feeds[vi.name] = rng.integers(-128, 128, size=shape, dtype=np.int8)
            continue
        lo, hi = -1.0, 1.0
        for node in model.graph.node:
            if node.op_type == "QuantizeLinear" and node.input[0] == vi.name:
                scale = float(inits[node.input[1]])
                zp = int(inits[node.input[2]]) if len(node.input) > 2 else 0
                lo, hi = (-128 - zp) * scale, (127 - zp) * scale
                break
        feeds[vi.name] = rng.uniform(lo, hi, size=shape).astype(np.float32)
    return feeds


# name -> builder; every builder takes int8_io/opset/seed keywords.
MODEL_BUILDERS = {
    "conv": conv_model,
    "gemm": gemm_model,
    "matmul": matmul_model,
    "add": add_model,
    "mul": mul_model,
    "avgpool": avgpool_model,
    "maxpool": maxpool_model,
    "global_avgpool": global_avgpool_model,
    "pad": pad_model,
    "reshape": reshape_model,
    "flatten": flatten_model,
    "transpose": transpose_model,
    "concat": concat_model,
    "softmax": softmax_model,
    "sigmoid": sigmoid_model,
    "resize_nearest": resize_nearest_model,
    "clip": clip_model,
    "relu": relu_model,
    "small_cnn": small_cnn_model,
    "qlinearconv": qlinearconv_model,
    "sub": sub_model,
    "leaky_relu": leaky_relu_model,
    "prelu": prelu_model,
    "tanh": tanh_model,
    "batch_matmul": batch_matmul_model,
    "slice": slice_model,
    "split": split_model,
    "gather": gather_model,
    "conv_transpose": conv_transpose_model,
    "reduce": reduce_model,
    "layer_norm": layer_norm_model,
}
