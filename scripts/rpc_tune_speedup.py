"""Wall time of one whole ``tvmc tune --runner rpc`` run on a local farm of 1 vs N servers.

For each farm size it starts a TVM RPC tracker and that many
``tinyengine_tvm.rpc_server`` servers on loopback (each with its own fresh
cache, so every run builds every candidate's firmware), runs the tuner with
the same seed, trials and pool, and prints the run's wall time, what it
measured and the load average (the machine may be shared):

    PYTHONPATH=python python scripts/rpc_tune_speedup.py --firmware zephyr \\
        --zephyr-workspace ~/.cache/tinyengine-tvm/zephyr-4.3.0

``--firmware zephyr`` serves the project's Zephyr application in QEMU (a
firmware build per candidate, as a board farm builds and flashes one);
``baremetal`` the bare-metal firmware, whose measurements take a fraction of
a second, so the tuner's own compile of the pool dominates.
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

from tinyengine_tvm.testing.local_farm import local_farm  # noqa: E402
from tinyengine_tvm.tune import tune  # noqa: E402
from tinyengine_tvm.tune.measure import RpcMeasurer  # noqa: E402


def run_farm(servers: int, args, tmp: str) -> dict:
    """Start a farm of ``servers`` servers, tune through it, stop it; the run's figures."""
    extra = ["--firmware", args.firmware]
    if args.firmware == "zephyr":
        extra += ["--zephyr-workspace", args.zephyr_workspace]
    key = f"farm{servers}"
    with local_farm(servers, key, os.path.join(tmp, key), os.path.join(tmp, f"{key}.log"), extra,
                    register_timeout=180) as tracker:
        load0 = os.getloadavg()[0]
        t = time.perf_counter()
        result = tune(args.model, args.board, trials=args.trials, pool_size=args.pool, seed=args.seed,
                      measurer=RpcMeasurer(tracker, key, seed=args.seed), progress=False,
                      records_path=os.path.join(tmp, f"{key}.jsonl"))
        wall = time.perf_counter() - t
    return dict(servers=servers, wall=wall, measured=len(result.measured), best=result.best.latency,
                default=result.default.latency, unit=result.unit, load=(load0, os.getloadavg()[0]))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=os.path.join(HERE, "..", "..", "shared", "models", "vww_96_int8.tflite"))
    ap.add_argument("--board", default="NUCLEO-F746ZG")
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--trials", type=int, default=9)
    ap.add_argument("--pool", type=int, default=12)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--firmware", choices=["baremetal", "zephyr"], default="zephyr")
    ap.add_argument("--zephyr-workspace", default=os.environ.get("TINYENGINE_ZEPHYR_WORKSPACE"))
    args = ap.parse_args()
    if not os.path.isfile(args.model):
        print(f"rpc_tune_speedup: {args.model}: no such model", file=sys.stderr)
        return 2
    if args.firmware == "zephyr" and not args.zephyr_workspace:
        print("rpc_tune_speedup: --firmware zephyr needs --zephyr-workspace (or TINYENGINE_ZEPHYR_WORKSPACE)",
              file=sys.stderr)
        return 2
    runs = {}
    with tempfile.TemporaryDirectory(prefix="rpc-tune-speedup-") as tmp:
        for n in (1, args.servers):
            r = runs[n] = run_farm(n, args, tmp)
            print(f"{n} server(s): tuning run {r['wall']:.1f} s, {r['measured']} measured, best "
                  f"{r['best']:,.0f} vs default {r['default']:,.0f} {r['unit']}; load average "
                  f"{r['load'][0]:.2f} -> {r['load'][1]:.2f} on {os.cpu_count()} cores", flush=True)
    print(f"ratio {args.servers} vs 1 server(s): {runs[args.servers]['wall'] / runs[1]['wall']:.2f}x "
          f"({os.path.basename(args.model)}, {args.trials} trials, pool {args.pool}, {args.firmware} firmware)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
