"""Every reason the Cortex-M kernels refuse a layer (which then keeps its portable kernel)."""
import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.kernels.arm_packing import (PackingRefused, check_depthwise, check_fc, fast_output,
                                                pack_add, pack_requant)

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph  # noqa: E402
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs  # noqa: E402

GOOD_M, GOOD_S = 1 << 30, -8  # a normalized multiplier and a right shift


@pytest.mark.parametrize("mult, shift, bound, reason", [
    (1 << 31, GOOD_S, 100, "multiplier is outside [0, 2^31)"),
    (-5, GOOD_S, 100, "multiplier is outside [0, 2^31)"),
    ((1 << 30) - 1, GOOD_S, 100, "below 2^30 (not normalized)"),
    (GOOD_M, 0, 100, "shift is >= 0 (scale >= 0.5)"),
    (GOOD_M, -32, 100, "shift is below -31"),
    ((1 << 31) - 1, -1, 1 << 40, "accumulator bound is too large"),
])
def test_requantization_refusals(mult, shift, bound, reason):
    with pytest.raises(PackingRefused, match=reason.replace("^", r"\^").replace("(", r"\(").replace(")", r"\)")
                       .replace("[", r"\[")):
        pack_requant(np.zeros(2), np.array([GOOD_M, mult]), np.array([GOOD_S, shift]), np.array([100, bound]))


def test_requantization_accepts_normal_channels_and_zero_multipliers():
    q, dead = pack_requant(np.array([7, 3]), np.array([GOOD_M, 0]), np.array([GOOD_S, GOOD_S]), np.array([100, 100]))
    assert q.shape == (2, 4) and dead.tolist() == [False, True]


@pytest.mark.parametrize("mult, shift, reason", [
    ((1 << 30) - 1, -5, "multiplier outside"), (GOOD_M, 0, "shift outside"), (GOOD_M, -32, "shift outside")])
def test_fast_output_refusals(mult, shift, reason):
    with pytest.raises(PackingRefused, match=reason):
        fast_output(mult, shift, "output")


def test_add_whose_rounding_could_overflow_is_refused():
    huge = np.full(256, (1 << 30), dtype=np.int64)
    with pytest.raises(PackingRefused, match="output rescale rounding may overflow"):
        pack_add({"output_multiplier": (1 << 31) - 1, "output_shift": -1}, huge, huge, inplace=False)


def test_shape_refusals():
    with pytest.raises(PackingRefused, match="depth multiplier != 1"):
        check_depthwise({"depth_multiplier": 2, "dilation_h": 1, "dilation_w": 1})
    with pytest.raises(PackingRefused, match="dilated depthwise"):
        check_depthwise({"depth_multiplier": 1, "dilation_h": 2, "dilation_w": 1})
    with pytest.raises(PackingRefused, match="asymmetric weights"):
        check_fc({"filter_offset": 3})


def _refused(compiled):
    return {reason for _, _, reason in compiled.metadata["kernel_selection"]["refused"]}


@pytest.mark.parametrize("options, reason", [
    (dict(depth_multiplier=2), "depth multiplier != 1"),
    (dict(dilation=(2, 2)), "dilated depthwise convolution"),
])
def test_refused_layers_keep_the_portable_kernel_and_stay_bit_exact(options, reason):
    g = QuantizedGraph(seed=2)
    x = g.input((1, 10, 10, 4))
    y = g.conv2d(g.depthwise_conv2d(x, **options), 4, (1, 1), prefix="pw")
    model = g.finish([y])
    compiled = te.compile(model, core="cortex-m7")
    assert reason in _refused(compiled)
    kernels = [op["kernel"] for op in compiled.metadata["ops"]]
    assert any(k.startswith("te_depthwise") for k in kernels) and any(k.startswith("te_arm_conv") for k in kernels)
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


def test_scratch_that_would_raise_the_arena_is_refused_on_request():
    g = QuantizedGraph(seed=4)
    x = g.input((1, 16, 16, 8))
    y = g.conv2d(g.conv2d(x, 16, prefix="a"), 8, prefix="b")
    model = g.finish([y])
    fast = te.compile(model, core="cortex-m7")
    portable = te.compile(model)
    assert fast.metadata["memory"]["arena_bytes"] > portable.metadata["memory"]["arena_bytes"]
    kept = te.compile(model, core="cortex-m7", keep_portable_arena=True)
    assert "its scratch would raise the arena" in _refused(kept)
    assert kept.metadata["memory"]["arena_bytes"] == portable.metadata["memory"]["arena_bytes"]


@pytest.mark.parametrize("operand, reason", [(1, "weights or requantization tables are not constants"),
                                             (2, "bias is not a constant")])
def test_non_constant_operands_are_refused(operand, reason):
    from tinyengine_tvm.codegen.kernel_selection import select_kernels
    from tinyengine_tvm.kernel_graph import KernelGraph

    g = QuantizedGraph(seed=6)
    x = g.input((1, 6, 6, 4))
    model = g.finish([g.conv2d(x, 4, (1, 1))])
    graph = KernelGraph.from_relax(te.compile(model).lowered["main"])
    (conv,) = [s for s in graph.steps if s.kernel == "te_conv2d_s8"]
    graph.tensors[conv.inputs[operand]].kind = "activation"  # as if computed at run time
    _, report = select_kernels(graph, "cortex-m7")
    assert (conv.name, "te_conv2d_s8", reason) in report["refused"]
