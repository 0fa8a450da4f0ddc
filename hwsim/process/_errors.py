"""The exceptions of hwsim.process: loading, linking and memory requests."""

from __future__ import annotations

import errno as _errno

from ..errors import HwsimError


class ProcessError(HwsimError):
    """Base of the errors a :class:`~hwsim.process.Process` raises."""


class LoadError(ProcessError):
    """A module cannot be loaded: not position independent, an unsupported import, a trap while
    instantiating, ...  Nothing of the failed load stays in the process."""


class LibraryNotFoundError(LoadError):
    """A library named in a ``dylink.0`` NEEDED list is not in the search path."""


class UndefinedSymbolError(LoadError):
    """Imports that no loaded module and no host definition provides.

    ``missing`` lists ``(module name, symbol, what)`` for each, e.g.
    ``("libb.so", "a_add", "function")``.
    """

    def __init__(self, message: str, missing: list[tuple[str, str, str]]) -> None:
        super().__init__(message)
        self.missing = missing


class DuplicateSymbolError(LoadError):
    """Two modules (or a module and the host) give strong definitions of the same symbol."""


class MemoryRequestError(ProcessError):
    """An mmap/munmap/mprotect the allocator refuses; ``errno`` is the POSIX error number
    (``EINVAL``, ``ENOMEM``) a guest gets back, negated, from the ``hwsim:process`` functions."""

    def __init__(self, errno: int, message: str) -> None:
        super().__init__(f"{_errno.errorcode.get(errno, errno)}: {message}")
        self.errno = errno
        self.reason = message


class OutOfMemoryError(MemoryRequestError, MemoryError):
    """Memory 0 cannot grow enough for a request (its maximum, or the Store's memory limit)."""

    def __init__(self, message: str) -> None:
        super().__init__(_errno.ENOMEM, message)


__all__ = [
    "DuplicateSymbolError",
    "LibraryNotFoundError",
    "LoadError",
    "MemoryRequestError",
    "OutOfMemoryError",
    "ProcessError",
    "UndefinedSymbolError",
]
