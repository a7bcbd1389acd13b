"""Small helpers shared by the passes that rewrite a lowered ``main``."""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence

import tvm
from tvm import relax


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


def rebuild_main(func: relax.Function, replace: Callable[[relax.Var, relax.Expr], relax.Expr],
                 order: Optional[Sequence[relax.Binding]] = None) -> relax.Function:
    """Re-emit ``func``'s bindings (optionally in another order), each value passed
    through ``replace(var, value)``; Vars keep their identity where the type allows."""
    params = list(func.params)
    order = list(order) if order is not None else bindings(func)
    # Only the returned Var(s) leave the dataflow block.
    out_vars = set(relax.analysis.free_vars(func.body.body))
    bb = relax.BlockBuilder()
    attrs = {str(k): v for k, v in func.attrs.items()} if func.attrs is not None else {}
    with bb.function("main", params, attrs=attrs):
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
    return bb.get()["main"]


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
