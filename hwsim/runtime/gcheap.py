"""The GC heap: struct and array objects in the Store's guest virtual memory, their layout and casts.

Objects are allocated from the data region (``VmStore.alloc_data``: 16-aligned, zeroed, mapped by
hwsim's page tables, so the MMU tools show them), so a reference to one is its guest virtual address,
8-aligned, which the word's other shapes never are (compiler/codegen/gc.py)::

    +0   u32 canonical type id      (wasm/subtyping.py: the process-wide registry)
    +4   u32 length                 (arrays; 0 for a struct)
    +8   fields / elements          (a struct's fields each at its natural alignment; an array's
                                      elements packed at their size: i8 1, i16 2, i32/f32 4, else 8)

Nothing is reclaimed yet (no collector: docs/gc.md); the Store's ``gc_heap_bytes`` limit bounds what
all objects take, and an allocation past it traps ``out of GC heap memory``.
"""

from __future__ import annotations

import struct
from typing import TYPE_CHECKING

from ..compiler.objlayout import HEADER_BYTES, array_bytes, storage_size, struct_layout
from ..compiler.traps import TrapCode
from ..wasm import gcops
from ..wasm.subtyping import abstract_top, canonical_kind, canonical_subtype
from ..wasm.types import ANYREF, EQREF, I31REF, StructType, is_nullable, ref_type_index
from .errors import Trap

if TYPE_CHECKING:
    from .store import VmStore

_HEADER = struct.Struct("<II")


class GcHeap:
    """A Store's GC objects: allocation (bump, never freed) under the Store's limit, and reading headers."""

    def __init__(self, store: VmStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.used = 0
        self.objects: set[int] = set()  # the address of every object (what a word may name)

    def allocate(self, canon: int, size: int, length: int = 0) -> int:
        """A zeroed object of ``size`` bytes with its header written; traps past the Store's limit."""
        if self.used + size > self.limit:
            raise Trap(
                TrapCode.GC_HEAP_EXHAUSTED,
                detail=f"{size} more bytes, {self.used} of the Store's {self.limit} in use (no collector yet)",
            )
        va = self.store.alloc_data(size)
        self.used += (size + 15) & ~15
        self.store.phys_view(va, HEADER_BYTES)[:] = _HEADER.pack(canon, length)
        self.objects.add(va)
        return va

    def header(self, va: int) -> tuple[int, int]:
        """(canonical type id, length) of the object at ``va``."""
        canon, length = _HEADER.unpack(self.store.phys_view(va, HEADER_BYTES))
        return canon, length

    def is_object(self, word: int) -> bool:
        return word != 0 and word & 7 == 0 and word in self.objects

    def kind(self, word: int) -> int:
        """STRUCTREF or ARRAYREF for an object's word."""
        return canonical_kind(self.header(word)[0])

    def test(self, word: int, rt: int, canon_ids: list[int] | None) -> bool:
        """``ref.test`` of ``word`` (any hierarchy, or extern/func) against reference type ``rt``."""
        if word == 0:
            return is_nullable(rt)
        index = ref_type_index(rt)
        if index is not None:  # a concrete struct or array type
            if not self.is_object(word):
                return False
            assert canon_ids is not None  # a module with concrete types has its canonical ids
            return canonical_subtype(self.header(word)[0], canon_ids[index])
        heap = rt & 0xFF
        if abstract_top(heap) != ANYREF:
            return abstract_top(heap) == heap  # extern, func, exn: every non-null value; their bottoms none
        if heap == ANYREF:
            return True
        if word & 1:
            return heap in (EQREF, I31REF)
        if not self.is_object(word):
            return False  # a host value: any, nothing below it
        return heap == EQREF or heap == self.kind(word)


def new_object(store: VmStore, module, code: int, imm, stack: list[int]) -> int:
    """A constant expression's struct.new(_default) or array.new(_default, _fixed): the operands (bit
    patterns) popped from ``stack``; the new object's address."""
    type_index = imm[0] if isinstance(imm, tuple) else imm
    ct, canon = module.gc_types[type_index], module.gc_canon[type_index]
    heap = store.gc_heap
    if isinstance(ct, StructType):
        offsets, size = struct_layout(ct)
        values = [0] * len(ct.fields)
        if code == gcops.STRUCT_NEW and ct.fields:
            values = stack[-len(ct.fields) :]
            del stack[-len(ct.fields) :]
        va = heap.allocate(canon, size)
        for f, off, v in zip(ct.fields, offsets, values):
            write_elements(store, va + off, f.storage, [v])
        return va
    if code == gcops.ARRAY_NEW_FIXED:
        n = imm[1]
        values = stack[len(stack) - n :] if n else []
        del stack[len(stack) - n :]
    else:
        length = stack.pop() & 0xFFFF_FFFF
        value = stack.pop() if code == gcops.ARRAY_NEW else 0
        values = [value] * length
    va = heap.allocate(canon, array_bytes(ct, len(values)), len(values))
    if any(values):
        write_elements(store, va + HEADER_BYTES, ct.element.storage, values)
    return va


def i64_bits(storage: int, value: int) -> int:
    """Mask a value's bits to its storage size, for writing (f32 and i32 as 4 bytes, ...)."""
    size = storage_size(storage)
    return value & ((1 << (8 * size)) - 1)


_PACK = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def write_elements(store: VmStore, va: int, storage: int, values: list[int]) -> None:
    size = storage_size(storage)
    fmt = struct.Struct(_PACK[size])
    view = store.phys_view(va, size * len(values))
    for i, v in enumerate(values):
        fmt.pack_into(view, i * size, i64_bits(storage, v))
