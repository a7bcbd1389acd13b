"""What every operator family of the integer lowering shares.

A family module (convolution.py, fully_connected.py, ...) exposes
``LOWERINGS``: a list of :class:`Lowering` records.  Each record says

* where it anchors: ``"quantize"`` (the float expression a ``quantize`` reads,
  once a fused RELU/clip in front of it is taken off) or ``"int8"`` (the value of
  an int8 binding: data movement and pooling computed directly on int8);
* what it matches: a ``tvm.relax.dpl`` pattern, matched with the function's
  Var -> value map so that it sees through bindings, or a small ``matcher``
  function where dpl cannot express the condition;
* ``check``: a reason the matched operation cannot be lowered, or None;
* ``lower``: the Relax expression (normally a kernel call built with
  ``make_kernel_call``) that replaces the quantized operation, or None when
  the operands are not of the quantized form the kernel needs.

and which TFLite operators it lowers (``tflite``: the import accepts exactly
those).  The driver (driver.py) visits the bindings and applies the records in
order; adding an operator means adding a record to a family module and a
kernel.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional, Tuple, Union

import numpy as np
from tvm import relax
from tvm.relax.dpl import DFPattern, is_op, wildcard

from ...quantization.fixed_point import quantize_multiplier

INT8_MIN, INT8_MAX = -128, 127

#: The integer activation types, with their ranges.
ACTIVATION_RANGE = {"int8": (INT8_MIN, INT8_MAX), "int16": (-32768, 32767)}


def tflm_round(x: np.float32) -> int:
    """TfLiteRound: round half away from zero."""
    x = float(x)
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def tflm_quantize(value: float, scale: float, zero_point: int) -> int:
    """TFLM's Quantize() used for activation ranges: float32 division, then round."""
    return int(zero_point) + tflm_round(np.float32(value) / np.float32(scale))


def dequantize_pattern(data: Optional[DFPattern] = None) -> DFPattern:
    """``R.dequantize(data, scale, zero_point)`` (scale/zp constancy is checked by the lowering)."""
    return is_op("relax.dequantize")(data if data is not None else wildcard(), wildcard(), wildcard())


def op_pattern(name: str) -> DFPattern:
    """A call of ``name`` with any arguments."""
    return is_op(name)(varg_default_wildcard=True)


@dataclasses.dataclass
class Activation:
    """An int8 or int16 activation value: a lowered op output, a function input or a view."""

    expr: relax.Expr
    scale: float
    zero_point: int
    dtype: str = "int8"


@dataclasses.dataclass
class QuantizeContext:
    """The output quantization (and type) of a quantize anchor and the fused activation range."""

    s_out: float
    zp_out: int
    act: Tuple[int, int]
    float_act: Optional[str]
    dtype: str = "int8"

    def finish(self, attrs: dict) -> dict:
        """Attach the activation range and output quantization (read by clip folding)."""
        attrs["act_min"], attrs["act_max"] = self.act
        attrs["_out_scale"], attrs["_out_zp"] = self.s_out, self.zp_out
        return attrs


#: ``Lowering.tflite`` value of an operator whose every input is an activation (CONCATENATION).
ALL_INPUTS: Tuple[int, ...] = ()

# check(ctx, var, expr, q) -> None, a reason, or (expr to report, reason)
CheckResult = Union[None, str, Tuple[relax.Expr, str]]


@dataclasses.dataclass(frozen=True)
class Lowering:
    """One quantized operator form and how it becomes an integer kernel."""

    name: str
    anchor: str                                   # "quantize" or "int8"
    lower: Callable[..., Optional[relax.Expr]]     # (ctx, var, expr, q) -> expression or None
    pattern: Optional[DFPattern] = None           # tvm.relax.dpl pattern of the anchored expression
    matcher: Optional[Callable[..., bool]] = None  # (ctx, expr) -> bool, where dpl cannot say it
    check: Optional[Callable[..., CheckResult]] = None
    # Whether a following int8 clip may narrow the kernel's act_min/act_max.
    fusable: bool = True
    # The TFLite builtin operators this record lowers, each with the indices of
    # its activation inputs (the others are constant weights, bias, shapes or
    # axes; ALL_INPUTS: every input).  The TFLite import accepts exactly the
    # operators some record names here.
    tflite: Dict[str, Tuple[int, ...]] = dataclasses.field(default_factory=dict)
    # The activation types (of the anchored value) it lowers; the import
    # accepts an operator's int16 tensors when some record of it lowers int16.
    dtypes: Tuple[str, ...] = ("int8",)
    # Operators of ``tflite`` that TFLM computes for fewer types than ``dtypes``.
    op_dtypes: Dict[str, Tuple[str, ...]] = dataclasses.field(default_factory=dict)
    # The types of the anchored value when they are not the activations' (a
    # comparison's bool, ARG_MAX's int32): the record lowers values of these.
    outputs: Optional[Tuple[str, ...]] = None

    def output_dtypes(self) -> Tuple[str, ...]:
        """Types of the values the record produces."""
        return self.outputs if self.outputs is not None else self.dtypes

    def matches(self, ctx: Any, expr: relax.Expr) -> bool:
        if self.matcher is not None and not self.matcher(ctx, expr):
            return False
        return self.pattern is None or bool(self.pattern.match(expr, ctx.var2val))


def activation_kernel(base: str, dtype: str) -> str:
    """The kernel symbol of ``base`` (e.g. ``te_conv2d``) for activations of ``dtype``."""
    return f"{base}_s{np.iinfo(dtype).bits}"


def requant_arrays(s_in, w_scales, s_out, n):
    """Per-channel (multiplier, shift) constants of s_in * w_scale / s_out, TFLM-exact."""
    w_scales = np.broadcast_to(np.asarray(w_scales, np.float32), (n,))
    pairs = [quantize_multiplier(np.float64(np.float32(s_in)) * np.float64(ws) / np.float64(s_out)) for ws in w_scales]
    return (relax.const(np.array([p[0] for p in pairs], np.int32)),
            relax.const(np.array([p[1] for p in pairs], np.int32)))
