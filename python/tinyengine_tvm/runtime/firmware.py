"""Building a generated project into Cortex-M firmware: the steps both firmwares share.

Two firmwares are built from ``firmware/`` (at the top of the checkout): the
semihosting runner (``runtime/qemu.py``: ``firmware/src`` with its ``main.c``
and a generated ``model_glue.c``) and the benchmark server
(``micro/baremetal.py``: ``firmware/src`` without ``main.c``, plus
``firmware/serial/serial_main.c`` and a generated ``te_model_desc.c``).
:class:`FirmwareBuild` compiles the model's C and kernels, the chosen firmware
sources and the generated source with the board's flags, then links them
with the board's memory map; this module also finds the cross tools, reads
the ELF's sizes and its link map.

Objects are cached in ``<build_dir>/objects`` keyed by source text, header
texts, compiler and flags (not include paths), so one build directory shared
by several models and both firmwares compiles each kernel once per core.
"""
from __future__ import annotations

import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import subprocess
import threading
from typing import Dict, List, Mapping, Optional, Sequence, Tuple, Union

from ..errors import MemoryBudgetError, TinyEngineError
from ..targets.boards import Board, get_board
from .project import read_metadata

#: QEMU's -icount shift: each guest instruction is 2**6 ns of virtual time.
ICOUNT_SHIFT = 6
DEFAULT_BOARD = "mps2-an500"
DEFAULT_STACK_BYTES = 16 * 1024
WARNING_FLAGS = ("-Wall", "-Wextra", "-Werror")
OPT_FLAGS = ("-O2", "-g", "-ffunction-sections", "-fdata-sections")
CXX_FLAGS = ("-std=c++17", "-fno-exceptions", "-fno-rtti", "-fno-threadsafe-statics")
C_FLAGS = ("-std=c11",)
LIBC_SPECS = ("--specs=nano.specs",)
LINK_SPECS = ("--specs=nano.specs", "--specs=rdimon.specs")
#: Output sections that live in flash (besides .rodata and .data's load image).
FLASH_SECTIONS = (".vectors", ".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array", ".fini_array")


# --------------------------------------------------------------------------- tools
def gcc_prefix() -> str:
    """The cross toolchain's prefix: $TINYENGINE_ARM_PREFIX or ``arm-none-eabi-``."""
    return os.environ.get("TINYENGINE_ARM_PREFIX", "arm-none-eabi-")


def qemu_binary() -> str:
    """The emulator: $TINYENGINE_QEMU or ``qemu-system-arm``."""
    return os.environ.get("TINYENGINE_QEMU", "qemu-system-arm")


def missing_tools() -> List[str]:
    """Names of the missing cross tools (arm-none-eabi-gcc/g++/size, qemu-system-arm)."""
    p = gcc_prefix()
    return [t for t in (p + "gcc", p + "g++", p + "size", qemu_binary()) if shutil.which(t) is None]


def require_tools(qemu: bool) -> None:
    """Raise TinyEngineError naming the missing cross tools (and QEMU when ``qemu``)."""
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


# --------------------------------------------------------------------------- cache helpers
def build_key(*parts) -> str:
    """SHA-256 hex digest of ``parts`` (bytes, or anything through str())."""
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else str(p).encode())
        h.update(b"\0")
    return h.hexdigest()


def _file_bytes(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def write_if_changed(path: str, text: str) -> None:
    """Write ``text`` to ``path`` (atomically) unless it already holds it, so
    generated sources keep their timestamps and the caches stay warm."""
    if os.path.isfile(path):
        with open(path) as f:
            if f.read() == text:
                return
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)


def headers_digest(dirs: Sequence[str], exclude: Sequence[str] = ()) -> str:
    """Digest of the names and texts of the headers in ``dirs`` (for object keys)."""
    parts = []
    for d in dirs:
        if os.path.isdir(d):
            for f in sorted(os.listdir(d)):
                if f.endswith((".h", ".hpp")) and f not in exclude:
                    parts += [f, _file_bytes(os.path.join(d, f))]
    return build_key(*parts)


_INCLUDE = re.compile(rb"^[ \t]*#[ \t]*include\b[ \t]*(.*)$", re.MULTILINE)


def included_headers_digest(src: str, dirs: Sequence[str]) -> Optional[str]:
    """Digest of the names and texts of the headers ``src`` includes from its own folder or ``dirs``,
    directly or through each other; toolchain headers are left to the compiler in the key. None when
    an include cannot be followed (a macro, a quoted name found nowhere, ``__has_include``): the
    caller then keys on every header of the project.

    A model's weights include no header of the project: keyed this way, candidates of one model
    whose weights are the same share that object (the largest source) though their headers differ."""
    found: Dict[str, str] = {}
    todo = [os.path.abspath(src)]
    while todo:
        path = todo.pop()
        text = _file_bytes(path)
        if b"__has_include" in text:
            return None
        for m in _INCLUDE.finditer(text):
            arg = m.group(1).strip()
            quoted = arg[:1] == b'"' and arg.count(b'"') >= 2
            if not quoted and not (arg[:1] == b"<" and b">" in arg):
                return None
            name = arg[1:arg.index(b'"' if quoted else b">", 1)].decode(errors="replace")
            # "..." is looked for beside the including file first; <...> in the -I folders too.
            where = ([os.path.dirname(path)] if quoted else []) + list(dirs)
            hit = next((os.path.join(d, name) for d in where if os.path.isfile(os.path.join(d, name))), None)
            if hit is None:
                if quoted:
                    return None
                continue
            hit = os.path.realpath(hit)
            if hit not in found:
                found[hit] = name
                todo.append(hit)
    return build_key(*[part for h in sorted(found, key=lambda h: (found[h], h)) for part in (found[h], _file_bytes(h))])


def run_tool(cmd: List[str], what: str, cwd: Optional[str] = None) -> subprocess.CompletedProcess:
    """Run a build tool; its output becomes a TinyEngineError when it fails."""
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd)
    if proc.returncode != 0:
        raise TinyEngineError(f"{what} failed:\n  {' '.join(cmd)}\n{proc.stdout}{proc.stderr}")
    return proc


def compile_cached(src: str, compiler: str, flags: List[str], includes: List[str], headers: str,
                   obj_dir: str) -> str:
    """Compile ``src`` unless an object for the same source text, header texts,
    compiler and flags exists in ``obj_dir``; returns the object's path. Include
    paths are not part of the key (the headers' contents are), so projects
    share their kernel objects."""
    key = build_key(compiler, *flags, headers, _file_bytes(src))[:20]
    obj = os.path.join(obj_dir, f"{os.path.basename(src)}.{key}.o")
    if not os.path.isfile(obj):
        # Compiled aside and renamed: concurrent builds sharing obj_dir stay safe.
        tmp = f"{obj}.{os.getpid()}.{threading.get_ident()}.tmp"
        run_tool([compiler, *flags, *includes, "-c", src, "-o", tmp], f"compiling {os.path.basename(src)}")
        os.replace(tmp, obj)
    return obj


def variant_dir(build_dir: str, project_dir: str, name: str, board: Board, variant: str) -> str:
    """<build>/<model>-<board>-<project path hash>[-<variant>]: one build_dir may
    serve several projects, even of the same model name."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", f"{name}-{board.name}")
    return os.path.join(build_dir, f"{safe}-{build_key(project_dir)[:6]}" + (f"-{variant}" if variant else ""))


# --------------------------------------------------------------------------- build
class FirmwareBuild:
    """One firmware of a project for a board: where it is built and how.

    ``variant`` tells builds of the same project and board apart (another
    firmware, other flags); the caller writes its generated source into
    :attr:`out_dir` and calls :meth:`build`.
    """

    def __init__(self, project_dir: str, board: Union[str, Board] = DEFAULT_BOARD,
                 build_dir: Optional[str] = None, variant: str = ""):
        require_tools(qemu=False)
        self.board = get_board(board)
        self.project_dir = os.path.abspath(project_dir)
        self.meta = read_metadata(self.project_dir)
        self.name = self.meta["model"]
        self.firmware_dir = firmware_dir()
        self.build_dir = os.path.abspath(build_dir or os.path.join(self.project_dir, "build", "arm"))
        self.obj_dir = os.path.join(self.build_dir, "objects")
        self.out_dir = variant_dir(self.build_dir, self.project_dir, self.name, self.board, variant)
        os.makedirs(self.obj_dir, exist_ok=True)
        os.makedirs(self.out_dir, exist_ok=True)
        p = gcc_prefix()
        self.cc, self.cxx = p + "gcc", p + "g++"
        self.arch = list(self.board.gcc_flags())

    def measurement_sources(self) -> List[Tuple[str, str]]:
        """The measurement firmware's sources (``firmware/src/*.c``), as :meth:`build` takes them."""
        fw_src = os.path.join(self.firmware_dir, "src")
        return [(os.path.join(fw_src, f), "firmware") for f in sorted(os.listdir(fw_src)) if f.endswith(".c")]

    def board_defines(self) -> List[str]:
        """The -D flags every firmware source gets for this board."""
        b = self.board
        return [f"-DTE_SYSTICK_HZ={b.systick_clock_hz}u", f"-DTE_ICOUNT_SHIFT={ICOUNT_SHIFT}",
                f"-DTE_BOARD=\"{b.name}\"", f"-DTE_UART_BASE={b.uart_base:#x}u"]

    def build(self, firmware_sources: Sequence[Tuple[str, str]], generated: Tuple[str, str],
              defines: Sequence[str], *, stack_bytes: int = DEFAULT_STACK_BYTES, jobs: Optional[int] = None,
              what: str = "firmware", model_defines: Sequence[str] = ()) -> str:
        """Compile the model, ``firmware_sources`` and the ``generated`` source
        (each ``(path, object group)``; firmware and generated sources get
        ``defines``, the model's C ``model_defines``, e.g. ``-DTE_PROFILE``),
        link ``firmware.elf`` in :attr:`out_dir`; returns its path.

        The object groups ("model" for the model's C and kernels) are written
        to objects.json beside the ELF for :func:`model_sizes` and :func:`group_sizes`.
        """
        project_dir, fw = self.project_dir, self.firmware_dir
        p_inc_dir, k_inc_dir = os.path.join(project_dir, "include"), os.path.join(project_dir, "src", "kernels")
        fw_inc_dir = os.path.join(fw, "include")
        inc_project = ["-I", p_inc_dir, "-I", k_inc_dir]
        inc_fw = ["-I", fw_inc_dir]
        common = [*self.arch, *OPT_FLAGS, *WARNING_FLAGS, *LIBC_SPECS]
        # The kernels never include the model's own header: leaving it out of their
        # key lets every model share them.
        kernel_headers = headers_digest([p_inc_dir, k_inc_dir], exclude=(f"{self.name}.h",))
        model_headers = headers_digest([p_inc_dir, k_inc_dir])
        fw_headers = headers_digest([fw_inc_dir])

        jobs_list = []
        for f in sorted(os.listdir(os.path.join(project_dir, "src"))):
            if f.endswith(".c"):
                src = os.path.join(project_dir, "src", f)
                headers = included_headers_digest(src, [p_inc_dir, k_inc_dir])
                jobs_list.append((src, self.cc, [*C_FLAGS, *common, *model_defines], inc_project,
                                  model_headers if headers is None else headers, "model"))
        if os.path.isdir(k_inc_dir):
            for f in sorted(os.listdir(k_inc_dir)):
                if f.endswith(".cc"):
                    jobs_list.append((os.path.join(k_inc_dir, f), self.cxx, [*CXX_FLAGS, *common], inc_project,
                                      kernel_headers, "model"))
        fw_flags = [*C_FLAGS, *common, *defines]
        for src, group in firmware_sources:
            jobs_list.append((src, self.cc, fw_flags, inc_fw, fw_headers, group))
        jobs_list.append((generated[0], self.cc, fw_flags, inc_fw + inc_project,
                          build_key(fw_headers, model_headers), generated[1]))

        with concurrent.futures.ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2) as pool:
            futures = [pool.submit(compile_cached, *job[:5], self.obj_dir) for job in jobs_list]
            objects = [f.result() for f in futures]
        groups: Dict[str, List[str]] = {}
        for o, j in zip(objects, jobs_list):
            groups.setdefault(j[5], []).append(o)
        return self.link(objects, {"model": groups.get("model", []), "all": objects, "groups": groups},
                         stack_bytes=stack_bytes, what=what)

    def linker_script(self) -> str:
        """The board's linker script, or a memory.ld generated from its memories."""
        board = self.board
        if board.linker_script:
            return os.path.join(self.firmware_dir, "ld", board.linker_script)
        path = os.path.join(self.out_dir, "memory.ld")
        write_if_changed(path, (
            f"/* {board.name} ({board.mcu}); generated from tinyengine_tvm.targets.boards. */\n"
            "MEMORY\n{\n"
            f"  FLASH (rx)  : ORIGIN = {board.flash_origin:#010x}, LENGTH = {board.flash_bytes}\n"
            f"  RAM   (rwx) : ORIGIN = {board.ram_region_origin:#010x}, LENGTH = {board.ram_region_bytes}\n"
            "}\nINCLUDE common.ld\n"))
        return path

    def link(self, objects: List[str], object_groups: Mapping[str, object], *,
             stack_bytes: int = DEFAULT_STACK_BYTES, what: str = "firmware") -> str:
        """Link ``objects`` into ``firmware.elf`` unless an identical link already made it.

        The ELF is linked aside and renamed, so concurrent builds stay safe; a
        memory region overflow becomes a MemoryBudgetError with the numbers.
        """
        fw, board, name = self.firmware_dir, self.board, self.name
        ld = self.linker_script()
        elf = os.path.join(self.out_dir, "firmware.elf")
        tmp_elf = f"{elf}.{os.getpid()}.tmp"
        link = [self.cc, *self.arch, "-nostartfiles", *LINK_SPECS, "-T", ld, "-L", os.path.join(fw, "ld"),
                "-Wl,--gc-sections", f"-Wl,--defsym=__stack_size__={int(stack_bytes)}", *objects, "-lm"]
        stamp = os.path.join(self.out_dir, "link.stamp")
        key = build_key(*link, elf, _file_bytes(ld), _file_bytes(os.path.join(fw, "ld", "common.ld")))
        link += [f"-Wl,-Map={tmp_elf}.map", "-o", tmp_elf]
        groups_json = os.path.join(self.out_dir, "objects.json")
        if os.path.isfile(elf) and os.path.isfile(stamp) and _file_bytes(stamp).decode() == key:
            # The same objects may be grouped differently now (the groups are not in the key).
            write_if_changed(groups_json, json.dumps(object_groups, indent=1))
            return elf
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
        write_if_changed(groups_json, json.dumps(object_groups, indent=1))
        os.replace(tmp_elf + ".map", elf + ".map")
        os.replace(tmp_elf, elf)
        write_if_changed(stamp, key)
        return elf


# --------------------------------------------------------------------------- sizes
def elf_sizes(elf: str) -> Dict[str, int]:
    """Bytes per region from ``arm-none-eabi-size -A``: text (code, vectors,
    exception tables), rodata, data, bss (stack and heap reserve excluded),
    stack_reserved, flash (text + rodata + data) and static_ram (data + bss)."""
    proc = run_tool([gcc_prefix() + "size", "-A", elf], "arm-none-eabi-size")
    sec: Dict[str, int] = {}
    for line in proc.stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[0].startswith(".") and parts[1].isdigit():
            sec[parts[0]] = int(parts[1])
    text = sum(sec.get(s, 0) for s in FLASH_SECTIONS)
    out = {"text_bytes": text, "rodata_bytes": sec.get(".rodata", 0), "data_bytes": sec.get(".data", 0),
           "bss_bytes": sec.get(".bss", 0), "stack_reserved_bytes": sec.get(".stack", 0)}
    out["flash_bytes"] = out["text_bytes"] + out["rodata_bytes"] + out["data_bytes"]
    out["static_ram_bytes"] = out["data_bytes"] + out["bss_bytes"]
    return out


_MAP_OUT = re.compile(r"^(\.[\w.]+|/DISCARD/)(?:\s|$)")
_MAP_IN = re.compile(r"^\s+(?:\S+\s+)?0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*\.o)\s*$")


def link_map_sizes(elf: str, owner: Mapping[str, str]) -> Dict[str, Dict[str, int]]:
    """Flash and static RAM per group, read from the ELF's link map (after
    --gc-sections); ``owner`` maps object paths to their group, other objects
    (libc, ...) are not counted."""
    out = {g: {"flash_bytes": 0, "ram_bytes": 0} for g in set(owner.values())}
    section, started = None, False
    with open(elf + ".map") as f:
        for line in f:
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            m = _MAP_OUT.match(line)
            if m and not line.startswith(" "):
                section = m.group(1)
                continue
            m = _MAP_IN.match(line)
            if not m or m.group(3).strip() not in owner:
                continue
            g, size = owner[m.group(3).strip()], int(m.group(2), 16)
            if section in FLASH_SECTIONS or section == ".rodata":
                out[g]["flash_bytes"] += size
            elif section == ".data":
                out[g]["flash_bytes"] += size
                out[g]["ram_bytes"] += size
            elif section == ".bss":
                out[g]["ram_bytes"] += size
    return out


def _object_groups(elf: str) -> Optional[dict]:
    path = os.path.join(os.path.dirname(elf), "objects.json")
    if not (os.path.isfile(path) and os.path.isfile(elf + ".map")):
        return None
    with open(path) as f:
        return json.load(f)


def model_sizes(elf: str) -> Dict[str, int]:
    """Flash and static RAM of the model itself (its C and kernels), from the
    link map; the rest is firmware and libc. Empty when the map is missing."""
    groups = _object_groups(elf)
    if groups is None:
        return {}
    sizes = link_map_sizes(elf, {o: "model" for o in groups["model"]}).get("model", {})
    return {"model_flash_bytes": sizes.get("flash_bytes", 0), "model_static_ram_bytes": sizes.get("ram_bytes", 0)}


def group_sizes(elf: str) -> Dict[str, Dict[str, int]]:
    """Flash and static RAM per object group of a firmware built by
    :meth:`FirmwareBuild.build` (model, firmware, and for the benchmark server
    protocol and io), from its link map (after --gc-sections)."""
    groups = _object_groups(elf)
    if groups is None:
        raise TinyEngineError(f"{elf}: no link map or objects.json beside it (build it with FirmwareBuild)")
    out = link_map_sizes(elf, {o: g for g, objs in groups["groups"].items() for o in objs})
    for g in groups["groups"]:  # a group with no object in the map still has a (zero) entry
        out.setdefault(g, {"flash_bytes": 0, "ram_bytes": 0})
    return out
