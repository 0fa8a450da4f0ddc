"""hwsim.devices.uart: 16550A registers, FIFOs on virtual time at the baud rate, LSR/IIR semantics, character
timeout, DLAB, loopback, line-error faults, backends, guest misuse."""

from __future__ import annotations

import io
import os

import pytest
from board_helpers import BoardGuest, virt

from hwsim.devices import ConsoleBackend, FileBackend, IssueKind, MemoryBackend, OptionError, Uart
from hwsim.devices.backends import make_backend
from hwsim.devices.faults import FaultPlan, FaultSpec
from hwsim.errors import ConfigError
from hwsim.riscv import asm as A

RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7
CHAR = 869  # ticks of one 8N1 character at 115200 baud (86.9 us at 10 MHz), the default line rate
CHAR_5N1 = 608  # LCR's reset value frames 5-bit characters: 7 bits


@pytest.fixture
def uart8n1(uart):
    wr(uart, LCR, 0x03)
    return uart


@pytest.fixture
def uart():
    return Uart(name="uart0", chardev=MemoryBackend())


def rd(u, off):
    return u.mmio_read(off, 1)


def wr(u, off, value):
    u.mmio_write(off, 1, value)


def test_reset_values(uart):
    assert [rd(uart, off) for off in (IER, IIR, LCR, MCR, LSR, MSR, SCR)] == [0, 0x01, 0, 0, 0x60, 0xB0, 0]
    assert uart.irq.level is False and uart.issues == []


def test_transmit_takes_a_character_time_per_byte_through_the_fifo(uart):
    assert uart.char_ticks() == CHAR_5N1 and uart.line_baud == 115_200 and uart.baud_rate is None
    wr(uart, LCR, 0x03)
    wr(uart, FCR, 0x01)
    for ch in b"ok\n":
        wr(uart, THR, ch)
    assert uart.backend.output == b"" and uart.busy
    assert rd(uart, LSR) == 0x00  # 'o' in the shift register, "k\n" in the FIFO: neither THRE nor TEMT
    uart.clock.advance(CHAR - 1)
    assert uart.backend.output == b""
    uart.clock.advance(1)
    assert uart.backend.output == b"o" and uart.tx_count == 1
    uart.clock.advance(CHAR)
    assert rd(uart, LSR) == 0x20  # the FIFO is empty ('\n' is being sent): THRE without TEMT
    uart.clock.advance(CHAR)
    assert uart.backend.output == b"ok\n" and rd(uart, LSR) == 0x60 and not uart.busy


def test_a_byte_written_to_a_full_transmit_fifo_is_lost_and_reported(uart8n1):
    uart = uart8n1
    wr(uart, FCR, 0x01)
    for ch in range(18):  # one goes to the shift register at once, 16 fill the FIFO, the 18th is lost
        wr(uart, THR, 0x40 + ch)
    uart.clock.advance(18 * CHAR)
    assert uart.backend.output == bytes(range(0x40, 0x40 + 17))
    assert [i.message for i in uart.issues] == [
        "THR: write of 0x51 while the 16-byte transmit FIFO is full: the byte is lost (wait for LSR.THRE)"
    ]
    wr(uart, FCR, 0x00)  # 16450 mode: a one-byte holding register
    for ch in b"abc":
        wr(uart, THR, ch)
    uart.clock.advance(3 * CHAR)
    assert uart.backend.output[17:] == b"ac"
    assert uart.issues[-1].message == (
        "THR: write of 0x63 before the holding register was sent (LSR.THRE clear): it overwrites 0x62, which is lost"
    )


def test_receive_from_the_backend_at_the_line_rate_without_fifo(uart8n1):
    uart = uart8n1
    uart.backend.feed(b"xy")
    assert rd(uart, LSR) == 0x60  # noticed now: 'x' is on the line for a character time
    uart.clock.advance(CHAR)
    assert rd(uart, LSR) == 0x61 and uart.rx_count == 1  # DR
    assert rd(uart, RBR) == ord("x")
    uart.clock.advance(CHAR)  # 'y' followed back to back
    assert rd(uart, RBR) == ord("y")
    assert rd(uart, LSR) == 0x60
    assert rd(uart, RBR) == 0  # empty: reads 0, not an issue
    assert uart.issues == []


def test_a_slow_reader_overruns_the_fifo_and_loses_bytes(uart8n1):
    uart = uart8n1
    wr(uart, FCR, 0x01)
    uart.backend.feed(bytes(range(20)))
    uart.poll()
    uart.clock.advance(20 * CHAR)  # nobody reads: the 17th byte finds the FIFO full
    assert uart.rx_count == 16 and uart.backend.pending_input == 0
    assert rd(uart, LSR) == 0x63  # DR | OE | THRE | TEMT
    assert rd(uart, LSR) == 0x61 | 0x00  # OE clears on read
    assert [rd(uart, RBR) for _ in range(16)] == list(range(16))  # bytes 16..19 were lost
    assert uart.rx_lost == 4
    (issue,) = uart.issues  # one report for the four: the driver had not read RBR in between
    assert issue.kind is IssueKind.LOST_DATA and issue.register == "RBR"
    assert "receive overrun: a byte arrived with the 16-byte receive FIFO full and was lost (LSR.OE)" in issue.message
    assert "the driver has not read RBR yet" in issue.message


def test_each_overrun_after_a_read_is_reported_with_the_time_since_the_last_read(uart8n1):
    uart = uart8n1
    wr(uart, FCR, 0x01)
    uart.receive(bytes(16))
    rd(uart, RBR)
    uart.clock.advance(3 * CHAR)
    uart.receive(b"ab")  # one fits, one is lost
    assert uart.rx_lost == 1 and len(uart.issues) == 1
    assert "last read RBR 3.0 character times earlier" in uart.issues[0].message
    uart.receive(b"c")  # no read since: the same episode
    assert uart.rx_lost == 2 and len(uart.issues) == 1


def test_overrun_without_fifo_overwrites_the_holding_register(uart):
    uart.receive(b"ab")
    assert rd(uart, LSR) == 0x63  # DR | OE
    assert rd(uart, LSR) == 0x61  # OE clears on read
    assert rd(uart, RBR) == ord("b")


def test_fifo_holds_16_and_loses_the_17th(uart):
    wr(uart, FCR, 0x01)
    assert rd(uart, IIR) == 0xC1
    uart.receive(bytes(range(17)))
    assert uart.rx_count == 16
    assert rd(uart, LSR) == 0x63
    assert [rd(uart, RBR) for _ in range(16)] == list(range(16))
    assert rd(uart, LSR) == 0x60


def test_fcr_clear_rx_and_enable_change_clear_the_fifo(uart):
    wr(uart, FCR, 0x01)
    uart.receive(b"abc")
    wr(uart, FCR, 0x03)  # enable + clear RX
    assert uart.rx_count == 0 and rd(uart, LSR) == 0x60
    uart.receive(b"abc")
    wr(uart, FCR, 0x00)  # disabling the FIFOs clears them too
    assert uart.rx_count == 0 and rd(uart, IIR) == 0x01


def test_trigger_level_and_character_timeout(uart8n1):
    uart = uart8n1
    wr(uart, FCR, 0xC1)  # trigger at 14 bytes
    wr(uart, IER, 0x01)
    uart.receive(b"abc")
    assert rd(uart, IIR) == 0xC1 and not uart.irq.level  # below the trigger, and not quiet for long yet
    uart.clock.advance(4 * CHAR - 1)
    assert not uart.irq.level
    uart.clock.advance(1)  # four character times without reception or read: character timeout
    assert uart.irq.level and rd(uart, IIR) == 0xCC
    assert rd(uart, RBR) == ord("a") and rd(uart, IIR) == 0xC1  # a read clears it and restarts the timer
    uart.clock.advance(4 * CHAR)
    assert rd(uart, IIR) == 0xCC
    uart.receive(bytes(12))
    assert rd(uart, IIR) == 0xC4  # 14 bytes: received data available
    for _ in range(14):
        rd(uart, RBR)
    assert rd(uart, IIR) == 0xC1 and not uart.irq.level
    uart.clock.advance(10 * CHAR)
    assert not uart.irq.level  # an empty FIFO never times out
    wr(uart, FCR, 0x41)
    uart.receive(b"abcd")
    assert rd(uart, IIR) == 0xC4  # trigger 4


def test_iir_priorities_and_clearing(uart):
    wr(uart, IER, 0x07)  # line status, RX data, THR empty
    uart.receive(b"ab")  # 16450 mode: overrun
    assert rd(uart, IIR) == 0x06  # line status first
    assert rd(uart, LSR) == 0x63
    assert rd(uart, IIR) == 0x04  # then data available
    rd(uart, RBR)
    assert rd(uart, IIR) == 0x02  # then THR empty (ETBEI was enabled with THR empty)
    assert rd(uart, IIR) == 0x01  # reading IIR cleared THRE
    assert not uart.irq.level
    wr(uart, THR, ord("z"))
    assert uart.irq.level and rd(uart, IIR) == 0x02


def test_enabling_etbei_raises_thre_at_once(uart):
    seen = []
    uart.irq._sink = lambda n, level: seen.append(level)
    wr(uart, IER, 0x02)
    assert seen == [True]
    rd(uart, IIR)
    assert seen == [True, False]
    wr(uart, IER, 0x00)
    wr(uart, IER, 0x02)
    assert seen == [True, False, True]


def test_divisor_latch(uart):
    wr(uart, LCR, 0x83)
    wr(uart, DLL, 0x0C)
    wr(uart, DLM, 0x00)
    assert (rd(uart, DLL), rd(uart, DLM)) == (0x0C, 0)
    wr(uart, LCR, 0x03)
    assert uart.divisor == 12 and uart.baud_rate == 19200
    assert uart.backend.output == b""  # DLL writes are not transmitted
    assert rd(uart, IER) == 0  # offset 1 is IER again
    assert Uart(name="u", chardev=MemoryBackend()).baud_rate is None


def test_loopback_and_modem_status(uart):
    wr(uart, IER, 0x08)
    wr(uart, MCR, 0x10)  # loopback, all modem outputs off
    assert rd(uart, MSR) == 0x00 | 0x0B  # CTS, DSR, DCD dropped: their delta bits
    assert rd(uart, MSR) == 0x00
    wr(uart, MCR, 0x1F)
    assert uart.irq.level and rd(uart, IIR) == 0x00  # modem status interrupt
    assert rd(uart, MSR) == 0xF0 | 0x0B
    wr(uart, MCR, 0x1B)  # OUT1 (RI) falls: trailing edge
    assert rd(uart, MSR) == 0xB0 | 0x04
    wr(uart, THR, ord("L"))
    uart.clock.advance(CHAR_5N1)  # a character time through the loop too
    assert uart.backend.output == b"" and rd(uart, RBR) == ord("L")


def test_break(uart):
    wr(uart, IER, 0x04)
    uart.receive_break()
    assert rd(uart, IIR) == 0x06
    assert rd(uart, LSR) == 0x71  # BI | DR | THRE | TEMT
    assert rd(uart, RBR) == 0


def test_scratch_and_reset(uart):
    wr(uart, SCR, 0x5A)
    wr(uart, FCR, 0x01)
    uart.receive(b"q")
    assert rd(uart, SCR) == 0x5A
    uart.reset()
    assert rd(uart, SCR) == 0 and uart.rx_count == 0 and rd(uart, IIR) == 0x01


def test_guest_misuse_is_recorded_with_register_names(uart):
    wr(uart, LSR, 0x05)
    uart.mmio_write(THR, 4, 0x41)
    uart.mmio_read(LSR, 2)
    rd(uart, 0x10)
    wr(uart, IER, 0xF1)
    wr(uart, MCR, 0x20)
    wr(uart, FCR, 0x31)
    assert [i.message for i in uart.issues] == [
        "write of 0x5 to read-only register LSR",
        "4-byte write at offset 0x0: THR is 1 byte(s) wide at offset 0x0",
        "2-byte read at offset 0x5: LSR is 1 byte(s) wide at offset 0x5",
        "read of 1 byte(s) at offset 0x10: no register there",
        "write of 0xf1 to IER sets reserved bits 0xf0 (ignored)",
        "write of 0x20 to MCR sets reserved bits 0x20 (ignored)",
        "write of 0x31 to FCR sets reserved bits 0x30 (ignored)",
    ]
    assert uart.backend.output == b""  # the 4-byte write reached no register
    assert rd(uart, IER) == 0x01


def test_file_backend(tmp_path):
    out = tmp_path / "out.txt"
    inp = tmp_path / "in.txt"
    inp.write_bytes(b"hi")
    u = Uart(name="u", backend="file", output_file=str(out), input_file=str(inp))
    wr(u, THR, ord("A"))  # 'h' is noticed at this access, and received a character time later
    u.clock.advance(CHAR_5N1)
    assert out.read_bytes() == b"A"  # flushed as soon as it is sent
    assert rd(u, RBR) == ord("h")
    u.backend.close()
    with pytest.raises(OptionError, match="option 'output_file': the file backend needs an output file name"):
        Uart(name="u", backend="file")
    with pytest.raises(ConfigError, match="serial file backend: No such file or directory"):
        FileBackend(tmp_path / "out2", tmp_path / "missing")


def test_console_backend_reads_without_blocking():
    r, w = os.pipe()
    try:
        stdin = os.fdopen(r, "rb", buffering=0)
        out = io.StringIO()
        backend = ConsoleBackend(stdin=stdin, stdout=out)
        assert backend.read(4) == b""  # nothing ready: no blocking
        os.write(w, b"key")
        assert backend.read(2) == b"ke"
        backend.write(b"ok")
        assert out.getvalue() == "ok"
        assert ConsoleBackend(stdin=io.StringIO()).read(1) == b""  # no file descriptor
    finally:
        os.close(w)
        stdin.close()


def test_make_backend_errors():
    assert isinstance(make_backend("memory"), MemoryBackend)
    with pytest.raises(ConfigError, match="unknown serial backend 'tty' \\(known: console, file, memory\\)"):
        make_backend("tty")
    with pytest.raises(ConfigError, match="serial file backend needs an output file name"):
        make_backend("file")


def test_uart_interrupt_reaches_the_plic():
    s = virt()
    u, plic = s.device("uart0"), s.irqc
    plic.mmio_write(4 * 10, 4, 1)  # priority of source 10
    plic.mmio_write(0x2080, 4, 1 << 10)  # context 1 enables it
    wr(u, IER, 0x01)
    u.receive(b"!")
    assert plic.is_pending(10) and plic.output(1)
    assert plic.mmio_read(0x20_1004, 4) == 10  # claim
    rd(u, RBR)
    plic.mmio_write(0x20_1004, 4, 10)  # complete
    assert not plic.is_pending(10) and not plic.output(1)


def test_guest_code_writes_the_uart_through_page_tables():
    """End to end: U-mode code on the virt board fills the TX FIFO at a virtual address, then polls LSR
    until the transmitter is empty (each poll a device access, so virtual time passes)."""
    s = virt()
    g = BoardGuest(s, {"uart0": 0x4_0000})

    def program(a):
        a.li("a1", 0x4_0000).li("a2", 0x01).emit(A.sb("a2", "a1", FCR))
        a.li("a2", 0x03).emit(A.sb("a2", "a1", LCR))  # 8N1
        for ch in b"hello, hwsim\n":
            a.li("a2", ch).emit(A.sb("a2", "a1", THR))
        a.label("poll").emit(A.lbu("a0", "a1", LSR), A.andi("a3", "a0", 0x40))
        a.branch("beq", "a3", "zero", "poll")

    r = g.run(program)
    assert r.ok
    assert s.device("uart0").backend.output == b"hello, hwsim\n"
    assert g.m.get_reg("a0") == 0x60
    assert 13 * CHAR <= s.clock.now <= 13 * CHAR + 20
    assert s.issues() == []


def test_guest_word_access_to_the_uart_is_reported():
    s = virt()
    g = BoardGuest(s, {"uart0": 0x4_0000})
    assert g.run(lambda a: a.li("a1", 0x4_0000).emit(A.sd("zero", "a1", 0))).ok
    assert [i.format() for i in s.issues()] == [  # an 8-byte store arrives as two 4-byte writes
        "[t=0] uart0: 4-byte write at offset 0x0: THR is 1 byte(s) wide at offset 0x0",
        "[t=1] uart0: 4-byte write at offset 0x4: MCR is 1 byte(s) wide at offset 0x4",  # a tick per access
    ]
    assert [i.kind for i in s.issues()] == [IssueKind.BAD_WIDTH] * 2


def test_baud_rate_and_framing_set_the_character_time(uart):
    wr(uart, LCR, 0x80)
    wr(uart, DLL, 24)  # 3686400 / (16 x 24) = 9600 baud
    wr(uart, LCR, 0x03)  # 8N1: 10 bits
    assert uart.line_baud == 9600 and uart.char_ticks() == 10417  # 1.0417 ms
    wr(uart, LCR, 0x1F)  # 8 bits, even parity, 2 stop bits: 12 bits
    assert uart.char_ticks() == 12500
    wr(uart, LCR, 0x04)  # 5 bits and "2" stop bits: 1.5 stop bits, 7.5 bits
    assert uart.char_ticks() == 7813
    other = Uart(name="u", chardev=MemoryBackend(), default_baud=9600)
    wr(other, LCR, 0x03)
    assert other.baud_rate is None and other.char_ticks() == 10417


def faulty_uart(*specs: str) -> Uart:
    plan = FaultPlan(tuple(FaultSpec.parse(text) for text in specs))
    return Uart(name="uart0", chardev=MemoryBackend(), faults=plan)


def test_framing_and_parity_faults_travel_with_their_character():
    u = faulty_uart("uart0.framing@2", "uart0.parity@1")
    wr(u, LCR, 0x03)
    wr(u, FCR, 0x01)
    wr(u, IER, 0x05)  # received data and line status
    u.backend.feed(b"abc")
    u.poll()
    u.clock.advance(3 * CHAR)
    assert rd(u, LSR) == 0xE1  # 'a' is fine, 'b' behind it is not (RXFE); no parity point without LCR.PEN
    assert rd(u, RBR) == ord("a")
    assert rd(u, IIR) == 0xC6 and rd(u, LSR) == 0x69 | 0x80  # 'b' at the top: FE (and RXFE), line status
    assert rd(u, LSR) == 0x61 and rd(u, IIR) == 0xC4  # shown once; then the received data
    assert [rd(u, RBR) for _ in range(2)] == [ord("b"), ord("c")]
    wr(u, LCR, 0x1B)  # even parity: now each character reaches the parity point
    u.backend.feed(b"d")
    u.poll()
    u.clock.advance(u.char_ticks())
    assert rd(u, LSR) & 0x04 and rd(u, RBR) == ord("d")  # PE with 'd'
    assert [(f.kind, f.occurrence) for f in u.faults.fired] == [("framing", 2), ("parity", 1)]
    assert u.issues == []
