"""``tvmc tune``: the fastest configuration whose plan fits the board.

1. A pool of configurations (:func:`~.space.search_space`; the default compile
   first, then a seeded sample) is compiled: compiling is cheap next to a
   measurement, and it gives each configuration's arena, flash and layers.
   On a core with DSP kernels, a configuration whose plan exceeds the SRAM
   budget is compiled once more with ``narrow_at_peak`` (its convolutions at
   the arena peak im2col one column at a time: less scratch, more
   instructions), so that a fast plan just over the budget can still fit; so
   is a ``keep_portable_arena`` configuration that kept portable kernels for
   their scratch (the narrow kernel may fit there, much faster).
   Configurations whose plan exceeds the SRAM budget or the flash are dropped,
   as are those whose generated code is identical to one already kept.
2. The default compile is measured first, so the result is never slower
   than it (when it is over the SRAM budget but its ``narrow_at_peak`` twin
   fits, the twin takes its place; on a farm that measures several at once,
   the best-ranked plans share its round, and the variants of step 3 are one
   batch too). The rest are measured in the order the strategy gives:
   ``random`` (seeded), or ``xgb``: the per-layer XGBoost cost model
   (:mod:`.cost_model`; the one shipped for the core, else fitted on the first
   measurements) predicts each configuration's latency as the sum of its
   layers', and after every batch it is updated with the layers just measured
   and the remaining pool re-ranked (AutoTVM's XGBTuner loop).
3. Per-layer kernel variants (:func:`_search_kernels`): for the best plan, each
   variant (int16-widened or int8 filters, generic depthwise, portable) is
   applied to every layer that can take it, one configuration per variant.
   Under QEMU a layer's cost does not depend on its neighbours' kernels, so the
   per-step costs of these few configurations give every layer's cost under
   every variant; the tuner then picks each layer's fastest variant (the ones
   that cost flash by gain per byte, within the flash budget) and measures the
   combination. A variant's configuration is not measured when every layer it
   changes has a known cost (a layer signature already measured, in this run
   or in earlier records of any model), nor when the cost model predicts every
   changed layer at least 10% slower.
4. Every measurement is appended to the records file as it arrives.

Layer costs carry over between models: the records of earlier runs (the
records file appended to, and ``prior_records``) give a cost to every layer
signature they measured, which the ranking uses in place of the cost model's
prediction; the cost model is updated with those of them that occur in this
run's pool (their features from this run's compiles), so it learns from the
user's earlier measurements as well as this run's.
"""
from __future__ import annotations

import hashlib
import os
import random
import tempfile
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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
    step_layers: List[str] = field(default_factory=list)    #: per step, the model layer it computes
    variants: Dict[str, Tuple[str, ...]] = field(default_factory=dict)  #: layer -> its kernel variants
    layer_bytes: Dict[str, int] = field(default_factory=dict)  #: layer -> bytes of its constants


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
    kernel_search: Optional[dict] = None   #: what the per-layer kernel search did (None: not run)

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
    from ..codegen.kernel_selection import layer_name, layer_variants
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
            g = c.graph
            step_layers = [layer_name(st.name) for st in g.steps]
            consts: Dict[str, set] = {}
            for st, layer in zip(g.steps, step_layers):
                consts.setdefault(layer, set()).update(i for i in st.inputs if g.tensors[i].kind == "constant")
            out.append(Candidate(cfg, mem["arena_bytes"], mem["weights_bytes"], c.metadata["total_macs"],
                                 _code_digest(c), graph_layers(g), c, step_layers=step_layers,
                                 variants=layer_variants(g, core) if core else {},
                                 layer_bytes={k: sum(g.tensors[i].nbytes for i in v) for k, v in consts.items()}))
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
         batch: int = 4, seed: int = 0, progress: bool = True, cost_model=None, kernel_search: bool = True,
         prior_records: Sequence[str] = (), narrow: bool = True) -> TuneResult:
    """Tune ``model_path`` for ``board`` (a board-table name); see the module docstring.

    ``measurer``: an object with ``name`` and ``measure_many(project_dirs)``
    (default: :class:`~.measure.QemuMeasurer` on the QEMU board of the core).
    ``trials``: measurements at most (the default compile's included).
    ``pool_size``: configurations compiled (default ``max(4 * trials, 24)``).
    ``cost_model``: a :class:`~.cost_model.LayerCostModel` to start from
    (default: the one shipped for the core, if any).
    ``kernel_search``: choose per-layer kernel variants for the best plan (cores
    with DSP; it takes a few of the ``trials``).
    ``prior_records``: records files (of any models) whose measured layer costs
    the ranking and the kernel search reuse, besides ``records_path``.
    ``narrow``: compile the ``narrow_at_peak`` twin of every pool configuration whose
    plan is over the SRAM budget (DSP cores)."""
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
    search_kernels = kernel_search and b.core_info.dsp
    # a variant's configuration and the combination at least
    reserve = min(len(SWEEP_VARIANTS) + 1, trials // 3) if search_kernels else 0
    reserve = reserve if reserve >= 2 else 0
    known_paths = [*prior_records, *([records_path] if records_path and os.path.isfile(records_path)
                                     and os.path.getsize(records_path) else [])]
    bar = _progress(progress, pool_n + trials, f"tune {name}")
    with tempfile.TemporaryDirectory(prefix="tvmc-tune-") as work:
        if measurer is None:
            from .measure import QemuMeasurer

            measurer = QemuMeasurer(qemu_board_for(b).name, work)
        # Earlier layer costs count only in the unit this runner measures in; a measurer whose
        # unit is known only once it has measured (a board: DWT cycles or timer ticks) says None.
        unit = getattr(measurer, "unit", "instructions")
        known = _known_costs(known_paths, b.core, unit) if unit else {}
        bar.set_description(f"compile {name}")
        cands = compile_candidates(model_path, configs, b.core, on_compiled=lambda: bar.update(1))
        if narrow and b.core_info.dsp:
            over = [c.config for c in cands if _narrow_may_help(c, budget)]
            bar.total += len(over)
            cands += compile_candidates(model_path, [replace(cfg, narrow_at_peak=True) for cfg in over], b.core,
                                        on_compiled=lambda: bar.update(1))
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
            # Over the budget, the default compile's narrow twin (if it fits) is the baseline.
            twin = replace(default.config, narrow_at_peak=True)
            default = next((c for c in feasible if c.config == twin), None)
            if default is None:
                raise TinyEngineError(f"{name}'s default compile needs a {cands[0].arena_bytes:,} B arena, over the "
                                      f"{budget:,} B SRAM budget" + (", even with narrow_at_peak" if narrow and
                                                                     b.core_info.dsp else "")
                                      + ": nothing to tune within it")
        model = cost_model
        if strategy == "xgb" and model is None:
            from .cost_model import shipped

            model = shipped(b.core)
        if strategy == "xgb" and known:
            model = _learn_known(model, cands, known, b.core)
        queue = [c for c in feasible if c is not default]
        if strategy == "random":
            rng.shuffle(queue)
        measured: List[Candidate] = []
        bar.set_description(f"measure {name}")

        def run(batch_: List[Candidate]) -> None:
            nonlocal model
            _measure(batch_, measurer, work, bar)
            measured.extend(batch_)
            if records_path:
                append_records(records_path, [_record(c, name, sha, b, budget, flash_budget, measurer.name)
                                              for c in batch_])
            for c in batch_:
                if c.latency is not None:
                    known.update({sig: cost for (sig, _), cost in zip(c.layers, c.step_costs)})
            if strategy == "xgb":
                model = _learn(model, batch_, b.core)  # the batch just measured: update() keeps the earlier rows

        def explore(limit: int) -> None:
            nonlocal queue
            while len(measured) < limit and queue:
                if strategy == "xgb":
                    _rank(queue, model, known)
                room = limit - len(measured)
                todo, queue = queue[:min(batch, room)], queue[min(batch, room):]
                run(todo)

        # The default opens the first round; a farm measuring several at once gets the best-ranked
        # plans beside it (one measurer measures it alone, and the cost model learns from it first).
        together = max(0, min(int(getattr(measurer, "parallel", 1)), batch, trials - reserve) - 1)
        if together and strategy == "xgb":
            _rank(queue, model, known)
        run([default] + queue[:together])
        queue = queue[together:]
        if default.latency is None:
            raise TinyEngineError(f"measuring the default compile failed: {default.error}")
        if unit is None:
            earlier = _known_costs(known_paths, b.core, default.unit)
            for sig, cost in earlier.items():
                known.setdefault(sig, cost)  # this run's own measurement of a layer wins
            if strategy == "xgb" and earlier:
                model = _learn_known(model, cands, earlier, b.core)
        explore(trials - reserve)
        summary = None
        if search_kernels and trials - len(measured) >= 1:
            base = min(_fitting(measured, b, budget, flash_budget), key=lambda c: c.latency)
            bar.set_description(f"kernels {name}")
            summary = _search_kernels(model_path, base, b.core, budget, flash_budget, trials - len(measured),
                                      model, known, run, {c.code_digest for c in measured}, bar)
        explore(trials)  # what the kernel search left of the trials
        bar.close()
    best = min(_fitting(measured, b, budget, flash_budget), key=lambda c: c.latency)
    return TuneResult(name, b.name, measurer.name, _unit(measured), budget, default, best, measured, len(cands),
                      len(feasible), records_path, summary)


def _narrow_may_help(c: Candidate, budget: int) -> bool:
    """Whether ``c``'s ``narrow_at_peak`` twin is worth compiling: its plan is over the SRAM
    budget, or it kept portable kernels where the DSP kernels' scratch would raise the arena
    (``keep_portable_arena``: the narrow kernel, much faster than the portable one, may fit there)."""
    if c.error or c.config.narrow_at_peak:
        return False
    if c.arena_bytes > budget:
        return True
    refused = (c.compiled.metadata.get("kernel_selection") or {}).get("refused", []) if c.compiled else []
    return c.config.keep_portable_arena and any("scratch would raise the arena" in why for _, _, why in refused)


def _fitting(measured: List[Candidate], board, budget: int, flash_budget: int) -> List[Candidate]:
    """The measured candidates within the SRAM budget, the weights' flash budget and the board's flash."""
    return [c for c in measured if c.latency is not None and c.arena_bytes <= budget
            and c.weights_bytes <= flash_budget and (c.flash_bytes or 0) <= board.flash_bytes]


def _known_costs(paths: Sequence[str], core: str, unit: str = "instructions") -> Dict[str, float]:
    """Layer costs measured in ``unit`` in earlier runs (records files of any model), by signature."""
    from .records import known_layer_costs, load_records

    records = [r for p in paths for r in load_records(p)]
    return known_layer_costs(records, core, unit)


#: The per-layer kernel variants the kernel search tries, one configuration each.
SWEEP_VARIANTS = ("w16", "w8", "generic", "portable")

#: A variant's configuration is left unmeasured when the cost model predicts every
#: layer it changes at least this much slower than now.
SKIP_IF_PREDICTED_SLOWER = 1.10


def _layer_costs(c: Candidate, costs: Sequence[Optional[float]]) -> Dict[str, Optional[float]]:
    """Per layer, the sum of its steps' costs (None when a step has none)."""
    out: Dict[str, Optional[float]] = {}
    for layer, cost in zip(c.step_layers, costs):
        prev = out.get(layer, 0.0)
        out[layer] = None if prev is None or cost is None else prev + cost
    return out


def _layer_sigs(c: Candidate) -> Dict[str, List[str]]:
    out: Dict[str, List[str]] = {}
    for layer, (sig, _) in zip(c.step_layers, c.layers):
        out.setdefault(layer, []).append(sig)
    return out


def _search_kernels(model_path: str, base: Candidate, core: str, budget: int, flash_budget: int, room: int,
                    model, known: Dict[str, float], run: Callable[[List[Candidate]], None], seen: set, bar) -> dict:
    """Per-layer kernel variants for the plan of ``base`` (see the module docstring);
    measures at most ``room`` configurations through ``run``. Returns what it did."""
    current = dict(base.config.kernels)
    configs = []
    for v in SWEEP_VARIANTS:
        kv = {layer: v for layer, choices in base.variants.items() if v in choices and current.get(layer) != v}
        if kv:
            configs.append((v, base.config.with_kernels({**current, **kv})))
    bar.total += len(configs)
    sweeps = dict(zip([v for v, _ in configs],
                      compile_candidates(model_path, [cfg for _, cfg in configs], core, lambda: bar.update(1))))
    base_sigs = _layer_sigs(base)
    base_cost = _layer_costs(base, base.step_costs)
    sweep_sigs = {v: _layer_sigs(s) for v, s in sweeps.items() if not s.error}
    pred_b = _layer_costs(base, model.predict([f for _, f in base.layers])) if model is not None else None
    summary = {"variants": {}, "measured": 0}
    to_measure = []
    for v, s in sweeps.items():
        if s.error:
            summary["variants"][v] = f"does not compile: {s.error}"
            continue
        sigs = sweep_sigs[v]
        changed = [layer for layer in sigs if sigs[layer] != base_sigs.get(layer)]
        if not changed:
            summary["variants"][v] = "every layer already has it"
            continue
        steps = [k for k, layer in enumerate(s.step_layers) if layer in changed]
        if all(s.layers[k][0] in known for k in steps):
            summary["variants"][v] = f"{len(changed)} layers, costs known from earlier measurements"
            continue
        if model is not None:
            pred_s = _layer_costs(s, model.predict([f for _, f in s.layers]))
            if all(pred_s[layer] >= SKIP_IF_PREDICTED_SLOWER * pred_b[layer] for layer in changed):
                summary["variants"][v] = f"{len(changed)} layers, all predicted >= 10% slower: not measured"
                continue
        to_measure.append((v, s))
    # Leave one measurement for the combination; the variants are independent: one batch (a
    # farm measures them at once).
    batch_ = to_measure[:max(0, room - 1)]
    if batch_:
        run([s for _, s in batch_])
    for v, s in batch_:
        seen.add(s.code_digest)
        summary["measured"] += 1
        summary["variants"][v] = ("measured" if s.latency is not None else f"failed: {s.error}")
    for v, s in to_measure[max(0, room - 1):]:
        summary["variants"][v] = "not measured: out of trials"
    # Every layer's cost under every variant that has one.
    options = []
    for v, s in sweeps.items():
        if s.error:
            continue
        costs = s.step_costs if s.latency is not None else [known.get(sig) for sig, _ in s.layers]
        per_layer = _layer_costs(s, costs)
        for layer, cost in per_layer.items():
            if cost is None or base_cost.get(layer) is None or sweep_sigs[v][layer] == base_sigs.get(layer):
                continue
            gain = base_cost[layer] - cost
            if gain > 0:
                options.append((layer, v, gain, s.layer_bytes.get(layer, 0) - base.layer_bytes.get(layer, 0)))
    # Free changes first, then the ones that cost flash by gain per byte.
    options.sort(key=lambda o: (o[3] > 0, -(o[2] / o[3]) if o[3] > 0 else -o[2]))
    chosen: Dict[str, Tuple[str, float]] = {}
    weights = base.weights_bytes
    for layer, v, gain, extra in options:
        if layer in chosen or weights + max(extra, 0) > flash_budget:
            continue
        chosen[layer] = (v, gain)
        weights += extra
    summary["layers_changed"] = 0
    while chosen and summary["measured"] < room:
        cfg = base.config.with_kernels({**current, **{k: v for k, (v, _) in chosen.items()}})
        bar.total += 1
        combo = compile_candidates(model_path, [cfg], core, lambda: bar.update(1))[0]
        if combo.error or combo.arena_bytes > budget or combo.weights_bytes > flash_budget:
            del chosen[min(chosen, key=lambda k: chosen[k][1])]  # the smallest gain goes first
            continue
        summary["layers_changed"] = len(chosen)
        summary["predicted"] = base.latency - sum(g for _, g in chosen.values())
        if combo.code_digest in seen:
            summary["combination"] = "the same code as a configuration already measured"
            break
        run([combo])
        summary["measured"] += 1
        summary["latency"] = combo.latency
        break
    return summary



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
        c.latency, c.flash_bytes, c.error, c.step_costs = m.latency, m.flash_bytes, m.error, m.step_costs
        c.unit = m.unit or c.unit  # a run that failed before any figure has no unit of its own
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


def _learn_known(model, cands: List[Candidate], known: Dict[str, float], core: str):
    """The cost model updated with the earlier measurements (records) of layers that occur
    in this pool: their features come from this run's compiles, their costs from the records."""
    rows: Dict[str, Tuple[dict, float]] = {}
    for c in cands:
        for sig, f in c.layers:
            if sig in known and sig not in rows:
                rows[sig] = (f, known[sig])
    if not rows:
        return model
    from .cost_model import LayerCostModel

    feats, costs = [f for f, _ in rows.values()], [c for _, c in rows.values()]
    if model is None:
        return LayerCostModel(core=core).fit(feats, costs)
    return model.update(feats, costs)


def _rank(queue: List[Candidate], model, known: Optional[Dict[str, float]] = None) -> None:
    """Sort the pool by predicted latency: the sum of its layers', a layer's measured
    cost where its signature is ``known``, else the cost model's prediction."""
    known = known or {}
    for c in queue:
        if not c.layers:
            c.predicted = float("inf")
            continue
        pred = model.predict([f for _, f in c.layers]) if model is not None else [0.0] * len(c.layers)
        c.predicted = float(sum(known.get(sig, p) for (sig, _), p in zip(c.layers, pred)))
    queue.sort(key=lambda c: c.predicted)


def _record(c: Candidate, name: str, sha: str, board, budget: int, flash_budget: int, runner: str) -> dict:
    fits = bool(_fitting([c], board, budget, flash_budget))
    return make_record(model=name, sha256=sha, board=board.name, core=board.core, sram_budget=budget,
                       flash_budget=flash_budget, runner=runner, config=c.config, latency=c.latency,
                       unit=c.unit, arena_bytes=c.arena_bytes, flash_bytes=c.flash_bytes, fits=fits,
                       layers=[(sig, cost) for (sig, _), cost in zip(c.layers, c.step_costs)],
                       error=c.error)


class _NoBar:
    total = 0

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
    k = r.kernel_search
    if k is not None:
        lines.append("kernel variants: " + "; ".join(f"{v}: {what}" for v, what in k["variants"].items())
                     + (f"; {k['layers_changed']} layers changed" if k.get("layers_changed") else "")
                     + (f" ({k['combination']})" if k.get("combination") else "")
                     + (f", predicted {k['predicted']:,.0f} {u}, measured {k['latency']:,.0f}"
                        if k.get("latency") is not None else ""))
    lines.append(f"best: {r.best.config.describe()} — {r.speedup:.3f}x the default compile's speed"
                 + (f"; records in {r.records_path}" if r.records_path else ""))
    return "\n".join(lines)
