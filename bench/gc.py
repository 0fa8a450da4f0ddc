"""GC allocation throughput and pause times: hwsim beside wasmtime on the same allocation-heavy module.

    python bench/gc.py [--rounds N] [--heap BYTES] [--calls N]

Workloads (each call allocates a known number of objects, all garbage by its end):

    trees   binary trees of structs (the benchmarks game's binary-trees): short-lived trees of depth 6
            (127 nodes) built and checked, one after the other
    churn   an array of 256 pairs, every element replaced by a new struct each pass

Rounds interleave the two engines (a busy machine slows both); each row is the best round.  Printed:
allocation throughput (objects/s) and the ratio wasmtime / hwsim; the latency of each call (median,
99th percentile, maximum) on both engines, where a collection shows as an outlier; and hwsim's
collections, timed one by one: its pause times.  wasmtime-py exposes no GC statistics, so wasmtime's
pauses are only seen through its call latencies.  hwsim's heap limit is --heap (StoreLimits.gc_heap_bytes,
small so that the collector runs); wasmtime's heap grows as it needs (its default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hwsim  # noqa: E402

WAT = """(module
  (type $tree (struct (field $l (ref null $tree)) (field $r (ref null $tree)) (field $v i32)))
  (type $pair (struct (field $a i32) (field $b i64)))
  (type $pairs (array (mut (ref null $pair))))
  (func $make (param $d i32) (result (ref $tree))
    (if (result (ref $tree)) (i32.eqz (local.get $d))
      (then (struct.new $tree (ref.null none) (ref.null none) (i32.const 1)))
      (else (struct.new $tree (call $make (i32.sub (local.get $d) (i32.const 1)))
                              (call $make (i32.sub (local.get $d) (i32.const 1))) (local.get $d)))))
  (func $count (param $t (ref null $tree)) (result i32)
    (if (result i32) (ref.is_null (local.get $t)) (then (i32.const 0))
      (else (i32.add (i32.const 1) (i32.add (call $count (struct.get $tree $l (local.get $t)))
                                            (call $count (struct.get $tree $r (local.get $t))))))))
  ;; n trees of depth d, each counted: the total number of nodes
  (func (export "trees") (param $d i32) (param $n i32) (result i32) (local $sum i32)
    (loop $l
      (local.set $sum (i32.add (local.get $sum) (call $count (call $make (local.get $d)))))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1)))))
    (local.get $sum))
  ;; passes over an array of $len pairs, each element replaced: the sum of the last pass's a's
  (func (export "churn") (param $len i32) (param $passes i32) (result i32)
    (local $arr (ref $pairs)) (local $i i32) (local $sum i32)
    (local.set $arr (array.new_default $pairs (local.get $len)))
    (loop $p
      (local.set $i (i32.const 0))
      (loop $e
        (array.set $pairs (local.get $arr) (local.get $i)
          (struct.new $pair (i32.add (local.get $i) (local.get $passes)) (i64.extend_i32_u (local.get $i))))
        (br_if $e (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $len))))
      (br_if $p (local.tee $passes (i32.sub (local.get $passes) (i32.const 1)))))
    (local.set $i (i32.const 0))
    (loop $s
      (local.set $sum (i32.add (local.get $sum)
        (struct.get $pair $a (array.get $pairs (local.get $arr) (local.get $i)))))
      (br_if $s (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $len))))
    (local.get $sum))
)"""

DEPTH, TREES, LEN, PASSES = 6, 20, 256, 10
# (name, arguments, objects each call allocates, its result)
WORKLOADS = (
    ("trees", (DEPTH, TREES), TREES * (2 ** (DEPTH + 1) - 1), TREES * (2 ** (DEPTH + 1) - 1)),
    ("churn", (LEN, PASSES), 1 + LEN * PASSES, sum(i + 1 for i in range(LEN))),
)


class HwsimSide:
    name = "hwsim"

    def __init__(self, heap: int) -> None:
        engine = hwsim.Engine(cache=False)
        self.store = hwsim.Store(engine)
        self.store.set_limits(gc_heap_size=heap)
        self.heap = self.store._store.gc_heap  # its collect, timed below
        self.exports = hwsim.Instance(self.store, hwsim.Module(engine, WAT), []).exports(self.store)
        self.pauses: list[float] = []
        collect = self.heap.collect

        def timed_collect(m, roots=()):  # the benchmark's own stopwatch around each collection
            start = time.perf_counter()
            try:
                return collect(m, roots)
            finally:
                self.pauses.append(time.perf_counter() - start)

        self.heap.collect = timed_collect  # type: ignore[method-assign]

    def call(self, name: str, args) -> int:
        return self.exports[name](self.store, *args)


class WasmtimeSide:
    name = "wasmtime"

    def __init__(self) -> None:
        import wasmtime

        config = wasmtime.Config()
        config.wasm_gc = True
        config.wasm_function_references = True
        engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(engine)
        instance = wasmtime.Instance(self.store, wasmtime.Module(engine, WAT), [])
        self.exports = instance.exports(self.store)

    def call(self, name: str, args) -> int:
        return self.exports[name](self.store, *args)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds; the best is kept (default 5)")
    parser.add_argument("--calls", type=int, default=6, help="calls of each workload per round (default 6)")
    parser.add_argument("--heap", type=int, default=256 << 10, help="hwsim's GC heap limit (default 256 KiB)")
    args = parser.parse_args()
    if args.rounds <= 0 or args.calls <= 0 or args.heap <= 0:
        parser.error("--rounds, --calls and --heap must be positive")
    sides = (HwsimSide(args.heap), WasmtimeSide())
    best: dict[tuple[str, str], float] = {}
    latencies: dict[tuple[str, str], list[float]] = {}
    for _ in range(args.rounds):
        for name, call_args, objects, expected in WORKLOADS:
            for side in sides:
                start = time.perf_counter()
                for _ in range(args.calls):
                    t = time.perf_counter()
                    result = side.call(name, call_args)
                    latencies.setdefault((side.name, name), []).append(time.perf_counter() - t)
                    if result != expected:
                        sys.exit(f"{side.name} {name}{call_args} returned {result}, not {expected}")
                rate = objects * args.calls / (time.perf_counter() - start)
                best[(side.name, name)] = max(best.get((side.name, name), 0.0), rate)

    hw = sides[0]
    print(f"hwsim GC heap limit {args.heap} bytes; {args.rounds} rounds x {args.calls} calls, best round")
    print(f"{'workload':10} {'objects/call':>12} {'hwsim obj/s':>13} {'wasmtime obj/s':>15} {'wasmtime/hwsim':>15}")
    for name, _, objects, _ in WORKLOADS:
        h, w = best[("hwsim", name)], best[("wasmtime", name)]
        print(f"{name:10} {objects:12} {h:13,.0f} {w:15,.0f} {w / h:14.1f}x")
    print(f"\n{'call latency':22} {'median':>10} {'p99':>10} {'max':>10}")
    for (side, name), times in sorted(latencies.items()):
        times.sort()
        p99 = times[min(len(times) - 1, int(0.99 * len(times)))]
        print(f"{side + ' ' + name:22} {_ms(statistics.median(times))} {_ms(p99)} {_ms(times[-1])}")
    pauses = sorted(hw.pauses)
    if pauses:
        print(
            f"\nhwsim collections: {len(pauses)} (freed {hw.heap.freed} bytes); pause median {_ms(pauses[len(pauses) // 2])}"
            f", max {_ms(pauses[-1])}, total {sum(pauses):.2f} s"
        )
    else:
        print("\nhwsim collections: none (the heap limit was never reached)")


def _ms(seconds: float) -> str:
    return f"{seconds * 1e3:7.2f} ms"


if __name__ == "__main__":
    main()
