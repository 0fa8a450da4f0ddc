"""runtime/crossing.py: values crossing the host<->guest boundary, per signature, both ways.

Every value type in registers and, past eight of a class, in the ABI area; i32 sign-extended and f32
NaN-boxed on the way in, masked on the way out; a host function called from wasm and wasm called from
the host (also from inside a host function: a nested run)."""

from __future__ import annotations

import math

import pytest

from hwsim.runtime import api
from hwsim.runtime.internal import vm_store

# 10 of each type: the last two of each class go through the ABI area.
TYPES = ["i32", "i64", "f32", "f64"] * 10
PARAMS = " ".join(TYPES)
RESULTS = "i32 i64 f32 f64 " * 3


def values(seed: int) -> list:
    out = []
    for i, ty in enumerate(TYPES):
        n = seed * 100 + i
        out.append({"i32": -n if n % 2 else n + 0x7FFF_0000, "i64": -(n << 40), "f32": n + 0.5, "f64": -n / 3}[ty])
    return out


def echo_wat() -> str:
    picks = [0, 1, 2, 3, 36, 37, 38, 39, 4, 5, 6, 7]  # first, last (ABI area) and second of each type
    gets = " ".join(f"(local.get {i})" for i in picks)
    return f"""(module
  (import "env" "h" (func $h (param {PARAMS}) (result {RESULTS})))
  (func (export "echo") (param {PARAMS}) (result {RESULTS}) {gets})
  (func (export "via_host") (param {PARAMS}) (result {RESULTS})
    {" ".join(f"(local.get {i})" for i in range(40))} (call $h)))"""


def close(a, b) -> bool:
    return a == b or (isinstance(a, float) and math.isclose(a, b, rel_tol=1e-6))


@pytest.fixture
def inst():
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    seen = []

    def h(*args):
        seen.append(args)
        return [args[i] for i in (0, 1, 2, 3, 36, 37, 38, 39, 4, 5, 6, 7)]

    ty = api.FuncType([getattr(api.ValType, t)() for t in TYPES], [getattr(api.ValType, t)() for t in RESULTS.split()])
    exports = api.Instance(store, api.Module(engine, echo_wat()), [api.Func(store, ty, h)]).exports(store)
    return store, exports, seen


def expected(args: list) -> list:
    return [args[i] for i in (0, 1, 2, 3, 36, 37, 38, 39, 4, 5, 6, 7)]


def test_host_to_wasm_in_registers_and_the_abi_area(inst):
    store, exports, _seen = inst
    args = values(1)
    out = exports["echo"](store, *args)
    assert all(close(a, b) for a, b in zip(out, expected(args)))
    assert out[0] == args[0] and out[4] == args[36]  # exact ints, both ways


def test_wasm_to_host_and_back(inst):
    store, exports, seen = inst
    args = values(2)
    out = exports["via_host"](store, *args)
    assert len(seen) == 1 and all(close(a, b) for a, b in zip(seen[0], args))
    assert all(close(a, b) for a, b in zip(out, expected(args)))


def test_i32_values_cross_sign_extended():
    """Compiled code compares i32 values as 64-bit registers: a negative argument or host result that
    crossed zero-extended would compare as positive."""
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    wat = """(module
      (import "env" "h" (func $h (result i32)))
      (func (export "neg") (param i32) (result i32) (i32.lt_s (local.get 0) (i32.const 0)))
      (func (export "host_neg") (result i32) (i32.lt_s (call $h) (i32.const 0))))"""
    i32 = api.ValType.i32()
    h = api.Func(store, api.FuncType([], [i32]), lambda: -5)
    exports = api.Instance(store, api.Module(engine, wat), [h]).exports(store)
    assert [exports["neg"](store, v) for v in (-5, 5, -(1 << 31), 0xFFFF_FFFF)] == [1, 0, 1, 1]
    assert exports["host_neg"](store) == 1
    assert vm_store(store).machine.get_reg("a0") == 1


def test_a_host_function_calling_back_into_wasm():
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    wat = """(module
      (import "env" "h" (func $h (param i32) (result i32)))
      (func (export "f") (param i32) (result i32) (i32.add (call $h (local.get 0)) (i32.const 1)))
      (func (export "g") (param i32) (result i32) (i32.mul (local.get 0) (i32.const -2))))"""
    box = {}

    def h(x):
        return box["g"](store, x) - 3  # a nested run from inside the ecall

    i32 = api.ValType.i32()
    exports = api.Instance(store, api.Module(engine, wat), [api.Func(store, api.FuncType([i32], [i32]), h)]).exports(
        store
    )
    box["g"] = exports["g"]
    assert exports["f"](store, 21) == -42 - 3 + 1
    assert exports["f"](store, -(1 << 31)) == ((-(1 << 31) * -2 - 3 + 1 + (1 << 31)) % (1 << 32)) - (1 << 31)


def test_a_host_function_returning_the_wrong_count_is_an_error():
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    wat = '(module (import "env" "h" (func $h (result i32 i32))) (func (export "f") (result i32 i32) (call $h)))'
    i32 = api.ValType.i32()
    bad = api.Func(store, api.FuncType([], [i32, i32]), lambda: [1])
    f = api.Instance(store, api.Module(engine, wat), [bad]).exports(store)["f"]
    with pytest.raises(
        api.WasmtimeError, match="the host function returned the wrong number of results: 1, its type has 2"
    ):
        f(store)
