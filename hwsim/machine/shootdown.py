"""TLB shootdowns: a mapping change made by a running hart reaches every other hart before it returns.

::

    hart i runs (an ecall serving memory.protect / grow / map / unmap / discard, a handle move, mmap ...)
      the host changes PTEs  ->  AddressSpace.on_change  ->  Machine._mapping_changed
      Shootdowns.change(i, range):
        local     sfence.vma on hart i (its model TLB and Unicorn's), as the changing kernel does
        remote    for every other hart j:  an IPI (counted: j.shootdown_ipis)
                                           j's sfence.vma of the range (timed: j.shootdown_ns), its ack
      returns when every hart has fenced: after it no hart holds a translation of the old PTEs

    no hart running (the host changes a space between runs): every hart's TLBs are flushed, no IPI

Every hart shares one :class:`Shootdowns` (``Machine.add_hart``).  ``Machine.run`` marks the hart that
runs (``running``), so a change made from inside its run (its ecall handler, its pager) is that
hart's.  The other harts are stopped between two of their turns (the harts interleave on one host
thread: ``harts.py``, ``runtime/threads.py``), so the fence their IPI handler would execute is carried
out at once, on their TLBs, and timed: the acknowledgement a kernel waits for.  A change made with
one hart is a local fence alone (no shootdown is counted).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from ..mmu.bits import PAGE_SIZE
from ..trace import TRACE

if TYPE_CHECKING:
    from .machine import Machine

FULL_FLUSH_PAGES = 64  # a range of more pages is flushed whole (every ASID), as Linux's tlb_single_page_flush_ceiling


class Shootdowns:
    """The harts of one machine and which of them runs now (see the module docstring)."""

    __slots__ = ("harts", "running")

    def __init__(self, harts: list[Machine]) -> None:
        self.harts = harts  # the machine's list (add_hart appends to it)
        self.running: Machine | None = None  # the hart inside Machine.run now

    def change(self, va: int | None, size: int) -> None:
        """PTEs of ``[va, va + size)`` (None: anywhere) changed: fence every hart that may cache them."""
        initiator = self.running
        if initiator is None or len(self.harts) == 1:
            for hart in self.harts:
                fence(hart, va, size)
            return
        fence(initiator, va, size)
        initiator.shootdowns += 1
        trace = TRACE.hart  # (None: not traced)
        what = "all" if va is None else f"{va:#x}+{size:#x}"
        for hart in self.harts:
            if hart is initiator:
                continue
            hart.shootdown_ipis += 1
            start = time.perf_counter_ns()
            fence(hart, va, size)
            hart.shootdown_ns += time.perf_counter_ns() - start
            if trace is not None:
                trace(
                    hartid=hart.hartid,
                    event="fences",
                    detail=f"{what} (a shootdown IPI from hart {initiator.hartid})",
                )
        if trace is not None:
            trace(hartid=initiator.hartid, event="shootdown", detail=f"{what}: {len(self.harts) - 1} harts fenced")


def fence(hart: Machine, va: int | None, size: int) -> None:
    """``sfence.vma`` of ``[va, va + size)`` in every ASID on ``hart``: its model TLB page by page (the
    whole TLB past :data:`FULL_FLUSH_PAGES` or for None), then Unicorn's (the same pages where it can
    drop pages one by one: ``Machine.flush_cpu_tlb_range``)."""
    if va is None or size > FULL_FLUSH_PAGES * PAGE_SIZE:
        hart.tlb.flush()
        hart.flush_cpu_tlb()
        return
    for off in range(0, size, PAGE_SIZE):
        hart.tlb.flush(va + off)
    hart.flush_cpu_tlb_range(va, size)
