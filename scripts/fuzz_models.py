#!/usr/bin/env python3
"""Longer model fuzzing run: mutated .tflite models through tvmc compile, TFLM and the host C.

Each case mutates one model (``tinyengine_tvm.testing.model_mutations``: byte
flips, truncations and field-aware mutations of shapes, strides, padding,
activations, quantization, tensor types, indices, operator codes, constant
data; ``--stack K`` applies up to K at once) and is classified like
``tests/test_fuzz_models.py`` does:

  compiled+bitexact        compiles; TFLM runs it; the host build gives TFLM's outputs exactly
  compiled+TFLM-rejects    compiles, but TFLM refuses (or crashes on) the model: worth a look
  compiled+TFLM-ok(...)    compiles and TFLM runs it; not compared (--bitexact-cap reached)
  error:<class>            a clear TinyEngineError (tvmc exit 2, one-line-ish message)
  CRASH:<type>             any other exception escaped compile()/tvmc            (failure)
  CLI-FAIL:<what>          tvmc exited otherwise, printed a traceback, left output (failure)
  compiled+MISMATCH / compiled+HOST-FAIL / TIMEOUT                                (failure)

Every failure's model bytes are written to --crash-dir with a .txt describing
it (seed, mutation, message, innermost project frame).

Plain mode draws --cases cases round-robin over --models with numpy's
seeded generator (fully reproducible).  --atheris runs coverage-guided with
atheris (libFuzzer): the models are the seed corpus, tinyengine_tvm's Python
code is instrumented, and a custom mutator applies the same field-aware
mutations mixed with libFuzzer's own byte-level ones; it stops after --cases
executions.  Install it with `pip install atheris` (wheels for CPython
3.8-3.12 on Linux x86_64).

Usage:
  python scripts/fuzz_models.py --cases 2000 --out fuzz.json --crash-dir fuzz-crashes
  python scripts/fuzz_models.py --models hello_world_int8 own:conv2d my.tflite --stack 3
  python scripts/fuzz_models.py --atheris --cases 5000 --crash-dir fuzz-crashes
"""
from __future__ import annotations

import argparse
import collections
import json
import os
import re
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def _model_bytes(spec: str, shared_dir):
    """(name, bytes) of a model spec: a shared model name, 'default', 'own:BUILDER' or a .tflite path."""
    from tinyengine_tvm.modelgen.default_model import default_model_path

    if spec == "default":
        return "default_mobilenet_int8", default_model_path().read_bytes()
    if spec.startswith("own:"):
        from tinyengine_tvm.modelgen.quantized_ops import MODEL_BUILDERS

        return spec, MODEL_BUILDERS[spec[4:]]()
    if os.path.isfile(spec):
        with open(spec, "rb") as f:
            return os.path.splitext(os.path.basename(spec))[0], f.read()
    if shared_dir and os.path.isfile(os.path.join(shared_dir, spec + ".tflite")):
        with open(os.path.join(shared_dir, spec + ".tflite"), "rb") as f:
            return spec, f.read()
    raise SystemExit(f"fuzz_models.py: unknown model '{spec}' (a shared model name, 'default', 'own:NAME' "
                     f"or a .tflite path{'' if shared_dir else '; ../shared/models is absent'})")


def _default_specs(shared_dir):
    from tinyengine_tvm.modelgen.quantized_ops import MODEL_BUILDERS
    from tinyengine_tvm.testing import SHARED_MODELS

    specs = list(SHARED_MODELS) if shared_dir else []
    specs.append("default")
    try:
        import tflite_micro  # noqa: F401 - modelgen needs its schema
        specs += [f"own:{k}" for k in MODEL_BUILDERS if k != "float_model"]
    except ImportError:
        pass
    return specs


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text)[:80]


class Recorder:
    """Collects results, writes crash reproducers, prints the table."""

    def __init__(self, crash_dir):
        self.results = []
        self.crash_dir = crash_dir
        self.t0 = time.perf_counter()

    def add(self, res, data: bytes):
        self.results.append(res)
        if res.failed and self.crash_dir:
            os.makedirs(self.crash_dir, exist_ok=True)
            base = os.path.join(self.crash_dir, _safe(f"{res.model}_{res.case}_{res.outcome}_{res.detail}"))
            with open(base + ".tflite", "wb") as f:
                f.write(data)
            with open(base + ".txt", "w") as f:
                f.write(json.dumps(res.to_json(), indent=1) + "\n")

    def report(self, out, extra=None):
        from tinyengine_tvm.testing import model_mutations as M

        results = self.results
        secs = time.perf_counter() - self.t0
        print(f"\n{len(results)} cases in {secs:.0f} s")
        print(M.format_table(results))
        rejects = [r for r in results if r.outcome == M.OUTCOME_TFLM_REJECTS]
        if rejects:
            by_msg = collections.Counter(re.sub(r"\d+", "N", r.detail)[:160] for r in rejects)
            print(f"\naccepted by tinyengine, rejected by TFLM: {len(rejects)} (by TFLM message)")
            for msg, n in by_msg.most_common():
                print(f"  {n:5d}  {msg}")
        if any(r.failed for r in results):
            print(f"\nfailures by class:\n{M.format_failures(results)}")
        if out:
            with open(out, "w") as f:
                json.dump({"cases": len(results), "seconds": secs, "counts": M.summarize(results),
                           "failure_classes": M.failure_classes(results),
                           "results": [r.to_json() for r in results], **(extra or {})}, f, indent=1)
            print(f"report written to {out}")


def run_plain(args, models, harness, rec):
    from tinyengine_tvm.testing import model_mutations as M

    names = list(models)
    for i in range(args.cases):
        m_idx = i % len(names)
        name = names[m_idx]
        seed = (args.seed, m_idx, i)
        rng = np.random.default_rng(list(seed))
        kinds = M.applicable_kinds(models[name])
        kind = kinds[int(rng.integers(len(kinds)))]
        stack = int(rng.integers(1, args.stack + 1))
        data, desc = M.mutate(models[name], rng, kind, stack=stack)
        res = harness.run_case(name, i, seed, kind if stack == 1 else f"{kind}+{stack - 1}", desc, data)
        rec.add(res, data)
        if args.verbose or res.failed:
            print(f"[{i + 1}/{args.cases}] {res.label()}  {res.where()}", flush=True)
        elif (i + 1) % 50 == 0:
            print(f"[{i + 1}/{args.cases}] ...", flush=True)


def run_atheris(args, models, harness, rec):
    import atheris

    from tinyengine_tvm.testing import model_mutations as M

    originals = list(models.items())
    max_len = max(len(d) for _, d in originals) + 64
    own_corpus = args.corpus is None
    corpus = args.corpus or tempfile.mkdtemp(prefix="fuzz-corpus-")
    os.makedirs(corpus, exist_ok=True)
    for name, data in originals:
        with open(os.path.join(corpus, _safe(name) + ".tflite"), "wb") as f:
            f.write(data)

    def closest(data: bytes) -> str:
        """The seed model an input descends from (longest common prefix of the first 4 KiB)."""
        head = data[:4096]

        def common(b):
            n = 0
            for x, y in zip(head, b[:4096]):
                if x != y:
                    break
                n += 1
            return n - abs(len(data) - len(b)) / max(len(b), 1)
        return max(originals, key=lambda nd: common(nd[1]))[0]

    state = {"n": 0}

    def custom_mutator(data, max_size, seed):
        rng = np.random.default_rng(seed)
        if rng.random() < 0.7:
            try:
                out, _ = M.mutate(bytes(data), rng)
            except Exception:  # noqa: BLE001 - fall back to libFuzzer's byte-level mutation
                out = atheris.Mutate(data, max_size)
        else:
            out = atheris.Mutate(data, max_size)
        return out[:max_size]

    def test_one_input(data: bytes):
        i = state["n"]
        state["n"] += 1
        name = closest(data)
        desc = f"atheris input #{i}, {len(data)} bytes (not reproducible from the seed: see --crash-dir)"
        res = harness.run_case(name, i, (args.seed, i), "atheris", desc, data)
        rec.add(res, data)
        if args.verbose or res.failed:
            print(f"[{i + 1}/{args.cases}] {res.label()}  {res.where()}", flush=True)
        if state["n"] >= args.cases:
            harness.close()
            import shutil

            shutil.rmtree(harness.workdir, ignore_errors=True)
            if own_corpus:
                shutil.rmtree(corpus, ignore_errors=True)
            rec.report(args.out, {"mode": "atheris", "seed": args.seed, "models": list(models)})
            sys.stdout.flush()
            os._exit(0)

    # libFuzzer's own SIGALRM timeout would fight the harness's per-case alarm: the harness times cases.
    argv = [sys.argv[0], corpus, f"-max_len={max_len}", "-timeout=0", "-rss_limit_mb=16384",
            f"-seed={args.seed}", f"-runs={args.cases + len(originals) + 10}",
            # libFuzzer writes slow/crash units to the working directory unless told otherwise.
            f"-artifact_prefix={os.path.join(os.path.abspath(args.crash_dir or tempfile.gettempdir()), '')}"]
    atheris.Setup(argv, test_one_input, custom_mutator=custom_mutator)
    atheris.Fuzz()


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n\n", 1)[1])
    p.add_argument("--cases", type=int, default=1000, help="number of mutated models to run (default 1000)")
    p.add_argument("--seed", type=int, default=1, help="base seed (default 1)")
    p.add_argument("--models", nargs="+", default=None, metavar="MODEL",
                   help="shared model names, 'default', 'own:BUILDER' (modelgen.quantized_ops.MODEL_BUILDERS) "
                        "or .tflite paths (default: all shared models, the default model and every own builder)")
    p.add_argument("--stack", type=int, default=1, help="apply up to this many mutations per case (default 1)")
    p.add_argument("--bitexact-cap", type=int, default=200,
                   help="at most this many host gcc builds for bit-exact comparisons (default 200)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds per compile before a case is a TIMEOUT")
    p.add_argument("--no-tflm", action="store_true", help="compile-side checks only (no TFLM, no host runs)")
    p.add_argument("--atheris", action="store_true", help="coverage-guided fuzzing with atheris (libFuzzer)")
    p.add_argument("--corpus", default=None, help="--atheris: corpus directory (default: a temporary one)")
    p.add_argument("--out", default=None, metavar="REPORT.json", help="write counts, failure classes and every case")
    p.add_argument("--crash-dir", default=None, metavar="DIR", help="write each failing case's model bytes here")
    p.add_argument("-v", "--verbose", action="store_true", help="print every case")
    args = p.parse_args(argv)

    if args.atheris:
        try:
            import atheris
        except ImportError:
            raise SystemExit("fuzz_models.py: --atheris needs `pip install atheris`")
        # Instrument the compiler's Python code (and TVM's TFLite importer) for coverage feedback;
        # submodules are imported here because the package imports most of them lazily.
        import importlib
        import pkgutil

        with atheris.instrument_imports(include=["tinyengine_tvm", "tvm.relax.frontend.tflite"]):
            import tinyengine_tvm

            for mod in pkgutil.walk_packages(tinyengine_tvm.__path__, "tinyengine_tvm."):
                if ".micro" in mod.name or mod.name.endswith(("report", "__main__")):
                    continue
                try:
                    importlib.import_module(mod.name)
                except Exception:  # noqa: BLE001 - optional dependencies
                    pass
            importlib.import_module("tvm.relax.frontend.tflite")

    from tinyengine_tvm.testing import model_mutations as M
    from tinyengine_tvm.testing import shared_models_dir

    shared = shared_models_dir()
    specs = args.models or _default_specs(shared)
    models = dict(_model_bytes(s, shared) for s in specs)
    tflm = not args.no_tflm
    if tflm:
        try:
            from tflite_micro import runtime  # noqa: F401
        except ImportError:
            print("tflite-micro is not installed: TFLM and host runs skipped", file=sys.stderr)
            tflm = False
    print(f"fuzzing {len(models)} model(s): {', '.join(models)}; {args.cases} cases, seed {args.seed}"
          f"{', atheris' if args.atheris else ''}")
    rec = Recorder(args.crash_dir)
    with tempfile.TemporaryDirectory(prefix="fuzz-models-") as work:
        harness = M.FuzzHarness(work, bitexact_cap=args.bitexact_cap, timeout=args.timeout, tflm=tflm)
        harness.check_sandbox()
        try:
            if args.atheris:
                run_atheris(args, models, harness, rec)
            else:
                run_plain(args, models, harness, rec)
        except KeyboardInterrupt:
            print("interrupted", file=sys.stderr)
        finally:
            harness.close()
    rec.report(args.out, {"mode": "plain", "seed": args.seed, "models": list(models), "stack": args.stack})
    return 1 if any(r.failed for r in rec.results) else 0


if __name__ == "__main__":
    sys.exit(main())
