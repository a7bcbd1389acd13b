"""Convolution family: CONV_2D, DEPTHWISE_CONV_2D and TRANSPOSE_CONV (NHWC,
per-channel int8 weights with zero point 0), with or without bias add: int8
activations with an int32 bias, or int16 activations with an int64 bias
(TFLite's 16x8; CONV_2D also an int32 one, summed in int32 as TFLM does)."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ..kernel_call import make_kernel_call
from ..relax_utils import shape_of
from .base import Lowering, activation_kernel, dequantize_pattern, requant_arrays

CONV_PATTERN = is_op("relax.nn.conv2d")(dequantize_pattern(), wildcard())  # weights: a (viewed) dequantize
BIASED_CONV_PATTERN = is_op("relax.add")(CONV_PATTERN, wildcard())
TRANSPOSE_CONV_PATTERN = is_op("relax.nn.conv2d_transpose")(dequantize_pattern(), dequantize_pattern())
BIASED_TRANSPOSE_CONV_PATTERN = is_op("relax.add")(TRANSPOSE_CONV_PATTERN, wildcard())


def _groups_problem(conv):
    a = conv.attrs
    groups = int(a.groups)
    if groups != 1 and groups != shape_of(conv.args[0])[3]:
        return conv, f"grouped convolution (groups={groups}) is not supported"
    return None


def _check(ctx, var, conv, q):
    return _groups_problem(conv)


def _check_biased(ctx, var, add, q):
    return _groups_problem(ctx.resolve(add.args[0]))


def _lower(ctx, var, conv, q, bias_expr=None):
    a = conv.attrs
    if str(a.data_layout) != "NHWC":
        return None
    x = ctx.activation_input(conv.args[0])
    w = ctx.weights(conv.args[1])
    if x is None or w is None or x.dtype != q.dtype:
        return None
    wq, w_scale, w_zp, _ = w
    if np.any(w_zp != 0):
        return None
    in_shape, out_shape = shape_of(conv.args[0]), shape_of(var)
    oc = out_shape[3]
    groups = int(a.groups)
    layout = str(a.kernel_layout)
    pad = [int(p) for p in a.padding]
    attrs = dict(
        batch=in_shape[0], input_h=in_shape[1], input_w=in_shape[2], input_c=in_shape[3],
        output_h=out_shape[1], output_w=out_shape[2], output_c=oc,
        stride_h=int(a.strides[0]), stride_w=int(a.strides[1]),
        dilation_h=int(a.dilation[0]), dilation_w=int(a.dilation[1]),
        pad_top=pad[0], pad_left=pad[1], input_offset=-x.zero_point,
        output_offset=q.zp_out,
    )
    if groups == 1:
        kernel = activation_kernel("te_conv2d", x.dtype)
        perm = [layout.index(ch) for ch in "OHWI"]
        filt = np.ascontiguousarray(np.transpose(wq, perm))
        attrs.update(kernel_h=filt.shape[1], kernel_w=filt.shape[2], depth_multiplier=1)
    else:  # depthwise (groups == input channels, see the check)
        kernel = activation_kernel("te_depthwise_conv2d", x.dtype)
        kh, kw = wq.shape[layout.index("H")], wq.shape[layout.index("W")]
        if layout == "HWOI":
            filt = np.ascontiguousarray(wq.reshape(1, kh, kw, oc))
        elif layout == "OIHW":
            filt = np.ascontiguousarray(np.transpose(wq.reshape(oc, kh, kw), (1, 2, 0)).reshape(1, kh, kw, oc))
        else:
            return None
        attrs.update(kernel_h=kh, kernel_w=kw, depth_multiplier=oc // in_shape[3])
    bias = ctx.bias(bias_expr, oc)
    if bias_expr is not None and bias is None:
        return None
    mult, shift = requant_arrays(x.scale, w_scale, q.s_out, oc)
    bias_type = np.int64 if x.dtype == "int16" else np.int32
    if groups == 1 and x.dtype == "int16" and bias is not None and bias.dtype == np.int32:
        bias_type, kernel = np.int32, "te_conv2d_s16_b32"  # TFLM sums in the bias's type
    # relax.const narrows int64 to int32 unless told the type
    bias_c = relax.const(bias.astype(bias_type) if bias is not None else np.zeros(oc, bias_type),
                         np.dtype(bias_type).name)
    return make_kernel_call(kernel, [x.expr, relax.const(filt), bias_c, mult, shift], q.finish(attrs),
                            shape_of(var), q.dtype)


def _lower_biased(ctx, var, add, q):
    return _lower(ctx, var, ctx.resolve(add.args[0]), q, bias_expr=add.args[1])


# ---------------------------------------------------------- transpose conv
def _lower_transpose(ctx, var, tconv, q, bias_expr=None):
    a = tconv.attrs
    if (str(a.data_layout), str(a.kernel_layout)) != ("NHWC", "IOHW") or int(a.groups) != 1 or any(
            int(d) != 1 for d in a.dilation) or any(int(p) != 0 for p in a.output_padding):
        return None
    x = ctx.activation_input(tconv.args[0])
    w = ctx.weights(tconv.args[1])
    if x is None or w is None or x.dtype != q.dtype or np.any(w[2] != 0):
        return None
    wq, w_scale = w[0], w[1]
    filt = np.ascontiguousarray(np.transpose(wq, (1, 2, 3, 0)))  # IOHW -> TFLite's OHWI
    in_shape, out_shape = shape_of(tconv.args[0]), shape_of(var)
    oc = out_shape[3]
    bias = ctx.bias(bias_expr, oc)
    if bias_expr is not None and bias is None:
        return None
    pad = [int(p) for p in a.padding]
    attrs = dict(
        batch=in_shape[0], input_h=in_shape[1], input_w=in_shape[2], input_c=in_shape[3],
        output_h=out_shape[1], output_w=out_shape[2], output_c=oc, kernel_h=filt.shape[1], kernel_w=filt.shape[2],
        stride_h=int(a.strides[0]), stride_w=int(a.strides[1]), dilation_h=1, dilation_w=1,
        pad_top=pad[0], pad_left=pad[1], depth_multiplier=1, input_offset=-x.zero_point, output_offset=q.zp_out)
    mult, shift = requant_arrays(x.scale, w_scale, q.s_out, oc)
    bias_type = np.int64 if x.dtype == "int16" else np.int32
    bias_c = relax.const(bias.astype(bias_type) if bias is not None else np.zeros(oc, bias_type),
                         np.dtype(bias_type).name)
    return make_kernel_call(activation_kernel("te_transpose_conv2d", x.dtype),
                            [x.expr, relax.const(filt), bias_c, mult, shift], q.finish(attrs), out_shape, q.dtype)


def _lower_transpose_biased(ctx, var, add, q):
    return _lower_transpose(ctx, var, ctx.resolve(add.args[0]), q, bias_expr=add.args[1])


LOWERINGS = [
    Lowering("CONV_2D", "quantize", _lower_biased, pattern=BIASED_CONV_PATTERN, check=_check_biased,
             tflite={"CONV_2D": (0,), "DEPTHWISE_CONV_2D": (0,)}, dtypes=("int8", "int16")),
    Lowering("CONV_2D", "quantize", _lower, pattern=CONV_PATTERN, check=_check,
             tflite={"CONV_2D": (0,), "DEPTHWISE_CONV_2D": (0,)}, dtypes=("int8", "int16")),
    Lowering("TRANSPOSE_CONV", "quantize", _lower_transpose_biased, pattern=BIASED_TRANSPOSE_CONV_PATTERN,
             tflite={"TRANSPOSE_CONV": (2,)}, dtypes=("int8", "int16")),
    Lowering("TRANSPOSE_CONV", "quantize", _lower_transpose, pattern=TRANSPOSE_CONV_PATTERN,
             tflite={"TRANSPOSE_CONV": (2,)}, dtypes=("int8", "int16")),
]
