"""Pooling and reduction family: AVERAGE_POOL_2D (the TFLite importer's
astype(int8, avg_pool2d(astype(int32, x))) form), MAX_POOL_2D on int8, and the
reductions MEAN, SUM, REDUCE_MAX, REDUCE_MIN, ARG_MAX and ARG_MIN (int32 indices)."""
from __future__ import annotations

import numpy as np
from tvm.relax.dpl import is_op, wildcard

from ...errors import UnsupportedModelError
from ...quantization.activation_params import mean_params
from ..kernel_call import make_kernel_call
from ..relax_utils import dtype_of, op_name, shape_of
from .base import ACTIVATION_RANGE, Lowering, activation_kernel, dequantize_pattern, op_pattern

AVG_POOL_PATTERN = is_op("relax.astype")(is_op("relax.nn.avg_pool2d")(is_op("relax.astype")(wildcard())))


def pool_attrs(pool, in_shape, out_shape, dtype="int8"):
    a = pool.attrs
    if str(a.layout) != "NHWC":
        raise UnsupportedModelError([("pool", str(a.layout), "only NHWC pooling is supported")])
    pad = [int(p) for p in a.padding]
    return dict(
        batch=in_shape[0], input_h=in_shape[1], input_w=in_shape[2], channels=in_shape[3],
        output_h=out_shape[1], output_w=out_shape[2],
        filter_h=int(a.pool_size[0]), filter_w=int(a.pool_size[1]),
        stride_h=int(a.strides[0]), stride_w=int(a.strides[1]),
        pad_top=pad[0], pad_left=pad[1], act_min=ACTIVATION_RANGE[dtype][0], act_max=ACTIVATION_RANGE[dtype][1],
    )


# ------------------------------------------------------------ avg pool
def _check_avg_pool(ctx, var, value, q):
    # Anchored on any int8 astype so that the reasons stay specific; the full
    # form is AVG_POOL_PATTERN.
    if not AVG_POOL_PATTERN.match(value, ctx.var2val):
        if op_name(ctx.resolve(value.args[0])) != "relax.nn.avg_pool2d":
            return "astype to an integer type is only supported around avg_pool2d"
        return "unexpected avg_pool2d input"
    widen = ctx.resolve(ctx.resolve(value.args[0]).args[0])
    if ctx.int8_value(widen.args[0]) is None:
        return "avg_pool2d of a value that could not be lowered"
    return None


def _lower_avg_pool(ctx, var, value, q):
    pool = ctx.resolve(value.args[0])
    src_var = ctx.resolve(pool.args[0]).args[0]
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_avg_pool", dtype), [ctx.int8_value(src_var)],
                            pool_attrs(pool, shape_of(src_var), shape_of(var), dtype), shape_of(var), dtype)


# ------------------------------------------------------------ max pool
def _check_max_pool(ctx, var, value, q):
    if ctx.int8_value(value.args[0]) is None:
        return "max_pool2d of a value that could not be lowered"
    return None


def _lower_max_pool(ctx, var, value, q):
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_max_pool", dtype), [ctx.int8_value(value.args[0])],
                            pool_attrs(value, shape_of(value.args[0]), shape_of(var), dtype), shape_of(var), dtype)


# ------------------------------------------- MEAN, SUM, REDUCE_MAX/MIN
def _mean_axes(mean):
    in_shape = shape_of(mean.args[0])
    axes = mean.attrs.axis
    return sorted(int(a) % len(in_shape) for a in axes) if axes is not None else list(range(len(in_shape)))


def _check_reduce(what, same_quantization=False):
    def check(ctx, var, mean, q):
        axes = _mean_axes(mean)
        if axes != list(range(axes[0], axes[-1] + 1)):
            return f"{what} over non-contiguous axes {axes} is not supported"
        x = ctx.activation_input(mean.args[0])
        if same_quantization and x is not None and (np.float32(x.scale), x.zero_point) != (
                np.float32(q.s_out), q.zp_out):
            return f"{what} needs one quantization for input and output (TFLM compares raw values)"
        return None
    return check


def _reduce(kernel, counted):
    """Lower a reduction over contiguous axes to ``kernel`` on [outer, reduced, inner];
    ``counted``: MEAN/SUM rescale (else raw REDUCE_MAX/MIN)."""
    def lower(ctx, var, mean, q):
        x = ctx.activation_input(mean.args[0])
        if x is None or x.dtype != q.dtype:
            return None
        in_shape = shape_of(mean.args[0])
        axes = _mean_axes(mean)
        reduced = int(np.prod([in_shape[a] for a in axes]))
        attrs = dict(outer=int(np.prod(in_shape[:axes[0]])), reduced=reduced,
                     inner=int(np.prod(in_shape[axes[-1] + 1:])))
        if counted:
            attrs.update(mean_params(np.float32(x.scale), x.zero_point, np.float32(q.s_out), q.zp_out, reduced))
        else:
            attrs.update(input_offset=0, output_offset=0, multiplier=0, shift=0)
        return make_kernel_call(activation_kernel(kernel, q.dtype), [x.expr], attrs, shape_of(var), q.dtype)
    return lower


# ------------------------------------------------------- ARG_MAX / ARG_MIN
ARG_PATTERN = is_op("relax.astype")(is_op("relax.argmax")(wildcard()) | is_op("relax.argmin")(wildcard()))


def _check_arg(ctx, var, cast, q):
    arg = ctx.resolve(cast.args[0])
    if arg.attrs.axis is None or ctx.int8_value(arg.args[0]) is None:
        return "ARG_MAX/ARG_MIN needs one axis and an int8 input that could be lowered"
    return None


def _lower_arg(ctx, var, cast, q):
    arg = ctx.resolve(cast.args[0])
    in_shape = shape_of(arg.args[0])
    axis = int(arg.attrs.axis) % len(in_shape)
    if dtype_of(arg.args[0]) != "int8":
        return None
    kernel = "te_arg_max_s8" if op_name(arg) == "relax.argmax" else "te_arg_min_s8"
    return make_kernel_call(kernel, [ctx.int8_value(arg.args[0])], dict(
        outer=int(np.prod(in_shape[:axis])), reduced=in_shape[axis], inner=int(np.prod(in_shape[axis + 1:])),
        input_offset=0, output_offset=0, multiplier=0, shift=0), shape_of(var), "int32")


def _is_avg_pool_cast(ctx, value):
    """The importer's astype(avg_pool2d(astype(x))) (a CAST of its own is data movement's)."""
    return op_name(value) == "relax.astype" and op_name(ctx.resolve(value.args[0])) == "relax.nn.avg_pool2d"


LOWERINGS = [
    Lowering("AVERAGE_POOL_2D", "int8", _lower_avg_pool, pattern=op_pattern("relax.astype"), check=_check_avg_pool,
             matcher=_is_avg_pool_cast, tflite={"AVERAGE_POOL_2D": (0,)}, dtypes=("int8", "int16")),
    Lowering("ARG_MAX", "int8", _lower_arg, pattern=ARG_PATTERN, check=_check_arg, fusable=False,
             tflite={"ARG_MAX": (0,), "ARG_MIN": (0,)}, outputs=("int32",)),
    Lowering("MAX_POOL_2D", "int8", _lower_max_pool, pattern=op_pattern("relax.nn.max_pool2d"),
             check=_check_max_pool, tflite={"MAX_POOL_2D": (0,)}, dtypes=("int8", "int16")),
    Lowering("MEAN", "quantize", _reduce("te_mean", True), pattern=is_op("relax.mean")(dequantize_pattern()),
             check=_check_reduce("MEAN"), fusable=False, tflite={"MEAN": (0,)}, dtypes=("int8", "int16")),
    Lowering("SUM", "quantize", _reduce("te_sum", True), pattern=is_op("relax.sum")(dequantize_pattern()),
             check=_check_reduce("SUM"), fusable=False, tflite={"SUM": (0,)}, dtypes=("int8", "int16")),
    Lowering("REDUCE_MAX", "quantize", _reduce("te_reduce_max", False),
             pattern=is_op("relax.max")(dequantize_pattern()), check=_check_reduce("REDUCE_MAX", True),
             fusable=False, tflite={"REDUCE_MAX": (0,)}),
    Lowering("REDUCE_MIN", "quantize", _reduce("te_reduce_min", False),
             pattern=is_op("relax.min")(dequantize_pattern()), check=_check_reduce("REDUCE_MIN", True),
             fusable=False, tflite={"REDUCE_MIN": (0,)}),
]
