"""Re-export of :mod:`tinyengine_tvm.kernel_call` for the passes of this package."""
from ..kernel_call import KERNEL_PREFIX, KernelCall, make_kernel_call, parse_kernel_call

__all__ = ["KERNEL_PREFIX", "KernelCall", "make_kernel_call", "parse_kernel_call"]
