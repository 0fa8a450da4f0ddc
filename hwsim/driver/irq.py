"""Interrupt handlers for drivers: ``hwsim_request_irq`` and asynchronous delivery.

A driver registers a device with ``hwsim_request_irq(name, cookie)`` and
defines ``void hwsim_irq_handler(uint32_t cookie)``.  From then on, whenever
the device's interrupt line is high, the handler is called with the cookie:

* while driver code runs, the CPU is stopped at the end of its current block
  (the interrupt is taken between two instructions), the handler runs on the
  stack below the interrupted code, and the driver resumes where it was;
* while the driver waits or sleeps in the host, between two steps of time;
* after the driver's entry point has returned, from an idle loop that lets
  virtual time pass until input has ended and nothing is scheduled, or the
  time limit.  A driver built this way is like a kernel driver: probe sets
  the device up and returns, interrupts do the work.

Whatever the driver did, the run does not end while a device still has work
in flight (a request, a transfer, bytes in a transmit FIFO): time passes,
event by event, until the devices are idle or the time limit.

Lines are level-triggered: the handler is called again as long as the line
stays high after it returns.  A handler that never clears its device's
interrupt is an *interrupt storm*: after :data:`STORM_LIMIT` calls in a row
the IRQ is disabled and the run reports it.  Handlers do not nest.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ..errors import HwsimError
from ..trace import TRACE

HANDLER = "hwsim_irq_handler"
STORM_LIMIT = 1000
IDLE_STEP_TICKS = 10_000  # the longest step of idle virtual time (1 ms at the default 10 MHz)


class IrqError(HwsimError):
    """A misuse of the interrupt interface (no handler, no such line, registered twice)."""


@dataclass
class _Registration:
    name: str
    device: object
    cookie: int
    stop_observing: Callable[[], None]


class IrqDispatcher:
    """Registrations and delivery.  ``call_handler(cookie)`` runs the driver's handler;
    ``request_async(fn)`` has ``fn`` run at the next safe point of the driver's execution."""

    def __init__(self, system, call_handler: Callable[[int], None], request_async: Callable) -> None:
        self.system = system
        self.call_handler = call_handler
        self.request_async = request_async
        self.registered: dict[str, _Registration] = {}
        self.calls = 0
        self.problems: list[str] = []
        self._pending = False
        self._in_handler = False

    def request(self, name: str, cookie: int, *, has_handler: bool) -> None:
        device = self.system.device(name)
        if not has_handler:
            raise IrqError(
                f"hwsim_request_irq({name!r}): the driver defines no {HANDLER}(uint32_t cookie) "
                f"to call (see drivers/include/hwsim.h)"
            )
        if device.irq is None:
            raise IrqError(f"hwsim_request_irq({name!r}): the device has no interrupt line on this board")
        if name in self.registered:
            raise IrqError(f"hwsim_request_irq({name!r}): the device already has a handler")
        stop = device.irq.observe(lambda level: level and self._raised())
        self.registered[name] = _Registration(name, device, cookie & 0xFFFF_FFFF, stop)
        if device.irq.level:
            self._raised()

    def free(self, name: str) -> None:
        reg = self.registered.pop(name, None)
        if reg is None:
            raise IrqError(f"hwsim_free_irq({name!r}): no handler was requested for it")
        reg.stop_observing()

    def _raised(self) -> None:
        if not self._pending:
            self._pending = True
            self.request_async(self.deliver)

    def any_high(self) -> bool:
        return any(r.device.irq.level for r in self.registered.values())

    def deliver(self) -> None:
        """Call the handler for every registered line that is high, until none is."""
        self._pending = False
        if self._in_handler:
            return  # the running delivery loop sees the line when the handler returns
        self._in_handler = True
        streak: dict[str, int] = {}
        try:
            while True:
                due = [r for r in self.registered.values() if r.device.irq.level]
                if not due:
                    return
                for reg in due:
                    if self.registered.get(reg.name) is not reg:
                        continue  # freed by an earlier handler
                    self.calls += 1
                    if TRACE.irq_handler is not None:
                        TRACE.irq_handler(device=reg.name, cookie=reg.cookie)
                    self.call_handler(reg.cookie)
                    if not reg.device.irq.level:
                        streak[reg.name] = 0
                        continue
                    streak[reg.name] = streak.get(reg.name, 0) + 1
                    if streak[reg.name] >= STORM_LIMIT:
                        self.problems.append(
                            f"interrupt storm: {reg.name}'s line stayed high through {STORM_LIMIT} calls of "
                            f"{HANDLER}({reg.cookie}) in a row: the handler does not clear the device's "
                            f"interrupt; the IRQ was disabled"
                        )
                        self.registered.pop(reg.name).stop_observing()
        finally:
            self._in_handler = False

    # -- letting time pass ----------------------------------------------------------------------------

    def _backends(self, extra=None):
        """The input backends that can still raise a line someone waits for: those of the devices
        with a handler, and of the device waited for (another device's open console does not count)."""
        devices = [r.device for r in self.registered.values()] + ([extra] if extra is not None else [])
        return [b for d in devices if (b := getattr(d, "backend", None)) is not None]

    def _poll(self) -> None:
        for device in self.system.devices.values():
            poll = getattr(device, "poll", None)
            if poll is not None:
                poll()

    def idle_step(self, time_limit_ticks: int, device=None) -> bool:
        """Let virtual time pass up to the next event (at most a step); False when nothing more can
        happen (the input that matters ended, nothing scheduled) or time is up."""
        clock = self.system.clock
        if clock.now >= time_limit_ticks:
            return False
        backends = self._backends(device)
        deadline = clock.next_deadline
        if deadline is None and all(b.input_ended() for b in backends):
            return False
        for b in backends:
            b.wait_input(0.02)
        target = clock.now + IDLE_STEP_TICKS
        if deadline is not None:
            target = min(target, max(deadline, clock.now))
        clock.advance_to(min(target, time_limit_ticks))
        return True

    def wait(
        self, until: Callable[[], bool], time_limit_ticks: int, run_async: Callable[[], None], *, device=None
    ) -> bool:
        """Let time pass, running handlers, until ``until()``; False if nothing more can happen."""
        while True:
            self._poll()
            run_async()
            if until():
                return True
            if not self.idle_step(time_limit_ticks, device):
                self._poll()
                run_async()
                return until()

    def serve(self, time_limit_ticks: int, run_async: Callable[[], None]) -> None:
        """After the entry point returned: deliver interrupts while anything can still happen, then let
        the work devices still have in flight finish (see :meth:`finish_work`)."""
        while self.registered:
            self._poll()
            run_async()
            if self.any_high():
                self._raised()
                continue
            if not self.registered or not self.idle_step(time_limit_ticks):
                break
        self.finish_work(time_limit_ticks, run_async)

    def busy_devices(self) -> list[str]:
        """The devices with work in flight (``busy``: a transfer, a request, bytes being sent)."""
        return [name for name, device in self.system.devices.items() if getattr(device, "busy", False)]

    def finish_work(self, time_limit_ticks: int, run_async: Callable[[], None]) -> None:
        """Let virtual time pass, event by event, while a device has work in flight (up to the limit):
        a run does not end with a request half done, as hardware goes on after the driver returned;
        what the device does then (its DMA, its interrupt) is checked like the rest."""
        clock = self.system.clock
        while self.busy_devices():
            deadline = clock.next_deadline
            if deadline is None or deadline > time_limit_ticks:
                return
            clock.advance_to(max(deadline, clock.now))
            run_async()

    def sleep(self, ticks: int, run_async: Callable[[], None]) -> None:
        """Advance time by ``ticks``, stopping at each event so handlers run at its time."""
        clock = self.system.clock
        target = clock.now + ticks
        while True:
            deadline = clock.next_deadline
            step = target if deadline is None else min(target, max(deadline, clock.now))
            clock.advance_to(step)
            run_async()
            if step >= target:
                return
