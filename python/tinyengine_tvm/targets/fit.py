"""Does a compiled model fit a board?  Checked at compile time, before anything is written.

SRAM: the arena must fit the board's contiguous RAM region (the linker
script's) after the firmware's own needs: ``RUNTIME_SRAM_ALLOWANCE`` covers the
bare-metal firmware's stack and static data (measured stack peaks of every
shared model on QEMU are under 400 B; the firmware's .data+.bss under 1 KiB).
Flash: weights plus ``RUNTIME_FLASH_ALLOWANCE`` for kernels, schedule and
startup code (the largest shared model's code is under 40 KiB).
"""
from __future__ import annotations

from typing import List

from ..errors import MemoryBudgetError
from ..naming import buffer_list, describe_op
from .boards import Board

RUNTIME_SRAM_ALLOWANCE = 8 * 1024
RUNTIME_FLASH_ALLOWANCE = 64 * 1024


def check_fits(metadata: dict, board: Board) -> None:
    """Raise MemoryBudgetError, with the numbers and the peak, when the model does not fit."""
    mem = metadata["memory"]
    ram = board.ram_region_bytes or board.sram_bytes
    problems: List[str] = []
    need_ram = mem["arena_bytes"] + RUNTIME_SRAM_ALLOWANCE
    if need_ram > ram:
        peak = metadata["ops"][mem["peak_op_index"]] if mem.get("peak_op_index") is not None else None
        where = (f"; the peak is at {describe_op(metadata, mem['peak_op_index'])} "
                 f"({buffer_list(peak['live_buffers'])})") if peak else ""
        problems.append(f"SRAM: arena {mem['arena_bytes']:,} B + {RUNTIME_SRAM_ALLOWANCE:,} B firmware allowance "
                        f"= {need_ram:,} B, {need_ram - ram:,} B over the {ram:,} B RAM region{where}")
    need_flash = mem["weights_bytes"] + RUNTIME_FLASH_ALLOWANCE
    if need_flash > board.flash_bytes:
        problems.append(f"flash: weights {mem['weights_bytes']:,} B + {RUNTIME_FLASH_ALLOWANCE:,} B code allowance "
                        f"= {need_flash:,} B, {need_flash - board.flash_bytes:,} B over the {board.flash_bytes:,} B flash")
    if problems:
        raise MemoryBudgetError(f"{metadata['model']} does not fit {board.name}: " + "; ".join(problems))
