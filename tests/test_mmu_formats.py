"""x86-64 and AArch64 walks (hwsim.mmu.x86_walk, arm_walk) against the independent transcriptions
tests/spec_walk_x86.py (Intel SDM) and tests/spec_walk_arm.py (Arm ARM), on random tables, and
golden cases for every kind of fault."""

from __future__ import annotations

import random

from spec_walk_arm import spec_translate_arm
from spec_walk_x86 import spec_translate_x86

from hwsim.errors import BusError
from hwsim.mmu.arm_bits import AARCH64_4K, AARCH64_16K, AARCH64_64K
from hwsim.mmu.arm_walk import ArmControl, walk_arm
from hwsim.mmu.x86_bits import X86_64, X86_64_5LEVEL
from hwsim.mmu.x86_walk import X86Control, walk_x86
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
