"""TFLite int8/int16x8 import: validate the flatbuffer, then run TVM's TFLite frontend."""
from __future__ import annotations

from typing import Dict, List, Tuple

import numpy as np

from ..errors import UnsupportedModelError
from .model import ImportedModel, TensorDesc
from .tflite_variables import has_variables, mark_variables, stateless_model

# TFLite TensorType enum values used here.
_FLOAT32, _INT32, _INT8, _INT64, _INT16 = 0, 2, 9, 4, 7
_ACTIVATION_TYPES = {"int8": _INT8, "int16": _INT16}
_VALUE_TYPES = {"int8": _INT8, "int16": _INT16, "int32": _INT32, "int64": _INT64, "bool": 6}
_TYPE_NAMES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 5: "string",
               6: "bool", 7: "int16", 9: "int8", 10: "float64"}

_FUSED_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6"}
# Operators that move int8 values without rescaling them.
_SAME_QUANTIZATION = {"AVERAGE_POOL_2D", "MAX_POOL_2D", "PAD", "RESHAPE", "SQUEEZE", "TRANSPOSE",
                      "RESIZE_NEAREST_NEIGHBOR", "RESIZE_BILINEAR"}


def _op_names():
    import tflite

    return {v: k for k, v in vars(tflite.BuiltinOperator).items() if not k.startswith("_")}


def _op_type(model, op, names) -> str:
    """The builtin operator name of ``op`` (TFLite's max of the two code fields)."""
    oc = model.OperatorCodes(op.OpcodeIndex())
    return names.get(max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode()), "CUSTOM")


def _parse(data: bytes):
    """The root table of a model :func:`check_tflite` has already verified (every
    offset, table and vector in bounds), so the unchecked accessors are safe."""
    import tflite

    return tflite.Model.GetRootAsModel(data, 0)


def _tensor_name(sg, idx: int) -> str:
    name = sg.Tensors(idx).Name()
    return name.decode("utf-8", "replace") if name else f"tensor_{idx}"


def _quant(tensor) -> Tuple[np.ndarray, np.ndarray]:
    q = tensor.Quantization()
    if q is None or q.ScaleLength() == 0:
        return np.zeros(0, np.float32), np.zeros(0, np.int64)
    return q.ScaleAsNumpy().astype(np.float32), q.ZeroPointAsNumpy().astype(np.int64)


def _is_const(model, tensor) -> bool:
    buf = model.Buffers(tensor.Buffer())
    return buf is not None and buf.DataLength() > 0


def supported_ops() -> Dict[str, Tuple[int, ...]]:
    """TFLite operators the integer lowering handles -> indices of their activation
    inputs (the rest are constants such as weights, bias, shapes or axes; an
    empty tuple: every input).  Read from the lowering's family records, so an
    operator is accepted exactly when a record lowers it."""
    from ..transform.lowering import supported_tflite_ops
    from .tflite_fixups import DIRECT_IMPORTS

    return {**supported_tflite_ops(), **{op: inputs for op, (inputs, _) in DIRECT_IMPORTS.items()}}


def supported_dtypes() -> Dict[str, Tuple[str, ...]]:
    """TFLite operator -> the activation types (int8, int16) the integer lowering handles it for."""
    from ..transform.lowering import supported_tflite_dtypes
    from .tflite_fixups import DIRECT_IMPORTS

    return {**supported_tflite_dtypes(), **{op: dtypes for op, (_, dtypes) in DIRECT_IMPORTS.items()}}


def supported_output_dtypes() -> Dict[str, Tuple[str, ...]]:
    """TFLite operator -> the types of its outputs the lowering produces (a
    comparison's bool, ARG_MAX's int32; else the activation types)."""
    from ..transform.lowering import supported_tflite_output_dtypes
    from .tflite_fixups import DIRECT_IMPORTS

    from .tflite_fixups import DIRECT_OUTPUT_TYPES

    return {**supported_tflite_output_dtypes(), **{op: dtypes for op, (_, dtypes) in DIRECT_IMPORTS.items()},
            **DIRECT_OUTPUT_TYPES}


#: Why some operators a user may expect are refused.
_REFUSED_BECAUSE = {
    "IF": "control flow is not supported",
    "WHILE": "control flow is not supported",
    "CALL_ONCE": "control flow is not supported (except an initialisation subgraph of variable assignments)",
}


def _check_operator(model, sg, op, names, supported, dtypes, output_dtypes) -> List[str]:
    """Reasons why one operator cannot be lowered (empty when it can)."""
    oc = model.OperatorCodes(op.OpcodeIndex())
    code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
    op_type = names.get(code, f"CUSTOM({code})")
    if op_type not in supported:
        why = _REFUSED_BECAUSE.get(op_type)
        return [f"operator {op_type} is not supported" + (f": {why}" if why else "")]
    reasons = []
    inputs = [i for i in op.InputsAsNumpy() if i >= 0]
    outputs = list(op.OutputsAsNumpy())
    act_idx = supported[op_type]
    acts_in = inputs if not act_idx else [inputs[i] for i in act_idx if i < len(inputs)]
    act_types = {_ACTIVATION_TYPES[d] for d in dtypes[op_type]}
    out_types = {_VALUE_TYPES[d] for d in output_dtypes[op_type]}
    names_of = "/".join(dtypes[op_type])
    for idx in acts_in + outputs:
        t = sg.Tensors(idx)
        dtype = t.Type()
        allowed = set(act_types) if idx in acts_in else set(out_types)
        if op_type == "QUANTIZE" and idx in acts_in:
            allowed |= {_FLOAT32, _INT32}
        if op_type == "DEQUANTIZE" and idx in outputs:
            allowed = {_FLOAT32}
        if dtype not in allowed:
            what = names_of if idx in acts_in else "/".join(output_dtypes[op_type])
            reasons.append(
                f"tensor '{_tensor_name(sg, idx)}' is {_TYPE_NAMES.get(dtype, dtype)}; "
                f"{op_type} is supported for {what} {'activations' if idx in acts_in else 'outputs'}"
                + (" (float models must be quantized to int8 or int16x8 first)" if dtype == _FLOAT32 else "")
            )
            continue
        if op_type == "CAST":
            continue  # raw integer values: TFLM's CAST ignores quantization
        if dtype in (_INT8, _INT16) or dtype == _INT32 and op_type == "QUANTIZE":
            scales, zps = _quant(t)
            what = _TYPE_NAMES[dtype]
            if scales.size == 0:
                reasons.append(f"tensor '{_tensor_name(sg, idx)}' is {what} without quantization parameters")
            elif scales.size > 1:
                reasons.append(f"tensor '{_tensor_name(sg, idx)}' has per-channel activation quantization")
            elif dtype == _INT16 and zps.size and zps[0] != 0 and not _int8_softmax_output(sg, op_type, inputs, idx):
                reasons.append(f"tensor '{_tensor_name(sg, idx)}' is int16 with zero point {zps[0]}; "
                               "TFLM's int16 kernels need zero point 0")
    if op_type in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED") and len(inputs) > 1:
        w = sg.Tensors(inputs[1])
        if w.Type() != _INT8:
            reasons.append(f"weights '{_tensor_name(sg, inputs[1])}' are {_TYPE_NAMES.get(w.Type(), w.Type())}, not int8")
        if not _is_const(model, w):
            reasons.append(f"weights '{_tensor_name(sg, inputs[1])}' are not constant")
        bias_type = {_INT8: _INT32, _INT16: _INT64}.get(sg.Tensors(inputs[0]).Type())
        # TFLM's 16x8 FULLY_CONNECTED and CONV_2D also run an int32 bias (summing in
        # int32); its depthwise convolution misreads one.
        narrow = op_type in ("FULLY_CONNECTED", "CONV_2D") and bias_type == _INT64
        if len(inputs) > 2 and bias_type is not None and sg.Tensors(inputs[2]).Type() != bias_type \
                and not (narrow and sg.Tensors(inputs[2]).Type() == _INT32):
            reasons.append(f"bias '{_tensor_name(sg, inputs[2])}' is not {_TYPE_NAMES[bias_type]}")
    if op_type == "TRANSPOSE_CONV" and len(inputs) > 2:
        w = sg.Tensors(inputs[1])
        if not _is_const(model, w) or not _is_const(model, sg.Tensors(inputs[0])):
            reasons.append("the weights and the output shape must be constant")
        bias_type = {_INT8: _INT32, _INT16: _INT64}.get(sg.Tensors(inputs[2]).Type())
        if len(inputs) > 3 and bias_type is not None and sg.Tensors(inputs[3]).Type() != bias_type:
            reasons.append(f"bias '{_tensor_name(sg, inputs[3])}' is not {_TYPE_NAMES[bias_type]}")
    if op_type in _SAME_QUANTIZATION and not reasons and outputs:
        qi, qo = _quant(sg.Tensors(inputs[0])), _quant(sg.Tensors(outputs[0]))
        if not (np.array_equal(qi[0], qo[0]) and np.array_equal(qi[1], qo[1])):
            reasons.append("input and output quantization differ; TFLM requires them equal for this operator")
    if op_type in ("SELECT", "SELECT_V2") and len(inputs) == 3 and not reasons:
        qs = [_quant(sg.Tensors(i)) for i in (inputs[1], inputs[2], outputs[0])]
        if any(not (np.array_equal(q[0], qs[0][0]) and np.array_equal(q[1], qs[0][1])) for q in qs):
            reasons.append("x, y and the output are quantized differently; TFLM selects the raw values")
    opts_act = _fused_activation(op, op_type)
    if opts_act is not None and opts_act not in _FUSED_ACTIVATIONS:
        reasons.append(f"fused activation {opts_act} is not supported (NONE, RELU, RELU6 are)")
    return reasons


#: int32 operators a static-shape model uses to compute a RESHAPE's shape from
#: SHAPE (a dynamic batch): they fold away at compile time.
SHAPE_ARITHMETIC = frozenset({"STRIDED_SLICE", "SLICE", "PACK", "CONCATENATION", "GATHER", "RESHAPE", "SQUEEZE",
                              "EXPAND_DIMS", "CAST"})


def _shape_arithmetic(model, sg, names) -> Tuple[set, List[Tuple[str, str, str]]]:
    """The operators computing shapes from SHAPE's outputs (skipped by the checks:
    they fold away), and the problems of the shapes so computed: they may only
    reach a RESHAPE's shape input (which then takes its output's declared shape)
    or further shape arithmetic; SHAPE's own output may also be a model output."""
    computed, folded, producer = set(), set(), {}
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        op_type = _op_type(model, op, names)
        ins = [int(t) for t in op.InputsAsNumpy() if t >= 0]
        outs = [int(t) for t in op.OutputsAsNumpy()]
        if op_type == "SHAPE":
            computed.update(outs)
        elif (op_type in SHAPE_ARITHMETIC and any(t in computed for t in ins)
              and all(t in computed or _is_const(model, sg.Tensors(t)) for t in ins)
              and all(sg.Tensors(t).Type() == _INT32 for t in outs)):
            computed.update(outs)
            folded.add(i)
            producer.update({t: (op_type, i) for t in outs})
    problems = []
    for i in range(sg.OperatorsLength()):
        if i in folded:
            continue
        op = sg.Operators(i)
        op_type = _op_type(model, op, names)
        for k, t in enumerate(op.InputsAsNumpy()):
            if t in computed and not (op_type == "RESHAPE" and k == 1):
                problems.append((op_type, f"#{i} {_tensor_name(sg, op.OutputsAsNumpy()[0])}",
                                 f"input '{_tensor_name(sg, t)}' is a shape computed in the graph; only a "
                                 "RESHAPE's shape input may be"))
    for k in range(sg.OutputsLength()):
        t = sg.Outputs(k)
        if t in producer:
            op_type, i = producer[t]
            problems.append((op_type, f"#{i} {_tensor_name(sg, t)}",
                             "a shape computed from SHAPE is a model output; only SHAPE's own output may be"))
    return folded, problems


def _int8_softmax_output(sg, op_type, inputs, idx) -> bool:
    """Whether tensor ``idx`` is the int16 output of an int8 SOFTMAX (TFLM fixes
    its zero point at -32768; the lowering checks it)."""
    return op_type == "SOFTMAX" and idx not in inputs and bool(inputs) and sg.Tensors(inputs[0]).Type() == _INT8


def _fused_activation(op, op_type):
    import tflite

    opts_cls = {
        "CONV_2D": tflite.Conv2DOptions, "DEPTHWISE_CONV_2D": tflite.DepthwiseConv2DOptions,
        "FULLY_CONNECTED": tflite.FullyConnectedOptions, "ADD": tflite.AddOptions,
        "MUL": tflite.MulOptions, "AVERAGE_POOL_2D": tflite.Pool2DOptions,
        "MAX_POOL_2D": tflite.Pool2DOptions, "CONCATENATION": tflite.ConcatenationOptions,
    }.get(op_type)
    if opts_cls is None or op.BuiltinOptions() is None:
        return None
    opts = opts_cls()
    opts.Init(op.BuiltinOptions().Bytes, op.BuiltinOptions().Pos)
    return opts.FusedActivationFunction()


def _describe(sg, idx: int) -> TensorDesc:
    t = sg.Tensors(idx)
    scales, zps = _quant(t)
    dtype = _TYPE_NAMES.get(t.Type(), str(t.Type()))
    return TensorDesc(
        name=_tensor_name(sg, idx),
        shape=[int(d) for d in t.ShapeAsNumpy()],
        dtype=dtype,
        scale=float(scales[0]) if scales.size else None,
        zero_point=int(zps[0]) if zps.size else None,
    )


def import_tflite(data: bytes, name: str) -> ImportedModel:
    """Validate a TFLite flatbuffer and import it with tvm.relax.frontend.tflite."""
    from .tflite_checks import check_tflite

    # Every offset, index, enum, shape and quantization array is checked before
    # the unchecked `tflite` accessors or TVM's importer read them.
    check_tflite(data, name)
    model = _parse(data)
    names = _op_names()
    variables = []
    if has_variables(model, names):
        data, variables = stateless_model(data, name, names)
        model = _parse(data)
    sg = model.Subgraphs(0)
    if model.SubgraphsLength() > 1:
        raise UnsupportedModelError([("SUBGRAPH", "subgraph 1", "models with control flow (several subgraphs) are not supported")], name)
    folded, problems = _shape_arithmetic(model, sg, names)
    supported, dtypes, output_dtypes = supported_ops(), supported_dtypes(), supported_output_dtypes()
    for i in range(sg.OperatorsLength()):
        if i in folded:
            continue
        op = sg.Operators(i)
        op_type = _op_type(model, op, names)
        outs = op.OutputsAsNumpy()
        node = _tensor_name(sg, outs[0]) if len(outs) else f"op_{i}"
        for reason in _check_operator(model, sg, op, names, supported, dtypes, output_dtypes):
            problems.append((op_type, f"#{i} {node}", reason))
    if problems:
        raise UnsupportedModelError(problems, name)

    import tflite
    from tvm.relax.frontend.tflite import from_tflite

    # The variables' values are inputs and outputs of the rewritten model, after the model's own.
    n_in = sg.InputsLength() - sum(v.read_input is not None for v in variables)
    n_out = sg.OutputsLength() - sum(v.assign_output is not None for v in variables)
    inputs = [_describe(sg, sg.Inputs(i)) for i in range(n_in)]
    outputs = [_describe(sg, sg.Outputs(i)) for i in range(n_out)]
    from .tensor_names import name_bindings, recording_tflite_names
    from .tflite_fixups import clamp_bias_quantized_dimension, patched_importer

    fixed = clamp_bias_quantized_dimension(data)
    try:
        with patched_importer(), recording_tflite_names() as tensor_names:
            mod = from_tflite(tflite.Model.GetRootAsModel(fixed, 0))
    except Exception as exc:
        raise UnsupportedModelError([("MODEL", name, f"TVM's TFLite frontend failed: {exc}")], name) from exc
    # Each binding holding a model tensor takes the tensor's name (reports, C comments).
    mod["main"] = name_bindings(mod["main"], tensor_names)
    if variables:
        mod["main"] = mark_variables(mod["main"], variables)
    return ImportedModel(
        name=name, format="tflite", mod=mod, inputs=inputs, outputs=outputs, variables=variables,
    )
