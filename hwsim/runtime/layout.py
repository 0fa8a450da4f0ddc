"""Where everything lives in a Store's guest virtual address space, and the layout of runtime records.

One Store is one Sv39 address space; compiled code runs in U-mode::

    0x0000_0000_0000  null guard (unmapped, 64 KiB)
    0x0000_0001_0000  runtime page (r-x): the host-call stub, the exit address
    0x0000_0002_0000  ABI area (rw-): arguments and results that do not fit in registers
    0x0000_0010_0000  code region (r-x): each module's code, position independent
    0x0000_4000_0000  data region (rw-): vmctx, funcref records, global cells, descriptors, tables
    0x0001_0000_0000  guest stack (rw-), with an unmapped guard below it
    0x0002_0000_0000  linear-memory reservations, 4 GiB + 2 GiB guard each, to the top of the lower half
    upper half        more reservations

Linear memories (32-bit index) get a reservation of 4 GiB plus a 2 GiB guard
(as Wasmtime does), so an address ``base + zext(i32) + offset`` with
``offset < MEMORY_GUARD`` always lands inside the memory's own reservation:
bounds are checked by the MMU.  Compilers put static data at offsets of a
megabyte or more, so a small guard would force explicit checks on every
global access.  A Store has room for 83 such memories.
Pages below the memory's current size are mapped when first touched (demand
paging by the Store's pager): a declared size costs nothing until used.

A **vmctx** (one per instance) is an array of 8-byte words the compiled code
reads through a pinned register.  Its layout depends on the module
(:class:`VmctxLayout`); entries point to shared records, so imported and
exported memories, tables and globals stay one object::

    memory descriptor  { base VA, size in bytes, page size log2, reserved bytes }
    table descriptor   { entries VA, size (elements) }
    global cell        { value }
    funcref record     { code VA, vmctx VA, type id }
"""

from __future__ import annotations

from dataclasses import dataclass

PAGE = 0x1000

RUNTIME_PAGE = 0x1_0000
HOSTCALL_STUB = RUNTIME_PAGE + 0x000  # li t0, 0; ecall; ret -- a host function's code address
EXIT_ADDRESS = RUNTIME_PAGE + 0x800  # the return address of every host -> wasm entry; never executed
ABI_AREA = 0x2_0000
ABI_AREA_SIZE = 2 * PAGE  # arguments and results past the registers: up to 1000 of each (MAX_PARAMS)
ABI_STACK_LIMIT = ABI_AREA + ABI_AREA_SIZE - 8  # lowest legal sp, for frames larger than the stack guard

CODE_BASE = 0x10_0000
CODE_END = 0x4000_0000
DATA_BASE = 0x4000_0000
DATA_END = 0x1_0000_0000
STACK_TOP = 0x1_0000_0000 + (64 << 20)
STACK_SIZE = 8 << 20
STACK_GUARD = 64 << 10

MEMORY_MAX_BYTES = 1 << 32  # a 32-bit memory's largest size
MEMORY_GUARD = 2 << 30  # static offsets (plus access size) up to this need no explicit bounds check
MEMORY_RESERVATION = MEMORY_MAX_BYTES + MEMORY_GUARD  # 6 GiB of virtual address space per memory
MEMORY_REGIONS = ((0x2_0000_0000, 1 << 38), ((1 << 64) - (1 << 38), 1 << 64))  # [start, end) of each area

# Far-pointer segment tables (hwsim/runtime/segments.py): selectors per instance, bytes per descriptor.
SEGMENT_CAPACITY = 256
SEGMENT_HEADER = 16
SEGMENT_DESC = 32

# Memory descriptor fields.
MEMDESC_BASE = 0
MEMDESC_SIZE = 8
MEMDESC_PAGE_LOG2 = 16
MEMDESC_RESERVED = 24
MEMDESC_BYTES = 32

# Table descriptor fields.
TABLEDESC_BASE = 0
TABLEDESC_SIZE = 8
TABLEDESC_BYTES = 16

# Funcref record fields.
FUNCREF_CODE = 0
FUNCREF_VMCTX = 8
FUNCREF_TYPE = 16
FUNCREF_BYTES = 24


@dataclass(frozen=True)
class VmctxLayout:
    """Offsets in a module's vmctx: one 8-byte word per memory, table, global, function and type.

    Words hold the address of the memory descriptor, table descriptor, global
    cell or funcref record, and for a type its canonical type id.  Memory 0's
    base address is also kept at ``MEM0_BASE`` for the entry trampoline.
    """

    num_memories: int
    num_tables: int
    num_globals: int
    num_funcs: int
    num_types: int

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
    def size(self) -> int:
        return self.segments + 8
