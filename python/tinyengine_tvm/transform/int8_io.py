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

from typing import Any, Dict, Tuple

import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from .boundary import describe_readers, input_readers, only_kernel_reader, output_producers, rebuild
from .relax_utils import dtype_of, rewrite_lowered

QUANTIZE = "te_quantize_f32_s8"
DEQUANTIZE = "te_dequantize_s8_f32"


def int8_io_function(func: relax.Function) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` with float inputs/outputs replaced by the int8 tensors around them, and the report."""
    readers = input_readers(func)
    params, replaced, inputs, problems = [], {}, [], []
    for p in func.params:
        found = only_kernel_reader(readers, p, QUANTIZE) if dtype_of(p) == "float32" else None
        if found is None:
            if dtype_of(p) == "float32":
                problems.append(("QUANTIZE", p.name, f"--int8-io: float input '{p.name}' is read by "
                                                     f"{describe_readers(readers, p)}, not by one QUANTIZE"))
            params.append(p)
            inputs.append(None)
            continue
        binding, k = found
        new = relax.Var(binding.var.name, relax.TensorType(list(p.ty.shape), "int8"))
        params.append(new)
        replaced[binding.var] = new
        inputs.append(dict(name=binding.var.name, replaces=p.name, scale=float(k.attrs["scale"]),
                           zero_point=int(k.attrs["zero_point"])))
    if problems:
        raise UnsupportedModelError(problems)
    sources, outputs = {}, []
    for v, k in output_producers(func):
        if k is None or k.kernel != DEQUANTIZE:
            outputs.append(None)
            continue
        sources[v] = k.tensors[0]
        outputs.append(dict(name=k.tensors[0].name if isinstance(k.tensors[0], relax.Var) else v.name,
                            replaces=v.name, scale=float(k.attrs["scale"]), zero_point=int(k.attrs["zero_point"])))
    if not replaced and not sources:
        return func, dict(inputs=inputs, outputs=outputs, changed=False)
    return rebuild(func, params, replaced, sources), dict(inputs=inputs, outputs=outputs, changed=True)


@tvm.transform.module_pass(opt_level=0, name="Int8IO")
class Int8IO:
    """Give every lowered function int8 inputs and outputs in place of float ones
    quantized/dequantized at the boundary; the report (function attr, see
    ``relax_utils.pass_reports``) lists per input and output the int8 tensor's
    name, the float tensor it replaces, its scale and zero point (None where the
    tensor was int8 already)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        return rewrite_lowered(mod, "Int8IO", int8_io_function)
