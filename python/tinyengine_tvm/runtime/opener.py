"""``open_runner``: the :class:`~.runner.Runner` of a device (see ``runner.py`` for the table).

Apart from ``runner.py`` because it imports every implementation, each of which
imports ``runner.py``.
"""
from __future__ import annotations

from typing import Optional

from ..errors import UsageError
from .runner import DEVICES, FIRMWARES, QEMU_LINKS, Runner


def open_runner(project_dir: str, device: str = "host", *, build_dir: Optional[str] = None,
                board: str = "mps2-an500", qemu_link: str = "tcp", port: Optional[str] = None, baud: int = 115200,
                timeout: float = 60.0, link_timeout: float = 10.0, firmware: str = "baremetal",
                zephyr_workspace: Optional[str] = None, profile: bool = False) -> Runner:
    """Open the runner of ``device`` (host, qemu or serial) on a compiled project.

    ``build_dir``: where builds go (default: inside the project). ``board``:
    the emulated board (qemu). ``qemu_link``: ``tcp`` or ``pty`` (the benchmark
    protocol over QEMU's UART) or ``semihosting`` (file I/O, one inference
    per emulator run). ``port``/``baud``: the board's serial port (serial).
    ``timeout``: seconds before a hung emulator is stopped (semihosting) or
    the firmware must have booted (UART, at least 5 s). ``link_timeout``:
    seconds without an answer before a request is sent again (qemu UART, serial).
    ``firmware`` (qemu): ``baremetal`` (the project's own firmware) or
    ``zephyr`` (the Zephyr application of ``tvmc micro create-project``, built
    in ``zephyr_workspace`` or $ZEPHYR_BASE and cached; see micro/zephyr_qemu.py).
    ``profile``: a profile build, every step timed (the runner's ``profile()``);
    on a serial board the flashed firmware must be one (project option profile=true).
    """
    if device not in DEVICES:
        raise UsageError(f"unknown device '{device}'; use one of {', '.join(DEVICES)}")
    if device == "host":
        from .host import HostRunner

        return HostRunner(project_dir, build_dir, profile=profile)
    if device == "serial":
        if not port:
            raise UsageError("--device=serial needs --port (the board's serial port, e.g. /dev/ttyACM0)")
        from .device import SerialRunner

        return SerialRunner(project_dir, port, baud, link_timeout=link_timeout)
    if qemu_link not in QEMU_LINKS:
        raise UsageError(f"unknown QEMU link '{qemu_link}'; use one of {', '.join(QEMU_LINKS)}")
    if firmware not in FIRMWARES:
        raise UsageError(f"unknown firmware '{firmware}'; use one of {', '.join(FIRMWARES)}")
    if firmware == "zephyr":
        if qemu_link == "semihosting":
            raise UsageError("--firmware=zephyr talks over QEMU's UART: --qemu-link pty or tcp, not semihosting")
        # micro/ builds on runtime/; imported here only, where the Zephyr app is needed.
        from ..micro.zephyr_qemu import ZephyrQemuRunner

        return ZephyrQemuRunner(project_dir, board, workspace=zephyr_workspace, link=qemu_link,
                                link_timeout=link_timeout, boot_timeout=max(5.0, timeout), profile=profile)
    if qemu_link == "semihosting":
        if profile:
            raise UsageError("--profile reads the step counters over the benchmark protocol: --qemu-link tcp or "
                             "pty, not semihosting")
        from .qemu import QemuModel

        return QemuModel(project_dir, board, build_dir, timeout)
    from .device import QemuUartRunner

    return QemuUartRunner(project_dir, board, build_dir, link=qemu_link, link_timeout=link_timeout,
                          boot_timeout=max(5.0, timeout), profile=profile)
