"""How a lowered integer operator is written in Relax.

A lowered operator is ``R.call_dps_packed("te_<op>_s8", (tensors..., R.str(attrs)))``:
the tensor arguments are activations (Vars) or constants (weights, bias,
requantization multipliers and shifts), and the last argument is a JSON string
of scalar attributes (geometry, offsets, activation range).  The codegen and
the memory planner read operators back with :func:`parse_kernel_call`, so this
module is the one place that knows the encoding.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
import tvm
from tvm import relax

KERNEL_PREFIX = "te_"


def make_kernel_call(kernel: str, tensors: Sequence[relax.Expr], attrs: Dict[str, Any],
                     out_shape: Sequence[int], out_dtype: str) -> relax.Call:
    """Build the Relax call of an integer kernel (ValueError when an integer
    attribute does not fit the kernel ABI's int32)."""
    for key, value in attrs.items():
        for v in (value if isinstance(value, (list, tuple)) else [value]):
            if isinstance(v, (int, np.integer)) and not isinstance(v, bool) and not -(1 << 31) <= int(v) < (1 << 31):
                raise ValueError(f"{kernel} attribute {key}={int(v)} does not fit in int32")
    text = json.dumps(attrs, sort_keys=True, separators=(",", ":"))
    return relax.call_dps_packed(
        kernel, list(tensors) + [tvm.ir.StringImm(text)],
        relax.TensorType([int(d) for d in out_shape], out_dtype),
    )


@dataclasses.dataclass
class KernelCall:
    """A lowered operator read back from Relax."""

    kernel: str
    tensors: List[relax.Expr]
    attrs: Dict[str, Any]


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
    attrs = json.loads(args[-1].value) if args and isinstance(args[-1], tvm.ir.StringImm) else {}
    return KernelCall(str(func.global_symbol), args[:-1], attrs)

