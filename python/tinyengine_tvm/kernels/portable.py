"""The portable kernels of src/kernels/*.cc: the reference and the fallback on every target.

Every function of tinyengine_kernels.h tagged ``@op`` is a kernel; its
KernelSpec (struct, arguments, source, MACs, scratch, in place) is derived
from its prototype and tags, so a new portable kernel needs no Python here.
:data:`VARIANTS` are the compiler's other ways of calling those functions.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List

from ..errors import TinyEngineError
from .abi import FUNCTIONS, SOURCES
from .header import CFunction, formula
from .spec import KernelSpec


def _args(name: str, fn: CFunction) -> List[str]:
    """The KernelSpec argument words of a prototype, by parameter name (see the header's tags)."""
    args, n_in = [], 0
    for i, (ctype, pname) in enumerate(fn.params):
        if i == 0:
            if pname != "p" or not ctype.endswith("_params*"):
                raise TinyEngineError(f"tinyengine_kernels.h: {name} must take `const te_*_params* p` first")
            args.append("p")
        elif pname in ("output", "scratch", "inputs", "state"):
            args.append("out" if pname == "output" else pname)
        elif pname == "buffer":
            args.append("inout")
            n_in += 1
        else:
            args.append(f"in{n_in}")
            n_in += 1
    return args


def _derived(name: str, fn: CFunction) -> KernelSpec:
    struct = fn.params[0][0].replace("const ", "").rstrip("*") if fn.params else None
    size_fn = FUNCTIONS.get(f"{name}_get_buffer_size")
    state_fn = FUNCTIONS.get(f"{name}_get_state_size")
    for fn_name, f in ((f"{name}_get_buffer_size", size_fn), (f"{name}_get_state_size", state_fn)):
        if f is not None and "size" not in f.tags:
            raise TinyEngineError(f"tinyengine_kernels.h: {fn_name} needs an @size tag")
    if name not in SOURCES:
        raise TinyEngineError(f"tinyengine_kernels.h: {name} is declared but no kernels/*.cc defines it")
    args = _args(name, fn)
    costs = {}
    if "macs" in fn.tags:
        costs["macs"] = formula(fn.tags["macs"])
    if size_fn is not None:
        costs["scratch"] = formula(size_fn.tags["size"])
    if state_fn is not None:
        costs["state"] = formula(state_fn.tags["size"])
    return KernelSpec(fn.tags["op"].split()[0], SOURCES[name], args, struct, inplace="inout" in args, **costs)


#: Every ``@op`` kernel of the header.
TAGGED: Dict[str, KernelSpec] = {name: _derived(name, fn) for name, fn in FUNCTIONS.items()
                                 if "op" in fn.tags and not name.startswith("te_arm_")}


def _variant(function: str, args: List[str], **changes) -> KernelSpec:
    return dataclasses.replace(TAGGED[function], args=args, function=function, **changes)


#: Other calls of the tagged functions.  The in-place ADD/MUL/QUANTIZE write over input 0,
#: which dies there (transform.inplace_elementwise).  te_buffer, te_crop_s8 and
#: te_paste_s8 are patch-based execution's (transform.patch_inference): the stage
#: output buffer is declared once, patches are cut from the input and pasted in.
VARIANTS: Dict[str, KernelSpec] = {
    "te_add_inplace_s8": _variant("te_add_s8", ["p", "in0", "in1", "inout"], inplace=True),
    "te_mul_inplace_s8": _variant("te_mul_s8", ["p", "in0", "in1", "inout"], inplace=True),
    # int8 output over the start of the float input (see te_quantize_f32_s8)
    "te_quantize_inplace_f32_s8": _variant("te_quantize_f32_s8", ["p", "inout", "inout"], inplace=True),
    "te_buffer": KernelSpec("BUFFER", SOURCES["te_copy_2d_s8"], [], function=""),
    "te_crop_s8": KernelSpec("CROP", SOURCES["te_copy_2d_s8"], ["p", "in0", "out"], "te_copy_2d_params",
                             function="te_copy_2d_s8", field_attrs={"dst_stride": "row_bytes"}),
    # A constant output's bytes copied into the output buffer.
    "te_copy_s8": KernelSpec("COPY", SOURCES["te_copy_2d_s8"], ["p", "in0", "out"], "te_copy_2d_params",
                             function="te_copy_2d_s8",
                             field_attrs={"src_stride": "row_bytes", "dst_stride": "row_bytes"}),
    "te_paste_s8": KernelSpec("PASTE", SOURCES["te_copy_2d_s8"], ["p", "in1", "inout"], "te_copy_2d_params",
                              function="te_copy_2d_s8", inplace=True, partial_write=True,
                              field_attrs={"src_stride": "row_bytes"}),
}

PORTABLE: Dict[str, KernelSpec] = {**TAGGED, **VARIANTS}
