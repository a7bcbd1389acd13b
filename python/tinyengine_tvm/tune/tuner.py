"""``tvmc tune``: the fastest configuration whose plan fits the board.

1. A pool of configurations (:func:`~.space.search_space`; the default compile
   first, then a seeded sample) is compiled: compiling is cheap next to a
   measurement, and it gives each configuration's arena, flash and layers.
   Configurations whose plan exceeds the SRAM budget or the flash are dropped,
   as are those whose generated code is identical to one already kept.
2. The default compile is measured first, so the result is never slower
   than it. The rest are measured in the order the strategy gives:
   ``random`` (seeded), or ``xgb``: the per-layer XGBoost cost model
   (:mod:`.cost_model`; the one shipped for the core, else fitted on the first
   measurements) predicts each configuration's latency as the sum of its
   layers', and after every batch it is updated with the layers just measured
   and the remaining pool re-ranked (AutoTVM's XGBTuner loop).
3. Every measurement is appended to the records file as it arrives.
"""
from __future__ import annotations

import hashlib
import os
import random
import tempfile
from dataclasses import dataclass, field
from typing import Callable, List, Optional, Sequence

from ..errors import TinyEngineError, UsageError
from .records import append_records, make_record, model_sha256
from .space import TuningConfig, search_space

STRATEGIES = ("xgb", "random")


@dataclass
class Candidate:
    """A configuration compiled: its plan's figures, its layers and, once measured, its latency."""

    config: TuningConfig
    arena_bytes: int
    weights_bytes: int
    macs: int
    code_digest: str
    layers: List = field(default_factory=list)     #: (signature, features) per step
    compiled: object = None
    predicted: Optional[float] = None
    latency: Optional[float] = None
    flash_bytes: Optional[int] = None
    unit: str = "instructions"
    step_costs: List[float] = field(default_factory=list)   #: measured, per step
    error: Optional[str] = None


@dataclass
class TuneResult:
    """What a tuning run found."""

    model: str
    board: str
    runner: str
    unit: str
    sram_budget: int
    default: Candidate
    best: Candidate
    measured: List[Candidate]           #: in the order measured
    pool: int                           #: configurations compiled
    feasible: int                       #: distinct plans within the budgets
    records_path: Optional[str] = None

    @property
    def curve(self) -> List[float]:
        """Best latency after each measurement (what a tuning-curve plot shows)."""
        out, best = [], None
        for c in self.measured:
            if c.latency is not None and (best is None or c.latency < best):
                best = c.latency
            out.append(best)
        return out

    @property
    def speedup(self) -> float:
        """Default latency over the best's."""
        return self.default.latency / self.best.latency if self.best.latency else 1.0


def _code_digest(compiled) -> str:
    h = hashlib.sha256()
    for rel in sorted(compiled.files):
        if rel.endswith("metadata.json"):
            continue  # holds pass reports that differ for the same code
        h.update(rel.encode() + b"\0" + compiled.files[rel].encode() + b"\0")
    return h.hexdigest()


def compile_candidates(model_path: str, configs: Sequence[TuningConfig], core: Optional[str],
                       on_compiled: Optional[Callable[[], None]] = None) -> List[Candidate]:
    """Compile every configuration (one that fails to compile is kept with its error)."""
    from ..compiler import compile as compile_model
    from .features import graph_layers

    out = []
    for cfg in configs:
        try:
            c = compile_model(model_path, core=core, **cfg.compile_kwargs())
        except TinyEngineError as exc:
            out.append(Candidate(cfg, 0, 0, 0, "", error=str(exc).splitlines()[0]))
        else:
            mem = c.metadata["memory"]
            out.append(Candidate(cfg, mem["arena_bytes"], mem["weights_bytes"], c.metadata["total_macs"],
                                 _code_digest(c), graph_layers(c.graph), c))
        if on_compiled:
            on_compiled()
    return out


def _budgets(board, sram_budget: Optional[int]):
    from ..targets.fit import RUNTIME_FLASH_ALLOWANCE, RUNTIME_SRAM_ALLOWANCE

    ram = board.ram_region_bytes or board.sram_bytes
    budget = sram_budget if sram_budget is not None else ram - RUNTIME_SRAM_ALLOWANCE
    return budget, board.flash_bytes - RUNTIME_FLASH_ALLOWANCE


def tune(model_path: str, board: str, *, sram_budget: Optional[int] = None, trials: int = 16,
         strategy: str = "xgb", measurer=None, records_path: Optional[str] = None, pool_size: Optional[int] = None,
         batch: int = 4, seed: int = 0, progress: bool = True, cost_model=None) -> TuneResult:
    """Tune ``model_path`` for ``board`` (a board-table name); see the module docstring.

    ``measurer``: an object with ``name`` and ``measure_many(project_dirs)``
    (default: :class:`~.measure.QemuMeasurer` on the QEMU board of the core).
    ``trials``: measurements at most (the default compile's included).
    ``pool_size``: configurations compiled (default ``max(4 * trials, 24)``).
    ``cost_model``: a :class:`~.cost_model.LayerCostModel` to start from
    (default: the one shipped for the core, if any)."""
    from ..targets.boards import get_board, qemu_board_for

    if strategy not in STRATEGIES:
        raise UsageError(f"strategy {strategy!r}: one of {', '.join(STRATEGIES)}")
    if trials < 1 or batch < 1:
        raise UsageError("trials and batch must be at least 1")
    b = get_board(board)
    budget, flash_budget = _budgets(b, sram_budget)
    rng = random.Random(seed)
    space = search_space(dsp=b.core_info.dsp)
    pool_n = min(len(space), pool_size or max(4 * trials, 24))
    configs = [space[0]] + rng.sample(space[1:], pool_n - 1)
    sha = model_sha256(model_path)
    name = os.path.splitext(os.path.basename(model_path))[0]
    bar = _progress(progress, pool_n + trials, f"tune {name}")
    with tempfile.TemporaryDirectory(prefix="tvmc-tune-") as work:
        if measurer is None:
            from .measure import QemuMeasurer

            measurer = QemuMeasurer(qemu_board_for(b).name, work)
        bar.set_description(f"compile {name}")
        cands = compile_candidates(model_path, configs, b.core, on_compiled=lambda: bar.update(1))
        default = cands[0]
        if default.error:
            raise TinyEngineError(f"the default compile of {name} fails: {default.error}")
        seen, feasible = set(), []
        for c in cands:
            if c.error or c.arena_bytes > budget or c.weights_bytes > flash_budget or c.code_digest in seen:
                continue
            seen.add(c.code_digest)
            feasible.append(c)
        if default not in feasible:
            raise TinyEngineError(f"{name}'s default compile needs a {default.arena_bytes:,} B arena, over the "
                                  f"{budget:,} B SRAM budget: nothing to tune within it")
        model = cost_model
        if strategy == "xgb" and model is None:
            from .cost_model import shipped

            model = shipped(b.core)
        queue = [c for c in feasible if c is not default]
        if strategy == "random":
            rng.shuffle(queue)
        measured: List[Candidate] = []
        todo = [default]
        bar.set_description(f"measure {name}")
        while todo:
            _measure(todo, measurer, work, bar)
            measured.extend(todo)
            if records_path:
                append_records(records_path, [_record(c, name, sha, b, budget, flash_budget, measurer.name)
                                              for c in todo])
            room = trials - len(measured)
            if room <= 0 or not queue:
                break
            if strategy == "xgb":
                model = _learn(model, todo, b.core)  # the batch just measured: update() keeps the earlier rows
                _rank(queue, model)
            todo, queue = queue[:min(batch, room)], queue[min(batch, room):]
        bar.close()
    ok = [c for c in measured if c.latency is not None and (c.flash_bytes or 0) <= b.flash_bytes]
    if default.latency is None:
        raise TinyEngineError(f"measuring the default compile failed: {default.error}")
    best = min(ok, key=lambda c: c.latency)
    return TuneResult(name, b.name, measurer.name, _unit(measured), budget, default, best, measured, len(cands),
                      len(feasible), records_path)


def _unit(measured: List[Candidate]) -> str:
    return next((c.unit for c in measured if c.latency is not None), "instructions")


def _measure(cands: List[Candidate], measurer, work: str, bar) -> None:
    dirs = []
    for c in cands:
        d = os.path.join(work, "projects", c.config.key)
        if not os.path.isdir(d):
            c.compiled.export(d)
        dirs.append(d)
    for c, m in zip(cands, measurer.measure_many(dirs)):
        c.latency, c.flash_bytes, c.error, c.unit, c.step_costs = m.latency, m.flash_bytes, m.error, m.unit, m.step_costs
        c.compiled = None  # the code is exported; free the graph's constants
        bar.update(1)


def _learn(model, measured: List[Candidate], core: str):
    """The cost model updated with the layers of ``measured`` (fitted on them if there is none yet)."""
    from .cost_model import LayerCostModel

    feats, costs = [], []
    for c in measured:
        for (_, f), cost in zip(c.layers, c.step_costs):
            feats.append(f)
            costs.append(cost)
    if not feats:
        return model
    if model is None:
        model = LayerCostModel(core=core)
        model.fit(feats, costs)
    else:
        model.update(feats, costs)
    return model


def _rank(queue: List[Candidate], model) -> None:
    """Sort the pool by predicted latency (the sum of its layers')."""
    for c in queue:
        c.predicted = float(sum(model.predict([f for _, f in c.layers]))) if c.layers else float("inf")
    queue.sort(key=lambda c: c.predicted)


def _record(c: Candidate, name: str, sha: str, board, budget: int, flash_budget: int, runner: str) -> dict:
    fits = c.latency is not None and c.arena_bytes <= budget and (c.flash_bytes or 0) <= board.flash_bytes
    return make_record(model=name, sha256=sha, board=board.name, core=board.core, sram_budget=budget,
                       flash_budget=flash_budget, runner=runner, config=c.config, latency=c.latency,
                       unit=c.unit, arena_bytes=c.arena_bytes, flash_bytes=c.flash_bytes, fits=fits,
                       layers=[(sig, cost) for (sig, _), cost in zip(c.layers, c.step_costs)],
                       error=c.error)


class _NoBar:
    def update(self, n=1):
        pass

    def set_description(self, text):
        pass

    def close(self):
        pass


def _progress(enabled: bool, total: int, desc: str):
    """A tqdm progress bar on stderr (or nothing)."""
    if not enabled:
        return _NoBar()
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="step", leave=False)


def format_result(r: TuneResult, top: int = 8) -> str:
    """The table ``tvmc tune`` prints: the default compile next to the best found."""
    u = {"instructions": "instr"}.get(r.unit, r.unit)
    lines = [f"tuned {r.model} for {r.board} on {r.runner}: SRAM budget {r.sram_budget:,} B; {r.pool} "
             f"configurations compiled, {r.feasible} distinct plans fit, {len(r.measured)} measured",
             f"{'':>3} {'configuration':<58} {'arena B':>9} {'MACs':>11} {u:>13} {'vs default':>10}"]
    ranked = sorted((c for c in r.measured if c.latency is not None), key=lambda c: c.latency)[:top]
    if r.default not in ranked:
        ranked.append(r.default)
    for c in ranked:
        mark = "*" if c is r.best else ("d" if c is r.default else "")
        lines.append(f"{mark:>3} {c.config.describe()[:58]:<58} {c.arena_bytes:>9,} {c.macs:>11,} "
                     f"{c.latency:>13,.0f} {c.latency / r.default.latency:>9.3f}x")
    lines.append(f"best: {r.best.config.describe()} — {r.speedup:.3f}x the default compile's speed"
                 + (f"; records in {r.records_path}" if r.records_path else ""))
    return "\n".join(lines)
