"""A guard on the parameters that opens a function without results returns from the prologue
(FuncCodegen.early_return): every form against wasmtime, and where the rule must not apply."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.compiler import compile_module
from hwsim.debug.cfi import compiled_function
from hwsim.riscv.disasm import disassemble
from hwsim.runtime.api import _wat_to_wasm
from hwsim.wasm import load_module

wasmtime = pytest.importorskip("wasmtime")

CMPS = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u")
MARK = "global.get $g i64.const 1 i64.add global.set $g"  # the body after the guard: count the passes


def _funcs() -> dict[str, str]:
    funcs = {}
    for t in ("i32", "i64"):
        for c in CMPS:
            funcs[f"{t}.{c}"] = f"(param {t} {t}) local.get 0 local.get 1 {t}.{c} br_if 0 {MARK}"
            funcs[f"{t}.{c} in a block"] = f"(param {t} {t}) (block local.get 1 local.get 0 {t}.{c} br_if 0 {MARK})"
        funcs[f"{t}.eqz"] = f"(param {t} {t}) local.get 1 {t}.eqz br_if 0 {MARK}"
    funcs["br_if on a parameter"] = f"(param i32 i32) local.get 0 br_if 0 {MARK}"
    funcs["br_if 1 out of the block"] = f"(param i32 i32) (block local.get 0 local.get 1 i32.lt_s br_if 1 {MARK})"
    # Not guards: the block ends before the function does; a guard's condition beyond the parameters
    funcs["block ends early"] = f"(param i32 i32) (block local.get 0 local.get 1 i32.lt_s br_if 0) {MARK}"
    funcs["declared local"] = f"(param i32 i32) (local i32) local.get 2 local.get 1 i32.lt_s br_if 0 {MARK}"
    return funcs


FUNCS = _funcs()
GUARDED = [name for name in FUNCS if name not in ("block ends early", "declared local")]
WAT = (
    '(module (global $g (export "g") (mut i64) (i64.const 0))\n'
    + "\n".join(f'(func (export "{name}") {body})' for name, body in FUNCS.items())
    + "\n"
    + '(func $down (export "down") (param i32) local.get 0 i32.eqz br_if 0 '
    + f"{MARK} local.get 0 i32.const 1 i32.sub call $down)"
    + ")"
)


@pytest.fixture(scope="module")
def engines():
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    inst = hwsim.Instance(store, hwsim.Module(engine, WAT), []).exports(store)
    wt_store = wasmtime.Store()
    wt_inst = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, WAT), []).exports(wt_store)
    return (store, inst), (wt_store, wt_inst)


def _passes(side, name: str, args) -> int:
    store, exports = side
    before = exports["g"].value(store)
    exports[name](store, *args)
    return exports["g"].value(store) - before


VALUES = st.sampled_from([0, 1, -1, 2, -2, 0x7FFF_FFFF, -0x8000_0000, 0x1_0000_0000, -(1 << 63), (1 << 63) - 1])


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(sorted(FUNCS)), a=VALUES | st.integers(-(1 << 63), (1 << 63) - 1), b=VALUES)
def test_a_guarded_function_returns_where_wasmtime_does(engines, name, a, b):
    if name.startswith("i64"):
        args = (a, b)
    else:
        args = (((a + (1 << 31)) % (1 << 32)) - (1 << 31), ((b + (1 << 31)) % (1 << 32)) - (1 << 31))
    assert _passes(engines[0], name, args) == _passes(engines[1], name, args)


def test_a_recursion_stops_in_its_prologue(engines):
    assert _passes(engines[0], "down", (1000,)) == _passes(engines[1], "down", (1000,)) == 1000


def _code(name: str) -> list[str]:
    module = load_module(_wat_to_wasm(WAT))
    compiled = compile_module(module)
    index = [e.name for e in module.exports if e.kind == 0].index(name)  # exports are the functions in order
    start = compiled.func_offsets[index]
    code = compiled.code[start : start + compiled.func_sizes[index]]
    return [f"{insn.mnemonic} {insn.op_str}".strip() for insn in disassemble(code, 0)]


@pytest.mark.parametrize("name", ["i32.lt_s", "i64.ge_u in a block", "i32.eqz", "br_if on a parameter"])
def test_the_guard_comes_before_the_register_saves(name):
    code = _code(name)
    assert code[5:8] == ["mv sp, s0", "ld s0, -0x10(sp)", "ret"], code[:10]


@pytest.mark.parametrize("name", ["block ends early", "declared local"])
def test_no_early_return_where_the_rule_does_not_hold(name):
    assert "ret" not in _code(name)[:12]


def test_the_early_epilogue_has_its_call_frame_rows():
    """CFA = sp in the early return's epilogue, then each saved register at its slot from prologue_end."""
    rows = compiled_function(44, ((9, -24),), ((24, 32), (60, 72)))
    assert rows == compiled_function(44, ((9, -24),), ((60, 72), (24, 32)))  # in either order
    assert rows != compiled_function(44, ((9, -24),), ((60, 72),))
