"""The training kernels (src/kernels/te_training.cc) against their float64 reference.

(a) Every kernel of the header's "Training" section, built for the host with
    g++ -Wall -Wextra -Werror and called through ctypes on several shapes
    (odd sizes, padding, stride 2, dilation), matches
    ``tinyengine_tvm.training.reference``.  Tolerance: a kernel output that
    sums n float32 terms may differ from the float64 value by at most
    (n + 4) * 2^-23 * A, A being the same sum of the terms' absolute values
    (the classical bound of recursive summation, with room for the three
    products forming each term).  A wrong index, sign or scale moves a value
    by a whole term, far outside it.
(b) A few gradients of each kernel equal central finite differences of the
    float forward (linear layers: exact up to float64 rounding; softmax
    cross-entropy: O(h^2)), so the reference's calculus is checked too.
(c) The QAS update is checked exactly: ties, saturation, inf and NaN on
    hand-computed values; random updates equal the reference except where
    the float64 increment lies within 1e-4 of a rounding tie; and the update
    is float SGD on the real weights (the s^-2 of QAS, not s^-1 or 1).
(d) The kernels compose: an int8 FC classifier trains with them alone.
(e) te_training.cc compiles with arm-none-eabi-g++ -Werror -Wdouble-promotion
    for Cortex-M7 and Cortex-M4 (hard float) and references nothing beyond
    expf, logf, memset and libgcc's float/int64 conversions (skipped, with
    the reason printed, without the toolchain).
"""
from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from tinyengine_tvm.kernels import FUNCTIONS, STRUCTS, kernel_dir
from tinyengine_tvm.kernels.abi import SOURCES
from tinyengine_tvm.training import reference as ref

SRC = kernel_dir()
HEADER = os.path.join(SRC, "include", "tinyengine_kernels.h")
SOURCE = os.path.join(SRC, "kernels", "te_training.cc")
FLAGS = ["-std=c++17", "-O2", "-fno-exceptions", "-fno-rtti", "-Wall", "-Wextra", "-Werror", "-Wdouble-promotion",
         "-I", os.path.join(SRC, "include")]
EPS32 = 2.0 ** -23


def training_functions():
    """The functions declared in the header's "Training" section."""
    text = open(HEADER, encoding="utf-8").read()
    start = text.index("/* Training: backward and update kernels")
    section = text[start:text.index("#ifdef __cplusplus", start)]
    return sorted(set(re.findall(r"^\w[\w ]*?\b(te_\w+)\s*\(", section, flags=re.M)))


# --------------------------------------------------------------------------- the library
_CTYPES = {"int32_t": ctypes.c_int32, "float": ctypes.c_float}


def _struct(name):
    """A ctypes Structure laid out from the header's struct ``name``."""
    return type(name, (ctypes.Structure,), {"_fields_": [(f, _CTYPES[t]) for t, f in STRUCTS[name]]})


STRUCT_TYPES = {}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    cxx = shutil.which("g++")
    if cxx is None:
        print("SKIP: g++ not found; cannot build te_training.cc for the host")
        pytest.skip("g++ not found; cannot build te_training.cc for the host")
    so = str(tmp_path_factory.mktemp("training") / "libte_training.so")
    # the int8 forward FC too, for the training-loop test
    cmd = [cxx, *FLAGS, "-fPIC", "-shared", SOURCE, os.path.join(SRC, "kernels", "te_fully_connected.cc"), "-o", so,
           "-lm"]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"{' '.join(cmd)}\n{res.stderr}"
    dll = ctypes.CDLL(so)
    for name in training_functions() + ["te_fully_connected_s8"]:
        fn = FUNCTIONS[name]
        struct = fn.params[0][0].replace("const ", "").rstrip("*")
        STRUCT_TYPES.setdefault(struct, _struct(struct))
        getattr(dll, name).argtypes = [ctypes.POINTER(STRUCT_TYPES[struct])] + [ctypes.c_void_p] * (len(fn.params) - 1)
        getattr(dll, name).restype = None
    return dll


_DTYPES = {"float": np.float32, "int8_t": np.int8, "int32_t": np.int32}


def call(lib, name, params, *arrays):
    """Call kernel ``name`` with the struct fields ``params`` and numpy arrays (None: NULL),
    each checked against the prototype's element type."""
    fn = FUNCTIONS[name]
    ptrs = []
    for (ctype, pname), a in zip(fn.params[1:], arrays):
        if a is None:
            ptrs.append(None)
            continue
        base = ctype.replace("const ", "").rstrip("*").strip()
        want = None if base == "void" else _DTYPES[base]  # void*: scratch bytes of any type
        assert (want is None or a.dtype == want) and a.flags["C_CONTIGUOUS"], \
            f"{name}: {pname} must be contiguous {want}"
        ptrs.append(a.ctypes.data)
    assert len(arrays) == len(fn.params) - 1
    struct = STRUCT_TYPES[fn.params[0][0].replace("const ", "").rstrip("*")]
    getattr(lib, name)(ctypes.byref(struct(**params)), *ptrs)


def f32(x) -> float:
    """The value a float struct field holds."""
    return float(np.float32(x))


def assert_within(got, want, abs_sum, n_terms, what=""):
    """|got - want| <= (n_terms + 4) * 2^-23 * abs_sum elementwise (module docstring, (a))."""
    got, want, abs_sum = (np.asarray(v, np.float64) for v in (got, want, abs_sum))
    assert got.shape == want.shape, what
    bound = (n_terms + 4) * EPS32 * abs_sum + 1e-37
    err = np.abs(got - want)
    worst = np.unravel_index(np.argmax(err - bound), err.shape)
    assert np.all(err <= bound), f"{what}: |{got[worst]} - {want[worst]}| > {bound[worst]} at {worst}"


def rand_int8(rng, shape):
    return rng.integers(-128, 128, size=shape, dtype=np.int8)


def rand_f32(rng, shape, scale=1.0):
    return (rng.standard_normal(shape) * scale).astype(np.float32)


def central_difference(f, x, index, h):
    """(f(x + h e_index) - f(x - h e_index)) / 2h, x unchanged afterwards."""
    x = np.asarray(x, np.float64)
    plus, minus = x.copy(), x.copy()
    plus[index] += h
    minus[index] -= h
    return (f(plus) - f(minus)) / (2 * h)


def test_every_training_kernel_is_tested():
    names = training_functions()
    # the section declares exactly what te_training.cc defines
    assert set(names) == {f for f, src in SOURCES.items() if src == "te_training.cc"} and set(names) <= set(FUNCTIONS)
    source = open(__file__, encoding="utf-8").read()
    for name in names:
        if name.endswith("_get_buffer_size"):
            continue  # tests/test_kernel_abi.py checks every one against the KernelSpec's scratch
        assert f'"{name}"' in source, f"{name} is declared but not tested"


# --------------------------------------------------------------------------- fully connected
FC_CASES = [(1, 1, 1, 0), (3, 17, 5, -7), (4, 64, 10, 12), (2, 7, 33, -128)]


@pytest.mark.parametrize("batch, in_d, out_d, zp", FC_CASES)
def test_fully_connected_grads(lib, batch, in_d, out_d, zp):
    rng = np.random.default_rng(in_d * 100 + out_d)
    x, w = rand_int8(rng, (batch, in_d)), rand_int8(rng, (out_d, in_d))
    dy = rand_f32(rng, (batch, out_d))
    s_w = rng.uniform(1e-3, 2e-2, out_d).astype(np.float32)
    s_x = f32(rng.uniform(0.01, 0.1))
    p = dict(batch=batch, input_depth=in_d, output_depth=out_d, input_offset=-zp, input_scale=s_x, accumulate=0)

    dx = np.full((batch, in_d), np.nan, np.float32)
    call(lib, "te_fully_connected_grad_input_s8", p, dy, w, s_w, dx)
    assert_within(dx, ref.fully_connected_grad_input(dy, w, s_w),
                  ref.fully_connected_grad_input(np.abs(dy), np.abs(w.astype(np.int16)), s_w), out_d, "dX")

    gw, gb = np.full((out_d, in_d), np.nan, np.float32), np.full(out_d, np.nan, np.float32)
    call(lib, "te_fully_connected_grad_weights_s8", p, dy, x, s_w, gw, gb)
    want_w, want_b = ref.fully_connected_grad_weights(dy, x, s_x, zp, s_w)
    abs_w, abs_b = ref.fully_connected_grad_weights(np.abs(dy), np.abs(x.astype(np.int16) - zp), s_x, 0, s_w)
    assert_within(gw, want_w, abs_w, batch, "dW")
    assert_within(gb, want_b, abs_b, batch, "db")

    # accumulate: a second call adds (a residual input, or gradient accumulation)
    call(lib, "te_fully_connected_grad_weights_s8", dict(p, accumulate=1), dy, x, s_w, gw, None)
    assert_within(gw, 2 * want_w, 2 * abs_w, 2 * batch, "dW accumulated")
    assert_within(gb, want_b, abs_b, batch, "db untouched when NULL")
    # bias only (the sparse update of a layer whose weights are frozen)
    gb2 = np.full(out_d, np.nan, np.float32)
    call(lib, "te_fully_connected_grad_weights_s8", p, dy, x, s_w, None, gb2)
    assert np.array_equal(gb2, gb)


def test_fully_connected_grads_are_derivatives():
    """The reference's FC gradients equal finite differences of the float layer."""
    rng = np.random.default_rng(1)
    x, w, b = rand_int8(rng, (3, 6)), rand_int8(rng, (4, 6)), rng.integers(-500, 500, 4)
    s_w, s_x, zp = rng.uniform(0.01, 0.02, 4), 0.05, 3
    r = rng.standard_normal((3, 4))  # dL/dY of L = sum(r * Y)

    def loss(xr=None, wi=None, bi=None):
        xr = ref.dequantize(x, s_x, zp) if xr is None else xr
        wi = w if wi is None else wi
        bi = b if bi is None else bi
        return np.sum(r * ref.fully_connected(xr, s_w[:, None] * wi, s_x * s_w * bi))

    gw, gb = ref.fully_connected_grad_weights(r, x, s_x, zp, s_w)
    dx = ref.fully_connected_grad_input(r, w, s_w)
    for idx in [(0, 0), (2, 5), (1, 3)]:
        assert np.isclose(central_difference(lambda v: loss(xr=v), ref.dequantize(x, s_x, zp), idx, 1e-3), dx[idx])
    for idx in [(0, 0), (3, 5), (2, 1)]:
        assert np.isclose(central_difference(lambda v: loss(wi=v), w, idx, 1e-2), gw[idx])
    for idx in [(0,), (3,)]:
        assert np.isclose(central_difference(lambda v: loss(bi=v), b, idx, 1e-2), gb[idx])


# --------------------------------------------------------------------------- convolutions
# (batch, H, W, IC, OC, (KH, KW), stride, (pad_top, pad_bottom), (pad_left, pad_right), dilation)
CONV_CASES = [
    (1, 5, 7, 8, 6, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),   # pointwise
    (2, 7, 6, 3, 4, (3, 3), (1, 1), (1, 1), (1, 1), (1, 1)),   # same padding
    (1, 9, 11, 5, 7, (3, 3), (2, 2), (1, 1), (1, 1), (1, 1)),  # stride 2, odd input
    (1, 8, 8, 2, 3, (3, 3), (2, 2), (0, 1), (0, 1), (1, 1)),   # stride 2, TF SAME on even input
    (1, 8, 8, 2, 3, (3, 3), (2, 2), (0, 0), (0, 0), (1, 1)),   # valid: the last row and column unread
    (2, 6, 5, 3, 5, (5, 3), (2, 1), (2, 2), (0, 0), (1, 1)),   # rectangular kernel, asymmetric strides
    (1, 9, 9, 3, 2, (3, 3), (1, 1), (2, 2), (2, 2), (2, 2)),   # dilation 2
    (1, 1, 1, 4, 3, (1, 1), (1, 1), (0, 0), (0, 0), (1, 1)),   # 1x1 image
]


CONV_KERNELS = {False: ("te_conv2d_grad_input_s8", "te_conv2d_grad_weights_s8"),
                True: ("te_depthwise_conv2d_grad_input_s8", "te_depthwise_conv2d_grad_weights_s8")}
REF_CONV = {False: (ref.conv2d_grad_input, ref.conv2d_grad_weights),
            True: (ref.depthwise_conv2d_grad_input, ref.depthwise_conv2d_grad_weights)}


def _conv_params(case, zp, s_x, depthwise=False):
    n, h, w, ic, oc, (kh, kw), (sh, sw), (pt, pb), (pl, pr), (dh, dw) = case
    oh = (h + pt + pb - (kh - 1) * dh - 1) // sh + 1
    ow = (w + pl + pr - (kw - 1) * dw - 1) // sw + 1
    return dict(batch=n, input_h=h, input_w=w, input_c=ic, output_h=oh, output_w=ow, output_c=ic if depthwise else oc,
                kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt,
                pad_left=pl, input_offset=-zp, input_scale=s_x, accumulate=0)


def _geometry(p):
    return ((p["stride_h"], p["stride_w"]), (p["pad_top"], p["pad_left"]), (p["dilation_h"], p["dilation_w"]))


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
@pytest.mark.parametrize("case", CONV_CASES, ids=[f"case{i}" for i in range(len(CONV_CASES))])
def test_conv_grads(lib, case, depthwise):
    rng = np.random.default_rng(sum(case[1:5]) + depthwise)
    zp, s_x = int(rng.integers(-128, 128)), f32(rng.uniform(0.01, 0.1))
    p = _conv_params(case, zp, s_x, depthwise)
    n, oc, kh, kw, ic = p["batch"], p["output_c"], p["kernel_h"], p["kernel_w"], p["input_c"]
    stride, pad, dil = _geometry(p)
    x = rand_int8(rng, (n, p["input_h"], p["input_w"], ic))
    w = rand_int8(rng, (1, kh, kw, ic) if depthwise else (oc, kh, kw, ic))
    dy = rand_f32(rng, (n, p["output_h"], p["output_w"], oc))
    s_w = rng.uniform(1e-3, 2e-2, oc).astype(np.float32)
    c_input, c_weights = CONV_KERNELS[depthwise]
    grad_input, grad_weights = REF_CONV[depthwise]

    dx = np.full(x.shape, np.nan, np.float32)
    call(lib, c_input, p, dy, w, s_w, dx)
    want = grad_input(dy, w, s_w, x.shape, stride, pad, dil)
    abs_sum = grad_input(np.abs(dy), np.abs(w.astype(np.int16)), s_w, x.shape, stride, pad, dil)
    assert_within(dx, want, abs_sum, kh * kw * (1 if depthwise else oc), "dX")
    if case[9] == (1, 1) and case[6] == (2, 2) and case[7] == (0, 0):
        assert not dx[:, -1].any() and not dx[:, :, -1].any(), "an unread input got a gradient"

    gw, gb = np.full(w.shape, np.nan, np.float32), np.full(oc, np.nan, np.float32)
    call(lib, c_weights, p, dy, x, s_w, gw, gb)
    want_w, want_b = grad_weights(dy, x, s_x, zp, s_w, (kh, kw), stride, pad, dil)
    abs_w, abs_b = grad_weights(np.abs(dy), np.abs(x.astype(np.int16) - zp), s_x, 0, s_w, (kh, kw), stride, pad, dil)
    terms = n * p["output_h"] * p["output_w"]
    assert_within(gw, want_w, abs_w, terms, "dW")
    assert_within(gb, want_b, abs_b, terms, "db")

    # accumulate into dX (the second gradient reaching a residual connection's input)
    call(lib, c_input, dict(p, accumulate=1), dy, w, s_w, dx)
    assert_within(dx, 2 * want, 2 * abs_sum, 2 * kh * kw * (1 if depthwise else oc), "dX accumulated")
    # NULL filter gradient: bias only
    gb2 = np.full(oc, np.nan, np.float32)
    call(lib, c_weights, p, dy, x, s_w, None, gb2)
    assert np.array_equal(gb2, gb)


@pytest.mark.parametrize("depthwise", [False, True], ids=["conv", "depthwise"])
def test_conv_grads_are_derivatives(depthwise):
    """The reference's convolution gradients equal finite differences of the float convolution
    (stride 2, one-sided padding, so that the window bookkeeping is what is checked)."""
    rng = np.random.default_rng(5 + depthwise)
    case = (1, 7, 6, 3, 4, (3, 3), (2, 2), (1, 1), (0, 1), (1, 1))
    p = _conv_params(case, zp=-5, s_x=0.04, depthwise=depthwise)
    stride, pad, dil = _geometry(p)
    oc, ic = p["output_c"], p["input_c"]
    out_hw = (p["output_h"], p["output_w"])
    x = rand_int8(rng, (1, 7, 6, ic))
    w = rand_int8(rng, (1, 3, 3, ic) if depthwise else (oc, 3, 3, ic))
    s_w = rng.uniform(0.01, 0.02, oc)
    r = rng.standard_normal((1, *out_hw, oc))
    forward = ref.depthwise_conv2d if depthwise else ref.conv2d
    w_scale = s_w if depthwise else s_w[:, None, None, None]
    grad_input, grad_weights = REF_CONV[depthwise]
    x_real = ref.dequantize(x, 0.04, 5)

    def loss(xr, wi):
        return np.sum(r * forward(xr, w_scale * wi, None, stride, pad, dil, out_hw))

    dx = grad_input(r, w, s_w, x.shape, stride, pad, dil)
    gw, _ = grad_weights(r, x, 0.04, 5, s_w, (3, 3), stride, pad, dil)
    for idx in [(0, 0, 0, 0), (0, 6, 5, ic - 1), (0, 3, 2, 1), (0, 6, 0, 2)]:
        assert np.isclose(central_difference(lambda v: loss(v, w), x_real, idx, 1e-3), dx[idx])
    for idx in [(0, 0, 0, 0), (0, 2, 2, ic - 1), (0, 1, 0, 2)]:
        assert np.isclose(central_difference(lambda v: loss(x_real, v), w, idx, 1e-2), gw[idx])
    assert dx[0, 6, 5].any(), "the case must reach the bottom-right input"


# --------------------------------------------------------------------------- pooling
# (batch, H, W, C, (FH, FW), stride, (pad_top, pad_bottom), (pad_left, pad_right))
POOL_CASES = [
    (1, 7, 7, 3, (2, 2), (2, 2), (0, 0), (0, 0)),   # VALID, odd input: last row/column unused
    (2, 7, 7, 4, (2, 2), (2, 2), (0, 1), (0, 1)),   # SAME on odd input
    (1, 9, 8, 5, (3, 3), (2, 2), (1, 1), (1, 0)),   # stride 2, padding
    (1, 5, 6, 2, (3, 3), (1, 1), (1, 1), (1, 1)),   # overlapping windows
    (2, 4, 5, 3, (4, 5), (1, 1), (0, 0), (0, 0)),   # one window: a global pool
    (1, 6, 3, 1, (3, 1), (3, 1), (2, 2), (0, 0)),   # a window with one in-bounds row
]


def _pool_params(case):
    n, h, w, c, (fh, fw), (sh, sw), (pt, pb), (pl, pr) = case
    return dict(batch=n, input_h=h, input_w=w, channels=c, output_h=(h + pt + pb - fh) // sh + 1,
                output_w=(w + pl + pr - fw) // sw + 1, filter_h=fh, filter_w=fw, stride_h=sh, stride_w=sw,
                pad_top=pt, pad_left=pl, act_min=-128, act_max=127)


@pytest.mark.parametrize("case", POOL_CASES, ids=[f"case{i}" for i in range(len(POOL_CASES))])
def test_pool_grads(lib, case):
    rng = np.random.default_rng(sum(case[1:4]))
    p = _pool_params(case)
    window, stride, pad = (p["filter_h"], p["filter_w"]), (p["stride_h"], p["stride_w"]), (p["pad_top"], p["pad_left"])
    shape = (p["batch"], p["input_h"], p["input_w"], p["channels"])
    dy = rand_f32(rng, (p["batch"], p["output_h"], p["output_w"], p["channels"]))

    dx = np.full(shape, np.nan, np.float32)
    call(lib, "te_avg_pool_grad_f32", p, dy, dx)
    assert_within(dx, ref.avg_pool_grad(dy, shape, window, stride, pad),
                  ref.avg_pool_grad(np.abs(dy), shape, window, stride, pad), window[0] * window[1], "avg dX")

    # few distinct values, so that windows hold ties
    x = rng.integers(-3, 3, size=shape).astype(np.int8)
    dx = np.full(shape, np.nan, np.float32)
    call(lib, "te_max_pool_grad_s8", p, x, dy, dx)
    assert_within(dx, ref.max_pool_grad(x, dy, window, stride, pad),
                  ref.max_pool_grad(x, np.abs(dy), window, stride, pad), window[0] * window[1], "max dX")


def test_max_pool_grad_takes_the_first_of_equals(lib):
    """A 2x2 window of equal values sends the gradient to its top-left element, as the
    forward te_max_pool_s8 (strictly greater replaces) keeps the first maximum."""
    p = _pool_params((1, 2, 3, 1, (2, 2), (1, 1), (0, 0), (0, 0)))
    x = np.array([[5, 7, 7], [7, 7, 1]], np.int8).reshape(1, 2, 3, 1)
    dy = np.array([1.0, 10.0], np.float32).reshape(1, 1, 2, 1)
    dx = np.zeros(x.shape, np.float32)
    call(lib, "te_max_pool_grad_s8", p, x, dy, dx)
    assert dx.reshape(2, 3).tolist() == [[0, 11, 0], [0, 0, 0]]


def test_pool_grads_are_derivatives():
    """avg/max pool gradients equal finite differences of the float pools (max: distinct values)."""
    rng = np.random.default_rng(3)
    p = _pool_params((1, 9, 8, 2, (3, 3), (2, 2), (1, 1), (1, 0)))
    window, stride, pad = (3, 3), (2, 2), (1, 1)
    out_hw = (p["output_h"], p["output_w"])
    x = rng.permutation(np.arange(-72, 72)).reshape(1, 9, 8, 2).astype(np.float64)
    r = rng.standard_normal((1, *out_hw, 2))
    avg = ref.avg_pool_grad(r, x.shape, window, stride, pad)
    mx = ref.max_pool_grad(x, r, window, stride, pad)
    for idx in np.ndindex(x.shape):  # every input: the pools are cheap
        fd = central_difference(lambda v: np.sum(r * ref.avg_pool(v, window, stride, pad, out_hw)), x, idx, 1e-3)
        assert np.isclose(fd, avg[idx]), idx
        fd = central_difference(lambda v: np.sum(r * ref.max_pool(v, window, stride, pad, out_hw)), x, idx, 1e-3)
        assert np.isclose(fd, mx[idx], atol=1e-9), idx
    assert np.isclose(mx.sum(), r.sum()) and np.isclose(avg.sum(), r.sum())


@pytest.mark.parametrize("outer, reduced, inner", [(1, 49, 16), (3, 5, 7), (2, 1, 1)])
def test_mean_grad(lib, outer, reduced, inner):
    rng = np.random.default_rng(reduced)
    dy = rand_f32(rng, (outer, inner))
    p = dict(outer=outer, reduced=reduced, inner=inner, input_offset=0, output_offset=0, multiplier=0, shift=0)
    dx = np.full((outer, reduced, inner), np.nan, np.float32)
    call(lib, "te_mean_grad_f32", p, dy, dx)
    want = ref.mean_grad(dy, reduced)
    assert_within(dx, want, np.abs(want), 1, "mean dX")
    x = rng.standard_normal((outer, reduced, inner))
    fd = central_difference(lambda v: np.sum(dy * ref.mean(v)), x, (outer - 1, reduced - 1, 0), 1e-3)
    assert np.isclose(fd, want[outer - 1, reduced - 1, 0])


# --------------------------------------------------------------------------- activation, loss
@pytest.mark.parametrize("kind, scale, zp", [("relu", 0.05, -128), ("relu", 0.02, -20), ("relu6", 0.03, -128),
                                             ("relu6", 0.1, -100), ("relu6", 0.01, 0), ("none", 0.1, 3)])
def test_activation_grad(lib, kind, scale, zp):
    rng = np.random.default_rng(abs(zp))
    act_min, act_max = ref.activation_range(kind, scale, zp)
    size = 257
    # every int8 value, the clamps included, then random ones
    q = np.concatenate([np.arange(-128, 128), rng.integers(act_min, act_max + 1, size - 256)]).astype(np.int8)
    q = np.clip(q, act_min, act_max).astype(np.int8)
    dy = rand_f32(rng, size)
    p = dict(size=size, act_min=act_min, act_max=act_max)
    dx = np.full(size, np.nan, np.float32)
    call(lib, "te_activation_grad_s8", p, q, dy, dx)
    want = ref.activation_grad(q, dy, act_min, act_max)
    assert np.array_equal(dx, want.astype(np.float32))
    assert not dx[q == act_min].any() and not dx[q == act_max].any()
    assert np.array_equal(dx[(q > act_min) & (q < act_max)], dy[(q > act_min) & (q < act_max)])
    inplace = dy.copy()
    call(lib, "te_activation_grad_s8", p, q, inplace, inplace)
    assert np.array_equal(inplace, dx)


def test_activation_range_is_tflites():
    assert ref.activation_range("relu", 0.05, -128) == (-128, 127)
    assert ref.activation_range("relu", 0.05, -3) == (-3, 127)
    assert ref.activation_range("relu6", 6 / 255, -128) == (-128, 127)
    assert ref.activation_range("relu6", 0.1, -100) == (-100, -40)
    assert ref.activation_range("none", 0.1, 7) == (-128, 127)


@pytest.mark.parametrize("batch, classes, scale, zp", [(1, 10, 0.1, 5), (4, 10, 0.05, -20), (3, 2, 0.5, 0),
                                                       (5, 37, 0.02, 127), (2, 1000, 0.25, -128)])
def test_softmax_cross_entropy(lib, batch, classes, scale, zp):
    rng = np.random.default_rng(classes)
    q = rand_int8(rng, (batch, classes))
    labels = rng.integers(0, classes, batch).astype(np.int32)
    s = f32(scale)
    grad, loss = np.full((batch, classes), np.nan, np.float32), np.full(1, np.nan, np.float32)
    call(lib, "te_softmax_cross_entropy_s8", dict(batch=batch, classes=classes, input_scale=s), q, labels, grad, loss)
    want_loss, want_grad = ref.softmax_cross_entropy(q, s, zp, labels)
    # expf/logf within a few ulps, sums of `classes` terms, and the logits' own float32 rounding
    z_max = 255 * s
    assert abs(loss[0] - want_loss) <= (classes + 8) * EPS32 * (abs(want_loss) + z_max)
    assert np.all(np.abs(grad - want_grad) <= (classes + 8 + 4 * z_max) * EPS32 / batch)
    assert np.allclose(grad.sum(axis=1), 0, atol=classes * EPS32)


def test_softmax_cross_entropy_is_derivative():
    rng = np.random.default_rng(11)
    q, labels = rand_int8(rng, (3, 6)), np.array([0, 5, 2])
    scale, zp = 0.07, 4
    _, grad = ref.softmax_cross_entropy(q, scale, zp, labels)

    def loss(z):  # the same loss of real logits z
        zz = z - z.max(axis=1, keepdims=True)
        return np.mean(np.log(np.exp(zz).sum(axis=1)) - zz[np.arange(3), labels])

    z = ref.dequantize(q, scale, zp)
    for idx in [(0, 0), (1, 5), (2, 3), (1, 1)]:
        assert np.isclose(central_difference(loss, z, idx, 1e-5), grad[idx], rtol=1e-6, atol=1e-9)


# --------------------------------------------------------------------------- QAS SGD
def qas(lib, name, param, grad, scale, lr, inner, momentum=0.0, velocity=None, input_scale=1.0):
    out = param.copy()
    p = dict(size=param.size, channels=scale.size, inner=inner, learning_rate=f32(lr), momentum=f32(momentum),
             input_scale=f32(input_scale))
    call(lib, name, p, out, grad, scale, velocity)
    return out


def test_qas_sgd_s8_rounds_and_saturates_exactly(lib):
    """scale 0.5 and lr 0.25 make the increment exactly -grad (dyadic, exact in float32)."""
    g = np.array([0.5, -0.5, 2.5, -2.5, -1, 1, -20, 20, 0.49999997, -0.49999997, 1e30, np.inf, -np.inf, np.nan,
                  -1e-9, 0.0, 127.75, -300], np.float32)
    w = np.array([0, 0, 5, -5, 127, -128, 120, -120, 3, 3, 3, 3, 3, 3, -7, -128, 0, -128], np.int8)
    want = [-1, 1, 2, -2, 127, -128, 127, -128, 3, 3, -128, -128, 127, 3, -7, -128, -128, 127]
    got = qas(lib, "te_qas_sgd_s8", w, g, np.array([0.5], np.float32), 0.25, inner=w.size)
    assert got.tolist() == want
    new, _ = ref.qas_sgd(w, g.astype(np.float64), np.array([0.5]), 0.25, inner=w.size)
    assert new.tolist() == want


def test_qas_sgd_s32_rounds_and_saturates_exactly(lib):
    """Bias scale input_scale * scale = 0.25 * 2 = 0.5; lr 0.25: increment -grad again."""
    i32max, i32min = 2 ** 31 - 1, -2 ** 31
    b = np.array([0, 0, 10, i32max - 3, i32min + 3, 7, 7, 2 ** 30, -5], np.int32)
    g = np.array([0.5, -1.5, 2.5, -10, 10, np.nan, 3e9, -2 ** 31, 1e38], np.float32)
    want = [-1, 2, 7, i32max, i32min, 7, i32min, i32max, i32min]
    scale = np.array([2.0], np.float32)
    got = qas(lib, "te_qas_sgd_s32", b, g, scale, 0.25, inner=b.size, input_scale=0.25)
    assert got.tolist() == want
    new, _ = ref.qas_sgd(b, g.astype(np.float64), scale, 0.25, inner=b.size, input_scale=0.25)
    assert new.tolist() == want


def test_qas_sgd_updates_whole_blocks_only(lib):
    """size 10 with channels * inner = 9: the tenth element (and what lies past size) is not touched."""
    w = np.zeros(12, np.int8)
    p = dict(size=10, channels=3, inner=3, learning_rate=1.0, momentum=0.0, input_scale=1.0)
    call(lib, "te_qas_sgd_s8", p, w, np.full(12, -1.0, np.float32), np.ones(3, np.float32), None)
    assert w.tolist() == [1] * 9 + [0] * 3


@pytest.mark.parametrize("in_d, out_d, rows", [(1, 1, 1), (17, 5, 5), (128, 10, 10), (33, 8, 3)])
def test_fused_fc_update_equals_the_two_kernels_on_the_whole_filter(lib, in_d, out_d, rows):
    """te_fully_connected_sgd_s8 (one row's gradient at a time) leaves exactly the weights that
    te_fully_connected_grad_weights_s8 then te_qas_sgd_s8 on the whole filter do, and touches
    only the first ``rows`` rows."""
    rng = np.random.default_rng(in_d * 10 + rows)
    w = rand_int8(rng, (out_d, in_d))
    x = rand_int8(rng, (1, in_d))
    dy = rand_f32(rng, (1, out_d), 0.5)
    scale = (rng.uniform(0.005, 0.05, out_d)).astype(np.float32)
    lr, off, x_scale = 0.05, 7, 0.02
    grad = np.zeros((rows, in_d), np.float32)
    call(lib, "te_fully_connected_grad_weights_s8",
         dict(batch=1, input_depth=in_d, output_depth=rows, input_offset=off, input_scale=x_scale, accumulate=0),
         dy[:, :rows].copy(), x, scale[:rows].copy(), grad, None)
    want = w.copy()
    head = want[:rows].copy()
    call(lib, "te_qas_sgd_s8", dict(size=rows * in_d, channels=rows, inner=in_d, learning_rate=lr, momentum=0.0,
                                    input_scale=0.0), head, grad, scale[:rows].copy(), None)
    want[:rows] = head
    got = w.copy()
    scratch = np.zeros(in_d, np.float32)
    call(lib, "te_fully_connected_sgd_s8", dict(batch=1, input_depth=in_d, output_depth=rows, input_offset=off,
                                                input_scale=x_scale, learning_rate=lr),
         got, dy.reshape(-1).copy(), x.reshape(-1).copy(), scale, scratch)
    np.testing.assert_array_equal(got, want)
    assert (got[:rows] != w[:rows]).any()  # the case moved something


@pytest.mark.parametrize("geom", [
    dict(h=5, w=5, ic=3, oc=4, k=3, s=1, d=1, pad=1, rows=4),
    dict(h=8, w=7, ic=8, oc=6, k=3, s=2, d=1, pad=1, rows=3),
    dict(h=6, w=6, ic=5, oc=7, k=1, s=1, d=1, pad=0, rows=7),
    dict(h=9, w=9, ic=2, oc=3, k=3, s=1, d=2, pad=2, rows=2),
], ids=["3x3", "stride2-ratio", "1x1", "dilated-ratio"])
def test_fused_conv_update_equals_the_two_kernels_on_the_whole_filter(lib, geom):
    """te_conv2d_sgd_s8 (one output channel's filter gradient at a time) leaves exactly the weights
    that te_conv2d_grad_weights_s8 then te_qas_sgd_s8 leave, and touches only the first ``rows``."""
    g = geom
    rng = np.random.default_rng(g["h"] * 100 + g["oc"])
    k = g["k"]
    oh = (g["h"] + 2 * g["pad"] - g["d"] * (k - 1) - 1) // g["s"] + 1
    ow = (g["w"] + 2 * g["pad"] - g["d"] * (k - 1) - 1) // g["s"] + 1
    geo = dict(batch=1, input_h=g["h"], input_w=g["w"], input_c=g["ic"], output_h=oh, output_w=ow,
               output_c=g["oc"], kernel_h=k, kernel_w=k, stride_h=g["s"], stride_w=g["s"], dilation_h=g["d"],
               dilation_w=g["d"], pad_top=g["pad"], pad_left=g["pad"], input_offset=-3, input_scale=0.03)
    w = rand_int8(rng, (g["oc"], k, k, g["ic"]))
    x = rand_int8(rng, (1, g["h"], g["w"], g["ic"]))
    dy = rand_f32(rng, (1, oh, ow, g["oc"]), 0.5)
    scale = rng.uniform(0.002, 0.02, g["oc"]).astype(np.float32)
    lr, rows, f_size = 0.05, g["rows"], k * k * g["ic"]
    grad = np.zeros(w.shape, np.float32)
    call(lib, "te_conv2d_grad_weights_s8", dict(geo, accumulate=0), dy, x, scale, grad, None)
    want = w.copy()
    call(lib, "te_qas_sgd_s8", dict(size=rows * f_size, channels=rows, inner=f_size, learning_rate=lr,
                                    momentum=0.0, input_scale=0.0), want, grad, scale, None)
    got = w.copy()
    scratch = np.zeros(f_size, np.float32)
    call(lib, "te_conv2d_sgd_s8", dict(geo, learning_rate=lr, channels=rows), got, dy, x, scale, scratch)
    np.testing.assert_array_equal(got, want)
    assert (got[:rows] != w[:rows]).any()  # the case moved something
    np.testing.assert_array_equal(got[rows:], w[rows:])


def _near_tie(delta):
    frac = np.abs(delta - np.trunc(delta))
    return np.abs(frac - 0.5) < 1e-4 * np.maximum(1.0, np.abs(delta))


def _assert_update(got, want, delta):
    """Equal except within 1e-4 of a rounding tie, where float32 and float64 may round apart by one."""
    diff = np.abs(got.astype(np.int64) - want.astype(np.int64))
    tie = _near_tie(delta)
    assert np.all(diff[~tie] == 0), f"{np.count_nonzero(diff[~tie])} elements differ away from a tie"
    assert np.all(diff <= 1)


# (param shape, channels, inner): OHWI per channel, depthwise [1, KH, KW, C], per-tensor FC
QAS_LAYOUTS = [((6, 3, 3, 5), 6, 45), ((1, 3, 3, 16), 16, 1), ((10, 33), 1, 330)]


@pytest.mark.parametrize("shape, channels, inner", QAS_LAYOUTS)
@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_qas_sgd_s8_matches_reference(lib, shape, channels, inner, momentum):
    rng = np.random.default_rng(channels * 7 + int(momentum * 10))
    w = rand_int8(rng, shape)
    scale = rng.uniform(1e-3, 3e-2, channels).astype(np.float32)
    velocity = rand_f32(rng, shape, 1e3) if momentum else None
    # integer gradients of the size te_*_grad_weights_s8 give: s_w * (a real gradient around 1)
    grad = (rng.standard_normal(shape) * 0.5 * scale.repeat(inner)[np.arange(w.size) % (channels * inner)]
            .reshape(shape)).astype(np.float32)
    lr = 0.02
    v_c = None if velocity is None else velocity.copy()
    got = qas(lib, "te_qas_sgd_s8", w, grad, scale, lr, inner, momentum, v_c)
    want, want_v = ref.qas_sgd(w, grad, scale, f32(lr), inner, f32(momentum), velocity)
    s = scale.astype(np.float64).repeat(inner)[np.arange(w.size) % (channels * inner)].reshape(shape)
    carried = f32(momentum) * velocity if velocity is not None else 0.0
    _assert_update(got, want, -f32(lr) * (grad / s ** 2 + carried))
    changed = np.count_nonzero(got != w)
    assert changed > w.size // 4, f"only {changed} of {w.size} weights moved: the case tests nothing"
    if velocity is not None:  # v = momentum * v + grad / s^2: three float32 roundings and 1 / s^2's
        assert_within(v_c, want_v, np.abs(carried) + np.abs(grad / s ** 2), 2, "velocity")


@pytest.mark.parametrize("momentum", [0.0, 0.5])
def test_qas_sgd_s32_matches_reference(lib, momentum):
    rng = np.random.default_rng(int(momentum * 10))
    c = 24
    b = rng.integers(-2 ** 20, 2 ** 20, c).astype(np.int32)
    b[:2] = [2 ** 31 - 2, -2 ** 31 + 2]
    s_w = rng.uniform(1e-3, 3e-2, c).astype(np.float32)
    s_x = 0.04
    grad = rand_f32(rng, c, 1e-4)
    velocity = rand_f32(rng, c, 1e5) if momentum else None
    v_c = None if velocity is None else velocity.copy()
    got = qas(lib, "te_qas_sgd_s32", b, grad, s_w, 0.01, 1, momentum, v_c, input_scale=s_x)
    want, want_v = ref.qas_sgd(b, grad, s_w, f32(0.01), 1, f32(momentum), velocity, input_scale=f32(s_x))
    s = s_w.astype(np.float64) * f32(s_x)
    carried = f32(momentum) * velocity if velocity is not None else 0.0
    _assert_update(got, want, -f32(0.01) * (grad / s ** 2 + carried))
    assert np.count_nonzero(got != b) > c // 2
    if velocity is not None:  # as for int8, plus the rounding of the bias scale s_x * s_w
        assert_within(v_c, want_v, np.abs(carried) + np.abs(grad / s ** 2), 4, "velocity")


def test_qas_update_is_float_sgd_on_the_real_weights(lib):
    """MCUNetV3's claim: with the s^-2 scaling, the int8 update of an FC layer equals float SGD
    on W_real = s * W_int, re-quantized: W_new = round((W_real - lr * dL/dW_real) / s)."""
    rng = np.random.default_rng(21)
    batch, in_d, out_d, zp, s_x = 8, 12, 5, -3, f32(0.05)
    x, w = rand_int8(rng, (batch, in_d)), rng.integers(-100, 100, (out_d, in_d)).astype(np.int8)
    dy = rand_f32(rng, (batch, out_d))
    s_w = rng.uniform(5e-3, 1e-2, out_d).astype(np.float32)
    p = dict(batch=batch, input_depth=in_d, output_depth=out_d, input_offset=-zp, input_scale=s_x, accumulate=0)
    gw = np.empty((out_d, in_d), np.float32)
    call(lib, "te_fully_connected_grad_weights_s8", p, dy, x, s_w, gw, None)
    lr = 1e-3
    got = qas(lib, "te_qas_sgd_s8", w, gw, s_w, lr, in_d)

    s = s_w.astype(np.float64)[:, None]
    grad_real = dy.astype(np.float64).T @ ref.dequantize(x, s_x, zp)  # dL/dW_real, independently
    w_real_new = s * w - lr * grad_real
    want = np.clip(ref.round_half_away(w_real_new / s), -128, 127)
    _assert_update(got, want, w_real_new / s - w)
    assert np.count_nonzero(got != w) > w.size // 4


# --------------------------------------------------------------------------- a training loop
def test_int8_classifier_trains(lib):
    """The kernels compose into training: an int8 FC classifier (te_fully_connected_s8 forward,
    softmax cross-entropy, FC weight gradients, QAS SGD of the int8 weights and int32 bias,
    scales frozen as in MCUNetV3) learns four Gaussian classes from chance level."""
    from tinyengine_tvm.quantization.fixed_point import quantize_multiplier

    rng = np.random.default_rng(2022)
    classes, feats, n = 4, 16, 256
    means = rng.standard_normal((classes, feats)) * 1.2
    labels = rng.integers(0, classes, n).astype(np.int32)
    s_x, s_y = f32(4.0 / 127), f32(0.1)
    x = np.clip(ref.round_half_away((means[labels] + rng.standard_normal((n, feats)) * 0.8) / s_x),
                -128, 127).astype(np.int8)
    s_w = np.full(classes, 0.5 / 127, np.float32)
    w = rng.integers(-8, 9, (classes, feats)).astype(np.int8)
    bias = np.zeros(classes, np.int32)
    mult, shift = zip(*(quantize_multiplier(float(s_x) * float(s) / float(s_y)) for s in s_w))
    mult, shift = np.array(mult, np.int32), np.array(shift, np.int32)

    def forward(xb):
        out = np.empty((len(xb), classes), np.int8)
        call(lib, "te_fully_connected_s8", dict(batch=len(xb), input_depth=feats, output_depth=classes, input_offset=0,
                                                filter_offset=0, output_offset=0, act_min=-128, act_max=127),
             np.ascontiguousarray(xb), w, bias, mult, shift, out)
        return out

    def loss_and_grad(xb, yb):
        grad, loss = np.empty((len(xb), classes), np.float32), np.empty(1, np.float32)
        call(lib, "te_softmax_cross_entropy_s8", dict(batch=len(xb), classes=classes, input_scale=s_y),
             forward(xb), np.ascontiguousarray(yb), grad, loss)
        return float(loss[0]), grad

    first, _ = loss_and_grad(x, labels)
    batch, lr = 16, 0.05
    for step in range(48):
        idx = rng.choice(n, batch, replace=False)
        _, dy = loss_and_grad(x[idx], labels[idx])
        gw, gb = np.empty((classes, feats), np.float32), np.empty(classes, np.float32)
        call(lib, "te_fully_connected_grad_weights_s8", dict(batch=batch, input_depth=feats, output_depth=classes,
                                                             input_offset=0, input_scale=s_x, accumulate=0),
             dy, np.ascontiguousarray(x[idx]), s_w, gw, gb)
        p = dict(size=w.size, channels=classes, inner=feats, learning_rate=lr, momentum=0.0, input_scale=s_x)
        call(lib, "te_qas_sgd_s8", p, w, gw, s_w, None)
        call(lib, "te_qas_sgd_s32", dict(p, size=classes, inner=1), bias, gb, s_w, None)
    last, _ = loss_and_grad(x, labels)
    accuracy = np.mean(np.argmax(forward(x), axis=1) == labels)
    assert first > 1.0 and last < 0.3 * first and accuracy > 0.9, (first, last, accuracy)


# --------------------------------------------------------------------------- Cortex-M build
ALLOWED_UNDEFINED = {"expf", "logf", "memset", "__aeabi_f2lz", "__aeabi_l2f"}


@pytest.mark.parametrize("cpu, fpu", [("cortex-m7", "fpv5-d16"), ("cortex-m4", "fpv4-sp-d16")])
def test_cortex_m_build(tmp_path, cpu, fpu):
    gxx, gcc, nm = (shutil.which(t) for t in ("arm-none-eabi-g++", "arm-none-eabi-gcc", "arm-none-eabi-nm"))
    if None in (gxx, gcc, nm):
        print("SKIP: arm-none-eabi-g++/gcc/nm not found (bash scripts/install_arm_toolchain.sh)")
        pytest.skip("arm-none-eabi toolchain not found (bash scripts/install_arm_toolchain.sh)")
    target = [f"-mcpu={cpu}", "-mthumb", "-mfloat-abi=hard", f"-mfpu={fpu}"]
    obj = str(tmp_path / "te_training.o")
    res = subprocess.run([gxx, *target, *FLAGS, "-c", SOURCE, "-o", obj], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    defined = subprocess.run([nm, "--defined-only", obj], capture_output=True, text=True).stdout
    assert set(training_functions()) <= {ln.split()[-1] for ln in defined.splitlines() if " T " in ln}
    undefined = subprocess.run([nm, "-u", obj], capture_output=True, text=True).stdout.split()
    assert set(undefined) - {"U"} <= ALLOWED_UNDEFINED, set(undefined) - {"U"} - ALLOWED_UNDEFINED
    # the header's training section is plain C for the target's C compiler too
    c_src = tmp_path / "h.c"
    c_src.write_text('#include "tinyengine_kernels.h"\nint main(void) { return 0; }\n')
    res = subprocess.run([gcc, *target, "-std=c99", "-pedantic", "-Wall", "-Wextra", "-Werror", "-I",
                          os.path.join(SRC, "include"), "-c", str(c_src), "-o", str(tmp_path / "h.o")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
