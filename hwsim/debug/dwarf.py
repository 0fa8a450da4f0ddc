"""DWARF 4 for generated code: a line table, the functions of each compile unit, and (from the module's
own DWARF, translated by ``variables.py``) its types and variables, for the ELF of ``elf.py``.

::

    .debug_abbrev   one abbreviation per distinct shape of entry (tag, children, attributes and forms)
    .debug_info     per unit: DW_TAG_compile_unit (name, comp_dir, producer, language C99,
                    stmt_list, low_pc/high_pc); the unit's own entries (types, global variables);
                    one DW_TAG_subprogram (name, low_pc/high_pc, frame_base) per function,
                    holding its parameters and variables and a DW_TAG_inlined_subroutine
                    (name, low_pc/high_pc, call_file/call_line) per stretch of inlined code
    .debug_line     per unit: a version 4 line program, one row per address where the line
                    changes (set_address, set_file, advance_line, copy), then end_sequence
    .debug_loc      location lists: a base address selection of 0, then absolute ranges

Entries are :class:`Die` trees (a reference to another entry is that Die);
the writer lays offsets out before writing, so references need no fix-ups.
An inlined call whose code is not contiguous in the generated code gets one
DIE per stretch (no range lists).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from ..wasm.reader import write_uleb as uleb128
from .elf import CodeSymbol

DW_TAG_compile_unit, DW_TAG_subprogram, DW_TAG_inlined_subroutine = 0x11, 0x2E, 0x1D
DW_CHILDREN_no, DW_CHILDREN_yes = 0, 1
DW_AT_name, DW_AT_comp_dir, DW_AT_producer, DW_AT_language = 0x03, 0x1B, 0x25, 0x13
DW_AT_stmt_list, DW_AT_low_pc, DW_AT_high_pc = 0x10, 0x11, 0x12
DW_AT_call_file, DW_AT_call_line = 0x58, 0x59
DW_FORM_addr, DW_FORM_data1, DW_FORM_data8, DW_FORM_string, DW_FORM_sec_offset = 0x01, 0x0B, 0x07, 0x08, 0x17
DW_FORM_udata, DW_FORM_sdata, DW_FORM_data2, DW_FORM_data4 = 0x0F, 0x0D, 0x05, 0x06
DW_FORM_ref4, DW_FORM_exprloc, DW_FORM_flag_present = 0x13, 0x18, 0x19
DW_AT_frame_base = 0x40
DW_LANG_C99 = 0x0C
DW_LNS_copy, DW_LNS_advance_line, DW_LNS_set_file = 1, 3, 4
DW_LNE_end_sequence, DW_LNE_set_address = 1, 2
_STANDARD_OPCODE_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])  # opcodes 1..12


@dataclass(eq=False)
class Die:
    """A debugging information entry: ``(attribute, form, value)`` each; a ``DW_FORM_ref4`` value is the
    Die it refers to, a ``DW_FORM_sec_offset`` value for a location a :class:`LocationList`."""

    tag: int
    attrs: list[tuple[int, int, object]]
    children: list[Die] = field(default_factory=list)


@dataclass(frozen=True)
class LocationList:
    """``[low, high)`` code addresses, each with the DWARF expression that locates a value there."""

    ranges: tuple[tuple[int, int, bytes], ...]


@dataclass(frozen=True)
class LineRow:
    address: int
    file: str  # as in ``CompileUnit.files``
    line: int  # 0: no source line


@dataclass(frozen=True)
class InlinedCall:
    """Code of ``name`` inlined into its caller at ``call_file:call_line``, at ``[low, high)``."""

    name: str
    low: int
    high: int
    call_file: str  # as in ``LineRow.file``
    call_line: int
    children: tuple[InlinedCall, ...] = ()
    variables: tuple[Die, ...] = ()  # its parameters and variables


@dataclass(frozen=True)
class CompileUnit:
    """One unit of generated code (a compiled module): ``[low, high)``, its functions and line rows."""

    name: str
    comp_dir: str
    low: int
    high: int
    rows: tuple[LineRow, ...]
    functions: tuple[CodeSymbol, ...] = field(default_factory=tuple)
    inlined: dict[int, tuple[InlinedCall, ...]] = field(default_factory=dict)  # function address -> its inlined code
    producer: str = "hwsim"
    dies: tuple[Die, ...] = ()  # the unit's own entries before its functions: types, global variables
    variables: dict[int, tuple[Die, ...]] = field(default_factory=dict)  # function address -> its variables
    frame_base: dict[int, bytes] = field(default_factory=dict)  # function address -> DW_AT_frame_base

    def files(self) -> list[str]:
        """The line table's files (DWARF 4 numbers them from 1, in this order)."""
        names = {row.file for row in self.rows}

        def add(calls: tuple[InlinedCall, ...]) -> None:
            for call in calls:
                names.add(call.call_file)
                add(call.children)

        for calls in self.inlined.values():
            add(calls)
        return sorted(names)


def sleb128(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        done = (value == 0 and not byte & 0x40) or (value == -1 and byte & 0x40)
        out.append(byte if done else byte | 0x80)
        if done:
            return bytes(out)


def _cstr(text: str) -> bytes:
    return text.encode() + b"\0"


def _line_program(unit: CompileUnit) -> bytes:
    files = unit.files()
    dirs = sorted({d for f in files if (d := f.rpartition("/")[0])})
    header = bytearray([1, 1, 1, (-5) & 0xFF, 14, 13]) + _STANDARD_OPCODE_LENGTHS
    for d in dirs:
        header += _cstr(d)
    header += b"\0"
    index = {}
    for number, path in enumerate(files, start=1):
        directory, _, name = path.rpartition("/")
        header += _cstr(name) + uleb128(dirs.index(directory) + 1 if directory else 0) + b"\0\0"
        index[path] = number
    header += b"\0"
    program = bytearray()
    file, line = 1, 1
    for row in unit.rows:
        program += b"\0" + uleb128(9) + bytes([DW_LNE_set_address]) + struct.pack("<Q", row.address)
        if index[row.file] != file:
            file = index[row.file]
            program += bytes([DW_LNS_set_file]) + uleb128(file)
        if row.line != line:
            program += bytes([DW_LNS_advance_line]) + sleb128(row.line - line)
            line = row.line
        program += bytes([DW_LNS_copy])
    program += b"\0" + uleb128(9) + bytes([DW_LNE_set_address]) + struct.pack("<Q", unit.high)
    program += b"\0" + uleb128(1) + bytes([DW_LNE_end_sequence])
    body = struct.pack("<H", 4) + struct.pack("<I", len(header)) + bytes(header) + bytes(program)
    return struct.pack("<I", len(body)) + body


def _unit_die(unit: CompileUnit, stmt_list: int) -> Die:
    files = {path: number for number, path in enumerate(unit.files(), start=1)}

    def inlined(calls: tuple[InlinedCall, ...]) -> list[Die]:
        out = []
        for call in calls:
            attrs = [*_code_range(call.name, call.low, call.high)]
            attrs += [(DW_AT_call_file, DW_FORM_udata, files[call.call_file])]
            attrs += [(DW_AT_call_line, DW_FORM_udata, call.call_line)]
            out.append(Die(DW_TAG_inlined_subroutine, attrs, [*inlined(call.children), *call.variables]))
        return out

    children = list(unit.dies)
    for func in sorted(unit.functions, key=lambda f: f.address):
        attrs = _code_range(func.name, func.address, func.address + func.size)
        if func.address in unit.frame_base:
            attrs.append((DW_AT_frame_base, DW_FORM_exprloc, unit.frame_base[func.address]))
        kids = [*unit.variables.get(func.address, ()), *inlined(unit.inlined.get(func.address, ()))]
        children.append(Die(DW_TAG_subprogram, attrs, kids))
    attrs = [
        (DW_AT_name, DW_FORM_string, unit.name),
        (DW_AT_comp_dir, DW_FORM_string, unit.comp_dir),
        (DW_AT_producer, DW_FORM_string, unit.producer),
        (DW_AT_language, DW_FORM_data1, DW_LANG_C99),
        (DW_AT_stmt_list, DW_FORM_sec_offset, stmt_list),
        (DW_AT_low_pc, DW_FORM_addr, unit.low),
        (DW_AT_high_pc, DW_FORM_data8, unit.high - unit.low),
    ]
    return Die(DW_TAG_compile_unit, attrs, children)


def _code_range(name: str, low: int, high: int) -> list[tuple[int, int, object]]:
    return [
        (DW_AT_name, DW_FORM_string, name),
        (DW_AT_low_pc, DW_FORM_addr, low),
        (DW_AT_high_pc, DW_FORM_data8, high - low),
    ]


class _Writer:
    """DIE trees to ``.debug_info`` units, with one abbreviation table for all of them and ``.debug_loc``."""

    def __init__(self) -> None:
        self.abbrevs: dict[tuple, int] = {}
        self.loc = bytearray()

    def abbrev(self, die: Die) -> int:
        key = (die.tag, bool(die.children), tuple((attr, form) for attr, form, _ in die.attrs))
        return self.abbrevs.setdefault(key, len(self.abbrevs) + 1)

    def abbrev_section(self) -> bytes:
        out = bytearray()
        for (tag, children, attrs), code in self.abbrevs.items():
            out += uleb128(code) + uleb128(tag) + bytes([DW_CHILDREN_yes if children else DW_CHILDREN_no])
            for attr, form in attrs:
                out += uleb128(attr) + uleb128(form)
            out += b"\0\0"
        return bytes(out + b"\0")

    def location_list(self, entries: LocationList) -> int:
        """The offset in .debug_loc of ``entries`` (absolute addresses: a base address selection of 0 first)."""
        at = len(self.loc)
        self.loc += struct.pack("<qQ", -1, 0)
        for low, high, expr in entries.ranges:
            self.loc += struct.pack("<QQH", low, high, len(expr)) + expr
        self.loc += bytes(16)
        return at

    def value(self, form: int, value, offsets: dict[int, int]) -> bytes:
        if form == DW_FORM_string:
            return _cstr(value)
        if form in (DW_FORM_addr, DW_FORM_data8):
            return struct.pack("<Q", value)
        if form == DW_FORM_data1:
            return bytes([value])
        if form == DW_FORM_data2:
            return struct.pack("<H", value)
        if form == DW_FORM_data4:
            return struct.pack("<I", value)
        if form == DW_FORM_udata:
            return uleb128(value)
        if form == DW_FORM_sdata:
            return sleb128(value)
        if form == DW_FORM_sec_offset:
            return struct.pack("<I", self.location_list(value) if isinstance(value, LocationList) else value)
        if form == DW_FORM_ref4:
            return struct.pack("<I", offsets.get(id(value), 0))
        if form == DW_FORM_exprloc:
            return uleb128(len(value)) + bytes(value)
        if form == DW_FORM_flag_present:
            return b""
        raise ValueError(f"form {form:#x} is not written")

    def unit(self, top: Die) -> bytes:
        """The unit's bytes: DIE offsets are laid out first (every form has a size that does not depend on
        them), then written with each DW_FORM_ref4 pointing at its DIE."""
        offsets: dict[int, int] = {}
        header = 11  # unit_length, version, debug_abbrev_offset, address_size
        loc_mark = len(self.loc)

        def place(die: Die, at: int) -> int:
            offsets[id(die)] = at
            at += len(uleb128(self.abbrev(die)))
            at += sum(len(self.value(form, value, offsets)) for _, form, value in die.attrs)
            for child in die.children:
                at = place(child, at)
            return at + 1 if die.children else at

        place(top, header)
        del self.loc[loc_mark:]  # (sized while placing; written below)

        def write(die: Die, out: bytearray) -> None:
            out += uleb128(self.abbrev(die))
            for _, form, value in die.attrs:
                out += self.value(form, value, offsets)
            for child in die.children:
                write(child, out)
            if die.children:
                out.append(0)

        body = bytearray(struct.pack("<HIB", 4, 0, 8))  # version 4, abbrevs at 0, 8-byte addresses
        write(top, body)
        return struct.pack("<I", len(body)) + bytes(body)


def write_dwarf(units: list[CompileUnit]) -> dict[str, bytes]:
    """The ``.debug_abbrev``, ``.debug_info``, ``.debug_line`` (and ``.debug_loc``, when a variable has
    a location list) sections of ``units``."""
    writer = _Writer()
    info, line = bytearray(), bytearray()
    for unit in units:
        offset = len(line)
        line += _line_program(unit)
        info += writer.unit(_unit_die(unit, offset))
    sections = {".debug_abbrev": writer.abbrev_section(), ".debug_info": bytes(info), ".debug_line": bytes(line)}
    if writer.loc:
        sections[".debug_loc"] = bytes(writer.loc)
    return sections
