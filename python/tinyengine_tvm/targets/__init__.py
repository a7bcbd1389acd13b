"""Cortex-M targets: cores (gcc flags, TVM tags) and boards (memories, QEMU machines)."""
from .boards import BOARDS, QEMU_BOARD_FOR_CORE, Board, get_board, qemu_board_for
from .cores import CORES, Core, get_core, register_tags

try:  # tinyengine/cortex-m4, -m7, -m55
    register_tags()
except Exception:  # pragma: no cover - a TVM build without the tag registry
    pass

__all__ = ["BOARDS", "QEMU_BOARD_FOR_CORE", "Board", "get_board", "qemu_board_for",
           "CORES", "Core", "get_core", "register_tags"]
