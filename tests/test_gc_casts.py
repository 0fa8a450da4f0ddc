"""O(1) casts (compiler/codegen/gc.py ``emit_header_test``, runtime/gcheap.py's type descriptors):
ref.test, ref.cast, br_on_cast and br_on_cast_fail to struct, array and concrete struct, array and
function types run inline through the supertype display; deep hierarchies (depth 0, 1, many, past the
display, where the gc_test builtin takes over), canonical types across modules, nulls, function types,
host functions, forged header ids, the descriptor table read-only, the code the same in every process."""

from __future__ import annotations

import hashlib
import subprocess
import sys

import pytest
from gc_helpers import count_builtin_calls

from hwsim import Engine, Func, FuncType, Instance, Module, Store, Trap, ValType, wat2wasm
from hwsim.compiler import abi
from hwsim.compiler.builtins import Builtin
from hwsim.compiler.traps import TrapCode
from hwsim.mmu.bits import Pte

DEPTH = 20  # a chain $t0 <- $t1 <- ... <- $t19: deeper than the 15-entry display


def chain_wat() -> str:
    types = ["(type $t0 (sub (struct (field i32))))"]
    types += [f"(type $t{i} (sub $t{i - 1} (struct (field i32))))" for i in range(1, DEPTH)]
    funcs = []
    for i in range(DEPTH):
        funcs.append(f'(func (export "make{i}") (result anyref) (struct.new $t{i} (i32.const {i})))')
        funcs.append(f'(func (export "test{i}") (param anyref) (result i32) (ref.test (ref $t{i}) (local.get 0)))')
        funcs.append(
            f'(func (export "test_null{i}") (param anyref) (result i32) (ref.test (ref null $t{i}) (local.get 0)))'
        )
        funcs.append(
            f'(func (export "cast{i}") (param anyref) (result i32) (struct.get $t{i} 0 (ref.cast (ref $t{i}) (local.get 0))))'
        )
        funcs.append(
            f'(func (export "br{i}") (param anyref) (result i32)'
            f" (block $yes (result (ref $t{i})) (br_on_cast $yes anyref (ref $t{i}) (local.get 0)) (return (i32.const -1)))"
            f" (struct.get $t{i} 0))"
        )
        funcs.append(
            f'(func (export "br_fail{i}") (param anyref) (result i32)'
            f" (block $no (result anyref) (br_on_cast_fail $no anyref (ref $t{i}) (local.get 0)) (return (i32.const 0)))"
            f" (drop) (i32.const 1))"
        )
    others = """
      (type $arr (array (mut i8)))
      (type $other (struct (field i32)))
      (func (export "array") (result anyref) (array.new_default $arr (i32.const 3)))
      (func (export "other") (result anyref) (struct.new $other (i32.const 5)))
      (func (export "i31") (result anyref) (ref.i31 (i32.const 8)))
      (func (export "host") (param externref) (result anyref) (any.convert_extern (local.get 0)))
      (func (export "is_struct") (param anyref) (result i32) (ref.test (ref struct) (local.get 0)))
      (func (export "is_array") (param anyref) (result i32) (ref.test (ref array) (local.get 0)))
      (func (export "is_null_array") (param anyref) (result i32) (ref.test (ref null array) (local.get 0)))"""
    return "(module " + " ".join(types) + others + " " + " ".join(funcs) + ")"


@pytest.fixture(scope="module")
def chain():
    store = Store(Engine(cache=False))
    exports = dict(Instance(store, Module(store.engine, chain_wat()), []).exports(store).items())
    objects = [exports[f"make{i}"](store) for i in range(DEPTH)]
    return store, exports, objects


@pytest.fixture
def gc_tests(monkeypatch):
    """Count the calls of the gc_test builtin (casts not done inline)."""
    return count_builtin_calls(monkeypatch, Builtin.gc_test)


@pytest.mark.parametrize("target", [0, 1, 2, 7, 14, 15, 16, DEPTH - 1])
def test_casts_in_a_deep_hierarchy(chain, gc_tests, target):
    """An object of $ti is a $tj exactly when j <= i, for every instruction; targets above depth 15
    (the display's size) go through gc_test, the others never call it."""
    store, e, objects = chain
    for i, obj in enumerate(objects):
        ok = target <= i
        assert e[f"test{target}"](store, obj) == int(ok), (i, target)
        assert e[f"test_null{target}"](store, obj) == int(ok)
        assert e[f"br{target}"](store, obj) == (i if ok else -1)
        assert e[f"br_fail{target}"](store, obj) == int(not ok)
        if ok:
            assert e[f"cast{target}"](store, obj) == i
        else:
            with pytest.raises(Trap) as info:
                e[f"cast{target}"](store, obj)
            assert info.value.code is TrapCode.CAST_FAILURE
    if target < abi.GC_DISPLAY:
        assert gc_tests == []
    else:
        assert len(gc_tests) == 5 * DEPTH


@pytest.mark.parametrize("target", [0, 1, 15, DEPTH - 1])
def test_what_is_not_an_object_of_the_type(chain, target):
    """Null (accepted only by a nullable target), an i31, a host value, an array, a struct of another
    type with the same fields (a different canonical type: $t0 is not final)."""
    store, e, _ = chain
    for name in ("array", "other", "i31"):
        word = e[name](store)
        assert e[f"test{target}"](store, word) == 0
        assert e[f"test_null{target}"](store, word) == 0
        assert e[f"br{target}"](store, word) == -1
    host = e["host"](store, object())
    assert e[f"test{target}"](store, host) == 0
    assert e[f"test{target}"](store, None) == 0
    assert e[f"test_null{target}"](store, None) == 1
    assert e[f"br{target}"](store, None) == -1
    assert e[f"br_fail{target}"](store, None) == 1
    with pytest.raises(Trap) as info:
        e[f"cast{target}"](store, None)
    assert info.value.code is TrapCode.CAST_FAILURE


def test_struct_and_array_casts_read_the_kind(chain, gc_tests):
    store, e, objects = chain
    cases = [(objects[0], 1, 0), (objects[DEPTH - 1], 1, 0), (e["array"](store), 0, 1), (e["other"](store), 1, 0)]
    for word, is_struct, is_array in cases:
        assert (e["is_struct"](store, word), e["is_array"](store, word)) == (is_struct, is_array)
    for word in (e["i31"](store), e["host"](store, "x"), None):
        assert (e["is_struct"](store, word), e["is_array"](store, word)) == (0, 0)
    assert e["is_null_array"](store, None) == 1
    assert gc_tests == []


CANON = """(module
  (rec (type $a (sub (struct (field i32)))) (type $pad (struct)))
  (type $b (sub $a (struct (field i32) (field i64))))
  (type $plain (sub (struct (field i32))))
  (func (export "make_a") (result anyref) (struct.new $a (i32.const 1)))
  (func (export "make_b") (result anyref) (struct.new $b (i32.const 2) (i64.const 3)))
  (func (export "make_plain") (result anyref) (struct.new $plain (i32.const 4)))
  (func (export "is_a") (param anyref) (result i32) (ref.test (ref $a) (local.get 0)))
  (func (export "is_b") (param anyref) (result i32) (ref.test (ref $b) (local.get 0)))
  (func (export "is_plain") (param anyref) (result i32) (ref.test (ref $plain) (local.get 0))))"""


def test_canonical_types_are_one_type_across_modules():
    """Two modules defining the same types (here with padding types before them, so the type indices
    differ) cast each other's objects as their own; a type of the same structure outside the recursion
    group is another type."""
    store = Store(Engine(cache=False))
    first = Instance(store, Module(store.engine, CANON), []).exports(store)
    padded = CANON.replace("(module", "(module (type (func)) (type (array i8)) (type (func (param i32)))", 1)
    second = Instance(store, Module(store.engine, padded), []).exports(store)
    for made, tested in ((first, second), (second, first)):
        a, b, plain = made["make_a"](store), made["make_b"](store), made["make_plain"](store)
        assert [tested["is_a"](store, w) for w in (a, b, plain)] == [1, 1, 0]
        assert [tested["is_b"](store, w) for w in (a, b, plain)] == [0, 1, 0]
        assert [tested["is_plain"](store, w) for w in (a, b, plain)] == [0, 0, 1]


FUNCS = """(module
  (type $f0 (sub (func (result i32))))
  (type $f1 (sub $f0 (func (result i32))))
  (type $f2 (sub $f1 (func (result i32))))
  (type $plain (func (param i32)))
  (import "host" "f" (func $host (param i32)))
  (func $g0 (type $f0) (i32.const 0))
  (func $g1 (type $f1) (i32.const 1))
  (func $g2 (type $f2) (i32.const 2))
  (elem declare func $g0 $g1 $g2 $host)
  (table $t 4 funcref)
  (elem (table $t) (i32.const 0) func $g0 $g1 $g2 $host)
  (func (export "test") (param $i i32) (param $target i32) (result i32)
    (local $f funcref)
    (local.set $f (table.get $t (local.get $i)))
    (block $b3 (block $b2 (block $b1 (block $b0
      (br_table $b0 $b1 $b2 $b3 (local.get $target)))
      (return (ref.test (ref $f0) (local.get $f))))
      (return (ref.test (ref $f1) (local.get $f))))
      (return (ref.test (ref $f2) (local.get $f))))
    (ref.test (ref $plain) (local.get $f)))
  (func (export "call_as_f1") (param $i i32) (result i32)
    (call_ref $f1 (ref.cast (ref $f1) (table.get $t (local.get $i)))))
  (func (export "null_f0") (result i32 i32)
    (ref.test (ref $f0) (ref.null nofunc)) (ref.test (ref null $f0) (ref.null nofunc))))"""


def test_function_type_casts_walk_the_declared_supertypes(gc_tests):
    store = Store(Engine(cache=False))
    host = Func(store, FuncType([ValType.i32()], []), lambda x: None)
    e = Instance(store, Module(store.engine, FUNCS), [host]).exports(store)
    # table: $g0 (type $f0), $g1 ($f1), $g2 ($f2), the host function (the plain (func (param i32)))
    expected = [[1, 0, 0, 0], [1, 1, 0, 0], [1, 1, 1, 0], [0, 0, 0, 1]]
    assert [[e["test"](store, i, t) for t in range(4)] for i in range(4)] == expected
    assert e["null_f0"](store) == [0, 1]
    assert e["call_as_f1"](store, 2) == 2
    with pytest.raises(Trap) as info:
        e["call_as_f1"](store, 0)
    assert info.value.code is TrapCode.CAST_FAILURE
    assert gc_tests == []


def test_a_function_from_another_module_casts_by_its_canonical_type():
    store = Store(Engine(cache=False))
    host = Func(store, FuncType([ValType.i32()], []), lambda x: None)
    exporter = FUNCS.replace("(func $g2 (type $f2) (i32.const 2))", '(func $g2 (export "g2") (type $f2) (i32.const 2))')
    g2 = Instance(store, Module(store.engine, exporter), [host]).exports(store)["g2"]
    importer = """(module (type $f0 (sub (func (result i32)))) (type $f1 (sub $f0 (func (result i32))))
      (type $f2 (sub $f1 (func (result i32))))
      (import "m" "g2" (func $g2 (type $f2)))
      (elem declare func $g2)
      (func (export "is_f1") (result i32) (ref.test (ref $f1) (ref.func $g2)))
      (func (export "is_other") (result i32) (ref.test (ref $other) (ref.func $g2)))
      (type $same_as_f0 (sub (func (result i32))))
      (func (export "is_f0") (result i32) (ref.test (ref $same_as_f0) (ref.func $g2)))
      (type $other (func (result i32))))"""
    e = Instance(store, Module(store.engine, importer), [g2]).exports(store)
    assert e["is_f1"](store) == 1
    assert e["is_f0"](store) == 1  # the same canonical type as $f0, declared again
    assert e["is_other"](store) == 0  # the same signature, but final and without a supertype: another type


@pytest.mark.parametrize("forged", ["past the table", "huge", "zero", "another type"])
def test_a_forged_header_id_cannot_read_outside_the_descriptors(chain, forged):
    """Attack: wasm cannot write a header (fields and elements start past it, every access is checked),
    but the inline test is bounds-safe anyway: an id past the descriptor table fails the test instead of
    reading beyond it; an id inside it answers for the type it names."""
    store, e, _ = chain
    obj = e["make3"](store)
    heap = store._store.gc_heap
    count = store._store.read_u64(heap.record + abi.GC_DESCRIPTOR_COUNT)
    other = heap.tid_of[heap.header(e["other"](store).address)[0]]
    tid = {"past the table": count, "huge": 0xFFFF_FFFF, "zero": 0, "another type": other}[forged]
    va = obj.address
    saved = bytes(store._store.phys_view(va, 4))
    store._store.phys_view(va, 4)[:] = tid.to_bytes(4, "little")
    try:
        assert [e[f"test{t}"](store, obj) for t in (0, 3, 16)] == [0, 0, 0]
        assert e["is_struct"](store, obj) == (1 if forged == "another type" else 0)
    finally:
        store._store.phys_view(va, 4)[:] = saved
    assert e["test3"](store, obj) == 1


def test_the_descriptor_table_is_read_only_for_the_guest(chain):
    store, _, _ = chain
    runtime = store._store
    table = runtime.read_u64(runtime.gc_heap.record + abi.GC_DESCRIPTORS)
    mapping = runtime.space.lookup(table)
    assert mapping is not None
    assert mapping.flags & Pte.R and mapping.flags & Pte.U
    assert not mapping.flags & (Pte.W | Pte.X)


def test_the_descriptor_table_grows_with_the_stores_types():
    """Modules instantiated later bring more types than the first table holds: it is copied to a larger
    one, and casts keep working for the old types and the new."""
    store = Store(Engine(cache=False))
    first = Instance(store, Module(store.engine, CANON), []).exports(store)
    a = first["make_a"](store)
    runtime = store._store
    before = runtime.read_u64(runtime.gc_heap.record + abi.GC_DESCRIPTORS)
    many = "(module " + " ".join(f"(type (struct (field i32) {'(field i8) ' * k}))" for k in range(200))
    many += '(func (export "x") (result anyref) (struct.new_default 199)))'
    x = Instance(store, Module(store.engine, many), []).exports(store)["x"](store)
    assert runtime.read_u64(runtime.gc_heap.record + abi.GC_DESCRIPTORS) != before
    assert first["is_a"](store, a) == 1
    assert first["is_a"](store, x) == 0
    assert first["is_plain"](store, x) == 0


_CODE_DIGEST = """
import hashlib, sys
from hwsim.wasm import decode_module, validate
from hwsim.compiler import compile_module
from hwsim.wasm.subtyping import canonical_ids
from hwsim.wasm.types import FieldType, StructType, I32
for k in range(int(sys.argv[1])):  # other canonical types first: the module's get other ids
    canonical_ids([StructType(tuple(FieldType(I32, False) for _ in range(k + 1)))])
module = decode_module(sys.stdin.buffer.read())
validate(module)
print(hashlib.sha256(compile_module(module).code).hexdigest(), list(module.gc_canon))
"""


def test_compiled_code_is_the_same_whatever_canonical_ids_the_process_gave():
    """Canonical ids are per process while the code cache is shared: the code of the same module compiled
    in two processes whose canonical ids differ is identical (the ids come from the vmctx)."""
    wasm = bytes(wat2wasm(chain_wat()))
    runs = []
    for others in (0, 50):
        out = subprocess.run(
            [sys.executable, "-c", _CODE_DIGEST, str(others)], input=wasm, capture_output=True, check=True
        ).stdout.decode()
        runs.append(out.split(" ", 1))
    (code0, ids0), (code1, ids1) = runs
    assert ids0 != ids1  # the processes did give the types other ids
    assert code0 == code1
    assert hashlib.sha256(b"").hexdigest() not in (code0, code1)
