"""Measuring a compiled configuration: latency and every layer's cost.

A measurement runs the profile build of the model (every step timed, see
:mod:`tinyengine_tvm.runtime.profile`) once on fixed random inputs. Under
QEMU the steps add up to the build without marks to within a few
instructions, so the steps' total is the configuration's latency and the
per-step costs are the cost model's training rows, from one run.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import List, Optional

from ..errors import TinyEngineError


@dataclass
class Measurement:
    """What one run of a configuration gave (``error`` set when it failed)."""

    latency: Optional[float]             #: per inference, in ``unit``
    unit: str
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
                out.append(Measurement(None, "instructions", error=r.error or "no profile came back"))
                continue
            if r.report.get("rpc", {}).get("device") == "serial":
                # A board runs the firmware flashed on it, whatever the candidate: its figures are not the plan's.
                out.append(Measurement(None, r.profile.unit, error="server on a serial board: it runs its flashed "
                                       "firmware, not the candidate; tune on QEMU servers"))
                continue
            p = r.profile
            out.append(Measurement(p.steps_total, p.unit, [s.cost for s in p.steps], r.report.get("flash_bytes")))
        return out
