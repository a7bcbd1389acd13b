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

* TRANSPOSE_CONV loses its fused activation in the importer; it is applied
  after the converter's result (as the other converters do).

* A CONV_2D (or TRANSPOSE_CONV) whose optional bias is absent (input 2 marked -1) fails the
  importer; absent trailing inputs are left out while it is converted.

* int16x8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED fail on their int64
  bias (Relax's dequantize takes no int64); the bias is handed to the
  converter as ``astype(bias, float32) * scale``, which the integer lowering
  reads back as the int64 constant.

* int8 SVDF and UNIDIRECTIONAL_SEQUENCE_LSTM are refused (and the float SVDF
  converter drops the state between invocations); they are imported straight
  into their kernel calls (DIRECT_IMPORTS), the state kept in the arena from
  one invocation to the next.

* ARG_MAX/ARG_MIN come out as int64 whatever the model's output type; the
  output is cast to it.

* FILL of a constant fails in the importer; it is ``full(dims, value)``.
  SPACE_TO_BATCH_ND / BATCH_TO_SPACE_ND become TOPI packed calls; they are
  pad, reshape, transpose, reshape (and a crop) of the raw values.  int8
  ADD_N is refused; it is imported straight into its kernel call (its sum
  starts at the rescaled -zero_point, which no QDQ form says).

* int8/int16 NEG would be dequantized; it is imported straight into te_neg
  (TFLite negates the raw integers; TFLM has no int8 NEG).

* MIRROR_PAD SYMMETRIC raises in the importer; it is ``nn.pad`` with
  pad_mode "symmetric", which the lowering reads.

* int8 CUMSUM is refused; it is imported straight into its kernel call (the
  ADD_N arithmetic along one axis).

* GATHER_ND is imported wrongly (the indices transposed); it is imported
  straight into its kernel call with the constant indices.

* int8 L2_NORMALIZATION is refused by the converter; it is imported as
  ``quantize(x / sqrt(sum(x * x) + 1e-12))`` over the last axis.

* int8 data movement (PAD, PADV2, TRANSPOSE, SQUEEZE, RESIZE_NEAREST_NEIGHBOR,
  SPACE_TO_DEPTH, DEPTH_TO_SPACE, STRIDED_SLICE, SLICE, SPLIT, SPLIT_V, PACK,
  UNPACK, GATHER), LOG_SOFTMAX and RESIZE_BILINEAR are refused by the
  importer's list of quantized operators
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
import numpy as np


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


# Quantized operators the importer's list leaves out although their conversion
# (its own or a replacement registered below) is exact.
QUANTIZED_OPS_ADMITTED = frozenset({
    "PAD", "PADV2", "TRANSPOSE", "SQUEEZE", "RESIZE_NEAREST_NEIGHBOR", "SPACE_TO_DEPTH", "DEPTH_TO_SPACE",
    "STRIDED_SLICE", "SLICE", "SPLIT", "SPLIT_V", "PACK", "UNPACK", "GATHER", "EXPAND_DIMS", "ELU", "PRELU",
    "MIRROR_PAD", "BATCH_MATMUL", "LOG_SOFTMAX", "RESIZE_BILINEAR", "L2_NORMALIZATION", "SVDF", "SELECT_V2",
    "SELECT", "ARG_MAX", "ARG_MIN", "CAST", "UNIDIRECTIONAL_SEQUENCE_LSTM", "BROADCAST_TO", "FILL",
    "ZEROS_LIKE", "ADD_N", "SPACE_TO_BATCH_ND", "BATCH_TO_SPACE_ND", "GATHER_ND", "CUMSUM", "SHAPE", "NEG",
    "RELU_N1_TO_1"})

#: Operators imported straight into their integer kernel call (no QDQ Relax form
#: exists for them), with the indices of their activation inputs and their types.
DIRECT_IMPORTS = {"SVDF": ((0,), ("int8",)), "UNIDIRECTIONAL_SEQUENCE_LSTM": ((0,), ("int8", "int16")),
                  "ADD_N": ((), ("int8",)), "GATHER_ND": ((0,), ("int8",)), "CUMSUM": ((0,), ("int8",)),
                  "SHAPE": ((0,), ("int8", "int16")), "NEG": ((0,), ("int8", "int16"))}

#: Output types of the direct imports whose outputs are not activations.
DIRECT_OUTPUT_TYPES = {"SHAPE": ("int32",)}

#: What the operators without a kernel of their own compute, for the operator table.
NO_KERNEL = {"SHAPE": "int8/int16 -> int32 (a constant: shapes are static; a RESHAPE whose shape it "
                      "computes through STRIDED_SLICE, SLICE, PACK, CONCATENATION, GATHER, RESHAPE, SQUEEZE, "
                      "EXPAND_DIMS or CAST takes its output's declared shape)"}


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
    cls._SUPPORTED_QUANTIZED_OPS = supported | QUANTIZED_OPS_ADMITTED
    for method, factory in _CONVERTERS.items():
        setattr(cls, method, factory(originals[method]))
    try:
        yield
    finally:
        cls._SUPPORTED_QUANTIZED_OPS = supported
        for method, original in originals.items():
            setattr(cls, method, original)


@contextlib.contextmanager
def _int64_bias_as_float(converter, op, bias_index=2):
    """While ``op`` (a CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED or, with
    bias_index 3, TRANSPOSE_CONV) is converted, its quantized int64 bias reads as
    the float ``astype(bias, float32) * scale`` and is not dequantized again."""
    import tflite
    from tvm import relax
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    inputs = converter.get_input_tensors(op)
    bias = inputs[bias_index] if len(inputs) > bias_index else None
    if (bias is None or bias.tensor_idx < 0 or bias.tensor.Type() != tflite.TensorType.INT64
            or not bias.qnn_params):
        yield
        return
    value = converter.get_tensor_value(bias)
    as_float = relax.op.multiply(relax.op.astype(relax.const(value, "int64"), "float32"),
                                 bias.qnn_params["scale"])
    converter.exp_tab.set_expr(tf.get_tensor_name(converter.subgraph, bias.tensor_idx),
                               converter.bb.normalize(as_float), force_override=True)
    dequantize = converter.dequantize
    converter.dequantize = lambda expr, t: expr if t.tensor_idx == bias.tensor_idx else dequantize(expr, t)
    try:
        yield
    finally:
        del converter.dequantize


@contextlib.contextmanager
def _absent_inputs_dropped(converter):
    """While active, ``get_input_tensors`` leaves out optional inputs marked -1 at the end."""
    get = converter.get_input_tensors

    def present(op):
        tensors = get(op)
        while tensors and tensors[-1].tensor_idx < 0:
            tensors.pop()
        return tensors

    converter.get_input_tensors = present
    try:
        yield
    finally:
        del converter.get_input_tensors


@_replaces("convert_conv")
def _conv_fixes(original):
    """CONV_2D / DEPTHWISE_CONV_2D converter that reads an int16x8 layer's int64
    bias and a CONV_2D without bias (input 2 marked -1: the importer reads it)."""
    def convert(self, op, conv_type):
        with _absent_inputs_dropped(self), _int64_bias_as_float(self, op):
            return original(self, op, conv_type)

    return convert


@_replaces("convert_transpose_conv")
def _transpose_conv_fixes(original):
    """TRANSPOSE_CONV converter that reads an absent or int64 bias and applies
    the fused activation (the importer drops it)."""
    import tflite
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    def convert(self, op):
        with _absent_inputs_dropped(self), _int64_bias_as_float(self, op, bias_index=3):
            out = original(self, op)
        opts = tflite.TransposeConvOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        (output_tensor,) = self.get_output_tensors(op)
        act = opts.FusedActivationFunction()
        if act == tflite.ActivationFunctionType.NONE:
            return out
        if not output_tensor.qnn_params:
            return self.convert_fused_activation_function(out, act)
        q = output_tensor.qnn_params
        return self.convert_qnn_fused_activation_function(
            self.bb.normalize(out), act, tf.get_scalar_from_constant(q["scale"]),
            tf.get_scalar_from_constant(q["zero_point"]), self.get_tensor_type_str(output_tensor.tensor.Type()))

    return convert


@_replaces("convert_l2_normalization")
def _quantized_l2_normalization(original):
    """L2_NORMALIZATION converter that reads int8 L2_NORMALIZATION (refused by the
    importer) in QDQ form: ``quantize(x / sqrt(sum(x * x) + 1e-12))`` over the
    last axis of the dequantized input."""
    from tvm import relax

    def convert(self, op):
        (input_tensor,) = self.get_input_tensors(op)
        (output_tensor,) = self.get_output_tensors(op)
        if not input_tensor.qnn_params:
            return original(self, op)
        x = self.dequantize(self.get_expr(input_tensor.tensor_idx), input_tensor)
        rank = len(input_tensor.tensor.ShapeAsNumpy())
        squares = relax.op.sum(relax.op.multiply(x, x), axis=[rank - 1], keepdims=True)
        norm = relax.op.sqrt(relax.op.add(squares, relax.const(1e-12, "float32")))
        return self.quantize(relax.op.divide(x, norm), output_tensor)

    return convert


@_replaces("_convert_arg_min_max")
def _arg_min_max_output_type(original):
    """ARG_MAX / ARG_MIN converter that gives the output TFLite's type (the
    importer's argmax is int64 whatever the model's output_type)."""
    from tvm import relax

    def convert(self, op, relax_op):
        (output_tensor,) = self.get_output_tensors(op)
        out = self.bb.normalize(original(self, op, relax_op))
        want = self.get_tensor_type_str(output_tensor.tensor.Type())
        return out if str(out.ty.dtype) == want else relax.op.astype(out, want)

    return convert


@_replaces("convert_mirror_pad")
def _mirror_pad_symmetric_too(original):
    """MIRROR_PAD converter that also reads SYMMETRIC (the importer raises on it):
    ``nn.pad(x, pads, pad_mode="symmetric")``, which the lowering reads as the
    mirror pad that repeats the edge."""
    import tflite
    from tvm import relax

    def convert(self, op):
        opts = tflite.MirrorPadOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        if opts.Mode() == 0:
            return original(self, op)
        x, pads = self.get_input_tensors(op)
        flat = [int(v) for pair in self.get_tensor_value(pads) for v in pair]
        return relax.op.nn.pad(self.get_expr(x.tensor_idx), flat, pad_mode="symmetric")

    return convert


@_replaces("_convert_unary_elemwise")
def _int_neg_kernel_call(original):
    """NEG of int8/int16 (the importer's would dequantize): te_neg, the raw integers
    negated as TFLite does (TFLM has no such kernel)."""
    from tvm import relax

    from ..transform.kernel_call import make_kernel_call

    def convert(self, op, relax_op):
        (x,) = self.get_input_tensors(op)
        dtype = self.get_tensor_type_str(x.tensor.Type())
        if relax_op is not relax.op.negative or dtype not in ("int8", "int16"):
            return original(self, op, relax_op)
        shape = [int(d) for d in self.get_tensor_shape(x)]
        return make_kernel_call(f"te_neg_s{dtype[3:]}", [self.get_expr(x.tensor_idx)],
                                dict(size=int(np.prod(shape)), input_zero_point=0, output_zero_point=0, multiplier=0,
                                     shift=0, alpha_multiplier=0, alpha_shift=0), shape, dtype)

    return convert


@_replaces("convert_shape")
def _shape_as_constant(original):
    """SHAPE converter: the input's static dimensions as a constant (the importer's
    is a run-time shape_of that no kernel computes)."""
    from tvm import relax

    def convert(self, op):
        (x,) = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        dtype = self.get_tensor_type_str(out.tensor.Type())
        return relax.const(np.array([int(d) for d in self.get_tensor_shape(x)], dtype), dtype)

    return convert


@_replaces("convert_reshape")
def _reshape_to_declared_shape(original):
    """RESHAPE converter: a shape input computed in the graph (a dynamic batch's
    SHAPE, STRIDED_SLICE, PACK) is replaced by the output's declared shape, which
    it equals in a model with static shapes."""
    from tvm import relax

    def convert(self, op):
        inputs = self.get_input_tensors(op)
        if len(inputs) == 2 and self.has_expr(inputs[1].tensor_idx):
            (out,) = self.get_output_tensors(op)
            return relax.op.reshape(self.get_expr(inputs[0].tensor_idx),
                                    [int(d) for d in self.get_tensor_shape(out)])
        return original(self, op)

    return convert


@_replaces("convert_fill")
def _fill_of_constant(original):
    """FILL converter (the importer's fails on a constant value): ``full(dims,
    value)`` of the raw value, in the value's type."""
    from tvm import relax

    def convert(self, op):
        dims, value = self.get_input_tensors(op)
        shape = [int(d) for d in self.get_tensor_value(dims).ravel()]
        v = self.get_tensor_value(value).ravel()[0]
        dtype = self.get_tensor_type_str(value.tensor.Type())
        return relax.op.full(shape, relax.const(v, dtype), dtype)

    return convert


def _space_batch_parts(self, op):
    (x, block_t, pads_t) = self.get_input_tensors(op)
    block = [int(v) for v in self.get_tensor_value(block_t).ravel()]
    pads = [int(v) for v in self.get_tensor_value(pads_t).ravel()]
    return x, self.get_expr(x.tensor_idx), [int(d) for d in self.get_tensor_shape(x)], block, pads


@_replaces("convert_space_to_batch_nd")
def _space_to_batch_as_data_movement(original):
    """SPACE_TO_BATCH_ND as pad, reshape, transpose, reshape of the raw values
    (the importer's is a TOPI packed call).  TFLM leaves the padding
    uninitialised; it is the zero point here."""
    from tvm import relax
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    def convert(self, op):
        x, expr, (b, h, w, c), (bh, bw), pads = _space_batch_parts(self, op)
        zp = tf.get_scalar_from_constant(x.qnn_params["zero_point"]) if x.qnn_params else 0
        if any(pads):
            expr = relax.op.nn.pad(expr, [0, 0, pads[0], pads[1], pads[2], pads[3], 0, 0], pad_value=float(zp))
        ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
        expr = relax.op.reshape(expr, [b, ph // bh, bh, pw // bw, bw, c])
        expr = relax.op.permute_dims(expr, [2, 4, 0, 1, 3, 5])
        return relax.op.reshape(expr, [bh * bw * b, ph // bh, pw // bw, c])

    return convert


@_replaces("convert_batch_to_space_nd")
def _batch_to_space_as_data_movement(original):
    """BATCH_TO_SPACE_ND as reshape, transpose, reshape and the crops' strided
    slice of the raw values (the importer's is a TOPI packed call)."""
    from tvm import relax

    def convert(self, op):
        _, expr, (b, h, w, c), (bh, bw), crops = _space_batch_parts(self, op)
        n = b // (bh * bw)
        expr = relax.op.reshape(expr, [bh, bw, n, h, w, c])
        expr = relax.op.permute_dims(expr, [2, 3, 0, 4, 1, 5])
        expr = relax.op.reshape(expr, [n, h * bh, w * bw, c])
        if any(crops):
            expr = relax.op.strided_slice(expr, axes=[1, 2], begin=[crops[0], crops[2]],
                                          end=[h * bh - crops[1], w * bw - crops[3]])
        return expr

    return convert


@_replaces("convert_gather_nd")
def _gather_nd_kernel_call(original):
    """GATHER_ND converter (the importer's transposes the indices it should read
    as they are): the te_gather_nd_s8 call with the constant indices."""
    import numpy as np
    from tvm import relax

    from ..kernel_call import make_kernel_call

    def convert(self, op):
        params, indices = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        shape = [int(d) for d in self.get_tensor_shape(params)]
        idx = self.get_tensor_value(indices).astype(np.int32)
        depth = idx.shape[-1]
        strides = [int(np.prod(shape[k + 1:])) for k in range(depth)] + [0] * (5 - depth)
        attrs = dict(count=int(idx.size // depth), depth=int(depth), slice_size=int(np.prod(shape[depth:])),
                     strides=strides)
        return make_kernel_call("te_gather_nd_s8", [self.get_expr(params.tensor_idx),
                                                    relax.const(idx.reshape(-1, depth), "int32")],
                                attrs, [int(d) for d in self.get_tensor_shape(out)], "int8")

    return convert


def _qparams(tensor):
    """(scale as the double of its float32, zero point) of a quantized TensorWrapper."""
    import numpy as np
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    return (float(np.float32(tf.get_scalar_from_constant(tensor.qnn_params["scale"]))),
            int(tf.get_scalar_from_constant(tensor.qnn_params["zero_point"])))


def _running_sum_attrs(x, out):
    """te_sum_params' quantization fields of ADD_N and CUMSUM (TFLM: ADD's
    rescale with 20 bits of headroom, each term halved)."""
    from ..quantization.fixed_point import quantize_multiplier

    (s_in, zp_in), (s_out, zp_out) = _qparams(x), _qparams(out)
    left_shift = 20
    in_m, in_s = quantize_multiplier(0.5)
    out_m, out_s = quantize_multiplier(2 * s_in / ((1 << left_shift) * s_out))
    return dict(input_offset=-zp_in, output_offset=zp_out, left_shift=left_shift, input_multiplier=in_m,
                input_shift=in_s, output_multiplier=out_m, output_shift=out_s)


@_replaces("convert_cumsum")
def _cumsum_kernel_call(original):
    """CUMSUM converter for int8 (refused by the importer): the te_cumsum_s8 call
    with TFLM's parameters (the ADD_N arithmetic along one axis)."""
    import numpy as np
    import tflite

    from ..kernel_call import make_kernel_call

    def convert(self, op):
        x, axis_t = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        if not x.qnn_params:
            return original(self, op)
        opts = tflite.CumsumOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
        shape = [int(d) for d in self.get_tensor_shape(x)]
        axis = int(self.get_tensor_value(axis_t).ravel()[0]) % len(shape)
        attrs = dict(size=0, n_inputs=0, outer=int(np.prod(shape[:axis])), axis_size=shape[axis],
                     inner=int(np.prod(shape[axis + 1:])), exclusive=int(opts.Exclusive()),
                     reverse=int(opts.Reverse()), **_running_sum_attrs(x, out))
        return make_kernel_call("te_cumsum_s8", [self.get_expr(x.tensor_idx)], attrs, shape, "int8")

    return convert


@_replaces("convert_add_n")
def _add_n_kernel_call(original):
    """ADD_N converter for int8 (refused by the importer): the te_add_n_s8
    kernel call with TFLM's parameters (its sum starts at the rescaled
    -zero_point, which no QDQ form expresses)."""
    import numpy as np

    from ..kernel_call import make_kernel_call

    def convert(self, op):
        inputs = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        if not inputs[0].qnn_params:
            return original(self, op)
        shape = [int(d) for d in self.get_tensor_shape(out)]
        attrs = dict(size=int(np.prod(shape)), n_inputs=len(inputs), outer=0, axis_size=0, inner=0, exclusive=0,
                     reverse=0, **_running_sum_attrs(inputs[0], out))
        return make_kernel_call("te_add_n_s8", [self.get_expr(t.tensor_idx) for t in inputs], attrs, shape, "int8")

    return convert


@_replaces("convert_svdf")
def _svdf_kernel_call(original):
    """SVDF converter for int8 SVDF (refused by TVM's importer, whose float form
    drops the state between invocations): the te_svdf_s8 kernel call itself,
    with TFLM's parameters; the state lives in the arena between invocations."""
    import numpy as np
    import tflite
    from tvm import relax

    from ..kernel_call import make_kernel_call
    from ..quantization.fixed_point import quantize_multiplier

    def convert(self, op):
        x, wf, wt, bias, state = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        if not x.qnn_params:
            return original(self, op)
        opts = tflite.SVDFOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)

        (s_in, zp_in), (s_wf, _), (s_wt, _), (s_st, zp_st), (s_out, zp_out) = map(_qparams, (x, wf, wt, state, out))
        feature_m, feature_s = quantize_multiplier(s_in * s_wf / s_st)
        output_m, output_s = quantize_multiplier(s_st * s_wt / s_out)
        wt_value = self.get_tensor_value(wt)
        batch, features = (int(d) for d in self.get_tensor_shape(x))
        filters, memory = wt_value.shape
        attrs = dict(batch=batch, input_size=features, num_filters=int(filters), memory_size=int(memory),
                     rank=int(opts.Rank()), input_zero_point=zp_in, state_zero_point=zp_st,
                     output_zero_point=zp_out, feature_multiplier=feature_m, feature_shift=feature_s,
                     output_multiplier=output_m, output_shift=output_s)
        kernel = "te_svdf_s8" if wt_value.dtype == np.int16 else "te_svdf_s8_int8_state"
        return make_kernel_call(kernel, [self.get_expr(x.tensor_idx), relax.const(self.get_tensor_value(wf), "int8"),
                                         relax.const(wt_value, str(wt_value.dtype)),
                                         relax.const(self.get_tensor_value(bias), "int32")],
                                attrs, [int(d) for d in self.get_tensor_shape(out)], "int8")

    return convert


@_replaces("convert_unidirectional_sequence_lstm")
def _lstm_kernel_call(original):
    """UNIDIRECTIONAL_SEQUENCE_LSTM converter for the integer LSTM (refused by
    TVM's importer): the te_lstm_s8 kernel call with TFLM's parameters (gates in
    2^-12 steps, products to the cell and hidden scales, the cell clip), the
    eight weights and four biases stacked input, forget, cell, output; the
    hidden and cell state live in the arena between invocations."""
    import numpy as np
    import tflite
    from tvm import relax

    from ..kernel_call import make_kernel_call
    from ..quantization.activation_params import checked_log2, sigmoid_table_s16
    from ..quantization.fixed_point import quantize_multiplier

    def convert(self, op):
        t = self.get_input_tensors(op)
        (out,) = self.get_output_tensors(op)
        if not t[0].qnn_params:
            return original(self, op)
        opts = tflite.UnidirectionalSequenceLSTMOptions()
        opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)

        def scale(w):
            return _qparams(w)[0]

        s_in, s_h, s_c = scale(t[0]), scale(t[18]), scale(t[19])
        gate_step = 2.0 ** -12
        in_m, in_s = zip(*(quantize_multiplier(s_in * scale(t[k]) / gate_step) for k in (1, 2, 3, 4)))
        rec_m, rec_s = zip(*(quantize_multiplier(s_h * scale(t[k]) / gate_step) for k in (5, 6, 7, 8)))
        forget_m, forget_s = quantize_multiplier(2.0 ** -15 * s_c / s_c)
        update_m, update_s = quantize_multiplier(2.0 ** -15 * 2.0 ** -15 / s_c)
        hidden_m, hidden_s = quantize_multiplier(2.0 ** -30 / s_h)
        _, cell_scale_power = checked_log2(s_c)  # TFLM keeps the rounded power, pot or not
        clip = float(opts.CellClip())
        in_shape = [int(d) for d in self.get_tensor_shape(t[0])]
        time_major = bool(opts.TimeMajor())
        weights_x = np.stack([self.get_tensor_value(t[k]) for k in (1, 2, 3, 4)]).astype(np.int8)
        weights_h = np.stack([self.get_tensor_value(t[k]) for k in (5, 6, 7, 8)]).astype(np.int8)
        wide = self.get_tensor_type_str(t[0].tensor.Type()) == "int16"  # 16x8: int64 bias and sums
        bias = np.stack([self.get_tensor_value(t[k]) for k in (12, 13, 14, 15)]).astype(np.int64 if wide else np.int32)
        attrs = dict(
            batch=in_shape[1] if time_major else in_shape[0], time=in_shape[0] if time_major else in_shape[1],
            input_size=in_shape[2], units=int(weights_x.shape[1]), time_major=int(time_major),
            input_zero_point=_qparams(t[0])[1], hidden_zero_point=_qparams(t[18])[1],
            input_multiplier=list(in_m), input_shift=list(in_s), recurrent_multiplier=list(rec_m),
            recurrent_shift=list(rec_s), forget_multiplier=forget_m, forget_shift=forget_s,
            update_multiplier=update_m, update_shift=update_s, hidden_multiplier=hidden_m, hidden_shift=hidden_s,
            cell_scale_power=cell_scale_power,
            cell_clip=int(np.trunc(np.clip(clip / s_c, -32768, 32767))) if clip > 0 else 0,
            cell_gate_tanh=int(opts.FusedActivationFunction() == tflite.ActivationFunctionType.TANH))
        return make_kernel_call("te_lstm_s16" if wide else "te_lstm_s8", [
            self.get_expr(t[0].tensor_idx), relax.const(weights_x, "int8"), relax.const(weights_h, "int8"),
            relax.const(bias, str(bias.dtype)), relax.const(sigmoid_table_s16(), "uint16")],
            attrs, [int(d) for d in self.get_tensor_shape(out)], "int16" if wide else "int8")

    return convert


@_replaces("convert_fully_connected")
def _flatten_fully_connected_inputs(original):
    """FULLY_CONNECTED converter that reshapes rank>2 inputs to 2-D."""
    from tvm import relax
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    def convert(self, op):
        with _int64_bias_as_float(self, op):
            return _convert(self, op)

    def _convert(self, op):
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
