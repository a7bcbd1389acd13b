"""The bare-metal benchmark server: a generated project built with the shared
protocol code into firmware for the emulated Cortex-M boards.

Same startup, counter, stack painting and fault handling as the semihosting
runner (``runtime/qemu.py``), built by the same steps (``runtime/firmware.py``);
``firmware/serial/serial_main.c`` replaces its ``main``: the te_protocol
(or, with ``mlperf``, the MLPerf Tiny / EEMBC protocol) on the board's CMSDK
UART, which QEMU connects to the host (``runtime/emulator.QemuSerial``). These are the C sources of the Zephyr
application too (``firmware/src/te_protocol.c``, ``te_mlperf.c`` and the
generated ``te_model_desc.c``), compiled here with ``-Wall -Wextra -Werror``.

Building for an STM32 board (not emulated) links against its real memories,
which is how ``tvmc micro create-project`` measures what the model and the
protocol code need.
"""
from __future__ import annotations

import dataclasses
import os
from typing import Dict, Optional, Sequence, Union

from ..errors import TinyEngineError
from ..runtime.firmware import (DEFAULT_BOARD, DEFAULT_STACK_BYTES, FirmwareBuild, build_key, firmware_dir,
                                group_sizes)
from ..targets.boards import Board, get_board
from .model_desc import MlperfOptions, write_model_desc

__all__ = ["DEFAULT_MAX_PAYLOAD", "build_serial_firmware", "group_sizes", "measure_for_board", "serial_dir"]

DEFAULT_MAX_PAYLOAD = 1024
#: firmware/src files of the semihosting runner only.
_SEMIHOST_ONLY = ("main.c",)
#: Sources whose flash/RAM count as the protocol's (the rest of firmware/src is "firmware").
_PROTOCOL_SOURCES = ("te_protocol.c", "te_mlperf.c", "te_model_desc.c")


def serial_dir(fw: Optional[str] = None) -> str:
    """``firmware/serial``: the benchmark server's main for the emulated boards."""
    return os.path.join(fw or firmware_dir(), "serial")


def build_serial_firmware(project_dir: str, board: Union[str, Board] = DEFAULT_BOARD,
                          build_dir: Optional[str] = None, *, mlperf: Optional[MlperfOptions] = None,
                          stack_bytes: int = DEFAULT_STACK_BYTES, extra_cflags: Sequence[str] = (),
                          max_payload: int = DEFAULT_MAX_PAYLOAD, jobs: Optional[int] = None) -> str:
    """Build the benchmark-server firmware of ``project_dir`` for ``board``; returns the ELF.

    ``build_dir`` (default ``<project>/build/arm``) caches objects exactly like
    :func:`tinyengine_tvm.runtime.qemu.build_firmware` (and may be shared with
    it: the kernels compile once per core). ``extra_cflags`` apply to the
    firmware sources (test hooks such as ``-DTE_TEST_HANG_IN_RUN``). Object
    groups for :func:`group_sizes`: model, protocol, port (serial_main.c), io (the descriptor), firmware.
    """
    if not 64 <= max_payload <= 65535:
        raise TinyEngineError(f"max_payload {max_payload}: must be 64..65535 bytes")
    variant = "serial-" + build_key(mlperf, *extra_cflags, stack_bytes, max_payload)[:8]
    fb = FirmwareBuild(project_dir, board, build_dir, variant)
    desc = write_model_desc(fb.project_dir, fb.out_dir, mlperf)
    fw_src = os.path.join(fb.firmware_dir, "src")
    sources = [(os.path.join(fw_src, f), "protocol" if f in _PROTOCOL_SOURCES else "firmware")
               for f in sorted(os.listdir(fw_src)) if f.endswith(".c") and f not in _SEMIHOST_ONLY]
    # The bare-metal port of the servers: the Zephyr app has its own (main.c, counted in Zephyr's share).
    sources.append((os.path.join(serial_dir(fb.firmware_dir), "serial_main.c"), "port"))
    defines = [*fb.board_defines(), f"-DTE_PROTO_MAX_PAYLOAD={int(max_payload)}u",
               f"-DTE_MLPERF={1 if mlperf else 0}", *extra_cflags]
    return fb.build(sources, (desc, "io"), defines, stack_bytes=stack_bytes, jobs=jobs, what="serial firmware")


def measure_for_board(project_dir: str, board: Union[str, Board], build_dir: str, *,
                      mlperf: Optional[MlperfOptions] = None, max_payload: int = DEFAULT_MAX_PAYLOAD
                      ) -> Dict[str, Dict[str, int]]:
    """Flash and RAM of the model, the protocol code and the I/O buffers,
    compiled for ``board``'s core and FPU and linked with --gc-sections
    (against memories large enough for any model: the fit is decided by the
    caller, with Zephyr's allowance)."""
    b = get_board(board)
    big = dataclasses.replace(b, name=f"{b.name}-measure", flash_bytes=64 * 1024 * 1024,
                              ram_region_bytes=64 * 1024 * 1024, linker_script=None, qemu_machine=None)
    elf = build_serial_firmware(project_dir, big, build_dir, mlperf=mlperf, max_payload=max_payload)
    return group_sizes(elf)
