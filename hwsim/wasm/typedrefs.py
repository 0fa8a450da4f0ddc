"""Typed function references: reference-type matching for the validator, and the lowering for the compiler.

The validator types a module with its precise reference types (``(ref null? $t)``, ``(ref func)``:
see :mod:`hwsim.wasm.types`); ``matches`` is the subtyping relation of WebAssembly 3.0 restricted to
function references::

    (ref $t) <: (ref null $t) <: (ref null func)        (ref $t) <: (ref func) <: (ref null func)
    (ref extern) <: (ref null extern)                    (ref exn) <: (ref null exn)

Two concrete types match when their indices are equal or their canonical ids are (``canonical_ids``:
WebAssembly 3.0 compares canonicalised recursion groups; without GC's rec groups every type is its
own group).

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

__all__ = ["canonical_ids", "canonical_matches", "lower_typed_refs", "matches"]


def matches(canon: list[int], a: int, b: int) -> bool:
    """Is value type ``a`` a subtype of ``b``?  (``UNKNOWN``, the bottom type, matches anything.)

    ``canon``: the canonical id of each type index (``canonical_ids``)."""
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
    return ia == ib or (ia < len(canon) and ib < len(canon) and canon[ia] == canon[ib])


# Canonical types: what the validator and the runtime compare, within a module and across modules
# (import matching, call_indirect's signature ids).  Each function type is interned as a flat key,
# in which a reference to an earlier type is that type's id and a reference to itself is "self"
# (every type being its own recursion group, as without GC's rec groups, this is WebAssembly 3.0's
# iso-recursive equivalence: equal ids, equivalent types).  Keys stay flat, so hashing and comparing
# them costs the size of one type, whatever the nesting.  The table lives as long as the process,
# as a type registry does (a few dozen bytes per distinct type).
_INTERNED: dict[tuple, int] = {}


def _key(t: int, index: int, ids: list[int]) -> object:
    j = ref_type_index(t)
    if j is None:
        return t
    if j == index:
        return ("ref", is_nullable(t), "self")
    if j > index or j >= len(ids):  # invalid (a forward reference); the validator reports it
        return ("ref", is_nullable(t), ("forward", j))
    return ("ref", is_nullable(t), ids[j])


def _canonical_key(types: list, index: int, ids: list[int]) -> tuple:
    ft = types[index]
    return (tuple(_key(t, index, ids) for t in ft.params), tuple(_key(t, index, ids) for t in ft.results))


def canonical_ids(types: list) -> list[int]:
    """The canonical id of each type (equal ids: equivalent types)."""
    ids: list[int] = []
    for i in range(len(types)):
        ids.append(_INTERNED.setdefault(_canonical_key(types, i, ids), len(_INTERNED)))
    return ids


def _canonical_valtype(ids: list[int], t: int) -> object:
    """A value type as the runtime compares it: itself, or ``("ref", nullable, canonical id)``."""
    j = ref_type_index(t)
    if j is None:
        return t
    return ("ref", is_nullable(t), ids[j])


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


def lower_typed_refs(m: DecodedModule) -> None:
    """Rewrite a validated module's reference types as their run-time representations (see above),
    keeping the canonical types of its type section, globals and tables for the runtime."""
    ids = canonical_ids(m.types)
    m.precise_types = [
        FuncType(
            tuple(_canonical_valtype(ids, t) for t in ft.params),  # type: ignore[misc]
            tuple(_canonical_valtype(ids, t) for t in ft.results),  # type: ignore[misc]
        )
        for ft in m.types
    ]
    m.precise_globals = [_canonical_valtype(ids, g.valtype) for g in m.get_global_types()]
    m.precise_tables = [_canonical_valtype(ids, t.elem_type) for t in m.get_table_types()]
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
