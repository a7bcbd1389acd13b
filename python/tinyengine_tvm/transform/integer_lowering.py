"""LowerToIntegerKernels: turn the frontends' quantize/dequantize graphs into int8 kernels.

TVM's TFLite and ONNX importers express an int8 model as float operators
between ``R.dequantize`` and ``R.quantize``.  Running that float graph is not
bit-exact with TFLite Micro, so this pass recognises each quantized operator
pattern and replaces it with a call to an integer kernel of ``src/`` whose
parameters (per-channel multiplier and shift, offsets, activation range) are
derived from the scales exactly as TFLM's Prepare derives them.

The patterns live in the package :mod:`.lowering`, one module per operator
family; this module keeps the pass importable where it always was.
"""
from .lowering import LowerToIntegerKernels, LoweringDriver

__all__ = ["LowerToIntegerKernels", "LoweringDriver"]
