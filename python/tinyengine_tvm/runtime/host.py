"""Build a generated project with the host compiler and run it through ctypes (the ``host`` Runner)."""
from __future__ import annotations

import ctypes
import glob
import os
import subprocess
import time
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import TinyEngineError
from .project import Inputs, load_inputs_file, match_inputs, read_metadata
from .runner import Runner, check_counts

WARNING_FLAGS = ["-Wall", "-Wextra", "-Werror"]


def _run(cmd: List[str]) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise TinyEngineError(f"host build failed: {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")


def build_host_library(project: str, out_dir: Optional[str] = None, cc: str = "gcc", cxx: str = "g++",
                       extra_flags: Sequence[str] = (), extra_sources: Sequence[str] = ()) -> str:
    """Compile a generated project (and ``extra_sources``, C) into a shared library; returns its path.

    C is built with -std=c11 and C++ kernels with -std=c++17 -fno-exceptions
    -fno-rtti, all with -Wall -Wextra -Werror.
    """
    meta = read_metadata(project)
    name = meta["model"]
    out_dir = out_dir or os.path.join(project, "build", "host")
    os.makedirs(out_dir, exist_ok=True)
    inc = ["-I", os.path.join(project, "include"), "-I", os.path.join(project, "src", "kernels")]
    common = ["-O2", "-fPIC", *WARNING_FLAGS, *extra_flags]
    objects = []
    for src in [*sorted(glob.glob(os.path.join(project, "src", "*.c"))), *extra_sources]:
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        _run([cc, "-std=c11", *common, *inc, "-c", src, "-o", obj])
        objects.append(obj)
    for src in sorted(glob.glob(os.path.join(project, "src", "kernels", "*.cc"))):
        obj = os.path.join(out_dir, os.path.basename(src) + ".o")
        _run([cxx, "-std=c++17", "-fno-exceptions", "-fno-rtti", *common, *inc, "-c", src, "-o", obj])
        objects.append(obj)
    lib = os.path.join(out_dir, f"lib{name}.so")
    _run([cxx, "-shared", *extra_flags, "-o", lib, *objects])
    return lib


def load_npz_inputs(path: str, inputs_meta: List[dict]) -> Dict[str, np.ndarray]:
    """Read an .npz of inputs keyed by tensor name (see ``project.load_inputs_file``)."""
    return load_inputs_file(path, inputs_meta)


class HostModel:
    """A generated project built for this host, callable with numpy arrays.
    ``profile``: a profile build (every step timed, :meth:`profile`)."""

    def __init__(self, project: str, build_dir: Optional[str] = None, extra_flags: Sequence[str] = (),
                 profile: bool = False):
        self.meta = read_metadata(project)
        sources: List[str] = []
        flags = list(extra_flags)
        if profile:
            from .firmware import firmware_dir

            sources = [os.path.join(firmware_dir(), "host", "te_profile_host.c")]
            flags += ["-DTE_PROFILE", f"-DTE_PROFILE_MAX_STEPS={max(len(self.meta['ops']), 1)}"]
            build_dir = build_dir and os.path.join(build_dir, "profile")
            build_dir = build_dir or os.path.join(project, "build", "host-profile")
        self.profiling = profile
        self.lib_path = build_host_library(project, build_dir, extra_flags=flags, extra_sources=sources)
        self._lib = ctypes.CDLL(self.lib_path)
        self._fn = getattr(self._lib, f"{self.meta['model']}_run")
        self._fn.restype = ctypes.c_int
        self.last_seconds = 0.0

    def run(self, inputs: Union[Mapping[str, np.ndarray], Sequence[np.ndarray], np.ndarray]) -> Dict[str, np.ndarray]:
        """One inference; inputs by tensor name (or positionally); outputs by name."""
        metas = self.meta["inputs"]
        arrays = match_inputs(inputs, metas)
        outs = {m["name"]: np.zeros(m["shape"], dtype=m["dtype"]) for m in self.meta["outputs"]}
        args = [arrays[m["name"]].ctypes.data_as(ctypes.c_void_p) for m in metas]
        args += [o.ctypes.data_as(ctypes.c_void_p) for o in outs.values()]
        t0 = time.perf_counter()
        rc = self._fn(*args)
        self.last_seconds = time.perf_counter() - t0
        if rc != 0:
            raise TinyEngineError(f"{self.meta['model']}_run returned {rc}")
        return outs

    def profile_begin(self) -> None:
        """Clear the step counters and measure a mark's cost (profile builds)."""
        self._lib.te_profile_host_begin()

    def profile_end(self) -> Tuple[List[int], int]:
        """Stop counting; (nanoseconds per step summed since :meth:`profile_begin`, one mark's cost)."""
        self._lib.te_profile_host_end()
        read = self._lib.te_profile_host_read
        read.restype, read.argtypes = ctypes.c_uint64, [ctypes.c_uint32]
        cost = self._lib.te_profile_host_mark_cost
        cost.restype = ctypes.c_uint64
        return [int(read(i)) for i in range(len(self.meta["ops"]))], int(cost())

    def reset(self) -> None:
        """Start a new stream: ``<name>_reset()`` clears the operators' state (a
        model without state has nothing to clear)."""
        fn = getattr(self._lib, f"{self.meta['model']}_reset", None)
        if fn is not None:
            fn.restype = None
            fn()


class HostRunner(Runner):
    """The host :class:`~.runner.Runner`: wall-clock milliseconds per inference
    on this machine (``tvmc run --device=host``)."""

    def __init__(self, project_dir: str, build_dir: Optional[str] = None, extra_flags: Sequence[str] = (),
                 profile: bool = False):
        self.model = HostModel(project_dir, build_dir, extra_flags, profile=profile)
        self.meta = self.model.meta
        self._profile: Optional[Tuple[List[int], int, int]] = None

    def run(self, inputs: Inputs, number: int = 1, repeat: int = 1) -> Tuple[Dict[str, np.ndarray], dict]:
        """``repeat`` measurements of ``number`` inferences; the report's
        ``milliseconds`` holds each measurement's mean time per inference.
        A profile build times every step of the last repeat (:meth:`profile`)."""
        check_counts(number, repeat)
        times = []
        for r in range(repeat):
            if self.model.profiling and r == repeat - 1:
                self.model.profile_begin()
            seconds = 0.0
            for _ in range(number):
                outputs = self.model.run(inputs)
                seconds += self.model.last_seconds
            times.append(seconds / number * 1e3)
        if self.model.profiling:
            counters, cost = self.model.profile_end()
            self._profile = (counters, cost, number)
        return outputs, {"device": "host", "milliseconds": times}

    def profile(self):
        """Per-step wall time (ns) of the last run's last repeat (a profile build's)."""
        from .profile import StepProfile

        if self._profile is None:
            raise TinyEngineError("no profile: open the host runner with profile=True and run it first")
        counters, cost, number = self._profile
        return StepProfile.from_counters(self.meta, counters, inferences=number, unit="ns", runner="host",
                                         mark_cost=cost, note="wall time on this machine")

    def format_time(self, report: dict) -> str:
        """Mean, median, min and max of the measured milliseconds."""
        t = np.array(report["milliseconds"])
        return (f"host execution time (ms, {len(t)} runs): mean {t.mean():.3f} median {np.median(t):.3f} "
                f"min {t.min():.3f} max {t.max():.3f}")
