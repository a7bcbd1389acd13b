"""``tvmc tune``: memory and speed chosen together for one board.

The search space (:mod:`.space`), measurements on QEMU, an RPC farm or a
board on a serial port (:mod:`.measure`), tuning records (:mod:`.records`),
the per-layer features (:mod:`.features`) and XGBoost cost model
(:mod:`.cost_model`), the tuner (:mod:`.tuner`) and applying records at
compile time (:mod:`.apply`).
"""
from .cost_model import LayerCostModel, shipped, spearman
from .features import graph_layers, layer_features, layer_signature
from .records import best_record, load_records
from .space import TuningConfig, search_space
from .tuner import TuneResult, format_result, tune

__all__ = ["LayerCostModel", "TuneResult", "TuningConfig", "best_record", "format_result", "graph_layers",
           "layer_features", "layer_signature", "load_records", "search_space", "shipped", "spearman", "tune"]
