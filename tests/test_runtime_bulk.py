"""The bulk-memory builtins on the host side (runtime/builtins.py; Store.copy_user and fill_user).

memory.copy goes a page-sized chunk at a time (as memmove, backwards when the destination overlaps the
source from above), so host memory stays bounded whatever the length; untouched pages stay untouched
when only zeros would land on them; and gigabyte-sized operations honour the Store's time limit.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api

PAGE = 4096
COPY = """(module (memory (export "m") 1 65536)
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "one") (result i32) (i32.const 1)))"""


def instance(store):
    engine = store.engine
    return api.Linker(engine).instantiate(store, api.Module(engine, COPY)).exports(store)


@pytest.fixture(scope="module")
def world():
    store = api.Store()
    ex = instance(store)
    ex["grow"](store, 7)  # 8 wasm pages = 128 host pages
    return store, ex


SPAN = 6 * PAGE  # the copies stay in the first six host pages, some of them never touched


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    touched=st.lists(st.integers(0, 5), max_size=4, unique=True),
    seed=st.integers(0, 255),
    src=st.integers(0, SPAN),
    dst=st.integers(0, SPAN),
    n=st.integers(0, SPAN),
)
def test_copy_matches_memmove_across_pages_and_untouched_ones(world, touched, seed, src, dst, n):
    store, ex = world
    mem = ex["m"]
    mem.discard(store, 0, SPAN)  # every page untouched again
    model = bytearray(SPAN)
    for page in touched:
        data = bytes((seed + page * 7 + i) & 0xFF for i in range(PAGE))
        mem.write(store, data, page * PAGE)
        model[page * PAGE : (page + 1) * PAGE] = data
    n = min(n, SPAN - src, SPAN - dst)
    ex["copy"](store, dst, src, n)
    model[dst : dst + n] = bytes(model[src : src + n])
    assert mem.read(store, 0, SPAN) == bytes(model)


def test_copying_untouched_pages_onto_untouched_pages_commits_nothing():
    store = api.Store()
    ex = instance(store)
    ex["grow"](store, 1024)  # 64 MiB
    ex["fill"](store, 0, 9, 16)  # one touched page at the start
    tracemalloc.start()
    try:
        ex["copy"](store, 32 << 20, 0, 32 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the old copy read all 32 MiB into one bytes object first
    assert ex["m"].committed_bytes(store) == 2 * PAGE  # the touched page, and its copy
    assert ex["m"].read(store, 32 << 20, (32 << 20) + 17) == b"\x09" * 16 + b"\0"


@pytest.mark.parametrize("call, args", [("fill", (0, 1, 0xFFFF_FFFF)), ("copy", (1, 0, 0xFFFF_FFFE))])
def test_gigabyte_bulk_operations_are_interrupted_by_the_time_limit(call, args):
    store = api.Store(time_limit=0.3)
    ex = instance(store)
    ex["grow"](store, 65535)  # 4 GiB
    start = time.monotonic()
    with pytest.raises(api.Trap) as info:
        ex[call](store, *args)
    assert info.value.code is TrapCode.INTERRUPTED
    assert "in a bulk memory operation" in str(info.value)
    assert time.monotonic() - start < 30  # 0.3 s and one megabyte's work; far below the minutes it would take
    assert ex["one"](store) == 1  # the Store goes on


def test_bulk_access_observers_see_guest_bulk_operations_in_order():
    store = api.Store()
    module = api.Module(
        store.engine,
        '(module (memory (export "m") 1) (func (export "fill") '
        "(memory.fill (i32.const 16) (i32.const 7) (i32.const 100))))",
    )
    instance = api.Instance(store, module, [])
    seen = []
    remove = store._store.add_bulk_access_observer(lambda *a: seen.append(("a", *a[1:4])))
    store._store.add_bulk_access_observer(lambda *a: seen.append(("b", *a[1:4])))
    instance.exports(store)["fill"](store)
    remove()
    instance.exports(store)["fill"](store)
    assert seen == [("a", 16, 100, True), ("b", 16, 100, True), ("b", 16, 100, True)]


def test_release_observers_see_each_guest_discard_and_unmap_that_succeeds():
    """memory.discard / memory.unmap (here the hwsim:memory intrinsics, which compile to them) tell the
    release observers the page-aligned range released, the operation and the guest's PC; one that traps
    tells nobody."""
    store = api.Store()
    wat = """(module
      (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
      (import "hwsim:memory" "unmap" (func $unmap (param i32 i32)))
      (memory (export "m") 4)
      (func (export "discard") (param i32 i32) (call $discard (local.get 0) (local.get 1)))
      (func (export "unmap") (param i32 i32) (call $unmap (local.get 0) (local.get 1)))
      (type $two (func (param i32 i32)))
      (table 1 funcref) (elem (i32.const 0) $discard)
      (func (export "discard_indirect") (param i32 i32)
        (call_indirect (type $two) (local.get 0) (local.get 1) (i32.const 0))))"""
    engine = store.engine
    ex = api.Linker(engine).instantiate(store, api.Module(engine, wat)).exports(store)
    vm = store._store
    seen = []
    remove = vm.add_release_observer(lambda *a: seen.append(a))
    ex["discard"](store, PAGE, 2 * PAGE)
    ex["unmap"](store, 3 * PAGE + 5, 10)  # rounds out to the whole page
    ex["discard"](store, 0, 0)  # nothing released: not told
    with pytest.raises(api.Trap):
        ex["discard"](store, 5, PAGE)  # unaligned: traps, nothing released
    ex["discard_indirect"](store, 2 * PAGE, PAGE)  # through the import's function record (the host)
    remove()
    ex["discard"](store, 0, PAGE)
    ex["discard_indirect"](store, 0, PAGE)
    assert [a[1:4] for a in seen] == [
        (PAGE, 2 * PAGE, "memory.discard"),
        (3 * PAGE, PAGE, "memory.unmap"),
        (2 * PAGE, PAGE, "memory.discard"),
    ]
    assert {a[0] for a in seen} == {ex["m"]._inner.base}
    assert all(vm.wasm_location(a[4]) is not None for a in seen)  # the PC is in the guest's code


SHOWN = """(module (memory (export "m") 1)
  (data $d "\\01\\02\\03\\04\\05\\06\\07\\08\\09\\0a\\0b\\0c\\0d\\0e\\0f\\10\\11\\12\\13\\14\\15\\16\\17\\18")
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "init") (param i32 i32 i32) (memory.init $d (local.get 0) (local.get 1) (local.get 2))))"""


class Watched:
    """A Store whose bulk operations the host carries out (an observer records each write's PC), with memory
    offsets [0x100, 0x120) store-watched by physical address: ``seen`` lists (offset, size, value, store_pc)."""

    def __init__(self) -> None:
        self.store = store = api.Store()
        engine = store.engine
        self.ex = api.Linker(engine).instantiate(store, api.Module(engine, SHOWN)).exports(store)
        self.vm = vm = store._store
        self.pcs: list[int] = []
        bases: list[int] = []

        def observe(base, _offset, _n, write, pc) -> None:
            if write:
                bases.append(base)
                self.pcs.append(pc)

        vm.add_bulk_access_observer(observe)
        self.ex["fill"](store, 0, 0xEE, 0x200)  # touch the page (no watch yet)
        self.pcs.clear()
        page = vm.page_pa(bases[0])
        assert page is not None
        self.page, self.machine, self.seen = page, vm.machine, []
        self.handle = self.machine.watch_stores(page + 0x100, 0x20, self.show)

    def show(self, pa: int, size: int, value: int) -> None:
        self.seen.append((pa - self.page, size, value, self.machine.store_pc()))

    def call(self, name: str, *args: int) -> None:
        self.ex[name](self.store, *args)

    def shown(self) -> list[tuple[int, int]]:
        return [(at, size) for at, size, _value, _pc in self.seen]


def test_a_bulk_store_the_host_carries_out_is_shown_to_store_watches_as_aligned_stores():
    """memory.fill over a watched range: its bytes there, as the aligned stores of at most 8 bytes a loop of
    stores would make, each with the PC of the operation's call, before they land."""
    w = Watched()
    w.call("fill", 0xFB, 0x5A, 0x30)  # [0xFB, 0x12B): covers the watch from its first byte to its last
    [pc] = w.pcs
    assert w.seen == [(at, 8, 0x5A5A5A5A5A5A5A5A, pc) for at in (0x100, 0x108, 0x110, 0x118)]
    w.seen.clear()
    w.call("fill", 0x11D, 1, 6)  # [0x11D, 0x123): the watch's last 3 bytes only
    assert w.shown() == [(0x11D, 1), (0x11E, 2)]
    w.seen.clear()
    w.call("fill", 0x120, 1, 0x40)  # after the watch: nothing shown
    w.call("fill", 0x0, 1, 0x100)  # before it, ending at its start
    w.call("fill", 0x110, 1, 0)  # empty
    assert w.seen == []
    w.machine.unwatch_stores(w.handle)
    w.call("fill", 0x100, 1, 0x20)  # an ended watch is shown nothing
    assert w.seen == [] and not w.machine.stores_watched


def test_a_bulk_copy_or_init_shows_the_bytes_that_land_even_when_source_and_destination_overlap():
    w = Watched()
    w.call("init", 0x0F8, 0, 24)  # [0xF8, 0x110) := 01..18; shown: its bytes from 0x100 on
    assert [(at, size, value) for at, size, value, _pc in w.seen] == [
        (0x100, 8, int.from_bytes(bytes(range(9, 17)), "little")),
        (0x108, 8, int.from_bytes(bytes(range(17, 25)), "little")),
    ]
    w.seen.clear()
    w.call("copy", 0x0FC, 0x0F8, 24)  # overlapping from above (memmove): what lands is the old source
    want = bytes(range(1, 25))
    assert w.ex["m"].read(w.store, 0x0FC, 0x0FC + 24) == want
    assert w.shown() == [(0x100, 8), (0x108, 8), (0x110, 4)]
    assert b"".join(value.to_bytes(size, "little") for _at, size, value, _pc in w.seen) == want[4:]


def test_a_watch_ended_by_another_watchs_handler_during_a_bulk_store_is_shown_no_more():
    w = Watched()
    later: list[int] = []
    handles: list[int] = []

    def first(pa: int, size: int, value: int) -> None:
        later.append(pa - w.page)
        w.machine.unwatch_stores(w.handle)  # ends the fixture's watch, shown after this one

    handles.append(w.machine.watch_stores(w.page + 0x100, 0x20, first))
    w.machine.unwatch_stores(w.handle)
    w.handle = w.machine.watch_stores(w.page + 0x100, 0x20, w.show)  # now after `first` in the order
    w.call("fill", 0x100, 3, 0x20)
    assert later == [0x100, 0x108, 0x110, 0x118]
    assert w.seen == []  # ended at the first store, before it was shown to it
