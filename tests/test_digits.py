"""The training demo's data and host pretraining (training/digits.py): scikit-learn's
bundled 8x8 digits, a float CNN trained with NumPy on digits 0-4, and its int8 export
through the project's writer, bit-exact with TFLM when compiled."""
import numpy as np
import pytest

pytest.importorskip("sklearn", reason="scikit-learn is not installed (pip install scikit-learn)")

import tinyengine_tvm as te  # noqa: E402
from tinyengine_tvm.training import digits  # noqa: E402


@pytest.fixture(scope="module")
def data():
    return digits.splits(seed=0)


@pytest.fixture(scope="module")
def net(data):
    return digits.pretrain(data["pretrain"], epochs=12, seed=0)


def test_the_splits_are_disjoint_and_the_pretraining_set_holds_digits_0_to_4(data):
    x, _ = digits.load_digits_data()
    assert x.shape == (1797, 8, 8, 1) and x.min() == -1.0 and x.max() == 1.0
    assert len(data["train"].y) + len(data["test"].y) == 1797
    assert set(np.unique(data["pretrain"].y)) == {0, 1, 2, 3, 4}
    assert set(np.unique(data["test"].y)) == set(range(10))
    seen = {a.tobytes() for a in data["train"].x}
    assert sum(a.tobytes() in seen for a in data["test"].x) <= 2  # the dataset has a few duplicate images


def test_the_float_backward_matches_finite_differences():
    from tinyengine_tvm.training.digits import _Conv, _Dense

    rng = np.random.default_rng(1)
    for layer, x in ((_Conv(rng, 3, 4, 3, 2, False, relu=False), rng.normal(size=(2, 5, 5, 3))),
                     (_Conv(rng, 3, 3, 3, 2, True, relu=False), rng.normal(size=(2, 5, 5, 3))),
                     (_Dense(rng, 12, 4), rng.normal(size=(2, 12)))):
        gy = rng.normal(size=layer.forward(x).shape)
        gx, grads = layer.backward(gy)
        h = 1e-6
        for _ in range(5):
            i = tuple(rng.integers(0, d) for d in x.shape)
            xp, xm = x.copy(), x.copy()
            xp[i] += h
            xm[i] -= h
            num = ((layer.forward(xp) - layer.forward(xm)) * gy).sum() / (2 * h)
            assert np.isclose(gx[i], num, rtol=1e-5, atol=1e-7)
        w = layer.params["w"]
        j = tuple(rng.integers(0, d) for d in w.shape)
        w[j] += h
        up = (layer.forward(x) * gy).sum()
        w[j] -= 2 * h
        down = (layer.forward(x) * gy).sum()
        w[j] += h
        assert np.isclose(grads["w"][j], (up - down) / (2 * h), rtol=1e-5, atol=1e-7)


def test_pretraining_learns_digits_0_to_4(data, net):
    test = data["test"]
    low = test.y < 5
    acc = float((net.logits(test.x[low]).argmax(axis=1) == test.y[low]).mean())
    assert acc >= 0.9, acc  # chance is 0.2


def test_the_int8_export_compiles_bit_exact_with_tflm_and_keeps_its_accuracy(data, net, tflm):
    from tinyengine_tvm.testing import assert_matches_tflm

    model = digits.export_int8(net, data["pretrain"].x[:100])
    compiled = te.compile(model)
    q = compiled.metadata["inputs"][0]
    test = data["test"]
    low = np.flatnonzero(test.y < 5)[:40]
    xs = [np.clip(np.round(test.x[i] / q["scale"] + q["zero_point"]), -128, 127).astype(np.int8)
          .reshape(q["shape"]) for i in low]
    assert_matches_tflm(compiled, model, [[x] for x in xs[:4]])
    preds = [int(np.argmax(list(compiled.run([x]).values())[0])) for x in xs]
    assert np.mean(np.array(preds) == test.y[low]) >= 0.85
    # The model to fine-tune: the same backbone, a new ten-way head.
    tuned = te.compile(digits.export_int8(net, data["train"].x[:100], head_classes=10))
    assert tuned.metadata["outputs"][0]["shape"] == [1, 10]


@pytest.fixture(scope="module")
def finetune_model(data):
    net = digits.pretrain(data["pretrain"], epochs=30, seed=0)
    return digits.export_int8(net, data["train"].x[:200], head_classes=10, logits_range=(-24.0, 24.0),
                              head_std=0.1)


SPARSE = {"biases": [-2, -1], "weights": [-1], "learning_rate": 0.01}


def test_finetuning_the_new_head_on_the_host_reaches_80_percent_in_64_kb(data, finetune_model):
    """The issue's bar on the host build: held-out accuracy from chance to >= 80% on all ten digits,
    with a training arena within 64 KB (and a full update several times larger)."""
    from tinyengine_tvm.training import compile_training

    compiled = compile_training(finetune_model, SPARSE, name="digits")
    mem = compiled.metadata["training"]["memory"]
    before = digits.accuracy(compiled, data["test"])
    losses = digits.finetune(compiled, data["train"], epochs=2)
    after = digits.accuracy(compiled, data["test"])
    assert before <= 0.2 and after >= 0.8 and losses[1] < losses[0], (before, after, losses)
    assert mem["arena_bytes"] <= 64 * 1024
    full = compile_training(finetune_model, {"biases": "all", "weights": list(range(6))}, name="digits_full")
    assert full.metadata["training"]["memory"]["arena_bytes"] >= 3 * mem["arena_bytes"]


def test_finetuning_on_qemu_follows_the_host_build(data, finetune_model):
    """One epoch on the emulated Cortex-M7, samples streamed by semihosting: the same losses and
    held-out accuracy as the host build of the same step (same sample order)."""
    from tinyengine_tvm.runtime import firmware
    from tinyengine_tvm.training import compile_training
    from tinyengine_tvm.training.qemu import train_on_qemu

    missing = firmware.missing_tools()
    if missing:
        pytest.skip(f"{', '.join(missing)} not found: run scripts/install_arm_toolchain.sh")
    compiled = compile_training(finetune_model, SPARSE, name="digits")
    d = compiled.metadata["inputs"][0]
    q = lambda s: (digits.to_int8(s.x, d["scale"], d["zero_point"]), s.y)  # noqa: E731
    r = train_on_qemu(compiled, q(data["train"]), q(data["test"]), epochs=1, seed=0)
    host_before = digits.accuracy(compiled, data["test"])
    host_losses = digits.finetune(compiled, data["train"], epochs=1, seed=0)
    host_after = digits.accuracy(compiled, data["test"])
    assert r["accuracy"][0] == pytest.approx(host_before, abs=2 / len(data["test"].y))
    assert r["accuracy"][1] == pytest.approx(host_after, abs=2 / len(data["test"].y))
    assert r["losses"][0] == pytest.approx(host_losses[0], rel=1e-3)
    assert r["accuracy"][1] > r["accuracy"][0] + 0.4 and r["instructions"] > 0


def test_the_scheme_chosen_under_an_sram_budget_by_measured_contribution(data, finetune_model):
    """MCUNetV3's contribution analysis on the digits: schemes scored by the validation accuracy a
    short fine-tune reaches (validation images come from the training split), grown greedily within
    the budget. The new head's weights are what pays, once they fit."""
    from tinyengine_tvm.training import compile_training
    from tinyengine_tvm.training.contribution import accuracy_contribution

    probe = compile_training(finetune_model, {"biases": [-1]}, name="probe")
    d = probe.metadata["inputs"][0]
    xq = digits.to_int8(data["train"].x, d["scale"], d["zero_point"])
    y = data["train"].y
    score = accuracy_contribution(finetune_model, (xq[:300], y[:300]), (xq[-200:], y[-200:]))
    head_weights = compile_training(finetune_model, {"biases": [-1], "weights": [-1]}, name="probe")
    need = head_weights.metadata["training"]["memory"]["arena_bytes"]
    small = compile_training(finetune_model, {"sram_budget": need - 1}, name="digits", contribution=score)
    roomy = compile_training(finetune_model, {"sram_budget": need + 600}, name="digits", contribution=score)
    for c, budget in ((small, need - 1), (roomy, need + 600)):
        sel = c.metadata["training"]["selection"]
        assert c.metadata["training"]["memory"]["arena_bytes"] <= budget
        assert all(t["fits"] == (t["arena_bytes"] <= budget) for t in sel["tried"])
    assert 5 not in small.metadata["training"]["selection"]["chosen"]["weights"]
    chosen = roomy.metadata["training"]["selection"]
    assert 5 in chosen["chosen"]["weights"]
    best = max(t["contribution"] for t in chosen["tried"] if t["fits"])
    mine = next(t["contribution"] for t in chosen["tried"] if t["config"] == chosen["chosen"])
    assert mine >= 0.6 and mine >= best - 0.05
