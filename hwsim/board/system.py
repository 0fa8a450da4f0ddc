"""A built board: the machine with its RAM and MMIO windows, the devices, their wiring and virtual time.

::

    System
      machine   Machine (CPU + MMU; the board's harts: machine.harts); RAM regions; one MMIO window per device
      clock     VirtualClock shared by every device: advanced by each MMIO access
                (the board's mmio_access_ticks) and by the runner (waits, sleeps)
      irqc      the PLIC; each device's ``irq`` is a line into it
      iommu     the IOMMU; each DMA device's port is bound to its iommu_device_id
      devices   name -> device model (interrupt controller and IOMMU included)
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import contextmanager

from ..devices.base import Device
from ..devices.clock import VirtualClock
from ..devices.faults import FaultPlan
from ..devices.issues import DeviceIssue
from ..devices.timing import Timing
from ..errors import ConfigError, HostLimitError
from ..machine.hooks import Hooks
from ..machine.machine import Machine
from .errors import BoardError


class System:
    def __init__(
        self,
        board,
        machine: Machine,
        clock: VirtualClock,
        devices: dict[str, Device],
        irqc=None,
        iommu=None,
        timing: Timing | None = None,
        faults: FaultPlan | None = None,
    ) -> None:
        self.board = board
        self.machine = machine
        self.clock = clock
        self.devices = devices
        self.irqc = irqc
        self.iommu = iommu
        self.timing = timing if timing is not None else Timing()
        self.faults = faults if faults is not None else FaultPlan()
        self._locators = Hooks("access locator")
        for dev in devices.values():
            dev.locate_access = self.locate_access

    # -- naming the guest code behind a device issue -----------------------------------------------

    def add_access_locator(self, locator: Callable[[int], str | None]) -> Callable[[], None]:
        """``locator(pc) -> str | None`` names the guest code at ``pc`` (a driver's C line), or declines
        with None.  A device issue found while a device serves a guest load or store carries its PC
        (exact once ``machine.track_mmio_pcs()`` is on) and the first name a locator gives, asked in
        the order added.  Returns the function that removes the locator."""
        return self._locators.add(locator)

    def locate_access(self) -> tuple[int | None, str]:
        """(pc, source) of the guest access a device is serving now; (None, "") outside one."""
        pc = self.machine.serving_mmio_pc
        if pc is None:
            return None, ""
        for locator in self._locators.callbacks:
            source = locator(pc)
            if source:
                return pc, source
        return pc, ""

    def device(self, name: str) -> Device:
        try:
            return self.devices[name]
        except KeyError:
            raise ConfigError(
                f"board {self.board.name!r} has no device {name!r} (devices: {', '.join(sorted(self.devices))})"
            ) from None

    def issues(self) -> list[DeviceIssue]:
        """Every device's recorded guest misuse, in virtual-time order (stable per device)."""
        out = [issue for dev in self.devices.values() for issue in dev.issues]
        return sorted(out, key=lambda i: i.time)

    def format_issues(self) -> str:
        return "\n".join(i.format() for i in self.issues())

    def advance(self, ticks: int) -> int:
        """Advance virtual time (timers fire); returns the number of clock events that ran."""
        return self.clock.advance(ticks)

    def reset(self) -> None:
        for dev in self.devices.values():
            dev.reset()

    def __repr__(self) -> str:
        return f"<System {self.board.name!r}: {', '.join(self.devices)}>"


@contextmanager
def _host_limits(board, region):
    """A RAM size the board file may hold but this host cannot map: a BoardError naming the region's size."""
    try:
        yield
    except HostLimitError as exc:
        raise BoardError(board.path, region.table, "size", exc.problem) from None


def build_system(board, overrides: dict[str, dict], seed: int | None = None, faults: FaultPlan | None = None) -> System:
    if overrides:
        board = board.with_options(overrides)
    first = board.ram[0]
    with _host_limits(board, first):
        machine = Machine(ram_base=first.base, ram_size=first.size, harts=board.harts)  # the windows reach every hart
    for region in board.ram[1:]:
        with _host_limits(board, region):
            machine.phys.add_ram(region.base, region.size, name=region.name)
    clock = VirtualClock(frequency_hz=board.clock_hz)
    timing = Timing(seed)  # nominal device timing, or a seed's variation of it (devices/timing.py)
    faults = faults if faults is not None else FaultPlan()  # no injected faults unless asked (devices/faults.py)
    faults.clock = clock
    devices: dict[str, Device] = {}

    irqc = None
    if board.interrupt_controller is not None:
        spec = board.interrupt_controller
        irqc = spec.cls(name=spec.name, clock=clock, timing=timing, faults=faults, **spec.options)
        devices[spec.name] = irqc

    def irq_for(spec):
        if spec.irq is None:
            return None
        assert irqc is not None  # the board loader refuses an irq without an interrupt controller
        line = irqc.line(spec.irq)
        line.name = spec.name
        return line

    iommu = None
    if board.iommu is not None:
        spec = board.iommu
        iommu = spec.cls(
            name=spec.name,
            clock=clock,
            timing=timing,
            irq=irq_for(spec),
            phys=machine.phys,
            frames=machine.frames,
            **spec.options,
        )
        devices[spec.name] = iommu

    for spec in board.devices:
        kwargs = dict(name=spec.name, clock=clock, timing=timing, faults=faults, irq=irq_for(spec), **spec.options)
        if spec.iommu_device_id is not None:
            assert iommu is not None  # the board loader refuses a device ID without an IOMMU
            kwargs["dma"] = iommu.port(spec.iommu_device_id)
            iommu.name_device(spec.iommu_device_id, spec.name)
        devices[spec.name] = spec.cls(**kwargs)

    for spec in board.all_devices():
        machine.phys.add_mmio(spec.base, spec.size, devices[spec.name], name=spec.name)
    if board.mmio_access_ticks:
        ticks = board.mmio_access_ticks
        machine.add_mmio_observer(clock.access_charger(ticks))  # virtual time passes with each device access
    faults.check({name: set(dev.FAULTS) for name, dev in devices.items()})
    return System(board, machine, clock, devices, irqc, iommu, timing, faults)
