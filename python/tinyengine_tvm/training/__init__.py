"""On-device training (MCUNetV3 / Tiny Training Engine style).

Milestone A, the numerical foundation: the C kernels of the "Training"
section of ``src/include/tinyengine_kernels.h`` (``src/kernels/te_training.cc``)
and :mod:`.reference`, their float64 NumPy reference written from the math.
"""
from . import reference

__all__ = ["reference"]
