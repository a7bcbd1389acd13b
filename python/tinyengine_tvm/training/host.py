"""Run a compiled training project on this host: ``train_step``, ``invoke`` and, in a
debug build, every step's output (the forward activations, each gradient and
each updated parameter) as the generated C computed it."""
from __future__ import annotations

import ctypes
import os
from typing import Dict, List, Optional

import numpy as np

from ..errors import TinyEngineError
from ..runtime.host import build_host_library
from ..runtime.project import read_metadata

#: The host side of the generated ``TE_TRAIN_TRACE_STEP`` hook: every step's output, copied
#: in step order into one buffer (reset at step 0).
TRACE_SOURCE = r"""
#include <stdint.h>
#include <string.h>

#define TE_TRACE_CAPACITY {capacity}u
#define TE_TRACE_STEPS {steps}u

uint8_t te_trace_buffer[TE_TRACE_CAPACITY];
uint32_t te_trace_position[TE_TRACE_STEPS];
static uint32_t te_trace_cursor = 0;

void te_train_trace(uint32_t step, const void* data, uint32_t bytes);
void te_train_trace(uint32_t step, const void* data, uint32_t bytes) {
  if (step == 0) te_trace_cursor = 0;
  if (step >= TE_TRACE_STEPS || te_trace_cursor + bytes > TE_TRACE_CAPACITY) return;
  te_trace_position[step] = te_trace_cursor;
  memcpy(te_trace_buffer + te_trace_cursor, data, bytes);
  te_trace_cursor += bytes;
}
"""


class TrainingHost:
    """A training project built with gcc into a shared library and called through ctypes."""

    def __init__(self, project: str, build_dir: Optional[str] = None, debug: bool = False):
        self.meta = read_metadata(project)
        self.name = self.meta["model"]
        self.steps: List[dict] = self.meta["training"]["steps"]
        build_dir = build_dir or os.path.join(project, "build", "host-debug" if debug else "host")
        os.makedirs(build_dir, exist_ok=True)
        flags, sources = [], []
        if debug:
            capacity = sum(s["bytes"] for s in self.steps) + 16
            trace = os.path.join(build_dir, "te_train_trace.c")
            with open(trace, "w") as f:
                f.write(TRACE_SOURCE.replace("{capacity}", str(capacity)).replace("{steps}", str(len(self.steps))))
            flags, sources = ["-DTE_TRAIN_TRACE"], [trace]
        self.debug = debug
        self._lib = ctypes.CDLL(build_host_library(project, build_dir, extra_flags=flags, extra_sources=sources))
        lib, n = self._lib, self.name
        self._train_step = getattr(lib, f"{n}_train_step")
        self._train_step.restype = ctypes.c_int
        self._train_step.argtypes = [ctypes.c_void_p, ctypes.c_int32, ctypes.POINTER(ctypes.c_float)]
        self._run = getattr(lib, f"{n}_run")
        self._run.restype = ctypes.c_int
        self._param = getattr(lib, f"{n}_train_parameter")
        self._param.restype = ctypes.c_void_p
        self._param.argtypes = [ctypes.c_int32]
        getattr(lib, f"{n}_train_init").restype = None
        self.trace: Dict[str, np.ndarray] = {}

    def set_learning_rate(self, learning_rate: float) -> None:
        """``<name>_train_set_learning_rate``: the rate of the next train steps."""
        fn = getattr(self._lib, f"{self.name}_train_set_learning_rate")
        fn.restype, fn.argtypes = None, [ctypes.c_float]
        fn(float(learning_rate))

    def train_init(self) -> None:
        """``<name>_train_init()``: parameters back to the model file's, momentum zeroed."""
        getattr(self._lib, f"{self.name}_train_init")()

    def train_step(self, x: np.ndarray, label: int) -> float:
        """One ``<name>_train_step``; returns the loss (before the update).  In a debug build
        :attr:`trace` then maps every step name to its output."""
        d = self.meta["inputs"][0]
        arr = np.ascontiguousarray(np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]))
        loss = ctypes.c_float(0.0)
        rc = self._train_step(arr.ctypes.data_as(ctypes.c_void_p), int(label), ctypes.byref(loss))
        if rc != 0:
            raise TinyEngineError(f"{self.name}_train_step returned {rc} (label {label})")
        if self.debug:
            self.trace = self._read_trace()
        return float(loss.value)

    def invoke(self, x: np.ndarray) -> np.ndarray:
        """One inference (``<name>_run``) with the current (trained) parameters."""
        d, o = self.meta["inputs"][0], self.meta["outputs"][0]
        arr = np.ascontiguousarray(np.asarray(x, dtype=d["dtype"]).reshape(d["shape"]))
        out = np.zeros(o["shape"], dtype=o["dtype"])
        rc = self._run(arr.ctypes.data_as(ctypes.c_void_p), out.ctypes.data_as(ctypes.c_void_p))
        if rc != 0:
            raise TinyEngineError(f"{self.name}_run returned {rc}")
        return out

    def parameter(self, index: int) -> np.ndarray:
        """A copy of trainable parameter ``index`` as it is now in the arena."""
        p = self.meta["training"]["parameters"][index]
        count = int(np.prod(p["shape"]))
        buf = (ctypes.c_uint8 * (count * np.dtype(p["dtype"]).itemsize)).from_address(self._param(index))
        return np.frombuffer(bytes(buf), dtype=p["dtype"]).reshape(p["shape"]).copy()

    def parameters(self) -> Dict[str, np.ndarray]:
        """Every trainable parameter by name."""
        return {p["name"]: self.parameter(k) for k, p in enumerate(self.meta["training"]["parameters"])}

    def _read_trace(self) -> Dict[str, np.ndarray]:
        total = sum(s["bytes"] for s in self.steps) + 16
        data = bytes((ctypes.c_uint8 * total).in_dll(self._lib, "te_trace_buffer"))
        pos = (ctypes.c_uint32 * len(self.steps)).in_dll(self._lib, "te_trace_position")
        out = {}
        for k, s in enumerate(self.steps):
            raw = data[pos[k]:pos[k] + s["bytes"]]
            out[s["name"]] = np.frombuffer(raw, dtype=s["dtype"]).reshape(s["shape"]).copy()
        return out
