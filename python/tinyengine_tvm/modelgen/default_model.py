"""The project's bundled default model: a tiny MobileNet-style int8 classifier.

Layout (NHWC, int8 activations, per-channel int8 weights)::

    input 1x32x32x3
    CONV_2D 3x3/2 -> 16, RELU6                       16x16x16
    DW 3x3/1 RELU6 + PW 1x1 -> 24 RELU6              16x16x24
    DW 3x3/2 RELU6 + PW 1x1 -> 32 RELU6               8x8x32
    inverted residual: PW 1x1 -> 64 RELU6, DW 3x3/1 RELU6,
        PW 1x1 -> 32 (linear), ADD with block input   8x8x32
    DW 3x3/2 RELU6 + PW 1x1 -> 48 RELU6               4x4x48
    AVERAGE_POOL_2D 4x4 -> RESHAPE 1x48 -> FULLY_CONNECTED 10 -> SOFTMAX

Weights are random (fixed seed) and activations are calibrated on random
inputs, so the model is deterministic but not trained: it exists to exercise
the compiler on a realistic layer mix, not to classify anything.

Run ``python -m tinyengine_tvm.modelgen.default_model`` to regenerate the
shipped ``tinyengine_tvm/data/default_mobilenet_int8.tflite``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from .quantized_ops import QuantizedGraph

__all__ = ["build_default_model", "default_model_path", "DEFAULT_MODEL_FILENAME"]

DEFAULT_MODEL_FILENAME = "default_mobilenet_int8.tflite"
_SEED = 20240601
_CALIBRATION_SAMPLES = 32


def default_model_path() -> Path:
    """Path of the shipped default model inside the package's ``data`` directory."""
    return Path(__file__).resolve().parent.parent / "data" / DEFAULT_MODEL_FILENAME


def _separable(g, x, out_channels, stride, name):
    x = g.depthwise_conv2d(x, (3, 3), stride, (1, 1), "SAME", 1, "RELU6", True,
                           prefix=f"{name}_dw")
    return g.conv2d(x, out_channels, (1, 1), (1, 1), (1, 1), "SAME", "RELU6", True,
                    prefix=f"{name}_pw")


def build_default_model() -> bytes:
    """Build the default int8 MobileNet-style model; identical bytes on every call."""
    g = QuantizedGraph(
        seed=_SEED,
        samples=_CALIBRATION_SAMPLES,
        description="tinyengine-tvm default MobileNet-style int8 model (untrained)",
    )
    x = g.input((1, 32, 32, 3), -1.0, 1.0, name="input")
    x = g.conv2d(x, 16, (3, 3), (2, 2), (1, 1), "SAME", "RELU6", True, prefix="stem")
    x = _separable(g, x, 24, (1, 1), "block1")
    x = _separable(g, x, 32, (2, 2), "block2")

    shortcut = x
    h = g.conv2d(x, 64, (1, 1), (1, 1), (1, 1), "SAME", "RELU6", True, prefix="ir_expand")
    h = g.depthwise_conv2d(h, (3, 3), (1, 1), (1, 1), "SAME", 1, "RELU6", True, prefix="ir_dw")
    h = g.conv2d(h, 32, (1, 1), (1, 1), (1, 1), "SAME", "NONE", True, prefix="ir_project")
    x = g.add(shortcut, h, prefix="ir_add")

    x = _separable(g, x, 48, (2, 2), "block3")
    x = g.avg_pool(x, (4, 4), (1, 1), "VALID", prefix="pool")
    x = g.reshape(x, (1, 48), prefix="flatten")
    x = g.fully_connected(x, 10, "NONE", per_channel=False, prefix="logits")
    x = g.softmax(x, prefix="probs")
    return g.finish(x)


def main(argv=None) -> int:
    """Write the default model (to the package data directory unless told otherwise)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, default=default_model_path(),
                        help="where to write the .tflite file")
    args = parser.parse_args(argv)
    data = build_default_model()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_bytes(data)
    print(f"wrote {args.output} ({len(data)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
