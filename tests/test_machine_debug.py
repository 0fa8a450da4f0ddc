"""hwsim.machine.debug: the debugger's port (breakpoints, steps, stop requests, traps, Machine.resolve)."""

from __future__ import annotations

import threading
import time

import pytest

from hwsim import Machine, StopReason
from hwsim.machine import DebugStop, DebugStopKind
from hwsim.mmu import Pte
from hwsim.mmu.walker import Translation
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Priv

CODE = 0x1_0000
DATA = 0x2_0000
LAZY = 0x40_0000  # not mapped: the pager maps it


class Guest:
    """U-mode code at CODE counting a1 up to a2 in a loop, storing each value at DATA."""

    def __init__(self) -> None:
        self.m = Machine(ram_size=16 << 20)
        self.space = self.m.new_address_space(asid=1)
        self.code_pa = self.m.frames.alloc()
        self.data_pa = self.m.frames.alloc()
        self.space.map(CODE, self.code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
        self.space.map(DATA, self.data_pa, 0x1000, Pte.R | Pte.W | Pte.U)
        self.m.activate(self.space, priv=Priv.U)
        a = A.Assembler(CODE)
        a.li("a0", DATA).li("a1", 0)
        a.label("loop")
        a.emit(A.addi("a1", "a1", 1), A.sw("a1", "a0", 0))
        a.branch("bne", "a1", "a2", "loop")
        a.label("exit")
        self.labels = a.labels
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        self.stops: list[DebugStop] = []

    def run(self, n: int = 3, until: str = "exit"):
        self.m.set_reg("a2", n)
        return self.m.run(CODE, until=self.labels[until])


@pytest.fixture
def g():
    return Guest()


def test_breakpoints_stop_before_the_instruction_every_time_and_never_reach_the_caller(g):
    loop = g.labels["loop"]
    values = []

    def handler(stop: DebugStop) -> None:
        g.stops.append(stop)
        values.append(g.m.get_reg("a1"))

    detach = g.m.debug.attach(handler)
    g.m.debug.add_breakpoint(loop)
    result = g.run(3)
    assert result.reason is StopReason.EXIT and g.m.get_reg("a1") == 3
    assert [(s.kind, s.pc) for s in g.stops] == [(DebugStopKind.BREAKPOINT, loop)] * 3
    assert values == [0, 1, 2]  # the addi at the breakpoint had not run yet
    assert g.m.debug.remove_breakpoint(loop) and not g.m.debug.remove_breakpoint(loop)
    g.stops.clear()
    assert g.run(3).reason is StopReason.EXIT and g.stops == []
    detach()
    assert not g.m.debug.attached


def test_single_step_stops_at_each_instruction(g):
    pcs = []

    def handler(stop: DebugStop) -> None:
        pcs.append((stop.kind, stop.pc))
        if len(pcs) >= 4:
            g.m.debug.set_single_step(False)

    g.m.debug.attach(handler, stop_at_start=True)
    g.m.debug.set_single_step(True)
    assert g.run(2).reason is StopReason.EXIT
    assert pcs[0] == (DebugStopKind.REQUESTED, CODE)
    assert pcs[1:4] == [(DebugStopKind.STEP, CODE + 4 * i) for i in (1, 2, 3)]


def test_a_request_from_another_thread_stops_a_loop_that_never_ends(g):
    def handler(stop: DebugStop) -> None:
        g.stops.append(stop)
        g.m.set_reg("a2", g.m.get_reg("a1") + 1)  # let it end one round later

    g.m.debug.attach(handler)
    timer = threading.Timer(0.3, g.m.debug.request_stop)
    timer.start()
    started = time.monotonic()
    result = g.run(0)  # a2 = 0: counts until it wraps, in practice forever
    timer.join()
    assert result.reason is StopReason.EXIT and time.monotonic() - started < 30
    assert [s.kind for s in g.stops] == [DebugStopKind.REQUESTED]


def test_a_trap_is_shown_before_it_is_returned_and_a_moved_pc_resumes(g):
    g.m.set_reg("a0", 0)
    a = A.Assembler(CODE)
    a.emit(A.EBREAK)
    a.li("a1", 7)
    a.label("exit")
    g.m.phys.write(g.code_pa, a.finish())
    g.m.code_changed()

    detach = g.m.debug.attach(g.stops.append)
    result = g.m.run(CODE, until=a.labels["exit"])
    assert result.reason is StopReason.BREAKPOINT and g.stops[0].kind is DebugStopKind.TRAP
    assert g.stops[0].result is result
    detach()

    def skip(stop: DebugStop) -> None:
        g.m.set_reg("pc", stop.pc + 4)  # over the ebreak

    g.m.debug.attach(skip)
    assert g.m.run(CODE, until=a.labels["exit"]).reason is StopReason.EXIT and g.m.get_reg("a1") == 7


def test_end_run_makes_run_return_as_interrupted(g):
    g.m.debug.attach(lambda stop: g.m.debug.end_run(), stop_at_start=True)
    result = g.run(3)
    assert result.reason is StopReason.LIMIT and result.pc == CODE and g.m.get_reg("a1") == 0


def test_resolve_takes_the_guests_path(g):
    mapped = []

    def pager(va, access):
        g.space.map_anonymous(va & ~0xFFF, 0x1000, Pte.R | Pte.W | Pte.U)
        mapped.append(va & ~0xFFF)
        return True

    g.m.add_pager(pager)
    tr = g.m.resolve(LAZY + 8, Access.LOAD)
    assert isinstance(tr, Translation) and mapped == [LAZY]
    assert not isinstance(g.m.resolve(CODE, Access.STORE), Translation)  # code is not writable
    g.m.activate(None, priv=Priv.M)
    assert g.m.resolve(0x8000_0000) is None  # untranslated
