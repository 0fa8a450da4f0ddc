"""Device directories built in simulated RAM: what an IOMMU driver writes, for the host API and tests.

A :class:`DeviceDirectory` owns a 1-, 2- or 3-level device-directory table
(base-format, 32-byte device contexts) in frames from the machine's
allocator, exactly as a driver lays it out; the IOMMU reads the same bytes.
Writing a context here does **not** tell the IOMMU: its directory cache
keeps the old context until an ``IODIR.INVAL_DDT`` (``Iommu.attach`` does
both, like a driver).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import HwsimError

if TYPE_CHECKING:
    from ..machine.frames import FrameAllocator
    from ..machine.physmem import PhysicalMemory
from ..mmu.bits import PAGE_SHIFT, PagingMode
from .bits import (
    DC_SIZE,
    DDTE_PPN_SHIFT,
    DDTE_V,
    IOHGATP_GSCID_SHIFT,
    IOHGATP_MODE_SHIFT,
    IOHGATP_PPN_MASK,
    IOSATP_MODE_SHIFT,
    IOSATP_PPN_MASK,
    TA_PSCID_SHIFT,
    TC_DTF,
    TC_GADE,
    TC_SADE,
    TC_V,
    IommuMode,
    ddi,
    device_id_limit,
)


class IommuError(HwsimError, ValueError):
    """The IOMMU's host API was asked for something impossible (device ID too wide, ...)."""


@dataclass(frozen=True, slots=True)
class DeviceContext:
    """A base-format device context, decoded (the four doublewords are kept as read)."""

    tc: int
    iohgatp: int = 0
    ta: int = 0
    fsc: int = 0

    @property
    def valid(self) -> bool:
        return bool(self.tc & TC_V)

    @property
    def sade(self) -> bool:
        return bool(self.tc & TC_SADE)

    @property
    def dtf(self) -> bool:
        return bool(self.tc & TC_DTF)

    @property
    def iosatp_mode(self) -> int:
        return self.fsc >> IOSATP_MODE_SHIFT

    @property
    def root(self) -> int:
        return (self.fsc & IOSATP_PPN_MASK) << PAGE_SHIFT

    @property
    def iohgatp_mode(self) -> int:
        return self.iohgatp >> IOHGATP_MODE_SHIFT

    @property
    def g_root(self) -> int:
        """The second stage's root table (16 KiB) as iohgatp.PPN names it."""
        return (self.iohgatp & IOHGATP_PPN_MASK) << PAGE_SHIFT

    @property
    def gade(self) -> bool:
        return bool(self.tc & TC_GADE)

    @property
    def pscid(self) -> int:
        return (self.ta >> TA_PSCID_SHIFT) & ((1 << 20) - 1)

    def to_bytes(self) -> bytes:
        return b"".join(v.to_bytes(8, "little") for v in (self.tc, self.iohgatp, self.ta, self.fsc))

    @classmethod
    def from_bytes(cls, data: bytes) -> DeviceContext:
        return cls(*(int.from_bytes(data[i : i + 8], "little") for i in range(0, DC_SIZE, 8)))

    @classmethod
    def make(
        cls,
        *,
        root: int | None,
        mode: PagingMode | None,
        pscid: int = 0,
        sade: bool = True,
        dtf: bool = False,
        valid: bool = True,
        g_root: int | None = None,
        g_mode: PagingMode | None = None,
        gscid: int = 0,
        gade: bool = True,
    ) -> DeviceContext:
        """A context translating through the table at ``root`` (``mode=None``: first stage Bare); with
        ``g_mode`` (Sv39x4/Sv48x4) ``root`` is guest-physical and the second stage's root is ``g_root``."""
        tc = (TC_V if valid else 0) | (TC_SADE if sade else 0) | (TC_DTF if dtf else 0)
        fsc = 0 if mode is None else (mode.satp_mode << IOSATP_MODE_SHIFT) | ((root or 0) >> PAGE_SHIFT)
        iohgatp = 0
        if g_mode is not None:
            tc |= TC_GADE if gade else 0
            iohgatp = (
                g_mode.satp_mode << IOHGATP_MODE_SHIFT | gscid << IOHGATP_GSCID_SHIFT | (g_root or 0) >> PAGE_SHIFT
            )
        return cls(tc, iohgatp, pscid << TA_PSCID_SHIFT, fsc)


class DeviceDirectory:
    """A device-directory table in RAM; ``ddtp`` is the value to program (mode and root PPN)."""

    def __init__(self, phys: PhysicalMemory, frames: FrameAllocator, *, levels: int = 1) -> None:
        if levels not in (1, 2, 3):
            raise IommuError(f"a device directory has 1, 2 or 3 levels, not {levels}")
        self.phys = phys
        self.frames = frames
        self.levels = levels
        self.root = frames.alloc()
        self._tables = [self.root]

    @property
    def mode(self) -> IommuMode:
        return IommuMode(IommuMode.LVL1 + self.levels - 1)

    @property
    def ddtp(self) -> int:
        return (self.root >> PAGE_SHIFT) << DDTE_PPN_SHIFT | int(self.mode)

    @property
    def max_device_id(self) -> int:
        return device_id_limit(self.levels) - 1

    def _check_id(self, device_id: int) -> None:
        if not 0 <= device_id <= self.max_device_id:
            raise IommuError(
                f"device ID {device_id} does not fit a {self.mode.label} device directory (0..{self.max_device_id})"
            )

    def context_address(self, device_id: int, *, create: bool = False) -> int | None:
        """Where device ``device_id``'s context lives (None if its leaf table does not exist yet)."""
        self._check_id(device_id)
        table = self.root
        for level in range(self.levels - 1, 0, -1):
            addr = table + 8 * ddi(device_id, level)
            entry = self.phys.read_u64(addr)
            if not entry & DDTE_V:
                if not create:
                    return None
                child = self.frames.alloc()
                self._tables.append(child)
                self.phys.write_u64(addr, (child >> PAGE_SHIFT) << DDTE_PPN_SHIFT | DDTE_V)
                table = child
            else:
                table = (entry >> DDTE_PPN_SHIFT & ((1 << 44) - 1)) << PAGE_SHIFT
        return table + DC_SIZE * ddi(device_id, 0)

    def set_context(self, device_id: int, context: DeviceContext) -> int:
        """Write ``context`` into the table (no invalidation); returns its address."""
        addr = self.context_address(device_id, create=True)
        assert addr is not None  # create=True makes the missing tables
        self.phys.write(addr, context.to_bytes())
        return addr

    def get_context(self, device_id: int) -> DeviceContext | None:
        addr = self.context_address(device_id)
        return None if addr is None else DeviceContext.from_bytes(self.phys.read(addr, DC_SIZE))

    def clear_context(self, device_id: int) -> None:
        """Zero the context (V=0); no invalidation."""
        addr = self.context_address(device_id)
        if addr is not None:
            self.phys.write(addr, bytes(DC_SIZE))
