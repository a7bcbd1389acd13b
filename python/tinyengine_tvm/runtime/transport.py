"""Byte pipes to a device: a TCP socket (QEMU's UART) and a serial port
through pyserial (a board's USB virtual COM port, or QEMU's UART as a pty),
or any of pyserial's URLs (``socket://HOST:PORT`` for a network serial
bridge such as ser2net or QEMU's TCP serial, ``rfc2217://HOST:PORT``).

A transport only moves bytes; framing is ``protocol.py``, requests and
resends are ``client.py``. Test doubles that damage the bytes are
``tinyengine_tvm.testing.faults``.
"""
from __future__ import annotations

import select
import socket

from ..errors import TinyEngineError
from .protocol import DeviceGone, LinkError


class Transport:
    """A byte pipe to the device. ``read`` returns what arrived within
    ``timeout`` seconds (b"" if nothing) and raises DeviceGone when closed."""

    name = "link"

    def read(self, timeout: float) -> bytes:  # pragma: no cover - interface
        raise NotImplementedError

    def write(self, data: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def close(self) -> None:
        pass

    def gone_reason(self) -> str:
        """Why the device is gone (QEMU's exit status, ...), or ''."""
        return ""


class SocketTransport(Transport):
    """A connected TCP socket (QEMU's ``-serial tcp:...``)."""

    def __init__(self, sock: socket.socket, name: str = "tcp"):
        self.sock = sock
        self.name = name
        if sock.family in (socket.AF_INET, socket.AF_INET6):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def read(self, timeout: float) -> bytes:
        r, _, _ = select.select([self.sock], [], [], max(0.0, timeout))
        if not r:
            return b""
        try:
            data = self.sock.recv(65536)
        except OSError as exc:
            raise DeviceGone(f"{self.name}: {exc}") from None
        if not data:
            raise DeviceGone(f"{self.name}: connection closed by the device")
        return data

    def write(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise DeviceGone(f"{self.name}: {exc}") from None

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


class SerialTransport(Transport):
    """A serial port through pyserial: a device path (a board's USB virtual COM
    port, a pty) or a pyserial URL (``socket://HOST:PORT``, ``rfc2217://HOST:PORT``,
    ...: a board behind a network serial bridge, or QEMU's TCP serial)."""

    def __init__(self, port: str, baud: int = 115200):
        try:
            import serial  # pyserial
        except ImportError:  # pragma: no cover - pyserial is a dependency
            raise TinyEngineError("--device=serial needs pyserial: pip install pyserial") from None
        self._serial_mod = serial
        try:
            # serial_for_url opens a plain device path as serial.Serial would, and URLs through their handlers.
            self.ser = serial.serial_for_url(port, baudrate=baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise LinkError(f"cannot open serial port {port}: {exc}") from None
        self.name = f"{port} @ {baud} baud" if not is_url(port) else port

    def read(self, timeout: float) -> bytes:
        s = self._serial_mod
        try:
            self.ser.timeout = max(0.0, timeout)
            first = self.ser.read(1)
            if not first:
                return b""
            self.ser.timeout = 0
            return first + self.ser.read(65536)
        except (s.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.name}: {exc}") from None

    def write(self, data: bytes) -> None:
        s = self._serial_mod
        try:
            self.ser.write(data)
            self.ser.flush()
        except (s.SerialException, OSError) as exc:
            raise DeviceGone(f"{self.name}: {exc}") from None

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:
            pass


def is_url(port: str) -> bool:
    """Whether ``port`` is one of pyserial's URLs (``scheme://...``) rather than a device path."""
    return "://" in port
