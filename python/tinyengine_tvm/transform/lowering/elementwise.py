"""Elementwise family: ADD, SUB, MUL, SQUARED_DIFFERENCE, PRELU, MAXIMUM and MINIMUM
of two int8 activations (or constants), with 4-D broadcasting and TFLM's
fixed-point rescaling (one te_elementwise_params layout for all of them);
ADD, SUB, MUL, SQUARED_DIFFERENCE, MAXIMUM and MINIMUM also of two int16
activations, PRELU of an int16 activation with an int8 alpha; the comparisons
EQUAL ... LESS_EQUAL (bool results, int8 only: TFLM's int16 GREATER reads
comparison parameters its Prepare never sets, the other comparisons refuse
int16) and SELECT_V2 (int8 or int16)."""
from __future__ import annotations

import numpy as np
from tvm.relax.dpl import is_op, wildcard

from ...errors import UnsupportedModelError
from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import dtype_of, shape_of
from .base import Lowering, activation_kernel, dequantize_pattern

#: Bits of headroom ADD and SUB give the rescaled inputs (TFLM: 20 for int8, 15 for int16).
_LEFT_SHIFT = {"int8": 20, "int16": 15}
#: SQUARED_DIFFERENCE's headroom (TFLM: 7 for int8; 0 for int16, whose square already needs 30 bits).
_SQUARED_LEFT_SHIFT = {"int8": 7, "int16": 0}


def _operands(ctx, op, q):
    """Both activations of a binary ``op``, when they have the output's type."""
    a = ctx.activation_input(op.args[0])
    b = ctx.activation_input(op.args[1])
    if a is None or b is None or a.dtype != q.dtype or b.dtype != q.dtype:
        return None, None
    return a, b

ADD_PATTERN = is_op("relax.add")(dequantize_pattern(), dequantize_pattern())
MUL_PATTERN = is_op("relax.multiply")(dequantize_pattern(), dequantize_pattern())
SUB_PATTERN = is_op("relax.subtract")(dequantize_pattern(), dequantize_pattern())
# The importer's SQUARED_DIFFERENCE: d * d of one subtraction d.
_DIFF = is_op("relax.subtract")(dequantize_pattern(), dequantize_pattern())
SQUARED_DIFFERENCE_PATTERN = is_op("relax.multiply")(_DIFF, _DIFF)
# The frontend's int8 PRELU: where(x >= 0, x, x * alpha) of one dequantized x.
_PRELU_X = dequantize_pattern()
PRELU_PATTERN = is_op("relax.where")(is_op("relax.greater_equal")(_PRELU_X, wildcard()), _PRELU_X,
                                     is_op("relax.multiply")(_PRELU_X, dequantize_pattern()))
MAXIMUM_PATTERN = is_op("relax.maximum")(dequantize_pattern(), dequantize_pattern())
MINIMUM_PATTERN = is_op("relax.minimum")(dequantize_pattern(), dequantize_pattern())


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
    a, b = _operands(ctx, add, q)
    if a is None:
        return None
    s1, s2, so = np.float64(np.float32(a.scale)), np.float64(np.float32(b.scale)), np.float64(q.s_out)
    left_shift = _LEFT_SHIFT[q.dtype]
    twice_max = 2.0 * max(s1, s2)
    m1, sh1 = quantize_multiplier(s1 / twice_max)
    m2, sh2 = quantize_multiplier(s2 / twice_max)
    mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
    attrs = broadcast_attrs(shape_of(add.args[0]), shape_of(add.args[1]), shape_of(var))
    attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                 output_offset=q.zp_out, left_shift=left_shift,
                 input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                 input2_shift=sh2, output_multiplier=mo, output_shift=sho)
    return make_kernel_call(activation_kernel("te_add", q.dtype), [a.expr, b.expr], q.finish(attrs), shape_of(var),
                            q.dtype)


def _difference_call(kernel, ctx, var, sub, q, left_shift, squared):
    """SUB (left shift 20, or 15 for int16) or SQUARED_DIFFERENCE (left shift 7,
    or 0 for int16, the output dividing the square of twice the larger input
    scale) of ``sub``'s operands.
    The multipliers are computed in double from the float32 scales, as the
    TFLM this project is checked against does."""
    a, b = _operands(ctx, sub, q)
    if a is None:
        return None
    f32 = np.float32
    s1, s2, so = f32(a.scale), f32(b.scale), f32(q.s_out)
    twice_max = 2.0 * float(max(s1, s2))
    m1, sh1 = quantize_multiplier(float(s1) / twice_max)
    m2, sh2 = quantize_multiplier(float(s2) / twice_max)
    numerator = twice_max * twice_max if squared else twice_max
    mo, sho = quantize_multiplier(numerator / float(f32(1 << ((2 if squared else 1) * left_shift)) * so))
    attrs = broadcast_attrs(shape_of(sub.args[0]), shape_of(sub.args[1]), shape_of(var))
    attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=q.zp_out,
                 left_shift=left_shift, input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                 input2_shift=sh2, output_multiplier=mo, output_shift=sho)
    return make_kernel_call(kernel, [a.expr, b.expr], q.finish(attrs), shape_of(var), q.dtype)


def _lower_sub(ctx, var, sub, q):
    return _difference_call(activation_kernel("te_sub", q.dtype), ctx, var, sub, q, _LEFT_SHIFT[q.dtype], False)


def _squared_difference_matcher(ctx, expr):
    """Both factors are the one subtraction (the matcher runs before the pattern: any expression)."""
    args = getattr(expr, "args", None)
    return args is not None and len(args) == 2 and args[0].same_as(args[1])


def _lower_squared_difference(ctx, var, mul, q):
    return _difference_call(activation_kernel("te_squared_difference", q.dtype), ctx, var, ctx.resolve(mul.args[0]), q,
                            _SQUARED_LEFT_SHIFT[q.dtype], True)


def _check_raw_compare(ctx, var, op, q):
    a = ctx.activation_input(op.args[0])
    b = ctx.activation_input(op.args[1])
    if a is None or b is None:
        return None
    qs = {(float(np.float32(a.scale)), a.zero_point), (float(np.float32(b.scale)), b.zero_point),
          (float(np.float32(q.s_out)), q.zp_out)}
    if len(qs) > 1:
        return (f"inputs and output are quantized differently ({sorted(qs)}); TFLite Micro compares the raw "
                "int8 values, so they must share one scale and zero point")
    return None


def _raw_compare(kernel):
    def lower(ctx, var, op, q):
        a, b = _operands(ctx, op, q)
        if a is None:
            return None
        attrs = broadcast_attrs(shape_of(op.args[0]), shape_of(op.args[1]), shape_of(var))
        attrs.update(input1_offset=0, input2_offset=0, output_offset=0, left_shift=0, input1_multiplier=0,
                     input1_shift=0, input2_multiplier=0, input2_shift=0, output_multiplier=0, output_shift=0)
        return make_kernel_call(activation_kernel(kernel, q.dtype), [a.expr, b.expr], q.finish(attrs), shape_of(var),
                                q.dtype)
    return lower


def _check_prelu(ctx, var, where, q):
    alpha = ctx.activation_input(ctx.resolve(where.args[2]).args[1])
    if q.dtype == "int16" and alpha is not None and alpha.dtype != "int8":
        return f"alpha is {alpha.dtype}; TFLite Micro's int16 PRELU takes an int8 alpha only"
    return None


def _lower_prelu(ctx, var, where, q):
    cond, mul = ctx.resolve(where.args[0]), ctx.resolve(where.args[2])
    x_var = cond.args[0]
    if not (where.args[1].same_as(x_var) and mul.args[0].same_as(x_var)):
        return None
    x, alpha = ctx.activation_input(x_var), ctx.activation_input(mul.args[1])
    # TFLM's 16x8 PRELU takes an int8 alpha only.
    if x is None or alpha is None or x.dtype != q.dtype or alpha.dtype != "int8":
        return None
    s_in, s_alpha, s_out = (float(np.float32(v)) for v in (x.scale, alpha.scale, q.s_out))
    m1, sh1 = quantize_multiplier(s_in / s_out)
    m2, sh2 = quantize_multiplier(s_in * s_alpha / s_out)
    attrs = broadcast_attrs(shape_of(x_var), shape_of(mul.args[1]), shape_of(var))
    attrs.update(input1_offset=-x.zero_point, input2_offset=-alpha.zero_point, output_offset=q.zp_out, left_shift=0,
                 input1_multiplier=0, input1_shift=0, input2_multiplier=m2, input2_shift=sh2,
                 output_multiplier=m1, output_shift=sh1)
    return make_kernel_call(activation_kernel("te_prelu", q.dtype), [x.expr, alpha.expr], q.finish(attrs), shape_of(var),
                            q.dtype)


def _lower_mul(ctx, var, mul, q):
    a, b = _operands(ctx, mul, q)
    if a is None:
        return None
    real = np.float64(np.float32(a.scale)) * np.float64(np.float32(b.scale)) / np.float64(q.s_out)
    mo, sho = quantize_multiplier(real)
    attrs = broadcast_attrs(shape_of(mul.args[0]), shape_of(mul.args[1]), shape_of(var))
    attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                 output_offset=q.zp_out, left_shift=0, input1_multiplier=0,
                 input1_shift=0, input2_multiplier=0, input2_shift=0,
                 output_multiplier=mo, output_shift=sho)
    return make_kernel_call(activation_kernel("te_mul", q.dtype), [a.expr, b.expr], q.finish(attrs), shape_of(var),
                            q.dtype)


# ------------------------------------------------------------ comparisons
_COMPARISONS = {"EQUAL": "equal", "NOT_EQUAL": "not_equal", "GREATER": "greater",
                "GREATER_EQUAL": "greater_equal", "LESS": "less", "LESS_EQUAL": "less_equal"}


def _check_compare(ctx, var, op, q):
    for arg in op.args:
        x = ctx.activation_input(arg)
        if x is not None and not 0.0 < np.float32(x.scale) < 1.0:
            return f"input scale {x.scale:g} is not below 1, which TFLM's int8 comparison needs"
    return None


def _compare(kernel):
    def lower(ctx, var, op, q):
        a = ctx.activation_input(op.args[0])
        b = ctx.activation_input(op.args[1])
        if a is None or b is None or (a.dtype, b.dtype) != ("int8", "int8"):
            return None
        # TFLM rescales each input by its own scale (both then share one unit).
        m1, sh1 = quantize_multiplier(float(np.float32(a.scale)))
        m2, sh2 = quantize_multiplier(float(np.float32(b.scale)))
        attrs = broadcast_attrs(shape_of(op.args[0]), shape_of(op.args[1]), shape_of(var))
        attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point, output_offset=0, left_shift=8,
                     input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                     output_multiplier=0, output_shift=0, act_min=0, act_max=1)
        return make_kernel_call(kernel, [a.expr, b.expr], attrs, shape_of(var), "bool")
    return lower


# ----------------------------------------------------------------- select
def _check_select(ctx, var, where, q):
    if any(ctx.int8_value(a) is None for a in where.args):
        return "select of a value that could not be lowered"
    return None


def _lower_select(ctx, var, where, q):
    cond, x, y = (ctx.int8_value(a) for a in where.args)
    dtype = dtype_of(var)
    if dtype not in ("int8", "int16"):
        return None
    shapes = [shape_of(a) for a in where.args]
    out = shape_of(var)
    if max(len(s) for s in shapes + [out]) > 4:
        return None
    dims = [1] * (4 - len(out)) + list(out)

    def strides(shape):
        shape = [1] * (4 - len(shape)) + list(shape)
        dense = [int(np.prod(shape[i + 1:])) for i in range(4)]
        return [0 if shape[i] == 1 and dims[i] != 1 else dense[i] for i in range(4)]

    return make_kernel_call(activation_kernel("te_select", dtype), [cond, x, y], dict(
        dims=dims, condition_strides=strides(shapes[0]), x_strides=strides(shapes[1]), y_strides=strides(shapes[2])),
        out, dtype)


LOWERINGS = [
    Lowering("ADD", "quantize", _lower_add, pattern=ADD_PATTERN, tflite={"ADD": (0, 1)}, dtypes=("int8", "int16")),
    Lowering("SQUARED_DIFFERENCE", "quantize", _lower_squared_difference, pattern=SQUARED_DIFFERENCE_PATTERN,
             matcher=_squared_difference_matcher, tflite={"SQUARED_DIFFERENCE": (0, 1)}, dtypes=("int8", "int16")),
    Lowering("MUL", "quantize", _lower_mul, pattern=MUL_PATTERN, tflite={"MUL": (0, 1)}, dtypes=("int8", "int16")),
    Lowering("SUB", "quantize", _lower_sub, pattern=SUB_PATTERN, tflite={"SUB": (0, 1)}, dtypes=("int8", "int16")),
    Lowering("PRELU", "quantize", _lower_prelu, pattern=PRELU_PATTERN, check=_check_prelu, fusable=False,
             tflite={"PRELU": (0,)},
             dtypes=("int8", "int16")),
    # The raw comparison ignores act_min/act_max: a following clip is not folded into it.
    Lowering("MAXIMUM", "quantize", _raw_compare("te_maximum"), pattern=MAXIMUM_PATTERN,
             check=_check_raw_compare, fusable=False, tflite={"MAXIMUM": (0, 1)}, dtypes=("int8", "int16")),
    Lowering("MINIMUM", "quantize", _raw_compare("te_minimum"), pattern=MINIMUM_PATTERN,
             check=_check_raw_compare, fusable=False, tflite={"MINIMUM": (0, 1)}, dtypes=("int8", "int16")),
    *[Lowering(op, "int8", _compare(f"te_{name}_s8"),
               pattern=is_op(f"relax.{name}")(dequantize_pattern(), dequantize_pattern()), check=_check_compare,
               fusable=False, tflite={op: (0, 1)}, outputs=("bool",)) for op, name in _COMPARISONS.items()],
    Lowering("SELECT_V2", "int8", _lower_select, pattern=is_op("relax.where")(wildcard(), wildcard(), wildcard()),
             check=_check_select, fusable=False, tflite={"SELECT_V2": (1, 2), "SELECT": (1, 2)},
             dtypes=("int8", "int16")),
]
