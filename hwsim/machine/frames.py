"""The physical frame allocator: 4 KiB frames of one RAM region, with contiguous aligned runs.

A byte per frame (0 free, 1 used) keeps the state one flat ``bytearray``:
a run of ``n`` free frames is a ``find`` of ``n`` zero bytes, done in C.
Frames are zeroed when allocated, so a fresh page table or page never shows
an earlier owner's data.

A frame a device may reach (mapped for DMA) is *pinned*, as Linux pins the
pages of a DMA buffer: freeing it while pinned only marks it, and it returns
to the allocator when the last pin goes.  So a driver that unmaps or
discards memory a device still owns cannot have that frame handed to a page
table, the code or another owner while the device can still write it.
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
        self._pins: dict[int, int] = {}  # frame address -> pin count
        self._free_when_unpinned: set[int] = set()

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
            raise FrameError(
                f"frames [{pa:#x}, {pa + count * PAGE_SIZE:#x}) are outside RAM region "
                f"{self.region.name!r} [{self.region.base:#x}, {self.region.end:#x})"
            )
        return i

    def alloc(self, count: int = 1, *, align: int = PAGE_SIZE, zero: bool = True) -> int:
        """Allocate ``count`` contiguous frames whose physical address is a multiple of ``align``."""
        if count <= 0:
            raise FrameError(f"frame count must be positive, not {count}")
        if align < PAGE_SIZE or align & (align - 1):
            raise FrameError(f"alignment must be a power of two >= {PAGE_SIZE}, not {align:#x}")
        step = align >> PAGE_SHIFT
        i = self._find(count, step, self._hint)
        if i < 0 and self._hint:
            i = self._find(count, step, 0)
        if i < 0:
            raise OutOfFrames(
                f"out of physical memory: no run of {count} free frame(s) aligned to {align:#x} in "
                f"{self.region.name!r} ({self.available} of {self.nframes} frames free)"
            )
        self._used[i : i + count] = b"\x01" * count
        self._in_use += count
        self.peak = max(self.peak, self._in_use)
        self._hint = i + count if i + count < self.nframes else 0
        pa = self.region.base + (i << PAGE_SHIFT)
        if zero:
            off = i << PAGE_SHIFT
            self.region.view[off : off + count * PAGE_SIZE] = bytes(count * PAGE_SIZE)
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
        run = self._used[i : i + count]
        if run.count(0):
            bad = i + run.index(0)
            raise FrameError(f"double free: frame {self.region.base + (bad << PAGE_SHIFT):#x} is not allocated")
        if self._pins:
            pinned = [pa + k * PAGE_SIZE for k in range(count) if pa + k * PAGE_SIZE in self._pins]
            for frame in pinned:
                if frame in self._free_when_unpinned:
                    raise FrameError(f"double free: pinned frame {frame:#x} was already freed")
                self._free_when_unpinned.add(frame)
            if pinned:  # free the rest now, the pinned ones at their last unpin
                for k in range(count):
                    frame = pa + k * PAGE_SIZE
                    if frame not in self._pins:
                        self.free(frame)
                return
        self._used[i : i + count] = bytes(count)
        self._in_use -= count

    def pin(self, pa: int) -> None:
        """Keep allocated frame ``pa`` from being reused until :meth:`unpin` (pins count)."""
        if not self.is_allocated(pa):
            raise FrameError(f"cannot pin frame {pa:#x}: it is not allocated")
        self._pins[pa] = self._pins.get(pa, 0) + 1

    def unpin(self, pa: int) -> None:
        count = self._pins.get(pa, 0)
        if count == 0:
            raise FrameError(f"frame {pa:#x} is not pinned")
        if count > 1:
            self._pins[pa] = count - 1
            return
        del self._pins[pa]
        if pa in self._free_when_unpinned:
            self._free_when_unpinned.discard(pa)
            self.free(pa)

    def pinned(self, pa: int) -> int:
        """How many pins frame ``pa`` holds."""
        return self._pins.get(pa, 0)

    def reserve(self, pa: int, size: int) -> None:
        """Mark ``[pa, pa+size)`` (rounded out to frames) as used, e.g. for a loaded image."""
        first = pa & ~(PAGE_SIZE - 1)
        count = (pa + size - first + PAGE_SIZE - 1) >> PAGE_SHIFT
        i = self._index(first, count)
        if any(self._used[i : i + count]):
            raise FrameError(f"cannot reserve [{pa:#x}, {pa + size:#x}): some frames are already in use")
        self._used[i : i + count] = b"\x01" * count
        self._in_use += count
        self.peak = max(self.peak, self._in_use)

    def contains(self, pa: int) -> bool:
        """True when ``pa`` lies in this allocator's RAM region."""
        return self.region.base <= pa < self.region.base + (self.nframes << PAGE_SHIFT)

    def is_allocated(self, pa: int) -> bool:
        return bool(self._used[self._index(pa & ~(PAGE_SIZE - 1), 1)])
