"""ONNX QDQ import (placeholder until the ONNX path lands)."""
from __future__ import annotations

from ..errors import UnsupportedModelError


def import_onnx(data: bytes, name: str):
    """Import an ONNX QDQ model."""
    raise UnsupportedModelError([("MODEL", name, "ONNX import is not available yet")], name)
