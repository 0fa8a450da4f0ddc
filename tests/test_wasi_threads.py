"""wasi-threads on one hart (hwsim/runtime/threads.py, hwsim/wasi/threads.py): spawning, the seeded
scheduler's determinism, waiting and waking in virtual time, and the error paths of thread-spawn.

The wasi-testsuite's own wasi-threads programs run in tests/test_wasi_testsuite.py."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from property_scale import examples

import hwsim
from hwsim import Engine, Linker, Module, SharedMemory, Store, Trap, WasiConfig
from hwsim.compiler.traps import TrapCode
from hwsim.runtime.internal import vm_store

ROOT = Path(__file__).resolve().parents[1]

# A counter that threads increment ITER times each: racily (load; a call, which is a preemption point;
# store) or atomically.  ``run(threads, atomic)`` spawns them, waits until all are done, returns the count.
COUNTER = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))
  (func $pause)
  (func $work (param $n i32) (param $atomic i32)
    (local $tmp i32)
    (loop $l
      (if (local.get $atomic)
        (then (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1))) (call $pause))
        (else
          (local.set $tmp (i32.load (i32.const 0)))
          (call $pause)
          (i32.store (i32.const 0) (i32.add (local.get $tmp) (i32.const 1)))))
      (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $work (i32.const 40) (local.get $arg))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "run") (param $threads i32) (param $atomic i32) (result i32)
    (local $i i32) (local $done i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4) (i32.const 0))
    (loop $s
      (if (i32.le_s (call $spawn (local.get $atomic)) (i32.const 0)) (then unreachable))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $s (i32.lt_u (local.get $threads))))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 4)))
        (br_if $all (i32.eq (local.get $done) (local.get $threads)))
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
        (br $w)))
    (i32.load (i32.const 0))))
"""


STRAIGHT_COUNTER = COUNTER.replace(
    """          (local.set $tmp (i32.load (i32.const 0)))
          (call $pause)
          (i32.store (i32.const 0) (i32.add (local.get $tmp) (i32.const 1)))))""",
    """          (i32.store (i32.const 0) (i32.add (i32.load (i32.const 0)) (i32.const 1)))))""",
)


def _command(counter: str) -> str:
    """``counter`` as a WASI command: ``_start`` exits with ``run(3, 0)`` (racy, three threads)."""
    return counter.replace(
        '(import "env" "memory" (memory 1 1 shared))',
        '(import "env" "memory" (memory 1 1 shared))\n'
        '  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))',
    ).replace(
        '(func (export "run")',
        '(func (export "_start") (call $exit (call $run (i32.const 3) (i32.const 0))))\n  (func $run (export "run")',
    )


def _setup(
    wat: str,
    *,
    seed: int = 0,
    threads: bool = True,
    time_slice: int = 50,
    max_threads: int | None = None,
    instruction_slice: int = 0,
    harts: int = 1,
    hart_turn: int = 0,
):
    """``wat`` instantiated with wasi-threads in a new Store (of ``harts`` harts: test_wasm_harts.py)."""
    engine = Engine(metering=True)
    module = Module(engine, wat)
    store = Store(engine, harts=harts)
    config = WasiConfig()
    config.threads = threads
    config.thread_seed = seed
    config.time_slice = time_slice
    config.instruction_slice = instruction_slice
    config.hart_turn = hart_turn
    if max_threads is not None:
        config.max_threads = max_threads
    store.set_wasi(config)
    linker = Linker(engine)
    linker.define_wasi()
    for imp in module.imports:
        if isinstance(imp.type, hwsim.MemoryType) and imp.type.is_shared:
            linker.define(store, imp.module, imp.name, SharedMemory(engine, imp.type))
    instance = linker.instantiate(store, module)
    return store, instance.exports(store)


def _counter(seed: int, threads: int = 3, atomic: int = 0) -> tuple[int, str]:
    store, exports = _setup(COUNTER, seed=seed)
    count = exports["run"](store, threads, atomic)
    return count, vm_store(store).threads.trace_hash


def test_spawned_threads_run_to_the_end_and_the_atomic_counter_never_loses_an_update() -> None:
    for seed in range(examples(10)):
        count, _ = _counter(seed, atomic=1)
        assert count == 3 * 40


def test_same_seed_same_interleaving_and_result() -> None:
    """Determinism as a property: every seed, run twice in fresh Stores, gives the same schedule (the
    hash of every decision) and the same count."""
    for seed in range(examples(40)):
        assert _counter(seed) == _counter(seed)


def test_different_seeds_interleave_a_racy_counter_differently() -> None:
    runs = {seed: _counter(seed) for seed in range(examples(20))}
    counts = {count for count, _ in runs.values()}
    hashes = {h for _, h in runs.values()}
    assert len(hashes) > 1
    assert len(counts) > 1  # the racy counter loses a different number of updates
    assert min(counts) < 3 * 40  # and loses some


WAIT_TIMEOUT = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param i32 i32))
  (func (export "wait") (param $timeout i64) (result i32)
    (memory.atomic.wait32 (i32.const 0) (i32.const 0) (local.get $timeout))))
"""


def test_a_wait_times_out_in_virtual_time_not_host_time() -> None:
    store, exports = _setup(WAIT_TIMEOUT)
    start = time.monotonic()
    assert exports["wait"](store, 3_000_000_000) == 2  # 3 s of virtual time: timed out
    assert time.monotonic() - start < 2.0
    assert vm_store(store).threads.ended_in == 0


def test_a_wait_forever_with_no_other_thread_is_a_deadlock_trap() -> None:
    store, exports = _setup(WAIT_TIMEOUT)
    with pytest.raises(Trap) as info:
        exports["wait"](store, -1)
    assert info.value.code is TrapCode.DEADLOCK
    assert "every thread waits forever (thread 0: memory.atomic.wait32 at 0x0)" in str(info.value)


SPAWN = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (if (i32.eq (local.get $arg) (i32.const 7)) (then unreachable))
    (if (i32.eq (local.get $arg) (i32.const 8)) (then (call $deep)))
    (drop (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1))))
  (func $deep (call $deep))
  (func (export "spawn") (param i32) (result i32) (call $spawn (local.get 0)))
  (func (export "spawn_and_wait") (param i32) (result i32)
    (local $tid i32)
    (local.set $tid (call $spawn (local.get 0)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const 10000000000)))
    (local.get $tid)))
"""


def test_thread_ids_count_up_from_one_and_stay_unique_in_the_store() -> None:
    store, exports = _setup(SPAWN)
    assert [exports["spawn"](store, 0) for _ in range(3)] == [1, 2, 3]  # (each call's threads end with it)


LIMIT = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param i32 i32)
    (drop (memory.atomic.wait32 (i32.const 64) (i32.const 0) (i64.const -1))))
  (func (export "spawn3") (result i32 i32 i32)
    (call $spawn (i32.const 0)) (call $spawn (i32.const 0)) (call $spawn (i32.const 0))))
"""


def test_spawn_past_max_threads_returns_minus_one_with_the_reason() -> None:
    store, exports = _setup(LIMIT, max_threads=2)
    assert exports["spawn3"](store) == [1, 2, -1]
    assert vm_store(store).threads.spawn_failure == "2 threads are running, the limit (WasiConfig.max_threads)"


def test_a_trap_in_a_spawned_thread_ends_the_root_call() -> None:
    store, exports = _setup(SPAWN)
    with pytest.raises(Trap) as info:
        exports["spawn_and_wait"](store, 7)
    assert info.value.code is TrapCode.UNREACHABLE
    assert vm_store(store).threads.ended_in == 1


def test_a_thread_overflowing_its_stack_traps_call_stack_exhausted() -> None:
    store, exports = _setup(SPAWN, time_slice=20_000)
    with pytest.raises(Trap) as info:
        exports["spawn_and_wait"](store, 8)
    assert info.value.code is TrapCode.STACK_OVERFLOW
    assert vm_store(store).threads.ended_in == 1


@pytest.mark.parametrize(
    "wat, why",
    [
        (
            """(module (import "wasi" "thread-spawn" (func $s (param i32) (result i32)))
                 (memory (export "memory") 1 1 shared)
                 (func (export "wasi_thread_start") (param i32 i32))
                 (func (export "spawn") (result i32) (call $s (i32.const 0))))""",
            "the module imports no shared memory for its threads to share",
        ),
        (
            """(module (import "wasi" "thread-spawn" (func $s (param i32) (result i32)))
                 (import "env" "memory" (memory 1 1 shared))
                 (func (export "spawn") (result i32) (call $s (i32.const 0))))""",
            "the module exports no function `wasi_thread_start`",
        ),
        (
            """(module (import "wasi" "thread-spawn" (func $s (param i32) (result i32)))
                 (import "env" "memory" (memory 1 1 shared))
                 (func (export "wasi_thread_start") (param i32))
                 (func (export "spawn") (result i32) (call $s (i32.const 0))))""",
            "`wasi_thread_start` has type [i32] -> [], not [i32, i32] -> []",
        ),
    ],
    ids=["no-shared-memory", "no-entry-point", "wrong-entry-type"],
)
def test_spawn_errors_return_minus_one(wat: str, why: str) -> None:
    store, exports = _setup(wat)
    assert exports["spawn"](store) == -1
    assert vm_store(store).threads.spawn_failure == why


def test_spawn_with_wasi_threads_off_returns_minus_one() -> None:
    store, exports = _setup(SPAWN, threads=False)
    assert exports["spawn"](store, 0) == -1
    assert vm_store(store).threads is None


def test_wasi_config_thread_settings_are_checked() -> None:
    config = WasiConfig()
    with pytest.raises(hwsim.WasmtimeError, match="WasiConfig.max_threads: expected 1 to 239, not 0"):
        config.max_threads = 0
    with pytest.raises(TypeError, match="WasiConfig.threads: expected a bool, not int"):
        config.threads = 1  # type: ignore[assignment]
    with pytest.raises(TypeError, match="WasiConfig.thread_seed: expected an int, not str"):
        config.thread_seed = "1"  # type: ignore[assignment]


SLEEPER = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $now (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (export "memory" (memory 0))
  (func (export "wasi_thread_start") (param i32 i32)
    ;; sleep 2 s (a relative clock subscription), then exit 5
    (i64.store (i32.const 0x118) (i64.const 2000000000))
    (drop (call $poll (i32.const 0x100) (i32.const 0x200) (i32.const 1) (i32.const 0x300)))
    (call $exit (i32.const 5)))
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (loop $spin (br $spin))))
"""


def _cli(wat_text: str, tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    program = tmp_path / "p.wat"
    program.write_text(wat_text)
    return subprocess.run(
        [sys.executable, "-m", "hwsim", "wasm", "run", *args, str(program)],
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )


def test_cli_a_sleeping_thread_wakes_in_virtual_time_while_main_spins(tmp_path: Path) -> None:
    proc = _cli(SLEEPER, tmp_path)
    assert proc.returncode == 5, proc.stderr


def test_cli_a_trap_in_a_spawned_thread_exits_1(tmp_path: Path) -> None:
    program = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param i32 i32) unreachable)
  (func (export "_start")
    (drop (call $spawn (i32.const 0)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))))
"""
    proc = _cli(program, tmp_path)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith(
        "Error: thread 1 trapped\n\nCaused by:\n    0: error while executing at wasm backtrace:"
    )
    assert "wasm `unreachable` instruction executed" in proc.stderr


def test_cli_wasi_threads_refuses_an_unshared_imported_memory(tmp_path: Path) -> None:
    program = """(module (import "env" "memory" (memory 1)) (func (export "_start")))"""
    proc = _cli(program, tmp_path, "--wasi-threads")
    assert proc.returncode == 2
    assert "memory `env::memory` is not shared; a wasi-threads program must import a shared memory" in proc.stderr


def test_cli_seed_changes_the_interleaving_of_a_racy_program(tmp_path: Path) -> None:
    program = _command(COUNTER)
    codes = [_cli(program, tmp_path, "--time-slice", "50", "--thread-seed", str(seed)).returncode for seed in range(6)]
    assert all(40 <= c <= 120 for c in codes), codes  # the count, less what the races lost
    assert len(set(codes)) > 1, codes
    assert _cli(program, tmp_path, "-S", "threads", "--time-slice", "50", "--thread-seed", "3").returncode == codes[3]
    assert _cli(program, tmp_path).returncode == 120  # the default slice holds each thread's whole loop


MANY_ARGS = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  ;; 12 i64 arguments: the last four cross in the ABI area, one for the hart (the scheduler keeps a copy
  ;; per thread; the callee takes them before its entry checkpoint, so this passes without it too)
  (func $sum (param i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64 i64) (result i64)
    (i64.add (i64.add (i64.add (local.get 0) (local.get 8)) (i64.add (local.get 9) (local.get 10)))
             (local.get 11)))
  (func $check (param $k i64) (param $n i32)
    (loop $l
      (if (i64.ne (call $sum (local.get $k) (i64.const 0) (i64.const 0) (i64.const 0) (i64.const 0)
                             (i64.const 0) (i64.const 0) (i64.const 0)
                             (local.get $k) (local.get $k) (local.get $k) (local.get $k))
                  (i64.mul (local.get $k) (i64.const 5)))
        (then unreachable))
      (local.tee $n (i32.sub (local.get $n) (i32.const 1)))
      (br_if $l)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (call $check (i64.extend_i32_u (local.get $tid)) (i32.const 200))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "run") (result i32)
    (local $done i32)
    (drop (call $spawn (i32.const 0)))
    (drop (call $spawn (i32.const 0)))
    (call $check (i64.const 1000) (i32.const 200))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 0)))
        (br_if $all (i32.eq (local.get $done) (i32.const 2)))
        (drop (memory.atomic.wait32 (i32.const 0) (local.get $done) (i64.const -1)))
        (br $w)))
    (local.get $done)))
"""


def test_calls_with_arguments_past_the_registers_stay_right_under_preemption() -> None:
    for seed in range(examples(5)):
        store, exports = _setup(MANY_ARGS, seed=seed, time_slice=3)
        assert exports["run"](store) == 2
        assert vm_store(store).threads.switches > 100


def test_fuel_is_counted_across_threads_and_running_out_traps() -> None:
    config = hwsim.Config()
    config.consume_fuel = True
    engine = Engine(config)
    module = Module(engine, COUNTER)
    for fuel, traps in ((10**7, False), (1_000, True)):
        store = Store(engine)
        wasi = WasiConfig()
        wasi.threads = True
        wasi.time_slice = 50
        store.set_wasi(wasi)
        store.set_fuel(fuel)
        linker = Linker(engine)
        linker.define_wasi()
        linker.define(store, "env", "memory", SharedMemory(engine, module.imports[1].type))
        exports = linker.instantiate(store, module).exports(store)
        if traps:
            with pytest.raises(Trap) as info:
                exports["run"](store, 3, 1)
            assert info.value.code is TrapCode.OUT_OF_FUEL
        else:
            assert exports["run"](store, 3, 1) == 120
            used = fuel - store.get_fuel()
            assert 3 * 40 * 10 < used < 10**5  # every thread's work, counted once


def test_cli_trace_thread_shows_the_schedule(tmp_path: Path) -> None:
    suite = ROOT.parent / "shared" / "wasi-testsuite" / "tests" / "proposals" / "wasi-threads"
    program = suite / "wasi_threads_spawn.wat"
    if not program.exists():
        pytest.skip("the WASI test suite is not beside the repository")
    proc = _cli(program.read_text(), tmp_path, "--trace", "thread,host")
    assert proc.returncode == 22, proc.stderr
    lines = [line.split("] ", 1)[1] for line in proc.stderr.splitlines()]
    assert lines[0] == "thread thread 1 spawn slot 1 (virtual time 0 ns)"
    assert "thread thread 0 block memory.atomic.wait32 at 0x0 (virtual time 70 ns)" in lines
    assert any(line.startswith("thread thread 1 notify 0x0: 1 woken") for line in lines)
    assert lines[-1].startswith("host  proc_exit(0x16) -> SUCCESS")


def test_cli_trace_host_shows_a_call_that_blocks_and_runs_again(tmp_path: Path) -> None:
    proc = _cli(SLEEPER, tmp_path, "--trace", "host")
    assert proc.returncode == 5, proc.stderr
    polls = [line.split("] ", 1)[1] for line in proc.stderr.splitlines() if "poll_oneoff" in line]
    assert [p.split(" -> ")[1].split(" [")[0] for p in polls] == [
        "blocked (the thread waits; the call runs again when it goes on)",
        "SUCCESS",
    ]


def test_cli_a_time_limit_stops_every_thread_as_a_main_module_trap(tmp_path: Path) -> None:
    program = """
(module
  (import "env" "memory" (memory 1 1 shared))
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (func (export "wasi_thread_start") (param i32 i32) (loop $l (br $l)))
  (func (export "_start") (drop (call $spawn (i32.const 0))) (loop $l (br $l))))
"""
    proc = _cli(program, tmp_path, "--time-limit", "0.5")
    assert proc.returncode == 134, proc.stderr
    assert "time budget of 500000 us used up" in proc.stderr


def test_a_dropped_wasi_store_is_freed() -> None:
    """The Store's finalizer (closing the host files) must not keep the Store and its machine alive."""
    import gc
    import weakref

    store, exports = _setup(COUNTER, seed=1)
    assert exports["run"](store, 2, 1) == 80
    engine_store = weakref.ref(vm_store(store))
    del store, exports
    gc.collect()
    assert engine_store() is None


def test_instruction_slices_expose_a_race_in_straight_line_code() -> None:
    """``counter = counter + 1`` with no call in between: checkpoints alone never split the load from
    the store, so no update is lost; slices of a few instructions do, and the same seed loses the same."""
    straight = STRAIGHT_COUNTER
    assert straight != COUNTER

    def run(seed: int, insns: int) -> tuple[int, str]:
        store, exports = _setup(straight, seed=seed, instruction_slice=insns)
        return exports["run"](store, 3, 0), vm_store(store).threads.trace_hash

    assert {run(seed, 0)[0] for seed in range(5)} == {120}
    sliced = [run(seed, 4) for seed in range(examples(8))]
    assert min(count for count, _ in sliced) < 120
    assert run(3, 4) == sliced[3]


def test_cli_preempt_insns(tmp_path: Path) -> None:
    program = _command(STRAIGHT_COUNTER)
    plain = {_cli(program, tmp_path, "--thread-seed", str(seed)).returncode for seed in range(2)}
    assert plain == {120}
    sliced = [_cli(program, tmp_path, "--preempt-insns", "3", "--thread-seed", str(s)).returncode for s in range(4)]
    assert all(40 <= c <= 120 for c in sliced), sliced
    assert min(sliced) < 120, sliced
