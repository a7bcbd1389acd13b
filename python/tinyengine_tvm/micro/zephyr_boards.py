"""The STM32 boards of the board table as Zephyr 4.x knows them.

Figures from Zephyr's board files (``boards/st/<board>/<board>.dts`` and
``.yaml`` of zephyrproject-rtos/zephyr, 4.x), which differ from the chips'
datasheet maxima in ``targets/boards.py``:

- ``clock_hz``: the core clock Zephyr's device tree sets (``&rcc
  clock-frequency``), e.g. 192 MHz on NUCLEO-F746ZG although the chip runs
  at 216 MHz. The firmware reports the clock it runs at
  (``sys_clock_hw_cycles_per_sec()``), so this is only for estimates.
- ``sram_bytes``: the ``zephyr,sram`` region an application's data, stacks
  and the arena live in (e.g. 256 KiB of the F746's 320 KiB: its 64 KiB DTCM
  is a separate region; 192 KiB SRAM1 on the L4R5, 96 KiB SRAM1 on the L475).
- ``flash_bytes``: the flash an application may fill (minus the storage
  partitions the board's device tree puts at the end of flash).
- ``uart``: the device-tree label of the UART wired to the ST-LINK virtual
  COM port (Zephyr's console on these boards).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Dict

from ..errors import TinyEngineError
from ..targets.boards import Board, get_board

KB = 1024


@dataclass(frozen=True)
class ZephyrBoard:
    zephyr_name: str   #: west build -b <zephyr_name>
    board: str         #: the name in targets.boards (tvmc boards)
    uart: str          #: device-tree label of the virtual-COM-port UART
    clock_hz: int      #: core clock Zephyr's board files set
    sram_bytes: int    #: the zephyr,sram region
    flash_bytes: int   #: flash available to the application
    note: str = ""

    @property
    def info(self) -> Board:
        return get_board(self.board)


_ZEPHYR_BOARDS = [
    ZephyrBoard("nucleo_f746zg", "NUCLEO-F746ZG", "usart3", 192_000_000, 256 * KB, 1024 * KB,
                "sram0 = SRAM1+SRAM2; the 64 KiB DTCM is not used"),
    ZephyrBoard("stm32f746g_disco", "STM32F746G-DISCO", "usart1", 216_000_000, 256 * KB, 1024 * KB,
                "sram0 = SRAM1+SRAM2; the 64 KiB DTCM and the 8 MiB SDRAM are not used"),
    ZephyrBoard("nucleo_h743zi", "NUCLEO-H743ZI", "usart3", 480_000_000, 512 * KB, 2048 * KB,
                "sram0 = AXI SRAM; DTCM and SRAM1-4 are not used"),
    ZephyrBoard("nucleo_f412zg", "NUCLEO-F412ZG", "usart3", 96_000_000, 256 * KB, 1024 * KB, ""),
    ZephyrBoard("nucleo_l4r5zi", "NUCLEO-L4R5ZI", "lpuart1", 80_000_000, 192 * KB, 2032 * KB,
                "sram0 = SRAM1 (SRAM2/SRAM3 not used); last 16 KiB of flash = storage partition"),
    ZephyrBoard("disco_l475_iot1", "DISCO-L475-IOT1", "usart1", 80_000_000, 96 * KB, 992 * KB,
                "sram0 = SRAM1 (SRAM2 not used); last 32 KiB of flash = storage partition"),
]

ZEPHYR_BOARDS: Dict[str, ZephyrBoard] = {b.zephyr_name: b for b in _ZEPHYR_BOARDS}


def get_zephyr_board(name: str) -> ZephyrBoard:
    """By Zephyr name (``nucleo_f746zg``, a ``/qualifier`` is ignored) or board-table name (``NUCLEO-F746ZG``)."""
    key = str(name).split("/")[0].lower()
    for b in _ZEPHYR_BOARDS:
        if key in (b.zephyr_name, b.board.lower()):
            return b
    raise TinyEngineError(f"board '{name}' has no Zephyr application template; STM32 boards: "
                          + ", ".join(f"{b.zephyr_name} ({b.board})" for b in _ZEPHYR_BOARDS))
