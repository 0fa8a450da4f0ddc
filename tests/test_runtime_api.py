"""hwsim.runtime: the wasmtime-py-shaped API, traps with locations, host calls, limits, paging, the code cache."""

from __future__ import annotations

import pytest

import hwsim
from hwsim import Engine, Func, FuncType, Instance, Linker, Module, Store, Trap, TrapCode, Val, ValType
from hwsim.wasm import MalformedError

I32, I64, F32, F64 = ValType.i32(), ValType.i64(), ValType.f32(), ValType.f64()


@pytest.fixture
def engine():
    return Engine(cache=False)


@pytest.fixture
def store(engine):
    return Store(engine)


def instance(engine, store, wat: str, imports=()):
    return Instance(store, Module(engine, wat), list(imports)).exports(store)


def test_call_with_python_values_and_multi_value(engine, store):
    ex = instance(
        engine,
        store,
        """(module
      (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1)))
      (func (export "pair") (param i64 f64) (result f64 i64) (local.get 1) (local.get 0))
      (func (export "none")))""",
    )
    assert ex["add"](store, 2, -5) == -3
    assert ex["add"](store, 0x7FFF_FFFF, 1) == -0x8000_0000  # i32 results come back signed
    assert ex["pair"](store, -7, 2.5) == [2.5, -7]
    assert ex["none"](store) is None
    with pytest.raises(hwsim.WasmtimeError, match="^wrong number of arguments: expected 2, got 1$"):
        ex["add"](store, 1)  # wasmtime-py's error type


def test_exact_float_bits_cross_both_ways(engine, store):
    ex = instance(
        engine,
        store,
        """(module
      (func (export "id32") (param f32) (result f32) (local.get 0))
      (func (export "id64") (param f64) (result f64) (local.get 0)))""",
    )
    assert ex["id32"].call_vals(store, Val.f32_bits(0x7FA0_0001))[0].bits == 0x7FA0_0001  # signalling NaN payload
    assert ex["id64"].call_vals(store, Val.f64_bits(0xFFF0_0000_0000_0ABC))[0].bits == 0xFFF0_0000_0000_0ABC
    assert ex["id32"](store, 1.5) == 1.5


def test_host_function_with_caller_and_nested_calls(engine, store):
    seen = []
    mod = Module(
        engine,
        """(module
      (import "env" "host" (func $host (param i32) (result i32)))
      (memory (export "mem") 1)
      (func $twice (export "twice") (param i32) (result i32) (i32.mul (local.get 0) (i32.const 2)))
      (func (export "outer") (param i32) (result i32) (call $host (local.get 0))))""",
    )
    holder = {}

    def host(caller, x):
        seen.append(caller.get("mem").data_len(store))
        return holder["twice"](store, x) + 1  # back into wasm from the host

    f = Func(store, FuncType([I32], [I32]), host, access_caller=True)
    ex = Instance(store, mod, [f]).exports(store)
    holder["twice"] = ex["twice"]
    assert ex["outer"](store, 20) == 41
    assert seen == [65536]


def test_host_exception_propagates_and_store_stays_usable(engine, store):
    def boom(x):
        raise ValueError(f"host failed on {x}")

    f = Func(store, FuncType([I32], []), boom)
    ex = instance(
        engine,
        store,
        """(module (import "e" "f" (func $f (param i32)))
      (func (export "go") (call $f (i32.const 9)))
      (func (export "ok") (result i32) (i32.const 1)))""",
        [f],
    )
    with pytest.raises(ValueError, match="host failed on 9"):
        ex["go"](store)
    assert ex["ok"](store) == 1


TRAPS = """(module
  (memory 1) (table 2 funcref) (type $v (func))
  (func $nop) (elem (i32.const 1) $nop)
  (func (export "unreachable") unreachable)
  (func (export "oob") (drop (i32.load (i32.const 65534))))
  (func (export "div0") (drop (i32.div_u (i32.const 1) (i32.const 0))))
  (func (export "ovf") (drop (i64.div_s (i64.const 0x8000000000000000) (i64.const -1))))
  (func (export "conv") (drop (i32.trunc_f32_s (f32.const nan))))
  (func $rec (export "rec") (call $rec))
  (func (export "null") (call_indirect (type $v) (i32.const 0)))
  (func (export "sig") (call_indirect (param i32) (i32.const 5) (i32.const 1)))
  (func (export "undef") (call_indirect (type $v) (i32.const 7)))
  (func (export "table") (drop (table.get (i32.const 2))))
  (func (export "fill") (memory.fill (i32.const 65530) (i32.const 0) (i32.const 7)))
)"""


@pytest.mark.parametrize(
    "name,code,insn",
    [
        ("unreachable", TrapCode.UNREACHABLE, "ebreak"),
        ("oob", TrapCode.MEMORY_OUT_OF_BOUNDS, "lw t0, 0(t5)"),
        ("div0", TrapCode.INTEGER_DIVIDE_BY_ZERO, "ebreak"),
        ("ovf", TrapCode.INTEGER_OVERFLOW, "ebreak"),
        ("conv", TrapCode.BAD_CONVERSION_TO_INTEGER, "ebreak"),
        ("rec", TrapCode.STACK_OVERFLOW, None),
        ("null", TrapCode.INDIRECT_CALL_TO_NULL, "ebreak"),
        ("sig", TrapCode.BAD_SIGNATURE, "ebreak"),
        ("undef", TrapCode.UNDEFINED_ELEMENT, "ebreak"),
        ("table", TrapCode.TABLE_OUT_OF_BOUNDS, "ecall"),
        ("fill", TrapCode.MEMORY_OUT_OF_BOUNDS, "ebreak"),  # bounds checked in compiled code
    ],
)
def test_each_trap_says_what_and_where(engine, store, name, code, insn):
    ex = instance(engine, store, TRAPS)
    with pytest.raises(Trap) as info:
        ex[name](store)
    t = info.value
    assert t.code is code and t.message == str(t)
    assert t.func_index is not None and t.wasm_offset is not None and t.pc is not None
    if insn is not None:
        assert t.insn == insn
    # hwsim's one line, with the RISC-V side; str() is wasmtime's text (compared with wasmtime's below)
    assert t.summary.startswith(f"{code.value} at wasm function {t.func_index}")
    assert f"bytecode offset {t.wasm_offset:#x}, pc {t.pc:#x}" in t.summary
    assert f"wasm trap: {code.wasmtime_text}" in str(t)
    if code is not TrapCode.STACK_OVERFLOW:
        assert t.frames[0].module_offset == t.wasm_offset
    assert ex["undef"] is not None  # and the store is still usable:
    with pytest.raises(Trap):
        ex["unreachable"](store)


@pytest.mark.parametrize("name", ["unreachable", "oob", "div0", "ovf", "conv", "null", "sig", "undef", "table", "fill"])
def test_str_of_a_trap_is_wasmtimes_text(engine, store, name):
    """Backtrace (offsets of the trapping instruction and of each call), detail, wasm trap: word for word.
    (Stack exhaustion differs: wasmtime's innermost frame has no offset, and the depths differ.)"""
    wasmtime = pytest.importorskip("wasmtime")
    with pytest.raises(Trap) as info:
        instance(engine, store, TRAPS)[name](store)
    w_store = wasmtime.Store()
    w_func = wasmtime.Instance(w_store, wasmtime.Module(w_store.engine, TRAPS), []).exports(w_store)[name]
    with pytest.raises(wasmtime.Trap) as expected:
        w_func(w_store)
    assert str(info.value) == str(expected.value)
    assert info.value.trap_code is TrapCode[expected.value.trap_code.name]  # wasmtime's names are aliases
    assert [(f.func_index, f.module_offset, f.func_offset) for f in info.value.frames] == [
        (f.func_index, f.module_offset, f.func_offset) for f in expected.value.frames
    ]


def test_str_of_a_trap_without_frames_and_of_a_host_trap():
    assert str(Trap(TrapCode.MEMORY_OUT_OF_BOUNDS)) == "wasm trap: out of bounds memory access"
    assert str(Trap(TrapCode.INTERRUPTED, detail="time budget of 5 us used up")) == (
        "time budget of 5 us used up\n\nCaused by:\n    wasm trap: interrupt\n"
    )
    host = Trap("host says no")
    assert str(host) == host.message == host.summary == "host says no" and host.trap_code is None


def test_constant_address_uses_the_mmu(engine, store):
    """Accesses past the end fault in the reservation's unmapped pages; the report gives the address."""
    ex = instance(
        engine,
        store,
        '(module (memory 1) (func (export "f") (param i32) (result i32) (i32.load offset=4 (local.get 0))))',
    )
    assert ex["f"](store, 65532 - 4) == 0
    with pytest.raises(Trap, match=r"memory fault at wasm address 0x10001 in linear memory of size 0x10000"):
        ex["f"](store, 65533)


def test_time_limit_interrupts_and_store_stays_usable(engine):
    store = Store(engine, time_limit=0.05)
    ex = instance(
        engine, store, '(module (func (export "spin") (loop (br 0))) (func (export "one") (result i32) (i32.const 1)))'
    )
    with pytest.raises(Trap) as info:
        ex["spin"](store)
    assert info.value.trap_code is TrapCode.INTERRUPTED
    assert ex["one"](store) == 1


def test_memory_api_and_demand_paging(engine, store):
    ex = instance(
        engine,
        store,
        '(module (memory (export "m") 1000 1002) '
        '(func (export "poke") (param i32) (i32.store8 (local.get 0) (i32.const 7))))',
    )
    frames = store.machine.frames
    mem = ex["m"]
    assert (mem.size(store), mem.data_len(store)) == (1000, 1000 * 65536)
    ex["poke"](store, 0)  # maps page 0 (and the stack pages the call uses)
    before = frames.committed
    ex["poke"](store, 500 * 65536 + 3)  # first touch: one frame for the page, one for the level-0 table
    assert frames.committed == before + 2
    assert mem.read(store, 500 * 65536, 500 * 65536 + 4) == b"\0\0\0\7"
    assert mem.read(store, 900 * 65536, 900 * 65536 + 4) == b"\0\0\0\0"  # never touched: zeros, and still no frame
    assert frames.committed == before + 2
    mem.write(store, b"xyz", 10)
    assert mem.read(store, 9, 14) == b"\0xyz\0"
    assert mem.grow(store, 2) == 1000
    with pytest.raises(hwsim.WasmtimeError, match="failed to grow memory by 1 pages"):
        mem.grow(store, 1)
    assert mem.read(store, 1002 * 65536 - 1, 1002 * 65536 + 1) == b"\0"  # a Python slice: clipped at the end
    assert mem.read(store, 10, 4) == b""
    with pytest.raises(IndexError, match=r"\[0x3e9ffff, 0x3ea0001\) is outside the memory of 0x3ea0000 bytes"):
        mem.write(store, b"ab", 1002 * 65536 - 1)


def test_memory_limit(engine):
    store = Store(engine, memory_limit=10 * 65536)
    with pytest.raises(hwsim.HwsimError, match="memory of 11 pages exceeds the limit of 10 pages"):
        instance(engine, store, "(module (memory 11))")
    ex = instance(
        engine, store, '(module (memory 1) (func (export "g") (param i32) (result i32) (memory.grow (local.get 0))))'
    )
    assert ex["g"](store, 9) == 1
    assert ex["g"](store, 1) == -1


def test_globals_and_tables(engine, store):
    g = hwsim.Global(store, hwsim.GlobalType(I64, True), 5)
    ex = instance(
        engine,
        store,
        """(module (import "e" "g" (global $g (mut i64)))
      (global (export "c") f32 (f32.const 1.5))
      (table (export "t") 2 funcref)
      (type $r (func (result i64)))
      (func $get (export "get") (result i64) (global.get $g))
      (func (export "set") (param i64) (global.set $g (local.get 0)))
      (func (export "call") (param i32) (result i64) (call_indirect (type $r) (local.get 0))))""",
        [g],
    )
    ex["set"](store, -2)
    assert g.value(store) == -2 and ex["get"](store) == -2
    assert ex["c"].value(store) == 1.5
    with pytest.raises(hwsim.WasmtimeError, match="cannot set an immutable global"):
        ex["c"].set_value(store, 2.0)
    t = ex["t"]
    t.set(store, 1, ex["get"])
    assert t.get(store, 0) is None and t.size(store) == 2
    assert ex["call"](store, 1) == -2
    assert t.grow(store, 3, None) == 2 and t.size(store) == 5


def test_linker(engine, store):
    linker = Linker(engine)
    linker.define_func("env", "double", FuncType([I32], [I32]), lambda x: 2 * x)
    mod = Module(
        engine,
        '(module (import "env" "double" (func $d (param i32) (result i32))) '
        '(func (export "f") (result i32) (call $d (i32.const 21))))',
    )
    assert linker.instantiate(store, mod).exports(store)["f"](store) == 42
    other = Module(engine, '(module (import "env" "missing" (func)))')
    with pytest.raises(hwsim.WasmtimeError, match="unknown import: `env::missing` has not been defined"):
        linker.instantiate(store, other)


def test_link_errors_name_the_import(engine, store):
    mod = Module(engine, '(module (import "env" "f" (func (param i32))))')
    bad = Func(store, FuncType([I64], []), lambda x: None)
    with pytest.raises(hwsim.WasmtimeError, match=r"incompatible import type: import 'env' 'f' expects \[i32\] -> "):
        Instance(store, mod, [bad])


def test_malformed_module_is_a_clear_error(engine):
    with pytest.raises(MalformedError, match="magic"):
        Module(engine, b"\0asn\1\0\0\0")


def test_code_cache_hits_the_second_time(tmp_path):
    wat = '(module (func (export "f") (result i32) (i32.const 3)))'
    e1 = Engine(cache=True, cache_dir=tmp_path)
    Module(e1, wat)
    assert (e1.cache_hits, e1.cache_misses) == (0, 1)
    e2 = Engine(cache=True, cache_dir=tmp_path)
    m = Module(e2, wat)
    assert (e2.cache_hits, e2.cache_misses) == (1, 0)
    store = Store(e2)
    assert Instance(store, m, []).exports(store)["f"](store) == 3
    for f in tmp_path.iterdir():  # a corrupt cache entry is recompiled, not trusted
        f.write_bytes(b"garbage")
    e3 = Engine(cache=True, cache_dir=tmp_path)
    Module(e3, wat)
    assert (e3.cache_hits, e3.cache_misses) == (0, 1)


def test_module_from_file(engine, tmp_path, store):
    path = tmp_path / "m.wat"
    path.write_text('(module (func (export "f") (result f64) (f64.const 0.25)))')
    mod = Module.from_file(engine, path)
    assert [(e.name, e.type) for e in mod.exports] == [("f", FuncType([], [ValType.f64()]))]
    assert Instance(store, mod, []).exports(store)["f"](store) == 0.25
