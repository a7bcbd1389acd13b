"""What the C writer needs to know about each kernel of src/.

One entry per kernel symbol: the source file that defines it, the TFLite-style
operator type it implements (for reports), its parameter struct and fields (or
the scalar arguments it takes), and how to count its multiply-accumulates.
"""
from __future__ import annotations

import dataclasses
from typing import Callable, Dict, List, Optional

_CONV_FIELDS = [
    "batch", "input_h", "input_w", "input_c", "output_h", "output_w", "output_c",
    "kernel_h", "kernel_w", "stride_h", "stride_w", "dilation_h", "dilation_w",
    "pad_top", "pad_left", "depth_multiplier", "input_offset", "output_offset",
    "act_min", "act_max",
]
_ELEMENTWISE_FIELDS = [
    "dims", "input1_strides", "input2_strides", "input1_offset", "input2_offset",
    "output_offset", "left_shift", "input1_multiplier", "input1_shift",
    "input2_multiplier", "input2_shift", "output_multiplier", "output_shift",
    "act_min", "act_max",
]
_POOL_FIELDS = [
    "batch", "input_h", "input_w", "channels", "output_h", "output_w", "filter_h",
    "filter_w", "stride_h", "stride_w", "pad_top", "pad_left", "act_min", "act_max",
]


@dataclasses.dataclass(frozen=True)
class KernelSpec:
    """How to call one kernel.

    ``args`` is the C argument list: "p" is the address of the parameter
    struct, "inN" the N-th tensor argument, "out" the output, "scratch" the
    step's arena scratch, "inout" input 0 as a writable buffer (in-place
    kernels), any other word an attribute printed as a literal.  Pointer
    arguments honour the byte offsets in the attributes ``_in_offsets`` (per
    tensor input) and ``_inout_offset``.
    """

    op_type: str
    source: str
    args: List[str]
    struct: Optional[str] = None
    fields: List[str] = dataclasses.field(default_factory=list)
    macs: Callable[[Dict], int] = lambda a: 0
    scratch: Callable[[Dict], int] = lambda a: 0  # bytes of arena scratch per call
    inplace: bool = False  # the output is written over input 0 (same arena bytes)
    function: Optional[str] = None  # C function when it differs from the key; "" for no call


def _conv_macs(a):
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"] * a["input_c"]


def _dw_macs(a):
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"]


_P5 = ["p", "in0", "in1", "in2", "in3", "in4", "out"]

KERNELS: Dict[str, KernelSpec] = {
    "te_conv2d_s8": KernelSpec("CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params", _CONV_FIELDS, _conv_macs),
    "te_depthwise_conv2d_s8": KernelSpec("DEPTHWISE_CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params", _CONV_FIELDS, _dw_macs),
    "te_depthwise_conv2d_inplace_s8": KernelSpec(
        "DEPTHWISE_CONV_2D", "conv2d_s8.cc", ["p", "inout", "in1", "in2", "in3", "in4", "scratch"], "te_conv_params",
        _CONV_FIELDS, _dw_macs, scratch=lambda a: a["input_h"] * a["input_w"], inplace=True),
    "te_fully_connected_s8": KernelSpec(
        "FULLY_CONNECTED", "fully_connected_s8.cc", _P5, "te_fc_params",
        ["batch", "input_depth", "output_depth", "input_offset", "filter_offset", "output_offset", "act_min", "act_max"],
        lambda a: a["batch"] * a["input_depth"] * a["output_depth"]),
    "te_add_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params", _ELEMENTWISE_FIELDS),
    # ADD/MUL writing over input 0, which dies there (transform.inplace_elementwise).
    "te_add_inplace_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    _ELEMENTWISE_FIELDS, inplace=True, function="te_add_s8"),
    "te_mul_inplace_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    _ELEMENTWISE_FIELDS, inplace=True, function="te_mul_s8"),
    "te_mul_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params", _ELEMENTWISE_FIELDS),
    "te_avg_pool_s8": KernelSpec("AVERAGE_POOL_2D", "pooling_s8.cc", ["p", "in0", "out"], "te_pool_params", _POOL_FIELDS),
    "te_max_pool_s8": KernelSpec("MAX_POOL_2D", "pooling_s8.cc", ["p", "in0", "out"], "te_pool_params", _POOL_FIELDS),
    "te_mean_s8": KernelSpec("MEAN", "mean_s8.cc", ["p", "in0", "out"], "te_mean_params",
                             ["outer", "reduced", "inner", "input_offset", "output_offset", "multiplier", "shift"]),
    "te_pad_s8": KernelSpec("PAD", "data_movement_s8.cc", ["p", "in0", "out"], "te_pad_params",
                            ["input_dims", "before", "after", "pad_value"]),
    "te_transpose_s8": KernelSpec("TRANSPOSE", "data_movement_s8.cc", ["p", "in0", "out"], "te_transpose_params",
                                  ["rank", "input_dims", "perm"]),
    "te_resize_nearest_s8": KernelSpec("RESIZE_NEAREST_NEIGHBOR", "resize_nearest_s8.cc", ["p", "in0", "out"], "te_resize_params",
                                       ["batch", "input_h", "input_w", "channels", "output_h", "output_w", "align_corners", "half_pixel_centers"]),
    "te_requantize_s8": KernelSpec("QUANTIZE", "quantize_s8.cc",
                                   ["in0", "out", "size", "input_offset", "output_offset", "multiplier", "shift", "act_min", "act_max"]),
    "te_quantize_f32_s8": KernelSpec("QUANTIZE", "quantize_s8.cc", ["in0", "out", "size", "scale", "zero_point"]),
    "te_dequantize_s8_f32": KernelSpec("DEQUANTIZE", "quantize_s8.cc", ["in0", "out", "size", "scale", "zero_point"]),
    "te_softmax_s8": KernelSpec("SOFTMAX", "softmax_s8.cc",
                                ["in0", "out", "rows", "depth", "input_beta_multiplier", "input_beta_left_shift", "diff_min"]),
    "te_logistic_s8": KernelSpec("LOGISTIC", "logistic_s8.cc",
                                 ["in0", "out", "size", "input_zero_point", "input_range_radius", "input_multiplier", "input_left_shift"]),
    "te_hard_swish_s8": KernelSpec("HARD_SWISH", "hard_swish_s8.cc", ["p", "in0", "out", "size"], "te_hard_swish_params",
                                   ["input_zero_point", "output_zero_point", "reluish_multiplier_fixedpoint_int16",
                                    "reluish_multiplier_exponent", "output_multiplier_fixedpoint_int16", "output_multiplier_exponent"]),
    # Patch-based execution (transform.patch_inference): the stage output
    # buffer is declared once, patches are cut from the input and pasted in.
    "te_buffer": KernelSpec("BUFFER", "data_movement_s8.cc", [], function=""),
    "te_crop_s8": KernelSpec("CROP", "data_movement_s8.cc", ["in0", "src_stride", "out", "row_bytes", "rows", "row_bytes"],
                             function="te_copy_2d_s8"),
    "te_paste_s8": KernelSpec("PASTE", "data_movement_s8.cc", ["in1", "row_bytes", "inout", "dst_stride", "rows", "row_bytes"],
                              function="te_copy_2d_s8", inplace=True),
    "te_concat_s8": KernelSpec("CONCATENATION", "data_movement_s8.cc", ["inputs", "axis_sizes", "n_inputs", "outer", "inner", "out"]),
}

COMMON_SOURCES = ["fixed_point.h"]


# --------------------------------------------------------------------------- Cortex-M optimized variants
# Chosen by codegen/kernel_selection.py when compiling for a core with DSP;
# their constants are the re-laid-out ones that module packs (see
# src/kernels/arm/).  Sources under arm/ are copied flat into src/kernels/.
def _arm_conv_scratch(a):
    from .kernel_selection import conv_k4
    k4 = conv_k4(a)
    # four int16 im2col columns, a partial block of outputs, the int8 staging of a column
    stage = (k4 + a["kernel_w"] * a["input_c"] + 3) // 4 * 4 if a["input_c"] % 4 else 0
    return 8 * k4 + (4 * a["output_c"] + 3) // 4 * 4 + stage


def _arm_dw_scratch(a):
    from .kernel_selection import dw_plane_bytes
    return dw_plane_bytes(a)


def _arm_depthwise_specs():
    specs = {}
    for shape in ["", "_3x3s1", "_3x3s2", "_5x5s1", "_5x5s2", "_7x7s1", "_7x7s2"]:
        fn = f"te_arm_depthwise_conv2d{shape}_s8"
        specs[fn] = KernelSpec("DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                               "te_conv_params", _CONV_FIELDS, _dw_macs, scratch=_arm_dw_scratch)
        # in place: the output is written over input 0 (te_depthwise_conv2d_inplace_s8's contract)
        specs[f"te_arm_depthwise_conv2d{shape}_inplace_s8"] = KernelSpec(
            "DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "inout", "in1", "inout", "scratch"],
            "te_conv_params", _CONV_FIELDS, _dw_macs, scratch=_arm_dw_scratch, inplace=True, function=fn)
    return specs


_ARM_ADD_FIELDS = ["dims", "input1_strides", "input2_strides", "output_m2", "output_rounding", "output_shift",
                   "output_offset", "act_min", "act_max"]

KERNELS.update(_arm_depthwise_specs())
KERNELS.update({
    "te_arm_fully_connected_s8": KernelSpec(
        "FULLY_CONNECTED", "arm/arm_fully_connected_s8.cc", ["p", "in0", "in1", "out"], "te_fc_params",
        ["batch", "input_depth", "output_depth", "input_offset", "filter_offset", "output_offset", "act_min", "act_max"],
        lambda a: a["batch"] * a["input_depth"] * a["output_depth"]),
    "te_arm_add_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "out"],
                                "te_arm_add_params", _ARM_ADD_FIELDS),
    "te_arm_add_inplace_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "inout"],
                                        "te_arm_add_params", _ARM_ADD_FIELDS, inplace=True, function="te_arm_add_s8"),
    "te_arm_conv2d_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                   "te_conv_params", _CONV_FIELDS, _conv_macs, scratch=_arm_conv_scratch),
    "te_arm_conv2d_w16_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                       "te_conv_params", _CONV_FIELDS, _conv_macs, scratch=_arm_conv_scratch),
})

#: Headers an optimized source includes besides tinyengine_kernels.h and COMMON_SOURCES.
SOURCE_HEADERS = {src: ["arm/arm_dsp.h"] for src in {k.source for k in KERNELS.values()} if src.startswith("arm/")}
