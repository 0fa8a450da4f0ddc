"""The GC heap through the embedding API (hwsim extensions beside wasmtime-py's): the heap limit in
``Store.set_limits(gc_heap_size=)``, ``Store.get_gc_stats()``, and ``Store.gc()`` collecting the heap (from
the host, and from a host function while wasm runs)."""

from __future__ import annotations

import pytest

from hwsim import (
    I31,
    Engine,
    FuncType,
    GcObject,
    GcStats,
    Linker,
    Module,
    Store,
    Trap,
    TrapCode,
    ValType,
    WasmtimeError,
)
from hwsim.errors import ArgumentTypeError, ConfigError, StoreMismatchError

I32 = ValType.i32()
EXTERNREF = ValType.externref()

WAT = """
(module
  (import "host" "cb" (func $cb))
  (type $s (struct (field $v i32) (field $x (mut externref))))
  (type $b (array (mut i8)))
  (global $keep (mut (ref null $s)) (ref.null $s))
  (func (export "garbage") (param $n i32)
    (loop $l
      (if (local.get $n)
        (then (drop (array.new_default $b (i32.const 200)))
              (local.set $n (i32.sub (local.get $n) (i32.const 1)))
              (br $l)))))
  (func (export "keep") (param $v i32) (param $x externref)
    (global.set $keep (struct.new $s (local.get $v) (local.get $x))))
  (func (export "drop") (global.set $keep (ref.null $s)))
  (func (export "kept") (result externref) (struct.get $s $x (global.get $keep)))
  (func (export "big") (param $n i32) (result i32) (array.len (array.new_default $b (local.get $n))))
  (func (export "around_host") (param $n i32) (result i32)  ;; an object only in a local across the host call
    (local $o (ref null $s))
    (local.set $o (struct.new $s (local.get $n) (ref.null extern)))
    (call $cb)
    (struct.get $s $v (local.get $o))))
"""


def _setup(on_cb=lambda: None):
    engine = Engine(cache=False)
    store = Store(engine)
    linker = Linker(engine)
    linker.define_func("host", "cb", FuncType([], []), on_cb)
    return store, linker.instantiate(store, Module(engine, WAT)).exports(store)


def test_set_limits_gc_heap_size_limits_the_live_objects():
    store, e = _setup()
    store.set_limits(gc_heap_size=4096)
    assert store.get_gc_stats().limit_bytes == 4096 and store._store.limits.gc_heap_bytes == 4096
    assert e["big"](store, 4000) == 4000  # 4016 bytes: fits
    with pytest.raises(Trap) as exc:
        e["big"](store, 5000)
    assert exc.value.trap_code == TrapCode.GC_HEAP_EXHAUSTED
    e["garbage"](store, 100)  # 20 KiB of garbage under a 4 KiB limit: collected
    stats = store.get_gc_stats()
    assert stats.collections > 0 and stats.live_bytes <= 4096 and stats.footprint_bytes <= 2 * 4096
    store.set_limits()  # each call sets every limit: the GC heap's back to its default
    assert store.get_gc_stats().limit_bytes == 64 << 20


@pytest.mark.parametrize(
    "value, error, message",
    [
        (-1, ConfigError, "a GC heap size must be >= 1 byte, not -1"),
        (0, ConfigError, "a GC heap size must be >= 1 byte, not 0"),
        ("4096", ArgumentTypeError, "Store.set_limits(gc_heap_size): expected an int"),
        (4.5, ArgumentTypeError, "Store.set_limits(gc_heap_size): expected an int"),
    ],
)
def test_set_limits_refuses_a_bad_gc_heap_size_and_changes_nothing(value, error, message):
    store, _ = _setup()
    store.set_limits(memory_size=1 << 20, gc_heap_size=8192)
    with pytest.raises(error) as exc:
        store.set_limits(memory_size=2 << 20, gc_heap_size=value)
    assert message in str(exc.value)
    assert store._store.limits.memory_bytes == 1 << 20 and store.get_gc_stats().limit_bytes == 8192


def test_set_limits_below_the_live_heap_is_refused_after_collecting_the_garbage():
    store, e = _setup()
    for i in range(20):
        e["keep"](store, i, None)  # 20 structs of 32 bytes, only the last one live
    e["garbage"](store, 10)  # and 2,080 bytes of garbage
    assert store.get_gc_stats().live_bytes == 20 * 32 + 10 * 208
    store.set_limits(gc_heap_size=64)  # the garbage is collected first: 32 live bytes fit
    stats = store.get_gc_stats()
    assert stats.live_bytes == 32 and stats.limit_bytes == 64 and stats.collections == 1
    with pytest.raises(ConfigError) as exc:
        store.set_limits(gc_heap_size=16)
    assert str(exc.value) == (
        "Store.set_limits(gc_heap_size): 16 bytes is less than the 32 bytes the live GC objects take"
    )
    assert store.get_gc_stats().limit_bytes == 64
    e["drop"](store)
    store.set_limits(gc_heap_size=16)  # nothing live now
    assert store.get_gc_stats() == GcStats(
        limit_bytes=16,
        live_bytes=0,
        live_objects=0,
        footprint_bytes=stats.footprint_bytes,
        collections=3,
        freed_bytes=20 * 32 + 10 * 208,  # every struct (the last one dropped) and the 208-byte arrays
        deferred_collections=0,
        last_pause_ns=store.get_gc_stats().last_pause_ns,
        total_pause_ns=store.get_gc_stats().total_pause_ns,
    )


def test_store_gc_frees_unreachable_objects_and_reports_the_pause():
    store, e = _setup()
    e["keep"](store, 7, None)
    e["garbage"](store, 30)
    before = store.get_gc_stats()
    assert before.collections == 0 and before.live_objects == 31 and before.last_pause_ns == 0
    store.gc()
    after = store.get_gc_stats()
    assert after.collections == 1 and after.live_objects == 1 and after.freed_bytes == 30 * 208
    assert after.live_bytes == 32 and after.last_pause_ns > 0 and after.total_pause_ns == after.last_pause_ns


def test_store_gc_in_a_host_function_keeps_what_the_wasm_frames_hold():
    calls = []

    def cb():
        store.gc()
        calls.append(store.get_gc_stats())

    store, e = _setup(cb)
    e["garbage"](store, 5)
    assert e["around_host"](store, 41) == 41
    (stats,) = calls
    assert stats.collections == 1 and stats.freed_bytes == 5 * 208 and stats.live_objects == 1  # the local's struct
    store.gc()
    assert store.get_gc_stats().live_objects == 0


def test_store_gc_keeps_a_host_object_an_object_field_holds():
    """An externref in a struct field is a reference wasm holds: Store.gc lets go of it only once the struct
    is unreachable (before, only globals, tables and segments were looked at)."""
    store, e = _setup()
    token = object()
    e["keep"](store, 1, token)
    store.gc()
    assert e["kept"](store) is token
    e["drop"](store)
    store.gc()
    assert id(token) not in store._store._extern_ids


FIELDS = """
(module
  (type $s (struct (field i8) (field i16) (field i32) (field i64) (field f32) (field f64) (field v128)
                   (field anyref) (field (ref null $s)) (field funcref) (field externref)))
  (type $a (array (mut i16)))
  (func $f (export "f"))
  (elem declare func $f)
  (func (export "make") (param externref) (result (ref $s))
    (struct.new $s (i32.const -1) (i32.const -2) (i32.const -3) (i64.const -4) (f32.const 1.5) (f64.const -2.25)
      (v128.const i64x2 5 6) (ref.i31 (i32.const -7)) (struct.new_default $s) (ref.func $f) (local.get 0)))
  (func (export "array") (result (ref $a)) (array.new_fixed $a 3 (i32.const 1) (i32.const -1) (i32.const 3))))
"""


def _fields():
    engine = Engine(cache=False)
    store = Store(engine)
    exports = Linker(engine).instantiate(store, Module(engine, FIELDS)).exports(store)
    return store, exports


def test_gc_object_fields_read_as_the_embedding_api_shows_their_types():
    store, e = _fields()
    token = object()
    obj = e["make"](store, token)
    assert obj.len(store) == 11
    values = [obj.get(store, i) for i in range(11)]
    assert values[:7] == [0xFF, 0xFFFE, -3, -4, 1.5, -2.25, 5 | 6 << 64]  # packed: zero-extended; v128: its int
    assert values[7] == I31(-7) and values[10] is token
    inner = values[8]
    assert isinstance(inner, GcObject) and inner.kind == "struct" and inner.get(store, 2) == 0
    assert inner.get(store, 8) is None and values[9] == e["f"]
    arr = e["array"](store)
    assert arr.len(store) == 3 and [arr.get(store, i) for i in range(3)] == [1, 0xFFFF, 3]


def test_gc_object_get_refuses_a_bad_index_or_another_store():
    store, e = _fields()
    obj, arr = e["make"](store, None), e["array"](store)
    with pytest.raises(WasmtimeError) as exc:
        obj.get(store, 11)
    assert str(exc.value) == "GcObject.get: index 11 is out of bounds for a struct of 11 fields"
    with pytest.raises(WasmtimeError) as exc:
        arr.get(store, -1)
    assert str(exc.value) == "GcObject.get: index -1 is out of bounds for an array of 3 elements"
    with pytest.raises(ArgumentTypeError):
        arr.get(store, "0")
    with pytest.raises(StoreMismatchError):
        arr.get(Store(store.engine), 0)
    with pytest.raises(StoreMismatchError):
        obj.len(Store(store.engine))
