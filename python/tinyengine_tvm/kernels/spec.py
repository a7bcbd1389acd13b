"""KernelSpec: how one kernel symbol of a KernelGraph step is called and costed."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional, Tuple

from .abi import STRUCTS

#: Argument words of :attr:`KernelSpec.args` (see there).
ARG_WORDS = ("p", "inputs", "out", "scratch", "inout", "state", "null")


def _zero(attrs: Dict) -> int:
    return 0


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """How to call one kernel.

    ``args`` is the C argument list: "p" is the address of the parameter
    struct ``struct`` (every kernel takes one), "inN" the N-th tensor
    argument, "inputs" the array of all tensor inputs, "out" the output,
    "scratch" the step's arena scratch, "inout" input 0 as a writable buffer
    (in-place kernels), "state" the step's persistent state (kept in the arena
    from one invocation to the next, e.g. SVDF's activation history), "null" a NULL
    pointer (an optional output or input the step does not use).  Pointer arguments honour the byte offsets in the
    notes ``in_offsets`` (per tensor input) and ``inout_offset`` (kernel_call).

    The struct's fields are read from the step attributes of the same name,
    or of the name ``field_attrs`` maps them to; ``n_inputs`` defaults to the
    number of tensor inputs (:meth:`struct_values`).
    """

    op_type: str
    source: str
    args: List[str]
    struct: Optional[str] = None
    macs: Callable[[Dict], int] = _zero
    scratch: Callable[[Dict], int] = _zero  # bytes of arena scratch per call (= C *_get_buffer_size)
    state: Callable[[Dict], int] = _zero  # bytes of persistent state of the step (= C *_get_state_size)
    inplace: bool = False  # the output is written over input 0 (same arena bytes)
    function: Optional[str] = None  # C function when it differs from the key; "" for no call
    field_attrs: Dict[str, str] = dataclasses.field(default_factory=dict)
    partial_write: bool = False  # in place, but writes only part of its buffer (the buffer keeps its name)

    @property
    def fields(self) -> List[str]:
        """Names of the struct's fields, in declaration order."""
        return [name for _, name in STRUCTS[self.struct]] if self.struct else []

    @property
    def calls(self) -> bool:
        """Whether a step of this kernel calls a C function (False: it only reserves arena bytes)."""
        return self.function != ""

    def struct_values(self, attrs: Dict[str, Any], n_tensors: int) -> List[Tuple[str, str, Any]]:
        """(C type, field, value) of every field of the parameter struct, in order."""
        if not self.struct:
            return []
        values = dict(attrs)
        values.setdefault("n_inputs", n_tensors)
        return [(ctype, field, values[self.field_attrs.get(field, field)]) for ctype, field in STRUCTS[self.struct]]
