"""A raw physical-memory image file, readable by the walker (``hwsim mmu walk --image``)."""

from __future__ import annotations

import mmap
import os
import struct

from ..errors import BusError, ConfigError

_U64 = struct.Struct("<Q")


class ImageMemory:
    """Byte 0 of the file is physical address ``base``; opened read-only unless ``writable``."""

    def __init__(self, path: str | os.PathLike, base: int, *, writable: bool = False) -> None:
        self.path = os.fspath(path)
        self.base = base
        try:
            self._file = open(self.path, "r+b" if writable else "rb")
        except OSError as exc:
            raise ConfigError(f"cannot open memory image {self.path!r}: {exc.strerror}") from None
        size = os.fstat(self._file.fileno()).st_size
        if size == 0:
            self._file.close()
            raise ConfigError(f"memory image {self.path!r} is empty")
        self.size = size
        self._map = mmap.mmap(self._file.fileno(), size, access=mmap.ACCESS_WRITE if writable else mmap.ACCESS_READ)
        self.writable = writable

    def _offset(self, pa: int, size: int) -> int:
        off = pa - self.base
        if off < 0 or off + size > self.size:
            raise BusError(
                f"physical address {pa:#x} is outside the image [{self.base:#x}, {self.base + self.size:#x})",
                address=pa,
                size=size,
            )
        return off

    def read_u64(self, pa: int) -> int:
        value: int = _U64.unpack_from(self._map, self._offset(pa, 8))[0]
        return value

    def write_u64(self, pa: int, value: int) -> None:
        off = self._offset(pa, 8)
        if not self.writable:
            raise BusError(f"memory image {self.path!r} is read-only", address=pa, size=8)
        _U64.pack_into(self._map, off, value)

    def close(self) -> None:
        if self.writable:
            self._map.flush()
        self._map.close()
        self._file.close()

    def __enter__(self) -> ImageMemory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
