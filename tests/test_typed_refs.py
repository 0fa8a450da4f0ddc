"""Typed function references (WebAssembly 3.0) on hwsim's engine: call_ref, return_call_ref,
ref.as_non_null, br_on_null, br_on_non_null, non-nullable locals and tables with initialisers.

Through the public API; the validator's messages are the reference interpreter's phrases
(``type mismatch``, ``uninitialized local``, ``unknown type``).  wasm/typedrefs.py describes the design.
"""

from __future__ import annotations

import pytest

from hwsim import Engine, Instance, Module, Store, Trap
from hwsim.runtime.api import WasmtimeError
from hwsim.wasm import decode_module, validate
from hwsim.wasm.errors import InvalidError
from hwsim.wasm.types import FUNCREF, ref_abstract, ref_concrete, valtype_name


@pytest.fixture
def store():
    return Store(Engine(cache=False))


def instance(store, wat: str, imports=()) -> dict:
    inst = Instance(store, Module(store.engine, wat), list(imports))
    return dict(inst.exports(store).items())


def invalid(wat: str) -> str:
    """The reason the validator gives for ``wat`` (via the text parser hwsim's Module uses)."""
    with pytest.raises(WasmtimeError) as info:
        Module(Engine(cache=False), wat)
    return str(info.value)


def test_value_types_carry_nullability_and_a_heap_type():
    assert valtype_name(ref_concrete(3, nullable=True)) == "(ref null 3)"
    assert valtype_name(ref_concrete(0, nullable=False)) == "(ref 0)"
    assert valtype_name(ref_abstract(FUNCREF, nullable=False)) == "(ref func)"
    assert ref_abstract(FUNCREF, nullable=True) == FUNCREF  # (ref null func) is funcref


CALLS = """(module
  (type $ii (func (param i32) (result i32)))
  (func $double (type $ii) (i32.mul (local.get 0) (i32.const 2)))
  (func $square (type $ii) (i32.mul (local.get 0) (local.get 0)))
  (table $t 3 (ref null $ii))
  (elem (table $t) (i32.const 0) (ref null $ii) (ref.func $double) (ref.func $square))
  (func (export "apply") (param i32 i32) (result i32)
    (call_ref $ii (local.get 1) (table.get $t (local.get 0))))
  (func (export "direct") (param i32) (result i32)
    (call_ref $ii (local.get 0) (ref.func $square)))
)"""


def test_call_ref_through_a_table_of_typed_references(store):
    ex = instance(store, CALLS)
    assert ex["apply"](store, 0, 21) == 42
    assert ex["apply"](store, 1, 12) == 144
    assert ex["direct"](store, 9) == 81


def test_call_ref_of_null_traps(store):
    ex = instance(store, CALLS)
    with pytest.raises(Trap, match="null"):
        ex["apply"](store, 2, 1)  # the table's third entry is null


def test_ref_as_non_null(store):
    ex = instance(
        store,
        """(module
          (type $f (func (result i32)))
          (func $one (type $f) (i32.const 1))
          (elem declare func $one)
          (func (export "ok") (result i32) (call_ref $f (ref.as_non_null (ref.func $one))))
          (func (export "null") (result i32) (call_ref $f (ref.as_non_null (ref.null $f)))))""",
    )
    assert ex["ok"](store) == 1
    with pytest.raises(Trap, match="null reference"):
        ex["null"](store)


def test_return_call_ref_100000_times_in_constant_stack(store):
    ex = instance(
        store,
        """(module
          (type $loop (func (param i64 i64) (result i64)))
          (global $self (mut (ref null $loop)) (ref.null $loop))
          (elem declare func $count)
          (func $count (type $loop)
            (if (result i64) (i64.eqz (local.get 0))
              (then (local.get 1))
              (else (return_call_ref $loop (i64.sub (local.get 0) (i64.const 1))
                                           (i64.add (local.get 1) (local.get 0))
                                           (global.get $self)))))
          (func (export "run") (param i64) (result i64)
            (global.set $self (ref.func $count))
            (return_call_ref $loop (local.get 0) (i64.const 0) (global.get $self))))""",
    )
    assert ex["run"](store, 100_000) == 100_000 * 100_001 // 2


def test_br_on_null_and_br_on_non_null(store):
    ex = instance(
        store,
        """(module
          (type $f (func (result i32)))
          (func $seven (type $f) (i32.const 7))
          (elem declare func $seven)
          (func $pick (param i32) (result (ref null $f))
            (select (result (ref null $f)) (ref.func $seven) (ref.null $f) (local.get 0)))
          (func (export "on_null") (param i32) (result i32)
            (block $null
              (return (call_ref $f (br_on_null $null (call $pick (local.get 0))))))
            (i32.const -1))
          (func (export "on_non_null") (param i32) (result i32)
            (block $some (result (ref $f))
              (br_on_non_null $some (call $pick (local.get 0)))
              (return (i32.const -2)))
            (call_ref $f)))""",
    )
    assert ex["on_null"](store, 1) == 7
    assert ex["on_null"](store, 0) == -1
    assert ex["on_non_null"](store, 1) == 7
    assert ex["on_non_null"](store, 0) == -2


def test_non_nullable_locals_need_a_set_before_a_get():
    assert "uninitialized local" in invalid(
        """(module (type $f (func)) (func (local (ref $f)) (drop (local.get 0))))"""
    )
    # A set inside a block initialises the local for the rest of that block only.
    assert "uninitialized local" in invalid(
        """(module (type $f (func)) (func $g) (elem declare func $g)
             (func (local (ref $f)) (block (local.set 0 (ref.func $g))) (drop (local.get 0))))"""
    )
    # Valid: set first; a nullable local needs nothing.
    Module(
        Engine(cache=False),
        """(module (type $f (func)) (func $g) (elem declare func $g)
             (func (local (ref $f)) (local (ref null $f))
               (local.set 0 (ref.func $g)) (block (drop (local.get 0))) (drop (local.get 1))))""",
    )


def test_validation_errors_use_the_reference_interpreters_words():
    assert "type mismatch" in invalid(
        """(module (type $f (func)) (func (param funcref) (call_ref $f (local.get 0))))"""
    )
    assert "type mismatch" in invalid("""(module (type $f (func)) (table 1 (ref $f)))""")
    data = Module(Engine(cache=False), "(module)")  # (the text parser refuses an unknown type index itself)
    del data
    with pytest.raises(InvalidError, match="unknown type 5"):
        # (func (local (ref null 5))): a local of an undefined type
        validate(decode_module(bytes.fromhex("0061736d01000000010401600000030201000a08010601016305000b")))


def test_tables_with_initialiser_expressions(store):
    ex = instance(
        store,
        """(module
          (type $f (func (result i32)))
          (func $nine (type $f) (i32.const 9))
          (table $t 4 (ref $f) (ref.func $nine))
          (func (export "call") (param i32) (result i32) (call_indirect $t (type $f) (local.get 0)))
          (func (export "call_ref") (param i32) (result i32) (call_ref $f (table.get $t (local.get 0)))))""",
    )
    assert [ex["call"](store, i) for i in range(4)] == [9, 9, 9, 9]
    assert ex["call_ref"](store, 3) == 9


def test_typed_global_imports_match_precisely(store):
    ex = instance(
        store,
        """(module
          (type $f (func))
          (func $g (type $f))
          (global (export "ref") (ref $f) (ref.func $g))
          (global (export "mut") (mut (ref null $f)) (ref.null $f)))""",
    )
    # An immutable (ref $f) matches (ref null func); a mutable global's type must be equal.
    instance(store, """(module (global (import "m" "g") (ref null func)))""", [ex["ref"]])
    with pytest.raises(WasmtimeError, match="incompatible import type"):
        instance(store, """(module (global (import "m" "g") (mut funcref)))""", [ex["mut"]])
    instance(store, """(module (type $f (func)) (global (import "m" "g") (mut (ref null $f))))""", [ex["mut"]])


def test_typed_modules_from_the_code_cache_and_metered(tmp_path):
    """A code-cache hit validates (and lowers) the module again without its bodies; metered code counts
    call_ref and the branches on null as wasmtime does, and runs them."""
    for _ in range(2):
        engine = Engine(cache=True, cache_dir=tmp_path)
        store = Store(engine)
        ex = instance(store, CALLS)
        assert ex["apply"](store, 1, 5) == 25
    assert engine.cache_hits == 1
    from hwsim import Config

    config = Config()
    config.consume_fuel = True
    store = Store(Engine(config, cache=False))
    store.set_fuel(10_000)
    ex = instance(store, CALLS)
    assert ex["apply"](store, 0, 4) == 8
    assert store.get_fuel() < 10_000


def test_deeply_nested_types_canonicalise_in_linear_time(store):
    """Each type refers twice to the one before: structural expansion would be 2**300 nodes."""
    types = ["(type $t0 (func))"] + [
        f"(type $t{i} (func (param (ref $t{i - 1}) (ref null $t{i - 1}))))" for i in range(1, 300)
    ]
    wat = "(module " + " ".join(types) + ' (global (export "g") (ref null $t299) (ref.null $t299)))'
    ex = instance(store, wat)
    # The same types in another module: the import matches, its types being equivalent.
    instance(store, "(module " + " ".join(types) + ' (global (import "m" "g") (ref null $t299)))', [ex["g"]])
    with pytest.raises(WasmtimeError, match="incompatible import type"):
        instance(store, "(module " + " ".join(types) + ' (global (import "m" "g") (ref null $t298)))', [ex["g"]])


def test_call_indirect_tells_typed_signatures_from_funcref_ones(store):
    ex = instance(
        store,
        """(module
          (type $f (func))
          (type $typed (func (param (ref null $f)) (result i32)))
          (type $plain (func (param funcref) (result i32)))
          (func $t (type $typed) (i32.const 1))
          (func $p (type $plain) (i32.const 2))
          (table 2 funcref) (elem (i32.const 0) $t $p)
          (func (export "plain") (param i32) (result i32)
            (call_indirect (type $plain) (ref.null func) (local.get 0))))""",
    )
    assert ex["plain"](store, 1) == 2
    with pytest.raises(Trap, match="indirect call type mismatch"):
        ex["plain"](store, 0)


def test_the_host_cannot_pass_null_for_a_non_nullable_parameter(store):
    ex = instance(
        store,
        """(module
          (type $f (func (result i32)))
          (func $one (type $f) (i32.const 1))
          (elem declare func $one)
          (func (export "get") (result (ref $f)) (ref.func $one))
          (func (export "call") (param (ref $f)) (result i32) (call_ref $f (local.get 0)))
          (func (export "maybe") (param (ref null $f)) (result i32)
            (if (result i32) (ref.is_null (local.get 0)) (then (i32.const -1)) (else (call_ref $f (local.get 0))))))""",
    )
    f = ex["get"](store)  # a (ref $f) result is a Func, as a funcref's
    assert ex["call"](store, f) == 1
    assert ex["maybe"](store, None) == -1
    with pytest.raises(TypeError, match="argument 0: None for a non-nullable reference parameter"):
        ex["call"](store, None)
