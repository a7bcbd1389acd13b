"""The bare-metal benchmark server: a generated project built with the shared
protocol code into firmware for the emulated Cortex-M boards.

Same startup, counter, stack painting and fault handling as the semihosting
runner (``runtime/qemu.py``); ``firmware/serial/serial_main.c`` replaces its
``main``: the te_protocol (or, with ``mlperf``, the MLPerf Tiny / EEMBC
protocol) on the board's CMSDK UART, which QEMU connects to the host
(``runtime/serial_link.QemuSerial``). These are the C sources of the Zephyr
application too (``firmware/src/te_protocol.c``, ``te_mlperf.c`` and the
generated ``te_model_desc.c``), compiled here with ``-Wall -Wextra -Werror``.

Building for an STM32 board (not emulated) links against its real memories,
which is how ``tvmc micro create-project`` measures what the model and the
protocol code need.
"""
from __future__ import annotations

import concurrent.futures
import dataclasses
import json
import os
from typing import Dict, List, Optional, Sequence, Union

from ..errors import TinyEngineError
from ..runtime import qemu as _q
from ..targets.boards import Board, get_board
from .model_desc import MlperfOptions, read_metadata, write_model_desc

DEFAULT_MAX_PAYLOAD = 1024
#: firmware/src files of the semihosting runner only.
_SEMIHOST_ONLY = ("main.c",)
#: Object groups whose flash/RAM the link map is read for.
_PROTOCOL_SOURCES = ("te_protocol.c", "te_mlperf.c", "serial_main.c", "te_model_desc.c")


def serial_dir(fw: Optional[str] = None) -> str:
    return os.path.join(fw or _q.firmware_dir(), "serial")


def build_serial_firmware(project_dir: str, board: Union[str, Board] = _q.DEFAULT_BOARD,
                          build_dir: Optional[str] = None, *, mlperf: Optional[MlperfOptions] = None,
                          stack_bytes: int = _q.DEFAULT_STACK_BYTES, extra_cflags: Sequence[str] = (),
                          max_payload: int = DEFAULT_MAX_PAYLOAD, jobs: Optional[int] = None) -> str:
    """Build the benchmark-server firmware of ``project_dir`` for ``board``; returns the ELF.

    ``build_dir`` (default ``<project>/build/arm``) caches objects exactly like
    :func:`tinyengine_tvm.runtime.qemu.build_firmware` (and may be shared with
    it: the kernels compile once per core). ``extra_cflags`` apply to the
    firmware sources (test hooks such as ``-DTE_TEST_HANG_IN_RUN``).
    """
    _q._require_tools(qemu=False)
    board = get_board(board)
    if not 64 <= max_payload <= 65535:
        raise TinyEngineError(f"max_payload {max_payload}: must be 64..65535 bytes")
    project_dir = os.path.abspath(project_dir)
    meta = read_metadata(project_dir)
    name = meta["model"]
    fw = _q.firmware_dir()
    build_dir = os.path.abspath(build_dir or os.path.join(project_dir, "build", "arm"))
    obj_dir = os.path.join(build_dir, "objects")
    variant = "serial-" + _q._sha(mlperf, *extra_cflags, stack_bytes, max_payload)[:8]
    out_dir = _q._variant_dir(build_dir, project_dir, name, board, variant)
    os.makedirs(obj_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    desc = write_model_desc(project_dir, out_dir, mlperf)

    p = _q._gcc_prefix()
    cc, cxx = p + "gcc", p + "g++"
    arch = list(board.gcc_flags())
    k_inc_dir = os.path.join(project_dir, "src", "kernels")
    p_inc_dir = os.path.join(project_dir, "include")
    fw_inc_dir = os.path.join(fw, "include")
    inc_project = ["-I", p_inc_dir, "-I", k_inc_dir]
    inc_fw = ["-I", fw_inc_dir]
    common = [*arch, *_q.OPT_FLAGS, *_q.WARNING_FLAGS, *_q.LIBC_SPECS]
    fw_defs = [f"-DTE_SYSTICK_HZ={board.systick_clock_hz}u", f"-DTE_ICOUNT_SHIFT={_q.ICOUNT_SHIFT}",
               f"-DTE_BOARD=\"{board.name}\"", f"-DTE_UART_BASE={board.uart_base:#x}u",
               f"-DTE_PROTO_MAX_PAYLOAD={int(max_payload)}u", f"-DTE_MLPERF={1 if mlperf else 0}", *extra_cflags]
    kernel_headers = _q._headers_digest([p_inc_dir, k_inc_dir], exclude=(f"{name}.h",))
    model_headers = _q._headers_digest([p_inc_dir, k_inc_dir])
    fw_headers = _q._headers_digest([fw_inc_dir])
    desc_headers = _q._sha(fw_headers, model_headers)

    jobs_list = []
    for f in sorted(os.listdir(os.path.join(project_dir, "src"))):
        if f.endswith(".c"):
            jobs_list.append((os.path.join(project_dir, "src", f), cc, [*_q.C_FLAGS, *common], inc_project,
                              model_headers, "model"))
    if os.path.isdir(k_inc_dir):
        for f in sorted(os.listdir(k_inc_dir)):
            if f.endswith(".cc"):
                jobs_list.append((os.path.join(k_inc_dir, f), cxx, [*_q.CXX_FLAGS, *common], inc_project,
                                  kernel_headers, "model"))
    fw_src = os.path.join(fw, "src")
    for f in sorted(os.listdir(fw_src)):
        if f.endswith(".c") and f not in _SEMIHOST_ONLY:
            group = "protocol" if f in _PROTOCOL_SOURCES else "firmware"
            jobs_list.append((os.path.join(fw_src, f), cc, [*_q.C_FLAGS, *common, *fw_defs], inc_fw, fw_headers,
                              group))
    jobs_list.append((os.path.join(serial_dir(fw), "serial_main.c"), cc, [*_q.C_FLAGS, *common, *fw_defs], inc_fw,
                      fw_headers, "protocol"))
    jobs_list.append((desc, cc, [*_q.C_FLAGS, *common, *fw_defs], inc_fw + inc_project, desc_headers, "io"))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        futures = [pool.submit(_q._compile_cached, *job[:5], obj_dir) for job in jobs_list]
        objects = [f.result() for f in futures]
    groups: Dict[str, List[str]] = {}
    for o, j in zip(objects, jobs_list):
        groups.setdefault(j[5], []).append(o)

    ld = _q._linker_script(board, fw, out_dir)
    elf = os.path.join(out_dir, "firmware.elf")
    return _q.link_firmware(cc, arch, ld, fw, stack_bytes, objects, elf, out_dir, name, board,
                            {"model": groups.get("model", []), "all": objects, "groups": groups},
                            what="serial firmware")


def group_sizes(elf: str) -> Dict[str, Dict[str, int]]:
    """Flash and static RAM per object group (model, protocol, io, firmware)
    of a serial-firmware ELF, from its link map (after --gc-sections)."""
    map_path, objs_path = elf + ".map", os.path.join(os.path.dirname(elf), "objects.json")
    with open(objs_path) as f:
        groups = json.load(f)["groups"]
    owner = {o: g for g, objs in groups.items() for o in objs}
    out = {g: {"flash_bytes": 0, "ram_bytes": 0} for g in groups}
    section, started = None, False
    with open(map_path) as f:
        for line in f:
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            m = _q._MAP_OUT.match(line)
            if m and not line.startswith(" "):
                section = m.group(1)
                continue
            m = _q._MAP_IN.match(line)
            if not m or m.group(3).strip() not in owner:
                continue
            g, size = owner[m.group(3).strip()], int(m.group(2), 16)
            if section in _q._FLASH_SECTIONS or section == ".rodata":
                out[g]["flash_bytes"] += size
            elif section == ".data":
                out[g]["flash_bytes"] += size
                out[g]["ram_bytes"] += size
            elif section == ".bss":
                out[g]["ram_bytes"] += size
    return out


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
