"""A small RV64 ELF of generated code: one ``PT_LOAD`` segment and section per code region, function symbols.

What a debugger needs to name code it did not build: ``info symbol``,
``break FUNC`` and function names in backtraces; ``sections`` adds the
DWARF of ``dwarf.py`` (source lines).

::

    ELF header | program headers (one PT_LOAD, R+X, per region) | region bytes ...
    | .symtab (STT_FUNC, STB_GLOBAL) | .strtab | other sections (.debug_*) | .shstrtab | section headers
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field

EM_RISCV = 243
ET_EXEC = 2
PT_LOAD = 1
PF_X, PF_R = 1, 4
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB = 1, 2, 3
SHF_ALLOC, SHF_EXECINSTR = 0x2, 0x4
STT_FUNC, STB_GLOBAL = 2, 1
EF_RISCV_RVC, EF_RISCV_FLOAT_ABI_DOUBLE = 0x1, 0x4

_EHDR = struct.Struct("<16sHHIQQQIHHHHHH")
_PHDR = struct.Struct("<IIQQQQQQ")
_SHDR = struct.Struct("<IIQQQQIIQQ")
_SYM = struct.Struct("<IBBHQQ")


@dataclass(frozen=True, slots=True)
class CodeSymbol:
    name: str
    address: int
    size: int


@dataclass(frozen=True, slots=True)
class CodeRegion:
    """Code at ``address`` (its bytes), the section name to give it, and the functions in it."""

    section: str
    address: int
    data: bytes
    symbols: tuple[CodeSymbol, ...] = field(default_factory=tuple)


class _Strings:
    def __init__(self) -> None:
        self.data = bytearray(b"\0")
        self._at: dict[str, int] = {}

    def add(self, text: str) -> int:
        if text not in self._at:
            self._at[text] = len(self.data)
            self.data += text.encode() + b"\0"
        return self._at[text]


def write_elf(regions: list[CodeRegion], *, entry: int = 0, sections: dict[str, bytes] | None = None) -> bytes:
    """The ELF file's bytes (ET_EXEC, EM_RISCV, RVC and double-float flags, as hwsim's hart); ``sections``
    adds sections that are not loaded (``.debug_*`` from dwarf.py), by name."""
    extra = list((sections or {}).items())
    regions = sorted(regions, key=lambda r: r.address)
    shstr, strtab = _Strings(), _Strings()
    phoff = _EHDR.size
    offset = phoff + _PHDR.size * len(regions)
    placed = []
    for region in regions:
        offset = (offset + 15) & ~15
        placed.append(offset)
        offset += len(region.data)
    symbols = [_SYM.pack(0, 0, 0, 0, 0, 0)]
    for index, region in enumerate(regions, start=1):
        for sym in sorted(region.symbols, key=lambda s: s.address):
            info = (STB_GLOBAL << 4) | STT_FUNC
            symbols.append(_SYM.pack(strtab.add(sym.name), info, 0, index, sym.address, sym.size))
    symtab = b"".join(symbols)
    offset = (offset + 7) & ~7
    symtab_off = offset
    strtab_off = symtab_off + len(symtab)
    names = [shstr.add(r.section) for r in regions]
    symtab_name, strtab_name, shstrtab_name = shstr.add(".symtab"), shstr.add(".strtab"), shstr.add(".shstrtab")
    extra_names = [shstr.add(name) for name, _ in extra]
    extra_off = []
    at = strtab_off + len(strtab.data)
    for _, data in extra:
        extra_off.append(at)
        at += len(data)
    shstrtab_off = at
    shoff = (shstrtab_off + len(shstr.data) + 7) & ~7
    n_sections = len(regions) + 4 + len(extra)
    out = bytearray()
    ident = b"\x7fELF" + bytes((2, 1, 1, 0)) + bytes(8)  # 64-bit, little-endian, version 1, System V
    out += _EHDR.pack(
        ident,
        ET_EXEC,
        EM_RISCV,
        1,
        entry,
        phoff,
        shoff,
        EF_RISCV_RVC | EF_RISCV_FLOAT_ABI_DOUBLE,
        _EHDR.size,
        _PHDR.size,
        len(regions),
        _SHDR.size,
        n_sections,
        n_sections - 1,
    )
    for region, at in zip(regions, placed):
        size = len(region.data)
        out += _PHDR.pack(PT_LOAD, PF_R | PF_X, at, region.address, region.address, size, size, 16)
    for region, at in zip(regions, placed):
        out += bytes(at - len(out)) + region.data
    out += bytes(symtab_off - len(out)) + symtab + strtab.data + b"".join(data for _, data in extra) + shstr.data
    out += bytes(shoff - len(out))
    headers = [_SHDR.pack(0, 0, 0, 0, 0, 0, 0, 0, 0, 0)]
    for region, at, name in zip(regions, placed, names):
        flags = SHF_ALLOC | SHF_EXECINSTR
        headers.append(_SHDR.pack(name, SHT_PROGBITS, flags, region.address, at, len(region.data), 0, 0, 16, 0))
    strtab_index = len(regions) + 2
    headers.append(_SHDR.pack(symtab_name, SHT_SYMTAB, 0, 0, symtab_off, len(symtab), strtab_index, 1, 8, _SYM.size))
    headers.append(_SHDR.pack(strtab_name, SHT_STRTAB, 0, 0, strtab_off, len(strtab.data), 0, 0, 1, 0))
    for name, (_, data), at in zip(extra_names, extra, extra_off):
        headers.append(_SHDR.pack(name, SHT_PROGBITS, 0, 0, at, len(data), 0, 0, 1, 0))
    headers.append(_SHDR.pack(shstrtab_name, SHT_STRTAB, 0, 0, shstrtab_off, len(shstr.data), 0, 0, 1, 0))
    out += b"".join(headers)
    return bytes(out)
