"""Applying tuning records at compile time (``tvmc compile --tuning-records``)."""
from __future__ import annotations

import hashlib
from typing import Any, Dict, Optional, Tuple, Union

from ..errors import UsageError
from .records import best_record, load_records, model_sha256
from .space import TuningConfig


def apply_tuning_records(path: str, model: Union[str, bytes, Any], core: Optional[str],
                         sram_budget: Optional[int]) -> Tuple[dict, Dict[str, Any]]:
    """(what metadata says about the tuning, compile keyword arguments) for ``model``.

    The record is the fastest fitting one of the same model bytes and core whose
    arena is within ``sram_budget``; with none, the default configuration and
    the reason."""
    records = load_records(path)
    if isinstance(model, (bytes, bytearray)):
        sha = hashlib.sha256(bytes(model)).hexdigest()
    elif isinstance(model, str):
        sha = model_sha256(model)
    else:
        raise UsageError("tuning records apply to a model file or its bytes, not an IRModule")
    rec = best_record(records, sha, sram_budget=sram_budget, core=core)
    if rec is None:
        same = [r for r in records if r.get("model_sha256") == sha]
        why = ("no record of this model" if not same else
               f"none of the {len(same)} records of this model is measured, fits"
               + (f" {core}" if core else "") + (f" and a {sram_budget:,} B budget" if sram_budget else ""))
        return {"records": path, "record": None, "reason": why}, TuningConfig().compile_kwargs()
    cfg = TuningConfig.from_json(rec["config"])
    info = {"records": path, "record": rec["config_key"], "config": rec["config"], "latency": rec["latency"],
            "unit": rec["unit"], "runner": rec["runner"], "board": rec["board"], "arena_bytes": rec["arena_bytes"]}
    return info, cfg.compile_kwargs()
