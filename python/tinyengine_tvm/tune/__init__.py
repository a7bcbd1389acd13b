"""Tuning: the per-layer cost model behind ``tvmc tune`` (features and an XGBoost regressor)."""
from .cost_model import LayerCostModel, shipped, spearman
from .features import graph_layers, layer_features, layer_signature

__all__ = ["LayerCostModel", "graph_layers", "layer_features", "layer_signature", "shipped", "spearman"]
