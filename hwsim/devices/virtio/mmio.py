"""The virtio-mmio transport (version 2, virtio 1.x), with the driver's MUST rules checked.

::

    driver: Status ACK|DRIVER -> DeviceFeatures/DriverFeatures -> FEATURES_OK (read back) ->
            per queue: QueueSel, QueueNumMax, QueueNum, QueueDesc/Driver/Device, QueueReady=1 -> DRIVER_OK
            -> QueueNotify -> (device: chains -> used ring -> InterruptStatus bit 0 -> IRQ) -> InterruptACK

A device model subclasses :class:`VirtioMmio` and provides ``DEVICE_ID``, ``device_features()``,
``config_bytes()`` and ``handle(queue, chain) -> used length``.  Driver mistakes are recorded as
device issues; those that leave the device unable to go on (ring errors) also set
DEVICE_NEEDS_RESET and raise a configuration-change interrupt, as the specification suggests,
and the device then ignores notifications until the driver resets it (Status = 0).
"""

from __future__ import annotations

from ..base import Device
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


class VirtioMmio(Device):
    LAYOUT = MMIO_LAYOUT
    DOES_DMA = True
    DEVICE_ID = 0
    NUM_QUEUES = 1

    def __init__(self, *, name: str, dma=None, **kw) -> None:
        super().__init__(name=name, **kw)
        self.dma_port = dma  # a hwsim.iommu.DmaPort: every ring and buffer access goes through the IOMMU
        queue_size = self.options.get("queue_size", 128)
        self.queues = [SplitQueue(i, queue_size) for i in range(self.NUM_QUEUES)]
        self.regs["DeviceID"] = self.DEVICE_ID
        self._device_sel = 0
        self._driver_sel = 0
        self._queue_sel = 0
        self.driver_features = 0
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

    def handle(self, queue: SplitQueue, chain: Chain) -> int:  # pragma: no cover - every device overrides
        raise NotImplementedError

    # -- state ----------------------------------------------------------------------------------------

    @property
    def status(self) -> int:
        return self.regs["Status"]

    @property
    def interrupt_status(self) -> int:
        return self.regs["InterruptStatus"]

    def negotiated(self, bit: int) -> bool:
        return bool(self.status & STATUS_FEATURES_OK and self.driver_features >> bit & 1)

    def _reset(self) -> None:
        for q in self.queues:
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
        self.regs["Status"] = self.regs["Status"] | STATUS_DEVICE_NEEDS_RESET
        if self.status & STATUS_DRIVER_OK:
            self._interrupt(INT_CONFIG_CHANGE)

    # -- registers --------------------------------------------------------------------------------------

    def _write_driver_features(self, new: int, _old: int) -> None:
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
            q.ready = False
            return
        if not q.ready:
            problem = q.config_problem()
            if problem is not None:
                self.report(IssueKind.BAD_VALUE, register="QueueReady", detail=f"{problem} (the queue stays not ready)")
                return
            q.ready = True
            q.last_avail = q.used_idx = 0

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
        self.process(self.queues[new])

    def process(self, queue: SplitQueue) -> int:
        """Serve every chain the driver has made available on ``queue``; returns how many."""
        if self.dma_port is None:
            self._needs_reset("the device has no DMA port (no IOMMU)")
            return 0
        port = self.dma_port
        served = 0
        try:
            while True:
                chain = queue.next_chain(port, indirect_ok=False)
                if chain is None:
                    break
                length = self.handle(queue, chain)
                queue.push_used(port, chain.head, length)
                served += 1
            if served:
                flags, _ = queue.avail_flags_and_idx(port)
                if flags & ~AVAIL_F_NO_INTERRUPT:
                    self.report(
                        IssueKind.PROTOCOL,
                        detail=f"queue {queue.index}: available ring flags {flags:#x}: "
                        f"the driver MUST set them to 0 or 1",
                    )
                if not flags & AVAIL_F_NO_INTERRUPT:
                    self._interrupt(INT_USED_BUFFER)
        except VirtqueueError as exc:
            self._needs_reset(str(exc))
        return served

    def _write_ack(self, new: int, _old: int) -> None:
        self.regs["InterruptStatus"] = self.regs["InterruptStatus"] & ~new
        self._update_irq()

    def _write_status(self, new: int, old: int) -> None:
        if new == 0:
            self.reset()  # the driver's reset: every register and queue back to its initial state
            return
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
