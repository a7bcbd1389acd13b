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
"$PY" -c "import tflite_micro, onnxruntime, ai_edge_litert, hypothesis, matplotlib, serial, tornado, cloudpickle, sklearn" \
  || { echo "test.sh: a test dependency failed to install" >&2; exit 1; }
for tool in arm-none-eabi-gcc arm-none-eabi-g++ qemu-system-arm cmake gcc g++; do
  command -v "$tool" >/dev/null || { echo "test.sh: $tool is missing" >&2; exit 1; }
done
# The Zephyr workspace of ../shared/zephyr (offline): the tests build the generated
# app for every Zephyr board and run it in QEMU. Without ../shared they skip, saying so.
if [ -z "${TINYENGINE_ZEPHYR_WORKSPACE:-}" ] && [ -f ../shared/zephyr/setup.sh ]; then
  env_sh=$(PYTHON="$PY" bash ../shared/zephyr/setup.sh | tail -n 1)
  export TINYENGINE_ZEPHYR_WORKSPACE=$(dirname "$env_sh")
  echo "test.sh: Zephyr workspace $TINYENGINE_ZEPHYR_WORKSPACE"
elif [ -z "${TINYENGINE_ZEPHYR_WORKSPACE:-}" ]; then
  echo "test.sh: ../shared/zephyr is absent: the Zephyr build tests will be skipped"
fi
"$PY" -m pytest -q -ra "$@"
