"""The search space of ``tvmc tune``: the compile configurations a model can be
built with, memory and speed chosen together for one board.

A :class:`TuningConfig` is what the default compile decides greedily, one
knob at a time, made explicit:

- the patch plan: patch-based inference off, or on with a number of patches
  (the pass's own choice when ``None``), a halo cache form (recompute the
  overlap, cache columns, cache all of it) and the most stages patched (one,
  two, or as many as lower the arena);
- in-place depthwise and in-place elementwise kernels, on or off;
- the operator order: memory-aware or the model's own;
- the kernel variants: the Cortex-M DSP kernels wherever the shapes allow, or
  the portable kernel wherever an optimized kernel's scratch would raise the
  arena (``keep_portable_arena``);
- the im2col width at the peak (``narrow_at_peak``): the convolutions whose
  im2col scratch is live at the arena peak take the one-column kernel (a
  smaller arena, more instructions) while that lowers the arena. The pool does
  not sample it: the tuner compiles a plan's narrow twin when the plan is over
  the SRAM budget (:mod:`.tuner`);
- per layer, a kernel variant (``kernels``: int8 or int16-widened filter,
  specialized or generic depthwise, portable; see
  ``codegen.kernel_selection.VARIANTS``). The pool samples only the plan-level
  knobs above; the tuner chooses the per-layer variants for the best plan from
  the measured per-layer costs (:mod:`.tuner`).

Each configuration maps to :func:`tinyengine_tvm.compile` keyword arguments;
the constraints (arena within the SRAM budget, flash within the board's) are
checked on the compiled plan by the tuner.
"""
from __future__ import annotations

import hashlib
import itertools
import json
from dataclasses import asdict, dataclass, fields
from typing import Any, Dict, List, Optional, Tuple

from ..errors import UsageError

#: Halo cache forms of PatchBasedInference ("auto": the pass picks).
HALO_CACHE_FORMS = ("auto", "off", "columns", "all")
#: Patch counts tried besides the pass's own choice.
PATCH_COUNTS = (None, 2, 3, 4, 6, 8)
#: Most stages patched (None: the pass's limit): fewer stages, fewer recomputed MACs.
STAGE_LIMITS = (None, 1, 2)


@dataclass(frozen=True)
class TuningConfig:
    """One point of the search space (the default compile is ``TuningConfig()``)."""

    patch: bool = True                  #: patch-based inference allowed (it still applies only if smaller)
    patches: Optional[int] = None       #: patches per side of the grid; None: the pass's choice
    halo_cache: str = "auto"
    stages: Optional[int] = None        #: most stages patched; None: the pass's limit
    inplace_depthwise: bool = True
    inplace_elementwise: bool = True
    memory_schedule: bool = True        #: memory-aware operator order (else the model's)
    keep_portable_arena: bool = False   #: portable kernels where DSP scratch would raise the arena
    narrow_at_peak: bool = False        #: one-column im2col for the convolutions at the arena peak
    kernels: Tuple[Tuple[str, str], ...] = ()  #: (layer name, kernel variant), sorted; others default

    def __post_init__(self):
        object.__setattr__(self, "kernels", tuple(sorted((str(k), str(v)) for k, v in dict(self.kernels).items())))
        if self.halo_cache not in HALO_CACHE_FORMS:
            raise UsageError(f"halo_cache {self.halo_cache!r}: one of {', '.join(HALO_CACHE_FORMS)}")
        if self.patches is not None and not 1 <= int(self.patches) <= 64:
            raise UsageError(f"patches {self.patches}: 1 to 64, or null")
        if self.stages is not None and not 1 <= int(self.stages) <= 64:
            raise UsageError(f"stages {self.stages}: 1 to 64, or null")

    def compile_kwargs(self) -> Dict[str, Any]:
        """Keyword arguments of :func:`tinyengine_tvm.compile` that build this configuration."""
        disabled = []
        config: Dict[str, Any] = {}
        if not self.patch:
            disabled.append("PatchBasedInference")
        else:
            if self.patches is not None:
                config["tinyengine.PatchBasedInference.patches"] = int(self.patches)
            if self.halo_cache != "auto":
                config["tinyengine.PatchBasedInference.halo_cache"] = self.halo_cache
            if self.stages is not None:
                config["tinyengine.PatchBasedInference.max_stages"] = int(self.stages)
        if not self.inplace_depthwise:
            disabled.append("InplaceDepthwise")
        if not self.inplace_elementwise:
            disabled.append("InplaceElementwise")
        if not self.memory_schedule:
            disabled.append("MemoryAwareSchedule")
        kwargs = {"disabled_passes": disabled, "pass_config": config, "keep_portable_arena": self.keep_portable_arena,
                  "kernel_variants": dict(self.kernels)}
        if self.narrow_at_peak:
            kwargs["narrow_at_peak"] = True
        return kwargs

    def to_json(self) -> Dict[str, Any]:
        """A JSON-able dict (every field; ``kernels`` as {layer: variant}, left out when empty
        so the keys of plan-only configurations stay what they were)."""
        d = asdict(self)
        d["kernels"] = dict(self.kernels)
        for name in ("kernels", "stages", "narrow_at_peak"):  # newer knobs: absent at their default, so older keys hold
            if not d[name]:
                del d[name]
        return d

    @classmethod
    def from_json(cls, d: Dict[str, Any]) -> "TuningConfig":
        """The config a record stores; unknown keys are an error (a record of another version)."""
        names = {f.name for f in fields(cls)}
        unknown = set(d) - names
        if unknown:
            raise UsageError(f"tuning record config has unknown keys {sorted(unknown)}")
        d = dict(d)
        kernels = d.pop("kernels", {})
        if not isinstance(kernels, dict):
            raise UsageError("tuning record config: kernels must map layer names to variants")
        return cls(**d, kernels=tuple(kernels.items()))

    @property
    def key(self) -> str:
        """A short stable identifier of this configuration."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:12]

    def describe(self) -> str:
        """One line for tables: what differs from the default compile."""
        default = TuningConfig()
        diff = [f"{f.name}={getattr(self, f.name)}" for f in fields(self)
                if f.name != "kernels" and getattr(self, f.name) != getattr(default, f.name)]
        if self.kernels:
            counts: Dict[str, int] = {}
            for _, v in self.kernels:
                counts[v] = counts.get(v, 0) + 1
            diff.append("kernels: " + " ".join(f"{n} {v}" for v, n in sorted(counts.items())))
        return ", ".join(diff) or "default"

    def with_kernels(self, kernels: Dict[str, str]) -> "TuningConfig":
        """This plan with the per-layer kernel variants ``kernels`` (default ones dropped)."""
        from dataclasses import replace

        return replace(self, kernels=tuple((k, v) for k, v in kernels.items() if v != "dsp"))


def search_space(dsp: bool = True, narrow: bool = False) -> List[TuningConfig]:
    """Every configuration, the default first. ``dsp``: the core has DSP kernels whose
    scratch the portable fallback can avoid (else that knob is left out). ``narrow``:
    with the ``narrow_at_peak`` knob as well (DSP cores only; it doubles the space; the
    tuner samples the space without it and adds narrow twins of the plans over budget)."""
    patch_plans = [(False, None, "auto", None)] + [(True, n, h, st) for n in PATCH_COUNTS for h in HALO_CACHE_FORMS
                                                   for st in STAGE_LIMITS]
    out = []
    for (patch, n, halo, st), dw, ew, sched, portable in itertools.product(
            patch_plans, (True, False), (True, False), (True, False), (False, True) if dsp else (False,)):
        out.append(TuningConfig(patch, n, halo, st, dw, ew, sched, portable))
        if narrow and dsp:
            out.append(TuningConfig(patch, n, halo, st, dw, ew, sched, portable, True))
    default = TuningConfig()
    out.remove(default)
    return [default] + out
