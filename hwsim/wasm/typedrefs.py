"""Typed references: the lowering of a validated module's reference types for the compiler.

The validator types a module with its precise reference types (``(ref null? $t)``, ``(ref func)``,
GC's ``anyref``...: see :mod:`hwsim.wasm.types`), matched by the subtyping of WebAssembly 3.0
(:mod:`hwsim.wasm.subtyping`: the heap-type hierarchy, canonical recursion groups).

Modules using GC objects (struct or array types, declared supertypes, GC heap types or instructions)
are lowered too: the any hierarchy becomes externref's word (docs/gc.md).  Recursion groups of function types are run: a function type whose group has
several types, or which is not final, keeps its canonical id in its precise type
(``CanonicalFuncType``), so call_indirect and import matching tell it from a type of the same
structure in another group.

After validation, ``lower_typed_refs`` rewrites the module in place so that every reference type is
its run-time representation (``types.ref_top``: a concrete function type becomes funcref, a
non-nullable type its nullable one): the compiler and the runtime see only the three nullable
abstract types they have always seen, and a module without typed references is never touched, so
its code is byte-identical.  What the lowering loses: the embedding API shows ``(ref $t)`` as
funcref, and import matching compares the lowered types (a ``(ref $t)`` global import accepts any
funcref global of the same mutability).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from . import opcodes as op
from .module import ConstExpr, DecodedModule
from .subtyping import Canon, canonical_ids, kind_heap, matches
from .types import (
    EXTERNREF,
    FUNCREF,
    ArrayType,
    FieldType,
    FuncType,
    GlobalType,
    StructType,
    TableType,
    is_nullable,
    ref_as_non_null,
    ref_top,
    ref_type_index,
)

__all__ = ["CanonicalFuncType", "canonical_matches", "lower_typed_refs", "same_func_type"]


def _canonical_valtype(ids: Canon, t: int) -> object:
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


def _lower_instrs(instrs: list, top: Callable[[int], int]) -> None:
    blocks = (op.BLOCK_OP, op.LOOP, op.IF)
    for i, (code, imm, off) in enumerate(instrs):
        if code in blocks:
            if isinstance(imm, int) and imm < -0x80:
                instrs[i] = (code, top(-imm) - 0x80, off)
        elif code == op.TRY_TABLE_OP:
            bt, clauses = imm
            if bt < -0x80:
                instrs[i] = (code, (top(-bt) - 0x80, clauses), off)
        elif code == op.REF_NULL:
            instrs[i] = (code, top(imm), off)
        elif code == op.SELECT_TYPED:
            instrs[i] = (code, tuple(top(t) for t in imm), off)


def _lower_expr(expr: ConstExpr | None, top: Callable[[int], int]) -> None:
    if expr is not None:
        _lower_instrs(expr.instrs, top)


def _lower_func_type(ft: FuncType, top: Callable[[int], int]) -> FuncType:
    return FuncType(tuple(top(t) for t in ft.params), tuple(top(t) for t in ft.results))


@dataclass(frozen=True, slots=True)
class CanonicalFuncType(FuncType):
    """The canonical type of a function type that is not the plain one of its structure: one of a recursion
    group of several types, or a non-final one (GC's ``sub``).  ``canon`` is its canonical id
    (subtyping.py), which call_indirect's signature ids and import matching compare."""

    canon: int


def same_func_type(a: FuncType, b: FuncType) -> bool:
    """Are two canonical function types (import matching's) the same type?"""
    return (
        tuple(a.params) == tuple(b.params)
        and tuple(a.results) == tuple(b.results)
        and getattr(a, "canon", None) == getattr(b, "canon", None)
    )


_NOT_A_FUNC = FuncType((), ())  # the lowered ``types`` entry of a struct or array type (gc_types has it)


def _lower_composite(ct, top: Callable[[int], int]):
    if isinstance(ct, StructType):
        return StructType(tuple(FieldType(top(f.storage), f.mutable) for f in ct.fields))
    if isinstance(ct, ArrayType):
        return ArrayType(FieldType(top(ct.element.storage), ct.element.mutable))
    return None


def lower_typed_refs(m: DecodedModule) -> None:
    """Rewrite a validated module's reference types as their run-time representations (see above),
    keeping the canonical types of its type section, globals and tables for the runtime."""
    supers = None if m.supertypes is None else [s[0] if s else None for s in m.supertypes]
    ids = canonical_ids(m.types, m.rec_groups, supers, m.finals)
    distinct = set()
    for start, count in m.rec_groups or [(i, 1) for i in range(len(m.types))]:
        for k in range(start, start + count):
            ct = m.types[k]
            self_ref = isinstance(ct, FuncType) and any(ref_type_index(t) == k for t in ct.params + ct.results)
            if count > 1 or (m.finals is not None and not m.finals[k]) or self_ref:
                distinct.add(k)
    m.func_subtyping = m.supertypes is not None and any(
        sups and isinstance(t, FuncType) for sups, t in zip(m.supertypes, m.types)
    )
    precise: list = []
    for k, ft in enumerate(m.types):
        if not isinstance(ft, FuncType):  # a struct or array type: a signature id of its own, never called
            precise.append(CanonicalFuncType((), (), ids[k]))
            continue
        params = tuple(_canonical_valtype(ids, t) for t in ft.params)
        results = tuple(_canonical_valtype(ids, t) for t in ft.results)
        if k in distinct:
            precise.append(CanonicalFuncType(params, results, ids[k]))  # type: ignore[arg-type]
        else:
            precise.append(FuncType(params, results))  # type: ignore[arg-type]
    m.precise_types = precise
    m.precise_globals = [_canonical_valtype(ids, g.valtype) for g in m.get_global_types()]
    m.precise_tables = [_canonical_valtype(ids, t.elem_type) for t in m.get_table_types()]
    kinds = [kind_heap(t) for t in m.types]

    def top(t: int) -> int:
        """The run-time representation of ``t``: a concrete struct or array type's is externref's word."""
        index = ref_type_index(t)
        if index is not None and kinds[index] != FUNCREF:
            return EXTERNREF
        return ref_top(t)

    m.gc_canon = list(ids.ids)
    if any(k != FUNCREF for k in kinds):
        m.gc_types = [_lower_composite(t, top) for t in m.types]
    m.types = [_lower_func_type(ft, top) if isinstance(ft, FuncType) else _NOT_A_FUNC for ft in m.types]
    for k, imp in enumerate(m.imports):
        desc = imp.desc
        if isinstance(desc, TableType):
            m.imports[k] = replace(imp, desc=replace(desc, elem_type=top(desc.elem_type)))
        elif isinstance(desc, GlobalType):
            m.imports[k] = replace(imp, desc=replace(desc, valtype=top(desc.valtype)))
    for k, table in enumerate(m.tables):
        _lower_expr(table.init, top)
        m.tables[k] = replace(table, type=replace(table.type, elem_type=top(table.type.elem_type)))
    for k, g in enumerate(m.globals):
        _lower_expr(g.init, top)
        m.globals[k] = replace(g, type=replace(g.type, valtype=top(g.type.valtype)))
    for k, e in enumerate(m.elems):
        for item in e.items:
            _lower_expr(item, top)
        m.elems[k] = replace(e, elem_type=top(e.elem_type))
    for k, f in enumerate(m.funcs):
        _lower_instrs(f.body, top)
        m.funcs[k] = replace(f, locals=tuple((count, top(t)) for count, t in f.locals))
    m.lowered = True
