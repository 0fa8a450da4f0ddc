"""Attacks on the DMA checker's IOVA allocator (hwsim/driver/dma.py ``_allocate_iova``): sizes that cross
page boundaries, mappings bigger than the window, wrap-around with live mappings at both ends of the
window, late DMA after unmap (named for the old mapping until its IOVAs are given out again), syncs on
reused IOVAs, and coherent allocations in between."""

from __future__ import annotations

from test_dma_iova_window import DMA0, IOVA_BASE, PAGE, check_invariants, checker

from hwsim.driver.dma import Problem


def _problems(dma) -> list[tuple[Problem, str | None]]:
    return [(r.problem, r.mapping.creator if r.mapping is not None else None) for r in dma.reports]


def test_late_dma_to_pages_of_an_unmapped_mapping_not_given_out_again_is_after_unmap():
    """A new mapping that reuses the first pages of an unmapped one takes only those: a late DMA to the
    old mapping's other pages is still after its unmap, not a DMA to an IOVA never mapped."""
    run, dma = checker(window_pages=8)
    a = dma.map("dma0", 0x1000, 3 * PAGE, 1, "a")  # pages 0-2, gap 3
    dma.unmap("dma0", a, 3 * PAGE, 1, "a gone")
    dma.unmap("dma0", dma.map("dma0", 0x5000, 100, 1, "x"), 100, 1, "x gone")  # pages 4-5
    dma.map("dma0", 0x5000, 100, 1, "y")  # pages 6-7
    b = dma.map("dma0", 0x6000, 100, 1, "b")  # round again: pages 0-1 (a's first two)
    assert b == a
    assert not run.system.iommu.dma(DMA0, a + 2 * PAGE, 4, write=False).ok
    assert _problems(dma) == [(Problem.AFTER_UNMAP, "a")]
    # The pages given out are the new mapping's (page 0) or its gap page (page 1): not a's any more.
    assert run.system.iommu.dma(DMA0, b, 4, write=False).ok
    assert len(dma.reports) == 1
    check_invariants(dma)
    # A double unmap of a: its first IOVA is b's now (what the IOMMU driver would do too).
    c = dma.map("dma0", 0x7000, 2 * PAGE, 1, "c")  # takes pages 2-4: the rest of a goes
    assert c == a + 2 * PAGE
    assert all(m.creator != "a" for m in dma.mappings)
    check_invariants(dma)


def test_wrap_around_with_live_mappings_at_the_start_and_the_end_of_the_window():
    run, dma = checker(window_pages=11)
    first = dma.map("dma0", 0x1000, 100, 2, "first")  # page 0, gap 1
    middle = [dma.map("dma0", 0x2000 + k * PAGE, PAGE + 1, 2, f"m{k}") for k in range(2)]  # 2-4, 5-7
    last = dma.map("dma0", 0x9000 + 0xFFF, 2, 2, "last")  # crosses a page: pages 8-9, gap 10 (the last)
    assert first == IOVA_BASE and last == IOVA_BASE + 8 * PAGE + 0xFFF
    for iova in middle:
        dma.unmap("dma0", iova, PAGE + 1, 2, "gone")
    got = []
    for k in range(12):  # round and round: never on page 0-1 nor 8-10, nor across the window's end
        iova = dma.map("dma0", 0x3000 + (k % 3) * 0x800, 1 + k * 300, 2, f"r{k}")
        first_page, length = dma.by_start[(DMA0, iova)].pages()
        assert (
            IOVA_BASE + 2 * PAGE <= first_page
            and first_page + length + PAGE <= IOVA_BASE + 8 * PAGE
            or (first_page >= IOVA_BASE + 11 * PAGE)
        ), (k, hex(iova))
        got.append(iova)
        check_invariants(dma)
        dma.unmap("dma0", iova, 1 + k * 300, 2, "gone")
    assert run.system.iommu.dma(DMA0, first, 100, write=True, data=bytes(100)).ok
    assert run.system.iommu.dma(DMA0, last, 2, write=True, data=b"xy").ok
    assert dma.reports == []


def test_a_mapping_bigger_than_the_window_and_its_late_dma():
    run, dma = checker(window_pages=4)
    big = dma.map("dma0", 0x1000, 9 * PAGE + 5, 2, "big")
    assert big >= IOVA_BASE + 4 * PAGE
    dma.unmap("dma0", big, 9 * PAGE + 5, 2, "big gone")
    small = dma.map("dma0", 0x1000, 100, 2, "small")  # in the window again
    assert small == IOVA_BASE
    assert not run.system.iommu.dma(DMA0, big + 9 * PAGE, 4, write=True, data=b"late").ok
    assert _problems(dma) == [(Problem.AFTER_UNMAP, "big")]
    again = dma.map("dma0", 0x1000, 9 * PAGE + 5, 2, "again")  # above, never on big's old IOVAs
    assert again >= big + 10 * PAGE
    assert not run.system.iommu.dma(DMA0, big, 4, write=False).ok
    assert _problems(dma)[-1] == (Problem.AFTER_UNMAP, "big")
    check_invariants(dma)


def test_sync_on_a_reused_iova_is_the_new_mappings():
    run, dma = checker(window_pages=4)
    a = dma.map("dma0", 0x1000, 100, 2, "a")  # pages 0-1
    dma.unmap("dma0", a, 100, 2, "a gone")
    dma.sync("dma0", a, 100, 2, True, "sync a late")
    assert _problems(dma) == [(Problem.SYNC_UNMAPPED, None)]
    x = dma.map("dma0", 0x2000, 100, 2, "x")  # pages 2-3
    b = dma.map("dma0", 0x3000, 200, 1, "b")  # round again: a's IOVA
    assert b == a
    dma.sync("dma0", b, 200, 1, True, "sync b")
    dma.sync("dma0", b, 200, 1, False, "sync b back")
    assert len(dma.reports) == 1
    assert run.system.iommu.dma(DMA0, b, 200, write=False).ok
    assert len(dma.reports) == 1
    dma.sync("dma0", b + 150, 100, 1, True, "past b's end")
    assert _problems(dma)[-1] == (Problem.SYNC_RANGE, "b")
    dma.unmap("dma0", b, 200, 1, "b gone")
    dma.unmap("dma0", x, 100, 2, "x gone")
    check_invariants(dma)


def test_coherent_allocations_interleaved_with_streaming_mappings():
    run, dma = checker(window_pages=8)
    cpu0, c0 = dma.alloc_coherent("dma0", 3 * PAGE, "coherent 0")  # pages 0-2, gap 3
    s = dma.map("dma0", 0x1000, 100, 1, "s")  # pages 4-5
    dma.unmap("dma0", s, 100, 1, "s gone")
    cpu1, c1 = dma.alloc_coherent("dma0", 100, "coherent 1")  # pages 6-7
    streams = []
    for k in range(6):  # the window's only room is s's old pages
        iova = dma.map("dma0", 0x2000, 100, 1, f"t{k}")
        streams.append(iova)
        check_invariants(dma)
        dma.unmap("dma0", iova, 100, 1, "gone")
    assert all(iova == s for iova in streams)
    assert run.system.iommu.dma(DMA0, c0 + 3 * PAGE - 4, 4, write=True, data=b"abcd").ok
    assert run.system.iommu.dma(DMA0, c1, 4, write=True, data=b"efgh").ok
    assert dma.reports == []
    dma.free_coherent("dma0", 3 * PAGE, cpu0, c0, "free 0")
    t = dma.map("dma0", 0x2000, 2 * PAGE, 1, "t")  # s's pages are the next; then round to c0's
    t2 = dma.map("dma0", 0x5000, PAGE, 1, "t2")
    assert (t, t2) == (c0, c0 + 3 * PAGE) or t2 == c0, (hex(t), hex(t2))
    assert not run.system.iommu.dma(DMA0, c1 + PAGE, 4, write=False).ok  # c1's gap page: nobody's
    check_invariants(dma)
