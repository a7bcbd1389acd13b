"""Per-operator bit-exactness with TFLM on small int8 TFLite models built by the tests.

Each case builds a one-operator (or tiny) model with tinyengine_tvm.modelgen,
compiles it, runs the generated C on this host and compares with TFLM on
several random inputs.  The cases sweep the attribute corners: SAME/VALID
padding, stride 2, dilation, depth multiplier > 1, per-channel vs per-tensor
weights, fused NONE/RELU/RELU6, odd channel counts, 1x1 spatial, broadcasting.
"""
import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.testing import assert_matches_tflm, random_inputs

pytest.importorskip("tflite_micro", reason="tflite-micro is not installed (pip install --pre tflite-micro)")
from tinyengine_tvm.modelgen import quantized_ops as Q  # noqa: E402

SEEDS = range(4)

def _dm(shape, build, seed=0, low=-1.0, high=1.0):
    """A model of one operator ``build(g, x)`` on an input of values in [low, high]
    (may return several outputs)."""
    g = Q.QuantizedGraph(seed)
    return g.finish(build(g, g.input(shape, low, high)))


def _two_inputs(build, sa=(1, 4, 5, 3), sb=(1, 1, 5, 3), seed=0):
    """A model of ``build(g, a, b)`` on two inputs quantized differently."""
    g = Q.QuantizedGraph(seed)
    return g.finish(build(g, g.input(sa, -1.0, 1.0, name="a"), g.input(sb, -2.0, 0.5, name="b")))


def _bmm(sa, sb, adj_x=False, adj_y=False, seed=0):
    """One BATCH_MATMUL of two activations quantized differently."""
    g = Q.QuantizedGraph(seed)
    a, b = g.input(sa, -1.0, 1.0, name="lhs"), g.input(sb, -2.0, 0.5, name="rhs")
    return g.finish(g.batch_matmul(a, b, adj_x, adj_y))


def _shape_int16():
    g = Q.QuantizedGraph(0)
    x = g.input((2, 3, 7), -1.0, 1.0, dtype="int16")
    return g.finish([g.abs(x), g.shape(x)])


CASES = {
    # CONV_2D
    "conv_same_s2_relu6_pc": lambda: Q.conv2d_model(),
    "conv_valid_s1_none_pt": lambda: Q.conv2d_model(padding="VALID", stride=(1, 1), activation="NONE", per_channel=False),
    "conv_dilation2_relu": lambda: Q.conv2d_model(input_shape=(1, 11, 10, 4), dilation=(2, 2), stride=(1, 1), activation="RELU"),
    "conv_1x1_odd_channels": lambda: Q.conv2d_model(input_shape=(1, 5, 7, 7), out_channels=13, kernel=(1, 1), stride=(1, 1)),
    "conv_5x3_stride2_valid": lambda: Q.conv2d_model(input_shape=(1, 12, 9, 3), kernel=(5, 3), stride=(2, 2), padding="VALID"),
    "conv_1x1_spatial": lambda: Q.conv2d_model(input_shape=(1, 1, 1, 16), out_channels=8, kernel=(1, 1), stride=(1, 1)),
    "conv_no_bias": lambda: Q.conv2d_model(use_bias=False, activation="NONE"),
    # DEPTHWISE_CONV_2D
    "dw_dm2_same_relu6": lambda: Q.depthwise_conv2d_model(),
    "dw_dm1_s2_valid": lambda: Q.depthwise_conv2d_model(depth_multiplier=1, stride=(2, 2), padding="VALID", activation="NONE"),
    "dw_5x5_s2_same_odd": lambda: Q.depthwise_conv2d_model(input_shape=(1, 11, 9, 5), kernel=(5, 5), stride=(2, 2), depth_multiplier=1),
    "dw_7x7_s1": lambda: Q.depthwise_conv2d_model(input_shape=(1, 9, 9, 3), kernel=(7, 7), depth_multiplier=1, activation="RELU"),
    "dw_dilation2_dm3": lambda: Q.depthwise_conv2d_model(dilation=(2, 2), depth_multiplier=3, per_channel=False),
    "dw_1x1_spatial": lambda: Q.depthwise_conv2d_model(input_shape=(1, 1, 1, 6), depth_multiplier=1),
    # TRANSPOSE_CONV
    "tconv_3x3_s2_same_relu": lambda: _dm((1, 4, 5, 3), lambda g, x: g.transpose_conv(x, 4, activation="RELU")),
    "tconv_4x4_s2_valid_pt": lambda: _dm((1, 3, 3, 5), lambda g, x: g.transpose_conv(
        x, 6, (4, 4), (2, 2), "VALID", per_channel=False)),
    "tconv_2x2_s2_no_bias": lambda: _dm((1, 4, 4, 8), lambda g, x: g.transpose_conv(
        x, 3, (2, 2), (2, 2), use_bias="absent")),
    "tconv_5x1_s1_relu6": lambda: _dm((1, 7, 1, 4), lambda g, x: g.transpose_conv(
        x, 4, (5, 1), (1, 1), activation="RELU6")),
    "upsampling_decoder": Q.upsampling_model,
    # LOG_SOFTMAX
    "log_softmax_rows": lambda: _dm((4, 10), lambda g, x: g.log_softmax(x), low=-3.0, high=3.0),
    "log_softmax_wide_range": lambda: _dm((2, 300), lambda g, x: g.log_softmax(x), low=-60.0, high=20.0),
    "log_softmax_narrow_range_3d": lambda: _dm((1, 3, 7), lambda g, x: g.log_softmax(x), low=-0.05, high=0.05),
    "mnist_mlp": Q.mnist_mlp_model,
    # comparisons (bool), SELECT_V2, ARG_MAX/ARG_MIN (int32), CAST
    "compare_select_arg_cast": Q.comparison_model,
    # BROADCAST_TO, FILL, ZEROS_LIKE, ADD_N, SPACE_TO_BATCH_ND, BATCH_TO_SPACE_ND
    "broadcast_to_4d": lambda: _dm((1, 1, 5, 1), lambda g, x: g.broadcast_to(x, (2, 3, 5, 4))),
    "broadcast_to_rank_up": lambda: _dm((3, 1), lambda g, x: g.broadcast_to(x, (2, 3, 6))),
    "fill_and_add": lambda: _dm((2, 3), lambda g, x: [g.fill((2, 3), 0.25, x), g.add(x, g.fill((2, 3), -0.5, x))]),
    "zeros_like": lambda: _dm((2, 3, 4), lambda g, x: g.zeros_like(x)),
    "add_n_three": lambda: _two_inputs(lambda g, a, b: g.add_n([a, g.quantize(b, qparams=(a.scale, a.zero_point)), a]),
                                       (1, 4, 3), (1, 4, 3)),
    # TFLM leaves SPACE_TO_BATCH_ND's padding uninitialised: compared without padding.
    "cumsum_last": lambda: _dm((2, 5, 4), lambda g, x: g.cumsum(x, -1)),
    "cumsum_exclusive_reverse_axis1": lambda: _dm((2, 5, 4), lambda g, x: g.cumsum(x, 1, True, True), low=-0.3,
                                                  high=2.0),
    "gather_nd_rows": lambda: _dm((4, 3, 5), lambda g, x: g.gather_nd(x, [[3], [0], [3]])),
    "gather_nd_elements_2d_index": lambda: _dm((2, 3, 4), lambda g, x: g.gather_nd(x, [[[1, 2, 3], [0, 0, 1]],
                                                                                      [[1, 0, 0], [0, 2, 2]]])),
    "space_to_batch": lambda: _dm((2, 4, 6, 3), lambda g, x: g.space_to_batch(x, (2, 3))),
    "batch_to_space_crops": lambda: _dm((6, 2, 3, 2), lambda g, x: g.batch_to_space(x, (2, 3), ((0, 1), (1, 0)))),
    **{f"compare_{op.lower()}": (lambda op=op: _two_inputs(lambda g, a, b: g.compare(op, a, b)))
       for op in ("EQUAL", "NOT_EQUAL", "GREATER", "GREATER_EQUAL", "LESS", "LESS_EQUAL")},
    "select_broadcast": lambda: _two_inputs(lambda g, a, b: g.select(g.compare("LESS", a, b), a, b),
                                            (2, 1, 5), (2, 4, 1)),
    "arg_max_axis1_3d": lambda: _dm((2, 9, 4), lambda g, x: g.arg_max(x, 1)),
    "arg_min_last": lambda: _dm((3, 11), lambda g, x: g.arg_max(x, -1, minimum=True)),
    "cast_int8_to_int32_int16": lambda: _dm((2, 7), lambda g, x: [g.cast(x, "int32"), g.cast(x, "int16")]),
    # L2_NORMALIZATION, RESIZE_BILINEAR
    "l2_normalization_rows": lambda: _dm((3, 10), lambda g, x: g.l2_normalization(x)),
    "l2_normalization_4d_skewed": lambda: _dm((1, 2, 3, 40), lambda g, x: g.l2_normalization(x), low=-0.2, high=3.0),
    "resize_bilinear_up": lambda: _dm((1, 4, 5, 3), lambda g, x: g.resize_bilinear(x, (7, 9))),
    "resize_bilinear_down_align": lambda: _dm((2, 9, 8, 2), lambda g, x: g.resize_bilinear(x, (4, 3), True)),
    "resize_bilinear_half_pixel": lambda: _dm((1, 3, 3, 4), lambda g, x: g.resize_bilinear(x, (8, 5), False, True)),
    "tconv_3x3_s3_same_batch2": lambda: _dm((2, 3, 2, 2), lambda g, x: g.transpose_conv(x, 3, (3, 3), (3, 3))),
    # FULLY_CONNECTED
    "fc_pt_none": lambda: Q.fully_connected_model(),
    "fc_pc_relu": lambda: Q.fully_connected_model(per_channel=True, activation="RELU", units=7),
    "fc_batch3_relu6": lambda: Q.fully_connected_model(input_shape=(3, 20), activation="RELU6"),
    "fc_no_bias": lambda: Q.fully_connected_model(use_bias=False),
    # ADD / MUL
    "add_same_shape": lambda: Q.add_model(),
    "add_broadcast_channel": lambda: Q.add_model(shape_b=(1, 1, 1, 8), activation="RELU"),
    "add_broadcast_rows": lambda: Q.add_model(shape_a=(1, 4, 1, 8), shape_b=(1, 1, 5, 8), activation="RELU6"),
    "add_const_rhs": lambda: Q.add_model(const_b=True),
    "mul_same_shape": lambda: Q.mul_model(),
    "mul_broadcast_se": lambda: Q.mul_model(shape_b=(1, 1, 1, 8), range_b=(0.0, 1.0)),
    "mul_relu": lambda: Q.mul_model(activation="RELU"),
    # data movement: slices, splits, pack/unpack, gather, depth/space, PADV2, EXPAND_DIMS
    "strided_slice_steps": lambda: _dm((1, 7, 9, 5), lambda g, x: g.strided_slice(x, [0, 1, 0, 1], [1, 7, 9, 5],
                                                                                  [1, 2, 3, 2])),
    "strided_slice_negative_masks": lambda: _dm((1, 7, 9, 5), lambda g, x: g.strided_slice(
        x, [0, -1, 2, 0], [1, 0, -1, 4], [1, -2, 1, 1], begin_mask=8, end_mask=1, shrink_axis_mask=1)),
    "strided_slice_rank2_reverse": lambda: _dm((6, 10), lambda g, x: g.strided_slice(x, [5, 9], [0, 0], [-1, -3],
                                                                                     end_mask=3)),
    "slice_to_end": lambda: _dm((2, 5, 7, 3), lambda g, x: g.slice(x, [1, 1, 2, 0], [1, -1, 4, 2])),
    "split_channels": lambda: _dm((1, 4, 6, 9), lambda g, x: g.split(x, 3, -1)),
    "split_rows": lambda: _dm((1, 6, 5, 3), lambda g, x: g.split(x, 2, 1)),
    "split_v_odd": lambda: _dm((1, 4, 7, 4), lambda g, x: g.split_v(x, [1, 4, 2], 2)),
    "unpack_axis1": lambda: _dm((1, 3, 5, 4), lambda g, x: g.unpack(x, 1)),
    "unpack_last": lambda: _dm((2, 3, 4), lambda g, x: g.unpack(x, -1)),
    "pack_new_last_axis": lambda: _dm((1, 3, 4), lambda g, x: g.pack([x, g.relu6(x), x], axis=-1)),
    "pack_axis0": lambda: _dm((4, 5), lambda g, x: g.pack([x, x], axis=0)),
    "gather_repeated": lambda: _dm((1, 4, 6, 8), lambda g, x: g.gather(x, [5, 0, 2, 2, 5], axis=2)),
    "gather_axis0_rank2": lambda: _dm((10, 6), lambda g, x: g.gather(x, [[3, 1], [9, 0]], axis=0)),
    "space_to_depth_3": lambda: _dm((1, 6, 9, 2), lambda g, x: g.space_to_depth(x, 3)),
    "depth_to_space_2": lambda: _dm((1, 3, 5, 12), lambda g, x: g.depth_to_space(x, 2)),
    "padv2_value": lambda: _dm((1, 4, 5, 3), lambda g, x: g.pad_v2(x, ((0, 0), (2, 1), (0, 3), (1, 0)), 0.75)),
    "expand_dims_then_conv": lambda: _dm((1, 4, 6), lambda g, x: g.conv2d(g.expand_dims(x, 0), 4, (3, 3), (1, 1))),
    # SUM, REDUCE_MAX, REDUCE_MIN (contiguous axes; keep_dims either way)
    "sum_hw": lambda: _dm((1, 5, 7, 6), lambda g, x: g.sum(x, (1, 2))),
    "sum_last_nokeep": lambda: _dm((2, 3, 9), lambda g, x: g.sum(x, -1, keep_dims=False)),
    "sum_wide_output": lambda: _dm((1, 30, 40), lambda g, x: g.sum(x, (1, 2)), low=-0.5, high=3.0),
    "reduce_max_hw": lambda: _dm((1, 5, 7, 6), lambda g, x: g.reduce_max(x, (1, 2))),
    "reduce_max_channels_nokeep": lambda: _dm((1, 4, 4, 9), lambda g, x: g.reduce_max(x, 3, keep_dims=False)),
    "reduce_min_rows": lambda: _dm((3, 8, 5), lambda g, x: g.reduce_min(x, 1)),
    # BATCH_MATMUL: adjoints, batch broadcasting, rank 2 to 5, odd sizes
    "batch_matmul": lambda: _bmm((1, 4, 6), (1, 6, 5)),
    "batch_matmul_adj_xy": lambda: _bmm((2, 7, 3), (2, 5, 7), adj_x=True, adj_y=True),
    "batch_matmul_adj_y_heads": lambda: _bmm((1, 4, 9, 16), (1, 4, 9, 16), adj_y=True),
    "batch_matmul_broadcast": lambda: _bmm((3, 2, 4, 6), (1, 6, 5)),
    "batch_matmul_rank2": lambda: _bmm((4, 6), (6, 3)),
    "batch_matmul_rank5": lambda: _bmm((2, 1, 2, 3, 4), (1, 3, 1, 4, 2)),
    # PRELU (alpha per channel, per pixel, scalar-like), MIRROR_PAD (REFLECT)
    "prelu_channel_alpha": lambda: _dm((1, 5, 6, 4), lambda g, x: g.prelu(x, [[[0.1, -0.3, 0.25, 1.5]]])),
    "prelu_full_alpha": lambda: _dm((1, 3, 4, 2), lambda g, x: g.prelu(
        x, np.linspace(-0.5, 0.9, 24).reshape(3, 4, 2)), low=-2.0, high=0.5),
    "prelu_one_alpha": lambda: _dm((1, 4, 4, 3), lambda g, x: g.prelu(x, [[[0.2]]])),
    "mirror_pad_reflect": lambda: _dm((1, 5, 6, 3), lambda g, x: g.mirror_pad(x, ((0, 0), (2, 1), (3, 4), (0, 0)))),
    "mirror_pad_reflect_channels": lambda: _dm((1, 3, 3, 4), lambda g, x: g.mirror_pad(
        x, ((0, 0), (1, 1), (0, 2), (3, 2)))),
    # TANH: input scales from tiny (all saturated near 0) to wide (radius cut-offs)
    "tanh": lambda: _dm((1, 5, 7, 4), lambda g, x: g.tanh(x)),
    "tanh_wide": lambda: _dm((2, 50), lambda g, x: g.tanh(x), low=-12.0, high=9.0),
    "tanh_narrow_skewed": lambda: _dm((1, 4, 4, 5), lambda g, x: g.tanh(x), low=-0.05, high=0.4),
    "tanh_after_fc": lambda: _dm((1, 24), lambda g, x: g.tanh(g.fully_connected(x, 16))),
    # ABS, RSQRT (defined from the zero point up), LEAKY_RELU
    "abs": lambda: _dm((1, 5, 7, 3), lambda g, x: g.abs(x)),
    "abs_same_scale": lambda: _dm((2, 9), lambda g, x: g._unary("ABS", np.abs, x, "abs", qparams=(x.scale, 0))),
    "abs_skewed": lambda: _dm((1, 4, 4, 6), lambda g, x: g.abs(x), low=-0.2, high=3.0),
    "rsqrt": lambda: _dm((1, 4, 6, 5), lambda g, x: g.rsqrt(x), low=0.0, high=4.0),
    "rsqrt_wide": lambda: _dm((3, 17), lambda g, x: g.rsqrt(x), low=0.0, high=900.0),
    "leaky_relu": lambda: _dm((1, 6, 5, 4), lambda g, x: g.leaky_relu(x, 0.1)),
    "leaky_relu_alpha_above_one": lambda: _dm((1, 3, 3, 8), lambda g, x: g.leaky_relu(x, 1.5), low=-4.0, high=1.0),
    "leaky_relu_after_conv": lambda: _dm((1, 6, 6, 3), lambda g, x: g.leaky_relu(g.conv2d(x, 8, (3, 3), (1, 1)), 0.3)),
    # SUB / SQUARED_DIFFERENCE / MAXIMUM / MINIMUM
    "sub_same_shape": lambda: Q.sub_model(),
    "sub_broadcast_channel_relu": lambda: Q.sub_model(shape_b=(1, 1, 1, 8), activation="RELU"),
    "sub_broadcast_rows_relu6": lambda: Q.sub_model(shape_a=(1, 4, 1, 8), shape_b=(1, 1, 5, 8), activation="RELU6"),
    "sub_const_lhs_rank2": lambda: Q.sub_model(shape_a=(3, 7), shape_b=(7,), const_b=True),
    "sub_wide_scales": lambda: Q.sub_model(range_a=(-0.01, 0.02), range_b=(-40.0, 30.0)),
    "squared_difference": lambda: Q.squared_difference_model(),
    "squared_difference_broadcast": lambda: Q.squared_difference_model(shape_a=(1, 3, 5, 4), shape_b=(1, 1, 5, 1)),
    "squared_difference_const": lambda: Q.squared_difference_model(shape_b=(8,), const_b=True,
                                                                   range_a=(-5.0, 0.5)),
    "maximum": lambda: Q.maximum_model(),
    "maximum_broadcast_const": lambda: Q.maximum_model(shape_b=(1, 1, 1, 8), const_b=True),
    "minimum_broadcast": lambda: Q.maximum_model(shape_a=(2, 1, 6), shape_b=(5, 1), minimum=True),
    # pooling and reductions
    "avgpool_2x2_valid": lambda: Q.avg_pool_model(),
    "avgpool_3x3_s2_same_odd": lambda: Q.avg_pool_model(input_shape=(1, 7, 9, 5), filter=(3, 3), stride=(2, 2), padding="SAME"),
    "avgpool_global_relu": lambda: Q.avg_pool_model(input_shape=(1, 5, 5, 3), filter=(5, 5), stride=(1, 1), activation="RELU"),
    "maxpool_2x2": lambda: Q.max_pool_model(),
    "maxpool_3x3_s2_same": lambda: Q.max_pool_model(input_shape=(1, 7, 7, 3), filter=(3, 3), stride=(2, 2), padding="SAME"),
    "mean_hw_keep": lambda: Q.mean_model(),
    "mean_hw_nokeep": lambda: Q.mean_model(keep_dims=False),
    "mean_odd": lambda: Q.mean_model(input_shape=(1, 7, 3, 5)),
    # data movement
    "pad_hw": lambda: Q.pad_model(),
    "pad_channels": lambda: Q.pad_model(paddings=((0, 0), (0, 0), (0, 0), (2, 3))),
    "reshape": lambda: Q.reshape_model(),
    # SHAPE: a model output, and a dynamic batch's SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE
    "shape_output": lambda: _dm((1, 4, 5, 3), lambda g, x: [g.relu(x), g.shape(x)]),
    "shape_output_int16": lambda: _shape_int16(),
    "shape_dynamic_batch_flatten": Q.shape_model,
    "squeeze": lambda: Q.squeeze_model(),
    "transpose_nchw": lambda: Q.transpose_model(),
    "transpose_hw": lambda: Q.transpose_model(perm=(0, 2, 1, 3)),
    "concat_channels": lambda: Q.concat_model(),
    "concat_width": lambda: Q.concat_model(input_shapes=((1, 4, 2, 3), (1, 4, 5, 3)), axis=2),
    "resize_2x": lambda: Q.resize_nearest_model(),
    "resize_align_corners": lambda: Q.resize_nearest_model(size=(7, 5), align_corners=True),
    "resize_half_pixel": lambda: Q.resize_nearest_model(size=(6, 10), half_pixel_centers=True),
    "resize_down": lambda: Q.resize_nearest_model(input_shape=(1, 9, 8, 2), size=(4, 3)),
    # activations
    "softmax": lambda: Q.softmax_model(),
    "softmax_beta": lambda: Q.softmax_model(input_shape=(2, 3, 17), beta=0.5),
    "logistic": lambda: Q.logistic_model(),
    "hard_swish": lambda: Q.hard_swish_model(),
    "relu": lambda: Q.relu_model(),
    "relu6": lambda: Q.relu6_model(),
    "relu6_output_scale_differs": lambda: Q.relu6_model(requantize=True),
    # float input/output around an int8 body; int8->int8 requantize
    "quantize_dequantize": lambda: Q.quantize_dequantize_model(),
    "requantize": lambda: Q.quantize_dequantize_model(requantize=True),
    # multi-op graphs
    "conv_maxpool": lambda: Q.two_op_model(),
    "inverted_residual": lambda: Q.residual_model(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_op_bit_exact_with_tflm(case):
    model = CASES[case]()
    compiled = te.compile(model, name=f"op_{case}")
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in SEEDS])


def test_maximum_with_unequal_quantization_is_refused_naming_the_node():
    """TFLM compares raw int8 values; different scales would give another answer than the float model."""
    import numpy as np

    from tinyengine_tvm.errors import UnsupportedModelError

    g = Q.QuantizedGraph(1)
    a = g.input((1, 4, 4, 3), -1.0, 1.0, name="a")
    b = g.input((1, 4, 4, 3), -5.0, 5.0, name="b")
    model = g.finish(g._binary("MAXIMUM", np.maximum, a, b, None, "larger"))
    with pytest.raises(UnsupportedModelError) as err:
        te.compile(model)
    assert "larger" in str(err.value) and "raw" in str(err.value), str(err.value)


def test_gather_index_out_of_range_is_refused_naming_the_node():
    from tinyengine_tvm.errors import UnsupportedModelError

    g = Q.QuantizedGraph(2)
    x = g.input((1, 4, 6, 3))
    y = g.gather(x, [0, 2], axis=2, prefix="pick")
    model = bytearray(g.finish(y))
    # Rewrite the stored index 2 into 6 (one past the axis): TFLM fails such a model at run time.
    at = bytes(model).find(np.array([0, 2], np.int32).tobytes())
    model[at + 4:at + 8] = np.array([6], np.int32).tobytes()
    with pytest.raises(UnsupportedModelError, match=r"pick.*outside \[0, 6\)"):
        te.compile(bytes(model))


@pytest.mark.parametrize("op, low, high", [("tanh", -6.0, 5.0), ("tanh", -0.3, 0.2), ("abs", -2.0, 0.5),
                                           ("elu", -4.0, 2.0), ("elu", -0.1, 7.0), ("elu", -40.0, 1.0),
                                           ("rsqrt", 0.0, 50.0), ("leaky_relu", -3.0, 3.0),
                                           ("log_softmax", -5.0, 5.0), ("log_softmax", -200.0, 100.0)])
def test_unary_ops_on_every_int8_value(op, low, high):
    """Every one of the 256 input values, not a random sample."""
    g = Q.QuantizedGraph(5)
    x = g.input((1, 256), low, high)
    model = g.finish(getattr(g, op)(x))
    compiled = te.compile(model)
    assert_matches_tflm(compiled, model, [[np.arange(-128, 128, dtype=np.int8).reshape(1, 256)]])


@pytest.mark.parametrize("shape, pads", [((1, 4, 4, 3), ((0, 0), (1, 1), (1, 1), (0, 0))),
                                         ((1, 4, 4, 3), ((0, 0), (4, 2), (0, 3), (1, 0))),
                                         ((3, 5), ((2, 3), (5, 1)))])
def test_mirror_pad_symmetric(shape, pads):
    """SYMMETRIC repeats the edge (padding up to the whole dimension); TVM's importer
    raises on it, the frontend reads it."""
    g = Q.QuantizedGraph(1)
    model = g.finish(g.mirror_pad(g.input(shape), pads, "SYMMETRIC", prefix="edges"))
    compiled = te.compile(model)
    assert_matches_tflm(compiled, model, [random_inputs(compiled.metadata["inputs"], s) for s in SEEDS])


def test_shape_used_other_than_as_a_reshape_shape_is_refused_naming_the_node():
    """A shape computed in the graph folds away only into a RESHAPE; elsewhere (or
    as a model output, unless SHAPE's own) it is refused at import, naming the node."""
    from tinyengine_tvm.errors import UnsupportedModelError

    g = Q.QuantizedGraph(0)
    x = g.input((1, 4, 5, 3))
    shape = g.shape(x, prefix="dims")
    sliced = g.writer.tensor("first_dim", [1], dtype="int32")
    g.writer.op("SLICE", [shape.index, g._int32("b", [0]), g._int32("n", [1])], [sliced])
    g.writer.outputs([sliced])
    g.writer.inputs([x.index])
    with pytest.raises(UnsupportedModelError, match=r"SLICE.*first_dim.*shape computed from SHAPE is a model output"):
        te.compile(g.writer.finish())

    g = Q.QuantizedGraph(0)
    x = g.input((1, 4, 5, 3))
    shape = g.shape(x, prefix="dims")
    y = g.strided_slice(x, [0, 0, 0, 0], [1, 2, 5, 3], [1, 1, 1, 1], prefix="rows")
    g.writer.op("TILE", [y.index, shape.index], [g.writer.tensor("tiled", [1, 2, 5, 3], dtype="int8",
                                                                  scale=y.scale, zero_point=y.zero_point)])
    with pytest.raises(UnsupportedModelError, match=r"TILE.*input 'dims.*' is a shape computed in the graph"):
        te.compile(g.finish([y]))


@pytest.mark.parametrize("op", ["SUB", "SQUARED_DIFFERENCE", "ADD", "GREATER", "EQUAL", "LESS_EQUAL"])
def test_binary_ops_on_every_pair_of_int8_values(op):
    """All 65,536 input pairs (a broadcast [256, 1] x [1, 256]) with scales where a
    multiplier computed from float32 instead of double scales is one off: the
    kernels' fixed-point parameters match TFLM's Prepare, not only its formula."""
    from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter

    w = TFLiteWriter()
    a = w.tensor("a", (256, 1), "int8", scale=0.054916413059359105, zero_point=2)
    b = w.tensor("b", (1, 256), "int8", scale=0.004899405478825175, zero_point=-9)
    out_q = (0.17939160814222482, -128) if op == "SQUARED_DIFFERENCE" else (0.05265641580681247, -1)
    if op in ("GREATER", "EQUAL", "LESS_EQUAL"):  # comparisons: bool, ties where the two grids meet
        y = w.tensor("y", (256, 256), "bool")
        w.op(op, [a, b], [y])
    else:
        y = w.tensor("y", (256, 256), "int8", scale=out_q[0], zero_point=out_q[1])
        w.op(op, [a, b], [y], **({} if op == "SQUARED_DIFFERENCE" else {"fused_activation": "NONE"}))
    w.inputs([a, b])
    w.outputs([y])
    model = w.finish()
    values = np.arange(-128, 128, dtype=np.int8)
    compiled = te.compile(model)
    assert_matches_tflm(compiled, model, [[values.reshape(256, 1), values.reshape(1, 256)]])


def _svdf(batch=1, features=12, filters=8, memory=5, rank=2, state_dtype="int16", seed=0):
    g = Q.QuantizedGraph(seed)
    return g.finish(g.svdf(g.input((batch, features)), filters, memory, rank, state_dtype))


@pytest.mark.parametrize("build", [lambda: _svdf(), lambda: _svdf(rank=1, memory=1), lambda: _svdf(batch=2, seed=1),
                                   lambda: _svdf(state_dtype="int8", seed=2), Q.svdf_kws_model],
                         ids=["rank2", "memory1", "batch2", "int8_state", "kws_two_svdf"])
def test_svdf_streams_like_tflm(build):
    """Twelve invocations with the state carried, then a reset and four more:
    every output equal to TFLM's interpreter fed the same frames."""
    from tflite_micro import runtime

    model = build()
    compiled = te.compile(model, name="svdf_stream")
    assert compiled.metadata["memory"]["state_bytes"] > 0
    interp = runtime.Interpreter.from_bytes(model)
    frames = [random_inputs(compiled.metadata["inputs"], s) for s in range(16)]
    for k, frame in enumerate(frames):
        if k == 12:
            interp.reset()
            compiled.reset()
        interp.set_input(frame[0], 0)
        interp.invoke()
        got = list(compiled.run(frame).values())[0]
        np.testing.assert_array_equal(got, interp.get_output(0), err_msg=f"invocation {k}")


def _accumulator(dtype="int8", initial=None, reads=1, seed=0):
    """y = x + acc; acc = y (requantized to acc's quantization): a resource variable
    read ``reads`` times and assigned once per invocation."""
    g = Q.QuantizedGraph(seed)
    x = g.input((1, 6), -1.0, 1.0, dtype=dtype)
    q = (x.scale, x.zero_point) if dtype == "int16" else (0.02, -7)
    acc = g.read_variable("acc", (1, 6), q, dtype=dtype, initial=initial)
    y = g.add(x, acc)
    for _ in range(reads - 1):
        y = g.add(y, g.read_variable("acc", (1, 6), q, dtype=dtype))
    g.assign_variable("acc", g.quantize(y, qparams=q, dtype=dtype))
    return g.finish([y])


@pytest.mark.parametrize("build", [
    lambda: _accumulator(), lambda: _accumulator(initial=0.3), lambda: _accumulator(reads=2, seed=1),
    lambda: _accumulator("int16", initial=-0.2), lambda: Q.streaming_conv_model(),
    lambda: Q.streaming_conv_model(frames=3, features=7, channels=3, initial=0.5, seed=2)],
    ids=["int8", "int8_call_once", "read_twice", "int16_call_once", "frame_buffer", "frame_buffer_call_once"])
def test_resource_variables_stream_like_tflm(build):
    """Seven invocations with the variables carried, equal to TFLM's; then after
    ``reset()`` four more, equal to a new TFLM interpreter's (a variable starts
    again from its CALL_ONCE value; TFLM's own reset() does not rerun CALL_ONCE)."""
    from tflite_micro import runtime

    model = build()
    compiled = te.compile(model, name="variables")
    assert compiled.metadata["variables"] and compiled.metadata["memory"]["state_bytes"] > 0
    frames = [random_inputs(compiled.metadata["inputs"], s) for s in range(11)]
    interp = runtime.Interpreter.from_bytes(model)
    for k, frame in enumerate(frames):
        if k == 7:
            interp = runtime.Interpreter.from_bytes(model)
            compiled.reset()
        interp.set_input(frame[0], 0)
        interp.invoke()
        got = list(compiled.run(frame).values())[0]
        np.testing.assert_array_equal(got, interp.get_output(0), err_msg=f"invocation {k}")


def _variable_misuse(kind):
    g = Q.QuantizedGraph(0)
    x = g.input((1, 6))
    acc = g.read_variable("acc", (1, 6), (x.scale, x.zero_point), initial=0.0 if kind == "bad_init" else None)
    if kind == "read_after_assign":
        g.assign_variable("acc", x)
        return g.finish([g.add(acc, g.read_variable("acc", (1, 6), (x.scale, x.zero_point), prefix="late"))])
    if kind == "assign_twice":
        g.assign_variable("acc", x)
        g.assign_variable("acc", acc)
    if kind == "bad_init":
        g.assign_variable("acc", x)
        model = g.finish([acc])
        # The initialisation subgraph computes its value (an ABS) instead of assigning a constant.
        from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema
        m = schema.ModelT.InitFromPackedBuf(bytearray(model), 0)
        init = m.subgraphs[1]
        k = next(i for i, op in enumerate(init.operators) if m.operatorCodes[op.opcodeIndex].builtinCode
                 == schema.BuiltinOperator.ASSIGN_VARIABLE)
        code = schema.OperatorCodeT()
        code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.ABS
        code.version = 1
        m.operatorCodes.append(code)
        t = schema.TensorT()
        t.name, t.shape, t.type, t.buffer = "computed", [1, 6], schema.TensorType.INT8, 0
        t.quantization = init.tensors[init.operators[k].inputs[1]].quantization
        init.tensors.append(t)
        absop = schema.OperatorT()
        absop.opcodeIndex, absop.inputs, absop.outputs = len(m.operatorCodes) - 1, [init.operators[k].inputs[1]], \
            [len(init.tensors) - 1]
        init.operators[k].inputs = [init.operators[k].inputs[0], len(init.tensors) - 1]
        init.operators.insert(k, absop)
        import flatbuffers
        b = flatbuffers.Builder(0)
        b.Finish(m.Pack(b), file_identifier=b"TFL3")
        return bytes(b.Output())
    return g.finish([acc])


@pytest.mark.parametrize("kind, message", [
    ("read_after_assign", r"READ_VARIABLE.*late.*after it is assigned"),
    ("assign_twice", r"ASSIGN_VARIABLE.*a second time"),
    ("bad_init", r"ABS.*subgraph 1.*only assign constant")])
def test_variable_uses_the_rewrite_cannot_keep_exact_are_refused(kind, message):
    from tinyengine_tvm.errors import UnsupportedModelError

    with pytest.raises(UnsupportedModelError, match=message):
        te.compile(_variable_misuse(kind))


def test_malformed_initialisation_subgraph_is_a_format_error(tmp_path):
    """An ASSIGN_VARIABLE of the CALL_ONCE subgraph naming a tensor that does not
    exist: a clear format error, exit status 2 from tvmc, nothing written."""
    import subprocess
    import sys

    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as schema

    import flatbuffers
    from tinyengine_tvm.errors import ModelFormatError

    m = schema.ModelT.InitFromPackedBuf(bytearray(_accumulator(initial=0.1)), 0)
    assign = next(op for op in m.subgraphs[1].operators
                  if m.operatorCodes[op.opcodeIndex].builtinCode == schema.BuiltinOperator.ASSIGN_VARIABLE)
    assign.inputs = [assign.inputs[0], 99]
    b = flatbuffers.Builder(0)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    with pytest.raises(ModelFormatError, match="initialisation subgraph"):
        te.compile(bytes(b.Output()))
    path, out = tmp_path / "broken.tflite", tmp_path / "out"
    path.write_bytes(bytes(b.Output()))
    run = subprocess.run([sys.executable, "-m", "tinyengine_tvm", "compile", str(path), "--target=tinyengine",
                          "-o", str(out)], capture_output=True, text=True)
    assert run.returncode == 2 and "initialisation subgraph" in run.stderr, run.stderr
    assert not out.exists()


def _one_op(op, dtype, scales):
    from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter

    lo, hi = (-128, 128) if dtype == "int8" else (-32768, 32768)
    w = TFLiteWriter()
    x = w.tensor("x", (1, hi - lo), dtype, scale=scales[0], zero_point=scales[1])
    y = w.tensor("result", (1, hi - lo), dtype, scale=scales[2], zero_point=scales[3])
    w.op(op, [x], [y])
    w.inputs([x])
    w.outputs([y])
    return w.finish(), np.arange(lo, hi, dtype=dtype).reshape(1, -1)


@pytest.mark.parametrize("op, dtype, scales", [
    ("NEG", "int8", (0.01, 3, 0.02, -5)), ("NEG", "int16", (0.01, 0, 0.02, 0)),
    ("RELU_N1_TO_1", "int8", (0.01, 3, 0.02, -5)), ("RELU_N1_TO_1", "int8", (0.05, -20, 0.008, 0)),
    ("RELU_N1_TO_1", "int8", (0.003, 100, 0.0079, -1)), ("RELU_N1_TO_1", "int8", (0.0625, -128, 0.0039, 7))])
def test_operators_only_tflite_runs_in_int8_match_its_reference_kernels(op, dtype, scales):
    """TFLM fails int8 NEG at invoke and registers no standalone RELU_N1_TO_1; TFLite
    (LiteRT's reference kernels) runs both: every input value equals its output.
    If TFLM gains them, the first assertion fails: compare with TFLM then."""
    pytest.importorskip("ai_edge_litert.interpreter", reason="ai-edge-litert missing")
    from tinyengine_tvm.testing import litert_run, tflm_run

    model, values = _one_op(op, dtype, scales)
    with pytest.raises(Exception):
        tflm_run(model, [values])
    compiled = te.compile(model)
    got = list(compiled.run([values]).values())[0]
    np.testing.assert_array_equal(got, litert_run(model, [values])[0])


def test_svdf_with_mixed_state_types_is_refused():
    """TFLM reads int8 time weights over an int16 state without complaint (and wrongly)."""
    from tinyengine_tvm.errors import UnsupportedModelError
    from tinyengine_tvm.modelgen.tflite_writer import TFLiteWriter

    w = TFLiteWriter()
    x = w.tensor("frame", (1, 4), "int8", scale=0.01)
    wf = w.tensor("wf", (2, 4), "int8", scale=0.02, data=np.ones((2, 4), np.int8))
    wt = w.tensor("wt", (2, 3), "int8", scale=0.03, data=np.ones((2, 3), np.int8))
    b = w.tensor("b", (2,), "int32", scale=0.03 * 0.004, data=np.zeros(2, np.int32))
    st = w.tensor("history", (1, 6), "int16", scale=0.004, is_variable=True)
    y = w.tensor("y", (1, 2), "int8", scale=0.05)
    w.op("SVDF", [x, wf, wt, b, st], [y], rank=1)
    w.inputs([x])
    w.outputs([y])
    with pytest.raises(UnsupportedModelError, match=r"SVDF.*both be int16"):
        te.compile(w.finish())


def _lstm(shape=(1, 3, 4), units=5, seed=0, dtype="int8", **kw):
    g = Q.QuantizedGraph(seed)
    return g.finish(g.lstm(g.input(shape, dtype=dtype), units, **kw))


@pytest.mark.parametrize("build", [
    lambda: _lstm(), lambda: _lstm((3, 2, 6), 7, 1, time_major=True), lambda: _lstm((3, 4, 6), 7, 2),
    lambda: _lstm((2, 5, 8), 16, 3, cell_clip=0.6, cell_scale=2.0 ** -12),
    lambda: _lstm((1, 4, 5), 6, 4, cell_scale=2.0 ** -9, intermediates=False), Q.mnist_lstm_model,
    lambda: _lstm((2, 3, 4), 5, 5, dtype="int16"), lambda: _lstm((3, 2, 6), 7, 6, dtype="int16", time_major=True)],
    ids=["tiny", "time_major", "batch3", "cell_clip", "cell_scale_2^-9", "mnist_lstm", "int16x8", "int16x8_time_major"])
def test_lstm_sequences_like_tflm(build):
    """Six invocations with the hidden and cell state carried, then a reset and
    three more: every output equal to TFLM's interpreter fed the same sequences."""
    from tflite_micro import runtime

    model = build()
    compiled = te.compile(model, name="lstm_sequence")
    interp = runtime.Interpreter.from_bytes(model)
    for k, seed in enumerate(range(9)):
        x = random_inputs(compiled.metadata["inputs"], seed)
        if k == 6:
            interp.reset()
            compiled.reset()
        interp.set_input(x[0], 0)
        interp.invoke()
        np.testing.assert_array_equal(list(compiled.run(x).values())[0], interp.get_output(0),
                                      err_msg=f"invocation {k}")


def test_lstm_with_peephole_is_refused_naming_the_node():
    from tinyengine_tvm.errors import UnsupportedModelError

    g = Q.QuantizedGraph(0)
    x = g.input((1, 3, 4))
    out = g.lstm(x, 5, prefix="recurrent")
    # Point input 9 (cell_to_input weights) at a real tensor: a peephole TFLM refuses.
    ops = g.writer._ops
    ops[-1].inputs[9] = ops[-1].inputs[1]
    with pytest.raises(UnsupportedModelError, match=r"UNIDIRECTIONAL_SEQUENCE_LSTM.*peephole"):
        te.compile(g.finish(out))


def test_gather_nd_index_out_of_range_is_refused_naming_the_node():
    from tinyengine_tvm.errors import UnsupportedModelError

    g = Q.QuantizedGraph(3)
    x = g.input((2, 3))
    model = bytearray(g.finish(g.gather_nd(x, [[1, 2], [0, 1]], prefix="picked")))
    at = bytes(model).find(np.array([1, 2, 0, 1], np.int32).tobytes())
    model[at + 4:at + 8] = np.array([3], np.int32).tobytes()  # column 3 of 3
    with pytest.raises(UnsupportedModelError, match=r"GATHER_ND.*picked.*hold 3 for a dimension of 3"):
        te.compile(bytes(model))
