"""The fuel count across host calls made by wasi-threads' threads, on one hart or several: the ecall
leaves the count in its register when the host changed nothing (calls.CallBoundary._ecall), and each hart
has its own register.  wasmtime has no such threads to compare with: a host function that only looks at
the fuel must change nothing (the schedule, the result, the fuel left), every count it sees is at most
the one before (fuel is only used), and a host function that calls back into wasm from a spawned thread
or sets the count keeps the program right."""

from __future__ import annotations

import pytest
from property_scale import examples

import hwsim
from hwsim import Engine, Linker, Module, SharedMemory, Store, WasiConfig
from hwsim.runtime.internal import vm_store

PROGRAM = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (import "env" "pause" (func $pause (param i32) (result i32)))
  (export "memory" (memory 0))
  (func (export "work") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (local.get $n))))
    (local.get $i))
  (func $work (param $n i32)
    (loop $l
      (drop (i32.atomic.rmw.add (i32.const 0) (call $pause (i32.const 1))))
      (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $work (i32.const 40))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "run") (param $threads i32) (result i32)
    (local $i i32) (local $done i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (loop $s
      (if (i32.le_s (call $spawn (i32.const 0)) (i32.const 0)) (then unreachable))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $threads))))
    (call $work (i32.const 10))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 4)))
        (br_if $all (i32.eq (local.get $done) (local.get $threads)))
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
        (br $w)))
    (i32.load (i32.const 0))))
"""

FUEL = 10**7


def run(mode: str, *, seed: int, harts: int) -> tuple:
    """``run(3)`` with a ``pause`` host function that does ``mode``; returns (the result, what the host saw,
    the schedule's hash, the fuel left, the host calls, the thread switches)."""
    config = hwsim.Config()
    config.consume_fuel = True
    engine = Engine(config)
    module = Module(engine, PROGRAM)
    store = Store(engine, harts=harts)
    wasi = WasiConfig()
    wasi.threads = True
    wasi.thread_seed = seed
    wasi.time_slice = 40
    if harts > 1:
        wasi.hart_turn = 8
    store.set_wasi(wasi)
    seen: list[int] = []
    calls = [0]

    def pause(caller, x):
        calls[0] += 1
        if mode == "get":
            seen.append(store.get_fuel())
        elif mode == "get_twice":
            seen.append(store.get_fuel())
            seen.append(store.get_fuel())
        elif mode == "nested" and calls[0] % 3 == 0:  # a call back into wasm, on whatever hart this thread is
            seen.append(store.get_fuel())
            assert caller["work"](caller, 5) == 5
            seen.append(store.get_fuel())
        elif mode == "set_same":  # the count set to what it is (the time slice's parked part goes with it)
            store.set_fuel(store.get_fuel())
        elif mode == "set_less":
            store.set_fuel(store.get_fuel() - 3)
        return x

    linker = Linker(engine)
    linker.define_wasi()
    linker.define(store, "env", "memory", SharedMemory(engine, module.imports[1].type))
    linker.define_func(
        "env", "pause", hwsim.FuncType([hwsim.ValType.i32()], [hwsim.ValType.i32()]), pause, access_caller=True
    )
    exports = linker.instantiate(store, module).exports(store)
    store.set_fuel(FUEL)
    result = exports["run"](store, 3)
    threads = vm_store(store).threads
    return result, seen, threads.trace_hash, store.get_fuel(), calls[0], threads.switches


@pytest.mark.parametrize("harts", [1, 2])
def test_a_host_function_that_only_looks_at_the_fuel_changes_nothing(harts):
    for seed in range(examples(4)):
        quiet = run("none", seed=seed, harts=harts)
        assert quiet[5] > 10  # the threads were preempted (at checkpoints), between host calls
        for mode in ("get", "get_twice"):
            looked = run(mode, seed=seed, harts=harts)
            assert looked[0] == quiet[0] == 3 * 40 + 10
            assert looked[2:] == quiet[2:]  # the same schedule, the same fuel left, the same calls
            seen = looked[1]
            assert len(seen) == looked[4] * (2 if mode == "get_twice" else 1)
            assert all(a >= b for a, b in zip(seen, seen[1:])), "the fuel went up between host calls"
            assert seen[0] <= FUEL and seen[-1] >= looked[3]


@pytest.mark.parametrize("harts", [1, 2])
@pytest.mark.parametrize("mode", ["nested", "set_same", "set_less"])
def test_host_functions_that_run_wasm_or_set_the_fuel_on_threads_keep_the_program_right(harts, mode):
    for seed in range(examples(3)):
        result, seen, _, left, calls, _ = run(mode, seed=seed, harts=harts)
        assert result == 3 * 40 + 10 and calls == 3 * 40 + 10
        assert all(a >= b for a, b in zip(seen, seen[1:])), "the fuel went up between host calls"
        assert 0 < left < FUEL
        if mode == "nested":  # each nested work(5) costs what it costs outside threads (seen in pairs)
            costs = {before - after for before, after in zip(seen[::2], seen[1::2])}
            assert len(costs) == 1 and 0 < costs.pop() < 100
