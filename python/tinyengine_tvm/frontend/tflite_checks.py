"""A checked reader for TFLite flatbuffers: refuse bad input before anything parses it.

The PyPI ``tflite`` accessors and TVM's importer trust every offset and every
field of the file, so a damaged or hostile model surfaces as ``struct.error``,
``IndexError``, TVM ``InternalError`` or a silently wrong graph.
:func:`check_tflite` runs before them and raises only

* :class:`~tinyengine_tvm.errors.ModelFormatError` when the bytes are not a
  well-formed TFLite flatbuffer (offsets, vtables, vectors or strings outside
  the buffer, misaligned or overlapping tables, missing required tables), and
* :class:`~tinyengine_tvm.errors.UnsupportedModelError` when the flatbuffer is
  well formed but describes a model TFLite Micro would refuse (or that no
  microcontroller can hold): one problem, naming the operator as
  ``"#<op index> <first output tensor name>"`` (or the tensor as
  ``"tensor #<index> <name>"``) and the offending field.

The structural pass is a generic flatbuffer verifier driven by the schema
tables below (vtable slots as in the TFLite schema, ``schema.fbs``); it visits
every table the ``tflite`` accessors, the frontend and TVM's importer can reach,
but reads weight buffers only as (offset, length).  The semantic pass covers
subgraph 0 and mirrors the checks TFLite Micro makes while allocating tensors
(``micro_allocator.cc``), parsing builtin options
(``flatbuffer_conversions.cc``) and preparing kernels (``*_common.cc``), plus
the model checks of TFLite's ``tools/verifier.cc``.
"""
from __future__ import annotations

import math
import struct
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import ModelFormatError, UnsupportedModelError

__all__ = ["check_tflite", "MAX_ACTIVATION_BYTES", "MAX_TENSOR_RANK"]

#: A non-constant tensor larger than this cannot live in any microcontroller's SRAM.
MAX_ACTIVATION_BYTES = 16 * 1024 * 1024
#: Highest tensor rank accepted (TFLM's RESHAPE/SQUEEZE hold at most 8 dims; most kernels 6).
MAX_TENSOR_RANK = 8
#: TFLITE_SCHEMA_VERSION: the only model version TFLite's verifier accepts.
SCHEMA_VERSION = 3
_INT32_MAX = 2**31 - 1
_MAX_DEPTH = 64  # flatbuffers::Verifier's default max_depth

# ----------------------------------------------------------------------------
# Schema: table name -> ((vtable slot offset, field name, kind, argument), ...)
# kinds: scalar type codes (arg: schema default, None = 0), "str", "vec" (arg:
# element code), "table"/"vtable" (arg: table name, "" = unknown layout),
# "union" (arg: (type slot, union name)).
# ----------------------------------------------------------------------------
_SCALARS = {"bool": "B", "u8": "B", "i8": "b", "i16": "h", "u16": "H", "i32": "i",
            "u32": "I", "i64": "q", "u64": "Q", "f32": "f", "f64": "d"}
_STRUCTS = {code: struct.Struct("<" + fmt) for code, fmt in _SCALARS.items()}
_ACT = (4, "fused_activation_function", "i8", None)

_SCHEMA: Dict[str, Tuple[tuple, ...]] = {
    "Model": (
        (4, "version", "u32", None),
        (6, "operator_codes", "vtable", "OperatorCode"),
        (8, "subgraphs", "vtable", "SubGraph"),
        (10, "description", "str", None),
        (12, "buffers", "vtable", "Buffer"),
        (14, "metadata_buffer", "vec", "i32"),
        (16, "metadata", "vtable", "Metadata"),
        (18, "signature_defs", "vtable", "SignatureDef"),
        (20, "external_buffer_groups", "vtable", ""),
        (22, "external_buffers", "vtable", ""),
    ),
    "OperatorCode": (
        (4, "deprecated_builtin_code", "i8", None),
        (6, "custom_code", "str", None),
        (8, "version", "i32", 1),
        (10, "builtin_code", "i32", None),
    ),
    "SubGraph": (
        (4, "tensors", "vtable", "Tensor"),
        (6, "inputs", "vec", "i32"),
        (8, "outputs", "vec", "i32"),
        (10, "operators", "vtable", "Operator"),
        (12, "name", "str", None),
        (14, "debug_metadata_index", "i32", -1),
    ),
    "Tensor": (
        (4, "shape", "vec", "i32"),
        (6, "type", "i8", None),
        (8, "buffer", "u32", None),
        (10, "name", "str", None),
        (12, "quantization", "table", "QuantizationParameters"),
        (14, "is_variable", "bool", None),
        (16, "sparsity", "table", "SparsityParameters"),
        (18, "shape_signature", "vec", "i32"),
        (20, "has_rank", "bool", None),
        (22, "variant_tensors", "vtable", "VariantSubType"),
        (24, "external_buffer", "u32", None),
    ),
    "QuantizationParameters": (
        (4, "min", "vec", "f32"),
        (6, "max", "vec", "f32"),
        (8, "scale", "vec", "f32"),
        (10, "zero_point", "vec", "i64"),
        (12, "details_type", "u8", None),
        (14, "details", "union", (12, "QuantizationDetails")),
        (16, "quantized_dimension", "i32", None),
    ),
    "CustomQuantization": ((4, "custom", "vec", "u8"),),
    "SparsityParameters": (
        (4, "traversal_order", "vec", "i32"),
        (6, "block_map", "vec", "i32"),
        (8, "dim_metadata", "vtable", "DimensionMetadata"),
    ),
    "DimensionMetadata": (
        (4, "format", "i8", None),
        (6, "dense_size", "i32", None),
        (8, "array_segments_type", "u8", None),
        (10, "array_segments", "union", (8, "SparseIndexVector")),
        (12, "array_indices_type", "u8", None),
        (14, "array_indices", "union", (12, "SparseIndexVector")),
    ),
    "Int32Vector": ((4, "values", "vec", "i32"),),
    "Uint16Vector": ((4, "values", "vec", "u16"),),
    "Uint8Vector": ((4, "values", "vec", "u8"),),
    "VariantSubType": (
        (4, "shape", "vec", "i32"),
        (6, "type", "i8", None),
        (8, "has_rank", "bool", None),
    ),
    "Operator": (
        (4, "opcode_index", "u32", None),
        (6, "inputs", "vec", "i32"),
        (8, "outputs", "vec", "i32"),
        (10, "builtin_options_type", "u8", None),
        (12, "builtin_options", "union", (10, "BuiltinOptions")),
        (14, "custom_options", "vec", "u8"),
        (16, "custom_options_format", "i8", None),
        (18, "mutating_variable_inputs", "vec", "bool"),
        (20, "intermediates", "vec", "i32"),
        (22, "large_custom_options_offset", "u64", None),
        (24, "large_custom_options_size", "u64", None),
        (26, "builtin_options_2_type", "u8", None),
        (28, "builtin_options_2", "union", (26, "")),
        (30, "debug_metadata_index", "i32", -1),
    ),
    "Buffer": (
        (4, "data", "vec", "u8"),
        (6, "offset", "u64", None),
        (8, "size", "u64", None),
    ),
    "Metadata": ((4, "name", "str", None), (6, "buffer", "u32", None)),
    "SignatureDef": (
        (4, "inputs", "vtable", "TensorMap"),
        (6, "outputs", "vtable", "TensorMap"),
        (8, "signature_key", "str", None),
        (12, "subgraph_index", "u32", None),
    ),
    "TensorMap": ((4, "name", "str", None), (6, "tensor_index", "u32", None)),
    # Builtin options of the operators the compiler lowers.
    "Conv2DOptions": (
        (4, "padding", "i8", None),
        (6, "stride_w", "i32", None),
        (8, "stride_h", "i32", None),
        (10, "fused_activation_function", "i8", None),
        (12, "dilation_w_factor", "i32", 1),
        (14, "dilation_h_factor", "i32", 1),
        (16, "quantized_bias_type", "i8", None),
    ),
    "DepthwiseConv2DOptions": (
        (4, "padding", "i8", None),
        (6, "stride_w", "i32", None),
        (8, "stride_h", "i32", None),
        (10, "depth_multiplier", "i32", None),
        (12, "fused_activation_function", "i8", None),
        (14, "dilation_w_factor", "i32", 1),
        (16, "dilation_h_factor", "i32", 1),
    ),
    "TransposeConvOptions": (
        (4, "padding", "i8", None),
        (6, "stride_w", "i32", None),
        (8, "stride_h", "i32", None),
        (10, "fused_activation_function", "i8", None),
        (12, "quantized_bias_type", "i8", None),
    ),
    "FullyConnectedOptions": (
        _ACT,
        (6, "weights_format", "i8", None),
        (8, "keep_num_dims", "bool", None),
        (10, "asymmetric_quantize_inputs", "bool", None),
        (12, "quantized_bias_type", "i8", None),
        (14, "quant_spec", "vec", "u8"),
    ),
    "AddOptions": (_ACT, (6, "pot_scale_int16", "bool", 1)),
    "SubOptions": (_ACT, (6, "pot_scale_int16", "bool", 1)),
    "MulOptions": (_ACT,),
    "Pool2DOptions": (
        (4, "padding", "i8", None),
        (6, "stride_w", "i32", None),
        (8, "stride_h", "i32", None),
        (10, "filter_width", "i32", None),
        (12, "filter_height", "i32", None),
        (14, "fused_activation_function", "i8", None),
    ),
    "ReducerOptions": ((4, "keep_dims", "bool", None),),
    "ReshapeOptions": ((4, "new_shape", "vec", "i32"),),
    "SqueezeOptions": ((4, "squeeze_dims", "vec", "i32"),),
    "ConcatenationOptions": ((4, "axis", "i32", None), (6, "fused_activation_function", "i8", None)),
    "SoftmaxOptions": ((4, "beta", "f32", None),),
    "ResizeNearestNeighborOptions": (
        (4, "align_corners", "bool", None),
        (6, "half_pixel_centers", "bool", None),
    ),
    "ResizeBilinearOptions": (
        (8, "align_corners", "bool", None),
        (10, "half_pixel_centers", "bool", None),
    ),
    "L2NormOptions": ((4, "fused_activation_function", "i8", None),),
    "UnidirectionalSequenceLSTMOptions": (
        (4, "fused_activation_function", "i8", None),
        (6, "cell_clip", "f32", None),
        (8, "proj_clip", "f32", None),
        (10, "time_major", "bool", None),
        (12, "asymmetric_quantize_inputs", "bool", None),
        (14, "diagonal_recurrent_tensors", "bool", None),
    ),
    "SVDFOptions": (
        (4, "rank", "i32", None),
        (6, "fused_activation_function", "i8", None),
        (8, "asymmetric_quantize_inputs", "bool", None),
    ),
    "PadOptions": (),
    "PadV2Options": (),
    "TransposeOptions": (),
    "HardSwishOptions": (),
    "LogSoftmaxOptions": (),
    "EqualOptions": (),
    "NotEqualOptions": (),
    "GreaterOptions": (),
    "GreaterEqualOptions": (),
    "LessOptions": (),
    "LessEqualOptions": (),
    "SelectV2Options": (),
    "SelectOptions": (),
    "BroadcastToOptions": (),
    "GatherNdOptions": (),
    "CumsumOptions": ((4, "exclusive", "bool", None), (6, "reverse", "bool", None)),
    "FillOptions": (),
    "ZerosLikeOptions": (),
    "AddNOptions": (),
    "SpaceToBatchNDOptions": (),
    "BatchToSpaceNDOptions": (),
    "ArgMaxOptions": ((4, "output_type", "i8", None),),
    "ArgMinOptions": ((4, "output_type", "i8", None),),
    "CastOptions": ((4, "in_data_type", "i8", None), (6, "out_data_type", "i8", None)),
    "QuantizeOptions": (),
    "DequantizeOptions": (),
    "ShapeOptions": ((4, "out_type", "i8", None),),
    "NegOptions": (),
    "VarHandleOptions": ((4, "container", "str", None), (6, "shared_name", "str", None)),
    "ReadVariableOptions": (),
    "AssignVariableOptions": (),
    "CallOnceOptions": ((4, "init_subgraph_index", "i32", None),),
}
_FIELD_BY_NAME = {t: {f[1]: f for f in fields} for t, fields in _SCHEMA.items()}
_UNIONS_FIXED = {
    "QuantizationDetails": {1: "CustomQuantization"},
    "SparseIndexVector": {1: "Int32Vector", 2: "Uint16Vector", 3: "Uint8Vector"},
}

# TFLite enums (schema.fbs) used by the semantic checks.
_PADDING = {0: "SAME", 1: "VALID"}
_ACTIVATIONS = {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH", 5: "SIGN_BIT"}
_T_FLOAT32, _T_INT32, _T_UINT8, _T_INT64, _T_INT16, _T_INT8, _T_INT4 = 0, 2, 3, 4, 7, 9, 17
_T_RESOURCE = 13
# Bytes per element (0: variable size); INT4 is packed two to a byte.
_TYPE_SIZES = {0: 4, 1: 2, 2: 4, 3: 1, 4: 8, 5: 0, 6: 1, 7: 2, 8: 8, 9: 1, 10: 8, 11: 16,
               12: 8, 13: 0, 14: 0, 15: 4, 16: 2, 17: 0.5, 18: 2}
_ZP_RANGE = {_T_INT8: (-128, 127), _T_UINT8: (0, 255), _T_INT16: (-32768, 32767)}

# Operator -> (options table it must carry, options required?, (min inputs, max inputs),
#              outputs (None: one or more), input positions that may be -1 (absent optional input)).
_OPS = {
    "CONV_2D": ("Conv2DOptions", True, (2, 3), 1, (2,)),
    "DEPTHWISE_CONV_2D": ("DepthwiseConv2DOptions", True, (2, 3), 1, (2,)),
    "TRANSPOSE_CONV": ("TransposeConvOptions", True, (3, 4), 1, (3,)),
    "FULLY_CONNECTED": ("FullyConnectedOptions", False, (2, 3), 1, (2,)),
    "ADD": ("AddOptions", False, (2, 2), 1, ()),
    "SUB": ("SubOptions", False, (2, 2), 1, ()),
    "MUL": ("MulOptions", False, (2, 2), 1, ()),
    "SQUARED_DIFFERENCE": ("SquaredDifferenceOptions", False, (2, 2), 1, ()),
    "MAXIMUM": ("MaximumMinimumOptions", False, (2, 2), 1, ()),
    "MINIMUM": ("MaximumMinimumOptions", False, (2, 2), 1, ()),
    "AVERAGE_POOL_2D": ("Pool2DOptions", True, (1, 1), 1, ()),
    "MAX_POOL_2D": ("Pool2DOptions", True, (1, 1), 1, ()),
    "MEAN": ("ReducerOptions", False, (2, 2), 1, ()),
    "SUM": ("ReducerOptions", False, (2, 2), 1, ()),
    "REDUCE_MAX": ("ReducerOptions", False, (2, 2), 1, ()),
    "REDUCE_MIN": ("ReducerOptions", False, (2, 2), 1, ()),
    "PAD": ("PadOptions", False, (2, 3), 1, ()),
    "PADV2": ("PadV2Options", False, (3, 3), 1, ()),
    "RESHAPE": ("ReshapeOptions", False, (1, 2), 1, ()),
    "SQUEEZE": ("SqueezeOptions", False, (1, 1), 1, ()),
    "TRANSPOSE": ("TransposeOptions", False, (2, 2), 1, ()),
    "SPACE_TO_DEPTH": ("SpaceToDepthOptions", True, (1, 1), 1, ()),
    "STRIDED_SLICE": ("StridedSliceOptions", False, (4, 4), 1, ()),
    "SLICE": ("SliceOptions", False, (3, 3), 1, ()),
    "SPLIT": ("SplitOptions", True, (2, 2), None, ()),
    "SPLIT_V": ("SplitVOptions", True, (3, 3), None, ()),
    "UNPACK": ("UnpackOptions", True, (1, 1), None, ()),
    "GATHER": ("GatherOptions", False, (2, 2), 1, ()),
    "PACK": ("PackOptions", True, (1, 10), 1, ()),
    "EXPAND_DIMS": ("ExpandDimsOptions", False, (2, 2), 1, ()),
    "DEPTH_TO_SPACE": ("DepthToSpaceOptions", True, (1, 1), 1, ()),
    "CONCATENATION": ("ConcatenationOptions", False, (1, 10), 1, ()),
    "SOFTMAX": ("SoftmaxOptions", True, (1, 1), 1, ()),
    "LOG_SOFTMAX": ("LogSoftmaxOptions", False, (1, 1), 1, ()),
    "EQUAL": ("EqualOptions", False, (2, 2), 1, ()),
    "NOT_EQUAL": ("NotEqualOptions", False, (2, 2), 1, ()),
    "GREATER": ("GreaterOptions", False, (2, 2), 1, ()),
    "GREATER_EQUAL": ("GreaterEqualOptions", False, (2, 2), 1, ()),
    "LESS": ("LessOptions", False, (2, 2), 1, ()),
    "LESS_EQUAL": ("LessEqualOptions", False, (2, 2), 1, ()),
    "SELECT_V2": ("SelectV2Options", False, (3, 3), 1, ()),
    "SELECT": ("SelectOptions", False, (3, 3), 1, ()),
    "BROADCAST_TO": ("BroadcastToOptions", False, (2, 2), 1, ()),
    "GATHER_ND": ("GatherNdOptions", False, (2, 2), 1, ()),
    "CUMSUM": ("CumsumOptions", False, (2, 2), 1, ()),
    "FILL": ("FillOptions", False, (2, 2), 1, ()),
    "ZEROS_LIKE": ("ZerosLikeOptions", False, (1, 1), 1, ()),
    "SHAPE": ("ShapeOptions", False, (1, 1), 1, ()),
    "NEG": ("NegOptions", False, (1, 1), 1, ()),
    "RELU_N1_TO_1": (None, False, (1, 1), 1, ()),
    "VAR_HANDLE": ("VarHandleOptions", False, (0, 0), 1, ()),
    "READ_VARIABLE": ("ReadVariableOptions", False, (1, 1), 1, ()),
    "ASSIGN_VARIABLE": ("AssignVariableOptions", False, (2, 2), 0, ()),
    "CALL_ONCE": ("CallOnceOptions", True, (0, 0), 0, ()),
    "ADD_N": ("AddNOptions", False, (1, 16), 1, ()),
    "SPACE_TO_BATCH_ND": ("SpaceToBatchNDOptions", False, (3, 3), 1, ()),
    "BATCH_TO_SPACE_ND": ("BatchToSpaceNDOptions", False, (3, 3), 1, ()),
    "ARG_MAX": ("ArgMaxOptions", False, (2, 2), 1, ()),
    "ARG_MIN": ("ArgMinOptions", False, (2, 2), 1, ()),
    "CAST": ("CastOptions", False, (1, 1), 1, ()),
    "LOGISTIC": (None, False, (1, 1), 1, ()),
    "HARD_SWISH": ("HardSwishOptions", False, (1, 1), 1, ()),
    "LEAKY_RELU": ("LeakyReluOptions", True, (1, 1), 1, ()),
    "ABS": (None, False, (1, 1), 1, ()),
    "TANH": (None, False, (1, 1), 1, ()),
    "ELU": (None, False, (1, 1), 1, ()),
    "PRELU": (None, False, (2, 2), 1, ()),
    "BATCH_MATMUL": ("BatchMatMulOptions", False, (2, 2), 1, ()),
    "MIRROR_PAD": ("MirrorPadOptions", True, (2, 2), 1, ()),
    "RSQRT": (None, False, (1, 1), 1, ()),
    "RESIZE_NEAREST_NEIGHBOR": ("ResizeNearestNeighborOptions", False, (2, 2), 1, ()),
    "RESIZE_BILINEAR": ("ResizeBilinearOptions", False, (2, 2), 1, ()),
    "L2_NORMALIZATION": ("L2NormOptions", False, (1, 1), 1, ()),
    "SVDF": ("SVDFOptions", True, (5, 5), 1, ()),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": ("UnidirectionalSequenceLSTMOptions", True, (24, 24), 1,
                                     (9, 10, 11, 16, 17, 20, 21, 22, 23)),
    "QUANTIZE": ("QuantizeOptions", False, (1, 1), 1, ()),
    "DEQUANTIZE": ("DequantizeOptions", False, (1, 1), 1, ()),
    "RELU": (None, False, (1, 1), 1, ()),
    "RELU6": (None, False, (1, 1), 1, ()),
}

_ENUMS = None


def _enums():
    """(BuiltinOperator names, BuiltinOptions names, TensorType names) from the tflite package."""
    global _ENUMS
    if _ENUMS is None:
        import tflite

        def names(cls):
            return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}

        _ENUMS = (names(tflite.BuiltinOperator), names(tflite.BuiltinOptions), names(tflite.TensorType))
    return _ENUMS


# ----------------------------------------------------------------------------
# Structural verification
# ----------------------------------------------------------------------------
_U16 = struct.Struct("<H")
_I32 = struct.Struct("<i")
_U32 = struct.Struct("<I")


class _Verifier:
    """A flatbuffers verifier (bounds, alignment, vtables, offsets, strings) for the TFLite schema."""

    def __init__(self, buf: bytes):
        self.buf = buf
        self.n = len(buf)
        self.seen = set()
        # Every table visit and every element of a vector of tables costs one
        # unit; a real file stores each in its own 4+ bytes (well under n/2
        # units), so overlapping or cyclic offsets run out of budget instead of
        # blowing up.
        self.budget = self.n // 2 + 64

    def fail(self, what: str, path: str, pos: Optional[int] = None):
        where = f"{path}, byte {pos}" if pos is not None else path
        raise ModelFormatError(f"malformed TFLite file: {what} ({where})")

    def spend(self, path, pos):
        self.budget -= 1
        if self.budget < 0:
            self.fail("too many tables for the file size (overlapping or cyclic offsets)", path, pos)

    def uoffset(self, at: int, path: str) -> int:
        """Follow the uoffset stored at ``at`` (already known to be in range)."""
        off = _U32.unpack_from(self.buf, at)[0]
        if off == 0 or off >= 2**31:
            self.fail(f"offset {off} is not a valid forward offset", path, at)
        target = at + off
        if target >= self.n:
            self.fail(f"offset points to byte {target}, past the end of the {self.n}-byte file", path, at)
        return target

    def vector(self, pos: int, elem_size: int, path: str) -> Tuple[int, int]:
        """Check the vector at ``pos``; return (start of elements, length)."""
        if pos % 4:
            self.fail("vector is not 4-byte aligned", path, pos)
        if pos + 4 > self.n:
            self.fail("vector length lies outside the file", path, pos)
        length = _U32.unpack_from(self.buf, pos)[0]
        if length * elem_size > self.n - pos - 4:
            self.fail(f"vector of {length} x {elem_size}-byte elements runs past the end of the file",
                      path, pos)
        return pos + 4, length

    def string(self, pos: int, path: str) -> None:
        start, length = self.vector(pos, 1, path)
        if start + length >= self.n or self.buf[start + length] != 0:
            self.fail("string is not NUL-terminated inside the file", path, pos)
        try:
            self.buf[start:start + length].decode("utf-8")
        except UnicodeDecodeError:
            self.fail("string is not valid UTF-8", path, pos)

    def table(self, pos: int, tname: str, path: str, depth: int) -> None:
        key = (pos, tname)
        if key in self.seen:
            return
        self.seen.add(key)
        self.spend(path, pos)
        if depth > _MAX_DEPTH:
            self.fail("tables nested too deep", path, pos)
        buf, n = self.buf, self.n
        if pos % 4 or pos + 4 > n:
            self.fail("table is misaligned or outside the file", path, pos)
        vt = pos - _I32.unpack_from(buf, pos)[0]
        if vt < 0 or vt % 2 or vt + 4 > n:
            self.fail(f"vtable at byte {vt} is misaligned or outside the file", path, pos)
        vsize, tsize = struct.unpack_from("<HH", buf, vt)
        if vsize < 4 or vsize % 2 or vt + vsize > n:
            self.fail(f"vtable size {vsize} is invalid", path, vt)
        if tsize < 4 or pos + tsize > n:
            self.fail(f"table size {tsize} runs past the end of the file", path, pos)
        slots = struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vt + 4)
        for k, fo in enumerate(slots):
            if fo and (fo < 4 or fo >= tsize):
                self.fail(f"field slot {4 + 2 * k} points outside its {tsize}-byte table", path, vt)
        nslots = len(slots)
        for voff, fname, kind, arg in _SCHEMA.get(tname, ()):
            k = (voff - 4) // 2
            if k >= nslots or not slots[k]:
                continue
            fo = slots[k]
            at = pos + fo
            fpath = f"{path}.{fname}"
            if kind in _STRUCTS:
                size = _STRUCTS[kind].size
                if fo + size > tsize or at % size:
                    self.fail(f"{size}-byte field is misaligned or outside its table", fpath, at)
                continue
            if fo + 4 > tsize or at % 4:
                self.fail("offset field is misaligned or outside its table", fpath, at)
            target = self.uoffset(at, fpath)
            if kind == "str":
                self.string(target, fpath)
            elif kind == "vec":
                self.vector(target, _STRUCTS[arg].size, fpath)
            elif kind == "table":
                self.table(target, arg, fpath, depth + 1)
            elif kind == "vtable":
                start, length = self.vector(target, 4, fpath)
                for i in range(length):
                    epath = f"{fpath}[{i}]"
                    self.spend(epath, start + 4 * i)
                    self.table(self.uoffset(start + 4 * i, epath), arg, epath, depth + 1)
            elif kind == "union":
                type_slot, union = arg
                kt = (type_slot - 4) // 2
                utype = 0
                if kt < nslots and slots[kt]:
                    utype = buf[pos + slots[kt]]
                if utype == 0:
                    continue  # NONE: the value is ignored by every reader
                # Builtin options get a generic table check here; their fields are verified
                # against the schema once the tag is known to match the operator (_Checker.options),
                # so an operator with another operator's options gets a semantic message.
                sub = "" if union == "BuiltinOptions" else _UNIONS_FIXED.get(union, {}).get(utype, "")
                self.table(target, sub, f"{fpath}<{sub or utype}>", depth + 1)

    def verify(self) -> int:
        """Verify the whole file; return the position of the root Model table."""
        if self.n < 8:
            raise ModelFormatError(f"malformed TFLite file: only {self.n} bytes, too short for a flatbuffer")
        if self.buf[4:8] != b"TFL3":
            raise ModelFormatError("not a TFLite flatbuffer (no 'TFL3' identifier)")
        if self.n >= 2**31:
            self.fail("file is larger than the 2 GiB a flatbuffer can address", "Model")
        root = self.uoffset(0, "root")
        self.table(root, "Model", "Model", 0)
        return root


# ----------------------------------------------------------------------------
# Reading verified tables
# ----------------------------------------------------------------------------
class _Tab:
    """Field access on a table the verifier has accepted."""

    __slots__ = ("buf", "pos", "slots", "name")

    def __init__(self, buf: bytes, pos: int, name: str):
        self.buf, self.pos, self.name = buf, pos, name
        vt = pos - _I32.unpack_from(buf, pos)[0]
        vsize = _U16.unpack_from(buf, vt)[0]
        self.slots = struct.unpack_from(f"<{(vsize - 4) // 2}H", buf, vt + 4)

    def at(self, field: str) -> int:
        """Absolute position of ``field`` (0 when absent)."""
        voff = _FIELD_BY_NAME[self.name][field][0]
        k = (voff - 4) // 2
        if k < len(self.slots) and self.slots[k]:
            return self.pos + self.slots[k]
        return 0

    def has(self, field: str) -> bool:
        return self.at(field) != 0

    def scalar(self, field: str, default=None):
        """A scalar field's value; absent fields take the schema default."""
        spec = _FIELD_BY_NAME[self.name][field]
        at = self.at(field)
        if not at:
            if default is not None:
                return default
            return spec[3] if spec[3] is not None else 0
        return _STRUCTS[spec[2]].unpack_from(self.buf, at)[0]

    def _target(self, at: int) -> int:
        return at + _U32.unpack_from(self.buf, at)[0]

    def table(self, field: str, name: Optional[str] = None) -> Optional["_Tab"]:
        at = self.at(field)
        if not at:
            return None
        return _Tab(self.buf, self._target(at), name or _FIELD_BY_NAME[self.name][field][3])

    def vec_span(self, field: str) -> Optional[Tuple[int, int]]:
        """(start of elements, length) of a vector field, None when absent."""
        at = self.at(field)
        if not at:
            return None
        target = self._target(at)
        return target + 4, _U32.unpack_from(self.buf, target)[0]

    def vec(self, field: str) -> Optional[list]:
        span = self.vec_span(field)
        if span is None:
            return None
        start, length = span
        code = _SCALARS[_FIELD_BY_NAME[self.name][field][3]]
        return list(struct.unpack_from(f"<{length}{code}", self.buf, start))

    def tables(self, field: str) -> List["_Tab"]:
        span = self.vec_span(field)
        if span is None:
            return []
        start, length = span
        sub = _FIELD_BY_NAME[self.name][field][3]
        return [_Tab(self.buf, self._target(start + 4 * i), sub) for i in range(length)]

    def string(self, field: str) -> Optional[str]:
        span = self.vec_span(field)
        if span is None:
            return None
        start, length = span
        return self.buf[start:start + length].decode("utf-8")


# ----------------------------------------------------------------------------
# Semantic checks of subgraph 0
# ----------------------------------------------------------------------------
class _Tensor:
    __slots__ = ("index", "name", "shape", "type", "buffer", "scale", "zero_point", "qdim",
                 "sparse", "is_variable", "const_len", "const_pos", "external",
                 "has_data", "qkey")

    def numel(self) -> int:
        n = 1
        for d in self.shape:
            n *= d
        return n


class _Problem(Exception):
    """One semantic problem: (op_type, node, reason)."""


def _shape_str(shape: Sequence[int]) -> str:
    return "[" + ",".join(str(d) for d in shape) + "]"


def _out_size(padding: int, size: int, filt: int, stride: int, dilation: int) -> int:
    """Output extent as TFLite computes it (ComputeOutSize in kernels/padding.h)."""
    eff = (filt - 1) * dilation + 1
    if padding == 0:  # SAME
        return (size + stride - 1) // stride
    return (size + stride - eff) // stride if size >= eff else 0


class _Checker:
    def __init__(self, buf: bytes, root: int, name: str, verifier: _Verifier):
        self.buf = buf
        self.verifier = verifier
        self.name = name
        self.model = _Tab(buf, root, "Model")
        self.op_names, self.options_names, self.type_names = _enums()
        self._vcache: Dict[tuple, tuple] = {}
        self._quant_ok = set()

    def vec(self, tab: _Tab, field: str) -> Optional[list]:
        """A scalar vector field, decoded once per distinct vector (files may share them)."""
        span = tab.vec_span(field)
        if span is None:
            return None
        code = _SCALARS[_FIELD_BY_NAME[tab.name][field][3]]
        key = (span, code)
        values = self._vcache.get(key)
        if values is None:
            values = self._vcache[key] = struct.unpack_from(f"<{span[1]}{code}", self.buf, span[0])
        return list(values)

    # -- reporting ------------------------------------------------------------
    def fail(self, op_type: str, node: str, reason: str):
        raise _Problem(op_type, node, reason)

    def tensor_node(self, t: "_Tensor") -> str:
        return f"tensor #{t.index} {t.name}"

    def tensor_fail(self, t: "_Tensor", reason: str):
        self.fail("TENSOR", self.tensor_node(t), reason)

    def type_name(self, code: int) -> str:
        return self.type_names.get(code, str(code)).lower()

    # -- model level ----------------------------------------------------------
    def run(self):
        m = self.model
        version = m.scalar("version")
        if version != SCHEMA_VERSION:
            self.fail("MODEL", self.name or "model",
                      f"Model.version is {version}; only schema version {SCHEMA_VERSION} is supported "
                      "(TFLite's verifier requires TFLITE_SCHEMA_VERSION)")
        if not m.has("subgraphs"):
            raise ModelFormatError("malformed TFLite file: Model.subgraphs is missing")
        subgraphs = m.tables("subgraphs")
        if not subgraphs:
            raise ModelFormatError("malformed TFLite file: TFLite model has no subgraph")
        if not m.has("buffers"):
            raise ModelFormatError("malformed TFLite file: Model.buffers is missing")
        self.buffers = m.tables("buffers")
        self.opcodes = m.tables("operator_codes")
        if self.buffers:
            span = self.buffers[0].vec_span("data")
            if (span and span[1]) or self.buffers[0].scalar("offset") > 1:
                self.fail("MODEL", self.name or "model",
                          "Model.buffers[0] holds data; it must be the empty sentinel buffer "
                          "that non-constant tensors refer to")
        self.check_external_data()
        nb = len(self.buffers)
        for k, b in enumerate(m.vec("metadata_buffer") or []):
            if not 0 <= b < nb:
                self.fail("MODEL", self.name or "model",
                          f"Model.metadata_buffer[{k}] is buffer {b}; the model has {nb} buffers")
        for k, md in enumerate(m.tables("metadata")):
            b = md.scalar("buffer")
            if b >= nb:
                self.fail("MODEL", self.name or "model",
                          f"Model.metadata[{k}].buffer is {b}; the model has {nb} buffers")
        sg = subgraphs[0]
        if not sg.has("operators"):
            raise ModelFormatError("malformed TFLite file: Model.subgraphs[0].operators is missing")
        if not sg.has("tensors"):
            raise ModelFormatError("malformed TFLite file: Model.subgraphs[0].tensors is missing")
        self.subgraph(sg)

    def check_external_data(self):
        """Buffer.offset/size and large custom options point into the file itself."""
        n = len(self.buf)
        for i, b in enumerate(self.buffers):
            off, size = b.scalar("offset"), b.scalar("size")
            if off > 1 and off + size > n:
                raise ModelFormatError(
                    f"malformed TFLite file: Model.buffers[{i}] says its data is at bytes "
                    f"{off}..{off + size}, past the end of the {n}-byte file")

    # -- subgraph 0 -------------------------------------------------------------
    def subgraph(self, sg: _Tab):
        tensors = [self.read_tensor(i, t) for i, t in enumerate(sg.tables("tensors"))]
        self.tensors = tensors
        nt = len(tensors)
        sg_ins, sg_outs = self.vec(sg, "inputs") or [], self.vec(sg, "outputs") or []
        for field, values in (("inputs", sg_ins), ("outputs", sg_outs)):
            for k, idx in enumerate(values):
                if not 0 <= idx < nt:
                    self.fail("SUBGRAPH", "subgraph 0",
                              f"SubGraph.{field}[{k}] is tensor {idx}; the subgraph has {nt} tensors")
        ops = sg.tables("operators")
        # Decode every operator first: tensors are deep-checked only where used.
        decoded = [self.read_op(i, op) for i, op in enumerate(ops)]
        used = set(sg_ins) | set(sg_outs)
        for _, _, ins, outs, _ in decoded:
            used.update(i for i in ins if i >= 0)
            used.update(outs)
        for t in tensors:
            self.check_tensor_type(t)
        for idx in sorted(used):
            self.check_tensor(tensors[idx])
        # Graph consistency, as tools/verifier.cc: every input exists before use.
        available = set(sg_ins)
        sg_inputs = set(available)
        # (verifier.cc counts a tensor whose buffer has a data vector, even empty, as constant)
        available.update(t.index for t in tensors if t.has_data or self.is_const(t) or t.is_variable)
        produced = set()
        for i, (op_type, node, ins, outs, op) in enumerate(decoded):
            for k, idx in enumerate(ins):
                if idx >= 0 and idx not in available:
                    self.fail(op_type, node, f"Operator.inputs[{k}] is tensor {idx} "
                              f"('{tensors[idx].name}'), which no earlier operator produces and "
                              "which is neither a constant nor a subgraph input")
            for k, idx in enumerate(outs):
                t = tensors[idx]
                if self.is_const(t):
                    self.fail(op_type, node, f"Operator.outputs[{k}] is the constant tensor '{t.name}'")
                if idx in sg_inputs:
                    self.fail(op_type, node, f"Operator.outputs[{k}] is the subgraph input '{t.name}'")
                if idx in produced:
                    self.fail(op_type, node, f"Operator.outputs[{k}] '{t.name}' is already produced "
                              "by another operator (cycle or duplicate output)")
                produced.add(idx)
                available.add(idx)
            self.check_op(op_type, node, ins, outs, op)

    # -- tensors ----------------------------------------------------------------
    def read_tensor(self, index: int, tab: _Tab) -> _Tensor:
        t = _Tensor()
        t.index = index
        t.name = tab.string("name") or f"tensor_{index}"
        t.shape = self.vec(tab, "shape") or []
        t.type = tab.scalar("type")
        t.buffer = tab.scalar("buffer")
        t.is_variable = bool(tab.scalar("is_variable"))
        t.sparse = tab.has("sparsity")
        q = tab.table("quantization")
        t.scale, t.zero_point, t.qdim, t.qkey = [], None, 0, None
        if q is not None:
            t.scale = self.vec(q, "scale") or []
            t.zero_point = self.vec(q, "zero_point")
            t.qdim = q.scalar("quantized_dimension")
            t.qkey = (q.vec_span("scale"), q.vec_span("zero_point"), t.type)
        t.const_len, t.const_pos, t.external, t.has_data = 0, 0, False, False
        if 0 <= t.buffer < len(self.buffers):
            b = self.buffers[t.buffer]
            span = b.vec_span("data")
            t.has_data = t.buffer > 0 and span is not None
            if span and span[1]:
                t.const_pos, t.const_len = span
            elif b.scalar("offset") > 1 and b.scalar("size"):
                t.const_pos, t.const_len, t.external = b.scalar("offset"), b.scalar("size"), True
        return t

    def is_const(self, t: _Tensor) -> bool:
        return t.const_len > 0

    def check_tensor_type(self, t: _Tensor):
        if t.type not in self.type_names:
            self.tensor_fail(t, f"Tensor.type is {t.type}, not a known TensorType")
        if not 0 <= t.buffer < len(self.buffers):
            self.tensor_fail(t, f"Tensor.buffer is {t.buffer}; the model has {len(self.buffers)} buffers")

    def check_tensor(self, t: _Tensor):
        if len(t.shape) > MAX_TENSOR_RANK:
            self.tensor_fail(t, f"Tensor.shape has rank {len(t.shape)}; at most {MAX_TENSOR_RANK} "
                             "dimensions are supported")
        for k, d in enumerate(t.shape):
            if d < 1:
                self.tensor_fail(t, f"Tensor.shape[{k}] is {d} (shape {_shape_str(t.shape)}); "
                                 "every dimension must be >= 1 (static shapes only)")
        numel = t.numel()
        if numel > _INT32_MAX:
            self.tensor_fail(t, f"Tensor.shape {_shape_str(t.shape)} has {numel} elements, "
                             "which overflows int32")
        size = _TYPE_SIZES.get(t.type, 0)
        nbytes = math.ceil(numel * size)
        if nbytes > _INT32_MAX:
            self.tensor_fail(t, f"Tensor.shape {_shape_str(t.shape)} of {self.type_name(t.type)} is "
                             f"{nbytes} bytes, which overflows int32")
        if t.sparse:
            self.tensor_fail(t, "Tensor.sparsity is set; sparse tensors are not supported "
                             "(TFLM does not read sparsity metadata)")
        if self.is_const(t):
            if t.external:
                self.tensor_fail(t, f"Model.buffers[{t.buffer}] stores the tensor's data outside the "
                                 "flatbuffer (Buffer.offset/size), which the importer does not read")
            if size and t.const_len != nbytes:
                self.tensor_fail(t, f"Model.buffers[{t.buffer}] holds {t.const_len} bytes but the "
                                 f"{self.type_name(t.type)} tensor of shape {_shape_str(t.shape)} "
                                 f"needs {nbytes}")
        elif nbytes > MAX_ACTIVATION_BYTES:
            self.tensor_fail(t, f"Tensor.shape {_shape_str(t.shape)} of {self.type_name(t.type)} is a "
                             f"{nbytes}-byte activation, bigger than any microcontroller's memory "
                             f"(limit {MAX_ACTIVATION_BYTES} bytes)")
        self.check_quantization(t)

    def check_quantization(self, t: _Tensor):
        scale, zps = t.scale, t.zero_point
        if not scale:
            if zps:
                self.tensor_fail(t, f"QuantizationParameters.zero_point has {len(zps)} values but "
                                 "scale is empty")
            return
        if not zps:
            self.tensor_fail(t, f"QuantizationParameters.scale has {len(scale)} values but zero_point "
                             "is missing (TFLite requires one zero point per scale)")
        if len(zps) != len(scale):
            self.tensor_fail(t, f"QuantizationParameters.zero_point has {len(zps)} values for "
                             f"{len(scale)} scales; TFLite requires one zero point per scale")
        rank = len(t.shape)
        if t.qdim < 0 or (t.qdim >= rank and rank > 1):
            self.tensor_fail(t, f"QuantizationParameters.quantized_dimension is {t.qdim}; it must "
                             f"index a dimension of the rank-{rank} shape {_shape_str(t.shape)}")
        if len(scale) > 1:
            qdim = t.qdim if t.qdim < rank else 0  # TFLM ignores it on 1-D biases
            if rank == 0 or len(scale) != t.shape[qdim]:
                self.tensor_fail(t, f"QuantizationParameters.scale has {len(scale)} values; "
                                 f"per-channel quantization needs one per element of dimension "
                                 f"{t.qdim} of shape {_shape_str(t.shape)}")
        if t.qkey in self._quant_ok:
            return  # the same scale/zero-point vectors were already checked
        for k, s in enumerate(scale):
            if not (math.isfinite(s) and s > 0):
                self.tensor_fail(t, f"QuantizationParameters.scale[{k}] is {s}; scales must be "
                                 "finite and > 0")
        lo, hi = _ZP_RANGE.get(t.type, (-2**31, _INT32_MAX))
        for k, z in enumerate(zps):
            if not lo <= z <= hi:
                self.tensor_fail(t, f"QuantizationParameters.zero_point[{k}] is {z}; "
                                 f"{self.type_name(t.type)} zero points must be in [{lo}, {hi}]")
        if len(scale) > 1 and any(zps):
            self.tensor_fail(t, "QuantizationParameters.zero_point has non-zero values with "
                             "per-channel quantization; the TFLite quantization spec "
                             "requires them all to be 0")
        self._quant_ok.add(t.qkey)

    # -- operators --------------------------------------------------------------
    def read_op(self, i: int, op: _Tab):
        ins = self.vec(op, "inputs")
        outs = self.vec(op, "outputs")
        nt = len(self.tensors)
        node = f"#{i} op_{i}"
        if outs and 0 <= outs[0] < nt:
            node = f"#{i} {self.tensors[outs[0]].name}"
        op_type = self.op_type(op, node)
        for field, value in (("inputs", ins), ("outputs", outs)):
            if value is None:
                raise ModelFormatError(f"malformed TFLite file: Operator.{field} is missing "
                                       f"(Model.subgraphs[0].operators[{i}], {op_type} {node})")
        spec = _OPS.get(op_type)
        optional = spec[4] if spec else None
        if spec is not None:
            lo, hi = spec[2]
            if not lo <= len(ins) <= hi:
                want = str(lo) if lo == hi else f"{lo} to {hi}"
                self.fail(op_type, node, f"Operator.inputs lists {len(ins)} tensor(s); {op_type} "
                          f"takes {want}")
            if spec[3] is not None and len(outs) != spec[3]:
                self.fail(op_type, node, f"Operator.outputs lists {len(outs)} tensor(s); {op_type} "
                          f"produces {spec[3]}")
            elif spec[3] is None and not outs:
                self.fail(op_type, node, f"Operator.outputs is empty; {op_type} produces at least one tensor")
        for k, idx in enumerate(ins):
            if idx == -1 and (optional is None or k in optional):
                continue
            if not 0 <= idx < nt:
                extra = "" if idx != -1 else f"; input {k} of {op_type} is not optional"
                self.fail(op_type, node, f"Operator.inputs[{k}] is tensor {idx}; the subgraph has "
                          f"{nt} tensors{extra}")
        for k, idx in enumerate(outs):
            if not 0 <= idx < nt:
                self.fail(op_type, node, f"Operator.outputs[{k}] is tensor {idx}; the subgraph has "
                          f"{nt} tensors")
        return op_type, node, ins, outs, op

    def op_type(self, op: _Tab, node: str) -> str:
        idx = op.scalar("opcode_index")
        if idx >= len(self.opcodes):
            self.fail("OPERATOR", node, f"Operator.opcode_index is {idx}; the model has "
                      f"{len(self.opcodes)} operator codes")
        oc = self.opcodes[idx]
        builtin, deprecated = oc.scalar("builtin_code"), oc.scalar("deprecated_builtin_code")
        # TFLite (schema_utils GetBuiltinCode) takes max(builtin, deprecated); the `tflite`
        # package, and so TVM's importer, takes `deprecated` whenever builtin < 127.  They
        # agree on every file a converter writes; refuse the files where they would not.
        if builtin < 127 and deprecated < builtin:
            self.fail("OPERATOR", node, f"OperatorCode.deprecated_builtin_code is {deprecated} but "
                      f"builtin_code is {builtin}; below 127 they must agree (TFLite would run "
                      f"{self.op_names.get(builtin, builtin)}, the importer "
                      f"{self.op_names.get(deprecated, deprecated)})")
        code = max(builtin, deprecated)
        if code not in self.op_names:
            self.fail("OPERATOR", node, f"OperatorCode.builtin_code is {code}, not a known "
                      "BuiltinOperator")
        name = self.op_names[code]
        if name == "CUSTOM":
            custom = oc.string("custom_code")
            if not custom:
                self.fail("CUSTOM", node, "OperatorCode.custom_code is empty; a custom operator "
                          "needs a name")
            return f"CUSTOM({custom})"
        return name

    def options(self, op_type: str, node: str, op: _Tab) -> Optional[_Tab]:
        """The builtin options table, after checking its type tag against the operator."""
        otype = op.scalar("builtin_options_type")
        if otype not in self.options_names:
            self.fail(op_type, node, f"Operator.builtin_options_type is {otype}, not a known "
                      "BuiltinOptions table")
        spec = _OPS.get(op_type)
        if spec is None:
            return None
        want, required = spec[0], spec[1]
        got = self.options_names[otype]
        present = op.has("builtin_options")
        if otype != 0 and got != want:
            expected = want if want else "no builtin options (NONE)"
            self.fail(op_type, node, f"Operator.builtin_options_type is {got}; {op_type} takes "
                      f"{expected}")
        if otype == 0 and present:
            self.fail(op_type, node, "Operator.builtin_options is set but builtin_options_type "
                      "is NONE")
        if otype == 0 or not present:
            if required:
                self.fail(op_type, node, f"Operator.builtin_options is missing; {op_type} needs "
                          f"{want}")
            return None
        opts = op.table("builtin_options", want)
        self.verifier.table(opts.pos, want, f"{op_type} {node}: Operator.builtin_options<{want}>", 1)
        return opts

    def check_op(self, op_type, node, ins, outs, op):
        opts = self.options(op_type, node, op)
        spec = _OPS.get(op_type)
        if spec is None:
            return  # not lowered by the compiler: refused (by name) by the frontend
        T = self.tensors
        x = [T[i] if i >= 0 else None for i in ins]
        y = T[outs[0]] if outs else None  # ASSIGN_VARIABLE and CALL_ONCE produce nothing
        ctx = _OpCtx(self, op_type, node, opts)
        for t in x + ([y] if y is not None else []):
            # CAST converts raw values: TFLM ignores its quantization.
            if t is not None and t.type in (_T_INT8, _T_INT16) and not t.scale and op_type != "CAST":
                ctx.fail(f"tensor '{t.name}' is {self.type_name(t.type)} without quantization "
                         "parameters (TFLM's integer kernels need a scale and zero point)")
        handler = _HANDLERS.get(op_type)
        if handler is not None:
            handler(ctx, x, y)


class _OpCtx:
    """What one operator's check needs: its options and failure reporting."""

    def __init__(self, checker: _Checker, op_type: str, node: str, opts: Optional[_Tab]):
        self.c, self.op_type, self.node, self.opts = checker, op_type, node, opts

    def fail(self, reason: str):
        self.c.fail(self.op_type, self.node, reason)

    def opt(self, field: str):
        """An options field (schema default when the field or the whole table is absent)."""
        if self.opts is not None:
            return self.opts.scalar(field)
        spec = _FIELD_BY_NAME[_OPS[self.op_type][0]][field]
        return spec[3] if spec[3] is not None else 0

    def opt_vec(self, field: str):
        return self.opts.vec(field) if self.opts is not None else None

    def oname(self, field: str) -> str:
        return f"{self.opts.name if self.opts is not None else _OPS[self.op_type][0]}.{field}"

    def rank(self, t: _Tensor, ranks, what: str):
        if len(t.shape) not in ranks:
            want = " or ".join(f"{r}-D" for r in ranks)
            self.fail(f"{what} '{t.name}' has shape {_shape_str(t.shape)}; {self.op_type} needs "
                      f"a {want} tensor")

    def positive(self, field: str, what: str):
        v = self.opt(field)
        if v < 1:
            self.fail(f"{self.oname(field)} is {v}; {what} must be >= 1")
        return v

    def padding(self):
        v = self.opt("padding")
        if v not in _PADDING:
            self.fail(f"{self.oname('padding')} is {v}; padding must be SAME (0) or VALID (1)")
        return v

    def activation(self):
        v = self.opt("fused_activation_function")
        if v not in _ACTIVATIONS:
            self.fail(f"{self.oname('fused_activation_function')} is {v}, not a known "
                      "ActivationFunctionType")
        return v

    def activation_range(self, y: _Tensor, act: int):
        """CalculateActivationRangeQuantized: the clamp bounds must be representable in int32."""
        bounds = {1: (0.0,), 2: (-1.0, 1.0), 3: (0.0, 6.0)}.get(act, ())
        if y.type in (_T_INT8, _T_INT16) and y.scale:
            for v in bounds:
                if abs(v / y.scale[0]) > _INT32_MAX:
                    self.fail(f"output '{y.name}' scale {y.scale[0]:g} is too small for the fused "
                              f"{_ACTIVATIONS[act]} clamp ({v:g} / scale overflows int32)")

    def bias_type(self):
        v = self.opt("quantized_bias_type")
        if v not in self.c.type_names:
            self.fail(f"{self.oname('quantized_bias_type')} is {v}, not a known TensorType")

    def same_shape(self, a: _Tensor, b: _Tensor):
        if a.shape != b.shape:
            self.fail(f"output '{b.name}' has shape {_shape_str(b.shape)} but input '{a.name}' has "
                      f"{_shape_str(a.shape)}; {self.op_type} keeps the shape")

    def same_type(self, a: _Tensor, b: _Tensor):
        if a.type != b.type:
            self.fail(f"'{b.name}' is {self.c.type_name(b.type)} but '{a.name}' is "
                      f"{self.c.type_name(a.type)}; {self.op_type} needs equal types")

    def const_ints(self, t: _Tensor, what: str, limit: int = 64) -> List[int]:
        """Values of a small constant int32/int64 tensor (shape, axis, paddings...)."""
        if not self.c.is_const(t):
            self.fail(f"{what} '{t.name}' is not a constant tensor; {self.op_type} needs it in "
                      "the model")
        if t.type not in (_T_INT32, _T_INT64):
            self.fail(f"{what} '{t.name}' is {self.c.type_name(t.type)}; it must be int32 (or int64)")
        n = t.numel()
        if n > limit:
            self.fail(f"{what} '{t.name}' has {n} elements, more than the {limit} expected")
        code = "i" if t.type == _T_INT32 else "q"
        return list(struct.unpack_from(f"<{n}{code}", self.c.buf, t.const_pos))

    def windowed(self, x: _Tensor, y: _Tensor, fh: int, fw: int, sh: int, sw: int, dh: int, dw: int,
                 pad: int, what: str):
        """Output H/W as TFLM computes them (ComputePaddingHeightWidth)."""
        for axis, k, s, d, label in ((1, fh, sh, dh, "height"), (2, fw, sw, dw, "width")):
            size = x.shape[axis]
            eff = (k - 1) * d + 1
            if pad == 1 and eff > size:
                self.fail(f"{what} {label} {eff} (after dilation) is larger than the input {label} "
                          f"{size} with VALID padding")
            want = _out_size(pad, size, k, s, d)
            if eff > _INT32_MAX or (want - 1) * s + eff - size > _INT32_MAX:
                self.fail(f"{what} {label} {k} with dilation {d} and stride {s} overflows int32 in "
                          "TFLM's padding computation")
            if pad == 0 and ((want - 1) * s + eff - size) // 2 > 32767:
                # TFLite's PaddingValues hold int16: TFLM's kernels would wrap it.
                self.fail(f"{what} {label} {k} gives a SAME padding of {((want - 1) * s + eff - size) // 2}, "
                          "more than TFLM's int16 padding can hold")
            if y.shape[axis] != want:
                self.fail(f"output '{y.name}' {label} is {y.shape[axis]} but {_PADDING[pad]} padding "
                          f"with stride {s} gives {want} (input {_shape_str(x.shape)})")


# -- per-operator checks (mirroring the kernels' Prepare in tflite-micro) -------------
def _weights_zero_points(ctx: _OpCtx, w: _Tensor):
    if w.type == _T_INT8 and w.zero_point and any(w.zero_point):
        ctx.fail(f"weights '{w.name}' have non-zero zero points; int8 weights must be symmetric "
                 "(zero point 0) as TFLM's kernels assume")


def _no_hybrid(ctx: _OpCtx, inp: _Tensor, w: _Tensor):
    """Input/filter type pairs TFLM's conv and fully-connected kernels implement."""
    ok = {_T_FLOAT32: (_T_FLOAT32,), _T_INT8: (_T_INT8, _T_INT4), _T_INT16: (_T_INT8,)}
    if w.type not in ok.get(inp.type, (w.type,)):
        ctx.fail(f"input '{inp.name}' is {ctx.c.type_name(inp.type)} but weights '{w.name}' are "
                 f"{ctx.c.type_name(w.type)}; TFLM does not run hybrid models")


def _conv(ctx: _OpCtx, x, y):
    inp, w = x[0], x[1]
    depthwise = ctx.op_type == "DEPTHWISE_CONV_2D"
    pad = ctx.padding()
    sw, sh = ctx.positive("stride_w", "strides"), ctx.positive("stride_h", "strides")
    dw = ctx.positive("dilation_w_factor", "dilations")
    dh = ctx.positive("dilation_h_factor", "dilations")
    ctx.activation_range(y, ctx.activation())
    if not depthwise:
        ctx.bias_type()
    ctx.rank(inp, (4,), "input")
    ctx.rank(w, (4,), "filter")
    ctx.rank(y, (4,), "output")
    ctx.same_type(inp, y)
    _no_hybrid(ctx, inp, w)
    cin, cout = inp.shape[3], w.shape[3] if depthwise else w.shape[0]
    if depthwise:
        mult = ctx.positive("depth_multiplier", "depth_multiplier")
        if w.shape[0] != 1:
            ctx.fail(f"filter '{w.name}' has shape {_shape_str(w.shape)}; a depthwise filter is "
                     "[1, height, width, channels]")
        if cout != cin * mult:
            ctx.fail(f"{ctx.oname('depth_multiplier')} is {mult} but filter '{w.name}' has {cout} "
                     f"output channels for {cin} input channels (needs {cin} x depth_multiplier "
                     f"= {cout})")
        if len(x) < 3 or x[2] is None:
            ctx.fail("the bias (input 2) is absent; TFLM's DEPTHWISE_CONV_2D crashes without one "
                     "(the TFLite converter always emits it)")
    else:
        fin = w.shape[3]
        if cin % fin or cout % (cin // fin):
            ctx.fail(f"filter '{w.name}' ({_shape_str(w.shape)}) takes {fin} input channels, which "
                     f"does not divide the input's {cin} channels into groups of {cout} outputs")
    if y.shape[0] != inp.shape[0] or y.shape[3] != cout:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; batch {inp.shape[0]} and "
                 f"{cout} channels expected")
    if len(x) > 2 and x[2] is not None and x[2].numel() != cout:
        ctx.fail(f"bias '{x[2].name}' has {x[2].numel()} elements for {cout} output channels")
    ctx.windowed(inp, y, w.shape[1], w.shape[2], sh, sw, dh, dw, pad, "filter")
    if inp.type in (_T_INT8, _T_INT16) and len(w.scale) not in (1, cout):
        ctx.fail(f"filter '{w.name}' has {len(w.scale)} scales; TFLM needs 1 or one per output "
                 f"channel ({cout})")
    _weights_zero_points(ctx, w)


def _transpose_conv(ctx: _OpCtx, x, y):
    shape_t, w, inp = x[0], x[1], x[2]
    ctx.padding()
    ctx.positive("stride_w", "strides")
    ctx.positive("stride_h", "strides")
    ctx.activation_range(y, ctx.activation())
    ctx.bias_type()
    ctx.rank(inp, (4,), "input")
    ctx.rank(w, (4,), "filter")
    ctx.rank(y, (4,), "output")
    ctx.same_type(inp, y)
    _no_hybrid(ctx, inp, w)
    if shape_t.type != _T_INT32 or len(shape_t.shape) != 1 or shape_t.shape[0] != 4:
        ctx.fail(f"output shape '{shape_t.name}' is {ctx.c.type_name(shape_t.type)} "
                 f"{_shape_str(shape_t.shape)}; TFLM needs a 1-D int32 tensor of 4 values")
    want = ctx.const_ints(shape_t, "output shape")
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)} but the output shape tensor "
                 f"'{shape_t.name}' says {_shape_str(want)}")
    cout, cin = w.shape[0], w.shape[3]
    if inp.shape[3] != cin or y.shape[3] != cout or y.shape[0] != inp.shape[0]:
        ctx.fail(f"filter '{w.name}' ({_shape_str(w.shape)}) does not map input {_shape_str(inp.shape)} "
                 f"to output {_shape_str(y.shape)} (filter is [out channels, height, width, in channels])")
    if len(x) > 3 and x[3] is not None and x[3].numel() != cout:
        ctx.fail(f"bias '{x[3].name}' has {x[3].numel()} elements for {cout} output channels")
    if inp.type in (_T_INT8, _T_INT16) and len(w.scale) not in (1, cout):
        ctx.fail(f"filter '{w.name}' has {len(w.scale)} scales; TFLM needs 1 or one per output "
                 f"channel ({cout})")
    _weights_zero_points(ctx, w)


def _fully_connected(ctx: _OpCtx, x, y):
    inp, w = x[0], x[1]
    ctx.activation_range(y, ctx.activation())
    ctx.bias_type()
    fmt = ctx.opt("weights_format")
    if fmt != 0:
        what = "SHUFFLED4x16INT8" if fmt == 1 else f"{fmt}, not a known weights format"
        ctx.fail(f"{ctx.oname('weights_format')} is {what}; only DEFAULT weights are supported")
    ctx.same_type(inp, y)
    _no_hybrid(ctx, inp, w)
    ctx.rank(w, (2,), "weights")
    units, depth = w.shape
    n = inp.numel()
    if n % depth:
        ctx.fail(f"input '{inp.name}' ({_shape_str(inp.shape)}, {n} elements) is not a whole number "
                 f"of rows of the weights' depth {depth}")
    if ctx.opt("keep_num_dims"):
        want = inp.shape[:-1] + [units]
        if not inp.shape or inp.shape[-1] != depth:
            ctx.fail(f"input '{inp.name}' {_shape_str(inp.shape)} must end in the weights' depth "
                     f"{depth} with {ctx.oname('keep_num_dims')} set")
    else:
        want = [n // depth, units]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; "
                 f"{_shape_str(want)} expected ({n // depth} rows of {units} units)")
    bias = x[2] if len(x) > 2 else None
    if bias is not None and bias.numel() != units:
        ctx.fail(f"bias '{bias.name}' has {bias.numel()} elements for {units} units")
    if inp.type in (_T_INT8, _T_INT16) and w.scale:
        if len(w.scale) > 1:
            if len(w.scale) != units:
                ctx.fail(f"weights '{w.name}' have {len(w.scale)} scales for {units} units")
        elif y.scale and bias is not None:
            # GetQuantizedConvolutionMultipler: bias scale ~ input scale * weight scale.
            bscale = bias.scale[0] if bias.scale else 0.0
            prod = inp.scale[0] * w.scale[0]
            if abs(prod - bscale) / y.scale[0] > 0.02:
                ctx.fail(f"bias '{bias.name}' scale {bscale:g} differs "
                         f"from input scale x weight scale {prod:g} by more than TFLM's tolerance")
    _weights_zero_points(ctx, w)


def _broadcast_shape(ctx: _OpCtx, tensors, y):
    """Check that ``y`` has the broadcast shape of ``tensors``."""
    out = []
    for k in range(max(len(t.shape) for t in tensors)):
        dims = {t.shape[::-1][k] for t in tensors if k < len(t.shape)} - {1}
        if len(dims) > 1:
            ctx.fail("inputs " + ", ".join(f"'{t.name}' {_shape_str(t.shape)}" for t in tensors)
                     + " cannot be broadcast together")
        out.append(dims.pop() if dims else 1)
    if y.shape != out[::-1]:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; broadcasting the inputs gives "
                 f"{_shape_str(out[::-1])}")


def _compare(ctx: _OpCtx, x, y):
    ctx.same_type(x[0], x[1])
    if y.type != 6:  # BOOL
        ctx.fail(f"output '{y.name}' is {ctx.c.type_name(y.type)}; {ctx.op_type} writes bool")
    _broadcast_shape(ctx, x, y)


def _select(ctx: _OpCtx, x, y):
    cond, a, b = x
    if cond.type != 6:
        ctx.fail(f"condition '{cond.name}' is {ctx.c.type_name(cond.type)}, not bool")
    ctx.same_type(a, b)
    ctx.same_type(a, y)
    _broadcast_shape(ctx, x, y)


def _arg_extreme(ctx: _OpCtx, x, y):
    inp, axis_t = x
    values = ctx.const_ints(axis_t, "axis")
    if len(values) != 1:
        ctx.fail(f"axis '{axis_t.name}' has {len(values)} values; {ctx.op_type} takes one")
    axis = values[0]
    rank = len(inp.shape)
    if not -rank <= axis < rank:
        ctx.fail(f"axis {axis} is outside the input's {rank} dimensions")
    want = [d for k, d in enumerate(inp.shape) if k != axis % max(rank, 1)]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; {_shape_str(want)} expected")
    if y.type != ctx.opt("output_type"):
        ctx.fail(f"output '{y.name}' is {ctx.c.type_name(y.type)} but {ctx.oname('output_type')} says "
                 f"{ctx.c.type_name(ctx.opt('output_type'))}")


def _broadcast_to(ctx: _OpCtx, x, y):
    inp, shape_t = x
    want = ctx.const_ints(shape_t, "shape", limit=6)
    ctx.same_type(inp, y)
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; the shape tensor says {_shape_str(want)}")
    _broadcast_shape(ctx, [inp, y], y)


def _cumsum(ctx: _OpCtx, x, y):
    inp, axis_t = x
    values = ctx.const_ints(axis_t, "axis")
    if len(values) != 1 or not -len(inp.shape) <= values[0] < len(inp.shape):
        ctx.fail(f"axis '{axis_t.name}' must hold one axis of the {len(inp.shape)}-D input")
    ctx.same_shape(inp, y)
    ctx.same_type(inp, y)


def _gather_nd(ctx: _OpCtx, x, y):
    params, idx_t = x
    if not idx_t.shape:
        ctx.fail(f"indices '{idx_t.name}' are a scalar; GATHER_ND needs at least one dimension")
    depth = idx_t.shape[-1]
    if not 1 <= depth <= min(5, len(params.shape)):
        ctx.fail(f"indices '{idx_t.name}' index {depth} dimensions of a {len(params.shape)}-D tensor (TFLM: 1..5)")
    values = ctx.const_ints(idx_t, "indices", limit=4096)
    for n in range(0, len(values), depth):
        for k, v in enumerate(values[n:n + depth]):
            if not 0 <= v < params.shape[k]:
                ctx.fail(f"indices '{idx_t.name}' hold {v} for a dimension of {params.shape[k]}; TFLM fails at run time")
    want = idx_t.shape[:-1] + params.shape[depth:]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; {_shape_str(want)} expected")
    ctx.same_type(params, y)


def _fill(ctx: _OpCtx, x, y):
    dims_t, value = x
    want = ctx.const_ints(dims_t, "dims", limit=6)
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; the dims tensor says {_shape_str(want)}")
    if not ctx.c.is_const(value) or value.numel() != 1:
        ctx.fail(f"value '{value.name}' must be a constant scalar")
    ctx.same_type(value, y)


def _add_n(ctx: _OpCtx, x, y):
    for t in x:
        ctx.same_shape(t, y)
        ctx.same_type(t, y)
        if (t.scale, t.zero_point) != (x[0].scale, x[0].zero_point):
            ctx.fail(f"input '{t.name}' is quantized unlike '{x[0].name}'; TFLM's ADD_N needs one quantization")


def _batch_space(ctx: _OpCtx, x, y):
    inp, block_t, pads_t = x
    ctx.rank(inp, (4,), "input")
    block = ctx.const_ints(block_t, "block shape")
    pads = ctx.const_ints(pads_t, "paddings" if ctx.op_type == "SPACE_TO_BATCH_ND" else "crops")
    if len(block) != 2 or len(pads) != 4 or min(block) < 1 or min(pads) < 0:
        ctx.fail("block shape must hold 2 positive values and paddings/crops 2x2 non-negative ones")
    ctx.same_type(inp, y)
    b, h, w, c = inp.shape
    if ctx.op_type == "SPACE_TO_BATCH_ND":
        ph, pw = h + pads[0] + pads[1], w + pads[2] + pads[3]
        if ph % block[0] or pw % block[1]:
            ctx.fail(f"padded size {ph}x{pw} is not a multiple of the block {block}")
        want = [b * block[0] * block[1], ph // block[0], pw // block[1], c]
    else:
        if b % (block[0] * block[1]):
            ctx.fail(f"batch {b} is not a multiple of the block {block}")
        want = [b // (block[0] * block[1]), h * block[0] - pads[0] - pads[1], w * block[1] - pads[2] - pads[3], c]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; {_shape_str(want)} expected")


def _shape(ctx: _OpCtx, x, y):
    if y.type != _T_INT32 or ctx.opt("out_type") != _T_INT32:
        ctx.fail(f"output '{y.name}' must be int32 (ShapeOptions.out_type {ctx.opt('out_type')}); "
                 "TFLM writes shapes as int32")
    if y.shape != [len(x[0].shape)]:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; the input has rank {len(x[0].shape)}")


def _variable_op(ctx: _OpCtx, x, y):
    """The handle of a variable operator is a RESOURCE tensor; the values are quantized."""
    handle = y if ctx.op_type == "VAR_HANDLE" else x[0]
    if handle.type != _T_RESOURCE:
        ctx.fail(f"tensor '{handle.name}' is {ctx.c.type_name(handle.type)}; a variable handle is a resource")
    value = y if ctx.op_type == "READ_VARIABLE" else x[1] if ctx.op_type == "ASSIGN_VARIABLE" else None
    if value is not None and value.type not in (_T_INT8, _T_INT16):
        ctx.fail(f"tensor '{value.name}' is {ctx.c.type_name(value.type)}; variables are supported for "
                 "int8/int16 values")


def _cast(ctx: _OpCtx, x, y):
    ctx.same_shape(x[0], y)


def _broadcast(ctx: _OpCtx, x, y):
    a, b = x
    ctx.activation_range(y, ctx.activation())
    if ctx.op_type in ("ADD", "SUB") and y.type in (_T_INT8, _T_INT16) and a.scale and b.scale \
            and y.scale:
        # CalculateOpDataAdd: the output rescale after the 2^20 (int16: 2^15) left shift must be < 1.
        shift = 20 if y.type == _T_INT8 else 15
        twice_max = 2.0 * max(a.scale[0], b.scale[0])
        if twice_max / ((1 << shift) * y.scale[0]) >= 1.0:
            ctx.fail(f"output '{y.name}' scale {y.scale[0]:g} is too small for input scales "
                     f"{a.scale[0]:g} and {b.scale[0]:g}; TFLM's {ctx.op_type} needs "
                     f"2 x max(input scales) < 2^{shift} x output scale")
    ctx.same_type(a, b)
    ctx.same_type(a, y)
    ra, rb = a.shape[::-1], b.shape[::-1]
    out = []
    for k in range(max(len(ra), len(rb))):
        da = ra[k] if k < len(ra) else 1
        db = rb[k] if k < len(rb) else 1
        if da != db and 1 not in (da, db):
            ctx.fail(f"inputs '{a.name}' {_shape_str(a.shape)} and '{b.name}' {_shape_str(b.shape)} "
                     "cannot be broadcast together")
        out.append(max(da, db))
    out = out[::-1]
    if y.shape != out:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; broadcasting the inputs gives "
                 f"{_shape_str(out)}")


def _pool(ctx: _OpCtx, x, y):
    inp = x[0]
    pad = ctx.padding()
    sw, sh = ctx.positive("stride_w", "strides"), ctx.positive("stride_h", "strides")
    fw = ctx.positive("filter_width", "pool filter sizes")
    fh = ctx.positive("filter_height", "pool filter sizes")
    ctx.activation_range(y, ctx.activation())
    ctx.rank(inp, (4,), "input")
    ctx.rank(y, (4,), "output")
    ctx.same_type(inp, y)
    if y.shape[0] != inp.shape[0] or y.shape[3] != inp.shape[3]:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; batch and channels must match "
                 f"the input {_shape_str(inp.shape)}")
    ctx.windowed(inp, y, fh, fw, sh, sw, 1, 1, pad, "pool filter")
    if inp.type in (_T_INT8, _T_INT16) and inp.scale and y.scale:
        if abs(inp.scale[0] - y.scale[0]) > 1e-6 or inp.zero_point[0] != y.zero_point[0]:
            ctx.fail(f"input '{inp.name}' and output '{y.name}' are quantized differently; TFLM's "
                     "pooling needs equal scale and zero point")


def _mean(ctx: _OpCtx, x, y):
    inp, axis_t = x
    if axis_t.type != _T_INT32:
        ctx.fail(f"axis '{axis_t.name}' is {ctx.c.type_name(axis_t.type)}; TFLM needs int32")
    ctx.same_type(inp, y)
    if not ctx.c.is_const(axis_t):
        return
    rank = len(inp.shape)
    axes = set()
    for a in ctx.const_ints(axis_t, "axis"):
        if not -rank <= a < rank:
            ctx.fail(f"axis '{axis_t.name}' holds {a}; the input has rank {rank}")
        axes.add(a % rank)
    if ctx.opt("keep_dims"):
        want = [1 if k in axes else d for k, d in enumerate(inp.shape)]
    else:
        want = [d for k, d in enumerate(inp.shape) if k not in axes]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; reducing axes {sorted(axes)} "
                 f"of {_shape_str(inp.shape)} gives {_shape_str(want)}")


def _pad(ctx: _OpCtx, x, y):
    inp, pads_t = x[0], x[1]
    ctx.same_type(inp, y)
    if len(inp.shape) > 5:
        ctx.fail(f"input '{inp.name}' has rank {len(inp.shape)}; TFLM pads at most 5 dimensions")
    rank = len(y.shape)
    if pads_t.numel() != 2 * rank:
        ctx.fail(f"paddings '{pads_t.name}' has {pads_t.numel()} values; {2 * rank} (a before/after "
                 f"pair per dimension of the output) are needed")
    if len(inp.shape) != rank:
        ctx.fail(f"output '{y.name}' has rank {rank} but input '{inp.name}' has {len(inp.shape)}")
    pads = ctx.const_ints(pads_t, "paddings")
    for k in range(rank):
        before, after = pads[2 * k], pads[2 * k + 1]
        if before < 0 or after < 0:
            ctx.fail(f"paddings '{pads_t.name}' pads dimension {k} by ({before}, {after}); "
                     "paddings must be >= 0")
        if y.shape[k] != inp.shape[k] + before + after:
            ctx.fail(f"output '{y.name}' dimension {k} is {y.shape[k]}; input {inp.shape[k]} padded "
                     f"by ({before}, {after}) gives {inp.shape[k] + before + after}")
    if len(x) > 2:
        cv = x[2]
        ctx.same_type(inp, cv)
        if cv.numel() != 1:
            ctx.fail(f"constant_values '{cv.name}' has {cv.numel()} elements; it must be a scalar")
        if inp.type == _T_INT8 and cv.scale and y.scale and (
                cv.scale[0] != y.scale[0] or cv.zero_point[0] != y.zero_point[0]):
            ctx.fail(f"constant_values '{cv.name}' is quantized differently from the output")


def _reshape(ctx: _OpCtx, x, y):
    inp = x[0]
    ctx.same_type(inp, y)
    new_shape = ctx.opt_vec("new_shape")
    if new_shape is not None and len(new_shape) > 8:
        ctx.fail(f"{ctx.oname('new_shape')} has {len(new_shape)} dimensions; TFLM takes at most 8")
    if inp.numel() != y.numel():
        ctx.fail(f"output '{y.name}' {_shape_str(y.shape)} has {y.numel()} elements but input "
                 f"'{inp.name}' {_shape_str(inp.shape)} has {inp.numel()}")
    # The importer builds the reshape from the shape operand (or new_shape), TFLM from the
    # output tensor: they must describe the same shape.
    if len(x) > 1:
        if not ctx.c.is_const(x[1]):
            return
        target, what = ctx.const_ints(x[1], "shape", limit=MAX_TENSOR_RANK), f"shape '{x[1].name}'"
    else:
        if new_shape is None:
            ctx.fail("RESHAPE has no shape operand and no ReshapeOptions.new_shape; the target "
                     "shape is undefined")
        target, what = new_shape, ctx.oname("new_shape")
    if (len(target) != len(y.shape) or target.count(-1) > 1
            or any(v != -1 and v != d for v, d in zip(target, y.shape))):
        ctx.fail(f"{what} is {target} but output '{y.name}' has shape {_shape_str(y.shape)}")


def _squeeze(ctx: _OpCtx, x, y):
    inp = x[0]
    ctx.same_type(inp, y)
    rank = len(inp.shape)
    dims = ctx.opt_vec("squeeze_dims") or []
    if len(dims) > 8:
        ctx.fail(f"{ctx.oname('squeeze_dims')} has {len(dims)} entries; TFLM takes at most 8")
    squeeze = set()
    for d in dims:
        k = d + rank if d < 0 else d
        if not 0 <= k < rank or inp.shape[k] != 1:
            ctx.fail(f"{ctx.oname('squeeze_dims')} names dimension {d}, which is not a size-1 "
                     f"dimension of the input {_shape_str(inp.shape)}")
        squeeze.add(k)
    if not dims:
        squeeze = {k for k, d in enumerate(inp.shape) if d == 1}
    want = [d for k, d in enumerate(inp.shape) if k not in squeeze]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; squeezing "
                 f"{_shape_str(inp.shape)} gives {_shape_str(want)}")


def _transpose(ctx: _OpCtx, x, y):
    inp, perm_t = x
    ctx.same_type(inp, y)
    rank = len(inp.shape)
    if rank > 5:
        ctx.fail(f"input '{inp.name}' has rank {rank}; TFLM transposes at most 5 dimensions")
    if len(perm_t.shape) != 1 or perm_t.shape[0] != rank:
        ctx.fail(f"perm '{perm_t.name}' has shape {_shape_str(perm_t.shape)}; a 1-D permutation of "
                 f"{rank} axes is needed")
    perm = ctx.const_ints(perm_t, "perm")
    if sorted(perm) != list(range(rank)):
        ctx.fail(f"perm '{perm_t.name}' is {perm}, not a permutation of 0..{rank - 1}")
    want = [inp.shape[p] for p in perm]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; permuting "
                 f"{_shape_str(inp.shape)} by {perm} gives {_shape_str(want)}")


def _concatenation(ctx: _OpCtx, x, y):
    act = ctx.activation()
    if act != 0:
        ctx.fail(f"{ctx.oname('fused_activation_function')} is {_ACTIVATIONS[act]}; TFLM's "
                 "CONCATENATION takes no fused activation")
    rank = len(y.shape)
    if rank > 6:
        ctx.fail(f"output '{y.name}' has rank {rank}; TFLM concatenates at most 6 dimensions")
    axis = ctx.opt("axis")
    if not -rank <= axis < rank:
        ctx.fail(f"{ctx.oname('axis')} is {axis}; the output has rank {rank}")
    axis %= max(rank, 1)
    total = 0
    for t in x:
        ctx.same_type(t, y)
        if len(t.shape) != rank or any(d != y.shape[k] for k, d in enumerate(t.shape) if k != axis):
            ctx.fail(f"input '{t.name}' {_shape_str(t.shape)} does not match output "
                     f"{_shape_str(y.shape)} outside axis {axis}")
        total += t.shape[axis]
        # Recent TFLM also refuses int8 inputs quantized unlike the output; older TFLM (and
        # the compiler) rescale them, and the test suite relies on that, so it is allowed.
    if y.shape[axis] != total:
        ctx.fail(f"output '{y.name}' is {y.shape[axis]} long on axis {axis}; the inputs add up to "
                 f"{total}")


def _log_softmax(ctx: _OpCtx, x, y):
    inp = x[0]
    if not inp.shape:
        ctx.fail(f"input '{inp.name}' is a scalar; LOG_SOFTMAX needs at least 1 dimension")
    ctx.same_shape(inp, y)
    ctx.same_type(inp, y)
    if inp.type == _T_INT8 and y.scale and (y.scale[0] != 16.0 / 256 or y.zero_point[0] != 127):
        ctx.fail(f"output '{y.name}' has scale {y.scale[0]:g} and zero point {y.zero_point[0]}; "
                 "TFLM's int8 LOG_SOFTMAX needs scale 16/256 and zero point 127")
    if inp.type == _T_INT8 and inp.scale and not inp.scale[0] * (1 << 26) > 1.0:
        ctx.fail(f"input '{inp.name}' has scale {inp.scale[0]:g}; TFLM's int8 LOG_SOFTMAX needs "
                 "scale x 2^26 > 1")


def _softmax(ctx: _OpCtx, x, y):
    inp = x[0]
    beta = ctx.opt("beta")
    if not math.isfinite(beta):
        ctx.fail(f"{ctx.oname('beta')} is {beta}; beta must be finite")
    if not inp.shape:
        ctx.fail(f"input '{inp.name}' is a scalar; SOFTMAX needs at least 1 dimension")
    ctx.same_shape(inp, y)
    if inp.type == _T_INT8 and inp.scale:
        # PreprocessSoftmaxScaling: beta x input scale x 2^26 must exceed 1.
        m = beta * inp.scale[0] * (1 << 26)
        if not m > 1.0:
            ctx.fail(f"{ctx.oname('beta')} is {beta:g}; with input scale {inp.scale[0]:g} TFLM's "
                     "int8 SOFTMAX needs beta x scale x 2^26 > 1")
    if inp.type == _T_INT8 and y.type == _T_INT8 and y.scale:
        if y.zero_point[0] != -128 or y.scale[0] != 1.0 / 256:
            ctx.fail(f"output '{y.name}' has scale {y.scale[0]:g} and zero point {y.zero_point[0]}; "
                     "TFLM's int8 SOFTMAX needs scale 1/256 and zero point -128")
    elif inp.type == _T_INT8 and y.type == _T_INT16 and y.scale:
        if y.zero_point[0] != -32768 or abs(y.scale[0] - 1 / 65536) > 0.001 / 65536:
            ctx.fail(f"output '{y.name}' must have scale 1/65536 and zero point -32768 for an "
                     "int8 -> int16 SOFTMAX")
    elif y.type != inp.type:
        ctx.same_type(inp, y)


def _logistic(ctx: _OpCtx, x, y):
    ctx.same_shape(x[0], y)
    ctx.same_type(x[0], y)
    if y.type == _T_INT8 and y.scale and y.zero_point[0] != -128:
        ctx.fail(f"output '{y.name}' has zero point {y.zero_point[0]}; TFLM's int8 LOGISTIC "
                 "needs -128")


def _elementwise(ctx: _OpCtx, x, y):
    ctx.same_shape(x[0], y)
    if ctx.op_type not in ("QUANTIZE", "DEQUANTIZE"):
        ctx.same_type(x[0], y)
    if ctx.op_type == "QUANTIZE" and len(y.scale) > 1:
        ctx.fail(f"output '{y.name}' is quantized per channel; TFLM's QUANTIZE takes per-tensor "
                 "quantization only")


def _resize_bilinear(ctx: _OpCtx, x, y):
    if ctx.opt("align_corners") and ctx.opt("half_pixel_centers"):
        ctx.fail(f"{ctx.oname('align_corners')} and half_pixel_centers are both set; TFLM refuses that")
    _resize_nearest(ctx, x, y)


def _svdf(ctx: _OpCtx, x, y):
    inp, wf, wt, bias, state = x
    rank = ctx.positive("rank", "rank")
    ctx.activation()
    for t, what in ((inp, "input"), (wf, "weights_feature"), (wt, "weights_time"), (state, "state"), (y, "output")):
        ctx.rank(t, (2,), what)
    batch, features = inp.shape
    filters, memory = wt.shape
    if wf.shape != [filters, features]:
        ctx.fail(f"weights_feature '{wf.name}' is {_shape_str(wf.shape)}; [{filters}, {features}] expected "
                 "(num_filters x input features)")
    if filters % rank:
        ctx.fail(f"{ctx.oname('rank')} is {rank}, which does not divide the {filters} filters")
    units = filters // max(rank, 1)
    if y.shape != [batch, units] or bias.shape != [units]:
        ctx.fail(f"output '{y.name}' {_shape_str(y.shape)} and bias '{bias.name}' {_shape_str(bias.shape)} "
                 f"must be [{batch}, {units}] and [{units}]")
    if state.shape != [batch, filters * memory]:
        ctx.fail(f"state '{state.name}' is {_shape_str(state.shape)}; [{batch}, {filters * memory}] expected")
    if not state.is_variable:
        ctx.fail(f"state '{state.name}' is not a variable tensor; TFLM's SVDF keeps its history there")
    if inp.type == _T_INT8:
        if wf.type != _T_INT8 or bias.type != _T_INT32 or y.type != _T_INT8:
            ctx.fail("int8 SVDF needs int8 weights_feature and output and an int32 bias")
        if wt.type != state.type or wt.type not in (_T_INT16, _T_INT8):
            ctx.fail(f"weights_time '{wt.name}' and state '{state.name}' must both be int16 (or both int8); "
                     "TFLM misreads a mixed pair")
        if state.scale and wt.scale and bias.scale and abs(bias.scale[0] - state.scale[0] * wt.scale[0]) >= 1e-5:
            ctx.fail(f"bias '{bias.name}' scale {bias.scale[0]:g} is not state scale x weights_time scale; "
                     "TFLM refuses it")


def _lstm(ctx: _OpCtx, x, y):
    inp = x[0]
    for k in (9, 10, 11, 16, 17, 20, 21, 22, 23):
        if x[k] is not None:
            ctx.fail(f"input {k} ('{x[k].name}') is present; TFLM's LSTM has no peephole, projection or "
                     "layer normalization")
    missing = [k for k in list(range(1, 9)) + [12, 13, 14, 15, 18, 19] if x[k] is None]
    if missing:
        ctx.fail(f"inputs {missing} are absent; TFLM's LSTM needs all eight weights, four biases and both "
                 "states (no CIFG)")
    if not math.isfinite(ctx.opt("cell_clip")) or ctx.opt("cell_clip") < 0:
        ctx.fail(f"{ctx.oname('cell_clip')} is {ctx.opt('cell_clip')}; it must be >= 0")
    ctx.rank(inp, (3,), "input")
    ctx.rank(y, (3,), "output")
    rows = inp.shape[:2]
    units = x[1].shape[0] if x[1].shape else 0
    for k in range(1, 9):
        cols = inp.shape[2] if k <= 4 else units
        if x[k].shape != [units, cols]:
            ctx.fail(f"weights '{x[k].name}' are {_shape_str(x[k].shape)}; [{units}, {cols}] expected")
        if x[k].type != _T_INT8 and inp.type in (_T_INT8, _T_INT16):
            ctx.fail(f"weights '{x[k].name}' are {ctx.c.type_name(x[k].type)}; int8 expected")
        if len(x[k].scale) > 1:
            ctx.fail(f"weights '{x[k].name}' are quantized per channel; TFLM's LSTM reads one scale")
        _weights_zero_points(ctx, x[k])
    for k in (12, 13, 14, 15):
        if x[k].shape != [units]:
            ctx.fail(f"bias '{x[k].name}' is {_shape_str(x[k].shape)}; [{units}] expected")
    batch = inp.shape[1] if ctx.opt("time_major") else inp.shape[0]
    for k, what in ((18, "output_state"), (19, "cell_state")):
        if not x[k].is_variable:
            ctx.fail(f"{what} '{x[k].name}' is not a variable tensor; TFLM keeps the LSTM state there")
        if x[k].numel() != batch * units:
            ctx.fail(f"{what} '{x[k].name}' has {x[k].numel()} elements; {batch} sequences x {units} units expected")
    if y.shape != rows + [units]:
        ctx.fail(f"output '{y.name}' is {_shape_str(y.shape)}; {_shape_str(rows + [units])} expected")
    if inp.type in (_T_INT8, _T_INT16) and (x[19].type != _T_INT16 or x[18].type != inp.type or y.type != inp.type):
        ctx.fail("an integer LSTM needs output_state and output of the input's type and an int16 cell_state")
    if inp.type == _T_INT16 and any(x[k].type != _T_INT64 for k in (12, 13, 14, 15)):
        ctx.fail("an int16 LSTM needs int64 biases")


def _l2_normalization(ctx: _OpCtx, x, y):
    inp = x[0]
    if ctx.activation() != 0:
        ctx.fail(f"{ctx.oname('fused_activation_function')} must be NONE for TFLM's L2_NORMALIZATION")
    ctx.rank(inp, (1, 2, 3, 4), "input")
    ctx.same_shape(inp, y)
    ctx.same_type(inp, y)
    if inp.type == _T_INT8 and y.scale and (y.scale[0] != 1.0 / 128 or y.zero_point[0] != 0):
        ctx.fail(f"output '{y.name}' has scale {y.scale[0]:g} and zero point {y.zero_point[0]}; TFLM's int8 "
                 "L2_NORMALIZATION writes scale 1/128 and zero point 0")


def _resize_nearest(ctx: _OpCtx, x, y):
    inp, size_t = x
    ctx.rank(inp, (4,), "input")
    ctx.rank(y, (4,), "output")
    ctx.same_type(inp, y)
    if size_t.type != _T_INT32 or len(size_t.shape) != 1 or size_t.shape[0] != 2:
        ctx.fail(f"size '{size_t.name}' is {ctx.c.type_name(size_t.type)} "
                 f"{_shape_str(size_t.shape)}; TFLM needs a 1-D int32 tensor of 2 values")
    h, w = ctx.const_ints(size_t, "size")
    want = [inp.shape[0], h, w, inp.shape[3]]
    if y.shape != want:
        ctx.fail(f"output '{y.name}' has shape {_shape_str(y.shape)}; resizing "
                 f"{_shape_str(inp.shape)} to {h}x{w} gives {_shape_str(want)}")


_HANDLERS = {
    "CONV_2D": _conv,
    "DEPTHWISE_CONV_2D": _conv,
    "TRANSPOSE_CONV": _transpose_conv,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": _broadcast,
    "SUB": _broadcast,
    "MUL": _broadcast,
    "AVERAGE_POOL_2D": _pool,
    "MAX_POOL_2D": _pool,
    "MEAN": _mean,
    "PAD": _pad,
    "PADV2": _pad,
    "RESHAPE": _reshape,
    "SQUEEZE": _squeeze,
    "TRANSPOSE": _transpose,
    "CONCATENATION": _concatenation,
    "SOFTMAX": _softmax,
    "LOG_SOFTMAX": _log_softmax,
    "EQUAL": _compare,
    "NOT_EQUAL": _compare,
    "GREATER": _compare,
    "GREATER_EQUAL": _compare,
    "LESS": _compare,
    "LESS_EQUAL": _compare,
    "SELECT_V2": _select,
    "SELECT": _select,
    "BROADCAST_TO": _broadcast_to,
    "GATHER_ND": _gather_nd,
    "CUMSUM": _cumsum,
    "FILL": _fill,
    "SHAPE": _shape,
    "VAR_HANDLE": _variable_op,
    "READ_VARIABLE": _variable_op,
    "ASSIGN_VARIABLE": _variable_op,
    "ZEROS_LIKE": _cast,
    "ADD_N": _add_n,
    "SPACE_TO_BATCH_ND": _batch_space,
    "BATCH_TO_SPACE_ND": _batch_space,
    "ARG_MAX": _arg_extreme,
    "ARG_MIN": _arg_extreme,
    "CAST": _cast,
    "LOGISTIC": _logistic,
    "HARD_SWISH": _elementwise,
    "RELU": _elementwise,
    "RELU6": _elementwise,
    "RELU_N1_TO_1": _elementwise,
    "NEG": _cast,
    "QUANTIZE": _elementwise,
    "DEQUANTIZE": _elementwise,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nearest,
    "RESIZE_BILINEAR": _resize_bilinear,
    "L2_NORMALIZATION": _l2_normalization,
    "SVDF": _svdf,
    "UNIDIRECTIONAL_SEQUENCE_LSTM": _lstm,
}


def check_tflite(data: bytes, name: str = "") -> None:
    """Check that ``data`` is a well-formed TFLite model that TFLite Micro would accept.

    Raises :class:`ModelFormatError` for a malformed flatbuffer and
    :class:`UnsupportedModelError` (one problem, naming the operator or tensor
    and the field) for a well-formed but invalid model; never anything else.
    ``name`` only labels the model in error messages.
    """
    try:
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, bytes):
            raise ModelFormatError(f"expected the model as bytes, got {type(data).__name__}")
        verifier = _Verifier(data)
        root = verifier.verify()
        _Checker(data, root, name, verifier).run()
    except (ModelFormatError, UnsupportedModelError):
        raise
    except _Problem as problem:
        raise UnsupportedModelError([problem.args], name) from None
    except Exception as exc:  # pragma: no cover - a bug here must still not leak a traceback
        raise ModelFormatError(
            f"malformed TFLite file: the checker could not read it ({type(exc).__name__}: {exc})"
        ) from exc
