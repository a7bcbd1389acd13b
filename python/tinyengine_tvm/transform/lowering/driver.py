"""The driver of the integer lowering: a ``PyExprMutator`` that rewrites a QDQ
Relax function with the family modules' :class:`~.base.Lowering` records.

* bindings are visited in order; an int8 ``quantize`` is the anchor of every
  quantized float operation (conv, add, softmax, ...), the fused RELU/clip in
  front of it becomes the kernel's activation range (activations.py);
  int8 operations (pooling, pad, transpose, views, clip) anchor on themselves;
* a later int8 clip that is the only reader of a kernel narrows that kernel's
  act_min/act_max (pending attrs) instead of becoming a kernel of its own;
* already-lowered kernel calls are kept (the pass is idempotent);
* every operation no record lowers is collected as (op, tensor, reason) and
  all of them are raised together as UnsupportedModelError;
* each lowered binding is replaced in place by its kernel call, bound to a Var
  named after the Var it replaces (the model's tensor name); the float
  bindings the kernels consumed are then dead and removed
  (``relax.analysis.remove_all_unused``), as is a kernel a later clip re-emitted.
"""
from __future__ import annotations

from typing import Dict, List, Optional, Tuple

import numpy as np
import tvm
from tvm import relax

from ...errors import UnsupportedModelError
from ..kernel_call import parse_kernel_call
from ..relax_utils import (VIEW_OPS, const_value, definitions, dtype_of, function_outputs, op_name, resolve,
                           shape_of, use_counts)
from . import activations, convolution, data_movement, elementwise, fully_connected, pooling, quantize
from .base import ACTIVATION_RANGE, Activation, Lowering, QuantizeContext

# Family modules in the order their records are tried (a biased conv or FC is an
# add: those records come before the elementwise ADD).
FAMILIES = (quantize, convolution, fully_connected, elementwise, activations, pooling, data_movement)


def all_lowerings() -> List[Lowering]:
    """Every Lowering record of every family, in the order they are tried."""
    return [rec for fam in FAMILIES for rec in fam.LOWERINGS]


def supported_tflite_ops() -> Dict[str, Tuple[int, ...]]:
    """TFLite operator -> indices of its activation inputs, for every operator some record lowers."""
    ops: Dict[str, Tuple[int, ...]] = {}
    for rec in all_lowerings():
        for op, inputs in rec.tflite.items():
            if ops.setdefault(op, inputs) != inputs:
                raise AssertionError(f"{op}: records disagree on its activation inputs")
    return ops


def _by_width(types) -> Tuple[str, ...]:
    return tuple(sorted(types, key=lambda t: (t == "bool", np.dtype(t).itemsize, t)))


def _types_by_op(types_of) -> Dict[str, Tuple[str, ...]]:
    """TFLite operator -> the union over its records of ``types_of(record)``
    (narrowed by the record's ``op_dtypes``)."""
    dtypes: Dict[str, set] = {}
    for rec in all_lowerings():
        for op in rec.tflite:
            dtypes.setdefault(op, set()).update(rec.op_dtypes.get(op, types_of(rec)))
    return {op: _by_width(d) for op, d in dtypes.items()}


def supported_tflite_dtypes() -> Dict[str, Tuple[str, ...]]:
    """TFLite operator -> the activation types some record lowers it for."""
    return _types_by_op(lambda rec: rec.dtypes)


def supported_tflite_output_dtypes() -> Dict[str, Tuple[str, ...]]:
    """TFLite operator -> the types of the outputs some record produces for it."""
    return _types_by_op(Lowering.output_dtypes)


#: Types of values the lowering computes: activations, and other records' outputs.
_INTEGER_VALUES = ("int8", "int16", "int32", "int64", "bool")


class LoweringDriver:
    """Walks one Relax function in binding order and rebuilds it with kernels.

    Also the context handed to the records: operand readers (``activation_input``,
    ``weights``, ``bias``, ``int8_value``, ``const``) and the lowering state.
    """

    def __init__(self, func: relax.Function, name: str = "main", lowerings: Optional[List[Lowering]] = None):
        self.func = func
        self.func_name = name
        self.defs: Dict[relax.Var, relax.Expr] = definitions(func)
        self.uses: Dict[relax.Var, int] = use_counts(func)
        self.var2val = relax.analysis.get_var2val(func)  # what dpl patterns see through
        lowerings = all_lowerings() if lowerings is None else lowerings
        self.by_anchor = {a: [r for r in lowerings if r.anchor == a] for a in ("quantize", "int8", "output")}
        self.params = set(func.params)
        # old int8 Var -> new Relax expression producing it
        self.lowered: Dict[relax.Var, relax.Expr] = {}
        # kernel calls whose act range a later clip may still narrow
        self.pending_attrs: Dict[relax.Var, dict] = {}
        self.problems: List[tuple] = []
        self.output_vars = function_outputs(func)

    # ------------------------------------------------------ operand readers
    def resolve(self, expr):
        """The expression ``expr`` names, through Var bindings."""
        return resolve(expr, self.defs)

    def const(self, expr) -> Optional[np.ndarray]:
        """The constant value of ``expr`` (through bindings and views), or None."""
        return const_value(expr, self.defs)

    def dequantize(self, expr):
        """Match ``dequantize(x, scale, zp)``: (x, scale array, zp array, axis) or None."""
        e = self.resolve(expr)
        if op_name(e) != "relax.dequantize":
            return None
        scale = self.const(e.args[1])
        zp = self.const(e.args[2])
        if scale is None or zp is None:
            return None
        return (e.args[0], np.atleast_1d(scale).astype(np.float32), np.atleast_1d(zp).astype(np.int64),
                int(e.attrs.axis))

    def activation_input(self, expr) -> Optional[Activation]:
        """An int8 or int16 activation seen through its dequantize (per-tensor)."""
        dq = self.dequantize(expr)
        if dq is None:
            return None
        x, scale, zp, _ = dq
        if scale.size != 1:
            return None
        src = self.int8_value(x)
        if src is None:
            return None
        return Activation(src, float(scale[0]), int(zp[0]), dtype_of(x))

    def int8_value(self, var) -> Optional[relax.Expr]:
        """The lowered expression of an int8 or int16 Var (or constant), if any."""
        if isinstance(var, relax.Var) and var in self.lowered:
            return self.lowered[var]
        if isinstance(var, relax.Var) and var in self.params:
            return var
        c = self.const(var)
        if c is not None:
            return relax.const(c)
        return None

    def weights(self, w_expr):
        """Weights of a conv/matmul: (int8 array in the float op's layout, scales, zps, axis)."""
        e = self.resolve(w_expr)
        post_shape = None
        if op_name(e) in VIEW_OPS:
            post_shape = shape_of(e)
            e = self.resolve(e.args[0])
        dq = self.dequantize(e)
        if dq is None:
            return None
        q = self.const(dq[0])
        if q is None or q.dtype != np.int8:
            return None
        if post_shape is not None:
            q = q.reshape(post_shape)
        return q, dq[1], dq[2], dq[3]

    def bias(self, bias_expr, n):
        """Bias of n channels, or None: int32 (dequantized with zero point 0) or,
        of an int16x8 layer, int64 (``astype(b, float32) * scale``, frontend/tflite_fixups)."""
        if bias_expr is None:
            return None
        dq = self.dequantize(bias_expr)
        if dq is not None:
            b = self.const(dq[0])
            if b is None or b.dtype != np.int32 or np.any(dq[2] != 0):
                return None
        else:
            e = self.resolve(bias_expr)
            cast = self.resolve(e.args[0]) if op_name(e) == "relax.multiply" else None
            b = self.const(cast.args[0]) if op_name(cast) == "relax.astype" else None
            if b is None or b.dtype != np.int64:
                return None
        return b.reshape(-1) if b.size == n else None

    def forget(self, var):
        """Drop a lowered value (its kernel was folded into a later one)."""
        del self.lowered[var]

    def unsupported(self, var, expr, reason):
        """Record (op, tensor, reason) for the error raised at the end."""
        self.problems.append((op_name(expr) or type(expr).__name__,
                              var.name if hasattr(var, "name_hint") else str(var), reason))

    # ------------------------------------------------------------- main walk
    def run(self) -> relax.Function:
        """The function with every quantized pattern replaced by its kernel call."""
        mutator = _LoweringMutator(self)
        func = mutator.visit_expr(self.func)
        for r in self.output_vars:
            if r not in self.lowered and r not in self.params and isinstance(r.ty, relax.TensorType):
                self._report_unlowered(r)
        if self.problems:
            raise UnsupportedModelError(self.problems)
        # The float bindings the kernels replaced, and kernels a later clip
        # re-emitted with a narrower range, are dead now.
        func = relax.analysis.remove_all_unused(func)
        if func.attrs is not None and "params" in func.attrs:
            func = func.without_attr("params")  # the importer's weight list: weights are constants of the kernels now
        for key, value in (("num_input", len(self.func.params)), ("global_symbol", self.func_name)):
            if func.attrs is None or key not in func.attrs:
                func = func.with_attr(key, value)
        return func

    def lower_binding(self, var, value) -> Optional[relax.Expr]:
        """The lowered expression (on the new function's Vars) that replaces the
        binding ``var = value``, or None to keep the binding as it is."""
        try:
            self._visit(var, value)
            if (var not in self.lowered and var in self.output_vars and isinstance(var.ty, relax.TensorType)
                    and dtype_of(var) not in ACTIVATION_RANGE):
                self._lower_output(var, value)
        except (ValueError, ArithmeticError) as exc:
            # Scales, zero points or betas whose fixed-point form does not
            # exist (TFLM's Prepare refuses them too).
            self.unsupported(var, value, f"quantization parameters out of range: {exc}")
        return self.lowered.get(var)

    def _visit(self, var, value):
        if not isinstance(var.ty, relax.TensorType):
            return
        if parse_kernel_call(value) is not None:
            # Already lowered (the pass is idempotent): keep it, on lowered inputs.
            args = [self.int8_value(a) if isinstance(a, relax.Var) else a for a in value.args[1].fields]
            if any(a is None for a in args):
                self.unsupported(var, value, "kernel call on a value that could not be lowered")
                return
            self.lowered[var] = relax.Call(value.op, [value.args[0], tvm.ir.Tuple(args)], value.attrs, value.ty_args)
            return
        if isinstance(value, relax.Var):
            if value in self.lowered:
                self.lowered[var] = self.lowered[value]
            return
        if dtype_of(var) not in _INTEGER_VALUES:
            return
        if self.const(var) is not None:
            return  # weights: folded where used
        if op_name(value) == "relax.quantize":
            self._lower_quantize(var, value)
            return
        for rec in self.by_anchor["int8"]:
            if dtype_of(var) not in ACTIVATION_RANGE and dtype_of(var) not in rec.output_dtypes():
                continue  # a bool or int32 value: only the records that produce one
            if rec.matches(self, value):
                if dtype_of(var) not in rec.output_dtypes():
                    self.unsupported(var, value, f"{rec.name} has no {dtype_of(var)} kernel")
                elif not self._apply(rec, var, value, None):
                    self.unsupported(var, value, f"no integer lowering for {rec.name} on these operands")
                return
        # Other int8 ops are either consumed by a pattern or unsupported;
        # unsupported ones surface when an output depends on them.

    def _lower_quantize(self, var, value):
        out_scale = self.const(value.args[1])
        out_zp = self.const(value.args[2])
        if out_scale is None or out_zp is None or np.size(out_scale) != 1:
            self.unsupported(var, value, "output quantization must be per-tensor and constant")
            return
        s_out, zp_out = float(np.float32(np.ravel(out_scale)[0])), int(np.ravel(out_zp)[0])
        dtype = dtype_of(var)
        act, float_act, inner = activations.fused_activation(self, self.resolve(value.args[0]), s_out, zp_out, dtype)
        q = QuantizeContext(s_out=s_out, zp_out=zp_out, act=act, float_act=float_act, dtype=dtype)
        handled = False
        for rec in self.by_anchor["quantize"]:
            if rec.matches(self, inner):
                if dtype not in rec.dtypes:
                    self.unsupported(var, inner, f"{rec.name} has no {dtype} kernel")
                    return
                handled = self._apply(rec, var, inner, q)
                break
        if not handled and var not in self.lowered:
            self.unsupported(var, inner, f"no integer kernel for the pattern {op_name(inner)} -> quantize")

    def _lower_output(self, var, value):
        """A float output of the function (e.g. a dequantize of the last int8 tensor)."""
        for rec in self.by_anchor["output"]:
            if rec.matches(self, value):
                out = rec.lower(self, var, value, None)
                if out is not None:
                    self.lowered[var] = out
                return

    def _apply(self, rec: Lowering, var, expr, q) -> bool:
        """Check then lower ``expr`` with ``rec``: False when the operands are not of its form."""
        problem = rec.check(self, var, expr, q) if rec.check is not None else None
        if problem is not None:
            where, reason = problem if isinstance(problem, tuple) else (expr, problem)
            self.unsupported(var, where, reason)
            return True
        out = rec.lower(self, var, expr, q)
        if out is None:
            return False
        self.lowered[var] = out
        # A value passed through unchanged (e.g. an identity requantize) is not a
        # new kernel a clip could narrow.
        k = parse_kernel_call(out)
        if k is not None and rec.fusable and "act_min" in k.attrs:
            # Notes ride along as "_" keys (make_kernel_call files them apart again).
            self.pending_attrs[var] = dict(kernel=k.kernel, tensors=k.tensors,
                                           attrs=dict(k.attrs, **{"_" + n: v for n, v in k.notes.items()}))
        return True

    # ---------------------------------------------------------------- output
    def _report_unlowered(self, var):
        """Name the first binding on the path to an output that no pattern consumed."""
        seen = set()
        stack = [var]
        while stack:
            v = stack.pop()
            if v in seen or not isinstance(v, relax.Var) or v in self.params:
                continue
            seen.add(v)
            if v in self.lowered:
                continue
            value = self.defs.get(v)
            if value is None:
                continue
            deps = [d for d in relax.analysis.free_vars(value)]
            unresolved = [d for d in deps if d not in self.lowered and d not in self.params and self.const(d) is None]
            if not unresolved:
                self.unsupported(v, value, "no integer lowering for this operation (float op outside a quantized pattern?)")
                return
            stack.extend(unresolved)
        self.unsupported(var, self.defs.get(var, var), "output could not be lowered")


@relax.expr_functor.mutator
class _LoweringMutator(relax.PyExprMutator):
    """Rewrites each binding the driver lowers into its kernel call(s), bound to a
    Var named after the one it replaces (the model's tensor name); keeps every
    other binding (the float ones become dead and are removed afterwards)."""

    def __init__(self, driver: LoweringDriver):
        super().__init__()
        self.driver = driver

    def visit_var_binding_(self, binding: relax.VarBinding) -> None:
        var = binding.var
        out = self.driver.lower_binding(var, binding.value)
        if out is None:
            super().visit_var_binding_(binding)
            return
        is_output = not isinstance(var, relax.DataflowVar)  # read after its dataflow block
        if isinstance(out, relax.Var) and not (is_output and isinstance(out, relax.DataflowVar)):
            # An alias, or a value passed through unchanged: no binding of its own
            # (unless a dataflow value must leave its block through this Var).
            self.set_var_remap(var, out)
            return
        new_var = self._emit(out, var.name, output=is_output)
        self.set_var_remap(var, new_var)
        self.driver.lowered[var] = new_var

    def _emit(self, expr, name: str, output: bool = False) -> relax.Var:
        """Emit ``expr`` with every nested call (e.g. a concat input's requantization) as a binding of its own."""
        if isinstance(expr, relax.Var):
            return self.builder_.emit_output(expr, name_hint=name) if output else expr
        new_args = []
        for arg in expr.args:
            if isinstance(arg, tvm.ir.Tuple):
                arg = tvm.ir.Tuple([self._emit(f, _derived_name(f) or "") if isinstance(f, relax.Call) else f
                                    for f in arg.fields])
            elif isinstance(arg, relax.Call):
                arg = self._emit(arg, _derived_name(arg) or "")
            new_args.append(arg)
        call = relax.Call(expr.op, new_args, expr.attrs, expr.ty_args)
        if output:
            return self.builder_.emit_output(call, name_hint=name)
        return self.builder_.emit(call, name_hint=name)


def _derived_name(call) -> Optional[str]:
    """Name of a kernel the lowering adds (no model tensor of its own): a concat
    input's requantization is named after the tensor it requantizes."""
    k = parse_kernel_call(call)
    if k is not None and k.kernel == "te_requantize_s8" and k.tensors and isinstance(k.tensors[0], relax.Var):
        return f"{k.tensors[0].name}[requantized]"
    return None


def _holds_qdq(func: relax.Function) -> bool:
    """Whether a Relax function computes on quantized values: quantize/dequantize,
    kernel calls, or int8 operations (an int8 model of pure data movement)."""
    found = []

    def visit(e):
        if not isinstance(e, relax.Call) or not isinstance(e.op, tvm.ir.Op):
            return
        ty = getattr(e, "ty", None)
        types = list(ty.fields) if isinstance(ty, relax.TupleType) else [ty]  # e.g. a SPLIT's parts
        types += [getattr(a, "ty", None) for a in e.args]  # e.g. ARG_MAX of an int8 tensor
        if e.op.name in ("relax.quantize", "relax.dequantize", "relax.call_dps_packed") or any(
                isinstance(t, relax.TensorType) and str(t.dtype) in ACTIVATION_RANGE for t in types):
            found.append(e)

    relax.analysis.post_order_visit(func.body, visit)
    return bool(found)


@tvm.transform.module_pass(opt_level=0, name="LowerToIntegerKernels")
class LowerToIntegerKernels:
    """Replace quantize/dequantize patterns with TFLM-exact int8 kernel calls.

    Lowers every Relax function of the module that holds QDQ Relax (keeping its
    name and attributes) and leaves the other functions as they are.  Raises
    UnsupportedModelError naming every binding that no pattern covers.
    """

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        out = tvm.IRModule(dict(mod.functions), attrs=mod.attrs)
        for gvar, func in mod.functions.items():
            if isinstance(func, relax.Function) and _holds_qdq(func):
                out[gvar] = LoweringDriver(func, gvar.name_hint).run()
        return out
