"""The ABI between compiled code and the runtime: the vmctx, the records it points to, the ABI area, value locations.

Compiled code and the runtime (:mod:`hwsim.runtime`) read this one module;
:mod:`hwsim.runtime.layout` re-exports it beside the Store's address-space map.

A **vmctx** (one per instance) is an array of 8-byte words the compiled code
reads through a pinned register.  Its layout depends on the module
(:class:`VmctxLayout`); entries point to shared records, so imported and
exported memories, tables and globals stay one object::

    vmctx              [ mem0 base | memories... | tables... | globals... | funcs... | type ids... | segments
                         | GC record | canonical ids... ]   (the last two: modules with typed references only)
    memory descriptor  { base VA, size in bytes, page size log2, reserved bytes, bulk through the host }
    table descriptor   { entries VA, size (elements) }
    global cell        { value }
    funcref record     { code VA, vmctx VA, type id }
    segment table      header (16 bytes), then 32-byte descriptors { base, limit, rights, - }
    GC record          { allocation cursor, buffer end, descriptor table VA, descriptors }   (one per Store)
    type descriptor    { u16 depth, u16 kind, u32 display[GC_DISPLAY] }   (per Store type id, read-only pages)

A type's word in the vmctx holds its Store type id (``VmStore.type_id``: call_indirect's signature id,
and the id a GC object's header and a funcref record carry); its canonical id word (GC) holds the
process-wide canonical id (wasm/subtyping.py) that a supertype display lists.  Both are filled at
instantiation, never compiled in: the code cache is shared between processes.

Values cross a call in registers, in order per register class, and past the
registers in 8-byte words of the **ABI area**, a fixed page pair the runtime
maps in every Store (no stack arguments: the runtime reads and writes them
without knowing the frame).  :func:`signature_locations` says where each value
of a signature goes; an ISA's ``abi`` module binds it to its argument registers.

**Fuel.**  Metered code (hwsim/compiler/codegen/fuel.py) keeps the Store's fuel
count, a signed 64-bit number, in one pinned register (the ISA ``abi`` module's
``FUEL``) for as long as guest code runs; whenever it stops (a builtin or host
call, a trap, a stop, the return to the host) the runtime moves the count to
the Store's fuel cell and back (hwsim/runtime/checkpoints.py).  No vmctx word
is involved: every instance of a Store shares the one count.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..wasm.module import DecodedModule
from ..wasm.types import F32, F64, V128
from .regs import Reg

PAGE = 0x1000

# The runtime page (r-x, mapped by every Store): the host-call stub, the exit address and the tail-call
# return stub.  A cross-instance tail call leaves one small frame under its callee whose return address
# is TAIL_RETURN_STUB; the stub puts the instance registers of the frame's owner back and returns to the
# original caller.  A later cross-instance tail call that finds that return address reuses the frame, so
# a chain of them runs in constant stack (see RiscvMasm.tail_call_ref).
RUNTIME_PAGE = 0x1_0000
TAIL_RETURN_STUB = RUNTIME_PAGE + 0x100
TAIL_FRAME_BYTES = 32  # { instance mem0 base, vmctx, caller's fp, return address } from sp up

# The ABI area: arguments and results past the registers, up to 1000 of each (MAX_PARAMS).
ABI_AREA = 0x2_0000
ABI_AREA_SIZE = 2 * PAGE
ABI_AREA_RESERVED = 64  # its last bytes hold the runtime's all-zero vmctx for host functions

# A 32-bit memory's static offsets (plus the access size) up to this need no explicit bounds check:
# the runtime reserves this much unmapped address space past every 4 GiB memory.
MEMORY_GUARD = 2 << 30

# Far-pointer segment tables (hwsim/runtime/segments.py): selectors per instance, bytes per descriptor.
SEGMENT_CAPACITY = 256
SEGMENT_HEADER = 16
SEGMENT_DESC = 32

# Memory descriptor fields.
MEMDESC_BASE = 0
MEMDESC_SIZE = 8
MEMDESC_PAGE_LOG2 = 16
MEMDESC_RESERVED = 24
# Non-zero while memory.copy/fill on this memory must be carried out by the host (the runtime's builtins):
# the memory has memory control (page states the host checks before it writes anything), or its Store has
# bulk-access observers (the DMA checker).  Compiled code reads it at every bulk operation, so a module
# compiled once stays correct when an observer comes later.
MEMDESC_BULK_HOST = 32
MEMDESC_BYTES = 40

# memory.copy/fill of at most this many bytes run in compiled code (when MEMDESC_BULK_HOST allows), larger
# ones in the host: a page-sized chunk at a time, untouched pages left untouched, the time limit checked.
BULK_INLINE_MAX = 64 << 10

# Table descriptor fields.
TABLEDESC_BASE = 0
TABLEDESC_SIZE = 8
TABLEDESC_BYTES = 16

# Funcref record fields.
FUNCREF_CODE = 0
FUNCREF_VMCTX = 8
FUNCREF_TYPE = 16
FUNCREF_BYTES = 24

# The Store's GC record (runtime/gcheap.py): compiled code bumps GC_CURSOR up to GC_END (the allocation
# buffer; both 0 while there is none), and casts read the type descriptor of a header's Store type id.
GC_CURSOR = 0
GC_END = 8
GC_DESCRIPTORS = 16  # the descriptor table's address
GC_DESCRIPTOR_COUNT = 24  # Store type ids below this have a descriptor
GC_RECORD_BYTES = 32
# A type descriptor: its depth (u16: declared supertypes above it), its kind (u16: the heap type code
# STRUCTREF, ARRAYREF or FUNCREF), then the canonical ids (u32) of its supertype chain from the root
# (depth 0) down to itself, the first GC_DISPLAY of them.  A cast to a type deeper than the display can
# show goes through the gc_test builtin.
GC_DISPLAY = 15
GC_DESC_DEPTH = 0
GC_DESC_KIND = 2
GC_DESC_DISPLAY = 4
GC_DESC_BYTES = 4 + 4 * GC_DISPLAY


@dataclass(frozen=True)
class VmctxLayout:
    """Offsets in a module's vmctx: one 8-byte word per memory, table, global, function and type.

    Words hold the address of the memory descriptor, table descriptor, global
    cell or funcref record, and for a type its Store type id.  Memory 0's
    base address is also kept at ``MEM0_BASE`` for the entry trampoline.  A module
    with typed references also has the GC record's address and a canonical id per type.
    """

    num_memories: int
    num_tables: int
    num_globals: int
    num_funcs: int
    num_types: int
    gc: bool = False  # a module with typed references: the GC record and canonical id words

    MEM0_BASE = 0

    def memory(self, index: int) -> int:
        return 8 + 8 * index

    def table(self, index: int) -> int:
        return 8 + 8 * (self.num_memories + index)

    def global_(self, index: int) -> int:
        return 8 + 8 * (self.num_memories + self.num_tables + index)

    def func(self, index: int) -> int:
        return 8 + 8 * (self.num_memories + self.num_tables + self.num_globals + index)

    def type_id(self, index: int) -> int:
        return 8 + 8 * (self.num_memories + self.num_tables + self.num_globals + self.num_funcs + index)

    @property
    def segments(self) -> int:
        """The address of the instance's far-pointer segment table (0 until it has one)."""
        return 8 + 8 * (self.num_memories + self.num_tables + self.num_globals + self.num_funcs + self.num_types)

    @property
    def gc_record(self) -> int:
        """The address of the Store's GC record (modules with typed references)."""
        return self.segments + 8

    def canonical_id(self, index: int) -> int:
        """Type ``index``'s canonical id (u32; modules with typed references)."""
        return self.gc_record + 8 + 8 * index

    @property
    def size(self) -> int:
        return self.canonical_id(self.num_types) if self.gc else self.segments + 8


def vmctx_layout(module: DecodedModule) -> VmctxLayout:
    """The vmctx layout of ``module``'s instances (it depends only on the module's counts)."""
    return VmctxLayout(
        len(module.get_memory_types()),
        len(module.get_table_types()),
        len(module.get_global_types()),
        len(module.get_func_type_indices()),
        len(module.types),
        module.gc_canon is not None,
    )


# -- where values go -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RegLoc:
    """A value passed in register ``reg``."""

    reg: Reg


@dataclass(frozen=True, slots=True)
class AreaLoc:
    """A value passed in the 8-byte word ``offset`` bytes into the ABI area (at ``ABI_AREA + offset``)."""

    offset: int


AbiLoc = RegLoc | AreaLoc


@functools.lru_cache(maxsize=4096)
def signature_locations(
    types: tuple[int, ...], int_args: tuple[Reg, ...], float_args: tuple[Reg, ...]
) -> tuple[AbiLoc, ...]:
    """Where each value of ``types`` goes: the next argument register of its class, else the next ABI-area word.

    The same rule places parameters and results.  ``types`` are WebAssembly
    value types; f32 and f64 take float registers, everything else integer ones.
    Cached per signature (and register set).
    """
    out: list[AbiLoc] = []
    n_int = n_float = 0
    offset = 0
    for ty in types:
        if ty in (F32, F64):
            if n_float < len(float_args):
                out.append(RegLoc(float_args[n_float]))
                n_float += 1
                continue
        elif n_int < len(int_args):
            out.append(RegLoc(int_args[n_int]))
            n_int += 1
            continue
        out.append(AreaLoc(offset))
        offset += 8
    if offset > ABI_AREA_SIZE - ABI_AREA_RESERVED:
        raise ValueError(f"{len(types)} values do not fit in the ABI area")
    return tuple(out)


def lower_types(types: tuple[int, ...]) -> tuple[int, ...]:
    """``types`` as compiled code holds them: a v128 is two 64-bit halves (low, then high), each typed
    ``V128`` and placed like an i64 (an integer register or an ABI-area word)."""
    if V128 not in types:
        return types
    out: list[int] = []
    for ty in types:
        out.extend((V128, V128) if ty == V128 else (ty,))
    return tuple(out)


def split_v128(types: tuple[int, ...], values: list[int]) -> list[int]:
    """Values of ``types`` with each v128 (an int of 128 bits) split into its two 64-bit halves."""
    out: list[int] = []
    for ty, v in zip(types, values):
        if ty == V128:
            out.extend((v & 0xFFFF_FFFF_FFFF_FFFF, (v >> 64) & 0xFFFF_FFFF_FFFF_FFFF))
        else:
            out.append(v)
    return out


def join_v128(types: tuple[int, ...], values: list[int]) -> list[int]:
    """The inverse of :func:`split_v128`: lowered values back to one value per type."""
    out: list[int] = []
    it = iter(values)
    for ty in types:
        v = next(it)
        out.append(v | next(it) << 64 if ty == V128 else v)
    return out
