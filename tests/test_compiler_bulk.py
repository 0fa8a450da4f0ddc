"""memory.copy and memory.fill compiled in place (RiscvMasm.memory_copy/memory_fill), and their host path.

Small operations run in compiled code: bounds checked first (a trap writes nothing), then a word loop and
a byte tail, memmove backwards when the destination starts inside the source.  The builtin (the host)
carries out those above ``BULK_INLINE_MAX`` and every one on a memory whose descriptor says so (memory
control, a bulk-access observer on the Store), read at run time: an observer added after the module was
compiled still sees every operation.  The wasm testsuite's bulk scripts run through the same code
(tests/test_spectest_scope.py); these tests pin the boundaries and say which path ran.
"""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.compiler.abi import BULK_INLINE_MAX
from hwsim.compiler.builtins import Builtin
from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api
from hwsim.runtime import builtins as host_builtins

PAGE = 4096
WASM_PAGE = 65536
BULK = """(module (memory (export "m") 1 4)
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2))))"""


@pytest.fixture
def host_calls(monkeypatch):
    """Counts of the host builtins memory.copy and memory.fill run (each still runs)."""
    counts = {Builtin.memory_copy: 0, Builtin.memory_fill: 0}
    for which in counts:
        real = host_builtins.DISPATCH[which]

        def counted(store, instance, m, real=real, which=which):
            counts[which] += 1
            real(store, instance, m)

        monkeypatch.setitem(host_builtins.DISPATCH, which, counted)
    return counts


def instance(wat: str = BULK):
    store = api.Store()
    exports = api.Instance(store, api.Module(store.engine, wat), []).exports(store)
    return store, exports


def pattern(n: int, seed: int = 1) -> bytes:
    return bytes((seed + i * 37 + (i >> 8)) & 0xFF for i in range(n))


BIG = """(module (memory (export "m") 4)
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2))))"""
SPAN = 3 * PAGE  # across host pages; the copies' ends cross page boundaries


@pytest.fixture(scope="module")
def world():
    return instance()


@settings(max_examples=examples(300), deadline=None)
@given(
    src=st.integers(0, SPAN),
    dst=st.integers(0, SPAN),
    n=st.one_of(st.integers(0, 40), st.integers(0, SPAN)),
    seed=st.integers(0, 255),
)
def test_copy_in_place_is_memmove(world, src, dst, n, seed):
    store, ex = world
    mem = ex["m"]
    model = bytearray(pattern(SPAN + 64, seed))
    mem.write(store, bytes(model), 0)
    n = min(n, SPAN - src, SPAN - dst)
    ex["copy"](store, dst, src, n)
    model[dst : dst + n] = bytes(model[src : src + n])
    assert mem.read(store, 0, SPAN + 64) == bytes(model)


@settings(max_examples=examples(200), deadline=None)
@given(dst=st.integers(0, SPAN), n=st.integers(0, SPAN), value=st.integers(-(2**31), 2**31 - 1))
def test_fill_in_place_writes_the_low_byte(world, dst, n, value):
    store, ex = world
    mem = ex["m"]
    model = bytearray(pattern(SPAN + 64))
    mem.write(store, bytes(model), 0)
    n = min(n, SPAN - dst)
    ex["fill"](store, dst, value, n)
    model[dst : dst + n] = bytes([value & 0xFF]) * n
    assert mem.read(store, 0, SPAN + 64) == bytes(model)


@pytest.mark.parametrize("n", [0, 1, 7, 8, 9, 257, BULK_INLINE_MAX])
def test_small_operations_never_reach_the_host(host_calls, n):
    store, ex = instance(BIG)
    model = bytearray(pattern(n + 16))
    ex["m"].write(store, bytes(model), 0)
    ex["fill"](store, 3, 0x5A, n)
    model[3 : 3 + n] = b"\x5a" * n
    ex["copy"](store, 5, 0, n)
    model[5 : 5 + n] = bytes(model[0:n])
    ex["copy"](store, 0, 6, n)
    model[0:n] = bytes(model[6 : 6 + n])
    assert host_calls == {Builtin.memory_copy: 0, Builtin.memory_fill: 0}
    assert ex["m"].read(store, 0, n + 16) == bytes(model)


def test_large_operations_go_to_the_host_and_agree(host_calls):
    store, ex = instance(BIG)
    mem = ex["m"]
    n = BULK_INLINE_MAX + 1
    data = pattern(n + 100)
    mem.write(store, data, 0)
    ex["copy"](store, 3, 0, n)  # overlapping, destination above: backwards
    ex["fill"](store, n + 50, 0x1FF, 2 * n)
    expected = bytearray(data + bytes(2 * n - 40))  # to 10 bytes past the fill
    expected[3 : 3 + n] = data[:n]
    expected[n + 50 : 3 * n + 50] = b"\xff" * (2 * n)
    assert mem.read(store, 0, len(expected)) == bytes(expected)
    assert host_calls == {Builtin.memory_copy: 1, Builtin.memory_fill: 1}


# -- bounds: checked before anything is written (bulk memory, WebAssembly 2.0) -------------------------------


@pytest.mark.parametrize(
    "call, args",
    [
        ("fill", (WASM_PAGE - 3, 1, 7)),  # the last 3 bytes are in bounds, the rest not: nothing written
        ("fill", (WASM_PAGE + 1, 1, 0)),  # zero bytes past the end: still a trap
        ("fill", (-1, 1, 1)),  # an i32 offset is unsigned: 0xffffffff
        ("fill", (0, 1, -1)),  # n = 0xffffffff: the host path, which traps too
        ("copy", (WASM_PAGE - 3, 0, 7)),  # destination out of bounds
        ("copy", (0, WASM_PAGE - 3, 7)),  # source out of bounds
        ("copy", (WASM_PAGE + 1, 0, 0)),
        ("copy", (0, WASM_PAGE + 1, 0)),
        ("copy", (-8, 0, 4)),
    ],
)
def test_out_of_bounds_traps_with_nothing_written(call, args, host_calls):
    store, ex = instance()
    mem = ex["m"]
    mem.write(store, pattern(WASM_PAGE), 0)
    with pytest.raises(api.Trap) as info:
        ex[call](store, *args)
    assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    assert info.value.summary.startswith("out of bounds memory access at wasm function ")
    assert mem.read(store, 0, WASM_PAGE) == pattern(WASM_PAGE)
    assert sum(host_calls.values()) == (1 if args[2] == -1 else 0)


def test_zero_bytes_at_the_very_end_are_allowed():
    store, ex = instance()
    ex["fill"](store, WASM_PAGE, 1, 0)
    ex["copy"](store, WASM_PAGE, WASM_PAGE, 0)
    ex["copy"](store, WASM_PAGE - 4, WASM_PAGE - 8, 4)  # the last bytes, in bounds
    assert ex["m"].read(store, WASM_PAGE - 8, WASM_PAGE) == bytes(8)


def test_the_trap_names_the_bulk_instruction():
    store, ex = instance("""(module (memory 1)
      (func (export "f") (param i32)
        (drop (i32.const 1))
        (memory.fill (local.get 0) (i32.const 0) (i32.const 16))))""")
    with pytest.raises(api.Trap) as info:
        ex["f"](store, WASM_PAGE - 8)
    assert info.value.wasm_offset is not None and info.value.func_index == 0
    assert info.value.insn == "ebreak"
    with pytest.raises(api.Trap) as host:  # the host path (observer) names the same instruction
        store._store.add_bulk_access_observer(lambda *a: None)
        ex["f"](store, WASM_PAGE - 8)
    assert host.value.wasm_offset == info.value.wasm_offset and host.value.insn == "ecall"


GROW = """(module (memory (export "m") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2))))"""


def test_memory_grow_moves_the_bound():
    store, ex = instance(GROW)
    with pytest.raises(api.Trap):
        ex["fill"](store, WASM_PAGE - 4, 2, 8)
    assert ex["grow"](store, 1) == 1
    ex["fill"](store, WASM_PAGE - 4, 2, 8)
    assert ex["m"].read(store, WASM_PAGE - 4, WASM_PAGE + 4) == b"\x02" * 8


# -- memory64 and several memories ----------------------------------------------------------------------


MEM64 = """(module (memory (export "m") i64 1)
  (func (export "copy") (param i64 i64 i64) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i64 i32 i64) (memory.fill (local.get 0) (local.get 1) (local.get 2))))"""


def test_memory64_offsets_do_not_wrap_around(host_calls):
    store, ex = instance(MEM64)
    mem = ex["m"]
    mem.write(store, pattern(64), 0)
    for call, args in [
        ("fill", (2**64 - 4, 9, 8)),  # offset + n carries out of 64 bits: out of bounds, not address 4
        ("copy", (2**64 - 4, 0, 8)),
        ("copy", (0, 2**64 - 4, 8)),
        ("fill", (0, 9, 2**63)),  # the host path
    ]:
        with pytest.raises(api.Trap) as info:
            ex[call](store, *args)
        assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    assert mem.read(store, 0, 64) == pattern(64)
    ex["copy"](store, 1, 0, 40)
    ex["fill"](store, WASM_PAGE - 2, 0x33, 2)
    assert mem.read(store, 0, 41) == pattern(64)[:1] + pattern(64)[:40]
    assert mem.read(store, WASM_PAGE - 2, WASM_PAGE) == b"\x33\x33"
    assert host_calls[Builtin.memory_fill] == 1 and host_calls[Builtin.memory_copy] == 0


TWO = """(module (memory (export "a") 1) (memory (export "b") i64 2)
  (func (export "a_to_b") (param i64 i32 i32) (memory.copy 1 0 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "b_to_a") (param i32 i64 i32) (memory.copy 0 1 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill_b") (param i64 i32 i64) (memory.fill 1 (local.get 0) (local.get 1) (local.get 2))))"""


def test_copies_between_two_memories_check_each_bound(host_calls):
    store, ex = instance(TWO)
    a, b = ex["a"], ex["b"]
    a.write(store, pattern(300, 3), 0)
    ex["a_to_b"](store, 2 * WASM_PAGE - 300, 0, 300)  # to the end of b
    assert b.read(store, 2 * WASM_PAGE - 300, 2 * WASM_PAGE) == pattern(300, 3)
    ex["fill_b"](store, 0, 0x44, 10)
    ex["b_to_a"](store, 7, 0, 12)
    assert a.read(store, 0, 20) == pattern(300, 3)[:7] + b"\x44" * 10 + b"\0\0" + pattern(300, 3)[19:20]
    with pytest.raises(api.Trap):
        ex["b_to_a"](store, WASM_PAGE - 4, 0, 8)  # fits b, not a
    with pytest.raises(api.Trap):
        ex["a_to_b"](store, 0, WASM_PAGE - 4, 8)  # fits b, not a
    assert sum(host_calls.values()) == 0


# -- the host path: observers and memory control, read at run time -----------------------------------------


def test_an_observer_added_after_instantiation_sees_every_operation(host_calls):
    store, ex = instance()
    seen = []
    remove = store._store.add_bulk_access_observer(lambda base, off, n, write, pc: seen.append((off, n, write)))
    ex["fill"](store, 16, 7, 100)
    ex["copy"](store, 200, 16, 50)
    assert seen == [(16, 100, True), (16, 50, False), (200, 50, True)]
    assert host_calls == {Builtin.memory_copy: 1, Builtin.memory_fill: 1}
    remove()  # compiled code runs them again
    ex["fill"](store, 16, 8, 100)
    assert len(seen) == 3 and host_calls[Builtin.memory_fill] == 1
    assert ex["m"].read(store, 16, 116) == b"\x08" * 100


def test_memory_control_sends_bulk_operations_to_the_host_which_checks_every_page_first(host_calls):
    store, ex = instance()
    mem = ex["m"]
    mem.write(store, pattern(3 * PAGE), 0)
    mem.protect(store, PAGE, PAGE, 1)  # read-only
    with pytest.raises(api.Trap) as info:
        ex["fill"](store, PAGE - 8, 0, 16)  # the first 8 bytes are writable: nothing is written all the same
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED
    with pytest.raises(api.Trap):
        ex["copy"](store, 2 * PAGE - 4, 0, 8)
    assert mem.read(store, 0, 3 * PAGE) == pattern(3 * PAGE)
    ex["copy"](store, 0, PAGE, 8)  # reading the read-only page is fine
    assert mem.read(store, 0, 8) == pattern(3 * PAGE)[PAGE : PAGE + 8]
    assert host_calls == {Builtin.memory_copy: 2, Builtin.memory_fill: 1}


# -- the cold path keeps every register --------------------------------------------------------------------


def live_values_module(live: int) -> str:
    """``f(d, s, n)`` keeps ``live`` values on the stack (registers, then spill slots) across memory.copy
    and memory.fill with computed operands, then sums them."""
    pushes = "\n".join(f"(i64.mul (i64.extend_i32_u (local.get 0)) (i64.const {k + 3}))" for k in range(live))
    adds = "\n".join("i64.add" for _ in range(live))
    return f"""(module (memory (export "m") 1)
      (func (export "f") (param i32 i32 i32) (result i64)
        {pushes}
        (memory.copy (i32.add (local.get 0) (i32.const 1)) (i32.add (local.get 1) (i32.const 0))
                     (i32.sub (local.get 2) (i32.const 1)))
        (memory.fill (i32.add (local.get 0) (i32.const 100)) (i32.const 0x77) (i32.add (local.get 2) (i32.const 0)))
        (i64.const 0)
        {adds}))"""


@pytest.mark.parametrize("live", [0, 1, 4, 8, 12, 14])
@pytest.mark.parametrize("path", ["inline", "host"])
def test_values_live_across_either_path_survive(live, path, host_calls):
    store, ex = instance(live_values_module(live))
    if path == "host":
        store._store.add_bulk_access_observer(lambda *a: None)
    mem = ex["m"]
    mem.write(store, pattern(64), 0)
    d, s, n = 2, 40, 9
    assert ex["f"](store, d, s, n) == sum(d * (k + 3) for k in range(live))
    expected = bytearray(pattern(64) + bytes(200))
    expected[d + 1 : d + n] = pattern(64)[s : s + n - 1]
    expected[d + 100 : d + 100 + n] = b"\x77" * n
    assert mem.read(store, 0, len(expected)) == bytes(expected)
    assert sum(host_calls.values()) == (2 if path == "host" else 0)
