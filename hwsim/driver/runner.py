"""Running a sandboxed driver: a wasm module on a board's machine, with the ``hwsim`` host interface.

The driver's Store sits on the board's :class:`~hwsim.machine.Machine`, so
device windows and RAM are the board's.  ``hwsim_mmio_map(name)`` maps the
device's register window into the driver's memory 0 through page tables (at
linear addresses from :data:`MMIO_WINDOWS`); compiled code then reaches the
device with ordinary loads and stores, each one an MMIO access with its
width.  The run is deterministic: virtual time moves when the driver waits
or sleeps, and by a fixed amount per MMIO access (the board's
``mmio_access_ticks``).  Interrupts reach a driver by ``hwsim_irq_wait`` or,
asynchronously, through a handler it registers (see :mod:`.irq`).

Device assignment is a capability, as VFIO's: a driver is given the board's
assignable devices (or those ``assign`` names), and only those.  Windows,
DMA and interrupts of any other device are refused: ``hwsim_mmio_map``
returns NULL, a DMA mapping fails, a wait returns 0, and the report names
the device and the rule.  Platform devices (interrupt controller, IOMMU,
timer) are never assignable, so no driver can touch the registers that
decide translation, interrupt routing or another device's isolation.

Limits: the virtual-time limit ends waits and sleeps; a wait or sleep begun
after it, or driver code still running when device accesses carry time past
it, stops the run (trap ``interrupted``).  A wall-clock limit and Ctrl-C stop
running code at its next safe point too (see :mod:`.control`).
"""

from __future__ import annotations

import errno
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from ..compiler.traps import TrapCode
from ..devices.virtio import VirtioMmio
from ..errors import HwsimError
from ..mmu.bits import PAGE_SIZE, Pte
from ..runtime import api
from ..runtime.internal import api_memory, vm_instance, vm_module, vm_store
from ..runtime.store import Trap
from ..trace import TRACE
from ..wasm.module import ACTIVE
from ..wasm.types import I32, I64
from .control import RunControl, StopCause
from .cputime import CpuTime
from .dma import DmaChecker
from .irq import HANDLER, IDLE_STEP_TICKS, IrqDispatcher, IrqError
from .virtio import VirtioChecker

MMIO_WINDOWS = 0xF000_0000  # the linear addresses of device windows in a driver's memory 0
WINDOW_MODULE = "hwsim:mmio"
_STRING_FIRST = frozenset(
    {
        "mmio_map",
        "irq_wait",
        "log",
        "dma_map",
        "dma_unmap",
        "dma_sync_for_cpu",
        "dma_sync_for_device",
        "dma_alloc_coherent",
        "dma_free_coherent",
        "request_irq",
        "free_irq",
    }
)  # (import "hwsim:mmio" "uart0" (memory ...)): a device window as a memory
__all__ = [
    "DriverError",
    "DriverRun",
    "EXIT_FAILED",
    "EXIT_OK",
    "IDLE_STEP_TICKS",
    "MMIO_WINDOWS",
    "RunReport",
    "WINDOW_MODULE",
    "describe_errno",
    "log_lines",
]

EXIT_OK = 0
EXIT_FAILED = 1  # a trap, a DMA fault or bug, a refused device, an interrupt problem, probe() < 0


LOG_LINE_LIMIT = 1000  # characters of one driver log line shown on the terminal


def log_lines(text: str) -> list[str]:
    """A driver's log text as it may reach a terminal: one entry per line, control characters
    escaped (no escape sequence can move the cursor or forge a report line), long lines cut."""
    out = []
    for line in text.split("\n"):
        shown = "".join(c if c.isprintable() or c == "\t" else repr(c)[1:-1] for c in line[:LOG_LINE_LIMIT])
        if len(line) > LOG_LINE_LIMIT:
            shown += f"... ({len(line) - LOG_LINE_LIMIT} more characters)"
        out.append(shown)
    return out


def describe_errno(value: int) -> str:
    """``-19`` -> ``-19 (ENODEV)``: a negative kernel-style return value with its errno name."""
    name = errno.errorcode.get(-value) if value < 0 else None
    return f"{value} ({name})" if name else str(value)


class DriverError(HwsimError):
    """The driver cannot run: a missing export or import, a bad device name, no memory."""


@dataclass
class RunReport:
    result: object = None
    trap: Trap | None = None
    mmio_accesses: int = 0
    dma_requests: int = 0
    dma_faults: list = field(default_factory=list)
    device_issues: list = field(default_factory=list)
    dma_reports: list = field(default_factory=list)
    protocol_reports: list = field(default_factory=list)  # virtio ring rules the driver broke (driver/virtio.py)
    log: list[str] = field(default_factory=list)
    virtual_ns: int = 0
    irq_calls: int = 0  # calls of the driver's interrupt handler
    irq_problems: list[str] = field(default_factory=list)
    in_flight: list[str] = field(default_factory=list)  # devices still busy when the run ended
    refusals: list[str] = field(default_factory=list)  # accesses to devices not assigned to the driver
    entry: str = "probe"
    stopped: StopCause | None = None  # stopped from outside: a time limit or Ctrl-C
    sandboxed: bool = True  # False for native firmware: no IOMMU translation, no DMA checker
    failure: str | None = None  # native firmware stopped from outside: why, and where
    seed: int | None = None  # the timing seed of the board (None: nominal timing)
    faults: list = field(default_factory=list)  # injected faults that fired (devices/faults.FiredFault)
    harts: tuple = ()  # native firmware on several harts: each hart's machine/harts.HartStats
    hart_seed: int | None = None  # the seed of the harts' interleaving
    hart_trace: str = ""  # its trace hash
    hart_schedule: str = "random"  # how the turns were picked (machine/schedules.py)

    @property
    def probe_failed(self) -> bool:
        """``probe()`` returned a negative value (a kernel-style error), as Linux's probe does."""
        return self.entry == "probe" and self.trap is None and isinstance(self.result, int) and self.result < 0

    @property
    def ok(self) -> bool:
        return (
            self.trap is None
            and self.failure is None
            and not self.dma_faults
            and not self.dma_reports
            and not self.protocol_reports
            and not self.irq_problems
            and not self.refusals
            and not self.probe_failed
            and not self.in_flight
            and not self.device_issues
        )

    @property
    def exit_status(self) -> int:
        """What ``hwsim run`` exits with: 0, 1 (see EXIT_FAILED), 124 (a time limit), 130 (Ctrl-C)."""
        if self.stopped is not None:
            return self.stopped.value
        return EXIT_OK if self.ok else EXIT_FAILED

    def format(self) -> str:
        lines = ["-- hwsim run report --"]
        if self.trap is not None and self.stopped is StopCause.USER:
            lines.append(f"driver stopped by the user: {self.trap.summary}")
        elif self.trap is not None and self.trap.code is TrapCode.INTERRUPTED:
            lines.append(f"driver stopped: {self.trap.summary}")
        elif self.trap is not None:
            lines.append(f"driver trapped: {self.trap.summary}")
        elif self.failure is not None:
            lines.append(
                f"{'driver stopped by the user' if self.stopped is StopCause.USER else 'driver stopped'}: "
                f"{self.failure}"
            )
        elif self.probe_failed:
            assert isinstance(self.result, int)  # probe_failed checked it
            lines.append(f"probe() returned {describe_errno(self.result)}: the driver failed to probe")
        else:
            lines.append(f"driver returned {self.result!r}")
        if self.seed is not None:
            lines.append(f"timing seed {self.seed} (replay: --seed {self.seed})")
        if not self.sandboxed:
            lines.append(
                "native firmware, unsandboxed: the DMA checker is off (physical DMA, IOMMU in bare "
                "mode); run the wasm build to check DMA"
            )
        lines.append(
            f"MMIO accesses: {self.mmio_accesses}; DMA requests: {self.dma_requests}; "
            f"DMA faults: {len(self.dma_faults)}; "
            + (f"DMA bugs: {len(self.dma_reports)}; " if self.sandboxed else "")
            + (f"virtio bugs: {len(self.protocol_reports)}; " if self.protocol_reports else "")
            + f"virtual time: {self.virtual_ns / 1e6:.3f} ms"
            + (f"; interrupt handler calls: {self.irq_calls}" if self.irq_calls else "")
        )
        lines += [f"  {problem}" for problem in self.irq_problems]
        if self.harts:
            schedule = f" --schedule {self.hart_schedule}" if self.hart_schedule != "random" else ""
            lines.append(
                f"{len(self.harts)} harts, seed {self.hart_seed} (replay: --hart-seed {self.hart_seed}{schedule}), "
                f"trace {self.hart_trace}"
            )
            lines += [
                f"  hart {s.hartid}: {s.turns} turns, IPIs sent {s.ipis_sent} received {s.ipis_received}, "
                f"interrupts {s.interrupts}, fences {s.fences}, wfi {s.wfi_parks}"
                for s in self.harts
            ]
        if self.in_flight:
            lines.append(f"device work still in flight at the end of the run: {', '.join(self.in_flight)}")
        if self.faults:
            lines.append(f"injected faults ({len(self.faults)}): " + ", ".join(f.format() for f in self.faults))
        if self.refusals:
            lines.append(f"refused ({len(self.refusals)}): the driver reached for devices it was not given")
            lines += [f"  {refusal}" for refusal in self.refusals]
        for r in self.dma_reports:
            lines += ["  " + line for line in r.format().splitlines()]
        for r in self.protocol_reports:
            lines += ["  " + line for line in r.format().splitlines()]
        if self.dma_faults:
            lines.append(f"IOMMU fault records ({len(self.dma_faults)}):")
            lines += ["  " + line for f in self.dma_faults for line in f.format().splitlines()[:1]]
        if self.device_issues:
            lines.append(f"device misuse ({len(self.device_issues)}):")
            lines += [f"  {i.format()}" for i in self.device_issues]
        return "\n".join(lines)


class _DriverMemory:
    """The driver's memory 0 as the DMA checker sees it (:class:`~hwsim.driver.dma.DriverMemory`)."""

    def __init__(self, vm, memory) -> None:
        self._vm = vm
        self._memory = memory
        self.base = memory.base
        self.page_size = memory.page_size

    @property
    def size_bytes(self) -> int:
        return self._memory.size_bytes

    def grow(self, pages: int) -> int:
        return self._memory.grow(pages)

    def frame_of(self, linear: int) -> int | None:
        return self._vm.frame_of(self.base + (linear & ~(PAGE_SIZE - 1)))

    def forbidden(self, linear: int, size: int, write: bool) -> str | None:
        ctl = self._memory.ctl
        if ctl is None:
            return None
        try:
            ctl.check_guest_access(linear, size, write)
        except Trap as trap:
            return trap.detail
        return None

    def revoke(self, linear: int, size: int, why: str) -> None:
        self._memory.control().revoke(linear, size, why)


class DriverRun:
    def __init__(
        self,
        system,
        wasm: bytes | api.Module,
        *,
        engine: api.Engine | None = None,
        log: Callable[[str], None] | None = None,
        time_limit_ns: int = 10 * 1_000_000_000,
        wall_limit_s: float | None = None,
        assign: Iterable[str] | None = None,
        catch_sigint: bool = False,
    ) -> None:
        """``time_limit_ns``: the virtual-time limit; ``wall_limit_s``: a wall-clock limit for each
        :meth:`run` (None: none); ``assign``: the devices the driver is given (default: every
        assignable device of the board); ``catch_sigint``: Ctrl-C stops a run with its report."""
        self.system = system
        self._where: dict[int, str] = {}  # pc -> where_pc's text
        self._access_names: dict[int, str | None] = {}  # pc -> _name_access's text (a device's START, each time)
        clock = system.clock
        TRACE.clock = lambda: clock.ticks_to_ns(clock.now)  # trace timestamps: this board's virtual time, from now
        self.assigned = self._check_assignment(system, assign)
        self.refusals: list[str] = []
        self.wall_limit_s = wall_limit_s
        self.catch_sigint = catch_sigint
        # Metered code: the instructions the driver executes take virtual time (cputime.py).
        per_us = system.board.instructions_per_us
        self.engine = engine or api.Engine(metering=per_us > 0)
        self.store = api.Store(self.engine, machine=system.machine)
        self.vm = vm_store(self.store)  # the engine side of the Store: address space, interrupts, locations
        # The module may come compiled already (exploration instantiates one module in many runs).
        self.module = wasm if isinstance(wasm, api.Module) else api.Module(self.engine, wasm)
        self.cpu_time = (
            CpuTime(self.vm, clock, per_us, machine=system.machine) if per_us and self.module.engine.metering else None
        )
        self.log_sink = log or (lambda text: print(f"[driver] {text}", file=sys.stderr))
        self.log: list[str] = []
        self.time_limit_ticks = time_limit_ns * system.clock.frequency_hz // 1_000_000_000
        self.windows: dict[str, int] = {}
        self.next_window = MMIO_WINDOWS
        self.window_memories: dict[str, object] = {}  # device name -> memory imported as its window
        imports = [
            self._import_window(imp)
            if imp.module == WINDOW_MODULE
            else self._import(imp.module, imp.name, imp.kind.name.lower())
            for imp in vm_module(self.module).imports
        ]
        self.instance = api.Instance(self.store, self.module, imports)
        inner = vm_instance(self.instance)
        own = [m for m in inner.memories if not any(m is w for w in self.window_memories.values())]
        if not own:
            raise DriverError(
                "the driver has no memory of its own (the host interface's pointers point into "
                "its first memory that is not a device window)"
            )
        self.memory = own[0]
        self.null_page_protected = self._protect_null_page()
        # Device windows live above MMIO_WINDOWS: the memory may not grow into them.
        self.memory.max_pages = min(self.memory.max_pages, MMIO_WINDOWS // self.memory.page_size)
        devices = {spec.iommu_device_id: spec.name for spec in system.board.devices if spec.iommu_device_id is not None}
        self.dma = DmaChecker(
            iommu=system.iommu,
            machine=system.machine,
            memory=_DriverMemory(self.vm, self.memory),
            devices=devices,
            clock=system.clock,
            authorize=lambda name, call: self.granted(name, call) is not None,
            locate=self.where_pc,
            error=DriverError,
            window_base=MMIO_WINDOWS,
            cause=lambda name: system.device(name).work_cause,
        )
        if system.iommu is not None:
            self.vm.add_bulk_access_observer(self.dma.bulk_access)
            self.vm.add_release_observer(self.dma.released)
        self.irqs = IrqDispatcher(system, self._call_irq_handler, self.vm.request_async)
        # Device issues name the driver's C line of the register access that caused them.
        system.machine.track_mmio_pcs()
        system.add_access_locator(self._name_access)
        # The driver's side of the virtio ring rules, on the virtio devices it was given.
        self.virtio = VirtioChecker(machine=system.machine, dma=self.dma, clock=system.clock, locate=self.where_pc)
        for name in sorted(self.assigned):
            if isinstance(device := system.device(name), VirtioMmio):
                self.virtio.attach(name, device)
        clock.set_limit(self.time_limit_ticks, self._virtual_time_up)

    @staticmethod
    def _check_assignment(system, assign: Iterable[str] | None) -> frozenset[str]:
        board = system.board
        if assign is None:
            return frozenset(board.assignable_devices())
        if isinstance(assign, str):
            raise DriverError(f"assign takes a collection of device names, not the string {assign!r}")
        names = list(assign)
        for name in names:
            system.device(name)  # a clear error naming the board's devices
            why = board.why_not_assignable(name)
            if why is not None:
                raise DriverError(
                    f"cannot assign {name!r} to the driver: {why} (assignable on board "
                    f"{board.name!r}: {', '.join(board.assignable_devices()) or 'none'})"
                )
        return frozenset(names)

    def granted(self, name: str, call: str):
        """The device ``name`` if it is assigned to the driver; else None, and the refusal is recorded
        (an unknown name is a :class:`DriverError`, as before)."""
        device = self.system.device(name)
        if name in self.assigned:
            return device
        why = (
            self.system.board.why_not_assignable(name)
            or f"{name} is not assigned to this driver (assigned: {', '.join(sorted(self.assigned)) or 'none'})"
        )
        self.refusals.append(f'{call}("{name}") refused at {self.where()}: {why}')
        return None

    def _virtual_time_up(self) -> None:
        """The clock reached the virtual-time limit: stop driver code that is still running (waits
        and sleeps end at the limit by themselves; driver code is caught at its next device access)."""
        store = self.vm
        if store.running_guest():
            store.interrupt(self._time_limit_text())

    def _time_limit_text(self) -> str:
        seconds = self.time_limit_ticks / self.system.clock.frequency_hz
        return f"virtual-time limit of {seconds:g} s reached while the driver was still running"

    def _drain(self) -> None:
        """Let virtual time pass while the clock holds device events, up to the time limit."""
        clock = self.system.clock
        while (deadline := clock.next_deadline) is not None and deadline <= self.time_limit_ticks:
            clock.advance_to(max(deadline, clock.now))
            self._safe_point()

    def close(self) -> None:
        """Give the board back: the DMA checker stops observing and frees the devices' IO address spaces
        (see :meth:`DmaChecker.close`).  Another DriverRun may then use the same board; this one may not
        run again.  Idempotent; ``with DriverRun(...) as run:`` closes it at the end."""
        self.dma.close()

    def __enter__(self) -> DriverRun:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def in_flight(self) -> list[str]:
        """Devices with work still in flight (``busy``): what a run ending now leaves undone."""
        return [name for name, dev in self.system.devices.items() if getattr(dev, "busy", False)]

    def _safe_point(self) -> None:
        """Between two steps of a wait or sleep: run what waits for a safe point (interrupt
        handlers), and stop here if the run was interrupted (Ctrl-C, the wall-clock limit)."""
        store = self.vm
        store.run_async()
        store.check_interrupt()

    def _check_time(self) -> None:
        """Before a wait or sleep: beginning one after the virtual-time limit stops the run."""
        store = self.vm
        if self.system.clock.now >= self.time_limit_ticks:
            store.interrupt(self._time_limit_text())
        store.check_interrupt()

    def _protect_null_page(self) -> bool:
        """Trap-on-null for the driver's memory: its first page becomes a no-access region when no data
        segment lives there and the module declares no layout of its own.  (zig puts the stack first,
        growing down to 0, so this also catches the stack running out.)"""
        from ..runtime.memctl import PAGE, SECTION

        module = vm_module(self.module)
        inner = self.memory
        if module.get_custom_sections(SECTION) or inner.ctl is not None or inner.size_bytes < PAGE:
            return False
        index = vm_instance(self.instance).memories.index(inner)
        for seg in module.datas:
            if seg.mode != ACTIVE or seg.memory_index != index:
                continue
            start = vm_instance(self.instance).eval_const(seg.offset_expr.instrs, inner.type.index_type)
            if start < PAGE and seg.data:
                return False
        inner.control().set_static(PAGE, 0)
        return True

    def error(self, message: str) -> DriverError:
        return DriverError(message)

    def where(self) -> str:
        """The driver code calling the host now: wasm function and bytecode offset of the call."""
        return self.where_pc(self.vm.machine.get_reg("ra") - 4)

    def _name_access(self, pc: int) -> str | None:
        """The C line of this driver's device access at ``pc`` (None: another address space's), made once
        per pc as :meth:`where_pc`'s text is."""
        if self.vm.machine.active_space is not self.vm.space:
            return None
        try:
            return self._access_names[pc]
        except KeyError:
            loc = self.vm.wasm_location(pc)
            text = self._access_names[pc] = loc.format() if loc is not None else None
            return text

    def where_pc(self, pc: int) -> str:
        """Source line (with DWARF), wasm function and bytecode offset of the compiled code at ``pc``
        (made once per pc: the driver's code does not move while this run has it)."""
        text = self._where.get(pc)
        if text is None:
            loc = self.vm.wasm_location(pc)
            text = self._where[pc] = loc.format() if loc is not None else f"pc {pc:#x}"
        return text

    # -- the host interface -------------------------------------------------------------------------

    def _import(self, module: str, name: str, kind: str):
        from ..compiler.intrinsics import MODULES as INTRINSIC_MODULES

        if module in INTRINSIC_MODULES:
            return None  # hwsim:memory and the like: the compiler lowers them, hwsim provides them
        funcs = {
            "mmio_map": ([I32, I32], [I32], self.mmio_map),
            "irq_wait": ([I32, I32], [I32], self.irq_wait),
            "log": ([I32, I32], [], self.write_log),
            "now_ns": ([], [I64], self.now_ns),
            "sleep_ns": ([I64], [], self.sleep_ns),
            "dma_map": ([I32, I32, I32, I32, I32], [I64], self.dma_map),
            "dma_unmap": ([I32, I32, I64, I32, I32], [], self.dma_unmap),
            "dma_sync_for_cpu": ([I32, I32, I64, I32, I32], [], self.dma_sync_for_cpu),
            "dma_sync_for_device": ([I32, I32, I64, I32, I32], [], self.dma_sync_for_device),
            "dma_alloc_coherent": ([I32, I32, I32, I32], [I32], self.dma_alloc_coherent),
            "dma_free_coherent": ([I32, I32, I32, I32, I64], [], self.dma_free_coherent),
            "request_irq": ([I32, I32, I32], [I32], self.request_irq),
            "free_irq": ([I32, I32], [], self.free_irq),
        }
        if module != "hwsim" or name not in funcs or kind != "func":
            known = ", ".join(sorted(funcs))
            raise DriverError(
                f"the driver imports {module}::{name}, which hwsim does not provide "
                f"(the host interface is module 'hwsim': {known}; see drivers/include/hwsim.h)"
            )
        params, results, fn = funcs[name]
        ft = api.FuncType([api.ValType(p) for p in params], [api.ValType(r) for r in results])
        return api.Func(self.store, ft, self._traced(name, fn))

    def _traced(self, name: str, fn):
        """``fn`` as a host function: a misuse of the interface (a bad name, size or direction) becomes
        a trap at the driver's call, so the run ends with its report; a host_call trace event (with the
        virtual time it took) when that is on."""
        clock = self.system.clock

        def guarded(*args):
            cpu_time = self.cpu_time
            if cpu_time is not None:
                cpu_time.sync()  # the host sees the time the driver's instructions took so far
            try:
                result = fn(*args)
                if cpu_time is not None:
                    cpu_time.after_host_call()
                return result
            except Trap:
                raise
            except HwsimError as exc:
                store = self.vm
                raise store.host_call_trap(TrapCode.HOST_INTERFACE, f"hwsim_{name}: {exc}") from None

        def call(*args):
            if TRACE.host_call is None:
                return guarded(*args)
            start = clock.now
            shown = [f"{a:#x}" if isinstance(a, int) else str(a) for a in args]
            if name in _STRING_FIRST and len(args) >= 2:  # (pointer, length) of a device name or log text
                try:
                    shown[:2] = [repr(self._string(args[0], args[1]))]
                except Trap:
                    pass
            result = guarded(*args)
            TRACE.host_call(
                name=name, args=", ".join(shown), result=result, duration_ns=clock.ticks_to_ns(clock.now - start)
            )
            return result

        return call

    def _import_window(self, imp) -> api.Memory:
        """``(import "hwsim:mmio" "uart0" (memory N (pagesize 1)))``: the device's register window as a
        memory of its own; every access in bounds is one MMIO access, the rest trap."""
        from ..runtime.objects import MemoryInstance
        from ..wasm.module import ExternKind
        from ..wasm.types import Limits, MemoryType

        where = f"the driver's import {WINDOW_MODULE}::{imp.name}"
        if imp.kind is not ExternKind.MEMORY:
            raise DriverError(f"{where} must be a memory (the device's register window)")
        try:
            self.system.device(imp.name)
        except HwsimError as exc:
            raise DriverError(f"{where}: {exc}") from None
        if imp.name not in self.assigned:
            why = (
                self.system.board.why_not_assignable(imp.name)
                or f"{imp.name} is not assigned to this driver (assigned: {', '.join(sorted(self.assigned)) or 'none'})"
            )
            raise DriverError(f"{where} is refused: {why}")
        region = next(r for r in self.system.machine.phys.mmio_regions if r.name == imp.name)
        want = imp.desc
        page = 1 << want.page_size_log2
        if want.index_type != I32:
            raise DriverError(f"{where}: a device window is a 32-bit memory")
        pages = region.size // page
        if want.limits.max is not None:
            pages = min(pages, want.limits.max)
        if pages < want.limits.min or pages == 0:
            hint = " (declare it with (pagesize 1))" if page > region.size else ""
            raise DriverError(
                f"{where}: the window of {imp.name!r} is {region.size:#x} bytes, less than the "
                f"{want.limits.min} pages of {page} bytes the driver asks for{hint}"
            )
        mtype = MemoryType(limits=Limits(min=pages, max=pages), index_type=I32, page_size_log2=want.page_size_log2)
        inner = MemoryInstance(self.vm, mtype, max_bytes=pages * page)
        size = (pages * page + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        self.vm.space.map(inner.base, region.base, size, Pte.R | Pte.W | Pte.U, page_size=PAGE_SIZE)
        memory = api_memory(self.store, inner)
        self.window_memories[imp.name] = memory
        return memory

    def _string(self, ptr: int, length: int) -> str:
        try:
            return self.memory.read(ptr & 0xFFFF_FFFF, length & 0xFFFF_FFFF).decode("utf-8", errors="replace")
        except IndexError:
            raise Trap(api.TrapCode.MEMORY_OUT_OF_BOUNDS, detail="string passed to the host") from None

    def mmio_map(self, ptr: int, length: int) -> int:
        name = self._string(ptr, length)
        if name in self.windows:
            return self.windows[name]
        if self.granted(name, "hwsim_mmio_map") is None:
            return 0  # NULL: no window
        region = next(r for r in self.system.machine.phys.mmio_regions if r.name == name)
        linear = self.next_window
        size = (region.size + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        if linear + size > 1 << 32:
            raise DriverError(f"no room left for the window of {name!r} in the driver's memory")
        self.vm.space.map(self.memory.base + linear, region.base, size, Pte.R | Pte.W | Pte.U, page_size=PAGE_SIZE)
        self.windows[name] = linear
        self.next_window = linear + size
        return linear

    def irq_wait(self, ptr: int, length: int) -> int:
        """1 once the device's interrupt line is high; 0 when nothing more can happen or time is up."""
        device = self.granted(self._string(ptr, length), "hwsim_irq_wait")
        if device is None:
            return 0
        self._check_time()
        if device.irq is None:
            raise DriverError(f"hwsim_irq_wait: device {device.name!r} has no interrupt line on this board")
        seen, stop = self.irqs.seen(device)  # the line, after the board's interrupt-delivery latency
        try:
            return int(self.irqs.wait(seen, self.time_limit_ticks, self._safe_point, device=device))
        finally:
            stop()

    def request_irq(self, ptr: int, length: int, cookie: int) -> int:
        handler = self.instance.exports(self.store).get(HANDLER)
        name = self._string(ptr, length)
        if self.granted(name, "hwsim_request_irq") is None:
            return -errno.EPERM
        try:
            self.irqs.request(name, cookie, has_handler=isinstance(handler, api.Func))
        except IrqError as exc:
            raise DriverError(str(exc)) from None
        return 0

    def free_irq(self, ptr: int, length: int) -> None:
        name = self._string(ptr, length)
        if self.granted(name, "hwsim_free_irq") is None:
            return
        try:
            self.irqs.free(name)
        except IrqError as exc:
            raise DriverError(str(exc)) from None

    def _call_irq_handler(self, cookie: int) -> None:
        self.instance.exports(self.store)[HANDLER](self.store, cookie)

    def write_log(self, ptr: int, length: int) -> None:
        text = self._string(ptr, length)
        self.log.append(text)
        for line in log_lines(text):
            self.log_sink(line)

    # DMA (see hwsim.driver.dma): addresses and sizes are u32 in the driver, IOVAs u64.

    def dma_map(self, dev, dev_len, cpu, size, direction) -> int:
        return self.dma.map(self._string(dev, dev_len), cpu & 0xFFFF_FFFF, size & 0xFFFF_FFFF, direction, self.where())

    def dma_unmap(self, dev, dev_len, iova, size, direction) -> None:
        self.dma.unmap(self._string(dev, dev_len), iova & (1 << 64) - 1, size & 0xFFFF_FFFF, direction, self.where())

    def dma_sync_for_cpu(self, dev, dev_len, iova, size, direction) -> None:
        self.dma.sync(
            self._string(dev, dev_len), iova & (1 << 64) - 1, size & 0xFFFF_FFFF, direction, True, self.where()
        )

    def dma_sync_for_device(self, dev, dev_len, iova, size, direction) -> None:
        self.dma.sync(
            self._string(dev, dev_len), iova & (1 << 64) - 1, size & 0xFFFF_FFFF, direction, False, self.where()
        )

    def dma_alloc_coherent(self, dev, dev_len, size, iova_out) -> int:
        cpu, iova = self.dma.alloc_coherent(self._string(dev, dev_len), size & 0xFFFF_FFFF, self.where())
        self.memory.write(iova_out & 0xFFFF_FFFF, iova.to_bytes(8, "little"))
        return cpu

    def dma_free_coherent(self, dev, dev_len, size, cpu, iova) -> None:
        self.dma.free_coherent(
            self._string(dev, dev_len), size & 0xFFFF_FFFF, cpu & 0xFFFF_FFFF, iova & (1 << 64) - 1, self.where()
        )

    def now_ns(self) -> int:
        return self.system.clock.ticks_to_ns(self.system.clock.now)

    def sleep_ns(self, ns: int) -> None:
        ticks = (ns & (1 << 64) - 1) * self.system.clock.frequency_hz // 1_000_000_000
        self._check_time()
        self.irqs.sleep(min(ticks, max(0, self.time_limit_ticks - self.system.clock.now)), self._safe_point)

    # -- running ------------------------------------------------------------------------------------------

    def run(self, entry: str = "probe", args: tuple = ()) -> RunReport:
        exports = self.instance.exports(self.store)
        func = exports.get(entry)
        if not isinstance(func, api.Func):
            names = ", ".join(n for n in exports if isinstance(exports[n], api.Func))
            raise DriverError(f"the driver exports no function {entry!r} (functions: {names or 'none'})")
        if self.dma.closed:
            raise DriverError("this DriverRun was closed: make a new one to run the driver again")
        report = RunReport(log=self.log, entry=entry)
        machine = self.system.machine
        mmio_before = machine.mmio_accesses
        iommu = self.system.iommu
        requests_before = iommu.stats.requests if iommu is not None else 0
        faults_before = len(iommu.fault_log) if iommu is not None else 0
        dma_before = len(self.dma.reports)
        protocol_before = len(self.virtio.reports)
        refusals_before = len(self.refusals)
        calls_before, problems_before = self.irqs.calls, len(self.irqs.problems)
        store = self.vm
        control = RunControl(store, wall_limit_s=self.wall_limit_s, catch_sigint=self.catch_sigint)
        try:
            with control:
                try:
                    report.result = func(self.store, *args)
                    if self.cpu_time is not None:
                        self.cpu_time.settle()  # the instructions since the last charge take their time too
                    # Registered interrupt handlers go on working after the entry point returned.
                    self.irqs.serve(self.time_limit_ticks, self._safe_point)
                    # Device work still in flight (a transfer, a request) happens now, as it would on
                    # hardware after the driver returned: its DMA is checked like any other.
                    self._drain()
                except Trap as trap:
                    report.trap = trap
                    if TRACE.trap is not None:
                        TRACE.trap(code=trap.code.name.lower(), where=trap.summary)
        finally:
            interrupted = store.interrupt_reason
            store.clear_interrupt()
        if report.trap is not None and report.trap.code is TrapCode.INTERRUPTED and interrupted is not None:
            report.stopped = control.cause or StopCause.TIME_LIMIT
        report.irq_calls = self.irqs.calls - calls_before
        report.irq_problems = self.irqs.problems[problems_before:]
        report.in_flight = self.in_flight()
        report.refusals = self.refusals[refusals_before:]
        self.dma.check_leaks()
        report.dma_reports = self.dma.reports[dma_before:]
        self.virtio.check_end()
        report.protocol_reports = self.virtio.reports[protocol_before:]
        report.mmio_accesses = machine.mmio_accesses - mmio_before
        if iommu is not None:
            report.dma_requests = iommu.stats.requests - requests_before
            report.dma_faults = list(iommu.fault_log[faults_before:])
        report.device_issues = self.system.issues()
        report.virtual_ns = self.now_ns()
        report.seed = self.system.timing.seed
        report.faults = list(self.system.faults.fired)
        return report
