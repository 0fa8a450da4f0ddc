"""Atomic instructions (threads proposal) compiled to RV64A, checked against wasmtime and Python.

Every load, store, read-modify-write and compare-exchange at every width runs
on random operands at random aligned addresses, in hwsim and in wasmtime (the
oracle); the results and the memory around the access must agree.  Traps
(unaligned, out of bounds, alignment before bounds), wait and notify on shared
and unshared memories, and the RV64A encodings are checked word for word.
"""

from __future__ import annotations

import random

import pytest
import wasmtime

import hwsim
from hwsim.riscv import asm as A
from hwsim.riscv.disasm import disassemble_one
from hwsim.wasm.atomics import ATOMICS, AtomicKind

MASK64 = (1 << 64) - 1
REGION = 64  # bytes compared after each access


def _func(name: str, a) -> str:
    t = "i32" if a.valtype == 0x7F else "i64"
    if a.kind is AtomicKind.LOAD:
        return f'(func (export "{name}") (param i32) (result {t}) ({a.name} (local.get 0)))'
    if a.kind is AtomicKind.STORE:
        return f'(func (export "{name}") (param i32 {t}) ({a.name} (local.get 0) (local.get 1)))'
    if a.kind is AtomicKind.RMW:
        return f'(func (export "{name}") (param i32 {t}) (result {t}) ({a.name} (local.get 0) (local.get 1)))'
    return (
        f'(func (export "{name}") (param i32 {t} {t}) (result {t}) '
        f"({a.name} (local.get 0) (local.get 1) (local.get 2)))"
    )


ACCESSES = {a.name: a for a in ATOMICS.values() if a.kind not in (AtomicKind.NOTIFY, AtomicKind.WAIT, AtomicKind.FENCE)}

WAT = (
    '(module (memory (export "mem") 1 1 shared)\n'
    ' (func (export "poke") (param i32 i64) (i64.store (local.get 0) (local.get 1)))\n'
    ' (func (export "peek") (param i32) (result i64) (i64.load (local.get 0)))\n'
    + "\n".join(_func(name, a) for name, a in ACCESSES.items())
    + "\n)"
)


class _Wasmtime:
    def __init__(self, wat: str) -> None:
        config = wasmtime.Config()
        config.shared_memory = True
        engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(engine)
        self.exports = wasmtime.Instance(self.store, wasmtime.Module(engine, wat), []).exports(self.store)

    def call(self, name: str, *args):
        return self.exports[name](self.store, *args)


class _Hwsim:
    def __init__(self, wat: str) -> None:
        engine = hwsim.Engine()
        self.store = hwsim.Store(engine)
        self.exports = hwsim.Instance(self.store, hwsim.Module(engine, wat), []).exports(self.store)

    def call(self, name: str, *args):
        return self.exports[name](self.store, *args)


@pytest.fixture(scope="module")
def pair():
    return _Hwsim(WAT), _Wasmtime(WAT)


def _operand(rng: random.Random, t: int) -> int:
    bits = 32 if t == 0x7F else 64
    v = rng.choice([0, 1, -1, rng.getrandbits(8), rng.getrandbits(16), rng.getrandbits(bits)])
    v &= (1 << bits) - 1
    return v - (1 << bits) if v >> (bits - 1) else v  # wasmtime-py takes signed values


@pytest.mark.parametrize("name", sorted(ACCESSES))
def test_every_atomic_matches_wasmtime(pair, name):
    a = ACCESSES[name]
    rng = random.Random(name)
    hw, wt = pair
    for _ in range(40):
        for offset in range(0, REGION, 8):
            word = rng.getrandbits(64)
            word = word - (1 << 64) if word >> 63 else word
            hw.call("poke", offset, word)
            wt.call("poke", offset, word)
        addr = rng.randrange(0, REGION, a.size)
        args = [addr] + [
            _operand(rng, a.valtype) for _ in range({"load": 0, "store": 1, "rmw": 1}.get(a.kind.value, 2))
        ]
        if a.kind is AtomicKind.CMPXCHG and rng.random() < 0.5:  # make the comparison succeed half the time
            current = wt.call("peek", addr & ~7)
            field = (current & MASK64) >> (8 * (addr & 7)) & ((1 << 8 * a.size) - 1)
            args[1] = _operand_like(field, a.valtype)
        got, want = hw.call(name, *args), wt.call(name, *args)
        assert got == want, (name, args)
        for offset in range(0, REGION, 8):
            assert hw.call("peek", offset) == wt.call("peek", offset), (name, args, offset)


def _operand_like(value: int, t: int) -> int:
    bits = 32 if t == 0x7F else 64
    return value - (1 << bits) if value >> (bits - 1) else value


def test_cmpxchg_compares_the_wrapped_expected_value():
    hw = _Hwsim(WAT)
    hw.call("poke", 0, 0x0000_0000_0000_0042)
    # 0x142 wrapped to 8 bits is 0x42: the exchange happens; the result is the old byte, zero-extended
    assert hw.call("i32.atomic.rmw8.cmpxchg_u", 0, 0x142, 0x99) == 0x42
    assert hw.call("peek", 0) == 0x99
    assert hw.call("i64.atomic.rmw32.cmpxchg_u", 0, 0x7_0000_0099, -1) == 0x99
    assert hw.call("peek", 0) == 0xFFFF_FFFF
    assert hw.call("i64.atomic.load32_u", 0) == 0xFFFF_FFFF  # zero-extended
    assert hw.call("i32.atomic.load", 0) == -1


@pytest.mark.parametrize(
    "name, args",
    [
        ("i32.atomic.load", (1,)),
        ("i64.atomic.store", (4, 0)),
        ("i32.atomic.rmw16.add_u", (3, 1)),
        ("i64.atomic.rmw.cmpxchg", (65535, 0, 0)),  # unaligned and out of bounds: alignment is checked first
    ],
)
def test_unaligned_atomics_trap(pair, name, args):
    hw, wt = pair
    with pytest.raises(hwsim.Trap) as info:
        hw.call(name, *args)
    assert info.value.trap_code is hwsim.TrapCode.HEAP_MISALIGNED
    assert "wasm trap: unaligned atomic" in str(info.value)
    with pytest.raises(wasmtime.Trap, match="unaligned atomic"):
        wt.call(name, *args)


def test_out_of_bounds_atomics_trap(pair):
    hw, _ = pair
    for name, args in (
        ("i64.atomic.load", (65536,)),
        ("i32.atomic.rmw8.or_u", (65536, 1)),
        ("i32.atomic.store", (65532 + 4, 1)),
    ):
        with pytest.raises(hwsim.Trap) as info:
            hw.call(name, *args)
        assert info.value.trap_code is hwsim.TrapCode.MEMORY_OUT_OF_BOUNDS
    assert hw.call("i32.atomic.rmw.add", 65532, 0) == hw.call("i32.atomic.load", 65532)  # the last word is in bounds


def test_atomics_with_offsets_and_many_live_values():
    wat = """(module (memory 1 1 shared)
      (func (export "f") (param $p i32) (result i64)
        (local $x i64)
        (i64.add (i64.const 1) (i64.const 2)) (i64.const 3) (i64.const 4) (i64.const 5) (i64.const 6)
        (i64.atomic.rmw16.cmpxchg_u offset=4098 (local.get $p) (i64.const 0) (i64.const 0xbeef))
        (i64.atomic.rmw8.xchg_u offset=4101 (local.get $p) (i64.const 0x1ff))
        (i64.add) (i64.add) (i64.add) (i64.add) (i64.add) (i64.add)
        (i64.atomic.load offset=4096 (local.get $p))
        (i64.add)))"""
    hw, wt = _Hwsim(wat), _Wasmtime(wat)
    for p in (0, 8, 800):
        assert hw.call("f", p) == wt.call("f", p)


def test_atomic_fence_compiles_to_fence_rw_rw():
    hw = _Hwsim('(module (func (export "f") (result i32) atomic.fence (i32.const 7)))')
    assert hw.call("f") == 7


WAIT_WAT = """(module (memory {shared_max} {shared})
  (func (export "poke") (param i32 i64) (i64.store (local.get 0) (local.get 1)))
  (func (export "notify") (param i32 i32) (result i32) (memory.atomic.notify (local.get 0) (local.get 1)))
  (func (export "wait32") (param i32 i32 i64) (result i32) (memory.atomic.wait32 (local.get 0) (local.get 1) (local.get 2)))
  (func (export "wait64") (param i32 i64 i64) (result i32) (memory.atomic.wait64 (local.get 0) (local.get 1) (local.get 2))))"""


def test_wait_and_notify_on_a_shared_memory():
    hw = _Hwsim(WAIT_WAT.format(shared_max="1 1", shared="shared"))
    hw.call("poke", 8, 0x1_0000_0005)
    assert hw.call("notify", 8, 10) == 0  # nobody waits
    assert hw.call("wait32", 8, 4, 0) == 1  # not-equal
    assert hw.call("wait32", 8, 5, 1000) == 2  # timed-out: no other thread can notify
    assert hw.call("wait64", 8, 0x1_0000_0005, 0) == 2
    assert hw.call("wait64", 8, 5, -1) == 1
    with pytest.raises(hwsim.Trap) as info:
        hw.call("wait32", 8, 5, -1)
    assert info.value.trap_code is hwsim.TrapCode.DEADLOCK
    assert "deadlock: memory.atomic.wait with no timeout, and no other thread can notify it" in str(info.value)
    for name, args, code in (
        ("wait32", (2, 0, 0), hwsim.TrapCode.HEAP_MISALIGNED),
        ("wait64", (12, 0, 0), hwsim.TrapCode.HEAP_MISALIGNED),
        ("notify", (65536, 1), hwsim.TrapCode.MEMORY_OUT_OF_BOUNDS),
        ("notify", (1, 1), hwsim.TrapCode.HEAP_MISALIGNED),
    ):
        with pytest.raises(hwsim.Trap) as info:
            hw.call(name, *args)
        assert info.value.trap_code is code, name


def test_wait_on_an_unshared_memory_traps_and_notify_returns_zero():
    hw = _Hwsim(WAIT_WAT.format(shared_max="1", shared=""))
    assert hw.call("notify", 0, 1) == 0
    with pytest.raises(hwsim.Trap) as info:
        hw.call("wait32", 0, 0, 0)
    assert info.value.trap_code is hwsim.TrapCode.ATOMIC_WAIT_NON_SHARED_MEMORY
    assert "wasm trap: atomic wait on non-shared memory" in str(info.value)  # wasmtime's text


@pytest.mark.parametrize(
    "word, text",
    [
        (A.amo("add", "a0", "t5", "a1", double=False), "amoadd.w.aqrl a0, a1, (t5)"),
        (A.amo("swap", "a0", "t5", "a1", double=True), "amoswap.d.aqrl a0, a1, (t5)"),
        (A.amo("and", "s1", "a2", "a3", double=False), "amoand.w.aqrl s1, a3, (a2)"),
        (A.amo("or", "s1", "a2", "a3", double=True), "amoor.d.aqrl s1, a3, (a2)"),
        (A.amo("xor", "s1", "a2", "a3", double=False), "amoxor.w.aqrl s1, a3, (a2)"),
        (A.lr("a0", "t5", double=False), "lr.w.aqrl a0, (t5)"),
        (A.sc("t4", "t5", "t6", double=True), "sc.d.aqrl t4, t6, (t5)"),
        (A.fence(), "fence rw, rw"),
        (A.fence(A.FENCE_R, A.FENCE_R | A.FENCE_W), "fence r, rw"),
    ],
)
def test_rv64a_encodings_match_capstone(word, text):
    assert disassemble_one(word.to_bytes(4, "little"), 0).text == text


def test_memory64_atomics_and_fuel_match_wasmtime():
    wat = """(module (memory i64 1 1 shared)
      (func (export "f") (param i64 i64) (result i64) (i64.atomic.rmw16.add_u offset=6 (local.get 0) (local.get 1)))
      (func (export "g") (param i64) (result i32) (i32.atomic.load offset=4 (local.get 0)))
      (func (export "w") (param i64) (result i32)
        (memory.atomic.wait32 offset=4 (local.get 0) (i32.const 0) (i64.const 5)))
      (func (export "loop") (param i32) (result i32)
        (block (loop (br_if 1 (i32.eqz (local.get 0)))
          (drop (i32.atomic.rmw.add (i64.const 0) (i32.const 1)))
          (local.set 0 (i32.sub (local.get 0) (i32.const 1))) (br 0)))
        (i32.atomic.load (i64.const 0))))"""
    config = hwsim.Config()
    config.consume_fuel = True
    engine = hwsim.Engine(config)
    store = hwsim.Store(engine)
    store.set_fuel(10_000)
    hx = hwsim.Instance(store, hwsim.Module(engine, wat), []).exports(store)
    wconfig = wasmtime.Config()
    wconfig.shared_memory = wconfig.wasm_memory64 = wconfig.consume_fuel = True
    wengine = wasmtime.Engine(wconfig)
    wstore = wasmtime.Store(wengine)
    wstore.set_fuel(10_000)
    wx = wasmtime.Instance(wstore, wasmtime.Module(wengine, wat), []).exports(wstore)
    for name, args in (("f", (0, 5)), ("f", (2, 0x10001)), ("g", (0,)), ("w", (0,)), ("w", (4,)), ("loop", (10,))):
        assert hx[name](store, *args) == wx[name](wstore, *args), name
    assert store.get_fuel() == wstore.get_fuel()
    for args, text in (((1, 1), "unaligned atomic"), ((65534, 1), "out of bounds"), ((2**64 - 6, 1), "out of bounds")):
        with pytest.raises(hwsim.Trap, match=text):
            hx["f"](store, *args)
        with pytest.raises(wasmtime.Trap, match=text):
            wx["f"](wstore, *args)
