"""hwsim.mmu.tlb: hits, misses, LRU, and the four sfence.vma flush forms."""

from __future__ import annotations

import pytest

from hwsim.mmu import Tlb
from hwsim.mmu.tlb import GLOBAL
from hwsim.mmu.walker import Translation


def entry(va: int, pa: int, level: int = 0, global_: bool = False) -> Translation:
    size = 1 << (12 + 9 * level)
    return Translation(va, pa, level, size, 0, 0xCF, global_)


def test_miss_then_hit_and_stats():
    tlb = Tlb()
    assert tlb.lookup(1, 0x5000) is None
    tlb.insert(1, entry(0x5000, 0x8000_5000))
    hit = tlb.lookup(1, 0x5FF8)
    assert hit is not None and hit.pa_of(0x5FF8) == 0x8000_5FF8
    assert tlb.lookup(2, 0x5000) is None  # another ASID
    assert tlb.stats.as_dict() == {
        "lookups": 3,
        "hits": 1,
        "misses": 2,
        "fills": 1,
        "evictions": 0,
        "flushes": 0,
        "flushed_entries": 0,
    }


def test_superpage_entry_covers_its_whole_page():
    tlb = Tlb()
    tlb.insert(0, entry(0x4000_0000, 0x8000_0000, level=1))
    assert tlb.lookup(0, 0x401F_FFFF).pa_of(0x401F_FFFF) == 0x801F_FFFF
    assert tlb.lookup(0, 0x4020_0000) is None


def test_global_entries_match_every_asid():
    tlb = Tlb()
    tlb.insert(7, entry(0x5000, 0x9000, global_=True))
    assert tlb.lookup(3, 0x5000) is not None
    assert tlb.entries() == [(GLOBAL, entry(0x5000, 0x9000, global_=True))]


def test_lru_eviction_keeps_recently_used():
    tlb = Tlb(capacity=2)
    tlb.insert(0, entry(0x1000, 0x1000))
    tlb.insert(0, entry(0x2000, 0x2000))
    tlb.lookup(0, 0x1000)  # touch 0x1000: 0x2000 is now least recent
    tlb.insert(0, entry(0x3000, 0x3000))
    assert tlb.probe(0, 0x2000) is None
    assert tlb.probe(0, 0x1000) is not None and tlb.probe(0, 0x3000) is not None
    assert tlb.stats.evictions == 1


@pytest.fixture
def full():
    tlb = Tlb()
    tlb.insert(1, entry(0x1000, 0xA000))
    tlb.insert(2, entry(0x1000, 0xB000))
    tlb.insert(1, entry(0x2000, 0xC000))
    tlb.insert(1, entry(0x1000_0000, 0xD000, global_=True))
    tlb.insert(1, entry(0x4000_0000, 0x8000_0000, level=1))
    return tlb


def test_flush_all(full):
    assert full.flush() == 5 and len(full) == 0


def test_flush_by_address_hits_every_asid_and_global(full):
    assert full.flush(va=0x1000) == 2
    assert full.probe(1, 0x1000) is None and full.probe(2, 0x1000) is None
    assert full.flush(va=0x1000_0000) == 1  # the global one goes too
    assert full.flush(va=0x4012_3000) == 1  # an address inside a superpage drops it
    assert len(full) == 1


def test_flush_by_asid_keeps_global(full):
    assert full.flush(asid=1) == 3
    assert full.probe(1, 0x1000_0000) is not None  # global survives
    assert full.probe(2, 0x1000) is not None


def test_flush_by_address_and_asid(full):
    assert full.flush(va=0x1000, asid=1) == 1
    assert full.probe(2, 0x1000) is not None
    assert full.flush(va=0x1000_0000, asid=1) == 0  # global kept
    assert full.stats.flushes == 2 and full.stats.flushed_entries == 1


def test_probe_does_not_count():
    tlb = Tlb()
    tlb.probe(0, 0)
    assert tlb.stats.lookups == 0


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="TLB capacity must be positive, not 0"):
        Tlb(capacity=0)


def _hit_pages_by_hand(tlb: Tlb, asid: int, va: int, end: int, flags: int) -> tuple[list[tuple[int, int]], int]:
    """hit_pages as a loop of hit(): what it must equal, pieces, stop, counters and LRU order alike."""
    pieces: list[tuple[int, int]] = []
    while va < end:
        tr = tlb.hit(asid, va, flags)
        if tr is None:
            break
        n = min(end, (va | (tr.page_size - 1)) + 1) - va
        pa = tr.pa_of(va)
        if pieces and pieces[-1][0] + pieces[-1][1] == pa:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + n)
        else:
            pieces.append((pa, n))
        va += n
    return pieces, va


HIT_PAGES_SEEN: list[int] = []  # pieces per case: the cases must not all be misses (checked below)


@pytest.mark.parametrize("seed", range(40))
def test_hit_pages_is_hit_page_after_page(seed):
    """Random entries (4 KiB and 2 MiB, global or not, some without W, some physically contiguous) and a
    random range: the same pieces, stopping page, statistics and LRU order as hit() called per page."""
    import random

    rng = random.Random(seed)
    tlbs = (Tlb(capacity=64), Tlb(capacity=64))
    base = 0x1000_0000
    for _ in range(rng.randint(0, 24)):
        level = 1 if rng.random() < 0.15 else 0
        size = 1 << (12 + 9 * level)
        va = (base + rng.randrange(0, 48) * 0x1000) & ~(size - 1)
        pa = 0x8000_0000 + (va - base if rng.random() < 0.7 else rng.randrange(0, 64) * size)
        pte = 0xCF if rng.random() < 0.8 else 0xCB  # 0xCB: no W
        tr = Translation(va, pa & ~(size - 1), level, size, 0, pte, rng.random() < 0.2)
        asid = rng.choice((1, 2))
        for tlb in tlbs:
            tlb.insert(asid, tr)
    # a range that starts on an entry, when there is one (so runs of hits are the usual case)
    starts = [tr.va for _, tr in tlbs[0].entries()] or [base]
    start = rng.choice(starts) + rng.choice((0, 0x10, 0xFF8))
    end = start + rng.randint(1, 20 * 0x1000)
    flags = rng.choice((0, 0x2, 0x4))
    got = tlbs[0].hit_pages(1, start, end, flags)
    assert got == _hit_pages_by_hand(tlbs[1], 1, start, end, flags)
    HIT_PAGES_SEEN.append(len(got[0]))
    assert tlbs[0].stats.as_dict() == tlbs[1].stats.as_dict()
    assert tlbs[0].entries() == tlbs[1].entries()
    assert tlbs[0].hit_pages(2, start, end, flags) == _hit_pages_by_hand(tlbs[1], 2, start, end, flags)
    assert tlbs[0].stats.as_dict() == tlbs[1].stats.as_dict()


def test_hit_pages_cases_include_runs_of_several_pieces():
    for seed in range(40):
        test_hit_pages_is_hit_page_after_page(seed)
    assert HIT_PAGES_SEEN.count(0) < len(HIT_PAGES_SEEN) // 2 and max(HIT_PAGES_SEEN) >= 2
