"""The host side of the MLPerf Tiny / EEMBC benchmark serial protocol.

What the mlcommons/tiny runner (``benchmark/runner``) does with a DUT in
performance and accuracy modes, written for this project: ``name``,
``profile``, ``db load N`` + ``db HEX`` (31 bytes per command, as the runner
sends them), ``infer N W`` (``m-lap-us-`` timestamps around N inferences,
then ``m-results-[...]``), ``results``; every command ends with ``%`` and its
output with ``m-ready``. It checks a board (or QEMU) running a project built
with ``mlperf=true`` before the official runner is pointed at it, and the
tests use it over QEMU's UART.

    tvmc micro create-project OUT COMPILED baremetal --project-option mlperf=true mlperf_model=kws01
    python -m tinyengine_tvm.micro.mlperf_host --qemu OUT --mode p      # the official runner's sequence
    python -m tinyengine_tvm.micro.mlperf_host --qemu COMPILED --mlperf-model kws01 --mode a --count 5
    python -m tinyengine_tvm.micro.mlperf_host --port /dev/ttyACM0 --project APP_OR_COMPILED --mode p

With ``--qemu`` the firmware runs under qemu-system-arm with its UART on a
pseudo-terminal opened with pyserial, as the official runner opens a board's
port (``scripts/mlperf_runner_qemu.py`` points the official runner itself at
that pty).

Performance: throughput = N / (end - start) of the DUT's own microsecond
timestamps, over ``loops`` windows (the runner uses 5), median reported.
Accuracy: each sample loaded and inferred once; the printed results are
compared with the host build of the same generated C (bit-exact with TFLM),
formatted exactly as the firmware formats them.
"""
from __future__ import annotations

import json
import os
import re
import statistics
import sys
import time
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import TinyEngineError
from ..runtime.protocol import LinkError, LinkTimeout
from ..runtime.transport import Transport
from .model_desc import MlperfOptions, mlperf_default_baud, read_metadata

READY = "m-ready"
DB_CHUNK = 31  # bytes per 'db' command, as the runner sends without a power manager


# --------------------------------------------------------------------------- the DUT
class EembcDut:
    """Commands to a DUT speaking the EEMBC protocol over a Transport."""

    def __init__(self, transport: Transport, timeout: float = 10.0):
        self.transport = transport
        self.timeout = timeout
        self._buf = b""
        self.log: List[str] = []

    def _lines(self, deadline: float) -> List[str]:
        data = self.transport.read(max(0.0, deadline - time.monotonic()))
        self._buf += data
        *lines, self._buf = self._buf.split(b"\n")
        out = [l.replace(b"\r", b"").replace(b"\0", b"").decode("ascii", "replace") for l in lines]
        self.log.extend(out)
        return out

    def drain(self, quiet: float = 0.3, limit: float = 5.0) -> List[str]:
        """Read what the DUT says on its own (boot lines) until it is quiet."""
        end, got = time.monotonic() + limit, []
        while time.monotonic() < end:
            before = len(self._buf)
            lines = self._lines(time.monotonic() + quiet)
            got += lines
            if not lines and len(self._buf) == before:
                break
        return got

    def command(self, cmd: str, timeout: Optional[float] = None) -> List[str]:
        """Send ``cmd%`` and return the lines up to ``m-ready`` (excluded)."""
        self.transport.write(cmd.encode("ascii") + b"%")
        deadline = time.monotonic() + (timeout or self.timeout)
        out: List[str] = []
        while time.monotonic() < deadline:
            for line in self._lines(deadline):
                if line.strip() == READY:
                    return out
                if line:
                    out.append(line.strip())
        raise LinkTimeout(f"no '{READY}' after '{cmd}' within {timeout or self.timeout:g} s; got: {out[-5:]}")

    def name(self) -> str:
        for l in self.command("name"):
            m = re.match(r"^m-name-dut-\[([^]]+)\]$", l)
            if m:
                return m.group(1)
        raise LinkError("the DUT did not answer 'name' with m-name-dut-[...]")

    def profile(self) -> Tuple[str, str]:
        prof = model = ""
        for l in self.command("profile"):
            m = re.match(r"^m-(profile|model)-\[([^]]+)\]$", l)
            if m and m.group(1) == "profile":
                prof = m.group(2)
            elif m:
                model = m.group(2)
        if not model:
            raise LinkError("the DUT did not report m-model-[...] for 'profile'")
        return prof, model

    def load(self, data: bytes) -> None:
        lines = self.command(f"db load {len(data)}")
        if not any(l == f"m-[Expecting {len(data)} bytes]" for l in lines):
            raise LinkError(f"db load {len(data)}: {lines}")
        done = False
        for i in range(0, len(data), DB_CHUNK):
            lines = self.command("db " + data[i:i + DB_CHUNK].hex())
            errors = [l for l in lines if l.startswith(("e-", "Supplied buffer size"))]
            if errors:
                raise LinkError(f"db: {errors}")
            done = "m-load-done" in lines
        if not done:
            raise LinkError("the DUT did not confirm m-load-done")

    def infer(self, iterations: int, warmups: int, timeout: float = 60.0) -> dict:
        lines = self.command(f"infer {iterations} {warmups}", timeout)
        # "Input db has ..." (the reference's words, without e-): the inference ran on an older input.
        errors = [l for l in lines if l.startswith(("e-", "Input db has"))]
        if errors:
            raise LinkError(f"infer: {errors}")
        laps = [int(m.group(1)) for l in lines for m in [re.match(r"^m-lap-us-(\d+)$", l)] if m]
        results = self._results(lines)
        if len(laps) != 2 or results is None:
            raise LinkError(f"infer: expected two m-lap-us lines and m-results, got {lines}")
        return {"start_us": laps[0], "end_us": laps[1], "elapsed_us": laps[1] - laps[0], "results": results,
                "results_text": next(l for l in lines if l.startswith("m-results-"))}

    def results(self) -> List[float]:
        r = self._results(self.command("results"))
        if r is None:
            raise LinkError("no m-results-[...] line")
        return r

    @staticmethod
    def _results(lines: Sequence[str]) -> Optional[List[float]]:
        for l in lines:
            m = re.match(r"^m-results-\[([^]]*)\]$", l)
            if m:
                return [float(x) for x in m.group(1).split(",") if x.strip()]
        return None


# --------------------------------------------------------------------------- conversions
def db_bytes(meta: dict, inputs: Dict[str, np.ndarray], opts: MlperfOptions) -> bytes:
    """What the runner sends for these input tensors (the inverse of the DUT's th_load_tensor)."""
    out = b""
    for d in meta["inputs"]:
        a = np.asarray(inputs[d["name"]]).reshape(d["shape"])
        if opts.input_mode == "raw":
            out += a.astype(d["dtype"]).tobytes()
        elif opts.input_mode == "uint8_minus_128":
            out += ((a.astype(np.int16) + 128).astype(np.uint8) if d["dtype"] == "int8" else a.astype(np.uint8)).tobytes()
        else:
            if d.get("scale") is None:
                out += a.astype("<f4").tobytes()
            else:
                f = (a.astype(np.float32) - np.float32(d["zero_point"])) * np.float32(d["scale"])
                out += f.astype("<f4").tobytes()
    return out


def inputs_from_db(meta: dict, db: bytes, opts: MlperfOptions) -> Dict[str, np.ndarray]:
    """The input tensors the DUT makes of ``db`` (its th_load_tensor, bit for bit)."""
    out, pos = {}, 0
    for d in meta["inputs"]:
        n = int(np.prod(d["shape"]))
        dt = np.dtype(d["dtype"])
        if opts.input_mode == "raw":
            a = np.frombuffer(db, dtype=dt, count=n, offset=pos)
            pos += n * dt.itemsize
        elif opts.input_mode == "uint8_minus_128":
            u = np.frombuffer(db, dtype=np.uint8, count=n, offset=pos)
            a = (u.astype(np.int16) - 128).astype(np.int8) if d["dtype"] == "int8" else u.astype(dt)
            pos += n
        else:
            f = np.frombuffer(db, dtype="<f4", count=n, offset=pos)
            pos += 4 * n
            if d["dtype"] == "float32" or d.get("scale") is None:
                a = f.astype(dt)
            else:
                r = (f / np.float32(d["scale"])).astype(np.float64)    # float division, then double
                q = np.trunc(np.where(r >= 0, r + 0.5, r - 0.5)) + int(d["zero_point"])
                lo, hi = (0, 255) if d["dtype"] == "uint8" else (-128, 127)
                a = np.clip(q, lo, hi).astype(dt)
        out[d["name"]] = a.reshape(d["shape"]).copy()
    if pos != len(db):
        raise TinyEngineError(f"{len(db)} bytes of db for {pos} bytes of input")
    return out


def fmt_printf3(v) -> str:
    """A float32 as C's printf("%0.3f") prints it (correctly rounded, ties to even; Python's too)."""
    return f"{float(np.float32(v)):.3f}"


def _c_trunc(f) -> int:
    """static_cast<int> of a float32 (toward zero)."""
    return int(float(f))


def _c_mod10(i: int) -> int:
    """C's i % 10 (the sign of i)."""
    return -(-i % 10) if i < 0 else i % 10


def fmt_trunc3(v) -> str:
    """A float32 as the kws01 reference prints it: "0.%d" of (int)(v*10), then
    (int)(v*100)%10 and (int)(v*1000)%10, products in float32 (1.0 -> 0.1000)."""
    f = np.float32(v)
    with np.errstate(over="ignore"):
        a, b, c = (_c_trunc(f * np.float32(k)) for k in (10, 100, 1000))
    return f"0.{a}{_c_mod10(b)}{_c_mod10(c)}"


def fmt_value(v, results_format: str = "printf3") -> str:
    """One value of m-results-[...] in the benchmark's format."""
    return fmt_trunc3(v) if results_format == "trunc3" else fmt_printf3(v)


def _dequant(desc: dict, a: np.ndarray) -> np.ndarray:
    flat = np.asarray(a).reshape(-1)
    if desc["dtype"] == "float32":
        return flat.astype(np.float32)
    if desc.get("scale") is None:
        return flat.astype(np.int64).astype(np.float32)
    return (flat.astype(np.int64) - int(desc["zero_point"])).astype(np.float32) * np.float32(desc["scale"])


def expected_results(meta: dict, outputs: Dict[str, np.ndarray], opts: MlperfOptions,
                     db: Optional[bytes] = None) -> str:
    """The m-results-[...] line the firmware prints for these outputs (per
    benchmark, as the reference submissions print it)."""
    comma = opts.results_format == "printf3_comma"
    if opts.results == "mse":
        out = _dequant(meta["outputs"][0], outputs[meta["outputs"][0]["name"]])
        x = np.frombuffer(db, dtype="<f4")
        n = min(out.size, x.size)
        s = np.float32(0)
        for k in range(n):
            diff = np.float32(out[k] - x[k])
            s = np.float32(s + np.float32(diff * diff))
        vals = [fmt_value(np.float32(s / np.float32(n)) if n else 0.0, opts.results_format)]
    else:
        vals = [fmt_value(v, opts.results_format) for d in meta["outputs"] for v in _dequant(d, outputs[d["name"]])]
    return "m-results-[" + "".join(v + "," for v in vals) + "]" if comma else "m-results-[" + ",".join(vals) + "]"


# --------------------------------------------------------------------------- modes
def performance(dut: EembcDut, data: bytes, iterations: int, warmups: int, loops: int = 5) -> dict:
    """The runner's performance mode: ``loops`` x (download, infer N W)."""
    windows = []
    for _ in range(loops):
        dut.load(data)
        r = dut.infer(iterations, warmups)
        if r["elapsed_us"] <= 0:
            raise LinkError(f"non-increasing timestamps: {r['start_us']} -> {r['end_us']}")
        windows.append({"elapsed_us": r["elapsed_us"], "throughput": iterations / (r["elapsed_us"] / 1e6),
                        "results": r["results_text"]})
    thr = [w["throughput"] for w in windows]
    return {"mode": "performance", "iterations": iterations, "warmups": warmups, "windows": windows,
            "median_throughput": statistics.median(thr),
            "median_latency_ms": 1e3 / statistics.median(thr)}


def accuracy(dut: EembcDut, meta: dict, samples: List[bytes], opts: MlperfOptions, reference) -> dict:
    """Each sample (the bytes the runner would send) downloaded and inferred
    once; results compared with ``reference(inputs) -> outputs`` on the
    inputs the DUT makes of those bytes."""
    rows, exact = [], 0
    for i, db in enumerate(samples):
        dut.load(db)
        r = dut.infer(1, 0)
        want = expected_results(meta, reference(inputs_from_db(meta, db, opts)), opts, db)
        ok = r["results_text"] == want
        exact += ok
        rows.append({"sample": i, "device": r["results_text"], "host": want, "match": ok})
    return {"mode": "accuracy", "samples": len(samples), "exact_matches": exact, "rows": rows}


# --------------------------------------------------------------------------- command line
def _samples(meta: dict, opts: MlperfOptions, path: Optional[str], count: int, seed: int) -> List[bytes]:
    """db blobs: from an .npz/.npy (one sample per row; float rows are sent as
    float32 with mlperf_input=float32, else converted to the input tensor) or random."""
    if path:
        data = np.load(path)
        arr = data if isinstance(data, np.ndarray) else data[list(data.keys())[0]]
        first = meta["inputs"][0]
        n = int(np.prod(first["shape"]))
        arr = arr.reshape(-1, n)[: count or None]
        if opts.input_mode == "float32" and arr.dtype.kind == "f":
            return [row.astype("<f4").tobytes() for row in arr]
        return [db_bytes(meta, {first["name"]: row.astype(first["dtype"]).reshape(first["shape"])}, opts)
                for row in arr]
    from ..runtime.project import random_inputs

    return [db_bytes(meta, random_inputs(meta["inputs"], seed + i), opts) for i in range(count)]


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tinyengine_tvm.micro.mlperf_host",
                                 description="Talk to an MLPerf Tiny DUT (performance or accuracy mode).")
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="the board's serial port")
    where.add_argument("--qemu", metavar="PROJECT", help="run the MLPerf firmware under QEMU: a project of "
                       "'tvmc micro create-project ... baremetal --project-option mlperf=true' (its firmware.elf), "
                       "or a compiled model (its firmware is built)")
    ap.add_argument("--project", help="compiled model, or the board's project of tvmc micro create-project "
                    "(metadata, MLPerf options)")
    ap.add_argument("--baud", type=int, help="the board's baud rate (default: what the official runner's device "
                    "files expect for the benchmark: 921600 for ad01, else 115200)")
    ap.add_argument("--board", default="mps2-an500", help="QEMU board for --qemu")
    ap.add_argument("--link", default="pty", choices=["tcp", "pty"],
                    help="QEMU UART link for --qemu: a pseudo-terminal opened with pyserial like a board's port "
                         "(pty, as the official runner would), or a loopback socket")
    ap.add_argument("--mlperf-model", help="for --qemu: kws01, ic01, vww01, ad01 or a name")
    ap.add_argument("--mlperf-input", choices=["raw", "uint8_minus_128", "float32"])
    ap.add_argument("--mlperf-results", choices=["vector", "mse"])
    ap.add_argument("--mode", choices=["p", "a"], default="a", help="p: performance, a: accuracy")
    ap.add_argument("--inputs", help=".npy/.npz of samples (one per row) for the model's input; default random")
    ap.add_argument("--count", type=int, default=5, help="samples (accuracy) ")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--warmups", type=int, default=5)
    ap.add_argument("--loops", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--timeout", type=float, default=30.0)
    ap.add_argument("--json", help="write the results here")
    args = ap.parse_args(argv)
    try:
        return _main(args)
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def _main(args) -> int:
    import tempfile

    from ..runtime.host import HostModel

    project = args.qemu or args.project
    if not project:
        raise TinyEngineError("--project is needed with --port (the compiled model or its project)")
    if not os.path.isdir(project) and not (args.qemu and os.path.isfile(project)):
        raise TinyEngineError(f"{project}: no such project directory")
    info = {}
    if os.path.isfile(os.path.join(project, "project.json")):
        info = json.load(open(os.path.join(project, "project.json")))
        model_dir = os.path.join(project, "model")
    else:
        model_dir = project
    meta = read_metadata(model_dir)
    stored = info.get("mlperf")
    if info and not stored:
        raise TinyEngineError(f"{project} was created without --project-option mlperf=true: its firmware speaks "
                              "the tinyengine protocol (tvmc run --device=serial)")
    prebuilt = os.path.join(project, "firmware.elf") if info.get("platform") == "baremetal" else None
    with tempfile.TemporaryDirectory(prefix="tinyengine-mlperf-") as tmp:
        link = None
        opts = MlperfOptions(**stored) if stored else None
        if args.qemu:
            from ..runtime.emulator import QemuSerial
            from .baremetal import build_serial_firmware

            if prebuilt:
                if any((args.mlperf_model, args.mlperf_input, args.mlperf_results)):
                    raise TinyEngineError("--mlperf-* options: the project's firmware is built already "
                                          "(its project.json says how)")
                elf, board = prebuilt, info.get("board", args.board)
            else:
                if opts is None or any((args.mlperf_model, args.mlperf_input, args.mlperf_results)):
                    opts = MlperfOptions.create(args.mlperf_model or meta["model"], args.mlperf_input,
                                                args.mlperf_results)
                elf, board = build_serial_firmware(model_dir, args.board, os.path.join(tmp, "build"),
                                                   mlperf=opts), args.board
            link = QemuSerial(elf, board, link=args.link, timeout=args.timeout, expect_boot=False)
            transport = link.transport
            if link.pty:
                print(f"QEMU {board}: the DUT's UART is {link.pty}")
        else:
            from ..runtime.transport import SerialTransport

            version = (opts.model_version if opts else args.mlperf_model) or meta["model"]
            transport = SerialTransport(args.port, args.baud or mlperf_default_baud(version))
        try:
            dut = EembcDut(transport, args.timeout)
            dut.drain()
            name = dut.name()
            prof, model = dut.profile()
            if opts is None:
                opts = MlperfOptions.create(model, args.mlperf_input, args.mlperf_results)
            if model != opts.model_version:
                raise TinyEngineError(f"the DUT reports model '{model}', expected '{opts.model_version}'")
            print(f"DUT {name}: {prof}, model {model} (input {opts.input_mode}, results {opts.results})")
            samples = _samples(meta, opts, args.inputs, args.count, args.seed)
            if args.mode == "p":
                res = performance(dut, samples[0], args.iterations, args.warmups, args.loops)
                for i, w in enumerate(res["windows"]):
                    print(f"window {i + 1}: {args.iterations} inferences in {w['elapsed_us'] / 1e6:.6f} s: "
                          f"{w['throughput']:.3f} inf./s")
                print(f"median throughput {res['median_throughput']:.3f} inf./s "
                      f"({res['median_latency_ms']:.3f} ms per inference"
                      + (", QEMU virtual time" if args.qemu else "") + ")")
                ok = True
            else:
                host = HostModel(model_dir, build_dir=os.path.join(tmp, "host"))
                res = accuracy(dut, meta, samples, opts, host.run)
                for r in res["rows"]:
                    print(f"sample {r['sample']}: {'match' if r['match'] else 'MISMATCH'} {r['device']}"
                          + ("" if r["match"] else f" (host {r['host']})"))
                print(f"{res['exact_matches']}/{res['samples']} results identical to the host build")
                ok = res["exact_matches"] == res["samples"]
            if args.json:
                with open(args.json, "w") as f:
                    json.dump(res, f, indent=1)
        finally:
            if link is not None:
                link.close()
            else:
                transport.close()
    return 0 if ok else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
