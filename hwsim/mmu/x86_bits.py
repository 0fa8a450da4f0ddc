"""Bit layouts of x86-64 paging (4-level and 5-level): CR3, paging-structure entries, #PF error codes.

Only layouts live here (positions, widths, which level may map a page); the walk that
interprets them is ``x86_walk.py``.  Source: Intel SDM vol. 3A, chapter 4, "4-Level Paging
and 5-Level Paging" (tables "Format of a PML5 Entry" ... "Format of a Page-Table Entry that
Maps a 4-KByte Page") and "Page-Fault Exceptions".

A paging-structure entry (M is MAXPHYADDR; PS only in a PDPTE or PDE, PAT at bit 12 only
in a PDPTE/PDE that maps a page, at bit 7 in a PTE)::

    63  62  59 58   52 51   M M-1            12 11  9 8 7  6 5 4   3   2   1  0
   +--+------+-------+------+------------------+-----+-+--+-+-+---+---+---+---+-+
   |XD|  PK  |ignored| rsvd |     address      | ign |G|PS|D|A|PCD|PWT|U/S|R/W|P|
   +--+------+-------+------+------------------+-----+-+--+-+-+---+---+---+---+-+

CR3 (CR4.PCIDE=0): bits M-1:12 the root table's address, bit 4 PCD, bit 3 PWT.

Levels are numbered from the leaf up, as in hwsim's Sv39 walker: 0 is the page table (PTE),
1 the page directory (PDE), 2 the PDPT (PDPTE), 3 the PML4, 4 the PML5.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PAGE_SHIFT = 12
ENTRY_SIZE = 8
INDEX_BITS = 9


class Entry(enum.IntFlag):
    """The flag bits of a paging-structure entry (bits 8:0, and XD at 63)."""

    P = 1 << 0  # present
    RW = 1 << 1  # read/write: 0 = writes not allowed from this entry's region
    US = 1 << 2  # user/supervisor: 0 = user-mode accesses not allowed
    PWT = 1 << 3  # page-level write-through (memory type, with PCD and PAT)
    PCD = 1 << 4  # page-level cache disable
    A = 1 << 5  # accessed
    D = 1 << 6  # dirty (an entry that maps a page)
    PS = 1 << 7  # page size: a PDPTE or PDE that maps a 1 GiB or 2 MiB page (PAT in a PTE)
    G = 1 << 8  # global (an entry that maps a page; with CR4.PGE)
    XD = 1 << 63  # execute-disable (with IA32_EFER.NXE=1; reserved when NXE=0)


PTE_PAT = 1 << 7  # in a PTE, bit 7 is PAT
LARGE_PAT = 1 << 12  # in a PDPTE/PDE that maps a page, bit 12 is PAT
PK_SHIFT = 59  # protection key, bits 62:59 of an entry that maps a page (with CR4.PKE)
PK_MASK = 0xF << PK_SHIFT

# CR3 with CR4.PCIDE=0
CR3_PWT = 1 << 3
CR3_PCD = 1 << 4


def address_mask(maxphyaddr: int, low: int = PAGE_SHIFT) -> int:
    """Bits ``maxphyaddr-1 .. low``: where an entry holds a physical address."""
    return ((1 << maxphyaddr) - 1) & ~((1 << low) - 1)


def reserved_high_mask(maxphyaddr: int) -> int:
    """Bits 51:MAXPHYADDR, reserved in every entry."""
    return ((1 << 52) - 1) & ~((1 << maxphyaddr) - 1)


@dataclass(frozen=True, slots=True)
class Level:
    """One level of the hierarchy, as data: its names, whether PS may map a page here, its reserved bits."""

    number: int  # 0 = PT ... 4 = PML5
    table: str  # the table's name ("PML4", "page directory")
    entry: str  # an entry's name ("PML4E", "PDE")
    va_field: str  # the VA field that indexes it ("PML4", "PD")
    page: str | None  # the page an entry with PS=1 (or any PTE) maps: "1 GiB page", or None (PS reserved)
    # Reserved bits of an entry that maps a page, below the address (1 GiB: 29:13; 2 MiB: 20:13).
    large_reserved: int = 0

    @property
    def shift(self) -> int:
        return PAGE_SHIFT + INDEX_BITS * self.number

    @property
    def page_size(self) -> int:
        return 1 << self.shift


LEVELS = (
    Level(0, "page table", "PTE", "PT", "4 KiB page"),
    Level(1, "page directory", "PDE", "PD", "2 MiB page", large_reserved=((1 << 21) - 1) & ~((1 << 13) - 1)),
    Level(2, "page-directory-pointer table", "PDPTE", "PDPT", "1 GiB page", ((1 << 30) - 1) & ~((1 << 13) - 1)),
    Level(3, "PML4 table", "PML4E", "PML4", None),
    Level(4, "PML5 table", "PML5E", "PML5", None),
)


@dataclass(frozen=True, slots=True)
class X86Format:
    """A paging mode as data: ``levels`` tables of 512 8-byte entries, ``va_bits`` canonical bits."""

    name: str
    levels: int  # 4 (CR4.LA57=0) or 5 (LA57=1)
    title: str

    @property
    def va_bits(self) -> int:
        return PAGE_SHIFT + INDEX_BITS * self.levels

    @property
    def root(self) -> Level:
        return LEVELS[self.levels - 1]

    def index(self, va: int, level: int) -> int:
        return (va >> (PAGE_SHIFT + INDEX_BITS * level)) & ((1 << INDEX_BITS) - 1)

    def is_canonical(self, va: int) -> bool:
        top = va >> (self.va_bits - 1)
        return top == 0 or top == (1 << (65 - self.va_bits)) - 1

    def canonical(self, va: int) -> int:
        va &= (1 << self.va_bits) - 1
        if va >> (self.va_bits - 1):
            va |= ((1 << 64) - 1) ^ ((1 << self.va_bits) - 1)
        return va


X86_64 = X86Format("x86-64", 4, "x86-64 4-level paging")
X86_64_5LEVEL = X86Format("x86-64-5level", 5, "x86-64 5-level paging (CR4.LA57=1)")


class PfError(enum.IntFlag):
    """The page-fault error code's bits (SDM "Page-Fault Error Code")."""

    P = 1 << 0  # 0: a not-present entry; 1: a protection violation (or a reserved bit)
    W = 1 << 1  # the access was a write
    U = 1 << 2  # the access was a user-mode access (CPL=3)
    RSVD = 1 << 3  # a reserved bit was set in some paging-structure entry
    I = 1 << 4  # noqa: E741 - the SDM's name; an instruction fetch (when NXE=1 or SMEP=1)
    PK = 1 << 5  # a protection-key violation


def describe_error_code(code: int) -> str:
    """``P=1 W/R=1 U/S=0 RSVD=0 I/D=0 PK=0``."""
    names = (
        ("P", PfError.P),
        ("W/R", PfError.W),
        ("U/S", PfError.U),
        ("RSVD", PfError.RSVD),
        ("I/D", PfError.I),
        ("PK", PfError.PK),
    )
    return " ".join(f"{name}={int(bool(code & bit))}" for name, bit in names)


# How an entry's fields are printed, in order: (name, bit position, width).
ENTRY_FIELDS = (
    ("P", 0, 1),
    ("R/W", 1, 1),
    ("U/S", 2, 1),
    ("PWT", 3, 1),
    ("PCD", 4, 1),
    ("A", 5, 1),
)
LEAF_FIELDS = (("D", 6, 1), ("G", 8, 1))
HIGH_FIELDS = (("PK", PK_SHIFT, 4), ("XD", 63, 1))
