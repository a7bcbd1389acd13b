"""compile_training(): an int8 TFLite model and a training configuration -> generated C.

The forward pass is lowered as for inference (:mod:`.forward`); the training
step is built in Relax as a function ``train_step`` of the same module: the
forward calls, the loss, the pruned backward pass and the fused updates
(:mod:`.backward`).  Its KernelGraph goes to the project's planner, which
places every buffer of the whole training step in one arena (activations
kept for the backward pass, gradients, the trainable parameters and the
momentum are all counted), and the project's C writer emits it
(:mod:`.codegen`).
"""
from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Dict, Optional, Union

import numpy as np

from ..compiler import CompiledModel, _metadata, project_files
from ..errors import MemoryBudgetError, UnsupportedModelError
from ..kernels import steps_scratch
from ..output_paths import GENERATOR
from ..planner import plan_arena
from .backward import PHASE, UnsafeForTraining, build_training_graph, layer_names
from .codegen import TrainingCWriter, trainable_initial
from .config import TrainingConfig, load_config
from .forward import UNSAFE_FOR_TRAINING, lower_forward


class CompiledTraining(CompiledModel):
    """A compiled training step: files, metadata (``metadata["training"]``) and a host runner.

    :meth:`train_step` / :meth:`invoke` build the project once with the host
    gcc (like :meth:`CompiledModel.run`) and share its trained parameters.
    """

    def __init__(self, name, files, metadata, lowered, training, plan):
        super().__init__(name, files, metadata, lowered)
        self.training = training
        self.graph, self.plan = training.graph, plan
        self._trainer = None
        self._debug = False

    def host(self, debug: bool = False):
        """The host build (:class:`~.host.TrainingHost`); ``debug`` traces every step's output."""
        from .host import TrainingHost

        if self._trainer is None or self._debug != debug:
            build_dir = tempfile.mkdtemp(prefix=f"tinyengine-train-{self.name}-")
            self.export(os.path.join(build_dir, "project"))
            self._trainer = TrainingHost(os.path.join(build_dir, "project"), debug=debug)
            self._debug = debug
        return self._trainer

    def train_step(self, x, label: int) -> float:
        """One training step on the host; returns the loss before the update."""
        return self.host(self._debug).train_step(x, label)

    def invoke(self, x) -> np.ndarray:
        """One inference on the host with the current trained parameters."""
        return self.host(self._debug).invoke(x)

    def run(self, inputs, **kwargs):
        """Inference outputs by name (as :meth:`CompiledModel.run`), with the trained parameters."""
        x = inputs[0] if isinstance(inputs, (list, tuple)) else inputs
        if isinstance(x, dict):
            x = next(iter(x.values()))
        return {self.metadata["outputs"][0]["name"]: self.invoke(x)}


def compile_training(model: Union[str, bytes], config: Union[TrainingConfig, Dict[str, Any], str],
                     name: Optional[str] = None, sram_budget: Optional[int] = None,
                     contribution=None) -> CompiledTraining:
    """Compile the training step of an int8 TFLite model (path or bytes) for ``config``
    (a :class:`TrainingConfig`, its JSON dict or a JSON file path).

    The generated project has ``<name>_train_init()``, ``<name>_train_step(input, label, &loss)``,
    ``<name>_train_parameter(i)`` and the usual inference API on the same arena.  With
    ``sram_budget`` an arena above it raises MemoryBudgetError.  A config with ``sram_budget``
    lets the compiler choose what to train (:mod:`.budget`); ``contribution`` then scores the
    schemes (e.g. :func:`.contribution.accuracy_contribution`; default: data-free).  Raises UsageError for a bad
    configuration and UnsupportedModelError for a model the training rules do not cover.
    """
    t0 = time.perf_counter()
    config = load_config(config)
    variants = ForwardVariants(model, name)
    selection = None
    if config.sram_budget is not None:  # choose the trainable parts so the arena fits
        from .budget import choose_under_budget

        asked = config
        config, tried = choose_under_budget(variants, config.sram_budget, config.learning_rate, config.momentum,
                                            contribution=contribution)
        selection = {"sram_budget": asked.sram_budget, "chosen": config.to_dict(), "tried": tried}
        sram_budget = asked.sram_budget if sram_budget is None else min(sram_budget, asked.sram_budget)
    fwd, training, plan, candidates = variants.training(config)
    imported = fwd.imported
    graph = training.graph
    initial = trainable_initial(training)
    writer = TrainingCWriter(imported.name, training, plan, imported.inputs, imported.outputs, initial)
    files = project_files(imported.name, writer, graph)
    metadata = _metadata(imported, graph, plan, [])
    metadata["training"] = _training_metadata(training, config, plan)
    metadata["training"]["forward_passes"] = candidates
    if selection is not None:
        metadata["training"]["selection"] = selection
    if sram_budget is not None and plan.arena_bytes > sram_budget:
        raise MemoryBudgetError(f"{imported.name}: the training step needs an arena of {plan.arena_bytes:,} B, "
                                f"over the SRAM budget of {sram_budget:,} B")
    metadata["generator"] = GENERATOR
    metadata["files"] = sorted([*files, "metadata.json"])
    files["metadata.json"] = json.dumps(metadata, indent=2, sort_keys=False) + "\n"
    compiled = CompiledTraining(imported.name, files, metadata, training.module, training, plan)
    compiled.compile_seconds = time.perf_counter() - t0
    return compiled


#: The forward variants tried, from the most memory passes kept to none of the unsafe ones.
CANDIDATES = ((), ("PatchBasedInference",), UNSAFE_FOR_TRAINING)


class ForwardVariants:
    """The forward graph of a model lowered with each set of CANDIDATES passes turned off (each
    lowered once, on first use), and the training step of a configuration on the best of them.

    The variant without any unsafe pass comes first: its errors (configuration, unsupported
    operator) are the model's own.
    """

    def __init__(self, model, name: Optional[str] = None):
        self.model, self.name = model, name
        self._forwards: Dict[tuple, object] = {}
        self.base = self.forward(UNSAFE_FOR_TRAINING)
        self.layer_names = layer_names(self.base.graph)

    def forward(self, disabled: tuple):
        """The (cached) forward lowered with ``disabled`` passes off."""
        if disabled not in self._forwards:
            self._forwards[disabled] = lower_forward(self.model, self.name, disabled)
        return self._forwards[disabled]

    def training(self, config: TrainingConfig):
        """(forward, training graph, plan, report): the safe variant with the smallest arena (on a
        tie, the one keeping more passes); the report says what each variant gave."""
        results, report = [], []
        for disabled in reversed(CANDIDATES):
            entry = {"disabled": list(disabled)}
            report.append(entry)
            try:
                fwd = self.forward(disabled)
                training = build_training_graph(fwd.lowered["main"], fwd.quant, config, self.layer_names)
            except (UnsafeForTraining, UnsupportedModelError) as e:
                if disabled == UNSAFE_FOR_TRAINING:  # the model's own limits: nothing left to turn off
                    if isinstance(e, UnsupportedModelError):
                        raise
                    raise UnsupportedModelError([("TRAINING", self.base.imported.name, str(e))]) from None
                # The model trains without these passes: what failed here is what they rewrote.
                entry.update(safe=False, reason=str(e).strip().splitlines()[-1].strip())
                continue
            plan = plan_arena(training.graph, steps_scratch(training.graph.steps))
            entry.update(safe=True, arena_bytes=int(plan.arena_bytes))
            results.append((plan.arena_bytes, len(disabled), fwd, training, plan, entry))
        _, _, fwd, training, plan, entry = min(results, key=lambda r: (r[0], r[1]))
        for r in report:
            r["chosen"] = r is entry
        return fwd, training, plan, report


def _phase(step) -> str:
    """forward, loss, backward or update: the phase note of the calls train_step adds."""
    return step.notes.get(PHASE, "forward")


def _training_metadata(training, config: TrainingConfig, plan) -> dict:
    g = training.graph
    params = []
    for p in training.parameters:
        t = g.tensors[p.tensor]
        params.append({"name": p.name, "layer": p.layer, "kind": p.kind, "shape": list(t.shape), "dtype": t.dtype,
                       "bytes": t.nbytes, "trained_channels": p.trained_channels, "channels": p.channels})
    steps = []
    for s, step in enumerate(g.steps):
        t = g.tensors[step.output]
        steps.append({"name": step.name, "kernel": step.kernel, "phase": _phase(step),
                      "shape": list(t.shape), "dtype": t.dtype, "bytes": t.nbytes})
    trainable = sum(p["bytes"] for p in params)
    return {
        "config": config.to_dict(),
        # The model's layers; kind and channels of those that are one step here (not patches).
        "layers": [dict({"name": n}, **next(({"kind": L.family, "channels": L.channels}
                                             for L in training.layers if L.name == n), {}))
                   for n in training.layer_names],
        "parameters": params,
        "forward_steps": training.forward_steps,
        "train_steps": len(g.steps),
        "steps": steps,
        "gradient_format": "float32",
        "memory": {
            "arena_bytes": int(plan.arena_bytes),
            "trainable_bytes": int(trainable),
            "momentum_bytes": int(plan.state_bytes),
            "frozen_weights_bytes": int(sum(t.nbytes for t in g.constants)),
            # The trainable parameters' initial values stay in flash too (train_init copies them).
            "flash_bytes": int(sum(t.nbytes for t in g.constants) + trainable),
        },
    }
