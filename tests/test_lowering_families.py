"""IR tests of the integer lowering, one family at a time (transform/lowering/).

Each test builds a small QDQ Relax function by hand, lowers it with
LowerToIntegerKernels and compares the result with the expected function of
kernel calls (``make_kernel_call``) by ``tvm.ir.assert_structural_equal``; each
family also has an unsupported form that must raise naming the op and tensor.
"""
import numpy as np
import pytest
import tvm
from tvm import relax

from tinyengine_tvm.errors import UnsupportedModelError
from tinyengine_tvm.kernel_call import make_kernel_call, parse_kernel_call
from tinyengine_tvm.quantization.activation_params import logistic_params, mean_params
from tinyengine_tvm.quantization.fixed_point import quantize_multiplier
from tinyengine_tvm.transform import LowerToIntegerKernels
from tinyengine_tvm.transform.lowering import FAMILIES, Lowering

FULL = dict(act_min=-128, act_max=127)


def _t(shape, dtype="int8", name="x"):
    return relax.Var(name, relax.TensorType(shape, dtype))


def _dq(x, scale, zp=0, axis=-1):
    zp_dtype = "int32" if str(x.ty.dtype) == "int32" else "int8"
    return relax.op.dequantize(x, relax.const(np.asarray(scale, np.float32)), relax.const(np.asarray(zp, zp_dtype)),
                               axis=axis, out_dtype="float32")


def _q(f, scale, zp=0):
    return relax.op.quantize(f, relax.const(np.float32(scale)), relax.const(np.int8(zp)), axis=-1, out_dtype="int8")


def _func(params, body):
    """main(params) built by ``body(bb, *params)`` returning the output expression."""
    bb = relax.BlockBuilder()
    with bb.function("main", params):
        with bb.dataflow():
            out = bb.emit_output(body(bb, *params))
        bb.emit_func_output(out)
    return bb.get()["main"]


def _lower(func):
    return LowerToIntegerKernels()(tvm.IRModule({"main": func}))["main"]


def _expected(params, kernels):
    """main(params) of the kernels [(name, build(*prior vars)), ...] in order; the last is returned."""
    bb = relax.BlockBuilder()
    attrs = {"num_input": len(params), "global_symbol": "main"}
    with bb.function("main", params, attrs=attrs):
        with bb.dataflow():
            env = list(params)
            for name, build in kernels:
                env.append(bb.emit(build(*env), name_hint=name))
            gv = bb.emit_output(env[-1])
        bb.emit_func_output(gv)
    return bb.get()["main"]


def _check_lowers(func, expected, names=None):
    """Structural equality (which ignores Var names) and, given ``names``, the
    names of the kernel bindings: each after the tensor it replaces."""
    lowered = _lower(func)
    tvm.ir.assert_structural_equal(lowered, expected)
    if names is not None:
        got = [b.var.name for blk in lowered.body.blocks for b in blk.bindings
               if parse_kernel_call(b.value) is not None]
        assert got == names


def _raises(func, op, tensor, reason):
    with pytest.raises(UnsupportedModelError) as err:
        _lower(func)
    assert any(p[0] == op and p[1] == tensor and reason in p[2] for p in err.value.problems), err.value.problems


def test_every_family_gives_lowering_records():
    names = {f.__name__.rsplit(".", 1)[-1] for f in FAMILIES}
    assert names == {"convolution", "fully_connected", "elementwise", "pooling", "data_movement",
                     "activations", "quantize"}
    for fam in FAMILIES:
        assert fam.LOWERINGS and all(isinstance(r, Lowering) for r in fam.LOWERINGS)
        assert all(r.anchor in ("quantize", "int8", "output") for r in fam.LOWERINGS)
        assert all(r.pattern is not None or r.matcher is not None for r in fam.LOWERINGS)


# ------------------------------------------------------------ convolution
W = np.arange(-8, 8, dtype=np.int8).reshape(2, 2, 2, 2)  # OHWI


def _conv(groups=1, bias=True):
    def body(bb, x):
        w = _dq(relax.const(W), [0.25, 0.5], [0, 0], axis=0)
        f = bb.emit(relax.op.nn.conv2d(_dq(x, 0.5, 1), w, groups=groups, data_layout="NHWC",
                                       kernel_layout="OHWI", out_dtype="float32"))
        if bias:
            f = bb.emit(relax.op.add(f, _dq(relax.const(np.array([3, -4], np.int32)), [0.125, 0.25], [0, 0], axis=0)))
        return bb.emit(_q(f, 1.0, -1), name_hint="y")
    return body


def test_conv2d_with_bias():
    x = _t((1, 4, 4, 2))
    pairs = [quantize_multiplier(0.5 * s) for s in (0.25, 0.5)]
    attrs = dict(batch=1, input_h=4, input_w=4, input_c=2, output_h=3, output_w=3, output_c=2,
                 stride_h=1, stride_w=1, dilation_h=1, dilation_w=1, pad_top=0, pad_left=0,
                 input_offset=-1, output_offset=-1, kernel_h=2, kernel_w=2, depth_multiplier=1,
                 _out_scale=1.0, _out_zp=-1, **FULL)
    expected = _expected([x], [("y", lambda x: make_kernel_call("te_conv2d_s8", [
        x, relax.const(W), relax.const(np.array([3, -4], np.int32)),
        relax.const(np.array([p[0] for p in pairs], np.int32)), relax.const(np.array([p[1] for p in pairs], np.int32)),
    ], attrs, (1, 3, 3, 2), "int8"))])
    _check_lowers(_func([x], _conv()), expected, names=["y"])


def test_grouped_conv2d_is_unsupported():
    x = _t((1, 4, 4, 4))
    _raises(_func([x], _conv(groups=2, bias=False)), "relax.nn.conv2d", "y", "grouped convolution (groups=2)")


# -------------------------------------------------------- fully connected
FC_W = np.arange(-16, 16, dtype=np.int8).reshape(8, 4)  # [in, out] as matmul sees it


def _fc(w_zp=0):
    def body(bb, x):
        w = _dq(relax.const(FC_W), 0.25, w_zp)
        return bb.emit(_q(bb.emit(relax.op.matmul(_dq(x, 0.5, 2), w)), 0.5, 3), name_hint="y")
    return body


def test_fully_connected():
    x = _t((1, 8))
    m, s = quantize_multiplier(0.5 * 0.25 / 0.5)
    attrs = dict(batch=1, input_depth=8, output_depth=4, input_offset=-2, filter_offset=0, output_offset=3,
                 _out_scale=0.5, _out_zp=3, **FULL)
    expected = _expected([x], [("y", lambda x: make_kernel_call("te_fully_connected_s8", [
        x, relax.const(np.ascontiguousarray(FC_W.T)), relax.const(np.zeros(4, np.int32)),
        relax.const(np.full(4, m, np.int32)), relax.const(np.full(4, s, np.int32))], attrs, (1, 4), "int8"))])
    _check_lowers(_func([x], _fc()), expected)


def test_fully_connected_on_float_input_is_unsupported():
    x = _t((1, 8), "float32")
    body = lambda bb, x: bb.emit(_q(bb.emit(relax.op.matmul(x, _dq(relax.const(FC_W), 0.25))), 0.5), name_hint="y")
    _raises(_func([x], body), "relax.matmul", "y", "no integer kernel for the pattern relax.matmul -> quantize")


# ------------------------------------------------------------ elementwise
def test_add_with_fused_relu():
    a, b = _t((1, 2, 2, 3), name="a"), _t((1, 1, 1, 3), name="b")
    body = lambda bb, a, b: bb.emit(_q(relax.op.nn.relu(relax.op.add(_dq(a, 0.5, 1), _dq(b, 0.25, -2))), 0.5, -5),
                                    name_hint="y")
    m1, sh1 = quantize_multiplier(0.5)
    m2, sh2 = quantize_multiplier(0.25)
    mo, sho = quantize_multiplier(1.0 / ((1 << 20) * 0.5))
    attrs = dict(dims=[1, 2, 2, 3], input1_strides=[12, 6, 3, 1], input2_strides=[3, 0, 0, 1],
                 input1_offset=-1, input2_offset=2, output_offset=-5, left_shift=20,
                 input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                 output_multiplier=mo, output_shift=sho, act_min=-5, act_max=127, _out_scale=0.5, _out_zp=-5)
    expected = _expected([a, b], [("y", lambda a, b: make_kernel_call("te_add_s8", [a, b], attrs, (1, 2, 2, 3), "int8"))])
    _check_lowers(_func([a, b], body), expected)


def test_add_of_a_float_input_is_unsupported():
    a, f = _t((4,), name="a"), _t((4,), "float32", name="f")
    body = lambda bb, a, f: bb.emit(_q(relax.op.add(_dq(a, 0.5), f), 0.5), name_hint="sum")
    _raises(_func([a, f], body), "relax.add", "sum", "no integer kernel for the pattern relax.add -> quantize")


# ---------------------------------------------------------------- pooling
def test_max_pool_then_mean():
    x = _t((1, 4, 4, 2))

    def body(bb, x):
        p = bb.emit(relax.op.nn.max_pool2d(x, pool_size=(2, 2), strides=(2, 2), layout="NHWC"), name_hint="pool")
        return bb.emit(_q(relax.op.mean(_dq(p, 0.5, 1), axis=[1, 2], keepdims=True), 0.25, 0), name_hint="avg")

    pool_attrs = dict(batch=1, input_h=4, input_w=4, channels=2, output_h=2, output_w=2, filter_h=2, filter_w=2,
                      stride_h=2, stride_w=2, pad_top=0, pad_left=0, **FULL)
    mean_attrs = dict(outer=1, reduced=4, inner=2, **mean_params(np.float32(0.5), 1, np.float32(0.25), 0, 4))
    expected = _expected([x], [
        ("pool", lambda x: make_kernel_call("te_max_pool_s8", [x], pool_attrs, (1, 2, 2, 2), "int8")),
        ("avg", lambda x, p: make_kernel_call("te_mean_s8", [p], mean_attrs, (1, 1, 1, 2), "int8")),
    ])
    _check_lowers(_func([x], body), expected, names=["pool", "avg"])


def test_mean_over_non_contiguous_axes_is_unsupported():
    x = _t((1, 4, 4, 2))
    body = lambda bb, x: bb.emit(_q(relax.op.mean(_dq(x, 0.5), axis=[1, 3]), 0.5), name_hint="m")
    _raises(_func([x], body), "relax.mean", "m", "MEAN over non-contiguous axes [1, 3]")


# ---------------------------------------------------------- data movement
def test_reshape_view_then_transpose():
    x = _t((1, 2, 3, 4))

    def body(bb, x):
        r = bb.emit(relax.op.reshape(x, (2, 3, 4)), name_hint="flat")
        return bb.emit(relax.op.permute_dims(r, [2, 0, 1]), name_hint="t")

    attrs = dict(rank=3, input_dims=[2, 3, 4, 1, 1, 1], perm=[2, 0, 1, 0, 0, 0])
    expected = _expected([x], [
        ("flat", lambda x: relax.op.reshape(x, [2, 3, 4])),
        ("t", lambda x, r: make_kernel_call("te_transpose_s8", [r], attrs, (4, 2, 3), "int8")),
    ])
    _check_lowers(_func([x], body), expected)


def test_bilinear_resize_is_unsupported():
    x = _t((1, 2, 2, 3))
    body = lambda bb, x: bb.emit(relax.op.image.resize2d(x, (4, 4), layout="NHWC", method="linear"), name_hint="big")
    _raises(_func([x], body), "relax.image.resize2d", "big", "only NHWC nearest-neighbour resize")


# ------------------------------------------------------------ activations
def test_logistic_then_int8_clip():
    x = _t((1, 8))

    def body(bb, x):
        s = bb.emit(_q(relax.op.sigmoid(_dq(x, 0.1, 3)), 1.0 / 256, -128), name_hint="sig")
        return bb.emit(relax.op.clip(s, -100, 100), name_hint="clipped")

    log_attrs = dict(size=8, **logistic_params(np.float32(0.1), 3))
    clip_attrs = dict(size=8, input_offset=0, output_offset=0, multiplier=1 << 30, shift=1,
                      act_min=-100, act_max=100, _op_type="CLIP")
    expected = _expected([x], [
        ("sig", lambda x: make_kernel_call("te_logistic_s8", [x], log_attrs, (1, 8), "int8")),
        ("clipped", lambda x, s: make_kernel_call("te_requantize_s8", [s], clip_attrs, (1, 8), "int8")),
    ])
    _check_lowers(_func([x], body), expected, names=["sig", "clipped"])


def test_logistic_with_wrong_output_scale_is_unsupported():
    x = _t((1, 8))
    body = lambda bb, x: bb.emit(_q(relax.op.sigmoid(_dq(x, 0.1)), 0.5, 0), name_hint="sig")
    _raises(_func([x], body), "relax.sigmoid", "sig", "scale 1/256 and zero point -128")


# --------------------------------------------------------------- quantize
def test_quantize_float_input_and_dequantize_output():
    x = _t((2, 3), "float32")

    def body(bb, x):
        q = bb.emit(_q(x, 0.5, 4), name_hint="q")
        return bb.emit(_dq(q, 0.5, 4), name_hint="out")

    expected = _expected([x], [
        ("q", lambda x: make_kernel_call("te_quantize_f32_s8", [x], dict(size=6, scale=0.5, zero_point=4),
                                         (2, 3), "int8")),
        ("out", lambda x, q: make_kernel_call("te_dequantize_s8_f32", [q], dict(size=6, scale=0.5, zero_point=4),
                                              (2, 3), "float32")),
    ])
    _check_lowers(_func([x], body), expected)


def test_per_channel_output_quantization_is_unsupported():
    x = _t((1, 2))
    body = lambda bb, x: bb.emit(relax.op.quantize(_dq(x, 0.5), relax.const(np.array([0.5, 0.25], np.float32)),
                                                   relax.const(np.array([0, 0], np.int8)), axis=1), name_hint="rq")
    _raises(_func([x], body), "relax.quantize", "rq", "output quantization must be per-tensor and constant")


# ------------------------------------------------------- layer normalization
def _layer_norm(axes=(-1,)):
    gamma = np.array([1.0, 2.0, 0.5, 1.0], np.float32)
    beta = np.array([0.0, 0.25, -0.5, 0.125], np.float32)

    def body(bb, x):
        shape = [int(d) for d in x.ty.shape][-len(axes):]
        f = bb.emit(relax.op.nn.layer_norm(_dq(x, 0.5, 1), relax.const(np.resize(gamma, shape)),
                                           relax.const(np.resize(beta, shape)), axes=list(axes), epsilon=1e-3))
        return bb.emit(_q(f, 0.25, -1), name_hint="y")
    return body


def test_layer_norm_folds_gamma_and_beta_into_the_kernel_constants():
    (step,) = [parse_kernel_call(b.value) for blk in _lower(_func([_t((3, 4))], _layer_norm())).body.blocks
               for b in blk.bindings if parse_kernel_call(b.value) is not None]
    assert step.kernel == "te_layer_norm_s8"
    a = step.attrs
    assert (a["rows"], a["depth"], a["input_zero_point"], a["output_zero_point"]) == (3, 4, 1, -1)
    assert a["epsilon_term"] == round(1e-3 * 4 ** 3 / 0.5 ** 2)
    mult, shift, bias = (t.value.numpy() for t in step.tensors[1:4])
    # y (Q30) * multiplier * 2^shift / 2^31 is sqrt(depth) * gamma / output_scale in fraction_bits
    factor = mult.astype(np.float64) * 2.0 ** (shift.astype(np.float64) + 30 - 31)
    want = 2.0 * np.array([1.0, 2.0, 0.5, 1.0]) / 0.25 * 2.0 ** a["fraction_bits"]
    np.testing.assert_allclose(factor, want, rtol=1e-8)
    np.testing.assert_array_equal(bias, np.round(np.array([0.0, 0.25, -0.5, 0.125]) / 0.25 * 2.0 ** a["fraction_bits"]))


def test_layer_norm_over_several_axes_is_unsupported():
    _raises(_func([_t((3, 4))], _layer_norm(axes=(0, 1))), "relax.nn.layer_norm", "y", "only the last axis")
