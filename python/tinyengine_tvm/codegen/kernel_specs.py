"""What the C writer needs to know about each kernel of src/.

The C ABI itself is defined in ``src/include/tinyengine_kernels.h``; this
module is its Python mirror, which ``tests/test_kernel_abi.py`` checks against
the header (struct fields, prototypes) and against the kernels' own
``*_get_buffer_size()`` functions (scratch sizes):

* :data:`STRUCTS`: every parameter struct, its fields in order with C types;
* :data:`FUNCTIONS`: every C function, its parameters with C types;
* :data:`KERNELS`: one entry per kernel symbol a KernelGraph step names: the
  C function it calls and how, the source file that defines it, the
  TFLite-style operator type (for reports), its multiply-accumulates and its
  scratch bytes (the same formula as the C ``*_get_buffer_size()``).

Every kernel takes one parameter struct and then tensors (then scratch).
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional, Tuple

#: A C declaration: (C type, name).  Array fields are typed "int32_t[4]".
CDecl = Tuple[str, str]


def _i32(*names: str) -> List[CDecl]:
    return [("int32_t", n) for n in names]


def _i32x(n: int, *names: str) -> List[CDecl]:
    return [(f"int32_t[{n}]", f) for f in names]


_CONV_FIELDS = [
    "batch", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w",
    "pad_top", "pad_left", "depth_multiplier", "input_offset", "output_offset",
    "act_min", "act_max",
]

#: Parameter structs of tinyengine_kernels.h: fields in declaration order.
STRUCTS: Dict[str, List[CDecl]] = {
    "te_conv_params": _i32(*_CONV_FIELDS),
    "te_fc_params": _i32("batch", "input_depth", "output_depth", "input_offset", "filter_offset",
                         "output_offset", "act_min", "act_max"),
    "te_elementwise_params": _i32x(4, "dims", "input1_strides", "input2_strides") + _i32(
        "input1_offset", "input2_offset", "output_offset", "left_shift", "input1_multiplier", "input1_shift",
        "input2_multiplier", "input2_shift", "output_multiplier", "output_shift", "act_min", "act_max"),
    "te_pool_params": _i32("batch", "input_h", "input_w", "channels", "output_h", "output_w", "filter_h",
                           "filter_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max"),
    "te_mean_params": _i32("outer", "reduced", "inner", "input_offset", "output_offset", "multiplier", "shift"),
    "te_pad_params": _i32x(4, "input_dims", "before", "after") + _i32("pad_value"),
    "te_transpose_params": _i32("rank") + _i32x(6, "input_dims", "perm"),
    "te_concat_params": _i32("n_inputs", "outer", "inner") + [("const int32_t*", "axis_sizes")],
    "te_copy_2d_params": _i32("rows", "row_bytes", "src_stride", "dst_stride"),
    "te_resize_params": _i32("batch", "input_h", "input_w", "channels", "output_h", "output_w", "align_corners",
                             "half_pixel_centers"),
    "te_requantize_params": _i32("size", "input_offset", "output_offset", "multiplier", "shift", "act_min",
                                 "act_max"),
    "te_quant_params": [("int32_t", "size"), ("float", "scale"), ("int32_t", "zero_point")],
    "te_softmax_params": _i32("rows", "depth", "input_beta_multiplier", "input_beta_left_shift", "diff_min"),
    "te_logistic_params": _i32("size", "input_zero_point", "input_range_radius", "input_multiplier",
                               "input_left_shift"),
    "te_hard_swish_params": _i32("size", "input_zero_point", "output_zero_point",
                                 "reluish_multiplier_fixedpoint_int16", "reluish_multiplier_exponent",
                                 "output_multiplier_fixedpoint_int16", "output_multiplier_exponent"),
    "te_arm_add_params": _i32x(4, "dims", "input1_strides", "input2_strides") + _i32(
        "output_m2", "output_rounding", "output_shift", "output_offset", "act_min", "act_max"),
}


@dataclasses.dataclass(frozen=True)
class CFunction:
    """A function of tinyengine_kernels.h."""

    params: List[CDecl]
    returns: str = "void"


_I8 = "const int8_t*"
_O8 = "int8_t*"
_CONV = "const te_conv_params*"
_PORTABLE_CONV_TAIL = [(_I8, "filter"), ("const int32_t*", "bias"), ("const int32_t*", "multiplier"),
                       ("const int32_t*", "shift")]


def _fn(struct: str, *tensors: CDecl) -> CFunction:
    return CFunction([(f"const {struct}*", "p"), *tensors])


def _size_fn(struct: str) -> CFunction:
    return CFunction([(f"const {struct}*", "p")], "int32_t")


_ARM_DW_SHAPES = ["", "_3x3s1", "_3x3s2", "_5x5s1", "_5x5s2", "_7x7s1", "_7x7s2"]

#: Every function of tinyengine_kernels.h with its parameters.
FUNCTIONS: Dict[str, CFunction] = {
    "te_conv2d_s8": _fn("te_conv_params", (_I8, "input"), *_PORTABLE_CONV_TAIL, (_O8, "output")),
    "te_depthwise_conv2d_s8": _fn("te_conv_params", (_I8, "input"), *_PORTABLE_CONV_TAIL, (_O8, "output")),
    "te_depthwise_conv2d_inplace_s8": _fn("te_conv_params", ("int8_t*", "buffer"), *_PORTABLE_CONV_TAIL,
                                          ("void*", "scratch")),
    "te_depthwise_conv2d_inplace_s8_get_buffer_size": _size_fn("te_conv_params"),
    "te_fully_connected_s8": _fn("te_fc_params", (_I8, "input"), *_PORTABLE_CONV_TAIL, (_O8, "output")),
    "te_add_s8": _fn("te_elementwise_params", (_I8, "input1"), (_I8, "input2"), (_O8, "output")),
    "te_mul_s8": _fn("te_elementwise_params", (_I8, "input1"), (_I8, "input2"), (_O8, "output")),
    "te_avg_pool_s8": _fn("te_pool_params", (_I8, "input"), (_O8, "output")),
    "te_max_pool_s8": _fn("te_pool_params", (_I8, "input"), (_O8, "output")),
    "te_mean_s8": _fn("te_mean_params", (_I8, "input"), (_O8, "output")),
    "te_pad_s8": _fn("te_pad_params", (_I8, "input"), (_O8, "output")),
    "te_transpose_s8": _fn("te_transpose_params", (_I8, "input"), (_O8, "output")),
    "te_concat_s8": _fn("te_concat_params", ("const int8_t* const*", "inputs"), (_O8, "output")),
    "te_copy_2d_s8": _fn("te_copy_2d_params", (_I8, "src"), (_O8, "dst")),
    "te_resize_nearest_s8": _fn("te_resize_params", (_I8, "input"), (_O8, "output")),
    "te_requantize_s8": _fn("te_requantize_params", (_I8, "input"), (_O8, "output")),
    "te_quantize_f32_s8": _fn("te_quant_params", ("const float*", "input"), (_O8, "output")),
    "te_dequantize_s8_f32": _fn("te_quant_params", (_I8, "input"), ("float*", "output")),
    "te_softmax_s8": _fn("te_softmax_params", (_I8, "input"), (_O8, "output")),
    "te_logistic_s8": _fn("te_logistic_params", (_I8, "input"), (_O8, "output")),
    "te_hard_swish_s8": _fn("te_hard_swish_params", (_I8, "input"), (_O8, "output")),
    # Cortex-M optimized variants
    "te_arm_conv2d_s8": _fn("te_conv_params", (_I8, "input"), (_I8, "packed"), (_O8, "output"),
                            ("void*", "scratch")),
    "te_arm_conv2d_s8_get_buffer_size": _size_fn("te_conv_params"),
    "te_arm_conv2d_w16_s8": _fn("te_conv_params", (_I8, "input"), (_I8, "packed"), (_O8, "output"),
                                ("void*", "scratch")),
    "te_arm_conv2d_w16_s8_get_buffer_size": _size_fn("te_conv_params"),
    **{name: f for shape in _ARM_DW_SHAPES for name, f in (
        (f"te_arm_depthwise_conv2d{shape}_s8", _fn("te_conv_params", (_I8, "input"), (_I8, "packed"),
                                                    (_O8, "output"), ("void*", "scratch"))),
        (f"te_arm_depthwise_conv2d{shape}_s8_get_buffer_size", _size_fn("te_conv_params")))},
    "te_arm_fully_connected_s8": _fn("te_fc_params", (_I8, "input"), (_I8, "packed"), (_O8, "output")),
    "te_arm_add_s8": _fn("te_arm_add_params", (_I8, "input1"), (_I8, "input2"), ("const int32_t*", "table1"),
                         ("const int32_t*", "table2"), (_O8, "output")),
}


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """How to call one kernel.

    ``args`` is the C argument list: "p" is the address of the parameter
    struct ``struct`` (every kernel takes one), "inN" the N-th tensor
    argument, "inputs" the array of all tensor inputs, "out" the output,
    "scratch" the step's arena scratch, "inout" input 0 as a writable buffer
    (in-place kernels).  Pointer arguments honour the byte offsets in the
    attributes ``_in_offsets`` (per tensor input) and ``_inout_offset``.

    The struct's fields are read from the step attributes of the same name,
    or of the name ``field_attrs`` maps them to; ``n_inputs`` defaults to the
    number of tensor inputs.
    """

    op_type: str
    source: str
    args: List[str]
    struct: Optional[str] = None
    macs: Callable[[Dict], int] = lambda a: 0
    scratch: Callable[[Dict], int] = lambda a: 0  # bytes of arena scratch per call (= C *_get_buffer_size)
    inplace: bool = False  # the output is written over input 0 (same arena bytes)
    function: Optional[str] = None  # C function when it differs from the key; "" for no call
    field_attrs: Dict[str, str] = dataclasses.field(default_factory=dict)

    @property
    def fields(self) -> List[str]:
        """Names of the struct's fields, in declaration order."""
        return [name for _, name in STRUCTS[self.struct]] if self.struct else []


def c_function(kernel: str) -> str:
    """The C function ``kernel`` calls ("" for none)."""
    spec = KERNELS[kernel]
    return kernel if spec.function is None else spec.function


def buffer_size_function(kernel: str) -> Optional[str]:
    """The C ``*_get_buffer_size()`` of ``kernel``'s function, or None when it takes no scratch."""
    fn = c_function(kernel)
    name = f"{fn}_get_buffer_size"
    return name if fn and name in FUNCTIONS else None


def _conv_macs(a):
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"] * a["input_c"]


def _dw_macs(a):
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"]


def _fc_macs(a):
    return a["batch"] * a["input_depth"] * a["output_depth"]


_P5 = ["p", "in0", "in1", "in2", "in3", "in4", "out"]
_UNARY = ["p", "in0", "out"]

KERNELS: Dict[str, KernelSpec] = {
    "te_conv2d_s8": KernelSpec("CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params", _conv_macs),
    "te_depthwise_conv2d_s8": KernelSpec("DEPTHWISE_CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params", _dw_macs),
    "te_depthwise_conv2d_inplace_s8": KernelSpec(
        "DEPTHWISE_CONV_2D", "conv2d_s8.cc", ["p", "inout", "in1", "in2", "in3", "in4", "scratch"], "te_conv_params",
        _dw_macs, scratch=lambda a: a["input_h"] * a["input_w"], inplace=True),
    "te_fully_connected_s8": KernelSpec("FULLY_CONNECTED", "fully_connected_s8.cc", _P5, "te_fc_params", _fc_macs),
    "te_add_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params"),
    # ADD/MUL writing over input 0, which dies there (transform.inplace_elementwise).
    "te_add_inplace_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    inplace=True, function="te_add_s8"),
    "te_mul_inplace_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    inplace=True, function="te_mul_s8"),
    "te_mul_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params"),
    "te_avg_pool_s8": KernelSpec("AVERAGE_POOL_2D", "pooling_s8.cc", _UNARY, "te_pool_params"),
    "te_max_pool_s8": KernelSpec("MAX_POOL_2D", "pooling_s8.cc", _UNARY, "te_pool_params"),
    "te_mean_s8": KernelSpec("MEAN", "mean_s8.cc", _UNARY, "te_mean_params"),
    "te_pad_s8": KernelSpec("PAD", "data_movement_s8.cc", _UNARY, "te_pad_params"),
    "te_transpose_s8": KernelSpec("TRANSPOSE", "data_movement_s8.cc", _UNARY, "te_transpose_params"),
    "te_resize_nearest_s8": KernelSpec("RESIZE_NEAREST_NEIGHBOR", "resize_nearest_s8.cc", _UNARY, "te_resize_params"),
    "te_requantize_s8": KernelSpec("QUANTIZE", "quantize_s8.cc", _UNARY, "te_requantize_params"),
    "te_quantize_f32_s8": KernelSpec("QUANTIZE", "quantize_s8.cc", _UNARY, "te_quant_params"),
    "te_dequantize_s8_f32": KernelSpec("DEQUANTIZE", "quantize_s8.cc", _UNARY, "te_quant_params"),
    "te_softmax_s8": KernelSpec("SOFTMAX", "softmax_s8.cc", _UNARY, "te_softmax_params"),
    "te_logistic_s8": KernelSpec("LOGISTIC", "logistic_s8.cc", _UNARY, "te_logistic_params"),
    "te_hard_swish_s8": KernelSpec("HARD_SWISH", "hard_swish_s8.cc", _UNARY, "te_hard_swish_params"),
    # Patch-based execution (transform.patch_inference): the stage output
    # buffer is declared once, patches are cut from the input and pasted in.
    "te_buffer": KernelSpec("BUFFER", "data_movement_s8.cc", [], function=""),
    "te_crop_s8": KernelSpec("CROP", "data_movement_s8.cc", ["p", "in0", "out"], "te_copy_2d_params",
                             function="te_copy_2d_s8", field_attrs={"dst_stride": "row_bytes"}),
    "te_paste_s8": KernelSpec("PASTE", "data_movement_s8.cc", ["p", "in1", "inout"], "te_copy_2d_params",
                              function="te_copy_2d_s8", inplace=True, field_attrs={"src_stride": "row_bytes"}),
    "te_concat_s8": KernelSpec("CONCATENATION", "data_movement_s8.cc", ["p", "inputs", "out"], "te_concat_params"),
}

COMMON_SOURCES = ["fixed_point.h"]


# --------------------------------------------------------------------------- Cortex-M optimized variants
# Chosen by codegen/kernel_selection.py when compiling for a core with DSP;
# their constants are the re-laid-out ones that module packs (layouts defined
# in tinyengine_kernels.h).  Sources under arm/ are copied flat into src/kernels/.
def _arm_conv_scratch(a):
    """te_arm_conv2d_s8_get_buffer_size(): four int16 im2col columns, a partial
    block of outputs, the int8 staging of a column (input_c % 4 != 0)."""
    from .kernel_selection import conv_k4
    k4 = conv_k4(a)
    stage = (k4 + a["kernel_w"] * a["input_c"] + 3) // 4 * 4 if a["input_c"] % 4 else 0
    return 8 * k4 + (4 * a["output_c"] + 3) // 4 * 4 + stage


def _arm_dw_scratch(a):
    """te_arm_depthwise_conv2d_s8_get_buffer_size()."""
    from .kernel_selection import dw_plane_bytes
    return dw_plane_bytes(a)


def _arm_depthwise_specs():
    specs = {}
    for shape in _ARM_DW_SHAPES:
        fn = f"te_arm_depthwise_conv2d{shape}_s8"
        specs[fn] = KernelSpec("DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                               "te_conv_params", _dw_macs, scratch=_arm_dw_scratch)
        # in place: the output is written over input 0 (te_depthwise_conv2d_inplace_s8's contract)
        specs[f"te_arm_depthwise_conv2d{shape}_inplace_s8"] = KernelSpec(
            "DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "inout", "in1", "inout", "scratch"],
            "te_conv_params", _dw_macs, scratch=_arm_dw_scratch, inplace=True, function=fn)
    return specs


KERNELS.update(_arm_depthwise_specs())
KERNELS.update({
    "te_arm_fully_connected_s8": KernelSpec(
        "FULLY_CONNECTED", "arm/arm_fully_connected_s8.cc", ["p", "in0", "in1", "out"], "te_fc_params", _fc_macs),
    "te_arm_add_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "out"],
                                "te_arm_add_params"),
    "te_arm_add_inplace_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "inout"],
                                        "te_arm_add_params", inplace=True, function="te_arm_add_s8"),
    "te_arm_conv2d_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                   "te_conv_params", _conv_macs, scratch=_arm_conv_scratch),
    "te_arm_conv2d_w16_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                       "te_conv_params", _conv_macs, scratch=_arm_conv_scratch),
})

#: Headers an optimized source includes besides tinyengine_kernels.h and COMMON_SOURCES.
SOURCE_HEADERS = {src: ["arm/arm_dsp.h"] for src in {k.source for k in KERNELS.values()} if src.startswith("arm/")}
