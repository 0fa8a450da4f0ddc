"""GC compiled without a heap (hwsim/compiler/codegen/gc.py): ref.i31, i31.get_s/u, ref.eq, the
any/extern conversions and casts to abstract heap types, run on the emulated CPU and checked against
a Python model of the word (0 null, (v << 1) | 1 an i31, 4n + 2 a host object)."""

from __future__ import annotations

import pytest

from hwsim import I31, Engine, Instance, Module, Store, Trap
from hwsim.compiler.codegen import gc as gc_codegen
from hwsim.compiler.traps import TrapCode
from hwsim.wasm import gcops

WAT = """(module
  (global $g (ref i31) (ref.i31 (i32.const -5)))
  (global $e externref (extern.convert_any (ref.i31 (i32.const 9))))
  (func (export "get_s") (param i32) (result i32) (i31.get_s (ref.i31 (local.get 0))))
  (func (export "get_u") (param i32) (result i32) (i31.get_u (ref.i31 (local.get 0))))
  (func (export "global") (result i32 i32)
    (i31.get_s (global.get $g))
    (i31.get_u (ref.cast (ref i31) (any.convert_extern (global.get $e)))))
  (func (export "get_null") (result i32) (i31.get_u (ref.null i31)))
  (func (export "eq") (param i32 i32) (result i32) (ref.eq (ref.i31 (local.get 0)) (ref.i31 (local.get 1))))
  (func (export "eq_null") (param i32) (result i32) (ref.eq (ref.null none) (ref.i31 (local.get 0))))
  (func (export "eq_branch") (param i32 i32) (result i32)
    (if (result i32) (ref.eq (ref.i31 (local.get 0)) (ref.i31 (local.get 1))) (then (i32.const 10)) (else (i32.const 20))))
  (func (export "test") (param externref) (result i32 i32 i32 i32 i32 i32 i32 i32)
    (ref.test (ref any) (any.convert_extern (local.get 0)))
    (ref.test (ref null any) (any.convert_extern (local.get 0)))
    (ref.test (ref eq) (any.convert_extern (local.get 0)))
    (ref.test (ref null i31) (any.convert_extern (local.get 0)))
    (ref.test (ref struct) (any.convert_extern (local.get 0)))
    (ref.test (ref null array) (any.convert_extern (local.get 0)))
    (ref.test (ref null none) (any.convert_extern (local.get 0)))
    (ref.test (ref extern) (local.get 0)))
  (func (export "test_i31") (param i32) (result externref) (extern.convert_any (ref.i31 (local.get 0))))
  (func (export "cast_i31") (param externref) (result i32)
    (i31.get_s (ref.cast (ref i31) (any.convert_extern (local.get 0)))))
  (func (export "cast_null_ok") (param externref) (result i32)
    (ref.is_null (ref.cast (ref null eq) (any.convert_extern (local.get 0)))))
  (func (export "on_cast") (param externref) (result i32)
    (block $l (result (ref i31))
      (br_on_cast $l anyref (ref i31) (any.convert_extern (local.get 0)))
      ref.is_null
      i32.const 100
      i32.add
      return)
    (i31.get_u))
  (func (export "on_cast_fail") (param externref) (result i32)
    (block $l (result anyref)
      (return (i31.get_s (br_on_cast_fail $l anyref (ref i31) (any.convert_extern (local.get 0))))))
    ref.is_null
    i32.const 100
    i32.add)
  (func (export "funcs") (param funcref) (result i32 i32)
    (ref.test (ref func) (local.get 0))
    (ref.test (ref null nofunc) (local.get 0)))
  (func $f (export "f"))
)"""


def i31_s(x: int) -> int:
    """The model: i32 -> i31 -> i32, sign-extended."""
    v = x & 0x7FFF_FFFF
    return v - (1 << 31) if v >> 30 else v


@pytest.fixture(scope="module")
def inst():
    store = Store(Engine(cache=False))
    exports = dict(Instance(store, Module(store.engine, WAT), []).exports(store).items())
    return store, exports


EDGES = [0, 1, -1, 0x3FFF_FFFF, 0x4000_0000, 0x7FFF_FFFF, -0x8000_0000, -0x4000_0000, -0x4000_0001, 12345678]


@pytest.mark.parametrize("x", EDGES)
def test_i31_round_trips_as_the_model(inst, x):
    store, e = inst
    assert e["get_s"](store, x) == i31_s(x)
    assert e["get_u"](store, x) == x & 0x7FFF_FFFF


def test_constant_expressions_make_i31s(inst):
    store, e = inst
    assert e["global"](store) == [-5, 9]


def test_i31_get_of_null_traps(inst):
    store, e = inst
    with pytest.raises(Trap) as info:
        e["get_null"](store)
    assert info.value.code is TrapCode.NULL_I31_REFERENCE
    assert TrapCode.NULL_I31_REFERENCE.message == "null i31 reference"


def test_ref_eq_compares_i31_values(inst):
    store, e = inst
    assert e["eq"](store, 3, 3) == 1
    assert e["eq"](store, 3, 4) == 0
    assert e["eq"](store, 3, 3 | 0x8000_0000) == 1  # the top bit is not part of an i31
    assert e["eq_null"](store, 0) == 0
    assert e["eq_branch"](store, 7, 7) == 10 and e["eq_branch"](store, 7, 8) == 20


def test_abstract_casts_of_null_host_and_i31(inst):
    store, e = inst
    #                          any ?any eq ?i31 struct ?array ?none extern
    assert e["test"](store, None) == [0, 1, 0, 1, 0, 1, 1, 0]
    assert e["test"](store, "host") == [1, 1, 0, 0, 0, 0, 0, 1]  # internalized host value: any, not eq
    i31 = e["test_i31"](store, 5)
    assert e["test"](store, i31) == [1, 1, 1, 1, 0, 0, 0, 1]


def test_ref_cast_traps_on_failure(inst):
    store, e = inst
    assert e["cast_i31"](store, e["test_i31"](store, -3)) == -3
    for bad in ("host", None):
        with pytest.raises(Trap) as info:
            e["cast_i31"](store, bad)
        assert info.value.code is TrapCode.CAST_FAILURE
    assert e["cast_null_ok"](store, None) == 1
    with pytest.raises(Trap):
        e["cast_null_ok"](store, "host")  # a host value is any but not eq


def test_br_on_cast_and_br_on_cast_fail(inst):
    store, e = inst
    i31 = e["test_i31"](store, 42)
    assert e["on_cast"](store, i31) == 42
    assert e["on_cast"](store, "host") == 100  # fell through with a non-null reference
    assert e["on_cast"](store, None) == 101
    assert e["on_cast_fail"](store, i31) == 42
    assert e["on_cast_fail"](store, "host") == 100
    assert e["on_cast_fail"](store, None) == 101


def test_funcref_casts(inst):
    store, e = inst
    assert e["funcs"](store, e["f"]) == [1, 0]
    assert e["funcs"](store, None) == [0, 1]


def test_the_code_generator_compiles_exactly_the_heap_free_and_object_sets():
    assert set(gc_codegen.dispatch()) | {gcops.REF_EQ} == gcops.HEAP_FREE | gcops.OBJECT_OPS


def test_casts_to_function_types_compare_canonical_types():
    store = Store(Engine(cache=False))
    text = """(module
      (type $f (func (param i32)))
      (type $g (func (param i64)))
      (rec (type $h (func (param i32))) (type (struct)))
      (func $a (type $f)) (func $b (type $g)) (func $c (type $h))
      (elem declare func $a $b $c)
      (func (export "test") (result i32 i32 i32 i32)
        (ref.test (ref $f) (ref.func $a))
        (ref.test (ref $f) (ref.func $b))
        (ref.test (ref $f) (ref.func $c))
        (ref.test (ref null $f) (ref.null nofunc)))
      (func (export "on_cast") (result i32)
        (block $l (result (ref $g)) (br_on_cast $l funcref (ref $g) (ref.func $b)) (return (i32.const 0)))
        (drop)
        (i32.const 1)))"""
    e = dict(Instance(store, Module(store.engine, text), []).exports(store).items())
    assert e["test"](store) == [1, 0, 0, 1]  # $h has $f's structure in another recursion group
    assert e["on_cast"](store) == 1


def test_the_host_sees_and_passes_i31_values(inst):
    store, e = inst
    got = e["test_i31"](store, -7)
    assert got == I31(-7)
    assert e["cast_i31"](store, I31(2**30 - 1)) == 2**30 - 1
    assert e["cast_i31"](store, I31(-(2**30))) == -(2**30)
    assert I31.from_word(I31(-1).word) == I31(-1)


@pytest.mark.parametrize("bad", [2**30, -(2**30) - 1, 1.5, "1"])
def test_i31_values_must_fit_31_bits(bad):
    with pytest.raises(ValueError) as info:
        I31(bad)
    assert str(info.value) == f"I31(value): a 31-bit signed integer (-2**30 <= value < 2**30), not {bad!r}"


def test_host_handles_have_the_anyref_word_shape():
    store = Store(Engine(cache=False))
    words = [store._store.extern_handle(object()) for _ in range(3)]
    assert len(set(words)) == 3
    for w in words:
        assert w % 4 == 2  # neither an i31 (odd) nor a GC object (8-aligned)


def test_tables_and_globals_of_gc_references():
    store = Store(Engine(cache=False))
    text = """(module
      (table $t 2 10 i31ref)
      (global $a (mut anyref) (ref.null none))
      (func (export "run") (param i32) (result i32 i32 i32)
        (table.set $t (i32.const 1) (ref.i31 (local.get 0)))
        (global.set $a (table.get $t (i32.const 1)))
        (drop (table.grow $t (ref.i31 (i32.const 77)) (i32.const 3)))
        (i31.get_s (ref.cast (ref i31) (global.get $a)))
        (i31.get_u (table.get $t (i32.const 4)))
        (table.size $t)))"""
    exports = dict(Instance(store, Module(store.engine, text), []).exports(store).items())
    assert exports["run"](store, -9) == [-9, 77, 5]


def test_spectest_values_of_the_any_hierarchy():
    from hwsim.spectest.values import GcPattern, I31Value, Value, matches, parse_expected, parse_value

    i31 = Value("anyref", I31Value(3))
    host = Value("anyref", 1)
    assert parse_expected({"type": "i31ref"}) == GcPattern("i31ref")
    assert matches(GcPattern("i31ref"), i31) and not matches(GcPattern("i31ref"), host)
    assert matches(GcPattern("anyref"), host) and matches(GcPattern("eqref"), i31)
    assert not matches(GcPattern("structref"), i31) and not matches(GcPattern("anyref"), Value("anyref", None))
    assert parse_value({"type": "anyref", "value": "1"}) == host
    assert parse_value({"type": "eqref", "value": "null"}) == Value("anyref", None)
    assert parse_value({"type": "nullexternref"}) == Value("externref", None)
    assert matches(parse_expected({"type": "refnull"}), Value("anyref", None))
