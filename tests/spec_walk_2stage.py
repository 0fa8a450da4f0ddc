"""An independent, deliberately plain transcription of two-stage address translation (the
privileged specification's hypervisor chapter, "Two-Stage Address Translation" and "Guest
Physical Address Translation"), used only as a test oracle.

It shares no code with ``hwsim.mmu``: constants are written out here.  The spec's text,
step by step:

* VS-stage: the usual algorithm with vsatp for satp; every PTE address it forms is a
  guest-physical address, read through the G-stage "as though for an implicit load";
  an A/D update is an implicit store through the G-stage.
* G-stage (Sv39x4/Sv48x4): the same algorithm with hgatp for satp; the incoming address
  is 2 bits wider (41/50 bits) and its upper bits must be zero; the root table is 16 KiB
  (hgatp.PPN bits 1:0 read as zero); "the current privilege mode is always taken to be
  U-mode when checking the U bit"; guest-page faults (20/21/23) instead of page faults;
  only mstatus.MXR applies.
* "any exception is always reported for the original access type"; htval is the
  faulting guest-physical address >> 2 for a guest-page fault.

Nothing is cached: each VS PTE read and each A/D write walks the G-stage again.
``ram`` is a bytearray at ``ram_base``; ``ad`` is "update" (written into ``ram``),
"report" (not written) or "fault" (Svade).
Returns ``{"result": "ok", "gpa", "pa", "reads"}`` or
``{"result": "fault", "cause", "stage", "htval", "reads"}``.
"""

from __future__ import annotations

import struct

PAGE_FAULT = {"fetch": 12, "load": 13, "store": 15}
GUEST_PAGE_FAULT = {"fetch": 20, "load": 21, "store": 23}
ACCESS_FAULT = {"fetch": 1, "load": 5, "store": 7}


class _Trap(Exception):
    def __init__(self, cause: int, stage: str, htval: int = 0) -> None:
        self.cause, self.stage, self.htval = cause, stage, htval


def spec_two_stage(
    ram: bytearray,
    ram_base: int,
    vsatp: int,
    hgatp: int,
    va: int,
    access: str,
    priv: str,
    vs_sum: bool,
    mxr: bool,
    vs_mxr: bool,
    ad: str,
) -> dict:
    reads = [0]

    def load(pa: int, stage: str) -> int:
        reads[0] += 1
        if not ram_base <= pa <= ram_base + len(ram) - 8:
            raise _Trap(ACCESS_FAULT[access], stage)
        return struct.unpack_from("<Q", ram, pa - ram_base)[0]

    def store(pa: int, value: int, stage: str) -> None:
        if ad == "update":
            if not ram_base <= pa <= ram_base + len(ram) - 8:
                raise _Trap(ACCESS_FAULT[access], stage)
            struct.pack_into("<Q", ram, pa - ram_base, value)

    def g_translate(gpa: int, perm: str) -> int:
        """G-stage: gpa -> pa, permissions checked for ``perm`` (the implicit access type)."""
        mode = hgatp >> 60
        if mode == 0:
            return gpa
        levels = {8: 3, 9: 4}[mode]
        width = 12 + 9 * levels + 2
        gpf = _Trap(GUEST_PAGE_FAULT[access], "G", gpa >> 2)
        if gpa >> width:
            raise gpf
        a = (hgatp & ((1 << 44) - 1) & ~3) * 4096
        i = levels - 1
        while True:
            if i == levels - 1:
                index = (gpa >> (12 + 9 * i)) & 0x7FF  # 11 bits at the root
            else:
                index = (gpa >> (12 + 9 * i)) & 0x1FF
            addr = a + index * 8
            pte = load(addr, "G")
            v, r, w, x = pte & 1, (pte >> 1) & 1, (pte >> 2) & 1, (pte >> 3) & 1
            u, a_bit, d_bit = (pte >> 4) & 1, (pte >> 6) & 1, (pte >> 7) & 1
            if v == 0 or (r == 0 and w == 1) or (pte >> 54) != 0:
                raise gpf
            if r == 0 and x == 0:
                if d_bit or a_bit or u:
                    raise gpf
                i -= 1
                if i < 0:
                    raise gpf
                a = ((pte >> 10) & ((1 << 44) - 1)) * 4096
                continue
            if not u:  # checked as a U-mode access
                raise gpf
            if perm == "fetch" and not x:
                raise gpf
            if perm == "load" and not (r or (mxr and x)):
                raise gpf
            if perm == "store" and not w:
                raise gpf
            ppn = (pte >> 10) & ((1 << 44) - 1)
            if i > 0 and ppn & ((1 << (9 * i)) - 1):
                raise gpf
            if a_bit == 0 or (perm == "store" and d_bit == 0):
                if ad == "fault":
                    raise gpf
                store(addr, pte | 0x40 | (0x80 if perm == "store" else 0), "G")
            return (ppn >> (9 * i) << (12 + 9 * i)) | (gpa & ((1 << (12 + 9 * i)) - 1))

    try:
        vmode = vsatp >> 60
        if vmode == 0:
            gpa = va
        else:
            levels = {8: 3, 9: 4}[vmode]
            va_bits = 12 + 9 * levels
            top = va >> (va_bits - 1)
            if top not in (0, (1 << (64 - va_bits + 1)) - 1):
                raise _Trap(PAGE_FAULT[access], "VS")
            a = (vsatp & ((1 << 44) - 1)) * 4096
            i = levels - 1
            while True:
                pte_gpa = a + ((va >> (12 + 9 * i)) & 0x1FF) * 8
                pte_pa = g_translate(pte_gpa, "load")
                pte = load(pte_pa, "VS")
                v, r, w, x = pte & 1, (pte >> 1) & 1, (pte >> 2) & 1, (pte >> 3) & 1
                u, a_bit, d_bit = (pte >> 4) & 1, (pte >> 6) & 1, (pte >> 7) & 1
                pf = _Trap(PAGE_FAULT[access], "VS")
                if v == 0 or (r == 0 and w == 1) or (pte >> 54) != 0:
                    raise pf
                if r == 0 and x == 0:
                    if d_bit or a_bit or u:
                        raise pf
                    i -= 1
                    if i < 0:
                        raise pf
                    a = ((pte >> 10) & ((1 << 44) - 1)) * 4096
                    continue
                if priv == "U" and not u:
                    raise pf
                if priv == "S" and u and (access == "fetch" or not vs_sum):
                    raise pf
                if access == "fetch" and not x:
                    raise pf
                if access == "load" and not (r or ((mxr or vs_mxr) and x)):
                    raise pf
                if access == "store" and not w:
                    raise pf
                ppn = (pte >> 10) & ((1 << 44) - 1)
                if i > 0 and ppn & ((1 << (9 * i)) - 1):
                    raise pf
                if a_bit == 0 or (access == "store" and d_bit == 0):
                    if ad == "fault":
                        raise pf
                    new = pte | 0x40 | (0x80 if access == "store" else 0)
                    write_pa = g_translate(pte_gpa, "store")  # an implicit store at the G-stage
                    store(write_pa, new, "VS")
                gpa = (ppn >> (9 * i) << (12 + 9 * i)) | (va & ((1 << (12 + 9 * i)) - 1))
                break
        pa = g_translate(gpa, access)
    except _Trap as trap:
        return {"result": "fault", "cause": trap.cause, "stage": trap.stage, "htval": trap.htval, "reads": reads[0]}
    return {"result": "ok", "gpa": gpa, "pa": pa, "reads": reads[0]}
