"""GC's front end: struct and array types, recursion groups and sub types decoded; every 0xfb instruction
and ref.eq decoded and validated; the heap-type hierarchy and canonical types across modules
(hwsim/wasm/subtyping.py); what runs (recursion groups of function types).  Objects run:
tests/test_gc_objects.py, tests/test_gc_v128.py."""

from __future__ import annotations

import subprocess

import pytest
from wasm_conftest_helpers import module, section, type_section

from hwsim import Engine, Instance, Module, Store, Trap
from hwsim.runtime.api import WasmtimeError
from hwsim.wasm import decode_module, validate
from hwsim.wasm import gcops as g
from hwsim.wasm.errors import InvalidError, MalformedError, UnsupportedFeatureError
from hwsim.wasm.subtyping import canonical_ids, matches
from hwsim.wasm.tools import locate_wasm_tools
from hwsim.wasm.types import (
    ANYREF,
    ARRAYREF,
    EQREF,
    EXTERNREF,
    FUNCREF,
    I8,
    I31REF,
    I32,
    NULLEXTERNREF,
    NULLFUNCREF,
    NULLREF,
    STRUCTREF,
    ArrayType,
    FieldType,
    FuncType,
    StructType,
    ref_as_non_null,
    ref_concrete,
    valtype_name,
)


def wasm(text: str) -> bytes:
    out = subprocess.run([locate_wasm_tools(), "parse", "-"], input=text.encode(), capture_output=True, check=True)
    return out.stdout


def invalid(text: str) -> str:
    with pytest.raises(InvalidError) as info:
        validate(decode_module(wasm(text)))
    return info.value.reason


def valid(text: str):
    """Decode and validate (no lowering error: the module's GC objects make it unsupported to run)."""
    m = decode_module(wasm(text))
    try:
        validate(m)
    except UnsupportedFeatureError as exc:
        assert "the compiler does not run GC code yet" in str(exc)
    return m


# Decoding ----------------------------------------------------------------------------------------


def test_type_section_with_rec_groups_sub_types_structs_and_arrays():
    m = decode_module(
        wasm(
            """(module
              (rec (type $a (sub (struct (field i32) (field (mut (ref null $b))))))
                   (type $b (sub $a (struct (field i32) (field (mut (ref null $b)))))))
              (type $c (array (mut i8)))
              (type $f (sub final (func (param anyref) (result i31ref)))))"""
        )
    )
    a = StructType((FieldType(I32, False), FieldType(ref_concrete(1, nullable=True), True)))
    assert m.types == [a, a, ArrayType(FieldType(I8, True)), FuncType((ANYREF,), (I31REF,))]
    assert m.rec_groups == [(0, 2), (2, 1), (3, 1)]
    assert m.supertypes == [(), (0,), (), ()]
    assert m.finals == [False, False, True, True]
    assert m.gc
    assert str(m.types[2]) == "(array (mut i8))"


def test_every_gc_instruction_decodes_with_its_immediates():
    m = decode_module(
        wasm(
            """(module (type $s (struct (field (mut i32)))) (type $a (array (mut i32)))
              (data $d "") (elem $e arrayref)
              (func (param anyref externref) (result anyref)
                (drop (struct.new $s (i32.const 1)))
                (drop (struct.get $s 0 (struct.new_default $s)))
                (drop (array.new_fixed $a 2 (i32.const 1) (i32.const 2)))
                (drop (array.new_data $a $d (i32.const 0) (i32.const 0)))
                (drop (ref.test (ref null $s) (local.get 0)))
                (drop (ref.cast (ref i31) (local.get 0)))
                (drop (block (result anyref) (br_on_cast 0 anyref (ref $s) (local.get 0))))
                (drop (any.convert_extern (local.get 1)))
                (ref.i31 (i32.const 7))))"""
        )
    )
    body = [(code, imm) for code, imm, _ in m.funcs[0].body]
    assert (g.STRUCT_NEW, 0) in body and (g.STRUCT_GET, (0, 0)) in body
    assert (g.ARRAY_NEW_FIXED, (1, 2)) in body and (g.ARRAY_NEW_DATA, (1, 0)) in body
    assert (g.REF_TEST_NULL, ref_concrete(0, nullable=True)) in body
    assert (g.REF_CAST, ref_as_non_null(I31REF)) in body
    assert (g.BR_ON_CAST, (0, ANYREF, ref_concrete(0, nullable=False))) in body
    assert (g.ANY_CONVERT_EXTERN, None) in body and (g.REF_I31, None) in body


@pytest.mark.parametrize(
    "payload, reason",
    [
        (b"\x01\x5e\x78\x02", "malformed mutability 0x02"),
        (b"\x01\x5c\x00", "malformed definition type 0x5c"),
    ],
)
def test_malformed_types(payload, reason):
    with pytest.raises(MalformedError) as info:
        decode_module(module(section(1, payload)))
    assert info.value.reason.startswith(reason)


def test_malformed_gc_instructions():
    func = type_section(b"\x60\x00\x00") + section(3, b"\x01\x00")

    def code(instrs: bytes) -> bytes:
        body = b"\x00" + instrs
        return module(func + section(10, b"\x01" + bytes([len(body)]) + body))

    with pytest.raises(MalformedError) as info:
        decode_module(code(b"\xfb\x7f\x0b"))
    assert info.value.reason == "illegal opcode fb 7f"
    with pytest.raises(MalformedError) as info:  # br_on_cast flags beyond the two nullability bits
        decode_module(code(b"\x02\x40\xd0\x6e\xfb\x18\x04\x00\x6e\x6e\x1a\x0b\x0b"))
    assert info.value.reason == "malformed br_on_cast flags 0x04"
    with pytest.raises(MalformedError):  # a rec group whose count runs past the end: no hang
        decode_module(module(section(1, b"\x01\x4e\xff\xff\xff\xff\x0f")))


# Validation --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, reason",
    [
        ("(module (type $t (func)) (type (sub $t (func))))", "sub type 1 has a final supertype 0"),
        ("(module (type $t (sub (struct))) (type (sub $t (array i32))))", "sub type 1 ((array i32)) does not match"),
        (
            "(module (type $t (sub (struct (field (mut i32))))) (type (sub $t (struct (field i32)))))",
            "sub type 1",
        ),
        ("(module (rec (type (sub 1 (struct))) (type (sub (struct)))))", "unknown type 1 (supertype of type 0"),
        ("(module (type (struct (field (ref 1)))))", "unknown type 1"),
        (
            "(module (type $s (struct (field i32))) (func (param (ref $s)) (struct.set $s 0 (local.get 0) (i32.const 1))))",
            "immutable field: field 0 of type 0",
        ),
        (
            "(module (type $a (array i8)) (func (param (ref $a)) (array.set $a (local.get 0) (i32.const 0) (i32.const 1))))",
            "immutable array",
        ),
        (
            "(module (type $a (array (mut i8))) (type $b (array (mut i16)))"
            " (func (param (ref $a) (ref $b)) (array.copy $a $b (local.get 0) (i32.const 0) (local.get 1)"
            " (i32.const 0) (i32.const 0))))",
            "array types do not match",
        ),
        (
            '(module (type $a (array anyref)) (data $d "")'
            " (func (drop (array.new_data $a $d (i32.const 0) (i32.const 0)))))",
            "array type is not numeric or vector",
        ),
        (
            "(module (type $s (struct (field i8))) (func (param (ref $s)) (result i32) (struct.get $s 0 (local.get 0))))",
            "type mismatch: field 0 of type 0 is packed",
        ),
        (
            "(module (type $s (struct (field i32))) (func (param (ref $s)) (result i32)"
            " (struct.get_u $s 0 (local.get 0))))",
            "type mismatch: field 0 of type 0 is not packed",
        ),
        ("(module (type $s (struct)) (func (drop (struct.get $s 0 (struct.new $s)))))", "unknown field 0"),
        (
            "(module (func (param funcref) (result i32) (ref.test (ref any) (local.get 0))))",
            "type mismatch: ref.test to (ref any) of an operand of type funcref",
        ),
        (
            "(module (func (param (ref any)) (result anyref) (block (result (ref any))"
            " (br_on_cast 0 (ref eq) (ref any) (local.get 0)))))",
            "type mismatch: br_on_cast casts to (ref any)",
        ),
        ("(module (func (result i32) (i31.get_s (ref.null any))))", "type mismatch"),
        ("(module (func (result i32) (ref.eq (ref.null func) (ref.null func))))", "type mismatch"),
        (
            "(module (type $s (struct (field (ref any)))) (func (drop (struct.new_default $s))))",
            "type mismatch: field 0 of type 0 is (ref any), which has no default",
        ),
        (
            "(module (type $s (struct (field i32))) (global (ref $s) (struct.get $s 0 (struct.new_default $s))))",
            "constant expression required",
        ),
        ("(module (type $s (struct)) (func (call_ref $s (ref.null $s))))", "type mismatch: type 0 is (struct)"),
    ],
)
def test_invalid_gc_modules(text, reason):
    assert invalid(text).startswith(reason)


def test_gc_constant_expressions_and_extern_conversions_validate():
    valid(
        """(module (type $s (struct (field i32) (field (mut anyref)))) (type $a (array i8))
          (global $g (ref $s) (struct.new $s (i32.const 1) (ref.i31 (i32.const 2))))
          (global (ref $a) (array.new_fixed $a 2 (i32.const 1) (i32.const 2)))
          (global externref (extern.convert_any (global.get $g)))
          (func (param externref) (result (ref null any)) (any.convert_extern (local.get 0))))"""
    )


# Subtyping and canonical types -------------------------------------------------------------------


def test_abstract_heap_type_hierarchy():
    canon = canonical_ids([])
    yes = [
        (I31REF, EQREF),
        (EQREF, ANYREF),
        (STRUCTREF, ANYREF),
        (ARRAYREF, EQREF),
        (NULLREF, I31REF),
        (NULLREF, ANYREF),
        (NULLFUNCREF, FUNCREF),
        (NULLEXTERNREF, EXTERNREF),
        (ref_as_non_null(NULLREF), ref_as_non_null(STRUCTREF)),
    ]
    no = [
        (ANYREF, EQREF),
        (I31REF, STRUCTREF),
        (NULLREF, FUNCREF),
        (EXTERNREF, ANYREF),
        (FUNCREF, ANYREF),
        (NULLFUNCREF, NULLREF),
        (ANYREF, ref_as_non_null(ANYREF)),
    ]
    for a, b in yes:
        assert matches(canon, a, b), (valtype_name(a), valtype_name(b))
    for a, b in no:
        assert not matches(canon, a, b), (valtype_name(a), valtype_name(b))


def test_concrete_types_match_their_kind_and_declared_supertypes():
    m = load_or_decode(
        """(module (type $a (sub (struct))) (type $b (sub $a (struct (field i32))))
          (type $c (sub $b (struct (field i32) (field i64)))) (type $arr (array i32)) (type $f (func)))"""
    )
    canon = canonical_ids(m.types, m.rec_groups, [s[0] if s else None for s in m.supertypes], m.finals)

    def r(i):
        return ref_concrete(i, nullable=False)

    assert matches(canon, r(2), r(0)) and matches(canon, r(2), r(1)) and not matches(canon, r(0), r(2))
    assert matches(canon, r(2), STRUCTREF) and matches(canon, r(2), EQREF) and not matches(canon, r(2), ARRAYREF)
    assert matches(canon, r(3), ARRAYREF) and matches(canon, r(4), FUNCREF) and not matches(canon, r(4), ANYREF)
    assert matches(canon, NULLREF, ref_concrete(0, nullable=True)) and not matches(canon, NULLFUNCREF, r(0))


def load_or_decode(text: str):
    """Decoded, its types as declared (validation would lower them for the compiler)."""
    return decode_module(wasm(text))


def test_recursion_groups_are_canonical_across_modules():
    def ids(text):
        m = decode_module(wasm(text))
        sups = [s[0] if s else None for s in m.supertypes] if m.supertypes else None
        return canonical_ids(m.types, m.rec_groups, sups, m.finals).ids

    group = "(rec (type $x (struct (field (ref null $y)))) (type $y (struct (field (ref null $x)))))"
    first = ids(f"(module {group})")
    assert ids(f"(module (type (func)) {group})")[1:] == first  # same group, other module, other indices
    assert first[0] != first[1]  # positions in a group are distinct types
    swapped = ids("(module (rec (type $y (struct (field (ref null $x)))) (type $x (struct (field (ref null $y))))))")
    assert swapped == first  # the same group written with other names
    assert ids("(module (type (func)))") != ids("(module (type (sub (func))))")  # final or not: two types
    assert ids("(module (type (func)))") == ids("(module (type (sub final (func))))")


# Running and refusing ----------------------------------------------------------------------------


def test_function_types_of_distinct_recursion_groups_are_distinct_at_run_time():
    store = Store(Engine(cache=False))
    text = """(module
      (rec (type $f1 (func)) (type (struct)))
      (rec (type $f2 (func)) (type (array i8)))
      (type $plain (func))
      (table funcref (elem $a $b $c))
      (func $a (type $f1)) (func $b (type $f2)) (func $c (type $plain))
      (func (export "call1") (param i32) (call_indirect (type $f1) (local.get 0)))
      (func (export "call_plain") (param i32) (call_indirect (type $plain) (local.get 0))))"""
    Module(store.engine, text)  # (the groups' struct and array types compile too)
    text = text.replace("(type (struct))", "(type (func (param i32)))").replace("(array i8)", "(func (param i64))")
    exports = dict(Instance(store, Module(store.engine, text), []).exports(store).items())
    exports["call1"](store, 0)
    exports["call_plain"](store, 2)
    for bad, fn in ((1, "call1"), (2, "call1"), (0, "call_plain"), (1, "call_plain")):
        with pytest.raises(Trap) as info:
            exports[fn](store, bad)
        assert "indirect call type mismatch" in str(info.value)


def test_function_imports_compare_canonical_types():
    store = Store(Engine(cache=False))
    exporter = Instance(
        store, Module(store.engine, '(module (rec (type (func)) (type (func))) (func (export "f") (type 0)))'), []
    )
    f = exporter.exports(store)["f"]
    same = '(module (rec (type $t (func)) (type (func))) (import "m" "f" (func (type $t))))'
    Instance(store, Module(store.engine, same), [f])
    for other in (
        '(module (rec (type (func)) (type $t (func))) (import "m" "f" (func (type $t))))',
        '(module (type $t (func)) (import "m" "f" (func (type $t))))',
    ):
        with pytest.raises(WasmtimeError) as info:
            Instance(store, Module(store.engine, other), [f])
        assert "incompatible import type" in str(info.value)


# Attacks ----------------------------------------------------------------------------------------


def test_a_supertype_chain_deeper_than_the_limit_is_rejected():
    def chain(n: int) -> str:
        types = "(type $t0 (sub (struct)))" + "".join(f"(type $t{i} (sub $t{i - 1} (struct)))" for i in range(1, n))
        return f"(module {types})"

    valid(chain(64))  # depth 63: the deepest allowed
    assert invalid(chain(65)).startswith(
        "sub type hierarchy too deep: type 64 is 64 supertypes down (implementation limit 63, wasmparser's)"
    )


def test_a_type_cannot_be_its_own_supertype():
    assert invalid("(module (rec (type $t (sub $t (struct)))))").startswith("unknown type 0 (supertype of type 0")


def test_a_large_mutually_recursive_group_canonicalises_in_one_pass():
    n = 2000
    group = "".join(f"(type $t{i} (struct (field (ref null $t{(i + 1) % n}))))" for i in range(n))
    m = valid(f"(module (rec {group}))")
    ids = canonical_ids(m.types, m.rec_groups, None, m.finals).ids
    assert len(set(ids)) == n  # every position its own type
    again = canonical_ids(m.types, m.rec_groups, None, m.finals).ids
    assert again == ids  # the same group interned once


def test_the_host_cannot_forge_an_i31_or_an_object_through_an_externref():
    store = Store(Engine(cache=False))
    text = """(module (func (export "kind") (param externref) (result i32 i32 i32)
        (ref.test (ref i31) (any.convert_extern (local.get 0)))
        (ref.test (ref eq) (any.convert_extern (local.get 0)))
        (ref.test (ref any) (any.convert_extern (local.get 0)))))"""
    kind = Instance(store, Module(store.engine, text), []).exports(store)["kind"]
    for forged in (1, 3, 8, 16, 2**31 + 1, object()):
        assert kind(store, forged) == [0, 0, 1]  # a host value: any, never an i31 or an object


def test_call_indirect_and_imports_accept_function_subtypes():
    store = Store(Engine(cache=False))
    text = """(module
      (type $t (sub (func (result anyref))))
      (type $s (sub $t (func (result eqref))))
      (type $u (sub (func (result structref))))
      (table funcref (elem $f $g))
      (func $f (export "f") (type $s) (ref.i31 (i32.const 1)))
      (func $g (type $u) (ref.null none))
      (func (export "call") (param i32) (result i32)
        (ref.is_null (call_indirect (type $t) (local.get 0)))))"""
    inst = Instance(store, Module(store.engine, text), [])
    e = dict(inst.exports(store).items())
    assert e["call"](store, 0) == 0  # $s <: $t: accepted; $u declares no supertype, so it is not one
    for bad, code in ((1, "indirect call type mismatch"), (2, "undefined element")):
        with pytest.raises(Trap) as info:
            e["call"](store, bad)
        assert code in str(info.value)
    importer = """(module (type $t (sub (func (result anyref)))) (type $s (sub $t (func (result eqref))))
      (import "m" "f" (func (type $t))))"""
    Instance(store, Module(store.engine, importer), [e["f"]])  # a subtype where $t is expected
    narrower = """(module (type $t (sub (func (result anyref)))) (type $s (sub $t (func (result i31ref))))
      (import "m" "f" (func (type $s))))"""
    with pytest.raises(WasmtimeError) as info:
        Instance(store, Module(store.engine, narrower), [e["f"]])
    assert "incompatible import type" in str(info.value)
