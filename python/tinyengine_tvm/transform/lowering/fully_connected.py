"""Fully connected family: FULLY_CONNECTED / Gemm / MatMul as ``matmul(x, W)``
with constant int8 weights (per-tensor zero point), optional int32 bias add."""
from __future__ import annotations

import numpy as np
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ..kernel_call import make_kernel_call
from ..relax_utils import shape_of
from .base import Lowering, dequantize_pattern, requant_arrays

# The weights are a dequantize of a constant, possibly seen through a view or a
# permute the importer added: left to ctx.weights(), which folds them.
MATMUL_PATTERN = is_op("relax.matmul")(dequantize_pattern(), wildcard())
BIASED_MATMUL_PATTERN = is_op("relax.add")(MATMUL_PATTERN, wildcard())


def _lower(ctx, var, mm, q, bias_expr=None):
    x = ctx.activation_input(mm.args[0])
    w = ctx.weights(mm.args[1])
    if x is None or w is None:
        return None
    wq, w_scale, w_zp, _ = w
    if wq.ndim != 2 or w_zp.size != 1:
        return None
    filt = np.ascontiguousarray(wq.T)  # matmul sees [in, out]; the kernel wants [out, in]
    out_depth, in_depth = filt.shape
    bias = ctx.bias(bias_expr, out_depth)
    if bias_expr is not None and bias is None:
        return None
    mult, shift = requant_arrays(x.scale, w_scale, q.s_out, out_depth)
    attrs = dict(batch=int(np.prod(shape_of(mm.args[0])[:-1])), input_depth=in_depth,
                 output_depth=out_depth, input_offset=-x.zero_point,
                 filter_offset=-int(w_zp[0]), output_offset=q.zp_out)
    bias_c = relax.const(bias.astype(np.int32)) if bias is not None else relax.const(np.zeros(out_depth, np.int32))
    return make_kernel_call("te_fully_connected_s8", [x.expr, relax.const(filt), bias_c, mult, shift],
                            q.finish(attrs), shape_of(var), "int8")


def _lower_biased(ctx, var, add, q):
    return _lower(ctx, var, ctx.resolve(add.args[0]), q, bias_expr=add.args[1])


LOWERINGS = [
    Lowering("FULLY_CONNECTED", "quantize", _lower_biased, pattern=BIASED_MATMUL_PATTERN,
             tflite={"FULLY_CONNECTED": (0,)}),
    Lowering("FULLY_CONNECTED", "quantize", _lower, pattern=MATMUL_PATTERN, tflite={"FULLY_CONNECTED": (0,)}),
]
