"""tvm.transform passes of tinyengine-tvm, usable in any TVM pipeline."""
from .integer_lowering import LowerToIntegerKernels
from .kernel_call import KernelCall, make_kernel_call, parse_kernel_call

__all__ = ["LowerToIntegerKernels", "KernelCall", "make_kernel_call", "parse_kernel_call"]
