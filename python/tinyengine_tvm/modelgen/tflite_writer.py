"""A small builder that writes TFLite flatbuffers through the schema object API.

The schema module comes from the ``tflite-micro`` wheel and is imported lazily,
so importing this module never fails; only building a model needs it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["TFLiteWriter", "load_schema", "SUPPORTED_OPTIONS"]

_SCHEMA_MODULE = "tflite_micro.tensorflow.lite.micro.python.schema_py_generated"
_SCHEMA = None
_ALIGNED_BUFFER_CLS = None

# dtype name -> (TensorType member name, numpy dtype)
_DTYPES = {
    "float32": ("FLOAT32", np.float32),
    "int8": ("INT8", np.int8),
    "uint8": ("UINT8", np.uint8),
    "int16": ("INT16", np.int16),
    "int32": ("INT32", np.int32),
    "int64": ("INT64", np.int64),
    "bool": ("BOOL", np.bool_),
    "resource": ("RESOURCE", np.int32),  # a variable's handle (VAR_HANDLE); no data
}

_PADDING = {"SAME": 0, "VALID": 1}
_ACTIVATION = {"NONE": 0, "RELU": 1, "RELU_N1_TO_1": 2, "RELU6": 3, "TANH": 4}

# op name -> (options class in the schema, {kwarg: (schema field, kind, default)}).
# Defaults differ from the schema's where the schema's zero would be invalid
# (a stride or dilation of 0 is never what a caller means).
_POOL = (
    "Pool2DOptions",
    {
        "padding": ("padding", "padding", "VALID"),
        "stride_h": ("strideH", "int", 1),
        "stride_w": ("strideW", "int", 1),
        "filter_h": ("filterHeight", "int", 1),
        "filter_w": ("filterWidth", "int", 1),
        "fused_activation": ("fusedActivationFunction", "act", "NONE"),
    },
)
SUPPORTED_OPTIONS = {
    "CONV_2D": (
        "Conv2DOptions",
        {
            "padding": ("padding", "padding", "SAME"),
            "stride_h": ("strideH", "int", 1),
            "stride_w": ("strideW", "int", 1),
            "dilation_h": ("dilationHFactor", "int", 1),
            "dilation_w": ("dilationWFactor", "int", 1),
            "fused_activation": ("fusedActivationFunction", "act", "NONE"),
        },
    ),
    "DEPTHWISE_CONV_2D": (
        "DepthwiseConv2DOptions",
        {
            "padding": ("padding", "padding", "SAME"),
            "stride_h": ("strideH", "int", 1),
            "stride_w": ("strideW", "int", 1),
            "dilation_h": ("dilationHFactor", "int", 1),
            "dilation_w": ("dilationWFactor", "int", 1),
            "depth_multiplier": ("depthMultiplier", "int", 1),
            "fused_activation": ("fusedActivationFunction", "act", "NONE"),
        },
    ),
    "TRANSPOSE_CONV": (
        "TransposeConvOptions",
        {
            "padding": ("padding", "padding", "SAME"),
            "stride_h": ("strideH", "int", 1),
            "stride_w": ("strideW", "int", 1),
            "fused_activation": ("fusedActivationFunction", "act", "NONE"),
        },
    ),
    "FULLY_CONNECTED": (
        "FullyConnectedOptions",
        {
            "fused_activation": ("fusedActivationFunction", "act", "NONE"),
            "keep_num_dims": ("keepNumDims", "bool", False),
        },
    ),
    "ADD": ("AddOptions", {"fused_activation": ("fusedActivationFunction", "act", "NONE")}),
    "SUB": ("SubOptions", {"fused_activation": ("fusedActivationFunction", "act", "NONE")}),
    "MUL": ("MulOptions", {"fused_activation": ("fusedActivationFunction", "act", "NONE")}),
    "SQUARED_DIFFERENCE": ("SquaredDifferenceOptions", {}),
    "MAXIMUM": ("MaximumMinimumOptions", {}),
    "MINIMUM": ("MaximumMinimumOptions", {}),
    "AVERAGE_POOL_2D": _POOL,
    "MAX_POOL_2D": _POOL,
    "MEAN": ("ReducerOptions", {"keep_dims": ("keepDims", "bool", False)}),
    "SUM": ("ReducerOptions", {"keep_dims": ("keepDims", "bool", False)}),
    "REDUCE_MAX": ("ReducerOptions", {"keep_dims": ("keepDims", "bool", False)}),
    "REDUCE_MIN": ("ReducerOptions", {"keep_dims": ("keepDims", "bool", False)}),
    "PAD": ("PadOptions", {}),
    "RESHAPE": ("ReshapeOptions", {"new_shape": ("newShape", "intlist", None)}),
    "SQUEEZE": ("SqueezeOptions", {"squeeze_dims": ("squeezeDims", "intlist", None)}),
    "TRANSPOSE": ("TransposeOptions", {}),
    "CONCATENATION": (
        "ConcatenationOptions",
        {
            "axis": ("axis", "int", 0),
            "fused_activation": ("fusedActivationFunction", "act", "NONE"),
        },
    ),
    "SOFTMAX": ("SoftmaxOptions", {"beta": ("beta", "float", 1.0)}),
    "LOGISTIC": (None, {}),
    "HARD_SWISH": ("HardSwishOptions", {}),
    "LOG_SOFTMAX": ("LogSoftmaxOptions", {}),
    "BROADCAST_TO": ("BroadcastToOptions", {}),
    "GATHER_ND": ("GatherNdOptions", {}),
    "CUMSUM": ("CumsumOptions", {"exclusive": ("exclusive", "bool", False), "reverse": ("reverse", "bool", False)}),
    "FILL": ("FillOptions", {}),
    "SHAPE": ("ShapeOptions", {"out_type": ("outType", "int", 2)}),
    "VAR_HANDLE": ("VarHandleOptions", {"container": ("container", "str", ""),
                                        "shared_name": ("sharedName", "str", "")}),
    "READ_VARIABLE": ("ReadVariableOptions", {}),
    "ASSIGN_VARIABLE": ("AssignVariableOptions", {}),
    "CALL_ONCE": ("CallOnceOptions", {"init_subgraph_index": ("initSubgraphIndex", "int", 1)}),
    "ZEROS_LIKE": ("ZerosLikeOptions", {}),
    "ADD_N": ("AddNOptions", {}),
    "SPACE_TO_BATCH_ND": ("SpaceToBatchNDOptions", {}),
    "BATCH_TO_SPACE_ND": ("BatchToSpaceNDOptions", {}),
    "EQUAL": ("EqualOptions", {}),
    "NOT_EQUAL": ("NotEqualOptions", {}),
    "GREATER": ("GreaterOptions", {}),
    "GREATER_EQUAL": ("GreaterEqualOptions", {}),
    "LESS": ("LessOptions", {}),
    "LESS_EQUAL": ("LessEqualOptions", {}),
    "SELECT_V2": ("SelectV2Options", {}),
    "ARG_MAX": ("ArgMaxOptions", {"output_type": ("outputType", "int", 2)}),
    "ARG_MIN": ("ArgMinOptions", {"output_type": ("outputType", "int", 2)}),
    "CAST": ("CastOptions", {"in_data_type": ("inDataType", "int", 9), "out_data_type": ("outDataType", "int", 2)}),
    "LEAKY_RELU": ("LeakyReluOptions", {"alpha": ("alpha", "float", 0.2)}),
    "ABS": (None, {}),
    "TANH": (None, {}),
    "ELU": (None, {}),
    "PRELU": (None, {}),
    "BATCH_MATMUL": ("BatchMatMulOptions", {"adj_x": ("adjX", "bool", False), "adj_y": ("adjY", "bool", False)}),
    "RSQRT": (None, {}),
    "RESIZE_BILINEAR": (
        "ResizeBilinearOptions",
        {
            "align_corners": ("alignCorners", "bool", False),
            "half_pixel_centers": ("halfPixelCenters", "bool", False),
        },
    ),
    "SVDF": (
        "SVDFOptions",
        {"rank": ("rank", "int", 1), "fused_activation": ("fusedActivationFunction", "act", "NONE")},
    ),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": (
        "UnidirectionalSequenceLSTMOptions",
        {
            "fused_activation": ("fusedActivationFunction", "act", "TANH"),
            "cell_clip": ("cellClip", "float", 0.0),
            "proj_clip": ("projClip", "float", 0.0),
            "time_major": ("timeMajor", "bool", False),
        },
    ),
    "L2_NORMALIZATION": ("L2NormOptions", {"fused_activation": ("fusedActivationFunction", "act", "NONE")}),
    "RESIZE_NEAREST_NEIGHBOR": (
        "ResizeNearestNeighborOptions",
        {
            "align_corners": ("alignCorners", "bool", False),
            "half_pixel_centers": ("halfPixelCenters", "bool", False),
        },
    ),
    "STRIDED_SLICE": (
        "StridedSliceOptions",
        {
            "begin_mask": ("beginMask", "int", 0),
            "end_mask": ("endMask", "int", 0),
            "ellipsis_mask": ("ellipsisMask", "int", 0),
            "new_axis_mask": ("newAxisMask", "int", 0),
            "shrink_axis_mask": ("shrinkAxisMask", "int", 0),
            "offset": ("offset", "bool", False),
        },
    ),
    "SLICE": ("SliceOptions", {}),
    "SPLIT": ("SplitOptions", {"num_splits": ("numSplits", "int", 1)}),
    "SPLIT_V": ("SplitVOptions", {"num_splits": ("numSplits", "int", 1)}),
    "PACK": ("PackOptions", {"values_count": ("valuesCount", "int", 1), "axis": ("axis", "int", 0)}),
    "UNPACK": ("UnpackOptions", {"num": ("num", "int", 1), "axis": ("axis", "int", 0)}),
    "EXPAND_DIMS": ("ExpandDimsOptions", {}),
    "SPACE_TO_DEPTH": ("SpaceToDepthOptions", {"block_size": ("blockSize", "int", 1)}),
    "DEPTH_TO_SPACE": ("DepthToSpaceOptions", {"block_size": ("blockSize", "int", 1)}),
    "GATHER": ("GatherOptions", {"axis": ("axis", "int", 0), "batch_dims": ("batchDims", "int", 0)}),
    "MIRROR_PAD": ("MirrorPadOptions", {"mode": ("mode", "int", 0)}),
    "PADV2": ("PadV2Options", {}),
    "QUANTIZE": ("QuantizeOptions", {}),
    "DEQUANTIZE": ("DequantizeOptions", {}),
    "RELU": (None, {}),
    "RELU6": (None, {}),
    "RELU_N1_TO_1": (None, {}),
    "NEG": ("NegOptions", {}),
}

# Shorthand kwargs expanded into the (h, w) pairs above.
_PAIR_ALIASES = {
    "stride": ("stride_h", "stride_w"),
    "dilation": ("dilation_h", "dilation_w"),
    "filter": ("filter_h", "filter_w"),
}


def load_schema():
    """Return the TFLite schema module (object API) shipped with tflite-micro."""
    global _SCHEMA
    if _SCHEMA is None:
        try:
            import importlib

            _SCHEMA = importlib.import_module(_SCHEMA_MODULE)
        except ImportError as err:
            raise ImportError(
                "tinyengine_tvm.modelgen needs the TFLite flatbuffer schema shipped with "
                "TFLite Micro; install it with `pip install --pre tflite-micro`"
            ) from err
    return _SCHEMA


def _aligned_buffer_cls():
    """A BufferT whose payload starts on a 16-byte boundary.

    Kernels read int32 biases and wider constants straight out of the
    flatbuffer, so constant data gets the same alignment the TFLite converter
    gives it rather than the 4 bytes a plain byte vector would get.
    """
    global _ALIGNED_BUFFER_CLS
    if _ALIGNED_BUFFER_CLS is None:
        schema = load_schema()

        class _AlignedBufferT(schema.BufferT):
            def Pack(self, builder):  # noqa: N802 - flatbuffers naming
                data = None
                if self.data is not None:
                    raw = bytes(self.data)
                    builder.StartVector(1, len(raw), 16)
                    builder.head = builder.head - len(raw)
                    builder.Bytes[builder.head : builder.head + len(raw)] = raw
                    data = builder.EndVector()
                schema.BufferStart(builder)
                if data is not None:
                    schema.BufferAddData(builder, data)
                return schema.BufferEnd(builder)

        _ALIGNED_BUFFER_CLS = _AlignedBufferT
    return _ALIGNED_BUFFER_CLS


class _TensorInfo:
    __slots__ = ("name", "shape", "dtype", "scale", "zero_point", "qdim", "data", "is_variable")

    def __init__(self, name, shape, dtype, scale, zero_point, qdim, data, is_variable=False):
        self.name = name
        self.shape = shape
        self.dtype = dtype
        self.scale = scale
        self.zero_point = zero_point
        self.qdim = qdim
        self.data = data
        self.is_variable = is_variable


class _OpInfo:
    __slots__ = ("name", "inputs", "outputs", "options", "version", "intermediates")

    def __init__(self, name, inputs, outputs, options, version, intermediates=()):
        self.name = name
        self.inputs = inputs
        self.outputs = outputs
        self.options = options
        self.version = version
        self.intermediates = list(intermediates)


class TFLiteWriter:
    """Incrementally describe a TFLite model and serialize it.

    Tensors and operators are recorded as plain Python data; the flatbuffer is
    produced by :meth:`finish`. Tensor handles are integer indices, and ``-1``
    may be used as an operator input to mark an absent optional input.  The
    writer describes subgraph 0; :meth:`subgraph` adds further ones (CALL_ONCE's
    initialisation subgraph).
    """

    def __init__(self, description: str = "tinyengine-tvm modelgen"):
        self.description = description
        self._tensors: list[_TensorInfo] = []
        self._ops: list[_OpInfo] = []
        self._inputs: list[int] = []
        self._outputs: list[int] = []
        self._names: set[str] = set()
        self._subgraphs: list[TFLiteWriter] = []

    def subgraph(self) -> "TFLiteWriter":
        """A writer for the next subgraph (index 1, 2, ...) of this model: add its
        tensors and operators to it; :meth:`finish` of this writer serializes it."""
        child = TFLiteWriter(self.description)
        self._subgraphs.append(child)
        return child

    # ------------------------------------------------------------------ tensors
    def tensor(
        self,
        name: str | None,
        shape,
        dtype: str = "int8",
        scale=None,
        zero_point=None,
        data=None,
        quantized_dimension: int = 0,
        is_variable: bool = False,
    ) -> int:
        """Add a tensor and return its index.

        ``scale``/``zero_point`` may be scalars (per-tensor) or 1-D sequences
        (per-channel along ``quantized_dimension``); ``zero_point`` defaults to 0.
        A non-None ``data`` array makes the tensor a constant with its own buffer;
        ``is_variable`` marks state an operator keeps between invocations (SVDF's).
        """
        if dtype not in _DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}; expected one of {sorted(_DTYPES)}")
        shape = [int(d) for d in shape]
        if name is None:
            name = f"t{len(self._tensors)}"
        # TVM's importer keys expressions by tensor name, so names must be unique.
        base, k = name, 1
        while name in self._names:
            name = f"{base}_{k}"
            k += 1
        self._names.add(name)

        sc = zp = None
        if scale is not None:
            sc = [float(s) for s in np.atleast_1d(np.asarray(scale, dtype=np.float64))]
            if zero_point is None:
                zp = [0] * len(sc)
            else:
                zp = [int(z) for z in np.atleast_1d(np.asarray(zero_point))]
                if len(zp) == 1 and len(sc) > 1:
                    zp = zp * len(sc)
            if len(zp) != len(sc):
                raise ValueError(f"tensor {name!r}: {len(sc)} scales but {len(zp)} zero points")
            if len(sc) > 1:
                if not 0 <= quantized_dimension < len(shape):
                    raise ValueError(f"tensor {name!r}: bad quantized_dimension")
                if shape[quantized_dimension] != len(sc):
                    raise ValueError(
                        f"tensor {name!r}: {len(sc)} scales for dimension "
                        f"{quantized_dimension} of size {shape[quantized_dimension]}"
                    )
        elif zero_point is not None:
            raise ValueError(f"tensor {name!r}: zero_point given without scale")

        arr = None
        if data is not None:
            np_dtype = _DTYPES[dtype][1]
            arr = np.asarray(data)
            if arr.size != int(np.prod(shape, dtype=np.int64)):
                raise ValueError(
                    f"tensor {name!r}: data has {arr.size} elements, shape {shape} needs "
                    f"{int(np.prod(shape, dtype=np.int64))}"
                )
            if np.issubdtype(np_dtype, np.integer) and arr.dtype.kind == "f":
                raise TypeError(
                    f"tensor {name!r}: float data for {dtype} tensor; quantize it first"
                )
            arr = np.ascontiguousarray(arr.reshape(shape).astype(np_dtype))

        self._tensors.append(_TensorInfo(name, shape, dtype, sc, zp, quantized_dimension, arr, is_variable))
        return len(self._tensors) - 1

    def const(self, name, data, dtype: str | None = None, **quant) -> int:
        """Add a constant tensor whose shape is taken from ``data``."""
        arr = np.asarray(data)
        if dtype is None:
            dtype = str(arr.dtype)
        return self.tensor(name, arr.shape, dtype=dtype, data=arr, **quant)

    def tensor_info(self, index: int) -> dict:
        """Return name/shape/dtype/scale/zero_point of a tensor already added."""
        t = self._tensors[index]
        return {
            "name": t.name,
            "shape": list(t.shape),
            "dtype": t.dtype,
            "scale": None if t.scale is None else list(t.scale),
            "zero_point": None if t.zero_point is None else list(t.zero_point),
            "quantized_dimension": t.qdim,
        }

    # ---------------------------------------------------------------- operators
    def op(self, name: str, inputs, outputs, version: int | None = None, intermediates=(), at: int | None = None,
           **options) -> int:
        """Add a builtin operator; ``options`` fill that op's builtin options table.

        ``stride``/``dilation``/``filter`` accept an int or an ``(h, w)`` pair as
        shorthand, and ``activation`` is an alias of ``fused_activation``. The op
        version is derived from the tensor types unless ``version`` is given;
        ``intermediates`` are tensor indices (the converter's LSTM gate scales);
        ``at`` inserts the operator at that position instead of appending it.
        """
        name = name.upper()
        inputs = [int(i) for i in inputs]
        outputs = [int(o) for o in outputs]
        for idx in inputs:
            if idx != -1 and not 0 <= idx < len(self._tensors):
                raise IndexError(f"{name}: input tensor {idx} does not exist")
        for idx in outputs:
            if not 0 <= idx < len(self._tensors):
                raise IndexError(f"{name}: output tensor {idx} does not exist")

        if "activation" in options:
            options["fused_activation"] = options.pop("activation")
        for alias, (kh, kw) in _PAIR_ALIASES.items():
            if alias in options:
                val = options.pop(alias)
                h, w = (val, val) if np.isscalar(val) else tuple(val)
                options[kh], options[kw] = int(h), int(w)

        spec = SUPPORTED_OPTIONS.get(name, (None, {}))
        unknown = set(options) - set(spec[1])
        if unknown:
            raise TypeError(
                f"{name}: unknown options {sorted(unknown)}; accepted: {sorted(spec[1])}"
            )
        resolved = {}
        for key, (_, kind, default) in spec[1].items():
            val = options.get(key, default)
            if kind == "padding":
                if str(val).upper() not in _PADDING:
                    raise ValueError(f"{name}: padding must be SAME or VALID, got {val!r}")
                val = str(val).upper()
            elif kind == "act":
                val = "NONE" if val is None else str(val).upper()
                if val not in _ACTIVATION:
                    raise ValueError(f"{name}: unknown fused activation {val!r}")
            resolved[key] = val
        info = _OpInfo(name, inputs, outputs, resolved, version, intermediates)
        if at is None:
            self._ops.append(info)
            return len(self._ops) - 1
        self._ops.insert(at, info)
        return at

    def inputs(self, tensors) -> None:
        """Declare the model's input tensors (in order)."""
        self._inputs = [int(t) for t in tensors]

    def outputs(self, tensors) -> None:
        """Declare the model's output tensors (in order)."""
        self._outputs = [int(t) for t in tensors]

    # ---------------------------------------------------------------- versions
    def _op_version(self, op: _OpInfo) -> int:
        """Pick the op version the TFLite converter would record for this signature.

        Only the int8/float cases this package produces are distinguished; the
        runtime kernels accept any version at or above the one needed.
        """
        ins = [self._tensors[i] if i >= 0 else None for i in op.inputs]
        outs = [self._tensors[o] for o in op.outputs]
        in0 = ins[0].dtype if ins and ins[0] is not None else None
        in1 = ins[1].dtype if len(ins) > 1 and ins[1] is not None else None
        out0 = outs[0].dtype if outs else None
        rank0 = len(ins[0].shape) if ins and ins[0] is not None else 0
        per_channel = any(t is not None and t.scale is not None and len(t.scale) > 1 for t in ins)
        n = op.name
        opt = op.options
        if n == "CONV_2D":
            if in0 == "int8" and in1 == "int8" and out0 == "int8":
                return 3
            if in0 == "float32" and in1 == "int8":
                return 5 if per_channel else 2
            return 2 if (opt["dilation_h"] != 1 or opt["dilation_w"] != 1) else 1
        if n == "DEPTHWISE_CONV_2D":
            if in0 == "int8" and in1 == "int8" and out0 == "int8":
                return 3
            if in0 == "float32" and in1 == "int8":
                return 6 if per_channel else 4
            return 2 if (opt["dilation_h"] != 1 or opt["dilation_w"] != 1) else 1
        if n == "FULLY_CONNECTED":
            if len(op.inputs) == 2:
                return 6
            if opt["keep_num_dims"]:
                return 5
            if in0 == "int8" and in1 == "int8" and out0 == "int8":
                return 4
            return 1
        if n == "MUL":
            if in0 == "int8":
                a, b = ins[0], ins[1]
                if a.scale and b.scale and outs[0].scale:
                    if a.scale[0] * b.scale[0] / outs[0].scale[0] >= 1.0:
                        return 3
                return 2
            return 1
        if n in ("PAD", "PADV2"):
            if rank0 > 4:
                return 4
            return 2 if in0 == "int8" else 1
        if n == "TRANSPOSE":
            if rank0 > 5:
                return 6
            if rank0 > 4:
                return 4
            return 2 if in0 == "int8" else 1
        if n == "RESIZE_NEAREST_NEIGHBOR":
            if opt["align_corners"] or opt["half_pixel_centers"]:
                return 3
            return 2 if in0 == "int8" else 1
        if n == "DEQUANTIZE":
            if in0 == "int8":
                return 5 if per_channel else 2
            return 1
        if n == "QUANTIZE":
            if outs[0].scale is not None and len(outs[0].scale) > 1:
                return 3
            return 2 if out0 == "int16" else 1
        if n in (
            "ADD",
            "SUB",
            "SQUARED_DIFFERENCE",
            "MAXIMUM",
            "MINIMUM",
            "AVERAGE_POOL_2D",
            "MAX_POOL_2D",
            "MEAN",
            "SOFTMAX",
            "RELU",
            "RELU6",
            "CONCATENATION",
            "LOGISTIC",
            "TANH",
        ):
            return 2 if in0 == "int8" else 1
        return 1

    # ------------------------------------------------------------ serialization
    def finish(self) -> bytes:
        """Serialize the model to TFLite flatbuffer bytes (identifier ``TFL3``)."""
        import flatbuffers

        schema = load_schema()
        if not self._inputs or not self._outputs:
            raise ValueError("declare model inputs and outputs before finish()")

        # Buffer 0 is the conventional empty sentinel for non-constant tensors.
        buffers = [schema.BufferT()]
        opcode_index: dict[tuple[int, int], int] = {}
        opcodes = []
        subgraphs = [w._subgraph(schema, buffers, opcodes, opcode_index, f"subgraph_{k}" if k else "main")
                     for k, w in enumerate([self] + self._subgraphs)]

        model = schema.ModelT()
        model.version = 3
        model.operatorCodes = opcodes
        model.subgraphs = subgraphs
        model.description = self.description
        model.buffers = buffers

        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())

    def _subgraph(self, schema, buffers, opcodes, opcode_index, name):
        """This writer's SubGraphT; constants go to ``buffers``, operator codes to ``opcodes``."""
        buffer_cls = _aligned_buffer_cls()
        tensors = []
        for t in self._tensors:
            tt = schema.TensorT()
            tt.name = t.name
            tt.shape = list(t.shape)
            tt.type = getattr(schema.TensorType, _DTYPES[t.dtype][0])
            tt.isVariable = bool(t.is_variable)
            if t.data is not None:
                b = buffer_cls()
                b.data = t.data.tobytes()
                buffers.append(b)
                tt.buffer = len(buffers) - 1
            else:
                tt.buffer = 0
            if t.scale is not None:
                q = schema.QuantizationParametersT()
                q.scale = list(t.scale)
                q.zeroPoint = list(t.zero_point)
                q.quantizedDimension = t.qdim if len(t.scale) > 1 else 0
                tt.quantization = q
            tensors.append(tt)

        operators = []
        for op in self._ops:
            code = getattr(schema.BuiltinOperator, op.name, None)
            if code is None:
                raise ValueError(f"unknown builtin operator {op.name!r}")
            version = op.version if op.version is not None else self._op_version(op)
            key = (code, version)
            if key not in opcode_index:
                oc = schema.OperatorCodeT()
                oc.builtinCode = code
                # Codes past 127 live only in the int32 field; the int8 one holds the marker.
                oc.deprecatedBuiltinCode = min(code, 127)
                oc.version = version
                opcode_index[key] = len(opcodes)
                opcodes.append(oc)
            ot = schema.OperatorT()
            ot.opcodeIndex = opcode_index[key]
            ot.inputs = list(op.inputs)
            ot.outputs = list(op.outputs)
            if op.intermediates:
                ot.intermediates = list(op.intermediates)
            opts_name, fields = SUPPORTED_OPTIONS.get(op.name, (None, {}))
            if opts_name is not None:
                opts = getattr(schema, opts_name + "T")()
                for key_name, (field, kind, _) in fields.items():
                    val = op.options[key_name]
                    if kind == "padding":
                        val = _PADDING[val]
                    elif kind == "act":
                        val = _ACTIVATION[val]
                    elif kind == "int":
                        val = int(val)
                    elif kind == "bool":
                        val = bool(val)
                    elif kind == "float":
                        val = float(val)
                    elif kind == "intlist":
                        val = None if val is None else [int(v) for v in val]
                    elif kind == "str":
                        val = str(val)
                    setattr(opts, field, val)
                ot.builtinOptionsType = getattr(schema.BuiltinOptions, opts_name)
                ot.builtinOptions = opts
            operators.append(ot)

        sg = schema.SubGraphT()
        sg.tensors = tensors
        sg.inputs = list(self._inputs)
        sg.outputs = list(self._outputs)
        sg.operators = operators
        sg.name = name
        return sg
