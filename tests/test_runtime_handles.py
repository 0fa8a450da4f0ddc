"""hwsim.runtime.handles: wasm misusing the hwsim:memory handle functions traps, and nothing else happens.

An attacker-style review found host exceptions escaping from the handle
intrinsics (HostBufferError for an unaligned or out-of-range address,
OutOfFrames when RAM ran out), a handle of another Store mapping that Store's
physical frames here, a failed move losing the handle's mapping, and
unmapping one handle taking another's pages with it.  Each misuse is now a
trap ``invalid memory-control operation`` whose detail names the intrinsic and
what was wrong, before anything changes.  A stateful property drives random
(and hostile) sequences and checks the ownership rules and every mapped page
against a model after each step.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from property_scale import examples

from hwsim.compiler.traps import TrapCode
from hwsim.errors import StoreMismatchError
from hwsim.runtime import api
from hwsim.runtime.handles import HandleError, MemoryHandle
from hwsim.runtime.memctl import record_bytes
from hwsim.runtime.objects import ResourceLimitError

PAGE = 4096
MEMORY_PAGES = 64  # wasm pages: 4 MiB, two 2 MiB page-table blocks

WAT = """(module
  (import "hwsim:memory" "handle_new" (func $new (param i32) (result externref)))
  (import "hwsim:memory" "handle_map" (func $hmap (param externref i32 i32)))
  (import "hwsim:memory" "handle_move" (func $move (param externref i32)))
  (import "hwsim:memory" "handle_unmap" (func $hunmap (param externref)))
  (import "hwsim:memory" "handle_pages" (func $pages (param externref) (result i32)))
  (import "hwsim:memory" "unmap" (func $unmap (param i32 i32)))
  (memory (export "memory") %d)
  (type $hmap_t (func (param externref i32 i32)))
  (table $fns 1 funcref) (elem (table $fns) (i32.const 0) func $hmap)
  (table $refs (export "refs") 1 externref)
  (func (export "new") (param i32) (result externref) (call $new (local.get 0)))
  (func (export "map") (param externref i32 i32) (call $hmap (local.get 0) (local.get 1) (local.get 2)))
  (func (export "map_indirect") (param externref i32 i32)
    (call_indirect $fns (type $hmap_t) (local.get 0) (local.get 1) (local.get 2) (i32.const 0)))
  (func (export "map_from_table") (param i32) (call $hmap (table.get $refs (i32.const 0)) (local.get 0) (i32.const 1)))
  (func (export "move") (param externref i32) (call $move (local.get 0) (local.get 1)))
  (func (export "unmap") (param externref) (call $hunmap (local.get 0)))
  (func (export "pages") (param externref) (result i32) (call $pages (local.get 0)))
  (func (export "munmap") (param i32 i32) (call $unmap (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  %s)"""


def static_layout(**layout) -> str:
    return '(@custom "hwsim.memory" "' + "".join(f"\\{b:02x}" for b in record_bytes(**layout)) + '")'


@pytest.fixture(scope="module")
def engine():
    return api.Engine()


@pytest.fixture(scope="module")
def module(engine):
    return api.Module(engine, WAT % (MEMORY_PAGES, ""))


class Guests:
    """Two instances of the handle module in one Store (``a`` and ``b``)."""

    def __init__(self, engine, module, **store_options) -> None:
        self.store = api.Store(engine, **store_options)
        linker = api.Linker(engine)
        self.a, self.b = (linker.instantiate(self.store, module).exports(self.store) for _ in range(2))

    def where(self, guest) -> str:
        return f"memory at {guest['memory']._inner.base:#x}"

    def trap(self, guest, name, *args) -> str:
        """The detail of the trap ``guest[name](*args)`` raises (it must be a memory-control trap)."""
        with pytest.raises(api.Trap) as info:
            guest[name](self.store, *args)
        assert info.value.code is TrapCode.MEMORY_CONTROL
        return info.value.detail


@pytest.fixture
def g(engine, module):
    return Guests(engine, module)


def test_bad_externrefs_trap(g):
    for name, args in (("map", (0x10000, 1)), ("move", (0x10000,)), ("unmap", ()), ("pages", ())):
        assert g.trap(g.a, name, None, *args) == "null memory handle"
        assert g.trap(g.a, name, "forged", *args) == "not a memory handle (the externref holds a str)"
        assert g.trap(g.a, name, g.a["load"], *args) == "not a memory handle (the externref holds a Func)"


@pytest.mark.parametrize("pages", [0, -1, 65537])
def test_handle_new_of_a_bad_size_traps(g, pages):
    assert g.trap(g.a, "new", pages) == f"handle_new: {pages & 0xFFFF_FFFF} pages (1 to 65536)"


def test_handle_new_out_of_ram_traps_and_the_store_goes_on(engine, module):
    g = Guests(engine, module, ram_size=16 << 20)
    detail = g.trap(g.a, "new", 65536)
    assert re.fullmatch(
        r"handle_new: a memory handle of 65536 pages: out of physical memory: no run of 65536 "
        r"free frame\(s\) aligned to 0x1000 in 'ram' \(\d+ of 4096 frames free\)",
        detail,
    )
    h = g.a["new"](g.store, 2)
    assert g.a["pages"](g.store, h) == 2


def test_handle_new_out_of_ram_on_the_host_is_a_resource_limit_error(g):
    with pytest.raises(ResourceLimitError, match=r"^a memory handle of 1048576 pages: out of physical memory: "):
        MemoryHandle(g.store._store, 1 << 20)
    with pytest.raises(TypeError, match=r"^a handle's size is a number of pages, not 1.5$"):
        MemoryHandle(g.store._store, 1.5)


RANGES = [  # (address, what is wrong), for a 2-page handle in a 64 KiB-page memory of 4 MiB
    (0x10001, "offset 0x10001 and length 0x2000 must be positive multiples of 4096"),
    (0x3FF000, "[0x3ff000, +0x2000) is outside the memory of 0x400000 bytes"),
    (0xFFFFF000, "[0xfffff000, +0x2000) is outside the memory of 0x400000 bytes"),
]


@pytest.mark.parametrize("addr,wrong", RANGES)
def test_a_bad_range_traps_for_map_and_move_and_a_failed_move_keeps_the_handle(g, addr, wrong):
    h = g.a["new"](g.store, 2)
    assert g.trap(g.a, "map", h, addr, 1) == f"handle_map: {h.name}: {wrong}"
    assert h.places == {}
    g.a["map"](g.store, h, 0x20000, 1)
    g.a["store"](g.store, 0x21000, 77)
    assert g.trap(g.b, "move", h, addr) == f"handle_move: {h.name}: {wrong}"
    assert g.a["load"](g.store, 0x21000) == 77 and list(h.places.values())[0][1:] == [0x20, True, 2]


def test_a_static_region_is_refused(engine):
    module = api.Module(engine, WAT % (MEMORY_PAGES, static_layout(no_access=2 * PAGE)))
    g = Guests(engine, module)
    h = g.a["new"](g.store, 1)
    assert g.trap(g.a, "map", h, PAGE, 1) == f"handle_map: {h.name}: page 0x1 is in a static region"
    assert g.trap(g.a, "move", h, 0) == f"handle_move: {h.name}: page 0x0 is in a static region"
    assert h.places == {}  # and the no-access region is still in force:
    with pytest.raises(api.Trap) as info:
        g.a["load"](g.store, PAGE)
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED


def test_rule_breaking_traps_name_the_rule(g):
    h = g.a["new"](g.store, 1)
    g.a["map"](g.store, h, 0x10000, 1)
    assert g.trap(g.a, "map", h, 0x20000, 1) == f"handle_map: {h.name} is already mapped in this memory"
    assert g.trap(g.b, "map", h, 0x10000, 1) == (
        f"handle_map: {h.name} cannot be mapped writable: it is mapped in "
        f"{g.where(g.a)} (move it, or unmap it there first)"
    )
    assert g.trap(g.b, "map", h, 0x10000, 0) == (
        f"handle_map: {h.name} cannot be shared read-only: {g.where(g.a)} has it writable"
    )
    g.a["unmap"](g.store, h)
    assert g.trap(g.a, "unmap", h) == f"handle_unmap: {h.name} is not mapped in {g.where(g.a)}"
    g.b["map"](g.store, h, 0x10000, 0)
    assert g.trap(g.a, "move", h, 0x10000) == (
        f"handle_move: {h.name} is shared read-only in 1 memory: it cannot move until they unmap it"
    )


def test_a_freed_handle_traps_everywhere_and_freeing_twice_is_an_error(g):
    h = g.a["new"](g.store, 1)
    h.free()
    for name, args in (("map", (0x10000, 1)), ("move", (0x10000,)), ("unmap", ()), ("pages", ())):
        assert g.trap(g.a, name, h, *args) == f"handle_{name}: {h.name} was freed"
    with pytest.raises(HandleError, match=f"^{h.name} was already freed$"):
        h.free()


def test_a_handle_of_another_store_traps_even_past_the_api(engine, module):
    """The API refuses a foreign handle as an argument (tests/test_runtime_ownership.py); a handle put
    into a table below the API still cannot map the other Store's frames here."""
    g, other = Guests(engine, module), Guests(engine, module)
    h = other.a["new"](other.store, 1)
    refs = g.a["refs"]._inner
    refs.set(0, g.store._store.extern_handle(h))  # below the API: no ownership check
    with pytest.raises(api.Trap) as info:
        g.a["map_from_table"](g.store, 0x10000)
    assert info.value.detail == (
        f"handle_map: object used with the wrong store: {h.name} belongs to {other.store.name}, not to {g.store.name}"
    )
    assert h.places == {} and g.a["load"](g.store, 0x10000) == 0
    with pytest.raises(StoreMismatchError):
        h.map(g.a["memory"]._inner, 0x10000, writable=True)  # the host API refuses it too


def test_an_intrinsic_called_indirectly_traps_the_same(g):
    with pytest.raises(api.Trap) as info:
        g.a["map_indirect"](g.store, "forged", 0x10000, 1)
    assert info.value.code is TrapCode.MEMORY_CONTROL
    assert info.value.detail == "not a memory handle (the externref holds a str)"
    h = g.a["new"](g.store, 1)
    with pytest.raises(api.Trap) as info:
        g.a["map_indirect"](g.store, h, 0x10001, 1)
    assert (
        info.value.detail == f"handle_map: {h.name}: offset 0x10001 and length 0x1000 must be positive multiples "
        f"of 4096"
    )


def test_unmapping_a_handle_leaves_pages_another_mapping_took_over(g):
    """Before: x's unmap covered its whole original range, so it also unmapped y mapped over part of it."""
    x, y = g.a["new"](g.store, 2), g.a["new"](g.store, 1)
    g.a["map"](g.store, x, 0x20000, 1)
    g.a["map"](g.store, y, 0x21000, 1)  # replaces x's second page (as MAP_FIXED does)
    g.a["store"](g.store, 0x21000, 99)
    g.a["unmap"](g.store, x)
    assert g.a["load"](g.store, 0x21000) == 99 and list(y.places.values())[0][3] == 1 and x.places == {}
    g.a["munmap"](g.store, 0x21000, PAGE)  # the guest's own unmap ends y's place too
    assert y.places == {}
    y.free()
    x.free()


def test_out_of_frames_for_page_tables_traps_and_rolls_back(engine, module):
    g = Guests(engine, module, ram_size=8 << 20)
    h = g.a["new"](g.store, 2)
    g.a["store"](g.store, 0, 1)  # the page tables of the memory's first 2 MiB exist now
    hogs = []
    for size in (256, 64, 16, 4, 1):  # take every free frame
        while True:
            try:
                hogs.append(g.a["new"](g.store, size))
            except api.Trap:
                break
    assert g.store.machine.frames.available == 0
    detail = g.trap(g.a, "map", h, 0x200000, 1)  # the second 2 MiB needs a new page table
    assert detail.startswith("handle_map: map_host: no frame for the page tables (out of physical memory: ")
    assert h.places == {} and g.a["memory"]._inner.ctl.host_pages == {}
    buf = g.store.host_buffer(size=PAGE)
    with pytest.raises(ResourceLimitError, match=r"^map_host: no frame for the page tables"):
        g.a["memory"].map_host(g.store, 0x200000, buf)
    hogs[-1].free()  # one frame back: enough for the page table
    g.a["map"](g.store, h, 0x200000, 1)
    g.a["store"](g.store, 0x201000, 5)
    assert g.a["load"](g.store, 0x201000) == 5


# -- the property: random and hostile sequences keep the rules and the data ------------------------------

ADDRESSES = st.one_of(
    st.integers(0, MEMORY_PAGES * 16 - 1).map(lambda p: p * PAGE),
    st.sampled_from([0x10001, 0x3FF000, 0xFFFFF000, 0x8000_0000]),
)


class HandleMachine(RuleBasedStateMachine):
    """Two instances, handles made by wasm; each handle page holds a known word (written through its
    frames), so a load through any mapping says which handle page it reaches."""

    @initialize()
    def setup(self) -> None:
        engine = api.Engine()
        self.g = Guests(engine, api.Module(engine, WAT % (MEMORY_PAGES, "")), ram_size=64 << 20)
        self.guests = [self.g.a, self.g.b]
        self.handles: list[MemoryHandle] = []

    def _call(self, guest, name, *args) -> None:
        try:
            guest[name](self.g.store, *args)
        except api.Trap as trap:  # a misuse: always the memory-control trap
            assert trap.code is TrapCode.MEMORY_CONTROL, trap

    def _handle(self, index: int):
        return self.handles[index % len(self.handles)] if self.handles else None

    @rule(pages=st.sampled_from([0, 1, 2, 3, 65537]), who=st.integers(0, 1))
    def new(self, pages, who):
        try:
            h = self.guests[who]["new"](self.g.store, pages)
        except api.Trap as trap:
            assert trap.code is TrapCode.MEMORY_CONTROL and pages in (0, 65537)
            return
        for k in range(h.pages):
            self.g.store.machine.phys.write(h.page_pa(k), self._word(h, k).to_bytes(4, "little"))
        self.handles.append(h)

    @rule(
        who=st.integers(0, 1),
        index=st.integers(0, 7),
        addr=ADDRESSES,
        writable=st.sampled_from([0, 1, 2]),
        bad=st.sampled_from([None, None, None, "null", "forged"]),
    )
    def map(self, who, index, addr, writable, bad):
        h = {None: self._handle(index), "null": None, "forged": object()}[bad]
        self._call(self.guests[who], "map", h, addr, writable)

    @rule(who=st.integers(0, 1), index=st.integers(0, 7), addr=ADDRESSES)
    def move(self, who, index, addr):
        self._call(self.guests[who], "move", self._handle(index), addr)

    @rule(who=st.integers(0, 1), index=st.integers(0, 7))
    def unmap(self, who, index):
        self._call(self.guests[who], "unmap", self._handle(index))

    @rule(who=st.integers(0, 1), addr=ADDRESSES, pages=st.integers(1, 3))
    def guest_unmap(self, who, addr, pages):
        try:
            self.guests[who]["munmap"](self.g.store, addr, pages * PAGE)
        except api.Trap as trap:
            assert trap.code in (TrapCode.MEMORY_OUT_OF_BOUNDS, TrapCode.MEMORY_CONTROL)

    @rule(index=st.integers(0, 7))
    def host_free(self, index):
        h = self._handle(index)
        if h is None:
            return
        try:
            h.free()
        except HandleError:
            assert h.freed or h.places
        else:
            self.handles.remove(h)

    @staticmethod
    def _word(h: MemoryHandle, k: int) -> int:
        return (int(h.name.split()[1]) << 8 | k) & 0xFFFF_FFFF

    @invariant()
    def rules_hold_and_every_mapped_page_is_its_handle(self):
        if not hasattr(self, "g"):
            return
        for h in self.handles:
            writers = [p for p in h.places.values() if p[2]]
            assert not writers or len(h.places) == 1, f"{h.name} has a writer and other places"
            for memory, first, _writable, count in h.places.values():
                ours = [p for p in range(first, first + h.pages) if memory.ctl.host_pages.get(p, (None,))[0] is h]
                assert len(ours) == count
        for guest in self.guests:
            memory = guest["memory"]._inner
            pages = memory.ctl.host_pages if memory.ctl is not None else {}
            for page, (buffer, bpage, _writable) in pages.items():
                assert isinstance(buffer, MemoryHandle) and buffer in self.handles and not buffer.freed
                assert id(memory) in buffer.places
                assert guest["load"](self.g.store, page * PAGE) == self._word(buffer, bpage)


HandleMachine.TestCase.settings = settings(
    max_examples=examples(40), stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
test_handle_sequences = HandleMachine.TestCase


def test_the_host_api_takes_the_memory_an_instance_exports(g):
    """MemoryHandle.map/move/unmap take the public Memory from instance.exports (hwsim.MemoryHandle), not
    only the runtime's own; anything else is a TypeError naming the call."""
    import hwsim

    h = g.a["new"](g.store, 1)
    assert isinstance(h, hwsim.MemoryHandle)
    memory = g.a["memory"]  # the public Memory
    h.map(memory, 0x10000, writable=True)
    memory.write(g.store, b"\x2a", 0x10000)
    assert g.a["load"](g.store, 0x10000) == 0x2A
    h.unmap(memory)
    h.move(memory, 0x20000)
    assert g.a["load"](g.store, 0x20000) == 0x2A
    with pytest.raises(TypeError, match=r"MemoryHandle.map\(memory\): expected a Memory, not str"):
        h.map("memory", 0x10000, writable=True)


def test_the_public_memory_of_another_store_is_refused(engine, module):
    """The attack through the public object: a handle of one Store mapped into the Memory another Store's
    instance exports is refused before anything is mapped."""
    g, other = Guests(engine, module), Guests(engine, module)
    h = other.a["new"](other.store, 1)
    with pytest.raises(StoreMismatchError):
        h.map(g.a["memory"], 0x10000, writable=True)
    with pytest.raises(StoreMismatchError):
        h.move(g.a["memory"], 0x10000)
    assert h.places == {} and g.a["load"](g.store, 0x10000) == 0


def test_a_handle_is_made_from_the_public_store():
    """hwsim.MemoryHandle(store, pages) takes the Store the embedder holds (it used to need the runtime's
    own, and refused a mapping into that Store's memory as 'belongs to Store 1, not to Store 1')."""
    import hwsim

    store = hwsim.Store()
    memory = hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(1)))
    h = hwsim.MemoryHandle(store, 1)
    h.map(memory, 0, writable=True)
    memory.write(store, b"hw", 0)
    assert memory.read(store, 0, 2) == b"hw"
    with pytest.raises(TypeError, match=r"MemoryHandle\(store\): expected a Store, not int"):
        hwsim.MemoryHandle(3, 1)
