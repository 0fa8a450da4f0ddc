"""16550A UART on virtual time: FIFOs, line and modem status, prioritised interrupt identification, divisor latch.

::

    THR --> TX FIFO (16 bytes; 1 without FCR.ENABLE) --> shift register --(one character time)--> backend
    backend --(one character time per byte)--> shift register --> RX FIFO (16; 1) --> RBR
                                                  | full: LSR.OE, the byte is lost
    character time = (start + 5..8 data + parity + 1, 1.5 or 2 stop bits) / baud,  baud = clock_hz / (16 x divisor)

Transmission: a byte written to THR waits in the TX FIFO until the shift register is free, then takes
one character time on the line, and reaches the backend at its end.  LSR.THRE is set while the TX
FIFO (the holding register without FIFOs) is empty, LSR.TEMT while the shift register is idle too;
the THRE interrupt (IER.ETBEI) is raised when the FIFO empties, or when ETBEI is enabled with it
empty, and cleared by reading IIR (THRE being the source) or writing THR.  A byte written to a full
TX FIFO is lost (without FIFOs it overwrites the holding register) and reported as misuse.

Reception: while the backend has bytes, they arrive one per character time, the first a character
time after the UART noticed them (at any register access, or when the runner polls it); a byte that
finds the RX FIFO full is lost and sets LSR.OE (without FIFOs it overwrites the holding register);
the loss is also reported (``IssueKind.LOST_DATA``, once until RBR is read again, with how long ago
the driver last read it), because input a driver failed to take in time is a driver bug.
``receive(data)`` puts bytes on the wire at once (for tests: a burst faster than the line).  Errors
travel with their character: LSR.PE/FE/BI show those of the character at the top of the FIFO (until
LSR is read), LSR.RXFE any error in the FIFO.  The received-data interrupt (IER.ERBFI) is raised
when the FIFO holds the trigger level (FCR: 1, 4, 8, 14 bytes; one byte without FIFOs); the
character-timeout interrupt when it holds fewer bytes and nothing was received or read for four
character times (cleared by reading RBR).  Line status (IER.ELSI): OE, PE, FE, BI.

While the divisor latch is 0 (never programmed) the line runs at the ``default_baud`` option, as if
firmware had set it.  The baud clock is exact: seeds do not vary character times.

Faults (``FAULTS``): ``framing`` and ``parity`` mark a received character with LSR.FE or LSR.PE (as
the chip reports a corrupted character; ``parity`` only while LCR.PEN enables parity).

Simplified: the interrupt output is not gated by MCR.OUT2 (QEMU's serial does not gate it either);
no DMA mode signals; the THRE interrupt is not delayed after the FIFO held two bytes.
"""

from __future__ import annotations

from collections import deque

from .backends import CharBackend, make_backend
from .base import Device, Option, OptionError, register_device
from .clock import ClockEvent
from .issues import IssueKind
from .layouts import (
    FCR_CLEAR_RX,
    FCR_CLEAR_TX,
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
    LCR_PEN,
    LCR_STB,
    LCR_WLS_MASK,
    LSR_BI,
    LSR_DR,
    LSR_FE,
    LSR_OE,
    LSR_PE,
    LSR_RXFE,
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

CHAR_ERRORS = LSR_PE | LSR_FE | LSR_BI  # the errors that travel with a received character
TIMEOUT_CHARS = 4  # character times without reception or read before the character-timeout interrupt


@register_device
class Uart(Device):
    TYPE = "ns16550a"
    DESCRIPTION = "16550A UART with 16-byte FIFOs, on virtual time at the programmed baud rate"
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
        "default_baud": Option(
            int, 115_200, "line rate while the divisor latch is 0 (not programmed)", minimum=1, maximum=1 << 24
        ),
    }
    FAULTS = {
        "framing": "a received character has a framing error (LSR.FE; no valid stop bit)",
        "parity": "a received character has a parity error (LSR.PE), while LCR.PEN enables parity",
    }

    def __init__(self, *, name: str, chardev: CharBackend | None = None, **kw) -> None:
        """``chardev`` overrides the ``backend`` option with a backend object."""
        super().__init__(name=name, **kw)
        if chardev is None:
            opts = self.options
            chardev = make_backend(opts["backend"], output=opts["output_file"], input=opts["input_file"])
        self.backend = chardev
        self._rx: deque[tuple[int, int]] = deque()  # (byte, its PE/FE/BI)
        self._tx: deque[int] = deque()
        self._tx_event: ClockEvent | None = None  # the end of the character in the shift register
        self._rx_event: ClockEvent | None = None  # the end of the character being received
        self._timeout_event: ClockEvent | None = None
        self._timeout = False  # the character-timeout condition
        self._overrun = False  # LSR.OE, until LSR is read
        self._loss_reported = False  # a LOST_DATA issue since RBR was last read
        self._last_rbr_read: int | None = None  # tick of the driver's last RBR read
        self.rx_lost = 0  # received bytes lost to overruns
        self._top_shown = False  # the top character's errors were shown by an LSR read
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
        for event in (self._tx_event, self._rx_event, self._timeout_event):
            if event is not None:
                event.cancel()
        self._tx_event = self._rx_event = self._timeout_event = None
        self._rx.clear()
        self._tx.clear()
        self._timeout = self._overrun = self._top_shown = self._loss_reported = False
        self._thr_ipending = False
        self._msr_deltas = 0
        self._fifo_enabled = False
        self._trigger = 1
        self._update_irq()

    # -- MMIO: any access lets the UART notice bytes the backend has for it ------------------------

    def mmio_read(self, offset: int, size: int) -> int:
        self._listen()
        return Device.mmio_read(self, offset, size)  # (not super(): this is every register access)

    def mmio_write(self, offset: int, size: int, value: int) -> None:
        self._listen()
        Device.mmio_write(self, offset, size, value)

    # -- host side -------------------------------------------------------------------------

    @property
    def rx_capacity(self) -> int:
        return UART_FIFO_SIZE if self._fifo_enabled else 1

    @property
    def tx_capacity(self) -> int:
        return UART_FIFO_SIZE if self._fifo_enabled else 1

    @property
    def rx_count(self) -> int:
        return len(self._rx)

    @property
    def tx_count(self) -> int:
        """Bytes waiting in the TX FIFO (not counting the one in the shift register)."""
        return len(self._tx)

    @property
    def busy(self) -> bool:
        """Bytes are still being transmitted (in the TX FIFO or the shift register)."""
        return self._tx_event is not None or bool(self._tx)

    @property
    def divisor(self) -> int:
        return self.regs["DLM"] << 8 | self.regs["DLL"]

    @property
    def baud_rate(self) -> int | None:
        """Input clock / (16 x divisor); None while the divisor is 0."""
        div = self.divisor
        return self.options["clock_hz"] // (16 * div) if div else None

    @property
    def line_baud(self) -> int:
        """The rate the line runs at: the programmed one, or ``default_baud`` while the divisor is 0."""
        div = self.divisor
        return self.options["clock_hz"] // (16 * div) or 1 if div else self.options["default_baud"]

    def char_ticks(self) -> int:
        """Virtual ticks of one character on the line, as LCR frames it (rounded up)."""
        lcr = self.regs["LCR"]
        bits = 5 + (lcr & LCR_WLS_MASK)
        half_bits = 2 * (1 + bits + (1 if lcr & LCR_PEN else 0))  # start, data, parity
        half_bits += (3 if bits == 5 else 4) if lcr & LCR_STB else 2
        hz = self.clock.frequency_hz
        return max(1, -(-half_bits * hz // (2 * self.line_baud)))

    def receive(self, data: bytes) -> None:
        """Bytes arriving on the wire at once, faster than the line could carry them (a test's burst;
        may overrun, as on real hardware)."""
        for byte in data:
            self._arrive(byte)
        self._update_irq()

    def receive_break(self) -> None:
        """A break condition on the line: a 0 character with LSR.BI."""
        self._arrive(0, LSR_BI)
        self._update_irq()

    def poll(self) -> None:
        """Notice bytes the backend has ready (their reception begins) and update the interrupt output."""
        self._listen()
        self._update_irq()

    # -- reception -------------------------------------------------------------------------

    def _listen(self) -> None:
        """Begin receiving the backend's next byte, if there is one and the receiver is idle."""
        if self._rx_event is not None or self.regs["MCR"] & MCR_LOOP:
            return
        data = self.backend.read(1)
        if data:
            byte = data[0]
            self._rx_event = self.clock.schedule_in(self.char_ticks(), lambda: self._received(byte))

    def _received(self, byte: int) -> None:
        """The end of a character from the backend: into the FIFO, then the next one, back to back."""
        self._rx_event = None
        errors = LSR_FE if self.fault("framing") else 0
        if self.regs["LCR"] & LCR_PEN and self.fault("parity"):
            errors |= LSR_PE
        self._arrive(byte, errors)
        self._listen()
        self._update_irq()

    def _arrive(self, byte: int, errors: int = 0) -> None:
        if len(self._rx) < self.rx_capacity:
            self._rx.append((byte, errors))
            if len(self._rx) == 1:
                self._top_shown = False
        else:
            self._overrun = True
            self._lost()
            if not self._fifo_enabled:
                self._rx[0] = (byte, errors)  # 16450 mode: the holding register is overwritten
                self._top_shown = False
        if not self._timeout:
            self._restart_timeout()

    def _lost(self) -> None:
        """A received byte was lost: count it, and report it once until the driver reads RBR again."""
        self.rx_lost += 1
        if self._loss_reported:
            return
        self._loss_reported = True
        where = f"the {self.rx_capacity}-byte receive FIFO" if self._fifo_enabled else "the receive holding register"
        if self._last_rbr_read is None:
            last = "the driver has not read RBR yet"
        else:
            chars = (self.clock.now - self._last_rbr_read) / self.char_ticks()
            last = f"the driver last read RBR {chars:.1f} character times earlier (t={self._last_rbr_read})"
        self.report(
            IssueKind.LOST_DATA,
            register="RBR",
            detail=f"receive overrun: a byte arrived with {where} full and was lost (LSR.OE); {last}",
        )

    def _restart_timeout(self) -> None:
        if self._timeout_event is not None:
            self._timeout_event.cancel()
            self._timeout_event = None
        if self._fifo_enabled and self._rx:
            self._timeout_event = self.clock.schedule_in(TIMEOUT_CHARS * self.char_ticks(), self._timed_out)

    def _timed_out(self) -> None:
        self._timeout_event = None
        if self._rx:
            self._timeout = True
            self._update_irq()

    # -- transmission ---------------------------------------------------------------------------

    def _shift_out(self) -> None:
        """Move the next byte from the TX FIFO into the shift register, if it is idle."""
        if self._tx_event is not None or not self._tx:
            return
        byte = self._tx.popleft()
        if not self._tx:
            self._thr_ipending = True  # the FIFO (holding register) just emptied: THRE
        self._tx_event = self.clock.schedule_in(self.char_ticks(), lambda: self._sent(byte))

    def _sent(self, byte: int) -> None:
        """The end of a transmitted character: on the line (or, in loopback, into the receiver)."""
        self._tx_event = None
        if self.regs["MCR"] & MCR_LOOP:
            self._arrive(byte)
        else:
            self.backend.write(bytes([byte]))
        self._shift_out()
        self._update_irq()

    # -- registers -------------------------------------------------------------------------------

    def _line_errors(self) -> int:
        """LSR's error bits now: OE, the top character's PE/FE/BI (until shown), RXFE."""
        errors = LSR_OE if self._overrun else 0
        if self._rx and not self._top_shown:
            errors |= self._rx[0][1]
        if self._fifo_enabled and any(e for i, (_, e) in enumerate(self._rx) if i or not self._top_shown):
            errors |= LSR_RXFE
        return errors

    def _iir_id(self) -> int:
        ier = self.regs["IER"]
        if ier & IER_ELSI and self._line_errors() & (LSR_OE | CHAR_ERRORS):
            return IIR_RLS
        if ier & IER_ERBFI and self._rx:
            if not self._fifo_enabled or len(self._rx) >= self._trigger:
                return IIR_RDA
            if self._timeout:
                return IIR_CTI
        if ier & IER_ETBEI and self._thr_ipending:
            return IIR_THRE
        if ier & IER_EDSSI and self._msr_deltas:
            return IIR_MSI
        return IIR_NO_INT

    def _update_irq(self) -> None:
        self.irq.set(self._iir_id() != IIR_NO_INT)

    def _read_rbr(self) -> int:
        value = 0
        self._last_rbr_read = self.clock.now
        self._loss_reported = False
        if self._rx:
            value = self._rx.popleft()[0]
            self._top_shown = False
        self._timeout = False
        self._restart_timeout()
        self._update_irq()
        return value

    def _write_thr(self, value: int, _old: int) -> None:
        self._thr_ipending = False  # writing THR clears a THRE interrupt
        if len(self._tx) >= self.tx_capacity:
            if self._fifo_enabled:
                self.report(
                    IssueKind.BAD_VALUE,
                    register="THR",
                    detail=f"write of {value:#x} while the {UART_FIFO_SIZE}-byte transmit FIFO is full: the byte is "
                    f"lost (wait for LSR.THRE)",
                )
            else:
                lost = self._tx.pop()
                self._tx.append(value)
                self.report(
                    IssueKind.BAD_VALUE,
                    register="THR",
                    detail=f"write of {value:#x} before the holding register was sent (LSR.THRE clear): it "
                    f"overwrites {lost:#x}, which is lost",
                )
        else:
            self._tx.append(value)
        self._shift_out()
        self._update_irq()

    def _write_ier(self, value: int, old: int) -> None:
        if value & IER_ETBEI and not old & IER_ETBEI and not self._tx:
            self._thr_ipending = True  # THR is empty: enabling ETBEI raises THRE at once
        self._update_irq()

    def _read_iir(self) -> int:
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
            self._tx.clear()
            self._fifo_enabled = enable
        if value & FCR_CLEAR_RX:
            self._rx.clear()
        if value & FCR_CLEAR_TX:
            self._tx.clear()  # the shift register finishes its character
        if not self._rx:
            self._timeout = False
            self._restart_timeout()
        self._trigger = FCR_TRIGGER_LEVELS[value >> FCR_TRIGGER_SHIFT & 3]
        self.regs["FCR"] = value & ~(FCR_CLEAR_RX | FCR_CLEAR_TX)  # the clear bits are self-clearing
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
        if not value & MCR_LOOP:
            self._listen()
        self._update_irq()

    def _lines_for(self, mcr: int) -> int:
        saved = self.regs["MCR"]
        self.regs["MCR"] = mcr
        try:
            return self._modem_lines()
        finally:
            self.regs["MCR"] = saved

    def _read_lsr(self) -> int:
        value = self._line_errors() | (LSR_DR if self._rx else 0)
        if not self._tx:
            value |= LSR_THRE
            if self._tx_event is None:
                value |= LSR_TEMT
        self._overrun = False  # OE clears on read; the top character's errors have been shown
        if self._rx:
            self._top_shown = True
        self._update_irq()
        return value

    def _read_msr(self) -> int:
        value = self._modem_lines() | self._msr_deltas
        self._msr_deltas = 0
        self._update_irq()
        return value
