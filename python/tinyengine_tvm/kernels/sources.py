"""Where the C++ kernel library is and which of its files a model needs."""
from __future__ import annotations

from typing import Iterable, List

from .arm import ARM_HEADERS
from .header import kernel_dir
from .registry import KERNELS, spec

#: Files every generated project gets (besides tinyengine_kernels.h).
COMMON_SOURCES = ["fixed_point.h"]

#: Headers an optimized source includes besides tinyengine_kernels.h and COMMON_SOURCES.
SOURCE_HEADERS = {src: list(ARM_HEADERS) for src in {k.source for k in KERNELS.values()} if src.startswith("arm/")}
# the LSTM step after the gate projections, shared by the portable and the Cortex-M LSTM
SOURCE_HEADERS["te_lstm.cc"] = ["lstm_cell.h"]
SOURCE_HEADERS["arm/arm_lstm.cc"].append("lstm_cell.h")


def kernel_sources_for(kernels: Iterable[str]) -> List[str]:
    """Sorted kernel source files (relative to kernels/) that define ``kernels``."""
    files = {spec(k).source for k in kernels}
    files |= {h for f in files for h in SOURCE_HEADERS.get(f, ())}
    return sorted(files) + list(COMMON_SOURCES)
