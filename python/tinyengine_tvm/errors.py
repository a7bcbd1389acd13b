"""Errors raised by tinyengine-tvm; all derive from :class:`TinyEngineError`."""


class TinyEngineError(Exception):
    """Base class of every error this package raises on purpose."""


class ModelFormatError(TinyEngineError):
    """The file is not a readable TFLite or ONNX model (truncated, wrong type)."""


class UnsupportedModelError(TinyEngineError):
    """The model uses operators, dtypes or attributes the compiler cannot lower.

    ``problems`` lists one ``(op_type, node_name, reason)`` tuple per offending node.
    """

    def __init__(self, problems, model_name=""):
        if isinstance(problems, str):
            # Rebuilt from its message after crossing TVM's FFI (raised inside a
            # pass): take the problems back from the error that was raised.
            self.problems = list(_RAISED_PROBLEMS.get(problems, []))
            super().__init__(problems)
            return
        self.problems = list(problems)
        where = f" in {model_name}" if model_name else ""
        lines = [f"{len(self.problems)} unsupported node(s){where}:"]
        for op_type, node, reason in self.problems:
            lines.append(f"  - {op_type} (node '{node}'): {reason}")
        message = "\n".join(lines)
        _RAISED_PROBLEMS[message] = self.problems
        while len(_RAISED_PROBLEMS) > 32:
            _RAISED_PROBLEMS.pop(next(iter(_RAISED_PROBLEMS)))
        super().__init__(message)


# Message -> problems of the UnsupportedModelErrors made most recently (see above).
_RAISED_PROBLEMS: dict = {}


class MemoryBudgetError(TinyEngineError):
    """The memory plan does not fit the SRAM budget of the target."""


class UsageError(TinyEngineError):
    """A command-line option, argument or output path is invalid (nothing was done)."""


def _register_with_tvm_ffi() -> None:
    """Keep these error types when they cross TVM's FFI (raised inside a pass run
    by ``tvm.transform.Sequential``): unregistered, they come back as RuntimeError."""
    try:
        import tvm_ffi
    except ImportError:  # pragma: no cover - tvm is a dependency
        return
    for cls in (TinyEngineError, ModelFormatError, UnsupportedModelError, MemoryBudgetError, UsageError):
        tvm_ffi.register_error(cls)


_register_with_tvm_ffi()
