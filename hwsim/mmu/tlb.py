"""A TLB model: cached leaf translations tagged by ASID, with ``sfence.vma`` flush semantics.

Entries are leaf translations of any page size.  A global translation (G set
on its path) matches every ASID and survives ASID-specific flushes, as the
privileged specification's SFENCE.VMA rules say:

=========  =========  ====================================================
rs1 (va)   rs2 (asid) entries removed
=========  =========  ====================================================
x0         x0         all, global included
va         x0         those mapping ``va``, in every address space, global included
x0         asid       those of ``asid``, global kept
va         asid       those of ``asid`` mapping ``va``, global kept
=========  =========  ====================================================

The TLB never changes on its own when memory changes: a PTE rewritten
without a flush keeps serving the old translation, as hardware does.
Replacement is LRU over ``capacity`` entries.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

from .bits import PAGE_SHIFT
from .walker import Translation

GLOBAL = -1  # the ASID tag of a global entry


@dataclass(slots=True)
class TlbStats:
    lookups: int = 0
    hits: int = 0
    misses: int = 0
    fills: int = 0
    evictions: int = 0
    flushes: int = 0
    flushed_entries: int = 0

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__slots__}


class Tlb:
    # Leaf levels 0..4 (4 KiB up to Sv57's 256 TiB pages); one TLB serves every paging mode.
    _shifts = tuple(PAGE_SHIFT + 9 * level for level in range(5))

    def __init__(self, *, capacity: int = 1024) -> None:
        if capacity <= 0:
            raise ValueError(f"TLB capacity must be positive, not {capacity}")
        self.capacity = capacity
        self.stats = TlbStats()
        # (level, vpn-at-that-level, asid or GLOBAL) -> Translation, in LRU order
        self._entries: OrderedDict[tuple[int, int, int], Translation] = OrderedDict()
        self._per_level = [0] * len(self._shifts)  # entries at each level
        self._levels: tuple[tuple[int, int], ...] = ()  # (level, shift) of levels holding entries

    def _count(self, level: int, delta: int) -> None:
        before = self._per_level[level]
        self._per_level[level] = before + delta
        if (before == 0) != (before + delta == 0):
            self._levels = tuple((lvl, self._shifts[lvl]) for lvl, n in enumerate(self._per_level) if n)

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[tuple[int, Translation]]:
        """``(asid, translation)`` pairs, least recently used first (asid is GLOBAL for global ones)."""
        return [(key[2], tr) for key, tr in self._entries.items()]

    def probe(self, asid: int, va: int) -> Translation | None:
        """Look up without counting or touching LRU order (for inspection)."""
        entries = self._entries
        for level, shift in self._levels:
            vpn = va >> shift
            tr = entries.get((level, vpn, asid)) or entries.get((level, vpn, GLOBAL))
            if tr is not None:
                return tr
        return None

    def lookup(self, asid: int, va: int) -> Translation | None:
        """The cached translation of the page holding ``va`` (its ``pa`` is for the page's VA), or None."""
        tr = self.hit(asid, va)
        if tr is None:
            self.stats.lookups += 1
            self.stats.misses += 1
        return tr

    def hit(self, asid: int, va: int, flags: int = 0) -> Translation | None:
        """:meth:`lookup` for a fast path that falls back to it: a hit is counted and refreshed as
        lookup's; a miss counts nothing (the fallback's lookup counts it).  ``flags``: only an entry
        whose PTE has every one of these bits is a hit (an access it allows); another is left alone."""
        entries = self._entries
        for level, shift in self._levels:
            vpn = va >> shift
            key = (level, vpn, asid)
            tr = entries.get(key)
            if tr is None:
                key = (level, vpn, GLOBAL)
                tr = entries.get(key)
            if tr is not None:
                if tr.pte & flags != flags:
                    return None
                entries.move_to_end(key)
                self.stats.lookups += 1
                self.stats.hits += 1
                return tr
        return None

    def hit_pages(self, asid: int, va: int, end: int, flags: int = 0) -> tuple[list[tuple[int, int]], int]:
        """:meth:`hit` page after page over ``[va, end)`` (a DMA request of many pages): the physically
        contiguous ``(pa, length)`` pieces of the pages that hit, merged, and the address where it stopped
        (``end`` when every page hit; else the first page without an entry that allows the access, which
        the caller's fallback looks up).  Each hit is counted and refreshed as :meth:`hit` counts it."""
        entries, levels = self._entries, self._levels
        get, refresh = entries.get, entries.move_to_end
        pieces: list[tuple[int, int]] = []
        hits = run_pa = run_len = 0  # (run: the piece being built)
        while va < end:
            for level, shift in levels:
                vpn = va >> shift
                key = (level, vpn, asid)
                tr = get(key)
                if tr is None:
                    key = (level, vpn, GLOBAL)
                    tr = get(key)
                if tr is not None:
                    break
            else:
                break
            if tr.pte & flags != flags:
                break
            refresh(key)
            hits += 1
            mask = tr.page_size - 1
            n = min(end, (va | mask) + 1) - va
            pa = (tr.pa & ~mask) | (va & mask)
            if run_len and run_pa + run_len == pa:
                run_len += n  # physically contiguous: one piece
            else:
                if run_len:
                    pieces.append((run_pa, run_len))
                run_pa, run_len = pa, n
            va += n
        if run_len:
            pieces.append((run_pa, run_len))
        stats = self.stats
        stats.lookups += hits
        stats.hits += hits
        return pieces, va

    def insert(self, asid: int, tr: Translation) -> None:
        key = (tr.level, tr.va >> self._shifts[tr.level], GLOBAL if tr.global_ else asid)
        entries = self._entries
        if key not in entries:
            self._count(tr.level, 1)
        entries[key] = tr
        entries.move_to_end(key)
        self.stats.fills += 1
        while len(entries) > self.capacity:
            old, _ = entries.popitem(last=False)
            self._count(old[0], -1)
            self.stats.evictions += 1

    def flush(self, va: int | None = None, asid: int | None = None) -> int:
        """``sfence.vma va, asid`` (None for x0).  Returns the number of entries removed."""
        self.stats.flushes += 1
        entries = self._entries
        if va is None and asid is None:
            dropped = len(entries)
            entries.clear()
            self._per_level = [0] * len(self._shifts)
            self._levels = ()
        else:
            if va is None:
                doomed = [k for k in entries if k[2] == asid]
            elif asid is None:
                doomed = [k for k in entries if k[1] == va >> self._shifts[k[0]]]
            else:
                doomed = [key for level, shift in self._levels if (key := (level, va >> shift, asid)) in entries]
            for k in doomed:
                del entries[k]
                self._count(k[0], -1)
            dropped = len(doomed)
        self.stats.flushed_entries += dropped
        return dropped
