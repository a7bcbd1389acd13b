"""The forward pass of a training step: the int8 graph as inference lowers it.

The model goes through the same import, integer lowering and memory passes
as ``tinyengine_tvm.compile``, minus the passes that are unsafe when a
backward pass follows:

* PatchBasedInference computes the first stages patch by patch and never
  holds a whole stage output, but the backward pass reads whole activations
  (a layer's input for its weight gradient, its output for the activation
  mask);
* InplaceDepthwise and InplaceElementwise write an output over an input that
  dies there in inference, but the backward pass may still read that input.

The rest (pad folding, the memory-aware schedule, slice views) keep every
activation intact and stay on.  Only TFLite models: the training kernels need
the float scales, read from the TFLite tensors (:mod:`.quantization`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Union

import tvm

from ..errors import ModelFormatError, UsageError
from ..frontend import ImportedModel, load_model
from ..frontend.loader import detect_format
from ..kernel_graph import KernelGraph
from ..transform import LowerToIntegerKernels
from ..transform.pipeline import PASS_FACTORIES, optimization_passes
from .quantization import ModelQuant, read_quantization

#: Memory passes that would destroy activations the backward pass reads.
UNSAFE_FOR_TRAINING = ("PatchBasedInference", "InplaceDepthwise", "InplaceElementwise")


@dataclasses.dataclass
class Forward:
    """The imported model, its lowered ``main``, its KernelGraph and its quantization."""

    imported: ImportedModel
    lowered: tvm.IRModule
    graph: KernelGraph
    quant: ModelQuant


def model_bytes(model: Union[str, os.PathLike, bytes]) -> bytes:
    """The bytes of a model given as a path or bytes (ModelFormatError when unreadable)."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    path = os.fspath(model)
    if not os.path.isfile(path):
        raise ModelFormatError(f"{path}: no such file")
    with open(path, "rb") as f:
        return f.read()


def lower_forward(model: Union[str, os.PathLike, bytes], name: Optional[str] = None) -> Forward:
    """Import and lower an int8 TFLite model for training (see the module doc for the passes)."""
    data = model_bytes(model)
    if detect_format(data) != "tflite":
        raise UsageError("training compiles int8 TFLite models only (the gradients need the float scales the "
                         "TFLite tensors carry)")
    imported = load_model(model, name)
    lowered = LowerToIntegerKernels()(imported.mod)
    safe = [p for p in PASS_FACTORIES if p in UNSAFE_FOR_TRAINING]
    lowered = tvm.transform.Sequential(optimization_passes(safe), name="tinyengine-training")(lowered)
    graph = KernelGraph.from_relax(lowered["main"])
    return Forward(imported, lowered, graph, read_quantization(data))
