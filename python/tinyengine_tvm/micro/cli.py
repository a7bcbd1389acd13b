"""tvmc subcommands for boards, registered by ``tinyengine_tvm.cli.build_parser``:

    tvmc micro create-project OUT COMPILED zephyr --project-option board=nucleo_f746zg [mlperf=true ...]
    tvmc micro build OUT zephyr [--project-option ...] [-f]
    tvmc micro flash OUT zephyr [--project-option runner=openocd]
    tvmc run COMPILED --device=serial --port /dev/ttyACM0 [--baud 115200] [--number N] [--repeat R]
    tvmc run COMPILED --device=qemu [--board mps2-an500] [--qemu-link tcp|pty|semihosting]

``--device=serial`` and ``--device=qemu`` (links tcp/pty) speak the
tinyengine benchmark protocol (runtime/serial_link.py); ``--qemu-link
semihosting`` is the file-based runner (runtime/qemu.py).
"""
from __future__ import annotations

import argparse
import os
import tempfile


from ..errors import TinyEngineError


def register(sub, run_parser: argparse.ArgumentParser) -> None:
    """Add ``tvmc micro`` and the serial/QEMU-UART options of ``tvmc run``."""
    from ..cli import int_option, seconds_option
    from .project import OPTION_HELP

    options_help = "KEY=VALUE (repeatable): " + "; ".join(f"{k}: {v}" for k, v in OPTION_HELP.items())
    m = sub.add_parser("micro", help="create, build and flash a Zephyr application for a board")
    msub = m.add_subparsers(dest="micro_command", required=True)
    c = msub.add_parser("create-project", help="a compiled model as a standalone Zephyr application")
    c.add_argument("project_dir", help="directory to create")
    c.add_argument("compiled", help="directory or .tar written by 'tvmc compile'")
    c.add_argument("platform", choices=["zephyr"])
    c.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help=options_help)
    c.add_argument("-f", "--force", action="store_true",
                   help="replace a previous Zephyr project of this tool in PROJECT_DIR (never anything else)")
    c.set_defaults(func=_cmd_create)
    b = msub.add_parser("build", help="west build the project (needs west and ZEPHYR_BASE)")
    b.add_argument("project_dir")
    b.add_argument("platform", choices=["zephyr"])
    b.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="board=..., west_cmd=..., zephyr_base=...")
    b.add_argument("-f", "--force", action="store_true", help="pristine build")
    b.set_defaults(func=_cmd_build)
    f = msub.add_parser("flash", help="west flash the built project")
    f.add_argument("project_dir")
    f.add_argument("platform", choices=["zephyr"])
    f.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="runner=..., west_cmd=..., zephyr_base=...")
    f.set_defaults(func=_cmd_flash)

    for action in run_parser._actions:
        if action.dest == "repeat":
            action.help = ("host: inferences to time; serial/qemu devices: measurements of --number inferences "
                           "each (mean/median/min/max over them)")
        if action.dest == "device":
            action.choices = ["host", "qemu", "serial"]
            action.help = ("host: build with gcc and run here; qemu: firmware on an emulated Cortex-M, over its "
                           "UART (or semihosting, see --qemu-link); serial: a board running the project's Zephyr "
                           "app (--port)")
    run_parser.add_argument("--port", help="serial port of the board for --device=serial (e.g. /dev/ttyACM0)")
    run_parser.add_argument("--baud", type=int_option(300, 16_000_000), default=115200, help="baud rate for --device=serial (115200)")
    run_parser.add_argument("--number", type=int_option(1, 1_000_000), default=1,
                            help="inferences per measurement on a device (the time printed is their mean)")
    run_parser.add_argument("--qemu-link", default="tcp", choices=["tcp", "pty", "semihosting"],
                            help="--device=qemu: the protocol over QEMU's UART on a loopback TCP socket (tcp) or "
                                 "a pseudo-terminal (pty), or the file-based semihosting runner")
    run_parser.add_argument("--link-timeout", type=seconds_option, default=10.0,
                            help="seconds without an answer before a request is sent again (serial/qemu links; "
                                 "one inference must take less)")
    original = run_parser.get_default("func")
    run_parser.set_defaults(func=lambda args: _cmd_run(args, original))


def _options(pairs):
    from .project import parse_project_options

    return parse_project_options(pairs)


def _cmd_create(args) -> int:
    from .project import create_project

    info = create_project(args.project_dir, args.compiled, args.platform, _options(args.project_option),
                          force=args.force)
    req = info["requirements"]
    f, r = req["flash"], req["ram"]
    print(f"project      {info['project_dir']}")
    print(f"board        {info['board']} ({info['board_name']}), UART {info['baud']} baud, "
          + (f"MLPerf Tiny protocol (model {info['mlperf']['model_version']})" if info["mlperf"]
             else "tinyengine benchmark protocol"))
    print(f"flash        {f['total']:,} of {f['available']:,} B: model {f['model']:,}, server {f['server']:,}, "
          f"Zephyr {f['zephyr_allowance']:,} (estimate)")
    print(f"RAM          {r['total']:,} of {r['available']:,} B: model {r['model']:,}, server {r['server']:,}, "
          f"main stack {r['main_stack']:,}, Zephyr {r['zephyr_allowance']:,} (estimate)")
    print(f"sizes        {req['sizes']}")
    print(f"next         west build -b {info['board']} {info['project_dir']} && west flash "
          f"(or tvmc micro build/flash {info['project_dir']} zephyr)")
    return 0


def _cmd_build(args) -> int:
    from .project import build_project

    print(f"built        {build_project(args.project_dir, args.platform, _options(args.project_option), args.force)}")
    return 0


def _cmd_flash(args) -> int:
    from .project import flash_project

    flash_project(args.project_dir, args.platform, _options(args.project_option))
    return 0


# --------------------------------------------------------------------------- tvmc run
def _cmd_run(args, original) -> int:
    if args.device == "host" or (args.device == "qemu" and args.qemu_link == "semihosting"):
        return original(args)
    from ..cli import prepare_run, qemu_board
    from ..runtime.serial_link import DeviceModel, QemuSerial, open_serial

    if args.device == "serial" and not args.port:
        raise TinyEngineError("--device=serial needs --port (the board's serial port, e.g. /dev/ttyACM0)")
    board = qemu_board(args.board) if args.device == "qemu" else None
    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        project, meta, inputs, writer = prepare_run(args, tmp)
        sizes = {}
        if args.device == "serial":
            link = open_serial(args.port, args.baud, timeout=args.link_timeout)
        else:
            from ..runtime.qemu import elf_sizes
            from .baremetal import build_serial_firmware, group_sizes

            elf = build_serial_firmware(project, board, os.path.join(tmp, "build"))
            sizes = {**elf_sizes(elf), "model_flash_bytes": group_sizes(elf)["model"]["flash_bytes"],
                     "core": board.core, "qemu_machine": board.qemu_machine, "elf": elf}
            link = QemuSerial(elf, board.name, link=args.qemu_link, timeout=args.link_timeout,
                              boot_timeout=max(5.0, args.timeout))
        with link:
            model = DeviceModel(link.client, meta)
            outputs, report = model.run(inputs, number=args.number, repeat=args.repeat)
        report.update(sizes)
        if sizes:
            report["sram_bytes"] = sizes["static_ram_bytes"] + report["stack_peak_bytes"]
    writer.write(outputs, report)
    if args.print_time:
        print(format_time(report))
    from ..cli import print_outputs

    print_outputs(args, outputs)
    return 0


def format_time(r: dict) -> str:
    """tvmc's execution-time summary for a device report (mean/median/max/min/std over the repeats)."""
    unit = r["unit"]
    lines = []
    if unit == "instructions":
        s = r["instructions_summary"]
        lines.append(f"{r['board']} ({r.get('core', r['platform'])}): {int(round(s['mean'])):,} instructions per "
                     f"inference (QEMU -icount: instructions, not cycles); stack peak {r['stack_peak_bytes']:,} B"
                     + (f"; flash {r['flash_bytes']:,} B; SRAM {r['sram_bytes']:,} B" if "flash_bytes" in r else ""))
        lines.append(f"Instruction count summary ({r['repeat']} repeats of {r['number']} inferences):")
        lines.append(f"{'mean':>14} {'median':>14} {'max':>14} {'min':>14} {'std':>10}")
        lines.append(f"{s['mean']:>14,.0f} {s['median']:>14,.0f} {s['max']:>14,.0f} {s['min']:>14,.0f} "
                     f"{s['std']:>10,.1f}")
    elif "ms_summary" not in r:
        c = r[f"{unit}_summary"]
        lines.append(f"{r['board']} ({r['platform']}): {c['mean']:,.0f} {unit} per inference "
                     f"({r['repeat']} repeats of {r['number']}: median {c['median']:,.0f}, max {c['max']:,.0f}, "
                     f"min {c['min']:,.0f}); stack peak {r['stack_peak_bytes']:,} B")
    else:
        s, c = r["ms_summary"], r["cycles_summary"]
        lines.append(f"{r['board']} ({r['platform']}, {r['clock_hz'] / 1e6:g} MHz): {c['mean']:,.0f} cycles per "
                     f"inference; stack peak {r['stack_peak_bytes']:,} B of {r['stack_size_bytes']:,} B")
        lines.append(f"Execution time summary ({r['repeat']} repeats of {r['number']} inferences):")
        lines.append(f"{'mean (ms)':>12} {'median (ms)':>12} {'max (ms)':>12} {'min (ms)':>12} {'std (ms)':>12}")
        lines.append(f"{s['mean']:>12.4f} {s['median']:>12.4f} {s['max']:>12.4f} {s['min']:>12.4f} "
                     f"{s['std']:>12.4f}")
    return "\n".join(lines)
