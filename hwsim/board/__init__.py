"""Boards as data: TOML board files (memory map, devices, interrupt controller, IOMMU) and the systems built from them."""

from pathlib import Path

from .. import devices as _devices  # noqa: F401 - registers the device types
from .. import iommu as _iommu  # noqa: F401 - registers the IOMMU type
from .board import BOARD_KEYS, Board, BoardError, DeviceSpec, RegionSpec, load_board, parse_board
from .system import System

BOARDS_DIR = Path(__file__).resolve().parents[2] / "boards"
DEFAULT_BOARD = BOARDS_DIR / "virt.toml"

__all__ = ["BOARDS_DIR", "BOARD_KEYS", "Board", "BoardError", "DEFAULT_BOARD", "DeviceSpec", "RegionSpec", "System",
           "load_board", "parse_board"]
