"""Rewriting a lowered function's boundary: an input becomes the output of the
kernel that reads it, an output becomes the input of the kernel that makes it.

What Int8IO (drop the boundary QUANTIZE/DEQUANTIZE) and NHWCInput (drop a
leading layout TRANSPOSE) share: finding the one kernel next to a boundary
tensor, and re-emitting the function without it.
"""
from __future__ import annotations

from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple

import tvm
from tvm import relax

from .kernel_call import KernelCall, parse_kernel_call
from .relax_utils import bindings, function_attrs, function_outputs, substitute


def input_readers(func: relax.Function) -> Dict[relax.Var, List[relax.Binding]]:
    """Param -> the bindings that read it."""
    params = set(func.params)
    out: Dict[relax.Var, List[relax.Binding]] = {}
    for b in bindings(func):
        for v in relax.analysis.free_vars(b.value):
            if v in params:
                out.setdefault(v, []).append(b)
    return out


def only_kernel_reader(readers: Dict[relax.Var, List[relax.Binding]], param: relax.Var,
                       kernel: str) -> Optional[Tuple[relax.Binding, KernelCall]]:
    """The binding and call when ``param``'s one reader is ``kernel`` with it as input 0."""
    users = readers.get(param, [])
    k = parse_kernel_call(users[0].value) if len(users) == 1 else None
    if k is None or k.kernel != kernel or not k.tensors[0].same_as(param):
        return None
    return users[0], k


def describe_readers(readers: Dict[relax.Var, List[relax.Binding]], param: relax.Var) -> str:
    """What reads ``param``, for an error message."""
    users = readers.get(param, [])
    if not users:
        return "nothing"
    return ", ".join(sorted({parse_kernel_call(u.value).kernel if parse_kernel_call(u.value) else u.var.name
                             for u in users}))


def output_producers(func: relax.Function) -> List[Tuple[relax.Var, Optional[KernelCall]]]:
    """Per returned value (in order), the Var binding it (through aliases) and its kernel call."""
    defs = {b.var: b.value for b in bindings(func)}
    ret = func.body.body
    if isinstance(ret, relax.Var) and isinstance(defs.get(ret), tvm.ir.Tuple):
        ret = defs[ret]
    out = []
    for r in (ret.fields if isinstance(ret, tvm.ir.Tuple) else [ret]):
        v = r
        while isinstance(defs.get(v), relax.Var):  # through aliases (gv = y)
            v = defs[v]
        out.append((v, parse_kernel_call(defs.get(v))))
    return out


def rebuild(func: relax.Function, params: Sequence[relax.Var], inputs: Dict[relax.Var, relax.Var],
            outputs: Dict[relax.Var, relax.Expr]) -> relax.Function:
    """``func`` with new ``params``; the bindings of ``inputs`` (Var -> the param replacing
    it) and of ``outputs`` (Var -> the expression replacing it, the kernel's input) dropped."""
    dropped: Set[relax.Var] = set(inputs) | set(outputs)
    # The tensors now returned leave the dataflow block where they are bound.
    out_vars = set(function_outputs(func)) | {t for t in outputs.values() if isinstance(t, relax.Var)}
    remap: Dict[relax.Var, relax.Expr] = dict(inputs)
    bb = relax.BlockBuilder()
    with bb.function("f", list(params), attrs=function_attrs(func), pure=bool(func.is_pure), private=True):
        with bb.dataflow():
            for b in bindings(func):
                if b.var in dropped:
                    if b.var in outputs:
                        remap[b.var] = substitute(outputs[b.var], remap)
                    continue
                emit = bb.emit_output if b.var in out_vars else bb.emit
                remap[b.var] = emit(substitute(b.value, remap), name_hint=b.var.name)
            ret = substitute(func.body.body, remap)
        bb.emit_func_output(ret)
    return bb.get()["f"]


