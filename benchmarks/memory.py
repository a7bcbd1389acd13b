#!/usr/bin/env python3
"""Peak SRAM of every model in ../shared/models: TFLM, bounds, and each optimization step.

Every figure is an arena in bytes (inputs, activations, outputs and scratch,
the int8 input image held in SRAM while it is needed):
  tflm head   TFLM's planned activations, measured with tflite-micro's allocation report
  layerwise   max over ops of (non-constant inputs + output) after PAD folding, reshapes and
              contiguous slices as views: the least a layer-by-layer schedule needs without
              in-place or patches
  none        this project, integer lowering only
  +sched      + FoldPadIntoConv + SliceViews + MemoryAwareSchedule (and the planner's best packing)
  +inplace    + InplaceDepthwise + InplaceElementwise
  +patch      + PatchBasedInference (all passes on)
  +patch m7   the same with the Cortex-M7 kernels selected (their scratch included)
  streamed    +patch with the input image outside the arena (a caller that supplies each
              patch's window, e.g. from a camera line buffer): what streaming would save
  views       slice copies SliceViews turned into views (no kernel call) in the +patch plan
A second table gives each patched stage: its operators, grid, extra MACs, and the extra
MACs and cache bytes of the same grid with the halo columns of adjacent patches cached
(the search weighs both; "cache used" marks the stages generated that way).
With --zoo, the same for the stand-in models of modelgen/zoo.py (MCUNet-VWW, MCUNet
detection with FPN heads, MCUNetV2-style ImageNet with squeeze-excite, NCHW MobileNetV2),
compiled with --int8-io and --nhwc-input, against the targets of issue 10, with the
Pareto front (arena against extra MACs) of the plans the search built.
Usage: python benchmarks/memory.py [MODEL ...] | --zoo [FAMILY ...]
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
from tinyengine_tvm.transform.slice_views import SliceViews

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
    return plan_arena(graph, steps_scratch(graph.steps), count_inputs=False).arena_bytes


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=SHARED_MODELS)
    parser.add_argument("--zoo", nargs="*", metavar="FAMILY", default=None,
                        help="the zoo's stand-in models (all families when none is named) instead")
    args = parser.parse_args(argv)
    if args.zoo is not None:
        from tinyengine_tvm.modelgen.zoo import ZOO

        return zoo_table(args.zoo or list(ZOO))
    d = shared_models_dir()
    if d is None:
        print("../shared/models not found (set TINYENGINE_SHARED_MODELS)", file=sys.stderr)
        return 1
    cols = ["tflm head", "layerwise"] + list(VARIANTS) + ["streamed", "views"]
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
        folded = SliceViews()(FoldPadIntoConv()(compiled["none"].lowered))
        row["layerwise"] = layerwise_lower_bound(KernelGraph.from_relax(folded["main"]))
        row["streamed"] = streamed_arena(compiled["+patch"])
        reports = {p["name"]: p for p in compiled["+patch"].metadata["passes"]}
        patches[name] = reports["PatchBasedInference"]
        row["views"] = reports["SliceViews"]["views"]
        weights = compiled["none"].metadata["memory"]["weights_bytes"]
        print(f"{name:<24}" + "".join(f"{row[c]:>11,}" if row[c] is not None else f"{'n/a':>11}" for c in cols)
              + f"{weights:>10,}{seconds:>11.2f}")
    print("\nArena figures include the int8 input image while it is needed; 'compile s' is the "
          "all-passes compile time.\n")
    print(f"{'model':<24}{'stage ops':>11}{'grid':>7}{'cache':>9}{'+MACs':>8}{'+MACs recomputing':>19}"
          f"{'+MACs, full cache':>19}{'cache B':>9}")
    for name, p in patches.items():
        if not p["applied"]:
            print(f"{name:<24}  not applied: {p['reason']}")
            continue
        for st in p["stages"]:
            ops = f"{st['first_index']}-{st['last_index']}"
            grid = f"{st['grid'][0]}x{st['grid'][1]}"
            print(f"{name:<24}{ops:>11}{grid:>7}{st['halo_cache']:>9}{st['mac_overhead']:>8.1%}"
                  f"{st['recompute_mac_overhead']:>19.1%}{st['halo_cache_mac_overhead']:>19.1%}"
                  f"{st['halo_cache_bytes']:>9,}")
        print(f"{'':<24}explored (Pareto front, arena B @ extra MACs): "
              + ", ".join(f"{a:,} @ {m:.1%}" for a, m in p["explored"]))
    return 0


#: The issue's arena targets for the zoo stand-ins (bytes, int8 image in the arena, <= 10% extra MACs).
ZOO_TARGETS = {"mcunet_vww": 36_800, "mcunet_fpn_detector": 118_000, "mcunet_se_imagenet": 470_000,
               "mobilenetv2_nchw": 330_000}
#: ... and without the input image in the arena.
NO_IMAGE_TARGETS = {"mobilenetv2_nchw": 172_000}


def _or_dash(n) -> str:
    return "-" if n is None else f"{n:,}"


def zoo_table(names) -> int:
    """Arena of the zoo's stand-in models (random weights, real shapes), int8 I/O, against the targets."""
    from tinyengine_tvm.modelgen.zoo import ZOO

    header = (f"{'model':<22}{'MACs':>13}{'+inplace':>11}{'+patch':>10}{'target':>10}{'no image':>10}"
              f"{'target':>10}{'+MACs':>7}{'stages':>7}{'compile s':>10}")
    print(header)
    print("-" * len(header))
    fronts = {}
    for name in names:
        model = ZOO[name]()
        io = dict(int8_io=True, nhwc_input=True)
        plain = te.compile(model, disabled_passes=["PatchBasedInference"], **io)
        t0 = time.perf_counter()
        patched = te.compile(model, **io)
        seconds = time.perf_counter() - t0
        report = {p["name"]: p for p in patched.metadata["passes"]}["PatchBasedInference"]
        fronts[name] = report
        # The plan searched for an image held outside the arena (MCUNetV2's figures count it so).
        outside = te.compile(model, pass_config={"PatchBasedInference.count_inputs": False}, **io)
        print(f"{name:<22}{plain.metadata['total_macs']:>13,}{plain.metadata['memory']['arena_bytes']:>11,}"
              f"{patched.metadata['memory']['arena_bytes']:>10,}{_or_dash(ZOO_TARGETS.get(name)):>10}"
              f"{streamed_arena(outside):>10,}{_or_dash(NO_IMAGE_TARGETS.get(name)):>10}"
              f"{report['mac_overhead']:>7.1%}{len(report['stages']):>7}{seconds:>10.1f}")
    print("\n'no image': the arena without the input image, from a search that does not count it\n"
          "(PatchBasedInference.count_inputs=false); its target is MCUNetV2's published figure.\n")
    for name, report in fronts.items():
        if not report["applied"]:
            print(f"{name}: not patched ({report['reason']})")
            continue
        print(f"{name}: stages (first..last op, grid, halo cache, +MACs; +MACs recomputing / "
              "caching every overlap, cache bytes)")
        for st in report["stages"]:
            print(f"  {st['first_op']}..{st['last_op']}  {st['grid'][0]}x{st['grid'][1]}  "
                  f"cache {st['halo_cache']}  {st['mac_overhead']:.1%}  "
                  f"({st['recompute_mac_overhead']:.1%} / {st['halo_cache_mac_overhead']:.1%}, "
                  f"cache {st['halo_cache_bytes']:,} B)")
        print("  explored (Pareto front, arena B @ extra MACs): "
              + ", ".join(f"{a:,} @ {m:.1%}" for a, m in report["explored"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
