"""Validated DMA views: a range of IOVAs translated and checked once, then read or written field by field.

::

    device --open_view(iova, size, write)--> Iommu: the context, each page through the IOTLB (a walk on a
              miss, never a fault recorded), RAM behind every page, and every DMA observer vouching that
              an access anywhere in the range would pass unremarked
           <-- DmaView (or None: the device makes its requests one by one, as before)
    view.read(offset, n) / view.write(offset, data): one request each, counted as one, no translation

A view is what a device's ring cache is on hardware: it holds the translation it was made with until
the IOMMU is told to forget it.  The IOMMU marks it invalid (``valid`` False) on anything that may change
the answer: ``IOTINVAL.VMA`` covering one of its pages (or all of its PSCID, or all), ``IODIR.INVAL_DDT``
for its device (or all), a write to ``ddtp``, a reset, and :meth:`Iommu.invalidate_views` (the DMA
checker's ownership changes: a sync).  A device asks for a new view after that, or goes back to single
requests, which the IOMMU and the checker judge one by one.  Like an IOTLB entry, a view does not notice
a page table rewritten in RAM until the invalidation the spec requires of software; unlike one, it is not
evicted for capacity (the spec lets a device's cached translation live until invalidated).

Views are never made while DMA tracing is on (every access is then a traced request), for a
second-stage context, or when an observer cannot vouch for the range (``add_dma_observer(vouch=None)``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import HwsimError

if TYPE_CHECKING:
    from .iommu import IommuStats


class StaleViewError(HwsimError):
    """A device used a :class:`DmaView` after the IOMMU invalidated it (a bug in the device model)."""


class DmaView:
    """``size`` bytes at ``iova`` of one device, translated with its PSCID; ``write``: for device writes
    (else reads).  ``pages``: the (IOVA, size) of each page or superpage translated; ``pieces``: the
    physically contiguous parts, as ``(offset in the view, memoryview)``."""

    __slots__ = (
        "device_id",
        "iova",
        "size",
        "write",
        "pscid",
        "pages",
        "valid",
        "_pieces",
        "_single",
        "_stats",
        "_close",
    )

    def __init__(
        self,
        *,
        device_id: int,
        iova: int,
        size: int,
        write: bool,
        pscid: int,
        pages: tuple[tuple[int, int], ...],
        pieces: list[tuple[int, memoryview]],
        stats: IommuStats,
        close,
    ) -> None:
        self.device_id, self.iova, self.size, self.write, self.pscid = device_id, iova, size, write, pscid
        self.pages = pages  # (IOVA, size) of each page it was translated with: a superpage is one, whole
        self.valid = True
        self._pieces = pieces
        self._single = pieces[0][1] if len(pieces) == 1 else None
        self._stats = stats
        self._close = close

    def overlaps(self, iova: int, size: int) -> bool:
        return iova < self.iova + self.size and self.iova < iova + size

    def translated(self, iova: int) -> bool:
        """Whether ``iova`` lies in a page (or superpage) this view was translated with: an IOTINVAL.VMA
        of that address drops the page's IOTLB entry, so it invalidates the view."""
        return any(base <= iova < base + size for base, size in self.pages)

    def _refusal(self, offset: int, n: int, write: bool) -> StaleViewError:
        """The error for an access of ``n`` bytes at ``offset`` that may not use this view."""
        if not self.valid:
            verb = "wrote" if write else "read"
            return StaleViewError(f"device {self.device_id} {verb} through a view of iova {self.iova:#x} invalidated")
        op, other = ("write", "read") if write else ("read", "write")
        return StaleViewError(f"{op} [{offset:#x}, +{n}) outside the {self.size}-byte {op} view or of a {other} view")

    def _count(self, offset: int, n: int, write: bool) -> memoryview | None:
        """Check one access and count it as a request; the view's single piece (None: several)."""
        if not self.valid or write != self.write or not 0 <= offset <= self.size - n or n <= 0:
            raise self._refusal(offset, n, write)
        stats = self._stats
        stats.requests += 1
        if write:
            stats.bytes_written += n
        else:
            stats.bytes_read += n
        return self._single

    def read(self, offset: int, n: int) -> bytes:
        """The ``n`` bytes at ``offset`` of the view: one device read request."""
        single = self._count(offset, n, False)
        if single is not None:
            return bytes(single[offset : offset + n])
        return bytes(self._gather(offset, n))

    def write_at(self, offset: int, data: bytes) -> None:
        """``data`` at ``offset`` of the view: one device write request."""
        n = len(data)
        self._put(self._count(offset, n, True), offset, data, n)

    def copy_to(self, other: DmaView) -> None:
        """This (read) view's bytes into ``other``, a write view of the same size: this view's read request
        and the other's write request, counted and checked as :meth:`read` and :meth:`write_at` would, the
        bytes moved once (ranges that overlap in RAM end as if copied through a buffer)."""
        n = self.size
        single = self._count(0, n, False)
        target = other._count(0, n, True)
        if single is None:
            source: memoryview | bytes | bytearray = self._gather(0, n)
        elif target is None:  # (written piece by piece: copied first, in case the two overlap)
            source = bytes(single)
        else:
            source = single  # (one slice assignment: overlapping bytes move as memmove moves them)
        other._put(target, 0, source, n)

    def _put(self, single: memoryview | None, offset: int, data, n: int) -> None:
        """``n`` bytes of ``data`` at ``offset`` (already counted); ``single``: the view's single piece."""
        if single is not None:
            single[offset : offset + n] = data
            return
        done = 0
        for start, view in self._pieces:
            end = start + len(view)
            if start < offset + n and offset < end:
                a, b = max(offset, start), min(offset + n, end)
                view[a - start : b - start] = data[a - offset : b - offset]
                done += b - a
        assert done == n  # the pieces cover the view

    def _gather(self, offset: int, n: int) -> bytearray:
        out = bytearray()
        for start, view in self._pieces:
            end = start + len(view)
            if start < offset + n and offset < end:
                out += view[max(offset, start) - start : min(offset + n, end) - start]
        return out

    def close(self) -> None:
        """The device no longer needs the view (the IOMMU stops tracking it)."""
        self.valid = False
        self._close(self)

    def __repr__(self) -> str:
        state = "valid" if self.valid else "invalid"
        return f"<DmaView device {self.device_id} iova {self.iova:#x}+{self.size:#x} {'write' if self.write else 'read'} {state}>"
