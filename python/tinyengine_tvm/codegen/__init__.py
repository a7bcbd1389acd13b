"""Ahead-of-time C generation from a planned KernelGraph."""
from ..kernels import KERNELS, kernel_dir, kernel_sources_for
from .c_writer import CWriter

__all__ = ["CWriter", "KERNELS", "kernel_dir", "kernel_sources_for"]
