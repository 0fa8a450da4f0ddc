"""x86-64 and AArch64 walks (hwsim.mmu.x86_walk, arm_walk) against the independent transcriptions
tests/spec_walk_x86.py (Intel SDM) and tests/spec_walk_arm.py (Arm ARM), on random tables, and
golden cases for every kind of fault."""

from __future__ import annotations

import random

import pytest
from spec_walk_arm import spec_translate_arm
from spec_walk_x86 import spec_translate_x86

from hwsim.errors import BusError, ConfigError
from hwsim.mmu.arm_bits import AARCH64_4K, AARCH64_16K, AARCH64_64K, Granule
from hwsim.mmu.arm_walk import ArmControl, ArmReason, walk_arm
from hwsim.mmu.formats import format_explained
from hwsim.mmu.x86_bits import X86_64, X86_64_5LEVEL
from hwsim.mmu.x86_walk import X86Control, X86Reason, walk_x86
from hwsim.riscv.priv import Access, Priv

RAM_BASE, RAM_SIZE = 0x100000, 0x100000  # 1 MiB of RAM holds the tables


class Mem:
    def __init__(self, words: dict, base: int = RAM_BASE, size: int = RAM_SIZE) -> None:
        self.words, self.base, self.size = dict(words), base, size

    def read_u64(self, pa: int) -> int:
        if not self.base <= pa <= self.base + self.size - 8:
            raise BusError(f"no RAM at {pa:#x}", address=pa, size=8)
        return self.words.get(pa, 0)

    def write_u64(self, pa: int, value: int) -> None:
        self.read_u64(pa)
        self.words[pa] = value


# -- random x86 tables -----------------------------------------------------------------------------------------


def _x86_case(rng: random.Random):
    fmt = rng.choice([X86_64, X86_64_5LEVEL])
    maxphy = rng.choice([52, 46, 40, 36])
    frames = iter(rng.sample(range(RAM_BASE, RAM_BASE + RAM_SIZE, 0x1000), 8))
    root = next(frames)
    va = rng.getrandbits(fmt.va_bits)
    va = fmt.canonical(va)
    if rng.random() < 0.05:
        va ^= 1 << rng.randrange(fmt.va_bits, 64)
    words: dict = {}
    table = root
    for level in range(fmt.levels - 1, -1, -1):
        addr = table + ((va >> (12 + 9 * level)) & 0x1FF) * 8
        e = 0
        for b, p in ((0, 0.94), (1, 0.75), (2, 0.7), (3, 0.1), (4, 0.1), (5, 0.5), (6, 0.4), (8, 0.1)):
            if rng.random() < p:
                e |= 1 << b
        if rng.random() < 0.2:
            e |= 1 << 63
        if rng.random() < 0.3:
            e |= rng.randrange(16) << 59
        if rng.random() < 0.15:
            e |= rng.getrandbits(7) << 52  # ignored bits
        leaf_here = level == 0 or (level in (1, 2) and rng.random() < 0.3) or (level >= 3 and rng.random() < 0.03)
        if leaf_here and level:
            e |= 1 << 7
        if leaf_here:
            size_shift = 12 + 9 * min(level, 2)
            target = rng.getrandbits(maxphy - size_shift) << size_shift
            if level in (1, 2) and rng.random() < 0.1:
                target |= 1 << rng.randrange(13, size_shift)  # a reserved bit of a large page
            if level and rng.random() < 0.3:
                target |= 1 << 12  # PAT
            e |= target
        else:
            nxt = next(frames) if rng.random() > 0.03 else rng.choice([0x2000, 0x400000, 0x7FFFF000])
            e |= nxt
        if rng.random() < 0.04:
            e |= 1 << rng.randrange(maxphy, 52) if maxphy < 52 else 0
        words[addr] = e
        # decoys: neighbours
        for _ in range(rng.randint(0, 2)):
            d = table + rng.randrange(512) * 8
            if d != addr:
                words.setdefault(d, rng.getrandbits(64) & ~(0xFFF << 52) | 1)
        if leaf_here or not e & 1:
            break
        table = e & ((1 << maxphy) - 1) & ~0xFFF
        if not RAM_BASE <= table < RAM_BASE + RAM_SIZE:
            break
    ctl = X86Control(
        nxe=rng.random() < 0.8,
        wp=rng.random() < 0.7,
        smep=rng.random() < 0.3,
        smap=rng.random() < 0.3,
        ac=rng.random() < 0.3,
        pke=rng.random() < 0.4,
        pkru=rng.getrandbits(32) if rng.random() < 0.7 else 0,
        maxphyaddr=maxphy,
    )
    cr3 = root | rng.choice([0, 0x8, 0x10, 0x18])
    return fmt, words, cr3, va, rng.choice(list(Access)), rng.choice([Priv.U, Priv.S]), ctl


def _x86_spec(fmt, words, cr3, va, access, priv, ctl):
    return spec_translate_x86(
        words,
        RAM_BASE,
        RAM_SIZE,
        cr3,
        va,
        access.value,
        priv is Priv.U,
        la57=fmt.levels == 5,
        nxe=ctl.nxe,
        wp=ctl.wp,
        smep=ctl.smep,
        smap=ctl.smap,
        ac=ctl.ac,
        pke=ctl.pke,
        pkru=ctl.pkru,
        maxphyaddr=ctl.maxphyaddr,
    )


def _x86_outcome(result):
    if result.ok:
        return ("ok", result.pa, {a: n for a, _o, n in result.updates})
    f = result.fault
    return {"general-protection": ("gp",), "bus error": ("bus",)}.get(f.kind) or ("pf", f.code)


X86_SEEDS = 6000


def test_x86_walk_matches_the_sdm_transcription():
    kinds: dict = {}
    for seed in range(X86_SEEDS):
        case = _x86_case(random.Random(f"x86:{seed}"))
        got = _x86_outcome(walk_x86(Mem(case[1]), case[2], case[3], case[4], case[5], fmt=case[0], ctl=case[6]))
        want = _x86_spec(*case)
        assert got == want, f"seed {seed}: hwsim {got} vs SDM {want}"
        key = want[0] if want[0] != "pf" else f"pf {want[1] & 0x29:#x}"
        kinds[key] = kinds.get(key, 0) + 1
    # the random tables reach every outcome: success, #GP, no memory, not present, RSVD, protection, PK
    assert {"ok", "gp", "bus", "pf 0x0", "pf 0x9", "pf 0x1", "pf 0x21"} <= set(kinds), kinds


# -- random AArch64 tables ---------------------------------------------------------------------------------------


def _arm_case(rng: random.Random):
    granule = rng.choice([AARCH64_4K, AARCH64_16K, AARCH64_64K])
    g = granule.shift
    t0sz = rng.choice([16, 16, 20, 25, 30, 33, 39])
    t1sz = rng.choice([16, 16, 22, 28, 39])
    pa_bits = rng.choice([48, 48, 44, 40, 36, 32])
    ram_frames = RAM_SIZE >> g
    frames = iter(rng.sample(range(ram_frames), min(ram_frames, 8)))
    frame = lambda: RAM_BASE + (next(frames) << g)  # noqa: E731
    upper = rng.random() < 0.4
    txsz = t1sz if upper else t0sz
    va_bits = 64 - txsz
    va = rng.getrandbits(va_bits)
    if upper:
        va |= ((1 << 64) - 1) ^ ((1 << va_bits) - 1)
    if rng.random() < 0.05:
        va ^= 1 << rng.randrange(va_bits, 63)
    start = granule.start_level(va_bits)
    root = frame()
    ttbr = root
    if rng.random() < 0.03:
        ttbr |= 1 << rng.randrange(32, 48)
    words: dict = {}
    table = root
    for level in range(start, 4):
        low = granule.level_shift(level)
        width = min(va_bits, low + granule.stride) - low
        addr = table + ((va >> low) & ((1 << width) - 1)) * 8
        r = rng.random()
        block = level == 3 or r < 0.25
        e = 1 if rng.random() < 0.94 else 0
        if not block or level == 3:
            e |= 2
        if level == 3 and rng.random() < 0.04:
            e &= ~2  # reserved at level 3
        if block:
            bits = max(pa_bits - low, 0) if rng.random() > 0.05 else 48 - low
            target = rng.getrandbits(bits) << low
            e |= target
            for b, p in ((10, 0.8), (6, 0.5), (7, 0.4), (11, 0.3), (52, 0.2), (53, 0.3), (54, 0.3)):
                if rng.random() < p:
                    e |= 1 << b
            e |= rng.getrandbits(3) << 2 | rng.getrandbits(2) << 8
        else:
            nxt = frame() if rng.random() > 0.03 else rng.choice([0x1000_0000, 0x20_0000])
            if rng.random() < 0.03:
                nxt |= 1 << rng.randrange(32, 48)
            e |= nxt
            for b, p in ((59, 0.15), (60, 0.15), (61, 0.15), (62, 0.15), (63, 0.1)):
                if rng.random() < p:
                    e |= 1 << b
        words[addr] = e
        for _ in range(rng.randint(0, 2)):
            d = table + rng.randrange(1 << width) * 8
            if d != addr:
                words.setdefault(d, rng.getrandbits(48) | 3)
        if block or not e & 1:
            break
        table = e & ((1 << 48) - 1) & ~((1 << g) - 1)
        if not RAM_BASE <= table < RAM_BASE + RAM_SIZE:
            break
    ctl = ArmControl(
        ttbr0=ttbr if not upper else frame(),
        ttbr1=ttbr if upper else 0,
        t0sz=t0sz,
        t1sz=t1sz,
        pa_bits=pa_bits,
        ha=rng.random() < 0.3,
        wxn=rng.random() < 0.3,
        pan=rng.random() < 0.3,
    )
    return granule, words, va, rng.choice(list(Access)), rng.choice([Priv.U, Priv.S]), ctl


def _arm_spec(granule, words, va, access, priv, ctl):
    return spec_translate_arm(
        words,
        RAM_BASE,
        RAM_SIZE,
        1 << (granule.shift - 10),
        va,
        access.value,
        priv is Priv.U,
        ttbr0=ctl.ttbr0,
        ttbr1=ctl.ttbr1,
        t0sz=ctl.t0sz,
        t1sz=ctl.t1sz,
        pa_bits=ctl.pa_bits,
        ha=ctl.ha,
        wxn=ctl.wxn,
        pan=ctl.pan,
    )


def _arm_outcome(result):
    if result.ok:
        return ("ok", result.pa, (result.updates[0][0], result.updates[0][2]) if result.updates else None)
    return ("abort", result.fault.code)


ARM_SEEDS = 6000


def test_arm_walk_matches_the_arm_arm_transcription():
    kinds: dict = {}
    for seed in range(ARM_SEEDS):
        case = _arm_case(random.Random(f"arm:{seed}"))
        got = _arm_outcome(walk_arm(Mem(case[1]), case[2], case[3], case[4], granule=case[0], ctl=case[5]))
        want = _arm_spec(*case)
        assert got == want, f"seed {seed}: hwsim {got} vs Arm ARM {want}"
        key = want[0] if want[0] == "ok" else f"{want[1] & ~3:#x}"
        kinds[key] = kinds.get(key, 0) + 1
    # success, address size, translation, access flag, permission, external abort
    assert {"ok", "0x0", "0x4", "0x8", "0xc", "0x14"} <= set(kinds), kinds


# -- golden cases: one per kind of fault ---------------------------------------------------------------------------

B = RAM_BASE


def _x86_tables(pde: int, pml4e_bits: int = 0x7, pdpte_bits: int = 0x7, pte: int | None = None) -> Mem:
    """PML4 at B, PDPT at B+0x1000, PD at B+0x2000, PT at B+0x3000; va 0x201000 uses PD[1] (and PT[1])."""
    words = {B: B + 0x1000 | pml4e_bits, B + 0x1000: B + 0x2000 | pdpte_bits, B + 0x2008: pde}
    if pte is not None:
        words[B + 0x3008] = pte
    return Mem(words)


VA = 0x201234


@pytest.mark.parametrize(
    ("mem", "access", "priv", "ctl", "code", "reason"),
    [
        (_x86_tables(0), Access.LOAD, Priv.U, X86Control(), 0x4, X86Reason.NOT_PRESENT),
        (_x86_tables(0x400087 | 1 << 13), Access.STORE, Priv.S, X86Control(), 0xB, X86Reason.RESERVED),
        (_x86_tables(0x400087 | 1 << 63), Access.FETCH, Priv.S, X86Control(nxe=False), 0x9, X86Reason.RESERVED),
        (_x86_tables(0x400087 | 1 << 45), Access.LOAD, Priv.S, X86Control(maxphyaddr=40), 0x9, X86Reason.RESERVED),
        (_x86_tables(0x400083), Access.LOAD, Priv.U, X86Control(), 0x5, X86Reason.USER_SUPERVISOR),
        (_x86_tables(0x400085), Access.STORE, Priv.U, X86Control(), 0x7, X86Reason.USER_WRITE),
        (_x86_tables(0x400085), Access.STORE, Priv.S, X86Control(), 0x3, X86Reason.SUPERVISOR_WRITE),
        (_x86_tables(0x400087, pdpte_bits=0x7 | 0), Access.FETCH, Priv.U, X86Control(), None, None),
        (_x86_tables(0x400087 | 1 << 63), Access.FETCH, Priv.U, X86Control(), 0x15, X86Reason.EXECUTE_DISABLED),
        (_x86_tables(0x400087), Access.FETCH, Priv.S, X86Control(smep=True), 0x11, X86Reason.SMEP),
        (_x86_tables(0x400087), Access.LOAD, Priv.S, X86Control(smap=True), 0x1, X86Reason.SMAP),
        (
            _x86_tables(0x400087 | 3 << 59),
            Access.LOAD,
            Priv.U,
            X86Control(pke=True, pkru=1 << 6),
            0x25,
            X86Reason.PKEY_ACCESS,
        ),
        (
            _x86_tables(0x400087 | 3 << 59),
            Access.STORE,
            Priv.S,
            X86Control(pke=True, pkru=2 << 6),
            0x23,
            X86Reason.PKEY_WRITE,
        ),
    ],
)
def test_x86_golden_faults(mem, access, priv, ctl, code, reason):
    result = walk_x86(mem, B, VA, access, priv, ctl=ctl)
    if reason is None:
        assert result.ok and result.pa == 0x401234 and result.page_size == 2 << 20
        return
    assert not result.ok
    assert (result.fault.code, result.fault.reason, result.fault.level) == (code, reason.value, 1)
    assert f"error code {code:#x}" in result.fault.summary and "at the PDE" in result.fault.summary


def test_x86_golden_successes_and_the_other_stops():
    # a supervisor write to a read-only page with CR0.WP=0 goes through; A set everywhere, D in the PDE
    result = walk_x86(_x86_tables(0x400085), B, VA, Access.STORE, Priv.S, ctl=X86Control(wp=False), write_ad=True)
    assert result.ok and result.pa == 0x401234
    assert result.updates == [
        (B, B + 0x1007, B + 0x1027),
        (B + 0x1000, B + 0x2007, B + 0x2027),
        (B + 0x2008, 0x400085, 0x4000E5),
    ]
    assert result.updates_written
    # a 4 KiB page through the PT, with a PML5 above it
    mem = Mem(
        {
            B + 0x4000: B | 7,
            B: B + 0x1000 | 7,
            B + 0x1000: B + 0x2000 | 7,
            B + 0x2008: B + 0x3000 | 7,
            B + 0x3008: 0x7777000 | 0x67,
        }
    )
    result = walk_x86(mem, B + 0x4000, VA, Access.LOAD, Priv.U, fmt=X86_64_5LEVEL)
    assert (
        result.ok
        and result.pa == 0x7777234
        and [s.name for s in result.steps] == ["PML5E", "PML4E", "PDPTE", "PDE", "PTE"]
    )
    # PS in a PML4E is reserved
    result = walk_x86(_x86_tables(0, pml4e_bits=0x87), B, VA, Access.LOAD, Priv.S)
    assert (result.fault.code, result.fault.level) == (0x9, 3)
    # non-canonical: #GP, no entry read; a table outside memory: no page fault
    result = walk_x86(_x86_tables(0), B, 0x0000_8000_0000_0000, Access.LOAD, Priv.S)
    assert result.fault.kind == "general-protection" and result.fault.summary == "#GP(0)" and not result.steps
    result = walk_x86(Mem({B: 0x7FFF_F000 | 7}), B, VA, Access.LOAD, Priv.S)
    assert result.fault.reason == X86Reason.NO_MEMORY.value and result.steps[-1].value is None
    text = "\n".join(format_explained(walk_x86(_x86_tables(0x400087), B, VA, Access.STORE, Priv.U)))
    assert "PDE: address = 0x102000 + 0x1*8 = 0x102008" in text
    assert "rights over all 3 entries: U/S=1 (user-mode address), R/W=1, XD=0" in text


def _arm_tables(leaf: int, l1_bits: int = 0, level: int = 2) -> tuple[Mem, ArmControl]:
    """4 KiB granule, 48-bit VAs: L0 at B, L1 at B+0x1000, L2 at B+0x2000, L3 at B+0x3000; va 0x201234."""
    words = {B: B + 0x1000 | 3, B + 0x1000: B + 0x2000 | 3 | l1_bits}
    if level == 2:
        words[B + 0x2008] = leaf
    else:
        words[B + 0x2008] = B + 0x3000 | 3
        words[B + 0x3008] = leaf
    return Mem(words), ArmControl(ttbr0=B)


_BLOCK = 0x4000_0000 | 0x401  # a 2 MiB block, AF=1, AP=00
_PAGE = 0x4000_0000 | 0x403


@pytest.mark.parametrize(
    ("leaf", "level", "l1_bits", "access", "priv", "extra", "code", "reason"),
    [
        (0, 2, 0, Access.LOAD, Priv.S, {}, 0x06, ArmReason.INVALID),
        (_PAGE & ~2, 3, 0, Access.LOAD, Priv.S, {}, 0x07, ArmReason.RESERVED_L3),
        (_BLOCK & ~(1 << 10), 2, 0, Access.LOAD, Priv.S, {}, 0x0A, ArmReason.ACCESS_FLAG),
        (_BLOCK | 1 << 40, 2, 0, Access.LOAD, Priv.S, {"pa_bits": 40}, 0x02, ArmReason.OUTPUT_SIZE),
        (_BLOCK, 2, 0, Access.LOAD, Priv.U, {}, 0x0E, ArmReason.NO_EL0),
        (_BLOCK | 0b11 << 6, 2, 0, Access.STORE, Priv.U, {}, 0x0E, ArmReason.READ_ONLY),
        (_BLOCK | 0b10 << 6, 2, 0, Access.STORE, Priv.S, {}, 0x0E, ArmReason.READ_ONLY),
        (_BLOCK | 0b01 << 6 | 1 << 54, 2, 0, Access.FETCH, Priv.U, {}, 0x0E, ArmReason.UXN),
        (_BLOCK | 1 << 53, 2, 0, Access.FETCH, Priv.S, {}, 0x0E, ArmReason.PXN),
        (_BLOCK | 0b01 << 6, 2, 0, Access.FETCH, Priv.S, {}, 0x0E, ArmReason.EL0_WRITABLE),
        (_BLOCK, 2, 0, Access.FETCH, Priv.S, {"wxn": True}, 0x0E, ArmReason.WXN),
        (_BLOCK | 0b11 << 6, 2, 0, Access.LOAD, Priv.S, {"pan": True}, 0x0E, ArmReason.PAN),
        (_BLOCK | 0b01 << 6, 2, 1 << 61, Access.LOAD, Priv.U, {}, 0x0E, ArmReason.NO_EL0),
        (_BLOCK | 0b01 << 6, 2, 1 << 62, Access.STORE, Priv.U, {}, 0x0E, ArmReason.READ_ONLY),
        (_BLOCK | 0b11 << 6, 2, 1 << 60, Access.FETCH, Priv.U, {}, 0x0E, ArmReason.UXN),
        (_BLOCK, 2, 1 << 59, Access.FETCH, Priv.S, {}, 0x0E, ArmReason.PXN),
        (_BLOCK, 2, 1 << 40, Access.LOAD, Priv.S, {"pa_bits": 40}, 0x01, ArmReason.TABLE_SIZE),
        (_PAGE | 0b01 << 6, 3, 0, Access.STORE, Priv.U, {}, None, None),
    ],
)
def test_arm_golden_faults(leaf, level, l1_bits, access, priv, extra, code, reason):
    mem, ctl = _arm_tables(leaf, l1_bits, level)
    ctl = ArmControl(**{**{f: getattr(ctl, f) for f in ArmControl.__slots__}, **extra})
    result = walk_arm(mem, VA, access, priv, ctl=ctl)
    if reason is None:
        assert result.ok and result.pa == 0x4000_0234 and result.page_size == 0x1000
        return
    assert (result.fault.code, result.fault.reason) == (code, reason.value)
    abort = "instruction abort" if access is Access.FETCH else "data abort"
    assert result.fault.summary.startswith(f"{abort} from {'EL0' if priv is Priv.U else 'EL1'}: ")


def test_arm_golden_syndromes_and_the_other_stops():
    mem, ctl = _arm_tables(_BLOCK | 0b11 << 6)
    # ESR_EL1: EC 0x24 (data abort from EL0), IL, WnR for a write, DFSC permission level 2
    result = walk_arm(mem, VA, Access.STORE, Priv.U, ctl=ctl)
    assert result.fault.syndrome == 0x24 << 26 | 1 << 25 | 1 << 6 | 0x0E
    result = walk_arm(mem, VA, Access.FETCH, Priv.S, ctl=ArmControl(ttbr0=B, wxn=False))
    assert result.ok  # AP=11 is read-only everywhere, so EL1 may execute it
    # a VA in neither half: translation fault, level 0, no descriptor read
    result = walk_arm(mem, 0x0001_0000_0000_0000, Access.LOAD, Priv.S, ctl=ctl)
    assert (result.fault.code, result.steps) == (0x04, [])
    # TTBR above the PA size: address size fault, level 0
    result = walk_arm(mem, VA, Access.LOAD, Priv.S, ctl=ArmControl(ttbr0=B | 1 << 41, pa_bits=40))
    assert result.fault.code == 0x00
    # a descriptor outside memory: external abort on the walk, at its level
    result = walk_arm(Mem({B: 0x7000_0000 | 3}), VA, Access.LOAD, Priv.S, ctl=ctl)
    assert result.fault.code == 0x15
    # blocks: none at level 0 (4 KiB) or level 1 (16 KiB, 64 KiB)
    result = walk_arm(Mem({B: 0x0 | 0x401}), VA, Access.LOAD, Priv.S, ctl=ctl)
    assert (result.fault.code, result.fault.reason) == (0x04, ArmReason.BLOCK_LEVEL.value)
    assert AARCH64_16K.start_level(48) == 0 and AARCH64_64K.start_level(48) == 1 and AARCH64_4K.start_level(39) == 1
    # HA=1: the hardware sets AF instead of faulting
    mem, _ = _arm_tables(_BLOCK & ~(1 << 10))
    result = walk_arm(mem, VA, Access.LOAD, Priv.S, ctl=ArmControl(ttbr0=B, ha=True), write_af=True)
    assert (
        result.ok and result.updates == [(B + 0x2008, _BLOCK & ~(1 << 10), _BLOCK)] and mem.words[B + 0x2008] == _BLOCK
    )
    # the contiguous hint changes nothing but the explanation
    plain, _ = _arm_tables(_PAGE, level=3)
    hinted, _ = _arm_tables(_PAGE | 1 << 52, level=3)
    a = walk_arm(plain, VA, Access.LOAD, Priv.S, ctl=ctl)
    b = walk_arm(hinted, VA, Access.LOAD, Priv.S, ctl=ctl)
    assert a.pa == b.pa == 0x4000_0234 and not a.notes
    assert "the translation is the same without it" in b.notes[0] and "16 adjacent entries" in b.notes[0]
    # TTBR1 for the upper half, with T1SZ=25 (39-bit VAs: the walk starts at level 1)
    mem = Mem({B + 0x8000 + 0x1FF * 8: B + 0x9000 | 3, B + 0x9000 + 0x1FF * 8: 0x8000_0000 | 0x401 | 0b01 << 6})
    result = walk_arm(mem, 0xFFFF_FFFF_FFFF_F010, Access.LOAD, Priv.U, ctl=ArmControl(ttbr1=B + 0x8000, t1sz=25))
    assert result.ok and result.pa == 0x801F_F010 and [s.level for s in result.steps] == [1, 2]
    with pytest.raises(ConfigError, match="T0SZ=12 is out of range: 16 to 39"):
        walk_arm(mem, 0, Access.LOAD, Priv.S, ctl=ArmControl(t0sz=12))


# -- entries of random bits --------------------------------------------------------------------------------------


def _random_words(rng: random.Random, root: int, index_of, levels: int, addr_mask: int, frame: int) -> dict:
    """Each level's entry is 64 random bits, its address field pointing into RAM most of the time."""
    words, table = {}, root
    for level in range(levels):
        value = rng.getrandbits(64)
        if rng.random() < 0.8:
            value = value & ~addr_mask | RAM_BASE + rng.randrange(RAM_SIZE // frame) * frame
        value |= 1 if rng.random() < 0.9 else 0
        words[table + index_of(level) * 8] = value
        table = value & addr_mask & ~(frame - 1)
    return words


def test_entries_of_random_bits_agree_with_both_transcriptions():
    for seed in range(3000):
        rng = random.Random(f"bits:{seed}")
        fmt = rng.choice([X86_64, X86_64_5LEVEL])
        ctl = X86Control(
            nxe=rng.random() < 0.7, wp=rng.random() < 0.5, smep=rng.random() < 0.5, smap=rng.random() < 0.5,
            ac=rng.random() < 0.5, pke=rng.random() < 0.5, pkru=rng.getrandbits(32), maxphyaddr=52,
        )  # fmt: skip
        va = fmt.canonical(rng.getrandbits(fmt.va_bits))
        words = _random_words(
            rng,
            RAM_BASE,
            lambda i, fmt=fmt, va=va: fmt.index(va, fmt.levels - 1 - i),
            fmt.levels,
            (1 << 52) - 1 & ~0xFFF,
            0x1000,
        )
        case = (fmt, words, RAM_BASE, va, rng.choice(list(Access)), rng.choice([Priv.U, Priv.S]), ctl)
        got = _x86_outcome(walk_x86(Mem(case[1]), case[2], case[3], case[4], case[5], fmt=case[0], ctl=case[6]))
        assert got == _x86_spec(*case), f"x86 seed {seed}"

        granule = rng.choice([AARCH64_4K, AARCH64_16K, AARCH64_64K])
        g = granule.shift
        ctl_arm = ArmControl(ttbr0=RAM_BASE, ha=rng.random() < 0.5, wxn=rng.random() < 0.5, pan=rng.random() < 0.5)
        va = rng.getrandbits(48)
        start = granule.start_level(48)

        def index_of(i: int, va: int = va, start: int = start, granule: Granule = granule) -> int:
            low = granule.level_shift(start + i)
            return (va >> low) & ((1 << (min(48, low + granule.stride) - low)) - 1)

        words = _random_words(rng, RAM_BASE, index_of, 4 - start, (1 << 48) - 1 & ~((1 << g) - 1), 1 << g)
        arm_case = (granule, words, va, rng.choice(list(Access)), rng.choice([Priv.U, Priv.S]), ctl_arm)
        got = _arm_outcome(walk_arm(Mem(words), va, arm_case[3], arm_case[4], granule=granule, ctl=ctl_arm))
        assert got == _arm_spec(*arm_case), f"arm seed {seed}"
