"""GC struct and array objects on the emulated CPU (compiler/codegen/gc.py, runtime/gcheap.py): allocation
in the Store's guest memory, field and element access with their null and bounds traps, packed fields,
casts to concrete types through the supertype chain, and the Store's heap limit."""

from __future__ import annotations

import struct

import pytest

from hwsim import Engine, Instance, Module, Store, Trap
from hwsim.compiler.objlayout import HEADER_BYTES, struct_layout
from hwsim.compiler.traps import TrapCode
from hwsim.runtime.store import StoreLimits
from hwsim.wasm.types import F64, I8, I32, FieldType, StructType

WAT = """(module
  (type $p (struct (field $x (mut i32)) (field $y f64) (field $n (mut i8)) (field $r (mut anyref))))
  (type $a (array (mut i16)))
  (type $fa (array (mut f32)))
  (type $base (sub (struct (field i32))))
  (type $mid (sub $base (struct (field i32) (field i64))))
  (type $leaf (sub final $mid (struct (field i32) (field i64) (field f32))))
  (func (export "point") (param i32 f64) (result i32 f64 i32 i32)
    (local $o (ref $p))
    (local.set $o (struct.new $p (local.get 0) (local.get 1) (i32.const -1) (ref.i31 (i32.const 5))))
    (struct.set $p $x (local.get $o) (i32.add (struct.get $p $x (local.get $o)) (i32.const 1)))
    (struct.get $p $x (local.get $o))
    (struct.get $p $y (local.get $o))
    (struct.get_s $p $n (local.get $o))
    (i31.get_s (ref.cast (ref i31) (struct.get $p $r (local.get $o)))))
  (func (export "packed") (param i32) (result i32 i32)
    (local $o (ref $p))
    (local.set $o (struct.new_default $p))
    (struct.set $p $n (local.get $o) (local.get 0))
    (struct.get_s $p $n (local.get $o))
    (struct.get_u $p $n (local.get $o)))
  (func (export "array") (param i32 i32) (result i32 i32 i32)
    (local $v (ref $a))
    (local.set $v (array.new $a (i32.const -3) (local.get 0)))
    (array.set $a (local.get $v) (i32.const 1) (i32.const 70000))
    (array.len (local.get $v))
    (array.get_s $a (local.get $v) (local.get 1))
    (array.get_u $a (local.get $v) (i32.const 0)))
  (func (export "fixed") (result f32 f32 i32)
    (local $v (ref $fa))
    (local.set $v (array.new_fixed $fa 3 (f32.const 1.5) (f32.const 2.5) (f32.const -4)))
    (array.get $fa (local.get $v) (i32.const 0))
    (array.get $fa (local.get $v) (i32.const 2))
    (array.len (local.get $v)))
  (func (export "filled") (param i32) (result f32) (array.get $fa (array.new $fa (f32.const 7.25) (local.get 0)) (i32.const 0)))
  (func (export "default_len") (param i32) (result i32) (array.len (array.new_default $a (local.get 0))))
  (func (export "casts") (result i32 i32 i32 i32 i32 i32)
    (ref.test (ref $p) (struct.new_default $p))
    (ref.test (ref $a) (struct.new_default $p))
    (ref.test (ref struct) (struct.new_default $p))
    (ref.test (ref array) (struct.new_default $p))
    (ref.test (ref eq) (array.new_default $a (i32.const 2)))
    (ref.test (ref i31) (array.new_default $a (i32.const 2))))
  (func (export "chain") (result i32 i32 i32 i32)
    (ref.test (ref $base) (struct.new_default $leaf))
    (ref.test (ref $mid) (struct.new_default $leaf))
    (ref.test (ref $leaf) (struct.new_default $mid))
    (ref.test (ref null $mid) (ref.null none)))
  (func (export "cast_fail") (drop (ref.cast (ref $leaf) (struct.new_default $base))))
  (func (export "null_struct") (result i32) (struct.get $p $x (ref.null $p)))
  (func (export "null_array") (result i32) (array.len (ref.null $a)))
  (func (export "eq") (result i32 i32)
    (local $o (ref $p))
    (local.set $o (struct.new_default $p))
    (ref.eq (local.get $o) (local.get $o))
    (ref.eq (local.get $o) (struct.new_default $p)))
  (func (export "alloc") (param i32) (drop (array.new_default $a (local.get 0))))
)"""


@pytest.fixture(scope="module")
def inst():
    store = Store(Engine(cache=False))
    return store, dict(Instance(store, Module(store.engine, WAT), []).exports(store).items())


def test_struct_fields_round_trip(inst):
    store, e = inst
    assert e["point"](store, 41, 2.5) == [42, 2.5, -1, 5]


@pytest.mark.parametrize("x", [0, 1, 127, 128, 255, 256, -1, -128, 0x12345])
def test_packed_i8_fields_wrap_and_extend(inst, x):
    store, e = inst
    b = x & 0xFF
    assert e["packed"](store, x) == [b - 256 if b >= 128 else b, b]


def test_arrays_new_get_set_len(inst):
    store, e = inst
    assert e["array"](store, 4, 1) == [4, 70000 - 65536, 65533]  # i16 wraps; -3 read unsigned
    assert e["array"](store, 4, 3) == [4, -3, 65533]
    assert e["fixed"](store) == [1.5, -4.0, 3]
    assert e["filled"](store, 3) == 7.25
    assert e["default_len"](store, 0) == 0 and e["default_len"](store, 1000) == 1000


@pytest.mark.parametrize("length, index", [(4, 4), (4, -1), (0, 0), (1, 0x8000_0000)])
def test_array_bounds_trap(inst, length, index):
    store, e = inst
    with pytest.raises(Trap) as info:
        e["array"](store, length, index)
    assert info.value.code is TrapCode.ARRAY_OUT_OF_BOUNDS


def test_null_objects_trap(inst):
    store, e = inst
    for name, code in (
        ("null_struct", TrapCode.NULL_STRUCTURE_REFERENCE),
        ("null_array", TrapCode.NULL_ARRAY_REFERENCE),
    ):
        with pytest.raises(Trap) as info:
            e[name](store)
        assert info.value.code is code


def test_casts_read_the_header_and_the_supertype_chain(inst):
    store, e = inst
    assert e["casts"](store) == [1, 0, 1, 0, 1, 0]
    assert e["chain"](store) == [1, 1, 0, 1]
    with pytest.raises(Trap) as info:
        e["cast_fail"](store)
    assert info.value.code is TrapCode.CAST_FAILURE


def test_ref_eq_is_identity(inst):
    store, e = inst
    assert e["eq"](store) == [1, 0]


def test_objects_live_in_guest_memory_with_their_header():
    store = Store(Engine(cache=False))
    text = """(module (type $s (struct (field i32) (field f64)))
      (func (export "make") (result (ref $s)) (struct.new $s (i32.const 7) (f64.const 0.5))))"""
    make = Instance(store, Module(store.engine, text), []).exports(store)["make"]
    runtime = store._store
    before = set(runtime.gc_heap.objects)
    make(store)
    (va,) = set(runtime.gc_heap.objects) - before
    assert va % 8 == 0
    offsets, size = struct_layout(StructType((FieldType(I32, False), FieldType(F64, False))))
    assert offsets == (HEADER_BYTES, 16) and size == 24
    raw = bytes(runtime.phys_view(va, size))
    assert struct.unpack_from("<i", raw, offsets[0])[0] == 7
    assert struct.unpack_from("<d", raw, offsets[1])[0] == 0.5


GC = """(module
  (type $node (struct (field $v i32) (field $next (ref null $node))))
  (type $bytes (array (mut i8)))
  (global $keep (mut (ref null $node)) (ref.null none))
  (table $t 4 anyref)
  (func (export "garbage") (param i32)
    (loop $l
      (drop (array.new_default $bytes (i32.const 1000)))
      (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1))))))
  (func (export "list") (param i32) (result i32)
    (local $head (ref null $node)) (local $sum i32) (local $i i32)
    (loop $build
      (local.set $head (struct.new $node (local.get $i) (local.get $head)))
      (drop (array.new_default $bytes (i32.const 100)))
      (br_if $build (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get 0))))
    (loop $walk
      (local.set $sum (i32.add (local.get $sum) (struct.get $node $v (local.get $head))))
      (br_if $walk (i32.eqz (ref.is_null (local.tee $head (struct.get $node $next (local.get $head)))))))
    (local.get $sum))
  (func (export "keep") (param i32)
    (global.set $keep (struct.new $node (local.get 0) (global.get $keep)))
    (table.set $t (i32.const 0) (array.new_default $bytes (i32.const 8))))
  (func (export "kept") (result i32 i32)
    (struct.get $node $v (ref.as_non_null (global.get $keep)))
    (array.len (ref.cast (ref $bytes) (table.get $t (i32.const 0)))))
  (func (export "alloc") (param i32) (drop (array.new_default $bytes (local.get 0))))
)"""


def gc_instance(limit: int, *, stress: bool = False):
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.limit = limit
    heap.stress = stress
    exports = dict(Instance(store, Module(store.engine, GC), []).exports(store).items())
    return store, heap, exports


def test_garbage_is_reclaimed_and_its_memory_reused():
    store, heap, e = gc_instance(16 << 10)
    e["garbage"](store, 500)  # 500 KiB of garbage through a 16 KiB heap
    assert heap.collections >= 1 and heap.freed >= 450
    assert heap.used <= 16 << 10


@pytest.mark.parametrize("stress", [False, True])
def test_live_objects_survive_collections(stress):
    """GC stress: a list built across allocations of garbage, collected at every allocation or when the
    small heap fills, is intact afterwards."""
    store, heap, e = gc_instance(64 << 10, stress=stress)
    n = 300 if stress else 1000  # 1000 nodes and arrays take 128 KiB: the 64 KiB heap collects
    assert e["list"](store, n) == sum(range(n))
    assert heap.collections >= (2 * n if stress else 1)
    e["keep"](store, 7)
    e["garbage"](store, 100)
    e["keep"](store, 8)
    e["garbage"](store, 100)
    assert e["kept"](store) == [8, 8]  # roots in a global and a table


def test_the_heap_limit_traps_when_live_objects_fill_it():
    store, heap, e = gc_instance(64 << 10)
    with pytest.raises(Trap) as info:
        e["list"](store, 100_000)  # every node stays live
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED
    assert "in use by live objects" in str(info.value.summary)
    with pytest.raises(Trap) as info:
        e["alloc"](store, -1)  # 4 GiB of i8: past any limit, refused before anything is mapped
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED


def test_objects_the_host_holds_are_never_reclaimed():
    text = """(module (type $s (struct (field i32))) (type $b (array (mut i8)))
      (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
      (func (export "read") (param anyref) (result i32) (struct.get $s 0 (ref.cast (ref $s) (local.get 0))))
      (func (export "garbage") (param i32)
        (loop $l (drop (array.new_default $b (i32.const 1000)))
          (br_if $l (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))))"""
    store = Store(Engine(cache=False))
    store._store.gc_heap.limit = 16 << 10
    e = dict(Instance(store, Module(store.engine, text), []).exports(store).items())
    obj = e["make"](store, 5)
    e["garbage"](store, 200)
    assert store._store.gc_heap.collections >= 1
    assert e["read"](store, obj) == 5


def test_layout_of_packed_and_mixed_fields():
    st = StructType((FieldType(I8, True), FieldType(I32, False), FieldType(I8, False), FieldType(F64, False)))
    assert struct_layout(st) == ((8, 12, 16, 24), 32)


def test_store_limits_default_gc_heap():
    assert StoreLimits().gc_heap_bytes == 64 << 20


BULK = """(module
  (type $b (array (mut i8)))
  (type $r (array (mut anyref)))
  (type $s (struct (field i32) (field (ref null $b))))
  (data $d "\\01\\02\\03\\04\\05")
  (elem $e anyref (ref.i31 (i32.const 10)) (ref.i31 (i32.const 20)))
  (global $g (ref $s) (struct.new $s (i32.const 9) (array.new_fixed $b 2 (i32.const 7) (i32.const 8))))
  (func (export "fill_copy") (result i32 i32 i32 i32 i32)
    (local $a (ref $b))
    (local.set $a (array.new_data $b $d (i32.const 0) (i32.const 5)))
    (array.copy $b $b (local.get $a) (i32.const 1) (local.get $a) (i32.const 0) (i32.const 3))
    (array.get_u $b (local.get $a) (i32.const 0))
    (array.get_u $b (local.get $a) (i32.const 1))
    (array.get_u $b (local.get $a) (i32.const 3))
    (array.fill $b (local.get $a) (i32.const 4) (i32.const 300) (i32.const 1))
    (array.get_u $b (local.get $a) (i32.const 4))
    (array.len (local.get $a)))
  (func (export "init") (param i32) (result i32)
    (local $a (ref $b))
    (local.set $a (array.new_default $b (i32.const 4)))
    (array.init_data $b $d (local.get $a) (i32.const 0) (local.get 0) (i32.const 4))
    (array.get_u $b (local.get $a) (i32.const 3)))
  (func (export "elems") (result i32)
    (i31.get_u (ref.cast (ref i31) (array.get $r (array.new_elem $r $e (i32.const 1) (i32.const 1)) (i32.const 0)))))
  (func (export "global") (result i32 i32)
    (struct.get $s 0 (global.get $g))
    (array.get_u $b (struct.get $s 1 (global.get $g)) (i32.const 1)))
  (func (export "fill_oob") (array.fill $b (array.new_default $b (i32.const 2)) (i32.const 1) (i32.const 0) (i32.const 2)))
  (func (export "fill_null") (array.fill $b (ref.null $b) (i32.const 0) (i32.const 0) (i32.const 0)))
)"""


def test_array_bulk_operations_and_constant_objects():
    store = Store(Engine(cache=False))
    e = dict(Instance(store, Module(store.engine, BULK), []).exports(store).items())
    assert e["fill_copy"](store) == [1, 1, 3, 300 & 0xFF, 5]  # an overlapping copy moves [1 2 3] right
    assert e["init"](store, 1) == 5
    assert e["elems"](store) == 20
    assert e["global"](store) == [9, 8]
    with pytest.raises(Trap) as info:
        e["init"](store, 2)  # 4 bytes from offset 2 of a 5-byte segment
    assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    with pytest.raises(Trap) as info:
        e["fill_oob"](store)
    assert info.value.code is TrapCode.ARRAY_OUT_OF_BOUNDS
    with pytest.raises(Trap) as info:
        e["fill_null"](store)
    assert info.value.code is TrapCode.NULL_ARRAY_REFERENCE


def test_the_host_holds_objects_and_passes_them_back():
    from hwsim import GcObject
    from hwsim.errors import StoreMismatchError

    text = """(module (type $s (struct (field i32)))
      (func (export "make") (param i32) (result (ref $s)) (struct.new $s (local.get 0)))
      (func (export "read") (param anyref) (result i32) (struct.get $s 0 (ref.cast (ref $s) (local.get 0)))))"""
    store = Store(Engine(cache=False))
    e = dict(Instance(store, Module(store.engine, text), []).exports(store).items())
    obj = e["make"](store, 33)
    assert isinstance(obj, GcObject) and obj.kind == "struct"
    assert e["read"](store, obj) == 33
    assert obj == obj and obj != e["make"](store, 33)
    other = Store(Engine(cache=False))
    read_other = Instance(other, Module(other.engine, text), []).exports(other)["read"]
    with pytest.raises(StoreMismatchError):
        read_other(other, obj)


@pytest.mark.parametrize(
    "script",
    [  # every GC script that allocates while wasm runs
        "ref_eq.wast",
        "extern.wast",
        "ref_test.wast",
        "ref_cast.wast",
        "br_on_cast.wast",
        "br_on_cast_fail.wast",
        "struct.wast",
        "array.wast",
        "array_copy.wast",
        "array_init_data.wast",
        "array_init_elem.wast",
        "array_new_data.wast",
        "array_new_elem.wast",
    ],
)
def test_gc_spec_scripts_pass_with_a_collection_at_every_allocation(monkeypatch, script):
    """GC stress: the spec scripts' objects survive a collection at every allocation, memory intact."""
    from wasm_conftest_helpers import locate_testsuite

    from hwsim.spectest import SpecTestRunner
    from hwsim.spectest.hwsim_engine import HwsimEngine

    monkeypatch.setenv("HWSIM_GC_STRESS", "1")
    result = SpecTestRunner(HwsimEngine()).run_file(locate_testsuite() / script, name=script)
    failures = [f"{o.line} {o.command}: {o.reason}" for o in result.outcomes if o.status == "failed"]
    assert failures == [] and result.skipped == 0


def test_a_huge_constant_array_traps_at_instantiation_without_building_it():
    """Attack: a global initialised with a 2**31 - 1 element array (no Python list of that size is made)."""
    text = """(module (type $a (array i8))
      (global (ref $a) (array.new $a (i32.const 1) (i32.const 0x7fffffff))))"""
    store = Store(Engine(cache=False))
    with pytest.raises(Trap) as info:
        Instance(store, Module(store.engine, text), [])
    assert info.value.code is TrapCode.GC_HEAP_EXHAUSTED
