"""The ``narrow_at_peak`` knob of ``tvmc tune``: in the configuration, its JSON and key,
the records and ``tvmc compile --tuning-records``; and the tuner compiling the narrow
twin of a plan over the SRAM budget so that it can fit (a stand-in measurer: no QEMU)."""
import json
from dataclasses import replace

import pytest

from tinyengine_tvm import cli
from tinyengine_tvm.modelgen import zoo
from tinyengine_tvm.tune import tuner
from tinyengine_tvm.tune.measure import Measurement
from tinyengine_tvm.tune.records import append_records, load_records, make_record, model_sha256
from tinyengine_tvm.tune.space import TuningConfig, search_space


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    # its 3x3 stem's im2col scratch is live at the arena peak (tests/test_arm_conv_narrow.py)
    path = tmp_path_factory.mktemp("narrow") / "mcunet48.tflite"
    path.write_bytes(zoo.mcunet_vww(resolution=48, width=0.5, seed=3))
    return str(path)


def test_the_knob_in_the_config_and_the_space():
    cfg = TuningConfig(patch=False, narrow_at_peak=True)
    assert cfg.compile_kwargs()["narrow_at_peak"] is True
    assert "narrow_at_peak" not in TuningConfig(patch=False).compile_kwargs()  # the default compile is unchanged
    assert "narrow_at_peak" not in TuningConfig().to_json()  # older keys hold
    assert TuningConfig.from_json(json.loads(json.dumps(cfg.to_json()))) == cfg
    assert cfg.key != TuningConfig(patch=False).key and cfg.describe() == "patch=False, narrow_at_peak=True"
    space = search_space()
    full = search_space(narrow=True)
    assert len(full) == 2 * len(space) == 2336 and full[0] == TuningConfig() and len(set(full)) == len(full)
    assert len(search_space(dsp=False, narrow=True)) == len(search_space(dsp=False)) == 584


def test_records_round_trip_through_tvmc_compile(model, tmp_path):
    cfg = TuningConfig(patch=False, narrow_at_peak=True)
    path = str(tmp_path / "r.json")
    append_records(path, [make_record(model="mcunet48", sha256=model_sha256(model), board="NUCLEO-F746ZG",
                                      core="cortex-m7", sram_budget=33_000, flash_budget=900_000,
                                      runner="qemu:mps2-an500", config=cfg, latency=100.0, unit="instructions",
                                      arena_bytes=32_352, flash_bytes=40_000, fits=True, layers=[])])
    assert TuningConfig.from_json(load_records(path)[0]["config"]) == cfg
    out = tmp_path / "out"
    assert cli.main(["compile", model, "-o", str(out), "--target-tinyengine-mcpu", "cortex-m7",
                     "--tuning-records", path]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["tuning"]["record"] == cfg.key and meta["tuning"]["config"]["narrow_at_peak"] is True
    assert meta["kernel_selection"]["narrowed"] == ["stem_4"]
    assert meta["memory"]["arena_bytes"] == 32_352
    assert any(op["kernel"] == "te_arm_conv2d_narrow_w16_s8" for op in meta["ops"])
    # the same plan from the command line's own option
    out2 = tmp_path / "out2"
    assert cli.main(["compile", model, "-o", str(out2), "--target-tinyengine-mcpu", "cortex-m7",
                     "--disable-pass", "PatchBasedInference", "--narrow-at-peak"]) == 0
    assert (out2 / "src" / "mcunet48.c").read_text() == (out / "src" / "mcunet48.c").read_text()
    assert cli.main(["compile", model, "-o", str(tmp_path / "out3"), "--narrow-at-peak"]) == 2


class _Measurer:
    """Instructions made up per configuration key; the fastest is ``fast``."""

    name = "fake"
    unit = "instructions"

    def __init__(self, fast: str):
        self.fast = fast

    def measure_many(self, dirs):
        return [Measurement(100.0 if d.rstrip("/").endswith(self.fast) else 200.0, "instructions", [], 1_000)
                for d in dirs]


@pytest.mark.parametrize("narrow", [True, False])
def test_a_plan_over_the_budget_fits_narrowed(model, monkeypatch, narrow):
    """The first configuration stands for the default compile (arena 32,256 B); the
    second (arena 32,552 B, over a 32,400 B budget) is the fast one: only its narrow
    twin (32,352 B) fits. (Patch-based inference off: quick compiles.)"""
    base, fast = TuningConfig(patch=False, keep_portable_arena=True), TuningConfig(patch=False)
    twin = replace(fast, narrow_at_peak=True)
    monkeypatch.setattr(tuner, "search_space", lambda dsp: [base, fast])
    r = tuner.tune(model, "NUCLEO-F746ZG", sram_budget=32_400, trials=4, strategy="random", progress=False,
                   kernel_search=False, measurer=_Measurer(twin.key), narrow=narrow)
    arenas = {c.config: c.arena_bytes for c in r.measured}
    assert arenas[base] == 32_256 and r.default.config == base
    if narrow:
        assert twin in arenas and r.best.config == twin and r.best.arena_bytes == 32_352 and r.best.latency == 100.0
    else:
        assert r.pool == 2 and r.feasible == 1 and r.best.config == base


def test_a_plan_kept_portable_for_its_scratch_gets_a_narrow_twin(model, monkeypatch):
    """keep_portable_arena keeps portable kernels where the DSP scratch would raise the
    arena; its narrow twin (the one-column kernel where that suffices) is compiled too.
    Here narrowing the stem does not bring the arena within the portable plan's, so the
    twin's code is the portable plan's and it is not measured twice."""
    base, portable = TuningConfig(patch=False), TuningConfig(patch=False, keep_portable_arena=True)
    twin = replace(portable, narrow_at_peak=True)
    monkeypatch.setattr(tuner, "search_space", lambda dsp: [base, portable])
    r = tuner.tune(model, "NUCLEO-F746ZG", sram_budget=40_000, trials=3, strategy="random", progress=False,
                   kernel_search=False, measurer=_Measurer(twin.key))
    assert r.pool == 3 and r.feasible == 2 and [c.config for c in r.measured] == [base, portable]


def test_a_default_compile_over_the_budget_is_replaced_by_its_narrow_twin(model, monkeypatch):
    """32,552 B default compile, 32,400 B budget: its narrow twin (32,352 B) is the baseline;
    without narrowing there is nothing to tune."""
    monkeypatch.setattr(tuner, "search_space", lambda dsp: [TuningConfig(patch=False)])
    twin = TuningConfig(patch=False, narrow_at_peak=True)
    kw = dict(sram_budget=32_400, trials=2, strategy="random", progress=False, kernel_search=False,
              measurer=_Measurer(twin.key))
    r = tuner.tune(model, "NUCLEO-F746ZG", **kw)
    assert r.default.config == twin == r.best.config and r.default.arena_bytes == 32_352
    from tinyengine_tvm.errors import TinyEngineError

    with pytest.raises(TinyEngineError, match="32,552 B arena, over the 32,400 B SRAM budget: nothing to tune"):
        tuner.tune(model, "NUCLEO-F746ZG", narrow=False, **kw)
