"""The ``dylink.0`` custom section of WebAssembly dynamic libraries (tool-conventions, DynamicLinking.md).

Decoded now for the dynamic-linking work of a later issue; nothing in the
front end acts on it.  Layout::

    dylink.0   ::= subsection*
    subsection ::= type:byte size:u32 content
      1 MEM_INFO     memorysize:u32 memoryalignment:u32 tablesize:u32 tablealignment:u32
                     (alignments are log2 of the byte / element alignment)
      2 NEEDED       vec(name)                       shared libraries this one needs
      3 EXPORT_INFO  vec(name flags:u32)             symbol flags of exports
      4 IMPORT_INFO  vec(module:name field:name flags:u32)
      5 RUNTIME_PATH vec(name)

Unknown subsection types are kept as raw bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import MalformedError, WasmError
from .reader import eof, read_len, read_name, read_u32

MEM_INFO, NEEDED, EXPORT_INFO, IMPORT_INFO, RUNTIME_PATH = 1, 2, 3, 4, 5

# Symbol flags (EXPORT_INFO / IMPORT_INFO).
WASM_SYM_BINDING_WEAK = 1 << 0
WASM_SYM_BINDING_LOCAL = 1 << 1
WASM_SYM_VISIBILITY_HIDDEN = 1 << 2
WASM_SYM_TLS = 1 << 8


@dataclass(kw_only=True)
class Dylink:
    memory_size: int = 0
    memory_align_log2: int = 0
    table_size: int = 0
    table_align_log2: int = 0
    needed: list[str] = field(default_factory=list)
    export_info: dict[str, int] = field(default_factory=dict)  # name -> flags
    import_info: dict[tuple[str, str], int] = field(default_factory=dict)  # (module, field) -> flags
    runtime_path: list[str] = field(default_factory=list)
    unknown_subsections: dict[int, bytes] = field(default_factory=dict)


def decode_dylink(data: bytes, *, base_offset: int = 0) -> Dylink:
    """Decode the payload of a ``dylink.0`` section; ``base_offset`` shifts error offsets."""
    try:
        return _decode(data)
    except IndexError:
        raise eof(base_offset + len(data), "the dylink.0 section") from None
    except WasmError as exc:
        raise MalformedError(f"dylink.0 section: {exc.reason}", offset=base_offset + (exc.offset or 0)) from None


def _names(data: bytes, pos: int) -> tuple[list[str], int]:
    n, pos = read_len(data, pos)
    out = []
    for _ in range(n):
        name, pos = read_name(data, pos)
        out.append(name)
    return out, pos


def _decode(data: bytes) -> Dylink:
    out = Dylink()
    pos = 0
    while pos < len(data):
        sub_pos = pos
        kind = data[pos]
        pos += 1
        size, pos = read_len(data, pos)
        start = pos
        end = start + size
        if kind == MEM_INFO:
            out.memory_size, pos = read_u32(data, pos)
            out.memory_align_log2, pos = read_u32(data, pos)
            out.table_size, pos = read_u32(data, pos)
            out.table_align_log2, pos = read_u32(data, pos)
        elif kind == NEEDED:
            out.needed, pos = _names(data, pos)
        elif kind == EXPORT_INFO:
            n, pos = read_len(data, pos)
            for _ in range(n):
                name, pos = read_name(data, pos)
                out.export_info[name], pos = read_u32(data, pos)
        elif kind == IMPORT_INFO:
            n, pos = read_len(data, pos)
            for _ in range(n):
                module, pos = read_name(data, pos)
                name, pos = read_name(data, pos)
                out.import_info[(module, name)], pos = read_u32(data, pos)
        elif kind == RUNTIME_PATH:
            out.runtime_path, pos = _names(data, pos)
        else:
            out.unknown_subsections[kind] = bytes(data[start:end])
            pos = end
        if pos != end:
            raise MalformedError(
                f"subsection {kind} size mismatch: declares {size} bytes, uses {pos - start}", offset=sub_pos
            )
    return out
