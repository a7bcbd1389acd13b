#!/usr/bin/env python3
"""Measure Zephyr's own flash and RAM share per board (the figures of the board
table in python/tinyengine_tvm/micro/zephyr_boards.py).

For every board: `tvmc micro create-project` writes the Zephyr application of
a trivial model (one FULLY_CONNECTED layer, written by the project's own
TFLite writer), the app is built in the Zephyr workspace (west, else
cmake+ninja) and its ELF and link map are split into the model, the
protocol servers, the descriptor, main's stack and Zephyr, which includes
main.c, the Zephyr port (tinyengine_tvm.micro.zephyr_share). Measured twice
per board: with default options and with mlperf=true, whose server pulls
more of the C library into Zephyr's side of the link (string-to-number and
number formatting). Prints one line per board and option set, and the table
entries; --check exits 1 when a recorded share differs from the measurement
by more than --tolerance bytes.

    PYTHONPATH=python python scripts/measure_zephyr_share.py \\
        --zephyr-workspace ~/.cache/tinyengine-tvm/zephyr-4.3.0 [--board mps2/an500 ...] \\
        [--options default|mlperf] [--check]

Builds go to --work (default ~/.cache/tinyengine-tvm/zephyr-share), the
content-keyed cache of tinyengine_tvm.micro.zephyr_build: one build directory
per board, so the mlperf=true app recompiles only what differs, and an app
already built is not built again.
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
from tinyengine_tvm.micro.zephyr_boards import (MEASURED_SHARES, MEASURED_SHARES_MLPERF, ZEPHYR_BOARDS,  # noqa: E402
                                                 get_zephyr_board)

#: The option sets measured, and the board-table dictionary each one's shares live in.
OPTION_SETS = {"default": ({}, "MEASURED_SHARES", MEASURED_SHARES),
               "mlperf": ({"mlperf": "true"}, "MEASURED_SHARES_MLPERF", MEASURED_SHARES_MLPERF)}


def trivial_model() -> bytes:
    """A 16 -> 4 FULLY_CONNECTED int8 model: the smallest app the generator writes."""
    from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph

    g = QuantizedGraph(seed=1, samples=4, description="trivial model for measuring Zephyr's share")
    x = g.input((1, 16), -1.0, 1.0, name="input")
    x = g.fully_connected(x, 4, "NONE", per_channel=False, prefix="fc")
    return g.finish(x)


def measure_board(board: str, options: str, compiled: str, work: str, workspace) -> dict:
    """Create, build (or find in the content-keyed cache under ``work``) and measure the trivial
    app for ``board`` with the option set ``options``."""
    from tinyengine_tvm.micro.zephyr_build import build_zephyr_elf

    t0 = time.monotonic()
    _, info = build_zephyr_elf(compiled, board, ws=workspace, cache_dir=work,
                               options={"measure": "false", **OPTION_SETS[options][0]})
    return {**info["sizes"], "warnings": info["warnings"], "build_seconds": round(time.monotonic() - t0, 1)}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--zephyr-workspace", help="directory holding env.sh / zephyr/ (default: $ZEPHYR_BASE)")
    ap.add_argument("--board", action="append", help="Zephyr or board-table name (repeatable; default: all)")
    ap.add_argument("--options", action="append", choices=sorted(OPTION_SETS),
                    help="option set (repeatable; default: both)")
    ap.add_argument("--work", default=os.path.expanduser("~/.cache/tinyengine-tvm/zephyr-share"),
                    help="the Zephyr build cache: one build directory per board, ELFs by content (kept between runs)")
    ap.add_argument("--json", help="write the measurements here")
    ap.add_argument("--check", action="store_true", help="exit 1 when the board table differs from a measurement")
    ap.add_argument("--tolerance", type=int, default=64, help="bytes --check allows (64)")
    args = ap.parse_args(argv)

    import tinyengine_tvm as te
    from tinyengine_tvm.micro.zephyr_workspace import find_workspace

    try:
        ws = find_workspace(args.zephyr_workspace)
        boards = [get_zephyr_board(b).zephyr_name for b in (args.board or ZEPHYR_BOARDS)]
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"workspace {ws.top} ({ws.tool})")
    os.makedirs(args.work, exist_ok=True)
    results, bad = {o: {} for o in args.options or OPTION_SETS}, []
    with tempfile.TemporaryDirectory(prefix="zephyr-share-") as tmp:
        model = os.path.join(tmp, "trivial_fc.tflite")
        with open(model, "wb") as f:
            f.write(trivial_model())
        compiled = os.path.join(tmp, "compiled")
        te.compile(model).export(compiled)
        for b in boards:
            for opts, table in results.items():
                try:
                    m = measure_board(b, opts, compiled, args.work, ws)
                except TinyEngineError as exc:
                    print(f"{b:<24} {opts:<8} FAILED: {exc}", file=sys.stderr)
                    bad.append(b)
                    continue
                table[b] = m
                f, r = m["flash"], m["ram"]
                print(f"{b:<24} {opts:<8} flash {f['total']:>7,} B = Zephyr {f['zephyr']:>6,} (main.c "
                      f"{f['port']:,}) + model {f['model']:>5,} + protocol {f['protocol']:>5,} + desc {f['io']:>4,} | "
                      f"RAM {r['total']:>7,} B = Zephyr {r['zephyr']:>5,} (main.c {r['port']}) + main stack "
                      f"{r['main_stack']:,} + model {r['model']:,} + protocol {r['protocol']:,} + desc {r['io']:,} | "
                      f"other regions {m['other_regions'] or '-'} | {m['build_seconds']} s"
                      + (f" | {len(m['warnings'])} warnings" if m["warnings"] else ""), flush=True)
                _, table_name, recorded = OPTION_SETS[opts]
                rec = recorded.get(b)
                if args.check:
                    if rec is None:
                        bad.append(b)
                        print(f"  not in {table_name}: add {b!r}: ({f['zephyr']}, {r['zephyr']})")
                    elif abs(rec[0] - f["zephyr"]) > args.tolerance or abs(rec[1] - r["zephyr"]) > args.tolerance:
                        bad.append(b)
                        print(f"  {table_name} says flash {rec[0]:,} B, RAM {rec[1]:,} B")
    for opts, table in results.items():
        print(f"\n{OPTION_SETS[opts][1]} entries (zephyr_boards.py):")
        for b, m in table.items():
            print(f"    {b!r}: ({m['flash']['zephyr']}, {m['ram']['zephyr']}),")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
