"""--int8-io (transform/int8_io.py): float32 I/O around an int8 body becomes int8 I/O.

The compiled model, fed the int8 tensor TFLM computes at the model's QUANTIZE,
must give exactly the int8 tensor TFLM holds where the model's DEQUANTIZE reads
(TFLM run with every tensor preserved); the header and metadata give the scale
and zero point; a float input read by anything but one QUANTIZE is refused.
"""
import json
import subprocess
import sys

import numpy as np
import pytest
import tvm

import tinyengine_tvm as te
from tinyengine_tvm.errors import UnsupportedModelError
from tinyengine_tvm.frontend import load_model
from tinyengine_tvm.kernel_call import parse_kernel_call
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
from tinyengine_tvm.transform import LowerToIntegerKernels
from tinyengine_tvm.transform.int8_io import Int8IO
from tinyengine_tvm.transform.relax_utils import pass_reports

tflm = pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.testing import tflm_tensors  # noqa: E402


def _float_io_net(seed=0):
    """float input -> QUANTIZE -> conv, depthwise, residual ADD -> two DEQUANTIZEd outputs
    (plus an int8 output left as it is); returns (model, quantize output, int8 ends)."""
    g = QuantizedGraph(seed)
    x = g.input((1, 12, 10, 3), -1.0, 1.0, dtype="float32", name="image")
    q = g.quantize(x, prefix="image_q")
    h = g.conv2d(q, 8, (3, 3), (2, 2), (1, 1), "SAME", "RELU6", True, prefix="stem")
    d = g.depthwise_conv2d(h, (3, 3), (1, 1), (1, 1), "SAME", 1, "RELU6", True, prefix="dw")
    p = g.conv2d(d, 8, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix="pw")
    a = g.add(h, p, prefix="res")
    pooled = g.avg_pool(a, (6, 5), (1, 1), "VALID", prefix="pool")
    logits = g.fully_connected(g.reshape(pooled, (1, 8), prefix="flat"), 4, "NONE", prefix="fc")
    out1, out2 = g.dequantize(logits, prefix="logits_f"), g.dequantize(a, prefix="features_f")
    return g.finish([out1, out2, d]), q, [logits, a, d]


def _check_bit_exact(model, q, ends, seeds=range(3)):
    compiled = te.compile(model, int8_io=True)
    desc = compiled.metadata["inputs"][0]
    assert desc["dtype"] == "int8" and desc["name"] == "image_q_1"
    for seed in seeds:
        x = np.random.default_rng(seed).uniform(-1.2, 1.2, (1, 12, 10, 3)).astype(np.float32)
        q_val, *want = tflm_tensors(model, [x], [q.index] + [t.index for t in ends])
        got = list(compiled.run([q_val]).values())
        assert len(got) == len(want)
        for g_, w in zip(got, want):
            assert g_.dtype == np.int8
            np.testing.assert_array_equal(g_, w)
    return compiled


def test_outputs_are_tflms_int8_tensors():
    model, q, ends = _float_io_net()
    compiled = _check_bit_exact(model, q, ends)
    meta = compiled.metadata
    assert meta["int8_io"] is True
    # no QUANTIZE/DEQUANTIZE kernel is left at the boundary
    assert [op["type"] for op in meta["ops"]].count("QUANTIZE") == 0
    assert "DEQUANTIZE" not in [op["type"] for op in meta["ops"]]
    # scale and zero point: the model's, for the caller to quantize with
    import tflite

    sg = tflite.Model.GetRootAsModel(model, 0).Subgraphs(0)
    for desc, t in zip(meta["inputs"] + meta["outputs"], [q] + ends):
        tq = sg.Tensors(t.index).Quantization()
        assert desc["scale"] == pytest.approx(float(tq.Scale(0)), rel=1e-7)
        assert desc["zero_point"] == int(tq.ZeroPoint(0))
    header = compiled.files[f"include/{compiled.name}.h"]
    assert f"#define {compiled.name.upper()}_INPUT_0_DTYPE \"int8\"" in header
    assert f"{compiled.name.upper()}_OUTPUT_1_ZERO_POINT {meta['outputs'][1]['zero_point']}" in header


def test_without_the_option_io_stays_float():
    model, _, _ = _float_io_net()
    meta = te.compile(model).metadata
    assert meta["int8_io"] is False
    assert [d["dtype"] for d in meta["inputs"]] == ["float32"]
    assert [d["dtype"] for d in meta["outputs"]] == ["float32", "float32", "int8"]


def test_int8_model_is_unchanged():
    g = QuantizedGraph(1)
    x = g.input((1, 6, 6, 4))
    y = g.conv2d(x, 4, (3, 3), (1, 1), (1, 1), "SAME", "RELU", True, prefix="c")
    model = g.finish(y)
    mod = LowerToIntegerKernels()(load_model(model, "m").mod)
    out = Int8IO()(mod)
    report = pass_reports(out["main"])[-1]
    assert report["changed"] is False and report["inputs"] == [None] and report["outputs"] == [None]
    tvm.ir.assert_structural_equal(out["main"].body, mod["main"].body)


def test_pass_keeps_other_functions_and_drops_boundary_kernels():
    model, _, _ = _float_io_net()
    mod = LowerToIntegerKernels()(load_model(model, "m").mod)
    mod["other"] = mod["main"].with_attr("global_symbol", "other")
    out = Int8IO()(mod)
    for name in ("main", "other"):
        f = out[name]
        assert [str(p.ty.dtype) for p in f.params] == ["int8"]
        kernels = [parse_kernel_call(b.value).kernel for blk in f.body.blocks for b in blk.bindings
                   if parse_kernel_call(b.value) is not None]
        assert "te_quantize_f32_s8" not in kernels and "te_dequantize_s8_f32" not in kernels


def test_float_input_read_twice_is_refused(tmp_path):
    g = QuantizedGraph(2)
    x = g.input((1, 4, 4, 2), -1.0, 1.0, dtype="float32", name="twice")
    a = g.quantize(x, prefix="qa")
    b = g.quantize(x, prefix="qb", qparams=(0.05, 3))
    model = g.finish([g.add(a, b, prefix="sum")])
    with pytest.raises(UnsupportedModelError, match="float input 'twice' is read by te_quantize_f32_s8"):
        te.compile(model, int8_io=True)
    path = tmp_path / "twice.tflite"
    path.write_bytes(model)
    out = tmp_path / "out"
    res = subprocess.run([sys.executable, "-m", "tinyengine_tvm", "compile", str(path), "-o", str(out), "--int8-io"],
                         capture_output=True, text=True)
    assert res.returncode == 2, res.stderr
    assert "twice" in res.stderr and "Traceback" not in res.stderr
    assert not out.exists()


def test_cli_option(tmp_path):
    model, _, _ = _float_io_net()
    path = tmp_path / "net.tflite"
    path.write_bytes(model)
    res = subprocess.run([sys.executable, "-m", "tinyengine_tvm", "compile", str(path), "-o", str(tmp_path / "o"),
                          "--int8-io"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "Int8IO: 'image' -> int8 'image_q_1'" in res.stdout
    meta = json.loads((tmp_path / "o" / "metadata.json").read_text())
    assert meta["int8_io"] and meta["inputs"][0]["dtype"] == "int8"


def test_without_the_option_the_int8_copy_takes_the_float_buffer():
    """QUANTIZE writes over its dying float input: the two are never held apart (InplaceElementwise)."""
    from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

    g = QuantizedGraph(4)
    x = g.input((1, 6, 6, 8), -1.0, 1.0, dtype="float32", name="image")
    q = g.quantize(x, prefix="image_q")
    y = g.fully_connected(g.reshape(q, (1, 288), prefix="flat"), 4, prefix="fc")
    model = g.finish(g.dequantize(y, prefix="out"))
    compiled = te.compile(model)
    plain = te.compile(model, optimize=False)
    assert compiled.graph.steps[0].kernel == "te_quantize_inplace_f32_s8"
    assert compiled.metadata["memory"]["arena_bytes"] < plain.metadata["memory"]["arena_bytes"]
    for op in compiled.metadata["ops"]:
        assert not {"image", "image_q_1"} <= set(op["live_buffers"]), op
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(3)])
