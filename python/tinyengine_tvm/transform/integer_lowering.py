"""LowerToIntegerKernels: turn the frontends' quantize/dequantize graphs into int8 kernels.

TVM's TFLite and ONNX importers express an int8 model as float operators
between ``R.dequantize`` and ``R.quantize``.  Running that float graph is not
bit-exact with TFLite Micro, so this pass recognises each quantized operator
pattern and replaces it with a call to an integer kernel of ``src/`` whose
parameters (per-channel multiplier and shift, offsets, activation range) are
derived from the scales exactly as TFLM's Prepare derives them.

What is left is a Relax function of int8 kernel calls and views (reshape);
any float operation that no pattern consumed is reported as unsupported.
"""
from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import tvm
from tvm import relax

from ..errors import UnsupportedModelError
from ..quantization.activation_params import (
    hard_swish_params,
    logistic_params,
    mean_params,
    softmax_params,
)
from ..quantization.fixed_point import quantize_multiplier
from .kernel_call import make_kernel_call, parse_kernel_call

_INT8_MIN, _INT8_MAX = -128, 127
_VIEW_OPS = ("relax.reshape", "relax.squeeze", "relax.expand_dims", "relax.flatten")


def _tflm_round(x: np.float32) -> int:
    """TfLiteRound: round half away from zero."""
    x = float(x)
    return int(np.sign(x) * np.floor(abs(x) + 0.5))


def _tflm_quantize(value: float, scale: float, zero_point: int) -> int:
    """TFLM's Quantize() used for activation ranges: float32 division, then round."""
    return int(zero_point) + _tflm_round(np.float32(value) / np.float32(scale))


def _shape(expr) -> List[int]:
    return [int(d) for d in expr.ty.shape]


def _dtype(expr) -> str:
    return str(expr.ty.dtype)


def _op_name(expr) -> Optional[str]:
    if isinstance(expr, relax.Call) and isinstance(expr.op, tvm.ir.Op):
        return expr.op.name
    return None


class _Activation:
    """An int8 activation value: a lowered op output, a function input or a view."""

    def __init__(self, expr: relax.Expr, scale: float, zero_point: int):
        self.expr = expr
        self.scale = scale
        self.zero_point = zero_point


class _Lowering:
    """Walks one Relax function in binding order and rebuilds it with kernels."""

    def __init__(self, func: relax.Function, name: str = "main"):
        self.func = func
        self.func_name = name
        self.defs: Dict[relax.Var, relax.Expr] = {}
        self.uses: Dict[relax.Var, int] = {}
        self.bindings = []
        for block in func.body.blocks:
            for binding in block.bindings:
                self.bindings.append(binding)
                self.defs[binding.var] = binding.value
                for v in relax.analysis.free_vars(binding.value):
                    self.uses[v] = self.uses.get(v, 0) + 1
        for v in relax.analysis.free_vars(func.body.body):
            self.uses[v] = self.uses.get(v, 0) + 1
        # old int8 Var -> new Relax expression producing it
        self.lowered: Dict[relax.Var, relax.Expr] = {}
        # pending kernel calls whose act range a later clip may still narrow
        self.pending_attrs: Dict[relax.Var, Dict[str, Any]] = {}
        self.problems: List[Tuple[str, str, str]] = []

    # ---------------------------------------------------------------- helpers
    def _resolve(self, expr):
        """Follow Var bindings to the defining expression."""
        while isinstance(expr, relax.Var) and expr in self.defs:
            nxt = self.defs[expr]
            if isinstance(nxt, relax.Var):
                expr = nxt
                continue
            return nxt
        return expr

    def _const(self, expr) -> Optional[np.ndarray]:
        """Value of an expression computed only from constants (permute/reshape/astype)."""
        e = self._resolve(expr)
        if isinstance(e, tvm.ir.Constant):
            return e.value.numpy()
        name = _op_name(e)
        if name == "relax.permute_dims":
            v = self._const(e.args[0])
            if v is None:
                return None
            axes = [int(a) for a in e.attrs.axes] if e.attrs.axes is not None else None
            return np.transpose(v, axes)
        if name in _VIEW_OPS:
            v = self._const(e.args[0])
            return None if v is None else v.reshape(_shape(e))
        return None

    def _dequantize(self, expr):
        """Match ``dequantize(x, scale, zp)``: (x, scale array, zp array, axis) or None."""
        e = self._resolve(expr)
        if _op_name(e) != "relax.dequantize":
            return None
        scale = self._const(e.args[1])
        zp = self._const(e.args[2])
        if scale is None or zp is None:
            return None
        return e.args[0], np.atleast_1d(scale).astype(np.float32), np.atleast_1d(zp).astype(np.int64), int(e.attrs.axis)

    def _activation_input(self, expr) -> Optional[_Activation]:
        """An int8 activation seen through its dequantize (per-tensor)."""
        dq = self._dequantize(expr)
        if dq is None:
            return None
        x, scale, zp, _ = dq
        if scale.size != 1:
            return None
        src = self._int8_value(x)
        if src is None:
            return None
        return _Activation(src, float(scale[0]), int(zp[0]))

    def _int8_value(self, var) -> Optional[relax.Expr]:
        """The lowered expression of an int8 Var (or constant), if any."""
        if isinstance(var, relax.Var) and var in self.lowered:
            return self.lowered[var]
        if isinstance(var, relax.Var) and var in self._params:
            return var
        c = self._const(var)
        if c is not None:
            return relax.const(c)
        return None

    def _unsupported(self, var, expr, reason):
        self.problems.append((_op_name(expr) or type(expr).__name__, var.name if hasattr(var, "name_hint") else str(var), reason))

    # ------------------------------------------------------------- main walk
    def run(self) -> relax.Function:
        self._params = set(self.func.params)
        for binding in self.bindings:
            try:
                self._visit(binding.var, binding.value)
            except (ValueError, ArithmeticError) as exc:
                # Scales, zero points or betas whose fixed-point form does not
                # exist (TFLM's Prepare refuses them too).
                self._unsupported(binding.var, binding.value, f"quantization parameters out of range: {exc}")
        outputs = self._outputs()
        if self.problems:
            raise UnsupportedModelError(self.problems)
        return self._rebuild(outputs)

    def _visit(self, var, value):
        if not isinstance(var.ty, relax.TensorType):
            return
        if parse_kernel_call(value) is not None:
            # Already lowered (the pass is idempotent): keep it, on lowered inputs.
            args = [self._int8_value(a) if isinstance(a, relax.Var) else a for a in value.args[1].fields]
            if any(a is None for a in args):
                self._unsupported(var, value, "kernel call on a value that could not be lowered")
                return
            self.lowered[var] = relax.Call(value.op, [value.args[0], tvm.ir.Tuple(args)], value.attrs, value.ty_args)
            return
        dtype = _dtype(var)
        name = _op_name(value)
        if dtype == "int8":
            if self._const(var) is not None:
                return  # weights: folded where used
            handler = {
                "relax.quantize": self._lower_quantize,
                "relax.clip": self._lower_int8_clip,
                "relax.astype": self._lower_astype,
                "relax.nn.max_pool2d": self._lower_max_pool,
                "relax.nn.pad": self._lower_pad,
                "relax.permute_dims": self._lower_transpose,
                "relax.image.resize2d": self._lower_resize,
            }.get(name)
            if name in _VIEW_OPS:
                handler = self._lower_view
            if isinstance(value, relax.Var):
                if value in self.lowered:
                    self.lowered[var] = self.lowered[value]
                return
            if handler is None:
                # Other int8 ops are either consumed by a pattern or unsupported;
                # unsupported ones surface when an output depends on them.
                return
            handler(var, value)

    # ---------------------------------------------------------- int8 anchors
    def _emit(self, var, kernel, tensors, attrs, out_dtype="int8"):
        self.lowered[var] = make_kernel_call(kernel, tensors, attrs, _shape(var), out_dtype)
        if "act_min" in attrs:
            self.pending_attrs[var] = dict(kernel=kernel, tensors=tensors, attrs=attrs)

    def _lower_view(self, var, value):
        src = self._int8_value(value.args[0])
        if src is None:
            self._unsupported(var, value, "reshape of a value that could not be lowered")
            return
        self.lowered[var] = relax.op.reshape(src, _shape(var))

    def _lower_int8_clip(self, var, value):
        """A clip after quantize is the frontend's fused activation: fold it."""
        src_var = value.args[0]
        lo = int(round(float(value.args[1].value)))
        hi = int(round(float(value.args[2].value)))
        pending = self.pending_attrs.get(src_var)
        if pending is not None and self.uses.get(src_var, 0) == 1:
            attrs = dict(pending["attrs"])
            attrs["act_min"], attrs["act_max"] = self._tflm_act_range(
                lo, hi, attrs.get("_out_scale"), attrs.get("_out_zp"))
            attrs["act_min"] = max(attrs["act_min"], pending["attrs"]["act_min"])
            attrs["act_max"] = min(attrs["act_max"], pending["attrs"]["act_max"])
            self._emit(var, pending["kernel"], pending["tensors"], attrs)
            del self.lowered[src_var]
            return
        src = self._int8_value(src_var)
        if src is None:
            self._unsupported(var, value, "clip of a value that could not be lowered")
            return
        self._emit(var, "te_requantize_s8", [src], dict(
            size=int(np.prod(_shape(var))), input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
            act_min=max(lo, _INT8_MIN), act_max=min(hi, _INT8_MAX), _op_type="CLIP"))

    @staticmethod
    def _tflm_act_range(lo, hi, scale, zp):
        """Recover TFLM's rounding of a fused RELU/RELU6/RELU_N1_TO_1 range.

        The importer computed the clip bounds with Python's round-half-even on
        a double division; TFLM rounds half away from zero on a float division.
        """
        if scale is None:
            return lo, hi
        for fmin, fmax in ((0.0, 6.0), (-1.0, 1.0), (0.0, None)):
            py_lo = max(_INT8_MIN, round(fmin / scale) + zp)
            py_hi = _INT8_MAX if fmax is None else min(_INT8_MAX, round(fmax / scale) + zp)
            if (py_lo, py_hi) == (lo, hi):
                t_lo = max(_INT8_MIN, _tflm_quantize(fmin, scale, zp))
                t_hi = _INT8_MAX if fmax is None else min(_INT8_MAX, _tflm_quantize(fmax, scale, zp))
                return t_lo, t_hi
        return lo, hi

    def _lower_astype(self, var, value):
        """astype(int8, avg_pool2d(astype(int32, x))): the TFLite AVERAGE_POOL_2D form."""
        pool = self._resolve(value.args[0])
        if _op_name(pool) != "relax.nn.avg_pool2d":
            self._unsupported(var, value, "astype to int8 is only supported around avg_pool2d")
            return
        widen = self._resolve(pool.args[0])
        if _op_name(widen) != "relax.astype":
            self._unsupported(var, value, "unexpected avg_pool2d input")
            return
        src_var = widen.args[0]
        src = self._int8_value(src_var)
        if src is None:
            self._unsupported(var, value, "avg_pool2d of a value that could not be lowered")
            return
        self._emit(var, "te_avg_pool_s8", [src], self._pool_attrs(pool, _shape(src_var), _shape(var)))

    def _lower_max_pool(self, var, value):
        src = self._int8_value(value.args[0])
        if src is None:
            self._unsupported(var, value, "max_pool2d of a value that could not be lowered")
            return
        self._emit(var, "te_max_pool_s8", [src], self._pool_attrs(value, _shape(value.args[0]), _shape(var)))

    def _pool_attrs(self, pool, in_shape, out_shape):
        a = pool.attrs
        if str(a.layout) != "NHWC":
            raise UnsupportedModelError([("pool", str(a.layout), "only NHWC pooling is supported")])
        pad = [int(p) for p in a.padding]
        return dict(
            batch=in_shape[0], input_h=in_shape[1], input_w=in_shape[2], channels=in_shape[3],
            output_h=out_shape[1], output_w=out_shape[2],
            filter_h=int(a.pool_size[0]), filter_w=int(a.pool_size[1]),
            stride_h=int(a.strides[0]), stride_w=int(a.strides[1]),
            pad_top=pad[0], pad_left=pad[1], act_min=_INT8_MIN, act_max=_INT8_MAX,
        )

    # ------------------------------------------------------- quantize anchor
    def _lower_quantize(self, var, value):
        out_scale = self._const(value.args[1])
        out_zp = self._const(value.args[2])
        if out_scale is None or out_zp is None or np.size(out_scale) != 1:
            self._unsupported(var, value, "output quantization must be per-tensor and constant")
            return
        s_out, zp_out = float(np.float32(np.ravel(out_scale)[0])), int(np.ravel(out_zp)[0])
        body = self._resolve(value.args[0])
        # A float activation the importer put before quantize (RELU/RELU6 fused
        # into ADD/MUL, or a standalone RELU/RELU6) becomes the clamp range.
        act, float_act, inner = (_INT8_MIN, _INT8_MAX), None, body
        name = _op_name(body)
        if name == "relax.nn.relu":
            act, float_act = (max(_INT8_MIN, zp_out), _INT8_MAX), "RELU"
            inner = self._resolve(body.args[0])
        elif name == "relax.clip" and _dtype(body) == "float32":
            fmin, fmax = float(body.args[1].value), float(body.args[2].value)
            act = (max(_INT8_MIN, _tflm_quantize(fmin, s_out, zp_out)),
                   min(_INT8_MAX, _tflm_quantize(fmax, s_out, zp_out)))
            float_act = "RELU6" if (fmin, fmax) == (0.0, 6.0) else "CLIP"
            inner = self._resolve(body.args[0])
        ctx = dict(s_out=s_out, zp_out=zp_out, act=act, float_act=float_act)
        if isinstance(inner, relax.Var) and inner in self._params and _dtype(inner) == "float32":
            self._emit_quantize_float(var, inner, s_out, zp_out)
            return
        name = _op_name(inner)
        handler = {
            "relax.add": self._q_add_or_biased,
            "relax.nn.conv2d": self._q_conv,
            "relax.matmul": self._q_matmul,
            "relax.multiply": self._q_mul,
            "relax.nn.softmax": self._q_softmax,
            "relax.sigmoid": self._q_logistic,
            "relax.dequantize": self._q_requantize,
            "relax.concat": self._q_concat,
            "relax.mean": self._q_mean,
            "relax.divide": self._q_hard_swish,
        }.get(name)
        if handler is None or not handler(var, inner, ctx):
            if var not in self.lowered:
                self._unsupported(var, inner, f"no integer kernel for the pattern {name} -> quantize")

    def _finish_attrs(self, attrs, ctx):
        attrs["act_min"], attrs["act_max"] = ctx["act"]
        attrs["_out_scale"], attrs["_out_zp"] = ctx["s_out"], ctx["zp_out"]
        return attrs

    def _emit_quantize_float(self, var, src, scale, zp):
        self.lowered[var] = make_kernel_call(
            "te_quantize_f32_s8", [src], dict(size=int(np.prod(_shape(var))), scale=scale, zero_point=zp),
            _shape(var), "int8")

    def _q_requantize(self, var, dq_expr, ctx):
        """quantize(dequantize(x)): QUANTIZE int8->int8, or a standalone RELU/RELU6."""
        act_in = self._activation_input(dq_expr)
        if act_in is None:
            return False
        size = int(np.prod(_shape(var)))
        if ctx["float_act"] == "RELU6":
            # TFLM's int8 RELU6 clamps in the input's quantization and does not
            # rescale to the output's; being bit-exact means doing the same.
            six = min(_INT8_MAX, _tflm_quantize(6.0, act_in.scale, act_in.zero_point))
            self._emit(var, "te_requantize_s8", [act_in.expr], dict(
                size=size, input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
                act_min=max(_INT8_MIN, act_in.zero_point), act_max=six, _op_type="RELU6"))
            return True
        same = act_in.scale == ctx["s_out"] and act_in.zero_point == ctx["zp_out"]
        if same and ctx["act"] == (_INT8_MIN, _INT8_MAX):
            self.lowered[var] = act_in.expr
            return True
        mult, shift = quantize_multiplier(np.float64(act_in.scale) / np.float64(ctx["s_out"]))
        attrs = dict(size=size, input_offset=-act_in.zero_point, output_offset=ctx["zp_out"],
                     multiplier=mult, shift=shift, _op_type=ctx["float_act"] or "QUANTIZE")
        self._emit(var, "te_requantize_s8", [act_in.expr], self._finish_attrs(attrs, ctx))
        return True

    def _q_add_or_biased(self, var, add, ctx):
        lhs = self._resolve(add.args[0])
        if _op_name(lhs) == "relax.nn.conv2d":
            return self._q_conv(var, lhs, ctx, bias_expr=add.args[1])
        if _op_name(lhs) == "relax.matmul":
            return self._q_matmul(var, lhs, ctx, bias_expr=add.args[1])
        a = self._activation_input(add.args[0])
        b = self._activation_input(add.args[1])
        if a is None or b is None:
            return False
        s1, s2, so = (np.float64(np.float32(a.scale)), np.float64(np.float32(b.scale)),
                      np.float64(ctx["s_out"]))
        left_shift = 20
        twice_max = 2.0 * max(s1, s2)
        m1, sh1 = quantize_multiplier(s1 / twice_max)
        m2, sh2 = quantize_multiplier(s2 / twice_max)
        mo, sho = quantize_multiplier(twice_max / ((1 << left_shift) * so))
        attrs = self._broadcast_attrs(_shape(add.args[0]), _shape(add.args[1]), _shape(var))
        attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                     output_offset=ctx["zp_out"], left_shift=left_shift,
                     input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2,
                     input2_shift=sh2, output_multiplier=mo, output_shift=sho)
        self._emit(var, "te_add_s8", [a.expr, b.expr], self._finish_attrs(attrs, ctx))
        return True

    def _q_mul(self, var, mul, ctx):
        a = self._activation_input(mul.args[0])
        b = self._activation_input(mul.args[1])
        if a is None or b is None:
            return False
        real = np.float64(np.float32(a.scale)) * np.float64(np.float32(b.scale)) / np.float64(ctx["s_out"])
        mo, sho = quantize_multiplier(real)
        attrs = self._broadcast_attrs(_shape(mul.args[0]), _shape(mul.args[1]), _shape(var))
        attrs.update(input1_offset=-a.zero_point, input2_offset=-b.zero_point,
                     output_offset=ctx["zp_out"], left_shift=0, input1_multiplier=0,
                     input1_shift=0, input2_multiplier=0, input2_shift=0,
                     output_multiplier=mo, output_shift=sho)
        self._emit(var, "te_mul_s8", [a.expr, b.expr], self._finish_attrs(attrs, ctx))
        return True

    @staticmethod
    def _broadcast_attrs(s1, s2, so):
        def strides(shape):
            shape = [1] * (4 - len(shape)) + list(shape)
            dense = [int(np.prod(shape[i + 1:])) for i in range(4)]
            return [0 if shape[i] == 1 and out4[i] != 1 else dense[i] for i in range(4)]

        if max(len(s1), len(s2), len(so)) > 4:
            raise UnsupportedModelError([("add/mul", str(so), "broadcasting beyond 4-D is not supported")])
        out4 = [1] * (4 - len(so)) + list(so)
        return dict(dims=out4, input1_strides=strides(s1), input2_strides=strides(s2))

    def _weights(self, w_expr):
        """Weights of a conv/matmul: (int8 array in the float op's layout, scales, zps, axis)."""
        e = self._resolve(w_expr)
        post_shape = None
        if _op_name(e) in _VIEW_OPS:
            post_shape = _shape(e)
            e = self._resolve(e.args[0])
        dq = self._dequantize(e)
        if dq is None:
            return None
        q = self._const(dq[0])
        if q is None or q.dtype != np.int8:
            return None
        if post_shape is not None:
            q = q.reshape(post_shape)
        return q, dq[1], dq[2], dq[3]

    def _bias(self, bias_expr, n):
        if bias_expr is None:
            return None
        dq = self._dequantize(bias_expr)
        if dq is None:
            return None
        b = self._const(dq[0])
        if b is None or b.dtype != np.int32 or np.any(dq[2] != 0):
            return None
        return b.reshape(-1) if b.size == n else None

    def _requant_arrays(self, s_in, w_scales, s_out, n):
        w_scales = np.broadcast_to(np.asarray(w_scales, np.float32), (n,))
        pairs = [quantize_multiplier(np.float64(np.float32(s_in)) * np.float64(ws) / np.float64(s_out)) for ws in w_scales]
        return (relax.const(np.array([p[0] for p in pairs], np.int32)),
                relax.const(np.array([p[1] for p in pairs], np.int32)))

    def _q_conv(self, var, conv, ctx, bias_expr=None):
        a = conv.attrs
        if str(a.data_layout) != "NHWC":
            return False
        x = self._activation_input(conv.args[0])
        w = self._weights(conv.args[1])
        if x is None or w is None:
            return False
        wq, w_scale, w_zp, _ = w
        if np.any(w_zp != 0):
            return False
        in_shape, out_shape = _shape(conv.args[0]), _shape(var)
        oc = out_shape[3]
        groups = int(a.groups)
        layout = str(a.kernel_layout)
        pad = [int(p) for p in a.padding]
        attrs = dict(
            batch=in_shape[0], input_h=in_shape[1], input_w=in_shape[2], input_c=in_shape[3],
            output_h=out_shape[1], output_w=out_shape[2], output_c=oc,
            stride_h=int(a.strides[0]), stride_w=int(a.strides[1]),
            dilation_h=int(a.dilation[0]), dilation_w=int(a.dilation[1]),
            pad_top=pad[0], pad_left=pad[1], input_offset=-x.zero_point,
            output_offset=ctx["zp_out"],
        )
        if groups == 1:
            kernel = "te_conv2d_s8"
            perm = [layout.index(ch) for ch in "OHWI"]
            filt = np.ascontiguousarray(np.transpose(wq, perm))
            attrs.update(kernel_h=filt.shape[1], kernel_w=filt.shape[2], depth_multiplier=1)
        elif groups == in_shape[3]:
            kernel = "te_depthwise_conv2d_s8"
            kh, kw = wq.shape[layout.index("H")], wq.shape[layout.index("W")]
            if layout == "HWOI":
                filt = np.ascontiguousarray(wq.reshape(1, kh, kw, oc))
            elif layout == "OIHW":
                filt = np.ascontiguousarray(np.transpose(wq.reshape(oc, kh, kw), (1, 2, 0)).reshape(1, kh, kw, oc))
            else:
                return False
            attrs.update(kernel_h=kh, kernel_w=kw, depth_multiplier=oc // in_shape[3])
        else:
            self._unsupported(var, conv, f"grouped convolution (groups={groups}) is not supported")
            return True
        bias = self._bias(bias_expr, oc)
        if bias_expr is not None and bias is None:
            return False
        mult, shift = self._requant_arrays(x.scale, w_scale, ctx["s_out"], oc)
        bias_c = relax.const(bias.astype(np.int32)) if bias is not None else relax.const(np.zeros(oc, np.int32))
        self._emit(var, kernel, [x.expr, relax.const(filt), bias_c, mult, shift], self._finish_attrs(attrs, ctx))
        return True

    def _q_matmul(self, var, mm, ctx, bias_expr=None):
        x = self._activation_input(mm.args[0])
        w = self._weights(mm.args[1])
        if x is None or w is None:
            return False
        wq, w_scale, w_zp, _ = w
        if wq.ndim != 2 or w_zp.size != 1:
            return False
        filt = np.ascontiguousarray(wq.T)  # matmul sees [in, out]; the kernel wants [out, in]
        out_depth, in_depth = filt.shape
        bias = self._bias(bias_expr, out_depth)
        if bias_expr is not None and bias is None:
            return False
        mult, shift = self._requant_arrays(x.scale, w_scale, ctx["s_out"], out_depth)
        attrs = dict(batch=int(np.prod(_shape(mm.args[0])[:-1])), input_depth=in_depth,
                     output_depth=out_depth, input_offset=-x.zero_point,
                     filter_offset=-int(w_zp[0]), output_offset=ctx["zp_out"])
        bias_c = relax.const(bias.astype(np.int32)) if bias is not None else relax.const(np.zeros(out_depth, np.int32))
        self._emit(var, "te_fully_connected_s8", [x.expr, relax.const(filt), bias_c, mult, shift],
                   self._finish_attrs(attrs, ctx))
        return True

    def _lower_pad(self, var, value):
        src = self._int8_value(value.args[0])
        if src is None:
            self._unsupported(var, value, "pad of a value that could not be lowered")
            return
        in_shape = _shape(value.args[0])
        if len(in_shape) > 4:
            self._unsupported(var, value, "PAD is supported up to 4-D")
            return
        widths = [int(w) for w in value.attrs.pad_width]
        lead = 4 - len(in_shape)
        before = [0] * lead + widths[0::2]
        after = [0] * lead + widths[1::2]
        pad_value = self._const(value.args[1]) if len(value.args) > 1 else None
        if pad_value is None:
            pad_value = float(value.attrs.pad_value) if hasattr(value.attrs, "pad_value") else 0.0
        pad_value = int(np.ravel(pad_value)[0]) if isinstance(pad_value, np.ndarray) else int(pad_value)
        self._emit(var, "te_pad_s8", [src], dict(
            input_dims=[1] * lead + in_shape, before=before, after=after, pad_value=pad_value))

    def _lower_transpose(self, var, value):
        src = self._int8_value(value.args[0])
        if src is None:
            self._unsupported(var, value, "transpose of a value that could not be lowered")
            return
        in_shape = _shape(value.args[0])
        if len(in_shape) > 6:
            self._unsupported(var, value, "TRANSPOSE is supported up to 6-D")
            return
        rank = len(in_shape)
        perm = [int(a) for a in value.attrs.axes] if value.attrs.axes is not None else list(range(rank))[::-1]
        self._emit(var, "te_transpose_s8", [src], dict(
            rank=rank, input_dims=in_shape + [1] * (6 - rank), perm=perm + [0] * (6 - rank)))

    def _lower_resize(self, var, value):
        a = value.attrs
        src = self._int8_value(value.args[0])
        if src is None or str(a.method) != "nearest_neighbor" or str(a.layout) != "NHWC":
            self._unsupported(var, value, "only NHWC nearest-neighbour resize is supported on int8")
            return
        mode = str(a.coordinate_transformation_mode)
        if mode not in ("asymmetric", "align_corners", "half_pixel"):
            self._unsupported(var, value, f"resize coordinate mode {mode} is not supported")
            return
        i, o = _shape(value.args[0]), _shape(var)
        self._emit(var, "te_resize_nearest_s8", [src], dict(
            batch=i[0], input_h=i[1], input_w=i[2], channels=i[3], output_h=o[1], output_w=o[2],
            align_corners=int(mode == "align_corners"), half_pixel_centers=int(mode == "half_pixel")))

    def _q_concat(self, var, cat, ctx):
        parts = [self._activation_input(f) for f in cat.args[0].fields]
        if any(p is None for p in parts):
            return False
        if ctx["act"] != (_INT8_MIN, _INT8_MAX):
            return False
        shape = _shape(var)
        axis = int(cat.attrs.axis) % len(shape)
        srcs = []
        for k, (p, f) in enumerate(zip(parts, cat.args[0].fields)):
            if p.scale == ctx["s_out"] and p.zero_point == ctx["zp_out"]:
                srcs.append(p.expr)
                continue
            # Inputs quantized differently from the output are requantized first.
            mult, shift = quantize_multiplier(np.float64(p.scale) / np.float64(ctx["s_out"]))
            srcs.append(make_kernel_call("te_requantize_s8", [p.expr], dict(
                size=int(np.prod(_shape(f))), input_offset=-p.zero_point, output_offset=ctx["zp_out"],
                multiplier=mult, shift=shift, act_min=_INT8_MIN, act_max=_INT8_MAX), _shape(f), "int8"))
        attrs = dict(outer=int(np.prod(shape[:axis])), inner=int(np.prod(shape[axis + 1:])),
                     axis_sizes=[_shape(f)[axis] for f in cat.args[0].fields])
        self.lowered[var] = make_kernel_call("te_concat_s8", srcs, attrs, shape, "int8")
        return True

    def _q_mean(self, var, mean, ctx):
        x = self._activation_input(mean.args[0])
        if x is None:
            return False
        in_shape = _shape(mean.args[0])
        axes = sorted(int(a) % len(in_shape) for a in mean.attrs.axis)
        if axes != list(range(axes[0], axes[-1] + 1)):
            self._unsupported(var, mean, f"MEAN over non-contiguous axes {axes} is not supported")
            return True
        reduced = int(np.prod([in_shape[a] for a in axes]))
        attrs = dict(outer=int(np.prod(in_shape[:axes[0]])), reduced=reduced,
                     inner=int(np.prod(in_shape[axes[-1] + 1:])))
        attrs.update(mean_params(np.float32(x.scale), x.zero_point, np.float32(ctx["s_out"]), ctx["zp_out"], reduced))
        self.lowered[var] = make_kernel_call("te_mean_s8", [x.expr], attrs, _shape(var), "int8")
        return True

    def _q_hard_swish(self, var, div, ctx):
        """x * clip(x + 3, 0, 6) / 6, the importer's form of HARD_SWISH."""
        mul = self._resolve(div.args[0])
        six = self._const(div.args[1])
        if _op_name(mul) != "relax.multiply" or six is None or float(np.ravel(six)[0]) != 6.0:
            return False
        clip = self._resolve(mul.args[1])
        if _op_name(clip) != "relax.clip":
            return False
        add = self._resolve(clip.args[0])
        if _op_name(add) != "relax.add" or not add.args[0].same_as(mul.args[0]):
            return False
        x = self._activation_input(mul.args[0])
        if x is None:
            return False
        attrs = hard_swish_params(np.float32(x.scale), x.zero_point, np.float32(ctx["s_out"]), ctx["zp_out"])
        size = int(np.prod(_shape(var)))
        self.lowered[var] = make_kernel_call("te_hard_swish_s8", [x.expr], dict(attrs, size=size), _shape(var), "int8")
        return True

    def _q_softmax(self, var, sm, ctx):
        # The importer writes TFLite's beta as softmax(beta * x) (frontend/tflite_fixups).
        beta, operand = 1.0, sm.args[0]
        scaled = self._resolve(operand)
        if _op_name(scaled) == "relax.multiply":
            factor = self._const(scaled.args[1])
            if factor is not None and np.size(factor) == 1 and np.asarray(factor).dtype == np.float32:
                beta, operand = float(np.asarray(factor).reshape(())), scaled.args[0]
        x = self._activation_input(operand)
        if x is None:
            return False
        if int(sm.attrs.axis) not in (-1, len(_shape(var)) - 1):
            self._unsupported(var, sm, "softmax is only supported over the last axis")
            return True
        if ctx["s_out"] != np.float32(1.0 / 256) or ctx["zp_out"] != -128:
            self._unsupported(var, sm, "int8 softmax output must have scale 1/256 and zero point -128")
            return True
        shape = _shape(var)
        attrs = dict(rows=int(np.prod(shape[:-1])), depth=shape[-1])
        attrs.update(softmax_params(np.float32(x.scale), beta))
        self.lowered[var] = make_kernel_call("te_softmax_s8", [x.expr], attrs, shape, "int8")
        return True

    def _q_logistic(self, var, sg, ctx):
        x = self._activation_input(sg.args[0])
        if x is None:
            return False
        if ctx["s_out"] != np.float32(1.0 / 256) or ctx["zp_out"] != -128:
            self._unsupported(var, sg, "int8 logistic output must have scale 1/256 and zero point -128")
            return True
        attrs = dict(size=int(np.prod(_shape(var))))
        attrs.update(logistic_params(np.float32(x.scale), x.zero_point))
        self.lowered[var] = make_kernel_call("te_logistic_s8", [x.expr], attrs, _shape(var), "int8")
        return True

    # ---------------------------------------------------------------- output
    def _outputs(self) -> List[relax.Expr]:
        self.output_names: Dict[relax.Expr, str] = {}
        ret = self.func.body.body
        if isinstance(ret, relax.Var) and isinstance(self.defs.get(ret), tvm.ir.Tuple):
            ret = self.defs[ret]
        rets = list(ret.fields) if isinstance(ret, tvm.ir.Tuple) else [ret]
        outs = []
        for r in rets:
            if isinstance(r, relax.Var) and r in self.lowered:
                outs.append(self.lowered[r])
                continue
            if isinstance(r, relax.Var) and r in self._params:
                outs.append(r)
                continue
            dq = self._dequantize(r)
            if dq is not None and _dtype(r) == "float32":
                src = self._int8_value(dq[0])
                if src is not None and dq[1].size == 1:
                    outs.append(make_kernel_call(
                        "te_dequantize_s8_f32", [src],
                        dict(size=int(np.prod(_shape(r))), scale=float(dq[1][0]), zero_point=int(dq[2][0])),
                        _shape(r), "float32"))
                    if isinstance(r, relax.Var):
                        self.output_names[outs[-1]] = r.name
                    continue
            self._report_unlowered(r)
            outs.append(None)
        return outs

    def _report_unlowered(self, var):
        """Name the first binding on the path to an output that no pattern consumed."""
        seen = set()
        stack = [var]
        while stack:
            v = stack.pop()
            if v in seen or not isinstance(v, relax.Var) or v in self._params:
                continue
            seen.add(v)
            if v in self.lowered:
                continue
            value = self.defs.get(v)
            if value is None:
                continue
            deps = [d for d in relax.analysis.free_vars(value)]
            unresolved = [d for d in deps if d not in self.lowered and d not in self._params and self._const(d) is None]
            if not unresolved:
                self._unsupported(v, value, "no integer lowering for this operation (float op outside a quantized pattern?)")
                return
            stack.extend(unresolved)
        self._unsupported(var, self.defs.get(var, var), "output could not be lowered")

    def _names(self) -> Dict[relax.Expr, str]:
        """Lowered expression -> name of the Var it replaces (the model's tensor name
        where the importer gave one); the first Var wins over later aliases."""
        names: Dict[relax.Expr, str] = {}
        for var, expr in self.lowered.items():
            names.setdefault(expr, var.name)
        for expr, name in self.output_names.items():
            names.setdefault(expr, name)
        return names

    def _rebuild(self, outputs) -> relax.Function:
        params = list(self.func.params)
        names = self._names()
        bb = relax.BlockBuilder()
        attrs = dict(self.func.attrs) if self.func.attrs is not None else {}
        attrs.pop("params", None)  # the importer's weight list: weights are constants of the kernels now
        attrs.setdefault("num_input", len(params))
        attrs.setdefault("global_symbol", self.func_name)
        with bb.function(self.func_name, params, attrs=attrs):
            with bb.dataflow():
                emitted = {}

                def emit(expr):
                    # Rebuild nested lowered expressions bottom-up so each kernel is one binding.
                    key = expr
                    if key in emitted:
                        return emitted[key]
                    if isinstance(expr, relax.Call):
                        new_args = []
                        for arg in expr.args:
                            if isinstance(arg, tvm.ir.Tuple):
                                new_args.append(tvm.ir.Tuple([emit(f) if isinstance(f, relax.Call) else f for f in arg.fields]))
                            elif isinstance(arg, relax.Call):
                                new_args.append(emit(arg))
                            else:
                                new_args.append(arg)
                        new = relax.Call(expr.op, new_args, expr.attrs, expr.ty_args)
                        out = bb.emit(new, name_hint=names.get(expr) or _derived_name(new) or "")
                    else:
                        out = expr
                    emitted[key] = out
                    return out

                outs = [emit(o) for o in outputs]
                result = outs[0] if len(outs) == 1 else tvm.ir.Tuple(outs)
                gv = bb.emit_output(result)
            bb.emit_func_output(gv)
        return bb.get()[self.func_name]


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
        if e.op.name in ("relax.quantize", "relax.dequantize", "relax.call_dps_packed") or (
                isinstance(ty, relax.TensorType) and str(ty.dtype) == "int8"):
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
                out[gvar] = _Lowering(func, gvar.name_hint).run()
        return out
