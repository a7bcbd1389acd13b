"""Memory passes keep outputs bit-exact with TFLM, and the plans they give are valid.

Plan validity is checked independently of the planner: lifetimes are
recomputed here from the steps, and no two buffers alive at the same step may
share a byte.
"""
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinyengine_tvm as te
from tinyengine_tvm.testing.plan_check import check_plan_valid
from tinyengine_tvm.errors import MemoryBudgetError
from tinyengine_tvm.testing import SHARED_MODELS, assert_matches_tflm, random_inputs
from tinyengine_tvm.transform.pipeline import PASS_FACTORIES

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph  # noqa: E402

ALL_PASSES = list(PASS_FACTORIES)


def _compare_variants(model, variants, seeds=range(3)):
    outs = None
    for kwargs in variants:
        compiled = te.compile(model, **kwargs)
        check_plan_valid(compiled)
        cases = [random_inputs(compiled.metadata["inputs"], s) for s in seeds]
        assert_matches_tflm(compiled, model, cases)
        got = [list(compiled.run(c).values()) for c in cases]
        if outs is None:
            outs = got
        for a, b in zip(outs, got):
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)


def _dw_chain(kernel, stride, padding, channels, seed=0):
    g = QuantizedGraph(seed)
    x = g.input((1, 11, 10, 3))
    y = g.conv2d(x, channels, (3, 3), (1, 1), padding="SAME", activation="RELU6")
    y = g.depthwise_conv2d(y, (kernel, kernel), (stride, stride), padding=padding, activation="RELU6")
    y = g.conv2d(y, 4, (1, 1))
    return g.finish(y)


@pytest.mark.parametrize("kernel", [3, 5, 7])
@pytest.mark.parametrize("stride", [1, 2])
@pytest.mark.parametrize("padding,channels", [("SAME", 8), ("VALID", 5)])
def test_inplace_depthwise(kernel, stride, padding, channels):
    model = _dw_chain(kernel, stride, padding, channels)
    forced = {"InplaceDepthwise.only_if_smaller": False}
    compiled = te.compile(model, disabled_passes=["MemoryAwareSchedule", "FoldPadIntoConv", "PatchBasedInference"],
                          pass_config=forced)
    steps = compiled.graph.steps
    dw = [s for s in steps if s.kernel == "te_depthwise_conv2d_inplace_s8"]
    assert len(dw) == 1
    # The output shares the input's arena bytes.
    assert compiled.graph.root(dw[0].output) == compiled.graph.root(dw[0].inputs[0])
    _compare_variants(model, [dict(optimize=False), dict(disabled_passes=["MemoryAwareSchedule"], pass_config=forced)])


def test_fold_pad_removes_the_padded_tensor():
    g = QuantizedGraph(3)
    x = g.input((1, 12, 12, 3))
    y = g.conv2d(x, 8, (3, 3), (1, 1), padding="VALID", activation="RELU")
    y = g.pad(y, ((0, 0), (1, 2), (2, 1), (0, 0)))
    y = g.depthwise_conv2d(y, (3, 3), (2, 2), padding="VALID")
    model = g.finish(g.conv2d(y, 4, (1, 1)))
    plain = te.compile(model, optimize=False)
    folded = te.compile(model)
    assert "PAD" in [o["type"] for o in plain.metadata["ops"]]
    assert "PAD" not in [o["type"] for o in folded.metadata["ops"]]
    assert folded.metadata["memory"]["arena_bytes"] < plain.metadata["memory"]["arena_bytes"]
    _compare_variants(model, [dict(optimize=False), dict()])


def _branchy_model():
    """Two branches whose original order keeps both large intermediates alive at once."""
    g = QuantizedGraph(5)
    x = g.input((1, 8, 8, 4))
    a1 = g.conv2d(x, 48, (1, 1), prefix="a1")
    b1 = g.conv2d(x, 40, (1, 1), prefix="b1")
    a2 = g.conv2d(a1, 4, (3, 3), prefix="a2")
    b2 = g.conv2d(b1, 4, (3, 3), prefix="b2")
    return g.finish(g.concat([a2, b2], axis=3))


def test_memory_aware_schedule_lowers_the_peak():
    """Put the lowered graph in the worst branch order, then let the pass fix it."""
    import tvm

    from tinyengine_tvm.frontend import load_model
    from tinyengine_tvm.kernel_graph import KernelGraph
    from tinyengine_tvm.transform import LowerToIntegerKernels
    from tinyengine_tvm.transform.kernel_call import parse_kernel_call
    from tinyengine_tvm.transform.memory_schedule import MemoryAwareSchedule, search_schedule
    from tinyengine_tvm.transform.relax_utils import bindings, pass_reports, rebuild_function

    model = _branchy_model()
    imported = load_model(model)
    lowered = LowerToIntegerKernels()(imported.mod)
    func = lowered["main"]
    bs = bindings(func)
    convs = [b for b in bs if parse_kernel_call(b.value) is not None
             and parse_kernel_call(b.value).kernel == "te_conv2d_s8"]
    big = [b for b in convs if int(b.var.ty.shape[3]) > 8]
    small = [b for b in convs if int(b.var.ty.shape[3]) <= 8]
    rest = [b for b in bs if b not in convs]
    bad = tvm.IRModule({"main": rebuild_function(func, lambda v, x: x, big + small + rest)})
    graph = KernelGraph.from_relax(bad["main"])
    result = search_schedule(graph, [0] * len(graph.steps))
    assert result.exact and result.peak < result.original_peak

    fixed = MemoryAwareSchedule()(bad)
    assert pass_reports(fixed["main"])[-1]["peak_bytes"] == result.peak
    before = KernelGraph.from_relax(bad["main"])
    after = KernelGraph.from_relax(fixed["main"])
    from tinyengine_tvm.planner import plan_arena

    assert plan_arena(after).arena_bytes < plan_arena(before).arena_bytes
    compiled = te.compile(fixed, name="scheduled", optimize=False)
    base = te.compile(model, optimize=False)
    for seed in range(3):
        x = random_inputs(base.metadata["inputs"], seed)
        np.testing.assert_array_equal(list(compiled.run(x).values())[0], list(base.run(x).values())[0])


def test_sram_budget_names_the_peak_and_the_overshoot():
    model = _branchy_model()
    arena = te.compile(model).metadata["memory"]["arena_bytes"]
    te.compile(model, sram_budget=arena)
    with pytest.raises(MemoryBudgetError) as err:
        te.compile(model, sram_budget=arena - 100)
    msg = str(err.value)
    assert "100 B over" in msg and "peak is at op" in msg and "CONV_2D" in msg


@pytest.mark.parametrize("variant", ["none", "all"] + [f"only-{p}" for p in ALL_PASSES])
@pytest.mark.parametrize("model", SHARED_MODELS)
def test_shared_models_with_each_pass(model, variant, shared_dir):
    path = os.path.join(shared_dir, f"{model}.tflite")
    if variant == "none":
        kwargs = dict(optimize=False)
    elif variant == "all":
        kwargs = {}
    else:
        only = variant[len("only-"):]
        kwargs = dict(disabled_passes=[p for p in ALL_PASSES if p != only])
    compiled = te.compile(path, **kwargs)
    check_plan_valid(compiled)
    assert_matches_tflm(compiled, open(path, "rb").read(),
                        [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


# ---------------------------------------------------------------- properties
@st.composite
def small_cnns(draw):
    """A random small CNN: conv/depthwise/inverted-residual/pool/pad blocks."""
    seed = draw(st.integers(0, 10_000))
    g = QuantizedGraph(seed, samples=8)
    h = draw(st.integers(5, 12))
    w = draw(st.integers(5, 12))
    c = draw(st.integers(1, 6))
    x = g.input((1, h, w, c))
    for _ in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["conv", "dw", "residual", "pool", "pad_conv"]))
        act = draw(st.sampled_from(["NONE", "RELU", "RELU6"]))
        if kind == "conv":
            x = g.conv2d(x, draw(st.integers(1, 12)), (draw(st.sampled_from([1, 3])),) * 2,
                         (draw(st.sampled_from([1, 2])),) * 2, padding=draw(st.sampled_from(["SAME", "VALID"])) if min(x.shape[1:3]) >= 3 else "SAME", activation=act)
        elif kind == "dw":
            k = draw(st.sampled_from([3, 5, 7]))
            x = g.depthwise_conv2d(x, (k, k), (draw(st.sampled_from([1, 2])),) * 2, padding="SAME", activation=act)
        elif kind == "residual":
            y = g.conv2d(x, x.shape[3] * 2, (1, 1), activation="RELU6")
            y = g.depthwise_conv2d(y, (3, 3), (1, 1), padding="SAME", activation="RELU6")
            y = g.conv2d(y, x.shape[3], (1, 1))
            x = g.add(x, y, activation=act)
        elif kind == "pool" and min(x.shape[1:3]) >= 2:
            x = g.max_pool(x, (2, 2), (2, 2)) if draw(st.booleans()) else g.avg_pool(x, (2, 2), (2, 2))
        elif kind == "pad_conv":
            # At least 3 x 3 after padding, so the VALID 3x3 conv has an output.
            p = max(draw(st.integers(0, 2)), 2 - min(x.shape[1:3]))
            x = g.pad(x, ((0, 0), (p, 1), (1, p), (0, 0)))
            x = g.conv2d(x, draw(st.integers(1, 8)), (3, 3), (1, 1), padding="VALID", activation=act)
    return g.finish(x)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=small_cnns())
def test_random_cnns_equal_with_and_without_passes(model):
    _compare_variants(model, [dict(optimize=False), dict()], seeds=range(2))


# ------------------------------------------------------------------ patches
def _mbv2_like(h=41, w=37, seed=7):
    """MobileNetV2-style: stride-2 stem, inverted residuals, 5x5 stride-2 depthwise, odd sizes."""
    g = QuantizedGraph(seed)
    x = g.input((1, h, w, 3))
    x = g.conv2d(x, 8, (3, 3), (2, 2), activation="RELU6")
    y = g.conv2d(x, 16, (1, 1), activation="RELU6")
    y = g.depthwise_conv2d(y, (3, 3), (1, 1), activation="RELU6")
    y = g.conv2d(y, 8, (1, 1))
    x = g.add(x, y)
    x = g.depthwise_conv2d(x, (5, 5), (2, 2), activation="RELU6")
    x = g.conv2d(x, 12, (1, 1), activation="RELU6")
    x = g.avg_pool(x, (x.shape[1], x.shape[2]), (1, 1))
    return g.finish(g.fully_connected(g.reshape(x, (1, 12)), 5))


@pytest.mark.parametrize("patches", [2, 3, 5])
def test_patch_grid_uneven_with_residual_stage(patches):
    model = _mbv2_like()
    cfg = {"PatchBasedInference.patches": patches, "PatchBasedInference.split": 4,
           "PatchBasedInference.max_mac_overhead": 10.0}
    compiled = te.compile(model, pass_config=cfg, disabled_passes=["InplaceDepthwise"])
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    if report["applied"]:
        (stage,) = report["stages"]
        assert stage["grid"] == [patches, patches] and stage["last_index"] == 4
        assert sum(o["type"] == "PASTE" for o in compiled.metadata["ops"]) == patches * patches
    else:  # forced configurations may not pay off; the reason must say so
        assert "not smaller" in report["reason"]
    _compare_variants(model, [dict(optimize=False), dict(pass_config=cfg)])


def test_patch_search_lowers_the_arena_within_the_mac_budget():
    model = _mbv2_like(h=64, w=64)
    plain = te.compile(model, optimize=False)
    patched = te.compile(model)
    report = {p["name"]: p for p in patched.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"] and 0 < report["mac_overhead"] <= 0.1
    assert patched.metadata["memory"]["arena_bytes"] < plain.metadata["memory"]["arena_bytes"]
    # MACs in the metadata include the halo recomputation.
    extra = patched.metadata["total_macs"] - plain.metadata["total_macs"]
    assert extra == pytest.approx(report["mac_overhead"] * plain.metadata["total_macs"], rel=1e-6)
    _compare_variants(model, [dict(optimize=False), dict()])


def test_patching_refuses_when_it_cannot_help():
    g = QuantizedGraph(2)
    x = g.input((1, 4, 4, 3))
    x = g.conv2d(x, 4, (3, 3), (1, 1))
    x = g.conv2d(x, 4, (3, 3), (1, 1))
    model = g.finish(x)
    compiled = te.compile(model)
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert not report["applied"] and report["reason"]
    # Without a MAC budget only stages that recompute no halo may be patched:
    # windowed ops that read full sources, or halos kept in the cache.
    none = te.compile(_mbv2_like(h=64, w=64), pass_config={"PatchBasedInference.max_mac_overhead": 0.0})
    report = {p["name"]: p for p in none.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"] and report["mac_overhead"] == 0, report
    assert all(st["extra_macs"] == 0 for st in report["stages"])
    assert none.metadata["total_macs"] == te.compile(_mbv2_like(h=64, w=64), optimize=False).metadata["total_macs"]
    g = QuantizedGraph(3)
    x = g.input((1, 16, 16, 4))
    x = g.conv2d(x, 8, (3, 3), (1, 1), activation="RELU")
    x = g.conv2d(x, 8, (3, 3), (1, 1), activation="RELU")
    x = g.conv2d(x, 4, (3, 3), (2, 2), activation="RELU")
    x = g.avg_pool(x, (8, 8), (1, 1))
    halo_only = g.finish(g.fully_connected(g.reshape(x, (1, 4)), 3))
    report = {p["name"]: p for p in te.compile(halo_only, pass_config={
        "PatchBasedInference.max_mac_overhead": 0.0, "PatchBasedInference.halo_cache": "off"}).metadata[
        "passes"]}["PatchBasedInference"]
    assert not report["applied"] and "extra MACs" in report["reason"], report
    cached = te.compile(halo_only, pass_config={"PatchBasedInference.max_mac_overhead": 0.0,
                                                "PatchBasedInference.halo_cache": "all"})
    report = {p["name"]: p for p in cached.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"] and report["mac_overhead"] == 0 and report["stages"][0]["halo_cache"] != "off", report
    assert cached.metadata["total_macs"] == te.compile(halo_only, optimize=False).metadata["total_macs"]
    _compare_variants(halo_only, [dict(optimize=False), dict(pass_config={
        "PatchBasedInference.max_mac_overhead": 0.0, "PatchBasedInference.halo_cache": "all"})])


def test_declining_names_the_operator_that_stops_it():
    g = QuantizedGraph(4)
    x = g.input((1, 8, 8, 4))
    x = g.resize_nearest(x, (16, 16), prefix="upsample")
    x = g.softmax(x, prefix="normalize")
    model = g.finish(g.fully_connected(g.reshape(x, (1, 1024)), 3, prefix="classifier"))
    report = {p["name"]: p for p in te.compile(model).metadata["passes"]}["PatchBasedInference"]
    assert not report["applied"]
    assert "te_softmax_s8" in report["reason"] and "normalize" in report["reason"], report


def test_inplace_add_over_the_dying_operand():
    """The dying operand is the second one: inputs and their parameters are swapped."""
    model = _mbv2_like()
    cfg = {"InplaceElementwise.only_if_smaller": False}
    compiled = te.compile(model, pass_config=cfg, disabled_passes=["PatchBasedInference"])
    assert [s.kernel for s in compiled.graph.steps].count("te_add_inplace_s8") == 1
    _compare_variants(model, [dict(optimize=False), dict(pass_config=cfg, disabled_passes=["PatchBasedInference"])])


def test_two_outputs_and_user_pipeline():
    """A two-headed model through the passes composed by the user in tvm.transform.Sequential."""
    import tvm

    from tinyengine_tvm.frontend import load_model
    from tinyengine_tvm.transform import (InplaceDepthwise, LowerToIntegerKernels, MemoryAwareSchedule,
                                          PatchBasedInference)

    g = QuantizedGraph(11)
    x = g.input((1, 24, 24, 3))
    x = g.conv2d(x, 8, (3, 3), (2, 2), activation="RELU6")
    y = g.depthwise_conv2d(x, (3, 3), (1, 1), activation="RELU6")
    head_a = g.conv2d(y, 4, (1, 1), prefix="head_a")
    head_b = g.max_pool(g.conv2d(x, 6, (1, 1), prefix="head_b"), (2, 2), (2, 2))
    model = g.finish([head_a, head_b])
    imported = load_model(model)
    seq = tvm.transform.Sequential([LowerToIntegerKernels(), PatchBasedInference(),
                                    InplaceDepthwise(), MemoryAwareSchedule()])
    lowered = seq(imported.mod)
    compiled = te.compile(lowered, name="two_heads", optimize=False)
    reference = te.compile(model, optimize=False)
    assert len(compiled.metadata["outputs"]) == 2
    check_plan_valid(compiled)
    for seed in range(3):
        xs = random_inputs(reference.metadata["inputs"], seed)
        for a, b in zip(compiled.run(xs).values(), reference.run(xs).values()):
            np.testing.assert_array_equal(a, b)
    _compare_variants(model, [dict(optimize=False), dict()])


@pytest.mark.parametrize("model", SHARED_MODELS)
def test_planner_reaches_the_live_set_peak(model, shared_dir):
    compiled = te.compile(os.path.join(shared_dir, f"{model}.tflite"))
    mem = compiled.metadata["memory"]
    # The live-set peak counts aligned sizes; only the last buffer's padding may differ.
    assert mem["live_peak_bytes"] - 16 < mem["arena_bytes"] <= mem["live_peak_bytes"], mem


@pytest.mark.parametrize("mask", range(2 ** len(ALL_PASSES)))
def test_every_combination_of_passes(mask):
    """All 2^5 subsets of the passes, bit-exact with TFLM, on a model that FoldPadIntoConv,
    PatchBasedInference and both in-place passes change (reordering is tested above)."""
    model = _mbv2_combo_model()
    disabled = [p for i, p in enumerate(ALL_PASSES) if not (mask >> i) & 1]
    compiled = te.compile(model, disabled_passes=disabled, pass_config={
        "InplaceDepthwise.only_if_smaller": False, "InplaceElementwise.only_if_smaller": False})
    check_plan_valid(compiled)
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


_COMBO_MODEL = []


def _mbv2_combo_model():
    """_mbv2_like with an explicit PAD, so FoldPadIntoConv has work too (built once)."""
    if not _COMBO_MODEL:
        g = QuantizedGraph(21)
        x = g.input((1, 48, 44, 3))
        x = g.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
        x = g.conv2d(x, 8, (3, 3), (2, 2), padding="VALID", activation="RELU6")
        y = g.conv2d(x, 16, (1, 1), activation="RELU6")
        y = g.depthwise_conv2d(y, (3, 3), (1, 1), activation="RELU6")
        y = g.conv2d(y, 8, (1, 1))
        x = g.add(x, y)
        x = g.depthwise_conv2d(x, (5, 5), (2, 2), activation="RELU6")
        x = g.conv2d(x, 12, (1, 1), activation="RELU6")
        _COMBO_MODEL.append(g.finish(x))
    return _COMBO_MODEL[0]
