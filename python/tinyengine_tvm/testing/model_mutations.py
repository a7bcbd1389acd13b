"""Deterministic mutations of .tflite models, and a harness that classifies them.

Mutators take the model's bytes and a ``numpy.random.Generator`` and return
``(mutated bytes, short description)``; the same bytes and generator state
always give the same mutation.  There are three families:

* ``byte_flip``: 1-16 random bytes XORed with a random non-zero value;
* ``truncate``: the file cut short;
* field-aware mutations (every other kind in :data:`FIELD_KINDS`), which
  locate one field of the flatbuffer through the ``tflite`` package's
  accessors and overwrite it in place with a value of the field's own type:
  tensor shape dims, conv/depthwise/pool strides, dilations, padding enum,
  pool filter sizes, depth multiplier, fused activation enum,
  builtin_options_type tag, quantization scales, zero points,
  quantized_dimension, tensor type enum, buffer index, operator
  input/output tensor indices, opcode index, operator codes, subgraph
  input/output indices, other options (axis, beta, new_shape, keep_dims)
  and constant-buffer elements (weights/biases).

A field is found by replaying the generated accessor (e.g.
``tflite.Conv2DOptions.StrideH``) on a recording table, which yields its
vtable slot and scalar type; its position in the file is then
``table._tab.Pos + table._tab.Offset(slot)`` (scalars) or
``table._tab.Vector(offset) + i * size`` (vector elements).  Only fields
actually stored in the file can be overwritten: a scalar equal to its
schema default is usually omitted by the writer and so is not a candidate.

:class:`FuzzHarness` runs one mutated model through ``tinyengine_tvm.compile``
and ``tvmc compile`` in-process, and -- when it compiles -- through TFLM and the
generated C built for this host, both in a sandbox subprocess (TFLM's Python
interpreter, or generated C, can crash the process on a malformed model).
``tests/test_fuzz_models.py`` and ``scripts/fuzz_models.py`` use it.

This file runs standalone as the sandbox worker
(``python model_mutations.py --sandbox-worker``) and therefore imports
nothing from tinyengine_tvm at module level.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import io
import math
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    "FIELD_KINDS", "MUTATION_KINDS", "MUTATORS", "Site", "field_sites", "applicable_kinds", "mutate",
    "byte_flip", "truncate", "mutate_field", "CaseResult", "FuzzHarness", "Sandbox", "summarize",
    "failure_classes", "format_table", "format_failures", "FAILURES",
]

Mutation = Tuple[bytes, str]

# --------------------------------------------------------------------------- field location


def _recording_table_cls():
    import flatbuffers

    class _Recorder(flatbuffers.table.Table):
        """A Table that records the first vtable slot and scalar type an accessor asks for."""

        __slots__ = ("slot", "flags")

        def __init__(self):
            super().__init__(bytearray(8), 0)
            self.slot = None
            self.flags = None

        def Offset(self, vtableOffset):  # noqa: N802,N803 - flatbuffers naming
            if self.slot is None:
                self.slot = vtableOffset
            return 4

        def Vector(self, off):  # noqa: N802
            return 0

        def VectorLen(self, off):  # noqa: N802
            return 1

        def Indirect(self, off):  # noqa: N802
            return 0

        def Get(self, flags, off):  # noqa: N802
            if self.flags is None:
                self.flags = flags
            return 0

    return _Recorder


@functools.lru_cache(maxsize=None)
def _layout(cls, accessor: str):
    """(vtable slot, flatbuffers number flags) of ``cls.accessor`` (a scalar or vector-element getter)."""
    rec = _recording_table_cls()()
    obj = cls()
    obj._tab = rec
    fn = getattr(cls, accessor)
    nargs = fn.__code__.co_argcount - 1
    fn(obj, *([0] * nargs))
    if rec.slot is None or rec.flags is None:
        raise ValueError(f"{cls.__name__}.{accessor} is not a scalar field accessor")
    return rec.slot, rec.flags


def _field_pos(obj, accessor: str, index: Optional[int] = None) -> Optional[int]:
    """File offset of a stored scalar field (or of vector element ``index``), None when absent."""
    slot, flags = _layout(type(obj), accessor)
    o = obj._tab.Offset(slot)
    if not o:
        return None
    if index is None:
        return obj._tab.Pos + o
    return obj._tab.Vector(o) + index * flags.bytewidth


_FMT_RANGE = {"b": (-(1 << 7), (1 << 7) - 1), "B": (0, (1 << 8) - 1), "h": (-(1 << 15), (1 << 15) - 1),
              "H": (0, (1 << 16) - 1), "i": (-(1 << 31), (1 << 31) - 1), "I": (0, (1 << 32) - 1),
              "q": (-(1 << 63), (1 << 63) - 1), "Q": (0, (1 << 64) - 1)}


def _same(a, b) -> bool:
    if isinstance(a, float) or isinstance(b, float):
        a, b = float(a), float(b)
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return a == b


def _fits(fmt: str, v) -> bool:
    code = fmt[-1]
    if code in ("f", "d"):
        return isinstance(v, float)
    lo, hi = _FMT_RANGE[code]
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool) and lo <= int(v) <= hi


@dataclasses.dataclass(frozen=True)
class Site:
    """One mutable field stored in the file."""

    kind: str
    pos: int
    fmt: str  # struct format, little-endian
    original: object
    label: str  # "shape of tensor 5 'conv1' dim 2"
    candidates: Tuple[object, ...]
    group: str = ""  # the tensor/operator it belongs to: mutate_field picks a group first, then a site


# --------------------------------------------------------------------------- site enumeration

FIELD_KINDS = (
    "shape", "stride", "dilation", "padding", "filter_size", "depth_multiplier", "activation",
    "options_type", "scale", "zero_point", "quantized_dimension", "tensor_type", "buffer_index",
    "op_tensor_index", "opcode_index", "builtin_code", "io_tensor_index", "other_options", "buffer_data",
)
MUTATION_KINDS = ("byte_flip", "truncate") + FIELD_KINDS

_I32_MAX = (1 << 31) - 1
_U32_MAX = (1 << 32) - 1


def _names(enum_cls) -> Dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _short(name: str, limit: int = 40) -> str:
    """A tensor name for a description (converter names can be hundreds of characters)."""
    return name if len(name) <= limit else name[: limit // 2 - 2] + "..." + name[-(limit // 2 - 1):]


def _dim_values(d: int) -> list:
    return [-1, -3, 0, d - 1, d + 1, 2 * d + 1, 1 << 16, _I32_MAX]


def _small_param_values(d: int) -> list:
    return [0, -1, -2, d + 1, 3, 1 << 20, _I32_MAX]


class _SiteCollector:
    def __init__(self, data: bytes):
        self.data = data
        self.sites: Dict[str, List[Site]] = {k: [] for k in FIELD_KINDS}

    def add(self, kind, obj, accessor, label, candidates, index=None, group=None):
        pos = _field_pos(obj, accessor, index)
        if pos is None:
            return
        _, flags = _layout(type(obj), accessor)
        fmt = "<" + flags.packer_type.format.lstrip("<").replace("?", "B")  # bools: any byte value
        if pos < 0 or pos + struct.calcsize(fmt) > len(self.data):
            return
        original = struct.unpack_from(fmt, self.data, pos)[0]
        # The position must hold what the accessor reads (guards the slot/offset arithmetic).
        # Exception: OperatorCode.BuiltinCode() returns the deprecated int8 field when the int32
        # field is below 127, so only a value of 127 or more can be compared.
        via_accessor = getattr(obj, accessor)(*(() if index is None else (index,)))
        raw_only = accessor == "BuiltinCode" and isinstance(original, int) and original < 127
        if not raw_only and not _same(original, via_accessor):
            raise AssertionError(f"{label}: byte offset {pos} holds {original!r}, accessor says {via_accessor!r}")
        cands = []
        for v in candidates:
            v = float(v) if fmt[-1] in "fd" else int(v)
            if _fits(fmt, v) and not _same(v, original) and not any(_same(v, c) for c in cands):
                cands.append(v)
        if cands:
            self.sites[kind].append(Site(kind, pos, fmt, original, label, tuple(cands), group or label))


_OPTIONS_FIELDS = {
    # options class: [(accessor, kind), ...]
    "Conv2DOptions": [("Padding", "padding"), ("StrideW", "stride"), ("StrideH", "stride"),
                      ("DilationWFactor", "dilation"), ("DilationHFactor", "dilation"),
                      ("FusedActivationFunction", "activation")],
    "DepthwiseConv2DOptions": [("Padding", "padding"), ("StrideW", "stride"), ("StrideH", "stride"),
                               ("DilationWFactor", "dilation"), ("DilationHFactor", "dilation"),
                               ("DepthMultiplier", "depth_multiplier"), ("FusedActivationFunction", "activation")],
    "Pool2DOptions": [("Padding", "padding"), ("StrideW", "stride"), ("StrideH", "stride"),
                      ("FilterWidth", "filter_size"), ("FilterHeight", "filter_size"),
                      ("FusedActivationFunction", "activation")],
    "FullyConnectedOptions": [("FusedActivationFunction", "activation"), ("KeepNumDims", "other_options"),
                              ("WeightsFormat", "other_options")],
    "AddOptions": [("FusedActivationFunction", "activation")],
    "SubOptions": [("FusedActivationFunction", "activation")],
    "MulOptions": [("FusedActivationFunction", "activation")],
    "ConcatenationOptions": [("Axis", "other_options"), ("FusedActivationFunction", "activation")],
    "SoftmaxOptions": [("Beta", "other_options")],
    "ReducerOptions": [("KeepDims", "other_options")],
    "ResizeNearestNeighborOptions": [("AlignCorners", "other_options"), ("HalfPixelCenters", "other_options")],
}

_ENUM_VALUES = {
    "padding": [0, 1, 2, 3, -1, 127],
    "activation": [0, 1, 2, 3, 4, 5, 6, 127, -1],
    "options_type": [0, 1, 2, 5, 8, 9, 10, 11, 17, 21, 22, 27, 127, 200, 255],
    "tensor_type": [0, 1, 2, 3, 4, 6, 7, 9, 10, 15, 17, 18, 19, 100, -1],
}

_NP_OF_TENSOR_TYPE = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 7: np.int16, 9: np.int8}


def _option_candidates(accessor: str, kind: str, orig) -> list:
    if kind in ("padding", "activation"):
        return _ENUM_VALUES[kind]
    if kind == "dilation":
        return [0, -1, 2, 3, orig + 1, 1 << 20, _I32_MAX]
    if kind in ("stride", "filter_size", "depth_multiplier"):
        return _small_param_values(int(orig))
    if accessor == "Beta":
        return [0.0, -1.0, float("nan"), float("inf"), 1e30, 2.0, 0.5]
    if accessor == "Axis":
        return [-1, -5, 0, 1, 2, 3, 4, 100, -(1 << 31)]
    return [0, 1, 2, 255, -1, 127]  # bools / small enums


@functools.lru_cache(maxsize=32)
def field_sites(data: bytes) -> Dict[str, Tuple[Site, ...]]:
    """Every field-aware mutation site of a (well-formed) model, by kind."""
    import tflite

    op_names = _names(tflite.BuiltinOperator)
    opt_names = _names(tflite.BuiltinOptions)
    type_names = _names(tflite.TensorType)
    model = tflite.Model.GetRootAsModel(data, 0)
    col = _SiteCollector(data)
    n_opcodes = model.OperatorCodesLength()
    n_buffers = model.BuffersLength()
    supported_codes = [0, 1, 3, 4, 9, 14, 17, 18, 19, 21, 22, 25, 28, 34, 39, 40, 97, 114, 117, 6, 2, 200, -1, 10000]
    for i in range(n_opcodes):
        oc = model.OperatorCodes(i)
        name = op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "?")
        col.add("builtin_code", oc, "BuiltinCode", f"builtin_code of opcode {i} ({name})", supported_codes)
        col.add("builtin_code", oc, "DeprecatedBuiltinCode", f"deprecated_builtin_code of opcode {i} ({name})",
                [c for c in supported_codes if -128 <= c <= 127])
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        where = f" of subgraph {s}" if s else ""
        nt = sg.TensorsLength()
        tname = {}
        for t_idx in range(nt):
            t = sg.Tensors(t_idx)
            name = _short((t.Name() or b"").decode("utf-8", "replace"))
            tname[t_idx] = name
            tl = f"tensor {t_idx} '{name}'{where}"
            for d in range(t.ShapeLength()):
                col.add("shape", t, "Shape", f"shape of {tl} dim {d}", _dim_values(int(t.Shape(d))), index=d,
                        group=tl)
            col.add("tensor_type", t, "Type", f"type of {tl} ({type_names.get(t.Type(), t.Type())})",
                    _ENUM_VALUES["tensor_type"])
            b = t.Buffer()
            col.add("buffer_index", t, "Buffer", f"buffer index of {tl}",
                    [0, (b + 1) % max(n_buffers, 1), n_buffers, n_buffers + 1000, _U32_MAX])
            q = t.Quantization()
            if q is not None:
                for j in range(q.ScaleLength()):
                    sc = float(q.Scale(j))
                    col.add("scale", q, "Scale", f"scale[{j}] of {tl}",
                            [0.0, -sc, float("nan"), float("inf"), float("-inf"), 3e38, 1e-45, sc * 1e6, sc * 2.0,
                             sc / 3.0], index=j, group=tl)
                for j in range(q.ZeroPointLength()):
                    zp = int(q.ZeroPoint(j))
                    col.add("zero_point", q, "ZeroPoint", f"zero_point[{j}] of {tl}",
                            [128, -129, 255, -1000, 1 << 31, 1 << 40, -(1 << 63), zp + 1, zp - 1], index=j,
                            group=tl)
                rank = t.ShapeLength()
                col.add("quantized_dimension", q, "QuantizedDimension", f"quantized_dimension of {tl}",
                        [-1, rank, rank + 3, 1 << 20] + list(range(rank)))
            if 0 < b < n_buffers and t.Type() in _NP_OF_TENSOR_TYPE:
                buf = model.Buffers(b)
                size = np.dtype(_NP_OF_TENSOR_TYPE[t.Type()]).itemsize
                n = buf.DataLength() // size
                if n:
                    info = np.iinfo(_NP_OF_TENSOR_TYPE[t.Type()]) if t.Type() != 0 else None
                    ext = [info.min, info.max, 0, -1, 1] if info else [0.0, float("nan"), float("inf"), 1e30]
                    for e in sorted({0, n // 2, n - 1}):
                        _add_buffer_element(col, buf, t.Type(), e, f"data element {e} of {tl}", ext, tl)
        for io, acc in (("input", "Inputs"), ("output", "Outputs")):
            for j in range(getattr(sg, acc + "Length")()):
                cur = int(getattr(sg, acc)(j))
                col.add("io_tensor_index", sg, acc, f"subgraph {s} {io} {j} (tensor {cur})",
                        [-1, nt, nt + 1000, _I32_MAX, (cur + 1) % max(nt, 1), 0], index=j)
        for o in range(sg.OperatorsLength()):
            op = sg.Operators(o)
            opc = op.OpcodeIndex()
            oc = model.OperatorCodes(opc) if opc < n_opcodes else None
            op_type = op_names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "?") if oc else "?"
            outs = op.OutputsAsNumpy() if op.OutputsLength() else []
            node = f"op {o} {op_type} '{tname.get(int(outs[0]), '?') if len(outs) else ''}'{where}"
            col.add("opcode_index", op, "OpcodeIndex", f"opcode index of {node}",
                    [(opc + 1) % max(n_opcodes, 1), n_opcodes, n_opcodes + 7, _U32_MAX, 0])
            for acc, io in (("Inputs", "input"), ("Outputs", "output")):
                for j in range(getattr(op, acc + "Length")()):
                    cur = int(getattr(op, acc)(j))
                    col.add("op_tensor_index", op, acc, f"{io} {j} of {node} (tensor {cur})",
                            [-1, -2, nt, nt + 1000, _I32_MAX, (cur + 1) % max(nt, 1), 0], index=j, group=node)
            otype = op.BuiltinOptionsType()
            col.add("options_type", op, "BuiltinOptionsType",
                    f"builtin_options_type of {node} ({opt_names.get(otype, otype)})", _ENUM_VALUES["options_type"])
            cls_name = opt_names.get(otype)
            table = op.BuiltinOptions()
            if cls_name in _OPTIONS_FIELDS and table is not None:
                opts = getattr(tflite, cls_name)()
                opts.Init(table.Bytes, table.Pos)
                for acc, kind in _OPTIONS_FIELDS[cls_name]:
                    orig = getattr(opts, acc)()
                    col.add(kind, opts, acc, f"{acc} of {node}", _option_candidates(acc, kind, orig))
            if cls_name == "ReshapeOptions" and table is not None:
                opts = tflite.ReshapeOptions()
                opts.Init(table.Bytes, table.Pos)
                for j in range(opts.NewShapeLength()):
                    col.add("other_options", opts, "NewShape", f"new_shape[{j}] of {node}",
                            _dim_values(int(opts.NewShape(j))), index=j)
    return {k: tuple(v) for k, v in col.sites.items() if v}


def _add_buffer_element(col: _SiteCollector, buf, ttype: int, e: int, label: str, extremes: list, group: str):
    """A constant-buffer element: located inside Buffer.data (a ubyte vector) and typed by the tensor."""
    base = _field_pos(buf, "Data", 0)
    if base is None:
        return
    np_t = np.dtype(_NP_OF_TENSOR_TYPE[ttype]).newbyteorder("<")
    pos = base + e * np_t.itemsize
    assert buf.Data(e * np_t.itemsize) == col.data[pos], f"{label}: buffer element offset mismatch"
    fmt = "<" + {np.int8: "b", np.uint8: "B", np.int16: "h", np.int32: "i", np.int64: "q",
                 np.float32: "f"}[_NP_OF_TENSOR_TYPE[ttype]]
    orig = struct.unpack_from(fmt, col.data, pos)[0]
    cands = []
    for v in extremes + ([orig + 1, orig - 1] if fmt[-1] != "f" else [orig * 2.0]):
        v = float(v) if fmt[-1] == "f" else int(v)
        if _fits(fmt, v) and not _same(v, orig) and not any(_same(v, c) for c in cands):
            cands.append(v)
    if cands:
        col.sites["buffer_data"].append(Site("buffer_data", pos, fmt, orig, label, tuple(cands), group))


# --------------------------------------------------------------------------- mutators


def _fmt_value(v) -> str:
    if isinstance(v, float):
        return repr(v) if (math.isnan(v) or math.isinf(v)) else f"{v:.6g}"
    return str(v)


def byte_flip(data: bytes, rng: np.random.Generator) -> Mutation:
    """XOR 1-16 random bytes (after the 8-byte header half of the time) with random non-zero values."""
    buf = bytearray(data)
    n = int(rng.integers(1, 17))
    lo = 8 if rng.random() < 0.5 and len(buf) > 8 else 0
    where = sorted(int(p) for p in rng.choice(np.arange(lo, len(buf)), size=min(n, len(buf) - lo), replace=False))
    for p in where:
        buf[p] ^= int(rng.integers(1, 256))
    shown = ", ".join(f"0x{p:x}" for p in where[:6]) + (", ..." if len(where) > 6 else "")
    return bytes(buf), f"flip {len(where)} byte(s) at {shown}"


def truncate(data: bytes, rng: np.random.Generator) -> Mutation:
    """Cut the file: anywhere, near its start, or within its last tenth."""
    r = rng.random()
    if r < 0.3:
        cut = int(rng.integers(0, min(64, len(data))))
    elif r < 0.6:
        cut = int(rng.integers(max(len(data) * 9 // 10, 1), len(data)))
    else:
        cut = int(rng.integers(0, len(data)))
    return data[:cut], f"truncate {len(data)} -> {cut} bytes"


def mutate_field(data: bytes, rng: np.random.Generator, kind: str) -> Mutation:
    """Overwrite one field of ``kind`` (see :data:`FIELD_KINDS`) with a bad or unusual value."""
    sites = field_sites(bytes(data)).get(kind)
    if not sites:
        raise ValueError(f"the model has no stored '{kind}' field to mutate")
    groups = list(dict.fromkeys(s.group for s in sites))  # per-channel vectors must not swamp the rest
    group = groups[int(rng.integers(len(groups)))]
    in_group = [s for s in sites if s.group == group]
    site = in_group[int(rng.integers(len(in_group)))]
    value = site.candidates[int(rng.integers(len(site.candidates)))]
    buf = bytearray(data)
    struct.pack_into(site.fmt, buf, site.pos, value)
    return bytes(buf), f"{site.label}: {_fmt_value(site.original)} -> {_fmt_value(value)}"


MUTATORS: Dict[str, Callable[[bytes, np.random.Generator], Mutation]] = {
    "byte_flip": byte_flip,
    "truncate": truncate,
    **{k: functools.partial(mutate_field, kind=k) for k in FIELD_KINDS},
}


def applicable_kinds(data: bytes, strict: bool = False) -> List[str]:
    """Mutation kinds that have something to mutate in this model (in :data:`MUTATION_KINDS` order).

    A model the ``tflite`` package cannot walk (e.g. an already mutated one)
    gets the raw kinds only, unless ``strict``: then the error propagates.
    """
    try:
        present = set(field_sites(bytes(data)))
    except Exception:
        if strict:
            raise
        present = set()
    return [k for k in MUTATION_KINDS if k in ("byte_flip", "truncate") or k in present]


def mutate(data: bytes, rng: np.random.Generator, kind: Optional[str] = None, stack: int = 1) -> Mutation:
    """Apply ``stack`` mutations (``kind`` for the first, random applicable kinds after).

    Field-aware kinds need a model the ``tflite`` package can walk; on an
    earlier mutation's broken output they fall back to ``byte_flip``.
    """
    descs = []
    for i in range(max(1, stack)):
        kinds = applicable_kinds(data)
        k = kind if (i == 0 and kind is not None) else kinds[int(rng.integers(len(kinds)))]
        if k not in kinds:
            if i == 0:
                raise ValueError(f"mutation kind '{k}' does not apply to this model")
            k = "byte_flip"
        data, d = MUTATORS[k](data, rng)
        descs.append(d)
    return data, "; ".join(descs)


# --------------------------------------------------------------------------- sandbox (TFLM + host C)

_WORKER_MEMORY_LIMIT = 4 << 30


def _worker_main() -> int:
    """Serve jobs from the parent: length-prefixed pickles on stdin, replies on the original stdout."""
    import ctypes

    try:
        import resource

        resource.setrlimit(resource.RLIMIT_AS, (_WORKER_MEMORY_LIMIT, _WORKER_MEMORY_LIMIT))
    except (ImportError, ValueError, OSError):
        pass
    proto_out = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # C++ logging to stdout must not corrupt the protocol
    proto_in = os.fdopen(os.dup(0), "rb")
    libs = {}
    while True:
        head = proto_in.read(8)
        if len(head) < 8:
            return 0
        job = pickle.loads(proto_in.read(struct.unpack("<Q", head)[0]))
        try:
            if job["op"] == "tflm":
                from tflite_micro import runtime

                interp = runtime.Interpreter.from_bytes(job["model"])
                for i, x in enumerate(job["inputs"]):
                    interp.set_input(np.ascontiguousarray(x), i)
                interp.invoke()
                outputs = []
                while True:  # TFLM's own output count (parsing a malformed model here could fail)
                    try:
                        outputs.append(np.array(interp.get_output(len(outputs))))
                    except IndexError:
                        break
                reply = {"ok": True, "outputs": outputs}
            elif job["op"] == "host":
                lib = libs.get(job["lib"])
                if lib is None:
                    lib = libs[job["lib"]] = ctypes.CDLL(job["lib"])
                fn = getattr(lib, job["fn"])
                fn.restype = ctypes.c_int
                ins = [np.ascontiguousarray(x) for x in job["inputs"]]
                outs = [np.zeros(shape, dtype=dtype) for shape, dtype in job["outputs"]]
                rc = fn(*[a.ctypes.data_as(ctypes.c_void_p) for a in ins + outs])
                reply = {"ok": rc == 0, "outputs": outs, "error": f"{job['fn']} returned {rc}"}
            elif job["op"] == "ping":
                from tflite_micro import runtime  # noqa: F401 - fails here rather than on every case

                reply = {"ok": True}
            else:
                reply = {"ok": False, "error": f"unknown job {job['op']!r}"}
        except BaseException as exc:  # noqa: BLE001 - reported to the parent
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
        sys.stdout.flush()
        blob = pickle.dumps(reply)
        proto_out.write(struct.pack("<Q", len(blob)) + blob)
        proto_out.flush()


class Sandbox:
    """A subprocess running TFLM and generated C, restarted after a crash or timeout.

    :meth:`call` returns ``{"ok": bool, "outputs": [...], "error": str}``; a
    worker that dies reports ``error="died: SIGSEGV ..."`` plus the tail of its
    stderr, one that exceeds ``timeout`` is killed and reports ``"timeout"``.
    """

    def __init__(self, timeout: float = 60.0, python: str = sys.executable):
        self.timeout = timeout
        self.python = python
        self.proc: Optional[subprocess.Popen] = None
        self.restarts = 0
        self._err = None

    def _start(self):
        self._err = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        self.proc = subprocess.Popen([self.python, os.path.abspath(__file__), "--sandbox-worker"],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self._err, env=env)

    def _stderr_since(self, start: int) -> str:
        self._err.seek(start)
        text = self._err.read().decode("utf-8", "replace")
        self._err.seek(0, 2)
        lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
        return " | ".join(lines[-3:])[:400]

    def _read(self, n: int, deadline: float) -> Optional[bytes]:
        import select

        fd = self.proc.stdout.fileno()
        chunks, got = [], 0
        while got < n:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([fd], [], [], left)
            if not r:
                return None
            chunk = os.read(fd, n - got)
            if not chunk:
                return b""
            chunks.append(chunk)
            got += len(chunk)
        return b"".join(chunks)

    def call(self, job: dict) -> dict:
        if self.proc is None or self.proc.poll() is not None:
            if self.proc is not None:
                self.restarts += 1
            self._start()
        self._err.seek(0, 2)
        start = self._err.tell()
        blob = pickle.dumps(job)
        try:
            self.proc.stdin.write(struct.pack("<Q", len(blob)) + blob)
            self.proc.stdin.flush()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + self.timeout
        head = self._read(8, deadline)
        body = self._read(struct.unpack("<Q", head)[0], deadline) if head else head
        if body:
            reply = pickle.loads(body)
            if not reply.get("ok"):
                tail = self._stderr_since(start)
                if tail:
                    reply["error"] = f"{reply.get('error', '')} [stderr: {tail}]"
            return reply
        if body is None:
            self.proc.kill()
            self.proc.wait()
            return {"ok": False, "error": f"timeout after {self.timeout:.0f} s", "died": True}
        rc = self.proc.wait()
        sig = f"signal {signal.Signals(-rc).name}" if rc < 0 else f"exit {rc}"
        return {"ok": False, "error": f"died: {sig} [stderr: {self._stderr_since(start)}]", "died": True}

    def close(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


# --------------------------------------------------------------------------- case harness

OUTCOME_BITEXACT = "compiled+bitexact"
OUTCOME_TFLM_REJECTS = "compiled+TFLM-rejects"
OUTCOME_UNCOMPARED = "compiled+TFLM-ok(not compared: cap)"
OUTCOME_NO_TFLM = "compiled(TFLM not run)"
OUTCOME_MISMATCH = "compiled+MISMATCH"
OUTCOME_HOST_FAIL = "compiled+HOST-FAIL"
OUTCOME_ERROR = "error"  # a TinyEngineError; detail = its class
OUTCOME_CRASH = "CRASH"  # any other exception from compile(); detail = its type
OUTCOME_CLI = "CLI-FAIL"  # tvmc compile misbehaved; detail = what
OUTCOME_TIMEOUT = "TIMEOUT"
FAILURES = (OUTCOME_MISMATCH, OUTCOME_HOST_FAIL, OUTCOME_CRASH, OUTCOME_CLI, OUTCOME_TIMEOUT)

_PKG_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TRACEBACK_MARKERS = ("Traceback (most recent call last)", "Stack trace", '  File "', "InternalError",
                      "Check failed", "[bt]")


@dataclasses.dataclass
class CaseResult:
    """What happened to one mutated model."""

    model: str
    case: int
    seed: Sequence[int]
    kind: str
    description: str
    outcome: str = ""
    detail: str = ""  # error class, exception type, CLI problem or TFLM message
    message: str = ""  # first line of the exception / error message
    full_message: str = ""  # the whole message (tvmc's stderr for CLI failures), up to 2000 characters
    frame: str = ""  # innermost tinyengine_tvm frame: path/in/package.py:function:line
    origin: str = ""  # innermost frame of the traceback (may be in tvm, flatbuffers, numpy)
    cli: str = ""  # what tvmc compile did: "exit 0", "exit 2", "raised TypeError"
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.outcome in FAILURES

    def label(self) -> str:
        return f"{self.outcome}:{self.detail}" if self.outcome in (OUTCOME_ERROR, OUTCOME_CRASH, OUTCOME_CLI) \
            else self.outcome

    def where(self) -> str:
        return (f"model={self.model} case={self.case} seed=np.random.default_rng({list(self.seed)}) "
                f"kind={self.kind}: {self.description}")

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d["seed"] = list(self.seed)
        d["failed"] = self.failed
        return d


class _CaseTimeout(BaseException):
    """Raised by the per-case alarm (a BaseException so `except Exception` in the compiler cannot hide it)."""


@contextlib.contextmanager
def _alarm(seconds: Optional[float]):
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def _fire(signum, frame):
        raise _CaseTimeout(f"no result after {seconds:.0f} s")

    old = signal.signal(signal.SIGALRM, _fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def _exc_name(exc: BaseException) -> str:
    t = type(exc)
    return t.__qualname__ if t.__module__ == "builtins" else f"{t.__module__}.{t.__qualname__}"


def _first_line(text: str, limit: int = 240) -> str:
    for line in str(text).splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 3] + "..."
    return ""


def _frames(exc: BaseException) -> Tuple[str, str]:
    """(innermost tinyengine_tvm frame, innermost frame) of an exception's traceback."""
    tb = traceback.extract_tb(exc.__traceback__)
    own = ""
    for fr in tb:
        path = os.path.abspath(fr.filename)
        if path.startswith(_PKG_DIR + os.sep) and not path.endswith("model_mutations.py"):
            own = f"{os.path.relpath(path, _PKG_DIR)}:{fr.name}:{fr.lineno}"
    last = ""
    if tb:
        fr = tb[-1]
        parts = fr.filename.replace("\\", "/").split("/")
        last = f"{'/'.join(parts[-2:])}:{fr.name}:{fr.lineno}"
    return own, last


def _message_problem(stderr: str) -> Optional[str]:
    """Why a failing ``tvmc compile``'s stderr is not a clear one-line-ish error (None when it is)."""
    if not stderr.startswith("error: "):
        return "stderr does not start with 'error: '"
    for m in _TRACEBACK_MARKERS:
        if m in stderr:
            return f"traceback/internal error text in the message ({m.strip()!r})"
    lines = stderr.rstrip("\n").split("\n")
    for ln in lines[1:]:
        if ln and not ln[0].isspace():
            return "a continuation line that is not an indented detail"
    if len(lines) > 200:
        return f"{len(lines)} lines"
    return None


def _hash_files(files: Dict[str, str]) -> str:
    h = hashlib.sha256()
    for k in sorted(files):
        h.update(k.encode() + b"\0" + files[k].encode() + b"\0")
    return h.hexdigest()


class FuzzHarness:
    """Classify mutated models: compile in-process (twice: API and ``tvmc``), then TFLM vs host C.

    ``bitexact_cap`` bounds the number of host gcc builds (each ~1-3 s);
    outputs are cached by the generated files' hash, so a mutation that
    yields code already built is compared for free.  ``tflm=False`` skips
    the TFLM/host part (compile-side checks only).
    """

    def __init__(self, workdir: str, bitexact_cap: int = 40, timeout: float = 120.0, tflm: bool = True,
                 sandbox_timeout: float = 60.0):
        self.workdir = workdir
        self.bitexact_cap = bitexact_cap
        self.timeout = timeout
        self.tflm = tflm
        self.sandbox = Sandbox(timeout=sandbox_timeout) if tflm else None
        self.builds = 0
        self._host_cache: Dict[str, dict] = {}
        self._n = 0

    def check_sandbox(self) -> None:
        """Raise RuntimeError unless the sandbox worker starts and TFLM imports in it (else every
        compiled case would be misread as a TFLM rejection)."""
        if self.sandbox is None:
            return
        reply = self.sandbox.call({"op": "ping"})
        if not reply.get("ok"):
            raise RuntimeError(f"the TFLM sandbox worker does not answer: {reply.get('error')}")

    def close(self):
        if self.sandbox is not None:
            self.sandbox.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- compile side
    def _compile(self, data: bytes):
        import tinyengine_tvm as te
        from tinyengine_tvm.errors import TinyEngineError

        try:
            with _alarm(self.timeout):
                return te.compile(data, name="fuzz"), None
        except TinyEngineError as exc:
            return None, exc
        except _CaseTimeout as exc:
            return None, exc
        except Exception as exc:  # noqa: BLE001 - classified by the caller
            return None, exc

    def _cli(self, data: bytes):
        from tinyengine_tvm import cli

        self._n += 1
        case_dir = os.path.join(self.workdir, f"cli{self._n}")
        os.makedirs(case_dir)
        path = os.path.join(case_dir, "fuzz.tflite")
        with open(path, "wb") as f:
            f.write(data)
        out = os.path.join(case_dir, "out")
        err, sout = io.StringIO(), io.StringIO()
        rc, exc = None, None
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(sout), _alarm(self.timeout):
                rc = cli.main(["compile", "--target=tinyengine", path, "-o", out])
        except _CaseTimeout as e:
            exc = e
        except BaseException as e:  # noqa: BLE001 - SystemExit included: any escape is a failure
            exc = e
        exists = os.path.exists(out)
        shutil.rmtree(case_dir, ignore_errors=True)
        return rc, err.getvalue(), exc, exists

    def run_case(self, model: str, case: int, seed: Sequence[int], kind: str, description: str,
                 data: bytes) -> CaseResult:
        from tinyengine_tvm.errors import TinyEngineError

        t0 = time.perf_counter()
        res = CaseResult(model, case, tuple(seed), kind, description)
        compiled, exc = self._compile(data)
        rc, stderr, cli_exc, out_exists = self._cli(data)
        res.cli = f"raised {_exc_name(cli_exc)}" if cli_exc is not None else f"exit {rc}"
        try:
            if isinstance(exc, _CaseTimeout) or isinstance(cli_exc, _CaseTimeout):
                res.outcome, res.detail = OUTCOME_TIMEOUT, f"compile took over {self.timeout:.0f} s"
            elif exc is not None and not isinstance(exc, TinyEngineError):
                res.outcome, res.detail = OUTCOME_CRASH, _exc_name(exc)
                res.message = _first_line(str(exc)) or repr(exc)
                res.frame, res.origin = _frames(exc)
            elif cli_exc is not None:
                res.outcome, res.detail = OUTCOME_CLI, f"{_exc_name(cli_exc)} escaped tvmc"
                res.message = _first_line(str(cli_exc))
                res.frame, res.origin = _frames(cli_exc)
            elif rc not in (0, 2):
                res.outcome, res.detail = OUTCOME_CLI, f"exit status {rc}"
            elif (rc == 0) != (compiled is not None):
                res.outcome = OUTCOME_CLI
                res.detail = f"tvmc exit {rc} but compile() {'succeeded' if compiled is not None else 'failed'}"
                res.message = _first_line(stderr or str(exc))
            elif rc == 2 and _message_problem(stderr):
                res.outcome, res.detail = OUTCOME_CLI, f"unclear message: {_message_problem(stderr)}"
                res.message = _first_line(stderr)
                res.frame, res.origin = _frames(exc) if exc is not None else ("", "")
            elif rc == 2 and out_exists:
                res.outcome, res.detail = OUTCOME_CLI, "output written despite the error"
            elif rc == 0 and not out_exists:
                res.outcome, res.detail = OUTCOME_CLI, "exit 0 but no output"
            elif exc is not None:
                res.outcome, res.detail = OUTCOME_ERROR, type(exc).__name__
                res.message = _first_line(str(exc))
                res.frame, res.origin = _frames(exc)
            else:
                self._reference(res, compiled, data)
            if res.outcome in (OUTCOME_ERROR, OUTCOME_CRASH, OUTCOME_CLI):
                res.full_message = (stderr if res.outcome == OUTCOME_CLI and stderr else str(exc or cli_exc or ""))[:2000]
        finally:
            res.seconds = time.perf_counter() - t0
        return res

    # -- reference side
    def _reference(self, res: CaseResult, compiled, data: bytes):
        if self.sandbox is None:
            res.outcome = OUTCOME_NO_TFLM
            return
        meta = compiled.metadata
        rng = np.random.default_rng(0)
        inputs = []
        for d in meta["inputs"]:
            if d["dtype"] in ("int8", "uint8", "int16", "int32"):
                info = np.iinfo(d["dtype"])
                inputs.append(rng.integers(info.min, int(info.max) + 1, size=d["shape"], dtype=d["dtype"]))
            else:
                inputs.append(rng.uniform(-1.0, 1.0, size=d["shape"]).astype(d["dtype"]))
        ref = self.sandbox.call({"op": "tflm", "model": data, "inputs": inputs})
        if not ref["ok"]:
            res.outcome, res.detail = OUTCOME_TFLM_REJECTS, _first_line(ref["error"], 400)
            return
        key = _hash_files(compiled.files)
        got = self._host_cache.get(key)
        if got is None:
            if self.builds >= self.bitexact_cap:
                res.outcome = OUTCOME_UNCOMPARED
                return
            self.builds += 1
            got = self._host_cache[key] = self._host_run(compiled, inputs)
        if not got["ok"]:
            res.outcome, res.detail = OUTCOME_HOST_FAIL, _first_line(got["error"], 400)
            return
        expected = ref["outputs"]
        outs = got["outputs"]
        if len(outs) != len(expected):
            res.outcome, res.detail = OUTCOME_MISMATCH, f"{len(outs)} outputs, TFLM has {len(expected)}"
            return
        for i, (e, g) in enumerate(zip(expected, outs)):
            if g.dtype != e.dtype or g.shape != e.shape:
                res.outcome, res.detail = OUTCOME_MISMATCH, f"output {i}: {g.dtype}{g.shape} vs TFLM {e.dtype}{e.shape}"
                return
            if not np.array_equal(g, e):
                diff = np.abs(g.astype(np.float64) - e.astype(np.float64))
                res.outcome = OUTCOME_MISMATCH
                res.detail = (f"output {i}: {int(np.count_nonzero(g != e))} of {g.size} values differ, "
                              f"max |diff| {np.nanmax(diff):g}")
                return
        res.outcome = OUTCOME_BITEXACT

    def _host_run(self, compiled, inputs) -> dict:
        from tinyengine_tvm.errors import TinyEngineError
        from tinyengine_tvm.runtime.host import build_host_library

        proj = os.path.join(self.workdir, f"host{self.builds}")
        try:
            compiled.export(os.path.join(proj, "project"))
            lib = build_host_library(os.path.join(proj, "project"), os.path.join(proj, "build"))
        except TinyEngineError as exc:
            lines = str(exc).splitlines()
            first = next((i for i, ln in enumerate(lines) if ": error:" in ln), None)
            if first is None:
                return {"ok": False, "error": f"host build failed: {_first_line(str(exc), 400)}"}
            where, what = lines[first].split(": error:", 1)
            code = lines[first + 1].strip() if first + 1 < len(lines) else ""
            return {"ok": False, "error": f"host build failed: {os.path.basename(where)}: error:{what} | {code[:200]}"}
        meta = compiled.metadata
        reply = self.sandbox.call({"op": "host", "lib": lib, "fn": f"{meta['model']}_run", "inputs": inputs,
                                   "outputs": [(m["shape"], m["dtype"]) for m in meta["outputs"]]})
        shutil.rmtree(proj, ignore_errors=True)  # the worker keeps the library mapped
        return reply


# --------------------------------------------------------------------------- reporting


def summarize(results: Sequence[CaseResult]) -> Dict[str, Dict[str, int]]:
    """Outcome counts per model: {model: {label: count}} (label = outcome[:detail])."""
    table: Dict[str, Dict[str, int]] = {}
    for r in results:
        row = table.setdefault(r.model, {})
        row[r.label()] = row.get(r.label(), 0) + 1
    return table


def format_table(results: Sequence[CaseResult]) -> str:
    """A text table of outcome counts per model, plus a total row."""
    table = summarize(results)
    labels = sorted({lab for row in table.values() for lab in row},
                    key=lambda s: (s.split(":")[0] in FAILURES, s))
    width = max([len(m) for m in table] + [5])
    lines = []
    for lab in labels:
        total = sum(row.get(lab, 0) for row in table.values())
        per = ", ".join(f"{m} {row[lab]}" for m, row in table.items() if lab in row)
        lines.append(f"  {total:5d}  {lab}    ({per})")
    head = f"{len(results)} cases over {len(table)} models; outcome counts (per model):"
    models = [f"  {m:<{width}}  " + ", ".join(f"{k} {v}" for k, v in sorted(row.items())) for m, row in table.items()]
    return "\n".join([head] + lines + ["per model:"] + models)


def failure_classes(results: Sequence[CaseResult]) -> List[dict]:
    """Failures grouped by (outcome, detail, innermost project frame), largest group first."""
    groups: Dict[tuple, dict] = {}
    for r in results:
        if not r.failed:
            continue
        frame = r.frame.rsplit(":", 1)[0] if r.frame else ""
        key = (r.outcome, r.detail if r.outcome != OUTCOME_MISMATCH else "", frame)
        g = groups.setdefault(key, {"outcome": r.outcome, "detail": key[1], "frame": r.frame, "origin": r.origin,
                                    "message": r.message, "count": 0, "kinds": {}, "examples": []})
        g["count"] += 1
        g["kinds"][r.kind] = g["kinds"].get(r.kind, 0) + 1
        if len(g["examples"]) < 3:
            g["examples"].append(r.where() + (f" -> {r.detail}" if r.outcome == OUTCOME_MISMATCH else ""))
    return sorted(groups.values(), key=lambda g: -g["count"])


def format_failures(results: Sequence[CaseResult]) -> str:
    out = []
    for g in failure_classes(results):
        out.append(f"[{g['count']}x] {g['outcome']} {g['detail']} at {g['frame'] or '-'} (innermost {g['origin'] or '-'})")
        if g["message"]:
            out.append(f"      message: {g['message']}")
        out.append("      kinds: " + ", ".join(f"{k} {v}" for k, v in sorted(g["kinds"].items())))
        for ex in g["examples"]:
            out.append(f"      e.g. {ex}")
    return "\n".join(out)


if __name__ == "__main__":
    if sys.path and os.path.abspath(sys.path[0]) == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # run as a file: keep this directory's modules from shadowing others
    if sys.argv[1:] == ["--sandbox-worker"]:
        sys.exit(_worker_main())
    sys.exit("usage: model_mutations.py --sandbox-worker (internal); see scripts/fuzz_models.py")
