"""What metering costs: tight loops compiled with and without checkpoints, run side by side.

    python bench/fuel.py [--quick]

Each program runs in two Stores, one whose Engine counts fuel (every function entry and loop
header is a checkpoint, ``blez gp``; branches, calls and block ends subtract the pending cost,
``addi gp, gp, -cost``) and one without; the runs alternate, round after round, and the best
time of each is kept.  The ratio is metered / unmetered.  Last, the slow path: a checkpoint
handler that refills the count with a small amount, so that every other loop iteration takes it.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.runtime import api  # noqa: E402
from hwsim.runtime.internal import vm_store  # noqa: E402

WAT = """
(module
  (memory 1)
  (func (export "count") (param $n i32) (result i32) (local $i i32)
    (loop $l
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $i))
  (func (export "sum") (param $n i32) (result i32) (local $i i32) (local $s i32)
    (loop $l
      (local.set $s (i32.add (local.get $s) (i32.load (i32.and (i32.shl (local.get $i) (i32.const 2))
                                                               (i32.const 0xfffc)))))
      (if (i32.and (local.get $i) (i32.const 1))
        (then (local.set $s (i32.xor (local.get $s) (local.get $i))))
        (else (local.set $s (i32.add (local.get $s) (i32.const 3)))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
    (local.get $s))
  (func $fib (export "fib") (param $n i32) (result i32)
    (if (result i32) (i32.lt_u (local.get $n) (i32.const 2))
      (then (local.get $n))
      (else (i32.add (call $fib (i32.sub (local.get $n) (i32.const 1)))
                     (call $fib (i32.sub (local.get $n) (i32.const 2))))))))
"""


def instance(metered: bool):
    config = api.Config()
    config.consume_fuel = metered
    engine = api.Engine(config, cache=False)
    store = api.Store(engine)
    exports = api.Instance(store, api.Module(engine, WAT), []).exports(store)
    return store, exports


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args()
    rounds = 3 if args.quick else 7
    scale = 1 if args.quick else 5
    programs = [("count", 2_000_000 * scale), ("sum", 500_000 * scale), ("fib", 20 + (scale > 1) * 3)]
    plain, metered = instance(False), instance(True)
    metered[0].set_fuel(1 << 62)
    best: dict[tuple[str, bool], float] = {}
    fuel_used: dict[str, int] = {}
    for _ in range(rounds):
        for name, arg in programs:
            for is_metered, (store, exports) in ((False, plain), (True, metered)):
                before = store.get_fuel() if is_metered else 0
                t = time.perf_counter()
                exports[name](store, arg)
                elapsed = time.perf_counter() - t
                if is_metered:
                    fuel_used[name] = before - store.get_fuel()
                key = (name, is_metered)
                best[key] = min(best.get(key, float("inf")), elapsed)
    print(f"{time.strftime('%Y-%m-%d')}: metering (fuel) on tight loops, best of {rounds} interleaved rounds")
    print(f"{'program':24} {'plain ms':>9} {'metered ms':>11} {'ratio':>6} {'fuel':>12} {'ns/fuel unit':>13}")
    for name, arg in programs:
        off, on = best[(name, False)], best[(name, True)]
        used = fuel_used[name]
        print(
            f"{name + f'({arg})':24} {off * 1e3:9.1f} {on * 1e3:11.1f} {on / off:6.2f} {used:12,} {on / used * 1e9:13.2f}"
        )

    # The slow path: a handler that gives 16 units at a time, so that nearly every iteration of "count"
    # (8 units each) enters it.
    store, exports = metered
    vm = vm_store(store)
    remove = vm.add_checkpoint_handler(lambda s: setattr(s, "fuel_remaining", 16))
    n = 20_000 if args.quick else 100_000
    saved = store.get_fuel()
    store.set_fuel(16)
    t = time.perf_counter()
    exports["count"](store, n)
    slow = time.perf_counter() - t
    remove()
    store.set_fuel(saved)
    t = time.perf_counter()
    exports["count"](store, n)
    fast = time.perf_counter() - t
    print(f"\nslow path (ecall + checkpoint handler refilling the count): {(slow - fast) / (n / 2) * 1e6:.1f} us each")


if __name__ == "__main__":
    main()
