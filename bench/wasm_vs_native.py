"""C programs as WebAssembly on hwsim, side by side with the same C built natively, wasmtime and pywasm.

    python bench/wasm_vs_native.py [--quick] [--only NAME]

Each program in bench/programs/ exports ``u32 bench(u32 n)``, whose work is
linear in ``n``.  It is built with zig cc twice: to wasm32 and to native
riscv64.  Four ways to run it, in this one process:

  hwsim     the wasm compiled by hwsim, on the emulated RV64 CPU (Unicorn), U-mode, through hwsim's MMU
  native    the riscv64 build, on the same emulated CPU, same mode and MMU: the sandbox's overhead
  wasmtime  the wasm on wasmtime (native JIT): the speed ceiling
  pywasm    the wasm on pywasm (a pure-Python interpreter): what a Python user would otherwise pick

Times are per unit of ``n`` (each engine runs an ``n`` that takes it a
measurable time, best of three; pywasm's is t(2) - t(1), since a large ``n``
would take it minutes).  Every engine's
result is checked against hwsim's for the same ``n``.  Also: compile
throughput (cold, and from the code cache) and instantiation latency.
Needs the dev extras (``pip install -e ".[dev]"``: ziglang, wasmtime, pywasm).
"""

from __future__ import annotations

import argparse
import hashlib
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import hwsim  # noqa: E402
from hwsim.machine import Machine  # noqa: E402
from hwsim.machine.elf import load_elf  # noqa: E402
from hwsim.mmu import Pte  # noqa: E402
from hwsim.riscv.priv import Priv  # noqa: E402

PROGRAMS = ROOT / "bench" / "programs"
BUILD = ROOT / "bench" / "build"
EXIT = 0x90_0000
STACK_TOP = 0x80_0000


def zig(*args: str) -> None:
    out = subprocess.run([sys.executable, "-m", "ziglang", "cc", *args], capture_output=True, text=True)
    if out.returncode:
        raise SystemExit(f"zig cc failed: {' '.join(args)}\n{out.stderr}")


def _digest(name: str) -> str:
    """What a build of program ``name`` depends on: its source, the shared headers, the link script."""
    src = PROGRAMS / f"{name}.c"
    shared = b"".join(p.read_bytes() for p in sorted(PROGRAMS.glob("*.h")))  # bench.h, libc.h
    return hashlib.sha256(src.read_bytes() + shared + (PROGRAMS / "link.ld").read_bytes()).hexdigest()[:12]


def build_wasm(name: str, *flags: str, suffix: str = "") -> Path:
    """bench/programs/NAME.c built for wasm32 with zig (-O2, extra ``flags``), cached in bench/build/."""
    BUILD.mkdir(exist_ok=True)
    wasm = BUILD / f"{name}-{_digest(name)}{suffix}.wasm"
    if not wasm.exists():
        zig(
            "-target",
            "wasm32-freestanding",
            "-O2",
            *flags,
            "-nostdlib",
            "-Wl,--no-entry",
            "-Wl,--export=bench",
            str(PROGRAMS / f"{name}.c"),
            "-o",
            str(wasm),
        )
    return wasm


def build(name: str) -> tuple[Path, Path]:
    src = PROGRAMS / f"{name}.c"
    wasm, elf = build_wasm(name), BUILD / f"{name}-{_digest(name)}-nocontract.elf"
    if not elf.exists():
        zig(
            "-target",
            "riscv64-freestanding",
            "-mcpu=baseline_rv64",
            "-mcmodel=medany",
            "-O2",
            # No fused multiply-add: WebAssembly rounds every f32/f64 multiply and add on its own, and
            # clang would otherwise contract ``s += a * b`` into one fmadd.d (one rounding, different
            # bits, half the soft-float work on the emulated CPU), so the native build would compute
            # another function than the wasm does.
            "-ffp-contract=off",
            "-nostdlib",
            "-ffreestanding",
            f"-Wl,-T,{PROGRAMS / 'link.ld'}",
            "-Wl,-e,bench",
            str(src),
            "-o",
            str(elf),
        )
    return wasm, elf


class Hwsim:
    name = "hwsim"

    def __init__(self, wasm: Path):
        self.engine = hwsim.Engine(cache=False)
        self.store = hwsim.Store(self.engine)
        self.func = hwsim.Instance(self.store, hwsim.Module(self.engine, wasm.read_bytes()), []).exports(self.store)[
            "bench"
        ]

    def run(self, n: int) -> int:
        return self.func(self.store, n) & 0xFFFF_FFFF


class Native:
    name = "native"

    def __init__(self, elf: Path):
        self.m = Machine(ram_size=64 << 20)
        space = self.m.new_address_space(asid=1)
        self.image = load_elf(self.m, space, elf)
        space.map_anonymous(STACK_TOP - (1 << 20), 1 << 20, Pte.R | Pte.W | Pte.U)
        space.map_anonymous(EXIT, 0x1000, Pte.R | Pte.X | Pte.U)
        self.m.activate(space, priv=Priv.U)
        self.entry = self.image.symbols["bench"]

    def run(self, n: int) -> int:
        m = self.m
        m.set_reg("sp", STACK_TOP)
        m.set_reg("ra", EXIT)
        m.set_reg("a0", n)
        r = m.run(self.entry, until=EXIT)
        if not r.ok:
            raise RuntimeError(f"native run failed: {r.describe()}")
        return m.get_reg("a0") & 0xFFFF_FFFF


class Wasmtime:
    name = "wasmtime"

    def __init__(self, wasm: Path):
        import wasmtime

        self.store = wasmtime.Store()
        module = wasmtime.Module(self.store.engine, wasm.read_bytes())
        self.func = wasmtime.Instance(self.store, module, []).exports(self.store)["bench"]

    def run(self, n: int) -> int:
        return self.func(self.store, n) & 0xFFFF_FFFF


class Pywasm:
    name = "pywasm"

    def __init__(self, wasm: Path):
        import pywasm

        self.rt = pywasm.core.Runtime()
        self.inst = self.rt.instance_from_file(str(wasm))

    def run(self, n: int) -> int:
        return self.rt.invocate(self.inst, "bench", [n])[0] & 0xFFFF_FFFF


def timed(engine, n: int, repeat: int) -> tuple[float, int]:
    best, result = math.inf, None
    for _ in range(repeat):
        t = time.perf_counter()
        result = engine.run(n)
        best = min(best, time.perf_counter() - t)
    return best, result


def calibrate(engine, target: float, limit: int = 1 << 20) -> int:
    n = 1
    while n < limit:
        t, _ = timed(engine, n, 1)
        if t >= target:
            break
        n = max(n * 2, int(n * target / max(t, 1e-6) * 0.8))
    return min(n, limit)


def compile_stats(wasm_files: list[Path]) -> tuple[float, float, float]:
    """(KB/s cold, KB/s from the cache, instantiate ms) over all the programs, one measurement of each."""
    data = [w.read_bytes() for w in wasm_files]
    size_kb = sum(len(d) for d in data) / 1024
    with tempfile.TemporaryDirectory() as cache:
        cold_engine = hwsim.Engine(cache=True, cache_dir=cache)
        t = time.perf_counter()
        modules = [hwsim.Module(cold_engine, d) for d in data]
        cold = time.perf_counter() - t
        warm_engine = hwsim.Engine(cache=True, cache_dir=cache)
        t = time.perf_counter()
        for d in data:
            hwsim.Module(warm_engine, d)
        warm = time.perf_counter() - t
        assert warm_engine.cache_hits == len(data)
    store = hwsim.Store(cold_engine)
    t = time.perf_counter()
    for m in modules:
        hwsim.Instance(store, m, [])
    inst_ms = (time.perf_counter() - t) / len(modules) * 1e3
    return size_kb / cold, size_kb / warm, inst_ms


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="shorter runs (noisier)")
    ap.add_argument("--only", help="run one program")
    args = ap.parse_args()
    target = 0.1 if args.quick else 0.4
    names = sorted(p.stem for p in PROGRAMS.glob("*.c"))
    if args.only:
        names = [args.only]
    print(
        f"hwsim {hwsim.__version__}, {time.strftime('%Y-%m-%d')}: time per unit of work (n), best of 3; "
        f"ratios from this run"
    )
    header = (
        f"{'program':10} {'hwsim us':>10} {'native us':>10} {'wasmtime us':>12} {'pywasm us':>11} "
        f"{'hwsim/native':>13} {'pywasm/hwsim':>13} {'hwsim/wasmtime':>15}"
    )
    print(header)
    print("-" * len(header))
    ratios, vs_pywasm, wasm_files = [], [], []
    for name in names:
        wasm, elf = build(name)
        wasm_files.append(wasm)
        engines = [Hwsim(wasm), Native(elf), Wasmtime(wasm), Pywasm(wasm)]
        hw, native, wt, py = engines
        n = calibrate(hw, target)
        per = {}
        t, expected = timed(hw, n, 3)
        per["hwsim"] = t / n
        for e in (native, wt):
            t, got = timed(e, n, 3)
            if got != expected:
                raise SystemExit(f"{name}: {e.name} computed {got:#x} for n={n}, hwsim {expected:#x}")
            per[e.name] = t / n
        # pywasm is too slow for a large n: time n=1 and n=2 and take the difference, so the one-off
        # setup each program does (tables, buffers) is not counted as per-unit work.
        times = {}
        for small in (1, 2):
            times[small], got = timed(py, small, 1)
            check = hw.run(small)
            if got != check:
                raise SystemExit(f"{name}: pywasm computed {got:#x} for n={small}, hwsim {check:#x}")
        per["pywasm"] = max(times[2] - times[1], 1e-9)
        r = per["hwsim"] / per["native"]
        ratios.append(r)
        vs_pywasm.append(per["pywasm"] / per["hwsim"])
        print(
            f"{name:10} {per['hwsim'] * 1e6:10.2f} {per['native'] * 1e6:10.2f} {per['wasmtime'] * 1e6:12.3f} "
            f"{per['pywasm'] * 1e6:11.0f} {r:13.2f} {vs_pywasm[-1]:13.0f} {per['hwsim'] / per['wasmtime']:15.1f}"
        )
    geo = math.exp(statistics.fmean(math.log(r) for r in ratios))
    print("-" * len(header))
    print(f"geometric mean hwsim/native: {geo:.2f}   slowest vs pywasm: {min(vs_pywasm):.0f}x faster")
    # The programs are small (24 KB together, a few ms to compile): best of five, so one GC pause or
    # other job's slice does not decide the line.
    stats = [compile_stats(wasm_files) for _ in range(5)]
    cold, warm, inst = max(s[0] for s in stats), max(s[1] for s in stats), min(s[2] for s in stats)
    print(
        f"compile: {cold:.1f} KB of wasm/s cold, {warm:.0f} KB/s from the code cache; "
        f"instantiate: {inst:.2f} ms per module (best of 5)"
    )


if __name__ == "__main__":
    main()
