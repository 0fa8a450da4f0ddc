"""The virtio protocol checker: the driver's side of the split-ring rules, seen in the memory it writes.

::

    virtio device --queue events--> VirtioChecker <--mapping events-- DmaChecker (dma_map, dma_free_...)
    (devices/virtio: ready,            |   watches the stores to each live queue's descriptor table
     notified, fetched, returned,      |   and available ring (Machine.watch_stores)
     stopped)                          v
                              ProtocolReport: rule, device, queue, the driver's C line

A queue is *live* from QueueReady = 1 until the device is reset (Status = 0) or QueueReady = 0.  While
it is, the checker knows which chains the device owns: a chain is the device's from the store that
publishes it (the available idx moving past its entry) until the device returns it in the used ring.
The rules (virtio 1.x, 2.7), each reported at the driver's store or call that broke it:

=============  ==================================================================================
AVAIL_WRAP     the available idx counts entries modulo 2^16 (the entry is ring[idx % size]); it
               never moves back, nor more than the queue size ahead of the device
AVAIL_STALE    the idx moves by the number of entries the driver wrote: each newly available
               entry was written since the device last read that slot (else the device reads a
               stale head; of the entries written before QueueReady, only those holding a
               non-zero head are known to be written: write ring entries after QueueReady)
DOUBLE_AVAIL   a chain the device still owns (or one sharing its descriptors) is not made
               available again: the device would serve it twice
CHAIN          a chain stays within the descriptor table and is no longer than the queue
DEVICE_OWNED   descriptors of chains the device owns, and available entries it has not read yet,
               are not rewritten
NO_NOTIFY      buffers made available are followed by a notification (QueueNotify) unless the
               device suppressed notifications (VIRTQ_USED_F_NO_NOTIFY); checked when the queue
               stops and when the driver returns
RING_FREED     the memory of a live queue's rings is not unmapped or freed: reset the device first
RING_REUSED    nor mapped again for DMA, nor given to another queue while live
=============  ==================================================================================

The device checks what it can see through its registers and its DMA (devices/virtio: the
initialisation sequence, malformed chains it fetches); this checker adds what only the CPU's stores
show.  Coherent memory used after ``dma_free_coherent`` traps (the DMA checker revokes it).
"""

from __future__ import annotations

import enum
import struct
from collections.abc import Callable
from dataclasses import dataclass

from ..devices.virtio.bits import DESC_F_NEXT, DESC_SIZE
from ..devices.virtio.mmio import QueueEvent, QueueEventKind, VirtioMmio
from ..devices.virtio.queue import SplitQueue
from ..mmu.bits import PAGE_SIZE
from ..trace import TRACE
from .dma import DmaChecker, DmaMapping, MappingEvent

USED_F_NO_NOTIFY = 1
_DESC = struct.Struct("<QIHH")


class Rule(enum.Enum):
    """A driver rule of the split virtqueue; the value is the fixed message."""

    AVAIL_WRAP = "available idx not counted modulo 2^16"
    AVAIL_STALE = "available idx moved past entries the driver did not write"
    DOUBLE_AVAIL = "a chain the device still owns made available again"
    CHAIN = "a chain leaves the descriptor table or is longer than the queue"
    DEVICE_OWNED = "ring memory the device owns rewritten"
    NO_NOTIFY = "buffers made available without notifying the device"
    RING_FREED = "ring memory unmapped while the device is live"
    RING_REUSED = "ring memory reused while the device is live"


@dataclass
class ProtocolReport:
    rule: Rule
    device: str
    queue: int
    time_ns: int
    where: str = ""  # the driver's store or call (C line)
    detail: str = ""

    def format(self) -> str:
        lines = [
            f"virtio bug: {self.rule.value}: device {self.device}, queue {self.queue}, at {self.time_ns / 1e6:.3f} ms"
        ]
        if self.detail:
            lines.append(f"  {self.detail}")
        if self.where:
            lines.append(f"  by the driver at {self.where}")
        return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class _Piece:
    """A run of bytes of one ring structure inside one physical page."""

    kind: str  # "desc" or "avail"
    pa: int
    iova: int
    length: int


class _Ring:
    """What the checker knows of one live queue."""

    def __init__(self, device: str, device_id: int, queue: SplitQueue) -> None:
        self.device = device
        self.device_id = device_id
        self.queue = queue
        self.size = queue.size
        self.desc, self.avail, self.used = queue.desc, queue.avail, queue.used
        self.published = 0  # the available idx as the driver last stored it
        self.fresh: set[int] = set()  # ring slots written since they were last published
        self.owned: dict[int, tuple[tuple[int, ...], str]] = {}  # head -> (its descriptors, where published)
        self.owner_of: dict[int, int] = {}  # descriptor -> head of the device-owned chain holding it
        self.unnotified: str | None = None  # where the driver first published since the last notification
        self.pieces: list[_Piece] = []
        self.watches: list[int] = []  # Machine.watch_stores handles over its pieces

    @property
    def avail_len(self) -> int:
        return 4 + 2 * self.size + 2  # flags, idx, ring[size], used_event

    def extents(self) -> list[tuple[str, int, int]]:
        """(what, iova, length) of the structures the driver writes and the device reads."""
        return [
            ("descriptor table", self.desc, DESC_SIZE * self.size),
            ("available ring", self.avail, self.avail_len),
            ("used ring", self.used, 4 + 8 * self.size + 2),
        ]

    def device_slots(self) -> set[int]:
        """Available-ring slots published and not read by the device yet."""
        consumed = self.queue.last_avail
        ahead = (self.published - consumed) & 0xFFFF
        return {(consumed + k) % self.size for k in range(min(ahead, self.size))}

    def device_has_slot(self, slot: int) -> bool:
        """Whether available-ring ``slot`` is published and not read by the device yet."""
        consumed = self.queue.last_avail
        ahead = min((self.published - consumed) & 0xFFFF, self.size)
        return (slot - consumed) % self.size < ahead


class VirtioChecker:
    """One per driver run, built from explicit collaborators: ``machine`` (physical memory, watched
    pages, the PC of a device access), ``dma`` (mappings: where rings are), ``clock`` (report times),
    ``locate(pc)`` (names driver code).  :meth:`attach` each virtio device given to the driver."""

    def __init__(self, *, machine, dma: DmaChecker, clock, locate: Callable[[int], str]) -> None:
        self.machine = machine
        self.dma = dma
        self.clock = clock
        self._locate = locate
        self._located: dict[int, str] = {}  # pc -> its name: a run's code does not move
        self.reports: list[ProtocolReport] = []
        self.rings: dict[tuple[str, int], _Ring] = {}  # (device, queue index) -> live ring
        self._reported: set = set()
        dma.add_mapping_observer(self._mapping)

    def attach(self, name: str, device: VirtioMmio) -> None:
        device_id = self.dma.device_id(name)
        if device_id is None:
            return
        device.add_queue_observer(lambda event: self._queue_event(name, device_id, event))

    def locate(self, pc: int) -> str:
        """The driver code at ``pc`` (asked once per pc: every store to a live ring names its code)."""
        where = self._located.get(pc)
        if where is None:
            where = self._located[pc] = self._locate(pc)
        return where

    # -- reports --------------------------------------------------------------------------------------

    def report(self, rule: Rule, ring: _Ring, where: str, detail: str, *, once=None) -> None:
        if once is not None:
            if once in self._reported:
                return
            self._reported.add(once)
        time_ns = self.clock.ticks_to_ns(self.clock.now)
        self.reports.append(ProtocolReport(rule, ring.device, ring.queue.index, time_ns, where, detail))
        if TRACE.protocol_bug is not None:
            TRACE.protocol_bug(device=ring.device, queue=ring.queue.index, rule=rule.name.lower(), where=where)

    def _here(self) -> str:
        """The driver code of the device access being served now (a register write), if any."""
        pc = self.machine.serving_mmio_pc
        return self.locate(pc) if pc is not None else ""

    # -- queue events ---------------------------------------------------------------------------------

    def _queue_event(self, name: str, device_id: int, event: QueueEvent) -> None:
        key = (name, event.queue.index)
        kind = event.kind
        if kind is QueueEventKind.READY:
            self._ready(name, device_id, event.queue)
            return
        ring = self.rings.get(key)
        if ring is None:
            return
        if kind is QueueEventKind.NOTIFIED:
            ring.unnotified = None
        elif kind is QueueEventKind.FETCHED and event.chain is not None:
            chain = event.chain
            if chain.head not in ring.owned:  # published where the checker could not see it
                ring.owned[chain.head] = (tuple(chain.descriptors), "")
                for d in chain.descriptors:
                    ring.owner_of.setdefault(d, chain.head)
        elif kind is QueueEventKind.RETURNED and event.chain is not None:
            self._release(ring, event.chain.head)
        elif kind is QueueEventKind.STOPPED:
            self._check_notified(ring)
            self._forget(ring)

    def _ready(self, name: str, device_id: int, queue: SplitQueue) -> None:
        ring = _Ring(name, device_id, queue)
        for other in self.rings.values():
            clash = self._overlap(ring, other)
            if clash is not None:
                self.report(
                    Rule.RING_REUSED,
                    ring,
                    self._here(),
                    f"queue {queue.index}'s {clash[0]} overlaps {other.device} queue {other.queue.index}'s "
                    f"{clash[1]}, which is live: one ring's memory serves one queue",
                )
        for what, iova, length in ring.extents():
            if what == "used ring":
                continue  # the device writes it; the driver only reads
            kind = "desc" if what == "descriptor table" else "avail"
            end = iova + length
            while iova < end:
                n = min(end - iova, PAGE_SIZE - (iova & (PAGE_SIZE - 1)))
                m = self.dma.live_mapping(device_id, iova)
                if m is not None:  # (memory the driver never mapped: the device faults, nothing to watch)
                    ring.pieces.append(_Piece(kind, self.dma.physical(m, iova), iova, n))
                iova += n
        idx = self._read_iova(ring, ring.avail + 2, 2)
        ring.published = int.from_bytes(idx, "little") if idx is not None else 0
        # Entries written before QueueReady were not watched: take the unpublished slots that hold a
        # head (a non-zero one; an unwritten slot reads 0 in fresh memory) as written.
        entries = self._read_iova(ring, ring.avail + 4, 2 * ring.size)
        if entries is not None:
            for k in range(ring.size - min(ring.published, ring.size)):
                slot = (ring.published + k) % ring.size
                if entries[2 * slot] or entries[2 * slot + 1]:
                    ring.fresh.add(slot)
        self.rings[(name, queue.index)] = ring
        for piece in ring.pieces:
            self._watch(ring, piece)

    def _watch(self, ring: _Ring, piece: _Piece) -> None:
        """Watch the driver's stores to ``piece``: the descriptors, or the available ring's flags, idx and
        entries (the flags mean nothing to the checker, but a store of them may write the idx as well).
        Most stores need no report (a descriptor the driver owns, an entry not published, the flags): they
        are let go before anything else is computed."""
        start, end = piece.pa, piece.pa + piece.length
        if piece.kind == "desc":
            desc = ring.desc - piece.iova + piece.pa  # where descriptor 0 would be in this piece's frame
            owner_of = ring.owner_of

            def stored(pa: int, size: int, value: int) -> None:
                if pa + size <= end:
                    if not owner_of:
                        return
                    first, last = (pa - desc) // DESC_SIZE, (pa + size - 1 - desc) // DESC_SIZE
                    if first not in owner_of and last not in owner_of:
                        return
                self._stored_in(ring, pa, size, value)
        else:
            avail = ring.avail - piece.iova + piece.pa  # where the available ring would begin in this frame
            entries_end = avail + 4 + 2 * ring.size
            # From the flags on: a store that begins there may write the idx too (a 32- or 64-bit store of
            # flags and idx, or of flags, idx and entries), and is shown only if its first byte is watched.
            start, end = max(start, avail), min(end, entries_end)
            if start >= end:
                return

            def stored(pa: int, size: int, value: int) -> None:
                if avail + 4 <= pa and pa + size <= end:  # ring entries only: note them, report device-owned ones
                    for slot in range((pa - avail - 4) // 2, (pa + size - avail - 5) // 2 + 1):
                        if ring.device_has_slot(slot):
                            self._stored_in(ring, pa, size, value)
                            return
                        ring.fresh.add(slot)
                    return
                if pa + size <= avail + 2:
                    return  # the flags alone
                self._stored_in(ring, pa, size, value)

        ring.watches.append(self.machine.watch_stores(start, end - start, stored))

    def _forget(self, ring: _Ring) -> None:
        self.rings.pop((ring.device, ring.queue.index), None)
        for handle in ring.watches:
            self.machine.unwatch_stores(handle)
        ring.watches.clear()

    def _release(self, ring: _Ring, head: int) -> None:
        descs, _ = ring.owned.pop(head, ((), ""))
        for d in descs:
            if ring.owner_of.get(d) == head:
                del ring.owner_of[d]

    def _check_notified(self, ring: _Ring) -> None:
        if ring.unnotified is not None:
            where, ring.unnotified = ring.unnotified, None
            self.report(
                Rule.NO_NOTIFY,
                ring,
                where,
                f"the driver made buffers available on queue {ring.queue.index} (this store of the available "
                f"idx) and never wrote QueueNotify; the device, which did not set VIRTQ_USED_F_NO_NOTIFY, "
                f"was not told",
            )

    def check_end(self) -> None:
        """The driver returned: buffers made available and never notified are reported."""
        for ring in list(self.rings.values()):
            self._check_notified(ring)

    # -- memory of the rings ----------------------------------------------------------------------------

    def _pa(self, ring: _Ring, iova: int) -> int | None:
        m = self.dma.live_mapping(ring.device_id, iova)
        return self.dma.physical(m, iova) if m is not None else None

    def _read_iova(self, ring: _Ring, iova: int, size: int) -> bytes | None:
        if size <= PAGE_SIZE - (iova & (PAGE_SIZE - 1)):  # one page (every ring field): no loop, RAM read direct
            m = self.dma.live_mapping(ring.device_id, iova)
            if m is None:
                return None
            pa = self.dma.physical(m, iova)
            ram = self.machine.ram
            at = pa - ram.base
            if 0 <= at and at + size <= ram.size:
                return bytes(ram.view[at : at + size])
            return self.machine.phys.read(pa, size)
        out = bytearray()
        while size:
            piece_pa = self._pa(ring, iova)
            if piece_pa is None:
                return None
            n = min(size, PAGE_SIZE - (iova & (PAGE_SIZE - 1)))
            out += self.machine.phys.read(piece_pa, n)
            iova += n
            size -= n
        return bytes(out)

    def _overlap(self, ring: _Ring, other: _Ring) -> tuple[str, str] | None:
        if ring.device_id != other.device_id:
            return None
        for what, iova, length in ring.extents():
            for other_what, other_iova, other_length in other.extents():
                if iova < other_iova + other_length and other_iova < iova + length:
                    return what, other_what
        return None

    # -- the driver's stores ---------------------------------------------------------------------------

    def _stored_in(self, ring: _Ring, at: int, size: int, value: int) -> None:
        """A driver store of ``size`` bytes at physical ``at`` that may matter to ``ring``: byte by byte
        (a store inside one piece, every aligned one, is taken whole)."""
        data = value.to_bytes(size, "little")
        descs: set[int] = set()
        slots: set[int] = set()
        idx_bytes: dict[int, int] = {}
        piece = next((p for p in ring.pieces if p.pa <= at < p.pa + p.length), None)
        if piece is not None and at + size <= piece.pa + piece.length:
            iova = piece.iova + (at - piece.pa)
            if piece.kind == "desc":
                descs.update(range((iova - ring.desc) // DESC_SIZE, (iova + size - 1 - ring.desc) // DESC_SIZE + 1))
            else:
                self._avail_bytes(ring, iova - ring.avail, data, slots, idx_bytes)
        else:
            for k in range(size):
                pa = at + k
                piece = next((p for p in ring.pieces if p.pa <= pa < p.pa + p.length), None)
                if piece is None:
                    continue
                iova = piece.iova + (pa - piece.pa)
                if piece.kind == "desc":
                    descs.add((iova - ring.desc) // DESC_SIZE)
                else:
                    self._avail_bytes(ring, iova - ring.avail, data[k : k + 1], slots, idx_bytes)
        if not (descs or slots or idx_bytes):
            return
        pc = self.machine.store_pc()
        where = self.locate(pc)
        for d in sorted(descs):
            head = ring.owner_of.get(d)
            if head is not None:
                self.report(
                    Rule.DEVICE_OWNED,
                    ring,
                    where,
                    f"descriptor {d} of the chain at descriptor {head}, which the device owns (made available "
                    f"and not returned in the used ring yet): the device may read it at any time",
                    once=(ring.device, ring.queue.index, "desc", d, pc),
                )
        device_slots = ring.device_slots() if slots else set()
        for slot in sorted(slots):
            if slot in device_slots:
                self.report(
                    Rule.DEVICE_OWNED,
                    ring,
                    where,
                    f"available ring entry {slot}, made available and not read by the device yet",
                    once=(ring.device, ring.queue.index, "avail", slot, pc),
                )
            ring.fresh.add(slot)
        if idx_bytes:
            before = self._read_iova(ring, ring.avail, 4 + 2 * ring.size)  # (one read serves _publish too)
            old = before[2:4] if before is not None else self._read_iova(ring, ring.avail + 2, 2)
            if old is None:
                return
            new = bytearray(old)
            for i, b in idx_bytes.items():
                new[i] = b
            self._publish(ring, int.from_bytes(new, "little"), where, pending=(at, data), before=before)

    @staticmethod
    def _avail_bytes(ring: _Ring, offset: int, data: bytes, slots: set[int], idx_bytes: dict[int, int]) -> None:
        """Note bytes ``data`` stored at ``offset`` into the available ring: idx bytes and entry slots."""
        for k, byte in enumerate(data):
            o = offset + k
            if o in (2, 3):
                idx_bytes[o - 2] = byte
            elif 4 <= o < 4 + 2 * ring.size:
                slots.add((o - 4) // 2)

    def _avail_after(self, ring: _Ring, pending, avail: bytes | None) -> bytes | None:
        """The available ring's bytes as the store being carried out leaves them (``avail``: as memory holds
        them before it)."""
        if avail is None:
            return None
        at, data = pending
        out = bytearray(avail)
        piece = next((p for p in ring.pieces if p.kind == "avail" and p.pa <= at < p.pa + p.length), None)
        if piece is not None and at + len(data) <= piece.pa + piece.length:  # the store within one piece
            offset = piece.iova + (at - piece.pa) - ring.avail
            n = max(0, min(len(data), len(out) - offset))
            out[offset : offset + n] = data[:n]
            return bytes(out)
        for k, b in enumerate(data):
            pa = at + k
            piece = next((p for p in ring.pieces if p.kind == "avail" and p.pa <= pa < p.pa + p.length), None)
            if piece is not None:
                offset = piece.iova + (pa - piece.pa) - ring.avail
                if offset < len(out):
                    out[offset] = b
        return bytes(out)

    def _publish(self, ring: _Ring, new: int, where: str, *, pending, before: bytes | None) -> None:
        old = ring.published
        delta = (new - old) & 0xFFFF
        if not delta:
            return
        ring.published = new
        size = ring.size
        ahead = (new - ring.queue.last_avail) & 0xFFFF
        if delta > 0x8000 or ahead > size:
            why = (
                "it moved back"
                if delta > 0x8000
                else f"{ahead} entries are now ahead of the device, more than the queue size {size}"
            )
            hint = " (wrapped at the queue size?)" if new < size <= old + 1 and delta > 0x8000 else ""
            self.report(
                Rule.AVAIL_WRAP,
                ring,
                where,
                f"the available idx went from {old} to {new}: {why}{hint}; it counts every entry made available, "
                f"modulo 2^16 (the entry is ring[idx % {size}]), and never moves back",
            )
            return
        avail = self._avail_after(ring, pending, before)
        stale = []
        for k in range(delta):
            slot = (old + k) % size
            if slot in ring.fresh:
                ring.fresh.discard(slot)
            else:
                stale.append(slot)
            if avail is not None:
                head = int.from_bytes(avail[4 + 2 * slot : 6 + 2 * slot], "little")
                self._take(ring, head, where)
        if stale:
            entries = ", ".join(map(str, stale))
            self.report(
                Rule.AVAIL_STALE,
                ring,
                where,
                f"the available idx moved from {old} to {new} ({delta} entr{'y' if delta == 1 else 'ies'}), but "
                f"ring entr{'y' if len(stale) == 1 else 'ies'} {entries} {'was' if len(stale) == 1 else 'were'} not "
                f"written since the device last read {'it' if len(stale) == 1 else 'them'}: the device reads a stale "
                f"head; write ring[idx % {size}] for each entry, then move idx by their number",
            )
        used_flags = self._read_iova(ring, ring.used, 2)
        suppressed = used_flags is not None and int.from_bytes(used_flags, "little") & USED_F_NO_NOTIFY
        if ring.unnotified is None and not suppressed:
            ring.unnotified = where

    def _take(self, ring: _Ring, head: int, where: str) -> None:
        """The chain at ``head`` becomes the device's: check it, and its ownership."""
        descs, problem = self._walk(ring, head)
        if problem is not None:
            self.report(Rule.CHAIN, ring, where, f"the chain at descriptor {head}: {problem}")
        if head in ring.owned:
            published = ring.owned[head][1]
            earlier = f"; it was made available at {published}" if published and published != where else ""
            self.report(
                Rule.DOUBLE_AVAIL,
                ring,
                where,
                f"the chain at descriptor {head} is made available again, but the device has not returned it "
                f"(it is not in the used ring yet){earlier}: the device would serve it twice",
            )
            return
        shared = [d for d in descs if d in ring.owner_of]
        if shared:
            self.report(
                Rule.DOUBLE_AVAIL,
                ring,
                where,
                f"the chain at descriptor {head} uses descriptor {shared[0]}, which belongs to the chain at "
                f"descriptor {ring.owner_of[shared[0]]} the device still owns",
            )
            return
        ring.owned[head] = (tuple(descs), where)
        for d in descs:
            ring.owner_of[d] = head

    def _walk(self, ring: _Ring, head: int) -> tuple[list[int], str | None]:
        """The descriptors of the chain at ``head`` as memory holds them, and what is wrong with it."""
        size = ring.size
        descs: list[int] = []
        table = self._read_iova(ring, ring.desc, DESC_SIZE * size)  # the whole table in one read, when mapped
        i = head
        while True:
            if i >= size:
                where = "the available entry names" if not descs else f"descriptor {descs[-1]} chains to"
                return descs, f"{where} descriptor {i}, outside the {size}-entry table"
            if i in descs:
                return descs, f"descriptor {descs[-1]} chains back to descriptor {i}: a loop, longer than the queue"
            raw = (
                table[DESC_SIZE * i : DESC_SIZE * (i + 1)]
                if table is not None
                else self._read_iova(ring, ring.desc + DESC_SIZE * i, DESC_SIZE)
            )
            if raw is None:
                return descs, None
            descs.append(i)
            _addr, _length, flags, nxt = _DESC.unpack(raw)
            if not flags & DESC_F_NEXT:
                return descs, None
            i = nxt

    # -- mappings ---------------------------------------------------------------------------------------

    def _mapping(self, event: MappingEvent, m: DmaMapping, where: str) -> None:
        if event is MappingEvent.UNMAPPED:
            for ring in list(self.rings.values()):
                if ring.device_id != m.device_id:
                    continue
                hit = next((w for w, iova, n in ring.extents() if iova < m.iova + m.size and m.iova < iova + n), None)
                if hit is None:
                    continue
                call = "dma_free_coherent" if m.coherent else "dma_unmap_single"
                self.report(
                    Rule.RING_FREED,
                    ring,
                    where,
                    f"{call} of the memory holding queue {ring.queue.index}'s {hit} while the device is live "
                    f"(not reset): it may still read and write it; reset the device (write 0 to Status) first",
                )
                self._forget(ring)
            return
        for ring in self.rings.values():
            for what, iova, length in ring.extents():
                own = self.dma.live_mapping(ring.device_id, iova)
                if own is None or own is m:
                    continue
                cpu = own.cpu_addr + (iova - own.iova)
                if m.cpu_addr < cpu + length and cpu < m.cpu_addr + m.size:
                    self.report(
                        Rule.RING_REUSED,
                        ring,
                        where,
                        f"driver memory [{m.cpu_addr:#x}, {m.cpu_addr + m.size:#x}) mapped for {m.device} holds "
                        f"queue {ring.queue.index}'s {what}, which is live",
                    )
                    break
