"""create-project's flash and RAM prediction checked against a real Zephyr build.

``tvmc micro create-project`` predicts, before anything is built, the flash
and RAM the generated app takes on a board (the model and the servers
measured bare-metal, main's stack, Zephyr's measured share plus a margin):
that prediction is what refuses a model too big for a board. Here the app is
built (:mod:`.zephyr_build`) and its ELF measured (:mod:`.zephyr_share`):
the prediction must never be below the real figure, or a model that does
not fit would be let through, and at most ``slack`` bytes above it, or a
model that fits would be refused (only the first where create-project could
not measure the model for the board's core and estimated it: mps2/an385's
Cortex-M3, which the board table lacks). The build's own Zephyr share is compared
with the board table's too, so a table gone stale shows up by name.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from ..errors import MemoryBudgetError
from .zephyr_boards import get_zephyr_board
from .zephyr_build import build_zephyr_elf
from .zephyr_workspace import ZephyrWorkspace

#: Bytes a prediction may exceed the real build by.
DEFAULT_SLACK = 2048


@dataclass
class FitCheck:
    """One (board, options) build against its prediction."""

    board: str
    options: Dict[str, str]
    refused: Optional[str] = None    #: create-project's refusal (nothing built)
    predicted: Dict[str, int] = field(default_factory=dict)   #: "flash"/"ram" -> bytes
    real: Dict[str, int] = field(default_factory=dict)
    share: Dict[str, Tuple[int, int]] = field(default_factory=dict)  #: kind -> (this build's, the table's)
    cached: bool = False
    estimated: bool = False  #: create-project could not measure the model for this core: only "never below" holds
    warnings: List[str] = field(default_factory=list)  #: the build's warnings, less Zephyr's own
    problems: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when refused for a real reason or when every figure is within bounds."""
        return not self.problems

    def line(self) -> str:
        """One line of a report table."""
        opts = ",".join(f"{k}={v}" for k, v in self.options.items()) or "default"
        if self.refused:
            return f"{self.board:<24} {opts:<12} refused by create-project: {self.refused}"
        cols = " | ".join(f"{k} predicted {self.predicted[k]:>7,} real {self.real[k]:>7,} (Zephyr {self.share[k][0]:,}, "
                          f"table {self.share[k][1]:,})" for k in ("flash", "ram"))
        notes = (" (model sizes estimated)" if self.estimated else "") + (" (cached)" if self.cached else "")
        return f"{self.board:<24} {opts:<12} {cols}{notes}" + \
            "".join(f"\n    OFF: {p}" for p in self.problems)


def check_fit(compiled: str, board: str, options: Optional[Mapping[str, str]] = None, *,
              ws: ZephyrWorkspace, cache_dir: Optional[str] = None, slack: int = DEFAULT_SLACK) -> FitCheck:
    """Build ``compiled``'s app for ``board`` with ``options`` and compare it with the prediction."""
    from .project import SHARE_MARGIN_FLASH, SHARE_MARGIN_RAM

    zb = get_zephyr_board(board)
    opts = dict(options or {})
    out = FitCheck(zb.zephyr_name, opts)
    try:
        _, info = build_zephyr_elf(compiled, zb.zephyr_name, ws=ws, cache_dir=cache_dir, options=opts)
    except MemoryBudgetError as exc:
        out.refused = str(exc).splitlines()[0]
        return out
    req, sizes = info["project"]["requirements"], info["sizes"]
    out.cached = info["cached"]
    out.estimated = not req["sizes"].startswith("measured")
    out.warnings = list(info.get("warnings", []))
    if out.warnings:
        out.problems.append(f"{len(out.warnings)} warnings in the build, first: {out.warnings[0]}")
    recorded = dict(zip(("flash", "ram"), zb.share(info["project"].get("mlperf") is not None)))
    margins = {"flash": SHARE_MARGIN_FLASH, "ram": SHARE_MARGIN_RAM}
    for kind in ("flash", "ram"):
        predicted, real = req[kind]["total"], sizes[kind]["total"]
        out.predicted[kind], out.real[kind] = predicted, real
        out.share[kind] = (sizes[kind]["zephyr"], recorded[kind])
        if predicted < real:
            out.problems.append(f"{kind}: predicted {predicted:,} B is {real - predicted:,} B below the real build")
        elif predicted > real + slack and not out.estimated:
            out.problems.append(f"{kind}: predicted {predicted:,} B is {predicted - real:,} B above the real build "
                                f"(allowed {slack:,})")
        if recorded[kind] and abs(sizes[kind]["zephyr"] - recorded[kind]) > margins[kind]:
            out.problems.append(f"{kind}: Zephyr's share in this build is {sizes[kind]['zephyr']:,} B, the board "
                                f"table says {recorded[kind]:,} B (re-measure: scripts/measure_zephyr_share.py)")
    return out
