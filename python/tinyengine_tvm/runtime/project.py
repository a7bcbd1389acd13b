"""A compiled project on disk (what ``tvmc compile`` wrote)."""
from __future__ import annotations

import json
import os
from typing import Dict, List, Mapping, Sequence, Union

import numpy as np

from ..errors import TinyEngineError

Inputs = Union[Mapping[str, np.ndarray], Sequence[np.ndarray], np.ndarray]


def read_metadata(project_dir: str) -> dict:
    """The project's metadata.json, or a clear error when the directory is not a project."""
    path = os.path.join(project_dir, "metadata.json")
    if not os.path.isfile(path):
        raise TinyEngineError(f"{project_dir}: not a compiled tinyengine project (no metadata.json)")
    with open(path) as f:
        return json.load(f)


def match_inputs(inputs: Inputs, inputs_meta: List[dict]) -> Dict[str, np.ndarray]:
    """The model's inputs by name, contiguous and in the model's shape and dtype.

    ``inputs``: a mapping by tensor name (a lone unnamed array is accepted for a
    one-input model), a sequence in model order, or one array.
    """
    names = [m["name"] for m in inputs_meta]
    if isinstance(inputs, np.ndarray):
        inputs = [inputs]
    if not isinstance(inputs, Mapping):
        inputs = list(inputs)
        if len(inputs) != len(names):
            raise TinyEngineError(f"{len(inputs)} input(s) given; the model has {len(names)}")
        inputs = dict(zip(names, inputs))
    if len(names) == 1 and names[0] not in inputs and len(inputs) == 1:
        inputs = {names[0]: next(iter(inputs.values()))}
    missing = [n for n in names if n not in inputs]
    if missing:
        raise TinyEngineError(f"missing input(s) {missing}; the model's inputs are {names}")
    out = {}
    for m in inputs_meta:
        arr = np.asarray(inputs[m["name"]])
        want = tuple(m["shape"])
        if arr.size != int(np.prod(want)):
            raise TinyEngineError(f"input '{m['name']}': expected shape {list(want)}, got {list(arr.shape)}")
        if arr.dtype != np.dtype(m["dtype"]):
            raise TinyEngineError(f"input '{m['name']}': expected dtype {m['dtype']}, got {arr.dtype}")
        out[m["name"]] = np.ascontiguousarray(arr.reshape(want))
    return out
