"""WebAssembly 3.0 subtyping: the heap-type hierarchy and a process-wide registry of canonical types.

The abstract heap types form three hierarchies (four with exceptions), each with a bottom::

          any               func          extern          exn
           |                  |              |              |
           eq            (func types)     noextern        noexn
        /  |   \\              |
     i31 struct array       nofunc
          |      |
    (struct  (array
     types)   types)
        \\     /
          none

A concrete type matches the abstract type of its kind and every declared supertype up its chain.

Type equivalence is iso-recursive: types are defined in recursion groups (``rec``; a type outside
one is a group of its own), and two types are the same when they sit at the same position of
equivalent groups.  The registry interns each group as a flat key in which a reference to a type of
the same group is its position (``("rec", k)``) and a reference to an earlier type is that type's
canonical id, so equal keys mean equivalent groups, in one module or across modules; the id of a type
is its group's first id plus its position.  The registry lives as long as the process, as a type
registry does, and records each canonical type's kind and declared supertype, which is all that
matching concrete types needs.
"""

from __future__ import annotations

from collections.abc import Sequence

from .types import (
    ANYREF,
    ARRAYREF,
    EQREF,
    EXNREF,
    EXTERNREF,
    FUNCREF,
    I31REF,
    NULLEXNREF,
    NULLEXTERNREF,
    NULLFUNCREF,
    NULLREF,
    STRUCTREF,
    UNKNOWN,
    ArrayType,
    CompositeType,
    FieldType,
    FuncType,
    StructType,
    is_nullable,
    is_ref,
    ref_type_index,
)

__all__ = [
    "Canon",
    "abstract_top",
    "canonical_kind",
    "func_canonical_id",
    "canonical_subtype",
    "canonical_supertype",
    "canonical_ids",
    "heap_top",
    "kind_heap",
    "matches",
]

# The top of each abstract heap type's hierarchy, and its bottom.
_TOP = {
    ANYREF: ANYREF,
    EQREF: ANYREF,
    I31REF: ANYREF,
    STRUCTREF: ANYREF,
    ARRAYREF: ANYREF,
    NULLREF: ANYREF,
    FUNCREF: FUNCREF,
    NULLFUNCREF: FUNCREF,
    EXTERNREF: EXTERNREF,
    NULLEXTERNREF: EXTERNREF,
    EXNREF: EXNREF,
    NULLEXNREF: EXNREF,
}
_BOTTOMS = frozenset((NULLREF, NULLFUNCREF, NULLEXTERNREF, NULLEXNREF))
# Abstract supertypes of each abstract heap type (reflexive), below the top.
_ABSTRACT_SUPERS = {
    ANYREF: frozenset((ANYREF,)),
    EQREF: frozenset((EQREF, ANYREF)),
    I31REF: frozenset((I31REF, EQREF, ANYREF)),
    STRUCTREF: frozenset((STRUCTREF, EQREF, ANYREF)),
    ARRAYREF: frozenset((ARRAYREF, EQREF, ANYREF)),
    FUNCREF: frozenset((FUNCREF,)),
    EXTERNREF: frozenset((EXTERNREF,)),
    EXNREF: frozenset((EXNREF,)),
}


def kind_heap(ct: CompositeType) -> int:
    """The abstract heap type a concrete type of this kind matches: func, struct or array."""
    if isinstance(ct, FuncType):
        return FUNCREF
    return STRUCTREF if isinstance(ct, StructType) else ARRAYREF


# The registry ------------------------------------------------------------------------------------

_GROUPS: dict[tuple, int] = {}  # group key -> canonical id of its first type
_KIND: list[int] = []  # canonical id -> FUNCREF, STRUCTREF or ARRAYREF
_SUPER: list[int | None] = []  # canonical id -> canonical id of its declared supertype


def _ref_key(t: int, start: int, count: int, ids: list[int]) -> object:
    j = ref_type_index(t)
    if j is None:
        return t
    if start <= j < start + count:
        return ("rec", is_nullable(t), j - start)
    if j < len(ids):
        return ("ref", is_nullable(t), ids[j])
    return ("forward", is_nullable(t), j)  # invalid; the validator reports it


def _type_key(ct: CompositeType, start: int, count: int, ids: list[int]) -> tuple:
    def key(t: int) -> object:
        return _ref_key(t, start, count, ids)

    if isinstance(ct, FuncType):
        return ("func", tuple(key(t) for t in ct.params), tuple(key(t) for t in ct.results))
    fields = ct.fields if isinstance(ct, StructType) else (ct.element,)
    return ("struct" if isinstance(ct, StructType) else "array",) + tuple((key(f.storage), f.mutable) for f in fields)


def _super_key(sup: int | None, start: int, count: int, ids: list[int]) -> object:
    if sup is None:
        return None
    if start <= sup < start + count:
        return ("rec", sup - start)
    return ("id", ids[sup]) if sup < len(ids) else ("forward", sup)


class Canon:
    """The canonical ids of one module's types (a list indexed by type index), with what matching reads.

    ``ids[i]`` is type ``i``'s canonical id; equal ids, equivalent types, in any module."""

    __slots__ = ("ids",)

    def __init__(self, ids: list[int]):
        self.ids = ids

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> int:
        return self.ids[index]

    def kind(self, index: int) -> int:
        return _KIND[self.ids[index]]


def canonical_ids(
    types: Sequence[CompositeType],
    rec_groups: list[tuple[int, int]] | None = None,
    supertypes: list[int | None] | None = None,
    finals: list[bool] | None = None,
) -> Canon:
    """Intern a type section (its groups as ``(first index, count)``; None: each type its own group)."""
    if rec_groups is None:
        rec_groups = [(i, 1) for i in range(len(types))]
    ids: list[int] = []
    for start, count in rec_groups:
        members = []
        for k in range(start, start + count):
            sup = supertypes[k] if supertypes is not None else None
            final = finals[k] if finals is not None else True
            members.append((final, _super_key(sup, start, count, ids), _type_key(types[k], start, count, ids)))
        key = tuple(members)
        base = _GROUPS.get(key)
        if base is None:
            base = len(_KIND)
            _GROUPS[key] = base
            for k in range(start, start + count):
                sup = supertypes[k] if supertypes is not None else None
                _KIND.append(kind_heap(types[k]))
                _SUPER.append(None)
            for k in range(start, start + count):
                sup = supertypes[k] if supertypes is not None else None
                if sup is not None:
                    _SUPER[base + k - start] = (
                        base + sup - start if sup >= start else (ids[sup] if sup < len(ids) else None)
                    )
        ids.extend(range(base, base + count))
    return Canon(ids)


def func_canonical_id(precise: FuncType) -> int:
    """The canonical id of a function's canonical type (typedrefs.py): its own when it carries one
    (``canon``), else the id of the plain type of that structure (a group of one, final, no supertype)."""
    canon = getattr(precise, "canon", None)
    if canon is not None:
        return canon
    key = ((True, None, ("func", tuple(precise.params), tuple(precise.results))),)
    base = _GROUPS.get(key)
    if base is None:
        base = len(_KIND)
        _GROUPS[key] = base
        _KIND.append(FUNCREF)
        _SUPER.append(None)
    return base


def canonical_kind(a: int) -> int:
    """FUNCREF, STRUCTREF or ARRAYREF: the kind of canonical type ``a``."""
    return _KIND[a]


def canonical_supertype(a: int) -> int | None:
    """The canonical id of canonical type ``a``'s declared supertype (None: it declares none)."""
    return _SUPER[a]


def canonical_subtype(a: int, b: int) -> bool:
    """Is canonical type ``a`` ``b`` or below it on ``a``'s chain of declared supertypes?"""
    seen = 0
    while a is not None:
        if a == b:
            return True
        a = _SUPER[a]  # type: ignore[assignment]
        seen += 1
        if seen > len(_SUPER):  # pragma: no cover - a cycle cannot be registered (supertypes come first)
            return False
    return False


def abstract_top(t: int) -> int:
    """The top of the hierarchy of an abstract reference type (ANYREF, FUNCREF, EXTERNREF, EXNREF)."""
    return _TOP[t & 0xFF]


def heap_top(canon: Canon, t: int) -> int:
    """The top of the hierarchy of reference type ``t``'s heap type (ANYREF, FUNCREF, EXTERNREF, EXNREF)."""
    j = ref_type_index(t)
    if j is not None:
        return _TOP[canon.kind(j)] if j < len(canon) else FUNCREF
    return _TOP[t & 0xFF]


def heap_matches(canon: Canon, a: int, b: int) -> bool:
    """Does the heap type of reference type ``a`` match that of ``b`` (nullability aside)?"""
    ia, ib = ref_type_index(a), ref_type_index(b)
    if ia is not None and ia >= len(canon) or ib is not None and ib >= len(canon):
        return ia == ib  # an unknown index; the validator reports it
    ha = a & 0xFF if ia is None else None
    hb = b & 0xFF if ib is None else None
    if hb is not None and hb in _BOTTOMS:
        return ha == hb
    if ha is not None and ha in _BOTTOMS:
        return heap_top(canon, b) == _TOP[ha]
    if ia is None:
        return ib is None and hb in _ABSTRACT_SUPERS[ha]  # type: ignore[index]
    if ib is None:
        return hb in _ABSTRACT_SUPERS[canon.kind(ia)]
    return canonical_subtype(canon[ia], canon[ib])


def matches(canon: Canon | list, a: int, b: int) -> bool:
    """Is value type ``a`` a subtype of ``b``?  (``UNKNOWN``, the bottom type, matches anything.)"""
    if a == b or a == UNKNOWN or b == UNKNOWN:
        return True
    if not is_ref(a) or not is_ref(b):
        return False
    if is_nullable(a) and not is_nullable(b):
        return False
    if not isinstance(canon, Canon):
        canon = Canon(list(canon))
    return heap_matches(canon, a, b)


def field_matches(canon: Canon, a: FieldType, b: FieldType) -> bool:
    """Field subtyping: an immutable field is covariant, a mutable one invariant."""
    if a.mutable != b.mutable:
        return False
    if a.storage == b.storage:
        return True
    if a.mutable:
        return matches(canon, a.storage, b.storage) and matches(canon, b.storage, a.storage)
    return matches(canon, a.storage, b.storage)


def composite_matches(canon: Canon, a: CompositeType, b: CompositeType) -> bool:
    """Structural subtyping of a declared subtype's composite type against its supertype's."""
    if isinstance(a, FuncType) and isinstance(b, FuncType):
        return (
            len(a.params) == len(b.params)
            and len(a.results) == len(b.results)
            and all(matches(canon, y, x) for x, y in zip(a.params, b.params))
            and all(matches(canon, x, y) for x, y in zip(a.results, b.results))
        )
    if isinstance(a, StructType) and isinstance(b, StructType):
        return len(a.fields) >= len(b.fields) and all(field_matches(canon, x, y) for x, y in zip(a.fields, b.fields))
    if isinstance(a, ArrayType) and isinstance(b, ArrayType):
        return field_matches(canon, a.element, b.element)
    return False
