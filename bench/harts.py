"""What several harts cost: atomic increments per second on 1, 2 and 4 harts, and a TLB shootdown.

    python bench/harts.py [--quick] [--seed S]

*Atomics*: every hart runs the same ``amoadd.w`` loop on one shared word under the seeded
scheduler (machine/harts.py, turns of 1 to 64 instructions); the rate is increments of all harts
per wall-clock second, beside one hart run by a single ``Machine.run`` (no scheduler), the ratio
being the scheduler's price.  *Shootdowns*: hart 0 (S-mode) repeats a round of "fence itself,
IPI every other hart (CLINT msip), wait for every ack"; each other hart spins in S-mode, takes
the IPI in M-mode, passes it on as SSIP, and its S-mode handler fences (sfence.vma, trapped onto
its model TLB) and acks with amoadd.  The time of a round, per round and per target hart, is
shown beside a round without IPIs (hart 0 fencing itself alone, the others spinning).  *The
schedule's price*: the atomics under PCT (machine/schedules.py) beside the random schedule.
"""

from __future__ import annotations

import argparse
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.board import DEFAULT_BOARD, parse_board  # noqa: E402
from hwsim.machine.harts import HartScheduler, HartsOutcome  # noqa: E402
from hwsim.machine.schedules import PctSchedule  # noqa: E402
from hwsim.mmu import Pte  # noqa: E402
from hwsim.riscv import asm as A  # noqa: E402
from hwsim.riscv.priv import CSR_MIP, CSR_SIP, IRQ_M_SOFT, IRQ_S_SOFT, MSTATUS_SIE, Priv  # noqa: E402

CLINT = 0x0200_0000
CODE_VA, DATA_VA, CLINT_VA = 0x1_0000, 0x2_0000, 0x10_0000


def system(harts: int):
    data = tomllib.loads(DEFAULT_BOARD.read_text())
    data["board"]["harts"] = harts
    data["devices"]["uart0"]["backend"] = "memory"
    return parse_board(data, "virt.toml").build()


def atomics(harts: int, n: int, seed: int, *, scheduled: bool = True, budget=(1, 64), schedule=None) -> float:
    """Increments per second of ``harts`` harts, ``n`` amoadd.w each (``schedule``: machine/schedules.py)."""
    sys_ = system(harts)
    m = sys_.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    a = A.Assembler(code)
    a.li("t0", data).li("t1", n).emit(A.addi("t2", 0, 1)).label("loop")
    a.emit(A.amo("add", 0, "t0", "t2", double=False), A.addi("t1", "t1", -1)).branch("bne", "t1", 0, "loop")
    a.label("exit")
    m.phys.write(code, a.finish())
    start = time.perf_counter()
    if scheduled:
        sched = HartScheduler(m, seed=seed, clint=sys_.devices["clint"], budget=budget, schedule=schedule)
        for hart in range(harts):
            sched.start(hart, code, until=a.labels["exit"])
        assert sched.run().outcome is HartsOutcome.DONE
    else:
        assert m.run(code, until=a.labels["exit"]).ok
    elapsed = time.perf_counter() - start
    assert m.phys.read_u32(data) == harts * n
    return harts * n / elapsed


def shootdowns(harts: int, rounds: int, seed: int, *, ipis: bool = True) -> float:
    """Seconds per round of hart 0's shootdown of every other hart (or, without ``ipis``, of its own fence)."""
    sys_ = system(harts)
    m = sys_.machine
    code, data = m.frames.alloc(), m.frames.alloc()
    space = m.new_address_space(asid=1)
    space.map(CODE_VA, code, 0x1000, Pte.R | Pte.X)
    space.map(DATA_VA, data, 0x1000, Pte.R | Pte.W)
    space.map(CLINT_VA, CLINT, 0x1_0000, Pte.R | Pte.W)
    for hart in m.harts:
        hart.activate(space, priv=Priv.S)
    a = A.Assembler(CODE_VA)
    a.branch("bne", "a0", 0, "other")
    a.li("s1", DATA_VA).li("s2", rounds).li("s3", 0).li("s5", CLINT_VA).label("round")
    a.emit(A.sfence_vma())
    if ipis:
        a.li("t1", 1).li("t2", 1).label("send")  # MSIP<j> = 1 for j = 1 .. harts - 1
        a.emit(A.slli("t3", "t1", 2), A.add("t3", "t3", "s5"), A.sw("t2", "t3", 0), A.addi("t1", "t1", 1))
        a.li("t4", harts).branch("bne", "t1", "t4", "send")
        a.emit(A.addi("s3", "s3", harts - 1)).label("wait")
        a.emit(A.lw("t1", "s1", 0)).branch("bne", "t1", "s3", "wait")
    a.emit(A.addi("s2", "s2", -1)).branch("bne", "s2", 0, "round")
    a.emit(A.addi("t1", 0, 1), A.sw("t1", "s1", 8)).jump("exit")  # done
    a.label("other").li("s1", DATA_VA).label("spin")
    a.emit(A.lw("t1", "s1", 8)).branch("beq", "t1", 0, "spin").jump("exit")
    a.label("shandler")
    a.emit(A.sfence_vma())
    a.li("t6", 1 << IRQ_S_SOFT).emit(A.csrrc(0, CSR_SIP, "t6"))
    a.emit(A.addi("t6", 0, 1), A.amo("add", 0, "s1", "t6", double=False), A.SRET)
    a.label("mhandler")  # bare: clear this hart's msip, pass the IPI on as SSIP
    a.li("t5", CLINT).emit(A.slli("t6", "a0", 2), A.add("t6", "t6", "t5"), A.sw(0, "t6", 0))
    a.li("t6", 1 << IRQ_S_SOFT).emit(A.csrrs(0, CSR_MIP, "t6"), A.MRET)
    a.label("exit")
    m.phys.write(code, a.finish())
    for hart in m.harts[1:]:
        hart.set_reg("mtvec", code + a.labels["mhandler"] - CODE_VA)
        hart.set_reg("stvec", a.labels["shandler"])
        hart.set_reg("mideleg", 1 << IRQ_S_SOFT)
        hart.set_reg("mie", 1 << IRQ_M_SOFT | 1 << IRQ_S_SOFT)
        hart.set_reg("sstatus", hart.get_reg("sstatus") | MSTATUS_SIE)
    sched = HartScheduler(m, seed=seed, clint=sys_.devices["clint"])
    for hart in range(harts):
        sched.start(hart, CODE_VA, until=a.labels["exit"], priv=Priv.S)
    start = time.perf_counter()
    result = sched.run()
    elapsed = time.perf_counter() - start
    assert result.outcome is HartsOutcome.DONE, result.outcome
    if ipis:
        assert all(s.fences == rounds for s in result.stats)
        assert result.stats[0].ipis_sent == rounds * (harts - 1)
    return elapsed / rounds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer increments and rounds")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    n, rounds = (2_000, 20) if args.quick else (20_000, 100)
    alone = atomics(1, n, args.seed, scheduled=False)
    print("atomic increments (amoadd.w) per second, all harts together, by the turns' budget")
    print(f"  {'harts':>5}  {'1-64 insns':>12}  {'1-4096 insns':>12}  {'vs one Machine.run (1-64 / 1-4096)':>36}")
    print(f"  {'1*':>5}  {alone:>12,.0f}  {alone:>12,.0f}")
    for harts in (1, 2, 4):
        fine = atomics(harts, n, args.seed)
        coarse = atomics(harts, n, args.seed, budget=(1, 4096))
        print(f"  {harts:>5}  {fine:>12,.0f}  {coarse:>12,.0f}  {fine / alone:>20.3f}x / {coarse / alone:.3f}x")
    print("  (* one hart run by one Machine.run, without the scheduler)")
    print()
    print("the schedule's price: the same increments (1-64 insns a turn) under PCT (depth 3) beside random")
    print(f"  {'harts':>5}  {'random':>12}  {'pct:3':>12}  {'ratio':>6}")
    for harts in (2, 4):
        steps = harts * n * 3 // 32  # the run's turns: 3 instructions an increment, 32 a turn on average
        rand = atomics(harts, n, args.seed)
        pct = atomics(harts, n, args.seed, schedule=PctSchedule(3, steps))
        print(f"  {harts:>5}  {rand:>12,.0f}  {pct:>12,.0f}  {pct / rand:>5.2f}x")
    print()
    print("TLB shootdown: hart 0 fences, IPIs every other hart, waits for each one's fence and ack")
    print(f"  {'harts':>5}  {'us/round':>9}  {'us/target hart':>14}  {'own fence only, us/round':>24}  {'ratio':>6}")
    for harts in (2, 4):
        full = shootdowns(harts, rounds, args.seed)
        own = shootdowns(harts, rounds, args.seed, ipis=False)
        print(
            f"  {harts:>5}  {full * 1e6:>9.0f}  {full * 1e6 / (harts - 1):>14.0f}  {own * 1e6:>24.0f}  "
            f"{full / own:>5.1f}x"
        )


if __name__ == "__main__":
    main()
