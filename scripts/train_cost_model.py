#!/usr/bin/env python3
"""Train the per-layer cost models that ship with the package
(python/tinyengine_tvm/data/cost_model/<core>.json) from the project's own
profiling runs on QEMU.

Data: writer-built models only (the zoo at small sizes, the default model and
a few random CNNs; never ../shared's models), each compiled under several
configurations that change the steps (DSP or portable kernels, patch-based
inference off / default / forced patch counts, in-place depthwise off), built
with profiling marks and run once on QEMU (-icount: instruction counts, exact
and deterministic) for Cortex-M7 (mps2-an500) and Cortex-M4 (mps2-an386).
Every step is a row (signature, features, instructions); steps of one run
sharing a signature are merged into one row (their mean cost).

Rows are cached in a JSON-lines file, one line per (core, model,
configuration), so retraining (other hyper-parameters, a held-out set) does not
measure again; a line recorded with other features is measured again.

Evaluation: leave-one-model-out (every training model held out in turn, whole:
the model is fit on the others' rows and ranks the held-out model's layers),
Spearman's rank correlation of predicted against measured cost, over all the
held-out model's layers and over those whose signature no training model has.
../shared's kws_ref_model and vww_96_int8 (when present) are measured and
ranked by the final models as EVALUATION ONLY: they never enter training.

    PYTHONPATH=python python scripts/train_cost_model.py            # measure what is missing, train, write
    PYTHONPATH=python python scripts/train_cost_model.py --no-write # evaluate only
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Dict, List, Tuple

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(ROOT, "python"))

from tinyengine_tvm.tune.cost_model import LayerCostModel, shipped_path, spearman  # noqa: E402
from tinyengine_tvm.tune.features import FEATURES_VERSION, graph_layers  # noqa: E402

BOARDS = {"cortex-m7": "mps2-an500", "cortex-m4": "mps2-an386"}
SHARED_EVAL = ("kws_ref_model.tflite", "vww_96_int8.tflite")
DEFAULT_CACHE = os.path.join(os.path.expanduser("~"), ".cache", "tinyengine-tvm", "cost_model_rows.jsonl")

#: Compile configurations: (name, kernels: "dsp" or "portable", disabled passes, pass config).
CONFIGS = [
    ("dsp", "dsp", [], {}),
    ("dsp_nopatch", "dsp", ["PatchBasedInference"], {}),
    # Forced patch counts; max_mac_overhead 1.0 lets the pass accept a split that
    # recomputes more halo than its default 10% (it still declines one that
    # does not lower the peak, so some models stay unpatched here).
    ("dsp_p2_halo_all_mac1", "dsp", [], {"tinyengine.PatchBasedInference.patches": 2,
                                         "tinyengine.PatchBasedInference.halo_cache": "all",
                                         "tinyengine.PatchBasedInference.max_mac_overhead": 1.0}),
    ("dsp_p4_nohalo_noinplace_mac1", "dsp", ["InplaceDepthwise"],
     {"tinyengine.PatchBasedInference.patches": 4, "tinyengine.PatchBasedInference.halo_cache": "off",
      "tinyengine.PatchBasedInference.max_mac_overhead": 1.0}),
    ("portable", "portable", [], {}),
    ("portable_nopatch_noinplace", "portable", ["PatchBasedInference", "InplaceDepthwise"], {}),
]


# ------------------------------------------------------------------ models
def random_cnn(seed: int, resolution: int, width: float) -> bytes:
    """A random MobileNet-like int8 CNN from the zoo's building blocks: stem,
    3-5 inverted residual blocks of random expansion, kernel (3/5/7), stride,
    optionally squeeze-excite, sometimes a max pool, then the classifier tail."""
    from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
    from tinyengine_tvm.modelgen.zoo import classifier_tail, inverted_residual

    rng = np.random.default_rng(seed)
    g = QuantizedGraph(seed, 2, description=f"cost model training CNN (seed {seed}, random weights)")
    x = g.input((1, resolution, resolution, 3), -1.0, 1.0, name="input")
    c = int(8 * max(1, round(16 * width / 8)))
    x = g.conv2d(x, c, (3, 3), (2, 2), (1, 1), "SAME", "RELU6", True, prefix="stem")
    if rng.random() < 0.5:
        x = g.max_pool(x, (2, 2), (2, 2), "VALID", prefix="pool0")
    for b in range(int(rng.integers(3, 6))):
        stride = int(rng.choice([1, 2])) if x.shape[1] > 4 else 1
        out_c = int(8 * max(1, round(c * rng.choice([1.0, 1.5, 2.0]) / 8)))
        se = 0.25 if rng.random() < 0.3 else None
        x = inverted_residual(g, x, out_c, int(rng.choice([1, 3, 4, 6])), int(rng.choice([3, 5, 7])), stride,
                              f"block{b}", se)
        c = out_c
    x = classifier_tail(g, x, int(rng.integers(2, 12)))
    return g.finish(x)


def training_models() -> Dict[str, callable]:
    """name -> builder of TFLite bytes: small zoo members, the default CNN, random CNNs."""
    from tinyengine_tvm.modelgen import zoo
    from tinyengine_tvm.modelgen.default_model import build_default_model

    return {
        "default_cnn": build_default_model,
        "vww_64_w05": lambda: zoo.mcunet_vww(resolution=64, width=0.5, seed=1),
        "vww_80_w035": lambda: zoo.mcunet_vww(resolution=80, width=0.35, seed=2),
        "se_64_w035": lambda: zoo.mcunet_se_imagenet(resolution=64, width=0.35, seed=3, classes=10),
        "fpn_64_w05": lambda: zoo.mcunet_fpn_detector(resolution=(64, 64), width=0.5, seed=4),
        "mbv2_64_w035": lambda: zoo.mobilenetv2_nchw(resolution=64, width=0.35, seed=5, classes=10),
        "kws_transformer": lambda: zoo.kws_transformer(seed=6),
        "random_a": lambda: random_cnn(11, 48, 0.5),
        "random_b": lambda: random_cnn(12, 64, 0.75),
        "random_c": lambda: random_cnn(13, 40, 1.0),
    }


# --------------------------------------------------------------- measuring
def _measure(job: Tuple[str, str, str, str, list, dict, List[str]]) -> List[dict]:
    """Compile one (model, configuration), then profile it on each core's board.
    One cache record per core: the run's rows merged by signature."""
    import tinyengine_tvm as te
    from tinyengine_tvm.runtime.device import QemuUartRunner
    from tinyengine_tvm.testing import random_inputs

    model, path, config, kernels, disabled, pass_config, cores = job
    records = []
    compiled = {}
    with tempfile.TemporaryDirectory(prefix="te_cost_") as tmp:
        for core in cores:
            t0 = time.time()
            target = core if kernels == "dsp" else None
            try:
                # The portable build is the same for every core: compile it once.
                if target not in compiled:
                    compiled[target] = te.compile(path, core=target, disabled_passes=disabled,
                                                  pass_config=pass_config)
                cm = compiled[target]
                project = os.path.join(tmp, f"p_{target}")
                if not os.path.exists(project):
                    cm.export(project)
                with QemuUartRunner(project, BOARDS[core], os.path.join(tmp, f"b_{core}"), profile=True) as r:
                    r.run(random_inputs(cm.metadata["inputs"], 0), number=1)
                    prof = r.profile()
            except Exception as e:  # noqa: BLE001 -- one failed build must not lose the others
                records.append({"core": core, "model": model, "config": config, "error": f"{type(e).__name__}: {e}",
                                "features_version": FEATURES_VERSION})
                continue
            merged: Dict[str, dict] = {}
            for (sig, feats), step in zip(graph_layers(cm.graph), prof.steps):
                row = merged.setdefault(sig, {"signature": sig, "kernel": step.kernel, "features": feats,
                                              "costs": []})
                row["costs"].append(step.cost)
            rows = [{"signature": r["signature"], "kernel": r["kernel"], "features": r["features"],
                     "cost": float(np.mean(r["costs"])), "steps": len(r["costs"])} for r in merged.values()]
            records.append({"core": core, "model": model, "config": config, "features_version": FEATURES_VERSION,
                            "steps": len(prof.steps), "total": prof.steps_total, "seconds": time.time() - t0,
                            "rows": rows})
    return records


def load_cache(path: str) -> Dict[Tuple[str, str, str], dict]:
    """(core, model, config) -> record, for records of the current features."""
    out = {}
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                rec = json.loads(line)
                if rec.get("features_version") == FEATURES_VERSION:
                    out[(rec["core"], rec["model"], rec["config"])] = rec
    return out


def measure_missing(models: Dict[str, str], cores: List[str], cache_path: str, jobs: int,
                    only_configs: Dict[str, List[str]]) -> None:
    """Measure every (model, configuration) some core has no cached record of; append to the cache.
    ``only_configs``: model -> the configurations to measure it under (default all)."""
    cache = load_cache(cache_path)
    todo = []
    for model, path in models.items():
        for name, kernels, disabled, pc in CONFIGS:
            if model in only_configs and name not in only_configs[model]:
                continue
            missing = [c for c in cores if (c, model, name) not in cache]
            if missing:
                todo.append((model, path, name, kernels, disabled, pc, missing))
    if not todo:
        return
    print(f"measuring {len(todo)} (model, configuration) builds on {', '.join(cores)} with {jobs} workers",
          flush=True)
    os.makedirs(os.path.dirname(os.path.abspath(cache_path)), exist_ok=True)
    t0 = time.time()
    with ProcessPoolExecutor(max_workers=jobs) as pool, open(cache_path, "a") as out:
        for k, records in enumerate(pool.map(_measure, todo)):
            for rec in records:
                out.write(json.dumps(rec, separators=(",", ":")) + "\n")
                out.flush()
                what = rec.get("error") or f"{rec['steps']} steps, {len(rec['rows'])} layers, {rec['seconds']:.0f}s"
                print(f"  [{k + 1}/{len(todo)}] {rec['core']} {rec['model']} {rec['config']}: {what}", flush=True)
    print(f"measured in {time.time() - t0:.0f}s", flush=True)


# ---------------------------------------------------------------- training
def rows_of(cache, core: str, models) -> Dict[str, dict]:
    """signature -> row (mean cost over every run that measured it) for ``core``'s
    records of ``models`` under the current CONFIGS (a cache may hold others)."""
    configs = {c[0] for c in CONFIGS}
    out: Dict[str, dict] = {}
    for (c, model, config), rec in sorted(cache.items()):
        if c != core or model not in models or config not in configs or "rows" not in rec:
            continue
        for r in rec["rows"]:
            row = out.setdefault(r["signature"], {"features": r["features"], "costs": [], "models": set()})
            row["costs"].append(r["cost"])
            row["models"].add(model)
    for row in out.values():
        row["cost"] = float(np.mean(row["costs"]))
    return out


def fit_rows(rows: Dict[str, dict], core: str) -> LayerCostModel:
    """A model fit on ``rows`` (in signature order: the same rows, the same model)."""
    sigs = sorted(rows)
    return LayerCostModel(core).fit([rows[s]["features"] for s in sigs], [rows[s]["cost"] for s in sigs])


def evaluate(model: LayerCostModel, rows: Dict[str, dict], seen: set) -> dict:
    """How ``model`` ranks ``rows``: Spearman over all of them ("rho", "n"), over
    those whose signature is not in ``seen`` ("rho_unseen", "n_unseen"), over the
    layers that do MACs ("rho_macs", "n_macs": convolutions, matmuls: the
    ranking a tuner needs, without the easy spread between a copy and a
    convolution), and the median factor between predicted and measured cost
    ("factor", over layers of at least 100 instructions)."""
    sigs = sorted(rows)
    pred = model.predict([rows[s]["features"] for s in sigs])
    meas = np.array([rows[s]["cost"] for s in sigs])

    def rho(idx):
        return spearman(pred[idx], meas[idx]) if len(idx) > 1 else float("nan")

    new = [i for i, s in enumerate(sigs) if s not in seen]
    macs = [i for i, s in enumerate(sigs) if rows[s]["features"].get("macs", 0) > 0]
    big = meas >= 100
    factor = float(np.median(np.exp(np.abs(np.log(np.maximum(pred[big], 1) / meas[big]))))) if big.any() \
        else float("nan")
    return {"rho": rho(list(range(len(sigs)))), "n": len(sigs), "rho_unseen": rho(new), "n_unseen": len(new),
            "rho_macs": rho(macs), "n_macs": len(macs), "factor": factor}


def _line(label: str, e: dict) -> str:
    """One row of the evaluation table."""
    return (f"{label:<34} {e['n']:>6} {e['rho']:>6.3f} {e['n_unseen']:>7} {e['rho_unseen']:>6.3f} "
            f"{e['n_macs']:>6} {e['rho_macs']:>6.3f} {e['factor']:>7.2f}")


def main(argv=None) -> int:
    """Measure (what the cache lacks), evaluate, train and write the shipped models."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cache", default=DEFAULT_CACHE, help=f"JSON-lines row cache (default {DEFAULT_CACHE})")
    ap.add_argument("--cores", default="cortex-m7,cortex-m4")
    ap.add_argument("--jobs", type=int, default=2, help="parallel compile+QEMU workers")
    ap.add_argument("--models", default="", help="comma-separated subset of the training models")
    ap.add_argument("--no-shared", action="store_true", help="skip the ../shared evaluation models")
    ap.add_argument("--no-write", action="store_true", help="evaluate only; do not write the shipped models")
    args = ap.parse_args(argv)
    t_start = time.time()
    cores = [c.strip() for c in args.cores.split(",") if c.strip()]

    builders = training_models()
    if args.models:
        builders = {k: builders[k] for k in args.models.split(",")}
    model_dir = os.path.join(os.path.dirname(os.path.abspath(args.cache)), "models")
    os.makedirs(model_dir, exist_ok=True)
    paths = {}
    for name, build in builders.items():
        paths[name] = os.path.join(model_dir, f"{name}.tflite")
        data = build()
        if not os.path.exists(paths[name]) or open(paths[name], "rb").read() != data:
            with open(paths[name], "wb") as f:
                f.write(data)
    shared = {}
    shared_dir = os.path.join(ROOT, "..", "shared", "models")
    if not args.no_shared:
        for fn in SHARED_EVAL:
            p = os.path.join(shared_dir, fn)
            if os.path.exists(p):
                shared["shared:" + fn[:-len(".tflite")]] = os.path.abspath(p)
    # The evaluation models are larger: measured only as compiled by default, DSP and portable.
    measure_missing({**paths, **shared}, cores, args.cache, args.jobs,
                    {m: ["dsp", "portable"] for m in shared})
    t_measured = time.time()

    cache = load_cache(args.cache)
    errors = [(k, r["error"]) for k, r in cache.items() if "error" in r and k[1] in {**paths, **shared}]
    for k, e in errors:
        print(f"  (no rows for {' '.join(k)}: {e})")
    names = sorted(paths)
    print()
    print("Held-out Spearman rank correlation, predicted vs measured instructions per layer")
    print("(leave one model out: fit on the other training models' layers, rank the held-out model's;")
    print(" 'unseen' = the held-out model's layers whose signature no training model has;")
    print(" 'MACs' = its layers that do multiply-accumulates; 'factor' = median of max(pred/meas, meas/pred))")
    header = (f"{'core / held-out model':<34} {'layers':>6} {'rho':>6} {'unseen':>7} {'rho':>6} {'MACs':>6} "
              f"{'rho':>6} {'factor':>7}")
    print(header)
    summary = {}
    for core in cores:
        evals = []
        for held in names:
            test = rows_of(cache, core, {held})
            train = rows_of(cache, core, set(names) - {held})
            if len(test) < 2 or not train:
                continue
            e = evaluate(fit_rows(train, core), test, set(train))
            evals.append(e)
            print(_line(f"{core} {held}", e))
        if evals:
            mean = {k: float(np.nanmean([e[k] for e in evals])) for k in evals[0]}
            summary[core] = mean
            print(_line(f"{core} mean of {len(evals)} held out", {**mean, "n": sum(e["n"] for e in evals),
                                                                 "n_unseen": sum(e["n_unseen"] for e in evals),
                                                                 "n_macs": sum(e["n_macs"] for e in evals)}))
    print()
    t_cv = time.time()
    for core in cores:
        all_rows = rows_of(cache, core, set(names))
        if not all_rows:
            print(f"{core}: no rows, nothing trained")
            continue
        t0 = time.time()
        final = fit_rows(all_rows, core)
        final.meta.update(models=names, configs=[c[0] for c in CONFIGS], board=BOARDS[core], unit="instructions",
                          trained_on="writer-built models profiled on QEMU -icount (scripts/train_cost_model.py)")
        if summary.get(core):
            final.meta["held_out_spearman"] = round(summary[core]["rho"], 4)
            final.meta["held_out_spearman_macs"] = round(summary[core]["rho_macs"], 4)
        print(f"{core}: final model on {len(all_rows)} layers (unique signatures) in {time.time() - t0:.1f}s; "
              f"../shared models ranked by it (never trained on):")
        for model in shared:
            rows = rows_of(cache, core, {model})
            if len(rows) > 1:
                e = evaluate(final, rows, set(all_rows))
                print(_line(f"  EVALUATION ONLY {model[len('shared:'):]}", e))
                final.meta.setdefault("evaluation_only_spearman", {})[model] = round(e["rho"], 4)
        if not args.no_write:
            out = shipped_path(core)
            os.makedirs(os.path.dirname(out), exist_ok=True)
            final.save(out)
            print(f"  wrote {os.path.relpath(out, ROOT)} ({os.path.getsize(out) / 1024:.0f} KiB)")
    t_end = time.time()
    print(f"\ntimings: measuring {t_measured - t_start:.0f}s, cross-validation {t_cv - t_measured:.0f}s, "
          f"final training and writing {t_end - t_cv:.0f}s, total {t_end - t_start:.0f}s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
