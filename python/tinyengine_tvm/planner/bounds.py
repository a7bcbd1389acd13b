"""Reference memory figures a plan is compared against."""
from __future__ import annotations

from ..kernel_graph import KernelGraph


def layerwise_lower_bound(graph: KernelGraph) -> int:
    """max over steps of (bytes of its non-constant inputs + bytes of its output).

    The least any layer-by-layer schedule needs without in-place or patch-based
    execution; model inputs and outputs count (they must exist while used).
    """
    best = 0
    for step in graph.steps:
        roots = {graph.root(i) for i in step.inputs if graph.tensors[i].kind != "constant"}
        roots.add(graph.root(step.output))
        best = max(best, sum(graph.tensors[r].nbytes for r in roots))
    return best
