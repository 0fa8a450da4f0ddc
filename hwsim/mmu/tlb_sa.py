"""A set-associative TLB model for teaching: chosen geometry (sets x ways) and replacement (LRU, FIFO, random).

The CPU and the IOMMU use :class:`hwsim.mmu.tlb.Tlb` (fully associative, LRU); this model answers
``hwsim mmu tlb-quiz --sets/--ways/--policy/--split``.  It keeps ``Tlb``'s interface (``lookup``,
``insert``, ``flush``, ``entries``, ``probe``) and its ``sfence.vma`` rules, and adds where entries live::

    set of an entry = (va >> page_shift(level)) mod sets      the VPN *at the entry's own level*

so a 4 KiB entry is placed by va bits 12 and up, a 2 MiB entry by bits 21 and up.  A lookup probes, for
each page size the TLB holds, the set that size's VPN selects (hardware that caches several page sizes
in one array does this, or keeps one array per size).  The choice keeps consecutive pages of each size in
different sets, and makes a superpage compete only with the entries that share its set.

Replacement, within the set of the entry being filled (a set with a free way never evicts):

* ``lru``: the least recently used way (a hit refreshes it);
* ``fifo``: the way filled longest ago (hits change nothing);
* ``random``: way ``rng.randrange(ways)`` of the set as ordered oldest fill first, with
  ``rng = random.Random(seed)`` drawn once per eviction (reproducible from the seed).

Split TLBs (:class:`SplitTlb`): instruction fetches use the ITLB, loads and stores the DTLB; both have
the same geometry, and ``sfence.vma`` flushes both.
"""

from __future__ import annotations

import enum
import random

from ..riscv.priv import Access
from .bits import PAGE_SHIFT
from .tlb import GLOBAL, TlbStats
from .walker import Translation

_SHIFTS = tuple(PAGE_SHIFT + 9 * level for level in range(5))


class Policy(enum.Enum):
    LRU = "lru"
    FIFO = "fifo"
    RANDOM = "random"


class SetAssocTlb:
    """``sets`` x ``ways`` entries; each set is a list of ``(key, Translation)``, in replacement order
    (the next victim first: least recently used for LRU, oldest fill for FIFO and random)."""

    def __init__(self, *, sets: int, ways: int, policy: Policy | str = Policy.LRU, seed: int = 0) -> None:
        if sets <= 0 or sets & (sets - 1):
            raise ValueError(f"the number of sets must be a power of two, not {sets}")
        if ways <= 0:
            raise ValueError(f"the number of ways must be positive, not {ways}")
        self.sets, self.ways = sets, ways
        self.policy = Policy(policy)
        self.rng = random.Random(seed)
        self.stats = TlbStats()
        self._sets: list[list[tuple[tuple[int, int, int], Translation]]] = [[] for _ in range(sets)]

    @property
    def capacity(self) -> int:
        return self.sets * self.ways

    def __len__(self) -> int:
        return sum(len(s) for s in self._sets)

    def set_of(self, level: int, va: int) -> int:
        return (va >> _SHIFTS[level]) % self.sets

    def entries(self) -> list[tuple[int, Translation]]:
        """``(asid, translation)`` pairs, set 0 first, each set in replacement order."""
        return [(key[2], tr) for s in self._sets for key, tr in s]

    def entries_by_set(self) -> list[list[tuple[int, Translation]]]:
        return [[(key[2], tr) for key, tr in s] for s in self._sets]

    def _find(self, asid: int, va: int) -> tuple[int, int] | None:
        """``(set, way)`` of the entry translating ``va`` for ``asid`` (smallest page size first)."""
        for level, shift in enumerate(_SHIFTS):
            vpn = va >> shift
            index = vpn % self.sets
            for way, (key, _tr) in enumerate(self._sets[index]):
                if key[0] == level and key[1] == vpn and key[2] in (asid, GLOBAL):
                    return index, way
        return None

    def probe(self, asid: int, va: int) -> Translation | None:
        found = self._find(asid, va)
        return None if found is None else self._sets[found[0]][found[1]][1]

    def lookup(self, asid: int, va: int) -> Translation | None:
        self.stats.lookups += 1
        found = self._find(asid, va)
        if found is None:
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        index, way = found
        entry = self._sets[index][way]
        if self.policy is Policy.LRU:
            del self._sets[index][way]
            self._sets[index].append(entry)
        return entry[1]

    def insert(self, asid: int, tr: Translation) -> list[tuple[int, Translation]]:
        """Fill an entry for ``tr``; returns what it evicted (``(asid, translation)``, at most one)."""
        key = (tr.level, tr.va >> _SHIFTS[tr.level], GLOBAL if tr.global_ else asid)
        s = self._sets[key[1] % self.sets]
        self.stats.fills += 1
        for way, (k, _) in enumerate(s):
            if k == key:  # the same page filled again: replace it in place, as the newest
                del s[way]
                s.append((key, tr))
                return []
        evicted: list[tuple[int, Translation]] = []
        if len(s) >= self.ways:
            way = self.rng.randrange(len(s)) if self.policy is Policy.RANDOM else 0
            old_key, old = s.pop(way)
            evicted.append((old_key[2], old))
            self.stats.evictions += 1
        s.append((key, tr))
        return evicted

    def flush(self, va: int | None = None, asid: int | None = None) -> int:
        """``sfence.vma va, asid`` (None for x0), with :class:`~hwsim.mmu.tlb.Tlb`'s rules."""
        self.stats.flushes += 1
        dropped = 0
        for s in self._sets:
            keep = []
            for key, tr in s:
                level, vpn, tag = key
                hit_va = va is None or vpn == va >> _SHIFTS[level]
                hit_asid = asid is None or tag == asid  # a global entry (tag GLOBAL) survives an ASID flush
                if hit_va and hit_asid:
                    dropped += 1
                else:
                    keep.append((key, tr))
            s[:] = keep
        self.stats.flushed_entries += dropped
        return dropped


class SplitTlb:
    """An instruction TLB and a data TLB of the same geometry: fetches use ``itlb``, loads and stores ``dtlb``."""

    def __init__(self, *, sets: int, ways: int, policy: Policy | str = Policy.LRU, seed: int = 0) -> None:
        self.itlb = SetAssocTlb(sets=sets, ways=ways, policy=policy, seed=seed)
        self.dtlb = SetAssocTlb(sets=sets, ways=ways, policy=policy, seed=seed + 1)

    def side(self, access: Access) -> SetAssocTlb:
        return self.itlb if access is Access.FETCH else self.dtlb

    def flush(self, va: int | None = None, asid: int | None = None) -> int:
        return self.itlb.flush(va, asid) + self.dtlb.flush(va, asid)
