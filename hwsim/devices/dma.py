"""A single-buffer DMA engine in the spirit of QEMU's ``edu`` device; every transfer goes through the IOMMU.

::

    SRC, DST, LEN, CMD(START | DIR | IRQ) --> one transfer, taking virtual time (see Timing below)
        DIR 0  memory -> memory         read LEN bytes at IOVA SRC, write them at IOVA DST
        DIR 1  memory -> device buffer  read at IOVA SRC into buffer[DST]
        DIR 2  device buffer -> memory  write buffer[SRC] at IOVA DST
    --> STATUS.DONE, or STATUS.ERROR with ERROR_CODE and ERROR_ADDR (the faulting IOVA);
        the IRQ is high while DONE or ERROR is set and CMD.IRQ was given

Timing: a transfer takes ``setup_ns + length / bandwidth`` of virtual time
(board options; the board's Timing may vary it per seed).  START sets BUSY;
the data moves, and DONE (or ERROR) is set, when the time is up; a START
while BUSY is ignored and reported.  A bad command (direction, length,
buffer range) fails at once.  ``bandwidth = 0`` makes transfers instant, as
hwsim's first DMA engine was.

The 4 KiB device buffer is also visible at offsets 0x1000-0x1FFF (1, 2 or
4-byte accesses).  The engine reaches memory only through its DMA port,
i.e. ``Iommu.dma`` with the board's ``iommu_device_id``: each transfer is
one read request and one write request, each all-or-nothing, so a fault on
the destination leaves it untouched.  A range moved again right after it
went through is read (or written) through a validated view, as a device's
address translation cache would (``DmaPort.read_repeated``): the same
requests, counted, until the IOMMU invalidates the view.
"""

from __future__ import annotations

from .base import Device, Option, register_device
from .clock import ClockEvent
from .issues import IssueKind
from .layouts import (
    DMA_BUFFER_OFFSET,
    DMA_BUFFER_SIZE,
    DMA_CMD_DIR_MASK,
    DMA_CMD_DIR_SHIFT,
    DMA_CMD_IRQ,
    DMA_CMD_START,
    DMA_DIR_DEV_TO_MEM,
    DMA_DIR_MEM_TO_DEV,
    DMA_DIR_MEM_TO_MEM,
    DMA_LAYOUT,
    DMA_STATUS_BUSY,
    DMA_STATUS_DONE,
    DMA_STATUS_ERROR,
    DmaError,
)


@register_device
class DmaEngine(Device):
    TYPE = "dma"
    DESCRIPTION = "single-buffer DMA engine (memory<->memory, memory<->4 KiB device buffer)"
    LAYOUT = DMA_LAYOUT
    DOES_DMA = True
    DIRECT_READS = DIRECT_WRITES = True  # (a register access does only the register's work; the buffer has none)
    FAULTS = {"error": "a transfer ends with STATUS.ERROR (ERROR_CODE 7, device error) instead of moving its data"}
    OPTIONS = {
        "bandwidth": Option(
            int,
            1_000_000_000,
            "bytes per second of a transfer (0: instant, no virtual time)",
            minimum=0,
            maximum=1 << 40,
        ),
        "setup_ns": Option(int, 200, "virtual ns every transfer takes before its first byte", minimum=0, maximum=10**9),
        "max_transfer": Option(
            int, 1 << 20, "largest LEN accepted for memory-to-memory transfers (bytes)", minimum=1, maximum=1 << 30
        ),
    }

    def __init__(self, *, name: str, dma=None, **kw) -> None:
        super().__init__(name=name, **kw)
        self.dma_port = dma  # a hwsim.iommu.DmaPort; None: not connected (every transfer fails)
        self.buffer = bytearray(DMA_BUFFER_SIZE)
        self.last_fault = None  # the IommuFault of the last failed transfer
        self._pending: ClockEvent | None = None  # completes the transfer in flight
        self._timing_what = f"{name} transfer"  # what a transfer's timing draw is for (made once)
        self.regs.on_write("CMD", self._write_cmd)
        self.regs.on_write("STATUS", self._update_irq)  # (a write hook: new, old)

    @classmethod
    def required_size(cls, options) -> int:
        return DMA_BUFFER_OFFSET + DMA_BUFFER_SIZE

    def _reset(self) -> None:
        self.buffer[:] = bytes(DMA_BUFFER_SIZE)
        self.last_fault = None
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        if self.dma_port is not None:
            self.dma_port.forget_repeated()
        self._update_irq()

    @property
    def busy(self) -> bool:
        """A transfer is in flight (its data has not moved yet)."""
        return self._pending is not None

    def transfer_ticks(self, length: int) -> int:
        """Nominal virtual ticks of a transfer of ``length`` bytes (setup + length / bandwidth)."""
        bandwidth = self.options["bandwidth"]
        if not bandwidth:
            return 0
        ns = self.options["setup_ns"] + length * 1_000_000_000 // bandwidth
        return -(-ns * self.clock.frequency_hz // 1_000_000_000)

    # -- the buffer window -------------------------------------------------------------------------

    def mmio_read(self, offset: int, size: int) -> int:
        if offset < DMA_BUFFER_OFFSET:
            return Device.mmio_read(self, offset, size)
        value = self._buffer_access(offset, size)
        if self._tracers:
            self._trace("read", offset, size, value or 0)
        return value or 0

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        if offset >= DMA_BUFFER_OFFSET:
            if self._tracers:
                self._trace("write", offset, size, value)
            self._buffer_access(offset, size, value)
            return
        Device.mmio_write(self, offset, size, value)

    def _buffer_access(self, offset: int, size: int, value: int | None = None) -> int | None:
        op = "read" if value is None else "write"
        i = offset - DMA_BUFFER_OFFSET
        if size not in (1, 2, 4) or offset % size or i + size > DMA_BUFFER_SIZE:
            if i >= DMA_BUFFER_SIZE:
                self.report(IssueKind.UNKNOWN_OFFSET, offset=offset, size=size, op=op)
            else:
                self.report(
                    IssueKind.PROTOCOL,
                    offset=offset,
                    size=size,
                    detail=f"{size}-byte {op} at offset {offset:#x} in the device buffer: accesses must be "
                    f"1, 2 or 4 bytes, naturally aligned",
                )
            return 0
        if value is None:
            return int.from_bytes(self.buffer[i : i + size], "little")
        self.buffer[i : i + size] = (value & ((1 << (8 * size)) - 1)).to_bytes(size, "little")
        return None

    # -- transfers ---------------------------------------------------------------------------------------

    def _write_cmd(self, new: int, _old: int) -> None:
        if not new & DMA_CMD_START:
            self._update_irq()  # CMD.IRQ may have changed
            return
        # The registers' values, read and updated directly (every value written here fits its register).
        r = self.regs.values
        r["CMD"] = new & ~DMA_CMD_START  # START reads back 0
        self.started_here()
        if self._pending is not None:
            self.report(
                IssueKind.PROTOCOL,
                register="CMD",
                detail="START written while a transfer is in flight (STATUS.BUSY): the command is ignored; "
                "wait for DONE or ERROR first",
            )
            return
        src = r["SRC_HI"] << 32 | r["SRC_LO"]
        dst = r["DST_HI"] << 32 | r["DST_LO"]
        length = r["LEN"]
        direction = (new & DMA_CMD_DIR_MASK) >> DMA_CMD_DIR_SHIFT
        r["STATUS"] = r["STATUS"] & ~(DMA_STATUS_DONE | DMA_STATUS_ERROR) | DMA_STATUS_BUSY
        r["ERROR_CODE"] = int(DmaError.NONE)
        self._run(direction, src, dst, length)

    def _run(self, direction: int, src: int, dst: int, length: int) -> None:
        if direction not in (DMA_DIR_MEM_TO_MEM, DMA_DIR_MEM_TO_DEV, DMA_DIR_DEV_TO_MEM):
            self.report(IssueKind.BAD_VALUE, register="CMD", detail=f"DIR={direction} is reserved")
            self._fail(DmaError.BAD_DIRECTION, 0)
            return
        limit = self.options["max_transfer"] if direction == DMA_DIR_MEM_TO_MEM else DMA_BUFFER_SIZE
        if not 0 < length <= limit:
            self.report(IssueKind.BAD_VALUE, register="LEN", detail=f"length {length} is not in 1..{limit}")
            self._fail(DmaError.BAD_LENGTH, 0)
            return
        buf_off = dst if direction == DMA_DIR_MEM_TO_DEV else src if direction == DMA_DIR_DEV_TO_MEM else 0
        if direction != DMA_DIR_MEM_TO_MEM and buf_off + length > DMA_BUFFER_SIZE:
            reg = "DST" if direction == DMA_DIR_MEM_TO_DEV else "SRC"
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"buffer range [{buf_off:#x}, {buf_off + length:#x}) is outside the "
                f"{DMA_BUFFER_SIZE:#x}-byte buffer",
            )
            self._fail(DmaError.BUFFER_RANGE, 0)
            return
        if self.dma_port is None:
            self.report(IssueKind.PROTOCOL, detail="transfer started but the engine has no DMA port (no IOMMU)")
            self._fail(
                DmaError.READ_FAULT if direction != DMA_DIR_DEV_TO_MEM else DmaError.WRITE_FAULT,
                src if direction != DMA_DIR_DEV_TO_MEM else dst,
            )
            return
        nominal = self.transfer_ticks(length)
        ticks = self.timing.delay(nominal, self._timing_what) if nominal else 0  # (no draw for an instant one)
        if not ticks:
            self._move(direction, src, dst, length, buf_off)
            return
        cause = self.work_cause
        self._pending = self.clock.schedule_in(ticks, lambda: self._move(direction, src, dst, length, buf_off, cause))

    def _move(self, direction: int, src: int, dst: int, length: int, buf_off: int, cause: str = "") -> None:
        """The transfer's data moves (at its end in virtual time), then DONE or ERROR."""
        self._pending = None
        self.work_cause = cause or self.work_cause
        if self.fault("error"):
            self._fail(DmaError.DEVICE, 0)
            return
        port = self.dma_port
        if not (direction == DMA_DIR_MEM_TO_MEM and port.move_repeated(src, dst, length)):  # (else: views moved it)
            if direction == DMA_DIR_DEV_TO_MEM:
                data = bytes(self.buffer[buf_off : buf_off + length])
            else:
                result = port.read_repeated(src, length)
                if not result.ok:
                    self._fail(DmaError.READ_FAULT, result.fault.iova, result.fault)
                    return
                data = result.data
            if direction == DMA_DIR_MEM_TO_DEV:
                self.buffer[buf_off : buf_off + length] = data
            else:
                result = port.write_repeated(dst, data)
                if not result.ok:
                    self._fail(DmaError.WRITE_FAULT, result.fault.iova, result.fault)
                    return
        r = self.regs.values  # (direct: STATUS keeps its width, DONE_COUNT wraps at 32 bits)
        r["STATUS"] = r["STATUS"] & ~DMA_STATUS_BUSY | DMA_STATUS_DONE
        r["DONE_COUNT"] = (r["DONE_COUNT"] + 1) & 0xFFFF_FFFF
        self._update_irq()

    def _fail(self, code: int, address: int, fault=None) -> None:
        r = self.regs
        r["STATUS"] = r["STATUS"] & ~DMA_STATUS_BUSY | DMA_STATUS_ERROR
        r["ERROR_CODE"] = code
        r["ERROR_ADDR_LO"] = address & 0xFFFF_FFFF
        r["ERROR_ADDR_HI"] = address >> 32 & 0xFFFF_FFFF
        self.last_fault = fault
        self._update_irq()

    def _update_irq(self, _new: int = 0, _old: int = 0) -> None:
        """The IRQ follows CMD.IRQ and STATUS (also STATUS's write hook: its values are not needed)."""
        r = self.regs.values
        self.irq.set(bool(r["CMD"] & DMA_CMD_IRQ and r["STATUS"] & (DMA_STATUS_DONE | DMA_STATUS_ERROR)))
