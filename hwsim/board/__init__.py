"""Boards as data: TOML board files (memory map, devices, interrupt controller, IOMMU) and the systems built from them."""

from .. import _paths
from .. import devices as _devices  # noqa: F401 - registers the device types
from .. import iommu as _iommu  # noqa: F401 - registers the IOMMU type
from .board import BOARD_KEYS, Board, BoardError, DeviceSpec, RegionSpec, load_board, parse_board
from .system import System

BOARDS_DIR = _paths.boards_dir()  # the source tree's boards/, or an installed hwsim's copy
DEFAULT_BOARD = BOARDS_DIR / "virt.toml"

__all__ = [
    "BOARDS_DIR",
    "BOARD_KEYS",
    "Board",
    "BoardError",
    "DEFAULT_BOARD",
    "DeviceSpec",
    "RegionSpec",
    "System",
    "load_board",
    "parse_board",
]
