"""Bit layouts of AArch64 stage-1 translation (VMSAv8-64, EL1&0): granules, descriptors, fault codes.

Only layouts live here; the walk is ``arm_walk.py``.  Source: Arm Architecture Reference
Manual for A-profile, chapter D8 "The AArch64 Virtual Memory System Architecture" (descriptor
formats, "Translation granule", hierarchical permissions) and the ESR_ELx description of data
and instruction aborts.  48-bit output addresses (no FEAT_LPA/LPA2), 64-bit descriptors.

Descriptors (bits 1:0: x0 invalid, 01 block at a level that allows blocks, 11 table, or page
at level 3; 01 at level 3 is reserved, i.e. invalid)::

  table:       63      62:61    60       59       58:48  47 ............. G  G-1:2  1 0
             NSTable APTable UXNTable PXNTable   ignored  next table address  ignored 1 1
  block/page:  63:55   54   53   52   51   50  49:48  47 ... OA ...  11  10  9:8  7:6   5  4:2     1 0
             ignored UXN  PXN  Cont DBM  GP   res0           out addr nG  AF   SH  AP[2:1] NS AttrIndx x 1

(G is the granule's shift: 12, 14 or 16.)  Levels are the Arm ARM's: 0 to 3, level 3 the last.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

DESC_SIZE = 8
OA_TOP = 48  # output addresses are bits 47:0

VALID = 1 << 0
TYPE = 1 << 1  # 1: table (levels 0-2) or page (level 3); 0: block
ATTRINDX_SHIFT = 2  # bits 4:2
NS = 1 << 5
AP_SHIFT = 6  # AP[2:1] at bits 7:6: AP[1] (bit 6) EL0 access, AP[2] (bit 7) read-only
AP1 = 1 << 6
AP2 = 1 << 7
SH_SHIFT = 8
AF = 1 << 10
NG = 1 << 11
DBM = 1 << 51
CONTIGUOUS = 1 << 52
PXN = 1 << 53
UXN = 1 << 54
PXN_TABLE = 1 << 59
UXN_TABLE = 1 << 60
AP_TABLE0 = 1 << 61  # APTable[0]: no EL0 access below
AP_TABLE1 = 1 << 62  # APTable[1]: no write access below
NS_TABLE = 1 << 63

AP_MEANING = {
    0b00: "EL1 read/write, EL0 none",
    0b01: "EL1 read/write, EL0 read/write",
    0b10: "EL1 read-only, EL0 none",
    0b11: "EL1 read-only, EL0 read-only",
}


@dataclass(frozen=True, slots=True)
class Granule:
    """A translation granule as data: its page shift, which levels may hold blocks, contiguous runs."""

    name: str
    shift: int  # 12, 14, 16
    first_block_level: int  # the lowest-numbered level where a block descriptor is allowed
    contiguous: tuple[int, int, int, int]  # entries in a contiguous run at levels 0..3 (0: no hint there)
    title: str

    @property
    def stride(self) -> int:
        """Index bits per level: a table is one granule of 8-byte descriptors."""
        return self.shift - 3

    def level_shift(self, level: int) -> int:
        """The lowest VA bit that indexes ``level``; a block or page there maps ``1 << level_shift`` bytes."""
        return (3 - level) * self.stride + self.shift

    def start_level(self, va_bits: int) -> int:
        """Where a walk of ``va_bits``-bit addresses begins (Arm ARM: 4 - ceil((va_bits - shift) / stride))."""
        return 4 - -(-(va_bits - self.shift) // self.stride)

    def blocks_at(self, level: int) -> bool:
        return self.first_block_level <= level <= 2


AARCH64_4K = Granule("aarch64-4k", 12, 1, (0, 16, 16, 16), "AArch64 VMSAv8-64, 4 KiB granule")
AARCH64_16K = Granule("aarch64-16k", 14, 2, (0, 0, 32, 128), "AArch64 VMSAv8-64, 16 KiB granule")
AARCH64_64K = Granule("aarch64-64k", 16, 2, (0, 0, 32, 32), "AArch64 VMSAv8-64, 64 KiB granule")
GRANULES = {g.name: g for g in (AARCH64_4K, AARCH64_16K, AARCH64_64K)}

# TCR_EL1.IPS encodings and the PA sizes they give
PA_SIZES = (32, 36, 40, 42, 44, 48)
TXSZ_MIN, TXSZ_MAX = 16, 39  # input sizes 48 down to 25 bits (no FEAT_LVA, no FEAT_TTST)


class FaultStatus(enum.IntEnum):
    """DFSC/IFSC fault status codes without the level (the level is added: ``code | level``)."""

    ADDRESS_SIZE = 0b000000
    TRANSLATION = 0b000100
    ACCESS_FLAG = 0b001000
    PERMISSION = 0b001100
    EXTERNAL_WALK = 0b010100  # synchronous external abort on a translation table walk


FAULT_NAMES = {
    FaultStatus.ADDRESS_SIZE: "address size fault",
    FaultStatus.TRANSLATION: "translation fault",
    FaultStatus.ACCESS_FLAG: "access flag fault",
    FaultStatus.PERMISSION: "permission fault",
    FaultStatus.EXTERNAL_WALK: "synchronous external abort on a translation table walk",
}

# ESR_ELx.EC of aborts: (instruction?, from a lower EL?) -> EC
EC_ABORT = {
    (True, True): 0x20,  # instruction abort from a lower EL (EL0)
    (True, False): 0x21,  # instruction abort taken without a change of EL (EL1)
    (False, True): 0x24,  # data abort from a lower EL
    (False, False): 0x25,  # data abort, same EL
}
ESR_EC_SHIFT = 26
ESR_IL = 1 << 25
ESR_WNR = 1 << 6


def esr(instruction: bool, from_el0: bool, write: bool, status: int) -> int:
    """ESR_EL1 for a translation-related abort (ISV=0, so no instruction syndrome)."""
    value = EC_ABORT[(instruction, from_el0)] << ESR_EC_SHIFT | ESR_IL | status
    return value | (ESR_WNR if write and not instruction else 0)
