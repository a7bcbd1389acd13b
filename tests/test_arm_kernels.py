"""Cortex-M optimized kernels (src/kernels/arm/) are bit-exact with the portable ones.

Each kernel test builds one project of many random single-kernel steps
(random shapes, weights, requantization, padding, strides; the in-place and
strided variants too), lets ``codegen.kernel_selection`` pick the optimized
kernels for it, and runs the portable and the optimized project on the
emulated Cortex-M7 (mps2-an500) and Cortex-M4 (mps2-an386) with the same
inputs: every output must be identical.  The optimized project also runs on
the host (where the kernels fall back to plain C emulating the DSP
instructions), which must agree too.  The shared models run with the
optimized kernels on both cores and must equal TFLM.

Needs arm-none-eabi-gcc and qemu-system-arm (scripts/install_arm_toolchain.sh);
without them these tests are skipped with the reason.
"""
from __future__ import annotations

import copy
import json
import os

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.codegen import CWriter
from tinyengine_tvm.codegen.kernel_selection import select_kernels
from tinyengine_tvm.frontend.loader import TensorDesc
from tinyengine_tvm.kernel_graph import KernelGraph, Step, Tensor
from tinyengine_tvm.kernels import is_inplace, kernel_dir, kernel_sources_for, steps_scratch
from tinyengine_tvm.planner import plan_arena
from tinyengine_tvm.quantization.fixed_point import quantize_multiplier
from tinyengine_tvm.runtime import qemu
from tinyengine_tvm.runtime.host import HostModel
from tinyengine_tvm.targets import get_board
from tinyengine_tvm.testing import SHARED_MODELS, random_inputs, shipped_inputs, tflm_run

MISSING = qemu.missing_tools()
requires_arm = pytest.mark.skipif(
    bool(MISSING), reason=f"{', '.join(MISSING)} not found: run scripts/install_arm_toolchain.sh (as root) "
                          "to run the Cortex-M/QEMU tests")
BOARDS = ["mps2-an500", "mps2-an386"]  # Cortex-M7, Cortex-M4


# --------------------------------------------------------------------------- random cases
def _requant(rng, n, acc_std, out_std=40.0, extra=None):
    """Per-channel (multiplier, shift) giving outputs of about ``out_std``."""
    scales = out_std / max(acc_std, 1.0) * rng.uniform(0.5, 2.0, n)
    pairs = [quantize_multiplier(float(s)) for s in scales]
    mult = np.array([p[0] for p in pairs], np.int32)
    shift = np.array([p[1] for p in pairs], np.int32)
    if extra == "edge" and n >= 3:  # a dead channel, an exact power of two, the smallest shift
        mult[0], shift[0] = 0, 0
        mult[1] = 1 << 30
        mult[2], shift[2] = (1 << 31) - 1, -31
    return mult, shift


def _act_range(rng):
    if rng.random() < 0.7:
        return -128, 127
    lo = int(rng.integers(-128, 0))
    return lo, int(rng.integers(lo + 1, 128))


def conv_case(rng, *, kh=None, kw=None, ic=None, oc=None, stride=None, pad=None, h=None, w=None,
              depthwise=False, dilation=1, inplace=False, batch=1, edge=False, full_range=None):
    """A random te_conv2d_s8 / te_depthwise_conv2d_s8 / _inplace_s8 step."""
    kh = kh or int(rng.choice([1, 3, 5]))
    kw = kw or kh
    ic = ic or int(rng.choice([1, 3, 4, 8, 12, 16, 20, 32]))
    oc = ic if depthwise else (oc or int(rng.integers(1, 40)))
    stride = stride or int(rng.choice([1, 2]))
    sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
    h = h or int(rng.integers(kh, kh + 12))
    w = w or int(rng.integers(kw, kw + 12))
    if pad is None:
        pad = "same" if rng.random() < 0.6 else "valid"
    ekh, ekw = (kh - 1) * dilation + 1, (kw - 1) * dilation + 1
    if pad == "same":
        oh, ow = -(-h // sh), -(-w // sw)
        pt = max(0, ((oh - 1) * sh + ekh - h) // 2)
        pl = max(0, ((ow - 1) * sw + ekw - w) // 2)
    elif pad == "valid":
        oh, ow = (h - ekh) // sh + 1, (w - ekw) // sw + 1
        pt = pl = 0
    else:  # one-sided padding and clipped outputs, as patch-based inference makes
        pt, pl = int(rng.integers(0, kh // 2 + 1)), int(rng.integers(0, kw // 2 + 1))
        oh = (h + pt - ekh) // sh + 1 - int(rng.integers(0, 2))
        ow = (w + pl - ekw) // sw + 1 - int(rng.integers(0, 2))
        oh, ow = max(oh, 1), max(ow, 1)
    if inplace:
        while oh * ow > h * w:
            oh -= 1
    zp_in = int(rng.integers(-128, 128))
    lo, hi = (-128, 127) if full_range else _act_range(rng)
    attrs = dict(batch=batch, input_h=h, input_w=w, input_c=ic, output_h=oh, output_w=ow, output_c=oc,
                 kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dilation_h=dilation, dilation_w=dilation,
                 pad_top=pt, pad_left=pl, depth_multiplier=1, input_offset=-zp_in,
                 output_offset=int(rng.integers(-128, 128)), act_min=lo, act_max=hi)
    if depthwise:
        wt = rng.integers(-127, 128, (1, kh, kw, oc), dtype=np.int8)
        acc_std = 74.0 * 74.0 * np.sqrt(kh * kw) / 2
        kernel = "te_depthwise_conv2d_inplace_s8" if inplace else "te_depthwise_conv2d_s8"
    else:
        wt = rng.integers(-127, 128, (oc, kh, kw, ic), dtype=np.int8)
        acc_std = 74.0 * 74.0 * np.sqrt(kh * kw * ic) / 2
        kernel = "te_conv2d_s8"
    bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    mult, shift = _requant(rng, oc, acc_std, extra="edge" if edge else None)
    if edge and oc >= 4:
        bias[3] = 1 << 30  # huge bias with a large right shift, as in vww's dead channels
        mult[3], shift[3] = (1 << 31) - 1, -27
    return dict(kernel=kernel, attrs=attrs, inputs=[[batch, h, w, ic]], consts=[wt, bias, mult, shift],
                out=[batch, oh, ow, oc])


def fc_case(rng, *, depth=None, outs=None, batch=None, full_range=None):
    """A random te_fully_connected_s8 step (symmetric weights)."""
    depth = depth or int(rng.integers(1, 300))
    outs = outs or int(rng.integers(1, 40))
    batch = batch or int(rng.choice([1, 1, 2, 3]))
    lo, hi = (-128, 127) if full_range else _act_range(rng)
    wt = rng.integers(-127, 128, (outs, depth), dtype=np.int8)
    mult, shift = _requant(rng, outs, 74.0 * 74.0 * np.sqrt(depth) / 2)
    attrs = dict(batch=batch, input_depth=depth, output_depth=outs, input_offset=int(rng.integers(-127, 129)),
                 filter_offset=0, output_offset=int(rng.integers(-128, 128)), act_min=lo, act_max=hi)
    return dict(kernel="te_fully_connected_s8", attrs=attrs, inputs=[[batch, depth]],
                consts=[wt, rng.integers(-20000, 20000, outs).astype(np.int32), mult, shift], out=[batch, outs])


def add_case(rng, *, shape=None, broadcast=None, inplace=False, full_range=None, window=None):
    """A random te_add_s8 step with TFLite's parameter derivation (optionally broadcasting
    input 2, or reading it as a window of a larger buffer, as patch-based inference does)."""
    from tinyengine_tvm.quantization.fixed_point import quantize_multiplier_smaller_than_one_exp

    shape = shape or [1, int(rng.integers(1, 9)), int(rng.integers(1, 9)), int(rng.integers(1, 40))]
    s1, s2, so = (float(rng.uniform(0.01, 0.1)) for _ in range(3))
    if rng.random() < 0.2:
        s2 = s1  # equal scales: both inputs get multiplier 2^30, shift 0
    twice_max = 2 * max(s1, s2)
    left_shift = 20
    m1, sh1 = quantize_multiplier_smaller_than_one_exp(s1 / twice_max)
    m2, sh2 = quantize_multiplier_smaller_than_one_exp(s2 / twice_max)
    mo, sho = quantize_multiplier_smaller_than_one_exp(twice_max / ((1 << left_shift) * so))
    lo, hi = (-128, 127) if full_range else _act_range(rng)
    dims = list(shape)
    st = [dims[1] * dims[2] * dims[3], dims[2] * dims[3], dims[3], 1]
    in2_shape, st2, offsets = list(shape), list(st), None
    if broadcast:
        in2_shape = [1, 1, 1, dims[3]]
        st2 = [0, 0, 0, 1]
    elif window:
        # input 2 is the centre of a buffer `window` larger on every side
        in2_shape = [1, dims[1] + 2 * window, dims[2] + 2 * window, dims[3]]
        st2 = [in2_shape[1] * in2_shape[2] * dims[3], in2_shape[2] * dims[3], dims[3], 1]
        offsets = [0, (window * in2_shape[2] + window) * dims[3]]
    attrs = dict(dims=dims, input1_strides=st, input2_strides=st2,
                 input1_offset=int(rng.integers(-127, 129)), input2_offset=int(rng.integers(-127, 129)),
                 output_offset=int(rng.integers(-128, 128)), left_shift=left_shift,
                 input1_multiplier=m1, input1_shift=sh1, input2_multiplier=m2, input2_shift=sh2,
                 output_multiplier=mo, output_shift=sho, act_min=lo, act_max=hi)
    if offsets:
        attrs["_in_offsets"] = offsets
    return dict(kernel="te_add_inplace_s8" if inplace else "te_add_s8", attrs=attrs,
                inputs=[list(shape), in2_shape], consts=[], out=list(shape))


# --------------------------------------------------------------------------- projects from graphs
def transpose_case(rng, *, k, ic, oc, stride, h, w, pad="same", batch=1, full_range=None):
    """A random te_transpose_conv2d_s8 step (filter OHWI)."""
    kh, kw = k if isinstance(k, tuple) else (k, k)
    sh, sw = stride if isinstance(stride, tuple) else (stride, stride)
    if pad == "same":
        oh, ow = h * sh, w * sw
        pt, pl = max(0, (h - 1) * sh + kh - oh) // 2, max(0, (w - 1) * sw + kw - ow) // 2
    elif pad == "valid":
        oh, ow, pt, pl = (h - 1) * sh + kh, (w - 1) * sw + kw, 0, 0
    else:  # cut rows/columns on one side only
        pt, pl = int(rng.integers(0, kh)), int(rng.integers(0, kw))
        oh, ow = (h - 1) * sh + kh - pt - int(rng.integers(0, 2)), (w - 1) * sw + kw - pl
    lo, hi = (-128, 127) if full_range else _act_range(rng)
    attrs = dict(batch=batch, input_h=h, input_w=w, input_c=ic, output_h=oh, output_w=ow, output_c=oc,
                 kernel_h=kh, kernel_w=kw, stride_h=sh, stride_w=sw, dilation_h=1, dilation_w=1,
                 pad_top=pt, pad_left=pl, depth_multiplier=1, input_offset=-int(rng.integers(-128, 128)),
                 output_offset=int(rng.integers(-128, 128)), act_min=lo, act_max=hi)
    wt = rng.integers(-127, 128, (oc, kh, kw, ic), dtype=np.int8)
    taps = max(1, (kh // sh) * (kw // sw))
    mult, shift = _requant(rng, oc, 74.0 * 74.0 * np.sqrt(taps * ic) / 2, extra="edge" if oc >= 3 else None)
    bias = rng.integers(-20000, 20000, oc).astype(np.int32)
    return dict(kernel="te_transpose_conv2d_s8", attrs=attrs, inputs=[[batch, h, w, ic]],
                consts=[wt, bias, mult, shift], out=[batch, oh, ow, oc])


def transpose_conv_cases():
    rng = np.random.default_rng(2207)
    T = transpose_case
    return [T(rng, k=3, ic=16, oc=8, stride=2, h=6, w=6), T(rng, k=4, ic=8, oc=2, stride=2, h=6, w=6),
            T(rng, k=3, ic=12, oc=12, stride=(2, 1), h=13, w=1, pad="valid"),
            T(rng, k=(3, 1), ic=12, oc=12, stride=(2, 1), h=13, w=1),
            T(rng, k=2, ic=5, oc=7, stride=2, h=4, w=3, pad="valid", batch=2),
            T(rng, k=5, ic=3, oc=1, stride=3, h=3, w=4, pad="clip"),
            T(rng, k=1, ic=33, oc=9, stride=1, h=3, w=3, full_range=True),
            T(rng, k=3, ic=1, oc=6, stride=1, h=5, w=5, pad="clip")]


def batch_matmul_case(rng, *, batch, rows, cols, depth, adj_x=False, adj_y=False, broadcast_rhs=False):
    """A random te_batch_matmul_s8 step: lhs [*batch, rows, depth] ([.., depth, rows]
    with adj_x), rhs [*batch, depth, cols] ([.., cols, depth] with adj_y), the rhs
    broadcast over the batches when ``broadcast_rhs``."""
    dims = list(batch) + [1] * (4 - len(batch))
    lhs_shape = list(batch) + ([depth, rows] if adj_x else [rows, depth])
    rhs_batch = [1] * len(batch) if broadcast_rhs else list(batch)
    rhs_shape = rhs_batch + ([cols, depth] if adj_y else [depth, cols])

    def batch_strides(shape, n):
        strides = [int(np.prod(shape[k + 1:])) if shape[k] > 1 else 0 for k in range(n)]
        return strides + [0] * (4 - n)

    mult, shift = quantize_multiplier(float(40.0 / (74.0 * 74.0 * np.sqrt(depth) / 2) * rng.uniform(0.5, 2.0)))
    attrs = dict(batches=int(np.prod(batch)), batch_dims=dims, lhs_batch_strides=batch_strides(lhs_shape, len(batch)),
                 rhs_batch_strides=batch_strides(rhs_shape, len(batch)), rows=rows, cols=cols, depth=depth,
                 lhs_row_stride=1 if adj_x else depth, lhs_depth_stride=rows if adj_x else 1,
                 rhs_depth_stride=1 if adj_y else cols, rhs_col_stride=depth if adj_y else 1,
                 lhs_offset=int(rng.integers(-127, 129)), rhs_offset=int(rng.integers(-127, 129)),
                 output_offset=int(rng.integers(-128, 128)), output_multiplier=mult, output_shift=shift)
    return dict(kernel="te_batch_matmul_s8", attrs=attrs, inputs=[lhs_shape, rhs_shape], consts=[],
                out=list(batch) + [rows, cols])


def batch_matmul_cases():
    rng = np.random.default_rng(3301)
    B = batch_matmul_case
    return [B(rng, batch=[1, 4], rows=8, cols=8, depth=16, adj_y=True), B(rng, batch=[2], rows=5, cols=7, depth=9),
            B(rng, batch=[3], rows=4, cols=3, depth=33, adj_x=True), B(rng, batch=[2, 3], rows=2, cols=5, depth=4,
                                                                       adj_x=True, adj_y=True),
            B(rng, batch=[4], rows=6, cols=1, depth=1, broadcast_rhs=True), B(rng, batch=[1], rows=1, cols=16, depth=64),
            B(rng, batch=[2, 2], rows=3, cols=4, depth=7, adj_y=True, broadcast_rhs=True)]


def s16_case(rng, case, edge=False):
    """The 16x8 version of a te_conv2d_s8 / te_fully_connected_s8 case: int16
    activations (zero points 0), int8 weights, int64 bias, int16 clamp."""
    a = dict(case["attrs"], input_offset=0, output_offset=0)
    lo, hi = (-32768, 32767) if rng.random() < 0.6 else (int(rng.integers(-32768, 0)), int(rng.integers(1, 32768)))
    a.update(act_min=lo, act_max=hi)
    wt = case["consts"][0]
    depthwise = case["kernel"].startswith("te_depthwise")
    n = wt.shape[-1] if depthwise else wt.shape[0]
    k = wt.size // n
    acc_std = 18900.0 * 74.0 * np.sqrt(k)  # full-range int16 inputs
    mult, shift = _requant(rng, n, acc_std, out_std=8000.0)
    bias = rng.integers(-int(2 * acc_std), int(2 * acc_std), n).astype(np.int64)
    if edge and n >= 4:
        # a dead channel, the largest multiplier (0x7FFF once rounded), a left
        # shift (scale > 1), a bias beyond 32 bits that the scale brings back
        mult[0], shift[0] = 0, 0
        mult[1] = (1 << 31) - 1
        mult[2], shift[2] = quantize_multiplier(3.0)
        bias[3] = (3 << 32) + 12345
        mult[3], shift[3] = quantize_multiplier(5000.0 / (3 << 32))
    if "output_depth" in a:
        a["filter_offset"] = 0
        kernel = "te_fully_connected_s16"
    else:
        kernel = "te_depthwise_conv2d_s16" if depthwise else case["kernel"].replace("_s8", "_s16")
    return dict(case, kernel=kernel, attrs=a, consts=[wt, bias, mult, shift], dtype="int16")


def build_graph(cases) -> KernelGraph:
    """One step per case; every case has its own model inputs and output."""
    tensors, steps, inputs, outputs = [], [], [], []

    def add(name, shape, dtype, kind, data=None, view_of=None):
        tensors.append(Tensor(len(tensors), name, list(shape), dtype, kind, data, view_of))
        return len(tensors) - 1

    for n, case in enumerate(cases):
        dtype = case.get("dtype", "int8")  # of the activations
        ins = [add(f"x{n}_{k}", s, dtype, "input") for k, s in enumerate(case["inputs"])]
        inputs += ins
        consts = [add(f"c{n}_{k}", c.shape, str(c.dtype), "constant", c) for k, c in enumerate(case["consts"])]
        out = add(f"y{n}", case["out"], dtype, "activation", view_of=ins[0] if is_inplace(case["kernel"]) else None)
        outputs.append(out)
        params = {k: v for k, v in case["attrs"].items() if not k.startswith("_")}
        notes = {k[1:]: v for k, v in case["attrs"].items() if k.startswith("_")}
        steps.append(Step(case["kernel"], ins + consts, out, params, f"y{n}", notes))
    return KernelGraph(tensors, steps, inputs, outputs)


def export_graph(graph: KernelGraph, name: str, path: str) -> dict:
    """Write a generated project (as compile() would) for a hand-built graph."""
    plan = plan_arena(graph, steps_scratch(graph.steps))
    descs = lambda idx: [TensorDesc(graph.tensors[i].name, graph.tensors[i].shape, graph.tensors[i].dtype)  # noqa: E731
                         for i in idx]
    ins, outs = descs(graph.inputs), descs(graph.outputs)
    writer = CWriter(name, graph, plan, ins, outs)
    files = {f"include/{name}.h": writer.header(), f"src/{name}.c": writer.source(),
             f"src/{name}_weights.c": writer.weights()}
    kdir = kernel_dir()
    with open(os.path.join(kdir, "include", "tinyengine_kernels.h")) as f:
        files["include/tinyengine_kernels.h"] = f.read()
    for src in kernel_sources_for(s.kernel for s in graph.steps):
        with open(os.path.join(kdir, "kernels", src)) as f:
            files[f"src/kernels/{os.path.basename(src)}"] = f.read()
    meta = {"model": name, "inputs": [d.to_json() for d in ins], "outputs": [d.to_json() for d in outs],
            "memory": {"arena_bytes": plan.arena_bytes}}
    files["metadata.json"] = json.dumps(meta)
    for rel, text in files.items():
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return meta


def portable_and_optimized(cases, root, name, core="cortex-m7"):
    """Export the portable project and the optimized one; returns their paths and metadata."""
    graph = build_graph(cases)
    opt, report = select_kernels(copy.deepcopy(graph), core)
    assert not report["refused"], report["refused"]
    for step in opt.steps:
        assert step.kernel.startswith("te_arm_"), f"{step.name}: {step.kernel} was not optimized"
    p_dir, o_dir = os.path.join(root, f"{name}_portable"), os.path.join(root, f"{name}_arm")
    meta = export_graph(graph, name, p_dir)
    export_graph(opt, name, o_dir)
    return p_dir, o_dir, meta


def run_both(p_dir, o_dir, meta, board, build_dir, seed=0):
    """Outputs (portable, optimized) and reports on ``board`` for one random input set."""
    x = random_inputs(meta["inputs"], seed)
    p_out, p_rep = qemu.QemuModel(p_dir, board, build_dir).run(x)
    o_out, o_rep = qemu.QemuModel(o_dir, board, build_dir).run(x)
    return x, p_out, o_out, p_rep, o_rep


def assert_same(p_out, o_out, what):
    for k in p_out:
        np.testing.assert_array_equal(o_out[k], p_out[k], err_msg=f"{what}: output {k} differs")


# --------------------------------------------------------------------------- the cases
def conv_cases():
    rng = np.random.default_rng(20240601)
    C = conv_case
    cases = [
        # pointwise: channel counts, pixel tails of 1, 2 and 3, small (int16-widened) and large filters
        C(rng, kh=1, ic=16, oc=32, stride=1, pad="valid", h=5, w=5),
        C(rng, kh=1, ic=32, oc=20, stride=1, pad="valid", h=3, w=2),
        C(rng, kh=1, ic=8, oc=16, stride=1, pad="valid", h=7, w=7),
        C(rng, kh=1, ic=64, oc=9, stride=1, pad="valid", h=2, w=3),
        C(rng, kh=1, ic=4, oc=1, stride=1, pad="valid", h=1, w=1),
        C(rng, kh=1, ic=128, oc=24, stride=1, pad="valid", h=3, w=3),
        C(rng, kh=1, ic=256, oc=5, stride=1, pad="valid", h=1, w=2),
        C(rng, kh=1, ic=16, oc=32, stride=2, pad="valid", h=8, w=8),
        # 3x3 and other kernels, padding on both or one side (patches), strides, dilation
        C(rng, kh=3, ic=16, oc=16, stride=1, pad="same", h=9, w=7),
        C(rng, kh=3, ic=32, oc=40, stride=1, pad="same", h=5, w=6),
        C(rng, kh=3, ic=8, oc=12, stride=2, pad="valid", h=9, w=10),
        C(rng, kh=3, ic=12, oc=7, stride=1, pad="same", h=9, w=9, dilation=2),
        C(rng, kh=5, ic=4, oc=6, stride=1, pad="clip", h=9, w=8),
        C(rng, kh=2, kw=3, ic=20, oc=5, stride=(2, 3), pad="same", h=7, w=11),
        # first layers: 3 and 1 input channels (and other counts not a multiple of 4)
        C(rng, kh=3, ic=3, oc=8, stride=2, pad="valid", h=17, w=19),
        C(rng, kh=3, ic=3, oc=16, stride=1, pad="same", h=10, w=9),
        C(rng, kh=3, ic=1, oc=8, stride=2, pad="same", h=15, w=14),
        C(rng, kh=10, kw=4, ic=1, oc=24, stride=2, pad="same", h=21, w=10),
        C(rng, kh=7, ic=3, oc=6, stride=2, pad="same", h=16, w=15),
        C(rng, kh=3, ic=5, oc=9, stride=1, pad="clip", h=7, w=8),
        C(rng, kh=3, ic=6, oc=4, stride=1, pad="same", h=6, w=6, dilation=2),
        C(rng, kh=1, ic=3, oc=4, stride=1, pad="valid", h=3, w=5),
        # batches, requantization edge cases (dead channel, 2^30 multiplier,
        # shift -31, a 2^30 bias), narrower activation ranges
        C(rng, kh=3, ic=8, oc=10, stride=1, pad="same", h=5, w=5, batch=2),
        C(rng, kh=1, ic=16, oc=8, stride=1, pad="valid", h=4, w=4, edge=True),
        C(rng, kh=3, ic=3, oc=8, stride=2, pad="same", h=9, w=9, edge=True),
    ]
    for c in cases[:4]:
        c["attrs"].update(act_min=-100, act_max=90)
    return cases


def depthwise_cases():
    rng = np.random.default_rng(77)
    C = lambda *a, **k: conv_case(*a, depthwise=True, **k)  # noqa: E731
    cases = []
    for inplace in (False, True):
        cases += [
            # 3x3 stride 1 / 2, rows of 4k, 3k and other widths (blocks of four or three, spills)
            C(rng, kh=3, ic=16, stride=1, pad="same", h=8, w=8, inplace=inplace),
            C(rng, kh=3, ic=8, stride=1, pad="same", h=6, w=6, inplace=inplace),
            C(rng, kh=3, ic=12, stride=1, pad="same", h=7, w=7, inplace=inplace),
            C(rng, kh=3, ic=5, stride=1, pad="same", h=25, w=5, inplace=inplace),
            C(rng, kh=3, ic=4, stride=1, pad="clip", h=8, w=9, inplace=inplace),
            C(rng, kh=3, ic=16, stride=2, pad="valid", h=7, w=7, inplace=inplace),
            C(rng, kh=3, ic=24, stride=2, pad="same", h=12, w=11, inplace=inplace),
            C(rng, kh=3, ic=3, stride=2, pad="valid", h=5, w=13, inplace=inplace),
            C(rng, kh=3, ic=8, stride=1, pad="valid", h=3, w=3, inplace=inplace),
            # 5x5, 7x7, and run-time shapes
            C(rng, kh=5, ic=8, stride=1, pad="same", h=9, w=9, inplace=inplace),
            C(rng, kh=5, ic=6, stride=2, pad="same", h=11, w=9, inplace=inplace),
            C(rng, kh=7, ic=4, stride=1, pad="same", h=8, w=10, inplace=inplace),
            C(rng, kh=7, ic=5, stride=2, pad="same", h=13, w=12, inplace=inplace),
            C(rng, kh=3, kw=5, ic=7, stride=(2, 1), pad="same", h=9, w=8, inplace=inplace),
            C(rng, kh=2, ic=6, stride=3, pad="valid", h=10, w=9, inplace=inplace),
            # batches and requantization edge cases
            C(rng, kh=3, ic=8, stride=1, pad="same", h=5, w=6, batch=2, inplace=inplace),
            C(rng, kh=3, ic=8, stride=1, pad="same", h=6, w=6, edge=True, inplace=inplace),
        ]
    return cases


def depthwise_1d_cases():
    """Depthwise convolutions along one axis (streaming audio): kx1 over [N, H, 1, C]
    and 1xk over [N, 1, W, C], dilated, strided, channel tails, in place."""
    rng = np.random.default_rng(1101)
    C = lambda *a, **k: conv_case(*a, depthwise=True, **k)  # noqa: E731
    cases = []
    for inplace in (False, True):
        cases += [C(rng, kh=3, kw=1, ic=64, stride=1, pad="same", h=25, w=1, dilation=d, inplace=inplace)
                  for d in (1, 2, 4, 8)]
        cases += [
            C(rng, kh=5, kw=1, ic=12, stride=(2, 1), pad="same", h=20, w=1, dilation=2, inplace=inplace),
            C(rng, kh=3, kw=1, ic=7, stride=1, pad="valid", h=16, w=1, dilation=3, inplace=inplace),
            C(rng, kh=9, kw=1, ic=5, stride=(3, 1), pad="clip", h=30, w=1, inplace=inplace),
            C(rng, kh=1, kw=3, ic=16, stride=1, pad="same", h=1, w=20, dilation=2, inplace=inplace),
            C(rng, kh=1, kw=4, ic=3, stride=(1, 2), pad="same", h=1, w=11, inplace=inplace),
            C(rng, kh=3, kw=1, ic=1, stride=1, pad="same", h=6, w=1, dilation=4, inplace=inplace),
            C(rng, kh=3, kw=1, ic=8, stride=1, pad="same", h=10, w=1, dilation=2, batch=2, inplace=inplace),
            C(rng, kh=3, kw=1, ic=8, stride=1, pad="same", h=9, w=1, edge=True, inplace=inplace),
            C(rng, kh=2, kw=1, ic=10, stride=1, pad="same", h=3, w=1, dilation=5, inplace=inplace),
        ]
        for _ in range(6):  # random lines
            k, d, s, ic = int(rng.integers(1, 8)), int(rng.integers(1, 5)), int(rng.integers(1, 4)), int(rng.integers(1, 41))
            n = int(rng.integers((k - 1) * d + 1, (k - 1) * d + 30))
            pad = str(rng.choice(["same", "valid", "clip"]))
            if rng.random() < 0.5:
                cases.append(C(rng, kh=k, kw=1, ic=ic, stride=(s, 1), pad=pad, h=n, w=1, dilation=d, inplace=inplace))
            else:
                cases.append(C(rng, kh=1, kw=k, ic=ic, stride=(1, s), pad=pad, h=1, w=n, dilation=d, inplace=inplace))
    return cases


def s16_cases():
    """16x8 convolutions (any kernel, stride, dilation, padding, channel parity) and fully connected layers."""
    rng = np.random.default_rng(1608)
    C = conv_case
    convs = [
        C(rng, kh=5, kw=1, ic=8, oc=12, stride=1, pad="same", h=24, w=1),
        C(rng, kh=1, ic=12, oc=12, stride=1, pad="valid", h=24, w=1),
        C(rng, kh=1, ic=7, oc=5, stride=1, pad="valid", h=4, w=3),
        C(rng, kh=3, ic=3, oc=8, stride=2, pad="same", h=9, w=9),
        C(rng, kh=3, ic=16, oc=9, stride=1, pad="same", h=6, w=5, dilation=2),
        C(rng, kh=3, kw=1, ic=32, oc=32, stride=1, pad="same", h=25, w=1, batch=2),
        C(rng, kh=2, kw=3, ic=5, oc=3, stride=(2, 1), pad="clip", h=8, w=7),
        C(rng, kh=1, ic=16, oc=8, stride=2, pad="valid", h=5, w=5),
        C(rng, kh=3, ic=4, oc=6, stride=1, pad="same", h=5, w=5),
    ]
    D = lambda *a, **k: conv_case(*a, depthwise=True, **k)  # noqa: E731
    convs += [  # depthwise along one axis (streaming audio)
        D(rng, kh=3, kw=1, ic=12, stride=1, pad="same", h=24, w=1, dilation=2),
        D(rng, kh=3, kw=1, ic=7, stride=(2, 1), pad="valid", h=19, w=1),
        D(rng, kh=5, kw=1, ic=16, stride=1, pad="same", h=20, w=1, dilation=3, batch=2),
        D(rng, kh=1, kw=4, ic=5, stride=(1, 2), pad="same", h=1, w=13),
        D(rng, kh=9, kw=1, ic=1, stride=1, pad="clip", h=15, w=1),
        D(rng, kh=1, kw=3, ic=8, stride=1, pad="same", h=1, w=9, dilation=4),
    ]
    T = transpose_case
    convs += [T(rng, k=(3, 1), ic=12, oc=12, stride=(2, 1), h=13, w=1), T(rng, k=3, ic=5, oc=7, stride=2, h=4, w=4),
              T(rng, k=4, ic=8, oc=3, stride=2, h=3, w=5, pad="valid", batch=2),
              T(rng, k=2, ic=1, oc=4, stride=1, h=5, w=3, pad="clip")]
    cases = [s16_case(rng, c, edge=(i in (3, 9, 15))) for i, c in enumerate(convs)]
    cases += [s16_case(rng, fc_case(rng, depth=d, outs=o, batch=b), edge=(d == 64))
              for d, o, b in [(12, 6, 1), (64, 10, 1), (33, 7, 2), (1, 3, 1), (300, 16, 1), (5, 1, 3)]]
    return cases


def fc_add_cases():
    rng = np.random.default_rng(5)
    cases = [fc_case(rng, depth=d, outs=o, batch=b) for d, o, b in
             [(640, 128, 1), (16, 16, 1), (1, 16, 1), (37, 13, 2), (255, 3, 3), (64, 10, 1), (4000, 4, 1), (3, 1, 2)]]
    cases += [add_case(rng, shape=[1, 6, 5, 16], full_range=True), add_case(rng, shape=[1, 3, 3, 7]),
              add_case(rng, shape=[1, 4, 4, 8], broadcast=True), add_case(rng, shape=[1, 5, 5, 16], window=1),
              add_case(rng, shape=[1, 4, 3, 12], inplace=True), add_case(rng, shape=[1, 3, 5, 5], inplace=True, window=2),
              add_case(rng, shape=[2, 2, 3, 9])]
    return cases


KERNEL_GROUPS = {"conv": conv_cases, "depthwise": depthwise_cases, "depthwise_1d": depthwise_1d_cases,
                 "fc_add": fc_add_cases, "s16": s16_cases, "transpose_conv": transpose_conv_cases,
                 "batch_matmul": batch_matmul_cases}


# --------------------------------------------------------------------------- tests without tools
def test_selection_rewrites_and_packs():
    """Every case is optimized; constants the portable kernels read are dropped."""
    for group, make in KERNEL_GROUPS.items():
        graph = build_graph(make())
        opt, report = select_kernels(copy.deepcopy(graph), "cortex-m7")
        assert not report["refused"] and report["optimized"] == len(graph.steps), (group, report)
        assert all(s.kernel.startswith("te_arm_") for s in opt.steps)
        used = {i for s in opt.steps for i in s.inputs}
        assert all(t.index in used for t in opt.constants)
        assert all(s.notes["portable_kernel"] == p.kernel for s, p in zip(opt.steps, graph.steps))


def test_line_depthwise_kernel_for_1d_shapes():
    """1-D depthwise steps (dilated or not) get te_arm_depthwise_conv1d_s8; 2-D ones keep the plane kernels."""
    graph = build_graph(depthwise_1d_cases()[:2] + depthwise_cases()[:1])
    opt, report = select_kernels(graph, "cortex-m4")
    assert not report["refused"]
    assert [s.kernel for s in opt.steps] == ["te_arm_depthwise_conv1d_s8"] * 2 + ["te_arm_depthwise_conv2d_3x3s1_s8"]


def test_new_paths_refuse_what_they_do_not_handle():
    """The DSP paths of this family refuse (portable kept, reason noted) what they are not exact for."""
    from tinyengine_tvm.kernels.arm_packing import PackingRefused, rescale64_params

    rng = np.random.default_rng(9)

    def with_attrs(case, **attrs):
        return dict(case, attrs=dict(case["attrs"], **attrs))

    cases = [  # (case, reason)
        (with_attrs(s16_case(rng, conv_case(rng, kh=1, ic=4, oc=4, stride=1, pad="valid", h=2, w=2)), input_offset=3),
         "16x8 input zero point"),
        (with_attrs(s16_case(rng, fc_case(rng, depth=8, outs=4)), filter_offset=1),
         "16x8 fully connected with a nonzero"),
        (s16_case(rng, conv_case(rng, kh=3, kw=3, ic=4, stride=1, pad="same", h=5, w=5, depthwise=True)),
         "not along one axis"),
        (s16_case(rng, conv_case(rng, kh=600, kw=1, ic=2, stride=1, pad="valid", h=600, w=1, depthwise=True)),
         "512 or more taps"),
    ]
    for case, reason in cases:
        graph, report = select_kernels(build_graph([case]), "cortex-m7")
        assert not graph.steps[0].kernel.startswith("te_arm_"), reason
        assert reason in report["refused"][0][2] and reason in graph.steps[0].notes["kernel_note"]
    with pytest.raises(PackingRefused, match="16x8 requantization shift"):
        rescale64_params(np.array([1 << 30]), np.array([15]))
    dm2 = conv_case(rng, kh=3, kw=1, ic=4, stride=1, pad="same", h=9, w=1, depthwise=True)
    dm2["attrs"]["depth_multiplier"] = 2
    graph, report = select_kernels(build_graph([dm2]), "cortex-m4")
    assert "depth multiplier" in report["refused"][0][2]


def test_no_dsp_core_keeps_portable_kernels():
    from tinyengine_tvm.targets.cores import Core

    graph = build_graph(conv_cases()[:3])
    same, report = select_kernels(graph, Core("cortex-m0plus", "armv6-m", None, dsp=False))
    assert same is graph and report["optimized"] == 0


def test_fast_requantization_preconditions():
    """Layers outside the proven-exact range keep the portable kernel, with the reason."""
    rng = np.random.default_rng(3)
    case = conv_case(rng, kh=1, ic=8, oc=4, stride=1, pad="valid", h=2, w=2)
    case["consts"][3][1] = 1  # a shift >= 0 (scale >= 0.5)
    graph, report = select_kernels(build_graph([case]), "cortex-m4")
    assert graph.steps[0].kernel == "te_conv2d_s8"
    assert "shift" in report["refused"][0][2] and "portable" in graph.steps[0].notes["kernel_note"]


def test_host_build_runs_the_same_algorithm(tmp_path):
    """Without __ARM_FEATURE_DSP the optimized sources fall back to plain C: the
    project builds warning-free on the host and gives the portable results."""
    for group, make in KERNEL_GROUPS.items():
        p_dir, o_dir, meta = portable_and_optimized(make(), str(tmp_path), group)
        x = random_inputs(meta["inputs"], 1)
        assert_same(HostModel(p_dir).run(x), HostModel(o_dir).run(x), f"{group} on the host")


def test_compile_with_core_selects_optimized_kernels(tmp_path):
    from tinyengine_tvm.modelgen.default_model import default_model_path

    portable = te.compile(default_model_path())
    compiled = te.compile(default_model_path(), core="cortex-m7")
    sel = compiled.metadata["kernel_selection"]
    assert sel["core"] == "cortex-m7" and sel["optimized"] > 0 and not sel["refused"]
    assert "kernel_selection" not in portable.metadata
    kernels = {o["kernel"] for o in compiled.metadata["ops"]}
    assert not kernels & {"te_conv2d_s8", "te_depthwise_conv2d_s8", "te_fully_connected_s8"}
    assert "src/kernels/arm_dsp.h" in compiled.files
    assert not any("/arm/" in f for f in compiled.files)
    x = random_inputs(compiled.metadata["inputs"], 0)
    assert_same(portable.run(x), compiled.run(x), "default model on the host")
    with pytest.raises(te.errors.TinyEngineError, match="unknown core"):
        te.compile(default_model_path(), core="cortex-a53")


# --------------------------------------------------------------------------- on QEMU
@pytest.fixture(scope="module")
def kernel_projects(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("arm-kernels"))
    return {g: portable_and_optimized(make(), root, g) for g, make in KERNEL_GROUPS.items()}


@pytest.fixture(scope="module")
def arm_build_dir(tmp_path_factory):
    return str(tmp_path_factory.mktemp("arm-kernels-build"))


@requires_arm
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("group", list(KERNEL_GROUPS))
def test_optimized_kernels_bit_exact_on_qemu(group, board, kernel_projects, arm_build_dir):
    p_dir, o_dir, meta = kernel_projects[group]
    for seed in (0, 1):
        _, p_out, o_out, p_rep, o_rep = run_both(p_dir, o_dir, meta, board, arm_build_dir, seed)
        assert_same(p_out, o_out, f"{group} on {board}")
    assert o_rep["instructions"] < p_rep["instructions"]
    print(f"{group} on {board}: portable {p_rep['instructions']:,} instructions, optimized {o_rep['instructions']:,}")


@requires_arm
def test_optimized_kernels_on_m55(kernel_projects, arm_build_dir):
    """The same sources build for the Cortex-M55 (Armv8.1-M, DSP) and agree there."""
    for group in ("conv", "depthwise", "depthwise_1d", "s16", "transpose_conv", "batch_matmul"):
        p_dir, o_dir, meta = kernel_projects[group]
        _, p_out, o_out, _, _ = run_both(p_dir, o_dir, meta, "mps3-an547", arm_build_dir)
        assert_same(p_out, o_out, f"{group} on mps3-an547")


@pytest.fixture(scope="module")
def dsp_models(tmp_path_factory, shared_dir):
    """Shared models compiled once with the optimized kernels (the same C for M4, M7 and M55)."""
    root = str(tmp_path_factory.mktemp("dsp-models"))
    out = {}
    for m in SHARED_MODELS:
        path = os.path.join(shared_dir, f"{m}.tflite")
        compiled = te.compile(path, core="cortex-m7")
        compiled.export(os.path.join(root, m))
        out[m] = (compiled, open(path, "rb").read(), os.path.join(root, m))
    return out


@requires_arm
@pytest.mark.parametrize("board", BOARDS)
@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_models_with_dsp_kernels_match_tflm(model, board, dsp_models, arm_build_dir, tflm):
    compiled, data, project = dsp_models[model]
    assert not compiled.metadata["kernel_selection"]["refused"]
    q = qemu.QemuModel(project, board, arm_build_dir)
    in_desc = compiled.metadata["inputs"]
    cases = [random_inputs(in_desc, 0)] + [[x] for x in shipped_inputs(model, in_desc[0])[:1]]
    for case in cases:
        got, report = q.run(case)
        for (name, g), t in zip(got.items(), tflm_run(data, case)):
            np.testing.assert_array_equal(g, t.reshape(g.shape), err_msg=f"{model} on {board}: != TFLM for '{name}'")
    assert report["kernels"] == "cortex-m7" and report["core"] == get_board(board).core
    print(f"{model} on {board} with DSP kernels: {report['instructions']:,} instructions")


def lstm_model(seed=0, batch=1, steps=5, features=7, units=5, time_major=False, low=-1.0, cell_clip=0.0,
               hidden_range=(-1.0, 1.0), dtype="int8") -> bytes:
    """One UNIDIRECTIONAL_SEQUENCE_LSTM (int8, or 16x8 with dtype int16) over a
    [batch, steps, features] input ([steps, batch, features] when time_major);
    ``low`` and ``hidden_range`` move the int8 input and hidden zero points."""
    from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph

    g = QuantizedGraph(seed)
    x = g.input((steps, batch, features) if time_major else (batch, steps, features), low, 1.0, dtype=dtype)
    return g.finish(g.lstm(x, units, time_major=time_major, cell_clip=cell_clip, hidden_range=hidden_range))


LSTM_SHAPES = [dict(units=1, features=1), dict(units=3, features=4, low=0.0, hidden_range=(-0.5, 1.0)),
               dict(units=5, features=7, batch=2, hidden_range=(-1.0, 0.3)),
               dict(units=8, features=28, steps=3, time_major=True, batch=2, hidden_range=(-0.2, 1.0)),
               dict(units=20, features=28, low=-0.3), dict(units=33, features=6, steps=2, cell_clip=0.5),
               dict(units=2, features=13, low=0.5),
               # 16x8
               dict(units=5, features=7, dtype="int16"), dict(units=3, features=1, batch=2, dtype="int16"),
               dict(units=8, features=28, steps=3, time_major=True, dtype="int16"),
               dict(units=20, features=9, cell_clip=0.5, dtype="int16")]


def test_lstm_dsp_kernel_matches_portable_on_host(tmp_path, tflm):
    """te_arm_lstm_s8 (plain C on the host, same packing) == te_lstm_s8 == TFLM over
    units / features not multiples of four, batches, time-major, zero points, cell clip."""
    for k, shape in enumerate(LSTM_SHAPES):
        data = lstm_model(seed=k, **shape)
        path = tmp_path / f"lstm{k}.tflite"
        path.write_bytes(data)
        portable, dsp = te.compile(str(path)), te.compile(str(path), core="cortex-m4")
        want_kernel = "te_arm_lstm_s16" if shape.get("dtype") == "int16" else "te_arm_lstm_s8"
        assert {o["kernel"] for o in dsp.metadata["ops"]} == {want_kernel}, dsp.metadata["kernel_selection"]
        for seed in (0, 1):
            x = random_inputs(dsp.metadata["inputs"], seed)
            portable.reset(), dsp.reset()
            want = portable.run(x)
            got = dsp.run(x)
            assert_same(want, got, f"LSTM {shape}")
            for (name, g), t in zip(got.items(), tflm_run(data, x)):
                np.testing.assert_array_equal(g, t.reshape(g.shape), err_msg=f"LSTM {shape}: != TFLM")


def svdf_model(seed=0, batch=1, features=40, filters=32, memory=8, rank=1, low=-1.0) -> bytes:
    """One SVDF (int16 state) over [batch, features] frames; ``low`` moves the input zero point."""
    from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph

    g = QuantizedGraph(seed)
    return g.finish(g.svdf(g.input((batch, features), low, 1.0), filters, memory, rank=rank))


SVDF_SHAPES = [dict(), dict(features=7, filters=6, memory=3, rank=2, low=0.0), dict(features=1, filters=1, memory=1),
               dict(features=13, filters=10, memory=5, rank=5, batch=2, low=-0.2), dict(features=64, filters=16, memory=10)]


def test_svdf_dsp_kernel_matches_portable_on_host(tmp_path, tflm):
    """te_arm_svdf_s8 (plain C on the host) == te_svdf_s8 over a stream of frames (the
    history moving through the state) for filter / input counts not multiples of four,
    odd memories, ranks, batches and input zero points; the first frame == TFLM."""
    for k, shape in enumerate(SVDF_SHAPES):
        data = svdf_model(seed=k, **shape)
        path = tmp_path / f"svdf{k}.tflite"
        path.write_bytes(data)
        portable, dsp = te.compile(str(path)), te.compile(str(path), core="cortex-m7")
        assert {o["kernel"] for o in dsp.metadata["ops"]} == {"te_arm_svdf_s8"}, dsp.metadata["kernel_selection"]
        portable.reset(), dsp.reset()
        for frame in range(shape.get("memory", 8) + 3):
            x = random_inputs(dsp.metadata["inputs"], frame)
            got = dsp.run(x)
            assert_same(portable.run(x), got, f"SVDF {shape} frame {frame}")
            if frame == 0:
                for (name, g), t in zip(got.items(), tflm_run(data, x)):
                    np.testing.assert_array_equal(g, t.reshape(g.shape), err_msg=f"SVDF {shape}: != TFLM")


#: The project's models whose layers have DSP paths: (model builder, kernels the selection must pick).
DSP_PROJECT_MODELS = {"ds_cnn_1d_model": {"te_arm_depthwise_conv1d_inplace_s8", "te_arm_conv2d_s8"},
                      "int16_audio_model": {"te_arm_conv2d_s16", "te_arm_fully_connected_s16", "te_arm_depthwise_conv1d_s16",
                                            "te_arm_transpose_conv2d_s16"},
                      "mnist_lstm_model": {"te_arm_lstm_s8", "te_arm_fully_connected_s8"},
                      "odd_lstm": {"te_arm_lstm_s8"},
                      "odd_lstm_s16": {"te_arm_lstm_s16"},
                      "upsampling_model": {"te_arm_transpose_conv2d_s8"},
                      "batch_matmul_model": {"te_arm_batch_matmul_s8"},
                      "svdf_kws_model": {"te_arm_svdf_s8"}}


@pytest.fixture(scope="module")
def dsp_project_models(tmp_path_factory):
    """The project's models compiled once with the optimized kernels."""
    from tinyengine_tvm.modelgen import quantized_ops

    root = str(tmp_path_factory.mktemp("dsp-project-models"))
    out = {}
    for m in DSP_PROJECT_MODELS:
        if m.startswith("odd_lstm"):
            shape = dict(units=7, features=9, batch=2, steps=3, dtype="int16" if m.endswith("s16") else "int8")
            data = lstm_model(seed=3, **shape)
        else:
            data = getattr(quantized_ops, m)()
        path = os.path.join(root, f"{m}.tflite")
        with open(path, "wb") as f:
            f.write(data)
        compiled = te.compile(path, core="cortex-m7")
        compiled.export(os.path.join(root, m))
        out[m] = (compiled, data, os.path.join(root, m))
    return out


@requires_arm
@pytest.mark.parametrize("board", BOARDS + ["mps3-an547"])
@pytest.mark.parametrize("model", list(DSP_PROJECT_MODELS))
def test_project_models_with_dsp_kernels(model, board, dsp_project_models, arm_build_dir, tflm):
    """The project's models of the DSP paths (1-D DS-CNN, ...) on Cortex-M4, M7 and M55:
    QEMU == host == TFLM with the optimized kernels selected."""
    compiled, data, project = dsp_project_models[model]
    sel = compiled.metadata["kernel_selection"]
    assert not sel["refused"], sel["refused"]
    kernels = {o["kernel"] for o in compiled.metadata["ops"]}
    assert DSP_PROJECT_MODELS[model] <= kernels, kernels
    q = qemu.QemuModel(project, board, arm_build_dir)
    for seed in (0, 1):
        x = random_inputs(compiled.metadata["inputs"], seed)
        got, report = q.run(x)
        compiled.reset()
        host = compiled.run(x)
        for (name, g), h, t in zip(got.items(), host.values(), tflm_run(data, x)):
            np.testing.assert_array_equal(g, h, err_msg=f"{model} on {board}: QEMU != host for '{name}'")
            np.testing.assert_array_equal(g, t.reshape(g.shape), err_msg=f"{model} on {board}: != TFLM for '{name}'")
    print(f"{model} on {board} with DSP kernels: {report['instructions']:,} instructions")


@pytest.mark.parametrize("core", ["cortex-m4", "cortex-m7", "cortex-m55"])
def test_kernel_library_cmake_cross_build(core, tmp_path):
    """The top-level CMake builds the whole kernel library for each core with -Werror."""
    import shutil
    import subprocess

    if shutil.which("arm-none-eabi-g++") is None or shutil.which("cmake") is None:
        pytest.skip("arm-none-eabi-g++ or cmake missing (bash scripts/install_arm_toolchain.sh)")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    build = str(tmp_path / core)
    subprocess.run(["cmake", "-S", root, "-B", build, f"-DCMAKE_TOOLCHAIN_FILE={root}/cmake/arm-none-eabi.cmake",
                    f"-DTE_CORE={core}"], check=True, capture_output=True)
    proc = subprocess.run(["cmake", "--build", build, "-j2"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert os.path.isfile(os.path.join(build, "libtinyengine_kernels.a"))
