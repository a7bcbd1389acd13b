"""The ``tvmc`` command: compile models to C and run compiled projects.

Mirrors the subcommands microTVM users knew (``tvmc compile``, ``tvmc run``),
with ``--target=tinyengine`` selecting this project's backend.
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
from typing import List, Optional

import numpy as np

from .errors import TinyEngineError, UsageError
from .naming import buffer_list, describe_op, quote_name

TARGETS = ("tinyengine",)


def int_option(low: int, high: Optional[int] = None):
    """An argparse type: an integer in [low, high] (the message says the range)."""
    def parse(text: str) -> int:
        try:
            value = int(text, 0)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not an integer") from None
        if value < low or (high is not None and value > high):
            raise argparse.ArgumentTypeError(
                f"{value} is out of range ({low} to {high})" if high is not None else f"{value} must be >= {low}")
        return value
    return parse


def seconds_option(text: str) -> float:
    """An argparse type: a finite number of seconds > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of seconds") from None
    if not (0 < value < 1e6):
        raise argparse.ArgumentTypeError(f"{text}: seconds must be > 0 (and finite)")
    return value


def _format_bytes(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def _pass_summary(p: dict) -> str:
    if "applied" in p:  # PatchBasedInference
        if not p["applied"]:
            return f"not applied ({p['reason']})"
        stages = "; ".join(
            f"ops #{st['first_index']}-#{st['last_index']} {quote_name(st['first_op'], 32)}..{quote_name(st['last_op'], 32)}"
            f" in {st['grid'][0]}x{st['grid'][1]} patches (+{st['mac_overhead']:.1%} MACs"
            + (f", halo cache of {st['halo_cache']} {st['halo_cache_bytes']:,} B" if st["halo_cache"] != "off" else "")
            + ")" for st in p["stages"])
        return (f"{len(p['stages'])} stage(s): {stages}; +{p['mac_overhead']:.1%} MACs, "
                f"arena {p['baseline_arena_bytes']:,} -> {p['arena_bytes']:,} B")
    if p.get("name") in ("Int8IO", "NHWCInput"):
        kind = "int8" if p["name"] == "Int8IO" else "NHWC"
        changes = [f"{quote_name(c['replaces'], 32)} -> {kind} {quote_name(c['name'], 32)}"
                   for c in p["inputs"] + p.get("outputs", []) if c is not None]
        return ", ".join(changes) if changes else "no float input or output to replace"
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
            lines.append(f"{kind[:-1]:<12} {quote_name(t['name'])}: {t['dtype']}{t['shape']}{q}")
    lines.append(f"arena        {_format_bytes(mem['arena_bytes'])}: inputs, activations, outputs, "
                 f"scratch ({mem['scratch_bytes']:,} B); live-set peak {mem['live_peak_bytes']:,} B")
    if mem.get("peak_op_index") is not None:
        peak = meta["ops"][mem["peak_op_index"]]
        # Converter names can run to hundreds of characters: the terminal gets them
        # cut in the middle, metadata.json and errors keep them whole.
        lines.append(f"peak at      {describe_op(meta, mem['peak_op_index'], 72)}: "
                     + buffer_list(peak["live_buffers"], 48))
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


def _config_text(config: dict) -> str:
    """A record's configuration as tvmc tune prints it."""
    from .tune.space import TuningConfig

    return TuningConfig.from_json(config).describe()


def _cmd_compile(args) -> int:
    if args.list_operators:
        from .operator_table import operator_table

        print(operator_table())
        return 0
    if args.model is None or args.output is None:
        raise UsageError("compile needs a model and -o OUTPUT (or --list-operators)")
    from .compiler import check_export_path, compile as compile_model
    from .frontend.loader import model_c_name
    from .transform.pipeline import optimization_passes, parse_pass_config

    # Every option and path is checked before any work, so a mistake costs nothing.
    if args.target not in TARGETS:
        raise UsageError(f"unknown target '{args.target}'; available: {', '.join(TARGETS)}")
    if os.path.isdir(args.model):
        raise UsageError(f"model '{args.model}' is a directory; give a .tflite or .onnx file")
    if not os.path.isfile(args.model):
        raise UsageError(f"model '{args.model}': no such file")
    stem = os.path.splitext(os.path.basename(args.model))[0]
    model_c_name(args.model_name or stem, from_file=args.model_name is None)
    pass_config = parse_pass_config(args.pass_config)
    optimization_passes(args.disable_pass, pass_config)
    board = core = None
    if args.target_tinyengine_board:
        from .targets import get_board

        board = get_board(args.target_tinyengine_board)
    core = args.target_tinyengine_mcpu or (board.core if board is not None else None)
    if core is not None:
        from .targets.cores import get_core

        core = get_core(core).name
        if board is not None and core != board.core:
            raise UsageError(f"--target-tinyengine-mcpu {core} does not match {board.name}'s {board.core}")
    check_export_path(args.output, keep=[args.model])
    if args.tuning_records:
        from .tune.records import load_records

        load_records(args.tuning_records)  # a missing or malformed file is said before any work
    if args.memory_plot:
        from .output_paths import is_inside
        from .report import check_plot_path

        check_plot_path(args.memory_plot, keep=[args.model])
        if is_inside(args.memory_plot, args.output):
            raise UsageError(f"--memory-plot '{args.memory_plot}' is inside the output directory, which is replaced")

    kwargs = dict(name=args.model_name, disabled_passes=args.disable_pass, pass_config=pass_config,
                  sram_budget=args.sram_budget, int8_io=args.int8_io, nhwc_input=args.nhwc_input,
                  tuning_records=args.tuning_records)
    if args.narrow_at_peak and core is None:
        raise UsageError("--narrow-at-peak chooses among a core's convolution kernels: give "
                         "--target-tinyengine-board or --target-tinyengine-mcpu")
    compiled = compile_model(args.model, core=core, keep_portable_arena=args.keep_portable_arena,
                             narrow_at_peak=args.narrow_at_peak, **kwargs)
    tuning = compiled.metadata.get("tuning")
    if tuning is not None:
        if tuning["record"] is None:
            print(f"warning: {tuning['reason']} in {tuning['records']}: the default configuration", file=sys.stderr)
        else:
            print(f"tuning     record {tuning['record']} ({_config_text(tuning['config'])}): "
                  f"{tuning['latency']:,.0f} {tuning['unit']} on {tuning['runner']}")
    if board is not None:
        from .targets.fit import check_fits

        check_fits(compiled.metadata, board)
    baseline = None
    if args.memory_plot:
        baseline = compile_model(args.model, name=args.model_name, optimize=False, int8_io=args.int8_io,
                                 nhwc_input=args.nhwc_input)
    out = compiled.export(args.output, keep=[args.model])
    if baseline is not None:
        from .report import plot_memory_timeline

        plot_memory_timeline(compiled.metadata, baseline.metadata, args.memory_plot,
                             board.sram_bytes if board is not None else None)
    print(format_report(compiled.metadata, compiled.compile_seconds))
    if args.memory_plot:
        print(f"memory plot  {args.memory_plot}")
    print(f"written      {out}")
    return 0


class RunOutputs:
    """Where ``tvmc run`` writes (--outputs .npz, --report .json), checked before the run."""

    def __init__(self, args, meta: dict):
        from .output_paths import check_output_file

        keep = [args.project, args.inputs or ""]
        names = sorted(m["name"] for m in meta["outputs"])
        self.outputs = self.report = self.profile = None
        if getattr(args, "profile_json", None):
            self.profile = check_output_file(args.profile_json, "--profile-json", (".json",),
                                             _previous_report_reason, keep)
        if args.outputs:
            self.outputs = check_output_file(args.outputs, "--outputs", (".npz",),
                                             lambda p: _previous_outputs_reason(p, names), keep)
        if args.report:
            self.report = check_output_file(args.report, "--report", (".json",), _previous_report_reason, keep)

    def write(self, outputs: dict, report: dict) -> None:
        """Write the outputs and the report (each atomically)."""
        import io
        import json

        from .output_paths import GENERATOR, write_file

        if self.outputs is not None:
            buf = io.BytesIO()
            np.savez(buf, **outputs)
            write_file(self.outputs, buf.getvalue())
        if self.report is not None:
            text = json.dumps({"generator": GENERATOR, **report}, indent=2, default=str) + "\n"
            write_file(self.report, text.encode())

    def write_profile(self, profile) -> None:
        """Write --profile-json (atomically)."""
        import json

        from .output_paths import GENERATOR, write_file

        if self.profile is not None:
            text = json.dumps({"generator": GENERATOR, **profile.to_json()}, indent=1) + "\n"
            write_file(self.profile, text.encode())


def _previous_outputs_reason(path: str, names: List[str]) -> Optional[str]:
    from .output_paths import not_ours

    try:
        with np.load(path, allow_pickle=False) as data:
            if sorted(data.files) == names:
                return None
    except Exception:  # anything unreadable is not a previous output of this model
        pass
    return not_ours(f"set of this model's outputs ({', '.join(names)})")


def _previous_report_reason(path: str) -> Optional[str]:
    from .output_paths import GENERATOR, not_ours, read_manifest

    meta = read_manifest(path)
    return None if meta is not None and meta.get("generator") == GENERATOR else not_ours("run report")


def prepare_run(args, scratch_dir: str):
    """Open the project, check the output paths and load (or draw) the inputs of
    ``tvmc run``: (project directory, metadata, inputs, RunOutputs)."""
    from .runtime.project import load_inputs_file, open_project, random_inputs, read_metadata

    project = open_project(args.project, os.path.join(scratch_dir, "project"))
    meta = read_metadata(project)
    outputs = RunOutputs(args, meta)
    inputs = load_inputs_file(args.inputs, meta["inputs"]) if args.inputs else random_inputs(meta["inputs"], args.seed)
    return project, meta, inputs, outputs


def _cmd_run(args) -> int:
    from .runtime.opener import open_runner

    # Every option is checked before any work (the project, the outputs, a build).
    if args.rpc_tracker is not None or args.rpc_key is not None:
        _check_rpc_options(args)
    elif args.device == "serial" and not args.port:
        raise UsageError("--device=serial needs --port (the board's serial port, e.g. /dev/ttyACM0)")
    zephyr = args.firmware == "zephyr"
    if zephyr and args.device != "qemu":
        raise UsageError("--firmware=zephyr runs the Zephyr application in QEMU: it needs --device=qemu "
                         "(a board flashed with tvmc micro flash runs with --device=serial)")
    if zephyr and args.qemu_link == "semihosting":
        raise UsageError("--firmware=zephyr talks over QEMU's UART: --qemu-link pty or tcp, not semihosting")
    if args.zephyr_workspace and not zephyr:
        raise UsageError("--zephyr-workspace is for --firmware=zephyr")
    if zephyr:
        from .micro.zephyr_qemu import emulated_zephyr_board
        from .micro.zephyr_workspace import find_workspace

        board_name = emulated_zephyr_board(args.board).zephyr_name
        find_workspace(args.zephyr_workspace)  # what is missing is said before any work
    else:
        board = qemu_board(args.board) if args.device == "qemu" else None
        board_name = board.name if board is not None else args.board
    qemu_link = args.qemu_link or ("pty" if zephyr else "tcp")
    profile = args.profile or bool(args.profile_json)
    if args.rpc_tracker is not None or args.rpc_key is not None:
        return _cmd_run_rpc(args, profile)
    if profile and qemu_link == "semihosting":
        raise UsageError("--profile reads the step counters over the benchmark protocol: --qemu-link tcp or pty, "
                         "not semihosting")
    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        project, meta, inputs, writer = prepare_run(args, tmp)
        opts = dict(board=board_name, qemu_link=qemu_link, port=args.port, baud=args.baud, timeout=args.timeout,
                    link_timeout=args.link_timeout, firmware=args.firmware, zephyr_workspace=args.zephyr_workspace)
        with open_runner(project, args.device, build_dir=os.path.join(tmp, "build"), profile=profile,
                         **opts) as runner:
            outputs, report = runner.run(inputs, number=args.number, repeat=args.repeat)
            summary = runner.format_time(report) if args.print_time else None
            steps = runner.profile() if profile else None
        if steps is not None:
            _state_profile_overhead(steps, report, args, inputs, on_board=args.device == "serial",
                                    open_plain=lambda: open_runner(project, args.device,
                                                                   build_dir=os.path.join(tmp, "build"), **opts))
    return _finish_run(args, writer, outputs, report, summary, steps)


def _finish_run(args, writer, outputs, report, summary, steps) -> int:
    """Write and print what ``tvmc run`` measured."""
    writer.write(outputs, report)
    if steps is not None:
        writer.write_profile(steps)
    if summary is not None:
        print(summary)
    if steps is not None:
        print(steps.format_table(args.profile_top))
    print_outputs(args, outputs)
    return 0


def _check_rpc_options(args) -> None:
    """--rpc-tracker and --rpc-key go together, and the device is the server's: refuse device options."""
    from .runtime.rpc import parse_tracker

    if args.rpc_tracker is None or not args.rpc_key:
        raise UsageError("--rpc-tracker HOST:PORT and --rpc-key KEY go together (the tracker and the device key "
                         "its servers registered with)")
    parse_tracker(args.rpc_tracker)
    given = [opt for opt, value, default in (("--device", args.device, "host"), ("--port", args.port, None),
                                              ("--qemu-link", args.qemu_link, None),
                                              ("--firmware", args.firmware, "baremetal"),
                                              ("--zephyr-workspace", args.zephyr_workspace, None))
             if value != default]
    if given:
        raise UsageError(f"{', '.join(given)}: with --rpc-tracker the device is the server's "
                         "(python -m tinyengine_tvm.rpc_server options)")


def _cmd_run_rpc(args, profile: bool) -> int:
    """``tvmc run --rpc-tracker H:P --rpc-key K``: run on a server of the farm (runtime/rpc.py)."""
    from .runtime.rpc import RpcRunner

    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        project, meta, inputs, writer = prepare_run(args, tmp)
        with RpcRunner(project, args.rpc_tracker, args.rpc_key, profile=profile,
                       request_timeout=args.rpc_timeout) as runner:
            outputs, report = runner.run(inputs, number=args.number, repeat=args.repeat)
            summary = runner.format_time(report) if args.print_time else None
            steps = runner.profile() if profile else None
        if steps is not None:  # the plain build runs on a server of the same key
            _state_profile_overhead(steps, report, args, inputs, on_board=runner.server.get("device") == "serial",
                                    open_plain=lambda: RpcRunner(project, args.rpc_tracker, args.rpc_key,
                                                                 request_timeout=args.rpc_timeout))
    return _finish_run(args, writer, outputs, report, summary, steps)


def _per_inference(report: dict) -> float:
    """The last repeat's mean work per inference in the profile's unit (host: ns)."""
    if report.get("device") == "host":
        return report["milliseconds"][-1] * 1e6
    return float(report[f"{report['unit']}_per_repeat"][-1])


def _state_profile_overhead(steps, report: dict, args, inputs, *, on_board: bool, open_plain) -> None:
    """Run the same inputs on the build without marks (``open_plain()``), so the profile states
    what it cost; on a board only the flashed (profile) firmware is there, and the profile says so."""
    steps.profiled_total = _per_inference(report)
    if on_board:
        steps.note = (f"overhead not measured: the board runs the profile build only "
                      f"({len(steps.steps) + 1} marks a run)")
    else:
        with open_plain() as plain:
            _, plain_report = plain.run(inputs, number=args.number, repeat=args.repeat)
        steps.plain_total = _per_inference(plain_report)
    report["profile_build"] = True


def qemu_board(name: str):
    """The board for --device=qemu, refusing boards QEMU does not emulate."""
    from .targets import get_board

    board = get_board(name)
    if not board.qemu_machine:
        raise UsageError(f"board {board.name} has no QEMU model; --device=qemu takes mps2-an386, mps2-an500 "
                         "or mps3-an547")
    return board


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
    c.add_argument("model", nargs="?", help="int8 .tflite or ONNX QDQ .onnx model")
    c.add_argument("--target", default="tinyengine", help="code generator (only 'tinyengine')")
    c.add_argument("-o", "--output", help="output directory, or OUT.tar for a tarball (required)")
    c.add_argument("--list-operators", action="store_true",
                   help="print every supported operator with its data types and kernels, and exit")
    c.add_argument("--model-name", default=None, help="C identifier prefix (default: file name)")
    c.add_argument("--tuning-records", default=None, metavar="RECORDS.json",
                   help="apply the fastest record of this model from 'tvmc tune' that fits the board / budget")
    c.add_argument("--target-tinyengine-board", default=None, metavar="BOARD",
                   help="check the plan against a board's SRAM and flash (see 'tvmc boards')")
    c.add_argument("--target-tinyengine-mcpu", default=None, metavar="CORE",
                   help="select kernels for a core: cortex-m4, cortex-m7, cortex-m55 (default: the board's core; "
                        "none: portable kernels only)")
    c.add_argument("--int8-io", action="store_true",
                   help="take and give int8 tensors where the model quantizes a float input or dequantizes "
                        "an output (the header gives their scale and zero point)")
    c.add_argument("--nhwc-input", action="store_true",
                   help="take an NHWC image where the model transposes an NCHW input first (PyTorch exports)")
    c.add_argument("--keep-portable-arena", action="store_true",
                   help="never let the Cortex-M kernels' scratch grow the arena (keeps portable kernels there)")
    c.add_argument("--narrow-at-peak", action="store_true",
                   help="convolutions whose im2col scratch is live at the arena peak im2col one pixel at a time "
                        "(a smaller arena, slower layers)")
    c.add_argument("--disable-pass", action="append", default=[], metavar="PASS",
                   help="turn off one optimization pass (repeatable): FoldPadIntoConv, PatchBasedInference, "
                        "InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule, SliceViews")
    c.add_argument("--pass-config", action="append", default=[], metavar="PASS.OPTION=VALUE",
                   help="set a pass option, e.g. MemoryAwareSchedule.max_states=5000 (repeatable)")
    c.add_argument("--sram-budget", type=int_option(1, 1 << 31), default=None, metavar="BYTES",
                   help="fail when the arena needs more than BYTES")
    c.add_argument("--memory-plot", default=None, metavar="FILE.png",
                   help="draw live bytes per operator with and without the optimizations (matplotlib)")
    c.set_defaults(func=_cmd_compile)

    _add_run_parser(sub)

    b = sub.add_parser("boards", help="list the boards and emulated boards")
    b.set_defaults(func=_cmd_boards)

    from .micro.cli import register  # tvmc micro ...

    register(sub)
    from .tune.cli import register as register_tune  # tvmc tune ...

    register_tune(sub, int_option)
    from .training.cli import register as register_training  # tvmc train-compile ...

    register_training(sub, int_option)
    return parser


def _add_run_parser(sub) -> None:
    """``tvmc run``: every option of every runner (runtime/runner.py), declared here only."""
    r = sub.add_parser("run", help="run a compiled project on this host, QEMU or a board")
    r.add_argument("project", help="directory or .tar written by 'tvmc compile'")
    r.add_argument("--device", default="host", choices=["host", "qemu", "serial"],
                   help="host: build with gcc and run here; qemu: firmware on an emulated Cortex-M, over its "
                        "UART (or semihosting, see --qemu-link); serial: a board running the project's Zephyr "
                        "app (--port)")
    r.add_argument("--board", default="mps2-an500", help="emulated board for --device=qemu "
                   "(mps2-an386 Cortex-M4, mps2-an500 Cortex-M7, mps3-an547 Cortex-M55)")
    r.add_argument("--qemu-link", default=None, choices=["tcp", "pty", "semihosting"],
                   help="--device=qemu: the protocol over QEMU's UART on a loopback TCP socket (tcp; the default "
                        "for the bare-metal firmware) or a pseudo-terminal (pty; the default for Zephyr), or the "
                        "file-based semihosting runner")
    r.add_argument("--firmware", default="baremetal", choices=["baremetal", "zephyr"],
                   help="--device=qemu: the project's bare-metal firmware (default), or the Zephyr application "
                        "of 'tvmc micro create-project', built for --board (mps2/an385, mps2-an386, mps2-an500, "
                        "mps3-an547) and cached; its timings are Zephyr cycle-counter ticks, not cycles")
    r.add_argument("--zephyr-workspace", default=None, metavar="DIR",
                   help="--firmware=zephyr: the Zephyr workspace (directory holding env.sh or zephyr/; "
                        "default: $ZEPHYR_BASE)")
    r.add_argument("--port", help="serial port of the board for --device=serial: a device (e.g. /dev/ttyACM0) "
                   "or a pyserial URL (socket://HOST:PORT, rfc2217://HOST:PORT: a network serial bridge)")
    r.add_argument("--baud", type=int_option(300, 16_000_000), default=115200,
                   help="baud rate for --device=serial (115200)")
    r.add_argument("--timeout", type=seconds_option, default=60.0, help="seconds before a hung emulator is stopped")
    r.add_argument("--link-timeout", type=seconds_option, default=10.0,
                   help="seconds without an answer before a request is sent again (serial/qemu links; "
                        "one inference must take less)")
    r.add_argument("--report", default=None, metavar="FILE.json",
                   help="write the run's figures (instructions, stack_peak_bytes, flash_bytes, sram_bytes)")
    r.add_argument("--inputs", help=".npz of inputs keyed by tensor name (random if omitted)")
    r.add_argument("--outputs", help="write outputs to this .npz")
    r.add_argument("--print-time", action="store_true", help="print execution time")
    r.add_argument("--profile", action="store_true",
                   help="time every layer (a profile build of the firmware or host library) and print the "
                        "per-layer table; the build without profiling is run too, to state the overhead")
    r.add_argument("--profile-json", default=None, metavar="FILE.json", help="write the per-layer profile here "
                                                                            "(implies --profile)")
    r.add_argument("--profile-top", type=int_option(1, 1 << 20), default=None, metavar="N",
                   help="print only the N costliest layers (all are in the JSON)")
    r.add_argument("--print-top", type=int_option(0, 1 << 31), default=0, metavar="N",
                   help="print the top-N output entries")
    r.add_argument("--number", type=int_option(1, 1_000_000), default=1,
                   help="inferences per measurement (the time printed is their mean; semihosting runs one)")
    r.add_argument("--repeat", type=int_option(1, 1_000_000), default=1,
                   help="measurements of --number inferences each (mean/median/min/max over them)")
    r.add_argument("--seed", type=int_option(0, (1 << 63) - 1), default=0, help="seed of the random inputs")
    r.add_argument("--rpc-tracker", default=None, metavar="HOST:PORT",
                   help="run on a server of this TVM RPC tracker's farm (python -m tinyengine_tvm.rpc_server); "
                        "the device is the server's")
    r.add_argument("--rpc-key", default=None, metavar="KEY", help="the device key of the servers (with --rpc-tracker)")
    r.add_argument("--rpc-timeout", type=seconds_option, default=120.0,
                   help="seconds to wait for the tracker to grant a free server (120)")
    r.set_defaults(func=_cmd_run)


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tvmc`` and ``python -m tinyengine_tvm``."""
    args = build_parser().parse_args(argv)  # argparse itself exits with status 2 on bad options
    try:
        return args.func(args)
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader left (``tvmc ... | head``): stop quietly, and keep Python's
        # exit-time flush of stdout from raising again.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    except Exception as exc:  # a bug of ours, not bad input: say so, keep the traceback on request
        if os.environ.get("TINYENGINE_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}\nThis is a bug in tinyengine-tvm; please report it "
              "with the command and the model (TINYENGINE_DEBUG=1 shows the traceback).", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
