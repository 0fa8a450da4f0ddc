"""The engine Store (:class:`VmStore`): one machine, one address space, the instances in it, and its limits.

::

    VmStore = StoreSpace (space.py)      guest address space: code, data, stack and memory
                                          regions, demand paging, host reads and writes
            + CallBoundary (calls.py)    calls into wasm, ecalls out (builtins by table, host
                                          functions), trap classification, asynchronous events
            + CheckpointCounter          the fuel cell metered code counts down, checkpoint
              (checkpoints.py)            handlers, request_checkpoint (fuel, epochs, time)
            + this module                construction, limits, ownership, type ids, externrefs

The public :class:`hwsim.Store` (api.py) wraps one; hwsim's own layers reach
it through :mod:`hwsim.runtime.internal`.  Several Stores may share one
board's machine: each registers its pager, write-fault and ecall handlers,
which decline for another Store's address space.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from ..errors import HostLimitError, HwsimError, OutOfFrames, StoreMismatchError
from ..machine import Machine
from ..mmu.bits import PAGE_SIZE
from ..riscv import asm as A
from ..riscv.priv import Priv
from ..wasm.subtyping import func_canonical_id
from ..wasm.types import EXTERNREF
from . import layout as L
from .calls import CallBoundary, LoadedCode
from .checkpoints import CheckpointCounter
from .crossing import ECALL_FUEL_REGS, ECALL_INT_REGS, ECALL_REGS
from .errors import ResourceLimitError, Trap
from .exceptions import Exn
from .gcheap import GcHeap
from .objects import RW_USER, RX_USER, FuncRecord, GlobalInstance, MemoryInstance, TableInstance
from .space import StoreSpace
from .threads import Scheduler

_SERIALS = itertools.count(1)  # Stores are named "Store 1", "Store 2", ... in the order they are made


def _tail_return_stub() -> bytes:
    """The tail-call return stub: pop a cross-instance tail call's frame (``layout.TAIL_FRAME_BYTES``, built by
    compiled code: memory-0 base, vmctx, caller's fp, return address from sp up), restoring its instance
    registers, and return to the caller of the first function of the tail-call chain."""
    r = A.REG
    size = L.TAIL_FRAME_BYTES
    return (
        A.Assembler(L.TAIL_RETURN_STUB)
        .emit(
            A.ld(r["s2"], r["sp"], 0),
            A.ld(r["s1"], r["sp"], 8),
            A.ld(r["s0"], r["sp"], size - 16),
            A.ld(r["ra"], r["sp"], size - 8),
            A.addi(r["sp"], r["sp"], size),
            A.jalr(0, r["ra"], 0),
        )
        .finish()
    )


@dataclass
class StoreLimits:
    """Per-Store limits; exceeding one is a clear error, never a crash."""

    memory_bytes: int = L.MEMORY64_MAX_BYTES  # per linear memory (a 32-bit one stops at 4 GiB anyway)
    ram_bytes: int = 1 << 30  # physical RAM behind everything (frames for pages, tables, code)
    time_us: int = 0  # per call from the host into wasm; 0 = none
    max_instances: int = 10_000
    max_tables: int = 10_000
    max_memories: int = 10_000  # (the address space holds 83: see layout.MEMORY_REGIONS)
    table_elements: int = 10_000_000  # per table
    code_bytes: int = 256 << 20  # compiled code of all the Store's modules
    gc_heap_bytes: int = (
        64 << 20
    )  # live GC struct and array objects (runtime/gcheap.py; Store.set_limits(gc_heap_size))


class VmStore(StoreSpace, CallBoundary, CheckpointCounter):
    def __init__(
        self, engine=None, *, limits: StoreLimits | None = None, machine: Machine | None = None, harts: int = 1
    ) -> None:
        """``machine``: run on an existing machine (a board's, with its devices, and its harts); default: a
        new one of ``harts`` harts (its guest threads spread over them: runtime/threads.py)."""
        self.name = f"Store {next(_SERIALS)}"
        self.engine = engine
        self.limits = limits or StoreLimits()
        self.gc_heap = GcHeap(self, self.limits.gc_heap_bytes)
        try:
            self.machine = machine or Machine(ram_size=self.limits.ram_bytes, tlb_capacity=4096, harts=harts)
        except HostLimitError as exc:
            raise ResourceLimitError(f"ram_size: {exc.problem}") from None
        m = self.machine
        self.home = m  # hart 0: where every call from the host runs (bind_hart moves the Store between its harts)
        self._host_pages = {}  # the host's translation cache (space.py), dropped on every mapping change
        self._host_views = {}
        try:
            self.space = m.new_address_space(asid=1)
            self.space.on_change(self.translation_changed)
            # Runtime page: the host-call stub; the exit address is never executed.
            self.runtime_pa = m.frames.alloc()
            self.space.map(L.RUNTIME_PAGE, self.runtime_pa, PAGE_SIZE, RX_USER)
            self.space.map_anonymous(L.ABI_AREA, L.ABI_AREA_SIZE, RW_USER)
        except OutOfFrames as exc:
            raise ResourceLimitError(f"the Store's runtime pages: {exc}") from None
        stub = A.Assembler(L.HOSTCALL_STUB).emit(A.ECALL, A.jalr(0, A.REG["ra"], 0)).finish()
        m.phys.write(self.runtime_pa, stub)
        tail_return = _tail_return_stub()
        m.phys.write(self.runtime_pa + L.TAIL_RETURN_STUB - L.RUNTIME_PAGE, tail_return)
        # The runtime's own code, by name (a debugger's symbols: hwsim/driver/debugging.py).
        self.runtime_code: tuple[tuple[str, int, bytes], ...] = (
            ("hwsim_host_call", L.HOSTCALL_STUB, stub),
            ("hwsim_tail_return", L.TAIL_RETURN_STUB, tail_return),
        )
        self.host_vmctx = L.ABI_AREA + L.ABI_AREA_SIZE - 64  # an all-zero vmctx for host functions' records
        self.code_next = L.CODE_BASE
        self.data_next = L.DATA_BASE
        self.data_mapped = L.DATA_BASE
        # The fuel count (checkpoints.py): in this cell while no guest code runs, in the fuel register while
        # it does.  Zero: metered code that nobody gives fuel traps at its first checkpoint, as wasmtime's does.
        self.fuel_cell = self.alloc_data(8)
        self.fuel_view = self.phys_view(self.fuel_cell, 8)  # the data region is never remapped
        self.metered = False  # set when a module compiled with metering is instantiated here
        self._fuel_live = False  # the count is in the register (guest code is running or stopped mid-run)
        self.checkpoint_handlers: list = []  # see add_checkpoint_handler
        self._parked_fuel = 0  # the count while a request_checkpoint holds the register or cell at zero
        self._checkpoint_requested = False
        self.checkpoint_requests = 0  # how many request_checkpoint calls so far (a stopped run tells by it)
        self.memory_slots: list[MemoryInstance | None] = []
        self.memories: list[MemoryInstance] = []
        self.tables_made = 0
        self.instances = {}  # vmctx VA -> VmInstance (the parts declare the state's types)
        self.funcrefs: dict[int, FuncRecord] = {}  # record VA -> record
        self.code: list[LoadedCode] = []  # every module's compiled code, in load order
        self._source_maps = {}  # id(Module) -> SourceMap (DWARF line tables)
        self._crossings = {}  # (params, results) -> Crossing (calls.py)
        self._ecall_regs = m.register_batch(ECALL_INT_REGS)
        self._ecall_regs_fuel = m.register_batch(ECALL_FUEL_REGS)
        self._ecall_regs_all = m.register_batch(ECALL_REGS)
        self._type_ids: dict = {}
        self.externs: dict[int, object] = {}  # externref handle -> host object
        self._extern_ids: dict[int, int] = {}  # id(host object) -> its handle
        # Handles are 4n + 2 (n = 1, 2, ...; never reused): an externref's word has the shape GC's anyref
        # shares (compiler/codegen/gc.py), in which an odd word is an i31 and an 8-aligned one a GC object.
        self._extern_serials = itertools.count(6, 4)
        self.extern_roots: list[TableInstance | GlobalInstance] = []  # externref tables and globals
        self.exns: dict[int, Exn] = {}  # exnref handle -> exception object (exceptions.py)
        self.exn_next = 0  # the last exnref handle given out (never reused)
        self.exn_roots: list[TableInstance | GlobalInstance] = []  # exnref tables and globals
        self.exn_landing_regs: dict = {}  # saved registers restored -> RegisterBatch (exceptions._land)
        self.exn_prologue_saves: dict = {}  # (code base, func index) -> the prologue's saves (exceptions.unwind)
        self.depth = 0
        self.deadline: float | None = None  # time.monotonic() at which the outermost call's budget runs out
        # Set by interrupt() (another thread, a signal handler, a device event): every call into wasm
        # traps ``interrupted`` with this reason at its next safe point until clear_interrupt().
        self.interrupt_reason: str | None = None
        self.caller_vmctx = 0  # the vmctx of the instance calling the running host function
        self.out_of_frames = False
        # ``observer(memory base, offset, length, write, pc)``: sees memory.copy/fill/init, which the
        # host carries out (the machine's page watch sees only the CPU's own loads and stores).
        self.bulk_access_observers = []  # see add_bulk_access_observer
        self.release_observers = []  # memory.discard / memory.unmap, see add_release_observer
        # Fault-around (StoreSpace._pager): off by default, so a memory's committed pages are exactly
        # those touched (Memory.committed_bytes, frames); a bench or an embedder may set pages ahead.
        self.fault_around = 0
        self._async = []  # host callbacks waiting for a safe point (see request_async)
        self.threads = None  # the Scheduler of wasi-threads (runtime/threads.py), once enabled
        self._in_host = 0  # > 0 while a host function runs (the CPU is not in guest code)
        self.next_host_pa = 0  # where the next HostBuffer goes in physical memory (set below)
        m.add_pager(self._pager)
        m.add_write_fault_handler(self._write_fault)
        m.add_ecall_handler(self._ecall)
        m.activate(self.space, priv=Priv.U)
        self.stack_low = L.STACK_TOP - L.STACK_SIZE
        # Each hart's register batches (see bind_hart): its Crossings, its ecall batch, its landing batches.
        self._hart_batches = {
            m.hartid: (
                self._crossings,
                self._ecall_regs,
                self._ecall_regs_fuel,
                self._ecall_regs_all,
                self.exn_landing_regs,
            )
        }

    def bind_hart(self, hart: Machine) -> None:
        """Run this Store's code on ``hart`` (one of its machine's) from now on: ``self.machine`` is that
        hart, the one builtins, host functions and the register batches act on.  A guest thread's hart
        (runtime/threads.py) is bound before the thread runs; the first time, the hart is pointed at the
        Store's address space in U-mode."""
        if hart is self.machine:
            return
        if hart not in self.home.harts:
            raise HwsimError(f"a bug: {self.name} bound to a hart of another machine")
        batches = self._hart_batches.get(hart.hartid)
        if batches is None:
            hart.activate(self.space, priv=Priv.U)
            batches = self._hart_batches[hart.hartid] = (
                {},
                hart.register_batch(ECALL_INT_REGS),
                hart.register_batch(ECALL_FUEL_REGS),
                hart.register_batch(ECALL_REGS),
                {},
            )
        self.machine = hart
        self._crossings, self._ecall_regs, self._ecall_regs_fuel, self._ecall_regs_all, self.exn_landing_regs = batches

    def enable_threads(self, **options) -> Scheduler:
        """Guest threads on this Store's harts (runtime/threads.py): the Scheduler, made on the first call,
        set to ``options`` (seed, time_slice, max_threads, ns_per_unit, insn_slice, hart_turn)."""
        if self.threads is None:
            self.threads = Scheduler(self, **options)
            self.gc_heap.retire_buffer()  # threads allocate through the builtin (runtime/gcheap.py)
        else:  # a second WASI config: its settings from the next root call on
            self.threads.configure(**options)
        return self.threads

    def check_owned(self, obj, what: str) -> None:
        """Raise :class:`StoreMismatchError` unless ``obj`` (a memory, table, global, function record,
        memory handle or host buffer: anything with a ``store``) lives in this Store.  Objects never
        cross Stores: addresses and handles mean something else in another one."""
        if obj.store is not self:
            raise StoreMismatchError(
                f"object used with the wrong store: {what} belongs to {obj.store.name}, not to {self.name}"
            )

    def type_id(self, ftype) -> int:
        """The Store type id of a (canonical) type: call_indirect's signature id of a function type, the id
        a GC object's header carries (a struct or array type is a CanonicalFuncType without params).  Equal
        ids, the same type; a type of a recursion group (wasm/typedrefs.py CanonicalFuncType) is told apart
        by its canonical id.  Each id has a type descriptor (runtime/gcheap.py) for casts."""
        key = (tuple(ftype.params), tuple(ftype.results), getattr(ftype, "canon", None))
        tid = self._type_ids.get(key)
        if tid is None:
            tid = self._type_ids[key] = len(self._type_ids) + 1
            self.gc_heap.register_type(tid, func_canonical_id(ftype))
        return tid

    def extern_handle(self, obj) -> int:
        """The non-zero handle standing for host object ``obj`` as an externref."""
        key = id(obj)
        handle = self._extern_ids.get(key)
        if handle is None:
            handle = next(self._extern_serials)
            self.externs[handle] = obj
            self._extern_ids[key] = handle
        return handle

    def collect_externs(self) -> int:
        """Forget the host objects no externref in the Store refers to any more (``Store.gc``); how many.

        Wasm holds an externref only in an externref global, table or element segment, or, while it
        runs, on its stack and in registers: while it runs (a host function calling this), nothing is
        forgotten.  A forgotten handle is never handed out again."""
        if self.depth > 0 or not self.externs:
            return 0
        live: set[int] = set()
        for root in self.extern_roots:
            if isinstance(root, GlobalInstance):
                live.add(root.get_bits())
            else:
                live.update(root.get_all())
        for instance in self.instances.values():
            for segment, values in zip(instance.module.elems, instance.elems):
                if segment.elem_type == EXTERNREF:
                    live.update(values)
        live.update(self.gc_heap.reference_words())  # an object's externref or anyref field
        dead = [handle for handle in self.externs if handle not in live]
        for handle in dead:
            del self._extern_ids[id(self.externs.pop(handle))]
        return len(dead)

    def collect_exns(self) -> int:
        """Forget the exception objects no exnref global or table holds (``Store.gc``); how many.  As for
        externrefs, nothing while wasm runs.  An object the host still holds gets a new handle when it is
        passed in again (a forgotten handle is never handed out again)."""
        if self.depth > 0 or not self.exns:
            return 0
        live: set[int] = set()
        for root in self.exn_roots:
            if isinstance(root, GlobalInstance):
                live.add(root.get_bits())
            else:
                live.update(root.get_all())
        dead = [handle for handle in self.exns if handle not in live]
        for handle in dead:
            self.exns.pop(handle).handle = 0
        return len(dead)


__all__ = ["StoreLimits", "Trap", "VmStore"]
