"""tvm.transform passes of tinyengine-tvm, usable in any TVM pipeline.

``LowerToIntegerKernels`` turns an imported QDQ model into int8 kernel calls;
the others rewrite a lowered module to need less memory (see ``pipeline`` for
the default order).
"""
from .fold_pad import FoldPadIntoConv
from .inplace_depthwise import InplaceDepthwise
from .inplace_elementwise import InplaceElementwise
from .integer_lowering import LowerToIntegerKernels
from .kernel_call import KernelCall, make_kernel_call, parse_kernel_call
from .memory_schedule import MemoryAwareSchedule
from .patch_inference import PatchBasedInference
from .pipeline import optimization_passes

__all__ = [
    "LowerToIntegerKernels", "FoldPadIntoConv", "PatchBasedInference", "InplaceDepthwise",
    "InplaceElementwise", "MemoryAwareSchedule", "optimization_passes",
    "KernelCall", "make_kernel_call", "parse_kernel_call",
]
