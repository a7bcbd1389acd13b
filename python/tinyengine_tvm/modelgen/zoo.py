"""A zoo of stand-in int8 networks for the families the compiler targets.

Every model here is a *stand-in with random weights*: it has the operators,
shapes and layer mix of a real model of its family (MCUNet, MCUNetV2-style
squeeze-excite nets, FPN detectors, PyTorch-exported MobileNetV2, a
keyword-spotting transformer encoder) but is not a
copy of any published model and classifies nothing. Each builder is
deterministic for a given ``seed``, is calibrated on ``samples`` random inputs
(see :class:`~.quantized_ops.QuantizedGraph`) and returns TFLite bytes;
``resolution``/``width``/``classes`` let tests build small versions.

Run ``python -m tinyengine_tvm.modelgen.zoo NAME -o model.tflite`` to write one.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from .quantized_ops import QuantizedGraph, choose_qparams

__all__ = [
    "mcunet_vww",
    "mcunet_se_imagenet",
    "mcunet_fpn_detector",
    "mobilenetv2_nchw",
    "kws_transformer",
    "ZOO",
    # building blocks (also for random models in the tests)
    "inverted_residual",
    "squeeze_excite",
    "concat_channels",
    "classifier_tail",
]


# ----------------------------------------------------------------- helpers
def _make_divisible(v, divisor=8):
    """Round a channel count to a multiple of ``divisor`` (never dropping >10%)."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return int(new_v)


def _pair(v):
    return (int(v), int(v)) if np.isscalar(v) else (int(v[0]), int(v[1]))


def _conv(g, x, c, k, s, act, name):
    return g.conv2d(x, c, (k, k), (s, s), (1, 1), "SAME", act, True, prefix=name)


def _dw(g, x, k, s, act, name):
    return g.depthwise_conv2d(x, (k, k), (s, s), (1, 1), "SAME", 1, act, True, prefix=name)


def squeeze_excite(g, x, ratio, name):
    """MEAN(H,W) -> 1x1 reduce (RELU) -> 1x1 expand -> LOGISTIC -> MUL over the map."""
    c = x.shape[3]
    s = g.mean(x, (1, 2), keep_dims=True, prefix=f"{name}_squeeze")
    s = _conv(g, s, _make_divisible(c * ratio), 1, 1, "RELU", f"{name}_reduce")
    s = _conv(g, s, c, 1, 1, "NONE", f"{name}_expand")
    s = g.logistic(s, prefix=f"{name}_gate")
    return g.mul(x, s, prefix=f"{name}_scale")


def inverted_residual(g, x, out_c, expand, kernel, stride, name, se_ratio=None):
    """MobileNetV2 block: 1x1 expand (RELU6) -> KxK depthwise (RELU6) [-> SE] -> 1x1 project.

    A residual ADD joins the input back when the block keeps shape.
    """
    in_c = x.shape[3]
    h = x
    if expand != 1:
        h = _conv(g, h, int(round(in_c * expand)), 1, 1, "RELU6", f"{name}_expand")
    h = _dw(g, h, kernel, stride, "RELU6", f"{name}_dw")
    if se_ratio:
        h = squeeze_excite(g, h, se_ratio, f"{name}_se")
    h = _conv(g, h, out_c, 1, 1, "NONE", f"{name}_project")
    if stride == 1 and in_c == out_c:
        h = g.add(x, h, prefix=f"{name}_add")
    return h


def _stages(g, x, stages, width, name, se_ratio=None):
    """Run ``stages``: (out_channels, first_stride, [(expand, kernel[, se]), ...])."""
    feats = []
    for si, (c, stride, blocks) in enumerate(stages):
        out_c = _make_divisible(c * width)
        for bi, blk in enumerate(blocks):
            expand, kernel = blk[0], blk[1]
            se = se_ratio if (len(blk) > 2 and blk[2]) else None
            x = inverted_residual(g, x, out_c, expand, kernel, stride if bi == 0 else 1,
                                   f"{name}{si + 1}_{bi + 1}", se)
        feats.append(x)
    return x, feats


def classifier_tail(g, x, classes, name="head"):
    """Global AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED logits."""
    x = g.avg_pool(x, x.shape[1:3], (1, 1), "VALID", prefix=f"{name}_pool")
    x = g.reshape(x, (1, x.shape[3]), prefix=f"{name}_flatten")
    return g.fully_connected(x, classes, "NONE", per_channel=False, prefix=f"{name}_logits")


def concat_channels(g, xs, name):
    """CONCATENATION along channels of inputs requantized onto one shared grid.

    TFLite (and TFLite Micro's int8 kernel) want every input on the output's
    scale/zero point; like the converter, inputs that differ get an int8 QUANTIZE.
    """
    lo = min(float(t.values.min()) for t in xs)
    hi = max(float(t.values.max()) for t in xs)
    qp = choose_qparams(lo, hi)
    same = []
    for i, t in enumerate(xs):
        if (t.scale, t.zero_point) != qp:
            t = g.quantize(t, prefix=f"{name}_requant{i}", qparams=qp)
        same.append(t)
    return g.concat(same, axis=3, prefix=name)


# ------------------------------------------------------------------ models
# Hand-picked MCUNet-like VWW layout (not a published search result):
# (channels, first stride, [(expand, kernel)]).
_VWW_STAGES = [
    (16, 2, [(4, 3), (3, 5)]),
    (24, 2, [(6, 7), (3, 3), (4, 5)]),
    (40, 2, [(6, 5), (4, 3), (3, 7)]),
    (48, 1, [(5, 3), (4, 5)]),
    (96, 2, [(6, 7), (5, 3), (4, 5)]),
    (160, 1, [(5, 7)]),
]


def _float_front(g, h, w, stem_channels, separable_channels, width):
    """float32 [1,h,w,3] input -> QUANTIZE -> 3x3/2 stem (RELU6) -> depthwise-separable block."""
    x = g.input((1, h, w, 3), -1.0, 1.0, dtype="float32", name="input")
    x = g.quantize(x, prefix="input_quant")
    x = _conv(g, x, _make_divisible(stem_channels * width), 3, 2, "RELU6", "stem")
    x = _dw(g, x, 3, 1, "RELU6", "sep_dw")
    return _conv(g, x, _make_divisible(separable_channels * width), 1, 1, "NONE", "sep_pw")


def mcunet_vww(resolution=80, width=1.0, seed=0, samples=2, classes=2, softmax=True) -> bytes:
    """MCUNet-style visual-wake-words net (stand-in, random weights).

    float32 [1,H,W,3] -> QUANTIZE -> 3x3/2 stem -> depthwise-separable block ->
    inverted residual blocks (expand 3-6, depthwise 3/5/7) -> 1x1 head ->
    global AVERAGE_POOL_2D -> RESHAPE -> FULLY_CONNECTED(``classes``)
    [-> SOFTMAX] -> DEQUANTIZE float32. ~12 M MACs at 80x80, width 1.0.
    """
    h, w = _pair(resolution)
    g = QuantizedGraph(seed, samples,
                       description="tinyengine-tvm zoo: MCUNet-style VWW stand-in "
                                   "(random weights)")
    x = _float_front(g, h, w, 16, 8, width)
    x, _ = _stages(g, x, _VWW_STAGES, width, "block")
    x = _conv(g, x, _make_divisible(192 * width), 1, 1, "RELU6", "head_conv")
    x = classifier_tail(g, x, classes)
    if softmax:
        x = g.softmax(x, prefix="probs")
    return g.finish(g.dequantize(x, prefix="output"))


# MCUNetV2-like ImageNet stand-in: (channels, first stride, [(expand, kernel, se)]).
_SE_STAGES = [
    (24, 2, [(4, 3, False), (3, 3, False)]),
    (40, 2, [(4, 5, True), (3, 3, True), (3, 5, True)]),
    (80, 2, [(6, 3, False), (4, 5, False), (4, 3, False)]),
    (112, 1, [(6, 5, True), (4, 3, True)]),
    (160, 2, [(6, 7, True), (5, 5, True), (5, 3, True)]),
    (320, 1, [(6, 3, False)]),
]


def mcunet_se_imagenet(resolution=224, width=1.0, seed=0, samples=2, classes=1000) -> bytes:
    """MCUNetV2-like ImageNet classifier with squeeze-excite (stand-in, random weights).

    float32 [1,H,W,3] -> QUANTIZE -> stem -> separable block -> inverted
    residual blocks, some with SE (MEAN(H,W) -> 1x1 RELU -> 1x1 -> LOGISTIC ->
    MUL) -> 1x1 head -> global pool -> FULLY_CONNECTED(``classes``) -> DEQUANTIZE.
    """
    h, w = _pair(resolution)
    g = QuantizedGraph(seed, samples,
                       description="tinyengine-tvm zoo: MCUNetV2-like SE ImageNet "
                                   "stand-in (random weights)")
    x = _float_front(g, h, w, 32, 16, width)
    x, _ = _stages(g, x, _SE_STAGES, width, "block", se_ratio=0.25)
    x = _conv(g, x, _make_divisible(1280 * max(width, 1.0)), 1, 1, "RELU6", "head_conv")
    x = classifier_tail(g, x, classes)
    return g.finish(g.dequantize(x, prefix="output"))


# Detector backbone stand-in: strides 2 (stem), 4, 8, 16, 32.
_FPN_STAGES = [
    (16, 2, [(3, 3), (3, 5)]),
    (32, 2, [(4, 5), (3, 3), (4, 3)]),
    (48, 2, [(5, 7), (4, 3), (3, 5)]),
    (64, 1, [(4, 5), (3, 3)]),
    (96, 2, [(6, 5), (4, 7), (4, 3)]),
]


def mcunet_fpn_detector(resolution=(128, 160), width=1.0, seed=0, samples=2, classes=1,
                        anchors=3) -> bytes:
    """FPN-style detector on an inverted-residual backbone (stand-in, random weights).

    float32 [1,H,W,3] -> QUANTIZE -> backbone to stride 32 -> 1x1 laterals on
    strides 8/16/32 -> top-down RESIZE_NEAREST_NEIGHBOR x2 + ADD (stride 16),
    x2 + CONCATENATION with the stride-8 lateral (requantized onto a shared
    grid) -> smoothing convs -> three 1x1 detection heads
    (``anchors * (5 + classes)`` channels) at strides 8, 16 and 32, each
    DEQUANTIZEd to float32. ``resolution`` (H, W) should be a multiple of 32
    (otherwise the upsampling resizes to the lateral's size, not exactly x2).
    """
    h, w = _pair(resolution)
    g = QuantizedGraph(seed, samples,
                       description="tinyengine-tvm zoo: FPN detector stand-in "
                                   "(random weights)")
    x = _float_front(g, h, w, 16, 8, width)
    _, feats = _stages(g, x, _FPN_STAGES, width, "block")
    c3, c4, c5 = feats[1], feats[3], feats[4]  # strides 8, 16, 32
    fc = _make_divisible(48 * width)

    p5 = _conv(g, c5, fc, 1, 1, "RELU6", "lat5")
    up5 = g.resize_nearest(p5, c4.shape[1:3], prefix="up5")
    p4 = g.add(_conv(g, c4, fc, 1, 1, "NONE", "lat4"), up5, "RELU6", prefix="merge4")
    p4 = _dw(g, p4, 3, 1, "RELU6", "smooth4_dw")
    p4 = _conv(g, p4, fc, 1, 1, "RELU6", "smooth4_pw")
    up4 = g.resize_nearest(p4, c3.shape[1:3], prefix="up4")
    p3 = concat_channels(g, [_conv(g, c3, fc, 1, 1, "NONE", "lat3"), up4], "merge3")
    p3 = _dw(g, p3, 3, 1, "RELU6", "smooth3_dw")
    p3 = _conv(g, p3, fc, 1, 1, "RELU6", "smooth3_pw")

    out_c = anchors * (5 + classes)
    outs = []
    for level, p in (("p3", p3), ("p4", p4), ("p5", p5)):
        y = _conv(g, p, out_c, 1, 1, "NONE", f"head_{level}")
        outs.append(g.dequantize(y, prefix=f"out_{level}"))
    return g.finish(outs)


# torchvision MobileNetV2 settings: (expand t, channels c, repeats n, first stride s).
_MBV2_SETTINGS = [
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
]


def mobilenetv2_nchw(resolution=224, width=1.0, seed=0, samples=2, classes=1000) -> bytes:
    """MobileNetV2 as a PyTorch export looks in TFLite (stand-in, random weights).

    int8 NCHW [1,3,H,W] -> TRANSPOSE to NHWC -> 3x3/2 stem (32) -> the 17
    inverted residual blocks (16-24-32-64-96-160-320, expansion 6) -> 1x1 conv
    1280 -> MEAN(H,W) -> FULLY_CONNECTED(``classes``) int8 logits. ``width``
    scales channels (multiples of 8; the 1280 head only grows). ~300 M MACs
    at 224x224, width 1.0.
    """
    h, w = _pair(resolution)
    g = QuantizedGraph(seed, samples,
                       description="tinyengine-tvm zoo: MobileNetV2 NCHW stand-in "
                                   "(random weights)")
    x = g.input((1, 3, h, w), -2.2, 2.7, name="input")  # ImageNet-normalized pixels
    x = g.transpose(x, (0, 2, 3, 1), prefix="to_nhwc")
    x = _conv(g, x, _make_divisible(32 * width), 3, 2, "RELU6", "features0")
    idx = 1
    for t, c, n, s in _MBV2_SETTINGS:
        out_c = _make_divisible(c * width)
        for i in range(n):
            x = inverted_residual(g, x, out_c, t, 3, s if i == 0 else 1, f"features{idx}")
            idx += 1
    x = _conv(g, x, _make_divisible(1280 * max(width, 1.0)), 1, 1, "RELU6", f"features{idx}")
    x = g.mean(x, (1, 2), keep_dims=False, prefix="pool")
    x = g.fully_connected(x, classes, "NONE", per_channel=False, prefix="classifier")
    return g.finish(x)


def layer_norm(g, x, name, eps=1e-3):
    """Layer normalization over the last axis from the operators an int8 TFLite
    conversion writes: MEAN, SQUARED_DIFFERENCE, MEAN, ADD eps, RSQRT, SUB, MUL,
    then MUL by gamma and ADD beta (constants)."""
    d = x.shape[-1]
    mean = g.mean(x, -1, keep_dims=True, prefix=f"{name}_mean")
    var = g.mean(g.squared_difference(x, mean, prefix=f"{name}_sqdiff"), -1, keep_dims=True, prefix=f"{name}_var")
    inv = g.rsqrt(g.add(var, g.constant(np.full((1,), eps), name=f"{name}_eps"), prefix=f"{name}_var_eps"),
                  prefix=f"{name}_rsqrt")
    normed = g.mul(g.sub(x, mean, prefix=f"{name}_centered"), inv, prefix=f"{name}_normed")
    gamma = g.constant(g.rng.uniform(0.8, 1.2, size=(d,)), name=f"{name}_gamma")
    beta = g.constant(g.rng.uniform(-0.1, 0.1, size=(d,)), name=f"{name}_beta")
    return g.add(g.mul(normed, gamma, prefix=f"{name}_scaled"), beta, prefix=f"{name}_out")


def self_attention(g, x, heads, name):
    """Multi-head self-attention on [1, tokens, dim]: FULLY_CONNECTED projections,
    BATCH_MATMUL of two activations for the scores and the mix, SOFTMAX with
    beta 1/sqrt(head dim), heads split and merged by RESHAPE and TRANSPOSE."""
    _, t, d = x.shape
    dh = d // heads

    def split(y, what):
        y = g.reshape(y, (1, t, heads, dh), prefix=f"{name}_{what}_heads")
        return g.transpose(y, (0, 2, 1, 3), prefix=f"{name}_{what}_t")

    q, k, v = (split(g.fully_connected(x, d, keep_num_dims=True, prefix=f"{name}_{w}"), w) for w in "qkv")
    scores = g.batch_matmul(q, k, adj_y=True, prefix=f"{name}_scores")
    probs = g.softmax(scores, beta=1.0 / np.sqrt(dh), prefix=f"{name}_probs")
    mixed = g.transpose(g.batch_matmul(probs, v, prefix=f"{name}_mix"), (0, 2, 1, 3), prefix=f"{name}_merge_t")
    mixed = g.reshape(mixed, (1, t, d), prefix=f"{name}_merge")
    return g.fully_connected(mixed, d, keep_num_dims=True, prefix=f"{name}_proj")


def kws_transformer(resolution=(32, 32), patch=4, dim=32, heads=2, layers=2, mlp=64, classes=12, seed=0,
                    samples=2) -> bytes:
    """A keyword-spotting-style int8 transformer encoder (KWT-like) on a
    spectrogram: CONV_2D patch embedding, pre-norm blocks of multi-head
    self-attention and a HARD_SWISH MLP with residual ADDs, mean over tokens,
    classifier and SOFTMAX."""
    h, w = _pair(resolution)
    g = QuantizedGraph(seed, samples=samples, description=f"kws_transformer {h}x{w} dim {dim} x{layers}")
    x = g.input((1, h, w, 1), -1.0, 1.0, name="spectrogram")
    x = g.conv2d(x, dim, (patch, patch), (patch, patch), (1, 1), "VALID", "NONE", True, prefix="patch_embed")
    tokens = (h // patch) * (w // patch)
    x = g.reshape(x, (1, tokens, dim), prefix="tokens")
    for i in range(layers):
        x = g.add(x, self_attention(g, layer_norm(g, x, f"block{i}_ln1"), heads, f"block{i}_attn"),
                  prefix=f"block{i}_res1")
        y = g.fully_connected(layer_norm(g, x, f"block{i}_ln2"), mlp, keep_num_dims=True, prefix=f"block{i}_mlp1")
        y = g.fully_connected(g.hard_swish(y, prefix=f"block{i}_act"), dim, keep_num_dims=True,
                              prefix=f"block{i}_mlp2")
        x = g.add(x, y, prefix=f"block{i}_res2")
    x = g.mean(x, 1, keep_dims=False, prefix="pool")
    return g.finish(g.softmax(g.fully_connected(x, classes, prefix="classifier"), prefix="probs"))


ZOO = {
    "mcunet_vww": mcunet_vww,
    "mcunet_se_imagenet": mcunet_se_imagenet,
    "mcunet_fpn_detector": mcunet_fpn_detector,
    "mobilenetv2_nchw": mobilenetv2_nchw,
    "kws_transformer": kws_transformer,
}


def main(argv=None) -> int:
    """Write one zoo model at its default size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(ZOO))
    parser.add_argument("-o", "--output", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    data = ZOO[args.name](seed=args.seed)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
