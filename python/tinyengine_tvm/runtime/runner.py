"""One interface for running a compiled project, wherever it runs.

A :class:`Runner` is opened on a compiled project directory with its options
(building what it needs), runs inferences and is closed (or used as a context
manager); :func:`.opener.open_runner` picks the implementation:

========================  =========================================  ==============================
``open_runner`` device    where the model runs                       class
========================  =========================================  ==============================
``host``                  this machine (gcc + ctypes)                ``host.HostRunner``
``qemu`` + semihosting    QEMU, one emulator run per inference       ``qemu.QemuModel``
``qemu`` + tcp / pty      QEMU's UART, the benchmark protocol        ``device.QemuUartRunner``
``qemu`` + zephyr         the Zephyr app in QEMU, same protocol      ``micro.zephyr_qemu.ZephyrQemuRunner``
``serial``                a board on a serial port, same protocol    ``device.SerialRunner``
========================  =========================================  ==============================

A server of a device farm (``rpc.py``: TVM's RPC tracker, ``python -m
tinyengine_tvm.rpc_server``) runs any of the device runners for a client's
``rpc.RpcRunner``, opened on the tracker and a key instead.

    with open_runner("out/", "qemu", qemu_link="tcp") as runner:
        outputs, report = runner.run({"input": x}, number=10, repeat=3)
        print(runner.format_time(report))
"""
from __future__ import annotations

from typing import Dict, Protocol, Tuple, runtime_checkable

import numpy as np

from ..errors import TinyEngineError
from .project import Inputs

DEVICES = ("host", "qemu", "serial")
QEMU_LINKS = ("tcp", "pty", "semihosting")
#: Firmware on QEMU: the project's bare-metal one, or the Zephyr application (micro/zephyr_qemu.py).
FIRMWARES = ("baremetal", "zephyr")


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


class PhaseClock:
    """Wall and CPU seconds of the consecutive phases of one piece of work (a farm server's
    measurement: unpack, build, boot, run, ...), so a slow measurement says where its time went.

    CPU is this process's (all threads) and its reaped children's: a compiler counts in the phase
    that ran it, an emulator only in the phase that stopped it (its CPU is known once it exits)."""

    def __init__(self):
        self.phases: list = []
        self._last = self._now()

    @staticmethod
    def _now() -> Tuple[float, float, float]:
        import resource
        import time

        me, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
        return time.perf_counter(), me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime

    def lap(self, name: str) -> None:
        """End the phase ``name`` now (it began where the previous one ended)."""
        now = self._now()
        self.phases.append({"phase": name, "wall_s": round(now[0] - self._last[0], 4),
                            "cpu_s": round(now[1] - self._last[1], 4),
                            "child_cpu_s": round(now[2] - self._last[2], 4)})
        self._last = now

    def extend(self, phases: list) -> None:
        """Take phases another clock of this process measured (they end at its last lap)."""
        self.phases.extend(phases)
        self._last = self._now()
