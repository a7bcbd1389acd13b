"""Activations and unary math: SOFTMAX, LOGISTIC, TANH, ELU, HARD_SWISH, ABS,
RSQRT, LEAKY_RELU, and the RELU/RELU6/clip the importers put before a quantize
(fused activation: becomes
the kernel's act range) or after it (int8 clip: folded into the kernel it reads
when it is that kernel's only reader, else a clamping requantize)."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ...quantization.activation_params import (elu_table, hard_swish_params, log_softmax_params, logistic_params,
                                               sigmoid_s16_params,
                                               sigmoid_table_s16, softmax_params, softmax_s16_params)
from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import dtype_of, op_name, shape_of
from .base import ACTIVATION_RANGE, INT8_MAX, INT8_MIN, Lowering, activation_kernel, dequantize_pattern, op_pattern, tflm_quantize


def fused_activation(ctx, body, s_out, zp_out, dtype="int8"):
    """A float activation the importer put before quantize (RELU/RELU6 fused into
    ADD/MUL, or a standalone RELU/RELU6): (act range, its name, the expression under it)."""
    qmin, qmax = ACTIVATION_RANGE[dtype]
    act, float_act, inner = (qmin, qmax), None, body
    name = op_name(body)
    if name == "relax.nn.relu":
        act, float_act = (max(qmin, zp_out), qmax), "RELU"
        inner = ctx.resolve(body.args[0])
    elif name == "relax.clip" and dtype_of(body) == "float32":
        fmin, fmax = float(body.args[1].value), float(body.args[2].value)
        act = (max(qmin, tflm_quantize(fmin, s_out, zp_out)),
               min(qmax, tflm_quantize(fmax, s_out, zp_out)))
        float_act = {(0.0, 6.0): "RELU6", (-1.0, 1.0): "RELU_N1_TO_1"}.get((fmin, fmax), "CLIP")
        inner = ctx.resolve(body.args[0])
    return act, float_act, inner


def tflm_act_range(lo, hi, scale, zp, dtype="int8"):
    """Recover TFLM's rounding of a fused RELU/RELU6/RELU_N1_TO_1 range.

    The importer computed the clip bounds with Python's round-half-even on
    a double division; TFLM rounds half away from zero on a float division.
    """
    if scale is None:
        return lo, hi
    qmin, qmax = ACTIVATION_RANGE[dtype]
    for fmin, fmax in ((0.0, 6.0), (-1.0, 1.0), (0.0, None)):
        py_lo = max(qmin, round(fmin / scale) + zp)
        py_hi = qmax if fmax is None else min(qmax, round(fmax / scale) + zp)
        if (py_lo, py_hi) == (lo, hi):
            t_lo = max(qmin, tflm_quantize(fmin, scale, zp))
            t_hi = qmax if fmax is None else min(qmax, tflm_quantize(fmax, scale, zp))
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
    dtype = dtype_of(var)
    pending = _foldable(ctx, src_var)
    if pending is not None:
        attrs = dict(pending["attrs"])
        attrs["act_min"], attrs["act_max"] = tflm_act_range(lo, hi, attrs.get("_out_scale"), attrs.get("_out_zp"),
                                                            dtype)
        attrs["act_min"] = max(attrs["act_min"], pending["attrs"]["act_min"])
        attrs["act_max"] = min(attrs["act_max"], pending["attrs"]["act_max"])
        ctx.forget(src_var)
        return make_kernel_call(pending["kernel"], pending["tensors"], attrs, shape_of(var), dtype)
    qmin, qmax = ACTIVATION_RANGE[dtype]
    return make_kernel_call(activation_kernel("te_requantize", dtype), [ctx.int8_value(src_var)], dict(
        size=int(np.prod(shape_of(var))), input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
        act_min=max(lo, qmin), act_max=min(hi, qmax), _op_type="CLIP"), shape_of(var), dtype)


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
    x = ctx.activation_input(_softmax_operand(ctx, sm)[1])
    if q.dtype == "int16" and x is not None and x.dtype == "int8":
        if q.s_out != np.float32(1.0 / 65536) or q.zp_out != -32768:
            return "int16 softmax output of an int8 input must have scale 1/65536 and zero point -32768"
    elif q.dtype == "int16":
        if abs(q.s_out * 32768 - 1) > 1e-3 or q.zp_out != 0:
            return "int16 softmax output must have scale 1/32768 and zero point 0"
    elif q.s_out != np.float32(1.0 / 256) or q.zp_out != -128:
        return "int8 softmax output must have scale 1/256 and zero point -128"
    return None


def _lower_softmax(ctx, var, sm, q):
    beta, operand = _softmax_operand(ctx, sm)
    x = ctx.activation_input(operand)
    if x is None or (x.dtype, q.dtype) not in (("int8", "int8"), ("int8", "int16"), ("int16", "int16")):
        return None
    shape = shape_of(var)
    attrs = dict(rows=int(np.prod(shape[:-1])), depth=shape[-1])
    if x.dtype == "int8" and q.dtype == "int16":
        attrs.update(softmax_params(np.float32(x.scale), beta))
        return make_kernel_call("te_softmax_s8_s16", [x.expr], attrs, shape, "int16")
    if q.dtype == "int16":
        fields, exp_table, reciprocal_table = softmax_s16_params(np.float32(x.scale), beta)
        attrs.update(fields)
        return make_kernel_call("te_softmax_s16", [x.expr, relax.const(exp_table), relax.const(reciprocal_table)],
                                attrs, shape, "int16")
    attrs.update(softmax_params(np.float32(x.scale), beta))
    return make_kernel_call("te_softmax_s8", [x.expr], attrs, shape, "int8")


# ----------------------------------------------------------- log softmax
def _check_log_softmax(ctx, var, op, q):
    if int(op.attrs.axis) not in (-1, len(shape_of(var)) - 1):
        return "log_softmax is only supported over the last axis"
    if q.s_out != np.float32(16.0 / 256) or q.zp_out != 127:
        return "int8 log_softmax output must have scale 16/256 and zero point 127"
    return None


def _lower_log_softmax(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None or x.dtype != "int8":
        return None
    shape = shape_of(var)
    attrs = dict(rows=int(np.prod(shape[:-1])), depth=shape[-1])
    attrs.update(log_softmax_params(np.float32(x.scale)))
    return make_kernel_call("te_log_softmax_s8", [x.expr], attrs, shape, "int8")


# ------------------------------------------------------ L2 normalization
# x / sqrt(sum(x * x, last axis) + eps), the frontend's form of int8 L2_NORMALIZATION.
_L2_X = dequantize_pattern()
L2_NORMALIZATION_PATTERN = is_op("relax.divide")(_L2_X, is_op("relax.sqrt")(is_op("relax.add")(
    is_op("relax.sum")(is_op("relax.multiply")(_L2_X, _L2_X)), wildcard())))


def _check_l2_normalization(ctx, var, op, q):
    if q.s_out != np.float32(1.0 / 128) or q.zp_out != 0:
        return "int8 L2_NORMALIZATION output must have scale 1/128 and zero point 0 (what TFLM writes)"
    return None


def _lower_l2_normalization(ctx, var, div, q):
    x = ctx.activation_input(div.args[0])
    if x is None or x.dtype != "int8":
        return None
    shape = shape_of(var)
    return make_kernel_call("te_l2_normalization_s8", [x.expr], dict(
        rows=int(np.prod(shape[:-1])), depth=shape[-1], input_zero_point=x.zero_point), shape, "int8")


# ------------------------------------------------------- layer normalization
LAYER_NORM_PATTERN = is_op("relax.nn.layer_norm")(dequantize_pattern(), wildcard(), wildcard())
_LAYER_NORM_MAX_DEPTH = 4096  # keeps the kernel's int64 sum of squares far from overflow


def _check_layer_norm(ctx, var, op, q):
    shape = shape_of(var)
    axes = [int(a) % len(shape) for a in op.attrs.axes]
    if axes != [len(shape) - 1]:
        return f"layer normalization over axes {axes} is not supported; only the last axis is"
    if shape[-1] > _LAYER_NORM_MAX_DEPTH:
        return f"layer normalization over {shape[-1]} values is not supported (at most {_LAYER_NORM_MAX_DEPTH})"
    gamma, beta = ctx.const(op.args[1]), ctx.const(op.args[2])
    if gamma is None or beta is None:
        return "layer normalization needs constant scale (gamma) and bias (beta)"
    if not (np.isfinite(gamma).all() and np.isfinite(beta).all()):
        return "layer normalization scale (gamma) and bias (beta) must be finite"
    x = ctx.activation_input(op.args[0])
    if x is not None and np.max(np.abs(gamma)) * np.sqrt(shape[-1]) / float(np.float32(q.s_out)) >= 2.0 ** 28:
        return "layer normalization scale (gamma) is too large for the output scale (every output would saturate)"
    return None


def _lower_layer_norm(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None or x.dtype != "int8":
        return None
    shape = shape_of(var)
    n = shape[-1]
    gamma = np.broadcast_to(np.ravel(ctx.const(op.args[1])).astype(np.float64), (n,))
    beta = np.broadcast_to(np.ravel(ctx.const(op.args[2])).astype(np.float64), (n,))
    s_x, s_y = float(np.float32(x.scale)), float(np.float32(q.s_out))
    factors = np.sqrt(n) * gamma / s_y
    biggest = float(np.max(np.abs(factors))) if n else 0.0
    # Fraction bits of the scaled values: as many as keep |factor| * 2^frac below 2^29 (int32 headroom).
    frac = int(np.clip(28 - np.ceil(np.log2(max(biggest, 1e-30))), 0, 16))
    pairs = [quantize_multiplier(float(f) * 2.0 ** frac) if f != 0 else (0, 30) for f in factors]
    pairs = [(m, sh) if sh - 30 >= -31 else (0, 30) for m, sh in pairs]  # below 2^-62: no contribution
    eps_term = min(float(op.attrs.epsilon) * float(n) ** 3 / (s_x * s_x), float(2 ** 60))
    attrs = dict(rows=int(np.prod(shape[:-1])), depth=n, input_zero_point=x.zero_point, output_zero_point=q.zp_out,
                 fraction_bits=frac, epsilon_term=int(round(eps_term)))
    mult = relax.const(np.array([m for m, _ in pairs], np.int32))
    shift = relax.const(np.array([sh - 30 for _, sh in pairs], np.int32))
    # Beyond +-2^30 the output saturates anyway: clipping keeps the int32 sum from wrapping.
    bias = relax.const(np.clip(np.round(beta / s_y * 2.0 ** frac), -2.0 ** 30, 2.0 ** 30).astype(np.int32))
    return make_kernel_call("te_layer_norm_s8", [x.expr, mult, shift, bias], attrs, shape, "int8")


# -------------------------------------------------------------- logistic
def _fixed_output(what, scale, zero_point):
    """Check that the output has the quantization TFLite fixes for ``what``
    (int8: ``scale``/``zero_point``; int16: 2^-15 and 0)."""
    def check(ctx, var, value, q):
        if q.dtype == "int16":
            if abs(np.log2(q.s_out) + 15) >= 1e-3 or q.zp_out != 0:
                return f"int16 {what} output must have scale 2^-15 and zero point 0"
        elif q.s_out != np.float32(scale) or q.zp_out != zero_point:
            return f"int8 {what} output must have scale 1/{round(1 / scale)} and zero point {zero_point}"
        return None
    return check


def _sigmoid_like(kernel, tanh):
    """Lower LOGISTIC or TANH: int8 with a Q4.27 input rescale (TFLM derives both
    alike), int16 by interpolation in the sigmoid table."""
    def lower(ctx, var, value, q):
        x = ctx.activation_input(value.args[0])
        if x is None or x.dtype != q.dtype:
            return None
        attrs = dict(size=int(np.prod(shape_of(var))))
        if q.dtype == "int16":
            attrs.update(input_zero_point=0, input_range_radius=0, **sigmoid_s16_params(np.float32(x.scale), tanh))
            return make_kernel_call(f"{kernel}_s16", [x.expr, relax.const(sigmoid_table_s16(), "uint16")], attrs,
                                    shape_of(var), "int16")
        attrs.update(logistic_params(np.float32(x.scale), x.zero_point))
        return make_kernel_call(f"{kernel}_s8", [x.expr], attrs, shape_of(var), "int8")
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
    if x is None or x.dtype != q.dtype:
        return None
    s_in, s_out = np.float32(x.scale), np.float32(q.s_out)
    # TFLM rescales only when the scales differ; 2^30 * 2^1 is exactly 1 otherwise.
    mult = quantize_multiplier(float(s_in) / float(s_out)) if s_in != s_out else (1 << 30, 1)
    return _unary(ctx, activation_kernel("te_abs", q.dtype), x, var, q, mult)


def _lower_rsqrt(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None or x.dtype != q.dtype:
        return None
    mult = quantize_multiplier(1.0 / (np.sqrt(float(np.float32(x.scale))) * float(np.float32(q.s_out))))
    return _unary(ctx, activation_kernel("te_rsqrt", q.dtype), x, var, q, mult)


def _lower_leaky_relu(ctx, var, op, q):
    x = ctx.activation_input(op.args[0])
    if x is None or x.dtype != q.dtype:
        return None
    s_in, s_out, alpha = (float(np.float32(v)) for v in (x.scale, q.s_out, float(op.attrs.alpha)))
    # TFLM computes both ratios in double from the float32 scales and alpha
    # (every int16 input value tells a float32 ratio apart).
    return _unary(ctx, activation_kernel("te_leaky_relu", q.dtype), x, var, q, quantize_multiplier(s_in / s_out),
                  quantize_multiplier(s_in * alpha / s_out))


def _unary(ctx, kernel, x, var, q, mult, alpha=(0, 0)):
    return make_kernel_call(kernel, [x.expr], dict(
        size=int(np.prod(shape_of(var))), input_zero_point=x.zero_point, output_zero_point=q.zp_out,
        multiplier=mult[0], shift=mult[1], alpha_multiplier=alpha[0], alpha_shift=alpha[1]), shape_of(var), q.dtype)


LOWERINGS = [
    Lowering("SOFTMAX", "quantize", _lower_softmax, pattern=is_op("relax.nn.softmax")(wildcard()),
             check=_check_softmax, fusable=False, tflite={"SOFTMAX": (0,)}, dtypes=("int8", "int16")),
    Lowering("L2_NORMALIZATION", "quantize", _lower_l2_normalization, pattern=L2_NORMALIZATION_PATTERN,
             check=_check_l2_normalization, fusable=False, tflite={"L2_NORMALIZATION": (0,)}),
    # ONNX LayerNormalization (TFLite models spell it out as MEAN, SQUARED_DIFFERENCE, RSQRT, MUL, ADD).
    Lowering("LAYER_NORMALIZATION", "quantize", _lower_layer_norm, pattern=LAYER_NORM_PATTERN,
             check=_check_layer_norm, fusable=False),
    Lowering("LOG_SOFTMAX", "quantize", _lower_log_softmax, pattern=is_op("relax.nn.log_softmax")(dequantize_pattern()),
             check=_check_log_softmax, fusable=False, tflite={"LOG_SOFTMAX": (0,)}),
    Lowering("LOGISTIC", "quantize", _sigmoid_like("te_logistic", False),
             pattern=is_op("relax.sigmoid")(dequantize_pattern()), check=_fixed_output("logistic", 1.0 / 256, -128),
             fusable=False, tflite={"LOGISTIC": (0,)}, dtypes=("int8", "int16")),
    Lowering("TANH", "quantize", _sigmoid_like("te_tanh", True), pattern=is_op("relax.tanh")(dequantize_pattern()),
             check=_fixed_output("tanh", 1.0 / 128, 0), fusable=False, tflite={"TANH": (0,)},
             dtypes=("int8", "int16")),
    Lowering("ELU", "quantize", _lower_elu, pattern=ELU_PATTERN, fusable=False, tflite={"ELU": (0,)}),
    Lowering("ABS", "quantize", _lower_abs, pattern=is_op("relax.abs")(dequantize_pattern()), fusable=False,
             tflite={"ABS": (0,)}, dtypes=("int8", "int16")),
    Lowering("RSQRT", "quantize", _lower_rsqrt, pattern=is_op("relax.rsqrt")(dequantize_pattern()), fusable=False,
             tflite={"RSQRT": (0,)}, dtypes=("int8", "int16")),
    Lowering("LEAKY_RELU", "quantize", _lower_leaky_relu, pattern=is_op("relax.nn.leakyrelu")(dequantize_pattern()),
             fusable=False, tflite={"LEAKY_RELU": (0,)}, dtypes=("int8", "int16")),
    Lowering("HARD_SWISH", "quantize", _lower_hard_swish, pattern=HARD_SWISH_PATTERN, fusable=False,
             tflite={"HARD_SWISH": (0,)}),
    # RELU_N1_TO_1 (int8; TFLite's, TFLM has none) is the quantize of a clip the requantize lowering reads.
    Lowering("CLIP", "int8", _lower_clip, pattern=op_pattern("relax.clip"), check=_check_clip,
             tflite={"RELU": (0,), "RELU6": (0,), "RELU_N1_TO_1": (0,)}, dtypes=("int8", "int16"),
             op_dtypes={"RELU_N1_TO_1": ("int8",)}),
]
