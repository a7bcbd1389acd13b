"""The checked TFLite reader (issue 8): bad bytes raise ModelFormatError or
UnsupportedModelError naming the operator/tensor and the field, never anything else.

Every check has a case that builds a small valid model with TFLiteWriter (directly,
or through modelgen's QuantizedGraph) and corrupts exactly one field in place; the
field's byte position is found through the ``tflite`` package's accessors
(``table._tab.Pos + table._tab.Offset(slot)``).
"""
import math
import os
import struct
import time

import numpy as np
import pytest

from tinyengine_tvm.errors import ModelFormatError, UnsupportedModelError
from tinyengine_tvm.frontend.tflite_checks import MAX_ACTIVATION_BYTES, check_tflite
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.testing import SHARED_MODELS

tflite = pytest.importorskip("tflite", reason="the `tflite` flatbuffer reader is not installed")
pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen import quantized_ops as Q  # noqa: E402
from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter  # noqa: E402

# vtable slots (schema.fbs field order: slot = 4 + 2 * field id)
MODEL_VERSION, MODEL_SUBGRAPHS = 4, 8
OPCODE_DEPRECATED, OPCODE_BUILTIN = 4, 10
SG_INPUTS = 6
T_SHAPE, T_TYPE, T_BUFFER, T_NAME = 4, 6, 8, 10
Q_SCALE, Q_ZERO_POINT, Q_QDIM = 8, 10, 16
OP_OPCODE, OP_INPUTS, OP_OUTPUTS, OP_OPTIONS_TYPE = 4, 6, 8, 10


# ------------------------------------------------------------------ models
def _chain_model() -> bytes:
    """input -> CONV_2D -> DEPTHWISE_CONV_2D -> AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED -> SOFTMAX."""
    rng = np.random.default_rng(7)
    w = TFLiteWriter("tflite_checks chain")
    x = w.tensor("input", (1, 8, 8, 3), "int8", scale=0.05, zero_point=-3)
    cw_s = [0.01, 0.02, 0.03, 0.04]
    cw = w.tensor("conv_w", (4, 3, 3, 3), "int8", scale=cw_s, quantized_dimension=0,
                  data=rng.integers(-127, 128, (4, 3, 3, 3)))
    cb = w.tensor("conv_b", (4,), "int32", scale=[0.05 * s for s in cw_s], data=rng.integers(-50, 50, 4))
    w.tensor("spare_b", (5,), "int32", scale=0.0005, data=np.zeros(5, np.int32))
    c = w.tensor("conv_out", (1, 3, 3, 4), "int8", scale=0.1, zero_point=2)
    w.op("CONV_2D", [x, cw, cb], [c], padding="VALID", stride=2, activation="RELU")
    dw_s = [0.01 * (k + 1) for k in range(8)]
    dww = w.tensor("dw_w", (1, 3, 3, 8), "int8", scale=dw_s, quantized_dimension=3,
                   data=rng.integers(-127, 128, (1, 3, 3, 8)))
    dwb = w.tensor("dw_b", (8,), "int32", scale=[0.1 * s for s in dw_s], data=rng.integers(-50, 50, 8))
    d = w.tensor("dw_out", (1, 3, 3, 8), "int8", scale=0.1, zero_point=2)
    w.op("DEPTHWISE_CONV_2D", [c, dww, dwb], [d], padding="SAME", stride=1, dilation=2,
         depth_multiplier=2, activation="RELU6")
    p = w.tensor("pool_out", (1, 1, 1, 8), "int8", scale=0.1, zero_point=2)
    w.op("AVERAGE_POOL_2D", [d], [p], padding="VALID", filter=3, stride=1)
    shp = w.tensor("reshape_shape", (2,), "int32", data=np.array([1, 8]))
    r = w.tensor("flat", (1, 8), "int8", scale=0.1, zero_point=2)
    w.op("RESHAPE", [p, shp], [r], new_shape=[1, 8])
    fw = w.tensor("fc_w", (10, 8), "int8", scale=0.02, zero_point=0, data=rng.integers(-127, 128, (10, 8)))
    fb = w.tensor("fc_b", (10,), "int32", scale=0.1 * 0.02, data=rng.integers(-50, 50, 10))
    f = w.tensor("logits", (1, 10), "int8", scale=0.2, zero_point=5)
    w.op("FULLY_CONNECTED", [r, fw, fb], [f])
    y = w.tensor("probs", (1, 10), "int8", scale=1 / 256, zero_point=-128)
    w.op("SOFTMAX", [f], [y], beta=1.0)
    w.inputs([x])
    w.outputs([y])
    return w.finish()


_CACHE = {}


def _base(name: str) -> bytes:
    builders = {
        "chain": _chain_model,
        "add": lambda: Q.add_model(),
        "concat": lambda: Q.concat_model(),
        "pad": lambda: Q.pad_model(),
        "transpose": lambda: Q.transpose_model(),
        "mean": lambda: Q.mean_model(),
        "squeeze": lambda: Q.squeeze_model(),
        "resize": lambda: Q.resize_nearest_model(),
    }
    if name not in _CACHE:
        _CACHE[name] = builders[name]()
    return _CACHE[name]


# ------------------------------------------------------------------ locating fields
def _model(data):
    return tflite.Model.GetRootAsModel(data, 0)


def _sg(data):
    return _model(data).Subgraphs(0)


def _tidx(data, name) -> int:
    sg = _sg(data)
    for i in range(sg.TensorsLength()):
        if sg.Tensors(i).Name().decode() == name:
            return i
    raise KeyError(name)


def _tensor(data, name):
    return _sg(data).Tensors(_tidx(data, name))


def _quant(data, name):
    return _tensor(data, name).Quantization()


def _op(data, i):
    return _sg(data).Operators(i)


def _opcode_of(data, i):
    return _model(data).OperatorCodes(_op(data, i).OpcodeIndex())


def _options(data, i, cls):
    table = _op(data, i).BuiltinOptions()
    opts = cls()
    opts.Init(table.Bytes, table.Pos)
    return opts


def _field(obj, slot) -> int:
    """Byte position of a stored scalar (or offset) field."""
    off = obj._tab.Offset(slot)
    assert off, f"slot {slot} of {type(obj).__name__} is not stored in the file"
    return obj._tab.Pos + off


def _elem(obj, slot, i, size=4) -> int:
    """Byte position of element ``i`` of a vector field."""
    off = obj._tab.Offset(slot)
    assert off, f"vector slot {slot} of {type(obj).__name__} is not stored"
    return obj._tab.Vector(off) + i * size


def _vlen(obj, slot) -> int:
    """Byte position of a vector field's length."""
    return _elem(obj, slot, 0) - 4


def _vtable(data, obj) -> int:
    return obj._tab.Pos - struct.unpack_from("<i", data, obj._tab.Pos)[0]


def _buffer_data(data, name, i, size) -> int:
    buf = _model(data).Buffers(_tensor(data, name).Buffer())
    return _elem(buf, 4, i, size)


def _patch(data, pos, fmt, value) -> bytes:
    b = bytearray(data)
    struct.pack_into("<" + fmt, b, pos, value)
    return bytes(b)


# ------------------------------------------------------------------ cases
# (id, base model, corrupt(data) -> data, error class, (op_type, node) or None, message fragments)
F, U = ModelFormatError, UnsupportedModelError


def _case(cid, base, corrupt, exc, where, *fragments):
    return pytest.param(base, corrupt, exc, where, fragments, id=cid)


STRUCTURAL = [
    _case("empty_file", "chain", lambda d: b"", F, None, "too short"),
    _case("not_tflite", "chain", lambda d: b"GIF89a" + bytes(100), F, None, "not a TFLite flatbuffer"),
    _case("truncated", "chain", lambda d: d[: len(d) // 2], F, None, "malformed TFLite file"),
    _case("root_offset_past_end", "chain", lambda d: _patch(d, 0, "I", len(d) + 64), F, None,
          "past the end", "root"),
    _case("vtable_outside_file", "chain",
          lambda d: _patch(d, _tensor(d, "conv_out")._tab.Pos, "i", -0x7FFF0000), F, None,
          "vtable at byte", "tensors[4]"),
    _case("vtable_size_invalid", "chain",
          lambda d: _patch(d, _vtable(d, _tensor(d, "conv_out")), "H", 3), F, None, "vtable size 3"),
    _case("field_outside_table", "chain",
          lambda d: _patch(d, _vtable(d, _tensor(d, "conv_out")) + T_SHAPE, "H", 0x7FFE), F, None,
          "points outside its"),
    _case("offset_past_end", "chain",
          lambda d: _patch(d, _field(_tensor(d, "conv_out"), T_SHAPE), "I", 0x7FFFFF00), F, None,
          "past the end", "tensors[4].shape"),
    _case("vector_too_long", "chain",
          lambda d: _patch(d, _vlen(_tensor(d, "conv_out"), T_SHAPE), "I", 0x10000000), F, None,
          "runs past the end", "tensors[4].shape"),
    _case("name_not_utf8", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "conv_out"), T_NAME, 0, 1), "B", 0xFF), F, None,
          "not valid UTF-8", "tensors[4].name"),
    _case("name_not_terminated", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "conv_out"), T_NAME, len("conv_out"), 1), "B", 0x41),
          F, None, "NUL-terminated", "tensors[4].name"),
    _case("table_misaligned", "chain",
          lambda d: _patch(d, _elem(_model(d), MODEL_SUBGRAPHS, 0),
                           "I", struct.unpack_from("<I", d, _elem(_model(d), MODEL_SUBGRAPHS, 0))[0] + 2),
          F, None, "misaligned", "subgraphs[0]"),
    _case("subgraphs_missing", "chain",
          lambda d: _patch(d, _vtable(d, _model(d)) + MODEL_SUBGRAPHS, "H", 0), F, None,
          "Model.subgraphs is missing"),
    _case("op_inputs_missing", "chain",
          lambda d: _patch(d, _vtable(d, _op(d, 0)) + OP_INPUTS, "H", 0), F, None,
          "Operator.inputs is missing"),
    _case("options_field_misaligned", "chain",
          lambda d: _patch(d, _vtable(d, _options(d, 0, tflite.Conv2DOptions)) + 8, "H", 5), F, None,
          "misaligned", "Conv2DOptions>.stride_h"),
]

CHAIN_SEMANTIC = [
    _case("model_version", "chain", lambda d: _patch(d, _field(_model(d), MODEL_VERSION), "I", 2), U,
          ("MODEL", "chain"), "Model.version is 2"),
    _case("opcode_index", "chain", lambda d: _patch(d, _field(_op(d, 1), OP_OPCODE), "I", 99), U,
          ("OPERATOR", "#1 dw_out"), "Operator.opcode_index is 99"),
    _case("builtin_code_unknown", "chain",
          lambda d: _patch(d, _field(_opcode_of(d, 0), OPCODE_BUILTIN), "i", 250), U,
          ("OPERATOR", "#0 conv_out"), "OperatorCode.builtin_code is 250"),
    _case("builtin_codes_disagree", "chain",
          lambda d: _patch(d, _field(_opcode_of(d, 4), OPCODE_DEPRECATED), "b", 0), U,
          ("OPERATOR", "#4 logits"), "OperatorCode.deprecated_builtin_code is 0 but builtin_code is 9"),
    _case("custom_without_name", "chain",
          lambda d: _patch(d, _field(_opcode_of(d, 0), OPCODE_DEPRECATED), "b", 32), U,
          ("CUSTOM", "#0 conv_out"), "OperatorCode.custom_code is empty"),
    _case("op_input_index", "chain", lambda d: _patch(d, _elem(_op(d, 0), OP_INPUTS, 0), "i", 99), U,
          ("CONV_2D", "#0 conv_out"), "Operator.inputs[0] is tensor 99"),
    _case("op_input_not_optional", "chain", lambda d: _patch(d, _elem(_op(d, 0), OP_INPUTS, 1), "i", -1),
          U, ("CONV_2D", "#0 conv_out"), "Operator.inputs[1] is tensor -1", "not optional"),
    _case("op_output_index", "chain", lambda d: _patch(d, _elem(_op(d, 5), OP_OUTPUTS, 0), "i", 99), U,
          ("SOFTMAX", "#5 op_5"), "Operator.outputs[0] is tensor 99"),
    _case("subgraph_input_index", "chain", lambda d: _patch(d, _elem(_sg(d), SG_INPUTS, 0), "i", 99), U,
          ("SUBGRAPH", "subgraph 0"), "SubGraph.inputs[0] is tensor 99"),
    _case("buffer_index", "chain", lambda d: _patch(d, _field(_tensor(d, "conv_w"), T_BUFFER), "I", 999),
          U, ("TENSOR", "tensor #1 conv_w"), "Tensor.buffer is 999"),
    _case("tensor_type_unknown", "chain",
          lambda d: _patch(d, _field(_tensor(d, "conv_out"), T_TYPE), "b", 100), U,
          ("TENSOR", "tensor #4 conv_out"), "Tensor.type is 100"),
    _case("negative_dim", "chain", lambda d: _patch(d, _elem(_tensor(d, "input"), T_SHAPE, 1), "i", -3),
          U, ("TENSOR", "tensor #0 input"), "Tensor.shape[1] is -3", ">= 1"),
    _case("zero_dim", "chain", lambda d: _patch(d, _elem(_tensor(d, "input"), T_SHAPE, 2), "i", 0),
          U, ("TENSOR", "tensor #0 input"), "Tensor.shape[2] is 0"),
    _case("int32_overflow", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "conv_out"), T_SHAPE, 1), "i", 587202608), U,
          ("TENSOR", "tensor #4 conv_out"), "[1,587202608,3,4]", "overflows int32"),
    _case("activation_too_big", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "conv_out"), T_SHAPE, 1), "i", 2_000_000), U,
          ("TENSOR", "tensor #4 conv_out"), "bigger than any microcontroller's memory",
          str(MAX_ACTIVATION_BYTES)),
    _case("constant_size", "chain", lambda d: _patch(d, _elem(_tensor(d, "conv_b"), T_SHAPE, 0), "i", 5),
          U, ("TENSOR", "tensor #2 conv_b"), "holds 16 bytes", "needs 20"),
    _case("zero_point_count", "chain", lambda d: _patch(d, _vlen(_quant(d, "conv_w"), Q_ZERO_POINT), "I", 3),
          U, ("TENSOR", "tensor #1 conv_w"), "QuantizationParameters.zero_point has 3 values for 4 scales"),
    _case("scale_count_vs_dimension", "chain",
          lambda d: _patch(d, _field(_quant(d, "dw_w"), Q_QDIM), "i", 1), U, ("TENSOR", "tensor #5 dw_w"),
          "QuantizationParameters.scale has 8 values", "dimension 1"),
    _case("quantized_dimension_range", "chain",
          lambda d: _patch(d, _field(_quant(d, "dw_w"), Q_QDIM), "i", 7), U, ("TENSOR", "tensor #5 dw_w"),
          "QuantizationParameters.quantized_dimension is 7"),
    _case("scale_negative", "chain", lambda d: _patch(d, _elem(_quant(d, "input"), Q_SCALE, 0), "f", -1.0),
          U, ("TENSOR", "tensor #0 input"), "QuantizationParameters.scale[0] is -1.0", "finite and > 0"),
    _case("scale_nan", "chain",
          lambda d: _patch(d, _elem(_quant(d, "conv_w"), Q_SCALE, 2), "f", float("nan")), U,
          ("TENSOR", "tensor #1 conv_w"), "QuantizationParameters.scale[2] is nan"),
    _case("zero_point_range", "chain",
          lambda d: _patch(d, _elem(_quant(d, "input"), Q_ZERO_POINT, 0, 8), "q", 200), U,
          ("TENSOR", "tensor #0 input"), "QuantizationParameters.zero_point[0] is 200", "[-128, 127]"),
    _case("per_channel_zero_point", "chain",
          lambda d: _patch(d, _elem(_quant(d, "conv_w"), Q_ZERO_POINT, 1, 8), "q", 3), U,
          ("TENSOR", "tensor #1 conv_w"), "zero_point has non-zero values with per-channel"),
    _case("weights_zero_point", "chain",
          lambda d: _patch(d, _elem(_quant(d, "fc_w"), Q_ZERO_POINT, 0, 8), "q", 5), U,
          ("FULLY_CONNECTED", "#4 logits"), "weights 'fc_w' have non-zero zero points"),
    _case("options_type_mismatch", "chain",
          lambda d: _patch(d, _field(_op(d, 5), OP_OPTIONS_TYPE), "B", 1), U, ("SOFTMAX", "#5 probs"),
          "Operator.builtin_options_type is Conv2DOptions; SOFTMAX takes SoftmaxOptions"),
    _case("options_type_unknown", "chain",
          lambda d: _patch(d, _field(_op(d, 0), OP_OPTIONS_TYPE), "B", 200), U, ("CONV_2D", "#0 conv_out"),
          "Operator.builtin_options_type is 200, not a known BuiltinOptions"),
    _case("stride", "chain",
          lambda d: _patch(d, _field(_options(d, 0, tflite.Conv2DOptions), 8), "i", -3), U,
          ("CONV_2D", "#0 conv_out"), "Conv2DOptions.stride_h is -3; strides must be >= 1"),
    _case("dilation", "chain",
          lambda d: _patch(d, _field(_options(d, 1, tflite.DepthwiseConv2DOptions), 14), "i", 0), U,
          ("DEPTHWISE_CONV_2D", "#1 dw_out"), "DepthwiseConv2DOptions.dilation_w_factor is 0",
          "dilations must be >= 1"),
    _case("padding_enum", "chain",
          lambda d: _patch(d, _field(_options(d, 0, tflite.Conv2DOptions), 4), "b", 5), U,
          ("CONV_2D", "#0 conv_out"), "Conv2DOptions.padding is 5", "SAME (0) or VALID (1)"),
    _case("activation_enum", "chain",
          lambda d: _patch(d, _field(_options(d, 0, tflite.Conv2DOptions), 10), "b", 9), U,
          ("CONV_2D", "#0 conv_out"), "Conv2DOptions.fused_activation_function is 9"),
    _case("pool_filter", "chain",
          lambda d: _patch(d, _field(_options(d, 2, tflite.Pool2DOptions), 10), "i", 0), U,
          ("AVERAGE_POOL_2D", "#2 pool_out"), "Pool2DOptions.filter_width is 0"),
    _case("depth_multiplier_zero", "chain",
          lambda d: _patch(d, _field(_options(d, 1, tflite.DepthwiseConv2DOptions), 10), "i", 0), U,
          ("DEPTHWISE_CONV_2D", "#1 dw_out"), "DepthwiseConv2DOptions.depth_multiplier is 0"),
    _case("depth_multiplier_channels", "chain",
          lambda d: _patch(d, _field(_options(d, 1, tflite.DepthwiseConv2DOptions), 10), "i", 3), U,
          ("DEPTHWISE_CONV_2D", "#1 dw_out"), "DepthwiseConv2DOptions.depth_multiplier is 3",
          "8 output channels for 4 input channels"),
    _case("input_count", "chain", lambda d: _patch(d, _vlen(_op(d, 0), OP_INPUTS), "I", 1), U,
          ("CONV_2D", "#0 conv_out"), "Operator.inputs lists 1 tensor(s); CONV_2D takes 2 to 3"),
    _case("output_count", "chain", lambda d: _patch(d, _vlen(_op(d, 0), OP_OUTPUTS), "I", 0), U,
          ("CONV_2D", "#0 op_0"), "Operator.outputs lists 0 tensor(s)"),
    _case("input_rank", "chain", lambda d: _patch(d, _vlen(_tensor(d, "input"), T_SHAPE), "I", 3), U,
          ("CONV_2D", "#0 conv_out"), "input 'input' has shape [1,8,8]", "4-D"),
    _case("conv_input_channels", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "input"), T_SHAPE, 3), "i", 4), U,
          ("CONV_2D", "#0 conv_out"), "filter 'conv_w'", "takes 3 input channels", "4 channels"),
    _case("conv_bias_length", "chain",
          lambda d: _patch(d, _elem(_op(d, 0), OP_INPUTS, 2), "i", _tidx(d, "spare_b")), U,
          ("CONV_2D", "#0 conv_out"), "bias 'spare_b' has 5 elements for 4 output channels"),
    _case("conv_output_shape", "chain",
          lambda d: _patch(d, _elem(_tensor(d, "conv_out"), T_SHAPE, 1), "i", 4), U,
          ("CONV_2D", "#0 conv_out"), "height is 4 but VALID padding with stride 2 gives 3"),
    _case("depthwise_bias_absent", "chain", lambda d: _patch(d, _elem(_op(d, 1), OP_INPUTS, 2), "i", -1),
          U, ("DEPTHWISE_CONV_2D", "#1 dw_out"), "bias (input 2) is absent"),
    _case("hybrid_weights", "chain", lambda d: _patch(d, _field(_tensor(d, "conv_w"), T_TYPE), "b", 3), U,
          ("CONV_2D", "#0 conv_out"), "weights 'conv_w' are uint8", "hybrid"),
    _case("fc_input_depth", "chain",
          lambda d: _patch(d, _elem(_op(d, 4), OP_INPUTS, 0), "i", _tidx(d, "conv_out")), U,
          ("FULLY_CONNECTED", "#4 logits"), "36 elements", "weights' depth 8"),
    _case("pool_quantization", "chain",
          lambda d: _patch(d, _elem(_quant(d, "pool_out"), Q_ZERO_POINT, 0, 8), "q", 3), U,
          ("AVERAGE_POOL_2D", "#2 pool_out"), "quantized differently"),
    _case("reshape_elements", "chain", lambda d: _patch(d, _elem(_tensor(d, "flat"), T_SHAPE, 1), "i", 9),
          U, ("RESHAPE", "#3 flat"), "has 9 elements but input 'pool_out'"),
    _case("reshape_shape_operand", "chain",
          lambda d: _patch(d, _buffer_data(d, "reshape_shape", 1, 4), "i", 2),
          U, ("RESHAPE", "#3 flat"), "shape 'reshape_shape' is [1, 2] but output 'flat' has shape [1,8]"),
    _case("softmax_output_quantization", "chain",
          lambda d: _patch(d, _elem(_quant(d, "probs"), Q_ZERO_POINT, 0, 8), "q", -127), U,
          ("SOFTMAX", "#5 probs"), "scale 1/256 and zero point -128"),
    _case("softmax_beta", "chain",
          lambda d: _patch(d, _field(_options(d, 5, tflite.SoftmaxOptions), 4), "f", 0.0), U,
          ("SOFTMAX", "#5 probs"), "SoftmaxOptions.beta is 0"),
    _case("input_not_produced", "chain",
          lambda d: _patch(d, _elem(_op(d, 1), OP_INPUTS, 0), "i", _tidx(d, "dw_out")), U,
          ("DEPTHWISE_CONV_2D", "#1 dw_out"), "Operator.inputs[0] is tensor 7 ('dw_out')",
          "no earlier operator produces"),
    _case("output_is_constant", "chain",
          lambda d: _patch(d, _elem(_op(d, 0), OP_OUTPUTS, 0), "i", _tidx(d, "conv_w")), U,
          ("CONV_2D", "#0 conv_w"), "Operator.outputs[0] is the constant tensor 'conv_w'"),
]


def _out_name(data, op=0):
    sg = _sg(data)
    return sg.Tensors(int(sg.Operators(op).Outputs(0))).Name().decode()


def _in_name(data, op=0, k=0):
    sg = _sg(data)
    return sg.Tensors(int(sg.Operators(op).Inputs(k))).Name().decode()


OTHER_OPS = [
    _case("add_broadcast", "add",
          lambda d: _patch(d, _elem(_sg(d).Tensors(int(_op(d, 0).Inputs(1))), T_SHAPE, 2), "i", 3), U,
          ("ADD", "#0 {out}"), "cannot be broadcast together"),
    _case("add_output_scale", "add",
          lambda d: _patch(d, _elem(_sg(d).Tensors(int(_op(d, 0).Outputs(0))).Quantization(), Q_SCALE, 0),
                           "f", 1e-9), U, ("ADD", "#0 {out}"), "too small", "2^20"),
    _case("concat_axis", "concat",
          lambda d: _patch(d, _field(_options(d, 0, tflite.ConcatenationOptions), 4), "i", 7), U,
          ("CONCATENATION", "#0 {out}"), "ConcatenationOptions.axis is 7; the output has rank 4"),
    _case("pad_output_shape", "pad",
          lambda d: _patch(d, _elem(_sg(d).Tensors(int(_op(d, 0).Outputs(0))), T_SHAPE, 1), "i", 9), U,
          ("PAD", "#0 {out}"), "dimension 1 is 9", "padded by"),
    _case("transpose_perm", "transpose",
          lambda d: _patch(d, _buffer_data(d, _in_name(d, 0, 1), 2, 4), "i", 0), U,
          ("TRANSPOSE", "#0 {out}"), "not a permutation"),
    _case("mean_axis", "mean", lambda d: _patch(d, _buffer_data(d, _in_name(d, 0, 1), 0, 4), "i", 7), U,
          ("MEAN", "#0 {out}"), "holds 7; the input has rank 4"),
    _case("squeeze_dims", "squeeze",
          lambda d: _patch(d, _elem(_options(d, 0, tflite.SqueezeOptions), 4, 0), "i", 3), U,
          ("SQUEEZE", "#0 {out}"), "SqueezeOptions.squeeze_dims names dimension 3", "not a size-1"),
    _case("resize_size", "resize", lambda d: _patch(d, _buffer_data(d, _in_name(d, 0, 1), 1, 4), "i", 9), U,
          ("RESIZE_NEAREST_NEIGHBOR", "#0 {out}"), "resizing", "to 8x9"),
]


def _expect(data, exc, where, fragments, name="chain"):
    with pytest.raises(exc) as info:
        check_tflite(data, name=name)
    msg = str(info.value)
    for frag in fragments:
        assert frag in msg, f"{frag!r} not in: {msg}"
    assert "could not read it" not in msg  # the checker's own safety net must not fire
    if exc is UnsupportedModelError:
        assert len(info.value.problems) == 1, msg
        if where is not None:
            assert info.value.problems[0][:2] == where, msg
    return msg


@pytest.mark.parametrize("base,corrupt,exc,where,fragments", STRUCTURAL + CHAIN_SEMANTIC + OTHER_OPS)
def test_one_corrupted_field(base, corrupt, exc, where, fragments):
    data = _base(base)
    check_tflite(data)  # the uncorrupted model is fine
    bad = corrupt(data)
    assert len(bad) != len(data) or bad != data
    if where is not None and "{out}" in where[1]:
        where = (where[0], where[1].format(out=_out_name(data)))
    _expect(bad, exc, where, fragments)


def test_models_built_invalid_by_modelgen():
    """TFLM refuses a fused activation on CONCATENATION and crashes on a depthwise conv without bias."""
    _expect(Q.concat_model(activation="RELU"), UnsupportedModelError, None,
            ("CONCATENATION", "ConcatenationOptions.fused_activation_function is RELU"))
    _expect(Q.depthwise_conv2d_model(use_bias="absent"), UnsupportedModelError, None,
            ("DEPTHWISE_CONV_2D", "bias (input 2) is absent"))


def test_problem_names_op_index_and_first_output():
    bad = _patch(_base("chain"), _field(_options(_base("chain"), 0, tflite.Conv2DOptions), 8), "i", -3)
    with pytest.raises(UnsupportedModelError) as info:
        check_tflite(bad, name="my_model")
    assert info.value.problems == [
        ("CONV_2D", "#0 conv_out", "Conv2DOptions.stride_h is -3; strides must be >= 1")]
    assert "in my_model" in str(info.value)


def test_bytes_like_and_non_bytes():
    data = _base("chain")
    check_tflite(bytearray(data))
    check_tflite(memoryview(data))
    with pytest.raises(ModelFormatError):
        check_tflite("not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("kwargs", [
    dict(), dict(use_bias=False), dict(use_bias="absent"),
    dict(padding="VALID", stride=(2, 1), dilation=(1, 2)),
])
def test_modelgen_conv_variants_pass(kwargs):
    check_tflite(Q.conv2d_model(**kwargs))


def test_modelgen_models_pass():
    for name, fn in sorted(Q.MODEL_BUILDERS.items()):
        check_tflite(fn(), name=name)
    check_tflite(Q.concat_model(same_qparams=False))  # older TFLM and the compiler rescale inputs
    check_tflite(Q.reshape_model(new_shape=(1, -1)))
    check_tflite(Q.fully_connected_model(input_shape=(1, 4, 16), keep_num_dims=True))


# ------------------------------------------------------------------ real models
def _shared(shared_dir, name):
    with open(os.path.join(shared_dir, name + ".tflite"), "rb") as f:
        return f.read()


@pytest.mark.parametrize("name", SHARED_MODELS)
def test_shared_models_pass(shared_dir, name):
    check_tflite(_shared(shared_dir, name), name=name)


def test_default_model_passes():
    check_tflite(default_model_path().read_bytes())


def test_large_model_is_fast(shared_dir):
    check_tflite(_base("chain"))  # warm: first use imports the tflite enums
    data = _shared(shared_dir, "person_detect")  # ~300 KB
    best = math.inf
    for _ in range(3):
        t = time.perf_counter()
        check_tflite(data)
        best = min(best, time.perf_counter() - t)
    assert best < 0.05, f"{best * 1000:.1f} ms"


def _only_expected_errors(data):
    try:
        check_tflite(data)
    except (ModelFormatError, UnsupportedModelError) as err:
        assert "could not read it" not in str(err), str(err)
        return type(err).__name__
    return "ok"


def test_truncations_never_raise_other_errors(shared_dir):
    data = _shared(shared_dir, "kws_ref_model")
    cuts = list(range(0, 40, 4)) + [int(c) for c in np.linspace(41, len(data) - 1, 40)]
    assert len(set(cuts)) == 50
    for cut in cuts:
        assert _only_expected_errors(data[:cut]) == "ModelFormatError", cut


def test_byte_flips_never_raise_other_errors(shared_dir):
    data = _shared(shared_dir, "person_detect")
    rng = np.random.default_rng(20240611)
    # Flips land mostly in the graph (tables, shapes, quantization) at the end of the file,
    # not only in the weight buffers, so most mutations are actually refused.
    graph_start = len(data) - 40000
    outcomes = {}
    for _ in range(300):
        b = bytearray(data)
        lo = 0 if rng.random() < 0.3 else graph_start
        for p in rng.integers(lo, len(b), size=int(rng.integers(1, 9))):
            b[p] ^= int(rng.integers(1, 256))
        kind = _only_expected_errors(bytes(b))
        outcomes[kind] = outcomes.get(kind, 0) + 1
    print("byte flips:", outcomes)
    assert outcomes.get("ModelFormatError", 0) and outcomes.get("UnsupportedModelError", 0)


def test_random_bytes_and_extreme_words():
    rng = np.random.default_rng(3)
    base = _base("chain")
    for _ in range(200):
        tail = rng.integers(0, 256, int(rng.integers(0, 400)), dtype=np.uint8).tobytes()
        junk = b"\x10\x00\x00\x00TFL3" + tail
        _only_expected_errors(junk)
        b = bytearray(base)
        p = int(rng.integers(0, len(b) - 4)) & ~3
        b[p:p + 4] = int(rng.choice([0, 1, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, len(b)])).to_bytes(4, "little")
        _only_expected_errors(bytes(b))


def test_every_lowered_operator_has_its_options_checked():
    """The import checker knows the options table and arity of every operator the
    lowering accepts, so TVM's importer never reads an unchecked options table."""
    from tinyengine_tvm.frontend import tflite_checks
    from tinyengine_tvm.frontend.tflite import supported_ops

    missing = set(supported_ops()) - set(tflite_checks._OPS)
    assert not missing, f"add these operators to frontend/tflite_checks.py _OPS: {sorted(missing)}"
