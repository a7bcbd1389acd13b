"""A device farm over TVM's RPC tracker: compiled projects measured on QEMU
instances and boards that other machines (or processes) serve.

Three programs take part::

    python -m tvm.exec.rpc_tracker --host 0.0.0.0 --port 9190          # TVM's own tracker
    python -m tinyengine_tvm.rpc_server --tracker HOST:9190 --key m7 \\
        --device qemu --board mps2-an500                              # one per device
    tvmc run out.tar --rpc-tracker HOST:9190 --rpc-key m7              # or RpcRunner / RpcPool

A server registers itself with the tracker under its key and serves one
session at a time (TVM's RPC server accepts the next client only when the
current session ends), so a session owns its device. In a session the client
calls :data:`RUN_FUNC` with the compiled project as tar bytes, the inputs as
an .npz and the options as JSON; the server unpacks the project (cached by
content), runs it with its local runner (:func:`~.opener.open_runner` on its
own device options) and answers with one .npz holding the outputs and a JSON
record (report, time summary, profile, server name). Everything on the wire is
bytes and strings: no pickles, so a client never executes what a server sends.
TVM's RPC server itself lets any client write files on the server: run servers
on a trusted network only.

A server that dies takes its session with it: the client's next call raises,
:class:`RpcPool` retries the job once on the next server it is granted.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import socket
import struct
import tarfile
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import TinyEngineError, UsageError
from .project import Inputs, match_inputs, open_project, read_metadata
from .runner import Runner, check_counts

#: The function a tinyengine RPC server registers: (project tar, inputs npz, options JSON) -> reply npz.
RUN_FUNC = "tinyengine.rpc.run"
#: The function that names a server: () -> JSON of its name, key, device and board.
INFO_FUNC = "tinyengine.rpc.info"
#: Seconds a client waits for the tracker to grant a server before giving up.
DEFAULT_REQUEST_TIMEOUT = 120.0


# --------------------------------------------------------------------------- addresses
def parse_tracker(text: str, option: str = "--rpc-tracker") -> Tuple[str, int]:
    """``HOST:PORT`` (``[v6addr]:PORT`` for IPv6) as (host, port); a :class:`UsageError` naming ``option`` else."""
    host, sep, port = (text or "").rpartition(":")
    bracketed = host.startswith("[") and host.endswith("]")
    if bracketed:
        host = host[1:-1]
    if (not sep or not host or any(c.isspace() for c in host) or "/" in host
            or ("[" in host or "]" in host) or (":" in host and not bracketed)):
        raise UsageError(f"{option} '{text}': give the tracker as HOST:PORT, e.g. 127.0.0.1:9190")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise UsageError(f"{option} '{text}': the port must be a number from 1 to 65535")
    return host, int(port)


# --------------------------------------------------------------------------- wire format
def project_tar_bytes(project_dir: str) -> bytes:
    """The compiled project in ``project_dir`` as an uncompressed tar, the same bytes for the same
    files (sorted, no times or owners), so a server's content cache hits across clients."""
    meta = read_metadata(project_dir)
    files = sorted(set(meta.get("files") or []) | {"metadata.json"})
    if not meta.get("files"):  # written before projects listed their files: their own folders only
        files = sorted({"metadata.json"} | {os.path.relpath(os.path.join(r, f), project_dir)
                                            for sub in ("include", "src")
                                            for r, _, fs in os.walk(os.path.join(project_dir, sub)) for f in fs})
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for rel in files:
            with open(os.path.join(project_dir, rel), "rb") as f:
                data = f.read()
            info = tarfile.TarInfo(rel)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def _pack(arrays: Dict[str, np.ndarray], record: dict) -> bytes:
    """An .npz of ``arrays`` plus ``record`` as UTF-8 JSON under ``record.json``."""
    buf = io.BytesIO()
    np.savez(buf, **arrays, **{"record.json": np.frombuffer(json.dumps(record, default=str).encode(), np.uint8)})
    return buf.getvalue()


def _unpack(blob: bytes) -> Tuple[Dict[str, np.ndarray], dict]:
    """The inverse of :func:`_pack` (pickles refused)."""
    with np.load(io.BytesIO(bytes(blob)), allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    record = json.loads(arrays.pop("record.json").tobytes().decode())
    return arrays, record


def _inputs_blob(meta: dict, inputs: Inputs) -> bytes:
    # By position, not by name: tensor names are free text, npz member names are file names.
    checked = match_inputs(inputs, meta["inputs"])
    return _pack({f"input_{i}": checked[m["name"]] for i, m in enumerate(meta["inputs"])}, {})


# --------------------------------------------------------------------------- server side
def _set_parent_death_signal(sig: int) -> None:
    """Linux: have the kernel send ``sig`` to this process when its parent exits (else nothing)."""
    import ctypes
    import sys

    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, sig, 0, 0, 0)  # PR_SET_PDEATHSIG


def _guard_session_process() -> None:
    """Make this session process and what it starts (QEMU) one process group, killed as a whole
    when the server above it dies: a killed server must not leave an emulator running."""
    import signal

    parent = os.getppid()
    os.setpgid(0, 0)

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os.killpg(0, signal.SIGKILL)

    threading.Thread(target=watch, daemon=True, name="tinyengine-rpc-watchdog").start()


def register_server_functions(options: dict) -> None:
    """Register :data:`RUN_FUNC` and :data:`INFO_FUNC` in this process for a server with ``options``
    (``device``, ``board``, ``port``, ``baud``, ``firmware``, ``qemu_link``, ``timeout``,
    ``link_timeout``, ``zephyr_workspace``: :func:`~.opener.open_runner`'s; ``cache_dir``;
    ``name`` and ``key``, reported back). TVM's RPC server calls it in its worker process (``server_init_callback``);
    every session is a fork of that process and inherits the function."""
    import signal

    import tvm_ffi

    # The worker is TVM's Popen child of the rpc_server command: it must not outlive it.
    _set_parent_death_signal(signal.SIGKILL)
    guarded = []
    _tracker_link_without_stalls()

    @tvm_ffi.register_global_func(INFO_FUNC, override=True)
    def _info():
        return json.dumps(_server_identity(options))

    @tvm_ffi.register_global_func(RUN_FUNC, override=True)
    def _run(project_tar, inputs_npz, options_json):
        if not guarded:  # once per session process, on its first call
            _guard_session_process()
            guarded.append(True)
        return bytearray(serve_run(options, bytes(project_tar), bytes(inputs_npz), str(options_json)))


def _tracker_link_without_stalls() -> None:
    """Give TVM's server loop in this process the client's tracker socket options (TCP_NODELAY,
    quick ACKs): after every session it registers again with the tracker, and Nagle's algorithm
    against a delayed ACK kept it from being granted for ~0.1 s each time. TVM's loop opens and
    reads that socket through ``tvm.rpc.base``; its functions are wrapped here, in the server's
    worker only."""
    from tvm.rpc import base

    if getattr(base.connect_with_retry, "_tinyengine", False):
        return
    connect, recvjson = base.connect_with_retry, base.recvjson

    def connect_with_retry(*args, **kwargs):
        sock = connect(*args, **kwargs)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def recvjson_quick(sock):
        _quick_ack(sock)
        return recvjson(sock)

    connect_with_retry._tinyengine = True  # type: ignore[attr-defined]
    base.connect_with_retry, base.recvjson = connect_with_retry, recvjson_quick


def _server_identity(server: dict) -> dict:
    return {k: server.get(k) for k in ("name", "key", "device", "board")}


def _cached_project(cache_dir: str, project_tar: bytes) -> str:
    """The project unpacked under ``cache_dir``, once per content (builds beside it are reused)."""
    digest = hashlib.sha256(project_tar).hexdigest()[:20]
    path = os.path.join(cache_dir, "projects", digest)
    if not os.path.isdir(path):
        tmp = f"{path}.tmp-{os.getpid()}-{threading.get_ident()}"
        try:
            with tarfile.open(fileobj=io.BytesIO(project_tar)) as tar:
                tar.extractall(tmp, filter="data")
        except (tarfile.TarError, OSError, EOFError) as exc:
            shutil.rmtree(tmp, ignore_errors=True)
            raise TinyEngineError(f"the uploaded project is not a readable tar ({exc})") from None
        try:
            os.replace(tmp, path)
        except OSError:
            # Servers sharing a cache folder: another one unpacked the same content first.
            shutil.rmtree(tmp, ignore_errors=True)
            if not os.path.isdir(path):
                raise
    return path


def serve_run(server: dict, project_tar: bytes, inputs_npz: bytes, options_json: str) -> bytes:
    """One measurement on this server's device: the body of :data:`RUN_FUNC`.

    ``options_json``: ``{"number", "repeat", "profile"}``. Returns the reply npz:
    ``output_<i>`` in the model's output order and a record with ``report``,
    ``time_summary``, ``profile`` (:meth:`~.profile.StepProfile.to_json`, or
    null) and ``server`` (name, key, device, board). The report's ``rpc`` entry also holds
    ``phases``: wall and CPU seconds of unpack, build, boot, run, profile and close (a
    :class:`~.runner.PhaseClock`), so a slow farm says where its time goes.
    """
    from .opener import open_runner
    from .runner import PhaseClock

    clock = PhaseClock()
    opts = json.loads(options_json)
    number, repeat, profile = int(opts.get("number", 1)), int(opts.get("repeat", 1)), bool(opts.get("profile"))
    check_counts(number, repeat)
    project = _cached_project(server["cache_dir"], project_tar)
    meta = read_metadata(project)
    arrays, _ = _unpack(inputs_npz)
    inputs = [arrays[f"input_{i}"] for i in range(len(meta["inputs"]))]
    runner_opts = {k: server[k] for k in ("board", "qemu_link", "port", "baud", "timeout", "link_timeout",
                                          "firmware", "zephyr_workspace") if server.get(k) is not None}
    clock.lap("unpack")
    runner = open_runner(project, server["device"], build_dir=os.path.join(server["cache_dir"], "build"),
                         profile=profile, **runner_opts)
    try:
        if getattr(runner, "open_phases", None):
            clock.extend(runner.open_phases)
        else:
            clock.lap("open")
        outputs, report = runner.run(inputs, number=number, repeat=repeat)
        summary = runner.format_time(report)
        clock.lap("run")
        steps = runner.profile().to_json() if profile else None
        if profile:
            clock.lap("profile")
    finally:
        runner.close()
    clock.lap("close")
    who = _server_identity(server)
    report["rpc"] = {"server": who["name"], "key": who["key"], "device": who["device"], "phases": clock.phases}
    record = {"outputs": list(outputs), "report": report, "time_summary": summary, "profile": steps, "server": who}
    return _pack({f"output_{i}": a for i, a in enumerate(outputs.values())}, record)


# --------------------------------------------------------------------------- client side
def request_session(tracker: Tuple[str, int], key: str, *, priority: int = 1,
                    timeout: float = DEFAULT_REQUEST_TIMEOUT, cancel: Optional[threading.Event] = None):
    """A TVM ``RPCSession`` on a free server of ``key``, granted by the tracker (higher
    ``priority`` first, else in request order). Waits up to ``timeout`` seconds
    (a :class:`TinyEngineError` then) or until ``cancel`` is set (None then)."""
    from tvm import rpc
    from tvm.rpc import base

    deadline = time.monotonic() + timeout
    while True:
        sock = _tracker_socket(tracker)
        try:
            base.sendjson(sock, [base.TrackerCode.REQUEST, key, "", priority])
            # The tracker answers when a server is free; poll so that a deadline or cancel can end the wait.
            while True:
                if cancel is not None and cancel.is_set():
                    return None
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TinyEngineError(f"no server with key '{key}' was free on tracker "
                                          f"{tracker[0]}:{tracker[1]} within {timeout:g} s")
                sock.settimeout(min(left, 0.25))
                _quick_ack(sock)
                try:
                    first = sock.recv(1, socket.MSG_PEEK)
                except socket.timeout:
                    continue
                if not first:
                    raise TinyEngineError(f"tracker {tracker[0]}:{tracker[1]} closed the connection")
                sock.settimeout(None)
                _quick_ack(sock)
                answer = base.recvjson(sock)
                break
        finally:
            # Closing drops the request if it is still queued: the tracker never grants a server to it then.
            sock.close()
        if answer[0] != base.TrackerCode.SUCCESS:
            raise TinyEngineError(f"tracker {tracker[0]}:{tracker[1]} refused the request: {answer}")
        url, port, matchkey = answer[1]
        try:
            return rpc.connect(url, port, matchkey)
        except Exception as exc:  # granted, then gone before we connected: ask again
            if time.monotonic() >= deadline:
                raise TinyEngineError(f"the server {url}:{port} the tracker granted cannot be reached ({exc})") \
                    from None


def _tracker_socket(tracker: Tuple[str, int]) -> socket.socket:
    from tvm.rpc import base

    try:
        sock = socket.create_connection(tracker, timeout=10)
        # TVM's messages go out as a length then a body, two small writes each way: with Nagle's
        # algorithm against delayed ACKs every request stalled ~40 ms per direction (a grant took
        # 85 ms with a server free, paid by every thread of every batch).
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        sock.sendall(struct.pack("<i", base.RPC_TRACKER_MAGIC))
        magic = struct.unpack("<i", base.recvall(sock, 4))[0]
    except (OSError, RuntimeError) as exc:
        raise TinyEngineError(f"cannot reach the RPC tracker at {tracker[0]}:{tracker[1]} ({exc})") from None
    if magic != base.RPC_TRACKER_MAGIC:
        sock.close()
        raise TinyEngineError(f"{tracker[0]}:{tracker[1]} is not a TVM RPC tracker")
    return sock


def _quick_ack(sock: socket.socket) -> None:
    """Acknowledge what arrives at once (Linux; the kernel drops the mode again after a while, so
    call it before every read): the tracker's reply is two writes and its second waits for our
    ACK of the first, which a delayed ACK holds back ~40 ms."""
    if hasattr(socket, "TCP_QUICKACK"):
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_QUICKACK, 1)
        except OSError:
            pass


def count_servers(tracker: Tuple[str, int], key: str) -> Tuple[int, int]:
    """(registered, free) servers of ``key`` on the tracker now (its summary)."""
    from tvm.rpc import base

    sock = _tracker_socket(tracker)
    try:
        base.sendjson(sock, [base.TrackerCode.SUMMARY])
        _quick_ack(sock)
        answer = base.recvjson(sock)
    finally:
        sock.close()
    summary = answer[1]
    registered = sum(1 for s in summary["server_info"] if s.get("key") == f"server:{key}")
    return registered, int(summary["queue_info"].get(key, {}).get("free", 0))


def free_servers(tracker: Tuple[str, int], key: str) -> int:
    """How many servers of ``key`` the tracker has free now."""
    return count_servers(tracker, key)[1]


@dataclass
class Measurement:
    """What a server answered for one run: outputs by name, the report, the time summary its runner
    printed, the per-step profile (when asked for) and the server's name, key, device and board."""

    outputs: Dict[str, np.ndarray]
    report: dict
    time_summary: str
    profile: Optional[object]
    server: dict


def _call(session, project_tar: bytes, inputs_npz: bytes, meta: dict, number: int, repeat: int,
          profile: bool) -> Measurement:
    """One :data:`RUN_FUNC` call on an open session."""
    from .profile import StepCost, StepProfile

    start = time.perf_counter()
    run = session.get_function(RUN_FUNC)
    blob = run(bytearray(project_tar), bytearray(inputs_npz),
               json.dumps({"number": number, "repeat": repeat, "profile": profile}))
    arrays, record = _unpack(blob)
    # The client's view of the call: less the server's phases, what the upload and RPC itself cost.
    record["report"].setdefault("rpc", {})["call_wall_s"] = round(time.perf_counter() - start, 4)
    names = [m["name"] for m in meta["outputs"]]
    if record["outputs"] != names:
        raise TinyEngineError(f"the server answered outputs {record['outputs']}, the model has {names}")
    steps = None
    if record.get("profile") is not None:
        p = dict(record["profile"])
        rows = [StepCost(**{k: v for k, v in s.items() if k != "macs_per_unit"}) for s in p.pop("steps")]
        fields = {k: p[k] for k in ("model", "runner", "unit", "inferences", "mark_cost", "profiled_total",
                                    "plain_total", "note")}
        steps = StepProfile(steps=rows, **fields)
    return Measurement({n: arrays[f"output_{i}"] for i, n in enumerate(names)}, record["report"],
                       record["time_summary"], steps, record["server"])


def _remote_error(exc: BaseException, server: str = "") -> str:
    """A remote failure in one line: the server's message (its first line, and the first later
    ``error:`` line, e.g. the compiler's diagnostic), or a lost connection said as such."""
    text = str(exc)
    header = "Error caught from RPC call:"
    if header in text:
        text = text.split(header, 1)[1]
    lines = [ln.strip() for ln in text.splitlines()
             if ln.strip() and not ln.strip().startswith(("File ", "Traceback", "^"))]
    if "kShutdown" in text or "connection" in text.lower() and "closed" in text.lower() or not lines:
        reason = "the connection to the server was lost (the server died or ended the session)"
    else:
        reason = lines[0]
        detail = next((ln for ln in lines[1:] if re.search(r"(^|[\s:])error:", ln, re.IGNORECASE)), None)
        if detail:
            reason += " " + detail
    return f"{server}: {reason}" if server else reason


class RpcRunner(Runner):
    """A :class:`~.runner.Runner` on a server of the farm: opening it asks the tracker for a free
    server of ``key`` and holds that session (the device) until :meth:`close`.

    ``project_dir``: a compiled project's directory. ``profile``: every run asks for a profile build
    (:meth:`profile` then gives the last run's steps). ``request_timeout``: seconds to wait for a
    free server. The device options (QEMU or a board, which board) are the server's.
    """

    def __init__(self, project_dir: str, tracker: str, key: str, *, profile: bool = False, priority: int = 1,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT):
        self.tracker = parse_tracker(tracker) if isinstance(tracker, str) else tuple(tracker)
        self.key = key
        self.meta = read_metadata(project_dir)
        self._tar = project_tar_bytes(project_dir)
        self._profile_build = profile
        self._last: Optional[Measurement] = None
        self._session = request_session(self.tracker, key, priority=priority, timeout=request_timeout)

    def run(self, inputs: Inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """Upload the project and inputs, run on the server's device, read the outputs and report back."""
        check_counts(number, repeat)
        blob = _inputs_blob(self.meta, inputs)
        try:
            m = _call(self._session, self._tar, blob, self.meta, number, repeat, self._profile_build)
        except TinyEngineError:
            raise
        except Exception as exc:  # the server's error, or its death, arrives as a TVM error
            raise TinyEngineError(f"RPC run on a '{self.key}' server failed: {_remote_error(exc)}") from None
        self._last = m
        return m.outputs, m.report

    def format_time(self, report: dict) -> str:
        """The summary the server's runner gave for ``report`` (the last run's), else the device format."""
        if self._last is not None and report is self._last.report:
            return self._last.time_summary
        from .device import format_time

        return format_time(report)

    @property
    def server(self) -> dict:
        """The server of the session: name, key, device and board (asked on first use)."""
        if self._last is not None:
            return self._last.server
        return json.loads(self._session.get_function(INFO_FUNC)())

    def profile(self):
        """The last run's per-step profile (open the runner with ``profile=True``)."""
        if self._last is None or self._last.profile is None:
            raise TinyEngineError("no profile: open the RPC runner with profile=True and run it first")
        return self._last.profile

    def close(self) -> None:
        """End the session: the server takes the next client."""
        self._session = None  # dropping the last reference closes TVM's connection


# --------------------------------------------------------------------------- parallel measurement
@dataclass
class MeasureJob:
    """One measurement for :meth:`RpcPool.measure_many`: a compiled project (directory or .tar),
    its inputs (by name, positional or one array), ``number`` x ``repeat`` and a profile flag."""

    project: str
    inputs: Inputs
    number: int = 1
    repeat: int = 1
    profile: bool = False


@dataclass
class MeasureResult:
    """A job's outcome: outputs, report and profile when it succeeded, else ``error`` (the reason).
    ``attempts``: one line per try, ``server: ok`` or ``server: reason``; ``server``: where it succeeded."""

    outputs: Optional[Dict[str, np.ndarray]] = None
    report: Optional[dict] = None
    profile: Optional[object] = None
    time_summary: str = ""
    server: Optional[str] = None
    error: Optional[str] = None
    attempts: List[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when the job was measured."""
        return self.error is None


class RpcPool:
    """Runs batches of measurements on every free server of ``key`` (for ``tvmc tune``).

    :meth:`measure_many` starts one thread per server it can use (the servers registered with
    the tracker under ``key`` when the batch starts, capped by ``max_sessions`` and the number of
    jobs; at least one). Each thread asks the tracker for a session, then takes jobs from one shared queue until
    none is left, so a fast server takes more jobs. Failure semantics:

    * a job whose project or inputs are unusable fails at once, without a server;
    * a failed attempt (the server died, its connection broke, or the run raised there) puts the
      job back in the queue once, and the thread drops that session and asks for a new one: a dead
      server is gone from the tracker, so the retry runs on another server;
    * a job that fails twice is reported failed, with both reasons, and the batch goes on;
    * jobs still queued when no thread can get a server within ``request_timeout`` fail with that reason.

    Results come back in job order whatever the order of completion.
    """

    def __init__(self, tracker: str, key: str, *, max_sessions: Optional[int] = None, priority: int = 1,
                 request_timeout: float = DEFAULT_REQUEST_TIMEOUT, attempts: int = 2):
        self.tracker = parse_tracker(tracker, "tracker") if isinstance(tracker, str) else tuple(tracker)
        self.key = key
        self.max_sessions = max_sessions
        self.priority = priority
        self.request_timeout = request_timeout
        self.max_attempts = attempts

    def measure_many(self, jobs: Sequence[MeasureJob],
                     progress: Optional[Callable[[int, MeasureResult], None]] = None) -> List[MeasureResult]:
        """Measure ``jobs`` in parallel; one :class:`MeasureResult` per job, in job order.
        ``progress(index, result)`` is called (from a worker thread, so it must be quick and not
        raise) as each job ends. Raises :class:`TinyEngineError` only when the tracker cannot be reached."""
        import queue
        import tempfile

        results: List[Optional[MeasureResult]] = [None] * len(jobs)
        payloads = {}
        with tempfile.TemporaryDirectory(prefix="tinyengine-rpc-") as tmp:
            tars: Dict[str, Tuple[bytes, dict]] = {}
            for i, job in enumerate(jobs):
                try:
                    if job.project not in tars:
                        d = open_project(job.project, os.path.join(tmp, str(len(tars))))
                        tars[job.project] = (project_tar_bytes(d), read_metadata(d))
                    tar, meta = tars[job.project]
                    check_counts(job.number, job.repeat)
                    payloads[i] = (tar, _inputs_blob(meta, job.inputs), meta)
                except TinyEngineError as exc:
                    results[i] = MeasureResult(error=f"job {i}: {exc}")
        todo: "queue.Queue[int]" = queue.Queue()
        for i in payloads:
            todo.put(i)
        lock = threading.Lock()
        left = [len(payloads)]
        done = threading.Event()
        if not payloads:
            done.set()
        tries: Dict[int, List[str]] = {i: [] for i in payloads}
        no_server: List[str] = []  # why threads could not get a session

        def finish(i: int, result: MeasureResult) -> None:
            with lock:
                results[i] = result
                left[0] -= 1
                if left[0] == 0:
                    done.set()
            if progress is not None:
                progress(i, result)

        def worker() -> None:
            session = None
            where = None  # the session's server, by its name
            while not done.is_set():
                if session is None:
                    try:
                        session = request_session(self.tracker, self.key, priority=self.priority,
                                                  timeout=self.request_timeout, cancel=done)
                    except TinyEngineError as exc:
                        no_server.append(str(exc))
                        return  # no server for this thread; the jobs stay for the others
                    if session is None:
                        return
                    try:
                        where = json.loads(session.get_function(INFO_FUNC)())["name"]
                    except Exception:  # gone between the grant and the question: ask the tracker again
                        session = None
                        continue
                try:
                    i = todo.get(timeout=0.1)  # a retried job may still come back: keep polling until done
                except queue.Empty:
                    continue
                tar, blob, meta = payloads[i]
                job = jobs[i]
                try:
                    m = _call(session, tar, blob, meta, job.number, job.repeat, job.profile)
                except Exception as exc:
                    session = None  # maybe dead: never reuse it
                    tries[i].append(_remote_error(exc, where))
                    if len(tries[i]) < self.max_attempts:
                        todo.put(i)
                    else:
                        finish(i, MeasureResult(error=f"failed {len(tries[i])} times: " + "; ".join(tries[i]),
                                                attempts=list(tries[i])))
                    continue
                where = m.server.get("name")
                tries[i].append(f"{where}: ok")
                finish(i, MeasureResult(m.outputs, m.report, m.profile, m.time_summary, m.server.get("name"),
                                        attempts=list(tries[i])))

        # An unreachable tracker is the batch's problem, not a job's: it raises here.
        threads_wanted = len(payloads) and min(len(payloads), self.max_sessions or 1 << 30,
                                               max(1, self.servers()))
        threads = [threading.Thread(target=worker, daemon=True, name=f"tinyengine-rpc-{n}")
                   for n in range(threads_wanted)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for i in payloads:
            if results[i] is None:
                reason = ((no_server[-1] if no_server else f"no server with key '{self.key}' was granted")
                          + (f" (earlier: {'; '.join(tries[i])})" if tries[i] else ""))
                results[i] = MeasureResult(error=reason, attempts=list(tries[i]))
        return results  # type: ignore[return-value]

    def servers(self) -> int:
        """The servers registered under the key (at least 1: an odd summary leaves it to the tracker)."""
        # Registered, not only free: a server that just ended a session is busy for a moment before
        # it registers again, and a thread waiting for it costs nothing (it is cancelled when done).
        try:
            return max(count_servers(self.tracker, self.key))
        except (OSError, KeyError, IndexError, TypeError):  # an odd summary: one thread, the tracker decides
            return 1
