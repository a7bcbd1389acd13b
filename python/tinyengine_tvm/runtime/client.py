"""The host side of the benchmark protocol: requests with resends, and a model run on a device.

:class:`DeviceClient` sends requests over a :class:`~.transport.Transport`:
stale or damaged frames are skipped, damaged requests answered with an error
are sent again, and a request that gets no valid answer within ``timeout`` is
sent again after a flush of the device's receiver, up to ``retries`` times. A
device that resets announces itself with a BOOT frame (``DeviceReset``); one
that crashes sends FAULT (``DeviceFault``) or, under QEMU, ends the emulator
(``DeviceGone``, with the exit status explained). :class:`DeviceModel`
checks results end to end: the device verifies the CRC32 of the inputs it
runs on, the host the CRC32 of the outputs it read back, so a damaged link
gives an error, never a wrong result.

    from tinyengine_tvm.runtime.client import DeviceModel, open_serial
    with open_serial("/dev/ttyACM0", 115200) as link:
        model = DeviceModel(link.client, meta)   # meta: metadata.json of the project
        outputs, report = model.run({"input": x}, number=10, repeat=3)

QEMU's UART as a link: ``runtime/emulator.QemuSerial``.
"""
from __future__ import annotations

import os
import statistics
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import TinyEngineError
from .project import match_inputs
from .protocol import (CMD_ECHO, CMD_HELLO, CMD_LOAD_INPUT, CMD_PROFILE, CMD_READ_OUTPUT, CMD_RESET, CMD_RUN,
                       CMD_TENSOR, CMD_TIMINGS, CMD_WRITE_INPUT, COMMAND_NAMES, LINK_ERRORS, MSG_BOOT, MSG_FAULT, MSG_PROGRESS, OVERHEAD, RSP,
                       RSP_ERROR, RUN_FLAG_PROGRESS, UNIT_NAMES, DeviceError, DeviceFault, DeviceGone, DeviceInfo,
                       DeviceReset, Frame, FrameDecoder, LinkError, LinkTimeout, ProfilePage, RunStats, TensorInfo,
                       encode_frame)
from .runner import check_counts
from .transport import SerialTransport, Transport


@dataclass
class LinkStats:
    """Counts of what the link went through (in every report, under ``link``)."""

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
        """HELLO: the device and its model; also sets the frame size the device takes."""
        self.info = DeviceInfo.parse(self.request(CMD_HELLO))
        self.max_payload = self.info.max_payload
        return self.info

    def tensor(self, kind: str, index: int) -> TensorInfo:
        """TENSOR: one input (``kind="input"``) or output of the device's model."""
        return TensorInfo.parse(self.request(CMD_TENSOR, bytes([0 if kind == "input" else 1, index])))

    def describe(self) -> dict:
        """The device's model as metadata.json describes it (and the device)."""
        info = self.hello()
        desc = {"model": info.model, "board": info.board, "platform": info.platform, "unit": info.unit_name,
                "counter_hz": info.counter_hz, "icount_shift": info.icount_shift, "arena_bytes": info.arena_bytes,
                "stack_size_bytes": info.stack_size, "max_payload": info.max_payload, "profile": info.profile,
                "host_files": info.host_files}
        for kind, n in (("input", info.num_inputs), ("output", info.num_outputs)):
            desc[kind + "s"] = [vars(self.tensor(kind, i)) for i in range(n)]
            for t in desc[kind + "s"]:
                t.pop("kind"), t.pop("index")
        return desc

    def echo(self, payload: bytes) -> bytes:
        """ECHO: the payload back (a link check)."""
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
        """WRITE_INPUT: load input ``index`` with ``data``, in frames the device takes."""
        def make(off, n):
            return CMD_WRITE_INPUT, struct.pack("<BI", index, off) + data[off:off + n]

        def done(off, n, ans):
            _, _, loaded = struct.unpack_from("<BII", ans)
            # More is fine: an earlier, longer write of the same bytes arrived but its answer did not.
            if loaded < off + n:
                raise LinkError(f"input {index}: the device holds {loaded} bytes after writing {off + n}")
            return off + n

        self._chunked(make, len(data), done)

    def load_input(self, index: int, path: str) -> int:
        """LOAD_INPUT: the device reads input ``index`` whole from the host file ``path`` (absolute:
        the emulator's working directory is not ours); returns the bytes it holds. Only a device whose
        HELLO says ``host_files`` (QEMU with semihosting) can."""
        raw = path.encode()
        if len(raw) + 1 > min(self.max_payload, 256):
            raise TinyEngineError(f"input file path too long for LOAD_INPUT ({len(raw)} bytes): {path}")
        _, _, loaded = struct.unpack_from("<BII", self.request(CMD_LOAD_INPUT, struct.pack("<B", index) + raw))
        return loaded

    def run(self, count: int, inputs_crc: int, *, progress: bool = True,
            on_progress: Optional[Callable[[int], None]] = None) -> RunStats:
        """RUN: ``count`` inferences on the loaded inputs (``inputs_crc``: their CRC32, checked by the device)."""
        flags = RUN_FLAG_PROGRESS if progress else 0
        return RunStats.parse(self.request(CMD_RUN, struct.pack("<IIB", count, inputs_crc, flags),
                                           on_progress=on_progress))

    def timings(self) -> RunStats:
        """TIMINGS: the last RUN's figures again."""
        return RunStats.parse(self.request(CMD_TIMINGS))

    def profile(self) -> ProfilePage:
        """Every step's counter of the last RUN (a profile build's), fetched page by page."""
        pages, first = [], 0
        while True:
            page = ProfilePage.parse(self.request(CMD_PROFILE, struct.pack("<HH", first, 0xFFFF)))
            if page.first != first:
                raise LinkError(f"PROFILE answered from step {page.first}, asked for {first}")
            pages.append(page)
            first += len(page.counters)
            if first >= page.num_steps or not page.counters:
                break
        out = pages[0]
        out.counters = [c for p in pages for c in p.counters]
        if len(out.counters) != out.num_steps:
            raise LinkError(f"PROFILE gave {len(out.counters)} counters for {out.num_steps} steps")
        return out

    def read_output(self, index: int, nbytes: int) -> bytes:
        """READ_OUTPUT: the ``nbytes`` of output ``index`` after a RUN."""
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
        """Close the transport."""
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

    def __init__(self, client: DeviceClient, meta: Optional[dict] = None, input_dir: Optional[str] = None):
        self.client = client
        self.meta = meta
        self.device = client.describe()
        #: Where inputs go as files for a device that reads host files (LOAD_INPUT); None: over the link.
        self.input_dir = input_dir if self.device.get("host_files") else None
        if meta is not None:
            check_device_matches(self.device, meta)

    def run(self, inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """Load ``inputs`` (by name, positional, or one array), run ``number``
        inferences ``repeat`` times, read the outputs. Returns (outputs by
        name, report). A device reset during the run is recovered from once
        (inputs sent again); a second one is an error."""
        check_counts(number, repeat)
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
        arrays = match_inputs(inputs, self.device["inputs"])
        return [arrays[m["name"]].tobytes() for m in self.device["inputs"]]

    def _run_once(self, blobs: List[bytes], number: int, repeat: int):
        c = self.client
        t0 = time.perf_counter()
        for i, b in enumerate(blobs):
            if self.input_dir:
                path = os.path.join(self.input_dir, f"input_{i}.bin")
                with open(path, "wb") as f:
                    f.write(b)
                loaded = c.load_input(i, path)
                if loaded != len(b):
                    raise LinkError(f"input {i}: the device holds {loaded} bytes of {len(b)} after LOAD_INPUT")
            else:
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
