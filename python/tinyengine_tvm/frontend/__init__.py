"""Model import: read TFLite or ONNX files and import them with TVM's frontends."""
from .loader import ImportedModel, TensorDesc, load_model

__all__ = ["ImportedModel", "TensorDesc", "load_model"]
