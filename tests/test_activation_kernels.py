"""Bit-exactness of the activation / reduction kernels against TFLM.

For SOFTMAX, LOGISTIC, HARD_SWISH, MEAN and RESIZE_NEAREST_NEIGHBOR this
builds a one-operator int8 .tflite model, runs it with the ``tflite_micro``
Python interpreter, and runs the same input through the C kernel from
``src/kernels`` (compiled here with g++ and loaded with ctypes) using the
parameters derived by ``tinyengine_tvm.quantization.activation_params``.
Outputs must be identical.

The test skips (with the reason printed) when ``tflite_micro`` or g++ is not
available.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, "python"))

from tinyengine_tvm.quantization import fixed_point as fp  # noqa: E402
from tinyengine_tvm.quantization.activation_params import (  # noqa: E402
    hard_swish_params,
    logistic_params,
    mean_params,
    softmax_params,
)

try:
    from tflite_micro import runtime as tflm_runtime
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
    import flatbuffers

    _TFLM_MISSING = None
except Exception as exc:  # pragma: no cover - depends on the machine
    _TFLM_MISSING = f"tflite_micro is not installed ({exc!r}); cannot compare with TFLM"

_KERNEL_SOURCES = [
    "te_softmax.cc",
    "te_logistic.cc",
    "te_hard_swish_s8.cc",
    "te_mean.cc",
    "te_resize.cc",
]

needs_tflm = pytest.mark.skipif(_TFLM_MISSING is not None, reason=_TFLM_MISSING or "")


# ---------------------------------------------------------------------------
# C library
# ---------------------------------------------------------------------------

class TeMeanParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "outer", "reduced", "inner", "input_offset", "output_offset",
        "multiplier", "shift")]


class TeResizeParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "batch", "input_h", "input_w", "channels", "output_h", "output_w",
        "align_corners", "half_pixel_centers", "window_y0", "window_x0", "window_h", "window_w",
        "block_y0", "block_x0", "block_h", "block_w")]


class TeSoftmaxParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "rows", "depth", "input_beta_multiplier", "input_beta_left_shift",
        "diff_min")]


class TeLogisticParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "size", "input_zero_point", "input_range_radius", "input_multiplier",
        "input_left_shift")]


class TeHardSwishParams(ctypes.Structure):
    _fields_ = [(n, ctypes.c_int32) for n in (
        "size", "input_zero_point", "output_zero_point",
        "reluish_multiplier_fixedpoint_int16", "reluish_multiplier_exponent",
        "output_multiplier_fixedpoint_int16", "output_multiplier_exponent")]


def build_library(out_dir):
    """Compile the kernels into a shared library in out_dir; load with ctypes."""
    cxx = shutil.which("g++")
    if cxx is None:
        return None
    out = os.path.join(str(out_dir), "libte_activation.so")
    srcs = [os.path.join(REPO, "src", "kernels", s) for s in _KERNEL_SOURCES]
    cmd = [cxx, "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC",
           "-shared", "-fno-exceptions", "-fno-rtti",
           "-I" + os.path.join(REPO, "src", "include"), *srcs, "-o", out]
    res = subprocess.run(cmd, capture_output=True, text=True)
    assert res.returncode == 0, f"build failed:\n{' '.join(cmd)}\n{res.stderr}"
    so = ctypes.CDLL(out)
    i8p = ctypes.POINTER(ctypes.c_int8)
    i32 = ctypes.c_int32
    so.te_softmax_s8.argtypes = [ctypes.POINTER(TeSoftmaxParams), i8p, i8p]
    so.te_logistic_s8.argtypes = [ctypes.POINTER(TeLogisticParams), i8p, i8p]
    so.te_hard_swish_s8.argtypes = [ctypes.POINTER(TeHardSwishParams), i8p, i8p]
    so.te_mean_s8.argtypes = [ctypes.POINTER(TeMeanParams), i8p, i8p]
    so.te_resize_nearest_s8.argtypes = [ctypes.POINTER(TeResizeParams), i8p, i8p]
    for f in ("te_softmax_s8", "te_logistic_s8", "te_hard_swish_s8",
              "te_mean_s8", "te_resize_nearest_s8"):
        getattr(so, f).restype = None
    return so


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    if _TFLM_MISSING is not None:
        print(f"SKIP: {_TFLM_MISSING}")
        pytest.skip(_TFLM_MISSING)
    so = build_library(tmp_path_factory.mktemp("te_kernels"))
    if so is None:
        print("SKIP: g++ not found; cannot build the kernel library")
        pytest.skip("g++ not found; cannot build the kernel library")
    return so


def _ptr(a: np.ndarray):
    assert a.dtype == np.int8 and a.flags["C_CONTIGUOUS"]
    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_int8))


# ---------------------------------------------------------------------------
# Minimal single-operator .tflite writer (schema object API)
# ---------------------------------------------------------------------------

def _tensor(shape, ttype, buffer, name, scale=None, zp=None):
    t = schema.TensorT()
    t.shape = list(int(d) for d in shape)
    t.type = ttype
    t.buffer = buffer
    t.name = name
    if scale is not None:
        q = schema.QuantizationParametersT()
        q.scale = [float(np.float32(scale))]
        q.zeroPoint = [int(zp)]
        t.quantization = q
    return t


def build_single_op_model(op, options_type, options, in_shape, in_q, out_shape,
                          out_q, const_inputs=()):
    """One int8 input, optional int32 constant inputs, one int8 output."""
    buffers = [schema.BufferT()]  # buffer 0 must be empty
    tensors = [_tensor(in_shape, schema.TensorType.INT8, 0, "input", *in_q)]
    op_inputs = [0]
    for i, arr in enumerate(const_inputs):
        arr = np.asarray(arr, dtype=np.int32)
        b = schema.BufferT()
        b.data = list(arr.tobytes())
        buffers.append(b)
        tensors.append(_tensor(arr.shape, schema.TensorType.INT32,
                               len(buffers) - 1, f"const{i}"))
        op_inputs.append(len(tensors) - 1)
    tensors.append(_tensor(out_shape, schema.TensorType.INT8, 0, "output", *out_q))
    out_idx = len(tensors) - 1

    code = schema.OperatorCodeT()
    code.builtinCode = op
    code.deprecatedBuiltinCode = min(op, 127)
    code.version = 1

    o = schema.OperatorT()
    o.opcodeIndex = 0
    o.inputs = op_inputs
    o.outputs = [out_idx]
    o.builtinOptionsType = options_type
    o.builtinOptions = options

    sg = schema.SubGraphT()
    sg.tensors = tensors
    sg.inputs = [0]
    sg.outputs = [out_idx]
    sg.operators = [o]
    sg.name = "main"

    m = schema.ModelT()
    m.version = 3
    m.operatorCodes = [code]
    m.subgraphs = [sg]
    m.buffers = buffers
    m.description = "tinyengine-tvm kernel test"

    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


def run_tflm(model: bytes, x: np.ndarray) -> np.ndarray:
    it = tflm_runtime.Interpreter.from_bytes(model, arena_size=1 << 20)
    it.set_input(x, 0)
    it.invoke()
    return np.array(it.get_output(0))


def _random_input(rng, shape):
    x = rng.integers(-128, 128, size=shape, dtype=np.int64).astype(np.int8)
    # Make sure the extremes appear.
    flat = x.reshape(-1)
    if flat.size >= 4:
        flat[rng.integers(flat.size)] = -128
        flat[rng.integers(flat.size)] = 127
    return x


# ---------------------------------------------------------------------------
# Kernel runners
# ---------------------------------------------------------------------------

def te_softmax(lib, x, input_scale, beta):
    p = softmax_params(input_scale, beta)
    depth = x.shape[-1]
    rows = x.size // depth
    xin = np.ascontiguousarray(x)
    out = np.empty_like(xin)
    params = TeSoftmaxParams(rows=rows, depth=depth, **p)
    lib.te_softmax_s8(ctypes.byref(params), _ptr(xin), _ptr(out))
    return out


def te_logistic(lib, x, input_scale, input_zp):
    p = logistic_params(input_scale, input_zp)
    xin = np.ascontiguousarray(x)
    out = np.empty_like(xin)
    params = TeLogisticParams(size=xin.size, **p)
    lib.te_logistic_s8(ctypes.byref(params), _ptr(xin), _ptr(out))
    return out


def te_hard_swish(lib, x, in_s, in_zp, out_s, out_zp):
    xin = np.ascontiguousarray(x)
    out = np.empty_like(xin)
    p = TeHardSwishParams(size=xin.size, **hard_swish_params(in_s, in_zp, out_s, out_zp))
    lib.te_hard_swish_s8(ctypes.byref(p), _ptr(xin), _ptr(out))
    return out


def te_mean(lib, x, axes, in_s, in_zp, out_s, out_zp):
    axes = sorted(a % x.ndim for a in axes)
    assert axes == list(range(axes[0], axes[-1] + 1)), "contiguous axes only"
    outer = int(np.prod(x.shape[:axes[0]], dtype=np.int64))
    reduced = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    inner = int(np.prod(x.shape[axes[-1] + 1:], dtype=np.int64))
    p = TeMeanParams(outer=outer, reduced=reduced, inner=inner,
                     **mean_params(in_s, in_zp, out_s, out_zp, reduced))
    xin = np.ascontiguousarray(x)
    out = np.empty(outer * inner, dtype=np.int8)
    lib.te_mean_s8(ctypes.byref(p), _ptr(xin), _ptr(out))
    return out


def te_resize(lib, x, out_h, out_w, align, half):
    n, h, w, c = x.shape
    p = TeResizeParams(batch=n, input_h=h, input_w=w, channels=c,
                       output_h=out_h, output_w=out_w,
                       align_corners=int(align), half_pixel_centers=int(half),
                       window_y0=0, window_x0=0, window_h=out_h, window_w=out_w,
                       block_y0=0, block_x0=0, block_h=h, block_w=w)
    xin = np.ascontiguousarray(x)
    out = np.empty((n, out_h, out_w, c), dtype=np.int8)
    lib.te_resize_nearest_s8(ctypes.byref(p), _ptr(xin), _ptr(out))
    return out


# ---------------------------------------------------------------------------
# Reference models
# ---------------------------------------------------------------------------

def tflm_softmax(x, input_scale, input_zp, beta):
    opt = schema.SoftmaxOptionsT()
    opt.beta = float(beta)
    model = build_single_op_model(
        schema.BuiltinOperator.SOFTMAX, schema.BuiltinOptions.SoftmaxOptions, opt,
        x.shape, (input_scale, input_zp), x.shape, (1.0 / 256.0, -128))
    return run_tflm(model, x)


def tflm_logistic(x, input_scale, input_zp):
    model = build_single_op_model(
        schema.BuiltinOperator.LOGISTIC, 0, None,
        x.shape, (input_scale, input_zp), x.shape, (1.0 / 256.0, -128))
    return run_tflm(model, x)


def tflm_hard_swish(x, in_s, in_zp, out_s, out_zp):
    model = build_single_op_model(
        schema.BuiltinOperator.HARD_SWISH, schema.BuiltinOptions.HardSwishOptions,
        schema.HardSwishOptionsT(), x.shape, (in_s, in_zp), x.shape, (out_s, out_zp))
    return run_tflm(model, x)


def tflm_mean(x, axes, keep_dims, in_s, in_zp, out_s, out_zp):
    norm = sorted(a % x.ndim for a in axes)
    if keep_dims:
        out_shape = [1 if i in norm else d for i, d in enumerate(x.shape)]
    else:
        out_shape = [d for i, d in enumerate(x.shape) if i not in norm]
    opt = schema.ReducerOptionsT()
    opt.keepDims = bool(keep_dims)
    model = build_single_op_model(
        schema.BuiltinOperator.MEAN, schema.BuiltinOptions.ReducerOptions, opt,
        x.shape, (in_s, in_zp), out_shape, (out_s, out_zp),
        const_inputs=[np.array(axes, dtype=np.int32)])
    return run_tflm(model, x)


def tflm_resize(x, out_h, out_w, align, half):
    opt = schema.ResizeNearestNeighborOptionsT()
    opt.alignCorners = bool(align)
    opt.halfPixelCenters = bool(half)
    n, _, _, c = x.shape
    model = build_single_op_model(
        schema.BuiltinOperator.RESIZE_NEAREST_NEIGHBOR,
        schema.BuiltinOptions.ResizeNearestNeighborOptions, opt,
        x.shape, (0.05, 3), (n, out_h, out_w, c), (0.05, 3),
        const_inputs=[np.array([out_h, out_w], dtype=np.int32)])
    return run_tflm(model, x)


def _assert_same(ours, ref, what):
    ours = np.asarray(ours).reshape(-1)
    ref = np.asarray(ref).reshape(-1)
    assert ours.shape == ref.shape, what
    bad = np.nonzero(ours != ref)[0]
    assert bad.size == 0, (
        f"{what}: {bad.size}/{ref.size} differ; first at {bad[0]}: "
        f"ours={ours[bad[0]]} tflm={ref[bad[0]]}")


def _random_scale(rng, lo_exp, hi_exp):
    return float(np.float32(2.0 ** rng.uniform(lo_exp, hi_exp)))


# ---------------------------------------------------------------------------
# Tests
# ---------------------------------------------------------------------------

@needs_tflm
def test_softmax_matches_tflm(lib):
    rng = np.random.default_rng(1234)
    cases = [((1, 10), 0.1, 1.0), ((4, 1000), 0.05, 1.0), ((3, 1), 0.2, 1.0),
             ((2, 5, 7), 1.0 / 16, 1.0), ((8, 64), 0.5, 2.0), ((2, 33), 0.001, 1.0),
             ((2, 20), 100.0, 1.0), ((3, 17), 0.25, 1000.0)]  # capped multiplier
    for _ in range(150):
        shape = (int(rng.integers(1, 9)), int(rng.integers(1, 300)))
        scale = _random_scale(rng, -12, 3)
        beta = float(np.float32(rng.choice([1.0, 0.5, 2.0, rng.uniform(0.1, 4.0)])))
        cases.append((shape, scale, beta))
    for shape, scale, beta in cases:
        if beta * scale * 2**26 <= 1.0:
            continue  # TFLM rejects such a model
        zp = int(rng.integers(-128, 128))
        x = _random_input(rng, shape)
        xf = x.astype(np.float64)
        if np.exp(beta * scale * (xf - xf.max(axis=-1, keepdims=True))).sum(-1).max() > 200:
            continue  # TFLM aborts (TFLITE_CHECK) once the sum of exps reaches 256
        _assert_same(te_softmax(lib, x, scale, beta), tflm_softmax(x, scale, zp, beta),
                     f"softmax shape={shape} scale={scale} beta={beta}")


@needs_tflm
def test_logistic_matches_tflm(lib):
    rng = np.random.default_rng(99)
    every = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(1, 256)
    cases = [(0.1, 0), (1.0 / 16, -128), (0.02, 127), (0.5, 10), (1.0, 0),
             (4.0, -3), (1e-3, 5), (1e-5, 0)]
    for _ in range(200):
        cases.append((_random_scale(rng, -16, 4), int(rng.integers(-128, 128))))
    for scale, zp in cases:
        _assert_same(te_logistic(lib, every, scale, zp), tflm_logistic(every, scale, zp),
                     f"logistic scale={scale} zp={zp}")


@needs_tflm
def test_hard_swish_matches_tflm(lib):
    rng = np.random.default_rng(7)
    every = np.arange(-128, 128, dtype=np.int16).astype(np.int8).reshape(1, 256)
    cases = [(0.05, 0, 0.05, 0), (0.1, -10, 0.04, -100), (0.02, 127, 0.02, -128),
             (0.5, 3, 0.3, 5), (0.004, -128, 0.001, 50), (0.2, 0, 0.0016, 0)]
    for _ in range(400):
        in_s = _random_scale(rng, -10, 4)
        out_s = float(np.float32(in_s * 2.0 ** rng.uniform(-3.0, 7.9)))
        cases.append((in_s, int(rng.integers(-128, 128)), out_s,
                      int(rng.integers(-128, 128))))
    for in_s, in_zp, out_s, out_zp in cases:
        if in_s / (128.0 * out_s) >= 1.0:
            continue  # TFLM rejects (output multiplier exponent > 0)
        _assert_same(te_hard_swish(lib, every, in_s, in_zp, out_s, out_zp),
                     tflm_hard_swish(every, in_s, in_zp, out_s, out_zp),
                     f"hard_swish in=({in_s},{in_zp}) out=({out_s},{out_zp})")


@needs_tflm
def test_mean_matches_tflm(lib):
    rng = np.random.default_rng(2024)
    cases = []
    shapes_axes = [((1, 7, 7, 16), [1, 2]), ((2, 5, 3, 8), [2, 1]),
                   ((1, 1, 1, 4), [1, 2]), ((3, 4, 6, 5), [1]), ((2, 3, 4, 5), [2]),
                   ((2, 6, 10), [1]), ((4, 9), [1]), ((2, 3, 4, 5), [3]),
                   ((1, 12, 12, 3), [1, 2]), ((2, 3, 4, 5), [-3, -2]),
                   ((1, 32, 32, 2), [1, 2]), ((1, 3, 3, 3), [0, 1, 2, 3])]
    for shape, axes in shapes_axes:
        for keep in (True, False):
            cases.append((shape, axes, keep, 0.05, 3, 0.05, 3))          # equal
            cases.append((shape, axes, keep, 0.02, -128, 0.02, -128))    # equal
            in_s = _random_scale(rng, -8, 1)
            cases.append((shape, axes, keep, in_s, int(rng.integers(-128, 128)),
                          _random_scale(rng, -8, 1), int(rng.integers(-128, 128))))
            cases.append((shape, axes, keep, in_s, int(rng.integers(-128, 128)),
                          float(np.float32(in_s * 0.25)), int(rng.integers(-128, 128))))
    for shape, axes, keep, in_s, in_zp, out_s, out_zp in cases:
        for _ in range(3):
            x = _random_input(rng, shape)
            _assert_same(te_mean(lib, x, axes, in_s, in_zp, out_s, out_zp),
                         tflm_mean(x, axes, keep, in_s, in_zp, out_s, out_zp),
                         f"mean shape={shape} axes={axes} keep={keep} "
                         f"in=({in_s},{in_zp}) out=({out_s},{out_zp})")


@needs_tflm
def test_resize_nearest_matches_tflm(lib):
    rng = np.random.default_rng(5)
    sizes = [((1, 4, 4, 3), 8, 8), ((2, 5, 7, 2), 3, 4), ((1, 3, 3, 1), 7, 5),
             ((1, 1, 1, 4), 3, 2), ((1, 6, 6, 2), 1, 1), ((1, 10, 3, 3), 4, 9),
             ((1, 2, 9, 1), 2, 9), ((1, 7, 13, 2), 17, 6)]
    for _ in range(40):
        sizes.append(((int(rng.integers(1, 3)), int(rng.integers(1, 12)),
                       int(rng.integers(1, 12)), int(rng.integers(1, 5))),
                      int(rng.integers(1, 25)), int(rng.integers(1, 25))))
    for shape, oh, ow in sizes:
        for align in (False, True):
            for half in (False, True):
                x = _random_input(rng, shape)
                _assert_same(te_resize(lib, x, oh, ow, align, half),
                             tflm_resize(x, oh, ow, align, half),
                             f"resize {shape}->({oh},{ow}) align={align} half={half}")


def test_resize_nearest_window_equals_its_part_of_the_whole(lib):
    """A window of the output (patch-based inference) from the input block the
    planner's index rule names equals that part of the whole resized map."""
    from tinyengine_tvm.transform.patching.geometry import Window, input_window

    rng = np.random.default_rng(11)
    for _ in range(60):
        shape = (1, int(rng.integers(1, 10)), int(rng.integers(1, 10)), int(rng.integers(1, 4)))
        oh, ow = int(rng.integers(1, 30)), int(rng.integers(1, 30))
        align, half = bool(rng.integers(2)), bool(rng.integers(2))
        x = _random_input(rng, shape)
        whole = te_resize(lib, x, oh, ow, align, half)
        y0, x0 = int(rng.integers(oh)), int(rng.integers(ow))
        win = Window(y0, int(rng.integers(y0 + 1, oh + 1)), x0, int(rng.integers(x0 + 1, ow + 1)))
        attrs = dict(output_h=oh, output_w=ow, align_corners=int(align), half_pixel_centers=int(half))
        src = input_window("te_resize_nearest_s8", attrs, win, shape[1], shape[2])
        block = np.ascontiguousarray(x[:, src.y0:src.y1, src.x0:src.x1])
        p = TeResizeParams(batch=1, input_h=shape[1], input_w=shape[2], channels=shape[3], output_h=oh,
                           output_w=ow, align_corners=int(align), half_pixel_centers=int(half),
                           window_y0=win.y0, window_x0=win.x0, window_h=win.h, window_w=win.w,
                           block_y0=src.y0, block_x0=src.x0, block_h=src.h, block_w=src.w)
        out = np.empty((1, win.h, win.w, shape[3]), dtype=np.int8)
        lib.te_resize_nearest_s8(ctypes.byref(p), _ptr(block), _ptr(out))
        _assert_same(out, whole[:, win.y0:win.y1, win.x0:win.x1], f"resize window {win} of {shape}->({oh},{ow})")


def test_quantize_multiplier_corner_cases():
    assert fp.quantize_multiplier(0.0) == (0, 0)
    assert fp.quantize_multiplier(1.0) == (1 << 30, 1)
    assert fp.quantize_multiplier(0.5) == (1 << 30, 0)
    # A fraction that rounds up to 2^31 is renormalised.
    assert fp.quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)
    # Flush to zero below 2^-32.
    assert fp.quantize_multiplier(2.0 ** -33) == (0, 0)
    assert fp.quantize_multiplier(2.0 ** -32) == (1 << 30, -31)
    m, s = fp.quantize_multiplier(0.1)
    assert (m, s) == (1717986918, -3)
    assert fp.tflite_round(2.5) == 3 and fp.tflite_round(-2.5) == -3
    assert fp.tflite_round(0.49999999999999994) == 0
    assert fp.calculate_input_radius(5, 23) == 248
    assert fp.downscale_int32_to_int16_multiplier(fp.INT32_MAX) == 32767
    assert fp.downscale_int32_to_int16_multiplier(1 << 30) == 1 << 14
    assert fp.multiply_by_quantized_multiplier(100, 1 << 30, 0) == 50
    # gemmlowp's doubling high multiply rounds -1.5 up to -1 ...
    assert fp.multiply_by_quantized_multiplier(-3, 1 << 30, 0) == -1
    assert fp.multiply_by_quantized_multiplier(3, 1 << 30, 0) == 2
    # ... while the rounding right shift rounds ties away from zero.
    assert fp.multiply_by_quantized_multiplier(-3, 1 << 30, -1) == -1
    assert fp.rounding_divide_by_pot(-3, 1) == -2
    assert fp.multiply_by_quantized_multiplier(5, 1 << 30, 3) == 20


@needs_tflm
def test_softmax_long_flat_row_is_defined(lib):
    # TFLM aborts when a row's sum of exps reaches 256; our kernel returns the
    # correctly rounded result, which is 0 (-128) everywhere.
    x = np.zeros((1, 4000), dtype=np.int8)
    out = te_softmax(lib, x, 0.01, 1.0)
    assert (out == -128).all()
