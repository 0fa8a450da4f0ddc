"""hwsim.machine.hooks: pagers, write-fault and ecall handlers, MMIO observers, registered in order."""

from __future__ import annotations

import pytest

from hwsim import Machine, StopReason
from hwsim.errors import ConfigError
from hwsim.machine import EcallAction
from hwsim.machine.hooks import Hooks
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Cause, Priv

CODE = 0x1_0000
LAZY = 0x40_0000  # not mapped: pagers map it
RW = Pte.R | Pte.W | Pte.U


class Guest:
    def __init__(self) -> None:
        self.m = Machine(ram_size=16 << 20)
        self.space = self.m.new_address_space(asid=1)
        self.code_pa = self.m.frames.alloc()
        self.space.map(CODE, self.code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
        self.m.activate(self.space, priv=Priv.U)

    def run(self, build):
        a = A.Assembler(CODE)
        build(a)
        a.label("exit")
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        return self.m.run(CODE, until=a.labels["exit"])


@pytest.fixture
def g():
    return Guest()


def test_pagers_are_asked_in_order_until_one_maps_the_page(g):
    asked = []

    def pager(name, maps):
        def ask(va, access):
            asked.append((name, va & ~0xFFF, access))
            if maps:
                g.space.map_anonymous(va & ~0xFFF, 0x1000, RW)
            return maps

        return ask

    g.m.add_pager(pager("declines", False))
    remove = g.m.add_pager(pager("maps", True))
    g.m.add_pager(pager("never asked", True))
    r = g.run(lambda a: a.li("a1", LAZY).li("a2", 5).emit(A.sd("a2", "a1", 0)))
    assert r.ok and g.m.demand_faults == 1
    assert asked == [("declines", LAZY, Access.STORE), ("maps", LAZY, Access.STORE)]
    remove()
    asked.clear()
    r = g.run(lambda a: a.li("a1", LAZY + 0x1000).emit(A.ld("a0", "a1", 0)))
    assert r.ok and [name for name, _va, _access in asked] == ["declines", "never asked"]


def test_a_page_no_pager_maps_faults(g):
    g.m.add_pager(lambda va, access: False)
    r = g.run(lambda a: a.li("a1", LAZY).emit(A.ld("a0", "a1", 0)))
    assert r.reason is StopReason.FAULT and r.fault.message == "PTE is not valid (V=0)" and g.m.demand_faults == 0


def test_write_fault_handlers_are_asked_in_order_until_one_makes_the_page_writable(g):
    g.space.map_anonymous(LAZY, 0x1000, Pte.R | Pte.U)
    asked = []

    def declines(va):
        asked.append("declines")
        return False

    def makes_writable(va):
        asked.append("cow")
        g.space.protect(va & ~0xFFF, 0x1000, RW)
        return True

    g.m.add_write_fault_handler(declines)
    g.m.add_write_fault_handler(makes_writable)
    g.m.add_write_fault_handler(lambda va: asked.append("never asked"))
    r = g.run(lambda a: a.li("a1", LAZY).li("a2", 7).emit(A.sd("a2", "a1", 0), A.ld("a0", "a1", 0)))
    assert r.ok and g.m.get_reg("a0") == 7 and asked == ["declines", "cow"] and g.m.write_faults == 1


def test_ecall_handlers_decline_resume_or_stop_in_order(g):
    seen = []

    def handler(name, action):
        def handle(m):
            seen.append(name)
            return action

        return handle

    g.m.add_ecall_handler(handler("first", EcallAction.DECLINE))
    remove = g.m.add_ecall_handler(handler("second", EcallAction.RESUME))
    g.m.add_ecall_handler(handler("third", EcallAction.STOP))
    assert g.run(lambda a: a.emit(A.ECALL)).ok and seen == ["first", "second"]
    remove()
    seen.clear()
    r = g.run(lambda a: a.emit(A.ECALL, A.NOP))
    assert (r.reason, r.cause, r.pc) == (StopReason.ECALL, Cause.ECALL_U, CODE + 4) and seen == ["first", "third"]


def test_an_ecall_every_handler_declines_stops_the_run(g):
    g.m.add_ecall_handler(lambda m: EcallAction.DECLINE)
    r = g.run(lambda a: a.emit(A.ECALL, A.NOP))
    assert (r.reason, r.cause, r.pc) == (StopReason.ECALL, Cause.ECALL_U, CODE + 4)


def test_an_ecall_handler_must_say_what_it_did(g):
    def forgetful(m):
        pass

    g.m.add_ecall_handler(forgetful)
    with pytest.raises(ConfigError, match=r"ecall handler .*forgetful.* returned None, not an EcallAction"):
        g.run(lambda a: a.emit(A.ECALL))


class Device:
    def mmio_read(self, offset, size):
        return 0x55

    def mmio_write(self, offset, size, value):
        pass


def test_every_mmio_observer_sees_every_device_access_in_order(g):
    region = g.m.phys.add_mmio(0x1000_0000, 0x1000, Device(), name="dev")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    seen = []
    g.m.add_mmio_observer(lambda *access: seen.append(("first", *access)))
    remove = g.m.add_mmio_observer(lambda *access: seen.append(("second", *access)))
    assert g.run(lambda a: a.li("a1", 0x4_0000).li("a2", 9).emit(A.sw("a2", "a1", 8), A.lbu("a0", "a1", 3))).ok
    assert seen == [
        ("first", region, 8, 4, True, 9),
        ("second", region, 8, 4, True, 9),
        ("first", region, 3, 1, False, 0x55),
        ("second", region, 3, 1, False, 0x55),
    ]
    remove()
    seen.clear()
    assert g.run(lambda a: a.li("a1", 0x4_0000).emit(A.lbu("a0", "a1", 0))).ok
    assert seen == [("first", region, 0, 1, False, 0x55)]


def test_hooks_take_callables_and_removers_remove_one_registration():
    hooks = Hooks("pager")
    with pytest.raises(ConfigError, match="a pager must be callable, not None"):
        hooks.add(None)
    first = hooks.add(print)
    hooks.add(print)
    assert hooks.callbacks == (print, print)
    first()
    first()  # a second call changes nothing
    assert hooks.callbacks == (print,) and len(hooks) == 1


def test_a_callback_removing_itself_while_the_hook_runs(g):
    seen = []

    def once(m):
        seen.append("once")
        remove()
        return EcallAction.DECLINE

    remove = g.m.add_ecall_handler(once)
    g.m.add_ecall_handler(lambda m: seen.append("always") or EcallAction.RESUME)
    assert g.run(lambda a: a.emit(A.ECALL, A.ECALL)).ok
    assert seen == ["once", "always", "always"]


def test_active_space_is_what_activate_chose(g):
    assert g.m.active_space is g.space
    other = g.m.new_address_space(asid=2)
    g.m.activate(other)
    assert g.m.active_space is other
    g.m.activate(None, priv=Priv.S)
    assert g.m.active_space is None
    g.m.activate(g.space)
    g.m.set_reg("satp", g.space.satp)  # written directly: the machine no longer vouches for it
    assert g.m.active_space is None
