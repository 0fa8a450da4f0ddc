"""The GC heap: struct and array objects in the Store's guest virtual memory, their layout and casts.

Objects are allocated from the data region (``VmStore.alloc_data``: 16-aligned, zeroed, mapped by
hwsim's page tables, so the MMU tools show them), so a reference to one is its guest virtual address,
8-aligned, which the word's other shapes never are (compiler/codegen/gc.py)::

    +0   u32 canonical type id      (wasm/subtyping.py: the process-wide registry)
    +4   u32 length                 (arrays; 0 for a struct)
    +8   fields / elements          (a struct's fields each at its natural alignment; an array's
                                      elements packed at their size: i8 1, i16 2, i32/f32 4, else 8)

The collector is a non-moving mark-sweep, run when an allocation would pass the Store's
``gc_heap_bytes`` limit (or at every allocation under ``stress``); if the live objects still leave no
room, the allocation traps ``out of GC heap memory``.  Freed objects go to free lists by size and are
reused (zeroed); neighbours merge after a sweep, and a larger free block is split when none of the size
is free, so the memory objects take (live or free) stays within twice the limit.  Its roots are exact::

    stack maps     the running wasm frames, walked from the allocating builtin's ecall outwards along
                   the frame-pointer chain (through host functions that called wasm again): in each,
                   the locations its safepoint's stack map names (compiler/stackmaps.py), a register
                   read as the frame had it (saved by a callee, or still in the hart)
    the store      globals, tables, element segments, exception payloads, the reference operand of
                   the allocating instruction, every object the host has been given (pinned)

    threads        every other wasi-thread, switched out where it stopped (runtime/threads.py ``Stop``):
                   blocked in a wait builtin or a host function, or preempted at a metered checkpoint,
                   walked from its saved registers as above

The heap itself is traced exactly (each object's canonical type says which fields are references).
When a root cannot be known exactly (a thread preempted at any instruction, a frame not at a safepoint:
a host callback run at an interrupt) the collection is *deferred*: the heap grows past the limit, up to
the fragmentation room, and the next allocation tries again; meanwhile the scheduler switches threads at
checkpoints only (``wants_safepoints``), so they come to stop at safepoints.  Not yet what the design in docs/gc.md
wants: a moving collector.
"""

from __future__ import annotations

import os
import struct
import time
from typing import TYPE_CHECKING

from ..compiler.objlayout import HEADER_BYTES, array_bytes, storage_size, struct_layout
from ..compiler.traps import TrapCode
from ..wasm import gcops
from ..wasm.subtyping import abstract_top, canonical_kind, canonical_subtype
from ..wasm.types import ANYREF, EQREF, I31REF, StructType, is_nullable, is_ref, ref_type_index
from . import layout as L
from .errors import Trap
from .exceptions import leave_frame
from .threads import Stop

if TYPE_CHECKING:
    from .store import VmStore

_HEADER = struct.Struct("<II")
# The memory objects may take, live or free, as a multiple of the limit on live ones: room for the
# fragmentation of a non-moving heap (live objects between free runs too small for a new one).
FRAGMENTATION_SLACK = 2


class GcHeap:
    """A Store's GC objects: allocation under the Store's limit, collection, reading headers."""

    def __init__(self, store: VmStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.used = 0  # bytes of the live objects (each rounded to 16)
        self.objects: dict[int, int] = {}  # address -> its size (rounded): every object a word may name
        self.free: dict[int, list[int]] = {}  # size -> addresses of freed objects of that size
        # bytes of the data region ever taken for objects (live or free): kept within FRAGMENTATION_SLACK
        # times the limit, so garbage of ever new sizes reuses (splits, merged) free blocks instead of RAM
        self.footprint = 0
        self.layouts: dict[int, object] = {}  # canonical type id -> its composite type (lowered)
        self.pinned: set[int] = set()  # objects the host has been given (GcObject): never freed
        # Collect at every allocation: tests, and HWSIM_GC_STRESS=1 for whole runs (hwsim fuzz --gc).
        self.stress = os.environ.get("HWSIM_GC_STRESS") == "1"
        self.collections = 0
        self.freed = 0  # objects reclaimed, over all collections
        self.deferred = 0  # collections put off: roots not knowable exactly then (a thread not at a safepoint)
        self.deferred_why = ""
        # A collection was deferred for a thread stopped at no safepoint: until one runs, the scheduler switches
        # threads at checkpoints only, not at any instruction (runtime/threads.py instruction_budget).
        self.wants_safepoints = False
        self.last_pause_ns = 0  # host time the last collection took
        self.total_pause_ns = 0

    def allocate(self, canon: int, size: int, length: int = 0, *, m=None, layout=None, roots=()) -> int:
        """A zeroed object of ``size`` bytes with its header written.  ``m``: the hart running the
        allocating builtin (its stack and registers are roots; without it nothing is collected);
        ``roots``: words the caller holds; past the Store's limit after a collection, a trap."""
        size = (size + 15) & ~15
        if layout is not None:
            self.layouts[canon] = layout
        room = FRAGMENTATION_SLACK * self.limit
        deferred = False
        if (self.stress or self.used + size > self.limit) and m is not None:
            deferred = self.collect(m, roots) is None
        # A deferred collection (roots not knowable now: another thread not at a safepoint) lets the heap grow
        # past the limit, up to the fragmentation room; the next allocation tries to collect again.
        if self.used + size > (room if deferred else self.limit):
            why = f" (a collection was deferred: {self.deferred_why})" if deferred else ""
            raise Trap(
                TrapCode.GC_HEAP_EXHAUSTED,
                detail=f"{size} more bytes, {self.used} of the Store's {self.limit} in use by live objects{why}",
            )
        va = self._reuse(size)
        if va is None and self.footprint + size > room and m is not None:
            # the free blocks are too small: merge neighbours, then look again
            deferred = self.collect(m, roots) is None
            va = self._reuse(size)
        if va is None:
            if self.footprint + size > room:
                why = f"; a collection was deferred: {self.deferred_why}" if deferred else ""
                raise Trap(
                    TrapCode.GC_HEAP_EXHAUSTED,
                    detail=f"{size} more bytes: no free run that large in {self.footprint} bytes of objects "
                    f"({self.used} of the Store's {self.limit} in use by live ones, the rest fragmented{why})",
                )
            va = self.store.alloc_data(size)
            self.footprint += size
        self.used += size
        self.store.phys_view(va, HEADER_BYTES)[:] = _HEADER.pack(canon, length)
        self.objects[va] = size
        return va

    def _reuse(self, size: int) -> int | None:
        """A zeroed free block of ``size`` bytes: one of that size, or the start of the smallest larger
        one (the rest stays free); None when no free block is large enough."""
        free = self.free
        reuse = free.get(size)
        if not reuse:
            larger = [s for s, blocks in free.items() if s > size and blocks]
            if not larger:
                return None
            bigger = min(larger)
            rest = free[bigger].pop()
            free.setdefault(bigger - size, []).append(rest + size)
            reuse = [rest]
        va = reuse.pop()
        self.store.phys_view(va, size)[:] = bytes(size)
        return va

    def _merge_free(self) -> None:
        """Merge free blocks that are neighbours in memory (after a sweep): in virtual and in physical
        memory, as an object must be physically contiguous (``phys_view``; the data region grows in
        chunks of contiguous frames, not necessarily contiguous with each other)."""
        blocks = sorted((va, size) for size, vas in self.free.items() for va in vas)
        merged: dict[int, list[int]] = {}
        start, length = None, 0
        for va, size in blocks + [(-1, 0)]:
            if start is not None and va == start + length and self._pa(va) == self._pa(start) + length:
                length += size
                continue
            if start is not None:
                merged.setdefault(length, []).append(start)
            start, length = va, size
        self.free = merged

    def _pa(self, va: int) -> int:
        pa = self.store.page_pa(va)
        assert pa is not None  # the data region is mapped as it is allocated
        return pa + (va & 0xFFF)

    # -- the collector ---------------------------------------------------------------------------------

    def _store_roots(self, roots) -> list[int]:
        """The words the Store holds outside the stack (and ``roots``, the caller's)."""
        store = self.store
        words = list(roots)
        for instance in store.instances.values():
            for g in instance.globals:
                words.append(g.get_bits())
            for t in instance.tables:
                words += t.get_all()
            for elems in instance.elems:
                words += elems
        for exn in getattr(store, "exns", {}).values():
            words += [w for w in exn.payload if isinstance(w, int)]
        return words

    def stack_roots(self, m) -> list[int] | None:
        """The words the stack maps of the running wasm frames name, from the safepoint the hart is
        stopped at (an allocating builtin's ecall, or a host function's: ``Store.gc`` called in one)
        outwards; None when a frame is not at a safepoint."""
        pc, fp = self._past_host_call(m.get_reg("pc"), m.get_reg("s0"), m.get_reg)
        return self._walk(pc, fp, m.get_reg)

    def _past_host_call(self, pc: int, fp: int, reg) -> tuple[int, int]:
        """Stopped in a host function's stub: its wasm caller's safepoint (ra) and fp; else as it is."""
        if L.HOSTCALL_STUB < pc <= L.HOSTCALL_STUB + 16:
            pc = reg("ra")
            if pc == L.TAIL_RETURN_STUB:  # tail-called across instances
                pc, fp = self.store.read_u64(fp - 8), self.store.read_u64(fp - 16)
        return pc, fp

    def thread_roots(self, thread) -> list[int] | None:
        """The words the stack maps of a switched-out wasi-thread's frames name (runtime/threads.py); None
        when it stopped elsewhere than a safepoint (its instruction budget ran out at any instruction)."""
        store = self.store
        context = thread.context

        def reg(name: str) -> int:
            return store.machine.context_reg(context, name)

        pc, fp = thread.pc, reg("s0")
        if thread.stop is Stop.BLOCKED:
            # in a host function (a WASI call): from its caller; in a blocking builtin (memory.atomic.wait*):
            # its return offset has the frame's map
            pc, fp = self._past_host_call(pc, fp, reg)
        elif thread.stop is Stop.CHECKPOINT:
            loaded = store.locate(pc)
            if loaded is None or not loaded.compiled.stack_maps.has(pc - loaded.base):
                return None  # a checkpoint that is not a safepoint (after a bulk operation)
        else:
            return None
        return self._walk(pc, fp, reg)

    def _walk(self, pc: int, fp: int, reg) -> list[int] | None:
        """From a frame stopped at the safepoint returning to ``pc`` (its fp ``fp``, registers read with
        ``reg``) outwards to the host's call."""
        store = self.store
        read = store.read_u64
        restored: dict[int, int] = {}  # DWARF register -> its value in the frame being looked at
        words: list[int] = []
        entry_fp = fp  # the frame left last: at a host entry, the entry's sp
        while True:
            loaded = store.locate(pc)
            if loaded is None:
                if pc == L.EXIT_ADDRESS:
                    return words  # the host's call into wasm: every frame seen
                if pc != L.NESTED_EXIT_ADDRESS:
                    return None
                # A host function's call into wasm: on to the frames of the run its ecall interrupted
                # (layout.NESTED_RECORD at this entry's sp, which the entry frame's fp is).
                s0, ra, _, at = read(entry_fp), read(entry_fp + 8), read(entry_fp + 16), read(entry_fp + 24)
                if not L.HOSTCALL_STUB < at <= L.HOSTCALL_STUB + 16:
                    return None  # stopped elsewhere than a host call: no safepoint there
                pc, fp = ra, s0
                if pc == L.TAIL_RETURN_STUB:  # the host function was tail-called across instances
                    pc, fp = read(fp - 8), read(fp - 16)
                continue
            offset = pc - loaded.base
            for loc in loaded.compiled.stack_maps.at(offset):
                if loc < 0:
                    words.append(read(fp + loc))
                elif loc in restored:
                    words.append(restored[loc])
                else:
                    words.append(reg(f"x{loc}"))
            caller = leave_frame(store, loaded, offset - 4, fp, restored)
            if caller is None:
                return None
            entry_fp = fp
            pc, fp = caller

    def collect(self, m=None, roots=()) -> int | None:
        """Mark from the roots, sweep the rest onto the free lists; how many objects were freed, or None
        when the roots cannot be known exactly now (the collection is deferred: ``deferred_why`` says why).
        ``m``: the hart, stopped at a safepoint of the running wasm; None: no wasm runs (``Store.gc``)."""
        store = self.store
        start = time.perf_counter_ns()
        if m is None:
            if store.depth:
                self._defer("wasm is running and no hart was given")
                return None
            words = self._store_roots(roots)
        else:
            sp = m.get_reg("sp")
            if not (L.STACK_TOP - L.STACK_SIZE <= sp <= L.STACK_TOP or L.in_thread_stack(sp)):
                self._defer("the hart is not on a stack of the Store")  # a caller's own: not scannable
                return None
            stack = self.stack_roots(m)
            if stack is None:
                self._defer("a frame on the stack is not at a safepoint")
                return None
            words = stack + self._store_roots(roots)
        threads = getattr(store, "threads", None)
        if threads is not None and threads.active:  # every other wasi-thread is switched out: walk it too
            for thread in threads.stopped():
                more = self.thread_roots(thread)
                if more is None:
                    self._defer(f"thread {thread.tid} stopped {thread.stop.value}, not at a safepoint")
                    self.wants_safepoints = True  # the scheduler preempts at checkpoints only, until a collection
                    return None
                words += more
        objects = self.objects
        marked: set[int] = set()
        work = [w for w in words if w in objects] + list(self.pinned)
        while work:
            va = work.pop()
            if va in marked:
                continue
            marked.add(va)
            work += [w for w in self._fields(va) if w in objects and w not in marked]
        freed = 0
        for va in [va for va in objects if va not in marked]:
            size = objects.pop(va)
            self.used -= size
            self.free.setdefault(size, []).append(va)
            freed += 1
        self._merge_free()
        self.collections += 1
        self.freed += freed
        self.wants_safepoints = False
        self.last_pause_ns = time.perf_counter_ns() - start
        self.total_pause_ns += self.last_pause_ns
        return freed

    def reference_words(self) -> list[int]:
        """Every reference word the objects hold (host handles among them: ``Store.gc`` keeps those)."""
        return [w for va in self.objects for w in self._fields(va)]

    def _defer(self, why: str) -> None:
        self.deferred += 1
        self.deferred_why = why

    def _fields(self, va: int) -> list[int]:
        """The reference words an object holds."""
        canon, length = self.header(va)
        ct = self.layouts.get(canon)
        if ct is None:
            return []
        view = self.store.phys_view(va, self.objects[va])
        if isinstance(ct, StructType):
            offsets, _ = struct_layout(ct)
            return [struct.unpack_from("<Q", view, off)[0] for f, off in zip(ct.fields, offsets) if is_ref(f.storage)]
        if not is_ref(ct.element.storage):  # type: ignore[attr-defined]
            return []
        return list(struct.unpack_from(f"<{length}Q", view, HEADER_BYTES))

    def read_field(self, va: int, index: int) -> tuple[int, int] | None:
        """Field ``index`` of the struct at ``va``, or element ``index`` of the array: (its storage type, its
        bits, unsigned: a v128's 128); None past the last one."""
        canon, length = self.header(va)
        ct = self.layouts[canon]
        if isinstance(ct, StructType):
            if not 0 <= index < len(ct.fields):
                return None
            storage, offset = ct.fields[index].storage, struct_layout(ct)[0][index]
        else:
            if not 0 <= index < length:
                return None
            storage = ct.element.storage  # type: ignore[attr-defined]
            offset = HEADER_BYTES + index * storage_size(storage)
        size = storage_size(storage)
        return storage, int.from_bytes(self.store.phys_view(va + offset, size), "little")

    def field_count(self, va: int) -> int:
        """A struct's fields or an array's elements: how many."""
        canon, length = self.header(va)
        ct = self.layouts[canon]
        return len(ct.fields) if isinstance(ct, StructType) else length

    def header(self, va: int) -> tuple[int, int]:
        """(canonical type id, length) of the object at ``va``."""
        canon, length = _HEADER.unpack(self.store.phys_view(va, HEADER_BYTES))
        return canon, length

    def is_object(self, word: int) -> bool:
        return word != 0 and word & 7 == 0 and word in self.objects

    def pin(self, va: int) -> None:
        """Keep an object the host was given (it may hold it anywhere)."""
        self.pinned.add(va)

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
        va = heap.allocate(canon, size, layout=ct)
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
        if array_bytes(ct, length) > heap.limit or length >= 1 << 31:
            raise Trap(TrapCode.GC_HEAP_EXHAUSTED, detail=f"an array of {length} elements")
        values = [value] * length
    va = heap.allocate(canon, array_bytes(ct, len(values)), len(values), layout=ct)
    if any(values):
        write_elements(store, va + HEADER_BYTES, ct.element.storage, values)
    return va


def i64_bits(storage: int, value: int) -> int:
    """Mask a value's bits to its storage size, for writing (f32 and i32 as 4 bytes, ...)."""
    size = storage_size(storage)
    return value & ((1 << (8 * size)) - 1)


_PACK = {1: "<B", 2: "<H", 4: "<I", 8: "<Q"}


def write_elements(store: VmStore, va: int, storage: int, values: list[int]) -> None:
    """Write ``values`` (bit patterns; a v128 its 128-bit integer) as consecutive elements of ``storage``."""
    size = storage_size(storage)
    view = store.phys_view(va, size * len(values))
    if size == 16:
        for i, v in enumerate(values):
            view[16 * i : 16 * i + 16] = i64_bits(storage, v).to_bytes(16, "little")
        return
    fmt = struct.Struct(_PACK[size])
    for i, v in enumerate(values):
        fmt.pack_into(view, i * size, i64_bits(storage, v))
