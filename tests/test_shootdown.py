"""machine/shootdown.py: a mapping change made while a hart runs fences that hart and, by IPI, every other
hart's TLBs for the changed range only; a change from the host fences every hart without IPIs."""

from __future__ import annotations

from hwsim.machine import EcallAction, Machine, StopReason
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import Priv

CODE_VA, PAGE_A, PAGE_B = 0x1_0000, 0x4_0000, 0x5_0000
USER_RW = Pte.R | Pte.W | Pte.U


def three_harts():
    """Three harts in one U-mode space whose code loads PAGE_A and PAGE_B, makes an ecall, and ends."""
    m = Machine(harts=3)
    space = m.new_address_space(asid=1)
    code = m.frames.alloc()
    space.map(CODE_VA, code, 4096, Pte.R | Pte.X | Pte.U)
    space.map(PAGE_A, m.frames.alloc(), 4096, USER_RW)
    space.map(PAGE_B, m.frames.alloc(), 4096, USER_RW)
    a = A.Assembler(CODE_VA)
    a.li("t0", PAGE_A).li("t1", PAGE_B).emit(A.lw("t2", "t0", 0), A.lw("t2", "t1", 0), A.ECALL)
    a.label("exit")
    m.phys.write(code, a.finish())
    for hart in m.harts:
        hart.activate(space, priv=Priv.U)
    return m, space, a.labels["exit"]


def cached(hart: Machine, va: int) -> bool:
    return hart.tlb.probe(1, va) is not None


def test_a_change_made_in_a_harts_ecall_is_a_shootdown_of_that_range_on_every_other_hart() -> None:
    m, space, exit_ = three_harts()
    changed_by = []

    def ecall(hart: Machine) -> EcallAction:
        if hart.hartid == 1:  # hart 1 takes PAGE_A's write permission away, from inside its run
            space.protect(PAGE_A, 4096, Pte.R | Pte.U)
            changed_by.append(hart.hartid)
        return EcallAction.RESUME

    m.add_ecall_handler(ecall)
    for hart in (m.harts[0], m.harts[2]):  # their TLBs hold both pages
        assert hart.run(CODE_VA, until=exit_).reason is StopReason.EXIT
        assert cached(hart, PAGE_A) and cached(hart, PAGE_B)
    assert m.harts[1].run(CODE_VA, until=exit_).reason is StopReason.EXIT
    assert changed_by == [1]
    for hart in m.harts:
        assert not cached(hart, PAGE_A), hart.hartid  # fenced: the old PTE is in no TLB
        assert cached(hart, PAGE_B), hart.hartid  # the rest stays
    assert [(h.shootdowns, h.shootdown_ipis) for h in m.harts] == [(0, 1), (1, 0), (0, 1)]
    assert m.harts[1].shootdown_ns == 0 and m.harts[0].shootdown_ns > 0 and m.harts[2].shootdown_ns > 0


def test_a_change_from_the_host_flushes_every_hart_without_a_shootdown() -> None:
    m, space, exit_ = three_harts()
    m.add_ecall_handler(lambda hart: EcallAction.RESUME)
    for hart in m.harts:
        assert hart.run(CODE_VA, until=exit_).reason is StopReason.EXIT
    space.protect(PAGE_B, 4096, Pte.R | Pte.U)  # no hart runs
    assert [(cached(h, PAGE_A), cached(h, PAGE_B)) for h in m.harts] == [(True, False)] * 3
    assert [(h.shootdowns, h.shootdown_ipis) for h in m.harts] == [(0, 0)] * 3


def test_one_hart_fences_itself_and_counts_no_shootdown() -> None:
    m = Machine()
    space = m.new_address_space(asid=1)
    space.map(PAGE_A, m.frames.alloc(), 4096, USER_RW)
    m.activate(space, priv=Priv.U)
    flushes = (m.cpu_tlb_flushes, m.cpu_tlb_page_flushes)
    space.unmap(PAGE_A, 4096)
    one_page = m.page_flush_reason is None  # Unicorn's TLB loses that page alone where it can, else all
    assert (m.cpu_tlb_flushes, m.cpu_tlb_page_flushes) == (flushes[0] + (not one_page), flushes[1] + one_page)
    assert (m.shootdowns, m.shootdown_ipis) == (0, 0)
