"""Fault-around in the Store's pager: pages mapped ahead of sequential guest touches, never where a
touch would not map one (past the memory's end, into the guard, over a page with another state, over
a released page), and only when switched on."""

from __future__ import annotations

from test_runtime_memctl import ACCESSORS, INTRINSICS, Guest, custom

from hwsim.compiler.traps import TrapCode
from hwsim.runtime.internal import vm_store
from hwsim.runtime.space import FAULT_AROUND_RESERVE

PAGE = 4096
AHEAD = 8


def guest(pages=1, layout="", fault_around=AHEAD) -> Guest:
    g = Guest(f'(module {INTRINSICS} (memory (export "memory") {pages} 4) {ACCESSORS} {layout})')
    vm_store(g.store).fault_around = fault_around
    return g


def resident(g: Guest) -> list[int]:
    return [page for page, flag in enumerate(g.memory.resident) if flag]


def is_mapped(g: Guest, page: int) -> bool:
    return vm_store(g.store).space.lookup(g.memory.base + page * PAGE) is not None


def test_sequential_touches_map_the_next_pages():
    g = guest(pages=2)
    g("store", 0, 1)
    g("store", PAGE, 2)  # follows page 0: pages 2..9 come with it
    assert resident(g) == list(range(0, 2 + AHEAD))
    assert all(is_mapped(g, p) for p in range(2 + AHEAD))
    assert [g("load", p * PAGE) for p in range(4)] == [1, 2, 0, 0]


def test_off_by_default_and_for_scattered_touches():
    g = guest(pages=2, fault_around=0)
    for p in range(4):
        g("store", p * PAGE, 1)
    assert resident(g) == [0, 1, 2, 3]
    g = guest(pages=2)
    for p in (0, 5, 3, 9):  # no touch follows the page before it
        g("store", p * PAGE, 1)
    assert resident(g) == [0, 3, 5, 9]


def test_never_maps_past_the_memory_end_or_into_the_guard():
    g = guest(pages=1)  # 16 pages; the guard follows
    g("store", 13 * PAGE, 1)
    g("store", 14 * PAGE, 1)  # would map 15..22: only 15 is in the memory
    assert resident(g) == [13, 14, 15]
    assert not any(is_mapped(g, p) for p in range(16, 16 + AHEAD + 1))
    assert g.memory.committed_bytes == 3 * PAGE
    assert g.trap("load", 16 * PAGE).code is TrapCode.MEMORY_OUT_OF_BOUNDS


def test_a_grown_memory_is_faulted_around_to_its_new_end_only():
    g = guest(pages=1)
    g.exports["memory"].grow(g.store, 1)  # 32 pages now
    g("store", 30 * PAGE, 1)
    g("store", 31 * PAGE, 1)
    assert resident(g) == [30, 31] and not is_mapped(g, 32)


def test_stops_before_a_protected_page():
    g = guest(pages=1)
    g("protect", 4 * PAGE, PAGE, 0)  # page 4: no access
    g("protect", 9 * PAGE, PAGE, 1)  # page 9: read-only
    g("store", 2 * PAGE, 1)
    g("store", 3 * PAGE, 1)  # would map 4..11: page 4 has another state, so nothing
    assert resident(g) == [2, 3] and not is_mapped(g, 4)
    assert g.trap("load", 4 * PAGE).code is TrapCode.MEMORY_ACCESS_DENIED
    g("store", 7 * PAGE, 1)
    g("store", 8 * PAGE, 1)  # page 9 is read-only: stops there
    assert 9 not in resident(g) and not is_mapped(g, 9)
    assert g.trap("store", 9 * PAGE, 5).code is TrapCode.MEMORY_ACCESS_DENIED


def test_never_maps_a_page_the_state_keeps_unmapped():
    g = guest(pages=1, layout=custom(virtual=True))
    assert g("map", 0, 3 * PAGE, 2) == 0  # pages 0..2 mapped; the rest stay unmapped
    g("store", 0, 1)
    g("store", PAGE, 1)
    assert resident(g) == [0, 1, 2] and not is_mapped(g, 3)
    assert g.trap("load", 3 * PAGE).code is TrapCode.MEMORY_ACCESS_DENIED


def test_never_brings_back_a_discarded_page():
    g = guest(pages=1)
    for p in range(8):
        g("store", p * PAGE, 7)
    g("discard", 2 * PAGE, 14 * PAGE)  # releases 2..15 (resident ones: faulted around as well)
    assert resident(g) == [0, 1]
    g("store", 2 * PAGE, 1)
    g("store", 3 * PAGE, 1)  # follows page 2; 4..11 were discarded: they stay released
    assert resident(g) == [0, 1, 2, 3]
    assert not any(is_mapped(g, p) for p in range(4, 16))
    assert g("load", 5 * PAGE) == 0  # a discarded page reads zero, as always (the load maps it)
    assert resident(g) == [0, 1, 2, 3, 5]


def test_never_takes_the_frames_of_a_guest_near_the_end_of_ram():
    g = guest(pages=1)
    frames = vm_store(g.store).machine.frames
    count = frames.available - (FAULT_AROUND_RESERVE - 4)  # the guest keeps fewer frames than the reserve
    hog = frames.alloc(count, zero=False)
    g("store", 0, 1)
    g("store", PAGE, 1)
    assert resident(g) == [0, 1]
    frames.free(hog, count)
    g("store", 2 * PAGE, 1)  # frames again: fault-around resumes
    assert resident(g) == list(range(3 + AHEAD))
