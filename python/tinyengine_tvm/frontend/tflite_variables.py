"""Resource variables (VAR_HANDLE, READ_VARIABLE, ASSIGN_VARIABLE, CALL_ONCE) as state.

A streaming TFLite model keeps state between invocations in resource
variables: VAR_HANDLE names one, READ_VARIABLE gives its value, ASSIGN_VARIABLE
replaces it, and a CALL_ONCE initialisation subgraph assigns the initial values
at the first invocation.  TVM's importer reads none of them.

:func:`stateless_model` rewrites such a model into one without them: each
variable's value becomes an extra model input and its newly assigned value an
extra model output (the model's own inputs and outputs come first).  The
compiler gives each variable a buffer of the arena that lives from one
invocation to the next; the generated code reads it where the model read the
variable and copies the assigned value into it at the end of the invocation.

That is TFLM's result as long as every READ_VARIABLE of a variable comes before
its one ASSIGN_VARIABLE, which is checked.  At start-up a variable holds the
value its initialisation subgraph assigns, else TFLM's default (the assigned
tensor's zero point in int8, 0 in int16).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import ModelFormatError, UnsupportedModelError

#: The operators this module removes.
VARIABLE_OPS = ("VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE", "CALL_ONCE")

#: What the operator table says of them.
VARIABLE_OPS_NOTE = ("int8/int16 resource variables kept in the arena between invocations (CALL_ONCE: "
                     "only an initialisation subgraph of constant assignments)")

_NUMPY = {9: np.int8, 7: np.int16}  # TensorType INT8, INT16


@dataclasses.dataclass
class Variable:
    """One resource variable of a rewritten model."""

    name: str  #: container/shared_name of its VAR_HANDLE
    shape: List[int]
    dtype: str
    initial: np.ndarray  #: raw values at start-up (the CALL_ONCE assignment, else TFLM's default)
    read_input: Optional[int]  #: index of the model input holding its value (None: never read)
    assign_output: Optional[int]  #: index of the model output with the value assigned (None: never assigned)

    @property
    def nbytes(self) -> int:
        """Bytes of the variable."""
        return int(np.prod(self.shape, dtype=np.int64)) * np.dtype(self.dtype).itemsize


def has_variables(model, names) -> bool:
    """Whether a parsed model uses any of :data:`VARIABLE_OPS`."""
    return any(names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())) in VARIABLE_OPS
               for oc in (model.OperatorCodes(i) for i in range(model.OperatorCodesLength())))


def stateless_model(data: bytes, model_name: str, names: Dict[int, str]) -> Tuple[bytes, List[Variable]]:
    """The model without its variable operators, and its variables (see the module doc).

    Raises UnsupportedModelError naming the node when the variables are used in
    a way the rewrite cannot keep exact, ModelFormatError when the subgraphs
    CALL_ONCE runs are malformed (subgraph 0 is checked before).
    """
    try:
        return _stateless_model(data, model_name, names)
    except (IndexError, KeyError, TypeError, AttributeError, ValueError) as exc:
        raise ModelFormatError(f"malformed TFLite file: its variables' operators or initialisation "
                               f"subgraph are inconsistent ({type(exc).__name__}: {exc})") from exc


def _stateless_model(data: bytes, model_name: str, names: Dict[int, str]) -> Tuple[bytes, List[Variable]]:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    model = schema.ModelT.InitFromPackedBuf(bytearray(data), 0)
    op_type = lambda op: names.get(max(model.operatorCodes[op.opcodeIndex].builtinCode,  # noqa: E731
                                       model.operatorCodes[op.opcodeIndex].deprecatedBuiltinCode), "CUSTOM")
    problems: List[Tuple[str, str, str]] = []
    main = model.subgraphs[0]
    tname = lambda sg, i: sg.tensors[i].name.decode() if isinstance(sg.tensors[i].name, bytes) \
        else str(sg.tensors[i].name)  # noqa: E731

    def handle_names(sg, where) -> Dict[int, str]:
        out = {}
        for k, op in enumerate(sg.operators or []):
            if op_type(op) == "VAR_HANDLE":
                o = op.builtinOptions
                container = _text(getattr(o, "container", None))
                shared = _text(getattr(o, "sharedName", None))
                out[int(op.outputs[0])] = f"{container}/{shared}" if container else shared
        return out

    # Initial values: the subgraphs CALL_ONCE runs, which may only assign constants.
    initial: Dict[str, Tuple[np.ndarray, object]] = {}
    init_subgraphs = set()
    calls = [(k, op) for k, op in enumerate(main.operators or []) if op_type(op) == "CALL_ONCE"]
    for k, op in calls:
        index = int(op.builtinOptions.initSubgraphIndex)
        where = f"#{k} CALL_ONCE"
        if not 0 < index < len(model.subgraphs):
            problems.append(("CALL_ONCE", where, f"initialisation subgraph {index} does not exist"))
            continue
        init_subgraphs.add(index)
        sg = model.subgraphs[index]
        handles = handle_names(sg, index)
        for j, iop in enumerate(sg.operators or []):
            kind = op_type(iop)
            if kind == "VAR_HANDLE":
                continue
            value = sg.tensors[int(iop.inputs[1])] if kind == "ASSIGN_VARIABLE" else None
            buf = model.buffers[value.buffer].data if value is not None else None
            if kind != "ASSIGN_VARIABLE" or buf is None or len(buf) == 0 or value.type not in _NUMPY:
                problems.append((kind, f"subgraph {index} #{j}",
                                 "an initialisation subgraph may only assign constant int8/int16 values"))
                continue
            raw = np.frombuffer(bytes(bytearray(buf)), _NUMPY[value.type]).reshape([int(d) for d in value.shape])
            initial[handles[int(iop.inputs[0])]] = (raw.copy(), value)
    for index in range(1, len(model.subgraphs)):
        if index not in init_subgraphs:
            problems.append(("SUBGRAPH", f"subgraph {index}",
                             "models with control flow (several subgraphs) are not supported"))

    # The main subgraph: the reads before the one assignment of each variable.
    handles = handle_names(main, 0)
    reads: Dict[str, int] = {}  # variable -> its first read's tensor
    assigns: Dict[str, Tuple[int, object]] = {}  # variable -> (assigned tensor, its TensorT)
    rename: Dict[int, int] = {}  # later reads' tensors -> the first read's
    first_variable_op = None
    for k, op in enumerate(main.operators or []):
        kind = op_type(op)
        if kind not in VARIABLE_OPS:
            for t in op.inputs if op.inputs is not None else []:
                if int(t) in handles:
                    problems.append((kind, f"#{k} {tname(main, int(op.outputs[0])) if len(op.outputs) else k}",
                                     "reads a variable handle; only READ_VARIABLE and ASSIGN_VARIABLE may"))
            continue
        if kind == "CALL_ONCE" and first_variable_op is not None:
            problems.append((kind, f"#{k} CALL_ONCE", "runs after the variables are used"))
        if kind in ("READ_VARIABLE", "ASSIGN_VARIABLE") and first_variable_op is None:
            first_variable_op = k
        if kind == "READ_VARIABLE":
            var, out = handles.get(int(op.inputs[0])), int(op.outputs[0])
            where = f"#{k} {tname(main, out)}"
            if var in assigns:
                problems.append((kind, where, f"reads variable '{var}' after it is assigned in the same invocation"))
            elif var in reads:
                a, b = main.tensors[reads[var]], main.tensors[out]
                if not _same_tensor_type(a, b):
                    problems.append((kind, where, f"reads variable '{var}' with another type or quantization "
                                                  "than its first read"))
                rename[out] = reads[var]
            else:
                reads[var] = out
        elif kind == "ASSIGN_VARIABLE":
            var, value = handles.get(int(op.inputs[0])), int(op.inputs[1])
            where = f"#{k} ASSIGN_VARIABLE {tname(main, value)}"
            if var in assigns:
                problems.append((kind, where, f"assigns variable '{var}' a second time in one invocation"))
            else:
                assigns[var] = (rename.get(value, value), main.tensors[value])

    variables: List[Variable] = []
    n_in, n_out = len(main.inputs), len(main.outputs)
    extra_in, extra_out = [], []
    for var in sorted(set(reads) | set(assigns), key=lambda v: (v not in reads, reads.get(v, 0))):
        typed = main.tensors[reads[var]] if var in reads else assigns[var][1]
        first = initial[var][1] if var in initial else (assigns[var][1] if var in assigns else None)
        if first is None:
            problems.append(("READ_VARIABLE", f"variable '{var}'", "is read but never assigned"))
            continue
        others = [t for t in (typed, first, assigns.get(var, (None, typed))[1])]
        if typed.type not in _NUMPY or any(t.type != typed.type or list(t.shape) != list(typed.shape) for t in others):
            problems.append(("ASSIGN_VARIABLE", f"variable '{var}'",
                             "its reads and assignments must be int8 or int16 tensors of one shape"))
            continue
        dtype = np.dtype(_NUMPY[typed.type])
        if var in initial:
            start = initial[var][0]
        else:  # TFLM fills a new variable with the zero point of the first tensor assigned (int8)
            zp = int(first.quantization.zeroPoint[0]) if dtype == np.int8 and first.quantization is not None \
                and first.quantization.zeroPoint is not None and len(first.quantization.zeroPoint) else 0
            start = np.full([int(d) for d in typed.shape], zp, dtype)
        read_input = assign_output = None
        if var in reads:
            read_input = n_in + len(extra_in)
            extra_in.append(reads[var])
        if var in assigns:
            assign_output = n_out + len(extra_out)
            extra_out.append(assigns[var][0])
        variables.append(Variable(var, [int(d) for d in typed.shape], dtype.name, start, read_input, assign_output))
    if problems:
        raise UnsupportedModelError(problems, model_name)

    for op in main.operators or []:
        if op.inputs is not None:
            op.inputs = [rename.get(int(t), int(t)) for t in op.inputs]
    main.operators = [op for op in main.operators or [] if op_type(op) not in VARIABLE_OPS]
    main.inputs = [int(t) for t in main.inputs] + extra_in
    main.outputs = [rename.get(int(t), int(t)) for t in main.outputs] + extra_out
    model.subgraphs = [main]
    builder = flatbuffers.Builder(len(data) + 1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output()), variables


#: Function attribute listing main's variables: [name, read input index, assigned
#: output index] (-1: none), read by KernelGraph.from_relax.
VARIABLES_ATTR = "tinyengine.variables"


def mark_variables(func, variables: List[Variable]):
    """``func`` with :data:`VARIABLES_ATTR` describing ``variables``."""
    rows = [[v.name, -1 if v.read_input is None else v.read_input, -1 if v.assign_output is None else v.assign_output]
            for v in variables]
    return func.with_attr(VARIABLES_ATTR, rows)


def _text(value) -> str:
    if value is None:
        return ""
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _same_tensor_type(a, b) -> bool:
    qa, qb = a.quantization, b.quantization
    q = lambda x: (None if x is None or x.scale is None else [float(s) for s in x.scale],  # noqa: E731
                   None if x is None or x.zeroPoint is None else [int(z) for z in x.zeroPoint])
    return a.type == b.type and list(a.shape) == list(b.shape) and q(qa) == q(qb)
