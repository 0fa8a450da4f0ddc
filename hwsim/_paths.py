"""Where hwsim's data files are: the source tree's boards/, drivers/include/ and firmware/, or,
in an installed hwsim, their copies in hwsim/_data/ (put there by setup.py)."""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent
_SOURCE_TREE = _PACKAGE.parent


def _first(*candidates: Path) -> Path:
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    return candidates[0]


def boards_dir() -> Path:
    return _first(_SOURCE_TREE / "boards", _PACKAGE / "_data" / "boards")


def include_dir() -> Path:
    return _first(_SOURCE_TREE / "drivers" / "include", _PACKAGE / "_data" / "include")


def firmware_sources() -> Path:
    """hwsim_native.c and link.ld."""
    return _first(_SOURCE_TREE / "firmware", _PACKAGE / "_data" / "firmware")


def in_source_tree(path: Path) -> bool:
    """Whether ``path`` is in the source tree hwsim runs from (writable: build outputs may go there)."""
    return path.resolve().is_relative_to(_SOURCE_TREE) and not path.resolve().is_relative_to(_PACKAGE)
