"""Sv57, Svnapot and Svpbmt in the walker (teaching only) against the transcription in ``spec_walk_ext.py``,
on random tables with N and PBMT bits sprinkled over leaves and pointers at every level."""

from __future__ import annotations

import random
import struct
from collections import Counter

from spec_walk_ext import spec_translate_ext
from test_mmu_twostage import ByteRam

from hwsim.mmu.bits import PAGING_MODES, SV39, SV48, SV57, TEACHING_MODES, make_pte, make_satp
from hwsim.mmu.walker import NAPOT_SIZE, AdPolicy, FaultReason, walk
from hwsim.riscv.priv import Access, Priv

RAM_BASE = 0x8000_0000
FRAMES = 32
V, R, W, X, U, A, D = 1, 2, 4, 8, 16, 64, 128
N, PBMT_NC, PBMT_IO, PBMT_RES = 1 << 63, 1 << 61, 2 << 61, 3 << 61


def build(seed: int):
    rng = random.Random(seed)
    mode = rng.choice([SV39, SV48, SV57, SV57])
    ram = bytearray(FRAMES * 4096)
    frames = list(range(FRAMES))
    rng.shuffle(frames)
    va = mode.canonical(rng.randrange(1 << mode.va_bits) & ~7)
    root = RAM_BASE + frames.pop() * 4096
    leaf_level = rng.choice([0, 0, 0, 1, 2, rng.randrange(mode.levels)])
    table = root
    written = []
    for level in range(mode.levels - 1, -1, -1):
        addr = table + mode.vpn(va, level) * 8
        if level == leaf_level:
            ppn = rng.randrange(0x80000, 0x100000) & ~((1 << (9 * level)) - 1)
            if level == 0 and rng.random() < 0.4:  # a NAPOT candidate
                ppn = (ppn & ~0xF) | rng.choice([0x8, 0x8, 0x8, 0x4, 0xC, 0x0])
            flags = V | rng.choice([R, R | W, X, R | X, R | W | X]) | rng.choice([0, U]) | rng.choice([0, A, A | D])
            pte = make_pte(ppn, flags)
            if rng.random() < 0.5:
                pte |= N
            if rng.random() < 0.5:
                pte |= rng.choice([PBMT_NC, PBMT_IO, PBMT_IO, PBMT_RES])
            struct.pack_into("<Q", ram, addr - RAM_BASE, pte)
            written.append(addr)
            break
        child = RAM_BASE + frames.pop() * 4096
        pte = make_pte(child >> 12, V)
        if rng.random() < 0.06:
            pte |= rng.choice([N, PBMT_NC, PBMT_IO, 1 << 55])
        struct.pack_into("<Q", ram, addr - RAM_BASE, pte)
        written.append(addr)
        table = child
    if rng.random() < 0.1:  # a leaf's reserved bits 60:54
        addr = written[-1]
        struct.pack_into("<Q", ram, addr - RAM_BASE, struct.unpack_from("<Q", ram, addr - RAM_BASE)[0] | 1 << 58)
    access = rng.choice(list(Access))
    priv = rng.choice([Priv.U, Priv.S])
    return (
        mode,
        ram,
        make_satp(mode, root >> 12),
        va,
        access,
        priv,
        rng.random() < 0.5,
        rng.random() < 0.3,
        (
            rng.random() < 0.8,
            rng.random() < 0.8,
        ),
    )


def test_random_tables_agree_with_the_transcription():
    seen: Counter = Counter()
    for seed in range(8000):
        mode, ram, satp, va, access, priv, sum_, mxr, (napot, pbmt) = build(seed)
        root = (satp & ((1 << 44) - 1)) << 12
        mine = bytearray(ram)
        got = walk(
            ByteRam(mine),
            root,
            va,
            access,
            priv,
            mode=mode,
            sum=sum_,
            mxr=mxr,
            ad=AdPolicy.UPDATE,
            svnapot=napot,
            svpbmt=pbmt,
        )
        want = spec_translate_ext(bytes(ram), RAM_BASE, satp, va, access.value, priv.name, sum_, mxr, napot, pbmt)
        if want[0] == "ok":
            tr = got.translation
            assert tr is not None, (seed, got.fault, got.steps)
            assert (tr.pa, tr.page_size) == (want[1], want[2]), seed
            seen[(mode.name, "napot" if tr.page_size == NAPOT_SIZE else f"ok{tr.level}")] += 1
        else:
            assert got.fault is not None and int(got.fault.cause) == want[1], (seed, got.translation, want)
            seen[(mode.name, got.steps[-1].code if got.steps else "none")] += 1
    codes = {code for _, code in seen}
    assert {"napot", "ok0", "ok1", "ok2", "pbmt_reserved", "napot_reserved", "reserved_bits", "denied"} <= codes
    assert {("Sv57", f"ok{level}") for level in range(5)} <= set(seen), seen


def test_napot_page_takes_ppn_bits_3_0_from_the_va():
    ram = bytearray(4 * 4096)
    mem = ByteRam(ram)
    root, l1, l0 = RAM_BASE, RAM_BASE + 0x1000, RAM_BASE + 0x2000
    mem.write_u64(root, make_pte(l1 >> 12, V))
    mem.write_u64(l1, make_pte(l0 >> 12, V))
    va = 0x0000_5000 | 0x123  # vpn[0] = 5
    mem.write_u64(l0 + 5 * 8, make_pte(0x90008, V | R | A) | N)
    r = walk(mem, root, va, Access.LOAD, Priv.S, svnapot=True)
    assert r.translation is not None and r.translation.pa == 0x9000_5123 and r.translation.page_size == 0x10000
    assert r.steps[-1].decision == "leaf (64 KiB NAPOT page) -A----RV: load allowed"
    r = walk(mem, root, va, Access.LOAD, Priv.S)  # without Svnapot: bit 63 is reserved
    assert r.fault is not None and r.fault.reason is FaultReason.RESERVED_BITS and r.steps[-1].code == "reserved_bits"
    mem.write_u64(l0 + 5 * 8, make_pte(0x90004, V | R | A) | N)  # 32 KiB: not a supported size
    r = walk(mem, root, va, Access.LOAD, Priv.S, svnapot=True)
    assert r.fault is not None and r.steps[-1].decision.startswith("leaf with N=1 at level 0, PPN bits 3:0 = 0b0100")


def test_pbmt_values():
    ram = bytearray(4 * 4096)
    mem = ByteRam(ram)
    root, l1 = RAM_BASE, RAM_BASE + 0x1000
    mem.write_u64(root, make_pte(l1 >> 12, V))
    for value, ok in ((0, True), (PBMT_NC, True), (PBMT_IO, True), (PBMT_RES, False)):
        mem.write_u64(l1, make_pte(0x80200, V | R | A) | value)
        r = walk(mem, root, 0x1234, Access.LOAD, Priv.S, svpbmt=True)
        assert r.ok is ok
    assert r.steps[-1].decision == "leaf with PBMT=3: a reserved encoding (Svpbmt) -> page fault"
    mem.write_u64(root, make_pte(l1 >> 12, V) | PBMT_NC)  # PBMT in a pointer is reserved
    mem.write_u64(l1, make_pte(0x80200, V | R | A))
    r = walk(mem, root, 0x1234, Access.LOAD, Priv.S, svpbmt=True)
    assert r.fault is not None and r.steps[-1].code == "reserved_bits" and r.fault.level == 2


def test_sv57_is_a_teaching_mode_only():
    assert SV57.va_bits == 57 and SV57.page_size(4) == 1 << 48
    assert 10 in TEACHING_MODES and 10 not in PAGING_MODES
