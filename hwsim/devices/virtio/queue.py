"""The device side of a split virtqueue, reached only through the device's DMA port (the IOMMU).

The device reads descriptor chains the driver made available and returns them through the used
ring.  Violations of the driver's MUST rules that leave the device unable to go on (a descriptor
index out of range, a chain that loops or is longer than the queue, a device-readable descriptor
after a device-writable one, INDIRECT without VIRTIO_F_INDIRECT_DESC, an available index that moved
by more than the queue size, a ring the IOMMU refuses) raise :class:`VirtqueueError`; the transport
then sets DEVICE_NEEDS_RESET.

The three rings are read and written through validated views (:mod:`hwsim.iommu.views`): each is
translated and checked once (by the IOMMU and whatever observes DMA, such as the driver runner's DMA
checker), then each field is one request served from the view.  A view the IOMMU has invalidated (an
IOTLB or directory invalidation, a ``ddtp`` write, an unmap, a sync) is opened again at the next access;
one that cannot be made (a page that would fault, an observer that cannot vouch for the whole ring)
leaves the ring to single requests, judged one by one, until the next notification.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING

from ...trace import TRACE
from .bits import (
    AVAIL_ALIGN,
    DESC_ALIGN,
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    DESC_SIZE,
    USED_ALIGN,
)

if TYPE_CHECKING:
    from ...iommu.views import DmaView

_DESC = struct.Struct("<QIHH")
_USED_ELEM = struct.Struct("<II")


class Ring(Enum):
    """The three parts of a split virtqueue, each read or written through a view of its own."""

    DESC = "descriptor table"
    AVAIL = "available ring"
    USED = "used ring"


class VirtqueueError(Exception):
    """A fatal driver error (or an IOMMU refusal) on a ring: the device needs a reset."""


@dataclass
class Chain:
    """One available descriptor chain: its head, its (iova, length) segments by direction, and the
    descriptor indices it was read from (head first)."""

    head: int
    readable: list[tuple[int, int]] = field(default_factory=list)
    writable: list[tuple[int, int]] = field(default_factory=list)
    descriptors: list[int] = field(default_factory=list)

    @property
    def readable_len(self) -> int:
        return sum(n for _, n in self.readable)

    @property
    def writable_len(self) -> int:
        return sum(n for _, n in self.writable)


class SplitQueue:
    def __init__(self, index: int, max_size: int) -> None:
        self.index = index
        self.max_size = max_size
        self._views: dict[Ring, DmaView | None] = {}  # the rings' views; None: refused until the next notification
        self.reset()

    def reset(self) -> None:
        self.close_views()
        self.size = 0
        self.desc = 0
        self.avail = 0
        self.used = 0
        self.ready = False
        self.last_avail = 0  # the next available-ring entry the device reads (free-running, 16 bits)
        self.used_idx = 0  # the device's used idx (free-running, 16 bits)

    def config_problem(self) -> str | None:
        """Why this queue may not be made ready, or None."""
        n = self.size
        if n == 0 or n & (n - 1) or n > self.max_size:
            return f"queue {self.index}: QueueNum {n} is not a power of 2 in 1..{self.max_size} (QueueNumMax)"
        for name, addr, align in (
            ("descriptor table", self.desc, DESC_ALIGN),
            ("available ring", self.avail, AVAIL_ALIGN),
            ("used ring", self.used, USED_ALIGN),
        ):
            if addr % align:
                return f"queue {self.index}: {name} address {addr:#x} is not {align}-byte aligned"
        return None

    # -- DMA helpers ------------------------------------------------------------------------------

    def close_views(self) -> None:
        """Forget the rings' views (a reset, the queue stopped)."""
        for view in self._views.values():
            if view is not None:
                view.close()
        self._views = {}

    def retry_views(self) -> None:
        """At a notification: a ring whose view was refused is tried again."""
        for ring in [r for r, v in self._views.items() if v is None]:
            del self._views[ring]

    def _view(self, port, ring: Ring) -> DmaView | None:
        views = self._views
        if ring in views:
            view = views[ring]
            if view is None or (view.valid and TRACE.dma is None):
                return view  # (None: refused until the next notification)
            view.close()
        if ring is Ring.DESC:
            opened = port.open_view(self.desc, DESC_SIZE * self.size)
        elif ring is Ring.AVAIL:
            opened = port.open_view(self.avail, 4 + 2 * self.size)
        else:
            opened = port.open_view(self.used, 4 + 8 * self.size, write=True)
        self._views[ring] = opened
        return opened

    def _ring_read(self, port, ring: Ring, offset: int, size: int, what: str) -> bytes:
        view = self._view(port, ring) if self.ready else None
        if view is not None:
            return view.read(offset, size)
        base = self.desc if ring is Ring.DESC else self.avail if ring is Ring.AVAIL else self.used
        return self._read(port, base + offset, size, what)

    def _ring_write(self, port, offset: int, data: bytes, what: str) -> None:
        view = self._view(port, Ring.USED) if self.ready else None
        if view is not None:
            view.write_at(offset, data)
            return
        self._write(port, self.used + offset, data, what)

    def _read(self, port, iova: int, size: int, what: str) -> bytes:
        result = port.read(iova, size)
        if not result.ok:
            raise VirtqueueError(
                f"queue {self.index}: reading the {what} at iova {iova:#x} failed: "
                f"{result.fault.cause.describe} ({result.fault.reason})"
            )
        return result.data

    def _write(self, port, iova: int, data: bytes, what: str) -> None:
        result = port.write(iova, data)
        if not result.ok:
            raise VirtqueueError(
                f"queue {self.index}: writing the {what} at iova {iova:#x} failed: "
                f"{result.fault.cause.describe} ({result.fault.reason})"
            )

    # -- the available ring -----------------------------------------------------------------------

    def avail_flags_and_idx(self, port) -> tuple[int, int]:
        flags, idx = struct.unpack("<HH", self._ring_read(port, Ring.AVAIL, 0, 4, "available ring header"))
        return flags, idx

    def next_chain(self, port, *, indirect_ok: bool = False) -> Chain | None:
        """The next available chain (advancing past it), or None when the driver has offered no more."""
        _flags, idx = self.avail_flags_and_idx(port)
        pending = (idx - self.last_avail) & 0xFFFF
        if pending == 0:
            return None
        if pending > self.size:
            raise VirtqueueError(
                f"queue {self.index}: available idx {idx} is {pending} entries ahead of the "
                f"device ({self.last_avail}), more than the queue size {self.size} (a driver MUST "
                f"NOT decrement the available idx)"
            )
        slot = self.last_avail % self.size
        (head,) = struct.unpack("<H", self._ring_read(port, Ring.AVAIL, 4 + 2 * slot, 2, "available ring"))
        chain = self._walk(port, head, indirect_ok)
        self.last_avail = (self.last_avail + 1) & 0xFFFF
        return chain

    def _walk(self, port, head: int, indirect_ok: bool) -> Chain:
        if head >= self.size:
            raise VirtqueueError(
                f"queue {self.index}: available ring entry names descriptor {head}, outside the {self.size}-entry table"
            )
        chain = Chain(head)
        i = head
        seen = 0
        total = 0
        while True:
            if seen >= self.size:
                raise VirtqueueError(
                    f"queue {self.index}: the chain at descriptor {head} is longer than the queue "
                    f"size {self.size} (a loop?); drivers MUST NOT create such chains"
                )
            addr, length, flags, nxt = _DESC.unpack(
                self._ring_read(port, Ring.DESC, DESC_SIZE * i, DESC_SIZE, f"descriptor {i}")
            )
            seen += 1
            chain.descriptors.append(i)
            if flags & DESC_F_INDIRECT:
                if not indirect_ok:
                    raise VirtqueueError(
                        f"queue {self.index}: descriptor {i} has VIRTQ_DESC_F_INDIRECT but "
                        f"VIRTIO_F_INDIRECT_DESC was not negotiated"
                    )
            if flags & DESC_F_WRITE:
                chain.writable.append((addr, length))
            elif chain.writable:
                raise VirtqueueError(
                    f"queue {self.index}: descriptor {i} is device-readable after a device-writable "
                    f"one; drivers MUST place device-writable descriptors last"
                )
            else:
                chain.readable.append((addr, length))
            total += length
            if total > 1 << 32:
                raise VirtqueueError(f"queue {self.index}: the chain at descriptor {head} is longer than 2^32 bytes")
            if not flags & DESC_F_NEXT:
                return chain
            if nxt >= self.size:
                raise VirtqueueError(
                    f"queue {self.index}: descriptor {i} chains to {nxt}, outside the {self.size}-entry table"
                )
            i = nxt

    # -- the used ring ------------------------------------------------------------------------------

    def push_used(self, port, head: int, length: int) -> None:
        """Return a chain: the element (id, len) first, then the used idx, as the spec orders it."""
        slot = self.used_idx % self.size
        self._ring_write(port, 4 + 8 * slot, _USED_ELEM.pack(head, length), "used ring")
        self.used_idx = (self.used_idx + 1) & 0xFFFF
        self._ring_write(port, 2, struct.pack("<H", self.used_idx), "used ring idx")
