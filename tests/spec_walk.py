"""An independent, deliberately plain transcription of the privileged specification's
"Virtual Address Translation Process" (Sv39/Sv48), used only as a test oracle.

It shares no code with ``hwsim.mmu.walker``: constants are written out here.
Returns ``("fault", cause)`` or ``("ok", pa, new_pte_or_None)``.
"""

from __future__ import annotations

import struct

CAUSE_PAGE = {"fetch": 12, "load": 13, "store": 15}
CAUSE_ACCESS = {"fetch": 1, "load": 5, "store": 7}


def spec_translate(
    ram: bytes, ram_base: int, satp: int, va: int, access: str, priv: str, sum_: bool, mxr: bool
) -> tuple:
    mode = satp >> 60
    levels = {8: 3, 9: 4}[mode]
    va_bits = 12 + 9 * levels
    top = va >> (va_bits - 1)
    if top not in (0, (1 << (64 - va_bits + 1)) - 1):
        return ("fault", CAUSE_PAGE[access])
    ppn_widths = {3: [9, 9, 26], 4: [9, 9, 9, 17]}[levels]

    def vpn(i: int) -> int:
        return (va >> (12 + 9 * i)) & 0x1FF

    # 1. a = satp.ppn * PAGESIZE, i = LEVELS - 1
    a = (satp & ((1 << 44) - 1)) * 4096
    i = levels - 1
    while True:
        # 2. pte = mem[a + va.vpn[i] * PTESIZE]
        addr = a + vpn(i) * 8
        if not ram_base <= addr < ram_base + len(ram) - 7:
            return ("fault", CAUSE_ACCESS[access])
        (pte,) = struct.unpack_from("<Q", ram, addr - ram_base)
        v, r, w, x = pte & 1, (pte >> 1) & 1, (pte >> 2) & 1, (pte >> 3) & 1
        u, a_bit, d_bit = (pte >> 4) & 1, (pte >> 6) & 1, (pte >> 7) & 1
        # 3. invalid, reserved encoding, reserved bits
        if v == 0 or (r == 0 and w == 1) or (pte >> 54) != 0:
            return ("fault", CAUSE_PAGE[access])
        # 4. non-leaf: descend
        if r == 0 and x == 0:
            if d_bit or a_bit or u:  # reserved for future standard use in non-leaf PTEs
                return ("fault", CAUSE_PAGE[access])
            i -= 1
            if i < 0:
                return ("fault", CAUSE_PAGE[access])
            a = ((pte >> 10) & ((1 << 44) - 1)) * 4096
            continue
        # 5. leaf: permissions
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
        # 6. misaligned superpage
        ppn = (pte >> 10) & ((1 << 44) - 1)
        low_bits = sum(ppn_widths[:i])
        if i > 0 and ppn & ((1 << low_bits) - 1):
            return ("fault", CAUSE_PAGE[access])
        # 7. A/D (hardware update)
        new = pte | 0x40 | (0x80 if access == "store" else 0)
        # 8. the physical address
        offset_bits = 12 + 9 * i
        pa = (ppn >> low_bits << offset_bits) | (va & ((1 << offset_bits) - 1))
        return ("ok", pa, new if new != pte else None)
