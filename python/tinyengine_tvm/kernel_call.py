"""How a lowered integer operator is written in Relax.

A lowered operator is ``R.call_dps_packed("te_<op>_s8", (tensors..., R.str(params)[, R.str(notes)]))``:
the tensor arguments are activations (Vars) or constants (weights, bias,
requantization multipliers and shifts), then a JSON string of the kernel's
parameters (geometry, offsets, activation range) and, when there are any, a
JSON string of the compiler's notes on the call (operator type, operand
offsets into their buffers, why a kernel was chosen).  The codegen and
the memory planner read operators back with :func:`parse_kernel_call`, so this
module is the one place that knows the encoding.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tvm
from tvm import relax

KERNEL_PREFIX = "te_"


def make_kernel_call(kernel: str, tensors: Sequence[relax.Expr], attrs: Dict[str, Any],
                     out_shape: Sequence[int], out_dtype: str,
                     notes: Optional[Dict[str, Any]] = None,
                   extra_outputs: Sequence[Tuple[Sequence[int], str]] = ()) -> relax.Call:
    """Build the Relax call of an integer kernel.

    ``attrs`` are the kernel's parameters (its C struct fields and geometry).
    Keys starting with ``_`` and ``notes`` are the compiler's annotations of the
    call (operator type, operand offsets, why a kernel was chosen); they are
    encoded apart from the parameters, so the two never mix on the way back
    (:func:`parse_kernel_call`).  ValueError when an integer parameter does not
    fit the kernel ABI's int32.  ``extra_outputs`` ((shape, dtype) each) make a kernel with
    several outputs (written in that order after the first): the call's value is then a tuple.
    """
    params = {k: v for k, v in attrs.items() if not k.startswith("_")}
    merged = {k[1:]: v for k, v in attrs.items() if k.startswith("_")}
    merged.update(notes or {})
    for key, value in params.items():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and not -(1 << 31) <= int(v) < (1 << 31):
                raise ValueError(f"{kernel} attribute {key}={int(v)} does not fit in int32")
    strings = [tvm.ir.StringImm(json.dumps(params, sort_keys=True, separators=(",", ":")))]
    if merged:
        strings.append(tvm.ir.StringImm(json.dumps(merged, sort_keys=True, separators=(",", ":"))))
    out = [relax.TensorType([int(d) for d in shape], dtype)
           for shape, dtype in [(out_shape, out_dtype), *extra_outputs]]
    return relax.call_dps_packed(kernel, list(tensors) + strings, out if extra_outputs else out[0])


@dataclasses.dataclass
class KernelCall:
    """A lowered operator read back from Relax."""

    kernel: str
    tensors: List[relax.Expr]
    attrs: Dict[str, Any]
    notes: Dict[str, Any] = dataclasses.field(default_factory=dict)


def parse_kernel_call(expr: relax.Expr) -> Optional[KernelCall]:
    """Return the KernelCall an expression encodes, or None if it is not one."""
    if not isinstance(expr, relax.Call) or not isinstance(expr.op, tvm.ir.Op):
        return None
    if expr.op.name != "relax.call_dps_packed":
        return None
    func = expr.args[0]
    if not isinstance(func, relax.ExternFunc) or not str(func.global_symbol).startswith(KERNEL_PREFIX):
        return None
    args = list(expr.args[1].fields)
    strings = 0
    while strings < 2 and len(args) > strings and isinstance(args[-1 - strings], tvm.ir.StringImm):
        strings += 1  # tensors are never strings: the parameters, then the notes if any
    texts = [json.loads(a.value) for a in args[len(args) - strings:]]
    attrs, notes = (texts + [{}, {}])[:2] if strings else ({}, {})
    return KernelCall(str(func.global_symbol), args[:len(args) - strings], attrs, notes)

