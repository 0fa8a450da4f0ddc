"""Runtime builtins: operations compiled code asks the host for, through ``ecall``.

Compiled code loads the builtin's id into t6 and executes ``ecall``; arguments
and results follow the ordinary calling convention, the static operands
(memory, table, segment indices) come last as i64 arguments.  A host
function's stub uses the same ``ecall`` with t6 holding its funcref record,
whose address is far above any builtin id.

``checkpoint`` is the slow path of metered code's checkpoints (a function
entry or a loop header that found the fuel count zero or negative): no
arguments, no result, every register kept.  In metered code the bulk
operations (``memory.fill/copy/init/grow``, ``table.fill/copy/init/grow``)
take one more static operand last, :class:`BulkFuel`: whether the runtime
charges their size as fuel after the operation (see hwsim/compiler/codegen/fuel.py).
"""

from __future__ import annotations

import enum


class Builtin(enum.IntEnum):
    memory_grow = 1
    memory_fill = 2
    memory_copy = 3
    memory_init = 4
    data_drop = 5
    table_get = 6
    table_set = 7
    table_size = 8
    table_grow = 9
    table_fill = 10
    table_copy = 11
    table_init = 12
    elem_drop = 13
    memory_discard = 14
    memory_map = 15
    memory_unmap = 16
    memory_protect = 17
    handle_new = 18
    handle_map = 19
    handle_move = 20
    handle_unmap = 21
    handle_pages = 22
    far_grant = 23
    far_revoke = 24
    checkpoint = 25
    # threads proposal: (addr, operands..., memory index, static offset)
    memory_atomic_notify = 26
    memory_atomic_wait32 = 27
    memory_atomic_wait64 = 28
    # exception handling: (tag index, payload...) and (exnref); neither returns (docs/exceptions.md)
    throw = 29
    throw_ref = 30
    # GC (runtime/gcheap.py)
    gc_alloc = 31  # (length, type index) -> a zeroed object's address
    gc_array_new = 32  # (value bits, length, type index) -> an array filled with the value
    gc_test = 33  # (word, reference type) -> 1 when the word is of the type (casts the code cannot do inline)
    gc_array_fill = 34  # (array, index, value bits, count, type index)
    gc_array_copy = 35  # (dst array, dst index, src array, src index, count, dst type, src type)
    gc_array_init_data = 36  # (array, index, segment offset, count, type index, data index)
    gc_array_init_elem = 37  # (array, index, segment offset, count, type index, element index)
    gc_array_new_data = 38  # (segment offset, length, type index, data index) -> array
    gc_array_new_elem = 39  # (segment offset, length, type index, element index) -> array
    call_indirect_sub = 40  # (table index, table, type index) -> the funcref, checked by subtyping


# The builtins that allocate GC objects, so may collect: safepoints, each with a stack map (stackmaps.py).
ALLOCATING = frozenset((Builtin.gc_alloc, Builtin.gc_array_new, Builtin.gc_array_new_data, Builtin.gc_array_new_elem))
# The builtins a wasi-thread can block in (runtime/threads.py): safepoints too, so that a collection while the
# thread waits walks its frames.
BLOCKING = frozenset((Builtin.memory_atomic_wait32, Builtin.memory_atomic_wait64))


class BulkFuel(enum.IntEnum):
    """The last static operand of a bulk operation in metered code: who charges its size."""

    COMPILED = 0  # counted by the compiled code: a small constant size (as wasmtime folds it), or the size of
    # a memory.copy/fill compiled in place, charged after its host path returns
    RUNTIME = 1  # the runtime charges the size once the operation succeeds, then checks the count


MAX_BUILTIN = max(Builtin)
