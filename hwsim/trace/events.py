"""The catalogue of trace events: one declarative table, in the spirit of QEMU's ``trace-events`` files.

Each line: the event's name, its category, its fields, and the text format.
Everything else (enabling by pattern, the emitters, the output formats) is
derived from this table; an event site in hwsim passes exactly these fields.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

CATALOGUE = """
# name            category  fields                                      text
mmio_read         mmio      device reg offset width value               {device}.{reg} -> {value:#x} ({width} bytes at +{offset:#x})
mmio_write        mmio      device reg offset width value               {device}.{reg} <- {value:#x} ({width} bytes at +{offset:#x})
dma               dma       device iova pa length direction result      {device} {direction} {length} bytes at iova {iova:#x} -> pa {pa:#x}: {result}
dma_bug           dma       device problem iova length where            {device}: {problem} at iova {iova:#x} (+{length:#x}) {where}
protocol_bug      dev       device queue rule where                     {device} queue {queue}: {rule} {where}
iommu_fault       iommu     device_id iova access cause reason          device {device_id} {access} at iova {iova:#x}: {cause}: {reason}
iommu_inval       iommu     command address pscid dropped               {command} addr={address} pscid={pscid}: {dropped} IOTLB entries dropped
iommu_ddt_inval   iommu     device_id dropped                           IODIR.INVAL_DDT device={device_id}: {dropped} cached device contexts dropped
page_walk         mmu       va access result pa levels                  walk {va:#x} ({access}): {result} pa={pa:#x} in {levels} levels
tlb_miss          mmu       va asid                                     TLB miss at {va:#x} (asid {asid})
tlb_flush         mmu       va asid entries                             TLB flush va={va} asid={asid}: {entries} entries
page_fault        mmu       pc va access cause reason                   {access} page fault at va {va:#x}, pc {pc:#x}: {reason}
irq               irq       line device level                           IRQ {line} ({device}) {level}
irq_claim         irq       context line                                PLIC context {context} claims IRQ {line}
irq_complete      irq       context line                                PLIC context {context} completes IRQ {line}
irq_handler       irq       device cookie                               interrupt handler for {device} (cookie {cookie})
host_call         host      name args result duration_ns                {name}({args}) -> {result} [{duration_ns} ns]
trap              trap      code where                                  trap: {code} at {where}
fault             dev       device kind occurrence                      injected fault: {device}.{kind} (occurrence {occurrence})
nvme_complete     dev       device sqid cid status                      {device}: SQ {sqid} CID {cid} completed: {status}
thread            thread    tid event detail now_ns                     thread {tid} {event} {detail} (virtual time {now_ns} ns)
hart              hart      hartid event detail                         hart {hartid} {event} {detail}
"""


@dataclass(frozen=True)
class EventSpec:
    name: str
    category: str
    fields: tuple[str, ...]
    text: str

    def format(self, values: dict) -> str:
        try:
            return self.text.format(**values)
        except (KeyError, ValueError, TypeError):  # a field of another type than the format expects
            return " ".join(f"{k}={v}" for k, v in values.items())


def _parse(text: str) -> dict[str, EventSpec]:
    events = {}
    for line in text.strip().splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        m = re.match(r"(\w+)\s+(\w+)\s+((?:\w+ )*\w+)\s{2,}(.*)$", line)
        if m is None:
            raise ValueError(f"bad trace catalogue line: {line!r}")
        name, category, fields, fmt = m.groups()
        events[name] = EventSpec(name, category, tuple(fields.split()), fmt.strip())
    return events


EVENTS: dict[str, EventSpec] = _parse(CATALOGUE)
CATEGORIES = sorted({e.category for e in EVENTS.values()})

__all__ = ["CATEGORIES", "CATALOGUE", "EVENTS", "EventSpec"]
