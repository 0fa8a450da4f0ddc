"""The Goldfish RTC: QEMU virt's real-time clock, with one alarm that raises an interrupt.

::

    TIME_LOW/HIGH     nanoseconds of virtual time (+ an offset a write sets); reading LOW latches HIGH
    ALARM_HIGH, LOW   the alarm time; writing LOW arms it (an alarm in the past fires at once)
    IRQ_ENABLED       bit 0: a fired alarm raises the line
    CLEAR_ALARM       disarm;  CLEAR_INTERRUPT: lower the line (the pending bit)
    ALARM_STATUS      bit 0: armed and not fired yet

It follows QEMU's ``hw/rtc/goldfish_rtc.c`` (the device Linux's
``rtc-goldfish`` drives), on hwsim's virtual clock: the alarm fires at the
first clock tick at or after its nanosecond.  Unlike the CLINT, which is the
machine's own timer (a platform device, never assigned to a driver), the RTC
is an ordinary peripheral a sandboxed driver may own.
"""

from __future__ import annotations

from .base import Device, register_device
from .clock import ClockEvent
from .layouts import RTC_ALARM_STATUS_RUNNING, RTC_IRQ_ENABLED, RTC_LAYOUT

_MASK64 = (1 << 64) - 1


@register_device
class GoldfishRtc(Device):
    TYPE = "goldfish-rtc"
    DESCRIPTION = "Goldfish real-time clock (nanoseconds of virtual time) with an alarm interrupt"
    LAYOUT = RTC_LAYOUT

    def __init__(self, *, name: str, **kw) -> None:
        super().__init__(name=name, **kw)
        self._offset_ns = 0
        self._alarm: ClockEvent | None = None
        self._pending = False
        r = self.regs
        r.on_read("TIME_LOW", self._read_time_low)
        r.on_write("TIME_LOW", lambda new, old: self._set_time(self.time_ns & ~0xFFFF_FFFF | new))
        r.on_write("TIME_HIGH", lambda new, old: self._set_time(self.time_ns & 0xFFFF_FFFF | new << 32))
        r.on_write("ALARM_LOW", lambda new, old: self._arm())
        r.on_write("IRQ_ENABLED", lambda new, old: self._update_irq())
        r.on_write("CLEAR_ALARM", lambda new, old: self._disarm())
        r.on_read("ALARM_STATUS", lambda: RTC_ALARM_STATUS_RUNNING if self._alarm is not None else 0)
        r.on_write("CLEAR_INTERRUPT", lambda new, old: self._clear_interrupt())

    def _reset(self) -> None:
        self._offset_ns = 0
        self._disarm()
        self._pending = False
        self._update_irq()

    @property
    def time_ns(self) -> int:
        return (self.clock.ticks_to_ns(self.clock.now) + self._offset_ns) & _MASK64

    @property
    def alarm_ns(self) -> int:
        return self.regs["ALARM_HIGH"] << 32 | self.regs["ALARM_LOW"]

    def _read_time_low(self) -> int:
        now = self.time_ns
        self.regs["TIME_HIGH"] = now >> 32
        return now & 0xFFFF_FFFF

    def _set_time(self, value: int) -> None:
        self._offset_ns = value - self.clock.ticks_to_ns(self.clock.now)
        if self._alarm is not None:
            self._arm()

    def _disarm(self) -> None:
        if self._alarm is not None:
            self._alarm.cancel()
            self._alarm = None

    def _arm(self) -> None:
        self._disarm()
        wait_ns = self.alarm_ns - self.time_ns
        if wait_ns <= 0:
            self._fire()
            return
        hz = self.clock.frequency_hz
        ticks = -(-wait_ns * hz // 1_000_000_000)  # the first tick at or after the alarm
        self._alarm = self.clock.schedule_in(ticks, self._fire)

    def _fire(self) -> None:
        self._alarm = None
        self._pending = True
        self._update_irq()

    def _clear_interrupt(self) -> None:
        self._pending = False
        self._update_irq()

    def _update_irq(self) -> None:
        self.irq.set(self._pending and bool(self.regs["IRQ_ENABLED"] & RTC_IRQ_ENABLED))
