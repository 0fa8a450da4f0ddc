"""WASI preview 1 (``wasi_snapshot_preview1``) for hwsim: standard programs on the emulated CPU.

Public: :class:`WasiConfig` (with :class:`DirPerms`, :class:`FilePerms`) and :class:`ExitTrap`.
A Store takes a config with ``Store.set_wasi(config)``; ``Linker.define_wasi()`` defines every
preview 1 function (docs/wasi.md).
"""

from .config import DirPerms, FilePerms, WasiConfig
from .errors import ExitTrap

__all__ = ["DirPerms", "ExitTrap", "FilePerms", "WasiConfig"]
