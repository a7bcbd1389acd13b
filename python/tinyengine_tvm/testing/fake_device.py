"""A device speaking the tinyengine benchmark protocol, in Python.

For testing hosts without a board or QEMU: it follows
``firmware/src/te_protocol.c`` (frames, errors, the RUN/WRITE_INPUT/READ_OUTPUT
rules, BOOT/FAULT/PROGRESS messages) around a Python function standing in for
the model, and can misbehave on request (reset, crash or hang on a given RUN).

    dev = FakeDevice(meta, model=lambda inputs: {...})
    client = DeviceClient(dev.host_transport())
    ...
    dev.close()
"""
from __future__ import annotations

import socket
import struct
import threading
import time
import zlib
from typing import Callable, Dict, List, Optional

import numpy as np

from ..runtime import protocol as proto
from ..runtime.transport import SocketTransport, Transport

_DT = {"int8": 1, "uint8": 2, "int16": 3, "int32": 4, "float32": 5}


class FakeDevice:
    """The device end of a socket pair, served by a thread. ``reset_on_run``,
    ``fault_on_run``, ``hang_on_run``: a RUN number (1 = the first) or a set
    of them on which the device resets, crashes (FAULT then BOOT) or stops
    answering."""

    def __init__(self, meta: dict, model: Callable[[Dict[str, np.ndarray]], Dict[str, np.ndarray]], *,
                 max_payload: int = 256, cycles_per_inference: int = 1000, counter_hz: int = 100_000_000,
                 reset_on_run=None, fault_on_run=None, hang_on_run=None, byte_timeout: float = 0.2,
                 boot: bool = True,
                 board: str = "fake", platform: str = "python"):
        self.meta, self.model = meta, model
        self.max_payload = max_payload
        self.cycles = cycles_per_inference
        self.counter_hz = counter_hz
        self.reset_on_run, self.fault_on_run, self.hang_on_run = reset_on_run, fault_on_run, hang_on_run
        self.byte_timeout = byte_timeout
        self.board, self.platform = board, platform
        self.runs = 0
        self.received_frames = 0
        self.host_sock, self.dev_sock = socket.socketpair()
        self._stop = threading.Event()
        self._reset_state()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()
        if boot:
            self._send(proto.MSG_BOOT, 0, self._hello())

    # ---- plumbing
    def host_transport(self) -> Transport:
        return SocketTransport(self.host_sock, "fake device")

    def close(self) -> None:
        self._stop.set()
        for s in (self.dev_sock, self.host_sock):
            try:
                s.close()
            except OSError:
                pass
        self._thread.join(timeout=2)

    def _reset_state(self) -> None:
        self.staging = [bytearray(self._nbytes(d)) for d in self.meta["inputs"]]
        self.loaded = [0] * len(self.meta["inputs"])
        self.outputs: Optional[List[bytes]] = None
        self.last: Optional[bytes] = None

    @staticmethod
    def _nbytes(d: dict) -> int:
        return int(np.prod(d["shape"])) * np.dtype(d["dtype"]).itemsize

    def _send(self, cmd: int, seq: int, payload: bytes = b"") -> None:
        try:
            self.dev_sock.sendall(proto.encode_frame(cmd, seq, payload))
        except OSError:
            pass

    def _error(self, seq: int, cmd: int, code: int, text: str) -> None:
        self._send(proto.RSP_ERROR, seq, bytes([code, cmd]) + text.encode())

    def _hello(self) -> bytes:
        p = struct.pack("<BBHIBBBBII", 1, proto.UNIT_CYCLES, self.max_payload, self.counter_hz, 0,
                        len(self.meta["inputs"]), len(self.meta["outputs"]), 1, self.meta["memory"]["arena_bytes"],
                        4096)
        for s in (self.meta["model"], self.board, self.platform):
            b = s.encode()[:63]
            p += bytes([len(b)]) + b
        return p

    # ---- the receive loop
    def _serve(self) -> None:
        dec = proto.FrameDecoder(self.max_payload)
        try:
            self.dev_sock.settimeout(0.05)
        except OSError:
            return
        last_byte = time.monotonic()
        while not self._stop.is_set():
            try:
                data = self.dev_sock.recv(4096)
            except socket.timeout:
                if dec.partial() and time.monotonic() - last_byte > self.byte_timeout:
                    head = bytes(dec.buf[2:7])
                    dec.buf.clear()
                    self._error(head[3], head[2], proto.ERR_TIMEOUT, "frame incomplete")
                continue
            except OSError:
                return
            if not data:
                return
            last_byte = time.monotonic()
            for f in dec.feed(data):
                if not f.ok:
                    self._error(f.seq, f.cmd, proto.ERR_CRC, "CRC mismatch")
                    continue
                self.received_frames += 1
                self._handle(f.cmd, f.seq, f.payload)

    def _hit(self, spec) -> bool:
        if spec is None:
            return False
        return self.runs == spec if isinstance(spec, int) else self.runs in spec

    def _handle(self, cmd: int, seq: int, p: bytes) -> None:
        rsp = cmd | proto.RSP
        m = self.meta
        if cmd == proto.CMD_HELLO:
            self._send(rsp, seq, self._hello())
        elif cmd == proto.CMD_ECHO:
            self._send(rsp, seq, p)
        elif cmd == proto.CMD_TENSOR:
            kind, index = p[0], p[1]
            descs = m["inputs"] if kind == 0 else m["outputs"]
            if index >= len(descs):
                return self._error(seq, cmd, proto.ERR_ARG, "no such tensor")
            d = descs[index]
            q = d.get("scale") is not None
            out = struct.pack("<BBBBIfiB", kind, index, _DT[d["dtype"]], len(d["shape"]), self._nbytes(d),
                              d["scale"] if q else 0.0, int(d["zero_point"]) if q else 0, 1 if q else 0)
            out += struct.pack(f"<{len(d['shape'])}i", *d["shape"])
            name = d["name"].encode()[:63]
            self._send(rsp, seq, out + bytes([len(name)]) + name)
        elif cmd == proto.CMD_WRITE_INPUT:
            index, off = struct.unpack_from("<BI", p)
            data = p[5:]
            if index >= len(self.staging):
                return self._error(seq, cmd, proto.ERR_ARG, "no such input")
            if off == 0:
                self.loaded[index] = 0
            if off > self.loaded[index] or off + len(data) > len(self.staging[index]):
                return self._error(seq, cmd, proto.ERR_ARG, "write outside the input or after a gap")
            self.staging[index][off:off + len(data)] = data
            self.loaded[index] = max(self.loaded[index], off + len(data))
            self._send(rsp, seq, struct.pack("<BII", index, off, self.loaded[index]))
        elif cmd == proto.CMD_RUN:
            count, crc, flags = struct.unpack_from("<IIB", p)
            if any(l != len(s) for l, s in zip(self.loaded, self.staging)):
                return self._error(seq, cmd, proto.ERR_NOT_READY, "input not completely written since reset")
            if zlib.crc32(b"".join(self.staging)) != crc:
                return self._error(seq, cmd, proto.ERR_INPUT_CRC, "inputs on the device differ from the host's")
            self.runs += 1
            if self._hit(self.reset_on_run):
                self._reset_state()
                return self._send(proto.MSG_BOOT, 0, self._hello())
            if self._hit(self.fault_on_run):
                self._reset_state()
                self._send(proto.MSG_FAULT, 0, struct.pack("<I", 3) + b"fake fault")
                return self._send(proto.MSG_BOOT, 0, self._hello())
            if self._hit(self.hang_on_run):
                self._stop.wait()
                return
            inputs = {d["name"]: np.frombuffer(bytes(s), d["dtype"]).reshape(d["shape"])
                      for d, s in zip(m["inputs"], self.staging)}
            outs = self.model(inputs)
            self.outputs = [np.ascontiguousarray(outs[d["name"]], d["dtype"]).tobytes() for d in m["outputs"]]
            for k in range(1, count):
                if flags & proto.RUN_FLAG_PROGRESS:
                    self._send(proto.MSG_PROGRESS, seq, struct.pack("<I", k))
            total = self.cycles * count
            self.last = struct.pack("<IIQQQQIIB", count, zlib.crc32(b"".join(self.outputs)), total, self.cycles,
                                    self.cycles, self.cycles, 256, 4096, proto.UNIT_CYCLES)
            self._send(rsp, seq, self.last)
        elif cmd == proto.CMD_TIMINGS:
            if self.last is None:
                return self._error(seq, cmd, proto.ERR_NOT_READY, "no run since reset")
            self._send(rsp, seq, self.last)
        elif cmd == proto.CMD_READ_OUTPUT:
            index, off, n = struct.unpack_from("<BIH", p)
            if self.outputs is None:
                return self._error(seq, cmd, proto.ERR_NOT_READY, "no run since reset")
            blob = self.outputs[index]
            n = min(n, len(blob) - off, self.max_payload - 5)
            self._send(rsp, seq, struct.pack("<BI", index, off) + blob[off:off + n])
        elif cmd == proto.CMD_RESET:
            self._send(rsp, seq)
            self._reset_state()
            self._send(proto.MSG_BOOT, 0, self._hello())
        else:
            self._error(seq, cmd, proto.ERR_UNKNOWN, "unknown command")
