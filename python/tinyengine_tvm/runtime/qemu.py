"""Build a generated project into bare-metal firmware and run it on an emulated Cortex-M.

The firmware is the project's own (``firmware/`` at the top of the checkout):
startup code, linker scripts per board family, fault handlers that end QEMU
with a distinctive status, a SysTick instruction counter and a ``main`` that
reads the inputs from host files through semihosting, runs ``<name>_run``
once, writes the outputs back and prints one report line. A small
``model_glue.c`` generated here binds it to the model's header.

QEMU runs with ``-icount shift=6``: every guest instruction advances virtual
time by 64 ns, so the SysTick count converts to executed instructions
(within one instruction, and identical from run to run). Instructions are not cycles: compare ratios
between builds on the same emulator, not absolute times.

    from tinyengine_tvm.runtime.qemu import run_on_qemu
    outputs, report = run_on_qemu("out/", {"input": x}, board="mps2-an500")
    report["instructions"], report["stack_peak_bytes"], report["flash_bytes"]

Command line: ``python -m tinyengine_tvm.runtime.qemu run <project> [--board B]``
and ``... glue <project> <dir>`` (writes model_glue.c, for CMake builds).
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

from ..errors import MemoryBudgetError, TinyEngineError
from ..targets.boards import Board, get_board
from .project import match_inputs, read_metadata

ICOUNT_SHIFT = 6
DEFAULT_BOARD = "mps2-an500"
DEFAULT_STACK_BYTES = 16 * 1024
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
OPT_FLAGS = ("-O2", "-g", "-ffunction-sections", "-fdata-sections")
CXX_FLAGS = ("-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics")
C_FLAGS = ("-std=c11",)
LIBC_SPECS = ("--specs=nano.specs",)
LINK_SPECS = ("--specs=nano.specs", "--specs=rdimon.specs")

#: QEMU exit statuses of the firmware (firmware/include/te_firmware.h).
EXIT_STATUSES = {
    2: "an input/output file could not be opened",
    3: "an input file has the wrong size",
    4: "writing an output file failed",
    5: "the model's run function returned an error",
    6: "stack overflow (the stack's guard words were overwritten)",
    97: "HardFault",
    98: "MemManage fault",
    99: "BusFault",
    100: "UsageFault",
    101: "NMI",
    102: "unexpected interrupt",
    103: "SecureFault",
}

#: Configurable Fault Status Register bits (ARMv7-M/ARMv8-M), for readable fault messages.
_CFSR_BITS = {
    0: "IACCVIOL: instruction fetch from a protected/non-executable address",
    1: "DACCVIOL: data access violation",
    3: "MUNSTKERR: fault unstacking an exception return",
    4: "MSTKERR: fault stacking an exception entry (stack overflow?)",
    8: "IBUSERR: bus error on instruction fetch",
    9: "PRECISERR: precise data bus error",
    10: "IMPRECISERR: imprecise data bus error",
    11: "UNSTKERR: bus error unstacking an exception return",
    12: "STKERR: bus error stacking an exception entry (stack overflow?)",
    16: "UNDEFINSTR: undefined instruction",
    17: "INVSTATE: invalid execution state (corrupted return address? stack overflow?)",
    18: "INVPC: invalid exception return",
    19: "NOCP: coprocessor/FPU access while disabled",
    20: "STKOF: stack overflow (SP went below MSPLIM)",
    24: "UNALIGNED: unaligned access trap",
    25: "DIVBYZERO: integer division by zero",
}

_C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}

_FLASH_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array", ".fini_array")


# --------------------------------------------------------------------------- tools
def _gcc_prefix() -> str:
    return os.environ.get("TINYENGINE_ARM_PREFIX", "arm-none-eabi-")


def _qemu() -> str:
    return os.environ.get("TINYENGINE_QEMU", "qemu-system-arm")


def missing_tools() -> List[str]:
    """Names of the missing cross tools (arm-none-eabi-gcc/g++/size, qemu-system-arm)."""
    p = _gcc_prefix()
    return [t for t in (p + "gcc", p + "g++", p + "size", _qemu()) if shutil.which(t) is None]


def _require_tools(qemu: bool) -> None:
    missing = [t for t in missing_tools() if qemu or "qemu" not in t]
    if missing:
        raise TinyEngineError(f"missing tool(s) {', '.join(missing)}; install them with "
                              "scripts/install_arm_toolchain.sh (Debian/Ubuntu, as root)")


def firmware_dir() -> str:
    """The firmware template: $TINYENGINE_FIRMWARE_DIR, a copy inside the package
    (``_firmware``), or ``firmware/`` of the checkout (editable install)."""
    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    for c in (os.environ.get("TINYENGINE_FIRMWARE_DIR", ""), os.path.join(here, "_firmware"),
              os.path.normpath(os.path.join(here, "..", "..", "firmware"))):
        if c and os.path.isfile(os.path.join(c, "src", "main.c")):
            return c
    raise TinyEngineError("cannot find the firmware sources (firmware/); set TINYENGINE_FIRMWARE_DIR")


# --------------------------------------------------------------------------- project


def _nbytes(desc: dict) -> int:
    return int(np.prod(desc["shape"], dtype=np.int64)) * np.dtype(desc["dtype"]).itemsize


def glue_source(meta: dict) -> str:
    """Text of model_glue.c: static I/O buffers, their host file names and a
    call of ``<name>_run`` (see firmware/include/te_firmware.h)."""
    name = meta["model"]
    N = name.upper()
    out = [f"/* Generated by tinyengine_tvm.runtime.qemu for model '{name}'. Do not edit. */\n",
           "#include <stdint.h>\n\n#include \"te_firmware.h\"\n", f"#include \"{name}.h\"\n\n"]
    entries: Dict[str, List[str]] = {"input": [], "output": []}
    args = []
    for kind, descs in (("input", meta["inputs"]), ("output", meta["outputs"])):
        for i, d in enumerate(descs):
            if d["dtype"] not in _C_TYPES:
                raise TinyEngineError(f"{kind} '{d['name']}': dtype {d['dtype']} has no C type here")
            ctype, buf = _C_TYPES[d["dtype"]], f"te_{kind}_{i}"
            out.append(f"static {ctype} {buf}[{N}_{kind.upper()}_{i}_SIZE] __attribute__((aligned(16)));\n")
            out.append(f"_Static_assert(sizeof {buf} == {_nbytes(d)}u, "
                       f"\"{kind} {i}: header and metadata.json disagree on its size\");\n")
            entries[kind].append(f"    {{{json.dumps(d['name'])}, \"{kind}_{i}.bin\", {buf}, sizeof {buf}}},\n")
            args.append(buf)
    out.append(f"\nconst char te_model_name[] = \"{name}\";\n")
    out.append(f"const uint32_t te_num_inputs = {len(meta['inputs'])}u;\n")
    out.append(f"const uint32_t te_num_outputs = {len(meta['outputs'])}u;\n")
    for kind in ("input", "output"):
        out.append(f"const te_io_buffer te_{kind}s[] = {{\n")
        out.extend(entries[kind] or ["    {0, 0, 0, 0},\n"])
        out.append("};\n")
    out.append(f"\nint te_model_run(void) {{ return {name}_run({', '.join(args)}); }}\n")
    return "".join(out)


def write_glue(project_dir: str, out_dir: str) -> str:
    """Write model_glue.c for ``project_dir`` into ``out_dir``; returns its path."""
    os.makedirs(out_dir, exist_ok=True)
    path = os.path.join(out_dir, "model_glue.c")
    _write_if_changed(path, glue_source(read_metadata(project_dir)))
    return path


def _write_if_changed(path: str, text: str) -> None:
    if os.path.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


# --------------------------------------------------------------------------- build
def _sha(*parts) -> str:
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def _headers_digest(dirs: Sequence[str], exclude: Sequence[str] = ()) -> str:
    parts = []
    for d in dirs:
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f.endswith((".h", ".hpp")) and f not in exclude:
                    parts += [f, _file_bytes(os.path.join(d, f))]
    return _sha(*parts)


def _run_tool(cmd: List[str], what: str, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise TinyEngineError(f"{what} failed:\n  {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc


def _compile_cached(src: str, compiler: str, flags: List[str], includes: List[str], headers: str,
                    obj_dir: str) -> str:
    """Compile ``src`` unless an object for the same source text, header texts,
    compiler and flags exists in ``obj_dir``. Include paths are not part of the
    key (the headers' contents are), so projects share their kernel objects."""
    key = _sha(compiler, *flags, headers, _file_bytes(src))[:20]
    obj = os.path.join(obj_dir, f"{os.path.basename(src)}.{key}.o")
    if not os.path.isfile(obj):
        tmp = f"{obj}.{os.getpid()}.{threading.get_ident()}.tmp"
        _run_tool([compiler, *flags, *includes, "-c", src, "-o", tmp], f"compiling {os.path.basename(src)}")
        os.replace(tmp, obj)
    return obj


def _linker_script(board: Board, fw: str, out_dir: str) -> str:
    if board.linker_script:
        return os.path.join(fw, "ld", board.linker_script)
    path = os.path.join(out_dir, "memory.ld")
    _write_if_changed(path, (
        f"/* {board.name} ({board.mcu}); generated from tinyengine_tvm.targets.boards. */\n"
        "MEMORY\n{\n"
        f"  FLASH (rx)  : ORIGIN = {board.flash_origin:#010x}, LENGTH = {board.flash_bytes}\n"
        f"  RAM   (rwx) : ORIGIN = {board.ram_region_origin:#010x}, LENGTH = {board.ram_region_bytes}\n"
        "}\nINCLUDE common.ld\n"))
    return path


def _variant_dir(build_dir: str, project_dir: str, name: str, board: Board, variant: str) -> str:
    """<build>/<model>-<board>-<project path hash>[-<variant>]: one build_dir may
    serve several projects, even of the same model name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{name}-{board.name}")
    return os.path.join(build_dir, f"{safe}-{_sha(project_dir)[:6]}" + (f"-{variant}" if variant else ""))


def build_firmware(project_dir: str, board: Union[str, Board] = DEFAULT_BOARD, build_dir: Optional[str] = None,
                   *, stack_bytes: int = DEFAULT_STACK_BYTES, extra_cflags: Sequence[str] = (),
                   jobs: Optional[int] = None) -> str:
    """Build the firmware ELF of a generated project for ``board``; returns its path.

    ``build_dir`` (default ``<project>/build/arm``) caches everything: objects
    are keyed by source, headers, compiler and flags, so one ``build_dir``
    shared by several models compiles each kernel once per core; the ELF is
    relinked only when an input changed. Boards QEMU cannot emulate (the STM32
    boards) are linked against their real flash/RAM, which checks the model
    fits (running that ELF needs a debugger with semihosting).
    ``extra_cflags`` apply to the firmware and glue only (e.g.
    ``-DTE_FORCE_FAULT`` in tests).
    """
    _require_tools(qemu=False)
    board = get_board(board)
    project_dir = os.path.abspath(project_dir)
    meta = read_metadata(project_dir)
    name = meta["model"]
    fw = firmware_dir()
    build_dir = os.path.abspath(build_dir or os.path.join(project_dir, "build", "arm"))
    obj_dir = os.path.join(build_dir, "objects")
    variant = _sha(*extra_cflags, stack_bytes)[:8] if (extra_cflags or stack_bytes != DEFAULT_STACK_BYTES) else ""
    out_dir = _variant_dir(build_dir, project_dir, name, board, variant)
    os.makedirs(obj_dir, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    glue = write_glue(project_dir, out_dir)

    p = _gcc_prefix()
    cc, cxx = p + "gcc", p + "g++"
    arch = list(board.gcc_flags())
    inc_project = ["-I", os.path.join(project_dir, "include"), "-I", os.path.join(project_dir, "src", "kernels")]
    inc_fw = ["-I", os.path.join(fw, "include")]
    common = [*arch, *OPT_FLAGS, *WARNING_FLAGS, *LIBC_SPECS]
    fw_defs = [f"-DTE_SYSTICK_HZ={board.systick_clock_hz}u", f"-DTE_ICOUNT_SHIFT={ICOUNT_SHIFT}",
               f"-DTE_BOARD=\"{board.name}\"", f"-DTE_UART_BASE={board.uart_base:#x}u", *extra_cflags]
    fw_inc_dir, p_inc_dir, k_inc_dir = (os.path.join(fw, "include"), os.path.join(project_dir, "include"),
                                        os.path.join(project_dir, "src", "kernels"))
    # The kernels never include the model's own header: leaving it out of their
    # key lets every model share them.
    kernel_headers = _headers_digest([p_inc_dir, k_inc_dir], exclude=(f"{name}.h",))
    model_headers = _headers_digest([p_inc_dir, k_inc_dir])
    fw_headers = _headers_digest([fw_inc_dir])
    glue_headers = _sha(fw_headers, model_headers)

    jobs_list = []
    model_c = sorted(os.path.join(project_dir, "src", f) for f in os.listdir(os.path.join(project_dir, "src"))
                     if f.endswith(".c"))
    kernels = sorted(os.path.join(k_inc_dir, f) for f in os.listdir(k_inc_dir)
                     if f.endswith(".cc")) if os.path.isdir(k_inc_dir) else []
    for src in model_c:
        jobs_list.append((src, cc, [*C_FLAGS, *common], inc_project, model_headers, "model"))
    for src in kernels:
        jobs_list.append((src, cxx, [*CXX_FLAGS, *common], inc_project, kernel_headers, "model"))
    fw_src = os.path.join(fw, "src")
    for f in sorted(os.listdir(fw_src)):
        if f.endswith(".c"):
            jobs_list.append((os.path.join(fw_src, f), cc, [*C_FLAGS, *common, *fw_defs], inc_fw, fw_headers,
                              "firmware"))
    jobs_list.append((glue, cc, [*C_FLAGS, *common, *fw_defs], inc_fw + inc_project, glue_headers, "firmware"))

    with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
        futures = [pool.submit(_compile_cached, *job[:5], obj_dir) for job in jobs_list]
        objects = [f.result() for f in futures]
    model_objects = [o for o, j in zip(objects, jobs_list) if j[5] == "model"]

    ld = _linker_script(board, fw, out_dir)
    elf = os.path.join(out_dir, "firmware.elf")
    return link_firmware(cc, arch, ld, fw, stack_bytes, objects, elf, out_dir, name, board,
                         {"model": model_objects, "all": objects}, what="firmware")


def link_firmware(cc: str, arch, ld: str, fw: str, stack_bytes: int, objects: List[str], elf: str,
                  out_dir: str, name: str, board: Board, object_groups: dict, what: str) -> str:
    """Link ``objects`` into ``elf`` unless an identical link already made it.

    The ELF is linked aside and renamed, so concurrent builds stay safe; a
    memory region overflow becomes a MemoryBudgetError with the numbers.
    ``object_groups`` is written to objects.json for the size reports.
    """
    tmp_elf = f"{elf}.{os.getpid()}.tmp"
    link = [cc, *arch, "-nostartfiles", *LINK_SPECS, "-T", ld, "-L", os.path.join(fw, "ld"),
            "-Wl,--gc-sections", f"-Wl,--defsym=__stack_size__={int(stack_bytes)}", *objects, "-lm"]
    stamp = os.path.join(out_dir, "link.stamp")
    key = _sha(*link, elf, _file_bytes(ld), _file_bytes(os.path.join(fw, "ld", "common.ld")))
    link += [f"-Wl,-Map={tmp_elf}.map", "-o", tmp_elf]
    if not (os.path.isfile(elf) and os.path.isfile(stamp) and _file_bytes(stamp).decode() == key):
        proc = subprocess.run(link, capture_output=True, text=True)
        if proc.returncode != 0:
            for f in (tmp_elf, tmp_elf + ".map"):
                if os.path.exists(f):
                    os.remove(f)
            overflow = re.findall(r"region `(\w+)' overflowed by (\d+) bytes", proc.stderr)
            if overflow:
                raise MemoryBudgetError(
                    f"'{name}' does not fit {board.name} ({board.flash_bytes} B flash, "
                    f"{board.ram_region_bytes} B RAM region, {int(stack_bytes)} B stack): "
                    + ", ".join(f"{r} overflowed by {n} bytes" for r, n in overflow))
            raise TinyEngineError(f"linking the {what} of '{name}' for {board.name} failed:\n"
                                  f"  {' '.join(link)}\n{proc.stdout}{proc.stderr}")
        with open(os.path.join(out_dir, "objects.json"), "w") as f:
            json.dump(object_groups, f, indent=1)
        os.replace(tmp_elf + ".map", elf + ".map")
        os.replace(tmp_elf, elf)
        _write_if_changed(stamp, key)
    return elf


# --------------------------------------------------------------------------- sizes
def elf_sizes(elf: str) -> Dict[str, int]:
    """Bytes per region from ``arm-none-eabi-size -A``: text (code, vectors,
    exception tables), rodata, data, bss (stack and heap reserve excluded),
    stack_reserved, flash (text + rodata + data) and static_ram (data + bss)."""
    proc = _run_tool([_gcc_prefix() + "size", "-A", elf], "arm-none-eabi-size")
    sec: Dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    text = sum(sec.get(s, 0) for s in _FLASH_SECTIONS)
    out = {"text_bytes": text, "rodata_bytes": sec.get(".rodata", 0), "data_bytes": sec.get(".data", 0),
           "bss_bytes": sec.get(".bss", 0), "stack_reserved_bytes": sec.get(".stack", 0)}
    out["flash_bytes"] = out["text_bytes"] + out["rodata_bytes"] + out["data_bytes"]
    out["static_ram_bytes"] = out["data_bytes"] + out["bss_bytes"]
    return out


_MAP_OUT = re.compile(r"^(\.[\w.]+|/DISCARD/)(?:\s|$)")
_MAP_IN = re.compile(r"^\s+(?:\S+\s+)?0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*\.o)\s*$")


def model_sizes(elf: str) -> Dict[str, int]:
    """Flash and static RAM of the model itself (its C and kernels, after
    --gc-sections), read from the link map; the rest is firmware and libc."""
    map_path, objs_path = elf + ".map", os.path.join(os.path.dirname(elf), "objects.json")
    if not (os.path.isfile(map_path) and os.path.isfile(objs_path)):
        return {}
    with open(objs_path) as f:
        model_objs = set(json.load(f)["model"])
    flash = ram = 0
    section = None
    started = False
    with open(map_path) as f:
        for line in f:
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            m = _MAP_OUT.match(line)
            if m and not line.startswith(" "):
                section = m.group(1)
                continue
            m = _MAP_IN.match(line)
            if not m or m.group(3).strip() not in model_objs:
                continue
            size = int(m.group(2), 16)
            if section in _FLASH_SECTIONS or section == ".rodata":
                flash += size
            elif section == ".data":
                flash += size
                ram += size
            elif section == ".bss":
                ram += size
    return {"model_flash_bytes": flash, "model_static_ram_bytes": ram}


# --------------------------------------------------------------------------- run
_REPORT = re.compile(r"tinyengine-report:(.*)")


def _parse_report(text: str) -> Optional[Dict[str, Union[int, str]]]:
    m = _REPORT.search(text)
    if not m:
        return None
    out: Dict[str, Union[int, str]] = {}
    for kv in m.group(1).split():
        k, _, v = kv.partition("=")
        out[k] = int(v) if v.isdigit() else v
    return out


def _explain_fault(text: str) -> str:
    m = re.search(r"tinyengine-fault: .*cfsr=0x([0-9a-f]+)", text)
    if not m:
        return ""
    cfsr = int(m.group(1), 16)
    lines = [f"  {desc}" for bit, desc in _CFSR_BITS.items() if cfsr >> bit & 1]
    if "outside the stack" in text:
        lines.append("  the stacked SP is outside the stack region: stack overflow (raise stack_bytes)")
    return ("\n" + "\n".join(lines)) if lines else ""


def _emulated(board: Union[str, Board]) -> Board:
    b = get_board(board)
    if not b.emulated:
        from ..targets.boards import qemu_board_for

        raise TinyEngineError(f"board {b.name} cannot be emulated by QEMU; run its core ({b.core}) on "
                              f"{qemu_board_for(b).name} (QEMU boards: mps2-an386 = Cortex-M4, "
                              f"mps2-an500 = M7, mps3-an547 = M55)")
    return b


def qemu_command(elf: str, board: Union[str, Board]) -> List[str]:
    """The qemu-system-arm command line that runs ``elf`` on ``board``."""
    b = _emulated(board)
    return [_qemu(), "-M", b.qemu_machine, "-nographic", "-monitor", "none", "-serial", "none",
            "-semihosting-config", "enable=on,target=native", "-icount", f"shift={ICOUNT_SHIFT}",
            "-kernel", os.path.abspath(elf)]


def run_firmware(elf: str, input_blobs: Sequence[bytes], board: Union[str, Board] = DEFAULT_BOARD,
                 timeout: float = 60, output_count: Optional[int] = None) -> Tuple[List[bytes], dict]:
    """Run a firmware ELF once under QEMU with raw input bytes (no checks on the
    host side: the firmware checks sizes). Returns the output files' bytes and
    the parsed report line. Faults, errors and time-outs raise TinyEngineError."""
    _require_tools(qemu=True)
    cmd = qemu_command(elf, board)
    run_dir = tempfile.mkdtemp(prefix="tinyengine-qemu-")
    try:
        for i, blob in enumerate(input_blobs):
            with open(os.path.join(run_dir, f"input_{i}.bin"), "wb") as f:
                f.write(bytes(blob))
        t0 = time.perf_counter()
        try:
            proc = subprocess.run(cmd, cwd=run_dir, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired as exc:
            tail = ((exc.stdout or b"") + (exc.stderr or b"")) if isinstance(exc.stdout, bytes) else \
                (exc.stdout or "") + (exc.stderr or "")
            tail = tail.decode(errors="replace") if isinstance(tail, bytes) else tail
            raise TinyEngineError(f"QEMU ({get_board(board).qemu_machine}) did not finish within {timeout:g} s: "
                                  f"the firmware hangs or the model is too slow for the time-out\n"
                                  f"  {' '.join(cmd)}\n{tail[-2000:]}") from None
        seconds = time.perf_counter() - t0
        text = proc.stdout + proc.stderr
        if proc.returncode != 0:
            what = EXIT_STATUSES.get(proc.returncode, "QEMU or firmware failure")
            if "Lockup" in text:
                what = "CPU lockup: a fault while handling a fault, typically a stack overflow"
            detail = "\n".join(l for l in text.splitlines() if l.startswith(("tinyengine-", "qemu"))) or text[-2000:]
            detail += _explain_fault(text)
            raise TinyEngineError(f"firmware {os.path.basename(os.path.dirname(elf))} on {get_board(board).name} "
                                  f"exited with status {proc.returncode} ({what}):\n{detail}")
        report = _parse_report(text)
        if report is None:
            raise TinyEngineError(f"the firmware exited without its report line:\n{text[-2000:]}")
        outputs = []
        n_out = output_count if output_count is not None else len(
            [f for f in os.listdir(run_dir) if f.startswith("output_")])
        for i in range(n_out):
            path = os.path.join(run_dir, f"output_{i}.bin")
            if not os.path.isfile(path):
                raise TinyEngineError(f"the firmware did not write output {i} ({path})")
            outputs.append(_file_bytes(path))
        report["qemu_seconds"] = seconds
        return outputs, report
    finally:
        shutil.rmtree(run_dir, ignore_errors=True)


def _input_blobs(meta: dict, inputs) -> List[bytes]:
    metas = meta["inputs"]
    arrays = match_inputs(inputs, metas)
    return [arrays[m["name"]].tobytes() for m in metas]


class QemuModel:
    """A generated project built once for an emulated board, run any number of times."""

    def __init__(self, project_dir: str, board: Union[str, Board] = DEFAULT_BOARD,
                 build_dir: Optional[str] = None, timeout: float = 60, **build_kwargs):
        self.project_dir = os.path.abspath(project_dir)
        self.board = _emulated(board)
        self.meta = read_metadata(self.project_dir)
        self.timeout = timeout
        self.elf = build_firmware(self.project_dir, self.board, build_dir, **build_kwargs)
        self.sizes = {**elf_sizes(self.elf), **model_sizes(self.elf)}

    def run(self, inputs) -> Tuple[Dict[str, np.ndarray], dict]:
        """One inference; inputs by tensor name (or positionally). Returns
        (outputs by name, report)."""
        blobs = _input_blobs(self.meta, inputs)
        raw, rep = run_firmware(self.elf, blobs, self.board, self.timeout, len(self.meta["outputs"]))
        outputs = {}
        for m, blob in zip(self.meta["outputs"], raw):
            if len(blob) != _nbytes(m):
                raise TinyEngineError(f"output '{m['name']}': the firmware wrote {len(blob)} bytes, "
                                      f"expected {_nbytes(m)} ({m['dtype']}{m['shape']})")
            outputs[m["name"]] = np.frombuffer(blob, dtype=m["dtype"]).reshape(m["shape"]).copy()
        return outputs, self._report(rep)

    def _report(self, rep: dict) -> dict:
        core = self.board.core
        if rep.get("model") != self.meta["model"]:
            raise TinyEngineError(f"the firmware reports model {rep.get('model')!r}, expected {self.meta['model']!r}")
        report = {
            "board": self.board.name,
            "core": core,
            "qemu_machine": self.board.qemu_machine,
            "model": self.meta["model"],
            "instructions": int(rep["instructions"]),
            "ticks": int(rep["ticks"]),
            "sysclk_hz": int(rep["sysclk_hz"]),
            "icount_shift": int(rep["icount_shift"]),
            "stack_peak_bytes": int(rep["stack_peak_bytes"]),
            "stack_size_bytes": int(rep["stack_size_bytes"]),
            **self.sizes,
            "arena_bytes": int(self.meta.get("memory", {}).get("arena_bytes", 0)),
            # the core compile(core=...) selected kernels for ("portable": none); the
            # firmware is always built with -mcpu of this board's core
            "kernels": (self.meta.get("kernel_selection") or {}).get("core", "portable"),
            "elf": self.elf,
            "qemu_seconds": rep.get("qemu_seconds"),
        }
        report["sram_bytes"] = report["static_ram_bytes"] + report["stack_peak_bytes"]
        return report


def run_on_qemu(project_dir: str, inputs, board: Union[str, Board] = DEFAULT_BOARD,
                build_dir: Optional[str] = None, timeout: float = 60) -> Tuple[Dict[str, np.ndarray], dict]:
    """Run one inference of a generated project on an emulated Cortex-M.

    Builds (or reuses from ``build_dir``) the firmware for ``board``'s core,
    runs ``qemu-system-arm -icount shift=6`` with semihosting and returns
    ``(outputs by name, report)``. The report holds ``instructions`` (executed
    by exactly one ``<name>_run``), ``stack_peak_bytes``, ``flash_bytes``
    (text + rodata + data), ``sram_bytes`` (data + bss + stack peak),
    ``board``, ``core`` and more detail (per-section and model-only sizes).
    Faults, time-outs and wrongly sized outputs raise TinyEngineError.
    """
    return QemuModel(project_dir, board, build_dir, timeout).run(inputs)


# --------------------------------------------------------------------------- CLI
def main(argv: Optional[Sequence[str]] = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(prog="python -m tinyengine_tvm.runtime.qemu",
                                 description="Build and run a generated project on an emulated Cortex-M.")
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("glue", help="write model_glue.c (for CMake builds of firmware/)")
    g.add_argument("project")
    g.add_argument("out_dir")
    r = sub.add_parser("run", help="build, run once on random or .npz inputs, print the report as JSON")
    r.add_argument("project")
    r.add_argument("--board", default=DEFAULT_BOARD)
    r.add_argument("--build-dir")
    r.add_argument("--inputs", help=".npz keyed by input name (default: seeded random inputs)")
    r.add_argument("--timeout", type=float, default=60)
    args = ap.parse_args(argv)
    if args.cmd == "glue":
        print(write_glue(args.project, args.out_dir))
        return 0
    meta = read_metadata(args.project)
    if args.inputs:
        from .host import load_npz_inputs

        inputs = load_npz_inputs(args.inputs, meta["inputs"])
    else:
        from ..testing.reference import random_inputs

        inputs = random_inputs(meta["inputs"], 0)
    _, report = run_on_qemu(args.project, inputs, args.board, args.build_dir, args.timeout)
    print(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
