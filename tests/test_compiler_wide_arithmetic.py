"""Wide arithmetic (``i64.add128``, ``i64.sub128``, ``i64.mul_wide_s``, ``i64.mul_wide_u``), front end to RV64 code.

Results are compared with wasmtime (wide arithmetic on) and with Python's
integers, for operands that come from registers, constants, locals homed in
callee-saved registers and spill slots (a deep operand stack), and for results
that feed further arithmetic, locals and control flow.  Validation and feature
errors are checked word for word.
"""

from __future__ import annotations

import random

import pytest
import wasmtime

import hwsim
from hwsim.errors import ConfigError
from hwsim.wasm.errors import InvalidError, UnsupportedFeatureError

MASK = (1 << 64) - 1

WAT = """(module
 (func (export "add") (param i64 i64 i64 i64) (result i64 i64)
   (i64.add128 (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
 (func (export "sub") (param i64 i64 i64 i64) (result i64 i64)
   (i64.sub128 (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
 (func (export "mul_s") (param i64 i64) (result i64 i64) (i64.mul_wide_s (local.get 0) (local.get 1)))
 (func (export "mul_u") (param i64 i64) (result i64 i64) (i64.mul_wide_u (local.get 0) (local.get 1)))
 (func (export "consts") (result i64 i64 i64 i64 i64 i64)
   (i64.add128 (i64.const -1) (i64.const -1) (i64.const 1) (i64.const 0))
   (i64.sub128 (i64.const 0) (i64.const 0) (i64.const 1) (i64.const 0))
   (i64.mul_wide_s (i64.const -9223372036854775808) (i64.const -1)))
 (func (export "deep") (param $a i64) (param $b i64) (result i64)
   ;; many values live across the wide operations: some end up in spill slots
   (local $x i64) (local $y i64)
   (local.get $a) (local.get $b) (i64.add (local.get $a) (i64.const 3)) (i64.mul (local.get $b) (i64.const 5))
   (i64.xor (local.get $a) (local.get $b)) (i64.sub (local.get $b) (local.get $a))
   (i64.mul_wide_u (local.get $a) (local.get $b))
   (i64.mul_wide_s (local.get $b) (local.get $a))
   (i64.add128)
   (local.set $y) (local.set $x)
   (i64.sub128 (i64.add128) (local.get $x) (local.get $y))
   (i64.xor) (i64.add) (i64.add))
 (func $nop)
 (func (export "spilled") (param $a i64) (param $b i64) (result i64 i64 i64 i64)
   ;; the call spills the operands: the wide operations read them from frame slots
   (local.get $a) (i64.add (local.get $b) (i64.const 1)) (i64.mul (local.get $a) (i64.const 3)) (i64.const -7)
   (call $nop)
   (i64.sub128)
   (i64.mul (local.get $a) (local.get $b)) (local.get $b)
   (call $nop)
   (i64.mul_wide_s))
 (func (export "loop") (param $n i64) (param $k i64) (result i64 i64)
   ;; a 128-bit accumulator in locals: sum of k * i for i in 1..n, through a branch
   (local $lo i64) (local $hi i64)
   (block $done (loop $next
     (br_if $done (i64.eqz (local.get $n)))
     (i64.mul_wide_u (local.get $k) (local.get $n))
     (local.set $hi (i64.add128 (local.get $lo) (local.get $hi)))
     (local.set $lo)
     (local.set $n (i64.sub (local.get $n) (i64.const 1)))
     (br $next)))
   (local.get $lo) (local.get $hi)))
"""


def split(value: int) -> list[int]:
    """A 128-bit value as wasm i64 halves (signed, as the APIs return them)."""
    return [signed(value & MASK), signed(value >> 64 & MASK)]


def signed(v: int) -> int:
    v &= MASK
    return v - (1 << 64) if v >> 63 else v


def model(name: str, *args: int) -> list[int]:
    u = [a & MASK for a in args]
    if name == "add":
        return split((u[0] | u[1] << 64) + (u[2] | u[3] << 64))
    if name == "sub":
        return split((u[0] | u[1] << 64) - (u[2] | u[3] << 64))
    if name == "mul_s":
        return split(signed(args[0]) * signed(args[1]))
    return split(u[0] * u[1])


EDGES = [0, 1, -1, 2, (1 << 63) - 1, -(1 << 63), 0xFFFF_FFFF, 1 << 32, (1 << 62) + 12345]


def operands(rng: random.Random, n: int) -> list[int]:
    return [rng.choice(EDGES) if rng.random() < 0.4 else rng.randrange(-(1 << 63), 1 << 63) for _ in range(n)]


def exports(api):
    if api is wasmtime:
        config = wasmtime.Config()
        config.wasm_wide_arithmetic = True
        engine = wasmtime.Engine(config)
    else:
        engine = api.Engine()
    store = api.Store(engine)
    return store, api.Instance(store, api.Module(engine, WAT), []).exports(store)


def transcript(api) -> list:
    store, x = exports(api)
    rng = random.Random(20)
    out = [x["consts"](store)]
    for _ in range(400):
        a = operands(rng, 4)
        out += [x["add"](store, *a), x["sub"](store, *a), x["mul_s"](store, *a[:2]), x["mul_u"](store, *a[2:])]
        out += [x["deep"](store, *a[:2]), x["loop"](store, a[2] & 0x3FF, a[3]), x["spilled"](store, *a[:2])]
    return out


def test_wide_arithmetic_matches_wasmtime():
    assert transcript(hwsim) == transcript(wasmtime)


def test_wide_arithmetic_matches_128_bit_integers():
    store, x = exports(hwsim)
    rng = random.Random(7)
    for _ in range(300):
        a = operands(rng, 4)
        for name, args in (("add", a), ("sub", a), ("mul_s", a[:2]), ("mul_u", a[2:])):
            assert x[name](store, *args) == model(name, *args), (name, args)
    assert x["consts"](store) == [0, 0, -1, -1, -(1 << 63), 0]


@pytest.mark.parametrize(
    "body, message",
    [
        (
            "(i64.add128 (i64.const 0) (i64.const 0) (i64.const 0))",
            "type mismatch: i64.add128 expects [i64 i64 i64 i64] but the stack has [i64 i64 i64]",
        ),
        (
            "(i64.mul_wide_u (i32.const 0) (i64.const 0))",
            "type mismatch: i64.mul_wide_u expects [i64 i64] but the stack has [i32 i64]",
        ),
    ],
)
def test_wide_arithmetic_validation_errors(body, message):
    wat = f"(module (func (result i64 i64) {body}))"
    with pytest.raises(InvalidError) as info:
        hwsim.Module(hwsim.Engine(), wat)
    assert str(info.value).startswith(message), str(info.value)


def test_wide_arithmetic_can_be_switched_off():
    config = hwsim.Config()
    assert config.wasm_wide_arithmetic is True
    config.wasm_wide_arithmetic = False
    engine = hwsim.Engine(config)
    with pytest.raises(UnsupportedFeatureError, match=r"wide arithmetic \(opcode 0xfc 0x13 i64.add128; enable it"):
        hwsim.Module(engine, WAT)
    with pytest.raises(ConfigError):
        hwsim.Config().wasm_stack_switching = True
