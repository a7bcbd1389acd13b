"""``te_model_desc.c``: a generated project described for the benchmark servers.

The bare-metal serial firmware and the Zephyr application run the same
protocol code (``firmware/src/te_protocol.c``, ``te_mlperf.c``); this file
binds it to one model: the tensors' names, shapes, dtypes and quantization
(from ``metadata.json``, checked against ``<name>.h`` at compile time), the
arena size, ``<name>_input/_output/_invoke`` and one static staging copy per
input (an inference may overwrite its inputs in the arena, so they are
restored before every run). With MLPerf Tiny enabled it also holds the
``db`` buffer and the input/result conventions of the benchmark.

    python -m tinyengine_tvm.micro.model_desc PROJECT OUT_DIR [--mlperf MODEL]
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from ..errors import TinyEngineError
from ..runtime.project import read_metadata

DTYPE_CODES = {"int8": 1, "uint8": 2, "int16": 3, "int32": 4, "float32": 5}

#: MLPerf Tiny benchmarks: how the runner's bytes become the input, what
#: ``results`` prints and how each value is formatted (the reference
#: submissions' conventions: kws01 truncates to "0.ddd", ic01 and ad01 print
#: ``%0.3f``, vww01 prints ``%0.3f`` with a comma after every value).
MLPERF_PRESETS = {
    "kws01": ("raw", "vector", "trunc3"),                     # int8 spectrogram bytes
    "ic01": ("uint8_minus_128", "vector", "printf3"),         # uint8 RGB image, minus 128
    "vww01": ("uint8_minus_128", "vector", "printf3_comma"),  # uint8 image, minus 128
    "ad01": ("float32", "mse", "printf3"),                    # float32 features; result = reconstruction MSE
}
MLPERF_INPUT_MODES = {"raw": 0, "uint8_minus_128": 1, "float32": 2}
MLPERF_RESULTS_MODES = {"vector": 0, "mse": 1}
#: name -> (TE_MLPERF_FMT_*, trailing comma)
MLPERF_FORMATS = {"printf3": (0, 0), "trunc3": (1, 0), "printf3_comma": (0, 1)}
#: The reference DUT's db buffer (MAX_DB_INPUT_SIZE = 96 * 96 * 3 bytes, every benchmark).
MLPERF_REFERENCE_DB_BYTES = 96 * 96 * 3
#: UART baud rate the official runner's device files use per benchmark (performance
#: and accuracy modes; energy mode is 9600 for all): ad01 921600, the others 115200.
MLPERF_BAUD = {"ad01": 921600}
MLPERF_DEFAULT_BAUD = 115200
MLPERF_ENERGY_BAUD = 9600


def mlperf_default_baud(model_version: str, energy: bool = False) -> int:
    """The baud rate the official runner expects of a DUT running ``model_version``."""
    return MLPERF_ENERGY_BAUD if energy else MLPERF_BAUD.get(model_version, MLPERF_DEFAULT_BAUD)


@dataclass(frozen=True)
class MlperfOptions:
    """The MLPerf Tiny DUT configuration of one build."""

    model_version: str           #: what ``profile`` reports as m-model-[...]
    input_mode: str = "raw"      #: raw | uint8_minus_128 | float32
    results: str = "vector"      #: vector | mse
    results_format: str = "printf3"  #: printf3 | trunc3 | printf3_comma
    db_bytes: Optional[int] = None   #: db buffer capacity (None: the reference's 27,648 B, or the input's size)

    @classmethod
    def create(cls, model_version: str, input_mode: Optional[str] = None,
               results: Optional[str] = None, results_format: Optional[str] = None,
               db_bytes: Optional[int] = None) -> "MlperfOptions":
        preset = MLPERF_PRESETS.get(model_version, ("raw", "vector", "printf3"))
        opts = cls(model_version, input_mode or preset[0], results or preset[1], results_format or preset[2],
                   db_bytes)
        if opts.input_mode not in MLPERF_INPUT_MODES:
            raise TinyEngineError(f"mlperf_input '{opts.input_mode}': use one of {', '.join(MLPERF_INPUT_MODES)}")
        if opts.results not in MLPERF_RESULTS_MODES:
            raise TinyEngineError(f"mlperf_results '{opts.results}': use one of {', '.join(MLPERF_RESULTS_MODES)}")
        if opts.results_format not in MLPERF_FORMATS:
            raise TinyEngineError(f"mlperf_format '{opts.results_format}': use one of {', '.join(MLPERF_FORMATS)}")
        if opts.results == "mse" and opts.input_mode != "float32":
            raise TinyEngineError("mlperf_results=mse compares the output with the float32 input: "
                                  "it needs mlperf_input=float32")
        if not opts.model_version or any(c in opts.model_version for c in "[]\"\\%\r\n"):
            raise TinyEngineError(f"mlperf model name {opts.model_version!r}: no brackets, quotes, '%' or newlines")
        if db_bytes is not None and not 1 <= int(db_bytes) <= 0x7FFFFFFF:
            raise TinyEngineError(f"mlperf_db_bytes {db_bytes}: must be 1..2147483647")
        return opts

    def db_capacity(self, meta: dict) -> int:
        """Bytes of the db buffer: ``db_bytes``, else the reference's, or the input's when larger."""
        need = mlperf_db_bytes(meta, self.input_mode)
        if self.db_bytes is not None:
            if int(self.db_bytes) < need:
                raise TinyEngineError(f"mlperf_db_bytes={self.db_bytes}: the model's input needs {need} bytes "
                                      f"of db ({self.input_mode})")
            return int(self.db_bytes)
        return max(MLPERF_REFERENCE_DB_BYTES, need)


def _elements(desc: dict) -> int:
    return int(np.prod(desc["shape"], dtype=np.int64))


def tensor_bytes(desc: dict) -> int:
    return _elements(desc) * np.dtype(desc["dtype"]).itemsize


def mlperf_db_bytes(meta: dict, input_mode: str) -> int:
    """Bytes the runner sends with ``db load`` for all inputs."""
    total = 0
    for d in meta["inputs"]:
        n = _elements(d)
        total += tensor_bytes(d) if input_mode == "raw" else 4 * n if input_mode == "float32" else n
    return total


def staging_bytes(meta: dict) -> int:
    """Static RAM of the input staging copies."""
    return sum(tensor_bytes(d) for d in meta["inputs"])


def c_string(s: str) -> str:
    """A C string literal for any text (non-ASCII and control bytes as octal escapes)."""
    out = ['"']
    for b in s.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 32 <= b < 127 and c != "?":
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    out.append('"')
    return "".join(out)


def _c_float(x: Optional[float]) -> str:
    if x is None:
        return "0.0f"
    v = float(np.float32(x))
    return f"{v.hex()}f /* {v!r} */"


def model_desc_source(meta: dict, mlperf: Optional[MlperfOptions] = None) -> str:
    """Text of te_model_desc.c for a compiled project's metadata."""
    name = meta["model"]
    N = name.upper()
    lines = [f"/* Generated by tinyengine_tvm.micro.model_desc for model '{name}'. Do not edit. */\n",
             "#include <stdint.h>\n\n#include \"te_protocol.h\"\n"]
    if mlperf is not None:
        lines.append("#include \"te_mlperf.h\"\n")
    lines.append(f"#include \"{name}.h\"\n\n")
    tables = {}
    for kind, descs in (("input", meta["inputs"]), ("output", meta["outputs"])):
        entries = []
        for i, d in enumerate(descs):
            if d["dtype"] not in DTYPE_CODES:
                raise TinyEngineError(f"{kind} '{d['name']}': dtype {d['dtype']} is not supported by the protocol")
            shape = ", ".join(str(int(s)) for s in d["shape"]) or "1"
            sym = f"te_{kind}_{i}_shape"
            lines.append(f"static const int32_t {sym}[] = {{{shape}}};\n")
            nbytes = tensor_bytes(d)
            lines.append(f"_Static_assert({N}_{kind.upper()}_{i}_SIZE * sizeof({_ctype(d['dtype'])}) == {nbytes}u, "
                         f"\"{kind} {i}: {name}.h and metadata.json disagree on its size\");\n")
            quant = d.get("scale") is not None
            entries.append(f"    {{{c_string(d['name'])}, {DTYPE_CODES[d['dtype']]}u, {len(d['shape'])}u, "
                           f"{1 if quant else 0}u, {sym}, {nbytes}u, {_c_float(d.get('scale') if quant else None)}, "
                           f"{int(d.get('zero_point') or 0)}}},\n")
        tables[kind] = entries
    lines.append("\n")
    for i, d in enumerate(meta["inputs"]):
        lines.append(f"static uint8_t te_staging_{i}[{tensor_bytes(d)}] __attribute__((aligned(16)));\n")
    n_in = len(meta["inputs"])
    staging = ", ".join(f"te_staging_{i}" for i in range(n_in)) or "0"
    lines.append(f"static uint8_t* const te_staging[] = {{{staging}}};\n\n")
    for kind in ("input", "output"):
        lines.append(f"static const te_tensor_desc te_{kind}s_desc[] = {{\n")
        lines.extend(tables[kind] or ["    {0, 0u, 0u, 0u, 0, 0u, 0.0f, 0},\n"])
        lines.append("};\n")
    lines.append(f"\n#ifdef TE_PROFILE\n/* Per-step counters of a profile build (te_profile_mark, te_protocol.c). */\n"
                 f"static uint64_t te_profile_counters[{N}_NUM_STEPS + 1];\n#define TE_PROFILE_COUNTERS te_profile_counters\n"
                 f"#else\n#define TE_PROFILE_COUNTERS 0\n#endif\n")
    lines.append(f"\nconst te_model_desc te_model = {{\n"
                 f"    {c_string(name)}, {n_in}u, {len(meta['outputs'])}u, te_inputs_desc, te_outputs_desc,\n"
                 f"    {N}_ARENA_BYTES, {name}_input, {name}_output, {name}_invoke, te_staging,\n"
                 f"    {N}_NUM_STEPS, TE_PROFILE_COUNTERS,\n}};\n")
    if mlperf is not None:
        db = mlperf.db_capacity(meta)
        fmt, comma = MLPERF_FORMATS[mlperf.results_format]
        lines.append(f"\n/* MLPerf Tiny: model '{mlperf.model_version}', input {mlperf.input_mode}, "
                     f"results {mlperf.results} ({mlperf.results_format}), db buffer {db} bytes. */\n")
        lines.append(f"static uint8_t te_mlperf_db[{db}] __attribute__((aligned(16)));\n")
        lines.append(f"const te_mlperf_config te_mlperf_cfg = {{{c_string(mlperf.model_version)}, "
                     f"{MLPERF_INPUT_MODES[mlperf.input_mode]}u, {MLPERF_RESULTS_MODES[mlperf.results]}u, "
                     f"{fmt}u, {comma}u, te_mlperf_db, {db}u}};\n")
    return "".join(lines)


_CTYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}


def _ctype(dtype: str) -> str:
    return _CTYPES[dtype]


def write_model_desc(project_dir: str, out_dir: str, mlperf: Optional[MlperfOptions] = None) -> str:
    """Write te_model_desc.c for ``project_dir`` into ``out_dir`` (unchanged files are not rewritten)."""
    text = model_desc_source(read_metadata(project_dir), mlperf)
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "te_model_desc.c")
    if os.path.isfile(path) and open(path).read() == text:
        return path
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
    return path


def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tinyengine_tvm.micro.model_desc",
                                 description="Write te_model_desc.c (the model as the benchmark servers see it).")
    ap.add_argument("project")
    ap.add_argument("out_dir")
    ap.add_argument("--mlperf", metavar="MODEL", help="also the MLPerf Tiny configuration (kws01, ic01, ...)")
    ap.add_argument("--mlperf-input", choices=list(MLPERF_INPUT_MODES))
    ap.add_argument("--mlperf-results", choices=list(MLPERF_RESULTS_MODES))
    ap.add_argument("--mlperf-format", choices=list(MLPERF_FORMATS))
    args = ap.parse_args(argv)
    ml = (MlperfOptions.create(args.mlperf, args.mlperf_input, args.mlperf_results, args.mlperf_format)
          if args.mlperf else None)
    print(write_model_desc(args.project, args.out_dir, ml))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
