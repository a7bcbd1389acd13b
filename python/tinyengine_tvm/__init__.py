"""tinyengine-tvm: int8 models to standalone C for microcontrollers, on Apache TVM."""
from .compiler import CompiledModel, compile  # noqa: A004
from .errors import MemoryBudgetError, ModelFormatError, TinyEngineError, UnsupportedModelError
from . import transform

__version__ = "0.1.0"
__all__ = ["compile", "CompiledModel", "transform", "TinyEngineError", "ModelFormatError",
           "UnsupportedModelError", "MemoryBudgetError", "__version__"]
