"""Attacks on two fast paths: a device's validated views (``DmaPort.read_repeated``/``write_repeated``/
``move_repeated``, iommu/views.py) and store watches by page protection (machine/storewatch.py,
``hwsim_ram_store``).

Each test is an attack a hostile driver or an unlucky sequence could make; passing means it is defended.
The views must never reach memory the IOMMU would refuse now, and must answer as ordinary requests would;
a watched page must take every store exactly as an unwatched one, show each store that begins in a watch
once (and none to a watch that has ended), and give its page back as it was.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import test_machine_storewatch
from test_devices_dma import MEM2MEM, Rig
from test_iommu import CQB, CQCSR, CQT, R_U, RAM, RW_U, Env, w64
from test_machine_storewatch import VALUE, Bare

from hwsim import Machine, StopReason
from hwsim.driver.virtio import Rule
from hwsim.errors import ConfigError
from hwsim.iommu import DeviceContext, IommuCause
from hwsim.iommu.bits import cmd_iotinval_vma
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


def test_a_store_crossing_into_a_watched_range_is_shown_as_its_bytes_there_whatever_protects_the_page_before(
    hook,
):
    """A store beginning outside every watch and crossing into the next page's watched range is shown as its
    bytes there, one by one, whether the page it begins on is writable or protected for another watch."""
    for before_watched in (False, True):
        g = Bare()
        seen: list = []
        if before_watched:
            _watch(g, 0, 16, seen, "other")  # protects the page the store begins on, not where it begins
        _watch(g, 0x1000, 16, seen)
        g.run(lambda a: a.emit(A.sd("a0", "a2", -3)))
        assert seen == _bytes_shown(0x1000, 3, 5), before_watched
        assert g.m.phys.read_u64(g.page + 0xFFD) == VALUE


def test_a_failing_sc_leaves_memory_as_on_an_unwatched_page(hook):
    """LR, then a store of another value to the address (the reservation's value is gone), then SC: the SC
    fails (rd 1) and memory keeps the intervening store's value.  Unicorn's compare-and-swap stores the
    current value back, so the hook is shown that store (as a MEM_WRITE hook is): it changes nothing."""

    def prog(a):
        a.emit(
            A.addi("a5", "a1", 0x40),
            A.sd("a0", "a5", 0),
            A.lr("a6", "a5", double=True),
            A.sd("zero", "a5", 0),
            A.addi("t0", "zero", 5),
            A.sc("a7", "a5", "t0", double=True),
            A.ld("t2", "a5", 0),
        )

    plain, g = Bare(), Bare()
    plain.run(prog)
    seen: list = []
    _watch(g, 0x40, 8, seen)
    g.run(prog)
    assert g.memory() == plain.memory() and g.m.get_reg("a7") == plain.m.get_reg("a7") == 1
    assert g.m.get_reg("t2") == 0 and seen == [("", 0x40, 8, VALUE), ("", 0x40, 8, 0), ("", 0x40, 8, 0)]


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


@pytest.mark.parametrize("stopping", [False, True], ids=["by the hook", "carried out by the host"])
def test_a_watch_ended_by_another_watchs_handler_is_not_shown_the_store(hook, stopping):
    """Two watches on one page; the first's handler ends the second (as the virtio checker forgets a ring
    from inside a store it is shown).  An ended watch is never shown a store, as with MEM_WRITE hooks; also
    when a stopping watch on the page makes the host carry the store out."""
    g = Bare()
    seen: list = []
    second = []

    def first(pa, size, value):
        seen.append(("first", pa - g.page))
        g.m.unwatch_stores(second[0])

    g.m.watch_stores(g.page, 16, first)
    second.append(_watch(g, 8, 16, seen, "second"))
    if stopping:
        g.m.watch_page(g.page, lambda hit: None)
    g.run(lambda a: a.emit(A.sd("a0", "a1", 8), A.sd("a0", "a1", 16)))
    assert seen == [("first", 8)]
    assert g.m.phys.read(g.page + 8, 16) == VALUE.to_bytes(8, "little") * 2


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


def test_watches_sharing_a_page_give_each_page_back_only_when_its_last_watch_ends(hook):
    """Two watches over three pages, sharing the middle one: ending the first makes only its own page
    writable (stores land unshown, no hook over it); the shared page stays protected for the second."""
    g = Bare()
    seen: list = []
    first = _watch(g, 0xF00, 0x200, seen, "first")  # pages P, P+1
    second = _watch(g, 0x1F00, 0x200, seen, "second")  # pages P+1, P+2
    watches = g.m._store_watch
    assert sorted(watches.protected.items()) == [(g.page, 1), (g.page + 0x1000, 2), (g.page + 0x2000, 1)]
    g.m.unwatch_stores(first)
    assert sorted(watches.protected) == [g.page + 0x1000, g.page + 0x2000]
    stores = g.m.protected_stores
    g.run(lambda a: a.emit(A.sd("a0", "a2", -0x100), A.sd("a0", "a2", 0x100)))
    g.run(lambda a: a.emit(A.addi("a3", "a2", 0x7FF), A.sd("a0", "a3", 0xF00 - 0x7FF)))
    assert seen == [("second", 0x1F00, 8, VALUE)] and g.m.protected_stores == stores + 2  # P is not hooked
    g.m.unwatch_stores(second)
    assert watches.protected == {} and watches.covers == {}
    regions = {start: perms for start, _end, perms in g.m._uc.mem_regions()}
    assert all(regions[page] == 7 for page in (g.page, g.page + 0x1000, g.page + 0x2000))
    for at in (0xF00, 0x1100, 0x1F00):
        assert g.m.phys.read_u64(g.page + at) == VALUE, hex(at)


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


# == validated views: DmaPort.read_repeated / write_repeated / move_repeated =====================================


def _space(env: Env, flags=RW_U, pages: int = 2, pscid: int = 1):
    """Device 1 with ``pages`` pages at IOVA, each on its own frame; returns (space, frames)."""
    space = env.attached(pscid=pscid)
    frames = [env.frames.alloc() for _ in range(pages)]
    for k, frame in enumerate(frames):
        space.map(IOVA + 0x1000 * k, frame, 0x1000, flags)
    return space, frames


def _repeat(port, iova: int, size: int = 8, *, data: bytes | None = None, times: int = 3):
    """The same request ``times`` times (from the third on, through the view); the last result."""
    for _ in range(times):
        result = port.read_repeated(iova, size) if data is None else port.write_repeated(iova, data)
    return result


def test_a_permission_downgrade_to_read_only_ends_the_write_view_and_the_next_write_faults():
    env = Env()
    space, (a, _b) = _space(env)
    port = env.iommu.port(1)
    assert _repeat(port, IOVA, data=b"12345678").ok and env.iommu.stats.views == 1
    space.protect(IOVA, 0x1000, R_U)
    env.iommu.iotinval_vma(IOVA, pscid=1)
    late = port.write_repeated(IOVA, b"abcdefgh")
    assert not late.ok and late.fault.cause is IommuCause.WRITE_PAGE_FAULT and env.iommu.fault_log == [late.fault]
    assert env.phys.read(a, 8) == b"12345678"
    assert _repeat(port, IOVA).data == b"12345678"  # reads still go (through a view of their own)
    assert not _repeat(port, IOVA, data=b"abcdefgh").ok and env.iommu.stats.faults == 4  # never a write view


def test_a_device_given_another_space_and_pscid_is_judged_by_them_at_once():
    """Reattached (a new context in RAM, IODIR.INVAL_DDT): its views of the old space are gone; the same
    IOVA now reaches the new space's frame."""
    env = Env()
    _space(env)
    port = env.iommu.port(1)
    _repeat(port, IOVA, data=b"old data")
    other = env.space()
    frame = env.frames.alloc()
    other.map(IOVA, frame, 0x1000, RW_U)
    env.iommu.attach(1, other, pscid=7)
    assert port.write_repeated(IOVA, b"new data").ok and env.phys.read(frame, 8) == b"new data"
    env.iommu.attach(1, env.space(), pscid=8)  # an empty space: nothing mapped
    assert not port.write_repeated(IOVA, b"too late").ok and env.phys.read(frame, 8) == b"new data"


def test_a_context_rewritten_in_ram_without_invalidation_is_used_alike_by_views_and_by_requests():
    """The spec lets the IOMMU keep a cached context until IODIR.INVAL_DDT: a view is no staler than the
    directory cache an ordinary request uses (both reach the old space), and the invalidation ends both."""
    env = Env()
    _space(env)
    port = env.iommu.port(1)
    _repeat(port, IOVA)
    other = env.space()
    env.iommu.directory.set_context(1, DeviceContext.make(root=other.root, mode=other.mode, pscid=1))
    assert port.read_repeated(IOVA, 8).ok and port.read(IOVA, 8).ok  # both the cached context
    env.iommu.iodir_inval_ddt(1)
    env.iommu.iotinval_vma(pscid=1)
    again, plain = port.read_repeated(IOVA, 8), port.read(IOVA, 8)
    assert not again.ok and not plain.ok and again.fault.message == plain.fault.message


@pytest.mark.parametrize("mode", ["off", "bare"])
def test_the_iommu_switched_off_or_to_bare_between_repeated_requests(mode):
    """Off: the next request is refused as every request is; Bare: it reaches the physical address equal to
    the IOVA, as an ordinary request does, never the frame the view was translated to."""
    env = Env()
    space = env.attached(pscid=1)
    iova, frame = RAM + 0x10_0000, env.frames.alloc()  # (an IOVA that is a RAM address too)
    space.map(iova, frame, 0x1000, RW_U)
    port = env.iommu.port(1)
    _repeat(port, iova, data=b"via view")
    assert env.iommu.stats.views == 1 and env.phys.read(frame, 8) == b"via view"
    env.iommu.set_mode(mode)
    result = port.write_repeated(iova, b"after it")
    if mode == "off":
        assert not result.ok and result.fault.cause is IommuCause.ALL_INBOUND_DISALLOWED
    else:
        assert result.ok and env.phys.read(iova, 8) == b"after it"
    assert env.phys.read(frame, 8) == b"via view" and env.iommu.stats.views == 1  # (no view in Off or Bare)


def test_an_iotinval_from_the_guests_command_queue_ends_the_view():
    env = Env()
    space, (_a, b) = _space(env)
    port = env.iommu.port(1)
    env.phys.write(b, b"old page")
    assert _repeat(port, IOVA + 0x1000).data == b"old page"
    moved = env.frames.alloc()
    env.phys.write(moved, b"new page")
    space.unmap(IOVA + 0x1000, 0x1000)
    space.map(IOVA + 0x1000, moved, 0x1000, RW_U)
    io = env.iommu
    cq = env.frames.alloc()
    env.phys.write(cq, cmd_iotinval_vma(IOVA + 0x1000, pscid=1))
    w64(io, CQB, (cq >> 12) << 10 | 3)
    io.mmio_write(CQCSR, 4, 1)
    io.mmio_write(CQT, 4, 1)
    assert port.read_repeated(IOVA + 0x1000, 8).data == b"new page"


def test_the_top_page_of_the_io_space_has_views_and_a_range_wrapping_past_it_moves_nothing():
    env = Env()
    space = env.attached(pscid=1)
    top, zero = env.frames.alloc(), env.frames.alloc()
    space.map((1 << 64) - 0x1000, top, 0x1000, RW_U)
    space.map(0, zero, 0x1000, RW_U)
    port = env.iommu.port(1)
    assert _repeat(port, (1 << 64) - 8, data=b"the last").ok and env.iommu.stats.views == 1
    assert env.phys.read(top + 0xFF8, 8) == b"the last"
    for _ in range(3):
        wrapped = port.write_repeated((1 << 64) - 4, b"wrapping")
        assert not wrapped.ok and "not canonical" in wrapped.fault.message
    assert env.phys.read(top + 0xFF8, 8) == b"the last" and env.phys.read(zero, 4) == bytes(4)
    assert env.iommu.stats.views == 1 and port.move_repeated((1 << 64) - 8, (1 << 64) - 4, 8) is False


def test_ranges_of_more_pages_than_the_iotlb_holds_get_no_view_and_walk_as_requests_do():
    """A view is opened from the IOTLB entries the request just used: a range of more pages than the IOTLB
    holds would walk again.  Twin IOMMUs agree on every walk, request and byte."""
    twins = [Env(iotlb_entries=2), Env(iotlb_entries=2)]
    ports = []
    for env in twins:
        _space(env, pages=3)
        ports.append(env.iommu.port(1))
    for iova, size in ((IOVA + 0x800, 0x1000), (IOVA + 0x800, 0x2000), (IOVA, 0x3000)):
        for _ in range(4):
            assert ports[0].read_repeated(iova, size) == ports[1].read(iova, size)
    stats = [env.iommu.stats for env in twins]
    assert stats[0].views == 1  # the two-page range only
    assert [(s.requests, s.bytes_read, s.page_walks) for s in stats[:1]] == [
        (s.requests, s.bytes_read, s.page_walks) for s in stats[1:]
    ]


def test_an_observer_added_between_repeated_requests_sees_the_next_one():
    env = Env()
    _space(env)
    port = env.iommu.port(1)
    _repeat(port, IOVA, data=b"12345678")
    seen = []
    env.iommu.add_dma_observer(lambda *request: seen.append(request[:4]), vouch=lambda *args: False)
    for _ in range(3):
        assert port.write_repeated(IOVA, b"abcdefgh").ok
    assert seen == [(1, IOVA, 8, True)] * 3


def _engine_copies(rig: Rig, copies: list[tuple[int, int, int]]) -> bytes:
    for src, dst, length in copies:
        rig.start(rig.DST_IOVA + src, rig.DST_IOVA + dst, length, MEM2MEM)
        assert rig.r(0x20) == 0b010, (src, dst, length)  # STATUS: DONE
    return rig.phys.read(rig.dst, 0x2000)


@pytest.mark.parametrize("shift", [8, -8, 0x1000 - 4])
def test_overlapping_engine_copies_through_views_end_as_without_views(shift):
    """The DMA engine moves a range onto itself shifted (view to view once it repeats): the bytes end as a
    read then a write leave them, as with ordinary requests."""
    rigs = [Rig(), Rig()]
    rigs[1].iommu.add_dma_observer(lambda *request: None)  # (vouches for nothing: no views)
    for rig in rigs:
        rig.phys.write(rig.dst, bytes(range(256)) * 32)
    src, dst = max(0, -shift) + 0x100, max(0, shift) + 0x100
    copies = [(src, dst, 0x800)] * 4
    assert _engine_copies(rigs[0], copies) == _engine_copies(rigs[1], copies)
    assert rigs[0].iommu.stats.views == 2 and rigs[1].iommu.stats.views == 0


def test_a_dma_engine_reset_closes_its_views():
    rig = Rig()
    rig.phys.write(rig.dst, b"A" * 16)
    _engine_copies(rig, [(0, 0x800, 16)] * 3)
    assert rig.iommu.stats.views == 2
    rig.dma.reset()
    assert rig.iommu.invalidate_views() == 0  # none left open
    rig.space.unmap(rig.DST_IOVA, 0x1000)
    rig.iommu.iotinval_vma(pscid=1)
    rig.start(rig.DST_IOVA, rig.DST_IOVA + 0x800, 16, MEM2MEM)
    assert rig.r(0x20) & 0b100 and rig.dma.last_fault.iova == rig.DST_IOVA  # STATUS.ERROR: the read faulted


def test_a_ddtp_high_half_rewritten_alone_is_seen_alike_by_views_and_requests():
    """Only ddtp's low half (with the mode) is the write that ends views; the high half alone changes no cached
    context either (the spec leaves the flush to software), so a view and a request answer alike."""
    env = Env()
    _space(env)
    port = env.iommu.port(1)
    assert _repeat(port, IOVA).ok and env.iommu.stats.views == 1
    env.iommu.mmio_write(0x14, 4, 0x1)  # ddtp's PPN now points 16 TiB away, at no RAM
    assert port.read_repeated(IOVA, 8) == port.read(IOVA, 8) and port.read(IOVA, 8).ok
    env.iommu.iodir_inval_ddt(1)  # now the directory is walked again, where ddtp points
    again, plain = port.read_repeated(IOVA, 8), port.read(IOVA, 8)
    assert not again.ok and again.fault.message == plain.fault.message


def _one_protocol_report(hwsim_driver, name: str):
    """Run test driver ``tests/data/<name>``: its one virtio protocol report, which must name the line
    marked ``/* <-`` in its C source (in ``probe``)."""
    source = Path(__file__).resolve().parent / "data" / name
    result = hwsim_driver(source)
    (r,) = result.report.protocol_reports
    lines = (source / f"{name}.c").read_text().splitlines()
    (marked,) = [i + 1 for i, line in enumerate(lines) if "/* <-" in line]
    assert r.where.startswith(f"{name}.c:{marked} (probe)"), result.report.format()
    return r


def test_an_available_idx_moved_by_a_store_beginning_at_the_flags_is_still_checked(hwsim_driver):
    """A store watch shows a store by its first byte; the virtio checker's watch of the available ring must
    therefore begin at the flags, or a 32-bit store of flags and idx together moves the idx unseen."""
    r = _one_protocol_report(hwsim_driver, "virtio_avail_flags_idx")
    assert (r.rule, r.device, r.queue) == (Rule.AVAIL_WRAP, "blk0", 0), r
    assert r.detail.startswith("the available idx went from 7 to 0: it moved back")


def test_a_descriptor_the_device_owns_rewritten_by_memory_copy_is_reported(hwsim_driver):
    r = _one_protocol_report(hwsim_driver, "virtio_desc_memcpy")  # (at the memcpy's line)
    assert (r.rule, r.device, r.queue) == (Rule.DEVICE_OWNED, "blk0", 0), r
    assert r.detail.startswith("descriptor 1 of the chain at descriptor 0, which the device owns")


def test_a_mapping_changed_without_iotinval_may_keep_its_old_translation_in_a_view_until_invalidated():
    """Software moves a page and skips the IOTINVAL.VMA the spec requires; the IOTLB entry the view was made
    from has been evicted meanwhile.  The ordinary request walks the new tables, the view (a device's cached
    translation) keeps the old frame: both answers the spec allows.  The invalidation ends the difference."""
    env = Env(iotlb_entries=1)
    space, (a, _b) = _space(env)
    env.phys.write(a, b"old page")
    port = env.iommu.port(1)
    assert _repeat(port, IOVA).data == b"old page" and env.iommu.stats.views == 1
    assert port.read(IOVA + 0x1000, 8).ok  # the one IOTLB entry is now the other page's
    moved = env.frames.alloc()
    env.phys.write(moved, b"new page")
    space.unmap(IOVA, 0x1000)
    space.map(IOVA, moved, 0x1000, RW_U)
    assert port.read_repeated(IOVA, 8).data == b"old page" and port.read(IOVA, 8).data == b"new page"
    env.iommu.iotinval_vma(IOVA, pscid=1)
    assert port.read_repeated(IOVA, 8).data == port.read(IOVA, 8).data == b"new page"


@pytest.mark.parametrize("flags", [Pte.R | Pte.W, Pte.X | Pte.U], ids=["supervisor-only (no U)", "execute-only (no R)"])
def test_pages_a_device_may_not_read_never_open_a_view_and_every_read_is_a_recorded_fault(flags):
    """A device request is a U-mode access without MXR: U and R are needed for a read, whatever repeats."""
    env = Env()
    _space(env, flags=flags, pages=1)
    port = env.iommu.port(1)
    for k in range(4):
        result = port.read_repeated(IOVA, 8)
        assert not result.ok and result.fault.cause is IommuCause.READ_PAGE_FAULT
        assert env.iommu.stats.faults == k + 1
    assert env.iommu.stats.views == 0 and env.iommu.open_view(1, IOVA, 8, write=False) is None
