"""``hwsim demo``: a guided run of the machine and its MMU on the default memory map.

It builds an Sv39 address space in simulated RAM, shows a page walk, runs a
U-mode program that sums a buffer (hardware sets the A and D bits as it
goes), then runs the same program with an off-by-one length so it reads past
the buffer: the CPU stops with a page fault, reported with the faulting
instruction and the walk that explains it.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..riscv import asm as A

CODE_VA = 0x0001_0000
BUF_VA = 0x0010_0000
BUF_WORDS = 1024  # two 4 KiB pages of u64
RESULT_VA = 0x0020_0000
BIG_VA = 0x4000_0000  # a 2 MiB megapage


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="tour the emulated machine and its Sv39 MMU (page walk, A/D bits, a page fault)")
    p.set_defaults(func=run)


def build_program(words: int) -> A.Assembler:
    from ..riscv import asm as A

    a = A.Assembler(CODE_VA)
    a.li("a1", BUF_VA).li("t1", words).li("a0", 0)
    a.label("loop")
    a.emit(A.ld("t0", "a1", 0), A.add("a0", "a0", "t0"), A.addi("a1", "a1", 8), A.addi("t1", "t1", -1))
    a.branch("bne", "t1", "zero", "loop")
    a.li("a2", RESULT_VA).emit(A.sd("a0", "a2", 0))
    a.label("exit")
    return a


def run(args: argparse.Namespace) -> int:
    # Imported here: a command loads only what it runs (hwsim's start-up time).
    from ..machine import Machine, StopReason
    from ..mmu import Pte, format_walk
    from ..mmu.bits import describe_flags
    from ..mmu.report import perms_string
    from ..riscv.priv import Access, Priv

    m = Machine()
    print(
        f"machine: RV64 hart (Unicorn, virtual-TLB mode), RAM {m.ram.size >> 20} MiB at {m.ram.base:#x}, "
        f"MMU {m.mode.name}, model TLB of {m.tlb.capacity} entries"
    )
    space = m.new_address_space(asid=1)
    code_pa = m.frames.alloc()
    buf_pa = m.frames.alloc(2)
    space.map(CODE_VA, code_pa, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(BUF_VA, buf_pa, 0x2000, Pte.R | Pte.U, accessed=False)
    space.map_anonymous(RESULT_VA, 0x1000, Pte.R | Pte.W | Pte.U, accessed=False)
    big_pa = m.frames.alloc(512, align=2 << 20)
    space.map(BIG_VA, big_pa, 2 << 20, Pte.R | Pte.W | Pte.U)
    for i in range(BUF_WORDS):
        m.phys.write_u64(buf_pa + 8 * i, i + 1)

    print(f"\naddress space ASID {space.asid}: root table at {space.root:#x}, satp={space.satp:#x}")
    for mp in space.mappings():
        print(
            f"  va {mp.va:#012x}-{mp.va + mp.size:#012x} -> pa {mp.pa:#x}  {perms_string(mp.flags)}  "
            f"{describe_flags(mp.flags)}  ({mp.size >> 10} KiB)"
        )

    m.activate(space, priv=Priv.U)
    print(f"\npage walk of the result page before the program runs ({RESULT_VA:#x}, store, U-mode):")
    before = m.translate(RESULT_VA, Access.STORE)
    assert before is not None  # the space is active in U-mode: the MMU translates
    for line in format_walk(before):
        print("  " + line)

    good = build_program(BUF_WORDS)
    m.phys.write(code_pa, good.finish())
    r = m.run(CODE_VA, until=good.labels["exit"])
    result_page = space.lookup(RESULT_VA)
    assert result_page is not None  # mapped above
    total = m.phys.read_u64(result_page.pa)
    print(
        f"\nrun 1: sum of {BUF_WORDS} words -> {r.reason.value}; result {total} "
        f"(expected {BUF_WORDS * (BUF_WORDS + 1) // 2})"
    )
    for name, va in (("buffer", BUF_VA), ("result", RESULT_VA)):
        page = space.lookup(va)
        assert page is not None  # mapped above
        print(f"  {name} page PTE now {describe_flags(page.flags)} (hardware set A, and D on the store)")
    print(
        f"  TLB: {m.tlb.stats.lookups} lookups, {m.tlb.stats.hits} hits, {m.tlb.stats.misses} misses; "
        f"{m.walks} page walks"
    )

    bad = build_program(BUF_WORDS + 1)  # off by one: reads the word after the buffer
    m.phys.write(code_pa, bad.finish())
    m.code_changed()
    r = m.run(CODE_VA, until=bad.labels["exit"])
    print(f"\nrun 2: the same loop with length {BUF_WORDS + 1} -> {r.reason.value}")
    if r.reason is StopReason.FAULT:
        assert r.fault is not None  # a FAULT result carries its fault
        print("\n".join("  " + line for line in r.fault.format().splitlines()))
        return 0
    print("  (expected a page fault)")
    return 1
