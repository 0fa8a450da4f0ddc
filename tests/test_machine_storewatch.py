"""hwsim.machine.storewatch: store watches by page protection (Machine.watch_stores), the stores exact, the fallback.

Every store to a watched page must land in memory exactly as on a page nobody watches (Unicorn drops its own
write after the hook, or writes a misaligned store again byte by byte), be shown once with its PC, and leave
every other page and every later store alone.  Each test runs on the compiled hook and on the Python one.
"""

from __future__ import annotations

import pytest

from hwsim import Machine, StopReason
from hwsim.machine import EcallAction, native, storewatch
from hwsim.machine.storewatch import StoreWatches
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Priv

VALUE = 0x1122_3344_5566_7788


@pytest.fixture(params=["compiled", "python"])
def hook(request, monkeypatch):
    """Which hook carries stores out: the compiled helper's (skipped without it) or the Python one."""
    if request.param == "compiled":
        if native.library() is None:
            pytest.skip(f"no compiled helper: {native.unavailable_reason()}")
    else:
        monkeypatch.setattr(StoreWatches, "_library", lambda self: None)
    return request.param


class Bare:
    """An M-mode machine (no translation): code at the start of RAM, the watched page P between two others."""

    def __init__(self, harts: int = 1) -> None:
        self.m = Machine(ram_size=1 << 20, harts=harts)
        self.code = self.m.ram.base
        self.page = self.m.ram.base + 0x10000

    def run(self, build, hart: Machine | None = None):
        hart = hart or self.m
        a = A.Assembler(self.code)
        a.li("a1", self.page).li("a2", self.page + 0x1000).li("a0", VALUE)
        start = a.pc
        build(a)
        a.label("exit")
        self.m.phys.write(self.code, a.finish())
        hart.code_changed()
        r = hart.run(self.code, until=a.labels["exit"])
        assert r.reason is StopReason.EXIT, r
        return start

    def memory(self) -> bytes:
        return self.m.phys.read(self.page - 0x1000, 0x3000)


STORES = [
    A.sb("a0", "a1", 0x10),
    A.sh("a0", "a1", 0x20),
    A.sw("a0", "a1", 0x30),
    A.sd("a0", "a1", 0x40),
    A.sh("a0", "a1", 0x51),  # misaligned, within the page
    A.sw("a0", "a1", 0x63),
    A.sd("a0", "a1", 0x75),
    A.sd("a0", "a2", -4),  # from the watched page into the next one
    A.sd("a0", "a1", -3),  # from the page before into the watched one
]


def _all_stores(a) -> None:
    a.emit(*STORES)


def test_each_store_lands_exactly_as_on_an_unwatched_page_and_is_shown_once(hook):
    plain = Bare()
    plain.run(_all_stores)
    g = Bare()
    seen = []
    g.m.watch_stores(g.page, 0x1000, lambda pa, size, value: seen.append((g.m.store_pc(), pa - g.page, size, value)))
    assert g.m.store_watch_reason is None
    start = g.run(_all_stores)
    assert g.memory() == plain.memory()
    pcs = [start + 4 * i for i in range(len(STORES))]
    assert seen == [
        (pcs[0], 0x10, 1, 0x88),
        (pcs[1], 0x20, 2, 0x7788),
        (pcs[2], 0x30, 4, 0x5566_7788),
        (pcs[3], 0x40, 8, VALUE),
        (pcs[4], 0x51, 2, 0x7788),
        (pcs[5], 0x63, 4, 0x5566_7788),
        (pcs[6], 0x75, 8, VALUE),
        (pcs[7], 0xFFC, 8, VALUE),  # shown whole; its last 4 bytes land on the next page
        # the store from the page before: its bytes on the watched page, one by one
        *[(pcs[8], k, 1, (VALUE >> (8 * (3 + k))) & 0xFF) for k in range(5)],
    ]
    assert g.m.protected_stores == len(STORES) - 1 + 5


def test_amo_and_lr_sc_on_a_watched_page_land_and_are_shown(hook):
    def prog(a):
        a.emit(
            A.addi("a5", "a1", 0x40),
            A.sd("a0", "a5", 0),
            A.amo("add", "a4", "a5", "a0", double=True),
            A.lr("a6", "a5", double=True),
            A.addi("t0", "zero", 5),
            A.sc("a7", "a5", "t0", double=True),
            A.amo("swap", "t1", "a5", "a0", double=False),
            A.ld("t2", "a5", 0),
        )

    plain = Bare()
    plain.run(prog)
    g = Bare()
    seen = []
    g.m.watch_stores(g.page + 0x40, 8, lambda pa, size, value: seen.append((pa - g.page, size, value)))
    g.run(prog)
    assert g.memory() == plain.memory()
    assert [g.m.get_reg(r) for r in ("a4", "a6", "a7", "t1", "t2")] == [
        plain.m.get_reg(r) for r in ("a4", "a6", "a7", "t1", "t2")
    ]
    twice = (2 * VALUE) & ((1 << 64) - 1)
    assert g.m.get_reg("a7") == 0 and g.m.get_reg("t1") == 5 and g.m.get_reg("t2") == VALUE & 0xFFFF_FFFF  # sc won
    assert seen == [(0x40, 8, VALUE), (0x40, 8, twice), (0x40, 8, 5), (0x40, 4, VALUE & 0xFFFF_FFFF)]


def test_a_store_to_the_unwatched_part_of_a_protected_page_lands_and_is_not_shown(hook):
    g = Bare()
    seen = []
    g.m.watch_stores(g.page + 0x400, 16, lambda pa, size, value: seen.append(pa))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0x3F8), A.sd("a0", "a1", 0x410), A.ld("t0", "a1", 0x3F8)))
    assert seen == [] and g.m.get_reg("t0") == VALUE
    assert g.m.phys.read_u64(g.page + 0x3F8) == VALUE and g.m.phys.read_u64(g.page + 0x410) == VALUE
    assert g.m.protected_stores == 2  # the page is protected: the hook carried them out


def test_stores_to_other_pages_and_loads_never_reach_the_hook(hook):
    g = Bare()
    g.m.watch_stores(g.page, 8, lambda pa, size, value: None)
    g.m.phys.write_u64(g.page, 42)
    g.run(lambda a: a.emit(A.sd("a0", "a2", 0), A.sd("a0", "a1", -8), A.ld("t0", "a1", 0)))
    assert g.m.protected_stores == 0 and g.m.get_reg("t0") == 42
    assert g.m.phys.read_u64(g.page + 0x1000) == VALUE


def test_after_the_watch_ends_the_page_is_writable_with_no_hook(hook):
    g = Bare()
    seen = []
    handle = g.m.watch_stores(g.page, 0x1000, lambda pa, size, value: seen.append(pa))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0)))
    assert len(seen) == 1 and g.m.protected_stores == 1
    regions = {start: perms for start, _end, perms in g.m._uc.mem_regions()}
    assert regions[g.page] == storewatch.READ_EXEC  # (Unicorn split its RAM region around the page)
    g.m.unwatch_stores(handle)
    g.m.unwatch_stores(handle)  # a no-op once ended
    regions = {start: perms for start, _end, perms in g.m._uc.mem_regions()}
    assert regions[g.page] == 7 and g.m._store_watch.covers == {} and g.m._store_watch.protected == {}
    g.m.phys.write_u64(g.page + 8, 0)
    g.run(lambda a: a.emit(A.sd("a0", "a1", 8), A.sw("a0", "a1", 0x13)))  # no TLB entry drops them
    assert g.m.phys.read_u64(g.page + 8) == VALUE and g.m.phys.read(g.page + 0x13, 4) == bytes.fromhex("88776655")
    assert len(seen) == 1 and g.m.protected_stores == 1


def test_overlapping_watches_keep_the_page_protected_until_the_last_ends(hook):
    g = Bare()
    first, second = [], []
    h1 = g.m.watch_stores(g.page, 16, lambda pa, size, value: first.append(pa - g.page))
    g.m.watch_stores(g.page + 8, 16, lambda pa, size, value: second.append(pa - g.page))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 8)))
    assert first == [8] and second == [8]
    g.m.unwatch_stores(h1)
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0), A.sd("a0", "a1", 16)))
    assert first == [8] and second == [8, 16] and g.m.protected_stores == 3


def test_a_stopping_watch_on_the_same_page_still_stops_and_the_store_is_shown_once(hook):
    g = Bare()
    seen, stops = [], []
    g.m.watch_stores(g.page, 64, lambda pa, size, value: seen.append((pa - g.page, size)))
    g.m.watch_page(g.page, stops.append, accesses=[Access.STORE])  # the DMA checker's kind of watch
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0), A.sw("a0", "a1", 8), A.ld("t0", "a1", 0)))
    assert [(h.pa - g.page, h.size) for h in stops] == [(0, 8), (8, 4)]
    assert seen == [(0, 8), (8, 4)] and g.m.get_reg("t0") == VALUE
    g.m.unwatch_page(g.page)
    g.m.watch_page(g.page, stops.append, accesses=[Access.LOAD])  # loads stop, stores go to the hook
    g.run(lambda a: a.emit(A.sd("a0", "a1", 16), A.ld("t0", "a1", 16)))
    assert [h.access for h in stops[2:]] == [Access.LOAD] and seen[-1] == (16, 8) and g.m.get_reg("t0") == VALUE


def test_every_hart_is_watched_and_store_pc_names_the_storing_harts_pc(hook):
    g = Bare(harts=2)
    seen = []
    g.m.watch_stores(g.page, 0x1000, lambda pa, size, value: seen.append((g.m.store_pc(), pa - g.page, value)))
    hart1 = g.m.harts[1]
    start = g.run(lambda a: a.emit(A.NOP, A.sd("a0", "a1", 0)), hart=hart1)
    assert seen == [(start + 4, 0, VALUE)] and g.m.phys.read_u64(g.page) == VALUE
    hart2 = g.m.add_hart()  # a hart added later gets the watch too
    g.run(lambda a: a.emit(A.sw("a0", "a1", 8)), hart=hart2)
    assert seen[-1] == (start, 8, VALUE & 0xFFFF_FFFF) and g.m.protected_stores == 2


def test_a_watch_begun_inside_a_run_at_paging_protects_at_once_without_touching_the_tables(hook):
    """The virtio checker starts watches from a device's MMIO callback, inside the run: the first protect
    splits Unicorn's RAM region, whose code lookup must neither end the run nor reach a pager."""
    m = Machine(ram_size=4 << 20)
    space = m.new_address_space(asid=1)
    code_pa, data_pa = m.frames.alloc(), m.frames.alloc()
    code, data = 0x1_0000, 0x2_0000
    space.map(code, code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(data, data_pa, 0x1000, Pte.R | Pte.W | Pte.U)
    m.activate(space, priv=Priv.U)
    asked = []
    m.add_pager(lambda va, access: asked.append(va) or False)
    seen = []

    def ecall(machine):
        machine.watch_stores(data_pa, 16, lambda pa, size, value: seen.append((pa - data_pa, value)))
        return EcallAction.RESUME

    m.add_ecall_handler(ecall)
    a = A.Assembler(code)
    a.li("a1", data).li("a0", VALUE).emit(A.sd("a0", "a1", 0), A.ECALL, A.sd("a0", "a1", 8), A.sd("a0", "a1", 16))
    a.label("exit")
    m.phys.write(code_pa, a.finish())
    r = m.run(code, until=a.labels["exit"])
    assert r.reason is StopReason.EXIT and asked == []
    assert seen == [(8, VALUE)] and m.phys.read(data_pa, 24) == VALUE.to_bytes(8, "little") * 3


# -- the fallback: a MEM_WRITE hook, and why ------------------------------------------------------------------


def test_outside_ram_a_watch_is_a_write_hook_and_says_why():
    g = Bare()
    g.m.watch_stores(0x1000, 8, lambda pa, size, value: None)
    assert g.m.store_watch_reason == f"[0x1000, 0x1008) is not inside the machine's RAM at {g.m.ram.base:#x}"


def test_when_protection_is_unavailable_the_write_hook_shows_the_same_stores(monkeypatch):
    monkeypatch.setattr(storewatch, "unavailable_reason", lambda lib: "Unicorn 9.9.9 is not 2.1.4")
    plain, g = Bare(), Bare()

    def prog(a):
        a.emit(A.sd("a0", "a1", 0), A.sw("a0", "a1", 0x13), A.sd("a0", "a1", -3))

    plain.run(prog)
    seen = []
    g.m.watch_stores(g.page, 0x1000, lambda pa, size, value: seen.append((g.m.store_pc(), pa - g.page, size)))
    start = g.run(prog)
    assert g.m.store_watch_reason == "Unicorn 9.9.9 is not 2.1.4" and g.m.protected_stores == 0
    assert seen == [(start, 0, 8), (start + 4, 0x13, 4)]  # (the store from the page before: not shown here)
    assert g.memory() == plain.memory()


def test_a_self_test_that_disagrees_is_the_reason(monkeypatch):
    monkeypatch.setattr(storewatch, "_REASONS", {})
    monkeypatch.setattr(storewatch, "_SHOWN", [(0, 1, 0)])
    reason = storewatch.unavailable_reason(None)
    assert reason is not None and reason.startswith("the store-watch self-test showed [(8, 8, ")


def test_the_self_test_passes_here_on_both_hooks():
    assert storewatch._self_test(None) is None
    if native.library() is not None:
        assert storewatch._self_test(native.library()) is None
