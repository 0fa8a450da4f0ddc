"""``array.new`` compiled inline (compiler/codegen/gc.py ``visit_array_new``): allocation from the buffer, then
a fill loop; every element storage, lengths from constants and registers, the heap limit, collections."""

from __future__ import annotations

import struct

import pytest

from hwsim import Engine, Instance, Module, Store, Trap, TrapCode
from hwsim.compiler.builtins import Builtin
from hwsim.runtime import builtins as runtime_builtins

WAT = """(module
  (type $i8 (array (mut i8)))
  (type $i16 (array (mut i16)))
  (type $i32 (array (mut i32)))
  (type $i64 (array (mut i64)))
  (type $f32 (array (mut f32)))
  (type $f64 (array (mut f64)))
  (type $s (struct (field $v i32)))
  (type $refs (array (mut (ref null $s))))
  (func (export "i8") (param $v i32) (param $n i32) (param $i i32) (result i32)
    (array.get_u $i8 (array.new $i8 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "i8_s") (param $v i32) (param $n i32) (param $i i32) (result i32)
    (array.get_s $i8 (array.new $i8 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "i16") (param $v i32) (param $n i32) (param $i i32) (result i32)
    (array.get_u $i16 (array.new $i16 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "i32") (param $v i32) (param $n i32) (param $i i32) (result i32)
    (array.get $i32 (array.new $i32 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "i64") (param $v i64) (param $n i32) (param $i i32) (result i64)
    (array.get $i64 (array.new $i64 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "f32") (param $v f32) (param $n i32) (param $i i32) (result f32)
    (array.get $f32 (array.new $f32 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "f64") (param $v f64) (param $n i32) (param $i i32) (result f64)
    (array.get $f64 (array.new $f64 (local.get $v) (local.get $n)) (local.get $i)))
  (func (export "len") (param $n i32) (result i32) (array.len (array.new $i64 (i64.const 9) (local.get $n))))
  (func (export "const_len_sum") (result i64)  ;; a constant length and a constant value
    (local $a (ref null $i64)) (local $i i32) (local $sum i64)
    (local.set $a (array.new $i64 (i64.const 3) (i32.const 5)))
    (loop $l (if (i32.lt_u (local.get $i) (i32.const 5)) (then
      (local.set $sum (i64.add (local.get $sum) (array.get $i64 (local.get $a) (local.get $i))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))))
    (local.get $sum))
  (func (export "zero_then_neighbour") (result i32)
    ;; a constant 0 fills nothing (a new object is zeroed); the next object is not written by the fill
    (local $a (ref null $i32)) (local $b (ref null $i32))
    (local.set $a (array.new $i32 (i32.const 7) (i32.const 3)))
    (local.set $b (array.new $i32 (i32.const 0) (i32.const 3)))
    (i32.add (i32.mul (array.get $i32 (local.get $a) (i32.const 2)) (i32.const 100))
             (array.get $i32 (local.get $b) (i32.const 2))))
  (func (export "refs") (param $v i32) (param $n i32) (result i32)
    (local $a (ref null $refs)) (local $i i32) (local $sum i32)
    (local.set $a (array.new $refs (struct.new $s (local.get $v)) (local.get $n)))
    (drop (array.new $i8 (i32.const 1) (i32.const 100)))  ;; collects under stress: the element must stay
    (loop $l (if (i32.lt_u (local.get $i) (local.get $n)) (then
      (local.set $sum (i32.add (local.get $sum)
        (struct.get $s $v (ref.as_non_null (array.get $refs (local.get $a) (local.get $i))))))
      (local.set $i (i32.add (local.get $i) (i32.const 1))) (br $l))))
    (local.get $sum))
  (func (export "same_element") (result i32)  ;; every element is the one object
    (local $a (ref null $refs))
    (local.set $a (array.new $refs (struct.new $s (i32.const 1)) (i32.const 4)))
    (ref.eq (array.get $refs (local.get $a) (i32.const 0)) (array.get $refs (local.get $a) (i32.const 3))))
  (func (export "bounds") (param $n i32) (param $i i32) (result i32)
    (array.get $i32 (array.new $i32 (i32.const 5) (local.get $n)) (local.get $i)))
)"""


@pytest.fixture(params=[False, True], ids=["buffer", "stress"])
def run(request):
    """The exports, with objects from the allocation buffer, or with a collection at every allocation."""
    store = Store(Engine(cache=False))
    store._store.gc_heap.stress = request.param
    e = dict(Instance(store, Module(store.engine, WAT), []).exports(store).items())
    return store, e


def f32(x: float) -> float:
    return struct.unpack("<f", struct.pack("<f", x))[0]


@pytest.mark.parametrize(
    ("name", "value", "n", "i", "expected"),
    [
        ("i8", 0x1FF, 10, 9, 0xFF),  # packed: the low 8 bits
        ("i8_s", 0x80, 33, 17, -128),
        ("i8", 5, 1, 0, 5),
        ("i16", 0x12345, 7, 6, 0x2345),
        ("i32", -7, 1000, 999, -7),
        ("i64", -(1 << 62), 300, 150, -(1 << 62)),
        ("f32", 1.5, 9, 8, 1.5),
        ("f64", -2.25e300, 64, 63, -2.25e300),
    ],
)
def test_array_new_fills_every_element_of_every_storage(run, name, value, n, i, expected):
    store, e = run
    assert e[name](store, value, n, i) == expected
    assert e[name](store, value, n, 0) == expected


def test_array_new_lengths(run):
    store, e = run
    assert [e["len"](store, n) for n in (0, 1, 2, 1000)] == [0, 1, 2, 1000]
    assert e["const_len_sum"](store) == 15
    assert e["zero_then_neighbour"](store) == 700


def test_array_new_with_a_reference_keeps_it_and_shares_it(run):
    store, e = run
    assert e["refs"](store, 11, 6) == 66
    assert e["same_element"](store) == 1


def test_array_new_bounds_and_empty_arrays_trap(run):
    store, e = run
    assert e["bounds"](store, 4, 3) == 5
    for n, i in ((4, 4), (0, 0)):
        with pytest.raises(Trap) as exc:
            e["bounds"](store, n, i)
        assert exc.value.code == TrapCode.ARRAY_OUT_OF_BOUNDS


def test_array_new_past_the_heap_limit_traps_and_the_store_goes_on(run):
    store, e = run
    store.set_limits(gc_heap_size=64 << 10)
    for name, n in (("i64", 1 << 20), ("i8", 0xFFFF_FFFF)):  # 8 MiB of elements; the largest u32 length
        with pytest.raises(Trap) as exc:
            e[name](store, 1, n, 0)
        assert exc.value.code == TrapCode.GC_HEAP_EXHAUSTED
    assert e["i64"](store, 4, 100, 99) == 4  # the heap still works


def test_array_new_of_non_v128_elements_calls_no_builtin(monkeypatch):
    """Allocation and fill are inline: the gc_array_new builtin runs only for v128 elements (the control
    shows the count is seen)."""
    seen: list[int] = []
    original = runtime_builtins.DISPATCH[Builtin.gc_array_new]

    def counted(*args):
        seen.append(1)
        return original(*args)

    monkeypatch.setitem(runtime_builtins.DISPATCH, Builtin.gc_array_new, counted)
    store = Store(Engine(cache=False))
    wat = (
        WAT[:-1]
        + """
  (type $v (array (mut v128)))
  (func (export "v128") (param $n i32) (result i64)
    (i64x2.extract_lane 1 (array.get $v (array.new $v (v128.const i64x2 1 2) (local.get $n)) (i32.const 0)))))"""
    )
    e = dict(Instance(store, Module(store.engine, wat), []).exports(store).items())
    assert e["i32"](store, 3, 50, 49) == 3
    assert e["f64"](store, 0.5, 50, 49) == 0.5
    assert e["refs"](store, 2, 3) == 6
    assert seen == []
    assert e["v128"](store, 3) == 2
    assert seen == [1]
