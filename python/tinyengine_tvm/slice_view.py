"""Slices that are views: when a slice's elements are one contiguous run of its input.

A slice of a row-major tensor selects one contiguous byte range exactly when
every axis after the first one it takes more than one element of is taken
whole, and that axis has stride 1 (axes before it take one index each).  Such
a slice needs no copy: its consumers read the input buffer at a byte offset.

In a lowered function a view slice is written as a Relax ``strided_slice``
with unit strides (as reshapes stay Relax reshapes); the kernel graph reads it
back as a view of its input at :func:`view_offset` elements.
"""
from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import tvm
from tvm import relax

SLICE_OP = "relax.strided_slice"


def contiguous_offset(in_shape: Sequence[int], begin: Sequence[int], strides: Sequence[int],
                      out_shape: Sequence[int]) -> Optional[int]:
    """Element offset of the slice in its input when its elements are one contiguous
    run of it, in order; None otherwise (or when the slice is empty or out of bounds)."""
    rank = len(in_shape)
    if not (len(begin) == len(strides) == len(out_shape) == rank) or any(o <= 0 for o in out_shape):
        return None
    for n, b, s, o in zip(in_shape, begin, strides, out_shape):
        if o > 1 and s != 1:
            return None  # strided, reversed or broadcast along an axis it takes several of
        if not (0 <= b and b + o <= n):
            return None
    moving = [d for d, o in enumerate(out_shape) if o > 1]
    if moving and any(out_shape[d] != in_shape[d] for d in range(moving[0] + 1, rank)):
        return None
    inner = np.cumprod([1] + [int(n) for n in in_shape[::-1]])[:rank][::-1]  # elements per step of each axis
    return int(sum(int(b) * int(i) for b, i in zip(begin, inner)))


def view_expr(src: relax.Expr, begin: Sequence[int], out_shape: Sequence[int]) -> relax.Call:
    """The Relax form of a view slice of ``src`` (unit strides, ``out_shape`` from ``begin``)."""
    rank = len(out_shape)
    return relax.op.strided_slice(src, axes=list(range(rank)), begin=[int(b) for b in begin],
                                  end=[int(b) + int(o) for b, o in zip(begin, out_shape)],
                                  strides=[1] * rank, assume_inbound=True)


def view_offset(call: relax.Call) -> Optional[int]:
    """Element offset of a Relax ``strided_slice`` into its input when it is a view, else None."""
    in_shape = [int(d) for d in call.args[0].ty.shape]
    fields = [[int(f.value) for f in arg.fields] for arg in call.args[1:]]
    axes, starts, ends = fields[0], fields[1], fields[2]
    steps = fields[3] if len(fields) > 3 else [1] * len(axes)
    begin, strides, out = [0] * len(in_shape), [1] * len(in_shape), list(in_shape)
    for axis, b, e, s in zip(axes, starts, ends, steps):
        if s != 1 or not 0 <= b <= e:
            return None  # views are only ever written with unit strides and in-range bounds
        begin[axis], strides[axis], out[axis] = b, s, e - b
    if [int(d) for d in call.ty.shape] != out:
        return None
    return contiguous_offset(in_shape, begin, strides, out)


def is_slice_view(expr) -> bool:
    """Whether ``expr`` is a Relax ``strided_slice`` call (the form of a view slice)."""
    return isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op) and expr.op.name == SLICE_OP
