"""ONNX QDQ import: validate the model, then run TVM's ONNX frontend and canonicalize.

Only the *QDQ format* is accepted (what ``onnxruntime.quantization.quantize_static(...,
quant_format=QuantFormat.QDQ)`` writes): int8 activations and weights as
``QuantizeLinear``/``DequantizeLinear`` pairs around float operators.  The
operator form (``QLinearConv``, ``QLinearMatMul``, ``ConvInteger``, ...) is
refused with a request to re-export in QDQ format: TVM's ONNX importer does not
read it, and the QDQ form carries the same information.

Everything is checked on the ONNX graph first, so problems are reported with
the ONNX operator type and node name; only then is the model imported with
``tvm.relax.frontend.onnx.from_onnx`` and rewritten by
:class:`~tinyengine_tvm.transform.onnx_canonicalize.CanonicalizeONNXQDQ` into
the NHWC QDQ form that ``LowerToIntegerKernels`` lowers.
"""
from __future__ import annotations

import math
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError
from .loader import ImportedModel, TensorDesc

# Float operators the integer lowering handles between DequantizeLinear and QuantizeLinear.
COMPUTE_OPS = frozenset({
    "Conv", "Gemm", "MatMul", "Add", "Mul", "AveragePool", "MaxPool", "GlobalAveragePool",
    "Pad", "Reshape", "Flatten", "Transpose", "Concat", "Softmax", "Sigmoid", "Resize",
    "Clip", "Relu",
})
# Q/DQ and the helpers that only provide constants or pass a tensor through.
QDQ_OPS = frozenset({"QuantizeLinear", "DequantizeLinear"})
HELPER_OPS = frozenset({"Constant", "Identity"})
SUPPORTED_OPS = COMPUTE_OPS | QDQ_OPS | HELPER_OPS
# Float activations that may sit between a compute op and its QuantizeLinear.
ACTIVATION_OPS = frozenset({"Relu", "Clip"})
# Operator-form quantized operators (refused: export in QDQ format instead).
OPERATOR_FORM = frozenset({
    "QLinearConv", "QLinearMatMul", "QLinearAdd", "QLinearMul", "QLinearAveragePool",
    "QLinearGlobalAveragePool", "QLinearConcat", "QLinearSigmoid", "QLinearSoftmax",
    "QLinearLeakyRelu", "QLinearReduceMean", "QLinearWhere", "QLinearConvTranspose", "QGemm",
    "ConvInteger", "MatMulInteger", "MatMulIntegerToFloat", "DynamicQuantizeLinear",
    "DynamicQuantizeMatMul", "QAttention", "QEmbedLayerNormalization",
})
# Which inputs of a compute op are activations (the rest must be constants).
_ACTIVATION_INPUTS = {"Conv": (0,), "Gemm": (0,), "MatMul": (0,), "Add": (0, 1), "Mul": (0, 1),
                      "Concat": None}  # None: every input; default (0,)
_QDQ_HINT = ("export the model in QDQ format instead (QuantizeLinear/DequantizeLinear around "
             "float operators: onnxruntime.quantization.quantize_static(..., "
             "quant_format=QuantFormat.QDQ, activation_type=QuantType.QInt8, "
             "weight_type=QuantType.QInt8))")
_FLOAT_HINT = ("the model is not quantized (float only); quantize it to int8 in QDQ format first "
               "(onnxruntime.quantization.quantize_static with QuantFormat.QDQ, QInt8 activations "
               "and weights)")
_SOFTMAX_SIGMOID_QPARAMS = (np.float32(1.0 / 256.0), -128)


def _parse(data: bytes):
    import onnx
    from google.protobuf.message import DecodeError

    try:
        model = onnx.load_from_string(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise ModelFormatError(f"malformed or truncated ONNX file: {exc}") from exc
    except Exception as exc:  # protobuf implementations raise assorted errors
        raise ModelFormatError(f"malformed or truncated ONNX file: {exc!r}") from exc
    g = model.graph
    missing = []
    if not model.HasField("graph") or len(g.node) == 0:
        missing.append("no graph nodes")
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        missing.append("no default-domain opset_import")
    if len(g.output) == 0:
        missing.append("no graph outputs")
    if not missing:
        known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
        for n in g.node:
            for i in n.input:
                if i not in known:
                    missing.append(f"node '{n.name or n.op_type}' reads '{i}', which nothing defines")
                    break
            known.update(n.output)
            if missing:
                break
        for o in g.output:
            if not missing and o.name not in known:
                missing.append(f"graph output '{o.name}' is not produced by any node")
    if missing:
        raise ModelFormatError("malformed or truncated ONNX file: " + "; ".join(missing))
    return model


def _node_label(node, index: int) -> str:
    return node.name or (f"#{index} " + (node.output[0] if node.output else node.op_type))


class _OnnxGraph:
    """Def-use facts of an ONNX graph: producers, consumers, constants, element types."""

    def __init__(self, model):
        from onnx import numpy_helper

        self.model = model
        g = model.graph
        self.opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
        self.consts: Dict[str, np.ndarray] = {t.name: numpy_helper.to_array(t) for t in g.initializer}
        self.producer: Dict[str, Tuple[int, object]] = {}
        self.consumers: Dict[str, List[Tuple[int, object]]] = {}
        for i, n in enumerate(g.node):
            if n.op_type == "Constant" and n.domain in ("", "ai.onnx"):
                for a in n.attribute:
                    if a.name == "value":
                        self.consts[n.output[0]] = numpy_helper.to_array(a.t)
                    elif a.name in ("value_float", "value_int"):
                        self.consts[n.output[0]] = np.array(a.f if a.name == "value_float" else a.i)
                    elif a.name in ("value_floats", "value_ints"):
                        self.consts[n.output[0]] = np.array(list(a.floats) or list(a.ints))
            for o in n.output:
                self.producer[o] = (i, n)
            for inp in n.input:
                if inp:
                    self.consumers.setdefault(inp, []).append((i, n))
        self.graph_inputs = [i for i in g.input if i.name not in self.consts]
        self.graph_outputs = [o.name for o in g.output]
        self.elem_types: Dict[str, int] = {}
        for vi in list(g.input) + list(g.output) + list(g.value_info):
            self.elem_types[vi.name] = vi.type.tensor_type.elem_type
        self.shapes: Dict[str, List[Optional[int]]] = {}
        try:
            import onnx

            inferred = onnx.shape_inference.infer_shapes(model)
            for vi in list(inferred.graph.input) + list(inferred.graph.value_info) + list(inferred.graph.output):
                tt = vi.type.tensor_type
                self.elem_types.setdefault(vi.name, tt.elem_type)
                if tt.HasField("shape"):
                    self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in tt.shape.dim]
        except Exception:  # shape inference is a convenience; checks needing it are skipped
            pass

    def attrs(self, node) -> dict:
        from onnx import helper

        return {a.name: helper.get_attribute_value(a) for a in node.attribute}

    def const(self, name: str) -> Optional[np.ndarray]:
        """Constant value of a tensor (initializer or Constant output, through Identity)."""
        while name not in self.consts and name in self.producer and self.producer[name][1].op_type == "Identity":
            name = self.producer[name][1].input[0]
        return self.consts.get(name)

    def producer_op(self, name: str) -> Optional[str]:
        p = self.producer.get(name)
        while p is not None and p[1].op_type == "Identity":
            p = self.producer.get(p[1].input[0])
        return p[1].op_type if p is not None else None

    def producer_node(self, name: str):
        p = self.producer.get(name)
        while p is not None and p[1].op_type == "Identity":
            p = self.producer.get(p[1].input[0])
        return p[1] if p is not None else None

    def real_consumers(self, name: str) -> list:
        """Consumers, looking through Identity nodes."""
        out = []
        for _, n in self.consumers.get(name, []):
            if n.op_type == "Identity":
                out.extend(self.real_consumers(n.output[0]))
            else:
                out.append(n)
        return out

    def qparams(self, node) -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
        """(scale, zero point) constants of a QuantizeLinear/DequantizeLinear node."""
        scale = self.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        zp = self.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        return scale, zp


_ELEM_NAMES = {1: "float32", 2: "uint8", 3: "int8", 4: "uint16", 5: "int16", 6: "int32", 7: "int64",
               9: "bool", 10: "float16", 11: "float64", 12: "uint32", 13: "uint64", 16: "bfloat16",
               21: "uint4", 22: "int4"}


def _q_dtype(g: _OnnxGraph, node) -> str:
    """Integer type of a QuantizeLinear's output / DequantizeLinear's input."""
    _, zp = g.qparams(node)
    if zp is not None:
        return str(zp.dtype)
    if node.op_type == "QuantizeLinear":
        out_dtype = g.attrs(node).get("output_dtype", 0)
        return _ELEM_NAMES.get(out_dtype, "uint8") if out_dtype else "uint8"
    x = g.const(node.input[0])
    if x is not None:
        return str(x.dtype)
    return _ELEM_NAMES.get(g.elem_types.get(node.input[0], 0), "uint8")


def _check_qdq_node(g: _OnnxGraph, node) -> List[str]:
    reasons = []
    a = g.attrs(node)
    if a.get("block_size", 0):
        reasons.append("blocked quantization (block_size) is not supported")
    scale, zp = g.qparams(node)
    if scale is None:
        reasons.append("scale must be a constant")
        return reasons
    if len(node.input) > 2 and node.input[2] and zp is None:
        reasons.append("zero point must be a constant")
    dtype = _q_dtype(g, node)
    if node.op_type == "QuantizeLinear":
        if dtype != "int8":
            reasons.append(f"{dtype} quantization is not supported: activations must be int8"
                           + (" (no zero point means uint8)" if zp is None else ""))
        if np.size(scale) != 1:
            reasons.append("per-channel quantization of an activation is not supported")
        if scale.dtype != np.float32:
            reasons.append(f"scale is {scale.dtype}; only float32 scales are supported")
    else:
        x_const = g.const(node.input[0])
        if dtype == "int32":
            users = g.real_consumers(node.output[0])
            ok = x_const is not None and all(
                (u.op_type in ("Conv", "Gemm") and len(u.input) > 2 and
                 _resolve_identity(g, u.input[2]) == node.output[0]) for u in users)
            if not ok:
                reasons.append("int32 DequantizeLinear is only supported for the constant bias of Conv/Gemm")
        elif dtype != "int8":
            reasons.append(f"{dtype} quantization is not supported: only int8 (int32 for biases)"
                           + (" (no zero point means uint8)" if zp is None else ""))
        if np.size(scale) != 1 and x_const is None:
            reasons.append("per-channel quantization of an activation is not supported")
        if scale.dtype != np.float32:
            reasons.append(f"scale is {scale.dtype}; only float32 scales are supported")
    return reasons


def _resolve_identity(g: _OnnxGraph, name: str) -> str:
    while name in g.producer and g.producer[name][1].op_type == "Identity":
        name = g.producer[name][1].input[0]
    return name


def _dq_of(g: _OnnxGraph, name: str):
    """The DequantizeLinear node producing ``name`` (through Identity), or None."""
    n = g.producer_node(name)
    return n if n is not None and n.op_type == "DequantizeLinear" else None


def _q_after(g: _OnnxGraph, node):
    """The QuantizeLinear consuming ``node``'s output directly or after Relu/Clip, or None."""
    users = g.real_consumers(node.output[0])
    if len(users) == 1 and users[0].op_type == "QuantizeLinear":
        return users[0]
    if len(users) == 1 and users[0].op_type in ACTIVATION_OPS and node.op_type not in ACTIVATION_OPS:
        return _q_after(g, users[0])
    return None


def _check_weights(g: _OnnxGraph, name: str, what: str, axis_ok, symmetric: bool) -> List[str]:
    dq = _dq_of(g, name)
    if dq is None or g.const(dq.input[0]) is None:
        return [f"{what} '{name}' must be a constant int8 tensor read through DequantizeLinear"]
    w = g.const(dq.input[0])
    scale, zp = g.qparams(dq)
    reasons = []
    if w.dtype != np.int8:
        reasons.append(f"{what} are {w.dtype}, not int8")
    if scale is not None and np.size(scale) > 1:
        axis = g.attrs(dq).get("axis", 1)
        axis = axis + w.ndim if axis < 0 else axis
        if not axis_ok(axis, w.ndim):
            reasons.append(f"{what} are quantized per channel along axis {axis}; only the output-channel "
                           "axis is supported")
    if zp is not None and np.any(zp != 0) and (symmetric or np.size(zp) > 1):
        reasons.append(f"{what} have non-zero zero points; only symmetric int8 weights are supported")
    return reasons


def _check_bias(g: _OnnxGraph, name: str, n_out: Optional[int]) -> List[str]:
    dq = _dq_of(g, name)
    if dq is None or g.const(dq.input[0]) is None:
        return [f"bias '{name}' must be a constant int32 tensor read through DequantizeLinear"]
    b = g.const(dq.input[0])
    _, zp = g.qparams(dq)
    reasons = []
    if b.dtype != np.int32:
        reasons.append(f"bias is {b.dtype}, not int32")
    if zp is not None and np.any(zp != 0):
        reasons.append("bias zero point must be 0")
    if b.ndim != 1 or (n_out is not None and b.size != n_out):
        reasons.append(f"bias must be 1-D with one value per output channel (shape {list(b.shape)})")
    return reasons


def _pool_out(size, k, s, pb, pa, ceil):
    x = (size + pb + pa - k) / s + 1
    out = math.ceil(x) if ceil else math.floor(x)
    if ceil and (out - 1) * s >= size + pb:
        out -= 1
    return out


def _check_compute_node(g: _OnnxGraph, node) -> List[str]:
    """Attribute and operand checks of one float operator of the QDQ graph."""
    op, a = node.op_type, g.attrs(node)
    shape_in = g.shapes.get(node.input[0]) if node.input else None
    rank = len(shape_in) if shape_in is not None else None
    reasons: List[str] = []
    if op == "Conv":
        w = g.const(_dq_of(g, node.input[1]).input[0]) if _dq_of(g, node.input[1]) is not None else None
        if w is not None and w.ndim != 4:
            reasons.append(f"only 2-D convolution is supported (weights of rank {w.ndim})")
        reasons += _check_weights(g, node.input[1], "weights", lambda ax, nd: ax == 0, symmetric=True)
        if len(node.input) > 2 and node.input[2]:
            reasons += _check_bias(g, node.input[2], w.shape[0] if w is not None else None)
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad in ("SAME_UPPER", "SAME_LOWER") and (shape_in is None or None in shape_in[2:]):
            reasons.append(f"auto_pad={auto_pad} needs a statically known input shape")
    elif op == "Gemm":
        if a.get("transA", 0):
            reasons.append("transA=1 is not supported")
        if a.get("alpha", 1.0) != 1.0 or (len(node.input) > 2 and node.input[2] and a.get("beta", 1.0) != 1.0):
            reasons.append("alpha/beta other than 1 are not supported")
        trans_b = a.get("transB", 0)
        reasons += _check_weights(g, node.input[1], "weights",
                                  lambda ax, nd: ax == (0 if trans_b else 1), symmetric=False)
        dq = _dq_of(g, node.input[1])
        w = g.const(dq.input[0]) if dq is not None else None
        if w is not None and w.ndim != 2:
            reasons.append("Gemm weights must be 2-D")
        if len(node.input) > 2 and node.input[2] and w is not None and w.ndim == 2:
            reasons += _check_bias(g, node.input[2], w.shape[0] if trans_b else w.shape[1])
    elif op == "MatMul":
        dq = _dq_of(g, node.input[1])
        w = g.const(dq.input[0]) if dq is not None else None
        if w is None:
            reasons.append("MatMul of two activations is not supported (the second input must be constant weights)")
        else:
            if w.ndim != 2:
                reasons.append("MatMul weights must be 2-D")
            reasons += _check_weights(g, node.input[1], "weights", lambda ax, nd: ax == nd - 1, symmetric=False)
    elif op in ("Add", "Mul"):
        for i in node.input[:2]:
            s = g.shapes.get(i)
            if s is not None and len(s) > 4:
                reasons.append(f"broadcasting beyond 4-D is not supported (input '{i}' has rank {len(s)})")
    elif op in ("AveragePool", "MaxPool"):
        k = list(a.get("kernel_shape", []))
        if len(k) != 2:
            reasons.append("only 2-D pooling is supported")
            return reasons
        if any(d != 1 for d in a.get("dilations", [1, 1])):
            reasons.append("dilated pooling is not supported")
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("NOTSET", "VALID"):
            reasons.append(f"auto_pad={auto_pad} is not supported for pooling (use explicit pads)")
        if op == "MaxPool":
            if a.get("storage_order", 0):
                reasons.append("storage_order=1 is not supported")
            if len(node.output) > 1 and node.output[1]:
                reasons.append("the Indices output of MaxPool is not supported")
        if a.get("ceil_mode", 0) and op == "AveragePool" and shape_in is not None and None not in shape_in[2:]:
            pads = list(a.get("pads", [0, 0, 0, 0]))
            strides = list(a.get("strides", [1, 1]))
            for d in range(2):
                if _pool_out(shape_in[2 + d], k[d], strides[d], pads[d], pads[d + 2], True) != \
                        _pool_out(shape_in[2 + d], k[d], strides[d], pads[d], pads[d + 2], False):
                    reasons.append("ceil_mode=1 (windows past the input edge) is not supported for AveragePool")
                    break
        elif a.get("ceil_mode", 0) and op == "AveragePool":
            reasons.append("ceil_mode=1 needs a statically known input shape")
        if op == "AveragePool" and not reasons and not a.get("count_include_pad", 0) and any(a.get("pads", [0])):
            # Averages over the in-bounds elements only: TFLM's kernel, in the input's
            # quantization, then a requantization (two roundings).
            dq, q = _dq_of(g, node.input[0]), _q_after(g, node)
            if dq is not None and q is not None:
                s_in, s_out = float(g.qparams(dq)[0]), float(g.qparams(q)[0])
                if s_in >= 2.0 * s_out:  # error bound 0.5 * s_in / s_out must stay below 1
                    reasons.append(
                        f"count_include_pad=0 with padding needs input/output scales within a factor 2 "
                        f"(input {s_in:.6g}, output {s_out:.6g}): the border averages are computed in "
                        f"the input's quantization and then requantized, which would differ from ONNX by "
                        f"more than one step; use count_include_pad=1 or pads=0")
    elif op == "GlobalAveragePool":
        if rank is not None and rank != 4:
            reasons.append("only 4-D GlobalAveragePool is supported")
    elif op == "Pad":
        mode = a.get("mode", b"constant")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        if mode != "constant":
            reasons.append(f"mode='{mode}' is not supported (no int8 kernel); only constant padding is")
        pads = np.asarray(a["pads"]) if "pads" in a else (g.const(node.input[1]) if len(node.input) > 1 else None)
        if pads is None:
            reasons.append("pads must be constant")
        elif np.any(pads < 0):
            reasons.append("negative pads (cropping) are not supported")
        if len(node.input) > 2 and node.input[2] and g.const(node.input[2]) is None:
            reasons.append("constant_value must be constant")
        if len(node.input) > 3 and node.input[3] and g.const(node.input[3]) is None:
            reasons.append("axes must be constant")
        if rank is not None and rank > 4:
            reasons.append("Pad is supported up to 4-D")
    elif op == "Reshape":
        if len(node.input) < 2 or g.const(node.input[1]) is None:
            reasons.append("the target shape must be constant")
    elif op == "Transpose":
        if rank is not None and rank > 6:
            reasons.append("Transpose is supported up to 6-D")
    elif op == "Softmax":
        axis = a.get("axis", -1 if g.opset >= 13 else 1)
        if g.opset < 13 and rank is not None and axis % rank != rank - 1:
            reasons.append("Softmax before opset 13 over several axes is not supported (use opset >= 13)")
        elif g.opset < 13 and rank is None:
            reasons.append("Softmax before opset 13 needs a statically known input rank")
    elif op == "Resize":
        mode = a.get("mode", b"nearest")
        mode = mode.decode() if isinstance(mode, bytes) else mode
        coord = a.get("coordinate_transformation_mode", b"half_pixel")
        coord = coord.decode() if isinstance(coord, bytes) else coord
        if mode != "nearest":
            reasons.append(f"mode='{mode}' is not supported; only nearest-neighbour resize is")
        if coord == "tf_crop_and_resize":
            reasons.append("coordinate_transformation_mode='tf_crop_and_resize' is not supported")
        if a.get("antialias", 0):
            reasons.append("antialias=1 is not supported")
        if "axes" in a:
            reasons.append("the axes attribute is not supported")
        kar = a.get("keep_aspect_ratio_policy", b"stretch")
        if (kar.decode() if isinstance(kar, bytes) else kar) != "stretch":
            reasons.append("keep_aspect_ratio_policy other than 'stretch' is not supported")
        if rank is not None and rank != 4:
            reasons.append("only 4-D (NCHW) Resize is supported")
        scales = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
        sizes = g.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
        if scales is not None and scales.size == 4 and (scales[0] != 1 or scales[1] != 1):
            reasons.append("resizing the batch or channel dimension is not supported")
        if sizes is not None and sizes.size == 4 and shape_in is not None and \
                (sizes[0] != shape_in[0] or sizes[1] != shape_in[1]):
            reasons.append("resizing the batch or channel dimension is not supported")
        if (scales is None or scales.size == 0) and (sizes is None or sizes.size == 0):
            reasons.append("scales or sizes must be constant")
        roi = g.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
        if len(node.input) > 1 and node.input[1] and roi is None:
            reasons.append("roi must be constant")
    elif op == "Clip":
        if g.opset < 11:
            reasons.append("Clip with min/max attributes (opset < 11) is not supported; use opset >= 11")
        for i in node.input[1:3]:
            if i and g.const(i) is None:
                reasons.append("Clip bounds must be constant")
    if op in ("Softmax", "Sigmoid"):
        q = _q_after(g, node)
        if q is not None:
            s, zp = g.qparams(q)
            if s is not None and zp is not None and (np.float32(s) != _SOFTMAX_SIGMOID_QPARAMS[0]
                                                     or int(zp) != _SOFTMAX_SIGMOID_QPARAMS[1]):
                # The kernels produce (1/256, -128); another output quantization
                # is reached by one more requantization, which stays within one
                # output step only while that step is coarser than 1/512.
                if float(s) <= 1.0 / 512.0:
                    reasons.append(
                        f"output quantization scale {float(s):.6g} is 1/512 or finer; the int8 kernel "
                        f"computes in (1/256, -128) and cannot represent it within one step")
    return reasons


def _check_graph(g: _OnnxGraph) -> List[Tuple[str, str, str]]:
    """Every problem of the model as (op type, node, reason)."""
    nodes = list(g.model.graph.node)
    problems: List[Tuple[str, str, str]] = []
    operator_form, unsupported = [], []
    for i, n in enumerate(nodes):
        label = _node_label(n, i)
        if n.domain not in ("", "ai.onnx"):
            if n.op_type in OPERATOR_FORM or n.op_type.startswith("QLinear"):
                operator_form.append((n.op_type, label))
            else:
                unsupported.append((n.op_type, label, f"operators of domain '{n.domain}' are not supported"))
        elif n.op_type in OPERATOR_FORM or n.op_type.startswith("QLinear") or n.op_type.endswith("Integer"):
            operator_form.append((n.op_type, label))
        elif n.op_type not in SUPPORTED_OPS:
            unsupported.append((n.op_type, label, f"operator {n.op_type} is not supported"))
    for op, label in operator_form:
        problems.append((op, label, f"operator-form quantized operator {op} is not supported; " + _QDQ_HINT))
    problems.extend(unsupported)
    if problems:
        return problems

    has_qdq = any(n.op_type in QDQ_OPS for n in nodes)
    if not has_qdq:
        return [(n.op_type, _node_label(n, i), _FLOAT_HINT) for i, n in enumerate(nodes)
                if n.op_type not in HELPER_OPS] or [("MODEL", "graph", _FLOAT_HINT)]

    for i, n in enumerate(nodes):
        label = _node_label(n, i)
        if n.op_type in QDQ_OPS:
            for reason in _check_qdq_node(g, n):
                problems.append((n.op_type, label, reason))
            continue
        if n.op_type in HELPER_OPS:
            continue
        reasons: List[str] = []
        # Activation operands must come from DequantizeLinear (or, for Relu/Clip,
        # from the compute op they are fused into).
        act_idx = _ACTIVATION_INPUTS.get(n.op_type, (0,))
        act_names = list(n.input) if act_idx is None else [n.input[k] for k in act_idx if k < len(n.input)]
        for name in act_names:
            prod = g.producer_op(name)
            if prod == "DequantizeLinear":
                continue
            if n.op_type in ACTIVATION_OPS and prod in COMPUTE_OPS - ACTIVATION_OPS and \
                    _q_after(g, g.producer_node(name)) is not None:
                continue
            if prod is None and g.const(name) is not None and n.op_type in ("Add", "Mul"):
                reasons.append(f"constant operand '{name}' is float; it must be int8 through DequantizeLinear")
                continue
            reasons.append(f"input '{name}' is not produced by DequantizeLinear: float operators must read "
                           "int8 values through DequantizeLinear (is the model quantized in QDQ format?)")
        # ... and the result must be quantized again (possibly after Relu/Clip).
        users = g.real_consumers(n.output[0])
        if n.output[0] in g.graph_outputs or _resolve_out(g, n.output[0]):
            reasons.append(f"output '{n.output[0]}' is a float graph output; it must go through "
                           "QuantizeLinear (and DequantizeLinear for a float output)")
        elif n.op_type in ACTIVATION_OPS:
            if not (len(users) == 1 and users[0].op_type == "QuantizeLinear"):
                reasons.append(f"output '{n.output[0]}' must be read by one QuantizeLinear only")
        elif _q_after(g, n) is None:
            reasons.append(f"output '{n.output[0]}' must be read by one QuantizeLinear (optionally after "
                           "Relu/Clip) and nothing else")
        if not reasons:
            reasons = _check_compute_node(g, n)
        for reason in reasons:
            problems.append((n.op_type, label, reason))

    # Graph I/O: float32 into QuantizeLinear / int8 into DequantizeLinear; outputs likewise.
    for vi in g.graph_inputs:
        et = vi.type.tensor_type.elem_type
        users = g.real_consumers(vi.name)
        if et == 1:
            if any(u.op_type != "QuantizeLinear" for u in users):
                problems.append(("INPUT", vi.name, "a float32 input must be read by QuantizeLinear only"))
        elif et == 3:
            if any(u.op_type != "DequantizeLinear" for u in users):
                problems.append(("INPUT", vi.name, "an int8 input must be read by DequantizeLinear only"))
        else:
            problems.append(("INPUT", vi.name, f"input type {_ELEM_NAMES.get(et, et)} is not supported "
                                               "(float32 or int8 only)"))
        dims = vi.type.tensor_type.shape.dim
        for k, d in enumerate(dims):
            if not d.HasField("dim_value") and k > 0:
                problems.append(("INPUT", vi.name, "dynamic input shapes are not supported (only a "
                                                   "dynamic batch dimension, compiled as 1)"))
                break
    for name in g.graph_outputs:
        prod = g.producer_op(name)
        if prod not in ("QuantizeLinear", "DequantizeLinear") and name not in {i.name for i in g.graph_inputs}:
            problems.append(("OUTPUT", name, "a graph output must be produced by QuantizeLinear (int8) or "
                                             "DequantizeLinear (float32)"))
    return problems


def _resolve_out(g: _OnnxGraph, name: str) -> bool:
    """Whether ``name`` reaches a graph output through Identity nodes only."""
    return any(n.op_type == "Identity" and (n.output[0] in g.graph_outputs or _resolve_out(g, n.output[0]))
               for _, n in g.consumers.get(name, []))


# Integer shape computations exporters emit (e.g. PyTorch's x.view(x.size(0), -1)):
# folded into constants before validation when every input is known.
SHAPE_HELPER_OPS = frozenset({
    "Shape", "Size", "Gather", "Unsqueeze", "Squeeze", "Concat", "Cast", "Slice", "ConstantOfShape",
    "Range", "Add", "Sub", "Mul", "Div", "ReduceProd", "Identity",
})


def _fold_shape_constants(model) -> int:
    """Replace integer shape computations on constants/static shapes by initializers.

    Only nodes whose inputs are all known and whose results are integers are
    folded (float arithmetic is left for the checks); returns how many.
    """
    import onnx
    from onnx import helper, numpy_helper
    from onnx.reference import ReferenceEvaluator

    g = _OnnxGraph(model)
    consts = dict(g.consts)
    keep, folded = [], []
    for n in model.graph.node:
        value = None
        if n.domain in ("", "ai.onnx") and n.op_type in SHAPE_HELPER_OPS:
            if n.op_type in ("Shape", "Size"):
                shape = g.shapes.get(n.input[0])
                if shape is not None and None not in shape:
                    a = g.attrs(n)
                    if n.op_type == "Size":
                        value = np.array(int(np.prod(shape)), np.int64)
                    else:
                        value = np.array(shape[a.get("start", 0):a.get("end", len(shape))], np.int64)
            elif all(i == "" or i in consts for i in n.input) and len(n.output) == 1:
                try:
                    inputs = [i for i in n.input if i]
                    graph = helper.make_graph(
                        [n], "fold", [helper.make_tensor_value_info(i, onnx.helper.np_dtype_to_tensor_dtype(
                            consts[i].dtype), list(consts[i].shape)) for i in inputs],
                        [helper.make_tensor_value_info(n.output[0], 0, None)])
                    one = helper.make_model(graph, opset_imports=[helper.make_opsetid("", g.opset)])
                    value = np.asarray(ReferenceEvaluator(one).run(None, {i: consts[i] for i in inputs})[0])
                except Exception:
                    value = None
            if value is not None and value.dtype.kind not in "iub":
                value = None
        if value is None:
            keep.append(n)
            continue
        consts[n.output[0]] = value
        folded.append(numpy_helper.from_array(value, n.output[0]))
    if folded:
        del model.graph.node[:]
        model.graph.node.extend(keep)
        model.graph.initializer.extend(folded)
    return len(folded)


def _explicit_conv_pads(g: _OnnxGraph, model):
    """Copy of the model where Conv auto_pad=SAME_* is replaced by explicit pads (same meaning)."""
    from onnx import helper

    changed = False
    for n in model.graph.node:
        if n.op_type != "Conv":
            continue
        a = g.attrs(n)
        auto_pad = a.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        if auto_pad not in ("SAME_UPPER", "SAME_LOWER", "VALID"):
            continue
        shape = g.shapes.get(n.input[0])
        w = g.const(_dq_of(g, n.input[1]).input[0])
        kernel = list(a.get("kernel_shape", w.shape[2:]))
        strides = list(a.get("strides", [1] * len(kernel)))
        dil = list(a.get("dilations", [1] * len(kernel)))
        begins, ends = [], []
        for d in range(len(kernel)):
            if auto_pad == "VALID":
                begins.append(0)
                ends.append(0)
                continue
            size = shape[2 + d]
            out = -(-size // strides[d])
            total = max(0, (out - 1) * strides[d] + (kernel[d] - 1) * dil[d] + 1 - size)
            small, big = total // 2, total - total // 2
            begins.append(small if auto_pad == "SAME_UPPER" else big)
            ends.append(big if auto_pad == "SAME_UPPER" else small)
        keep = [x for x in n.attribute if x.name not in ("auto_pad", "pads")]
        del n.attribute[:]
        n.attribute.extend(keep)
        n.attribute.append(helper.make_attribute("pads", begins + ends))
        changed = True
    return changed


def _side_info(g: _OnnxGraph) -> Dict[str, list]:
    """Attributes TVM's Relax loses, in model order (see CanonicalizeONNXQDQ)."""
    pads, resizes = [], []
    for i, n in enumerate(g.model.graph.node):
        a = g.attrs(n)
        label = _node_label(n, i)
        if n.op_type == "Pad":
            p = np.asarray(a["pads"]) if "pads" in a else g.const(n.input[1])
            p = [int(v) for v in np.ravel(p)]
            half = len(p) // 2
            before, after = p[:half], p[half:]
            if len(n.input) > 3 and n.input[3]:
                shape = g.shapes.get(n.input[0])
                rank = len(shape) if shape is not None else half
                axes = [int(x) % rank for x in np.ravel(g.const(n.input[3]))]
                fb, fa = [0] * rank, [0] * rank
                for k, ax in enumerate(axes):
                    fb[ax], fa[ax] = before[k], after[k]
                before, after = fb, fa
            value = 0.0
            if "value" in a:
                value = float(a["value"])
            elif len(n.input) > 2 and n.input[2]:
                value = float(np.ravel(g.const(n.input[2]))[0])
            pads.append(dict(node=label, before=before, after=after, value=value))
        elif n.op_type == "Resize":
            scales = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
            coord = a.get("coordinate_transformation_mode", b"half_pixel")
            nearest = a.get("nearest_mode", b"round_prefer_floor")
            resizes.append(dict(
                node=label,
                scales=[float(s) for s in np.ravel(scales)[2:4]] if scales is not None and scales.size == 4 else None,
                coordinate_transformation_mode=coord.decode() if isinstance(coord, bytes) else coord,
                nearest_mode=nearest.decode() if isinstance(nearest, bytes) else nearest,
            ))
    return {"onnx_pad": pads, "onnx_resize": resizes}


def _describe_io(g: _OnnxGraph, shape_dict) -> Tuple[List[TensorDesc], List[TensorDesc]]:
    def qp(node):
        if node is None:
            return None, None
        s, z = g.qparams(node)
        return (float(np.float32(np.ravel(s)[0])) if s is not None else None,
                int(np.ravel(z)[0]) if z is not None else 0)

    inputs = []
    for vi in g.graph_inputs:
        et = vi.type.tensor_type.elem_type
        users = g.real_consumers(vi.name)
        node = users[0] if users and users[0].op_type in QDQ_OPS else None
        s, z = qp(node)
        inputs.append(TensorDesc(vi.name, list(shape_dict[vi.name]), _ELEM_NAMES.get(et, str(et)), s, z))
    outputs = []
    out_infos = {o.name: o for o in g.model.graph.output}
    for name in g.graph_outputs:
        node = g.producer_node(name)
        s, z = qp(node if node is not None and node.op_type in QDQ_OPS else None)
        et = out_infos[name].type.tensor_type.elem_type
        shape = g.shapes.get(name) or [d.dim_value for d in out_infos[name].type.tensor_type.shape.dim]
        outputs.append(TensorDesc(name, [int(d) if d else 1 for d in shape], _ELEM_NAMES.get(et, str(et)), s, z))
    return inputs, outputs


def _fix_batch_dimension(model) -> None:
    """Compile a symbolic leading (batch) dimension of the graph inputs/outputs as 1."""
    fixed = False
    for vi in list(model.graph.input) + list(model.graph.output):
        dims = vi.type.tensor_type.shape.dim
        if len(dims) and not dims[0].HasField("dim_value"):
            dims[0].dim_value = 1
            fixed = True
    if fixed:
        del model.graph.value_info[:]


def import_onnx(data: bytes, name: str) -> ImportedModel:
    """Validate an ONNX QDQ model, import it with tvm.relax.frontend.onnx and canonicalize it.

    The returned module is in the NHWC QDQ form (see CanonicalizeONNXQDQ) with
    the model's NCHW inputs and outputs; ``side_info`` keeps the Pad and Resize
    attributes TVM's Relax drops, in model order.
    """
    model = _parse(data)
    _fix_batch_dimension(model)
    _fold_shape_constants(model)
    g = _OnnxGraph(model)
    problems = _check_graph(g)
    if problems:
        raise UnsupportedModelError(problems, name)

    shape_dict = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in g.graph_inputs}
    inputs, outputs = _describe_io(g, shape_dict)
    side_info = _side_info(g)
    _explicit_conv_pads(g, model)

    from tvm.relax.frontend.onnx import from_onnx

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mod = from_onnx(model, shape_dict=shape_dict, dtype_dict={n: d.dtype for n, d in zip(shape_dict, inputs)})
    except Exception as exc:
        raise UnsupportedModelError([("MODEL", name, f"TVM's ONNX frontend failed: {exc}")], name) from exc
    ret = mod["main"].ret_ty
    for desc, ty in zip(outputs, list(ret.fields) if hasattr(ret, "fields") else [ret]):
        desc.shape = [int(d) for d in ty.shape]  # static shapes as imported (symbolic batch -> 1)

    from ..transform.onnx_canonicalize import CanonicalizeONNXQDQ

    canon = CanonicalizeONNXQDQ(side_info)
    try:
        mod = canon(mod)
    except Exception:
        if canon.last_error is not None:
            raise UnsupportedModelError(canon.last_error.problems, name) from None
        raise
    return ImportedModel(name=name, format="onnx", mod=mod, inputs=inputs, outputs=outputs,
                         side_info=side_info)
