"""The Zephyr application of a compiled model, built for an emulated board and run in QEMU.

``tvmc run OUT --device=qemu --firmware=zephyr --board mps2-an500``:

1. ``tvmc micro create-project`` writes the app for the board and it is
   built in the Zephyr workspace (``--zephyr-workspace`` or ZEPHYR_BASE),
   or found in the build cache (:mod:`.zephyr_build`);
3. ``qemu-system-arm`` runs the ELF with the board's UART0 on a pty (or a
   loopback TCP socket) and the benchmark protocol runs over it, as on a
   real board (:class:`~tinyengine_tvm.runtime.device.ProtocolRunner`).

Timings: QEMU models no DWT, so the firmware (``zephyr_app/src/main.c``)
falls back to Zephyr's cycle counter, ``k_cycle_get``, and reports the unit
as timer ticks (older builds of the app said "cycles"): SysTick ticks of
QEMU's virtual clock. QEMU runs with ``-icount shift=6`` (every instruction
advances the virtual clock by 64 ns, as Zephyr's own QEMU targets do), so the
ticks are reproducible, but they are not the cycles of any real core. The
report calls them ``zephyr_ticks``.
"""
from __future__ import annotations

import os
from typing import Dict, Optional, Tuple

from ..errors import TinyEngineError
from ..runtime.device import ProtocolRunner
from ..runtime.emulator import QemuSerial
from ..runtime.firmware import ICOUNT_SHIFT, qemu_binary
from ..runtime.project import read_metadata
from .zephyr_boards import ZephyrBoard, get_zephyr_board
from .zephyr_build import build_zephyr_elf

UNIT = "zephyr_ticks"
TIMING_NOTE = ("Zephyr cycle-counter ticks (k_cycle_get: SysTick of QEMU's virtual clock, -icount "
               f"shift={ICOUNT_SHIFT}; QEMU has no DWT): not real cycles")


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


class ZephyrQemuRunner(ProtocolRunner):
    """A compiled model's Zephyr application in QEMU, run over the benchmark protocol."""

    def __init__(self, project_dir: str, board: str = "mps2-an500", *, workspace: Optional[str] = None,
                 cache_dir: Optional[str] = None, link: str = "pty", link_timeout: float = 10.0,
                 boot_timeout: float = 20.0, profile: bool = False):
        zb = emulated_zephyr_board(board)
        meta = read_metadata(project_dir)
        elf, info = build_zephyr_elf(project_dir, zb.zephyr_name, workspace=workspace, cache_dir=cache_dir,
                                     options={"profile": "true"} if profile else None)
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

    def profile(self):
        """See :meth:`ProtocolRunner.profile`; per-step figures are Zephyr ticks too."""
        p = super().profile()
        p.unit, p.note = UNIT, TIMING_NOTE
        return p

    def format_time(self, report: dict) -> str:
        """tvmc's summary: Zephyr ticks per inference, clearly not cycles."""
        r = report
        s = r[f"{UNIT}_summary"]
        return (f"{r['zephyr_board']} ({r['core']}, Zephyr in QEMU {r['qemu_machine']}): {s['mean']:,.0f} {UNIT} per "
                f"inference ({r['repeat']} repeats of {r['number']}: median {s['median']:,.0f}, max {s['max']:,.0f}, "
                f"min {s['min']:,.0f})\n  {TIMING_NOTE}\n  stack peak {r['stack_peak_bytes']:,} B; flash "
                f"{r['flash_bytes']:,} B (Zephyr {r['zephyr_flash_bytes']:,}); RAM {r['sram_bytes']:,} B")


def relabel_ticks(report: dict) -> dict:
    """A device report whose timings are Zephyr cycle-counter ticks under QEMU: no "cycles", no ms
    (the firmware reports them as ``zephyr_ticks``; an older build of it called them "cycles")."""
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
