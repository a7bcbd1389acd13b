"""Running generated projects: on this host (gcc + ctypes) or on an emulated Cortex-M (QEMU)."""
from .host import HostModel, build_host_library, load_npz_inputs
from .qemu import QemuModel, build_firmware, run_on_qemu

__all__ = ["HostModel", "build_host_library", "load_npz_inputs", "QemuModel", "build_firmware", "run_on_qemu"]
