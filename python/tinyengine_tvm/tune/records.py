"""Tuning records: one JSON object per line, one line per measured configuration.

A record holds the configuration (:class:`~.space.TuningConfig`), the model it
was measured on (file name and SHA-256 of its bytes), the board and budget it
was checked against, the runner, the measured latency and its unit, the arena
and flash of the plan, whether it fits, every layer's measured cost keyed by
its layer signature (equal for the same layer in any model), and the versions
of the tools that produced it.

``tvmc compile --tuning-records FILE`` applies :func:`best_record`: the fastest
record of the same model (by content, not name) that fits the budget.
"""
from __future__ import annotations

import hashlib
import json
import os
import platform
import subprocess
import time
from typing import Dict, Iterable, List, Optional

from ..errors import UsageError
from .space import TuningConfig

#: Format of a record line.
RECORD_VERSION = 1


def model_sha256(path: str) -> str:
    """SHA-256 of a model file's bytes: what ties a record to its model."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _tool_version(argv: List[str]) -> str:
    try:
        out = subprocess.run(argv, capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return "absent"
    return out.splitlines()[0].strip() if out else "unknown"


_TOOLS: Optional[Dict[str, str]] = None


def tool_versions() -> Dict[str, str]:
    """Versions of what a measurement depends on (computed once per process)."""
    global _TOOLS
    if _TOOLS is None:
        from importlib import metadata

        import tvm

        try:  # the installed distribution's (no import of the package: compiler imports this module)
            ours = metadata.version("tinyengine-tvm")
        except metadata.PackageNotFoundError:
            ours = "not installed"
        _TOOLS = {"tinyengine_tvm": ours, "tvm": tvm.__version__, "python": platform.python_version(),
                  "arm-none-eabi-gcc": _tool_version(["arm-none-eabi-gcc", "--version"]),
                  "qemu-system-arm": _tool_version(["qemu-system-arm", "--version"])}
    return dict(_TOOLS)


def make_record(*, model: str, sha256: str, board: str, core: Optional[str], sram_budget: int, flash_budget: int,
                runner: str, config: TuningConfig, latency: Optional[float], unit: str, arena_bytes: int,
                flash_bytes: Optional[int], fits: bool, layers: Iterable, error: Optional[str] = None) -> dict:
    """A record (see the module docstring); ``layers``: (signature, cost) pairs."""
    return {"version": RECORD_VERSION, "model": model, "model_sha256": sha256, "board": board, "core": core,
            "sram_budget": sram_budget, "flash_budget": flash_budget, "runner": runner,
            "config": config.to_json(), "config_key": config.key, "latency": latency, "unit": unit,
            "arena_bytes": arena_bytes, "flash_bytes": flash_bytes, "fits": fits,
            "layers": [[sig, cost] for sig, cost in layers], "error": error, "tools": tool_versions(),
            "time": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


def append_records(path: str, records: Iterable[dict]) -> None:
    """Append records as JSON lines (flushed per line: a stopped run keeps what it measured)."""
    with open(path, "a") as f:
        for r in records:
            f.write(json.dumps(r, sort_keys=True) + "\n")
            f.flush()


def load_records(path: str) -> List[dict]:
    """Every record of a file; a malformed line is an error naming the line."""
    if not os.path.isfile(path):
        raise UsageError(f"tuning records {path}: no such file")
    out = []
    with open(path) as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                r = json.loads(line)
            except json.JSONDecodeError as exc:
                raise UsageError(f"tuning records {path}, line {n}: not JSON ({exc.msg})") from None
            if not isinstance(r, dict) or r.get("version") != RECORD_VERSION or "config" not in r:
                raise UsageError(f"tuning records {path}, line {n}: not a version-{RECORD_VERSION} tuning record")
            out.append(r)
    return out


def best_record(records: Iterable[dict], sha256: str, *, sram_budget: Optional[int] = None,
                core: Optional[str] = None) -> Optional[dict]:
    """The fastest fitting, measured record of the model with this SHA-256 (and core, when
    given) whose arena is within ``sram_budget`` (when given); None when there is none."""
    best = None
    for r in records:
        if r.get("model_sha256") != sha256 or not r.get("fits") or r.get("latency") is None:
            continue
        if core is not None and r.get("core") != core:
            continue
        if sram_budget is not None and r["arena_bytes"] > sram_budget:
            continue
        if best is None or r["latency"] < best["latency"]:
            best = r
    return best


def known_layer_costs(records: Iterable[dict], core: Optional[str], unit: str) -> Dict[str, float]:
    """{layer signature: cost} from the ``layers`` of measured records on ``core`` in
    ``unit``, whatever the model: a layer measured once need not be predicted again in
    any model that shares it (a signature fixes the kernel and every shape). Where a
    signature was measured more than once the median is kept."""
    seen: Dict[str, List[float]] = {}
    for r in records:
        if r.get("latency") is None or r.get("core") != core or r.get("unit") != unit:
            continue
        for sig, cost in r.get("layers") or []:
            if cost is not None:
                seen.setdefault(str(sig), []).append(float(cost))
    return {sig: sorted(v)[len(v) // 2] for sig, v in seen.items()}
