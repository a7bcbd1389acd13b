"""InplaceElementwise: ADD, MUL and QUANTIZE write their output over an input that dies there.

``te_add_s8``/``te_mul_s8`` read element i of both inputs before writing
element i, so when shapes match (no broadcast) the output may overwrite an
input.  ``te_quantize_f32_s8`` writes int8 element i (byte i) after reading
float element i (bytes 4i..4i+3), so its output may start where its input
does: the float input and its int8 copy then share one buffer.  The rewrite picks an input that has no other reader and is not a
model output; when it is the second input the operands are swapped, with
their quantization parameters (both kernels are symmetric in their inputs
once each input carries its own offset and multiplier).
"""
from __future__ import annotations

from typing import Any, Dict, Optional, Tuple

import tvm
from tvm import relax

from .inplace_depthwise import arena_bytes
from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import definitions, function_outputs, rebuild_function, rewrite_lowered, sole_reader, use_counts

_INPLACE = {"te_add_s8": "te_add_inplace_s8", "te_mul_s8": "te_mul_inplace_s8"}
_QUANTIZE, _QUANTIZE_INPLACE = "te_quantize_f32_s8", "te_quantize_inplace_f32_s8"
_SWAP = [("input1_strides", "input2_strides"), ("input1_offset", "input2_offset"),
         ("input1_multiplier", "input2_multiplier"), ("input1_shift", "input2_shift")]


def inplace_elementwise(func: relax.Function, only_if_smaller: bool = True) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with its eligible ADD/MUL/QUANTIZE in place, and the report."""
    defs = definitions(func)
    uses = use_counts(func)
    outputs = set(function_outputs(func))
    replaced = {}
    for var, value in defs.items():
        call = parse_kernel_call(value)
        if call is not None and call.kernel == _QUANTIZE:
            # float -> int8 in place: the int8 tensor takes the start of the float
            # buffer, so the float input and a full int8 copy are never both held.
            src = call.tensors[0]
            if isinstance(src, relax.Var) and sole_reader(src, defs, uses, outputs) \
                    and not call.notes.get("in_offsets"):
                replaced[var] = make_kernel_call(_QUANTIZE_INPLACE, list(call.tensors), dict(call.attrs),
                                                 [int(d) for d in var.ty.shape], "int8", dict(call.notes))
            continue
        if call is None or call.kernel not in _INPLACE:
            continue
        a = dict(call.attrs)
        if 0 in a["input1_strides"] or 0 in a["input2_strides"]:
            continue  # broadcasting: an input is smaller than the output
        tensors = list(call.tensors)
        d = a["dims"]
        dense = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1]
        notes = dict(call.notes)
        offsets = notes.get("in_offsets", [0, 0])
        for k in (0, 1):
            src = tensors[k]
            if parse_kernel_call(defs.get(src)) is None or uses.get(src, 0) != 1 or src in outputs:
                continue
            # Element i of the output may only land where element i of
            # this input was read: the input must be dense and unshifted
            # (a patch's ADD may read a sub-window through strides).
            if a[f"input{k + 1}_strides"] != dense or offsets[k] != 0:
                continue
            if k == 1:
                tensors = tensors[::-1]
                for x, y in _SWAP:
                    a[x], a[y] = a[y], a[x]
                if "in_offsets" in notes:
                    notes["in_offsets"] = notes["in_offsets"][::-1]
            replaced[var] = make_kernel_call(_INPLACE[call.kernel], tensors, a,
                                             [int(d) for d in var.ty.shape], "int8", notes)
            break
    if not replaced:
        return func, {"inplace": 0}
    new = rebuild_function(func, lambda v, x: replaced.get(v, x))
    if only_if_smaller and arena_bytes(new) > arena_bytes(func):
        return func, {"inplace": 0, "reason": "the in-place plan is not smaller"}
    return new, {"inplace": len(replaced)}


@tvm.transform.module_pass(opt_level=0, name="InplaceElementwise")
class InplaceElementwise:
    """Rewrite ADD/MUL (and float QUANTIZE) to write over a dying input, in every lowered
    function (report ``{"inplace": n}``).

    Option ``only_if_smaller`` (``tinyengine.InplaceElementwise.only_if_smaller``,
    default true): keep the rewrite only when the arena does not grow.  A
    constructor argument overrides the PassContext.
    """

    def __init__(self, only_if_smaller: Optional[bool] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("InplaceElementwise", {"only_if_smaller": only_if_smaller})

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("InplaceElementwise", ctx, self.overrides)
        return rewrite_lowered(mod, "InplaceElementwise", lambda f: inplace_elementwise(f, opts["only_if_smaller"]))
