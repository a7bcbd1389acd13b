"""Int8IO: a model with float32 inputs and outputs around an int8 body takes and
gives the int8 tensors instead (``tvmc compile --int8-io``).

Most deployments feed a camera frame as int8 (TinyEngine does, and so do most
TFLM applications): the float input, its QUANTIZE and the float output's
DEQUANTIZE cost SRAM and cycles for nothing.  The pass drops

* every float32 input whose one reader is a QUANTIZE kernel
  (``te_quantize_f32_s8``): the input becomes that kernel's int8 output;
* every DEQUANTIZE kernel (``te_dequantize_s8_f32``) that produces an output:
  the output becomes its int8 input,

and reports, per input and output, the scale and zero point the caller
quantizes with (``real = scale * (q - zero_point)``), which the compiler puts
in the generated header and metadata.json.  The int8 values are the ones TFLM
holds at those tensors, so outputs stay bit-exact with TFLM's int8 tensors.
A float input read by anything else is an error naming it.
"""
from __future__ import annotations

from typing import Any, Dict, List, Tuple

import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from .kernel_call import parse_kernel_call
from .relax_utils import bindings, dtype_of, function_attrs, function_outputs, rewrite_lowered, substitute

QUANTIZE = "te_quantize_f32_s8"
DEQUANTIZE = "te_dequantize_s8_f32"


def _readers(func: relax.Function) -> Dict[relax.Var, List[relax.Binding]]:
    out: Dict[relax.Var, List[relax.Binding]] = {}
    for b in bindings(func):
        for v in relax.analysis.free_vars(b.value):
            out.setdefault(v, []).append(b)
    return out


def int8_io_function(func: relax.Function) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with float inputs/outputs replaced by the int8 tensors around them, and the report."""
    readers = _readers(func)
    params, remap, dropped = [], {}, set()
    inputs, outputs, problems = [], [], []
    for p in func.params:
        if dtype_of(p) != "float32":
            params.append(p)
            inputs.append(None)
            continue
        users = readers.get(p, [])
        k = parse_kernel_call(users[0].value) if len(users) == 1 else None
        if k is None or k.kernel != QUANTIZE or not k.tensors[0].same_as(p):
            what = "nothing" if not users else ", ".join(sorted({parse_kernel_call(u.value).kernel
                                                                  if parse_kernel_call(u.value) else u.var.name
                                                                  for u in users}))
            problems.append(("QUANTIZE", p.name, f"--int8-io: float input '{p.name}' is read by {what}, "
                                                 "not by one QUANTIZE"))
            params.append(p)
            inputs.append(None)
            continue
        q = users[0].var
        new = relax.Var(q.name, relax.TensorType(list(p.ty.shape), "int8"))
        params.append(new)
        remap[q] = new
        dropped.add(q)
        inputs.append(dict(name=q.name, replaces=p.name, scale=float(k.attrs["scale"]),
                           zero_point=int(k.attrs["zero_point"])))
    if problems:
        raise UnsupportedModelError(problems)

    defs = {b.var: b.value for b in bindings(func)}
    deq_source: Dict[relax.Var, relax.Expr] = {}  # dropped DEQUANTIZE output -> its int8 input
    out_vars = set(function_outputs(func))
    ret = func.body.body
    if isinstance(ret, relax.Var) and isinstance(defs.get(ret), tvm.ir.Tuple):
        ret = defs[ret]
    for r in (ret.fields if isinstance(ret, tvm.ir.Tuple) else [ret]):
        v = r
        while isinstance(defs.get(v), relax.Var):  # through aliases (gv = y)
            v = defs[v]
        k = parse_kernel_call(defs.get(v))
        if k is None or k.kernel != DEQUANTIZE:
            outputs.append(None)
            continue
        dropped.add(v)
        deq_source[v] = k.tensors[0]
        outputs.append(dict(name=k.tensors[0].name if isinstance(k.tensors[0], relax.Var) else v.name,
                            replaces=v.name, scale=float(k.attrs["scale"]), zero_point=int(k.attrs["zero_point"])))
    if not dropped:
        return func, dict(inputs=inputs, outputs=outputs, changed=False)
    # The int8 tensors now returned leave the dataflow block where they are bound.
    out_vars |= {t for t in deq_source.values() if isinstance(t, relax.Var)}

    bb = relax.BlockBuilder()
    with bb.function("f", params, attrs=function_attrs(func), pure=bool(func.is_pure), private=True):
        with bb.dataflow():
            for b in bindings(func):
                if b.var in dropped:
                    if b.var in deq_source:
                        remap[b.var] = substitute(deq_source[b.var], remap)
                    continue
                value = substitute(b.value, remap)
                emit = bb.emit_output if b.var in out_vars else bb.emit
                remap[b.var] = emit(value, name_hint=b.var.name)
            ret = substitute(func.body.body, remap)
        bb.emit_func_output(ret)
    return bb.get()["f"], dict(inputs=inputs, outputs=outputs, changed=True)


@tvm.transform.module_pass(opt_level=0, name="Int8IO")
class Int8IO:
    """Give every lowered function int8 inputs and outputs in place of float ones
    quantized/dequantized at the boundary; the report (function attr, see
    ``relax_utils.pass_reports``) lists per input and output the int8 tensor's
    name, the float tensor it replaces, its scale and zero point (None where the
    tensor was int8 already)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        return rewrite_lowered(mod, "Int8IO", int8_io_function)
