"""Bit layouts of RISC-V page-based virtual memory: PTE, satp, virtual addresses.

Only layouts live here (positions, widths, encodings); the walk logic that
interprets them is in ``walker.py``.  Sources: RISC-V Privileged Architecture,
sections "Supervisor Address Translation and Protection (satp)" and
"Sv39/Sv48: Page-Based 39/48-bit Virtual-Memory System".

PTE (Sv39 and Sv48 share the layout; only the PPN split differs)::

    63  62 61  60    54 53                10 9   8 7 6 5 4 3 2 1 0
   +---+------+--------+--------------------+-----+-+-+-+-+-+-+-+-+
   | N | PBMT |reserved|        PPN         | RSW |D|A|G|U|X|W|R|V|
   +---+------+--------+--------------------+-----+-+-+-+-+-+-+-+-+

satp (RV64)::

    63    60 59          44 43                               0
   +--------+--------------+----------------------------------+
   |  MODE  |     ASID     |               PPN                |
   +--------+--------------+----------------------------------+
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT
PAGE_MASK = PAGE_SIZE - 1
PTE_SIZE = 8


class Pte(enum.IntFlag):
    """The flag bits 7:0 of a page-table entry."""

    V = 1 << 0  # valid
    R = 1 << 1  # readable
    W = 1 << 2  # writable
    X = 1 << 3  # executable
    U = 1 << 4  # accessible to U-mode
    G = 1 << 5  # global mapping (all address spaces)
    A = 1 << 6  # accessed
    D = 1 << 7  # dirty


PTE_FLAGS_MASK = 0xFF
PTE_RSW_SHIFT = 8  # bits 9:8, reserved for supervisor software
PTE_RSW_MASK = 0x3 << PTE_RSW_SHIFT
PTE_PPN_SHIFT = 10
PTE_PPN_BITS = 44  # bits 53:10
PTE_PPN_MASK = ((1 << PTE_PPN_BITS) - 1) << PTE_PPN_SHIFT
# Bits 63:54.  Without Svnapot (bit 63, N) and Svpbmt (bits 62:61, PBMT) all
# ten are reserved, and the specification requires a page fault when any is set.
PTE_HIGH_RESERVED_SHIFT = 54
PTE_HIGH_RESERVED_MASK = 0x3FF << PTE_HIGH_RESERVED_SHIFT
PTE_N = 1 << 63
PTE_PBMT_MASK = 0x3 << 61
# In a non-leaf PTE the D, A and U bits are reserved for future standard use.
PTE_NONLEAF_RESERVED = Pte.D | Pte.A | Pte.U

PERM_BITS = Pte.R | Pte.W | Pte.X


def pte_ppn(pte: int) -> int:
    """The physical page number held in bits 53:10 of ``pte``."""
    return (pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT


def make_pte(ppn: int, flags: int) -> int:
    """A PTE pointing at physical page ``ppn`` with the given flag bits."""
    return ((ppn << PTE_PPN_SHIFT) & PTE_PPN_MASK) | (flags & (PTE_FLAGS_MASK | PTE_RSW_MASK))


FLAGS_LEGEND = (
    "flags DAGUXWRV: D dirty, A accessed, G global, U user, X executable, W writable, R readable, V valid; - clear"
)


def describe_flags(pte: int) -> str:
    """Flags as the usual ``DAGUXWRV`` string with ``-`` for clear bits."""
    return "".join(
        name if pte & bit else "-"
        for name, bit in (
            ("D", Pte.D),
            ("A", Pte.A),
            ("G", Pte.G),
            ("U", Pte.U),
            ("X", Pte.X),
            ("W", Pte.W),
            ("R", Pte.R),
            ("V", Pte.V),
        )
    )


# satp -------------------------------------------------------------------

SATP_MODE_SHIFT = 60
SATP_MODE_MASK = 0xF << SATP_MODE_SHIFT
SATP_ASID_SHIFT = 44
SATP_ASID_BITS = 16
SATP_ASID_MASK = ((1 << SATP_ASID_BITS) - 1) << SATP_ASID_SHIFT
SATP_PPN_MASK = (1 << 44) - 1

SATP_MODE_BARE = 0


@dataclass(frozen=True, slots=True)
class PagingMode:
    """One page-based virtual-memory scheme (Sv39, Sv48, ...), as data.

    ``ppn_bits[i]`` is the width of PPN field ``i`` in a PTE; VPN fields are
    all ``vpn_bits`` wide, but for the top one, which is ``top_extra_bits``
    wider.  Level ``i`` of a walk indexes with ``vpn[i]``; a leaf at level
    ``i`` maps a page of ``page_size(i)`` bytes.

    The G-stage modes of the hypervisor extension (Sv39x4, Sv48x4) are the
    same schemes with ``top_extra_bits=2``: their input is a guest-physical
    address 2 bits wider, their root table is 4 pages (16 KiB, 16 KiB
    aligned), and the address is zero-extended, not sign-extended (bits above
    ``va_bits`` must be zero, or a guest-page fault).  ``satp_mode`` is then
    the hgatp MODE value.
    """

    name: str
    satp_mode: int
    levels: int
    ppn_bits: tuple[int, ...]
    vpn_bits: int = 9
    top_extra_bits: int = 0  # 2 for the x4 (G-stage) modes

    @property
    def va_bits(self) -> int:
        return PAGE_SHIFT + self.vpn_bits * self.levels + self.top_extra_bits

    @property
    def zero_extended(self) -> bool:
        """True for the G-stage modes: the input is a guest-physical address whose upper bits must be zero."""
        return self.top_extra_bits != 0

    @property
    def root_table_size(self) -> int:
        """Bytes in the root table: 4 KiB, or 16 KiB for the x4 modes."""
        return PAGE_SIZE << self.top_extra_bits

    def vpn_width(self, level: int) -> int:
        return self.vpn_bits + (self.top_extra_bits if level == self.levels - 1 else 0)

    def vpn(self, va: int, level: int) -> int:
        return (va >> (PAGE_SHIFT + self.vpn_bits * level)) & ((1 << self.vpn_width(level)) - 1)

    def level_shift(self, level: int) -> int:
        return PAGE_SHIFT + self.vpn_bits * level

    def page_size(self, level: int) -> int:
        return 1 << self.level_shift(level)

    def is_canonical(self, va: int) -> bool:
        """Bits 63..va_bits-1 must all equal bit va_bits-1 (x4 modes: bits 63..va_bits must be zero)."""
        if self.zero_extended:
            return va >> self.va_bits == 0
        top = va >> (self.va_bits - 1)
        return top == 0 or top == (1 << (65 - self.va_bits)) - 1

    def canonical(self, va: int) -> int:
        """Sign-extend a ``va_bits``-wide address to 64 bits."""
        va &= (1 << self.va_bits) - 1
        if va >> (self.va_bits - 1):
            va |= ((1 << 64) - 1) ^ ((1 << self.va_bits) - 1)
        return va

    def split_va(self, va: int) -> dict[str, int]:
        """The VA's fields: ``vpn[levels-1]`` .. ``vpn[0]`` and ``offset``."""
        fields = {f"vpn[{i}]": self.vpn(va, i) for i in reversed(range(self.levels))}
        fields["offset"] = va & PAGE_MASK
        return fields


SV39 = PagingMode("Sv39", satp_mode=8, levels=3, ppn_bits=(9, 9, 26))
SV48 = PagingMode("Sv48", satp_mode=9, levels=4, ppn_bits=(9, 9, 9, 17))

# Sv57 is a teaching mode only: walks, explanations and quizzes.  The emulated
# CPU (Unicorn) and the IOMMU accept only the modes in PAGING_MODES.
SV57 = PagingMode("Sv57", satp_mode=10, levels=5, ppn_bits=(9, 9, 9, 9, 8))

PAGING_MODES = {m.satp_mode: m for m in (SV39, SV48)}
TEACHING_MODES = {m.satp_mode: m for m in (SV39, SV48, SV57)}

# G-stage (hgatp) modes of the hypervisor extension, keyed by hgatp.MODE.
SV39X4 = PagingMode("Sv39x4", satp_mode=8, levels=3, ppn_bits=(9, 9, 26), top_extra_bits=2)
SV48X4 = PagingMode("Sv48x4", satp_mode=9, levels=4, ppn_bits=(9, 9, 9, 17), top_extra_bits=2)
HGATP_MODES = {m.satp_mode: m for m in (SV39X4, SV48X4)}


def make_satp(mode: PagingMode | None, root_ppn: int = 0, asid: int = 0) -> int:
    """A satp value; ``mode=None`` is Bare (no translation)."""
    m = SATP_MODE_BARE if mode is None else mode.satp_mode
    return (m << SATP_MODE_SHIFT) | ((asid << SATP_ASID_SHIFT) & SATP_ASID_MASK) | (root_ppn & SATP_PPN_MASK)


def satp_fields(satp: int) -> tuple[int, int, int]:
    """``(mode, asid, ppn)`` of a satp value."""
    return (
        (satp & SATP_MODE_MASK) >> SATP_MODE_SHIFT,
        (satp & SATP_ASID_MASK) >> SATP_ASID_SHIFT,
        satp & SATP_PPN_MASK,
    )


# hgatp (RV64): MODE 63:60, VMID 57:44, PPN 43:0 (bits 1:0 of the PPN are zero: a 16 KiB root) ------

HGATP_VMID_SHIFT = 44
HGATP_VMID_BITS = 14
HGATP_VMID_MASK = ((1 << HGATP_VMID_BITS) - 1) << HGATP_VMID_SHIFT


def make_hgatp(mode: PagingMode | None, root_ppn: int = 0, vmid: int = 0) -> int:
    """An hgatp value; ``mode=None`` is Bare (guest-physical = supervisor-physical)."""
    m = SATP_MODE_BARE if mode is None else mode.satp_mode
    return (m << SATP_MODE_SHIFT) | ((vmid << HGATP_VMID_SHIFT) & HGATP_VMID_MASK) | (root_ppn & SATP_PPN_MASK)


def hgatp_fields(hgatp: int) -> tuple[int, int, int]:
    """``(mode, vmid, ppn)`` of an hgatp value; the PPN's two low bits read as zero (16 KiB root)."""
    return (
        (hgatp & SATP_MODE_MASK) >> SATP_MODE_SHIFT,
        (hgatp & HGATP_VMID_MASK) >> HGATP_VMID_SHIFT,
        hgatp & SATP_PPN_MASK & ~0x3,
    )
