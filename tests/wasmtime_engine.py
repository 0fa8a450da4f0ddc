"""A spec-test execution engine backed by wasmtime: a test oracle for the runner's execution logic, never shipped.

It implements :class:`hwsim.spectest.Engine` so that the runner's command
handling, value conversion and result comparison can be checked end to end
before hwsim has a compiler.  Values cross the boundary as raw bits (the
``wasmtime_val_t`` union is filled byte for byte), so NaN payloads survive;
wasmtime-py's own ``Val.f32`` would route them through Python floats.

Trap reasons use the specification's wording.  wasmtime has one trap code for
every out-of-bounds table index, where the specification says "undefined
element" for ``call_indirect`` and "out of bounds table access" elsewhere, so
that code accepts both.
"""

from __future__ import annotations

import ctypes

import wasmtime
from wasmtime import _ffi as ffi
from wasmtime._func import enter_wasm

from hwsim.spectest import Exhaustion, LinkError, NotSupportedByEngine, Thrown, Trap, Value

_KINDS = {
    "i32": ffi.WASMTIME_I32.value,
    "i64": ffi.WASMTIME_I64.value,
    "f32": ffi.WASMTIME_F32.value,
    "f64": ffi.WASMTIME_F64.value,
    "v128": ffi.WASMTIME_V128.value,
}
_NAMES = {v: k for k, v in _KINDS.items()}
_SIZES = {"i32": 4, "i64": 8, "f32": 4, "f64": 8, "v128": 16}

_TRAPS = {
    wasmtime.TrapCode.MEMORY_OUT_OF_BOUNDS: ("out of bounds memory access",),
    wasmtime.TrapCode.TABLE_OUT_OF_BOUNDS: ("out of bounds table access", "undefined element"),
    wasmtime.TrapCode.INDIRECT_CALL_TO_NULL: ("uninitialized element",),
    wasmtime.TrapCode.BAD_SIGNATURE: ("indirect call type mismatch",),
    wasmtime.TrapCode.INTEGER_OVERFLOW: ("integer overflow",),
    wasmtime.TrapCode.INTEGER_DIVISION_BY_ZERO: ("integer divide by zero",),
    wasmtime.TrapCode.BAD_CONVERSION_TO_INTEGER: ("invalid conversion to integer",),
    wasmtime.TrapCode.UNREACHABLE: ("unreachable",),
    wasmtime.TrapCode.NULL_REFERENCE: (
        "null reference",
        "null exception reference",
        "null function reference",
        "null i31 reference",
        "null structure reference",
        "null array reference",
    ),
    wasmtime.TrapCode.CAST_FAILURE: ("cast failure",),
    wasmtime.TrapCode.ARRAY_OUT_OF_BOUNDS: ("out of bounds array access",),
    wasmtime.TrapCode.HEAP_MISALIGNED: ("unaligned atomic",),
    wasmtime.TrapCode.ATOMIC_WAIT_NON_SHARED_MEMORY: ("expected shared memory",),
}


def _to_trap(exc: wasmtime.Trap):
    code = exc.trap_code
    if code == wasmtime.TrapCode.STACK_OVERFLOW:
        return Exhaustion("call stack exhausted", exc.message)
    if code == wasmtime.TrapCode.UNCAUGHT_EXCEPTION or "thrown Wasm exception" in exc.message:
        return Thrown("uncaught exception", exc.message)
    reasons = _TRAPS.get(code, (exc.message,))
    return Trap(reasons[0], exc.message, also=reasons[1:])


# Parts of the reference interpreter's spectest module wasmtime-py cannot build.
_SPECTEST_UNAVAILABLE = frozenset(("table64", "shared_memory"))


class _Instance:
    def __init__(self, instance: wasmtime.Instance, store: wasmtime.Store):
        self.instance = instance
        self.exports = instance.exports(store)


class WasmtimeEngine:
    name = "wasmtime (test oracle)"

    def __init__(self):
        config = wasmtime.Config()
        config.wasm_multi_memory = True
        config.wasm_memory64 = True
        config.wasm_tail_call = True
        config.wasm_reference_types = True
        config.wasm_bulk_memory = True
        config.wasm_multi_value = True
        config.wasm_custom_page_sizes = True
        config.wasm_wide_arithmetic = True
        config.wasm_simd = True
        config.wasm_relaxed_simd = True
        config.wasm_relaxed_simd_deterministic = True  # hwsim's choice (docs/architecture.md, *SIMD*)
        config.wasm_threads = True
        config.shared_memory = True
        config.wasm_exceptions = True
        config.wasm_function_references = True  # typed function references (call_ref, (ref $t), ...)
        config.wasm_gc = True  # wasmtime validates typed references with its GC type system
        self.engine = wasmtime.Engine(config)
        self.store = wasmtime.Store(self.engine)
        self.spectest = self._spectest_module()

    def _spectest_module(self) -> dict:
        store = self.store
        i32, i64, f32, f64 = (
            wasmtime.ValType.i32(),
            wasmtime.ValType.i64(),
            wasmtime.ValType.f32(),
            wasmtime.ValType.f64(),
        )

        def printer(*params):
            return wasmtime.Func(store, wasmtime.FuncType(list(params), []), lambda *args: None)

        return {
            "print": printer(),
            "print_i32": printer(i32),
            "print_i64": printer(i64),
            "print_f32": printer(f32),
            "print_f64": printer(f64),
            "print_i32_f32": printer(i32, f32),
            "print_f64_f64": printer(f64, f64),
            "global_i32": wasmtime.Global(store, wasmtime.GlobalType(i32, False), wasmtime.Val.i32(666)),
            "global_i64": wasmtime.Global(store, wasmtime.GlobalType(i64, False), wasmtime.Val.i64(666)),
            "global_f32": wasmtime.Global(store, wasmtime.GlobalType(f32, False), wasmtime.Val.f32(666.6)),
            "global_f64": wasmtime.Global(store, wasmtime.GlobalType(f64, False), wasmtime.Val.f64(666.6)),
            "table": wasmtime.Table(
                store, wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(10, 20)), None
            ),
            "memory": wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 2))),
        }

    # Engine protocol ---------------------------------------------------------------

    def instantiate(self, module, binary: bytes, registry) -> _Instance:
        try:
            compiled = wasmtime.Module(self.engine, binary)
        except wasmtime.WasmtimeError as exc:
            raise NotSupportedByEngine(f"wasmtime cannot compile it: {str(exc).splitlines()[0]}") from None
        linker = wasmtime.Linker(self.engine)
        linker.allow_shadowing = True
        for imp in module.imports:
            source = registry.get(imp.module)
            item = None
            if source is not None:
                try:
                    item = source.exports[imp.name]
                except KeyError:
                    pass
            elif imp.module == "spectest":
                item = self.spectest.get(imp.name)
                if item is None and imp.name in _SPECTEST_UNAVAILABLE:
                    raise NotSupportedByEngine(f"the oracle's spectest module has no {imp.name}")
            if item is not None:
                linker.define(self.store, imp.module, imp.name, item)
        try:
            return _Instance(linker.instantiate(self.store, compiled), self.store)
        except wasmtime.Trap as exc:
            raise _to_trap(exc) from None
        except wasmtime.WasmtimeError as exc:
            text = str(exc)
            for reason in ("unknown import", "incompatible import type"):
                if reason in text:
                    raise LinkError(reason, text.splitlines()[0]) from None
            raise LinkError(text.splitlines()[0]) from None

    def invoke(self, instance: _Instance, field: str, args) -> list[Value]:
        func = instance.exports[field]
        store = self.store
        ty = func.type(store)
        result_types = ty.results
        params = (ffi.wasmtime_val_t * len(args))()
        for i, value in enumerate(args):
            params[i] = self._to_raw(value)
        results = (ffi.wasmtime_val_t * len(result_types))()
        try:
            with enter_wasm(store) as trap:
                error = ffi.wasmtime_func_call(
                    store._context(), ctypes.byref(func._func), params, len(args), results, len(result_types), trap
                )
                if error:
                    raise wasmtime.WasmtimeError._from_ptr(error)
        except wasmtime.Trap as exc:
            raise _to_trap(exc) from None
        return [self._from_raw(results[i]) for i in range(len(result_types))]

    def get(self, instance: _Instance, field: str) -> Value:
        glob = instance.exports[field]
        raw = ffi.wasmtime_val_t()
        ffi.wasmtime_global_get(self.store._context(), ctypes.byref(glob._global), ctypes.byref(raw))
        return self._from_raw(raw)

    # Raw values --------------------------------------------------------------------

    def _to_raw(self, value: Value):
        if value.type in _KINDS:
            raw = ffi.wasmtime_val_t(kind=_KINDS[value.type])
            data = value.value.to_bytes(_SIZES[value.type], "little")
            ctypes.memmove(ctypes.addressof(raw.of), data, len(data))
            return raw
        if value.type == "externref":
            return wasmtime.Val.externref(value.value)._new_raw(self.store)
        if value.type == "funcref":
            return wasmtime.Val.funcref(value.value)._new_raw(self.store)
        raise NotSupportedByEngine(f"cannot pass a {value.type}")

    def _from_raw(self, raw) -> Value:
        kind = raw.kind
        if kind in _NAMES:
            t = _NAMES[kind]
            data = ctypes.string_at(ctypes.addressof(raw.of), _SIZES[t])
            return Value(t, int.from_bytes(data, "little"))
        if kind == 8:  # WASMTIME_EXNREF (wasmtime.h; wasmtime-py 50 names no constant for it)
            return Value("exnref", None if raw.of.exnref.store_id == 0 else raw.of.exnref)
        if kind == 7:  # WASMTIME_ANYREF: wasmtime-py 50 cannot read one (GC's any hierarchy)
            raise NotSupportedByEngine("a GC reference result (wasmtime-py cannot read anyref values)")
        non_null = kind == ffi.WASMTIME_EXTERNREF.value and raw.of.externref.store_id != 0
        val = wasmtime.Val._from_raw(self.store, raw)
        if kind == ffi.WASMTIME_EXTERNREF.value:
            if val.value is None and non_null:  # an externalized GC value: wasmtime-py shows it as None
                raise NotSupportedByEngine("an externref of a GC value (wasmtime-py cannot read it)")
            return Value("externref", val.value)
        if kind == ffi.WASMTIME_FUNCREF.value:
            return Value("funcref", val.value)
        raise NotSupportedByEngine(f"result of wasmtime value kind {kind}")
