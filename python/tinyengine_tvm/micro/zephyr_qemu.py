"""The Zephyr application of a compiled model, built for an emulated board and run in QEMU.

``tvmc run OUT --device=qemu --firmware=zephyr --board mps2-an500``:

1. ``tvmc micro create-project`` writes the app for the board (in a scratch
   directory);
2. it is built in the Zephyr workspace (``--zephyr-workspace`` or
   ZEPHYR_BASE; west or cmake+ninja) unless an ELF of exactly the same app
   files, board and Zephyr is in the cache: ELFs are stored by the SHA-256 of
   those (``$TINYENGINE_ZEPHYR_CACHE``, default
   ``~/.cache/tinyengine-tvm/zephyr-builds``). Each board keeps one build
   directory whose app sources are replaced in place, changed files only, so
   another model recompiles only the model and the descriptor: Zephyr's
   kernel and drivers are compiled once per board;
3. ``qemu-system-arm`` runs the ELF with the board's UART0 on a pty (or a
   loopback TCP socket) and the benchmark protocol runs over it, as on a
   real board (:class:`~tinyengine_tvm.runtime.device.ProtocolRunner`).

Timings: QEMU models no DWT, so the firmware (``zephyr_app/src/main.c``)
falls back to Zephyr's cycle counter, ``k_cycle_get``: SysTick ticks of
QEMU's virtual clock. QEMU runs with ``-icount shift=6`` (every instruction
advances the virtual clock by 64 ns, as Zephyr's own QEMU targets do), so the
ticks are reproducible, but they are not the cycles of any real core. The
report calls them ``zephyr_ticks``.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
from typing import Dict, Mapping, Optional, Tuple

from ..errors import TinyEngineError
from ..runtime.device import ProtocolRunner
from ..runtime.emulator import QemuSerial
from ..runtime.firmware import ICOUNT_SHIFT, qemu_binary
from ..runtime.project import read_metadata
from .zephyr_boards import ZephyrBoard, get_zephyr_board
from .zephyr_workspace import ZephyrWorkspace, build_app, find_workspace

UNIT = "zephyr_ticks"
TIMING_NOTE = ("Zephyr cycle-counter ticks (k_cycle_get: SysTick of QEMU's virtual clock, -icount "
               f"shift={ICOUNT_SHIFT}; QEMU has no DWT): not real cycles")


def zephyr_cache_dir() -> str:
    """Where Zephyr builds are cached: $TINYENGINE_ZEPHYR_CACHE or ~/.cache/tinyengine-tvm/zephyr-builds."""
    return os.environ.get("TINYENGINE_ZEPHYR_CACHE") or os.path.expanduser("~/.cache/tinyengine-tvm/zephyr-builds")


def emulated_zephyr_board(board: str) -> ZephyrBoard:
    """The Zephyr board QEMU runs, by Zephyr or board-table name; others refused."""
    zb = get_zephyr_board(board)
    if not zb.emulated:
        raise TinyEngineError(f"board {board}: QEMU does not emulate {zb.zephyr_name}; --firmware=zephyr runs on "
                              "mps2/an385 (Cortex-M3), mps2-an386 (M4), mps2-an500 (M7), mps3-an547 (M55)")
    return zb


def qemu_zephyr_command(elf: str, zb: ZephyrBoard) -> list:
    """qemu-system-arm's command line for a Zephyr ELF (UART0 = serial 0, filled in by QemuSerial)."""
    return [qemu_binary(), "-machine", str(zb.qemu_machine), "-cpu", zb.cpu, "-nographic", "-monitor", "none",
            "-serial", "none", "-icount", f"shift={ICOUNT_SHIFT},align=off,sleep=off", "-kernel",
            os.path.abspath(elf)]


def _tree_digest(root: str, extra: Mapping[str, str]) -> str:
    h = hashlib.sha256()
    for k in sorted(extra):
        h.update(f"{k}={extra[k]}\0".encode())
    for dirpath, dirnames, files in os.walk(root):
        dirnames.sort()
        for f in sorted(files):
            path = os.path.join(dirpath, f)
            h.update(os.path.relpath(path, root).encode() + b"\0")
            with open(path, "rb") as fh:
                h.update(fh.read())
            h.update(b"\0")
    return h.hexdigest()


def _sync_tree(src: str, dst: str) -> None:
    """Make ``dst`` a copy of ``src``, writing only changed files (so ninja rebuilds only those)."""
    wanted = set()
    for dirpath, _, files in os.walk(src):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            wanted.add(rel)
            target = os.path.join(dst, rel)
            with open(os.path.join(src, rel), "rb") as fh:
                data = fh.read()
            if os.path.isfile(target):
                with open(target, "rb") as fh:
                    if fh.read() == data:
                        continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(target, "wb") as fh:
                fh.write(data)
    for dirpath, _, files in os.walk(dst, topdown=False):
        for f in files:
            rel = os.path.relpath(os.path.join(dirpath, f), dst)
            if rel not in wanted:
                os.remove(os.path.join(dst, rel))
        if dirpath != dst and not os.listdir(dirpath):
            os.rmdir(dirpath)


@contextlib.contextmanager
def _locked(path: str):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def build_zephyr_elf(compiled: str, board: str, *, workspace: Optional[str] = None,
                     cache_dir: Optional[str] = None, options: Optional[Mapping[str, str]] = None,
                     ws: Optional[ZephyrWorkspace] = None) -> Tuple[str, dict]:
    """The Zephyr ELF of a compiled model for an emulated board (built, or found in the cache).

    Returns ``(elf path, info)``: info holds the project's ``project.json``
    (its fit prediction under ``requirements``), the measured ``sizes``
    (:func:`.zephyr_share.measure_build`), ``cached`` and ``key``.
    ``options``: create-project options besides the board."""
    from .project import create_project
    from .zephyr_share import measure_build

    zb = emulated_zephyr_board(board)
    ws = ws or find_workspace(workspace)
    cache = os.path.abspath(cache_dir or zephyr_cache_dir())
    board_dir = os.path.join(cache, zb.file_stem)
    with tempfile.TemporaryDirectory(prefix="tinyengine-zephyr-") as tmp:
        app = os.path.join(tmp, "app")
        opts = {"measure": "auto", **dict(options or {}), "board": zb.zephyr_name}
        info = create_project(app, compiled, "zephyr", opts, measure_build_dir=os.path.join(cache, "measure"))
        info.pop("project_dir", None)
        version = ""
        vfile = os.path.join(ws.zephyr_base, "VERSION")
        if os.path.isfile(vfile):
            with open(vfile) as fh:
                version = fh.read()
        key = _tree_digest(app, {"board": zb.zephyr_name, "zephyr_base": ws.zephyr_base, "zephyr_version": version,
                                 "toolchain": ws.env.get("ZEPHYR_TOOLCHAIN_VARIANT", "")})
        store = os.path.join(board_dir, "elf")
        elf, meta_path = os.path.join(store, f"{key[:24]}.elf"), os.path.join(store, f"{key[:24]}.json")
        if os.path.isfile(elf) and os.path.isfile(meta_path):
            with open(meta_path) as fh:
                return elf, {**json.load(fh), "cached": True}
        with _locked(os.path.join(board_dir, "lock")):
            work_app = os.path.join(board_dir, "app")
            _sync_tree(app, work_app)
            build_dir = os.path.join(board_dir, "build")
            log = os.path.join(board_dir, "build.log")
            with open(log, "w"):
                pass
            print(f"building the Zephyr app for {zb.zephyr_name} ({ws.tool}; log {log})", flush=True)
            built = build_app(ws, work_app, zb.zephyr_name, build_dir, log=log)
            sizes = measure_build(build_dir)
            os.makedirs(store, exist_ok=True)
            result = {"project": info, "sizes": sizes, "key": key, "board": zb.zephyr_name}
            tmp_elf = elf + ".tmp"
            shutil.copyfile(built, tmp_elf)
            with open(meta_path + ".tmp", "w") as fh:
                json.dump(result, fh, indent=1)
            os.replace(tmp_elf, elf)
            os.replace(meta_path + ".tmp", meta_path)
    return elf, {**result, "cached": False}


class ZephyrQemuRunner(ProtocolRunner):
    """A compiled model's Zephyr application in QEMU, run over the benchmark protocol."""

    def __init__(self, project_dir: str, board: str = "mps2-an500", *, workspace: Optional[str] = None,
                 cache_dir: Optional[str] = None, link: str = "pty", link_timeout: float = 10.0,
                 boot_timeout: float = 20.0):
        zb = emulated_zephyr_board(board)
        meta = read_metadata(project_dir)
        elf, info = build_zephyr_elf(project_dir, zb.zephyr_name, workspace=workspace, cache_dir=cache_dir)
        self.zephyr_board = zb
        self.build_info = info
        s = info["sizes"]
        sizes = {"firmware": "zephyr", "zephyr_board": zb.zephyr_name, "qemu_machine": zb.qemu_machine,
                 "core": zb.cpu, "elf": elf, "flash_bytes": s["flash"]["total"],
                 "static_ram_bytes": s["ram"]["total"] - s["ram"]["main_stack"],
                 "model_flash_bytes": s["flash"]["model"], "zephyr_flash_bytes": s["flash"]["zephyr"],
                 "zephyr_ram_bytes": s["ram"]["zephyr"], "zephyr_build_cached": info["cached"]}
        link_ = QemuSerial(elf, link=link, timeout=link_timeout, boot_timeout=boot_timeout,
                           command=qemu_zephyr_command(elf, zb))
        super().__init__(link_, meta, sizes)

    def run(self, inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict, dict]:
        """See :meth:`ProtocolRunner.run`; the firmware's "cycles" are relabelled ``zephyr_ticks``."""
        outputs, report = super().run(inputs, number=number, repeat=repeat)
        return outputs, relabel_ticks(report)

    def format_time(self, report: dict) -> str:
        """tvmc's summary: Zephyr ticks per inference, clearly not cycles."""
        r = report
        s = r[f"{UNIT}_summary"]
        return (f"{r['zephyr_board']} ({r['core']}, Zephyr in QEMU {r['qemu_machine']}): {s['mean']:,.0f} {UNIT} per "
                f"inference ({r['repeat']} repeats of {r['number']}: median {s['median']:,.0f}, max {s['max']:,.0f}, "
                f"min {s['min']:,.0f})\n  {TIMING_NOTE}\n  stack peak {r['stack_peak_bytes']:,} B; flash "
                f"{r['flash_bytes']:,} B (Zephyr {r['zephyr_flash_bytes']:,}); RAM {r['sram_bytes']:,} B")


def relabel_ticks(report: dict) -> dict:
    """A device report whose timings are Zephyr cycle-counter ticks under QEMU: no "cycles", no ms."""
    unit = report.get("unit")
    out = dict(report)
    if unit == "cycles":
        for k in list(out):
            if k == "cycles" or k.startswith("cycles_"):
                out[UNIT + k[len("cycles"):]] = out.pop(k)
        for k in ("ms_per_repeat", "ms_summary", "clock_hz"):
            out.pop(k, None)
        out["unit"] = UNIT
    out["timing_note"] = TIMING_NOTE
    return out
