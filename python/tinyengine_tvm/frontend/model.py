"""What an imported model is: its Relax module and the descriptions of its inputs and outputs.

Shared by the loader and the format importers (tflite.py, onnx.py), which the
loader calls lazily; kept apart so that no import cycle joins them.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np


@dataclasses.dataclass
class TensorDesc:
    """A model input or output as the generated C API exposes it."""

    name: str
    shape: List[int]
    dtype: str
    scale: Optional[float] = None
    zero_point: Optional[int] = None

    def to_json(self) -> Dict[str, Any]:
        """The metadata.json form of this tensor."""
        return dataclasses.asdict(self)

    @property
    def nbytes(self) -> int:
        """Size of the tensor in bytes."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass
class ImportedModel:
    """A model imported by TVM's frontend (what the importer drops is kept in
    the IR) and the input/output descriptions of the generated C API."""

    name: str
    format: str
    mod: Any
    inputs: List[TensorDesc]
    outputs: List[TensorDesc]
    #: Resource variables kept between invocations (frontend.tflite_variables.Variable).
    variables: List[Any] = dataclasses.field(default_factory=list)
