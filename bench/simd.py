"""SIMD builds beside scalar builds on hwsim: each program of bench/programs/ compiled with and without -msimd128.

    python bench/simd.py [--rounds N] [--quick] [--only NAME ...]

Each program is built twice with zig cc (wasm32, -O2; LLVM's vectorisers
then emit v128 code for the loops they can) and both builds run with the
same ``n`` on hwsim, in turn, in this one process; each time is the best
over the rounds, and the results must be equal.  Printed: per-unit times,
how many SIMD instructions the vector build holds, and the ratio
vector/scalar (below 1: the SIMD build is faster), with the geometric mean.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

from wasm_vs_native import PROGRAMS, Hwsim, build_wasm, calibrate, timed  # noqa: E402

from hwsim.wasm import decode_module  # noqa: E402
from hwsim.wasm.simd import NAMES  # noqa: E402


def build(name: str, simd: bool) -> Path:
    return build_wasm(name, "-msimd128" if simd else "-mno-simd128", suffix="-simd" if simd else "-scalar")


def simd_count(wasm: Path) -> int:
    module = decode_module(wasm.read_bytes())
    return sum(code in NAMES for f in module.funcs for code, _, _ in f.body)


def geomean(values: list[float]) -> float:
    return math.exp(statistics.fmean(math.log(v) for v in values))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=5, help="rounds (best of N; default 5)")
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    ap.add_argument("--only", nargs="+", help="these programs only")
    args = ap.parse_args()
    names = args.only or sorted(p.stem for p in PROGRAMS.glob("*.c"))
    target = 0.05 if args.quick else 0.25
    print(f"{'program':<12} {'simd ops':>8} {'scalar us/n':>12} {'simd us/n':>10} {'simd/scalar':>12}")
    ratios = []
    for name in names:
        scalar, vector = Hwsim(build(name, False)), Hwsim(build(name, True))
        n = calibrate(scalar, target)
        best = {"scalar": math.inf, "simd": math.inf}
        results = {}
        for _ in range(args.rounds):
            for key, engine in (("scalar", scalar), ("simd", vector)):
                t, result = timed(engine, n, 1)
                best[key] = min(best[key], t)
                results.setdefault(key, result)
        if results["scalar"] != results["simd"]:
            raise SystemExit(f"{name}: the builds disagree ({results['scalar']:#x} vs {results['simd']:#x})")
        ratio = best["simd"] / best["scalar"]
        ratios.append(ratio)
        ops = simd_count(build(name, True))
        print(f"{name:<12} {ops:>8} {best['scalar'] / n * 1e6:>12.3f} {best['simd'] / n * 1e6:>10.3f} {ratio:>11.2f}x")
    print(f"{'geomean':<12} {'':>8} {'':>12} {'':>10} {geomean(ratios):>11.2f}x")


if __name__ == "__main__":
    main()
