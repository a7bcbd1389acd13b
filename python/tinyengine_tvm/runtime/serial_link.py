"""Benchmarking over a serial link: the host side of the tinyengine-tvm protocol.

The device side is ``firmware/src/te_protocol.c``, shared by the Zephyr
application (a real board's UART) and the bare-metal firmware (QEMU's
emulated CMSDK UART); ``docs/serial_protocol.md`` is the specification.

Frames are ``A5 5A | LEN u16 | CMD | SEQ | HCRC (CRC-8 of LEN..SEQ) |
PAYLOAD | CRC32`` (little-endian; CRC32 = zlib.crc32 of LEN..PAYLOAD).
Every request carries a fresh sequence number and is answered with
``CMD | 0x80`` and the same number (or an error frame); stale or damaged
frames are skipped, damaged requests answered with an error are sent again,
and a request that gets no valid answer within ``timeout`` is sent again
after a flush of the device's receiver, up to ``retries`` times. A device
that resets announces itself with a BOOT frame (``DeviceReset``); one that
crashes sends FAULT (``DeviceFault``) or, under QEMU, ends the emulator
(``DeviceGone``, with the exit status explained). Results are checked end to
end: the device verifies the CRC32 of the inputs it runs on, the host the
CRC32 of the outputs it read back, so a damaged link gives an error, never a
wrong result.

    from tinyengine_tvm.runtime.serial_link import open_serial, DeviceModel
    with open_serial("/dev/ttyACM0", 115200) as link:
        model = DeviceModel(link, meta)          # meta: metadata.json of the project
        outputs, report = model.run({"input": x}, number=10, repeat=3)

    from tinyengine_tvm.runtime.serial_link import QemuSerial
    with QemuSerial(elf, "mps2-an500") as q:     # firmware from micro.baremetal
        model = DeviceModel(q.client, meta)
"""
from __future__ import annotations

import random
import re
import select
import socket
import statistics
import struct
import subprocess
import threading
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import TinyEngineError

SYNC = b"\xa5\x5a"
HEADER_BYTES = 7
OVERHEAD = 11
MAX_FRAME_PAYLOAD = 65535

CMD_HELLO, CMD_TENSOR, CMD_WRITE_INPUT, CMD_RUN = 0x01, 0x02, 0x03, 0x04
CMD_READ_OUTPUT, CMD_TIMINGS, CMD_ECHO, CMD_RESET = 0x05, 0x06, 0x07, 0x08
RSP = 0x80
MSG_FAULT, MSG_PROGRESS, MSG_BOOT, RSP_ERROR = 0x7C, 0x7D, 0x7E, 0xFF
RUN_FLAG_PROGRESS = 0x01

COMMAND_NAMES = {CMD_HELLO: "HELLO", CMD_TENSOR: "TENSOR", CMD_WRITE_INPUT: "WRITE_INPUT", CMD_RUN: "RUN",
                 CMD_READ_OUTPUT: "READ_OUTPUT", CMD_TIMINGS: "TIMINGS", CMD_ECHO: "ECHO", CMD_RESET: "RESET"}
ERR_CRC, ERR_LENGTH, ERR_UNKNOWN, ERR_ARG, ERR_NOT_READY = 1, 2, 3, 4, 5
ERR_INPUT_CRC, ERR_RUN, ERR_STACK, ERR_TIMEOUT = 6, 7, 8, 9
ERROR_NAMES = {ERR_CRC: "CRC error", ERR_LENGTH: "bad length", ERR_UNKNOWN: "unknown command",
               ERR_ARG: "bad argument", ERR_NOT_READY: "not ready", ERR_INPUT_CRC: "input CRC mismatch",
               ERR_RUN: "inference failed", ERR_STACK: "stack overflow", ERR_TIMEOUT: "frame timeout"}
#: Errors caused by the link, not the request: the request is sent again.
LINK_ERRORS = (ERR_CRC, ERR_TIMEOUT, ERR_LENGTH)
UNIT_INSTRUCTIONS, UNIT_CYCLES = 1, 2
UNIT_NAMES = {UNIT_INSTRUCTIONS: "instructions", UNIT_CYCLES: "cycles"}
DTYPES = {1: "int8", 2: "uint8", 3: "int16", 4: "int32", 5: "float32"}


# --------------------------------------------------------------------------- errors
class LinkError(TinyEngineError):
    """The serial link failed: no answer, damaged beyond retries, device gone."""


class LinkTimeout(LinkError):
    """No valid answer in time."""


class DeviceGone(LinkError):
    """The port closed (QEMU exited, the board was unplugged)."""


class DeviceReset(LinkError):
    """The device rebooted (a BOOT frame arrived): its inputs and results are lost."""


class DeviceFault(LinkError):
    """The device reported a crash (FAULT frame) before resetting."""


class DeviceError(LinkError):
    """The device answered with an error frame."""

    def __init__(self, code: int, cmd: int, message: str):
        self.code, self.cmd, self.message = code, cmd, message
        super().__init__(f"device error on {COMMAND_NAMES.get(cmd, hex(cmd))}: "
                         f"{ERROR_NAMES.get(code, f'code {code}')}: {message}")


# --------------------------------------------------------------------------- frames
def crc8(data: bytes) -> int:
    """CRC-8, polynomial 0x07, initial value 0 (the header check)."""
    crc = 0
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = ((crc << 1) ^ 0x07) & 0xFF if crc & 0x80 else (crc << 1) & 0xFF
    return crc


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    head = struct.pack("<HBB", len(payload), cmd & 0xFF, seq & 0xFF)
    body = head + bytes([crc8(head)]) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


@dataclass
class Frame:
    cmd: int
    seq: int
    payload: bytes
    ok: bool = True  #: False: the header was valid but the CRC32 was not (a damaged frame)


class FrameDecoder:
    """Frames out of a byte stream with garbage, lost and damaged bytes.

    ``feed`` returns the complete frames found; a frame whose header is valid
    but whose CRC32 is not is returned with ``ok=False`` (so the client can
    resend at once) and the search goes on one byte after its sync."""

    def __init__(self, max_payload: int = MAX_FRAME_PAYLOAD):
        self.buf = bytearray()
        self.max_payload = max_payload
        self.garbage_bytes = 0
        self.bad_frames = 0

    def partial(self) -> bool:
        """True while the buffer starts with a valid header whose frame is incomplete."""
        if len(self.buf) < HEADER_BYTES or self.buf[:2] != SYNC:
            return False
        head = bytes(self.buf[2:6])
        return crc8(head) == self.buf[6] and (head[0] | head[1] << 8) <= self.max_payload

    def feed(self, data: bytes) -> List[Frame]:
        self.buf += data
        out: List[Frame] = []
        while True:
            i = self.buf.find(SYNC)
            if i < 0:
                keep = 1 if self.buf[-1:] == SYNC[:1] else 0
                self.garbage_bytes += len(self.buf) - keep
                del self.buf[:len(self.buf) - keep]
                return out
            if i:
                self.garbage_bytes += i
                del self.buf[:i]
            if len(self.buf) < HEADER_BYTES:
                return out
            head = bytes(self.buf[2:6])
            length = head[0] | head[1] << 8
            if crc8(head) != self.buf[6] or length > self.max_payload:
                self.garbage_bytes += 1
                del self.buf[:1]
                continue
            total = HEADER_BYTES + length + 4
            if len(self.buf) < total:
                return out
            body = bytes(self.buf[2:HEADER_BYTES + length])
            (crc,) = struct.unpack_from("<I", self.buf, HEADER_BYTES + length)
            if zlib.crc32(body) != crc:
                self.bad_frames += 1
                out.append(Frame(head[2], head[3], b"", ok=False))
                del self.buf[:1]
                continue
            out.append(Frame(head[2], head[3], bytes(self.buf[HEADER_BYTES:HEADER_BYTES + length])))
            del self.buf[:total]


# --------------------------------------------------------------------------- transports
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
    """A serial port through pyserial (a board's USB virtual COM port, or a pty)."""

    def __init__(self, port: str, baud: int = 115200):
        try:
            import serial  # pyserial
        except ImportError:  # pragma: no cover - pyserial is a dependency
            raise TinyEngineError("--device=serial needs pyserial: pip install pyserial") from None
        self._serial_mod = serial
        try:
            self.ser = serial.Serial(port, baudrate=baud, timeout=0, write_timeout=10)
        except (serial.SerialException, OSError) as exc:
            raise LinkError(f"cannot open serial port {port}: {exc}") from None
        self.name = f"{port} @ {baud} baud"

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


@dataclass
class FaultSpec:
    """Damage done to one direction of a link, as per-byte probabilities: a
    byte dropped, a bit flipped, a burst of random bytes inserted before it."""

    drop: float = 0.0
    flip: float = 0.0
    garbage: float = 0.0
    garbage_len: Tuple[int, int] = (1, 32)

    def apply(self, data: bytes, rng: random.Random, counts: Dict[str, int]) -> bytes:
        if not (self.drop or self.flip or self.garbage):
            return data
        out = bytearray()
        for b in data:
            if self.garbage and rng.random() < self.garbage:
                n = rng.randint(*self.garbage_len)
                out += bytes(rng.getrandbits(8) for _ in range(n))
                counts["garbage"] += n
            if self.drop and rng.random() < self.drop:
                counts["dropped"] += 1
                continue
            if self.flip and rng.random() < self.flip:
                b ^= 1 << rng.randrange(8)
                counts["flipped"] += 1
            out.append(b)
        return bytes(out)


class FaultyTransport(Transport):
    """Fault injection between the host and the device (tests): drops, bit
    flips and garbage in either direction (``to_device``, ``from_device``),
    reproducible from ``seed``; ``mute_after`` stops delivering the device's
    bytes after that many (a board that stops answering)."""

    def __init__(self, inner: Transport, *, to_device: Optional[FaultSpec] = None,
                 from_device: Optional[FaultSpec] = None, seed: int = 0, mute_after: Optional[int] = None):
        self.inner = inner
        self.to_device = to_device or FaultSpec()
        self.from_device = from_device or FaultSpec()
        self.rng = random.Random(seed)
        self.mute_after = mute_after
        self.received = 0
        self.counts = {"dropped": 0, "flipped": 0, "garbage": 0}
        self.name = f"faulty({inner.name})"

    def read(self, timeout: float) -> bytes:
        data = self.inner.read(timeout)
        if self.mute_after is not None:
            keep = max(0, self.mute_after - self.received)
            self.received += len(data)
            data = data[:keep]
        return self.from_device.apply(data, self.rng, self.counts)

    def write(self, data: bytes) -> None:
        self.inner.write(self.to_device.apply(data, self.rng, self.counts))

    def close(self) -> None:
        self.inner.close()

    def gone_reason(self) -> str:
        return self.inner.gone_reason()


# --------------------------------------------------------------------------- client
@dataclass
class DeviceInfo:
    version: int
    unit: int
    max_payload: int
    counter_hz: int
    icount_shift: int
    num_inputs: int
    num_outputs: int
    can_reset: bool
    arena_bytes: int
    stack_size: int
    model: str
    board: str
    platform: str

    @property
    def unit_name(self) -> str:
        return UNIT_NAMES.get(self.unit, f"unit {self.unit}")

    @classmethod
    def parse(cls, p: bytes) -> "DeviceInfo":
        if len(p) < 23:
            raise LinkError(f"HELLO answer of {len(p)} bytes is too short")
        version, unit, max_payload, hz, shift, n_in, n_out, flags, arena, stack = struct.unpack_from(
            "<BBHIBBBBII", p)
        strings, pos = [], 20
        for _ in range(3):
            n = p[pos]
            strings.append(p[pos + 1:pos + 1 + n].decode("utf-8", "replace"))
            pos += 1 + n
        return cls(version, unit, max_payload, hz, shift, n_in, n_out, bool(flags & 1), arena, stack, *strings)


@dataclass
class TensorInfo:
    kind: str
    index: int
    name: str
    dtype: str
    shape: List[int]
    bytes: int
    scale: Optional[float]
    zero_point: Optional[int]

    @classmethod
    def parse(cls, p: bytes) -> "TensorInfo":
        kind, index, dtype, rank, nbytes, scale, zp, quant = struct.unpack_from("<BBBBIfiB", p)
        shape = list(struct.unpack_from(f"<{rank}i", p, 17))
        pos = 17 + 4 * rank
        name = p[pos + 1:pos + 1 + p[pos]].decode("utf-8", "replace")
        return cls("input" if kind == 0 else "output", index, name, DTYPES.get(dtype, f"dtype{dtype}"), shape,
                   nbytes, float(scale) if quant else None, int(zp) if quant else None)


@dataclass
class RunStats:
    count: int
    output_crc: int
    total: int
    min: int
    max: int
    first: int
    stack_peak: int
    stack_size: int
    unit: int

    @classmethod
    def parse(cls, p: bytes) -> "RunStats":
        return cls(*struct.unpack_from("<IIQQQQIIB", p))

    @property
    def mean(self) -> float:
        return self.total / self.count if self.count else 0.0


@dataclass
class LinkStats:
    requests: int = 0
    resends: int = 0
    timeouts: int = 0
    damaged_frames: int = 0
    link_errors: int = 0
    stale_frames: int = 0
    progress_frames: int = 0


class DeviceClient:
    """Requests and answers over a Transport, with resends on damage and time-outs."""

    #: A frame from the device whose bytes stop arriving for this long lost
    #: some: it is asked for again without waiting for the whole time-out.
    byte_gap = 0.25

    def __init__(self, transport: Transport, timeout: float = 5.0, retries: int = 4):
        self.transport = transport
        self.timeout = float(timeout)
        self.retries = int(retries)
        self.chunk = 0  # bytes of tensor data per frame; 0 = as many as the device takes
        self.decoder = FrameDecoder()
        self.pending: List[Frame] = []
        self._seq = 0
        self.max_payload = 256  # until HELLO tells
        self.info: Optional[DeviceInfo] = None
        self.stats = LinkStats()
        self.boot_seen = False

    # ---- low level
    def _next_seq(self) -> int:
        self._seq = self._seq % 255 + 1
        return self._seq

    def _next_frame(self, deadline: float) -> Optional[Frame]:
        """The next frame from the device, or None when ``deadline`` passed.
        Frames that arrived together are kept for the next call."""
        while not self.pending:
            wait = max(0.0, deadline - time.monotonic())
            partial = self.decoder.partial()
            data = self._read(min(wait, self.byte_gap) if partial else wait)
            if not data and partial and self.decoder.partial():
                self.decoder.buf.clear()
                raise _Damaged(f"a frame from the device stopped arriving half-way (for {self.byte_gap:g} s)")
            if data:
                self.pending.extend(self.decoder.feed(data))
            elif time.monotonic() >= deadline:
                return None
        return self.pending.pop(0)

    def _read(self, timeout: float) -> bytes:
        try:
            return self.transport.read(timeout)
        except DeviceGone as exc:
            reason = self.transport.gone_reason()
            raise DeviceGone(f"{exc}" + (f"\n{reason}" if reason else "")) from None

    def _flush(self) -> None:
        """Complete any frame the device is stuck in (its CRC then fails) and
        drop what is in flight."""
        self.transport.write(bytes(self.max_payload + OVERHEAD + 16))
        self._drain(0.05, 0.5)

    def _drain(self, quiet: float, limit: float) -> None:
        end = time.monotonic() + limit
        while time.monotonic() < end:
            data = self._read(quiet)
            if not data:
                break
            for f in self.decoder.feed(data):
                self._check_async(f)
        self.pending = []

    def _check_async(self, f: Frame) -> None:
        if not f.ok:
            return
        if f.cmd == MSG_BOOT:
            self.boot_seen = True
            try:
                self.info = DeviceInfo.parse(f.payload)
            except Exception:
                pass
            raise DeviceReset("the device reset (BOOT frame received): its inputs and results are lost")
        if f.cmd == MSG_FAULT:
            reason = struct.unpack_from("<I", f.payload)[0] if len(f.payload) >= 4 else -1
            text = f.payload[4:].decode("utf-8", "replace")
            raise DeviceFault(f"the device crashed (fatal error reason {reason}: {text}) and resets")

    def request(self, cmd: int, payload: bytes = b"", *, timeout: Optional[float] = None,
                on_progress: Optional[Callable[[int], None]] = None, attempts: Optional[int] = None) -> bytes:
        """Send one request and return the answer's payload; resends on damage
        and time-outs (``retries`` times), raises LinkError subclasses."""
        name = COMMAND_NAMES.get(cmd, hex(cmd))
        timeout = self.timeout if timeout is None else timeout
        attempts = self.retries + 1 if attempts is None else attempts
        last: Optional[Exception] = None
        self.stats.requests += 1
        for attempt in range(attempts):
            if attempt:
                self.stats.resends += 1
            seq = self._next_seq()
            self.transport.write(encode_frame(cmd, seq, payload))
            try:
                return self._await(cmd, seq, timeout, on_progress)
            except LinkTimeout as exc:
                self.stats.timeouts += 1
                last = exc
                self._flush()
            except _Damaged as exc:
                last = exc
            except DeviceError as exc:
                if exc.code not in LINK_ERRORS:
                    raise
                self.stats.link_errors += 1
                last = exc
        raise LinkError(f"no valid answer to {name} after {attempts} attempts "
                        f"({self.transport.name}): {last}")

    def _await(self, cmd: int, seq: int, timeout: float, on_progress) -> bytes:
        deadline = time.monotonic() + timeout
        while True:
            f = self._next_frame(deadline)
            if f is None:
                hint = (" (the device hangs, or one inference takes longer than the time-out)"
                        if cmd == CMD_RUN else "")
                raise LinkTimeout(f"no answer to {COMMAND_NAMES.get(cmd, hex(cmd))} within {timeout:g} s{hint}")
            if not f.ok:
                self.stats.damaged_frames += 1
                if f.seq == seq:
                    raise _Damaged("answer damaged on the way")
                continue
            self._check_async(f)
            if f.seq != seq:
                self.stats.stale_frames += 1
                continue
            if f.cmd == MSG_PROGRESS:
                self.stats.progress_frames += 1
                deadline = time.monotonic() + timeout
                if on_progress and len(f.payload) >= 4:
                    on_progress(struct.unpack_from("<I", f.payload)[0])
                continue
            if f.cmd == RSP_ERROR:
                code = f.payload[0] if f.payload else 0
                rcmd = f.payload[1] if len(f.payload) > 1 else cmd
                if rcmd != cmd:
                    self.stats.stale_frames += 1
                    continue
                raise DeviceError(code, rcmd, f.payload[2:].decode("utf-8", "replace"))
            if f.cmd == (cmd | RSP):
                return f.payload
            self.stats.stale_frames += 1

    # ---- commands
    def wait_boot(self, timeout: float) -> Optional[DeviceInfo]:
        """Wait up to ``timeout`` s for the BOOT frame a device sends after reset."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self._next_frame(deadline)
            except _Damaged:
                continue
            if f is None:
                return None
            if f.ok and f.cmd == MSG_BOOT:
                self.boot_seen = True
                self.info = DeviceInfo.parse(f.payload)
                self.max_payload = self.info.max_payload
                return self.info

    def hello(self) -> DeviceInfo:
        self.info = DeviceInfo.parse(self.request(CMD_HELLO))
        self.max_payload = self.info.max_payload
        return self.info

    def tensor(self, kind: str, index: int) -> TensorInfo:
        return TensorInfo.parse(self.request(CMD_TENSOR, bytes([0 if kind == "input" else 1, index])))

    def describe(self) -> dict:
        """The device's model as metadata.json describes it (and the device)."""
        info = self.hello()
        desc = {"model": info.model, "board": info.board, "platform": info.platform, "unit": info.unit_name,
                "counter_hz": info.counter_hz, "icount_shift": info.icount_shift, "arena_bytes": info.arena_bytes,
                "stack_size_bytes": info.stack_size, "max_payload": info.max_payload}
        for kind, n in (("input", info.num_inputs), ("output", info.num_outputs)):
            desc[kind + "s"] = [vars(self.tensor(kind, i)) for i in range(n)]
            for t in desc[kind + "s"]:
                t.pop("kind"), t.pop("index")
        return desc

    def echo(self, payload: bytes) -> bytes:
        return self.request(CMD_ECHO, payload)

    def _chunk_size(self) -> int:
        limit = self.max_payload - 5
        return min(self.chunk, limit) if self.chunk else limit

    def _chunked(self, make: Callable[[int, int], Tuple[int, bytes]], total: int,
                 done: Callable[[int, int, bytes], int]) -> None:
        """Transfer ``total`` bytes in frames; frames that keep failing are
        made smaller (down to 64 bytes: a noisy link still gets through)."""
        off, failures = 0, 0
        while off < total or (off == 0 and total == 0):
            n = min(self._chunk_size(), total - off)
            cmd, payload = make(off, n)
            try:
                ans = self.request(cmd, payload, attempts=2)
            except LinkError as exc:
                if type(exc) is not LinkError:
                    raise
                failures += 1
                if failures > self.retries:
                    raise
                self.chunk = max(64, self._chunk_size() // 2)
                continue
            off = done(off, n, ans)
            if total == 0:
                break

    def write_input(self, index: int, data: bytes) -> None:
        def make(off, n):
            return CMD_WRITE_INPUT, struct.pack("<BI", index, off) + data[off:off + n]

        def done(off, n, ans):
            _, _, loaded = struct.unpack_from("<BII", ans)
            # More is fine: an earlier, longer write of the same bytes arrived but its answer did not.
            if loaded < off + n:
                raise LinkError(f"input {index}: the device holds {loaded} bytes after writing {off + n}")
            return off + n

        self._chunked(make, len(data), done)

    def run(self, count: int, inputs_crc: int, *, progress: bool = True,
            on_progress: Optional[Callable[[int], None]] = None) -> RunStats:
        flags = RUN_FLAG_PROGRESS if progress else 0
        return RunStats.parse(self.request(CMD_RUN, struct.pack("<IIB", count, inputs_crc, flags),
                                           on_progress=on_progress))

    def timings(self) -> RunStats:
        return RunStats.parse(self.request(CMD_TIMINGS))

    def read_output(self, index: int, nbytes: int) -> bytes:
        out = bytearray()

        def make(off, n):
            return CMD_READ_OUTPUT, struct.pack("<BIH", index, off, n)

        def done(off, n, ans):
            idx, got = struct.unpack_from("<BI", ans)
            if idx != index or got != off or len(ans) == 5:
                raise LinkError(f"output {index}: unexpected answer (index {idx}, offset {got}, "
                                f"{len(ans) - 5} bytes) at offset {off}")
            out.extend(ans[5:])
            return len(out)

        self._chunked(make, nbytes, done)
        return bytes(out)

    def reset(self, wait: float = 10.0) -> DeviceInfo:
        """Reset the device and wait for its BOOT frame."""
        self.request(CMD_RESET)
        info = self.wait_boot(wait)
        if info is None:
            raise LinkTimeout(f"the device did not boot within {wait:g} s after RESET")
        return info

    def close(self) -> None:
        self.transport.close()


class _Damaged(LinkError):
    pass


# --------------------------------------------------------------------------- model level
def _summary(values: Sequence[float]) -> Dict[str, float]:
    return {"mean": float(statistics.fmean(values)), "median": float(statistics.median(values)),
            "min": float(min(values)), "max": float(max(values)),
            "std": float(statistics.pstdev(values)) if len(values) > 1 else 0.0}


class DeviceModel:
    """A model running on a device: checked against the project's metadata,
    run with inputs by name, outputs read back and verified."""

    def __init__(self, client: DeviceClient, meta: Optional[dict] = None):
        self.client = client
        self.meta = meta
        self.device = client.describe()
        if meta is not None:
            check_device_matches(self.device, meta)

    def run(self, inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """Load ``inputs`` (by name, positional, or one array), run ``number``
        inferences ``repeat`` times, read the outputs. Returns (outputs by
        name, report). A device reset during the run is recovered from once
        (inputs sent again); a second one is an error."""
        if number < 1 or repeat < 1:
            raise TinyEngineError("--number and --repeat must be at least 1")
        blobs = self._blobs(inputs)
        for attempt in (0, 1):
            try:
                return self._run_once(blobs, number, repeat)
            except DeviceReset:
                if attempt:
                    raise DeviceReset("the device reset twice while running the model: it probably crashes "
                                      "(stack overflow? HardFault?) or loses power") from None
                self.client.pending = []
                self.client.hello()
        raise AssertionError("unreachable")  # pragma: no cover

    def _blobs(self, inputs) -> List[bytes]:
        from .project import match_inputs

        arrays = match_inputs(inputs, self.device["inputs"])
        return [arrays[m["name"]].tobytes() for m in self.device["inputs"]]

    def _run_once(self, blobs: List[bytes], number: int, repeat: int):
        c = self.client
        t0 = time.perf_counter()
        for i, b in enumerate(blobs):
            c.write_input(i, b)
        crc = zlib.crc32(b"".join(blobs))
        runs = [c.run(number, crc) for _ in range(repeat)]
        outputs, raw = {}, []
        for i, m in enumerate(self.device["outputs"]):
            blob = c.read_output(i, m["bytes"])
            raw.append(blob)
            outputs[m["name"]] = np.frombuffer(blob, dtype=m["dtype"]).reshape(m["shape"]).copy()
        if zlib.crc32(b"".join(raw)) != runs[-1].output_crc:
            raise LinkError("the outputs read back do not match the CRC the device computed after the run")
        seconds = time.perf_counter() - t0
        return outputs, self._report(runs, number, seconds)

    def _report(self, runs: List[RunStats], number: int, seconds: float) -> dict:
        d = self.device
        unit = UNIT_NAMES.get(runs[-1].unit, "units")
        per = [r.mean for r in runs]
        rep = {"model": d["model"], "board": d["board"], "platform": d["platform"], "unit": unit,
               "counter_hz": d["counter_hz"], "number": number, "repeat": len(runs),
               unit: int(round(per[-1])), f"{unit}_per_repeat": per, f"{unit}_summary": _summary(per),
               f"{unit}_min_single": min(r.min for r in runs), f"{unit}_max_single": max(r.max for r in runs),
               "stack_peak_bytes": max(r.stack_peak for r in runs), "stack_size_bytes": runs[-1].stack_size,
               "arena_bytes": d["arena_bytes"], "link_seconds": seconds,
               "link": vars(self.client.stats).copy()}
        if unit == "cycles" and d["counter_hz"]:
            ms = [v * 1e3 / d["counter_hz"] for v in per]
            rep["ms_per_repeat"] = ms
            rep["ms_summary"] = _summary(ms)
            rep["clock_hz"] = d["counter_hz"]
        if unit == "instructions":
            rep["icount_shift"] = d["icount_shift"]
        return rep


def check_device_matches(device: dict, meta: dict) -> None:
    """Raise TinyEngineError when the device runs another model than ``meta``'s."""
    problems = []
    if device["model"] != meta["model"]:
        problems.append(f"the device runs model '{device['model']}', the project is '{meta['model']}'")
    for kind in ("inputs", "outputs"):
        dv, mv = device[kind], meta[kind]
        if len(dv) != len(mv):
            problems.append(f"{len(dv)} {kind} on the device, {len(mv)} in the project")
            continue
        for a, b in zip(dv, mv):
            same_q = (a["scale"] is None) == (b.get("scale") is None) and (
                a["scale"] is None or (np.float32(a["scale"]) == np.float32(b["scale"])
                                       and int(a["zero_point"]) == int(b["zero_point"])))
            if a["name"] != b["name"] or a["dtype"] != b["dtype"] or list(a["shape"]) != list(b["shape"]) \
                    or not same_q:
                problems.append(f"{kind[:-1]} '{b['name']}': device {a['name']!r} {a['dtype']}{a['shape']} "
                                f"scale={a['scale']} zp={a['zero_point']}, project {b['dtype']}{b['shape']} "
                                f"scale={b.get('scale')} zp={b.get('zero_point')}")
    if problems:
        raise TinyEngineError("the device does not run this project's model (flash the project's firmware): "
                              + "; ".join(problems))


# --------------------------------------------------------------------------- opening links
class Link:
    """A transport and its client, closed together (context manager)."""

    def __init__(self, transport: Transport, timeout: float = 5.0, retries: int = 4):
        self.transport = transport
        self.client = DeviceClient(transport, timeout, retries)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self) -> None:
        self.client.close()


def open_serial(port: str, baud: int = 115200, timeout: float = 5.0, retries: int = 4) -> Link:
    """A board on a serial port: opened, flushed, checked with HELLO."""
    link = Link(SerialTransport(port, baud), timeout, retries)
    try:
        link.client._drain(0.1, 1.0)
    except DeviceReset:
        pass  # a board that just booted: fine
    try:
        link.client.hello()
    except (LinkError, TinyEngineError) as exc:
        link.close()
        raise LinkError(f"no tinyengine benchmark server answers on {port} at {baud} baud: {exc}\n"
                        "  (is the board flashed with the project's firmware, the baud rate the project's "
                        "and the port not open elsewhere?)") from None
    return link


class QemuSerial(Link):
    """QEMU running a serial-firmware ELF, its UART (serial 0) connected to
    the host through a loopback TCP socket (``link="tcp"``: QEMU connects to
    a socket listening on 127.0.0.1 only) or a pseudo-terminal opened with
    pyserial like a real board's port (``link="pty"``). ``expect_boot``:
    wait for the te_protocol BOOT frame (False for the MLPerf firmware, whose
    protocol is text); ``wrap``: a transport wrapper applied after boot (fault
    injection in tests)."""

    def __init__(self, elf: str, board: str = "mps2-an500", *, link: str = "tcp", timeout: float = 5.0,
                 retries: int = 4, boot_timeout: float = 20.0, expect_boot: bool = True,
                 wrap: Optional[Callable[[Transport], Transport]] = None):
        from . import qemu as q

        q._require_tools(qemu=True)
        self.board = q._emulated(board)
        self.output: List[str] = []
        self._server: Optional[socket.socket] = None
        cmd = q.qemu_command(elf, self.board)
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
        self._pty = None
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
            if wrap is not None:  # fault injection, after the boot frame
                self.transport = self.client.transport = wrap(transport)
        except BaseException:
            self._stop()
            raise

    def _collect(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.output.append(line)
            m = re.search(r"char device redirected to (\S+)", line)
            if m:
                self._pty = m.group(1)
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
        if not self._pty:
            raise LinkError(f"QEMU did not open a pty:\n{''.join(self.output)}")
        t = SerialTransport(self._pty, 115200)
        t.name = f"QEMU UART ({self._pty})"
        return t

    def explain(self) -> str:
        """QEMU's exit status and fault lines, when it has exited."""
        from . import qemu as q

        if self.proc.poll() is None:
            time.sleep(0.2)
            if self.proc.poll() is None:
                return ""
        self._reader.join(timeout=2)
        rc = self.proc.returncode
        text = "".join(self.output)
        what = q.EXIT_STATUSES.get(rc, "QEMU or firmware failure")
        if "Lockup" in text:
            what = "CPU lockup: a fault while handling a fault, typically a stack overflow"
        detail = "\n".join(l for l in text.splitlines() if l.startswith(("tinyengine-", "qemu"))) or text[-2000:]
        return f"QEMU exited with status {rc} ({what})" + (f":\n{detail}" if detail else "") + q._explain_fault(text)

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
        try:
            if hasattr(self, "client"):
                self.client.close()
        finally:
            self._stop()
