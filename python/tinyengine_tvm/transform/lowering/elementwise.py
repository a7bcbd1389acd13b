"""Elementwise family: ADD and MUL of two int8 activations (or constants),
with 4-D broadcasting and TFLM's fixed-point rescaling."""
from __future__ import annotations

import numpy as np
from tvm.relax.dpl import is_op

from ...errors import UnsupportedModelError
from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import shape_of
from .base import Lowering, dequantize_pattern

ADD_PATTERN = is_op("relax.add")(dequantize_pattern(), dequantize_pattern())
MUL_PATTERN = is_op("relax.multiply")(dequantize_pattern(), dequantize_pattern())


def broadcast_attrs(s1, s2, so):
    """Output dims and per-input strides (0 on broadcast axes), all padded to 4-D."""
    def strides(shape):
        shape = [1] * (4 - len(shape)) + list(shape)
        dense = [int(np.prod(shape[i + 1:])) for i in range(4)]
        return [0 if shape[i] == 1 and out4[i] != 1 else dense[i] for i in range(4)]

    if max(len(s1), len(s2), len(so)) > 4:
        raise UnsupportedModelError([("add/mul", str(so), "broadcasting beyond 4-D is not supported")])
    out4 = [1] * (4 - len(so)) + list(so)
    return dict(dims=out4, input1_strides=strides(s1), input2_strides=strides(s2))


def _lower_add(ctx, var, add, q):
    a = ctx.activation_input(add.args[0])
    b = ctx.activation_input(add.args[1])
    if a is None or b is None:
        return None
    s1, s2, so = np.float64(np.float32(a.scale)), np.float64(np.float32(b.scale)), np.float64(q.s_out)
    left_shift = 20
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    attrs = broadcast_attrs(shape_of(add.args[0]), shape_of(add.args[1]), shape_of(var))
    attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                 output_offset=q.zp_out, left_shift=left_shift,
                 input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                 input2_shift=sh2, output_multiplier=mo, output_shift=sho)
    return make_kernel_call("te_add_s8", [a.expr, b.expr], q.finish(attrs), shape_of(var), "int8")


def _lower_mul(ctx, var, mul, q):
    a = ctx.activation_input(mul.args[0])
    b = ctx.activation_input(mul.args[1])
    if a is None or b is None:
        return None
    real = np.float64(np.float32(a.scale)) * np.float64(np.float32(b.scale)) / np.float64(q.s_out)
    mo, sho = quantize_multiplier(real)
    attrs = broadcast_attrs(shape_of(mul.args[0]), shape_of(mul.args[1]), shape_of(var))
    attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                 output_offset=q.zp_out, left_shift=0, input1_multiplier=0,
                 input1_shift=0, input2_multiplier=0, input2_shift=0,
                 output_multiplier=mo, output_shift=sho)
    return make_kernel_call("te_mul_s8", [a.expr, b.expr], q.finish(attrs), shape_of(var), "int8")


LOWERINGS = [
    Lowering("ADD", "quantize", _lower_add, pattern=ADD_PATTERN, tflite={"ADD": (0, 1)}),
    Lowering("MUL", "quantize", _lower_mul, pattern=MUL_PATTERN, tflite={"MUL": (0, 1)}),
]
