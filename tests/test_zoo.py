"""The model zoo (tinyengine_tvm.modelgen.zoo): small versions of every family compile,
are bit-exact with TFLM, and have the operators their family promises."""

import pytest

import tinyengine_tvm as te
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
tflite = pytest.importorskip("tflite", reason="the tflite package is needed to read the models' operators")
from tinyengine_tvm.modelgen import zoo  # noqa: E402

# Small versions of each family (the defaults are 80x80 .. 224x224).
SMALL = {
    "mcunet_vww": dict(resolution=48, width=0.35),
    "mcunet_se_imagenet": dict(resolution=48, width=0.35, classes=10),
    "mcunet_fpn_detector": dict(resolution=(64, 96), width=0.35),
    "mobilenetv2_nchw": dict(resolution=32, width=0.35, classes=10),
}

_OPNAMES = {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _model_ops(model):
    """(operator names in model order, input shapes, output shapes, input dtypes) of subgraph 0."""
    m = tflite.Model.GetRootAsModel(model, 0)
    sg = m.Subgraphs(0)
    ops = []
    for i in range(sg.OperatorsLength()):
        code = m.OperatorCodes(sg.Operators(i).OpcodeIndex())
        ops.append(_OPNAMES[max(code.BuiltinCode(), code.DeprecatedBuiltinCode())])

    def shapes(n, get):
        return [tuple(int(d) for d in sg.Tensors(get(i)).ShapeAsNumpy()) for i in range(n)]

    return ops, shapes(sg.InputsLength(), sg.Inputs), shapes(sg.OutputsLength(), sg.Outputs)


@pytest.fixture(scope="module", params=sorted(SMALL))
def family(request):
    name = request.param
    model = zoo.ZOO[name](**SMALL[name])
    return name, model, te.compile(model, name=name)


def test_bit_exact_with_tflm(family):
    name, model, compiled = family
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


def test_family_operators(family):
    name, model, compiled = family
    ops, ins, outs = _model_ops(model)
    assert [o["type"] for o in compiled.metadata["ops"]] and compiled.metadata["total_macs"] > 0
    if name == "mobilenetv2_nchw":
        assert ops[0] == "TRANSPOSE" and ins == [(1, 3, 32, 32)]
        assert compiled.metadata["inputs"][0]["dtype"] == "int8"
        assert compiled.metadata["outputs"][0]["dtype"] == "int8" and outs == [(1, 10)]
        assert ops.count("DEPTHWISE_CONV_2D") == 17 and ops.count("ADD") == 10
    else:
        # float32 I/O around an int8 body
        assert ops[0] == "QUANTIZE" and ops[-1] == "DEQUANTIZE"
        assert all(d["dtype"] == "float32" for d in compiled.metadata["inputs"] + compiled.metadata["outputs"])
    if name == "mcunet_vww":
        assert outs == [(1, 2)]
        assert {"AVERAGE_POOL_2D", "RESHAPE", "FULLY_CONNECTED", "ADD"} <= set(ops)
    if name == "mcunet_se_imagenet":
        assert {"MEAN", "LOGISTIC", "MUL"} <= set(ops) and outs == [(1, 10)]
    if name == "mcunet_fpn_detector":
        assert ops.count("RESIZE_NEAREST_NEIGHBOR") >= 2 and "CONCATENATION" in ops and "ADD" in ops
        assert len(outs) >= 2 and len({o[1:3] for o in outs}) == len(outs)  # distinct strides
        assert outs[0][1:3] == (64 // 8, 96 // 8)


def test_deterministic_per_seed():
    kw = SMALL["mcunet_vww"]
    assert zoo.mcunet_vww(**kw, seed=3) == zoo.mcunet_vww(**kw, seed=3)
    assert zoo.mcunet_vww(**kw, seed=3) != zoo.mcunet_vww(**kw, seed=4)
