"""Running generated projects: on this host (gcc + ctypes)."""
from .host import HostModel, build_host_library, load_npz_inputs

__all__ = ["HostModel", "build_host_library", "load_npz_inputs"]
