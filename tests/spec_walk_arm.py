"""An independent, deliberately plain transcription of the Arm ARM's AArch64 stage-1 translation
for the EL1&0 regime (the ARMv8.0 pseudo-code AArch64.TranslationTableWalk and
AArch64.CheckPermission, with PSTATE.PAN from ARMv8.1 and TCR_EL1.HA), used only as a test oracle.

It shares no code with ``hwsim.mmu``.  Returns ``("abort", fsc)`` with the fault status code
(DFSC/IFSC, level included), or ``("ok", pa, af_update)`` where ``af_update`` is
``(descriptor_address, new_value)`` when the hardware sets AF, else None.
"""

from __future__ import annotations


def field(x: int, hi: int, lo: int) -> int:
    return (x >> lo) & ((1 << (hi - lo + 1)) - 1)


def spec_translate_arm(
    words: dict,
    ram_base: int,
    ram_size: int,
    granule_kb: int,
    va: int,
    access: str,  # "fetch", "load", "store"
    el0: bool,
    *,
    ttbr0: int,
    ttbr1: int,
    t0sz: int = 16,
    t1sz: int = 16,
    pa_bits: int = 48,
    ha: bool = False,
    wxn: bool = False,
    pan: bool = False,
) -> tuple:
    grainsize = {4: 12, 16: 14, 64: 16}[granule_kb]
    firstblocklevel = {4: 1, 16: 2, 64: 2}[granule_kb]
    stride = grainsize - 3

    # first stage, EL1&0: bit 63 chooses the half (no top-byte-ignore)
    if field(va, 63, 63) == 0:
        inputsize = 64 - t0sz
        basefound = field(va, 63, inputsize) == 0
        baseregister = ttbr0
    else:
        inputsize = 64 - t1sz
        basefound = field(va, 63, inputsize) == (1 << (64 - inputsize)) - 1
        baseregister = ttbr1
    # level = 4 - RoundUp((inputsize - grainsize) / stride)
    level = 4 - ((inputsize - grainsize) + stride - 1) // stride

    if not basefound:
        return ("abort", 0b000100 | 0)  # translation fault, level 0

    outputsize = pa_bits
    if outputsize != 48 and field(baseregister, 47, outputsize) != 0:
        return ("abort", 0b000000 | 0)  # address size fault, level 0

    baselowerbound = 3 + inputsize - ((3 - level) * stride + grainsize)
    baseaddress = field(baseregister, 47, baselowerbound) << baselowerbound

    ap_table = 0
    xn_table = 0
    pxn_table = 0
    addrselecttop = inputsize - 1
    while True:
        addrselectbottom = (3 - level) * stride + grainsize
        index = field(va, addrselecttop, addrselectbottom) << 3
        descaddr = baseaddress | index
        if not (ram_base <= descaddr <= ram_base + ram_size - 8):
            return ("abort", 0b010100 | level)  # synchronous external abort on the walk
        desc = words.get(descaddr, 0)
        if field(desc, 0, 0) == 0 or (field(desc, 1, 0) == 0b01 and level == 3):
            return ("abort", 0b000100 | level)
        if field(desc, 1, 0) == 0b01 or level == 3:
            break  # block or page
        # table
        if outputsize != 48 and field(desc, 47, outputsize) != 0:
            return ("abort", 0b000000 | level)
        baseaddress = field(desc, 47, grainsize) << grainsize
        ap_table = ap_table | (field(desc, 62, 62) << 1)
        xn_table = xn_table | field(desc, 60, 60)
        ap_table = ap_table | field(desc, 61, 61)
        pxn_table = pxn_table | field(desc, 59, 59)
        level = level + 1
        addrselecttop = addrselectbottom - 1

    if level < firstblocklevel:
        return ("abort", 0b000100 | level)
    if outputsize != 48 and field(desc, 47, outputsize) != 0:
        return ("abort", 0b000000 | level)
    af_update = None
    if field(desc, 10, 10) == 0:
        if not ha:
            return ("abort", 0b001000 | level)
        af_update = (descaddr, desc | (1 << 10))

    outputaddress = (field(desc, 47, addrselectbottom) << addrselectbottom) | field(va, addrselectbottom - 1, 0)
    xn = field(desc, 54, 54) | xn_table
    pxn = field(desc, 53, 53) | pxn_table
    ap2 = field(desc, 7, 7) | ((ap_table >> 1) & 1)
    ap1 = field(desc, 6, 6) & (1 - (ap_table & 1))

    # AArch64.CheckPermission, EL1&0
    if ap2 == 0 and ap1 == 0:
        priv_r, priv_w, user_r, user_w = True, True, False, False
    elif ap2 == 0 and ap1 == 1:
        priv_r, priv_w, user_r, user_w = True, True, True, True
    elif ap2 == 1 and ap1 == 0:
        priv_r, priv_w, user_r, user_w = True, False, False, False
    else:
        priv_r, priv_w, user_r, user_w = True, False, True, False
    if pan and user_r and not el0 and access != "fetch":
        priv_r, priv_w = False, False
    user_xn = xn == 1 or (user_w and wxn)
    priv_xn = pxn == 1 or (priv_w and wxn) or user_w
    if el0:
        r, w, x_never = user_r, user_w, user_xn
    else:
        r, w, x_never = priv_r, priv_w, priv_xn
    if access == "fetch":
        fail = x_never
    elif access == "store":
        fail = not w
    else:
        fail = not r
    if fail:
        return ("abort", 0b001100 | level)
    return ("ok", outputaddress, af_update)
