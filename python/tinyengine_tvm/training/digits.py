"""The on-device training demo's data and its host-side pretraining.

The dataset is scikit-learn's bundled 8x8 handwritten digits (1,797 images,
shipped inside the package: nothing is downloaded). The story is MCUNetV3's
transfer learning:

1. :func:`pretrain` trains a small CNN in float on the host, with NumPy, on
   digits 0-4 only;
2. :func:`export_int8` quantizes it to an int8 TFLite model with the project's
   writer, its classifier replaced by a new, untrained head over all ten
   digits (what gets deployed);
3. the device fine-tunes that model on all ten digits (the compiled training
   step, :func:`finetune` on the host build), and is judged on test images it
   never trained on (:func:`splits`, :func:`accuracy`).

The network is shaped like the MCUNet / MobileNet blocks the compiler serves:
a 3x3 convolution, then depthwise 3x3 (stride 2) and pointwise 1x1 pairs, a
flatten and a fully connected classifier (a flatten rather than a global
average: on 8x8 digits where a stroke is matters, and a float head retrained
on the flattened features of the 0-4 backbone reaches ~95% on all ten digits,
against ~78% over averaged ones). The float trainer here is plain
NumPy (im2col convolutions, hand-written backward passes, Adam): the issue asks
for no framework download, and the network is small enough that a few seconds
of NumPy train it.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

from ..errors import UsageError


@dataclass
class Split:
    """Images ([N, 8, 8, 1], real values in [-1, 1]) and their labels."""

    x: np.ndarray
    y: np.ndarray


def load_digits_data() -> Tuple[np.ndarray, np.ndarray]:
    """All 1,797 images as [N, 8, 8, 1] floats in [-1, 1] and their labels (0-9)."""
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - said to the user, not tested
        raise UsageError("the digits demo needs scikit-learn (pip install scikit-learn): its 8x8 digits "
                         "ship inside the package") from None
    d = load_digits()
    x = (d.images.astype(np.float64) / 16.0) * 2.0 - 1.0
    return x.reshape(-1, 8, 8, 1), d.target.astype(np.int64)


def splits(seed: int = 0, test_fraction: float = 0.3) -> Dict[str, Split]:
    """The demo's three sets, from one seeded shuffle of the dataset:

    ``pretrain``: the training images of digits 0-4 (host pretraining);
    ``train``: the training images of all ten digits (on-device fine-tuning);
    ``test``: the remaining images of all ten digits (never trained on)."""
    x, y = load_digits_data()
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(len(y) * test_fraction))
    test, train = order[:n_test], order[n_test:]
    low = train[y[train] < 5]
    return {"pretrain": Split(x[low], y[low]), "train": Split(x[train], y[train]), "test": Split(x[test], y[test])}


# ------------------------------------------------------------------ float layers
def _same(n: int, k: int, s: int) -> Tuple[int, int, int]:
    """(output size, pad before, pad after) of TFLite's SAME padding."""
    out = -(-n // s)
    total = max((out - 1) * s + k - n, 0)
    return out, total // 2, total - total // 2


class _Conv:
    """A float convolution (``depthwise`` or not), SAME padding, NHWC, with its backward."""

    def __init__(self, rng, cin: int, cout: int, k: int, stride: int, depthwise: bool, relu: bool):
        self.k, self.s, self.dw, self.relu = k, stride, depthwise, relu
        fan_in = k * k * (1 if depthwise else cin)
        shape = (1, k, k, cout) if depthwise else (cout, k, k, cin)
        self.params = {"w": rng.normal(0.0, np.sqrt(2.0 / fan_in), size=shape), "b": np.zeros(cout)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        k, s = self.k, self.s
        oh, pt, pb = _same(h, k, s)
        ow, pl, pr = _same(w, k, s)
        xp = np.pad(x, ((0, 0), (pt, pb), (pl, pr), (0, 0)))
        # [N, oh, ow, k*k, C]: the taps in (kh, kw) order, as an OHWI filter row holds them
        cols = np.stack([xp[:, i:i + s * oh:s, j:j + s * ow:s, :] for i in range(k) for j in range(k)], axis=3)
        wt = self.params["w"]
        if self.dw:
            y = np.einsum("nhwkc,kc->nhwc", cols, wt.reshape(k * k, c))
        else:
            y = cols.reshape(n, oh, ow, -1) @ wt.reshape(wt.shape[0], -1).T
        y = y + self.params["b"]
        if self.relu:
            y = np.maximum(y, 0.0)
        self._cache = (x.shape, xp.shape, (pt, pl), cols, y)
        return y

    def backward(self, gy: np.ndarray) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        shape, pshape, (pt, pl), cols, y = self._cache
        n, h, w, c = shape
        k, s = self.k, self.s
        if self.relu:
            gy = gy * (y > 0)
        oh, ow = gy.shape[1:3]
        wt = self.params["w"]
        if self.dw:
            gw = np.einsum("nhwkc,nhwc->kc", cols, gy).reshape(wt.shape)
            gcols = np.einsum("nhwc,kc->nhwkc", gy, wt.reshape(k * k, c))
        else:
            cout = wt.shape[0]
            gw = (gy.reshape(-1, cout).T @ cols.reshape(-1, k * k * c)).reshape(wt.shape)
            gcols = (gy.reshape(-1, cout) @ wt.reshape(cout, -1)).reshape(n, oh, ow, k * k, c)
        gxp = np.zeros(pshape)
        for idx in range(k * k):
            i, j = divmod(idx, k)
            gxp[:, i:i + s * oh:s, j:j + s * ow:s, :] += gcols[:, :, :, idx, :]
        return gxp[:, pt:pt + h, pl:pl + w, :], {"w": gw, "b": gy.sum(axis=(0, 1, 2))}


class _Dense:
    """A float fully connected layer over the flattened input, with its backward."""

    def __init__(self, rng, fin: int, units: int):
        self.params = {"w": rng.normal(0.0, np.sqrt(2.0 / fin), size=(units, fin)), "b": np.zeros(units)}

    def forward(self, x: np.ndarray) -> np.ndarray:
        self._cache = x.shape
        self._x = x.reshape(len(x), -1)
        return self._x @ self.params["w"].T + self.params["b"]

    def backward(self, gy: np.ndarray) -> Tuple[np.ndarray, Dict[str, np.ndarray]]:
        gx = (gy @ self.params["w"]).reshape(self._cache)
        return gx, {"w": gy.T @ self._x, "b": gy.sum(axis=0)}


#: The backbone: (kind, output channels, kernel, stride); every layer has a ReLU.
BACKBONE = (("conv", 16, 3, 1), ("dw", 16, 3, 2), ("conv", 32, 1, 1), ("dw", 32, 3, 2), ("conv", 32, 1, 1))


class DigitsNet:
    """The demo's float CNN: :data:`BACKBONE` on 8x8x1, flattened, then a ``classes``-way
    fully connected head (logits)."""

    def __init__(self, classes: int, seed: int = 0):
        rng = np.random.default_rng(seed)
        self.layers: List = []
        c, hw = 1, 8
        for kind, cout, k, s in BACKBONE:
            self.layers.append(_Conv(rng, c, cout, k, s, kind == "dw", relu=True))
            c, hw = cout, -(-hw // s)
        self.features = hw * hw * c
        self.layers.append(_Dense(rng, self.features, classes))

    def logits(self, x: np.ndarray) -> np.ndarray:
        """Float logits of images [N, 8, 8, 1]."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def accuracy(self, split: Split) -> float:
        """Top-1 accuracy on a split."""
        return float((self.logits(split.x).argmax(axis=1) == split.y).mean())


def _softmax_ce(logits: np.ndarray, labels: np.ndarray) -> Tuple[float, np.ndarray]:
    z = logits - logits.max(axis=1, keepdims=True)
    p = np.exp(z)
    p /= p.sum(axis=1, keepdims=True)
    n = len(labels)
    loss = float(-np.log(p[np.arange(n), labels] + 1e-12).mean())
    p[np.arange(n), labels] -= 1.0
    return loss, p / n


def pretrain(data: Split, classes: int = 5, epochs: int = 30, batch: int = 32, lr: float = 3e-3,
             seed: int = 0) -> DigitsNet:
    """Train :class:`DigitsNet` in float on ``data`` (Adam, softmax cross-entropy)."""
    if data.y.max() >= classes:
        raise UsageError(f"pretrain: labels up to {int(data.y.max())} for a {classes}-way head")
    net = DigitsNet(classes, seed)
    rng = np.random.default_rng(seed + 1)
    state = [{k: (np.zeros_like(v), np.zeros_like(v)) for k, v in layer.params.items()} for layer in net.layers]
    b1, b2, t = 0.9, 0.999, 0
    for _ in range(epochs):
        order = rng.permutation(len(data.y))
        for start in range(0, len(order), batch):
            idx = order[start:start + batch]
            _, g = _softmax_ce(net.logits(data.x[idx]), data.y[idx])
            t += 1
            for layer, st in zip(reversed(net.layers), reversed(state)):
                g, grads = layer.backward(g)
                for k, gk in grads.items():
                    m, v = st[k]
                    m[...] = b1 * m + (1 - b1) * gk
                    v[...] = b2 * v + (1 - b2) * gk * gk
                    layer.params[k] -= lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + 1e-8)
    return net


def export_int8(net: DigitsNet, calibration: np.ndarray, head_classes: Optional[int] = None, seed: int = 0,
                softmax: bool = True, logits_range: Optional[Tuple[float, float]] = None,
                head_std: Optional[float] = None) -> bytes:
    """The network as an int8 TFLite model (per-channel weights, activations calibrated on
    ``calibration`` images [N, 8, 8, 1]). With ``head_classes`` the trained head is replaced
    by a new ``head_classes``-way one (zero bias; weights of deviation ``head_std``, He's by
    default): the model to fine-tune. ``logits_range`` fixes the logits' quantization instead
    of calibrating it: a model that will be trained needs room there, since a logit at its
    clamp passes no gradient."""
    from ..modelgen.quantized_ops import QuantizedGraph, choose_qparams

    calibration = np.asarray(calibration, np.float64)
    g = QuantizedGraph(seed=seed, samples=len(calibration), description="tinyengine-tvm digits demo")
    x = g.input((1, 8, 8, 1), -1.0, 1.0, dtype="int8", name="image",
                values=calibration.reshape(-1, 1, 8, 8, 1))
    names = iter(("stem", "dw1", "pw1", "dw2", "pw2"))
    for layer in net.layers[:-1]:
        p = layer.params
        if layer.dw:
            x = g.depthwise_conv2d(x, (layer.k, layer.k), (layer.s, layer.s), (1, 1), "SAME", 1, "RELU",
                                   prefix=next(names), weights=p["w"], bias=p["b"])
        else:
            x = g.conv2d(x, p["w"].shape[0], (layer.k, layer.k), (layer.s, layer.s), (1, 1), "SAME", "RELU",
                         prefix=next(names), weights=p["w"], bias=p["b"])
    x = g.reshape(x, (1, net.features), prefix="flatten")
    head = net.layers[-1].params
    if head_classes is None:
        w, b = head["w"], head["b"]
    else:
        std = head_std if head_std is not None else np.sqrt(2.0 / net.features)
        w = np.random.default_rng(seed + 7).normal(0.0, std, size=(head_classes, net.features))
        b = np.zeros(head_classes)
    qparams = choose_qparams(*logits_range) if logits_range is not None else None
    x = g.fully_connected(x, w.shape[0], per_channel=True, prefix="head", qparams=qparams, weights=w, bias=b)
    if softmax:
        x = g.softmax(x, prefix="probs")
    return g.finish([x])


def to_int8(x: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Images quantized like the model's input."""
    return np.clip(np.round(x / scale) + zero_point, -128, 127).astype(np.int8)


def finetune(compiled, data: Split, epochs: int, seed: int = 0, evaluate=None) -> List[float]:
    """SGD one sample at a time through a compiled training step's ``train_step`` (host build,
    :class:`~.compile.CompiledTraining`); returns each epoch's mean loss; ``evaluate()`` (if
    given) is called after every epoch."""
    d = compiled.metadata["inputs"][0]
    xq = to_int8(data.x, d["scale"], d["zero_point"])
    rng = np.random.default_rng(seed)
    losses = []
    for _ in range(epochs):
        order = rng.permutation(len(data.y))
        losses.append(float(np.mean([compiled.train_step(xq[i], int(data.y[i])) for i in order])))
        if evaluate is not None:
            evaluate()
    return losses


def accuracy(compiled, data: Split) -> float:
    """Accuracy of a compiled model's ``invoke`` (its current parameters) on a split."""
    d = compiled.metadata["inputs"][0]
    xq = to_int8(data.x, d["scale"], d["zero_point"])
    return float(np.mean([int(np.argmax(compiled.invoke(xq[i]))) == int(data.y[i]) for i in range(len(data.y))]))


__all__ = ["BACKBONE", "DigitsNet", "Split", "accuracy", "export_int8", "finetune", "load_digits_data", "pretrain",
           "splits", "to_int8"]
