"""How GC objects are laid out in guest memory: what compiled code and the runtime (runtime/gcheap.py) share.

::

    +0   u32 Store type id          (runtime/store.py VmStore.type_id: one per canonical type; compiled
                                      code takes it from the vmctx, never from the process's registry)
    +4   u32 length                 (arrays; 0 for a struct)
    +8   fields / elements          (a struct's fields each at its natural alignment, at most 8; an
                                      array's elements packed at their size: i8 1, i16 2, i32/f32 4,
                                      v128 16, else 8)

A v128 is 16 bytes aligned to 8: compiled code moves it as two 64-bit halves (codegen/simd.py), so 8 is all
its loads need, and an array's elements then start right after the 8-byte header.
"""

from __future__ import annotations

from functools import cache

from ..wasm.types import F32, I8, I16, I32, V128, ArrayType, StructType

HEADER_BYTES = 8


def storage_size(storage: int) -> int:
    """Bytes of a field or element of this storage type (references: 8)."""
    if storage == I8:
        return 1
    if storage == I16:
        return 2
    if storage in (I32, F32):
        return 4
    if storage == V128:
        return 16
    return 8


def storage_align(storage: int) -> int:
    """A field's alignment in a struct: its size, at most 8 (a v128's halves are 8 bytes each)."""
    return min(storage_size(storage), 8)


@cache
def struct_layout(st: StructType) -> tuple[tuple[int, ...], int]:
    """(offset of each field, object size) of a struct type."""
    offsets = []
    pos = HEADER_BYTES
    for f in st.fields:
        size, align = storage_size(f.storage), storage_align(f.storage)
        pos = (pos + align - 1) & ~(align - 1)
        offsets.append(pos)
        pos += size
    return tuple(offsets), (pos + 7) & ~7


def array_bytes(at: ArrayType, length: int) -> int:
    return HEADER_BYTES + length * storage_size(at.element.storage)
