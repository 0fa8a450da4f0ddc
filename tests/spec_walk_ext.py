"""An independent, deliberately plain transcription of the privileged specification's "Virtual Address
Translation Process" for Sv39, Sv48 and Sv57, with the Svnapot and Svpbmt extensions switchable, used
only as a test oracle.  It shares no code with ``hwsim.mmu``.

Step 3 as the current specification words it: "If pte.v = 0, or if pte.r = 0 and pte.w = 1, or if any
bits or encodings that are reserved for future standard use are set within pte, stop and raise a
page-fault exception."  Reserved, here:

* bits 60:54 always; bit 63 (N) without Svnapot; bits 62:61 (PBMT) without Svpbmt;
* in a non-leaf PTE: N, PBMT, and D, A, U;
* Svpbmt: PBMT = 3;
* Svnapot: N = 1 in a leaf anywhere but level 0, or with ppn[3:0] other than 1000 (only 64 KiB).

A NAPOT leaf translates with pa.ppn[3:0] = va.vpn[0][3:0].
Returns ``("fault", cause)`` or ``("ok", pa, page_size, new_pte_or_None)``.
"""

from __future__ import annotations

import struct

CAUSE_PAGE = {"fetch": 12, "load": 13, "store": 15}
CAUSE_ACCESS = {"fetch": 1, "load": 5, "store": 7}


def spec_translate_ext(
    ram: bytes,
    ram_base: int,
    satp: int,
    va: int,
    access: str,
    priv: str,
    sum_: bool,
    mxr: bool,
    svnapot: bool,
    svpbmt: bool,
) -> tuple:
    mode = satp >> 60
    levels = {8: 3, 9: 4, 10: 5}[mode]
    va_bits = 12 + 9 * levels
    top = va >> (va_bits - 1)
    if top not in (0, (1 << (64 - va_bits + 1)) - 1):
        return ("fault", CAUSE_PAGE[access])

    def vpn(i: int) -> int:
        return (va >> (12 + 9 * i)) & 0x1FF

    a = (satp & ((1 << 44) - 1)) * 4096
    i = levels - 1
    while True:
        addr = a + vpn(i) * 8
        if not ram_base <= addr < ram_base + len(ram) - 7:
            return ("fault", CAUSE_ACCESS[access])
        (pte,) = struct.unpack_from("<Q", ram, addr - ram_base)
        v, r, w, x = pte & 1, (pte >> 1) & 1, (pte >> 2) & 1, (pte >> 3) & 1
        u, a_bit, d_bit = (pte >> 4) & 1, (pte >> 6) & 1, (pte >> 7) & 1
        n, pbmt = pte >> 63, (pte >> 61) & 3
        leaf = r == 1 or x == 1
        reserved = (pte >> 54) & 0x7F != 0
        if n and (not svnapot or not leaf or i != 0 or (pte >> 10) & 0xF != 0b1000):
            reserved = True
        if pbmt and (not svpbmt or not leaf or pbmt == 3):
            reserved = True
        if v == 0 or (r == 0 and w == 1) or reserved:
            return ("fault", CAUSE_PAGE[access])
        if not leaf:
            if d_bit or a_bit or u:
                return ("fault", CAUSE_PAGE[access])
            i -= 1
            if i < 0:
                return ("fault", CAUSE_PAGE[access])
            a = ((pte >> 10) & ((1 << 44) - 1)) * 4096
            continue
        if priv == "U" and not u:
            return ("fault", CAUSE_PAGE[access])
        if priv == "S" and u and (access == "fetch" or not sum_):
            return ("fault", CAUSE_PAGE[access])
        if access == "fetch" and not x:
            return ("fault", CAUSE_PAGE[access])
        if access == "load" and not (r or (mxr and x)):
            return ("fault", CAUSE_PAGE[access])
        if access == "store" and not w:
            return ("fault", CAUSE_PAGE[access])
        ppn = (pte >> 10) & ((1 << 44) - 1)
        if i > 0 and ppn & ((1 << (9 * i)) - 1):
            return ("fault", CAUSE_PAGE[access])
        new = pte | 0x40 | (0x80 if access == "store" else 0)
        if n:
            pa = ((ppn & ~0xF) | (vpn(0) & 0xF)) << 12 | (va & 0xFFF)
            return ("ok", pa, 1 << 16, new if new != pte else None)
        offset_bits = 12 + 9 * i
        pa = (ppn >> (9 * i) << offset_bits) | (va & ((1 << offset_bits) - 1))
        return ("ok", pa, 1 << offset_bits, new if new != pte else None)
