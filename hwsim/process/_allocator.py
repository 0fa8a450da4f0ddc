"""The page allocator of a process: who owns each 4 KiB page of memory 0, and mmap/munmap/mprotect.

Memory 0 of a process, as the allocator sees it::

    0x0000  null page      the static no-access region (MemoryControl.set_static): every access traps
    0x1000  ...            runs of pages handed out first-fit, lowest address first:
              LOADER         a module's data (its dylink.0 memory size, at its alignment), the stack,
                             the stack guard (reserved, never mapped)
              MAPPED         mmap regions (the hwsim:process functions, or Process.mmap)
              FREE           unmapped: no frame, any access traps, the next request may take it
              GUEST          pages a module grew with its own memory.grow: ordinary read-write memory
    size    the end of memory 0, grown by whole 64 KiB wasm pages when no free run fits

The owner of each page is one byte (``Owner``); the page's protection is memory
control's page state (:mod:`hwsim.runtime.memctl`), which the MMU enforces.  Freeing
pages unmaps them: their frames go back to the machine at once, and a dangling
pointer into them traps.
"""

from __future__ import annotations

import enum
import errno
from dataclasses import dataclass

from ..mmu.bits import PAGE_SHIFT, PAGE_SIZE
from ..runtime.memctl import Prot, State
from ._errors import MemoryRequestError, OutOfMemoryError

WASM_PAGE = 65536
ADDRESS_LIMIT = 1 << 32  # a 32-bit memory's addresses

PROT_NONE, PROT_READ, PROT_WRITE, PROT_EXEC = 0, 1, 2, 4


class Owner(enum.IntEnum):
    FREE = 0
    NULL = 1
    MAPPED = 2
    LOADER = 3
    GUEST = 4


@dataclass(frozen=True)
class Region:
    """Pages the loader took: a module's data, the stack or its guard."""

    start: int
    length: int
    what: str  # "the data of liba.so", "the stack", "the stack guard"

    @property
    def end(self) -> int:
        return self.start + self.length


def prot_to_state(prot: int, what: str) -> Prot:
    """POSIX protection bits to memory control's protection: NONE, READ, WRITE (or READ|WRITE) is read-write."""
    if prot & PROT_EXEC:
        raise MemoryRequestError(
            errno.EINVAL, f"{what}: protection {prot:#x} asks for PROT_EXEC (4): linear memory never holds code"
        )
    if prot & ~(PROT_READ | PROT_WRITE) or prot < 0:
        raise MemoryRequestError(
            errno.EINVAL, f"{what}: unknown protection bits in {prot:#x} (PROT_READ is 1, PROT_WRITE 2)"
        )
    if prot & PROT_WRITE:
        return Prot.READWRITE
    return Prot.READ if prot else Prot.NONE


def _pages(length: int) -> int:
    return (length + PAGE_SIZE - 1) >> PAGE_SHIFT


class PageAllocator:
    """Page-granular allocation over one memory (a process's memory 0), whose first page it protects."""

    def __init__(self, memory) -> None:
        """``memory``: a :class:`~hwsim.runtime.objects.MemoryInstance` nobody has used yet."""
        self.memory = memory
        self.ctl = memory.control()
        self.ctl.set_static(PAGE_SIZE, 0)
        pages = memory.size_bytes >> PAGE_SHIFT
        self.owner = bytearray(pages)
        self.owner[0] = Owner.NULL
        if pages > 1:
            self.ctl.unmap(PAGE_SIZE, (pages - 1) * PAGE_SIZE)
        self.regions: dict[int, Region] = {}

    # -- queries ------------------------------------------------------------------------------

    @property
    def size(self) -> int:
        """Bytes of memory 0 now (what ``memory.size`` says, times 64 KiB)."""
        return self.memory.size_bytes

    def region_at(self, addr: int) -> Region | None:
        for region in self.regions.values():
            if region.start <= addr < region.end:
                return region
        return None

    def describe(self, addr: int) -> str:
        """What is at linear address ``addr``: ``"0x21010 is in the data of liba.so (+0x10)"``."""
        self._sync()
        page = addr >> PAGE_SHIFT
        if addr < 0 or page >= len(self.owner):
            return f"{addr:#x} is past the end of memory 0 ({self.size:#x} bytes)"
        owner = Owner(self.owner[page])
        if owner is Owner.NULL:
            return f"{addr:#x} is in the protected first page"
        if owner is Owner.LOADER:
            region = self.region_at(addr)
            assert region is not None  # loader pages belong to a region until release() frees both
            return f"{addr:#x} is in {region.what} (+{addr - region.start:#x})"
        if owner is Owner.MAPPED:
            state = self.ctl.state_at(addr)
            return f"{addr:#x} is in pages mapped by mmap ({state.name.lower()})"
        if owner is Owner.GUEST:
            return f"{addr:#x} is in pages a module grew with memory.grow"
        return f"{addr:#x} is free (not mapped)"

    # -- the loader's side -----------------------------------------------------------------------

    def allocate(self, length: int, *, what: str, align: int = PAGE_SIZE, mapped: bool = True) -> int:
        """Take ``length`` bytes (rounded up to pages) at ``align`` (a power of two) for the loader.

        ``mapped``: read-write pages (module data, the stack); else reserved and never mapped (a guard).
        Raises :class:`OutOfMemoryError`.
        """
        npages = max(1, _pages(length))
        start = self._take(npages, max(1, align >> PAGE_SHIFT), Owner.LOADER, what)
        if mapped:
            self.ctl.map(start, npages * PAGE_SIZE, Prot.READWRITE)
        self.regions[start] = Region(start, npages * PAGE_SIZE, what)
        return start

    def grow_to(self, size: int) -> None:
        """Grow memory 0 to at least ``size`` bytes; the new pages are free."""
        self._sync()
        if size > self.memory.size_bytes:
            self._grow(-(-(size - self.memory.size_bytes) // WASM_PAGE), f"growing memory 0 to {size:#x} bytes")

    def release(self, start: int) -> None:
        """Give back a loader region (a failed load's): its pages are unmapped and free again."""
        region = self.regions.pop(start)
        self.ctl.unmap(region.start, region.length)
        first = region.start >> PAGE_SHIFT
        self.owner[first : first + (region.length >> PAGE_SHIFT)] = bytes(region.length >> PAGE_SHIFT)

    # -- mmap / munmap / mprotect ---------------------------------------------------------------------

    def mmap(self, length: int, prot: int) -> int:
        """New pages, zeroed, with POSIX protection ``prot``; their address.  Raises MemoryRequestError."""
        if length <= 0:
            raise MemoryRequestError(errno.EINVAL, f"mmap: length must be positive, not {length}")
        state = prot_to_state(prot, "mmap")
        npages = _pages(length)
        start = self._take(npages, 1, Owner.MAPPED, f"mmap of {length:#x} bytes")
        self.ctl.map(start, npages * PAGE_SIZE, state)
        return start

    def munmap(self, addr: int, length: int) -> None:
        """Unmap the mmap'd pages in ``[addr, addr+length)`` (rounded up to pages); their frames are freed.

        Pages that are not mapped are allowed (as POSIX); pages of the loader, the null page and
        pages grown by ``memory.grow`` are not.
        """
        first, end = self._range("munmap", addr, length)
        end = min(end, len(self.owner))
        page = self._first_of(self.owner, (Owner.NULL, Owner.LOADER, Owner.GUEST), first, end)
        if page >= 0:
            raise MemoryRequestError(
                errno.EINVAL,
                f"munmap: page {page:#x} (address {page << PAGE_SHIFT:#x}) "
                f"{self._whose(page)}: only pages from mmap can be unmapped",
            )
        page = first
        while page < end:  # unmap each run of mapped pages
            start = self.owner.find(Owner.MAPPED, page, end)
            if start < 0:
                break
            stop = self.owner.find(Owner.FREE, start, end)  # only FREE and MAPPED pages are in the range
            stop = end if stop < 0 else stop
            self.ctl.unmap(start << PAGE_SHIFT, (stop - start) << PAGE_SHIFT)
            self.owner[start:stop] = bytes(stop - start)
            page = stop

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        """Change the protection of mapped pages (mmap'd, module data, the stack, grown pages)."""
        first, end = self._range("mprotect", addr, length)
        state = prot_to_state(prot, "mprotect")
        if end > len(self.owner):
            page = len(self.owner)
            raise MemoryRequestError(
                errno.ENOMEM,
                f"mprotect: page {page:#x} (address {page << PAGE_SHIFT:#x}) "
                f"is past the end of memory 0 ({self.size:#x} bytes)",
            )
        page = self._first_of(self.owner, (Owner.FREE, Owner.NULL), first, end)
        unmapped = self.ctl.states.find({State.UNMAPPED}, first, end)
        if unmapped >= 0 and (page < 0 or unmapped < page):
            page = unmapped
        if page >= 0:
            raise MemoryRequestError(
                errno.ENOMEM, f"mprotect: page {page:#x} (address {page << PAGE_SHIFT:#x}) {self._whose(page)}"
            )
        self.ctl.protect(first << PAGE_SHIFT, (end - first) << PAGE_SHIFT, state)

    # -- internals ------------------------------------------------------------------------------

    @staticmethod
    def _first_of(array: bytearray, values, first: int, end: int) -> int:
        """The first index in ``[first, end)`` holding one of ``values``, or -1."""
        hits = [i for i in (array.find(v, first, end) for v in values) if i >= 0]
        return min(hits) if hits else -1

    def _whose(self, page: int) -> str:
        owner = self.owner[page]
        if owner == Owner.NULL:
            return "is the protected first page"
        if owner == Owner.LOADER:
            region = self.region_at(page << PAGE_SHIFT)
            assert region is not None  # loader pages belong to a region until release() frees both
            return f"belongs to {region.what}" + (" (never mapped)" if "guard" in region.what else "")
        if owner == Owner.GUEST:
            return "was grown by memory.grow"
        if owner == Owner.FREE:
            return "is not mapped"
        return "is mapped by mmap"

    def _range(self, what: str, addr: int, length: int) -> tuple[int, int]:
        if addr % PAGE_SIZE:
            raise MemoryRequestError(
                errno.EINVAL, f"{what}: address {addr:#x} is not a multiple of the {PAGE_SIZE}-byte page size"
            )
        if length <= 0:
            raise MemoryRequestError(errno.EINVAL, f"{what}: length must be positive, not {length}")
        if addr + length > ADDRESS_LIMIT:
            raise MemoryRequestError(errno.EINVAL, f"{what}: [{addr:#x}, +{length:#x}) goes past 4 GiB")
        self._sync()
        return addr >> PAGE_SHIFT, _pages(addr + length)

    def _sync(self) -> None:
        """Pages a module added with its own ``memory.grow`` since we last looked are the guest's."""
        pages = self.memory.size_bytes >> PAGE_SHIFT
        if pages > len(self.owner):
            self.owner += bytes([Owner.GUEST]) * (pages - len(self.owner))

    def _find(self, npages: int, align: int) -> int:
        """First free run of ``npages`` pages starting at a multiple of ``align`` pages, or -1."""
        pattern = bytes(npages)
        pos = 1
        while True:
            start = self.owner.find(pattern, pos)
            if start < 0:
                return -1
            aligned = (start + align - 1) & ~(align - 1)
            if aligned == start:
                return start
            pos = aligned

    def _take(self, npages: int, align: int, owner: Owner, what: str) -> int:
        self._sync()
        start = self._find(npages, align)
        if start < 0:
            self._grow_for(npages, align, what)
            start = self._find(npages, align)
        self.owner[start : start + npages] = bytes([owner]) * npages
        return start << PAGE_SHIFT

    def _grow_for(self, npages: int, align: int, what: str) -> None:
        """Grow memory 0 so that an aligned run of ``npages`` free pages fits at its end."""
        tail = len(self.owner.rstrip(bytes([Owner.FREE])))  # where the free run at the end starts
        start = (tail + align - 1) & ~(align - 1)
        need = (start + npages) * PAGE_SIZE - self.memory.size_bytes
        self._grow((need + WASM_PAGE - 1) // WASM_PAGE, what)

    def _grow(self, delta: int, what: str) -> None:
        pages = len(self.owner)
        mem = self.memory
        if mem.grow(delta) < 0:
            raise OutOfMemoryError(
                f"{what}: memory 0 would have to grow from {mem.size_bytes:#x} to "
                f"{mem.size_bytes + delta * WASM_PAGE:#x} bytes, past its maximum of "
                f"{mem.max_pages * mem.page_size:#x}"
            )
        self.ctl.unmap(pages * PAGE_SIZE, delta * WASM_PAGE)  # new pages are free: no access until handed out
        self.owner += bytes(delta * (WASM_PAGE // PAGE_SIZE))


__all__ = ["Owner", "PROT_EXEC", "PROT_NONE", "PROT_READ", "PROT_WRITE", "PageAllocator", "Region", "prot_to_state"]
