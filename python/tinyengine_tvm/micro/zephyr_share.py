"""Zephyr's own flash and RAM in a built application, measured from its ELF and link map.

A Zephyr build of the generated application links the model and its kernels
(``libtinyengine_model.a``), the benchmark servers (``libtinyengine_protocol.a``),
the model descriptor (``libapp.a(te_model_desc.c.obj)``) and the Zephyr port of
the servers (``libapp.a(main.c.obj)``) with Zephyr (kernel, drivers, C library,
start-up). create-project measures the first three bare-metal for any model;
the port is the same for every model, so it counts as Zephyr's (its
bare-metal counterpart, serial_main.c, is not counted there). Zephyr's share is
everything but the model, the servers and the descriptor:

- flash: the ``zephyr,flash`` region (CONFIG_FLASH_BASE_ADDRESS,
  CONFIG_FLASH_SIZE) from its start to the end of the last allocated section
  with contents loaded there (code, read-only data, the initial values of
  .data), alignment gaps included: the "FLASH used" Zephyr's build prints;
- RAM: likewise up to the end of the last section in the ``zephyr,sram``
  region (CONFIG_SRAM_BASE_ADDRESS, CONFIG_SRAM_SIZE), less
  CONFIG_MAIN_STACK_SIZE (the fit check counts that setting by itself: main's
  stack guard and alignment stay in Zephyr's share);
- less the model's, servers' and descriptor's input sections in those regions
  (``port``, main.c's, is reported but stays in Zephyr's share).

Sections in other regions (e.g. nucleo_h743zi's ``eth_stm32`` buffers in
SRAM3) are reported apart, under ``other_regions``: they take none of the
application's memory. The sizes of our groups come from the link map's input
sections (``zephyr/zephyr.map``), attributed by the output section they land in.
"""
from __future__ import annotations

import os
import re
import subprocess
from typing import Dict, Tuple

from ..errors import TinyEngineError

#: Archives (and app objects) of the generated application, by group (first match wins).
APP_GROUPS = (("model", "libtinyengine_model.a("), ("protocol", "libtinyengine_protocol.a("),
              ("io", "libapp.a(te_model_desc.c.obj)"), ("port", "libapp.a("))
#: The groups create-project's fit counts itself (the rest is Zephyr's share).
FIT_GROUPS = ("model", "protocol", "io")

_MAP_OUT = re.compile(r"^([._A-Za-z][\w.]*)(?:\s|$)")
_MAP_IN = re.compile(r"^\s+(?:\S+\s+)?0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*?)\s*$")


def read_kconfig(build_dir: str) -> Dict[str, str]:
    """``zephyr/.config`` of a build as a dict (values without quotes)."""
    path = os.path.join(build_dir, "zephyr", ".config")
    out: Dict[str, str] = {}
    with open(path) as f:
        for line in f:
            key, sep, value = line.strip().partition("=")
            if sep and key.startswith("CONFIG_"):
                out[key] = value.strip('"')
    return out


def _sections(elf: str, objdump: str) -> Dict[str, Tuple[int, int, int, bool]]:
    """name -> (size, vma, lma, has contents) of every allocated section (``objdump -h``)."""
    try:
        text = subprocess.run([objdump, "-h", elf], capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError) as exc:
        raise TinyEngineError(f"{objdump} -h {elf} failed: {exc}") from None
    out = {}
    lines = text.splitlines()
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) >= 7 and parts[0].isdigit() and i + 1 < len(lines):
            flags = lines[i + 1]
            if "ALLOC" in flags:
                out[parts[1]] = (int(parts[2], 16), int(parts[3], 16), int(parts[4], 16), "CONTENTS" in flags)
    return out


def measure_build(build_dir: str, objdump: str = "arm-none-eabi-objdump") -> dict:
    """Flash and RAM of a Zephyr build of the generated app: totals, our groups, Zephyr's share.

    Returns ``{"flash": {"total", "model", "protocol", "io", "port", "zephyr"}, "ram": {... "main_stack"},
    "other_regions": {section: bytes}, "regions": {...}}``.
    """
    elf = os.path.join(build_dir, "zephyr", "zephyr.elf")
    map_path = os.path.join(build_dir, "zephyr", "zephyr.map")
    for p in (elf, map_path):
        if not os.path.isfile(p):
            raise TinyEngineError(f"{p} does not exist: not a finished Zephyr build")
    cfg = read_kconfig(build_dir)
    kb = 1024
    flash = (int(cfg["CONFIG_FLASH_BASE_ADDRESS"], 0), int(cfg["CONFIG_FLASH_SIZE"]) * kb)
    ram = (int(cfg["CONFIG_SRAM_BASE_ADDRESS"], 0), int(cfg["CONFIG_SRAM_SIZE"]) * kb)
    main_stack = int(cfg.get("CONFIG_MAIN_STACK_SIZE", "0"))

    def inside(addr: int, region: Tuple[int, int]) -> bool:
        return region[0] <= addr < region[0] + region[1]

    where: Dict[str, Tuple[bool, bool]] = {}  # output section -> (counts in flash, counts in RAM)
    # The regions' used extent, as the linker's --print-memory-usage counts it.
    totals = {"flash": 0, "ram": 0}
    other: Dict[str, int] = {}
    for name, (size, vma, lma, contents) in _sections(elf, objdump).items():
        in_flash = contents and inside(lma, flash)
        in_ram = inside(vma, ram)
        where[name] = (in_flash, in_ram)
        if in_flash and size:
            totals["flash"] = max(totals["flash"], lma + size - flash[0])
        if in_ram and size:
            totals["ram"] = max(totals["ram"], vma + size - ram[0])
        if size and not in_flash and not in_ram:
            other[name] = size

    groups = {g: {"flash": 0, "ram": 0} for g, _ in APP_GROUPS}
    section, started = None, False
    with open(map_path) as f:
        for line in f:
            if not started:
                started = line.startswith("Linker script and memory map")
                continue
            m = _MAP_OUT.match(line)
            if m:
                section = m.group(1)
                continue
            m = _MAP_IN.match(line)
            if not m or section not in where:
                continue
            owner = next((g for g, key in APP_GROUPS if key in m.group(3)), None)
            if owner is None:
                continue
            size = int(m.group(2), 16)
            in_flash, in_ram = where[section]
            groups[owner]["flash"] += size if in_flash else 0
            groups[owner]["ram"] += size if in_ram else 0

    ours = {k: sum(groups[g][k] for g in FIT_GROUPS) for k in ("flash", "ram")}
    return {
        "flash": {"total": totals["flash"], **{g: v["flash"] for g, v in groups.items()},
                  "zephyr": totals["flash"] - ours["flash"]},
        "ram": {"total": totals["ram"], **{g: v["ram"] for g, v in groups.items()}, "main_stack": main_stack,
                "zephyr": totals["ram"] - ours["ram"] - main_stack},
        "other_regions": other,
        "regions": {"flash": {"base": flash[0], "size": flash[1]}, "ram": {"base": ram[0], "size": ram[1]}},
        "board": cfg.get("CONFIG_BOARD", ""),
    }
