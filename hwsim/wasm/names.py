"""The ``name`` custom section: module, function, local and other names, for reports and error messages.

Layout (WebAssembly 2.0 appendix "Name Section", extended-name-section ids
3-11)::

    namesec    ::= subsection*
    subsection ::= id:byte size:u32 content
      0 module     name
      1 function   namemap          = vec(idx name)
      2 local      indirectnamemap  = vec(idx namemap)
      3 label      indirectnamemap
      4 type   5 table   6 memory   7 global   8 elem   9 data   11 tag   namemap
      10 field     indirectnamemap

The specification says a malformed name section must not make the module
malformed; the decoder records the error in ``DecodedModule.name_section_error``
instead of raising it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MalformedError, WasmError
from .reader import eof, read_len, read_name, read_u32

MODULE, FUNCTION, LOCAL, LABEL, TYPE, TABLE, MEMORY, GLOBAL, ELEM, DATA, FIELD, TAG = range(12)
_NAMEMAP_KINDS = {
    TYPE: "types",
    TABLE: "tables",
    MEMORY: "memories",
    GLOBAL: "globals",
    ELEM: "elems",
    DATA: "datas",
    TAG: "tags",
}
_INDIRECT_KINDS = {LABEL: "labels", FIELD: "fields"}


@dataclass(kw_only=True)
class NameSection:
    module_name: str | None = None
    function_names: dict[int, str] = field(default_factory=dict)
    local_names: dict[int, dict[int, str]] = field(default_factory=dict)
    # Other namemaps by kind ("types", "globals", ...) and indirect ones ("labels", "fields").
    other: dict[str, dict] = field(default_factory=dict)
    unknown_subsections: dict[int, bytes] = field(default_factory=dict)

    def get_local_name(self, func_index: int, local_index: int) -> str | None:
        return self.local_names.get(func_index, {}).get(local_index)


def _namemap(data: bytes, pos: int) -> tuple[dict[int, str], int]:
    out: dict[int, str] = {}
    n, pos = read_len(data, pos)
    for _ in range(n):
        idx, pos = read_u32(data, pos)
        name, pos = read_name(data, pos)
        out[idx] = name
    return out, pos


def _indirect_namemap(data: bytes, pos: int) -> tuple[dict[int, dict[int, str]], int]:
    out: dict[int, dict[int, str]] = {}
    n, pos = read_len(data, pos)
    for _ in range(n):
        idx, pos = read_u32(data, pos)
        out[idx], pos = _namemap(data, pos)
    return out, pos


def decode_name_section(data: bytes, *, base_offset: int = 0) -> NameSection:
    """Decode the payload of a ``name`` section; ``base_offset`` (its offset in the module) shifts error offsets."""
    try:
        return _decode(data)
    except IndexError:
        raise eof(base_offset + len(data), "the name section") from None
    except WasmError as exc:
        raise MalformedError(f"name section: {exc.reason}", offset=base_offset + (exc.offset or 0)) from None


def _decode(data: bytes) -> NameSection:
    out = NameSection()
    pos = 0
    last_id = -1
    while pos < len(data):
        sub_pos = pos
        sid = data[pos]
        pos += 1
        if sid <= last_id:
            raise MalformedError(f"subsection {sid} out of order or repeated", offset=sub_pos)
        last_id = sid
        size, pos = read_len(data, pos)
        start = pos
        end = start + size
        if end > len(data):
            raise MalformedError(f"subsection {sid} runs past the end of the section", offset=sub_pos)
        if sid == MODULE:
            out.module_name, pos = read_name(data, pos)
        elif sid == FUNCTION:
            out.function_names, pos = _namemap(data, pos)
        elif sid == LOCAL:
            out.local_names, pos = _indirect_namemap(data, pos)
        elif sid in _NAMEMAP_KINDS:
            out.other[_NAMEMAP_KINDS[sid]], pos = _namemap(data, pos)
        elif sid in _INDIRECT_KINDS:
            out.other[_INDIRECT_KINDS[sid]], pos = _indirect_namemap(data, pos)
        else:
            out.unknown_subsections[sid] = bytes(data[start:end])
            pos = end
        if pos != end:
            raise MalformedError(
                f"subsection {sid} size mismatch: declares {size} bytes, uses {pos - start}", offset=sub_pos
            )
    return out
