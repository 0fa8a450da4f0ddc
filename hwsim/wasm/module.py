"""The decoded form of a WebAssembly module: what the decoder produces and the validator and compiler read.

Indices follow the specification: function, table, memory and global index
spaces start with the imports, in import order, followed by the module's own
definitions.  Every record keeps the byte ``offset`` where it starts in the
binary, for error messages and reports.

Function bodies and constant expressions are flat lists of instruction tuples
``(op, immediate, offset)`` (see :mod:`hwsim.wasm.opcodes` for the immediate
of each opcode), nested blocks delimited by their ``end``; a body ends with
the function's own ``end``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .types import ExternKind, FuncType, GlobalType, MemoryType, TableType

if TYPE_CHECKING:
    from .dylink import Dylink
    from .names import NameSection

Instr = tuple  # (op: int, immediate, offset: int)
ImportDesc = int | TableType | MemoryType | GlobalType  # what an import's kind says it is (a type index: FUNC, TAG)


@dataclass(frozen=True, slots=True, kw_only=True)
class Features:
    """Which optional features the decoder accepts.

    ``custom_page_sizes`` (on by default): memory types may carry a page size
    (limits flag 0x08).  The core test suite predates the proposal and expects
    flag 0x08 to be malformed, so the spec-test runner turns it off for files
    outside ``proposals/custom-page-sizes/``.

    ``memory_discard`` (off by default): ``memory.discard`` (``0xfc 0x12``
    with a memory index immediate), from the memory-control proposal.  When on,
    it is decoded and validated as ``[addr addr] -> []``, where ``addr`` is
    ``i32`` or ``i64`` after the memory's index type; when off, a module using
    it is rejected with :class:`~hwsim.wasm.errors.UnsupportedFeatureError`
    naming the flag.

    ``memory_control`` (off by default): ``memory.discard`` and hwsim's
    provisional ``memory.map``/``memory.unmap``/``memory.protect`` (``0xfc
    0xe0``-``0xe2``, a memory index immediate), see docs/memory-control.md.

    ``wide_arithmetic`` (on by default): ``i64.add128``, ``i64.sub128``,
    ``i64.mul_wide_s`` and ``i64.mul_wide_u`` (``0xfc 0x13``-``0x16``), from the
    wide-arithmetic proposal; when off, a module using them is rejected with
    :class:`~hwsim.wasm.errors.UnsupportedFeatureError`.

    ``multi_memory``, ``multi_table`` and ``memory64`` (on by default): off, the validator allows one
    memory and one table and the decoder reads limits as u32 without flag 0x04, as before those
    proposals; the threads proposal's spec tests predate them (hwsim/spectest/runner.py).

    ``threads`` (on by default, as in wasmtime): the threads proposal, shared memories (limits flags
    0x02/0x03, 0x06/0x07 for memory64) and the ``0xfe`` atomic instructions (hwsim/wasm/atomics.py);
    when off, a module using them is rejected with :class:`~hwsim.wasm.errors.UnsupportedFeatureError`.

    ``simd`` and ``relaxed_simd`` (on by default): the ``v128`` type and the
    ``0xfd`` instructions (hwsim/wasm/simd.py); relaxed SIMD is ``0xfd 0x100``
    and above.  When off, a module using them is rejected with
    :class:`~hwsim.wasm.errors.UnsupportedFeatureError` naming the flag.
    """

    custom_page_sizes: bool = True
    memory_discard: bool = False
    memory_control: bool = False  # memory.discard and hwsim's provisional memory.map/unmap/protect
    wide_arithmetic: bool = True
    threads: bool = True
    multi_memory: bool = True
    multi_table: bool = True
    memory64: bool = True
    simd: bool = True
    relaxed_simd: bool = True


DEFAULT_FEATURES = Features()


@dataclass(frozen=True, slots=True, kw_only=True)
class ConstExpr:
    """A constant expression (global initialiser, segment offset, element): its instructions, then ``end``."""

    instrs: list
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Import:
    module: str
    name: str
    kind: ExternKind
    desc: ImportDesc  # by kind: type index (FUNC), TableType, MemoryType or GlobalType
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Export:
    name: str
    kind: ExternKind
    index: int
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class FuncBody:
    """A function defined in the module (not imported).

    ``locals`` is the compressed list of ``(count, valtype)`` groups as
    declared (parameters not included); ``num_locals`` their total.
    """

    type_index: int
    locals: tuple[tuple[int, int], ...]
    num_locals: int
    body: list
    offset: int  # of the body's size field
    body_offset: int  # of the first local declaration


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    type: TableType
    init: ConstExpr | None  # None: initialised with null references
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class Global:
    type: GlobalType
    init: ConstExpr
    offset: int


ACTIVE = "active"
PASSIVE = "passive"
DECLARATIVE = "declarative"


@dataclass(frozen=True, slots=True, kw_only=True)
class ElemSegment:
    """An element segment.  ``items`` are constant expressions; the index-list encodings
    (flags 0-3) are stored as one ``ref.func`` expression per index."""

    mode: str  # ACTIVE, PASSIVE or DECLARATIVE
    elem_type: int
    # Given as function indices (flags 0-3): WebAssembly 3.0 types such a segment (ref func), which
    # the validator uses; ``elem_type`` stays funcref (the representation).
    func_indices: bool = False
    items: list[ConstExpr]
    table_index: int = 0
    offset_expr: ConstExpr | None = None
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class DataSegment:
    mode: str  # ACTIVE or PASSIVE
    data: bytes
    memory_index: int = 0
    offset_expr: ConstExpr | None = None
    offset: int


@dataclass(frozen=True, slots=True, kw_only=True)
class CustomSection:
    name: str
    data: bytes
    offset: int  # of ``data`` (the payload after the section's name)
    after: int  # id of the last non-custom section before it, 0 when none


@dataclass(eq=False, kw_only=True)
class DecodedModule:
    """A decoded module.  ``validate(module)`` checks it; nothing here has been validated."""

    # Function types, and in a GC module struct and array types too (types.CompositeType): the validator
    # and subtyping.py read those; the compiler and runtime see only lowered modules, whose are all FuncType.
    types: list[FuncType] = field(default_factory=list)
    imports: list[Import] = field(default_factory=list)
    funcs: list[FuncBody] = field(default_factory=list)
    tables: list[Table] = field(default_factory=list)
    memories: list[MemoryType] = field(default_factory=list)
    memory_offsets: list[int] = field(default_factory=list)  # where each of ``memories`` is declared
    globals: list[Global] = field(default_factory=list)
    tags: list[int] = field(default_factory=list)  # the type index of each defined tag (exception handling)
    exports: list[Export] = field(default_factory=list)
    start: int | None = None
    start_offset: int | None = None  # of the start section's function index
    elems: list[ElemSegment] = field(default_factory=list)
    datas: list[DataSegment] = field(default_factory=list)
    data_count: int | None = None
    customs: list[CustomSection] = field(default_factory=list)
    names: NameSection | None = None
    name_section_error: str | None = None  # why a present "name" section was not decoded
    dylink: Dylink | None = None
    dylink_error: str | None = None
    size: int = 0  # of the binary, in bytes
    # False: decoded with bodies=False (a code-cache hit): each FuncBody's ``locals`` and ``body`` are empty and
    # the bodies were neither decoded nor validated; compiling needs the module decoded whole.
    bodies: bool = True
    features: Features = DEFAULT_FEATURES  # the decoder's, which validation follows too
    # Typed function references: the module has a typed reference type ((ref null? $t), (ref func), ...) or a
    # table initialiser.  validate() checks it with the precise types, then lowers every reference type to
    # its run-time representation (types.ref_top) for the compiler and runtime (wasm/typedrefs.py).
    typed_refs: bool = False
    lowered: bool = False  # the lowering has been done (validate() then trusts the module's types)
    # After the lowering: the canonical types (typedrefs.py) of the type section, the global and the
    # table index spaces, which import matching and call_indirect's signature ids compare.
    precise_types: list | None = None
    precise_globals: list | None = None
    precise_tables: list | None = None
    # GC: the module uses a struct or array type, a declared supertype, a GC heap type or instruction (what
    # needs GC objects at run time).  When its type section has rec or sub forms: its recursion groups as
    # (first type index, count), and each type's declared supertypes and finality (None otherwise: each
    # type its own group, final, without supertypes).
    gc: bool = False
    # After the lowering of a module with struct or array types: each type's composite type as the runtime
    # lays it out (field types lowered; None for a function type, whose ``types`` entry is the real one,
    # while a struct or array type's is a placeholder FuncType), and each type's canonical id.
    gc_types: list | None = None
    gc_canon: list[int] | None = None
    func_subtyping: bool = False  # a function type declares a supertype: call_indirect checks subtyping
    rec_groups: list[tuple[int, int]] | None = None
    supertypes: list[tuple[int, ...]] | None = None
    finals: list[bool] | None = None

    def drop_bodies(self) -> None:
        """Forget the function bodies (once compiled): the module is then as ``decode_module(bodies=False)``
        makes it, ``bodies`` False and each FuncBody's ``locals`` and ``body`` empty.  (A 1 MB module's
        bodies are half a million instruction tuples: kept, they are memory the runtime never reads, which
        the first garbage collection after loading walks, a tenth of a second.)"""
        self.funcs = [
            FuncBody(
                type_index=f.type_index, locals=(), num_locals=0, body=[], offset=f.offset, body_offset=f.body_offset
            )
            for f in self.funcs
        ]
        self.bodies = False

    # Index spaces (imports first) -----------------------------------------

    def iter_imports(self, kind: ExternKind):
        return (imp for imp in self.imports if imp.kind == kind)

    @property
    def num_imported_funcs(self) -> int:
        return sum(1 for imp in self.imports if imp.kind == ExternKind.FUNC)

    def get_func_type_indices(self) -> list[int]:
        """The type index of every function in the function index space."""
        return [imp.desc for imp in self.iter_imports(ExternKind.FUNC)] + [f.type_index for f in self.funcs]

    def get_table_types(self) -> list[TableType]:
        return [imp.desc for imp in self.iter_imports(ExternKind.TABLE)] + [t.type for t in self.tables]

    def get_memory_types(self) -> list[MemoryType]:
        return [imp.desc for imp in self.iter_imports(ExternKind.MEMORY)] + list(self.memories)

    def get_global_types(self) -> list[GlobalType]:
        return [imp.desc for imp in self.iter_imports(ExternKind.GLOBAL)] + [g.type for g in self.globals]

    def get_tag_type_indices(self) -> list[int]:
        """The type index of every tag in the tag index space."""
        return [imp.desc for imp in self.iter_imports(ExternKind.TAG)] + list(self.tags)

    def get_func_name(self, func_index: int) -> str | None:
        """The function's name from the ``name`` section, if it has one."""
        names = self.names
        if names is None:
            return None
        return names.function_names.get(func_index)

    def get_custom_sections(self, name: str) -> list[CustomSection]:
        return [c for c in self.customs if c.name == name]
