"""Attacks on the unwinder's callee-saved registers (compiler/isa/riscv64/abi.saved_registers, read from
the code after ``sub sp, sp, t5``; runtime/exceptions.leave_frame): a throw deep in nested calls (direct,
recursive, call_indirect, through functions that open with a guard on their parameters) caught in an
outer frame whose many locals (i32, i64, f32, f64, v128) live in callee-saved registers.  Every local of
the catching frame (and of its callers) must keep its value; wasmtime is the oracle.
"""

from __future__ import annotations

import pytest

from hwsim import Config, Engine, Instance, Module, Store

wasmtime = pytest.importorskip("wasmtime")

_TYPES = ("i32", "i64", "f32", "f64")


def _locals(prefix: str, counts: dict[str, int]) -> list[tuple[str, str]]:
    return [(f"${prefix}{ty}{i}", ty) for ty in _TYPES for i in range(counts.get(ty, 0))]


def _decl(locals_: list[tuple[str, str]]) -> str:
    return " ".join(f"(local {name} {ty})" for name, ty in locals_)


def _sets(locals_: list[tuple[str, str]], seed: str, salt: int) -> str:
    """Set each local from the i64 ``seed`` expression (distinct values per local and per salt)."""
    out = []
    for k, (name, ty) in enumerate(locals_):
        v = f"(i64.add {seed} (i64.const {salt * 1000 + k * 7 + 1}))"
        expr = {
            "i64": v,
            "i32": f"(i32.wrap_i64 {v})",
            "f64": f"(f64.convert_i64_s {v})",
            "f32": f"(f32.convert_i64_s {v})",
        }[ty]
        out.append(f"(local.set {name} {expr})")
    return " ".join(out)


def _hash(locals_: list[tuple[str, str]], acc: str) -> str:
    """``acc`` (i64 local) folded with every local: acc = acc * 31 + bits(local)."""
    out = []
    for name, ty in locals_:
        bits = {
            "i64": f"(local.get {name})",
            "i32": f"(i64.extend_i32_u (local.get {name}))",
            "f64": f"(i64.reinterpret_f64 (local.get {name}))",
            "f32": f"(i64.extend_i32_u (i32.reinterpret_f32 (local.get {name})))",
        }[ty]
        out.append(f"(local.set {acc} (i64.add (i64.mul (local.get {acc}) (i64.const 31)) {bits}))")
    return " ".join(out)


def _module(counts: dict[str, int], catch_kind: str = "catch") -> str:
    """$f (exported) -> $catcher (try_table) -> $mid (guard) -> call_indirect $rec_a / $rec_b (recursive,
    alternating through the table) -> throw at depth 0.  Every function keeps its locals across its call."""
    cl = _locals("c", counts)
    ml = _locals("m", {"i64": 6, "f64": 6, "i32": 3, "f32": 3})
    ra = _locals("a", {"i64": 9, "f64": 12})
    rb = _locals("b", {"i32": 9, "f32": 12, "i64": 2})
    fl = _locals("o", {"i64": 4, "f64": 4})
    catch = {
        "catch": "(catch $e $h)",
        "catch_all": "(catch_all $h0)",
        "catch_ref": "(catch_ref $e $hr)",
    }[catch_kind]
    if catch_kind == "catch":
        handler = f"""(block $h (result i64)
              (try_table {catch} (call $mid (local.get $p) (i64.const 0) (local.get $p)))
              (i64.const -1))"""
    elif catch_kind == "catch_all":
        handler = f"""(block $h0
              (try_table {catch} (call $mid (local.get $p) (i64.const 0) (local.get $p)))
              (unreachable))
            (i64.const 77)"""
    else:
        handler = f"""(block $hr (result i64 exnref)
              (try_table {catch} (call $mid (local.get $p) (i64.const 0) (local.get $p)))
              (unreachable))
            (drop)"""
    return f"""(module
      (type $rt (func (param i64) (result i64)))
      (tag $e (param i64))
      (table 2 funcref) (elem (i32.const 0) $rec_a $rec_b)
      (func $rec_a (param $n i64) (result i64) (local $acc i64) {_decl(ra)}
        {_sets(ra, "(local.get $n)", 3)}
        (if (i64.eqz (local.get $n)) (then
          {_hash(ra, "$acc")}
          (throw $e (local.get $acc))))
        (local.set $acc (call_indirect (type $rt) (i64.sub (local.get $n) (i64.const 1))
                                        (i32.wrap_i64 (i64.and (local.get $n) (i64.const 1)))))
        {_hash(ra, "$acc")} (local.get $acc))
      (func $rec_b (param $n i64) (result i64) (local $acc i64) {_decl(rb)}
        {_sets(rb, "(local.get $n)", 4)}
        (local.set $acc (call $rec_a (local.get $n)))
        {_hash(rb, "$acc")} (local.get $acc))
      (func $mid (param $n i64) (param $lo i64) (param $x i64) {_decl(ml)} (local $acc i64)
        (br_if 0 (i64.lt_u (local.get $n) (local.get $lo)))
        {_sets(ml, "(local.get $x)", 2)}
        (if (i64.ne (local.get $lo) (i64.const 0)) (then (return)))
        (call $mid (local.get $n) (i64.const 1) (local.get $x))
        (drop (call_indirect (type $rt) (local.get $n) (i32.const 1)))
        {_hash(ml, "$acc")} (global.set $sink (local.get $acc)))
      (global $sink (mut i64) (i64.const 0))
      (func $catcher (param $p i64) (result i64) (local $acc i64) (local $got i64) {_decl(cl)}
        {_sets(cl, "(local.get $p)", 1)}
        (local.set $got {handler})
        {_hash(cl, "$acc")}
        (i64.add (local.get $acc) (local.get $got)))
      (func (export "f") (param $p i64) (result i64) (local $acc i64) {_decl(fl)}
        {_sets(fl, "(local.get $p)", 5)}
        (local.set $acc (call $catcher (i64.mul (local.get $p) (i64.const 3))))
        {_hash(fl, "$acc")} (local.get $acc)))"""


def _wasmtime_results(wat: str, args) -> list[int]:
    config = wasmtime.Config()
    config.wasm_exceptions = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    f = wasmtime.Instance(store, wasmtime.Module(engine, wat), []).exports(store)["f"]
    return [f(store, a) for a in args]


def _hwsim_results(wat: str, args, metered: bool = False) -> list[int]:
    config = Config()
    if metered:
        config.consume_fuel = True
    store = Store(Engine(config, cache=False))
    if metered:
        store.set_fuel(10**12)
    f = Instance(store, Module(store.engine, wat), []).exports(store)["f"]
    return [f(store, a) for a in args]


COUNTS = [
    {"i64": 3},
    {"i64": 10, "f64": 12},
    {"i32": 6, "i64": 6, "f32": 6, "f64": 6},
    {"i32": 12, "i64": 12, "f32": 14, "f64": 14},  # more than the callee-saved registers: some on the stack
    {"f32": 13},
]


@pytest.mark.parametrize("counts", COUNTS, ids=lambda c: "-".join(f"{k}x{v}" for k, v in c.items()))
@pytest.mark.parametrize("catch_kind", ["catch", "catch_all", "catch_ref"])
def test_catching_frame_keeps_its_locals_like_wasmtime(counts, catch_kind):
    wat = _module(counts, catch_kind)
    args = [1, 2, 5, 8]
    assert _hwsim_results(wat, args) == _wasmtime_results(wat, args)


@pytest.mark.parametrize("counts", COUNTS[1:3], ids=lambda c: "-".join(f"{k}x{v}" for k, v in c.items()))
def test_catching_frame_keeps_its_locals_metered(counts):
    wat = _module(counts)
    args = [3, 6]
    assert _hwsim_results(wat, args, metered=True) == _wasmtime_results(wat, args)


def test_a_v128_local_in_the_catching_frame_keeps_its_value():
    """v128 locals are lowered to two i64 halves (no frame description): both halves must come back."""
    wat = """(module
      (tag $e (param i64))
      (func $thrower (param $n i64) (local $a i64) (local $b i64) (local $c i64) (local $d i64)
        (local $x f64) (local $y f64) (local $v v128)
        (local.set $a (local.get $n)) (local.set $b (i64.mul (local.get $n) (i64.const 3)))
        (local.set $c (i64.const -1)) (local.set $d (i64.const 0x5555))
        (local.set $x (f64.const 1.5)) (local.set $y (f64.const -2.5))
        (local.set $v (i64x2.splat (local.get $n)))
        (if (i64.eqz (local.get $n)) (then (throw $e (i64.add (local.get $a) (local.get $d)))))
        (call $thrower (i64.sub (local.get $n) (i64.const 1)))
        (drop (i64.add (i64x2.extract_lane 1 (local.get $v)) (i64.add (local.get $b) (local.get $c))))
        (drop (f64.add (local.get $x) (local.get $y))))
      (func (export "f") (param $p i64) (result i64) (local $v v128) (local $w v128) (local $q i64)
        (local $g f64)
        (local.set $v (i64x2.replace_lane 1 (i64x2.splat (i64.mul (local.get $p) (i64.const 7))) (i64.const 0x1234567890)))
        (local.set $w (f64x2.splat (f64.const 3.25)))
        (local.set $q (i64.add (local.get $p) (i64.const 11)))
        (local.set $g (f64.const 0.125))
        (block $h (result i64) (try_table (catch $e $h) (call $thrower (local.get $p))) (i64.const -1))
        (i64x2.extract_lane 0 (local.get $v)) (i64.add)
        (i64x2.extract_lane 1 (local.get $v)) (i64.add)
        (i64.reinterpret_f64 (f64x2.extract_lane 1 (local.get $w))) (i64.add)
        (local.get $q) (i64.add)
        (i64.reinterpret_f64 (local.get $g)) (i64.add)))"""
    args = [0, 1, 4]
    assert _hwsim_results(wat, args) == _wasmtime_results(wat, args)


def test_a_throw_from_inside_a_handler_of_a_middle_frame_rethrown_outwards():
    """The middle frame catches (its own callee-saved registers restored), clobbers, and rethrows with
    throw_ref: the outer catcher's locals must come back through the second unwinding as well."""
    cl = _locals("c", {"i64": 9, "f64": 12})
    ml = _locals("m", {"i64": 9, "f64": 12})
    wat = f"""(module
      (tag $e (param i64))
      (func $thrower (param $n i64) {_decl(ml)} (local $acc i64)
        {_sets(ml, "(local.get $n)", 7)}
        (if (i64.eqz (local.get $n)) (then {_hash(ml, "$acc")} (throw $e (local.get $acc))))
        (call $thrower (i64.sub (local.get $n) (i64.const 1)))
        {_hash(ml, "$acc")} (global.set $g (local.get $acc)))
      (global $g (mut i64) (i64.const 0))
      (func $middle (param $n i64) {_decl(ml)} (local $acc i64) (local $x exnref)
        {_sets(ml, "(local.get $n)", 8)}
        (block $h (result i64 exnref)
          (try_table (catch_ref $e $h) (call $thrower (local.get $n))) (return))
        (local.set $x) (drop)
        {_sets(ml, "(local.get $n)", 9)}
        (throw_ref (local.get $x)))
      (func (export "f") (param $p i64) (result i64) (local $acc i64) {_decl(cl)}
        {_sets(cl, "(local.get $p)", 1)}
        (local.set $acc (block $h (result i64)
          (try_table (catch $e $h) (call $middle (local.get $p))) (i64.const -1)))
        {_hash(cl, "$acc")} (local.get $acc)))"""
    args = [0, 3, 6]
    assert _hwsim_results(wat, args) == _wasmtime_results(wat, args)


def _gc_store() -> Store:
    store = Store(Engine(cache=False))
    heap = store._store.gc_heap
    heap.stress = True  # a collection at every allocation: a missed root is freed (and its memory reused)
    return store


_GC_MODULE = """(module
  (type $s (struct (field $v i64)))
  (type $b (array (mut i8)))
  (type $rt (func (param i64)))
  (tag $e (param (ref null $s)))
  (table 2 funcref) (elem (i32.const 0) $deep $via)
  (func $churn (param $n i32)
    (loop $l (if (local.get $n) (then
      (drop (struct.new $s (i64.const -7)))
      (drop (array.new_default $b (i32.const 100)))
      (local.set $n (i32.sub (local.get $n) (i32.const 1))) (br $l)))))
  (func $v (param $r (ref null $s)) (result i64) (struct.get $s $v (local.get $r)))
  (func $deep (param $n i64) (param $k i64)
    (local $r0 (ref null $s)) (local $r1 (ref null $s)) (local $r2 (ref null $s))
    (local $r3 (ref null $s)) (local $r4 (ref null $s)) (local $r5 (ref null $s))
    (local $i i64) (local $x f64)
    (br_if 0 (i64.lt_u (local.get $n) (local.get $k)))
    (local.set $r0 (struct.new $s (i64.add (local.get $n) (i64.const 100))))
    (local.set $r1 (struct.new $s (i64.add (local.get $n) (i64.const 200))))
    (local.set $r2 (struct.new $s (i64.add (local.get $n) (i64.const 300))))
    (call $churn (i32.const 3))
    (local.set $r3 (struct.new $s (i64.add (local.get $n) (i64.const 400))))
    (local.set $r4 (struct.new $s (i64.add (local.get $n) (i64.const 500))))
    (local.set $r5 (struct.new $s (i64.add (local.get $n) (i64.const 600))))
    (local.set $i (local.get $n)) (local.set $x (f64.convert_i64_s (local.get $n)))
    (if (i64.eqz (local.get $n)) (then
      (call $churn (i32.const 3))
      (throw $e (struct.new $s (i64.add (call $v (local.get $r5)) (call $v (local.get $r0)))))))
    (call_indirect (type $rt) (i64.sub (local.get $n) (i64.const 1)) (i32.const 1))
    (call $churn (i32.const 2))
    (global.set $sink (i64.add (global.get $sink)
      (i64.add (i64.add (i64.add (call $v (local.get $r0)) (call $v (local.get $r1))) (call $v (local.get $r2)))
               (i64.add (i64.add (call $v (local.get $r3)) (call $v (local.get $r4))) (call $v (local.get $r5))))))
    (global.set $sink (i64.add (global.get $sink) (i64.add (local.get $i) (i64.trunc_f64_s (local.get $x))))))
  (func $via (param $n i64) (local $r (ref null $s))
    (local.set $r (struct.new $s (i64.const 5)))
    (call $deep (local.get $n) (i64.const 0))
    (call $churn (i32.const 1))
    (global.set $sink (i64.add (global.get $sink) (call $v (local.get $r)))))
  (global $sink (mut i64) (i64.const 0))
  (func (export "f") (param $p i64) (result i64)
    (local $a0 (ref null $s)) (local $a1 (ref null $s)) (local $a2 (ref null $s)) (local $a3 (ref null $s))
    (local $a4 (ref null $s)) (local $a5 (ref null $s)) (local $a6 (ref null $s)) (local $a7 (ref null $s))
    (local $a8 (ref null $s)) (local $a9 (ref null $s)) (local $arr (ref null $b))
    (local $got (ref null $s)) (local $n i64) (local $f f64)
    (local.set $a0 (struct.new $s (i64.add (local.get $p) (i64.const 1))))
    (local.set $a1 (struct.new $s (i64.add (local.get $p) (i64.const 2))))
    (local.set $a2 (struct.new $s (i64.add (local.get $p) (i64.const 3))))
    (local.set $a3 (struct.new $s (i64.add (local.get $p) (i64.const 4))))
    (local.set $a4 (struct.new $s (i64.add (local.get $p) (i64.const 5))))
    (local.set $a5 (struct.new $s (i64.add (local.get $p) (i64.const 6))))
    (local.set $a6 (struct.new $s (i64.add (local.get $p) (i64.const 7))))
    (local.set $a7 (struct.new $s (i64.add (local.get $p) (i64.const 8))))
    (local.set $a8 (struct.new $s (i64.add (local.get $p) (i64.const 9))))
    (local.set $a9 (struct.new $s (i64.add (local.get $p) (i64.const 10))))
    (local.set $arr (array.new $b (i32.const 42) (i32.const 64)))
    (local.set $n (i64.const 1000)) (local.set $f (f64.const 2.5))
    (local.set $got (block $h (result (ref null $s))
      (try_table (catch $e $h) (call $deep (local.get $p) (i64.const 0))) (ref.null $s)))
    (call $churn (i32.const 4))  ;; collections after the landing: the catcher's registers are its roots
    (i64.add (i64.add (i64.add (call $v (local.get $a0)) (call $v (local.get $a1)))
                      (i64.add (call $v (local.get $a2)) (call $v (local.get $a3))))
             (i64.add (i64.add (call $v (local.get $a4)) (call $v (local.get $a5)))
                      (i64.add (call $v (local.get $a6)) (call $v (local.get $a7)))))
    (i64.add (call $v (local.get $a8))) (i64.add (call $v (local.get $a9)))
    (i64.add (i64.extend_i32_u (array.get_u $b (local.get $arr) (i32.const 63))))
    (i64.add (i64.extend_i32_u (array.len (local.get $arr))))
    (i64.add (call $v (local.get $got)))
    (i64.add (local.get $n)) (i64.add (i64.trunc_f64_s (local.get $f)))))"""


@pytest.mark.parametrize("p", [0, 1, 2, 5])
def test_gc_references_in_the_catching_frame_survive_collections_during_and_after_the_unwinding(p):
    """References in callee-saved registers of every frame, collections (stress: one per allocation) in the
    deep frames before the throw and in the catcher after the landing; the thrown payload is a reference."""
    store = _gc_store()
    f = Instance(store, Module(store.engine, _GC_MODULE), []).exports(store)["f"]
    expected = sum(p + i for i in range(1, 11)) + 42 + 64 + (600 + 100) + 1000 + 2
    assert f(store, p) == expected
    assert f(store, p) == expected  # again, in a heap the first call left garbage in
