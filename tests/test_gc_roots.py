"""Exact GC roots (compiler/stackmaps.py, runtime/gcheap.py GcHeap.stack_roots): the stack maps the compiler
records at every safepoint, the collector's walk of the wasm frames, and what a collection keeps and frees."""

from __future__ import annotations

import pytest

from hwsim import Engine, FuncType, Instance, Linker, Module, Store, Trap, TrapCode, ValType
from hwsim.compiler import serialize
from hwsim.compiler.serialize import CacheFormatError
from hwsim.compiler.stackmaps import StackMaps, holds_gc_word
from hwsim.runtime import gcheap
from hwsim.runtime.layout import STACK_TOP
from hwsim.wasm.types import ANYREF, EXNREF, EXTERNREF, FUNCREF, I64

I32 = ValType.i32()

TYPES = """
  (type $s (struct (field $v i32) (field $w i64)))
  (type $b (array (mut i8)))
"""

COMMON = (
    TYPES
    + """
  (func $churn (param $n i32)  ;; n allocations of garbage: under stress, n collections
    (loop $l
      (if (local.get $n)
        (then (drop (array.new_default $b (i32.const 100)))  ;; 112 bytes: never a freed $s (32) reused
              (local.set $n (i32.sub (local.get $n) (i32.const 1)))
              (br $l)))))
  (func $churn_i32 (result i32)
    (call $churn (i32.const 5))
    (drop (struct.new $s (i32.const 0) (i64.const 0)))  ;; reuses a freed $s: a missed root is zeroed
    (i32.const 1))
  (func (export "make_garbage") (drop (array.new_default $b (i32.const 40))))  ;; 48 bytes: no other size
"""
)


def store_with(limit: int = 64 << 20, *, stress: bool = True) -> Store:
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.limit = limit
    heap.stress = stress
    return store


def exports(store: Store, wat: str, imports=()) -> dict:
    return dict(Instance(store, Module(store.engine, wat), list(imports)).exports(store).items())


def new_objects(store: Store, call) -> set[int]:
    """The objects ``call()`` allocated that are still in the heap afterwards (addresses)."""
    before = set(store._store.gc_heap.objects)
    call()
    return set(store._store.gc_heap.objects) - before


@pytest.fixture
def seen_roots(monkeypatch) -> list[list[int]]:
    """Every list of stack roots a collection took."""
    seen: list[list[int]] = []
    walk = gcheap.GcHeap.stack_roots

    def recorded(self, m):
        words = walk(self, m)
        seen.append(list(words or []))
        return words

    monkeypatch.setattr(gcheap.GcHeap, "stack_roots", recorded)
    return seen


# -- the stack maps the compiler records ---------------------------------------------------------------


def compiled(wat: str):
    """``wat``'s decoded (lowered) module and its compiled code."""
    module = Module(Engine(cache=False), wat)
    return module._module, module._compiled


def test_a_safepoint_maps_the_reference_locals_and_spilled_references_only():
    _, c = compiled(
        "(module"
        + COMMON
        + """
      (func (export "f") (param $n i64) (result i32)
        (local $o (ref null $s)) (local $x i64) (local $f funcref)
        (local.set $o (struct.new $s (i32.const 7) (local.get $n)))
        (local.set $x (local.get $n))
        (struct.get $s $v (local.get $o))
        (call $churn_i32)
        (i32.add)))"""
    )
    f = len(c.func_offsets) - 1  # the last function: "f"
    start, size = c.func_offsets[f], c.func_sizes[f]
    maps = [(off, locs) for off, locs in c.stack_maps if start <= off < start + size]
    home = c.frames[f].homes[1]  # $o's home: a callee-saved register or a frame slot
    assert len(maps) == 2  # struct.new's gc_alloc and the call of $churn_i32 (two wasm-typed i32s: none)
    assert all(locs == (home,) for _, locs in maps)  # not $n, $x (i64s), $f (a funcref), nor the i32 operand
    assert c.stack_maps.at(maps[0][0] + 4) == ()


def test_a_reference_operand_spilled_across_a_call_is_in_a_frame_slot():
    _, c = compiled(
        "(module"
        + COMMON
        + """
      (func $take (param (ref $s)) (param i32) (result i32) (struct.get $s $v (local.get 0)))
      (func (export "f") (result i32)
        (call $take (struct.new $s (i32.const 5) (i64.const 0)) (call $churn_i32))))"""
    )
    f = len(c.func_offsets) - 1
    start, size = c.func_offsets[f], c.func_sizes[f]
    maps = [locs for off, locs in c.stack_maps if start <= off < start + size]
    assert len(maps) == 1 and len(maps[0]) == 1 and maps[0][0] < 0  # the struct, spilled, at the inner call


def test_which_types_may_hold_an_object():
    assert holds_gc_word(EXTERNREF) and holds_gc_word(ANYREF)
    assert not holds_gc_word(FUNCREF) and not holds_gc_word(EXNREF) and not holds_gc_word(I64)


def test_stack_maps_round_trip_through_the_code_cache():
    wasm_text = "(module" + COMMON + '(func (export "f") (local anyref) (call $churn (i32.const 1))))'
    module, c = compiled(wasm_text)
    assert len(c.stack_maps) == 1  # the call in "f" (none of $churn's safepoints holds a reference)
    back = serialize.decode(serialize.encode(c), module)
    assert back.stack_maps == c.stack_maps


@pytest.mark.parametrize(
    "entries, message",
    [
        ([(8, (-16,)), (4, (-24,))], "out of order"),
        ([(1 << 30, (-16,))], "outside the code"),
        ([(8, (40,))], "cannot hold a reference"),
        ([(8, (-12,))], "cannot hold a reference"),
    ],
)
def test_attack_a_forged_stack_map_in_the_cache_is_refused(entries, message):
    module, c = compiled("(module" + COMMON + ")")
    forged = StackMaps()
    forged.offsets, forged.locations = [e[0] for e in entries], [e[1] for e in entries]
    c.stack_maps = forged
    with pytest.raises(CacheFormatError, match=message):
        serialize.decode(serialize.encode(c), module)


def test_attack_truncated_stack_maps_are_refused():
    with pytest.raises(ValueError, match="past the end"):
        StackMaps.read(memoryview(StackMaps([(8, (-16, -24))]).to_bytes()[:-2]), 100)


# -- what a collection keeps and frees -------------------------------------------------------------------

STALE = (
    "(module"
    + COMMON
    + """
  (func $consume (param i64) (param i32) (result i64) (local.get 0))
  (func (export "hold") (param $word i64) (result i64)
    (local $copy i64)
    (local.set $copy (local.get $word))
    (call $churn (i32.const 3))
    ;; the word on the operand stack (a spilled i64) across a call that collects, too
    (call $consume (local.get $word) (call $churn_i32))
    (i64.add (local.get $copy)))
)"""
)


def test_a_dead_object_named_only_by_an_i64_is_reclaimed(seen_roots):
    """The conservative scan kept it (a word equal to its address); stack maps know an i64 is no reference."""
    store = store_with()
    e = exports(store, STALE)
    heap = store._store.gc_heap
    (dead,) = new_objects(store, lambda: e["make_garbage"](store))
    assert e["hold"](store, dead) == 2 * dead  # the i64 was in a local and on the stack while collecting
    # freed (and, free blocks being merged and split, perhaps already reused by the churn's allocations)
    assert heap.freed >= 1 and (dead not in heap.objects or heap.collections >= 2)
    assert seen_roots and all(dead not in words for words in seen_roots)


LIVE = (
    "(module"
    + COMMON
    + """
  (type $list (struct (field $v i32) (field $next (ref null $list))))
  (func $take (param $o (ref $s)) (param i32) (result i32)
    (i32.add (struct.get $s $v (local.get $o)) (i32.wrap_i64 (struct.get $s $w (local.get $o)))))
  (func (export "local") (result i32)
    (local $o (ref null $s))
    (local.set $o (struct.new $s (i32.const 42) (i64.const 1000)))
    (call $churn (i32.const 20))
    (drop (struct.new $s (i32.const 0) (i64.const 0)))  ;; reuses a freed object: a missed root is zeroed
    (i32.add (struct.get $s $v (local.get $o)) (i32.wrap_i64 (struct.get $s $w (local.get $o)))))
  (func (export "operand") (result i32)
    (call $take (struct.new $s (i32.const 5) (i64.const 6)) (call $churn_i32)))
  (func $rec (export "rec") (param $n i32) (result i32)
    (local $o (ref null $s))
    (if (i32.eqz (local.get $n)) (then (call $churn (i32.const 2)) (return (i32.const 0))))
    (local.set $o (struct.new $s (local.get $n) (i64.extend_i32_u (local.get $n))))
    (call $rec (i32.sub (local.get $n) (i32.const 1)))
    (i32.add (struct.get $s $v (local.get $o)))
    (i32.add (i32.wrap_i64 (struct.get $s $w (local.get $o)))))
  (func (export "many") (result i32)
    ;; more reference locals than callee-saved registers: some in registers, the rest in frame slots
    (local $a anyref) (local $b anyref) (local $c anyref) (local $d anyref) (local $e anyref)
    (local $f anyref) (local $g anyref) (local $h anyref) (local $i anyref) (local $j anyref)
    (local $k anyref) (local $l anyref)
    (local.set $a (struct.new $s (i32.const 1) (i64.const 0)))
    (local.set $b (struct.new $s (i32.const 2) (i64.const 0)))
    (local.set $c (struct.new $s (i32.const 3) (i64.const 0)))
    (local.set $d (struct.new $s (i32.const 4) (i64.const 0)))
    (local.set $e (struct.new $s (i32.const 5) (i64.const 0)))
    (local.set $f (struct.new $s (i32.const 6) (i64.const 0)))
    (local.set $g (struct.new $s (i32.const 7) (i64.const 0)))
    (local.set $h (struct.new $s (i32.const 8) (i64.const 0)))
    (local.set $i (struct.new $s (i32.const 9) (i64.const 0)))
    (local.set $j (struct.new $s (i32.const 10) (i64.const 0)))
    (local.set $k (struct.new $s (i32.const 11) (i64.const 0)))
    (local.set $l (ref.i31 (i32.const 12)))
    (call $churn (i32.const 10))
    (drop (array.new_default $b (i32.const 0)))
    (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add (i32.add
      (struct.get $s $v (ref.cast (ref $s) (local.get $a)))
      (struct.get $s $v (ref.cast (ref $s) (local.get $b))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $c))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $d))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $e))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $f))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $g))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $h))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $i))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $j))))
      (struct.get $s $v (ref.cast (ref $s) (local.get $k))))
      (i31.get_s (ref.cast (ref i31) (local.get $l)))))
  (func (export "array_new") (result i32)
    ;; array.new's operand (the element) is only in the builtin's argument register while it collects
    (local $a (ref null $refs))
    (local.set $a (array.new $refs (struct.new $list (i32.const 77) (ref.null $list)) (i32.const 3)))
    (drop (struct.new $list (i32.const 0) (ref.null $list)))  ;; reuses the element if it was freed
    (struct.get $list $v (ref.as_non_null (array.get $refs (local.get $a) (i32.const 2)))))
  (type $refs (array (ref null $list)))
)"""
)


@pytest.fixture
def live():
    store = store_with()
    return store, exports(store, LIVE)


def test_a_live_object_only_in_a_local_survives_collections_with_its_fields(live, seen_roots):
    store, e = live
    assert e["local"](store) == 1042
    assert len(seen_roots) >= 20


def test_a_reference_on_the_operand_stack_survives_a_call_that_collects(live):
    store, e = live
    assert e["operand"](store) == 11


def test_deep_recursion_with_a_reference_in_every_frame(live):
    store, e = live
    n = 300
    assert e["rec"](store, n) == n * (n + 1)  # each frame's object, read after the calls below it collected
    assert store._store.gc_heap.collections >= n


def test_references_in_callee_saved_registers_and_frame_slots_survive(live):
    store, e = live
    _, c = compiled(LIVE)
    homes = c.frames[7].homes  # "many": the eighth function defined
    assert sum(1 for h in homes if h >= 0) >= 1 and sum(1 for h in homes if h < 0) >= 1
    assert e["many"](store) == sum(range(1, 13))


def test_array_new_keeps_its_reference_operand(live):
    store, e = live
    assert e["array_new"](store) == 77


def test_host_function_calling_wasm_again_keeps_the_outer_frames_references():
    """The walk goes from the nested run's frames through the host call to the frames that called it."""
    store = store_with()
    engine = store.engine
    calls = {}

    def host(n):
        return calls["inner"](store, n)

    linker = Linker(engine)
    linker.define_func("host", "cb", FuncType([I32], [I32]), host)
    module = Module(
        engine,
        '(module (import "host" "cb" (func $cb (param i32) (result i32)))'
        + COMMON
        + """
      (func (export "inner") (param i32) (result i32)
        (local $p (ref null $s))
        (local.set $p (struct.new $s (i32.const 100) (i64.const 0)))
        (call $churn (local.get 0))
        (struct.get $s $v (local.get $p)))
      (func (export "outer") (result i32)
        (local $o (ref null $s))
        (local.set $o (struct.new $s (i32.const 40) (i64.const 2)))
        (i32.add (call $cb (i32.const 10)) (struct.get $s $v (local.get $o)))
        (i32.add (i32.wrap_i64 (struct.get $s $w (local.get $o))))))""",
    )
    ex = linker.instantiate(store, module).exports(store)
    calls["inner"] = ex["inner"]
    assert ex["outer"](store) == 142
    assert store._store.gc_heap.collections >= 10


EXN = (
    "(module"
    + COMMON
    + """
  (tag $t (param (ref null $s)))
  (func $thrower (param $n i32)
    (local $junk (ref null $s))
    (local.set $junk (struct.new $s (i32.const -1) (i64.const -1)))
    (if (local.get $n) (then (call $thrower (i32.sub (local.get $n) (i32.const 1)))))
    (call $churn (i32.const 2))
    (throw $t (struct.new $s (i32.const 9) (i64.const 0))))
  (func (export "f") (param $n i32) (result i32)
    (local $o (ref null $s))
    (local.set $o (struct.new $s (i32.const 30) (i64.const 0)))
    (block $caught (result (ref null $s))
      (try_table (catch $t $caught) (call $thrower (local.get $n)))
      (unreachable))
    (call $churn (i32.const 3))  ;; collections after landing: the handler frame's registers restored
    (local.set $n (struct.get $s $v (ref.as_non_null)))
    (i32.add (local.get $n) (struct.get $s $v (local.get $o))))
)"""
)


def test_exceptions_unwinding_through_frames_while_collections_happen():
    store = store_with()
    e = exports(store, EXN)
    for n in (0, 1, 20):
        assert e["f"](store, n) == 39


def test_no_collection_when_the_heap_limit_is_reached_by_live_objects_only():
    """Error path: exact roots keep what is live, so a heap full of live objects still traps."""
    store = store_with(4 << 10, stress=False)
    e = exports(store, LIVE)
    with pytest.raises(Trap) as info:
        e["rec"](store, 1000)  # 1000 live structs of 32 bytes: past a 4 KiB heap
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED


def test_hwsim_gc_stress_collects_at_every_allocation_in_every_store(monkeypatch):
    monkeypatch.setenv("HWSIM_GC_STRESS", "1")
    store = Store(Engine(cache=False))
    e = exports(store, LIVE)
    assert e["local"](store) == 1042
    assert store._store.gc_heap.stress and store._store.gc_heap.collections >= 20
    monkeypatch.setenv("HWSIM_GC_STRESS", "0")
    assert not Store(Engine(cache=False))._store.gc_heap.stress


class _StoppedElsewhere:
    """A hart stopped at a pc in no compiled code and no entry (what a host callback run at an interrupt sees)."""

    def get_reg(self, name: str) -> int:
        return {"pc": 0x1234, "s0": 0, "sp": STACK_TOP - 64}.get(name, 0)  # (on the Store's stack)


def test_no_collection_when_a_frame_is_not_at_a_safepoint():
    """Error path: roots that cannot be known exactly free nothing (the heap grows; its limit still traps)."""
    store = store_with(stress=False)
    e = exports(store, LIVE)
    heap = store._store.gc_heap
    (dead,) = new_objects(store, lambda: e["make_garbage"](store))
    assert heap.stack_roots(_StoppedElsewhere()) is None
    heap.collect(_StoppedElsewhere())
    assert dead in heap.objects and heap.collections == 0
