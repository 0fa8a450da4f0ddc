"""The physical frame allocator: 4 KiB frames of one RAM region, with contiguous aligned runs.

A byte per frame (0 free, 1 used) keeps the state one flat ``bytearray``:
a run of ``n`` free frames is a ``find`` of ``n`` zero bytes, done in C.
Frames are zeroed when allocated, so a fresh page table or page never shows
an earlier owner's data.
"""

from __future__ import annotations

from ..errors import HwsimError, OutOfFrames
from ..mmu.bits import PAGE_SHIFT, PAGE_SIZE
from .physmem import RamRegion


class FrameError(HwsimError, ValueError):
    """A frame was freed that is not allocated, or lies outside the allocator's RAM."""


class FrameAllocator:
    def __init__(self, region: RamRegion) -> None:
        self.region = region
        self.nframes = region.size >> PAGE_SHIFT
        self._used = bytearray(self.nframes)
        self._in_use = 0
        self._hint = 0
        self.peak = 0

    @property
    def committed(self) -> int:
        """Frames currently allocated (or reserved)."""
        return self._in_use

    @property
    def available(self) -> int:
        return self.nframes - self._in_use

    def _index(self, pa: int, count: int) -> int:
        if pa % PAGE_SIZE:
            raise FrameError(f"frame address {pa:#x} is not 4 KiB aligned")
        i = (pa - self.region.base) >> PAGE_SHIFT
        if pa < self.region.base or i + count > self.nframes:
            raise FrameError(f"frames [{pa:#x}, {pa + count * PAGE_SIZE:#x}) are outside RAM region "
                             f"{self.region.name!r} [{self.region.base:#x}, {self.region.end:#x})")
        return i

    def alloc(self, count: int = 1, *, align: int = PAGE_SIZE, zero: bool = True) -> int:
        """Allocate ``count`` contiguous frames whose physical address is a multiple of ``align``."""
        if count <= 0:
            raise FrameError(f"frame count must be positive, not {count}")
        if align < PAGE_SIZE or align & (align - 1):
            raise FrameError(f"alignment must be a power of two >= 4096, not {align:#x}")
        step = align >> PAGE_SHIFT
        i = self._find(count, step, self._hint)
        if i < 0 and self._hint:
            i = self._find(count, step, 0)
        if i < 0:
            raise OutOfFrames(
                f"out of physical memory: no run of {count} free frame(s) aligned to {align:#x} in "
                f"{self.region.name!r} ({self.available} of {self.nframes} frames free)")
        self._used[i:i + count] = b"\x01" * count
        self._in_use += count
        self.peak = max(self.peak, self._in_use)
        self._hint = i + count if i + count < self.nframes else 0
        pa = self.region.base + (i << PAGE_SHIFT)
        if zero:
            off = i << PAGE_SHIFT
            self.region.view[off:off + count * PAGE_SIZE] = bytes(count * PAGE_SIZE)
        return pa

    def _find(self, count: int, step: int, start: int) -> int:
        base_index = self.region.base >> PAGE_SHIFT  # alignment is of the physical address
        pattern = b"\x00" * count
        used = self._used
        i = start
        while True:
            i = used.find(pattern, i)
            if i < 0:
                return -1
            misalign = (base_index + i) % step
            if misalign == 0:
                return i
            i += step - misalign

    def free(self, pa: int, count: int = 1) -> None:
        i = self._index(pa, count)
        run = self._used[i:i + count]
        if run.count(0):
            bad = i + run.index(0)
            raise FrameError(f"double free: frame {self.region.base + (bad << PAGE_SHIFT):#x} is not allocated")
        self._used[i:i + count] = bytes(count)
        self._in_use -= count

    def reserve(self, pa: int, size: int) -> None:
        """Mark ``[pa, pa+size)`` (rounded out to frames) as used, e.g. for a loaded image."""
        first = pa & ~(PAGE_SIZE - 1)
        count = (pa + size - first + PAGE_SIZE - 1) >> PAGE_SHIFT
        i = self._index(first, count)
        if any(self._used[i:i + count]):
            raise FrameError(f"cannot reserve [{pa:#x}, {pa + size:#x}): some frames are already in use")
        self._used[i:i + count] = b"\x01" * count
        self._in_use += count
        self.peak = max(self.peak, self._in_use)

    def is_allocated(self, pa: int) -> bool:
        return bool(self._used[self._index(pa & ~(PAGE_SIZE - 1), 1)])
