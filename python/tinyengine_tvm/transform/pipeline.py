"""The default optimization pipeline and its options (what ``tvmc compile`` runs).

Passes run after integer lowering, in this order: FoldPadIntoConv,
PatchBasedInference, InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule.  Each can be disabled by name, and
options are given as ``{"PassName.option": value}`` (``--pass-config``).
"""
from __future__ import annotations

import math
from typing import Any, Dict, Iterable, List, Optional

import tvm

from ..errors import TinyEngineError, UsageError
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


# Each pass option: (type, check, what the check requires).  Checked before any
# pass runs, so a bad value is a clear error, not a traceback mid-compile.
_OPTIONAL = object()
PASS_OPTIONS: Dict[str, Dict[str, tuple]] = {
    "FoldPadIntoConv": {},
    "PatchBasedInference": {
        "max_mac_overhead": (float, lambda v: 0 <= v <= 100, "a number from 0 to 100 (fraction of extra MACs)"),
        "max_patches": (int, lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
        "split": (int, lambda v: v is _OPTIONAL or v >= 0, "an operator index >= 0, or null"),
        "patches": (int, lambda v: v is _OPTIONAL or 1 <= v <= 64, "an integer from 1 to 64, or null"),
    },
    "InplaceDepthwise": {"only_if_smaller": (bool, lambda v: True, "true or false")},
    "InplaceElementwise": {"only_if_smaller": (bool, lambda v: True, "true or false")},
    "MemoryAwareSchedule": {"max_states": (int, lambda v: 1 <= v <= 10_000_000, "an integer from 1 to 10000000")},
}


def _check_option(pass_name: str, option: str, value: Any) -> None:
    known = PASS_OPTIONS[pass_name]
    if option not in known:
        raise UsageError(f"{pass_name} has no option '{option}'; its options are {sorted(known) or 'none'}")
    kind, check, wants = known[option]
    if value is None and option in ("split", "patches"):
        return
    ok = (isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
    if not ok or not check(value):
        raise UsageError(f"{pass_name}.{option}={value!r}: must be {wants}")


def parse_pass_config(items: Iterable[str]) -> Dict[str, Any]:
    """Parse ``Pass.option=value`` strings (values as JSON when they parse, else text)."""
    import json

    config: Dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or "." not in key:
            raise UsageError(f"--pass-config '{item}': expected Pass.option=value")
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
        raise UsageError(f"unknown pass(es) {sorted(unknown)}; passes are {list(PASS_FACTORIES)}")
    config = dict(config or {})
    for key, value in config.items():
        pass_name, dot, option = str(key).partition(".")
        if not dot or pass_name not in PASS_OPTIONS:
            raise UsageError(f"pass option '{key}': expected Pass.option with a pass of {list(PASS_FACTORIES)}")
        _check_option(pass_name, option, value)
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
