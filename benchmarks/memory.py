#!/usr/bin/env python3
"""Peak SRAM of every model in ../shared/models: TFLM, bounds, and each optimization step.

Every figure is an arena in bytes (inputs, activations, outputs and scratch,
the int8 input image held in SRAM while it is needed):
  tflm head   TFLM's planned activations, measured with tflite-micro's allocation report
  layerwise   max over ops of (non-constant inputs + output) after PAD folding, reshapes as
              views: the least a layer-by-layer schedule needs without in-place or patches
  none        this project, integer lowering only
  +sched      + FoldPadIntoConv + MemoryAwareSchedule (and the planner's best packing)
  +inplace    + InplaceDepthwise + InplaceElementwise
  +patch      + PatchBasedInference (all passes on; split op index, n x n, extra MACs)
  +patch m7   the same with the Cortex-M7 kernels selected (their scratch included)
  streamed    +patch with the input image outside the arena (a caller that supplies each
              patch's window, e.g. from a camera line buffer): what streaming would save
A second table gives the patch configuration and an estimate (from the patch windows; the
generated code recomputes halos) of caching halo columns between horizontally adjacent patches.
Usage: python benchmarks/memory.py [MODEL ...]
"""
import argparse
import os
import sys
import time

import tinyengine_tvm as te
from tinyengine_tvm.kernel_graph import KernelGraph
from tinyengine_tvm.kernels import steps_scratch
from tinyengine_tvm.planner.bounds import layerwise_lower_bound
from tinyengine_tvm.planner.lifetime_planner import plan_arena
from tinyengine_tvm.testing import SHARED_MODELS, shared_models_dir, tflm_arena_head
from tinyengine_tvm.transform.fold_pad import FoldPadIntoConv

VARIANTS = {
    "none": dict(optimize=False),
    "+sched": dict(disabled_passes=["InplaceDepthwise", "InplaceElementwise", "PatchBasedInference"]),
    "+inplace": dict(disabled_passes=["PatchBasedInference"]),
    "+patch": dict(),
    "+patch m7": dict(core="cortex-m7"),
}


def streamed_arena(compiled) -> int:
    """Arena of the compiled plan when the model input lives outside it."""
    graph = compiled.graph
    scratch = steps_scratch(graph.steps)
    inputs = {graph.root(t) for t in graph.inputs}
    # Re-plan with the input's lifetime emptied: its bytes are the caller's.
    for t in inputs:
        graph.tensors[t].shape = [0]
    try:
        return plan_arena(graph, scratch).arena_bytes
    finally:
        for t, desc in zip(sorted(inputs), compiled.metadata["inputs"]):
            graph.tensors[t].shape = list(desc["shape"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=SHARED_MODELS)
    args = parser.parse_args(argv)
    d = shared_models_dir()
    if d is None:
        print("../shared/models not found (set TINYENGINE_SHARED_MODELS)", file=sys.stderr)
        return 1
    cols = ["tflm head", "layerwise"] + list(VARIANTS) + ["streamed"]
    header = f"{'model':<24}" + "".join(f"{c:>11}" for c in cols) + f"{'weights':>10}{'compile s':>11}"
    print(header)
    print("-" * len(header))
    patches = {}
    for name in args.models:
        path = os.path.join(d, f"{name}.tflite")
        row = {"tflm head": tflm_arena_head(open(path, "rb").read())}
        compiled = {}
        for label, kwargs in VARIANTS.items():
            t0 = time.perf_counter()
            compiled[label] = te.compile(path, **kwargs)
            seconds = time.perf_counter() - t0
            row[label] = compiled[label].metadata["memory"]["arena_bytes"]
        folded = FoldPadIntoConv()(compiled["none"].lowered)
        row["layerwise"] = layerwise_lower_bound(KernelGraph.from_relax(folded["main"]))
        row["streamed"] = streamed_arena(compiled["+patch"])
        patches[name] = {p["name"]: p for p in compiled["+patch"].metadata["passes"]}["PatchBasedInference"]
        weights = compiled["none"].metadata["memory"]["weights_bytes"]
        print(f"{name:<24}" + "".join(f"{row[c]:>11,}" if row[c] is not None else f"{'n/a':>11}" for c in cols)
              + f"{weights:>10,}{seconds:>11.2f}")
    print("\nArena figures include the int8 input image while it is needed; 'compile s' is the "
          "all-passes compile time.\n")
    print(f"{'model':<24}{'split op':>9}{'grid':>6}{'+MACs':>8}{'+MACs, halo cache (est.)':>26}{'cache B':>9}")
    for name, p in patches.items():
        if not p["applied"]:
            print(f"{name:<24}  not applied: {p['reason']}")
            continue
        print(f"{name:<24}{p['split_index']:>9}{p['patches']:>4}x{p['patches']}{p['mac_overhead']:>8.1%}"
              f"{p['halo_cache_mac_overhead']:>26.1%}{p['halo_cache_bytes']:>9,}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
