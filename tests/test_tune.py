"""``tvmc tune``: the search space, tuning records, applying them at compile time,
and a small tuning run end to end on QEMU (needs arm-none-eabi-gcc and
qemu-system-arm; skipped, with the reason, without them)."""
import json
import os

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm import cli
from tinyengine_tvm.errors import UsageError
from tinyengine_tvm.modelgen.default_model import default_model_path
from tinyengine_tvm.runtime import firmware
from tinyengine_tvm.tune.records import append_records, best_record, load_records, make_record, model_sha256
from tinyengine_tvm.tune.space import TuningConfig, search_space

MISSING = firmware.missing_tools()
needs_qemu = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: run "
                                                      "scripts/install_arm_toolchain.sh for the tuning runs")
MODEL = str(default_model_path())


def test_space_starts_with_the_default_compile_and_maps_to_compile_options():
    space = search_space()
    # patch off, or 6 patch counts x 4 halo forms x 3 stage limits; x 2 x 2 x 2 x 2 other knobs
    assert space[0] == TuningConfig() and len(space) == len(set(space)) == (1 + 6 * 4 * 3) * 16
    assert len(search_space(dsp=False)) == len(space) // 2  # no DSP scratch to avoid: that knob goes
    one = TuningConfig(stages=1)
    assert one.compile_kwargs()["pass_config"] == {"tinyengine.PatchBasedInference.max_stages": 1}
    assert one.describe() == "stages=1" and "stages" not in TuningConfig().to_json()
    assert TuningConfig().compile_kwargs() == {"disabled_passes": [], "pass_config": {}, "keep_portable_arena": False,
                                               "kernel_variants": {}}
    off = TuningConfig(patch=False, inplace_depthwise=False, memory_schedule=False, keep_portable_arena=True)
    assert off.compile_kwargs() == {"disabled_passes": ["PatchBasedInference", "InplaceDepthwise",
                                                        "MemoryAwareSchedule"],
                                    "pass_config": {}, "keep_portable_arena": True, "kernel_variants": {}}
    grid = TuningConfig(patches=4, halo_cache="columns")
    assert grid.compile_kwargs()["pass_config"] == {"tinyengine.PatchBasedInference.patches": 4,
                                                    "tinyengine.PatchBasedInference.halo_cache": "columns"}
    assert TuningConfig.from_json(grid.to_json()) == grid and grid.key == TuningConfig(True, 4, "columns").key
    assert grid.describe() == "patches=4, halo_cache=columns" and TuningConfig().describe() == "default"
    with pytest.raises(UsageError, match="unknown keys"):
        TuningConfig.from_json({"patch": True, "tile": 3})
    with pytest.raises(UsageError, match="halo_cache"):
        TuningConfig(halo_cache="some")


def _record(sha, latency, arena, core="cortex-m7", fits=True, config=TuningConfig()):
    return make_record(model="m", sha256=sha, board="NUCLEO-F746ZG", core=core, sram_budget=100_000,
                       flash_budget=900_000, runner="qemu:mps2-an500", config=config, latency=latency,
                       unit="instructions", arena_bytes=arena, flash_bytes=40_000, fits=fits,
                       layers=[("abc", 10.0)])


def test_records_round_trip_and_the_best_record(tmp_path):
    path = str(tmp_path / "r.json")
    fast_big = _record("aa", 100.0, 90_000, config=TuningConfig(patch=False))
    slow_small = _record("aa", 150.0, 40_000)
    other_core = _record("aa", 50.0, 10_000, core="cortex-m4")
    unfit = _record("aa", 10.0, 10_000, fits=False)
    other_model = _record("bb", 1.0, 1_000)
    append_records(path, [fast_big, slow_small, other_core, unfit, other_model])
    recs = load_records(path)
    assert len(recs) == 5 and recs[0]["config"]["patch"] is False and recs[0]["tools"]["tvm"]
    assert best_record(recs, "aa", core="cortex-m7")["latency"] == 100.0
    assert best_record(recs, "aa", core="cortex-m7", sram_budget=50_000)["latency"] == 150.0
    assert best_record(recs, "aa", sram_budget=20_000)["core"] == "cortex-m4"
    assert best_record(recs, "cc") is None
    with open(path, "a") as f:
        f.write("{not json\n")
    with pytest.raises(UsageError, match="line 6: not JSON"):
        load_records(path)


def test_compile_applies_the_best_record_of_the_same_model(tmp_path):
    sha = model_sha256(MODEL)
    path = str(tmp_path / "r.json")
    append_records(path, [_record(sha, 100.0, 90_000, config=TuningConfig(patch=False)),
                          _record(sha, 200.0, 5_000)])
    default = te.compile(MODEL, core="cortex-m7")
    assert "tuning" not in default.metadata
    tuned = te.compile(MODEL, core="cortex-m7", tuning_records=path)
    t = tuned.metadata["tuning"]
    assert t["record"] == TuningConfig(patch=False).key and t["latency"] == 100.0
    patch = {p["name"]: p for p in tuned.metadata["passes"]}
    assert "PatchBasedInference" not in patch and tuned.metadata["total_macs"] < default.metadata["total_macs"]
    # Another core, or a budget the record's arena exceeds, and another record (or none) applies.
    within = te.compile(MODEL, core="cortex-m7", tuning_records=path, sram_budget=60_000)
    assert within.metadata["tuning"]["latency"] == 200.0
    none = te.compile(MODEL, core="cortex-m4", tuning_records=path)
    assert none.metadata["tuning"]["record"] is None and "fits cortex-m4" in none.metadata["tuning"]["reason"]
    assert none.files[f"src/{none.name}.c"] == te.compile(MODEL, core="cortex-m4").files[f"src/{none.name}.c"]


def test_tvmc_compile_tuning_records_is_checked_first(tmp_path, capsys):
    bad = tmp_path / "bad.json"
    bad.write_text('{"a": 1}\n')
    out = tmp_path / "out"
    assert cli.main(["compile", MODEL, "-o", str(out), "--tuning-records", str(bad)]) == 2
    assert "not a version-1 tuning record" in capsys.readouterr().err and not out.exists()
    assert cli.main(["compile", MODEL, "-o", str(out), "--tuning-records", str(tmp_path / "none.json")]) == 2
    assert "no such file" in capsys.readouterr().err and not out.exists()
    empty = tmp_path / "r.json"
    append_records(str(empty), [_record("00", 1.0, 1)])
    assert cli.main(["compile", MODEL, "-o", str(out), "--tuning-records", str(empty)]) == 0
    assert "warning: no record of this model" in capsys.readouterr().err


def test_tvmc_tune_refuses_bad_input_before_any_work(tmp_path, capsys):
    mine = tmp_path / "mine.json"
    mine.write_text('{"mine": 1}\n')
    base = ["tune", MODEL, "--target-tinyengine-board", "NUCLEO-F746ZG"]
    assert cli.main(base + ["-o", str(mine)]) == 2
    assert "is not a tuning-records file" in capsys.readouterr().err and mine.read_text() == '{"mine": 1}\n'
    assert cli.main(base + ["-o", str(tmp_path / "r.json"), "--runner", "rpc"]) == 2
    assert "--rpc-tracker" in capsys.readouterr().err
    assert cli.main(["tune", str(tmp_path / "no.tflite"), "--target-tinyengine-board", "NUCLEO-F746ZG",
                     "-o", str(tmp_path / "r.json")]) == 2
    assert not (tmp_path / "r.json").exists()


@needs_qemu
@pytest.mark.parametrize("strategy", ["random", "xgb"])
def test_tvmc_tune_end_to_end(strategy, tmp_path, capsys, tflm):
    """A few trials on the default CNN for a board with room: the default compile is measured first,
    records are written, the best is never slower, and compiling with the records gives it, bit-exact."""
    from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

    records = tmp_path / "records.json"
    assert cli.main(["tune", MODEL, "--target-tinyengine-board", "NUCLEO-F746ZG", "--trials", "4", "--pool", "10",
                     "--strategy", strategy, "-o", str(records), "--no-progress"]) == 0
    text = capsys.readouterr().out
    assert "tuned default_mobilenet_int8 for NUCLEO-F746ZG on qemu:mps2-an500" in text and "best:" in text
    recs = load_records(str(records))
    assert len(recs) == 4 and recs[0]["config"] == TuningConfig().to_json()
    assert all(r["fits"] and r["latency"] > 0 and r["unit"] == "instructions" and r["layers"] for r in recs)
    best = min(recs, key=lambda r: r["latency"])
    assert best["latency"] <= recs[0]["latency"]
    # The records apply at compile time, and the tuned build is still bit-exact with TFLM.
    out = tmp_path / "out"
    assert cli.main(["compile", MODEL, "-o", str(out), "--target-tinyengine-board", "NUCLEO-F746ZG",
                     "--tuning-records", str(records)]) == 0
    assert f"record {best['config_key']}" in capsys.readouterr().out
    meta = json.load(open(out / "metadata.json"))
    assert meta["tuning"]["record"] == best["config_key"]
    compiled = te.compile(MODEL, core="cortex-m7", tuning_records=str(records))
    cases = [random_inputs(compiled.metadata["inputs"], s) for s in (1, 2)]
    assert_matches_tflm(compiled, open(MODEL, "rb").read(), cases)
    # A second run appends to the same records file.
    assert cli.main(["tune", MODEL, "--target-tinyengine-board", "NUCLEO-F746ZG", "--trials", "1", "--pool", "1",
                     "-o", str(records), "--no-progress"]) == 0
    assert len(load_records(str(records))) == 5
    assert np.isfinite(best["latency"])


def test_rpc_measurer_refuses_figures_from_a_serial_board(tmp_path):
    """A board served over RPC runs the firmware flashed on it, not the candidate: never a tuning figure."""
    from tinyengine_tvm.runtime.profile import StepProfile
    from tinyengine_tvm.runtime.rpc import MeasureResult
    from tinyengine_tvm.tune.measure import RpcMeasurer

    project = str(tmp_path / "p")
    te.compile(MODEL).export(project)
    meta = json.load(open(os.path.join(project, "metadata.json")))
    prof = StepProfile.from_counters(meta, [10] * len(meta["ops"]), inferences=1, unit="cycles", runner="board",
                                     mark_cost=0)

    class Pool:
        def __init__(self, device):
            self.device = device

        def measure_many(self, jobs):
            assert all(j.profile for j in jobs)
            return [MeasureResult(outputs={}, report={"rpc": {"device": self.device}, "flash_bytes": 1}, profile=prof)
                    for _ in jobs]

    m = RpcMeasurer.__new__(RpcMeasurer)
    m.key, m.seed = "k", 0
    m.pool = Pool("serial")
    (got,) = m.measure_many([project])
    assert got.latency is None and "flashed firmware" in got.error
    m.pool = Pool("qemu")
    (got,) = m.measure_many([project])
    assert got.error is None and got.latency == 10 * len(meta["ops"]) and got.unit == "cycles"


def test_per_layer_kernel_variants_in_the_config():
    cfg = TuningConfig(patches=2).with_kernels({"conv_b": "w16", "conv_a": "w8", "dw": "dsp"})
    assert cfg.kernels == (("conv_a", "w8"), ("conv_b", "w16"))  # sorted; the default variant is left out
    assert cfg.compile_kwargs()["kernel_variants"] == {"conv_a": "w8", "conv_b": "w16"}
    assert TuningConfig.from_json(cfg.to_json()) == cfg and cfg.key != TuningConfig(patches=2).key
    assert cfg.describe() == "patches=2, kernels: 1 w16 1 w8"
    # A plan without per-layer choices keeps the JSON (and key) it had before they existed.
    assert "kernels" not in TuningConfig().to_json()
    with pytest.raises(UsageError, match="kernels must map"):
        TuningConfig.from_json({"kernels": ["w16"]})


def test_layer_costs_carry_over_by_signature_from_any_models_records():
    from tinyengine_tvm.tune.records import known_layer_costs
    from tinyengine_tvm.tune.tuner import Candidate, _rank

    recs = [_record("aa", 5.0, 1), _record("bb", 7.0, 1), _record("cc", 1.0, 1, core="cortex-m4")]
    recs[1]["layers"] = [["abc", 30.0], ["def", 4.0]]
    recs.append(dict(_record("dd", None, 1), layers=[["zzz", 1.0]]))  # failed: no figures
    assert known_layer_costs(recs, "cortex-m7", "instructions") == {"abc": 30.0, "def": 4.0}

    class Flat:  # a cost model that predicts 100 for every layer
        def predict(self, feats):
            return [100.0] * len(feats)

    a = Candidate(TuningConfig(), 0, 0, 0, "a", layers=[("abc", {}), ("new", {})])
    b = Candidate(TuningConfig(patch=False), 0, 0, 0, "b", layers=[("x", {}), ("y", {})])
    queue = [b, a]
    _rank(queue, Flat(), {"abc": 30.0})
    assert queue == [a, b] and a.predicted == 130.0 and b.predicted == 200.0


@needs_qemu
def test_kernel_search_measures_variants_once_and_reuses_them(tmp_path):
    """The per-layer kernel search on an MCUNet-style CNN: the int16-filter variant is measured,
    the result is never slower than the plan search alone, and a second run with the first's
    records as priors does not measure that variant again."""
    from tinyengine_tvm.modelgen import zoo
    from tinyengine_tvm.tune.tuner import tune

    model = tmp_path / "mcunet.tflite"  # pointwise filters over W16_MAX_BYTES, stored int8 by default
    model.write_bytes(zoo.mcunet_vww(resolution=48, width=0.5, seed=3))
    first, second = str(tmp_path / "a.json"), str(tmp_path / "b.json")
    kw = dict(trials=6, pool_size=8, strategy="random", progress=False)
    r1 = tune(str(model), "NUCLEO-F746ZG", records_path=first, **kw)
    ks = r1.kernel_search
    assert ks is not None and ks["variants"]["w16"] == "measured", ks
    # Wider filters pay on this model: the best has per-layer variants, and the combination's
    # latency is what the per-layer costs predicted (QEMU: within an instruction per step).
    assert r1.best.config.kernels and ks["layers_changed"] > 0
    if "latency" in ks:
        assert abs(ks["latency"] - ks["predicted"]) <= len(r1.best.step_costs), ks
    assert any(r["config"].get("kernels") for r in load_records(first))
    r2 = tune(str(model), "NUCLEO-F746ZG", records_path=second, prior_records=[first], **kw)
    assert "known from earlier measurements" in r2.kernel_search["variants"]["w16"], r2.kernel_search
    # QEMU counts each step to within an instruction: equal plans may differ by that much
    assert r2.best.latency <= r1.best.latency + len(r1.best.step_costs)


def test_the_cost_model_learns_the_known_layers_of_the_pool():
    from tinyengine_tvm.tune.cost_model import LayerCostModel
    from tinyengine_tvm.tune.tuner import Candidate, _learn_known

    rows = [({"macs": float(m), "kernel=te_conv2d_s8": 1.0}, 10.0 * m) for m in range(1, 40)]
    model = LayerCostModel(core="cortex-m7").fit([f for f, _ in rows], [c for _, c in rows])
    layer = {"macs": 20.5, "kernel=te_conv2d_s8": 1.0}  # a layer the model never saw
    before = float(model.predict([layer])[0])
    pool = [Candidate(TuningConfig(), 0, 0, 0, "a", layers=[("sig20", layer), ("other", {"macs": 3.0})])]
    learned = _learn_known(model, pool, {"sig20": 5_000.0, "absent": 1.0}, "cortex-m7")
    after = float(learned.predict([layer])[0])
    assert abs(after - 5_000.0) < abs(before - 5_000.0) and len(learned.rows) == len(rows) + 1
    assert _learn_known(model, pool, {"absent": 1.0}, "cortex-m7") is model  # nothing of the pool known


class _FarmOf:
    """A measurer that runs ``parallel`` measurements at once: every step costs its MACs + 100
    (no device); it records the batches it was given."""

    unit = None

    def __init__(self, parallel=None):
        if parallel is not None:
            self.parallel = parallel
        self.batches = []

    name = "fake-farm"

    def measure_many(self, dirs):
        from tinyengine_tvm.tune.measure import Measurement

        self.batches.append(list(dirs))
        out = []
        for d in dirs:
            ops = json.load(open(os.path.join(d, "metadata.json")))["ops"]
            costs = [float(o["macs"] + 100) for o in ops]
            out.append(Measurement(sum(costs), "fake_cycles", costs))
        return out


@pytest.mark.parametrize("parallel", [None, 3])
def test_a_farm_measures_the_best_ranked_plans_beside_the_default(parallel):
    """One measurer: the default alone first (the cost model learns from it before ranking the
    rest); a farm of three: the default and the two best-ranked plans in one round."""
    from tinyengine_tvm.tune.tuner import tune

    farm = _FarmOf(parallel)
    r = tune(MODEL, "NUCLEO-F746ZG", trials=6, pool_size=10, measurer=farm, progress=False, kernel_search=False)
    assert len(farm.batches[0]) == (1 if parallel is None else 3)
    assert farm.batches[0][0].endswith(r.default.config.key)
    assert sum(len(b) for b in farm.batches) == len(r.measured) <= 6 and r.unit == "fake_cycles"
