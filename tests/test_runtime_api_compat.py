"""wasmtime-py's shapes in hwsim's API: export lists, extern types, Limits equality, import and export
types, Val accessors, Store as a context manager, Module.validate, memory types' limits."""

from __future__ import annotations

import re

import pytest

import hwsim
from hwsim import (
    Engine,
    Func,
    FuncType,
    Global,
    GlobalType,
    Instance,
    Limits,
    Memory,
    MemoryType,
    Module,
    Store,
    Table,
    TableType,
    Val,
    ValType,
    WasmtimeError,
)
from hwsim.wasm import MalformedError

WAT = """
(module
  (import "" "f" (func (param i32) (result i64)))
  (import "m" "g" (global (mut f32)))
  (func (export "a") (param i32 f32) (result f64) f64.const 0)
  (global (export "b") i64 (i64.const 7))
  (memory (export "c") 1 3)
  (table (export "d") 2 funcref))
"""


@pytest.fixture
def world():
    store = Store()
    module = Module(store.engine, WAT)
    f = Func(store, FuncType([ValType.i32()], [ValType.i64()]), lambda x: x)
    g = Global(store, GlobalType(ValType.f32(), True), 1.5)
    return store, module, Instance(store, module, [f, g])


def test_exports_by_index_follow_the_module_order(world):
    store, _module, instance = world
    exports = instance.exports(store)
    assert [type(e) for e in exports.by_index] == [Func, Global, Memory, Table]
    assert list(exports) == ["a", "b", "c", "d"] and len(exports) == 4
    assert set(exports.values()) == set(exports.by_index)
    assert exports["a"] == exports.by_index[0] and exports["a"] != exports["b"]
    assert exports.get("x", 7) == 7
    with pytest.raises(IndexError):
        exports.by_index[4]
    with pytest.raises(KeyError):
        exports["x"]


def test_externs_report_their_types(world):
    store, _module, instance = world
    func, glob, mem, tab = instance.exports(store).by_index
    assert func.type(store) == FuncType([ValType.i32(), ValType.f32()], [ValType.f64()])
    assert glob.type(store) == GlobalType(ValType.i64(), False)
    assert mem.type(store) == MemoryType(Limits(1, 3))
    mem.grow(store, 1)
    assert mem.type(store).limits == Limits(2, 3)  # the minimum is the size now, as in wasmtime-py
    assert tab.type(store) == TableType(ValType.funcref(), Limits(2, None))
    assert mem.page_size(store) == 65536 and mem.page_size_log2(store) == 16
    with pytest.raises(TypeError, match="expected a Store or a Caller, not 1"):
        mem.type(1)


def test_limits_compare_by_value():
    assert Limits(1, None) == Limits(1, None) and hash(Limits(1, 2)) == hash(Limits(1, 2))
    assert Limits(1, None) != Limits(1, 2) and Limits(1) != (1, None)
    assert repr(Limits(1, 2)) == "Limits(1, 2)"


def test_module_imports_and_exports_are_typed(world):
    _store, module, _instance = world
    imports = module.imports
    assert [(i.module, i.name) for i in imports] == [("", "f"), ("m", "g")]
    assert imports[0].type == FuncType([ValType.i32()], [ValType.i64()])
    assert imports[1].type == GlobalType(ValType.f32(), True)
    exports = module.exports
    assert [e.name for e in exports] == ["a", "b", "c", "d"]
    assert [e.type for e in exports] == [
        FuncType([ValType.i32(), ValType.f32()], [ValType.f64()]),
        GlobalType(ValType.i64(), False),
        MemoryType(Limits(1, 3)),
        TableType(ValType.funcref(), Limits(2, None)),
    ]
    assert Module(Engine(), "(module)").imports == [] and Module(Engine(), "(module)").exports == []


def test_val_accessors_answer_none_for_another_type():
    v = Val.i32(0xFFFF_FFFF)
    assert v.as_i32() == -1 and v.as_i64() is None and v.as_f32() is None and v.as_f64() is None
    assert Val.i64(5).as_i64() == 5 and Val.f32(1.5).as_f32() == 1.5 and Val.f64(2.5).as_f64() == 2.5
    assert Val.externref("x").as_externref() == "x" and Val.externref("x").as_funcref() is None
    assert Val.funcref(None).as_funcref() is None
    assert Val.i32(1) == Val.i32(1) and Val.i32(1) != Val.i64(1)


def test_store_is_a_context_manager_and_closes_twice():
    with Store() as store:
        assert isinstance(store, Store)
    store.close()
    store.close()


def test_module_validate():
    Module.validate(Engine(), b"\0asm\x01\0\0\0")
    with pytest.raises(MalformedError) as info:
        Module.validate(Engine(), b"")
    assert isinstance(info.value, WasmtimeError)  # malformed and invalid modules are WasmtimeErrors
    with pytest.raises(TypeError, match=re.escape("Module.validate(wasm): expected bytes, not 2")):
        Module.validate(Engine(), 2)
    with pytest.raises(TypeError, match=re.escape("Module.validate(engine): expected Engine, not 1")):
        Module.validate(1, b"")


def test_memory_types_check_limits_and_page_sizes():
    assert MemoryType(Limits(0x1_0000_0000), is_64=True).limits.min == 0x1_0000_0000
    with pytest.raises(WasmtimeError, match="a 32-bit memory has at most 65536 pages, not a minimum of 4294967296"):
        MemoryType(Limits(0x1_0000_0000))
    with pytest.raises(WasmtimeError, match="not a maximum of 65537"):
        MemoryType(Limits(1, 65537))
    ty = MemoryType(Limits(1), page_size_log2=0)
    assert (ty.page_size, ty.page_size_log2) == (1, 0)
    store = Store()
    assert Memory(store, ty).page_size(store) == 1 and Memory(store, ty).data_len(store) == 1
    with pytest.raises(WasmtimeError, match=re.escape("a page is 1 or 65536 bytes (0 or 16), not 12")):
        MemoryType(Limits(1), page_size_log2=12)
    with pytest.raises(TypeError, match=re.escape("MemoryType(is_64): expected bool, not 1")):
        MemoryType(Limits(1), 1)


def test_calls_with_the_wrong_number_of_arguments_are_wasmtime_errors():
    store = Store()
    f = Func(store, FuncType([], []), lambda: None)
    with pytest.raises(WasmtimeError, match="^wrong number of arguments: expected 0, got 1$"):
        f(store, 2)
    assert hwsim.OutOfBoundsError.__mro__[1] is WasmtimeError


# -- Linker: get, get_default, define_module, made-up imports, instantiate_pre ---------------------------


def test_linker_get_and_define_module():

    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    linker = hwsim.Linker(engine)
    with pytest.raises(hwsim.WasmtimeError, match="`foo::f` has not been defined"):
        linker.get(store, "foo", "f")
    linker.define_module(store, "foo", hwsim.Module(engine, '(module (func (export "f") (result i32) i32.const 7))'))
    f = linker.get(store, "foo", "f")
    assert isinstance(f, hwsim.Func) and f(store) == 7
    user = hwsim.Module(
        engine, '(module (import "foo" "f" (func $f (result i32))) (func (export "g") (result i32) call $f))'
    )
    assert linker.instantiate(store, user).exports(store)["g"](store) == 7
    with pytest.raises(TypeError):
        linker.define_module(store, "foo", "not a module")


def test_linker_get_default_is_the_empty_export_or_a_no_op():

    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    linker = hwsim.Linker(engine)
    assert linker.get_default(store, "nothing")(store) is None
    linker.define_module(store, "m", hwsim.Module(engine, '(module (func (export "") (result i32) i32.const 3))'))
    assert linker.get_default(store, "m")(store) == 3


def test_unknown_imports_made_up_as_traps_or_default_values():

    engine = hwsim.Engine()
    wat = """(module (import "env" "missing" (func $m (result i32)))
                     (func (export "call") (result i32) call $m))"""
    module = hwsim.Module(engine, wat)
    traps = hwsim.Linker(engine)
    traps.define_unknown_imports_as_traps(module)
    store = hwsim.Store(engine)
    with pytest.raises(hwsim.Trap, match="unknown import `env::missing` was called"):
        traps.instantiate(store, module).exports(store)["call"](store)
    defaults = hwsim.Linker(engine)
    defaults.define_unknown_imports_as_default_values(store, module)
    assert defaults.instantiate(store, module).exports(store)["call"](store) == 0
    with pytest.raises(TypeError):
        traps.define_unknown_imports_as_traps("not a module")
    memory_import = hwsim.Module(engine, '(module (import "env" "mem" (memory 1)))')
    with pytest.raises(hwsim.WasmtimeError, match="only functions can be made up"):
        hwsim.Linker(engine).define_unknown_imports_as_traps(memory_import)


def test_instantiate_pre_makes_instances_in_many_stores():

    engine = hwsim.Engine()
    pre = hwsim.Linker(engine).instantiate_pre(
        hwsim.Module(engine, '(module (func (export "f") (result i32) i32.const 42))')
    )
    for _ in range(2):
        store = hwsim.Store(engine)
        assert pre.instantiate(store).exports(store)["f"](store) == 42
    with pytest.raises(TypeError):
        hwsim.Linker(engine).instantiate_pre(3)


def test_a_trap_made_from_a_message_passes_through_wasm():
    """wasmtime-py's Trap("message"): no trap code; raised by a host function, it ends the call into wasm."""
    trap = hwsim.Trap("out of paper")
    assert (trap.message, trap.trap_code, str(trap)) == ("out of paper", None, "out of paper")
    engine = hwsim.Engine()
    store = hwsim.Store(engine)

    def host():
        raise hwsim.Trap("out of paper")

    module = hwsim.Module(engine, '(module (import "" "h" (func $h)) (func (export "f") call $h))')
    f = hwsim.Instance(store, module, [hwsim.Func(store, hwsim.FuncType([], []), host)]).exports(store)["f"]
    with pytest.raises(hwsim.Trap) as info:
        f(store)
    assert info.value.message == "out of paper" and info.value.trap_code is None
    assert hwsim.Trap(hwsim.TrapCode.UNREACHABLE).trap_code is hwsim.TrapCode.UNREACHABLE


def test_a_trap_carries_its_wasm_backtrace():
    """Trap.frames, innermost first, from the frame-pointer chain of compiled code (wasmtime-py's shape;
    the offsets are wasmtime's for the same module)."""
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    module = hwsim.Module(
        engine,
        """(module $module
             (func (export "init") call $foo)
             (func $foo call $bar)
             (func $bar unreachable))""",
    )
    with pytest.raises(hwsim.Trap) as info:
        hwsim.Instance(store, module, []).exports(store)["init"](store)
    assert [(f.func_index, f.func_name, f.module_name, f.module_offset) for f in info.value.frames] == [
        (2, "bar", "module", 0x2D),
        (1, "foo", "module", 0x28),
        (0, None, "module", 0x23),
    ]
    deep = hwsim.Module(
        engine,
        """(module (func $d (export "deep") (param i32)
             (if (local.get 0) (then (call $d (i32.sub (local.get 0) (i32.const 1)))) (else unreachable))))""",
    )
    with pytest.raises(hwsim.Trap) as info:
        hwsim.Instance(store, deep, []).exports(store)["deep"](store, 50)
    frames = info.value.frames
    assert len(frames) == 51 and {f.func_index for f in frames} == {0} and frames[0].module_name is None
    assert hwsim.Trap("x").frames == []
