"""The integer lowering, one module per operator family.

Each family module (convolution, fully_connected, elementwise, pooling,
data_movement, activations, quantize) lists its :class:`~.base.Lowering`
records in ``LOWERINGS``; :mod:`.driver` walks a QDQ Relax function and
applies them.  Adding an operator touches a family module and a kernel.
"""
from .base import Lowering, QuantizeContext
from .driver import FAMILIES, LowerToIntegerKernels, LoweringDriver, all_lowerings

__all__ = ["Lowering", "QuantizeContext", "FAMILIES", "LowerToIntegerKernels", "LoweringDriver", "all_lowerings"]
