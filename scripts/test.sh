#!/usr/bin/env bash
# Set up and run the whole test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The Cortex-M tests need arm-none-eabi-gcc and qemu-system-arm (Debian packages).
bash scripts/install_arm_toolchain.sh
PY=${PYTHON:-python3}
"$PY" -m pytest -q -ra "$@"
