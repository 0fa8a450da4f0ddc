"""Two-stage translation (hwsim.mmu.twostage) against the transcription in ``spec_walk_2stage.py``.

Random VS-stage and G-stage table pairs are built in a small RAM as a guest and a hypervisor would
build them, then broken in a few random places (flag bits, reserved bits, PPNs, whole PTEs), so the
walks fault at every step of both stages; outcome, cause, stage, htval, GPA, PA, the number of PTE
reads and the RAM afterwards (A/D updates) must agree.
"""

from __future__ import annotations

import random
import struct
from collections import Counter

import pytest
from spec_walk_2stage import spec_two_stage

from hwsim.errors import BusError
from hwsim.mmu.bits import SV39, SV39X4, SV48, SV48X4, PagingMode, hgatp_fields, make_hgatp, make_satp
from hwsim.mmu.twostage import GuestReason, Purpose, Stage, walk_two_stage
from hwsim.mmu.walker import AdPolicy, FaultReason, walk
from hwsim.riscv.priv import Access, Cause, Priv

RAM_BASE = 0x8000_0000
FRAMES = 96
V, R, W, X, U, G, A, D = 1, 2, 4, 8, 16, 32, 64, 128


class ByteRam:
    """A bytearray as supervisor-physical memory at RAM_BASE."""

    def __init__(self, ram: bytearray) -> None:
        self.ram = ram

    def _off(self, pa: int) -> int:
        off = pa - RAM_BASE
        if off < 0 or off + 8 > len(self.ram):
            raise BusError("outside", address=pa, size=8)
        return off

    def read_u64(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.ram, self._off(pa))[0]

    def write_u64(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.ram, self._off(pa), value)


class Case:
    """A random two-stage setup: RAM, vsatp, hgatp and one access."""

    def __init__(self, seed: int) -> None:
        rng = self.rng = random.Random(seed)
        self.ram = bytearray(FRAMES * 4096)
        self.mem = ByteRam(self.ram)
        self.g_mode: PagingMode | None = rng.choice([SV39X4] * 6 + [SV48X4] * 2 + [None])
        self.vs_mode: PagingMode | None = rng.choice([SV39] * 6 + [SV48] * 2 + [None])
        group = rng.randrange(FRAMES // 4)
        self.g_root = RAM_BASE + group * 4 * 4096
        self.free = [f for f in range(FRAMES) if f // 4 != group]
        rng.shuffle(self.free)
        self.ptes: list[int] = []  # physical addresses of the PTEs written
        self.mapped: dict[int, int] = {}  # guest page -> host address of its frame
        self.access = rng.choice(list(Access))
        self.priv = rng.choice([Priv.U, Priv.S])
        self.sum, self.mxr, self.vs_mxr = (rng.random() < 0.5, rng.random() < 0.2, rng.random() < 0.2)
        self.ad = rng.choice([AdPolicy.UPDATE, AdPolicy.UPDATE, AdPolicy.FAULT, AdPolicy.REPORT])
        self.build()

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * 4096

    def put(self, pa: int, value: int) -> None:
        struct.pack_into("<Q", self.ram, pa - RAM_BASE, value)
        self.ptes.append(pa)

    def get(self, pa: int) -> int:
        return struct.unpack_from("<Q", self.ram, pa - RAM_BASE)[0]

    def leaf_flags(self, need: int) -> int:
        flags = V | need | U | A | D
        if self.rng.random() < 0.3:
            flags |= self.rng.choice([R, W | R, X, R | X])
        return flags

    def g_map(self, gpa: int, host: int, need: int = R | W) -> None:
        """Map the guest page at ``gpa`` to the host frame ``host`` in the G-stage (a 4 KiB leaf or a 2 MiB one)."""
        mode = self.g_mode
        if mode is None or gpa >> 12 in self.mapped:
            return
        table = self.g_root
        for level in range(mode.levels - 1, -1, -1):
            addr = table + mode.vpn(gpa, level) * 8
            pte = self.get(addr)
            if level == 1 and pte == 0 and self.rng.random() < 0.15 and not self.free_low(host):
                # a 2 MiB G-stage leaf over this gpa: misaligned unless the host address happens to be aligned
                self.put(addr, ((host >> 12) << 10) | self.leaf_flags(need))
                self.mapped[gpa >> 12] = host
                return
            if level == 0:
                if pte == 0:
                    self.put(addr, ((host >> 12) << 10) | self.leaf_flags(need))
                self.mapped[gpa >> 12] = host
                return
            if pte == 0:
                if not self.free:
                    return
                child = self.frame()
                self.put(addr, ((child >> 12) << 10) | V)
                table = child
            elif pte & (R | X):
                return  # already mapped by a superpage
            else:
                table = ((pte >> 10) & ((1 << 44) - 1)) << 12
                if not RAM_BASE <= table < RAM_BASE + len(self.ram):
                    return

    def free_low(self, host: int) -> bool:
        return bool(host & 0x1FFFFF)

    def table_gpa(self) -> tuple[int, int]:
        """A VS-stage table: its guest-physical address and the host frame holding it."""
        host = self.frame()
        if self.g_mode is None:
            return host, host
        width = self.g_mode.va_bits
        gpa = self.rng.choice([self.rng.randrange(1 << width), self.rng.randrange(1 << 31), host]) & ~0xFFF
        self.g_map(gpa, host, R)
        return gpa, host

    def build(self) -> None:
        rng = self.rng
        vs = self.vs_mode
        va_bits = vs.va_bits if vs else (self.g_mode.va_bits if self.g_mode else 39)
        self.va = rng.randrange(1 << va_bits) & ~7
        if vs is not None:
            self.va = vs.canonical(self.va)
        self.vs_root = 0
        if vs is not None:
            self.vs_root, host = self.table_gpa()
            leaf_level = rng.choice([0, 0, 0, 1, 2])
            for level in range(vs.levels - 1, -1, -1):
                index = vs.vpn(self.va, level) * 8
                if level == leaf_level:
                    page = vs.page_size(level)
                    gpa_page = rng.randrange(1 << 34) & ~(page - 1)
                    need = {Access.FETCH: X, Access.LOAD: R, Access.STORE: R | W}[self.access]
                    flags = V | need | (U if self.priv is Priv.U or rng.random() < 0.3 else 0)
                    flags |= rng.choice([0, A, A | D, A | D])
                    self.put(host + index, ((gpa_page >> 12) << 10) | flags)
                    self.gpa = gpa_page | (self.va & (page - 1))
                    break
                child_gpa, child_host = self.table_gpa() if self.free else (0, RAM_BASE)
                self.put(host + index, ((child_gpa >> 12) << 10) | V)
                host = child_host
        else:
            self.gpa = self.va
        if self.free:
            need = {Access.FETCH: X, Access.LOAD: R, Access.STORE: R | W}[self.access]
            self.g_map(self.gpa & ~0xFFF, rng.choice([self.frame(), rng.randrange(1 << 40) & ~0xFFF]), need)
        # Break a few things.
        for _ in range(rng.choice([0, 0, 1, 1, 2, 3])):
            if not self.ptes:
                break
            addr = rng.choice(self.ptes)
            bit = rng.choice([V, R, W, X, U, A, D, G, 1 << 54, 1 << 63, 1 << 10, 1 << 19, 1 << 30, 1 << 45])
            value = 0 if rng.random() < 0.1 else self.get(addr) ^ bit
            struct.pack_into("<Q", self.ram, addr - RAM_BASE, value)
        if rng.random() < 0.03:
            self.va ^= 1 << rng.randrange(38, 64)
        self.vsatp = make_satp(vs, self.vs_root >> 12, rng.randrange(4))
        self.hgatp = make_hgatp(self.g_mode, self.g_root >> 12, rng.randrange(4))


def run_hwsim(case: Case, ram: bytearray):
    vs_mode = case.vs_mode
    g_mode = case.g_mode
    return walk_two_stage(
        ByteRam(ram),
        case.va,
        case.access,
        case.priv,
        vs_mode=vs_mode,
        vs_root=(case.vsatp & ((1 << 44) - 1)) << 12,
        g_mode=g_mode,
        g_root=hgatp_fields(case.hgatp)[2] << 12,
        sum=case.sum,
        mxr=case.mxr,
        vs_mxr=case.vs_mxr,
        ad=case.ad,
    )


def run_spec(case: Case, ram: bytearray) -> dict:
    return spec_two_stage(
        ram,
        RAM_BASE,
        case.vsatp,
        case.hgatp,
        case.va,
        case.access.value,
        case.priv.name,
        case.sum,
        case.mxr,
        case.vs_mxr,
        case.ad.value,
    )


def compare(seed: int) -> tuple:
    case = Case(seed)
    ram_h, ram_s = bytearray(case.ram), bytearray(case.ram)
    got = run_hwsim(case, ram_h)
    want = run_spec(case, ram_s)
    where = f"seed {seed}"
    assert ("ok" if got.ok else "fault") == want["result"], (where, got.fault, want)
    assert got.pte_reads == want["reads"], (where, got.pte_reads, want)
    if got.ok:
        assert (got.gpa, got.pa) == (want["gpa"], want["pa"]), where
        key: tuple = ("ok",)
    else:
        f = got.fault
        assert f is not None
        assert int(f.cause) == want["cause"], (where, f, want)
        assert f.stage.name == want["stage"], (where, f, want)
        assert f.htval == want["htval"], (where, f, want)
        key = (f.stage.name, f.reason.name, f.purpose.name if f.purpose else None, f.vs_level)
    assert ram_h == ram_s, where  # the same A/D updates, or none
    if case.ad is not AdPolicy.UPDATE:
        assert ram_h == case.ram, where
    return key


def test_random_table_pairs_agree_with_the_transcription():
    seen: Counter = Counter()
    for seed in range(6000):
        seen[compare(seed)] += 1
    # Faults at every step: both stages, every purpose of a G-stage walk, every VS level.
    stages = {k[0] for k in seen}
    assert {"ok", "VS", "G"} <= stages, seen
    purposes = {k[2] for k in seen if k[0] == "G"}
    assert {"VS_PTE", "AD_WRITE", "FINAL"} <= purposes, seen
    assert {k[3] for k in seen if k[0] == "G" and k[2] == "VS_PTE"} >= {0, 1, 2}, seen
    reasons = {k[1] for k in seen if k[0] == "G"}
    for reason in ("INVALID", "GPA_TOO_WIDE", "USER_PAGE_FROM_U", "NOT_WRITABLE", "PTE_ACCESS", "RESERVED_BITS"):
        assert reason in reasons, (reason, seen)
    assert seen[("ok",)] > 500, seen


# -- hand-built walks with exact numbers ------------------------------------------------------------------------


def _identity_setup(g_leaf_flags: int = V | R | W | X | U | A | D):
    """Sv39 over Sv39x4: guest tables at GPAs 0x1000-0x3000, data at GPA 0x4000; G maps GPA page n to host frame."""
    ram = bytearray(FRAMES * 4096)
    mem = ByteRam(ram)
    g_root = RAM_BASE  # 16 KiB: frames 0-3
    g_l1, g_l0 = RAM_BASE + 0x4000, RAM_BASE + 0x5000
    host = {n: RAM_BASE + (0x10 + n) * 0x1000 for n in range(5)}  # guest page n -> host frame
    mem.write_u64(g_root + 0 * 8, ((g_l1 >> 12) << 10) | V)
    mem.write_u64(g_l1 + 0 * 8, ((g_l0 >> 12) << 10) | V)
    for n, h in host.items():
        mem.write_u64(g_l0 + n * 8, ((h >> 12) << 10) | g_leaf_flags)
    # VS tables: root at GPA 0x1000 -> 0x2000 -> 0x3000 -> data GPA 0x4000; va 0x40201000... use vpn (1, 1, 1)
    va = (1 << 30) | (1 << 21) | (1 << 12) | 0x234
    mem.write_u64(host[1] + 8, (0x2 << 10) | V)
    mem.write_u64(host[2] + 8, (0x3 << 10) | V)
    mem.write_u64(host[3] + 8, (0x4 << 10) | V | R | W | A | D)
    return mem, va, g_root, host


def test_sv39_over_sv39x4_takes_fifteen_reads():
    mem, va, g_root, host = _identity_setup()
    r = walk_two_stage(mem, va, Access.LOAD, Priv.S, vs_mode=SV39, vs_root=0x1000, g_mode=SV39X4, g_root=g_root)
    assert r.ok and r.gpa == 0x4234 and r.pa == host[4] + 0x234
    assert r.pte_reads == 15 and r.g_pte_reads == 12
    assert [w.purpose for w in r.g_walks] == [Purpose.VS_PTE] * 3 + [Purpose.FINAL]
    assert [w.vs_level for w in r.g_walks] == [2, 1, 0, None]


def test_vs_ad_write_is_a_g_stage_store():
    mem, va, g_root, host = _identity_setup()
    mem.write_u64(host[3] + 8, (0x4 << 10) | V | R | W)  # A and D clear: the walk writes them
    r = walk_two_stage(mem, va, Access.STORE, Priv.S, vs_mode=SV39, vs_root=0x1000, g_mode=SV39X4, g_root=g_root)
    assert r.ok and r.pte_reads == 18  # 15 plus a G-stage walk for the A/D write
    assert [w.purpose for w in r.g_walks][-2:] == [Purpose.AD_WRITE, Purpose.FINAL]
    assert mem.read_u64(host[3] + 8) & (A | D) == A | D
    # The G-stage page holding that VS table is read-only: the A/D write is a store guest-page fault.
    mem.write_u64(host[3] + 8, (0x4 << 10) | V | R | W)
    mem.write_u64(RAM_BASE + 0x5000 + 3 * 8, ((host[3] >> 12) << 10) | V | R | U | A | D)
    r = walk_two_stage(mem, va, Access.LOAD, Priv.S, vs_mode=SV39, vs_root=0x1000, g_mode=SV39X4, g_root=g_root)
    f = r.fault
    assert f is not None and f.cause is Cause.LOAD_GUEST_PAGE_FAULT  # reported for the original access
    assert (f.stage, f.reason, f.purpose, f.vs_level, f.htval) == (
        Stage.G,
        FaultReason.NOT_WRITABLE,
        Purpose.AD_WRITE,
        0,
        (0x3000 + 8) >> 2,
    )
    assert mem.read_u64(host[3] + 8) & A == 0  # nothing written


def test_g_stage_leaves_need_u():
    mem, va, g_root, host = _identity_setup(V | R | W | X | A | D)
    r = walk_two_stage(mem, va, Access.FETCH, Priv.S, vs_mode=SV39, vs_root=0x1000, g_mode=SV39X4, g_root=g_root)
    f = r.fault
    assert f is not None and f.cause is Cause.FETCH_GUEST_PAGE_FAULT
    assert (f.stage, f.reason, f.level, f.vs_level, f.purpose) == (
        Stage.G,
        FaultReason.USER_PAGE_FROM_U,
        0,
        2,
        Purpose.VS_PTE,
    )
    assert f.htval == (0x1000 + 8) >> 2 and r.pte_reads == 3


def test_gpa_above_41_bits_is_a_guest_page_fault():
    mem, va, g_root, host = _identity_setup()
    r = walk_two_stage(mem, 0x4234, Access.LOAD, Priv.U, vs_mode=None, vs_root=0, g_mode=SV39X4, g_root=g_root)
    assert r.ok and r.pa == host[4] + 0x234 and r.pte_reads == 3  # vsatp Bare: the VA is the GPA
    r = walk_two_stage(mem, 1 << 41, Access.LOAD, Priv.U, vs_mode=None, vs_root=0, g_mode=SV39X4, g_root=g_root)
    f = r.fault
    assert f is not None and (f.reason, f.cause, f.htval, r.pte_reads) == (
        GuestReason.GPA_TOO_WIDE,
        Cause.LOAD_GUEST_PAGE_FAULT,
        (1 << 41) >> 2,
        0,
    )
    # bits 40:39 are part of the wider vpn[2]: index 0x400 of the 16 KiB root table
    mem.write_u64(g_root + 0x400 * 8, (0x80000 << 10) | V | R | W | U | A | D)
    r = walk_two_stage(mem, 1 << 40, Access.LOAD, Priv.U, vs_mode=None, vs_root=0, g_mode=SV39X4, g_root=g_root)
    assert r.ok and r.pa == 0x8000_0000 and r.pte_reads == 1


def test_x4_modes_as_data_leave_sv39_alone():
    assert (SV39X4.va_bits, SV48X4.va_bits, SV39.va_bits) == (41, 50, 39)
    assert SV39X4.root_table_size == 16384 and SV39.root_table_size == 4096
    assert SV39X4.vpn(0x1FF_FFFF_FFFF, 2) == 0x7FF and SV39.vpn(0x1FF_FFFF_FFFF, 2) == 0x1FF
    assert SV39X4.is_canonical((1 << 41) - 1) and not SV39X4.is_canonical(1 << 41)
    assert not SV39X4.is_canonical(SV39.canonical(1 << 38))
    assert hgatp_fields(make_hgatp(SV39X4, 0x80007, vmid=5)) == (8, 5, 0x80004)


def test_g_mode_must_be_x4_and_root_aligned():
    mem, va, g_root, host = _identity_setup()
    with pytest.raises(ValueError, match="16 KiB-aligned"):
        walk_two_stage(mem, va, Access.LOAD, vs_mode=SV39, vs_root=0x1000, g_mode=SV39, g_root=g_root)
    with pytest.raises(ValueError, match="16 KiB-aligned"):
        walk_two_stage(mem, va, Access.LOAD, vs_mode=SV39, vs_root=0x1000, g_mode=SV39X4, g_root=g_root + 0x1000)


def test_plain_walk_on_an_x4_mode_is_the_g_stage():
    mem, va, g_root, host = _identity_setup()
    r = walk(mem, g_root, 0x4234, Access.LOAD, Priv.U, mode=SV39X4)
    assert r.ok and r.translation is not None and r.translation.pa == host[4] + 0x234
