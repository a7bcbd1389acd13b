"""The tinyengine benchmark protocol: frames, commands, errors and answer records.

The device side is ``firmware/src/te_protocol.c``, shared by the Zephyr
application (a real board's UART) and the bare-metal firmware (QEMU's
emulated CMSDK UART); ``docs/serial_protocol.md`` is the specification.

Frames are ``A5 5A | LEN u16 | CMD | SEQ | HCRC (CRC-8 of LEN..SEQ) |
PAYLOAD | CRC32`` (little-endian; CRC32 = zlib.crc32 of LEN..PAYLOAD).
Every request carries a fresh sequence number and is answered with
``CMD | 0x80`` and the same number (or an error frame). This module is the
codec only: no I/O (``transport.py``), no resends (``client.py``).
"""
from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass
from typing import List, Optional

from ..errors import TinyEngineError

SYNC = b"\xa5\x5a"
HEADER_BYTES = 7
OVERHEAD = 11
MAX_FRAME_PAYLOAD = 65535

CMD_HELLO, CMD_TENSOR, CMD_WRITE_INPUT, CMD_RUN = 0x01, 0x02, 0x03, 0x04
CMD_READ_OUTPUT, CMD_TIMINGS, CMD_ECHO, CMD_RESET = 0x05, 0x06, 0x07, 0x08
CMD_PROFILE, CMD_LOAD_INPUT = 0x09, 0x0A
RSP = 0x80
MSG_FAULT, MSG_PROGRESS, MSG_BOOT, RSP_ERROR = 0x7C, 0x7D, 0x7E, 0xFF
RUN_FLAG_PROGRESS = 0x01

COMMAND_NAMES = {CMD_HELLO: "HELLO", CMD_TENSOR: "TENSOR", CMD_WRITE_INPUT: "WRITE_INPUT", CMD_RUN: "RUN",
                 CMD_READ_OUTPUT: "READ_OUTPUT", CMD_TIMINGS: "TIMINGS", CMD_ECHO: "ECHO", CMD_RESET: "RESET",
                 CMD_PROFILE: "PROFILE", CMD_LOAD_INPUT: "LOAD_INPUT"}
ERR_CRC, ERR_LENGTH, ERR_UNKNOWN, ERR_ARG, ERR_NOT_READY = 1, 2, 3, 4, 5
ERR_INPUT_CRC, ERR_RUN, ERR_STACK, ERR_TIMEOUT = 6, 7, 8, 9
ERROR_NAMES = {ERR_CRC: "CRC error", ERR_LENGTH: "bad length", ERR_UNKNOWN: "unknown command",
               ERR_ARG: "bad argument", ERR_NOT_READY: "not ready", ERR_INPUT_CRC: "input CRC mismatch",
               ERR_RUN: "inference failed", ERR_STACK: "stack overflow", ERR_TIMEOUT: "frame timeout"}
#: Errors caused by the link, not the request: the request is sent again.
LINK_ERRORS = (ERR_CRC, ERR_TIMEOUT, ERR_LENGTH)
UNIT_INSTRUCTIONS, UNIT_CYCLES, UNIT_TIMER_TICKS = 1, 2, 3
#: UNIT_TIMER_TICKS: the Zephyr firmware's k_cycle_get where the core has no DWT (QEMU): not cycles.
UNIT_NAMES = {UNIT_INSTRUCTIONS: "instructions", UNIT_CYCLES: "cycles", UNIT_TIMER_TICKS: "zephyr_ticks"}
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
    """One frame: sync, header with its CRC-8, payload, CRC32."""
    if len(payload) > MAX_FRAME_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    head = struct.pack("<HBB", len(payload), cmd & 0xFF, seq & 0xFF)
    body = head + bytes([crc8(head)]) + payload
    return SYNC + body + struct.pack("<I", zlib.crc32(body))


@dataclass
class Frame:
    """A frame as decoded."""

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
        """Add received bytes; returns the frames completed by them."""
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

# --------------------------------------------------------------------------- answers
@dataclass
class DeviceInfo:
    """HELLO's answer (also the BOOT frame's payload)."""

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
    profile: bool = False  #: a profile build: PROFILE answers with per-step counters
    host_files: bool = False  #: LOAD_INPUT reads inputs from host files (an emulator with semihosting)

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
        return cls(version, unit, max_payload, hz, shift, n_in, n_out, bool(flags & 1), arena, stack, *strings,
                   profile=bool(flags & 2), host_files=bool(flags & 4))


@dataclass
class ProfilePage:
    """PROFILE's answer: per-step counters of the last RUN, from step ``first`` on."""

    num_steps: int
    first: int
    count: int       #: inferences the counters add up
    mark_cost: int   #: work one mark adds, already subtracted from every step
    unit: int
    counters: List[int]

    @classmethod
    def parse(cls, p: bytes) -> "ProfilePage":
        if len(p) < 17 or (len(p) - 17) % 8:
            raise LinkError(f"PROFILE answer of {len(p)} bytes is malformed")
        num_steps, first, count, cost, unit = struct.unpack_from("<HHIQB", p)
        n = (len(p) - 17) // 8
        return cls(num_steps, first, count, cost, unit, list(struct.unpack_from(f"<{n}Q", p, 17)))


@dataclass
class TensorInfo:
    """TENSOR's answer: one input or output of the device's model."""

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
    """RUN's (and TIMINGS') answer: counter totals in the device's unit, CRC32 of the outputs, stack peak."""

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
