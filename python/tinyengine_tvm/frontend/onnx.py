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
import re
import warnings
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError
from .model import ImportedModel, TensorDesc

# Float operators the integer lowering handles between DequantizeLinear and QuantizeLinear.
COMPUTE_OPS = frozenset({
    "Conv", "Gemm", "MatMul", "Add", "Mul", "AveragePool", "MaxPool", "GlobalAveragePool",
    "Pad", "Reshape", "Flatten", "Transpose", "Concat", "Softmax", "Sigmoid", "Resize",
    "Clip", "Relu", "Sub", "LeakyRelu", "PRelu", "Tanh", "Slice", "Split", "Gather", "ConvTranspose",
    "ReduceMean", "ReduceMax", "LayerNormalization",
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
_ACTIVATION_INPUTS = {"Conv": (0,), "Gemm": (0,), "MatMul": (0,), "Add": (0, 1), "Mul": (0, 1), "Sub": (0, 1),
                      "Concat": None}  # None: every input; default (0,)
# Recurrent operators: refused with the reason (TVM's importer has no converter for them).
_RECURRENT_HINT = ("is not supported: TVM's ONNX importer has no converter for it, and a QDQ model keeps it in "
                   "float (onnxruntime's quantizer only offers DynamicQuantizeLSTM, dynamic quantization in the "
                   "com.microsoft domain); convert the model to TFLite, whose int8/int16 "
                   "UNIDIRECTIONAL_SEQUENCE_LSTM is supported")
RECURRENT_OPS = frozenset({"LSTM", "GRU", "RNN"})
# Tanh's kernel writes (1/128, 0); one requantization reaches coarser output steps only.
_TANH_QPARAMS = (np.float32(1.0 / 128.0), 0)
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
    _check_strings(model)
    missing = []
    if not model.HasField("graph") or len(g.node) == 0:
        missing.append("no graph nodes")
    if not any(o.domain in ("", "ai.onnx") for o in model.opset_import):
        missing.append("no default-domain opset_import")
    if len(g.output) == 0:
        missing.append("no graph outputs")
    if not missing:
        known = {i.name for i in g.input} | {t.name for t in g.initializer} | {""}
        for idx, n in enumerate(g.node):
            for k, i in enumerate(n.input):
                if i not in known:
                    missing.append(f"node {_site(n, idx)} ({n.op_type}) input {k} '{i}' is not produced by an "
                                   "earlier node, an initializer or a graph input")
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


def _check_strings(model) -> None:
    """Names, operator types and string attributes must be valid UTF-8 (protobuf hands back bytes otherwise)."""
    g = model.graph

    def bad(*values):
        return any(not isinstance(v, str) for v in values)

    where = None
    if bad(model.domain, g.name) or any(bad(o.domain) for o in model.opset_import):
        where = "the model's domain, graph name or opset_import"
    for t in g.initializer:
        if where is None and bad(t.name):
            where = "an initializer name"
    for vi in list(g.input) + list(g.output) + list(g.value_info):
        if where is None and bad(vi.name, *(d.dim_param for d in vi.type.tensor_type.shape.dim)):
            where = "a graph input/output name or dimension"
    for i, n in enumerate(g.node):
        if where is None and bad(n.name, n.op_type, n.domain, *n.input, *n.output,
                                 *(a.name for a in n.attribute), *(a.ref_attr_name for a in n.attribute)):
            where = f"node #{i}'s name, operator type, domain, input/output or attribute names"
        for a in n.attribute:
            if where is None and a.t is not None and bad(a.t.name):
                where = f"node #{i}'s attribute {a.name}"
    if where is not None:
        raise ModelFormatError(f"malformed or truncated ONNX file: {where} contain(s) a string that is not valid UTF-8")


def _node_label(node, index: int) -> str:
    return node.name or (f"#{index} " + (node.output[0] if node.output else node.op_type))


def _site(node, index: int) -> str:
    """A node as the input checks name it: its index and its first output tensor, e.g. '#3 conv1_out'."""
    out = node.output[0] if len(node.output) and node.output[0] else node.op_type
    return f"#{index} {out}"


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
                (u.op_type in ("Conv", "Gemm", "ConvTranspose", "LayerNormalization") and len(u.input) > 2 and
                 _resolve_identity(g, u.input[2]) == node.output[0]) for u in users)
            if not ok:
                reasons.append("int32 DequantizeLinear is only supported for the constant bias of Conv, Gemm, "
                               "ConvTranspose and LayerNormalization")
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
        if dq is None:
            reasons.append(f"input '{node.input[1]}' is not produced by DequantizeLinear: the second operand "
                           "must be int8 weights or an int8 activation read through DequantizeLinear")
        elif w is None:  # two activations (TFLite's BATCH_MATMUL)
            for i in node.input[:2]:
                s = g.shapes.get(i)
                if s is not None and len(s) < 2:
                    reasons.append(f"MatMul of two activations needs operands of rank >= 2 ('{i}' has rank "
                                   f"{len(s)})")
                elif s is not None and len(s) > 6:
                    reasons.append(f"MatMul of two activations is supported up to 4 batch axes ('{i}' has rank "
                                   f"{len(s)})")
        else:
            if w.ndim != 2:
                reasons.append("MatMul weights must be 2-D")
            reasons += _check_weights(g, node.input[1], "weights", lambda ax, nd: ax == nd - 1, symmetric=False)
    elif op in ("Add", "Mul", "Sub"):
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
            if dq is not None and q is not None and g.qparams(dq)[0] is not None and g.qparams(q)[0] is not None:
                s_in = float(np.ravel(g.qparams(dq)[0])[0])
                s_out = float(np.ravel(g.qparams(q)[0])[0])
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
    elif op in ("Sub", "LeakyRelu", "PRelu", "Tanh", "Slice", "Split", "Gather", "ConvTranspose", "ReduceMean",
                "ReduceMax", "LayerNormalization"):
        reasons += _check_new_compute_node(g, node, a, shape_in)
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


def _check_new_compute_node(g: _OnnxGraph, node, a: dict, shape_in) -> List[str]:
    """Operand and semantics checks of PRelu, Tanh, Slice, Gather, ConvTranspose,
    ReduceMean/ReduceMax and LayerNormalization (those the kernels restrict)."""
    op = node.op_type
    rank = len(shape_in) if shape_in is not None else None
    reasons: List[str] = []
    if op == "PRelu":
        dq = _dq_of(g, node.input[1])
        slope = g.const(dq.input[0]) if dq is not None else None
        if slope is None or slope.dtype != np.int8 or np.size(g.qparams(dq)[0]) != 1:
            reasons.append(f"slope '{node.input[1]}' must be a constant int8 tensor, per-tensor quantized, read "
                           "through DequantizeLinear")
        elif sum(d != 1 for d in slope.shape) > 1:
            reasons.append(f"slope of shape {list(slope.shape)} varies along several axes; only a scalar or a "
                           "per-channel slope (one non-1 axis) is supported")
        if rank is not None and rank > 4:
            reasons.append(f"PRelu is supported up to 4-D (input of rank {rank})")
    elif op == "Tanh":
        q = _q_after(g, node)
        if q is not None:
            s, _ = g.qparams(q)
            if s is not None and np.size(s) == 1 and float(np.ravel(s)[0]) <= float(_TANH_QPARAMS[0]) / 2:
                reasons.append(f"output quantization scale {float(np.ravel(s)[0]):.6g} is 1/256 or finer; the int8 "
                               "kernel computes in (1/128, 0) and cannot represent it within one step")
    elif op == "Slice":
        for k, what in ((1, "starts"), (2, "ends"), (3, "axes"), (4, "steps")):
            if len(node.input) > k and node.input[k] and g.const(node.input[k]) is None:
                reasons.append(f"{what} (input {k}) must be constant")
        if rank is not None and rank > 6:
            reasons.append(f"Slice is supported up to 6-D (input of rank {rank})")
    elif op == "Split":
        if len(node.input) > 1 and node.input[1] and g.const(node.input[1]) is None:
            reasons.append("split (input 1) must be constant")
        if rank is not None and rank > 6:
            reasons.append(f"Split is supported up to 6-D (input of rank {rank})")
    elif op == "Gather":
        if g.const(node.input[1]) is None:
            reasons.append(f"indices '{node.input[1]}' are computed at run time; only constant indices are "
                           "supported")
    elif op == "ConvTranspose":
        dq = _dq_of(g, node.input[1])
        w = g.const(dq.input[0]) if dq is not None else None
        if w is not None and w.ndim != 4:
            reasons.append(f"only 2-D transposed convolution is supported (weights of rank {w.ndim})")
        reasons += _check_weights(g, node.input[1], "weights", lambda ax, nd: ax == 1, symmetric=True)
        if "output_shape" in a:
            reasons.append("the output_shape attribute is not supported (TVM's importer ignores it); give pads "
                           "and output_padding instead")
        if _str_attr(a, "auto_pad", "NOTSET") in ("SAME_UPPER", "SAME_LOWER"):
            reasons.append("auto_pad=SAME_* is not supported for ConvTranspose; give explicit pads")
        strides = list(a.get("strides", [1, 1]))
        dil = list(a.get("dilations", [1, 1]))
        for d, (op_, s_) in enumerate(zip(a.get("output_padding", [0, 0]), strides)):
            if op_ >= max(s_, dil[d] if d < len(dil) else 1):
                reasons.append(f"output_padding {list(a.get('output_padding'))} must be smaller than the stride "
                               "or the dilation")
                break
        if len(node.input) > 2 and node.input[2]:
            reasons += _check_bias(g, node.input[2], w.shape[1] * int(a.get("group", 1))
                                   if w is not None and w.ndim == 4 else None)
    elif op in ("ReduceMean", "ReduceMax"):
        axes = a.get("axes") if "axes" in a else (g.const(node.input[1]) if len(node.input) > 1 and node.input[1]
                                                 else None)
        if "axes" not in a and len(node.input) > 1 and node.input[1] and axes is None:
            reasons.append("axes (input 1) must be constant")
        elif (axes is None or np.size(axes) == 0) and a.get("noop_with_empty_axes", 0):
            reasons.append("noop_with_empty_axes=1 with no axes (an identity) is not supported")
        if rank is not None and rank > 6:
            reasons.append(f"{op} is supported up to 6-D (input of rank {rank})")
    elif op == "LayerNormalization":
        for k, what in ((1, "scale"), (2, "bias")):
            if len(node.input) > k and node.input[k]:
                dq = _dq_of(g, node.input[k])
                if (dq is None and g.const(node.input[k]) is None) or (dq is not None and g.const(dq.input[0]) is None):
                    reasons.append(f"{what} (input {k}) '{node.input[k]}' must be constant")
        axis = int(a.get("axis", -1))
        if rank is not None and -rank <= axis < rank and axis % rank != rank - 1:
            reasons.append(f"axis {axis} normalizes over several axes; only the last axis (axis=-1) is supported")
        if int(a.get("stash_type", 1)) != 1:
            reasons.append("stash_type other than 1 (float32) is not supported")
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
        elif n.op_type in RECURRENT_OPS:
            unsupported.append((n.op_type, label, f"operator {n.op_type} {_RECURRENT_HINT}"))
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
            if prod is None and g.const(name) is not None and n.op_type in ("Add", "Mul", "Sub"):
                reasons.append(f"constant operand '{name}' is float; it must be int8 through DequantizeLinear")
                continue
            reasons.append(f"input '{name}' is not produced by DequantizeLinear: float operators must read "
                           "int8 values through DequantizeLinear (is the model quantized in QDQ format?)")
        # ... and the result must be quantized again (possibly after Relu/Clip).
        users = g.real_consumers(n.output[0])
        if n.op_type == "Split":
            for out in n.output[1:]:
                if out and not _read_by_one_quantize(g, out):
                    reasons.append(f"output '{out}' must be read by one QuantizeLinear and nothing else")
        elif n.op_type == "LayerNormalization":
            for out in n.output[1:]:
                if out and (g.consumers.get(out) or out in g.graph_outputs):
                    reasons.append(f"output '{out}' (Mean or InvStdDev) is used; only the normalized output "
                                   "Y is supported")
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


def _read_by_one_quantize(g: _OnnxGraph, name: str) -> bool:
    users = g.real_consumers(name)
    return name not in g.graph_outputs and not _resolve_out(g, name) and len(users) == 1 and \
        users[0].op_type == "QuantizeLinear"


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


def _small_fold_result(node, consts) -> bool:
    """Whether evaluating ``node`` on constants cannot build a huge array (ConstantOfShape, Range)."""
    try:
        if node.op_type == "ConstantOfShape":
            return _prod(np.ravel(consts[node.input[0]])) <= (1 << 20)
        if node.op_type == "Range":
            start, limit, delta = (float(np.ravel(consts[i])[0]) for i in node.input[:3])
            return delta != 0 and math.isfinite(start + limit + delta) and abs((limit - start) / delta) <= (1 << 20)
    except Exception:
        return False
    return all(consts[i].size <= (1 << 20) for i in node.input if i)


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
            elif all(i == "" or i in consts for i in n.input) and len(n.output) == 1 and \
                    _small_fold_result(n, consts):
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


RESIZE_ATTR = "tinyengine.onnx_resize"


def _resize_attributes(g: _OnnxGraph) -> Dict[str, dict]:
    """What TVM's Relax loses of each Resize (its scales and ONNX modes), keyed by
    the Resize's output tensor: attached to the imported function as
    ``RESIZE_ATTR`` for CanonicalizeONNXQDQ (Pads stay in the IR, onnx_fixups)."""
    resizes = {}
    for i, n in enumerate(g.model.graph.node):
        if n.op_type != "Resize":
            continue
        a = g.attrs(n)
        scales = g.const(n.input[2]) if len(n.input) > 2 and n.input[2] else None
        coord = a.get("coordinate_transformation_mode", b"half_pixel")
        nearest = a.get("nearest_mode", b"round_prefer_floor")
        entry = dict(
            node=_node_label(n, i),
            coordinate_transformation_mode=coord.decode() if isinstance(coord, bytes) else coord,
            nearest_mode=nearest.decode() if isinstance(nearest, bytes) else nearest,
        )
        if scales is not None and scales.size == 4:
            entry["scales"] = [float(v) for v in np.ravel(scales)[2:4]]
        resizes[n.output[0]] = entry
    return resizes


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


# ---------------------------------------------------------------------------
# Input validation: every size, index, enum and quantization parameter of the
# model is range-checked here, before numpy_helper, onnx's shape inference
# helpers or TVM read it.  Problems name the node by index and first output
# ("#3 conv1_out", see _site) and the field.

MAX_TENSOR_BYTES = 16 << 20  # larger than the SRAM/flash of any microcontroller we target
_INT32_MAX = 2 ** 31 - 1
_TOO_BIG = "bigger than any microcontroller's memory (16 MiB)"
# TensorProto data types accepted in initializers / Constant values: numpy type, typed field.
_TENSOR_TYPES = {
    1: (np.float32, "float_data"), 2: (np.uint8, "int32_data"), 3: (np.int8, "int32_data"),
    4: (np.uint16, "int32_data"), 5: (np.int16, "int32_data"), 6: (np.int32, "int32_data"),
    7: (np.int64, "int64_data"), 9: (np.bool_, "int32_data"), 10: (np.float16, "int32_data"),
    11: (np.float64, "double_data"), 12: (np.uint32, "uint64_data"), 13: (np.uint64, "uint64_data"),
}
_TYPED_FIELDS = ("float_data", "int32_data", "string_data", "int64_data", "double_data", "uint64_data")
_RESIZE_MODES = ("nearest", "linear", "cubic")
_RESIZE_COORDS = ("half_pixel", "half_pixel_symmetric", "pytorch_half_pixel", "align_corners", "asymmetric",
                  "tf_half_pixel_for_nearest", "tf_crop_and_resize")
_RESIZE_NEAREST = ("round_prefer_floor", "round_prefer_ceil", "floor", "ceil")
_AUTO_PADS = ("NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID")
_PAD_MODES = ("constant", "reflect", "edge", "wrap")


def _prod(dims) -> int:
    out = 1
    for d in dims:
        out *= int(d)
    return out


def _tensor_problem(t) -> Optional[str]:
    """Why a TensorProto (initializer / Constant value) cannot be read safely, or None."""
    from onnx import TensorProto

    if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
        return ("its values are stored in an external file, which is not supported (save the model with "
                "the weights inside the .onnx file)")
    if t.HasField("segment"):
        return "segmented tensors are not supported"
    dims = [int(d) for d in t.dims]
    if any(d < 0 for d in dims):
        return f"dims {dims}: a dimension is negative"
    n = _prod(dims)
    if n > _INT32_MAX:
        return f"dims {dims}: {n} elements do not fit int32"
    if t.data_type not in _TENSOR_TYPES:
        try:
            type_name = TensorProto.DataType.Name(t.data_type).lower()
        except ValueError:
            type_name = str(t.data_type)
        return f"data_type {type_name} is not supported in a constant"
    dtype, field = _TENSOR_TYPES[t.data_type]
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes > MAX_TENSOR_BYTES:
        return f"dims {dims} ({nbytes} bytes) make it {_TOO_BIG}"
    others = [f for f in _TYPED_FIELDS if len(getattr(t, f)) and (t.HasField("raw_data") or f != field)]
    if others:
        return f"holds values in {others[0]}, which does not match data_type {np.dtype(dtype).name}" \
            + (" and raw_data" if t.HasField("raw_data") else "")
    if t.HasField("raw_data"):
        if len(t.raw_data) != nbytes:
            return (f"raw_data holds {len(t.raw_data)} bytes but dims {dims} of {np.dtype(dtype).name} "
                    f"need {nbytes}")
    elif len(getattr(t, field)) != n:
        return f"{field} holds {len(getattr(t, field))} values but dims {dims} need {n}"
    return None


def _check_tensors(model) -> List[Tuple[str, str, str]]:
    """Initializers, Constant values and graph inputs: sizes, dtypes, static positive dims."""
    from onnx import AttributeProto

    g = model.graph
    problems = []
    first_use: Dict[str, Tuple[int, object, int]] = {}
    for i, n in enumerate(g.node):
        for k, name in enumerate(n.input):
            first_use.setdefault(name, (i, n, k))
    for t in g.initializer:
        why = _tensor_problem(t)
        if why is None:
            continue
        if t.name in first_use:
            i, n, k = first_use[t.name]
            problems.append((n.op_type, _site(n, i), f"input {k} (initializer '{t.name}'): {why}"))
        else:
            problems.append(("INITIALIZER", t.name, why))
    for i, n in enumerate(g.node):
        if n.op_type != "Constant":
            continue
        for a in n.attribute:
            if a.type == AttributeProto.TENSOR:
                why = _tensor_problem(a.t)
                if why is not None:
                    problems.append((n.op_type, _site(n, i), f"attribute {a.name}: {why}"))
            elif a.name in ("sparse_value", "value_string", "value_strings"):
                problems.append((n.op_type, _site(n, i), f"attribute {a.name} is not supported"))
            elif len(a.ints) > (1 << 20) or len(a.floats) > (1 << 20):
                problems.append((n.op_type, _site(n, i), f"attribute {a.name} is {_TOO_BIG}"))
    inits = {t.name for t in g.initializer}
    for vi in g.input:
        if vi.name in inits:
            continue
        if not vi.type.HasField("tensor_type"):
            problems.append(("INPUT", vi.name, "the input is not a tensor"))
            continue
        tt = vi.type.tensor_type
        if not tt.HasField("shape"):
            problems.append(("INPUT", vi.name, "the input has no shape; a static shape is needed"))
            continue
        dims = []
        for k, d in enumerate(tt.shape.dim):
            if not d.HasField("dim_value"):
                problems.append(("INPUT", vi.name, f"shape dimension {k} is dynamic; dynamic input shapes are not "
                                                   "supported (only a dynamic batch dimension, compiled as 1)"))
                break
            if d.dim_value <= 0:
                problems.append(("INPUT", vi.name, f"shape dimension {k} is {d.dim_value}; dimensions must be >= 1"))
                break
            dims.append(int(d.dim_value))
        else:
            n = _prod(dims)
            size = n * (4 if tt.elem_type == 1 else 1)
            if n > _INT32_MAX or size > MAX_TENSOR_BYTES:
                problems.append(("INPUT", vi.name, f"shape {dims} ({n} elements) is {_TOO_BIG}"))
    return problems


def _checker_where(model, message: str) -> str:
    """' at node #i out (op)' for the first node the onnx checker's message names by name."""
    best = None
    for i, n in enumerate(model.graph.node):
        if not n.name:
            continue
        m = re.search(r"(?<![\w.])" + re.escape(n.name) + r"(?![\w.])", message)
        if m and (best is None or m.start() < best[0]):
            best = (m.start(), f" at node {_site(n, i)} ({n.op_type})")
    return best[1] if best else ""


def _run_checker(model, full_check: bool) -> None:
    """onnx.checker (and, with full_check, strict shape and type inference) -> ModelFormatError."""
    import onnx

    try:
        onnx.checker.check_model(model, full_check=full_check)
    except Exception as exc:  # ValidationError, InferenceError, ValueError (> 2 GB), ...
        msg = str(exc).strip()
        what = "shape inference" if full_check and isinstance(exc, onnx.shape_inference.InferenceError) \
            else "onnx.checker"
        raise ModelFormatError(f"invalid ONNX model: {what} fails{_checker_where(model, msg)}: {msg}") from None


def _fmt(values) -> str:
    arr = np.ravel(np.asarray(values))
    if arr.size > 8:
        return "[" + ", ".join(str(v) for v in arr[:8].tolist()) + ", ...]"
    return str(arr.tolist()) if np.ndim(values) else str(arr[0].item() if arr.size else values)


def _shape_of(g: "_OnnxGraph", name: str) -> Optional[List[Optional[int]]]:
    c = g.const(name)
    if c is not None:
        return list(c.shape)
    return g.shapes.get(name)


def _str_attr(a: dict, name: str, default: str) -> str:
    v = a.get(name, default)
    return v.decode(errors="replace") if isinstance(v, bytes) else str(v)


def _check_int_list(reasons: List[str], a: dict, name: str, length: Optional[int], low: int,
                    what: str) -> Optional[List[int]]:
    """``name`` (if present) has ``length`` values, each in [low, INT32_MAX]; returns it or None."""
    if name not in a:
        return None
    v = a[name]
    v = [int(x) for x in (v if isinstance(v, (list, tuple)) else [v])]
    if length is not None and len(v) != length:
        reasons.append(f"{name} {v}: expected {length} values ({what})")
        return None
    if any(x < low or x > _INT32_MAX for x in v):
        reasons.append(f"{name} {v}: every value must be >= {low}" + (" and fit int32" if any(x > _INT32_MAX for x in v)
                                                                       else ""))
        return None
    return v


def _check_flag(reasons: List[str], a: dict, name: str) -> None:
    if name in a and a[name] not in (0, 1):
        reasons.append(f"{name} {a[name]}: must be 0 or 1")


def _check_axis(reasons: List[str], a: dict, name: str, default: int, rank: Optional[int],
                inclusive_end: bool = False) -> Optional[int]:
    """Attribute ``name`` within [-rank, rank-1] (or [-rank, rank]); the normalized axis or None."""
    axis = int(a.get(name, default))
    if rank is None:
        return None
    hi = rank if inclusive_end else rank - 1
    if not -rank <= axis <= hi:
        reasons.append(f"{name} {axis} is out of range for a rank-{rank} input (must be in [{-rank}, {hi}])")
        return None
    return axis + rank if axis < 0 else axis


def _window_out(size: int, k: int, s: int, d: int, pb: int, pe: int) -> int:
    return (size + pb + pe - ((k - 1) * d + 1)) // s + 1


def _check_window_op(g: "_OnnxGraph", node, a: dict, reasons: List[str], kernel: List[int]) -> None:
    """strides/dilations/pads/auto_pad of Conv and pools, and an output of at least one element."""
    spatial = len(kernel)
    shape = _shape_of(g, node.input[0])
    strides = _check_int_list(reasons, a, "strides", spatial, 1, f"one per spatial axis, {spatial}")
    dil = _check_int_list(reasons, a, "dilations", spatial, 1, f"one per spatial axis, {spatial}")
    pads = _check_int_list(reasons, a, "pads", 2 * spatial, 0, f"begin and end per spatial axis, {2 * spatial}")
    auto_pad = _str_attr(a, "auto_pad", "NOTSET")
    if auto_pad not in _AUTO_PADS:
        reasons.append(f"auto_pad '{auto_pad}' is not an ONNX value (one of {', '.join(_AUTO_PADS)})")
    if reasons or shape is None or len(shape) != spatial + 2 or any(v is None for v in shape[2:]):
        return
    strides = strides or [1] * spatial
    dil = dil or [1] * spatial
    pads = pads if (pads is not None and auto_pad == "NOTSET") else [0] * (2 * spatial)
    for d in range(spatial):
        if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            continue
        if _window_out(shape[2 + d], kernel[d], strides[d], dil[d], pads[d], pads[d + spatial]) < 1:
            reasons.append(f"kernel_shape {kernel} (dilations {dil}) is larger than the padded input "
                           f"{list(shape[2:])} (pads {pads}): the output would be empty")
            return
    if node.op_type in ("AveragePool", "MaxPool") and any(
            pads[d] >= kernel[d] or pads[d + spatial] >= kernel[d] for d in range(spatial)):
        reasons.append(f"pads {pads}: each pad must be smaller than the kernel {kernel}")


def _check_fields_conv(g, node, a, reasons):
    dq = _dq_of(g, node.input[1]) if len(node.input) > 1 else None
    w = g.const(dq.input[0]) if dq is not None else g.const(node.input[1])
    if w is None or w.ndim < 3:
        if w is not None:
            reasons.append(f"weights of shape {list(w.shape)}: Conv weights must have rank >= 3")
        return
    spatial = w.ndim - 2
    kernel = _check_int_list(reasons, a, "kernel_shape", spatial, 1, f"one per spatial axis, {spatial}")
    if kernel is not None and kernel != list(w.shape[2:]):
        reasons.append(f"kernel_shape {kernel} does not match the weights' spatial shape {list(w.shape[2:])}")
    if any(d == 0 for d in w.shape):
        reasons.append(f"weights of shape {list(w.shape)} are empty")
        return
    group = int(a.get("group", 1))
    shape = _shape_of(g, node.input[0])
    cin = shape[1] if shape is not None and len(shape) > 1 else None
    if group < 1 or group > _INT32_MAX:
        reasons.append(f"group {group}: must be >= 1")
    elif w.shape[0] % group:
        reasons.append(f"group {group} does not divide the {w.shape[0]} output channels")
    elif cin is not None and (cin % group or w.shape[1] * group != cin):
        reasons.append(f"group {group} with weights of shape {list(w.shape)} does not fit the {cin} input channels "
                       f"(needs input channels = group * weights.shape[1] = {group * w.shape[1]})")
    if shape is not None and len(shape) != w.ndim:
        reasons.append(f"input of rank {len(shape)} does not match weights of rank {w.ndim}")
    if not reasons:
        _check_window_op(g, node, a, reasons, list(w.shape[2:]))


def _check_fields(g: "_OnnxGraph", node) -> List[str]:
    """Attribute, operand and quantization-parameter ranges of one supported node."""
    op, a = node.op_type, g.attrs(node)
    reasons: List[str] = []
    shape = _shape_of(g, node.input[0]) if len(node.input) and node.input[0] else None
    rank = len(shape) if shape is not None else None
    if op in QDQ_OPS:
        _check_qparams(g, node, a, reasons, shape)
    elif op == "Conv":
        _check_fields_conv(g, node, a, reasons)
    elif op in ("AveragePool", "MaxPool"):
        spatial = rank - 2 if rank is not None and rank > 2 else None
        if "kernel_shape" not in a:
            reasons.append("kernel_shape is missing")
        else:
            kernel = _check_int_list(reasons, a, "kernel_shape", spatial, 1,
                                     f"one per spatial axis, {spatial}")
            for flag in ("ceil_mode", "count_include_pad", "storage_order"):
                _check_flag(reasons, a, flag)
            if kernel is not None:
                _check_window_op(g, node, a, reasons, kernel)
    elif op == "Gemm":
        for flag in ("transA", "transB"):
            _check_flag(reasons, a, flag)
        for f in ("alpha", "beta"):
            if f in a and not math.isfinite(a[f]):
                reasons.append(f"{f} {a[f]}: must be finite")
    elif op in ("Concat", "Softmax"):
        dq = _dq_of(g, node.input[0]) if op == "Softmax" else None
        s_in = g.qparams(dq)[0] if dq is not None else None
        if s_in is not None and s_in.size == 1 and s_in.dtype.kind == "f" and \
                0 < float(np.ravel(s_in)[0]) * 2.0 ** 26 <= 1.0:
            # TFLM's PreprocessSoftmaxScaling needs input_scale * 2^26 > 1 (kScaledDiffIntegerBits = 5).
            reasons.append(f"input scale {float(np.ravel(s_in)[0]):.6g} is not above 2^-26, the smallest the int8 "
                           "Softmax kernel (TFLM's fixed-point form) can represent")
        axis = _check_axis(reasons, a, "axis", 1 if op == "Concat" else (-1 if g.opset >= 13 else 1), rank)
        if op == "Concat" and axis is not None:
            for k, name in enumerate(node.input[1:], 1):
                s = _shape_of(g, name)
                if s is None:
                    continue
                if len(s) != rank:
                    reasons.append(f"input {k} '{name}' has rank {len(s)}, input 0 has rank {rank}")
                elif any(x is not None and y is not None and x != y and d != axis
                         for d, (x, y) in enumerate(zip(s, shape))):
                    reasons.append(f"input {k} '{name}' of shape {s} differs from input 0 {shape} "
                                   f"outside axis {axis}")
        if op == "Concat" and "axis" not in a:
            reasons.append("axis is missing")
    elif op == "Flatten":
        _check_axis(reasons, a, "axis", 1, rank, inclusive_end=True)
    elif op == "Transpose":
        if "perm" in a:
            perm = [int(p) for p in a["perm"]]
            if rank is not None and sorted(perm) != list(range(rank)):
                reasons.append(f"perm {perm} is not a permutation of the {rank} input axes")
    elif op == "Reshape":
        _check_reshape(g, node, a, reasons, shape)
    elif op == "ConvTranspose":
        dq = _dq_of(g, node.input[1]) if len(node.input) > 1 else None
        w = g.const(dq.input[0]) if dq is not None else g.const(node.input[1])
        spatial = w.ndim - 2 if w is not None and w.ndim >= 3 else None
        if spatial is not None:
            kernel = _check_int_list(reasons, a, "kernel_shape", spatial, 1, f"one per spatial axis, {spatial}")
            if kernel is not None and kernel != list(w.shape[2:]):
                reasons.append(f"kernel_shape {kernel} does not match the weights' spatial shape {list(w.shape[2:])}")
            for name, n_values, low in (("strides", spatial, 1), ("dilations", spatial, 1),
                                        ("pads", 2 * spatial, 0), ("output_padding", spatial, 0)):
                _check_int_list(reasons, a, name, n_values, low, f"{n_values} values")
            if shape is not None and len(shape) > 1 and shape[1] is not None and shape[1] != w.shape[0]:
                reasons.append(f"weights of shape {list(w.shape)} do not fit the {shape[1]} input channels")
            group = int(a.get("group", 1))
            if group < 1 or group > _INT32_MAX or w.shape[0] % group:
                reasons.append(f"group {group}: must be >= 1 and divide the {w.shape[0]} input channels")
    elif op in ("Gather", "Split"):
        _check_axis(reasons, a, "axis", 0, rank)
    elif op in ("ReduceMean", "ReduceMax") and "axes" in a and rank is not None:
        if any(not -rank <= int(x) < rank for x in a["axes"]):
            reasons.append(f"axes {list(a['axes'])} are out of range for a rank-{rank} input")
    elif op == "LeakyRelu" and not math.isfinite(a.get("alpha", 0.01)):
        reasons.append(f"alpha {a.get('alpha')}: must be finite")
    elif op == "LayerNormalization":
        _check_axis(reasons, a, "axis", -1, rank)
        if not (math.isfinite(a.get("epsilon", 1e-5)) and a.get("epsilon", 1e-5) > 0):
            reasons.append(f"epsilon {a.get('epsilon')}: must be finite and > 0")
    elif op == "Pad":
        _check_pad(g, node, a, reasons, rank)
    elif op == "Resize":
        _check_resize(g, node, a, reasons, rank)
    elif op == "Clip":
        bounds = []
        for k, what in ((1, "min"), (2, "max")):
            if len(node.input) > k and node.input[k]:
                c = g.const(node.input[k])
                if c is None:
                    continue
                if c.size != 1:
                    reasons.append(f"{what} (input {k}) has {c.size} values; it must be a scalar")
                elif c.dtype.kind == "f" and np.isnan(c).any():
                    reasons.append(f"{what} (input {k}) is NaN")
                else:
                    bounds.append(float(np.ravel(c)[0]))
                    continue
            bounds.append(None)
        if len(bounds) == 2 and None not in bounds and bounds[0] > bounds[1]:
            reasons.append(f"min {bounds[0]} is greater than max {bounds[1]}")
    return reasons


def _check_qparams(g, node, a, reasons, shape) -> None:
    """QuantizeLinear / DequantizeLinear: scales, zero points, axis."""
    rank = len(shape) if shape is not None else None
    scale = g.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    zp = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    if scale is None:
        reasons.append("scale (input 1) must be a constant")
    if zp is None and len(node.input) > 2 and node.input[2]:
        reasons.append("zero point (input 2) must be a constant")
    if scale is not None:
        if scale.dtype.kind != "f":
            reasons.append(f"scale (input 1) is {scale.dtype}; it must be float32")
            scale = None
        elif scale.size == 0:
            reasons.append("scale (input 1) is empty")
            scale = None
        else:
            s = scale.astype(np.float64)
            bad = ~np.isfinite(s) | (s < float(np.finfo(np.float32).tiny))
            if bad.any():
                reasons.append(f"scale (input 1) {_fmt(scale[bad] if scale.ndim else scale)}: every scale must "
                               "be finite and > 0 (a normal float32)")
        if scale is not None and scale.ndim > 1:
            reasons.append(f"scale (input 1) has rank {scale.ndim}; only a scalar (per tensor) or a 1-D "
                           "(per axis) scale is supported")
    if zp is not None:
        # A 1-element scale with a 0-d zero point (or the reverse) is one per-tensor pair:
        # onnxruntime's quantizer writes LayerNormalization biases so.
        if scale is not None and zp.shape != scale.shape and not (zp.size == 1 and scale.size == 1):
            reasons.append(f"zero point (input 2) has shape {list(zp.shape)} but scale has shape {list(scale.shape)}")
        if zp.dtype.kind not in "iu":
            reasons.append(f"zero point (input 2) is {zp.dtype}; it must be an integer type")
        else:
            if node.op_type == "QuantizeLinear":
                qtype = _ELEM_NAMES.get(int(a.get("output_dtype", 0) or 0)) if a.get("output_dtype") else None
            else:
                x = g.const(node.input[0])
                qtype = str(x.dtype) if x is not None else _ELEM_NAMES.get(g.elem_types.get(node.input[0], 0))
            if qtype is not None and qtype != str(zp.dtype):
                reasons.append(f"zero point (input 2) is {zp.dtype} but the quantized tensor is {qtype}")
            elif qtype is not None and np.dtype(qtype).kind in "iu" and zp.size:
                info = np.iinfo(np.dtype(qtype))
                if zp.min() < info.min or zp.max() > info.max:
                    reasons.append(f"zero point (input 2) {_fmt(zp)} is outside the {qtype} range")
    if rank is None:
        return
    per_axis = scale is not None and scale.ndim == 1 and scale.size > 1
    if "axis" in a or per_axis:
        axis = _check_axis(reasons, a, "axis", 1, rank)
        if axis is not None and per_axis and shape[axis] is not None and scale.size != shape[axis]:
            reasons.append(f"scale (input 1) has {scale.size} values but dimension {axis} (axis) of the "
                           f"input has {shape[axis]}")


def _check_reshape(g, node, a, reasons, shape) -> None:
    target = g.const(node.input[1]) if len(node.input) > 1 and node.input[1] else None
    _check_flag(reasons, a, "allowzero")
    if target is None:
        return
    if target.dtype != np.int64 or target.ndim != 1:
        reasons.append(f"shape (input 1) must be a 1-D int64 tensor (got {target.dtype} of shape "
                       f"{list(target.shape)})")
        return
    t = [int(v) for v in target]
    if any(v < -1 or v > _INT32_MAX for v in t) or t.count(-1) > 1:
        reasons.append(f"shape (input 1) {t}: values must be >= -1 with at most one -1")
        return
    if a.get("allowzero", 0) and 0 in t:
        reasons.append(f"shape (input 1) {t}: allowzero=1 with a 0 makes an empty tensor")
        return
    if shape is None or None in shape:
        return
    if any(v == 0 and k >= len(shape) for k, v in enumerate(t)):
        reasons.append(f"shape (input 1) {t}: a 0 (copy) past the input's rank {len(shape)}")
        return
    out = [shape[k] if v == 0 else v for k, v in enumerate(t)]
    n_in = _prod(shape)
    known = _prod(v for v in out if v != -1)
    if -1 in out:
        if known == 0 or n_in % known:
            reasons.append(f"shape (input 1) {t} cannot hold the {n_in} elements of the input {shape}")
    elif known != n_in:
        reasons.append(f"shape (input 1) {t} has {known} elements, the input {shape} has {n_in}")


def _check_pad(g, node, a, reasons, rank) -> None:
    mode = _str_attr(a, "mode", "constant")
    if mode not in _PAD_MODES:
        reasons.append(f"mode '{mode}' is not an ONNX value (one of {', '.join(_PAD_MODES)})")
    pads = np.asarray(a["pads"]) if "pads" in a else (g.const(node.input[1]) if len(node.input) > 1 and
                                                      node.input[1] else None)
    axes = g.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    n_axes = rank
    if axes is not None:
        if axes.dtype.kind not in "iu" or axes.ndim != 1:
            reasons.append("axes (input 3) must be a 1-D integer tensor")
            return
        ax = [int(x) for x in axes]
        if rank is not None and (any(not -rank <= x < rank for x in ax) or len({x % rank for x in ax}) != len(ax)):
            reasons.append(f"axes (input 3) {ax}: must be distinct axes in [{-rank}, {rank - 1}]")
            return
        n_axes = len(ax)
    if pads is not None:
        if pads.dtype.kind not in "iu" or pads.ndim != 1:
            reasons.append("pads must be a 1-D integer tensor")
            return
        if n_axes is not None and pads.size != 2 * n_axes:
            reasons.append(f"pads {_fmt(pads)}: expected {2 * n_axes} values (begin and end per axis)")
        elif np.any(np.abs(pads.astype(np.float64)) > _INT32_MAX):
            reasons.append(f"pads {_fmt(pads)}: values must fit int32")
    if "value" in a and not math.isfinite(a["value"]):
        reasons.append(f"value {a['value']}: must be finite")
    if len(node.input) > 2 and node.input[2]:
        v = g.const(node.input[2])
        if v is not None and (v.size != 1 or (v.dtype.kind == "f" and not np.isfinite(v).all())):
            reasons.append(f"constant_value (input 2) {_fmt(v)}: must be one finite value")


def _check_resize(g, node, a, reasons, rank) -> None:
    for name, allowed, default in (("mode", _RESIZE_MODES, "nearest"),
                                   ("coordinate_transformation_mode", _RESIZE_COORDS, "half_pixel"),
                                   ("nearest_mode", _RESIZE_NEAREST, "round_prefer_floor")):
        v = _str_attr(a, name, default)
        if v not in allowed:
            reasons.append(f"{name} '{v}' is not an ONNX value (one of {', '.join(allowed)})")
    for flag in ("exclude_outside", "antialias"):
        _check_flag(reasons, a, flag)
    if "cubic_coeff_a" in a and not math.isfinite(a["cubic_coeff_a"]):
        reasons.append(f"cubic_coeff_a {a['cubic_coeff_a']}: must be finite")
    scales = g.const(node.input[2]) if len(node.input) > 2 and node.input[2] else None
    sizes = g.const(node.input[3]) if len(node.input) > 3 and node.input[3] else None
    if scales is not None and scales.size:
        if scales.dtype.kind != "f" or scales.ndim != 1:
            reasons.append("scales (input 2) must be a 1-D float tensor")
        elif rank is not None and scales.size != rank:
            reasons.append(f"scales (input 2) {_fmt(scales)}: expected {rank} values, one per input axis")
        elif not (np.isfinite(scales).all() and (scales > 0).all()):
            reasons.append(f"scales (input 2) {_fmt(scales)}: every scale must be finite and > 0")
        if sizes is not None and sizes.size:
            reasons.append("scales and sizes are both given; only one of them may be")
    if sizes is not None and sizes.size:
        if sizes.dtype.kind not in "iu" or sizes.ndim != 1:
            reasons.append("sizes (input 3) must be a 1-D integer tensor")
        elif rank is not None and sizes.size != rank:
            reasons.append(f"sizes (input 3) {_fmt(sizes)}: expected {rank} values, one per input axis")
        elif (sizes < 1).any() or (sizes > _INT32_MAX).any():
            reasons.append(f"sizes (input 3) {_fmt(sizes)}: every size must be >= 1")


def _check_activation_sizes(g: "_OnnxGraph") -> List[Tuple[str, str, str]]:
    """Every tensor a node produces: a non-empty, MCU-sized shape (where inference knows it)."""
    problems = []
    io = {vi.name for vi in g.model.graph.input} | set(g.graph_outputs)
    for i, n in enumerate(g.model.graph.node):
        for name in n.output:
            shape = g.shapes.get(name)
            if not name or shape is None or None in shape:
                continue
            if any(d < 0 for d in shape):
                problems.append((n.op_type, _site(n, i), f"output '{name}' has a negative dimension {shape}"))
                continue
            count = _prod(shape)
            itemsize = 4 if name in io and g.elem_types.get(name) == 1 else 1
            if count == 0 and g.elem_types.get(name) != 7:  # int64 shape helpers may be empty
                problems.append((n.op_type, _site(n, i), f"output '{name}' of shape {shape} has no elements"))
            elif count > _INT32_MAX or count * itemsize > MAX_TENSOR_BYTES:
                problems.append((n.op_type, _site(n, i), f"output '{name}' of shape {shape} ({count} elements) "
                                                         f"is {_TOO_BIG}"))
    return problems


def _validate(model, name: str) -> "_OnnxGraph":
    """Every check that must hold before anything else reads the model (see import_onnx)."""
    import onnx

    problems = _check_tensors(model)
    if problems:
        raise UnsupportedModelError(problems, name)
    _run_checker(model, full_check=False)
    versions = [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")]
    newest = onnx.defs.onnx_opset_version()
    if any(v < 1 or v > newest for v in versions):
        raise ModelFormatError(f"invalid ONNX model: default-domain opset {max(versions)} is not between 1 "
                               f"and {newest}, the newest this onnx package knows")
    g = _OnnxGraph(model)
    problems = []
    for i, n in enumerate(model.graph.node):
        if n.domain in ("", "ai.onnx") and n.op_type in SUPPORTED_OPS:
            problems += [(n.op_type, _site(n, i), r) for r in _check_fields(g, n)]
    problems += _check_activation_sizes(g)
    if problems:
        raise UnsupportedModelError(problems, name)
    _run_checker(model, full_check=True)
    return g


def import_onnx(data: bytes, name: str) -> ImportedModel:
    """Validate an ONNX QDQ model, import it with tvm.relax.frontend.onnx and canonicalize it.

    The returned module is in the NHWC QDQ form (see CanonicalizeONNXQDQ) with
    the model's NCHW inputs and outputs. What TVM's Relax drops stays in the IR:
    constant Pads as ``relax.nn.pad``, Resize scales and modes as the function
    attribute ``RESIZE_ATTR`` keyed by tensor name.

    Checks, in order (the first stage that finds a problem raises):

    1. protobuf decoding, valid UTF-8 names, a graph with nodes, outputs, a
       default-domain opset, node inputs that resolve (ModelFormatError);
    2. initializers / Constant values (sizes against dims and dtype, no
       external data, at most 16 MiB) and graph inputs (static positive dims,
       at most 16 MiB) (UnsupportedModelError naming the node as ``#index
       first_output`` and the field);
    3. ``onnx.checker`` (ModelFormatError with the checker's message);
    4. attribute, operand and quantization-parameter ranges of every supported
       operator and the size of every inferred activation (UnsupportedModelError);
    5. ``onnx.checker`` with full_check: strict shape and type inference
       (ModelFormatError);
    6. the QDQ-structure and semantics checks (UnsupportedModelError).

    Nothing but ModelFormatError / UnsupportedModelError leaves this function:
    an unexpected exception after the checks is reported as an
    UnsupportedModelError naming the model (an internal error to report).
    """
    try:
        return _import_onnx(data, name)
    except (ModelFormatError, UnsupportedModelError):
        raise
    except Exception as exc:  # backstop: the checks above should have refused the model
        raise UnsupportedModelError(
            [("MODEL", name, f"internal error while importing the ONNX model ({type(exc).__name__}: {exc}); "
                             "the model passed the input checks, please report it")], name) from exc


def _import_onnx(data: bytes, name: str) -> ImportedModel:
    model = _parse(data)
    _fix_batch_dimension(model)
    g = _validate(model, name)
    if _fold_shape_constants(model):
        g = _OnnxGraph(model)
    problems = _check_graph(g)
    if problems:
        raise UnsupportedModelError(problems, name)

    shape_dict = {vi.name: [d.dim_value for d in vi.type.tensor_type.shape.dim] for vi in g.graph_inputs}
    inputs, outputs = _describe_io(g, shape_dict)
    resizes = _resize_attributes(g)
    _explicit_conv_pads(g, model)

    from tvm.relax.frontend.onnx import from_onnx

    from .onnx_fixups import pad_as_relax_op
    from .tensor_names import name_bindings, recording_onnx_names

    try:
        with warnings.catch_warnings(), recording_onnx_names() as tensor_names, pad_as_relax_op():
            warnings.simplefilter("ignore")
            mod = from_onnx(model, shape_dict=shape_dict, dtype_dict={n: d.dtype for n, d in zip(shape_dict, inputs)})
        mod["main"] = name_bindings(mod["main"], tensor_names)
        if resizes:
            mod["main"] = mod["main"].with_attr(RESIZE_ATTR, resizes)
    except Exception as exc:
        raise UnsupportedModelError([("MODEL", name, f"TVM's ONNX frontend failed: {exc}")], name) from exc
    ret = mod["main"].ret_ty
    for desc, ty in zip(outputs, list(ret.fields) if hasattr(ret, "fields") else [ret]):
        desc.shape = [int(d) for d in ty.shape]  # static shapes as imported (symbolic batch -> 1)

    from ..transform.onnx_canonicalize import CanonicalizeONNXQDQ

    try:
        mod = CanonicalizeONNXQDQ()(mod)
    except UnsupportedModelError as exc:
        raise UnsupportedModelError(exc.problems, name) from None
    return ImportedModel(name=name, format="onnx", mod=mod, inputs=inputs, outputs=outputs)
