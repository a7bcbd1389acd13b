"""QEMU processes: the command line for an emulated board, its exit statuses
and faults explained, and an emulator whose UART is a benchmark link.

The semihosting runner (``runtime/qemu.py``) runs QEMU once per inference with
files for I/O; :class:`QemuSerial` keeps QEMU running the benchmark-server
firmware (``micro/baremetal.py``) and connects its UART (serial 0) to the
host as a :class:`~tinyengine_tvm.runtime.client.Link`:

    with QemuSerial(elf, "mps2-an500") as q:
        model = DeviceModel(q.client, meta)
"""
from __future__ import annotations

import os
import re
import select
import socket
import subprocess
import threading
import time
from typing import Callable, List, Optional, Union

from ..errors import TinyEngineError
from ..targets.boards import Board, get_board
from .client import Link
from .firmware import ICOUNT_SHIFT, qemu_binary, require_tools
from .protocol import LinkError, LinkTimeout
from .transport import SerialTransport, SocketTransport, Transport

#: QEMU exit statuses of the firmware (firmware/include/te_firmware.h).
EXIT_STATUSES = {
    2: "an input/output file could not be opened",
    3: "an input file has the wrong size",
    4: "writing an output file failed",
    5: "the model's run function returned an error",
    6: "stack overflow (the stack's guard words were overwritten)",
    97: "HardFault",
    98: "MemManage fault",
    99: "BusFault",
    100: "UsageFault",
    101: "NMI",
    102: "unexpected interrupt",
    103: "SecureFault",
}

#: Configurable Fault Status Register bits (ARMv7-M/ARMv8-M), for readable fault messages.
CFSR_BITS = {
    0: "IACCVIOL: instruction fetch from a protected/non-executable address",
    1: "DACCVIOL: data access violation",
    3: "MUNSTKERR: fault unstacking an exception return",
    4: "MSTKERR: fault stacking an exception entry (stack overflow?)",
    8: "IBUSERR: bus error on instruction fetch",
    9: "PRECISERR: precise data bus error",
    10: "IMPRECISERR: imprecise data bus error",
    11: "UNSTKERR: bus error unstacking an exception return",
    12: "STKERR: bus error stacking an exception entry (stack overflow?)",
    16: "UNDEFINSTR: undefined instruction",
    17: "INVSTATE: invalid execution state (corrupted return address? stack overflow?)",
    18: "INVPC: invalid exception return",
    19: "NOCP: coprocessor/FPU access while disabled",
    20: "STKOF: stack overflow (SP went below MSPLIM)",
    24: "UNALIGNED: unaligned access trap",
    25: "DIVBYZERO: integer division by zero",
}


def emulated_board(board: Union[str, Board]) -> Board:
    """The board, refused with a hint when QEMU cannot emulate it."""
    b = get_board(board)
    if not b.emulated:
        from ..targets.boards import qemu_board_for

        raise TinyEngineError(f"board {b.name} cannot be emulated by QEMU; run its core ({b.core}) on "
                              f"{qemu_board_for(b).name} (QEMU boards: mps2-an386 = Cortex-M4, "
                              f"mps2-an500 = M7, mps3-an547 = M55)")
    return b


def qemu_command(elf: str, board: Union[str, Board]) -> List[str]:
    """The qemu-system-arm command line that runs ``elf`` on ``board`` (UART
    unconnected, semihosting on, ``-icount shift=6``)."""
    b = emulated_board(board)
    return [qemu_binary(), "-M", b.qemu_machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}",
            "-kernel", os.path.abspath(elf)]


def explain_fault(text: str) -> str:
    """Readable lines for the CFSR bits of a ``tinyengine-fault:`` line in
    QEMU's output ('' when there is none)."""
    m = re.search(r"tinyengine-fault: .*cfsr=0x([0-9a-f]+)", text)
    if not m:
        return ""
    cfsr = int(m.group(1), 16)
    lines = [f"  {desc}" for bit, desc in CFSR_BITS.items() if cfsr >> bit & 1]
    if "outside the stack" in text:
        lines.append("  the stacked SP is outside the stack region: stack overflow (raise stack_bytes)")
    return ("\n" + "\n".join(lines)) if lines else ""


def exit_cause(returncode: int, text: str) -> str:
    """What a non-zero QEMU exit status means, given QEMU's output."""
    if "Lockup" in text:
        return "CPU lockup: a fault while handling a fault, typically a stack overflow"
    return EXIT_STATUSES.get(returncode, "QEMU or firmware failure")


def exit_detail(text: str) -> str:
    """The firmware's and QEMU's own lines of ``text`` (or its tail) and the fault explained."""
    lines = "\n".join(l for l in text.splitlines() if l.startswith(("tinyengine-", "qemu"))) or text[-2000:]
    return lines + explain_fault(text)


class QemuSerial(Link):
    """QEMU running a serial-firmware ELF, its UART (serial 0) connected to
    the host through a loopback TCP socket (``link="tcp"``: QEMU connects to
    a socket listening on 127.0.0.1 only) or a pseudo-terminal opened with
    pyserial like a real board's port (``link="pty"``; its path is :attr:`pty`).
    ``expect_boot``: wait for the te_protocol BOOT frame (False for the MLPerf
    firmware, whose protocol is text); ``wrap``: a transport wrapper applied
    after boot (the tests' fault injection); ``command``: another QEMU command
    line with a ``-serial`` option to connect (e.g. for Zephyr's firmware:
    ``micro/zephyr_qemu.py``), instead of :func:`qemu_command`'s."""

    def __init__(self, elf: str, board: Union[str, Board] = "mps2-an500", *, link: str = "tcp",
                 timeout: float = 5.0, retries: int = 4, boot_timeout: float = 20.0, expect_boot: bool = True,
                 wrap: Optional[Callable[[Transport], Transport]] = None, command: Optional[List[str]] = None):
        require_tools(qemu=True)
        self.output: List[str] = []
        self._server: Optional[socket.socket] = None
        if command is None:
            self.board: Optional[Board] = emulated_board(board)
            cmd = qemu_command(elf, self.board)
        else:
            self.board, cmd = None, list(command)
        i = cmd.index("-serial")
        if link == "tcp":
            self._server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._server.bind(("127.0.0.1", 0))
            self._server.listen(1)
            port = self._server.getsockname()[1]
            cmd[i + 1] = f"tcp:127.0.0.1:{port},nodelay=on"
        elif link == "pty":
            cmd[i + 1] = "pty"
        else:
            raise TinyEngineError(f"unknown QEMU link '{link}': tcp or pty")
        self.command = cmd
        self.proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self.pty: Optional[str] = None
        self._pty_ready = threading.Event()
        self._reader = threading.Thread(target=self._collect, daemon=True)
        self._reader.start()
        try:
            transport = self._connect(link, boot_timeout)
            transport.gone_reason = self.explain  # type: ignore[method-assign]
            super().__init__(transport, timeout, retries)
            # QEMU discards what the guest writes to a pty nobody has opened yet,
            # so over a pty the BOOT frame can be lost: then HELLO checks the
            # firmware instead (it raises LinkTimeout on silence).
            boot_wait = boot_timeout if link == "tcp" else min(boot_timeout, 3.0)
            if expect_boot and self.client.wait_boot(boot_wait) is None:
                if link != "pty":
                    raise LinkTimeout(f"the firmware did not announce itself within {boot_timeout:g} s"
                                      + (f"\n{self.explain()}" if self.explain() else ""))
                self.client.hello()
            if wrap is not None:  # after the boot frame, so only the requests see it
                self.transport = self.client.transport = wrap(transport)
        except BaseException:
            self._stop()
            raise

    def _collect(self) -> None:
        """Keep QEMU's output (for errors) and find the pty it opened."""
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            m = re.search(r"char device redirected to (\S+)", line)
            if m:
                self.pty = m.group(1)
                self._pty_ready.set()
        self._pty_ready.set()

    def _connect(self, link: str, timeout: float) -> Transport:
        deadline = time.monotonic() + timeout
        if link == "tcp":
            assert self._server is not None
            while True:
                r, _, _ = select.select([self._server], [], [], 0.1)
                if r:
                    conn, _ = self._server.accept()
                    self._server.close()
                    self._server = None
                    return SocketTransport(conn, "QEMU UART (tcp 127.0.0.1)")
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise LinkError(f"QEMU did not connect its UART:\n{self.explain() or ''.join(self.output)}")
        self._pty_ready.wait(timeout)
        if not self.pty:
            raise LinkError(f"QEMU did not open a pty:\n{''.join(self.output)}")
        t = SerialTransport(self.pty, 115200)
        t.name = f"QEMU UART ({self.pty})"
        return t

    def explain(self) -> str:
        """QEMU's exit status and fault lines, when it has exited ('' while it runs)."""
        if self.proc.poll() is None:
            time.sleep(0.2)  # a crashing guest may be a moment from ending QEMU
            if self.proc.poll() is None:
                return ""
        self._reader.join(timeout=2)
        rc = self.proc.returncode
        text = "".join(self.output)
        detail = exit_detail(text)
        return f"QEMU exited with status {rc} ({exit_cause(rc, text)})" + (f":\n{detail}" if detail else "")

    def _stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self._server is not None:
            self._server.close()
            self._server = None
        self._reader.join(timeout=2)

    def close(self) -> None:
        """Close the link and stop QEMU."""
        try:
            if hasattr(self, "client"):
                self.client.close()
        finally:
            self._stop()
