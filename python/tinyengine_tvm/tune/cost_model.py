"""LayerCostModel: an XGBoost regressor from per-layer features to per-layer cost.

The regressor predicts log(1 + cost) rather than cost: layer costs span six
orders of magnitude (an arena buffer costs nothing, a stem convolution
millions of instructions), and a squared error on raw costs would fit only the
few largest layers. What the tuner needs is the *order* of candidates, which
the log scale keeps for small and large layers alike (:func:`spearman`).

Saved as one JSON file: XGBoost's own JSON model, the list of feature names it
was trained on (features are read by name, so a model keeps working when
features are added), the rows it was trained on (so :meth:`update` can refit on
old plus new measurements) and metadata (core, version, row count).
"""
from __future__ import annotations

import json
import os
from typing import Dict, List, Optional, Sequence

import numpy as np

from ..errors import TinyEngineError
from .features import FEATURES_VERSION, graph_layers

#: Format of the saved file (bumped when the layout changes).
MODEL_FORMAT = 1

#: Fixed hyper-parameters: small trees, fixed seed, one thread (the
#: machines this runs on have 2 shared cores, where OpenMP threads waiting on
#: each other make a fit many times slower), so the same rows give the same model.
#: XGBRegressor's parameters, passed to xgboost's native ``train`` (the
#: scikit-learn wrapper would make scikit-learn a dependency for nothing).
#: 150 trees of depth 5: leave-one-model-out Spearman 0.980 on the training
#: models (0.983 with 300 trees of depth 6, at 1.4x the file size).
XGB_PARAMS = dict(n_estimators=150, max_depth=5, learning_rate=0.15, subsample=0.9, colsample_bytree=0.8,
                  min_child_weight=1.0, reg_lambda=1.0, objective="reg:squarederror", tree_method="hist",
                  random_state=0, n_jobs=1)


def _xgboost():
    try:
        import xgboost
    except ImportError as e:  # a base dependency; say which package provides it
        raise TinyEngineError("the cost model needs xgboost: pip install xgboost-cpu") from e
    return xgboost


def _ranks(x: np.ndarray) -> np.ndarray:
    """Ranks 1..n with ties given their mean rank (as Spearman's rho needs)."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    sorted_x = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and sorted_x[j + 1] == sorted_x[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman's rank correlation of ``a`` and ``b``: Pearson's correlation of
    their ranks (ties share their mean rank). NaN when either side is constant
    or has fewer than 2 values."""
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    if a.shape != b.shape:
        raise ValueError(f"spearman: {a.shape} and {b.shape} values")
    if len(a) < 2:
        return float("nan")
    ra, rb = _ranks(a), _ranks(b)
    ra -= ra.mean()
    rb -= rb.mean()
    den = np.sqrt((ra * ra).sum() * (rb * rb).sum())
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def _compact(v: float):
    """``v`` as the shortest JSON number that reads back as the same float32."""
    v32 = float(np.float32(v))
    if v32.is_integer() and abs(v32) < 2 ** 53:
        return int(v32)
    return float(f"{v32:.9g}")


def _row_key(features: Dict[str, float]) -> str:
    """A row's identity: its non-zero features at float32 precision (as a saved row keeps them)."""
    return json.dumps({n: _compact(v) for n, v in features.items() if v != 0}, sort_keys=True)


class LayerCostModel:
    """Predicts each layer's cost (instructions per inference on ``core``) from
    :func:`~tinyengine_tvm.tune.features.layer_features`."""

    def __init__(self, core: Optional[str] = None, params: Optional[dict] = None):
        self.core = core
        self.params = dict(XGB_PARAMS, **(params or {}))
        self.feature_names: List[str] = []
        self.rows: List[Dict[str, float]] = []    # training features, kept for update()
        self.costs: List[float] = []
        self.meta: Dict[str, object] = {}
        self._booster = None

    # ------------------------------------------------------------------ fit
    def _matrix(self, features_list: Sequence[Dict[str, float]]) -> np.ndarray:
        """Rows as a dense matrix over this model's feature names (a missing name is 0)."""
        x = np.zeros((len(features_list), len(self.feature_names)), dtype=np.float32)
        col = {n: j for j, n in enumerate(self.feature_names)}
        for i, f in enumerate(features_list):
            for name, v in f.items():
                j = col.get(name)
                if j is not None:
                    x[i, j] = v
        return x

    def fit(self, features_list: Sequence[Dict[str, float]], costs: Sequence[float]) -> "LayerCostModel":
        """Train on rows of features and their measured costs (replacing any earlier fit)."""
        if len(features_list) != len(costs):
            raise TinyEngineError(f"fit: {len(features_list)} feature rows but {len(costs)} costs")
        if not features_list:
            raise TinyEngineError("fit: no rows")
        costs = [float(c) for c in costs]
        if min(costs) < 0:
            raise TinyEngineError("fit: a cost is negative")
        self.rows = [dict(f) for f in features_list]
        self.costs = costs
        # Sorted names: the same rows give the same columns in any order of arrival.
        self.feature_names = sorted({n for f in self.rows for n in f})
        xgb = _xgboost()
        params = dict(self.params)
        rounds = int(params.pop("n_estimators"))
        params["seed"] = params.pop("random_state")
        params["nthread"] = params.pop("n_jobs")
        params["eta"] = params.pop("learning_rate")
        dtrain = xgb.DMatrix(self._matrix(self.rows), label=np.log1p(np.asarray(costs)),
                             feature_names=self.feature_names)
        self._booster = xgb.train(params, dtrain, num_boost_round=rounds)
        self.meta.update(rows=len(self.rows), features_version=FEATURES_VERSION, xgboost=xgb.__version__)
        return self

    def update(self, features_list: Sequence[Dict[str, float]], costs: Sequence[float]) -> "LayerCostModel":
        """Add the user's measurements and refit on the old rows plus these.

        A layer measured again (same features) keeps only its newest cost: the
        device it was measured on is the truth the model should move to."""
        if len(features_list) != len(costs):
            raise TinyEngineError(f"update: {len(features_list)} feature rows but {len(costs)} costs")
        new = {_row_key(f): (dict(f), float(c)) for f, c in zip(features_list, costs)}
        kept = [(f, c) for f, c in zip(self.rows, self.costs) if _row_key(f) not in new]
        both = kept + list(new.values())
        return self.fit([f for f, _ in both], [c for _, c in both])

    # -------------------------------------------------------------- predict
    def predict(self, features_list: Sequence[Dict[str, float]]) -> np.ndarray:
        """Predicted cost of each row (instructions per inference), >= 0."""
        if self._booster is None:
            raise TinyEngineError("the cost model is not trained: fit() or load() it first")
        if not features_list:
            return np.zeros(0)
        xgb = _xgboost()
        dm = xgb.DMatrix(self._matrix(features_list), feature_names=self.feature_names)
        return np.maximum(np.expm1(self._booster.predict(dm).astype(np.float64)), 0.0)

    def predict_graph(self, graph) -> np.ndarray:
        """Predicted cost of every step of ``graph`` (a KernelGraph), in step order."""
        return self.predict([f for _, f in graph_layers(graph)])

    def predict_total(self, graph) -> float:
        """Predicted cost of one inference of ``graph``: its steps' predictions added up."""
        return float(self.predict_graph(graph).sum())

    # ------------------------------------------------------------ save/load
    def to_json(self) -> dict:
        """The model as a JSON-able dict (see the module docstring)."""
        if self._booster is None:
            raise TinyEngineError("the cost model is not trained: nothing to save")
        raw = self._booster.save_raw(raw_format="json")
        # Rows sparse, as flat [column, value, column, value, ...] over
        # feature_names, integers written as such, values to float32 precision
        # (what the model sees): a row sets ~40 of ~250 columns, and the file
        # ships in the package.
        col = {n: j for j, n in enumerate(self.feature_names)}
        rows = []
        for f in self.rows:
            flat = []
            for j, v in sorted((col[n], v) for n, v in f.items() if n in col and v != 0):
                flat += [j, _compact(v)]
            rows.append(flat)
        return {"format": MODEL_FORMAT, "core": self.core, "features_version": FEATURES_VERSION,
                "meta": self.meta, "params": self.params, "feature_names": self.feature_names,
                "rows": rows, "costs": self.costs, "xgboost_model": json.loads(bytes(raw).decode())}

    def save(self, path: str) -> None:
        """Write :meth:`to_json` to ``path`` (through a temporary file: never half-written)."""
        tmp = f"{path}.tmp-{os.getpid()}"
        with open(tmp, "w") as f:
            json.dump(self.to_json(), f, separators=(",", ":"))
        os.replace(tmp, path)

    @classmethod
    def from_json(cls, doc: dict) -> "LayerCostModel":
        """A model from :meth:`to_json`'s dict."""
        if doc.get("format") != MODEL_FORMAT:
            raise TinyEngineError(f"cost model format {doc.get('format')}, this version reads {MODEL_FORMAT}")
        if doc.get("features_version") != FEATURES_VERSION:
            raise TinyEngineError(f"the cost model was trained on features version {doc.get('features_version')}, "
                                  f"this version computes {FEATURES_VERSION}: retrain it "
                                  "(scripts/train_cost_model.py)")
        m = cls(doc.get("core"), doc.get("params"))
        m.feature_names = list(doc["feature_names"])
        m.rows = [{m.feature_names[r[k]]: float(r[k + 1]) for k in range(0, len(r), 2)} for r in doc.get("rows", [])]
        m.costs = [float(c) for c in doc.get("costs", [])]
        m.meta = dict(doc.get("meta", {}))
        xgb = _xgboost()
        booster = xgb.Booster(params={"nthread": m.params.get("n_jobs", 2)})
        booster.load_model(bytearray(json.dumps(doc["xgboost_model"]).encode()))
        booster.feature_names = m.feature_names
        m._booster = booster
        return m

    @classmethod
    def load(cls, path: str) -> "LayerCostModel":
        """Read a model :meth:`save` wrote."""
        with open(path) as f:
            return cls.from_json(json.load(f))


def shipped_path(core: str) -> str:
    """Where the package keeps the trained model of ``core`` (whether or not it exists)."""
    return os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "data", "cost_model",
                        f"{core}.json")


def shipped(core: str) -> Optional[LayerCostModel]:
    """The cost model trained for ``core`` (cortex-m7, cortex-m4) that ships with
    the package (scripts/train_cost_model.py), or None for a core without one."""
    path = shipped_path(core)
    return LayerCostModel.load(path) if os.path.exists(path) else None
