"""The host side of the runtime builtins (see :mod:`hwsim.compiler.builtins`).

Each reads its arguments from the argument registers, in the order the code
generator passed them (operands, then the static indices), and writes its
result to a0.  Out-of-bounds operations trap before changing anything, as
the bulk-memory and reference-types proposals require.

Metered code (compiler/codegen/fuel.py) passes bulk operations one more static
operand, a :class:`~hwsim.compiler.builtins.BulkFuel`: with ``RUNTIME`` the
operation's size is charged as fuel once it has succeeded (as wasmtime does),
which may run the checkpoint slow path and trap out of fuel after the work.
"""

from __future__ import annotations

from collections.abc import Callable

from ..compiler.builtins import Builtin, BulkFuel
from ..compiler.errors import CompilerBug
from ..compiler.objlayout import HEADER_BYTES, array_bytes, storage_size, struct_layout
from ..compiler.stackmaps import holds_gc_word
from ..compiler.traps import TrapCode
from ..mmu.bits import PAGE_MASK, PAGE_SHIFT, PAGE_SIZE
from ..wasm.subtyping import canonical_subtype, func_canonical_id
from ..wasm.types import I64, V128, StructType, ref_type_index
from . import exceptions
from .errors import HandleError, HostBufferError, MemoryControlError, ResourceLimitError, SegmentError, Trap
from .gcheap import write_elements
from .threads import Blocked, Wake

MASK32 = 0xFFFF_FFFF


def _args(m, n: int) -> list[int]:
    return [m.get_reg(f"a{i}") for i in range(n)]


def _index(value: int, is64: bool) -> int:
    return value if is64 else value & MASK32


def _ret(m, value: int) -> None:
    m.set_reg("a0", value)


def _mem(instance, index: int):
    return instance.memories[index]


def _is64(mem) -> bool:
    return mem.type.index_type == 0x7E


def _runtime_charge(instance, m, arg: int) -> bool:
    """Does metered code ask the runtime to charge this bulk operation's size (its static operand ``arg``)?"""
    return instance.compiled.metering and m.get_reg(f"a{arg}") == BulkFuel.RUNTIME


def memory_grow(store, instance, m) -> None:
    delta, index = _args(m, 2)
    charge = _runtime_charge(instance, m, 2)
    mem = _mem(instance, index)
    delta = _index(delta, _is64(mem))
    old = mem.grow(delta)
    _ret(m, old if old >= 0 else -1)
    if charge and old >= 0:
        store.consume_fuel(delta)


def _watch(store, m, mem, offset: int, n: int, write: bool) -> None:
    """A guest bulk access: checked against the memory's page states (as the MMU checks loads and
    stores), and shown to the Store's watcher."""
    if mem.ctl is not None:
        mem.ctl.check_guest_access(offset, n, write)
    if store.bulk_access_observers and n:
        pc = m.get_reg("pc") - 4
        for observer in store.bulk_access_observers:
            observer(mem.base, offset, n, write, pc)


def _show_stores(store, m, mem, offset: int, n: int, landing: Callable[[int, int], bytes]) -> None:
    """A guest bulk store is a guest store: before it lands, its bytes in store-watched physical memory are
    shown to the machine's store watches (Machine.watch_stores: the virtio checker's rings), as a loop of
    stores would show them.  ``landing(i, size)`` gives the bytes that land at ``offset + i``."""
    if not m.stores_watched:
        return
    pc = m.get_reg("pc") - 4
    va, end = mem.base + offset, mem.base + offset + n
    while va < end:
        chunk = min(end - va, PAGE_SIZE - (va & PAGE_MASK))
        page = store.page_pa(va)
        if page is not None:  # (a page never touched holds no watched range)
            first = va - mem.base - offset
            m.show_bulk_store(page + (va & PAGE_MASK), chunk, lambda i, size, first=first: landing(first + i, size), pc)
        va += chunk


def memory_fill(store, instance, m) -> None:
    dst, value, n, index = _args(m, 4)
    mem = _mem(instance, index)
    is64 = _is64(mem)
    dst, n = _index(dst, is64), _index(n, is64)
    if dst + n > mem.size_bytes:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    _watch(store, m, mem, dst, n, True)
    _show_stores(store, m, mem, dst, n, lambda _i, size: bytes([value & 0xFF]) * size)
    mem.fill(dst, value, n)
    if _runtime_charge(instance, m, 4):
        store.consume_fuel(n)


def memory_copy(store, instance, m) -> None:
    dst, src, n, dst_index, src_index = _args(m, 5)
    dmem, smem = _mem(instance, dst_index), _mem(instance, src_index)
    dst, src = _index(dst, _is64(dmem)), _index(src, _is64(smem))
    n = _index(n, _is64(dmem) and _is64(smem))
    if dst + n > dmem.size_bytes or src + n > smem.size_bytes:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n:
        _watch(store, m, smem, src, n, False)
        _watch(store, m, dmem, dst, n, True)
        _show_stores(store, m, dmem, dst, n, lambda i, size: store.read_user(smem.base + src + i, size))
        store.copy_user(dmem.base + dst, smem.base + src, n)
    if _runtime_charge(instance, m, 5):
        store.consume_fuel(n)


def memory_init(store, instance, m) -> None:
    dst, src, n, index, data_index = _args(m, 5)
    mem = _mem(instance, index)
    dst, src, n = _index(dst, _is64(mem)), src & MASK32, n & MASK32
    data = instance.datas[data_index]
    if src + n > len(data) or dst + n > mem.size_bytes:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n:
        _watch(store, m, mem, dst, n, True)
        _show_stores(store, m, mem, dst, n, lambda i, size: data[src + i : src + i + size])
        mem.write(dst, data[src : src + n])
    if _runtime_charge(instance, m, 5):
        store.consume_fuel(n)


def data_drop(store, instance, m) -> None:
    (index,) = _args(m, 1)
    instance.datas[index] = b""


def _signed(value: int, is64: bool) -> int:
    bits = 64 if is64 else 32
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def released(store, mem, pages: tuple[int, int], operation: str, pc: Callable[[], int]) -> None:
    """Tell the Store's release observers that the guest's ``operation`` at ``pc()`` released ``pages``
    (``(first, end)``) of ``mem``."""
    first, end = pages
    if store.release_observers and first < end:
        at = pc()
        for observer in store.release_observers:
            observer(mem.base, first << PAGE_SHIFT, (end - first) << PAGE_SHIFT, operation, at)


def _released(store, m, mem, pages: tuple[int, int], operation: str) -> None:
    released(store, mem, pages, operation, lambda: m.get_reg("pc") - 4)  # (the ecall)


def memory_discard(store, instance, m) -> None:
    addr, n, index = _args(m, 3)
    mem = _mem(instance, index)
    is64 = _is64(mem)
    _released(store, m, mem, mem.control().discard(_index(addr, is64), _index(n, is64)), "memory.discard")


def memory_map(store, instance, m) -> None:
    addr, n, prot, index = _args(m, 4)
    mem = _mem(instance, index)
    is64 = _is64(mem)
    _ret(m, mem.control().map(_index(addr, is64), _signed(n, is64), _signed(prot, False)))


def memory_unmap(store, instance, m) -> None:
    addr, n, index = _args(m, 3)
    mem = _mem(instance, index)
    is64 = _is64(mem)
    _released(store, m, mem, mem.control().unmap(_index(addr, is64), _signed(n, is64)), "memory.unmap")


def memory_protect(store, instance, m) -> None:
    addr, n, prot, index = _args(m, 4)
    mem = _mem(instance, index)
    is64 = _is64(mem)
    mem.control().protect(_index(addr, is64), _signed(n, is64), _signed(prot, False))


def _table(instance, index: int):
    return instance.tables[index]


def _tis64(table) -> bool:
    return table.type.index_type == 0x7E


def table_get(store, instance, m) -> None:
    i, index = _args(m, 2)
    table = _table(instance, index)
    i = _index(i, _tis64(table))
    if i >= table.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    _ret(m, table.get(i))


def table_set(store, instance, m) -> None:
    i, value, index = _args(m, 3)
    table = _table(instance, index)
    i = _index(i, _tis64(table))
    if i >= table.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    table.set(i, value)


def table_size(store, instance, m) -> None:
    (index,) = _args(m, 1)
    _ret(m, _table(instance, index).size)


def table_grow(store, instance, m) -> None:
    init, n, index = _args(m, 3)
    charge = _runtime_charge(instance, m, 3)
    table = _table(instance, index)
    n = _index(n, _tis64(table))
    old = table.grow(n, init)
    _ret(m, old)
    if charge and old >= 0:
        store.consume_fuel(n)


def table_fill(store, instance, m) -> None:
    i, value, n, index = _args(m, 4)
    table = _table(instance, index)
    is64 = _tis64(table)
    i, n = _index(i, is64), _index(n, is64)
    if i + n > table.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    table.fill(i, value, n)
    if _runtime_charge(instance, m, 4):
        store.consume_fuel(n)


def table_copy(store, instance, m) -> None:
    dst, src, n, dst_index, src_index = _args(m, 5)
    dt, st = _table(instance, dst_index), _table(instance, src_index)
    dst, src = _index(dst, _tis64(dt)), _index(src, _tis64(st))
    n = _index(n, _tis64(dt) and _tis64(st))
    if dst + n > dt.size or src + n > st.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    if n:  # the entries as one block of bytes (copied first, so overlap is fine): a memmove, not n calls
        entries = bytes(store.phys_view(st.entries + 8 * src, 8 * n))
        store.phys_view(dt.entries + 8 * dst, 8 * n)[:] = entries
    if _runtime_charge(instance, m, 5):
        store.consume_fuel(n)


def table_init(store, instance, m) -> None:
    dst, src, n, index, elem_index = _args(m, 5)
    table = _table(instance, index)
    dst, src, n = _index(dst, _tis64(table)), src & MASK32, n & MASK32
    elems = instance.elems[elem_index]
    if src + n > len(elems) or dst + n > table.size:
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    for k in range(n):
        table.set(dst + k, elems[src + k])
    if _runtime_charge(instance, m, 5):
        store.consume_fuel(n)


def elem_drop(store, instance, m) -> None:
    (index,) = _args(m, 1)
    instance.elems[index] = []


# -- memory handles (hwsim:memory handle_* intrinsics) ------------------------------------------------
# Every misuse traps ``invalid memory-control operation`` with the intrinsic's name and what was wrong
# (the table in hwsim/runtime/handles.py); nothing changes before the trap.


def _handle(store, bits: int):
    """The handle an externref from wasm stands for: live, and of this Store."""
    from .handles import MemoryHandle

    if not bits:
        raise Trap(TrapCode.MEMORY_CONTROL, detail="null memory handle")
    obj = store.externs.get(bits & 0xFFFF_FFFF_FFFF_FFFF)
    if not isinstance(obj, MemoryHandle):
        raise Trap(TrapCode.MEMORY_CONTROL, detail=f"not a memory handle (the externref holds a {type(obj).__name__})")
    return obj


def _handle_call(name: str, fn):
    """``fn()``, with the host-side errors of handle operations turned into the guest's trap."""
    from ..errors import StoreMismatchError

    try:
        return fn()
    except (HandleError, HostBufferError, MemoryControlError, StoreMismatchError, ResourceLimitError) as exc:
        raise Trap(TrapCode.MEMORY_CONTROL, detail=f"{name}: {exc}") from None


def handle_new(store, instance, m) -> None:
    from .handles import MemoryHandle

    (pages,) = _args(m, 1)
    pages &= MASK32
    if not 0 < pages <= 1 << 16:
        raise Trap(TrapCode.MEMORY_CONTROL, detail=f"handle_new: {pages} pages (1 to 65536)")
    handle = _handle_call("handle_new", lambda: MemoryHandle(store, pages))
    _ret(m, store.extern_handle(handle))


def handle_map(store, instance, m) -> None:
    h, addr, writable = _args(m, 3)
    mem = _mem(instance, 0)
    _handle_call(
        "handle_map", lambda: _handle(store, h).map(mem, _index(addr, _is64(mem)), writable=bool(writable & MASK32))
    )


def handle_move(store, instance, m) -> None:
    h, addr = _args(m, 2)
    mem = _mem(instance, 0)
    _handle_call("handle_move", lambda: _handle(store, h).move(mem, _index(addr, _is64(mem))))


def handle_unmap(store, instance, m) -> None:
    (h,) = _args(m, 1)
    _handle_call("handle_unmap", lambda: _handle(store, h).unmap(_mem(instance, 0)))


def handle_pages(store, instance, m) -> None:
    (h,) = _args(m, 1)
    handle = _handle(store, h)
    _handle_call("handle_pages", lambda: handle.check_usable(_mem(instance, 0)))
    _ret(m, handle.pages)


# -- far pointers (hwsim:far grant/revoke; loads and stores are inline) --------------------------------


def _segment_call(fn):
    try:
        return fn()
    except SegmentError as exc:
        raise Trap(TrapCode.SEGMENT_FAULT, detail=str(exc)) from None


def far_grant(store, instance, m) -> None:
    index, offset, length, rights = (v & MASK32 for v in _args(m, 4))
    if index >= len(instance.memories):
        raise Trap(
            TrapCode.SEGMENT_FAULT,
            detail=f"grant: memory {index} does not exist (the instance has {len(instance.memories)})",
        )
    mem = instance.memories[index]
    _ret(m, _segment_call(lambda: instance.segments.grant(mem, offset, length, rights)))


def far_revoke(store, instance, m) -> None:
    (selector,) = _args(m, 1)
    _segment_call(lambda: instance.segments.revoke(selector & MASK32))


# -- metering --------------------------------------------------------------------------------------------


def checkpoint(store, instance, m) -> None:
    """A checkpoint found the fuel count used up (hwsim/runtime/checkpoints.py); every register is kept."""
    store.checkpoint_reached()


# -- the dispatch table -------------------------------------------------------------------------------------
# Every id the compiler can emit (compiler/builtins.Builtin) and the function that serves it, called as
# Threads proposal: wait and notify ----------------------------------------------------------------
# With wasi-threads on (the Store's Scheduler, runtime/threads.py, running a root call), a wait whose
# value matches blocks the thread (Blocked) until a notify on the same address or its timeout in virtual
# time, and notify wakes the oldest waiters.  Otherwise there is one thread per Store, so nobody else can
# be waiting or notify: notify wakes no one (0); a wait whose value differs returns 1 ("not-equal"); one
# whose value matches returns 2 ("timed-out") after a finite timeout, and traps with TrapCode.DEADLOCK
# when the timeout is infinite (negative), where a real runtime would hang forever.  docs/architecture.md,
# *Threads*.

OK, NOT_EQUAL, TIMED_OUT = 0, 1, 2


def _atomic_address(store, m, mem, addr: int, offset: int, size: int) -> int:
    """The checked effective address of a wait or notify: alignment first, then bounds (as compiled atomics)."""
    ea = _index(addr, _is64(mem)) + offset
    if ea % size:
        raise Trap(TrapCode.HEAP_MISALIGNED)
    if ea + size > mem.size_bytes:
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    _watch(store, m, mem, ea, size, False)
    return ea


def memory_atomic_notify(store, instance, m) -> None:
    addr, count, index, offset = _args(m, 4)
    mem = _mem(instance, index)
    ea = _atomic_address(store, m, mem, addr, offset, 4)
    threads = store.threads
    if threads is not None and threads.active and mem.type.shared:
        _ret(m, threads.notify((mem.base, ea), count & MASK32))
    else:
        _ret(m, 0)  # no thread waits: nobody to wake


def _wake_result(why) -> list[int]:
    return [OK if why is Wake.NOTIFIED else TIMED_OUT]


def _wait(store, instance, m, size: int) -> None:
    addr, expected, timeout, index, offset = _args(m, 5)
    mem = _mem(instance, index)
    ea = _atomic_address(store, m, mem, addr, offset, size)
    if not mem.type.shared:
        raise Trap(TrapCode.ATOMIC_WAIT_NON_SHARED_MEMORY)
    value = int.from_bytes(mem.read(ea, size), "little")
    threads = store.threads
    if value != expected & ((1 << 8 * size) - 1):
        _ret(m, NOT_EQUAL)
    elif threads is not None and threads.can_block() and timeout != 0:
        forever = bool(timeout >> 63)
        raise Blocked(
            f"memory.atomic.wait{8 * size} at {ea:#x}",
            _wake_result,
            deadline_ns=None if forever else threads.now_ns + timeout,
            key=(mem.base, ea),
        )
    elif timeout >> 63:  # negative: wait forever, and no other thread can notify
        raise Trap(TrapCode.DEADLOCK)
    else:
        _ret(m, TIMED_OUT)


def memory_atomic_wait32(store, instance, m) -> None:
    _wait(store, instance, m, 4)


def memory_atomic_wait64(store, instance, m) -> None:
    _wait(store, instance, m, 8)


# ``fn(store, instance, machine)`` with the arguments in the ABI registers.  Checked when this module is
# imported: an id without a function (or a function for no id) is a bug, found before anything runs.


def throw(store, instance, m) -> None:
    """``throw``: a0 the tag index, then the payload as a call's arguments (exceptions.py unwinds)."""
    tag = instance.tags[m.get_reg("a0")]
    params = (I64, *tag.type.params)
    payload = store.ecall_args(params)[1:]
    exceptions.throw(store, exceptions.Exn(tag, payload), m.get_reg("pc") - 4)


def throw_ref(store, instance, m) -> None:
    """``throw_ref``: a0 the exnref (null traps); the same exception object is thrown again."""
    exn = exceptions.exn_of(store, m.get_reg("a0"))
    if exn is None:
        raise Trap(TrapCode.NULL_EXCEPTION_REFERENCE)
    exceptions.throw(store, exn, m.get_reg("pc") - 4)


# GC (runtime/gcheap.py) -----------------------------------------------------------------------------


def _gc_type(instance, type_index: int):
    module = instance.module
    return module.gc_types[type_index], module.gc_canon[type_index]


def _gc_new(store, instance, m, type_index: int, length: int, value: int = 0) -> int:
    """A new object of type ``type_index``; ``value``: an array's initial element, a root if a reference."""
    ct, canon = _gc_type(instance, type_index)
    heap = store.gc_heap
    if length >= 1 << 31:  # compiled code reads a length as a signed 32-bit word (codegen/gc.py)
        raise Trap(TrapCode.GC_HEAP_EXHAUSTED, detail=f"an array of {length} elements")
    if isinstance(ct, StructType):
        return heap.allocate(canon, struct_layout(ct)[1], m=m, layout=ct)
    roots = (value,) if holds_gc_word(ct.element.storage) else ()
    return heap.allocate(canon, array_bytes(ct, length), length, m=m, layout=ct, roots=roots)


def gc_alloc(store, instance, m) -> None:
    """``struct.new(_default)``, ``array.new_default``, ``array.new_fixed`` when the object does not fit in
    the allocation buffer (compiled code bumps through it inline): a zeroed object (the code stores the
    fields it has), and a new buffer; a0 the length (arrays, u32), a1 the type index."""
    length, type_index = _args(m, 2)
    heap = store.gc_heap
    heap.retire_buffer()
    va = _gc_new(store, instance, m, type_index, length & MASK32)
    heap.refill_buffer()
    _ret(m, va)


def gc_array_new(store, instance, m) -> None:
    """``array.new``: a0 the value's bits (a float reinterpreted), a1 the length (u32), a2 the type index;
    a v128's high half in a3."""
    value, length, type_index, hi = _args(m, 4)
    length &= MASK32
    ct, _ = _gc_type(instance, type_index)
    if ct.element.storage == V128:
        value |= hi << 64
    va = _gc_new(store, instance, m, type_index, length, value)
    if value and length:
        write_elements(store, va + HEADER_BYTES, ct.element.storage, [value] * length)
    _ret(m, va)


def _gc_array(store, instance, word: int, type_index: int, index: int, n: int):
    """The array at ``word`` (null traps), checked for elements [index, index + n): (address, storage)."""
    if word == 0:
        raise Trap(TrapCode.NULL_ARRAY_REFERENCE)
    _, length = store.gc_heap.header(word)
    if index + n > length:
        raise Trap(TrapCode.ARRAY_OUT_OF_BOUNDS)
    ct, _ = _gc_type(instance, type_index)
    return word + HEADER_BYTES, ct.element.storage


def gc_array_fill(store, instance, m) -> None:
    """``array.fill``: a0 the array, a1 the index, a2 the value's bits, a3 the count, a4 the type index; a
    v128's high half in a5."""
    word, index, value, n, type_index, hi = _args(m, 6)
    index, n = index & MASK32, n & MASK32
    base, storage = _gc_array(store, instance, word, type_index, index, n)
    if storage == V128:
        value |= hi << 64
    if n:
        write_elements(store, base + index * storage_size(storage), storage, [value] * n)


def gc_array_copy(store, instance, m) -> None:
    dst, di, src, si, n, dst_type, src_type = _args(m, 7)
    di, si, n = di & MASK32, si & MASK32, n & MASK32
    dbase, storage = _gc_array(store, instance, dst, dst_type, di, n)
    sbase, _ = _gc_array(store, instance, src, src_type, si, n)
    size = storage_size(storage)
    if n:
        data = bytes(store.phys_view(sbase + si * size, n * size))  # a copy first: the two may overlap
        store.phys_view(dbase + di * size, n * size)[:] = data


def gc_array_init_data(store, instance, m) -> None:
    word, index, offset, n, type_index, data_index = _args(m, 6)
    index, offset, n = index & MASK32, offset & MASK32, n & MASK32
    base, storage = _gc_array(store, instance, word, type_index, index, n)
    size = storage_size(storage)
    data = instance.datas[data_index]
    if offset + n * size > len(data):
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    if n:
        store.phys_view(base + index * size, n * size)[:] = data[offset : offset + n * size]


def gc_array_init_elem(store, instance, m) -> None:
    word, index, offset, n, type_index, elem_index = _args(m, 6)
    index, offset, n = index & MASK32, offset & MASK32, n & MASK32
    base, storage = _gc_array(store, instance, word, type_index, index, n)
    elems = instance.elems[elem_index]
    if offset + n > len(elems):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    if n:
        write_elements(store, base + index * 8, storage, list(elems[offset : offset + n]))


def gc_array_new_data(store, instance, m) -> None:
    offset, n, type_index, data_index = _args(m, 4)
    offset, n = offset & MASK32, n & MASK32
    ct, canon = _gc_type(instance, type_index)
    size = storage_size(ct.element.storage)
    data = instance.datas[data_index]
    if offset + n * size > len(data):
        raise Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)
    va = store.gc_heap.allocate(canon, array_bytes(ct, n), n, m=m, layout=ct)
    if n:
        store.phys_view(va + HEADER_BYTES, n * size)[:] = data[offset : offset + n * size]
    _ret(m, va)


def gc_array_new_elem(store, instance, m) -> None:
    offset, n, type_index, elem_index = _args(m, 4)
    offset, n = offset & MASK32, n & MASK32
    ct, canon = _gc_type(instance, type_index)
    elems = instance.elems[elem_index]
    if offset + n > len(elems):
        raise Trap(TrapCode.TABLE_OUT_OF_BOUNDS)
    va = store.gc_heap.allocate(canon, array_bytes(ct, n), n, m=m, layout=ct)
    if n:
        write_elements(store, va + HEADER_BYTES, ct.element.storage, list(elems[offset : offset + n]))
    _ret(m, va)


def call_indirect_sub(store, instance, m) -> None:
    """``call_indirect`` in a module whose function types declare supertypes: the table element (out of
    bounds, null and a type that is not a subtype trap as call_indirect's do); the code calls it."""
    index, table_index, type_index = _args(m, 3)
    table = _table(instance, table_index)
    index = _index(index, _tis64(table))
    if index >= table.size:
        raise Trap(TrapCode.UNDEFINED_ELEMENT)
    word = table.get(index)
    if word == 0:
        raise Trap(TrapCode.INDIRECT_CALL_TO_NULL)
    record = store.funcrefs[word]
    module = instance.module
    assert module.gc_canon is not None  # lowered
    if not canonical_subtype(func_canonical_id(record.precise_type), module.gc_canon[type_index]):
        raise Trap(TrapCode.BAD_SIGNATURE)
    _ret(m, word)


def gc_test(store, instance, m) -> None:
    """A cast the code cannot test inline (to struct, array or a concrete type): a0 the word, a1 the
    reference type (module-relative); 1 or 0 in a0."""
    word, rt = _args(m, 2)
    module = instance.module
    index = ref_type_index(rt)
    if index is not None and word and (module.gc_types is None or module.gc_types[index] is None):
        record = store.funcrefs.get(word)  # a cast to a function type: the function's canonical type
        assert module.gc_canon is not None  # a module with a concrete cast was lowered
        ok = record is not None and canonical_subtype(func_canonical_id(record.precise_type), module.gc_canon[index])
        _ret(m, 1 if ok else 0)
        return
    _ret(m, 1 if store.gc_heap.test(word, rt, module.gc_canon) else 0)


DISPATCH: dict[Builtin, Callable[..., None]] = {
    Builtin.memory_grow: memory_grow,
    Builtin.memory_fill: memory_fill,
    Builtin.memory_copy: memory_copy,
    Builtin.memory_init: memory_init,
    Builtin.data_drop: data_drop,
    Builtin.table_get: table_get,
    Builtin.table_set: table_set,
    Builtin.table_size: table_size,
    Builtin.table_grow: table_grow,
    Builtin.table_fill: table_fill,
    Builtin.table_copy: table_copy,
    Builtin.table_init: table_init,
    Builtin.elem_drop: elem_drop,
    Builtin.memory_discard: memory_discard,
    Builtin.memory_map: memory_map,
    Builtin.memory_unmap: memory_unmap,
    Builtin.memory_protect: memory_protect,
    Builtin.handle_new: handle_new,
    Builtin.handle_map: handle_map,
    Builtin.handle_move: handle_move,
    Builtin.handle_unmap: handle_unmap,
    Builtin.handle_pages: handle_pages,
    Builtin.far_grant: far_grant,
    Builtin.far_revoke: far_revoke,
    Builtin.checkpoint: checkpoint,
    Builtin.memory_atomic_notify: memory_atomic_notify,
    Builtin.memory_atomic_wait32: memory_atomic_wait32,
    Builtin.memory_atomic_wait64: memory_atomic_wait64,
    Builtin.throw: throw,
    Builtin.throw_ref: throw_ref,
    Builtin.gc_alloc: gc_alloc,
    Builtin.gc_array_new: gc_array_new,
    Builtin.gc_test: gc_test,
    Builtin.gc_array_fill: gc_array_fill,
    Builtin.gc_array_copy: gc_array_copy,
    Builtin.gc_array_init_data: gc_array_init_data,
    Builtin.gc_array_init_elem: gc_array_init_elem,
    Builtin.gc_array_new_data: gc_array_new_data,
    Builtin.gc_array_new_elem: gc_array_new_elem,
    Builtin.call_indirect_sub: call_indirect_sub,
}
if set(DISPATCH) != set(Builtin):
    raise CompilerBug(
        f"builtin dispatch table out of step with compiler/builtins.py: "
        f"{sorted(b.name for b in set(Builtin) ^ set(DISPATCH))}"
    )
