"""Bad ONNX files: one clear TinyEngineError naming the node and the field, never a traceback.

Every check of ``frontend/onnx.py`` has a test that builds a small valid QDQ
model with ``modelgen.onnx_qdq``, breaks exactly one field and asserts the
error class, the node (``#index first_output``) and the field.  A fixed-seed
fuzz loop then mutates protobuf fields and raw bytes of several models and
requires ``tinyengine_tvm.compile`` to either succeed or raise a
TinyEngineError subclass.
"""
from __future__ import annotations

import collections

import numpy as np
import pytest

onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

import tinyengine_tvm as te  # noqa: E402
from tinyengine_tvm.errors import ModelFormatError, TinyEngineError, UnsupportedModelError  # noqa: E402
from tinyengine_tvm.modelgen import onnx_qdq as q  # noqa: E402
from tinyengine_tvm.testing.onnx_mutations import byte_mutation, field_mutation  # noqa: E402


# ------------------------------------------------------------------ helpers
def _node(m, op_type, k=0):
    """(index, node) of the k-th ``op_type`` node."""
    found = [(i, n) for i, n in enumerate(m.graph.node) if n.op_type == op_type]
    return found[k]


def _site(m, i):
    return f"#{i} {m.graph.node[i].output[0]}"


def _set_attr(node, name, value):
    keep = [a for a in node.attribute if a.name != name]
    del node.attribute[:]
    node.attribute.extend(keep)
    node.attribute.append(helper.make_attribute(name, value))


def _init(m, name):
    return next(t for t in m.graph.initializer if t.name == name)


def _set_init(m, name, array):
    _init(m, name).CopyFrom(numpy_helper.from_array(np.asarray(array), name))


def _refused(m, op_type, i, *words):
    """compile() raises UnsupportedModelError with a problem of node #i naming every word."""
    data = m.SerializeToString() if not isinstance(m, bytes) else m
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(data)
    site = _site(onnx.load_from_string(data), i)
    msg = str(err.value)
    assert any(p[0] == op_type and p[1] == site and all(w in p[2] for w in words)
               for p in err.value.problems), msg
    assert site in msg and all(w in msg for w in words), msg
    return err.value


def _bad_format(data, *words):
    with pytest.raises(ModelFormatError) as err:
        te.compile(data if isinstance(data, bytes) else data.SerializeToString())
    msg = str(err.value)
    assert all(w in msg for w in words), msg
    return msg


def _conv(**kw):
    return onnx.load_from_string(q.conv_model(**kw))


# ------------------------------------------------------------------ the valid models compile
@pytest.mark.parametrize("builder", ["conv", "avgpool", "maxpool", "gemm", "concat", "transpose", "softmax",
                                     "resize_nearest", "clip", "reshape", "pad", "flatten", "small_cnn", "sub",
                                     "leaky_relu", "prelu", "tanh", "batch_matmul", "slice", "split", "gather",
                                     "conv_transpose", "reduce", "layer_norm"])
def test_valid_models_pass_every_check(builder):
    te.compile(q.MODEL_BUILDERS[builder]())


# ------------------------------------------------------------------ decoding and onnx.checker
def test_protobuf_decode_error_is_a_format_error():
    data = q.conv_model()
    _bad_format(data[:1] + b"\xff" * 40, "malformed or truncated ONNX")
    _bad_format(data[: len(data) - 7], "malformed or truncated ONNX")


def test_name_that_is_not_utf8():
    data = q.conv_model()
    k = data.find(b"Conv_")
    _bad_format(data[:k] + b"\xff" + data[k + 1:], "not valid UTF-8", "node #4")


def test_node_input_that_nothing_defines():
    m = _conv()
    i, conv = _node(m, "Conv")
    conv.input[1] = "nowhere"
    _bad_format(m, f"node {_site(m, i)} (Conv) input 1 'nowhere'", "not produced by")


def test_onnx_checker_failure_names_the_node():
    m = _conv()
    i, conv = _node(m, "Conv")
    _set_attr(conv, "no_such_attribute", 3)
    _bad_format(m, "onnx.checker", f"node {_site(m, i)}", "no_such_attribute")


def test_strict_shape_inference_failure():
    m = _conv()
    m.graph.output[0].type.tensor_type.shape.dim[1].dim_value = 7  # the conv makes 5 channels
    _bad_format(m, "shape inference", "output")


def test_opset_newer_than_onnx():
    m = _conv()
    m.opset_import[0].version = 999
    with pytest.raises(ModelFormatError, match="opset"):
        te.compile(m.SerializeToString())


# ------------------------------------------------------------------ initializers and graph inputs
def test_raw_data_length_must_match_dims():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)  # the weights' DequantizeLinear
    t = _init(m, dq.input[0])
    t.raw_data = t.raw_data[:-3]
    _refused(m, "DequantizeLinear", i, f"initializer '{t.name}'", "raw_data", "bytes")


def test_typed_values_must_match_dims():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    t = _init(m, dq.input[1])  # per-channel float32 scales
    values = list(numpy_helper.to_array(t))
    t.ClearField("raw_data")
    t.float_data.extend(values[:-1])
    _refused(m, "DequantizeLinear", i, "float_data", "values")


def test_initializer_with_negative_dimension():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _init(m, dq.input[0]).dims[1] = -3
    _refused(m, "DequantizeLinear", i, "dims", "negative")


def test_initializer_bigger_than_a_microcontroller():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    t = _init(m, dq.input[0])
    del t.dims[:]
    t.dims.extend([5, 3, 2048, 2048])  # 60 MiB of int8 weights (the data is not even there)
    _refused(m, "DequantizeLinear", i, "bigger than any microcontroller's memory")


def test_initializer_with_external_data():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    t = _init(m, dq.input[0])
    t.ClearField("raw_data")
    t.data_location = TensorProto.EXTERNAL
    entry = t.external_data.add()
    entry.key, entry.value = "location", "/etc/passwd"
    _refused(m, "DequantizeLinear", i, "external file")


def test_initializer_of_unsupported_data_type():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _init(m, dq.input[0]).data_type = TensorProto.STRING
    _refused(m, "DequantizeLinear", i, "data_type", "string")


def test_constant_node_value_is_checked_like_an_initializer():
    m = onnx.load_from_string(q.reshape_model())
    i, r = _node(m, "Reshape")
    t = _init(m, r.input[1])
    value = onnx.TensorProto()
    value.CopyFrom(t)
    value.raw_data = value.raw_data[:-8]  # one int64 short
    m.graph.initializer.remove(t)
    m.graph.node.insert(0, helper.make_node("Constant", [], [r.input[1]], value=value))
    _refused(m, "Constant", 0, "attribute value", "raw_data holds 8 bytes", "need 16")


@pytest.mark.parametrize("value,words", [(0, ("dimension 2 is 0",)), (-4, ("dimension 2 is -4",)),
                                         (None, ("dimension 2 is dynamic",)),
                                         (1 << 22, ("bigger than any microcontroller's memory",))])
def test_graph_input_dimensions(value, words):
    m = _conv()
    d = m.graph.input[0].type.tensor_type.shape.dim[2]
    if value is None:
        d.dim_param = "height"
    else:
        d.dim_value = value
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(m.SerializeToString())
    assert any(p[:2] == ("INPUT", "input") and all(w in p[2] for w in words) for p in err.value.problems), \
        str(err.value)


def test_activation_bigger_than_a_microcontroller():
    m = onnx.load_from_string(q.resize_nearest_model())
    i, resize = _node(m, "Resize")
    _set_init(m, resize.input[2], np.array([1, 1, 2048, 2048], np.float32))
    _refused(m, "Resize", i, f"output '{resize.output[0]}'", "bigger than any microcontroller's memory")


# ------------------------------------------------------------------ Conv
@pytest.mark.parametrize("attr,value,words", [
    ("strides", [0, 1], ("strides [0, 1]", ">= 1")),
    ("strides", [2], ("strides [2]", "expected 2 values")),
    ("dilations", [1, 0], ("dilations [1, 0]", ">= 1")),
    ("pads", [1, -1, 1, 1], ("pads [1, -1, 1, 1]", ">= 0")),
    ("pads", [1, 1], ("pads [1, 1]", "expected 4 values")),
    ("kernel_shape", [3, 5], ("kernel_shape [3, 5]", "does not match the weights")),
    ("kernel_shape", [3, 3, 3], ("kernel_shape [3, 3, 3]", "expected 2 values")),
    ("group", 0, ("group 0", ">= 1")),
    ("group", 2, ("group 2", "does not divide the 5 output channels")),
    ("auto_pad", "SAME", ("auto_pad 'SAME'", "not an ONNX value")),
])
def test_conv_attribute_ranges(attr, value, words):
    m = _conv()
    i, conv = _node(m, "Conv")
    _set_attr(conv, attr, value)
    _refused(m, "Conv", i, *words)


def test_conv_group_must_fit_input_channels():
    m = _conv(input_shape=(1, 4, 6, 6), out_channels=4, group=2, stride=1)
    i, conv = _node(m, "Conv")
    _set_attr(conv, "group", 4)  # weights (4, 2, 3, 3) need 8 input channels with group 4
    _refused(m, "Conv", i, "group 4", "input channels")


def test_conv_kernel_larger_than_padded_input():
    m = _conv(input_shape=(1, 3, 4, 4), kernel=3, pads=0, stride=1)
    i, conv = _node(m, "Conv")
    _set_attr(conv, "dilations", [3, 1])  # effective kernel 7 > 4
    _refused(m, "Conv", i, "kernel_shape", "output would be empty")


# ------------------------------------------------------------------ pools
@pytest.mark.parametrize("op,attr,value,words", [
    ("AveragePool", "kernel_shape", [0, 3], ("kernel_shape [0, 3]", ">= 1")),
    ("AveragePool", "strides", [1, 0], ("strides [1, 0]", ">= 1")),
    ("AveragePool", "pads", [3, 1, 1, 1], ("pads [3, 1, 1, 1]", "smaller than the kernel")),
    ("AveragePool", "count_include_pad", 2, ("count_include_pad 2", "0 or 1")),
    ("MaxPool", "kernel_shape", [3, -1], ("kernel_shape [3, -1]", ">= 1")),
    ("MaxPool", "strides", [0, 0], ("strides [0, 0]", ">= 1")),
    ("MaxPool", "pads", [1, 1, 1], ("pads [1, 1, 1]", "expected 4 values")),
    ("MaxPool", "ceil_mode", 7, ("ceil_mode 7", "0 or 1")),
    ("MaxPool", "kernel_shape", [11, 11], ("kernel_shape [11, 11]", "output would be empty")),
])
def test_pool_attribute_ranges(op, attr, value, words):
    m = onnx.load_from_string(q.avgpool_model() if op == "AveragePool" else q.maxpool_model())
    i, node = _node(m, op)
    _set_attr(node, attr, value)
    _refused(m, op, i, *words)


# ------------------------------------------------------------------ other operators
@pytest.mark.parametrize("flag", ["transA", "transB"])
def test_gemm_flags(flag):
    m = onnx.load_from_string(q.gemm_model())
    i, gemm = _node(m, "Gemm")
    _set_attr(gemm, flag, 2)
    _refused(m, "Gemm", i, f"{flag} 2", "0 or 1")


def test_concat_axis():
    m = onnx.load_from_string(q.concat_model())
    i, cat = _node(m, "Concat")
    _set_attr(cat, "axis", 4)
    _refused(m, "Concat", i, "axis 4", "out of range", "rank-4")


def test_concat_inputs_must_agree_outside_the_axis():
    m = onnx.load_from_string(q.concat_model(shapes=((1, 2, 4, 4), (1, 3, 4, 4))))
    i, cat = _node(m, "Concat")
    _set_attr(cat, "axis", 2)
    _refused(m, "Concat", i, "input 1", "outside axis 2")


@pytest.mark.parametrize("perm", [[0, 2, 2, 1], [0, 2, 1], [0, 2, 3, 4]])
def test_transpose_perm(perm):
    m = onnx.load_from_string(q.transpose_model())
    i, t = _node(m, "Transpose")
    _set_attr(t, "perm", perm)
    _refused(m, "Transpose", i, f"perm {perm}", "not a permutation")


def test_softmax_axis():
    m = onnx.load_from_string(q.softmax_model())
    i, sm = _node(m, "Softmax")
    _set_attr(sm, "axis", 1 << 40)
    _refused(m, "Softmax", i, f"axis {1 << 40}", "out of range")


def test_softmax_input_scale_below_the_kernels_range():
    m = onnx.load_from_string(q.softmax_model())
    i, sm = _node(m, "Softmax")
    dq = next(n for n in m.graph.node if n.output[0] == sm.input[0])
    _set_init(m, dq.input[1], np.float32(1e-9))
    _refused(m, "Softmax", i, "input scale", "2^-26")


def test_flatten_axis():
    m = onnx.load_from_string(q.flatten_model())
    i, f = _node(m, "Flatten")
    _set_attr(f, "axis", -5)
    _refused(m, "Flatten", i, "axis -5", "out of range")


@pytest.mark.parametrize("attr,value", [("mode", "bilinear"), ("coordinate_transformation_mode", "corners"),
                                        ("nearest_mode", "round")])
def test_resize_modes(attr, value):
    m = onnx.load_from_string(q.resize_nearest_model())
    i, r = _node(m, "Resize")
    _set_attr(r, attr, value)
    _refused(m, "Resize", i, f"{attr} '{value}'", "not an ONNX value")


@pytest.mark.parametrize("scales,words", [((1, 1, 2, -2), ("finite and > 0",)), ((1, 1, 2, np.inf), ("finite",)),
                                          ((1, 1, 2), ("expected 4 values",))])
def test_resize_scales(scales, words):
    m = onnx.load_from_string(q.resize_nearest_model())
    i, r = _node(m, "Resize")
    _set_init(m, r.input[2], np.array(scales, np.float32))
    _refused(m, "Resize", i, "scales (input 2)", *words)


def test_resize_sizes():
    m = onnx.load_from_string(q.resize_nearest_model(sizes=(1, 3, 8, 8)))
    i, r = _node(m, "Resize")
    _set_init(m, r.input[3], np.array([1, 3, 0, 8], np.int64))
    _refused(m, "Resize", i, "sizes (input 3)", ">= 1")


@pytest.mark.parametrize("lo,hi,words", [(6.0, 0.0, ("min 6.0 is greater than max 0.0",)),
                                         (np.nan, 6.0, ("min (input 1) is NaN",)),
                                         (0.0, [1.0, 2.0], ("max (input 2) has 2 values", "scalar"))])
def test_clip_bounds(lo, hi, words):
    m = onnx.load_from_string(q.clip_model())
    i, c = _node(m, "Clip")
    _set_init(m, c.input[1], np.array(lo, np.float32))
    _set_init(m, c.input[2], np.array(hi, np.float32))
    _refused(m, "Clip", i, *words)


def test_relu_with_an_attribute_fails_the_checker():
    m = onnx.load_from_string(q.relu_model())
    i, r = _node(m, "Relu")
    _set_attr(r, "alpha", 0.1)
    _bad_format(m, "onnx.checker", f"node {_site(m, i)}", "alpha")


@pytest.mark.parametrize("shape,words", [((-1, -1), ("at most one -1",)), ((1, -2), (">= -1",)),
                                         ((1, 35), ("has 35 elements", "has 36")),
                                         ((0, 5, -1), ("cannot hold the 36 elements",))])
def test_reshape_shape(shape, words):
    m = onnx.load_from_string(q.reshape_model())
    i, r = _node(m, "Reshape")
    _set_init(m, r.input[1], np.array(shape, np.int64))
    _refused(m, "Reshape", i, "shape (input 1)", *words)


def test_pad_pads_length():
    m = onnx.load_from_string(q.pad_model())
    i, p = _node(m, "Pad")
    _set_init(m, p.input[1], np.array([0, 0, 1, 2, 0, 0], np.int64))
    _refused(m, "Pad", i, "pads", "expected 8 values")


# ------------------------------------------------------------------ quantization parameters
@pytest.mark.parametrize("value", [0.0, -0.5, np.nan, np.inf, 1e-45])
def test_scale_must_be_finite_and_positive(value):
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 2)  # the activation's DequantizeLinear
    _set_init(m, dq.input[1], np.float32(value))
    _refused(m, "DequantizeLinear", i, "scale (input 1)", "finite and > 0")


def test_per_channel_scale_with_a_bad_value():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    s = numpy_helper.to_array(_init(m, dq.input[1])).copy()
    s[3] = -s[3]
    _set_init(m, dq.input[1], s)
    _refused(m, "DequantizeLinear", i, "scale (input 1)", "finite and > 0")


def test_per_axis_scale_length_must_equal_the_axis_dimension():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _set_init(m, dq.input[1], np.full(4, 0.01, np.float32))
    _set_init(m, dq.input[2], np.zeros(4, np.int8))
    _refused(m, "DequantizeLinear", i, "scale (input 1) has 4 values", "dimension 0", "has 5")


@pytest.mark.parametrize("axis", [4, -5])
def test_quantization_axis_within_rank(axis):
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _set_attr(dq, "axis", axis)
    _refused(m, "DequantizeLinear", i, f"axis {axis}", "out of range")


def test_zero_point_shape_must_match_scale():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _set_init(m, dq.input[2], np.zeros(3, np.int8))
    _refused(m, "DequantizeLinear", i, "zero point (input 2) has shape [3]", "scale has shape [5]")


def test_zero_point_type_must_match_the_quantized_tensor():
    m = _conv()
    i, dq = _node(m, "DequantizeLinear", 0)
    _set_init(m, dq.input[2], np.zeros(5, np.int16))  # int8 weights with int16 zero points
    _refused(m, "DequantizeLinear", i, "zero point (input 2) is int16", "int8")


def test_zero_point_must_be_in_the_range_of_the_quantized_type():
    m = onnx.load_from_string(q.conv_model(opset=21))
    i, quant = _node(m, "QuantizeLinear", 0)
    _set_attr(quant, "output_dtype", TensorProto.INT8)
    _set_init(m, quant.input[2], np.int8(3))
    te.compile(m.SerializeToString())  # consistent: still fine
    _set_init(m, quant.input[2], np.int16(300))
    for n in m.graph.node:  # the DequantizeLinear sharing the zero point must agree too
        if n.op_type == "DequantizeLinear" and n.input[2] == quant.input[2]:
            n.input[2] = ""
    _refused(m, "QuantizeLinear", i, "zero point (input 2) is int16", "int8")


def test_scale_must_be_a_constant():
    m = onnx.load_from_string(q.avgpool_model())
    i, quant = _node(m, "QuantizeLinear", 1)
    quant.input[1] = _node(m, "DequantizeLinear", 0)[1].output[0]  # a float activation as the scale
    _refused(m, "QuantizeLinear", i, "scale (input 1) must be a constant")


# ------------------------------------------------------------------ the operators of issue 11
def _refused_named(m, op_type, *words):
    """compile() raises UnsupportedModelError with a problem of the ``op_type`` node
    (named by its node name, as the QDQ-structure checks do) naming every word."""
    node = _node(m, op_type)[1]
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(m.SerializeToString())
    assert any(p[0] == op_type and p[1] == node.name and all(w in p[2] for w in words)
               for p in err.value.problems), str(err.value)
    return err.value


def _free_output_shapes(m):
    """Let shape inference give the graph outputs' shapes (an edited attribute changes them)."""
    for o in m.graph.output:
        for k, d in enumerate(o.type.tensor_type.shape.dim):
            d.dim_param = f"d{k}"


def _runtime_input(m, op_type, k, length):
    """Make input k of the first ``op_type`` node a new int64 graph input (no constant)."""
    node = _node(m, op_type)[1]
    const_name = node.input[k]
    del m.graph.initializer[[t.name for t in m.graph.initializer].index(const_name)]
    m.graph.input.append(helper.make_tensor_value_info(const_name, TensorProto.INT64, [length]))


def _lstm_model(int8_io=False):
    """A QDQ-wrapped float LSTM (what a hand-made 'QDQ LSTM' would look like)."""
    g = q.QDQGraph(0, 14, int8_io)
    x = g.input((3, 1, 4))  # [seq, batch, input]
    hidden = 5
    w, _, _ = g.weight(g.rng.normal(0, 0.3, (1, 4 * hidden, 4)), per_channel=False, prefix="lstm_w")
    r, _, _ = g.weight(g.rng.normal(0, 0.3, (1, 4 * hidden, hidden)), per_channel=False, prefix="lstm_r")
    y = g._name("lstm_y")
    g._node("LSTM", [g.dq(x), w, r], [y], hidden_size=hidden)
    values = g.rng.uniform(-1, 1, (g.samples, 3, 1, 1, hidden))
    return g.finish(g.quantize(y, values, prefix="lstm"))


@pytest.mark.parametrize("op", ["LSTM", "GRU", "RNN"])
def test_recurrent_operators_are_refused_naming_the_node(op):
    m = onnx.load_from_string(_lstm_model())
    i, node = _node(m, "LSTM")
    node.op_type = op
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(m.SerializeToString())
    assert [(p[0], p[1]) for p in err.value.problems] == [(op, node.name)], str(err.value)
    reason = err.value.problems[0][2]
    assert f"operator {op} is not supported" in reason and "TVM's ONNX importer has no converter" in reason
    assert "DynamicQuantizeLSTM" in reason and "UNIDIRECTIONAL_SEQUENCE_LSTM" in reason


def test_lstm_refused_by_tvmc_with_exit_status_2(tmp_path, capsys):
    from tinyengine_tvm import cli

    buf = _lstm_model(int8_io=True)
    name = _node(onnx.load_from_string(buf), "LSTM")[1].name
    src = tmp_path / "lstm.onnx"
    src.write_bytes(buf)
    assert cli.main(["compile", "--target=tinyengine", str(src), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "LSTM" in err and name in err and "no converter" in err, err
    assert not (tmp_path / "out").exists()


def test_gather_indices_computed_at_run_time():
    m = onnx.load_from_string(q.gather_model())
    _runtime_input(m, "Gather", 1, 3)
    _refused_named(m, "Gather", "computed at run time", "only constant indices")


def test_gather_index_out_of_range():
    m = onnx.load_from_string(q.gather_model(indices=(0, 1)))
    gather = _node(m, "Gather")[1]
    _set_init(m, gather.input[1], np.array([0, 4], np.int64))
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(m.SerializeToString())
    assert any(p[0] == "Gather" and "indices [0, 4] are outside [-4, 4)" in p[2] for p in err.value.problems), \
        str(err.value)


@pytest.mark.parametrize("attr,value,words", [
    ("auto_pad", "SAME_UPPER", ("auto_pad=SAME_*", "explicit pads")),
    ("output_padding", [2, 0], ("output_padding [2, 0]", "smaller than the stride")),
])
def test_conv_transpose_unsupported_attributes(attr, value, words):
    m = onnx.load_from_string(q.conv_transpose_model(input_shape=(1, 3, 4, 4), out_channels=3))
    node = _node(m, "ConvTranspose")[1]
    if attr == "auto_pad":
        node.attribute.remove(next(a for a in node.attribute if a.name == "pads"))
    _set_attr(node, attr, value)
    _free_output_shapes(m)
    _refused_named(m, "ConvTranspose", *words)


def test_conv_transpose_group_must_divide_the_input_channels():
    m = onnx.load_from_string(q.conv_transpose_model(input_shape=(1, 3, 4, 4), out_channels=3))
    i, node = _node(m, "ConvTranspose")
    _set_attr(node, "group", 2)
    _free_output_shapes(m)
    with pytest.raises((UnsupportedModelError, ModelFormatError)) as err:
        te.compile(m.SerializeToString())
    assert "ConvTranspose" in str(err.value) and "group" in str(err.value), str(err.value)


def test_conv_transpose_output_shape_attribute():
    m = onnx.load_from_string(q.conv_transpose_model(input_shape=(1, 3, 4, 4), out_channels=3))
    _set_attr(_node(m, "ConvTranspose")[1], "output_shape", [7, 7])  # what the pads give anyway
    _refused_named(m, "ConvTranspose", "output_shape attribute is not supported")


def test_conv_transpose_weights_per_channel_on_the_input_axis():
    m = onnx.load_from_string(q.conv_transpose_model(input_shape=(1, 4, 4, 4), out_channels=4))
    node = _node(m, "ConvTranspose")[1]
    dq = next(n for n in m.graph.node if n.output[0] == node.input[1])
    _set_attr(dq, "axis", 0)
    _refused_named(m, "ConvTranspose", "per channel along axis 0", "output-channel axis")


def test_prelu_slope_varying_along_two_axes():
    m = onnx.load_from_string(q.prelu_model(slope_shape=(4, 5, 1)))
    _refused_named(m, "PRelu", "slope of shape [4, 5, 1]", "several axes")


def test_matmul_second_operand_not_quantized():
    m = onnx.load_from_string(q.batch_matmul_model(shape_a=(3, 4), shape_b=(4, 5)))
    i, mm = _node(m, "MatMul")
    mm.input[1] = "float_b"
    m.graph.initializer.append(numpy_helper.from_array(np.ones((4, 5), np.float32), "float_b"))
    _refused_named(m, "MatMul", "'float_b' is not produced by DequantizeLinear")


def test_layer_norm_over_several_axes():
    m = onnx.load_from_string(q.layer_norm_model(input_shape=(1, 6, 16)))
    i, ln = _node(m, "LayerNormalization")
    _set_attr(ln, "axis", 1)
    with pytest.raises((UnsupportedModelError, ModelFormatError)) as err:
        te.compile(m.SerializeToString())
    assert "axis 1" in str(err.value) and "last axis" in str(err.value), str(err.value)


def test_layer_norm_statistics_outputs_are_refused():
    m = onnx.load_from_string(q.layer_norm_model(input_shape=(1, 6, 16), int8_io=True))
    i, ln = _node(m, "LayerNormalization")
    ln.output.append("ln_mean")
    m.graph.output.append(helper.make_tensor_value_info("ln_mean", TensorProto.FLOAT, [1, 6, 1]))
    _refused_named(m, "LayerNormalization", "output 'ln_mean'", "only the normalized output Y")


def test_reduce_noop_with_empty_axes():
    m = onnx.load_from_string(q.reduce_model(axes=None, opset=18))
    i, node = _node(m, "ReduceMean")
    _set_attr(node, "noop_with_empty_axes", 1)
    _free_output_shapes(m)
    _refused_named(m, "ReduceMean", "noop_with_empty_axes=1")


def test_slice_starts_must_be_constant():
    m = onnx.load_from_string(q.slice_model())
    _runtime_input(m, "Slice", 1, 2)
    _refused_named(m, "Slice", "starts (input 1) must be constant")


# ------------------------------------------------------------------ fuzzing
FUZZ_BASES = {
    "conv": lambda: q.conv_model(),
    "dwconv_relu_int8io": lambda: q.conv_model(input_shape=(1, 4, 6, 6), out_channels=4, group=4, stride=1,
                                               activation="Relu", int8_io=True),
    "gemm_perchannel": lambda: q.gemm_model(per_channel=True),
    "avgpool": lambda: q.avgpool_model(),
    "maxpool": lambda: q.maxpool_model(),
    "concat": lambda: q.concat_model(),
    "transpose": lambda: q.transpose_model(),
    "resize": lambda: q.resize_nearest_model(),
    "clip": lambda: q.clip_model(),
    "pad": lambda: q.pad_model(),
    "reshape": lambda: q.reshape_model(),
    "softmax": lambda: q.softmax_model(),
    "small_cnn": lambda: q.small_cnn_model(),
    "conv_transpose": lambda: q.conv_transpose_model(output_padding=1),
    "layer_norm_int8io": lambda: q.layer_norm_model(int8_io=True),
    "split": lambda: q.split_model(),
    "gather": lambda: q.gather_model(),
    "slice": lambda: q.slice_model(),
    "reduce_max": lambda: q.reduce_model(op_type="ReduceMax", keepdims=0),
    "batch_matmul": lambda: q.batch_matmul_model(),
    "prelu_tanh": lambda: q.prelu_model(),
}
FUZZ_SEEDS = range(4)
FUZZ_PER_SEED = 250  # 4 x 250 mutations: 2/3 protobuf fields, 1/3 raw bytes


@pytest.fixture(scope="module")
def fuzz_bases():
    return {k: b() for k, b in FUZZ_BASES.items()}


@pytest.mark.parametrize("seed", FUZZ_SEEDS)
def test_fuzz_compile_succeeds_or_raises_a_tinyengine_error(seed, fuzz_bases):
    rng = np.random.default_rng(1000 + seed)
    names = sorted(fuzz_bases)
    outcomes = collections.Counter()
    escaped = []
    for k in range(FUZZ_PER_SEED):
        base = names[int(rng.integers(len(names)))]
        mutate = field_mutation if int(rng.integers(3)) < 2 else byte_mutation
        desc, data = mutate(fuzz_bases[base], rng)
        try:
            te.compile(data)
            outcomes["compiled"] += 1
        except TinyEngineError as exc:
            outcomes[type(exc).__name__] += 1
            assert "internal error" not in str(exc), (k, base, desc, str(exc))
        except Exception as exc:  # noqa: BLE001 - this is what the test is about
            escaped.append(f"#{k} {base}: {desc}: {type(exc).__name__}: {exc}")
    print(f"\nONNX fuzz seed {seed}: {dict(outcomes)}")  # shown with pytest -s
    assert not escaped, "\n".join(escaped)
    # the mutations reach every outcome: some survive, both error classes occur
    assert outcomes["compiled"] and outcomes["ModelFormatError"] and outcomes["UnsupportedModelError"], outcomes
