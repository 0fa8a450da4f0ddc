"""Where everything lives in a Store's guest virtual address space (the records compiled code reads: compiler/abi.py).

One Store is one Sv39 address space; compiled code runs in U-mode::

    0x0000_0000_0000  null guard (unmapped, 64 KiB)
    0x0000_0001_0000  runtime page (r-x): the host-call stub, the tail-call return stub, the exit address
    0x0000_0002_0000  ABI area (rw-): arguments and results that do not fit in registers
    0x0000_0010_0000  code region (r-x): each module's code, position independent
    0x0000_4001_8000  data region (rw-): vmctx, funcref records, global cells, descriptors, tables
    0x0001_03f3_0000  top of the guest stack (rw-, an unmapped guard below it); wasi-threads' stacks above it
    0x0002_0000_0000  linear-memory reservations, 4 GiB + 2 GiB guard each, to the top of the lower half
    upper half        more reservations

Linear memories (32-bit index) get a reservation of 4 GiB plus a 2 GiB guard
(as Wasmtime does), so an address ``base + zext(i32) + offset`` with
``offset < MEMORY_GUARD`` always lands inside the memory's own reservation:
bounds are checked by the MMU.  Compilers put static data at offsets of a
megabyte or more, so a small guard would force explicit checks on every
global access.  A Store has room for 83 such memories.
A memory64 memory is bounds checked in compiled code, so it needs no guard: it
takes consecutive 6 GiB slots for its maximum (at most ``MEMORY64_MAX_BYTES``,
128 GiB), or, without a maximum, for its initial size, and grows into the slots
right after it while they are free (the memory reserved last).
Pages below the memory's current size are mapped when first touched (demand
paging by the Store's pager): a declared size costs nothing until used.

The data region and the stack top are a few pages off round addresses, on purpose.  The emulated
CPU's data TLB (QEMU's softmmu TLB) is direct mapped, indexed by bits 12 and up of the virtual
address (256 entries at first; QEMU resizes it, never below 64, so sets apart modulo 64 stay
apart).  Linear memories start at multiples of 2 GiB, so a program's hot linear pages take the sets
of their wasm addresses, and compilers put those around 0 and 1 MiB (data at 1 KiB or 1 MiB, a
shadow stack just below 1 MiB): sets 0x00-0x10 and 0x30-0x3f modulo 64.  With the vmctx at
0x4000_0000 (set 0) and the stack top at 0x1_0400_0000 (set 0x3f below it), every spill and vmctx
load evicted a linear-memory page and the next wasm load took QEMU's slow path (SHA-256 ran 2.5x
slower; ``bench/vs_wasm3.py``).  The vmctx now sits in set 0x18 and the first stack page in set 0x2f.

The ABI shared with compiled code (the ABI area, the vmctx and the records it
points to, value locations) is :mod:`hwsim.compiler.abi`; its names are
re-exported here, so runtime code reads the whole map as ``layout.X``.
"""

from __future__ import annotations

from ..compiler.abi import (  # noqa: F401
    ABI_AREA,
    ABI_AREA_RESERVED,
    ABI_AREA_SIZE,
    BULK_INLINE_MAX,
    FUNCREF_BYTES,
    FUNCREF_CODE,
    FUNCREF_TYPE,
    FUNCREF_VMCTX,
    MEMDESC_BASE,
    MEMDESC_BULK_HOST,
    MEMDESC_BYTES,
    MEMDESC_PAGE_LOG2,
    MEMDESC_RESERVED,
    MEMDESC_SIZE,
    MEMORY_GUARD,
    PAGE,
    RUNTIME_PAGE,
    SEGMENT_CAPACITY,
    SEGMENT_DESC,
    SEGMENT_HEADER,
    TABLEDESC_BASE,
    TABLEDESC_BYTES,
    TABLEDESC_SIZE,
    TAIL_FRAME_BYTES,
    TAIL_RETURN_STUB,
    VmctxLayout,
)

HOSTCALL_STUB = RUNTIME_PAGE + 0x000  # li t0, 0; ecall; ret -- a host function's code address
EXIT_ADDRESS = RUNTIME_PAGE + 0x800  # the return address of every host -> wasm entry; never executed
NESTED_EXIT_ADDRESS = RUNTIME_PAGE + 0x810  # the same, for an entry made while the host serves an ecall
# Left by such an entry just above its stack, for a debugger to find the code the ecall interrupted
# (hwsim/debug/cfi.py): its fp, ra, sp and pc (past the ecall, or the next instruction), a u64 each.
NESTED_RECORD = ("s0", "ra", "sp", "pc")
ABI_STACK_LIMIT = ABI_AREA + ABI_AREA_SIZE - 8  # lowest legal sp, for frames larger than the stack guard

CODE_BASE = 0x10_0000
CODE_END = 0x4000_0000
DATA_BASE = 0x4000_0000 + (0x18 << 12)  # TLB set 0x18: see the module docstring
DATA_END = 0x1_0000_0000
STACK_TOP = 0x1_0000_0000 + (64 << 20) - (0xD0 << 12)  # 0x1_03f3_0000: the first stack page in TLB set 0x2f
STACK_SIZE = 8 << 20
STACK_GUARD = 64 << 10
# wasi-threads (runtime/threads.py): thread k >= 1 has the stack [top - STACK_SIZE, top) with
# top = thread_stack_top(k), above the root's; the rest of its slot, under the stack, stays unmapped
# (a guard: an overflow faults there and traps "call stack exhausted").
THREAD_STACK_SLOT = 2 * STACK_SIZE
THREAD_STACKS = 240  # slots, the root's (0) included: up to 0x1_f400_0000, below the memory reservations
THREAD_STACKS_END = STACK_TOP + (THREAD_STACKS - 1) * THREAD_STACK_SLOT


def thread_stack_top(slot: int) -> int:
    """The initial sp of the thread in stack slot ``slot`` (0: the root call's, ``STACK_TOP``)."""
    return STACK_TOP + slot * THREAD_STACK_SLOT


def in_thread_stack(va: int) -> bool:
    """Is ``va`` in the stack (not the guard) of a thread slot k >= 1?"""
    return STACK_TOP <= va < THREAD_STACKS_END and (va - STACK_TOP) % THREAD_STACK_SLOT >= STACK_SIZE


MEMORY_MAX_BYTES = 1 << 32  # a 32-bit memory's largest size
# A memory64 memory's largest size: 128 GiB, half of one Sv39 half (each half holds 256 GiB of user or
# upper addresses; the lower one also holds code, data and stack below 8 GiB), so one memory that large
# still leaves either half room for others.  Sv48 would allow 128 TiB; hwsim's MMU is Sv39.
MEMORY64_MAX_BYTES = 128 << 30
MEMORY_RESERVATION = MEMORY_MAX_BYTES + MEMORY_GUARD  # 6 GiB of virtual address space per memory
MEMORY_REGIONS = ((0x2_0000_0000, 1 << 38), ((1 << 64) - (1 << 38), 1 << 64))  # [start, end) of each area
