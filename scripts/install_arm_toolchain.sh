#!/usr/bin/env bash
# Install the Cortex-M cross toolchain and emulator (Debian/Ubuntu, run as root):
# arm-none-eabi-gcc/g++ with newlib(-nano) and qemu-system-arm. Does nothing when
# both are already on PATH.
set -euo pipefail
if command -v arm-none-eabi-gcc >/dev/null 2>&1 && command -v qemu-system-arm >/dev/null 2>&1; then
  echo "install_arm_toolchain: arm-none-eabi-gcc and qemu-system-arm already present"
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null 2>&1 || { echo "install_arm_toolchain: run as root (or install sudo)" >&2; exit 1; }
  SUDO="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update
$SUDO apt-get install -y --no-install-recommends gcc-arm-none-eabi libnewlib-arm-none-eabi qemu-system-arm
arm-none-eabi-gcc --version | head -n 1
qemu-system-arm --version | head -n 1
