"""The machine's MMIO dispatch: a register access resolved once per offset and size, then served by the
device's bound handler (Device.mmio_handlers) with the same rules, hooks, issues and traces as mmio_read."""

from __future__ import annotations

import pytest

from hwsim import Machine
from hwsim.devices import Device, IssueKind
from hwsim.devices.regs import RegAccess, Register, RegisterLayout
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Priv

CODE, DEV, DEV_PA = 0x1_0000, 0x4_0000, 0x1000_0000
RO, WO, RW, RC = RegAccess.RO, RegAccess.WO, RegAccess.RW, RegAccess.RC

LAYOUT = RegisterLayout(
    "dispatch",
    [
        Register("ID", 0x0, 4, RO, reset=0x1234),
        Register("CMD", 0x4, 4, WO),
        Register("CTRL", 0x8, 4, RW, writable=0xFF, reset=0x10),
        Register("EVENTS", 0xC, 4, RC, reset=0x5),
        Register("LOW", 0x10, 1, RW, when="!bank"),
        Register("HIGH", 0x10, 1, RW, when="bank"),
    ],
)


class Counted(Device):
    """Counts the accesses that reach mmio_read/mmio_write (the misses of the machine's dispatch)."""

    TYPE = "dispatch-test"
    LAYOUT = LAYOUT
    DIRECT_READS = DIRECT_WRITES = True  # (the overrides below only count)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.slow: list[tuple[str, int, int]] = []
        self.commands: list[int] = []
        self.regs.on_write("CMD", lambda new, old: self.commands.append(new))

    def mmio_read(self, offset, size):
        self.slow.append(("r", offset, size))
        return super().mmio_read(offset, size)

    def mmio_write(self, offset, size, value):
        self.slow.append(("w", offset, size))
        super().mmio_write(offset, size, value)


class Guest:
    def __init__(self, device):
        self.m = Machine(ram_size=16 << 20)
        self.m.phys.add_mmio(DEV_PA, 0x1000, device, name="dev")
        space = self.m.new_address_space(asid=1)
        self.code_pa = self.m.frames.alloc()
        space.map(CODE, self.code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
        space.map(DEV, DEV_PA, 0x1000, Pte.R | Pte.W | Pte.U)
        self.m.activate(space, priv=Priv.U)

    def run(self, *instructions):
        a = A.Assembler(CODE)
        a.li("a1", DEV).emit(*instructions)
        a.label("exit")
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        r = self.m.run(CODE, until=a.labels["exit"])
        assert r.ok, r
        return self.m


@pytest.fixture
def dev():
    return Counted(name="dev0")


def test_a_register_access_is_resolved_once_then_served_by_its_handler(dev):
    g = Guest(dev)
    m = g.run(A.lw("a0", "a1", 0), A.lw("a2", "a1", 0), A.sw("zero", "a1", 8), A.lw("a3", "a1", 8))
    assert (m.get_reg("a0"), m.get_reg("a2"), m.get_reg("a3")) == (0x1234, 0x1234, 0)
    assert dev.slow == [("r", 0, 4), ("w", 8, 4), ("r", 8, 4)]  # the second ID read: its handler
    readers, writers = dev.mmio_handlers()
    assert set(readers) == {0 << 4 | 4, 8 << 4 | 4} and set(writers) == {8 << 4 | 4}
    dev.slow.clear()
    g.run(
        A.addi("t0", "zero", 0x1FF), A.sw("t0", "a1", 8), A.lw("a0", "a1", 8), A.sw("t0", "a1", 4), A.sw("t0", "a1", 4)
    )
    assert dev.slow == [("w", 4, 4)]  # CMD resolved once; CTRL's read and write already were
    assert m.get_reg("a0") == 0xFF and dev.regs["CTRL"] == 0xFF  # the write mask applies in the handler
    assert dev.commands == [0x1FF, 0x1FF]  # the write hook runs at every write, dispatched or not
    assert m.mmio_accesses == 8 and dev.issues == []


def test_read_to_clear_and_read_hooks_act_at_every_dispatched_read(dev):
    ticks = iter(range(100, 200))
    dev.regs.on_read("ID", lambda: next(ticks))
    m = Guest(dev).run(A.lw("a0", "a1", 12), A.lw("a2", "a1", 12), A.lw("a3", "a1", 0), A.lw("a4", "a1", 0))
    assert (m.get_reg("a0"), m.get_reg("a2")) == (5, 0)
    assert (m.get_reg("a3"), m.get_reg("a4")) == (100, 101)


def test_misuse_is_never_dispatched_and_reported_at_every_access(dev):
    """Attack: a bad access cached as a handler would be reported once, then silently served."""
    Guest(dev).run(
        A.sw("zero", "a1", 0), A.sw("zero", "a1", 0), A.lw("a0", "a1", 4), A.lw("a0", "a1", 4),
        A.lb("a0", "a1", 1), A.lb("a0", "a1", 1), A.lw("a0", "a1", 0x40), A.lw("a0", "a1", 0x40),
    )  # fmt: skip
    kinds = [issue.kind for issue in dev.issues]
    assert (
        kinds
        == [IssueKind.READ_ONLY] * 2
        + [IssueKind.WRITE_ONLY] * 2
        + [IssueKind.BAD_WIDTH] * 2
        + [IssueKind.UNKNOWN_OFFSET] * 2
    )
    assert len(dev.slow) == 8 and dev.mmio_handlers() == ({}, {})


def test_a_tracer_added_after_dispatch_warmed_up_sees_every_access(dev):
    """Attack: a handler resolved before the tracer would let accesses past it."""
    g = Guest(dev)
    g.run(A.lw("a0", "a1", 0), A.sw("zero", "a1", 8))
    seen = []
    dev.add_tracer(seen.append)
    assert dev.mmio_handlers() == ({}, {})
    g.run(A.lw("a0", "a1", 0), A.lw("a0", "a1", 0), A.sw("zero", "a1", 8), A.sw("zero", "a1", 8))
    assert [(e.op, e.offset) for e in seen] == [("read", 0), ("read", 0), ("write", 8), ("write", 8)]
    assert dev.mmio_handlers() == ({}, {})  # and none is made while traced


def test_a_bank_switch_or_a_reset_drops_the_handlers(dev):
    """Attack: a handler kept across a bank switch reads the old register; across a reset, the old values."""
    g = Guest(dev)
    dev.regs["LOW"], dev.regs["HIGH"] = 0x11, 0x22
    m = g.run(A.lbu("a0", "a1", 0x10), A.lbu("a0", "a1", 0x10))
    assert m.get_reg("a0") == 0x11
    dev.regs.set_flag("bank")
    assert g.run(A.lbu("a0", "a1", 0x10)).get_reg("a0") == 0x22
    g.run(A.addi("t0", "zero", 0x77), A.sw("t0", "a1", 8), A.lw("a0", "a1", 8))
    dev.reset()
    assert g.run(A.lw("a0", "a1", 8)).get_reg("a0") == 0x10
    g.run(A.addi("t0", "zero", 0x33), A.sw("t0", "a1", 8))
    assert dev.regs["CTRL"] == 0x33  # a write after the reset lands in the registers the device reads


def test_a_device_that_serves_its_own_accesses_is_asked_every_time():
    class Own(Device):  # overrides mmio_read without saying its reads are only register work
        TYPE = "dispatch-own-test"
        LAYOUT = LAYOUT

        def mmio_read(self, offset, size):
            return super().mmio_read(offset, size) + 1

    assert Own.DIRECT_READS is False and Own.DIRECT_WRITES is True
    own = Own(name="own0")
    m = Guest(own).run(A.lw("a0", "a1", 0), A.lw("a2", "a1", 0))
    assert (m.get_reg("a0"), m.get_reg("a2")) == (0x1235, 0x1235)
    assert own.mmio_handlers()[0] == {}


def test_a_device_without_handlers_is_served_by_mmio_read():
    class Bare:
        def mmio_read(self, offset, size):
            return offset

        def mmio_write(self, offset, size, value):
            pass

    m = Guest(Bare()).run(A.lw("a0", "a1", 0x24), A.lw("a2", "a1", 0x24))
    assert (m.get_reg("a0"), m.get_reg("a2")) == (0x24, 0x24)
