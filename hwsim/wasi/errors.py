"""WASI's exceptions: the errno a host function returns, and a guest's exit."""

from __future__ import annotations

from ..errors import WasmtimeError
from .abi import Errno

__all__ = ["ExitTrap", "WasiError"]


class WasiError(Exception):
    """Inside a WASI host function: return ``errno`` to the guest (never seen by an embedder)."""

    def __init__(self, errno: Errno) -> None:
        super().__init__(errno.name)
        self.errno = errno


class ExitTrap(WasmtimeError):
    """The guest called ``proc_exit(code)``: raised out of the call into wasm that was running, as
    wasmtime-py's ``ExitTrap`` (a WasmtimeError); ``code`` is the exit status."""

    def __init__(self, code: int) -> None:
        super().__init__(f"Exited with i32 exit status {code}")
        self.code = code
