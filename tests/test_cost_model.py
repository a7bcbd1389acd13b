"""The per-layer cost model of ``tvmc tune`` (tinyengine_tvm.tune): features and
signatures of steps, the XGBoost regressor (fit, predict, update, save/load),
Spearman's rank correlation, and the models shipped for Cortex-M7 and M4.

The last test measures one small model on QEMU (skipped, with the reason,
without arm-none-eabi-gcc and qemu-system-arm)."""
import json
import os

import numpy as np
import pytest

import tinyengine_tvm as te
from tinyengine_tvm.errors import TinyEngineError
from tinyengine_tvm.kernels import KERNELS
from tinyengine_tvm.modelgen.quantized_ops import QuantizedGraph
from tinyengine_tvm.modelgen.zoo import classifier_tail, inverted_residual
from tinyengine_tvm.runtime import firmware
from tinyengine_tvm.tune import LayerCostModel, graph_layers, layer_features, layer_signature, shipped, spearman
from tinyengine_tvm.tune.cost_model import shipped_path
from tinyengine_tvm.tune.features import KERNEL_NAMES, LATER_KERNELS

MISSING = firmware.missing_tools()
needs_qemu = pytest.mark.skipif(bool(MISSING), reason=f"{', '.join(MISSING)} not found: run "
                                                      "scripts/install_arm_toolchain.sh for the QEMU cost model test")

#: The shipped models rank the layers of the unseen model below (59 distinct
#: layers) with Spearman 0.997 (Cortex-M7 and M4), and predict its total within
#: 0.2% (M7) and 3% (M4), as measured when they were trained (scripts/train_cost_model.py:
#: leave-one-model-out 0.980 / 0.981 over 10 models); a retrained model that
#: ranks them clearly worse fails here.
SHIPPED_RHO_MIN = 0.95
SHIPPED_TOTAL_TOLERANCE = 0.2


def _two_layer_model(seed, channels, tail_channels, low=-1.0):
    """int8 [1,16,16,8] (values from ``low`` to 1) -> 1x1 conv to ``channels`` -> 3x3 conv to ``tail_channels``."""
    g = QuantizedGraph(seed, 2)
    x = g.input((1, 16, 16, 8), low, 1.0, name="input")
    x = g.conv2d(x, channels, (1, 1), (1, 1), (1, 1), "SAME", "RELU6", True, prefix="a")
    x = g.conv2d(x, tail_channels, (3, 3), (2, 2), (1, 1), "SAME", "NONE", True, prefix="b")
    return g.finish(x)


def _compile(data, **kw):
    return te.compile(data, core="cortex-m7", disabled_passes=["PatchBasedInference"], **kw)


@pytest.fixture(scope="module")
def graphs():
    """Three models: the first two share their first layer (other weights and
    quantization: other seed, input range and second layer), the third's first
    layer has more output channels."""
    return [_compile(_two_layer_model(*a)) for a in ((1, 16, 8), (2, 16, 24, -0.3), (1, 24, 8))]


def _first_conv(cm):
    return next(i for i, s in enumerate(cm.graph.steps) if "conv2d" in s.kernel)


def test_same_layer_same_signature_and_features_in_two_models(graphs):
    a, b, c = graphs
    ia, ib, ic = _first_conv(a), _first_conv(b), _first_conv(c)
    # Their requantization differs (other seeds): only the work's shape may count.
    assert a.graph.steps[ia].attrs != b.graph.steps[ib].attrs
    assert layer_signature(a.graph, ia) == layer_signature(b.graph, ib)
    assert layer_features(a.graph, ia) == layer_features(b.graph, ib)
    # Stable: computed again, the same; 16 hex digits.
    assert layer_signature(a.graph, ia) == layer_signature(a.graph, ia)
    assert len(layer_signature(a.graph, ia)) == 16 and int(layer_signature(a.graph, ia), 16) >= 0
    # One shape differs (output channels): signature and features differ.
    assert layer_signature(c.graph, ic) != layer_signature(a.graph, ia)
    fa, fc = layer_features(a.graph, ia), layer_features(c.graph, ic)
    assert fa["out_c"] == 16 and fc["out_c"] == 24 and fc["macs"] == 1.5 * fa["macs"]
    # The second layers differ in output channels too.
    assert layer_signature(a.graph, ia + 1) != layer_signature(b.graph, ib + 1)


def test_features_are_shape_like_and_match_the_metadata(graphs):
    cm = graphs[0]
    layers = graph_layers(cm.graph)
    assert len(layers) == len(cm.graph.steps) == len(cm.metadata["ops"])
    for (sig, f), step, op in zip(layers, cm.graph.steps, cm.metadata["ops"]):
        assert f["macs"] == op["macs"]                      # the metadata's MAC count
        assert f[f"kernel={step.kernel}"] == 1.0 and f["kernel_code"] == KERNEL_NAMES.index(step.kernel)
        # codes are sorted kernel names, the kernels added after the shipped models were trained
        # last (the shipped models' rows keep the codes they were trained with)
        assert KERNEL_NAMES == tuple(sorted(set(KERNELS) - set(LATER_KERNELS))) + LATER_KERNELS
        assert f["dsp"] == float(step.kernel.startswith("te_arm_"))
        assert all(isinstance(v, float) for v in f.values())
        for name in f:
            # No requantization number, zero point or clamp leaks into the features.
            low = name.lower()
            assert not any(w in low for w in ("shift", "offset", "zero_point", "scale", "act_m")), name
            assert "multiplier" not in low or name == "attr_depth_multiplier", name
    i = _first_conv(cm)
    f = layers[i][1]
    assert (f["in0_h"], f["in0_w"], f["in0_c"], f["out_c"], f["attr_kernel_h"], f["attr_stride_h"]) == \
        (16, 16, 8, 16, 1, 1)
    assert f["in0_bits"] == 8 and f["patch"] == 0 and f["bytes_written"] == 16 * 16 * 16


def _synthetic(n, seed):
    """Rows of three kernel families whose cost is a different per-MAC price
    times the work plus a fixed call overhead, with 5% noise."""
    rng = np.random.default_rng(seed)
    rows, costs = [], []
    price = {"te_conv2d_s8": 9.0, "te_arm_conv2d_s8": 2.5, "te_depthwise_conv2d_s8": 14.0}
    for _ in range(n):
        k = list(price)[rng.integers(3)]
        h, c, oc, kh = int(rng.integers(2, 48)), int(rng.integers(1, 64)), int(rng.integers(1, 64)), \
            int(rng.choice([1, 3, 5]))
        macs = h * h * c * kh * kh * (oc if "depthwise" not in k else 1)
        rows.append({f"kernel={k}": 1.0, "in0_h": h, "in0_w": h, "in0_c": c, "out_c": oc, "attr_kernel_h": kh,
                     "macs": float(macs), "dsp": float(k.startswith("te_arm"))})
        costs.append((price[k] * macs + 300.0) * rng.uniform(0.95, 1.05))
    return rows, np.array(costs)


@pytest.fixture(scope="module")
def synthetic_model():
    rows, costs = _synthetic(400, 0)
    return LayerCostModel("cortex-m7").fit(rows, costs)


def test_fit_recovers_the_order_of_held_out_rows(synthetic_model):
    rows, costs = _synthetic(150, 1)
    pred = synthetic_model.predict(rows)
    assert pred.shape == (150,) and (pred >= 0).all()
    assert spearman(pred, costs) > 0.9
    # Within a factor of 2 for most rows (log-cost regression, not just ranks).
    assert np.median(np.abs(np.log(pred / costs))) < np.log(2)


def test_fit_is_deterministic():
    rows, costs = _synthetic(120, 2)
    a = LayerCostModel().fit(rows, costs).predict(rows[:20])
    b = LayerCostModel().fit(rows, costs).predict(rows[:20])
    np.testing.assert_array_equal(a, b)


def test_save_load_round_trip_predicts_identically(synthetic_model, tmp_path):
    path = str(tmp_path / "m.json")
    synthetic_model.meta["models"] = ["x"]
    synthetic_model.save(path)
    doc = json.load(open(path))
    assert doc["core"] == "cortex-m7" and doc["meta"]["rows"] == 400 and doc["meta"]["models"] == ["x"]
    assert doc["feature_names"] == synthetic_model.feature_names and "learner" in doc["xgboost_model"]
    loaded = LayerCostModel.load(path)
    rows, _ = _synthetic(50, 3)
    np.testing.assert_array_equal(loaded.predict(rows), synthetic_model.predict(rows))
    assert loaded.core == "cortex-m7" and len(loaded.rows) == 400
    # The training rows survive the sparse encoding (zeros dropped, read back as 0).
    np.testing.assert_array_equal(loaded._matrix(loaded.rows), synthetic_model._matrix(synthetic_model.rows))
    doc["features_version"] = -1
    with pytest.raises(TinyEngineError, match="features version -1"):
        LayerCostModel.from_json(doc)


def test_update_moves_predictions_toward_new_measurements(synthetic_model, tmp_path):
    # A copy (through save/load) so the module's model stays as fit.
    synthetic_model.save(str(tmp_path / "m.json"))
    model = LayerCostModel.load(str(tmp_path / "m.json"))
    rows = [r for r in _synthetic(400, 0)[0] if "kernel=te_arm_conv2d_s8" in r][:40]
    before = model.predict(rows)
    measured = before * 4.0        # the user's board is 4x slower on this kernel
    model.update(rows, measured)
    after = model.predict(rows)
    assert len(model.rows) == 400  # the same layers measured again replace their old rows
    assert np.all(np.abs(np.log(after / measured)) < np.abs(np.log(before / measured)))
    assert np.median(after / before) > 2.5
    with pytest.raises(TinyEngineError, match="2 feature rows but 1 costs"):
        model.update(rows[:2], [1.0])


def test_spearman():
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # Monotone but not linear: still 1.
    assert spearman([1, 2, 3, 4, 5], [1, 8, 27, 64, 1e6]) == pytest.approx(1.0)
    # Ties take their mean rank: ranks (1, 2.5, 2.5, 4) against (1, 2, 3, 4): r = 4.5 / sqrt(4.5 * 5).
    assert spearman([1, 2, 2, 3], [1, 2, 3, 4]) == pytest.approx(4.5 / np.sqrt(4.5 * 5))
    assert np.isnan(spearman([1, 1, 1], [1, 2, 3])) and np.isnan(spearman([1], [2]))
    with pytest.raises(ValueError):
        spearman([1, 2], [1, 2, 3])


def test_unfitted_model_says_so():
    with pytest.raises(TinyEngineError, match="not trained"):
        LayerCostModel().predict([{"macs": 1.0}])


@pytest.mark.parametrize("core", ["cortex-m7", "cortex-m4"])
def test_shipped_models_load(core):
    path = shipped_path(core)
    assert os.path.getsize(path) < 1024 * 1024
    model = shipped(core)
    assert model.core == core and model.meta["unit"] == "instructions"
    assert model.meta["rows"] == len(model.rows) > 1000
    # Trained on writer-built models only, never on ../shared's.
    assert not any("shared" in m for m in model.meta["models"])
    assert shipped("cortex-m0") is None


def _unseen_model():
    """A small writer-built CNN no training run has (its own seed and layout)."""
    g = QuantizedGraph(97, 2)
    x = g.input((1, 36, 36, 3), -1.0, 1.0, name="input")
    x = g.conv2d(x, 12, (3, 3), (2, 2), (1, 1), "SAME", "RELU6", True, prefix="stem")
    x = inverted_residual(g, x, 20, 4, 5, 2, "b1")
    x = inverted_residual(g, x, 20, 3, 3, 1, "b2")
    x = inverted_residual(g, x, 28, 5, 7, 2, "b3", se_ratio=0.25)
    x = classifier_tail(g, x, 7)
    return g.finish(x)


@needs_qemu
@pytest.mark.parametrize("core,board", [("cortex-m7", "mps2-an500"), ("cortex-m4", "mps2-an386")])
def test_shipped_model_ranks_an_unseen_models_layers(core, board, tmp_path):
    """Profile a model the cost model never saw on QEMU and rank its layers."""
    from tinyengine_tvm.runtime.device import QemuUartRunner
    from tinyengine_tvm.testing import random_inputs

    cm = te.compile(_unseen_model(), core=core)
    cm.export(str(tmp_path / "p"))
    with QemuUartRunner(str(tmp_path / "p"), board, str(tmp_path / "b"), profile=True) as runner:
        runner.run(random_inputs(cm.metadata["inputs"], 0), number=1)
        prof = runner.profile()
    model = shipped(core)
    layers = graph_layers(cm.graph)
    by_sig = {}
    for (sig, f), step in zip(layers, prof.steps):
        by_sig.setdefault(sig, (f, []))[1].append(step.cost)
    feats = [f for f, _ in by_sig.values()]
    measured = np.array([np.mean(c) for _, c in by_sig.values()])
    pred = model.predict(feats)
    rho = spearman(pred, measured)
    assert len(by_sig) > 40 and rho > SHIPPED_RHO_MIN, rho
    # The whole inference: the steps' predictions add up to near the measured total.
    total = model.predict_total(cm.graph)
    assert abs(total - prof.steps_total) < SHIPPED_TOTAL_TOLERANCE * prof.steps_total, (total, prof.steps_total)
