"""The binary decoder: bytes -> :class:`~hwsim.wasm.module.Module`, or a MalformedError naming the offset.

Scope: WebAssembly 2.0 core (MVP, sign extension, non-trapping float-to-int,
multi-value, bulk memory, reference types funcref/externref), multi-memory,
memory64 (64-bit memories and tables), tail calls, extended constant
expressions, custom page sizes (``Features.custom_page_sizes``), threads
(``Features.threads``: shared memories and the ``0xfe`` atomics), SIMD, exception
handling (the tag section, tag imports and exports, ``throw``, ``throw_ref``,
``try_table``, ``exnref``), typed function references (``(ref null? ht)`` types, ``call_ref``,
``return_call_ref``, ``ref.as_non_null``, ``br_on_null``, ``br_on_non_null``, table initialisers;
``DecodedModule.typed_refs`` says a module has them) and, behind ``Features.memory_discard``,
``memory.discard``.  Opcodes, types and sections of other proposals (GC, legacy
exceptions, stack switching) raise
:class:`~hwsim.wasm.errors.UnsupportedFeatureError` naming the proposal.
That error is raised after the whole module has been decoded (the decoder
knows the immediates of those instructions and the shapes of those types and
skips them), so a module that is both malformed and out of scope is reported
as malformed; only where the decoder cannot skip (unknown sub-opcodes under
the SIMD, GC and atomics prefixes, stack-switching handlers) does it stop at
once.

The decoder follows the reference interpreter's reading discipline: every read
is bounded by the end of the module, not of the section, and a section's (or
function body's) declared size is compared with what its contents used
afterwards.  That is what decides between "unexpected end of section or
function", "section size mismatch" and "END opcode expected".

Sections in order (custom sections may appear anywhere)::

    type import function table memory [tag] global export start elem datacount code data
"""

from __future__ import annotations

from . import gcops, simd
from . import opcodes as op
from .atomics import ATOMICS, PREFIX_FE, AtomicKind
from .errors import MalformedError, UnsupportedFeatureError, WasmError
from .module import (
    ACTIVE,
    DECLARATIVE,
    DEFAULT_FEATURES,
    PASSIVE,
    ConstExpr,
    CustomSection,
    DataSegment,
    DecodedModule,
    ElemSegment,
    Export,
    Features,
    FuncBody,
    Global,
    Import,
    ImportDesc,
    Table,
)
from .reader import eof, read_bytes, read_len, read_name, read_sleb, read_u32, read_u64, read_uleb
from .types import (
    BLOCK_EMPTY,
    DEFAULT_PAGE_SIZE_LOG2,
    EXNREF,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    GC_ABSTRACT_TYPES,
    I32,
    I64,
    LIMITS_HAS_MAX,
    LIMITS_INDEX64,
    LIMITS_PAGE_SIZE,
    LIMITS_SHARED,
    NULLEXNREF,
    REF_CONCRETE,
    V128,
    ArrayType,
    CompositeType,
    ExternKind,
    FieldType,
    FuncType,
    GlobalType,
    Limits,
    MemoryType,
    StructType,
    TableType,
    ref_abstract,
    ref_as_non_null,
    ref_concrete,
    ref_type_index,
)

MAGIC = b"\x00asm"
VERSION = b"\x01\x00\x00\x00"

# Section ids.
CUSTOM, TYPE, IMPORT, FUNCTION, TABLE, MEMORY, GLOBAL, EXPORT, START, ELEM, CODE, DATA, DATACOUNT, TAG = range(14)
SECTION_NAMES = {
    CUSTOM: "custom",
    TYPE: "type",
    IMPORT: "import",
    FUNCTION: "function",
    TABLE: "table",
    MEMORY: "memory",
    GLOBAL: "global",
    EXPORT: "export",
    START: "start",
    ELEM: "element",
    CODE: "code",
    DATA: "data",
    DATACOUNT: "data count",
    TAG: "tag",
}
# Position of each non-custom section in the required order.
SECTION_ORDER = {
    TYPE: 1,
    IMPORT: 2,
    FUNCTION: 3,
    TABLE: 4,
    MEMORY: 5,
    TAG: 6,
    GLOBAL: 7,
    EXPORT: 8,
    START: 9,
    ELEM: 10,
    DATACOUNT: 11,
    CODE: 12,
    DATA: 13,
}

_VALTYPES = frozenset((I32, I64, F32, F64, V128, FUNCREF, EXTERNREF, EXNREF))
_REFTYPES = frozenset((FUNCREF, EXTERNREF, EXNREF))
# GC's abstract reference types (and exception handling's nullexnref), as one-byte shorthands and heap
# types: the validator checks them with the precise types (typed references), and they are GC.
_GC_SHORT = GC_ABSTRACT_TYPES | {NULLEXNREF}
_HEAP_BYTES = _REFTYPES | _GC_SHORT
_MASK32 = 0xFFFFFFFF
_MASK64 = 0xFFFFFFFFFFFFFFFF


def decode_module(data, *, features: Features = DEFAULT_FEATURES, bodies: bool = True) -> DecodedModule:
    """Decode a binary module.  Raises MalformedError or UnsupportedFeatureError, never another exception.

    ``data`` may be ``bytes``, ``bytearray`` or a ``memoryview`` of bytes.  ``bodies=False`` skips every
    function body, its locals and instructions (each FuncBody has empty ``locals`` and ``body``): for a module whose compiled code
    is already at hand, where decoding the bodies would be most of the work of loading it.
    """
    if isinstance(data, memoryview):
        data = data.tobytes()
    elif not isinstance(data, bytes):
        data = bytes(data)
    decoder = _Decoder(data, features)
    decoder.bodies = bodies
    try:
        module = decoder.module()
    except IndexError:
        raise eof(len(data)) from None
    if decoder.unsupported is not None:
        raise decoder.unsupported
    return module


class _Decoder:
    def __init__(self, data: bytes, features: Features):
        self.data = data
        self.features = features
        self.pos = 0
        self.uses_data_index = False  # memory.init or data.drop seen (needs a data count section)
        self.typed_refs = False  # a typed reference type or a table initialiser seen (validate lowers them)
        self.gc = False  # a GC type form, heap type or instruction seen
        self.unsupported: UnsupportedFeatureError | None = None  # the first out-of-scope feature seen
        self.func_index: int | None = None  # function whose body is being decoded
        self.bodies = True  # False: skip the instructions of function bodies
        self.last_shared = False  # the shared flag of the limits read last

    def note_unsupported(self, exc: UnsupportedFeatureError) -> None:
        """Remember the first out-of-scope feature; it is raised once decoding has finished."""
        if self.unsupported is None:
            self.unsupported = exc.locate(func_index=self.func_index)

    # Small readers --------------------------------------------------------

    def u32(self) -> int:
        v, self.pos = read_u32(self.data, self.pos)
        return v

    def u64(self) -> int:
        v, self.pos = read_u64(self.data, self.pos)
        return v

    def length(self) -> int:
        v, self.pos = read_len(self.data, self.pos)
        return v

    def byte(self) -> int:
        b = self.data[self.pos]
        self.pos += 1
        return b

    def name(self) -> str:
        v, self.pos = read_name(self.data, self.pos)
        return v

    def valtype(self) -> int:
        t, self.pos = read_valtype(self.data, self.pos, self)
        return t

    def reftype(self) -> int:
        pos = self.pos
        b = self.data[pos]
        if b in _REFTYPES:
            self.pos = pos + 1
            return b
        if (b in op.UNSUPPORTED_VALTYPES and b != 0x7B) or b in op.REF_TYPE_PREFIXES or b in _GC_SHORT:
            t, self.pos = read_valtype(self.data, pos, self)
            return t
        raise MalformedError(f"malformed reference type {b:#04x}", offset=pos)

    def limits(self, *, memory: bool) -> tuple[Limits, int, int]:
        """Limits of a table or memory type: (limits, index type, log2 page size)."""
        pos = self.pos
        flags = self.byte()
        allowed = LIMITS_HAS_MAX | (LIMITS_INDEX64 if self.features.memory64 else 0)
        if memory:
            if self.features.custom_page_sizes:
                allowed |= LIMITS_PAGE_SIZE
            if self.features.threads:
                allowed |= LIMITS_SHARED
            elif flags & LIMITS_SHARED and not flags & ~(allowed | LIMITS_SHARED):
                self.note_unsupported(
                    UnsupportedFeatureError(op.THREADS, f"shared memory, limits flags {flags:#04x}", offset=pos)
                )
                flags &= ~LIMITS_SHARED
        if flags & ~allowed:
            raise MalformedError(f"malformed limits flags {flags:#04x}", offset=pos)
        read = self.u64 if self.features.memory64 else self.u32
        minimum = read()
        maximum = read() if flags & LIMITS_HAS_MAX else None
        page_log2 = DEFAULT_PAGE_SIZE_LOG2
        if flags & LIMITS_PAGE_SIZE:
            ppos = self.pos
            page_log2 = self.u32()
            if page_log2 >= 64:
                raise MalformedError(f"invalid custom page size: 2**{page_log2} bytes", offset=ppos)
        self.last_shared = bool(flags & LIMITS_SHARED)
        return Limits(min=minimum, max=maximum), (I64 if flags & LIMITS_INDEX64 else I32), page_log2

    def table_type(self) -> TableType:
        elem = self.reftype()
        limits, index_type, _ = self.limits(memory=False)
        return TableType(elem_type=elem, limits=limits, index_type=index_type)

    def memory_type(self) -> MemoryType:
        limits, index_type, page_log2 = self.limits(memory=True)
        return MemoryType(limits=limits, index_type=index_type, page_size_log2=page_log2, shared=self.last_shared)

    def global_type(self) -> GlobalType:
        t = self.valtype()
        pos = self.pos
        m = self.byte()
        if m > 1:
            raise MalformedError(f"malformed mutability {m:#04x}", offset=pos)
        return GlobalType(valtype=t, mutable=bool(m))

    def const_expr(self) -> ConstExpr:
        start = self.pos
        instrs, self.pos = decode_instructions(self.data, start, self.features, self, in_body=False)
        return ConstExpr(instrs=instrs, offset=start)

    # The module -----------------------------------------------------------

    def module(self) -> DecodedModule:
        data = self.data
        n = len(data)
        if n < 4:
            raise eof(n, "the magic header")
        if data[:4] != MAGIC:
            raise MalformedError(f"magic header not detected: {bytes(data[:4])!r} is not b'\\x00asm'", offset=0)
        if n < 8:
            raise eof(n, "the version")
        if data[4:8] != VERSION:
            version = int.from_bytes(data[4:8], "little")
            raise MalformedError(f"unknown binary version {version:#x} (hwsim reads version 1)", offset=4)
        m = DecodedModule(size=n)
        self.pos = 8
        last_order = 0
        last_id = 0
        func_type_indices: list[int] = []
        codes: list[tuple] = []
        while self.pos < n:
            id_pos = self.pos
            sid = data[id_pos]
            if sid > TAG:
                raise MalformedError(f"malformed section id {sid}", offset=id_pos)
            if sid != CUSTOM:
                order = SECTION_ORDER[sid]
                if order <= last_order:
                    raise MalformedError(
                        f"unexpected content after last section: {SECTION_NAMES[sid]} section out of order or repeated",
                        offset=id_pos,
                    )
                last_order = order
            self.pos = id_pos + 1
            size = self.length()
            start = self.pos
            if sid == CUSTOM:
                self._custom_section(m, size, last_id)
            elif sid == TYPE:
                self._type_section(m)
            elif sid == IMPORT:
                m.imports = [self._import() for _ in range(self.length())]
            elif sid == FUNCTION:
                func_type_indices = [self.u32() for _ in range(self.length())]
            elif sid == TABLE:
                m.tables = [self._table() for _ in range(self.length())]
            elif sid == MEMORY:
                for _ in range(self.length()):
                    m.memory_offsets.append(self.pos)
                    m.memories.append(self.memory_type())
            elif sid == TAG:
                m.tags = [self._tag_type() for _ in range(self.length())]
            elif sid == GLOBAL:
                m.globals = [self._global() for _ in range(self.length())]
            elif sid == EXPORT:
                m.exports = [self._export() for _ in range(self.length())]
            elif sid == START:
                m.start_offset = self.pos
                m.start = self.u32()
            elif sid == ELEM:
                m.elems = [self._elem() for _ in range(self.length())]
            elif sid == DATACOUNT:
                m.data_count = self.u32()
            elif sid == CODE:
                func_base = sum(1 for imp in m.imports if imp.kind == ExternKind.FUNC)
                codes = [self._code(func_base + i) for i in range(self.length())]
            elif sid == DATA:
                m.datas = [self._data() for _ in range(self.length())]
            if self.pos != start + size:
                raise MalformedError(
                    f"section size mismatch: {SECTION_NAMES[sid]} section declares {size} bytes "
                    f"but its contents use {self.pos - start}",
                    offset=start,
                )
            if sid != CUSTOM:
                last_id = sid
        if len(func_type_indices) != len(codes):
            raise MalformedError(
                f"function and code section have inconsistent lengths: {len(func_type_indices)} functions "
                f"declared, {len(codes)} bodies",
                offset=n,
            )
        if m.data_count is not None and m.data_count != len(m.datas):
            raise MalformedError(
                f"data count and data section have inconsistent lengths: data count {m.data_count}, "
                f"{len(m.datas)} segments",
                offset=n,
            )
        if m.data_count is None and self.uses_data_index:
            raise MalformedError("data count section required (memory.init or data.drop is used)", offset=n)
        m.funcs = [
            FuncBody(type_index=t, locals=locals_, num_locals=nlocals, body=body, offset=off, body_offset=boff)
            for t, (locals_, nlocals, body, off, boff) in zip(func_type_indices, codes)
        ]
        self._decode_known_customs(m)
        m.bodies = self.bodies
        m.features = self.features
        m.typed_refs = self.typed_refs or self.gc
        m.gc = self.gc
        return m

    def _custom_section(self, m: DecodedModule, size: int, after: int) -> None:
        start = self.pos
        name = self.name()
        rest = size - (self.pos - start)
        content_start = self.pos
        content, self.pos = read_bytes(self.data, self.pos, rest)
        m.customs.append(CustomSection(name=name, data=content, offset=content_start, after=after))

    def _decode_known_customs(self, m: DecodedModule) -> None:
        from .dylink import decode_dylink
        from .names import decode_name_section

        for custom in m.customs:
            if custom.name == "name" and m.names is None and m.name_section_error is None:
                try:
                    m.names = decode_name_section(custom.data, base_offset=custom.offset)
                except WasmError as exc:
                    m.name_section_error = str(exc)
            elif custom.name == "dylink.0" and m.dylink is None and m.dylink_error is None:
                try:
                    m.dylink = decode_dylink(custom.data, base_offset=custom.offset)
                except WasmError as exc:
                    m.dylink_error = str(exc)

    def _type_section(self, m: DecodedModule) -> None:
        """The type section: recursion groups of sub types (GC), or plain function types."""
        groups: list[tuple[int, int]] = []
        supertypes: list[tuple[int, ...]] = []
        finals: list[bool] = []
        explicit = False  # a rec or sub form seen
        for _ in range(self.length()):
            pos = self.pos
            count = 1
            if self.data[pos] == op.REC:
                explicit = True
                self.pos += 1
                count = self.length()
            groups.append((len(m.types), count))
            for _ in range(count):
                explicit |= self.data[self.pos] in (op.SUB, op.SUB_FINAL)
                sups, final = self._subtype()
                supertypes.append(sups)
                finals.append(final)
                m.types.append(self._comptype())  # type: ignore[arg-type]  # GC's struct and array types too
        if explicit:
            self.typed_refs = True  # validated with the precise types, canonicalised by groups
            m.rec_groups = groups
            m.supertypes = supertypes
            m.finals = finals

    def _subtype(self) -> tuple[tuple[int, ...], bool]:
        """A sub type's prefix: (declared supertypes, final); a bare composite type is final without any."""
        form = self.data[self.pos]
        if form == op.SUB or form == op.SUB_FINAL:
            self.pos += 1
            sups = tuple(self.u32() for _ in range(self.length()))
            self.gc |= bool(sups)
            return sups, form == op.SUB_FINAL
        return (), True

    def _comptype(self) -> CompositeType:
        pos = self.pos
        form = self.byte()
        if form == 0x60:
            params = tuple(self.valtype() for _ in range(self.length()))
            results = tuple(self.valtype() for _ in range(self.length()))
            return FuncType(params, results)
        if form & 0x80:
            raise MalformedError(f"integer representation too long (type form {form:#04x} is one byte)", offset=pos + 1)
        if form == op.STRUCT:
            self.gc = True
            return StructType(tuple(self._field_type() for _ in range(self.length())))
        if form == op.ARRAY:
            self.gc = True
            return ArrayType(self._field_type())
        if form == op.CONT:
            self._note_type_form(form, pos)
            read_sleb(self.data, self.pos, 33)
            _, self.pos = read_sleb(self.data, self.pos, 33)
            return _PLACEHOLDER_TYPE
        raise MalformedError(
            f"malformed definition type {form:#04x} (expected 0x60 func, 0x5f struct or 0x5e array)", offset=pos
        )

    def _note_type_form(self, form: int, pos: int) -> None:
        feature, what = op.UNSUPPORTED_TYPE_FORMS[form]
        self.note_unsupported(UnsupportedFeatureError(feature, f"{what}, type form {form:#04x}", offset=pos))

    def _field_type(self) -> FieldType:
        b = self.data[self.pos]
        if b in op.GC_PACKED_TYPES:
            self.pos += 1
            storage = b
        else:
            storage = self.valtype()
        pos = self.pos
        m = self.byte()
        if m > 1:
            raise MalformedError(f"malformed mutability {m:#04x}", offset=pos)
        return FieldType(storage, bool(m))

    def _tag_type(self) -> int:
        """A tag type: the attribute byte (0, an exception) and the type index."""
        zpos = self.pos
        if self.byte() != 0x00:
            raise MalformedError("zero byte expected (tag attribute)", offset=zpos)
        return self.u32()

    def _import(self) -> Import:
        start = self.pos
        module = self.name()
        name = self.name()
        kpos = self.pos
        kind = self.byte()
        desc: ImportDesc
        if kind == ExternKind.FUNC:
            desc = self.u32()
        elif kind == ExternKind.TABLE:
            desc = self.table_type()
        elif kind == ExternKind.MEMORY:
            desc = self.memory_type()
        elif kind == ExternKind.GLOBAL:
            desc = self.global_type()
        elif kind == ExternKind.TAG:
            desc = self._tag_type()
        else:
            raise MalformedError(f"malformed import kind {kind:#04x}", offset=kpos)
        return Import(module=module, name=name, kind=ExternKind(kind), desc=desc, offset=start)

    def _table(self) -> Table:
        start = self.pos
        if self.data[start] == 0x40:
            # Table with an explicit initialiser: 0x40 0x00 tabletype expr (function references).
            self.typed_refs = True
            self.pos += 1
            zpos = self.pos
            if self.byte() != 0x00:
                raise MalformedError("zero byte expected", offset=zpos)
            tt = self.table_type()
            return Table(type=tt, init=self.const_expr(), offset=start)
        return Table(type=self.table_type(), init=None, offset=start)

    def _global(self) -> Global:
        start = self.pos
        gt = self.global_type()
        return Global(type=gt, init=self.const_expr(), offset=start)

    def _export(self) -> Export:
        start = self.pos
        name = self.name()
        kpos = self.pos
        kind = self.byte()
        if kind > ExternKind.TAG:
            raise MalformedError(f"malformed export kind {kind:#04x}", offset=kpos)
        return Export(name=name, kind=ExternKind(kind), index=self.u32(), offset=start)

    def _elem_kind(self) -> int:
        pos = self.pos
        k = self.byte()
        if k != 0x00:
            raise MalformedError(f"malformed element kind {k:#04x}", offset=pos)
        return FUNCREF

    def _func_index_items(self) -> list[ConstExpr]:
        items = []
        for _ in range(self.length()):
            pos = self.pos
            idx = self.u32()
            items.append(ConstExpr(instrs=[(op.REF_FUNC, idx, pos), (op.END, None, self.pos)], offset=pos))
        return items

    def _elem(self) -> ElemSegment:
        start = self.pos
        flags = self.u32()
        if flags == 0:
            offset = self.const_expr()
            return ElemSegment(
                mode=ACTIVE,
                elem_type=FUNCREF,
                items=self._func_index_items(),
                func_indices=True,
                table_index=0,
                offset_expr=offset,
                offset=start,
            )
        if flags == 1:
            et = self._elem_kind()
            return ElemSegment(
                mode=PASSIVE, elem_type=et, items=self._func_index_items(), func_indices=True, offset=start
            )
        if flags == 2:
            table = self.u32()
            offset = self.const_expr()
            et = self._elem_kind()
            return ElemSegment(
                mode=ACTIVE,
                elem_type=et,
                items=self._func_index_items(),
                func_indices=True,
                table_index=table,
                offset_expr=offset,
                offset=start,
            )
        if flags == 3:
            et = self._elem_kind()
            return ElemSegment(
                mode=DECLARATIVE, elem_type=et, items=self._func_index_items(), func_indices=True, offset=start
            )
        if flags == 4:
            offset = self.const_expr()
            items = [self.const_expr() for _ in range(self.length())]
            return ElemSegment(
                mode=ACTIVE, elem_type=FUNCREF, items=items, table_index=0, offset_expr=offset, offset=start
            )
        if flags == 5:
            et = self.reftype()
            items = [self.const_expr() for _ in range(self.length())]
            return ElemSegment(mode=PASSIVE, elem_type=et, items=items, offset=start)
        if flags == 6:
            table = self.u32()
            offset = self.const_expr()
            et = self.reftype()
            items = [self.const_expr() for _ in range(self.length())]
            return ElemSegment(
                mode=ACTIVE, elem_type=et, items=items, table_index=table, offset_expr=offset, offset=start
            )
        if flags == 7:
            et = self.reftype()
            items = [self.const_expr() for _ in range(self.length())]
            return ElemSegment(mode=DECLARATIVE, elem_type=et, items=items, offset=start)
        raise MalformedError(f"malformed elements segment kind {flags}", offset=start)

    def _data(self) -> DataSegment:
        start = self.pos
        flags = self.u32()
        if flags == 0:
            offset = self.const_expr()
            n = self.length()
            content, self.pos = read_bytes(self.data, self.pos, n)
            return DataSegment(mode=ACTIVE, data=content, memory_index=0, offset_expr=offset, offset=start)
        if flags == 1:
            n = self.length()
            content, self.pos = read_bytes(self.data, self.pos, n)
            return DataSegment(mode=PASSIVE, data=content, offset=start)
        if flags == 2:
            mem = self.u32()
            offset = self.const_expr()
            n = self.length()
            content, self.pos = read_bytes(self.data, self.pos, n)
            return DataSegment(mode=ACTIVE, data=content, memory_index=mem, offset_expr=offset, offset=start)
        raise MalformedError(f"malformed data segment kind {flags}", offset=start)

    def _code(self, index: int) -> tuple:
        """One code-section entry for function ``index`` (in the function index space)."""
        data = self.data
        start = self.pos
        size = self.length()
        body_start = self.pos
        if not self.bodies:  # skipped whole, locals too (see decode_module)
            self.pos = body_start + size
            if self.pos > len(data):
                raise eof(len(data)).locate(func_index=index)
            return (), 0, [], start, body_start
        self.func_index = index
        try:
            groups_pos = self.pos
            groups = []
            total = 0
            for _ in range(self.length()):
                count = self.u32()
                t = self.valtype()
                groups.append((count, t))
                total += count
            if total >= 1 << 32:
                raise MalformedError(f"too many locals: {total} declared (at most 2**32 - 1)", offset=groups_pos)
            body, self.pos = decode_instructions(data, self.pos, self.features, self)
        except WasmError as exc:
            raise exc.locate(func_index=index) from None
        except IndexError:
            raise eof(len(data)).locate(func_index=index) from None
        finally:
            self.func_index = None
        if self.pos != body_start + size:
            raise MalformedError(
                f"section size mismatch: function body declares {size} bytes but uses {self.pos - body_start}",
                offset=body_start,
            )
        return tuple(groups), total, body, start, body_start


_PLACEHOLDER_TYPE = FuncType((), ())  # stands for an out-of-scope type; such a module is never returned


def _note(owner, exc: UnsupportedFeatureError) -> None:
    if owner is None:
        raise exc
    owner.note_unsupported(exc)


def read_valtype(data, pos: int, owner=None) -> tuple[int, int]:
    """A value type at ``pos``.  Out-of-scope types are noted on ``owner`` (or raised without one)."""
    b = data[pos]
    if b in _VALTYPES:
        return b, pos + 1
    if b in _GC_SHORT:
        if owner is not None:
            owner.gc = True
        return b, pos + 1
    if b in op.REF_TYPE_PREFIXES:  # typed function references: (ref null? ht)
        heap, new = _heaptype(data, pos + 1, owner)
        if owner is not None:
            owner.typed_refs = True
        nullable = b == op.REF_NULL_PREFIX
        if heap >= REF_CONCRETE:
            return ref_concrete(ref_type_index(heap) or 0, nullable=nullable), new
        return ref_abstract(heap, nullable=nullable), new
    if b in op.UNSUPPORTED_VALTYPES:
        feature, name = op.UNSUPPORTED_VALTYPES[b]
        _note(owner, UnsupportedFeatureError(feature, f"{name}, type {b:#04x}", offset=pos))
        return b, pos + 1
    if b & 0x80:
        raise MalformedError(
            f"integer representation too long (a value type is one byte, got {b:#04x})", offset=pos + 1
        )
    raise MalformedError(f"malformed value type {b:#04x}", offset=pos)


def _heaptype(data, pos: int, owner) -> tuple[int, int]:
    """A heap type (of ``ref.null`` or a reference type), as the nullable reference type to it: an
    abstract heap type's (func, any, none, ...) or a type index's (``(ref null $t)``)."""
    b = data[pos]
    if b == FUNCREF or b == EXTERNREF or b == EXNREF:
        return b, pos + 1
    if b in _GC_SHORT:
        if owner is not None:
            owner.gc = True
        return b, pos + 1
    v, new = read_sleb(data, pos, 33)
    if v >= 0:
        if owner is not None:
            owner.typed_refs = True
        return ref_concrete(v, nullable=True), new
    code = v + 0x80
    if code in op.UNSUPPORTED_VALTYPES and code not in (0x7B, 0x63, 0x64):
        feature, name = op.UNSUPPORTED_VALTYPES[code]
        heap = name.removesuffix("ref")
        _note(owner, UnsupportedFeatureError(feature, f"heap type {heap}, {code:#04x}", offset=pos))
        return FUNCREF, new
    raise MalformedError(f"malformed heap type {b:#04x}", offset=pos)


def _blocktype(data, pos: int, owner) -> tuple[int, int]:
    b = data[pos]
    if b == 0x40:
        return BLOCK_EMPTY, pos + 1
    if b in _VALTYPES:
        return b - 0x80, pos + 1
    if b in _GC_SHORT:
        if owner is not None:
            owner.gc = True
        return b - 0x80, pos + 1
    if b in op.REF_TYPE_PREFIXES:
        t, pos = read_valtype(data, pos, owner)
        return (t - 0x80 if t < 0x80 else -t), pos  # (see types.block_valtype)
    if b in op.UNSUPPORTED_VALTYPES:
        _, pos = read_valtype(data, pos, owner)
        return BLOCK_EMPTY, pos
    v, new = read_sleb(data, pos, 33)
    if v >= 0:
        return v, new
    raise MalformedError(f"malformed block type {b:#04x}", offset=pos)


def _memarg(data, pos: int) -> tuple[tuple[int, int, int], int]:
    fpos = pos
    flags, pos = read_u32(data, pos)
    if flags >= 0x80:
        raise MalformedError(f"malformed memop flags {flags:#x}", offset=fpos)
    mem = 0
    if flags & 0x40:
        mem, pos = read_u32(data, pos)
    offset, pos = read_u64(data, pos)
    return (mem, flags & 0x3F, offset), pos


# The decoder's dispatch on the first byte of an instruction.
_D_NONE, _D_INDEX, _D_I32, _D_MEMARG, _D_BLOCK, _D_END, _D_ELSE, _D_OTHER = range(8)


def _dispatch_table() -> list[int | None]:
    by_kind = {op.NONE: _D_NONE, op.INDEX: _D_INDEX, op.I32_CONST: _D_I32, op.MEMARG: _D_MEMARG, op.BLOCK: _D_BLOCK}
    table: list[int | None] = []
    for b in range(256):
        kind = op.IMMEDIATE_BYTE[b]
        if b == op.END:
            table.append(_D_END)
        elif b == op.ELSE:
            table.append(_D_ELSE)
        elif kind is None or kind == op.TRY_TABLE:
            table.append(None)  # prefixes, try_table, out-of-scope and illegal opcodes
        else:
            table.append(by_kind.get(kind, _D_OTHER))
    return table


_DISPATCH = _dispatch_table()


def decode_instructions(
    data: bytes, pos: int, features: Features, owner=None, *, in_body: bool = True
) -> tuple[list, int]:
    """Decode instructions from ``pos`` up to and including the ``end`` that closes the sequence.

    Returns the instruction tuples and the position after that ``end``.  In a
    function body (``in_body``) sets ``owner.uses_data_index`` when
    ``memory.init`` or ``data.drop`` is seen; out-of-scope instructions are
    noted on ``owner`` (raised at once when there is no owner).
    """
    instrs: list = []
    append = instrs.append
    dispatch = _DISPATCH
    # Open blocks: 0 = block/loop (and out-of-scope blocks), 1 = if, 2 = if after its else.
    ctl: list[int] = []
    start = pos
    try:
        while True:
            start = pos
            code = data[pos]
            pos += 1
            kind = dispatch[code]
            if kind == _D_INDEX:
                b = data[pos]
                if b < 0x80:
                    pos += 1
                    append((code, b, start))
                else:
                    v, pos = read_uleb(data, pos, 32)
                    append((code, v, start))
            elif kind == _D_NONE:
                append((code, None, start))
            elif kind == _D_I32:
                b = data[pos]
                if b < 0x40:
                    pos += 1
                    append((code, b, start))
                else:
                    v, pos = read_sleb(data, pos, 32)
                    append((code, v & _MASK32, start))
            elif kind == _D_END:
                append((code, None, start))
                if not ctl:
                    return instrs, pos
                ctl.pop()
            elif kind == _D_MEMARG:
                flags = data[pos]
                if flags < 0x40:
                    b = data[pos + 1]
                    if b < 0x80:
                        pos += 2
                        append((code, (0, flags, b), start))
                        continue
                memarg, pos = _memarg(data, pos)
                append((code, memarg, start))
            elif kind == _D_BLOCK:
                bt, pos = _blocktype(data, pos, owner)
                ctl.append(1 if code == 0x04 else 0)
                append((code, bt, start))
            elif kind == _D_ELSE:
                if not ctl or ctl[-1] != 1:
                    raise MalformedError("END opcode expected (else without a matching if)", offset=start)
                ctl[-1] = 2
                append((code, None, start))
            elif kind is None:
                pos, instr, effect = _decode_rare(data, pos, code, start, features, owner, in_body)
                if effect > 0:
                    ctl.append(0)
                elif effect < 0:
                    if not ctl:
                        raise MalformedError("END opcode expected (delegate outside a try block)", offset=start)
                    ctl.pop()
                append(instr)
            else:
                pos, instr = _decode_other(data, pos, code, op.IMMEDIATE_BYTE[code], start, owner)
                append(instr)
    except WasmError as exc:
        raise exc.locate(instr=_name_at(data, start)) from None
    except IndexError:
        raise eof(len(data)).locate(instr=_name_at(data, start)) from None


def _name_at(data, start: int) -> str | None:
    try:
        code = data[start]
        if code == op.PREFIX_FD:
            sub, _ = read_u32(data, start + 1)
            return op.NAMES.get(simd.SIMD_BASE | sub, f"0xfd {sub:#x}")
        if code == op.PREFIX_FB:
            sub, _ = read_u32(data, start + 1)
            return op.NAMES.get(gcops.GC_BASE | sub, f"0xfb {sub:#x}")
        if code in op.UNSUPPORTED_PREFIXES or code == 0xFC:
            sub, _ = read_u32(data, start + 1)
            if code == PREFIX_FE and (PREFIX_FE << 8 | sub) in ATOMICS:
                return ATOMICS[PREFIX_FE << 8 | sub].name
            if code == 0xFC and sub <= 0xFF and (0xFC00 | sub) in op.NAMES:
                return op.NAMES[0xFC00 | sub]
            if code == 0xFC and sub in op.UNSUPPORTED_FC:
                return op.UNSUPPORTED_FC[sub][1]
            return f"0x{code:02x} {sub:#x}"
    except (WasmError, IndexError):
        return None
    name = op.NAME_BYTE[code]
    if name is None and code in op.UNSUPPORTED_OPCODES:
        name = op.UNSUPPORTED_OPCODES[code][1]
    return name


def _decode_other(data, pos: int, code: int, kind: int | None, start: int, owner) -> tuple[int, tuple]:
    if kind == op.I64_CONST:
        v, pos = read_sleb(data, pos, 64)
        return pos, (code, v & _MASK64, start)
    if kind == op.F32_CONST:
        end = pos + 4
        if end > len(data):
            raise eof(len(data))
        return end, (code, int.from_bytes(data[pos:end], "little"), start)
    if kind == op.F64_CONST:
        end = pos + 8
        if end > len(data):
            raise eof(len(data))
        return end, (code, int.from_bytes(data[pos:end], "little"), start)
    if kind == op.BR_TABLE:
        n, pos = read_len(data, pos)
        targets = []
        for _ in range(n):
            t, pos = read_u32(data, pos)
            targets.append(t)
        default, pos = read_u32(data, pos)
        return pos, (code, (tuple(targets), default), start)
    if kind == op.CALL_INDIRECT:
        type_index, pos = read_u32(data, pos)
        table, pos = read_u32(data, pos)
        return pos, (code, (type_index, table), start)
    if kind == op.SELECT_T:
        n, pos = read_len(data, pos)
        types = []
        for _ in range(n):
            t, pos = read_valtype(data, pos, owner)
            types.append(t)
        return pos, (code, tuple(types), start)
    if kind == op.HEAPTYPE:
        ht, pos = _heaptype(data, pos, owner)
        return pos, (code, ht, start)
    raise AssertionError(f"immediate kind {kind} of opcode {code:#x}")  # pragma: no cover


def _skip_immediates(data, pos: int, kind: int, owner) -> int:
    """Read past the immediates of an out-of-scope instruction (checking them for malformed encodings)."""
    if kind == op.NONE:
        return pos
    if kind == op.INDEX:
        return read_u32(data, pos)[1]
    if kind == op.INDEX_INDEX:
        pos = read_u32(data, pos)[1]
        return read_u32(data, pos)[1]
    if kind == op.BLOCK:
        return _blocktype(data, pos, owner)[1]
    if kind == op.TRY_TABLE:
        pos = _blocktype(data, pos, owner)[1]
        n, pos = read_len(data, pos)
        for _ in range(n):
            cpos = pos
            clause = data[pos]
            pos += 1
            if clause > 3:
                raise MalformedError(f"malformed catch clause {clause:#04x}", offset=cpos)
            if clause < 2:
                pos = read_u32(data, pos)[1]  # tag
            pos = read_u32(data, pos)[1]  # label
        return pos
    if kind == op.LANE:
        data[pos]
        return pos + 1
    if kind == op.V128_BYTES:
        if pos + 16 > len(data):
            raise eof(len(data))
        return pos + 16
    if kind == op.MEMARG:
        return _memarg(data, pos)[1]
    if kind == op.MEMARG_LANE:
        pos = _memarg(data, pos)[1]
        data[pos]
        return pos + 1
    if kind == op.ZERO_BYTE:
        if data[pos] != 0:
            raise MalformedError("zero byte expected", offset=pos)
        return pos + 1
    raise AssertionError(f"immediate kind {kind}")  # pragma: no cover


def _decode_rare(
    data, pos: int, code: int, start: int, features: Features, owner, in_body: bool
) -> tuple[int, tuple, int]:
    """Prefixed opcodes, out-of-scope opcodes and illegal bytes: (position, instruction, block effect)."""
    if code == op.TRY_TABLE_OP:
        bt, pos = _blocktype(data, pos, owner)
        n, pos = read_len(data, pos)
        clauses = []
        for _ in range(n):
            cpos = pos
            clause = data[pos]
            pos += 1
            if clause > op.CATCH_ALL_REF:
                raise MalformedError(f"malformed catch clause {clause:#04x}", offset=cpos)
            tag = None
            if clause < op.CATCH_ALL:
                tag, pos = read_u32(data, pos)
            label, pos = read_u32(data, pos)
            clauses.append((clause, tag, label))
        return pos, (code, (bt, tuple(clauses)), start), 1
    if code == 0xFC:
        sub, pos = read_u32(data, pos)
        opcode = 0xFC00 | sub
        if sub > 0xFF or opcode not in op.IMMEDIATE:
            if sub in op.UNSUPPORTED_FC:
                feature, name = op.UNSUPPORTED_FC[sub]
                _note(owner, UnsupportedFeatureError(feature, f"opcode 0xfc {sub:#04x} {name}", offset=start))
                return pos, (opcode, None, start), 0
            raise MalformedError(f"illegal opcode fc {sub:02x}", offset=start)
        kind: int | None = op.IMMEDIATE[opcode]  # the other branches below look kinds up that may be missing
        if kind == op.NONE:
            if opcode in op.WIDE_ARITHMETIC_OPS and not features.wide_arithmetic:
                _note(
                    owner,
                    UnsupportedFeatureError(
                        op.WIDE_ARITHMETIC,
                        f"opcode 0xfc {sub:#04x} {op.NAMES[opcode]}; enable it with Features(wide_arithmetic=True)",
                        offset=start,
                    ),
                )
            return pos, (opcode, None, start), 0
        if kind == op.INDEX:
            v, pos = read_u32(data, pos)
            if opcode == op.MEMORY_DISCARD and not (features.memory_discard or features.memory_control):
                _note(
                    owner,
                    UnsupportedFeatureError(
                        op.MEMORY_CONTROL,
                        "opcode 0xfc 0x12; enable it with Features(memory_discard=True)",
                        offset=start,
                    ),
                )
            elif opcode in op.MEMORY_CONTROL_OPS and not features.memory_control:
                _note(
                    owner,
                    UnsupportedFeatureError(
                        op.MEMORY_CONTROL,
                        f"opcode 0xfc {sub:#04x} ({op.NAMES.get(opcode, '')}, hwsim's "
                        f"provisional encoding); enable it with Features(memory_control=True)",
                        offset=start,
                    ),
                )
            if opcode == op.DATA_DROP and in_body and owner is not None:
                owner.uses_data_index = True
            return pos, (opcode, v, start), 0
        # INDEX2
        x, pos = read_u32(data, pos)
        y, pos = read_u32(data, pos)
        if opcode == op.MEMORY_INIT and in_body and owner is not None:
            owner.uses_data_index = True
        return pos, (opcode, (x, y), start), 0
    if code == PREFIX_FE and features.threads:
        return _decode_atomic(data, pos, start)
    if code == op.PREFIX_FB or code == gcops.REF_EQ:
        if owner is not None:
            owner.gc = True
        if code == gcops.REF_EQ:
            return pos, (code, None, start), 0
        return _decode_gc(data, pos, start, owner, in_body)
    if code == op.PREFIX_FD:
        return _decode_simd(data, pos, start, features, owner)
    if code in op.UNSUPPORTED_PREFIXES:
        feature = op.UNSUPPORTED_PREFIXES[code]
        sub, pos = read_u32(data, pos)
        kind = op.PREFIX_IMMEDIATES[code].get(sub)
        exc = UnsupportedFeatureError(feature, f"opcode {code:#04x} {sub:#x}", offset=start)
        if kind is None:
            raise exc
        _note(owner, exc)
        return _skip_immediates(data, pos, kind, owner), (code << 8 | sub, None, start), 0
    if code in op.UNSUPPORTED_OPCODES:
        feature, name, kind, effect = op.UNSUPPORTED_OPCODES[code]
        exc = UnsupportedFeatureError(feature, f"opcode {code:#04x} {name}", offset=start)
        if kind is None:
            raise exc
        _note(owner, exc)
        return _skip_immediates(data, pos, kind, owner), (code, None, start), effect
    raise MalformedError(f"illegal opcode {code:02x}", offset=start)


# GC ------------------------------------------------------------------------------


def _decode_gc(data, pos: int, start: int, owner, in_body: bool) -> tuple[int, tuple, int]:
    """A ``0xfb`` instruction (hwsim/wasm/gcops.py gives each immediate's shape)."""
    sub, pos = read_u32(data, pos)
    entry = gcops.TABLE.get(sub)
    if entry is None:
        raise MalformedError(f"illegal opcode fb {sub:02x}", offset=start)
    kind = entry[1]
    opcode = gcops.GC_BASE | sub
    imm: object = None
    if kind == gcops.Imm.TYPE:
        imm, pos = read_u32(data, pos)
    elif kind == gcops.Imm.TYPE_FIELD:
        x, pos = read_u32(data, pos)
        y, pos = read_u32(data, pos)
        imm = (x, y)
        if (opcode == gcops.ARRAY_NEW_DATA or opcode == gcops.ARRAY_INIT_DATA) and in_body and owner is not None:
            owner.uses_data_index = True  # a data index in code needs the data count section
    elif kind == gcops.Imm.REFTYPE:
        heap, pos = _heaptype(data, pos, owner)
        nullable = opcode in (gcops.REF_TEST_NULL, gcops.REF_CAST_NULL)
        imm = heap if nullable else ref_as_non_null(heap)
    elif kind == gcops.Imm.BR_ON_CAST:
        fpos = pos
        flags = data[pos]
        if flags & 0xFC:
            raise MalformedError(f"malformed br_on_cast flags {flags:#04x}", offset=fpos)
        label, pos = read_u32(data, pos + 1)
        h1, pos = _heaptype(data, pos, owner)
        h2, pos = _heaptype(data, pos, owner)
        imm = (label, h1 if flags & 1 else ref_as_non_null(h1), h2 if flags & 2 else ref_as_non_null(h2))
    return pos, (opcode, imm, start), 0


# Threads proposal ---------------------------------------------------------------


def _decode_atomic(data, pos: int, start: int) -> tuple[int, tuple, int]:
    """An ``0xfe`` instruction (Features.threads): a memarg, or ``atomic.fence``'s reserved zero byte."""
    sub, pos = read_u32(data, pos)
    opcode = PREFIX_FE << 8 | sub
    atomic = ATOMICS.get(opcode) if sub <= 0xFF else None
    if atomic is None:
        raise MalformedError(f"illegal opcode fe {sub:02x}", offset=start)
    if atomic.kind is AtomicKind.FENCE:
        if data[pos] != 0:
            raise MalformedError(f"malformed atomic.fence: zero byte expected, got {data[pos]:#04x}", offset=pos)
        return pos + 1, (opcode, None, start), 0
    memarg, pos = _memarg(data, pos)
    return pos, (opcode, memarg, start), 0


# SIMD (0xfd prefix) ------------------------------------------------------------------------------------


def _decode_simd(data, pos: int, start: int, features: Features, owner) -> tuple[int, tuple, int]:
    """One 0xfd instruction (hwsim/wasm/simd.py): (position, instruction, block effect 0)."""
    sub, pos = read_u32(data, pos)
    opcode = simd.SIMD_BASE | sub
    kind = simd.IMMEDIATE.get(opcode)
    if kind is None:
        raise MalformedError(f"illegal opcode fd {sub:02x}", offset=start)
    if not features.simd:
        _note(
            owner,
            UnsupportedFeatureError(op.SIMD, f"opcode 0xfd {sub:#x}; enable it with Features(simd=True)", offset=start),
        )
    elif sub >= simd.RELAXED_FIRST and not features.relaxed_simd:
        _note(
            owner,
            UnsupportedFeatureError(
                op.RELAXED_SIMD,
                f"opcode 0xfd {sub:#x} {simd.NAMES[opcode]}; enable it with Features(relaxed_simd=True)",
                offset=start,
            ),
        )
    if kind == simd.NONE:
        return pos, (opcode, None, start), 0
    if kind == simd.MEMARG:
        memarg, pos = _memarg(data, pos)
        return pos, (opcode, memarg, start), 0
    if kind == simd.MEMARG_LANE:
        memarg, pos = _memarg(data, pos)
        lane = data[pos]
        return pos + 1, (opcode, (memarg, lane), start), 0
    if kind == simd.LANE:
        return pos + 1, (opcode, data[pos], start), 0
    end = pos + 16
    if end > len(data):
        raise eof(len(data))
    raw = bytes(data[pos:end])
    if opcode == simd.I8X16_SHUFFLE:
        return end, (opcode, tuple(raw), start), 0
    return end, (opcode, int.from_bytes(raw, "little"), start), 0
