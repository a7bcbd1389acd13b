"""The public int8 models of ../shared/models and their shipped test inputs."""
from __future__ import annotations

import os
import struct
from typing import List, Optional

import numpy as np

SHARED_MODELS = [
    "hello_world_int8", "ad01_int8", "micro_speech_quantized", "kws_ref_model",
    "person_detect", "vww_96_int8", "pretrainedResnet_quant",
]


def shared_models_dir() -> Optional[str]:
    """``../shared/models`` next to the checkout (or $TINYENGINE_SHARED_MODELS), if present."""
    env = os.environ.get("TINYENGINE_SHARED_MODELS")
    here = os.path.dirname(os.path.abspath(__file__))
    repo = os.path.normpath(os.path.join(here, "..", "..", ".."))
    for d in (env, os.path.join(repo, "..", "shared", "models"), os.path.join(os.getcwd(), "..", "shared", "models")):
        if d and os.path.isfile(os.path.join(d, "README.md")):
            return os.path.normpath(d)
    return None


def _quantize(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    q = np.round(x.astype(np.float32) / np.float32(scale)) + zero_point
    return np.clip(q, -128, 127).astype(np.int8)


def _read_bmp_gray(path: str) -> np.ndarray:
    """An 8-bit palettized BMP as a uint8 grey image (rows top to bottom)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] != b"BM":
        raise ValueError(f"{path}: not a BMP file")
    offset = struct.unpack_from("<I", data, 10)[0]
    width, height, _, bpp = struct.unpack_from("<iiHH", data, 18)
    if bpp != 8:
        raise ValueError(f"{path}: expected an 8-bit BMP, got {bpp} bits per pixel")
    palette = np.frombuffer(data, np.uint8, count=256 * 4, offset=54).reshape(256, 4)
    row = (width + 3) // 4 * 4
    idx = np.frombuffer(data, np.uint8, count=row * abs(height), offset=offset).reshape(abs(height), row)[:, :width]
    img = palette[idx, 0]
    return img[::-1] if height > 0 else img


def shipped_inputs(model: str, desc: dict) -> List[np.ndarray]:
    """The published test inputs of a shared model, converted to its input tensor."""
    d = shared_models_dir()
    if d is None:
        return []
    tdir = os.path.join(d, "test_inputs")
    shape, scale, zp = desc["shape"], desc.get("scale"), desc.get("zero_point")
    if model == "kws_ref_model":
        return [np.load(os.path.join(tdir, "kws_inputs_int8.npy")).reshape(shape)]
    if model == "vww_96_int8":
        return [_quantize(x, scale, zp).reshape(shape) for x in np.load(os.path.join(tdir, "vww_inputs_float32.npy"))]
    if model == "pretrainedResnet_quant":
        x = np.load(os.path.join(tdir, "ic_inputs_uint8.npy"))
        return [(x.astype(np.int16) - 128).astype(np.int8).reshape(shape)]
    if model == "ad01_int8":
        hist = np.load(os.path.join(tdir, "ad_dcase01_hist_float32.npy"))
        return [_quantize(hist[i:i + 5].reshape(-1), scale, zp).reshape(shape) for i in (0, 100, 195)]
    if model == "person_detect":
        return [(_read_bmp_gray(os.path.join(tdir, f)).astype(np.int16) - 128).astype(np.int8).reshape(shape)
                for f in ("person.bmp", "no_person.bmp")]
    return []
