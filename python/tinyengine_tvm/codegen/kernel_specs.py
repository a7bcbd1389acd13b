"""Deprecated location of the kernel registry: it lives in :mod:`tinyengine_tvm.kernels`.

Kept as a re-export only for transform/patch_inference.py (being rewritten);
new code imports ``tinyengine_tvm.kernels``.
"""
from ..kernels import (COMMON_SOURCES, FUNCTIONS, KERNELS, SOURCE_HEADERS, STRUCTS, CFunction, KernelSpec,  # noqa: F401
                       buffer_size_function, c_function)
