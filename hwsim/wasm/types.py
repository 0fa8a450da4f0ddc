"""WebAssembly types as data: value types, function, limits, table, memory and global types.

A value type is a small ``int``: its one-byte binary encoding (``I32`` is
``0x7f``).  ``UNKNOWN`` (0) is the validator's bottom type, the type of an
operand popped from the polymorphic stack of unreachable code; it never
appears in a module.
"""

from __future__ import annotations

import enum
from collections.abc import Iterable
from dataclasses import dataclass

# Value types (binary encodings).  The reference types here are the two nullable abstract ones of
# WebAssembly 2.0 and exception handling's exnref; typed function references add more below.
I32 = 0x7F
I64 = 0x7E
F32 = 0x7D
F64 = 0x7C
V128 = 0x7B  # SIMD: a 128-bit vector
FUNCREF = 0x70
EXTERNREF = 0x6F
EXNREF = 0x69  # exception handling: a nullable reference to a caught exception
# GC's abstract heap types, as their nullable reference types (the one-byte shorthands).
ANYREF = 0x6E
EQREF = 0x6D
I31REF = 0x6C
STRUCTREF = 0x6B
ARRAYREF = 0x6A
NULLREF = 0x71  # (ref null none), bottom of the any hierarchy
NULLFUNCREF = 0x73  # (ref null nofunc)
NULLEXTERNREF = 0x72  # (ref null noextern)
NULLEXNREF = 0x74  # (ref null noexn)
UNKNOWN = 0  # bottom, validator only

# GC's packed storage types (struct and array fields only).
I8 = 0x78
I16 = 0x77

NUM_TYPES = frozenset((I32, I64, F32, F64))
GC_ABSTRACT_TYPES = frozenset((ANYREF, EQREF, I31REF, STRUCTREF, ARRAYREF, NULLREF, NULLFUNCREF, NULLEXTERNREF))
REF_TYPES = frozenset((FUNCREF, EXTERNREF, EXNREF, NULLEXNREF)) | GC_ABSTRACT_TYPES
VEC_TYPES = frozenset((V128,))
VALUE_TYPES = NUM_TYPES | VEC_TYPES | REF_TYPES

VALTYPE_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
    EXNREF: "exnref",
    ANYREF: "anyref",
    EQREF: "eqref",
    I31REF: "i31ref",
    STRUCTREF: "structref",
    ARRAYREF: "arrayref",
    NULLREF: "nullref",
    NULLFUNCREF: "nullfuncref",
    NULLEXTERNREF: "nullexternref",
    NULLEXNREF: "nullexnref",
    I8: "i8",
    I16: "i16",
    UNKNOWN: "unknown",
}

# Typed function references: the reference types beyond the three nullable abstract ones above are
# ints past the one-byte encodings, so a value type stays a small int and the old types keep their codes:
#
#   (ref null func|extern|exn)   0x70 / 0x6f / 0x69          (FUNCREF, EXTERNREF, EXNREF)
#   (ref func|extern|exn)        REF_NON_NULL | 0x70 ...      non-nullable abstract
#   (ref null $t)                REF_CONCRETE + 2*t + 1
#   (ref $t)                     REF_CONCRETE + 2*t
#
# GC adds the abstract heap types any, eq, i31, struct, array and the bottoms none, nofunc, noextern
# (and exception handling's noexn), encoded the same way by their one-byte codes (ANYREF ...), and
# concrete struct and array types (``StructType``, ``ArrayType``) beside function types; the subtyping
# between them is :mod:`hwsim.wasm.subtyping`.  A module without GC represents every reference type at
# run time as its abstract top: ``ref_top``.
REF_NON_NULL = 0x100
REF_CONCRETE = 0x10000
ABSTRACT_HEAP_NAMES = {
    FUNCREF: "func",
    EXTERNREF: "extern",
    EXNREF: "exn",
    ANYREF: "any",
    EQREF: "eq",
    I31REF: "i31",
    STRUCTREF: "struct",
    ARRAYREF: "array",
    NULLREF: "none",
    NULLFUNCREF: "nofunc",
    NULLEXTERNREF: "noextern",
    NULLEXNREF: "noexn",
}


def ref_concrete(type_index: int, *, nullable: bool) -> int:
    """``(ref null? $type_index)``."""
    return REF_CONCRETE + 2 * type_index + (1 if nullable else 0)


def ref_abstract(code: int, *, nullable: bool) -> int:
    """``(ref null? func|extern|exn)``; ``code`` is the heap type's byte (``FUNCREF`` for func)."""
    return code if nullable else REF_NON_NULL | code


def is_ref(t: int) -> bool:
    return t in REF_TYPES or t >= REF_NON_NULL


def is_nullable(t: int) -> bool:
    """For a reference type: may it be null?"""
    if t >= REF_CONCRETE:
        return bool(t & 1)
    return t < REF_NON_NULL


def ref_type_index(t: int) -> int | None:
    """The type index of a concrete reference type, None for an abstract one."""
    return (t - REF_CONCRETE) >> 1 if t >= REF_CONCRETE else None


# The run-time representation of GC's abstract reference types: a word of the extern hierarchy's shape
# (docs/gc.md), funcref's and exnref's for their bottoms.
_RUNTIME_REF = {
    ANYREF: EXTERNREF,
    EQREF: EXTERNREF,
    I31REF: EXTERNREF,
    STRUCTREF: EXTERNREF,
    ARRAYREF: EXTERNREF,
    NULLREF: EXTERNREF,
    NULLEXTERNREF: EXTERNREF,
    NULLFUNCREF: FUNCREF,
    NULLEXNREF: EXNREF,
}


def ref_top(t: int) -> int:
    """The nullable abstract type that represents reference type ``t`` at run time (any other type: itself):
    funcref, externref (also every type of GC's any hierarchy) or exnref."""
    if t >= REF_CONCRETE:
        return FUNCREF
    if t >= REF_NON_NULL:
        t &= 0xFF
    return _RUNTIME_REF.get(t, t)


def ref_as_nullable(t: int) -> int:
    if t >= REF_CONCRETE:
        return t | 1
    return t & 0xFF


def ref_as_non_null(t: int) -> int:
    if t >= REF_CONCRETE:
        return t & ~1
    if t in REF_TYPES:
        return REF_NON_NULL | t
    return t


# Block types are stored as the signed 33-bit integer of the binary encoding:
# a type index when >= 0, otherwise the empty type or one value type (a typed reference type ``t``,
# past the one-byte codes, as ``-t``).
BLOCK_EMPTY = -0x40


def block_valtype(blocktype: int) -> int:
    """The value type of a one-result block type (``blocktype < 0`` and not empty)."""
    return blocktype + 0x80 if blocktype >= -0x80 else -blocktype


def valtype_name(t: int) -> str:
    name = VALTYPE_NAMES.get(t)
    if name is not None:
        return name
    if t >= REF_CONCRETE:
        return f"(ref {'null ' if t & 1 else ''}{(t - REF_CONCRETE) >> 1})"
    if t >= REF_NON_NULL and (t & 0xFF) in ABSTRACT_HEAP_NAMES:
        return f"(ref {ABSTRACT_HEAP_NAMES[t & 0xFF]})"
    return f"<type {t:#x}>"


def format_types(types: Iterable[int]) -> str:
    """``[i32 i64]``, as the specification writes result types."""
    return "[" + " ".join(valtype_name(t) for t in types) + "]"


class ExternKind(enum.IntEnum):
    """Import and export kinds (binary encodings)."""

    FUNC = 0
    TABLE = 1
    MEMORY = 2
    GLOBAL = 3
    TAG = 4  # exception handling: a tag, typed by a function type without results


# Limits flags (first byte of a table or memory type).
LIMITS_HAS_MAX = 0x01
LIMITS_SHARED = 0x02  # threads proposal: a shared memory (memories only)
LIMITS_INDEX64 = 0x04  # memory64 / table64
LIMITS_PAGE_SIZE = 0x08  # custom-page-sizes: a u32 log2(page size) follows the limits

DEFAULT_PAGE_SIZE_LOG2 = 16  # 64 KiB


@dataclass(frozen=True, slots=True)
class FuncType:
    params: tuple[int, ...]
    results: tuple[int, ...]

    def __str__(self) -> str:
        return f"{format_types(self.params)} -> {format_types(self.results)}"


@dataclass(frozen=True, slots=True)
class FieldType:
    """A GC struct field or array element: a value type or a packed type (``I8``, ``I16``), and mutability."""

    storage: int
    mutable: bool

    def __str__(self) -> str:
        name = valtype_name(self.storage)
        return f"(mut {name})" if self.mutable else name

    def unpacked(self) -> int:
        """The value type that holds the field on the operand stack (i32 for a packed field)."""
        return I32 if self.storage in (I8, I16) else self.storage


@dataclass(frozen=True, slots=True)
class StructType:
    fields: tuple[FieldType, ...]

    def __str__(self) -> str:
        return "(struct" + "".join(f" (field {f})" for f in self.fields) + ")"


@dataclass(frozen=True, slots=True)
class ArrayType:
    element: FieldType

    def __str__(self) -> str:
        return f"(array {self.element})"


CompositeType = FuncType | StructType | ArrayType


@dataclass(frozen=True, slots=True, kw_only=True)
class Limits:
    min: int
    max: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryType:
    """A memory type; ``index_type`` is ``I32`` or ``I64`` (memory64), pages are ``2**page_size_log2`` bytes;
    ``shared``: the threads proposal's shared memory (limits flag 0x02)."""

    limits: Limits
    index_type: int = I32
    page_size_log2: int = DEFAULT_PAGE_SIZE_LOG2
    shared: bool = False

    def __str__(self) -> str:
        text = f"memory {valtype_name(self.index_type)} {self.limits.min}"
        if self.limits.max is not None:
            text += f" {self.limits.max}"
        if self.page_size_log2 != DEFAULT_PAGE_SIZE_LOG2:
            text += f" (pagesize {1 << self.page_size_log2})"
        if self.shared:
            text += " shared"
        return text


@dataclass(frozen=True, slots=True, kw_only=True)
class TableType:
    """A table type; ``index_type`` is ``I32`` or ``I64`` (table64)."""

    elem_type: int
    limits: Limits
    index_type: int = I32

    def __str__(self) -> str:
        text = f"table {valtype_name(self.index_type)} {self.limits.min}"
        if self.limits.max is not None:
            text += f" {self.limits.max}"
        return text + f" {valtype_name(self.elem_type)}"


@dataclass(frozen=True, slots=True, kw_only=True)
class GlobalType:
    valtype: int
    mutable: bool

    def __str__(self) -> str:
        return f"(mut {valtype_name(self.valtype)})" if self.mutable else valtype_name(self.valtype)
