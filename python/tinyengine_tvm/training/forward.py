"""The forward pass of a training step: the int8 graph as inference lowers it.

The model goes through the same import, integer lowering and memory passes
as ``tinyengine_tvm.compile``.  Three of those passes can be unsafe when a
backward pass follows:

* PatchBasedInference computes the first stages patch by patch and never
  holds a whole activation inside them, but the backward pass reads whole
  activations (a layer's input for its weight gradient, its output for the
  activation mask) and trains whole layers;
* InplaceDepthwise and InplaceElementwise write an output over an input that
  dies there in inference, but the backward pass may still read that input.

They are safe where the training step does not reach: a sparse update that
trains only the last layers leaves the first stages frozen, and there they
save as much memory as in inference.  So :func:`lower_forward` takes the
passes to disable, and ``compile_training`` keeps a pass only when the
backward graph built on its output passes the checks of
``backward.UnsafeForTraining`` (every trained layer is still one step, and
nothing the backward pass reads was overwritten in place).  The other passes
(pad folding, the memory-aware schedule, slice views) keep every activation
intact and always stay on.

Only TFLite models: the training kernels need the float scales, read from
the TFLite tensors (:mod:`.quantization`).
"""
from __future__ import annotations

import dataclasses
import os
from typing import Optional, Sequence, Union

import tvm

from ..errors import ModelFormatError, UsageError
from ..frontend import ImportedModel, load_model
from ..frontend.loader import detect_format
from ..kernel_graph import KernelGraph
from ..transform import LowerToIntegerKernels
from ..transform.pipeline import PASS_FACTORIES, optimization_passes
from .quantization import ModelQuant, read_quantization

#: Memory passes that can destroy activations the backward pass reads (see the module doc).
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


def lower_forward(model: Union[str, os.PathLike, bytes], name: Optional[str] = None,
                  disabled: Sequence[str] = UNSAFE_FOR_TRAINING) -> Forward:
    """Import and lower an int8 TFLite model for training, with the memory passes
    minus ``disabled`` (default: every pass that can be unsafe for training)."""
    data = model_bytes(model)
    if detect_format(data) != "tflite":
        raise UsageError("training compiles int8 TFLite models only (the gradients need the float scales the "
                         "TFLite tensors carry)")
    imported = load_model(model, name)
    lowered = LowerToIntegerKernels()(imported.mod)
    off = [p for p in PASS_FACTORIES if p in disabled]
    lowered = tvm.transform.Sequential(optimization_passes(off), name="tinyengine-training")(lowered)
    graph = KernelGraph.from_relax(lowered["main"])
    return Forward(imported, lowered, graph, read_quantization(data))
