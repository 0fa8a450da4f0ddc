"""The host<->guest boundary of a Store (a part of :class:`~.store.VmStore`).

::

    host --invoke(record, args)--> marshal arguments (the signature's Crossing: crossing.py)
                                   pinned registers: s1 vmctx, s2 memory-0 base, s3 0xffffffff
                                   machine.run(pc, until=EXIT_ADDRESS)
         <--results or Trap------- EXIT: read results;  else classify: trap table (ebreak), a fault in a
                                   memory's reservation (bounds, page protection), below the stack
                                   (exhaustion), a limit or an interrupt (interrupted)
    guest --ecall t6=id--> builtin  DISPATCH[Builtin(id)](store, instance, machine)  (runtime/builtins)
    guest --ecall t6=record--> host function (may call back into wasm: a nested run on the same stack)

Asynchronous events (a device interrupt, ``interrupt()`` from another thread
or a signal handler) stop the CPU at the end of its current block and run at
that safe point; so does a ``request_checkpoint`` (checkpoints.py), which
parks the fuel count there so that the next checkpoint takes its slow path.

It uses the attributes of the VmStore declared at the top of
:class:`CallBoundary`, and its memory helpers (``read_u64``, ``write_u64``,
``memory_at``); metering's part (``park_fuel``, ``fuel_to_register``, ``fuel_to_cell``)
is in checkpoints.py.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, cast

from ..compiler import CompiledModule
from ..compiler.builtins import MAX_BUILTIN, Builtin
from ..compiler.traps import TrapCode
from ..errors import HwsimError
from ..machine import EcallAction, Machine, RunResult, StopReason
from ..mmu.bits import PAGE_SIZE
from ..riscv.disasm import disassemble_one
from ..wasm.module import DecodedModule
from . import layout as L
from .builtins import DISPATCH
from .crossing import Crossing
from .errors import Frame, ResourceLimitError, Trap
from .exceptions import Exn, UncaughtException, throw_from_host
from .objects import FuncRecord, MemoryInstance
from .threads import Blocked

if TYPE_CHECKING:
    from ..machine.machine import RegisterBatch
    from ..mmu.aspace import AddressSpace
    from ..wasm.dwarf import SourceMap
    from .instance import VmInstance
    from .store import StoreLimits, VmStore
    from .threads import Scheduler


# Globals: an enum member is a descriptor lookup (~50 ns) on the hot path.
_RESUME, _DECLINE = EcallAction.RESUME, EcallAction.DECLINE
_CHECKPOINT = int(Builtin.checkpoint)  # the commonest builtin of metered code, served without the dispatch
_EXIT, _LIMIT, _STOPPED = StopReason.EXIT, StopReason.LIMIT, StopReason.STOPPED


@dataclass(frozen=True, slots=True)
class LoadedCode:
    """One module's compiled code in the Store's code region."""

    base: int  # guest VA of the code
    end: int
    compiled: CompiledModule
    module: DecodedModule
    vmctx: int = 0  # the instance the code is loaded for (each instance has its own copy)


@dataclass(frozen=True, slots=True)
class WasmLocation:
    """Where compiled code at ``pc`` comes from: wasm function, bytecode offset, C line (with DWARF)."""

    pc: int
    func_index: int
    func_name: str | None
    wasm_offset: int
    source: str | None  # "file.c:line", when the module carries DWARF

    def format(self) -> str:
        """``file.c:12 (probe) [wasm function 3 (probe) offset 0xe1]``, or the wasm part alone."""
        name = f" ({self.func_name})" if self.func_name else ""
        wasm = f"wasm function {self.func_index}{name} offset {self.wasm_offset:#x}"
        return f"{self.source} [{wasm}]" if self.source else wasm


class CallBoundary:
    """Calls into wasm, ecalls out of it, traps, asynchronous events (a mixin of VmStore)."""

    # The VmStore's state this part uses (VmStore.__init__ sets it).
    machine: Machine  # the hart the Store's code runs on now (bind_hart)
    home: Machine  # hart 0
    space: AddressSpace
    limits: StoreLimits
    instances: dict[int, VmInstance]  # vmctx VA -> instance
    funcrefs: dict[int, FuncRecord]  # record VA -> record
    code: list[LoadedCode]
    depth: int
    deadline: float | None
    interrupt_reason: str | None
    caller_vmctx: int
    out_of_frames: bool
    stack_low: int
    _async: list[Callable[[], object]]
    _in_host: int
    _source_maps: dict[int, SourceMap]  # id(DecodedModule) -> its DWARF line tables
    _crossings: dict[tuple[tuple[int, ...], tuple[int, ...]], Crossing]  # (params, results) -> its Crossing
    _ecall_regs: RegisterBatch  # crossing.ECALL_INT_REGS, read once per ecall
    _ecall_regs_fuel: RegisterBatch  # crossing.ECALL_FUEL_REGS, read instead while the count is in its register
    _ecall_regs_all: RegisterBatch  # crossing.ECALL_REGS, read for a host function with float arguments
    threads: Scheduler | None  # wasi-threads' scheduler (threads.py), once enabled

    if TYPE_CHECKING:  # StoreSpace's, in VmStore

        def read_u64(self, va: int) -> int: ...
        def write_u64(self, va: int, value: int) -> None: ...
        def memory_at(self, va: int) -> MemoryInstance | None: ...
        def bind_hart(self, hart: Machine) -> None: ...

        # CheckpointCounter's (checkpoints.py), in VmStore
        checkpoint_requests: int
        metered: bool
        _fuel_live: bool
        _checkpoint_requested: bool

        def park_fuel(self) -> None: ...
        def checkpoint_reached(self) -> None: ...
        def fuel_to_register(self) -> None: ...
        def fuel_to_cell(self) -> None: ...
        def fuel_bits_to_cell(self, bits: int) -> int: ...
        def fuel_kept_in_register(self, count: int) -> bool: ...

    def host_call_trap(self, code: TrapCode, detail: str) -> Trap:
        """The trap a host function raises to fail the wasm code that called it, located at the call
        (the host-call stub returns to ``ra``)."""
        return self._located(code, self.machine.get_reg("ra") - 4, "ecall", detail)

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
            raise (
                self._located(TrapCode.INTERRUPTED, pc, None, self.interrupt_reason)
                if pc is not None
                else Trap(TrapCode.INTERRUPTED, detail=self.interrupt_reason)
            )

    def check_deadline(self, where: str = "in a bulk memory operation") -> None:
        """Trap ``interrupted`` when the running call's time budget is used up: long host-side work
        (a bulk memory operation of gigabytes, a WASI program's sleep) calls this every so often, as
        guest code is stopped by the CPU's timer; ``where`` says what was running."""
        self.check_interrupt()
        if self.deadline is not None and time.monotonic() > self.deadline:
            raise Trap(TrapCode.INTERRUPTED, detail=f"time budget of {self.limits.time_us} us used up ({where})")

    def invoke(self, record: FuncRecord, args: list[int], *, caller_vmctx: int = 0) -> list[int]:
        """Call ``record`` with argument bit patterns; the results' bit patterns, or raise Trap.

        ``caller_vmctx``: when ``record`` is a host function, the instance its Caller sees (an
        instance running its start function, which is that host function); 0 for none, a call
        from the host."""
        m = self.machine
        ft = record.type
        if len(args) != len(ft.params):
            raise HwsimError(f"expected {len(ft.params)} arguments, got {len(args)}")
        nested = self.depth > 0
        saved = m.save_context() if nested else None
        if record.host is not None:  # calling a host function from the host: no guest code involved
            return list(self._call_host(record, args, caller_vmctx))
        if self.interrupt_reason is not None:
            self.check_interrupt()
        crossing = record.crossing
        if crossing is None or crossing.machine is not m:  # (a nested call on another hart than hart 0)
            crossing = self.crossing_of(record)
        sp = ((m.get_reg("sp") - 256) & ~15) if nested else L.STACK_TOP
        exit_address = L.NESTED_EXIT_ADDRESS if nested else L.EXIT_ADDRESS
        if nested:  # the interrupted code, for a debugger's backtrace (layout.NESTED_RECORD)
            for i, name in enumerate(L.NESTED_RECORD):
                self.write_u64(sp + 8 * i, m.get_reg(name))
        vmctx = self.read_u64(record.va + L.FUNCREF_VMCTX)
        # crossing.ENTRY_REGS: sp, ra (the exit), s0 (no frame), s1 vmctx, s2 memory-0 base, s3 the i32 mask
        crossing.enter(self, args, [sp, exit_address, 0, vmctx, self.read_u64(vmctx) if vmctx else 0, 0xFFFF_FFFF])
        self.depth += 1
        in_host, self._in_host = self._in_host, 0
        threads = self.threads if not nested and self.threads is not None else None
        if threads is not None:
            threads.begin()  # the root call: its code is thread 0; spawned threads run inside it
        try:
            pc = record.code
            budget = self.limits.time_us if not nested else 0
            deadline = time.monotonic() + budget / 1e6 if budget else None
            if not nested:
                self.deadline = deadline
            while True:
                # The fuel count's moves (checkpoints.py), each behind the test it starts with.
                if self._checkpoint_requested:
                    self.park_fuel()  # a safe point: honour a request_checkpoint
                requests = self.checkpoint_requests
                if self.metered:
                    self.fuel_to_register()
                insns = threads.instruction_budget() if threads is not None else 0
                try:
                    result = m.run(pc, until=exit_address, timeout_us=budget, max_insns=insns)
                except Trap as at_ecall:  # from a builtin (or a checkpoint handler) at an ecall
                    if not at_ecall.frames and at_ecall.pc is not None:
                        self._attach_frames(at_ecall, at_ecall.pc)
                    if saved is not None:  # the host may catch it (an exception it lets through is thrown
                        m.restore_context(saved)  # on from its call site: calls._ecall) and go on
                    raise
                finally:
                    if self._fuel_live:
                        self.fuel_to_cell()
                reason = result.reason
                pc = result.pc
                if self.interrupt_reason is not None and reason is not _EXIT:
                    break
                if reason is _LIMIT and requests != self.checkpoint_requests:
                    pass  # stopped for a request_checkpoint: park the count (above) and go on
                elif reason is _EXIT and threads is not None and threads.running_spawned():
                    pc = threads.thread_finished()  # a spawned thread's entry returned: run another
                    m = self.machine  # (its hart)
                elif reason is _LIMIT and insns and (deadline is None or time.monotonic() < deadline):
                    assert threads is not None  # (insns is 0 without them)
                    threads.preempt()  # the slice's instructions are used up, at any instruction
                elif reason is not _STOPPED:
                    break
                elif self._async:
                    # Stopped for an asynchronous event (an interrupt): handle it, then go on where we were.
                    context = m.save_context()
                    self.run_async()
                    m.restore_context(context)
                # else: the event already ran at a safe point the guest reached before the stop landed (the
                # return of a host function, a checkpoint's slow path): just go on.
                if threads is not None and threads.switch_pending:
                    pc = threads.switch(pc)  # a time slice ended or the thread blocked: the next thread
                    m = self.machine  # (its hart)
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
            if threads is not None:
                threads.end()  # whatever ended the root call (a return, a trap, an exit) ends every thread
        try:
            if result.reason is _EXIT:
                return crossing.results_from(self)
            if self.interrupt_reason is not None and result.reason in (StopReason.STOPPED, StopReason.LIMIT):
                raise self._located(
                    TrapCode.INTERRUPTED, result.pc, self.disassemble_at(result.pc), self.interrupt_reason
                )
            trap = self._trap_from(result)
            if isinstance(trap, Trap) and not trap.frames and result.reason is not StopReason.LIMIT:
                self._attach_frames(trap, result.pc)
            raise trap
        finally:
            if saved is not None:
                m.restore_context(saved)
            if threads is not None:
                self.bind_hart(self.home)  # the trap above was read on the hart that stopped; back to hart 0

    def request_async(self, callback: Callable[[], object]) -> None:
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

    def crossing_of(self, record: FuncRecord) -> Crossing:
        """How ``record``'s values cross the boundary (one :class:`Crossing` per signature, kept on the record)."""
        ft = record.type
        crossing = self.crossing_for(tuple(ft.params), tuple(ft.results))
        if self.machine is self.home:  # (kept for hart 0's calls; another hart's come from its own table)
            record.crossing = crossing
        return crossing

    def crossing_for(self, params: tuple[int, ...], results: tuple[int, ...]) -> Crossing:
        """The :class:`Crossing` of a signature (made once per Store)."""
        key = (params, results)
        crossing = self._crossings.get(key)
        if crossing is None:
            crossing = self._crossings[key] = Crossing(self.machine, *key)
        return crossing

    def ecall_args(self, params: tuple[int, ...]) -> list[int]:
        """The arguments of the ecall being served, passed as a call of a function taking ``params`` passes
        them (a builtin whose operands depend on its first one: ``throw``'s payload, by its tag)."""
        return self.crossing_for(params, ()).args_from(self, self._ecall_regs_all.read())

    def trap_of(self, result: RunResult) -> Trap | None:
        """The Trap a call whose run stopped as ``result`` raises (a debugger shows it before the call
        does); None when the stop is no trap of compiled wasm code.  Nothing is changed."""
        out_of_frames = self.out_of_frames
        try:
            trap = self._trap_from(result)
        finally:
            self.out_of_frames = out_of_frames
        return trap if isinstance(trap, Trap) else None

    def _trap_from(self, result: RunResult) -> Exception:
        pc = result.pc
        if result.reason is StopReason.LIMIT:
            return Trap(TrapCode.INTERRUPTED, pc=pc, detail=f"time budget of {self.limits.time_us} us used up")
        loaded = self.locate(pc)
        if result.reason is StopReason.BREAKPOINT and loaded is not None:
            module = loaded.module
            site = loaded.compiled.trap_at(pc - loaded.base)
            if site is not None:
                code, func, wasm = site
                detail = ""
                if code is TrapCode.SEGMENT_FAULT:  # the cold stub left the far pointer and the access
                    m = self.machine
                    info = m.get_reg("t5")
                    instance = self.instances.get(m.get_reg("s1"))
                    if instance is not None:
                        detail = instance.segments.explain(m.get_reg("t4"), info & 0xFF, bool(info >> 8))
                return Trap(
                    code,
                    func_index=func,
                    func_name=module.get_func_name(func),
                    wasm_offset=wasm,
                    pc=pc,
                    insn="ebreak",
                    source=self.source_location(module, wasm),
                    detail=detail,
                )
        if result.reason is StopReason.FAULT:
            fault = result.fault
            assert fault is not None  # a FAULT result carries its fault
            insn = fault.insn.text if fault.insn is not None else None
            mem = self.memory_at(fault.va)
            if mem is not None:
                out_of_frames, self.out_of_frames = self.out_of_frames, False
                if out_of_frames and fault.va - mem.base < mem.size_bytes:
                    return ResourceLimitError(
                        f"out of physical memory: the Store's {self.limits.ram_bytes} bytes "
                        f"of RAM are used up (at va {fault.va:#x})"
                    )
                offset = fault.va - mem.base
                # An access that runs past the memory's end is out of bounds, whichever of its pages
                # faulted first (a protected page before the end must not hide it: wasm checks bounds first).
                past_end = (
                    fault.access_va is not None
                    and fault.access_size is not None  # decoded together with access_va
                    and fault.access_va - mem.base + fault.access_size > mem.size_bytes
                )
                if mem.ctl is not None and offset < mem.size_bytes and not past_end:
                    write = fault.access.value == "store"
                    why = mem.ctl.explain(offset, write)
                    if why is not None:
                        return self._located(
                            TrapCode.MEMORY_ACCESS_DENIED, pc, insn, f"{'store' if write else 'load'}: {why}"
                        )
                return self._located(  # the detail in wasmtime's words
                    TrapCode.MEMORY_OUT_OF_BOUNDS,
                    pc,
                    insn,
                    f"memory fault at wasm address {offset:#x} in linear memory of size {mem.size_bytes:#x}",
                )
            if L.STACK_TOP - (1 << 30) <= fault.va < self.stack_low + PAGE_SIZE or (
                L.STACK_TOP <= fault.va < L.THREAD_STACKS_END  # a thread's guard (its stack is demand paged)
            ):
                return self._located(TrapCode.STACK_OVERFLOW, pc, insn)
            return self._unexpected(f"compiled code faulted outside any memory:\n{fault.format()}", pc)
        return self._unexpected(f"compiled code stopped unexpectedly: {result.describe()}", pc)

    def _unexpected(self, text: str, pc: int) -> Exception:
        """A stop compiled code never makes: a bug of hwsim's, unless a debugger changed the hart's
        registers or memory (then it is the run's trap, saying so)."""
        if self.machine.debug.altered:
            return Trap(
                "the code did what compiled wasm never does, after a debugger changed the hart's registers or memory",
                pc=pc,
                detail=text.splitlines()[0].rstrip(":"),
            )
        return HwsimError(f"internal error: {text}")

    def _attach_frames(self, trap: Trap, pc: int) -> None:
        """Give ``trap`` its wasm backtrace from ``pc``; the innermost frame's offset is the trap site's
        (the trap table's, exact: the stub an ``ebreak`` sits in maps to the code around it)."""
        frames = self.backtrace(pc)
        if frames and trap.wasm_offset is not None and frames[0].func_index == trap.func_index:
            inner = frames[0]
            moved = trap.wasm_offset - inner.module_offset
            frames[0] = replace(inner, module_offset=trap.wasm_offset, func_offset=inner.func_offset + moved)
        trap.frames = frames

    def backtrace(self, pc: int, limit: int = 1000) -> list[Frame]:
        """The wasm frames from ``pc`` outwards, walking the frame-pointer chain compiled code keeps
        (``[fp - 8]`` the return address, ``[fp - 16]`` the caller's fp; a cross-instance tail call's frame
        is passed through); it ends at the first return address outside compiled code (the host's call into wasm) or anything unreadable."""
        frames: list[Frame] = []
        fp = self.machine.get_reg("s0")
        while len(frames) < limit:
            loaded = self.locate(pc)
            located = loaded.compiled.wasm_location(pc - loaded.base) if loaded is not None else None
            if loaded is None or located is None:
                break
            func, offset = located
            module = loaded.module
            defined = func - module.num_imported_funcs
            start = module.funcs[defined].body_offset if 0 <= defined < len(module.funcs) else offset
            names = module.names
            frames.append(
                Frame(func, module.get_func_name(func), names.module_name if names else None, offset, offset - start)
            )
            if fp & 7 or fp < 16:
                break
            try:
                pc, fp = self.read_u64(fp - 8), self.read_u64(fp - 16)
                if pc == L.TAIL_RETURN_STUB and not fp & 7 and fp >= 16:  # a cross-instance tail call's frame
                    pc, fp = self.read_u64(fp - 8), self.read_u64(fp - 16)
            except HwsimError:
                break
            pc -= 4  # the call, not the instruction after it
        return frames

    def locate(self, pc: int) -> LoadedCode | None:
        """The module whose compiled code holds ``pc``."""
        for loaded in self.code:
            if loaded.base <= pc < loaded.end:
                return loaded
        return None

    def wasm_location(self, pc: int) -> WasmLocation | None:
        """The wasm function, bytecode offset and (with DWARF) C line of compiled code at ``pc``."""
        loaded = self.locate(pc)
        if loaded is None:
            return None
        wl = loaded.compiled.wasm_location(pc - loaded.base)
        if wl is None:
            return None
        func, offset = wl
        return WasmLocation(
            pc, func, loaded.module.get_func_name(func), offset, self.source_location(loaded.module, offset)
        )

    def _ecall(self, machine: Machine) -> EcallAction:
        """An ecall of this Store's code: a builtin (by number) or a host function (by record), in t6.

        The hot path of every host call: the registers it needs are read in one batch, the values
        cross as the record's :class:`~.crossing.Crossing` says, and the fuel count moves only when
        the code is metered: out of its register in the same batch, into the cell (host code sees, and
        may change, the count there), and back into the register only if it changed
        (``fuel_kept_in_register``)."""
        if machine.active_space is not self.space:  # another Store's code (a newer Store on this machine)
            return _DECLINE
        count = None  # the count as the register held it (metered code)
        if self._fuel_live:
            regs = self._ecall_regs_fuel.read()  # crossing.ECALL_FUEL_REGS: ECALL_INT_REGS, then the count
            count = self.fuel_bits_to_cell(regs[-1])
        else:
            regs = self._ecall_regs.read()  # crossing.ECALL_INT_REGS: t6, t4, the integer argument registers
        target = regs[0]
        if target == _CHECKPOINT:  # builtins.checkpoint, without the instance it does not use (nor the dispatch)
            try:
                self.checkpoint_reached()
            except Trap as trap:
                if trap.pc is None:  # say where, as _builtin does
                    raise self._located(trap.code, machine.get_reg("pc") - 4, "ecall", trap.detail) from None
                raise
        elif 0 < target <= MAX_BUILTIN:
            try:
                self._builtin(Builtin(target))
            except Blocked as blocked:  # memory.atomic.wait: the thread waits; the hart runs another
                blocked.finish = self._set_a0
                self._block(blocked)
        else:
            record = self.funcrefs.get(target)
            if record is None or record.host is None:
                raise self._unexpected(
                    f"ecall with t6={target:#x}, neither a builtin nor a host function", machine.get_reg("pc") - 4
                )
            crossing = record.crossing
            if crossing is None or crossing.machine is not machine:
                crossing = self.crossing_of(record)
            if crossing.float_params:
                regs = self._ecall_regs_all.read()
            if crossing.param_area:
                args = crossing.args_from(self, regs)
            else:  # all in registers: Crossing.args_from's first loop, inlined (once per host call)
                args = []
                for where, mask in crossing.ecall_masks:
                    args.append(regs[where] & mask)
            outer_caller = self.caller_vmctx
            self.caller_vmctx = regs[1]  # t4, set by the call sequence (see RiscvMasm.call_ref)
            self._in_host += 1
            thrown = None
            try:
                results = record.host(args)
            except Blocked as blocked:  # a WASI call that must wait (runtime/threads.py): results later
                blocked.finish = lambda values, crossing=crossing: crossing.results_to(self, values)
                self._block(blocked)
                results = None
            except UncaughtException as exc:  # a wasm exception raised by (or through) the host function
                thrown, results = exc.exn, None
            finally:
                self.caller_vmctx = outer_caller
                self._in_host -= 1
            if thrown is not None:
                throw_from_host(cast("VmStore", self), thrown)  # lands on a handler in this run, or raises on
            elif results is not None:
                if len(results) != crossing.n_results:
                    raise HwsimError(f"host function returned {len(results)} values, its type has {crossing.n_results}")
                if self._async:  # events that came while the host function ran: a safe point
                    self.run_async()
                crossing.results_to(self, results)
                if count is not None and self.fuel_kept_in_register(count):
                    return _RESUME  # the register still holds the count: nothing changed it
        if self._checkpoint_requested:
            self.park_fuel()  # a safe point
        if self.metered:
            self.fuel_to_register()
        return _RESUME

    def located_exception(self, exn: Exn, pc: int) -> UncaughtException:
        """The Trap an exception nobody caught raises at the host, located at ``pc`` (its throw, or the call
        it left this run's wasm frames by), with the wasm backtrace from there."""
        loc = self.wasm_location(pc)
        where = (
            {}
            if loc is None
            else dict(
                func_index=loc.func_index, func_name=loc.func_name, wasm_offset=loc.wasm_offset, source=loc.source
            )
        )
        exc = UncaughtException(exn, pc=pc, insn="ecall", **where)
        self._attach_frames(exc, pc)
        return exc

    def _set_a0(self, results: list[int]) -> None:
        self.machine.set_reg("a0", results[0])

    def _block(self, blocked: Blocked) -> None:
        if self.threads is None or not self.threads.can_block():
            raise HwsimError(f"internal error: {blocked.what} blocked with no thread scheduler running")
        self.threads.block(blocked)

    def _call_host(self, record: FuncRecord, args: list[int], caller_vmctx: int) -> list[int]:
        outer_caller, self.caller_vmctx = self.caller_vmctx, caller_vmctx
        try:
            results = record.host(args)
        finally:
            self.caller_vmctx = outer_caller
        ft = record.type
        if len(results) != len(ft.results):
            raise HwsimError(f"host function returned {len(results)} values, its type has {len(ft.results)}")
        return results

    def _builtin(self, which: Builtin) -> None:
        m = self.machine
        vmctx = m.get_reg("s1")
        instance = self.instances[vmctx]
        try:
            DISPATCH[which](self, instance, m)
        except Trap as trap:
            if trap.pc is None:  # say where: the ecall that asked for the builtin
                raise self._located(trap.code, m.get_reg("pc") - 4, "ecall", trap.detail) from None
            raise

    def _located(self, code: TrapCode, pc: int | None, insn: str | None, detail: str = "") -> Trap:
        loc = self.wasm_location(pc) if pc is not None else None
        if loc is None:
            return Trap(code, pc=pc, insn=insn, detail=detail)
        return Trap(
            code,
            pc=pc,
            insn=insn,
            detail=detail,
            func_index=loc.func_index,
            func_name=loc.func_name,
            wasm_offset=loc.wasm_offset,
            source=loc.source,
        )

    def source_location(self, module: DecodedModule, wasm_offset: int) -> str | None:
        """``file.c:line`` of a bytecode offset, when the module carries DWARF (built with -g)."""
        from ..wasm.dwarf import SourceMap

        source_map = self._source_maps.get(id(module))
        if source_map is None:
            source_map = self._source_maps[id(module)] = SourceMap(module)
        loc = source_map.locate(wasm_offset)
        return loc.format() if loc is not None else None

    def disassemble_at(self, pc: int) -> str | None:
        try:
            code = self.machine.read_virt(pc, 4)
        except HwsimError:
            return None
        insn = disassemble_one(code, pc)
        return insn.text if insn else None
