"""The boards the Zephyr application is written for, as Zephyr 4.x knows them:
the STM32 boards of the board table, and the Arm MPS2/MPS3 boards QEMU
emulates (mps2/an385 Cortex-M3, mps2/an386 M4, mps2/an500 M7,
mps3/corstone300/an547 M55).

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
  COM port (Zephyr's console on these boards); UART0 (QEMU's serial 0) on
  the emulated boards.
- ``zephyr_flash`` / ``zephyr_ram``: Zephyr's own share, MEASURED (see
  :data:`SHARE_METHOD`; ``scripts/measure_zephyr_share.py`` re-measures them),
  and ``zephyr_flash_mlperf`` / ``zephyr_ram_mlperf`` the same with
  ``mlperf=true``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional

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
    core: str = ""     #: the CPU (defaults to the board table's)
    qemu_machine: Optional[str] = None  #: qemu-system-arm -machine, for the emulated boards
    zephyr_flash: int = 0  #: Zephyr's measured flash share (0: not measured, the estimate is used)
    zephyr_ram: int = 0    #: Zephyr's measured RAM share besides CONFIG_MAIN_STACK_SIZE
    zephyr_flash_mlperf: int = 0  #: the same with mlperf=true (0: not measured)
    fpu: bool = True   #: Zephyr's board files give the core its FPU (False: the build is soft-float)
    zephyr_ram_mlperf: int = 0

    def share(self, mlperf: bool) -> tuple:
        """Zephyr's measured (flash, RAM) share with or without the MLPerf server; (0, 0) when not measured."""
        return (self.zephyr_flash_mlperf, self.zephyr_ram_mlperf) if mlperf else (self.zephyr_flash, self.zephyr_ram)

    @property
    def info(self) -> Optional[Board]:
        """The board-table entry (None for mps2/an385: the table has no Cortex-M3)."""
        try:
            return get_board(self.board)
        except TinyEngineError:
            return None

    @property
    def build_target(self) -> Optional[Board]:
        """The board-table entry as Zephyr compiles for it (soft-float where Zephyr gives no FPU):
        what create-project measures the model and servers for. None where :attr:`info` is."""
        info = self.info
        return info if info is None or self.fpu else replace(info, float_abi="soft")

    @property
    def cpu(self) -> str:
        """The core, e.g. ``cortex-m7``."""
        info = self.info
        return self.core or (info.core if info else "")

    @property
    def file_stem(self) -> str:
        """The name of its boards/<stem>.overlay and .conf (Zephyr's board/qualifiers with '_')."""
        return self.zephyr_name.replace("/", "_")

    @property
    def emulated(self) -> bool:
        return self.qemu_machine is not None


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

#: Boards QEMU runs (the overlay chooses UART0, QEMU's serial 0). Flash and
#: RAM are the zephyr,flash / zephyr,sram regions of their device trees.
_QEMU_BOARDS = [
    ZephyrBoard("mps2/an385", "mps2-an385", "uart0", 25_000_000, 4096 * KB, 4096 * KB,
                "Cortex-M3 without FPU or DSP; not in the board table (no Cortex-M3 kernels): "
                "model sizes are estimated", core="cortex-m3", qemu_machine="mps2-an385"),
    ZephyrBoard("mps2/an386", "mps2-an386", "uart0", 25_000_000, 4096 * KB, 4096 * KB, "",
                qemu_machine="mps2-an386"),
    ZephyrBoard("mps2/an500", "mps2-an500", "uart0", 25_000_000, 4096 * KB, 4096 * KB,
                "Zephyr's mps2/an500 SoC has no FPU selected: built soft-float", qemu_machine="mps2-an500",
                fpu=False),
    ZephyrBoard("mps3/corstone300/an547", "mps3-an547", "uart0", 25_000_000, 512 * KB, 512 * KB,
                "zephyr,sram = DTCM (512 KiB), zephyr,flash = ITCM (512 KiB)", qemu_machine="mps3-an547"),
]

#: How the shares below were measured.
SHARE_METHOD = ("Zephyr 4.3.0 (../shared/zephyr), arm-none-eabi-gcc 12.2 (gnuarmemb), the app of a one-layer "
                "model (scripts/measure_zephyr_share.py) with default options or mlperf=true; zephyr.elf's used flash / "
                "zephyr,sram extent (as the build's memory report) less the model, protocol and descriptor "
                "input sections of zephyr.map (main.c, the Zephyr port, stays in), and RAM less "
                "CONFIG_MAIN_STACK_SIZE")
#: Zephyr's share per board, (flash bytes, RAM bytes besides CONFIG_MAIN_STACK_SIZE), measured by
#: scripts/measure_zephyr_share.py as SHARE_METHOD says. RAM includes the ISR and idle stacks, kernel
#: and device objects, and main's stack guard/alignment (main's 4,096 B stack takes 4,224 B on the STM32
#: boards). Measured 2026-12-07. nucleo_h743zi also puts 16 KiB of eth_stm32 buffers in SRAM3, outside zephyr,sram.
MEASURED_SHARES: Dict[str, tuple] = {
    "nucleo_f746zg": (18365, 4125),
    "stm32f746g_disco": (18405, 4125),
    "nucleo_h743zi": (19529, 4125),
    "nucleo_f412zg": (16957, 3997),
    "nucleo_l4r5zi": (18297, 4125),
    "disco_l475_iot1": (17541, 4125),
    "mps2/an385": (10849, 5149),
    "mps2/an386": (10329, 5405),
    "mps2/an500": (10077, 5149),
    "mps3/corstone300/an547": (13369, 3445),
}
#: The same with ``mlperf=true``: the MLPerf Tiny server parses numbers and prints results, which links
#: more of the C library on Zephyr's side (number parsing and formatting; most on the FPU-less cores).
#: Measured 2026-12-07 with the same method.
MEASURED_SHARES_MLPERF: Dict[str, tuple] = {
    "nucleo_f746zg": (20820, 4147),
    "stm32f746g_disco": (20876, 4147),
    "nucleo_h743zi": (20604, 4147),
    "nucleo_f412zg": (19420, 4019),
    "nucleo_l4r5zi": (20760, 4147),
    "disco_l475_iot1": (20756, 4019),
    "mps2/an385": (15608, 5147),
    "mps2/an386": (13560, 5411),
    "mps2/an500": (14824, 5147),
    "mps3/corstone300/an547": (15240, 3451),
}


def _with_share(b: ZephyrBoard) -> ZephyrBoard:
    flash, ram = MEASURED_SHARES.get(b.zephyr_name, (0, 0))
    flash_ml, ram_ml = MEASURED_SHARES_MLPERF.get(b.zephyr_name, (0, 0))
    return replace(b, zephyr_flash=flash, zephyr_ram=ram, zephyr_flash_mlperf=flash_ml, zephyr_ram_mlperf=ram_ml)


ZEPHYR_BOARDS: Dict[str, ZephyrBoard] = {b.zephyr_name: _with_share(b) for b in _ZEPHYR_BOARDS + _QEMU_BOARDS}
#: The STM32 boards only (real hardware).
STM32_BOARDS = tuple(b.zephyr_name for b in _ZEPHYR_BOARDS)


def _norm(name: str) -> str:
    return str(name).strip().lower().replace("/", "_").replace("-", "_")


def get_zephyr_board(name: str) -> ZephyrBoard:
    """By Zephyr name (``nucleo_f746zg``, ``mps2/an500``; a ``/qualifier`` of an
    STM32 board is ignored) or board-table name (``NUCLEO-F746ZG``, ``mps2-an500``)."""
    key = _norm(name)
    stem = _norm(str(name).split("/")[0])
    for b in ZEPHYR_BOARDS.values():
        if key in (_norm(b.zephyr_name), _norm(b.board)) or (not b.emulated and stem == _norm(b.zephyr_name)):
            return b
    raise TinyEngineError(f"board '{name}' has no Zephyr application template; boards: "
                          + ", ".join(f"{b.zephyr_name} ({b.board})" for b in ZEPHYR_BOARDS.values()))
