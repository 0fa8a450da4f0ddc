"""hwsim.machine: guest code running through the MMU, faults and their reports, TLB coherence, hooks."""

from __future__ import annotations

import pytest

from hwsim import Machine, StopReason
from hwsim.errors import ConfigError
from hwsim.machine import EcallAction, VirtualAccessError
from hwsim.mmu import AdPolicy, Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Access, Cause, Priv

CODE = 0x1_0000
DATA = 0x2_0000
RX = Pte.R | Pte.X | Pte.U
RW = Pte.R | Pte.W | Pte.U


class Guest:
    """A machine with one address space, a code page and two data pages."""

    def __init__(self, *, priv=Priv.U, sum=False, mxr=False, **machine_args):
        self.m = Machine(ram_size=16 << 20, **machine_args)
        self.space = self.m.new_address_space(asid=1)
        self.code_pa = self.m.frames.alloc()
        self.data_pa = self.m.frames.alloc(2)
        user = Pte.U if priv is Priv.U else 0
        self.space.map(CODE, self.code_pa, 0x1000, Pte.R | Pte.X | user)
        self.space.map(DATA, self.data_pa, 0x2000, Pte.R | Pte.W | user)
        self.m.activate(self.space, priv=priv, sum=sum, mxr=mxr)

    def run(self, build, **kw):
        a = A.Assembler(CODE)
        build(a)
        a.label("exit")
        self.m.phys.write(self.code_pa, a.finish())
        self.m.code_changed()
        return self.m.run(CODE, until=a.labels["exit"], **kw)


@pytest.fixture
def g():
    return Guest()


def test_u_mode_program_runs_through_the_mmu(g):
    g.m.phys.write_u64(g.data_pa + 8, 40)
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 8), A.addi("a0", "a0", 2), A.sd("a0", "a1", 16)))
    assert r.reason is StopReason.EXIT and r.ok
    assert g.m.get_reg("a0") == 42
    assert g.m.phys.read_u64(g.data_pa + 16) == 42
    assert g.m.walks == 2 and g.m.tlb.stats.fills == 2


def test_load_fault_report_names_the_exact_address_instruction_and_walk(g):
    r = g.run(lambda a: a.li("a1", DATA + 0x2000).emit(A.ld("t0", "a1", 0x10)))
    assert r.reason is StopReason.FAULT
    f = r.fault
    assert (f.va, f.access, f.cause, f.kind, f.priv) == (
        DATA + 0x2010,
        Access.LOAD,
        Cause.LOAD_PAGE_FAULT,
        "page fault",
        Priv.U,
    )
    assert f.pc == r.pc == CODE + 4 * len(A.li_words("a1", DATA + 0x2000))
    assert f.insn.text == "ld t0, 0x10(a1)"
    assert f.message == "PTE is not valid (V=0)"
    assert [s.level for s in f.walk.steps] == [2, 1, 0]
    text = f.format()
    assert text.splitlines()[0] == "load page fault (cause 13) at va 0x22010"
    assert "ld t0, 0x10(a1)" in text and "level 0:" in text
    assert f.to_json()["walk"]["result"] == "fault"


def test_store_to_read_only_page(g):
    g.space.protect(DATA, 0x1000, Pte.R | Pte.U)
    r = g.run(lambda a: a.li("a1", DATA + 0x800).emit(A.sw("zero", "a1", -4)))
    assert (r.fault.va, r.fault.cause, r.fault.message) == (
        DATA + 0x7FC,
        Cause.STORE_PAGE_FAULT,
        "store to a page that is not writable (W=0)",
    )
    assert r.fault.insn.text == "sw zero, -4(a1)"


def test_fetch_fault_at_the_jump_target(g):
    r = g.run(lambda a: a.li("t0", 0x7000_0000).emit(A.jalr("zero", "t0", 0)))
    assert r.reason is StopReason.FAULT
    assert (r.fault.va, r.fault.access, r.fault.cause, r.pc) == (
        0x7000_0000,
        Access.FETCH,
        Cause.FETCH_PAGE_FAULT,
        0x7000_0000,
    )
    assert r.fault.insn is None and "(instruction could not be fetched)" in r.fault.format()


def test_fetch_from_a_data_page_is_refused(g):
    r = g.run(lambda a: a.li("t0", DATA).emit(A.jalr("zero", "t0", 0)))
    assert r.fault.message == "fetch from a page that is not executable (X=0)"


def test_misaligned_load_straddling_into_an_unmapped_page(g):
    r = g.run(lambda a: a.li("a1", DATA + 0x2000 - 4).emit(A.ld("t0", "a1", 0)))
    assert r.fault.va == DATA + 0x2000  # the first byte that is not mapped
    g.m.phys.write(g.data_pa + 0xFFC, b"\x01\x02\x03\x04\x05\x06\x07\x08")
    r = g.run(lambda a: a.li("a1", DATA + 0xFFC).emit(A.ld("a0", "a1", 0)))
    assert r.ok and g.m.get_reg("a0") == 0x0807060504030201  # across two mapped pages


def test_hardware_sets_accessed_and_dirty(g):
    g.space.unmap(DATA, 0x2000)
    g.space.map(DATA, g.data_pa, 0x2000, RW, accessed=False)
    g.run(lambda a: a.li("a1", DATA).li("a2", DATA + 0x1000).emit(A.ld("t0", "a1", 0), A.sd("t0", "a2", 0)))
    assert g.space.lookup(DATA).flags & (Pte.A | Pte.D) == Pte.A
    assert g.space.lookup(DATA + 0x1000).flags & (Pte.A | Pte.D) == Pte.A | Pte.D


def test_svade_policy_faults_instead(g):
    g2 = Guest(ad_policy=AdPolicy.FAULT)
    g2.space.unmap(DATA, 0x2000)
    g2.space.map(DATA, g2.data_pa, 0x2000, Pte.R | Pte.W | Pte.U | Pte.G, accessed=False)
    r = g2.run(lambda a: a.li("a1", DATA).emit(A.ld("t0", "a1", 0)))
    assert r.fault.message == "A=0 in the leaf PTE and A/D updates are not done by hardware"
    with pytest.raises(ConfigError, match="must be UPDATE or FAULT"):
        Machine(ad_policy=AdPolicy.REPORT)


def test_changed_mappings_take_effect_immediately(g):
    load = lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0))  # noqa: E731
    g.m.phys.write_u64(g.data_pa, 1)
    assert g.run(load).ok and g.m.get_reg("a0") == 1
    other = g.m.frames.alloc()
    g.m.phys.write_u64(other, 2)
    g.space.unmap(DATA, 0x1000)  # unmap flushes both TLBs ...
    assert g.run(load).reason is StopReason.FAULT
    g.space.map(DATA, other, 0x1000, RW)
    assert g.run(load).ok and g.m.get_reg("a0") == 2  # ... so the new mapping is seen at once


def test_pte_rewritten_behind_the_tlb_stays_stale_until_sfence(g):
    load = lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0))  # noqa: E731
    g.m.phys.write_u64(g.data_pa, 1)
    assert g.run(load).ok and g.m.get_reg("a0") == 1
    other = g.m.frames.alloc()
    g.m.phys.write_u64(other, 2)
    leaf = g.space.lookup(DATA)
    g.m.phys.write_u64(leaf.pte_addr, (other >> 12) << 10 | (g.m.phys.read_u64(leaf.pte_addr) & 0x3FF))
    g.m.flush_cpu_tlb()  # even with Unicorn's own TLB empty, the model TLB still holds the old entry
    assert g.run(load).ok and g.m.get_reg("a0") == 1
    assert g.m.sfence_vma(DATA, 1) == 1
    assert g.run(load).ok and g.m.get_reg("a0") == 2


def test_asids_keep_address_spaces_apart(g):
    other = g.m.new_address_space(asid=2)
    other.map(CODE, g.code_pa, 0x1000, RX)
    frame = g.m.frames.alloc()
    other.map(DATA, frame, 0x1000, RW)
    g.m.phys.write_u64(g.data_pa, 111)
    g.m.phys.write_u64(frame, 222)
    load = lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0))  # noqa: E731
    assert g.run(load).ok and g.m.get_reg("a0") == 111
    g.m.activate(other)
    assert g.run(load).ok and g.m.get_reg("a0") == 222
    g.m.activate(g.space)
    assert g.run(load).ok and g.m.get_reg("a0") == 111
    assert len(g.m.tlb) >= 4  # both spaces' entries coexist, tagged by ASID


def test_s_mode_needs_sum_for_user_pages_and_mxr_for_execute_only():
    g = Guest(priv=Priv.S)
    user_page = g.m.frames.alloc()
    g.space.map(0x5_0000, user_page, 0x1000, RW)
    g.space.map(0x6_0000, user_page, 0x1000, Pte.X)
    r = g.run(lambda a: a.li("a1", 0x5_0000).emit(A.ld("a0", "a1", 0)))
    assert r.fault.message == "S-mode access to a user page (U=1) with SUM=0"
    g.m.activate(g.space, priv=Priv.S, sum=True)
    assert g.run(lambda a: a.li("a1", 0x5_0000).emit(A.ld("a0", "a1", 0))).ok
    r = g.run(lambda a: a.li("a1", 0x6_0000).emit(A.ld("a0", "a1", 0)))
    assert r.fault.message.startswith("load from a page that is not readable")
    g.m.activate(g.space, priv=Priv.S, mxr=True)
    assert g.run(lambda a: a.li("a1", 0x6_0000).emit(A.ld("a0", "a1", 0))).ok


def test_ecall_handler_is_a_host_call(g):
    calls = []

    def host(m):
        calls.append(m.get_reg("a0"))
        m.set_reg("a0", m.get_reg("a0") * 10)
        return EcallAction.RESUME

    g.m.add_ecall_handler(host)
    r = g.run(lambda a: a.li("a0", 4).emit(A.ECALL, A.addi("a0", "a0", 1)))
    assert r.ok and calls == [4] and g.m.get_reg("a0") == 41


def test_ecall_without_handler_stops_and_can_resume(g):
    r = g.run(lambda a: a.li("a0", 1).emit(A.ECALL, A.addi("a0", "a0", 1)))
    assert (r.reason, r.cause) == (StopReason.ECALL, Cause.ECALL_U)
    assert r.pc == CODE + 8  # past the ecall
    r2 = g.m.run(r.pc, until=CODE + 12)
    assert r2.ok and g.m.get_reg("a0") == 2


def test_host_function_error_propagates_and_machine_stays_usable(g):
    def broken(m):
        raise KeyError("host bug")

    remove = g.m.add_ecall_handler(broken)
    with pytest.raises(KeyError, match="host bug"):
        g.run(lambda a: a.emit(A.ECALL))
    remove()
    assert g.run(lambda a: a.li("a0", 7)).ok and g.m.get_reg("a0") == 7


def test_ebreak_and_illegal_instructions(g):
    r = g.run(lambda a: a.emit(A.NOP, A.EBREAK))
    assert (r.reason, r.pc, r.cause) == (StopReason.BREAKPOINT, CODE + 4, Cause.BREAKPOINT)
    assert r.describe() == f"breakpoint (ebreak) (cause 3: breakpoint) at pc {CODE + 4:#x}: ebreak"
    r = g.run(lambda a: a.emit(A.NOP, 0xFFFF_FFFF))
    assert (r.reason, r.cause, r.pc) == (StopReason.EXCEPTION, Cause.ILLEGAL_INSN, CODE + 4)
    r = g.run(lambda a: a.emit(A.csrrw("zero", 0x180, "a0")))  # satp is not accessible from U-mode
    assert (r.reason, r.cause, r.pc, r.insn.text) == (StopReason.EXCEPTION, Cause.ILLEGAL_INSN, CODE, "csrw satp, a0")
    r = g.run(lambda a: a.emit(A.NOP, 0x0001_0000))  # c.unimp (2 bytes) then c.nop
    assert (r.reason, r.pc) == (StopReason.EXCEPTION, CODE + 4)
    assert r.describe() == f"CPU exception (cause 2: illegal_insn) at pc {CODE + 4:#x}: c.unimp"


def test_instruction_budget(g):
    r = g.run(lambda a: a.label("spin").jump("spin"), max_insns=1000)
    assert r.reason is StopReason.LIMIT and r.pc == CODE


def test_time_budget_stops_an_infinite_loop(g):
    r = g.run(lambda a: a.label("spin").jump("spin"), timeout_us=20_000)
    assert r.reason is StopReason.LIMIT
    assert g.run(lambda a: a.li("a0", 3)).ok  # usable afterwards


class Recorder:
    def __init__(self):
        self.log = []

    def mmio_read(self, offset, size):
        self.log.append(("r", offset, size))
        return 0x1122334455667788

    def mmio_write(self, offset, size, value):
        self.log.append(("w", offset, size, value))


@pytest.mark.parametrize("tracked", [True, False])
def test_a_stop_asked_for_inside_a_device_access_does_not_repeat_the_access(g, tracked):
    """A device (or its observer) asking for a stop while it serves a load or store: the run stops
    with the access made exactly once, a load's register written, and going on does not repeat it."""
    log = []

    class Stopper(Recorder):
        def mmio_read(self, offset, size):
            log.append(("r", offset))
            g.m.request_stop()
            return 0x80 + offset  # a negative byte: lb sign-extends it

        def mmio_write(self, offset, size, value):
            log.append(("w", offset, value))
            g.m.request_stop()

    g.m.phys.add_mmio(0x1000_0000, 0x1000, Stopper(), name="stopper")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    g.m.add_device_access_observer(lambda: None) if tracked else None

    def prog(a):
        a.li("a1", 0x4_0000).li("a2", 7)
        a.emit(A.sw("a2", "a1", 0), A.lb("a0", "a1", 4), A.addi("a2", "a2", 1), A.sw("a2", "a1", 8))
        a.emit(A.lw("a3", "a1", 12))

    r = g.run(prog)
    exit_pc = CODE + 4 * (len(A.li_words("a1", 0x4_0000)) + 1 + 5)
    stops = 0
    while r.reason is StopReason.LIMIT and stops < 10:
        stops += 1
        if r.pc == exit_pc:  # the last access was finished: nothing left to run
            break
        r = g.m.run(r.pc, until=exit_pc)
    if tracked:  # the PC names the access: each is finished and never repeated
        assert log == [("w", 0, 7), ("r", 4), ("w", 8, 8), ("r", 12)] and (r.ok or r.pc == exit_pc)
        assert g.m.get_reg("a0") == (0x84 | ~0xFF) & (1 << 64) - 1 and g.m.get_reg("a3") == 0x8C
    else:  # untracked, the PC names the block, not the access: the run goes on from the access again
        assert log[:2] == [("w", 0, 7), ("w", 0, 7)] and stops == 10


def test_mmio_window_reached_through_page_tables(g):
    dev = Recorder()
    g.m.phys.add_mmio(0x1000_0000, 0x1000, dev, name="rec")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    r = g.run(
        lambda a: (
            a.li("a1", 0x4_0000).li("a2", 0xAB).emit(A.sw("a2", "a1", 8), A.lbu("a0", "a1", 3), A.ld("a3", "a1", 16))
        )
    )
    assert r.ok
    # Unicorn's MMIO layer splits an 8-byte access into two 4-byte ones (QEMU's default
    # max_access_size); 1-, 2- and 4-byte accesses arrive once, with their width.
    assert dev.log == [("w", 8, 4, 0xAB), ("r", 3, 1), ("r", 16, 4), ("r", 20, 4)]
    assert g.m.get_reg("a0") == 0x88 and g.m.get_reg("a3") == 0x5566778855667788


def _pc_recorder(g) -> list:
    """A device at 0x4_0000 (VA) that records ("r" or "w", offset, mmio_pc) of each access; the record."""
    seen: list = []

    class Pcs(Recorder):
        def mmio_read(self, offset, size):
            seen.append(("r", offset, g.m.mmio_pc))
            return 0

        def mmio_write(self, offset, size, value):
            seen.append(("w", offset, g.m.mmio_pc))

    g.m.phys.add_mmio(0x1000_0000, 0x1000, Pcs(), name="pcs")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    return seen


def test_mmio_pc_names_the_load_or_store_a_device_serves(g):
    """QEMU updates the PC per translation block; with track_mmio_pcs the PC is that of the access itself."""
    seen = _pc_recorder(g)

    def prog(a):
        a.li("a1", 0x4_0000)
        a.emit(A.sw("zero", "a1", 0), A.addi("a2", "zero", 1), A.sw("a2", "a1", 0), A.lw("a0", "a1", 4))

    assert g.run(prog).ok
    assert [pc for _, _, pc in seen] == [None, None, None]  # not tracked: the PC would name the block
    assert g.m.mmio_pc is None
    g.m.track_mmio_pcs()
    seen.clear()
    assert g.run(prog).ok
    start = CODE + 4 * len(A.li_words("a1", 0x4_0000))
    assert seen == [("w", 0, start), ("w", 0, start + 8), ("r", 4, start + 12)]
    assert g.m.mmio_pc is None  # outside a device access


def test_device_access_observers_run_before_each_access_while_registered(g):
    """A device-access observer sees each guest load or store before the device serves it, with the PC
    already on that access; removing it (the last one) stops the calls, and the PC stays exact."""
    seen = _pc_recorder(g)
    remove_first = g.m.add_device_access_observer(lambda: seen.append(("before", g.m.get_reg("pc"))))
    remove_second = g.m.add_device_access_observer(lambda: seen.append(("second",)))

    def prog(a):
        a.li("a1", 0x4_0000)
        a.emit(A.sw("zero", "a1", 0), A.addi("a2", "zero", 1), A.lw("a0", "a1", 4))

    start = CODE + 4 * len(A.li_words("a1", 0x4_0000))
    assert g.run(prog).ok
    assert seen == [
        ("before", start),
        ("second",),
        ("w", 0, start),
        ("before", start + 8),
        ("second",),
        ("r", 4, start + 8),
    ]
    remove_first()
    seen.clear()
    assert g.run(prog).ok
    assert seen == [("second",), ("w", 0, start), ("second",), ("r", 4, start + 8)]
    remove_second()
    remove_second()  # (a second call does nothing)
    seen.clear()
    assert g.run(prog).ok
    assert seen == [("w", 0, start), ("r", 4, start + 8)]  # no observer left; the PC is still exact


def test_tracked_windows_keep_device_accesses_of_every_width_and_store_watches_alike(g):
    """track_mmio_pcs takes the windows' rights away and lets every access through its hook: loads and
    stores of 1, 2, 4 and 8 bytes still reach the device with their values and exact PCs, RAM is
    untouched by it, and a store watch over RAM sees its stores (with their PC) beside it."""
    seen = []

    class Pcs(Recorder):
        def mmio_read(self, offset, size):
            seen.append(("r", offset, size, g.m.mmio_pc))
            return 0x8877665544332211 >> (8 * (offset & 4))

        def mmio_write(self, offset, size, value):
            seen.append(("w", offset, size, value, g.m.mmio_pc))

    g.m.phys.add_mmio(0x1000_0000, 0x1000, Pcs(), name="pcs")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    g.m.track_mmio_pcs()
    stores = []
    g.m.watch_stores(g.data_pa + 0x20, 8, lambda pa, size, value: stores.append((pa, size, value, g.m.store_pc())))

    def prog(a):
        a.li("a1", 0x4_0000).li("a2", DATA).li("a3", 0x1234)
        a.emit(A.sb("a3", "a1", 1), A.sh("a3", "a1", 2), A.lbu("a4", "a1", 3), A.lhu("a5", "a1", 6))
        a.emit(A.sd("a3", "a1", 8), A.ld("a0", "a1", 16), A.sw("a3", "a2", 0x20), A.lw("t0", "a2", 0x20))

    start = CODE + 4 * (len(A.li_words("a1", 0x4_0000)) + len(A.li_words("a2", DATA)) + len(A.li_words("a3", 0x1234)))
    assert g.run(prog).ok
    assert seen == [
        ("w", 1, 1, 0x34, start),
        ("w", 2, 2, 0x1234, start + 4),
        ("r", 3, 1, start + 8),
        ("r", 6, 2, start + 12),
        ("w", 8, 4, 0x1234, start + 16),  # (Unicorn splits an 8-byte access in two)
        ("w", 12, 4, 0, start + 16),
        ("r", 16, 4, start + 20),
        ("r", 20, 4, start + 20),
    ]
    assert g.m.get_reg("a0") == 0x8877665544332211 and g.m.get_reg("t0") == 0x1234
    assert stores == [(g.data_pa + 0x20, 4, 0x1234, start + 24)]


def test_an_exception_in_a_device_access_observer_stops_the_run_and_propagates(g):
    dev = Recorder()
    g.m.phys.add_mmio(0x1000_0000, 0x1000, dev, name="rec")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)

    def broken():
        raise RuntimeError("observer bug")

    g.m.add_device_access_observer(broken)
    with pytest.raises(RuntimeError, match="observer bug"):
        g.run(lambda a: a.li("a1", 0x4_0000).emit(A.lw("a0", "a1", 0), A.lw("a0", "a1", 4)))
    assert dev.log == [("r", 0, 4)]  # the run stops after the access under way (Unicorn's emu_stop), before the next


def test_device_error_stops_the_run_and_propagates(g):
    class Broken(Recorder):
        def mmio_read(self, offset, size):
            raise RuntimeError("device model bug")

    g.m.phys.add_mmio(0x1000_0000, 0x1000, Broken(), name="broken")
    g.space.map(0x4_0000, 0x1000_0000, 0x1000, RW)
    with pytest.raises(RuntimeError, match="device model bug"):
        g.run(lambda a: a.li("a1", 0x4_0000).emit(A.lw("a0", "a1", 0)))


def test_translated_address_with_nothing_behind_it_is_an_access_fault(g):
    g.space.map(0x4_0000, 0x3000_0000, 0x1000, RW)  # no RAM or device there
    r = g.run(lambda a: a.li("a1", 0x4_0000).emit(A.ld("a0", "a1", 0)))
    assert (r.reason, r.fault.cause, r.fault.kind) == (StopReason.FAULT, Cause.LOAD_ACCESS, "access fault")


def test_host_virtual_access(g):
    g.m.write_virt(DATA + 0xFFE, b"abcd")  # crosses into the second page
    assert g.m.phys.read(g.data_pa + 0xFFE, 4) == b"abcd"
    assert g.m.read_virt(DATA + 0xFFE, 4) == b"abcd"
    with pytest.raises(VirtualAccessError, match="load at va 0x30000: PTE is not valid") as info:
        g.m.read_virt(0x3_0000, 1)
    assert info.value.walk.fault.level == 0
    with pytest.raises(VirtualAccessError, match="store at va 0x10000: store to a page that is not writable"):
        g.m.write_virt(CODE, b"x")


def test_m_mode_and_bare_run_untranslated():
    m = Machine(ram_size=1 << 20)
    code = m.ram.base
    m.phys.write(code, A.Assembler(code).li("a0", 5).emit(A.NOP).finish())
    m.set_reg("priv", Priv.M)
    assert m.run(code, until=code + 8).ok and m.get_reg("a0") == 5
    m.activate(None, priv=Priv.S)  # satp Bare
    assert m.run(code, until=code + 8).ok and m.walks == 0


def test_registers_by_name():
    m = Machine(ram_size=1 << 20)
    m.set_reg("t3", -1)
    assert m.get_reg("x28") == 0xFFFF_FFFF_FFFF_FFFF
    with pytest.raises(ConfigError, match="unknown register 'r9'"):
        m.get_reg("r9")
    with pytest.raises(ConfigError, match="unknown register 'q'"):
        m.set_reg("q", 1)


def test_pager_maps_pages_on_first_touch(g):
    touched = []

    def pager(va, access):
        if 0x40_0000 <= va < 0x40_4000:
            touched.append((va & ~0xFFF, access))
            g.space.map_anonymous(va & ~0xFFF, 0x1000, RW)
            return True
        return False

    g.m.add_pager(pager)
    r = g.run(lambda a: a.li("a1", 0x40_2008).li("a2", 5).emit(A.sd("a2", "a1", 0), A.ld("a0", "a1", 0)))
    assert r.ok and g.m.get_reg("a0") == 5
    assert touched == [(0x40_2000, Access.STORE)] and g.m.demand_faults == 1
    r = g.run(lambda a: a.li("a1", 0x40_4000).emit(A.ld("a0", "a1", 0)))  # outside: the pager declines
    assert r.reason is StopReason.FAULT and r.fault.message == "PTE is not valid (V=0)"


def test_host_function_can_run_the_guest_again(g):
    """A nested run inside an ecall hook: each level keeps its own result and state."""
    exit_va = CODE + 0x800
    body = A.Assembler(CODE).emit(A.addi("a0", "a0", 1), A.ECALL, A.addi("a0", "a0", 100), A.jalr("zero", "ra", 0))
    g.m.phys.write(g.code_pa, body.finish())
    depth = []

    def host(m):
        if len(depth) == 2:
            return EcallAction.RESUME
        depth.append(1)
        ctx = m._uc.context_save()
        m.set_reg("ra", exit_va)
        m.set_reg("a0", m.get_reg("a0") * 10)
        inner = m.run(CODE, until=exit_va)
        assert inner.ok
        value = m.get_reg("a0")
        m._uc.context_restore(ctx)
        m.set_reg("a0", value)
        return EcallAction.RESUME

    g.m.add_ecall_handler(host)
    g.m.set_reg("ra", exit_va)
    g.m.set_reg("a0", 1)
    assert g.m.run(CODE, until=exit_va).ok
    assert g.m.get_reg("a0") == ((1 + 1) * 10 + 1) * 10 + 1 + 300


def test_exit_just_after_an_unmapped_page(g):
    """Unicorn probes the page of until - 1 when a run ends there; that is not a guest fault."""
    exit_va = 0x9_0000  # the page below is not mapped
    g.space.map_anonymous(exit_va, 0x1000, RX)
    g.m.set_reg("ra", exit_va)
    g.m.phys.write(g.code_pa, A.Assembler(CODE).li("a0", 9).emit(A.jalr(0, "ra", 0)).finish())
    g.m.code_changed()
    r = g.m.run(CODE, until=exit_va)
    assert r.ok and g.m.get_reg("a0") == 9


# -- watched pages -------------------------------------------------------------------------------


def test_watched_page_stops_each_access_precisely_and_carries_it_out(g):
    hits = []
    g.m.phys.write_u64(g.data_pa + 8, 0xFFFF_FFFF_FFFF_FF80)
    g.m.watch_page(g.data_pa, hits.append)

    def prog(a):
        a.li("a1", DATA)
        a.emit(
            A.ld("a0", "a1", 8),
            A.lb("a2", "a1", 8),
            A.lbu("a3", "a1", 8),
            A.addi("a0", "a0", 2),
            A.sw("a0", "a1", 16),
            A.lw("a4", "a1", 16),
            A.sd("zero", "a1", 24),
        )

    r = g.run(prog)
    assert r.reason is StopReason.EXIT
    assert (g.m.get_reg("a0"), g.m.get_reg("a2"), g.m.get_reg("a3"), g.m.get_reg("a4")) == (
        0xFFFF_FFFF_FFFF_FF82,
        0xFFFF_FFFF_FFFF_FF80,
        0x80,
        0xFFFF_FFFF_FFFF_FF82,
    )
    assert g.m.phys.read_u64(g.data_pa + 16) == 0xFFFF_FF82
    start = CODE + 4 * len(A.li_words("a1", DATA))
    assert [(h.pc - start, h.va - DATA, h.size, h.access, h.value) for h in hits] == [
        (0, 8, 8, Access.LOAD, None),
        (4, 8, 1, Access.LOAD, None),
        (8, 8, 1, Access.LOAD, None),
        (16, 16, 4, Access.STORE, 0xFFFF_FF82),
        (20, 16, 4, Access.LOAD, None),
        (24, 24, 8, Access.STORE, 0),
    ]
    assert all(h.pa == g.data_pa + (h.va - DATA) and h.priv is Priv.U for h in hits)
    assert g.m.watch_hits == 6


@pytest.mark.parametrize("how", ["request_stop", "stop"])
def test_a_stop_asked_for_while_a_watched_access_is_carried_out_is_not_lost(g, how):
    """The watchdog (another thread) or a device callback may ask for a stop while the run is between
    two stretches of emulation, carrying out a watched store in Python: Unicorn's emu_stop is lost there,
    so the run checks for it (a driver spinning on a watched page could not be stopped)."""
    hits = []

    def on_hit(hit):
        hits.append(hit)
        if len(hits) == 3:
            getattr(g.m, how)()

    g.m.watch_page(g.data_pa, on_hit, accesses=[Access.STORE])

    exits = []

    def prog(a):
        a.li("a1", DATA).li("a2", 100)
        a.label("loop")
        a.emit(A.sw("a2", "a1", 0), A.addi("a2", "a2", -1))
        a.branch("bne", "a2", "zero", "loop")
        exits.append(a)

    r = g.run(prog)
    assert r.reason is (StopReason.LIMIT if how == "request_stop" else StopReason.STOPPED)
    assert len(hits) == 3 and g.m.get_reg("a2") == 98  # stopped after the third store, not at the end
    r = g.m.run(r.pc, until=exits[0].labels["exit"])  # and goes on from there when asked
    assert r.reason is StopReason.EXIT and len(hits) == 100


def test_watch_stores_only_and_an_access_straddling_into_a_watched_page(g):
    hits = []
    g.m.watch_page(g.data_pa + 0x1000, hits.append, accesses=[Access.STORE])

    def prog(a):
        a.li("a1", DATA + 0x1000)
        a.emit(
            A.lw("a0", "a1", 0),
            A.sw("a0", "a1", 4),
            A.lw("a0", "a1", 8),  # the load caches the page...
            A.sw("a0", "a1", 12),
        )  # ...without write permission, so this store still stops
        a.li("a2", DATA + 0xFFC)
        a.emit(A.addi("a3", "zero", -1), A.sd("a3", "a2", 0))  # 4 bytes on each page

    g.m.phys.write(g.data_pa + 0x1000, b"\x11" * 16)
    r = g.run(prog)
    assert r.reason is StopReason.EXIT
    assert [(h.va - DATA, h.size) for h in hits] == [(0x1004, 4), (0x100C, 4), (0xFFC, 8)]
    assert g.m.phys.read(g.data_pa + 0xFFC, 8) == b"\xff" * 8


def test_unwatched_pages_run_at_full_speed_again(g):
    g.m.watch_page(g.data_pa, lambda hit: None)
    g.m.unwatch_page(g.data_pa)
    g.m.unwatch_page(g.data_pa)  # not watched: no-op
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0)))
    assert r.reason is StopReason.EXIT and g.m.watch_hits == 0 and g.m.watched_pages == frozenset()


def test_several_handlers_watch_one_page_each_for_its_own_accesses(g):
    loads, stores, both = [], [], []
    g.m.watch_page(g.data_pa, stores.append, accesses=[Access.STORE])
    g.m.watch_page(g.data_pa, loads.append, accesses=[Access.LOAD])
    g.m.watch_page(g.data_pa, both.append)
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0), A.sd("a0", "a1", 8)))
    assert r.ok
    assert [h.access for h in loads] == [Access.LOAD] and [h.access for h in stores] == [Access.STORE]
    assert [h.access for h in both] == [Access.LOAD, Access.STORE]
    g.m.unwatch_page(g.data_pa, both.append)  # one handler stops; the others go on
    g.m.watch_page(g.data_pa, stores.append, accesses=[Access.LOAD])  # the same handler again: replaced
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0), A.sd("a0", "a1", 8)))
    assert r.ok and len(both) == 2 and len(loads) == 2
    assert [h.access for h in stores] == [Access.STORE, Access.LOAD]
    g.m.unwatch_page(g.data_pa)  # every handler
    assert g.m.watched_pages == frozenset()


def test_watch_keeps_real_faults_and_host_errors(g):
    g.m.watch_page(g.data_pa, lambda hit: None)
    g.space.protect(DATA, 0x1000, Pte.R | Pte.U)
    r = g.run(lambda a: a.li("a1", DATA).emit(A.sw("zero", "a1", 0)))
    assert r.reason is StopReason.FAULT and r.fault.cause is Cause.STORE_PAGE_FAULT  # the PTE says no

    def boom(hit):
        raise RuntimeError("handler failed")

    g.m.watch_page(g.data_pa, boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0)))


def test_watched_float_loads_are_nan_boxed(g):
    g.m.phys.write(
        g.data_pa, (0x3FC0_0000).to_bytes(4, "little") + bytes(4) + (0x4000_0000_0000_0000).to_bytes(8, "little")
    )
    g.m.watch_page(g.data_pa, lambda hit: None)
    flw = A.i_type(0x07, 1, 2, "a1", 0)  # flw f1, 0(a1)
    fld = A.i_type(0x07, 2, 3, "a1", 8)  # fld f2, 8(a1)
    r = g.run(lambda a: a.li("a1", DATA).emit(flw, fld))
    assert r.reason is StopReason.EXIT
    assert g.m.get_reg("f1") == 0xFFFF_FFFF_3FC0_0000 and g.m.get_reg("f2") == 0x4000_0000_0000_0000


def test_watch_in_m_mode_without_translation():
    m = Machine(ram_size=1 << 20)
    code, data = m.ram.base, m.ram.base + 0x8000
    prog = A.Assembler(code).li("a1", data).emit(A.sw("a1", "a1", 4), A.lwu("a0", "a1", 4)).finish()
    m.phys.write(code, prog)
    m.set_reg("priv", Priv.M)
    hits = []
    m.watch_page(data, hits.append, accesses=[Access.STORE])
    end = code + len(prog)
    assert m.run(code, until=end).ok and m.get_reg("a0") == data & 0xFFFF_FFFF
    assert [(h.va, h.pa, h.access, h.priv) for h in hits] == [(data + 4, data + 4, Access.STORE, Priv.M)]


@pytest.mark.parametrize("priv, cause", [(Priv.U, Cause.ECALL_U), (Priv.S, Cause.ECALL_S)])
def test_a_declined_ecall_reports_the_cause_of_the_harts_privilege(priv, cause):
    g = Guest(priv=priv)
    g.m.add_ecall_handler(lambda m: EcallAction.DECLINE)
    r = g.run(lambda a: a.emit(A.ECALL, A.NOP))
    assert (r.reason, r.cause, r.pc) == (StopReason.ECALL, cause, CODE + 4)


def test_register_batch_reads_and_writes_in_its_order(g):
    batch = g.m.register_batch(["a1", "t6", "f10", "x5", "sp"])
    batch.write([1, 2, 0xFFFF_FFFF_0000_0005, (1 << 64) - 1, 0x8000])
    assert [g.m.get_reg(r) for r in ("a1", "t6", "f10", "t0", "sp")] == [
        1,
        2,
        0xFFFF_FFFF_0000_0005,
        (1 << 64) - 1,
        0x8000,
    ]
    g.m.set_reg("t6", 77)
    assert batch.read() == [1, 77, 0xFFFF_FFFF_0000_0005, (1 << 64) - 1, 0x8000]
    assert repr(batch) == "<RegisterBatch a1 t6 f10 x5 sp>"


@pytest.mark.parametrize("name", ["satp", "mstatus", "priv", "q7"])
def test_register_batch_refuses_csrs_and_unknown_names(g, name):
    with pytest.raises(ConfigError, match=f"register batch: '{name}' is not an integer or float register"):
        g.m.register_batch(["a0", name])


def test_a_store_watch_sees_each_store_in_its_range_without_stopping(g):
    hits = []
    handle = g.m.watch_stores(
        g.data_pa + 0x1004, 0x10, lambda pa, size, value: hits.append((g.m.store_pc(), pa, size, value))
    )

    def prog(a):
        a.li("a1", DATA + 0x1000)
        a.emit(
            A.lw("a0", "a1", 4),  # loads are not watched
            A.addi("a0", "zero", -2),
            A.sw("a0", "a1", 4),
            A.sb("a0", "a1", 9),
            A.sd("a0", "a1", 0x14),  # just past the range's end: not shown
            A.sd("a0", "a1", 0),  # begins before the range: not shown (Unicorn names a store by its first byte)
            A.sh("a0", "a1", 0x12),  # the range's last two bytes
        )

    r = g.run(prog)
    assert r.reason is StopReason.EXIT and g.m.watch_hits == 0  # no stop
    start = CODE + 4 * len(A.li_words("a1", DATA + 0x1000))
    assert [(pc - start, pa - g.data_pa, size, value) for pc, pa, size, value in hits] == [
        (8, 0x1004, 4, 0xFFFF_FFFE),
        (12, 0x1009, 1, 0xFE),
        (24, 0x1012, 2, 0xFFFE),
    ]
    assert g.m.phys.read(g.data_pa + 0x1009, 1) + g.m.phys.read(g.data_pa + 0x1012, 2) == b"\xfe\xfe\xff"  # made
    g.m.unwatch_stores(handle)
    g.m.unwatch_stores(handle)  # a no-op once ended
    hits.clear()
    assert g.run(prog).reason is StopReason.EXIT and hits == []  # the hook is gone


def test_a_store_the_host_carries_out_for_a_stopping_watch_is_shown_to_store_watches_once(g):
    seen, stopping = [], []
    g.m.watch_stores(g.data_pa, 16, lambda pa, size, value: seen.append((pa - g.data_pa, size, value)))
    g.m.watch_page(g.data_pa, stopping.append, accesses=[Access.STORE])  # every store to the page stops
    r = g.run(lambda a: a.li("a1", DATA).emit(A.sd("a1", "a1", 0), A.sw("a1", "a1", 8), A.sd("a1", "a1", 64)))
    assert r.ok and len(stopping) == 3 and g.m.phys.read_u64(g.data_pa) == DATA
    assert seen == [(0, 8, DATA), (8, 4, DATA & 0xFFFF_FFFF)]  # the third store is outside the range
    g.m.unwatch_page(g.data_pa, stopping.append)
    r = g.run(lambda a: a.li("a1", DATA).emit(A.sd("a1", "a1", 0)))
    assert r.ok and len(seen) == 3 and len(stopping) == 3


def test_a_store_watch_that_fails_ends_the_run_with_its_error(g):
    with pytest.raises(ConfigError, match="watch_stores: the range at 0x.* is empty"):
        g.m.watch_stores(g.data_pa, 0, lambda pa, size, value: None)

    def boom(pa, size, value):
        raise RuntimeError("handler failed")

    g.m.watch_stores(g.data_pa, 8, boom)
    with pytest.raises(RuntimeError, match="handler failed"):
        g.run(lambda a: a.li("a1", DATA).emit(A.sd("a1", "a1", 0)))


def test_ending_a_watch_needs_no_flush_and_the_page_gets_its_rights_back(g):
    hits = []
    g.m.watch_page(g.data_pa, hits.append, accesses=[Access.STORE])

    def prog(a):
        a.li("a1", DATA)
        a.emit(A.lw("a0", "a1", 0), A.sd("a1", "a1", 8))  # the load hands the page without W

    assert g.run(prog).ok and len(hits) == 1
    flushes = g.m.cpu_tlb_flushes
    g.m.unwatch_page(g.data_pa)
    assert g.m.cpu_tlb_flushes == flushes  # the hart holds the page with fewer rights, never more
    g.m.phys.write_u64(g.data_pa + 8, 0)
    assert g.run(prog).ok and len(hits) == 1 and g.m.phys.read_u64(g.data_pa + 8) == DATA
    pages = g.m.cpu_tlb_page_flushes
    g.m.watch_page(g.data_pa, hits.append, accesses=[Access.STORE])  # a new watch must take W away
    if g.m.page_flush_reason is None:  # from Unicorn's TLB: that page alone where it can, else all of it
        assert (g.m.cpu_tlb_flushes, g.m.cpu_tlb_page_flushes) == (flushes, pages + 1)
    else:
        assert g.m.cpu_tlb_flushes == flushes + 1
    assert g.run(prog).ok and len(hits) == 2


def test_watch_loads_shows_each_load_with_its_physical_address(g):
    seen = []
    g.m.phys.write_u64(g.data_pa + 8, 7)
    handle = g.m.watch_loads(g.data_pa, 16, lambda pa, size: seen.append((pa, size, g.m.phys.read_u64(pa))))
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 8), A.lw("a2", "a1", 32), A.sd("a0", "a1", 0)))
    assert r.ok and seen == [(g.data_pa + 8, 8, 7)]  # the load at +32 is outside; a store is not a load
    g.m.unwatch_stores(handle)
    seen.clear()
    assert g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 8))).ok and seen == []
    with pytest.raises(ConfigError, match="watch_loads: the range at 0x"):
        g.m.watch_loads(g.data_pa, 0, lambda pa, size: None)


def test_set_trap_vm_stops_on_s_mode_sfence_so_the_model_tlb_can_follow():
    g = Guest(priv=Priv.S)
    g.m.set_trap_vm(True)
    g.m.phys.write_u64(g.data_pa, 5)
    r = g.run(lambda a: a.li("a1", DATA).emit(A.ld("a0", "a1", 0), A.sfence_vma("a1", 0), A.addi("a0", "a0", 1)))
    assert r.reason is StopReason.EXCEPTION and r.cause is Cause.ILLEGAL_INSN  # on the sfence.vma, not past it
    assert r.insn is not None and r.insn.mnemonic == "sfence.vma"
    assert g.m.get_reg("a0") == 5  # translated loads worked in S-mode with TVM set (satp read as M-mode)
    assert g.m.tlb.probe(1, DATA) is not None
    g.m.sfence_vma(g.m.get_reg("a1"))
    assert g.m.tlb.probe(1, DATA) is None
    assert g.m.run(r.pc + 4, until=r.pc + 8).reason is StopReason.EXIT  # the exit follows the addi
    assert g.m.get_reg("a0") == 6
    g.m.set_trap_vm(False)
    assert g.run(lambda a: a.li("a1", DATA).emit(A.sfence_vma("a1", 0))).ok


@pytest.mark.parametrize("insn", ["csrw satp", "sfence.vma"])
@pytest.mark.parametrize("how", ["carry out", "stop"])
def test_u_mode_code_cannot_reach_satp_or_fences_through_the_tvm_trap(insn, how):
    """An attack on the TVM emulation: U-mode code (a sandbox's) writing satp or fencing is an illegal
    instruction as ever, never carried out as S-mode's would be; satp and the TLB stay as they were."""
    from hwsim.riscv.priv import CSR_SATP

    g = Guest(priv=Priv.U)
    if how == "carry out":
        g.m.trap_guest_fences()
    else:
        g.m.set_trap_vm(True)
    g.m.phys.write_u64(g.data_pa, 5)
    satp = g.space.satp
    op = A.csrrw("zero", CSR_SATP, "a2") if insn == "csrw satp" else A.sfence_vma("a1", 0)
    r = g.run(lambda a: a.li("a1", DATA).li("a2", 0).emit(A.ld("a0", "a1", 0), op))
    assert r.reason is StopReason.EXCEPTION and r.cause is Cause.ILLEGAL_INSN
    assert g.m.guest_fences == 0 and not g.m.carry_out_fence(r.pc)
    assert g.m.tlb.probe(1, DATA) is not None  # no fence took it away
    assert g.m.get_reg("satp") == satp
