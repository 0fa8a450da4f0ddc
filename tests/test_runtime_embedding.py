"""hwsim.runtime.api as a drop-in for wasmtime-py (docs/embedding.md): Config's switches, closing, limits,
externref collection, serialized modules, Memory.data_ptr, the Caller of a start function, and the error
types wasmtime-py's callers catch.  wasmtime-py's own tests run in tests/test_wasmtime_py_compat.py."""

from __future__ import annotations

import gc
import weakref

import pytest

from hwsim import (
    Caller,
    Config,
    ConfigError,
    Engine,
    Func,
    FuncType,
    Global,
    GlobalType,
    Instance,
    Limits,
    Linker,
    Memory,
    MemoryType,
    Module,
    OutOfBoundsError,
    Store,
    Table,
    TableType,
    Trap,
    Val,
    ValType,
    WasmtimeError,
)
from hwsim.errors import ArgumentTypeError, ClosedError

I32 = ValType.i32()


# -- Config ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "wasm_reference_types",
        "wasm_bulk_memory",
        "wasm_multi_value",
        "wasm_multi_memory",
        "wasm_memory64",
        "wasm_gc",
        "gc_support",
        "wasm_function_references",
    ],
)
def test_config_accepts_the_features_hwsim_implements(name):
    config = Config()
    assert getattr(config, name) is True
    setattr(config, name, True)
    with pytest.raises(ConfigError) as info:
        setattr(config, name, False)
    assert str(info.value).startswith(f"Config.{name}: hwsim cannot turn ") and "off (it is always on)" in str(
        info.value
    )


@pytest.mark.parametrize(
    "name,what",
    [
        ("wasm_stack_switching", "stack switching"),
        ("wasm_component_model", "the component model"),
    ],
)
def test_config_refuses_the_features_hwsim_lacks(name, what):
    config = Config()
    assert getattr(config, name) is False
    setattr(config, name, False)  # off anyway: a program that turns them off runs unchanged
    with pytest.raises(ConfigError) as info:
        setattr(config, name, True)
    assert str(info.value) == f"Config.{name}: hwsim does not implement {what} (it refuses modules that use it)"


def test_config_simd_really_switches():
    wat = "(module (func (drop (i8x16.splat (i32.const 0)))))"
    relaxed = "(module (func (drop (i8x16.relaxed_swizzle (v128.const i64x2 0 0) (v128.const i64x2 0 0)))))"
    config = Config()
    assert config.wasm_simd is True and config.wasm_relaxed_simd is True
    assert config.wasm_relaxed_simd_deterministic is True  # always the deterministic profile
    with pytest.raises(ConfigError, match="cannot turn the deterministic profile of relaxed SIMD off"):
        config.wasm_relaxed_simd_deterministic = False
    Module(Engine(config), relaxed)  # on by default
    with pytest.raises(WasmtimeError, match=r"SIMD \(opcode 0xfd 0xf; enable it with Features\(simd=True\)\)"):
        Module(Engine(_config(wasm_simd=False), cache=False), wat)
    with pytest.raises(WasmtimeError, match="relaxed SIMD"):
        Module(Engine(_config(wasm_relaxed_simd=False), cache=False), relaxed)
    Module(Engine(_config(wasm_relaxed_simd=False), cache=False), wat)


def test_config_custom_page_sizes_really_switches():
    wat = "(module (memory 1 (pagesize 1)))"
    Module(Engine(Config()), wat)  # on by default
    config = Config()
    config.wasm_custom_page_sizes = False
    with pytest.raises(WasmtimeError, match="malformed limits flags 0x08"):
        Module(Engine(config, cache=False), wat)
    with pytest.raises(WasmtimeError, match="malformed limits flags 0x08"):
        Module.validate(Engine(_config(wasm_custom_page_sizes=False), cache=False), Module(Engine(), wat).wasm)


def _config(**settings) -> Config:
    config = Config()
    for name, value in settings.items():
        setattr(config, name, value)
    return config


def test_config_refuses_wasmtime_settings_it_has_no_meaning_for_and_unknown_names():
    config = Config()
    with pytest.raises(ConfigError) as info:
        config.cranelift_opt_level = "speed"
    assert str(info.value) == "Config.cranelift_opt_level: not a setting hwsim has (hwsim does not use Cranelift)"
    with pytest.raises(ConfigError, match="hwsim does not use Cranelift"):
        config.cranelift_flag_set("opt_level", "none")
    with pytest.raises(AttributeError, match="Config has no setting 'consume_fule'"):
        config.consume_fule = True  # a typo is not silently a new attribute
    with pytest.raises(TypeError, match="Config.wasm_simd: expected bool, not 1"):
        config.wasm_simd = 1


def test_config_cache_chooses_the_engines_code_cache(tmp_path):
    assert Engine(_config(cache=False)).cache is False
    engine = Engine(_config(cache=str(tmp_path)))
    assert engine.cache is True and engine.cache_dir == tmp_path
    Module(engine, "(module (func))")
    assert list(tmp_path.glob("*.hwcc"))
    with pytest.raises(TypeError, match="Config.cache: expected a bool or a path, not 3"):
        Config().cache = 3


def test_an_engine_takes_its_config_as_in_wasmtime_py():
    config = Config()
    config.consume_fuel = True
    assert Engine(config).consume_fuel
    with pytest.raises(ClosedError, match="the Config was already used to make an Engine") as info:
        Engine(config)
    assert isinstance(info.value, ValueError)
    with pytest.raises(ClosedError, match=r"Config.epoch_interruption: the Config was used to make an Engine"):
        config.epoch_interruption = True
    with pytest.raises(ClosedError):
        config.wasm_simd = False


def test_engine_is_not_pulley_and_closes():
    engine = Engine()
    assert engine.is_pulley() is False
    with engine:
        Store(engine)
    for make in (Store, Linker, lambda e: Module(e, b"\0asm\1\0\0\0")):
        with pytest.raises(ClosedError, match="the Engine is closed"):
            make(engine)


# -- errors of the wrong Python type -----------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        lambda s: Memory(1, MemoryType(Limits(1))),
        lambda s: Memory(s, 1),
        lambda s: Global(1, GlobalType(I32, True), 0),
        lambda s: Instance(s, 1, []),
        lambda s: Module.validate(1, b""),
        lambda s: Linker(2),
        lambda s: Linker(s.engine).instantiate(s, 3),
        lambda s: Linker(s.engine).define(s, 2, "", Func(s, FuncType([], []), lambda: None)),
        lambda s: Store(3),
        lambda s: Engine(3),
    ],
)
def test_a_wrong_type_is_a_type_error_and_an_attribute_error(call):
    """wasmtime-py raises AttributeError for many of these (it calls a method the argument lacks),
    TypeError for others; hwsim's error is both, with a message naming the argument."""
    with pytest.raises(ArgumentTypeError) as info:
        call(Store())
    assert isinstance(info.value, TypeError) and isinstance(info.value, AttributeError)
    assert "expected" in str(info.value)


# -- Store.close ---------------------------------------------------------------------------------------------


def test_a_closed_store_refuses_every_use():
    store = Store()
    memory = Memory(store, MemoryType(Limits(1)))
    f = Func(store, FuncType([], []), lambda: None)
    store.close()
    store.close()  # twice is fine
    assert repr(store) == "<hwsim.Store (closed)>"
    for use in (
        lambda: f(store),
        lambda: memory.read(store, 0, 1),
        lambda: store.set_epoch_deadline(1),
        lambda: store.set_fuel(1),
        lambda: store.set_limits(memory_size=1),
        lambda: store.gc(),
        lambda: Memory(store, MemoryType(Limits(1))),
        lambda: store.name,
    ):
        with pytest.raises(ClosedError, match="the Store is closed") as info:
            use()
        assert isinstance(info.value, ValueError)
    with Store() as other:
        assert other.name.startswith("Store ")
    with pytest.raises(ClosedError):
        other.set_fuel(1)


# -- Store.set_limits ---------------------------------------------------------------------------------------


def test_set_limits_memory_size_applies_when_made_and_when_grown():
    store = Store()
    store.set_limits(memory_size=0)
    with pytest.raises(WasmtimeError, match="memory of 1 pages exceeds the limit of 0 pages"):
        Memory(store, MemoryType(Limits(1)))
    store.set_limits(memory_size=3 * 65536)
    memory = Memory(store, MemoryType(Limits(1)))
    assert memory.grow(store, 2) == 1
    with pytest.raises(WasmtimeError, match="failed to grow memory by 1 pages"):
        memory.grow(store, 1)
    store.set_limits()  # each call sets all five: -1 is no limit (hwsim's own)
    assert memory.grow(store, 1) == 3


def test_set_limits_memory_size_makes_memory_grow_in_wasm_return_minus_one():
    store = Store()
    ex = Instance(
        store,
        Module(store.engine, '(module (memory 1) (func (export "grow") (result i32) (memory.grow (i32.const 1))))'),
        [],
    ).exports(store)
    store.set_limits(memory_size=2 * 65536)
    assert ex["grow"](store) == 1
    assert ex["grow"](store) == -1


def test_set_limits_tables_and_their_elements():
    store = Store()
    store.set_limits(table_elements=1, tables=2)
    table = Table(store, TableType(ValType.funcref(), Limits(1)), None)
    with pytest.raises(WasmtimeError, match="table of 2 elements exceeds the limit of 1"):
        Table(store, TableType(ValType.funcref(), Limits(2)), None)
    with pytest.raises(WasmtimeError, match="failed to grow table by 1"):
        table.grow(store, 1, None)
    Table(store, TableType(ValType.funcref(), Limits(0)), None)
    with pytest.raises(WasmtimeError, match="the Store already holds 2 tables, its limit"):
        Table(store, TableType(ValType.funcref(), Limits(0)), None)


def test_set_limits_instances_and_memories():
    store = Store()
    store.set_limits(instances=1, memories=1)
    module = Module(store.engine, "(module (memory 1))")
    Instance(store, module, [])
    with pytest.raises(WasmtimeError, match="the Store already holds 1 instances, its limit"):
        Instance(store, module, [])
    with pytest.raises(WasmtimeError, match="the Store already holds 1 memories, its limit"):
        Memory(store, MemoryType(Limits(0)))


def test_set_limits_refuses_non_ints():
    with pytest.raises(TypeError, match=r"Store.set_limits\(memory_size\): expected an int, not '1'"):
        Store().set_limits(memory_size="1")


# -- Store.gc ---------------------------------------------------------------------------------------------------


class Token:
    pass


def _held(make_and_drop) -> bool:
    """Whether the Token made (and given to hwsim) by ``make_and_drop`` is still alive after gc."""
    ref = make_and_drop()
    gc.collect()
    return ref() is not None


def test_gc_lets_go_of_externrefs_wasm_no_longer_holds():
    store = Store()
    ex = Instance(
        store,
        Module(store.engine, '(module (func (export "id") (param externref) (result externref) (local.get 0)))'),
        [],
    ).exports(store)
    g = Global(store, GlobalType(ValType.externref(), True), None)
    table = Table(store, TableType(ValType.externref(), Limits(2)), None)

    def passed():
        token = Token()
        assert ex["id"](store, token) is token
        return weakref.ref(token)

    def in_global():
        token = Token()
        g.set_value(store, Val.externref(token))
        return weakref.ref(token)

    def in_table():
        token = Token()
        table.set(store, 1, token)
        return weakref.ref(token)

    refs = [passed(), in_global(), in_table()]
    gc.collect()
    assert all(r() is not None for r in refs)  # hwsim holds them until Store.gc
    store.gc()
    gc.collect()
    assert [r() is not None for r in refs] == [False, True, True]  # the global and the table keep theirs
    g.set_value(store, None)
    table.set(store, 1, None)
    store.gc()
    gc.collect()
    assert [r() is not None for r in refs] == [False, False, False]
    assert ex["id"](store, "again") == "again"  # a new handle, never a reused one


def test_gc_keeps_what_an_element_segment_holds():
    store = Store()
    token = Token()
    g = Global(store, GlobalType(ValType.externref(), False), token)
    module = Module(
        store.engine,
        """(module (import "" "g" (global externref)) (table 1 externref)
             (elem externref (global.get 0))
             (func (export "load") (table.init 0 (i32.const 0) (i32.const 0) (i32.const 1)))
             (func (export "get") (result externref) (table.get (i32.const 0))))""",
    )
    ex = Instance(store, module, [g]).exports(store)
    ref = weakref.ref(token)
    del token
    store.gc()
    gc.collect()
    assert ref() is not None
    ex["load"](store)
    assert ex["get"](store) is ref()


def test_gc_from_a_host_function_lets_go_of_nothing():
    store = Store()
    refs = []

    def host(obj):
        refs.append(weakref.ref(obj))
        store.gc()  # wasm is running: its stack may hold the handle
        gc.collect()
        assert refs[0]() is not None

    f = Func(store, FuncType([ValType.externref()], []), host)
    ex = Instance(
        store,
        Module(
            store.engine,
            '(module (import "" "" (func (param externref))) (func (export "go") (param externref) (call 0 (local.get 0))))',
        ),
        [f],
    ).exports(store)
    ex["go"](store, Token())
    store.gc()
    gc.collect()
    assert refs[0]() is None


# -- Module.serialize / deserialize ---------------------------------------------------------------------------------

ADD = '(module (func (export "add") (param i32 i32) (result i32) (i32.add (local.get 0) (local.get 1))))'


def test_a_serialized_module_runs_without_compiling(tmp_path):
    engine = Engine(cache=False)
    data = Module(engine, ADD).serialize()
    assert isinstance(data, bytes) and data.startswith(b"hwsimmod")
    module = Module.deserialize(Engine(cache=False), data)
    store = Store(module.engine)
    assert Instance(store, module, []).exports(store)["add"](store, 2, 3) == 5
    path = tmp_path / "add.bin"
    path.write_bytes(data)
    with Module.deserialize_file(engine, path) as loaded:
        assert [e.name for e in loaded.exports] == ["add"]
    with pytest.raises(ClosedError, match=r"Instance\(module\): the Module is closed"):
        Instance(Store(engine), loaded, [])


@pytest.mark.parametrize(
    "mangle,message",
    [
        (lambda d: b"", "not a serialized hwsim module: 0 bytes, shorter than the 44-byte header"),
        (lambda d: b"garbage" * 10, "not a serialized hwsim module: not a serialized hwsim module (bad magic)"),
        (lambda d: d[:-1], "not a serialized hwsim module: content hash mismatch (corrupt or truncated)"),
        (lambda d: d[:60] + bytes([d[60] ^ 1]) + d[61:], "content hash mismatch (corrupt or truncated)"),
        (lambda d: d[:8] + b"\x07\0\0\0" + d[12:], "serialized module format version 7, not 1"),
        (lambda d: d.replace(b"hwsimmod", b"hwsimcc\0", 1), "(bad magic)"),
    ],
)
def test_deserialize_refuses_garbage_with_the_reason(mangle, message):
    engine = Engine(cache=False)
    data = Module(engine, ADD).serialize()
    with pytest.raises(WasmtimeError) as info:
        Module.deserialize(engine, mangle(data))
    assert str(info.value).startswith("Module.deserialize: ") and message in str(info.value)


def test_deserialize_refuses_code_of_another_metering_mode_and_non_bytes():
    data = Module(Engine(cache=False), ADD).serialize()
    with pytest.raises(WasmtimeError, match="compiled without metering .fuel or epochs., this Engine has it"):
        Module.deserialize(Engine(_config(consume_fuel=True), cache=False), data)
    with pytest.raises(TypeError, match=r"Module.deserialize\(encoded\): expected bytes, not 3"):
        Module.deserialize(Engine(), 3)


# -- Memory.data_ptr ------------------------------------------------------------------------------------------------


def test_data_ptr_indexes_the_memory_like_a_byte_pointer():
    store = Store()
    memory = Memory(store, MemoryType(Limits(1)))
    ptr = memory.data_ptr(store)
    memory.write(store, b"hwsim", 100)
    assert ptr[100] == ord("h") and ptr[100:105] == list(b"hwsim") and ptr[100:105:2] == list(b"hsm")
    ptr[200] = 7
    ptr[300:303] = b"abc"
    assert memory.read(store, 200, 201) == b"\x07" and memory.read(store, 300, 303) == b"abc"
    memory.grow(store, 1)
    ptr[65536 + 5] = 1  # it follows the memory's size
    assert memory.read(store, 65541, 65542) == b"\x01"


@pytest.mark.parametrize(
    "use,error,message",
    [
        (lambda p: p[2 * 65536], OutOfBoundsError, "[0x20000, 0x20001) is outside the memory of 0x20000 bytes"),
        (lambda p: p[-1], OutOfBoundsError, "[-0x1, 0x0) is outside the memory of 0x20000 bytes"),
        (lambda p: p[-4:2], OutOfBoundsError, "MemoryPointer: offset -4 is before the memory's start"),
        (lambda p: p[0:], TypeError, "MemoryPointer: a slice needs its end, as a pointer's does"),
        (lambda p: p["a"], TypeError, "MemoryPointer index: expected an int, not 'a'"),
        (lambda p: p.__setitem__(0, 256), ConfigError, "MemoryPointer: a byte is 0 to 255, not 256"),
        (lambda p: p.__setitem__(slice(0, 2), b"abc"), ConfigError, "MemoryPointer: 3 bytes for a slice of 2"),
    ],
)
def test_data_ptr_refuses_what_a_raw_pointer_would_do_silently(use, error, message):
    store = Store()
    memory = Memory(store, MemoryType(Limits(2)))
    with pytest.raises(error) as info:
        use(memory.data_ptr(store))
    assert str(info.value) == message


# -- Caller ------------------------------------------------------------------------------------------------------------


def test_a_start_function_that_is_a_host_function_sees_the_instance_being_made():
    store = Store()
    seen = {}

    def start(caller: Caller):
        memory = caller["mem"]
        seen["byte"] = memory.data_ptr(caller)[0]
        with pytest.raises(KeyError, match="failed to find export nope"):
            caller["nope"]
        seen["caller"] = caller

    module = Module(
        store.engine, '(module (import "" "" (func)) (memory (export "mem") 1) (data (i32.const 0) "A") (start 0))'
    )
    Instance(store, module, [Func(store, FuncType([], []), start, access_caller=True)])
    assert seen["byte"] == ord("A")
    assert seen["caller"].get("mem") is None  # no longer valid


def test_a_host_function_called_from_the_host_has_no_calling_instance():
    store = Store()
    inner = Func(store, FuncType([], [I32]), lambda caller: int(caller.get("mem") is None), access_caller=True)

    def outer(caller):
        assert caller.get("mem") is not None
        return inner(caller)  # called from Python, inside another host call: no instance calls it

    ex = Instance(
        store,
        Module(
            store.engine,
            '(module (import "" "" (func (result i32))) (memory (export "mem") 1) (func (export "go") (result i32) (call 0)))',
        ),
        [Func(store, FuncType([], [I32]), outer, access_caller=True)],
    ).exports(store)
    assert ex["go"](store) == 1


def test_a_trap_in_a_builtin_has_its_backtrace():
    store = Store()
    ex = Instance(
        store,
        Module(
            store.engine,
            '(module $m (memory 1) (func $fill (export "fill") (memory.fill (i32.const 65530) (i32.const 0) (i32.const 7))))',
        ),
        [],
    ).exports(store)
    with pytest.raises(Trap) as info:
        ex["fill"](store)
    assert [(f.func_name, f.module_name) for f in info.value.frames] == [("fill", "m")]
    assert str(info.value).endswith("Caused by:\n    wasm trap: out of bounds memory access\n")


# -- the rest of wasmtime-py's names ------------------------------------------------------------------------


def test_wat2wasm_and_text_given_as_bytes():
    from hwsim import wat2wasm

    assert wat2wasm("(module)") == bytearray(b"\0asm\1\0\0\0") == wat2wasm(b"(module)")
    with pytest.raises(WasmtimeError, match="cannot parse the text module"):
        wat2wasm("(modul")
    with pytest.raises(WasmtimeError, match="wat2wasm: the text is not UTF-8"):
        wat2wasm(b"\xff(module)")
    with pytest.raises(TypeError, match=r"wat2wasm\(wat\): expected str, not 3"):
        wat2wasm(3)
    engine = Engine()
    assert [e.name for e in Module(engine, b'(module (func (export "f")))').exports] == ["f"]  # text, as bytes
    Module.validate(engine, b"(module)")
    assert Module(engine, b"  ;; a comment\n(module)").exports == []
    for garbage in (b"\xff\xfegarbage", b"import os\n"):  # not text: the decoder says why
        with pytest.raises(WasmtimeError, match="magic header not detected"):
            Module(engine, garbage)


def test_val_ref_null_and_store_data():
    assert Val.ref_null(ValType.funcref()) == Val.funcref(None)
    assert Val.ref_null(ValType.externref()).value is None
    with pytest.raises(WasmtimeError, match="Invalid reference type for `ref_null`: i32"):
        Val.ref_null(I32)
    data = object()
    assert Store(Engine(), data).data() is data and Store().data() is None


def test_frame_and_instance_pre_are_public():
    import hwsim

    assert {"Frame", "InstancePre", "wat2wasm", "ClosedError"} <= set(hwsim.__all__)
    store = Store()
    pre = Linker(store.engine).instantiate_pre(Module(store.engine, "(module)"))
    assert isinstance(pre, hwsim.InstancePre) and isinstance(pre.instantiate(store), Instance)


def test_type_and_table_parameters_have_wasmtime_pys_names():
    """Code that passes them by keyword (TableType(valtype=...), table.grow(store, amt=1, init=None)) runs."""
    store = Store()
    table = Table(store, TableType(valtype=ValType.funcref(), limits=Limits(1, None)), init=None)
    assert table.grow(store, amt=1, init=None) == 1
    table.set(store, idx=0, val=None)
    assert table.get(store, idx=0) is None
    assert GlobalType(valtype=I32, mutable=True).content == I32
    ty = MemoryType(Limits(1), False, False, 0)  # limits, is_64, shared, page_size_log2
    assert ty.page_size == 1 and ty.is_shared is False
    assert MemoryType(Limits(1, 2), shared=True).is_shared  # threads: tests/test_runtime_shared_memory.py


def test_linker_and_instance_pre_close():
    store = Store()
    module = Module(store.engine, "(module)")
    with Linker(store.engine) as linker:
        pre = linker.instantiate_pre(module)
        with pre:
            pre.instantiate(store)
        with pytest.raises(ClosedError, match="InstancePre.instantiate: the InstancePre is closed"):
            pre.instantiate(store)
    for use in (
        lambda: linker.instantiate(store, module),
        lambda: linker.define_func("m", "f", FuncType([], []), lambda: None),
        lambda: linker.get(store, "m", "f"),
    ):
        with pytest.raises(ClosedError, match=r"Linker\.\w+: the Linker is closed"):
            use()


def test_val_equals_its_value_as_in_wasmtime_py_and_hashes_alike():
    assert Val.i32(1) == 1 and Val.f64(2.5) == 2.5 and Val.externref("x") == "x" and Val.funcref(None) == None  # noqa: E711
    assert Val.i32(1) != 2 and Val.i32(-1) != 0xFFFF_FFFF  # the value, not the bits
    assert Val.i32(1) != Val.i64(1)  # between Vals: type and bits
    assert {Val.i32(1): "a"}[1] == "a" and hash(Val.f64(2.5)) == hash(2.5)
    nan = Val.f32_bits(0x7FC0_0001)
    assert nan == Val.f32_bits(0x7FC0_0001) and hash(nan) == hash(Val.f32_bits(0x7FC0_0001))
    assert len({Val.externref([1]), Val.externref([1]), Val.externref([2])}) == 2  # unhashable references
