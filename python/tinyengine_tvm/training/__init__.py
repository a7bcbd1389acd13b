"""On-device training (MCUNetV3 / Tiny Training Engine style).

Milestone A, the numerical foundation: the C kernels of the "Training"
section of ``src/include/tinyengine_kernels.h`` (``src/kernels/te_training.cc``)
and :mod:`.reference`, their float64 NumPy reference written from the math.

Milestone B, the compiled training step: :func:`compile_training` turns an
int8 TFLite model and a :class:`TrainingConfig` (:mod:`.config`) into
generated C with ``<name>_train_step`` next to ``<name>_invoke``:
:mod:`.forward` lowers the forward pass, :mod:`.backward` appends the loss,
the pruned backward pass and the fused QAS updates to its KernelGraph,
:mod:`.codegen` writes it, :mod:`.host` runs it on this machine, :mod:`.qemu` on an
emulated Cortex-M; :mod:`.budget` chooses the trainable parts under an SRAM budget.
"""
from . import reference
from .compile import CompiledTraining, compile_training
from .config import TrainingConfig, load_config

__all__ = ["CompiledTraining", "TrainingConfig", "compile_training", "load_config", "reference"]
