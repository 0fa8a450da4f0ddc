"""What WebAssembly threads on several harts cost: atomic throughput on 1, 2 and 4 harts, and a shootdown.

    python bench/wasm_harts.py [--quick] [--repeat N]

*Atomics*: 4 wasi-threads each do ``i32.atomic.rmw.add`` on one shared word, under the thread
scheduler (runtime/threads.py) with turns of 1 to 128 instructions (``hart_turn`` 64 on several
harts, ``instruction_slice`` 64 on one, the same draws); the rate is increments of all threads per
wall-clock second, beside one hart's.  *Shootdowns*: the root thread toggles one resident page's
protection (``memory.protect``, read-write / read) in a loop on a Store of 1, 2 and 4 harts whose
other harts ran threads that touched the page; each protect on N harts is a TLB shootdown
(machine/shootdown.py): its own fence, then an IPI and a fence on each other hart.  Shown: the time
of a protect, its extra cost per target hart over one hart's protect, and the remote fence alone
(timed inside the shootdowns).  Every configuration runs interleaved with the others, best of
``--repeat``.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim import Engine, Linker, Module, SharedMemory, Store, WasiConfig  # noqa: E402
from hwsim.runtime.internal import vm_store  # noqa: E402

THREADS = 4
TURN = 64

ATOMICS = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $add (param $n i32)
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  (func (export "wasi_thread_start") (param $tid i32) (param $n i32)
    (call $add (local.get $n))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "run") (param $threads i32) (param $n i32) (result i32)
    (local $i i32) (local $done i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (loop $s   ;; threads - 1 spawned; the root thread is the last
      (if (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $threads))
        (then (drop (call $spawn (local.get $n))) (br $s))))
    (call $add (local.get $n))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 4)))
        (br_if $all (i32.eq (local.get $done) (i32.sub (local.get $threads) (i32.const 1))))
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
        (br $w)))
    (i32.load (i32.const 0))))
"""

PROTECT = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (import "env" "memory" (memory 2 2 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (i32.load (i32.const 4096)))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "warm") (param $others i32)
    (local $i i32) (local $done i32)
    (i32.store (i32.const 4096) (i32.const 1))
    (loop $s
      (if (i32.lt_u (local.get $i) (local.get $others))
        (then (drop (call $spawn (i32.const 0)))
              (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $s))))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 4)))
        (br_if $all (i32.eq (local.get $done) (local.get $others)))
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
        (br $w))))
  (func (export "toggle") (param $n i32)
    (loop $l
      (call $protect (i32.const 4096) (i32.const 4096) (i32.const 1))
      (call $protect (i32.const 4096) (i32.const 4096) (i32.const 2))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))))
"""


def _store(wat: str, harts: int):
    engine = Engine(metering=True)
    module = Module(engine, wat)
    store = Store(engine, harts=harts)
    config = WasiConfig()
    config.threads = True
    config.thread_seed = 1
    config.hart_turn = TURN
    config.instruction_slice = TURN  # (one hart: the same turns)
    store.set_wasi(config)
    linker = Linker(engine)
    linker.define_wasi()
    for imp in module.imports:
        if getattr(imp.type, "is_shared", False):
            linker.define(store, imp.module, imp.name, SharedMemory(engine, imp.type))
    return store, linker.instantiate(store, module).exports(store)


def atomics(harts: int, n: int) -> float:
    """Increments per second of THREADS threads, ``n`` each, on ``harts`` harts."""
    store, exports = _store(ATOMICS, harts)
    start = time.perf_counter()
    count = exports["run"](store, THREADS, n)
    elapsed = time.perf_counter() - start
    assert count == THREADS * n, count
    return THREADS * n / elapsed


def protects(harts: int, n: int) -> tuple[float, float]:
    """Seconds per memory.protect on ``harts`` harts (each other hart having read the page), and the
    mean remote fence of its shootdowns (0 on one hart)."""
    store, exports = _store(PROTECT, harts)
    exports["warm"](store, harts - 1)
    machine = vm_store(store).machine
    start = time.perf_counter()
    exports["toggle"](store, n)
    elapsed = time.perf_counter() - start
    ipis = sum(h.shootdown_ipis for h in machine.harts)
    assert ipis == 2 * n * (harts - 1), ipis
    fence = sum(h.shootdown_ns for h in machine.harts) / 1e9 / ipis if ipis else 0.0
    return elapsed / (2 * n), fence


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer increments and protects")
    parser.add_argument("--repeat", type=int, default=3, help="best of N (default 3)")
    args = parser.parse_args()
    n, toggles = (500, 100) if args.quick else (5_000, 1_000)
    harts_list = (1, 2, 4)
    rate = dict.fromkeys(harts_list, 0.0)
    cost = dict.fromkeys(harts_list, float("inf"))
    fence = dict.fromkeys(harts_list, float("inf"))
    for _ in range(args.repeat):  # interleaved: each round measures every configuration once
        for harts in harts_list:
            rate[harts] = max(rate[harts], atomics(harts, n))
            per, remote = protects(harts, toggles)
            cost[harts] = min(cost[harts], per)
            fence[harts] = min(fence[harts], remote)
    print(
        f"atomic i32.atomic.rmw.add, {THREADS} threads x {n}, turns of 1-{2 * TURN} instructions (best of {args.repeat})"
    )
    print(f"  {'harts':>5}  {'increments/s':>13}  {'vs 1 hart':>9}")
    for harts in harts_list:
        print(f"  {harts:>5}  {rate[harts]:>13,.0f}  {rate[harts] / rate[1]:>8.2f}x")
    print()
    print("memory.protect from wasm (a TLB shootdown on several harts)")
    print(
        f"  {'harts':>5}  {'us/protect':>10}  {'vs 1 hart':>9}  {'extra us/target hart':>20}  {'remote fence us':>15}"
    )
    for harts in harts_list:
        extra = (cost[harts] - cost[1]) / (harts - 1) * 1e6 if harts > 1 else 0.0
        remote = f"{fence[harts] * 1e6:>15.1f}" if harts > 1 else f"{'-':>15}"
        print(f"  {harts:>5}  {cost[harts] * 1e6:>10.1f}  {cost[harts] / cost[1]:>8.2f}x  {extra:>20.1f}  {remote}")


if __name__ == "__main__":
    main()
