"""Small Relax helpers shared by the passes: reading expressions (op name,
shape, dtype, definitions, constant folding of constant-only expressions),
reading and rebuilding lowered functions, applying a rewrite to every lowered
function of a module, and the per-function pass reports."""
from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np
import tvm
from tvm import relax

from ..slice_view import is_slice_view
from .kernel_call import parse_kernel_call

# Function attribute holding one report dict per pass run on the function, in run order.
REPORTS_ATTR = "tinyengine.pass_reports"


# Ops that only change the shape of a tensor (no data movement in row-major order).
VIEW_OPS = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


def op_name(expr) -> Optional[str]:
    """Name of the Op an expression calls (``"relax.add"``), or None."""
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


def shape_of(expr) -> List[int]:
    """Static shape of a tensor-typed expression."""
    return [int(d) for d in expr.ty.shape]


def dtype_of(expr) -> str:
    """Dtype of a tensor-typed expression."""
    return str(expr.ty.dtype)


def resolve(expr, defs: Dict[relax.Var, relax.Expr]):
    """Follow Var bindings (``defs``: Var -> value) to the defining expression."""
    while isinstance(expr, relax.Var) and expr in defs:
        expr = defs[expr]
    return expr


def const_value(expr, defs: Dict[relax.Var, relax.Expr], *, views: bool = True,
                clip_bounds: bool = False) -> Optional[np.ndarray]:
    """Value of an expression computed only from constants, or None.

    Folds constants seen through bindings; with ``views``, also permute_dims and
    the VIEW_OPS of constants (weights the importer transposed or reshaped); with
    ``clip_bounds``, ONNX Clip bounds ``where(isnan(c), inf, c)`` read as ``c``.
    """
    e = resolve(expr, defs)
    if isinstance(e, tvm.ir.Constant):
        return e.value.numpy()
    name = op_name(e)
    if clip_bounds and name == "relax.where":
        return const_value(e.args[2], defs, views=views, clip_bounds=clip_bounds)
    if views and name == "relax.permute_dims":
        v = const_value(e.args[0], defs, views=views, clip_bounds=clip_bounds)
        if v is None:
            return None
        axes = [int(a) for a in e.attrs.axes] if e.attrs.axes is not None else None
        return np.transpose(v, axes)
    if views and name in VIEW_OPS:
        v = const_value(e.args[0], defs, views=views, clip_bounds=clip_bounds)
        return None if v is None else v.reshape(shape_of(e))
    return None


def bindings(func: relax.Function) -> List[relax.Binding]:
    """All bindings of ``func``'s body, in order."""
    return [b for block in func.body.blocks for b in block.bindings]


def definitions(func: relax.Function) -> Dict[relax.Var, relax.Expr]:
    """Var -> bound value."""
    return {b.var: b.value for b in bindings(func)}


def use_counts(func: relax.Function) -> Dict[relax.Var, int]:
    """How many bindings (and the return value) read each Var."""
    uses: Dict[relax.Var, int] = {}
    for b in bindings(func):
        for v in relax.analysis.free_vars(b.value):
            uses[v] = uses.get(v, 0) + 1
    for v in relax.analysis.free_vars(func.body.body):
        uses[v] = uses.get(v, 0) + 1
    return uses


def function_outputs(func: relax.Function) -> List[relax.Var]:
    """The Vars the function returns (through a Tuple or a plain alias)."""
    defs = definitions(func)
    ret = func.body.body
    seen = []
    stack = [ret]
    while stack:
        e = stack.pop()
        if isinstance(e, tvm.ir.Tuple):
            stack.extend(e.fields)
        elif isinstance(e, relax.Var):
            seen.append(e)
            v = defs.get(e)
            if isinstance(v, (relax.Var, tvm.ir.Tuple)):
                stack.append(v)
    return seen


def sole_reader(var: relax.Var, defs: Dict[relax.Var, relax.Expr], uses: Dict[relax.Var, int],
                outputs) -> bool:
    """Whether the one reader of ``var`` may overwrite its memory: ``var`` and every
    value it is a view of (reshape, slice view, alias) have that one reader and
    none is a model output."""
    while True:
        if uses.get(var, 0) != 1 or var in outputs:
            return False
        value = defs.get(var)
        if isinstance(value, relax.Var):
            var = value
        elif op_name(value) in VIEW_OPS or is_slice_view(value):
            if not isinstance(value.args[0], relax.Var):
                return False
            var = value.args[0]
        else:
            return True


def rebuild_function(func: relax.Function, replace: Callable[[relax.Var, relax.Expr], relax.Expr],
                     order: Optional[Sequence[relax.Binding]] = None) -> relax.Function:
    """Re-emit ``func``'s bindings (optionally in another order), each value passed
    through ``replace(var, value)``; Vars keep their identity where the type allows,
    attrs (global symbol included, or its absence) are kept."""
    params = list(func.params)
    order = list(order) if order is not None else bindings(func)
    # Only the returned Var(s) leave the dataflow block.
    out_vars = set(relax.analysis.free_vars(func.body.body))
    bb = relax.BlockBuilder()
    # private=True: the builder would otherwise add a global symbol; the original attrs say.
    with bb.function("f", params, attrs=function_attrs(func), pure=bool(func.is_pure), private=True):
        with bb.dataflow():
            remap: Dict[relax.Var, relax.Expr] = {}
            for b in order:
                value = substitute(replace(b.var, b.value), remap)
                if b.var in out_vars:
                    new = bb.emit_output(value, name_hint=b.var.name)
                else:
                    new = bb.emit(value, name_hint=b.var.name)
                remap[b.var] = new
            ret = substitute(func.body.body, remap)
        bb.emit_func_output(ret)
    return bb.get()["f"]


def function_attrs(func: relax.Function) -> Dict[str, Any]:
    """``func``'s attrs as a dict."""
    return {str(k): v for k, v in func.attrs.items()} if func.attrs is not None else {}


def is_lowered(func) -> bool:
    """Whether ``func`` is a Relax function holding lowered kernel calls (what the memory passes rewrite)."""
    if not isinstance(func, relax.Function) or not isinstance(func.body, relax.SeqExpr):
        return False
    return any(parse_kernel_call(b.value) is not None for b in bindings(func))


def lowered_functions(mod: tvm.IRModule) -> List[Tuple[tvm.ir.GlobalVar, relax.Function]]:
    """(GlobalVar, function) of every lowered function of ``mod``, by name."""
    return sorted(((gv, f) for gv, f in mod.functions_items() if is_lowered(f)), key=lambda x: x[0].name_hint)


def rewrite_lowered(mod: tvm.IRModule, pass_name: str,
                    rewrite: Callable[[relax.Function], Tuple[relax.Function, Dict[str, Any]]]) -> tvm.IRModule:
    """Apply ``rewrite(func) -> (new func, report)`` to every lowered function of
    ``mod``; each gets ``{"name": pass_name, **report}`` appended to its reports.

    Other functions, module attrs and global infos are kept as they are: the
    result is a copy, the input module is not changed.
    """
    out = mod.clone()
    for gv, func in lowered_functions(mod):
        new, report = rewrite(func)
        out.update_func(gv, add_report(new, {"name": pass_name, **report}))
    return out


def add_report(func: relax.Function, report: Dict[str, Any]) -> relax.Function:
    """``func`` with ``report`` appended to its REPORTS_ATTR."""
    previous = list(func.attrs[REPORTS_ATTR]) if func.attrs is not None and REPORTS_ATTR in func.attrs else []
    return func.with_attr(REPORTS_ATTR, previous + [report])


def pass_reports(func: relax.Function) -> List[Dict[str, Any]]:
    """The reports of the passes run on ``func`` (oldest first), as plain Python values."""
    if func.attrs is None or REPORTS_ATTR not in func.attrs:
        return []
    return [_to_python(r) for r in func.attrs[REPORTS_ATTR]]


def without_reports(func: relax.Function) -> relax.Function:
    """``func`` without its pass reports (to compare IR)."""
    return func.without_attr(REPORTS_ATTR) if func.attrs is not None and REPORTS_ATTR in func.attrs else func


def _to_python(value):
    """FFI Map/Array -> dict/list (strings, numbers, bools and None come back as Python values)."""
    if isinstance(value, (tvm.ir.Map, dict)):
        return {str(k): _to_python(v) for k, v in value.items()}
    if isinstance(value, (tvm.ir.Array, list, tuple)):
        return [_to_python(v) for v in value]
    return value


def substitute(expr: relax.Expr, remap: Dict[relax.Var, relax.Expr]) -> relax.Expr:
    """``expr`` with its free Vars replaced through ``remap``."""
    if not remap:
        return expr
    from tvm.relax.expr_functor import PyExprMutator, mutator

    @mutator
    class _Sub(PyExprMutator):
        def visit_var_(self, var):  # noqa: D401 - TVM visitor hook
            return remap.get(var, var)

        def visit_dataflow_var_(self, var):
            return remap.get(var, var)

    return _Sub().visit_expr(expr)
