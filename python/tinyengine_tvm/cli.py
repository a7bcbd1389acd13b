"""The ``tvmc`` command: compile models to C and run compiled projects.

Mirrors the subcommands microTVM users knew (``tvmc compile``, ``tvmc run``),
with ``--target=tinyengine`` selecting this project's backend.
"""
from __future__ import annotations

import argparse
import os
import sys
import tarfile
import tempfile
from typing import List, Optional

import numpy as np

from .errors import TinyEngineError

TARGETS = ("tinyengine",)


def _format_bytes(n: int) -> str:
    return f"{n:,} B ({n / 1024:.1f} KiB)"


def format_report(meta: dict, seconds: Optional[float] = None) -> str:
    """Human-readable summary of a compiled model's metadata."""
    mem = meta["memory"]
    lines = [f"model        {meta['model']} ({meta.get('format', '?')})"]
    for kind in ("inputs", "outputs"):
        for t in meta[kind]:
            q = f" scale={t['scale']:.6g} zp={t['zero_point']}" if t.get("scale") is not None else ""
            lines.append(f"{kind[:-1]:<12} {t['name']}: {t['dtype']}{t['shape']}{q}")
    lines.append(f"arena        {_format_bytes(mem['arena_bytes'])}: inputs, activations, outputs, "
                 f"scratch ({mem['scratch_bytes']:,} B); live-set peak {mem['live_peak_bytes']:,} B")
    if mem.get("peak_op_index") is not None:
        peak = meta["ops"][mem["peak_op_index"]]
        lines.append(f"peak at      op #{mem['peak_op_index']} {peak['type']} '{peak['name']}': "
                     + ", ".join(peak["live_buffers"]))
    lines.append(f"weights      {_format_bytes(mem['weights_bytes'])}")
    for p in meta.get("passes", []):
        details = ", ".join(f"{k}={v}" for k, v in p.items() if k != "name")
        lines.append(f"pass         {p['name']}" + (f": {details}" if details else ""))
    counts = {}
    for op in meta["ops"]:
        counts[op["type"]] = counts.get(op["type"], 0) + 1
    lines.append(f"ops          {len(meta['ops'])}: " + ", ".join(f"{k} x{v}" for k, v in sorted(counts.items())))
    lines.append(f"MACs         {meta['total_macs']:,}")
    if seconds is not None:
        lines.append(f"compiled in  {seconds:.2f} s")
    return "\n".join(lines)


def _cmd_compile(args) -> int:
    from .compiler import compile as compile_model

    if args.target not in TARGETS:
        raise TinyEngineError(f"unknown target '{args.target}'; available: {', '.join(TARGETS)}")
    from .transform.pipeline import parse_pass_config

    kwargs = dict(name=args.model_name, disabled_passes=args.disable_pass,
                  pass_config=parse_pass_config(args.pass_config), sram_budget=args.sram_budget)
    compiled = compile_model(args.model, **kwargs)
    if args.memory_plot:
        from .report import plot_memory_timeline

        baseline = compile_model(args.model, name=args.model_name, optimize=False)
        plot_memory_timeline(compiled.metadata, baseline.metadata, args.memory_plot)
    out = compiled.export(args.output)
    print(format_report(compiled.metadata, compiled.compile_seconds))
    if args.memory_plot:
        print(f"memory plot  {args.memory_plot}")
    print(f"written      {out}")
    return 0


def _open_project(path: str, tmp: str) -> str:
    if path.endswith(".tar"):
        if not os.path.isfile(path):
            raise TinyEngineError(f"{path}: no such file")
        with tarfile.open(path) as tar:
            tar.extractall(tmp, filter="data")
        return tmp
    return path


def _cmd_run(args) -> int:
    from .runtime.host import HostModel, load_npz_inputs

    if args.device != "host":
        raise TinyEngineError(f"device '{args.device}' is not available; use --device=host")
    with tempfile.TemporaryDirectory(prefix="tvmc-run-") as tmp:
        project = _open_project(args.project, os.path.join(tmp, "project"))
        model = HostModel(project, build_dir=os.path.join(tmp, "build"))
        meta = model.meta
        if args.inputs:
            inputs = load_npz_inputs(args.inputs, meta["inputs"])
        else:
            rng = np.random.default_rng(args.seed)
            inputs = {}
            for m in meta["inputs"]:
                if m["dtype"] == "int8":
                    inputs[m["name"]] = rng.integers(-128, 128, size=m["shape"], dtype=np.int8)
                else:
                    inputs[m["name"]] = rng.uniform(-1, 1, size=m["shape"]).astype(m["dtype"])
        times = []
        outputs = None
        for _ in range(max(1, args.repeat)):
            outputs = model.run(inputs)
            times.append(model.last_seconds)
    if args.outputs:
        np.savez(args.outputs, **outputs)
    if args.print_time:
        t = np.array(times) * 1e3
        print(f"host execution time (ms, {len(t)} runs): mean {t.mean():.3f} median {np.median(t):.3f} "
              f"min {t.min():.3f} max {t.max():.3f}")
    if args.print_top:
        for name, arr in outputs.items():
            flat = arr.reshape(-1)
            top = np.argsort(-flat.astype(np.float64), kind="stable")[: args.print_top]
            print(f"{name}: top-{len(top)} indices {top.tolist()} values {flat[top].tolist()}")
    if not (args.outputs or args.print_top or args.print_time):
        for name, arr in outputs.items():
            print(f"{name}: {arr.tolist()}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``tvmc``."""
    parser = argparse.ArgumentParser(prog="tvmc", description="tinyengine-tvm: int8 models to standalone C.")
    sub = parser.add_subparsers(dest="command", required=True)

    c = sub.add_parser("compile", help="compile a .tflite or .onnx model to C")
    c.add_argument("model", help="int8 .tflite or ONNX QDQ .onnx model")
    c.add_argument("--target", default="tinyengine", help="code generator (only 'tinyengine')")
    c.add_argument("-o", "--output", required=True, help="output directory, or OUT.tar for a tarball")
    c.add_argument("--model-name", default=None, help="C identifier prefix (default: file name)")
    c.add_argument("--disable-pass", action="append", default=[], metavar="PASS",
                   help="turn off one optimization pass (repeatable): FoldPadIntoConv, InplaceDepthwise, "
                        "MemoryAwareSchedule")
    c.add_argument("--pass-config", action="append", default=[], metavar="PASS.OPTION=VALUE",
                   help="set a pass option, e.g. MemoryAwareSchedule.max_states=5000 (repeatable)")
    c.add_argument("--sram-budget", type=int, default=None, metavar="BYTES",
                   help="fail when the arena needs more than BYTES")
    c.add_argument("--memory-plot", default=None, metavar="FILE.png",
                   help="draw live bytes per operator with and without the optimizations (matplotlib)")
    c.set_defaults(func=_cmd_compile)

    r = sub.add_parser("run", help="run a compiled project")
    r.add_argument("project", help="directory or .tar written by 'tvmc compile'")
    r.add_argument("--device", default="host", help="where to run: host")
    r.add_argument("--inputs", help=".npz of inputs keyed by tensor name (random if omitted)")
    r.add_argument("--outputs", help="write outputs to this .npz")
    r.add_argument("--print-time", action="store_true", help="print execution time")
    r.add_argument("--print-top", type=int, default=0, metavar="N", help="print the top-N output entries")
    r.add_argument("--repeat", type=int, default=1, help="number of inferences to time")
    r.add_argument("--seed", type=int, default=0, help="seed of the random inputs")
    r.set_defaults(func=_cmd_run)
    return parser


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``tvmc`` and ``python -m tinyengine_tvm``."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except TinyEngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
