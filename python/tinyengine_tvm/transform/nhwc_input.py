"""NHWCInput: a model whose first operator turns an NCHW input into NHWC (as
PyTorch exports do) takes the NHWC tensor instead (``tvmc compile --nhwc-input``).

The leading TRANSPOSE (``te_transpose_s8`` with permutation 0, 2, 3, 1) is
dropped and the input becomes its output, so two full copies of the image are
never live together, and the first patch stage can read its windows straight
from the input.  The caller lays the image out as NHWC (what camera drivers
and most preprocessing give).  Inputs read by anything else stay as they are.
"""
from __future__ import annotations

from typing import Any, Dict, Tuple

import tvm
from tvm import relax

from .boundary import input_readers, only_kernel_reader, rebuild
from .relax_utils import rewrite_lowered

TRANSPOSE = "te_transpose_s8"
NCHW_TO_NHWC = [0, 2, 3, 1]


def nhwc_input_function(func: relax.Function) -> Tuple[relax.Function, Dict[str, Any]]:
    """``func`` taking NHWC where it transposed an NCHW input, and the report."""
    readers = input_readers(func)
    params, replaced, inputs = [], {}, []
    for p in func.params:
        found = only_kernel_reader(readers, p, TRANSPOSE)
        if found is None or found[1].attrs["rank"] != 4 or list(found[1].attrs["perm"][:4]) != NCHW_TO_NHWC:
            params.append(p)
            inputs.append(None)
            continue
        binding, _ = found
        shape = [int(d) for d in binding.var.ty.shape]
        new = relax.Var(binding.var.name, relax.TensorType(shape, str(p.ty.dtype)))
        params.append(new)
        replaced[binding.var] = new
        inputs.append(dict(name=binding.var.name, replaces=p.name, shape=shape))
    if not replaced:
        return func, dict(inputs=inputs, changed=False)
    return rebuild(func, params, replaced, {}), dict(inputs=inputs, changed=True)


@tvm.transform.module_pass(opt_level=0, name="NHWCInput")
class NHWCInput:
    """Give every lowered function the NHWC tensor its leading NCHW-to-NHWC
    TRANSPOSE produced as input; the report lists per input the new name and
    shape and the NCHW tensor it replaces (None where unchanged)."""

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        return rewrite_lowered(mod, "NHWCInput", nhwc_input_function)
