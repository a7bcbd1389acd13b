#!/usr/bin/env python3
"""On-device transfer learning on scikit-learn's bundled 8x8 digits, on the emulated Cortex-M7.

1. A small CNN (training/digits.py) is trained in float on the host, with
   NumPy, on digits 0-4 only.
2. It is quantized to an int8 TFLite model by the project's writer, with a new,
   untrained ten-way classifier head.
3. Its training step is compiled for a sparse update (default: the head's
   weights and bias) and for a full update (every weight and bias), and the
   sparse one fine-tunes the model on all ten digits under QEMU (mps2-an500,
   Cortex-M7), the samples streamed one at a time; the held-out images (never
   trained on, by the host or the device) are scored before and after every
   epoch.

    PYTHONPATH=python python benchmarks/training.py [--epochs 4] [--host]

Prints the accuracy curve, the training SRAM of the sparse and the full update
(the planned arena: activations kept for the backward pass, gradients, the
trained parameters), and ends with one line:
``on-device accuracy: A (from B), training SRAM N B, full-update SRAM M B``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "python"))

#: What the sparse update trains: the new head (MCUNetV3's sparse update at its smallest:
#: the classifier, and the bias of the layer feeding it).
SPARSE = {"biases": [-2, -1], "weights": [-1], "learning_rate": 0.01}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--epochs", type=int, default=4, help="fine-tuning epochs on the device (4)")
    ap.add_argument("--pretrain-epochs", type=int, default=30)
    ap.add_argument("--config", default=None, metavar="TRAIN.json", help="sparse-update configuration (JSON)")
    ap.add_argument("--sram-budget", type=int, default=None, metavar="BYTES",
                    help="let the compiler choose what to train within BYTES of arena, by MCUNetV3's contribution "
                         "analysis measured on the training split (training/budget.py)")
    ap.add_argument("--host", action="store_true", help="fine-tune the host build instead of QEMU")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    from tinyengine_tvm.training import compile_training, digits

    t0 = time.monotonic()
    data = digits.splits(args.seed)
    net = digits.pretrain(data["pretrain"], epochs=args.pretrain_epochs, seed=args.seed)
    low = data["test"].y < 5
    pre = float((net.logits(data["test"].x[low]).argmax(axis=1) == data["test"].y[low]).mean())
    print(f"pretrained on digits 0-4 ({len(data['pretrain'].y)} images, float, host): "
          f"{pre:.3f} on held-out 0-4 ({time.monotonic() - t0:.0f} s)")
    model = digits.export_int8(net, data["train"].x[:200], head_classes=10, logits_range=(-24.0, 24.0),
                               head_std=0.1, seed=args.seed)
    config = json.load(open(args.config)) if args.config else dict(SPARSE)
    contribution = None
    if args.sram_budget:
        from tinyengine_tvm.training.contribution import accuracy_contribution

        probe = compile_training(model, {"biases": [-1]}, name="probe")
        d = probe.metadata["inputs"][0]
        xq, y = digits.to_int8(data["train"].x, d["scale"], d["zero_point"]), data["train"].y
        # scored on the training split only: 400 images to fine-tune, the last 300 to validate
        contribution = accuracy_contribution(model, (xq[:400], y[:400]), (xq[-300:], y[-300:]),
                                             learning_rate=config.get("learning_rate", 0.01))
        config = {"sram_budget": args.sram_budget, "learning_rate": config.get("learning_rate", 0.01)}
    sparse = compile_training(model, config, name="digits", contribution=contribution)
    if args.sram_budget:
        sel = sparse.metadata["training"]["selection"]
        print(f"chosen within {args.sram_budget:,} B from {len(sel['tried'])} planned schemes: "
              f"{json.dumps(sel['chosen'])}")
        config = sel["chosen"]
    full = compile_training(model, {"biases": "all", "weights": list(range(len(digits.BACKBONE) + 1)),
                                    "learning_rate": config.get("learning_rate", 0.01)}, name="digits_full")
    ms, mf = sparse.metadata["training"]["memory"], full.metadata["training"]["memory"]
    d = sparse.metadata["inputs"][0]
    q = lambda s: (digits.to_int8(s.x, d["scale"], d["zero_point"]), s.y)  # noqa: E731
    where = "host build" if args.host else "QEMU mps2-an500 (Cortex-M7)"
    print(f"fine-tuning on all ten digits: {len(data['train'].y)} training images, {len(data['test'].y)} held out; "
          f"{args.epochs} epochs on the {where}; sparse update {json.dumps(config)}")
    if args.host:
        curve = [digits.accuracy(sparse, data["test"])]
        losses = digits.finetune(sparse, data["train"], args.epochs, seed=args.seed,
                                 evaluate=lambda: curve.append(digits.accuracy(sparse, data["test"])))
        extra = ""
    else:
        from tinyengine_tvm.training.qemu import train_on_qemu

        r = train_on_qemu(sparse, q(data["train"]), q(data["test"]), args.epochs, seed=args.seed)
        curve, losses = r["accuracy"], r["losses"]
        steps = args.epochs * len(data["train"].y) + (args.epochs + 1) * len(data["test"].y)
        extra = (f"; {r['instructions']:,} instructions in all (~{r['instructions'] / steps:,.0f} per sample), "
                 f"stack peak {r['stack_peak_bytes']} B")
    print(f"\n{'epoch':>5} {'mean loss':>10} {'held-out accuracy':>18}")
    print(f"{0:>5} {'-':>10} {curve[0]:>18.3f}")
    for e, (loss, acc) in enumerate(zip(losses, curve[1:]), 1):
        print(f"{e:>5} {loss:>10.4f} {acc:>18.3f}")
    print(f"\ntraining SRAM (planned arena)  sparse {ms['arena_bytes']:,} B (trained parameters "
          f"{ms['trainable_bytes']:,} B), full {mf['arena_bytes']:,} B (trained parameters "
          f"{mf['trainable_bytes']:,} B): full / sparse = {mf['arena_bytes'] / ms['arena_bytes']:.1f}x{extra}")
    print(f"\non-device accuracy: {curve[-1]:.3f} (from {curve[0]:.3f}), training SRAM {ms['arena_bytes']} B, "
          f"full-update SRAM {mf['arena_bytes']} B")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
