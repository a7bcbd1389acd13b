"""Bad input: a clear error naming what is wrong, and no output written."""
import os

import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import ModelFormatError, UnsupportedModelError
from tinyengine_tvm.modelgen.default_model import default_model_path

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen import quantized_ops as Q  # noqa: E402
from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter  # noqa: E402


def _unsupported_model() -> bytes:
    """An int8 model with an operator the compiler does not support (SIN: TFLM has
    no integer form of it either)."""
    w = TFLiteWriter()
    x = w.tensor("x", (1, 8), "int8", scale=0.05, zero_point=0)
    y = w.tensor("sin_out", (1, 8), "int8", scale=1 / 128, zero_point=0)
    w.op("SIN", [x], [y])
    w.inputs([x])
    w.outputs([y])
    return w.finish()


def _compile_cli(tmp_path, model_bytes, suffix=".tflite", capsys=None):
    src = tmp_path / f"model{suffix}"
    src.write_bytes(model_bytes)
    out = tmp_path / "out"
    rc = cli.main(["compile", "--target=tinyengine", str(src), "-o", str(out)])
    return rc, out


def test_unsupported_operator_names_op_and_node(tmp_path, capsys):
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(_unsupported_model())
    assert "SIN" in str(err.value) and "sin_out" in str(err.value)
    rc, out = _compile_cli(tmp_path, _unsupported_model())
    assert rc == 2 and not out.exists()
    assert "SIN" in capsys.readouterr().err


def test_float_model_is_refused_with_each_float_tensor_named(tmp_path, capsys):
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(Q.float_model())
    msg = str(err.value)
    assert "CONV_2D" in msg and "float32" in msg and "quantized to int8" in msg
    rc, out = _compile_cli(tmp_path, Q.float_model())
    assert rc == 2 and not out.exists()


def test_truncated_file(tmp_path, capsys):
    data = default_model_path().read_bytes()
    for cut in (len(data) // 2, 64, 12):
        with pytest.raises(ModelFormatError):
            te.compile(data[:cut])
    rc, out = _compile_cli(tmp_path, data[: len(data) // 2])
    assert rc == 2 and not out.exists()
    assert "malformed" in capsys.readouterr().err


def test_non_model_file(tmp_path, capsys):
    with pytest.raises(ModelFormatError) as err:
        te.compile(b"this is a text file, not a model\n")
    assert "not a TFLite" in str(err.value)
    rc, out = _compile_cli(tmp_path, b"GIF89a" + bytes(100), suffix=".bin")
    assert rc == 2 and not out.exists()


def test_missing_file(tmp_path):
    with pytest.raises(ModelFormatError, match="no such file"):
        te.compile(str(tmp_path / "nope.tflite"))


def test_failed_export_leaves_previous_output_untouched(tmp_path):
    out = tmp_path / "out"
    te.compile(Q.conv2d_model(), name="first").export(str(out))
    before = sorted(os.listdir(out / "src"))
    with pytest.raises(UnsupportedModelError):
        te.compile(_unsupported_model()).export(str(out))
    assert sorted(os.listdir(out / "src")) == before
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".tinyengine-")]
