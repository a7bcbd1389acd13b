"""Activations and unary math: SOFTMAX, LOGISTIC, TANH, ELU, HARD_SWISH, ABS,
RSQRT, LEAKY_RELU, and the RELU/RELU6/clip the importers put before a quantize
(fused activation: becomes
the kernel's act range) or after it (int8 clip: folded into the kernel it reads
when it is that kernel's only reader, else a clamping requantize)."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ...quantization.activation_params import elu_table, hard_swish_params, logistic_params, softmax_params
from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import dtype_of, op_name, shape_of
from .base import INT8_MAX, INT8_MIN, Lowering, dequantize_pattern, op_pattern, tflm_quantize


def fused_activation(ctx, body, s_out, zp_out):
    """A float activation the importer put before quantize (RELU/RELU6 fused into
    ADD/MUL, or a standalone RELU/RELU6): (act range, its name, the expression under it)."""
    act, float_act, inner = (INT8_MIN, INT8_MAX), None, body
    name = op_name(body)
    if name == "relax.nn.relu":
        act, float_act = (max(INT8_MIN, zp_out), INT8_MAX), "RELU"
        inner = ctx.resolve(body.args[0])
    elif name == "relax.clip" and dtype_of(body) == "float32":
        fmin, fmax = float(body.args[1].value), float(body.args[2].value)
        act = (max(INT8_MIN, tflm_quantize(fmin, s_out, zp_out)),
               min(INT8_MAX, tflm_quantize(fmax, s_out, zp_out)))
        float_act = "RELU6" if (fmin, fmax) == (0.0, 6.0) else "CLIP"
        inner = ctx.resolve(body.args[0])
    return act, float_act, inner


def tflm_act_range(lo, hi, scale, zp):
    """Recover TFLM's rounding of a fused RELU/RELU6/RELU_N1_TO_1 range.

    The importer computed the clip bounds with Python's round-half-even on
    a double division; TFLM rounds half away from zero on a float division.
    """
    if scale is None:
        return lo, hi
    for fmin, fmax in ((0.0, 6.0), (-1.0, 1.0), (0.0, None)):
        py_lo = max(INT8_MIN, round(fmin / scale) + zp)
        py_hi = INT8_MAX if fmax is None else min(INT8_MAX, round(fmax / scale) + zp)
        if (py_lo, py_hi) == (lo, hi):
            t_lo = max(INT8_MIN, tflm_quantize(fmin, scale, zp))
            t_hi = INT8_MAX if fmax is None else min(INT8_MAX, tflm_quantize(fmax, scale, zp))
            return t_lo, t_hi
    return lo, hi


# ------------------------------------------------------------- int8 clip
def _clip_bounds(value):
    return int(round(float(value.args[1].value))), int(round(float(value.args[2].value)))


def _foldable(ctx, src_var):
    pending = ctx.pending_attrs.get(src_var)
    return pending if pending is not None and ctx.uses.get(src_var, 0) == 1 else None


def _check_clip(ctx, var, value, q):
    if _foldable(ctx, value.args[0]) is None and ctx.int8_value(value.args[0]) is None:
        return "clip of a value that could not be lowered"
    return None


def _lower_clip(ctx, var, value, q):
    """A clip after quantize is the frontend's fused activation: fold it."""
    src_var = value.args[0]
    lo, hi = _clip_bounds(value)
    pending = _foldable(ctx, src_var)
    if pending is not None:
        attrs = dict(pending["attrs"])
        attrs["act_min"], attrs["act_max"] = tflm_act_range(lo, hi, attrs.get("_out_scale"), attrs.get("_out_zp"))
        attrs["act_min"] = max(attrs["act_min"], pending["attrs"]["act_min"])
        attrs["act_max"] = min(attrs["act_max"], pending["attrs"]["act_max"])
        ctx.forget(src_var)
        return make_kernel_call(pending["kernel"], pending["tensors"], attrs, shape_of(var), "int8")
    return make_kernel_call("te_requantize_s8", [ctx.int8_value(src_var)], dict(
        size=int(np.prod(shape_of(var))), input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
        act_min=max(lo, INT8_MIN), act_max=min(hi, INT8_MAX), _op_type="CLIP"), shape_of(var), "int8")


# --------------------------------------------------------------- softmax
def _softmax_operand(ctx, sm):
    """(beta, operand): the importer writes TFLite's beta as softmax(beta * x) (frontend/tflite_fixups)."""
    beta, operand = 1.0, sm.args[0]
    scaled = ctx.resolve(operand)
    if op_name(scaled) == "relax.multiply":
        factor = ctx.const(scaled.args[1])
        if factor is not None and np.size(factor) == 1 and np.asarray(factor).dtype == np.float32:
            beta, operand = float(np.asarray(factor).reshape(())), scaled.args[0]
    return beta, operand


def _check_softmax(ctx, var, sm, q):
    if int(sm.attrs.axis) not in (-1, len(shape_of(var)) - 1):
        return "softmax is only supported over the last axis"
    if q.s_out != np.float32(1.0 / 256) or q.zp_out != -128:
        return "int8 softmax output must have scale 1/256 and zero point -128"
    return None


def _lower_softmax(ctx, var, sm, q):
    beta, operand = _softmax_operand(ctx, sm)
    x = ctx.activation_input(operand)
    if x is None:
        return None
    shape = shape_of(var)
    attrs = dict(rows=int(np.prod(shape[:-1])), depth=shape[-1])
    attrs.update(softmax_params(np.float32(x.scale), beta))
    return make_kernel_call("te_softmax_s8", [x.expr], attrs, shape, "int8")


# -------------------------------------------------------------- logistic
def _fixed_output(what, scale, zero_point):
    """Check that the output has the quantization TFLite fixes for ``what``."""
    def check(ctx, var, value, q):
        if q.s_out != np.float32(scale) or q.zp_out != zero_point:
            return f"int8 {what} output must have scale 1/{round(1 / scale)} and zero point {zero_point}"
        return None
    return check


def _q4_input(kernel):
    """Lower LOGISTIC or TANH: TFLM derives both input rescales alike (Q4.27 input)."""
    def lower(ctx, var, value, q):
        x = ctx.activation_input(value.args[0])
        if x is None:
            return None
        attrs = dict(size=int(np.prod(shape_of(var))))
        attrs.update(logistic_params(np.float32(x.scale), x.zero_point))
        return make_kernel_call(kernel, [x.expr], attrs, shape_of(var), "int8")
    return lower


# ------------------------------------------------------------ hard swish
# x * clip(x + 3, 0, 6) / 6, the importer's form of HARD_SWISH; the same x twice.
_HS_X = dequantize_pattern()
HARD_SWISH_PATTERN = is_op("relax.divide")(
    is_op("relax.multiply")(_HS_X, is_op("relax.clip")(is_op("relax.add")(_HS_X, wildcard()), wildcard(), wildcard())),
    wildcard())


def _lower_hard_swish(ctx, var, div, q):
    mul = ctx.resolve(div.args[0])
    six = ctx.const(div.args[1])
    if six is None or float(np.ravel(six)[0]) != 6.0:
        return None
    add = ctx.resolve(ctx.resolve(mul.args[1]).args[0])
    if not add.args[0].same_as(mul.args[0]):
        return None
    x = ctx.activation_input(mul.args[0])
    if x is None:
        return None
    attrs = hard_swish_params(np.float32(x.scale), x.zero_point, np.float32(q.s_out), q.zp_out)
    size = int(np.prod(shape_of(var)))
    return make_kernel_call("te_hard_swish_s8", [x.expr], dict(attrs, size=size), shape_of(var), "int8")


# ------------------------------------------------------------------- ELU
# The frontend's int8 ELU: where(x < 0, exp(x) - 1, x) of one dequantized x.
_ELU_X = dequantize_pattern()
ELU_PATTERN = is_op("relax.where")(is_op("relax.less")(_ELU_X, wildcard()),
                                   is_op("relax.subtract")(is_op("relax.exp")(_ELU_X), wildcard()), _ELU_X)


def _lower_elu(ctx, var, where, q):
    less, minus_one = ctx.resolve(where.args[0]), ctx.resolve(where.args[1])
    x_var = less.args[0]
    exp_arg = ctx.resolve(minus_one.args[0]).args[0]
    consts = (ctx.const(less.args[1]), ctx.const(minus_one.args[1]))
    if not (exp_arg.same_as(x_var) and where.args[2].same_as(x_var)) or any(c is None for c in consts) or \
            (float(np.ravel(consts[0])[0]), float(np.ravel(consts[1])[0])) != (0.0, 1.0):
        return None
    x = ctx.activation_input(x_var)
    if x is None:
        return None
    table = elu_table(x.scale, x.zero_point, q.s_out, q.zp_out)
    return make_kernel_call("te_lut_s8", [x.expr, relax.const(table)], dict(size=int(np.prod(shape_of(var)))),
                            shape_of(var), "int8")


# ------------------------------------------------ ABS, RSQRT, LEAKY_RELU
def _lower_abs(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None:
        return None
    s_in, s_out = np.float32(x.scale), np.float32(q.s_out)
    # TFLM rescales only when the scales differ; 2^30 * 2^1 is exactly 1 otherwise.
    mult = quantize_multiplier(float(s_in) / float(s_out)) if s_in != s_out else (1 << 30, 1)
    return _unary(ctx, "te_abs_s8", x, var, q, mult)


def _lower_rsqrt(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None:
        return None
    mult = quantize_multiplier(1.0 / (np.sqrt(float(np.float32(x.scale))) * float(np.float32(q.s_out))))
    return _unary(ctx, "te_rsqrt_s8", x, var, q, mult)


def _lower_leaky_relu(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None:
        return None
    f32 = np.float32
    s_in, s_out, alpha = f32(x.scale), f32(q.s_out), f32(float(op.attrs.alpha))
    # TFLM divides in float32, then quantizes the double of that.
    return _unary(ctx, "te_leaky_relu_s8", x, var, q, quantize_multiplier(float(s_in / s_out)),
                  quantize_multiplier(float(s_in * alpha / s_out)))


def _unary(ctx, kernel, x, var, q, mult, alpha=(0, 0)):
    return make_kernel_call(kernel, [x.expr], dict(
        size=int(np.prod(shape_of(var))), input_zero_point=x.zero_point, output_zero_point=q.zp_out,
        multiplier=mult[0], shift=mult[1], alpha_multiplier=alpha[0], alpha_shift=alpha[1]), shape_of(var), "int8")


LOWERINGS = [
    Lowering("SOFTMAX", "quantize", _lower_softmax, pattern=is_op("relax.nn.softmax")(wildcard()),
             check=_check_softmax, fusable=False, tflite={"SOFTMAX": (0,)}),
    Lowering("LOGISTIC", "quantize", _q4_input("te_logistic_s8"), pattern=is_op("relax.sigmoid")(dequantize_pattern()),
             check=_fixed_output("logistic", 1.0 / 256, -128), fusable=False, tflite={"LOGISTIC": (0,)}),
    Lowering("TANH", "quantize", _q4_input("te_tanh_s8"), pattern=is_op("relax.tanh")(dequantize_pattern()),
             check=_fixed_output("tanh", 1.0 / 128, 0), fusable=False, tflite={"TANH": (0,)}),
    Lowering("ELU", "quantize", _lower_elu, pattern=ELU_PATTERN, fusable=False, tflite={"ELU": (0,)}),
    Lowering("ABS", "quantize", _lower_abs, pattern=is_op("relax.abs")(dequantize_pattern()), fusable=False,
             tflite={"ABS": (0,)}),
    Lowering("RSQRT", "quantize", _lower_rsqrt, pattern=is_op("relax.rsqrt")(dequantize_pattern()), fusable=False,
             tflite={"RSQRT": (0,)}),
    Lowering("LEAKY_RELU", "quantize", _lower_leaky_relu, pattern=is_op("relax.nn.leakyrelu")(dequantize_pattern()),
             fusable=False, tflite={"LEAKY_RELU": (0,)}),
    Lowering("HARD_SWISH", "quantize", _lower_hard_swish, pattern=HARD_SWISH_PATTERN, fusable=False,
             tflite={"HARD_SWISH": (0,)}),
    Lowering("CLIP", "int8", _lower_clip, pattern=op_pattern("relax.clip"), check=_check_clip,
             tflite={"RELU": (0,), "RELU6": (0,)}),
]
