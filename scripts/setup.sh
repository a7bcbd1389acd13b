#!/usr/bin/env bash
# Install tinyengine-tvm (editable) with its test dependencies into the current Python.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
command -v gcc >/dev/null && command -v g++ >/dev/null || {
  echo "setup: gcc and g++ are needed to build generated C on this host" >&2; exit 1; }
"$PY" -m pip install --quiet --upgrade pip "setuptools>=77"
# ai-edge-litert first: installing tflite-micro (dev builds only) before it lets
# pip pick a pre-release protobuf.
"$PY" -m pip install --quiet "ai-edge-litert"
"$PY" -m pip install --quiet -e ".[test]"
