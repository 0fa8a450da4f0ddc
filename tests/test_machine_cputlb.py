"""machine/cputlb.py and the machine's per-page flushes of Unicorn's TLB: a page the host protects, unmaps or
watches, or a guest fences, is dropped alone (the others stay cached: no refill), and a stale translation
is never used, on every path: the compiled helper's record or the Python hook's, per-page flushes or the
whole-TLB fallback (cputlb unavailable, or HWSIM_NO_NATIVE=1: test_machine_native runs this file again)."""

from __future__ import annotations

import os

import pytest

from hwsim import Machine, StopReason
from hwsim.machine import cputlb, native
from hwsim.machine import machine as machine_module
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Cause, Priv

CODE, PAGE_A, PAGE_B, SUPER = 0x1_0000, 0x40_0000, 0x40_1000, 0x80_0000
USER_RW = Pte.R | Pte.W | Pte.U


def make(kind: str) -> Machine:
    """A machine whose fills are served by ``kind``'s hook ("native" or "python"), flushing one page at a
    time ("... pages") or always whole ("... whole")."""
    hook, flush = kind.split()
    with pytest.MonkeyPatch.context() as patch:
        if hook == "python":
            patch.setattr(machine_module, "library", lambda: None)
        if flush == "whole":
            patch.setattr(cputlb, "unavailable_reason", lambda: "turned off by the test")
        m = Machine(ram_size=8 << 20)
    if hook == "native" and not m.native:
        pytest.skip(f"no compiled helper: {native.unavailable_reason()}")
    if flush == "pages" and m.page_flush_reason is not None:
        pytest.skip(f"no per-page flush: {m.page_flush_reason}")
    return m


KINDS = ["native pages", "python pages", "native whole", "python whole"]


class Guest:
    """A U-mode program that loads (or stores to) the address in a0 and ends, in a space with PAGE_A and
    PAGE_B mapped read-write; ``touch`` runs it once and says what the run took."""

    def __init__(self, m: Machine) -> None:
        self.m = m
        self.space = m.new_address_space(asid=1)
        code = m.frames.alloc()
        self.space.map(CODE, code, 4096, Pte.R | Pte.X | Pte.U)
        self.frames = {va: m.frames.alloc() for va in (PAGE_A, PAGE_B)}
        for va, pa in self.frames.items():
            self.space.map(va, pa, 4096, USER_RW)
        a = A.Assembler(CODE)
        a.label("load").emit(A.ld("t0", "a0", 0)).jump("exit")
        a.label("store").emit(A.sd("a1", "a0", 0))
        a.label("exit")
        m.phys.write(code, a.finish())
        self.labels = a.labels
        m.activate(self.space, priv=Priv.U)

    def touch(self, va: int, *, store: bool = False, value: int = 0):
        """(the run's result, the fills it took)."""
        m = self.m
        m.set_reg("a0", va)
        m.set_reg("a1", value)
        fills = m.fills
        result = m.run(self.labels["store" if store else "load"], until=self.labels["exit"])
        return result, m.fills - fills

    def warm(self) -> None:
        """Both pages (and the code) in Unicorn's TLB, writable."""
        for va in (PAGE_A, PAGE_B):
            assert self.touch(va, store=True)[0].ok
        assert self.touch(PAGE_A)[1] == 0 and self.touch(PAGE_B)[1] == 0  # cached: no fill


def warm_guest(kind: str) -> tuple[Machine, Guest]:
    """A ``kind`` machine (see make) running a Guest whose pages are in Unicorn's TLB."""
    m = make(kind)
    g = Guest(m)
    g.warm()
    return m, g


def check_b_kept(g: Guest, kind: str) -> None:
    """PAGE_B is still in Unicorn's TLB after a per-page flush (a load takes no fill); a whole flush dropped
    it (and the code page, unless the run before refilled that)."""
    result, fills = g.touch(PAGE_B)
    assert result.ok
    assert fills == 0 if kind.endswith("pages") else fills >= 1


def check_faults(g: Guest, va: int, cause: Cause | None = None, **access) -> None:
    """An access to ``va`` faults there (with ``cause``, when given)."""
    result, _ = g.touch(va, **access)
    assert result.reason is StopReason.FAULT and result.fault.va == va
    assert cause is None or result.fault.cause is cause


def counts(m: Machine) -> tuple[int, int]:
    return m.cpu_tlb_flushes, m.cpu_tlb_page_flushes


# -- the attack: a hot TLB entry to a page the host takes away ------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_page_unmapped_by_the_host_faults_at_the_next_access_and_the_other_page_stays_cached(kind):
    m, g = warm_guest(kind)
    before = counts(m)
    g.space.unmap(PAGE_A, 4096)
    if kind.endswith("pages"):
        assert counts(m) == (before[0], before[1] + 1)  # that page alone
    else:
        assert counts(m) == (before[0] + 1, before[1])
    check_faults(g, PAGE_A, Cause.LOAD_PAGE_FAULT)
    check_b_kept(g, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_page_made_read_only_by_the_host_refuses_the_next_store(kind):
    m, g = warm_guest(kind)
    g.space.protect(PAGE_A, 4096, Pte.R | Pte.U)
    check_faults(g, PAGE_A, Cause.STORE_PAGE_FAULT, store=True, value=0x55)
    assert m.phys.read_u64(g.frames[PAGE_A]) == 0  # the store never reached memory
    assert g.touch(PAGE_A)[0].ok  # loads still allowed
    check_b_kept(g, kind)
    assert g.touch(PAGE_B, store=True, value=1)[0].ok


@pytest.mark.parametrize("kind", KINDS)
def test_a_watch_on_a_hot_page_catches_the_next_store_and_leaves_the_other_page_cached(kind):
    m, g = warm_guest(kind)
    hits = []
    m.watch_page(g.frames[PAGE_A], hits.append, accesses=[Access.STORE])
    check_b_kept(g, kind)
    assert g.touch(PAGE_A, store=True, value=0x77)[0].ok
    assert [(h.va, h.access, h.value) for h in hits] == [(PAGE_A, Access.STORE, 0x77)]
    assert m.phys.read_u64(g.frames[PAGE_A]) == 0x77  # carried out by the host


@pytest.mark.parametrize("kind", KINDS)
def test_a_watch_on_a_page_never_handed_over_flushes_nothing(kind):
    m = make(kind)
    g = Guest(m)
    assert g.touch(PAGE_B)[0].ok
    before = counts(m)
    m.watch_page(g.frames[PAGE_A], lambda hit: None, accesses=[Access.STORE])
    assert counts(m) == before
    check_b_kept(g, "pages")


@pytest.mark.parametrize("kind", KINDS)
def test_a_page_mapped_at_two_addresses_is_dropped_at_both_by_a_watch(kind):
    m = make(kind)
    g = Guest(m)
    alias = 0x40_2000
    g.space.map(alias, g.frames[PAGE_A], 4096, USER_RW)
    g.warm()
    assert g.touch(alias, store=True, value=1)[0].ok
    hits = []
    m.watch_page(g.frames[PAGE_A], hits.append, accesses=[Access.STORE])
    assert g.touch(alias, store=True, value=2)[0].ok and g.touch(PAGE_A, store=True, value=3)[0].ok
    assert [h.va for h in hits] == [alias, PAGE_A]


@pytest.mark.parametrize("kind", ["native pages", "python pages"])
def test_a_full_record_of_handed_pages_makes_the_next_flush_whole(kind, monkeypatch):
    """Past HANDED_RECORD pages handed over, which pages Unicorn holds is no longer known: a watch flushes
    the whole TLB, and the record starts again."""
    monkeypatch.setattr(machine_module, "HANDED_RECORD", 2)
    m = make(kind)
    g = Guest(m)
    g.warm()  # the code page and two data pages: one more than the record holds
    before = counts(m)
    hits = []
    m.watch_page(g.frames[PAGE_A], hits.append, accesses=[Access.STORE])
    assert counts(m) == (before[0] + 1, before[1])
    assert g.touch(PAGE_A, store=True, value=9)[0].ok and len(hits) == 1
    m.unwatch_page(g.frames[PAGE_A])
    assert g.touch(PAGE_B)[0].ok  # the record holds the code page and PAGE_A and B again
    before = counts(m)
    g.space.protect(PAGE_B, 4096, Pte.R | Pte.U)
    assert counts(m) == (before[0], before[1] + 1)


@pytest.mark.parametrize("kind", ["native pages", "python pages"])
def test_a_range_past_the_page_flush_limit_flushes_whole(kind):
    m = make(kind)
    g = Guest(m)
    pages = machine_module.CPU_PAGE_FLUSH_MAX + 1
    base = 0x50_0000
    g.space.map(base, m.frames.alloc(pages), pages * 4096, USER_RW)
    g.warm()
    before = counts(m)
    g.space.protect(base, pages * 4096, Pte.R | Pte.U)
    assert counts(m) == (before[0] + 1, before[1])
    before = counts(m)
    g.space.protect(base, (pages - 1) * 4096, USER_RW)
    assert counts(m) == (before[0], before[1] + pages - 1)


# -- guest fences: a superpage is dropped whole ----------------------------------------------------------------


@pytest.mark.parametrize("kind", KINDS)
def test_a_guest_fence_of_one_address_drops_every_page_of_its_superpage(kind):
    """The guest clears R of a 2 MiB leaf it has used at two addresses and fences one of them (sfence.vma
    va: the leaf that maps va, which maps the other address too): both accesses fault after it."""
    m = make(kind)
    g = Guest(m)
    g.space.map(SUPER, m.frames.alloc(512, align=2 << 20), 2 << 20, USER_RW, page_size=2 << 20)
    far = SUPER + 0x1_0000
    assert g.touch(SUPER)[0].ok and g.touch(far)[0].ok and g.touch(PAGE_B)[0].ok
    leaf = g.space.lookup(SUPER)
    m.phys.write_u64(leaf.pte_addr, m.phys.read_u64(leaf.pte_addr) & ~int(Pte.R | Pte.W))  # as the guest's store
    m.sfence_vma(SUPER)  # as its fence (trap_guest_fences carries it out with this)
    for va in (far, SUPER):
        check_faults(g, va)
    check_b_kept(g, kind)


@pytest.mark.parametrize("kind", KINDS)
def test_a_guest_fence_of_a_base_page_drops_that_page_alone(kind):
    m, g = warm_guest(kind)
    pte_addr = g.space.lookup(PAGE_A).pte_addr
    m.phys.write_u64(pte_addr, 0)  # the guest unmaps PAGE_A itself, then fences it
    m.sfence_vma(PAGE_A, 1)
    check_faults(g, PAGE_A, Cause.LOAD_PAGE_FAULT)
    check_b_kept(g, kind)


# -- finding QEMU's tlb_flush_page, and refusing what does not match ------------------------------------------


def test_on_unicorn_2_1_4_per_page_flushes_work_and_machines_use_them():
    if os.environ.get("HWSIM_NO_NATIVE", "") not in ("", "0"):
        assert cputlb.unavailable_reason() == "HWSIM_NO_NATIVE is set"
        return
    if cputlb._version() != cputlb.SUPPORTED_VERSION:
        assert "is not 2.1.4" in cputlb.unavailable_reason()
        return
    assert cputlb.unavailable_reason() is None
    m = Machine(ram_size=1 << 20)
    assert m.page_flush_reason is None


def test_another_unicorn_version_is_refused_by_name(monkeypatch):
    monkeypatch.setattr(cputlb, "SUPPORTED_VERSION", (2, 1, 3))
    m = Machine(ram_size=1 << 20)
    cpu, why = cputlb.find_cpu(m._uc)
    assert cpu is None and why == (
        f"Unicorn {'.'.join(map(str, cputlb._version()))} is not 2.1.4, whose uc_struct layout hwsim knows"
    )


def test_a_uc_struct_layout_that_does_not_match_is_refused_without_touching_it(monkeypatch):
    m = Machine(ram_size=1 << 20)
    assert cputlb.find_cpu(m._uc)[0] is not None
    monkeypatch.setattr(cputlb, "_NEIGHBOURS", {3: "uc_add_inline_hook_riscv64"})  # a field moved
    assert cputlb.find_cpu(m._uc) == (
        None,
        "uc_struct.tcg_flush_tlb and its neighbours are not where Unicorn 2.1.4 keeps them",
    )
    monkeypatch.undo()
    monkeypatch.setattr(cputlb, "_CPU_WORD", 10)  # a pointer that is not the CPUState (uc_struct.cpu moved)
    assert cputlb.find_cpu(m._uc) == (None, "uc_struct.cpu is not a CPUState that points back at its engine")


def test_the_self_test_catches_a_flush_that_drops_the_wrong_page(monkeypatch):
    real = cputlb.PageFlush.flush
    monkeypatch.setattr(cputlb.PageFlush, "flush", lambda self, va: real(self, va + 0x1000))
    assert cputlb._self_test().startswith("the per-page flush self-test failed in M-mode: refilled")
    monkeypatch.setattr(cputlb.PageFlush, "flush", lambda self, va: None)
    assert "failed in M-mode" in cputlb._self_test()


def test_a_failed_check_leaves_machines_on_whole_flushes_and_says_why(monkeypatch):
    monkeypatch.delenv("HWSIM_NO_NATIVE", raising=False)
    monkeypatch.setattr(cputlb, "_REASON", None)
    monkeypatch.setattr(cputlb, "_CHECKED", False)
    monkeypatch.setattr(cputlb, "_self_test", lambda: "the per-page flush self-test failed (as the test says)")
    m = Machine(ram_size=1 << 20)
    assert m.page_flush_reason == "the per-page flush self-test failed (as the test says)"
    assert cputlb.unavailable_reason() == m.page_flush_reason
    g = Guest(m)
    g.warm()
    before = counts(m)
    g.space.unmap(PAGE_A, 4096)
    assert counts(m) == (before[0] + 1, before[1])
    check_faults(g, PAGE_A, Cause.LOAD_PAGE_FAULT)


def test_hwsim_no_native_turns_per_page_flushes_off(monkeypatch):
    monkeypatch.setattr(cputlb, "_REASON", None)
    monkeypatch.setattr(cputlb, "_CHECKED", False)
    monkeypatch.setenv("HWSIM_NO_NATIVE", "1")
    assert cputlb.unavailable_reason() == "HWSIM_NO_NATIVE is set"
