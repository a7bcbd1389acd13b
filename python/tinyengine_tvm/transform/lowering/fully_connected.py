"""Fully connected family: FULLY_CONNECTED / Gemm / MatMul as ``matmul(x, W)``
with constant int8 weights (per-tensor zero point), optional bias add (int32;
int64 for int16 activations, or int32 as TFLM also takes);
and BATCH_MATMUL, ``matmul`` of two int8 activations or two int16 ones (int64
sums, as TFLM's 16x8 BATCH_MATMUL)."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import op_name, shape_of
from .base import Lowering, activation_kernel, dequantize_pattern, requant_arrays

# The weights are a dequantize of a constant, possibly seen through a view or a
# permute the importer added: left to ctx.weights(), which folds them.
MATMUL_PATTERN = is_op("relax.matmul")(dequantize_pattern(), wildcard())
BIASED_MATMUL_PATTERN = is_op("relax.add")(MATMUL_PATTERN, wildcard())


def _lower(ctx, var, mm, q, bias_expr=None):
    x = ctx.activation_input(mm.args[0])
    w = ctx.weights(mm.args[1])
    if x is None or w is None or x.dtype != q.dtype:
        return None
    wq, w_scale, w_zp, _ = w
    if wq.ndim != 2 or w_zp.size != 1:
        return None
    filt = np.ascontiguousarray(wq.T)  # matmul sees [in, out]; the kernel wants [out, in]
    out_depth, in_depth = filt.shape
    bias = ctx.bias(bias_expr, out_depth)
    if bias_expr is not None and bias is None:
        return None
    if w_scale.size == 1:
        # TFLM's per-tensor multiplier rounds input_scale * weight_scale to float first.
        product = np.float64(np.float32(x.scale) * np.float32(w_scale[0]))
        m, sh = quantize_multiplier(product / np.float64(q.s_out))
        mult = relax.const(np.full(out_depth, m, np.int32))
        shift = relax.const(np.full(out_depth, sh, np.int32))
    else:
        mult, shift = requant_arrays(x.scale, w_scale, q.s_out, out_depth)
    attrs = dict(batch=int(np.prod(shape_of(mm.args[0])[:-1])), input_depth=in_depth,
                 output_depth=out_depth, input_offset=-x.zero_point,
                 filter_offset=-int(w_zp[0]), output_offset=q.zp_out)
    bias_type = np.int64 if x.dtype == "int16" else np.int32
    kernel = activation_kernel("te_fully_connected", x.dtype)
    if x.dtype == "int16" and bias is not None and bias.dtype == np.int32:
        bias_type, kernel = np.int32, "te_fully_connected_s16_b32"  # TFLM sums in the bias's type
    # relax.const narrows int64 to int32 unless told the type
    bias_c = relax.const(bias.astype(bias_type) if bias is not None else np.zeros(out_depth, bias_type),
                         np.dtype(bias_type).name)
    return make_kernel_call(kernel,
                            [x.expr, relax.const(filt), bias_c, mult, shift], q.finish(attrs), shape_of(var), q.dtype)


# ------------------------------------------------------------ BATCH_MATMUL
def _operand(ctx, expr):
    """(activation, transposed?) of a matmul operand: dequantize(x) or its last-two-axes transpose."""
    e = ctx.resolve(expr)
    if op_name(e) == "relax.permute_dims":
        rank = len(shape_of(e))
        axes = [int(a) for a in e.attrs.axes] if e.attrs.axes is not None else None
        if axes != list(range(rank - 2)) + [rank - 1, rank - 2]:
            return None, False
        return ctx.activation_input(e.args[0]), True
    return ctx.activation_input(expr), False


def _two_activations(ctx, mm):
    """A matmul whose right operand is no constant (constant weights are FULLY_CONNECTED's)."""
    if op_name(mm) != "relax.matmul":
        return False
    rhs = ctx.resolve(mm.args[1])
    if op_name(rhs) == "relax.permute_dims":
        return ctx.weights(rhs.args[0]) is None
    return ctx.weights(mm.args[1]) is None


def _strides(shape):
    return [int(np.prod(shape[i + 1:])) for i in range(len(shape))]


def _batch_matmul_rescale(a, b, q):
    """lhs_scale * rhs_scale / out_scale in double from the float32 scales (the
    TFLM this project checks against multiplies the scales in double: a float
    product changes the 16-bit multiplier of int16 layers)."""
    return float(np.float32(a.scale)) * float(np.float32(b.scale)) / float(np.float32(q.s_out))


def _lower_batch_matmul(ctx, var, mm, q):
    (a, adj_a), (b, adj_b) = _operand(ctx, mm.args[0]), _operand(ctx, mm.args[1])
    if a is None or b is None or a.dtype != q.dtype or b.dtype != q.dtype:
        return None
    a_shape = shape_of(ctx.resolve(mm.args[0]).args[0]) if adj_a else shape_of(mm.args[0])
    b_shape = shape_of(ctx.resolve(mm.args[1]).args[0]) if adj_b else shape_of(mm.args[1])
    out = shape_of(var)
    rows, cols = out[-2], out[-1]
    depth = a_shape[-2] if adj_a else a_shape[-1]
    batch = out[:-2]
    if len(batch) > 4:
        return None
    sa, sb = _strides(a_shape), _strides(b_shape)

    def batch_strides(shape, strides):
        lead = len(batch) - (len(shape) - 2)
        return [0 if i < lead or shape[i - lead] == 1 and batch[i] != 1 else strides[i - lead]
                for i in range(len(batch))]

    pad = 4 - len(batch)
    mult, shift = quantize_multiplier(_batch_matmul_rescale(a, b, q))
    attrs = dict(
        batches=int(np.prod(batch)), batch_dims=[1] * pad + batch,
        lhs_batch_strides=[0] * pad + batch_strides(a_shape, sa),
        rhs_batch_strides=[0] * pad + batch_strides(b_shape, sb),
        rows=rows, cols=cols, depth=depth,
        lhs_row_stride=1 if adj_a else a_shape[-1], lhs_depth_stride=a_shape[-1] if adj_a else 1,
        rhs_depth_stride=1 if adj_b else b_shape[-1], rhs_col_stride=b_shape[-1] if adj_b else 1,
        lhs_offset=-a.zero_point, rhs_offset=-b.zero_point, output_offset=q.zp_out,
        output_multiplier=mult, output_shift=shift)
    return make_kernel_call(activation_kernel("te_batch_matmul", q.dtype), [a.expr, b.expr], attrs, out, q.dtype)


def _check_batch_matmul(ctx, var, mm, q):
    """The 64-bit requantization of the int16 form shifts right by 15 - shift: shift must stay below 15."""
    if q is None or q.dtype != "int16":
        return None
    a, b = _operand(ctx, mm.args[0])[0], _operand(ctx, mm.args[1])[0]
    if a is None or b is None:
        return None
    real = _batch_matmul_rescale(a, b, q)
    if quantize_multiplier(real)[1] > 14:
        return f"int16 rescale {real:g} needs a left shift above 14, which TFLite's 64-bit requantization cannot do"
    return None


def _lower_biased(ctx, var, add, q):
    return _lower(ctx, var, ctx.resolve(add.args[0]), q, bias_expr=add.args[1])


LOWERINGS = [
    Lowering("BATCH_MATMUL", "quantize", _lower_batch_matmul, pattern=is_op("relax.matmul")(wildcard(), wildcard()),
             matcher=_two_activations, check=_check_batch_matmul, fusable=False, tflite={"BATCH_MATMUL": (0, 1)},
             dtypes=("int8", "int16")),
    Lowering("FULLY_CONNECTED", "quantize", _lower_biased, pattern=BIASED_MATMUL_PATTERN,
             tflite={"FULLY_CONNECTED": (0,)}, dtypes=("int8", "int16")),
    Lowering("FULLY_CONNECTED", "quantize", _lower, pattern=MATMUL_PATTERN, tflite={"FULLY_CONNECTED": (0,)},
             dtypes=("int8", "int16")),
]
