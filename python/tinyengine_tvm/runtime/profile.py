"""Per-layer profiles: what each step of a compiled model costs, by the model's
own operator names (``tvmc run --profile``).

A profile build of the model (``-DTE_PROFILE``) calls ``te_profile_mark(s)``
before step ``s`` and after the last step; the firmware adds the work between
two marks to that step (instructions under QEMU, DWT cycles on a board) and
the host harness the wall time (nanoseconds). The work one mark itself adds
is measured on the device at the start of every run (two marks back to back)
and subtracted from each step, so the steps add up to the inference less the
marks; how much the marks cost the whole inference is measured by running the
same inputs on the build without them (``overhead``).
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import List, Optional

from ..errors import TinyEngineError


@dataclass
class StepCost:
    """One step of the model: its operator, kernel, MACs and cost per inference."""

    index: int
    name: str        #: the model's tensor name of the step's output
    op: str          #: operator type (CONV_2D, ...)
    kernel: str
    macs: int
    cost: float      #: per inference, in the profile's unit
    share: float     #: of the steps' total

    @property
    def macs_per_unit(self) -> Optional[float]:
        """MACs per cycle/instruction/ns (None where the step did no measurable work)."""
        return self.macs / self.cost if self.cost > 0 else None


@dataclass
class StepProfile:
    """A per-step profile of one model on one runner."""

    model: str
    runner: str                  #: host, or the device's board and platform
    unit: str                    #: instructions, cycles or ns
    inferences: int              #: inferences the figures are the mean of
    mark_cost: float             #: one mark's work, subtracted from every step
    steps: List[StepCost] = field(default_factory=list)
    #: The profile build's whole inference and the plain build's, same inputs (when both were run).
    profiled_total: Optional[float] = None
    plain_total: Optional[float] = None
    note: str = ""

    @classmethod
    def from_counters(cls, meta: dict, counters: List[int], *, inferences: int, unit: str, runner: str,
                      mark_cost: float, note: str = "") -> "StepProfile":
        """Rows from metadata.json's ``ops`` and one counter per step (sums over ``inferences``)."""
        ops = meta["ops"]
        if len(counters) != len(ops):
            raise TinyEngineError(f"the profile has {len(counters)} steps, the model's metadata {len(ops)}: "
                                  "the device runs another build of the model")
        n = max(inferences, 1)
        per = [c / n for c in counters]
        total = sum(per) or 1.0
        steps = [StepCost(i, op["name"], op["type"], op["kernel"], int(op["macs"]), per[i], per[i] / total)
                 for i, op in enumerate(ops)]
        return cls(meta["model"], runner, unit, inferences, mark_cost, steps, note=note)

    @classmethod
    def from_device(cls, meta: dict, page, device: dict) -> "StepProfile":
        """From a PROFILE answer (:class:`~.protocol.ProfilePage`) and the device's description."""
        from .protocol import UNIT_NAMES

        unit = UNIT_NAMES.get(page.unit, "units")
        return cls.from_counters(meta, page.counters, inferences=page.count, unit=unit,
                                 runner=f"{device['board']} ({device['platform']})", mark_cost=page.mark_cost)

    @property
    def steps_total(self) -> float:
        """The steps' costs added up, per inference."""
        return sum(s.cost for s in self.steps)

    @property
    def overhead(self) -> Optional[float]:
        """What profiling adds to one inference: profile build less plain build (None if not both run)."""
        if self.profiled_total is None or self.plain_total is None:
            return None
        return self.profiled_total - self.plain_total

    def to_json(self) -> dict:
        """A JSON-able dict (the rows under ``steps``, with MACs per unit)."""
        out = asdict(self)
        for row, s in zip(out["steps"], self.steps):
            row["macs_per_unit"] = s.macs_per_unit
        out["steps_total"] = self.steps_total
        out["overhead"] = self.overhead
        return out

    def write_json(self, path: str) -> None:
        """Write :meth:`to_json` to ``path`` (through a temporary file: never half-written)."""
        import os

        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f, indent=1)
        os.replace(tmp, path)

    def format_table(self, top: Optional[int] = None) -> str:
        """The per-layer table tvmc prints (``top``: only the costliest rows, in model order)."""
        u = {"instructions": "instr", "zephyr_ticks": "ticks"}.get(self.unit, self.unit)
        rows = self.steps
        if top is not None and top < len(rows):
            keep = {s.index for s in sorted(rows, key=lambda s: -s.cost)[:top]}
            rows = [s for s in rows if s.index in keep]
        width = min(max([len(s.name) for s in rows] + [4]), 48)
        lines = [f"Per-layer profile of {self.model} on {self.runner}: {u} per inference "
                 f"(mean of {self.inferences}){'; ' + self.note if self.note else ''}",
                 f"{'#':>4}  {'layer':<{width}}  {'operator':<18} {'kernel':<28} {'MACs':>11} {u:>13} "
                 f"{'MACs/' + u:>11} {'share':>7}"]
        for s in rows:
            name = s.name if len(s.name) <= width else "..." + s.name[-(width - 3):]
            mpu = f"{s.macs_per_unit:.3f}" if s.macs_per_unit is not None and s.macs else "-"
            lines.append(f"{s.index:>4}  {name:<{width}}  {s.op:<18} {s.kernel:<28} {s.macs:>11,} "
                         f"{s.cost:>13,.0f} {mpu:>11} {s.share:>6.1%}")
        if top is not None and top < len(self.steps):
            lines.append(f"      ({len(self.steps) - len(rows)} cheaper steps not shown; all are in the JSON)")
        macs = sum(s.macs for s in self.steps)
        lines.append(f"steps total {self.steps_total:,.0f} {u} per inference, {macs:,} MACs"
                     + (f" ({macs / self.steps_total:.3f} MACs/{u})" if self.steps_total else ""))
        lines.append(f"each mark's own cost, {self.mark_cost:,.0f} {u}, is subtracted from every step")
        if self.overhead is not None:
            lines.append(f"profiling overhead: the profile build takes {self.profiled_total:,.0f} {u} per "
                         f"inference, the plain build {self.plain_total:,.0f} {u}: {self.overhead:+,.0f} {u} "
                         f"({self.overhead / self.plain_total:+.2%})" if self.plain_total else "")
        return "\n".join(lines)
