"""Runners that speak the benchmark protocol: a board on a serial port, or the
benchmark-server firmware on QEMU with its UART as the link.

Both run the model with :class:`~.client.DeviceModel` (inputs loaded once,
``repeat`` RUN requests of ``number`` inferences, outputs read back and
CRC-checked); the QEMU one also builds the firmware (``micro/baremetal.py``)
and adds its ELF sizes to the report.
"""
from __future__ import annotations

import shutil
import tempfile
from typing import Dict, Optional, Tuple, Union

import numpy as np

from ..errors import TinyEngineError
from ..targets.boards import Board
from .client import DeviceModel, Link, open_serial
from .emulator import QemuSerial, emulated_board
from .firmware import DEFAULT_BOARD, elf_sizes, group_sizes
from .project import Inputs, read_metadata
from .runner import Runner


class ProtocolRunner(Runner):
    """A :class:`~.runner.Runner` over an open :class:`~.client.Link` (closed with it).
    ``sizes``: the firmware's sizes, added to every report."""

    def __init__(self, link: Link, meta: dict, sizes: Optional[dict] = None, input_dir: Optional[str] = None):
        self.link = link
        self.meta = meta
        self.sizes = dict(sizes or {})
        try:
            self.model = DeviceModel(link.client, meta, input_dir=input_dir)
        except BaseException:
            link.close()
            raise

    def run(self, inputs: Inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """``repeat`` RUN requests of ``number`` inferences on the device; see :meth:`DeviceModel.run`."""
        outputs, report = self.model.run(inputs, number=number, repeat=repeat)
        report.update(self.sizes)
        if self.sizes:
            report["sram_bytes"] = self.sizes["static_ram_bytes"] + report["stack_peak_bytes"]
        return outputs, report

    def format_time(self, report: dict) -> str:
        """See :func:`format_time`."""
        return format_time(report)

    def profile(self):
        """Per-step counters of the last run (the firmware must be a profile build)."""
        from .profile import StepProfile

        if not self.model.device.get("profile"):
            raise TinyEngineError("the firmware on the device is not a profile build: build it with profiling "
                                  "(tvmc run --profile builds it for QEMU; on a board, create the project with "
                                  "--project-option profile=true and flash it)")
        page = self.model.client.profile()
        return StepProfile.from_device(self.meta, page, self.model.device)

    def close(self) -> None:
        """Close the link (and stop the emulator behind it)."""
        self.link.close()


class SerialRunner(ProtocolRunner):
    """A board flashed with the project's firmware (``tvmc micro``), on a serial port."""

    def __init__(self, project_dir: str, port: str, baud: int = 115200, *, link_timeout: float = 10.0):
        meta = read_metadata(project_dir)
        super().__init__(open_serial(port, baud, timeout=link_timeout), meta)


class QemuUartRunner(ProtocolRunner):
    """The benchmark-server firmware built for an emulated board and run in QEMU,
    its UART connected over loopback TCP (``link="tcp"``) or a pty (``"pty"``)."""

    def __init__(self, project_dir: str, board: Union[str, Board] = DEFAULT_BOARD, build_dir: Optional[str] = None,
                 *, link: str = "tcp", link_timeout: float = 10.0, boot_timeout: float = 20.0,
                 profile: bool = False):
        # micro/ builds on runtime/; imported here only, where the server firmware is needed.
        from ..micro.baremetal import build_serial_firmware
        from .runner import PhaseClock

        clock = PhaseClock()
        board = emulated_board(board)
        meta = read_metadata(project_dir)
        elf = build_serial_firmware(project_dir, board, build_dir, profile=profile)
        sizes = {**elf_sizes(elf), "model_flash_bytes": group_sizes(elf)["model"]["flash_bytes"],
                 "core": board.core, "qemu_machine": board.qemu_machine, "elf": elf}
        clock.lap("build")
        # The firmware reads its inputs from host files through semihosting: QEMU's CMSDK UART has no
        # FIFO and takes one byte per main-loop round trip, ~35 us, so a 27 KB image took a second
        # of a busy host core, 50 times the inference.
        self._input_dir = tempfile.mkdtemp(prefix="tinyengine-qemu-inputs-")
        try:
            super().__init__(QemuSerial(elf, board.name, link=link, timeout=link_timeout,
                                        boot_timeout=boot_timeout), meta, sizes, input_dir=self._input_dir)
        except BaseException:
            shutil.rmtree(self._input_dir, ignore_errors=True)
            raise
        clock.lap("boot")
        #: Where opening went (firmware build, emulator start to the device's description), for farm reports.
        self.open_phases = clock.phases

    def close(self) -> None:
        """Stop the emulator and remove the input files."""
        try:
            super().close()
        finally:
            shutil.rmtree(self._input_dir, ignore_errors=True)


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
