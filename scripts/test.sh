#!/usr/bin/env bash
# Set up and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Cortex-M tests need arm-none-eabi-gcc and qemu-system-arm (Debian packages).
bash scripts/install_arm_toolchain.sh
PY=${PYTHON:-python3}
# Tests skip with a reason when an optional tool is missing; here everything was
# just installed, so a missing piece is a broken set-up, not a reason to skip.
"$PY" -c "import tflite_micro, onnxruntime, ai_edge_litert, hypothesis, matplotlib, serial" \
  || { echo "test.sh: a test dependency failed to install" >&2; exit 1; }
for tool in arm-none-eabi-gcc arm-none-eabi-g++ qemu-system-arm cmake gcc g++; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing" >&2; exit 1; }
done
"$PY" -m pytest -q -ra "$@"
