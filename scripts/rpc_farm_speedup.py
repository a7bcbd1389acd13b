"""Wall time of one batch of QEMU measurements on 1 vs N servers of a local RPC farm.

Starts a tracker and N ``tinyengine_tvm.rpc_server --device qemu`` servers on loopback,
measures one job on every server first (the firmware build is then cached on each), and
times ``RpcPool.measure_many`` on the same batch with ``max_sessions=1`` and ``=N``:

    PYTHONPATH=python python scripts/rpc_farm_speedup.py --jobs 8 --servers 2 --number 1
    PYTHONPATH=python python scripts/rpc_farm_speedup.py --model ../shared/models/vww_96_int8.tflite --profile

Each setting also prints where a job's time went on its server (the mean of the reports' phases:
wall / CPU seconds, CPU including the compilers and QEMU) and the load average, since the machine
may be shared: a ratio means little without them.
"""
import argparse
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "python"))

import tinyengine_tvm as te  # noqa: E402
from tinyengine_tvm.modelgen.default_model import default_model_path  # noqa: E402
from tinyengine_tvm.runtime.project import random_inputs  # noqa: E402
from tinyengine_tvm.runtime.rpc import MeasureJob, RpcPool  # noqa: E402
from tinyengine_tvm.testing.local_farm import local_farm  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--jobs", type=int, default=8)
    ap.add_argument("--servers", type=int, default=2)
    ap.add_argument("--number", type=int, default=1, help="inferences per job")
    ap.add_argument("--rounds", type=int, default=3, help="batches timed per setting (the median is printed)")
    ap.add_argument("--model", default=None, help="the model to measure (default: the built-in default model)")
    ap.add_argument("--profile", action="store_true", help="profile builds, as tvmc tune measures")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="rpc-speedup-") as tmp:
        project = os.path.join(tmp, "project")
        te.compile(args.model or str(default_model_path())).export(project)
        meta = te.runtime.project.read_metadata(project)
        key = "speedup"
        with local_farm(args.servers, key, tmp, os.path.join(tmp, "farm.log")) as tracker:
            jobs = [MeasureJob(project, random_inputs(meta["inputs"], i), number=args.number, profile=args.profile)
                    for i in range(args.jobs)]
            pool = RpcPool(tracker, key)
            warm = pool.measure_many(jobs[:args.servers] * 2)  # every server builds its firmware once
            assert all(r.ok for r in warm), [r.error for r in warm]
            times = {}
            for sessions in (1, args.servers):
                runs, used, phases = [], set(), {}
                for _ in range(args.rounds):
                    t = time.perf_counter()
                    results = RpcPool(tracker, key, max_sessions=sessions).measure_many(jobs)
                    runs.append(time.perf_counter() - t)
                    assert all(r.ok for r in results), [r.error for r in results]
                    used |= {r.server for r in results}
                    for r in results:
                        rpc = r.report.get("rpc", {})
                        for p in rpc.get("phases", []):
                            acc = phases.setdefault(p["phase"], [0.0, 0.0])
                            acc[0] += p["wall_s"]
                            acc[1] += p["cpu_s"] + p["child_cpu_s"]
                        if "call_wall_s" in rpc:
                            acc = phases.setdefault("call (client)", [0.0, 0.0])
                            acc[0] += rpc["call_wall_s"]
                times[sessions] = sorted(runs)[len(runs) // 2]
                print(f"{sessions} server(s): {args.jobs} jobs of {args.number} inference(s) in "
                      f"{times[sessions]:.2f} s (median of {args.rounds}: "
                      f"{', '.join(f'{r:.2f}' for r in runs)}); servers used {sorted(used)}; "
                      f"load average {os.getloadavg()[0]:.2f}", flush=True)
                n = args.rounds * args.jobs
                if phases:
                    print("  per job, wall/CPU s: " + ", ".join(f"{k} {w / n:.3f}/{c / n:.3f}"
                                                             for k, (w, c) in phases.items()), flush=True)
            print(f"ratio {args.servers} vs 1 server(s): {times[args.servers] / times[1]:.2f}x "
                  f"(load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
