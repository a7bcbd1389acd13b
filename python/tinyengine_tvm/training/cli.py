"""``tvmc train-compile MODEL --config train.json -o OUT``: the training step of a model as C."""
from __future__ import annotations

import os

from ..errors import UsageError


def register(sub, int_option) -> None:
    """Add ``tvmc train-compile`` to the subcommands."""
    t = sub.add_parser("train-compile", help="compile the on-device training step of an int8 .tflite model")
    t.add_argument("model", help="int8 .tflite model")
    t.add_argument("--config", required=True, metavar="TRAIN.json",
                   help="what to train: {\"biases\": \"all\" | [layers], \"weights\": [layers], "
                        "\"channel_ratio\": {layer: ratio}, \"learning_rate\": LR, \"momentum\": M}; layers by index "
                        "(negative from the last) or output tensor name; or {\"sram_budget\": BYTES} to let the "
                        "compiler choose them")
    t.add_argument("-o", "--output", required=True, help="output directory, or OUT.tar for a tarball")
    t.add_argument("--model-name", default=None, help="C identifier prefix (default: file name)")
    t.add_argument("--sram-budget", type=int_option(1, 1 << 31), default=None, metavar="BYTES",
                   help="fail when the training arena needs more than BYTES")
    t.set_defaults(func=_cmd_train_compile)


def _cmd_train_compile(args) -> int:
    from ..compiler import check_export_path
    from .compile import compile_training
    from .config import load_config

    # Paths and the configuration are checked before any work.
    if not os.path.isfile(args.model):
        raise UsageError(f"model '{args.model}': no such file")
    config = load_config(args.config)
    check_export_path(args.output, keep=[args.model, args.config])
    compiled = compile_training(args.model, config, name=args.model_name, sram_budget=args.sram_budget)
    compiled.export(args.output, keep=[args.model, args.config])
    t = compiled.metadata["training"]
    mem = t["memory"]
    phases = {}
    for s in t["steps"]:
        phases[s["phase"]] = phases.get(s["phase"], 0) + 1
    chosen = next(c for c in t["forward_passes"] if c["chosen"])
    print(f"wrote {args.output}: {compiled.name}_train_step with {t['train_steps']} steps "
          f"({', '.join(f'{n} {p}' for p, n in phases.items())})")
    print(f"training arena {mem['arena_bytes']:,} B (trainable parameters {mem['trainable_bytes']:,} B, momentum "
          f"{mem['momentum_bytes']:,} B), frozen weights in flash {mem['frozen_weights_bytes']:,} B")
    off = ", ".join(chosen["disabled"]) or "none"
    print(f"forward memory passes turned off for training: {off}")
    return 0
