"""Where the C++ kernel library is and which of its files a model needs."""
from __future__ import annotations

import os
from typing import Iterable, List

from ..errors import TinyEngineError
from .arm import ARM_HEADERS
from .registry import KERNELS

#: Files every generated project gets (besides tinyengine_kernels.h).
COMMON_SOURCES = ["fixed_point.h"]

#: Headers an optimized source includes besides tinyengine_kernels.h and COMMON_SOURCES.
SOURCE_HEADERS = {src: list(ARM_HEADERS) for src in {k.source for k in KERNELS.values()} if src.startswith("arm/")}


def kernel_dir() -> str:
    """Directory holding ``include/tinyengine_kernels.h`` and ``kernels/*.cc``.

    ``TINYENGINE_KERNEL_DIR`` overrides it; otherwise the ``src/`` of the
    checkout this package was installed from (editable install), or the copy
    shipped inside the package.
    """
    candidates = [os.environ.get("TINYENGINE_KERNEL_DIR", "")]
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    candidates.append(os.path.join(here, "_kernels"))
    candidates.append(os.path.normpath(os.path.join(here, "..", "..", "src")))
    for c in candidates:
        if c and os.path.isfile(os.path.join(c, "include", "tinyengine_kernels.h")):
            return c
    raise TinyEngineError("cannot find the kernel sources (src/); set TINYENGINE_KERNEL_DIR")


def kernel_sources_for(kernels: Iterable[str]) -> List[str]:
    """Sorted kernel source files (relative to kernels/) that define ``kernels``."""
    files = {KERNELS[k].source for k in kernels}
    files |= {h for f in files for h in SOURCE_HEADERS.get(f, ())}
    return sorted(files) + list(COMMON_SOURCES)
