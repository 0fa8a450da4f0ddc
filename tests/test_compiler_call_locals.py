"""Locals in caller-saved registers in functions that call: ``prepass.call_crossing`` and the homes it allows.

A local that no call separates from a read of it (dead at every call) lives in a1-a5 and costs no save;
only the locals a call may separate from a read take callee-saved registers, which the prologue saves.
"""

from __future__ import annotations

import random

import pytest
import wasmtime
from hypothesis import given, settings
from hypothesis import strategies as st

import hwsim
from hwsim.compiler import compile_module
from hwsim.compiler.codegen.prepass import call_crossing, prepass
from hwsim.compiler.isa.riscv64 import regs as R
from hwsim.riscv.disasm import disassemble
from hwsim.runtime.api import _wat_to_wasm
from hwsim.wasm import load_module

CALLER_SAVED = {R.dwarf_number(r) for r in R.INT_CALL_LOCALS}
CALLEE_SAVED = {R.dwarf_number(r) for r in R.INT_LOCALS_UNMETERED}

# $clobber writes every caller-saved and callee-saved register it can: a caller's value survives it only
# in a callee-saved register (or the frame).
CLOBBER = (
    "(func $clobber (param i32 i32 i32) (result i32) (local i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32 i32)\n"
    + "".join(f"(local.set {i} (i32.add (local.get {i - 1}) (i32.const {i})))" for i in range(3, 15))
    + "(local.get 0) "
    + "".join(f"(local.get {i}) i32.xor " for i in range(1, 15))
    + "(call $leaf))\n"
    "(func $leaf (param i32) (result i32) (local i32 i32 i32 i32 i32)\n"
    + "".join(f"(local.set {i} (i32.mul (local.get {i - 1}) (i32.const 3)))" for i in range(1, 6))
    + "(local.get 5))\n"
    "(func $three (param i32) (result i32 i32 i32) (local.get 0) (i32.add (local.get 0) (i32.const 1))"
    " (i32.add (local.get 0) (i32.const 2)))\n"
)


def _module(funcs: str) -> str:
    return f"(module {CLOBBER} {funcs})"


def _crossing(func: str) -> list[int]:
    """The locals ``call_crossing`` reports for the last function of a module made of ``func``."""
    module = load_module(_wat_to_wasm(_module(func)))
    body = module.funcs[-1]
    ft = module.types[module.get_func_type_indices()[len(module.funcs) - 1]]
    n = len(ft.params) + body.num_locals
    info = prepass(body.body, n, lambda imm: ((), ()))
    bits = call_crossing(body.body, n, info.call_loops)
    return [i for i in range(n) if bits >> i & 1]


C = "(drop (call $clobber (i32.const 1) (i32.const 2) (i32.const 3)))"


@pytest.mark.parametrize(
    ("body", "crossing"),
    [
        # written before the call, read after: crosses
        (f"(local.set 1 (i32.const 5)) {C} (drop (local.get 1))", [1]),
        # written again after the call before its read: does not
        (f"(local.set 1 (i32.const 5)) (drop (local.get 1)) {C} (local.set 1 (i32.const 6)) (drop (local.get 1))", []),
        # a parameter's (or a zero local's) entry value read after a call
        (f"{C} (drop (local.get 0)) (drop (local.get 2))", [0, 2]),
        # a local.tee writes
        (f"{C} (drop (local.tee 1 (i32.const 1))) (drop (local.get 1))", []),
        # a loop that calls nothing keeps what was written before it
        (
            f"(local.set 1 (i32.const 3)) (loop (local.set 1 (i32.sub (local.get 1) (i32.const 1)))"
            f" (br_if 0 (local.get 1))) {C}",
            [],
        ),
        # a loop that calls: its back edge brings the call to the read at its top
        (f"(local.set 1 (i32.const 3)) (loop (drop (local.get 1)) {C} (br_if 0 (local.get 0)))", [0, 1]),
        # ... unless the loop writes it before reading it
        (f"(loop (local.set 1 (i32.const 3)) (drop (local.get 1)) {C} (br_if 0 (local.get 0)))", [0]),
        # an if that writes the local on one arm only
        (
            f"(local.set 1 (i32.const 1)) {C} (if (local.get 0) (then (local.set 1 (i32.const 2)))) (drop (local.get 1))",
            [0, 1],
        ),
        # ... and on both
        (
            f"{C} (if (i32.const 1) (then (local.set 1 (i32.const 2))) (else (local.set 1 (i32.const 3))))"
            " (drop (local.get 1))",
            [],
        ),
        # a branch out of a block skips the write
        (f"{C} (block (br_if 0 (i32.const 1)) (local.set 1 (i32.const 2))) (drop (local.get 1))", [1]),
        # a br_table to a block whose end comes after a write on the other path
        (
            f"{C} (block (block (br_table 0 1 (i32.const 0)) ) (local.set 1 (i32.const 2))) (drop (local.get 1))",
            [1],
        ),
        # code after a br is not reached: its reads are not counted
        (f"{C} (block (br 0) (drop (local.get 1))) (local.set 1 (i32.const 1)) (drop (local.get 1))", []),
        # a call inside an inner loop is a call of the outer one too
        (
            f"(local.set 1 (i32.const 1)) (loop (drop (local.get 1)) (loop {C} (br_if 0 (i32.const 0)))"
            " (br_if 0 (i32.const 0)))",
            [1],
        ),
    ],
)
def test_call_crossing(body, crossing):
    assert _crossing(f"(func (param i32) (local i32 i32) {body})") == crossing


def _compile(wat: str):
    module = load_module(_wat_to_wasm(wat))
    return module, compile_module(module)


def _frame_and_code(wat: str, index: int):
    module, compiled = _compile(wat)
    start, size = compiled.func_offsets[index], compiled.func_sizes[index]
    code = [f"{i.mnemonic} {i.op_str}" for i in disassemble(compiled.code[start : start + size], 0)]
    return compiled.frames[index], code


def test_a_function_whose_locals_are_dead_at_its_calls_saves_no_register():
    """Every local of $f is written after each call before it is read: all live in a1-a5, none is saved,
    and the only stores of its prologue and frame are ra's and the caller's fp."""
    f = (
        '(func $f (export "f") (param i32) (result i32) (local i32 i32 i32)'
        " (local.set 1 (i32.add (local.get 0) (i32.const 1)))"
        " (local.set 2 (i32.mul (local.get 1) (local.get 1)))"
        " (local.set 3 (call $clobber (local.get 1) (local.get 2) (local.get 0)))"
        " (local.set 1 (i32.add (local.get 3) (i32.const 7)))"
        " (i32.add (local.get 1) (local.get 3)))"
    )
    frame, code = _frame_and_code(_module(f), 3)
    assert frame.saved == ()
    assert set(frame.homes) <= CALLER_SAVED
    assert sum(line.startswith(("sd ", "fsd ", "sw ")) for line in code) == 2  # ra, fp
    assert sum(line.startswith(("ld ", "fld ", "lw ")) for line in code) == 2


def test_only_the_locals_that_cross_a_call_are_saved():
    f = (
        '(func $f (export "f") (param i32) (result i32) (local i32 i32)'
        " (local.set 1 (i32.const 5))"
        " (local.set 2 (call $clobber (local.get 0) (local.get 0) (local.get 0)))"
        " (i32.add (local.get 1) (local.get 2)))"
    )
    frame, _ = _frame_and_code(_module(f), 3)
    homes = frame.homes
    assert homes[1] in CALLEE_SAVED  # crosses the call
    assert homes[0] in CALLER_SAVED and homes[2] in CALLER_SAVED
    assert [reg for reg, _ in frame.saved] == [homes[1]]


def test_references_and_try_table_functions_keep_callee_saved_homes():
    """A stack map names only callee-saved homes; a landing pad is reached from inside a call."""
    ref = (
        '(func $f (export "f") (param i32) (result i32) (local externref)'
        " (drop (call $clobber (i32.const 1) (i32.const 2) (i32.const 3)))"
        " (local.set 1 (ref.null extern)) (drop (local.get 1)) (local.get 0))"
    )
    frame, _ = _frame_and_code(_module(ref), 3)
    assert frame.homes[1] not in CALLER_SAVED
    tt = (
        "(tag $t)"
        '(func $f (export "f") (param i32) (result i32) (local i32)'
        " (block $h (try_table (catch_all $h) (local.set 1 (i32.const 2))"
        " (drop (call $clobber (local.get 1) (i32.const 2) (i32.const 3))) (local.set 1 (i32.const 4))))"
        " (local.get 0))"
    )
    frame, _ = _frame_and_code(_module(tt), 3)
    assert not set(frame.homes) & CALLER_SAVED


def _both(wat: str, name: str, *args, fuel: bool = False):
    """``name(*args)`` on hwsim and on wasmtime.  ``fuel``: hwsim's code is metered and runs on a budget,
    so a loop counter a call clobbered traps (out of fuel) instead of spinning."""
    if fuel:
        config = hwsim.Config()
        config.consume_fuel = True
        engine = hwsim.Engine(config, cache=False)
    else:
        engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    if fuel:
        store.set_fuel(1 << 20)  # (the programs take at most about 60,000)
    ours = hwsim.Instance(store, hwsim.Module(engine, wat), []).exports(store)[name](store, *args)
    wt_store = wasmtime.Store()
    theirs = wasmtime.Instance(wt_store, wasmtime.Module(wt_store.engine, wat), []).exports(wt_store)[name](
        wt_store, *args
    )
    return ours, theirs


def test_arguments_from_caller_saved_homes_in_a_cycle():
    """The locals in a1-a5 passed in the opposite order (a parallel move with cycles), a pending read of one
    kept across the call, results landing in registers that home locals, read back after."""
    f = (
        '(func $f (export "f") (param i32) (result i32) (local i32 i32 i32 i32 i32)'
        " (local.set 1 (i32.add (local.get 0) (i32.const 1)))"
        " (local.set 2 (i32.add (local.get 0) (i32.const 20)))"
        " (local.set 3 (i32.add (local.get 0) (i32.const 300)))"
        " (local.set 4 (i32.add (local.get 0) (i32.const 4000)))"
        " (local.set 5 (i32.add (local.get 0) (i32.const 50000)))"
        " (local.get 5)"  # a pending read of local 5 below the call's arguments
        " (call $clobber (local.get 3) (local.get 2) (local.get 1))"
        " (call $three (local.get 4))"
        " (local.set 5 (i32.const 9))"  # local 5 written while its old value is on the stack
        " (local.set 3) (local.set 2) (local.set 1)"
        " (i32.add)"
        " (i32.add (local.get 1)) (i32.add (i32.mul (local.get 2) (i32.const 3)))"
        " (i32.add (i32.mul (local.get 3) (i32.const 5))) (i32.add (local.get 5)))"
    )
    wat = _module(f)
    frame, _ = _frame_and_code(wat, 3)
    homes = frame.homes
    assert homes[4] in CALLEE_SAVED  # (read after the first call)
    assert {homes[i] for i in (0, 1, 2, 3, 5)} == CALLER_SAVED  # (what this test is about)
    for x in (0, 7, -3, 123456):
        ours, theirs = _both(wat, "f", x)
        assert ours == theirs


# -- random programs: locals, calls, blocks, ifs and loops, against wasmtime ----------------------------


def _program(seed: int, depth: int = 3) -> str:
    """A function of 2 params, 4 variables (live across calls: callee-saved homes), 5 temporaries (each
    read only in the statement that writes it: a1-a5) and one loop counter per nesting level; statements
    mix writes, calls of $clobber/$three/itself (bounded by a fuel param, local 0), blocks, ifs and loops.
    A temporary's read may wait on the stack across a call.  It returns a digest of the variables."""
    rng = random.Random(seed)
    variables, temps = range(1, 6), range(6, 11)

    def expr(k: int) -> str:
        r = rng.random()
        if k <= 0 or r < 0.3:
            return f"(local.get {rng.choice(variables)})" if r < 0.25 else f"(i32.const {rng.randrange(-9, 99)})"
        if r < 0.5:
            return f"(call $clobber {expr(k - 1)} {expr(k - 1)} {expr(k - 1)})"
        if r < 0.58:
            return f"(call $f (i32.sub (local.get 0) (i32.const 1)) {expr(k - 1)})"
        if r < 0.65:
            return f"(i32.add (call $three {expr(k - 1)}) (i32.xor))"
        op = rng.choice(["i32.add", "i32.sub", "i32.xor", "i32.mul"])
        return f"({op} {expr(k - 1)} {expr(k - 1)})"

    def with_temps(k: int) -> str:
        """Temporaries written (in turn), then read, maybe with a call between the read and its use."""
        used = rng.sample(list(temps), rng.randrange(1, 4))
        sets = " ".join(f"(local.set {t} {expr(k if t == used[0] else 0)})" for t in used)
        value = " ".join(f"(local.get {t})" for t in used)  # every read first: the calls come after
        value += " ".join(f" {expr(k)} i32.mul i32.add" for _ in used[1:])
        return sets, value

    def stmts(level: int, count: int) -> str:
        out = []
        for _ in range(count):
            r = rng.random()
            if level < depth and r < 0.15:
                out.append(f"(if {expr(1)} (then {stmts(level + 1, 2)}) (else {stmts(level + 1, 2)}))")
            elif level < depth and r < 0.25:
                out.append(f"(block {stmts(level + 1, 2)} (br_if 0 {expr(1)}) {stmts(level + 1, 2)})")
            elif level < depth and r < 0.33:
                c = 11 + level
                out.append(
                    f"(local.set {c} (i32.const {rng.randrange(1, 4)}))"
                    f"(loop {stmts(level + 1, 3)}"
                    f" (br_if 0 (local.tee {c} (i32.sub (local.get {c}) (i32.const 1)))))"
                )
            elif r < 0.4:
                out.append(f"(drop {expr(2)})")
            elif r < 0.75:
                sets, value = with_temps(1)
                out.append(f"{sets} (local.set {rng.choice(variables)} {value})")
            else:
                out.append(f"(local.set {rng.choice(variables)} {expr(2)})")
        return " ".join(out)

    body = stmts(0, 8)
    digest = "(local.get 1)" + "".join(f" (i32.add (i32.mul (i32.const 31)) (local.get {i}))" for i in variables[1:])
    return _module(
        f'(func $f (export "f") (param i32 i32) (result i32) (local {"i32 " * (10 + depth)})'
        f" (if (i32.le_s (local.get 0) (i32.const 0)) (then (return (local.get 1)))) {body} {digest})"
    )


def test_random_programs_home_temporaries_in_caller_saved_registers():
    """(What the random programs exercise.)"""
    homes = [_frame_and_code(_program(seed), 3)[0].homes for seed in range(8)]
    assert sum(len(set(h) & CALLER_SAVED) for h in homes) >= 20


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1 << 30), x=st.integers(-(1 << 31), (1 << 31) - 1))
def test_random_programs_with_calls_agree_with_wasmtime_metered(seed, x):
    """(Metered first: a wrong home there traps out of fuel rather than looping.)"""
    wat = _program(seed)
    ours, theirs = _both(wat, "f", 2, x, fuel=True)
    assert ours == theirs


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 1 << 30), x=st.integers(-(1 << 31), (1 << 31) - 1))
def test_random_programs_with_calls_agree_with_wasmtime(seed, x):
    wat = _program(seed)
    ours, theirs = _both(wat, "f", 2, x)
    assert ours == theirs
