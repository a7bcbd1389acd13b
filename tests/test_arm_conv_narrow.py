"""The one-column ("narrow") im2col convolution kernels, te_arm_conv2d_narrow_s8 and
te_arm_conv2d_narrow_w16_s8 (kernel variants "narrow" / "narrow_w16"), and
``compile(narrow_at_peak=True)``:

- bit-exact with the portable te_conv2d_s8 on the host (plain-C path) and on the
  emulated Cortex-M7 (the DSP assembly), over geometries with input_c % 4 == 0
  and != 0, strides, padding on both or one side, dilation, odd pixel counts,
  batches, narrower activation ranges, requantization edge cases, int8 and
  int16 filters (tests/test_kernel_abi.py checks the scratch formula against
  the C ``*_get_buffer_size()`` over its shape sweep);
- a quarter of the block kernel's im2col scratch and no partial block;
- ``narrow_at_peak`` lowers the arena of a model whose peak holds a
  convolution's scratch, leaves the default compile alone, and stays bit-exact
  with TFLM.
"""
from __future__ import annotations

import copy
import os

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.codegen.kernel_selection import NARROW_VARIANTS, layer_variants, select_kernels
from tinyengine_tvm.kernels import scratch_bytes
from tinyengine_tvm.kernels.arm import arm_conv_narrow_scratch, arm_conv_scratch, conv_k4
from tinyengine_tvm.modelgen import zoo
from tinyengine_tvm.runtime import qemu
from tinyengine_tvm.runtime.host import HostModel
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs
from test_arm_kernels import build_graph, conv_case, export_graph, requires_arm

CORE = "cortex-m7"


def narrow_cases():
    rng = np.random.default_rng(1313)
    C = conv_case
    cases = [
        # input_c % 4 == 0: pointwise (odd pixel counts: 25, 7, 1), 3x3 with padding, stride 2, dilation
        C(rng, kh=1, ic=16, oc=32, stride=1, pad="valid", h=5, w=5),
        C(rng, kh=1, ic=64, oc=9, stride=1, pad="valid", h=7, w=1),
        C(rng, kh=1, ic=4, oc=1, stride=1, pad="valid", h=1, w=1),
        C(rng, kh=3, ic=16, oc=16, stride=1, pad="same", h=9, w=7),
        C(rng, kh=3, ic=8, oc=12, stride=2, pad="valid", h=9, w=10),
        C(rng, kh=3, ic=8, oc=20, stride=2, pad="same", h=11, w=9),
        C(rng, kh=3, ic=12, oc=7, stride=1, pad="same", h=9, w=9, dilation=2),
        C(rng, kh=2, kw=3, ic=20, oc=5, stride=(2, 3), pad="same", h=7, w=11),
        # input_c % 4 != 0: first layers, one-sided (patch) padding, dilation
        C(rng, kh=3, ic=3, oc=8, stride=2, pad="same", h=17, w=19),
        C(rng, kh=3, ic=1, oc=8, stride=2, pad="same", h=15, w=14),
        C(rng, kh=10, kw=4, ic=1, oc=24, stride=2, pad="same", h=21, w=10),
        C(rng, kh=3, ic=5, oc=9, stride=1, pad="clip", h=7, w=8),
        C(rng, kh=3, ic=6, oc=4, stride=1, pad="same", h=6, w=6, dilation=2),
        C(rng, kh=5, ic=3, oc=6, stride=1, pad="clip", h=9, w=8),
        # batches, requantization edge cases, a narrower activation range
        C(rng, kh=3, ic=8, oc=10, stride=1, pad="same", h=5, w=5, batch=2),
        C(rng, kh=1, ic=16, oc=8, stride=1, pad="valid", h=4, w=4, edge=True),
        C(rng, kh=3, ic=3, oc=8, stride=2, pad="same", h=9, w=9, edge=True),
    ]
    cases[3]["attrs"].update(act_min=-100, act_max=90)
    return cases


def _variants(n_cases: int, which: str):
    """Every case's layer (step y{n}) takes ``which``, or alternately narrow / narrow_w16."""
    if which == "mixed":
        return {f"y{n}": NARROW_VARIANTS[n % 2] for n in range(n_cases)}
    return {f"y{n}": which for n in range(n_cases)}


def _projects(root: str, which: str = "mixed"):
    """(portable, block, narrow) project directories and the metadata for the cases."""
    cases = narrow_cases()
    graph = build_graph(cases)
    block, rep_b = select_kernels(copy.deepcopy(graph), CORE)
    narrow, rep_n = select_kernels(copy.deepcopy(graph), CORE, variants=_variants(len(cases), which))
    assert not rep_b["refused"] and not rep_n["refused"]
    kernels = [s.kernel for s in narrow.steps]
    assert set(kernels) == ({"te_arm_conv2d_narrow_s8", "te_arm_conv2d_narrow_w16_s8"} if which == "mixed" else
                            {"te_arm_conv2d_narrow_w16_s8" if which == "narrow_w16" else "te_arm_conv2d_narrow_s8"})
    dirs = [os.path.join(root, f"{k}_{which}") for k in ("portable", "block", "narrow")]
    meta = export_graph(graph, "convs", dirs[0])
    export_graph(block, "convs", dirs[1])
    export_graph(narrow, "convs", dirs[2])
    return dirs, meta, block, narrow


def test_narrow_scratch_is_one_column():
    for case in narrow_cases():
        a = case["attrs"]
        k4 = conv_k4(a)
        stage = (k4 + a["kernel_w"] * a["input_c"] + 3) // 4 * 4 if a["input_c"] % 4 else 0
        assert scratch_bytes("te_arm_conv2d_narrow_s8", a) == arm_conv_narrow_scratch(a) == 2 * k4 + stage
        assert scratch_bytes("te_arm_conv2d_narrow_w16_s8", a) == 2 * k4 + stage
        assert arm_conv_scratch(a) - arm_conv_narrow_scratch(a) == 6 * k4 + (4 * a["output_c"] + 3) // 4 * 4


@pytest.mark.parametrize("which", ["mixed", "narrow_w16"])
def test_narrow_matches_portable_on_host(tmp_path, which):
    dirs, meta, _, _ = _projects(str(tmp_path), which)
    for seed in (0, 1):
        x = random_inputs(meta["inputs"], seed)
        want = HostModel(dirs[0]).run(x)
        got = HostModel(dirs[2]).run(x)
        for k in want:
            np.testing.assert_array_equal(got[k], want[k], err_msg=f"{which}: output {k} differs on the host")


@requires_arm
@pytest.mark.parametrize("board", ["mps2-an500", "mps2-an386"])  # Cortex-M7, Cortex-M4
def test_narrow_matches_portable_on_qemu(tmp_path, board):
    """On the emulated Cortex-M7 and M4 (the DSP path): portable == block == narrow, and
    the narrow kernels run more instructions than the block ones for less scratch."""
    dirs, meta, block, narrow = _projects(str(tmp_path))
    build = str(tmp_path / "build")
    reports = []
    for seed in (0, 1):
        x = random_inputs(meta["inputs"], seed)
        outs = []
        for d in dirs:
            out, rep = qemu.QemuModel(d, board, build).run(x)
            outs.append(out)
            reports.append(rep)
        for k in outs[0]:
            np.testing.assert_array_equal(outs[1][k], outs[0][k], err_msg=f"block kernel: output {k} differs")
            np.testing.assert_array_equal(outs[2][k], outs[0][k], err_msg=f"narrow kernel: output {k} differs")
    portable, blk, nar = (r["instructions"] for r in reports[:3])
    print(f"{board}: portable {portable:,}, block of four {blk:,}, narrow {nar:,} instructions")
    assert blk < nar < portable
    sb = [scratch_bytes(s.kernel, s.attrs) for s in block.steps]
    sn = [scratch_bytes(s.kernel, s.attrs) for s in narrow.steps]
    assert all(n < b for n, b in zip(sn, sb))


# --------------------------------------------------------------------------- narrow_at_peak
@pytest.fixture(scope="module")
def peak_model():
    # A conv at the arena peak: a 3x3 stem on a 48x48 input whose im2col scratch adds to
    # the live input and output (an MCUNet-style network, patch-based inference off).
    return zoo.mcunet_vww(resolution=48, width=0.5, seed=3)


def test_narrow_at_peak_shrinks_the_arena(peak_model, tflm):
    off = {"disabled_passes": ["PatchBasedInference"]}
    base = te.compile(peak_model, core=CORE, **off)
    small = te.compile(peak_model, core=CORE, narrow_at_peak=True, **off)
    assert "narrowed" not in base.metadata["kernel_selection"]
    narrowed = small.metadata["kernel_selection"]["narrowed"]
    assert narrowed, "the model's peak must hold a convolution's scratch"
    assert small.metadata["memory"]["arena_bytes"] < base.metadata["memory"]["arena_bytes"]
    choices = layer_variants(base.graph, CORE)
    assert all(set(NARROW_VARIANTS) <= set(choices[n]) for n in narrowed)
    kernels = {s.name: s.kernel for s in small.graph.steps}
    assert all(kernels[n].startswith("te_arm_conv2d_narrow_") for n in narrowed)
    # the plan at its peak: the narrowed layer's scratch shrank by what its block kernel needed more
    print(f"arena {base.metadata['memory']['arena_bytes']:,} -> {small.metadata['memory']['arena_bytes']:,} B; "
          f"narrowed {narrowed}")
    cases = [random_inputs(small.metadata["inputs"], s) for s in (1, 2)]
    assert_matches_tflm(small, peak_model, cases)
    # the same variants given by hand build the same code
    by_hand = te.compile(peak_model, core=CORE, kernel_variants={n: "narrow" if "w16" not in kernels[n] else
                                                                 "narrow_w16" for n in narrowed}, **off)
    assert by_hand.metadata["memory"]["arena_bytes"] == small.metadata["memory"]["arena_bytes"]
