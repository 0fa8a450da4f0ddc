"""Source lines for wasm code from the DWARF in its custom sections (built with ``-g``), via pyelftools.

DWARF addresses in a wasm module are offsets from the start of the code
section's contents.  A location is the innermost line-table row at or before
the address; when the address lies in inlined code (an ``inline`` helper such
as ``hwsim_dma_map_single``), the call site in the caller is reported too,
because that is the line a driver author wrote.
"""

from __future__ import annotations

import bisect
import io
import os
from dataclasses import dataclass

from elftools.common.exceptions import DWARFError
from elftools.dwarf.dwarfinfo import DebugSectionDescriptor, DwarfConfig, DWARFInfo
from elftools.elf.elffile import ELFFile

from .._elfparse import PARSE_ERRORS

_SECTIONS = (
    "info",
    "abbrev",
    "str",
    "line",
    "line_str",
    "ranges",
    "rnglists",
    "loc",
    "loclists",
    "addr",
    "str_offsets",
    "aranges",
)


@dataclass(frozen=True)
class SourceLocation:
    file: str
    line: int
    function: str | None = None
    inlined_at: tuple[tuple[str, int, str | None], ...] = ()  # (file, line, function) of call sites, innermost first

    def format(self) -> str:
        """``driver.c:12 (probe)``; for inlined code the whole chain, outermost call site first (where the
        author's code is), then each inlined call site in turn, then the line itself:
        ``driver.c:20 (probe), in driver.c:8 (map_buffer), in hwsim.h:72``."""
        if self.inlined_at:
            sites = [
                f"{os.path.basename(file)}:{line}" + (f" ({func})" if func else "")
                for file, line, func in reversed(self.inlined_at)
            ]
            return ", in ".join([*sites, f"{os.path.basename(self.file)}:{self.line}"])
        return f"{os.path.basename(self.file)}:{self.line}" + (f" ({self.function})" if self.function else "")


def _leb_len(value: int) -> int:
    n = 1
    while value >= 0x80:
        value >>= 7
        n += 1
    return n


class SourceMap:
    """Wasm bytecode offsets -> source locations; ``None`` for a module without DWARF."""

    def __init__(self, module) -> None:
        sections = {c.name: c.data for c in module.customs if c.name.startswith(".debug_")}
        self.available = ".debug_info" in sections and ".debug_line" in sections and bool(module.funcs)
        self.rows: list[tuple[int, str, int]] = []
        self.dwarf = None
        self.scopes: list[tuple[int, int, int, str | None, str | None, int]] = []  # lo, hi, depth, name, file, line
        if not self.available:
            return
        first = module.funcs[0].offset  # the first function's size field follows the count
        self.code_base = first - _leb_len(len(module.funcs))
        try:
            self._load(sections)
        except PARSE_ERRORS:
            self._forget()  # unreadable debug info costs the source lines, nothing else

    def _load(self, sections: dict[str, bytes]) -> None:
        def desc(name):
            data = sections.get(f".debug_{name}")
            return None if data is None else DebugSectionDescriptor(io.BytesIO(data), f".debug_{name}", 0, len(data), 0)

        args = {f"debug_{n}_sec": desc(n) for n in _SECTIONS}
        dwarf = DWARFInfo(
            config=DwarfConfig(little_endian=True, machine_arch="wasm", default_address_size=4),
            debug_frame_sec=None,
            eh_frame_sec=None,
            debug_pubtypes_sec=None,
            debug_pubnames_sec=None,
            debug_sup_sec=None,
            gnu_debugaltlink_sec=None,
            debug_types_sec=None,
            **args,
        )
        self._load_dwarf(dwarf)

    @classmethod
    def from_elf(cls, elffile) -> SourceMap:
        """Source lines of a native ELF (pyelftools ``ELFFile``): ``locate(pc)`` takes addresses."""
        self = cls.__new__(cls)
        self.rows, self.scopes, self.code_base, self.dwarf = [], [], 0, None
        try:
            self.available = bool(elffile.has_dwarf_info())
            if self.available:
                self._load_dwarf(elffile.get_dwarf_info())
        except PARSE_ERRORS:
            self._forget()
        return self

    @classmethod
    def from_elf_bytes(cls, data: bytes) -> SourceMap:
        """:meth:`from_elf` of an ELF file's bytes; a file pyelftools cannot open has no source lines."""
        try:
            elffile = ELFFile(io.BytesIO(data))
        except PARSE_ERRORS:
            self = cls.__new__(cls)
            self.rows, self.scopes, self.code_base, self.dwarf = [], [], 0, None
            self._forget()
            return self
        return cls.from_elf(elffile)

    def _forget(self) -> None:
        """No source lines: what was read before the debug info turned out unreadable is dropped."""
        self.available = False
        self.rows, self.scopes = [], []
        self.dwarf = None

    def _load_dwarf(self, dwarf) -> None:
        # Every DIE takes at least one byte of .debug_info, so a tree walk visiting more DIEs than that
        # is going round a loop (a corrupted DW_AT_sibling or abbreviation; pyelftools follows it forever).
        self._die_budget = dwarf.debug_info_sec.size if dwarf.debug_info_sec is not None else 0
        self.dwarf = dwarf  # (pyelftools DWARFInfo: the variables and types, for hwsim/debug/variables.py)
        for cu in dwarf.iter_CUs():
            program = dwarf.line_program_for_CU(cu)
            if program is None:
                continue
            files = program["file_entry"]
            version = program["version"]

            def file_name(index, files=files, version=version):
                entry = files[index if version >= 5 else index - 1]
                name = entry.name.decode() if isinstance(entry.name, bytes) else str(entry.name)
                return name

            for entry in program.get_entries():
                state = entry.state
                if state is not None and not state.end_sequence:
                    self.rows.append((state.address, file_name(state.file), state.line))
            top = cu.get_top_DIE()
            self._ranges = dwarf.range_lists()
            self._cu = cu
            self._cu_base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
            self._scopes(top, 0, file_name)
        self.rows.sort(key=lambda r: r[0])
        self._addresses = [r[0] for r in self.rows]

    def _scopes(self, die, depth: int, file_name) -> None:
        for child in die.iter_children():
            self._die_budget -= 1
            if self._die_budget < 0:
                raise DWARFError("the DIE tree has more entries than .debug_info has bytes (a loop)")
            if child.tag in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine"):
                name = self._name(child)
                call_file = call_line = None
                if child.tag == "DW_TAG_inlined_subroutine":
                    attr = child.attributes
                    if "DW_AT_call_file" in attr:
                        call_file = file_name(attr["DW_AT_call_file"].value)
                    call_line = attr["DW_AT_call_line"].value if "DW_AT_call_line" in attr else None
                for lo, hi in self._die_ranges(child):
                    self.scopes.append((lo, hi, depth, name, call_file, call_line or 0))
                self._scopes(child, depth + 1, file_name)
            elif child.has_children:
                self._scopes(child, depth, file_name)

    def _die_ranges(self, die) -> list[tuple[int, int]]:
        """The address ranges of a scope: low/high PC, or a range list (discontiguous inlined code)."""
        attr = die.attributes
        if "DW_AT_low_pc" in attr:
            lo = attr["DW_AT_low_pc"].value
            hi = attr.get("DW_AT_high_pc")
            if hi is None:
                return [(lo, lo + 1)]
            return [(lo, lo + hi.value if hi.form != "DW_FORM_addr" else hi.value)]
        if "DW_AT_ranges" in attr and self._ranges is not None:
            out, base = [], self._cu_base
            for entry in self._ranges.get_range_list_at_offset(attr["DW_AT_ranges"].value, cu=self._cu):
                if hasattr(entry, "base_address"):
                    base = entry.base_address
                elif getattr(entry, "is_absolute", False):
                    out.append((entry.begin_offset, entry.end_offset))
                else:
                    out.append((base + entry.begin_offset, base + entry.end_offset))
            return out
        return []

    @staticmethod
    def die_name(die) -> str | None:
        """A DIE's name, else its abstract origin's (an inlined instance, a concrete out-of-line copy)."""
        return SourceMap._name(die)

    @staticmethod
    def _name(die) -> str | None:
        attr = die.attributes
        if "DW_AT_name" in attr:
            value = attr["DW_AT_name"].value
            return value.decode() if isinstance(value, bytes) else str(value)
        origin = attr.get("DW_AT_abstract_origin")
        if origin is not None:
            try:
                return SourceMap._name(die.get_DIE_from_attribute("DW_AT_abstract_origin"))
            except PARSE_ERRORS:
                return None
        return None

    def locate(self, wasm_offset: int) -> SourceLocation | None:
        if not self.available or not self.rows:
            return None
        cache = self.__dict__.setdefault("_located", {})
        if wasm_offset not in cache:
            cache[wasm_offset] = self._locate(wasm_offset)
        return cache[wasm_offset]

    def _locate(self, wasm_offset: int) -> SourceLocation | None:
        address = wasm_offset - self.code_base
        i = bisect.bisect_right(self._addresses, address) - 1
        if i < 0:
            return None
        _, file, line = self.rows[i]
        scopes = sorted((s for s in self.scopes if s[0] <= address < s[1]), key=lambda s: s[2])
        function = scopes[-1][3] if scopes else None
        inlined = []
        for k in range(len(scopes) - 1, 0, -1):  # innermost first: each inlined scope's call site
            lo, hi, depth, name, call_file, call_line = scopes[k]
            if call_file is not None:
                inlined.append((call_file, call_line, scopes[k - 1][3]))
        return SourceLocation(file, line, function, tuple(inlined))
