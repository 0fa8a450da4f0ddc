"""machine/harts.py and Machine.add_hart: several harts over one RAM, seeded turns, IPIs, wfi, TLB shootdowns."""

from __future__ import annotations

import tomllib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.board import DEFAULT_BOARD, BoardError, parse_board
from hwsim.errors import ConfigError
from hwsim.machine import Machine, StopReason
from hwsim.machine.harts import HartScheduler, HartsOutcome, HartState
from hwsim.mmu import Pte
from hwsim.riscv import asm as A
from hwsim.riscv.priv import (
    CSR_MIP,
    CSR_SATP,
    CSR_SIP,
    IRQ_M_SOFT,
    IRQ_S_SOFT,
    MCAUSE_INTERRUPT,
    MSTATUS_MIE,
    MSTATUS_SIE,
    Priv,
)

CLINT = 0x0200_0000
SEEDS = range(12)


def board_data(harts=None) -> dict:
    data = tomllib.loads(DEFAULT_BOARD.read_text())
    if harts is not None:
        data["board"]["harts"] = harts
    data["devices"]["uart0"]["backend"] = "memory"
    return data


def system(harts: int):
    return parse_board(board_data(harts), "virt-harts.toml").build()


def scheduler(sys, seed: int, **kw) -> HartScheduler:
    return HartScheduler(sys.machine, seed=seed, clint=sys.devices["clint"], **kw)


# -- the board key and the harts ------------------------------------------------------------------


def test_a_board_has_one_hart_unless_it_says_more():
    sys1 = parse_board(board_data(), "virt.toml").build()
    assert sys1.board.harts == 1 and sys1.machine.harts == [sys1.machine]
    sys4 = system(4)
    m = sys4.machine
    assert sys4.board.harts == 4 and [h.hartid for h in m.harts] == [0, 1, 2, 3] and m.harts[0] is m
    # One RAM buffer, one frame allocator, one set of hooks; a TLB and a CPU each.
    assert all(h.phys is m.phys and h.ram is m.ram and h.frames is m.frames for h in m.harts)
    assert len({id(h.tlb) for h in m.harts}) == 4 and len({id(h._uc) for h in m.harts}) == 4
    assert all(h.harts is m.harts for h in m.harts)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (0, "virt-harts.toml: [board] harts: must be 1 .. 8, not 0"),
        (9, "virt-harts.toml: [board] harts: must be 1 .. 8, not 9"),
        (-1, "virt-harts.toml: [board] harts: must be 1 .. 8, not -1"),
        ("two", "virt-harts.toml: [board] harts: must be an integer, not str 'two'"),
        (True, "virt-harts.toml: [board] harts: must be an integer, not bool True"),
    ],
)
def test_a_bad_hart_count_names_the_file_and_key(value, message):
    with pytest.raises(BoardError) as info:
        parse_board(board_data(value), "virt-harts.toml")
    assert str(info.value) == message
    assert (info.value.table, info.value.key) == ("board", "harts")


def test_a_machine_refuses_a_ninth_hart():
    m = Machine(ram_size=1 << 20, harts=7)
    assert [h.hartid for h in m.add_hart().harts] == list(range(8))
    with pytest.raises(ConfigError, match="a machine has at most 8 harts"):
        m.add_hart()
    for bad in (0, 9, True, "2"):
        with pytest.raises(ConfigError, match=f"a machine has 1 to 8 harts, not {bad!r}"):
            Machine(ram_size=1 << 20, harts=bad)


def test_harts_share_ram_and_device_windows_and_keep_their_own_registers():
    sys = system(2)
    m = sys.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", data).emit(A.slli("t1", "a0", 3), A.add("t0", "t0", "t1"), A.addi("t2", "a0", 40))
    a.emit(A.sd("t2", "t0", 0))  # data[hartid] = 40 + hartid
    a.li("t0", CLINT + 0x4000).emit(A.slli("t1", "a0", 2), A.add("t0", "t0", "t1"), A.addi("t1", "a0", 7))
    a.emit(A.sw("t1", "t0", 0))  # hart 0: MTIMECMP_LO = 7, hart 1: MTIMECMP_HI = 8
    a.label("exit")
    m.phys.write(code, a.finish())
    sched = scheduler(sys, 3)
    for hart in range(2):
        sched.start(hart, code, until=a.labels["exit"])
    result = sched.run()
    assert result.outcome is HartsOutcome.DONE
    assert [m.phys.read_u64(data + 8 * i) for i in range(2)] == [40, 41]
    assert sys.devices["clint"].mtimecmp == 8 << 32 | 7
    assert [h.get_reg("a0") for h in m.harts] == [0, 1]
    assert [h.get_reg("t2") for h in m.harts] == [40, 41]


def test_scheduler_arguments_are_checked():
    sys = system(2)
    with pytest.raises(ConfigError, match=r"a turn's budget must be 1 <= least <= most instructions, not \(0, 4\)"):
        scheduler(sys, 1, budget=(0, 4))
    with pytest.raises(ConfigError, match="the hart seed must be an integer, not True"):
        scheduler(sys, True)
    with pytest.raises(ConfigError, match=r"no hart 2: the machine has 2 \(0 .. 1\)"):
        scheduler(sys, 1).start(2, 0)


# -- races, atomics, a lock ----------------------------------------------------------------------


def counter(seed: int, kind: str, *, harts: int = 2, n: int = 100):
    """``harts`` harts each add 1 to a shared word ``n`` times: plain lw/add/sw, amoadd.w, or lw/add/sw
    under an LR/SC spinlock.  Returns (the word, the run's result, the machine)."""
    sys = system(harts)
    m = sys.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", data).li("t1", n).li("t3", data + 8)  # the word at data, the lock at data + 8
    a.label("loop")
    if kind == "amo":
        a.emit(A.addi("t2", 0, 1), A.amo("add", 0, "t0", "t2", double=False))
    else:
        if kind == "lock":
            a.emit(A.addi("t4", 0, 1)).label("acquire")
            a.emit(A.lr("t5", "t3", double=False)).branch("bne", "t5", 0, "acquire")
            a.emit(A.sc("t5", "t3", "t4", double=False)).branch("bne", "t5", 0, "acquire")
        a.emit(A.lw("t2", "t0", 0), A.addi("t2", "t2", 1), A.sw("t2", "t0", 0))
        if kind == "lock":
            a.emit(A.fence(), A.sw(0, "t3", 0))  # release
    a.emit(A.addi("t1", "t1", -1)).branch("bne", "t1", 0, "loop")
    a.label("exit")
    m.phys.write(code, a.finish())
    sched = scheduler(sys, seed, budget=(1, 16))
    for hart in range(harts):
        sched.start(hart, code, until=a.labels["exit"])
    result = sched.run()
    assert result.outcome is HartsOutcome.DONE
    return m.phys.read_u32(data), result, m


def test_a_racy_counter_loses_updates_and_amoadd_never_does():
    racy = [counter(seed, "plain")[0] for seed in SEEDS]
    assert any(total < 200 for total in racy), racy
    assert all(counter(seed, "amo")[0] == 200 for seed in SEEDS)


def test_an_lr_sc_spinlock_loses_nothing():
    for seed in range(6):
        total, _, _ = counter(seed, "lock", harts=3, n=40)
        assert total == 120, (seed, total)


def test_a_seed_replays_its_interleaving_and_another_seed_does_not():
    runs = {seed: counter(seed, "plain") for seed in range(6)}
    for seed in (0, 3):
        total, result, _ = counter(seed, "plain")
        assert (total, result.trace_hash, result.turns) == (
            runs[seed][0],
            runs[seed][1].trace_hash,
            runs[seed][1].turns,
        )
        assert result.stats == runs[seed][1].stats
    assert len({r.trace_hash for _, r, _ in runs.values()}) == len(runs)
    assert len({total for total, _, _ in runs.values()}) > 1


@settings(max_examples=examples(30), deadline=None)
@given(seed=st.integers(0, 2**63), harts=st.integers(2, 4), kind=st.sampled_from(["plain", "amo", "lock"]))
def test_determinism_same_seed_same_trace_and_state(seed, harts, kind):
    runs = []
    for _ in range(2):
        total, result, m = counter(seed, kind, harts=harts, n=20)
        registers = [[h.get_reg(r) for r in ("pc", "t1", "t2", "t5")] for h in m.harts]
        runs.append((total, result.trace_hash, result.turns, result.stats, registers))
    assert runs[0] == runs[1]
    if kind != "plain":
        assert runs[0][0] == 20 * harts


# -- interrupts: IPIs and wfi ----------------------------------------------------------------------


def ipi_program(m, code, data, *, mie_global: bool):
    """Hart 1 enables its software interrupt and waits (wfi); hart 0 counts to 50 in data, then writes
    MSIP1.  Hart 1's handler (mtvec) records mcause and mepc, clears its msip and returns."""
    a = A.Assembler(code)
    a.branch("bne", "a0", 0, "hart1")
    a.li("t0", data).li("t1", 50).label("count")  # hart 0
    a.emit(A.lw("t2", "t0", 0), A.addi("t2", "t2", 1), A.sw("t2", "t0", 0), A.addi("t1", "t1", -1))
    a.branch("bne", "t1", 0, "count")
    a.li("t0", CLINT + 4).emit(A.addi("t1", 0, 1), A.sw("t1", "t0", 0))  # MSIP1 = 1: the IPI
    a.jump("exit")
    a.label("hart1")
    a.li("t0", 1 << IRQ_M_SOFT).emit(A.csrrs(0, 0x304, "t0"))  # mie.MSIE
    if mie_global:
        a.li("t0", MSTATUS_MIE).emit(A.csrrs(0, 0x300, "t0"))
    a.li("s1", data)
    a.label("wait").emit(A.WFI)
    a.label("woken").emit(A.lw("s2", "s1", 0), A.sw("s2", "s1", 16))  # what hart 0 had counted
    a.jump("exit")
    a.label("handler")
    a.emit(A.csrrs("t5", 0x342, 0), A.sd("t5", "s1", 24))  # mcause
    a.emit(A.csrrs("t5", 0x341, 0), A.sd("t5", "s1", 32))  # mepc
    a.li("t5", CLINT + 4).emit(A.sw(0, "t5", 0), A.MRET)
    a.label("exit")
    m.phys.write(code, a.finish())
    return a.labels


@pytest.mark.parametrize("mie_global", [True, False], ids=["handler", "no-handler"])
def test_an_ipi_wakes_a_hart_from_wfi(mie_global):
    sys = system(2)
    m = sys.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    labels = ipi_program(m, code, data, mie_global=mie_global)
    m.harts[1].set_reg("mtvec", labels["handler"])
    for seed in range(4):
        m.phys.fill(data, 64)
        sched = scheduler(sys, seed)
        for hart in range(2):
            sched.start(hart, code, until=labels["exit"])
        result = sched.run()
        sched.close()
        assert result.outcome is HartsOutcome.DONE
        assert m.phys.read_u32(data + 16) == 50  # woken only after hart 0 counted to 50 and sent the IPI
        s0, s1 = result.stats
        assert (s0.ipis_sent, s0.ipis_received, s1.ipis_sent, s1.ipis_received) == (1, 0, 0, 1)
        assert s1.wfi_parks == 1
        if mie_global:  # the handler ran, between the wfi and the instruction after it
            assert s1.interrupts == 1
            assert m.phys.read_u64(data + 24) == MCAUSE_INTERRUPT | IRQ_M_SOFT
            assert m.phys.read_u64(data + 32) == labels["woken"]
        else:  # MIE clear: the pending interrupt ends the wfi and is not taken (the spec's rule)
            assert s1.interrupts == 0 and m.phys.read_u64(data + 24) == 0
            sys.devices["clint"].mmio_write(4, 4, 0)


def test_a_hart_waiting_for_an_interrupt_nobody_sends_is_a_deadlock():
    sys = system(2)
    m = sys.machine
    code = m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", 1 << IRQ_M_SOFT).emit(A.csrrs(0, 0x304, "t0")).label("wait").emit(A.WFI).jump("wait")
    a.label("exit")
    m.phys.write(code, a.finish())
    sched = scheduler(sys, 5)
    sched.start(1, code, until=a.labels["exit"])
    result = sched.run()
    assert result.outcome is HartsOutcome.DEADLOCK
    assert sched.state(1) is HartState.PARKED and sched.state(0) is HartState.IDLE
    assert result.stats[1].wfi_parks == 1


def test_a_hart_that_stops_ends_the_run_and_says_which():
    sys = system(2)
    m = sys.machine
    code = m.frames.alloc()
    a = A.Assembler(code)
    a.branch("beq", "a0", 0, "exit").emit(A.ECALL).label("exit")
    m.phys.write(code, a.finish())
    sched = scheduler(sys, 1)
    for hart in range(2):
        sched.start(hart, code, until=a.labels["exit"])
    result = sched.run()
    assert result.outcome is HartsOutcome.STOPPED and result.hartid == 1
    assert result.result is not None and result.result.reason is StopReason.ECALL


# -- TLB shootdowns ---------------------------------------------------------------------------------

CODE_VA, DATA_VA, X_VA, PT_VA, CLINT_VA = 0x1_0000, 0x2_0000, 0x3_0000, 0x4_0000, 0x10_0000
OLD, NEW = 0x0DD, 0x4E3


def shootdown(seed: int, *, remote_fence: bool = True, max_turns: int = 100_000):
    """Hart 0 (S-mode) points X at another page, fences itself, raises a flag, lets hart 1 run, then
    sends an IPI and waits for the ack.  Hart 1 (S-mode) reads X in a loop, counting reads of the old
    page after the flag; its IPI goes to M-mode (mtvec), which raises SSIP and returns; the S-mode
    handler (stvec, SSIP delegated) fences (unless ``remote_fence`` is off), acks and returns."""
    sys = system(2)
    m = sys.machine
    code, data, old_page, new_page = (m.frames.alloc() for _ in range(4))
    m.phys.write_u32(old_page, OLD)
    m.phys.write_u32(new_page, NEW)
    space = m.new_address_space(asid=1)
    rw = Pte.R | Pte.W
    space.map(CODE_VA, code, 0x1000, Pte.R | Pte.X)
    space.map(DATA_VA, data, 0x1000, rw)
    space.map(X_VA, old_page, 0x1000, rw)
    space.map(CLINT_VA, CLINT, 0x1_0000, rw)
    for hart in m.harts:
        hart.activate(space, priv=Priv.S)
    leaf = m.translate(X_VA, priv=Priv.S).steps[-1]
    space.map(PT_VA, leaf.pte_addr & ~0xFFF, 0x1000, rw)  # the page table page holding X's leaf
    new_pte = (leaf.pte & 0x3FF) | (new_page >> 12) << 10

    a = A.Assembler(CODE_VA)
    a.branch("bne", "a0", 0, "hart1")
    # hart 0: the change, its own fence, the flag, some time, the IPI, the ack
    a.li("s1", DATA_VA).label("ready").emit(A.lw("t1", "s1", 32)).branch("beq", "t1", 0, "ready")
    a.li("t0", PT_VA + (leaf.pte_addr & 0xFFF)).li("t1", new_pte).emit(A.sd("t1", "t0", 0))
    a.emit(A.sfence_vma())
    a.li("t0", X_VA).emit(A.lw("t1", "t0", 0), A.sw("t1", "s1", 40))  # what hart 0 sees now
    a.emit(A.addi("t1", 0, 1), A.sw("t1", "s1", 0))  # the flag
    a.li("t1", 300).label("delay").emit(A.addi("t1", "t1", -1)).branch("bne", "t1", 0, "delay")
    a.li("t0", CLINT_VA + 4).emit(A.addi("t1", 0, 1), A.sw("t1", "t0", 0))  # MSIP1: the IPI
    a.label("ack").emit(A.lw("t1", "s1", 8)).branch("beq", "t1", 0, "ack")
    a.jump("exit")
    # hart 1: read X once (its TLB holds the old page), say so, then read X until it shows the new
    # page, counting reads of the old one after the flag, and after the ack (read before X)
    a.label("hart1").li("s1", DATA_VA).li("s2", X_VA).li("s4", NEW)
    a.emit(A.lw("s3", "s2", 0), A.addi("t1", 0, 1), A.sw("t1", "s1", 32))
    a.label("read").emit(A.lw("t2", "s1", 8), A.lw("s3", "s2", 0), A.lw("t1", "s1", 0))
    a.branch("beq", "s3", "s4", "exit")
    a.branch("beq", "t1", 0, "read")
    a.emit(A.lw("t1", "s1", 16), A.addi("t1", "t1", 1), A.sw("t1", "s1", 16))  # a stale read
    a.branch("beq", "t2", 0, "read")
    a.emit(A.lw("t1", "s1", 24), A.addi("t1", "t1", 1), A.sw("t1", "s1", 24))  # stale after the ack
    a.jump("read")
    a.label("shandler")  # S-mode: the remote fence
    if remote_fence:
        a.emit(A.sfence_vma())
    a.li("t6", 1 << IRQ_S_SOFT).emit(A.csrrc(0, CSR_SIP, "t6"))
    a.emit(A.addi("t6", 0, 1), A.sw("t6", "s1", 8), A.SRET)
    a.label("mhandler")  # M-mode (bare): clear msip, pass the IPI on to S-mode as SSIP
    a.li("t6", CLINT + 4).emit(A.sw(0, "t6", 0))
    a.li("t6", 1 << IRQ_S_SOFT).emit(A.csrrs(0, CSR_MIP, "t6"), A.MRET)
    a.label("exit")
    m.phys.write(code, a.finish())
    h1 = m.harts[1]
    h1.set_reg("mtvec", code + a.labels["mhandler"] - CODE_VA)
    h1.set_reg("stvec", a.labels["shandler"])
    h1.set_reg("mideleg", 1 << IRQ_S_SOFT)
    h1.set_reg("mie", 1 << IRQ_M_SOFT | 1 << IRQ_S_SOFT)
    h1.set_reg("sstatus", h1.get_reg("sstatus") | MSTATUS_SIE)
    sched = scheduler(sys, seed)
    for hart in range(2):
        sched.start(hart, CODE_VA, until=a.labels["exit"], priv=Priv.S)
    result = sched.run(max_turns=max_turns)
    words = {name: m.phys.read_u32(data + off) for name, off in (("ack", 8), ("stale", 16), ("late", 24), ("h0", 40))}
    return result, words, m


def test_a_remote_fence_after_an_ipi_ends_the_stale_translation():
    for seed in range(4):
        result, words, m = shootdown(seed)
        assert result.outcome is HartsOutcome.DONE, (seed, result.outcome)
        assert words["h0"] == NEW  # hart 0 fenced itself and sees the new page at once
        assert words["stale"] > 0  # hart 1 read the old page after the change (its TLB entry)
        assert words["ack"] == 1 and words["late"] == 0  # after its fence, only the new page
        s0, s1 = result.stats
        assert (s0.ipis_sent, s1.ipis_received, s1.interrupts) == (1, 1, 1)
        assert (s0.fences, s1.fences) == (1, 1)
        assert m.harts[1].guest_fences == 1


def test_without_the_remote_fence_the_other_hart_keeps_its_stale_translation():
    result, words, m = shootdown(2, remote_fence=False, max_turns=3000)
    assert result.outcome is HartsOutcome.LIMIT  # hart 1 never sees the new page
    assert words["ack"] == 1 and words["late"] > 0
    assert result.stats[1].fences == 0 and result.stats[1].ipis_received == 1
    # The entry is still in hart 1's model TLB, and the page tables say otherwise.
    assert m.harts[1].tlb.lookup(1, X_VA) is not None
    assert m.harts[1].tlb.lookup(1, X_VA).pa_of(X_VA) != m.translate(X_VA, priv=Priv.S).translation.pa


def test_s_mode_satp_accesses_are_carried_out_under_tvm():
    m = Machine(ram_size=1 << 20)
    space = m.new_address_space(asid=3)
    code = m.frames.alloc()
    space.map(0x1_0000, code, 0x1000, Pte.R | Pte.X)
    m.activate(space, priv=Priv.S)
    m.trap_guest_fences()
    a = A.Assembler(0x1_0000)
    a.emit(A.csrrs("a1", CSR_SATP, 0), A.csrrw("a2", CSR_SATP, "a1"), A.sfence_vma("a1", 0))
    a.emit(A.csrrs("a3", 0x5C0, 0)).label("exit")  # a real illegal instruction (no such CSR)
    m.phys.write(code, a.finish())
    result = m.run(0x1_0000, until=a.labels["exit"])
    assert result.reason is StopReason.EXCEPTION and result.pc == a.labels["exit"] - 4
    assert m.get_reg("a1") == m.get_reg("a2") == space.satp
    assert m.guest_fences == 1


def test_the_clint_has_an_msip_register_per_hart():
    sys = system(1)
    clint = sys.devices["clint"]
    clint.mmio_write(4 * 3, 4, 1)
    assert [line.level for line in clint.software_irqs] == [False, False, False, True, False, False, False, False]
    assert clint.mmio_read(4 * 3, 4) == 1 and clint.software_irqs[0] is clint.software_irq
    clint.mmio_write(4 * 7, 4, 2)
    assert [i.message for i in clint.issues] == ["write of 0x2 to MSIP7 sets reserved bits 0x2 (ignored)"]
    clint.reset()
    assert not any(line.level for line in clint.software_irqs)


def test_a_requested_stop_ends_the_run_and_run_goes_on_after_it():
    sys = system(2)
    m = sys.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", data).emit(A.amo("add", 0, "t0", "a0", double=False))  # hart 1 adds 1, hart 0 adds 0
    a.li("t1", CLINT).emit(A.sw("a0", "t1", 0)).label("exit")  # hart 1: MSIP (hart 0's) = 1
    m.phys.write(code, a.finish())
    sched = scheduler(sys, 4)
    sys.devices["clint"].software_irqs[0].observe(lambda level: sched.request_stop())
    for hart in range(2):
        sched.start(hart, code, until=a.labels["exit"])
    first = sched.run()
    assert first.outcome is HartsOutcome.REQUESTED  # hart 1 stopped in its MSIP store (run repeats it)
    assert first.stats[1].ipis_sent == 1 and first.stats[0].ipis_received == 1
    second = sched.run()
    assert second.outcome is HartsOutcome.DONE and m.phys.read_u32(data) == 1


# -- native firmware on several harts ------------------------------------------------------------

HARTS_FIRMWARE = DEFAULT_BOARD.parents[1] / "drivers" / "examples" / "harts"


@pytest.fixture(scope="module")
def harts_elf() -> bytes:
    from hwsim.driver.build import build_driver

    return build_driver(HARTS_FIRMWARE, native=True).read_bytes()


def firmware_run(harts_elf, harts: int, seed: int | None):
    from hwsim.driver.firmware import FirmwareRun

    return FirmwareRun(system(harts), harts_elf, hart_seed=seed).run()


def test_native_firmware_runs_hart_main_on_every_other_hart(harts_elf):
    one = firmware_run(harts_elf, 1, None)
    assert (one.result, one.log, one.harts, one.ok) == (0, ["plain 200, atomic 200"], (), True)
    plains = {}
    for seed in range(3):
        report = firmware_run(harts_elf, 4, seed)
        (line,) = report.log
        plain = int(line.split(",")[0].removeprefix("plain "))
        assert line == f"plain {plain}, atomic 800" and report.result == (0 if plain == 800 else -5)
        assert report.hart_seed == seed and [s.hartid for s in report.harts] == [0, 1, 2, 3]
        assert all(s.turns > 0 for s in report.harts)
        again = firmware_run(harts_elf, 4, seed)
        assert (again.log, again.hart_trace) == (report.log, report.hart_trace)
        plains[seed] = plain
    assert min(plains.values()) < 800 and len({*plains.values()}) > 1  # racy, and by the seed
    text = report.format()
    assert f"4 harts, seed 2 (replay: --hart-seed 2), trace {report.hart_trace}" in text
    assert "  hart 3: " in text


def two_hart_board(tmp_path):
    board = tmp_path / "virt2.toml"
    board.write_text(DEFAULT_BOARD.read_text().replace('name = "virt"', 'name = "virt2"\nharts = 2', 1))
    return board


def test_hwsim_run_takes_a_hart_seed(harts_elf, tmp_path, capsys):
    from hwsim.cli import main

    board = two_hart_board(tmp_path)
    elf = tmp_path / "harts.elf"
    elf.write_bytes(harts_elf)
    status = main(["run", str(board), str(elf), "--hart-seed", "5", "--option", "uart0.backend=memory"])
    err = capsys.readouterr().err
    assert "2 harts, seed 5 (replay: --hart-seed 5)" in err and "[driver] plain " in err
    assert status == (0 if "plain 400, atomic 400" in err else 1)
    wasm = tmp_path / "probe.wat"
    wasm.write_text('(module (func (export "probe") (result i32) (i32.const 0)))')
    assert main(["run", str(board), str(wasm), "--hart-seed", "5"]) == 2
    err = capsys.readouterr().err
    assert "hwsim: error: --hart-seed applies to native firmware: a sandboxed driver runs on hart 0" in err


def test_explore_finds_a_seed_whose_interleaving_loses_updates_and_replays_it(harts_elf, tmp_path, capsys, monkeypatch):
    from hwsim.cli import main

    monkeypatch.setattr("sys.stdin", None)  # no console input to read
    board = two_hart_board(tmp_path)
    elf = tmp_path / "harts.elf"
    elf.write_bytes(harts_elf)
    common = [str(board), str(elf), "--option", "uart0.backend=memory"]
    assert main(["run", *common, "--explore", "20"]) == 1
    err = capsys.readouterr().err
    assert "explore: seed " in err and "probe() returned -5 (EIO)" in err
    seed = int(err.split("explore: seed ", 1)[1].split()[0])
    assert "\nreplay: hwsim " in err and err.rstrip().endswith(f"--seed {seed}")  # (the argv is pytest's here)
    assert main(["run", *common, "--seed", str(seed)]) == 1  # the replay loses updates too
    replay = capsys.readouterr().err
    assert f"2 harts, seed {seed} (replay: --hart-seed {seed})" in replay
    assert main(["run", *common, "--explore", "2", "--hart-seed", "1"]) == 2
    assert "--explore chooses the hart seed: seed S interleaves the harts with S too" in capsys.readouterr().err
    one = tmp_path / "virt1.toml"
    one.write_text(DEFAULT_BOARD.read_text())
    assert main(["run", str(one), str(elf), "--option", "uart0.backend=memory", "--explore", "3"]) == 0


@pytest.mark.parametrize(("entry", "value"), [("probe", 0), ("busy", 5)])
def test_native_interrupt_handlers_run_between_the_harts_turns(entry, value, tmp_path):
    """drivers/examples/timer_irq (no hart_main) on a two-hart board: hart 1 idles; the RTC's interrupts
    reach the handler, on hart 0, whichever hart was running (busy() spins without calling the host)."""
    from hwsim.driver.build import build_driver
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.testing import make_board

    system_, _ = make_board(two_hart_board(tmp_path))
    elf = build_driver(HARTS_FIRMWARE.parent / "timer_irq", native=True).read_bytes()
    report = FirmwareRun(system_, elf).run(entry)
    assert report.result == value and report.irq_calls == 5 and report.ok, report.format()
    assert len(report.harts) == 2 and report.harts[1].turns == 0 and report.harts[0].turns > 0


def test_a_wall_clock_limit_stops_every_hart(tmp_path):
    from hwsim.driver.build import build_driver
    from hwsim.driver.control import StopCause
    from hwsim.driver.firmware import FirmwareRun

    src = tmp_path / "harts_spin"
    src.mkdir()
    (src / "spin.c").write_text(
        '#include "hwsim.h"\n'
        "volatile int spins;\n"
        "__attribute__((noinline, used)) int hart_main(int hartid) { for (;;) spins++; }\n"
        "int probe(void) { return 0; }\n"
    )
    elf = build_driver(src, native=True).read_bytes()
    report = FirmwareRun(system(2), elf, wall_limit_s=0.3).run()
    assert report.stopped is StopCause.TIME_LIMIT and report.result is None
    assert report.failure is not None
    assert report.failure.startswith("wall-clock limit of 0.3 s reached (in hart 1: hart_main+0x"), report.failure


def test_a_self_ipi_is_taken_at_the_next_turn_through_a_vectored_mtvec():
    sys = system(2)
    m = sys.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    a = A.Assembler(code)
    a.li("s1", data).li("t0", 1 << IRQ_M_SOFT).emit(A.csrrs(0, 0x304, "t0"))  # mie.MSIE
    a.li("t0", MSTATUS_MIE).emit(A.csrrs(0, 0x300, "t0"))
    a.li("t0", CLINT).emit(A.slli("t1", "a0", 2), A.add("t0", "t0", "t1"), A.addi("t1", 0, 1), A.sw("t1", "t0", 0))
    a.label("spin").emit(A.lw("t1", "s1", 0)).branch("beq", "t1", 0, "spin")  # until the handler ran
    a.jump("exit")
    a.label("vectors").emit(*[A.jal(0, 0)] * 3)  # causes 0-2: never taken (a jump to itself)
    a.jump("msi")  # cause 3: the machine software interrupt
    a.label("msi").li("t5", CLINT).emit(A.slli("t6", "a0", 2), A.add("t5", "t5", "t6"), A.sw(0, "t5", 0))
    a.emit(A.addi("t6", 0, 1), A.sw("t6", "s1", 0), A.MRET)
    a.label("exit")
    m.phys.write(code, a.finish())
    m.set_reg("mtvec", a.labels["vectors"] | 1)  # vectored
    sched = scheduler(sys, 2)
    sched.start(0, code, until=a.labels["exit"])
    result = sched.run()
    assert result.outcome is HartsOutcome.DONE
    assert (result.stats[0].ipis_sent, result.stats[0].ipis_received, result.stats[0].interrupts) == (1, 1, 1)
    assert m.get_reg("mcause") == MCAUSE_INTERRUPT | IRQ_M_SOFT
    assert m.get_reg("mstatus") & MSTATUS_MIE  # mret restored it from MPIE


def test_a_hart_added_later_sees_the_windows_already_there_and_tracks_mmio_pcs():
    m = Machine(ram_size=1 << 20)

    class Recorder:
        def __init__(self):
            self.writes = []

        def mmio_read(self, offset, size):
            return 0

        def mmio_write(self, offset, size, value):
            self.writes.append((offset, value, [h.mmio_pc for h in m.harts]))

    device = Recorder()
    m.phys.add_mmio(0x1000_0000, 0x1000, device, name="rec")
    m.track_mmio_pcs()
    hart = m.add_hart()
    code = m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", 0x1000_0000).emit(A.addi("t1", 0, 9)).label("store").emit(A.sw("t1", "t0", 8)).label("exit")
    m.phys.write(code, a.finish())
    assert hart.run(code, until=a.labels["exit"]).reason is StopReason.EXIT
    assert device.writes == [(8, 9, [None, a.labels["store"]])]  # hart 1 serves it; hart 0 is not in an access


def test_a_device_issue_from_hart_1_names_the_pc_and_source_of_hart_1s_store():
    """A device names the guest code behind its issue from whichever hart is serving the access, not
    only hart 0 (System.locate_access asks Machine.serving_mmio_pc)."""
    sys = system(2)
    m = sys.machine
    m.track_mmio_pcs()
    seen = []
    sys.add_access_locator(lambda pc: seen.append(pc) or f"driver.c:{pc:#x}")
    code = m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", 0x1000_0000).emit(A.addi("t1", 0, 1)).label("store").emit(A.sb("t1", "t0", 5)).label("exit")
    m.phys.write(code, a.finish())
    assert m.harts[1].run(code, until=a.labels["exit"]).reason is StopReason.EXIT
    [issue] = sys.issues()  # LSR is read-only
    assert (issue.pc, issue.source) == (a.labels["store"], f"driver.c:{a.labels['store']:#x}")
    assert seen == [a.labels["store"]]
    assert m.serving_mmio_pc is None and sys.locate_access() == (None, "")  # outside an access


def native_firmware(tmp_path, name: str, source: str) -> bytes:
    from hwsim.driver.build import build_driver

    src = tmp_path / name
    src.mkdir()
    (src / f"{name}.c").write_text('#include "hwsim.h"\n' + source)
    return build_driver(src, native=True).read_bytes()


IPI_FIRMWARE = """
volatile uint32_t woken;
__attribute__((noinline, used)) int hart_main(int hartid) {
    volatile uint32_t *msip = (volatile uint32_t *)hwsim_mmio_map("clint") + hartid;
    __asm__ volatile("csrs mie, %0" :: "r"(1 << 3));  /* MSIE; mstatus.MIE stays clear */
    while (!*msip) __asm__ volatile("wfi");
    *msip = 0;
    woken = 1;
    return 0;
}
int probe(void) {
    volatile uint32_t *msip = (volatile uint32_t *)hwsim_mmio_map("clint");
    for (volatile int i = 0; i < 100; i++) {}
    msip[1] = 1;  /* the IPI */
    while (!woken) {}
    return 7;
}
"""


def test_native_firmware_wakes_a_hart_with_an_ipi(tmp_path):
    from hwsim.driver.firmware import FirmwareRun

    elf = native_firmware(tmp_path, "harts_ipi", IPI_FIRMWARE)
    for seed in range(3):
        report = FirmwareRun(system(2), elf, hart_seed=seed).run()
        assert report.result == 7 and report.ok, report.format()
        h0, h1 = report.harts
        assert (h0.ipis_sent, h1.ipis_received, h1.wfi_parks, h1.interrupts) == (1, 1, 1, 0)
        assert report.mmio_accesses >= 3  # msip written by hart 0, read and cleared by hart 1


def test_native_firmware_whose_harts_all_wait_is_a_deadlock(tmp_path):
    from hwsim.driver.firmware import FirmwareRun
    from hwsim.driver.runner import DriverError

    elf = native_firmware(
        tmp_path,
        "harts_wait",
        """
__attribute__((noinline, used)) int hart_main(int hartid) {
    __asm__ volatile("csrs mie, %0" :: "r"(1 << 3));
    for (;;) __asm__ volatile("wfi");
}
int probe(void) { return 0; }
""",
    )
    with pytest.raises(DriverError) as info:
        FirmwareRun(system(2), elf).run()
    assert (
        str(info.value) == "firmware on 2 harts: every hart left waits for an interrupt (wfi) and nothing can raise one"
    )
