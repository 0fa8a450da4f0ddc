"""Typed function references: reference-type matching for the validator, and the lowering for the compiler.

The validator types a module with its precise reference types (``(ref null? $t)``, ``(ref func)``:
see :mod:`hwsim.wasm.types`); ``matches`` is the subtyping relation of WebAssembly 3.0 restricted to
function references::

    (ref $t) <: (ref null $t) <: (ref null func)        (ref $t) <: (ref func) <: (ref null func)
    (ref extern) <: (ref null extern)                    (ref exn) <: (ref null exn)

Two concrete types match when their indices are equal or their function types are structurally
equal (WebAssembly 3.0 compares canonicalised recursion groups; without GC's rec groups every type
is its own group, and structural equality taken coinductively gives the same answer).

After validation, ``lower_typed_refs`` rewrites the module in place so that every reference type is
its run-time representation (``types.ref_top``: a concrete function type becomes funcref, a
non-nullable type its nullable one): the compiler and the runtime see only the three nullable
abstract types they have always seen, and a module without typed references is never touched, so
its code is byte-identical.  What the lowering loses: the embedding API shows ``(ref $t)`` as
funcref, and import matching compares the lowered types (a ``(ref $t)`` global import accepts any
funcref global of the same mutability).
"""

from __future__ import annotations

from dataclasses import replace

from . import opcodes as op
from .module import ConstExpr, DecodedModule
from .types import (
    FUNCREF,
    UNKNOWN,
    FuncType,
    GlobalType,
    TableType,
    is_nullable,
    is_ref,
    ref_as_non_null,
    ref_top,
    ref_type_index,
)

__all__ = ["canonical_matches", "lower_typed_refs", "matches"]


def matches(types: list, a: int, b: int, _assumed: frozenset = frozenset()) -> bool:
    """Is value type ``a`` a subtype of ``b``?  (``UNKNOWN``, the bottom type, matches anything.)"""
    if a == b or a == UNKNOWN or b == UNKNOWN:
        return True
    if not is_ref(a) or not is_ref(b):
        return False
    if is_nullable(a) and not is_nullable(b):
        return False
    ia, ib = ref_type_index(a), ref_type_index(b)
    if ia is None:
        return ib is None and ref_top(a) == ref_top(b)
    if ib is None:
        return ref_top(b) == FUNCREF
    return _equivalent(types, ia, ib, _assumed)


def _equivalent(types: list, ia: int, ib: int, assumed: frozenset) -> bool:
    if ia == ib or (ia, ib) in assumed:
        return True
    if ia >= len(types) or ib >= len(types):
        return False
    fa, fb = types[ia], types[ib]
    if len(fa.params) != len(fb.params) or len(fa.results) != len(fb.results):
        return False
    assumed = assumed | {(ia, ib)}
    for x, y in zip(fa.params + fa.results, fb.params + fb.results):
        if x == y:
            continue
        if not (is_ref(x) and is_ref(y)) or is_nullable(x) != is_nullable(y):
            return False
        jx, jy = ref_type_index(x), ref_type_index(y)
        if jx is None or jy is None or not _equivalent(types, jx, jy, assumed):
            return False
    return True


def _lower_instrs(instrs: list) -> None:
    blocks = (op.BLOCK_OP, op.LOOP, op.IF)
    for i, (code, imm, off) in enumerate(instrs):
        if code in blocks:
            if isinstance(imm, int) and imm < -0x80:
                instrs[i] = (code, ref_top(-imm) - 0x80, off)
        elif code == op.TRY_TABLE_OP:
            bt, clauses = imm
            if bt < -0x80:
                instrs[i] = (code, (ref_top(-bt) - 0x80, clauses), off)
        elif code == op.REF_NULL:
            instrs[i] = (code, ref_top(imm), off)
        elif code == op.SELECT_TYPED:
            instrs[i] = (code, tuple(ref_top(t) for t in imm), off)


def _lower_expr(expr: ConstExpr | None) -> None:
    if expr is not None:
        _lower_instrs(expr.instrs)


def _lower_func_type(ft: FuncType) -> FuncType:
    return FuncType(tuple(ref_top(t) for t in ft.params), tuple(ref_top(t) for t in ft.results))


# Canonical types: what the runtime compares across modules (import matching, call_indirect's
# signature ids).  A type without a concrete reference is itself (an int, a FuncType of ints), so a
# module without typed references compares exactly as before; a concrete ``(ref null? $t)`` becomes
# ``("ref", nullable, <its function type, canonical>)``, and a reference back to a type being
# expanded ``("rec", depth)``: structural, so equal across modules when the types are equivalent.


def _canonical_valtype(types: list, t: int, stack: tuple[int, ...]) -> object:
    index = ref_type_index(t)
    if index is None:
        return t
    if index in stack:
        return ("ref", is_nullable(t), ("rec", len(stack) - 1 - stack.index(index)))
    return ("ref", is_nullable(t), _canonical_functype(types, index, stack))


def _canonical_functype(types: list, index: int, stack: tuple[int, ...] = ()) -> FuncType:
    ft = types[index]
    inner = (*stack, index)
    return FuncType(
        tuple(_canonical_valtype(types, t, inner) for t in ft.params),  # type: ignore[misc]
        tuple(_canonical_valtype(types, t, inner) for t in ft.results),  # type: ignore[misc]
    )


def canonical_matches(a: object, b: object) -> bool:
    """Does canonical value type ``a`` match ``b`` (an immutable global import: subtyping)?"""
    if a == b:
        return True
    if isinstance(a, int) and isinstance(b, int):
        return matches([], a, b)
    if isinstance(a, tuple) and isinstance(b, int):
        nullable = a[1]
        return b == FUNCREF or (not nullable and b == ref_as_non_null(FUNCREF))
    if isinstance(a, tuple) and isinstance(b, tuple):
        return (b[1] or not a[1]) and a[2] == b[2]
    return False


def lower_typed_refs(m: DecodedModule) -> None:
    """Rewrite a validated module's reference types as their run-time representations (see above),
    keeping the canonical types of its type section, globals and tables for the runtime."""
    types = m.types
    m.precise_types = [_canonical_functype(types, i) for i in range(len(types))]
    m.precise_globals = [_canonical_valtype(types, g.valtype, ()) for g in m.get_global_types()]
    m.precise_tables = [_canonical_valtype(types, t.elem_type, ()) for t in m.get_table_types()]
    m.types = [_lower_func_type(ft) for ft in m.types]
    for k, imp in enumerate(m.imports):
        desc = imp.desc
        if isinstance(desc, TableType):
            m.imports[k] = replace(imp, desc=replace(desc, elem_type=ref_top(desc.elem_type)))
        elif isinstance(desc, GlobalType):
            m.imports[k] = replace(imp, desc=replace(desc, valtype=ref_top(desc.valtype)))
    for k, table in enumerate(m.tables):
        _lower_expr(table.init)
        m.tables[k] = replace(table, type=replace(table.type, elem_type=ref_top(table.type.elem_type)))
    for k, g in enumerate(m.globals):
        _lower_expr(g.init)
        m.globals[k] = replace(g, type=replace(g.type, valtype=ref_top(g.type.valtype)))
    for k, e in enumerate(m.elems):
        for item in e.items:
            _lower_expr(item)
        m.elems[k] = replace(e, elem_type=ref_top(e.elem_type))
    for k, f in enumerate(m.funcs):
        _lower_instrs(f.body)
        m.funcs[k] = replace(f, locals=tuple((count, ref_top(t)) for count, t in f.locals))
    m.lowered = True
