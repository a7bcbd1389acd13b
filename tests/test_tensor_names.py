"""The model's own tensor names reach everything a user reads.

Report, metadata, plots, budget errors and the generated C comments name
operators and buffers after the model's tensors (not Relax's ``lv12``), through
every pass, and names that are hostile to C comments (``*/``, newlines,
non-ASCII) are escaped there.
"""
import re

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.cli import format_report
from tinyengine_tvm.codegen.c_writer import comment_text
from tinyengine_tvm.errors import MemoryBudgetError
from tinyengine_tvm.naming import buffer_list, describe_op, quote_name
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph  # noqa: E402

# Activation tensor names of the test model (weights get "<name>_w"/"<name>_b").
N = dict(
    input="image in/é",
    stem="model/stem*/conv",  # would close a C comment
    expand="block 1\nexpand",  # would break a comment's line
    dw="block 1/dw;Relu6",
    project="block 1/project",
    add="résidu/add",
    head_dw="head/dw $5x5$",
    head="head/conv",
    pool="head/pool",
    flat="flatten",
    logits="logits/MatMul",
)
# Tensors produced by a kernel step (the input and the reshape view are not).
STEP_NAMES = {v for k, v in N.items() if k not in ("input", "flat")}


class _ExactNames(QuantizedGraph):
    """A QuantizedGraph (TFLiteWriter underneath) naming tensors exactly as given."""

    def _name(self, prefix):
        return prefix


def _named_model(h=64, w=64):
    """MobileNetV2-like (as tests/test_memory_passes._mbv2_like); patching applies at 64x64."""
    g = _ExactNames(7)
    x = g.input((1, h, w, 3), name=N["input"])
    x = g.conv2d(x, 8, (3, 3), (2, 2), activation="RELU6", prefix=N["stem"])
    y = g.conv2d(x, 16, (1, 1), activation="RELU6", prefix=N["expand"])
    y = g.depthwise_conv2d(y, (3, 3), (1, 1), activation="RELU6", prefix=N["dw"])
    y = g.conv2d(y, 8, (1, 1), prefix=N["project"])
    x = g.add(x, y, prefix=N["add"])
    x = g.depthwise_conv2d(x, (5, 5), (2, 2), activation="RELU6", prefix=N["head_dw"])
    x = g.conv2d(x, 12, (1, 1), activation="RELU6", prefix=N["head"])
    x = g.avg_pool(x, (x.shape[1], x.shape[2]), (1, 1), prefix=N["pool"])
    return g.finish(g.fully_connected(g.reshape(x, (1, 12), prefix=N["flat"]), 5, prefix=N["logits"]))


_MODEL = []


def named_model() -> bytes:
    if not _MODEL:
        _MODEL.append(_named_model())
    return _MODEL[0]


def _base(name: str) -> str:
    """The model tensor a (possibly derived) name comes from: ``x[patch 3][scratch]`` -> ``x``."""
    while True:
        stripped = re.sub(r"\[[^\[\]]*\]$", "", name)
        if stripped == name:
            return name
        name = stripped


def _check_names(compiled):
    meta = compiled.metadata
    model_names = set(N.values())
    bases = {_base(op["name"]) for op in meta["ops"]}
    # Patch-based inference adds crops of the input: "<input>[patch k]".
    assert STEP_NAMES <= bases <= STEP_NAMES | {N["input"]}, bases ^ STEP_NAMES
    for op in meta["ops"]:
        assert all(_base(b) in model_names for b in op["live_buffers"]), op
        # Every derived name is made unique by its own suffix, never by a number the IR builder appends.
        assert not re.search(r"\]\d+$", op["name"]), op["name"]
    assert _base(meta["memory"]["peak_op"]) in model_names
    assert meta["memory"]["peak_op"] == meta["ops"][meta["memory"]["peak_op_index"]]["name"]
    assert [d["name"] for d in meta["inputs"]] == [N["input"]]
    assert [d["name"] for d in meta["outputs"]] == [N["logits"]]
    assert meta["ops"][-1]["name"] == N["logits"]

    text = format_report(meta)
    peak = meta["ops"][meta["memory"]["peak_op_index"]]
    assert f"peak at      {describe_op(meta, meta['memory']['peak_op_index'])}: {buffer_list(peak['live_buffers'])}" in text
    assert quote_name(N["input"]) in text and quote_name(N["logits"]) in text
    assert "'block 1\\nexpand'" == quote_name(N["expand"])
    assert all("\n" not in line and "\r" not in line for line in text.splitlines())
    assert not re.search(r"\blv\d*\b", text)
    _check_c(compiled)


def _check_c(compiled):
    name = compiled.name
    src, hdr, weights = (compiled.files[f] for f in
                         (f"src/{name}.c", f"include/{name}.h", f"src/{name}_weights.c"))
    for text in (src, hdr, weights):
        assert text.isascii()
        for raw in ("stem*/conv", "block 1\nexpand", "é"):
            assert raw not in text
        # No comment opens another or spans a line it should not.
        for body in re.findall(r"/\*(.*?)\*/", text, re.S):
            assert "/*" not in body
    # Every step is commented with its (escaped) name; no internal Relax name is left.
    for s, op in enumerate(compiled.metadata["ops"]):
        assert f"/* step {s}: {op['type']} " in src
        assert f"'{comment_text(op['name'])}'" in src
    assert not re.search(r"'lv\d*'", src)
    assert f"/* input 0: '{comment_text(N['input'])}' */" in hdr
    assert f"'{comment_text(N['logits'])}'" in hdr
    assert "'model/stem*\\/conv" in src and "'block 1\\nexpand" in src
    assert f"input 1 of '{comment_text(N['stem'])}" in weights  # its first reader


def _check_runs(compiled, model):
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in range(2)])


def test_comment_text_is_safe_in_c_comments():
    assert comment_text("a*/b") == "a*\\/b"
    assert comment_text("/*/") == "/\\*\\/"
    assert comment_text("x\ny\r\tz\\") == "x\\ny\\r\\tz\\\\"
    assert comment_text("résidu 😀") == "r\\u00e9sidu \\U0001f600"
    for nasty in ("**//**", "*/*/", "/**/", "*\n/", "*\\\n/"):
        out = comment_text(nasty)
        assert "*/" not in out and "/*" not in out and "\n" not in out and out.isascii()
    assert quote_name("a\nb") == "'a\\nb'" and quote_name("résidu") == "'résidu'"


def test_names_with_all_passes_including_patches():
    model = named_model()
    compiled = te.compile(model, name="named")
    report = {p["name"]: p for p in compiled.metadata["passes"]}["PatchBasedInference"]
    assert report["applied"], report
    last_op = report["stages"][0]["last_op"]
    assert _base(last_op) in STEP_NAMES
    names = [op["name"] for op in compiled.metadata["ops"]]
    # Every stage source is cropped per patch, and every stage step runs per patch, under its own name.
    first_op = report["stages"][0]["first_op"]
    assert f"{first_op}[patch 0]" in names and f"{last_op}[paste 0]" in names
    assert any(n.endswith("[patch 0]") and _base(n) not in (first_op, last_op) for n in names)
    assert any(n.endswith("[scratch]") for op in compiled.metadata["ops"] for n in op["live_buffers"])
    _check_names(compiled)
    _check_runs(compiled, model)


def test_names_without_passes():
    model = named_model()
    compiled = te.compile(model, name="named_plain", optimize=False)
    assert all("[" not in op["name"] for op in compiled.metadata["ops"])
    _check_names(compiled)
    _check_runs(compiled, model)


def test_budget_error_names_the_peak_with_model_names():
    model = named_model()
    meta = te.compile(model, name="named").metadata
    with pytest.raises(MemoryBudgetError) as err:
        te.compile(model, name="named", sram_budget=1)
    msg = str(err.value)
    peak = meta["ops"][meta["memory"]["peak_op_index"]]
    assert f"the peak is at {describe_op(meta, meta['memory']['peak_op_index'])} with" in msg
    assert buffer_list(peak["live_buffers"]) in msg
    assert "\n" not in msg and not re.search(r"\blv\d*\b", msg)


def test_names_survive_relowering_and_kernel_selection():
    """A lowered IRModule compiled again (the lowering is idempotent) and the
    Cortex-M kernel selection keep the names."""
    from tinyengine_tvm.frontend import load_model
    from tinyengine_tvm.transform import LowerToIntegerKernels

    model = named_model()
    imported = load_model(model, "named")
    lowered = LowerToIntegerKernels()(imported.mod)
    again = te.compile(lowered, name="again", optimize=False)
    assert {_base(op["name"]) for op in again.metadata["ops"]} == STEP_NAMES
    m7 = te.compile(model, name="named_m7", core="cortex-m7")
    assert m7.metadata["kernel_selection"]["optimized"] > 0
    _check_names(m7)


def test_plot_annotation_takes_any_name(tmp_path):
    pytest.importorskip("matplotlib", reason="matplotlib is not installed")
    from tinyengine_tvm.report import plot_memory_timeline

    meta = {"model": "m", "memory": {"arena_bytes": 64},
            "ops": [{"live_bytes": 32, "type": "CONV_2D", "name": "a $x^{2$ */\nb"},
                    {"live_bytes": 64, "type": "ADD", "name": "résidu/" + "x" * 200}]}
    path = plot_memory_timeline(meta, meta, str(tmp_path / "memory.png"))
    assert open(path, "rb").read(8) == b"\x89PNG\r\n\x1a\n"


def test_onnx_node_names_through_canonicalization():
    """ONNX QuantizeLinear output names, recorded while importing, name the kernels."""
    onnx = pytest.importorskip("onnx", reason="onnx is not installed (pip install onnx)")
    from tvm.relax.frontend.onnx import from_onnx

    from tinyengine_tvm.frontend.tensor_names import name_bindings, recording_onnx_names
    from tinyengine_tvm.modelgen import onnx_qdq
    from tinyengine_tvm.transform.onnx_canonicalize import CanonicalizeONNXQDQ

    data = onnx_qdq.conv_model()
    model = onnx.load_from_string(data) if isinstance(data, bytes) else data
    quantized = [n.output[0] for n in model.graph.node if n.op_type == "QuantizeLinear"]
    with recording_onnx_names() as named:
        mod = from_onnx(model, shape_dict={"input": [1, 3, 9, 9]})
    mod["main"] = name_bindings(mod["main"], named)
    mod = CanonicalizeONNXQDQ()(mod)
    compiled = te.compile(mod, name="onnx_named", optimize=False)
    names = [op["name"] for op in compiled.metadata["ops"]]
    assert set(quantized) <= set(names), names
    assert f"{quantized[0]}[NHWC]" in names
    assert names[-1] == model.graph.output[0].name
    reference = te.compile(data if isinstance(data, bytes) else data.SerializeToString(), name="onnx_plain")
    x = random_inputs(reference.metadata["inputs"], 0)
    np.testing.assert_array_equal(list(compiled.run(x).values())[0], list(reference.run(x).values())[0])
