"""hwsim.devices.uart: 16550A registers, FIFOs, LSR/IIR semantics, DLAB, loopback, backends, guest misuse."""

from __future__ import annotations

import io
import os

import pytest
from board_helpers import BoardGuest, virt

from hwsim.devices import ConsoleBackend, FileBackend, IssueKind, MemoryBackend, OptionError, Uart
from hwsim.devices.backends import make_backend
from hwsim.errors import ConfigError
from hwsim.riscv import asm as A

RBR = THR = DLL = 0
IER = DLM = 1
IIR = FCR = 2
LCR, MCR, LSR, MSR, SCR = 3, 4, 5, 6, 7


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


def test_transmit_goes_to_the_backend_at_once(uart):
    for ch in b"ok\n":
        wr(uart, THR, ch)
    assert uart.backend.output == b"ok\n"
    assert rd(uart, LSR) == 0x60  # THRE and TEMT stay set: transmission is instant


def test_receive_pulls_from_the_backend_without_fifo(uart):
    uart.backend.feed(b"xy")
    assert rd(uart, LSR) == 0x61  # DR
    assert uart.rx_count == 1  # 16450 mode holds one byte; the rest waits in the backend
    assert rd(uart, RBR) == ord("x")
    assert rd(uart, RBR) == ord("y")
    assert rd(uart, LSR) == 0x60
    assert rd(uart, RBR) == 0  # empty: reads 0, not an issue
    assert uart.issues == []


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


def test_trigger_level_and_character_timeout(uart):
    wr(uart, FCR, 0xC1)  # trigger at 14 bytes
    wr(uart, IER, 0x01)
    uart.receive(b"abc")
    assert rd(uart, IIR) == 0xCC  # below the trigger: character timeout
    assert uart.irq.level
    uart.receive(bytes(11))
    assert rd(uart, IIR) == 0xC4  # 14 bytes: received data available
    for _ in range(14):
        rd(uart, RBR)
    assert rd(uart, IIR) == 0xC1 and not uart.irq.level
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
    wr(u, THR, ord("A"))
    assert out.read_bytes() == b"A"  # flushed at once
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
    """End to end: U-mode code on the virt board stores bytes to THR at a virtual address."""
    s = virt()
    g = BoardGuest(s, {"uart0": 0x4_0000})

    def program(a):
        a.li("a1", 0x4_0000)
        for ch in b"hello, hwsim\n":
            a.li("a2", ch).emit(A.sb("a2", "a1", THR))
        a.emit(A.lbu("a0", "a1", LSR))

    r = g.run(program)
    assert r.ok
    assert s.device("uart0").backend.output == b"hello, hwsim\n"
    assert g.m.get_reg("a0") == 0x60
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
