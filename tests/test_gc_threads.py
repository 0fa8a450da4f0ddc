"""GC collections while wasi-threads run (runtime/gcheap.py ``thread_roots``, runtime/threads.py ``Stop``):
every switched-out thread's frames are walked from where it stopped (a blocking builtin, a host function, a
metered checkpoint), and a thread stopped at no safepoint defers the collection."""

from __future__ import annotations

import pytest

import hwsim
from hwsim import Engine, Global, Linker, Module, SharedMemory, Store, Trap, WasiConfig
from hwsim.compiler.traps import TrapCode
from hwsim.runtime.internal import vm_store
from hwsim.runtime.threads import Stop

# A list's sum (both modules below).
SUM = """\
  (func $sum (param $l (ref null $node)) (result i32)
    (local $s i32)
    (block $done
      (loop $k
        (br_if $done (ref.is_null (local.get $l)))
        (local.set $s (i32.add (local.get $s) (struct.get $node $v (local.get $l))))
        (local.set $l (struct.get $node $next (local.get $l)))
        (br $k)))
    (local.get $s))
"""

# Each thread (and the main one) builds a list of 20 nodes held only in a local, then alternates blocking
# (memory.atomic.wait with a timeout: another thread runs) and making garbage; then it sums its list.  A
# list freed by a collection that missed a thread's frames would be reused, zeroed, by the garbage.
WAT = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (export "memory" (memory 0))
  (type $node (struct (field $v i32) (field $next (ref null $node))))
  (type $b (array (mut i8)))
  (func $build (param $base i32) (param $n i32) (result (ref null $node))
    (local $l (ref null $node))
    (loop $k
      (if (local.get $n)
        (then
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (local.set $l (struct.new $node (i32.add (local.get $base) (local.get $n)) (local.get $l)))
          (br $k))))
    (local.get $l))
{SUM}
  (func $churn (param $n i32)
    (loop $k
      (if (local.get $n)
        (then
          (drop (array.new_default $b (i32.const 200)))
          (local.set $n (i32.sub (local.get $n) (i32.const 1)))
          (br $k)))))
  (func $sleep  ;; poll_oneoff on a relative clock subscription of 1 us: blocks in a host function
    (i64.store (i32.const 2048) (i64.const 0))           ;; userdata
    (i32.store8 (i32.const 2056) (i32.const 0))          ;; tag: clock
    (i32.store (i32.const 2064) (i32.const 1))           ;; clock id: monotonic
    (i64.store (i32.const 2072) (i64.const 1000))        ;; timeout (ns)
    (i64.store (i32.const 2080) (i64.const 0))           ;; precision
    (i32.store16 (i32.const 2088) (i32.const 0))         ;; flags: relative
    (drop (call $poll (i32.const 2048) (i32.const 2304) (i32.const 1) (i32.const 2400))))
  (func $work (param $tid i32) (result i32)
    (local $l (ref null $node)) (local $i i32)
    (local.set $l (call $build (i32.mul (local.get $tid) (i32.const 1000)) (i32.const 20)))
    (loop $k
      (if (i32.and (local.get $i) (i32.const 1))
        (then (drop (memory.atomic.wait32 (i32.const 1024) (i32.const 0) (i64.const 1000))))
        (else (call $sleep)))
      (call $churn (i32.const 10))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $k (i32.lt_u (i32.const 12))))
    (call $sum (local.get $l)))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (i32.store (i32.shl (local.get $arg) (i32.const 2)) (call $work (local.get $arg)))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 0) (i32.const 1))))
  (func (export "result") (param $t i32) (result i32) (i32.load (i32.shl (local.get $t) (i32.const 2))))
  (func (export "run") (param $threads i32) (result i32)
    (local $i i32) (local $done i32)
    (i32.store (i32.const 0) (i32.const 0))
    (loop $s
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.le_s (call $spawn (local.get $i)) (i32.const 0)) (then unreachable))
      (br_if $s (i32.lt_u (local.get $i) (local.get $threads))))
    (local.set $i (call $work (i32.const 0)))
    (block $all
      (loop $w
        (local.set $done (i32.atomic.load (i32.const 0)))
        (br_if $all (i32.eq (local.get $done) (local.get $threads)))
        (drop (memory.atomic.wait32 (i32.const 0) (local.get $done) (i64.const -1)))
        (br $w)))
    (local.get $i)))
""".replace("{SUM}\n", SUM)

THREADS = 4


def _setup(
    *, limit: int, seed: int = 0, instruction_slice: int = 0, harts: int = 1, hart_turn: int = 0, wat: str = WAT
):
    engine = Engine(metering=True, cache=False)
    module = Module(engine, wat)
    store = Store(engine, harts=harts)
    config = WasiConfig()
    config.threads = True
    config.thread_seed = seed
    config.time_slice = 40
    config.instruction_slice = instruction_slice
    config.hart_turn = hart_turn
    store.set_wasi(config)
    linker = Linker(engine)
    linker.define_wasi()
    for imp in module.imports:
        if isinstance(imp.type, hwsim.MemoryType) and imp.type.is_shared:
            linker.define(store, imp.module, imp.name, SharedMemory(engine, imp.type))
        elif isinstance(imp.type, hwsim.GlobalType):  # SHARED's list: one global every thread's instance imports
            linker.define(store, imp.module, imp.name, Global(store, imp.type, None))
    instance = linker.instantiate(store, module)
    heap = vm_store(store).gc_heap
    heap.limit = limit
    return store, instance.exports(store), heap


def _expected(tid: int) -> int:
    return 20 * 1000 * tid + 190  # 1000*tid + 0 + ... + 1000*tid + 19


def _run(store, exports) -> list[int]:
    main = exports["run"](store, THREADS)
    results = [exports["result"](store, t) for t in range(1, THREADS + 1)]
    return [main, *results]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_threads_lists_live_only_on_their_stacks_survive_collections(seed: int) -> None:
    """5 threads, 3.2 KiB of lists live and ~125 KiB of garbage under an 8 KiB heap: collections happen while
    the other threads are blocked (a wait, a WASI call) or preempted at checkpoints; every list is intact."""
    store, exports, heap = _setup(limit=8 << 10, seed=seed)
    stops: set[Stop] = set()
    collect = heap.collect

    def spy(m, roots=()):  # which kinds of stops the collections walked
        threads = vm_store(store).threads
        stops.update(t.stop for t in threads.stopped())
        return collect(m, roots)

    heap.collect = spy  # type: ignore[method-assign]
    assert _run(store, exports) == [_expected(t) for t in range(THREADS + 1)]
    assert heap.collections >= 10 and heap.deferred == 0
    assert heap.footprint <= 2 * heap.limit  # the garbage was reclaimed: memory stayed bounded
    assert {Stop.BLOCKED, Stop.CHECKPOINT} <= stops


def test_threads_on_several_harts_collect_too() -> None:
    store, exports, heap = _setup(limit=8 << 10, harts=2)
    assert _run(store, exports) == [_expected(t) for t in range(THREADS + 1)]
    assert heap.collections >= 10 and heap.deferred == 0


@pytest.mark.parametrize("kw", [{"instruction_slice": 300}, {"harts": 2, "hart_turn": 200}])
def test_threads_preempted_at_any_instruction_defer_a_collection_until_they_reach_safepoints(kw) -> None:
    """Error path: a thread stopped at no safepoint has frames the collector cannot read exactly, so the
    collection is deferred and the scheduler switches at checkpoints only until one runs.  Under a 4 KiB heap
    (3.4 KiB live at most) the lists stay intact; without the switch to checkpoints the deferrals let the heap
    reach twice its limit and trap."""
    store, exports, heap = _setup(limit=4 << 10, **kw)
    assert _run(store, exports) == [_expected(t) for t in range(THREADS + 1)]
    assert heap.deferred > 0 and "not at a safepoint" in heap.deferred_why
    assert heap.collections >= 50 and not heap.wants_safepoints
    assert heap.footprint <= 2 * heap.limit


def test_a_live_set_too_large_for_the_heap_still_traps_with_threads() -> None:
    store, exports, heap = _setup(limit=2 << 10)  # 3.2 KiB of lists cannot fit
    with pytest.raises(Trap) as exc:
        _run(store, exports)
    assert exc.value.trap_code == TrapCode.GC_HEAP_EXHAUSTED


# One list reached from several threads: the main thread publishes it in an imported global (every thread's
# instance imports the same one), each thread takes it into a local and waits; the main thread clears the
# global and makes garbage while only the blocked threads' stacks hold the list; each sums it at the end.
SHARED = """
(module
  (import "wasi" "thread-spawn" (func $spawn (param i32) (result i32)))
  (import "env" "memory" (memory 1 1 shared))
  (import "env" "list" (global $list (mut externref)))
  (export "memory" (memory 0))
  (type $node (struct (field $v i32) (field $next (ref null $node))))
  (type $b (array (mut i8)))
{SUM}
  (func $wait_for (param $addr i32) (param $value i32)  ;; until [addr] == value
    (block $done
      (loop $k
        (br_if $done (i32.eq (i32.atomic.load (local.get $addr)) (local.get $value)))
        (drop (memory.atomic.wait32 (local.get $addr) (i32.atomic.load (local.get $addr)) (i64.const 5000)))
        (br $k))))
  (func (export "wasi_thread_start") (param $tid i32) (param $arg i32)
    (local $l (ref null $node))
    (local.set $l (ref.cast (ref null $node) (any.convert_extern (global.get $list))))
    (drop (i32.atomic.rmw.add (i32.const 0) (i32.const 1)))  ;; taken
    (call $wait_for (i32.const 4) (i32.const 1))             ;; the main thread has made its garbage
    (i32.store (i32.add (i32.const 16) (i32.shl (local.get $arg) (i32.const 2))) (call $sum (local.get $l)))
    (drop (i32.atomic.rmw.add (i32.const 8) (i32.const 1)))
    (drop (memory.atomic.notify (i32.const 8) (i32.const 1))))
  (func (export "result") (param $t i32) (result i32) (i32.load (i32.add (i32.const 16) (i32.shl (local.get $t) (i32.const 2)))))
  (func (export "run") (param $threads i32) (result i32)
    (local $i i32) (local $l (ref null $node))
    (loop $b
      (local.set $l (struct.new $node (local.get $i) (local.get $l)))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $b (i32.lt_u (i32.const 30))))
    (global.set $list (extern.convert_any (local.get $l)))
    (local.set $l (ref.null $node))
    (local.set $i (i32.const 0))
    (loop $s
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (if (i32.le_s (call $spawn (local.get $i)) (i32.const 0)) (then unreachable))
      (br_if $s (i32.lt_u (local.get $i) (local.get $threads))))
    (call $wait_for (i32.const 0) (local.get $threads))       ;; every thread took the list
    (global.set $list (ref.null extern))
    (loop $k  ;; garbage while only the other threads hold the list (blocked in their waits)
      (drop (array.new_default $b (i32.const 300)))
      (local.tee $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $k (i32.lt_u (i32.const 60))))
    (i32.atomic.store (i32.const 4) (i32.const 1))
    (drop (memory.atomic.notify (i32.const 4) (i32.const -1)))
    (call $wait_for (i32.const 8) (local.get $threads))
    (i32.const 0)))
""".replace("{SUM}\n", SUM)


def test_a_list_only_other_threads_stacks_hold_survives_collections() -> None:
    store, exports, heap = _setup(limit=4 << 10, wat=SHARED)
    exports["run"](store, THREADS)
    assert [exports["result"](store, t) for t in range(1, THREADS + 1)] == [sum(range(30))] * THREADS
    assert heap.collections >= 3 and heap.deferred == 0 and heap.footprint <= 2 * heap.limit


class _NotAtASafepoint:
    """A hart stopped on the Store's stack at a pc in no compiled code (a frame whose references are unknown)."""

    def get_reg(self, name: str) -> int:
        from hwsim.runtime.layout import STACK_TOP

        return {"pc": 0x1234, "s0": 0, "sp": STACK_TOP - 64}.get(name, 0)


def test_a_deferred_collection_lets_the_heap_grow_to_twice_its_limit_then_traps_naming_why() -> None:
    """Error path: while no collection can run, allocations go on past the limit up to the fragmentation room
    (twice the limit), then trap out of GC heap memory, saying the collection was deferred."""
    from hwsim.runtime.internal import vm_store as engine_store

    store = Store(Engine(cache=False))
    heap = engine_store(store).gc_heap
    heap.limit = 256
    hart = _NotAtASafepoint()
    from hwsim.wasm.subtyping import canonical_ids
    from hwsim.wasm.types import I64, FieldType, StructType

    layout = StructType((FieldType(I64, True), FieldType(I64, True), FieldType(I64, True)))
    canon = canonical_ids([layout])[0]
    heap.register_type(1, canon)  # (what VmStore.type_id does for a module's type)
    made = []
    with pytest.raises(Trap) as exc:
        for _ in range(100):
            made.append(heap.allocate(canon, 32, m=hart, layout=layout))
    assert len(made) == 16 and heap.used == 512 and heap.collections == 0 and heap.deferred == 9
    assert exc.value.trap_code == TrapCode.GC_HEAP_EXHAUSTED
    assert "a collection was deferred: a frame on the stack is not at a safepoint" in str(exc.value)
