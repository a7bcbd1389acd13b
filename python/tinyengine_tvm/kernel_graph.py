"""KernelGraph: the lowered Relax function read back as steps over buffers.

After integer lowering, ``main`` is a straight line of kernel calls and
reshapes.  The planner and the C writer both need the same facts about it
(which tensor each step reads and writes, which tensors are views of others
and at which byte offset, which are constants), so this module extracts them once.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tvm
from tvm import relax

from .errors import TinyEngineError, UnsupportedModelError
from .kernel_call import parse_kernel_call
from .kernels import inplace_kernels as _inplace_kernels
from .slice_view import is_slice_view, view_offset

_VIEW_OPS = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


@dataclasses.dataclass
class Tensor:
    """A value of the graph.  ``kind``: input, activation or constant."""

    index: int
    name: str
    shape: List[int]
    dtype: str
    kind: str
    data: Optional[np.ndarray] = None
    view_of: Optional[int] = None  # shares the memory of this tensor (reshape, slice view, in-place op)
    # The Relax Var holding it (inputs and bound values) or the Constant it is, for passes that
    # rewrite the function.
    var: Optional[Any] = dataclasses.field(default=None, repr=False, compare=False)
    offset: int = 0  # bytes into the memory of ``view_of`` where this view starts (a slice view)

    @property
    def nbytes(self) -> int:
        """Bytes the tensor occupies."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass
class Step:
    """One kernel invocation: reads ``inputs`` (tensor indices), writes ``output``.

    ``attrs`` are the kernel's parameters; ``notes`` the compiler's annotations
    (``op_type``, ``in_offsets``/``inout_offset`` into operand buffers,
    ``kernel_note``), see :mod:`tinyengine_tvm.kernel_call`.
    """

    kernel: str
    inputs: List[int]
    output: int
    attrs: Dict[str, Any]
    name: str
    notes: Dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class KernelGraph:
    """Tensors and steps of a lowered model, in execution order."""

    tensors: List[Tensor]
    steps: List[Step]
    inputs: List[int]
    outputs: List[int]
    #: Resource variables: (name, tensor holding its value or None, tensor assigned
    #: to it or None).  Both live through the whole run; the generated code
    #: copies the assigned value into the variable after the last step.
    variables: List[Tuple[str, Optional[int], Optional[int]]] = dataclasses.field(default_factory=list)

    @property
    def persistent(self) -> List[int]:
        """Tensors alive through the whole run besides inputs and outputs (the variables')."""
        return [t for _, value, assigned in self.variables for t in (value, assigned) if t is not None]

    def root(self, index: int) -> int:
        """The tensor that owns the memory of ``index`` (follows views)."""
        while self.tensors[index].view_of is not None:
            index = self.tensors[index].view_of
        return index

    def offset(self, index: int) -> int:
        """Bytes from the start of ``root(index)``'s memory to where ``index`` starts."""
        total = 0
        while self.tensors[index].view_of is not None:
            total += self.tensors[index].offset
            index = self.tensors[index].view_of
        return total

    @property
    def constants(self) -> List[Tensor]:
        """Constant tensors (weights, bias, requantization tables)."""
        return [t for t in self.tensors if t.kind == "constant"]

    @staticmethod
    def from_relax(func: relax.Function) -> "KernelGraph":
        """Read a lowered ``main`` function (see LowerToIntegerKernels)."""
        tensors: List[Tensor] = []
        index_of: Dict[Any, int] = {}
        constant_of: Dict[int, int] = {}  # a Constant's object address -> its tensor (same_as identity)

        def add(key, name, ty, kind, data=None, view_of=None, offset=0):
            t = Tensor(len(tensors), name, [int(d) for d in ty.shape], str(ty.dtype), kind, data, view_of,
                       key if isinstance(key, (relax.Var, tvm.ir.Constant)) else None, offset)
            tensors.append(t)
            index_of[key] = t.index
            return t.index

        def tensor_of(expr) -> int:
            if isinstance(expr, tvm.ir.Constant):
                if expr.__chandle__() not in constant_of:
                    constant_of[expr.__chandle__()] = add(expr, f"c{len(constant_of)}", expr.ty, "constant",
                                                          expr.value.numpy())
                return constant_of[expr.__chandle__()]
            if expr in index_of:
                return index_of[expr]
            raise TinyEngineError(f"value {expr} is used before it is defined")

        inplace_kernels = _inplace_kernels()
        inputs = [add(p, p.name, p.ty, "input") for p in func.params]
        steps: List[Step] = []
        multi_output = set()  # Vars bound to a kernel call with several outputs
        body = func.body
        for block in body.blocks:
            for binding in block.bindings:
                var, value = binding.var, binding.value
                call = parse_kernel_call(value)
                if call is not None:
                    ins = [tensor_of(a) for a in call.tensors]
                    # An in-place kernel's output occupies its input's memory.
                    alias = ins[0] if call.kernel in inplace_kernels else None
                    if isinstance(var.ty, tvm.ir.TupleType):
                        # A kernel with several outputs: the first is the step's; the others are
                        # declared by te_buffer steps before it and written through its last operands.
                        types = list(var.ty.fields)
                        extra = []
                        for k, ty in enumerate(types[1:], 1):
                            t = add(("output", var, k), f"{var.name}.out{k}", ty, "activation")
                            steps.append(Step("te_buffer", [], t, {}, tensors[t].name, dict(call.notes)))
                            extra.append(t)
                        out = add(var, var.name, types[0], "activation", view_of=alias)
                        steps.append(Step(call.kernel, ins + extra, out, call.attrs, var.name, call.notes))
                        index_of[var] = [out] + extra
                        multi_output.add(var)
                        continue
                    out = add(var, var.name, var.ty, "activation", view_of=alias)
                    steps.append(Step(call.kernel, ins, out, call.attrs, var.name, call.notes))
                elif isinstance(value, relax.TupleGetItem):
                    index = tensor_of(value.tuple_value)[int(value.index)]
                    index_of[var] = index
                    if value.tuple_value in multi_output:  # the output takes the name it is bound to
                        tensors[index].name, tensors[index].var = var.name, var
                        for st in steps:
                            if st.output == index and st.kernel == "te_buffer":
                                st.name = var.name
                elif isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) and value.op.name in _VIEW_OPS:
                    add(var, var.name, var.ty, "activation", view_of=tensor_of(value.args[0]))
                elif is_slice_view(value):
                    start = view_offset(value)
                    if start is None:
                        raise UnsupportedModelError([("relax.strided_slice", var.name,
                                                      "a slice left in Relax must be a contiguous view")])
                    add(var, var.name, var.ty, "activation", view_of=tensor_of(value.args[0]),
                        offset=start * np.dtype(str(var.ty.dtype)).itemsize)
                elif isinstance(value, relax.Var):
                    index_of[var] = tensor_of(value)
                elif isinstance(value, tvm.ir.Tuple):
                    index_of[var] = [tensor_of(f) for f in value.fields]
                else:
                    # Left over when no integer pattern covered it (e.g. int8 math
                    # the importer wrote without quantize/dequantize).
                    op = value.op.name if isinstance(value, relax.Call) and isinstance(value.op, tvm.ir.Op) \
                        else type(value).__name__
                    raise UnsupportedModelError([(op, var.name, "no integer kernel computes this operation")])
        ret = body.body
        if isinstance(ret, tvm.ir.Tuple):
            out_idx = [tensor_of(f) for f in ret.fields]
        else:
            out_idx = index_of[ret] if isinstance(ret, relax.Var) else tensor_of(ret)
        outputs = out_idx if isinstance(out_idx, list) else [out_idx]
        # Resource variables (frontend.tflite_variables) are inputs and outputs of
        # the function, not of the model.
        variables = [(str(name), None if int(i) < 0 else inputs[int(i)], None if int(o) < 0 else outputs[int(o)])
                     for name, i, o in (func.attrs or {}).get("tinyengine.variables", [])]
        var_in = {int(i) for _, i, _ in (func.attrs or {}).get("tinyengine.variables", [])}
        var_out = {int(o) for _, _, o in (func.attrs or {}).get("tinyengine.variables", [])}
        inputs = [t for k, t in enumerate(inputs) if k not in var_in]
        outputs = [t for k, t in enumerate(outputs) if k not in var_out]
        for k, index in enumerate(outputs):
            src = tensors[index]
            if src.kind == "constant":
                # A value known at compile time (e.g. SHAPE's) still has to be
                # written where the caller reads the output.
                out = add(("output", k), f"{src.name}_output", relax.TensorType(src.shape, src.dtype), "activation")
                steps.append(Step("te_copy_s8", [index], out, dict(rows=1, row_bytes=src.nbytes),
                                  f"output_{k}", {"op_type": "COPY"}))
                outputs[k] = out
        return KernelGraph(tensors, steps, inputs, outputs, variables)
