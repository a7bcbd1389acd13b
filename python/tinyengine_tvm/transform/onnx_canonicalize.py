"""CanonicalizeONNXQDQ: TVM's NCHW ONNX QDQ Relax -> the NHWC QDQ form of the integer lowering.

``tvm.relax.frontend.onnx.from_onnx`` imports an ONNX QDQ model as NCHW float
operators between ``R.dequantize`` and ``R.quantize`` (conv2d NCHW/OIHW with the
bias reshaped to ``[1, O, 1, 1]``, Gemm weights permuted after their
dequantize, Clip as ``call_tir`` maximum/minimum, Pad as a ``call_tir`` whose
widths only exist inside the TIR, ...).  :class:`LowerToIntegerKernels`
understands the form TVM's *TFLite* importer produces, whose kernels are all
NHWC.  This pass does the one job of rewriting the former into the latter.

It rebuilds ``main`` quantized value by quantized value.  Every int8 value (a
``QuantizeLinear`` result or an int8 input) is kept in a *layout*: a
permutation ``p`` such that the stored tensor is ``transpose(onnx_tensor, p)``.
Inputs start in ONNX's own layout; convolutions, pools and resizes produce
NHWC (``p = (0, 2, 3, 1)``); element-wise operators, concat, mean, pad and
softmax work in whatever layout their input already has (attributes and axes
are mapped); Reshape/Flatten read the ONNX layout so the flattening order stays
ONNX's; Transpose only changes the layout, moving no data.  A value needed in
another layout is converted with an int8 ``permute_dims`` (``te_transpose_s8``)
or, when only size-1 axes move, a reshape.  The model's inputs and outputs keep
their ONNX (NCHW) shapes, so conversions appear at the boundary.

Operator by operator (q = quantize, dq = dequantize, all per-tensor int8):

* Conv: ``conv2d`` NHWC with the OIHW weights (grouped convolutions become
  block-diagonal dense weights, exact), bias as a 1-D ``dq(int32)``.
* Gemm/MatMul: the weight ``permute_dims`` is folded into the constant.
* Relu/Clip after an operator: an int8 ``clip`` after its ``quantize`` (the
  TFLite importer's fused activation), bounds rounded as onnxruntime does.
* AveragePool: when no padding is excluded from the divisor (no pads or
  ``count_include_pad=1``) a depthwise ``conv2d`` with equal weights (64, of
  scale ``1/(64*kh*kw)``: one rounding); otherwise TFLite's int8
  ``avg_pool2d`` form in the input quantization followed by a requantization.
* GlobalAveragePool: ``mean`` over the spatial axes (TFLM's MEAN).
* MaxPool, Pad, Resize (nearest), Reshape, Transpose: int8 data movement (plus
  a requantization when the output quantization differs; Pad's float value is
  quantized with the output parameters).  Resize scales come from the
  function attribute ``tinyengine.onnx_resize`` (TVM's Relax loses them); Resize
  picks the TFLite index rule (asymmetric / align_corners / half_pixel) whose
  source pixels equal ONNX's for the model's sizes, or is refused.
* Concat: inputs requantized to the output's parameters, axis mapped.
* Softmax/Sigmoid: quantized at the kernels' ``(1/256, -128)``, then
  requantized if the model asks for other parameters.
* Sub, LeakyRelu, PRelu (the slope laid out like its operand, as the
  ``where(x >= 0, x, x * slope)`` the lowering reads): in the operand's layout.
* Tanh: quantized at the kernel's ``(1/128, 0)``, then requantized.
* MatMul of two activations: ``matmul`` of both in the ONNX layout (BATCH_MATMUL).
* Slice, Split, Gather: int8 ``strided_slice`` / ``split`` / ``take`` (axes
  mapped to the layout; Gather in the ONNX layout, negative indices made
  positive), then a requantization when the output's parameters differ.
* ReduceMean/ReduceMax: over a layout where the reduced axes are adjacent
  (keepdims=0 drops them from the layout); the max in the input's quantization
  (TFLM's REDUCE_MAX compares raw values), then requantized.
* ConvTranspose: ``conv2d_transpose`` NHWC with the IOHW weights (groups as
  block-diagonal dense weights, dilations as zeros between the taps,
  output_padding as that much less end padding).
* LayerNormalization: ``layer_norm`` over the last axis with gamma/beta
  dequantized to float constants (the kernel folds them into its multipliers).
* Requantizations by a ratio below 1/2 are written as a multiplication by 1.0
  (int8 64 at scale 1/64) so TFLM's fixed point rounds once.

The float graph is never evaluated: the result only feeds the integer lowering.
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from ..frontend.tensor_names import rename_vars
from .relax_utils import const_value, resolve
from .relax_utils import dtype_of as _dtype
from .relax_utils import op_name as _op_name
from .relax_utils import shape_of as _shape

NHWC = (0, 2, 3, 1)
_SOFTMAX_SCALE, _SOFTMAX_ZP = float(np.float32(1.0 / 256.0)), -128
_TANH_SCALE = float(np.float32(1.0 / 128.0))
_Tuple = relax.Tuple if hasattr(relax, "Tuple") else tvm.ir.Tuple


def _layout_label(layout: Sequence[int]) -> str:
    """How a layout conversion is named: NHWC/NCHW for 4-D, else the permutation."""
    layout = tuple(layout)
    if layout == NHWC:
        return "NHWC"
    if layout == _ident(len(layout)):
        return "NCHW" if len(layout) == 4 else "ONNX layout"
    return "layout " + ",".join(str(a) for a in layout)


def _ident(rank: int) -> Tuple[int, ...]:
    return tuple(range(rank))


@dataclasses.dataclass
class _Int8:
    """An int8 value of the rebuilt function: the ONNX tensor ``transpose(x, layout)``."""

    expr: relax.Expr
    layout: Tuple[int, ...]
    shape: List[int]          # ONNX shape
    scale: float
    zero_point: int
    data: Optional[np.ndarray] = None  # set for constants (in ONNX layout)

    @property
    def physical_shape(self) -> List[int]:
        return [self.shape[a] for a in self.layout]


def _fmt_list(values) -> str:
    flat = [int(v) for v in np.ravel(values)]
    return str(flat[:8])[:-1] + ", ...]" if len(flat) > 8 else str(flat)


def _round_half_even_f32(x, scale) -> float:
    """onnxruntime's QuantizeLinear rounding: nearbyint(float32(x) / float32(scale))."""
    return float(np.rint(np.float32(x) / np.float32(scale)))


# ----------------------------------------------------------------- resize maps
def _onnx_nearest_map(out_size: int, in_size: int, scale: float, coord: str, nearest: str) -> Optional[List[int]]:
    """Source index of every output index under ONNX Resize(nearest), float32 like onnxruntime."""
    f = np.float32
    res = []
    for x in range(out_size):
        xr = f(x)
        if coord == "half_pixel":
            xo = (xr + f(0.5)) / f(scale) - f(0.5)
        elif coord == "pytorch_half_pixel":
            xo = (xr + f(0.5)) / f(scale) - f(0.5) if out_size > 1 else f(0.0)
        elif coord == "align_corners":
            xo = f(0.0) if out_size == 1 else xr * f(in_size - 1) / f(out_size - 1)
        elif coord == "asymmetric":
            xo = xr / f(scale)
        elif coord == "tf_half_pixel_for_nn":
            xo = (xr + f(0.5)) / f(scale)
        else:
            return None
        fl = np.floor(xo)
        if nearest == "round_prefer_floor":
            idx = fl if xo == fl + f(0.5) else np.sign(xo) * np.floor(np.abs(xo) + f(0.5))
        elif nearest == "round_prefer_ceil":
            idx = np.sign(xo) * np.floor(np.abs(xo) + f(0.5))
        elif nearest == "floor":
            idx = fl
        elif nearest == "ceil":
            idx = np.ceil(xo)
        else:
            return None
        res.append(int(min(max(int(idx), 0), in_size - 1)))
    return res


def _tflite_nearest_map(out_size: int, in_size: int, align: bool, half: bool) -> List[int]:
    """te_resize_nearest_s8's (TFLite's) source index rule, float32."""
    f = np.float32
    scale = f(in_size - 1) / f(out_size - 1) if align and out_size > 1 else f(in_size) / f(out_size)
    off = f(0.5) if half else f(0.0)
    res = []
    for x in range(out_size):
        pos = (f(x) + off) * scale
        src = int(np.sign(pos) * np.floor(np.abs(pos) + f(0.5))) if align else int(np.floor(pos))
        src = min(src, in_size - 1)
        if half:
            src = max(src, 0)
        res.append(src)
    return res


# (coordinate_transformation_mode, rounding_method) that name each TFLite flag combination.
_TFLITE_RESIZE_MODES = (((False, False), "asymmetric", "floor"),
                        ((True, False), "align_corners", "round_prefer_ceil"),
                        ((False, True), "half_pixel", "round_prefer_ceil"))


class _Canonicalizer:
    """Rebuilds one NCHW ONNX QDQ ``main`` in the NHWC QDQ form."""

    def __init__(self, func: relax.Function):
        self.func = func
        attrs = func.attrs if func.attrs is not None else {}
        # Resize scales and ONNX modes by output tensor (frontend/onnx.py RESIZE_ATTR).
        self.resizes = dict(attrs["tinyengine.onnx_resize"]) if "tinyengine.onnx_resize" in attrs else {}
        self.defs: Dict[relax.Var, relax.Expr] = {}
        self.bindings = []
        for block in func.body.blocks:
            for b in block.bindings:
                self.bindings.append(b)
                self.defs[b.var] = b.value
        self.params = list(func.params)
        self.values: Dict[relax.Var, _Int8] = {}
        self._layout_cache: Dict[tuple, _Int8] = {}
        self._dq_cache: Dict[tuple, relax.Expr] = {}
        self._splits: Dict[tuple, relax.Expr] = {}
        self.problems: List[Tuple[str, str, str]] = []
        self.failed: set = set()  # int8 values that could not be rebuilt (already reported)
        self.bb: Optional[relax.BlockBuilder] = None
        # (new Var, the value it derives from, what it is): named after that value at the end
        self._derived: List[Tuple[relax.Expr, relax.Expr, str]] = []

    # ------------------------------------------------------------ helpers
    def _resolve(self, expr):
        return resolve(expr, self.defs)

    def _const(self, expr) -> Optional[np.ndarray]:
        # Constants, and Clip bounds: where(isnan(c), inf, c); no folding through views.
        return const_value(expr, self.defs, views=False, clip_bounds=True)

    def _problem(self, op, where, reason):
        self.problems.append((op, where, reason))

    def _reads_failed(self, expr) -> bool:
        """Whether ``expr`` depends on an int8 value that already failed (no second report)."""
        stack, seen = [expr], set()
        while stack:
            e = stack.pop()
            for v in relax.analysis.free_vars(e) if not isinstance(e, relax.Var) else [e]:
                if v in seen:
                    continue
                seen.add(v)
                if v in self.failed:
                    return True
                if v in self.defs and v not in self.values:
                    stack.append(self.defs[v])
        return False

    def _emit(self, expr, name=None) -> relax.Expr:
        return self.bb.emit(expr, name_hint=name) if name else self.bb.emit(expr)

    @staticmethod
    def _qparam_consts(scale: float, zp: int):
        return relax.const(np.float32(scale), "float32"), relax.const(int(zp), "int8")

    def _quantize(self, f, scale, zp, name="q") -> relax.Expr:
        s, z = self._qparam_consts(scale, zp)
        return self._emit(relax.op.quantize(f, s, z, axis=-1, out_dtype="int8"), name)

    def _dequantize(self, v: _Int8) -> relax.Expr:
        key = (v.expr, v.scale, v.zero_point)
        if key in self._dq_cache:
            return self._dq_cache[key]
        s, z = self._qparam_consts(v.scale, v.zero_point)
        out = self._emit(relax.op.dequantize(v.expr, s, z, axis=-1, out_dtype="float32"), "dq")
        self._dq_cache[key] = out
        return out

    def _requantize(self, v: _Int8, scale: float, zp: int) -> _Int8:
        """``v`` in the quantization (scale, zp): itself when equal, else quantize(dequantize(v))."""
        if np.float32(v.scale) == np.float32(scale) and v.zero_point == zp:
            return v
        if v.scale / scale >= 0.5:
            q = self._quantize(self._dequantize(v), scale, zp, "requantize")
        else:
            # A ratio below 1/2 makes TFLM's requantization round twice (a
            # rounding doubling multiply, then a rounding right shift of 1 or
            # more).  Multiplying by 1.0 written as int8 64 at scale 1/64 gives
            # the multiply 64 times more headroom, so the result rounds once, as
            # onnxruntime's float requantization does.
            one = self._dequantize(_Int8(relax.const(np.full([1] * len(v.shape), 64, np.int8)),
                                         _ident(len(v.shape)), [1] * len(v.shape), 1.0 / 64.0, 0))
            q = self._quantize(self._emit(relax.op.multiply(self._dequantize(v), one), "rescale"),
                               scale, zp, "requantize")
        self._derived.append((q, v.expr, "requantized"))
        return _Int8(q, v.layout, v.shape, float(np.float32(scale)), zp)

    def _to_layout(self, v: _Int8, layout: Sequence[int]) -> _Int8:
        layout = tuple(layout)
        if v.layout == layout:
            return v
        key = (v.expr, layout, v.scale, v.zero_point)
        if key in self._layout_cache:
            return self._layout_cache[key]
        phys = [v.shape[a] for a in layout]
        if v.data is not None:
            data = np.ascontiguousarray(np.transpose(v.data, layout))
            out = _Int8(relax.const(data), layout, v.shape, v.scale, v.zero_point, v.data)
        else:
            moved = [a for a in v.layout if v.shape[a] != 1] != [a for a in layout if v.shape[a] != 1]
            if moved:
                perm = [v.layout.index(layout[i]) for i in range(len(layout))]
                expr = self._emit(relax.op.permute_dims(v.expr, perm), "transpose")
            else:  # only size-1 axes move: the bytes are already in order
                expr = self._emit(relax.op.reshape(v.expr, phys), "view")
            out = _Int8(expr, layout, v.shape, v.scale, v.zero_point)
            self._derived.append((expr, v.expr, _layout_label(layout)))
        self._layout_cache[key] = out
        return out

    def _available(self, v: _Int8, layout) -> bool:
        return v.layout == tuple(layout) or (v.expr, tuple(layout), v.scale, v.zero_point) in self._layout_cache

    def _pick_layout(self, vals: Sequence[_Int8], rank: int) -> Tuple[int, ...]:
        """The layout of a multi-input operator: the one needing the fewest new transposes
        (NHWC first for 4-D, then the first input's)."""
        acts = [v for v in vals if v.data is None and len(v.shape) == rank]
        candidates = ([NHWC] if rank == 4 else []) + [v.layout for v in acts] + [_ident(rank)]
        return min(candidates, key=lambda lay: sum(not self._available(v, lay) for v in acts))

    def _int8_of(self, x) -> Optional[_Int8]:
        """The rebuilt int8 value of an old int8 expression (Var, param or constant)."""
        if isinstance(x, relax.Var) and x in self.values:
            return self.values[x]
        while isinstance(x, relax.Var) and x in self.defs and isinstance(self.defs[x], relax.Var):
            x = self.defs[x]
            if x in self.values:
                return self.values[x]
        return None

    def _operand(self, float_expr, layout: Optional[Sequence[int]] = None) -> Optional[_Int8]:
        """The int8 value behind ``dequantize(x)`` (per-tensor), optionally in ``layout``."""
        e = self._resolve(float_expr)
        if _op_name(e) != "relax.dequantize":
            return None
        scale, zp = self._const(e.args[1]), self._const(e.args[2])
        if scale is None or zp is None or np.size(scale) != 1:
            return None
        scale, zp = float(np.float32(np.ravel(scale)[0])), int(np.ravel(zp)[0])
        data = self._const(e.args[0])
        if data is not None:
            if data.dtype != np.int8:
                return None
            v = _Int8(relax.const(data), _ident(data.ndim), list(data.shape), scale, zp, data)
        else:
            src = self._int8_of(e.args[0])
            if src is None:
                return None
            if (np.float32(src.scale), src.zero_point) != (np.float32(scale), zp):
                # The model dequantizes with other parameters than it quantized with.
                v = _Int8(src.expr, src.layout, src.shape, scale, zp)
            else:
                v = src
        return v if layout is None else self._to_layout(v, layout)

    # --------------------------------------------------------------- walk
    def run(self) -> relax.Function:
        ret = self.func.body.body
        if isinstance(ret, relax.Var) and isinstance(self.defs.get(ret), _Tuple):
            ret = self.defs[ret]
        rets = list(ret.fields) if isinstance(ret, _Tuple) else [ret]
        needed = self._needed(rets)
        self.bb = relax.BlockBuilder()
        with self.bb.function("main", self.params, attrs={"num_input": len(self.params)}):
            with self.bb.dataflow():
                for p in self.params:
                    if _dtype(p) == "int8":
                        self.values[p] = _Int8(p, _ident(len(_shape(p))), _shape(p), 0.0, 0)
                for b in self.bindings:
                    if b.var not in needed or not isinstance(b.var.ty, relax.TensorType):
                        continue
                    if _dtype(b.var) != "int8":
                        continue
                    if isinstance(b.value, relax.Var):
                        if b.value in self.values:
                            self.values[b.var] = self.values[b.value]
                        continue
                    if _op_name(b.value) == "relax.quantize":
                        self._anchor(b.var, b.value)
                    elif self._const(b.var) is None:
                        self._problem(_op_name(b.value) or type(b.value).__name__, b.var.name,
                                      "int8 operation outside a QuantizeLinear/DequantizeLinear pattern")
                outs = [self._output(r) for r in rets]
                if self.problems:  # close the function cleanly, then report
                    outs = [relax.const(0, "int8")]
                out_names = [r.name if isinstance(r, relax.Var) else "" for r in rets]
                gvs = [self.bb.emit_output(o, name_hint=n) for o, n in zip(outs, out_names)]
            self.bb.emit_func_output(gvs[0] if len(gvs) == 1 else _Tuple(gvs))
        if self.problems:
            raise UnsupportedModelError(self.problems)
        return rename_vars(self.bb.get()["main"], self._value_names())

    def _value_names(self) -> Dict[relax.Var, str]:
        """New Var -> name: each rebuilt int8 value takes the name of the Var it
        rebuilds (the ONNX tensor's name when the import recorded it, see
        ``frontend.tensor_names``); layout conversions and requantizations are
        named after their source (``x[NHWC]``, ``x[requantized]``)."""
        names: Dict[relax.Var, str] = {}
        params = set(self.params)
        for var, v in self.values.items():
            if isinstance(v.expr, relax.Var) and v.expr not in params and v.expr not in names:
                names[v.expr] = var.name
        for new, src, what in self._derived:
            base = names.get(src, src.name if isinstance(src, relax.Var) else None)
            if isinstance(new, relax.Var) and new not in names and new not in params and base is not None:
                names[new] = f"{base}[{what}]"
        return names

    def _needed(self, rets) -> set:
        needed, stack = set(), [r for r in rets if isinstance(r, relax.Var)]
        while stack:
            v = stack.pop()
            if v in needed:
                continue
            needed.add(v)
            if v in self.defs:
                stack.extend(relax.analysis.free_vars(self.defs[v]))
        return needed

    def _output(self, r):
        v = self._int8_of(r) if isinstance(r, relax.Var) else None
        if v is not None:
            return self._to_layout(v, _ident(len(v.shape))).expr
        if isinstance(r, relax.Var) and r in self.params:
            return r
        e = self._resolve(r)
        if _op_name(e) == "relax.dequantize":
            src = self._operand(r)
            if src is not None:
                src = self._to_layout(src, _ident(len(src.shape)))
                s, z = self._qparam_consts(src.scale, src.zero_point)
                return relax.op.dequantize(src.expr, s, z, axis=-1, out_dtype="float32")
        if not self._reads_failed(r):
            self._problem(_op_name(e) or "output", getattr(r, "name", str(r)),
                          "a model output must be the result of QuantizeLinear or DequantizeLinear")
        return r

    # ------------------------------------------------------------- anchors
    def _anchor(self, var, q):
        s_out, zp_out = self._const(q.args[1]), self._const(q.args[2])
        if s_out is None or zp_out is None or np.size(s_out) != 1:
            self._problem("relax.quantize", var.name, "output quantization must be per-tensor and constant")
            self.failed.add(var)
            return
        s_out, zp_out = float(np.float32(np.ravel(s_out)[0])), int(np.ravel(zp_out)[0])
        body, lo, hi, act = q.args[0], -np.inf, np.inf, False
        e = self._resolve(body)
        while True:  # activations between the operator and its quantize
            name = _op_name(e)
            if name == "relax.nn.relu":
                lo, act, body = max(lo, 0.0), True, e.args[0]
            elif name == "relax.call_tir" and str(e.args[0].name_hint).rstrip("0123456789") in ("maximum", "minimum"):
                fields = list(e.args[1].fields)
                bound = self._const(fields[1]) if len(fields) > 1 else None
                if bound is None:
                    self._problem("Clip", var.name, "Clip bounds must be constant")
                    self.failed.add(var)
                    return
                b = float(np.ravel(bound)[0])
                if str(e.args[0].name_hint).startswith("maximum"):
                    lo = max(lo, b)
                else:
                    hi = min(hi, b)
                act, body = True, fields[0]
            elif name == "relax.clip" and _dtype(e) == "float32":
                lo, hi = max(lo, float(e.args[1].value)), min(hi, float(e.args[2].value))
                act, body = True, e.args[0]
            else:
                break
            e = self._resolve(body)
        ctx = dict(var=var, s_out=s_out, zp_out=zp_out)
        if isinstance(body, relax.Var) and body in self.params and _dtype(body) == "float32":
            out = _Int8(self._quantize(body, s_out, zp_out, "quantize_input"), _ident(len(_shape(body))),
                        _shape(body), s_out, zp_out)
        else:
            handler = {
                "relax.dequantize": self._requantize_op,
                "relax.add": self._add,
                "relax.nn.conv2d": self._conv,
                "relax.matmul": self._matmul,
                "relax.multiply": self._binary,
                "relax.nn.avg_pool2d": self._avg_pool,
                "relax.nn.max_pool2d": self._max_pool,
                "relax.mean": self._mean,
                "relax.nn.pad": self._pad,
                "relax.reshape": self._reshape,
                "relax.permute_dims": self._transpose,
                "relax.concat": self._concat,
                "relax.nn.softmax": self._softmax,
                "relax.sigmoid": self._sigmoid,
                "relax.image.resize2d": self._resize,
                "relax.subtract": self._binary,
                "relax.nn.leakyrelu": self._leaky_relu,
                "relax.tanh": self._tanh,
                "relax.nn.prelu": self._prelu,
                "relax.strided_slice": self._slice,
                "relax.take": self._gather,
                "relax.max": self._reduce_max,
                "relax.nn.conv2d_transpose": self._conv_transpose,
                "relax.nn.layer_norm": self._layer_norm,
            }.get(_op_name(e))
            if isinstance(e, relax.TupleGetItem) and _op_name(self._resolve(e.tuple_value)) == "relax.split":
                handler = self._split_part
            reported = len(self.problems)
            out = handler(e, ctx) if handler is not None else None
            if out is None:
                self.failed.add(var)
                if len(self.problems) == reported and not self._reads_failed(q):
                    self._problem(_op_name(e) or type(e).__name__, var.name,
                                  "no integer lowering for this quantized pattern")
                return
        if act:
            qlo = -128 if lo == -np.inf else int(np.clip(zp_out + _round_half_even_f32(lo, s_out), -128, 127))
            qhi = 127 if hi == np.inf else int(np.clip(zp_out + _round_half_even_f32(hi, s_out), -128, 127))
            if (qlo, qhi) != (-128, 127):
                out = dataclasses.replace(out, expr=self._emit(relax.op.clip(out.expr, float(qlo), float(qhi)), "act"),
                                          data=None)
        self.values[var] = out

    # ------------------------------------------------------------ operators
    def _requantize_op(self, dq, ctx) -> Optional[_Int8]:
        v = self._operand(dq)
        if v is None:
            return None
        return self._requantize(v, ctx["s_out"], ctx["zp_out"])

    def _add(self, add, ctx):
        lhs = self._resolve(add.args[0])
        if _op_name(lhs) == "relax.nn.conv2d":
            return self._conv(lhs, ctx, bias=add.args[1])
        if _op_name(lhs) == "relax.matmul":
            return self._matmul(lhs, ctx, bias=add.args[1])
        if _op_name(lhs) == "relax.nn.conv2d_transpose":
            return self._conv_transpose(lhs, ctx, bias=add.args[1])
        return self._binary(add, ctx)

    def _weights(self, w_expr):
        """(int8 array, scale array, zp array, axis) of ``dequantize(const)``."""
        e = self._resolve(w_expr)
        if _op_name(e) != "relax.dequantize":
            return None
        w, s, z = self._const(e.args[0]), self._const(e.args[1]), self._const(e.args[2])
        if w is None or s is None or z is None:
            return None
        return w, np.atleast_1d(s).astype(np.float32), np.atleast_1d(z), int(e.attrs.axis)

    def _bias(self, bias_expr):
        """1-D ``dequantize(int32 const)`` of a bias given as dq or reshape(dq)."""
        e = self._resolve(bias_expr)
        if _op_name(e) == "relax.reshape":
            e = self._resolve(e.args[0])
        b = self._weights(e)
        if b is None or b[0].dtype != np.int32:
            return None
        data, s, z, _ = b
        scale = relax.const(s if s.size > 1 else np.float32(s[0]))
        zp = relax.const(z.astype(np.int32) if z.size > 1 else np.int32(z[0]))
        return self._emit(relax.op.dequantize(relax.const(data.reshape(-1)), scale, zp, axis=0,
                                              out_dtype="float32"), "bias")

    def _conv_operands(self, conv, kernel_layout):
        """(NHWC input, int8 weights) of an NCHW convolution with ``kernel_layout``, or None."""
        a = conv.attrs
        if str(a.data_layout) != "NCHW" or str(a.kernel_layout) != kernel_layout:
            return None
        x = self._operand(conv.args[0], NHWC)
        w = self._weights(conv.args[1])
        if x is None or w is None or w[0].dtype != np.int8:
            return None
        return x, w

    def _conv(self, conv, ctx, bias=None):
        a = conv.attrs
        operands = self._conv_operands(conv, "OIHW")
        if operands is None:
            return None
        x, (wq, ws, wz, axis) = operands
        groups, cin = int(a.groups), x.shape[1]
        if 1 < groups and not (groups == cin and wq.shape[1] == 1):
            # Grouped convolution: block-diagonal dense weights give the same sums.
            o, cg = wq.shape[0], wq.shape[1]
            full = np.zeros((o, cin) + wq.shape[2:], np.int8)
            per_group = o // groups
            for oc in range(o):
                g = oc // per_group
                full[oc, g * cg:(g + 1) * cg] = wq[oc]
            wq, groups = full, 1
        scale = relax.const(ws if ws.size > 1 else np.float32(ws[0]))
        zp = relax.const(wz.astype(np.int8) if wz.size > 1 else np.int8(wz[0]))
        wdq = self._emit(relax.op.dequantize(relax.const(wq), scale, zp, axis=0, out_dtype="float32"), "weights")
        y = self._emit(relax.op.nn.conv2d(
            self._dequantize(x), wdq, strides=[int(s) for s in a.strides], padding=[int(p) for p in a.padding],
            dilation=[int(d) for d in a.dilation], groups=groups, data_layout="NHWC", kernel_layout="OIHW",
            out_layout="NHWC"), "conv")
        if bias is not None:
            b = self._bias(bias)
            if b is None:
                return None
            y = self._emit(relax.op.add(y, b), "conv_bias")
        out_shape = _shape(conv)
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), NHWC, out_shape, ctx["s_out"], ctx["zp_out"])

    def _matmul(self, mm, ctx, bias=None):
        x = self._operand(mm.args[0])
        if x is None:
            return None
        x = self._to_layout(x, _ident(len(x.shape)))
        rhs = self._operand(mm.args[1])
        if bias is None and rhs is not None and rhs.data is None:
            return self._matmul_activations(mm, x, rhs, ctx)
        e = self._resolve(mm.args[1])
        transposed = _op_name(e) == "relax.permute_dims"
        if transposed:
            axes = [int(v) for v in e.attrs.axes] if e.attrs.axes is not None else [1, 0]
            if axes != [1, 0]:
                return None
            e = e.args[0]
        w = self._weights(e)
        if w is None or w[0].dtype != np.int8 or w[0].ndim != 2:
            return None
        wq, ws, wz, axis = w
        if transposed:
            wq, axis = np.ascontiguousarray(wq.T), 1 - axis
        if ws.size > 1:
            if np.any(wz != 0) or axis != 1:
                return None
            zp = relax.const(np.int8(0))
            scale = relax.const(ws)
        else:
            zp, scale = relax.const(np.int8(wz[0])), relax.const(np.float32(ws[0]))
        wdq = self._emit(relax.op.dequantize(relax.const(wq), scale, zp, axis=1, out_dtype="float32"), "weights")
        y = self._emit(relax.op.matmul(self._dequantize(x), wdq), "matmul")
        if bias is not None:
            b = self._bias(bias)
            if b is None:
                return None
            y = self._emit(relax.op.add(y, b), "matmul_bias")
        out_shape = _shape(mm)
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), _ident(len(out_shape)), out_shape,
                     ctx["s_out"], ctx["zp_out"])

    def _binary(self, e, ctx):
        a, b = self._operand(e.args[0]), self._operand(e.args[1])
        if a is None or b is None:
            return None
        out_shape = _shape(e)
        rank = len(out_shape)
        layout = self._pick_layout([a, b], rank)
        ops = []
        for v in (a, b):
            if len(v.shape) < rank:
                full = [1] * (rank - len(v.shape)) + list(v.shape)
                if v.data is not None:
                    data = v.data.reshape(full)
                    v = _Int8(relax.const(data), _ident(rank), full, v.scale, v.zero_point, data)
                else:
                    flat = self._to_layout(v, _ident(len(v.shape)))
                    v = _Int8(self._emit(relax.op.reshape(flat.expr, full), "view"), _ident(rank), full,
                              v.scale, v.zero_point)
            ops.append(self._dequantize(self._to_layout(v, layout)))
        fn, what = {"relax.add": (relax.op.add, "add"), "relax.subtract": (relax.op.subtract, "sub"),
                    "relax.multiply": (relax.op.multiply, "mul")}[_op_name(e)]
        y = self._emit(fn(ops[0], ops[1]), what)
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), layout, out_shape, ctx["s_out"], ctx["zp_out"])

    def _pool_common(self, pool):
        a = pool.attrs
        if str(a.layout) != "NCHW" or any(int(d) != 1 for d in a.dilation):
            return None
        return ([int(k) for k in a.pool_size], [int(s) for s in a.strides], [int(p) for p in a.padding])

    def _avg_pool(self, pool, ctx):
        common = self._pool_common(pool)
        x = self._operand(pool.args[0], NHWC)
        if common is None or x is None:
            return None
        (kh, kw), strides, padding = common
        out_shape = _shape(pool)
        c = x.shape[1]
        if bool(pool.attrs.count_include_pad) or not any(padding):
            # Every window divides by kh*kw: a depthwise convolution with equal
            # weights computes it with one rounding.  The weights are 64 with scale
            # 1/(64*kh*kw) rather than 1 with 1/(kh*kw): the larger accumulator
            # gives the fixed-point requantization a larger right shift, so its
            # intermediate rounding (TFLM's MultiplyByQuantizedMultiplier) is
            # negligible and the result rounds like onnxruntime's float division.
            wdq = self._emit(relax.op.dequantize(
                relax.const(np.full((c, 1, kh, kw), 64, np.int8)), relax.const(np.float32(1.0 / (64 * kh * kw))),
                relax.const(np.int8(0)), axis=0, out_dtype="float32"), "avg_weights")
            y = self._emit(relax.op.nn.conv2d(
                self._dequantize(x), wdq, strides=strides, padding=padding, groups=c,
                data_layout="NHWC", kernel_layout="OIHW", out_layout="NHWC"), "avg_pool")
            if _shape(y) != [out_shape[i] for i in NHWC]:
                self._problem("AveragePool", ctx["var"].name, "ceil_mode windows past the input edge are not supported")
                return None
            return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), NHWC, out_shape,
                         ctx["s_out"], ctx["zp_out"])
        # Padding excluded from the divisor: TFLite's AVERAGE_POOL_2D (int8, same
        # quantization), then a requantization to the output's parameters.
        wide = self._emit(relax.op.astype(x.expr, "int32"), "widen")
        pooled = self._emit(relax.op.nn.avg_pool2d(
            wide, [kh, kw], strides, padding, ceil_mode=bool(pool.attrs.ceil_mode), count_include_pad=False,
            layout="NHWC", out_layout="NHWC"), "avg_pool")
        y = self._emit(relax.op.astype(pooled, "int8"), "avg_pool_s8")
        return self._requantize(_Int8(y, NHWC, out_shape, x.scale, x.zero_point), ctx["s_out"], ctx["zp_out"])

    def _max_pool(self, pool, ctx):
        common = self._pool_common(pool)
        x = self._operand(pool.args[0], NHWC)
        if common is None or x is None:
            return None
        kernel, strides, padding = common
        y = self._emit(relax.op.nn.max_pool2d(x.expr, kernel, strides, padding, ceil_mode=bool(pool.attrs.ceil_mode),
                                              layout="NHWC", out_layout="NHWC"), "max_pool")
        out_shape = _shape(pool)
        if _shape(y) != [out_shape[i] for i in NHWC]:
            return None
        return self._requantize(_Int8(y, NHWC, out_shape, x.scale, x.zero_point), ctx["s_out"], ctx["zp_out"])

    def _reduced_layout(self, x: _Int8, axes: List[int]) -> _Int8:
        """``x`` in a layout where ``axes`` are adjacent (a reduction kernel sums one contiguous block)."""
        rank = len(x.shape)
        phys = sorted(x.layout.index(a) for a in axes)
        if phys == list(range(phys[0], phys[-1] + 1)):
            return x
        for layout in ((NHWC,) if rank == 4 else ()) + (_ident(rank),):
            phys = sorted(layout.index(a) for a in axes)
            if phys == list(range(phys[0], phys[-1] + 1)):
                return self._to_layout(x, layout)
        return self._to_layout(x, tuple(a for a in range(rank) if a not in axes) + tuple(axes))

    def _reduce(self, op, ctx, fn, name, s_out, zp_out):
        """``fn`` (mean or max) over the ONNX axes of ``op`` in whatever layout keeps them adjacent;
        without keepdims the output's layout is the input's minus the reduced axes."""
        x = self._operand(op.args[0])
        if x is None:
            return None
        rank = len(x.shape)
        axes = sorted({int(a) % rank for a in op.attrs.axis}) if op.attrs.axis else list(range(rank))
        x = self._reduced_layout(x, axes)
        phys = sorted(x.layout.index(a) for a in axes)
        keep = bool(op.attrs.keepdims)
        y = self._emit(fn(self._dequantize(x), axis=phys, keepdims=keep), name)
        if keep:
            layout = x.layout
        else:
            left = [a for a in x.layout if a not in axes]
            layout = tuple(sorted(left).index(a) for a in left)
        return _Int8(self._quantize(y, s_out, zp_out), layout, _shape(op), s_out, zp_out)

    def _mean(self, mean, ctx):
        return self._reduce(mean, ctx, relax.op.mean, "mean", ctx["s_out"], ctx["zp_out"])

    def _reduce_max(self, op, ctx):
        # The largest value is the same in any quantization: take it in the
        # input's (TFLM's REDUCE_MAX compares raw values), then requantize.
        x = self._operand(op.args[0])
        if x is None:
            return None
        out = self._reduce(op, ctx, relax.op.max, "reduce_max", x.scale, x.zero_point)
        return None if out is None else self._requantize(out, ctx["s_out"], ctx["zp_out"])

    def _pad(self, call, ctx):
        # Constant Pads arrive as relax.nn.pad (frontend/onnx_fixups.py).
        if str(call.attrs.pad_mode) != "constant":
            return None
        x = self._operand(call.args[0])
        if x is None:
            return None
        out_shape = _shape(call)
        widths = [int(w) for w in call.attrs.pad_width]
        before, after = widths[0::2], widths[1::2]
        entry = {"node": ctx["var"].name, "value": float(call.attrs.pad_value)}
        if len(x.shape) > 4:
            self._problem("Pad", entry["node"], "Pad is supported up to 4-D")
            return None
        v = self._requantize(x, ctx["s_out"], ctx["zp_out"])
        widths = []
        for a in v.layout:
            widths += [before[a], after[a]]
        value = int(np.clip(ctx["zp_out"] + _round_half_even_f32(entry["value"], ctx["s_out"]), -128, 127))
        y = self._emit(relax.op.nn.pad(v.expr, widths, "constant", float(value)), "pad")
        return _Int8(y, v.layout, out_shape, v.scale, v.zero_point)

    def _reshape(self, reshape, ctx):
        inner = self._resolve(reshape.args[0])
        if _op_name(inner) == "relax.nn.softmax":
            return self._legacy_softmax(reshape, inner, ctx)
        x = self._operand(reshape.args[0])
        if x is None:
            return None
        x = self._to_layout(x, _ident(len(x.shape)))
        out_shape = _shape(reshape)
        y = self._emit(relax.op.reshape(x.expr, out_shape), "reshape")
        return self._requantize(_Int8(y, _ident(len(out_shape)), out_shape, x.scale, x.zero_point),
                                ctx["s_out"], ctx["zp_out"])

    def _transpose(self, perm_op, ctx):
        x = self._operand(perm_op.args[0])
        if x is None or x.data is not None:
            return None
        rank = len(x.shape)
        perm = [int(a) for a in perm_op.attrs.axes] if perm_op.attrs.axes is not None else list(range(rank))[::-1]
        # Choose the output's layout so that its bytes are exactly the input's.
        layout = tuple(perm.index(x.layout[k]) for k in range(rank))
        return self._requantize(_Int8(x.expr, layout, _shape(perm_op), x.scale, x.zero_point),
                                ctx["s_out"], ctx["zp_out"])

    def _concat(self, cat, ctx):
        parts = [self._operand(f) for f in cat.args[0].fields]
        if any(p is None for p in parts):
            return None
        out_shape = _shape(cat)
        rank = len(out_shape)
        layout = self._pick_layout(parts, rank)
        axis = layout.index(int(cat.attrs.axis) % rank)
        # Inputs quantized differently from the output are requantized first.
        fs = [self._dequantize(self._requantize(self._to_layout(p, layout), ctx["s_out"], ctx["zp_out"]))
              for p in parts]
        y = self._emit(relax.op.concat(fs, axis=axis), "concat")
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), layout, out_shape, ctx["s_out"], ctx["zp_out"])

    def _fixed_output(self, y, layout, out_shape, ctx) -> _Int8:
        """Quantize at the kernels' (1/256, -128), then requantize to the model's parameters."""
        q = _Int8(self._quantize(y, _SOFTMAX_SCALE, _SOFTMAX_ZP), layout, out_shape, _SOFTMAX_SCALE, _SOFTMAX_ZP)
        return self._requantize(q, ctx["s_out"], ctx["zp_out"])

    def _softmax(self, sm, ctx):
        x = self._operand(sm.args[0])
        if x is None:
            return None
        rank = len(x.shape)
        axis = int(sm.attrs.axis) % rank
        if x.layout[-1] != axis:
            if rank == 4 and NHWC[-1] == axis:
                layout = NHWC
            elif axis == rank - 1:
                layout = _ident(rank)
            else:
                layout = tuple(a for a in range(rank) if a != axis) + (axis,)
            x = self._to_layout(x, layout)
        y = self._emit(relax.op.nn.softmax(self._dequantize(x), axis=-1), "softmax")
        return self._fixed_output(y, x.layout, _shape(sm), ctx)

    def _legacy_softmax(self, reshape, sm, ctx):
        """Softmax before opset 13: reshape(softmax(reshape(x), -1)) over the last axis only."""
        pre = self._resolve(sm.args[0])
        if _op_name(pre) != "relax.reshape" or int(sm.attrs.axis) not in (-1, len(_shape(sm)) - 1):
            return None
        x = self._operand(pre.args[0])
        if x is None or _shape(reshape) != x.shape or x.shape[-1] != _shape(sm)[-1]:
            return None
        x = self._to_layout(x, _ident(len(x.shape)))
        y = self._emit(relax.op.nn.softmax(self._dequantize(x), axis=-1), "softmax")
        return self._fixed_output(y, x.layout, x.shape, ctx)

    def _sigmoid(self, sg, ctx):
        x = self._operand(sg.args[0])
        if x is None:
            return None
        y = self._emit(relax.op.sigmoid(self._dequantize(x)), "sigmoid")
        return self._fixed_output(y, x.layout, _shape(sg), ctx)

    def _resize(self, rs, ctx):
        a = rs.attrs
        x = self._operand(rs.args[0], NHWC)
        if x is None or str(a.layout) != "NCHW" or str(a.method) != "nearest_neighbor":
            return None
        # The float resize's own binding carries the ONNX Resize output name.
        names = [str(v.name) for v, e in self.defs.items() if e.same_as(rs)] + [ctx["var"].name]
        recorded = next((self.resizes[n] for n in names if n in self.resizes), None)
        entry = {"node": str(recorded["node"]), "scales": [float(v) for v in recorded["scales"]] if "scales" in recorded
                 else None, "coordinate_transformation_mode": str(recorded["coordinate_transformation_mode"]),
                 "nearest_mode": str(recorded["nearest_mode"])} if recorded is not None else {
            "node": ctx["var"].name, "scales": None,
            "coordinate_transformation_mode": str(a.coordinate_transformation_mode),
            "nearest_mode": str(a.rounding_method)}
        out_shape = _shape(rs)
        maps = []
        for d in (2, 3):
            scale = entry["scales"][d - 2] if entry.get("scales") else out_shape[d] / x.shape[d]
            maps.append(_onnx_nearest_map(out_shape[d], x.shape[d], scale, entry["coordinate_transformation_mode"],
                                          entry["nearest_mode"]))
        choice = None
        for (align, half), mode, rounding in _TFLITE_RESIZE_MODES:
            if all(m is not None and m == _tflite_nearest_map(out_shape[d], x.shape[d], align, half)
                   for d, m in zip((2, 3), maps)):
                choice = (mode, rounding)
                break
        if choice is None:
            self._problem("Resize", entry["node"],
                          f"coordinate_transformation_mode='{entry['coordinate_transformation_mode']}' with "
                          f"nearest_mode='{entry['nearest_mode']}' picks source pixels "
                          f"({x.shape[2]}x{x.shape[3]} -> {out_shape[2]}x{out_shape[3]}) that no int8 resize "
                          "kernel mode (TFLite asymmetric/align_corners/half_pixel) reproduces")
            return None
        y = self._emit(relax.op.image.resize2d(
            x.expr, relax.ShapeExpr([out_shape[2], out_shape[3]]), roi=[0.0, 0.0, 0.0, 0.0], layout="NHWC",
            method="nearest_neighbor", coordinate_transformation_mode=choice[0], rounding_method=choice[1]),
            "resize")
        return self._requantize(_Int8(y, NHWC, out_shape, x.scale, x.zero_point), ctx["s_out"], ctx["zp_out"])

    # ------------------------------------------- activations and data movement
    def _leaky_relu(self, op, ctx):
        x = self._operand(op.args[0])
        if x is None:
            return None
        y = self._emit(relax.op.nn.leakyrelu(self._dequantize(x), float(op.attrs.alpha)), "leaky_relu")
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), x.layout, _shape(op), ctx["s_out"], ctx["zp_out"])

    def _tanh(self, op, ctx):
        x = self._operand(op.args[0])
        if x is None:
            return None
        # TFLM's int8 TANH writes (1/128, 0); other output parameters are one requantization away.
        y = self._emit(relax.op.tanh(self._dequantize(x)), "tanh")
        q = _Int8(self._quantize(y, _TANH_SCALE, 0), x.layout, _shape(op), _TANH_SCALE, 0)
        return self._requantize(q, ctx["s_out"], ctx["zp_out"])

    def _prelu(self, op, ctx):
        x = self._operand(op.args[0])
        e = self._resolve(op.args[1])
        while _op_name(e) in ("relax.reshape", "relax.expand_dims", "relax.squeeze"):
            e = self._resolve(e.args[0])
        slope = self._operand(e)
        if x is None or slope is None or slope.data is None:
            return None
        rank, axis = len(x.shape), int(op.attrs.axis) % len(x.shape)
        values = np.ravel(slope.data)
        full = [1] * rank
        full[axis] = values.size
        if values.size not in (1, x.shape[axis]):
            return None
        data = values.reshape(full)
        alpha = self._to_layout(_Int8(relax.const(data), _ident(rank), full, slope.scale, slope.zero_point, data),
                                x.layout)
        xf = self._dequantize(x)
        y = self._emit(relax.op.where(self._emit(relax.op.greater_equal(xf, relax.const(0.0, "float32")), "is_positive"),
                                      xf, self._emit(relax.op.multiply(xf, self._dequantize(alpha)), "scaled")), "prelu")
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), x.layout, _shape(op), ctx["s_out"], ctx["zp_out"])

    def _slice(self, op, ctx):
        x = self._operand(op.args[0])
        if x is None:
            return None
        axes, begin, end, strides = ([int(f.value) for f in arg.fields] for arg in op.args[1:5])
        rank = len(x.shape)
        phys = [x.layout.index(a % rank) for a in axes]
        y = self._emit(relax.op.strided_slice(x.expr, phys, begin, end, strides, assume_inbound=False), "slice")
        if [int(d) for d in y.ty.shape] != [_shape(op)[a] for a in x.layout]:
            return None
        return self._requantize(_Int8(y, x.layout, _shape(op), x.scale, x.zero_point), ctx["s_out"], ctx["zp_out"])

    def _split_part(self, item, ctx):
        split = self._resolve(item.tuple_value)
        x = self._operand(split.args[0])
        if x is None:
            return None
        rank = len(x.shape)
        axis = int(split.attrs.axis) % rank
        sizes = [int(f.shape[axis]) for f in split.ty.fields]
        key = (x.expr, x.layout, axis, tuple(sizes))
        if key not in self._splits:  # one int8 split serves every part
            cuts = [int(c) for c in np.cumsum(sizes)[:-1]]
            self._splits[key] = self._emit(relax.op.split(x.expr, cuts, axis=x.layout.index(axis)), "split")
        part = self._emit(relax.TupleGetItem(self._splits[key], int(item.index)), "split_part")
        out_shape = [int(d) for d in split.ty.fields[int(item.index)].shape]
        return self._requantize(_Int8(part, x.layout, out_shape, x.scale, x.zero_point), ctx["s_out"], ctx["zp_out"])

    def _gather(self, op, ctx):
        x = self._operand(op.args[0])
        # The importer wraps constant indices as where(i < 0, i + dim, i): read the constant.
        indices = self._const(op.args[1])
        if x is None or indices is None:
            return None
        x = self._to_layout(x, _ident(len(x.shape)))
        axis = int(op.attrs.axis) % len(x.shape)
        dim = x.shape[axis]
        indices = np.asarray(indices).astype(np.int64)
        if np.any(indices < -dim) or np.any(indices >= dim):
            self._problem("Gather", ctx["var"].name, f"indices {_fmt_list(indices)} are outside [-{dim}, {dim})")
            return None
        indices = np.where(indices < 0, indices + dim, indices).astype(np.int32)
        y = self._emit(relax.op.take(x.expr, relax.const(indices), axis=axis), "gather")
        out_shape = _shape(op)
        return self._requantize(_Int8(y, _ident(len(out_shape)), out_shape, x.scale, x.zero_point),
                                ctx["s_out"], ctx["zp_out"])

    def _float_constant(self, expr) -> Optional[np.ndarray]:
        """A float constant, or the float value of ``dequantize(constant)`` (gamma, beta)."""
        c = self._const(expr)
        if c is not None:
            return c.astype(np.float32)
        w = self._weights(expr)
        if w is None:
            return None
        data, scale, zp, axis = w
        shape = [1] * data.ndim
        if scale.size > 1:
            shape[axis % data.ndim] = -1
        return ((data.astype(np.float64) - zp.reshape(shape)) * scale.astype(np.float64).reshape(shape)).astype(
            np.float32)

    def _layer_norm(self, op, ctx):
        x = self._operand(op.args[0])
        gamma, beta = self._float_constant(op.args[1]), self._float_constant(op.args[2])
        rank = len(x.shape) if x is not None else 0
        if x is None or gamma is None or beta is None or [int(a) % rank for a in op.attrs.axes] != [rank - 1]:
            return None
        if x.layout[-1] != rank - 1:
            x = self._to_layout(x, _ident(rank))
        y = self._emit(relax.op.nn.layer_norm(self._dequantize(x), relax.const(np.ravel(gamma)),
                                              relax.const(np.ravel(beta)), axes=[-1],
                                              epsilon=float(op.attrs.epsilon)), "layer_norm")
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), x.layout, _shape(op), ctx["s_out"], ctx["zp_out"])

    def _matmul_activations(self, mm, x, rhs, ctx):
        """MatMul of two int8 activations (TFLite's BATCH_MATMUL), both in the ONNX layout."""
        if len(x.shape) < 2 or len(rhs.shape) < 2:
            return None
        rhs = self._to_layout(rhs, _ident(len(rhs.shape)))
        y = self._emit(relax.op.matmul(self._dequantize(x), self._dequantize(rhs)), "matmul")
        out_shape = _shape(mm)
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), _ident(len(out_shape)), out_shape,
                     ctx["s_out"], ctx["zp_out"])

    def _conv_transpose(self, conv, ctx, bias=None):
        a = conv.attrs
        operands = self._conv_operands(conv, "IOHW")
        if operands is None:
            return None
        x, (wq, ws, wz, axis) = operands
        groups = int(a.groups)
        if groups > 1:
            # Grouped: block-diagonal dense weights (input channels of group g
            # feed only its outputs) give the same sums; per-channel scales
            # repeat for every group's outputs.
            cg, mg = wq.shape[0] // groups, wq.shape[1]
            full = np.zeros((wq.shape[0], mg * groups) + wq.shape[2:], np.int8)
            for g in range(groups):
                full[g * cg:(g + 1) * cg, g * mg:(g + 1) * mg] = wq[g * cg:(g + 1) * cg]
            wq = full
            if ws.size > 1:
                ws, wz = np.tile(ws, groups), np.tile(wz, groups)
        dil = [int(d) for d in a.dilation]
        if dil != [1, 1]:
            # A dilated kernel is the dense kernel with zeros between its taps.
            kh, kw = wq.shape[2:]
            dense = np.zeros(wq.shape[:2] + ((kh - 1) * dil[0] + 1, (kw - 1) * dil[1] + 1), np.int8)
            dense[:, :, ::dil[0], ::dil[1]] = wq
            wq = dense
        scale = relax.const(ws if ws.size > 1 else np.float32(ws[0]))
        zp = relax.const(wz.astype(np.int8) if wz.size > 1 else np.int8(wz[0]))
        wdq = self._emit(relax.op.dequantize(relax.const(wq), scale, zp, axis=axis if ws.size > 1 else 1,
                                             out_dtype="float32"), "weights")
        # output_padding only adds rows/columns at the bottom/right: the same
        # output shape with that much less end padding (the kernel reads top/left).
        pad = [int(p) for p in a.padding]
        out_pad = [int(p) for p in a.output_padding]
        padding = [pad[0], pad[1], pad[2] - out_pad[0], pad[3] - out_pad[1]]
        y = self._emit(relax.op.nn.conv2d_transpose(
            self._dequantize(x), wdq, strides=[int(s) for s in a.strides], padding=padding,
            data_layout="NHWC", kernel_layout="IOHW", out_layout="NHWC"), "conv_transpose")
        if bias is not None:
            b = self._bias(bias)
            if b is None:
                return None
            y = self._emit(relax.op.add(y, b), "conv_transpose_bias")
        out_shape = _shape(conv)
        if _shape(y) != [out_shape[i] for i in NHWC]:
            return None
        return _Int8(self._quantize(y, ctx["s_out"], ctx["zp_out"]), NHWC, out_shape, ctx["s_out"], ctx["zp_out"])


@tvm.transform.module_pass(opt_level=0, name="CanonicalizeONNXQDQ")
class CanonicalizeONNXQDQ:
    """Rewrite TVM's NCHW ONNX QDQ import of ``main`` into the NHWC QDQ form of LowerToIntegerKernels.

    What TVM's Relax loses arrives in the IR: constant Pads as ``relax.nn.pad``
    (frontend/onnx_fixups.py), Resize scales and ONNX modes as the function
    attribute ``tinyengine.onnx_resize`` keyed by output tensor.  Raises
    UnsupportedModelError for quantized patterns it cannot express with the
    int8 kernels.
    """

    def transform_module(self, mod: tvm.IRModule, ctx) -> tvm.IRModule:
        func = _Canonicalizer(mod["main"]).run()
        return tvm.IRModule({"main": func})
