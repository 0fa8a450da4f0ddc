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
