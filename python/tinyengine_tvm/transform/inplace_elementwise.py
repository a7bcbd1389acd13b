"""InplaceElementwise: ADD and MUL write their output over an input that dies there.

``te_add_s8``/``te_mul_s8`` read element i of both inputs before writing
element i, so when shapes match (no broadcast) the output may overwrite an
input.  The rewrite picks an input that has no other reader and is not a
model output; when it is the second input the operands are swapped, with
their quantization parameters (both kernels are symmetric in their inputs
once each input carries its own offset and multiplier).
"""
from __future__ import annotations

import tvm

from .inplace_depthwise import _arena
from .kernel_call import make_kernel_call, parse_kernel_call
from .relax_utils import definitions, function_outputs, rebuild_main, use_counts

_INPLACE = {"te_add_s8": "te_add_inplace_s8", "te_mul_s8": "te_mul_inplace_s8"}
_SWAP = [("input1_strides", "input2_strides"), ("input1_offset", "input2_offset"),
         ("input1_multiplier", "input2_multiplier"), ("input1_shift", "input2_shift")]


@tvm.transform.module_pass(opt_level=0, name="InplaceElementwise")
class InplaceElementwise:
    """Rewrite ADD/MUL to write over a dying, same-shape input (kept only if the arena shrinks)."""

    def __init__(self, only_if_smaller: bool = True):
        self.only_if_smaller = bool(only_if_smaller)
        self.report = {"inplace": 0}

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        func = mod["main"]
        defs = definitions(func)
        uses = use_counts(func)
        outputs = set(function_outputs(func))
        replaced = {}
        for var, value in defs.items():
            call = parse_kernel_call(value)
            if call is None or call.kernel not in _INPLACE:
                continue
            a = dict(call.attrs)
            if 0 in a["input1_strides"] or 0 in a["input2_strides"]:
                continue  # broadcasting: an input is smaller than the output
            tensors = list(call.tensors)
            d = a["dims"]
            dense = [d[1] * d[2] * d[3], d[2] * d[3], d[3], 1]
            offsets = a.get("_in_offsets", [0, 0])
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
                    if "_in_offsets" in a:
                        a["_in_offsets"] = a["_in_offsets"][::-1]
                replaced[var] = make_kernel_call(_INPLACE[call.kernel], tensors, a,
                                                 [int(d) for d in var.ty.shape], "int8")
                break
        if not replaced:
            self.report = {"inplace": 0}
            return mod
        new = tvm.IRModule({"main": rebuild_main(func, lambda v, x: replaced.get(v, x))})
        if self.only_if_smaller and _arena(new) > _arena(mod):
            self.report = {"inplace": 0, "reason": "the in-place plan is not smaller"}
            return mod
        self.report = {"inplace": len(replaced)}
        return new
