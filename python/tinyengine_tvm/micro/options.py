"""Reading ``--project-option KEY=VALUE`` values (shared by the Zephyr and bare-metal projects)."""
from __future__ import annotations

from typing import Mapping

from ..errors import TinyEngineError

_TRUE, _FALSE = ("1", "true", "yes", "on"), ("0", "false", "no", "off")


def bool_option(opts: Mapping[str, str], key: str, default: str = "false") -> bool:
    """A true/false option (also 1/0, yes/no, on/off)."""
    v = str(opts.get(key, default)).lower()
    if v in _TRUE:
        return True
    if v in _FALSE:
        return False
    raise TinyEngineError(f"project option {key}={v}: use true or false")


def int_option(opts: Mapping[str, str], key: str, default, lo: int, hi: int) -> int:
    """An integer option in [lo, hi]."""
    v = opts.get(key, str(default))
    try:
        n = int(v)
    except ValueError:
        raise TinyEngineError(f"project option {key}={v}: not an integer") from None
    if not lo <= n <= hi:
        raise TinyEngineError(f"project option {key}={n}: must be {lo}..{hi}")
    return n
