#!/usr/bin/env python3
"""Build the generated Zephyr app for every board, with default options and with
mlperf=true, and check create-project's flash/RAM prediction against each real ELF.

For each (board, options): `tvmc micro create-project` writes the app of the
model (default: the bundled default model) and records its predicted flash
and RAM (project.json "requirements"); the app is built in the Zephyr
workspace (west, else cmake+ninja) and the ELF measured
(tinyengine_tvm.micro.zephyr_share.measure_build).  The prediction must never
be below the real figure and at most --slack bytes above it (2,048).  A
combination create-project refuses (the model does not fit) is reported, not
built.  Exit status 1 when a prediction is off, 2 on bad arguments.

    PYTHONPATH=python python scripts/check_zephyr_fit.py \\
        --zephyr-workspace ~/.cache/tinyengine-tvm/zephyr-4.3.0 [--board nucleo_f746zg ...] [--model M.tflite]

Builds go to --work (default ~/.cache/tinyengine-tvm/zephyr-fit), one
directory per board and option set, so a second run only relinks.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

from tinyengine_tvm.errors import TinyEngineError  # noqa: E402
from tinyengine_tvm.micro.zephyr_boards import ZEPHYR_BOARDS, get_zephyr_board  # noqa: E402

OPTION_SETS = {"default": {}, "mlperf": {"mlperf": "true"}}


def check_one(board: str, options: str, compiled: str, work: str, workspace, slack: int) -> dict:
    """Create, build and measure one app; the prediction and the real sizes."""
    from tinyengine_tvm.micro.project import create_project
    from tinyengine_tvm.micro.zephyr_share import measure_build
    from tinyengine_tvm.micro.zephyr_workspace import build_app

    zb = get_zephyr_board(board)
    base = os.path.join(work, f"{zb.file_stem}-{options}")
    app, build = os.path.join(base, "app"), os.path.join(base, "build")
    try:
        create_project(app, compiled, "zephyr", {"board": zb.zephyr_name, **OPTION_SETS[options]}, force=True)
    except TinyEngineError as exc:
        return {"refused": str(exc).splitlines()[0]}
    with open(os.path.join(app, "project.json")) as f:
        req = json.load(f)["requirements"]
    t0 = time.monotonic()
    build_app(workspace, app, zb.zephyr_name, build, log=os.path.join(base, "build.log"))
    real = measure_build(build)
    out = {"seconds": round(time.monotonic() - t0, 1), "ok": True}
    for kind in ("flash", "ram"):
        predicted, measured = req[kind]["total"], real[kind]["total"]
        out[kind] = (predicted, measured)
        out["ok"] &= measured <= predicted <= measured + slack
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zephyr-workspace", help="directory holding env.sh / zephyr/ (default: $ZEPHYR_BASE)")
    ap.add_argument("--board", action="append", help="Zephyr or board-table name (repeatable; default: every "
                                                     "STM32 board)")
    ap.add_argument("--options", action="append", choices=sorted(OPTION_SETS),
                    help="option set (repeatable; default: both)")
    ap.add_argument("--model", help="TFLite/ONNX model (default: the bundled default model)")
    ap.add_argument("--slack", type=int, default=2048, help="bytes a prediction may exceed the real size (2048)")
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/tinyengine-tvm/zephyr-fit"))
    args = ap.parse_args(argv)

    import tinyengine_tvm as te
    from tinyengine_tvm.micro.zephyr_workspace import find_workspace

    try:
        ws = find_workspace(args.zephyr_workspace)
        boards = [get_zephyr_board(b).zephyr_name for b in
                  (args.board or [b for b, zb in ZEPHYR_BOARDS.items() if not zb.emulated])]
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    model = args.model or os.path.join(os.path.dirname(te.__file__), "data", "default_mobilenet_int8.tflite")
    print(f"workspace {ws.top} ({ws.tool}); model {model}")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="zephyr-fit-") as tmp:
        compiled = os.path.join(tmp, "compiled")
        te.compile(model).export(compiled)
        for b in boards:
            for opts in args.options or list(OPTION_SETS):
                r = check_one(b, opts, compiled, args.work, ws, args.slack)
                if "refused" in r:
                    print(f"{b:<20} {opts:<8} refused by create-project: {r['refused']}", flush=True)
                    continue
                bad += not r["ok"]
                print(f"{b:<20} {opts:<8} flash predicted {r['flash'][0]:>7,} real {r['flash'][1]:>7,} | RAM "
                      f"predicted {r['ram'][0]:>7,} real {r['ram'][1]:>7,} | {r['seconds']} s"
                      f"{'' if r['ok'] else '  <-- off'}", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
