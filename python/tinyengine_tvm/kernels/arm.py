"""The Cortex-M optimized kernels of src/kernels/arm/ and the layouts of their constants.

Chosen by codegen/kernel_selection.py when compiling for a core with DSP;
their constants are re-laid-out by :mod:`.arm_packing` (layouts defined in
tinyengine_kernels.h).  Sources under arm/ are copied flat into src/kernels/.
"""
from __future__ import annotations

from typing import Dict

import numpy as np

from .portable import TAGGED
from .spec import KernelSpec

#: Shape suffixes of the specialized Cortex-M depthwise entry points ("" is the generic one).
ARM_DW_SHAPES = ["", "_3x3s1", "_3x3s2", "_5x5s1", "_5x5s2", "_7x7s1", "_7x7s2"]

# The optimized kernels compute what the portable ones do: the same MACs.
conv_macs = TAGGED["te_conv2d_s8"].macs
conv_s16_macs = TAGGED["te_conv2d_s16"].macs
fc_s16_macs = TAGGED["te_fully_connected_s16"].macs
_lstm_s8 = TAGGED["te_lstm_s8"]
_lstm_s16 = TAGGED["te_lstm_s16"]
_svdf_s8 = TAGGED["te_svdf_s8"]
depthwise_macs = TAGGED["te_depthwise_conv2d_s8"].macs
fc_macs = TAGGED["te_fully_connected_s8"].macs

#: (kernel, stride) pairs with a specialized depthwise entry point.
DW_SPECIALIZED = {(3, 1), (3, 2), (5, 1), (5, 2), (7, 1), (7, 2)}

#: Filters of at most this many bytes once widened to int16 use te_arm_conv2d_w16_s8
#: (first layers, tiny pointwise layers): a few hundred bytes of flash for
#: one unpacking instruction less per four multiply-accumulates.
W16_MAX_BYTES = 4096

#: Headers every optimized source includes besides tinyengine_kernels.h.
ARM_HEADERS = ["arm/arm_dsp.h"]


def conv_k4(a: Dict) -> int:
    """k4, the length of a packed filter row of te_arm_conv2d_s8 (K rounded up to whole
    groups of 4), as tinyengine_kernels.h defines it at te_arm_conv2d_s8."""
    seg = a["kernel_w"] * a["input_c"]
    return a["kernel_h"] * (seg // 4 * 4) + (a["kernel_h"] * (seg % 4) + 3) // 4 * 4


def conv_k_order(a: Dict) -> np.ndarray:
    """For each packed K position, the OHWI-flattened filter index it holds (-1: zero).

    The "conv K order" defined in tinyengine_kernels.h at te_arm_conv2d_s8: a
    filter row (kernel_w * input_c = 4a + b values, contiguous bytes in the
    input when dilation_w is 1) gives its 4a leading values as whole groups;
    the b trailing values of all rows follow together (arm_conv_s8.cc's
    fill_block_small reads a column in this order).  Natural order when b == 0.
    """
    kh, seg = a["kernel_h"], a["kernel_w"] * a["input_c"]
    a4, b = seg // 4 * 4, seg % 4
    order = [ky * seg + i for ky in range(kh) for i in range(a4)]
    order += [ky * seg + a4 + j for ky in range(kh) for j in range(b)]
    return np.array(order + [-1] * (conv_k4(a) - len(order)), dtype=np.int64)


def dw_plane_bytes(a: Dict) -> int:
    """Scratch of the optimized depthwise kernels: one int16 plane of the padded
    input channel, then a line of outputs -- the formula of
    te_arm_depthwise_conv2d_s8_get_buffer_size() in tinyengine_kernels.h
    (tests/test_kernel_abi.py checks that the two agree)."""
    pw = (a["kernel_w"] + 1) // 2
    ow4 = (a["output_w"] + 3) // 4 * 4
    h = (a["output_h"] - 1) * a["stride_h"] + a["kernel_h"]
    w = ((ow4 - 1) * a["stride_w"] + 2 * pw + 2) // 2 * 2
    return 2 * h * w + ow4


def dw_specialized(a: Dict) -> bool:
    """Whether the depthwise shape ``a`` has a specialized entry point."""
    kh, kw, sh, sw = a["kernel_h"], a["kernel_w"], a["stride_h"], a["stride_w"]
    return kh == kw and sh == sw and (kh, sh) in DW_SPECIALIZED


def dw_kernel_name(a: Dict, inplace: bool, specialized: bool = True) -> str:
    """The optimized depthwise kernel for the shape ``a``: the specialized entry point when
    there is one and ``specialized``, else the generic one."""
    kh, kw, sh = a["kernel_h"], a["kernel_w"], a["stride_h"]
    shape = f"_{kh}x{kw}s{sh}" if specialized and dw_specialized(a) else ""
    return f"te_arm_depthwise_conv2d{shape}{'_inplace' if inplace else ''}_s8"


def dw_line(a: Dict):
    """(in_len, out_len, k, stride, dilation, pad) of a depthwise convolution seen along
    its line axis: H when kernel_w, input_w and output_w are 1, else W (the
    rule of te_arm_depthwise_conv1d_s8 in tinyengine_kernels.h)."""
    if a["kernel_w"] == 1 and a["input_w"] == 1 and a["output_w"] == 1:
        return a["input_h"], a["output_h"], a["kernel_h"], a["stride_h"], a["dilation_h"], a["pad_top"]
    return a["input_w"], a["output_w"], a["kernel_w"], a["stride_w"], a["dilation_w"], a["pad_left"]


def dw_line_bytes(a: Dict) -> int:
    """te_arm_depthwise_conv1d_s8_get_buffer_size(): four channels of the padded
    line widened to int16 pairs, 8 bytes per position."""
    _, out_len, k, stride, dilation, _ = dw_line(a)
    return 8 * ((out_len - 1) * stride + (k - 1) * dilation + 1)


def conv_s16_scratch(a: Dict) -> int:
    """te_arm_conv2d_s16_get_buffer_size(): one int16 column of k2 values
    (kernel_h * kernel_w * input_c rounded up to even)."""
    k = a["kernel_h"] * a["kernel_w"] * a["input_c"]
    return 2 * (k + (k & 1))


def dw_line_s16_bytes(a: Dict) -> int:
    """te_arm_depthwise_conv1d_s16_get_buffer_size(): two int16 channels of the
    padded line, 4 bytes per position."""
    return dw_line_bytes(a) // 2


def transpose_conv_scratch(a: Dict) -> int:
    """te_arm_transpose_conv2d_s8_get_buffer_size(): one batch's int32 sums, channels
    rounded up to four."""
    return 4 * a["output_h"] * a["output_w"] * ((a["output_c"] + 3) // 4 * 4)


def batch_matmul_scratch(a: Dict) -> int:
    """te_arm_batch_matmul_s8_get_buffer_size(): a batch's right columns and one
    left row as int16, depth rounded up to even."""
    return 2 * (a["cols"] + 1) * (a["depth"] + (a["depth"] & 1))


def arm_conv_scratch(a: Dict) -> int:
    """te_arm_conv2d_s8_get_buffer_size(): four int16 im2col columns, a partial
    block of outputs, the int8 staging of a column (input_c % 4 != 0)."""
    k4 = conv_k4(a)
    stage = (k4 + a["kernel_w"] * a["input_c"] + 3) // 4 * 4 if a["input_c"] % 4 else 0
    return 8 * k4 + (4 * a["output_c"] + 3) // 4 * 4 + stage


def arm_conv_narrow_scratch(a: Dict) -> int:
    """te_arm_conv2d_narrow_s8_get_buffer_size(): one int16 im2col column, the int8
    staging of it (input_c % 4 != 0); no partial block."""
    k4 = conv_k4(a)
    stage = (k4 + a["kernel_w"] * a["input_c"] + 3) // 4 * 4 if a["input_c"] % 4 else 0
    return 2 * k4 + stage


def _arm_depthwise_specs() -> Dict[str, KernelSpec]:
    specs = {}
    for shape in ARM_DW_SHAPES:
        fn = f"te_arm_depthwise_conv2d{shape}_s8"
        specs[fn] = KernelSpec("DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                               "te_conv_params", depthwise_macs, scratch=dw_plane_bytes)
        # in place: the output is written over input 0 (te_depthwise_conv2d_inplace_s8's contract)
        specs[f"te_arm_depthwise_conv2d{shape}_inplace_s8"] = KernelSpec(
            "DEPTHWISE_CONV_2D", "arm/arm_depthwise_s8.cc", ["p", "inout", "in1", "inout", "scratch"],
            "te_conv_params", depthwise_macs, scratch=dw_plane_bytes, inplace=True, function=fn)
    specs["te_arm_depthwise_conv1d_s8"] = KernelSpec(
        "DEPTHWISE_CONV_2D", "arm/arm_depthwise_1d.cc", ["p", "in0", "in1", "out", "scratch"],
        "te_conv_params", depthwise_macs, scratch=dw_line_bytes)
    specs["te_arm_depthwise_conv1d_inplace_s8"] = KernelSpec(
        "DEPTHWISE_CONV_2D", "arm/arm_depthwise_1d.cc", ["p", "inout", "in1", "inout", "scratch"],
        "te_conv_params", depthwise_macs, scratch=dw_line_bytes, inplace=True, function="te_arm_depthwise_conv1d_s8")
    specs["te_arm_depthwise_conv1d_s16"] = KernelSpec(
        "DEPTHWISE_CONV_2D", "arm/arm_depthwise_1d.cc", ["p", "in0", "in1", "out", "scratch"],
        "te_conv_params", TAGGED["te_depthwise_conv2d_s16"].macs, scratch=dw_line_s16_bytes)
    return specs


ARM: Dict[str, KernelSpec] = {
    **_arm_depthwise_specs(),
    "te_arm_fully_connected_s8": KernelSpec(
        "FULLY_CONNECTED", "arm/arm_fully_connected_s8.cc", ["p", "in0", "in1", "out"], "te_fc_params", fc_macs),
    "te_arm_add_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "out"],
                                "te_arm_add_params"),
    "te_arm_add_inplace_s8": KernelSpec("ADD", "arm/arm_add_s8.cc", ["p", "in0", "in1", "in2", "in3", "inout"],
                                        "te_arm_add_params", inplace=True, function="te_arm_add_s8"),
    "te_arm_conv2d_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                   "te_conv_params", conv_macs, scratch=arm_conv_scratch),
    "te_arm_conv2d_s16": KernelSpec("CONV_2D", "arm/arm_conv_s16.cc", ["p", "in0", "in1", "out", "scratch"],
                                    "te_conv_params", conv_s16_macs, scratch=conv_s16_scratch),
    "te_arm_fully_connected_s16": KernelSpec("FULLY_CONNECTED", "arm/arm_conv_s16.cc", ["p", "in0", "in1", "out"],
                                             "te_fc_params", fc_s16_macs),
    # the portable LSTM's state and scratch; inputs: the sequence, the sigmoid table, the packed weights
    "te_arm_lstm_s8": KernelSpec("UNIDIRECTIONAL_SEQUENCE_LSTM", "arm/arm_lstm.cc",
                                 ["p", "in0", "in1", "in2", "state", "out", "scratch"], "te_lstm_params",
                                 _lstm_s8.macs, scratch=_lstm_s8.scratch, state=_lstm_s8.state),
    "te_arm_transpose_conv2d_s8": KernelSpec(
        "TRANSPOSE_CONV", "arm/arm_transpose_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"], "te_conv_params",
        TAGGED["te_transpose_conv2d_s8"].macs, scratch=transpose_conv_scratch),
    "te_arm_batch_matmul_s8": KernelSpec(
        "BATCH_MATMUL", "arm/arm_batch_matmul_s8.cc", ["p", "in0", "in1", "out", "scratch"], "te_batch_matmul_params",
        TAGGED["te_batch_matmul_s8"].macs, scratch=batch_matmul_scratch),
    "te_arm_lstm_s16": KernelSpec("UNIDIRECTIONAL_SEQUENCE_LSTM", "arm/arm_lstm.cc",
                                  ["p", "in0", "in1", "in2", "state", "out", "scratch"], "te_lstm_params",
                                  _lstm_s16.macs, scratch=_lstm_s16.scratch, state=_lstm_s16.state),
    # the portable SVDF's state and scratch; inputs: the frame, the bias, the packed weights
    "te_arm_svdf_s8": KernelSpec("SVDF", "arm/arm_svdf_s8.cc", ["p", "in0", "in1", "in2", "state", "out", "scratch"],
                                 "te_svdf_params", _svdf_s8.macs, scratch=_svdf_s8.scratch, state=_svdf_s8.state),
    "te_arm_transpose_conv2d_s16": KernelSpec(
        "TRANSPOSE_CONV", "arm/arm_conv_s16.cc", ["p", "in0", "in1", "out", "scratch"], "te_conv_params",
        TAGGED["te_transpose_conv2d_s16"].macs, scratch=TAGGED["te_transpose_conv2d_s16"].scratch),
    "te_arm_conv2d_w16_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                       "te_conv_params", conv_macs, scratch=arm_conv_scratch),
    # the "narrow" kernel variant: one output pixel's im2col column at a time (less scratch, slower)
    "te_arm_conv2d_narrow_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc", ["p", "in0", "in1", "out", "scratch"],
                                          "te_conv_params", conv_macs, scratch=arm_conv_narrow_scratch),
    "te_arm_conv2d_narrow_w16_s8": KernelSpec("CONV_2D", "arm/arm_conv_s8.cc",
                                              ["p", "in0", "in1", "out", "scratch"], "te_conv_params", conv_macs,
                                              scratch=arm_conv_narrow_scratch),
}
