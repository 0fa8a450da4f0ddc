"""A CLINT-like timer driven by virtual time: mtime, mtimecmp (as 32-bit halves) and msip.

``mtime`` is the :class:`~hwsim.devices.clock.VirtualClock`'s tick count plus
an offset (a guest write to MTIME_LO/HI moves the offset, not the clock).
The timer output is a level: high while ``mtime >= mtimecmp``, as the
CLINT's MTIP is.  When mtimecmp lies in the future the timer schedules a
clock event at that tick, so the output rises exactly when the runner's
``advance`` reaches it.

Unlike a real CLINT, whose MTIP goes straight to the hart, the output is
an ordinary IRQ line (the board wires it to a PLIC source), because the
CPU does not take interrupts from the PLIC yet.  ``MSIP`` (hart 0) and
``MSIP1`` .. ``MSIP7`` drive ``software_irqs[i]``, hart ``i``'s machine software
interrupt: ``machine/harts.py`` delivers it to the hart (an IPI); the board
leaves the lines unconnected otherwise.
"""

from __future__ import annotations

from .base import Device, IrqLine, register_device
from .clock import ClockEvent
from .layouts import CLINT_HARTS, TIMER_LAYOUT

_MASK64 = (1 << 64) - 1


@register_device
class Timer(Device):
    TYPE = "clint"
    DESCRIPTION = "CLINT-like timer: mtime/mtimecmp on virtual time, msip"
    LAYOUT = TIMER_LAYOUT
    PLATFORM = "the machine timer and software interrupts of the harts"

    def __init__(self, *, name: str, **kw) -> None:
        super().__init__(name=name, **kw)
        # One machine software interrupt per hart: MSIP<i> drives software_irqs[i] (machine/harts.py).
        self.software_irqs = tuple(IrqLine(number=hart) for hart in range(CLINT_HARTS))
        self.software_irq = self.software_irqs[0]
        self._offset = 0
        self._event: ClockEvent | None = None
        r = self.regs
        r.on_read("MTIME_LO", lambda: self.mtime & 0xFFFF_FFFF)
        r.on_read("MTIME_HI", lambda: self.mtime >> 32)
        r.on_write("MTIME_LO", lambda new, old: self._set_mtime(self.mtime & ~0xFFFF_FFFF | new))
        r.on_write("MTIME_HI", lambda new, old: self._set_mtime(self.mtime & 0xFFFF_FFFF | new << 32))
        r.on_write("MTIMECMP_LO", lambda new, old: self._rearm())
        r.on_write("MTIMECMP_HI", lambda new, old: self._rearm())
        r.on_write("MSIP", lambda new, old: self.software_irq.set(bool(new & 1)))
        for hart in range(1, CLINT_HARTS):
            r.on_write(f"MSIP{hart}", self._msip_writer(self.software_irqs[hart]))

    @staticmethod
    def _msip_writer(line: IrqLine):
        def write(new: int, old: int) -> None:
            line.set(bool(new & 1))

        return write

    def _reset(self) -> None:
        self._offset = 0
        for line in self.software_irqs:
            line.set(False)
        self._rearm()

    @property
    def mtime(self) -> int:
        return (self.clock.now + self._offset) & _MASK64

    @property
    def mtimecmp(self) -> int:
        return self.regs["MTIMECMP_HI"] << 32 | self.regs["MTIMECMP_LO"]

    def _set_mtime(self, value: int) -> None:
        self._offset = (value - self.clock.now) & _MASK64
        self._rearm()

    def _rearm(self) -> None:
        if self._event is not None:
            self._event.cancel()
            self._event = None
        reached = self.mtime >= self.mtimecmp
        self.irq.set(reached)
        if not reached:
            self._event = self.clock.schedule_in(self.mtimecmp - self.mtime, self._rearm)
