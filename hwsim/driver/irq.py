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

Whatever the driver did, the run then lets the device events still scheduled
happen (a request, a transfer, bytes in a transmit FIFO), up to the time limit
(``DriverRun._drain``); a device still busy after that is reported.

Lines are level-triggered: the handler is called again as long as the line
stays high after it returns.  A handler that never clears its device's
interrupt is an *interrupt storm*: after :data:`STORM_LIMIT` calls in a row
the IRQ is disabled and the run reports it.  Handlers do not nest.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import HwsimError
from ..trace import TRACE

if TYPE_CHECKING:
    from ..devices.base import Device

HANDLER = "hwsim_irq_handler"
STORM_LIMIT = 1000
IDLE_STEP_TICKS = 10_000  # the longest step of idle virtual time (1 ms at the default 10 MHz)


class IrqError(HwsimError):
    """A misuse of the interrupt interface (no handler, no such line, registered twice)."""


@dataclass
class _Registration:
    name: str
    device: Device
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
        self._rises: dict[str, tuple[int, int]] = {}  # device: (tick of its line's last rise, tick seen)

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
        stop = device.irq.observe(functools.partial(self._on_level, name))
        self.registered[name] = _Registration(name, device, cookie & 0xFFFF_FFFF, stop)
        if device.irq.level:
            self._raised()

    # -- delivery latency ------------------------------------------------------------------------------

    def latency(self, name: str) -> int:
        """Ticks from a line rising to the driver seeing it: the board's irq_latency_ns, as the board's
        timing varies it (nominal without a seed)."""
        clock = self.system.clock
        ns = getattr(self.system.board, "irq_latency_ns", 0)
        return self.system.timing.delay(-(-ns * clock.frequency_hz // 1_000_000_000), f"{name} interrupt")

    def _rose(self, name: str) -> None:
        """A registered line rose: the handler is called once the delivery latency has passed."""
        visible = self._visible_after_rise(name)
        if visible > self.system.clock.now:
            self.system.clock.schedule(visible, self._raised)
        else:
            self._raised()

    def _visible_after_rise(self, name: str) -> int:
        """The tick at which the rise of ``name``'s line now happening reaches the driver.  One draw per
        rise, shared by the handler and every wait on the line: a wait never sees an interrupt its
        handler has not been called for yet (a draw each would let a driver polling ``hwsim_irq_wait``
        see the line before its handler runs, and spin without time passing)."""
        clock = self.system.clock
        rise = self._rises.get(name)
        if rise is None or rise[0] != clock.now:
            rise = (clock.now, clock.now + self.latency(name))
            self._rises[name] = rise
        return rise[1]

    def seen(self, device) -> tuple[Callable[[], bool], Callable[[], None]]:
        """``(predicate, stop)``: the predicate is true once ``device``'s line is high and has been for the
        delivery latency (a line already high counts once its rise has reached the driver); ``stop()`` ends the observation."""
        clock = self.system.clock
        visible_at: list[int | None] = [None]
        if device.irq.level:  # high already: seen at once, or when its rise reaches the driver
            rise = self._rises.get(device.name)
            visible_at[0] = clock.now if rise is None else max(clock.now, rise[1])
            if visible_at[0] > clock.now:
                clock.schedule(visible_at[0], lambda: None)

        def on_level(level: bool) -> None:
            if not level:
                visible_at[0] = None
            elif visible_at[0] is None:
                visible_at[0] = self._visible_after_rise(device.name)
                clock.schedule(visible_at[0], lambda: None)  # time that passes in a wait stops there

        stop = device.irq.observe(on_level)
        return (lambda: device.irq.level and visible_at[0] is not None and clock.now >= visible_at[0]), stop

    def free(self, name: str) -> None:
        reg = self.registered.pop(name, None)
        if reg is None:
            raise IrqError(f"hwsim_free_irq({name!r}): no handler was requested for it")
        reg.stop_observing()

    def _on_level(self, name: str, level: bool) -> None:
        if level:
            self._rose(name)

    def _raised(self) -> None:
        if not self._pending:
            self._pending = True
            self.request_async(self.deliver)

    def any_high(self) -> bool:
        return any(r.device.irq.level for r in self.registered.values())

    def _any_visible(self) -> bool:
        """A registered line is high and its rise has reached the driver (the delivery latency passed;
        one still on its way is delivered by the event its rise scheduled)."""
        now = self.system.clock.now
        for r in self.registered.values():
            if r.device.irq.level:
                rise = self._rises.get(r.name)
                if rise is None or rise[1] <= now:
                    return True
        return False

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
        """After the entry point returned: deliver interrupts while anything can still happen."""
        while self.registered:
            self._poll()
            run_async()
            if self._any_visible():
                self._raised()
                continue
            if not self.registered or not self.idle_step(time_limit_ticks):
                break

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
