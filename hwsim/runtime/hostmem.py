"""Host buffers a Store can map into linear memories: shared, or copy-on-write.

A :class:`HostBuffer` is host memory made physical: an mmap (anonymous, or a
file's pages) registered with the machine as a RAM region of its own, above
the Store's RAM.  Mapping it into a memory points the memory's page-table
entries at the buffer's pages, so no byte is copied:

* **shared**: guest stores land in the buffer (in the file, for a file
  buffer) and host writes to ``buffer.view`` are what the guest loads next;
* **copy-on-write**: the pages are mapped read-only; the first guest store to
  a page copies it into a frame of the Store's own and maps that instead (the
  machine's write-fault hook), so the buffer never changes.  Unmapping puts
  the range back to what the memory had before the mapping: zero pages (or
  unmapped pages in a virtual-mode memory); the buffer is untouched.

A read-only buffer (``HostBuffer.from_bytes(..., writable=False)``, or a file
opened read-only) can only be mapped copy-on-write or read-only shared.
"""

from __future__ import annotations

import mmap
import os

from ..mmu.bits import PAGE_MASK, PAGE_SIZE
from .errors import HostBufferError

HOST_BUFFERS_BASE = 0x100_0000_0000  # physical addresses of host buffers: 1 TiB and up


class HostBuffer:
    """Page-granular host memory, visible to the guest when mapped (see the module docstring)."""

    def __init__(self, store, buffer: mmap.mmap, size: int, *, writable: bool, name: str, file=None) -> None:
        self.store = store
        self.size = size
        self.writable = writable
        self.name = name
        self._file = file
        self._mmap = buffer
        self.pa = store.next_host_pa
        store.next_host_pa += (size + PAGE_SIZE - 1 & ~PAGE_MASK) + PAGE_SIZE  # and an unmapped page between buffers
        store.machine.phys.add_ram(self.pa, size, name=f"host buffer {name}", buffer=buffer)
        self.view = memoryview(buffer)[:size] if writable else memoryview(buffer)[:size].toreadonly()
        self.mappings = 0  # pages of it mapped into memories now

    @classmethod
    def zeroed(cls, store, size: int, *, name: str = "anonymous") -> HostBuffer:
        size = _page_size(size, name)
        return cls(store, _anonymous(size, name), size, writable=True, name=name)

    @classmethod
    def from_bytes(cls, store, data: bytes, *, writable: bool = False, name: str = "bytes") -> HostBuffer:
        """A copy of ``data`` (padded with zeros to whole pages); read-only unless ``writable``."""
        size = _page_size(max(len(data), 1), name, round_up=True)
        buf = _anonymous(size, name)
        buf[: len(data)] = data
        return cls(store, buf, size, writable=writable, name=name)

    @classmethod
    def from_file(cls, store, path: str | os.PathLike, *, writable: bool = False) -> HostBuffer:
        """The file's pages themselves: guest stores through a shared writable mapping reach the file.

        The file's size must be a multiple of 4096 (hwsim does not change the size of a file).
        A read-only buffer is a private mapping: nothing can ever write to the file through it.
        """
        name = os.fspath(path)
        try:
            fd = os.open(name, os.O_RDWR if writable else os.O_RDONLY)
        except OSError as exc:
            raise HostBufferError(f"cannot open {name!r}: {exc.strerror}") from None
        try:
            size = os.fstat(fd).st_size
            if size == 0 or size % PAGE_SIZE:
                raise HostBufferError(
                    f"{name!r} is {size} bytes: a file buffer must be a non-empty multiple of {PAGE_SIZE} bytes"
                )
            flags = mmap.MAP_SHARED if writable else mmap.MAP_PRIVATE
            try:
                buf = mmap.mmap(fd, size, flags=flags, prot=mmap.PROT_READ | mmap.PROT_WRITE)
            except OSError as exc:
                raise HostBufferError(f"cannot map {name!r}: {exc.strerror}") from None
        finally:
            os.close(fd)
        return cls(store, buf, size, writable=writable, name=name, file=name)

    def page_pa(self, page: int) -> int:
        return self.pa + page * PAGE_SIZE

    def flush(self) -> None:
        """Write a shared file buffer's changes to the file now (the OS also does so on its own)."""
        if self._file is not None and self.writable:
            self._mmap.flush()

    def __repr__(self) -> str:
        kind = "file" if self._file else "memory"
        return f"<HostBuffer {self.name!r} ({kind}, {self.size:#x} bytes, {'rw' if self.writable else 'ro'})>"


def _anonymous(size: int, name: str) -> mmap.mmap:
    """``size`` bytes of shared anonymous memory (zeros, committed by the OS when touched)."""
    try:
        return mmap.mmap(-1, size, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    except (OSError, OverflowError) as exc:
        raise HostBufferError(
            f"host buffer {name!r}: cannot allocate {size:#x} bytes ({getattr(exc, 'strerror', None) or exc})"
        ) from None


def _page_size(size: int, name: str, *, round_up: bool = False) -> int:
    if not isinstance(size, int) or size <= 0:
        raise HostBufferError(f"host buffer {name!r}: size must be a positive number of bytes, not {size!r}")
    if round_up:
        return (size + PAGE_SIZE - 1) & ~PAGE_MASK
    if size % PAGE_SIZE:
        raise HostBufferError(f"host buffer {name!r}: size {size} is not a multiple of {PAGE_SIZE}")
    return size


__all__ = ["HostBuffer", "HostBufferError"]
