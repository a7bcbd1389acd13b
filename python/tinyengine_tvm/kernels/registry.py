"""KERNELS: every kernel symbol a KernelGraph step may name, and the questions asked of it.

The planner (scratch), the passes (MACs, in-place), KernelGraph (in-place
aliasing), the C writer (how to call) and the source copier all read this
table through the functions below rather than knowing kernels by name.
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional, Set

from ..errors import TinyEngineError
from .abi import FUNCTIONS
from .arm import ARM
from .portable import PORTABLE
from .spec import KernelSpec
from .training import TRAINING_KERNELS

KERNELS: Dict[str, KernelSpec] = {**PORTABLE, **ARM}


def spec(kernel: str) -> KernelSpec:
    """The KernelSpec of ``kernel``, an inference or a training kernel (TinyEngineError
    for an unknown symbol)."""
    found = KERNELS.get(kernel) or TRAINING_KERNELS.get(kernel)
    if found is None:
        raise TinyEngineError(f"unknown kernel '{kernel}'")
    return found


def c_function(kernel: str) -> str:
    """The C function ``kernel`` calls ("" for none)."""
    s = spec(kernel)
    return kernel if s.function is None else s.function


def buffer_size_function(kernel: str) -> Optional[str]:
    """The C ``*_get_buffer_size()`` of ``kernel``'s function, or None when it takes no scratch."""
    fn = c_function(kernel)
    name = f"{fn}_get_buffer_size"
    return name if fn and name in FUNCTIONS else None


def scratch_bytes(kernel: str, attrs: Dict[str, Any]) -> int:
    """Arena scratch bytes one call of ``kernel`` needs (its C ``*_get_buffer_size()``)."""
    return int(spec(kernel).scratch(attrs))


def state_bytes(kernel: str, attrs: Dict[str, Any]) -> int:
    """Persistent state bytes of one step of ``kernel`` (its C ``*_get_state_size()``)."""
    return int(spec(kernel).state(attrs))


def steps_state(steps: Iterable) -> List[int]:
    """Persistent state bytes of every step (objects with ``.kernel`` and ``.attrs``), in order."""
    return [state_bytes(s.kernel, s.attrs) for s in steps]


def steps_scratch(steps: Iterable) -> List[int]:
    """Scratch bytes of every step (objects with ``.kernel`` and ``.attrs``), in order."""
    return [scratch_bytes(s.kernel, s.attrs) for s in steps]


def macs(kernel: str, attrs: Dict[str, Any]) -> int:
    """Multiply-accumulates of one call of ``kernel``."""
    return int(spec(kernel).macs(attrs))


def is_inplace(kernel: str) -> bool:
    """Whether ``kernel`` writes its output over its input 0 (same arena bytes)."""
    return spec(kernel).inplace


def inplace_kernels() -> Set[str]:
    """Every kernel (inference or training) whose output aliases its input 0."""
    return {k for k, s in {**KERNELS, **TRAINING_KERNELS}.items() if s.inplace}


def op_type(kernel: str, notes: Dict[str, Any]) -> str:
    """The TFLite-style operator type a step reports (its ``op_type`` note, else the kernel's)."""
    return notes.get("op_type", spec(kernel).op_type)
