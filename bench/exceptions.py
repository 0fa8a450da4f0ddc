"""What exception handling costs, each path beside its plain counterpart in one run.

    python bench/exceptions.py [--rounds N]

Rows (best time per operation over the rounds, interleaved so a busy machine slows both sides):

    a call one frame up that returns      vs  one that throws, caught by the caller's try_table
    recursion N deep returning normally   vs  unwinding the N frames (per frame)
    a host function that returns          vs  one that raises WasmException, caught in wasm

Code without exceptions is not here: it compiles byte for byte as before
(tests/test_compiler_code_identity.py), so it costs nothing.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import hwsim  # noqa: E402

WAT = """(module
  (import "h" "ret" (func $ret (param i32) (result i32)))
  (import "h" "raise" (func $raise (param i32) (result i32)))
  (tag $e (export "e") (param i32))
  (func $plain (param i32) (result i32) (local.get 0))
  (func $thrower (param i32) (result i32) (throw $e (local.get 0)))
  (func $down (param i32 i32) (result i32)
    (if (i32.eqz (local.get 0)) (then (if (local.get 1) (then (throw $e (i32.const 1)))) (return (i32.const 1))))
    (call $down (i32.sub (local.get 0) (i32.const 1)) (local.get 1)))
  (func (export "calls") (param i32) (result i32) (local $s i32)
    (loop $l
      (block $c (result i32) (try_table (result i32) (catch $e $c) (call $plain (local.get 0))))
      (local.get $s) (i32.add) (local.set $s) (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get $s))
  (func (export "throws") (param i32) (result i32) (local $s i32)
    (loop $l
      (block $c (result i32) (try_table (result i32) (catch $e $c) (call $thrower (local.get 0))))
      (local.get $s) (i32.add) (local.set $s) (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get $s))
  (func (export "deep") (param i32 i32) (result i32)
    (block $c (result i32) (try_table (result i32) (catch $e $c) (call $down (local.get 0) (local.get 1)))))
  (func (export "host") (param i32 i32) (result i32) (local $s i32)
    (loop $l
      (block $c (result i32)
        (try_table (result i32) (catch $e $c)
          (if (result i32) (local.get 1) (then (call $raise (local.get 0))) (else (call $ret (local.get 0))))))
      (local.get $s) (i32.add) (local.set $s) (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
    (local.get $s)))"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    i32 = hwsim.ValType.i32()
    holder: dict = {}

    def raise_(x: int) -> int:
        raise hwsim.WasmException(store, holder["e"], [x])

    linker = hwsim.Linker(engine)
    linker.define_func("h", "ret", hwsim.FuncType([i32], [i32]), lambda x: x)
    linker.define_func("h", "raise", hwsim.FuncType([i32], [i32]), raise_)
    ex = linker.instantiate(store, hwsim.Module(engine, WAT)).exports(store)
    holder["e"] = ex["e"]
    depth, n_calls, n_throws, n_host = 10_000, 200_000, 2_000, 2_000
    best: dict[str, float] = {}

    def timed(key: str, per: int, fn, *call_args) -> None:
        start = time.perf_counter()
        fn(store, *call_args)
        best[key] = min(best.get(key, float("inf")), (time.perf_counter() - start) / per)

    for _ in range(args.rounds):
        timed("call", n_calls, ex["calls"], n_calls)
        timed("throw", n_throws, ex["throws"], n_throws)
        timed("return frames", depth, ex["deep"], depth, 0)
        timed("unwind frames", depth, ex["deep"], depth, 1)
        timed("host return", n_host, ex["host"], n_host, 0)
        timed("host raise", n_host, ex["host"], n_host, 1)
    print(f"{'path':40} {'plain':>10} {'exception':>11} {'ratio':>8}")
    for label, plain, exc in (
        ("a call one frame up (per call)", "call", "throw"),
        (f"{depth} frames (per frame)", "return frames", "unwind frames"),
        ("a host function (per call)", "host return", "host raise"),
    ):
        print(f"{label:40} {best[plain] * 1e6:8.2f} us {best[exc] * 1e6:8.2f} us {best[exc] / best[plain]:7.1f}x")


if __name__ == "__main__":
    main()
