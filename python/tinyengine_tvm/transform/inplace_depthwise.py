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

from typing import Dict, Set

import numpy as np
import tvm
from tvm import relax

from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import definitions, function_outputs, rebuild_main, use_counts

INPLACE_KERNEL = "te_depthwise_conv2d_inplace_s8"


def _bytes(expr) -> int:
    return int(np.prod([int(d) for d in expr.ty.shape])) * np.dtype(str(expr.ty.dtype)).itemsize


def _arena(mod: tvm.IRModule) -> int:
    from ..codegen.kernel_specs import KERNELS
    from ..kernel_graph import KernelGraph
    from ..planner import plan_arena

    graph = KernelGraph.from_relax(mod["main"])
    return plan_arena(graph, lambda s: KERNELS[graph.steps[s].kernel].scratch(graph.steps[s].attrs)).arena_bytes


@tvm.transform.module_pass(opt_level=0, name="InplaceDepthwise")
class InplaceDepthwise:
    """Rewrite eligible ``te_depthwise_conv2d_s8`` calls into their in-place variant.

    With ``only_if_smaller`` (default) the rewrite is kept only when the
    planned arena does not grow.
    """

    def __init__(self, only_if_smaller: bool = True):
        self.only_if_smaller = bool(only_if_smaller)
        self.report = {"inplace": 0}

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        func = mod["main"]
        uses = use_counts(func)
        defs = definitions(func)
        outputs: Set[relax.Var] = set(function_outputs(func))
        replaced: Dict[relax.Var, relax.Expr] = {}
        for block in func.body.blocks:
            for binding in block.bindings:
                call = parse_kernel_call(binding.value)
                if call is None or call.kernel != "te_depthwise_conv2d_s8":
                    continue
                src = call.tensors[0]
                a = call.attrs
                # The input must be a kernel's own output (not a view of a
                # buffer someone else reads) that nobody reads after this step.
                if (a["depth_multiplier"] != 1 or parse_kernel_call(defs.get(src)) is None
                        or uses.get(src, 0) != 1 or src in outputs or _bytes(binding.var) > _bytes(src)):
                    continue
                replaced[binding.var] = make_kernel_call(
                    INPLACE_KERNEL, call.tensors, a, [int(d) for d in binding.var.ty.shape], "int8")
        if not replaced:
            self.report = {"inplace": 0}
            return mod
        new = tvm.IRModule({"main": rebuild_main(func, lambda var, value: replaced.get(var, value))})
        # In-place kernels trade an output buffer for one channel of scratch;
        # the planner's packing can still come out worse, so keep the better.
        if not self.only_if_smaller:
            self.report = {"inplace": len(replaced)}
            return new
        before, after = _arena(mod), _arena(new)
        if after > before:
            self.report = {"inplace": 0, "reason": f"in-place plan {after:,} B > {before:,} B"}
            return mod
        self.report = {"inplace": len(replaced)}
        return new
