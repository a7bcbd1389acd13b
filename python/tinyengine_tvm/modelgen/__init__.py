"""Writers and generators of small int8 TFLite models (tests and the bundled default model)."""

from .tflite_writer import TFLiteWriter, load_schema
from . import quantized_ops
from .quantized_ops import MODEL_BUILDERS, QuantizedGraph, float_model

__all__ = [
    "TFLiteWriter",
    "load_schema",
    "QuantizedGraph",
    "quantized_ops",
    "MODEL_BUILDERS",
    "float_model",
    "build_default_model",
]


def build_default_model() -> bytes:
    """Build the bundled MobileNet-style int8 model (see ``default_model``)."""
    from .default_model import build_default_model as _build

    return _build()
