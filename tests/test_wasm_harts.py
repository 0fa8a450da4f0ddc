"""WebAssembly threads on several harts (runtime/threads.py, VmStore.bind_hart) and the TLB shootdowns
that keep them from using a stale translation (machine/shootdown.py).

The question of issue 18: a thread racing a ``memory.protect`` made on another hart sees the old
permission or the new one, never a translation the protect removed, and which one depends only on
the seed."""

from __future__ import annotations

import subprocess
import sys

import pytest
from property_scale import examples
from test_wasi_threads import COUNTER
from test_wasi_threads import _setup as wasi_threads_setup

import hwsim
from hwsim import Engine, Linker, Module, SharedMemory, Store, Trap, WasiConfig
from hwsim.compiler.traps import TrapCode
from hwsim.errors import ArgumentTypeError, ConfigError, WasmtimeError
from hwsim.runtime.internal import vm_store

# Thread 0 (hart 0) writes page 1, so its TLBs hold the page's translation, spawns thread 1 (hart 1),
# spins ``spin`` times, then reads the flag and page 1.  Thread 1 takes page 1's access away (protect
# to none, or discard: the page's frame released) and then sets the flag.  ``race`` returns
# flag * 1000 + the word read: 42 (read before the change), 0 (discard's zero page, after it); a
# protected page traps.  1042 would be a stale translation: the flag says the change was complete,
# and hart 0 still read the page through its old entry.
RACE = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (import "env" "memory" (memory 2 2 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $discard i32)
    (if (local.get $discard)
      (then (call $discard (i32.const 4096) (i32.const 4096)))
      (else (call $protect (i32.const 4096) (i32.const 4096) (i32.const 0))))
    (i32.atomic.store (i32.const 0) (i32.const 1)))
  (func (export "race") (param $spin i32) (param $discard i32) (result i32)
    (local $flag i32)
    (i32.store (i32.const 0) (i32.const 0))
    (i32.store (i32.const 4096) (i32.const 42))
    (drop (call $spawn (local.get $discard)))
    (loop $l (br_if $l (local.tee $spin (i32.sub (local.get $spin) (i32.const 1)))))
    (local.set $flag (i32.atomic.load (i32.const 0)))
    (i32.add (i32.mul (local.get $flag) (i32.const 1000)) (i32.load (i32.const 4096)))))
"""


def _setup(wat: str, *, harts: int, seed: int = 0, hart_turn: int = 8):
    """``wat`` with wasi-threads on a Store of ``harts`` harts, turns of 1 to 2 * ``hart_turn`` instructions."""
    return wasi_threads_setup(wat, harts=harts, seed=seed, hart_turn=hart_turn)


def _race(seed: int, *, discard: int = 0, harts: int = 2, spin: int = 1) -> tuple[int | TrapCode, str, object]:
    """One race in a fresh Store: (the word read, or the trap's code), the trace hash, the machine."""
    store, exports = _setup(RACE, harts=harts, seed=seed)
    try:
        outcome: int | TrapCode = exports["race"](store, spin, discard)
    except Trap as trap:
        outcome = trap.code
    vm = vm_store(store)
    return outcome, vm.threads.trace_hash, vm.machine


def test_a_thread_racing_a_protect_on_another_hart_sees_the_old_or_the_new_permission_by_the_seed() -> None:
    outcomes = {}
    for seed in range(16):
        outcome, trace, _ = _race(seed)
        assert outcome in (42, TrapCode.MEMORY_ACCESS_DENIED), f"seed {seed}: {outcome}"  # never 1042: stale
        again, trace_again, _ = _race(seed)
        assert (again, trace_again) == (outcome, trace)  # the seed alone decides which
        outcomes[seed] = outcome
    assert set(outcomes.values()) == {42, TrapCode.MEMORY_ACCESS_DENIED}  # both happen


def test_a_thread_racing_a_discard_on_another_hart_never_reads_the_released_frame() -> None:
    seen = set()
    for seed in range(16):
        outcome, _, _ = _race(seed, discard=1)
        assert outcome in (42, 0, 1000), f"seed {seed}: {outcome}"  # 1042: the old frame, through a stale entry
        seen.add(outcome)
    assert 42 in seen and seen & {0, 1000}


# Thread 1 grows the memory, then sets the flag; thread 0 reads the flag, then the new page.
GROW = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 2 shared))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (drop (memory.grow (i32.const 1)))
    (i32.atomic.store (i32.const 0) (i32.const 1)))
  (func (export "race") (param $spin i32) (result i32)
    (local $flag i32)
    (i32.store (i32.const 0) (i32.const 0))
    (drop (call $spawn (i32.const 0)))
    (loop $l (br_if $l (local.tee $spin (i32.sub (local.get $spin) (i32.const 1)))))
    (local.set $flag (i32.atomic.load (i32.const 0)))
    (i32.add (i32.mul (local.get $flag) (i32.const 1000)) (i32.load (i32.const 65536)))))
"""


def test_a_memory_grow_on_another_hart_is_seen_once_it_is_complete() -> None:
    seen = set()
    for seed in range(16):
        store, exports = _setup(GROW, harts=2, seed=seed)
        try:
            outcome: int | TrapCode = exports["race"](store, 1)
        except Trap as trap:
            outcome = trap.code
            flag = vm_store(store).memories[0].read(0, 4)
            assert flag == bytes(4), f"seed {seed}: out of bounds after the grow was complete"
        assert outcome in (0, 1000, TrapCode.MEMORY_OUT_OF_BOUNDS), f"seed {seed}: {outcome}"
        seen.add(outcome)
    assert seen == {0, 1000, TrapCode.MEMORY_OUT_OF_BOUNDS}


def test_the_protect_is_a_shootdown_from_hart_1_that_fences_hart_0() -> None:
    _, _, machine = _race(0)
    hart0, hart1 = machine.harts
    assert (hart1.shootdowns, hart1.shootdown_ipis) == (1, 0)
    assert (hart0.shootdowns, hart0.shootdown_ipis) == (0, 1)
    assert hart0.shootdown_ns > 0 and hart1.shootdown_ns == 0


def test_trace_hart_shows_the_shootdown_and_each_remote_fence() -> None:
    from hwsim.trace import TRACE, RingSink

    ring = RingSink()
    TRACE.enable("hart", ring)
    try:
        outcome, _, _ = _race(0, harts=4, spin=50)
    finally:
        TRACE.disable()
    assert outcome is TrapCode.MEMORY_ACCESS_DENIED  # (a long spin: the protect comes first)
    events = [(fields["hartid"], fields["event"], fields["detail"]) for _, _, fields in ring.events]
    assert [h for h, e, d in events if e == "shootdown" and d.endswith("+0x1000: 3 harts fenced")] == [1]
    fenced = sorted(h for h, e, d in events if e == "fences" and d.endswith("(a shootdown IPI from hart 1)"))
    assert fenced == [0, 2, 3]


def test_a_change_the_host_makes_between_calls_flushes_every_hart_without_a_shootdown() -> None:
    store, exports = _setup(RACE, harts=2)
    try:  # page 1 resident afterwards, read-write or (if the protect ran) none
        exports["race"](store, 1, 0)
    except Trap:
        pass
    machine = vm_store(store).machine
    before = [(h.shootdowns, h.shootdown_ipis) for h in machine.harts]
    flushes = [h.cpu_tlb_flushes + h.cpu_tlb_page_flushes for h in machine.harts]
    vm_store(store).memories[0].control().protect(4096, 4096, 1)  # a PTE change from the host: no hart runs
    assert [(h.shootdowns, h.shootdown_ipis) for h in machine.harts] == before
    # every hart's Unicorn TLB loses the page (that page alone where it can, else all of it)
    assert all(h.cpu_tlb_flushes + h.cpu_tlb_page_flushes > f for h, f in zip(machine.harts, flushes))


PROTECT = """
(module
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (memory (export "memory") 2)
  (func (export "protect") (param i32 i32 i32) (call $protect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
"""


def test_a_protect_from_wasm_is_a_shootdown_and_a_trapped_one_leaves_no_hart_marked_running() -> None:
    engine = Engine()
    store = Store(engine, harts=3)
    exports = Linker(engine).instantiate(store, Module(engine, PROTECT)).exports(store)
    harts = vm_store(store).machine.harts
    exports["load"](store, 4096)  # page 1 resident
    with pytest.raises(Trap, match="protection must be 0"):
        exports["protect"](store, 4096, 4096, 7)  # (a trap of the builtin ends the run on hart 0)
    vm_store(store).memories[0].control().protect(4096, 4096, 1)  # the host's: no shootdown
    assert [(h.shootdowns, h.shootdown_ipis) for h in harts] == [(0, 0)] * 3
    exports["protect"](store, 4096, 4096, 2)  # hart 0's (no threads: the others never ran, still fenced)
    assert [(h.shootdowns, h.shootdown_ipis) for h in harts] == [(1, 0), (0, 1), (0, 1)]


@pytest.mark.parametrize("harts", [1, 2, 4])
def test_the_atomic_counter_never_loses_an_update_on_any_number_of_harts(harts: int) -> None:
    for seed in range(examples(4)):
        store, exports = _setup(COUNTER, harts=harts, seed=seed)
        assert exports["run"](store, 3, 1) == 3 * 40
        turns = vm_store(store).threads.hart_turns
        assert all(turns[t % harts] for t in range(4))  # thread t ran on hart t mod N


def test_the_racy_counter_loses_updates_between_harts_and_a_seed_replays_it() -> None:
    runs = {}
    for seed in range(examples(8)):
        results = []
        for _ in range(2):
            store, exports = _setup(COUNTER, harts=2, seed=seed)
            results.append((exports["run"](store, 3, 0), vm_store(store).threads.trace_hash))
        assert results[0] == results[1]  # the same seed, the same interleaving and count
        runs[seed] = results[0]
    assert min(count for count, _ in runs.values()) < 3 * 40
    assert len({h for _, h in runs.values()}) > 1


def test_after_a_call_the_store_is_back_on_hart_0() -> None:
    store, exports = _setup(COUNTER, harts=4)
    exports["run"](store, 3, 1)
    vm = vm_store(store)
    assert vm.machine is vm.home and vm.home.hartid == 0
    assert exports["run"](store, 3, 1) == 3 * 40  # and a second root call spreads again


# Each thread calls a host function that returns a value from its arguments, and a function that throws
# and catches a wasm exception, and adds what came back into a shared sum: results written to another
# hart's registers (a Crossing or a landing batch of hart 0's) would change the sum or crash.
HOST_AND_EXCEPTIONS = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "host" "twice" (func $twice (param i32 i64) (result i64)))
  (import "env" "memory" (memory 1 1 shared))
  (tag $boom (param i32))
  (func $catch (param $v i32) (result i32)
    (block $h (result i32)
      (try_table (catch $boom $h) (throw $boom (local.get $v)))
      (i32.const -1)))
  (func $work (param $v i32)
    (local $i i32)
    (loop $l
      (drop (i64.atomic.rmw.add (i32.const 8) (call $twice (local.get $v) (i64.extend_i32_u (local.get $i)))))
      (drop (i32.atomic.rmw.add (i32.const 16) (call $catch (local.get $v))))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 10)))))
  (func (export "wasi_thread_start") (param $tid i32) (param $v i32)
    (call $work (local.get $v))
    (drop (i32.atomic.rmw.add (i32.const 4) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 4) (i32.const 1))))
  (func (export "run") (result i64 i32)
    (local $done i32)
    (drop (call $spawn (i32.const 1))) (drop (call $spawn (i32.const 2))) (drop (call $spawn (i32.const 3)))
    (call $work (i32.const 100))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 4)))
        (br_if $all (i32.eq (local.get $done) (i32.const 3)))
        (drop (memory.atomic.wait32 (i32.const 4) (local.get $done) (i64.const -1)))
        (br $w)))
    (i64.load (i32.const 8)) (i32.load (i32.const 16))))
"""


def test_host_function_results_and_caught_exceptions_land_on_the_calling_threads_hart() -> None:
    engine = Engine(metering=True)
    module = Module(engine, HOST_AND_EXCEPTIONS)
    for seed in range(examples(4)):
        store = Store(engine, harts=4)
        config = WasiConfig()
        config.threads = True
        config.thread_seed = seed
        config.hart_turn = 8
        store.set_wasi(config)
        linker = Linker(engine)
        linker.define_wasi()
        linker.define(store, "env", "memory", SharedMemory(engine, module.imports[2].type))
        linker.define_func(
            "host",
            "twice",
            hwsim.FuncType([hwsim.ValType.i32(), hwsim.ValType.i64()], [hwsim.ValType.i64()]),
            lambda v, i: 2 * v + i,
        )
        exports = linker.instantiate(store, module).exports(store)
        values = (1, 2, 3, 100)
        assert exports["run"](store) == [sum(2 * v * 10 + 45 for v in values), 10 * sum(values)]
        assert all(vm_store(store).threads.hart_turns)  # every hart ran a thread


THREAD_TRAP = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (func $fail (unreachable))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32) (call $fail))
  (func (export "run") (result i32)
    (drop (call $spawn (i32.const 0)))
    (drop (memory.atomic.wait32 (i32.const 0) (i32.const 0) (i64.const -1)))
    (i32.const 7)))
"""


def test_a_trap_in_a_thread_on_hart_1_is_read_on_hart_1_and_the_store_goes_back_to_hart_0() -> None:
    store, exports = _setup(THREAD_TRAP, harts=2)
    with pytest.raises(Trap) as info:
        exports["run"](store)
    assert info.value.code is TrapCode.UNREACHABLE
    assert [frame.func_index for frame in info.value.frames][:2] == [1, 2]  # $fail, wasi_thread_start
    vm = vm_store(store)
    assert vm.threads.ended_in == 1 and vm.machine is vm.home


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"harts": 0}, ConfigError, "Store(harts): a Store's machine has 1 to 8 harts, not 0"),
        ({"harts": 9}, ConfigError, "Store(harts): a Store's machine has 1 to 8 harts, not 9"),
        ({"harts": "2"}, ArgumentTypeError, "Store(harts): expected an int"),
        (
            {"harts": 2, "machine": hwsim.Machine()},
            ConfigError,
            "Store(harts): a given machine brings its own harts (its board's harts = N)",
        ),
    ],
)
def test_store_harts_refused(kwargs, error, message) -> None:
    with pytest.raises(error) as info:
        Store(Engine(), **kwargs)
    assert message in str(info.value)


def test_hart_turn_refused_below_zero() -> None:
    config = WasiConfig()
    with pytest.raises(WasmtimeError) as info:
        config.hart_turn = -1
    assert str(info.value) == "WasiConfig.hart_turn: expected 0 to 1099511627776, not -1"


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "hwsim", "wasm", "run", *args], capture_output=True, text=True)


def test_cli_runs_threads_on_harts_and_reports_the_shootdowns(tmp_path) -> None:
    program = tmp_path / "race.wat"
    program.write_text(RACE)
    done = _cli(
        "--harts", "2", "--hart-turn", "8", "--thread-seed", "3", "--stats", "--invoke", "race", str(program), "1", "0"
    )
    assert done.returncode in (0, 134), done.stderr
    assert "hwsim: harts: 2; TLB shootdowns: 1" in done.stderr
    assert "hwsim: hart 0: " in done.stderr and "0 shootdowns started, 1 shootdown IPIs received" in done.stderr
    assert "hwsim: hart 1: " in done.stderr and "1 shootdowns started, 0 shootdown IPIs received" in done.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--harts", "9"), "--harts must be 1 to 8, not 9"),
        (("--harts", "0"), "--harts must be 1 to 8, not 0"),
        (("--hart-turn", "4"), "--hart-turn N sets the turns of several harts: N >= 1 and --harts > 1, not 4"),
        (("--harts", "2", "--hart-turn", "0"), "--hart-turn N sets the turns of several harts"),
    ],
)
def test_cli_refuses_bad_harts(tmp_path, args, message) -> None:
    program = tmp_path / "race.wat"
    program.write_text(RACE)
    done = _cli(*args, str(program))
    assert done.returncode == 2
    assert message in done.stderr
    assert "Traceback" not in done.stderr
