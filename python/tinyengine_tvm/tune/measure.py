"""Measuring a compiled configuration: latency and every layer's cost.

A measurement runs the profile build of the model (every step timed, see
:mod:`tinyengine_tvm.runtime.profile`) once on fixed random inputs. Under
QEMU the steps add up to the build without marks to within a few
instructions, so the steps' total is the configuration's latency and the
per-step costs are the cost model's training rows, from one run.

Runners: :class:`QemuMeasurer` (the bare-metal firmware on the emulated board
of the core), :class:`RpcMeasurer` (an RPC farm of QEMU servers) and
:class:`SerialMeasurer` (a board on a serial port, each candidate's Zephyr
application flashed before it is run).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..errors import TinyEngineError, UsageError


@dataclass
class Measurement:
    """What one run of a configuration gave (``error`` set when it failed)."""

    latency: Optional[float]             #: per inference, in ``unit``
    unit: Optional[str]                  #: None when it failed before any figure came back
    step_costs: List[float] = field(default_factory=list)  #: per step, in ``unit``
    flash_bytes: Optional[int] = None    #: the firmware's flash (model, server, start-up)
    error: Optional[str] = None


class QemuMeasurer:
    """Measures on the emulated board of the core (bare-metal firmware, QEMU -icount):
    instructions, exact and repeatable. ``work_dir`` keeps the firmware builds (the
    kernels compile once per core and are shared by every configuration)."""

    def __init__(self, board: str, work_dir: str, seed: int = 0):
        from ..runtime.emulator import emulated_board

        self.board = emulated_board(board)
        self.work_dir = work_dir
        self.seed = seed

    #: What it measures in (earlier records in another unit are not reused).
    unit = "instructions"

    @property
    def name(self) -> str:
        """How records name this runner."""
        return f"qemu:{self.board.name}"

    def measure(self, project_dir: str) -> Measurement:
        """Build the profile firmware of ``project_dir``, run it once, read every step's cost."""
        from ..runtime.device import QemuUartRunner
        from ..runtime.project import random_inputs, read_metadata

        meta = read_metadata(project_dir)
        try:
            with QemuUartRunner(project_dir, self.board, os.path.join(self.work_dir, "build"),
                                profile=True) as runner:
                _, report = runner.run(random_inputs(meta["inputs"], self.seed), number=1)
                prof = runner.profile()
        except TinyEngineError as exc:
            return Measurement(None, "instructions", error=str(exc).splitlines()[0])
        return Measurement(prof.steps_total, prof.unit, [s.cost for s in prof.steps], report.get("flash_bytes"))

    def measure_many(self, project_dirs: List[str]) -> List[Measurement]:
        """One after the other (one emulator at a time: QEMU takes a core)."""
        return [self.measure(p) for p in project_dirs]


class RpcMeasurer:
    """Measures on the servers of an RPC tracker (``python -m tinyengine_tvm.rpc_server``):
    a batch runs in parallel on every free server of ``key``; a server that dies costs
    its job one retry on another (:class:`~tinyengine_tvm.runtime.rpc.RpcPool`)."""

    def __init__(self, tracker: str, key: str, seed: int = 0):
        from ..runtime.rpc import RpcPool

        self.pool = RpcPool(tracker, key)
        self.key = key
        self.seed = seed

    #: Its servers run QEMU (a server on a serial board is refused, see measure_many), with the
    #: bare-metal firmware (instructions) or the Zephyr application (timer ticks): the unit is
    #: known once a measurement comes back.
    unit = None

    @property
    def parallel(self) -> int:
        """How many measurements the farm runs at once: its registered servers (at least one)."""
        return self.pool.servers()

    @property
    def name(self) -> str:
        """How records name this runner: the key (the servers' device and board are in their reports)."""
        return f"rpc:{self.key}"

    def measure_many(self, project_dirs: List[str]) -> List[Measurement]:
        """The profile build of every project, on the farm, in parallel; in order."""
        from ..runtime.project import random_inputs, read_metadata
        from ..runtime.rpc import MeasureJob

        jobs = [MeasureJob(d, random_inputs(read_metadata(d)["inputs"], self.seed), profile=True)
                for d in project_dirs]
        out = []
        for r in self.pool.measure_many(jobs):
            if not r.ok or r.profile is None:
                out.append(Measurement(None, None, error=r.error or "no profile came back"))
                continue
            if r.report.get("rpc", {}).get("device") == "serial":
                # A board runs the firmware flashed on it, whatever the candidate: its figures are not the plan's.
                out.append(Measurement(None, r.profile.unit, error="server on a serial board: it runs its flashed "
                                       "firmware, not the candidate; tune on QEMU servers, or on the board "
                                       "itself with --runner serial"))
                continue
            p = r.profile
            out.append(Measurement(p.steps_total, p.unit, [s.cost for s in p.steps], r.report.get("flash_bytes")))
        return out


class SerialMeasurer:
    """Measures on a real board on a serial port (``tvmc tune --runner serial``): every
    candidate is built as the Zephyr application with profiling on (``tvmc micro
    create-project ... profile=true``; builds cached by content,
    :func:`~tinyengine_tvm.micro.zephyr_build.build_zephyr_elf`), flashed, and run
    once over the benchmark protocol; the profile's per-step counters are the
    measurement, in the unit the firmware reports: ``cycles`` (DWT->CYCCNT) where
    the core has a DWT, ``zephyr_ticks`` (Zephyr's timer, not cycles) where not.

    ``board``: the Zephyr board (Zephyr or board-table name). ``port``: a serial
    device or a pyserial URL (``socket://HOST:PORT``). ``flash``: the flash step
    (:data:`~tinyengine_tvm.micro.zephyr_flash.FlashFn`; default ``west flash`` as
    ``tvmc micro flash`` runs it, with ``west_runner`` as its ``--runner``).
    ``open_timeout``: how long the port may take to answer after a flash (a probe
    that resets the board, a USB port that comes back). A candidate whose build,
    flash or run fails gets that as its Measurement's error; the run goes on."""

    def __init__(self, board: str, port: str, baud: int = 115200, *, workspace: Optional[str] = None,
                 cache_dir: Optional[str] = None, flash=None, west_runner: Optional[str] = None, seed: int = 0,
                 link_timeout: float = 10.0, open_timeout: float = 15.0):
        from ..micro.zephyr_boards import get_zephyr_board
        from ..micro.zephyr_flash import west_flasher
        from ..micro.zephyr_workspace import find_workspace

        self.zephyr_board = get_zephyr_board(board)
        self.port = port
        self.baud = baud
        self.ws = find_workspace(workspace)  # names what is missing before any candidate is built
        self.cache_dir = cache_dir
        if flash is None:
            if self.zephyr_board.emulated:
                raise UsageError(f"{self.zephyr_board.zephyr_name} is emulated: there is no board to west flash "
                                 "(give a flash step that starts it, e.g. --flash-command)")
            flash = west_flasher(self.ws, west_runner)
        self.flash = flash
        self.seed = seed
        self.link_timeout = link_timeout
        self.open_timeout = open_timeout
        self._last_unit: Optional[str] = None  # a failed candidate's record names no unit it was not measured in

    #: Known only once measured: cycles where the board has a DWT, zephyr_ticks where not.
    unit = None

    @property
    def name(self) -> str:
        """How records name this runner: the Zephyr board measured on."""
        return f"serial:{self.zephyr_board.zephyr_name}"

    def measure(self, project_dir: str) -> Measurement:
        """Build, flash and run the profile build of ``project_dir`` once; every step's cost."""
        from ..micro.zephyr_build import build_zephyr_elf
        from ..micro.zephyr_flash import firmware_image
        from ..runtime.project import random_inputs, read_metadata

        meta = read_metadata(project_dir)
        try:
            elf, info = build_zephyr_elf(project_dir, self.zephyr_board.zephyr_name, ws=self.ws,
                                         cache_dir=self.cache_dir,
                                         options={"profile": "true", "baud": str(self.baud)})
            image = firmware_image(elf, info["build_dir"], self.zephyr_board.zephyr_name, self.ws.env)
        except TinyEngineError as exc:
            return self._failed("build", exc)
        try:
            self.flash(image)
        except Exception as exc:  # noqa: BLE001 - a user's flash step may raise anything; the run goes on
            return self._failed("flash", exc)
        try:
            with self._open(project_dir) as runner:
                _check_flashed(runner.model.device, meta)
                runner.run(random_inputs(meta["inputs"], self.seed), number=1)
                prof = runner.profile()
        except TinyEngineError as exc:
            return self._failed("run", exc)
        self._last_unit = prof.unit
        return Measurement(prof.steps_total, prof.unit, [s.cost for s in prof.steps],
                           info["sizes"]["flash"]["total"])

    def _failed(self, stage: str, exc: BaseException) -> Measurement:
        text = str(exc).strip().splitlines()
        return Measurement(None, self._last_unit or "unknown",
                           error=f"{stage}: {text[0] if text else type(exc).__name__}")

    def _open(self, project_dir: str):
        """The board's port, retried until ``open_timeout``: after a flash the board
        resets, and a USB port can vanish for a moment."""
        import time

        from ..runtime.device import SerialRunner
        from ..runtime.protocol import LinkError

        deadline = time.monotonic() + self.open_timeout
        while True:
            try:
                return SerialRunner(project_dir, self.port, self.baud, link_timeout=self.link_timeout)
            except LinkError:
                if time.monotonic() >= deadline:
                    raise
                time.sleep(0.5)

    def measure_many(self, project_dirs: List[str]) -> List[Measurement]:
        """One after the other: there is one board."""
        return [self.measure(p) for p in project_dirs]


def _check_flashed(device: dict, meta: dict) -> None:
    """Refuse a board that still runs another candidate's firmware (a flash that did
    nothing): the model's name and tensors are the same for every candidate (checked
    on opening), its arena and its number of steps differ between most plans."""
    want = meta.get("memory", {}).get("arena_bytes")
    if want is not None and device.get("arena_bytes") != want:
        raise TinyEngineError(f"the board's firmware has a {device.get('arena_bytes'):,} B arena, this candidate "
                              f"{want:,} B: it was not flashed (the board runs an earlier one)")
    if not device.get("profile"):
        raise TinyEngineError("the board's firmware is not a profile build: the candidate was not flashed")
