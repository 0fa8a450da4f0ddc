"""MMU costs, measured side by side in one run.

    python bench/mmu.py [--quick]

Three ways to run the same guest code on the same Unicorn build:
  bare   M-mode, no translation (the ceiling)
  qemu   Unicorn's UC_TLB_CPU mode: QEMU's own Sv39 walker in C
  hwsim  UC_TLB_VIRTUAL mode: every TLB miss goes to hwsim's Python walker and TLB model

and prints guest instructions/s on a tight loop, the cost of a TLB miss
(a refill that walks the tables, and one that hits hwsim's model TLB), and
the cost of a full flush.  Ratios are against the same measurement on the
other configurations in this run; nothing is compared with a stored number.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from unicorn import Uc  # noqa: E402
from unicorn import riscv_const as rv  # noqa: E402
from unicorn import unicorn_const as uc_const  # noqa: E402

from hwsim import Machine, Pte  # noqa: E402
from hwsim.riscv import asm as A  # noqa: E402
from hwsim.riscv.priv import Priv  # noqa: E402

CODE = 0x10_0000
DATA = 0x1000_0000


def loop_program(iterations: int) -> A.Assembler:
    """4 instructions per iteration: a load, two adds and a branch, all on one data page."""
    a = A.Assembler(CODE)
    a.li("a1", DATA).li("t1", iterations).li("a0", 0)
    a.label("loop").emit(A.ld("t0", "a1", 0), A.add("a0", "a0", "t0"), A.addi("t1", "t1", -1))
    a.branch("bne", "t1", "zero", "loop").label("exit")
    return a


def pages_program(pages: int, rounds: int) -> A.Assembler:
    """One load per 4 KiB page over ``pages`` pages, ``rounds`` times."""
    a = A.Assembler(CODE)
    a.li("s1", rounds).li("t2", 4096)
    a.label("round").li("a1", DATA).li("t1", pages)
    a.label("loop").emit(A.ld("t0", "a1", 0), A.add("a1", "a1", "t2"), A.addi("t1", "t1", -1))
    a.branch("bne", "t1", "zero", "loop")
    a.emit(A.addi("s1", "s1", -1)).branch("bne", "s1", "zero", "round").label("exit")
    return a


class HwsimRig:
    name = "hwsim"

    def __init__(self, data_pages: int, *, tlb_capacity: int = 1 << 16):
        self.m = Machine(ram_size=256 << 20, tlb_capacity=tlb_capacity)
        self.space = self.m.new_address_space(asid=1)
        self.code_pa = self.m.frames.alloc(4)
        self.space.map(CODE, self.code_pa, 0x4000, Pte.R | Pte.X | Pte.U)
        self.space.map(DATA, self.m.frames.alloc(data_pages), data_pages * 4096, Pte.R | Pte.W | Pte.U, page_size=4096)
        self.m.activate(self.space, priv=Priv.U)

    def run(self, prog: A.Assembler) -> float:
        self.m.phys.write(self.code_pa, prog.finish())
        self.m.code_changed()
        self.m.sfence_vma()
        t = time.perf_counter()
        r = self.m.run(CODE, until=prog.labels["exit"])
        dt = time.perf_counter() - t
        assert r.ok, r.describe()
        return dt


class QemuRig:
    """The same tables, walked by QEMU in C (Unicorn's CPU TLB mode); or no translation (bare)."""

    def __init__(self, data_pages: int, *, bare: bool = False):
        self.name = "bare" if bare else "qemu"
        src = HwsimRig(data_pages)  # build identical page tables with hwsim, then copy RAM
        self.uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
        self.ram_base, self.ram_size = src.m.ram.base, src.m.ram.size
        self.uc.mem_map(self.ram_base, self.ram_size, uc_const.UC_PROT_ALL)
        self.uc.mem_write(self.ram_base, bytes(src.m.ram.view))
        self.code_pa = src.code_pa
        self.bare = bare
        if bare:  # identity: put code and data where the VAs point, in physical memory
            self.uc.mem_map(CODE, 0x4000, uc_const.UC_PROT_ALL)
            self.uc.mem_map(DATA, data_pages * 4096, uc_const.UC_PROT_ALL)
        else:
            self.uc.reg_write(rv.UC_RISCV_REG_SATP, src.space.satp)
            self.uc.reg_write(rv.UC_RISCV_REG_PRIV, Priv.U)

    def run(self, prog: A.Assembler) -> float:
        code = prog.finish()
        if self.bare:
            self.uc.mem_write(CODE, code)
        else:
            self.uc.mem_write(self.code_pa, code)
        self.uc.ctl_flush_tb()
        self.uc.ctl(uc_const.UC_CTL_TLB_FLUSH, uc_const.UC_CTL_IO_WRITE)
        t = time.perf_counter()
        self.uc.emu_start(CODE, prog.labels["exit"])
        return time.perf_counter() - t


def best(fn, repeat: int) -> float:
    return min(fn() for _ in range(repeat))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="smaller sizes (a few seconds)")
    args = ap.parse_args()
    iters = 2_000_000 if args.quick else 20_000_000
    pages = 2048 if args.quick else 8192
    repeat = 3

    rigs = [QemuRig(pages, bare=True), QemuRig(pages), HwsimRig(pages)]
    print(f"tight loop: {iters:,} iterations x 4 instructions, one data page (best of {repeat})")
    ips = {}
    for rig in rigs:
        dt = best(lambda rig=rig: rig.run(loop_program(iters)), repeat)
        ips[rig.name] = 4 * iters / dt
    for name, v in ips.items():
        print(f"  {name:6s} {v / 1e6:8.1f} M guest instructions/s   ({v / ips['bare']:.2f} x bare)")

    print(f"\nTLB misses: one load per page over {pages} pages (each round flushes nothing; the first misses)")
    per = {}
    for rig in rigs:
        # Round 1 misses on every page; later rounds hit (Unicorn's TLB holds 256 entries + a victim TLB,
        # so with thousands of pages they miss again in Unicorn but hit hwsim's model TLB).
        one = best(lambda rig=rig: rig.run(pages_program(pages, 1)), repeat)
        per[rig.name] = one / pages
    cold = per["hwsim"]
    print(f"  bare   {per['bare'] * 1e6:7.3f} us per page (no translation: loop cost)")
    print(f"  qemu   {per['qemu'] * 1e6:7.3f} us per page (QEMU walks in C)")
    print(f"  hwsim  {cold * 1e6:7.3f} us per page (hwsim walks 3 levels in Python)")
    miss_walk = cold - per["bare"]
    print(
        f"  => hwsim TLB miss with a walk: {miss_walk * 1e6:.2f} us "
        f"({miss_walk / max(per['qemu'] - per['bare'], 1e-12):.0f} x QEMU's)"
    )

    h = rigs[2]
    prog = pages_program(pages, 1)
    h.run(prog)  # fills the model TLB (capacity 64 Ki entries)
    times = []
    for _ in range(repeat):
        h.m.flush_cpu_tlb()  # Unicorn's TLB empty, the model TLB full: every miss is a model hit
        t = time.perf_counter()
        h.m.run(CODE, until=prog.labels["exit"])
        times.append(time.perf_counter() - t)
    warm = min(times) / pages
    print(f"  => hwsim refill from its model TLB (no walk): {(warm - per['bare']) * 1e6:.2f} us")

    n = 20000
    t = time.perf_counter()
    for _ in range(n):
        h.m.flush_cpu_tlb()
    unicorn_flush = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for _ in range(2000):
        h.m.sfence_vma()
    full = (time.perf_counter() - t) / 2000
    h.run(pages_program(pages, 1))
    entries = len(h.m.tlb)
    t = time.perf_counter()
    h.m.sfence_vma()
    loaded = time.perf_counter() - t
    print(
        f"\nflushes: Unicorn TLB flush {unicorn_flush * 1e6:.2f} us; sfence.vma (model + Unicorn) "
        f"{full * 1e6:.2f} us empty, {loaded * 1e6:.1f} us with {entries} model entries"
    )


if __name__ == "__main__":
    main()
