"""hwsim.compiler against wasmtime (test oracle): every numeric instruction on random operands.

Each instruction becomes an exported function taking its operands as
parameters; both engines run it on the same operands.  Results must be equal
bit for bit, except that a NaN result only has to be a NaN (the specification
lets the payload vary); traps must have the same code.
"""

from __future__ import annotations

import math
import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.compiler import compile_module
from hwsim.riscv.disasm import disassemble
from hwsim.runtime.api import _wat_to_wasm
from hwsim.wasm import load_module
from hwsim.wasm import opcodes as op
from hwsim.wasm.types import F32, F64, I32, I64

wasmtime = pytest.importorskip("wasmtime")

LETTER = {I32: "i32", I64: "i64", F32: "f32", F64: "f64"}
BITS = {I32: 32, I64: 64, F32: 32, F64: 64}

NUMERIC = sorted(
    (code, name)
    for code, name in op.NAMES.items()
    if code in op.SIGNATURES
    and code not in (op.I32_CONST_OP, op.I64_CONST_OP, op.F32_CONST_OP, op.F64_CONST_OP, op.NOP)
)


def wat_module() -> str:
    funcs = []
    for code, name in NUMERIC:
        params, results = op.SIGNATURES[code]
        ps = " ".join(f"(param {LETTER[p]})" for p in params)
        rs = " ".join(f"(result {LETTER[r]})" for r in results)
        gets = " ".join(f"local.get {i}" for i in range(len(params)))
        funcs.append(f'(func (export "{name}") {ps} {rs} {gets} {name})')
    return "(module " + "\n".join(funcs) + ")"


@pytest.fixture(scope="module")
def engines():
    wat = wat_module()
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    inst = hwsim.Instance(store, hwsim.Module(engine, wat), [])
    config = wasmtime.Config()
    config.wasm_wide_arithmetic = True
    wt_store = wasmtime.Store(wasmtime.Engine(config))
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wat), [])
    return (store, inst.exports(store)), (wt_store, wt_inst.exports(wt_store))


def to_wasmtime(ty: int, bits: int):
    if ty == I32:
        return bits - (1 << 32) if bits >> 31 else bits
    if ty == I64:
        return bits - (1 << 64) if bits >> 63 else bits
    if ty == F32:
        return wasmtime.Val.f32(struct.unpack("<f", struct.pack("<I", bits))[0])
    return wasmtime.Val.f64(struct.unpack("<d", struct.pack("<Q", bits))[0])


def from_wasmtime(ty: int, v) -> int:
    if ty == I32:
        return v & 0xFFFF_FFFF
    if ty == I64:
        return v & (1 << 64) - 1
    if ty == F32:
        return struct.unpack("<I", struct.pack("<f", v))[0]
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def is_nan(ty: int, bits: int) -> bool:
    if ty == F32:
        return (bits & 0x7F80_0000) == 0x7F80_0000 and bits & 0x007F_FFFF
    if ty == F64:
        return (bits & 0x7FF0_0000_0000_0000) == 0x7FF0_0000_0000_0000 and bits & 0x000F_FFFF_FFFF_FFFF
    return False


WT_TRAPS = {
    "integer divide by zero": "integer divide by zero",
    "integer overflow": "integer overflow",
    "invalid conversion to integer": "invalid conversion to integer",
}


def interesting(ty: int):
    """Operands: edges (0, -1, min, max, NaN, infinities, +-0, tiny, 2^n boundaries) and random bits."""
    if ty in (I32, I64):
        n = BITS[ty]
        edges = [0, 1, 2, (1 << n) - 1, 1 << (n - 1), (1 << (n - 1)) - 1, 31, 32, 63, 64, 0xFF, 0x8000]
        return st.one_of(st.sampled_from(edges), st.integers(0, (1 << n) - 1))
    floats = st.floats(width=32 if ty == F32 else 64, allow_nan=True, allow_infinity=True)
    pack = (
        (lambda f: struct.unpack("<I", struct.pack("<f", f))[0])
        if ty == F32
        else (lambda f: struct.unpack("<Q", struct.pack("<d", f))[0])
    )
    edges = [
        0.0,
        -0.0,
        0.5,
        -0.5,
        1.5,
        -1.5,
        2.5,
        4294967295.5,
        2147483647.0,
        -2147483648.0,
        2147483648.0,
        9223372036854775807.0,
        -9223372036854775808.0,
        18446744073709551616.0,
        1e-40,
        math.inf,
        -math.inf,
    ]
    return st.one_of(st.sampled_from(edges).map(pack), floats.map(pack), st.integers(0, (1 << BITS[ty]) - 1))


@pytest.mark.parametrize("code,name", NUMERIC, ids=[n for _, n in NUMERIC])
def test_instruction_matches_wasmtime(engines, code, name):
    (store, ex), (wt_store, wt_ex) = engines
    params, results = op.SIGNATURES[code]
    rty = results[0]

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(args=st.tuples(*[interesting(p) for p in params]))
    def check(args):
        try:
            wt = wt_ex[name](wt_store, *[to_wasmtime(p, a) for p, a in zip(params, args)])
            wt_values = wt if isinstance(wt, list) else [wt]  # wide arithmetic has two results
            expected = ("ok", tuple(from_wasmtime(r, v) for r, v in zip(results, wt_values)))
        except wasmtime.Trap as exc:
            expected = ("trap", next((v for k, v in WT_TRAPS.items() if k in str(exc)), str(exc)))
        try:
            got_vals = ex[name].call_vals(store, *[hwsim.Val(hwsim.ValType(p), a) for p, a in zip(params, args)])
            got = ("ok", tuple(v.bits for v in got_vals))
        except hwsim.Trap as exc:
            got = ("trap", exc.code.message)
        if expected[0] == "ok" and got[0] == "ok" and is_nan(rty, expected[1][0]):
            assert is_nan(rty, got[1][0]), f"{name}{tuple(hex(a) for a in args)}: expected a NaN, got {got[1][0]:#x}"
        else:
            assert got == expected, f"{name}{tuple(hex(a) for a in args)}"

    check()


# -- instructions with a constant operand, and comparisons that decide a branch --------------------------
# The code generator takes other paths for these (rotates by a constant: two shifts and an or; a comparison
# followed by br_if or if: one compare-and-branch), which the parameter-only module above never reaches.

ROT_AMOUNTS = (0, 1, 7, 8, 25, 31, 32, 33, 63, 64, 65, -1, -31, 0x7FFF_FFFF)


def constant_operand_module() -> str:
    funcs = []
    for ty in ("i32", "i64"):
        for name in ("rotl", "rotr"):
            for k in ROT_AMOUNTS:
                # The i32 result also goes through i64.extend_i32_u and a signed compare with 0: both see
                # its 64-bit register, which must hold the result sign-extended.
                body = f"(local.get 0) ({ty}.const {k}) {ty}.{name}"
                if ty == "i32":
                    body = f"{body} (local.set 1) (i64.extend_i32_u (local.get 1)) (i64.extend_i32_s (local.get 1))"
                    body += " i64.xor (i64.extend_i32_u (i32.lt_s (local.get 1) (i32.const 0))) i64.add"
                    funcs.append(f'(func (export "i32.{name}.{k}") (param i32) (result i64) (local i32) {body})')
                else:
                    funcs.append(f'(func (export "i64.{name}.{k}") (param i64) (result i64) {body})')
    return "(module " + "\n".join(funcs) + ")"


@pytest.fixture(scope="module")
def constant_engines():
    wat = constant_operand_module()
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    inst = hwsim.Instance(store, hwsim.Module(engine, wat), [])
    wt_store = wasmtime.Store()
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wat), [])
    return (store, inst.exports(store)), (wt_store, wt_inst.exports(wt_store))


@pytest.mark.parametrize("ty", [I32, I64], ids=["i32", "i64"])
@pytest.mark.parametrize("name", ["rotl", "rotr"])
def test_rotates_by_a_constant_match_wasmtime(constant_engines, ty, name):
    (store, ex), (wt_store, wt_ex) = constant_engines

    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(x=interesting(ty))
    def check(x):
        for k in ROT_AMOUNTS:
            export = f"{LETTER[ty]}.{name}.{k}"
            expected = wt_ex[export](wt_store, to_wasmtime(ty, x)) & (1 << 64) - 1
            assert ex[export](store, x) & (1 << 64) - 1 == expected, (export, hex(x))

    check()


def test_a_rotate_by_a_constant_is_two_shifts_and_an_or():
    wat = '(module (func (export "f") (param i32) (result i32) (i32.rotr (local.get 0) (i32.const 7))))'
    compiled = compile_module(load_module(_wat_to_wasm(wat)))
    text = [i.text for i in disassemble(compiled.code, 0)]
    start = next(i for i, t in enumerate(text) if t.startswith("slliw"))
    slli, srli, or_ = (t.replace(",", "").split() for t in text[start : start + 3])
    assert (slli[0], slli[1], slli[3], srli[0], srli[3]) == ("slliw", "t4", "0x19", "srliw", "7")
    assert slli[2] == srli[2] and or_ == ["or", srli[1], srli[1], "t4"]


COMPARES = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u")
BRANCH_SHAPES = {
    # the comparison decides: a br_if carrying a value (moves on the taken path), a bare br_if, an if
    "br_if_value": "(block (result i32) (i32.const 1) (br_if 0 {cond}) (drop) (i32.const 0))",
    "br_if": "(block (br_if 0 {cond}) (return (i32.const 0))) (i32.const 1)",
    "if": "(if (result i32) {cond} (then (i32.const 1)) (else (i32.const 0)))",
}
SECOND = {"param": "(local.get 1)", "zero": "({t}.const 0)", "const": "({t}.const -5)"}


def branch_module() -> str:
    funcs = []
    for t in ("i32", "i64"):
        for shape, body in BRANCH_SHAPES.items():
            for second, b in SECOND.items():
                for c in COMPARES:
                    cond = f"({t}.{c} (local.get 0) {b.format(t=t)})"
                    funcs.append(
                        f'(func (export "{t}.{c}.{second}.{shape}") (param {t} {t}) (result i32) '
                        f"{body.format(cond=cond)})"
                    )
            cond = f"({t}.eqz (local.get 0))"
            funcs.append(f'(func (export "{t}.eqz.{shape}") (param {t} {t}) (result i32) {body.format(cond=cond)})')
    return "(module " + "\n".join(funcs) + ")"


@pytest.fixture(scope="module")
def branch_engines():
    wat = branch_module()
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    inst = hwsim.Instance(store, hwsim.Module(engine, wat), [])
    wt_store = wasmtime.Store()
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wat), [])
    return (store, inst.exports(store)), (wt_store, wt_inst.exports(wt_store))


@pytest.mark.parametrize("ty", [I32, I64], ids=["i32", "i64"])
@pytest.mark.parametrize("shape", list(BRANCH_SHAPES))
def test_comparisons_that_decide_a_branch_match_wasmtime(branch_engines, ty, shape):
    (store, ex), (wt_store, wt_ex) = branch_engines
    t = LETTER[ty]
    names = [f"{t}.{c}.{s}.{shape}" for c in COMPARES for s in SECOND] + [f"{t}.eqz.{shape}"]

    @settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(a=interesting(ty), b=st.one_of(interesting(ty), st.just(0)))
    def check(a, b):
        for name in names:
            expected = wt_ex[name](wt_store, to_wasmtime(ty, a), to_wasmtime(ty, b))
            assert ex[name](store, a, b) == expected, (name, hex(a), hex(b))

    check()


def test_a_comparison_before_br_if_is_one_branch():
    wat = """(module (func (export "f") (param i32 i32) (result i32)
      (block (br_if 0 (i32.lt_u (local.get 0) (local.get 1))) (br_if 0 (i32.eqz (local.get 1))) (return (i32.const 0)))
      (i32.const 1)))"""
    code = compile_module(load_module(_wat_to_wasm(wat))).code
    text = [i.text for i in disassemble(code, 0)]
    assert not any(t.startswith(("sltu", "sltiu", "seqz", "snez")) for t in text)
    assert sum(t.startswith(("bltu", "beqz")) for t in text) == 2
