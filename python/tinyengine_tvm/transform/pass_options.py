"""Options of the memory passes, carried by the PassContext (the passes import
this module; ``pipeline`` imports the passes, so they never import ``pipeline``).

Options are PassContext config keys ``tinyengine.<Pass>.<option>`` (typed
table: PASS_OPTIONS; ``--pass-config Pass.option=value`` and
``compile(pass_config={"Pass.option": value})`` name them without the prefix).
TVM 0.27 registers config keys only from C++ (TVM_REGISTER_PASS_CONFIG_OPTION;
no FFI function does it, and ``PassContext(config=...)`` rejects unknown
keys), so these keys are kept here and attached to a PassContext object for
the duration of a ``with`` block: :func:`pass_context` enters a new
PassContext carrying them, :func:`attach_options` adds them to the current
one.  A pass reads them from the ``ctx`` it runs under (:func:`pass_options`),
so a nested plain PassContext sees the defaults, as with TVM's own keys.
"""
from __future__ import annotations

import contextlib
import dataclasses
import json
import math
import threading
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

import tvm

from ..errors import UsageError

CONFIG_PREFIX = "tinyengine."


@dataclasses.dataclass(frozen=True)
class Option:
    """One pass option: its type, default, check, and what the check requires (for errors)."""

    type: type
    default: Any
    check: Callable[[Any], bool]
    wants: str
    nullable: bool = False


# Checked before any pass runs, so a bad value is a clear error, not a traceback mid-compile.
PASS_OPTIONS: Dict[str, Dict[str, Option]] = {
    "FoldPadIntoConv": {},
    "SliceViews": {"only_if_smaller": Option(bool, True, lambda v: True, "true or false")},
    "PatchBasedInference": {
        "max_mac_overhead": Option(float, 0.1, lambda v: 0 <= v <= 100,
                                   "a number from 0 to 100 (fraction of extra MACs)"),
        "max_patches": Option(int, 8, lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
        "split": Option(int, None, lambda v: v >= 0, "an operator index >= 0, or null", nullable=True),
        "patches": Option(int, None, lambda v: 1 <= v <= 64, "an integer from 1 to 64, or null", nullable=True),
        "max_stages": Option(int, 16, lambda v: 1 <= v <= 64, "an integer from 1 to 64"),
        "halo_cache": Option(str, "auto", lambda v: v in ("auto", "all", "on", "columns", "off"),
                             "auto, all, on, columns or off"),
        "count_inputs": Option(bool, True, lambda v: True, "true or false"),
    },
    "InplaceDepthwise": {"only_if_smaller": Option(bool, True, lambda v: True, "true or false")},
    "InplaceElementwise": {"only_if_smaller": Option(bool, True, lambda v: True, "true or false")},
    "MemoryAwareSchedule": {"max_states": Option(int, 20000, lambda v: 1 <= v <= 10_000_000,
                                                 "an integer from 1 to 10000000")},
}


def _check_option(pass_name: str, option: str, value: Any) -> None:
    known = PASS_OPTIONS[pass_name]
    if option not in known:
        raise UsageError(f"{pass_name} has no option '{option}'; its options are {sorted(known) or 'none'}")
    opt = known[option]
    if value is None and opt.nullable:
        return
    kind = opt.type
    ok = (isinstance(value, str) if kind is str else
          isinstance(value, bool) if kind is bool else
          isinstance(value, int) and not isinstance(value, bool) if kind is int else
          isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value))
    if not ok or not opt.check(value):
        raise UsageError(f"{pass_name}.{option}={value!r}: must be {opt.wants}")


def _split_key(key: Any) -> Tuple[str, str]:
    """(pass, option) of ``Pass.option`` or ``tinyengine.Pass.option`` (UsageError otherwise)."""
    text = str(key)
    short = text[len(CONFIG_PREFIX):] if text.startswith(CONFIG_PREFIX) else text
    pass_name, dot, option = short.partition(".")
    if not dot or pass_name not in PASS_OPTIONS:
        raise UsageError(f"pass option '{key}': expected Pass.option with a pass of {list(PASS_OPTIONS)}")
    return pass_name, option


def config_key(pass_name: str, option: str) -> str:
    """The PassContext config key of a pass option."""
    return f"{CONFIG_PREFIX}{pass_name}.{option}"


def normalize_config(config: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Check ``{"Pass.option" or "tinyengine.Pass.option": value}`` and return it
    with PassContext keys (``tinyengine.Pass.option``)."""
    out: Dict[str, Any] = {}
    for key, value in (config or {}).items():
        pass_name, option = _split_key(key)
        _check_option(pass_name, option, value)
        out[config_key(pass_name, option)] = value
    return out


def list_configs() -> Dict[str, Dict[str, Any]]:
    """The tinyengine PassContext keys with type and default (cf. ``PassContext.list_configs()``)."""
    return {config_key(p, o): {"type": opt.type.__name__, "default": opt.default}
            for p, opts in PASS_OPTIONS.items() for o, opt in opts.items()}


def parse_pass_config(items: Iterable[str]) -> Dict[str, Any]:
    """Parse ``Pass.option=value`` strings (values as JSON when they parse, else text)."""
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


# (PassContext, its tinyengine options) for every attach still open, innermost last.
_ATTACHED = threading.local()


def _attached() -> List[Tuple[tvm.transform.PassContext, Dict[str, Any]]]:
    if not hasattr(_ATTACHED, "stack"):
        _ATTACHED.stack = []
    return _ATTACHED.stack


def _options_of(ctx: tvm.transform.PassContext) -> Dict[str, Any]:
    for c, options in reversed(_attached()):
        if c.same_as(ctx):
            return options
    return {}


@contextlib.contextmanager
def attach_options(config: Optional[Dict[str, Any]],
                   ctx: Optional[tvm.transform.PassContext] = None) -> Iterator[tvm.transform.PassContext]:
    """Within the block, ``ctx`` (default: the current PassContext) carries the
    tinyengine options ``config`` (checked; on top of those it already carries)."""
    ctx = ctx if ctx is not None else tvm.transform.PassContext.current()
    entry = (ctx, {**_options_of(ctx), **normalize_config(config)})
    stack = _attached()
    stack.append(entry)
    try:
        yield ctx
    finally:
        stack.remove(entry)


def _is_tinyengine_key(key: str) -> bool:
    return key.startswith(CONFIG_PREFIX) or key.partition(".")[0] in PASS_OPTIONS


@contextlib.contextmanager
def pass_context(config: Optional[Dict[str, Any]] = None, **kwargs) -> Iterator[tvm.transform.PassContext]:
    """``tvm.transform.PassContext(config=..., **kwargs)`` that also accepts the
    tinyengine keys: those are checked and attached to the new context, the
    others go to TVM."""
    config = dict(config or {})
    ours = {k: v for k, v in config.items() if _is_tinyengine_key(str(k))}
    theirs = {k: v for k, v in config.items() if k not in ours}
    with tvm.transform.PassContext(config=theirs or None, **kwargs) as ctx, attach_options(ours, ctx):
        yield ctx


def check_overrides(pass_name: str, overrides: Dict[str, Any]) -> Dict[str, Any]:
    """The constructor arguments of a pass that were given (not None), checked."""
    given = {k: v for k, v in overrides.items() if v is not None}
    for k, v in given.items():
        _check_option(pass_name, k, v)
    return given


def pass_options(pass_name: str, ctx: Optional[tvm.transform.PassContext],
                 overrides: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
    """Every option of ``pass_name`` as it applies under ``ctx``: a constructor
    override, else a config key of the PassContext (registered in TVM, or
    attached here), else the default."""
    ctx = ctx if ctx is not None else tvm.transform.PassContext.current()
    attached = _options_of(ctx)
    tvm_config = ctx.config
    values: Dict[str, Any] = {}
    for option, opt in PASS_OPTIONS[pass_name].items():
        key = config_key(pass_name, option)
        if overrides and option in overrides:
            values[option] = overrides[option]
        elif tvm_config is not None and key in tvm_config:  # a key TVM itself knows (registered in C++)
            v = tvm_config[key]
            values[option] = opt.type(v.value if hasattr(v, "value") else v)
        elif key in attached:
            values[option] = attached[key]
        else:
            values[option] = opt.default
    return values
