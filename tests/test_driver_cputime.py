"""hwsim.driver.cputime: the instructions a driver executes take virtual time, so devices make progress
and interrupts arrive while it computes or spins on memory."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from hwsim.board import DEFAULT_BOARD, load_board
from hwsim.driver import DriverRun, build_driver, cputime
from hwsim.driver.explore import explore

SPIN = Path(__file__).resolve().parent / "data" / "cputime" / "spin_on_memory"
BOARD = load_board(DEFAULT_BOARD)


def _system(instructions_per_us: int | None = None):
    board = BOARD
    if instructions_per_us is not None:
        board = dataclasses.replace(BOARD, instructions_per_us=instructions_per_us)
    return board.build(options={"uart0": {"backend": "memory"}})


def _run(instructions_per_us: int | None = None):
    system = _system(instructions_per_us)
    run = DriverRun(system, build_driver(SPIN).read_bytes(), log=lambda t: None, wall_limit_s=20)
    return run, run.run()


def test_a_loop_spinning_on_memory_sees_the_dma_complete():
    run, report = _run()
    assert report.ok and report.result > 0, report.format()  # the loop spun, then the handler ended it
    assert report.irq_calls == 1
    # A 4 KiB copy takes setup 200 ns + 4096 B at 1 GB/s: the clock reached it through executed code.
    assert report.virtual_ns >= 200 + 4096
    assert run.cpu_time.units >= 1000 and run.cpu_time.charged_ns >= 1000


def test_faster_code_spins_more_times_for_the_same_transfer():
    """The rate is the board's: at 4x the instructions per microsecond the loop runs about 4x as often."""
    slow = _run(instructions_per_us=500)[1].result
    fast = _run(instructions_per_us=2000)[1].result
    assert slow > 0 and fast > 3 * slow


def test_the_same_seed_gives_the_same_spins():
    wasm = build_driver(SPIN).read_bytes()
    counts = [explore(BOARD, wasm, [seed, seed]).report.result for seed in (3, 11)]
    again = [explore(BOARD, wasm, [seed]).report.result for seed in (3, 11)]
    assert counts == again and all(c > 0 for c in counts)


def test_without_instruction_time_the_spin_never_ends():
    """instructions_per_us = 0: code takes no time, as before; the loop can only be stopped from outside
    (here the wall-clock limit), which the report says."""
    run = DriverRun(_system(0), build_driver(SPIN).read_bytes(), log=lambda t: None, wall_limit_s=1.0)
    report = run.run()
    assert run.cpu_time is None
    assert not report.ok and report.stopped is not None, report.format()


COMPUTE = Path(__file__).resolve().parent / "data" / "cputime" / "compute_then_now"


@pytest.mark.parametrize("entry", ["compute", "compute_mmio"])
def test_the_host_and_devices_see_the_time_of_a_long_stretch(monkeypatch, entry):
    """Code that keeps to itself gets longer and longer stretches of fuel (few slow paths), yet a host
    call or a device access sees the clock as one-quantum stretches would show it, within a quantum."""
    wasm = build_driver(COMPUTE).read_bytes()

    def measure(n):
        run = DriverRun(_system(), wasm, log=lambda t: None)
        report = run.run(entry, (n,))
        assert report.ok, report.format()
        return report.result, run.cpu_time.slow_paths

    long_ns, long_paths = measure(100_000)
    monkeypatch.setattr(cputime, "MAX_STRETCH", 1)  # every stretch one quantum, as before stretches grew
    short_ns, short_paths = measure(100_000)
    assert short_ns > 100_000 and abs(long_ns - short_ns) <= 1_000, (long_ns, short_ns)
    assert long_paths * 20 < short_paths, (long_paths, short_paths)


def test_a_device_event_ends_a_long_stretch_on_time():
    """An event a device schedules in the middle of a long stretch fires at the first checkpoint at or
    after its tick, not at the stretch's end (nor up to a quantum late): the spins scale with the rate."""
    spins = {rate: _run(instructions_per_us=rate)[1].result for rate in (500, 1000, 2000)}
    assert spins[500] > 0
    # (device accesses take the same time at every rate: a few spins of difference at most)
    assert abs(spins[1000] - 2 * spins[500]) <= 0.02 * spins[1000], spins
    assert abs(spins[2000] - 2 * spins[1000]) <= 0.02 * spins[2000], spins


def test_code_that_touches_a_device_every_quantum_keeps_one_quantum_stretches(monkeypatch):
    """Stretches grow only while the code keeps to itself: a loop that reads a device register several
    times a quantum (no host call) takes the slow path exactly as often as with every stretch one quantum,
    and its register reads see the same times; the same loop without the reads takes it far less often."""
    wasm = build_driver(COMPUTE).read_bytes()

    def measure(entry):
        run = DriverRun(_system(), wasm, log=lambda t: None)
        report = run.run(entry, (50_000,))
        assert report.ok, report.format()
        return report.result, run.cpu_time.slow_paths

    touching, alone = measure("compute_touching"), measure("compute_mmio")
    monkeypatch.setattr(cputime, "MAX_STRETCH", 1)
    assert measure("compute_touching") == touching and touching[1] > 20
    assert alone[1] * 10 < measure("compute_mmio")[1] < touching[1] * 2


NET = Path(__file__).resolve().parents[1] / "drivers" / "virtio_net"


def test_a_device_access_that_schedules_an_event_after_the_stretch_ends_does_not_stop_the_cpu(monkeypatch):
    """virtio-net's QueueNotify in a long stretch (after building a frame) schedules the transmission. When
    the stretch ends before that event's tick anyway, it runs on (ending it would stop the CPU, a host
    round trip); when the event comes first, the stretch still ends at the next checkpoint.  The driver
    executes the same instructions and sees the same frames either way, and virtual time moves within a
    quantum per round trip of what ending every such stretch gives (host calls and device accesses then
    see the clock up to date instead of up to a quantum behind)."""
    wasm = build_driver(NET).read_bytes()

    def measure():
        run = DriverRun(BOARD.build(), wasm, log=lambda t: None)
        report = run.run("pingpong", (40,))
        assert report.ok and report.result == 0, report.format()
        return report, run.cpu_time.units, run.vm.checkpoint_requests

    report, units, stops = measure()
    monkeypatch.setattr(cputime.CpuTime, "_ends_before", lambda self, deadline: False)
    every_report, every_units, every_stops = measure()
    assert units == every_units and report.mmio_accesses == every_report.mmio_accesses
    assert 0 < stops * 2 < every_stops, (stops, every_stops)  # most stops avoided; events that come first stop
    quantum_ns = cputime.QUANTUM * 1000 // BOARD.instructions_per_us
    assert abs(report.virtual_ns - every_report.virtual_ns) <= 40 * quantum_ns, (
        report.virtual_ns,
        every_report.virtual_ns,
    )
