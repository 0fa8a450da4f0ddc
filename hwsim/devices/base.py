"""The device skeleton every model follows, the device-type registry, and interrupt lines.

::

    class Uart(Device):
        TYPE = "ns16550a"            # the board file's ``type = "ns16550a"``
        LAYOUT = RegisterLayout(...)  # registers as data (regs.py)
        OPTIONS = {...}               # board-file options (backend, ...), typed, with defaults

        def __init__(self, *, name, clock, irq=None, dma=None, **options): ...
        def _reset(self): ...         # device state beyond the registers

A device is reached only through ``mmio_read``/``mmio_write`` (physical
memory calls them), raises interrupts only through its :class:`IrqLine`,
and reads or writes memory only through its DMA port (the IOMMU).  Guest
misuse becomes a :class:`~hwsim.devices.issues.DeviceIssue` in
``device.issues``; nothing is printed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from ..errors import ConfigError
from ..trace import TRACE
from .clock import ClockEvent, VirtualClock
from .faults import FaultPlan
from .issues import DeviceIssue, IssueKind, make_issue
from .regs import RegisterFile, RegisterLayout
from .timing import Timing

MAX_ISSUES = 1000  # per device; later ones are counted in ``issues_dropped``


def no_access() -> tuple[int | None, str]:
    """A device on its own serves no guest code: no access to name (see ``Device.locate_access``)."""
    return None, ""


class OptionError(ConfigError):
    """A device option has the wrong type or value; ``key`` names it."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"option {key!r}: {problem}")
        self.key = key
        self.problem = problem


_TYPE_NAMES = {int: "an integer", str: "a string", bool: "a boolean", float: "a number"}


@dataclass(frozen=True, slots=True)
class Option:
    """One board-file option of a device type."""

    type: type
    default: Any
    doc: str
    choices: tuple | None = None
    minimum: int | None = None
    maximum: int | None = None

    def check(self, value: Any) -> str | None:
        """None when ``value`` is acceptable, else the problem in words."""
        if (
            self.type is int
            and (isinstance(value, bool) or not isinstance(value, int))
            or self.type is not int
            and not isinstance(value, self.type)
        ):
            return f"must be {_TYPE_NAMES.get(self.type, self.type.__name__)}, not {type(value).__name__} {value!r}"
        if self.choices is not None and value not in self.choices:
            return f"must be one of {', '.join(repr(c) for c in self.choices)}, not {value!r}"
        if self.minimum is not None and value < self.minimum:
            return f"must be at least {self.minimum}, not {value}"
        if self.maximum is not None and value > self.maximum:
            return f"must be at most {self.maximum}, not {value}"
        return None


# Faults every peripheral with an interrupt line offers: they happen on the line itself (IrqLine).
IRQ_FAULTS = {
    "lost": "a rise of the interrupt line is lost: it stays low until the device raises it again (its next event)",
    "spurious": "when the line falls it rises again for one tick: an interrupt with nothing pending",
}


class IrqLine:
    """A level-sensitive interrupt wire from a device to an interrupt-controller input.

    An unconnected line (``sink=None``) still keeps its level, so tests can watch it.  A device that
    offers the ``lost`` and ``spurious`` faults attaches its fault points (:meth:`attach_faults`):
    then a rise may be lost (the line stays low; the device's next ``set(True)`` tries again) and a
    fall may be followed by a one-tick spurious pulse.
    """

    __slots__ = ("number", "level", "_sink", "_observers", "name", "_fault", "_clock", "_wanted", "_pulse")

    def __init__(self, sink: Callable[[int, bool], None] | None = None, number: int = 0) -> None:
        self.number = number
        self.level = False
        self._sink = sink
        self._observers: list[Callable[[bool], None]] = []
        self.name = ""  # the device driving the line (for traces), set by the board builder
        self._fault: Callable[[str], bool] | None = None
        self._clock: VirtualClock | None = None
        self._wanted = False  # the level the device drives
        self._pulse: ClockEvent | None = None  # the event ending a spurious pulse

    def attach_faults(self, fault: Callable[[str], bool], clock: VirtualClock) -> None:
        """Let ``fault("lost")`` and ``fault("spurious")`` (the device's fault points) act on the line."""
        self._fault = fault
        self._clock = clock

    def set(self, level: bool) -> None:
        level = bool(level)
        self._wanted = level
        if level == self.level or self._pulse is not None:
            return  # (a spurious pulse ends at its tick, then the line follows the device again)
        fault, clock = self._fault, self._clock
        if fault is not None and clock is not None:
            if level and fault("lost"):
                return
            if not level and fault("spurious"):
                self._pulse = clock.schedule_in(1, self._end_pulse)
                return  # the line stays high one tick more, with nothing behind it
        self._drive(level)

    def _end_pulse(self) -> None:
        self._pulse = None
        self._drive(self._wanted)

    def _drive(self, level: bool) -> None:
        if level != self.level:
            self.level = level
            if TRACE.irq is not None:
                TRACE.irq(line=self.number, device=self.name, level="raised" if level else "lowered")
            if self._sink is not None:
                self._sink(self.number, level)
            for observer in self._observers:
                observer(level)

    def observe(self, callback: Callable[[bool], None]) -> Callable[[], None]:
        """Call ``callback(level)`` on every change of level; returns a function that stops it."""
        self._observers.append(callback)
        return lambda: self._observers.remove(callback) if callback in self._observers else None

    def __repr__(self) -> str:
        return f"IrqLine(number={self.number}, level={self.level})"


@dataclass(frozen=True, slots=True)
class MmioEvent:
    """One guest access, for trace hooks."""

    device: str
    op: str  # "read" or "write"
    offset: int
    size: int
    value: int
    time: int


DEVICE_TYPES: dict[str, type[Device]] = {}


def register_device(cls: type[Device]) -> type[Device]:
    """Class decorator: make ``cls.TYPE`` usable as a board file's ``type``."""
    if cls.TYPE in DEVICE_TYPES and DEVICE_TYPES[cls.TYPE] is not cls:
        raise ConfigError(f"device type {cls.TYPE!r} registered twice")
    DEVICE_TYPES[cls.TYPE] = cls
    return cls


def known_types(role: str | None = None) -> list[str]:
    return sorted(t for t, cls in DEVICE_TYPES.items() if role is None or cls.ROLE == role)


class Device:
    """Base of every device model (see the module docstring for the skeleton)."""

    TYPE: ClassVar[str] = ""
    ROLE: ClassVar[str] = "device"  # or "interrupt-controller", "iommu"
    DESCRIPTION: ClassVar[str] = ""
    # Not a ClassVar: a device whose map depends on its options (the PLIC) sets its own per instance.
    LAYOUT: RegisterLayout
    OPTIONS: ClassVar[dict[str, Option]] = {}
    DOES_DMA: ClassVar[bool] = False
    HAS_IRQ: ClassVar[bool] = True
    # A platform device serves the whole machine (its translation, interrupt routing or time): what it
    # controls, in words.  Platform devices are never assigned to a sandboxed driver; None: a peripheral.
    PLATFORM: ClassVar[str | None] = None
    # The faults the device can be made to fail with (devices/faults.py): kind -> what it does, in words.
    # A peripheral with an interrupt line also offers IRQ_FAULTS (added to its FAULTS by the class).
    FAULTS: ClassVar[dict[str, str]] = {}
    # Whether a guest read (write) that selects a register does nothing beyond the register file's
    # work, so that the machine may dispatch it straight to the resolved register (see mmio_handlers).
    # A class that overrides mmio_read (mmio_write) gets False unless it says otherwise itself.
    DIRECT_READS: ClassVar[bool] = True
    DIRECT_WRITES: ClassVar[bool] = True

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        if "mmio_read" in cls.__dict__ and "DIRECT_READS" not in cls.__dict__:
            cls.DIRECT_READS = False
        if "mmio_write" in cls.__dict__ and "DIRECT_WRITES" not in cls.__dict__:
            cls.DIRECT_WRITES = False
        if cls.HAS_IRQ and cls.ROLE == "device" and not set(IRQ_FAULTS) <= set(cls.FAULTS):
            cls.FAULTS = {**cls.FAULTS, **IRQ_FAULTS}

    def __init__(
        self,
        *,
        name: str,
        clock: VirtualClock | None = None,
        irq: IrqLine | None = None,
        timing: Timing | None = None,
        faults: FaultPlan | None = None,
        **options: Any,
    ) -> None:
        self.name = name
        self.clock = clock if clock is not None else VirtualClock()
        self.timing = timing if timing is not None else Timing()  # how long operations take (timing.py)
        self.faults = faults if faults is not None else FaultPlan()  # which operations fail (faults.py)
        self.irq = irq if irq is not None else IrqLine()
        if "lost" in self.FAULTS:
            self.irq.attach_faults(self.fault, self.clock)
        self.options = self.resolve_options(options)
        self.issues: list[DeviceIssue] = []
        self.issues_dropped = 0
        # (pc, source) of the guest access being served now; the board wires System.locate_access here.
        self.locate_access: Callable[[], tuple[int | None, str]] = no_access
        # The driver's register write that started the work this device is doing now (its C line, or ""):
        # set with started_here() where work starts, and restored by a device whose work goes on later.
        self.work_cause = ""
        self._tracers: list[Callable[[MmioEvent], None]] = []
        self.regs = RegisterFile(self.LAYOUT, self.report)
        self.regs.set_direct(reads=self.DIRECT_READS, writes=self.DIRECT_WRITES)

    # -- class-level facts the board loader uses ----------------------------------------

    @classmethod
    def resolve_options(cls, given: dict[str, Any]) -> dict[str, Any]:
        """Defaults filled in; raises :class:`OptionError` for an unknown key or a bad value."""
        out = {}
        for key, value in given.items():
            spec = cls.OPTIONS.get(key)
            if spec is None:
                known = ", ".join(sorted(cls.OPTIONS)) or "none"
                raise OptionError(key, f"unknown option for {cls.TYPE} (known: {known})")
            problem = spec.check(value)
            if problem is not None:
                raise OptionError(key, problem)
            out[key] = value
        for key, spec in cls.OPTIONS.items():
            out.setdefault(key, spec.default)
        cls.check_options(out)
        return out

    @classmethod
    def check_options(cls, options: dict[str, Any]) -> None:
        """Cross-option checks (raise OptionError); none by default."""

    @classmethod
    def required_size(cls, options: dict[str, Any]) -> int:
        """Bytes of MMIO window the registers need with these options."""
        return cls.LAYOUT.extent

    # -- MMIO -------------------------------------------------------------------------

    def mmio_handlers(self) -> tuple[dict[int, Callable[[], int]], dict[int, Callable[[int], None]]]:
        """The machine's per-offset dispatch: ``offset << 4 | size`` -> the bound read ``() -> int`` or
        write ``(value) -> None`` a guest access comes to, filled as accesses resolve (the register
        file's :meth:`~hwsim.devices.regs.RegisterFile.handlers`); a miss goes to :meth:`mmio_read` or
        :meth:`mmio_write`.  Empty for reads (writes) a class serves itself (DIRECT_READS, DIRECT_WRITES)
        and, from then on, for a traced device (a tracer sees every access)."""
        return self.regs.handlers()

    def mmio_read(self, offset: int, size: int) -> int:
        value = self.regs.read(offset, size)
        if self._tracers:
            self._trace("read", offset, size, value)
        return value

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if self._tracers:
            self._trace("write", offset, size, value)
        self.regs.write(offset, size, value)

    # -- lifecycle, issues, traces ------------------------------------------------------------

    def reset(self) -> None:
        """Registers to their reset values, device state to power-on (issues are kept)."""
        self.regs.reset()
        self._reset()

    def _reset(self) -> None:
        pass

    def fault(self, kind: str, *, forced: bool = False) -> bool:
        """Count a failure point of this device; True when the board's fault plan makes it fail now
        (``forced``: it fails anyway, because the device's options say so; it is recorded the same)."""
        if kind not in self.FAULTS:  # a bug in the device model, not the guest's doing
            raise ConfigError(f"{self.TYPE} declares no fault {kind!r} (FAULTS: {', '.join(self.FAULTS)})")
        return self.faults.fires(self.name, kind, forced=forced)

    def started_here(self) -> str:
        """At a register write that starts device work (a DMA engine's START, a queue notify, a doorbell):
        the driver's source line of that write, remembered as :attr:`work_cause` and returned so that work
        finishing later can restore it (``self.work_cause = cause``) before it does its DMA."""
        self.work_cause = self.locate_access()[1]
        return self.work_cause

    def report(self, kind: IssueKind, **details: Any) -> None:
        """Record guest misuse (called by the register file and by device behaviour)."""
        if len(self.issues) >= MAX_ISSUES:
            self.issues_dropped += 1
            return
        pc, source = self.locate_access()
        self.issues.append(make_issue(self.name, kind, self.clock.now, pc=pc, source=source, **details))

    def add_tracer(self, tracer: Callable[[MmioEvent], None]) -> None:
        """``tracer(event)`` at every guest access to this device."""
        self._tracers.append(tracer)
        self.regs.set_direct(reads=False, writes=False)  # every access through mmio_read/mmio_write now

    def _trace(self, op: str, offset: int, size: int, value: int) -> None:
        event = MmioEvent(self.name, op, offset, size, value, self.clock.now)
        for tracer in self._tracers:
            tracer(event)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} ({self.TYPE})>"
