"""The DMA checker's IOVA allocator (hwsim/driver/dma.py ``_allocate_iova``): round robin in a window.

Unmapped IOVAs are given out again only when the allocator comes round to them, a live mapping and its
gap page are never given out, and the records of a run that maps and unmaps without end stay bounded.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.driver import DriverRun
from hwsim.driver.dma import IOVA_BASE, IOVA_WINDOW, Problem
from hwsim.runtime.api import _wat_to_wasm

PAGE = 4096
DMA0 = 1  # dma0's IOMMU device ID on the default board
WASM = _wat_to_wasm('(module (memory (export "memory") 64) (func (export "probe") (result i32) (i32.const 0)))')


def checker(window_pages: int):
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    run = DriverRun(system, WASM, log=lambda text: None)
    run.dma.iova_window = window_pages * PAGE
    return run, run.dma


def check_invariants(dma) -> None:
    """Live mappings (with their gap pages) never share an IOVA page; each is indexed and translated by
    the IOMMU to its own frames; the index holds nothing but the records kept."""
    spans = []
    for m in dma.mappings:
        if m.unmapped_by is not None:
            continue
        first, length = m.pages()
        spans.append((first, first + length + PAGE))
        assert dma.by_start[(DMA0, m.iova)] is m
        for k, page in enumerate(range(first, first + length, PAGE)):
            assert dma.by_page[(DMA0, page)] is m
            assert dma.spaces[DMA0].lookup(page).pa == m.frames[k]
    spans.sort()
    assert all(end <= nxt for (_, end), (nxt, _) in zip(spans, spans[1:])), spans
    records = {id(m) for m in dma.mappings}
    assert {id(m) for m in dma.by_page.values()} <= records


def test_unmapped_iovas_wait_for_the_allocator_to_come_round():
    run, dma = checker(window_pages=8)
    a = dma.map("dma0", 0x1000, 100, 1, "a")
    assert run.system.iommu.dma(DMA0, a, 4, write=False).ok  # (the IOTLB now holds a's translation)
    dma.unmap("dma0", a, 100, 1, "a gone")
    b = dma.map("dma0", 0x2000, 100, 1, "b")
    assert (a, b) == (IOVA_BASE, IOVA_BASE + 2 * PAGE)  # not a's IOVA: it was just unmapped
    assert not run.system.iommu.dma(DMA0, a, 4, write=False).ok  # a late DMA to a faults ...
    assert [r.problem for r in dma.reports] == [Problem.AFTER_UNMAP]  # ... and is named for a
    for k in range(2):  # to the end of the window (pages 4-7); then a's IOVA is given out again
        dma.unmap("dma0", dma.map("dma0", 0x3000, 100, 1, f"c{k}"), 100, 1, "c gone")
    c = dma.map("dma0", 0x3000, 100, 0, "c")
    assert c == a and dma.by_start[(DMA0, c)].creator == "c"
    assert all(m.creator != "a" for m in dma.mappings)
    assert run.system.iommu.dma(DMA0, c, 4, write=True, data=b"wxyz").ok and len(dma.reports) == 1  # c's now
    phys, frame_of = run.system.machine.phys, dma.memory.frame_of
    assert phys.read(frame_of(0x3000), 4) == b"wxyz" and phys.read(frame_of(0x1000), 4) == bytes(4)
    check_invariants(dma)


def test_a_live_mapping_and_its_gap_page_are_never_given_out():
    run, dma = checker(window_pages=8)
    ring = dma.map("dma0", 0x1000, 2 * PAGE, 2, "ring")  # pages 0-1, gap page 2
    for k in range(50):
        iova = dma.map("dma0", 0x4000, 100, 1, f"buf{k}")
        assert not ring <= iova < ring + 3 * PAGE
        dma.unmap("dma0", iova, 100, 1, "gone")
        check_invariants(dma)
    assert dma.by_start[(DMA0, ring)].creator == "ring"


def test_records_stay_bounded_however_long_the_run():
    run, dma = checker(window_pages=32)
    for k in range(2000):
        iova = dma.map("dma0", 0x1000 * (1 + k % 8), 1 + k % 5000, 2, "buf")
        dma.unmap("dma0", iova, 1 + k % 5000, 2, "gone")
    assert len(dma.by_page) <= 32 and len(dma.by_start) <= 16 and len(dma.mappings) <= 16
    assert max(page for _, page in dma.by_page) < IOVA_BASE + 32 * PAGE
    assert dma.reports == []


def test_a_mapping_the_window_cannot_hold_goes_above_it():
    run, dma = checker(window_pages=4)
    small = dma.map("dma0", 0x1000, 100, 1, "small")
    big = dma.map("dma0", 0x2000, 6 * PAGE, 2, "big")  # 6 pages and a gap page: more than the window
    full = dma.map("dma0", 0x9000, 2 * PAGE, 1, "full")  # the window's free pages are too few: above too
    assert small == IOVA_BASE and big >= IOVA_BASE + 4 * PAGE and full >= big + 7 * PAGE
    assert run.system.iommu.dma(DMA0, big + 6 * PAGE - 4, 4, write=True, data=b"abcd").ok
    check_invariants(dma)
    for iova, size, direction in ((small, 100, 1), (big, 6 * PAGE, 2), (full, 2 * PAGE, 1)):
        dma.unmap("dma0", iova, size, direction, "gone")
    assert dma.reports == []


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.integers(1, 3 * PAGE), st.integers(0, 40), st.integers(0, 10**6)),
        min_size=1,
        max_size=60,
    ),
    st.integers(4, 24),
)
def test_random_maps_and_unmaps_keep_live_mappings_apart(ops, window):
    run, dma = checker(window_pages=window)
    live: list[tuple[int, int]] = []
    for unmap, size, page, pick in ops:
        if unmap and live:
            iova, size = live.pop(pick % len(live))
            dma.unmap("dma0", iova, size, 0, "gone")
        else:
            cpu = 0x1000 + page * PAGE + pick % PAGE
            live.append((dma.map("dma0", cpu, size, 0, "buf"), size))
        check_invariants(dma)
    assert dma.reports == []
    for iova, size in live:  # each live mapping reaches its own bytes through the IOMMU
        assert run.system.iommu.dma(DMA0, iova, size, write=False).ok
    assert [r.problem for r in dma.reports] == []


def test_the_default_window_is_below_4_gib():
    system = load_board(DEFAULT_BOARD).build(options={"uart0": {"backend": "memory"}})
    dma = DriverRun(system, WASM, log=lambda text: None).dma
    assert dma.iova_window == IOVA_WINDOW and IOVA_BASE + IOVA_WINDOW <= 1 << 32
