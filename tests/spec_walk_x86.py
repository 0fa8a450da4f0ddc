"""An independent, deliberately plain transcription of Intel SDM vol. 3A chapter 4 (4-level and
5-level paging: the walk, "Access Rights", "Protection Keys", "Page-Fault Exceptions",
"Accessed and Dirty Flags"), used only as a test oracle.

It shares no code with ``hwsim.mmu``: every bit position is written out here.  Returns
``("gp",)`` for a non-canonical address, ``("bus",)`` when an entry's address is not in memory,
``("pf", error_code)``, or ``("ok", pa, {entry_address: new_value})`` with the A/D updates of a
successful translation.
"""

from __future__ import annotations


def bit(value: int, n: int) -> int:
    return (value >> n) & 1


def bits(value: int, hi: int, lo: int) -> int:
    return (value >> lo) & ((1 << (hi - lo + 1)) - 1)


def spec_translate_x86(
    words: dict,
    ram_base: int,
    ram_size: int,
    cr3: int,
    va: int,
    access: str,  # "fetch", "load", "store"
    cpl3: bool,
    *,
    la57: bool = False,
    nxe: bool = True,
    wp: bool = True,
    smep: bool = False,
    smap: bool = False,
    ac: bool = False,
    pke: bool = False,
    pkru: int = 0,
    maxphyaddr: int = 52,
) -> tuple:
    # 4.5: linear addresses are 48 bits (57 with CR4.LA57); bits 63:N must be a sign extension.
    n = 57 if la57 else 48
    upper = va >> (n - 1)
    if upper != 0 and upper != (1 << (64 - n + 1)) - 1:
        return ("gp",)

    write = access == "store"
    fetch = access == "fetch"
    # 4.7: the error code's W/R, U/S and I/D bits describe the access.
    ec = 0
    if write:
        ec |= 2
    if cpl3:
        ec |= 4
    if fetch and (nxe or smep):
        ec |= 16

    def addr_bits(e: int, low: int) -> int:
        # bits (M-1):low of an entry
        return e & ((1 << maxphyaddr) - 1) & ~((1 << low) - 1)

    def rsvd_high(e: int) -> bool:
        # bits 51:M reserved in every entry; XD (63) reserved when NXE=0
        if maxphyaddr < 52 and bits(e, 51, maxphyaddr) != 0:
            return True
        if not nxe and bit(e, 63):
            return True
        return False

    # the walk: entries named from the top
    if la57:
        names = ["PML5E", "PML4E", "PDPTE", "PDE", "PTE"]
        shifts = [48, 39, 30, 21, 12]
    else:
        names = ["PML4E", "PDPTE", "PDE", "PTE"]
        shifts = [39, 30, 21, 12]
    table = addr_bits(cr3, 12)
    used = []
    page_shift = None
    entry = 0
    for name, shift in zip(names, shifts):
        ea = table | (bits(va, shift + 8, shift) << 3)
        if not (ram_base <= ea and ea + 8 <= ram_base + ram_size):
            return ("bus",)
        entry = words.get(ea, 0)
        if bit(entry, 0) == 0:
            return ("pf", ec)  # P=0 in the error code
        if rsvd_high(entry):
            return ("pf", ec | 1 | 8)
        if name in ("PML5E", "PML4E"):
            if bit(entry, 7):  # PS is reserved in PML5Es and PML4Es
                return ("pf", ec | 1 | 8)
            used.append(ea)
            table = addr_bits(entry, 12)
            continue
        if name == "PDPTE" and bit(entry, 7):
            if bits(entry, 29, 13) != 0:
                return ("pf", ec | 1 | 8)
            used.append(ea)
            page_shift = 30
            break
        if name == "PDE" and bit(entry, 7):
            if bits(entry, 20, 13) != 0:
                return ("pf", ec | 1 | 8)
            used.append(ea)
            page_shift = 21
            break
        used.append(ea)
        if name == "PTE":
            page_shift = 12
            break
        table = addr_bits(entry, 12)
    assert page_shift is not None

    # 4.6: rights are those of every entry used
    rw_all = all(bit(words.get(a, 0), 1) for a in used)
    us_all = all(bit(words.get(a, 0), 2) for a in used)
    xd_any = any(bit(words.get(a, 0), 63) for a in used)
    user_address = us_all

    allowed = True
    if cpl3:
        if not user_address:
            allowed = False
        elif write and not rw_all:
            allowed = False
        elif fetch and nxe and xd_any:
            allowed = False
    else:
        if fetch:
            if user_address and smep:
                allowed = False
            elif nxe and xd_any:
                allowed = False
        else:
            if user_address and smap and not ac:
                allowed = False
            elif write and wp and not rw_all:
                allowed = False

    # 4.6.2: protection keys, user-mode addresses, data accesses only
    pk_violation = False
    if pke and user_address and not fetch:
        key = bits(entry, 62, 59)
        ad_bit = bit(pkru, 2 * key)
        wd_bit = bit(pkru, 2 * key + 1)
        if ad_bit:
            pk_violation = True
        elif wd_bit and write and (cpl3 or wp):
            pk_violation = True
    if pk_violation:
        allowed = False
    if not allowed:
        return ("pf", ec | 1 | (32 if pk_violation else 0))

    # 4.8: A in every entry used; D in the entry that maps the page, on a write
    updates = {}
    for a in used:
        old = words.get(a, 0)
        new = old | 0x20
        if write and a == used[-1]:
            new |= 0x40
        if new != old:
            updates[a] = new
    pa = addr_bits(entry, page_shift) | (va & ((1 << page_shift) - 1))
    return ("ok", pa, updates)
