"""The default optimization pipeline (what ``tvmc compile`` runs).

Passes run after integer lowering, in this order: FoldPadIntoConv,
PatchBasedInference, InplaceDepthwise, InplaceElementwise, MemoryAwareSchedule,
SliceViews (last: it keeps a view only where the final plan does not grow).
Each can be disabled by name (``--disable-pass``, or TVM's
``PassContext(disabled_pass=[...])``); their options live in
:mod:`.pass_options` (re-exported here).
"""
from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

import tvm

from ..errors import UsageError
from .fold_pad import FoldPadIntoConv
from .inplace_depthwise import InplaceDepthwise
from .inplace_elementwise import InplaceElementwise
from .memory_schedule import MemoryAwareSchedule
from .pass_options import (CONFIG_PREFIX, PASS_OPTIONS, Option, attach_options, check_overrides,  # noqa: F401
                           config_key, list_configs, normalize_config, parse_pass_config, pass_context,
                           pass_options)
from .patch_inference import PatchBasedInference
from .slice_views import SliceViews

PASS_FACTORIES = {
    "FoldPadIntoConv": FoldPadIntoConv,
    "PatchBasedInference": PatchBasedInference,
    "InplaceDepthwise": InplaceDepthwise,
    "InplaceElementwise": InplaceElementwise,
    "MemoryAwareSchedule": MemoryAwareSchedule,
    "SliceViews": SliceViews,
}


def optimization_passes(disabled: Iterable[str] = (), config: Optional[Dict[str, Any]] = None) -> List[tvm.transform.Pass]:
    """The default passes minus ``disabled``.

    ``config`` is only checked here (UsageError on a bad name or value): the
    options take effect through the PassContext the passes run under, e.g.
    ``with pass_context(config): Sequential(optimization_passes())(mod)``.
    """
    disabled = set(disabled)
    unknown = disabled - set(PASS_FACTORIES)
    if unknown:
        raise UsageError(f"unknown pass(es) {sorted(unknown)}; passes are {list(PASS_FACTORIES)}")
    normalize_config(config)
    return [factory() for name, factory in PASS_FACTORIES.items() if name not in disabled]
