"""tvm.transform passes of tinyengine-tvm, usable in any TVM pipeline.

``LowerToIntegerKernels`` turns an imported QDQ model into int8 kernel calls;
the others rewrite every lowered function of a module to need less memory (see
``pipeline`` for the default order and the PassContext options), appending
their report to the function's ``tinyengine.pass_reports`` attribute.
"""
from .fold_pad import FoldPadIntoConv
from .inplace_depthwise import InplaceDepthwise
from .inplace_elementwise import InplaceElementwise
from .integer_lowering import LowerToIntegerKernels
from .kernel_call import KernelCall, make_kernel_call, parse_kernel_call
from .memory_schedule import MemoryAwareSchedule
from .patch_inference import PatchBasedInference
from .pipeline import attach_options, list_configs, optimization_passes, pass_context
from .relax_utils import pass_reports
from .slice_views import SliceViews

__all__ = [
    "LowerToIntegerKernels", "FoldPadIntoConv", "PatchBasedInference", "InplaceDepthwise",
    "InplaceElementwise", "MemoryAwareSchedule", "SliceViews", "optimization_passes", "pass_context",
    "attach_options", "list_configs", "pass_reports",
    "KernelCall", "make_kernel_call", "parse_kernel_call",
]
