"""The default optimization pipeline and its options (what ``tvmc compile`` runs).

Passes run after integer lowering, in this order: FoldPadIntoConv,
PatchBasedInference, InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule.  Each can be disabled by name, and
options are given as ``{"PassName.option": value}`` (``--pass-config``).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import tvm

from ..errors import TinyEngineError
from .fold_pad import FoldPadIntoConv
from .inplace_depthwise import InplaceDepthwise
from .inplace_elementwise import InplaceElementwise
from .memory_schedule import MemoryAwareSchedule
from .patch_inference import PatchBasedInference

PASS_FACTORIES = {
    "FoldPadIntoConv": FoldPadIntoConv,
    "PatchBasedInference": PatchBasedInference,
    "InplaceDepthwise": InplaceDepthwise,
    "InplaceElementwise": InplaceElementwise,
    "MemoryAwareSchedule": MemoryAwareSchedule,
}


def parse_pass_config(items: Iterable[str]) -> Dict[str, Any]:
    """Parse ``Pass.option=value`` strings (values as JSON when they parse, else text)."""
    import json

    config: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise TinyEngineError(f"--pass-config '{item}': expected Pass.option=value")
        try:
            config[key] = json.loads(value)
        except ValueError:
            config[key] = value
    return config


def optimization_passes(disabled: Iterable[str] = (), config: Optional[Dict[str, Any]] = None) -> List[tvm.transform.Pass]:
    """Instances of the default passes minus ``disabled``, configured from ``config``."""
    disabled = set(disabled)
    unknown = disabled - set(PASS_FACTORIES)
    if unknown:
        raise TinyEngineError(f"unknown pass(es) {sorted(unknown)}; passes are {list(PASS_FACTORIES)}")
    config = dict(config or {})
    passes = []
    for name, factory in PASS_FACTORIES.items():
        options = {k.split(".", 1)[1]: v for k, v in config.items() if k.split(".", 1)[0] == name}
        for k in options:
            config.pop(f"{name}.{k}")
        if name in disabled:
            continue
        try:
            passes.append(factory(**options))
        except TypeError as exc:
            raise TinyEngineError(f"bad option for {name}: {exc}") from exc
    if config:
        raise TinyEngineError(f"--pass-config names unknown pass options: {sorted(config)}")
    return passes
