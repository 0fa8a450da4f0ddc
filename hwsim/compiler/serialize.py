"""The code cache's file format: a :class:`CompiledModule` as plain data, checked before it is used.

Never pickle: unpickling runs whatever a file says, so anyone able to write the cache directory
could run code in the host process.  This format is only read: a file that is truncated,
corrupt, from another compiler, or forged so that its indices do not fit the module is refused
(:class:`CacheFormatError`) and the module is compiled again.  A forged file that passes every
check can only hold RISC-V code, which runs in the guest as compiled code always does: in U-mode,
behind the Store's page tables (no more than a hostile module could ask for).

::

    offset  size             field (little-endian)
    0       8                magic b"hwsimcc\0"
    8       4                FORMAT_VERSION
    12      32               SHA-256 of the body (every byte after this field)
    44                       body:
              2 + n          COMPILER_VERSION (u16 length, UTF-8)
              1              flags: bit 0 far_calls, bit 1 metering
              1 + names      trap-code table: u8 count, each a u8 length and a TrapCode member name
              4 + 8 n        functions: u32 count; (u32 code offset, u32 size) each, in order (veneer
                             islands may follow a function; the SIMD helper routines follow the last)
              4 + 13 n       trap table: u32 count; (u32 code offset, u8 trap code, u32 func, u32 wasm offset)
              4 + 12 n       pc map: u32 count; (u32 code offset, u32 func, u32 wasm offset)
              8 + ...        frames: u32 count (0 or one per function), u32 length; each a frames.FrameInfo
              4 + ...        try_table regions: u32 count; each (u32 start, u32 end, u32 clauses), then per
                             clause (u8 kind, i32 tag index or -1, u32 landing pad offset)
              4 + ...        stack maps: u32 count; each (u32 return offset, u16 n, n x i32 location)
                             (stackmaps.py)
              4 + n          code: u32 length, the bytes

The vmctx layout and the number of imported functions are not stored: they are recomputed from
the module the file is loaded for, and every offset and function index in the file is checked
against them and against the code.

A serialized module (``Module.serialize``) wraps such a file with the module it was compiled from,
so that it stands alone (:func:`encode_module`, :func:`decode_module`)::

    offset  size             field (little-endian)
    0       8                magic b"hwsimmod"
    8       4                MODULE_FORMAT_VERSION
    12      32               SHA-256 of the body
    44                       body:
              4 + n          the wasm binary: u32 length, the bytes
              1 + names      features: u8 count; each a u8 length, a Features field name, a u8 value
              rest           the code-cache file above, for that binary
"""

from __future__ import annotations

import dataclasses
import hashlib
import itertools
import operator
import struct

from ..wasm.module import DecodedModule, Features
from . import COMPILER_VERSION, CompiledModule, PcMap, vmctx_layout
from .frames import FrameTable
from .stackmaps import StackMaps
from .traps import TrapCode

MAGIC = b"hwsimcc\0"
FORMAT_VERSION = 6  # 2: the key names the features a module was accepted under; 3: frames; 4: frames sized;
# 5: try_table regions; 6: stack maps
_HEADER = struct.Struct("<8sI32s")
_TRAP = struct.Struct("<IBII")
_PC = struct.Struct("<III")
_FUNC = struct.Struct("<II")
_U32 = struct.Struct("<I")
_REGION = struct.Struct("<III")
_CLAUSE = struct.Struct("<BiI")
_FRAME_MIN = 16  # FrameInfo.to_bytes() of a function with nothing saved and no locals


class CacheFormatError(Exception):
    """A cache file that is not a usable compilation of the module (internal: the caller compiles again,
    or, for a serialized module, says why it refuses it)."""


MODULE_MAGIC = b"hwsimmod"
MODULE_FORMAT_VERSION = 1


def encode_module(wasm: bytes, features: Features, compiled: CompiledModule) -> bytes:
    """A serialized module: ``wasm``, the ``features`` it was accepted under and its compiled code."""
    fields = [(f.name.encode(), int(getattr(features, f.name))) for f in dataclasses.fields(Features)]
    parts = [_U32.pack(len(wasm)), wasm, bytes([len(fields)])]
    for name, value in fields:
        parts += [bytes([len(name)]), name, bytes([value])]
    parts.append(encode(compiled))
    body = b"".join(parts)
    return _HEADER.pack(MODULE_MAGIC, MODULE_FORMAT_VERSION, hashlib.sha256(body).digest()) + body


def decode_module(data: bytes) -> tuple[bytes, Features, bytes]:
    """The wasm binary, features and code-cache file a serialized module holds (the code is checked
    against the module later, by :func:`decode`); :class:`CacheFormatError` says why it is not one."""
    if len(data) < _HEADER.size:
        raise CacheFormatError(f"{len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, digest = _HEADER.unpack_from(data)
    if magic != MODULE_MAGIC:
        raise CacheFormatError("not a serialized hwsim module (bad magic)")
    if version != MODULE_FORMAT_VERSION:
        raise CacheFormatError(f"serialized module format version {version}, not {MODULE_FORMAT_VERSION}")
    body = memoryview(data)[_HEADER.size :]
    if hashlib.sha256(body).digest() != digest:
        raise CacheFormatError("content hash mismatch (corrupt or truncated)")
    r = _Reader(body)
    wasm = bytes(r.take(r.unpack("<I")[0]))
    known = {f.name for f in dataclasses.fields(Features)}
    values = {}
    for _ in range(r.unpack("<B")[0]):
        name = bytes(r.take(r.unpack("<B")[0])).decode("ascii", "replace")
        value = r.unpack("<B")[0]
        if name not in known or value > 1:
            raise CacheFormatError(f"unknown feature {name!r} = {value}")
        values[name] = bool(value)
    return wasm, Features(**values), bytes(r.take(r.left))


def encode(compiled: CompiledModule) -> bytes:
    """The file's bytes for ``compiled``."""
    names = sorted({code.name for _, code, _, _ in compiled.trap_table})
    index = {name: i for i, name in enumerate(names)}
    version = COMPILER_VERSION.encode()
    flags = int(compiled.far_calls) | int(compiled.metering) << 1
    parts = [struct.pack("<H", len(version)), version, bytes([flags]), bytes([len(names)])]
    for name in names:
        parts += [bytes([len(name)]), name.encode()]
    parts.append(_U32.pack(len(compiled.func_offsets)))
    parts += [_FUNC.pack(off, size) for off, size in zip(compiled.func_offsets, compiled.func_sizes)]
    parts.append(_U32.pack(len(compiled.trap_table)))
    parts += [_TRAP.pack(off, index[code.name], func, wasm) for off, code, func, wasm in compiled.trap_table]
    pc_map = compiled.pc_map if isinstance(compiled.pc_map, PcMap) else PcMap(compiled.pc_map)
    parts += [_U32.pack(len(pc_map)), pc_map.to_bytes()]
    frames = b"".join(frame.to_bytes() for frame in compiled.frames)
    parts += [_U32.pack(len(compiled.frames)), _U32.pack(len(frames)), frames]
    parts.append(_U32.pack(len(compiled.handlers)))
    for start, end, clauses in compiled.handlers:
        parts.append(_REGION.pack(start, end, len(clauses)))
        parts += [_CLAUSE.pack(*clause) for clause in clauses]
    parts.append(compiled.stack_maps.to_bytes())
    parts += [_U32.pack(len(compiled.code)), compiled.code]
    body = b"".join(parts)
    return _HEADER.pack(MAGIC, FORMAT_VERSION, hashlib.sha256(body).digest()) + body


def decode(data: bytes, module: DecodedModule) -> CompiledModule:
    """The compiled module a file holds for ``module``; :class:`CacheFormatError` says why it cannot be used."""
    if len(data) < _HEADER.size:
        raise CacheFormatError(f"{len(data)} bytes, shorter than the {_HEADER.size}-byte header")
    magic, version, digest = _HEADER.unpack_from(data)
    if magic != MAGIC:
        raise CacheFormatError("not a code-cache file (bad magic)")
    if version != FORMAT_VERSION:
        raise CacheFormatError(f"format version {version}, not {FORMAT_VERSION}")
    body = memoryview(data)[_HEADER.size :]
    if hashlib.sha256(body).digest() != digest:
        raise CacheFormatError("content hash mismatch (corrupt or truncated)")
    r = _Reader(body)
    compiler = bytes(r.take(r.unpack("<H")[0])).decode("utf-8", "replace")
    if compiler != COMPILER_VERSION:
        raise CacheFormatError(f"compiled by {compiler!r}, not {COMPILER_VERSION!r}")
    flags = r.unpack("<B")[0]
    if flags > 3:
        raise CacheFormatError(f"flags byte is {flags:#x} (bit 0 far calls, bit 1 metering)")
    codes = []
    for _ in range(r.unpack("<B")[0]):
        name = bytes(r.take(r.unpack("<B")[0])).decode("ascii", "replace")
        if name not in TrapCode.__members__:
            raise CacheFormatError(f"unknown trap code {name!r}")
        codes.append(TrapCode[name])
    funcs = r.records(_FUNC)
    traps = r.records(_TRAP)
    pc_map = PcMap.from_bytes(r.take(r.count(_PC.size) * _PC.size))
    frame_count = r.count(_FRAME_MIN)
    frame_bytes = bytes(r.take(r.unpack("<I")[0]))
    handlers = []
    for _ in range(r.count(_REGION.size)):
        start, end, n = r.unpack(_REGION.format)
        clauses = tuple(_CLAUSE.unpack(r.take(_CLAUSE.size)) for _ in range(n))  # (a short file ends it)
        handlers.append((start, end, clauses))
    try:
        stack_maps, size = StackMaps.read(r.data[r.pos :], 0xFFFF_FFFF)
    except ValueError as e:
        raise CacheFormatError(str(e)) from None
    r.take(size)
    code = bytes(r.take(r.unpack("<I")[0]))
    if r.left:
        raise CacheFormatError(f"{r.left} bytes after the code")

    first, count = module.num_imported_funcs, len(module.funcs)
    if len(funcs) != count:
        raise CacheFormatError(f"{len(funcs)} functions, but the module defines {count}")
    end = 0
    for off, size in funcs:  # in order, apart or one after the other (veneer islands between, helpers after)
        if off < end:
            raise CacheFormatError(f"function code at {off:#x} overlaps the function before (it ends at {end:#x})")
        end = off + size
    if end > len(code):
        raise CacheFormatError(f"functions end at {end:#x}, past the code at {len(code):#x}")
    if frame_count and frame_count != count:
        raise CacheFormatError(f"{frame_count} frames, but the module defines {count} functions")
    frames = FrameTable(frame_bytes, frame_count, [size for _, size in funcs]) if frame_count else []
    trap_table = [(off, _index(codes, code_index, "trap code"), func, wasm) for off, code_index, func, wasm in traps]
    tags = len(module.get_tag_type_indices())
    for start, end, clauses in handlers:
        if not start <= end <= len(code) or any(
            pad >= len(code) or kind > 3 or not (tag == -1 if kind >= 2 else 0 <= tag < tags)
            for kind, tag, pad in clauses
        ):
            raise CacheFormatError(f"a try_table region [{start:#x}, {end:#x}) does not fit the code or the tags")
    if stack_maps.offsets and stack_maps.offsets[-1] > len(code):
        raise CacheFormatError(f"stack map offset {stack_maps.offsets[-1]:#x} is outside the code")
    # Whole-column checks first (C loops: a large module has a pc-map entry per wasm instruction); the
    # entry-by-entry loop only runs to name the entry that fails.
    for what, table, offsets, funcs_named in (
        ("trap table", trap_table, [t[0] for t in traps], [t[2] for t in traps]),
        ("pc map", pc_map, pc_map.offsets, pc_map.funcs()),
    ):
        if not offsets or (
            all(map(operator.le, offsets, itertools.islice(offsets, 1, None)))
            and offsets[-1] < len(code)
            and first <= min(funcs_named)
            and max(funcs_named) < first + count
        ):
            continue
        last = 0
        for entry in table:
            off, func = entry[0], entry[-2]
            if not last <= off < len(code):
                raise CacheFormatError(f"{what} offset {off:#x} is out of order or outside the code")
            if not first <= func < first + count:
                raise CacheFormatError(f"{what} names function {func}, not one the module defines")
            last = off
    return CompiledModule(
        code,
        [f[0] for f in funcs],
        [f[1] for f in funcs],
        trap_table,
        pc_map,
        vmctx_layout(module),
        first,
        bool(flags & 1),
        bool(flags & 2),
        frames,
        handlers,
        stack_maps,
    )


def _index(items: list, i: int, what: str):
    if i >= len(items):
        raise CacheFormatError(f"{what} {i} is not in the file's table of {len(items)}")
    return items[i]


class _Reader:
    """Bounds-checked reads from the body; running short is a CacheFormatError."""

    def __init__(self, data: memoryview) -> None:
        self.data = data
        self.pos = 0

    @property
    def left(self) -> int:
        return len(self.data) - self.pos

    def take(self, n: int) -> memoryview:
        if n > self.left:
            raise CacheFormatError(f"truncated: {n} bytes needed at {self.pos}, {self.left} left")
        self.pos += n
        return self.data[self.pos - n : self.pos]

    def unpack(self, fmt: str) -> tuple:
        return struct.unpack(fmt, self.take(struct.calcsize(fmt)))

    def count(self, size: int) -> int:
        """A u32 count of records of ``size`` bytes, checked against the bytes left."""
        n = self.unpack("<I")[0]
        if n * size > self.left:
            raise CacheFormatError(f"truncated: {n} records of {size} bytes at {self.pos}, {self.left} left")
        return n

    def records(self, record: struct.Struct) -> list[tuple]:
        """A u32 count, then that many records."""
        n = self.count(record.size)
        return list(record.iter_unpack(self.take(n * record.size)))
