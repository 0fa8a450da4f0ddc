"""Boards as data: a TOML file describing the memory map, devices, interrupt controller and IOMMU.

::

    boards/virt.toml --tomllib--> load_board() --validate--> Board (plain data)
                                                               |  build()
                                                               v
                         System: Machine + RAM + MMIO windows -> device models
                                 clock, PLIC lines, IOMMU DMA ports

Every key is declared in ``BOARD_KEYS`` (board-level tables) or by the
device type (``Device.OPTIONS``); a key that is missing, unknown (a typo),
of the wrong type, or out of range is a :class:`BoardError` naming the
file, the table and key, and the problem.  The full format is in
``docs/devices.md``.
"""

from __future__ import annotations

import builtins
import dataclasses
import difflib
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..devices.base import DEVICE_TYPES, Device, OptionError, known_types
from ..machine.machine import MAX_HARTS
from ..mmu.bits import PAGE_SIZE
from .errors import BoardError

PHYS_LIMIT = 1 << 56
DEVICE_ID_LIMIT = 1 << 24
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")


@dataclass(frozen=True)
class Key:
    """One board-level key: its type, whether it is required, its default, and what it means."""

    type: type
    doc: str
    required: bool = False
    default: Any = None


_REGION = {
    "base": Key(int, "physical base address (4 KiB aligned)", True),
    "size": Key(int, "bytes (a multiple of 4 KiB)", True),
}

BOARD_KEYS: dict[str, dict[str, Key]] = {
    "board": {
        "name": Key(str, "board name", True),
        "description": Key(str, "one line about the board", default=""),
        "harts": Key(
            int, f"harts (CPUs) of the machine, 1 .. {MAX_HARTS}, each its own Unicorn CPU over the RAM", default=1
        ),
    },
    "clock": {
        "frequency_hz": Key(int, "virtual ticks per virtual second (timer mtime rate)", default=10_000_000),
        "mmio_access_ticks": Key(
            int, "virtual ticks each MMIO access takes (so polling loops see time pass)", default=1
        ),
        "irq_latency_ns": Key(
            int, "virtual ns from a device raising its interrupt line to the driver seeing it", default=100
        ),
        "instructions_per_us": Key(
            int, "wasm instructions a driver executes per virtual microsecond (0: its code takes no time)", default=1000
        ),
    },
    "ram": {"name": Key(str, "region name", True), **_REGION},
    "interrupt_controller": {
        "type": Key(str, "interrupt-controller type (plic)", True),
        "name": Key(str, "name in reports", default="plic"),
        **_REGION,
    },
    "iommu": {
        "type": Key(str, "IOMMU type (riscv-iommu)", True),
        "name": Key(str, "name in reports", default="iommu"),
        **_REGION,
        "irq": Key(int, "interrupt-controller source of the fault/command interrupt"),
    },
    "devices": {
        "type": Key(str, "device type (see the registry)", True),
        **_REGION,
        "irq": Key(int, "interrupt-controller source (1 .. sources-1)"),
        "iommu_device_id": Key(int, "the device's ID at the IOMMU (DMA-capable devices only)"),
        "assignable": Key(
            bool,
            "whether a sandboxed driver may be given the device (default: true for "
            "peripherals; platform devices such as the timer never are)",
        ),
    },
}
TOP_LEVEL = ("board", "clock", "ram", "interrupt_controller", "iommu", "devices")
_TYPE_NAMES = {int: "an integer", str: "a string", bool: "a boolean", dict: "a table", list: "an array"}


@dataclass(frozen=True)
class RegionSpec:
    table: str
    name: str
    base: int
    size: int

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class DeviceSpec:
    table: str  # "devices.uart0", "interrupt_controller", "iommu"
    name: str
    type: str
    base: int
    size: int
    irq: int | None = None
    iommu_device_id: int | None = None
    options: dict = field(default_factory=dict)
    assignable: bool = False  # may be assigned to a sandboxed driver (see Board.assignable_devices)

    @property
    def cls(self) -> builtins.type[Device]:  # builtins.: the field ``type`` shadows the builtin here
        return DEVICE_TYPES[self.type]

    @property
    def end(self) -> int:
        return self.base + self.size


@dataclass(frozen=True)
class Board:
    path: str
    name: str
    description: str
    clock_hz: int
    ram: tuple[RegionSpec, ...]
    interrupt_controller: DeviceSpec | None
    iommu: DeviceSpec | None
    devices: tuple[DeviceSpec, ...]
    mmio_access_ticks: int = 1
    irq_latency_ns: int = 100
    instructions_per_us: int = 1000
    harts: int = 1

    def memory_map(self) -> list[tuple[int, int, str, str]]:
        """``(base, size, name, kind)`` for every region, by address."""
        rows = [(r.base, r.size, r.name, "ram") for r in self.ram]
        for d in self.all_devices():
            rows.append((d.base, d.size, d.name, d.type))
        return sorted(rows)

    def all_devices(self) -> list[DeviceSpec]:
        out = [d for d in (self.interrupt_controller, self.iommu) if d is not None]
        return out + list(self.devices)

    def assignable_devices(self) -> tuple[str, ...]:
        """The devices a sandboxed driver may be given, in board order (as VFIO groups or a device
        tree's assignable nodes): peripherals not withheld with ``assignable = false``; never the
        interrupt controller, the IOMMU or another platform device."""
        return tuple(d.name for d in self.devices if d.assignable)

    def why_not_assignable(self, name: str) -> str | None:
        """None when device ``name`` is assignable, else the rule that forbids it, in words."""
        spec = next((d for d in self.all_devices() if d.name == name), None)
        if spec is None:
            return None
        if spec.assignable:
            return None
        if spec.cls.PLATFORM is not None:
            return (
                f"{name} ({spec.type}) is a platform device: it controls {spec.cls.PLATFORM}, so it is never "
                f"assigned to a driver"
            )
        return f"{name} is not assignable on board {self.name!r} ([{spec.table}] assignable = false)"

    def build(self, *, options: dict[str, dict] | None = None, seed: int | None = None, faults=None):
        """A :class:`~hwsim.board.system.System` with the machine, RAM and every device attached.

        ``options`` overrides device options by device name, e.g.
        ``{"uart0": {"backend": "memory"}}``; they are checked like the file's.  ``seed``: vary device
        timing with this seed (devices/timing.py); None: every delay is the board's nominal value.
        ``faults``: a :class:`~hwsim.devices.faults.FaultPlan` (injected device failures); None: none.
        """
        from .system import build_system

        return build_system(self, options or {}, seed, faults)

    def with_options(self, overrides: dict[str, dict]) -> Board:
        """This board with device options replaced (checked as in the file)."""
        by_name = {d.name: d for d in self.all_devices()}
        for name, values in overrides.items():
            if name not in by_name:
                raise BoardError(
                    self.path,
                    None,
                    None,
                    f"option override for unknown device {name!r} (devices: {', '.join(sorted(by_name))})",
                )
            if not isinstance(values, dict):
                raise BoardError(
                    self.path,
                    by_name[name].table,
                    None,
                    f"option override must be a dict of option names to values, not {type(values).__name__}",
                )

        def patched(spec: DeviceSpec) -> DeviceSpec:
            if spec.name not in overrides:
                return spec
            merged = {**spec.options, **overrides[spec.name]}
            options = _resolve_options(self.path, spec.table, spec.cls, merged)
            needed = spec.cls.required_size(options)  # options may shape the register map (PLIC, NVMe doorbells)
            if spec.size < needed:
                raise BoardError(
                    self.path,
                    spec.table,
                    "size",
                    f"{spec.size:#x} is too small for {spec.type} registers (needs at least {needed:#x} bytes)",
                )
            return dataclasses.replace(spec, options=options)

        return Board(
            self.path,
            self.name,
            self.description,
            self.clock_hz,
            self.ram,
            patched(self.interrupt_controller) if self.interrupt_controller is not None else None,
            patched(self.iommu) if self.iommu is not None else None,
            tuple(patched(d) for d in self.devices),
            self.mmio_access_ticks,
            self.irq_latency_ns,
            self.instructions_per_us,
            self.harts,
        )


def _resolve_options(path: str, table: str, cls: type[Device], given: dict) -> dict:
    try:
        return cls.resolve_options(given)
    except OptionError as exc:
        raise BoardError(path, table, exc.key, exc.problem) from None


def load_board(path: str | Path) -> Board:
    """Read and validate a board file; raises :class:`BoardError` on any problem.

    A bare name (``virt``) that is not a file names one of hwsim's own boards.
    """
    p = str(path)
    if not Path(p).exists() and "/" not in p and "\\" not in p and not p.endswith(".toml"):
        from .. import _paths

        known = _paths.boards_dir() / f"{p}.toml"
        if known.is_file():
            path, p = known, str(known)
        else:
            names = ", ".join(sorted(b.stem for b in _paths.boards_dir().glob("*.toml")))
            raise BoardError(
                p,
                None,
                None,
                f"no such board file, and hwsim has no board of that name (its boards: {names or 'none'})",
            ) from None
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        raise BoardError(p, None, None, "no such board file") from None
    except OSError as exc:
        raise BoardError(p, None, None, f"cannot read: {exc.strerror}") from None
    except tomllib.TOMLDecodeError as exc:
        raise BoardError(p, None, None, f"not valid TOML: {exc}") from None
    except UnicodeDecodeError:
        raise BoardError(p, None, None, "not a board file: not UTF-8 text (a board is a TOML file)") from None
    return parse_board(data, p)


def parse_board(data: dict, path: str = "<board>") -> Board:
    """Validate an already-parsed TOML document (see :func:`load_board`)."""
    return _Parser(path).parse(data)


class _Parser:
    def __init__(self, path: str) -> None:
        self.path = path

    def error(self, table: str | None, key: str | None, problem: str) -> BoardError:
        return BoardError(self.path, table, key, problem)

    # -- generic checks -----------------------------------------------------------------------------

    def unknown(self, table: str | None, key: str, known) -> BoardError:
        known = sorted(known)
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"; did you mean {close[0]!r}?" if close else ""
        what = "table" if table is None else "key"
        return self.error(
            table, key if table is not None else None, f"unknown {what} {key!r}{hint} (known: {', '.join(known)})"
        )

    def typed(self, table: str | None, key: str, value: Any, kind: type) -> Any:
        ok = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
        if not ok:
            shown = (
                f"{type(value).__name__} {value!r}"
                if not isinstance(value, (dict, list))
                else _TYPE_NAMES.get(type(value), type(value).__name__)
            )
            raise self.error(table, key, f"must be {_TYPE_NAMES[kind]}, not {shown}")
        return value

    def table(self, table: str, raw: Any, keys: dict[str, Key], extra: dict | None = None) -> tuple[dict, dict]:
        """Check a table against ``keys``; returns (known values with defaults, the rest)."""
        values: dict[str, Any] = {}
        rest: dict[str, Any] = {}
        for key, value in raw.items():
            spec = keys.get(key)
            if spec is None:
                if extra is not None and key in extra:
                    rest[key] = value
                    continue
                raise self.unknown(table, key, [*keys, *(extra or {})])
            values[key] = self.typed(table, key, value, spec.type)
        for key, spec in keys.items():
            if key not in values:
                if spec.required:
                    raise self.error(table, key, "missing required key")
                values[key] = spec.default
        return values, rest

    def region(self, table: str, values: dict, min_size: int = PAGE_SIZE, what: str = "") -> tuple[int, int]:
        base, size = values["base"], values["size"]
        if base < 0 or base % PAGE_SIZE:
            raise self.error(table, "base", f"{base:#x} is not a multiple of the page size {PAGE_SIZE:#x}")
        if size <= 0 or size % PAGE_SIZE:
            raise self.error(table, "size", f"{size:#x} is not a positive multiple of the page size {PAGE_SIZE:#x}")
        if size < min_size:
            raise self.error(table, "size", f"{size:#x} is too small for {what} (needs at least {min_size:#x} bytes)")
        if base + size > PHYS_LIMIT:
            raise self.error(
                table, "size", f"the region ends at {base + size:#x}, beyond the 56-bit physical address space"
            )
        return base, size

    # -- the document ---------------------------------------------------------------------------------

    def parse(self, data: dict) -> Board:
        for key in data:
            if key not in TOP_LEVEL:
                raise self.unknown(None, key, TOP_LEVEL)
        if "board" not in data:
            raise self.error("board", None, "missing required table")
        board, _ = self.table("board", self.expect_table("board", data["board"]), BOARD_KEYS["board"])
        if not 1 <= board["harts"] <= MAX_HARTS:
            raise self.error("board", "harts", f"must be 1 .. {MAX_HARTS}, not {board['harts']}")
        clock, _ = self.table("clock", self.expect_table("clock", data.get("clock", {})), BOARD_KEYS["clock"])
        if clock["frequency_hz"] <= 0:
            raise self.error("clock", "frequency_hz", f"must be positive, not {clock['frequency_hz']}")
        for key in ("mmio_access_ticks", "irq_latency_ns", "instructions_per_us"):
            if clock[key] < 0:
                raise self.error("clock", key, f"must be 0 or more, not {clock[key]}")
        ram = self.parse_ram(data.get("ram"))
        irqc = self.parse_singleton("interrupt_controller", data.get("interrupt_controller"), "interrupt-controller")
        iommu = self.parse_singleton("iommu", data.get("iommu"), "iommu")
        devices_raw = self.expect_table("devices", data.get("devices", {}))
        devices = tuple(self.parse_device(name, raw) for name, raw in devices_raw.items())
        self.check_irqs(irqc, iommu, devices)
        self.check_dma(iommu, devices)
        regions = [*ram, *[d for d in (irqc, iommu) if d is not None], *devices]
        self.check_names(regions)
        self.check_overlaps(regions)
        return Board(
            self.path,
            board["name"],
            board["description"],
            clock["frequency_hz"],
            ram,
            irqc,
            iommu,
            devices,
            clock["mmio_access_ticks"],
            clock["irq_latency_ns"],
            clock["instructions_per_us"],
            board["harts"],
        )

    def expect_table(self, name: str, raw: Any) -> dict:
        if not isinstance(raw, dict):
            raise self.error(name, None, f"must be a table, not {_TYPE_NAMES.get(type(raw), type(raw).__name__)}")
        return raw

    def parse_ram(self, raw: Any) -> tuple[RegionSpec, ...]:
        if raw is None:
            raise self.error("ram", None, "missing: a board needs at least one [[ram]] region")
        if not isinstance(raw, list) or not raw:
            raise self.error("ram", None, "must be an array of tables ([[ram]]) with at least one region")
        out = []
        for i, entry in enumerate(raw):
            table = f"ram.{i}" if not isinstance(entry, dict) or "name" not in entry else f"ram.{entry['name']}"
            values, _ = self.table(table, self.expect_table(table, entry), BOARD_KEYS["ram"])
            self.check_name(table, values["name"])
            base, size = self.region(table, values)
            out.append(RegionSpec(table, values["name"], base, size))
        return tuple(out)

    def check_name(self, table: str, name: str) -> None:
        if not _NAME.match(name):
            raise self.error(
                table,
                "name" if not table.startswith("devices.") else None,
                f"name {name!r} must be letters, digits and '_' (not starting with a digit)",
            )

    def device_class(self, table: str, type_name: str, role: str) -> type[Device]:
        cls = DEVICE_TYPES.get(type_name)
        if cls is None or cls.ROLE != role:
            known = known_types(role)
            close = difflib.get_close_matches(type_name, known, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise self.error(table, "type", f"unknown {role} type {type_name!r}{hint} (known: {', '.join(known)})")
        return cls

    def parse_singleton(self, table: str, raw: Any, role: str) -> DeviceSpec | None:
        if raw is None:
            return None
        raw = self.expect_table(table, raw)
        keys = BOARD_KEYS[table]
        type_name = self.typed(table, "type", raw["type"], str) if "type" in raw else None
        if type_name is None:
            raise self.error(table, "type", "missing required key")
        cls = self.device_class(table, type_name, role)
        values, rest = self.table(table, raw, keys, cls.OPTIONS)
        self.check_name(table, values["name"])
        options = _resolve_options(self.path, table, cls, rest)
        base, size = self.region(table, values, cls.required_size(options), f"{cls.TYPE} registers")
        return DeviceSpec(table, values["name"], cls.TYPE, base, size, values.get("irq"), None, options)

    def parse_device(self, name: str, raw: Any) -> DeviceSpec:
        table = f"devices.{name}"
        self.check_name(table, name)
        raw = self.expect_table(table, raw)
        if "type" not in raw:
            raise self.error(table, "type", "missing required key")
        cls = self.device_class(table, self.typed(table, "type", raw["type"], str), "device")
        values, rest = self.table(table, raw, BOARD_KEYS["devices"], cls.OPTIONS)
        options = _resolve_options(self.path, table, cls, rest)
        base, size = self.region(table, values, cls.required_size(options), f"{cls.TYPE} registers")
        if values["irq"] is not None and not cls.HAS_IRQ:
            raise self.error(table, "irq", f"{cls.TYPE} devices have no interrupt output")
        dev_id = values["iommu_device_id"]
        if dev_id is not None and not cls.DOES_DMA:
            raise self.error(table, "iommu_device_id", f"{cls.TYPE} devices do not do DMA")
        if cls.DOES_DMA and dev_id is None:
            raise self.error(
                table,
                "iommu_device_id",
                f"missing required key ({cls.TYPE} devices do DMA, which goes through the IOMMU)",
            )
        assignable = values["assignable"]
        if assignable and cls.PLATFORM is not None:
            raise self.error(
                table,
                "assignable",
                f"{cls.TYPE} is a platform device (it controls {cls.PLATFORM}): it can never be assigned to a driver",
            )
        if assignable is None:
            assignable = cls.PLATFORM is None
        return DeviceSpec(table, name, cls.TYPE, base, size, values["irq"], dev_id, options, assignable)

    # -- cross-table checks --------------------------------------------------------------------------

    def check_irqs(self, irqc: DeviceSpec | None, iommu: DeviceSpec | None, devices) -> None:
        used: dict[int, str] = {}
        for spec in [d for d in (iommu,) if d is not None] + list(devices):
            irq = spec.irq
            if irq is None:
                continue
            if irqc is None:
                raise self.error(spec.table, "irq", "the board has no [interrupt_controller] to connect it to")
            sources = irqc.options["sources"]
            if irq == 0:
                raise self.error(spec.table, "irq", "IRQ 0 is reserved (it means 'no interrupt' at the PLIC)")
            if not 0 < irq < sources:
                raise self.error(
                    spec.table, "irq", f"IRQ {irq} is out of range 1..{sources - 1} ({irqc.name} has {sources} sources)"
                )
            if irq in used:
                raise self.error(spec.table, "irq", f"IRQ {irq} is already used by [{used[irq]}]")
            used[irq] = spec.table

    def check_dma(self, iommu: DeviceSpec | None, devices) -> None:
        used: dict[int, str] = {}
        for spec in devices:
            dev_id = spec.iommu_device_id
            if dev_id is None:
                continue
            if iommu is None:
                raise self.error(spec.table, "iommu_device_id", "the board has no [iommu]: device DMA needs one")
            if not 0 <= dev_id < DEVICE_ID_LIMIT:
                raise self.error(spec.table, "iommu_device_id", f"{dev_id} is out of range 0..{DEVICE_ID_LIMIT - 1}")
            if dev_id in used:
                raise self.error(
                    spec.table, "iommu_device_id", f"device ID {dev_id} is already used by [{used[dev_id]}]"
                )
            used[dev_id] = spec.table

    def check_names(self, regions) -> None:
        seen: dict[str, str] = {}
        for r in regions:
            if r.name in seen:
                key = None if r.table.startswith("devices.") else "name"
                raise self.error(r.table, key, f"name {r.name!r} is already used by [{seen[r.name]}]")
            seen[r.name] = r.table

    def check_overlaps(self, regions) -> None:
        seen: list = []
        for r in regions:
            for other in seen:
                if r.base < other.end and other.base < r.end:
                    raise self.error(
                        r.table,
                        None,
                        f"region [{r.base:#x}, {r.end:#x}) overlaps [{other.table}] [{other.base:#x}, {other.end:#x})",
                    )
            seen.append(r)
