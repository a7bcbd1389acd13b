"""The kernels' ABI: the one Python home of every kernel of src/.

A leaf package (numpy, the standard library and ``tinyengine_tvm.errors``
only; ``tests/test_package_imports.py`` checks it), read by the planner, the
passes, KernelGraph, kernel selection and the C writer:

==================  ===========================================================
``header``          reads tinyengine_kernels.h (structs, prototypes, tags)
                    and finds src/ (kernel_dir)
``abi``             STRUCTS / FUNCTIONS / SOURCES: the header as read
``spec``            KernelSpec: C call, parameter struct, scratch, MACs, in place
``portable``        the portable kernels: every ``@op`` function of the header,
                    and the compiler's variants of them
``arm``             the Cortex-M kernels (src/kernels/arm/) and their layouts
``arm_packing``     packing of the Cortex-M kernels' constants
``registry``        KERNELS and the lookups (scratch_bytes, state_bytes, macs, ...)
``training``        TRAINING_KERNELS: the backward and update kernels (te_training.cc)
``sources``         which files of src/ a model needs
==================  ===========================================================
"""
from .abi import FUNCTIONS, STRUCTS, CDecl, CFunction
from .registry import (KERNELS, buffer_size_function, c_function, inplace_kernels, is_inplace, macs, op_type,
                       scratch_bytes, spec, state_bytes, steps_scratch, steps_state)
from .header import kernel_dir
from .sources import COMMON_SOURCES, SOURCE_HEADERS, kernel_sources_for
from .spec import KernelSpec
from .training import TRAINING_KERNELS

__all__ = ["CDecl", "CFunction", "COMMON_SOURCES", "FUNCTIONS", "KERNELS", "KernelSpec", "SOURCE_HEADERS",
           "STRUCTS", "TRAINING_KERNELS", "buffer_size_function", "c_function", "inplace_kernels", "is_inplace", "kernel_dir",
           "kernel_sources_for", "macs", "op_type", "scratch_bytes", "spec", "state_bytes", "steps_scratch",
           "steps_state"]
