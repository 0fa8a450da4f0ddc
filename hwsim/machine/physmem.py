"""The physical address space: RAM regions and MMIO windows, as one table.

::

    physical address space (one per machine)
    +-------------------+----------------------------------------------+
    | RAM region(s)     | one host buffer each (anonymous mmap), shared |
    |                   | with Unicorn through mem_map_ptr: host reads  |
    |                   | and writes are the guest's, without copies    |
    +-------------------+----------------------------------------------+
    | MMIO window(s)    | reads/writes dispatched to a device object:   |
    |                   | device.mmio_read(offset, size) -> int         |
    |                   | device.mmio_write(offset, size, value)        |
    +-------------------+----------------------------------------------+

Host-side ``read``/``write``/``read_u64``/``write_u64``/``view`` reach RAM
only (that is also what a page-table walk may read); an address outside RAM
raises :class:`~hwsim.errors.BusError`.  ``mmio_read``/``mmio_write`` reach
devices.
"""

from __future__ import annotations

import ctypes
import mmap
import os
import struct
from dataclasses import dataclass, field
from typing import Any

from ..errors import BusError, ConfigError, HostLimitError
from ..mmu.bits import PAGE_SIZE

_U64 = struct.Struct("<Q")
_U32 = struct.Struct("<I")
REGION_ALIGN = PAGE_SIZE  # the CPU maps memory in whole pages
_MADV_HUGEPAGE: int | None = getattr(mmap, "MADV_HUGEPAGE", None)  # Linux only


def host_memory() -> int | None:
    """Bytes of physical memory on this host, when the OS says."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def human_size(n: int) -> str:
    """``256 GiB``, ``1.5 MiB``, ``4096 bytes``."""
    for unit, shift in (("PiB", 50), ("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >= 1 << shift:
            return f"{n / (1 << shift):.3g} {unit}"
    return f"{n} bytes"


def _map_anonymous(name: str, size: int) -> mmap.mmap:
    """A new private anonymous mapping of ``size`` bytes, or :class:`HostLimitError` when the host refuses."""
    try:
        buf = mmap.mmap(-1, size, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except (OSError, OverflowError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or str(exc)
        memory = host_memory()
        has = f"; the host has {human_size(memory)} of memory" if memory else ""
        raise HostLimitError(
            f"RAM region {name!r}",
            f"{size:#x} bytes ({human_size(size)}) is more than this host can map (mmap: {why}{has})",
        ) from None
    # Transparent huge pages, as QEMU asks for guest RAM: the host then faults RAM in 2 MiB at a
    # time instead of one 4 KiB page per first touch, which was most of the cost of demand paging a
    # new guest page (10-25 us a host page fault on a loaded 2-core machine, 0.5-1.5 us amortised).
    if _MADV_HUGEPAGE is not None:
        try:
            buf.madvise(_MADV_HUGEPAGE)
        except OSError:  # THP not configured on this host: 4 KiB pages, as before
            pass
    return buf


@dataclass(eq=False)
class RamRegion:
    name: str
    base: int
    size: int
    buffer: mmap.mmap = field(repr=False)
    view: memoryview = field(repr=False)

    @property
    def end(self) -> int:
        return self.base + self.size

    @property
    def host_address(self) -> int:
        return ctypes.addressof(ctypes.c_char.from_buffer(self.buffer))


@dataclass(eq=False)
class MmioRegion:
    name: str
    base: int
    size: int
    device: Any = field(repr=False)

    @property
    def end(self) -> int:
        return self.base + self.size


class PhysicalMemory:
    """RAM regions and MMIO windows at fixed, non-overlapping physical addresses."""

    def __init__(self) -> None:
        self._ram: list[RamRegion] = []
        self._mmio: list[MmioRegion] = []
        self._last: RamRegion | None = None
        self._listeners: list = []  # called with each region added (the machine maps it into Unicorn)

    # -- building the map ---------------------------------------------------

    def add_ram(self, base: int, size: int, *, name: str = "ram", buffer: mmap.mmap | None = None) -> RamRegion:
        """A RAM region backed by ``buffer`` (an mmap of at least ``size`` bytes; default: a new
        anonymous one)."""
        self._check_new(name, base, size)
        buf = buffer if buffer is not None else _map_anonymous(name, size)
        region = RamRegion(name, base, size, buf, memoryview(buf))
        self._ram.append(region)
        self._ram.sort(key=lambda r: r.base)
        for listener in self._listeners:
            listener(region)
        return region

    def add_mmio(self, base: int, size: int, device: Any, *, name: str) -> MmioRegion:
        self._check_new(name, base, size)
        for method in ("mmio_read", "mmio_write"):
            if not callable(getattr(device, method, None)):
                raise ConfigError(f"MMIO window {name!r}: device {device!r} has no {method}() method")
        region = MmioRegion(name, base, size, device)
        self._mmio.append(region)
        self._mmio.sort(key=lambda r: r.base)
        for listener in self._listeners:
            listener(region)
        return region

    def _check_new(self, name: str, base: int, size: int) -> None:
        if base < 0 or size <= 0:
            raise ConfigError(f"region {name!r}: base must be >= 0 and size > 0, not base={base:#x} size={size:#x}")
        if base % REGION_ALIGN or size % REGION_ALIGN:
            raise ConfigError(
                f"region {name!r}: base {base:#x} and size {size:#x} must be multiples of {REGION_ALIGN:#x}"
            )
        if base + size > 1 << 56:
            raise ConfigError(f"region {name!r}: end {base + size:#x} is beyond the 56-bit physical address space")
        for other in self.regions:
            if base < other.end and other.base < base + size:
                raise ConfigError(
                    f"region {name!r} [{base:#x}, {base + size:#x}) overlaps {other.name!r} [{other.base:#x}, {other.end:#x})"
                )

    def on_region_added(self, listener) -> None:
        self._listeners.append(listener)

    @property
    def regions(self) -> list[RamRegion | MmioRegion]:
        return sorted([*self._ram, *self._mmio], key=lambda r: r.base)

    @property
    def ram_regions(self) -> list[RamRegion]:
        return list(self._ram)

    @property
    def mmio_regions(self) -> list[MmioRegion]:
        return list(self._mmio)

    # -- lookup ---------------------------------------------------------------

    def ram_at(self, pa: int, size: int = 1) -> RamRegion:
        """The RAM region holding ``[pa, pa+size)``, or BusError."""
        r = self._last
        if r is not None and r.base <= pa and pa + size <= r.end:
            return r
        for r in self._ram:
            if r.base <= pa and pa + size <= r.end:
                self._last = r
                return r
        raise BusError(self._describe_miss(pa, size), address=pa, size=size)

    def mmio_at(self, pa: int) -> MmioRegion | None:
        for r in self._mmio:
            if r.base <= pa < r.end:
                return r
        return None

    def is_ram(self, pa: int, size: int = 1) -> bool:
        try:
            self.ram_at(pa, size)
        except BusError:
            return False
        return True

    def _describe_miss(self, pa: int, size: int) -> str:
        m = self.mmio_at(pa)
        if m is not None:
            return f"physical access [{pa:#x}, {pa + size:#x}) is in the MMIO window of {m.name!r}, not RAM"
        for r in self._ram:
            if r.base <= pa < r.end:
                return f"physical access [{pa:#x}, {pa + size:#x}) runs past the end of {r.name!r} at {r.end:#x}"
        return f"no RAM or device at physical address {pa:#x}"

    # -- RAM access -------------------------------------------------------------

    def view(self, pa: int, size: int) -> memoryview:
        """A zero-copy, writable view of guest RAM (must lie in one region)."""
        r = self.ram_at(pa, size)
        off = pa - r.base
        return r.view[off : off + size]

    def read(self, pa: int, size: int) -> bytes:
        return bytes(self.view(pa, size))

    def write(self, pa: int, data: bytes | bytearray | memoryview) -> None:
        self.view(pa, len(data))[:] = data

    def fill(self, pa: int, size: int, byte: int = 0) -> None:
        r = self.ram_at(pa, size)
        off = pa - r.base
        r.view[off : off + size] = bytes([byte]) * size

    def read_u64(self, pa: int) -> int:
        r = self.ram_at(pa, 8)
        return _U64.unpack_from(r.view, pa - r.base)[0]

    def write_u64(self, pa: int, value: int) -> None:
        r = self.ram_at(pa, 8)
        _U64.pack_into(r.view, pa - r.base, value & 0xFFFF_FFFF_FFFF_FFFF)

    def read_u32(self, pa: int) -> int:
        r = self.ram_at(pa, 4)
        return _U32.unpack_from(r.view, pa - r.base)[0]

    def write_u32(self, pa: int, value: int) -> None:
        r = self.ram_at(pa, 4)
        _U32.pack_into(r.view, pa - r.base, value & 0xFFFF_FFFF)

    # -- device access ----------------------------------------------------------

    def mmio_read(self, pa: int, size: int) -> int:
        m = self.mmio_at(pa)
        if m is None or pa + size > m.end:
            raise BusError(f"no device register at physical address {pa:#x} (size {size})", address=pa, size=size)
        return m.device.mmio_read(pa - m.base, size)

    def mmio_write(self, pa: int, size: int, value: int) -> None:
        m = self.mmio_at(pa)
        if m is None or pa + size > m.end:
            raise BusError(f"no device register at physical address {pa:#x} (size {size})", address=pa, size=size)
        m.device.mmio_write(pa - m.base, size, value)
