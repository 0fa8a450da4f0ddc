"""Page-table snapshots: the tables under one satp, saved as a small JSON file and walkable later.

A snapshot keeps what a walk can read (every table reachable from the
root, as non-zero PTEs by index) and the physical memory map (so a table
pointer outside RAM is still an access fault, and leaves can be named by
region)::

    {"format": "hwsim-page-tables", "version": 1, "source": "board virt, demo guest",
     "satp": "0x8000100000080000",
     "regions": [{"name": "ram", "kind": "ram", "base": "0x80000000", "size": "0x8000000"}, ...],
     "tables": [{"pa": "0x80000000", "ptes": {"0x0": "0x20000401", "0x1ff": "0x...cf"}}, ...]}
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import BusError, ConfigError
from .bits import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE, PAGING_MODES, PTE_SIZE, PagingMode, satp_fields
from .tree import PageTableTree, read_tree
from .walker import PteReader

if TYPE_CHECKING:
    from ..machine.physmem import PhysicalMemory

FORMAT = "hwsim-page-tables"
VERSION = 1


@dataclass(frozen=True, slots=True)
class Region:
    name: str
    kind: str  # "ram" or "mmio"
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


def regions_of(phys: PhysicalMemory) -> list[Region]:
    """The memory map of a :class:`~hwsim.machine.PhysicalMemory`."""
    out = [Region(r.name, "ram", r.base, r.size) for r in phys.ram_regions]
    out += [Region(r.name, "mmio", r.base, r.size) for r in phys.mmio_regions]
    return sorted(out, key=lambda r: r.base)


class RegionMap:
    """A memory map's names: ``pa -> region name`` (None where there is nothing), and the parts of a range.

    What ``region_namer`` returns, for tree and walk output (:class:`hwsim.mmu.tree.RegionSpans`).
    """

    def __init__(self, regions: list[Region]) -> None:
        self.regions = sorted(regions, key=lambda r: r.base)

    def __call__(self, pa: int) -> str | None:
        for r in self.regions:
            if r.base <= pa < r.end:
                return r.name
        return None

    def spans(self, base: int, size: int) -> list[tuple[int, int, str | None]]:
        """``[base, base + size)`` cut where regions begin and end: ``(start, length, name or None)`` in order,
        None for the parts that are neither RAM nor a device."""
        out: list[tuple[int, int, str | None]] = []
        pa, end = base, base + size
        for r in self.regions:
            if r.end <= pa or r.base >= end:
                continue
            if r.base > pa:
                out.append((pa, r.base - pa, None))
                pa = r.base
            stop = min(end, r.end)
            out.append((pa, stop - pa, r.name))
            pa = stop
        if pa < end:
            out.append((pa, end - pa, None))
        return out


def region_namer(regions: list[Region]) -> RegionMap:
    """``pa -> region name`` (None where there is nothing), for tree and walk output; ``.spans`` cuts a range."""
    return RegionMap(regions)


class SnapshotMemory:
    """Read-only memory holding a snapshot's tables; other RAM frames are unknown, non-RAM is a bus error."""

    def __init__(self, regions: list[Region], tables: dict[int, dict[int, int]], path: str = "snapshot") -> None:
        self.regions = regions
        self._tables = tables
        self._path = path

    def _frame(self, pa: int, size: int) -> dict[int, int]:
        frame = pa & ~PAGE_MASK
        if not any(r.kind == "ram" and r.base <= pa and pa + size <= r.end for r in self.regions):
            raise BusError(f"no RAM at physical address {pa:#x} in the snapshot's memory map", address=pa, size=size)
        try:
            return self._tables[frame]
        except KeyError:
            raise ConfigError(
                f"snapshot {self._path!r} does not hold the frame at {frame:#x} (only page tables are saved)"
            ) from None

    def read_u64(self, pa: int) -> int:
        return self._frame(pa, PTE_SIZE).get((pa & PAGE_MASK) // PTE_SIZE, 0)

    def read(self, pa: int, size: int) -> bytes:
        if pa & PAGE_MASK or size != PAGE_SIZE:
            raise ConfigError(f"snapshot memory reads whole tables, not {size} bytes at {pa:#x}")
        ptes = self._frame(pa, size)
        return b"".join(ptes.get(i, 0).to_bytes(8, "little") for i in range(PAGE_SIZE // PTE_SIZE))

    def write_u64(self, pa: int, value: int) -> None:
        raise BusError(f"snapshot {self._path!r} is read-only", address=pa, size=8)


@dataclass(frozen=True)
class Snapshot:
    path: str
    source: str
    satp: int
    mode: PagingMode
    regions: list[Region]
    memory: SnapshotMemory

    @property
    def root(self) -> int:
        return satp_fields(self.satp)[2] << PAGE_SHIFT

    @property
    def asid(self) -> int:
        return satp_fields(self.satp)[1]


def snapshot_dict(mem: PteReader, satp: int, regions: list[Region], *, source: str = "") -> dict:
    """The snapshot of the tables under ``satp`` as a JSON-ready dict (``mem`` needs ``read_u64``)."""
    mode = _mode(satp, "satp")
    tree: PageTableTree = read_tree(mem, satp_fields(satp)[2] << PAGE_SHIFT, mode, satp=satp)
    tables = []
    for node in tree.tables():
        ptes = {}
        for i in range(PAGE_SIZE // PTE_SIZE):
            value = mem.read_u64(node.pa + i * PTE_SIZE)
            if value:
                ptes[hex(i)] = hex(value)
        tables.append({"pa": hex(node.pa), "level": node.level, "ptes": ptes})
    return {
        "format": FORMAT,
        "version": VERSION,
        "source": source,
        "satp": hex(satp),
        "regions": [{"name": r.name, "kind": r.kind, "base": hex(r.base), "size": hex(r.size)} for r in regions],
        "tables": tables,
    }


def save_snapshot(
    path: str | os.PathLike, mem: PteReader, satp: int, regions: list[Region], *, source: str = ""
) -> int:
    """Write the snapshot to ``path``; returns the number of tables saved."""
    data = snapshot_dict(mem, satp, regions, source=source)
    try:
        with open(path, "w") as f:
            f.write(_layout(data))
    except OSError as exc:
        raise ConfigError(f"cannot write snapshot {os.fspath(path)!r}: {exc.strerror}") from None
    return len(data["tables"])


def _layout(data: dict) -> str:
    """JSON with one line per region and per table, so snapshots read and diff well."""
    out = ["{"]
    for n, (key, value) in enumerate(data.items()):
        comma = "," if n < len(data) - 1 else ""
        if isinstance(value, list):
            items = ",\n".join("  " + json.dumps(v) for v in value)
            out.append(f" {json.dumps(key)}: [\n{items}\n ]{comma}")
        else:
            out.append(f" {json.dumps(key)}: {json.dumps(value)}{comma}")
    return "\n".join(out) + "\n}\n"


def _mode(satp: int, where: str) -> PagingMode:
    mode_bits = satp_fields(satp)[0]
    mode = PAGING_MODES.get(mode_bits)
    if mode is None:
        known = ", ".join(f"{m} ({pm.name})" for m, pm in PAGING_MODES.items())
        raise ConfigError(f"{where}: satp MODE={mode_bits} has no page tables; known modes: {known}")
    return mode


def load_snapshot(path: str | os.PathLike) -> Snapshot:
    """Read and check a snapshot file; every problem is a :class:`ConfigError` naming the file and field."""
    p = os.fspath(path)
    try:
        with open(p) as f:
            text = f.read()
    except OSError as exc:
        raise ConfigError(f"cannot read snapshot {p!r}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"snapshot {p!r} is not text (a raw memory image goes with --image)") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"snapshot {p!r} is not JSON: {exc.msg} (line {exc.lineno} column {exc.colno})") from None
    except RecursionError:  # the decoder recurses per nesting level; a snapshot nests four deep
        raise ConfigError(f"snapshot {p!r} is not a snapshot: JSON nested too deeply") from None
    except ValueError as exc:  # e.g. an integer with more digits than Python converts
        raise ConfigError(f"snapshot {p!r} is not a snapshot: {exc}") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ConfigError(f'{p!r} is not an hwsim page-table snapshot (it needs "format": "{FORMAT}")')
    if data.get("version") != VERSION:
        raise ConfigError(
            f"snapshot {p!r}: version {data.get('version')!r} is not supported (this hwsim reads version {VERSION})"
        )

    def hexint(value: object, where: str, limit: int = 1 << 64) -> int:
        if not isinstance(value, str):
            raise ConfigError(f"snapshot {p!r}: {where} must be a hex string, not {value!r}")
        try:
            n = int(value, 16)
        except ValueError:
            raise ConfigError(f"snapshot {p!r}: {where} is not a hex number: {value!r}") from None
        if not 0 <= n < limit:
            raise ConfigError(f"snapshot {p!r}: {where} {value} is out of range")
        return n

    def items(key: str) -> list:
        value = data.get(key)
        if not isinstance(value, list):
            raise ConfigError(f"snapshot {p!r}: {key!r} must be a list")
        return value

    satp = hexint(data.get("satp"), "satp")
    mode = _mode(satp, f"snapshot {p!r}")
    regions = []
    for n, r in enumerate(items("regions")):
        where = f"regions[{n}]"
        if not isinstance(r, dict) or r.get("kind") not in ("ram", "mmio") or not isinstance(r.get("name"), str):
            raise ConfigError(f"snapshot {p!r}: {where} needs a name, a kind (ram or mmio), a base and a size")
        regions.append(
            Region(
                r["name"],
                r["kind"],
                hexint(r.get("base"), f"{where}.base", 1 << 56),
                hexint(r.get("size"), f"{where}.size", 1 << 56),
            )
        )
    tables: dict[int, dict[int, int]] = {}
    for n, t in enumerate(items("tables")):
        where = f"tables[{n}]"
        if not isinstance(t, dict) or not isinstance(t.get("ptes"), dict):
            raise ConfigError(f"snapshot {p!r}: {where} needs a pa and a ptes object")
        pa = hexint(t.get("pa"), f"{where}.pa", 1 << 56)
        if pa & PAGE_MASK:
            raise ConfigError(f"snapshot {p!r}: {where}.pa {pa:#x} is not 4 KiB aligned")
        ptes = {}
        for key, value in t["ptes"].items():
            index = hexint(key, f"{where}.ptes index", PAGE_SIZE // PTE_SIZE)
            ptes[index] = hexint(value, f"{where}.ptes[{key}]")
        tables[pa] = ptes
    source = data.get("source", "")
    if not isinstance(source, str):
        raise ConfigError(f"snapshot {p!r}: source must be a string")
    memory = SnapshotMemory(regions, tables, p)
    root = satp_fields(satp)[2] << PAGE_SHIFT
    if root not in tables:
        raise ConfigError(f"snapshot {p!r}: the root table {root:#x} named by satp is not in its tables")
    return Snapshot(p, source, satp, mode, regions, memory)
