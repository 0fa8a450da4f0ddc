"""DWARF 4 for generated code: a line table and the functions of each compile unit, for the ELF of
``elf.py`` (``break file.c:LINE``, ``next``, ``step`` and ``file.c:LINE`` in backtraces).

::

    .debug_abbrev   three abbreviations: compile unit, subprogram, inlined subroutine
    .debug_info     per unit: DW_TAG_compile_unit (name, comp_dir, producer, language C99,
                    stmt_list, low_pc/high_pc), one DW_TAG_subprogram (name, low_pc/high_pc)
                    per function, holding DW_TAG_inlined_subroutine (name, low_pc/high_pc,
                    call_file/call_line) per stretch of inlined code, nested as inlined
    .debug_line     per unit: a version 4 line program, one row per address where the line
                    changes (set_address, set_file, advance_line, copy), then end_sequence

No frame information (GDB unwinds by prologue analysis) and no variables
yet: those need the wasm module's DWARF for locals and frames translated to
the generated code's registers and slots.  An inlined call whose code is not
contiguous in the generated code gets one DIE per stretch (no range lists).
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

from .elf import CodeSymbol

DW_TAG_compile_unit, DW_TAG_subprogram, DW_TAG_inlined_subroutine = 0x11, 0x2E, 0x1D
DW_CHILDREN_no, DW_CHILDREN_yes = 0, 1
DW_AT_name, DW_AT_comp_dir, DW_AT_producer, DW_AT_language = 0x03, 0x1B, 0x25, 0x13
DW_AT_stmt_list, DW_AT_low_pc, DW_AT_high_pc = 0x10, 0x11, 0x12
DW_AT_call_file, DW_AT_call_line = 0x58, 0x59
DW_FORM_addr, DW_FORM_data1, DW_FORM_data8, DW_FORM_string, DW_FORM_sec_offset = 0x01, 0x0B, 0x07, 0x08, 0x17
DW_FORM_udata = 0x0F
DW_LANG_C99 = 0x0C
DW_LNS_copy, DW_LNS_advance_line, DW_LNS_set_file = 1, 3, 4
DW_LNE_end_sequence, DW_LNE_set_address = 1, 2
_STANDARD_OPCODE_LENGTHS = bytes([0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1])  # opcodes 1..12


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


def _uleb(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _sleb(value: int) -> bytes:
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


def _abbrevs() -> bytes:
    unit = [
        (DW_AT_name, DW_FORM_string),
        (DW_AT_comp_dir, DW_FORM_string),
        (DW_AT_producer, DW_FORM_string),
        (DW_AT_language, DW_FORM_data1),
        (DW_AT_stmt_list, DW_FORM_sec_offset),
        (DW_AT_low_pc, DW_FORM_addr),
        (DW_AT_high_pc, DW_FORM_data8),
    ]
    func = [(DW_AT_name, DW_FORM_string), (DW_AT_low_pc, DW_FORM_addr), (DW_AT_high_pc, DW_FORM_data8)]
    inlined = [*func, (DW_AT_call_file, DW_FORM_udata), (DW_AT_call_line, DW_FORM_udata)]
    out = bytearray()
    for code, tag, children, attrs in (
        (1, DW_TAG_compile_unit, DW_CHILDREN_yes, unit),
        (2, DW_TAG_subprogram, DW_CHILDREN_yes, func),
        (3, DW_TAG_inlined_subroutine, DW_CHILDREN_yes, inlined),
    ):
        out += _uleb(code) + _uleb(tag) + bytes([children])
        for attr, form in attrs:
            out += _uleb(attr) + _uleb(form)
        out += b"\0\0"
    return bytes(out + b"\0")


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
        header += _cstr(name) + _uleb(dirs.index(directory) + 1 if directory else 0) + b"\0\0"
        index[path] = number
    header += b"\0"
    program = bytearray()
    file, line = 1, 1
    for row in unit.rows:
        program += b"\0" + _uleb(9) + bytes([DW_LNE_set_address]) + struct.pack("<Q", row.address)
        if index[row.file] != file:
            file = index[row.file]
            program += bytes([DW_LNS_set_file]) + _uleb(file)
        if row.line != line:
            program += bytes([DW_LNS_advance_line]) + _sleb(row.line - line)
            line = row.line
        program += bytes([DW_LNS_copy])
    program += b"\0" + _uleb(9) + bytes([DW_LNE_set_address]) + struct.pack("<Q", unit.high)
    program += b"\0" + _uleb(1) + bytes([DW_LNE_end_sequence])
    body = struct.pack("<H", 4) + struct.pack("<I", len(header)) + bytes(header) + bytes(program)
    return struct.pack("<I", len(body)) + body


def _info(unit: CompileUnit, stmt_list: int) -> bytes:
    die = bytearray(_uleb(1))
    die += _cstr(unit.name) + _cstr(unit.comp_dir) + _cstr(unit.producer) + bytes([DW_LANG_C99])
    die += struct.pack("<IQQ", stmt_list, unit.low, unit.high - unit.low)
    files = {path: number for number, path in enumerate(unit.files(), start=1)}

    def inlined(calls: tuple[InlinedCall, ...]) -> bytes:
        out = bytearray()
        for call in calls:
            out += _uleb(3) + _cstr(call.name) + struct.pack("<QQ", call.low, call.high - call.low)
            out += _uleb(files[call.call_file]) + _uleb(call.call_line) + inlined(call.children) + b"\0"
        return bytes(out)

    for func in sorted(unit.functions, key=lambda f: f.address):
        die += _uleb(2) + _cstr(func.name) + struct.pack("<QQ", func.address, func.size)
        die += inlined(unit.inlined.get(func.address, ())) + b"\0"
    die += b"\0"
    body = struct.pack("<HIB", 4, 0, 8) + bytes(die)  # version 4, abbrevs at 0, 8-byte addresses
    return struct.pack("<I", len(body)) + body


def write_dwarf(units: list[CompileUnit]) -> dict[str, bytes]:
    """The ``.debug_abbrev``, ``.debug_info`` and ``.debug_line`` sections of ``units``."""
    info, line = bytearray(), bytearray()
    for unit in units:
        offset = len(line)
        line += _line_program(unit)
        info += _info(unit, offset)
    return {".debug_abbrev": _abbrevs(), ".debug_info": bytes(info), ".debug_line": bytes(line)}
