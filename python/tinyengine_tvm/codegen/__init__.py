"""Ahead-of-time C generation from a planned KernelGraph."""
from .c_writer import CWriter
from .kernel_specs import KERNELS
from .sources import kernel_dir, kernel_sources_for

__all__ = ["CWriter", "KERNELS", "kernel_dir", "kernel_sources_for"]
