#!/usr/bin/env python3
"""Tuned against default compiles, on QEMU Cortex-M7 (mps2-an500, exact instruction counts).

For each model:

1. the default compile for the board (``tvmc compile --target-tinyengine-board``),
   measured: its arena is "today's" smallest feasible budget;
2. ``tvmc tune`` with the board's budget (NUCLEO-F746ZG: 320 KB of SRAM), and
   with today's arena as the budget (tuned must never be slower there);
3. with ``--curves``, the plan search (no kernel search) ordered by the XGBoost
   cost model against random order. Every distinct plan of the same pool is
   measured once, so random order is judged by its expectation over all orders,
   not by one lucky or unlucky seed: the expected number of measurements it
   needs to reach a plan as fast as the best the cost model's order found
   (within 0.01%; exact: 1 + (n + 1) / (k + 1) for k such plans among the n besides the
   default, which is measured first) and its mean best-so-far curve (over
   2,000 shuffles of the measured latencies);
4. the tuned configuration's outputs against TFLM (bit-exact), on the host.

    PYTHONPATH=python python benchmarks/tune.py [--model M.tflite ...] [--trials 16] [--curves]

Default models: vww_96_int8, person_detect and pretrainedResnet_quant of
../shared/models (skipped with a note when absent), and two CNNs of the
project's zoo.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))


def _models(args) -> list:
    from tinyengine_tvm.testing import shared_models_dir

    if args.model:
        return args.model
    out = []
    shared = shared_models_dir()
    for name in ("vww_96_int8", "person_detect", "pretrainedResnet_quant"):
        p = os.path.join(shared, f"{name}.tflite") if shared else None
        if p and os.path.isfile(p):
            out.append(p)
        else:
            print(f"note: {name} not found (../shared/models absent): skipped")
    return out + _zoo(args.work)


def _zoo(work: str) -> list:
    """Two writer-built CNNs shaped like the zoo's real models (random weights), as files:
    MCUNet's VWW network at 80x80 and MobileNetV2 (NCHW input, as exported from PyTorch) at 96x96."""
    from tinyengine_tvm.modelgen import zoo

    out = []
    for name, data in (("zoo_mcunet_vww80", zoo.mcunet_vww(resolution=80)),
                       ("zoo_mobilenetv2_96_w035", zoo.mobilenetv2_nchw(resolution=96, width=0.35, classes=10))):
        path = os.path.join(work, f"{name}.tflite")
        with open(path, "wb") as f:
            f.write(data)
        out.append(path)
    return out


def _check_tflm(model: str, config, core: str) -> str:
    import tinyengine_tvm as te
    from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

    try:
        compiled = te.compile(model, core=core, **config.compile_kwargs())
        cases = [random_inputs(compiled.metadata["inputs"], s) for s in (1, 2)]
        assert_matches_tflm(compiled, open(model, "rb").read(), cases)
    except AssertionError as exc:
        return f"DIFFERS: {str(exc).splitlines()[0]}"
    except ImportError:
        return "tflite-micro not installed"
    return "bit-exact"


def _curves(model: str, board, args) -> None:
    """The cost model's order against random order on one pool (see the module docstring)."""
    import numpy as np

    from tinyengine_tvm.tune.tuner import tune

    pool = args.pool or max(4 * args.trials, 24)
    xgb = tune(model, board.name, trials=args.trials, pool_size=pool, seed=args.seed, progress=False,
               strategy="xgb", kernel_search=False)
    every = tune(model, board.name, trials=pool, pool_size=pool, seed=args.seed, progress=False,
                 strategy="random", kernel_search=False)
    base = every.default.latency
    rest = np.array([c.latency for c in every.measured[1:] if c.latency is not None])
    best = min(xgb.curve)
    # "As fast" allows 0.01%: QEMU counts each step to within an instruction, so equal
    # plans can differ by a few instructions in millions.
    good = best * (1 + 1e-4)
    reach = next(i + 1 for i, v in enumerate(xgb.curve) if v <= good)
    k, n = int((rest <= good).sum()), len(rest)
    expected = 1 + (n + 1) / (k + 1) if base > good else 1.0
    rng = np.random.default_rng(args.seed)
    m = len(xgb.curve)
    mean = np.zeros(m)
    for _ in range(2000):
        order = np.concatenate([[base], rng.permutation(rest)])[:m]
        mean[:len(order)] += np.minimum.accumulate(order)
    mean /= 2000
    print(f"  {n + 1} distinct plans in the pool of {pool}; the best of all {min(rest.min(), base) / base:.3f}x the "
          f"default", flush=True)
    print(f"  xgb     reaches {best / base:.3f}x after {reach} measurements; curve "
          + " ".join(f"{v / base:.3f}" for v in xgb.curve), flush=True)
    print(f"  random  reaches it after {expected:.1f} measurements on average ({k} of {n} plans are as fast); "
          f"mean curve " + " ".join(f"{v / base:.3f}" for v in mean), flush=True)
    print(f"  xgb needs {reach / expected:.2f}x the measurements random order needs", flush=True)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", action="append", help="model file (repeatable; default: see above)")
    ap.add_argument("--board", default="NUCLEO-F746ZG")
    ap.add_argument("--trials", type=int, default=16)
    ap.add_argument("--pool", type=int, default=None)
    ap.add_argument("--curves", action="store_true", help="also compare the cost model's order with random order")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None)
    ap.add_argument("--no-narrow", action="store_true",
                    help="tune without narrow_at_peak twins of the plans over budget")
    ap.add_argument("--tight-only", action="store_true", help="only the tight-budget run (its best plan checked)")
    args = ap.parse_args(argv)

    from tinyengine_tvm.targets import get_board
    from tinyengine_tvm.tune.tuner import tune

    board = get_board(args.board)
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-tune-") as tmp:
        args.work = args.work or tmp
        for model in _models(args):
            name = os.path.splitext(os.path.basename(model))[0]
            t0 = time.monotonic()
            narrow = not args.no_narrow
            if args.tight_only:
                from tinyengine_tvm import compile as compile_model

                arena = compile_model(model, core=board.core).metadata["memory"]["arena_bytes"]
                tight = tune(model, board.name, sram_budget=arena, trials=args.trials, pool_size=args.pool,
                             seed=args.seed, progress=False, strategy="xgb", narrow=narrow)
                r = tight
            else:
                r = tune(model, board.name, trials=args.trials, pool_size=args.pool, seed=args.seed, progress=False,
                         strategy="xgb", narrow=narrow)
                tight = tune(model, board.name, sram_budget=r.default.arena_bytes, trials=args.trials,
                             pool_size=args.pool, seed=args.seed, progress=False, strategy="xgb", narrow=narrow)
            exact = _check_tflm(model, r.best.config, board.core)
            print(f"  tight: {tight.pool} compiled, {tight.feasible} fit; best {tight.best.config.describe()}: "
                  f"{tight.best.latency:,.0f} instr, arena {tight.best.arena_bytes:,} B (budget "
                  f"{tight.sram_budget:,}); default {tight.default.latency:,.0f}", flush=True)
            rows.append((name, r, tight, exact, time.monotonic() - t0))
            print(f"{name}: {time.monotonic() - t0:.0f} s", flush=True)
            if args.curves:
                _curves(model, board, args)
    print(f"\nQEMU {board.core} instructions per inference, {board.name} budget vs default compile "
          f"(--target-tinyengine-board {board.name}); 'tight' = today's arena as the budget")
    print(f"{'model':<24} {'default instr':>14} {'arena B':>9} {'tuned instr':>13} {'arena B':>9} {'ratio':>7} "
          f"{'tight ratio':>11} {'TFLM':>10}  best configuration")
    for name, r, tight, exact, _ in rows:
        print(f"{name:<24} {r.default.latency:>14,.0f} {r.default.arena_bytes:>9,} {r.best.latency:>13,.0f} "
              f"{r.best.arena_bytes:>9,} {r.best.latency / r.default.latency:>7.3f} "
              f"{tight.best.latency / tight.default.latency:>11.3f} {exact:>10}  {r.best.config.describe()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
