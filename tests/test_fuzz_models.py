"""Model fuzzing (issue 8): mutated models give a clear error, or compile and match TFLM bit-exactly.

Every case mutates one model with a fixed seed (``tinyengine_tvm.testing.model_mutations``:
byte flips, truncations and field-aware mutations of shapes, strides,
dilations, padding, filter sizes, activations, options tags, scales, zero
points, quantized dimensions, tensor types, buffer/tensor/opcode indices,
operator codes and constant data) and requires, in-process:

* ``tinyengine_tvm.compile(bytes)`` returns or raises a TinyEngineError subclass;
* ``tvmc compile`` exits 0 (output written) or 2 with a short ``error:``
  message, no traceback and no output, agreeing with compile();
* a model that compiles and that TFLM also runs (in a sandbox subprocess)
  gives TFLM's outputs bit-exactly from the generated C built for this host
  (at most BITEXACT_CAP host builds per part; identical generated code is
  compared from a cache).  Models we accept and TFLM rejects are listed.

Run with ``-s`` to see the outcome counts.  TINYENGINE_FUZZ_REPORT=FILE.json
writes every case's result; a failing case is reproduced from its printed
seed and kind with ``model_mutations.mutate(data, np.random.default_rng(seed), kind)``.
"""
import json
import os
import time

import numpy as np
import pytest

from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.testing import model_mutations as M
from tinyengine_tvm.testing import shared_models_dir

SEED = 20240611
BITEXACT_CAP = 40  # host gcc builds per test (each ~0.5-3 s)

# Cases per shared model: the three large ones take ~1-4 s per compile, so fewer.
SHARED_CASES = {
    "hello_world_int8": 60, "ad01_int8": 50, "micro_speech_quantized": 60, "kws_ref_model": 60,
    "pretrainedResnet_quant": 20, "person_detect": 8, "vww_96_int8": 8,
}
OWN_CASES_DEFAULT_MODEL = 60
OWN_CASES_SMALL = 15


def _own_models():
    """The default model and small models built with modelgen (non-default options so they are stored)."""
    models = {"default_mobilenet_int8": default_model_path().read_bytes()}
    try:
        import tflite_micro  # noqa: F401 - modelgen's schema comes from it
    except ImportError:
        return models
    from tinyengine_tvm.modelgen import quantized_ops as Q
    from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter

    models.update({
        "conv_valid_s2_d2": Q.conv2d_model(input_shape=(1, 11, 11, 3), out_channels=5, stride=(2, 1),
                                           dilation=(1, 2), padding="VALID", activation="RELU"),
        "depthwise_valid_s2_d2": Q.depthwise_conv2d_model(input_shape=(1, 9, 9, 4), stride=(2, 2), dilation=(1, 2),
                                                         padding="VALID", depth_multiplier=2),
        "fully_connected": Q.fully_connected_model(activation="RELU", keep_num_dims=True),
        "add_broadcast_relu": Q.add_model(shape_b=(1, 1, 1, 8), activation="RELU"),
        "mul_const": Q.mul_model(const_b=True),
        "avg_pool_same": Q.avg_pool_model(input_shape=(1, 7, 7, 4), filter=(3, 3), stride=(2, 2), padding="SAME"),
        "softmax_beta": Q.softmax_model(beta=0.5),
        "concat": Q.concat_model(),
        "pad_mean": Q.mean_model(),
        "residual": Q.residual_model(),
        "quantize_dequantize": Q.quantize_dequantize_model(requantize=True),
    })
    w = TFLiteWriter("fuzz: hand-written max pool")
    x = w.tensor("x", (1, 6, 6, 2), "int8", scale=0.05, zero_point=-3)
    y = w.tensor("pooled", (1, 3, 3, 2), "int8", scale=0.05, zero_point=-3)
    w.op("MAX_POOL_2D", [x], [y], filter=3, stride=2, padding="SAME", activation="RELU6")
    w.inputs([x])
    w.outputs([y])
    models["writer_max_pool"] = w.finish()
    return models


def _cases(models: dict, counts: dict):
    """(model, case, seed, kind, description, bytes), interleaved across models so the
    bit-exact cap is spread over them.  Each model cycles through its applicable kinds."""
    per_model = []
    for m_idx, (name, data) in enumerate(models.items()):
        kinds = M.applicable_kinds(data, strict=True)  # a well-formed model: every field must be walkable
        order = [kinds[i] for i in np.random.default_rng([SEED, m_idx]).permutation(len(kinds))]
        cases = []
        for i in range(counts[name]):
            seed = (SEED, m_idx, i)
            kind = order[i % len(order)]
            mutated, desc = M.mutate(data, np.random.default_rng(list(seed)), kind)
            cases.append((name, i, seed, kind, desc, mutated))
        per_model.append(cases)
    out = []
    for i in range(max(len(c) for c in per_model)):
        out.extend(c[i] for c in per_model if i < len(c))
    return out


def _tflm_available() -> bool:
    try:
        from tflite_micro import runtime  # noqa: F401
    except ImportError:
        return False
    return True


def _fuzz(part: str, models: dict, counts: dict, tmp_path):
    cases = _cases(models, counts)
    tflm = _tflm_available()
    t0 = time.perf_counter()
    results = []
    with M.FuzzHarness(str(tmp_path), bitexact_cap=BITEXACT_CAP, tflm=tflm) as harness:
        harness.check_sandbox()
        for name, i, seed, kind, desc, data in cases:
            results.append(harness.run_case(name, i, seed, kind, desc, data))
        builds, restarts = harness.builds, (harness.sandbox.restarts if harness.sandbox else 0)
    seconds = time.perf_counter() - t0
    print(f"\n== fuzz {part}: {len(results)} cases in {seconds:.0f} s, {builds} host builds, "
          f"{restarts} sandbox restarts{'' if tflm else ' (tflite-micro absent: TFLM not run)'}")
    print(M.format_table(results))
    rejects = [r for r in results if r.outcome == M.OUTCOME_TFLM_REJECTS]
    if rejects:
        print(f"accepted by tinyengine, rejected by TFLM ({len(rejects)}):")
        for r in rejects:
            print(f"  {r.where()}\n      TFLM: {r.detail}")
    failures = [r for r in results if r.failed]
    if failures:
        print(f"FAILURES ({len(failures)}), by class:\n{M.format_failures(results)}")
    report = os.environ.get("TINYENGINE_FUZZ_REPORT")
    if report:
        path = report.replace(".json", f"_{part}.json") if report.endswith(".json") else f"{report}_{part}.json"
        with open(path, "w") as f:
            json.dump({"part": part, "seconds": seconds, "results": [r.to_json() for r in results]}, f, indent=1)
    return results


def _check(results):
    failures = [r for r in results if r.failed]
    assert not failures, (f"{len(failures)} of {len(results)} fuzz cases failed "
                          f"(classes: outcome detail at innermost project frame):\n{M.format_failures(results)}")


def test_mutators_are_deterministic_and_typed():
    data = default_model_path().read_bytes()
    kinds = M.applicable_kinds(data, strict=True)
    assert set(kinds) >= {"byte_flip", "truncate", "shape", "stride", "padding",
                          "filter_size", "activation", "options_type", "scale", "zero_point",
                          "quantized_dimension", "tensor_type", "buffer_index", "op_tensor_index",
                          "opcode_index", "buffer_data"}
    for k in kinds:
        for s in range(5):
            a = M.mutate(data, np.random.default_rng([1, s]), k)
            assert a == M.mutate(data, np.random.default_rng([1, s]), k), k
            assert a[0] != data and a[1], k
            if k in M.FIELD_KINDS:
                assert len(a[0]) == len(data), k  # overwritten in place
                diff = [i for i in range(len(data)) if a[0][i] != data[i]]
                assert diff and diff[-1] - diff[0] < 8, (k, a[1])  # one scalar field


def test_mutated_fields_read_back_through_tflite():
    """A field-aware mutation lands on the field it names (read back with the tflite package)."""
    import tflite

    data = default_model_path().read_bytes()
    for s in range(10):
        out, desc = M.mutate(data, np.random.default_rng([2, s]), "stride")
        op_index = int(desc.split(" of op ")[1].split()[0])
        field = desc.split()[0]
        new = int(desc.rsplit("-> ", 1)[1])
        sg = tflite.Model.GetRootAsModel(out, 0).Subgraphs(0)
        table = sg.Operators(op_index).BuiltinOptions()
        cls = tflite.Pool2DOptions if "POOL" in desc else (
            tflite.DepthwiseConv2DOptions if "DEPTHWISE" in desc else tflite.Conv2DOptions)
        opts = cls()
        opts.Init(table.Bytes, table.Pos)
        assert getattr(opts, field)() == new, desc
    for s in range(10):
        out, desc = M.mutate(data, np.random.default_rng([3, s]), "shape")
        t_idx, dim = int(desc.split("tensor ")[1].split()[0]), int(desc.split(" dim ")[1].split(":")[0])
        new = int(desc.rsplit("-> ", 1)[1])
        assert tflite.Model.GetRootAsModel(out, 0).Subgraphs(0).Tensors(t_idx).Shape(dim) == new, desc


def test_fuzz_own_models(tmp_path):
    models = _own_models()
    counts = {name: (OWN_CASES_DEFAULT_MODEL if name == "default_mobilenet_int8" else OWN_CASES_SMALL)
              for name in models}
    results = _fuzz("own", models, counts, tmp_path)
    assert len(results) >= 200 or len(models) == 1
    _check(results)


def test_fuzz_shared_models(tmp_path):
    d = shared_models_dir()
    if d is None:
        pytest.skip("../shared/models is absent (CI provides it next to the checkout); "
                    "set TINYENGINE_SHARED_MODELS to fuzz the shared models")
    models = {}
    for name in SHARED_CASES:
        with open(os.path.join(d, f"{name}.tflite"), "rb") as f:
            models[name] = f.read()
    results = _fuzz("shared", models, SHARED_CASES, tmp_path)
    assert len(results) >= 250
    _check(results)


def test_harness_classifies_outcomes(tmp_path, monkeypatch):
    """The harness is not vacuous: it reports a bit-exact compile, a clear error and a crash as such."""
    data = default_model_path().read_bytes()
    tflm = _tflm_available()
    with M.FuzzHarness(str(tmp_path), bitexact_cap=1, tflm=tflm) as harness:
        harness.check_sandbox()
        ok = harness.run_case("default", 0, (0,), "none", "unmutated", data)
        assert ok.outcome == (M.OUTCOME_BITEXACT if tflm else M.OUTCOME_NO_TFLM), ok
        bad = harness.run_case("default", 1, (0,), "truncate", "cut", data[:100])
        assert (bad.outcome, bad.detail, bad.cli) == (M.OUTCOME_ERROR, "ModelFormatError", "exit 2"), bad

        def boom(*args, **kwargs):
            raise ValueError("injected")

        import tinyengine_tvm
        import tinyengine_tvm.compiler

        monkeypatch.setattr(tinyengine_tvm, "compile", boom)
        monkeypatch.setattr(tinyengine_tvm.compiler, "compile", boom)
        crash = harness.run_case("default", 2, (0,), "none", "injected bug", data)
        assert crash.failed and (crash.outcome, crash.detail) == (M.OUTCOME_CRASH, "ValueError"), crash
        assert crash.cli != "exit 2", crash
