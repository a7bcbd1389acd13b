"""Choose what to train under an SRAM budget (a sparse-update scheme that fits).

MCUNetV3 picks its sparse-update scheme by a contribution analysis: how much
accuracy fine-tuning each layer's bias, or a fraction of its weights' output
channels, adds (measured on a dataset), against the memory it costs,
maximised under the memory budget.  This module does the memory side
exactly: every candidate scheme is planned by the project's planner on the
real training graph.  The contribution is a callable: with a dataset,
:func:`.contribution.accuracy_contribution` measures it (the validation accuracy a short
fine-tune of the scheme reaches through the compiled step on the host);
without one the default is a data-free stand-in, the number of trained
parameter values, each layer's counted more the later it is (the paper finds
the last layers contribute most for the memory).

The schemes are the paper's: the biases of the last ``k`` layers, and among
those layers the weights of some, each with a channel ratio from ``ratios``
(a depthwise layer: all channels or none).  A greedy search starts from the
last layer's bias and repeatedly takes the extension (one more bias layer,
or the next ratio of one layer's weights) with the largest contribution per
extra arena byte that still fits, until none fits.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import MemoryBudgetError, UsageError
from .backward import LAYER_KERNELS
from .config import TrainingConfig

#: (k, {layer index: weight ratio}): the biases of the last k layers, and those layers' weights.
Scheme = Tuple[int, Tuple[Tuple[int, float], ...]]


@dataclasses.dataclass(frozen=True)
class LayerInfo:
    """What the search needs of a layer: its kind, output channels, weight elements, bias."""

    name: str
    family: str
    channels: int
    weight_elements: int
    has_bias: bool


def layer_infos(variants) -> List[LayerInfo]:
    """The model's layers, in order, from the forward graph without memory passes."""
    g = variants.base.graph
    out = []
    for step in g.steps:
        family = LAYER_KERNELS.get(step.kernel)
        if family is None:
            continue
        channels = int(step.attrs["output_depth" if family == "fully_connected" else "output_c"])
        weight = g.tensors[step.inputs[1]]
        bias = len(step.inputs) > 2 and g.tensors[step.inputs[2]].dtype == "int32"
        out.append(LayerInfo(step.name, family, channels, int(np.prod(weight.shape)), bool(bias)))
    return out


def trained_values(layers: List[LayerInfo], scheme: Scheme) -> float:
    """The default contribution: trained parameter values, layer i of L weighted by (i + 1) / L."""
    k, weights = scheme
    n = len(layers)
    total = 0.0
    for i in range(n - k, n):
        if layers[i].has_bias:
            total += layers[i].channels * (i + 1) / n
    for i, ratio in weights:
        per_channel = layers[i].weight_elements // layers[i].channels
        total += max(1, int(ratio * layers[i].channels)) * per_channel * (i + 1) / n
    return total


def scheme_config(layers: List[LayerInfo], scheme: Scheme, learning_rate: float, momentum: float) -> TrainingConfig:
    """The TrainingConfig of a scheme."""
    k, weights = scheme
    n = len(layers)
    biases = [i for i in range(n - k, n) if layers[i].has_bias]
    return TrainingConfig(biases=biases, weights=[i for i, _ in weights],
                          channel_ratio={i: r for i, r in weights if r < 1.0},
                          learning_rate=learning_rate, momentum=momentum)


def choose_under_budget(variants, sram_budget: int, learning_rate: float = 0.01, momentum: float = 0.0,
                        ratios: Sequence[float] = (0.25, 0.5, 1.0),
                        contribution: Optional[Callable[[List[LayerInfo], Scheme], float]] = None,
                        ) -> Tuple[TrainingConfig, List[Dict]]:
    """The scheme (as a TrainingConfig) the greedy search picks for ``sram_budget`` bytes of arena,
    and every scheme it planned ({config, arena_bytes, contribution, fits}).

    ``variants`` is a ``compile.ForwardVariants`` of the model.  MemoryBudgetError when not even
    the last layer's bias fits.
    """
    if sram_budget <= 0:
        raise UsageError(f"SRAM budget must be positive, not {sram_budget}")
    ratios = sorted({float(r) for r in ratios})
    if not ratios or ratios[0] <= 0 or ratios[-1] != 1.0:
        raise UsageError(f"channel ratios must lie in (0, 1] and include 1, not {list(ratios)}")
    contribution = contribution or trained_values
    layers = layer_infos(variants)
    n = len(layers)
    tried: List[Dict] = []
    arenas: Dict[Scheme, int] = {}

    def arena(scheme: Scheme) -> int:
        if scheme not in arenas:
            config = scheme_config(layers, scheme, learning_rate, momentum)
            arenas[scheme] = int(variants.training(config)[2].arena_bytes)
            tried.append({"config": config.to_dict(), "arena_bytes": arenas[scheme],
                          "contribution": float(contribution(layers, scheme)),
                          "fits": arenas[scheme] <= sram_budget})
        return arenas[scheme]

    # The start: the last layer's bias (or, without one, the last layer's weights at the least ratio).
    start: Scheme = (1, ()) if layers[-1].has_bias else (1, ((n - 1, _first_ratio(layers[-1], ratios)),))
    if arena(start) > sram_budget:
        raise MemoryBudgetError(f"not even the last layer's {'bias' if layers[-1].has_bias else 'weights'} can "
                                f"be trained in {sram_budget:,} B: that needs an arena of {arena(start):,} B")
    current = start
    while True:
        best, best_score = None, None
        for cand in _extensions(layers, current, ratios):
            gain = contribution(layers, cand) - contribution(layers, current)
            if gain <= 0 or arena(cand) > sram_budget:
                continue
            score = (gain / max(arena(cand) - arena(current), 1), gain)
            if best_score is None or score > best_score:
                best, best_score = cand, score
        if best is None:
            break
        current = best
    return scheme_config(layers, current, learning_rate, momentum), tried


def _first_ratio(layer: LayerInfo, ratios: List[float]) -> float:
    return 1.0 if layer.family == "depthwise_conv2d" else ratios[0]


def _extensions(layers: List[LayerInfo], scheme: Scheme, ratios: List[float]) -> List[Scheme]:
    """One more bias layer, or the next ratio of one updated layer's weights."""
    k, weights = scheme
    n = len(layers)
    out: List[Scheme] = []
    if k < n:
        out.append((k + 1, weights))
    current = dict(weights)
    for i in range(n - k, n):
        r = current.get(i, 0.0)
        if layers[i].family == "depthwise_conv2d":
            nxt = 1.0 if r < 1.0 else None
        else:
            nxt = next((q for q in ratios if q > r), None)
        if nxt is not None:
            out.append((k, tuple(sorted({**current, i: nxt}.items()))))
    return out
