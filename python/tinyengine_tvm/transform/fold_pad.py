"""FoldPadIntoConv: absorb an explicit PAD into the following convolution.

Zero-point padding contributes nothing to a quantized convolution's
accumulator (``input + input_offset == 0`` there), which is exactly how the
kernels treat reads outside the input.  A PAD of the spatial dims whose value
is the input zero point, read only by a convolution, can therefore be dropped:
the convolution reads the unpadded tensor with larger ``pad_top``/``pad_left``
(the bottom/right padding is implied by the output size).  The padded tensor,
often the largest of an MCUNet-style model, is never materialised.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import tvm
from tvm import relax

from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import definitions, function_outputs, rebuild_function, rewrite_lowered, use_counts

_CONV_KERNELS = ("te_conv2d_s8", "te_depthwise_conv2d_s8")


def fold_pads(func: relax.Function) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with its foldable PADs folded, and the report."""
    defs = definitions(func)
    uses = use_counts(func)
    outputs = set(function_outputs(func))
    replaced: Dict[relax.Var, relax.Expr] = {}
    for var, value in defs.items():
        call = parse_kernel_call(value)
        if call is None or call.kernel not in _CONV_KERNELS:
            continue
        src = call.tensors[0]
        pad = parse_kernel_call(defs.get(src)) if isinstance(src, relax.Var) else None
        if pad is None or pad.kernel != "te_pad_s8" or uses.get(src, 0) != 1 or src in outputs:
            continue
        p, a = pad.attrs, dict(call.attrs)
        spatial_only = p["before"][0] == p["after"][0] == 0 and p["before"][3] == p["after"][3] == 0
        if not spatial_only or p["pad_value"] != -a["input_offset"] or min(p["before"] + p["after"]) < 0:
            continue
        a["input_h"] = p["input_dims"][1]
        a["input_w"] = p["input_dims"][2]
        a["pad_top"] += p["before"][1]
        a["pad_left"] += p["before"][2]
        replaced[var] = make_kernel_call(call.kernel, [pad.tensors[0]] + call.tensors[1:], a,
                                         [int(d) for d in var.ty.shape], "int8", call.notes)
    if not replaced:
        return func, {"folded": 0}
    new = rebuild_function(func, lambda var, value: replaced.get(var, value))
    # The PADs are now dead.
    return relax.analysis.remove_all_unused(new), {"folded": len(replaced)}


@tvm.transform.module_pass(opt_level=0, name="FoldPadIntoConv")
class FoldPadIntoConv:
    """Fold spatial zero-point PADs into the padding of the convolution reading them
    (in every lowered function; report ``{"folded": n}``)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        return rewrite_lowered(mod, "FoldPadIntoConv", fold_pads)
