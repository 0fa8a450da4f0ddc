"""IOMMU fault records and the fault queue (a ring with the RISC-V IOMMU's overflow rule).

::

     head (software consumes)          tail (IOMMU produces)
      v                                 v
    +----+----+----+----+----+----+----+----+
    |    | r1 | r2 | r3 |    |    |    |    |   N slots, at most N-1 records:
    +----+----+----+----+----+----+----+----+   full when tail == head - 1 (mod N)

When a record must be queued and the queue is full, the IOMMU sets the
overflow flag (``fqcsr.fqof``) and discards that record and **every later
one** until software clears the flag (write 1 to ``fqof``), as the RISC-V
IOMMU specification's fault/event-queue section says.  Discarded records are
counted, and kept in ``Iommu.fault_log`` with ``queued=False`` so a run
report can still show them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..mmu.report import format_walk, walk_to_json
from ..mmu.report_twostage import format_two_stage, two_stage_to_json
from ..mmu.twostage import TwoStageResult
from ..mmu.walker import WalkResult
from .bits import FAULT_DID_SHIFT, FAULT_TTYP_SHIFT, IommuCause, Ttyp


class DmaAccess(enum.Enum):
    READ = "read"
    WRITE = "write"

    @property
    def ttyp(self) -> Ttyp:
        return Ttyp.UNTRANSLATED_READ if self is DmaAccess.READ else Ttyp.UNTRANSLATED_WRITE


@dataclass(frozen=True, slots=True)
class DirectoryStep:
    """One read of the device directory: a non-leaf entry or the device context."""

    level: int
    address: int
    value: int  # the non-leaf entry, or the context's tc doubleword
    decision: str


@dataclass(frozen=True)
class IommuFault:
    """A DMA the IOMMU refused: who, where, what, why, when, and the walks that said so."""

    device_id: int
    iova: int
    access: DmaAccess
    cause: IommuCause
    reason: str
    time: int  # virtual tick
    walk: WalkResult | None = None  # the IO page-table walk (None: the fault came before it)
    directory: tuple[DirectoryStep, ...] = ()
    iotlb_pte: int | None = None  # set when a cached IOTLB entry decided the fault
    queued: bool = True  # False: discarded (queue overflow, queue off, or DTF)
    iotval2: int = 0  # guest-page faults: the GPA's bits 63:2, bit 0 implicit, bit 1 implicit write
    two_stage: TwoStageResult | None = None  # the nested walk, for a context with a second stage

    @property
    def message(self) -> str:
        return (
            f"device {self.device_id}: DMA {self.access.value} at iova {self.iova:#x}: "
            f"{self.cause.describe} (cause {int(self.cause)}): {self.reason}"
        )

    def format(self) -> str:
        lines = [f"[t={self.time}] {self.message}"]
        for step in self.directory:
            lines.append(f"  directory level {step.level}: @ {step.address:#x} = {step.value:#018x}  {step.decision}")
        if self.iotlb_pte is not None:
            lines.append(
                f"  decided by a cached IOTLB entry (leaf PTE {self.iotlb_pte:#018x}); the IO page tables now read:"
            )
        if self.walk is not None:
            lines.extend("  " + line for line in format_walk(self.walk))
        if self.two_stage is not None:
            lines.extend("  " + line for line in format_two_stage(self.two_stage))
        if self.iotval2:
            lines.append(f"  iotval2 = {self.iotval2:#x}")
        if not self.queued:
            lines.append("  (not queued: the fault queue was full, off, or the context has DTF=1)")
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "device_id": self.device_id,
            "iova": hex(self.iova),
            "access": self.access.value,
            "cause": int(self.cause),
            "cause_name": self.cause.describe,
            "reason": self.reason,
            "time": self.time,
            "queued": self.queued,
            "directory": [
                {"level": s.level, "address": hex(s.address), "value": hex(s.value), "decision": s.decision}
                for s in self.directory
            ],
            "iotlb_pte": hex(self.iotlb_pte) if self.iotlb_pte is not None else None,
            "walk": walk_to_json(self.walk) if self.walk is not None else None,
            **(
                {"iotval2": hex(self.iotval2), "two_stage": two_stage_to_json(self.two_stage)}
                if self.two_stage is not None
                else {}
            ),
        }

    def to_record(self) -> bytes:
        """The 32-byte fault-queue record of the specification (PV=0, so PID and PRIV are 0)."""
        dw0 = int(self.cause) | int(self.access.ttyp) << FAULT_TTYP_SHIFT | self.device_id << FAULT_DID_SHIFT
        return b"".join(v.to_bytes(8, "little") for v in (dw0, 0, self.iova, self.iotval2))


@dataclass
class FaultQueue:
    """The ring of fault records (host view); ``entries`` slots hold at most ``entries - 1`` records."""

    entries: int = 64
    head: int = 0
    tail: int = 0
    overflow: bool = False
    dropped: int = 0
    _slots: dict[int, IommuFault] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        self.reset(self.entries)

    def reset(self, entries: int) -> None:
        self.entries = entries
        self.head = self.tail = 0
        self.overflow = False
        self._slots = {}  # slot -> record (a dict: a guest may ask for 2^32 slots)

    @property
    def full(self) -> bool:
        return (self.tail + 1) % self.entries == self.head

    def __len__(self) -> int:
        return (self.tail - self.head) % self.entries

    def push(self, record: IommuFault) -> int | None:
        """Queue ``record``; returns its slot, or None when it was discarded (overflow)."""
        if self.overflow:
            self.dropped += 1
            return None
        if self.full:
            self.overflow = True
            self.dropped += 1
            return None
        return self.accept(record)

    def accept(self, record: IommuFault) -> int:
        """Store ``record`` at the tail (the caller has checked ``full`` and ``overflow``)."""
        slot = self.tail
        self._slots[slot] = record
        self.tail = (slot + 1) % self.entries
        return slot

    def pending(self) -> list[IommuFault]:
        """Records between head and tail, oldest first (the queue is unchanged)."""
        found = (self._slots.get((self.head + i) % self.entries) for i in range(len(self)))
        return [r for r in found if r is not None]  # a guest may move fqh past fqt: skip empty slots

    def pop(self) -> IommuFault | None:
        """The oldest record, advancing the head (what software does after reading it)."""
        if self.head == self.tail:
            return None
        record = self._slots.pop(self.head, None)
        self.head = (self.head + 1) % self.entries
        return record

    def drain(self) -> list[IommuFault]:
        out = []
        while (record := self.pop()) is not None:
            out.append(record)
        return out

    def set_head(self, index: int) -> None:
        """Software moved the head (a guest write of fqh): records it skipped are consumed."""
        index %= self.entries
        while self.head != index and self.head != self.tail:
            self._slots.pop(self.head, None)
            self.head = (self.head + 1) % self.entries
        self.head = index
