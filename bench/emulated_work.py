"""Where the emulated CPU's time goes in generated code: TBs, memory accesses, ALU and FP operations per unit.

    python bench/emulated_work.py [--only NAME ...]

Each program of bench/programs/ runs once with a UC_HOOK_BLOCK hook counting
the translation blocks it executes, on hwsim's code and on the native build;
each block is disassembled once (capstone) and its instructions sorted into
memory accesses, FP operations, multiplies/divides and other (ALU and branch)
instructions.  Then each runs without the hook, best of 5, and a least-squares
fit of time per unit against those four counts plus TBs gives what the
emulator charges for each (docs/architecture.md, *What the emulator charges*).
The fit is rough (16 points, machine load); use it for ratios, not for absolute
times.
"""

from __future__ import annotations

import argparse
import collections
import sys
import time
from pathlib import Path

import capstone
from unicorn import unicorn_const as uc_const

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from wasm_vs_native import PROGRAMS, Hwsim, Native, build  # noqa: E402

from hwsim.riscv.priv import Access  # noqa: E402

_MEMORY = {"lb", "lbu", "lh", "lhu", "lw", "lwu", "ld", "sb", "sh", "sw", "sd", "flw", "fld", "fsw", "fsd"}
_MULDIV = {"mul", "mulw", "mulh", "mulhu", "div", "divu", "divw", "divuw", "rem", "remu", "remw", "remuw"}
_N = {"crc32": 50, "hash": 50, "matmul": 3, "ringbuf": 200, "sha256": 20, "sort": 3, "strsearch": 2, "tarheader": 50}
KINDS = ("TBs", "memory", "ALU", "FP", "mul/div")


def work(machine, run, n: int) -> list[float]:
    """Per unit of ``n``: TBs, memory accesses, ALU instructions, FP operations, multiplies and divides."""
    uc = machine._uc
    counts: collections.Counter[int] = collections.Counter()
    sizes: dict[int, int] = {}

    def block(_uc, address: int, size: int, _data) -> None:
        counts[address] += 1
        sizes[address] = size

    hook = uc.hook_add(uc_const.UC_HOOK_BLOCK, block, begin=1, end=0)
    uc.ctl_flush_tb()  # (blocks translated before the hook was added would not call it)
    run(n)
    uc.hook_del(hook)
    uc.ctl_flush_tb()
    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    total = [float(sum(counts.values())), 0.0, 0.0, 0.0, 0.0]
    for address, times in counts.items():
        for insn in md.disasm(machine.read_virt(address, sizes[address], access=Access.FETCH), address):
            name = insn.mnemonic.removeprefix("c.")
            kind = 1 if name.removesuffix("sp") in _MEMORY else 4 if name in _MULDIV else 3 if name[0] == "f" else 2
            total[kind] += times
    return [v / n for v in total]


def best_time(run, n: int, rounds: int = 5) -> float:
    best = float("inf")
    for _ in range(rounds):
        t = time.perf_counter()
        run(n)
        best = min(best, time.perf_counter() - t)
    return best / n


def least_squares(rows: list[list[float]], ys: list[float]) -> list[float]:
    """``c`` minimising ``sum((row . c - y)^2)`` (the normal equations, Gauss-Jordan with pivoting)."""
    k = len(rows[0])
    a = [
        [sum(r[i] * r[j] for r in rows) for j in range(k)] + [sum(r[i] * y for r, y in zip(rows, ys))] for i in range(k)
    ]
    for i in range(k):
        pivot = max(range(i, k), key=lambda r: abs(a[r][i]))
        a[i], a[pivot] = a[pivot], a[i]
        for r in range(k):
            if r != i and a[i][i]:
                f = a[r][i] / a[i][i]
                a[r] = [x - f * y for x, y in zip(a[r], a[i])]
    return [a[i][k] / a[i][i] if a[i][i] else 0.0 for i in range(k)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", nargs="+", help="these programs only")
    args = ap.parse_args()
    programs = sorted(p.stem for p in PROGRAMS.glob("*.c"))
    names = args.only or programs
    unknown = [n for n in names if n not in programs]
    if unknown:
        raise SystemExit(f"no such program: {', '.join(unknown)} (the programs: {', '.join(programs)})")
    rows, ys, labels = [], [], []
    print(f"{'program':20} {'TBs':>9} {'memory':>9} {'ALU':>9} {'FP':>8} {'mul/div':>8} {'us/unit':>9}")
    for name in names:
        wasm, elf = build(name)
        n = _N.get(name, 10)
        hw, native = Hwsim(wasm), Native(elf)
        for engine, machine in ((hw, hw.store.machine), (native, native.m)):
            engine.run(n)  # compiled and translated once before counting
            counts = work(machine, engine.run, n)
            t = best_time(engine.run, n)
            rows.append(counts)
            ys.append(t)
            labels.append(f"{name}/{engine.name}")
            print(
                f"{labels[-1]:20} "
                + " ".join(f"{c:9.0f}" for c in counts[:3])
                + f" {counts[3]:8.0f} {counts[4]:8.0f} {t * 1e6:9.1f}"
            )
    if len(rows) >= len(KINDS):
        coef = least_squares(rows, ys)
        print("fit, ns each: " + ", ".join(f"{kind} {c * 1e9:.2f}" for kind, c in zip(KINDS, coef)))


if __name__ == "__main__":
    main()
