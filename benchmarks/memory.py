#!/usr/bin/env python3
"""Peak SRAM of every model in ../shared/models, next to TFLM's and the layer-wise bound.

Columns:
  arena      bytes of this project's static arena: inputs, activations, outputs and scratch
  tflm head  TFLM's planned activation bytes, measured with tflite-micro's allocation report
  layerwise  max over ops of (non-constant inputs + output): the least a layer-by-layer
             schedule needs without in-place or patch-based execution
  weights    constant bytes (weights, bias, requantization tables)
Usage: python benchmarks/memory.py [MODEL ...]
"""
import argparse
import os
import sys
import time

import tinyengine_tvm as te
from tinyengine_tvm.kernel_graph import KernelGraph
from tinyengine_tvm.planner.bounds import layerwise_lower_bound
from tinyengine_tvm.testing import SHARED_MODELS, shared_models_dir, tflm_arena_head


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=SHARED_MODELS)
    args = parser.parse_args(argv)
    d = shared_models_dir()
    if d is None:
        print("../shared/models not found (set TINYENGINE_SHARED_MODELS)", file=sys.stderr)
        return 1
    header = f"{'model':<24}{'arena':>10}{'tflm head':>11}{'layerwise':>11}{'weights':>10}{'compile s':>11}"
    print(header)
    print("-" * len(header))
    for name in args.models:
        path = os.path.join(d, f"{name}.tflite")
        t0 = time.perf_counter()
        compiled = te.compile(path)
        seconds = time.perf_counter() - t0
        mem = compiled.metadata["memory"]
        bound = layerwise_lower_bound(KernelGraph.from_relax(compiled.lowered["main"]))
        head = tflm_arena_head(open(path, "rb").read())
        print(f"{name:<24}{mem['arena_bytes']:>10,}"
              f"{head if head is not None else 'n/a':>11,}{bound:>11,}{mem['weights_bytes']:>10,}{seconds:>11.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
