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
    "kws_transformer": dict(resolution=(16, 24), dim=16, mlp=32),
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
    if name == "kws_transformer":
        assert {"BATCH_MATMUL", "SOFTMAX", "SQUARED_DIFFERENCE", "RSQRT", "SUB", "MEAN", "HARD_SWISH"} <= set(ops)
        assert ops.count("BATCH_MATMUL") == 4 and ins == [(1, 16, 24, 1)] and outs == [(1, 12)]
        return
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


def test_transformer_at_full_size_fits_a_256k_board_and_runs_on_the_m4(tmp_path):
    """The keyword-spotting transformer (32x32 input, 64 tokens of 32, two blocks)
    compiles bit-exact, its arena is reported against the layer-wise bound, it
    fits the 256 KB board, and the emulated Cortex-M4 gives the host's outputs."""
    from tinyengine_tvm.runtime import qemu
    from tinyengine_tvm.targets import get_board
    from tinyengine_tvm.targets.fit import check_fits

    model = zoo.kws_transformer()
    compiled = te.compile(model, core="cortex-m4")
    check_fits(compiled.metadata, get_board("NUCLEO-F412ZG"))  # 256 KB of SRAM, 1 MB of flash
    plain = te.compile(model, optimize=False)
    cases = [random_inputs(compiled.metadata["inputs"], s) for s in range(2)]
    assert_matches_tflm(compiled, model, cases)
    arena = compiled.metadata["memory"]["arena_bytes"]
    print(f"kws_transformer: arena {arena:,} B (layer-wise plan {plain.metadata['memory']['arena_bytes']:,} B), "
          f"{compiled.metadata['total_macs']:,} MACs")
    assert arena <= plain.metadata["memory"]["arena_bytes"] and arena < 256 * 1024
    if qemu.missing_tools():
        reason = f"{', '.join(qemu.missing_tools())} not found: the Cortex-M4 run needs them"
        print(f"SKIP: {reason}")
        pytest.skip(reason)
    compiled.export(str(tmp_path / "proj"))
    q = qemu.QemuModel(str(tmp_path / "proj"), "mps2-an386", str(tmp_path / "build"))
    for x in cases:
        got, _ = q.run(x)
        for a, b in zip(got.values(), compiled.run(x).values()):
            assert (a == b).all()
