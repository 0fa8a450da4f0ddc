"""The hwsim exception tree.

Every error hwsim raises on bad input derives from :class:`HwsimError` and
carries a message that names the problem and where it is.
"""

from __future__ import annotations


class HwsimError(Exception):
    """Base of every error hwsim raises on purpose."""


class WasmtimeError(HwsimError):
    """Compilation, validation or linking failed, or a host access was refused: where wasmtime-py raises
    its ``WasmtimeError`` (named after it for easy porting).  Malformed and invalid modules
    (:mod:`hwsim.wasm.errors`) and out-of-bounds host accesses are kinds of it."""


class ArgumentTypeError(TypeError, AttributeError):
    """An argument of the wrong Python type given to the embedding API (``Store(3)``, ``'7'`` for an i32).

    A TypeError, as hwsim's error contract says (docs/reliability.md); also an AttributeError because
    wasmtime-py raises that for many of the same calls (it calls a method the argument lacks, as in
    ``Memory(1, ty)``), so code written to catch either keeps working (docs/embedding.md)."""


class ClosedError(HwsimError, ValueError):
    """A Store used after :meth:`~hwsim.Store.close`, or a Config used for a second Engine: where
    wasmtime-py raises ValueError (its objects own a C pointer that closing or consuming drops)."""


class ConfigError(HwsimError, ValueError):
    """An argument or configuration value is out of range or inconsistent."""


class HostLimitError(ConfigError):
    """A size is valid but more than this host can provide (the kernel refused to map it).

    ``problem`` says what was asked and the host's limit, without saying where it was asked
    (the caller that knows, a board file or a Store, adds that).
    """

    def __init__(self, what: str, problem: str) -> None:
        super().__init__(f"{what}: {problem}")
        self.problem = problem


class BusError(HwsimError):
    """A physical access hit no RAM and no device, or a device refused it."""

    def __init__(self, message: str, *, address: int, size: int):
        super().__init__(message)
        self.address = address
        self.size = size


class OutOfFrames(HwsimError, MemoryError):
    """The physical frame allocator cannot satisfy a request."""


class MappingError(HwsimError, ValueError):
    """An address-space operation was asked to do something it cannot (overlap, misalignment, ...)."""


class StoreMismatchError(HwsimError, ValueError):
    """An object used with a Store it does not belong to (objects never cross Stores), or a Caller
    used after its host call returned."""


class OutOfBoundsError(WasmtimeError, IndexError):
    """A host access to a memory or table outside its current size."""
