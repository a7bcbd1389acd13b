"""The model's own tensor names on the Relax Vars that hold them.

TVM's importers name their bindings ``lv``, ``lv1``, ... and keep the model's
tensor names only in a table used while importing (the TFLite importer's
``ExprTable``, the ONNX importer's ``_nodes``).  While importing, the
recorders below note which expression each tensor name was given to; then
:func:`name_bindings` renames every binding that holds one of those
expressions to the tensor's name (its ``name_hint``).  From there the names
travel with the IR: the passes re-emit bindings with the name of the Var they
replace, and everything a user reads (report, metadata, plots, errors, C
comments) is read from the Vars.

A tensor name can be any string (``/``, spaces, ``*/``, newlines, non-ASCII):
it is only ever used as text, never as an identifier, and the C writer
escapes it for comments.  Relax itself accepts such names (TVMScript prints a
sanitized identifier).
"""
from __future__ import annotations

import contextlib
from typing import Dict, Iterator, List, Sequence, Tuple

from tvm import relax
from tvm.relax.expr_functor import PyExprMutator, mutator

NamedExprs = List[Tuple[str, relax.Expr]]


@contextlib.contextmanager
def recording_tflite_names() -> Iterator[NamedExprs]:
    """While active, TVM's TFLite importer records ``(tensor name, expression)`` pairs.

    Every first assignment of a tensor name in an importer's ``ExprTable`` is
    recorded (operator outputs and model inputs); forced overrides (temporary
    rebindings such as the FULLY_CONNECTED input flattening of
    :mod:`.tflite_fixups`) are not.
    """
    from tvm.relax.frontend.tflite import tflite_frontend as tf

    recorded: NamedExprs = []
    original = tf.ExprTable.set_expr

    def set_expr(self, name, expr, force_override=False):
        if not force_override and name not in self.exprs and isinstance(name, str):
            recorded.append((name, expr))
        return original(self, name, expr, force_override)

    tf.ExprTable.set_expr = set_expr
    try:
        yield recorded
    finally:
        tf.ExprTable.set_expr = original


class _RecordingDict(dict):
    """A dict that also appends every ``d[key] = value`` to ``log``."""

    def __init__(self, base, log: NamedExprs):
        super().__init__(base)
        self.log = log

    def __setitem__(self, key, value):
        if isinstance(key, str) and key and key not in self:
            self.log.append((key, value))
        super().__setitem__(key, value)


@contextlib.contextmanager
def recording_onnx_names() -> Iterator[NamedExprs]:
    """While active, TVM's ONNX importer records ``(node output name, expression)`` pairs."""
    from tvm.relax.frontend.onnx import onnx_frontend as of

    recorded: NamedExprs = []
    original = of.ONNXGraphImporter._construct_nodes

    def construct_nodes(self, graph):
        self._nodes = _RecordingDict(self._nodes, recorded)
        return original(self, graph)

    of.ONNXGraphImporter._construct_nodes = construct_nodes
    try:
        yield recorded
    finally:
        of.ONNXGraphImporter._construct_nodes = original


def binding_names(func: relax.Function, named: Sequence[Tuple[str, relax.Expr]]) -> Dict[relax.Var, str]:
    """Binding Var -> tensor name, for the bindings of ``func`` that hold a recorded expression.

    A binding holds a tensor when its value is the recorded expression or its
    Var is.  When several names land on one binding, the first recorded wins
    (an operator that returns its input unchanged keeps the input's name).
    """
    first: Dict[relax.Expr, str] = {}
    for name, expr in named:
        if isinstance(expr, relax.Expr) and expr not in first:
            first[expr] = name
    params = set(func.params)
    names: Dict[relax.Var, str] = {}
    for block in func.body.blocks:
        for b in block.bindings:
            if b.var in params:
                continue
            name = first.get(b.var, first.get(b.value))
            if name is not None:
                names.setdefault(b.var, name)
                # The importer ends some converters with a reshape (STRIDED_SLICE's
                # shrink): the unnamed value it reshapes is the operator's result too.
                src = b.value.args[0] if isinstance(b.value, relax.Call) and getattr(b.value.op, "name", "") \
                    == "relax.reshape" else None
                if isinstance(src, relax.Var) and src not in params and src not in names and src not in first:
                    names[src] = name
    return names


@mutator
class _Rename(PyExprMutator):
    """Give Vars new name hints (same type, same bindings)."""

    def __init__(self, names: Dict[relax.Var, str]):
        super().__init__()
        self.names = names

    def _renamed(self, var, cls):
        name = self.names.get(var)
        if name is None or name == var.name:
            return var
        new = cls(name, var.ty)
        self.set_var_remap(var, new)
        return new

    def visit_var_def_(self, var):  # noqa: D401 - TVM visitor hook
        return self._renamed(var, relax.Var)

    def visit_dataflow_var_def_(self, var):
        return self._renamed(var, relax.DataflowVar)


def rename_vars(func: relax.Function, names: Dict[relax.Var, str]) -> relax.Function:
    """``func`` with the Vars of ``names`` renamed (everything else unchanged)."""
    if not names:
        return func
    return _Rename(names).visit_expr(func)


def name_bindings(func: relax.Function, named: Sequence[Tuple[str, relax.Expr]]) -> relax.Function:
    """``func`` with every binding that holds a recorded tensor renamed to the tensor's name."""
    return rename_vars(func, binding_names(func, named))
