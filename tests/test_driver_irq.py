"""hwsim.driver.irq: interrupt handlers of sandboxed and native drivers, delivered asynchronously."""

from __future__ import annotations

from pathlib import Path

import pytest

from hwsim.compiler.traps import TrapCode
from hwsim.driver import DriverRun, build_driver
from hwsim.driver.firmware import FirmwareRun
from hwsim.runtime.api import _wat_to_wasm
from hwsim.testing import make_board

DRIVERS = Path(__file__).resolve().parents[1] / "drivers"
TIMER = DRIVERS / "examples" / "timer_irq"


def sandboxed(path, **board):
    system, uart = make_board(**board)
    return DriverRun(system, build_driver(path).read_bytes(), log=lambda text: None), uart


def native(path, **board):
    system, uart = make_board(**board)
    return FirmwareRun(system, build_driver(path, native=True).read_bytes()), uart


def test_uart_echo_from_the_interrupt_handler_after_probe_returned(hwsim_driver):
    result = hwsim_driver(DRIVERS / "uart16550", uart_input=b"hello\nworld\n", entry="probe_irq")
    assert result.report.result == 0 and result.report.ok, result.report.format()
    assert result.uart.output == b"hello\nworld\n"
    assert result.report.irq_calls >= 1
    assert result.run.instance.exports(result.run.store)["echoed"](result.run.store) == 12


@pytest.mark.parametrize("make", [sandboxed, native], ids=["sandboxed", "native"])
def test_periodic_timer_interrupts_from_the_idle_loop(make):
    run, _ = make(TIMER)
    report = run.run("probe")
    assert report.result == 0 and report.irq_calls == 5 and report.ok, report.format()
    # Each MMIO access takes a tick (100 ns): probe reads the RTC's time at tick 0, so the alarms are
    # at ticks 1000 ... 5000; each reaches the handler a tick later (the board's irq_latency_ns, 100 ns);
    # the last handler reads the time (2 accesses), clears the interrupt and the enable (2): 5005, and
    # with the IRQ freed nothing is left to wait for.
    assert run.system.clock.now == 5000 + 1 + 4
    if isinstance(run, DriverRun):
        ex = run.instance.exports(run.store)
        assert [ex["lateness"](run.store, i) for i in range(5)] == [100] * 5  # the delivery latency, in ns


def test_interrupts_preempt_running_code_between_instructions():
    """busy() spins on the RTC's time without calling the host: the handler runs in the middle of the loop."""
    run, _ = sandboxed(TIMER)
    report = run.run("busy")
    assert report.result == 5 and report.irq_calls == 5 and report.ok, report.format()
    ex = run.instance.exports(run.store)
    lateness = [ex["lateness"](run.store, i) for i in range(5)]
    assert all(100 <= late <= 500 for late in lateness), lateness  # the latency, then the end of a block
    again, _ = sandboxed(TIMER)
    again.run("busy")
    assert [again.instance.exports(again.store)["lateness"](again.store, i) for i in range(5)] == lateness


def test_native_firmware_is_preempted_the_same_way():
    run, _ = native(TIMER)
    report = run.run("busy")
    assert report.result == 5 and report.irq_calls == 5, report.format()


def test_a_handler_that_never_clears_its_interrupt_is_a_storm(hwsim_driver):
    result = hwsim_driver(DRIVERS / "examples" / "buggy" / "irq_storm")
    report = result.report
    assert not report.ok and report.irq_calls == 1000
    (problem,) = report.irq_problems
    assert problem.startswith("interrupt storm: dma0's line stayed high through 1000 calls of hwsim_irq_handler(0)")
    assert "interrupt storm" in report.format()


IRQ_WAT = """
(module
  (import "hwsim" "request_irq" (func $request (param i32 i32 i32) (result i32)))
  (import "hwsim" "free_irq" (func $free (param i32 i32)))
  (memory (export "memory") 1)
  (data (i32.const 0) "uart0nosuch")
  (func (export "twice") (result i32)
    (drop (call $request (i32.const 0) (i32.const 5) (i32.const 1)))
    (call $request (i32.const 0) (i32.const 5) (i32.const 2)))
  (func (export "unknown") (result i32) (call $request (i32.const 5) (i32.const 6) (i32.const 0)))
  (func (export "free_unrequested") (call $free (i32.const 0) (i32.const 5)))
  HANDLER)
"""


@pytest.mark.parametrize(
    "entry, message",
    [
        ("twice", "hwsim_request_irq('uart0'): the device already has a handler"),
        ("unknown", "has no device 'nosuch'"),
        ("free_unrequested", "hwsim_free_irq('uart0'): no handler was requested for it"),
    ],
)
def test_misuse_of_the_irq_interface_is_a_clear_error(entry, message):
    system, _ = make_board()
    wasm = _wat_to_wasm(IRQ_WAT.replace("HANDLER", '(func (export "hwsim_irq_handler") (param i32))'))
    report = DriverRun(system, wasm, log=lambda text: None).run(entry)
    assert report.trap.code is TrapCode.HOST_INTERFACE and not report.ok
    assert message in report.trap.detail


def test_requesting_an_irq_without_a_handler_says_what_to_define():
    system, _ = make_board()
    report = DriverRun(system, _wat_to_wasm(IRQ_WAT.replace("HANDLER", "")), log=lambda text: None).run("twice")
    assert report.trap.code is TrapCode.HOST_INTERFACE
    assert "the driver defines no hwsim_irq_handler(uint32_t cookie)" in report.trap.detail
