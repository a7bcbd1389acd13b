"""Paths no other test reached: RELU_N1_TO_1, in-place MUL, the layer-wise bound, the memory plot."""
import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.kernel_graph import KernelGraph, Step, Tensor
from tinyengine_tvm.planner.bounds import layerwise_lower_bound

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph  # noqa: E402
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs  # noqa: E402


def _cases(compiled, n=3):
    return [random_inputs(compiled.metadata["inputs"], seed) for seed in range(n)]


@pytest.mark.parametrize("op", ["conv", "add", "mul", "depthwise"])
def test_fused_relu_n1_to_1_is_bit_exact(op):
    g = QuantizedGraph(seed=3)
    x = g.input((1, 6, 6, 4), low=-2.0, high=2.0)
    if op == "conv":
        y = g.conv2d(x, 5, activation="RELU_N1_TO_1")
    elif op == "depthwise":
        y = g.depthwise_conv2d(x, activation="RELU_N1_TO_1")
    else:
        other = g.conv2d(x, 4, (1, 1), prefix="other")
        y = (g.add if op == "add" else g.mul)(x, other, activation="RELU_N1_TO_1")
    model = g.finish([y])
    compiled = te.compile(model)
    assert_matches_tflm(compiled, model, _cases(compiled))
    # The clamp to [-1, 1] is real: outputs cover no more than that range once dequantized.
    (out_meta,) = compiled.metadata["outputs"]
    out = compiled.run(_cases(compiled, 1)[0])[out_meta["name"]].astype(np.float64)
    real = (out - out_meta["zero_point"]) * out_meta["scale"]
    assert real.min() >= -1.0 - out_meta["scale"] and real.max() <= 1.0 + out_meta["scale"]


def test_inplace_mul_writes_over_a_dying_operand_and_stays_bit_exact():
    g = QuantizedGraph(seed=5)
    x = g.input((1, 8, 8, 8))
    a = g.conv2d(x, 8, (1, 1), prefix="a")
    b = g.conv2d(x, 8, (1, 1), prefix="b")
    y = g.conv2d(g.mul(a, b, prefix="gate"), 4, (1, 1), prefix="head")
    model = g.finish([y])
    compiled = te.compile(model)
    kernels = [op["kernel"] for op in compiled.metadata["ops"]]
    assert "te_mul_inplace_s8" in kernels, kernels
    assert_matches_tflm(compiled, model, _cases(compiled))
    off = te.compile(model, disabled_passes=["InplaceElementwise"])
    assert "te_mul_inplace_s8" not in [op["kernel"] for op in off.metadata["ops"]]


def test_layerwise_lower_bound_counts_inputs_and_output_of_the_largest_layer():
    t = [Tensor(0, "in", [1, 10], "int8", "input"),
         Tensor(1, "w", [10, 10], "int8", "constant", np.zeros((10, 10), np.int8)),
         Tensor(2, "mid", [1, 30], "int8", "activation"),
         Tensor(3, "view", [30], "int8", "activation", view_of=2),
         Tensor(4, "out", [1, 5], "int8", "activation")]
    steps = [Step("te_fully_connected_s8", [0, 1], 2, {}, "fc1"),
             Step("te_fully_connected_s8", [3, 1], 4, {}, "fc2")]
    graph = KernelGraph(t, steps, inputs=[0], outputs=[4])
    # Step 1 reads 'mid' through its view (30 B) and writes 5 B; step 0 holds 10 + 30 B.
    assert layerwise_lower_bound(graph) == 40


def test_memory_plot_marks_the_peak_with_the_model_name(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    from tinyengine_tvm.report import _previous_plot_reason, plot_memory_timeline

    g = QuantizedGraph(seed=1)
    x = g.input((1, 12, 12, 3))
    y = g.conv2d(g.conv2d(x, 8, prefix="wide$stem"), 4, prefix="narrow")
    model = g.finish([y])
    optimized, baseline = te.compile(model), te.compile(model, optimize=False)
    path = tmp_path / "mem.png"
    assert plot_memory_timeline(optimized.metadata, baseline.metadata, str(path)) == str(path)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000
    assert _previous_plot_reason(str(path)) is None  # recognised as ours, so it may be replaced
    plot_memory_timeline(optimized.metadata, baseline.metadata, str(path))
    (tmp_path / "user.png").write_bytes(data[:8] + b"\0" * 64)
    assert _previous_plot_reason(str(tmp_path / "user.png")) is not None
