"""hwsim's generated code beside wasm3 (pywasm3, an interpreter written in C) and the native build, interleaved.

    python bench/vs_wasm3.py [--rounds N] [--quick] [--only NAME ...]

The programs of bench/programs/ (built as bench/wasm_vs_native.py builds
them), each run with one ``n`` on three engines in this one process:

  hwsim   the wasm compiled by hwsim, on the emulated RV64 CPU (Unicorn), U-mode, through the MMU
  native  the same C built for riscv64, on the same emulated CPU: what the sandbox costs
  wasm3   the wasm on wasm3 (pip install pywasm3, or the ``bench`` extra): what a Python user picks
          when an interpreter is enough

One round runs every engine once, in turn (so machine load falls on all of
them alike); the time of each is its best over the rounds.  Every engine's
result is checked against hwsim's.  Printed: per-unit times and the ratios
hwsim/native and hwsim/wasm3 (below 1: hwsim is faster), with geometric means.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from wasm_vs_native import PROGRAMS, Hwsim, Native, build, calibrate  # noqa: E402

import hwsim  # noqa: E402


class Wasm3:
    name = "wasm3"

    def __init__(self, wasm: Path):
        import wasm3

        self.env = wasm3.Environment()
        self.rt = self.env.new_runtime(1 << 20)
        self.rt.load(self.env.parse_module(wasm.read_bytes()))
        self.func = self.rt.find_function("bench")

    def run(self, n: int) -> int:
        return self.func(n) & 0xFFFF_FFFF


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds (best of N; default 5)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    ap.add_argument("--only", nargs="+", help="these programs only")
    args = ap.parse_args()
    target = 0.05 if args.quick else 0.2
    programs = sorted(p.stem for p in PROGRAMS.glob("*.c"))
    names = args.only or programs
    unknown = [n for n in names if n not in programs]
    if unknown:
        raise SystemExit(f"no such program: {', '.join(unknown)} (the programs: {', '.join(programs)})")
    print(
        f"hwsim {hwsim.__version__}, {time.strftime('%Y-%m-%d')}: time per unit of work (n), best of {args.rounds} "
        f"interleaved rounds; ratios from this run"
    )
    header = (
        f"{'program':10} {'hwsim us':>10} {'native us':>10} {'wasm3 us':>10} {'hwsim/native':>13} {'hwsim/wasm3':>12}"
    )
    print(header)
    print("-" * len(header))
    vs_native, vs_wasm3 = [], []
    for name in names:
        wasm, elf = build(name)
        engines = [Hwsim(wasm), Native(elf), Wasm3(wasm)]
        hw = engines[0]
        n = calibrate(hw, target)
        expected = hw.run(n)
        best = {e.name: math.inf for e in engines}
        for _ in range(args.rounds):
            for e in engines:
                t = time.perf_counter()
                got = e.run(n)
                best[e.name] = min(best[e.name], time.perf_counter() - t)
                if got != expected:
                    raise SystemExit(f"{name}: {e.name} computed {got:#x} for n={n}, hwsim {expected:#x}")
        per = {k: v / n for k, v in best.items()}
        vs_native.append(per["hwsim"] / per["native"])
        vs_wasm3.append(per["hwsim"] / per["wasm3"])
        print(
            f"{name:10} {per['hwsim'] * 1e6:10.2f} {per['native'] * 1e6:10.2f} {per['wasm3'] * 1e6:10.2f} "
            f"{vs_native[-1]:13.2f} {vs_wasm3[-1]:12.2f}"
        )
    print("-" * len(header))
    print(
        f"geometric mean: hwsim/native {geomean(vs_native):.2f}, hwsim/wasm3 {geomean(vs_wasm3):.2f}; "
        f"worst: hwsim/native {max(vs_native):.2f}, hwsim/wasm3 {max(vs_wasm3):.2f}"
    )


if __name__ == "__main__":
    main()
