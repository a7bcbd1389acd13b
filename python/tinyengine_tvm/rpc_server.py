"""``python -m tinyengine_tvm.rpc_server``: serve one device (a QEMU board or an attached board)
to the farm of a TVM RPC tracker (see ``runtime/rpc.py``).

    python -m tinyengine_tvm.rpc_server --tracker 127.0.0.1:9190 --key m7 --device qemu --board mps2-an500
    python -m tinyengine_tvm.rpc_server --tracker farm:9190 --key f746 --device serial --port /dev/ttyACM0

One session at a time: TVM's RPC server takes the next client only when the current one is done,
so a client's session owns the device. Runs until stopped (Ctrl-C, SIGTERM or SIGKILL: the emulator
of a running measurement dies with it).
"""
from __future__ import annotations

import argparse
import os
import signal
import socket
import sys
import tempfile
import threading
import time
from functools import partial
from typing import List, Optional

from .errors import TinyEngineError, UsageError


def build_parser() -> argparse.ArgumentParser:
    """The server's options: where the tracker is, the key clients ask for, and the device."""
    from .cli import int_option, seconds_option

    p = argparse.ArgumentParser(prog="python -m tinyengine_tvm.rpc_server",
                                description="Register a QEMU board or an attached board with a TVM RPC tracker "
                                            "and run the compiled projects clients send (one at a time).")
    p.add_argument("--tracker", required=True, metavar="HOST:PORT",
                   help="the RPC tracker (python -m tvm.exec.rpc_tracker)")
    p.add_argument("--tracker-wait", type=seconds_option, default=60.0, metavar="SECONDS",
                   help="how long to wait for the tracker to answer at start (60)")
    p.add_argument("--key", required=True, help="the device key clients request (tvmc run --rpc-key)")
    p.add_argument("--device", required=True, choices=["qemu", "serial"],
                   help="qemu: the project's firmware on an emulated board; serial: a board on --port, flashed "
                        "with the project's firmware (tvmc micro flash)")
    p.add_argument("--board", default="mps2-an500", help="the emulated board (qemu) or the board's name (serial)")
    p.add_argument("--port", default=None, help="the board's serial port (serial), e.g. /dev/ttyACM0")
    p.add_argument("--baud", type=int_option(300, 16_000_000), default=115200, help="serial baud rate (115200)")
    p.add_argument("--firmware", default="baremetal", choices=["baremetal", "zephyr"],
                   help="qemu: the bare-metal firmware (default) or the Zephyr application")
    p.add_argument("--zephyr-workspace", default=None, metavar="DIR", help="--firmware=zephyr: the Zephyr workspace")
    p.add_argument("--timeout", type=seconds_option, default=60.0, help="seconds for the firmware to boot")
    p.add_argument("--link-timeout", type=seconds_option, default=10.0,
                   help="seconds without an answer before a request to the device is sent again")
    p.add_argument("--host", default="0.0.0.0", help="address the RPC server listens on (0.0.0.0)")
    p.add_argument("--listen-port", type=int_option(1, 65535), default=9091,
                   help="first port to try listening on (the next free one up to 9199 is taken)")
    p.add_argument("--custom-addr", default=None,
                   help="address to report to the tracker (default: the one the tracker sees)")
    p.add_argument("--name", default=None, help="this server's name in reports (default HOSTNAME:PID)")
    p.add_argument("--cache-dir", default=None, metavar="DIR",
                   help="where uploaded projects and their builds are kept (default: a temporary directory); "
                        "servers on one machine may share one, so the kernels compile once for all of them")
    return p


def check_options(args) -> dict:
    """The server options as :func:`~.runtime.rpc.register_server_functions` takes them, every
    one checked here, before the server registers with the tracker."""
    from .cli import qemu_board
    from .runtime.rpc import parse_tracker

    parse_tracker(args.tracker, "--tracker")
    if not args.key or any(c.isspace() or c == ":" for c in args.key):
        raise UsageError(f"--key '{args.key}': give a key without spaces or ':'")
    if args.device == "serial" and not args.port:
        raise UsageError("--device=serial needs --port (the board's serial port, e.g. /dev/ttyACM0)")
    if args.firmware == "zephyr":
        if args.device != "qemu":
            raise UsageError("--firmware=zephyr runs the Zephyr application in QEMU: it needs --device=qemu")
        from .micro.zephyr_qemu import emulated_zephyr_board
        from .micro.zephyr_workspace import find_workspace

        board = emulated_zephyr_board(args.board).zephyr_name
        find_workspace(args.zephyr_workspace)
    elif args.device == "qemu":
        from .runtime.firmware import missing_tools

        board = qemu_board(args.board).name
        if missing_tools():
            raise TinyEngineError(f"--device=qemu needs {', '.join(missing_tools())} "
                                  "(scripts/install_arm_toolchain.sh)")
    else:
        board = args.board
    return dict(device=args.device, board=board, port=args.port, baud=args.baud, firmware=args.firmware,
                qemu_link="pty" if args.firmware == "zephyr" else "tcp", timeout=args.timeout,
                link_timeout=args.link_timeout, zephyr_workspace=args.zephyr_workspace, key=args.key,
                name=args.name or f"{socket.gethostname()}:{os.getpid()}")


def main(argv: Optional[List[str]] = None) -> int:
    """Check the options, start TVM's RPC server registered with the tracker, and serve until stopped."""
    args = build_parser().parse_args(argv)
    try:
        options = check_options(args)
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from tvm import rpc

    from .runtime.rpc import count_servers, parse_tracker, register_server_functions

    tracker = parse_tracker(args.tracker, "--tracker")
    # TVM's server gives up on an absent tracker silently, in its worker: wait for it here (a tracker
    # started at the same time is still starting) and say so when it does not come.
    deadline = time.monotonic() + args.tracker_wait
    while True:
        try:
            count_servers(tracker, args.key)
            break
        except TinyEngineError as exc:
            if time.monotonic() >= deadline:
                print(f"error: {exc}", file=sys.stderr)
                return 1
            time.sleep(0.5)

    with tempfile.TemporaryDirectory(prefix="tinyengine-rpc-server-") as tmp:
        options["cache_dir"] = os.path.abspath(args.cache_dir or tmp)
        os.makedirs(options["cache_dir"], exist_ok=True)
        # TVM runs the server in a worker process; the callback registers our function there.
        server = rpc.Server(args.host, port=args.listen_port, port_end=9199 if args.listen_port < 9199 else 65535,
                            tracker_addr=tracker, key=args.key,
                            custom_addr=args.custom_addr, silent=True,
                            server_init_callback=partial(register_server_functions, options))
        print(f"serving {options['device']} {options['board']} as '{options['name']}' on port {server.port}, "
              f"key '{args.key}', tracker {args.tracker}", flush=True)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(1.0):  # a timed wait: signals are handled between waits
            pass
        # The worker dies with this process (parent-death signal), its session and emulator with it.
    return 0


if __name__ == "__main__":
    sys.exit(main())
