"""Detect a model file's format and import it into a Relax IRModule."""
from __future__ import annotations

import os
from typing import Optional, Union

from ..errors import ModelFormatError
from .model import ImportedModel, TensorDesc  # noqa: F401 (re-exported)


# File stems the generated project, the kernel library, the firmware and the C
# library already use: a model of that name would shadow or overwrite them
# (include/<name>.h is searched before the system headers).
_RESERVED_STEMS = frozenset({
    "tinyengine_kernels", "fixed_point", "main", "startup", "measure", "semihost", "serial_main",
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale",
    "math", "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbool", "stddef", "stdint",
    "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype",
    "arm_math", "arm_acle", "cmsis_compiler", "cmsis_gcc",
})


def _sanitize_name(name: str) -> str:
    out = "".join(c if c.isascii() and c.isalnum() else "_" for c in name).strip("_").lower()
    if not out or out[0].isdigit():
        out = "model_" + out
    return out


def model_c_name(name: str, from_file: bool = False) -> str:
    """The C identifier prefix for a model name (sanitized), refusing names that
    collide with the project's own files or symbols."""
    from ..errors import UsageError

    c_name = _sanitize_name(name)
    kernel_stems = {os.path.splitext(f)[0] for f in _kernel_files()}
    if c_name in _RESERVED_STEMS or c_name in kernel_stems or c_name == "te" or c_name.startswith("te_"):
        hint = " (taken from the file name; pass --model-name)" if from_file else ""
        raise UsageError(f"model name '{c_name}'{hint} collides with a file or symbol of the generated "
                         "project (kernel library, firmware or C library); choose another name")
    return c_name


def _kernel_files():
    try:
        from ..kernels.sources import kernel_dir

        return os.listdir(os.path.join(kernel_dir(), "kernels"))
    except Exception:  # no kernel sources found: that error is reported where they are needed
        return []


def detect_format(data: bytes) -> str:
    """Return "tflite" or "onnx" for a model's bytes, or raise ModelFormatError."""
    if len(data) >= 8 and data[4:8] == b"TFL3":
        return "tflite"
    if len(data) > 0 and data[:1] == b"\x08":
        # ONNX ModelProto starts with field 1 (ir_version, varint).
        return "onnx"
    raise ModelFormatError(
        "not a TFLite flatbuffer (no 'TFL3' identifier) nor an ONNX model"
    )


def load_model(model: Union[str, os.PathLike, bytes], name: Optional[str] = None) -> ImportedModel:
    """Read a .tflite or .onnx model (path or bytes), check it and import it.

    Raises ModelFormatError for unreadable files and UnsupportedModelError
    (listing every offending node) before anything is written.
    """
    if isinstance(model, (bytes, bytearray)):
        data = bytes(model)
        default_name = "model"
    else:
        path = os.fspath(model)
        if os.path.isdir(path):
            raise ModelFormatError(f"{path}: is a directory, not a .tflite or .onnx model file")
        if not os.path.isfile(path):
            raise ModelFormatError(f"{path}: no such file")
        try:
            with open(path, "rb") as f:
                data = f.read()
        except OSError as exc:
            raise ModelFormatError(f"{path}: cannot read it ({exc.strerror})") from None
        default_name = os.path.splitext(os.path.basename(path))[0]
    model_name = model_c_name(name or default_name, from_file=name is None and default_name != "model")
    fmt = detect_format(data)
    if fmt == "tflite":
        from .tflite import import_tflite

        return import_tflite(data, model_name)
    from .onnx import import_onnx

    return import_onnx(data, model_name)
