"""The integer lowering, one module per operator family.

Each family module (convolution, fully_connected, elementwise, pooling,
data_movement, activations, quantize) lists its :class:`~.base.Lowering`
records in ``LOWERINGS``; :mod:`.driver` rewrites a QDQ Relax function with
them (a ``PyExprMutator``).  Adding an operator touches a family module and a kernel.
"""
from .base import Lowering, QuantizeContext
from .driver import (FAMILIES, LowerToIntegerKernels, LoweringDriver, all_lowerings, supported_tflite_dtypes,
                     supported_tflite_ops, supported_tflite_output_dtypes)

__all__ = ["Lowering", "QuantizeContext", "FAMILIES", "LowerToIntegerKernels", "LoweringDriver", "all_lowerings",
           "supported_tflite_dtypes", "supported_tflite_ops", "supported_tflite_output_dtypes"]
