"""Running compiled projects: one :class:`Runner` interface over this host (gcc +
ctypes), QEMU (semihosting, or the benchmark protocol over its UART) and a
board on a serial port; see ``runner.py`` for the layout."""
from .host import HostModel, HostRunner, build_host_library, load_npz_inputs
from .qemu import QemuModel, build_firmware, run_on_qemu
from .opener import open_runner
from .runner import Runner

__all__ = ["HostModel", "HostRunner", "build_host_library", "load_npz_inputs", "QemuModel", "build_firmware",
           "run_on_qemu", "Runner", "open_runner"]
