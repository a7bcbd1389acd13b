"""The one-column ("narrow") im2col convolution against the block of four, per layer.

Compiles a model for the Cortex-M7 twice with patch-based inference off (whole
layers): once as the default compile, once with every int8 convolution given
its narrow variant (same filter width: ``narrow`` for te_arm_conv2d_s8,
``narrow_w16`` for te_arm_conv2d_w16_s8), profiles both on QEMU mps2-an500
(exact instruction counts) and prints, per convolution, the instructions and
the scratch of each kernel; then the arena of the default compile and of
``narrow_at_peak``.

    python benchmarks/narrow_conv.py [--model M.tflite] [--top N]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "python"))


def main(argv=None) -> int:
    from tinyengine_tvm import compile as compile_model
    from tinyengine_tvm.codegen.kernel_selection import NARROW_KERNELS
    from tinyengine_tvm.kernels import scratch_bytes
    from tinyengine_tvm.testing import shared_models_dir
    from tinyengine_tvm.tune.measure import QemuMeasurer

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=None, help="model file (default: ../shared's vww_96_int8)")
    ap.add_argument("--top", type=int, default=12, help="rows: the convolutions with the most instructions")
    args = ap.parse_args(argv)
    model = args.model or os.path.join(shared_models_dir() or "", "vww_96_int8.tflite")
    off = {"disabled_passes": ["PatchBasedInference"]}
    core = "cortex-m7"
    block = compile_model(model, core=core, **off)
    variants = {s.name: NARROW_KERNELS[s.kernel] for s in block.graph.steps if s.kernel in NARROW_KERNELS}
    narrow = compile_model(model, core=core, kernel_variants=variants, **off)
    with tempfile.TemporaryDirectory(prefix="bench-narrow-") as work:
        m = QemuMeasurer("mps2-an500", work)
        dirs = []
        for tag, c in (("block", block), ("narrow", narrow)):
            d = os.path.join(work, tag)
            c.export(d)
            dirs.append(d)
        mb, mn = m.measure_many(dirs)
    if mb.error or mn.error:
        print("measurement failed:", mb.error or mn.error)
        return 1
    rows = []
    for k, (sb, sn) in enumerate(zip(block.graph.steps, narrow.graph.steps)):
        if sb.kernel not in NARROW_KERNELS:
            continue
        a = sb.attrs
        rows.append((mb.step_costs[k], mn.step_costs[k], scratch_bytes(sb.kernel, a), scratch_bytes(sn.kernel, a),
                     f"{a['kernel_h']}x{a['kernel_w']}/{a['stride_h']} {a['input_h']}x{a['input_w']}x{a['input_c']}"
                     f"->{a['output_h']}x{a['output_w']}x{a['output_c']}", sb.kernel.replace("te_arm_conv2d_", "")))
    print(f"{os.path.basename(model)} on QEMU {core} (mps2-an500), patch-based inference off: "
          f"{len(rows)} convolutions")
    print(f"{'layer (k/stride in->out)':<32} {'filter':<7} {'block instr':>12} {'narrow instr':>13} {'ratio':>6} "
          f"{'scratch B':>9} {'->':>6}")
    for cb, cn, xb, xn, shape, kern in sorted(rows, reverse=True)[:args.top]:
        print(f"{shape:<32} {kern.replace('_s8', '') or 's8':<7} {cb:>12,.0f} {cn:>13,.0f} {cn / cb:>6.3f} "
              f"{xb:>9,} {xn:>6,}")
    tb, tn = sum(r[0] for r in rows), sum(r[1] for r in rows)
    print(f"all convolutions: block {tb:,.0f}, narrow {tn:,.0f} instructions ({tn / tb:.3f}x); whole model "
          f"{mb.latency:,.0f} -> {mn.latency:,.0f} ({mn.latency / mb.latency:.3f}x)")
    for name, kw in (("default compile", {}), ("patch-based inference off", off)):
        a = compile_model(model, core=core, **kw)
        b = compile_model(model, core=core, narrow_at_peak=True, **kw)
        print(f"{name}: arena {a.metadata['memory']['arena_bytes']:,} B, narrow_at_peak "
              f"{b.metadata['memory']['arena_bytes']:,} B (narrowed: "
              f"{len(b.metadata['kernel_selection'].get('narrowed', []))} layers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
