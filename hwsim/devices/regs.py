"""A small register framework: registers declared as data, behaviour attached by name.

A device declares its registers once, in a :class:`RegisterLayout` (offset,
name, width, access rule, reset value, writable and reserved bits, fields
for documentation, and an optional bank condition such as the 16550's DLAB).
At run time a :class:`RegisterFile` holds the values and dispatches MMIO
accesses::

    mmio_read(offset, size) --> lookup (offset, bank) --> width check --> access rule
                                                                    |--> read hook (computed value)
    mmio_write(offset, size, value) --> ... --> access rule --> stored value --> write hook

Access rules (:class:`RegAccess`):

=====  =============================================================
RO     read-only; a write is a guest issue and changes nothing
WO     write-only; a read is a guest issue and returns 0
RW     read/write (only ``writable`` bits change; others read back)
W1C    write 1 to clear: each 1 written clears that bit
RC     read to clear: a read returns the value, then the value is 0
=====  =============================================================

``w1c`` marks write-1-to-clear bits inside an otherwise RW register.  Bits
set in ``reserved`` must be written as 0: a write setting them is a guest
issue (and they are ignored).  Bits that are neither writable nor reserved
are read-only bits of a RW register: writing them back unchanged, as a
read-modify-write does, is normal and is not reported.

Every misuse (unknown offset, wrong width, write to RO, read of WO,
reserved bits) is recorded through the device's ``report`` callback with
the register's name; nothing is silently dropped.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import partial

from ..errors import ConfigError
from .issues import IssueKind


class RegAccess(enum.Enum):
    RO = "RO"
    WO = "WO"
    RW = "RW"
    W1C = "W1C"
    RC = "RC"


@dataclass(frozen=True, slots=True)
class Field:
    """A named bit range, for documentation and ``describe``."""

    name: str
    lsb: int
    width: int = 1
    doc: str = ""

    @property
    def mask(self) -> int:
        return ((1 << self.width) - 1) << self.lsb

    @property
    def bits(self) -> str:
        return str(self.lsb) if self.width == 1 else f"{self.lsb + self.width - 1}:{self.lsb}"


@dataclass(frozen=True, slots=True)
class Register:
    name: str
    offset: int
    width: int = 4  # bytes
    access: RegAccess = RegAccess.RW
    reset: int = 0
    writable: int | None = None  # bits a write changes (None: all bits of the width)
    reserved: int = 0  # bits that must be written as 0
    w1c: int = 0  # write-1-to-clear bits (all writable bits when access is W1C)
    when: str | None = None  # bank condition: "flag" or "!flag"; None: always present
    fields: tuple[Field, ...] = ()
    doc: str = ""

    @property
    def full_mask(self) -> int:
        return (1 << (8 * self.width)) - 1

    @property
    def write_mask(self) -> int:
        return self.full_mask if self.writable is None else self.writable & self.full_mask

    @property
    def clear_mask(self) -> int:
        return self.write_mask if self.access is RegAccess.W1C else self.w1c & self.write_mask

    @property
    def readable(self) -> bool:
        return self.access is not RegAccess.WO

    @property
    def writable_by_guest(self) -> bool:
        return self.access is not RegAccess.RO

    def visible(self, flags: frozenset[str] | set[str]) -> bool:
        if self.when is None:
            return True
        if self.when.startswith("!"):
            return self.when[1:] not in flags
        return self.when in flags


class RegisterLayout:
    """The register map of one device type, checked for overlaps when declared."""

    def __init__(self, device_type: str, registers: list[Register] | tuple[Register, ...]) -> None:
        self.device_type = device_type
        self.registers = tuple(registers)
        self._by_offset: dict[int, list[Register]] = {}
        self._by_name: dict[str, Register] = {}
        for reg in self.registers:
            if reg.width not in (1, 2, 4):
                raise ConfigError(
                    f"{device_type} register {reg.name}: width must be 1, 2 or 4 bytes "
                    f"(Unicorn splits wider accesses), not {reg.width}"
                )
            if reg.offset % reg.width:
                raise ConfigError(
                    f"{device_type} register {reg.name}: offset {reg.offset:#x} is not aligned to its width {reg.width}"
                )
            if reg.name in self._by_name:
                raise ConfigError(f"{device_type}: register name {reg.name} declared twice")
            if reg.reset & ~reg.full_mask:
                raise ConfigError(
                    f"{device_type} register {reg.name}: reset value {reg.reset:#x} does not fit in {reg.width} byte(s)"
                )
            for other in self._overlapping(reg):
                if _may_coexist(reg, other):
                    continue
                raise ConfigError(
                    f"{device_type}: registers {other.name} and {reg.name} overlap at offset {reg.offset:#x}"
                )
            self._by_name[reg.name] = reg
            self._by_offset.setdefault(reg.offset, []).append(reg)

    def _overlapping(self, reg: Register) -> list[Register]:
        """Registers declared so far that share a byte with ``reg`` (widths are at most 4 bytes)."""
        out = []
        for start in range(reg.offset - 3, reg.offset + reg.width):
            out += [r for r in self._by_offset.get(start, ()) if r.offset + r.width > reg.offset]
        return out

    @property
    def extent(self) -> int:
        """Bytes from offset 0 to the end of the last register."""
        return max((r.offset + r.width for r in self.registers), default=0)

    def __getitem__(self, name: str) -> Register:
        return self._by_name[name]

    def __iter__(self) -> Iterator[Register]:
        return iter(self.registers)

    def at(self, offset: int) -> list[Register]:
        return self._by_offset.get(offset, [])

    def containing(self, offset: int) -> list[Register]:
        return [r for r in self.registers if r.offset <= offset < r.offset + r.width]

    def markdown_table(self) -> str:
        """The register map as a Markdown table (docs/devices.md embeds these verbatim)."""
        rows = ["| Offset | Name | Width | Access | Reset | Description |", "|---|---|---|---|---|---|"]
        for r in sorted(self.registers, key=lambda r: (r.offset, r.when or "", r.access is RegAccess.WO)):
            cond = f" ({r.when.replace('!', 'not ')})" if r.when else ""
            doc = r.doc
            if r.fields:
                doc += " " + "; ".join(f"[{f.bits}] {f.name}" + (f" {f.doc}" if f.doc else "") for f in r.fields)
            rows.append(
                f"| {r.offset:#06x} | {r.name}{cond} | {8 * r.width} | {r.access.value} | "
                f"{r.reset:#x} | {doc.strip()} |"
            )
        return "\n".join(rows)


def _may_coexist(a: Register, b: Register) -> bool:
    """Two registers may share an offset when one is read-only and the other write-only (IIR/FCR),
    or when their bank conditions exclude each other (RBR/DLL)."""
    if a.offset != b.offset or a.width != b.width:
        return False
    if {a.access, b.access} == {RegAccess.RO, RegAccess.WO}:
        return True
    return bool(a.when and b.when and (a.when == "!" + b.when or b.when == "!" + a.when))


ReadHook = Callable[[], int]
WriteHook = Callable[[int, int], None]  # (new value, old value)
Report = Callable[..., None]  # report(kind, register=, offset=, size=, value=, **extra)


class RegisterFile:
    """The run-time values of a :class:`RegisterLayout`, and MMIO dispatch to them."""

    def __init__(self, layout: RegisterLayout, report: Report) -> None:
        self.layout = layout
        self.values: dict[str, int] = {}
        self._masks = {r.name: r.full_mask for r in layout}  # for device-side updates (__setitem__)
        self._flags: set[str] = set()  # active bank conditions
        self._found: dict[tuple[int, int, bool], Register] = {}  # (offset, size, write) -> register, for hits
        # offset << 4 | size -> the resolved read () -> int (a plain register: its value's lookup, kept
        # within its width; else a closure for a read hook, read-to-clear) or write (value) -> None
        self._readers: dict[int, Callable[[], int]] = {}
        self._writers: dict[int, Callable[[int], None]] = {}
        # The same entries, handed to the machine's dispatch (see handlers()) while it may use them.
        self._direct_readers: dict[int, Callable[[], int]] = {}
        self._direct_writers: dict[int, Callable[[int], None]] = {}
        self._direct = (False, False)  # (reads, writes) go into the tables above
        self._read_hooks: dict[str, ReadHook] = {}
        self._write_hooks: dict[str, WriteHook] = {}
        self._report = report
        self.reset()

    def reset(self) -> None:
        self.values = {r.name: r.reset & r.full_mask for r in self.layout}
        self._flags.clear()
        self._forget()

    def _forget(self) -> None:
        """Drop every resolved access (the bank, a hook or the values dict changed)."""
        self._found.clear()
        self._readers.clear()
        self._writers.clear()
        self._direct_readers.clear()
        self._direct_writers.clear()

    def handlers(self) -> tuple[dict[int, Callable[[], int]], dict[int, Callable[[int], None]]]:
        """The live dispatch tables of resolved guest accesses: ``offset << 4 | size`` -> the read
        ``() -> int`` or the write ``(value) -> None`` that access comes to (rules, masks and hooks in it).

        Only valid accesses appear (one that reports an issue is resolved, and reported, each time), and
        only while :meth:`set_direct` allows it; entries go when the bank, a hook or the values change.
        The dicts are never replaced, so a caller may keep them: a hit is served by its entry, a miss
        must go to :meth:`read` or :meth:`write` (which resolve it, and may add it)."""
        return self._direct_readers, self._direct_writers

    def set_direct(self, *, reads: bool, writes: bool) -> None:
        """Whether resolved reads and writes go into :meth:`handlers`' tables (a device turns this off
        when an access must do more than the register's work, e.g. when it is traced)."""
        if (reads, writes) != self._direct:
            self._direct = (reads, writes)
            self._forget()

    @property
    def flags(self) -> frozenset[str]:
        return frozenset(self._flags)

    def set_flag(self, flag: str, on: bool = True) -> None:
        """Switch a bank condition (e.g. the 16550's DLAB), changing which registers the offsets select."""
        if on != (flag in self._flags):
            (self._flags.add if on else self._flags.discard)(flag)
            self._forget()

    def on_read(self, name: str, hook: ReadHook) -> None:
        """``hook()`` computes the register's value at each guest read."""
        self.layout[name]  # noqa: B018 - raises KeyError for a typo
        self._read_hooks[name] = hook
        self._forget()

    def on_write(self, name: str, hook: WriteHook) -> None:
        """``hook(new, old)`` runs after a guest write has been applied."""
        self.layout[name]  # noqa: B018
        self._write_hooks[name] = hook
        self._forget()

    def computed_on_read(self, name: str) -> bool:
        """True when a guest read computes the register (its stored value is not what a read returns)."""
        return name in self._read_hooks

    def __getitem__(self, name: str) -> int:
        return self.values[name]

    def __setitem__(self, name: str, value: int) -> None:
        """Device-side update (not a guest access: no rules, no hooks)."""
        self.values[name] = value & self._masks[name]

    # -- guest accesses --------------------------------------------------------------

    def find(self, offset: int, size: int, write: bool) -> Register | None:
        """The register a guest access selects, or None after reporting why there is none."""
        reg = self._found.get((offset, size, write))
        if reg is not None:
            return reg
        op = "write" if write else "read"
        candidates = [r for r in self.layout.at(offset) if r.visible(self._flags)]
        if len(candidates) > 1:  # a read-only and a write-only register share the offset
            unwanted = RegAccess.RO if write else RegAccess.WO
            candidates = [r for r in candidates if r.access is not unwanted] or candidates
        if not candidates:
            containing = [r for r in self.layout.containing(offset) if r.visible(self._flags)]
            if containing:
                reg = containing[0]
                self._report(
                    IssueKind.BAD_WIDTH,
                    register=reg.name,
                    offset=offset,
                    size=size,
                    op=op,
                    width=reg.width,
                    reg_offset=reg.offset,
                )
            else:
                self._report(IssueKind.UNKNOWN_OFFSET, offset=offset, size=size, op=op)
            return None
        reg = candidates[0]
        if size != reg.width:
            self._report(
                IssueKind.BAD_WIDTH,
                register=reg.name,
                offset=offset,
                size=size,
                op=op,
                width=reg.width,
                reg_offset=reg.offset,
            )
            return None
        self._found[(offset, size, write)] = reg
        return reg

    def read(self, offset: int, size: int) -> int:
        reader = self._readers.get(offset << 4 | size)
        if reader is not None:
            return reader()
        reg = self.find(offset, size, write=False)
        if reg is None:
            return 0
        if reg.access is RegAccess.WO:
            self._report(IssueKind.WRITE_ONLY, register=reg.name, offset=offset, size=size)
            return 0
        reader = self._readers[offset << 4 | size] = self._reader(reg)
        if self._direct[0]:
            self._direct_readers[offset << 4 | size] = reader
        return reader()

    def write(self, offset: int, size: int, value: int) -> None:
        writer = self._writers.get(offset << 4 | size)
        if writer is None:
            reg = self.find(offset, size, write=True)
            if reg is None:
                return
            if reg.access is RegAccess.RO:
                self._report(
                    IssueKind.READ_ONLY, register=reg.name, offset=offset, size=size, value=value & reg.full_mask
                )
                return
            writer = self._writers[offset << 4 | size] = self._writer(reg, offset, size)
            if self._direct[1]:
                self._direct_writers[offset << 4 | size] = writer
        writer(value)

    # Each valid (offset, size) is resolved once (keyed offset << 4 | size) into a closure over the register's name, masks and hook;
    # accesses that report an issue are not cached (they report again each time).  Bank switches, hook
    # changes and resets drop the closures.

    def _reader(self, reg: Register) -> Callable[[], int]:
        values, name, mask = self.values, reg.name, reg.full_mask
        hook = self._read_hooks.get(name)
        if reg.access is RegAccess.RC:

            def read_to_clear() -> int:
                value = hook() if hook is not None else values[name]
                values[name] = 0
                return value & mask

            return read_to_clear
        if hook is not None:
            return lambda: hook() & mask
        return partial(values.__getitem__, name)  # stored values never exceed the register's width

    def _writer(self, reg: Register, offset: int, size: int) -> Callable[[int], None]:
        values, name, full, reserved = self.values, reg.name, reg.full_mask, reg.reserved
        mask = reg.write_mask & ~reserved
        clear = reg.clear_mask
        keep, change = ~(mask & ~clear), mask & ~clear
        hook = self._write_hooks.get(name)
        report = self._report
        if not reserved and not clear and change == full:  # every bit plainly writable: the value, whole
            if hook is None:

                def write_plain(value: int) -> None:
                    values[name] = value & full

                return write_plain

            def write_plain_hooked(value: int) -> None:
                old = values[name]
                new = values[name] = value & full
                hook(new, old)

            return write_plain_hooked

        def write(value: int) -> None:
            value &= full
            if value & reserved:
                report(
                    IssueKind.RESERVED_BITS,
                    register=name,
                    offset=offset,
                    size=size,
                    value=value,
                    bits=value & reserved,
                )
            old = values[name]
            new = (old & keep) | (value & change)
            if clear:
                new &= ~(value & clear)
            values[name] = new
            if hook is not None:
                hook(new, old)

        return write
