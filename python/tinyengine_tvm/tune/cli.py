"""``tvmc tune``: search the compile configurations of a model for the fastest that fits a board."""
from __future__ import annotations

import os

from ..errors import TinyEngineError, UsageError
from ..micro.zephyr_flash import PLACEHOLDERS as FLASH_PLACEHOLDERS

#: Runners tvmc tune measures on.
RUNNERS = ("qemu", "rpc", "serial")


def register(sub, int_option) -> None:
    """Add ``tvmc tune`` to the subcommands."""
    t = sub.add_parser("tune", help="find the fastest compile configuration that fits a board")
    t.add_argument("model", help="int8 .tflite or ONNX QDQ .onnx model")
    t.add_argument("--target-tinyengine-board", required=True, metavar="BOARD",
                   help="the board whose SRAM and flash bound the plan (see 'tvmc boards')")
    t.add_argument("--sram-budget", type=int_option(1024, 1 << 31), default=None, metavar="BYTES",
                   help="largest arena (default: the board's RAM less the firmware's allowance)")
    t.add_argument("--runner", default="qemu", choices=RUNNERS,
                   help="where configurations are measured: the QEMU board of the core (instructions), "
                        "the servers of an RPC tracker (--rpc-tracker, --rpc-key), or the board itself on a "
                        "serial port (--port; every configuration's Zephyr app is built and flashed)")
    t.add_argument("--rpc-tracker", default=None, metavar="HOST:PORT", help="TVM RPC tracker (--runner rpc)")
    t.add_argument("--rpc-key", default=None, metavar="KEY", help="device key the servers registered under")
    t.add_argument("--port", default=None, metavar="PORT",
                   help="--runner serial: the board's serial port, a device (/dev/ttyACM0) or a pyserial URL "
                        "(socket://HOST:PORT, rfc2217://HOST:PORT)")
    t.add_argument("--baud", type=int_option(300, 16_000_000), default=None, metavar="N",
                   help="--runner serial: baud rate, built into the firmware too (115200)")
    t.add_argument("--flash-command", default=None, metavar="CMD",
                   help="--runner serial: how to flash a candidate instead of 'west flash', e.g. "
                        "\"st-flash --reset write {bin} 0x8000000\"; placeholders: "
                        + "; ".join("{%s} %s" % kv for kv in FLASH_PLACEHOLDERS.items()))
    t.add_argument("--zephyr-workspace", default=None, metavar="DIR",
                   help="--runner serial: the Zephyr workspace the candidates are built in (the directory "
                        "holding env.sh or zephyr/; default: $ZEPHYR_BASE)")
    t.add_argument("--trials", type=int_option(1, 100_000), default=16, help="measurements at most (16)")
    t.add_argument("--strategy", default="xgb", choices=["xgb", "random"],
                   help="measurement order: the XGBoost cost model's ranking (default) or random")
    t.add_argument("--pool", type=int_option(1, 100_000), default=None, metavar="N",
                   help="configurations compiled (default: 4 x trials, at least 24)")
    t.add_argument("--seed", type=int_option(0, (1 << 31) - 1), default=0, help="seed of the sample and order")
    t.add_argument("-o", "--output", required=True, metavar="RECORDS.json",
                   help="tuning records, one JSON object per line (appended to a records file of ours)")
    t.add_argument("--prior-records", action="append", default=[], metavar="RECORDS.json",
                   help="records of earlier runs (any model): layers they measured are not predicted again "
                        "(repeatable; the -o file's own records are always used)")
    t.add_argument("--no-kernel-search", action="store_true",
                   help="keep the default kernel of every layer (no per-layer variant search)")
    t.add_argument("--no-narrow", action="store_true",
                   help="do not try the one-column im2col at the arena peak for plans over the SRAM budget")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")
    t.set_defaults(func=_cmd_tune)


def check_records_path(path: str, keep) -> str:
    """A new file, or a records file of ours (appended to: records accumulate); anything else is refused."""
    from ..output_paths import check_output_file
    from .records import load_records

    def not_records(p: str):
        if os.path.getsize(p) == 0:
            return None
        try:
            load_records(p)
        except UsageError:
            return "is not a tuning-records file of tinyengine-tvm"
        return None

    return check_output_file(path, "-o", (".json", ".jsonl"), not_records, keep).path


def serial_measurer(args, board):
    """The --runner serial measurer, every option checked before any work (UsageError, exit 2)."""
    from ..micro.zephyr_boards import get_zephyr_board
    from ..micro.zephyr_flash import command_flasher
    from ..micro.zephyr_workspace import find_workspace
    from .measure import SerialMeasurer

    if not args.port:
        raise UsageError("--runner serial needs --port PORT: the board's serial port (e.g. /dev/ttyACM0) or a "
                         "pyserial URL (socket://HOST:PORT)")
    try:
        zb = get_zephyr_board(board.name)
    except TinyEngineError as exc:
        raise UsageError(f"--runner serial builds the Zephyr application, and {exc}") from None
    flash = command_flasher(args.flash_command) if args.flash_command is not None else None
    try:
        find_workspace(args.zephyr_workspace)
    except TinyEngineError as exc:
        raise UsageError(f"--runner serial builds every configuration with Zephyr: {exc}") from None
    return SerialMeasurer(zb.zephyr_name, args.port, args.baud or 115200, workspace=args.zephyr_workspace,
                          flash=flash, seed=args.seed)


def _cmd_tune(args) -> int:
    from ..targets import get_board
    from .tuner import format_result, tune

    if not os.path.isfile(args.model):
        raise UsageError(f"model '{args.model}': no such file")
    board = get_board(args.target_tinyengine_board)
    measurer = None
    if args.runner == "rpc":
        if not (args.rpc_tracker and args.rpc_key):
            raise UsageError("--runner rpc needs --rpc-tracker HOST:PORT and --rpc-key KEY")
        from ..runtime.rpc import parse_tracker
        from .measure import RpcMeasurer

        parse_tracker(args.rpc_tracker)  # a bad HOST:PORT is said before any work
        measurer = RpcMeasurer(args.rpc_tracker, args.rpc_key, seed=args.seed)
    elif args.rpc_tracker or args.rpc_key:
        raise UsageError("--rpc-tracker/--rpc-key are for --runner rpc")
    if args.runner == "serial":
        measurer = serial_measurer(args, board)
    else:
        given = [o for o, v in (("--port", args.port), ("--baud", args.baud), ("--flash-command", args.flash_command),
                                ("--zephyr-workspace", args.zephyr_workspace)) if v is not None]
        if given:
            raise UsageError(f"{', '.join(given)}: for --runner serial")
    from .records import load_records

    for prior in args.prior_records:
        load_records(prior)  # a missing or malformed file is said before any work
    path = check_records_path(args.output, keep=[args.model])
    result = tune(args.model, board.name, sram_budget=args.sram_budget, trials=args.trials, strategy=args.strategy,
                  measurer=measurer, records_path=path, pool_size=args.pool, seed=args.seed,
                  progress=not args.no_progress, kernel_search=not args.no_kernel_search,
                  prior_records=args.prior_records, narrow=not args.no_narrow)
    print(format_result(result))
    return 0
