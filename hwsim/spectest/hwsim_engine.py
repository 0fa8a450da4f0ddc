"""The spec-test engine that runs modules on hwsim: compiled to RISC-V, executed on the emulated CPU.

One engine Store per script (``begin_file``), as the reference interpreter keeps one
store per script; values cross as exact bit patterns.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..compiler import CompiledModule, compile_module
from ..compiler.codegen import CompileError
from ..compiler.traps import TrapCode
from ..runtime import layout as L
from ..runtime.instance import ExternItem, VmInstance
from ..runtime.instance import LinkError as RuntimeLinkError
from ..runtime.objects import FuncRecord, GlobalInstance, MemoryInstance, ResourceLimitError, TableInstance
from ..runtime.store import Trap as RuntimeTrap
from ..runtime.store import VmStore
from ..wasm.subtyping import abstract_top
from ..wasm.types import (
    ANYREF,
    EXNREF,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    STRUCTREF,
    V128,
    FuncType,
    Limits,
    MemoryType,
    TableType,
)
from .engine import Exhaustion, LinkError, NotSupportedByEngine, Thrown, Trap
from .values import GcObject, I31Value, Value

_TYPES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
    EXNREF: "exnref",
}


class HwsimEngine:
    name = "hwsim (RV64 compiler on the emulated CPU)"

    def __init__(self) -> None:
        self.store: VmStore | None = None
        self._compiled: dict[bytes, CompiledModule] = {}

    def begin_file(self) -> None:
        self.store = VmStore()
        self.extern_handles: dict[int, int] = {}
        self.handle_externs: dict[int, int] = {}
        self.spectest = self._spectest(self.store)

    def _store(self) -> VmStore:
        if self.store is None:
            self.begin_file()
        assert self.store is not None  # begin_file made it
        return self.store

    def _spectest(self, s: VmStore) -> dict[str, ExternItem]:
        def printer(*params):
            return FuncRecord(
                s, FuncType(tuple(params), ()), code=L.HOSTCALL_STUB, vmctx=s.host_vmctx, host=lambda args: []
            )

        return {
            "print": printer(),
            "print_i32": printer(I32),
            "print_i64": printer(I64),
            "print_f32": printer(F32),
            "print_f64": printer(F64),
            "print_i32_f32": printer(I32, F32),
            "print_f64_f64": printer(F64, F64),
            "global_i32": GlobalInstance(s, I32, False, 666),
            "global_i64": GlobalInstance(s, I64, False, 666),
            "global_f32": GlobalInstance(s, F32, False, 0x4426_A666),
            "global_f64": GlobalInstance(s, F64, False, 0x4084_D4CC_CCCC_CCCD),
            "table": TableInstance(s, TableType(elem_type=FUNCREF, limits=Limits(min=10, max=20))),
            "table64": TableInstance(s, TableType(elem_type=FUNCREF, limits=Limits(min=10, max=20), index_type=I64)),
            "memory": MemoryInstance(s, MemoryType(limits=Limits(min=1, max=2)), max_bytes=1 << 32),
            "shared_memory": MemoryInstance(s, MemoryType(limits=Limits(min=1, max=2), shared=True)),
        }

    # -- the Engine protocol -------------------------------------------------------------------

    def instantiate(self, module, binary: bytes, registry) -> VmInstance:
        store = self._store()
        imports = []
        for imp in module.imports:
            source = registry.get(imp.module)
            item = None
            if source is not None:
                if imp.name in source.exports:
                    item = source.export(imp.name)[1]
            elif imp.module == "spectest":
                item = self.spectest.get(imp.name)
            if item is None:
                raise LinkError("unknown import", f"{imp.module!r} {imp.name!r}")
            imports.append(item)
        key = bytes(binary)
        compiled = self._compiled.get(key)
        if compiled is None:
            try:
                compiled = compile_module(module)
            except CompileError as exc:
                raise NotSupportedByEngine(f"the compiler cannot compile it yet: {exc}") from None
            self._compiled[key] = compiled
        try:
            instance = VmInstance(store, module, compiled, imports)
        except RuntimeLinkError as exc:
            raise LinkError("incompatible import type", str(exc)) from None
        except ResourceLimitError as exc:
            raise NotSupportedByEngine(f"resource limit: {exc}") from None
        try:
            instance.initialize()
        except RuntimeTrap as exc:
            raise self._trap(exc) from None
        return instance

    def invoke(self, instance: VmInstance, field: str, args: Sequence[Value]) -> list[Value]:
        kind, record = instance.export(field)
        assert isinstance(record, FuncRecord)  # scripts invoke function exports
        ft = record.type
        bits = [self._to_bits(v) for v in args]
        store = self.store
        assert store is not None  # the instance was made in this script's store
        try:
            results = store.invoke(record, bits)
        except RuntimeTrap as exc:
            raise self._trap(exc) from None
        precise = record.precise_type.results
        return [self._from_bits(t, b, p) for t, b, p in zip(ft.results, results, precise)]

    def get(self, instance: VmInstance, field: str) -> Value:
        kind, g = instance.export(field)
        assert isinstance(g, GlobalInstance)  # scripts get global exports
        return self._from_bits(g.valtype, g.get_bits(), g.precise)

    # -- values ---------------------------------------------------------------------------------

    def _trap(self, exc: RuntimeTrap):
        if exc.code is TrapCode.STACK_OVERFLOW:
            return Exhaustion(exc.code.message, exc.summary)
        if exc.code is TrapCode.UNCAUGHT_EXCEPTION:
            return Thrown(exc.code.message, exc.summary)
        return Trap(exc.code.message, exc.summary)

    def _to_bits(self, v: Value) -> int:
        value = v.value
        if v.type in ("i32", "i64", "f32", "f64", "v128"):
            assert isinstance(value, int)  # a number's bit pattern
            return value
        if value is None:
            return 0
        if v.type == "externref" or v.type == "anyref":
            # (ref.extern N) and (ref.host N): host value N, in the shape of a Store's handles (4n + 2), the same
            # word in both hierarchies (compiler/codegen/gc.py), as extern.convert_any makes them the same value
            assert isinstance(value, int)
            handle = self.extern_handles.get(value)
            if handle is None:
                handle = 4 * (len(self.extern_handles) + 1) + 2
                self.extern_handles[value] = handle
                self.handle_externs[handle] = value
            return handle
        assert isinstance(value, FuncRecord)  # a funcref handle this engine returned
        return value.va

    def _from_bits(self, ty: int, bits: int, precise: object = None) -> Value:
        name = _TYPES[ty]
        if ty == EXTERNREF:  # also GC's any hierarchy (the same word)
            if (isinstance(precise, int) and abstract_top(precise) == ANYREF) or isinstance(precise, tuple):
                # (a concrete reference lowered to externref's word is a struct's or an array's)
                name = "anyref"
            if bits & 1:
                return Value(name, I31Value((bits >> 1) & 0x7FFF_FFFF))
            heap = self._store().gc_heap
            if heap.is_object(bits):
                return Value(name, GcObject("struct" if heap.kind(bits) == STRUCTREF else "array", bits))
            return Value(name, None if bits == 0 else self.handle_externs.get(bits, bits))
        if ty == EXNREF:
            return Value(name, None if bits == 0 else bits)
        if ty == FUNCREF:
            store = self.store
            assert store is not None  # the value came from this script's store
            return Value(name, None if bits == 0 else store.funcrefs.get(bits))
        return Value(name, bits)
