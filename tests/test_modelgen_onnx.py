"""Checks for tinyengine_tvm.modelgen.onnx_qdq: every generated ONNX QDQ model must pass
onnx.checker, run in onnxruntime with input-dependent outputs, and import with TVM's
ONNX frontend -- except the operator-form QLinearConv model, which TVM must refuse."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")

_PYTHON_DIR = Path(__file__).resolve().parents[1] / "python"
try:
    import tinyengine_tvm.modelgen  # noqa: F401
except ImportError:
    sys.path.insert(0, str(_PYTHON_DIR))

from onnx import TensorProto, numpy_helper  # noqa: E402

from tinyengine_tvm.modelgen import onnx_qdq as q  # noqa: E402

# (id, builder, kwargs); every case also runs with int8_io=True.
CASES = [
    ("conv", q.conv_model, {}),
    ("conv_relu", q.conv_model, dict(activation="Relu")),
    ("conv_clip6", q.conv_model, dict(activation="Clip6")),
    ("conv_relu_folded", q.conv_model, dict(activation="Relu", fold_activation=True)),
    ("conv_clip6_folded", q.conv_model, dict(activation="Clip6", fold_activation=True)),
    ("conv_pertensor_nobias", q.conv_model, dict(per_channel=False, bias=False)),
    ("conv_depthwise", q.conv_model, dict(input_shape=(1, 4, 8, 8), out_channels=4, group=4,
                                          stride=1)),
    ("conv_depthwise_mult2", q.conv_model, dict(input_shape=(1, 4, 8, 8), out_channels=8, group=4)),
    ("conv_grouped", q.conv_model, dict(input_shape=(1, 4, 8, 8), out_channels=6, group=2)),
    ("conv_1x1", q.conv_model, dict(kernel=1, stride=1)),
    ("conv_5x3_asym_pads_dil2", q.conv_model, dict(kernel=(5, 3), pads=(0, 1, 2, 1), dilation=2,
                                                   stride=1, input_shape=(1, 3, 11, 9))),
    ("conv_auto_pad_same_upper", q.conv_model, dict(auto_pad="SAME_UPPER")),
    ("conv_batch2", q.conv_model, dict(input_shape=(2, 3, 6, 6))),
    ("gemm", q.gemm_model, {}),
    ("gemm_perchannel_relu", q.gemm_model, dict(per_channel=True, activation="Relu")),
    ("gemm_transb0_perchannel", q.gemm_model, dict(trans_b=False, per_channel=True)),
    ("gemm_nobias_batch3", q.gemm_model, dict(bias=False, input_shape=(3, 16))),
    ("matmul", q.matmul_model, {}),
    ("matmul_perchannel_3d", q.matmul_model, dict(input_shape=(1, 4, 16), per_channel=True)),
    ("add", q.add_model, {}),
    ("add_broadcast_c11", q.add_model, dict(shape_b=(1, 4, 1, 1))),
    ("add_broadcast_1hw_relu", q.add_model, dict(shape_b=(1, 1, 5, 5), activation="Relu")),
    ("add_const_b", q.add_model, dict(b_constant=True, shape_b=(1, 4, 1, 1))),
    ("mul", q.mul_model, {}),
    ("mul_broadcast", q.mul_model, dict(shape_b=(1, 1, 5, 5))),
    ("mul_const_b", q.mul_model, dict(b_constant=True, shape_b=(1, 4, 1, 1))),
    ("avgpool", q.avgpool_model, {}),
    ("avgpool_count_include_pad", q.avgpool_model, dict(count_include_pad=1)),
    ("avgpool_2x2_valid", q.avgpool_model, dict(kernel=2, stride=2, pads=0)),
    ("maxpool", q.maxpool_model, {}),
    ("maxpool_ceil", q.maxpool_model, dict(pads=0, ceil_mode=1)),
    ("global_avgpool", q.global_avgpool_model, {}),
    ("pad", q.pad_model, {}),
    ("pad_value", q.pad_model, dict(constant_value=0.5)),
    ("pad_reflect", q.pad_model, dict(mode="reflect")),
    ("pad_edge", q.pad_model, dict(mode="edge")),
    ("reshape", q.reshape_model, {}),
    ("reshape_zero_dim", q.reshape_model, dict(shape=(0, 4, 9))),
    ("flatten", q.flatten_model, {}),
    ("flatten_axis2", q.flatten_model, dict(axis=2)),
    ("transpose", q.transpose_model, {}),
    ("concat", q.concat_model, {}),
    ("concat3_axis2", q.concat_model, dict(shapes=((1, 2, 3, 4), (1, 2, 5, 4), (1, 2, 1, 4)),
                                           axis=2)),
    ("softmax", q.softmax_model, {}),
    ("softmax_4d_axis1", q.softmax_model, dict(input_shape=(1, 5, 2, 2), axis=1)),
    ("softmax_calibrated", q.softmax_model, dict(output_qparams=None)),
    ("sigmoid", q.sigmoid_model, {}),
    ("resize_nearest", q.resize_nearest_model, {}),
    ("resize_sizes_half_pixel", q.resize_nearest_model,
     dict(sizes=(1, 3, 8, 8), coordinate_transformation_mode="half_pixel",
          nearest_mode="round_prefer_floor")),
    ("resize_align_corners", q.resize_nearest_model,
     dict(scales=(1.0, 1.0, 2.0, 3.0), coordinate_transformation_mode="align_corners",
          nearest_mode="round_prefer_ceil")),
    ("clip", q.clip_model, {}),
    ("clip_min_only", q.clip_model, dict(max=None)),
    ("relu", q.relu_model, {}),
    ("small_cnn", q.small_cnn_model, {}),
    ("small_cnn_opset19", q.small_cnn_model, dict(opset=19)),
    ("small_cnn_opset21", q.small_cnn_model, dict(opset=21)),
    ("conv_clip6_opset21", q.conv_model, dict(activation="Clip6", opset=21)),
    ("resize_nearest_opset19", q.resize_nearest_model, dict(opset=19)),
    ("pad_opset21", q.pad_model, dict(opset=21)),
    ("qlinearconv", q.qlinearconv_model, {}),
    ("sub", q.sub_model, {}),
    ("leaky_relu", q.leaky_relu_model, {}),
    ("prelu", q.prelu_model, {}),
    ("tanh", q.tanh_model, {}),
    ("batch_matmul", q.batch_matmul_model, {}),
    ("slice", q.slice_model, {}),
    ("split", q.split_model, {}),
    ("split_num_outputs_opset18", q.split_model, dict(split=None, num_outputs=3, input_shape=(1, 6, 2, 2),
                                                      opset=18)),
    ("gather", q.gather_model, {}),
    ("conv_transpose", q.conv_transpose_model, {}),
    ("conv_transpose_grouped", q.conv_transpose_model, dict(input_shape=(1, 4, 3, 3), out_channels=6, group=2)),
    ("reduce_mean", q.reduce_model, {}),
    ("reduce_max_opset18", q.reduce_model, dict(op_type="ReduceMax", axes=(2, 3), same_qparams=True, opset=18)),
    ("layer_norm", q.layer_norm_model, dict(opset=17)),
]
REFUSED_BY_TVM = {"qlinearconv"}
# Output saturation at the upper rail is expected where an op clamps at its maximum.
SATURATING = {"clip", "reduce_max_opset18"}  # a max of many values reaches the rail

PARAMS = [
    pytest.param(cid, builder, kwargs, int8_io, id=f"{cid}-{'int8io' if int8_io else 'floatio'}")
    for cid, builder, kwargs in CASES
    for int8_io in (False, True)
]


@pytest.fixture(scope="module")
def ort():
    try:
        import onnxruntime
    except ImportError:
        pytest.skip("onnxruntime is not installed (pip install onnxruntime); "
                    "the ONNX QDQ models cannot be executed")
    return onnxruntime


_BUILT: dict = {}


def _build(cid, builder, kwargs, int8_io):
    key = (cid, int8_io)
    if key not in _BUILT:
        _BUILT[key] = builder(int8_io=int8_io, **kwargs)
    return _BUILT[key]


def test_builders_listed():
    assert set(q.MODEL_BUILDERS.values()) == {b for _, b, _ in CASES}


@pytest.mark.parametrize("cid,builder,kwargs,int8_io", PARAMS)
def test_checker_and_structure(cid, builder, kwargs, int8_io):
    buf = _build(cid, builder, kwargs, int8_io)
    assert isinstance(buf, bytes)
    model = onnx.load_from_string(buf)
    onnx.checker.check_model(model, full_check=True)
    assert [o.domain for o in model.opset_import] == [""]
    assert model.opset_import[0].version == kwargs.get("opset", q.DEFAULT_OPSET)

    io_type = TensorProto.INT8 if int8_io else TensorProto.FLOAT
    for vi in list(model.graph.input) + list(model.graph.output):
        assert vi.type.tensor_type.elem_type == io_type, vi.name
    first_ops = {n.op_type for n in model.graph.node
                 if any(i in {v.name for v in model.graph.input} for i in n.input)}
    producers = {o: n.op_type for n in model.graph.node for o in n.output}
    out_ops = {producers[o.name] for o in model.graph.output}
    if cid in REFUSED_BY_TVM:  # operator form: QLinearConv reads/writes the int8 I/O itself
        assert "QLinearConv" in {n.op_type for n in model.graph.node}
    else:
        assert first_ops == {"DequantizeLinear" if int8_io else "QuantizeLinear"}
        assert out_ops == {"QuantizeLinear" if int8_io else "DequantizeLinear"}

    # Weights/biases: int8/int32 initializers feeding DequantizeLinear, zero points 0
    # for weights and biases, every quantized activation int8.
    inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for node in model.graph.node:
        if node.op_type == "DequantizeLinear" and node.input[0] in inits:
            data, scale, zp = (inits[i] for i in node.input[:3])
            assert data.dtype in (np.int8, np.int32)
            assert zp.dtype == data.dtype and scale.dtype == np.float32
            if data.dtype == np.int32 or scale.ndim == 1:
                assert not zp.any()
            if data.dtype == np.int8 and (zp == 0).all():
                assert data.min() >= -127  # symmetric weights
        if node.op_type == "QuantizeLinear":
            assert inits[node.input[2]].dtype == np.int8
            assert inits[node.input[1]].ndim == 0


@pytest.mark.parametrize("cid,builder,kwargs,int8_io", PARAMS)
def test_onnxruntime_runs(ort, cid, builder, kwargs, int8_io):
    buf = _build(cid, builder, kwargs, int8_io)
    sess = ort.InferenceSession(buf, providers=["CPUExecutionProvider"])
    outs = [sess.run(None, q.random_inputs(buf, seed))[0] for seed in range(4)]
    for o in outs:
        assert o.dtype == (np.int8 if int8_io else np.float32)
        assert len(np.unique(o)) > 1 or o.size == 1, "constant output"
    assert len({o.tobytes() for o in outs}) == len(outs), "output does not depend on the input"
    if int8_io and cid not in SATURATING:
        allout = np.concatenate([o.ravel() for o in outs])
        assert np.mean(allout == 127) < 0.1, "outputs saturate: calibration is off"


@pytest.mark.parametrize("cid,builder,kwargs,int8_io", PARAMS)
def test_tvm_import(cid, builder, kwargs, int8_io):
    tvm = pytest.importorskip("tvm")
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load_from_string(_build(cid, builder, kwargs, int8_io))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if cid in REFUSED_BY_TVM:
            with pytest.raises(tvm.error.OpNotImplemented, match="QLinearConv"):
                from_onnx(model)
            return
        mod = from_onnx(model)
    text = mod.script(show_meta=False)
    assert "R.quantize(" in text and "R.dequantize(" in text
    fn = mod["main"]
    want = "int8" if int8_io else "float32"
    assert all(str(p.ty.dtype) == want for p in fn.params)
    rets = fn.ret_ty.fields if hasattr(fn.ret_ty, "fields") else [fn.ret_ty]  # a Split's several outputs
    assert all(str(r.dtype) == want for r in rets)


def test_opsets_import_identically():
    """Opset 13, 19 and 21 versions of a model give the same Relax module."""
    pytest.importorskip("tvm")
    from tvm.relax.frontend.onnx import from_onnx

    def relax_text(opset):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            model = onnx.load_from_string(q.small_cnn_model(opset=opset))
            return from_onnx(model).script(show_meta=False)

    base = relax_text(13)
    assert relax_text(19) == base
    assert relax_text(21) == base


def test_deterministic_and_seeded():
    assert q.conv_model(seed=3) == q.conv_model(seed=3)
    assert q.conv_model(seed=3) != q.conv_model(seed=4)


def test_folded_activation_qparams():
    """fold_activation: no Relu/Clip node, output zero point -128 (and scale 6/255 for Clip6)."""
    for act in ("Relu", "Clip6"):
        model = onnx.load_from_string(q.conv_model(activation=act, fold_activation=True))
        ops = {n.op_type for n in model.graph.node}
        assert ops == {"QuantizeLinear", "DequantizeLinear", "Conv"}
        inits = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
        conv_out = next(n.output[0] for n in model.graph.node if n.op_type == "Conv")
        qn = next(n for n in model.graph.node
                  if n.op_type == "QuantizeLinear" and n.input[0] == conv_out)
        assert int(inits[qn.input[2]]) == -128
        if act == "Clip6":
            assert np.isclose(float(inits[qn.input[1]]), 6.0 / 255.0)
