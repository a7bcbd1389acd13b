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
from .options import bool_option, int_option

__all__ = ["DEFAULT_MAX_PAYLOAD", "build_serial_firmware", "create_baremetal_project", "group_sizes",
           "measure_for_board", "mlperf_from_options", "serial_dir"]

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
                          max_payload: int = DEFAULT_MAX_PAYLOAD, jobs: Optional[int] = None,
                          profile: bool = False) -> str:
    """Build the benchmark-server firmware of ``project_dir`` for ``board``; returns the ELF.

    ``profile``: a profile build (``-DTE_PROFILE`` for the model and the
    server): every step of the model is timed and PROFILE reports it.

    ``build_dir`` (default ``<project>/build/arm``) caches objects exactly like
    :func:`tinyengine_tvm.runtime.qemu.build_firmware` (and may be shared with
    it: the kernels compile once per core). ``extra_cflags`` apply to the
    firmware sources (test hooks such as ``-DTE_TEST_HANG_IN_RUN``). Object
    groups for :func:`group_sizes`: model, protocol, port (serial_main.c), io (the descriptor), firmware.
    """
    if not 64 <= max_payload <= 65535:
        raise TinyEngineError(f"max_payload {max_payload}: must be 64..65535 bytes")
    profile_flags = ["-DTE_PROFILE"] if profile else []
    variant = "serial-" + build_key(mlperf, *extra_cflags, *profile_flags, stack_bytes, max_payload)[:8]
    fb = FirmwareBuild(project_dir, board, build_dir, variant)
    desc = write_model_desc(fb.project_dir, fb.out_dir, mlperf)
    fw_src = os.path.join(fb.firmware_dir, "src")
    sources = [(os.path.join(fw_src, f), "protocol" if f in _PROTOCOL_SOURCES else "firmware")
               for f in sorted(os.listdir(fw_src)) if f.endswith(".c") and f not in _SEMIHOST_ONLY]
    # The bare-metal port of the servers: the Zephyr app has its own (main.c, counted in Zephyr's share).
    sources.append((os.path.join(serial_dir(fb.firmware_dir), "serial_main.c"), "port"))
    defines = [*fb.board_defines(), f"-DTE_PROTO_MAX_PAYLOAD={int(max_payload)}u",
               f"-DTE_MLPERF={1 if mlperf else 0}", *profile_flags, *extra_cflags]
    return fb.build(sources, (desc, "io"), defines, stack_bytes=stack_bytes, jobs=jobs,
                    what="profile firmware" if profile else "serial firmware", model_defines=profile_flags)


def measure_for_board(project_dir: str, board: Union[str, Board], build_dir: str, *,
                      mlperf: Optional[MlperfOptions] = None, max_payload: int = DEFAULT_MAX_PAYLOAD,
                      profile: bool = False) -> Dict[str, Dict[str, int]]:
    """Flash and RAM of the model, the protocol code and the I/O buffers,
    compiled for ``board``'s core and FPU and linked with --gc-sections
    (against memories large enough for any model: the fit is decided by the
    caller, with Zephyr's allowance)."""
    b = get_board(board)
    big = dataclasses.replace(b, name=f"{b.name}-measure", flash_bytes=64 * 1024 * 1024,
                              ram_region_bytes=64 * 1024 * 1024, linker_script=None, qemu_machine=None)
    elf = build_serial_firmware(project_dir, big, build_dir, mlperf=mlperf, max_payload=max_payload, profile=profile)
    return group_sizes(elf)


# --------------------------------------------------------------------------- tvmc micro create-project ... baremetal
#: ``--project-option`` keys of the bare-metal platform.
BAREMETAL_OPTION_HELP = {
    "board": "emulated board: mps2-an386, mps2-an500 (default), mps3-an547",
    "mlperf": "true: the firmware speaks the MLPerf Tiny / EEMBC protocol instead of tinyengine's (false)",
    "mlperf_model": "what 'profile' reports, kws01|ic01|vww01|ad01 or any name (default: the model's name)",
    "mlperf_input": "raw|uint8_minus_128|float32: what 'db' bytes are (default: by mlperf_model, else raw)",
    "mlperf_results": "vector|mse: what 'results' prints (default: by mlperf_model, else vector)",
    "mlperf_format": "printf3|trunc3|printf3_comma: how values are printed (default: as the benchmark's "
                     "reference submission)",
    "mlperf_db_bytes": "capacity of the db buffer (default: the reference's 27648, or the input's size)",
    "stack_bytes": f"the firmware's stack ({DEFAULT_STACK_BYTES})",
    "max_payload": f"largest tinyengine protocol payload, 64..4096 bytes ({DEFAULT_MAX_PAYLOAD})",
}


def mlperf_from_options(opts: Dict[str, str], meta: dict) -> Optional[MlperfOptions]:
    """The MLPerf configuration the ``mlperf*`` project options ask for (None without mlperf=true)."""
    enabled = bool_option(opts, "mlperf")
    keys = [k for k in opts if k.startswith("mlperf_")]
    if not enabled:
        if keys:
            raise TinyEngineError(f"project option(s) {', '.join(sorted(keys))} require mlperf=true")
        return None
    db = int_option(opts, "mlperf_db_bytes", 1, 1, 0x7FFFFFFF) if "mlperf_db_bytes" in opts else None
    ml = MlperfOptions.create(opts.get("mlperf_model") or meta["model"], opts.get("mlperf_input"),
                              opts.get("mlperf_results"), opts.get("mlperf_format"), db)
    ml.db_capacity(meta)  # refuses a capacity below the input's size
    return ml


def create_baremetal_project(out_dir: str, compiled: str, options: Optional[Dict[str, str]] = None, *,
                             force: bool = False) -> dict:
    """``tvmc micro create-project OUT COMPILED baremetal``: build the benchmark
    server of a compiled model for an emulated board into ``OUT/firmware.elf``
    (with ``mlperf=true`` the MLPerf Tiny DUT), next to a copy of the model
    (``OUT/model``, for the hosts' checks), ``project.json`` and a README with
    the QEMU command line. Returns what was decided."""
    import json
    import shutil
    import tempfile

    from ..output_paths import GENERATOR, check_output_dir, describe_unlisted, not_ours, read_manifest, \
        staged_dir, unlisted_files
    from ..runtime.emulator import emulated_board, qemu_command
    from ..runtime.project import open_project
    from .model_desc import mlperf_default_baud, read_metadata

    opts = dict(options or {})
    for k in opts:
        if k not in BAREMETAL_OPTION_HELP:
            raise TinyEngineError(f"unknown project option '{k}' for baremetal; options: "
                                  + "; ".join(f"{k}: {v}" for k, v in BAREMETAL_OPTION_HELP.items()))
    board = emulated_board(opts.get("board") or "mps2-an500")
    stack = int_option(opts, "stack_bytes", DEFAULT_STACK_BYTES, 1024, 1 << 22)
    payload = int_option(opts, "max_payload", DEFAULT_MAX_PAYLOAD, 64, 4096)

    def recognise(folder: str) -> Optional[str]:
        info = read_manifest(os.path.join(folder, "project.json"))
        if info is None or info.get("generator") != GENERATOR or info.get("platform") != "baremetal" \
                or not isinstance(info.get("files"), list):
            return not_ours("bare-metal project (no project.json of ours listing its files)")
        why = describe_unlisted(unlisted_files(folder, [f for f in info["files"] if isinstance(f, str)]),
                                "bare-metal project")
        return why if why is not None or force else "holds a previous bare-metal project (pass --force to replace it)"

    target = check_output_dir(out_dir, "project directory", recognise, keep=[compiled])
    with tempfile.TemporaryDirectory(prefix="tinyengine-baremetal-") as tmp:
        src = open_project(compiled, os.path.join(tmp, "compiled"))
        meta = read_metadata(src)
        ml = mlperf_from_options(opts, meta)
        elf = build_serial_firmware(src, board, os.path.join(tmp, "build"), mlperf=ml, stack_bytes=stack,
                                    max_payload=payload)
        stage = os.path.join(tmp, "stage")
        os.makedirs(stage)
        shutil.copyfile(elf, os.path.join(stage, "firmware.elf"))
        shutil.copytree(src, os.path.join(stage, "model"), ignore=shutil.ignore_patterns("build", "*.o", "__pycache__"))
        cmd = qemu_command("firmware.elf", board)
        cmd[cmd.index("-kernel") + 1] = "firmware.elf"
        cmd[cmd.index("-serial") + 1] = "pty"
        qemu = " ".join(cmd)
        if ml:
            host = (f"python -m tinyengine_tvm.micro.mlperf_host --port /dev/pts/N --project {target.path} "
                    f"--mode p   # or: python scripts/mlperf_runner_qemu.py (the official runner)")
            proto = (f"the MLPerf Tiny / EEMBC DUT protocol (model '{ml.model_version}', input {ml.input_mode}, "
                     f"results {ml.results}, format {ml.results_format}, db buffer {ml.db_capacity(meta)} B; "
                     f"the official runner would use {mlperf_default_baud(ml.model_version)} baud, which the "
                     "emulated UART ignores)")
        else:
            host = f"tvmc run {target.path}/model --device=serial --port /dev/pts/N --print-time"
            proto = "the tinyengine benchmark protocol (docs/serial_protocol.md)"
        with open(os.path.join(stage, "README.md"), "w") as fh:
            fh.write(f"# {meta['model']} on {board.name} (bare metal, QEMU)\n\n"
                     f"Generated by `tvmc micro create-project`: `firmware.elf` serves {proto} on the "
                     f"board's UART (QEMU's serial 0).\n\n```sh\n{qemu}\n"
                     f"# QEMU prints 'char device redirected to /dev/pts/N'; then:\n{host}\n```\n\n"
                     "Time stamps are SysTick counts of QEMU's virtual time (-icount shift=6: 64 ns per "
                     "instruction): instruction counts, not a real board's cycles.\n")
        info = {"generator": GENERATOR, "platform": "baremetal", "model": meta["model"], "board": board.name,
                "options": {k: str(v) for k, v in opts.items()}, "mlperf": vars(ml) if ml else None,
                "stack_bytes": stack, "max_payload": payload, "qemu_command": qemu}
        info["files"] = sorted(os.path.relpath(os.path.join(r, f), stage)
                               for r, _, fs in os.walk(stage) for f in fs) + ["project.json"]
        with open(os.path.join(stage, "project.json"), "w") as fh:
            json.dump(info, fh, indent=2)
        with staged_dir(target) as final:
            for entry in os.listdir(stage):
                shutil.move(os.path.join(stage, entry), os.path.join(final, entry))
    info["project_dir"] = target.path
    info["elf"] = os.path.join(target.path, "firmware.elf")
    return info
