"""What the CPU did when it stopped: the stop reason and, for memory faults, a precise report."""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..mmu.report import format_walk, walk_to_json
from ..mmu.walker import WalkResult
from ..riscv.disasm import Insn
from ..riscv.priv import Access, Cause, Priv


class StopReason(enum.Enum):
    EXIT = "reached the exit address"
    ECALL = "environment call (ecall)"
    BREAKPOINT = "breakpoint (ebreak)"
    FAULT = "memory fault"
    EXCEPTION = "CPU exception"
    LIMIT = "instruction or time budget used up"
    STOPPED = "stopped by the host"
    WATCH = "an access to a watched page (carried out; Machine.run goes on)"
    DEBUG = "stopped for the debugger (Machine.run serves it and goes on)"


@dataclass(frozen=True, slots=True)
class WatchHit:
    """One guest load or store that touched a watched physical page (see ``Machine.watch_page``).

    The handler sees it before the access is made; ``value`` is what a store writes.
    """

    pc: int
    va: int
    pa: int
    size: int
    access: Access
    priv: Priv
    value: int | None = None


@dataclass(frozen=True)
class CpuFault:
    """A memory access the CPU could not make: where, what, why, and the walk that said so."""

    pc: int
    va: int
    access: Access
    priv: Priv
    cause: Cause
    kind: str  # "page fault" or "access fault"
    message: str
    walk: WalkResult | None  # the page-table walk that explains the fault (None: no translation)
    insn: Insn | None  # the faulting instruction, when it could be fetched
    tlb_entry_pte: int | None = None  # set when a cached TLB entry decided the fault
    access_va: int | None = None  # the whole access, decoded from the instruction: its first byte ...
    access_size: int | None = None  # ... and its width (None: not decoded)

    def format(self) -> str:
        insn = self.insn.text if self.insn is not None else "(instruction could not be fetched)"
        lines = [
            f"{self.access.value} {self.kind} (cause {int(self.cause)}) at va {self.va:#x}",
            f"  pc {self.pc:#x}: {insn}   [{self.priv.name}-mode]",
            f"  reason: {self.message}",
        ]
        if self.tlb_entry_pte is not None:
            lines.append(
                f"  decided by a cached TLB entry (leaf PTE {self.tlb_entry_pte:#018x}); the page tables now read:"
            )
        if self.walk is not None:
            lines.extend("  " + line for line in format_walk(self.walk))
        return "\n".join(lines)

    def to_json(self) -> dict:
        return {
            "pc": hex(self.pc),
            "va": hex(self.va),
            "access": self.access.value,
            "priv": self.priv.name,
            "cause": int(self.cause),
            "kind": self.kind,
            "message": self.message,
            "insn": self.insn.text if self.insn is not None else None,
            "tlb_entry_pte": hex(self.tlb_entry_pte) if self.tlb_entry_pte is not None else None,
            "walk": walk_to_json(self.walk) if self.walk is not None else None,
        }


@dataclass(frozen=True)
class RunResult:
    reason: StopReason
    pc: int
    fault: CpuFault | None = None
    cause: Cause | None = None  # for EXCEPTION, BREAKPOINT and ECALL
    insn: Insn | None = None  # the instruction at ``pc``, for EXCEPTION and BREAKPOINT

    @property
    def ok(self) -> bool:
        return self.reason is StopReason.EXIT

    def describe(self) -> str:
        if self.fault is not None:
            return self.fault.format()
        extra = f" (cause {int(self.cause)}: {self.cause.name.lower()})" if self.cause is not None else ""
        where = f": {self.insn.text}" if self.insn is not None else ""
        return f"{self.reason.value}{extra} at pc {self.pc:#x}{where}"
