"""Attacks on two fast paths: a device's validated views (``DmaPort.read_repeated``/``write_repeated``/
``move_repeated``, iommu/views.py) and store watches by page protection (machine/storewatch.py,
``hwsim_ram_store``).

Each test is an attack a hostile driver or an unlucky sequence could make; passing means it is defended.
The views must never reach memory the IOMMU would refuse now, and must answer as ordinary requests would;
a watched page must take every store exactly as an unwatched one, show each store that begins in a watch
once (and none to a watch that has ended), and give its page back as it was.
"""

from __future__ import annotations

import pytest
import test_machine_storewatch
from test_machine_storewatch import VALUE, Bare

from hwsim import Machine, StopReason
from hwsim.errors import ConfigError
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Priv

IOVA = 0x4000
hook = test_machine_storewatch.hook  # the fixture: each store-watch attack on the compiled hook and the Python one


# == store watches ==============================================================================================


def _watch(g: Bare, start: int, length: int, seen: list, tag: str = "") -> int:
    """A watch of ``[page + start, +length)`` that notes (tag, offset in the page, size, value)."""
    return g.m.watch_stores(
        g.page + start, length, lambda pa, size, value: seen.append((tag, pa - g.page, size, value))
    )


def _bytes_shown(offset: int, first: int, count: int, tag: str = "") -> list:
    """The single bytes of VALUE, from its byte ``first`` on, shown at ``offset`` on: a store crossing into a
    protected page from the page before it."""
    return [(tag, offset + k, 1, (VALUE >> (8 * (first + k))) & 0xFF) for k in range(count)]


def test_the_same_store_crossing_out_of_the_watched_page_then_into_it_is_shown_both_times(hook):
    """One ``sd`` in a loop: first misaligned from the watched page P into the unwatched page after it (its
    bytes on P come back to the hook one by one, those after it never do), then from the page before P into
    P.  The second store's bytes on P must be shown (as any store crossing into P is), not taken for the
    rest of the first store, which has the same PC."""
    g = Bare()
    seen: list = []
    _watch(g, 0, 0x1000, seen)

    def prog(a):
        a.li("t1", 2).li("a3", g.page + 0xFFD).li("t3", g.page - 3)
        a.label("loop")
        a.emit(A.sd("a0", "a3", 0), A.addi("a3", "t3", 0), A.addi("t1", "t1", -1))
        a.branch("bne", "t1", "zero", "loop")

    g.run(prog)
    assert seen == [("", 0xFFD, 8, VALUE), *_bytes_shown(0, 3, 5)]
    assert g.m.phys.read_u64(g.page - 3) == VALUE and g.m.phys.read_u64(g.page + 0xFFD) == VALUE


def test_a_store_crossing_from_one_watched_page_into_another_is_shown_once_and_lands(hook):
    """Both pages protected: the bytes on the second page come back to the hook too (one by one, same PC,
    same registers): they are the rest of the store, written and not shown again."""

    def prog(a):
        a.emit(A.sd("a0", "a2", -3), A.sw("a0", "a2", 2), A.sd("a0", "a2", -5))

    plain, g = Bare(), Bare()
    plain.run(prog)
    seen: list = []
    _watch(g, 0xFF0, 0x20, seen)  # the end of P and the start of P+1
    g.run(prog)
    assert seen == [("", 0xFFD, 8, VALUE), ("", 0x1002, 4, VALUE & 0xFFFF_FFFF), ("", 0xFFB, 8, VALUE)]
    assert g.memory() == plain.memory()


def test_a_crossing_store_whose_handler_ends_its_watch_is_not_shown_again_on_the_next_watched_page(hook):
    """The first page's watch ends inside the store (its bytes there are now Unicorn's to write); the bytes on
    the next page, watched by another watch, still come back to the hook: the rest of the same store."""
    g = Bare()
    seen: list = []
    first = []

    def ending(pa, size, value):
        seen.append(("first", pa - g.page, size, value))
        g.m.unwatch_stores(first[0])

    first.append(g.m.watch_stores(g.page + 0xFF0, 16, ending))
    _watch(g, 0x1000, 16, seen, "next")
    g.run(lambda a: a.emit(A.sd("a0", "a2", -3), A.sh("a0", "a2", 7)))
    assert seen == [("first", 0xFFD, 8, VALUE), ("next", 0x1007, 2, 0x7788)]
    assert g.m.phys.read(g.page + 0xFFD, 12) == VALUE.to_bytes(8, "little") + bytes(2) + b"\x88\x77"


def test_a_misaligned_store_repeated_within_the_page_is_shown_each_time(hook):
    g = Bare()
    seen: list = []
    _watch(g, 0, 0x1000, seen)

    def prog(a):
        a.li("t1", 3).li("a3", g.page + 0x101)
        a.label("loop")
        a.emit(A.sd("a0", "a3", 0), A.addi("a3", "a3", 0x10), A.addi("t1", "t1", -1))
        a.branch("bne", "t1", "zero", "loop")

    g.run(prog)
    assert seen == [("", 0x101 + 0x10 * k, 8, VALUE) for k in range(3)]
    assert all(g.m.phys.read_u64(g.page + 0x101 + 0x10 * k) == VALUE for k in range(3))


def test_a_watch_ended_by_another_watchs_handler_is_not_shown_the_store(hook):
    """Two watches on one page; the first's handler ends the second (as the virtio checker forgets a ring
    from inside a store it is shown).  An ended watch is never shown a store, as with MEM_WRITE hooks."""
    g = Bare()
    seen: list = []
    second = []

    def first(pa, size, value):
        seen.append(("first", pa - g.page))
        g.m.unwatch_stores(second[0])

    g.m.watch_stores(g.page, 16, first)
    second.append(_watch(g, 8, 16, seen, "second"))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 8), A.sd("a0", "a1", 16)))
    assert seen == [("first", 8)]
    assert g.m.phys.read(g.page + 8, 16) == VALUE.to_bytes(8, "little") * 2


def test_a_watch_ended_by_another_is_not_shown_a_store_the_host_carries_out(hook):
    """The same through a stopping watch on the page: the host carries the store out and shows it."""
    g = Bare()
    seen: list = []
    second = []

    def first(pa, size, value):
        seen.append(("first", pa - g.page))
        g.m.unwatch_stores(second[0])

    g.m.watch_stores(g.page, 16, first)
    second.append(_watch(g, 0, 16, seen, "second"))
    g.m.watch_page(g.page, lambda hit: None)
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0)))
    assert seen == [("first", 0)] and g.m.phys.read_u64(g.page) == VALUE


@pytest.mark.parametrize("offset", [0x10, 0x13, 0xFFD])  # aligned, misaligned, crossing into the next page
def test_a_handler_ending_its_own_watch_lets_the_store_land_and_later_stores_land_unshown(hook, offset):
    """The watch ends inside its hook (its page made writable, its Unicorn hook deleted) while Unicorn is still
    in the store, or about to write a misaligned one byte by byte."""
    g = Bare()
    seen: list = []
    handle = []

    def own(pa, size, value):
        seen.append((pa - g.page, size))
        g.m.unwatch_stores(handle[0])

    handle.append(g.m.watch_stores(g.page, 0x1000, own))
    g.run(lambda a: a.emit(A.addi("a3", "a1", 0x7FF), A.sd("a0", "a3", offset - 0x7FF), A.sd("a0", "a1", 0x200)))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0x301)))
    assert seen == [(offset, 8)]
    for at in (offset, 0x200, 0x301):
        assert g.m.phys.read(g.page + at, 8) == VALUE.to_bytes(8, "little"), hex(at)
    assert g.m._store_watch.protected == {} and g.m._store_watch.covers == {}


def test_a_handler_starting_watches_inside_a_store(hook):
    """A watch begun from a handler (inside Unicorn's store_helper): on the same page and on the next; the
    store in progress lands once and the new watches see the stores after it."""
    g = Bare()
    seen: list = []

    def starter(pa, size, value):
        seen.append(("s", pa - g.page, size, value))
        if len(seen) == 1:
            _watch(g, 0x100, 16, seen, "same page")
            _watch(g, 0x1000, 16, seen, "next page")

    g.m.watch_stores(g.page, 0x200, starter)
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0x13), A.sd("a0", "a1", 0x100), A.sd("a0", "a2", 0)))
    assert [s[:2] for s in seen] == [("s", 0x13), ("s", 0x100), ("same page", 0x100), ("next page", 0x1000)]
    for at in (0x13, 0x100, 0x1000):
        assert g.m.phys.read(g.page + at, 8) == VALUE.to_bytes(8, "little"), hex(at)


def test_a_watch_begun_after_the_hart_stored_to_the_page_sees_the_next_store_on_every_hart(hook):
    """Each hart holds a writable TLB entry for the page (it stored there) when the watch begins between two
    runs; the watch must still see each hart's next store, and after it ends both harts' stores land."""
    g = Bare(harts=2)
    harts = [g.m, g.m.harts[1]]
    for hart in harts:
        g.run(lambda a: a.emit(A.sd("a0", "a1", 0x40), A.ld("t0", "a1", 0x40)), hart=hart)
    seen: list = []
    handle = _watch(g, 0, 0x1000, seen)
    for k, hart in enumerate(harts):
        g.run(lambda a, k=k: a.emit(A.sw("a0", "a1", 0x80 + 8 * k)), hart=hart)
    assert seen == [("", 0x80, 4, VALUE & 0xFFFF_FFFF), ("", 0x88, 4, VALUE & 0xFFFF_FFFF)]
    g.m.unwatch_stores(handle)
    for k, hart in enumerate(harts):  # their TLB entries with TLB_DISCARD_WRITE must be gone
        g.run(lambda a, k=k: a.emit(A.sd("a0", "a1", 0x100 + 8 * k)), hart=hart)
    assert g.m.phys.read(g.page + 0x100, 16) == VALUE.to_bytes(8, "little") * 2 and len(seen) == 2


class Paged:
    """A U-mode hart under Sv39: code at 0x10000, the data page at 0x20000 mapped with ``flags``."""

    CODE, DATA = 0x1_0000, 0x2_0000

    def __init__(self, flags, *, accessed: bool = True) -> None:
        self.m = Machine(ram_size=4 << 20)
        self.space = self.m.new_address_space(asid=1)
        self.code_pa, self.data_pa = self.m.frames.alloc(), self.m.frames.alloc()
        self.space.map(self.CODE, self.code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
        self.space.map(self.DATA, self.data_pa, 0x1000, flags, accessed=accessed)
        self.m.activate(self.space, priv=Priv.U)

    def run(self, *insns):
        a = A.Assembler(self.CODE)
        a.li("a1", self.DATA).li("a0", VALUE).emit(*insns)
        a.label("exit")
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        return self.m.run(self.CODE, until=a.labels["exit"])


def test_a_page_the_guest_mapped_read_only_stays_read_only_while_watched_and_after(hook):
    """Store watches protect physical pages in Unicorn; the guest's own protection is its page table's.
    A store to a read-only mapping is a store page fault with the watch on, and again after it ends."""
    p = Paged(Pte.R | Pte.U)
    seen: list = []
    handle = p.m.watch_stores(p.data_pa, 0x1000, lambda pa, size, value: seen.append(pa))
    r = p.run(A.ld("t0", "a1", 0), A.sd("a0", "a1", 8))
    assert r.reason is StopReason.FAULT and r.fault is not None and r.fault.va == p.DATA + 8
    assert seen == [] and p.m.phys.read_u64(p.data_pa + 8) == 0
    p.m.unwatch_stores(handle)
    r = p.run(A.ld("t0", "a1", 0), A.sd("a0", "a1", 8))
    assert r.reason is StopReason.FAULT and r.fault.va == p.DATA + 8 and p.m.phys.read_u64(p.data_pa + 8) == 0


def test_a_watched_store_to_a_clean_page_sets_its_dirty_bit(hook):
    p = Paged(Pte.R | Pte.W | Pte.U, accessed=False)
    seen: list = []
    p.m.watch_stores(p.data_pa, 0x1000, lambda pa, size, value: seen.append(pa - p.data_pa))
    assert not p.space.lookup(p.DATA).flags & Pte.D
    r = p.run(A.ld("t0", "a1", 0), A.sd("a0", "a1", 8))
    assert r.reason is StopReason.EXIT and seen == [8] and p.m.phys.read_u64(p.data_pa + 8) == VALUE
    assert p.space.lookup(p.DATA).flags & Pte.D


def test_device_writes_to_a_watched_page_land_and_are_not_guest_stores(hook):
    """DMA reaches RAM without Unicorn: not shown (no guest store), and the guest loads what it wrote."""
    g = Bare()
    seen: list = []
    _watch(g, 0, 0x1000, seen)
    g.m.phys.write(g.page + 0x20, b"from dma")
    g.run(lambda a: a.emit(A.ld("t0", "a1", 0x20)))
    assert seen == [] and g.m.get_reg("t0") == int.from_bytes(b"from dma", "little")


@pytest.mark.parametrize(
    ("pa", "length"),
    [((1 << 64) - 8, 16), (-8, 8), (1 << 64, 8), ((1 << 64) - 1, 1 << 64)],
    ids=["wraps past the top", "negative", "past the top", "longer than the address space"],
)
def test_a_watch_outside_the_64_bit_physical_space_is_refused_by_name(pa, length):
    """A range that wraps around the top of the address space would make a Unicorn hook whose end is below
    its start, which Unicorn takes for every address: every store would be shown."""
    g = Bare()
    for watch in (g.m.watch_stores, g.m.watch_loads):
        with pytest.raises(ConfigError, match=r"is outside the 64-bit physical address space"):
            watch(pa, length, lambda *args: None)
    assert g.m._store_watch.watches == {}


def test_the_last_bytes_of_the_address_space_may_be_watched():
    g = Bare()
    seen: list = []
    g.m.watch_stores((1 << 64) - 8, 8, lambda pa, size, value: seen.append(pa))
    g.run(lambda a: a.emit(A.sd("a0", "a1", 0)))
    assert seen == []  # (the store to RAM is outside the range: not shown)
