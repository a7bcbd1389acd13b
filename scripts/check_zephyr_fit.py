#!/usr/bin/env python3
"""Build the generated Zephyr app for every board, with default options and with
mlperf=true, and check create-project's flash/RAM prediction against each real ELF.

For each model, board and option set, ``tvmc micro create-project`` writes the
app and records its predicted flash and RAM; the app is built in the Zephyr
workspace (west, else cmake+ninja; cached by content, one build directory per
board) and its ELF measured (tinyengine_tvm.micro.zephyr_fit). The prediction
must never be below the real figure and at most --slack bytes above it, and
each build's Zephyr share must match the board table within its margin. A
combination create-project refuses (the model does not fit) is reported with
its overshoot, not built. Exit status 1 when a figure is off, 2 on bad arguments.

    PYTHONPATH=python python scripts/check_zephyr_fit.py \\
        [--zephyr-workspace DIR] [--board nucleo_f746zg ...] [--model M.tflite ...] [--options mlperf]

Default models: the bundled default CNN, and kws_ref_model and vww_96_int8 of
../shared/models when present. CI (tests/test_zephyr_fit.py) checks the
default model on every board; this script is the wider sweep.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))

from tinyengine_tvm.errors import TinyEngineError  # noqa: E402
from tinyengine_tvm.micro.zephyr_boards import ZEPHYR_BOARDS, get_zephyr_board  # noqa: E402

OPTION_SETS = {"default": {}, "mlperf": {"mlperf": "true"}}


def default_models() -> list:
    """The bundled default model, plus kws_ref_model and vww_96_int8 of ../shared/models when present."""
    from tinyengine_tvm.modelgen.default_model import default_model_path
    from tinyengine_tvm.testing import shared_models_dir

    out = [str(default_model_path())]
    shared = shared_models_dir()
    if shared:
        out += [p for p in (os.path.join(shared, f"{n}.tflite") for n in ("kws_ref_model", "vww_96_int8"))
                if os.path.isfile(p)]
    else:
        print("../shared/models is absent: checking the bundled default model only")
    return out


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zephyr-workspace", help="directory holding env.sh / zephyr/ (default: $ZEPHYR_BASE)")
    ap.add_argument("--board", action="append", help="Zephyr or board-table name (repeatable; default: every "
                                                     "board of the Zephyr board table)")
    ap.add_argument("--options", action="append", choices=sorted(OPTION_SETS),
                    help="option set (repeatable; default: both)")
    ap.add_argument("--model", action="append", help="TFLite/ONNX model (repeatable; default: see above)")
    ap.add_argument("--slack", type=int, default=2048, help="bytes a prediction may exceed the real size (2048)")
    ap.add_argument("--cache", help="Zephyr build cache (default: $TINYENGINE_ZEPHYR_CACHE or "
                                    "~/.cache/tinyengine-tvm/zephyr-builds)")
    args = ap.parse_args(argv)

    import tinyengine_tvm as te
    from tinyengine_tvm.micro.zephyr_fit import check_fit
    from tinyengine_tvm.micro.zephyr_workspace import find_workspace

    try:
        ws = find_workspace(args.zephyr_workspace)
        boards = [get_zephyr_board(b).zephyr_name for b in (args.board or ZEPHYR_BOARDS)]
        models = args.model or default_models()
        for m in models:
            if not os.path.isfile(m):
                raise TinyEngineError(f"{m}: no such model")
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"workspace {ws.top} ({ws.tool})")
    bad = 0
    with tempfile.TemporaryDirectory(prefix="zephyr-fit-") as tmp:
        for model in models:
            name = os.path.splitext(os.path.basename(model))[0]
            compiled = os.path.join(tmp, name)
            te.compile(model).export(compiled)
            print(f"\n{name}")
            for b in boards:
                for opts in args.options or list(OPTION_SETS):
                    t0 = time.monotonic()
                    r = check_fit(compiled, b, OPTION_SETS[opts], ws=ws, cache_dir=args.cache, slack=args.slack)
                    bad += not r.ok
                    print(f"{r.line()} | {time.monotonic() - t0:.1f} s", flush=True)
    print(f"\n{bad} off" if bad else "\nevery prediction within bounds")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
