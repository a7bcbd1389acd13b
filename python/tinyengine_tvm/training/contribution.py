"""MCUNetV3's contribution analysis measured on data, for :mod:`.budget`'s search.

Kept apart from :mod:`.budget` because it compiles and runs each scheme
(:mod:`.compile`, which itself calls the budget search).
"""
from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

from .budget import LayerInfo, Scheme, scheme_config
from .compile import compile_training


def accuracy_contribution(model, train: Tuple[np.ndarray, np.ndarray], val: Tuple[np.ndarray, np.ndarray],
                          learning_rate: float = 0.01, epochs: int = 1, seed: int = 0,
                          ) -> Callable[[List[LayerInfo], Scheme], float]:
    """MCUNetV3's contribution analysis, measured: a scheme's contribution is the validation
    accuracy its sparse update reaches after ``epochs`` of fine-tuning on ``train`` (quantized
    inputs [N, ...] and labels), through the compiled training step on the host. ``val`` must not
    be the test set. Cached per scheme; the search asks for each scheme it plans once or twice."""
    cache: Dict[Scheme, float] = {}
    xs, ys = train
    vx, vy = val

    def contribution(layers: List[LayerInfo], scheme: Scheme) -> float:
        if scheme not in cache:
            config = scheme_config(layers, scheme, learning_rate, 0.0)
            compiled = compile_training(model, config, name="contribution")
            rng = np.random.default_rng(seed)
            for _ in range(epochs):
                for i in rng.permutation(len(ys)):
                    compiled.train_step(xs[i], int(ys[i]))
            hits = sum(int(np.argmax(compiled.invoke(x))) == int(y) for x, y in zip(vx, vy))
            cache[scheme] = hits / len(vy)
        return cache[scheme]

    return contribution


__all__ = ["accuracy_contribution"]
