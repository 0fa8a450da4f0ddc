"""Inline GC allocation (compiler/codegen/gc.py ``_new_object``, runtime/gcheap.py's allocation buffer):
compiled code bumps a cursor through a buffer and calls the gc_alloc builtin only when an object does
not fit; the buffer across refills, exhausted exactly at the heap limit, off under stress and with
wasi-threads; objects allocated inline traced and swept as the builtin's are, the buffer's unused tail
never taken for an object."""

from __future__ import annotations

import pytest
from gc_helpers import count_builtin_calls

from hwsim import Engine, Instance, Module, Store, Trap
from hwsim.compiler import abi
from hwsim.compiler.builtins import Builtin
from hwsim.compiler.traps import TrapCode
from hwsim.runtime import gcheap

WAT = """(module
  (type $node (struct (field $v i32) (field $next (ref null $node))))
  (type $tree (struct (field $l (ref null $tree)) (field $r (ref null $tree)) (field $v i32)))
  (type $bytes (array (mut i8)))
  (type $longs (array (mut i64)))
  (global $tree (mut (ref null $tree)) (ref.null none))
  ;; n nodes in a list (every one live until the call returns): the sum of their values
  (func (export "list") (param $n i32) (result i32)
    (local $head (ref null $node)) (local $i i32) (local $sum i32)
    (block $empty (br_if $empty (i32.eqz (local.get $n)))
      (loop $build
        (local.set $head (struct.new $node (local.get $i) (local.get $head)))
        (br_if $build (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get $n))))
      (loop $walk
        (local.set $sum (i32.add (local.get $sum) (struct.get $node $v (ref.as_non_null (local.get $head)))))
        (br_if $walk (i32.eqz (ref.is_null (local.tee $head (struct.get $node $next (ref.as_non_null (local.get $head)))))))))
    (local.get $sum))
  (func $make (param $d i32) (result (ref $tree))
    (if (result (ref $tree)) (i32.eqz (local.get $d))
      (then (struct.new $tree (ref.null none) (ref.null none) (i32.const 1)))
      (else (struct.new $tree (call $make (i32.sub (local.get $d) (i32.const 1)))
                              (call $make (i32.sub (local.get $d) (i32.const 1))) (local.get $d)))))
  ;; the sum over a tree of v * (position in a pre-order walk + 1): any lost or mixed-up field changes it
  (func $check (param $t (ref null $tree)) (param $k i32) (result i32 i32)
    (local $a i32) (local $s i32)
    (if (result i32 i32) (ref.is_null (local.get $t)) (then (i32.const 0) (local.get $k))
      (else
        (local.set $s (i32.mul (struct.get $tree $v (local.get $t)) (i32.add (local.get $k) (i32.const 1))))
        (call $check (struct.get $tree $l (local.get $t)) (i32.add (local.get $k) (i32.const 1)))
        (local.set $k) (local.set $a)
        (local.set $s (i32.add (local.get $s) (local.get $a)))
        (call $check (struct.get $tree $r (local.get $t)) (local.get $k))
        (local.set $k) (local.set $a)
        (i32.add (local.get $s) (local.get $a)) (local.get $k))))
  (func (export "keep_tree") (param i32) (global.set $tree (call $make (local.get 0))))
  (func (export "drop_tree") (global.set $tree (ref.null none)))
  (func (export "check_tree") (result i32) (call $check (global.get $tree) (i32.const 0)) (drop))
  (func (export "check_new") (param i32) (result i32) (call $check (call $make (local.get 0)) (i32.const 0)) (drop))
  (func (export "bytes") (param $n i32) (param $len i32)
    (loop $l (drop (array.new_default $bytes (local.get $len)))
      (br_if $l (local.tee $n (i32.sub (local.get $n) (i32.const 1))))))
  ;; an array of $len i64 set to their index, read back after more allocation: their sum
  (func (export "longs") (param $len i32) (result i64)
    (local $a (ref $longs)) (local $i i32) (local $s i64)
    (local.set $a (array.new_default $longs (local.get $len)))
    (block $done (loop $fill (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (array.set $longs (local.get $a) (local.get $i) (i64.extend_i32_u (local.get $i)))
      (drop (array.new_fixed $longs 2 (i64.const -1) (i64.const -1)))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $fill)))
    (local.set $i (i32.const 0))
    (block $done (loop $sum (br_if $done (i32.ge_u (local.get $i) (local.get $len)))
      (local.set $s (i64.add (local.get $s) (array.get $longs (local.get $a) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $sum)))
    (local.get $s))
)"""

NODE_BYTES = 32  # header 8, i32 at 8, reference at 16: 24, rounded to 16


def tree_check(depth: int) -> int:
    """What $check gives for a tree $make built of ``depth``."""

    def walk(d: int, k: int) -> tuple[int, int]:
        s = (d if d else 1) * (k + 1)
        if not d:
            return s, k + 1
        a, k = walk(d - 1, k + 1)
        b, k = walk(d - 1, k)
        return s + a + b, k

    return walk(depth, 0)[0]


@pytest.fixture
def slow_calls(monkeypatch):
    """Count the calls of the gc_alloc builtin (the slow path)."""
    return count_builtin_calls(monkeypatch, Builtin.gc_alloc)


def instance(limit: int = 1 << 20, *, stress: bool = False):
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.limit = limit
    heap.stress = stress
    exports = dict(Instance(store, Module(store.engine, WAT), []).exports(store).items())
    return store, heap, exports


def buffer(store) -> tuple[int, int]:
    """The GC record's cursor and end, as compiled code sees them."""
    heap = store._store.gc_heap
    return store._store.read_u64(heap.record + abi.GC_CURSOR), store._store.read_u64(heap.record + abi.GC_END)


def check_heap(heap) -> None:
    """Retire the buffer, then: ``used`` is the objects' bytes exactly, and no object overlaps another or
    a free block (the tail went to the free blocks, not to an object)."""
    heap.retire_buffer()
    assert heap.used == sum(heap.known().values())
    spans = sorted([(va, size, "object") for va, size in heap.objects.items()])
    spans += sorted((va, size, "free") for size, vas in heap.free.items() for va in vas)
    spans.sort()
    for (va, size, _), (nxt, _, _) in zip(spans, spans[1:]):
        assert va + size <= nxt


def test_compiled_code_allocates_inline_and_calls_the_builtin_only_to_refill(slow_calls):
    store, heap, e = instance()
    n = 10_000  # 320,000 bytes of nodes: five 64 KiB buffers
    assert e["list"](store, n) == sum(range(n))
    refills = n * NODE_BYTES // gcheap.BUFFER_BYTES
    assert refills <= len(slow_calls) <= refills + 2
    cursor, end = buffer(store)
    assert heap.buffer_scan <= cursor <= end and end - cursor < gcheap.BUFFER_BYTES
    assert heap.collections == 0
    check_heap(heap)
    assert len(heap.objects) == n


def test_objects_across_buffer_refills_keep_their_fields():
    store, heap, e = instance(64 << 10)  # a 2 KiB array beside ~1,000 pairs per call: refills and collections
    for _ in range(20):
        assert e["longs"](store, 256) == sum(range(256))
    assert heap.collections >= 1
    check_heap(heap)


@pytest.mark.parametrize("extra", [0, 1])
def test_the_buffer_is_exhausted_exactly_at_the_limit(extra):
    """A 64 KiB heap holds exactly 2,048 live 32-byte nodes: all of them fit, one more traps (after a
    collection that frees nothing), and the Store keeps working."""
    store, heap, e = instance(64 << 10)
    n = (64 << 10) // NODE_BYTES + extra
    if extra:
        with pytest.raises(Trap) as info:
            e["list"](store, n)
        assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED
        assert f"{NODE_BYTES} more bytes, {64 << 10} of the Store's {64 << 10} in use" in str(info.value.summary)
        assert e["list"](store, 10) == 45
    else:
        assert e["list"](store, n) == sum(range(n))
        assert heap.used == 64 << 10  # the last node ended the last buffer
    check_heap(heap)


def test_stress_takes_the_slow_path_and_collects_at_every_allocation(slow_calls):
    store, heap, e = instance(stress=True)
    assert e["check_new"](store, 6) == tree_check(6)
    assert len(slow_calls) == 127 and heap.collections == 127
    assert buffer(store) == (0, 0)  # never a buffer: every allocation is the builtin's


def test_the_environment_turns_stress_on(monkeypatch, slow_calls):
    monkeypatch.setenv("HWSIM_GC_STRESS", "1")
    store = Store(Engine(cache=False))
    e = Instance(store, Module(store.engine, WAT), []).exports(store)
    assert e["list"](store, 50) == sum(range(50))
    assert len(slow_calls) == 50 and store._store.gc_heap.collections == 50


def test_with_wasi_threads_every_allocation_takes_the_builtin(slow_calls):
    """A thread could be preempted between loading the cursor and storing it back: once threads are on,
    the buffer is retired and never handed out again."""
    store, heap, e = instance()
    assert e["list"](store, 100) == sum(range(100))
    assert buffer(store) != (0, 0)
    store._store.enable_threads()
    assert buffer(store) == (0, 0)
    before = len(slow_calls)
    assert e["list"](store, 100) == sum(range(100))
    assert len(slow_calls) - before == 100 and buffer(store) == (0, 0)
    check_heap(heap)


def test_a_tree_built_inline_then_dropped_is_reclaimed():
    store, heap, e = instance(256 << 10)
    e["keep_tree"](store, 10)  # 2,047 nodes of 32 bytes, all from buffers
    assert e["check_tree"](store) == tree_check(10)
    check_heap(heap)
    (tree,) = {heap.header(va)[0] for va in heap.objects}
    e["drop_tree"](store)
    e["bytes"](store, 600, 1000)  # 600 KiB of garbage: the 256 KiB heap collects
    assert heap.collections >= 1 and heap.freed >= 2047
    check_heap(heap)
    assert not [va for va in heap.objects if heap.header(va)[0] == tree]


@pytest.mark.parametrize("stress", [False, True])
def test_a_live_tree_built_inline_survives_collections_intact(stress):
    store, heap, e = instance(256 << 10, stress=stress)
    depth = 6 if stress else 10
    e["keep_tree"](store, depth)
    for _ in range(3):
        e["bytes"](store, 30 if stress else 300, 1000)
        assert e["check_new"](store, 5) == tree_check(5)  # more trees, garbage as soon as checked
    assert heap.collections >= 3
    assert e["check_tree"](store) == tree_check(depth)
    check_heap(heap)


def test_objects_of_two_instances_share_the_buffer():
    store = Store(Engine(cache=False))
    module = Module(store.engine, WAT)
    a = Instance(store, module, []).exports(store)
    b = Instance(store, module, []).exports(store)
    a["keep_tree"](store, 4)
    b["keep_tree"](store, 5)
    a["bytes"](store, 50, 100)
    heap = store._store.gc_heap
    assert a["check_tree"](store) == tree_check(4) and b["check_tree"](store) == tree_check(5)
    check_heap(heap)
    assert len(heap.objects) == 31 + 63 + 50


@pytest.mark.parametrize("length", [100_000, 0x7FFF_FFFF, -1])
def test_an_array_too_long_for_any_buffer_goes_to_the_builtin_and_traps(slow_calls, length):
    """100 KB of i8 past a 64 KiB limit, 2 GiB, 4 GiB (the u32 length -1): the inline size computation
    cannot wrap, the object never fits the buffer, and the builtin traps."""
    store, heap, e = instance(64 << 10)
    assert e["list"](store, 10) == 45  # a buffer is in place
    before = len(slow_calls)
    with pytest.raises(Trap) as info:
        e["bytes"](store, 1, length)
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED
    assert len(slow_calls) == before + 1
    assert e["list"](store, 10) == 45
    check_heap(heap)
