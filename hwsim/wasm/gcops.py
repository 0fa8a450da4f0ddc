"""GC's instructions as data: the ``0xfb`` opcodes, their names and immediates, and ``ref.eq``.

An instruction tuple's opcode is ``GC_BASE | sub`` (``struct.new`` is ``0xfb00``); its immediate, by kind:

    TYPE         x                   a type index (struct.new, array.get, ...)
    TYPE_FIELD   (x, y)              a type index and a field index (struct.get), a type index and a data
                                     or element segment index (array.new_data), two type indices
                                     (array.copy), or a type index and a count (array.new_fixed)
    NONE         None
    REFTYPE      t                   the reference type tested or cast to (ref.test, ref.cast)
    BR_ON_CAST   (label, t1, t2)     the label and the two reference types
"""

from __future__ import annotations

import enum

GC_BASE = 0xFB00
REF_EQ = 0xD3


class Imm(enum.IntEnum):
    """Immediate kinds of the GC instructions."""

    NONE = 0
    TYPE = 1
    TYPE_FIELD = 2
    REFTYPE = 3
    BR_ON_CAST = 4


# sub-opcode -> (name, immediate kind)
TABLE: dict[int, tuple[str, Imm]] = {
    0x00: ("struct.new", Imm.TYPE),
    0x01: ("struct.new_default", Imm.TYPE),
    0x02: ("struct.get", Imm.TYPE_FIELD),
    0x03: ("struct.get_s", Imm.TYPE_FIELD),
    0x04: ("struct.get_u", Imm.TYPE_FIELD),
    0x05: ("struct.set", Imm.TYPE_FIELD),
    0x06: ("array.new", Imm.TYPE),
    0x07: ("array.new_default", Imm.TYPE),
    0x08: ("array.new_fixed", Imm.TYPE_FIELD),
    0x09: ("array.new_data", Imm.TYPE_FIELD),
    0x0A: ("array.new_elem", Imm.TYPE_FIELD),
    0x0B: ("array.get", Imm.TYPE),
    0x0C: ("array.get_s", Imm.TYPE),
    0x0D: ("array.get_u", Imm.TYPE),
    0x0E: ("array.set", Imm.TYPE),
    0x0F: ("array.len", Imm.NONE),
    0x10: ("array.fill", Imm.TYPE),
    0x11: ("array.copy", Imm.TYPE_FIELD),
    0x12: ("array.init_data", Imm.TYPE_FIELD),
    0x13: ("array.init_elem", Imm.TYPE_FIELD),
    0x14: ("ref.test", Imm.REFTYPE),
    0x15: ("ref.test", Imm.REFTYPE),  # (ref null ht)
    0x16: ("ref.cast", Imm.REFTYPE),
    0x17: ("ref.cast", Imm.REFTYPE),  # (ref null ht)
    0x18: ("br_on_cast", Imm.BR_ON_CAST),
    0x19: ("br_on_cast_fail", Imm.BR_ON_CAST),
    0x1A: ("any.convert_extern", Imm.NONE),
    0x1B: ("extern.convert_any", Imm.NONE),
    0x1C: ("ref.i31", Imm.NONE),
    0x1D: ("i31.get_s", Imm.NONE),
    0x1E: ("i31.get_u", Imm.NONE),
}

NAMES: dict[int, str] = {GC_BASE | sub: name for sub, (name, _) in TABLE.items()}
NAMES[REF_EQ] = "ref.eq"

(
    STRUCT_NEW,
    STRUCT_NEW_DEFAULT,
    STRUCT_GET,
    STRUCT_GET_S,
    STRUCT_GET_U,
    STRUCT_SET,
    ARRAY_NEW,
    ARRAY_NEW_DEFAULT,
    ARRAY_NEW_FIXED,
    ARRAY_NEW_DATA,
    ARRAY_NEW_ELEM,
    ARRAY_GET,
    ARRAY_GET_S,
    ARRAY_GET_U,
    ARRAY_SET,
    ARRAY_LEN,
    ARRAY_FILL,
    ARRAY_COPY,
    ARRAY_INIT_DATA,
    ARRAY_INIT_ELEM,
    REF_TEST,
    REF_TEST_NULL,
    REF_CAST,
    REF_CAST_NULL,
    BR_ON_CAST,
    BR_ON_CAST_FAIL,
    ANY_CONVERT_EXTERN,
    EXTERN_CONVERT_ANY,
    REF_I31,
    I31_GET_S,
    I31_GET_U,
) = (GC_BASE | sub for sub in range(0x1F))

# The instructions compiled without touching the GC heap (hwsim/compiler/codegen/gc.py: tests of the word;
# casts that read a header call gc_test): ref.eq, the casts, the conversions and the i31 instructions.
HEAP_FREE = frozenset((REF_EQ, *range(REF_TEST, I31_GET_U + 1)))
CASTS = frozenset((REF_TEST, REF_TEST_NULL, REF_CAST, REF_CAST_NULL))
# The struct and array instructions (0xfb 0x00-0x13), on the GC heap (compiler/codegen/gc.py, runtime/gcheap.py).
OBJECT_OPS = frozenset(range(STRUCT_NEW, ARRAY_INIT_ELEM + 1))
# The GC instructions whose code may call a runtime builtin: allocation, the bulk array instructions and
# the casts (those that read an object's header).
BUILTIN_CALLS = frozenset(
    (STRUCT_NEW, STRUCT_NEW_DEFAULT, *range(ARRAY_NEW, ARRAY_NEW_ELEM + 1), *range(ARRAY_FILL, BR_ON_CAST_FAIL + 1))
)

# Instructions allowed in constant expressions (beside those of WebAssembly 2.0 and extended-const).
CONST_OPS = frozenset(
    (
        STRUCT_NEW,
        STRUCT_NEW_DEFAULT,
        ARRAY_NEW,
        ARRAY_NEW_DEFAULT,
        ARRAY_NEW_FIXED,
        ANY_CONVERT_EXTERN,
        EXTERN_CONVERT_ANY,
        REF_I31,
    )
)
