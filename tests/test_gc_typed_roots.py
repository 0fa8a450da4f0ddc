"""Typed GC roots (runtime/gcheap.py ``_store_roots``, ``_size``): a collection takes as roots only the globals,
tables, element segments and exception payload fields whose type may hold an object's address, every such
word is a reference, and a word that names no object is a corrupt heap, reported as such."""

from __future__ import annotations

import struct

import pytest

from hwsim import Engine, Instance, Module, Store
from hwsim.compiler.objlayout import struct_layout
from hwsim.runtime.errors import HeapCorruptError

WAT = """(module
  (type $s (struct (field $v i32) (field $next (mut anyref))))
  (tag $t_any (param anyref))
  (tag $t_i64 (param i64))
  (global $g (mut anyref) (ref.null any))
  (global $g64 (export "g64") (mut i64) (i64.const 0))
  (global $ex (mut exnref) (ref.null exn))
  (table $tab 4 anyref)
  (table $init 4 (ref null $s))
  (elem $seg (ref null $s) (item (struct.new $s (i32.const 7) (ref.null any))))
  (func $s (param $v i32) (result (ref $s)) (struct.new $s (local.get $v) (ref.null any)))
  (func $v (param anyref) (result i32) (struct.get $s $v (ref.cast (ref $s) (local.get 0))))
  (func (export "garbage") (param $n i32)
    (loop $l (if (local.get $n) (then
      (drop (struct.new $s (i32.const -1) (ref.null any)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l)))))
  (func (export "keep_in_global") (param i32) (global.set $g (call $s (local.get 0))))
  (func (export "from_global") (result i32) (call $v (global.get $g)))
  (func (export "keep_in_table") (param i32) (table.set $tab (i32.const 2) (call $s (local.get 0))))
  (func (export "from_table") (result i32) (call $v (table.get $tab (i32.const 2))))
  (func (export "from_segment") (result i32)
    (table.init $init $seg (i32.const 0) (i32.const 0) (i32.const 1))
    (call $v (table.get $init (i32.const 0))))
  (func (export "keep_in_exn") (param i32)
    (block $h (result anyref exnref)
      (try_table (catch_ref $t_any $h) (throw $t_any (call $s (local.get 0))))
      (unreachable))
    (global.set $ex)
    (drop))
  (func (export "from_exn") (result i32)
    (block $h (result anyref)
      (try_table (catch $t_any $h) (throw_ref (global.get $ex)))
      (unreachable))
    (call $v))
  (func (export "i64_in_exn") (param i64)
    (block $h (result i64 exnref)
      (try_table (catch_ref $t_i64 $h) (throw $t_i64 (local.get 0)))
      (unreachable))
    (global.set $ex)
    (drop))
  (func (export "make") (param i32) (result anyref) (call $s (local.get 0)))
  (func (export "link") (param anyref anyref) (struct.set $s $next (ref.cast (ref $s) (local.get 0)) (local.get 1)))
)"""


def setup() -> tuple[Store, dict]:
    store = Store(Engine(cache=False))
    instance = Instance(store, Module(store.engine, WAT), [])
    return store, dict(instance.exports(store).items())


def objects(store: Store) -> dict[int, int]:
    return dict(store._store.gc_heap.known())


@pytest.mark.parametrize(
    ("keep", "read"),
    [
        ("keep_in_global", "from_global"),
        ("keep_in_table", "from_table"),
        ("keep_in_exn", "from_exn"),
    ],
)
def test_every_reference_root_kind_keeps_its_object_through_collections(keep, read):
    store, e = setup()
    e[keep](store, 42)
    e["garbage"](store, 50)
    store._store.gc_heap.collect(None)
    e["garbage"](store, 50)  # reuses the freed blocks: a missed root would be overwritten with -1
    store._store.gc_heap.collect(None)
    assert e[read](store) == 42
    # nothing but the kept object (and the element segment's) is live
    assert store.get_gc_stats().live_objects == 2


def test_an_element_segments_object_survives_collections():
    store, e = setup()
    for _ in range(3):
        e["garbage"](store, 50)
        store._store.gc_heap.collect(None)
    assert e["from_segment"](store) == 7


def test_an_i64_global_equal_to_a_dead_objects_address_does_not_keep_it():
    store, e = setup()
    before = set(objects(store))
    e["garbage"](store, 1)
    (dead,) = set(objects(store)) - before
    e["g64"].set_value(store, dead)
    store.gc()
    assert dead not in objects(store)
    assert store.get_gc_stats().freed_bytes >= 32


def test_an_i64_exception_payload_equal_to_a_dead_objects_address_does_not_keep_it():
    store, e = setup()
    before = set(objects(store))
    e["garbage"](store, 1)
    (dead,) = set(objects(store)) - before
    e["i64_in_exn"](store, dead)  # the exception is held by an exnref global: its payload is a root if typed so
    store._store.gc_heap.collect(None)
    assert dead not in objects(store)


def _write_u64(store: Store, va: int, word: int) -> None:
    struct.pack_into("<Q", store._store.gc_heap.store.phys_view(va, 8), 0, word)


@pytest.mark.parametrize(
    ("word", "message"),
    [
        (0x1000, "a reference 0x1000 names no object: not a 16-aligned address in the GC heap"),
        (None, "names no object: not a 16-aligned address in the GC heap"),  # in the heap, misaligned by 8
    ],
)
def test_attack_a_reference_field_overwritten_with_a_non_object_is_a_corrupt_heap(word, message):
    store, e = setup()
    a = e["make"](store, 1)
    b = e["make"](store, 2)
    e["link"](store, a, b)
    e["link"](store, b, a)  # each names the other
    heap = store._store.gc_heap
    x, y = a.address, b.address
    canon, _ = heap.header(x)
    offsets, _ = struct_layout(heap.layouts[canon])
    heap.pin(x)  # the host holds it: a root
    _write_u64(store, x + offsets[1], word if word is not None else y + 8)
    with pytest.raises(HeapCorruptError) as exc:
        store.gc()
    assert message in str(exc.value)


def test_attack_a_forged_object_header_is_a_corrupt_heap():
    store, e = setup()
    a = e["make"](store, 1)
    b = e["make"](store, 2)
    e["link"](store, a, b)
    heap = store._store.gc_heap
    x, y = a.address, b.address
    heap.pin(x)
    heap.pin(y)
    _write_u64(store, y, 0xFFFF_FFFF)  # the header's type id: none of the Store's
    with pytest.raises(HeapCorruptError) as exc:
        store.gc()
    assert "an object header names Store type id 4294967295, no struct or array type" in str(exc.value)


def test_attack_corruption_found_by_a_collection_wasm_started_is_a_clear_error():
    store, e = setup()
    store.set_limits(gc_heap_size=4096)
    a = e["make"](store, 1)
    e["link"](store, a, e["make"](store, 2))
    heap = store._store.gc_heap
    canon, _ = heap.header(a.address)
    offsets, _ = struct_layout(heap.layouts[canon])
    _write_u64(store, a.address + offsets[1], 0x1000)
    with pytest.raises(HeapCorruptError) as exc:
        e["garbage"](store, 1000)  # 32,000 bytes through a 4 KiB heap: collections from the allocation path
    assert str(exc.value) == "a reference 0x1000 names no object: not a 16-aligned address in the GC heap"
    assert store.get_gc_stats().collections == 0  # the collection was not done: nothing freed on a corrupt heap


def test_attack_a_forged_header_read_from_the_host_is_a_clear_error():
    store, e = setup()
    a = e["make"](store, 1)
    _write_u64(store, a.address, 0xFFFF_FFFF)
    with pytest.raises(HeapCorruptError) as exc:
        a.get(store, 0)
    assert f"the object at {a.address:#x} has a header naming Store type id 4294967295, no type" in str(exc.value)


LIST = """(module
  (type $l (struct (field $v i32) (field $next (ref null $l))))
  (global $head (mut (ref null $l)) (ref.null $l))
  (func (export "push") (param $n i32)
    (loop $x (if (local.get $n) (then
      (global.set $head (struct.new $l (local.get $n) (global.get $head)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $x)))))
  (func (export "garbage") (param $n i32)
    (loop $x (if (local.get $n) (then
      (drop (struct.new $l (local.get $n) (ref.null $l)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $x)))))
  (func (export "sum") (result i32) (local $p (ref null $l)) (local $s i32)
    (local.set $p (global.get $head))
    (loop $x (if (ref.is_null (local.get $p)) (then) (else
      (local.set $s (i32.add (local.get $s) (struct.get $l $v (local.get $p))))
      (local.set $p (struct.get $l $next (local.get $p))) (br $x))))
    (local.get $s)))"""


def test_a_list_crossing_arena_spans_survives_collections():
    """Other data taken from the Store's data region between allocation buffers splits the heap's arena into
    spans; the mark reads each span through its own view and follows references from one to another."""
    store = Store(Engine(cache=False))
    store.set_limits(gc_heap_size=1 << 20)
    e = dict(Instance(store, Module(store.engine, LIST), []).exports(store).items())
    other = Module(store.engine, "(module (table 1000 funcref) (memory 1))")
    for _ in range(4):
        e["push"](store, 2100)  # 67 KB: past one 64 KiB allocation buffer
        for _ in range(3):
            Instance(store, other, [])  # data region taken between the buffers
    heap = store._store.gc_heap
    assert len(heap.arena) >= 3
    expected = 4 * sum(range(1, 2101))
    assert e["sum"](store) == expected
    store.gc()
    e["garbage"](store, 5000)
    store.gc()
    assert e["sum"](store) == expected
    stats = store.get_gc_stats()
    assert stats.live_objects == 4 * 2100 and stats.freed_bytes == 5000 * 32
