"""The page-table walker: one implementation of RISC-V page-based translation.

It follows the "Virtual Address Translation Process" of the RISC-V Privileged
Architecture step by step and records each step, so the same walk serves the
CPU's TLB refills, the IOMMU's IO page tables, the ``hwsim mmu walk`` command
and fault reports.  Page tables are real bytes in physical memory, read
through any object with ``read_u64(pa)`` and ``write_u64(pa, value)`` that
raises :class:`~hwsim.errors.BusError` where there is no memory.

Where implementations differ, the specification wins:

* PTE bits 63:54 set  -> page fault (no Svnapot/Svpbmt); QEMU 5.0 ignores them.
* D, A or U set in a non-leaf PTE -> page fault (reserved); Spike agrees,
  QEMU 5.0 ignores them.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..errors import BusError
from ..riscv.priv import Access, Cause, Priv
from .bits import (
    PAGE_SHIFT, PTE_HIGH_RESERVED_MASK, PTE_NONLEAF_RESERVED, PTE_SIZE,
    SV39, PagingMode, Pte, describe_flags, pte_ppn,
)


class AdPolicy(enum.Enum):
    """What the walker does when a leaf's A bit (or D bit, for a store) is clear."""

    UPDATE = "update"  # set the bits in memory, atomically with the walk (Svadu; QEMU does this)
    FAULT = "fault"    # raise a page fault and let software set them (Svade)
    REPORT = "report"  # translate as UPDATE would, but only report the update: memory is not written


class FaultReason(enum.Enum):
    """Why a walk stopped with a fault; each reason has one fixed message."""

    NON_CANONICAL = "virtual address is not canonical (upper bits differ from the top VA bit)"
    PTE_ACCESS = "the PTE's physical address is not in RAM (access fault)"
    INVALID = "PTE is not valid (V=0)"
    WRITE_NO_READ = "reserved PTE encoding: W=1 with R=0"
    RESERVED_BITS = "reserved PTE bits 63:54 are set"
    NONLEAF_RESERVED = "non-leaf PTE has D, A or U set (reserved)"
    NO_LEAF = "no leaf PTE: the last level is a pointer"
    USER_PAGE_FROM_U = "U-mode access to a supervisor page (U=0)"
    USER_PAGE_SUM = "S-mode access to a user page (U=1) with SUM=0"
    USER_PAGE_FETCH = "S-mode instruction fetch from a user page (U=1)"
    NOT_EXECUTABLE = "fetch from a page that is not executable (X=0)"
    NOT_READABLE = "load from a page that is not readable (R=0, and not MXR with X=1)"
    NOT_WRITABLE = "store to a page that is not writable (W=0)"
    MISALIGNED_SUPERPAGE = "misaligned superpage: low PPN fields of the leaf are not zero"
    ACCESSED_CLEAR = "A=0 in the leaf PTE and A/D updates are not done by hardware"
    DIRTY_CLEAR = "store with D=0 in the leaf PTE and A/D updates are not done by hardware"


LEVEL_NAMES = ("4 KiB page", "2 MiB megapage", "1 GiB gigapage", "512 GiB terapage", "256 TiB petapage")


@dataclass(frozen=True, slots=True)
class WalkStep:
    """One PTE read: where, what was there, and what the walker decided."""

    level: int
    pte_addr: int
    pte: int
    decision: str


@dataclass(frozen=True, slots=True)
class Translation:
    """A successful translation (the analogue of QEMU's ``IOMMUTLBEntry``)."""

    va: int
    pa: int
    level: int
    page_size: int
    pte_addr: int
    pte: int  # the leaf PTE as it is after the walk (A/D set if the walk set them)
    global_: bool  # G set in the leaf or any PTE above it

    @property
    def page_va(self) -> int:
        return self.va & ~(self.page_size - 1)

    @property
    def page_pa(self) -> int:
        return self.pa & ~(self.page_size - 1)

    @property
    def flags(self) -> Pte:
        return Pte(self.pte & 0xFF)

    def pa_of(self, va: int) -> int:
        """The physical address of ``va``, which must lie in this translation's page."""
        return self.page_pa | (va & (self.page_size - 1))


@dataclass(frozen=True, slots=True)
class Fault:
    """A walk that stopped: a page fault, or an access fault reading a PTE."""

    reason: FaultReason
    cause: Cause
    level: int | None = None
    pte_addr: int | None = None
    pte: int | None = None

    @property
    def kind(self) -> str:
        return "access fault" if self.reason is FaultReason.PTE_ACCESS else "page fault"

    @property
    def message(self) -> str:
        return self.reason.value


@dataclass(frozen=True, slots=True)
class WalkResult:
    mode: PagingMode
    root: int  # physical address of the root table
    va: int
    access: Access
    priv: Priv
    sum: bool
    mxr: bool
    steps: tuple[WalkStep, ...]
    translation: Translation | None = None
    fault: Fault | None = None
    # (pte_addr, old, new) of an A/D update; ``ad_written`` says if it reached memory.
    ad_update: tuple[int, int, int] | None = None
    ad_written: bool = False

    @property
    def ok(self) -> bool:
        return self.translation is not None


def check_permission(flags: int, access: Access, priv: Priv, sum: bool, mxr: bool) -> FaultReason | None:
    """The permission rule of step 5 for a leaf with ``flags``; None when allowed."""
    if flags & Pte.U:
        if priv is Priv.S:
            if access is Access.FETCH:
                return FaultReason.USER_PAGE_FETCH
            if not sum:
                return FaultReason.USER_PAGE_SUM
    elif priv is Priv.U:
        return FaultReason.USER_PAGE_FROM_U
    if access is Access.LOAD:
        if not (flags & Pte.R or (mxr and flags & Pte.X)):
            return FaultReason.NOT_READABLE
    elif access is Access.STORE:
        if not flags & Pte.W:
            return FaultReason.NOT_WRITABLE
    elif not flags & Pte.X:
        return FaultReason.NOT_EXECUTABLE
    return None


def walk(mem, root: int, va: int, access: Access, priv: Priv = Priv.S, *,
         mode: PagingMode = SV39, sum: bool = False, mxr: bool = False,
         ad: AdPolicy = AdPolicy.UPDATE) -> WalkResult:
    """Translate ``va`` through the page tables whose root table is at physical ``root``.

    ``priv`` is the effective privilege of the access (U or S; M-mode accesses
    are not translated).  Returns a :class:`WalkResult` holding either a
    :class:`Translation` or a :class:`Fault`, and every step taken.
    """
    if priv is Priv.M:
        raise ValueError("M-mode accesses are not translated; walk with priv U or S")
    steps: list[WalkStep] = []

    def stop(reason: FaultReason, level=None, pte_addr=None, pte=None) -> WalkResult:
        cause = access.access_fault_cause if reason is FaultReason.PTE_ACCESS else access.page_fault_cause
        return WalkResult(mode, root, va, access, priv, sum, mxr, tuple(steps),
                          fault=Fault(reason, cause, level, pte_addr, pte))

    if not mode.is_canonical(va):
        return stop(FaultReason.NON_CANONICAL)

    a = root
    global_ = False
    for level in range(mode.levels - 1, -1, -1):
        pte_addr = a + mode.vpn(va, level) * PTE_SIZE
        try:
            pte = mem.read_u64(pte_addr)
        except BusError:
            steps.append(WalkStep(level, pte_addr, 0, "PTE address is outside RAM -> access fault"))
            return stop(FaultReason.PTE_ACCESS, level, pte_addr)
        flags = pte & 0xFF

        def step(decision: str) -> None:
            steps.append(WalkStep(level, pte_addr, pte, decision))

        if not flags & Pte.V:
            step("V=0: not valid -> page fault")
            return stop(FaultReason.INVALID, level, pte_addr, pte)
        if flags & Pte.W and not flags & Pte.R:
            step("R=0 W=1: reserved encoding -> page fault")
            return stop(FaultReason.WRITE_NO_READ, level, pte_addr, pte)
        if pte & PTE_HIGH_RESERVED_MASK:
            step(f"reserved bits 63:54 = {pte >> 54:#x} -> page fault")
            return stop(FaultReason.RESERVED_BITS, level, pte_addr, pte)
        global_ = global_ or bool(flags & Pte.G)

        if not flags & (Pte.R | Pte.X):  # pointer to the next level
            if flags & PTE_NONLEAF_RESERVED:
                step(f"non-leaf with {describe_flags(flags & PTE_NONLEAF_RESERVED).replace('-', '')} set (reserved) -> page fault")
                return stop(FaultReason.NONLEAF_RESERVED, level, pte_addr, pte)
            if level == 0:
                step("pointer at the last level -> page fault")
                return stop(FaultReason.NO_LEAF, level, pte_addr, pte)
            a = pte_ppn(pte) << PAGE_SHIFT
            step(f"pointer to the level-{level - 1} table at {a:#x}")
            continue

        # Step 5: a leaf.  Permissions, then superpage alignment, then A/D.
        size_name = LEVEL_NAMES[level]
        denied = check_permission(flags, access, priv, sum, mxr)
        if denied is not None:
            step(f"leaf ({size_name}) {describe_flags(flags)}: {access.value} denied -> page fault")
            return stop(denied, level, pte_addr, pte)
        ppn = pte_ppn(pte)
        if level and ppn & mode.superpage_ppn_mask(level):
            step(f"leaf ({size_name}) with PPN {ppn:#x} not aligned to its size -> page fault")
            return stop(FaultReason.MISALIGNED_SUPERPAGE, level, pte_addr, pte)

        new = pte | Pte.A | (Pte.D if access is Access.STORE else 0)
        ad_update = None
        written = False
        note = ""
        if new != pte:
            if ad is AdPolicy.FAULT:
                reason = FaultReason.ACCESSED_CLEAR if not flags & Pte.A else FaultReason.DIRTY_CLEAR
                step(f"leaf ({size_name}) {describe_flags(flags)}: {'A' if reason is FaultReason.ACCESSED_CLEAR else 'D'}=0 -> page fault (Svade)")
                return stop(reason, level, pte_addr, pte)
            ad_update = (pte_addr, pte, new)
            set_bits = "A" if new & ~pte & Pte.A else ""
            set_bits += "D" if new & ~pte & Pte.D else ""
            if ad is AdPolicy.UPDATE:
                try:
                    mem.write_u64(pte_addr, new)
                except BusError:  # read-only memory under the table: report like a store to a PTE
                    return stop(FaultReason.PTE_ACCESS, level, pte_addr, pte)
                written = True
                note = f"; set {set_bits}"
            else:
                note = f"; hardware would set {set_bits} (not written)"
        else:
            new = pte
        page_size = mode.page_size(level)
        pa = (ppn << PAGE_SHIFT) | (va & (page_size - 1))
        step(f"leaf ({size_name}) {describe_flags(flags)}: {access.value} allowed{note}")
        tr = Translation(va, pa, level, page_size, pte_addr, new, global_)
        return WalkResult(mode, root, va, access, priv, sum, mxr, tuple(steps), translation=tr,
                          ad_update=ad_update, ad_written=written)
    raise AssertionError("unreachable: the loop returns at level 0")
