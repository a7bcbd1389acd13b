"""InplaceDepthwise: run depthwise convolutions over their own input buffer.

A depthwise convolution with depth multiplier 1 reads channel c only to
produce channel c, so after copying one input channel to a small scratch
buffer the kernel can write that output channel over the input (see
``te_depthwise_conv2d_inplace_s8``).  Input and output then share one buffer
of max(input, output) bytes plus one channel of scratch, instead of
input + output.  The rewrite applies only where the input dies at the
convolution: it has no other reader and is not a model output.
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Set, Tuple

import numpy as np
import tvm
from tvm import relax

from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import definitions, function_outputs, rebuild_function, rewrite_lowered, use_counts

INPLACE_KERNEL = "te_depthwise_conv2d_inplace_s8"


def _bytes(expr) -> int:
    return int(np.prod([int(d) for d in expr.ty.shape])) * np.dtype(str(expr.ty.dtype)).itemsize


def arena_bytes(func: relax.Function) -> int:
    """Arena the planner gives ``func`` with the kernels' scratch (what the in-place passes compare)."""
    from ..kernel_graph import KernelGraph
    from ..planner import kernel_scratch, plan_arena

    graph = KernelGraph.from_relax(func)
    return plan_arena(graph, kernel_scratch(graph)).arena_bytes


def inplace_depthwise(func: relax.Function, only_if_smaller: bool = True) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with its eligible depthwise convolutions in place, and the report."""
    uses = use_counts(func)
    defs = definitions(func)
    outputs: Set[relax.Var] = set(function_outputs(func))
    replaced: Dict[relax.Var, relax.Expr] = {}
    for var, value in defs.items():
        call = parse_kernel_call(value)
        if call is None or call.kernel != "te_depthwise_conv2d_s8":
            continue
        src = call.tensors[0]
        a = call.attrs
        # The input must be a kernel's own output (not a view of a
        # buffer someone else reads) that nobody reads after this step.
        if (a["depth_multiplier"] != 1 or parse_kernel_call(defs.get(src)) is None
                or uses.get(src, 0) != 1 or src in outputs or _bytes(var) > _bytes(src)):
            continue
        replaced[var] = make_kernel_call(INPLACE_KERNEL, call.tensors, a, [int(d) for d in var.ty.shape], "int8",
                                         call.notes)
    if not replaced:
        return func, {"inplace": 0}
    new = rebuild_function(func, lambda var, value: replaced.get(var, value))
    # In-place kernels trade an output buffer for one channel of scratch;
    # the planner's packing can still come out worse, so keep the better.
    if only_if_smaller:
        before, after = arena_bytes(func), arena_bytes(new)
        if after > before:
            return func, {"inplace": 0, "reason": f"in-place plan {after:,} B > {before:,} B"}
    return new, {"inplace": len(replaced)}


@tvm.transform.module_pass(opt_level=0, name="InplaceDepthwise")
class InplaceDepthwise:
    """Rewrite eligible ``te_depthwise_conv2d_s8`` calls into their in-place variant
    (in every lowered function; report ``{"inplace": n}``).

    Option ``only_if_smaller`` (PassContext key
    ``tinyengine.InplaceDepthwise.only_if_smaller``, default true): keep the
    rewrite only when the planned arena does not grow.  A constructor argument
    overrides the PassContext.
    """

    def __init__(self, only_if_smaller: Optional[bool] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("InplaceDepthwise", {"only_if_smaller": only_if_smaller})

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("InplaceDepthwise", ctx, self.overrides)
        return rewrite_lowered(mod, "InplaceDepthwise", lambda f: inplace_depthwise(f, opts["only_if_smaller"]))
