"""The ``tvmc`` command: compile models to C and run compiled projects.

Mirrors the subcommands microTVM users knew (``tvmc compile``, ``tvmc run``),
with ``--target=tinyengine`` selecting this project's backend.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
from typing import List, Optional

import numpy as np

from .errors import TinyEngineError

TARGETS = ("tinyengine",)


def _format_bytes(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def _pass_summary(p: dict) -> str:
    if "applied" in p:  # PatchBasedInference
        if not p["applied"]:
            return f"not applied ({p['reason']})"
        return (f"{p['patches']}x{p['patches']} patches up to op #{p['split_index']} '{p['split_op']}', "
                f"+{p['mac_overhead']:.1%} MACs, arena {p['baseline_arena_bytes']:,} -> {p['arena_bytes']:,} B")
    if "peak_bytes" in p:  # MemoryAwareSchedule
        how = "exact" if p["exact"] else "heuristic"
        return (f"peak {p['original_peak_bytes']:,} -> {p['peak_bytes']:,} B ({how}, {p['states']} states"
                f"{', reordered' if p['reordered'] else ''})")
    return ", ".join(f"{k}={v}" for k, v in p.items() if k != "name")


def format_report(meta: dict, seconds: Optional[float] = None) -> str:
    """Human-readable summary of a compiled model's metadata."""
    mem = meta["memory"]
    lines = [f"model        {meta['model']} ({meta.get('format', '?')})"]
    for kind in ("inputs", "outputs"):
        for t in meta[kind]:
            q = f" scale={t['scale']:.6g} zp={t['zero_point']}" if t.get("scale") is not None else ""
            lines.append(f"{kind[:-1]:<12} {t['name']}: {t['dtype']}{t['shape']}{q}")
    lines.append(f"arena        {_format_bytes(mem['arena_bytes'])}: inputs, activations, outputs, "
                 f"scratch ({mem['scratch_bytes']:,} B); live-set peak {mem['live_peak_bytes']:,} B")
    if mem.get("peak_op_index") is not None:
        peak = meta["ops"][mem["peak_op_index"]]
        lines.append(f"peak at      op #{mem['peak_op_index']} {peak['type']} '{peak['name']}': "
                     + ", ".join(peak["live_buffers"]))
    lines.append(f"weights      {_format_bytes(mem['weights_bytes'])}")
    for p in meta.get("passes", []):
        lines.append(f"pass         {p['name']}: {_pass_summary(p)}")
    counts = {}
    for op in meta["ops"]:
        counts[op["type"]] = counts.get(op["type"], 0) + 1
    lines.append(f"ops          {len(meta['ops'])}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    lines.append(f"MACs         {meta['total_macs']:,}")
    if seconds is not None:
        lines.append(f"compiled in  {seconds:.2f} s")
    return "\n".join(lines)


def _cmd_compile(args) -> int:
    from .compiler import compile as compile_model

    if args.target not in TARGETS:
        raise TinyEngineError(f"unknown target '{args.target}'; available: {', '.join(TARGETS)}")
    from .transform.pipeline import parse_pass_config

    kwargs = dict(name=args.model_name, disabled_passes=args.disable_pass,
                  pass_config=parse_pass_config(args.pass_config), sram_budget=args.sram_budget)
    board = None
    if args.target_tinyengine_board:
        from .targets import get_board

        board = get_board(args.target_tinyengine_board)
    core = args.target_tinyengine_mcpu or (board.core if board is not None else None)
    if core is not None:
        from .targets.cores import get_core

        core = get_core(core).name
        if board is not None and core != board.core:
            raise TinyEngineError(f"--target-tinyengine-mcpu {core} does not match {board.name}'s {board.core}")
    compiled = compile_model(args.model, core=core, keep_portable_arena=args.keep_portable_arena, **kwargs)
    if board is not None:
        from .targets.fit import check_fits

        check_fits(compiled.metadata, board)
    if args.memory_plot:
        from .report import plot_memory_timeline

        baseline = compile_model(args.model, name=args.model_name, optimize=False)
        plot_memory_timeline(compiled.metadata, baseline.metadata, args.memory_plot)
    out = compiled.export(args.output)
    print(format_report(compiled.metadata, compiled.compile_seconds))
    if args.memory_plot:
        print(f"memory plot  {args.memory_plot}")
    print(f"written      {out}")
    return 0


def _open_project(path: str, tmp: str) -> str:
    if path.endswith(".tar"):
        if not os.path.isfile(path):
            raise TinyEngineError(f"{path}: no such file")
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        return tmp
    return path


def _random_inputs(meta: dict, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    inputs = {}
    for m in meta["inputs"]:
        if m["dtype"] == "int8":
            inputs[m["name"]] = rng.integers(-128, 128, size=m["shape"], dtype=np.int8)
        else:
            inputs[m["name"]] = rng.uniform(-1, 1, size=m["shape"]).astype(m["dtype"])
    return inputs


def _cmd_run(args) -> int:
    from .runtime.host import HostModel, load_npz_inputs

    if args.device not in ("host", "qemu"):
        raise TinyEngineError(f"unknown device '{args.device}'; use --device=host or --device=qemu")
    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        project = _open_project(args.project, os.path.join(tmp, "project"))
        if args.device == "host":
            model = HostModel(project, build_dir=os.path.join(tmp, "build"))
        else:
            from .runtime.qemu import QemuModel

            model = QemuModel(project, board=args.board, build_dir=os.path.join(tmp, "build"), timeout=args.timeout)
        meta = model.meta
        inputs = load_npz_inputs(args.inputs, meta["inputs"]) if args.inputs else _random_inputs(meta, args.seed)
        times, reports, outputs = [], [], None
        for _ in range(max(1, args.repeat)):
            if args.device == "host":
                outputs = model.run(inputs)
                times.append(model.last_seconds * 1e3)
            else:
                outputs, report = model.run(inputs)
                reports.append(report)
    if args.outputs:
        np.savez(args.outputs, **outputs)
    if args.print_time:
        if args.device == "host":
            t = np.array(times)
            print(f"host execution time (ms, {len(t)} runs): mean {t.mean():.3f} median {np.median(t):.3f} "
                  f"min {t.min():.3f} max {t.max():.3f}")
        else:
            r = reports[-1]
            print(f"{r['board']} ({r['core']}): {r['instructions']:,} instructions per inference "
                  f"(QEMU -icount: instructions, not cycles); stack peak {r['stack_peak_bytes']:,} B; "
                  f"flash {r['flash_bytes']:,} B; SRAM {r['sram_bytes']:,} B")
    if args.report:
        import json

        with open(args.report, "w") as f:
            json.dump(reports[-1] if reports else {"device": "host", "milliseconds": times}, f, indent=2, default=str)
    print_outputs(args, outputs)
    return 0


def print_outputs(args, outputs) -> None:
    """--print-top N entries of each output, or every output when nothing else was asked."""
    if args.print_top:
        for name, arr in outputs.items():
            flat = arr.reshape(-1)
            top = np.argsort(-flat.astype(np.float64), kind="stable")[: args.print_top]
            print(f"{name}: top-{len(top)} indices {top.tolist()} values {flat[top].tolist()}")
    if not (args.outputs or args.print_top or args.print_time or args.report):
        for name, arr in outputs.items():
            print(f"{name}: {arr.tolist()}")


def _cmd_boards(args) -> int:
    from .targets import BOARDS

    print(f"{'board':<18}{'core':<12}{'clock MHz':>10}{'SRAM KiB':>10}{'flash KiB':>10}  qemu")
    for b in BOARDS.values():
        print(f"{b.name:<18}{b.core:<12}{b.clock_hz / 1e6:>10.0f}{b.sram_bytes // 1024:>10}"
              f"{b.flash_bytes // 1024:>10}  {b.qemu_machine or '-'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tvmc``."""
    parser = argparse.ArgumentParser(prog="tvmc", description="tinyengine-tvm: int8 models to standalone C.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a .tflite or .onnx model to C")
    c.add_argument("model", help="int8 .tflite or ONNX QDQ .onnx model")
    c.add_argument("--target", default="tinyengine", help="code generator (only 'tinyengine')")
    c.add_argument("-o", "--output", required=True, help="output directory, or OUT.tar for a tarball")
    c.add_argument("--model-name", default=None, help="C identifier prefix (default: file name)")
    c.add_argument("--target-tinyengine-board", default=None, metavar="BOARD",
                   help="check the plan against a board's SRAM and flash (see 'tvmc boards')")
    c.add_argument("--target-tinyengine-mcpu", default=None, metavar="CORE",
                   help="select kernels for a core: cortex-m4, cortex-m7, cortex-m55 (default: the board's core; "
                        "none: portable kernels only)")
    c.add_argument("--keep-portable-arena", action="store_true",
                   help="never let the Cortex-M kernels' scratch grow the arena (keeps portable kernels there)")
    c.add_argument("--disable-pass", action="append", default=[], metavar="PASS",
                   help="turn off one optimization pass (repeatable): FoldPadIntoConv, PatchBasedInference, "
                        "InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule")
    c.add_argument("--pass-config", action="append", default=[], metavar="PASS.OPTION=VALUE",
                   help="set a pass option, e.g. MemoryAwareSchedule.max_states=5000 (repeatable)")
    c.add_argument("--sram-budget", type=int, default=None, metavar="BYTES",
                   help="fail when the arena needs more than BYTES")
    c.add_argument("--memory-plot", default=None, metavar="FILE.png",
                   help="draw live bytes per operator with and without the optimizations (matplotlib)")
    c.set_defaults(func=_cmd_compile)

    r = sub.add_parser("run", help="run a compiled project")
    r.add_argument("project", help="directory or .tar written by 'tvmc compile'")
    r.add_argument("--device", default="host", choices=["host", "qemu"],
                   help="host: build with gcc and run here; qemu: build firmware and run on an emulated Cortex-M")
    r.add_argument("--board", default="mps2-an500", help="emulated board for --device=qemu "
                   "(mps2-an386 Cortex-M4, mps2-an500 Cortex-M7, mps3-an547 Cortex-M55)")
    r.add_argument("--timeout", type=float, default=60.0, help="seconds before a hung emulator is stopped")
    r.add_argument("--report", default=None, metavar="FILE.json",
                   help="write the run's figures (instructions, stack_peak_bytes, flash_bytes, sram_bytes)")
    r.add_argument("--inputs", help=".npz of inputs keyed by tensor name (random if omitted)")
    r.add_argument("--outputs", help="write outputs to this .npz")
    r.add_argument("--print-time", action="store_true", help="print execution time")
    r.add_argument("--print-top", type=int, default=0, metavar="N", help="print the top-N output entries")
    r.add_argument("--repeat", type=int, default=1, help="number of inferences to time")
    r.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    r.set_defaults(func=_cmd_run)

    b = sub.add_parser("boards", help="list the boards and emulated boards")
    b.set_defaults(func=_cmd_boards)

    from .micro.cli import register  # tvmc micro ..., tvmc run --device=serial / QEMU's UART

    register(sub, r)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tvmc`` and ``python -m tinyengine_tvm``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
