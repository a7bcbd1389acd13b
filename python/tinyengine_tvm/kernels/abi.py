"""The C ABI of ``src/include/tinyengine_kernels.h``, mirrored in Python.

* :data:`STRUCTS`: every parameter struct, its fields in order with C types;
* :data:`FUNCTIONS`: every C function, its parameters with C types.

``tests/test_kernel_abi.py`` parses the header and checks both against it.
Every kernel takes one parameter struct and then tensors (then scratch).
"""
from __future__ import annotations

import dataclasses
from typing import Dict, List, Tuple

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
_PORTABLE_CONV_TAIL = [(_I8, "filter"), ("const int32_t*", "bias"), ("const int32_t*", "multiplier"),
                       ("const int32_t*", "shift")]


def _fn(struct: str, *tensors: CDecl) -> CFunction:
    return CFunction([(f"const {struct}*", "p"), *tensors])


def _size_fn(struct: str) -> CFunction:
    return CFunction([(f"const {struct}*", "p")], "int32_t")


#: Shape suffixes of the specialized Cortex-M depthwise entry points ("" is the generic one).
ARM_DW_SHAPES = ["", "_3x3s1", "_3x3s2", "_5x5s1", "_5x5s2", "_7x7s1", "_7x7s2"]

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
    **{name: f for shape in ARM_DW_SHAPES for name, f in (
        (f"te_arm_depthwise_conv2d{shape}_s8", _fn("te_conv_params", (_I8, "input"), (_I8, "packed"),
                                                    (_O8, "output"), ("void*", "scratch"))),
        (f"te_arm_depthwise_conv2d{shape}_s8_get_buffer_size", _size_fn("te_conv_params")))},
    "te_arm_fully_connected_s8": _fn("te_fc_params", (_I8, "input"), (_I8, "packed"), (_O8, "output")),
    "te_arm_add_s8": _fn("te_arm_add_params", (_I8, "input1"), (_I8, "input2"), ("const int32_t*", "table1"),
                         ("const int32_t*", "table2"), (_O8, "output")),
}
