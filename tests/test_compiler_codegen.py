"""hwsim.compiler: branch relaxation, far calls, locals and control flow, and ``hwsim disasm``."""

from __future__ import annotations

from array import array
from pathlib import Path

import pytest

import hwsim
from hwsim.cli import main
from hwsim.compiler import compile_module
from hwsim.compiler.frames import NO_FRAME
from hwsim.compiler.isa.riscv64.masm import RiscvMasm
from hwsim.compiler.masm import BranchOutOfRange, IntCmp
from hwsim.compiler.serialize import decode, encode
from hwsim.riscv import asm as A
from hwsim.riscv.disasm import disassemble
from hwsim.wasm import load_module

REPO = Path(__file__).resolve().parents[1]


def wasm(wat: str) -> bytes:
    return hwsim.runtime.api._wat_to_wasm(wat)


def run(wat: str, name: str, *args, far_calls: bool = False):
    engine = hwsim.Engine(cache=False)
    store = hwsim.Store(engine)
    module = hwsim.Module(engine, wat)
    if far_calls:
        module._compiled = compile_module(load_module(wasm(wat)), far_calls=True)
    return hwsim.Instance(store, module, []).exports(store)[name](store, *args)


def test_short_branch_out_of_range_asks_for_long_branches():
    m = RiscvMasm()
    label = m.new_label()
    m.branch_compare(IntCmp.EQ, hwsim.compiler.regs.Reg(0, 10), None, label, True)
    m.emit(*[0x13] * 1100)  # 4.4 KiB of nops
    m.bind(label)
    with pytest.raises(BranchOutOfRange):
        m.finish()
    m = RiscvMasm(long_branches=True)
    label = m.new_label()
    m.branch_compare(IntCmp.EQ, hwsim.compiler.regs.Reg(0, 10), None, label, True)
    m.emit(*[0x13] * 1100)
    m.bind(label)
    code = m.finish()
    first = disassemble(code[:8], 0)
    assert [i.mnemonic for i in first] == ["bnez", "j"]  # inverted short branch over a jump


@pytest.mark.parametrize(
    ("cond", "when", "expected"),
    [
        (IntCmp.LT_S, True, "blt a0, a1, 8"),
        (IntCmp.LT_S, False, "bge a0, a1, 8"),
        (IntCmp.GT_S, True, "blt a1, a0, 8"),  # swapped operands: a > b is b < a
        (IntCmp.GT_S, False, "bge a1, a0, 8"),
        (IntCmp.LE_U, True, "bgeu a1, a0, 8"),
        (IntCmp.NE, True, "bne a0, a1, 8"),
    ],
)
def test_branch_compare_swaps_the_operands_of_greater_and_less_or_equal(cond, when, expected):
    m = RiscvMasm()
    label = m.new_label()
    m.branch_compare(cond, hwsim.compiler.regs.Reg(0, 10), hwsim.compiler.regs.Reg(0, 11), label, when)
    m.emit(0x13)
    m.bind(label)
    first = disassemble(m.finish(), 0)[0]
    assert f"{first.mnemonic} {first.op_str}" == expected


def test_pc_map_keeps_the_last_mark_at_each_code_offset_in_code_order():
    """Instructions that generate no code share a code offset: the pc map names the last of them there."""
    m = RiscvMasm()
    m.mark(10)
    m.mark(12)  # no code between: replaces 10 at offset 0
    m.emit(0x13)
    m.mark(20)
    m.emit(0x13, 0x13)
    m.mark(25)
    m.mark(26)
    m.mark(30)  # at the end of the code: still an entry
    m.finish()
    assert list(m.pc_map) == [0, 12, 4, 20, 12, 30]
    assert m.pc_map.typecode == "I"
    empty = RiscvMasm()
    empty.finish()
    assert list(empty.pc_map) == []


def test_function_larger_than_a_short_branch_runs_correctly():
    body = "\n".join(
        f"(local.set 1 (i32.add (local.get 1) (i32.xor (local.get 0) (i32.const {i}))))" for i in range(1500)
    )
    wat = f"""(module (func (export "f") (param i32) (result i32) (local i32)
      (block (br_if 0 (i32.eqz (local.get 0)))
        {body})
      (local.get 1)))"""
    expected = sum(7 ^ i for i in range(1500)) & 0xFFFF_FFFF
    assert run(wat, "f", 7) & 0xFFFF_FFFF == expected
    assert run(wat, "f", 0) == 0


CALLS = """(module
  (func $fib (export "fib") (param i32) (result i32)
    (if (result i32) (i32.lt_u (local.get 0) (i32.const 2)) (then (local.get 0))
      (else (i32.add (call $fib (i32.sub (local.get 0) (i32.const 1)))
                     (call $fib (i32.sub (local.get 0) (i32.const 2)))))))
  (func $sum (export "tail") (param i32 i64) (result i64)
    (if (result i64) (i32.eqz (local.get 0)) (then (local.get 1))
      (else (return_call $sum (i32.sub (local.get 0) (i32.const 1))
                              (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))))))"""


@pytest.mark.parametrize("far", [False, True])
def test_calls_near_and_far(far):
    assert run(CALLS, "fib", 15, far_calls=far) == 610
    # a million frames would need far more than the 8 MiB stack: tail calls must not grow it
    assert run(CALLS, "tail", 1_000_000, 0, far_calls=far) == 1_000_000 * 1_000_001 // 2


def test_far_call_encoding():
    module = load_module(wasm(CALLS))
    near, far = compile_module(module), compile_module(module, far_calls=True)
    assert not near.far_calls and far.far_calls
    assert "auipc ra" in " ".join(i.text for i in disassemble(far.code, 0))
    assert "auipc ra" not in " ".join(i.text for i in disassemble(near.code, 0))


def test_calls_that_cannot_reach_go_through_veneers():
    """Code past the 1 MiB reach of ``jal``: the call that crosses it goes through a veneer after its
    function, and no function is compiled twice (each has its size compiled with near calls); both calls
    still work."""
    big = "(call_indirect (type $v) (i32.const 0))\n" * 5000  # about 680 KB of code each
    wat = f"""(module (type $v (func)) (table 1 funcref) (elem (i32.const 0) $nop)
      (func $nop)
      (func $a (export "a") (result i32) (call $c))
      (func $big1 {big}) (func $big2 {big})
      (func $c (result i32) (i32.const 42))
      (func $d (export "d") (result i32) (call $c)))"""
    module = load_module(wasm(wat))
    compiled, far_only = compile_module(module), compile_module(module, far_calls=True)
    assert len(compiled.code) > 1 << 20 and compiled.far_calls
    a, c, d = 1, 4, 5  # defined-function positions of $a, $c and $d
    assert compiled.func_sizes[a] < far_only.func_sizes[a]  # near calls only: $a was not compiled again
    assert compiled.func_sizes[d] < far_only.func_sizes[d]
    # $a's jal goes to the veneer right after $a, which jumps to $c; $b1 starts after that veneer (8 bytes)
    island = compiled.func_offsets[a] + compiled.func_sizes[a]
    assert compiled.func_offsets[a + 1] == island + RiscvMasm.VENEER_SIZE
    start = compiled.func_offsets[a]
    calls = [i for i in disassemble(compiled.code[start:island], start) if i.mnemonic == "jal"]  # (jal ra, offset)
    assert [int(i.op_str, 0) for i in calls] == [island - calls[0].address]
    veneer = disassemble(compiled.code[island : island + 8], island)
    assert [i.mnemonic for i in veneer] == ["auipc", "jalr"] and veneer[0].op_str.startswith("t5,")
    assert _jump_target(veneer) == compiled.func_offsets[c]
    assert run(wat, "a") == run(wat, "d") == 42
    assert decode(encode(compiled), module).code == compiled.code  # the code cache takes islands too


def _jump_target(veneer) -> int:
    """Where ``auipc t5, hi; jalr zero, t5, lo`` (disassembled) jumps."""
    auipc, jalr = veneer
    hi = int(auipc.op_str.split(",")[1], 0)
    hi -= (hi & 0x80000) << 1  # (20 bits, signed)
    return auipc.address + (hi << 12) + int(jalr.op_str.split(",")[-1], 0)


def test_a_function_over_the_1_mib_jump_reach_is_refused_with_the_limit_named():
    """Jumps inside one function reach 1 MiB: a longer one is a compile error that says so, never a traceback
    from inside the backend (calls between functions have no such limit: veneers)."""
    from hwsim.compiler import CompileError

    big = "(call_indirect (type $v) (i32.const 0))\n" * 10000  # about 1.4 MB of code
    wat = f"""(module (type $v (func)) (table 1 funcref)
      (func (param i32) (block (br_if 0 (local.get 0)) {big})))"""
    with pytest.raises(CompileError, match=r"function too large: a jump exceeds 1 MiB"):
        compile_module(load_module(wasm(wat)))


def _linkable(size: int, calls=(), helpers=()):
    """A function for ``hwsim.compiler._link``: ``size`` bytes with a ``jal ra`` at each call's offset."""
    from hwsim.compiler import FunctionCode

    code = bytearray(size)
    for off, _ in (*calls, *helpers):
        code[off : off + 4] = A.jal("ra", 0).to_bytes(4, "little")
    call_fixups = [(off, callee, False) for off, callee in calls]
    helper_fixups = [(off, helper, False) for off, helper in helpers]
    return FunctionCode(bytes(code), [], array("I"), call_fixups, helper_fixups, [], NO_FRAME, [])


def test_link_veneers_for_helpers_and_a_function_past_its_own_reach():
    """A SIMD helper call out of reach goes through a veneer too; a call that reaches not even its function's
    island (the function is over 1 MiB) is reported for that function to be compiled with far calls."""
    from hwsim.compiler import _link
    from hwsim.compiler.isa.riscv64 import simdlib

    helper = simdlib.helper_offset("i8x16.swizzle")
    functions = [
        _linkable(8, helpers=[(0, helper)]),
        _linkable(1_200_000),
        _linkable(1_200_000, calls=[(0, 0)]),  # to function 0, 1.2 MB back; its island is 1.2 MB ahead
    ]
    linked = _link(functions, 0)
    assert linked.unreachable == [2] and linked.veneers == 2
    island = 8
    assert linked.offsets == [0, island + 8, island + 8 + 1_200_000]
    jal = disassemble(bytes(linked.code[0:4]), 0)[0]
    assert (jal.mnemonic, int(jal.op_str, 0)) == ("jal", island)
    helpers = len(linked.code) - len(simdlib.CODE)
    assert helpers % 16 == 0 and bytes(linked.code[helpers:]) == simdlib.CODE
    assert _jump_target(disassemble(bytes(linked.code[island : island + 8]), island)) == helpers + helper

    functions[2] = _linkable(8, calls=[(0, 0)])  # within reach of its island: linked through it
    linked = _link(functions, 0)
    assert linked.unreachable == [] and linked.veneers == 2
    site = linked.offsets[2]
    jal = disassemble(bytes(linked.code[site : site + 4]), site)[0]
    assert int(jal.op_str, 0) == 8  # the veneer right after the function
    assert _jump_target(disassemble(bytes(linked.code[site + 8 : site + 16]), site + 8)) == 0


def test_many_params_and_results_use_the_abi_area():
    params = " ".join(["i64"] * 10 + ["f64"] * 10)
    sums = "(i64.add " * 9 + "(local.get 0)" + "".join(f" (local.get {i}))" for i in range(1, 10))
    wat = f"""(module (func $g (param {params}) (result i64 f64 i64 i64 i64 i64 i64 i64 i64 i64 i64)
        {sums} (local.get 19) (local.get 9) (local.get 8) (local.get 7) (local.get 6) (local.get 5)
        (local.get 4) (local.get 3) (local.get 2) (local.get 1))
      (func (export "f") (result i64 f64 i64)
        (call $g {" ".join(f"(i64.const {i})" for i in range(10))} {" ".join(f"(f64.const {i}.5)" for i in range(10))})
        (drop) (drop) (drop) (drop) (drop) (drop) (drop) (drop)))"""
    assert run(wat, "f") == [45, 9.5, 9]


@pytest.mark.parametrize(
    "exit", ["return", "br 0", "i32.const 1 br_if 0 return", "i32.const 0 br_if 0 return", "i32.const 0 br_table 0 0"]
)
def test_return_with_values_below_the_results(exit):
    # Found by hwsim fuzz (seeds 3549, 12783): the results were stored into the function frame's slots,
    # overwriting a spilled result before it was read (both results came back as table.size).
    wat = f"""(module (table 5 funcref)
      (func (export "f") (result i32 i32)
        (f64.const 5) (i32.reinterpret_f32 (f32.const 6)) (table.size 0) {exit}))"""
    assert run(wat, "f") == [0x40C0_0000, 5]


def test_disasm_command(tmp_path, capsys):
    path = tmp_path / "m.wasm"
    path.write_bytes(
        wasm(
            '(module (memory 1) (func $add (export "add") (param i32 i32) (result i32) '
            '(i32.add (local.get 0) (local.get 1))) (func (export "ld") (param i32) (result i64) '
            "(i64.load offset=8 (local.get 0))))"
        )
    )
    assert main(["disasm", str(path), "--func", "ld"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == "function 1 ld  ([i32] -> [i64]; 60 bytes of RISC-V code)"
    assert "  0x003d  i64.load offset=8\n" in out
    assert "ld t0, 8(t5)" in out
    assert main(["disasm", str(path), "--func", "nope"]) == 2
    assert "no function 'nope'" in capsys.readouterr().err


def test_disasm_builds_a_driver_directory(capsys):
    """Found by a newcomer: hwsim run takes a driver directory, hwsim disasm refused one ("Is a directory")."""
    assert main(["disasm", str(REPO / "drivers" / "uart16550"), "--func", "probe"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("function ") and " probe  (" in out.splitlines()[0] and "call " in out
    assert main(["disasm", str(REPO / "drivers" / "include")]) == 2
    assert "no .c files to build" in capsys.readouterr().err


def test_every_decoded_opcode_has_a_handler_in_the_dispatch_table():
    from hwsim.compiler.codegen import DISPATCH
    from hwsim.compiler.codegen.simd import FUSED
    from hwsim.wasm import opcodes as op

    assert set(DISPATCH) == set(op.NAMES) | {FUSED}  # and the placeholder of a folded SIMD instruction
    assert all(callable(handler) and isinstance(static, tuple) for handler, static in DISPATCH.values())


# -- a function that calls nothing homes locals in argument registers ------------------------------------

LEAF = """(module
  (func (export "leaf") (param i32 i32 i32 i32 i32 i32 i32 i32 i32 i32) (result i32 i32 i32 i32 i32)
    (local $i i32) (local $acc i64)
    (loop $l
      (local.set $acc (i64.add (local.get $acc) (i64.extend_i32_u (i32.mul (local.get 0) (local.get $i)))))
      (local.set 0 (i32.add (local.get 0) (local.get 9)))
      (br_if $l (i32.lt_u (local.tee $i (i32.add (local.get $i) (i32.const 1))) (local.get 8))))
    ;; results in other argument registers than the locals they come from (a parallel move)
    (local.get 9) (local.get 1) (i32.wrap_i64 (local.get $acc)) (local.get 0) (local.get 3))
  (func (export "caller") (param i32) (result i32)
    (local $keep i32) (local.set $keep (i32.mul (local.get 0) (i32.const 3)))
    (drop (call $id (i32.const 7)))
    (i32.add (local.get $keep) (call $id (local.get 0))))
  (func $id (param i32) (result i32) (local.get 0)))"""


def leaf_model(args):
    a = list(args)
    acc = i = 0
    while True:
        acc += (a[0] * i) & 0xFFFF_FFFF
        a[0] = (a[0] + a[9]) & 0xFFFF_FFFF
        i += 1
        if not i < a[8]:
            break
    return [a[9], a[1], acc & 0xFFFF_FFFF, a[0], a[3]]


@pytest.mark.parametrize("args", [tuple(range(1, 11)), (5, 6, 7, 8, 9, 10, 11, 12, 40, 0x7FFF_FFFF), (0,) * 10])
def test_a_leaf_function_keeps_params_and_locals_in_argument_registers(args):
    results = run(LEAF, "leaf", *args)
    assert [r & 0xFFFF_FFFF for r in results] == leaf_model(args)


def test_only_a_function_that_calls_nothing_uses_argument_registers_for_locals():
    compiled = compile_module(load_module(wasm(LEAF)))
    code, offsets = compiled.code, compiled.func_offsets
    leaf = [i.text for i in disassemble(code[offsets[0] : offsets[1]], 0)]
    caller = [i.text for i in disassemble(code[offsets[1] : offsets[2]], 0)]
    # leaf: seven locals in use, six in a0-a5 and one in s4, the only register the prologue saves
    assert [t.split(",")[0] for t in leaf if t.startswith("sd s")] == ["sd s0", "sd s4"]  # s0: the frame pointer
    assert [t.split(",")[0] for t in caller if t.startswith("sd s")] == ["sd s0", "sd s4", "sd s5"]  # across calls
    assert run(LEAF, "caller", 5) == 20


# -- a result goes straight to the local that the next instruction sets ----------------------------------

DIRECT = """(module
  (func (export "inc") (param i32) (result i32) (local.set 0 (i32.add (local.get 0) (i32.const 1))) (local.get 0))
  (func (export "pending") (param i32) (result i32)
    ;; the first local.get is still pending on the stack when local 0 changes: it must see the old value
    (local.get 0) (local.set 0 (i32.add (local.get 0) (i32.const 1))) (local.get 0) (i32.sub))
  (func (export "tee") (param f64 f64) (result f64)
    (f64.mul (local.tee 1 (f64.add (local.get 0) (local.get 1))) (local.get 1)))
  (func (export "load") (param i32) (result i64) (local i64)
    (i64.store (i32.const 8) (i64.const 0x1122334455667788))
    (local.set 1 (i64.load (i32.const 8))) (i64.add (local.get 1) (i64.extend_i32_u (local.get 0))))
  (memory 1))"""


def test_a_result_goes_straight_to_the_local_the_next_instruction_sets():
    assert run(DIRECT, "inc", 41) == 42
    assert run(DIRECT, "pending", 5) == -1
    assert run(DIRECT, "tee", 1.5, 2.0) == 3.5 * 3.5
    assert run(DIRECT, "load", 2) == 0x1122334455667788 + 2
    compiled = compile_module(load_module(wasm(DIRECT)))
    inc = [i.text for i in disassemble(compiled.code[: compiled.func_offsets[1]], 0)]
    add = next(t for t in inc if t.startswith("addiw") and t.endswith(", 1"))
    _, rd, rs, _ = add.replace(",", "").split()
    assert rd == rs  # the local's own register, no move after
    assert not any(t.startswith("mv ") and t.endswith(", " + rd) for t in inc[inc.index(add) :][:2])


def rotation_module(n: int) -> str:
    """``n`` i64 locals (1..n: more than the registers, so some live in frame slots) and two f32 ones, rotated
    ``k`` times as SHA-256 rotates its working variables (``local.set i (local.get i-1)``), then summed."""
    sets = "\n".join(f"(local.set {i} (local.get {i - 1}))" for i in range(n, 1, -1))
    init = "\n".join(f"(local.set {i} (i64.const {(i - 1) * 1000 + 7}))" for i in range(1, n + 1))
    weights = "\n".join(f"(drop (local.get {i}))" for i in range(1, n + 1, 3))  # some locals weigh more
    total = " ".join(f"(local.get {i}) (i64.mul (i64.const {i})) i64.add" for i in range(1, n + 1))
    f1, f2 = n + 1, n + 2
    return f"""(module (func (export "f") (param $k i32) (result i64)
      (local {"i64 " * n}f32 f32)
      {init}
      (local.set {f1} (f32.const 1.5)) (local.set {f2} (f32.const -2.25))
      (loop $l
        {weights}
        (local.set {f2} (local.get {f1})) (local.set {f1} (f32.add (local.get {f1}) (f32.const 1)))
        (local.set 1 (i64.add (local.get {n}) (local.get {n - 1})))
        {sets}
        (br_if $l (local.tee $k (i32.sub (local.get $k) (i32.const 1)))))
      (i64.const 0) {total}
      (i64.trunc_f32_s (f32.mul (local.get {f1}) (local.get {f2}))) i64.add))"""


@pytest.mark.parametrize("n", [6, 20])
@pytest.mark.parametrize("k", [1, 7])
def test_locals_copied_between_registers_and_frame_slots(n, k):
    v = [i * 1000 + 7 for i in range(n)]
    f1, f2 = 1.5, -2.25
    for _ in range(k):
        f2, f1 = f1, f1 + 1
        s = v[n - 1] + v[n - 2]  # local 0 first, then each local takes the one below it
        v = [s, s, *v[1 : n - 1]]
    total = sum(x * (i + 1) for i, x in enumerate(v)) + int(f1 * f2)
    assert run(rotation_module(n), "f", k) & (1 << 64) - 1 == total & (1 << 64) - 1


def test_every_instruction_compiled_as_a_call_keeps_locals_out_of_caller_saved_registers():
    """The pre-pass's list of calling instructions covers every handler that emits a call or a builtin call
    (else a function could home a local in an argument register that the call then clobbers)."""
    import inspect

    from hwsim.compiler.codegen import prepass, visitor

    calling = {
        code
        for code, (handler, _) in visitor.DISPATCH.items()
        if any(s in inspect.getsource(handler) for s in ("self.builtin(", "call.emit_"))
    }
    assert calling and calling <= prepass._CALLS
    assert prepass._CALLS.isdisjoint(
        {
            op
            for op, (h, _) in visitor.DISPATCH.items()
            if h.__name__.endswith(("_fill", "_copy")) and "memory" in h.__name__
        }
    )


def test_saved_registers_read_from_the_code_agree_with_every_frame_description():
    """abi.saved_registers (what the exception unwinder and the collector's root walk restore) reads the
    prologue's saves from the code; the frame description (what a debugger gets) is the compiler's own
    record.  They agree for every function shape: with no saves, with saves, and after each kind of guard
    whose early return comes before the saves."""
    from hwsim.compiler.isa.riscv64.abi import saved_registers

    locals_ = " ".join(f"(local $l{i} i64)" for i in range(6))
    body = " ".join(f"(local.set $l{i} (i64.add (local.get 0) (i64.const {i})))" for i in range(6))
    calls = " ".join(f"(call $leaf (local.get $l{i}))" for i in range(6))
    guards = [
        "",
        "(br_if 0 (i64.eqz (local.get 0)))",
        "(br_if 0 (local.get 1))",
        "(br_if 0 (i32.lt_u (local.get 1) (local.get 2)))",
        "(br_if 0 (i32.ge_s (local.get 1) (local.get 2)))",
    ]
    funcs = [
        f"(func (param i64 i32 i32) {locals_} {guard} {body} {calls})" if guard or i % 2 else "(func (param i64))"
        for i, guard in enumerate(guards)
    ]
    compiled = compile_module(
        load_module(wasm(f"(module (func $leaf (param i64)) {' '.join(funcs)})")),
    )
    saved = [saved_registers(compiled.code, start) for start in compiled.func_offsets]
    assert saved == [frame.saved for frame in compiled.frames]
    assert saved[0] == saved[1] == () and all(saved[2:])  # the leaves save nothing, the guarded ones do
    for start in compiled.func_offsets[2:]:  # the guards did open with an early return, before any save
        assert A.jalr(0, 1, 0) in array("I", compiled.code[start : start + 4 * 12])
