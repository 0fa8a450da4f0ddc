"""The page-table walker: one implementation of RISC-V page-based translation.

It follows the "Virtual Address Translation Process" of the RISC-V Privileged
Architecture step by step and records each step, so the same walk serves the
CPU's TLB refills, the IOMMU's IO page tables, the ``hwsim mmu walk`` command
and fault reports.  Page tables are real bytes in physical memory, read
through any object with ``read_u64(pa)`` and ``write_u64(pa, value)`` that
raises :class:`~hwsim.errors.BusError` where there is no memory.

Where implementations differ, the specification wins:

* PTE bits 63:54 set  -> page fault (no Svnapot/Svpbmt); QEMU 5.0 ignores them.
  With ``svnapot=True`` bit 63 (N) may be set in a level-0 leaf whose PPN
  bits 3:0 are 1000 (a 64 KiB NAPOT page); with ``svpbmt=True`` bits 62:61
  (PBMT) may hold 0 (PMA), 1 (NC) or 2 (IO) in a leaf.  Any other use (N or
  PBMT in a pointer, PBMT=3, another NAPOT size, N above level 0) is a
  reserved encoding: a page fault at step 3, reported as RESERVED_BITS with
  its own decision text.  Only the teaching commands turn these on; the CPU
  and the IOMMU walk without them (Unicorn does not implement them).
* D, A or U set in a non-leaf PTE -> page fault (reserved); Spike agrees,
  QEMU 5.0 ignores them.

The same walk serves the G-stage of two-stage translation (``mode`` one of
the x4 modes in ``bits.HGATP_MODES``: a zero-extended guest-physical address,
a top VPN field 2 bits wider, called with ``priv=U``); ``twostage.py`` nests
it under the VS-stage and turns its page faults into guest-page faults.

Two entry points share these rules: :func:`walk` records every step (what
fault reports, traces and the teaching commands show), and :func:`walk_quick`
is its hot-path twin for the CPU's TLB refills when nothing is traced: it
reads PTE words straight from a RAM region's memoryview, builds no step
records, and answers only what it can answer exactly (a translation, or "V=0
here"); for anything else it returns None and the caller walks with
:func:`walk`, which then finds the same thing and says why.
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from typing import Protocol

from ..errors import BusError
from ..riscv.priv import Access, Cause, Priv
from .bits import (
    PAGE_SHIFT,
    PTE_HIGH_RESERVED_MASK,
    PTE_N,
    PTE_PBMT_MASK,
    PTE_PPN_MASK,
    PTE_PPN_SHIFT,
    PTE_SIZE,
    SV39,
    PagingMode,
    Pte,
    describe_flags,
)

NAPOT_SIZE = 1 << 16

# Plain-int flag bits for the hot path (IntFlag arithmetic costs ~25x more).
_V, _R, _W, _X, _U, _G, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.G, Pte.A, Pte.D))
_RX = _R | _X
_NONLEAF_RESERVED = _D | _A | _U
# Enum members as globals for the hot path (``Priv.S`` is a descriptor lookup, ~50 ns in Python 3.11).
_PRIV_U, _PRIV_S, _PRIV_M = Priv.U, Priv.S, Priv.M
_FETCH, _LOAD, _STORE = Access.FETCH, Access.LOAD, Access.STORE


class PteReader(Protocol):
    """Physical memory as page tables are read: ``read_u64`` raises BusError where there is no memory."""

    def read_u64(self, pa: int) -> int: ...


class PteMemory(PteReader, Protocol):
    """Physical memory as the walker uses it: it also writes A/D bits back (AdPolicy.UPDATE)."""

    def write_u64(self, pa: int, value: int) -> None: ...


class AdPolicy(enum.Enum):
    """What the walker does when a leaf's A bit (or D bit, for a store) is clear."""

    UPDATE = "update"  # set the bits in memory, atomically with the walk (Svadu; QEMU does this)
    FAULT = "fault"  # raise a page fault and let software set them (Svade)
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
NAPOT_NAME = "64 KiB NAPOT page"
_PBMT_NAMES = ("PMA", "NC", "IO", "reserved")


class WalkStep:
    """One PTE read: where, what was there, and what the walker decided.

    The decision is kept as a short code plus its argument and put into words
    only when asked (``decision``), so walks on the CPU's hot path stay cheap.
    """

    __slots__ = ("level", "pte_addr", "pte", "code", "arg")

    def __init__(self, level: int, pte_addr: int, pte: int, code: str, arg: int | str | None = None) -> None:
        self.level, self.pte_addr, self.pte, self.code, self.arg = level, pte_addr, pte, code, arg

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WalkStep) and (self.level, self.pte_addr, self.pte, self.code, self.arg) == (
            other.level,
            other.pte_addr,
            other.pte,
            other.code,
            other.arg,
        )

    def __repr__(self) -> str:
        return f"WalkStep(level={self.level}, pte_addr={self.pte_addr:#x}, pte={self.pte:#x}, {self.decision!r})"

    @property
    def decision(self) -> str:
        return self.describe()

    def describe(self, *, flags: bool = True) -> str:
        """The decision in words; ``flags=False`` leaves out a leaf's ``DAGUXWRV`` (for lines that show them)."""
        code, arg, pte = self.code, self.arg, self.pte
        size = NAPOT_NAME if pte >> 63 and self.level == 0 and code != "reserved_bits" else LEVEL_NAMES[self.level]
        leaf = f"leaf ({size})" + (f" {describe_flags(pte)}" if flags else "")
        if code == "pointer":
            return f"pointer to the level-{self.level - 1} table at {arg:#x}"
        if code == "leaf":
            return f"{leaf}: {arg}"
        return {
            "pte_access": "PTE address is outside RAM -> access fault",
            "invalid": "V=0: not valid -> page fault",
            "write_no_read": "R=0 W=1: reserved encoding -> page fault",
            "reserved_bits": f"reserved bits 63:54 = {pte >> 54:#x} -> page fault",
            "nonleaf_reserved": f"non-leaf with {describe_flags(pte & _NONLEAF_RESERVED).replace('-', '')} set "
            f"(reserved) -> page fault",
            "no_leaf": "pointer at the last level -> page fault",
            "denied": f"{leaf}: {arg} denied -> page fault",
            "misaligned": f"{leaf} with PPN {(pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT:#x} not aligned to its size "
            f"-> page fault",
            "ad_fault": f"{leaf}: {arg}=0 -> page fault (Svade)",
            "pbmt_reserved": "leaf with PBMT=3: a reserved encoding (Svpbmt) -> page fault",
            "napot_reserved": f"leaf with N=1 at level {self.level}, PPN bits 3:0 = {pte_ppn_low(pte):#06b}: "
            f"a reserved NAPOT encoding (only 64 KiB at level 0, bits 3:0 = 0b1000) -> page fault",
        }[code]


def pte_ppn_low(pte: int) -> int:
    return (pte >> PTE_PPN_SHIFT) & 0xF


def pbmt_name(pte: int) -> str:
    """The Svpbmt memory type of a PTE: PMA, NC, IO (or reserved)."""
    return _PBMT_NAMES[(pte >> 61) & 3]


class Translation:
    """A successful translation (the analogue of QEMU's ``IOMMUTLBEntry``); treat as immutable."""

    __slots__ = ("va", "pa", "level", "page_size", "pte_addr", "pte", "global_")

    def __init__(self, va: int, pa: int, level: int, page_size: int, pte_addr: int, pte: int, global_: bool):
        self.va, self.pa, self.level, self.page_size = va, pa, level, page_size
        self.pte_addr, self.pte, self.global_ = pte_addr, pte, global_

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Translation) and all(getattr(self, f) == getattr(other, f) for f in self.__slots__)

    def __repr__(self) -> str:
        return (
            f"Translation(va={self.va:#x}, pa={self.pa:#x}, level={self.level}, pte_addr={self.pte_addr:#x}, "
            f"pte={self.pte:#x}, global_={self.global_})"
        )

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
        return (self.pa & ~(self.page_size - 1)) | (va & (self.page_size - 1))


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


@dataclass(slots=True)
class WalkResult:
    """A walk and its outcome: exactly one of ``translation`` and ``fault`` is set."""

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
    if flags & _U:
        if priv is _PRIV_S:
            if access is _FETCH:
                return FaultReason.USER_PAGE_FETCH
            if not sum:
                return FaultReason.USER_PAGE_SUM
    elif priv is _PRIV_U:
        return FaultReason.USER_PAGE_FROM_U
    if access is _LOAD:
        if not (flags & _R or (mxr and flags & _X)):
            return FaultReason.NOT_READABLE
    elif access is _STORE:
        if not flags & _W:
            return FaultReason.NOT_WRITABLE
    elif not flags & _X:
        return FaultReason.NOT_EXECUTABLE
    return None


# The leading fields of a WalkResult, in order: mode, root, va, access, priv, sum, mxr.
_WalkArgs = tuple[PagingMode, int, int, Access, Priv, bool, bool]


def _fault(
    args: _WalkArgs,
    steps: list[WalkStep],
    reason: FaultReason,
    level: int | None,
    pte_addr: int | None,
    pte: int | None,
) -> WalkResult:
    access = args[3]
    cause = access.access_fault_cause if reason is FaultReason.PTE_ACCESS else access.page_fault_cause
    return WalkResult(*args, tuple(steps), fault=Fault(reason, cause, level, pte_addr, pte))


def walk(
    mem: PteMemory,
    root: int,
    va: int,
    access: Access,
    priv: Priv = Priv.S,
    *,
    mode: PagingMode = SV39,
    sum: bool = False,
    mxr: bool = False,
    ad: AdPolicy = AdPolicy.UPDATE,
    svnapot: bool = False,
    svpbmt: bool = False,
) -> WalkResult:
    """Translate ``va`` through the page tables whose root table is at physical ``root``.

    ``priv`` is the effective privilege of the access (U or S; M-mode accesses
    are not translated).  Returns a :class:`WalkResult` holding either a
    :class:`Translation` or a :class:`Fault`, and every step taken.
    """
    if priv is _PRIV_M:
        raise ValueError("M-mode accesses are not translated; walk with priv U or S")
    steps: list[WalkStep] = []
    args: _WalkArgs = (mode, root, va, access, priv, sum, mxr)

    def stop(
        reason: FaultReason, level: int | None = None, pte_addr: int | None = None, pte: int | None = None
    ) -> WalkResult:
        return _fault(args, steps, reason, level, pte_addr, pte)

    if mode.top_extra_bits:  # a G-stage (x4) mode: the guest-physical address is zero-extended
        if va >> mode.va_bits:  # twostage.py reports this as GuestReason.GPA_TOO_WIDE
            return stop(FaultReason.NON_CANONICAL)
    else:
        top = va >> (mode.va_bits - 1)
        if top and top != (1 << (65 - mode.va_bits)) - 1:
            return stop(FaultReason.NON_CANONICAL)

    read = mem.read_u64
    vpn_mask = (1 << mode.vpn_bits) - 1
    top_level = mode.levels - 1
    top_mask = (1 << (mode.vpn_bits + mode.top_extra_bits)) - 1
    extensions = (PTE_N if svnapot else 0) | (PTE_PBMT_MASK if svpbmt else 0)
    napot = False
    a = root
    global_ = False
    for level in range(top_level, -1, -1):
        shift = PAGE_SHIFT + mode.vpn_bits * level
        mask = vpn_mask if level < top_level else top_mask  # the top VPN field is wider in the x4 modes
        pte_addr = a + ((va >> shift) & mask) * PTE_SIZE
        try:
            pte = read(pte_addr)
        except BusError:
            steps.append(WalkStep(level, pte_addr, 0, "pte_access"))
            return stop(FaultReason.PTE_ACCESS, level, pte_addr)
        if not pte & _V:
            steps.append(WalkStep(level, pte_addr, pte, "invalid"))
            return stop(FaultReason.INVALID, level, pte_addr, pte)
        if pte & _W and not pte & _R:
            steps.append(WalkStep(level, pte_addr, pte, "write_no_read"))
            return stop(FaultReason.WRITE_NO_READ, level, pte_addr, pte)
        if pte & PTE_HIGH_RESERVED_MASK:
            if pte & PTE_HIGH_RESERVED_MASK & ~extensions or not pte & _RX:  # N and PBMT only in a leaf
                steps.append(WalkStep(level, pte_addr, pte, "reserved_bits"))
                return stop(FaultReason.RESERVED_BITS, level, pte_addr, pte)
            if pte & PTE_PBMT_MASK == PTE_PBMT_MASK:
                steps.append(WalkStep(level, pte_addr, pte, "pbmt_reserved"))
                return stop(FaultReason.RESERVED_BITS, level, pte_addr, pte)
            if pte & PTE_N:
                if level or (pte >> PTE_PPN_SHIFT) & 0xF != 0x8:
                    steps.append(WalkStep(level, pte_addr, pte, "napot_reserved"))
                    return stop(FaultReason.RESERVED_BITS, level, pte_addr, pte)
                napot = True
        if pte & _G:
            global_ = True

        if not pte & _RX:  # pointer to the next level
            if pte & _NONLEAF_RESERVED:
                steps.append(WalkStep(level, pte_addr, pte, "nonleaf_reserved"))
                return stop(FaultReason.NONLEAF_RESERVED, level, pte_addr, pte)
            if level == 0:
                steps.append(WalkStep(level, pte_addr, pte, "no_leaf"))
                return stop(FaultReason.NO_LEAF, level, pte_addr, pte)
            a = ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << PAGE_SHIFT
            steps.append(WalkStep(level, pte_addr, pte, "pointer", a))
            continue

        # Step 5: a leaf.  Permissions, then superpage alignment, then A/D.
        denied = check_permission(pte, access, priv, sum, mxr)
        if denied is not None:
            steps.append(WalkStep(level, pte_addr, pte, "denied", access.value))
            return stop(denied, level, pte_addr, pte)
        ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT
        if level and ppn & ((1 << (mode.vpn_bits * level)) - 1):  # lower PPN fields are vpn_bits wide
            steps.append(WalkStep(level, pte_addr, pte, "misaligned"))
            return stop(FaultReason.MISALIGNED_SUPERPAGE, level, pte_addr, pte)

        new = pte | _A | (_D if access is _STORE else 0)
        ad_update = None
        written = False
        note = f"{access.value} allowed"
        if new != pte:
            if ad is AdPolicy.FAULT:
                bit = "A" if not pte & _A else "D"
                steps.append(WalkStep(level, pte_addr, pte, "ad_fault", bit))
                return stop(FaultReason.ACCESSED_CLEAR if bit == "A" else FaultReason.DIRTY_CLEAR, level, pte_addr, pte)
            ad_update = (pte_addr, pte, new)
            set_bits = ("A" if new & ~pte & _A else "") + ("D" if new & ~pte & _D else "")
            if ad is AdPolicy.UPDATE:
                try:
                    mem.write_u64(pte_addr, new)
                except BusError:  # read-only memory under the table: report like a store to a PTE
                    return stop(FaultReason.PTE_ACCESS, level, pte_addr, pte)
                written = True
                note += f"; set {set_bits}"
            else:
                note += f"; hardware would set {set_bits} (not written)"
        page_size = 1 << shift
        if napot:  # a 64 KiB page: PPN bits 3:0 come from the VA (Svnapot)
            page_size = NAPOT_SIZE
            ppn &= ~0xF
        steps.append(WalkStep(level, pte_addr, pte, "leaf", note))
        tr = Translation(va, (ppn << PAGE_SHIFT) | (va & (page_size - 1)), level, page_size, pte_addr, new, global_)
        return WalkResult(
            mode,
            root,
            va,
            access,
            priv,
            sum,
            mxr,
            tuple(steps),
            translation=tr,
            ad_update=ad_update,
            ad_written=written,
        )
    raise AssertionError("unreachable: the loop returns at level 0")


class RamWords:
    """One RAM region's bytes as 64-bit words, for :func:`walk_quick`: ``words[(pa - base) >> 3]``.

    PTEs are little-endian; on a big-endian host there is no such view (``for_region`` returns None).
    """

    __slots__ = ("base", "limit", "words")

    def __init__(self, base: int, view: memoryview) -> None:
        self.base = base
        self.words = view.cast("B").cast("Q")
        self.limit = len(self.words) * 8  # bytes covered

    @classmethod
    def for_region(cls, base: int, view: memoryview) -> RamWords | None:
        if sys.byteorder != "little" or len(view) % 8 or base % 8:
            return None
        return cls(base, view)


# Per paging mode: (top VA bit, all-ones top value, VPN mask, ((level, shift), ...) root first, superpage PPN masks).
_Geometry = tuple[int, int, int, tuple[tuple[int, int], ...], tuple[int, ...]]
_GEOMETRY: dict[PagingMode, _Geometry] = {}


def _geometry(mode: PagingMode) -> _Geometry:
    geometry = _GEOMETRY.get(mode)
    if geometry is None:
        levels = tuple((level, PAGE_SHIFT + mode.vpn_bits * level) for level in range(mode.levels - 1, -1, -1))
        aligns = tuple((1 << (mode.vpn_bits * level)) - 1 for level in range(mode.levels))
        geometry = (mode.va_bits - 1, (1 << (65 - mode.va_bits)) - 1, (1 << mode.vpn_bits) - 1, levels, aligns)
        _GEOMETRY[mode] = geometry
    return geometry


# What walk_quick returns when the walk would stop on an invalid PTE (the pagers' fault).
QUICK_INVALID = FaultReason.INVALID


def walk_quick(
    ram: RamWords,
    root: int,
    va: int,
    access: Access,
    priv: Priv,
    sum: bool,
    mxr: bool,
    mode: PagingMode,
    ad: AdPolicy,
) -> Translation | FaultReason | None:
    """:func:`walk` without its record, for the TLB-refill hot path.

    Returns the :class:`Translation` that ``walk(...)`` would return (with the same A/D update
    done in memory, or reported for ``AdPolicy.REPORT``), :data:`QUICK_INVALID` when ``walk``
    would stop with ``FaultReason.INVALID`` (nothing written), or None when ``walk`` would fault
    for another reason or a PTE lies outside ``ram`` (nothing written: walk again with
    :func:`walk` to learn why).  The checks run in ``walk``'s order, so the answers agree.
    """
    if priv is _PRIV_M or mode.top_extra_bits:  # G-stage modes: walk with walk()
        return None
    top_bit, top_ones, vpn_mask, levels, aligns = _GEOMETRY.get(mode) or _geometry(mode)
    top = va >> top_bit
    if top and top != top_ones:
        return None
    words, base, limit = ram.words, ram.base, ram.limit
    a = root
    global_ = 0
    for level, shift in levels:
        pte_addr = a + (((va >> shift) & vpn_mask) << 3)
        offset = pte_addr - base
        if offset < 0 or offset >= limit:
            return None
        pte = words[offset >> 3]
        if not pte & _V:
            return QUICK_INVALID
        if (pte & _W and not pte & _R) or pte & PTE_HIGH_RESERVED_MASK:
            return None
        global_ |= pte & _G
        if not pte & _RX:  # pointer to the next level
            if pte & _NONLEAF_RESERVED or not level:
                return None
            a = ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << PAGE_SHIFT
            continue
        if check_permission(pte, access, priv, sum, mxr) is not None:
            return None
        ppn = (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT
        if ppn & aligns[level]:
            return None
        new = pte | _A | (_D if access is _STORE else 0)
        if new != pte:
            if ad is _AD_FAULT:
                return None
            if ad is _AD_UPDATE:
                words[offset >> 3] = new
        page_size = 1 << shift
        return Translation(
            va, (ppn << PAGE_SHIFT) | (va & (page_size - 1)), level, page_size, pte_addr, new, global_ != 0
        )
    raise AssertionError("unreachable: the loop returns at level 0")


_AD_FAULT, _AD_UPDATE = AdPolicy.FAULT, AdPolicy.UPDATE
