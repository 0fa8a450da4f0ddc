"""Address spaces: page tables built in simulated RAM, with map/unmap/protect/query.

An :class:`AddressSpace` owns a root table and every intermediate table it
creates (frames from the machine's allocator).  Its operations write real
PTEs, exactly what a kernel would, so the CPU's walker and a student's
``hwsim mmu walk`` read the same bytes.

Leaves made by ``map`` have A set, and D set when writable (as Linux does for
kernel mappings), unless ``accessed=False`` asks for clear bits so the
hardware update can be watched.  Changes that can invalidate a cached
translation (unmap, protect, superpage split) notify the listeners, which
flush TLBs; mapping a page that was invalid needs no flush, since no TLB
caches a failed translation.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import MappingError

if TYPE_CHECKING:
    from ..machine.frames import FrameAllocator
    from ..machine.physmem import PhysicalMemory
from .bits import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_HIGH_RESERVED_MASK,
    PTE_RSW_MASK,
    PTE_SIZE,
    SV39,
    PagingMode,
    Pte,
    make_pte,
    make_satp,
    pte_ppn,
)
from .walker import Translation

# Plain ints for the table walks below (IntFlag arithmetic is several times slower).
_V, _R, _W, _X, _U, _G, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.G, Pte.A, Pte.D))

_NONLEAF_RESERVED = _D | _A | _U

LEAF_FLAGS = Pte.R | Pte.W | Pte.X | Pte.U | Pte.G


@dataclass(frozen=True, slots=True)
class Mapping:
    """A leaf mapping: ``size`` bytes at ``va`` -> ``pa`` with ``flags``."""

    va: int
    pa: int
    size: int
    flags: Pte
    level: int
    pte_addr: int


def parse_flags(text: str) -> Pte:
    """``"rwx"``, ``"r-x"``, ``"rwu"``... to PTE flags (letters r w x u g; ``-`` ignored)."""
    flags = Pte(0)
    for ch in text.lower():
        if ch == "-":
            continue
        try:
            flags |= {"r": Pte.R, "w": Pte.W, "x": Pte.X, "u": Pte.U, "g": Pte.G}[ch]
        except KeyError:
            raise MappingError(f"permission letters are r, w, x, u, g; {ch!r} in {text!r} is not one") from None
    return flags


class AddressSpace:
    def __init__(self, phys: PhysicalMemory, frames: FrameAllocator, *, mode: PagingMode = SV39, asid: int = 0) -> None:
        if not 0 <= asid < 1 << 16:
            raise MappingError(f"ASID must be in [0, 65535], not {asid}")
        self.phys = phys
        self.frames = frames
        self.mode = mode
        self.asid = asid
        self.root = frames.alloc()
        self._valid: dict[int, int] = {self.root: 0}  # table pa -> number of valid PTEs in it
        self._owned: set[int] = set()  # frames allocated by map_anonymous, freed on unmap
        self._listeners: list[Callable[[int, int | None, int], None]] = []
        self._checked_flags: set[int] = set()  # leaf flags map and map_anonymous_page have validated
        # The last leaf table a base page was mapped through: (va >> its span's shift, table pa).  A table
        # is only ever freed by _prune and destroy, which drop this; while it is set, one read finds a PTE.
        self._leaf: tuple[int, int] | None = None

    @property
    def satp(self) -> int:
        return make_satp(self.mode, self.root >> PAGE_SHIFT, self.asid)

    @property
    def table_frames(self) -> int:
        return len(self._valid)

    def on_change(self, listener: Callable[[int, int | None, int], None]) -> None:
        """``listener(asid, va, size)`` after an unmap or protect (``va=None``: whole space)."""
        self._listeners.append(listener)

    def _changed(self, va: int | None, size: int) -> None:
        for listener in self._listeners:
            listener(self.asid, va, size)

    # -- checks -------------------------------------------------------------------

    def _check_range(self, what: str, va: int, size: int) -> None:
        if size <= 0 or size % PAGE_SIZE or va % PAGE_SIZE:
            raise MappingError(f"{what}: va {va:#x} and size {size:#x} must be positive multiples of 4 KiB")
        end = va + size - 1
        if not (self.mode.is_canonical(va) and self.mode.is_canonical(end)) or (va ^ end) >> 63:
            raise MappingError(f"{what}: [{va:#x}, {va + size:#x}) is not a canonical {self.mode.name} range")

    def _check_flags(self, what: str, flags: int) -> Pte:
        flags = Pte(flags)
        if flags & ~LEAF_FLAGS:
            raise MappingError(f"{what}: only R, W, X, U and G may be given, not {flags!r}")
        if flags & Pte.W and not flags & Pte.R:
            raise MappingError(f"{what}: W without R is a reserved encoding")
        if not flags & (Pte.R | Pte.X):
            raise MappingError(
                f"{what}: a leaf needs R or X (a PTE with neither is a pointer); use unmap for no access"
            )
        return flags

    # -- table plumbing -------------------------------------------------------------

    def _pte_addr(self, table: int, va: int, level: int) -> int:
        return table + self.mode.vpn(va, level) * PTE_SIZE

    def _path(self, va: int) -> list[tuple[int, int, int]]:
        """``(level, pte_addr, pte)`` from the root down to the leaf or the first invalid PTE."""
        path = []
        table = self.root
        for level in range(self.mode.levels - 1, -1, -1):
            addr = self._pte_addr(table, va, level)
            pte = self.phys.read_u64(addr)
            path.append((level, addr, pte))
            if not pte & _V or pte & (_R | _X):
                break
            table = pte_ppn(pte) << PAGE_SHIFT
        return path

    def _set(self, table: int, addr: int, old: int, new: int) -> None:
        self.phys.write_u64(addr, new)
        self._valid[table] += bool(new & _V) - bool(old & _V)

    def _table_of(self, addr: int) -> int:
        return addr & ~(PAGE_SIZE - 1)

    def _leaf_pte(self, pa: int, flags: int, accessed: bool) -> int:
        bits = int(flags) | _V
        if accessed:
            bits |= _A | (_D if flags & _W else 0)
        return make_pte(pa >> PAGE_SHIFT, bits)

    def _split(self, level: int, addr: int, pte: int) -> int:
        """Replace the superpage leaf at ``addr`` by a table of next-level leaves; return the table."""
        table = self.frames.alloc()
        self._valid[table] = 0
        child_size = self.mode.page_size(level - 1)
        base_ppn = pte_ppn(pte)
        low = pte & 0x3FF  # flags and RSW carry over
        for i in range(1 << self.mode.vpn_bits):
            child = make_pte(base_ppn + i * (child_size >> PAGE_SHIFT), low)
            self._set(table, table + i * PTE_SIZE, 0, child)
        self._set(self._table_of(addr), addr, pte, make_pte(table >> PAGE_SHIFT, _V))
        return table

    # -- public operations ------------------------------------------------------------

    def map(
        self, va: int, pa: int, size: int, flags: int, *, page_size: int | None = None, accessed: bool = True
    ) -> None:
        """Map ``[va, va+size)`` to ``[pa, pa+size)``; the range must not be mapped yet.

        ``page_size=None`` uses the largest pages that alignment allows (4 KiB,
        2 MiB, 1 GiB); pass 4096 to force base pages.
        """
        self._check_range("map", va, size)
        if flags not in self._checked_flags:  # (validated once per flags: a DMA mapping maps page by page)
            self._check_flags("map", flags)
            self._checked_flags.add(flags)
        flags = int(flags)
        if pa % PAGE_SIZE or pa < 0 or pa + size > 1 << 56:
            raise MappingError(f"map: physical address {pa:#x} must be 4 KiB aligned and below 2^56")
        if size == PAGE_SIZE and page_size in (None, PAGE_SIZE):
            # One base page (a DMA mapping's usual size): one descent, which fails before it changes
            # anything (a leaf on the way, or the page's own PTE valid), so no lookup first.
            self._map_one(va, pa, 0, flags, accessed)
            return
        sizes = [self.mode.page_size(level) for level in range(self.mode.levels)]
        if page_size is not None and page_size not in sizes:
            raise MappingError(f"map: page size {page_size:#x} is not one of {', '.join(hex(s) for s in sizes)}")
        # Check first, so a failure leaves the tables untouched.
        for off in range(0, size, PAGE_SIZE):
            if self.lookup(va + off) is not None:
                raise MappingError(f"map: {va + off:#x} is already mapped")
        off = 0
        while off < size:
            level = 0
            for lvl in range(self.mode.levels - 1, 0, -1):
                s = sizes[lvl]
                if (
                    (page_size is None or page_size == s)
                    and (va + off) % s == 0
                    and (pa + off) % s == 0
                    and size - off >= s
                ):
                    level = lvl
                    break
            if page_size is not None and sizes[level] != page_size:
                raise MappingError(
                    f"map: va {va + off:#x} / pa {pa + off:#x} are not aligned to page size {page_size:#x}"
                )
            self._map_one(va + off, pa + off, level, flags, accessed)
            off += sizes[level]

    def _map_one(self, va: int, pa: int, level: int, flags: int, accessed: bool) -> None:
        leaf = self._leaf
        if level == 0 and leaf is not None and leaf[0] == va >> self.mode.level_shift(1):
            table = leaf[1]  # the descent below would reach the same table
            addr = self._pte_addr(table, va, 0)
            old = self.phys.read_u64(addr)
            if old & _V:
                raise MappingError(f"map: {va:#x} is already mapped")
            self._set(table, addr, old, self._leaf_pte(pa, flags, accessed))
            return
        table = self.root
        for lvl in range(self.mode.levels - 1, level, -1):
            addr = self._pte_addr(table, va, lvl)
            pte = self.phys.read_u64(addr)
            if not pte & _V:
                child = self.frames.alloc()
                self._valid[child] = 0
                self._set(table, addr, pte, make_pte(child >> PAGE_SHIFT, _V))
                table = child
            elif pte & (_R | _X):
                raise MappingError(f"map: {va:#x} lies in an existing superpage")
            else:
                table = pte_ppn(pte) << PAGE_SHIFT
        addr = self._pte_addr(table, va, level)
        old = self.phys.read_u64(addr)
        if old & _V:
            raise MappingError(f"map: {va:#x} is already mapped")
        self._set(table, addr, old, self._leaf_pte(pa, flags, accessed))
        if level == 0:
            self._leaf = (va >> self.mode.level_shift(1), table)

    def map_anonymous(self, va: int, size: int, flags: int, *, accessed: bool = True) -> None:
        """Map fresh zeroed frames (one per 4 KiB page) at ``va``; unmap frees them."""
        self._check_range("map", va, size)
        self._check_flags("map", flags)
        for off in range(0, size, PAGE_SIZE):
            if self.lookup(va + off) is not None:
                raise MappingError(f"map: {va + off:#x} is already mapped")
        for off in range(0, size, PAGE_SIZE):
            frame = self.frames.alloc()
            self._owned.add(frame)
            self._map_one(va + off, frame, 0, Pte(flags), accessed)

    def map_anonymous_page(self, va: int, flags: int, *, accessed: bool = True) -> Translation | None:
        """``map_anonymous(va & ~0xfff, 4096, flags)`` in one descent of the tables (a pager's hot path).

        Same checks, errors, frame order (the page's frame, then any new tables, top down) and PTEs.
        Returns the new leaf's :class:`~hwsim.mmu.walker.Translation` for ``va``, as a walk would build
        it, or None when a pointer on the path is one the walker would refuse (a walk then says why).
        """
        page = va & ~(PAGE_SIZE - 1)
        if flags not in self._checked_flags:
            self._check_range("map", page, PAGE_SIZE)
            self._check_flags("map", flags)
            self._checked_flags.add(flags)
        elif not self.mode.is_canonical(va):
            self._check_range("map", page, PAGE_SIZE)
        read, mode = self.phys.read_u64, self.mode
        table = self.root
        path_bits = 0  # the flag bits of the pointers followed, OR-ed
        level = mode.levels - 1
        while level > 0:  # the existing tables down to the first invalid pointer (as lookup, then _map_one)
            addr = table + mode.vpn(page, level) * PTE_SIZE
            pte = read(addr)
            if not pte & _V:
                break
            if pte & (_R | _X):
                raise MappingError(f"map: {page:#x} is already mapped")
            path_bits |= pte
            table = pte_ppn(pte) << PAGE_SHIFT
            level -= 1
        else:
            if read(table + mode.vpn(page, 0) * PTE_SIZE) & _V:
                raise MappingError(f"map: {page:#x} is already mapped")
        frame = self.frames.alloc()
        self._owned.add(frame)
        while level > 0:
            addr = table + mode.vpn(page, level) * PTE_SIZE
            child = self.frames.alloc()
            self._valid[child] = 0
            self._set(table, addr, 0, make_pte(child >> PAGE_SHIFT, _V))
            table = child
            level -= 1
        addr = table + mode.vpn(page, 0) * PTE_SIZE
        leaf = self._leaf_pte(frame, Pte(flags), accessed)
        self._set(table, addr, 0, leaf)
        if path_bits & (_W | _NONLEAF_RESERVED | PTE_HIGH_RESERVED_MASK):
            return None
        return Translation(va, frame | (va & (PAGE_SIZE - 1)), 0, PAGE_SIZE, addr, leaf, bool((path_bits | leaf) & _G))

    def lookup(self, va: int) -> Mapping | None:
        """The leaf mapping that holds ``va`` (no permission check, no A/D update), or None."""
        if not self.mode.is_canonical(va):
            return None
        level, addr, pte = self._path(va)[-1]
        if not pte & _V or not pte & (_R | _X):
            return None
        size = self.mode.page_size(level)
        base_va = va & ~(size - 1)
        return Mapping(base_va, pte_ppn(pte) << PAGE_SHIFT, size, Pte(pte & 0xFF), level, addr)

    def _leaf_for_page(self, va: int, size: int) -> tuple[int, int, int] | None:
        """The 4 KiB-or-larger leaf covering page ``va``, split so it lies inside ``[va, va+size)``."""
        while True:
            level, addr, pte = self._path(va)[-1]
            if not pte & _V or not pte & (_R | _X):
                return None
            page = self.mode.page_size(level)
            if va % page == 0 and size >= page:
                return level, addr, pte
            self._split(level, addr, pte)  # same translations; the caller's flush covers the range

    def unmap(self, va: int, size: int, *, prune: bool = True) -> int:
        """Unmap ``[va, va+size)``; unmapped pages in the range are skipped.  Returns bytes unmapped.

        ``prune``: free the tables left without a valid PTE (False: keep them for the next mapping
        nearby, until :meth:`prune`)."""
        self._check_range("unmap", va, size)
        cached = self._leaf
        if size == PAGE_SIZE and cached is not None and cached[0] == va >> self.mode.level_shift(1):
            # One base page under the leaf table last mapped through (a DMA unmap): one read finds its PTE.
            addr = self._pte_addr(cached[1], va, 0)
            pte = self.phys.read_u64(addr)
            if pte & _V and pte & (_R | _X):
                self._unmap_leaf(va, addr, pte, prune)
                self._changed(va, size)
                return PAGE_SIZE
            if not pte & _V:
                return 0
        done = 0
        off = 0
        while off < size:
            leaf = self._leaf_for_page(va + off, size - off)
            if leaf is None:
                off += PAGE_SIZE
                continue
            level, addr, pte = leaf
            page = self.mode.page_size(level)
            self._unmap_leaf(va + off, addr, pte, prune)
            done += page
            off += page
        if done:
            self._changed(va, size)
        return done

    def _unmap_leaf(self, va: int, addr: int, pte: int, prune: bool) -> None:
        """Clear the leaf PTE at ``addr`` (mapping ``va``), free its frame if the space owns it, and with
        ``prune`` the tables it leaves empty."""
        self._set(self._table_of(addr), addr, pte, 0)
        frame = pte_ppn(pte) << PAGE_SHIFT
        if frame in self._owned:
            self._owned.discard(frame)
            self.frames.free(frame)
        if prune:
            self._prune(va)

    def prune(self, va: int) -> None:
        """Free the tables on the path to ``va`` that hold no valid PTE (after ``unmap(prune=False)``)."""
        self._prune(va)

    def _prune(self, va: int) -> None:
        """Free tables on the path to ``va`` that no longer hold a valid PTE."""
        path = self._path_tables(va)
        for table, parent_addr in reversed(path):
            if self._valid.get(table) == 0 and table != self.root:
                parent = self._table_of(parent_addr)
                self._set(parent, parent_addr, self.phys.read_u64(parent_addr), 0)
                del self._valid[table]
                self.frames.free(table)
                self._leaf = None
            else:
                break

    def _path_tables(self, va: int) -> list[tuple[int, int]]:
        """``(table, address of the PTE pointing to it)`` for each non-root table on the path."""
        out = []
        table = self.root
        for level in range(self.mode.levels - 1, 0, -1):
            addr = self._pte_addr(table, va, level)
            pte = self.phys.read_u64(addr)
            if not pte & _V or pte & (_R | _X):
                break
            table = pte_ppn(pte) << PAGE_SHIFT
            out.append((table, addr))
        return out

    def protect(self, va: int, size: int, flags: int) -> None:
        """Change the permissions of every page in the range; all must be mapped."""
        self._check_range("protect", va, size)
        flags = self._check_flags("protect", flags)
        for off in range(0, size, PAGE_SIZE):
            if self.lookup(va + off) is None:
                raise MappingError(f"protect: {va + off:#x} is not mapped")
        off = 0
        while off < size:
            leaf = self._leaf_for_page(va + off, size - off)
            assert leaf is not None  # every page in the range was checked mapped above
            level, addr, pte = leaf
            keep = pte & (_A | _D | PTE_RSW_MASK)
            new = make_pte(pte_ppn(pte), flags | _V | keep)
            self._set(self._table_of(addr), addr, pte, new)
            off += self.mode.page_size(level)
        self._changed(va, size)

    def mappings(self) -> Iterator[Mapping]:
        """Every leaf mapping, in VA order (VAs in canonical form)."""
        yield from self._iter_table(self.root, self.mode.levels - 1, 0)

    def _iter_table(self, table: int, level: int, va_prefix: int) -> Iterator[Mapping]:
        for i in range(1 << self.mode.vpn_bits):
            addr = table + i * PTE_SIZE
            pte = self.phys.read_u64(addr)
            if not pte & _V:
                continue
            va = va_prefix | (i << self.mode.level_shift(level))
            if pte & (_R | _X):
                yield Mapping(
                    self.mode.canonical(va),
                    pte_ppn(pte) << PAGE_SHIFT,
                    self.mode.page_size(level),
                    Pte(pte & 0xFF),
                    level,
                    addr,
                )
            elif level > 0:
                yield from self._iter_table(pte_ppn(pte) << PAGE_SHIFT, level - 1, va)

    def destroy(self) -> None:
        """Free every table and owned frame; the space is unusable afterwards."""
        for frame in self._owned:
            self.frames.free(frame)
        self._owned.clear()
        for table in self._valid:
            self.frames.free(table)
        self._valid.clear()
        self._leaf = None
        self._changed(None, 0)
