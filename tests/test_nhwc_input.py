"""--nhwc-input (transform/nhwc_input.py): a leading NCHW-to-NHWC TRANSPOSE is absorbed.

The compiled model takes the NHWC image; fed the transposed image it gives
TFLM's outputs for the NCHW one, and the full NCHW and NHWC copies of the
image are never both in the arena.
"""
import subprocess
import sys

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
from tinyengine_tvm.modelgen.zoo import mobilenetv2_nchw

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.testing import tflm_run  # noqa: E402


def test_nchw_mobilenet_takes_nhwc_and_matches_tflm():
    model = mobilenetv2_nchw(resolution=32, width=0.35, classes=10)
    compiled = te.compile(model, nhwc_input=True)
    meta = compiled.metadata
    assert meta["nhwc_input"] is True
    assert meta["inputs"][0]["shape"] == [1, 32, 32, 3] and meta["inputs"][0]["dtype"] == "int8"
    assert meta["ops"][0]["type"] != "TRANSPOSE"
    plain = te.compile(model)
    assert plain.metadata["ops"][0]["type"] == "TRANSPOSE"  # without the option the API stays NCHW
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 3, 32, 32)).astype(np.int8)
        got = list(compiled.run([np.ascontiguousarray(x.transpose(0, 2, 3, 1))]).values())
        for g, w in zip(got, tflm_run(model, [x])):
            np.testing.assert_array_equal(g, w)
    image = meta["inputs"][0]["name"]
    nchw = plain.metadata["inputs"][0]["name"]
    assert all(nchw not in op["live_buffers"] for op in meta["ops"])
    assert any(image in op["live_buffers"] for op in meta["ops"])


def test_other_inputs_are_left_alone(tmp_path):
    g = QuantizedGraph(1)
    x = g.input((1, 4, 6, 3), name="nhwc_already")
    y = g.transpose(x, (0, 3, 1, 2), prefix="to_nchw")  # not NCHW -> NHWC: kept
    model = g.finish(y)
    meta = te.compile(model, nhwc_input=True).metadata
    assert meta["nhwc_input"] is False and meta["inputs"][0]["shape"] == [1, 4, 6, 3]
    path = tmp_path / "m.tflite"
    path.write_bytes(mobilenetv2_nchw(resolution=16, width=0.35, classes=4))
    res = subprocess.run([sys.executable, "-m", "tinyengine_tvm", "compile", str(path), "-o", str(tmp_path / "o"),
                          "--nhwc-input", "--int8-io"], capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert "NHWCInput: 'input' -> NHWC" in res.stdout
