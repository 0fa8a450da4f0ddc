"""The validator: checks a decoded module against the WebAssembly specification's validation rules.

Instruction sequences are typed with the algorithm of the specification's
appendix ("Validation Algorithm"): an operand stack of value types and a
stack of control frames; after ``unreachable``, ``br``, ``br_table``,
``return`` and the tail calls the rest of the block is stack-polymorphic,
and operands popped below the frame's height have the bottom type
``UNKNOWN``.

Module-level checks follow the order of the reference interpreter (types,
imports, functions, memories, tables, globals, data, elements, bodies,
start, exports), so that a module with several problems reports the same
first one.  Constant expressions are those of WebAssembly 3.0: constants,
``ref.null``, ``ref.func``, ``global.get`` of an earlier immutable global and
the extended-const ``add``/``sub``/``mul`` on i32 and i64.

Every error is an :class:`~hwsim.wasm.errors.InvalidError` whose reason
starts with the reference interpreter's phrase (``type mismatch``,
``unknown local 3``, ``alignment must not be larger than natural``, ...) and
which names the offset, the function and the instruction.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Sized

from . import gcops, simd
from . import opcodes as op
from .atomics import ATOMICS, AtomicKind, signature
from .errors import InvalidError
from .module import ACTIVE, ConstExpr, DecodedModule
from .subtyping import Canon, canonical_ids, composite_matches, heap_top, matches
from .typedrefs import lower_typed_refs
from .types import (
    ANYREF,
    ARRAYREF,
    BLOCK_EMPTY,
    EQREF,
    EXNREF,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I8,
    I16,
    I31REF,
    I32,
    I64,
    NUM_TYPES,
    UNKNOWN,
    V128,
    ArrayType,
    CompositeType,
    ExternKind,
    FieldType,
    FuncType,
    GlobalType,
    MemoryType,
    StructType,
    TableType,
    format_types,
    is_nullable,
    is_ref,
    ref_as_non_null,
    ref_concrete,
    ref_type_index,
    valtype_name,
)

_U32_MAX = 0xFFFFFFFF
# Implementation limit: the longest chain of declared supertypes (wasmparser's MAX_WASM_SUBTYPING_DEPTH, so
# wasmtime rejects the same modules); a cast to a concrete type walks at most this far.
MAX_SUBTYPING_DEPTH = 63
_U64_MAX = 0xFFFFFFFFFFFFFFFF

# Frame fields (a frame is a small list, for speed).  _INITS: the length of the function's log of
# initialised non-defaultable locals when the frame was entered (typed function references).
_KIND, _LABEL, _END, _HEIGHT, _UNREACH, _START, _INITS = range(7)
_FRAME_FUNC = -1  # the function body itself (a block whose label is the function's results)

_CONST_OPS = (
    frozenset(
        (
            op.I32_CONST_OP,
            op.I64_CONST_OP,
            op.F32_CONST_OP,
            op.F64_CONST_OP,
            op.REF_NULL,
            op.REF_FUNC,
            op.GLOBAL_GET,
            op.I32_ADD,
            op.I32_SUB,
            op.I32_MUL,
            op.I64_ADD,
            op.I64_SUB,
            op.I64_MUL,
            simd.V128_CONST,
            op.END,
        )
    )
    | gcops.CONST_OPS
)

# Fast-path table: opcode -> (number of params, first param, second param, result) for
# instructions with one or two operands and one result.
_FAST: dict[int, tuple[int, int, int, int]] = {}
for _code, (_params, _results) in op.SIGNATURES.items():
    if len(_results) == 1 and 1 <= len(_params) <= 2:
        _FAST[_code] = (len(_params), _params[0], _params[-1], _results[0])
del _code, _params, _results

_CONSTS = {
    op.I32_CONST_OP: I32,
    op.I64_CONST_OP: I64,
    op.F32_CONST_OP: F32,
    op.F64_CONST_OP: F64,
    simd.V128_CONST: V128,
}
_SELECTABLE = NUM_TYPES | {V128, UNKNOWN}  # untyped select: numeric and vector operands


def validate(module: DecodedModule) -> None:
    """Validate ``module``; raises :class:`~hwsim.wasm.errors.InvalidError` at the first problem.

    A module decoded without its bodies (``decode_module(bodies=False)``) is validated except for
    them: whoever skipped them vouches for them (the code cache, for a module it compiled).

    A module with typed function references (``module.typed_refs``) is checked with its precise
    reference types, then lowered for the compiler: see :mod:`hwsim.wasm.typedrefs`."""
    if module.lowered:
        return
    _ModuleValidator(module).run()
    if module.typed_refs:
        lower_typed_refs(module)


class _Context:
    """The specification's validation context C, built up as the module is checked."""

    def __init__(self, module: DecodedModule):
        self.module = module
        self.types: list[CompositeType] = module.types  # type: ignore[assignment]  # (module.py: GC's too)
        self.funcs: list[int] = []  # type index of each function
        self.tables: list[TableType] = []
        self.memories: list[MemoryType] = []
        self.globals: list[GlobalType] = []
        self.elems: list[int] = []
        self.tags: list[int] = []  # type index of each tag
        self.num_datas = len(module.datas)
        self.refs: set[int] = set()
        self._canon: Canon | None = None

    @property
    def canon(self) -> Canon:
        """The canonical id of each type (subtyping.canonical_ids), made when first compared (after the
        type section has been checked, so that every reference in it names a type)."""
        if self._canon is None:
            m = self.module
            supers = None if m.supertypes is None else [s[0] if s else None for s in m.supertypes]
            self._canon = canonical_ids(self.types, m.rec_groups, supers, m.finals)
        return self._canon


def _err(reason: str, offset: int | None = None, **where) -> InvalidError:
    return InvalidError(reason, offset=offset, **where)


def _fields(ct: CompositeType) -> tuple[FieldType, ...]:
    if isinstance(ct, StructType):
        return ct.fields
    return (ct.element,) if isinstance(ct, ArrayType) else ()


def _type_refs(ct: CompositeType) -> tuple[int, ...]:
    """The value types a composite type mentions."""
    if isinstance(ct, FuncType):
        return ct.params + ct.results
    return tuple(f.storage for f in _fields(ct))


def _defaultable(t: int) -> bool:
    return not is_ref(t) or is_nullable(t)


_NUMERIC_STORAGE = NUM_TYPES | {V128, I8, I16}


class _ModuleValidator:
    def __init__(self, module: DecodedModule):
        self.m = module
        self.c = _Context(module)

    # Types -----------------------------------------------------------------

    def func_type(self, type_index: int, offset: int) -> FuncType:
        types = self.c.types
        if type_index >= len(types):
            raise _err(f"unknown type {type_index}", offset)
        ft = types[type_index]
        if not isinstance(ft, FuncType):
            raise _err(f"type mismatch: type {type_index} is {ft}, not a function type", offset)
        return ft

    def tag_type(self, type_index: int, offset: int | None) -> int:
        """A tag's type index, checked: a function type without results (exception handling)."""
        ft = self.func_type(type_index, offset or 0)
        if ft.results:
            raise _err(f"non-empty tag result type: type {type_index} is {ft}", offset)
        return type_index

    def check_limits(self, limits, bound: int, what: str, offset: int) -> None:
        if limits.min > bound or (limits.max is not None and limits.max > bound):
            raise _err(f"{what} (min {limits.min}, max {limits.max})", offset)
        if limits.max is not None and limits.min > limits.max:
            raise _err(f"size minimum must not be greater than maximum ({limits.min} > {limits.max})", offset)

    def check_memory_type(self, mt: MemoryType, offset: int) -> None:
        log2 = mt.page_size_log2
        if log2 not in (0, 16):
            raise _err(f"invalid custom page size: {1 << log2} bytes (only 1 and 65536 are allowed)", offset)
        if log2 == 16:
            if mt.index_type == I32:
                bound, text = 0x1_0000, "65536 pages (4GiB) for i32"
            else:
                bound, text = 0x1_0000_0000_0000, "2^48 pages (256 TiB) for i64"
        else:
            if mt.index_type == I32:
                bound, text = _U32_MAX, "2^32 - 1 bytes for i32"
            else:
                bound, text = _U64_MAX, "2^64 - 1 bytes for i64"
        self.check_limits(mt.limits, bound, f"memory size must be at most {text}", offset)
        if mt.shared and mt.limits.max is None:
            raise _err("shared memory must have maximum (threads proposal)", offset)

    def check_table_type(self, tt: TableType, offset: int) -> None:
        if tt.index_type == I32:
            bound, text = _U32_MAX, "2^32-1 for i32"
        else:
            bound, text = _U64_MAX, "2^64-1 for i64"
        self.check_limits(tt.limits, bound, f"table size must be at most {text}", offset)

    # Module ----------------------------------------------------------------

    def check_valtype(self, t: int, offset: int | None, *, bound: int | None = None) -> None:
        """A concrete reference type must name a type (before ``bound``, in the type section)."""
        index = ref_type_index(t)
        if index is not None and index >= (len(self.c.types) if bound is None else bound):
            raise _err(f"unknown type {index}", offset)

    def check_types(self) -> None:
        m = self.m
        if not m.typed_refs:
            return
        self.check_type_section()
        for imp in m.imports:
            desc = imp.desc
            if isinstance(desc, TableType):
                self.check_valtype(desc.elem_type, imp.offset)
            elif isinstance(desc, GlobalType):
                self.check_valtype(desc.valtype, imp.offset)
        for table in m.tables:
            self.check_valtype(table.type.elem_type, table.offset)
            if table.init is None and not is_nullable(table.type.elem_type):
                raise _err(
                    f"type mismatch: table of non-nullable {valtype_name(table.type.elem_type)} "
                    "needs an initializer expression",
                    table.offset,
                )
        for g in m.globals:
            self.check_valtype(g.type.valtype, g.offset)
        for e in m.elems:
            self.check_valtype(e.elem_type, e.offset)

    def check_type_section(self) -> None:
        """Every reference in a type names a type of its recursion group or an earlier one; a declared
        supertype is earlier, not final and of a matching composite type (subtyping.py)."""
        m, types = self.m, self.c.types
        groups = m.rec_groups or [(i, 1) for i in range(len(types))]
        for start, count in groups:
            for k in range(start, start + count):
                for t in _type_refs(types[k]):
                    self.check_valtype(t, None, bound=start + count)
        if m.supertypes is None:
            return
        assert m.finals is not None  # the decoder sets both
        depth = [0] * len(types)
        for k, sups in enumerate(m.supertypes):
            if len(sups) > 1:
                raise _err(f"sub type {k} has {len(sups)} supertypes (at most one is allowed)")
            for j in sups:
                if j >= k:
                    raise _err(f"unknown type {j} (supertype of type {k} must be defined before it)")
                if m.finals[j]:
                    raise _err(f"sub type {k} has a final supertype {j}")
                depth[k] = depth[j] + 1
                if depth[k] > MAX_SUBTYPING_DEPTH:
                    raise _err(
                        f"sub type hierarchy too deep: type {k} is {depth[k]} supertypes down "
                        f"(implementation limit {MAX_SUBTYPING_DEPTH}, wasmparser's)"
                    )
                if not composite_matches(self.c.canon, types[k], types[j]):
                    raise _err(f"sub type {k} ({types[k]}) does not match its supertype {j} ({types[j]})")

    def run(self) -> None:
        m, c = self.m, self.c
        c.refs = self.collect_refs()
        self.check_types()
        for imp in m.imports:
            desc = imp.desc  # the decoder makes its type follow the kind
            if imp.kind == ExternKind.FUNC:
                assert isinstance(desc, int)
                self.func_type(desc, imp.offset)
                c.funcs.append(desc)
            elif imp.kind == ExternKind.TABLE:
                assert isinstance(desc, TableType)
                self.check_table_type(desc, imp.offset)
                c.tables.append(desc)
            elif imp.kind == ExternKind.MEMORY:
                assert isinstance(desc, MemoryType)
                self.check_memory_type(desc, imp.offset)
                c.memories.append(desc)
            elif imp.kind == ExternKind.TAG:
                assert isinstance(desc, int)
                c.tags.append(self.tag_type(desc, imp.offset))
            else:
                assert isinstance(desc, GlobalType)
                c.globals.append(desc)
        for tag in m.tags:
            c.tags.append(self.tag_type(tag, None))
        for f in m.funcs:
            self.func_type(f.type_index, f.offset)
            c.funcs.append(f.type_index)
        for mt, offset in zip(m.memories, m.memory_offsets):
            self.check_memory_type(mt, offset)
            c.memories.append(mt)
        for table in m.tables:
            self.check_table_type(table.type, table.offset)
            if table.init is not None:
                self.check_const(table.init, table.type.elem_type, "table initialiser")
            c.tables.append(table.type)
        for g in m.globals:
            self.check_const(g.init, g.type.valtype, "global initialiser")
            c.globals.append(g.type)
        for i, d in enumerate(m.datas):
            if d.mode == ACTIVE:
                assert d.offset_expr is not None  # the decoder reads one for every active segment
                mt = self.memory(d.memory_index, d.offset, where=f"data segment {i}")
                self.check_const(d.offset_expr, mt.index_type, f"offset of data segment {i}")
        for i, e in enumerate(m.elems):
            et = ref_as_non_null(FUNCREF) if e.func_indices else e.elem_type
            for item in e.items:
                self.check_const(item, et, f"element segment {i}")
            if e.mode == ACTIVE:
                tt = self.table(e.table_index, e.offset, where=f"element segment {i}")
                if not matches(c.canon, et, tt.elem_type):
                    raise _err(
                        f"type mismatch: element segment {i} has type {valtype_name(et)} "
                        f"but table {e.table_index} holds {valtype_name(tt.elem_type)}",
                        e.offset,
                    )
                assert e.offset_expr is not None  # the decoder reads one for every active segment
                self.check_const(e.offset_expr, tt.index_type, f"offset of element segment {i}")
            c.elems.append(et)
        if not m.features.multi_memory and len(c.memories) > 1:
            raise _err(
                f"multiple memories: {len(c.memories)} (the multi-memory proposal is off)",
                m.memory_offsets[-1] if m.memory_offsets else None,
            )
        if not m.features.multi_table and len(c.tables) > 1:
            raise _err(
                f"multiple tables: {len(c.tables)} (reference types' multiple tables are off)",
                m.tables[-1].offset if m.tables else None,
            )
        base = m.num_imported_funcs
        for i, f in enumerate(m.funcs if m.bodies else ()):
            _FuncChecker(self, base + i).check_func(f)
        if m.start is not None:
            if m.start >= len(c.funcs):
                raise _err(f"unknown function {m.start} (the start function)", m.start_offset)
            ft = self.func_type(c.funcs[m.start], m.start_offset or 0)
            if ft.params or ft.results:
                raise _err(
                    f"start function must not have parameters or results; function {m.start} has type {ft}",
                    m.start_offset,
                )
        seen: set[str] = set()
        spaces: dict[ExternKind, tuple[Sized, str]] = {
            ExternKind.FUNC: (c.funcs, "function"),
            ExternKind.TABLE: (c.tables, "table"),
            ExternKind.MEMORY: (c.memories, "memory"),
            ExternKind.GLOBAL: (c.globals, "global"),
            ExternKind.TAG: (c.tags, "tag"),
        }
        for ex in m.exports:
            space, what = spaces[ex.kind]
            if ex.index >= len(space):
                raise _err(f'unknown {what} {ex.index} (exported as "{ex.name}")', ex.offset)
        for ex in m.exports:
            if ex.name in seen:
                raise _err(f'duplicate export name "{ex.name}"', ex.offset)
            seen.add(ex.name)

    def collect_refs(self) -> set[int]:
        """Functions referenced outside function bodies: the only ones ``ref.func`` may name in a body."""
        m = self.m
        refs = {ex.index for ex in m.exports if ex.kind == ExternKind.FUNC}
        exprs: list[ConstExpr] = [g.init for g in m.globals]
        exprs += [t.init for t in m.tables if t.init is not None]
        for e in m.elems:
            exprs += e.items
            if e.offset_expr is not None:
                exprs.append(e.offset_expr)
        exprs += [d.offset_expr for d in m.datas if d.offset_expr is not None]
        for expr in exprs:
            for code, imm, _ in expr.instrs:
                if code == op.REF_FUNC:
                    refs.add(imm)
        return refs

    def memory(self, index: int, offset, *, where: str = "") -> MemoryType:
        if index >= len(self.c.memories):
            raise _err(f"unknown memory {index}" + (f" ({where})" if where else ""), offset)
        return self.c.memories[index]

    def table(self, index: int, offset, *, where: str = "") -> TableType:
        if index >= len(self.c.tables):
            raise _err(f"unknown table {index}" + (f" ({where})" if where else ""), offset)
        return self.c.tables[index]

    def check_const(self, expr: ConstExpr, t: int, what: str) -> None:
        globals_ = self.c.globals
        for code, imm, off in expr.instrs:
            if code not in _CONST_OPS:
                raise _err(
                    f"constant expression required: {op.opcode_name(code)} is not allowed in the {what}",
                    off,
                    instr=op.opcode_name(code),
                )
            if code == op.GLOBAL_GET:
                if imm >= len(globals_):
                    raise _err(f"unknown global {imm}", off, instr="global.get")
                if globals_[imm].mutable:
                    raise _err(
                        f"constant expression required: global {imm} is mutable ({what})", off, instr="global.get"
                    )
        _FuncChecker(self, None).check_expr(expr, t, what)


class _LocalTypes:
    """Local types of a function, looked up without expanding huge declarations."""

    __slots__ = ("starts", "types", "total")

    def __init__(self, params: tuple[int, ...], groups: tuple[tuple[int, int], ...]):
        self.starts: list[int] = []
        self.types: list[int] = []
        pos = 0
        for t in params:
            self.starts.append(pos)
            self.types.append(t)
            pos += 1
        for count, t in groups:
            if count:
                self.starts.append(pos)
                self.types.append(t)
                pos += count
        self.total = pos

    def __getitem__(self, index: int) -> int:
        if index >= self.total:
            raise IndexError(index)
        return self.types[bisect_right(self.starts, index) - 1]

    def __len__(self) -> int:
        return self.total


class _FuncChecker:
    """Types one function body (or one constant expression)."""

    def __init__(self, mv: _ModuleValidator, func_index: int | None):
        self.mv = mv
        self.c = mv.c
        self.func_index = func_index
        self.func_name = mv.m.get_func_name(func_index) if func_index is not None else None
        self.vals: list[int] = []
        self.ctrls: list[list] = []
        self.results: tuple[int, ...] = ()
        self.code: int | None = None  # the instruction being typed, for messages
        # Local initialisation (typed function references): the non-defaultable locals not set yet, and
        # the log of those set, in order, which each block's end rolls back to its entry.
        self.uninit: set[int] = set()
        self.init_log: list[int] = []

    # Errors ----------------------------------------------------------------

    def error(self, reason: str) -> InvalidError:
        """An error at the current instruction; ``run`` adds its offset and name."""
        return InvalidError(reason, func_index=self.func_index, func_name=self.func_name)

    def instr_name(self) -> str:
        """The instruction being typed, by name (``run`` sets it before any check that can fail)."""
        assert self.code is not None
        return op.opcode_name(self.code)

    def mismatch(self, expected, what: str | None = None) -> InvalidError:
        frame = self.ctrls[-1]
        avail = self.vals[frame[_HEIGHT] :]
        shown = avail[-len(expected) :] if expected else avail
        prefix = "..." if len(avail) > len(shown) else ""
        desc = what or self.instr_name()
        stack = "[" + prefix + format_types(shown)[1:]
        if frame[_UNREACH] and len(avail) < len(expected):
            stack += " (unreachable code: missing operands are of any type)"
        return self.error(f"type mismatch: {desc} expects {format_types(expected)} but the stack has {stack}")

    # Operand stack -----------------------------------------------------------

    def pop(self, expected: int) -> int:
        vals = self.vals
        frame = self.ctrls[-1]
        if len(vals) == frame[_HEIGHT]:
            if frame[_UNREACH]:
                return UNKNOWN
            raise self.mismatch((expected,))
        actual = vals[-1]
        if actual != expected and actual != UNKNOWN and expected != UNKNOWN:
            if not matches(self.c.canon, actual, expected):
                raise self.mismatch((expected,))
        vals.pop()
        return actual

    def pop_any(self) -> int:
        vals = self.vals
        frame = self.ctrls[-1]
        if len(vals) == frame[_HEIGHT]:
            if frame[_UNREACH]:
                return UNKNOWN
            raise self.error(f"type mismatch: {self.instr_name()} expects an operand but the stack is empty")
        return vals.pop()

    def pop_vals(self, expected, what: str | None = None) -> list[int]:
        """Pop ``expected`` (last on top); the whole sequence must match or the error names all of it."""
        vals = self.vals
        frame = self.ctrls[-1]
        n = len(expected)
        if n == 0:
            return []
        height = frame[_HEIGHT]
        avail = len(vals) - height
        if avail >= n:
            top = vals[-n:]
            if top == list(expected):
                del vals[-n:]
                return top
        elif not frame[_UNREACH]:
            raise self.mismatch(expected, what)
        popped = []
        for t in reversed(expected):
            if len(vals) == height:
                popped.append(UNKNOWN)
                continue
            actual = vals[-1]
            if actual != t and actual != UNKNOWN and not matches(self.c.canon, actual, t):
                vals.extend(reversed(popped))  # the message shows the operands as they were
                raise self.mismatch(expected, what)
            popped.append(vals.pop())
        popped.reverse()
        return popped

    def push_ctrl(self, kind: int, start: tuple, end: tuple) -> None:
        label = start if kind == op.LOOP else end
        self.ctrls.append([kind, label, end, len(self.vals), False, start, len(self.init_log)])
        self.vals.extend(start)

    def pop_ctrl(self) -> list:
        frame = self.ctrls[-1]
        end = frame[_END]
        vals = self.vals
        height = frame[_HEIGHT]
        if len(vals) - height == len(end) and (not end or vals[-len(end) :] == list(end)):
            del vals[height:]  # exactly the results (the common case: no message made)
        else:
            what = "the end of the " + ("function" if frame[_KIND] == _FRAME_FUNC else op.opcode_name(frame[_KIND]))
            self.pop_vals(end, what)
            if len(vals) != height:
                extra = vals[height:]
                raise self.error(
                    f"type mismatch: {what} expects {format_types(end)} but the stack has "
                    f"{format_types(extra + list(end))}"
                )
        self.ctrls.pop()
        log = self.init_log
        if len(log) > frame[_INITS]:  # locals set inside the block are unset again after it
            self.uninit.update(log[frame[_INITS] :])
            del log[frame[_INITS] :]
        return frame

    def set_unreachable(self) -> None:
        frame = self.ctrls[-1]
        del self.vals[frame[_HEIGHT] :]
        frame[_UNREACH] = True

    def label(self, depth: int) -> list:
        if depth >= len(self.ctrls):
            raise self.error(f"unknown label {depth} (only {len(self.ctrls)} enclosing blocks)")
        return self.ctrls[-1 - depth]

    # Lookups -----------------------------------------------------------------

    def func_type_of(self, type_index: int) -> FuncType:
        ft = self.type_of(type_index)
        if not isinstance(ft, FuncType):
            raise self.error(f"type mismatch: type {type_index} is {ft}, not a function type")
        return ft

    def type_of(self, type_index: int) -> CompositeType:
        types = self.c.types
        if type_index >= len(types):
            raise self.error(f"unknown type {type_index}")
        return types[type_index]

    def func(self, index: int) -> FuncType:
        funcs = self.c.funcs
        if index >= len(funcs):
            raise self.error(f"unknown function {index}")
        return self.c.types[funcs[index]]  # type: ignore[return-value]  # checked a FuncType (func_type)

    def memory(self, index: int) -> MemoryType:
        mems = self.c.memories
        if index >= len(mems):
            raise self.error(f"unknown memory {index}")
        return mems[index]

    def table(self, index: int) -> TableType:
        tables = self.c.tables
        if index >= len(tables):
            raise self.error(f"unknown table {index}")
        return tables[index]

    def global_(self, index: int) -> GlobalType:
        globals_ = self.c.globals
        if index >= len(globals_):
            raise self.error(f"unknown global {index}")
        return globals_[index]

    def elem(self, index: int) -> int:
        elems = self.c.elems
        if index >= len(elems):
            raise self.error(f"unknown elem segment {index}")
        return elems[index]

    def data(self, index: int) -> None:
        if index >= self.c.num_datas:
            raise self.error(f"unknown data segment {index}")

    def tag(self, index: int) -> FuncType:
        if index >= len(self.c.tags):
            raise self.error(f"unknown tag {index}")
        return self.c.types[self.c.tags[index]]  # type: ignore[return-value]  # checked a FuncType (tag_type)

    def block_type(self, bt: int) -> tuple[tuple, tuple]:
        if bt >= 0:
            ft = self.func_type_of(bt)
            return ft.params, ft.results
        if bt == BLOCK_EMPTY:
            return (), ()
        if bt < -0x80:  # a typed reference type (types.block_valtype)
            self.check_type_index(-bt)
            return (), (-bt,)
        return (), (bt + 0x80,)

    def check_type_index(self, t: int) -> None:
        index = ref_type_index(t)
        if index is not None and index >= len(self.c.types):
            raise self.error(f"unknown type {index}")

    # Entry points --------------------------------------------------------------

    def check_func(self, f) -> None:
        ft = self.c.types[f.type_index]
        self.results = ft.results
        locals_: list[int] | _LocalTypes
        if f.num_locals <= 65536:
            locals_ = list(ft.params)
            for count, t in f.locals:
                locals_.extend([t] * count)
        else:
            locals_ = _LocalTypes(ft.params, f.locals)
        if self.mv.m.typed_refs:
            index = len(ft.params)
            for count, t in f.locals:
                try:
                    self.check_type_index(t)
                except InvalidError as exc:
                    exc.offset = f.body_offset
                    exc.args = (exc._compose(),)
                    raise
                if is_ref(t) and not is_nullable(t):
                    self.uninit.update(range(index, index + count))
                index += count
        self.ctrls = [[_FRAME_FUNC, ft.results, ft.results, 0, False, (), 0]]
        self.run(f.body, locals_)

    def check_expr(self, expr: ConstExpr, t: int, what: str) -> None:
        self.results = (t,)
        self.ctrls = [[_FRAME_FUNC, (t,), (t,), 0, False, (), 0]]
        try:
            self.run(expr.instrs, [])
        except InvalidError as exc:
            if exc.reason.startswith("type mismatch: the end of the function"):
                exc.reason = exc.reason.replace("the end of the function", f"the {what}", 1)
                exc.args = (exc._compose(),)
            raise

    # The loop ------------------------------------------------------------------

    def run(self, instrs: list, locals_) -> None:
        """Type ``instrs``; the hot loop.

        The most frequent instructions are typed inline, in order of frequency
        in compiled C; the rest go through methods.  ``self.code`` (the
        instruction named in messages) is set only on paths that can fail, and
        the offset is added to the error on its way out.
        """
        vals = self.vals
        ctrls = self.ctrls
        fast_get = _FAST.get
        consts = _CONSTS
        LOCAL_GET, LOCAL_SET, LOCAL_TEE, END, BR_IF = op.LOCAL_GET, op.LOCAL_SET, op.LOCAL_TEE, op.END, op.BR_IF
        BLOCK, LOOP, IF = op.BLOCK_OP, op.LOOP, op.IF
        height = ctrls[-1][_HEIGHT]
        uninit = self.uninit
        last = len(instrs) - 1
        index = -1
        code = off = None
        try:
            for index, (code, imm, off) in enumerate(instrs):  # noqa: B007 (off is reported after the loop)
                if code == LOCAL_GET:
                    try:
                        vals.append(locals_[imm])
                    except IndexError:
                        self.code = code
                        raise self.error(f"unknown local {imm}") from None
                    if uninit and imm in uninit:
                        self.code = code
                        raise self.error(f"uninitialized local {imm}: local.get before any local.set of it")
                    continue
                sig = fast_get(code)
                if sig is not None:
                    n, p0, p1, res = sig
                    if n == 2:
                        if len(vals) - height >= 2 and vals[-1] == p1 and vals[-2] == p0:
                            del vals[-1]
                            vals[-1] = res
                            continue
                    elif len(vals) > height and vals[-1] == p0:
                        vals[-1] = res
                        continue
                    self.code = code
                    self.pop_vals((p0, p1) if n == 2 else (p0,))
                    vals.append(res)
                    continue
                t = consts.get(code)
                if t is not None:
                    vals.append(t)
                    continue
                self.code = code
                if code == LOCAL_SET or code == LOCAL_TEE:
                    try:
                        t = locals_[imm]
                    except IndexError:
                        raise self.error(f"unknown local {imm}") from None
                    if uninit and imm in uninit:
                        uninit.discard(imm)
                        self.init_log.append(imm)
                    if len(vals) > height and vals[-1] == t:
                        if code == LOCAL_SET:
                            vals.pop()
                    else:
                        self.pop(t)
                        if code == LOCAL_TEE:
                            vals.append(t)
                    continue
                if code == END:
                    frame = self.pop_ctrl()
                    if frame[_KIND] == IF and frame[_START] != frame[_END]:
                        raise self.error(
                            f"type mismatch: if without else must leave its parameters "
                            f"{format_types(frame[_START])} as its results {format_types(frame[_END])}"
                        )
                    if not ctrls:
                        if index != last:  # pragma: no cover - the decoder stops at the final end
                            raise self.error("instructions after the final end")
                        return
                    vals.extend(frame[_END])
                elif code == BR_IF:
                    label = self.label(imm)[_LABEL]
                    if len(vals) > height and vals[-1] == I32:  # (self.pop(I32), without the call)
                        vals.pop()
                    else:
                        self.pop(I32)
                    if not label or (len(label) == 1 and len(vals) > height and vals[-1] == label[0]):
                        continue
                    self.pop_vals(label)
                    vals.extend(label)
                    continue
                elif code == BLOCK or code == LOOP or code == IF:
                    start, end = self.block_type(imm)
                    if code == IF:
                        self.pop(I32)
                    self.pop_vals(start)
                    self.push_ctrl(code, start, end)
                elif code in op.LOADS:
                    _, t, size_log2 = op.LOADS[code]
                    addr = self.memarg(imm, size_log2)
                    self.pop(addr)
                    vals.append(t)
                    continue
                elif code in op.STORES:
                    _, t, size_log2 = op.STORES[code]
                    addr = self.memarg(imm, size_log2)
                    self.pop(t)
                    self.pop(addr)
                    continue
                else:
                    self.other(code, imm)
                height = ctrls[-1][_HEIGHT]
        except InvalidError as exc:
            if exc.offset is None:
                exc.offset = off
                exc.instr = op.opcode_name(code) if code is not None else None
                exc.args = (exc._compose(),)
            raise
        # The decoder guarantees a final end; a hand-built body may lack it.
        self.code = None
        raise self.error("END opcode expected at the end of the body")

    def other(self, code: int, imm) -> None:
        """Every instruction the hot loop does not type inline."""
        vals = self.vals
        if code == op.GLOBAL_GET:
            vals.append(self.global_(imm).valtype)
        elif code == op.GLOBAL_SET:
            gt = self.global_(imm)
            if not gt.mutable:
                raise self.error(f"immutable global {imm} cannot be set (global.set)")
            self.pop(gt.valtype)
        elif code == op.ELSE:
            frame = self.pop_ctrl()
            self.push_ctrl(op.ELSE, frame[_START], frame[_END])
        elif code == op.BR:
            self.pop_vals(self.label(imm)[_LABEL])
            self.set_unreachable()
        elif code == op.CALL:
            ft = self.func(imm)
            self.pop_vals(ft.params)
            vals.extend(ft.results)
        elif code == op.DROP:
            self.pop_any()
        elif code == op.SELECT:
            self.pop(I32)
            t1 = self.pop_any()
            t2 = self.pop_any()
            if t1 not in _SELECTABLE or t2 not in _SELECTABLE:
                bad = t1 if t1 not in _SELECTABLE else t2
                raise self.error(
                    f"type mismatch: select without a type annotation needs numeric operands, not {valtype_name(bad)}"
                )
            if t1 != t2 and t1 != UNKNOWN and t2 != UNKNOWN:
                raise self.error(f"type mismatch: select operands differ: {valtype_name(t2)} and {valtype_name(t1)}")
            vals.append(t2 if t1 == UNKNOWN else t1)
        elif code == op.UNREACHABLE:
            self.set_unreachable()
        elif code == op.RETURN:
            self.pop_vals(self.results)
            self.set_unreachable()
        elif code == op.NOP:
            pass
        elif code == op.BR_TABLE_OP:
            targets, default = imm
            default_label = self.label(default)[_LABEL]
            labels = [self.label(depth)[_LABEL] for depth in targets]
            self.pop(I32)
            arity = len(default_label)
            for depth, label in zip(targets, labels):
                if len(label) != arity:
                    raise self.error(
                        f"type mismatch: br_table target {depth} expects {format_types(label)} "
                        f"but the default target {default} expects {format_types(default_label)}"
                    )
                vals.extend(self.pop_vals(label))
            self.pop_vals(default_label)
            self.set_unreachable()
        else:
            self.other_rare(code, imm)

    def memarg(self, imm: tuple, size_log2: int) -> int:
        mem, align, offset = imm
        mt = self.memory(mem)
        if align > size_log2:
            raise self.error(f"alignment must not be larger than natural: 2**{align} > {1 << size_log2} bytes")
        if mt.index_type == I32 and offset > _U32_MAX:
            raise self.error(f"offset out of range: {offset:#x} does not fit a 32-bit memory's address")
        return mt.index_type

    def other_rare(self, code: int, imm) -> None:
        vals = self.vals
        if code == op.CALL_INDIRECT_OP or code == op.RETURN_CALL_INDIRECT:
            type_index, table_index = imm
            tt = self.table(table_index)
            ft = self.func_type_of(type_index)
            if not matches(self.c.canon, tt.elem_type, FUNCREF):
                raise self.error(
                    f"type mismatch: {op.opcode_name(code)} needs a funcref table but table "
                    f"{table_index} holds {valtype_name(tt.elem_type)}"
                )
            if code == op.RETURN_CALL_INDIRECT:
                self.check_tail_results(ft)
            self.pop(tt.index_type)
            self.pop_vals(ft.params)
            if code == op.RETURN_CALL_INDIRECT:
                self.set_unreachable()
            else:
                vals.extend(ft.results)
        elif code == op.RETURN_CALL:
            ft = self.func(imm)
            self.check_tail_results(ft)
            self.pop_vals(ft.params)
            self.set_unreachable()
        elif code == op.CALL_REF or code == op.RETURN_CALL_REF:
            ft = self.func_type_of(imm)
            if code == op.RETURN_CALL_REF:
                self.check_tail_results(ft)
            self.pop(ref_concrete(imm, nullable=True))
            self.pop_vals(ft.params)
            if code == op.RETURN_CALL_REF:
                self.set_unreachable()
            else:
                vals.extend(ft.results)
        elif code == op.REF_AS_NON_NULL:
            t = self.pop_ref()
            vals.append(ref_as_non_null(t))
        elif code == op.BR_ON_NULL:
            label = self.label(imm)[_LABEL]
            t = self.pop_ref()
            self.pop_vals(label)
            vals.extend(label)
            vals.append(ref_as_non_null(t))
        elif code == op.BR_ON_NON_NULL:
            label = self.label(imm)[_LABEL]
            if not label or not is_ref(label[-1]):
                raise self.error(
                    f"type mismatch: br_on_non_null's label {imm} expects {format_types(label)}, "
                    "which does not end with a reference"
                )
            t = self.pop_ref()
            if t != UNKNOWN and not matches(self.c.canon, ref_as_non_null(t), label[-1]):
                raise self.error(
                    f"type mismatch: br_on_non_null's label {imm} expects {valtype_name(label[-1])} "
                    f"but the operand is {valtype_name(t)}"
                )
            self.pop_vals(label[:-1])
            vals.extend(label[:-1])
        elif code == op.SELECT_TYPED:
            if len(imm) != 1:
                raise self.error(f"invalid result arity: select takes exactly one type, not {len(imm)}")
            t = imm[0]
            self.check_type_index(t)
            self.pop(I32)
            self.pop(t)
            self.pop(t)
            vals.append(t)
        elif code == op.MEMORY_SIZE:
            vals.append(self.memory(imm).index_type)
        elif code == op.MEMORY_GROW:
            at = self.memory(imm).index_type
            self.pop(at)
            vals.append(at)
        elif code == op.MEMORY_FILL:
            at = self.memory(imm).index_type
            self.pop_vals((at, I32, at))
        elif code == op.MEMORY_COPY:
            dst, src = imm
            at1 = self.memory(dst).index_type
            at2 = self.memory(src).index_type
            self.pop_vals((at1, at2, I32 if I32 in (at1, at2) else I64))
        elif code == op.MEMORY_INIT:
            data_index, mem = imm
            at = self.memory(mem).index_type
            self.data(data_index)
            self.pop_vals((at, I32, I32))
        elif code == op.DATA_DROP:
            self.data(imm)
        elif code in (op.MEMORY_DISCARD, op.MEMORY_UNMAP):
            at = self.memory(imm).index_type
            self.pop_vals((at, at))
        elif code == op.MEMORY_PROTECT:
            at = self.memory(imm).index_type
            self.pop_vals((at, at, I32))
        elif code == op.MEMORY_MAP:
            at = self.memory(imm).index_type
            self.pop_vals((at, at, I32))
            vals.append(at)
        elif code == op.TABLE_GET:
            tt = self.table(imm)
            self.pop(tt.index_type)
            vals.append(tt.elem_type)
        elif code == op.TABLE_SET:
            tt = self.table(imm)
            self.pop_vals((tt.index_type, tt.elem_type))
        elif code == op.TABLE_SIZE:
            vals.append(self.table(imm).index_type)
        elif code == op.TABLE_GROW:
            tt = self.table(imm)
            self.pop_vals((tt.elem_type, tt.index_type))
            vals.append(tt.index_type)
        elif code == op.TABLE_FILL:
            tt = self.table(imm)
            self.pop_vals((tt.index_type, tt.elem_type, tt.index_type))
        elif code == op.TABLE_COPY:
            dst, src = imm
            t1 = self.table(dst)
            t2 = self.table(src)
            if not matches(self.c.canon, t2.elem_type, t1.elem_type):
                raise self.error(
                    f"type mismatch: table.copy from table {src} ({valtype_name(t2.elem_type)}) "
                    f"to table {dst} ({valtype_name(t1.elem_type)})"
                )
            at1, at2 = t1.index_type, t2.index_type
            self.pop_vals((at1, at2, I32 if I32 in (at1, at2) else I64))
        elif code == op.TABLE_INIT:
            elem_index, table_index = imm
            tt = self.table(table_index)
            et = self.elem(elem_index)
            if not matches(self.c.canon, et, tt.elem_type):
                raise self.error(
                    f"type mismatch: element segment {elem_index} ({valtype_name(et)}) into table "
                    f"{table_index} ({valtype_name(tt.elem_type)})"
                )
            self.pop_vals((tt.index_type, I32, I32))
        elif code == op.ELEM_DROP:
            self.elem(imm)
        elif code == op.REF_NULL:
            self.check_type_index(imm)
            vals.append(imm)
        elif code == op.THROW:
            params = self.tag(imm).params
            try:
                self.pop_vals(params)
            except InvalidError:  # in the reference interpreter's words (throw.wast checks them)
                frame = self.ctrls[-1]
                shown = self.vals[max(frame[_HEIGHT], len(self.vals) - len(params)) :]
                raise self.error(
                    f"type mismatch: instruction requires {format_types(params)} but stack has {format_types(shown)}"
                ) from None
            self.set_unreachable()
        elif code == op.THROW_REF:
            self.pop(EXNREF)
            self.set_unreachable()
        elif code == op.TRY_TABLE_OP:
            bt, clauses = imm
            start, end = self.block_type(bt)
            for clause, tag, label in clauses:
                carried = list(self.tag(tag).params) if tag is not None else []
                if clause == op.CATCH_REF or clause == op.CATCH_ALL_REF:
                    carried.append(ref_as_non_null(EXNREF))  # (ref exn): never null
                expected = list(self.label(label)[_LABEL])
                if len(carried) != len(expected) or not all(
                    matches(self.c.canon, a, b) for a, b in zip(carried, expected)
                ):
                    raise self.error(
                        f"type mismatch: {op.CATCH_NAMES[clause]} to label {label} carries {format_types(carried)} "
                        f"but the label expects {format_types(expected)}"
                    )
            self.pop_vals(start)
            self.push_ctrl(code, start, end)
        elif code == op.REF_IS_NULL:
            self.pop_ref()
            vals.append(I32)
        elif code == op.REF_FUNC:
            self.func(imm)
            if imm not in self.c.refs:
                raise self.error(
                    f"undeclared function reference {imm}: ref.func in a function body may only name "
                    f"functions referenced outside function bodies (elements, exports, globals)"
                )
            vals.append(ref_concrete(self.c.funcs[imm], nullable=False))
        elif code in op.WIDE_ARITHMETIC_OPS:
            params, results = op.SIGNATURES[code]
            self.pop_vals(params)
            vals.extend(results)
        elif gcops.GC_BASE <= code < gcops.GC_BASE + 0x100 or code == gcops.REF_EQ:
            self.gc(code, imm)
        elif code in ATOMICS:
            self.atomic(code, imm)
        elif code in simd.SIGNATURES:
            self.simd(code, imm)
        else:  # pragma: no cover - the decoder produces no other opcodes
            raise self.error(f"unknown instruction {op.opcode_name(code)}")

    def atomic(self, code: int, imm) -> None:
        """A threads-proposal instruction: its memarg's alignment must be exactly natural."""
        a = ATOMICS[code]
        addr = I32
        if a.kind is not AtomicKind.FENCE:
            mem, align, _ = imm
            addr = self.memarg(imm, a.size_log2)
            if align != a.size_log2:
                raise self.error(
                    f"atomic alignment must be natural: 2**{align} is not {a.size} bytes ({a.name}, memory {mem})"
                )
        params, results = signature(a, addr)
        self.pop_vals(params)
        self.vals.extend(results)

    def simd(self, code: int, imm) -> None:
        """A 0xfd instruction: memarg alignment, lane indices and shuffle lanes, then its signature."""
        params, results = simd.SIGNATURES[code]
        lanes = simd.LANES.get(code)
        if code in simd.ACCESS_LOG2:
            memarg, lane = imm if lanes is not None else (imm, None)
            addr = self.memarg(memarg, simd.ACCESS_LOG2[code])
            params = tuple(addr if t == simd.ADDRESS else t for t in params)
        else:
            lane = imm if lanes is not None else None
        if lanes is not None and lane is not None and lane >= lanes:
            raise self.error(f"invalid lane index: {lane} (the shape has {lanes} lanes)")
        if code == simd.I8X16_SHUFFLE:
            for index in imm:
                if index >= 32:
                    raise self.error(f"invalid lane index: shuffle lane {index} (two vectors have 32 lanes)")
        self.pop_vals(params)
        self.vals.extend(results)

    # GC --------------------------------------------------------------------------

    def struct_type(self, x: int) -> StructType:
        st = self.type_of(x)
        if not isinstance(st, StructType):
            raise self.error(f"type mismatch: type {x} is {st}, not a struct type")
        return st

    def array_type(self, x: int) -> ArrayType:
        at = self.type_of(x)
        if not isinstance(at, ArrayType):
            raise self.error(f"type mismatch: type {x} is {at}, not an array type")
        return at

    def field(self, x: int, y: int) -> FieldType:
        fields = self.struct_type(x).fields
        if y >= len(fields):
            raise self.error(f"unknown field {y} (type {x} has {len(fields)} fields)")
        return fields[y]

    def check_packing(self, code: int, ft: FieldType, what: str) -> None:
        """get on a packed field must say _s or _u; get_s and get_u need a packed field."""
        packed = ft.storage in (I8, I16)
        signed = code in (gcops.STRUCT_GET_S, gcops.STRUCT_GET_U, gcops.ARRAY_GET_S, gcops.ARRAY_GET_U)
        if packed and not signed:
            raise self.error(f"type mismatch: {what} is packed ({valtype_name(ft.storage)}): use get_s or get_u")
        if signed and not packed:
            raise self.error(f"type mismatch: {what} is not packed ({valtype_name(ft.storage)}): use get")

    def mutable_array(self, x: int) -> ArrayType:
        at = self.array_type(x)
        if not at.element.mutable:
            raise self.error(f"immutable array: type {x} is {at}")
        return at

    def check_cast_operand(self, rt: int) -> int:
        """ref.test, ref.cast: the operand is any reference of ``rt``'s hierarchy."""
        self.check_type_index(rt)
        t = self.pop_ref()
        if t != UNKNOWN and heap_top(self.c.canon, t) != heap_top(self.c.canon, rt):
            raise self.error(
                f"type mismatch: {self.instr_name()} to {valtype_name(rt)} of an operand of type {valtype_name(t)}"
            )
        return t

    def gc(self, code: int, imm) -> None:
        """A GC instruction (hwsim/wasm/gcops.py)."""
        vals = self.vals
        G = gcops
        if code == G.REF_EQ:
            self.pop_vals((EQREF, EQREF))
            vals.append(I32)
        elif code == G.STRUCT_NEW or code == G.STRUCT_NEW_DEFAULT:
            st = self.struct_type(imm)
            if code == G.STRUCT_NEW:
                self.pop_vals(tuple(f.unpacked() for f in st.fields))
            else:
                for i, f in enumerate(st.fields):
                    if not _defaultable(f.storage):
                        raise self.error(
                            f"type mismatch: field {i} of type {imm} is {valtype_name(f.storage)}, which has no default"
                        )
            vals.append(ref_concrete(imm, nullable=False))
        elif code in (G.STRUCT_GET, G.STRUCT_GET_S, G.STRUCT_GET_U):
            x, y = imm
            ft = self.field(x, y)
            self.check_packing(code, ft, f"field {y} of type {x}")
            self.pop(ref_concrete(x, nullable=True))
            vals.append(ft.unpacked())
        elif code == G.STRUCT_SET:
            x, y = imm
            ft = self.field(x, y)
            if not ft.mutable:
                raise self.error(f"immutable field: field {y} of type {x}")
            self.pop_vals((ref_concrete(x, nullable=True), ft.unpacked()))
        elif code == G.ARRAY_NEW or code == G.ARRAY_NEW_DEFAULT:
            at = self.array_type(imm)
            if code == G.ARRAY_NEW:
                self.pop_vals((at.element.unpacked(), I32))
            else:
                if not _defaultable(at.element.storage):
                    raise self.error(
                        f"type mismatch: the elements of type {imm} are {valtype_name(at.element.storage)}, "
                        "which has no default"
                    )
                self.pop(I32)
            vals.append(ref_concrete(imm, nullable=False))
        elif code == G.ARRAY_NEW_FIXED:
            x, n = imm
            at = self.array_type(x)
            self.pop_vals((at.element.unpacked(),) * n)
            vals.append(ref_concrete(x, nullable=False))
        elif code == G.ARRAY_NEW_DATA or code == G.ARRAY_INIT_DATA:
            x, d = imm
            at = self.mutable_array(x) if code == G.ARRAY_INIT_DATA else self.array_type(x)
            if at.element.storage not in _NUMERIC_STORAGE:
                raise self.error(f"array type is not numeric or vector: type {x} is {at}")
            self.data(d)
            if code == G.ARRAY_NEW_DATA:
                self.pop_vals((I32, I32))
                vals.append(ref_concrete(x, nullable=False))
            else:
                self.pop_vals((ref_concrete(x, nullable=True), I32, I32, I32))
        elif code == G.ARRAY_NEW_ELEM or code == G.ARRAY_INIT_ELEM:
            x, e = imm
            at = self.mutable_array(x) if code == G.ARRAY_INIT_ELEM else self.array_type(x)
            et = self.elem(e)
            if not matches(self.c.canon, et, at.element.storage):
                raise self.error(
                    f"type mismatch: element segment {e} ({valtype_name(et)}) into an array of "
                    f"{valtype_name(at.element.storage)} (type {x})"
                )
            if code == G.ARRAY_NEW_ELEM:
                self.pop_vals((I32, I32))
                vals.append(ref_concrete(x, nullable=False))
            else:
                self.pop_vals((ref_concrete(x, nullable=True), I32, I32, I32))
        elif code in (G.ARRAY_GET, G.ARRAY_GET_S, G.ARRAY_GET_U):
            at = self.array_type(imm)
            self.check_packing(code, at.element, f"the element of array type {imm}")
            self.pop_vals((ref_concrete(imm, nullable=True), I32))
            vals.append(at.element.unpacked())
        elif code == G.ARRAY_SET:
            at = self.mutable_array(imm)
            self.pop_vals((ref_concrete(imm, nullable=True), I32, at.element.unpacked()))
        elif code == G.ARRAY_LEN:
            self.pop(ARRAYREF)
            vals.append(I32)
        elif code == G.ARRAY_FILL:
            at = self.mutable_array(imm)
            self.pop_vals((ref_concrete(imm, nullable=True), I32, at.element.unpacked(), I32))
        elif code == G.ARRAY_COPY:
            x, y = imm
            dst = self.mutable_array(x)
            src = self.array_type(y)
            if not matches(self.c.canon, src.element.storage, dst.element.storage) or (
                (src.element.storage in (I8, I16) or dst.element.storage in (I8, I16))
                and src.element.storage != dst.element.storage
            ):
                raise self.error(f"array types do not match: array.copy from type {y} ({src}) to type {x} ({dst})")
            self.pop_vals((ref_concrete(x, nullable=True), I32, ref_concrete(y, nullable=True), I32, I32))
        elif code in (G.REF_TEST, G.REF_TEST_NULL):
            self.check_cast_operand(imm)
            vals.append(I32)
        elif code in (G.REF_CAST, G.REF_CAST_NULL):
            self.check_cast_operand(imm)
            vals.append(imm)
        elif code == G.BR_ON_CAST or code == G.BR_ON_CAST_FAIL:
            self.br_on_cast(code, imm)
        elif code == G.ANY_CONVERT_EXTERN or code == G.EXTERN_CONVERT_ANY:
            src_ref, dst_ref = (EXTERNREF, ANYREF) if code == G.ANY_CONVERT_EXTERN else (ANYREF, EXTERNREF)
            t = self.pop(src_ref)
            vals.append(dst_ref if t == UNKNOWN or is_nullable(t) else ref_as_non_null(dst_ref))
        elif code == G.REF_I31:
            self.pop(I32)
            vals.append(ref_as_non_null(I31REF))
        elif code == G.I31_GET_S or code == G.I31_GET_U:
            self.pop(I31REF)
            vals.append(I32)
        else:  # pragma: no cover - the decoder produces no other GC opcodes
            raise self.error(f"unknown instruction {op.opcode_name(code)}")

    def br_on_cast(self, code: int, imm) -> None:
        """br_on_cast l rt1 rt2 (branch when the cast to rt2 succeeds) and br_on_cast_fail (when it fails)."""
        label, rt1, rt2 = imm
        self.check_type_index(rt1)
        self.check_type_index(rt2)
        canon = self.c.canon
        if not matches(canon, rt2, rt1):
            raise self.error(
                f"type mismatch: {self.instr_name()} casts to {valtype_name(rt2)}, "
                f"which does not match the operand type {valtype_name(rt1)}"
            )
        # The type of the operand when the cast fails: rt1, and non-null when rt2 accepts null.
        diff = ref_as_non_null(rt1) if is_nullable(rt2) else rt1
        taken, fallthrough = (rt2, diff) if code == gcops.BR_ON_CAST else (diff, rt2)
        types = self.label(label)[_LABEL]
        if not types or not matches(canon, taken, types[-1]):
            raise self.error(
                f"type mismatch: {self.instr_name()}'s label {label} expects {format_types(types)}, "
                f"which does not end with a supertype of {valtype_name(taken)}"
            )
        self.pop(rt1)
        self.pop_vals(types[:-1])
        self.vals.extend(types[:-1])
        self.vals.append(fallthrough)

    def pop_ref(self) -> int:
        """Pop a reference of any type (``UNKNOWN`` in unreachable code)."""
        t = self.pop_any()
        if t != UNKNOWN and not is_ref(t):
            raise self.error(
                f"type mismatch: {self.instr_name()} expects a reference but the stack has {valtype_name(t)}"
            )
        return t

    def check_tail_results(self, ft: FuncType) -> None:
        if len(ft.results) != len(self.results) or not all(
            matches(self.c.canon, a, b) for a, b in zip(ft.results, self.results)
        ):
            raise self.error(
                f"type mismatch: {self.instr_name()} callee returns {format_types(ft.results)} "
                f"but the current function returns {format_types(self.results)}"
            )
