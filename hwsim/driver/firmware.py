"""Native firmware: the same driver sources built for riscv64, run unsandboxed on the board.

The ELF is loaded at its physical addresses (firmware/link.ld: 0x8400_0000)
and runs in M-mode without translation; MMIO uses the devices' physical
addresses, DMA uses physical addresses with the IOMMU in bare mode.  The
``hwsim.h`` functions are ecalls (firmware/hwsim_native.c): a7 names the
service.  This is the baseline that shows what the sandbox costs.

On a board with several harts, ``probe`` runs on hart 0 and, when the ELF
defines ``hart_main(hartid)``, that function on each other hart (its own
stack; a ``uint32_t hwsim_harts`` the ELF defines is set to the number of
harts at load), all under :class:`~hwsim.machine.harts.HartScheduler` with the
``hart_seed``; the run ends when every hart has returned, and the report
carries each hart's counters and the trace hash.  Services work on any hart;
interrupt handlers run on hart 0 between two turns, as a whole, or with
``irq_hart`` H in hart H's turns among the others' (``HartScheduler.call``), so
that code on another hart races them.  (A handler due while a hart is in a
service, or after the entry point returned, still runs on hart 0 as a whole.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..errors import ConfigError, HwsimError
from ..machine import EcallAction, StopReason
from ..machine.elf import ElfError, ElfImage, read_elf
from ..machine.harts import HartScheduler, HartsOutcome, HartsResult, HartState
from ..machine.schedules import RandomSchedule, Schedule
from ..mmu.bits import PAGE_SIZE
from ..riscv.priv import Priv
from ..trace import TRACE
from .control import RunControl, StopCause
from .irq import HANDLER, IrqDispatcher, IrqError
from .runner import DriverError, RunReport, log_lines

if TYPE_CHECKING:
    from ..wasm.dwarf import SourceMap

STACK_SIZE = 256 << 10
SERVICES = {
    1: "mmio_map",
    2: "irq_wait",
    3: "log",
    4: "now_ns",
    5: "sleep_ns",
    6: "dma_map",
    7: "dma_unmap",
    8: "dma_sync_cpu",
    9: "dma_sync_device",
    10: "dma_alloc",
    11: "dma_free",
    12: "request_irq",
    13: "free_irq",
}
TIME_LIMIT_S = 10


class FirmwareStopped(DriverError):
    """The run was stopped from outside (a time limit, Ctrl-C): ``cause`` says which."""

    def __init__(self, message: str, cause: StopCause) -> None:
        super().__init__(message)
        self.cause = cause


class FirmwareRun:
    def __init__(
        self,
        system,
        elf: bytes,
        *,
        log=None,
        name: str = "firmware",
        time_limit_ns: int = TIME_LIMIT_S * 1_000_000_000,
        wall_limit_s: float | None = None,
        catch_sigint: bool = False,
        hart_seed: int | None = None,
        schedule: Schedule | None = None,
        irq_hart: int | None = None,
    ) -> None:
        """Load ``elf`` (the file's bytes; ``name`` is the file in messages) into the board's RAM.
        ``hart_seed``: the seed of the harts' interleaving on a board with several (None: the board's
        timing seed, else 0).  ``schedule``: how the harts' turns are picked (``machine/schedules.py``;
        None: random).  ``irq_hart``: the hart whose turns run the interrupt handler (None: hart 0,
        between two turns, as a whole)."""
        self.system = system
        TRACE.clock = lambda: system.clock.ticks_to_ns(system.clock.now)  # this board's virtual time, from now
        self.m = system.machine
        self.name = name
        self.machine = self.m  # for RunControl
        self.wall_limit_s = wall_limit_s
        self.catch_sigint = catch_sigint
        self.interrupt_reason: str | None = None
        self._stop_cause: StopCause | None = None
        self.log_sink = log or (lambda text: None)
        self.log: list[str] = []
        self._elf = bytes(elf)
        self._source_map: SourceMap | None = None
        self.image = self._load(elf)
        if "probe" not in self.image.symbols:
            raise DriverError(f"{name}: the firmware has no probe symbol")
        if "hwsim_harts" in self.image.symbols:  # boot information: the board's number of harts
            self.m.phys.write_u32(self.image.symbols["hwsim_harts"], len(self.m.harts))
        heap = self.image.symbols.get("__heap_start", 0)
        self.heap = (heap + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
        self.stack_top = self.m.frames.alloc(STACK_SIZE // PAGE_SIZE) + STACK_SIZE
        self.exit = self.m.frames.alloc()  # the return address of probe: reached, never executed
        # Every other hart's stack, for hart_main (a board with several harts).
        self.hart_stacks = [self.m.frames.alloc(STACK_SIZE // PAGE_SIZE) + STACK_SIZE for _ in self.m.harts[1:]]
        seed = hart_seed if hart_seed is not None else system.timing.seed
        self.hart_seed = seed if seed is not None else 0
        self.schedule: Schedule = schedule if schedule is not None else RandomSchedule()
        if irq_hart is not None and not 0 <= irq_hart < len(self.m.harts):
            raise ConfigError(
                f"no hart {irq_hart} to run the interrupt handler: the board has {len(self.m.harts)} "
                f"(0 .. {len(self.m.harts) - 1})"
            )
        self.irq_hart = irq_hart
        self._scheduler: HartScheduler | None = None
        self.harts: HartsResult | None = None  # the last scheduler run (several harts)
        if system.iommu is not None:
            system.iommu.set_mode("bare")  # DMA addresses are physical
        self.m.add_ecall_handler(self._service)
        self.time_limit_ticks = time_limit_ns * system.clock.frequency_hz // 1_000_000_000
        clock = system.clock
        clock.set_limit(self.time_limit_ticks, self._virtual_time_up)
        self.irqs = IrqDispatcher(system, self._call_handler, self._request_async)
        self._async: list = []
        self._running = 0  # depth of firmware code running on the CPU
        self._in_service = False

    # -- run control: limits and Ctrl-C, as for sandboxed drivers ---------------------------------

    def interrupt(self, reason: str) -> None:
        """Stop firmware code at its next safe point (thread- and signal-safe; see RunControl)."""
        self.interrupt_reason = reason
        if self._scheduler is not None:
            self._scheduler.request_stop()
        self.m.request_stop()

    def _virtual_time_up(self) -> None:
        if self._running and not self._in_service:
            self._stop_cause = StopCause.TIME_LIMIT
            self.interrupt(
                f"virtual-time limit of {self.time_limit_ticks / self.system.clock.frequency_hz:g} s "
                f"reached while the firmware was still running"
            )

    def _check_interrupt(self) -> None:
        if self.interrupt_reason is not None:
            raise FirmwareStopped(self.interrupt_reason, self._stop_cause or StopCause.TIME_LIMIT)

    def _safe_point(self) -> None:
        self._run_async()
        self._check_interrupt()

    def _check_time(self) -> None:
        if self.system.clock.now >= self.time_limit_ticks:
            self._stop_cause = StopCause.TIME_LIMIT
            self.interrupt_reason = (
                f"a wait began after the virtual-time limit of "
                f"{self.time_limit_ticks / self.system.clock.frequency_hz:g} s"
            )
        self._check_interrupt()

    # -- interrupts: the same dispatcher as sandboxed drivers, handlers called on the CPU -----------

    def _request_async(self, callback) -> None:
        self._async.append(callback)
        if self._running and not self._in_service:
            if self._scheduler is not None:
                self._scheduler.request_stop()  # whichever hart runs; the handler then runs on hart 0
            else:
                self.m.stop()

    def _run_async(self) -> None:
        while self._async:
            self._async.pop(0)()

    def _call_handler(self, cookie: int) -> None:
        sched = self._scheduler
        if sched is not None and self.irq_hart is not None and sched.current is None:
            self._call_handler_on_hart(sched, self.irq_hart, cookie)
            return
        m = self.m
        context = m.save_context()
        hart, TRACE.current_hart = TRACE.current_hart, (0 if sched is not None else None)  # its events: hart 0's
        try:
            sp = ((m.get_reg("sp") - 256) & ~15) if self._running else self.stack_top
            m.set_reg("sp", sp)
            m.set_reg("ra", self.exit)
            m.set_reg("a0", cookie)
            self._call(self.image.symbols[HANDLER])
        finally:
            m.restore_context(context)
            TRACE.current_hart = hart

    def _call_handler_on_hart(self, sched: HartScheduler, hartid: int, cookie: int) -> None:
        """The handler on hart ``hartid``, in its turns among the other harts' (``irq_hart``): the harts
        go on running until it returns, so code on another hart can race it."""
        hart = self.m.harts[hartid]
        if sched.state(hartid) in (HartState.RUNNABLE, HartState.PARKED):
            sp = (hart.get_reg("sp") - 256) & ~15  # below the interrupted code's stack
        else:
            sp = self.stack_top if hartid == 0 else self.hart_stacks[hartid - 1]
        sched.call(hartid, self.image.symbols[HANDLER], until=self.exit, sp=sp, args=(cookie,))
        while True:
            self._check_interrupt()
            result = sched.run()
            self.harts = result
            if result.outcome is HartsOutcome.RETURNED:
                return
            self._go_on(sched, result)

    def _go_on(self, sched: HartScheduler, result: HartsResult) -> None:
        """After a scheduler run that did not finish: serve what stopped it, or raise why the firmware cannot go on."""
        if self.interrupt_reason is not None:
            raise FirmwareStopped(
                f"{self.interrupt_reason} (in {self._where_harts(sched)})",
                self._stop_cause or StopCause.TIME_LIMIT,
            )
        stopped_for_async = result.outcome is HartsOutcome.REQUESTED or (
            result.result is not None and result.result.reason is StopReason.STOPPED
        )
        if stopped_for_async and self._async:
            self._run_async()  # the interrupt handlers (on hart 0 between two turns, or on the irq hart)
            return
        if result.outcome is HartsOutcome.STOPPED:
            assert result.result is not None and result.hartid is not None  # STOPPED names both
            raise DriverError(
                f"firmware stopped in {self.where(result.result.pc)} on hart {result.hartid}: "
                f"{result.result.describe()}"
            )
        if result.outcome is HartsOutcome.DEADLOCK:
            raise DriverError(f"firmware on {len(self.m.harts)} harts: {result.outcome.value}")
        # REQUESTED (an interrupt to serve, a stop asked for) or LIMIT (a long run): go on

    def _call(self, pc: int) -> int:
        """Run firmware code from ``pc`` until it returns to the exit address; its a0."""
        m = self.m
        in_service, self._in_service = self._in_service, False
        self._running += 1
        try:
            while True:
                self._check_interrupt()
                result = m.run(pc, until=self.exit)
                if self.interrupt_reason is not None and result.reason is not StopReason.EXIT:
                    raise FirmwareStopped(
                        f"{self.interrupt_reason} (in {self.where(result.pc)})",
                        self._stop_cause or StopCause.TIME_LIMIT,
                    )
                if result.reason is not StopReason.STOPPED or not self._async:
                    break
                context = m.save_context()  # an interrupt: run the handler, go on where we were
                self._run_async()
                m.restore_context(context)
                pc = result.pc
        finally:
            self._running -= 1
            self._in_service = in_service
        if not result.ok:
            raise DriverError(f"firmware stopped in {self.where(result.pc)}: {result.describe()}")
        return m.get_reg("a0")

    def _call_harts(self, pc: int, args: tuple) -> int:
        """Run ``pc`` on hart 0 and ``hart_main`` on the others until every one returns; hart 0's a0."""
        m = self.m
        clint = next((d for d in self.system.devices.values() if d.TYPE == "clint"), None)
        sched = HartScheduler(m, seed=self.hart_seed, clint=clint, schedule=self.schedule)
        sched.start(0, pc, until=self.exit)
        for i, value in enumerate(args):
            m.set_reg(f"a{i}", value)
        main = self.image.symbols.get("hart_main")
        for hart, stack in zip(m.harts[1:], self.hart_stacks):
            if main is None:
                continue
            sched.start(hart.hartid, main, until=self.exit)  # a0 = the hart's ID
            hart.set_reg("sp", stack)
            hart.set_reg("ra", self.exit)
        self._scheduler = sched
        self._running += 1
        try:
            while True:
                self._check_interrupt()
                result = sched.run()
                self.harts = result
                if self.interrupt_reason is not None and result.outcome is not HartsOutcome.DONE:
                    raise FirmwareStopped(
                        f"{self.interrupt_reason} (in {self._where_harts(sched)})",
                        self._stop_cause or StopCause.TIME_LIMIT,
                    )
                if result.outcome is HartsOutcome.DONE:
                    break
                self._go_on(sched, result)
        finally:
            self._running -= 1
            self._scheduler = None
            sched.close()
        return m.get_reg("a0")

    def _where_harts(self, sched: HartScheduler) -> str:
        """Where each hart still running stands."""
        running = [h for h in sched.harts if sched.state(h.hartid) in (HartState.RUNNABLE, HartState.PARKED)]
        return ", ".join(f"hart {h.hartid}: {self.where(h.get_reg('pc'))}" for h in running)

    def where(self, pc: int) -> str:
        """``symbol+off`` and, when the ELF has DWARF (built with -g), ``file.c:line``."""
        symbol = self.image.symbol_at(pc) or f"{pc:#x}"
        if self._source_map is None:
            from ..wasm.dwarf import SourceMap

            self._source_map = SourceMap.from_elf_bytes(self._elf)
        location = self._source_map.locate(pc)
        return f"{symbol} at {location.format()}" if location is not None else symbol

    def _load(self, data: bytes) -> ElfImage:
        contents = read_elf(data, self.name)
        for seg in contents.segments:
            first = seg.va & ~(PAGE_SIZE - 1)
            try:
                self.m.frames.reserve(first, seg.va + seg.memsz - first)
            except HwsimError as exc:
                raise ElfError(f"{self.name}: the segment at {seg.va:#x} does not fit the board's RAM: {exc}") from None
            self.m.phys.fill(seg.va, seg.memsz)
            self.m.phys.write(seg.va, seg.data)
        self.m.code_changed()
        return contents.image()

    def _string(self, ptr: int, length: int) -> str:
        return self.m.phys.read(ptr, length).decode("utf-8", errors="replace")

    def _service(self, m) -> EcallAction:
        self._in_service = True
        try:
            self._do_service(m)
        finally:
            self._in_service = False
        if self._async:
            a0 = m.get_reg("a0")
            self._run_async()
            m.set_reg("a0", a0)
        return EcallAction.RESUME

    def _do_service(self, m) -> None:
        n = m.get_reg("a7")
        a = [m.get_reg(f"a{i}") for i in range(5)]
        what = SERVICES.get(n)
        if TRACE.host_call is not None:
            clock = self.system.clock
            start = clock.now
            self._do_service_call(m, n, a, what)
            TRACE.host_call(
                name=what or f"service {n}",
                args=", ".join(f"{v:#x}" for v in a),
                result=m.get_reg("a0"),
                duration_ns=clock.ticks_to_ns(clock.now - start),
            )
            return
        self._do_service_call(m, n, a, what)

    def _do_service_call(self, m, n: int, a: list[int], what: str | None) -> None:
        result = 0
        if what == "mmio_map":
            name = self._string(a[0], a[1])
            self.system.device(name)
            result = next(r.base for r in m.phys.mmio_regions if r.name == name)
        elif what == "irq_wait":
            device = self.system.device(self._string(a[0], a[1]))
            if device.irq is None:
                raise DriverError(f"hwsim_irq_wait: device {device.name!r} has no interrupt line on this board")
            self._check_time()
            seen, stop = self.irqs.seen(device)
            try:
                result = int(self.irqs.wait(seen, self.time_limit_ticks, self._safe_point, device=device))
            finally:
                stop()
        elif what in ("request_irq", "free_irq"):
            try:
                if what == "request_irq":
                    self.irqs.request(self._string(a[0], a[1]), a[2], has_handler=HANDLER in self.image.symbols)
                else:
                    self.irqs.free(self._string(a[0], a[1]))
            except IrqError as exc:
                raise DriverError(str(exc)) from None
        elif what == "log":
            text = self._string(a[0], a[1])
            self.log.append(text)
            for line in log_lines(text):
                self.log_sink(line)
        elif what == "now_ns":
            result = self.system.clock.ticks_to_ns(self.system.clock.now)
        elif what == "sleep_ns":
            ticks = a[0] * self.system.clock.frequency_hz // 1_000_000_000
            self._check_time()
            self.irqs.sleep(min(ticks, max(0, self.time_limit_ticks - self.system.clock.now)), self._safe_point)
        elif what == "dma_map":
            result = a[2]  # physical: the IOMMU is in bare mode
        elif what == "dma_alloc":
            size = (a[2] + PAGE_SIZE - 1) & ~(PAGE_SIZE - 1)
            self.m.frames.reserve(self.heap, size)
            result, self.heap = self.heap, self.heap + size
            m.phys.write_u64(a[3], result)
        elif what in ("dma_unmap", "dma_sync_cpu", "dma_sync_device", "dma_free"):
            pass
        else:
            raise DriverError(f"firmware made an ecall with unknown service a7={n}")
        m.set_reg("a0", result)

    def run(self, entry: str = "probe", args: tuple = ()) -> RunReport:
        m = self.m
        if entry not in self.image.symbols:
            raise DriverError(f"{self.name}: the firmware has no symbol {entry!r}")
        for hart in m.harts:
            hart.activate(None, priv=Priv.M)
        m.set_reg("sp", self.stack_top)
        m.set_reg("ra", self.exit)
        for i, value in enumerate(args):
            m.set_reg(f"a{i}", value)
        several = len(m.harts) > 1
        report = RunReport(log=self.log, entry=entry, sandboxed=False)
        before = sum(hart.mmio_accesses for hart in m.harts)
        iommu = self.system.iommu
        requests = iommu.stats.requests if iommu is not None else 0
        calls, problems = self.irqs.calls, len(self.irqs.problems)
        control = RunControl(self, wall_limit_s=self.wall_limit_s, catch_sigint=self.catch_sigint)
        try:
            with control:
                pc = self.image.symbols[entry]
                value = (self._call_harts(pc, args) if several else self._call(pc)) & 0xFFFF_FFFF
                report.result = value - (1 << 32) if value >> 31 else value
                self.irqs.serve(self.time_limit_ticks, self._safe_point)
        except FirmwareStopped as stop:
            report.stopped = control.cause or stop.cause
            report.result = None
            report.failure = str(stop)
        finally:
            self.interrupt_reason = None
            self._stop_cause = None
        report.irq_calls = self.irqs.calls - calls
        report.irq_problems = self.irqs.problems[problems:]
        report.mmio_accesses = sum(hart.mmio_accesses for hart in m.harts) - before
        if iommu is not None:
            report.dma_requests = iommu.stats.requests - requests
        report.device_issues = self.system.issues()
        report.virtual_ns = self.system.clock.ticks_to_ns(self.system.clock.now)
        report.seed = self.system.timing.seed
        report.faults = list(self.system.faults.fired)
        if several and self.harts is not None:
            report.harts = self.harts.stats
            report.hart_seed = self.hart_seed
            report.hart_schedule = self.schedule.format()
            report.hart_trace = self.harts.trace_hash
        return report
