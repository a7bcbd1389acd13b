"""Patch stages anywhere (transform/patch_inference.py), on the zoo's model families.

* every stage the search may pick, cut into grids with and without the halo
  cache, is bit-exact with the unpatched model (sampled stages of each zoo
  family: inverted residuals, squeeze-excite MUL with a broadcast gate, FPN
  with CONCATENATION and RESIZE, NCHW input) and its arena plan is checked
  without the planner;
* a stage may start after an operator that cannot be patched, and several
  stages are patched in one model;
* a float input is quantized inside the first stage: the float input and a
  full int8 copy of it are never live together.
"""
import re

import numpy as np
import pytest
import tvm

import tinyengine_tvm as te
from tinyengine_tvm.kernel_graph import KernelGraph
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
from tinyengine_tvm.modelgen.zoo import ZOO
from tinyengine_tvm.testing import random_inputs
from tinyengine_tvm.testing.plan_check import check_plan_valid
from tinyengine_tvm.transform.patch_inference import (BINARY, build_patched, cache_bytes, find_stages,
                                                      patch_plan, stage_extra_macs)

SMALL = {
    "mcunet_vww": dict(resolution=40, width=0.35),
    "mcunet_se_imagenet": dict(resolution=40, width=0.35, classes=10),
    "mcunet_fpn_detector": dict(resolution=(48, 64), width=0.35),
    "mobilenetv2_nchw": dict(resolution=32, width=0.35, classes=10),
}


def _lowered(model: bytes, **kwargs):
    return te.compile(model, optimize=False, **kwargs)


def _same_outputs(a, b, seeds=range(2)):
    for seed in seeds:
        xs = random_inputs(b.metadata["inputs"], seed)
        for x, y in zip(a.run(xs).values(), b.run(xs).values()):
            np.testing.assert_array_equal(x, y)


def _sample(stages, k, rng):
    """k stages spread over the model, the longest and the ones with broadcast operands included."""
    picked = {max(range(len(stages)), key=lambda i: stages[i].last - stages[i].first)}
    picked |= {i for i, st in enumerate(stages) if st.whole}
    picked |= set(rng.choice(len(stages), size=min(k, len(stages)), replace=False).tolist())
    return [stages[i] for i in sorted(picked)][:k + 2]


@pytest.mark.parametrize("family", list(SMALL))
def test_sampled_stages_and_grids_are_bit_exact(family):
    model = ZOO[family](**SMALL[family])
    ref = _lowered(model)
    func = ref.lowered["main"]
    graph = KernelGraph.from_relax(func)
    stages, _ = find_stages(graph)
    assert stages, "no stage found"
    rng = np.random.default_rng(len(family))
    kernels = set()
    for n, stage in enumerate(_sample(stages, 4, rng)):
        _, H, W, _ = graph.tensors[stage.output].shape
        nh, nw = min(H, 2 + n % 3), min(W, 3 - n % 2)
        if nh * nw < 2:
            continue
        plan = patch_plan(graph, stage, nh, nw, cache=("off", "columns", "full")[n % 3])
        patched = build_patched(func, graph, stage, plan)
        mod = tvm.IRModule({"main": patched})
        compiled = te.compile(mod, name=family, optimize=False)
        check_plan_valid(compiled)
        _same_outputs(compiled, ref)
        kernels |= {graph.steps[s].kernel for s in stage.steps}
        extra = compiled.metadata["total_macs"] - ref.metadata["total_macs"]
        assert extra == stage_extra_macs(graph, stage, plan)
    if family == "mcunet_se_imagenet":
        assert kernels & set(BINARY) and any(st.whole for st in stages)  # the SE gate's MUL


def test_halo_cache_recomputes_nothing_along_a_row():
    """The columns form caches horizontal overlaps: one row of patches recomputes nothing."""
    g = QuantizedGraph(3)
    x = g.input((1, 9, 24, 4))
    x = g.conv2d(x, 8, (3, 3), (1, 1), activation="RELU")
    x = g.depthwise_conv2d(x, (5, 5), (1, 1), activation="RELU6")
    x = g.conv2d(x, 4, (3, 3), (1, 1), activation="RELU")
    model = g.finish(x)
    ref = _lowered(model)
    func = ref.lowered["main"]
    graph = KernelGraph.from_relax(func)
    (stage,) = [s for s in find_stages(graph)[0] if (s.first, s.last) == (0, 2)]
    cached, recomputed = patch_plan(graph, stage, 1, 4, "columns"), patch_plan(graph, stage, 1, 4, "off")
    assert stage_extra_macs(graph, stage, cached) == 0 < stage_extra_macs(graph, stage, recomputed)
    compiled = te.compile(tvm.IRModule({"main": build_patched(func, graph, stage, cached)}), optimize=False)
    check_plan_valid(compiled)
    _same_outputs(compiled, ref, seeds=range(3))
    assert compiled.metadata["total_macs"] == ref.metadata["total_macs"]
    assert any(op["name"].endswith("halo]") for op in compiled.metadata["ops"])


@pytest.mark.parametrize("nh, nw", [(3, 4), (4, 1), (5, 3)])
def test_full_halo_cache_recomputes_nothing_on_a_grid(nh, nw):
    """The full form also reuses the rows of the patch above (StreamNet-style):
    no MAC is computed twice on any grid, strides and dilation included, and
    the rows and columns kept are what the report counts."""
    g = QuantizedGraph(4)
    x = g.input((1, 23, 19, 3))
    x = g.conv2d(x, 8, (3, 3), (2, 2), activation="RELU", prefix="stem")
    x = g.depthwise_conv2d(x, (5, 5), (1, 1), activation="RELU6", prefix="dw")
    x = g.conv2d(x, 8, (3, 3), (1, 1), dilation=(2, 2), activation="RELU", prefix="dilated")
    x = g.max_pool(x, (3, 3), (1, 1), prefix="pool")
    model = g.finish(g.conv2d(x, 4, (1, 1), (1, 1), prefix="head"))
    ref = _lowered(model)
    func = ref.lowered["main"]
    graph = KernelGraph.from_relax(func)
    stage = max(find_stages(graph)[0], key=lambda s: s.last - s.first)
    assert stage.first == 0 and stage.last == len(graph.steps) - 1
    full, off = patch_plan(graph, stage, nh, nw, "full"), patch_plan(graph, stage, nh, nw, "off")
    assert stage_extra_macs(graph, stage, full) == 0 < stage_extra_macs(graph, stage, off)
    compiled = te.compile(tvm.IRModule({"main": build_patched(func, graph, stage, full)}), optimize=False)
    check_plan_valid(compiled)
    _same_outputs(compiled, ref, seeds=range(3))
    assert compiled.metadata["total_macs"] == ref.metadata["total_macs"]
    names = [op["name"] for op in compiled.metadata["ops"]]
    assert any(n.endswith("rows]") for n in names)
    assert any(n.endswith("halo]") for n in names) == (nw > 1)
    assert cache_bytes(graph, stage, full) > 0 == cache_bytes(graph, stage, off)


def _two_peaks():
    """High-resolution layers at both ends of a RESIZE_NEAREST_NEIGHBOR and a SOFTMAX (not patchable)."""
    g = QuantizedGraph(9)
    x = g.input((1, 48, 48, 3))
    x = g.conv2d(x, 16, (3, 3), (2, 2), activation="RELU6", prefix="stem")
    x = g.conv2d(x, 32, (1, 1), (1, 1), activation="RELU6", prefix="wide")
    x = g.depthwise_conv2d(x, (3, 3), (2, 2), activation="RELU6", prefix="down")
    x = g.conv2d(x, 8, (1, 1), (1, 1), prefix="narrow")
    x = g.resize_nearest(x, (24, 24), prefix="up")
    x = g.softmax(x, prefix="norm")
    x = g.conv2d(x, 32, (1, 1), (1, 1), activation="RELU6", prefix="wide2")
    x = g.depthwise_conv2d(x, (3, 3), (2, 2), activation="RELU6", prefix="down2")
    x = g.conv2d(x, 8, (1, 1), (1, 1), prefix="narrow2")
    x = g.avg_pool(x, (12, 12), (1, 1))
    return g.finish(g.fully_connected(g.reshape(x, (1, 8)), 3, prefix="fc"))


def test_several_stages_one_after_a_non_patchable_op():
    model = _two_peaks()
    plain = te.compile(model, optimize=False)
    compiled = te.compile(model, disabled_passes=["InplaceDepthwise", "InplaceElementwise"])
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"] and len(report["stages"]) >= 2, report
    after_resize = [st for st in report["stages"] if st["first_op"].startswith(("wide2", "down2"))]
    assert after_resize, report["stages"]  # this stage's source is the SOFTMAX output, not the model input
    assert report["mac_overhead"] <= 0.1 + 1e-9
    assert compiled.metadata["memory"]["arena_bytes"] < plain.metadata["memory"]["arena_bytes"]
    # A stage's source may be an earlier stage's output: every name stays the pass's own, unique.
    names = [op["name"] for op in compiled.metadata["ops"]]
    assert len(set(names)) == len(names) and not any(re.search(r"\]\d+$", n) for n in names)
    check_plan_valid(compiled)
    _same_outputs(compiled, plain, seeds=range(3))


def test_float_input_is_quantized_inside_the_first_stage():
    model = ZOO["mcunet_vww"](resolution=48, width=0.35)
    compiled = te.compile(model)
    plain = te.compile(model, optimize=False)
    meta = compiled.metadata
    image = meta["inputs"][0]
    assert image["dtype"] == "float32"
    q = [op for op in meta["ops"] if op["type"] == "QUANTIZE"]
    assert q and all("[patch" in op["name"] for op in q), [op["name"] for op in q]
    full_int8 = [op["name"] for op in plain.metadata["ops"] if op["type"] == "QUANTIZE"][0]
    for op in meta["ops"]:
        assert not (image["name"] in op["live_buffers"] and full_int8 in op["live_buffers"]), op
    check_plan_valid(compiled)
    _same_outputs(compiled, plain)


def test_memory_plot_puts_both_curves_on_the_model_operators(tmp_path):
    from tinyengine_tvm.report import base_name, operator_axis, plot_memory_timeline

    model = _two_peaks()
    plain = te.compile(model, optimize=False).metadata
    meta = te.compile(model).metadata
    operators = [op["name"] for op in plain["ops"]]
    live = operator_axis(meta, operators)
    assert len(live) == len(operators) and len(meta["ops"]) > len(operators)  # patches fold into their operator
    assert max(live) == max(op["live_bytes"] for op in meta["ops"])
    assert operator_axis(plain, operators) == [op["live_bytes"] for op in plain["ops"]]
    stages = {p["name"]: p for p in meta["passes"]}["PatchBasedInference"]["stages"]
    assert all(base_name(st["first_op"]) in operators and base_name(st["last_op"]) in operators for st in stages)
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    path = plot_memory_timeline(meta, plain, str(tmp_path / "m.png"), sram_bytes=64 * 1024)
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


# ------------------------------------------------------------------ random CNNs over the zoo's blocks
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from tinyengine_tvm.modelgen.zoo import classifier_tail, concat_channels, inverted_residual, squeeze_excite  # noqa: E402
from tinyengine_tvm.testing import assert_matches_tflm  # noqa: E402


@st.composite
def block_cnns(draw):
    """Random small CNNs of the zoo's building blocks: float or int8 input, inverted
    residuals (expansion 1-6, kernels 3/5/7, strides 1/2, optional SE), a
    RESIZE + CONCATENATION merge, PAD + pool, several outputs."""
    g = QuantizedGraph(draw(st.integers(0, 1000)), samples=2)
    h, w = draw(st.sampled_from([(16, 16), (20, 24), (24, 16)]))
    float_io = draw(st.booleans())
    x = g.input((1, h, w, 3), -1.0, 1.0, dtype="float32" if float_io else "int8", name="image")
    if float_io:
        x = g.quantize(x, prefix="image_q")
    x = g.conv2d(x, 8, (3, 3), (draw(st.sampled_from([1, 2])),) * 2, (1, 1), "SAME", "RELU6", True, prefix="stem")
    outs = []
    for b in range(draw(st.integers(1, 4))):
        kind = draw(st.sampled_from(["ir", "ir", "se", "merge", "padpool"]))
        if kind == "padpool":  # a PAD only a pool reads: not folded, patched as it is
            p = draw(st.integers(0, 3))
            x = g.pad(x, ((0, 0), (p, 1), (2, p), (0, 0)), prefix=f"pad{b}")
            x = g.max_pool(x, (2, 2), (1, 1), prefix=f"pool{b}")
            continue
        if kind == "merge" and min(x.shape[1:3]) >= 4:
            skip = x
            y = g.conv2d(x, 8, (3, 3), (2, 2), (1, 1), "SAME", "RELU", True, prefix=f"down{b}")
            y = g.resize_nearest(y, skip.shape[1:3], prefix=f"up{b}")
            x = concat_channels(g, [skip, y], f"merge{b}")
            outs.append(g.conv2d(x, 4, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix=f"head{b}"))
        else:
            stride = draw(st.sampled_from([1, 1, 2])) if min(x.shape[1:3]) >= 4 else 1
            x = inverted_residual(g, x, draw(st.sampled_from([x.shape[3], 8, 12])), draw(st.integers(1, 6)),
                                  draw(st.sampled_from([3, 5, 7])), stride, f"block{b}",
                                  se_ratio=0.25 if kind == "se" else None)
    out = classifier_tail(g, x, 3)
    outs.append(g.dequantize(out, prefix="logits") if float_io else out)
    return g.finish(outs)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(model=block_cnns(), cache=st.sampled_from(["auto", "all", "on", "columns", "off"]),
       budget=st.sampled_from([0.1, 0.5]))
def test_random_block_cnns_patched_are_bit_exact_with_tflm(model, cache, budget):
    compiled = te.compile(model, pass_config={"PatchBasedInference.halo_cache": cache,
                                              "PatchBasedInference.max_mac_overhead": budget})
    check_plan_valid(compiled)
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"] or report["reason"]
    assert report["mac_overhead"] <= budget + 1e-9
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


def test_search_without_the_input_in_the_arena():
    """count_inputs=false: the plan minimizes what the model needs besides its (caller-held) input."""
    from tinyengine_tvm.kernels import steps_scratch
    from tinyengine_tvm.planner import plan_arena

    model = ZOO["mcunet_vww"](resolution=48, width=0.35)
    counted = te.compile(model, int8_io=True)
    outside = te.compile(model, int8_io=True, pass_config={"PatchBasedInference.count_inputs": False})

    def without_input(c):
        return plan_arena(c.graph, steps_scratch(c.graph.steps), count_inputs=False).arena_bytes

    assert without_input(outside) <= without_input(counted) < counted.metadata["memory"]["arena_bytes"]
    plain = te.compile(model, optimize=False, int8_io=True)
    _same_outputs(outside, plain)


@pytest.mark.parametrize("grid_nh, grid_nw, cache", [(2, 2, "off"), (3, 4, "columns"), (5, 5, "full"),
                                                      (5, 6, "full")])
def test_pad_in_a_stage_including_windows_of_padding_only(grid_nh, grid_nw, cache):
    """A PAD that FoldPadIntoConv cannot fold (read by a pool), with paddings wider
    than some patches: those patches are padding only (their window reads one
    input row or column beside it)."""
    g = QuantizedGraph(12)
    x = g.input((1, 12, 14, 4))
    x = g.conv2d(x, 6, (3, 3), (1, 1), activation="RELU", prefix="conv")
    x = g.pad(x, ((0, 0), (6, 1), (2, 7), (0, 2)), prefix="pad")
    x = g.max_pool(x, (2, 2), (1, 1), prefix="pool")
    model = g.finish(g.conv2d(x, 4, (1, 1), (1, 1), prefix="project"))
    ref = _lowered(model)
    func = ref.lowered["main"]
    graph = KernelGraph.from_relax(func)
    pad_step = [s for s, st in enumerate(graph.steps) if st.kernel == "te_pad_s8"][0]
    stage = max((s for s in find_stages(graph)[0] if s.first <= pad_step <= s.last),
                key=lambda s: s.last - s.first)
    plan = patch_plan(graph, stage, grid_nh, grid_nw, cache)
    compiled = te.compile(tvm.IRModule({"main": build_patched(func, graph, stage, plan)}), optimize=False)
    check_plan_valid(compiled)
    _same_outputs(compiled, ref, seeds=range(3))
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


@pytest.mark.parametrize("align, half, nh, nw, cache, dtype", [
    (False, False, 2, 3, "off", "int8"), (True, False, 3, 2, "full", "int8"), (False, True, 4, 4, "columns", "int8"),
    (False, False, 5, 3, "full", "int8"), (True, False, 3, 3, "columns", "int16"),
    (False, True, 2, 4, "full", "int16")])
def test_resize_nearest_in_a_stage(align, half, nh, nw, cache, dtype):
    """An FPN-style upsampling inside a stage: each patch resizes the block of the
    coarse map its window reads (the kernel's own index rule), for every TFLite
    coordinate mode, down- and upsampling, int8 and int16."""
    g = QuantizedGraph(21)
    x = g.input((1, 15, 17, 3), dtype=dtype)
    x = g.conv2d(x, 6, (3, 3), (2, 2), activation="RELU", prefix="down")
    x = g.resize_nearest(x, (13, 11), align, half, prefix="shrink")
    x = g.conv2d(x, 6, (3, 3), (1, 1), activation="RELU", prefix="mid")
    x = g.resize_nearest(x, (26, 30), align, half, prefix="up")
    model = g.finish(g.conv2d(x, 4, (3, 3), (1, 1), prefix="head"))
    ref = _lowered(model)
    func = ref.lowered["main"]
    graph = KernelGraph.from_relax(func)
    stage = max(find_stages(graph)[0], key=lambda s: s.last - s.first)
    assert sum(graph.steps[s].kernel == f"te_resize_nearest_s{dtype[3:]}" for s in stage.steps) == 2
    plan = patch_plan(graph, stage, nh, nw, cache)
    compiled = te.compile(tvm.IRModule({"main": build_patched(func, graph, stage, plan)}), optimize=False)
    check_plan_valid(compiled)
    _same_outputs(compiled, ref, seeds=range(2))
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


def _int16_cnn(mixed=False):
    """A 16x8 CNN (int16 activations): convolution, depthwise, residual ADD, a
    LOGISTIC gate (MUL), SUB, both poolings, PAD; with ``mixed`` an int8 input
    requantized to int16 inside the first stage and back to int8 after it."""
    g = QuantizedGraph(12)
    x = g.input((1, 20, 18, 3), dtype="int8" if mixed else "int16")
    if mixed:
        x = g.quantize(x, dtype="int16")
    y = g.conv2d(x, 16, (3, 3), (1, 1), padding="SAME", activation="RELU6")
    d = g.depthwise_conv2d(y, (3, 3), (1, 1), padding="SAME", activation="RELU")
    y = g.add(y, g.conv2d(d, 16, (1, 1), prefix="project"))
    y = g.mul(y, g.logistic(y))
    y = g.sub(y, g.max_pool(y, (3, 3), (1, 1), "SAME", prefix="neighbours"))
    y = g.max_pool(y, (2, 2), (2, 2))
    if mixed:
        y = g.quantize(y, dtype="int8")
    y = g.conv2d(g.pad(y, ((0, 0), (1, 1), (1, 1), (0, 0))), 24, (3, 3), (1, 1), padding="VALID", activation="RELU")
    y = g.avg_pool(y, (3, 3), (1, 1), padding="SAME")
    y = g.mean(y, (1, 2))
    return g.finish(g.fully_connected(g.reshape(y, (1, 24)), 5))


@pytest.mark.parametrize("cache", ["off", "columns", "all"])
@pytest.mark.parametrize("mixed", [False, True])
def test_int16_stages_are_patched_and_bit_exact_with_tflm(cache, mixed):
    model = _int16_cnn(mixed)
    plain = te.compile(model, disabled_passes=["PatchBasedInference"])
    compiled = te.compile(model, pass_config={"PatchBasedInference.halo_cache": cache})
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"], report["reason"]
    patched = [s.kernel for s in compiled.graph.steps if s.notes.get("patch_of") is not None]
    assert {"te_conv2d_s16", "te_depthwise_conv2d_s16", "te_add_s16", "te_mul_s16", "te_logistic_s16",
            "te_sub_s16", "te_max_pool_s16"} <= set(patched)
    if mixed:
        assert "te_requantize_s8_s16" in patched
    assert compiled.metadata["memory"]["arena_bytes"] < plain.metadata["memory"]["arena_bytes"]
    check_plan_valid(compiled)
    cases = [random_inputs(compiled.metadata["inputs"], s) for s in range(3)]
    assert_matches_tflm(compiled, model, cases)
    _same_outputs(compiled, plain)


def _int16_squared_difference_cnn():
    """A 16x8 CNN whose first stage ends in SQUARED_DIFFERENCE of a feature map and its 3x3 maximum."""
    g = QuantizedGraph(13)
    x = g.input((1, 24, 20, 3), dtype="int16")
    y = g.conv2d(x, 12, (3, 3), (1, 1), padding="SAME", activation="RELU")
    y = g.squared_difference(y, g.max_pool(y, (3, 3), (1, 1), "SAME", prefix="neighbours"))
    y = g.max_pool(y, (2, 2), (2, 2))
    y = g.conv2d(y, 16, (3, 3), (2, 2), padding="SAME", activation="RELU")
    return g.finish(g.fully_connected(g.reshape(g.mean(y, (1, 2)), (1, 16)), 4))


def test_int16_squared_difference_is_patched_and_bit_exact_with_tflm():
    model = _int16_squared_difference_cnn()
    plain = te.compile(model, disabled_passes=["PatchBasedInference"])
    compiled = te.compile(model)
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"], report["reason"]
    patched = [s.kernel for s in compiled.graph.steps if s.notes.get("patch_of") is not None]
    assert "te_squared_difference_s16" in patched
    check_plan_valid(compiled)
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(3)])
    _same_outputs(compiled, plain)
