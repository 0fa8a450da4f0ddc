"""hwsim.mmu.walker: each rule of the specification's translation process, one test each."""

from __future__ import annotations

import pytest

from hwsim.machine.physmem import PhysicalMemory
from hwsim.mmu import AdPolicy, FaultReason, Pte, walk
from hwsim.mmu.bits import SV39, SV48, make_pte
from hwsim.mmu.report import format_walk, walk_to_json
from hwsim.riscv.priv import Access, Cause, Priv

RAM = 0x8000_0000
ROOT = RAM
L1 = RAM + 0x1000
L0 = RAM + 0x2000
PAGE = RAM + 0x10_0000  # a data frame


@pytest.fixture
def mem():
    phys = PhysicalMemory()
    phys.add_ram(RAM, 4 << 20)
    return phys


def ptr(table: int) -> int:
    return make_pte(table >> 12, Pte.V)


def leaf(pa: int, flags: int) -> int:
    return make_pte(pa >> 12, Pte.V | flags)


def set_path(mem, va: int, leaf_pte: int, level: int = 0) -> None:
    """Root -> L1 -> L0 tables for ``va`` with ``leaf_pte`` at ``level``."""
    tables = [ROOT, L1, L0]
    for lvl, table in zip((2, 1, 0), tables):
        addr = table + 8 * SV39.vpn(va, lvl)
        if lvl == level:
            mem.write_u64(addr, leaf_pte)
            return
        mem.write_u64(addr, ptr(tables[3 - lvl]))


def tr(mem, va, access=Access.LOAD, priv=Priv.U, **kw):
    return walk(mem, ROOT, va, access, priv, **kw)


RWXUAD = Pte.R | Pte.W | Pte.X | Pte.U | Pte.A | Pte.D


def test_4k_leaf_translates_and_records_every_level(mem):
    set_path(mem, 0x12345678, leaf(PAGE, RWXUAD))
    r = tr(mem, 0x12345678)
    assert r.ok and r.fault is None
    assert r.translation.pa == PAGE + 0x678
    assert (r.translation.level, r.translation.page_size) == (0, 4096)
    assert [s.level for s in r.steps] == [2, 1, 0]
    assert r.steps[0].pte_addr == ROOT + 8 * SV39.vpn(0x12345678, 2)
    assert r.steps[0].decision == f"pointer to the level-1 table at {L1:#x}"
    assert r.steps[2].decision == "leaf (4 KiB page) DAGUXWRV".replace("G", "-") + ": load allowed"


@pytest.mark.parametrize("level,size", [(1, 2 << 20), (2, 1 << 30)])
def test_superpages_take_low_bits_from_the_va(mem, level, size):
    va = 0x4000_0000 + 3 * size // 4 + 0x123 if level == 1 else 0x1_4000_0000 + 0x2345_6789
    set_path(mem, va, leaf(RAM if level == 2 else RAM + 0x20_0000, RWXUAD), level=level)
    r = tr(mem, va)
    assert r.ok
    assert r.translation.level == level and r.translation.page_size == size
    base = RAM if level == 2 else RAM + 0x20_0000
    assert r.translation.pa == base + (va & (size - 1))
    assert len(r.steps) == 3 - level


@pytest.mark.parametrize("level", [1, 2])
def test_misaligned_superpage_faults(mem, level):
    set_path(mem, 0x4000_0000, leaf(RAM + 0x1000, RWXUAD), level=level)
    r = tr(mem, 0x4000_0000)
    assert r.fault.reason is FaultReason.MISALIGNED_SUPERPAGE
    assert r.fault.level == level
    assert r.fault.cause is Cause.LOAD_PAGE_FAULT
    assert "not aligned to its size" in r.steps[-1].decision


@pytest.mark.parametrize("level", [2, 1, 0])
def test_invalid_pte_faults_at_its_level(mem, level):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    table = {2: ROOT, 1: L1, 0: L0}[level]
    mem.write_u64(table + 8 * SV39.vpn(0x5000, level), 0xFFFF_FFFF_FFFF_FFFE)  # everything but V
    r = tr(mem, 0x5000, Access.STORE)
    assert r.fault.reason is FaultReason.INVALID
    assert (r.fault.level, r.fault.cause) == (level, Cause.STORE_PAGE_FAULT)
    assert r.fault.message == "PTE is not valid (V=0)"


@pytest.mark.parametrize("flags", [Pte.W, Pte.W | Pte.X, Pte.W | Pte.U | Pte.A | Pte.D])
def test_write_without_read_is_reserved(mem, flags):
    set_path(mem, 0x5000, leaf(PAGE, flags))
    r = tr(mem, 0x5000)
    assert r.fault.reason is FaultReason.WRITE_NO_READ
    assert r.steps[-1].decision == "R=0 W=1: reserved encoding -> page fault"


@pytest.mark.parametrize("bit", range(54, 64))
def test_each_reserved_high_bit_faults(mem, bit):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD) | 1 << bit)
    assert tr(mem, 0x5000).fault.reason is FaultReason.RESERVED_BITS


def test_reserved_high_bits_in_a_pointer_fault_too(mem):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    mem.write_u64(ROOT, ptr(L1) | 1 << 61)
    r = tr(mem, 0x5000)
    assert (r.fault.reason, r.fault.level) == (FaultReason.RESERVED_BITS, 2)


def test_rsw_bits_are_for_software_and_ignored(mem):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD) | 0x300)
    assert tr(mem, 0x5000).ok


@pytest.mark.parametrize("bit", [Pte.A, Pte.D, Pte.U])
def test_nonleaf_d_a_u_are_reserved(mem, bit):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    mem.write_u64(L1 + 8 * SV39.vpn(0x5000, 1), ptr(L0) | bit)
    r = tr(mem, 0x5000)
    assert (r.fault.reason, r.fault.level) == (FaultReason.NONLEAF_RESERVED, 1)


def test_global_bit_in_a_pointer_is_fine_and_propagates(mem):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    mem.write_u64(ROOT, ptr(L1) | Pte.G)
    r = tr(mem, 0x5000)
    assert r.ok and r.translation.global_


def test_pointer_at_the_last_level_faults(mem):
    set_path(mem, 0x5000, ptr(PAGE))
    r = tr(mem, 0x5000)
    assert (r.fault.reason, r.fault.level) == (FaultReason.NO_LEAF, 0)


@pytest.mark.parametrize("va", [1 << 38, 0x0000_8000_0000_0000, 0xFFFF_FFBF_FFFF_F000, 1 << 63])
def test_non_canonical_addresses_fault_before_any_read(mem, va):
    r = tr(mem, va, Access.FETCH)
    assert r.fault.reason is FaultReason.NON_CANONICAL
    assert r.fault.cause is Cause.FETCH_PAGE_FAULT
    assert r.steps == ()


def test_canonical_high_half_is_walked(mem):
    va = 0xFFFF_FFC0_0000_1000  # vpn[2] = 0x100
    set_path(mem, va, leaf(PAGE, RWXUAD))
    assert tr(mem, va).translation.pa == PAGE


@pytest.mark.parametrize(
    "access,flags,reason",
    [
        (Access.FETCH, Pte.R | Pte.W | Pte.U, FaultReason.NOT_EXECUTABLE),
        (Access.STORE, Pte.R | Pte.X | Pte.U, FaultReason.NOT_WRITABLE),
        (Access.LOAD, Pte.X | Pte.U, FaultReason.NOT_READABLE),
    ],
)
def test_rwx_permissions(mem, access, flags, reason):
    set_path(mem, 0x5000, leaf(PAGE, flags | Pte.A | Pte.D))
    assert tr(mem, 0x5000, access).fault.reason is reason


def test_mxr_makes_executable_pages_readable(mem):
    set_path(mem, 0x5000, leaf(PAGE, Pte.X | Pte.U | Pte.A))
    assert tr(mem, 0x5000, mxr=True).ok
    assert not tr(mem, 0x5000, Access.STORE, mxr=True).ok


def test_u_mode_cannot_touch_supervisor_pages(mem):
    set_path(mem, 0x5000, leaf(PAGE, Pte.R | Pte.W | Pte.X | Pte.A | Pte.D))
    for access in Access:
        assert tr(mem, 0x5000, access, Priv.U).fault.reason is FaultReason.USER_PAGE_FROM_U
        assert tr(mem, 0x5000, access, Priv.S).ok


def test_s_mode_and_user_pages_need_sum_and_never_fetch(mem):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    assert tr(mem, 0x5000, Access.LOAD, Priv.S).fault.reason is FaultReason.USER_PAGE_SUM
    assert tr(mem, 0x5000, Access.STORE, Priv.S).fault.reason is FaultReason.USER_PAGE_SUM
    assert tr(mem, 0x5000, Access.LOAD, Priv.S, sum=True).ok
    assert tr(mem, 0x5000, Access.STORE, Priv.S, sum=True).ok
    assert tr(mem, 0x5000, Access.FETCH, Priv.S, sum=True).fault.reason is FaultReason.USER_PAGE_FETCH


def test_m_mode_is_not_translated(mem):
    with pytest.raises(ValueError, match="M-mode accesses are not translated"):
        tr(mem, 0x5000, priv=Priv.M)


def test_hardware_sets_a_on_load_and_a_d_on_store(mem):
    set_path(mem, 0x5000, leaf(PAGE, Pte.R | Pte.W | Pte.U))
    pte_addr = L0 + 8 * 5
    r = tr(mem, 0x5000)
    assert r.ad_written and mem.read_u64(pte_addr) & (Pte.A | Pte.D) == Pte.A
    assert r.translation.pte & Pte.A
    assert r.steps[-1].decision.endswith("load allowed; set A")
    r = tr(mem, 0x5000, Access.STORE)
    assert r.ad_update == (
        pte_addr,
        leaf(PAGE, Pte.R | Pte.W | Pte.U | Pte.A),
        leaf(PAGE, Pte.R | Pte.W | Pte.U | Pte.A | Pte.D),
    )
    assert mem.read_u64(pte_addr) & Pte.D


def test_report_policy_never_writes(mem):
    set_path(mem, 0x5000, leaf(PAGE, Pte.R | Pte.W | Pte.U))
    before = mem.read_u64(L0 + 8 * 5)
    r = tr(mem, 0x5000, Access.STORE, ad=AdPolicy.REPORT)
    assert r.ok and not r.ad_written
    assert mem.read_u64(L0 + 8 * 5) == before
    assert r.steps[-1].decision.endswith("hardware would set AD (not written)")


def test_fault_policy_is_svade(mem):
    set_path(mem, 0x5000, leaf(PAGE, Pte.R | Pte.W | Pte.U))
    assert tr(mem, 0x5000, ad=AdPolicy.FAULT).fault.reason is FaultReason.ACCESSED_CLEAR
    set_path(mem, 0x5000, leaf(PAGE, Pte.R | Pte.W | Pte.U | Pte.A))
    assert tr(mem, 0x5000, ad=AdPolicy.FAULT).ok
    r = tr(mem, 0x5000, Access.STORE, ad=AdPolicy.FAULT)
    assert (r.fault.reason, r.fault.cause) == (FaultReason.DIRTY_CLEAR, Cause.STORE_PAGE_FAULT)


def test_pte_outside_ram_is_an_access_fault(mem):
    set_path(mem, 0x5000, leaf(PAGE, RWXUAD))
    mem.write_u64(ROOT, ptr(0x1000_0000))
    for access, cause in (
        (Access.LOAD, Cause.LOAD_ACCESS),
        (Access.STORE, Cause.STORE_ACCESS),
        (Access.FETCH, Cause.FETCH_ACCESS),
    ):
        r = tr(mem, 0x5000, access)
        assert (r.fault.reason, r.fault.cause, r.fault.level) == (FaultReason.PTE_ACCESS, cause, 1)
        assert r.fault.kind == "access fault"


def test_sv48_walks_four_levels_and_maps_512g_pages(mem):
    va = 0x0000_7F12_3456_7000
    l3, l2, l1, l0 = RAM, RAM + 0x1000, RAM + 0x2000, RAM + 0x3000
    mem.write_u64(l3 + 8 * SV48.vpn(va, 3), ptr(l2))
    mem.write_u64(l2 + 8 * SV48.vpn(va, 2), ptr(l1))
    mem.write_u64(l1 + 8 * SV48.vpn(va, 1), ptr(l0))
    mem.write_u64(l0 + 8 * SV48.vpn(va, 0), leaf(PAGE, RWXUAD))
    r = walk(mem, l3, va + 8, Access.LOAD, Priv.U, mode=SV48)
    assert [s.level for s in r.steps] == [3, 2, 1, 0] and r.translation.pa == PAGE + 8
    assert walk(mem, l3, 1 << 47, Access.LOAD, Priv.U, mode=SV48).fault.reason is FaultReason.NON_CANONICAL
    mem.write_u64(l3 + 8 * 1, leaf(0, RWXUAD))  # a 512 GiB terapage at va 512 GiB
    r = walk(mem, l3, (1 << 39) + 0x1234, Access.LOAD, Priv.U, mode=SV48)
    assert (r.translation.level, r.translation.page_size, r.translation.pa) == (3, 1 << 39, 0x1234)


def test_walk_in_words_and_json(mem):
    set_path(mem, 0x5008, leaf(PAGE, Pte.R | Pte.U | Pte.A))
    r = tr(mem, 0x5008, Access.STORE)
    assert format_walk(r) == [
        "va 0x0000000000005008 (Sv39): vpn[2]=0x000  vpn[1]=0x000  vpn[0]=0x005  offset=0x008",
        "root table 0x80000000, store as U-mode, SUM=0 MXR=0",
        "  level 2: PTE @ 0x80000000 = 0x0000000020000401 ppn=0x80001 -------V  pointer to the level-1 table at 0x80001000",
        "  level 1: PTE @ 0x80001000 = 0x0000000020000801 ppn=0x80002 -------V  pointer to the level-0 table at 0x80002000",
        "  level 0: PTE @ 0x80002028 = 0x0000000020040053 ppn=0x80100 -A-U--RV  leaf (4 KiB page): store denied -> page fault",
        "result: store page fault (cause 15): store to a page that is not writable (W=0)",
    ]
    j = walk_to_json(r)
    assert j["result"] == "fault" and j["fault"]["reason"] == "not_writable" and j["fault"]["cause"] == 15
    assert [s["pte_addr"] for s in j["steps"]] == ["0x80000000", "0x80001000", "0x80002028"]
    ok = walk_to_json(tr(mem, 0x5008))
    assert (ok["result"], ok["pa"], ok["perms"], ok["level"]) == ("ok", hex(PAGE + 8), "r--u", 0)
