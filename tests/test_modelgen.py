"""Checks for tinyengine_tvm.modelgen: every generated model must run in TFLite
Micro and import with TVM's TFLite frontend (or fail there in the documented way)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip(
    "tflite_micro",
    reason="tflite-micro is not installed (pip install --pre tflite-micro); "
    "modelgen needs its TFLite schema and the tests need its interpreter",
)

_PYTHON_DIR = Path(__file__).resolve().parents[1] / "python"
try:
    import tinyengine_tvm.modelgen  # noqa: F401
except ImportError:
    sys.path.insert(0, str(_PYTHON_DIR))

from tflite_micro import runtime  # noqa: E402

from tinyengine_tvm.modelgen import quantized_ops as q  # noqa: E402
from tinyengine_tvm.modelgen import tflite_writer  # noqa: E402
from tinyengine_tvm.modelgen.default_model import (  # noqa: E402
    build_default_model,
    default_model_path,
)
from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter, load_schema  # noqa: E402

TVM_QUANT_UNSUPPORTED = "not supported in frontend TFLite"

# (id, builder, kwargs, tvm_imports, tflm_runs)
# tvm_imports=False: TVM's importer rejects the quantized op (its allowlist of
# quantized ops lacks it). tflm_runs=False: TFLite Micro refuses it at prepare.
CASES = [
    ("conv2d", q.conv2d_model, {}, True, True),
    ("conv2d_valid_dil2_pertensor_zerobias", q.conv2d_model,
     dict(padding="VALID", dilation=(2, 2), stride=(1, 1), use_bias=False, per_channel=False,
          activation="NONE"), True, True),
    ("conv2d_1x1_relu", q.conv2d_model, dict(kernel=(1, 1), stride=1, activation="RELU"),
     True, True),
    ("conv2d_5x3_stride12", q.conv2d_model,
     dict(input_shape=(1, 10, 7, 4), kernel=(5, 3), stride=(1, 2)), True, True),
    ("conv2d_batch2", q.conv2d_model, dict(input_shape=(2, 6, 6, 3)), True, True),
    ("dwconv", q.depthwise_conv2d_model, {}, True, True),
    ("dwconv_m1_valid_dil2", q.depthwise_conv2d_model,
     dict(depth_multiplier=1, padding="VALID", dilation=2), True, True),
    ("dwconv_s2_pertensor_zerobias", q.depthwise_conv2d_model,
     dict(stride=2, use_bias=False, per_channel=False, activation="NONE"), True, True),
    ("dwconv_m3_1ch", q.depthwise_conv2d_model,
     dict(input_shape=(1, 6, 6, 1), depth_multiplier=3), True, True),
    ("fc", q.fully_connected_model, {}, True, True),
    ("fc_per_channel", q.fully_connected_model, dict(per_channel=True), True, True),
    ("fc_absent_bias_relu", q.fully_connected_model,
     dict(use_bias="absent", activation="RELU"), True, True),
    ("fc_keep_num_dims", q.fully_connected_model,
     dict(input_shape=(1, 4, 16), keep_num_dims=True), True, True),
    ("fc_3d_flatten", q.fully_connected_model, dict(input_shape=(1, 4, 16)), True, True),
    ("fc_batch3_relu6", q.fully_connected_model,
     dict(input_shape=(3, 16), activation="RELU6"), True, True),
    ("add", q.add_model, {}, True, True),
    ("add_bcast_channel", q.add_model, dict(shape_b=(1, 1, 1, 8)), True, True),
    ("add_bcast_rank1", q.add_model, dict(shape_b=(8,)), True, True),
    ("add_bcast_both", q.add_model, dict(shape_a=(1, 4, 1, 8), shape_b=(1, 1, 5, 8)), True, True),
    ("add_const_relu", q.add_model, dict(const_b=True, activation="RELU"), True, True),
    ("mul", q.mul_model, {}, True, True),
    ("mul_bcast_channel", q.mul_model, dict(shape_b=(1, 1, 1, 8)), True, True),
    ("mul_const_relu6", q.mul_model, dict(const_b=True, activation="RELU6"), True, True),
    ("mul_large_ranges", q.mul_model, dict(range_a=(-20, 20), range_b=(-20, 20)), True, True),
    ("avg_pool", q.avg_pool_model, {}, True, True),
    ("avg_pool_same_f3_s1", q.avg_pool_model, dict(padding="SAME", stride=1, filter=3), True, True),
    ("avg_pool_global", q.avg_pool_model, dict(filter=(8, 8), stride=1), True, True),
    ("avg_pool_relu6", q.avg_pool_model, dict(activation="RELU6"), True, True),
    ("max_pool", q.max_pool_model, {}, True, True),
    ("max_pool_same_f3_s2", q.max_pool_model,
     dict(input_shape=(1, 7, 7, 4), padding="SAME", stride=2, filter=3), True, True),
    ("max_pool_relu", q.max_pool_model, dict(activation="RELU"), True, True),
    ("mean", q.mean_model, {}, True, True),
    ("mean_no_keep", q.mean_model, dict(keep_dims=False), True, True),
    ("mean_last_axis", q.mean_model, dict(axis=(-1,)), True, True),
    ("pad", q.pad_model, {}, False, True),
    ("pad_2d", q.pad_model, dict(input_shape=(1, 6), paddings=((0, 0), (2, 3))), False, True),
    ("reshape", q.reshape_model, {}, True, True),
    ("reshape_options_only", q.reshape_model, dict(shape_as_tensor=False), True, True),
    ("reshape_minus1", q.reshape_model, dict(new_shape=(1, -1)), True, True),
    ("squeeze", q.squeeze_model, {}, False, True),
    ("squeeze_all", q.squeeze_model, dict(squeeze_dims=()), False, True),
    ("transpose", q.transpose_model, {}, False, True),
    ("transpose_3d", q.transpose_model, dict(input_shape=(2, 3, 4), perm=(2, 0, 1)), False, True),
    ("concat", q.concat_model, {}, True, True),
    ("concat_3_axis1", q.concat_model,
     dict(input_shapes=((1, 2, 4, 3), (1, 3, 4, 3), (1, 1, 4, 3)), axis=1), True, True),
    ("concat_neg_axis", q.concat_model, dict(axis=-1), True, True),
    ("concat_distinct_qparams", q.concat_model, dict(same_qparams=False), True, False),
    ("concat_fused_relu", q.concat_model, dict(activation="RELU"), True, False),
    ("softmax", q.softmax_model, {}, True, True),
    ("softmax_beta_half_4d", q.softmax_model, dict(input_shape=(1, 2, 3, 10), beta=0.5),
     True, True),
    ("logistic", q.logistic_model, {}, True, True),
    ("logistic_4d", q.logistic_model, dict(input_shape=(1, 3, 3, 4)), True, True),
    ("hard_swish", q.hard_swish_model, {}, True, True),
    ("resize_nearest", q.resize_nearest_model, {}, False, True),
    ("resize_nearest_align_corners", q.resize_nearest_model,
     dict(size=(7, 9), align_corners=True), False, True),
    ("resize_nearest_half_pixel", q.resize_nearest_model,
     dict(size=(6, 6), half_pixel_centers=True), False, True),
    ("resize_nearest_down", q.resize_nearest_model,
     dict(input_shape=(1, 8, 8, 2), size=(3, 5)), False, True),
    ("quantize_dequantize", q.quantize_dequantize_model, {}, True, True),
    ("quantize_requantize_dequantize", q.quantize_dequantize_model, dict(requantize=True),
     True, True),
    ("relu", q.relu_model, {}, True, True),
    ("relu6", q.relu6_model, {}, True, True),
    ("two_op", q.two_op_model, {}, True, True),
    ("residual", q.residual_model, {}, True, True),
    ("float_conv", q.float_model, {}, True, True),
    ("default_model", lambda: build_default_model(), {}, True, True),
]
IDS = [c[0] for c in CASES]
_BUILT: dict[str, bytes] = {}


def _model(case) -> bytes:
    name, fn, kwargs = case[0], case[1], case[2]
    if name not in _BUILT:
        _BUILT[name] = fn(**kwargs)
    return _BUILT[name]


def _random_inputs(details, seed):
    rng = np.random.default_rng(seed)
    arrays = []
    for d in details:
        if d["dtype"] == np.float32:
            arrays.append(rng.uniform(-2.0, 2.0, d["shape"]).astype(np.float32))
        else:
            info = np.iinfo(d["dtype"])
            arrays.append(rng.integers(info.min, info.max + 1, d["shape"]).astype(d["dtype"]))
    return arrays


def _input_details(interp):
    details = []
    while True:
        try:
            details.append(interp.get_input_details(len(details)))
        except Exception:  # the wrapper signals "no more inputs" only by raising
            return details


def _run_tflm(buf, seeds=range(4)):
    interp = runtime.Interpreter.from_bytes(buf)
    details = _input_details(interp)
    results = []
    for seed in seeds:
        inputs = _random_inputs(details, seed)
        for i, arr in enumerate(inputs):
            interp.set_input(arr, i)
        interp.invoke()
        results.append((inputs, np.array(interp.get_output(0))))
    return results


def _import_tvm(buf):
    tflite = pytest.importorskip("tflite", reason="the `tflite` flatbuffer reader is not installed")
    frontend = pytest.importorskip(
        "tvm.relax.frontend.tflite", reason="TVM with the relax TFLite frontend is not installed"
    )
    return frontend.from_tflite(tflite.Model.GetRootAsModel(buf, 0))


# ----------------------------------------------------------------- per model
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_runs_in_tflm_with_varying_output(case):
    buf = _model(case)
    if not case[4]:
        with pytest.raises(RuntimeError):
            _run_tflm(buf, seeds=[0])
        return
    results = _run_tflm(buf)
    outs = np.stack([o for _, o in results])
    assert outs.size > 0
    assert any(not np.array_equal(o, outs[0]) for o in outs[1:]), "output ignores the input"
    assert len(np.unique(outs)) > 2, "output is (nearly) constant"
    if outs.dtype == np.int8:
        # Calibrated output scales keep most values off the top rail.
        assert np.mean(outs == 127) < 0.5, "output is mostly saturated"


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_imports_with_tvm(case):
    buf = _model(case)
    if case[3]:
        mod = _import_tvm(buf)
        assert "main" in [gv.name_hint for gv in mod.get_global_vars()]
    else:
        with pytest.raises(Exception, match=TVM_QUANT_UNSUPPORTED):
            _import_tvm(buf)


@pytest.mark.parametrize("case", [c for c in CASES if c[4]], ids=[c[0] for c in CASES if c[4]])
def test_tflm_agrees_with_litert(case):
    """LiteRT is an independent reference: a model both runtimes agree on is a valid model."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert missing")
    buf = _model(case)
    lite = interp_mod.Interpreter(model_content=buf)
    lite.allocate_tensors()
    out_detail = lite.get_output_details()[0]
    for inputs, tflm_out in _run_tflm(buf, seeds=range(3)):
        for d, arr in zip(lite.get_input_details(), inputs):
            lite.set_tensor(d["index"], arr)
        lite.invoke()
        ref = lite.get_tensor(out_detail["index"])
        diff = np.abs(ref.astype(np.float64) - tflm_out.astype(np.float64)).max()
        if ref.dtype == np.float32 and case[0] != "float_conv":
            # Dequantized outputs may differ by one step of the last int8 tensor's scale.
            assert diff <= 0.1, diff
        elif ref.dtype == np.float32:
            assert diff <= 1e-4, diff
        else:
            # Rounding differs between the reference kernels by at most one LSB.
            assert diff <= 1, diff


# ------------------------------------------------------- documented quirks
def test_tflm_relu6_ignores_output_quantization():
    """TFLM's int8 RELU6 clamps in the input's integer domain without rescaling,
    so a requantizing RELU6 disagrees with LiteRT; the default relu6_model avoids it."""
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert missing")
    buf = q.relu6_model(requantize=True)
    lite = interp_mod.Interpreter(model_content=buf)
    lite.allocate_tensors()
    (inputs, tflm_out), = _run_tflm(buf, seeds=[0])
    lite.set_tensor(lite.get_input_details()[0]["index"], inputs[0])
    lite.invoke()
    ref = lite.get_tensor(lite.get_output_details()[0]["index"])
    assert np.abs(ref.astype(int) - tflm_out.astype(int)).max() > 1


def test_absent_conv_bias():
    """An absent (-1) CONV_2D bias runs in TFLM, but LiteRT rejects it and TVM's importer
    crashes on it; ``use_bias=False`` therefore emits a zero bias like the TFLite converter."""
    buf = q.conv2d_model(use_bias="absent")
    _run_tflm(buf, seeds=[0])
    with pytest.raises(AttributeError):
        _import_tvm(buf)
    interp_mod = pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert missing")
    lite = interp_mod.Interpreter(model_content=buf)
    with pytest.raises(RuntimeError, match="optional but was expected"):
        lite.allocate_tensors()


def test_absent_depthwise_bias_crashes_tflm():
    """An absent DEPTHWISE_CONV_2D bias segfaults TFLM while it sets the model up,
    so this runs out of process."""
    code = textwrap.dedent(
        f"""
        import sys
        sys.path.insert(0, {str(_PYTHON_DIR)!r})
        from tflite_micro import runtime
        from tinyengine_tvm.modelgen import quantized_ops as q
        runtime.Interpreter.from_bytes(q.depthwise_conv2d_model(use_bias="absent"))
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=120)
    assert proc.returncode != 0


def test_tflm_ignores_op_versions():
    """TFLM never checks op versions (LiteRT does), so versions only matter for LiteRT."""
    import flatbuffers

    buf = q.conv2d_model()
    schema = load_schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(buf, 0))
    for oc in model.operatorCodes:
        oc.version = 99
    b = flatbuffers.Builder(1024)
    b.Finish(model.Pack(b), file_identifier=b"TFL3")
    _run_tflm(bytes(b.Output()), seeds=[0])


# ------------------------------------------------------------------ writer
def _parse(buf):
    schema = load_schema()
    return schema, schema.Model.GetRootAs(buf, 0)


def _op_versions(buf):
    schema, m = _parse(buf)
    names = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    out = {}
    for i in range(m.OperatorCodesLength()):
        oc = m.OperatorCodes(i)
        out[names[max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())]] = oc.Version()
    return out


def test_file_identifier_and_schema_version():
    buf = q.conv2d_model()
    assert buf[4:8] == b"TFL3"
    _, m = _parse(buf)
    assert m.Version() == 3
    assert m.SubgraphsLength() == 1


def test_constant_buffers_are_16_byte_aligned():
    buf = build_default_model()
    _, m = _parse(buf)
    checked = 0
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        off = b._tab.Offset(4)
        if off and b.DataLength():
            assert b._tab.Vector(off) % 16 == 0
            checked += 1
    assert checked > 10


@pytest.mark.parametrize(
    "builder, expected",
    [
        (lambda: q.conv2d_model(), {"CONV_2D": 3}),
        (lambda: q.depthwise_conv2d_model(), {"DEPTHWISE_CONV_2D": 3}),
        (lambda: q.fully_connected_model(), {"FULLY_CONNECTED": 4}),
        (lambda: q.fully_connected_model(keep_num_dims=True), {"FULLY_CONNECTED": 5}),
        (lambda: q.add_model(), {"ADD": 2}),
        (lambda: q.mean_model(), {"MEAN": 2}),
        (lambda: q.transpose_model(), {"TRANSPOSE": 2}),
        (lambda: q.resize_nearest_model(), {"RESIZE_NEAREST_NEIGHBOR": 2}),
        (lambda: q.resize_nearest_model(half_pixel_centers=True), {"RESIZE_NEAREST_NEIGHBOR": 3}),
        (lambda: q.quantize_dequantize_model(), {"QUANTIZE": 1, "DEQUANTIZE": 2, "CONV_2D": 3}),
        (lambda: q.float_model(), {"CONV_2D": 1}),
    ],
)
def test_op_versions(builder, expected):
    versions = _op_versions(builder())
    for op, v in expected.items():
        assert versions[op] == v


def test_fc_without_bias_input_is_version_6():
    w = TFLiteWriter()
    x = w.tensor("x", [1, 4], scale=0.1)
    wt = w.tensor("w", [2, 4], data=np.ones((2, 4), np.int8), scale=0.05)
    y = w.tensor("y", [1, 2], scale=0.2)
    w.op("FULLY_CONNECTED", [x, wt], [y])
    w.inputs([x])
    w.outputs([y])
    assert _op_versions(w.finish())["FULLY_CONNECTED"] == 6


def test_writer_validation_and_unique_names():
    w = TFLiteWriter()
    a = w.tensor("x", [1, 4], scale=0.1, zero_point=3)
    b = w.tensor("x", [1, 4], scale=0.1, zero_point=3)
    assert w.tensor_info(a)["name"] == "x" and w.tensor_info(b)["name"] == "x_1"
    with pytest.raises(TypeError, match="unknown options"):
        w.op("ADD", [a, b], [a], beta=1.0)
    with pytest.raises(ValueError, match="padding"):
        w.op("CONV_2D", [a, b], [a], padding="FULL")
    with pytest.raises(ValueError, match="scales"):
        w.tensor("w", [3, 2], scale=[0.1, 0.2], quantized_dimension=0)
    with pytest.raises(TypeError, match="quantize it first"):
        w.tensor("w", [2], data=np.array([0.5, 1.5]))
    with pytest.raises(ValueError, match="inputs and outputs"):
        TFLiteWriter().finish()


def test_per_channel_quantization_roundtrip():
    buf = q.depthwise_conv2d_model(input_shape=(1, 5, 5, 3), depth_multiplier=2)
    schema, m = _parse(buf)
    sg = m.Subgraphs(0)
    tensors = [sg.Tensors(i) for i in range(sg.TensorsLength())]
    weights = [t for t in tensors if t.Name() == b"dwconv_w_1"]
    assert len(weights) == 1
    qp = weights[0].Quantization()
    assert qp.ScaleLength() == 6 and qp.QuantizedDimension() == 3
    assert not qp.ZeroPointAsNumpy().any()


def test_missing_schema_raises_helpful_import_error(monkeypatch):
    import importlib

    real = importlib.import_module

    def fake_import(name, *args, **kwargs):
        if name == tflite_writer._SCHEMA_MODULE:
            raise ImportError("no tflite_micro")
        return real(name, *args, **kwargs)

    monkeypatch.setattr(tflite_writer, "_SCHEMA", None)
    monkeypatch.setattr(importlib, "import_module", fake_import)
    with pytest.raises(ImportError, match=r"pip install --pre tflite-micro"):
        load_schema()


# ------------------------------------------------------------ default model
def test_default_model_is_deterministic_and_shipped():
    buf = build_default_model()
    assert buf == build_default_model()
    path = default_model_path()
    assert path.is_file(), f"{path} missing: run python -m tinyengine_tvm.modelgen.default_model"
    assert path.read_bytes() == buf, "shipped default model is stale: regenerate it"


def test_default_model_structure():
    buf = build_default_model()
    schema, m = _parse(buf)
    sg = m.Subgraphs(0)
    ops = set(_op_versions(buf))
    assert {"CONV_2D", "DEPTHWISE_CONV_2D", "ADD", "AVERAGE_POOL_2D", "FULLY_CONNECTED",
            "SOFTMAX"} <= ops
    inp = sg.Tensors(sg.Inputs(0))
    out = sg.Tensors(sg.Outputs(0))
    assert list(inp.ShapeAsNumpy()) == [1, 32, 32, 3] and inp.Type() == schema.TensorType.INT8
    assert list(out.ShapeAsNumpy()) == [1, 10] and out.Type() == schema.TensorType.INT8


def test_float_model_is_float():
    schema, m = _parse(q.float_model())
    sg = m.Subgraphs(0)
    for i in range(sg.TensorsLength()):
        assert sg.Tensors(i).Type() == schema.TensorType.FLOAT32
        quant = sg.Tensors(i).Quantization()
        assert quant is None or quant.ScaleLength() == 0
