"""hwsim.devices.clock and timer: deterministic virtual time, mtime/mtimecmp as 32-bit halves, the timer IRQ."""

from __future__ import annotations

import pytest
from board_helpers import DATA, BoardGuest, virt

from hwsim.devices import Timer, VirtualClock
from hwsim.errors import ConfigError
from hwsim.riscv import asm as A

MSIP, CMP_LO, CMP_HI, TIME_LO, TIME_HI = 0x0, 0x4000, 0x4004, 0xBFF8, 0xBFFC


def test_clock_runs_events_in_deadline_order_with_exact_time():
    clock = VirtualClock()
    log = []
    clock.schedule(30, lambda: log.append(("b", clock.now)))
    clock.schedule(10, lambda: log.append(("a", clock.now)))
    clock.schedule(30, lambda: log.append(("c", clock.now)))  # tie: scheduling order
    late = clock.schedule(50, lambda: log.append(("never", clock.now)))
    late.cancel()
    assert clock.next_deadline == 10
    assert clock.advance(29) == 1 and clock.now == 29
    assert clock.advance(100) == 2 and clock.now == 129
    assert log == [("a", 10), ("b", 30), ("c", 30)]
    assert clock.next_deadline is None


def test_clock_events_scheduled_from_callbacks_and_in_the_past():
    clock = VirtualClock()
    log = []

    def tick():
        log.append(clock.now)
        if len(log) < 3:
            clock.schedule_in(5, tick)

    clock.schedule(0, tick)
    clock.advance(100)
    assert log == [0, 5, 10]
    clock.schedule(3, lambda: log.append(clock.now))  # in the past: runs at the next advance
    clock.advance(0)
    assert log == [0, 5, 10, 100]


def test_clock_errors():
    clock = VirtualClock(frequency_hz=1000)
    assert clock.ticks_to_ns(3) == 3_000_000
    with pytest.raises(ConfigError, match="ticks must be a non-negative integer, not -1"):
        clock.advance(-1)
    clock.advance(10)
    with pytest.raises(ConfigError, match="cannot go from tick 10 back to 5"):
        clock.advance_to(5)
    with pytest.raises(ConfigError, match="clock frequency must be a positive integer, not 0"):
        VirtualClock(frequency_hz=0)


def test_clock_without_a_limit_runs_past_tick_2_64():
    # Without a limit the clock kept 2**64 as its limit and called the missing callback there (TypeError).
    clock = VirtualClock()
    assert clock.advance(1 << 64) == 0 and clock.now == 1 << 64
    hits = []
    clock.set_limit(clock.now + 10, lambda: hits.append(clock.now))
    clock.charge(10)
    clock.set_limit(0, None)  # removed: the limit is forgotten, not left without its callback
    clock.charge(1 << 64)
    assert hits == [(1 << 64) + 10] and clock.now == (2 << 64) + 10


def test_the_access_charger_charges_as_charge_does():
    """The MMIO observer the board registers (charge's work written out) against charge itself: the same
    seeded run of charges, events (fired in order, at their ticks) and a limit gives the same history."""
    import random

    def history(use_observer: bool) -> tuple[list, int]:
        rng = random.Random(7)
        clock = VirtualClock()
        seen: list = []
        clock.set_limit(5_000, lambda: seen.append(("limit", clock.now)))
        observer = clock.access_charger(3)
        for i in range(2_000):
            if rng.random() < 0.1:
                clock.schedule_in(rng.randrange(40), lambda i=i: seen.append((i, clock.now)))
            if use_observer:
                observer(None, 0x10, 4, True, i)
            else:
                clock.charge(3)
        return seen, clock.now

    histories = [history(False), history(True)]
    assert histories[0] == histories[1] and len(histories[0][0]) > 150 and ("limit", 5_001) in histories[0][0]


@pytest.fixture
def timer():
    return Timer(name="clint", clock=VirtualClock())


def set_cmp(t, value):
    t.mmio_write(CMP_LO, 4, 0xFFFF_FFFF)  # the usual race-free order: low to max, high, then low
    t.mmio_write(CMP_HI, 4, value >> 32)
    t.mmio_write(CMP_LO, 4, value & 0xFFFF_FFFF)


def test_mtime_follows_the_virtual_clock(timer):
    assert (timer.mmio_read(TIME_LO, 4), timer.mmio_read(TIME_HI, 4)) == (0, 0)
    timer.clock.advance((5 << 32) + 7)
    assert (timer.mmio_read(TIME_LO, 4), timer.mmio_read(TIME_HI, 4)) == (7, 5)
    assert (timer.mmio_read(CMP_LO, 4), timer.mmio_read(CMP_HI, 4)) == (0xFFFF_FFFF, 0xFFFF_FFFF)
    assert not timer.irq.level


def test_compare_raises_the_irq_exactly_when_reached(timer):
    set_cmp(timer, 1000)
    timer.clock.advance(999)
    assert not timer.irq.level
    timer.clock.advance(1)
    assert timer.irq.level  # a level: stays high while mtime >= mtimecmp
    timer.clock.advance(50)
    assert timer.irq.level
    set_cmp(timer, 2000)
    assert not timer.irq.level
    timer.clock.advance(2000 - 1050)
    assert timer.irq.level
    set_cmp(timer, 10)  # in the past: high at once
    assert timer.irq.level


def test_writing_mtime_moves_the_offset_and_rearms(timer):
    set_cmp(timer, 500)
    timer.mmio_write(TIME_LO, 4, 490)
    assert timer.mtime == 490 and not timer.irq.level
    timer.clock.advance(10)
    assert timer.irq.level and timer.clock.now == 10
    timer.mmio_write(TIME_HI, 4, 1)
    assert timer.mtime == (1 << 32) + 500 and timer.irq.level


def test_msip_and_reset(timer):
    timer.mmio_write(MSIP, 4, 1)
    assert timer.software_irq.level and timer.mmio_read(MSIP, 4) == 1
    timer.mmio_write(MSIP, 4, 2)
    assert not timer.software_irq.level
    assert [i.message for i in timer.issues] == ["write of 0x2 to MSIP sets reserved bits 0x2 (ignored)"]
    set_cmp(timer, 5)
    timer.reset()
    timer.clock.advance(1000)
    assert not timer.irq.level and timer.mtime == timer.clock.now


def test_timer_interrupt_reaches_the_plic_on_the_virt_board():
    s = virt()
    t, plic = s.device("clint"), s.irqc
    plic.mmio_write(4 * 13, 4, 1)
    plic.mmio_write(0x2000, 4, 1 << 13)
    set_cmp(t, 100)
    s.advance(99)
    assert not plic.output(0)
    s.advance(1)
    assert plic.output(0) and plic.mmio_read(0x20_0004, 4) == 13


def test_guest_reads_mtime_and_sets_mtimecmp_with_64_bit_accesses():
    """``ld``/``sd`` on the lo/hi pairs: Unicorn delivers two 4-byte accesses, low word first."""
    s = virt()
    g = BoardGuest(s, {"clint": 0x10_0000})
    s.advance((3 << 32) | 0x1234)

    def program(a):
        a.li("a1", 0x10_0000).li("a2", 0xBFF8).emit(A.add("a2", "a1", "a2"), A.ld("a0", "a2", 0))
        a.li("a3", 0x4000).emit(A.add("a3", "a1", "a3"))
        a.li("a4", (3 << 32) | 0x2000).emit(A.sd("a4", "a3", 0))
        a.li("a5", DATA).emit(A.sd("a0", "a5", 0))

    assert g.run(program).ok
    assert g.m.get_reg("a0") == (3 << 32) | 0x1234
    timer = s.device("clint")
    assert timer.mtimecmp == (3 << 32) | 0x2000
    assert s.clock.now == ((3 << 32) | 0x1234) + 4  # four MMIO accesses, a tick each (mmio_access_ticks)
    s.advance(0x2000 - 0x1234 - 4 - 1)
    assert not timer.irq.level
    s.advance(1)
    assert timer.irq.level
    assert s.issues() == []


def test_mmio_accesses_take_virtual_time_so_a_polling_loop_ends():
    """A guest spinning on mtime sees it move: each device access takes the board's mmio_access_ticks."""
    s = virt()
    g = BoardGuest(s, {"clint": 0x10_0000})

    def program(a):
        a.li("a1", 0x10_0000).li("a2", 0xBFF8).emit(A.add("a2", "a1", "a2"))
        a.label("spin").emit(A.lw("a0", "a2", 0), A.sltiu("t0", "a0", 1000))
        a.branch("bne", "t0", "zero", "spin")

    assert g.run(program, timeout_us=5_000_000).ok
    assert g.m.get_reg("a0") == 1000 and s.clock.now == 1001
