"""The virtio-mmio transport (version 2, virtio 1.x), with the driver's MUST rules checked.

::

    driver: Status ACK|DRIVER -> DeviceFeatures/DriverFeatures -> FEATURES_OK (read back) ->
            per queue: QueueSel, QueueNumMax, QueueNum, QueueDesc/Driver/Device, QueueReady=1 -> DRIVER_OK
            -> QueueNotify -> (device: chains -> used ring -> InterruptStatus bit 0 -> IRQ) -> InterruptACK

A device model subclasses :class:`VirtioMmio` and provides ``DEVICE_ID``, ``device_features()``,
``config_bytes()``, ``request_ticks(queue, chain)`` (how long serving a chain takes, nominally) and
``handle(queue, chain) -> used length`` (None: the request is not completed).  Driver mistakes are
recorded as device issues; those that leave the device unable to go on (ring errors) also set
DEVICE_NEEDS_RESET and raise a configuration-change interrupt, as the specification suggests,
and the device then ignores notifications until the driver resets it (Status = 0).

Requests take time, as on hardware::

    QueueNotify --> fetch every available chain now (ring errors: DEVICE_NEEDS_RESET at once)
                    each chain: a clock event after request_ticks (varied per seed by the board's Timing)
    event       --> handle(): the data moves now --> used element, used idx --> used-buffer interrupt
                    (unless VIRTQ_AVAIL_F_NO_INTERRUPT), in completion order: out of order when the
                    latencies say so

The initialisation sequence (virtio 1.x, 3.1.1) is checked too: a reset (Status = 0) before
ACKNOWLEDGE, ACKNOWLEDGE before DRIVER, DRIVER before DriverFeatures, only offered features,
FEATURES_OK read back before the next step, queues set up before DRIVER_OK.  Each violation is a
device issue at the register write that made it (whose C line the driver runner names).

Several requests are in flight at once (``busy``); a reset, or QueueReady = 0, abandons those of the
device (of the queue): they are never completed and the device touches their buffers no more.
Observers (``add_queue_observer``) see each queue made ready, each notification, each chain fetched
and returned, and each queue stopped; the driver runner's protocol checker is one.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass

from ..base import Device
from ..clock import ClockEvent
from ..issues import IssueKind
from ..regs import WriteHook
from .bits import (
    AVAIL_F_NO_INTERRUPT,
    CONFIG_OFFSET,
    F_VERSION_1,
    INT_CONFIG_CHANGE,
    INT_USED_BUFFER,
    MMIO_LAYOUT,
    STATUS_ACKNOWLEDGE,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
)
from .queue import Chain, SplitQueue, VirtqueueError

_QUEUE_REGS = {
    "QueueDescLow": ("desc", 0),
    "QueueDescHigh": ("desc", 32),
    "QueueDriverLow": ("avail", 0),
    "QueueDriverHigh": ("avail", 32),
    "QueueDeviceLow": ("used", 0),
    "QueueDeviceHigh": ("used", 32),
}


class QueueEventKind(enum.Enum):
    READY = "the driver made the queue ready"
    NOTIFIED = "the driver notified the queue"
    FETCHED = "the device fetched an available chain (it owns the chain until it returns it)"
    RETURNED = "the device put a chain in the used ring"
    STOPPED = "the queue stopped (QueueReady = 0 or a device reset): its chains are abandoned"


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """What a virtqueue observer is told: the kind, the queue and, for chains, the chain."""

    kind: QueueEventKind
    queue: SplitQueue
    chain: Chain | None = None


class VirtioMmio(Device):
    LAYOUT = MMIO_LAYOUT
    DOES_DMA = True
    DIRECT_READS = True  # a register read does only the register's work (writes check the init sequence)
    DEVICE_ID = 0
    NUM_QUEUES = 1

    def __init__(self, *, name: str, dma=None, **kw) -> None:
        super().__init__(name=name, **kw)
        self.dma_port = dma  # a hwsim.iommu.DmaPort: every ring and buffer access goes through the IOMMU
        queue_size = self.options.get("queue_size", 128)
        self.queues = [SplitQueue(i, queue_size) for i in range(self.NUM_QUEUES)]
        self._timing_what = [f"{name} queue {i} request" for i in range(self.NUM_QUEUES)]  # (made once)
        self.regs["DeviceID"] = self.DEVICE_ID
        self._device_sel = 0
        self._driver_sel = 0
        self._queue_sel = 0
        self.driver_features = 0
        self._in_flight: dict[ClockEvent, tuple[SplitQueue, Chain]] = {}  # requests not completed yet
        self._causes: dict[ClockEvent, str] = {}  # the notify that started each (its C line)
        self._reset_by_driver = False  # Status = 0 was written since power-on or the last initialisation
        self._features_unread = False  # FEATURES_OK was accepted and Status not read since
        self._queue_observers: list[Callable[[QueueEvent], None]] = []
        r = self.regs
        r.on_read(
            "DeviceFeatures",
            lambda: self.device_features() >> (32 * self._device_sel) & 0xFFFF_FFFF if self._device_sel < 2 else 0,
        )
        r.on_write("DeviceFeaturesSel", lambda new, old: setattr(self, "_device_sel", new))
        r.on_write("DriverFeatures", self._write_driver_features)
        r.on_write("DriverFeaturesSel", lambda new, old: setattr(self, "_driver_sel", new))
        r.on_write("QueueSel", lambda new, old: setattr(self, "_queue_sel", new))
        r.on_read("QueueNumMax", lambda: self.queues[self._queue_sel].max_size if self._queue() else 0)
        r.on_write("QueueNum", lambda new, old: self._set_queue("QueueNum", "size", new))
        r.on_read("QueueReady", self._read_queue_ready)
        r.on_write("QueueReady", self._write_queue_ready)
        for reg, (attr, shift) in _QUEUE_REGS.items():
            r.on_write(reg, self._address_writer(reg, attr, shift))
        r.on_write("QueueNotify", self._write_notify)
        r.on_write("InterruptACK", self._write_ack)
        r.on_write("Status", self._write_status)
        r.on_read("Status", self._read_status)

    @classmethod
    def required_size(cls, options) -> int:
        return CONFIG_OFFSET + len(cls.config_template())

    @classmethod
    def config_template(cls) -> bytes:
        return b""

    # -- the device's part ----------------------------------------------------------------------------

    def device_features(self) -> int:
        return 1 << F_VERSION_1

    def config_bytes(self) -> bytes:
        return self.config_template()

    def handle(self, queue: SplitQueue, chain: Chain) -> int | None:  # pragma: no cover - every device overrides
        raise NotImplementedError

    def request_ticks(self, queue: SplitQueue, chain: Chain) -> int:
        """Nominal virtual ticks from a chain's fetch to its completion (0: at once)."""
        return 0

    def begin(self, queue: SplitQueue, chain: Chain) -> None:
        """A chain was fetched and its request begins (before its latency); nothing by default."""

    def ns_to_ticks(self, ns: int) -> int:
        """Virtual ticks of ``ns`` nanoseconds, rounded up."""
        return -(-ns * self.clock.frequency_hz // 1_000_000_000)

    # -- observers ------------------------------------------------------------------------------------

    def add_queue_observer(self, observer: Callable[[QueueEvent], None]) -> Callable[[], None]:
        """``observer(QueueEvent)`` at each queue event (see the module docstring), in the order added;
        returns the function that removes it."""
        self._queue_observers.append(observer)
        return lambda: self._queue_observers.remove(observer) if observer in self._queue_observers else None

    def _tell(self, kind: QueueEventKind, queue: SplitQueue, chain: Chain | None = None) -> None:
        if self._queue_observers:
            event = QueueEvent(kind, queue, chain)
            for observer in list(self._queue_observers):
                observer(event)

    # -- state ----------------------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.regs["Status"]

    @property
    def interrupt_status(self) -> int:
        return self.regs["InterruptStatus"]

    def negotiated(self, bit: int) -> bool:
        return bool(self.status & STATUS_FEATURES_OK and self.driver_features >> bit & 1)

    @property
    def busy(self) -> bool:
        """Requests are in flight (fetched, not completed yet)."""
        return bool(self._in_flight)

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def _abandon(self, queue: SplitQueue | None = None) -> None:
        """Cancel the requests in flight (of ``queue``, or all): they are never completed."""
        for event, (q, _chain) in list(self._in_flight.items()):
            if queue is None or q is queue:
                event.cancel()
                del self._in_flight[event]
                self._causes.pop(event, None)

    def _reset(self) -> None:
        self._reset_by_driver = self._features_unread = False
        self._abandon()
        for q in self.queues:
            if q.ready:
                self._tell(QueueEventKind.STOPPED, q)
            q.reset()
        self.regs["DeviceID"] = self.DEVICE_ID
        self._device_sel = self._driver_sel = self._queue_sel = 0
        self.driver_features = 0
        self._update_irq()

    def _queue(self) -> SplitQueue | None:
        return self.queues[self._queue_sel] if self._queue_sel < len(self.queues) else None

    def _update_irq(self) -> None:
        self.irq.set(bool(self.regs["InterruptStatus"]))

    def _interrupt(self, bits: int) -> None:
        self.regs["InterruptStatus"] = self.regs["InterruptStatus"] | bits
        self._update_irq()

    def _needs_reset(self, reason: str) -> None:
        self.report(IssueKind.PROTOCOL, detail=f"{reason}; device needs reset")
        self._set_needs_reset()

    def _set_needs_reset(self) -> None:
        """DEVICE_NEEDS_RESET: requests in flight are abandoned, and a configuration-change interrupt."""
        self._abandon()
        self.regs["Status"] = self.regs["Status"] | STATUS_DEVICE_NEEDS_RESET
        if self.status & STATUS_DRIVER_OK:
            self._interrupt(INT_CONFIG_CHANGE)

    # -- registers --------------------------------------------------------------------------------------

    def _write_driver_features(self, new: int, _old: int) -> None:
        if not self.status & STATUS_DRIVER:
            self._sequence("DriverFeatures written before DRIVER was set (acknowledge the device first)")
        if self.status & STATUS_FEATURES_OK:
            self.report(
                IssueKind.BAD_VALUE,
                register="DriverFeatures",
                detail=f"written ({new:#x}) after FEATURES_OK was set (ignored)",
            )
            return
        if self._driver_sel > 1:
            if new:
                self.report(
                    IssueKind.BAD_VALUE,
                    register="DriverFeatures",
                    detail=f"word {self._driver_sel} accepts {new:#x}, but the device offers no such features",
                )
            return
        shift = 32 * self._driver_sel
        self.driver_features = self.driver_features & ~(0xFFFF_FFFF << shift) | new << shift

    def _set_queue(self, reg: str, attr: str, value: int) -> None:
        q = self._queue()
        if q is None:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"QueueSel {self._queue_sel} selects no queue (the device has {len(self.queues)})",
            )
            return
        if q.ready:
            self.report(IssueKind.BAD_VALUE, register=reg, detail=f"written while queue {q.index} is ready (ignored)")
            return
        setattr(q, attr, value)

    def _address_writer(self, reg: str, attr: str, shift: int) -> WriteHook:
        return lambda new, old: self._set_address(reg, attr, shift, new)

    def _set_address(self, reg: str, attr: str, shift: int, value: int) -> None:
        q = self._queue()
        old = getattr(q, attr) if q is not None else 0
        self._set_queue(reg, attr, old & ~(0xFFFF_FFFF << shift) | value << shift)

    def _read_queue_ready(self) -> int:
        q = self._queue()
        return int(q is not None and q.ready)

    def _write_queue_ready(self, new: int, _old: int) -> None:
        q = self._queue()
        if q is None:
            self.report(
                IssueKind.BAD_VALUE,
                register="QueueReady",
                detail=f"QueueSel {self._queue_sel} selects no queue (the device has {len(self.queues)})",
            )
            return
        if not new & 1:
            if q.ready:
                q.ready = False
                q.close_views()
                self._abandon(q)
                self._tell(QueueEventKind.STOPPED, q)
            return
        if not q.ready:
            problem = q.config_problem()
            if problem is not None:
                self.report(IssueKind.BAD_VALUE, register="QueueReady", detail=f"{problem} (the queue stays not ready)")
                return
            if self.status & STATUS_DRIVER_OK:
                self._sequence(
                    f"queue {q.index} made ready after DRIVER_OK: the driver MUST set its queues up before it "
                    f"sets DRIVER_OK"
                )
            q.ready = True
            q.close_views()
            q.last_avail = q.used_idx = 0
            self._tell(QueueEventKind.READY, q)

    def _write_notify(self, new: int, _old: int) -> None:
        status = self.status
        if status & STATUS_DEVICE_NEEDS_RESET:
            self.report(
                IssueKind.PROTOCOL,
                detail=f"notification of queue {new} while DEVICE_NEEDS_RESET is set "
                f"(ignored until the driver resets the device)",
            )
            return
        if not status & STATUS_DRIVER_OK:
            self.report(
                IssueKind.PROTOCOL,
                detail=f"notification of queue {new} before DRIVER_OK (ignored: the "
                f"device MUST NOT consume buffers before DRIVER_OK)",
            )
            return
        if new >= len(self.queues) or not self.queues[new].ready:
            self.report(
                IssueKind.BAD_VALUE,
                register="QueueNotify",
                detail=f"queue {new} does not exist or is not ready (ignored)",
            )
            return
        self.started_here()
        self.process(self.queues[new])

    def process(self, queue: SplitQueue) -> int:
        """Fetch every chain the driver has made available on ``queue`` and start serving each one;
        returns how many.  Each completes after its latency (see the module docstring)."""
        self._tell(QueueEventKind.NOTIFIED, queue)
        queue.retry_views()
        if self.dma_port is None:
            self._needs_reset("the device has no DMA port (no IOMMU)")
            return 0
        fetched = 0
        try:
            while (chain := self.fetch(queue)) is not None:
                fetched += 1
                self._start(queue, chain)
                if self.status & STATUS_DEVICE_NEEDS_RESET:  # a request that failed at once stopped it
                    break
        except VirtqueueError as exc:
            self._needs_reset(str(exc))
        return fetched

    def fetch(self, queue: SplitQueue) -> Chain | None:
        """The next available chain of ``queue`` (raises VirtqueueError for a ring error)."""
        chain = queue.next_chain(self.dma_port, indirect_ok=False)
        if chain is not None:
            self._tell(QueueEventKind.FETCHED, queue, chain)
        return chain

    def _start(self, queue: SplitQueue, chain: Chain) -> None:
        self.begin(queue, chain)
        ticks = self.timing.delay(self.request_ticks(queue, chain), self._timing_what[queue.index])
        if not ticks:
            self._complete(queue, chain)
            return
        event = self.clock.schedule_in(ticks, lambda: self._finish(event))
        self._in_flight[event] = (queue, chain)
        self._causes[event] = self.work_cause

    def _finish(self, event: ClockEvent) -> None:
        queue, chain = self._in_flight.pop(event)
        self.work_cause = self._causes.pop(event, "") or self.work_cause
        try:
            self._complete(queue, chain)
        except VirtqueueError as exc:
            self._needs_reset(str(exc))

    def _complete(self, queue: SplitQueue, chain: Chain) -> None:
        """Serve a chain now (its data moves) and return it; raises VirtqueueError for a ring error."""
        length = self.handle(queue, chain)
        if length is not None:
            self.give_back(queue, chain, length)

    def give_back(self, queue: SplitQueue, chain: Chain, length: int) -> None:
        """Put ``chain`` in the used ring with ``length`` and send the used-buffer interrupt, unless the
        driver suppressed it (VIRTQ_AVAIL_F_NO_INTERRUPT, read now)."""
        port = self.dma_port
        queue.push_used(port, chain.head, length)
        self._tell(QueueEventKind.RETURNED, queue, chain)
        flags, _ = queue.avail_flags_and_idx(port)
        if flags & ~AVAIL_F_NO_INTERRUPT:
            self.report(
                IssueKind.PROTOCOL,
                detail=f"queue {queue.index}: available ring flags {flags:#x}: the driver MUST set them to 0 or 1",
            )
        if not flags & AVAIL_F_NO_INTERRUPT:
            self._interrupt(INT_USED_BUFFER)

    def _write_ack(self, new: int, _old: int) -> None:
        self.regs["InterruptStatus"] = self.regs["InterruptStatus"] & ~new
        self._update_irq()

    def _read_status(self) -> int:
        self._features_unread = False
        return self.regs["Status"]

    def _sequence(self, detail: str) -> None:
        """A step of the initialisation sequence out of order (virtio 1.x, 3.1.1)."""
        self.report(IssueKind.PROTOCOL, detail=f"initialisation: {detail}")

    def _write_status(self, new: int, old: int) -> None:
        if new == 0:
            self.reset()  # the driver's reset: every register and queue back to its initial state
            self._reset_by_driver = True
            return
        if not old and new & STATUS_ACKNOWLEDGE:
            if not self._reset_by_driver:
                self._sequence(
                    "ACKNOWLEDGE set without resetting the device first: the driver MUST write 0 to Status "
                    "before initialising it (it may hold another driver's state)"
                )
            self._reset_by_driver = False
        if new & STATUS_DRIVER and not old & STATUS_DRIVER and not old & STATUS_ACKNOWLEDGE:
            self._sequence("DRIVER set before ACKNOWLEDGE: set ACKNOWLEDGE first, then DRIVER, then negotiate")
        value = new
        if old & ~new & ~STATUS_DEVICE_NEEDS_RESET:
            self.report(
                IssueKind.BAD_VALUE,
                register="Status",
                detail=f"write of {new:#x} clears bits {old & ~new:#x}; the driver MUST NOT clear status "
                f"bits (write 0 to reset) (ignored)",
            )
            self.regs["Status"] = old
            return
        if new & STATUS_DEVICE_NEEDS_RESET and not old & STATUS_DEVICE_NEEDS_RESET:
            self.report(
                IssueKind.BAD_VALUE,
                register="Status",
                detail="DEVICE_NEEDS_RESET is set by the device, not the driver (ignored)",
            )
            value &= ~STATUS_DEVICE_NEEDS_RESET
        value |= old & STATUS_DEVICE_NEEDS_RESET
        if value & STATUS_FEATURES_OK and not old & STATUS_FEATURES_OK:
            problem = self._features_problem(value)
            if problem is not None:
                self.report(IssueKind.BAD_VALUE, register="Status", detail=f"FEATURES_OK refused: {problem}")
                value &= ~STATUS_FEATURES_OK
            else:
                self._features_unread = True
        if value & STATUS_DRIVER_OK and not old & STATUS_DRIVER_OK and not value & STATUS_FEATURES_OK:
            self.report(
                IssueKind.BAD_VALUE,
                register="Status",
                detail="DRIVER_OK without FEATURES_OK (ignored: negotiate features first)",
            )
            value &= ~STATUS_DRIVER_OK
        self.regs["Status"] = value

    def _features_problem(self, status: int) -> str | None:
        if status & (STATUS_ACKNOWLEDGE | STATUS_DRIVER) != STATUS_ACKNOWLEDGE | STATUS_DRIVER:
            return "ACKNOWLEDGE and DRIVER must be set first"
        extra = self.driver_features & ~self.device_features()
        if extra:
            return f"the driver accepted features {extra:#x} the device did not offer"
        if not self.driver_features >> F_VERSION_1 & 1:
            return "VIRTIO_F_VERSION_1 was not accepted (hwsim has no legacy interface)"
        return None

    # -- device configuration space ---------------------------------------------------------------------

    def mmio_read(self, offset: int, size: int) -> int:
        if offset < CONFIG_OFFSET:
            return super().mmio_read(offset, size)
        config = self.config_bytes()
        i = offset - CONFIG_OFFSET
        if size not in (1, 2, 4) or offset % size or i + size > len(config):
            self.report(
                IssueKind.PROTOCOL,
                offset=offset,
                size=size,
                detail=f"{size}-byte read at offset {offset:#x}: the configuration space is "
                f"{len(config)} bytes at {CONFIG_OFFSET:#x} (naturally aligned 1, 2 or 4-byte reads)",
            )
            return 0
        value = int.from_bytes(config[i : i + size], "little")
        if self._tracers:
            self._trace("read", offset, size, value)
        return value

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if self._features_unread:  # any next step before Status was read back
            self._features_unread = False
            self._sequence(
                "FEATURES_OK was not read back: the driver MUST re-read Status after setting FEATURES_OK, "
                "and go on only if the device kept it"
            )
        if offset < CONFIG_OFFSET:
            super().mmio_write(offset, size, value)
            return
        self.report(
            IssueKind.PROTOCOL,
            offset=offset,
            size=size,
            value=value,
            detail=f"write of {value:#x} to the read-only configuration space at offset {offset:#x}",
        )
