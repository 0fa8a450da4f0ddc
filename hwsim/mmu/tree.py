"""The page-table tree under a root table, read from memory: for ``hwsim mmu dump``, its HTML view and snapshots.

::

    read_tree(mem, root) -> TableNode (level 2 in Sv39)
                              entries: TreeEntry [index..last] pointer -> TableNode (level 1) ...
                                       TreeEntry [index..last] leaf    -> pa, page size, flags
                                       TreeEntry [index]       reserved / problem (why a walk would fault)

Only valid PTEs (V=1) become entries; runs of leaves that map consecutive
pages to consecutive frames with the same flags are collapsed into one entry.
An entry a walk would fault on carries the walker's own :class:`FaultReason`
(W without R, reserved bits, non-leaf D/A/U, a pointer at level 0, a
misaligned superpage, a table outside memory).  A table reached twice is
shown once (``shared``).
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

from ..errors import BusError, HwsimError
from .bits import (
    FLAGS_LEGEND,
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_FLAGS_MASK,
    PTE_HIGH_RESERVED_MASK,
    PTE_HIGH_RESERVED_SHIFT,
    PTE_NONLEAF_RESERVED,
    PTE_RSW_MASK,
    PTE_SIZE,
    SV39,
    PagingMode,
    Pte,
    describe_flags,
    pte_ppn,
)
from .report import plural
from .walker import LEVEL_NAMES, FaultReason, PteReader

RegionOf = Callable[[int], str | None]  # pa -> the name of the RAM or device region holding it (None: nothing)


@runtime_checkable
class RegionSpans(Protocol):
    """A ``RegionOf`` that also cuts a range where regions begin and end (``hwsim.mmu.snapshot.RegionMap``):
    a superpage may cover RAM, device windows and nothing at all."""

    def __call__(self, pa: int) -> str | None: ...

    def spans(self, base: int, size: int) -> list[tuple[int, int, str | None]]: ...


def region_spans(region_of: RegionOf, base: int, size: int) -> list[tuple[int, int, str | None]]:
    """``[base, base + size)`` as ``(start, length, region name or None)`` parts; a plain ``RegionOf`` names the
    whole range by its first byte."""
    if isinstance(region_of, RegionSpans):
        return region_of.spans(base, size)
    return [(base, size, region_of(base))]


NO_REGION = "no RAM or device"


def region_label(spans: list[tuple[int, int, str | None]]) -> str:
    """``ram``, or for a range that crosses regions each part with its addresses:
    ``ram 0x80000000-0x87ffffff, no RAM or device 0x88000000-0xbfffffff``."""
    if len(spans) == 1:
        return spans[0][2] or NO_REGION
    return ", ".join(f"{name or NO_REGION} {_range(lo, size)}" for lo, size, name in spans)


_V, _R, _W, _X = int(Pte.V), int(Pte.R), int(Pte.W), int(Pte.X)
_LOW = PTE_FLAGS_MASK | PTE_RSW_MASK
_TABLE = struct.Struct(f"<{PAGE_SIZE // PTE_SIZE}Q")
SIZE_NAMES = ("4 KiB", "2 MiB", "1 GiB", "512 GiB", "256 TiB")


class TreeTooLarge(HwsimError):
    """The tables under a root hold more tables than the reader was allowed to visit."""


@dataclass(slots=True)
class TreeEntry:
    """One valid PTE, or a run of ``count`` leaves mapping consecutive pages to consecutive frames."""

    index: int
    count: int
    level: int
    pte_addr: int
    pte: int  # the first PTE of the run
    va: int  # canonical VA of the first byte covered
    kind: str  # "pointer", "leaf" or "reserved" (W=1 with R=0)
    problem: FaultReason | None = None  # why a walk through this entry faults, if it does
    table: TableNode | None = None  # the next-level table of a pointer (None: not followed)

    @property
    def last_index(self) -> int:
        return self.index + self.count - 1

    @property
    def page_size(self) -> int:
        return 1 << (PAGE_SHIFT + 9 * self.level)

    @property
    def size(self) -> int:
        """Bytes of virtual address space the entry (or run) covers."""
        return self.count * self.page_size

    @property
    def target(self) -> int:
        """The PPN's physical address: the first frame of a leaf, the next table of a pointer."""
        return pte_ppn(self.pte) << PAGE_SHIFT


@dataclass(slots=True)
class TableNode:
    """One page table: where it is, which VA range it covers, its valid entries."""

    pa: int
    level: int
    va: int  # canonical VA of the first byte the table covers
    entries: list[TreeEntry] = field(default_factory=list)
    valid: int = 0  # valid PTEs (an entry may stand for several)
    invalid_nonzero: int = 0  # PTEs with V=0 that are not zero (left-over bits)
    shared: bool = False  # already shown under another PTE: entries not repeated
    missing: bool = False  # the table's address is not memory: a walk through it is an access fault

    def walk_tables(self) -> Iterator[TableNode]:
        """This table and every table below it, depth first (shared ones once)."""
        yield self
        for e in self.entries:
            if e.table is not None and not e.table.shared:
                yield from e.table.walk_tables()


@dataclass(slots=True)
class PageTableTree:
    mode: PagingMode
    root: TableNode
    satp: int | None = None

    def tables(self) -> list[TableNode]:
        """Every table read (shared tables once), root first."""
        return [t for t in self.root.walk_tables() if not t.missing]

    def leaves(self) -> Iterator[TreeEntry]:
        """Every leaf entry (runs included), in VA order."""
        for t in self.root.walk_tables():
            for e in t.entries:
                if e.kind != "pointer":
                    yield e


def _problem(pte: int, level: int, mode: PagingMode) -> tuple[str, FaultReason | None]:
    """The entry's kind and, in the walker's order of checks, why a walk through it faults."""
    if pte & _W and not pte & _R:
        return "reserved", FaultReason.WRITE_NO_READ
    leaf = bool(pte & (_R | _X))
    kind = "leaf" if leaf else "pointer"
    if pte & PTE_HIGH_RESERVED_MASK:
        return kind, FaultReason.RESERVED_BITS
    if not leaf:
        if pte & PTE_NONLEAF_RESERVED:
            return kind, FaultReason.NONLEAF_RESERVED
        if level == 0:
            return kind, FaultReason.NO_LEAF
        return kind, None
    if level and pte_ppn(pte) & ((1 << (mode.vpn_bits * level)) - 1):
        return kind, FaultReason.MISALIGNED_SUPERPAGE
    return kind, None


def _read_table(mem: PteReader, pa: int) -> tuple[int, ...]:
    read = getattr(mem, "read", None)
    if read is not None:
        return _TABLE.unpack(read(pa, PAGE_SIZE))
    return tuple(mem.read_u64(pa + i * PTE_SIZE) for i in range(PAGE_SIZE // PTE_SIZE))


def read_tree(
    mem: PteReader, root: int, mode: PagingMode = SV39, *, satp: int | None = None, max_tables: int = 4096
) -> PageTableTree:
    """Read every table under ``root`` through ``mem`` (``read_u64``, and ``read`` when it has one).

    Raises :class:`TreeTooLarge` past ``max_tables`` tables, and
    :class:`~hwsim.errors.BusError` when the root itself is not memory.
    """
    seen: dict[int, TableNode] = {}

    def visit(pa: int, level: int, va: int) -> TableNode:
        node = TableNode(pa, level, mode.canonical(va))
        if pa in seen:
            node.shared = True
            return node
        if len(seen) >= max_tables:
            raise TreeTooLarge(f"more than {max_tables} page tables under the root table {root:#x}")
        try:
            ptes = _read_table(mem, pa)
        except BusError:
            if level == mode.levels - 1:
                raise
            node.missing = True
            return node
        seen[pa] = node
        shift = mode.level_shift(level)
        step = 1 << (9 * level)  # PPN increment from one page of this level to the next
        run: TreeEntry | None = None
        for i, pte in enumerate(ptes):
            if not pte & _V:
                if pte:
                    node.invalid_nonzero += 1
                run = None
                continue
            node.valid += 1
            kind, problem = _problem(pte, level, mode)
            if (
                run is not None
                and kind == "leaf"
                and problem is None
                and run.index + run.count == i
                and (pte & _LOW) == (run.pte & _LOW)
                and pte >> PTE_HIGH_RESERVED_SHIFT == run.pte >> PTE_HIGH_RESERVED_SHIFT
                and pte_ppn(pte) == pte_ppn(run.pte) + step * run.count
            ):
                run.count += 1
                continue
            entry = TreeEntry(i, 1, level, pa + i * PTE_SIZE, pte, mode.canonical(va | (i << shift)), kind, problem)
            node.entries.append(entry)
            run = entry if kind == "leaf" and problem is None else None
            if kind == "pointer" and problem is None:
                entry.table = visit(entry.target, level - 1, va | (i << shift))
                if entry.table.missing:
                    entry.problem = FaultReason.PTE_ACCESS
        return node

    return PageTableTree(mode, visit(root, mode.levels - 1, 0), satp)


# -- text ----------------------------------------------------------------------------------------------


def _range(lo: int, size: int) -> str:
    return f"{lo:#x}-{lo + size - 1:#x}"


def entry_summary(e: TreeEntry, region_of: RegionOf | None = None) -> str:
    """One line about an entry, without the tree drawing (``region_of(pa)`` names memory regions)."""
    idx = f"[{e.index:#05x}]" if e.count == 1 else f"[{e.index:#05x}-{e.last_index:#05x}]"
    head = f"{idx} va {_range(e.va, e.size)}"
    flags = describe_flags(e.pte)
    if e.kind == "pointer":
        if e.problem is not None and e.table is None:
            return f"{head}  pointer {flags}  !! {e.problem.value}"
        t = e.table
        assert t is not None  # a pointer without a problem was followed (read_tree)
        where = f"level-{e.level - 1} table {e.target:#x}"
        if t.missing:
            return f"{head}  -> {where}  !! {FaultReason.PTE_ACCESS.value}"
        if t.shared:
            return f"{head}  -> {where} (shown above)"
        extra = f", {t.invalid_nonzero} non-zero with V=0" if t.invalid_nonzero else ""
        return f"{head}  -> {where} ({t.valid} valid{extra})"
    size = SIZE_NAMES[e.level]
    what = f"{e.count} x {size}" if e.count > 1 else f"{size} page" if e.level == 0 else f"{size} superpage"
    pa = _range(e.target, e.size)
    if region_of is not None:
        pa += f" [{region_label(region_spans(region_of, e.target, e.size))}]"
    line = f"{head}  {what} -> pa {pa}  {flags}"
    if e.pte >> PTE_HIGH_RESERVED_SHIFT:
        line += f" bits63:54={e.pte >> PTE_HIGH_RESERVED_SHIFT:#x}"
    if e.problem is not None:
        line += f"  !! {e.problem.value}"
    return line


def format_tree(tree: PageTableTree, *, region_of: RegionOf | None = None) -> list[str]:
    """The tree as text lines, drawn with box characters; superpages and problems marked."""
    mode = tree.mode
    root = tree.root
    head = f"{mode.name} page tables, root table {root.pa:#x}"
    if tree.satp is not None:
        head = f"satp {tree.satp:#018x}: " + head + f", ASID {(tree.satp >> 44) & 0xFFFF}"
    lines = [head, FLAGS_LEGEND]
    extra = f", {root.invalid_nonzero} non-zero with V=0" if root.invalid_nonzero else ""
    lines.append(f"level-{root.level} table {root.pa:#x} ({root.valid} valid{extra})")

    def draw(node: TableNode, prefix: str) -> None:
        for n, e in enumerate(node.entries):
            last = n == len(node.entries) - 1
            lines.append(prefix + ("└─ " if last else "├─ ") + entry_summary(e, region_of))
            if e.table is not None and not e.table.shared and not e.table.missing:
                draw(e.table, prefix + ("   " if last else "│  "))

    draw(root, "")
    tables = tree.tables()
    good = [e for t in tables for e in t.entries if e.kind == "leaf" and e.problem is None]
    problems = sum(1 for t in tables for e in t.entries if e.problem is not None)
    per_level = ", ".join(
        f"{sum(1 for t in tables if t.level == lvl)} at level {lvl}" for lvl in reversed(range(mode.levels))
    )
    lines.append(
        f"{plural(len(tables), 'table')} ({per_level}); {_bytes(sum(e.size for e in good))} mapped by "
        f"{plural(sum(e.count for e in good), 'leaf PTE')}; {plural(problems, 'PTE')} a walk faults on"
    )
    return lines


def _bytes(n: int) -> str:
    """``1 GiB 2 MiB 16 KiB`` style (sizes here are multiples of 4 KiB)."""
    parts = []
    for unit, shift in (("TiB", 40), ("GiB", 30), ("MiB", 20), ("KiB", 10)):
        if n >> shift:
            parts.append(f"{n >> shift} {unit}")
            n &= (1 << shift) - 1
    return " ".join(parts) or "0 bytes"


# -- JSON ----------------------------------------------------------------------------------------------


def tree_to_json(tree: PageTableTree, *, region_of: RegionOf | None = None) -> dict:
    """A JSON-ready dict (addresses and PTEs as hex strings), used by ``dump --json`` and the HTML view."""

    def table(node: TableNode) -> dict:
        out = {
            "pa": hex(node.pa),
            "level": node.level,
            "va": hex(node.va),
            "valid": node.valid,
            "invalid_nonzero": node.invalid_nonzero,
            "shared": node.shared,
            "missing": node.missing,
            "entries": [entry(e) for e in node.entries],
        }
        return out

    def entry(e: TreeEntry) -> dict:
        out = {
            "index": e.index,
            "count": e.count,
            "level": e.level,
            "pte_addr": hex(e.pte_addr),
            "pte": hex(e.pte),
            "va": hex(e.va),
            "size": e.size,
            "kind": e.kind,
            "flags": describe_flags(e.pte),
            "target": hex(e.target),
            "page": LEVEL_NAMES[e.level] if e.kind != "pointer" else None,  # a pointer maps no page: a table
            "problem": e.problem.value if e.problem is not None else None,
        }
        if e.kind != "pointer" and region_of is not None:
            spans = region_spans(region_of, e.target, e.size)
            if len(spans) == 1:
                out["region"] = spans[0][2]  # the whole range is in one region (None: in none)
            out["regions"] = [{"name": name, "pa": hex(lo), "size": size} for lo, size, name in spans]
        if e.table is not None:
            out["table"] = table(e.table)
        return out

    return {"mode": tree.mode.name, "satp": hex(tree.satp) if tree.satp is not None else None, "root": table(tree.root)}
