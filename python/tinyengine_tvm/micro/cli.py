"""``tvmc micro``, registered by ``tinyengine_tvm.cli.build_parser``:

    tvmc micro create-project OUT COMPILED zephyr --project-option board=nucleo_f746zg [mlperf=true ...]
    tvmc micro create-project OUT COMPILED baremetal --project-option board=mps2-an500 [mlperf=true ...]
    tvmc micro build OUT zephyr [--zephyr-workspace DIR] [--project-option ...] [-f]
    tvmc micro flash OUT zephyr [--zephyr-workspace DIR] [--project-option runner=openocd]

build and flash find Zephyr through --zephyr-workspace DIR (the directory
holding env.sh / zephyr/), the zephyr_base option or $ZEPHYR_BASE, and build
with west when the workspace is a west workspace, else with cmake+ninja.

Running the flashed board (``tvmc run --device=serial``) is ``tvmc run``'s,
over the runners of ``runtime/runner.py``.
"""
from __future__ import annotations


def register(sub) -> None:
    """Add ``tvmc micro`` to the subcommands ``sub`` of tvmc's parser."""
    from .baremetal import BAREMETAL_OPTION_HELP
    from .project import OPTION_HELP

    options_help = ("KEY=VALUE (repeatable); zephyr: " + "; ".join(f"{k}: {v}" for k, v in OPTION_HELP.items())
                    + "; baremetal (firmware.elf for QEMU): "
                    + "; ".join(f"{k}: {v}" for k, v in BAREMETAL_OPTION_HELP.items()))
    m = sub.add_parser("micro", help="create, build and flash a Zephyr application for a board")
    msub = m.add_subparsers(dest="micro_command", required=True)
    c = msub.add_parser("create-project", help="a compiled model as a standalone Zephyr application, or "
                        "(baremetal) the emulated boards' benchmark-server firmware, built")
    c.add_argument("project_dir", help="directory to create")
    c.add_argument("compiled", help="directory or .tar written by 'tvmc compile'")
    c.add_argument("platform", choices=["zephyr", "baremetal"])
    c.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help=options_help)
    c.add_argument("-f", "--force", action="store_true",
                   help="replace a previous Zephyr project of this tool in PROJECT_DIR (never anything else)")
    c.set_defaults(func=_cmd_create)
    ws_help = "the Zephyr workspace: the directory holding env.sh or zephyr/ (default: $ZEPHYR_BASE)"
    b = msub.add_parser("build", help="build the project in a Zephyr workspace (west, else cmake+ninja)")
    b.add_argument("project_dir")
    b.add_argument("platform", choices=["zephyr"])
    b.add_argument("--zephyr-workspace", default=None, metavar="DIR", help=ws_help)
    b.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="board=..., west_cmd=..., zephyr_base=...")
    b.add_argument("-f", "--force", action="store_true", help="pristine build")
    b.set_defaults(func=_cmd_build)
    f = msub.add_parser("flash", help="west flash the built project")
    f.add_argument("project_dir")
    f.add_argument("platform", choices=["zephyr"])
    f.add_argument("--zephyr-workspace", default=None, metavar="DIR", help=ws_help)
    f.add_argument("--project-option", nargs="+", action="extend", default=[], metavar="KEY=VALUE",
                   help="runner=..., west_cmd=..., zephyr_base=...")
    f.set_defaults(func=_cmd_flash)


def _options(pairs):
    from .project import parse_project_options

    return parse_project_options(pairs)


def _cmd_create_baremetal(args) -> int:
    from ..errors import TinyEngineError
    from .baremetal import create_baremetal_project

    opts = {}
    for pair in args.project_option:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise TinyEngineError(f"--project-option '{pair}': use KEY=VALUE")
        opts[key.strip()] = value.strip()
    info = create_baremetal_project(args.project_dir, args.compiled, opts, force=args.force)
    ml = info["mlperf"]
    print(f"project      {info['project_dir']}")
    print(f"firmware     {info['elf']} ({info['board']}, "
          + (f"MLPerf Tiny DUT, model {ml['model_version']}, results {ml['results_format']})" if ml
             else "tinyengine benchmark protocol)"))
    print(f"run          {info['qemu_command']}   (in {info['project_dir']})")
    return 0


def _cmd_create(args) -> int:
    if args.platform == "baremetal":
        return _cmd_create_baremetal(args)
    from .project import create_project
    from .zephyr_boards import ZEPHYR_BOARDS

    emulated = {b.zephyr_name for b in ZEPHYR_BOARDS.values() if b.emulated}
    info = create_project(args.project_dir, args.compiled, args.platform, _options(args.project_option),
                          force=args.force)
    req = info["requirements"]
    f, r = req["flash"], req["ram"]
    share = "estimate" if req["zephyr_allowances_are_estimates"] else "measured"
    print(f"project      {info['project_dir']}")
    print(f"board        {info['board']} ({info['board_name']}), UART {info['baud']} baud, "
          + (f"MLPerf Tiny protocol (model {info['mlperf']['model_version']})" if info["mlperf"]
             else "tinyengine benchmark protocol"))
    print(f"flash        {f['total']:,} of {f['available']:,} B: model {f['model']:,}, server {f['server']:,}, "
          f"Zephyr {f['zephyr_allowance']:,} ({share})")
    print(f"RAM          {r['total']:,} of {r['available']:,} B: model {r['model']:,}, server {r['server']:,}, "
          f"main stack {r['main_stack']:,}, Zephyr {r['zephyr_allowance']:,} ({share})")
    print(f"sizes        {req['sizes']}")
    if info["board"] in emulated:
        print(f"next         tvmc run COMPILED --device=qemu --firmware=zephyr --board {info['board']} "
              f"(or tvmc micro build {info['project_dir']} zephyr, then qemu-system-arm yourself)")
    else:
        print(f"next         west build -b {info['board']} {info['project_dir']} && west flash "
              f"(or tvmc micro build/flash {info['project_dir']} zephyr)")
    return 0


def _cmd_build(args) -> int:
    from .project import build_project

    build_dir = build_project(args.project_dir, args.platform, _options(args.project_option), args.force,
                              args.zephyr_workspace)
    print(f"built        {build_dir}")
    return 0


def _cmd_flash(args) -> int:
    from .project import flash_project

    flash_project(args.project_dir, args.platform, _options(args.project_option), args.zephyr_workspace)
    return 0
