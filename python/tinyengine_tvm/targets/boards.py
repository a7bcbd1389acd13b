"""Boards: the STM32 development boards the project targets and the QEMU
machines that stand in for their cores.

Memory figures are the MCU datasheet's totals (``sram_bytes`` counts all
on-chip SRAM including TCM; ``ram_region_*`` is the largest contiguous block
the firmware's linker script uses). QEMU has no STM32F4/F7/H7/L4 machine: the
Arm MPS2/MPS3 FPGA boards ``mps2-an386`` (M4), ``mps2-an500`` (M7) and
``mps3-an547`` (M55) run the same instruction sets.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Tuple

from ..errors import TinyEngineError
from .cores import Core, get_core

KB = 1024
MB = 1024 * 1024


@dataclass(frozen=True)
class Board:
    """One board: core, clock, memories, and how to emulate it (if QEMU can)."""

    name: str                    #: "NUCLEO-F746ZG", "mps2-an500"
    core: str                    #: "cortex-m4" | "cortex-m7" | "cortex-m55"
    clock_hz: int                #: maximum core clock (the FPGA clock for MPS2/MPS3)
    sram_bytes: int              #: total on-chip SRAM (datasheet)
    flash_bytes: int             #: on-chip flash (MPS2/MPS3: the code memory)
    qemu_machine: Optional[str]  #: ``qemu-system-arm -M`` value, or None
    uart_base: int               #: the UART wired to the debug probe / QEMU serial0
    mcu: str = ""                #: the microcontroller or FPGA image
    uart_name: str = ""          #: e.g. "USART3"
    fpu: Optional[str] = None    #: -mfpu override of the core's default
    flash_origin: int = 0x08000000
    ram_region_origin: int = 0x20000000
    ram_region_bytes: int = 0    #: contiguous RAM at ram_region_origin the linker script uses
    linker_script: Optional[str] = None  #: firmware/ld/<file>; None: generated from the fields above
    systick_hz: int = 0          #: SysTick clock (CLKSOURCE=1, processor clock); 0 = clock_hz
    float_abi: Optional[str] = None  #: -mfloat-abi override of the core's ("soft": built without the FPU)

    @property
    def core_info(self) -> Core:
        return get_core(self.core)

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None

    @property
    def systick_clock_hz(self) -> int:
        return self.systick_hz or self.clock_hz

    def gcc_flags(self) -> Tuple[str, ...]:
        """-mcpu/-mthumb/-mfloat-abi/-mfpu for this board's core and FPU."""
        return self.core_info.gcc_flags(self.fpu, self.float_abi)


_BOARDS = [
    # ---- STM32 development boards (datasheet figures) -------------------------
    Board("NUCLEO-F746ZG", "cortex-m7", 216_000_000, 320 * KB, 1 * MB, None, 0x40004800,
          mcu="STM32F746ZG", uart_name="USART3", fpu="fpv5-sp-d16", ram_region_bytes=320 * KB),
    Board("STM32F746G-DISCO", "cortex-m7", 216_000_000, 320 * KB, 1 * MB, None, 0x40011000,
          mcu="STM32F746NG", uart_name="USART1", fpu="fpv5-sp-d16", ram_region_bytes=320 * KB),
    Board("NUCLEO-H743ZI", "cortex-m7", 480_000_000, 1 * MB, 2 * MB, None, 0x40004800,
          mcu="STM32H743ZI", uart_name="USART3", fpu="fpv5-d16",
          ram_region_origin=0x24000000, ram_region_bytes=512 * KB),  # AXI SRAM
    Board("NUCLEO-F412ZG", "cortex-m4", 100_000_000, 256 * KB, 1 * MB, None, 0x40004800,
          mcu="STM32F412ZG", uart_name="USART3", ram_region_bytes=256 * KB),
    Board("NUCLEO-L4R5ZI", "cortex-m4", 120_000_000, 640 * KB, 2 * MB, None, 0x40008000,
          mcu="STM32L4R5ZI", uart_name="LPUART1", ram_region_bytes=640 * KB),
    Board("DISCO-L475-IOT1", "cortex-m4", 80_000_000, 128 * KB, 1 * MB, None, 0x40013800,
          mcu="STM32L475VG", uart_name="USART1", ram_region_bytes=128 * KB),  # SRAM1 + SRAM2 alias
    # ---- QEMU machines ----------------------------------------------------------
    Board("mps2-an386", "cortex-m4", 25_000_000, 4 * MB, 4 * MB, "mps2-an386", 0x40004000,
          mcu="Arm MPS2 AN386 (Cortex-M4)", uart_name="CMSDK UART0", flash_origin=0,
          ram_region_bytes=4 * MB, linker_script="mps2.ld"),
    Board("mps2-an500", "cortex-m7", 25_000_000, 4 * MB, 4 * MB, "mps2-an500", 0x40004000,
          mcu="Arm MPS2 AN500 (Cortex-M7)", uart_name="CMSDK UART0", flash_origin=0,
          ram_region_bytes=4 * MB, linker_script="mps2.ld"),
    Board("mps3-an547", "cortex-m55", 32_000_000, 512 * KB, 512 * KB, "mps3-an547", 0x59303000,
          mcu="Arm MPS3 AN547 (Cortex-M55)", uart_name="CMSDK UART0", flash_origin=0,
          ram_region_bytes=512 * KB, linker_script="mps3-an547.ld"),  # ITCM / DTCM
]

BOARDS: Dict[str, Board] = {b.name: b for b in _BOARDS}

#: The QEMU machine standing in for each core.
QEMU_BOARD_FOR_CORE = {"cortex-m4": "mps2-an386", "cortex-m7": "mps2-an500", "cortex-m55": "mps3-an547"}


def get_board(name) -> Board:
    """The :class:`Board` called ``name`` (case-insensitive); a Board passes through."""
    if isinstance(name, Board):
        return name
    for b in BOARDS.values():
        if b.name.lower() == str(name).lower():
            return b
    raise TinyEngineError(f"unknown board '{name}'; known boards: {', '.join(BOARDS)}")


def qemu_board_for(board) -> Board:
    """The emulated board with the same core as ``board`` (itself when emulated)."""
    b = get_board(board)
    return b if b.emulated else BOARDS[QEMU_BOARD_FOR_CORE[b.core]]
