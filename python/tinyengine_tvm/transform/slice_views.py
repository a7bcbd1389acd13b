"""SliceViews: a slice whose elements are one contiguous range of its input becomes a view.

SLICE, STRIDED_SLICE with unit strides, and the parts of SPLIT, SPLIT_V and
UNPACK lower to ``te_strided_slice`` copies.  When the selected region is one
contiguous byte range of the input (every axis after the first sliced one is
taken whole, see :mod:`tinyengine_tvm.slice_view`), the copy is replaced by a
Relax ``strided_slice`` that the kernel graph reads as a view: no kernel call,
the consumers read the input buffer at a byte offset, and the planner keeps
the input alive as long as any view of it is read.

The pass runs last in the pipeline, on the final schedule, so the arena it
compares is the one the planner will place; after MemoryAwareSchedule it
orders the steps again for the views' lifetimes when that plans smaller.  A copy is kept when the slice is
a model output whose input is (a view of) a model input or another output
(the caller expects each output in a buffer of its own), and when an in-place
kernel writes over the copy (as a view, it would write over its input).  A
view can make the arena larger (a small slice read late keeps its whole input
alive), so with ``only_if_smaller`` (default) the views are kept only as far
as the arena does not grow.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import tvm
from tvm import relax

from ..kernels import inplace_kernels
from ..slice_view import contiguous_offset, is_slice_view, view_expr
from .inplace_depthwise import arena_bytes
from .kernel_call import parse_kernel_call
from .memory_schedule import schedule_function
from .relax_utils import (VIEW_OPS, definitions, function_outputs, op_name, pass_reports, rebuild_function,
                          rewrite_lowered)

_SLICE_KERNELS = ("te_strided_slice_s8", "te_strided_slice_s16")
_GREEDY_TRIALS = 16


def _owner_chain(var: relax.Expr, defs: Dict[relax.Var, relax.Expr],
                 views: Dict[relax.Var, relax.Call]) -> List[relax.Expr]:
    """``var`` and the values whose buffer it shares, through aliases, reshapes and
    slice views (``views``: the copies being made views); the last one owns the memory."""
    chain = [var]
    while isinstance(var, relax.Var):
        value = views.get(var, defs.get(var))
        if isinstance(value, relax.Var):
            var = value
        elif op_name(value) in VIEW_OPS or is_slice_view(value):
            var = value.args[0]
        else:
            break
        chain.append(var)
    return chain


def _drop_caller_aliases(func: relax.Function, defs: Dict[relax.Var, relax.Expr],
                         views: Dict[relax.Var, relax.Call]) -> int:
    """Remove from ``views`` those that would put a model output in the memory of a
    model input or of another output (the caller expects a buffer of its own); how many."""
    outputs = []
    for o in function_outputs(func):
        while isinstance(defs.get(o), relax.Var):  # through aliases (gv = lv)
            o = defs[o]
        if not isinstance(defs.get(o), tvm.ir.Tuple) and o not in outputs:
            outputs.append(o)
    out_set, params = set(outputs), set(func.params)
    dropped = 0
    while True:
        chains = [_owner_chain(o, defs, views) for o in outputs]
        plain_owners = {c[-1] for c in chains if not any(v in views for v in c)}
        clash = next((c for c in chains if any(v in views for v in c) and (
            c[-1] in params or c[-1] in plain_owners or any(v in out_set for v in c[1:]))), None)
        if clash is None:
            return dropped
        for v in clash:
            if v in views:
                del views[v]
                dropped += 1


def _view_of(var: relax.Var, value: relax.Expr) -> Optional[relax.Call]:
    """The view replacing the slice copy ``value``, or None when it is not contiguous."""
    call = parse_kernel_call(value)
    if call is None or call.kernel not in _SLICE_KERNELS or not isinstance(call.tensors[0], relax.Var):
        return None
    src = call.tensors[0]
    rank = int(call.attrs["rank"])
    in_shape = [int(d) for d in src.ty.shape]
    out_shape = [int(d) for d in var.ty.shape]
    if len(in_shape) != rank or len(out_shape) != rank:
        return None  # e.g. a broadcast from a lower rank
    begin, strides = call.attrs["begin"][:rank], call.attrs["strides"][:rank]
    if contiguous_offset(in_shape, begin, strides, out_shape) is None:
        return None
    return view_expr(src, begin, out_shape)


def _ordered(func: relax.Function, reschedule: bool) -> relax.Function:
    """``func``, or its memory-aware order when ``reschedule`` and that plans smaller."""
    if not reschedule:
        return func
    other = schedule_function(func)[0]
    return other if arena_bytes(other) < arena_bytes(func) else func


def slice_views(func: relax.Function, only_if_smaller: bool = True) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with its contiguous slices as views, and the report."""
    defs = definitions(func)
    overwritten = set()  # values an in-place kernel writes over (its first operand, and what that views)
    inplace = inplace_kernels()
    for value in defs.values():
        call = parse_kernel_call(value)
        if call is not None and call.kernel in inplace and isinstance(call.tensors[0], relax.Var):
            overwritten.update(_owner_chain(call.tensors[0], defs, {}))  # through reshapes
    views: Dict[relax.Var, relax.Call] = {}
    for var, value in defs.items():
        view = _view_of(var, value)
        if view is not None and var not in overwritten:
            views[var] = view
    kept_for_caller = _drop_caller_aliases(func, defs, views)
    report: Dict[str, Any] = {"views": 0}
    if kept_for_caller:
        report["copies_for_outputs"] = kept_for_caller
    if not views:
        return func, report
    # A view changes lifetimes: after MemoryAwareSchedule, order the steps again for them.
    reschedule = any(r.get("name") == "MemoryAwareSchedule" for r in pass_reports(func))
    new = _ordered(rebuild_function(func, lambda v, x: views.get(v, x)), reschedule)
    if only_if_smaller:
        base = arena_bytes(func)
        if arena_bytes(new) > base:
            # Greedy, in program order: keep each view that does not grow the arena
            # (each trial plans and schedules the function, so only the first few).
            kept: Dict[relax.Var, relax.Call] = {}
            for var, view in list(views.items())[:_GREEDY_TRIALS]:
                trial = _ordered(rebuild_function(func, lambda v, x: {**kept, var: view}.get(v, x)), reschedule)
                size = arena_bytes(trial)
                if size <= base:
                    kept[var], base, new = view, size, trial
            if not kept:
                return func, dict(report, reason="every view makes the arena larger")
            report["copies_kept"] = len(views) - len(kept)
            views = kept
    report["views"] = len(views)
    return new, report


@tvm.transform.module_pass(opt_level=0, name="SliceViews")
class SliceViews:
    """Turn contiguous slices (SLICE, STRIDED_SLICE, SPLIT, SPLIT_V, UNPACK parts) into
    views of their input, in every lowered function (report ``{"views": n}``).

    Option ``only_if_smaller`` (``tinyengine.SliceViews.only_if_smaller``,
    default true): keep views only as far as the arena does not grow.  A
    constructor argument overrides the PassContext.
    """

    def __init__(self, only_if_smaller: Optional[bool] = None):
        from .pass_options import check_overrides

        self.overrides = check_overrides("SliceViews", {"only_if_smaller": only_if_smaller})

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        from .pass_options import pass_options

        opts = pass_options("SliceViews", ctx, self.overrides)
        return rewrite_lowered(mod, "SliceViews", lambda f: slice_views(f, opts["only_if_smaller"]))
