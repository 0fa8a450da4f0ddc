"""v128 struct fields and array elements (compiler/objlayout.py: 16 bytes aligned to 8; codegen/gc.py moves
them as two 64-bit halves; the array builtins take the high half after the static operands), against
wasmtime and exact values, under GC stress too."""

from __future__ import annotations

import pytest
import wasmtime

import hwsim
from hwsim import Engine, Instance, Module, Store, Trap, TrapCode
from hwsim.compiler.objlayout import array_bytes, struct_layout
from hwsim.wasm.types import F64, I8, I32, V128, ArrayType, FieldType, StructType

DATA = "".join(f"\\{i:02x}" for i in range(48))

WAT = f"""
(module
  (type $s (struct (field $a (mut i8)) (field $v (mut v128)) (field $b (mut i32)) (field $w (mut v128))
                   (field $c (mut i64))))
  (type $arr (array (mut v128)))
  (data $d "{DATA}")
  (global $ga (ref $arr) (array.new_fixed $arr 2 (v128.const i64x2 7 8) (v128.const i64x2 9 -10)))
  (global $gs (ref $s)
    (struct.new $s (i32.const 3) (v128.const i64x2 11 12) (i32.const 4) (v128.const i32x4 1 2 3 4) (i64.const 5)))
  (func $v (param $x i64) (param $y i64) (result v128)
    (i64x2.replace_lane 1 (i64x2.splat (local.get $x)) (local.get $y)))
  (func $h (param $v v128) (result i64)  ;; both halves, mixed
    (i64.xor (i64x2.extract_lane 0 (local.get $v)) (i64.rotl (i64x2.extract_lane 1 (local.get $v)) (i64.const 17))))
  (func $sum (param $a (ref null $arr)) (result i64)
    (local $i i32) (local $acc i64)
    (block $done
      (loop $l
        (br_if $done (i32.ge_u (local.get $i) (array.len (local.get $a))))
        (local.set $acc (i64.add (i64.mul (local.get $acc) (i64.const 31))
                                 (call $h (array.get $arr (local.get $a) (local.get $i)))))
        (local.set $i (i32.add (local.get $i) (i32.const 1)))
        (br $l)))
    (local.get $acc))
  (func (export "struct_fields") (param $x i64) (param $y i64) (result i64 i64 i64 i64 i64)
    (local $o (ref null $s))
    (local.set $o (struct.new $s (i32.const -1) (call $v (local.get $x) (local.get $y)) (i32.const 0x12345678)
                                 (call $v (local.get $y) (local.get $x)) (i64.const -2)))
    (struct.set $s $w (local.get $o) (call $v (i64.const 5) (local.get $y)))
    (call $h (struct.get $s $v (local.get $o)))
    (call $h (struct.get $s $w (local.get $o)))
    (i64.extend_i32_s (struct.get_s $s $a (local.get $o)))
    (i64.extend_i32_u (struct.get $s $b (local.get $o)))
    (struct.get $s $c (local.get $o)))
  (func (export "struct_get") (param $x i64) (param $y i64) (result v128)
    (struct.get $s $v (struct.new $s (i32.const 0) (call $v (local.get $x) (local.get $y)) (i32.const 0)
                                     (v128.const i64x2 0 0) (i64.const 0))))
  (func (export "array_get") (param $a i32) (param $i i32) (result v128)
    (array.get $arr (array.new $arr (call $v (i64.const 1) (i64.const 2)) (local.get $a)) (local.get $i)))
  (func (export "struct_default") (result i64)
    (local $o (ref null $s))
    (local.set $o (struct.new_default $s))
    (i64.or (call $h (struct.get $s $v (local.get $o))) (call $h (struct.get $s $w (local.get $o)))))
  (func (export "array_ops") (param $x i64) (param $y i64) (result i64 i64)
    (local $a (ref null $arr)) (local $b (ref null $arr))
    (local.set $a (array.new $arr (call $v (local.get $x) (local.get $y)) (i32.const 6)))
    (array.set $arr (local.get $a) (i32.const 2) (call $v (i64.const 1) (i64.const 2)))
    (array.fill $arr (local.get $a) (i32.const 3) (call $v (local.get $y) (i64.const 9)) (i32.const 2))
    (local.set $b (array.new_fixed $arr 3 (call $v (i64.const 10) (i64.const 11)) (call $v (i64.const 12) (i64.const 13))
                                          (call $v (i64.const 14) (local.get $x))))
    (array.copy $arr $arr (local.get $a) (i32.const 0) (local.get $b) (i32.const 1) (i32.const 2))
    (array.copy $arr $arr (local.get $a) (i32.const 1) (local.get $a) (i32.const 0) (i32.const 3))
    (array.init_data $arr $d (local.get $b) (i32.const 1) (i32.const 16) (i32.const 2))
    (call $sum (local.get $a)) (call $sum (local.get $b)))
  (func (export "array_new_more") (result i64 i64 i64)
    (call $sum (array.new_default $arr (i32.const 3)))
    (call $sum (array.new_data $arr $d (i32.const 8) (i32.const 2)))
    (i64.add (call $sum (global.get $ga)) (call $h (struct.get $s $w (global.get $gs)))))
  (func (export "get_oob") (param $i i32) (result i64)
    (call $h (array.get $arr (array.new_default $arr (i32.const 4)) (local.get $i))))
  (func (export "null_struct") (result i64) (call $h (struct.get $s $v (ref.null $s))))
  (func (export "null_set") (array.set $arr (ref.null $arr) (i32.const 0) (v128.const i64x2 0 0)))
  (func (export "fill_oob")
    (array.fill $arr (array.new_default $arr (i32.const 2)) (i32.const 1) (v128.const i64x2 1 1) (i32.const 2)))
  (func (export "init_data_oob")
    (array.init_data $arr $d (array.new_default $arr (i32.const 4)) (i32.const 0) (i32.const 40) (i32.const 1)))
  (func (export "new_data_oob") (result i32)
    (array.len (array.new_data $arr $d (i32.const 0) (i32.const 4)))))
"""

CALLS = [
    ("struct_fields", (3, -4)),
    ("struct_fields", (1 << 62, 0x0123_4567_89AB_CDEF)),
    ("struct_default", ()),
    ("array_ops", (7, -8)),
    ("array_ops", (-(1 << 63), 99)),
    ("array_new_more", ()),
    ("get_oob", (3,)),
    ("get_oob", (4,)),
    ("get_oob", (-1,)),
    ("null_struct", ()),
    ("null_set", ()),
    ("fill_oob", ()),
    ("init_data_oob", ()),
    ("new_data_oob", ()),
]


def _outcome(call, store, name, args):
    try:
        return ("ok", call(store, name, args))
    except (Trap, wasmtime.Trap) as exc:
        return ("trap", str(exc))


def _hwsim(stress: bool):
    store = Store(Engine(cache=False))
    store._store.gc_heap.stress = stress
    exports = Instance(store, Module(store.engine, WAT), []).exports(store)
    return store, exports


def _transcript_hwsim(stress: bool) -> list:
    store, exports = _hwsim(stress)
    out = []
    for name, args in CALLS:
        kind, value = _outcome(lambda s, n, a: exports[n](s, *a), store, name, args)
        out.append((kind, _trap_code(value) if kind == "trap" else _normal(value)))
    return out


def _transcript_wasmtime() -> list:
    config = wasmtime.Config()
    config.wasm_gc = True
    config.wasm_function_references = True
    engine = wasmtime.Engine(config)
    store = wasmtime.Store(engine)
    exports = wasmtime.Instance(store, wasmtime.Module(engine, WAT), []).exports(store)
    out = []
    for name, args in CALLS:
        kind, value = _outcome(lambda s, n, a: exports[n](s, *a), store, name, args)
        out.append((kind, _trap_code(value) if kind == "trap" else _normal(value)))
    return out


_MESSAGES = {
    "out of bounds array access": "array",
    "array element access out of bounds": "array",
    "null structure reference": "null",
    "null array reference": "null",
    "null reference": "null",
    "out of bounds memory access": "data",
}


def _trap_code(message: str) -> str:
    for text, code in _MESSAGES.items():
        if text in message:
            return code
    raise AssertionError(f"an unexpected trap: {message}")


def _normal(value):
    values = value if isinstance(value, (list, tuple)) else [value]
    return [v & ((1 << 64) - 1) for v in values]


def test_layout_aligns_v128_to_8_and_packs_array_elements_at_16():
    st = StructType((FieldType(I8, True), FieldType(V128, True), FieldType(I32, True), FieldType(V128, False)))
    assert struct_layout(st) == ((8, 16, 32, 40), 56)
    st = StructType((FieldType(V128, False), FieldType(F64, False)))
    assert struct_layout(st) == ((8, 24), 32)
    assert array_bytes(ArrayType(FieldType(V128, True)), 3) == 8 + 48


@pytest.mark.parametrize("stress", [False, True])
def test_v128_fields_and_elements_match_wasmtime(stress: bool):
    ours = _transcript_hwsim(stress)
    assert ours == _transcript_wasmtime()
    assert [kind for kind, _ in ours].count("trap") == 7  # every error path above traps, in both


def test_v128_comes_to_the_host_as_its_128_bit_integer():
    store, exports = _hwsim(False)
    assert exports["struct_get"](store, 1, 2) == 1 | 2 << 64
    assert exports["struct_get"](store, -1, 0x7F) == (1 << 64) - 1 | 0x7F << 64
    assert exports["array_get"](store, 3, 2) == 1 | 2 << 64


def test_v128_trap_messages():
    store, exports = _hwsim(False)
    for name, args, code in [
        ("get_oob", (4,), TrapCode.ARRAY_OUT_OF_BOUNDS),
        ("null_struct", (), TrapCode.NULL_STRUCTURE_REFERENCE),
        ("null_set", (), TrapCode.NULL_ARRAY_REFERENCE),
        ("fill_oob", (), TrapCode.ARRAY_OUT_OF_BOUNDS),
        ("array_get", (2, 2), TrapCode.ARRAY_OUT_OF_BOUNDS),
    ]:
        with pytest.raises(Trap) as exc:
            exports[name](store, *args)
        assert exc.value.trap_code == code, name


def test_a_huge_v128_array_traps_out_of_gc_heap_memory():
    store, exports = _hwsim(False)
    store._store.gc_heap.limit = 4096
    with pytest.raises(Trap) as exc:
        exports["array_get"](store, 300, 0)  # 4808 bytes
    assert exc.value.trap_code == TrapCode.GC_HEAP_EXHAUSTED
    assert exports["array_get"](store, 200, 199) == 1 | 2 << 64  # the Store goes on
    assert isinstance(hwsim.Val.v128(5).value, int)
