"""Quantize family: QUANTIZE (float input -> int8/int16, a requantize between
int8 and int16 in any direction, and standalone RELU/RELU6 seen as a
requantize) and DEQUANTIZE of an output back to float."""
from __future__ import annotations

import numpy as np
from tvm import relax

from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import dtype_of, shape_of
from .base import ACTIVATION_RANGE, Lowering, activation_kernel, dequantize_pattern, tflm_quantize


def _is_float_param(ctx, expr) -> bool:
    # Matcher, not dpl: "a parameter of the function being lowered" is not a
    # property of the expression a dpl pattern could test (is_var() also
    # matches any binding's Var).
    return isinstance(expr, relax.Var) and expr in ctx.params and dtype_of(expr) == "float32"


def _bits(dtype: str) -> int:
    return np.iinfo(dtype).bits


def requantize_kernel(in_dtype: str, out_dtype: str) -> str:
    """te_requantize_s8 / _s16 between equal types, te_requantize_s8_s16 / _s16_s8
    / _s32_s8 / _s32_s16 across."""
    if in_dtype == out_dtype:
        return activation_kernel("te_requantize", in_dtype)
    return f"te_requantize_s{_bits(in_dtype)}_s{_bits(out_dtype)}"


def _lower_from_float(ctx, var, src, q):
    return make_kernel_call(f"te_quantize_f32_s{_bits(q.dtype)}", [src], dict(
        size=int(np.prod(shape_of(var))), scale=q.s_out, zero_point=q.zp_out), shape_of(var), q.dtype)


def _lower_requantize(ctx, var, dq_expr, q):
    """quantize(dequantize(x)): QUANTIZE between int8 and int16, or a standalone RELU/RELU6."""
    act_in = ctx.activation_input(dq_expr)
    if act_in is None or (q.float_act is not None and act_in.dtype != q.dtype):
        return None
    size = int(np.prod(shape_of(var)))
    if q.float_act == "RELU6":
        # TFLM's RELU6 clamps in the input's quantization and does not
        # rescale to the output's; being bit-exact means doing the same.
        qmin, qmax = ACTIVATION_RANGE[q.dtype]
        six = min(qmax, tflm_quantize(6.0, act_in.scale, act_in.zero_point))
        return make_kernel_call(requantize_kernel(q.dtype, q.dtype), [act_in.expr], dict(
            size=size, input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
            act_min=max(qmin, act_in.zero_point), act_max=six, _op_type="RELU6"), shape_of(var), q.dtype)
    same = act_in.scale == q.s_out and act_in.zero_point == q.zp_out and act_in.dtype == q.dtype
    if same and q.act == ACTIVATION_RANGE[q.dtype]:
        return act_in.expr
    if q.float_act == "RELU_N1_TO_1":
        # TFLite's RELU_N1_TO_1 divides the scales in float32 (QUANTIZE and RELU in double).
        mult, shift = quantize_multiplier(np.float64(np.float32(act_in.scale) / np.float32(q.s_out)))
    else:
        mult, shift = quantize_multiplier(np.float64(act_in.scale) / np.float64(q.s_out))
    attrs = dict(size=size, input_offset=-act_in.zero_point, output_offset=q.zp_out,
                 multiplier=mult, shift=shift, _op_type=q.float_act or "QUANTIZE")
    return make_kernel_call(requantize_kernel(act_in.dtype, q.dtype), [act_in.expr], q.finish(attrs),
                            shape_of(var), q.dtype)


def _lower_output_dequantize(ctx, var, dq_expr, q):
    """A float output ``dequantize(int8)``: the DEQUANTIZE kernel."""
    dq = ctx.dequantize(dq_expr)
    if dq is None or dtype_of(var) != "float32":
        return None
    src = ctx.int8_value(dq[0])
    if src is None or dq[1].size != 1:
        return None
    return make_kernel_call(f"te_dequantize_s{_bits(dtype_of(dq[0]))}_f32", [src], dict(
        size=int(np.prod(shape_of(var))), scale=float(dq[1][0]), zero_point=int(dq[2][0])),
        shape_of(var), "float32")


LOWERINGS = [
    Lowering("QUANTIZE", "quantize", _lower_from_float, matcher=_is_float_param, tflite={"QUANTIZE": (0,)},
             dtypes=("int8", "int16")),
    Lowering("QUANTIZE", "quantize", _lower_requantize, pattern=dequantize_pattern(),
             tflite={"QUANTIZE": (0,)}, dtypes=("int8", "int16")),
    Lowering("DEQUANTIZE", "output", _lower_output_dequantize, pattern=dequantize_pattern(),
             tflite={"DEQUANTIZE": (0,)}, dtypes=("int8", "int16")),
]
