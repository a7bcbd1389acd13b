#!/usr/bin/env python3
"""Run the official MLPerf Tiny runner (mlcommons/tiny ``benchmark/runner``,
unmodified) against the bare-metal MLPerf firmware under QEMU.

The runner only considers serial ports that have a USB vendor id
(``list_ports.comports()`` entries with ``p.vid``) and picks the DUT by its
VID:PID from the device list (``devices.yaml``). QEMU's UART is a
pseudo-terminal without one, so this script starts QEMU with ``-serial pty``,
then runs the runner's ``main.py`` in this process with pyserial's
``comports()`` also listing that pty under the DUT's VID:PID (taken from the
device list, or ``--vid/--pid``). Nothing of the runner is changed; pyusb's
``usb.core.find`` returns no devices instead of failing where libusb is absent.

    tvmc micro create-project dut MODEL baremetal --project-option mlperf=true mlperf_model=kws01
    python scripts/mlperf_runner_qemu.py --project dut --runner-dir ~/tiny/benchmark/runner -- \\
        -d devices_kws_ic_vww.yaml -m p -s ~/datasets

Everything after ``--`` goes to the runner. Exit status: the runner's; 2 for
bad arguments (missing ELF, no main.py in the runner directory, ...).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import runpy
import subprocess
import sys
import threading

try:
    import tinyengine_tvm  # noqa: F401
except ImportError:  # run from a checkout: the package is in ../python
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

DEFAULT_DUT_USB = (0x0483, 0x374B)  # the reference DUT of the runner's device lists (NUCLEO-L4R5ZI's ST-LINK)


class UsageError(Exception):
    """Bad arguments: reported with exit status 2."""


def dut_usb_id(device_list: str):
    """(vid, pid) of the first ``type: dut`` entry of a runner device list, or None."""
    if not os.path.isfile(device_list):
        return None
    try:
        import yaml  # PyYAML: the runner's own requirement
    except ImportError:
        print("mlperf_runner_qemu: PyYAML is not installed: the DUT's USB id is not read from "
              f"{device_list} (use --vid/--pid)", file=sys.stderr)
        return None

    with open(device_list) as f:
        devices = yaml.safe_load(f) or []
    for d in devices if isinstance(devices, list) else []:
        if isinstance(d, dict) and d.get("type") == "dut" and isinstance(d.get("usb"), dict):
            for vid, pids in d["usb"].items():
                pid = pids[0] if isinstance(pids, list) else pids
                return int(vid), int(pid)
    return None


def start_qemu(elf: str, board: str):
    """qemu-system-arm running ``elf`` with its UART on a new pty; returns (process, pty path)."""
    from tinyengine_tvm.runtime.emulator import qemu_command

    cmd = qemu_command(elf, board)
    cmd[cmd.index("-serial") + 1] = "pty"
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, bufsize=1)
    found, lines = [], []
    ready = threading.Event()

    def collect():  # keep reading, or QEMU blocks on a full pipe
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"char device redirected to (\S+)", line)
            if m and not found:
                found.append(m.group(1))
                ready.set()
        ready.set()

    threading.Thread(target=collect, daemon=True).start()
    ready.wait(20)
    if not found:
        proc.kill()
        raise UsageError("QEMU did not open a pty: " + "".join(lines)[-2000:])
    return proc, found[0]


def patch_port_listing(pty: str, vid: int, pid: int, board: str) -> None:
    """Make pyserial's comports() also list ``pty`` as a USB serial port with ``vid:pid``."""
    from serial.tools import list_ports, list_ports_common

    original = list_ports.comports
    info = list_ports_common.ListPortInfo(pty, skip_link_detection=True)
    info.vid, info.pid = vid, pid
    info.description = f"QEMU {board} UART (tinyengine-tvm MLPerf DUT)"
    info.hwid = f"USB VID:PID={vid:04X}:{pid:04X} (QEMU pty)"
    info.manufacturer, info.product = "QEMU", "tinyengine-tvm MLPerf DUT"

    def comports(*args, **kwargs):
        return [p for p in original(*args, **kwargs) if p.device != pty] + [info]

    list_ports.comports = comports
    try:
        import usb.core  # pyusb: the runner also scans USB-only power monitors
    except ImportError:
        return
    find = usb.core.find

    def find_or_nothing(*args, **kwargs):
        try:
            return find(*args, **kwargs)
        except (usb.core.NoBackendError, ValueError):
            return [] if kwargs.get("find_all") else None

    usb.core.find = find_or_nothing


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    runner_args = argv[argv.index("--") + 1:] if "--" in argv else []
    ours = argv[:argv.index("--")] if "--" in argv else argv
    ap = argparse.ArgumentParser(prog="mlperf_runner_qemu.py", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--project", help="a project of 'tvmc micro create-project ... baremetal' (firmware.elf)")
    src.add_argument("--elf", help="the MLPerf firmware ELF")
    src.add_argument("--pty", help="the pty of a QEMU already running the firmware (it is not started)")
    ap.add_argument("--board", default="mps2-an500", help="QEMU board for --elf (mps2-an500)")
    ap.add_argument("--runner-dir", required=True, help="mlcommons/tiny's benchmark/runner directory")
    ap.add_argument("--device-list", help="the runner's device list the DUT's VID:PID is read from "
                    "(default: the -d/--device_list given to the runner, else devices.yaml)")
    ap.add_argument("--vid", type=lambda s: int(s, 0), help="USB vendor id to give the pty")
    ap.add_argument("--pid", type=lambda s: int(s, 0), help="USB product id to give the pty")
    args = ap.parse_args(ours)
    proc = None
    try:
        runner = os.path.abspath(args.runner_dir)
        if not os.path.isfile(os.path.join(runner, "main.py")):
            raise UsageError(f"{args.runner_dir}: no main.py (give mlcommons/tiny's benchmark/runner directory)")
        board = args.board
        elf = args.elf
        if args.project:
            info_path = os.path.join(args.project, "project.json")
            info = json.load(open(info_path)) if os.path.isfile(info_path) else {}
            if info.get("platform") != "baremetal" or not info.get("mlperf"):
                raise UsageError(f"{args.project}: not a project of 'tvmc micro create-project ... baremetal "
                                 "--project-option mlperf=true'")
            elf, board = os.path.join(args.project, "firmware.elf"), info.get("board", board)
        if elf is not None and not os.path.isfile(elf):
            raise UsageError(f"{elf}: no such firmware ELF")
        if args.pty is not None and not os.path.exists(args.pty):
            raise UsageError(f"{args.pty}: no such pty")
        dev_list = args.device_list
        for i, a in enumerate(runner_args):
            if dev_list is None and a in ("-d", "--device_list") and i + 1 < len(runner_args):
                dev_list = runner_args[i + 1]
        dev_list = os.path.join(runner, dev_list or "devices.yaml")
        vid, pid = dut_usb_id(dev_list) or DEFAULT_DUT_USB
        vid, pid = args.vid if args.vid is not None else vid, args.pid if args.pid is not None else pid
        if elf is not None:
            proc, pty = start_qemu(os.path.abspath(elf), board)
        else:
            pty = args.pty
        print(f"mlperf_runner_qemu: DUT {pty} listed as USB {vid:04x}:{pid:04x}", flush=True)
        patch_port_listing(pty, vid, pid, board)
        os.chdir(runner)  # the runner opens its yaml files relative to its directory
        sys.path.insert(0, runner)
        sys.argv = [os.path.join(runner, "main.py"), *runner_args]
        try:
            runpy.run_path(os.path.join(runner, "main.py"), run_name="__main__")
        except SystemExit as exc:
            return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        return 0
    except UsageError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    finally:
        if proc is not None:
            proc.terminate()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


if __name__ == "__main__":
    sys.exit(main())
