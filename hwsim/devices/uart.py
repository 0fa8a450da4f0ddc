"""16550A UART: FIFOs, line and modem status, prioritised interrupt identification, divisor latch.

Transmission is instant: a byte written to THR reaches the backend at once,
so THR and the transmitter are always empty (LSR.THRE = LSR.TEMT = 1) and a
THRE interrupt follows every write when IER.ETBEI is set.  Reception has two
paths: bytes the backend has ready are pulled whenever the guest reads RBR,
LSR or IIR (or the runner calls :meth:`Uart.poll`), never more than fit, so
this path never overruns; :meth:`Uart.receive` models bytes arriving on the
wire now, and overruns as hardware does (FIFO mode: the new byte is lost;
16450 mode: it overwrites the holding register; either way LSR.OE is set).

Simplified: no line errors other than overrun (PE/FE/BI stay 0 unless
``receive_break``), the character-timeout interrupt is reported as soon as
the FIFO holds fewer bytes than the trigger level (as if four character
times had passed), and the interrupt output is not gated by MCR.OUT2
(QEMU's serial does not gate it either).
"""

from __future__ import annotations

from collections import deque

from .backends import CharBackend, make_backend
from .base import Device, Option, OptionError, register_device
from .layouts import (
    FCR_CLEAR_RX,
    FCR_ENABLE,
    FCR_TRIGGER_LEVELS,
    FCR_TRIGGER_SHIFT,
    IER_EDSSI,
    IER_ELSI,
    IER_ERBFI,
    IER_ETBEI,
    IIR_CTI,
    IIR_FIFO_ENABLED,
    IIR_MSI,
    IIR_NO_INT,
    IIR_RDA,
    IIR_RLS,
    IIR_THRE,
    LCR_DLAB,
    LSR_BI,
    LSR_DR,
    LSR_ERRORS,
    LSR_OE,
    LSR_TEMT,
    LSR_THRE,
    MCR_DTR,
    MCR_LOOP,
    MCR_OUT1,
    MCR_OUT2,
    MCR_RTS,
    MSR_CTS,
    MSR_DCD,
    MSR_DCTS,
    MSR_DDCD,
    MSR_DDSR,
    MSR_DSR,
    MSR_RI,
    MSR_TERI,
    UART_FIFO_SIZE,
    UART_LAYOUT,
)


@register_device
class Uart(Device):
    TYPE = "ns16550a"
    DESCRIPTION = "16550A UART with 16-byte FIFOs"
    LAYOUT = UART_LAYOUT
    OPTIONS = {
        "backend": Option(
            str,
            "console",
            "where bytes go: console (stdin/stdout), file, or memory",
            choices=("console", "file", "memory"),
        ),
        "output_file": Option(str, "", "file backend: the file transmitted bytes are appended to"),
        "input_file": Option(str, "", "file backend: the file received bytes are read from (optional)"),
        "clock_hz": Option(int, 3_686_400, "input clock of the baud-rate generator", minimum=1),
    }

    def __init__(self, *, name: str, chardev: CharBackend | None = None, **kw) -> None:
        """``chardev`` overrides the ``backend`` option with a backend object."""
        super().__init__(name=name, **kw)
        if chardev is None:
            opts = self.options
            chardev = make_backend(opts["backend"], output=opts["output_file"], input=opts["input_file"])
        self.backend = chardev
        self._rx: deque[int] = deque()
        self._errors = 0  # sticky LSR error bits, cleared by reading LSR
        self._thr_ipending = False
        self._msr_deltas = 0
        self._fifo_enabled = False
        self._trigger = 1
        r = self.regs
        r.on_read("RBR", self._read_rbr)
        r.on_write("THR", self._write_thr)
        r.on_write("IER", self._write_ier)
        r.on_read("IIR", self._read_iir)
        r.on_write("FCR", self._write_fcr)
        r.on_write("LCR", self._write_lcr)
        r.on_write("MCR", self._write_mcr)
        r.on_read("LSR", self._read_lsr)
        r.on_read("MSR", self._read_msr)

    @classmethod
    def check_options(cls, options) -> None:
        if options["backend"] == "file" and not options["output_file"]:
            raise OptionError("output_file", "the file backend needs an output file name")

    def _reset(self) -> None:
        self._rx.clear()
        self._errors = 0
        self._thr_ipending = False
        self._msr_deltas = 0
        self._fifo_enabled = False
        self._trigger = 1
        self._update_irq()

    # -- host side -------------------------------------------------------------------------

    @property
    def rx_capacity(self) -> int:
        return UART_FIFO_SIZE if self._fifo_enabled else 1

    @property
    def rx_count(self) -> int:
        return len(self._rx)

    @property
    def divisor(self) -> int:
        return self.regs["DLM"] << 8 | self.regs["DLL"]

    @property
    def baud_rate(self) -> int | None:
        """Input clock / (16 x divisor); None while the divisor is 0."""
        div = self.divisor
        return self.options["clock_hz"] // (16 * div) if div else None

    def receive(self, data: bytes) -> None:
        """Bytes arriving on the wire now (may overrun, as on real hardware)."""
        for byte in data:
            self._receive_byte(byte)
        self._update_irq()

    def receive_break(self) -> None:
        """A break condition on the line: a 0 byte with LSR.BI."""
        self._errors |= LSR_BI
        self._receive_byte(0)
        self._update_irq()

    def poll(self) -> None:
        """Pull what the backend has ready (as much as fits) and update the interrupt output."""
        self._pull()
        self._update_irq()

    # -- behaviour -------------------------------------------------------------------------------

    def _receive_byte(self, byte: int) -> None:
        if len(self._rx) < self.rx_capacity:
            self._rx.append(byte)
            return
        self._errors |= LSR_OE
        if not self._fifo_enabled:
            self._rx[0] = byte  # 16450 mode: the holding register is overwritten

    def _pull(self) -> None:
        room = self.rx_capacity - len(self._rx)
        if room > 0 and not self.regs["MCR"] & MCR_LOOP:
            self._rx.extend(self.backend.read(room))

    def _iir_id(self) -> int:
        ier = self.regs["IER"]
        if ier & IER_ELSI and self._errors:
            return IIR_RLS
        if ier & IER_ERBFI and self._rx:
            if self._fifo_enabled and len(self._rx) < self._trigger:
                return IIR_CTI
            return IIR_RDA
        if ier & IER_ETBEI and self._thr_ipending:
            return IIR_THRE
        if ier & IER_EDSSI and self._msr_deltas:
            return IIR_MSI
        return IIR_NO_INT

    def _update_irq(self) -> None:
        self.irq.set(self._iir_id() != IIR_NO_INT)

    def _read_rbr(self) -> int:
        self._pull()
        value = self._rx.popleft() if self._rx else 0
        self._pull()
        self._update_irq()
        return value

    def _write_thr(self, value: int, _old: int) -> None:
        if self.regs["MCR"] & MCR_LOOP:
            self._receive_byte(value)
        else:
            self.backend.write(bytes([value]))
        self._thr_ipending = True  # sent at once: THR is empty again
        self._update_irq()

    def _write_ier(self, value: int, old: int) -> None:
        if value & IER_ETBEI and not old & IER_ETBEI:
            self._thr_ipending = True  # THR is empty: enabling ETBEI raises THRE at once
        self._update_irq()

    def _read_iir(self) -> int:
        self._pull()
        ident = self._iir_id()
        if ident == IIR_THRE:
            self._thr_ipending = False  # reading IIR with THRE as the source clears it
        value = ident | (IIR_FIFO_ENABLED if self._fifo_enabled else 0)
        self._update_irq()
        return value

    def _write_fcr(self, value: int, _old: int) -> None:
        enable = bool(value & FCR_ENABLE)
        if enable != self._fifo_enabled:
            self._rx.clear()  # changing the FIFO enable clears both FIFOs
            self._fifo_enabled = enable
        if value & FCR_CLEAR_RX:
            self._rx.clear()
        # FCR_CLEAR_TX: the TX FIFO is always empty (transmission is instant).
        self._trigger = FCR_TRIGGER_LEVELS[value >> FCR_TRIGGER_SHIFT & 3]
        self.regs["FCR"] = value & ~0x06  # the clear bits are self-clearing
        self._update_irq()

    def _write_lcr(self, value: int, _old: int) -> None:
        self.regs.set_flag("dlab", bool(value & LCR_DLAB))

    def _modem_lines(self) -> int:
        mcr = self.regs["MCR"]
        if not mcr & MCR_LOOP:
            return MSR_DCD | MSR_DSR | MSR_CTS  # a terminal is attached and ready
        return (
            (MSR_CTS if mcr & MCR_RTS else 0)
            | (MSR_DSR if mcr & MCR_DTR else 0)
            | (MSR_RI if mcr & MCR_OUT1 else 0)
            | (MSR_DCD if mcr & MCR_OUT2 else 0)
        )

    def _write_mcr(self, value: int, old: int) -> None:
        before = self._lines_for(old)
        after = self._lines_for(value)
        changed = before ^ after
        if changed & MSR_CTS:
            self._msr_deltas |= MSR_DCTS
        if changed & MSR_DSR:
            self._msr_deltas |= MSR_DDSR
        if before & MSR_RI and not after & MSR_RI:
            self._msr_deltas |= MSR_TERI
        if changed & MSR_DCD:
            self._msr_deltas |= MSR_DDCD
        self._update_irq()

    def _lines_for(self, mcr: int) -> int:
        saved = self.regs["MCR"]
        self.regs["MCR"] = mcr
        try:
            return self._modem_lines()
        finally:
            self.regs["MCR"] = saved

    def _read_lsr(self) -> int:
        self._pull()
        value = LSR_THRE | LSR_TEMT | self._errors | (LSR_DR if self._rx else 0)
        self._errors &= ~LSR_ERRORS  # OE, PE, FE, BI clear on read
        self._update_irq()
        return value

    def _read_msr(self) -> int:
        value = self._modem_lines() | self._msr_deltas
        self._msr_deltas = 0
        self._update_irq()
        return value
