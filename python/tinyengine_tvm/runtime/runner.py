"""One interface for running a compiled project, wherever it runs.

A :class:`Runner` is opened on a compiled project directory with its options
(building what it needs), runs inferences and is closed (or used as a context
manager). The implementations:

========================  =========================================  ==============================
``open_runner`` device    where the model runs                       class
========================  =========================================  ==============================
``host``                  this machine (gcc + ctypes)                ``host.HostRunner``
``qemu`` + semihosting    QEMU, one emulator run per inference       ``qemu.QemuModel``
``qemu`` + tcp / pty      QEMU's UART, the benchmark protocol        ``device.QemuUartRunner``
``serial``                a board on a serial port, same protocol    ``device.SerialRunner``
========================  =========================================  ==============================

    with open_runner("out/", "qemu", qemu_link="tcp") as runner:
        outputs, report = runner.run({"input": x}, number=10, repeat=3)
        print(runner.format_time(report))
"""
from __future__ import annotations

from typing import Dict, Optional, Protocol, Tuple, runtime_checkable

import numpy as np

from ..errors import TinyEngineError, UsageError
from .project import Inputs

DEVICES = ("host", "qemu", "serial")
QEMU_LINKS = ("tcp", "pty", "semihosting")


@runtime_checkable
class Runner(Protocol):
    """A compiled project ready to run somewhere. ``meta`` is its metadata.json."""

    meta: dict

    def run(self, inputs: Inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """Run the model on ``inputs`` (by tensor name, positional, or one array):
        ``repeat`` measurements of ``number`` inferences each. Returns (outputs
        by name, report); the report is what ``tvmc run --report`` writes."""
        ...

    def format_time(self, report: dict) -> str:
        """The execution-time summary ``tvmc run --print-time`` prints for a report of :meth:`run`."""
        ...

    def close(self) -> None:
        """Release what the runner holds (an emulator, a port); the default holds nothing."""

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_counts(number: int, repeat: int) -> None:
    """Refuse fewer than one inference or measurement."""
    if number < 1 or repeat < 1:
        raise TinyEngineError("--number and --repeat must be at least 1")


def open_runner(project_dir: str, device: str = "host", *, build_dir: Optional[str] = None,
                board: str = "mps2-an500", qemu_link: str = "tcp", port: Optional[str] = None, baud: int = 115200,
                timeout: float = 60.0, link_timeout: float = 10.0) -> Runner:
    """Open the runner of ``device`` (host, qemu or serial) on a compiled project.

    ``build_dir``: where builds go (default: inside the project). ``board``:
    the emulated board (qemu). ``qemu_link``: ``tcp`` or ``pty`` (the benchmark
    protocol over QEMU's UART) or ``semihosting`` (file I/O, one inference
    per emulator run). ``port``/``baud``: the board's serial port (serial).
    ``timeout``: seconds before a hung emulator is stopped (semihosting) or
    the firmware must have booted (UART, at least 5 s). ``link_timeout``:
    seconds without an answer before a request is sent again (qemu UART, serial).
    """
    if device not in DEVICES:
        raise UsageError(f"unknown device '{device}'; use one of {', '.join(DEVICES)}")
    if device == "host":
        from .host import HostRunner

        return HostRunner(project_dir, build_dir)
    if device == "serial":
        if not port:
            raise UsageError("--device=serial needs --port (the board's serial port, e.g. /dev/ttyACM0)")
        from .device import SerialRunner

        return SerialRunner(project_dir, port, baud, link_timeout=link_timeout)
    if qemu_link not in QEMU_LINKS:
        raise UsageError(f"unknown QEMU link '{qemu_link}'; use one of {', '.join(QEMU_LINKS)}")
    if qemu_link == "semihosting":
        from .qemu import QemuModel

        return QemuModel(project_dir, board, build_dir, timeout)
    from .device import QemuUartRunner

    return QemuUartRunner(project_dir, board, build_dir, link=qemu_link, link_timeout=link_timeout,
                          boot_timeout=max(5.0, timeout))
