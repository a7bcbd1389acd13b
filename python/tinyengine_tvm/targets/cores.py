"""Cortex-M cores: arm-none-eabi-gcc flags and TVM target tags.

``tinyengine/cortex-m4``, ``tinyengine/cortex-m7`` and ``tinyengine/cortex-m55``
are registered with ``tvm.target.register_tag`` (TVM 0.27:
``tvm.target.tag.register_tag(name, config, override)``) when this package is
imported; registering again replaces the same definition, so it is idempotent.
The targets are of kind ``c`` (the project emits C) and carry ``mcpu``/``march``,
from which TVM derives ``feature.has_dsp`` / ``feature.has_mve``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..errors import TinyEngineError


@dataclass(frozen=True)
class Core:
    """A Cortex-M core as arm-none-eabi-gcc and TVM see it."""

    name: str                 #: "cortex-m7"
    march: str                #: architecture, e.g. "armv7e-m"
    fpu: Optional[str]        #: default -mfpu (None: gcc's choice for -mcpu, e.g. M55's MVE-F)
    float_abi: str = "hard"   #: -mfloat-abi
    dsp: bool = True          #: DSP extension (SMLAD, SXTB16)
    mve: bool = False         #: Helium (M-profile vector extension)

    @property
    def tag(self) -> str:
        """The TVM target tag, e.g. ``tinyengine/cortex-m7``."""
        return f"tinyengine/{self.name}"

    def gcc_flags(self, fpu: Optional[str] = None, float_abi: Optional[str] = None) -> Tuple[str, ...]:
        """-mcpu/-mthumb/-mfloat-abi/-mfpu for arm-none-eabi-gcc (``fpu``, ``float_abi`` override the core's;
        ``float_abi="soft"``: no FPU instructions at all)."""
        abi = float_abi or self.float_abi
        flags = [f"-mcpu={self.name}", "-mthumb", f"-mfloat-abi={abi}"]
        fpu = fpu or self.fpu
        if fpu and abi != "soft":
            flags.append(f"-mfpu={fpu}")
        return tuple(flags)

    def tvm_config(self) -> dict:
        """The config dict registered for :attr:`tag`."""
        return {"kind": "c", "keys": ["arm_cpu", "cpu"], "device": "arm_cpu",
                "mcpu": self.name, "march": self.march}


CORES: Dict[str, Core] = {
    "cortex-m4": Core("cortex-m4", "armv7e-m", "fpv4-sp-d16"),
    "cortex-m7": Core("cortex-m7", "armv7e-m", "fpv5-d16"),
    "cortex-m55": Core("cortex-m55", "armv8.1-m.main", None, mve=True),
}


def get_core(name: str) -> Core:
    """The :class:`Core` called ``name`` (``cortex-m7``; ``m7`` and the tag are accepted)."""
    key = name.lower().removeprefix("tinyengine/")
    if not key.startswith("cortex-"):
        key = "cortex-" + key
    if key not in CORES:
        raise TinyEngineError(f"unknown core '{name}'; known cores: {', '.join(CORES)}")
    return CORES[key]


def register_tags(override: bool = True) -> Dict[str, object]:
    """Register the ``tinyengine/<core>`` TVM target tags; returns {tag: Target}.

    Safe to call any number of times. Returns an empty dict when TVM is a
    runtime-only build without the tag registry.
    """
    from tvm.target import tag as tvm_tag

    out = {}
    for core in CORES.values():
        target = tvm_tag.register_tag(core.tag, core.tvm_config(), override=override)
        if target is not None:
            out[core.tag] = target
    return out
