#!/usr/bin/env bash
# Set up, compile the bundled default model and run it, printing the memory report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
PY=${PYTHON:-python3}
MODEL=$("$PY" -c "from tinyengine_tvm.modelgen.default_model import default_model_path as p; print(p())")
OUT=${OUT:-build/default_model}
"$PY" -m tinyengine_tvm compile --target=tinyengine "$MODEL" -o "$OUT"
"$PY" -m tinyengine_tvm run "$OUT" --device=host --print-time --print-top 3 --repeat 10
