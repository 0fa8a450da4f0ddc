"""The GC heap: struct and array objects in the Store's guest virtual memory, their layout and casts.

Objects are allocated from the data region (``VmStore.alloc_data``: 16-aligned, zeroed, mapped by
hwsim's page tables, so the MMU tools show them), so a reference to one is its guest virtual address,
8-aligned, which the word's other shapes never are (compiler/codegen/gc.py)::

    +0   u32 Store type id          (VmStore.type_id: one per canonical type, dense; ``header`` maps
                                      it back to the canonical id of wasm/subtyping.py's registry)
    +4   u32 length                 (arrays; 0 for a struct)
    +8   fields / elements          (a struct's fields each at its natural alignment; an array's
                                      elements packed at their size: i8 1, i16 2, i32/f32 4, else 8)

Compiled code allocates inline from the Store's **allocation buffer**, a zeroed chunk of the heap whose
cursor and end are the GC record's first two words (compiler/abi.py; every vmctx of a module with
typed references points to the record)::

    buffer      scan            cursor                   end
      |  objects  | objects not yet |   zeroed, unused       |
      |  known    | in ``objects``  |   (counted as in use)  |

Only when an object does not fit (or there is no buffer) does the code call the ``gc_alloc`` builtin,
the slow path: it retires the buffer (the objects compiled code put in it become known, the unused tail
goes back to the free blocks), allocates the object as any builtin does (collecting first when the limit
requires it), and hands out a new buffer of at most ``BUFFER_BYTES`` from what the limit leaves.  A
collection retires the buffer first, so the sweep sees objects only, never the tail.  No buffer is handed
out under ``stress`` (every allocation takes the slow path and collects) nor once wasi-threads are on (a
thread could be preempted between loading the cursor and storing it back: they all take the slow path).

Casts to concrete types read the **type descriptor** of a header's Store type id (or of a funcref
record's), in a table the guest can read but not write: the type's depth and the canonical ids of its
supertype chain from the root (its *display*).  Is ``a`` a subtype of ``b`` (depth ``d``)?  ``a``'s
depth >= ``d`` and ``display[d]`` is ``b``'s canonical id (compiler/codegen/gc.py, inline).

The collector is a non-moving mark-sweep, run when an allocation would pass the Store's
``gc_heap_bytes`` limit (or at every allocation under ``stress``); if the live objects still leave no
room, the allocation traps ``out of GC heap memory``.  After the mark, the free blocks are the heap's
arena less the live objects (by size, reused zeroed; a larger one is split when none of the size is
free), so the memory objects take (live or free) stays within twice the limit.  Its roots are exact::

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

import bisect
import os
import struct
import time
from typing import TYPE_CHECKING

from ..compiler import abi
from ..compiler.objlayout import HEADER_BYTES, array_bytes, storage_size, struct_layout
from ..compiler.stackmaps import holds_gc_word
from ..compiler.traps import TrapCode
from ..wasm import gcops
from ..wasm.subtyping import abstract_top, canonical_kind, canonical_subtype, canonical_supertype
from ..wasm.types import ANYREF, EQREF, I31REF, StructType, is_nullable, ref_type_index
from . import layout as L
from .errors import HeapCorruptError, ResourceLimitError, Trap
from .exceptions import leave_frame
from .threads import Stop

if TYPE_CHECKING:
    from .store import VmStore

_HEADER = struct.Struct("<II")
_WORD = struct.Struct("<Q")
_DESCRIPTOR = struct.Struct(f"<HH{abi.GC_DISPLAY}I")  # compiler/abi.py: depth, kind, display
_NO_TYPE = 0xFFFF_FFFF  # a display entry past a type's depth: no canonical id
# The allocation buffer compiled code bumps through: at most this much of the heap at a time.
BUFFER_BYTES = 64 << 10
# A smaller remainder under the limit is not worth a buffer: the builtin allocates until a collection.
BUFFER_MIN = 256
# The memory objects may take, live or free, as a multiple of the limit on live ones: room for the
# fragmentation of a non-moving heap (live objects between free runs too small for a new one).
FRAGMENTATION_SLACK = 2
_END = 1 << 64  # past every address: bisects the arena's [start, end] spans by start


class GcHeap:
    """A Store's GC objects: allocation under the Store's limit, collection, reading headers."""

    def __init__(self, store: VmStore, limit: int) -> None:
        self.store = store
        self.limit = limit
        self.used = 0  # bytes of the live objects (each rounded to 16)
        # address -> its size (rounded): the live objects of the last collection and those the builtins
        # allocated since; compiled code's are in ``unscanned`` until a host path needs them (``known``)
        self.objects: dict[int, int] = {}
        self.unscanned: list[tuple[int, int]] = []  # retired buffers' allocated spans since the collection
        self.free: dict[int, list[int]] = {}  # size -> addresses of freed objects of that size
        # bytes of the data region ever taken for objects (live or free): kept within FRAGMENTATION_SLACK
        # times the limit, so garbage of ever new sizes reuses (splits, merged) free blocks instead of RAM
        self.footprint = 0
        # The data-region spans the heap took (objects, free blocks, buffers all lie in them), in address
        # order, each physically contiguous: what a sweep divides into live objects and free runs.
        self.arena: list[list[int]] = []
        self.layouts: dict[int, object] = {}  # canonical type id -> its composite type (lowered)
        self.pinned: set[int] = set()  # objects the host has been given (GcObject): never freed
        # Collect at every allocation: tests, and HWSIM_GC_STRESS=1 for whole runs (hwsim fuzz --gc).
        self.stress = os.environ.get("HWSIM_GC_STRESS") == "1"
        self.collections = 0
        self.freed = 0  # bytes reclaimed, over all collections
        # Store type ids (VmStore.type_id) and canonical ids, both ways, and each id's type descriptor.
        self.canon_of: dict[int, int] = {}
        self.tid_of: dict[int, int] = {}
        # (Store type ids start at 1: id 0's descriptor names no type, so a zeroed header is of none.)
        self.descriptors: dict[int, bytes] = {0: _DESCRIPTOR.pack(0, 0, *[_NO_TYPE] * abi.GC_DISPLAY)}
        self._sizes: dict[int, tuple[int, int]] = {}  # Store type id -> (fixed bytes, bytes per element)
        self._trace: dict[int, tuple[int, int, tuple[int, ...] | None]] = {}  # Store type id -> _trace_of
        self.record = 0  # the GC record's address (made with the first module using typed references)
        self._table = (0, 0, 0)  # the descriptor table: its address, physical address, capacity
        self.buffer_scan = 0  # the allocation buffer: objects below this are in ``objects`` or ``unscanned``
        self.buffer_end = 0  # 0: no buffer

        self.deferred = 0  # collections put off: roots not knowable exactly then (a thread not at a safepoint)
        self.deferred_why = ""
        # A collection was deferred for a thread stopped at no safepoint: until one runs, the scheduler switches
        # threads at checkpoints only, not at any instruction (runtime/threads.py instruction_budget).
        self.wants_safepoints = False
        self.last_pause_ns = 0  # host time the last collection took
        self.total_pause_ns = 0

    # -- types -----------------------------------------------------------------------------------------

    def register_type(self, tid: int, canon: int) -> None:
        """Store type id ``tid`` stands for canonical type ``canon``: its descriptor (depth, display)."""
        if canon >= _NO_TYPE:
            raise ResourceLimitError(f"canonical type id {canon}: the process has registered 2**32 - 1 types")
        self.canon_of[tid] = canon
        self.tid_of.setdefault(canon, tid)
        chain = [canon]
        while (sup := canonical_supertype(chain[-1])) is not None:
            chain.append(sup)
        chain.reverse()
        display = chain[: abi.GC_DISPLAY] + [_NO_TYPE] * (abi.GC_DISPLAY - min(len(chain), abi.GC_DISPLAY))
        self.descriptors[tid] = _DESCRIPTOR.pack(min(len(chain) - 1, 0xFFFF), canonical_kind(canon), *display)
        if self.record:
            self._write_descriptor(tid)

    def add_layouts(self, gc_types, gc_canon) -> None:
        """A module's struct and array types (lowered), by canonical id: what compiled code allocates."""
        for ct, canon in zip(gc_types, gc_canon):
            if ct is not None:
                self.layouts[canon] = ct

    def vm_record(self) -> int:
        """The GC record's address (compiler/abi.py), made on first use with the descriptor table."""
        if not self.record:
            self.record = self.store.alloc_data(abi.GC_RECORD_BYTES)
            self._grow_table(max(self.descriptors, default=0) + 1)
        return self.record

    def _grow_table(self, need: int) -> None:
        capacity = max(need, 2 * self._table[2], abi.PAGE // abi.GC_DESC_BYTES)
        va, pa = self.store.alloc_readonly(capacity * abi.GC_DESC_BYTES, "the GC type descriptors")
        self._table = (va, pa, capacity)
        self.store.write_u64(self.record + abi.GC_DESCRIPTORS, va)
        for tid in self.descriptors:
            self._write_descriptor(tid)

    def _write_descriptor(self, tid: int) -> None:
        if tid >= self._table[2]:
            self._grow_table(tid + 1)
            return
        self.store.machine.phys.write(self._table[1] + tid * abi.GC_DESC_BYTES, self.descriptors[tid])
        count = self.store.read_u64(self.record + abi.GC_DESCRIPTOR_COUNT)
        self.store.write_u64(self.record + abi.GC_DESCRIPTOR_COUNT, max(count, tid + 1))

    # -- the allocation buffer -------------------------------------------------------------------------

    def known(self) -> dict[int, int]:
        """``objects`` with every object compiled code allocated since the last collection in it: a walk of
        those spans header by header, for the host's rare questions (``Store.gc``'s externrefs, statistics);
        the collector never needs it (its roots are typed: ``collect``)."""
        if self.buffer_end:
            cursor = self._cursor()
            if cursor > self.buffer_scan:
                self.unscanned.append((self.buffer_scan, cursor))
                self.buffer_scan = cursor
        view, objects = self.store.phys_view, self.objects
        for start, end in self.unscanned:
            span = view(start, end - start)  # one block: physically contiguous
            off = 0
            while off < end - start:
                size = self._object_size(span, off)
                objects[start + off] = size
                off += size
        self.unscanned.clear()
        return objects

    def _cursor(self) -> int:
        """The allocation buffer's cursor, as compiled code left it (within the buffer, or the heap is corrupt)."""
        cursor = self.store.read_u64(self.record + abi.GC_CURSOR)
        if not self.buffer_scan <= cursor <= self.buffer_end or cursor & 15:
            raise HeapCorruptError(
                f"the allocation buffer's cursor {cursor:#x} is not in its buffer [{self.buffer_scan:#x}, {self.buffer_end:#x})"
            )
        return cursor

    def _object_size(self, view, off: int) -> int:
        """The size (rounded to 16) of the object whose header is at ``off`` in ``view``."""
        tid, length = _HEADER.unpack_from(view, off)
        fixed, per = self._sizes.get(tid) or self._size_of(tid)
        return (fixed + per * length + 15) & ~15

    def _size_of(self, tid: int) -> tuple[int, int]:
        ct = self.layouts.get(self.canon_of.get(tid, -1))
        if ct is None:
            raise HeapCorruptError(f"an object header names Store type id {tid}, no struct or array type")
        if isinstance(ct, StructType):
            sizes = (struct_layout(ct)[1], 0)
        else:
            sizes = (HEADER_BYTES, storage_size(ct.element.storage))  # type: ignore[attr-defined]
        self._sizes[tid] = sizes
        return sizes

    def retire_buffer(self) -> None:
        """End the allocation buffer: its allocated span unscanned (``known``), its unused tail a free block."""
        if not self.buffer_end:
            return
        cursor = self._cursor()
        if cursor > self.buffer_scan:
            self.unscanned.append((self.buffer_scan, cursor))
        tail = self.buffer_end - cursor
        if tail:
            self.used -= tail
            self.free.setdefault(tail, []).append(cursor)
        self.buffer_scan = self.buffer_end = 0
        self.store.write_u64(self.record + abi.GC_CURSOR, 0)
        self.store.write_u64(self.record + abi.GC_END, 0)

    def refill_buffer(self) -> None:
        """A new allocation buffer for compiled code, from what the limit leaves (none under stress, with
        wasi-threads, or when too little is left: the builtin then allocates every object)."""
        self.retire_buffer()
        size = min(BUFFER_BYTES, self.limit - self.used) & ~15
        if self.stress or not self.record or self.store.threads is not None or size < BUFFER_MIN:
            return
        va, size = self._buffer_block(size)
        if not va:
            return
        self.used += size
        self.buffer_scan, self.buffer_end = va, va + size
        self.store.write_u64(self.record + abi.GC_CURSOR, va)
        self.store.write_u64(self.record + abi.GC_END, va + size)

    def _buffer_block(self, want: int) -> tuple[int, int]:
        """A zeroed block for a buffer of at most ``want`` bytes, at least BUFFER_MIN: a free one (the
        smallest that holds ``want``, else the largest), else the rest of the data region's current chunk,
        else new memory while the footprint allows; (0, 0) when none."""
        sizes = [s for s, blocks in self.free.items() if blocks and s >= BUFFER_MIN]
        if sizes:
            fits = [s for s in sizes if s >= want]
            size = min(fits) if fits else max(sizes)
            va = self.free[size].pop()
            if size > want:
                self.free.setdefault(size - want, []).append(va + want)
                size = want
            self.store.phys_view(va, size)[:] = bytes(size)
            return va, size
        room = (self.store.data_mapped - self.store.data_next) & ~15
        size = min(want, room) if room >= BUFFER_MIN else want
        if self.footprint + size > FRAGMENTATION_SLACK * self.limit:
            return 0, 0
        return self._fresh(size), size

    def _fresh(self, size: int) -> int:
        """``size`` bytes of new data-region memory (zeroed).  When they do not fit in the region's current
        chunk (alloc_data starts a new one), the chunk's tail becomes a free block rather than lost memory,
        if the footprint allows."""
        store = self.store
        room = (store.data_mapped - store.data_next) & ~15
        if 0 < room < size and self.footprint + room + size <= FRAGMENTATION_SLACK * self.limit:
            self.free.setdefault(room, []).append(self._take(room))
        return self._take(size)

    def _take(self, size: int) -> int:
        """``size`` bytes of the data region for the heap, added to its arena."""
        va = self.store.alloc_data(size)
        self.footprint += size
        arena = self.arena
        if arena and arena[-1][1] == va and self._contiguous(va, {}):
            arena[-1][1] = va + size
        else:
            arena.append([va, va + size])
        return va

    def _contiguous(self, va: int, pages: dict[int, int]) -> bool:
        """Are the bytes at ``va - 1`` and ``va`` neighbours in physical memory too?"""
        page_pa = self.store.page_pa
        return bool(va & 0xFFF) or _frame(pages, page_pa, va) == _frame(pages, page_pa, va - 1) + 0x1000

    # -- allocation ------------------------------------------------------------------------------------

    def allocate(self, canon: int, size: int, length: int = 0, *, m=None, layout=None, roots=()) -> int:
        """A zeroed object of ``size`` bytes with its header written.  ``m``: the hart running the
        allocating builtin (its stack and registers are roots; without it nothing is collected);
        ``roots``: words the caller holds; past the Store's limit after a collection, a trap."""
        size = (size + 15) & ~15
        if layout is not None:
            self.layouts[canon] = layout
        if self.used + size > self.limit:
            self.retire_buffer()  # its unused tail counts as in use until then
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
            va = self._fresh(size)
        self.used += size
        self.store.phys_view(va, HEADER_BYTES)[:] = _HEADER.pack(self.tid_of[canon], length)
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

    def _free_runs(self, live: list[int], objects: dict[int, int]) -> None:
        """After a sweep: the free blocks are the arena less the live objects (``live``: their addresses,
        in order), each run between two of them one block.  O(live objects), whatever the garbage: the
        dead objects are never looked at.  The arena's spans are physically contiguous each (``_take``),
        so a run is too, as an object must be (``phys_view``).  ``objects``: the live objects' sizes."""
        free: dict[int, list[int]] = {}
        i, n = 0, len(live)
        for start, end in self.arena:
            pos = start
            while i < n and live[i] < end:
                va = live[i]
                if va > pos:
                    free.setdefault(va - pos, []).append(pos)
                pos = va + objects[va]
                i += 1
            if end > pos:
                free.setdefault(end - pos, []).append(pos)
        self.free = free

    # -- the collector ---------------------------------------------------------------------------------

    def _store_roots(self, roots) -> list[int]:
        """The reference words the Store holds outside the stack (and ``roots``, the caller's): of the
        globals, tables, element segments and exception payload fields of a type that may hold an object's
        address (``holds_gc_word``), so every word is a reference; an i64 that looks like an address is not
        a root, nor a funcref (a function record's address)."""
        store = self.store
        words = list(roots)
        for instance in store.instances.values():
            for g in instance.globals:
                if holds_gc_word(g.valtype):
                    words.append(g.get_bits())
            for t in instance.tables:
                if holds_gc_word(t.type.elem_type):
                    words += t.get_all()
            for segment, elems in zip(instance.module.elems, instance.elems):
                if holds_gc_word(segment.elem_type):
                    words += elems
        for exn in getattr(store, "exns", {}).values():
            words += [w for ty, w in zip(exn.tag.type.params, exn.payload) if holds_gc_word(ty)]
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
        self.retire_buffer()
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
        # Every root word is a reference (typed roots), as every reference field is: null, an i31 (odd), a host
        # handle (4n + 2), else an object's address, which ``_size`` checks against the arena and the header.
        marked = self._mark([w for w in words if w and not w & 3] + list(self.pinned))
        live = sorted(marked)
        before = self.used
        self.objects = {va: marked[va] for va in live}
        self.unscanned.clear()  # the dead among them are never looked at: the sweep frees the arena's rest
        self.used = sum(marked.values())
        freed = before - self.used
        self._free_runs(live, self.objects)
        self.collections += 1
        self.freed += freed
        self.wants_safepoints = False
        self.last_pause_ns = time.perf_counter_ns() - start
        self.total_pause_ns += self.last_pause_ns
        return freed

    def _mark(self, work: list[int]) -> dict[int, int]:
        """Every object reachable from the addresses in ``work``: address -> size.  Each arena span is one
        view (physically contiguous), so an object costs a bisect and a header read; a word that names no
        object, or a header naming no type, raises HeapCorruptError before anything is freed."""
        arena = self.arena
        starts = [start for start, _ in arena]
        views = [self.store.phys_view(start, end - start) for start, end in arena]
        trace, header, word = self._trace, _HEADER.unpack_from, _WORD.unpack_from
        span_of = bisect.bisect_right
        marked: dict[int, int] = {}
        while work:
            va = work.pop()
            if va in marked:
                continue
            i = span_of(starts, va) - 1  # the span starting at or before va
            view = views[i]
            off = va - starts[i]
            if i < 0 or va & 15 or off + HEADER_BYTES > len(view):
                raise HeapCorruptError(f"a reference {va:#x} names no object: not a 16-aligned address in the GC heap")
            tid, length = header(view, off)
            fixed, per, refs = trace.get(tid) or self._trace_of(tid)
            size = marked[va] = (fixed + per * length + 15) & ~15
            if off + size > len(view):
                raise HeapCorruptError(f"the object at {va:#x} ({size} bytes by its header) runs past the GC heap")
            if refs is None:  # an array of references
                if length:
                    work += [w for w in struct.unpack_from(f"<{length}Q", view, off + HEADER_BYTES) if w and not w & 3]
            elif refs:
                work += [w for w in (word(view, off + r)[0] for r in refs) if w and not w & 3]
        return marked

    def _trace_of(self, tid: int) -> tuple[int, int, tuple[int, ...] | None]:
        """How the mark reads an object of Store type id ``tid``: (fixed bytes, bytes per element, the
        offsets of its reference fields; None: every element is a reference)."""
        fixed, per = self._sizes.get(tid) or self._size_of(tid)
        ct = self.layouts[self.canon_of[tid]]
        refs: tuple[int, ...] | None
        if isinstance(ct, StructType):
            offsets, _ = struct_layout(ct)
            refs = tuple(off for f, off in zip(ct.fields, offsets) if holds_gc_word(f.storage))
        else:
            refs = None if holds_gc_word(ct.element.storage) else ()  # type: ignore[attr-defined]
        self._trace[tid] = (fixed, per, refs)
        return fixed, per, refs

    def reference_words(self) -> list[int]:
        """Every reference word the objects hold (host handles among them: ``Store.gc`` keeps those)."""
        return [w for va, size in self.known().items() for w in self._fields(va, size)]

    def _defer(self, why: str) -> None:
        self.deferred += 1
        self.deferred_why = why

    def _span_end(self, va: int) -> int:
        """The end of the arena span holding a header at ``va``; 0 when ``va`` is not a 16-aligned address
        with a header's room in the arena."""
        spans = self.arena
        i = bisect.bisect_right(spans, [va, _END]) - 1  # the span starting at or before va
        return spans[i][1] if not va & 15 and i >= 0 and va + HEADER_BYTES <= spans[i][1] else 0

    def _fields(self, va: int, size: int) -> list[int]:
        """The reference words of the any and extern hierarchies an object of ``size`` bytes holds (not its
        funcrefs nor exnrefs: a function record's address, an exception handle)."""
        canon, length = self.header(va)
        ct = self.layouts.get(canon)
        if ct is None:
            return []
        view = self.store.phys_view(va, size)
        if isinstance(ct, StructType):
            offsets, _ = struct_layout(ct)
            return [
                struct.unpack_from("<Q", view, off)[0] for f, off in zip(ct.fields, offsets) if holds_gc_word(f.storage)
            ]
        if not holds_gc_word(ct.element.storage):  # type: ignore[attr-defined]
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
        tid, length = _HEADER.unpack(self.store.phys_view(va, HEADER_BYTES))
        canon = self.canon_of.get(tid)
        if canon is None:
            raise HeapCorruptError(f"the object at {va:#x} has a header naming Store type id {tid}, no type")
        return canon, length

    def is_object(self, word: int) -> bool:
        """Is reference word ``word`` (null, i31, host handle or object) an object: an address in the heap's
        arena (its header is not looked at: a cast reads it, bounds-checked)?"""
        return word != 0 and not word & 3 and bool(self._span_end(word))

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
            tid = _HEADER.unpack(self.store.phys_view(word, HEADER_BYTES))[0]
            canon = self.canon_of.get(tid)  # (None: not an id of this Store, as compiled code finds too)
            return canon is not None and canonical_subtype(canon, canon_ids[index])
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


def _frame(pages: dict[int, int], page_pa, va: int) -> int:
    """The physical address of ``va``'s page (cached in ``pages``)."""
    page = va & ~0xFFF
    pa = pages.get(page)
    if pa is None:
        pa = pages[page] = page_pa(page)
        assert pa is not None  # the data region is mapped as it is allocated
    return pa


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
