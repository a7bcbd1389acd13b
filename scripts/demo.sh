#!/usr/bin/env bash
# Set up, compile the bundled default model for an STM32F746 (Cortex-M7) and run it
# on the emulated Cortex-M7 board (QEMU mps2-an500): prints the memory report and
# the instruction count of one inference.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
bash scripts/install_arm_toolchain.sh
PY=${PYTHON:-python3}
MODEL=$("$PY" -c "from tinyengine_tvm.modelgen.default_model import default_model_path as p; print(p())")
OUT=${OUT:-build/default_model}
"$PY" -m tinyengine_tvm compile --target=tinyengine "$MODEL" -o "$OUT" --target-tinyengine-board NUCLEO-F746ZG
"$PY" -m tinyengine_tvm run "$OUT" --device=qemu --board mps2-an500 --print-time --print-top 3
