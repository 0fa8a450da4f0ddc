"""The engine Store (VmStore): one emulated machine and address space holding instances, and the host<->guest boundary.

Entering wasm (``invoke``): arguments go into the argument registers (and the
ABI area), the pinned registers get the callee's vmctx and memory-0 base, the
return address is :data:`~hwsim.runtime.layout.EXIT_ADDRESS`, and the machine
runs until the PC reaches it.  Leaving it another way is a trap:

* ``ebreak`` in compiled code: the module's trap table names the trap;
* a page fault inside a memory's reservation: out of bounds memory access;
* a page fault below the stack: call stack exhausted;
* the time budget: interrupted.

Guest -> host: ``ecall`` with t6 holding a builtin id (memory.grow, table
operations, bulk memory) or a host function's funcref record.  A host
function may call back into wasm: the nested run saves the CPU context and
continues on the same stack below the caller's frames.
"""

from __future__ import annotations

import itertools
import struct
import time
from dataclasses import dataclass

from unicorn import riscv_const as rv

from ..compiler.abi import RegLoc
from ..compiler.builtins import MAX_BUILTIN, Builtin
from ..compiler.isa.riscv64.abi import abi_locations
from ..compiler.traps import TrapCode
from ..errors import HostLimitError, HwsimError, OutOfFrames, StoreMismatchError
from ..machine import EcallAction, Machine, RunResult, StopReason
from ..mmu.bits import PAGE_MASK, PAGE_SIZE, Pte
from ..riscv import asm as A
from ..riscv.disasm import disassemble_one
from ..riscv.priv import Priv
from ..wasm.types import EXTERNREF, F32, F64, FUNCREF, I32, I64
from . import layout as L
from .errors import HostBufferError, MemoryControlError, ResourceLimitError, Trap
from .objects import RW_USER, FuncRecord, MemoryInstance, TableInstance

_U64 = struct.Struct("<Q")
RX_USER = Pte.R | Pte.X | Pte.U
R_USER = Pte.R | Pte.U
MASK64 = (1 << 64) - 1
_SERIALS = itertools.count(1)  # Stores are named "Store 1", "Store 2", ... in the order they are made


@dataclass
class StoreLimits:
    """Per-Store limits; exceeding one is a clear error, never a crash."""

    memory_bytes: int = 1 << 32  # per linear memory
    ram_bytes: int = 1 << 30  # physical RAM behind everything (frames for pages, tables, code)
    time_us: int = 0  # per call from the host into wasm; 0 = none
    max_instances: int = 10_000
    table_elements: int = 10_000_000  # per table
    code_bytes: int = 256 << 20  # compiled code of all the Store's modules


class VmStore:
    def __init__(self, engine=None, *, limits: StoreLimits | None = None, machine: Machine | None = None) -> None:
        """``machine``: run on an existing machine (a board's, with its devices); default: a new one."""
        self.name = f"Store {next(_SERIALS)}"
        self.engine = engine
        self.limits = limits or StoreLimits()
        try:
            self.machine = machine or Machine(ram_size=self.limits.ram_bytes, tlb_capacity=4096)
        except HostLimitError as exc:
            raise ResourceLimitError(f"ram_size: {exc.problem}") from None
        m = self.machine
        try:
            self.space = m.new_address_space(asid=1)
            # Runtime page: the host-call stub; the exit address is never executed.
            self.runtime_pa = m.frames.alloc()
            self.space.map(L.RUNTIME_PAGE, self.runtime_pa, PAGE_SIZE, RX_USER)
            self.space.map_anonymous(L.ABI_AREA, L.ABI_AREA_SIZE, RW_USER)
        except OutOfFrames as exc:
            raise ResourceLimitError(f"the Store's runtime pages: {exc}") from None
        stub = A.Assembler(L.HOSTCALL_STUB).emit(A.ECALL, A.jalr(0, A.REG["ra"], 0)).finish()
        m.phys.write(self.runtime_pa, stub)
        self.host_vmctx = L.ABI_AREA + L.ABI_AREA_SIZE - 64  # an all-zero vmctx for host functions' records
        self.code_next = L.CODE_BASE
        self.data_next = L.DATA_BASE
        self.data_mapped = L.DATA_BASE
        self.memory_slots: list[MemoryInstance | None] = []
        self.memories: list[MemoryInstance] = []
        self.instances: dict[int, object] = {}  # vmctx VA -> Instance
        self.funcrefs: dict[int, FuncRecord] = {}  # record VA -> record
        self.modules: list = []  # (code base, code end, CompiledModule, Module)
        self._source_maps: dict[int, object] = {}  # id(Module) -> SourceMap (DWARF line tables)
        self._type_ids: dict = {}
        self.externs: dict[int, object] = {}  # externref handle -> host object
        self._extern_ids: dict[int, int] = {}
        self.depth = 0
        self.deadline: float | None = None  # time.monotonic() at which the outermost call's budget runs out
        # Set by interrupt() (another thread, a signal handler, a device event): every call into wasm
        # traps ``interrupted`` with this reason at its next safe point until clear_interrupt().
        self.interrupt_reason: str | None = None
        self.caller_vmctx = 0  # the vmctx of the instance calling the running host function
        self.out_of_frames = False
        # ``observer(memory base, offset, length, write, pc)``: sees memory.copy/fill/init, which the
        # host carries out (the machine's page watch sees only the CPU's own loads and stores).
        self.bulk_access_observers: list = []  # see add_bulk_access_observer
        self._async: list = []  # host callbacks waiting for a safe point (see request_async)
        self._in_host = 0  # > 0 while a host function runs (the CPU is not in guest code)
        self.next_host_pa = 0  # where the next HostBuffer goes in physical memory (set below)
        m.add_pager(self._pager)
        m.add_write_fault_handler(self._write_fault)
        m.add_ecall_handler(self._ecall)
        m.activate(self.space, priv=Priv.U)
        self.stack_low = L.STACK_TOP - L.STACK_SIZE

    # -- guest memory helpers ---------------------------------------------------------------

    def phys_view(self, va: int, size: int) -> memoryview:
        """A view of data-region memory (always mapped, physically contiguous per allocation)."""
        return self.machine.phys.view(self._data_pa(va), size)

    def _data_pa(self, va: int) -> int:
        mapping = self.space.lookup(va)
        return mapping.pa + (va - mapping.va)

    def read_u64(self, va: int) -> int:
        return _U64.unpack(self.phys_view(va, 8))[0]

    def write_u64(self, va: int, value: int) -> None:
        self.phys_view(va, 8)[:] = _U64.pack(value & MASK64)

    def alloc_data(self, size: int) -> int:
        """Zeroed bytes in the data region (16-aligned, never freed), physically contiguous.

        The region grows in chunks of contiguous frames; an allocation that does not fit in
        the current chunk starts a new one, so no allocation straddles two chunks.
        """
        size = (size + 15) & ~15
        if self.data_next + size > self.data_mapped:
            chunk = (max(size, 16 * PAGE_SIZE) + PAGE_SIZE - 1) & ~PAGE_MASK
            start = self.data_mapped
            if start + chunk > L.DATA_END:
                raise ResourceLimitError("the Store's data region (vmctx, tables, globals) is full")
            self._map_new_frames(start, chunk // PAGE_SIZE, RW_USER, "the Store's data region (vmctx, tables, globals)")
            self.data_next, self.data_mapped = start, start + chunk
        va = self.data_next
        self.data_next += size
        return va

    def load_code(self, code: bytes) -> int:
        pages = (len(code) + PAGE_SIZE - 1) // PAGE_SIZE or 1
        used = self.code_next - L.CODE_BASE
        if used + pages * PAGE_SIZE > self.limits.code_bytes:
            raise ResourceLimitError(f"the module's {len(code)} bytes of compiled code exceed the Store's code limit "
                                     f"({self.limits.code_bytes} bytes, {used} in use)")
        va = self.code_next
        if va + pages * PAGE_SIZE > L.CODE_END:
            raise ResourceLimitError("the Store's code region is full")
        pa = self._map_new_frames(va, pages, RX_USER, f"{len(code)} bytes of compiled code")
        self.machine.phys.write(pa, code)
        self.code_next = va + pages * PAGE_SIZE + PAGE_SIZE  # an unmapped page between modules
        return va

    def _map_new_frames(self, va: int, pages: int, flags: int, what: str) -> int:
        """Map ``pages`` new contiguous frames at ``va``; their physical address.  Out of RAM (for the
        frames or for page tables) is a ResourceLimitError that leaves nothing behind."""
        try:
            pa = self.machine.frames.alloc(pages)
        except OutOfFrames as exc:
            raise ResourceLimitError(f"{what}: {exc}") from None
        try:
            self.space.map(va, pa, pages * PAGE_SIZE, flags, page_size=PAGE_SIZE)
        except OutOfFrames as exc:
            self.space.unmap(va, pages * PAGE_SIZE)
            self.machine.frames.free(pa, pages)
            raise ResourceLimitError(f"{what}: {exc}") from None
        return pa

    def reserve_memory(self, memory: MemoryInstance) -> int:
        index = len(self.memory_slots)
        base = self._slot_base(index)
        if base is None:
            raise ResourceLimitError(
                f"out of virtual address space for linear memories: a Store holds at most {index} "
                f"(each reserves {L.MEMORY_RESERVATION >> 20} MiB)")
        self.memory_slots.append(memory)
        self.memories.append(memory)
        return base

    @staticmethod
    def _slot_base(index: int) -> int | None:
        for start, end in L.MEMORY_REGIONS:
            count = (end - start) // L.MEMORY_RESERVATION
            if index < count:
                return start + index * L.MEMORY_RESERVATION
            index -= count
        return None

    def memory_at(self, va: int) -> MemoryInstance | None:
        for start, end in L.MEMORY_REGIONS:
            if start <= va < end:
                index = (va - start) // L.MEMORY_RESERVATION
                if start != L.MEMORY_REGIONS[0][0]:
                    index += (L.MEMORY_REGIONS[0][1] - L.MEMORY_REGIONS[0][0]) // L.MEMORY_RESERVATION
                if index < len(self.memory_slots):
                    mem = self.memory_slots[index]
                    if mem is not None and mem.base <= va < mem.base + L.MEMORY_RESERVATION:
                        return mem
                return None
        return None

    def _map_page(self, va: int, *, host: bool = False) -> bool:
        """Give the page holding ``va`` a zeroed frame, with the flags its memory's page state says.

        ``host``: for a host write (which goes through physical memory and may fill read-only
        pages); a page the state keeps unmapped is an error then, not a fault.
        """
        flags = RW_USER
        mem = self.memory_at(va)
        if mem is not None and mem.ctl is not None:
            flags = mem.ctl.flags_for(va - mem.base)
            if flags is None:
                if host:
                    raise MemoryControlError(f"host write refused: {mem.ctl.explain(va - mem.base)}")
                return False
        try:
            self.space.map_anonymous(va & ~PAGE_MASK, PAGE_SIZE, flags)
        except OutOfFrames:
            if not host:  # a guest fault the pager could not serve: _trap_from reports it (host paths raise)
                self.out_of_frames = True
            return False
        if mem is not None:
            mem.mark_resident(va - mem.base)
        return True

    def frame_of(self, va: int) -> int | None:
        """The physical page behind guest page ``va``, given a frame first if it has none (as the pager
        would on a touch; the page's memory state decides); None when no frame can be had."""
        mapping = self.space.lookup(va)
        if mapping is None:
            if not self._map_page(va):
                return None
            mapping = self.space.lookup(va)
        return mapping.pa + ((va & ~PAGE_MASK) - mapping.va)

    def host_call_trap(self, code: TrapCode, detail: str) -> Trap:
        """The trap a host function raises to fail the wasm code that called it, located at the call
        (the host-call stub returns to ``ra``)."""
        return self._located(code, self.machine.get_reg("ra") - 4, "ecall", detail)

    def _pager(self, va: int, access) -> bool:
        """Demand paging: memory pages below the memory's size (as their page state allows), the stack."""
        if self.machine.active_space is not self.space:  # a fault in another Store's space
            return False
        mem = self.memory_at(va)
        if mem is not None:
            return va - mem.base < mem.size_bytes and self._map_page(va)
        if self.stack_low <= va < L.STACK_TOP:
            return self._map_page(va)
        return False

    def _write_fault(self, va: int) -> bool:
        """A guest store to a valid page without W: copy-on-write, when the page is a COW mapping."""
        if self.machine.active_space is not self.space:
            return False
        mem = self.memory_at(va)
        return mem is not None and mem.ctl is not None and mem.ctl.write_fault(va - mem.base)

    def host_buffer(self, *, size: int | None = None, data: bytes | None = None, path=None,
                    writable: bool = False):
        """A :class:`~hwsim.runtime.hostmem.HostBuffer`: ``size`` zeroed bytes, a copy of ``data``,
        or the pages of the file at ``path``."""
        from .hostmem import HOST_BUFFERS_BASE, HostBuffer, HostBufferError
        if not self.next_host_pa:
            top = max(r.end for r in self.machine.phys.regions)
            self.next_host_pa = max(HOST_BUFFERS_BASE, (top + (1 << 30)) & ~((1 << 30) - 1))
        if sum(x is not None for x in (size, data, path)) != 1:
            raise HostBufferError("host_buffer: give exactly one of size, data or path")
        if path is not None:
            return HostBuffer.from_file(self, path, writable=writable)
        if data is not None:
            return HostBuffer.from_bytes(self, data, writable=writable)
        return HostBuffer.zeroed(self, size)

    def read_user(self, va: int, size: int) -> bytes:
        """Read guest memory; pages never touched read as zeros."""
        out = bytearray()
        while size > 0:
            chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
            mapping = self.space.lookup(va)
            if mapping is None:
                out += bytes(chunk)
            else:
                out += self.machine.phys.read(mapping.pa + (va - mapping.va), chunk)
            va += chunk
            size -= chunk
        return bytes(out)

    def add_bulk_access_observer(self, observer):
        """``observer(memory_base, offset, length, write, pc)`` for every guest bulk memory operation
        (memory.copy/fill/init, carried out by the host, so the machine's page watch cannot see them), in
        the order added; returns a function that removes it."""
        self.bulk_access_observers.append(observer)
        return lambda: self.bulk_access_observers.remove(observer)

    def interrupt(self, reason: str) -> None:
        """Stop wasm code at its next safe point with ``Trap(INTERRUPTED)`` saying ``reason``.

        Safe to call from another thread or a signal handler: it sets a flag and asks the CPU to
        stop (Unicorn's ``emu_stop``, which its own timeout thread uses).  The flag stays set, so a
        call starting later traps at once, until :meth:`clear_interrupt`.  A caller on another
        thread repeats it while the flag is set: a stop that lands between two runs is lost."""
        self.interrupt_reason = reason
        self.machine.request_stop()

    def clear_interrupt(self) -> None:
        self.interrupt_reason = None

    def running_guest(self) -> bool:
        """True while the CPU is in wasm code (not in a host function, not idle)."""
        return self.depth > 0 and not self._in_host

    def check_interrupt(self, pc: int | None = None) -> None:
        """Raise the interrupt's trap if :meth:`interrupt` was called (host-side loops call this)."""
        if self.interrupt_reason is not None:
            raise self._located(TrapCode.INTERRUPTED, pc, None, self.interrupt_reason) if pc is not None \
                else Trap(TrapCode.INTERRUPTED, detail=self.interrupt_reason)

    def check_deadline(self) -> None:
        """Trap ``interrupted`` when the running call's time budget is used up: long host-side work
        (a bulk memory operation of gigabytes) calls this every megabyte, as guest code is stopped by
        the CPU's timer."""
        self.check_interrupt()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Trap(TrapCode.INTERRUPTED, detail=f"time budget of {self.limits.time_us} us used up "
                                                    f"(in a bulk memory operation)")

    def _before_host_write(self, va: int, size: int) -> None:
        mem = self.memory_at(va)
        if mem is not None and mem.ctl is not None and mem.ctl.host_pages:
            mem.ctl.prepare_host_write(va - mem.base, size)

    def _host_mapping(self, va: int):
        """The mapping of the page holding ``va`` for a host write, given a frame first if it has none."""
        mapping = self.space.lookup(va)
        if mapping is None:
            if not self._map_page(va, host=True):
                raise ResourceLimitError("out of physical memory for the Store's RAM")
            mapping = self.space.lookup(va)
        return mapping

    def write_user(self, va: int, data: bytes) -> None:
        self._before_host_write(va, len(data))
        view = memoryview(data)
        pages = 0
        while view:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            chunk = min(len(view), PAGE_SIZE - (va & PAGE_MASK))
            mapping = self._host_mapping(va)
            self.machine.phys.write(mapping.pa + (va - mapping.va), view[:chunk])
            va += chunk
            view = view[chunk:]

    def fill_user(self, va: int, byte: int, size: int) -> None:
        self._before_host_write(va, size)
        pages = 0
        while size > 0:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
            mapping = self.space.lookup(va)
            if mapping is not None or byte:  # untouched pages already read as zero
                mapping = mapping or self._host_mapping(va)
                self.machine.phys.fill(mapping.pa + (va - mapping.va), chunk, byte)
            va += chunk
            size -= chunk

    def copy_user(self, dst: int, src: int, size: int) -> None:
        """``memory.copy`` between guest addresses (overlap allowed, as memmove), a page-sized chunk at a
        time: host memory stays bounded whatever ``size`` is, and untouched source pages (zeros) copied
        onto untouched destination pages cost nothing."""
        self._before_host_write(dst, size)
        backwards = src < dst < src + size
        done = pages = 0
        mask = PAGE_MASK
        while done < size:
            pages += 1
            if not pages & 0xFF:
                self.check_deadline()
            left = size - done
            if backwards:
                s_end, d_end = src + left, dst + left
                chunk = min(left, ((s_end - 1) & mask) + 1, ((d_end - 1) & mask) + 1)
                s, d = s_end - chunk, d_end - chunk
            else:
                s, d = src + done, dst + done
                chunk = min(left, PAGE_SIZE - (s & mask), PAGE_SIZE - (d & mask))
            s_map, d_map = self.space.lookup(s), self.space.lookup(d)
            if s_map is None:
                if d_map is not None:
                    self.machine.phys.fill(d_map.pa + (d - d_map.va), chunk, 0)
            else:
                data = self.machine.phys.read(s_map.pa + (s - s_map.va), chunk)
                d_map = d_map or self._host_mapping(d)
                self.machine.phys.write(d_map.pa + (d - d_map.va), data)
            done += chunk

    # -- ownership, types and references ---------------------------------------------------------

    def check_owned(self, obj, what: str) -> None:
        """Raise :class:`StoreMismatchError` unless ``obj`` (a memory, table, global, function record,
        memory handle or host buffer: anything with a ``store``) lives in this Store.  Objects never
        cross Stores: addresses and handles mean something else in another one."""
        if obj.store is not self:
            raise StoreMismatchError(f"object used with the wrong store: {what} belongs to {obj.store.name}, "
                                     f"not to {self.name}")


    def type_id(self, ftype) -> int:
        key = (tuple(ftype.params), tuple(ftype.results))
        tid = self._type_ids.get(key)
        if tid is None:
            tid = self._type_ids[key] = len(self._type_ids) + 1
        return tid

    def extern_handle(self, obj) -> int:
        """The non-zero handle standing for host object ``obj`` as an externref."""
        key = id(obj)
        handle = self._extern_ids.get(key)
        if handle is None:
            handle = len(self.externs) + 1
            self.externs[handle] = obj
            self._extern_ids[key] = handle
        return handle

    # -- calling into wasm ----------------------------------------------------------------------

    def invoke(self, record: FuncRecord, args: list[int]) -> list[int]:
        """Call ``record`` with argument bit patterns; the results' bit patterns, or raise Trap."""
        m = self.machine
        ft = record.type
        if len(args) != len(ft.params):
            raise HwsimError(f"expected {len(ft.params)} arguments, got {len(args)}")
        nested = self.depth > 0
        saved = m.save_context() if nested else None
        if record.host is not None:  # calling a host function from the host: no guest code involved
            return list(self._call_host(record, args))
        self.check_interrupt()
        sp = ((m.get_reg("sp") - 256) & ~15) if nested else L.STACK_TOP
        self._write_values(ft.params, args)
        m.set_reg("sp", sp)
        m.set_reg("ra", L.EXIT_ADDRESS)
        m.set_reg("s0", 0)
        vmctx = self.read_u64(record.va + L.FUNCREF_VMCTX)
        m.set_reg("s1", vmctx)
        m.set_reg("s2", self.read_u64(vmctx) if vmctx else 0)
        m.set_reg("s3", 0xFFFF_FFFF)
        self.depth += 1
        in_host, self._in_host = self._in_host, 0
        try:
            pc = record.code
            budget = self.limits.time_us if not nested else 0
            deadline = time.monotonic() + budget / 1e6 if budget else None
            if not nested:
                self.deadline = deadline
            while True:
                result = m.run(pc, until=L.EXIT_ADDRESS, timeout_us=budget)
                if self.interrupt_reason is not None and result.reason is not StopReason.EXIT:
                    break
                if result.reason is not StopReason.STOPPED or not self._async:
                    break
                # Stopped for an asynchronous event (an interrupt): handle it, then go on where we were.
                context = m.save_context()
                self.run_async()
                m.restore_context(context)
                pc = result.pc
                if deadline is not None:
                    budget = int((deadline - time.monotonic()) * 1e6)
                    if budget <= 0:
                        result = RunResult(StopReason.LIMIT, pc)
                        break
        finally:
            self.depth -= 1
            self._in_host = in_host
            if not nested:
                self.deadline = None
        try:
            if result.reason is StopReason.EXIT:
                return self._read_values(ft.results)
            if self.interrupt_reason is not None and result.reason in (StopReason.STOPPED, StopReason.LIMIT):
                raise self._located(TrapCode.INTERRUPTED, result.pc, self.disassemble_at(result.pc),
                                    self.interrupt_reason)
            raise self._trap_from(result)
        finally:
            if saved is not None:
                m.restore_context(saved)

    # -- asynchronous events (interrupts) -----------------------------------------------------

    def request_async(self, callback) -> None:
        """Run ``callback()`` at the next safe point: at once if guest code is running (the CPU
        stops at the end of its current block, as for an interrupt, and resumes afterwards), when
        the running host function returns, or at the next ``run_async`` when nothing runs."""
        self._async.append(callback)
        if self.depth > 0 and not self._in_host:
            self.machine.stop()

    def run_async(self) -> None:
        """Run the callbacks waiting for a safe point (they may call into wasm)."""
        while self._async:
            self._async.pop(0)()

    def _write_values(self, types, values: list[int]) -> None:
        m = self.machine
        for loc, ty, bits in zip(abi_locations(types), types, values):
            if ty == I32:
                bits &= 0xFFFF_FFFF
                value = bits - (1 << 32) if bits >> 31 else bits
                value &= MASK64
            elif ty == F32:
                value = 0xFFFF_FFFF_0000_0000 | (bits & 0xFFFF_FFFF)  # NaN-boxed single
            else:
                value = bits & MASK64
            if isinstance(loc, RegLoc):
                m.set_reg(loc.reg.name, value)
            else:
                self.write_u64(L.ABI_AREA + loc.offset, value)

    def _read_values(self, types) -> list[int]:
        m = self.machine
        out = []
        for loc, ty in zip(abi_locations(types), types):
            if isinstance(loc, RegLoc):
                value = m.get_reg(loc.reg.name)
            else:
                value = self.read_u64(L.ABI_AREA + loc.offset)
            out.append(value & 0xFFFF_FFFF if ty in (I32, F32) else value & MASK64)
        return out

    def _trap_from(self, result) -> Exception:
        pc = result.pc
        if result.reason is StopReason.LIMIT:
            return Trap(TrapCode.INTERRUPTED, pc=pc, detail=f"time budget of {self.limits.time_us} us used up")
        loc = self.locate(pc)
        if result.reason is StopReason.BREAKPOINT and loc is not None:
            cm, module, base = loc
            site = cm.trap_at(pc - base)
            if site is not None:
                code, func, wasm = site
                detail = ""
                if code is TrapCode.SEGMENT_FAULT:  # the cold stub left the far pointer and the access
                    m = self.machine
                    info = m.get_reg("t5")
                    instance = self.instances.get(m.get_reg("s1"))
                    if instance is not None:
                        detail = instance.segments.explain(m.get_reg("t4"), info & 0xFF, bool(info >> 8))
                return Trap(code, func_index=func, func_name=module.get_func_name(func), wasm_offset=wasm, pc=pc,
                            insn="ebreak", source=self.source_location(module, wasm), detail=detail)
        if result.reason is StopReason.FAULT:
            fault = result.fault
            insn = fault.insn.text if fault.insn is not None else None
            if self.memory_at(fault.va) is not None:
                out_of_frames, self.out_of_frames = self.out_of_frames, False
                if out_of_frames and fault.va - self.memory_at(fault.va).base < self.memory_at(fault.va).size_bytes:
                    return ResourceLimitError(f"out of physical memory: the Store's {self.limits.ram_bytes} bytes "
                                              f"of RAM are used up (at va {fault.va:#x})")
                mem = self.memory_at(fault.va)
                offset = fault.va - mem.base
                # An access that runs past the memory's end is out of bounds, whichever of its pages
                # faulted first (a protected page before the end must not hide it: wasm checks bounds first).
                past_end = fault.access_va is not None and \
                    fault.access_va - mem.base + fault.access_size > mem.size_bytes
                if mem.ctl is not None and offset < mem.size_bytes and not past_end:
                    write = fault.access.value == "store"
                    why = mem.ctl.explain(offset, write)
                    if why is not None:
                        return self._located(TrapCode.MEMORY_ACCESS_DENIED, pc, insn,
                                             f"{'store' if write else 'load'}: {why}")
                return self._located(TrapCode.MEMORY_OUT_OF_BOUNDS, pc, insn,
                                     f"linear address {offset:#x}, memory size {mem.size_bytes:#x}")
            if L.STACK_TOP - (1 << 30) <= fault.va < self.stack_low + PAGE_SIZE:
                return self._located(TrapCode.STACK_OVERFLOW, pc, insn)
            return HwsimError(f"internal error: compiled code faulted outside any memory:\n{fault.format()}")
        return HwsimError(f"internal error: compiled code stopped unexpectedly: {result.describe()}")

    def locate(self, pc: int):
        for base, end, cm, module in self.modules:
            if base <= pc < end:
                return cm, module, base
        return None

    # -- calls from wasm to the host ---------------------------------------------------------------

    def _ecall(self, machine: Machine) -> EcallAction:
        if machine.active_space is not self.space:  # another Store's code (a newer Store on this machine)
            return EcallAction.DECLINE
        target = machine.get_reg("t6")
        if 0 < target <= MAX_BUILTIN:
            self._builtin(Builtin(target))
            return EcallAction.RESUME
        record = self.funcrefs.get(target)
        if record is None or record.host is None:
            raise HwsimError(f"internal error: ecall with t6={target:#x}, neither a builtin nor a host function")
        args = self._read_args(record.type.params)
        outer_caller = self.caller_vmctx
        self.caller_vmctx = machine.get_reg("t4")  # set by the call sequence (see RiscvMasm.call_ref)
        self._in_host += 1
        try:
            results = self._call_host(record, args)
        finally:
            self.caller_vmctx = outer_caller
            self._in_host -= 1
        if self._async:  # events that came while the host function ran: a safe point
            self.run_async()
        self._write_values(record.type.results, results)
        return EcallAction.RESUME

    def _read_args(self, types) -> list[int]:
        return self._read_values(types)

    def _call_host(self, record: FuncRecord, args: list[int]) -> list[int]:
        results = record.host(args)
        ft = record.type
        if len(results) != len(ft.results):
            raise HwsimError(f"host function returned {len(results)} values, its type has {len(ft.results)}")
        return results

    def _builtin(self, which: Builtin) -> None:
        from . import builtins
        m = self.machine
        vmctx = m.get_reg("s1")
        instance = self.instances[vmctx]
        try:
            getattr(builtins, which.name)(self, instance, m)
        except Trap as trap:
            if trap.pc is None:  # say where: the ecall that asked for the builtin
                raise self._located(trap.code, m.get_reg("pc") - 4, "ecall", trap.detail) from None
            raise

    def _located(self, code: TrapCode, pc: int | None, insn: str | None, detail: str = "") -> Trap:
        where = {}
        loc = self.locate(pc) if pc is not None else None
        if loc is not None:
            cm, module, base = loc
            wl = cm.wasm_location(pc - base)
            if wl is not None:
                where = dict(func_index=wl[0], func_name=module.get_func_name(wl[0]), wasm_offset=wl[1],
                             source=self.source_location(module, wl[1]))
        return Trap(code, pc=pc, insn=insn, detail=detail, **where)

    def source_location(self, module, wasm_offset: int) -> str | None:
        """``file.c:line`` of a bytecode offset, when the module carries DWARF (built with -g)."""
        from ..wasm.dwarf import SourceMap
        source_map = self._source_maps.get(id(module))
        if source_map is None:
            source_map = self._source_maps[id(module)] = SourceMap(module)
        loc = source_map.locate(wasm_offset)
        return loc.format() if loc is not None else None

    # -- inspection ---------------------------------------------------------------------------

    def disassemble_at(self, pc: int) -> str | None:
        try:
            code = self.machine.read_virt(pc, 4)
        except HwsimError:
            return None
        insn = disassemble_one(code, pc)
        return insn.text if insn else None


__all__ = ["StoreLimits", "Trap", "VmStore"]
