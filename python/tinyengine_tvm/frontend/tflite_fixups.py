"""Work around TVM 0.27 TFLite-importer bugs on valid TFLM models.

Two defects of ``tvm.relax.frontend.tflite`` stop real models from importing:

* FULLY_CONNECTED with an input of rank > 2 (TFLite flattens it to
  ``[-1, input_depth]``; TVM's importer multiplies the unflattened tensor and
  fails), e.g. micro_speech_quantized; with keep_num_dims the output keeps
  the input's leading axes.
* 1-D bias tensors whose ``quantized_dimension`` is out of range (TFLM ignores
  it; TVM's dequantize rejects it), e.g. person_detect.

* SOFTMAX's beta is dropped; it is kept as ``softmax(beta * x)``.

* EXPAND_DIMS fails (the importer passes a third argument to
  ``relax.op.expand_dims``); it is imported as a reshape to the output shape.

* int8 ELU is refused (the converter only has a float form); it is imported
  as ``quantize(where(x < 0, exp(x) - 1, x))`` of the dequantized input.

* int8 PRELU is converted without its quantization; it is imported as
  ``quantize(where(x >= 0, x, x * alpha))`` of the dequantized operands.

* int8 BATCH_MATMUL is refused by the converter; it is imported as
  ``quantize(matmul(a, b))`` of the dequantized operands, adj_x/adj_y as
  transposes of their last two axes (matmul broadcasts the batch axes).

* int8 data movement (PAD, PADV2, TRANSPOSE, SQUEEZE, RESIZE_NEAREST_NEIGHBOR,
  SPACE_TO_DEPTH, DEPTH_TO_SPACE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK,
  UNPACK, GATHER) is refused by the importer's list of quantized operators
  although its converters handle it exactly (reshapes, transposes, slices,
  takes and pads of the int8 values; PAD fills with the zero point).

The bias field is rewritten in a copy of the flatbuffer; the rest is handled
while importing (``patched_importer`` extends the list of quantized operators
and swaps in the replacement converters registered with ``_replaces``).  All
keep the model's semantics exactly.
"""
from __future__ import annotations

import contextlib
import struct

import flatbuffers


def clamp_bias_quantized_dimension(data: bytes) -> bytes:
    """Copy of a TFLite flatbuffer where every rank-1 tensor's quantized_dimension is 0."""
    import tflite

    buf = bytearray(data)
    model = tflite.Model.GetRootAsModel(data, 0)
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            q = t.Quantization()
            if q is None or t.ShapeLength() > 1:
                continue
            off = flatbuffers.number_types.UOffsetTFlags.py_type(q._tab.Offset(16))
            if off and q.QuantizedDimension() != 0:
                struct.pack_into("<i", buf, q._tab.Pos + off, 0)
    return bytes(buf)


# Data-movement operators whose int8 conversion in TVM's importer is exact.
EXACT_INT8_DATA_MOVEMENT = frozenset({"PAD", "PADV2", "TRANSPOSE", "SQUEEZE", "RESIZE_NEAREST_NEIGHBOR",
                                      "SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "STRIDED_SLICE", "SLICE", "SPLIT",
                                      "SPLIT_V", "PACK", "UNPACK", "GATHER", "EXPAND_DIMS", "ELU",
                                      "PRELU", "MIRROR_PAD", "BATCH_MATMUL"})


# OperatorConverter method -> factory(original method) -> its replacement.
_CONVERTERS = {}


def _replaces(method: str):
    """Register a factory of a replacement for ``OperatorConverter.<method>``."""
    def register(factory):
        _CONVERTERS[method] = factory
        return factory
    return register


@contextlib.contextmanager
def patched_importer():
    """While active, TVM's TFLite importer accepts the models described above."""
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    cls = tf.OperatorConverter
    supported = cls._SUPPORTED_QUANTIZED_OPS
    originals = {method: getattr(cls, method) for method in _CONVERTERS}
    cls._SUPPORTED_QUANTIZED_OPS = supported | EXACT_INT8_DATA_MOVEMENT
    for method, factory in _CONVERTERS.items():
        setattr(cls, method, factory(originals[method]))
    try:
        yield
    finally:
        cls._SUPPORTED_QUANTIZED_OPS = supported
        for method, original in originals.items():
            setattr(cls, method, original)


@_replaces("convert_fully_connected")
def _flatten_fully_connected_inputs(original):
    """FULLY_CONNECTED converter that reshapes rank>2 inputs to 2-D."""
    from tvm import relax
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    def convert(self, op):
        input_tensor, weight_tensor = self.get_input_tensors(op)[:2]
        in_shape = [int(d) for d in self.get_tensor_shape(input_tensor)]
        depth = int(self.get_tensor_shape(weight_tensor)[1])
        if len(in_shape) <= 2 or self.has_expr(input_tensor.tensor_idx) is False:
            return original(self, op)
        name = tf.get_tensor_name(self.subgraph, input_tensor.tensor_idx)
        unflattened = self.exp_tab.get_expr(name)
        flat = self.bb.normalize(relax.op.reshape(unflattened, [-1, depth]))
        self.exp_tab.set_expr(name, flat, force_override=True)
        try:
            out = original(self, op)
        finally:
            self.exp_tab.set_expr(name, unflattened, force_override=True)
        # keep_num_dims: the output keeps the input's leading axes (the importer returns 2-D).
        out_shape = [int(d) for d in self.get_tensor_shape(self.get_output_tensors(op)[0])]
        if len(out_shape) != 2:
            out = relax.op.reshape(self.bb.normalize(out), out_shape)
        return out

    return convert


@_replaces("convert_softmax")
def _softmax_beta_in_ir(original):
    """SOFTMAX converter that keeps beta (TVM's drops it): the IR
    says ``softmax(beta * x)``, which is what TFLite computes, and the integer
    lowering reads beta from that multiply."""
    import tflite
    from tvm import relax

    def convert(self, op):
        beta = 1.0
        if op.BuiltinOptionsType() == tflite.BuiltinOptions.SoftmaxOptions and op.BuiltinOptions() is not None:
            opts = tflite.SoftmaxOptions()
            opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
            beta = float(opts.Beta())
        if beta == 1.0:
            return original(self, op)
        (input_tensor,) = self.get_input_tensors(op)
        (output_tensor,) = self.get_output_tensors(op)
        x = self.get_expr(input_tensor.tensor_idx)
        if input_tensor.qnn_params:
            x = self.dequantize(x, input_tensor)
        out = relax.op.nn.softmax(relax.op.multiply(x, relax.const(beta, "float32")), axis=-1)
        return self.quantize(out, output_tensor) if output_tensor.qnn_params else out

    return convert


@_replaces("convert_expand_dims")
def _expand_dims_as_reshape(original):
    """EXPAND_DIMS converter: a reshape to the output shape
    (the same values; the axis operand only decides where the 1 goes)."""
    from tvm import relax

    def convert(self, op):
        (output_tensor,) = self.get_output_tensors(op)
        x = self.get_tensor_expr(self.get_input_tensors(op)[0])
        return relax.op.reshape(x, [int(d) for d in self.get_tensor_shape(output_tensor)])

    return convert


@_replaces("convert_elu")
def _quantized_elu(original):
    """ELU converter that reads int8 ELU in QDQ form:
    ``quantize(where(x < 0, exp(x) - 1, x))`` of the dequantized input."""
    from tvm import relax

    def convert(self, op):
        (input_tensor,) = self.get_input_tensors(op)
        (output_tensor,) = self.get_output_tensors(op)
        if not input_tensor.qnn_params:
            return original(self, op)
        x = self.dequantize(self.get_expr(input_tensor.tensor_idx), input_tensor)
        zero, one = relax.const(0.0, "float32"), relax.const(1.0, "float32")
        out = relax.op.where(relax.op.less(x, zero), relax.op.subtract(relax.op.exp(x), one), x)
        return self.quantize(out, output_tensor)

    return convert


@_replaces("convert_prelu")
def _quantized_prelu(original):
    """PRELU converter that reads int8 PRELU in QDQ form:
    ``quantize(where(x >= 0, x, x * alpha))`` of the dequantized operands."""
    from tvm import relax

    def convert(self, op):
        input_tensor, alpha_tensor = self.get_input_tensors(op)
        (output_tensor,) = self.get_output_tensors(op)
        if not input_tensor.qnn_params:
            return original(self, op)
        x = self.dequantize(self.get_tensor_expr(input_tensor), input_tensor)
        alpha = self.dequantize(self.get_tensor_expr(alpha_tensor), alpha_tensor)
        out = relax.op.where(relax.op.greater_equal(x, relax.const(0.0, "float32")), x, relax.op.multiply(x, alpha))
        return self.quantize(out, output_tensor)

    return convert


@_replaces("convert_batch_matmul")
def _quantized_batch_matmul(original):
    """BATCH_MATMUL converter that reads int8 BATCH_MATMUL in QDQ form."""
    import tflite
    from tvm import relax

    def convert(self, op):
        a_tensor, b_tensor = self.get_input_tensors(op)
        (output_tensor,) = self.get_output_tensors(op)
        if not a_tensor.qnn_params:
            return original(self, op)
        opts = tflite.BatchMatMulOptions()
        if op.BuiltinOptions() is not None:
            opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        operands = []
        for tensor, adjoint in ((a_tensor, op.BuiltinOptions() is not None and opts.AdjX()),
                                (b_tensor, op.BuiltinOptions() is not None and opts.AdjY())):
            x = self.dequantize(self.get_tensor_expr(tensor), tensor)
            if adjoint:
                rank = len(self.get_tensor_shape(tensor))
                x = relax.op.permute_dims(x, list(range(rank - 2)) + [rank - 1, rank - 2])
            operands.append(x)
        return self.quantize(relax.op.matmul(*operands), output_tensor)

    return convert
