"""The DMA API of sandboxed drivers (as Linux's), and the DMA checker that watches every transfer.

A mapping makes bytes of the driver's memory 0 reachable by one device at an
IOVA: the host maps the pages backing them into the device's IO page table
(one Sv39 address space per device, walked by the IOMMU) with the rights the
direction allows.  Each device's IOVAs come round-robin from a window
(``iova_window``, 1 GiB: below 4 GiB, for devices with 32-bit DMA addresses),
each mapping followed by an unmapped gap page; an unmapped IOVA is reused only
when the allocator comes round again, so a late DMA finds an unmapped page
(and the record of what was there) for as long as possible, and a run that
maps and unmaps for hours keeps a bounded record.  The checker sees every API call and every device request (it wraps
``Iommu.dma``), keeps byte-exact records, and reports, with device, IOVA,
direction, time and the driver call that created the mapping (wasm function
and bytecode offset):

* stray DMA (an IOVA never mapped), DMA after unmap, DMA against the mapping's
  direction, overrun past the mapped length (even inside the same page),
  device access while the CPU owns the buffer (missing sync_for_device);
* the CPU side of the same rule: while the device owns a streaming buffer
  (after map or sync_for_device, until sync_for_cpu or unmap) the driver must
  not read a buffer the device writes, nor write any.  The pages holding such
  bytes are watched by the machine (``Machine.watch_page``): each access to
  them stops precisely, is checked byte-exactly against the buffers, and goes
  on, so the report names the instruction and its C line;
* unmap with the wrong size or direction, double unmap, unmap of an IOVA never
  mapped; sync of unmapped memory, outside the mapping, or in the wrong
  direction; mappings still live when the driver returns; mapping an MMIO window.

Memory freed with ``dma_free_coherent`` is taken from the driver (its pages are
revoked): a later CPU access traps, naming the free.  Observers
(``add_mapping_observer``) see every mapping made and unmapped, with the
driver call; the virtio protocol checker is one.
"""

from __future__ import annotations

import dataclasses
import enum
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from ..mmu.aspace import AddressSpace
from ..mmu.bits import PAGE_SIZE, Pte
from ..riscv.priv import Access
from ..trace import TRACE

DMA_MAPPING_ERROR = (1 << 64) - 1
_TABLE_SPAN_SHIFT = 21  # a leaf page table of an Sv39 IO space maps 2 MiB of IOVAs
IOVA_BASE = 0x1000_0000
IOVA_WINDOW = 1 << 30  # IOVAs a device is given: [IOVA_BASE, IOVA_BASE + IOVA_WINDOW), round robin


class Direction(enum.IntEnum):
    BIDIRECTIONAL = 0
    TO_DEVICE = 1
    FROM_DEVICE = 2

    @property
    def device_reads(self) -> bool:
        return self in (Direction.BIDIRECTIONAL, Direction.TO_DEVICE)

    @property
    def device_writes(self) -> bool:
        return self in (Direction.BIDIRECTIONAL, Direction.FROM_DEVICE)


_STORES, _LOADS_AND_STORES = frozenset((Access.STORE,)), frozenset((Access.LOAD, Access.STORE))  # watched kinds
_DIRECTIONS = tuple(Direction)  # by value (an index), cheaper than Direction(value) on every map
# The IO page table rights of a mapping the device may read, and of one it may also write.
_READ_RIGHTS, _WRITE_RIGHTS = int(Pte.R | Pte.U), int(Pte.R | Pte.W | Pte.U)


class Problem(enum.Enum):
    STRAY = "DMA to an IOVA that was never mapped"
    AFTER_UNMAP = "DMA to a mapping that was already unmapped"
    DIRECTION = "DMA against the mapping's direction"
    OVERRUN = "DMA past the end of the mapping"
    CPU_OWNED = "DMA while the CPU owns the buffer (missing dma_sync_for_device)"
    UNMAP_SIZE = "unmap with a size other than the mapping's"
    UNMAP_DIRECTION = "unmap with a direction other than the mapping's"
    DOUBLE_UNMAP = "unmap of a mapping already unmapped"
    UNMAP_UNKNOWN = "unmap of an IOVA that was never mapped"
    SYNC_UNMAPPED = "sync of memory that is not mapped"
    SYNC_RANGE = "sync outside the mapping"
    SYNC_DIRECTION = "sync in a direction the mapping does not have"
    LEAK = "mapping still live when the driver returned"
    MAP_MMIO = "mapping of a device's MMIO window for DMA"
    MAP_PROTECTED = "mapping of memory the driver may not access that way"
    CPU_TOUCH = "CPU access to a buffer the device owns (missing dma_sync_for_cpu or unmap)"
    RELEASED = "memory.discard or memory.unmap of a buffer still mapped for DMA"


@dataclass
class DmaMapping:
    device: str
    device_id: int
    iova: int
    size: int
    cpu_addr: int
    direction: Direction
    creator: str  # where the driver created it
    created: int  # virtual tick
    coherent: bool = False
    unmapped_by: str | None = None
    cpu_owned: bool = False  # after dma_sync_for_cpu, until dma_sync_for_device
    frames: tuple[int, ...] = ()  # the physical pages holding the bytes

    @property
    def device_owned(self) -> bool:
        """A live streaming mapping the driver has handed to the device."""
        return not self.coherent and not self.cpu_owned and self.unmapped_by is None

    def contains(self, iova: int, size: int = 1) -> bool:
        return self.iova <= iova and iova + size <= self.iova + self.size

    def pages(self) -> tuple[int, int]:
        first = self.iova & ~(PAGE_SIZE - 1)
        return first, ((self.iova + self.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)) - first


@dataclass
class DmaReport:
    problem: Problem
    device: str
    iova: int
    size: int
    access: str  # "read", "write", or the API call
    time_ns: int
    mapping: DmaMapping | None = None
    where: str = ""  # the driver call that did it, for API problems
    detail: str = ""
    started_by: str = ""  # for a device's own access: the driver's register write that started its work

    def format(self) -> str:
        head = (
            f"DMA bug: {self.problem.value}: device {self.device}, iova {self.iova:#x}, {self.size} bytes, "
            f"{self.access}, at {self.time_ns / 1e6:.3f} ms"
        )
        lines = [head]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.where:
            lines.append(f"  by the driver at {self.where}")
        if self.started_by:
            lines.append(f"  the device's work was started by the driver at {self.started_by}")
        m = self.mapping
        if m is not None:
            lines.append(
                f"  mapping iova {m.iova:#x}+{m.size:#x} ({m.direction.name.lower()}) of driver memory "
                f"{m.cpu_addr:#x}, created at {m.creator}" + (f", unmapped at {m.unmapped_by}" if m.unmapped_by else "")
            )
        return "\n".join(lines)


class MappingEvent(enum.Enum):
    MAPPED = "a mapping was made (dma_map_single, dma_alloc_coherent)"
    UNMAPPED = "a mapping was unmapped (dma_unmap_single, dma_free_coherent)"


class DriverMemory(Protocol):
    """What the checker needs of the driver's memory 0 (the runner adapts the Store's memory)."""

    base: int  # guest virtual address of linear address 0
    page_size: int

    @property
    def size_bytes(self) -> int:
        """The memory's size now."""

    def grow(self, pages: int) -> int:
        """memory.grow: the old size in pages, or -1."""

    def frame_of(self, linear: int) -> int | None:
        """The physical page behind the page of ``linear`` (given a frame first if it has none); None
        when there is no physical memory left."""

    def forbidden(self, linear: int, size: int, write: bool) -> str | None:
        """Why the driver itself may not access ``[linear, +size)`` that way (None: it may)."""

    def revoke(self, linear: int, size: int, why: str) -> None:
        """Take the pages of ``[linear, +size)`` from the driver: an access traps, saying ``why``."""


class DmaChecker:
    """Mappings and their rules, one per driver run, built from explicit collaborators:

    * ``iommu`` translates device requests; the checker attaches one IO address space per DMA device
      (``devices``: IOMMU device ID -> name) and observes every request (``Iommu.add_dma_observer``);
    * ``machine`` gives physical memory, the frame allocator (pins) and watched pages;
    * ``memory`` is the driver's memory 0 (:class:`DriverMemory`);
    * ``clock`` stamps reports; ``authorize(name, call)`` says whether the device is the driver's
      (False: the caller has recorded the refusal); ``locate(pc)`` names driver code; ``error``
      is the exception class for misuse of the API; ``window_base`` is where device windows start in
      the driver's memory (they are not memory a device may be given); ``iova_window`` is the size of
      each device's IOVA window (a mapping bigger than it, or one that finds it full of live
      mappings, goes above it).

    ``bulk_access`` and ``released`` are to be registered with the Store (``add_bulk_access_observer``,
    ``add_release_observer``) by the runner.
    """

    def __init__(
        self,
        *,
        iommu,
        machine,
        memory: DriverMemory,
        devices: dict[int, str],
        clock,
        authorize: Callable[[str, str], bool],
        locate: Callable[[int], str],
        error: type[Exception],
        window_base: int,
        cause: Callable[[str], str] = lambda device: "",
        iova_window: int = IOVA_WINDOW,
    ) -> None:
        """``cause(device)``: where the driver started the work that device is doing now (a C line), for
        reports on the device's own accesses."""
        self.iommu = iommu
        self.cause = cause
        self.machine = machine
        self.memory = memory
        self.clock = clock
        self.authorize = authorize
        self.locate = locate
        self.error = error
        self.window_base = window_base
        self.iova_window = iova_window
        self.reports: list[DmaReport] = []
        # Every mapping whose record is kept: the live ones, and unmapped ones until their IOVAs are reused.
        self._records: dict[int, DmaMapping] = {}  # id() -> mapping, in the order made
        self.by_page: dict[tuple[int, int], DmaMapping] = {}  # (device id, IOVA page) -> its mapping
        self.by_start: dict[tuple[int, int], DmaMapping] = {}  # (device id, IOVA) -> mapping
        self.live: set[int] = set()  # id() of mappings not unmapped yet
        self.spaces: dict[int, AddressSpace] = {}  # device id -> IO address space
        self.next_iova: dict[int, int] = {}  # device id -> where its next mapping is looked for
        self._high: dict[int, int] = {}  # device id -> the end of the highest IOVAs it was given
        self._kept_span: dict[int, int] = {}  # device id -> the 2 MiB IOVA span whose emptied tables are kept
        self.device_ids: dict[int, str] = {}
        self.owned_on_frame: dict[int, list[DmaMapping]] = {}  # physical page -> device-owned mappings on it
        self._cpu_reported: dict[int, set[tuple[int, bool]]] = {}  # id(mapping) -> (pc, write) reported
        self._mapping_observers: list[Callable[[MappingEvent, DmaMapping, str], None]] = []
        self._stop_observing: Callable[[], None] | None = None
        self._directory = None
        if iommu is not None:
            self._directory = iommu.create_directory()
            for device_id, name in devices.items():
                # An IO address space, not the CPU's: its changes are the IOMMU's business (IOTINVAL),
                # so it is not registered with the machine (which would flush the CPU's TLB on every unmap).
                space = AddressSpace(machine.phys, machine.frames)
                self.spaces[device_id] = space
                self.device_ids[device_id] = name
                self.next_iova[device_id] = self._high[device_id] = IOVA_BASE
                iommu.attach(device_id, space, pscid=device_id)
                iommu.iotinval_vma(pscid=device_id)  # a new table behind the PSCID: nothing cached may remain
            # Every device DMA now passes the checker; a validated view (a device's ring) only when the
            # checker vouches for the whole range, so each access through it would pass unremarked.
            self._stop_observing = iommu.add_dma_observer(self.device_request, vouch=self.clean)

    def close(self) -> None:
        """The driver is done with its devices: stop observing DMA, detach each device from the IOMMU
        (its context invalidated, and its IOTLB entries and views with it), free its IO address space
        (the tables), unpin the frames of mappings still live, and unwatch their pages.  Idempotent."""
        if self._stop_observing is None:
            return
        self._stop_observing()
        self._stop_observing = None
        for did, space in self.spaces.items():
            if self.iommu.directory is self._directory:  # (not a later run's directory on this board)
                self.iommu.detach(did)
            else:
                self.iommu.iotinval_vma(pscid=did)
            space.destroy()
        self.spaces.clear()
        for m in self._records.values():
            if id(m) in self.live:
                self._unpin(m)
        self.live.clear()
        for frame in list(self.owned_on_frame):
            self.machine.unwatch_page(frame, self.cpu_access)
        self.owned_on_frame.clear()

    @property
    def mappings(self) -> list[DmaMapping]:
        """The mappings whose records are kept, in the order made: every live one, and unmapped ones
        until their IOVAs are given out again."""
        return list(self._records.values())

    @property
    def closed(self) -> bool:
        return self._stop_observing is None and self.iommu is not None

    # -- observers and lookups ---------------------------------------------------------------------

    def add_mapping_observer(self, observer: Callable[[MappingEvent, DmaMapping, str], None]) -> Callable[[], None]:
        """``observer(event, mapping, where)`` after each mapping made or unmapped (``where``: the driver
        call), in the order added; returns the function that removes it."""
        self._mapping_observers.append(observer)
        return lambda: self._mapping_observers.remove(observer) if observer in self._mapping_observers else None

    def _tell(self, event: MappingEvent, mapping: DmaMapping, where: str) -> None:
        for observer in list(self._mapping_observers):
            observer(event, mapping, where)

    def device_id(self, name: str) -> int | None:
        """The IOMMU device ID of device ``name`` (None: it does no DMA here)."""
        return next((did for did, dev in self.device_ids.items() if dev == name), None)

    def live_mapping(self, device_id: int, iova: int) -> DmaMapping | None:
        """The live mapping of ``device_id`` that holds ``iova``, or None."""
        m = self.by_page.get((device_id, iova & ~(PAGE_SIZE - 1)))
        return m if m is not None and m.unmapped_by is None and m.contains(iova) else None

    @staticmethod
    def physical(mapping: DmaMapping, iova: int) -> int:
        """The physical address behind ``iova`` of ``mapping``."""
        first = mapping.iova & ~(PAGE_SIZE - 1)
        return mapping.frames[(iova - first) // PAGE_SIZE] | (iova & (PAGE_SIZE - 1))

    # -- reports ------------------------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.clock.ticks_to_ns(self.clock.now)

    def report(
        self,
        problem: Problem,
        device: str,
        iova: int,
        size: int,
        access: str,
        *,
        mapping: DmaMapping | None = None,
        where: str = "",
        detail: str = "",
    ) -> None:
        snapshot = dataclasses.replace(mapping) if mapping is not None else None  # the mapping as it is now
        started_by = self.cause(device) if access in ("read", "write") and not where else ""
        self.reports.append(
            DmaReport(problem, device, iova, size, access, self.now_ns(), snapshot, where, detail, started_by)
        )
        if TRACE.dma_bug is not None:
            TRACE.dma_bug(
                device=device,
                problem=problem.name.lower(),
                iova=iova,
                length=size,
                where=where or (mapping.creator if mapping is not None else ""),
            )

    # -- the device side ------------------------------------------------------------------------------

    def clean(self, device_id: int, iova: int, size: int, write: bool) -> bool:
        """True when a device request of ``[iova, +size)`` is nothing to report: wholly inside one live
        mapping, in a direction it allows, and not while the CPU owns the buffer (one dict lookup)."""
        m = self.by_page.get((device_id, iova & ~(PAGE_SIZE - 1)))
        return (
            m is not None
            and m.unmapped_by is None
            and m.iova <= iova
            and iova + size <= m.iova + m.size
            and (m.direction.device_writes if write else m.direction.device_reads)
            and (m.coherent or not m.cpu_owned)
        )

    def device_request(self, device_id: int, iova: int, size: int, write: bool, result) -> None:
        """An IOMMU observer: one device request and what the IOMMU made of it."""
        if self.clean(device_id, iova, size, write):
            return  # the common request: the full check below would find nothing either
        device = self.device_ids.get(device_id, f"#{device_id}")
        access = "write" if write else "read"
        pages = range(iova & ~(PAGE_SIZE - 1), iova + size, PAGE_SIZE)
        touched = {id(m): m for p in pages if (m := self.by_page.get((device_id, p))) is not None}
        candidates = [m for m in touched.values() if m.iova < iova + size and iova < m.iova + max(m.size, 1)]
        live = [m for m in candidates if m.unmapped_by is None]
        if not candidates:
            near = self._page_neighbour(device_id, iova)
            if near is not None and near.unmapped_by is None:
                self.report(
                    Problem.OVERRUN,
                    device,
                    iova,
                    size,
                    access,
                    mapping=near,
                    detail=f"the mapping ends at iova {near.iova + near.size:#x}",
                )
            elif near is not None:
                self.report(Problem.AFTER_UNMAP, device, iova, size, access, mapping=near)
            else:
                self.report(
                    Problem.STRAY,
                    device,
                    iova,
                    size,
                    access,
                    detail="the IOMMU " + ("refused it" if not result.ok else "allowed it"),
                )
            return
        if not live:
            self.report(Problem.AFTER_UNMAP, device, iova, size, access, mapping=candidates[-1])
            return
        m = live[-1]
        if not m.contains(iova, size):
            self.report(
                Problem.OVERRUN,
                device,
                iova,
                size,
                access,
                mapping=m,
                detail=f"the access ends at iova {iova + size:#x}, the mapping at {m.iova + m.size:#x}",
            )
        if (write and not m.direction.device_writes) or (not write and not m.direction.device_reads):
            self.report(
                Problem.DIRECTION,
                device,
                iova,
                size,
                access,
                mapping=m,
                detail=f"a {m.direction.name.lower()} mapping; the device {'wrote' if write else 'read'}",
            )
        if m.cpu_owned and not m.coherent:
            self.report(Problem.CPU_OWNED, device, iova, size, access, mapping=m)
        return

    def _page_neighbour(self, device_id: int, iova: int) -> DmaMapping | None:
        """The mapping whose pages hold ``iova`` (the access missed its bytes but hit its page)."""
        return self.by_page.get((device_id, iova & ~(PAGE_SIZE - 1)))

    # -- the API the driver calls ----------------------------------------------------------------------

    def device_id_of(self, name: str, call: str) -> int | None:
        """The IOMMU device ID of ``name``; None when the device is not assigned to the driver (the
        refusal is recorded by the run)."""
        if not self.authorize(name, call):
            return None
        for did, dev in self.device_ids.items():
            if dev == name:
                return did
        raise self.error(f"device {name!r} does not do DMA (it has no iommu_device_id on this board)")

    def map(self, name: str, cpu_addr: int, size: int, direction: int, where: str, *, coherent=False) -> int:
        did = self.device_id_of(name, "hwsim_dma_alloc_coherent" if coherent else "hwsim_dma_map")
        if did is None:
            return DMA_MAPPING_ERROR
        if direction not in (0, 1, 2):
            raise self.error(f"dma_map: direction must be 0, 1 or 2, not {direction}")
        direction = _DIRECTIONS[direction]
        if size <= 0:
            raise self.error(f"dma_map: size must be positive, not {size}")
        if cpu_addr + size > self.window_base:
            self.report(
                Problem.MAP_MMIO,
                name,
                0,
                size,
                "dma_map",
                where=where,
                detail=f"driver address {cpu_addr:#x} is a device window, not memory",
            )
            return DMA_MAPPING_ERROR
        memory = self.memory
        if cpu_addr + size > memory.size_bytes:
            raise self.error(f"dma_map: [{cpu_addr:#x}, {cpu_addr + size:#x}) is outside the driver's memory")
        why = self._forbidden(cpu_addr, size, direction)
        if why is not None:
            self.report(Problem.MAP_PROTECTED, name, 0, size, "dma_map", where=where, detail=why)
            return DMA_MAPPING_ERROR
        offset = cpu_addr & (PAGE_SIZE - 1)
        npages = (offset + size + PAGE_SIZE - 1) // PAGE_SIZE
        iova_page = self._allocate_iova(did, (npages + 1) * PAGE_SIZE)  # a gap page after every mapping
        span = iova_page >> _TABLE_SPAN_SHIFT
        kept = self._kept_span.get(did)
        if kept != span:
            # New IOVAs are past the leaf table of the span kept so far: free it (and its parents) if empty.
            if kept is not None:
                self.spaces[did].prune(kept << _TABLE_SPAN_SHIFT)
            self._kept_span[did] = span
        rights = _WRITE_RIGHTS if direction.device_writes else _READ_RIGHTS
        space = self.spaces[did]
        frames = []
        allocator = self.machine.frames
        for k in range(npages):
            pa = memory.frame_of((cpu_addr & ~(PAGE_SIZE - 1)) + k * PAGE_SIZE)
            if pa is None:
                raise self.error("dma_map: out of physical memory")
            frames.append(pa)
            if allocator.contains(pa):
                allocator.pin(pa)  # the device may reach it until unmap: it must not be reused before
            space.map(iova_page + k * PAGE_SIZE, pa, PAGE_SIZE, rights, page_size=PAGE_SIZE)
        m = DmaMapping(
            name,
            did,
            iova_page + offset,
            size,
            cpu_addr,
            direction,
            where,
            self.clock.now,
            coherent=coherent,
            frames=tuple(frames),
        )
        self._records[id(m)] = m
        if not coherent:
            self._hand_to_device(m)
        for k in range(npages):
            self.by_page[(did, iova_page + k * PAGE_SIZE)] = m
        self.by_start[(did, m.iova)] = m
        self.live.add(id(m))
        self._tell(MappingEvent.MAPPED, m, where)
        return m.iova

    def _allocate_iova(self, did: int, need: int) -> int:
        """The first IOVA of ``need`` bytes (a mapping's pages and its gap page) for device ``did``: the
        next ones of its window, round robin.  IOVAs of a live mapping or of its gap page are skipped;
        the records of unmapped mappings on the IOVAs given out are dropped (a DMA there now is the new
        mapping's).  When the window holds no room, the IOVAs come from above it."""
        by_page, base, limit = self.by_page, IOVA_BASE, IOVA_BASE + self.iova_window
        start, wrapped = self.next_iova[did], False
        if start >= self._high[did] and start + need <= limit:  # IOVAs never given out: nothing to check
            self.next_iova[did] = self._high[did] = start + need
            return start
        while True:
            if start + need > limit:
                if wrapped or start == base:
                    start = max(limit, self._high[did])  # nothing above it was given out
                    break
                start, wrapped = base, True
            before = by_page.get((did, start - PAGE_SIZE))
            if before is not None and before.unmapped_by is None:
                start += PAGE_SIZE  # the first page would be a live mapping's gap page
                continue
            blocker = None
            for page in range(start, start + need, PAGE_SIZE):
                m = by_page.get((did, page))
                if m is not None and m.unmapped_by is None:
                    blocker = m
                    break
            if blocker is None:
                break
            first, length = blocker.pages()
            start = first + length + PAGE_SIZE  # past the live mapping and its gap page
        dropped: dict[int, DmaMapping] = {}
        for page in range(start, start + need, PAGE_SIZE):
            old = by_page.pop((did, page), None)
            if old is not None:
                dropped[id(old)] = old
        for old in dropped.values():
            self._forget(old, start, start + need)
        self.next_iova[did] = start + need
        self._high[did] = max(self._high[did], start + need)
        return start

    def _forget(self, m: DmaMapping, given_start: int, given_end: int) -> None:
        """Unmapped mapping ``m`` lost its pages in ``[given_start, given_end)`` (given out again; the
        caller took them from the page index): its first IOVA is no longer its own if given out, and its
        record goes when no page is left to it.  Until then a late DMA to the pages it keeps is still
        after its unmap (not to an IOVA never mapped)."""
        did = m.device_id
        if given_start <= m.iova < given_end and self.by_start.get((did, m.iova)) is m:
            del self.by_start[(did, m.iova)]
        first, length = m.pages()
        by_page = self.by_page
        if any(by_page.get((did, page)) is m for page in range(first, first + length, PAGE_SIZE)):
            return
        if self.by_start.get((did, m.iova)) is m:
            del self.by_start[(did, m.iova)]
        self._records.pop(id(m), None)
        self._cpu_reported.pop(id(m), None)

    def _forbidden(self, cpu_addr: int, size: int, direction: Direction) -> str | None:
        """Why the driver may not hand ``[cpu_addr, +size)`` to a device in ``direction`` (None: it may).
        As ``get_user_pages``: a device may read only what the driver may read, and write only what
        it may write (a copy-on-write page is copied first); the null page is never mapped."""
        why = self.memory.forbidden(cpu_addr, size, direction.device_writes)
        return None if why is None else f"driver address {cpu_addr:#x}: {why}"

    def _find(self, did: int, iova: int) -> DmaMapping | None:
        return self.by_start.get((did, iova))

    def _unpin(self, m: DmaMapping) -> None:
        allocator = self.machine.frames
        for pa in m.frames:
            if allocator.contains(pa):
                allocator.unpin(pa)

    def unmap(
        self, name: str, iova: int, size: int, direction: int, where: str, *, call: str = "hwsim_dma_unmap"
    ) -> None:
        did = self.device_id_of(name, call)
        if did is None:
            return
        m = self._find(did, iova)
        if m is None:
            self.report(Problem.UNMAP_UNKNOWN, name, iova, size, "dma_unmap", where=where)
            return
        if m.unmapped_by is not None:
            self.report(Problem.DOUBLE_UNMAP, name, iova, size, "dma_unmap", mapping=m, where=where)
            return
        if size != m.size:
            self.report(
                Problem.UNMAP_SIZE,
                name,
                iova,
                size,
                "dma_unmap",
                mapping=m,
                where=where,
                detail=f"mapped {m.size} bytes, unmapped {size}",
            )
        if direction != m.direction:
            self.report(
                Problem.UNMAP_DIRECTION,
                name,
                iova,
                size,
                "dma_unmap",
                mapping=m,
                where=where,
                detail=f"mapped {m.direction.name.lower()}, unmapped "
                f"{Direction(direction).name.lower() if direction in (0, 1, 2) else direction}",
            )
        if m.device_owned:
            self._hand_to_cpu(m)
        first, length = m.pages()
        # The leaf table of the span new mappings land in is kept when it empties; see map.
        kept = self._kept_span.get(did)
        inside = first >> _TABLE_SPAN_SHIFT == kept == (first + length - 1) >> _TABLE_SPAN_SHIFT
        self.spaces[did].unmap(first, length, prune=not inside)
        for page in range(first, first + length, PAGE_SIZE):  # what the kernel's IOMMU driver does on unmap
            self.iommu.iotinval_vma(page, pscid=did)
        self._unpin(m)  # the device can no longer reach the frames: they may be reused
        m.unmapped_by = where
        self.live.discard(id(m))
        self._tell(MappingEvent.UNMAPPED, m, where)

    def sync(self, name: str, iova: int, size: int, direction: int, for_cpu: bool, where: str) -> None:
        call = "dma_sync_for_cpu" if for_cpu else "dma_sync_for_device"
        did = self.device_id_of(name, f"hwsim_{call}")
        if did is None:
            return
        m = self.by_page.get((did, iova & ~(PAGE_SIZE - 1)))
        live = [m] if m is not None and m.unmapped_by is None and m.iova <= iova < m.iova + m.size else []
        if not live:
            self.report(Problem.SYNC_UNMAPPED, name, iova, size, call, where=where)
            return
        m = live[-1]
        if not m.contains(iova, size):
            self.report(Problem.SYNC_RANGE, name, iova, size, call, mapping=m, where=where)
        if direction != m.direction:
            self.report(Problem.SYNC_DIRECTION, name, iova, size, call, mapping=m, where=where)
        if m.coherent or m.cpu_owned == for_cpu:
            m.cpu_owned = for_cpu
            return
        self.iommu.invalidate_views(did, m.iova, m.size)  # a view vouched for while the device owned it
        if for_cpu:
            self._hand_to_cpu(m)
            m.cpu_owned = True
        else:
            m.cpu_owned = False
            self._hand_to_device(m)

    # -- the CPU side: watched pages ---------------------------------------------------------------------

    def _hand_to_device(self, m: DmaMapping) -> None:
        for frame in m.frames:
            self.owned_on_frame.setdefault(frame, []).append(m)
            self._rewatch(frame)

    def _hand_to_cpu(self, m: DmaMapping) -> None:
        for frame in m.frames:
            owners = self.owned_on_frame.get(frame, [])
            if m in owners:
                owners.remove(m)
            self._rewatch(frame)

    def _rewatch(self, frame: int) -> None:
        machine = self.machine
        owners = self.owned_on_frame.get(frame)
        if not owners:
            self.owned_on_frame.pop(frame, None)
            machine.unwatch_page(frame)
            return
        reads = any(o.direction.device_writes for o in owners)  # the CPU must not read what a device writes
        machine.watch_page(frame, self.cpu_access, _LOADS_AND_STORES if reads else _STORES)

    def cpu_access(self, hit) -> None:
        """A driver load or store on a page holding device-owned bytes (from the machine's watch)."""
        linear = hit.va - self.memory.base
        self.check_cpu_access(linear, hit.size, hit.access is Access.STORE, hit.pc, frame=hit.pa & ~(PAGE_SIZE - 1))

    def bulk_access(self, memory_base: int, offset: int, length: int, write: bool, pc: int) -> None:
        """A Store observer: a bulk memory operation (memory.copy/fill/init) the host carries out."""
        if memory_base == self.memory.base and self.owned_on_frame:
            self.check_cpu_access(offset, length, write, pc)

    def released(self, memory_base: int, offset: int, length: int, operation: str, pc: int) -> None:
        """A Store observer: the driver released pages of its memory (``memory.discard``/``memory.unmap``).

        Pages of a live mapping lose their frames to the CPU but not to the device (the frames stay pinned
        and mapped in the IO space): what the device writes next never reaches the driver's memory, and
        what the driver writes next never reaches the device.  As Linux's ``madvise(MADV_DONTNEED)`` or
        ``munmap`` of a buffer still under ``dma_map_single``."""
        if memory_base != self.memory.base or not self.live:
            return
        end = offset + length
        for m in self._records.values():
            if id(m) not in self.live or not (m.cpu_addr < end and offset < m.cpu_addr + m.size):
                continue
            first, stop = max(offset, m.cpu_addr), min(end, m.cpu_addr + m.size)
            owner = "the device owns it" if m.device_owned else "it is still mapped"
            self.report(
                Problem.RELEASED,
                m.device,
                m.iova + (first - m.cpu_addr),
                stop - first,
                operation,
                mapping=m,
                where=self.locate(pc),
                detail=f"{operation} of driver memory {offset:#x}+{length:#x} released {stop - first} bytes of a "
                f"buffer while {owner}: the device keeps the old pages, so what it writes is lost to the driver "
                f"and what the driver writes there next never reaches the device (dma_unmap or dma_free_coherent it first)",
            )

    def check_cpu_access(self, linear: int, size: int, write: bool, pc: int, *, frame: int | None = None) -> None:
        """Report driver accesses to bytes of driver memory 0 that a device owns now."""
        owners: Iterable[DmaMapping]
        if frame is not None:
            owners = self.owned_on_frame.get(frame, ())
        else:
            owners = {id(m): m for ms in self.owned_on_frame.values() for m in ms}.values()
        for m in owners:
            if not (m.cpu_addr < linear + size and linear < m.cpu_addr + m.size):
                continue
            if not write and not m.direction.device_writes:
                continue  # reading a buffer the device only reads is harmless
            reported = self._cpu_reported.setdefault(id(m), set())
            if (pc, write) in reported:
                continue
            reported.add((pc, write))
            first = max(linear, m.cpu_addr)
            end = min(linear + size, m.cpu_addr + m.size)
            if write and m.direction.device_writes:
                why = "the device may overwrite it, or the CPU's write may overwrite what the device wrote"
            elif write:
                why = "the device may already have read the old bytes, or read a mix of old and new"
            else:
                why = "the CPU may see stale data: dma_sync_for_cpu (or unmap) first"
            self.report(
                Problem.CPU_TOUCH,
                m.device,
                m.iova + (first - m.cpu_addr),
                end - first,
                "CPU write" if write else "CPU read",
                mapping=m,
                where=self.locate(pc),
                detail=f"the driver {'wrote' if write else 'read'} {size} byte{'s' * (size != 1)} at "
                f"driver address {linear:#x} while the device owns the buffer; {why}",
            )

    def alloc_coherent(self, name: str, size: int, where: str) -> tuple[int, int]:
        """(driver address, iova) of ``size`` new bytes at the end of the driver's memory."""
        memory = self.memory
        if self.device_id_of(name, "hwsim_dma_alloc_coherent") is None:
            return 0, DMA_MAPPING_ERROR
        pages = (size + memory.page_size - 1) // memory.page_size
        old = memory.grow(pages)
        if old < 0:
            raise self.error(f"dma_alloc_coherent: cannot grow the driver's memory by {pages} pages")
        cpu = old * memory.page_size
        return cpu, self.map(name, cpu, size, Direction.BIDIRECTIONAL, where, coherent=True)

    def free_coherent(self, name: str, size: int, cpu_addr: int, iova: int, where: str) -> None:
        """Unmap coherent memory and take it from the driver: a CPU access to it afterwards traps."""
        did = self.device_id(name)
        m = self._find(did, iova) if did is not None else None
        live = m is not None and m.unmapped_by is None and m.coherent
        self.unmap(name, iova, size, Direction.BIDIRECTIONAL, where, call="hwsim_dma_free_coherent")
        if live and m is not None and m.unmapped_by == where and size == m.size:
            self.memory.revoke(m.cpu_addr, m.size, f"was freed by hwsim_dma_free_coherent({name!r}, {size}) at {where}")

    def check_leaks(self) -> None:
        for m in self._records.values():
            if id(m) in self.live:
                self.report(Problem.LEAK, m.device, m.iova, m.size, "driver exit", mapping=m)
        self._records = {k: m for k, m in self._records.items() if k in self.live}  # the page index keeps the rest
