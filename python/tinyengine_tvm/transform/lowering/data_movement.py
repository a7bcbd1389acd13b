"""Data movement family on int8 values (and int16 where TFLM moves int16: views,
PAD/PADV2, TRANSPOSE, strided slices, SPLIT/SPLIT_V/UNPACK, PACK and CONCATENATION
of one quantization): views (reshape/squeeze/expand_dims/
flatten stay Relax reshapes), PAD/PADV2, MIRROR_PAD, TRANSPOSE (and the importer's
SPACE_TO_DEPTH/DEPTH_TO_SPACE), RESIZE_NEAREST_NEIGHBOR, strided slices
(STRIDED_SLICE, SLICE, and the parts of SPLIT, SPLIT_V and UNPACK), GATHER,
and CONCATENATION (inputs quantized unlike the output are requantized first;
PACK concatenates int8 values of one quantization)."""
from __future__ import annotations

import numpy as np
import tvm
from tvm import relax
from tvm.relax.dpl import is_op, wildcard

from ...quantization.fixed_point import quantize_multiplier
from ..kernel_call import make_kernel_call
from ..relax_utils import VIEW_OPS, dtype_of, op_name, shape_of
from .base import ALL_INPUTS, INT8_MAX, INT8_MIN, Lowering, activation_kernel, op_pattern

_BOTH = ("int8", "int16")


def _needs_lowered_input(what):
    def check(ctx, var, value, q):
        if ctx.int8_value(value.args[0]) is None:
            return f"{what} of a value that could not be lowered"
        return None
    return check


# ----------------------------------------------------------------- views
def _lower_view(ctx, var, value, q):
    return relax.op.reshape(ctx.int8_value(value.args[0]), shape_of(var))


# ------------------------------------------------------------------- pad
def _check_pad(ctx, var, value, q):
    mode = str(getattr(value.attrs, "pad_mode", "constant"))
    return _needs_lowered_input("pad")(ctx, var, value, q) or (
        "PAD is supported up to 4-D" if len(shape_of(value.args[0])) > 4 else None) or (
        f"{mode} padding is not supported (constant padding is)" if mode != "constant" else None)


def _lower_pad(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    widths = [int(w) for w in value.attrs.pad_width]
    lead = 4 - len(in_shape)
    before = [0] * lead + widths[0::2]
    after = [0] * lead + widths[1::2]
    pad_value = ctx.const(value.args[1]) if len(value.args) > 1 else None
    if pad_value is None:
        pad_value = float(value.attrs.pad_value) if hasattr(value.attrs, "pad_value") else 0.0
    pad_value = int(np.ravel(pad_value)[0]) if isinstance(pad_value, np.ndarray) else int(pad_value)
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_pad", dtype), [ctx.int8_value(value.args[0])], dict(
        input_dims=[1] * lead + in_shape, before=before, after=after, pad_value=pad_value), shape_of(var), dtype)


def _is_reflect_pad(ctx, value):
    return str(getattr(getattr(value, "attrs", None), "pad_mode", "")) in ("reflect", "symmetric")


def _check_mirror_pad(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    widths = [int(w) for w in value.attrs.pad_width]
    if ctx.int8_value(value.args[0]) is None:
        return "mirror pad of a value that could not be lowered"
    if len(in_shape) > 4:
        return "MIRROR_PAD is supported up to 4-D"
    symmetric = str(value.attrs.pad_mode) == "symmetric"
    if any(w > d - (0 if symmetric else 1) for d, w in zip([d for d in in_shape for _ in (0, 1)], widths)):
        return "SYMMETRIC padding wider than the input" if symmetric else "REFLECT padding wider than the input minus one"
    return None


def _lower_mirror_pad(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    widths = [int(w) for w in value.attrs.pad_width]
    lead = 4 - len(in_shape)
    return make_kernel_call("te_mirror_pad_s8", [ctx.int8_value(value.args[0])], dict(
        input_dims=[1] * lead + in_shape, before=[0] * lead + widths[0::2], after=[0] * lead + widths[1::2],
        offset=0 if str(value.attrs.pad_mode) == "symmetric" else 1), shape_of(var), "int8")


# ------------------------------------------------------------- transpose
def _check_transpose(ctx, var, value, q):
    return _needs_lowered_input("transpose")(ctx, var, value, q) or (
        "TRANSPOSE is supported up to 6-D" if len(shape_of(value.args[0])) > 6 else None)


def _lower_transpose(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    rank = len(in_shape)
    perm = [int(a) for a in value.attrs.axes] if value.attrs.axes is not None else list(range(rank))[::-1]
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_transpose", dtype), [ctx.int8_value(value.args[0])], dict(
        rank=rank, input_dims=in_shape + [1] * (6 - rank), perm=perm + [0] * (6 - rank)), shape_of(var), dtype)


# ---------------------------------------------------------------- resize
def _check_resize(ctx, var, value, q):
    a = value.attrs
    if ctx.int8_value(value.args[0]) is None or str(a.method) != "nearest_neighbor" or str(a.layout) != "NHWC":
        return "only NHWC nearest-neighbour resize is supported on int8/int16"
    mode = str(a.coordinate_transformation_mode)
    if mode not in ("asymmetric", "align_corners", "half_pixel"):
        return f"resize coordinate mode {mode} is not supported"
    return None


def _lower_resize(ctx, var, value, q):
    mode = str(value.attrs.coordinate_transformation_mode)
    i, o = shape_of(value.args[0]), shape_of(var)
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_resize_nearest", dtype), [ctx.int8_value(value.args[0])], dict(
        batch=i[0], input_h=i[1], input_w=i[2], channels=i[3], output_h=o[1], output_w=o[2],
        align_corners=int(mode == "align_corners"), half_pixel_centers=int(mode == "half_pixel"),
        window_y0=0, window_x0=0, window_h=o[1], window_w=o[2], block_y0=0, block_x0=0, block_h=i[1],
        block_w=i[2]),
        shape_of(var), dtype)


def _is_bilinear(ctx, value):
    return str(getattr(getattr(value, "attrs", None), "method", "")) == "linear"


def _check_resize_bilinear(ctx, var, value, q):
    a = value.attrs
    x = ctx.activation_input(value.args[0])
    if str(a.layout) != "NHWC":
        return "only NHWC bilinear resize is supported"
    if x is not None and (np.float32(x.scale), x.zero_point) != (np.float32(q.s_out), q.zp_out):
        return "RESIZE_BILINEAR needs one quantization for input and output (TFLM interpolates raw values)"
    return None


def _lower_resize_bilinear(ctx, var, value, q):
    mode = str(value.attrs.coordinate_transformation_mode)
    x = ctx.activation_input(value.args[0])
    if x is None or x.dtype != "int8" or mode not in ("asymmetric", "align_corners", "half_pixel"):
        return None
    i, o = shape_of(value.args[0]), shape_of(var)
    return make_kernel_call("te_resize_bilinear_s8", [x.expr], dict(
        batch=i[0], input_h=i[1], input_w=i[2], channels=i[3], output_h=o[1], output_w=o[2],
        align_corners=int(mode == "align_corners"), half_pixel_centers=int(mode == "half_pixel"),
        window_y0=0, window_x0=0, window_h=o[1], window_w=o[2], block_y0=0, block_x0=0, block_h=i[1],
        block_w=i[2]), o, "int8")


# -------------------------------------------------------- strided slices
def _slice_call(src, in_shape, begin, strides, out_shape, dtype):
    rank = len(in_shape)
    return make_kernel_call(activation_kernel("te_strided_slice", dtype), [src], dict(
        rank=rank, input_dims=in_shape + [1] * (6 - rank), begin=begin + [0] * (6 - rank),
        strides=strides + [1] * (6 - rank), output_dims=out_shape + [1] * (6 - rank)), out_shape, dtype)


def _check_rank6(what):
    def check(ctx, var, value, q):
        src = value.args[0] if not isinstance(value, relax.TupleGetItem) else ctx.resolve(value.tuple_value).args[0]
        if ctx.int8_value(src) is None:
            return f"{what} of a value that could not be lowered"
        return f"{what} is supported up to 6-D" if len(shape_of(src)) > 6 else None
    return check


def _lower_strided_slice(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    begin, strides = [0] * len(in_shape), [1] * len(in_shape)
    fields = [[int(f.value) for f in arg.fields] for arg in value.args[1:5]]
    axes, starts, steps = fields[0], fields[1], fields[3] if len(fields) > 3 else [1] * len(fields[0])
    for axis, b, step in zip(axes, starts, steps):
        dim = in_shape[axis]
        b = b + dim if b < 0 else b
        # numpy's clamping of the start: [0, dim] forwards, [-1, dim - 1] backwards.
        begin[axis] = min(max(b, 0), dim) if step > 0 else min(max(b, -1), dim - 1)
        strides[axis] = step
    return _slice_call(ctx.int8_value(value.args[0]), in_shape, begin, strides, shape_of(var), dtype_of(var))


def _is_split_part(ctx, value):
    return isinstance(value, relax.TupleGetItem) and op_name(ctx.resolve(value.tuple_value)) == "relax.split"


def _lower_split_part(ctx, var, item, q):
    split = ctx.resolve(item.tuple_value)
    in_shape = shape_of(split.args[0])
    axis = int(split.attrs.axis) % len(in_shape)
    sections = split.attrs.indices_or_sections
    if isinstance(sections, tvm.ir.Array):  # split points
        cuts = [0] + [int(i) for i in sections]
    else:  # a number of equal parts
        cuts = [in_shape[axis] * k // int(sections) for k in range(int(sections))]
    begin = [0] * len(in_shape)
    begin[axis] = cuts[item.index]
    return _slice_call(ctx.int8_value(split.args[0]), in_shape, begin, [1] * len(in_shape), shape_of(var),
                       dtype_of(var))


# ---------------------------------------------------------------- gather
def _check_gather(ctx, var, value, q):
    if ctx.int8_value(value.args[0]) is None:
        return "gather of a value that could not be lowered"
    indices = ctx.const(value.args[1])
    if indices is None:
        return "GATHER with indices computed at run time is not supported (constant indices are)"
    axis_size = shape_of(value.args[0])[int(value.attrs.axis) % len(shape_of(value.args[0]))]
    bad = [int(i) for i in np.ravel(indices) if not 0 <= int(i) < axis_size]
    if bad:
        return f"GATHER indices {bad[:4]} are outside [0, {axis_size})"
    return None


def _lower_gather(ctx, var, value, q):
    in_shape = shape_of(value.args[0])
    axis = int(value.attrs.axis) % len(in_shape)
    indices = np.ravel(ctx.const(value.args[1])).astype(np.int32)
    return make_kernel_call("te_gather_s8", [ctx.int8_value(value.args[0]), relax.const(indices)], dict(
        outer=int(np.prod(in_shape[:axis])), axis_size=in_shape[axis], inner=int(np.prod(in_shape[axis + 1:])),
        count=int(indices.size)), shape_of(var), "int8")


# ---------------------------------------------------------------- concat
def _check_concat(ctx, var, cat, q):
    if q.dtype != "int16":
        return None
    qs = {(float(np.float32(p.scale)), p.zero_point) for p in map(ctx.activation_input, cat.args[0].fields)
          if p is not None} | {(float(np.float32(q.s_out)), q.zp_out)}
    if len(qs) > 1:
        return ("int16 inputs quantized unlike the output; TFLM's int16 CONCATENATION copies the raw values, "
                "so they must share one scale")
    return None


def _lower_concat(ctx, var, cat, q):
    fields = list(cat.args[0].fields)
    parts = [ctx.activation_input(f) for f in fields]
    if any(p is None or p.dtype != q.dtype for p in parts) or q.act != (INT8_MIN, INT8_MAX) and q.dtype == "int8":
        return None
    shape = shape_of(var)
    axis = int(cat.attrs.axis) % len(shape)
    srcs = []
    for p, f in zip(parts, fields):
        if p.scale == q.s_out and p.zero_point == q.zp_out or q.dtype == "int16":
            srcs.append(p.expr)
            continue
        # Inputs quantized differently from the output are requantized first.
        mult, shift = quantize_multiplier(np.float64(p.scale) / np.float64(q.s_out))
        srcs.append(make_kernel_call("te_requantize_s8", [p.expr], dict(
            size=int(np.prod(shape_of(f))), input_offset=-p.zero_point, output_offset=q.zp_out,
            multiplier=mult, shift=shift, act_min=INT8_MIN, act_max=INT8_MAX), shape_of(f), "int8"))
    attrs = dict(outer=int(np.prod(shape[:axis])), inner=int(np.prod(shape[axis + 1:])),
                 axis_sizes=[shape_of(f)[axis] for f in fields])
    return make_kernel_call(activation_kernel("te_concat", q.dtype), srcs, attrs, shape, q.dtype)


def _check_int8_concat(ctx, var, cat, q):
    if any(ctx.int8_value(f) is None for f in cat.args[0].fields):
        return "pack of a value that could not be lowered"
    return None


def _lower_int8_concat(ctx, var, cat, q):
    """PACK as the importer writes it: expand_dims views concatenated on int8
    (TFLM requires one quantization for inputs and output: a plain copy)."""
    fields = list(cat.args[0].fields)
    shape = shape_of(var)
    axis = int(cat.attrs.axis) % len(shape)
    attrs = dict(outer=int(np.prod(shape[:axis])), inner=int(np.prod(shape[axis + 1:])),
                 axis_sizes=[shape_of(f)[axis] for f in fields])
    dtype = dtype_of(var)
    return make_kernel_call(activation_kernel("te_concat", dtype), [ctx.int8_value(f) for f in fields], attrs, shape,
                            dtype)


# ---------------------------------------------- broadcast_to, fill, zeros
def _lower_broadcast_to(ctx, var, value, q):
    src = ctx.int8_value(value.args[0])
    out = shape_of(var)
    if src is None or len(out) > 6:
        return None
    in_dims = [1] * (len(out) - len(shape_of(value.args[0]))) + shape_of(value.args[0])
    steps = [0 if d == 1 and o != 1 else 1 for d, o in zip(in_dims, out)]
    return _slice_call(src, in_dims, [0] * len(out), steps, out, dtype_of(var))


def _lower_fill(ctx, var, value, q):
    """FILL (``full`` of a constant) or ZEROS_LIKE (raw 0, as TFLM writes it)."""
    fill = 0 if op_name(value) == "relax.zeros_like" else ctx.const(value.args[1])
    if fill is None:
        return None
    return make_kernel_call(activation_kernel("te_fill", dtype_of(var)), [], dict(
        size=int(np.prod(shape_of(var))), value=int(np.ravel(fill)[0])), shape_of(var), dtype_of(var))


# ------------------------------------------------------------------ cast
_CAST_TYPES = ("int8", "int16", "int32")


def _is_integer_cast(ctx, value):
    """astype between integer types of a value the lowering holds (not avg_pool's
    widening, which its own record reads, nor ARG_MAX's output type)."""
    src = ctx.resolve(value.args[0]) if op_name(value) == "relax.astype" else None
    return (src is not None and dtype_of(value.args[0]) in _BOTH and dtype_of(value) in _CAST_TYPES
            and op_name(src) not in ("relax.argmax", "relax.argmin", "relax.nn.avg_pool2d"))


def _lower_cast(ctx, var, value, q):
    src = ctx.int8_value(value.args[0])
    if src is None:
        return None
    bits = {"int8": 8, "int16": 16, "int32": 32}
    kernel = f"te_cast_s{bits[dtype_of(value.args[0])]}_s{bits[dtype_of(var)]}"
    return make_kernel_call(kernel, [src], dict(size=int(np.prod(shape_of(var))), scale=1.0, zero_point=0),
                            shape_of(var), dtype_of(var))


# A view is any of VIEW_OPS: an OrPattern of their calls.
_VIEW_PATTERN = op_pattern(VIEW_OPS[0])
for _name in VIEW_OPS[1:]:
    _VIEW_PATTERN = _VIEW_PATTERN | op_pattern(_name)

LOWERINGS = [
    Lowering("RESHAPE", "int8", _lower_view, pattern=_VIEW_PATTERN, check=_needs_lowered_input("reshape"),
             tflite={"RESHAPE": (0,), "SQUEEZE": (0,), "EXPAND_DIMS": (0,)}, dtypes=_BOTH),
    # MIRROR_PAD REFLECT and SYMMETRIC (the latter read by frontend/tflite_fixups).
    Lowering("MIRROR_PAD", "int8", _lower_mirror_pad, pattern=op_pattern("relax.nn.pad"), matcher=_is_reflect_pad,
             check=_check_mirror_pad, tflite={"MIRROR_PAD": (0,)}),
    Lowering("PAD", "int8", _lower_pad, pattern=op_pattern("relax.nn.pad"), check=_check_pad,
             tflite={"PAD": (0,), "PADV2": (0,)}, dtypes=_BOTH),
    # The importer writes SPACE_TO_DEPTH/DEPTH_TO_SPACE as reshape, 6-D transpose, reshape.
    Lowering("TRANSPOSE", "int8", _lower_transpose, pattern=op_pattern("relax.permute_dims"), check=_check_transpose,
             tflite={"TRANSPOSE": (0,), "SPACE_TO_DEPTH": (0,), "DEPTH_TO_SPACE": (0,), "SPACE_TO_BATCH_ND": (0,),
                     "BATCH_TO_SPACE_ND": (0,)}, dtypes=_BOTH,
             op_dtypes={op: ("int8",) for op in ("SPACE_TO_DEPTH", "DEPTH_TO_SPACE", "SPACE_TO_BATCH_ND",
                                                  "BATCH_TO_SPACE_ND")}),
    Lowering("BROADCAST_TO", "int8", _lower_broadcast_to, pattern=op_pattern("relax.broadcast_to"),
             check=_needs_lowered_input("broadcast_to"), tflite={"BROADCAST_TO": (0,)}, dtypes=_BOTH),
    Lowering("FILL", "int8", _lower_fill, pattern=op_pattern("relax.full") | op_pattern("relax.zeros_like"),
             fusable=False, tflite={"FILL": (1,), "ZEROS_LIKE": (0,)}, dtypes=_BOTH,
             op_dtypes={"FILL": ("int8",), "ZEROS_LIKE": ("int8",)}),
    Lowering("RESIZE_NEAREST_NEIGHBOR", "int8", _lower_resize, pattern=op_pattern("relax.image.resize2d"),
             check=_check_resize, tflite={"RESIZE_NEAREST_NEIGHBOR": (0,)}, dtypes=_BOTH),
    Lowering("RESIZE_BILINEAR", "quantize", _lower_resize_bilinear, pattern=op_pattern("relax.image.resize2d"),
             matcher=_is_bilinear, check=_check_resize_bilinear, fusable=False, tflite={"RESIZE_BILINEAR": (0,)}),
    Lowering("STRIDED_SLICE", "int8", _lower_strided_slice, pattern=op_pattern("relax.strided_slice"),
             check=_check_rank6("strided slice"), tflite={"STRIDED_SLICE": (0,), "SLICE": (0,)}, dtypes=_BOTH),
    Lowering("SPLIT", "int8", _lower_split_part, matcher=_is_split_part, check=_check_rank6("split"),
             tflite={"SPLIT": (1,), "SPLIT_V": (0,), "UNPACK": (0,)}, dtypes=_BOTH),
    Lowering("GATHER", "int8", _lower_gather, pattern=op_pattern("relax.take"), check=_check_gather,
             tflite={"GATHER": (0,)}),
    Lowering("CAST", "int8", _lower_cast, pattern=op_pattern("relax.astype"), matcher=_is_integer_cast, fusable=False,
             tflite={"CAST": (0,)}, outputs=_CAST_TYPES, dtypes=_BOTH),
    Lowering("PACK", "int8", _lower_int8_concat, pattern=is_op("relax.concat")(wildcard()), check=_check_int8_concat,
             tflite={"PACK": ALL_INPUTS}, dtypes=_BOTH),
    Lowering("CONCATENATION", "quantize", _lower_concat, pattern=is_op("relax.concat")(wildcard()),
             check=_check_concat, fusable=False, tflite={"CONCATENATION": ALL_INPUTS}, dtypes=_BOTH),
]
