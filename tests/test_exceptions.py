"""Exception handling (WebAssembly 3.0): throw, throw_ref, try_table and exnref on hwsim's engine.

Through the public API: across functions, instances and host functions, every payload type, the
callee-saved registers of the frames unwound, an uncaught exception at the host, traps never caught,
deep recursion and a long loop of throws.  docs/exceptions.md describes the design.
"""

from __future__ import annotations

import struct

import pytest

from hwsim import (
    Engine,
    Func,
    FuncType,
    Instance,
    Linker,
    Module,
    Store,
    Tag,
    TagType,
    Trap,
    TrapCode,
    Val,
    ValType,
    WasmException,
)
from hwsim.compiler import compile_module
from hwsim.wasm import load_module, validate
from hwsim.wasm.errors import InvalidError

I32, I64 = ValType.i32(), ValType.i64()


@pytest.fixture
def store():
    return Store(Engine(cache=False))  # (compiled afresh: a test of the compiler, not of the cache)


def instance(store, wat: str, imports=()) -> dict:
    inst = Instance(store, Module(store.engine, wat), list(imports))
    return dict(inst.exports(store).items())


def test_throw_and_catch_across_functions(store):
    ex = instance(
        store,
        """(module
          (tag $e (param i32))
          (tag $other (param i32))
          (func $inner (param i32) (if (local.get 0) (then (local.get 0) (throw $e))))
          (func $middle (param i32) (call $inner (local.get 0)))
          (func (export "f") (param i32) (result i32)
            (block $c (result i32)
              (try_table (catch $other 1) (catch $e $c)
                (call $middle (local.get 0)))
              (i32.const -1))
            (i32.const 100) (i32.add)))""",
    )
    assert ex["f"](store, 5) == 105
    assert ex["f"](store, 0) == 99  # nothing thrown: the block's own result


def test_catch_clauses_in_order_and_nested_try_tables(store):
    ex = instance(
        store,
        """(module
          (tag $a (param i32)) (tag $b (param i32))
          (func $t (param i32) (if (i32.eq (local.get 0) (i32.const 1)) (then (throw $a (i32.const 10))))
                               (if (i32.eq (local.get 0) (i32.const 2)) (then (throw $b (i32.const 20))))
                               (if (i32.eq (local.get 0) (i32.const 3)) (then (unreachable))))
          (func (export "f") (param i32) (result i32)
            (block $outer (result i32)
              (block $ca (result i32)
                (try_table (catch $b $outer)
                  (try_table (catch $a $ca) (call $t (local.get 0))))
                (return (i32.const 0)))
              (i32.const 1000) (i32.add)))
          (func (export "all") (param i32) (result i32)
            (block $any (try_table (catch_all $any) (call $t (local.get 0))) (return (i32.const 0)))
            (i32.const 1)))""",
    )
    assert ex["f"](store, 1) == 1010  # the inner try_table catches $a
    assert ex["f"](store, 2) == 20  # $b passes the inner one
    assert ex["f"](store, 0) == 0
    assert ex["all"](store, 2) == 1
    with pytest.raises(Trap) as info:  # a trap is never caught, not even by catch_all
        ex["all"](store, 3)
    assert info.value.trap_code is TrapCode.UNREACHABLE


def test_catch_ref_and_throw_ref_rethrow_the_same_exception(store):
    ex = instance(
        store,
        """(module
          (tag $e (export "e") (param i32))
          (func $t (param i32) (throw $e (local.get 0)))
          (func $rethrow (param i32) (result i32)
            (block $h (result i32 exnref)
              (try_table (catch_ref $e $h) (call $t (local.get 0)))
              (unreachable))
            (throw_ref))
          (func (export "f") (param i32) (result i32)
            (block $c (result i32)
              (try_table (catch $e $c) (drop (call $rethrow (local.get 0))))
              (i32.const -1)))
          (func (export "keep") (param i32) (result exnref)
            (block $h (result exnref)
              (try_table (catch_all_ref $h) (call $t (local.get 0)))
              (ref.null exn)))
          (func (export "again") (param exnref) (throw_ref (local.get 0)))
          (func (export "is_null") (param exnref) (result i32) (ref.is_null (local.get 0))))""",
    )
    assert ex["f"](store, 7) == 7
    exn = ex["keep"](store, 3)
    assert exn is not None and ex["is_null"](store, exn) == 0 and ex["is_null"](store, None) == 1
    with pytest.raises(WasmException) as info:  # the host hands the exnref back; wasm throws it again
        ex["again"](store, exn)
    assert info.value.values(store) == [3] and info.value.tag == ex["e"]
    with pytest.raises(Trap) as null:
        ex["again"](store, None)
    assert null.value.trap_code is TrapCode.NULL_EXCEPTION_REFERENCE


def test_payload_of_every_type(store):
    """i32, i64, f32, f64, v128, funcref, externref and exnref, in registers and (many of them) in the
    ABI area, caught in wasm and seen by the host."""
    types = "i32 i64 f32 f64 v128 funcref externref exnref"
    many = " ".join(["i64"] * 12 + ["f64"] * 12)
    ex = instance(
        store,
        f"""(module
          (tag $t (export "t") (param {types}))
          (tag $m (export "m") (param {many}))
          (func $id (export "id") (param i32) (result i32) (local.get 0))
          (elem declare func $id)
          (func (export "throw") (param externref exnref)
            (throw $t (i32.const -7) (i64.const 0x123456789abcdef0) (f32.const 1.5) (f64.const -2.25)
                      (v128.const i64x2 0x0102030405060708 0x1112131415161718) (ref.func $id)
                      (local.get 0) (local.get 1)))
          (func (export "catch_v128") (param externref) (result v128) (local $v v128)
            (block $c (result i32 i64 f32 f64 v128 funcref externref exnref)
              (try_table (catch $t $c) (throw $t (i32.const 1) (i64.const 2) (f32.const 3) (f64.const 4)
                         (v128.const i32x4 5 6 7 8) (ref.null func) (local.get 0) (ref.null exn)))
              (unreachable))
            (drop) (drop) (drop) (local.set $v) (drop) (drop) (drop) (drop) (local.get $v))
          (func (export "catch_many") (result i64 f64)
            (local $i i64) (local $f f64)
            (block $c (result {many})
              (try_table (catch $m $c)
                {" ".join(f"(i64.const {i})" for i in range(12))}
                {" ".join(f"(f64.const {i}.5)" for i in range(12))}
                (throw $m))
              (unreachable))
            (local.set $f) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
            (local.set $i) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)
            (local.get $i) (local.get $f)))""",
    )
    assert ex["catch_v128"](store, "x") == 5 | 6 << 32 | 7 << 64 | 8 << 96
    assert ex["catch_many"](store) == [11, 11.5]
    with pytest.raises(WasmException) as first:
        ex["throw"](store, None, None)
    held = ex["throw"]
    obj = object()
    with pytest.raises(WasmException) as info:
        held(store, obj, Val(ValType.exnref(), ref=first.value.exn))
    values = info.value.values(store)
    assert values[:5] == [-7, 0x123456789ABCDEF0, 1.5, -2.25, 0x1112131415161718_0102030405060708]
    assert isinstance(values[5], Func) and values[5](store, 42) == 42
    assert values[6] is obj and values[7] is first.value.exn


def test_across_instances_and_imported_tags(store):
    engine = store.engine
    a = Instance(
        store,
        Module(
            engine,
            '(module (tag $e (export "e") (param i32)) (func (export "t") (param i32) (throw $e (local.get 0))))',
        ),
        [],
    )
    e, t = a.exports(store)["e"], a.exports(store)["t"]
    b = Instance(
        store,
        Module(
            engine,
            """(module
              (import "a" "e" (tag $e (param i32)))
              (import "a" "t" (func $t (param i32)))
              (tag $mine (param i32))
              (func (export "f") (param i32) (result i32)
                (block $c (result i32) (try_table (catch $e $c) (call $t (local.get 0))) (i32.const -1)))
              (func (export "g") (param i32) (result i32)
                (block $c (result i32) (try_table (catch $mine $c) (call $t (local.get 0))) (i32.const -1)))
              (func (export "tail") (param i32) (return_call $t (local.get 0))))""",
        ),
        [e, t],
    )
    ex = b.exports(store)
    assert ex["f"](store, 3) == 3  # thrown in instance a, caught in b by the imported tag
    with pytest.raises(WasmException) as info:
        ex["g"](store, 4)  # another tag of the same type does not match
    assert info.value.tag == e and info.value.values(store) == [4]
    c = Instance(
        store,
        Module(
            engine,
            """(module (import "b" "tail" (func $tail (param i32))) (import "a" "e" (tag $e (param i32)))
              (func (export "f") (param i32) (result i32)
                (block $c (result i32) (try_table (catch $e $c) (call $tail (local.get 0))) (i32.const -1))))""",
        ),
        [ex["tail"], e],
    )
    assert c.exports(store)["f"](store, 9) == 9  # through a cross-instance tail call's frame
    assert e.type(store) == TagType(FuncType([I32], []))


def test_two_instances_of_a_module_have_different_tags(store):
    wat = '(module (tag $e (export "e")) (func (export "t") (throw $e)))'
    one, two = instance(store, wat), instance(store, wat)
    assert one["e"] != two["e"] and one["e"] == one["e"]
    with pytest.raises(WasmException) as info:
        one["t"](store)
    assert info.value.tag == one["e"] and info.value.tag != two["e"]


def test_host_function_in_between(store):
    """An exception passes through a host function (which sees it), a host function throws one, and a host
    function that catches one goes on as if nothing happened."""
    engine = store.engine
    host_tag = Tag(store, TagType(FuncType([I64], [])))
    seen = []
    calls = {}

    def cb(x):
        if x == 1:
            try:
                calls["throw"](store, 41)
            except WasmException as exc:
                seen.append(exc.values(store))
                raise
        if x == 2:
            raise WasmException(store, host_tag, [-77])
        if x == 3:
            try:
                calls["throw"](store, 5)
            except WasmException:
                return 333
        if x == 4:
            raise Trap("host says no")
        if x == 5:
            try:
                calls["trap"](store)
            except Trap:
                return 555  # a trap in a nested call, caught by the host: the outer wasm goes on
        return 0

    linker = Linker(engine)
    linker.define_func("host", "cb", FuncType([I32], [I32]), cb)
    linker.define(store, "host", "tag", host_tag)
    module = Module(
        engine,
        """(module
          (import "host" "cb" (func $cb (param i32) (result i32)))
          (import "host" "tag" (tag $h (param i64)))
          (tag $e (param i32))
          (func (export "throw") (param i32) (throw $e (local.get 0)))
          (func (export "trap") (unreachable))
          (func (export "f") (param i32) (result i64)
            (local $keep i64) (local.set $keep (i64.const 1000))
            (block $all
              (block $c (result i32)
                (block $ch (result i64)
                  (try_table (catch $e $c) (catch $h $ch) (catch_all $all)
                    (return (i64.extend_i32_s (call $cb (local.get 0)))))
                  (unreachable))
                (local.get $keep) (i64.add) (return))
              (i64.extend_i32_s) (local.get $keep) (i64.add) (return))
            (i64.const -1)))""",
    )
    ex = linker.instantiate(store, module).exports(store)
    calls["throw"], calls["trap"] = ex["throw"], ex["trap"]
    assert ex["f"](store, 5) == 555
    assert ex["f"](store, 1) == 1041 and seen == [[41]]  # the host saw it pass
    assert ex["f"](store, 2) == 923  # thrown by the host, caught by its tag
    assert ex["f"](store, 3) == 333  # caught by the host: wasm never knows
    with pytest.raises(Trap) as info:  # a host trap is not an exception: catch_all does not catch it
        ex["f"](store, 4)
    assert not isinstance(info.value, WasmException) and "host says no" in str(info.value)
    assert ex["f"](store, 0) == 0


def test_uncaught_at_the_host_is_a_trap_with_a_backtrace(store):
    ex = instance(
        store,
        """(module (tag $e (export "e") (param i32))
          (func $t (export "t") (param i32) (throw $e (local.get 0)))
          (func (export "f") (param i32) (call $t (local.get 0))))""",
    )
    with pytest.raises(WasmException) as info:
        ex["f"](store, 12)
    exc = info.value
    assert isinstance(exc, Trap) and exc.trap_code is TrapCode.UNCAUGHT_EXCEPTION
    assert exc.values(store) == [12] and exc.tag == ex["e"]
    assert [f.func_index for f in exc.frames] == [0, 1]  # thrown in $t, called by f
    assert "wasm trap: thrown Wasm exception" in str(exc)


def _unwinding_module(n: int, *, guard: bool = False) -> str:
    """Three functions with ``n`` i64 locals each (set from the parameter: local i = p + i): ``f`` calls
    ``$catcher`` with 1000p, which catches what ``$clobber`` throws six calls down (the sum of the thrower's
    locals, at parameter 0, or at 1 when ``guard``: then ``$clobber`` opens with a guard on its parameter
    that returns before its prologue saves anything); each frame adds the sum of its own locals."""
    locals_ = " ".join(f"(local $l{i} i64)" for i in range(n))
    sets = " ".join(f"(local.set $l{i} (i64.add (local.get 0) (i64.const {i})))" for i in range(n))
    total = "(local.get $l0) " + " ".join(f"(local.get $l{i}) (i64.add)" for i in range(1, n))
    opening = "(br_if 0 (i64.eqz (local.get 0)))" if guard else ""
    throw_at = 1 if guard else 0
    return f"""(module
          (tag $e (param i64))
          (func $clobber (param i64) {locals_} {opening} {sets}
            (if (i64.eq (local.get 0) (i64.const {throw_at})) (then (throw $e {total})))
            (call $clobber (i64.sub (local.get 0) (i64.const 1))))
          (func $catcher (param i64) (result i64) {locals_} {sets}
            (block $c (result i64)
              (try_table (catch $e $c) (call $clobber (i64.const 6))) (i64.const 0))
            {total} (i64.add))
          (func (export "f") (param i64) (result i64) {locals_} {sets}
            (call $catcher (i64.mul (local.get 0) (i64.const 1000))) {total} (i64.add)))"""


def test_callee_saved_registers_of_unwound_frames(store):
    """Locals live in callee-saved registers: the frames unwound clobber them, the handler's frame and its
    caller must see theirs again."""
    ex = instance(store, _unwinding_module(8))
    thrown = 8 * 0 + 28
    catcher = 8 * 7000 + 28
    outer = 8 * 7 + 28
    assert ex["f"](store, 7) == thrown + catcher + outer


def test_float_callee_saved_registers_and_a_start_function(store):
    flocals = " ".join(f"(local $f{i} f64)" for i in range(6))
    fsets = " ".join(f"(local.set $f{i} (f64.add (local.get 0) (f64.const {i}.5)))" for i in range(6))
    ftotal = "(local.get $f0) " + " ".join(f"(local.get $f{i}) (f64.add)" for i in range(1, 6))
    ex = instance(
        store,
        f"""(module (tag $e)
          (func $clobber (param f64) {flocals} {fsets} (if (f64.lt (local.get 0) (f64.const 1)) (then (throw $e)))
            (call $clobber (f64.sub (local.get 0) (f64.const 1))))
          (func (export "f") (param f64) (result f64) {flocals} {fsets}
            (block $c (try_table (catch $e $c) (call $clobber (f64.const 3)))) {ftotal}))""",
    )
    assert ex["f"](store, 10.0) == 6 * 10.0 + 0.5 + 1.5 + 2.5 + 3.5 + 4.5 + 5.5
    with pytest.raises(WasmException) as info:
        Instance(
            store, Module(store.engine, "(module (tag $e (param i32)) (func (throw $e (i32.const 3))) (start 0))"), []
        )
    assert info.value.values(store) == [3]


def test_deep_recursion_unwinds_every_frame(store):
    ex = instance(
        store,
        """(module (tag $e (param i32))
          (func $down (param i32) (result i32)
            (if (i32.eqz (local.get 0)) (then (throw $e (i32.const 77))))
            (i32.add (call $down (i32.sub (local.get 0) (i32.const 1))) (i32.const 1)))
          (func (export "f") (param i32) (result i32)
            (block $c (result i32) (try_table (catch $e $c) (drop (call $down (local.get 0)))) (i32.const -1))))""",
    )
    assert ex["f"](store, 20_000) == 77
    assert ex["f"](store, 3) == 77


def test_a_loop_of_10000_throws_leaks_neither_stack_nor_memory(store):
    ex = instance(
        store,
        """(module (tag $e (param i32))
          (global $sp (mut i32) (i32.const 0))
          (func $t (param i32) (throw $e (local.get 0)))
          (func (export "f") (param i32) (result i32) (local $sum i32)
            (loop $next
              (block $c (result i32) (try_table (catch $e $c) (call $t (local.get 0))) (i32.const 0))
              (local.get $sum) (i32.add) (local.set $sum)
              (br_if $next (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
            (local.get $sum)))""",
    )
    runtime = store._store
    before = (len(runtime.exns), runtime.data_next)
    assert ex["f"](store, 10_000) == 10_000 * 10_001 // 2
    assert (len(runtime.exns), runtime.data_next) == before  # no exnref made, nothing allocated
    assert ex["f"](store, 10_000) == 10_000 * 10_001 // 2  # and the stack is where it was: it runs again


def test_code_without_exceptions_is_unchanged_and_cached_regions_survive(tmp_path):
    """The try_table regions go through the code cache's format."""
    from hwsim.compiler import serialize
    from hwsim.runtime.api import wat2wasm

    wasm = bytes(
        wat2wasm(
            """(module (tag $e) (func (export "f") (result i32)
              (block $c (try_table (catch $e $c) (catch_all $c) (throw $e))) (i32.const 1)))"""
        )
    )
    module = load_module(wasm)
    compiled = compile_module(module)
    assert len(compiled.handlers) == 1 and [k for k, _, _ in compiled.handlers[0][2]] == [0, 2]
    again = serialize.decode(serialize.encode(compiled), module)
    assert again.handlers == compiled.handlers
    plain = compile_module(load_module(bytes(wat2wasm('(module (func (export "f") (result i32) (i32.const 1)))'))))
    assert plain.handlers == []


@pytest.mark.parametrize(
    ("wat", "reason"),
    [
        ("(module (tag (param i32)) (func (throw 0)))", "type mismatch: instruction requires [i32] but stack has []"),
        ("(module (func (throw 0)))", "unknown tag 0"),
        ("(module (func (param i32) (throw_ref (local.get 0))))", "type mismatch"),
        ("(module (tag $e (param i32)) (func (block (try_table (catch $e 0)))))", "type mismatch: catch to label 0"),
        ("(module (func (block (result i32) (try_table (catch_all_ref 0)) (unreachable))))", "type mismatch"),
    ],
)
def test_validation(wat, reason):
    from hwsim.runtime.api import wat2wasm
    from hwsim.wasm import decode_module

    module = decode_module(bytes(wat2wasm(wat)))
    with pytest.raises(InvalidError) as info:
        validate(module)
    assert info.value.reason.startswith(reason)


def test_tag_with_results_is_invalid():
    from hwsim.wasm import decode_module

    # (type (func (result i32))) (tag (type 0)): built by hand, the text parser refuses it
    data = b"\0asm\1\0\0\0" + bytes([1, 5, 1, 0x60, 0, 1, 0x7F]) + bytes([13, 3, 1, 0, 0])
    with pytest.raises(InvalidError, match="non-empty tag result type"):
        validate(decode_module(data))


def test_f32_payload_bits_are_exact(store):
    ex = instance(
        store,
        """(module (tag $e (export "e") (param f32)) (func (export "t") (param f32) (throw $e (local.get 0))))""",
    )
    nan = struct.unpack("<f", struct.pack("<I", 0x7FC0_0001))[0]
    with pytest.raises(WasmException) as info:
        ex["t"](store, Val.f32_bits(0x7FC0_0001))
    (value,) = info.value.values(store)
    assert struct.pack("<f", value) == struct.pack("<f", nan)


def test_config_has_exceptions_always_on():
    from hwsim import Config

    assert Config().wasm_exceptions is True


def test_fuel_matches_wasmtime_through_throws_and_catches():
    """throw and throw_ref end straight-line code (the cost before them is counted on their path only)."""
    wasmtime = pytest.importorskip("wasmtime")
    from hwsim import Config

    wat = """(module (tag $e (param i32))
      (func $t (param i32) (if (local.get 0) (then (throw $e (local.get 0)))))
      (func (export "f") (param i32) (result i32)
        (block $c (result i32) (try_table (catch $e $c) (call $t (local.get 0))) (i32.const 5))
        (i32.const 1) (i32.add))
      (func (export "g") (param i32) (result i32) (local $x exnref)
        (block $c (result i32 exnref) (try_table (catch_ref $e $c) (call $t (local.get 0))) (unreachable))
        (local.set $x) (drop)
        (block $d (result i32) (try_table (catch $e $d) (throw_ref (local.get $x))) (unreachable))))"""
    config = wasmtime.Config()
    config.consume_fuel = True
    config.wasm_exceptions = True
    wt_engine = wasmtime.Engine(config)
    wt_store = wasmtime.Store(wt_engine)
    wt = wasmtime.Instance(wt_store, wasmtime.Module(wt_engine, wat), []).exports(wt_store)
    ours = Config()
    ours.consume_fuel = True
    store = Store(Engine(ours, cache=False))
    ex = Instance(store, Module(store.engine, wat), []).exports(store)
    for name, arg in (("f", 0), ("f", 3), ("g", 4)):
        wt_store.set_fuel(10_000)
        store.set_fuel(10_000)
        assert ex[name](store, arg) == wt[name](wt_store, arg)
        assert store.get_fuel() == wt_store.get_fuel(), (name, arg)


def test_store_gc_forgets_exceptions_no_global_or_table_holds(store):
    ex = instance(
        store,
        """(module (tag $e (param i32))
          (global $kept (mut exnref) (ref.null exn))
          (func $t (param i32) (throw $e (local.get 0)))
          (func (export "f") (param i32) (result i32) (local $sum i32)
            (loop $next
              (block $c (result i32 exnref) (try_table (catch_ref $e $c) (call $t (local.get 0))) (unreachable))
              (global.set $kept) (local.get $sum) (i32.add) (local.set $sum)
              (br_if $next (local.tee 0 (i32.sub (local.get 0) (i32.const 1)))))
            (local.get $sum))
          (func (export "rethrow") (result i32)
            (block $c (result i32) (try_table (catch $e $c) (throw_ref (global.get $kept))) (i32.const -1))))""",
    )
    runtime = store._store
    assert ex["f"](store, 10_000) == 10_000 * 10_001 // 2
    assert len(runtime.exns) == 10_000  # one exnref per catch_ref
    store.gc()
    assert len(runtime.exns) == 1  # the one in $kept
    assert ex["rethrow"](store) == 1


def test_a_function_whose_only_call_site_is_a_try_table(store):
    """No call inside, so without its landing pads the function would keep its locals in argument
    registers, where a pad takes the caught values (found by hwsim fuzz --exceptions, seed 2430)."""
    ex = instance(
        store,
        """(module (tag $e (param i32))
          (func (export "leaf") (param i32 i32) (result i32)
            (block $c (result i32) (try_table (result i32) (catch $e $c) (i32.add (local.get 0) (local.get 1))))))""",
    )
    assert ex["leaf"](store, 2, 3) == 5


def test_through_two_host_frames_and_a_trap_through_one(store):
    """wasm -> host -> wasm -> host -> wasm throws: the outermost wasm catches it; a trap on the same
    path reaches the host uncaught."""
    engine = store.engine
    calls = {}

    def outer_host(x):
        return calls["middle"](store, x)

    def inner_host(x):
        return calls["deepest"](store, x)

    linker = Linker(engine)
    linker.define_func("h", "outer", FuncType([I32], [I32]), outer_host)
    linker.define_func("h", "inner", FuncType([I32], [I32]), inner_host)
    module = Module(
        engine,
        """(module
          (import "h" "outer" (func $outer (param i32) (result i32)))
          (import "h" "inner" (func $inner (param i32) (result i32)))
          (tag $e (param i32))
          (func (export "middle") (param i32) (result i32) (i32.add (call $inner (local.get 0)) (i32.const 1)))
          (func (export "deepest") (param i32) (result i32)
            (if (i32.eqz (local.get 0)) (then (unreachable)))
            (throw $e (i32.mul (local.get 0) (i32.const 10))))
          (func (export "top") (param i32) (result i32) (local $keep i32) (local.set $keep (i32.const 7))
            (block $c (result i32)
              (block $all (try_table (catch $e $c) (catch_all $all) (return (call $outer (local.get 0)))))
              (i32.const -1))
            (local.get $keep) (i32.add)))""",
    )
    ex = linker.instantiate(store, module).exports(store)
    calls["middle"], calls["deepest"] = ex["middle"], ex["deepest"]
    assert ex["top"](store, 4) == 47
    with pytest.raises(Trap) as info:
        ex["top"](store, 0)
    assert info.value.trap_code is TrapCode.UNREACHABLE
    assert ex["top"](store, 5) == 57  # and everything still works afterwards


def test_a_cache_file_whose_regions_do_not_fit_is_refused():
    from hwsim.compiler import serialize
    from hwsim.runtime.api import wat2wasm

    module = load_module(bytes(wat2wasm("(module (tag $e) (func (block $c (try_table (catch $e $c) (throw $e)))))")))
    compiled = compile_module(module)
    start, end, ((kind, _, pad),) = compiled.handlers[0]
    compiled.handlers = [(start, end, ((kind, 5, pad),))]  # tag 5: the module has one
    with pytest.raises(serialize.CacheFormatError, match="does not fit the code or the tags"):
        serialize.decode(serialize.encode(compiled), module)


@pytest.mark.parametrize("metered", [False, True], ids=["tp-gp-homes", "metered"])
def test_locals_in_tp_and_gp_survive_unwinding(metered):
    """With ten locals and a parameter, unmetered code keeps two of them in tp and gp beside s4-s11
    (metered code keeps the fuel count in gp): the frames a throw unwinds clobber all of them, and the
    catching frame and its caller see their own again."""
    store = Store(Engine(cache=False, metering=metered))  # (metering alone: checkpoints, the count in gp)
    n = 10
    ex = instance(store, _unwinding_module(n))
    spread = sum(range(n))
    thrown = spread
    catcher = n * 7000 + spread
    outer = n * 7 + spread
    assert ex["f"](store, 7) == thrown + catcher + outer


def test_callee_saved_registers_of_unwound_frames_that_open_with_a_guard(store):
    """A function that opens with a guard on its parameters returns from its prologue before it saves
    anything (visitor.early_return): its saves come after that early return, and the unwinder must find
    them there, or the catcher sees the thrower's locals in its callee-saved registers."""
    ex = instance(store, _unwinding_module(8, guard=True))
    thrown = 8 * 1 + 28
    catcher = 8 * 7000 + 28
    outer = 8 * 7 + 28
    assert ex["f"](store, 7) == thrown + catcher + outer
