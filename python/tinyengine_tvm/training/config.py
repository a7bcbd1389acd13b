"""The training configuration: what a sparse update trains, and the SGD hyper-parameters.

A configuration names the trainable parts of an int8 model the way the
sparse update of MCUNetV3 (Lin et al., 2022) chooses them: the biases of some
layers, the weights of some layers, and per layer the fraction of output
channels whose weights are trained (the first ``ratio * C_out``).  Layers are
the model's parameterised operators (CONV_2D, DEPTHWISE_CONV_2D,
FULLY_CONNECTED) in execution order, named either by their index in that
order (negative counts from the last, as in Python) or by the name of their
output tensor in the model file.

JSON form (every key optional except that something must be trained)::

    {"biases": "all" | [layer, ...],
     "weights": [layer, ...],
     "channel_ratio": {"<layer>": 0.5, ...},
     "learning_rate": 0.05,
     "momentum": 0.0}

or, instead of naming the trainable parts, ``{"sram_budget": 65536, ...}``:
the compiler chooses them so the training arena fits (:mod:`.budget`).
"""
from __future__ import annotations

import dataclasses
import json
import math
import os
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

from ..errors import UsageError

Layer = Union[int, str]

_KEYS = ("biases", "weights", "channel_ratio", "learning_rate", "momentum", "sram_budget")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """What to train and how.

    ``biases``: "all" or a list of layers; ``weights``: a list of layers;
    ``channel_ratio``: {layer: fraction in (0, 1]} of output channels whose
    weights are trained (only for layers in ``weights``); ``learning_rate``
    (> 0) and ``momentum`` (in [0, 1)) of the QAS SGD update.  ``sram_budget`` (bytes), given
    instead of biases and weights, asks the compiler to choose them (:mod:`.budget`).
    """

    biases: Union[str, Tuple[Layer, ...]] = ()
    weights: Tuple[Layer, ...] = ()
    channel_ratio: Tuple[Tuple[Layer, float], ...] = ()
    learning_rate: float = 0.01
    momentum: float = 0.0
    sram_budget: Optional[int] = None

    def __post_init__(self):
        biases = self.biases
        if isinstance(biases, str):
            if biases != "all":
                raise UsageError(f"training config: 'biases' must be \"all\" or a list of layers, not {biases!r}")
        else:
            object.__setattr__(self, "biases", tuple(_layers(biases, "biases")))
        object.__setattr__(self, "weights", tuple(_layers(self.weights, "weights")))
        ratios = self.channel_ratio
        items = ratios.items() if isinstance(ratios, dict) else ratios
        checked = []
        for layer, ratio in items:
            layer = _layer(layer, "channel_ratio")
            if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or not 0.0 < float(ratio) <= 1.0:
                raise UsageError(f"training config: channel_ratio of layer {layer!r} must be a number in (0, 1], "
                                 f"not {ratio!r}")
            checked.append((layer, float(ratio)))
        object.__setattr__(self, "channel_ratio", tuple(checked))
        lr = self.learning_rate
        if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not math.isfinite(lr) or lr <= 0:
            raise UsageError(f"training config: learning_rate must be a positive number, not {lr!r}")
        m = self.momentum
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not 0.0 <= m < 1.0:
            raise UsageError(f"training config: momentum must be a number in [0, 1), not {m!r}")
        object.__setattr__(self, "learning_rate", float(lr))
        object.__setattr__(self, "momentum", float(m))
        budget = self.sram_budget
        if budget is not None:
            if isinstance(budget, bool) or not isinstance(budget, int) or budget <= 0:
                raise UsageError(f"training config: sram_budget must be a positive number of bytes, not {budget!r}")
            if self.biases or self.weights or self.channel_ratio:
                raise UsageError("training config: give either the trainable parts ('biases', 'weights', "
                                 "'channel_ratio') or an 'sram_budget' to choose them under, not both")
        elif not self.biases and not self.weights:
            raise UsageError("training config trains nothing: give 'biases' and/or 'weights' (or an "
                             "'sram_budget' to choose them under)")

    @staticmethod
    def from_dict(data: Dict[str, Any]) -> "TrainingConfig":
        """A configuration from its JSON object (UsageError on unknown keys or bad values)."""
        if not isinstance(data, dict):
            raise UsageError(f"training config must be a JSON object, not {type(data).__name__}")
        unknown = sorted(set(data) - set(_KEYS))
        if unknown:
            raise UsageError(f"training config: unknown key(s) {unknown}; keys are {list(_KEYS)}")
        ratios = data.get("channel_ratio", {})
        if not isinstance(ratios, dict):
            raise UsageError("training config: 'channel_ratio' must be an object {layer: ratio}")
        # JSON object keys are strings: "-1" or "3" name layers by index.
        ratios = {_json_layer(k): v for k, v in ratios.items()}
        return TrainingConfig(biases=data.get("biases", ()), weights=data.get("weights", ()),
                              channel_ratio=ratios, learning_rate=data.get("learning_rate", 0.01),
                              momentum=data.get("momentum", 0.0), sram_budget=data.get("sram_budget"))

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object of this configuration."""
        return {"biases": self.biases if isinstance(self.biases, str) else list(self.biases),
                "weights": list(self.weights), "channel_ratio": {str(k): v for k, v in self.channel_ratio},
                "learning_rate": self.learning_rate, "momentum": self.momentum,
                **({"sram_budget": self.sram_budget} if self.sram_budget is not None else {})}


def load_config(config: Union[str, os.PathLike, Dict[str, Any], TrainingConfig]) -> TrainingConfig:
    """A TrainingConfig from itself, a dict, or the path of a JSON file (UsageError when unreadable)."""
    if isinstance(config, TrainingConfig):
        return config
    if isinstance(config, dict):
        return TrainingConfig.from_dict(config)
    path = os.fspath(config)
    try:
        with open(path) as f:
            data = json.load(f)
    except OSError as e:
        raise UsageError(f"cannot read the training config {path}: {e.strerror or e}") from None
    except json.JSONDecodeError as e:
        raise UsageError(f"training config {path} is not valid JSON: {e}") from None
    return TrainingConfig.from_dict(data)


def resolve_layers(refs: Sequence[Layer], names: List[str], what: str) -> List[int]:
    """Indices into ``names`` (the model's layers in order) of the layer references ``refs``."""
    out = []
    for ref in refs:
        if isinstance(ref, int):
            if not -len(names) <= ref < len(names):
                raise UsageError(f"training config: {what} names layer {ref}, but the model has {len(names)} "
                                 f"layers: {names}")
            out.append(ref % len(names))
        elif ref in names:
            out.append(names.index(ref))
        else:
            raise UsageError(f"training config: {what} names layer {ref!r}, which is not one of the model's "
                             f"layers {names}")
    return sorted(set(out))


def _json_layer(key: str) -> Layer:
    try:
        return int(key)
    except ValueError:
        return key


def _layer(ref: Any, what: str) -> Layer:
    if isinstance(ref, bool) or not isinstance(ref, (int, str)):
        raise UsageError(f"training config: {what} entries are layer indices or names, not {ref!r}")
    return ref


def _layers(refs: Any, what: str) -> List[Layer]:
    if isinstance(refs, (str, int)) or not isinstance(refs, (list, tuple)):
        raise UsageError(f"training config: '{what}' must be a list of layers, not {refs!r}")
    return [_layer(r, what) for r in refs]
