#!/usr/bin/env python3
"""Instructions of one inference on an emulated Cortex-M7 (QEMU mps2-an500), portable vs DSP kernels.

For every model of ../shared/models and the project's own models of the
operator families the shared ones lack (a 16x8 audio network, an SVDF keyword
spotter, an MNIST LSTM and a 1-D depthwise-separable DS-CNN, built by
tinyengine_tvm.modelgen), compiled with the default pipeline (memory passes on):
  MACs          multiply-accumulates of the compiled schedule (patch-based
                inference recomputes halos, so it can exceed the model's)
  portable      executed instructions with the portable kernels (compile(core=None))
  dsp           the same with the Cortex-M optimized kernels (compile(core="cortex-m7"))
  MAC/instr     MACs / dsp instructions
  flash         the model's code + weights (portable -> dsp), from the link map
  sram          the dsp model's arena + static data + measured stack peak
  arena         the arena of the portable and of the dsp build (optimized
                kernels need scratch: im2col columns, a depthwise plane)
  reference     TFLM + CMSIS-NN on the same emulated core (../shared/models/README.md;
                none for the project's models)
  ratio         dsp / reference
  TFLM          the dsp build's outputs equal TFLM's (random input, seed 0)
Counts are exact and deterministic (QEMU -icount, see firmware/README.md), but
instruction counts are not cycles.

Usage: python benchmarks/latency.py [MODEL ...] [--board mps2-an500] [--disable PASS ...]
"""
import argparse
import os
import re
import sys
import tempfile

import numpy as np

import tinyengine_tvm as te
from tinyengine_tvm.modelgen import quantized_ops
from tinyengine_tvm.runtime import qemu
from tinyengine_tvm.targets import get_board
from tinyengine_tvm.testing import SHARED_MODELS, random_inputs, shared_models_dir

# TFLM + CMSIS-NN on mps2-an500 (arm-none-eabi-gcc 12.2 -O2), from ../shared/models/README.md.
REFERENCE = {
    "hello_world_int8": 3_605, "ad01_int8": 583_394, "micro_speech_quantized": 1_488_999,
    "kws_ref_model": 7_642_354, "person_detect": 22_716_305, "vww_96_int8": 24_025_982,
    "pretrainedResnet_quant": 30_026_100,
}


#: The project's models of the operator families the shared models lack.
PROJECT_MODELS = {"int16_audio": quantized_ops.int16_audio_model, "svdf_kws": quantized_ops.svdf_kws_model,
                  "mnist_lstm": quantized_ops.mnist_lstm_model, "ds_cnn_1d": quantized_ops.ds_cnn_1d_model}


def reference_counts(models_dir: str) -> dict:
    """The "TFLM + CMSIS-NN" column of the shared README's instruction-count table
    (REFERENCE where the README is absent or has no such table)."""
    refs = dict(REFERENCE)
    path = os.path.join(models_dir, "README.md")
    if not os.path.isfile(path):
        return refs
    col = None
    for line in open(path):
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if "TFLM + CMSIS-NN" in cells:
            col = cells.index("TFLM + CMSIS-NN")
        elif col is not None and len(cells) > col and cells[0] in refs and re.fullmatch(r"[\d,]+", cells[col]):
            refs[cells[0]] = int(cells[col].replace(",", ""))
        elif col is not None and not line.startswith("|"):
            col = None
    return refs


def run(compiled, build_root: str, board: str, x):
    project = os.path.join(build_root, f"{compiled.name}-{compiled.metadata.get('kernel_selection', {}).get('core', 'portable')}")
    compiled.export(project)
    model = qemu.QemuModel(project, board, os.path.join(build_root, "build"))
    return model.run(x)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="*", default=SHARED_MODELS + list(PROJECT_MODELS))
    parser.add_argument("--board", default="mps2-an500")
    parser.add_argument("--disable", nargs="*", default=[], help="passes to disable (e.g. PatchBasedInference)")
    args = parser.parse_args(argv)
    d = shared_models_dir()
    if d is None and any(name not in PROJECT_MODELS for name in args.models):
        print("../shared/models not found (set TINYENGINE_SHARED_MODELS); the project's models run without it: "
              + " ".join(PROJECT_MODELS), file=sys.stderr)
        return 1
    missing = qemu.missing_tools()
    if missing:
        print(f"missing {', '.join(missing)}: run scripts/install_arm_toolchain.sh", file=sys.stderr)
        return 1
    board = get_board(args.board)
    refs = reference_counts(d) if d is not None else dict(REFERENCE)
    try:
        from tinyengine_tvm.testing import tflm_run
    except ImportError:  # pragma: no cover
        tflm_run = None

    cols = (f"{'model':<24}{'MACs':>12}{'portable':>13}{'dsp':>12}{'MAC/instr':>10}{'flash B':>17}{'sram B':>9}"
            f"{'arena B':>14}{'reference':>12}{'ratio':>7}{'TFLM':>6}")
    print(f"board {board.name} ({board.core}); pipeline: default"
          + (f" without {', '.join(args.disable)}" if args.disable else ""))
    print(cols)
    print("-" * len(cols))
    with tempfile.TemporaryDirectory(prefix="tinyengine-latency-") as root:
        for name in args.models:
            if name in PROJECT_MODELS:
                path = os.path.join(root, f"{name}.tflite")
                with open(path, "wb") as f:
                    f.write(PROJECT_MODELS[name]())
            else:
                path = os.path.join(d, f"{name}.tflite")
            portable = te.compile(path, disabled_passes=args.disable)
            dsp = te.compile(path, disabled_passes=args.disable, core=board.core)
            x = random_inputs(dsp.metadata["inputs"], 0)
            _, rep_p = run(portable, root, board.name, x)
            out, rep_d = run(dsp, root, board.name, x)
            exact = "-"
            if tflm_run is not None:
                ref_out = tflm_run(open(path, "rb").read(), x)
                exact = "yes" if all(np.array_equal(o.reshape(-1), r.reshape(-1))
                                     for o, r in zip(out.values(), ref_out)) else "NO"
            macs = dsp.metadata["total_macs"]
            ins = rep_d["instructions"]
            ref = refs.get(name)
            arena = f"{portable.metadata['memory']['arena_bytes']}->{dsp.metadata['memory']['arena_bytes']}"
            flash = "->".join(str(r.get("model_flash_bytes", r["flash_bytes"])) for r in (rep_p, rep_d))
            sram = rep_d.get("model_static_ram_bytes", rep_d["static_ram_bytes"]) + rep_d["stack_peak_bytes"]
            print(f"{name:<24}{macs:>12,}{rep_p['instructions']:>13,}{ins:>12,}{macs / ins:>10.3f}{flash:>17}{sram:>9,}"
                  f"{arena:>14}{(f'{ref:,}' if ref else '-'):>12}{(f'{ins / ref:.3f}' if ref else '-'):>7}{exact:>6}",
                  flush=True)
    print("flash: the model's code + weights, portable->dsp; sram: the dsp model's arena + static data + measured "
          "stack peak; arena: portable->dsp (the optimized kernels' scratch)")
    if board.name != "mps2-an500":
        print("reference: TFLM + CMSIS-NN measured on mps2-an500 (Cortex-M7), not on this board")
    print("instruction counts are not cycles: compare ratios on the same emulator, not absolute times")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
