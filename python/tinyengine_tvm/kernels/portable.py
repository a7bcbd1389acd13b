"""The portable kernels of src/kernels/*.cc: the reference and the fallback on every target."""
from __future__ import annotations

from typing import Dict

from .spec import KernelSpec


def conv_macs(a: Dict) -> int:
    """Multiply-accumulates of a convolution (te_conv_params)."""
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"] * a["input_c"]


def depthwise_macs(a: Dict) -> int:
    """Multiply-accumulates of a depthwise convolution (te_conv_params)."""
    return a["batch"] * a["output_h"] * a["output_w"] * a["output_c"] * a["kernel_h"] * a["kernel_w"]


def fc_macs(a: Dict) -> int:
    """Multiply-accumulates of a fully connected layer (te_fc_params)."""
    return a["batch"] * a["input_depth"] * a["output_depth"]


def _inplace_dw_scratch(a: Dict) -> int:
    """te_depthwise_conv2d_inplace_s8_get_buffer_size(): one input channel plane."""
    return a["input_h"] * a["input_w"]


_P5 = ["p", "in0", "in1", "in2", "in3", "in4", "out"]
_UNARY = ["p", "in0", "out"]

#: Convolution family (conv2d_s8.cc, fully_connected_s8.cc).
CONVOLUTION: Dict[str, KernelSpec] = {
    "te_conv2d_s8": KernelSpec("CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params", conv_macs),
    "te_depthwise_conv2d_s8": KernelSpec("DEPTHWISE_CONV_2D", "conv2d_s8.cc", _P5, "te_conv_params",
                                         depthwise_macs),
    "te_depthwise_conv2d_inplace_s8": KernelSpec(
        "DEPTHWISE_CONV_2D", "conv2d_s8.cc", ["p", "inout", "in1", "in2", "in3", "in4", "scratch"], "te_conv_params",
        depthwise_macs, scratch=_inplace_dw_scratch, inplace=True),
    "te_fully_connected_s8": KernelSpec("FULLY_CONNECTED", "fully_connected_s8.cc", _P5, "te_fc_params", fc_macs),
}

#: Element-wise family (elementwise_s8.cc).  The in-place ADD/MUL write over
#: input 0, which dies there (transform.inplace_elementwise).
ELEMENTWISE: Dict[str, KernelSpec] = {
    "te_add_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params"),
    "te_add_inplace_s8": KernelSpec("ADD", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    inplace=True, function="te_add_s8"),
    "te_mul_inplace_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "inout"], "te_elementwise_params",
                                    inplace=True, function="te_mul_s8"),
    "te_mul_s8": KernelSpec("MUL", "elementwise_s8.cc", ["p", "in0", "in1", "out"], "te_elementwise_params"),
}

#: Pooling, reductions, activations and (re)quantization.
UNARY: Dict[str, KernelSpec] = {
    "te_avg_pool_s8": KernelSpec("AVERAGE_POOL_2D", "pooling_s8.cc", _UNARY, "te_pool_params"),
    "te_max_pool_s8": KernelSpec("MAX_POOL_2D", "pooling_s8.cc", _UNARY, "te_pool_params"),
    "te_mean_s8": KernelSpec("MEAN", "mean_s8.cc", _UNARY, "te_mean_params"),
    "te_resize_nearest_s8": KernelSpec("RESIZE_NEAREST_NEIGHBOR", "resize_nearest_s8.cc", _UNARY, "te_resize_params"),
    "te_requantize_s8": KernelSpec("QUANTIZE", "quantize_s8.cc", _UNARY, "te_requantize_params"),
    "te_quantize_f32_s8": KernelSpec("QUANTIZE", "quantize_s8.cc", _UNARY, "te_quant_params"),
    "te_dequantize_s8_f32": KernelSpec("DEQUANTIZE", "quantize_s8.cc", _UNARY, "te_quant_params"),
    "te_softmax_s8": KernelSpec("SOFTMAX", "softmax_s8.cc", _UNARY, "te_softmax_params"),
    "te_logistic_s8": KernelSpec("LOGISTIC", "logistic_s8.cc", _UNARY, "te_logistic_params"),
    "te_hard_swish_s8": KernelSpec("HARD_SWISH", "hard_swish_s8.cc", _UNARY, "te_hard_swish_params"),
}

#: Data movement (data_movement_s8.cc).  te_buffer, te_crop_s8 and te_paste_s8 are
#: patch-based execution's (transform.patch_inference): the stage output buffer
#: is declared once, patches are cut from the input and pasted in.
DATA_MOVEMENT: Dict[str, KernelSpec] = {
    "te_pad_s8": KernelSpec("PAD", "data_movement_s8.cc", _UNARY, "te_pad_params"),
    "te_transpose_s8": KernelSpec("TRANSPOSE", "data_movement_s8.cc", _UNARY, "te_transpose_params"),
    "te_buffer": KernelSpec("BUFFER", "data_movement_s8.cc", [], function=""),
    "te_crop_s8": KernelSpec("CROP", "data_movement_s8.cc", ["p", "in0", "out"], "te_copy_2d_params",
                             function="te_copy_2d_s8", field_attrs={"dst_stride": "row_bytes"}),
    "te_paste_s8": KernelSpec("PASTE", "data_movement_s8.cc", ["p", "in1", "inout"], "te_copy_2d_params",
                              function="te_copy_2d_s8", inplace=True, partial_write=True,
                              field_attrs={"src_stride": "row_bytes"}),
    "te_concat_s8": KernelSpec("CONCATENATION", "data_movement_s8.cc", ["p", "inputs", "out"], "te_concat_params"),
}

PORTABLE: Dict[str, KernelSpec] = {**CONVOLUTION, **ELEMENTWISE, **UNARY, **DATA_MOVEMENT}
