"""Run one module in hwsim and in wasmtime (the oracle) the same way, recording what each did as plain data.

A run is: compile, instantiate with no imports, call every exported function
once in export order with the arguments of a :class:`CallPlan`, then read
every exported memory, global and table.  Both sides record a
:class:`Run`; :mod:`hwsim.fuzz.campaign` compares them.

Outcomes are tuples of strings and ints so they cross process boundaries:

=============================  =================================================
``("ok", values)``             values: ``("i32", bits)``, ``("funcref", "null")``, ``("anyref", "i31 -5")``...
``("trap", code)``             code: a :class:`~hwsim.compiler.traps.TrapCode` name
``("exhausted", what)``        ``stack`` or ``time`` (fuel or time limit)
``("rejected", reason)``       compiling refused the module (first line of the error)
``("unsupported", reason)``    hwsim: outside its scope (UnsupportedFeatureError)
``("limit", reason)``          a resource limit (memory/table too large, RAM)
``("error", reason)``          an error that is neither: a bug in that engine
=============================  =================================================

wasmtime's trap codes are mapped onto hwsim's (:func:`wasmtime_traps`); where
wasmtime has one code for several of hwsim's, each is accepted when comparing.

GC values (``hwsim fuzz --gc``) are compared by what the host can observe
of them: a reference of the any hierarchy (``anyref``, concrete struct and
array types...) is ``null``, ``i31 N`` (its signed value) or ``ref`` (an
object; objects have no identity across engines).  A reference argument
can be a real value (:class:`CallPlan`): a result of an earlier call, an
exported global's value, an exported table's element or an exported
function, whichever's static type
matches the parameter's; each engine passes its own value of that source.
A non-nullable parameter with no such source is not called from the host
(the module's own calls still run it).  A source that gives nothing at run
time (its call trapped, or it is null for a non-nullable parameter) makes
the call ``("skipped", why)`` in both engines alike.
"""

from __future__ import annotations

import ctypes
import hashlib
import random
import struct
import traceback
import zlib
from dataclasses import dataclass, field
from typing import Any

from ..compiler.traps import TrapCode
from ..errors import HwsimError
from ..wasm.types import (
    ANYREF,
    EXNREF,
    EXTERNREF,
    F32,
    F64,
    FUNCREF,
    I32,
    I64,
    V128,
    is_nullable,
    is_ref,
    ref_type_index,
)
from .smith import FUEL, FUEL_EXPORT

TYPE_NAMES = {
    I32: "i32",
    I64: "i64",
    F32: "f32",
    F64: "f64",
    V128: "v128",
    FUNCREF: "funcref",
    EXTERNREF: "externref",
    EXNREF: "exnref",
    ANYREF: "anyref",
}
_WASMTIME_ANYREF = 7  # WASMTIME_ANYREF (wasmtime.h): GC's any hierarchy
_WASMTIME_EXNREF = 8  # WASMTIME_EXNREF (wasmtime.h; wasmtime-py 50 names no constant for it)
WIDTHS = {"i32": 4, "i64": 8, "f32": 4, "f64": 8, "v128": 16}

# Per call: hwsim's wall-clock budget and wasmtime's fuel.  Smith's own fuel global ends loops long before
# either (see SMITH_FLAGS); these only catch what it does not, and count as "exhausted" on that side.
TIME_LIMIT = 5.0
WASMTIME_FUEL = 200_000_000
RAM_BYTES = 256 << 20


# -- arguments ------------------------------------------------------------------------------------------

_INTS32 = (0, 1, 2, 7, 0xFFFF_FFFF, 0x7FFF_FFFF, 0x8000_0000, 0xFF, 0xFFFF, 0x1_0000 - 4, 0x1000, 65536, 16)
_INTS64 = (0, 1, 2, 3, (1 << 64) - 1, (1 << 63) - 1, 1 << 63, 0xFFFF_FFFF, 1 << 32, 0x1_0000, 0x1000, 8)
_F32 = (
    0x0000_0000,
    0x8000_0000,
    0x3F80_0000,
    0xBFC0_0000,
    0x7F80_0000,
    0xFF80_0000,
    0x7FC0_0000,
    0x4F00_0000,
    0xCF00_0000,
    0x0000_0001,
    0x4B80_0000,
)
_F64 = (
    0,
    1 << 63,
    0x3FF0_0000_0000_0000,
    0xBFF8_0000_0000_0000,
    0x7FF0_0000_0000_0000,
    0xFFF0_0000_0000_0000,
    0x7FF8_0000_0000_0000,
    0x41E0_0000_0000_0000,
    0xC3E0_0000_0000_0000,
    1,
    0x4330_0000_0000_0000,
)
# v128 edges: lanes of float and integer edge cases side by side (NaNs, infinities, -0, extremes).
_V128 = tuple(
    sum(lane << (32 * i) for i, lane in enumerate(lanes))
    for lanes in (
        (0, 0, 0, 0),
        (0xFFFF_FFFF,) * 4,
        _F32[:4],
        _F32[4:8],
        _F32[7:11],
        (0x7F80_0000, 0xFF80_0000, 0x8000_0000, 0x7FC0_0000),
        (0, 0x7FF8_0000, 0, 0xFFF0_0000),  # f64: +0 and NaN; -0 and -inf
        (0x8000_0000, 0x7FFF_FFFF, 0x0001_8000, 0xFF7F_80FF),
        (0x0102_0304, 0x0506_0708, 0x090A_0B0C, 0x0D0E_0F10),
    )
)
_EDGES = {"i32": _INTS32, "i64": _INTS64, "f32": _F32, "f64": _F64, "v128": _V128}


# -- the imports (smith.IMPORTS_WAT), the same in both engines -------------------------------------------

HOST_FUNCS = {
    "i32": (("i32",), ("i32",)),
    "i64_i64": (("i64", "i64"), ("i64",)),
    "f32": (("f32",), ("f32",)),
    "f64_i32": (("f64", "i32"), ("f64",)),
    "void": ((), ()),
    "multi": (("i32", "i64", "f32", "f64"), ("i32", "i64", "f64")),
    "many": (("i32",) * 9 + ("i64", "i64", "f64"), ("i64",)),
}
G_I32 = 42
G_F64 = 1.5


def _norm(ty: str, value) -> object:
    """An argument as a host function sees it: integers as unsigned bits, floats as the bits of the Python
    float both engines hand over (NaN payloads and signs included; an f32 arrives widened to a double)."""
    if ty in ("i32", "i64"):
        return value & ((1 << (8 * WIDTHS[ty])) - 1)
    return struct.pack("<d", value).hex()


def host_call(log: list, name: str, args) -> object:
    """What host function ``name`` does: record the call in ``log``; results hashed from it (deterministic)."""
    params, results = HOST_FUNCS[name]
    log.append((name, *(_norm(t, a) for t, a in zip(params, args))))
    h = zlib.crc32(repr((log[-1], len(log))).encode())
    out: list[int | float] = []
    for ty in results:
        if ty == "i32":
            out.append(h - (1 << 32) if h >> 31 else h)
        elif ty == "i64":
            v = (h * 0x9E37_79B9_7F4A_7C15) & ((1 << 64) - 1)
            out.append(v - (1 << 64) if v >> 63 else v)
        else:
            out.append((h % 1000) / 8.0)
    return None if not out else out[0] if len(out) == 1 else out


def _log_digest(log: list, start: int) -> str:
    return _digest(repr(log[start:]).encode()) if len(log) > start else ""


def value_name(module, t: int) -> str:
    """The fuzzer's name of value type ``t`` in ``module`` (a decoded Module): a number type's name, or a
    reference type's hierarchy: ``funcref``, ``externref``, ``exnref`` or ``anyref`` (GC's any hierarchy)."""
    from ..wasm.subtyping import abstract_top
    from ..wasm.types import FuncType

    if t in (I32, I64, F32, F64, V128):
        return TYPE_NAMES[t]
    index = ref_type_index(t)
    if index is not None:
        return "funcref" if isinstance(module.types[index], FuncType) else "anyref"
    return TYPE_NAMES[abstract_top(t)]


def _arg(rng: random.Random, ty: str):
    if ty in ("funcref", "externref", "exnref", "anyref"):
        return (ty, "null")
    if rng.random() < 0.7:
        return (ty, rng.choice(_EDGES[ty]))
    bits = rng.getrandbits(WIDTHS[ty] * 8)
    if ty in ("i32", "i64") and rng.random() < 0.5:
        bits = rng.getrandbits(rng.randint(1, 12))  # small numbers make good addresses and indexes
    return (ty, bits)


# A reference argument's source (the second item of a call's ``(type, source)``; numbers are ``(type, bits)``):
#   "null"                             the null reference
#   ("result", call, index, nullable)  result ``index`` of the plan's earlier call number ``call``
#   ("global", export, nullable)       the value exported global ``export`` holds when the call is made
#   ("func", export, nullable)         exported function ``export``
#   ("table", export, index, nullable) element ``index`` of exported table ``export`` when the call is made
# ``nullable``: whether the parameter takes null (a null source value for a non-nullable one skips the call).
REF_SOURCE_CHANCE = 0.75  # how often a nullable reference parameter gets a real value when there is one


@dataclass
class CallPlan:
    """Which exports to call, in order, and with what: ``[(name, [(type, bits or source), ...]), ...]``; the
    type names of each call's results (``results``) and the exported globals of GC's any hierarchy
    (``anyrefs``), whose values the engines show apart from externrefs."""

    calls: list
    results: dict = field(default_factory=dict)  # export name -> (type name, ...)
    anyrefs: frozenset = frozenset()

    @classmethod
    def for_module(cls, module, seed: int) -> CallPlan:
        """Every exported function of ``module`` (a decoded hwsim Module), arguments drawn from ``seed``."""
        from ..wasm.types import ExternKind

        nimported = sum(1 for i in module.imports if i.kind is ExternKind.FUNC)
        nglobals = sum(1 for i in module.imports if i.kind is ExternKind.GLOBAL)
        sources = _RefSources(module)
        calls: list = []
        results: dict = {}
        anyrefs: set = set()
        table_types = module.get_table_types()
        for export in module.exports:  # what holds references whatever is called: globals, tables, functions
            if export.kind is ExternKind.GLOBAL and export.index >= nglobals:
                valtype = module.globals[export.index - nglobals].type.valtype
                if value_name(module, valtype) == "anyref":
                    anyrefs.add(export.name)
                sources.add(("global", export.name), valtype)
            elif export.kind is ExternKind.TABLE and table_types[export.index].limits.min:
                table = table_types[export.index]
                sources.add(("table", export.name, table.limits.min), table.elem_type)
            elif export.kind is ExternKind.FUNC:
                sources.add_func(export.name, export.index)
        for export in module.exports:
            if export.kind is not ExternKind.FUNC:
                continue
            index = export.index
            if index < nimported:
                continue
            ftype = module.types[module.funcs[index - nimported].type_index]
            rng = random.Random(f"{seed}/{export.name}")  # per export: stable while a module is shrunk
            args = []
            for p in ftype.params:
                arg = _arg(rng, value_name(module, p))
                if is_ref(p) and value_name(module, p) != "exnref":
                    found = sources.matching(p)
                    if found and (not is_nullable(p) or rng.random() < REF_SOURCE_CHANCE):
                        source = rng.choice(found)
                        if source[0] == "table":  # an element below its initial size (tables never shrink)
                            source = ("table", source[1], rng.randrange(source[2]))
                        arg = (arg[0], (*source, is_nullable(p)))
                if not is_nullable(p) and arg[1] == "null":
                    break  # a non-nullable reference parameter with no source: the host has nothing to pass
                args.append(arg)
            else:
                sources.add_results(len(calls), ftype.results)
                calls.append((export.name, args))
                results[export.name] = tuple(value_name(module, r) for r in ftype.results)
        return cls(calls, results, frozenset(anyrefs))


class _RefSources:
    """The reference values a plan can pass, with their static types: exported globals, tables and functions,
    and the results of the calls planned so far."""

    def __init__(self, module) -> None:
        from ..wasm.subtyping import canonical_ids
        from ..wasm.types import ExternKind

        self.module = module
        supers = None if module.supertypes is None else [s[0] if s else None for s in module.supertypes]
        self.canon = canonical_ids(module.types, module.rec_groups, supers, module.finals)
        imported = [i for i in module.imports if i.kind is ExternKind.FUNC]
        self.func_types = [i.desc for i in imported] + [f.type_index for f in module.funcs]
        self.found: list[tuple[tuple, int]] = []  # (source without nullability, static type)

    def add(self, source: tuple, valtype: int) -> None:
        if is_ref(valtype):
            self.found.append((source, valtype))

    def add_func(self, name: str, index: int) -> None:
        from ..wasm.types import ref_concrete

        if 0 <= index < len(self.func_types) and isinstance(self.func_types[index], int):
            self.add(("func", name), ref_concrete(self.func_types[index], nullable=False))

    def add_results(self, call: int, results) -> None:
        for i, r in enumerate(results):
            self.add(("result", call, i), r)

    def matching(self, param: int) -> list[tuple]:
        """The sources whose values fit ``param`` (null aside: a nullable source may give one)."""
        from ..wasm.subtyping import matches
        from ..wasm.types import ref_as_non_null

        want = ref_as_non_null(param)
        return [src for src, t in self.found if matches(self.canon, ref_as_non_null(t), want)]


def resolve_source(position: int, source: tuple, returned: list, read, is_null) -> tuple[Any, str | None]:
    """An engine's value of a reference argument's ``source`` (``read(source)`` for a global, table element or
    function; ``returned``: each earlier call's results, None where it returned none) and why the call cannot
    be made (the same words from both engines), or None."""
    if source[0] == "result":
        values = returned[source[1]]
        if values is None:
            return None, f"argument {position}: call {source[1]} gave no value"
        value = values[source[2]]
    else:
        value = read(source)
    if is_null(value) and not source[-1]:
        return None, f"argument {position}: {source[0]} {source[1]} is null, the parameter non-nullable"
    return value, None


@dataclass
class Run:
    """What one engine did with one module."""

    engine: str
    load: tuple = ("ok",)
    instantiate: tuple | None = None
    calls: list = field(default_factory=list)  # [(name, outcome, digest of the host calls it made)]
    instantiate_log: str = ""  # digest of the host calls the start function made
    final: dict = field(default_factory=dict)  # "memory NAME" -> (bytes, sha256), "global NAME" -> value, ...
    memories: dict = field(default_factory=dict)  # "memory NAME" -> bytes (kept to locate a difference)
    escaped: str | None = None  # a traceback: an exception that should never have left the API
    # engine's reference (hwsim: record address; wasmtime: raw funcref pointer) -> "func EXPORT-NAME": references
    # are compared by the exported function they name (smith exports every function, imported ones too); a
    # function not exported (or any, before exports exist) is just "ref"
    labels: dict = field(default_factory=dict, compare=False, repr=False)
    object_calls: int = 0  # calls made with a non-null reference among their arguments


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:32]


def _table_digest(size: int, labels) -> tuple:
    """A table as its size and a digest of what each entry names ("null", "func NAME" or "ref")."""
    return (size, _digest(repr(list(labels)).encode()))


def _label(labels: dict, key) -> str:
    return "null" if not key else labels.get(key, "ref")


# -- hwsim ------------------------------------------------------------------------------------------------


def _hwsim_outcome(exc: BaseException) -> tuple:
    from ..runtime.objects import ResourceLimitError
    from ..runtime.store import Trap
    from ..wasm.errors import UnsupportedFeatureError, WasmError

    if isinstance(exc, Trap):
        if exc.code is TrapCode.STACK_OVERFLOW:
            return ("exhausted", "stack")
        if exc.code is TrapCode.INTERRUPTED:
            return ("exhausted", "time")
        if exc.code is TrapCode.GC_HEAP_EXHAUSTED:  # a resource limit, each engine's own (wasmtime's: RAM)
            return ("limit", exc.code.value)
        return ("trap", exc.code.name)
    if isinstance(exc, UnsupportedFeatureError):
        return ("unsupported", str(exc))
    if isinstance(exc, WasmError):
        return ("rejected", f"{type(exc).__name__}: {exc}")
    if isinstance(exc, ResourceLimitError):
        return ("limit", str(exc))
    return ("error", f"{type(exc).__name__}: {exc}")


_INDIRECT_CALLS = (0x11, 0x13)  # call_indirect, return_call_indirect


def _table_trap_site(outcome: tuple, exc, wasm: bytes) -> tuple:
    """wasmtime has one code (table out of bounds) for hwsim's two; hwsim's must then fit the instruction
    that trapped: ``undefined element`` only at an indirect call, ``out of bounds table access`` elsewhere.
    A misfit gets a name of its own, which matches nothing of wasmtime's."""
    code = outcome[1] if outcome[0] == "trap" else None
    offset = getattr(exc, "wasm_offset", None)
    if code not in ("UNDEFINED_ELEMENT", "TABLE_OUT_OF_BOUNDS") or offset is None or not 0 <= offset < len(wasm):
        return outcome
    if (code == "UNDEFINED_ELEMENT") != (wasm[offset] in _INDIRECT_CALLS):
        return ("trap", f"{code} at opcode {wasm[offset]:#04x}")
    return outcome


def run_hwsim(wasm: bytes, plan: CallPlan | None, *, time_limit: float = TIME_LIMIT) -> Run:
    """Compile, instantiate and call ``wasm`` in a fresh hwsim Store (``plan`` None: load only)."""
    from ..runtime import api
    from ..runtime.internal import vm_func, vm_global

    run = Run("hwsim")
    try:
        engine = api.Engine(cache=False)
        store = api.Store(engine, time_limit=time_limit, ram_size=RAM_BYTES)
        try:
            module = api.Module(engine, wasm)
        except HwsimError as exc:
            run.load = _hwsim_outcome(exc)
            return run
        if plan is None:
            return run
        log: list = []
        provided = _hwsim_imports(api, store, log)
        imports = []
        for imp in module.imports:
            if imp.module != "env" or imp.name not in provided:
                run.load = ("unsupported", f"import {imp.module}.{imp.name} is not among the fuzzer's imports")
                return run
            imports.append(provided[imp.name])
        try:
            instance = api.Instance(store, module, imports)
        except HwsimError as exc:
            run.instantiate = _table_trap_site(_hwsim_outcome(exc), exc, wasm)
            if run.instantiate[0] == "trap":  # what the segments and the start function did before it stays
                _hwsim_imports_final(run, module, provided)
            return run
        finally:
            run.instantiate_log = _log_digest(log, 0)
        run.instantiate = ("ok",)
        exports = instance.exports(store)
        for export in module.exports:
            if _kind(export.type) == "func":
                run.labels.setdefault(vm_func(exports[export.name]).va, f"func {export.name}")
        fuel = exports.get(FUEL_EXPORT)
        returned: list = []  # per call: its result Vals (None: it returned none)
        for name, args in plan.calls:
            func = exports[name]
            returned.append(None)
            params, skip, objects = _hwsim_args(api, store, exports, args, returned)
            if skip is not None:
                run.calls.append((name, ("skipped", skip), ""))
                continue
            if isinstance(fuel, api.Global):
                vm_global(fuel).set_bits(FUEL)
            start = len(log)
            try:
                vals = func.call_vals(store, *params)
                returned[-1] = vals
                declared = plan.results.get(name, ())
                outcome = ("ok", [_hwsim_value(v, run.labels, *declared[i : i + 1]) for i, v in enumerate(vals)])
            except HwsimError as exc:
                outcome = _table_trap_site(_hwsim_outcome(exc), exc, wasm)
            run.calls.append((name, outcome, _log_digest(log, start)))
            run.object_calls += objects
            if outcome[0] != "ok" and outcome[0] != "trap":
                return run  # the state after exhaustion or an error is not comparable
        _hwsim_imports_final(run, module, provided)
        for export in module.exports:
            anyref = export.name in plan.anyrefs
            _hwsim_final(run, "", _kind(export.type), export.name, exports[export.name], anyref=anyref)
    except Exception:  # noqa: BLE001 -- the point: nothing but HwsimError may leave the API
        run.escaped = traceback.format_exc()
    return run


def _hwsim_args(api, store, exports, args, returned: list) -> tuple[list, str | None, int]:
    """A call's arguments in hwsim: (Vals, why it is skipped or None, 1 if a non-null reference is among them)."""
    params, objects = [], 0
    for position, (t, arg) in enumerate(args):
        if t in WIDTHS:
            params.append(api.Val(api.ValType(_code(t)), arg))
            continue
        if arg == "null":
            params.append(api.Val(api.ValType(_code(t))))
            continue

        def read(source, t=t):
            item = exports[source[1]]
            ref = (
                item.value(store)
                if source[0] == "global"
                else item.get(store, source[2])
                if source[0] == "table"
                else item
            )
            return api.Val(api.ValType(_code(t)), ref=ref)

        value, why = resolve_source(position, arg, returned, read, lambda v: v.ref is None)
        if why is not None:
            return [], why, 0
        objects |= value.ref is not None
        params.append(value)
    return params, None, objects


def _hwsim_imports_final(run: Run, module, provided: dict) -> None:
    """Record the imported memories, globals and tables in ``run.final`` (``imported KIND NAME``)."""
    for imp in module.imports:
        _hwsim_final(run, "imported ", _kind(imp.type), imp.name, provided[imp.name])


def _kind(extern_type) -> str:
    """``func``, ``memory``, ``global`` or ``table``: the kind of an import's or export's type."""
    return {"FuncType": "func", "MemoryType": "memory", "GlobalType": "global", "TableType": "table", "TagType": "tag"}[
        type(extern_type).__name__
    ]


def _hwsim_final(run: Run, prefix: str, kind: str, name: str, item, *, anyref: bool = False) -> None:
    """Record ``item`` (a memory, global or table; functions are skipped) as ``PREFIXKIND NAME``
    (``anyref``: a global of GC's any hierarchy)."""
    key, inner = f"{prefix}{kind} {name}", getattr(item, "_inner", None)
    if inner is None or kind == "tag":  # a function (a Func has no _inner), a tag (nothing to read)
        return
    if kind == "memory":
        data = bytes(inner.read(0, inner.size_bytes))
        run.memories[key] = data
        run.final[key] = (len(data), _digest(data))
    elif kind == "global":
        ty = "anyref" if anyref else TYPE_NAMES[inner.valtype]
        run.final[key] = _raw_value(ty, inner.get_bits(), run.labels)
    elif kind == "table":
        run.final[key] = _table_digest(inner.size, (_label(run.labels, inner.get(i)) for i in range(inner.size)))


def _hwsim_imports(api, store, log: list) -> dict:
    def vt(t):
        return getattr(api.ValType, t)()

    out = {}
    for name, (params, results) in HOST_FUNCS.items():
        out[name] = api.Func(
            store,
            api.FuncType([vt(p) for p in params], [vt(r) for r in results]),
            lambda *args, _name=name: host_call(log, _name, args),
        )
    out["g_i32"] = api.Global(store, api.GlobalType(api.ValType.i32(), False), G_I32)
    out["g_f64"] = api.Global(store, api.GlobalType(api.ValType.f64(), True), G_F64)
    out["mem"] = api.Memory(store, api.MemoryType(api.Limits(1, 4)))
    out["tab"] = api.Table(store, api.TableType(api.ValType.funcref(), api.Limits(4, 8)), None)
    return out


def _code(ty: str) -> int:
    """hwsim's value type code for a type name (GC's any hierarchy runs as externref: docs/gc.md)."""
    return EXTERNREF if ty == "anyref" else {v: k for k, v in TYPE_NAMES.items()}[ty]


def _any_label(i31: int | None, non_null: bool) -> str:
    """What the host observes of a reference of GC's any hierarchy: ``null``, ``i31 N`` or ``ref``."""
    return f"i31 {i31}" if i31 is not None else "ref" if non_null else "null"


def _raw_value(ty: str, bits: int, labels: dict) -> tuple:
    if ty in WIDTHS:
        return (ty, bits)
    if ty == "anyref":
        from ..runtime.api import I31

        return (ty, _any_label(I31.from_word(bits).value if bits & 1 else None, bits != 0))
    return (ty, _label(labels, bits) if ty == "funcref" else "null" if not bits else "ref")


def _hwsim_value(val, labels: dict, declared: str | None = None) -> tuple:
    ty = TYPE_NAMES[val.type.code]
    if ty in WIDTHS:
        return (ty, val.bits)
    if ty == "funcref":
        from ..runtime.internal import vm_func

        return (ty, _label(labels, vm_func(val.ref).va if val.ref is not None else 0))
    if declared == "anyref":
        from ..runtime.api import I31

        return (declared, _any_label(val.ref.value if isinstance(val.ref, I31) else None, val.ref is not None))
    return (ty, "null" if val.ref is None else "ref")


# -- wasmtime ------------------------------------------------------------------------------------------------


def _wasmtime():
    try:
        import wasmtime
    except ImportError:
        from .smith import FuzzError

        raise FuzzError("the wasmtime package (the oracle) is not installed: pip install wasmtime") from None
    return wasmtime


def wasmtime_engine():
    """A wasmtime Engine with hwsim's features on and fuel metering."""
    wasmtime = _wasmtime()
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
    config.wasm_relaxed_simd_deterministic = True  # hwsim's relaxed SIMD (docs/architecture.md, *SIMD*)
    config.wasm_threads = False
    config.wasm_gc = True  # hwsim fuzz --gc (smith.GC_FLAGS)
    config.wasm_function_references = True
    config.wasm_exceptions = True  # hwsim fuzz --exceptions (smith.EXCEPTIONS_FLAGS)
    config.consume_fuel = True
    # RISC-V's FPU gives every arithmetic NaN result the canonical pattern (positive, quiet, zero payload):
    # one of the choices the specification allows.  wasmtime on x86 keeps payload bits and signs instead;
    # with this option it canonicalises too, so NaNs compare bit for bit (docs/reliability.md).
    config.cranelift_nan_canonicalization = True
    return wasmtime.Engine(config)


_WT_TRAPS: dict | None = None


def wasmtime_traps() -> dict:
    """wasmtime TrapCode -> the hwsim TrapCode names it may stand for."""
    global _WT_TRAPS
    if _WT_TRAPS is None:
        wt = _wasmtime().TrapCode
        _WT_TRAPS = {
            wt.UNREACHABLE: ("UNREACHABLE",),
            wt.MEMORY_OUT_OF_BOUNDS: ("MEMORY_OUT_OF_BOUNDS",),
            # one wasmtime code for an index past a table's end, whatever the instruction
            wt.TABLE_OUT_OF_BOUNDS: ("TABLE_OUT_OF_BOUNDS", "UNDEFINED_ELEMENT"),
            wt.INDIRECT_CALL_TO_NULL: ("INDIRECT_CALL_TO_NULL",),
            wt.BAD_SIGNATURE: ("BAD_SIGNATURE",),
            wt.INTEGER_OVERFLOW: ("INTEGER_OVERFLOW",),
            wt.INTEGER_DIVISION_BY_ZERO: ("INTEGER_DIVIDE_BY_ZERO",),
            wt.BAD_CONVERSION_TO_INTEGER: ("BAD_CONVERSION_TO_INTEGER",),
            # (throw_ref, call_ref, i31.get, struct.get/set, array.get/set/len... of null)
            wt.NULL_REFERENCE: (
                "NULL_REFERENCE",
                "NULL_EXCEPTION_REFERENCE",
                "NULL_FUNCTION_REFERENCE",
                "NULL_I31_REFERENCE",
                "NULL_STRUCTURE_REFERENCE",
                "NULL_ARRAY_REFERENCE",
            ),
            wt.UNCAUGHT_EXCEPTION: ("UNCAUGHT_EXCEPTION",),
            wt.CAST_FAILURE: ("CAST_FAILURE",),
            wt.ARRAY_OUT_OF_BOUNDS: ("ARRAY_OUT_OF_BOUNDS",),
        }
    return _WT_TRAPS


def _wasmtime_outcome(exc: BaseException) -> tuple:
    wasmtime = _wasmtime()
    if isinstance(exc, wasmtime.Trap):
        code = exc.trap_code
        if code == wasmtime.TrapCode.STACK_OVERFLOW:
            return ("exhausted", "stack")
        if code in (wasmtime.TrapCode.OUT_OF_FUEL, wasmtime.TrapCode.INTERRUPT):
            return ("exhausted", "time")
        if code == wasmtime.TrapCode.ALLOCATION_TOO_LARGE or _is_wasmtime_limit(exc.message):
            return ("limit", exc.message.splitlines()[0])
        names = wasmtime_traps().get(code)
        if names is None and "thrown Wasm exception" in exc.message:  # (wasmtime-py 50 gives no trap code)
            names = ("UNCAUGHT_EXCEPTION",)
        if names is None:
            return ("error", f"wasmtime trap {code}: {exc.message}")
        return ("trap", "|".join(names))
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return ("limit" if _is_wasmtime_limit(str(exc)) else "error", first)


def _is_wasmtime_limit(text: str) -> bool:
    return any(
        s in text
        for s in (
            "memory minimum size",
            "table minimum size",
            "exceeds memory limits",
            "resource limit",
            "failed to allocate",
            "Cannot allocate memory",
            "table exceeds",
            "memory exceeds",
            "GC heap out of memory",
        )
    )


def run_wasmtime(wasm: bytes, plan: CallPlan | None, *, engine=None, fuel: int = WASMTIME_FUEL) -> Run:
    """The same as :func:`run_hwsim`, in wasmtime (values cross as raw bits: NaN payloads survive)."""
    wasmtime = _wasmtime()
    from wasmtime import _ffi as ffi

    run = Run("wasmtime")
    engine = engine or wasmtime_engine()
    try:
        module = wasmtime.Module(engine, wasm)
    except wasmtime.WasmtimeError as exc:
        run.load = ("rejected", str(exc).splitlines()[0])
        return run
    if plan is None:
        return run
    store = wasmtime.Store(engine)
    store.set_fuel(fuel)
    log: list = []
    provided = _wasmtime_imports(wasmtime, store, log)
    imports = []
    for imp in module.imports:
        if imp.module != "env" or imp.name not in provided:
            run.load = ("unsupported", f"import {imp.module}.{imp.name} is not among the fuzzer's imports")
            return run
        imports.append(provided[imp.name])
    try:
        instance = wasmtime.Instance(store, module, imports)
    except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
        run.instantiate = _wasmtime_outcome(exc)
        if run.instantiate[0] == "trap":
            for imp in module.imports:
                _wasmtime_final(wasmtime, ffi, store, run, "imported ", imp.name, provided[imp.name])
        return run
    finally:
        run.instantiate_log = _log_digest(log, 0)
    run.instantiate = ("ok",)
    exports = instance.exports(store)
    for export in module.exports:
        item = exports[export.name]
        if isinstance(item, wasmtime.Func):
            run.labels.setdefault(_wasmtime_key(ffi, store, item), f"func {export.name}")
    smith_fuel = exports.get(FUEL_EXPORT)
    returned: list = []  # per call: its raw results (None: it returned none)
    for name, args in plan.calls:
        func = exports[name]
        returned.append(None)
        params, skip, objects = _wasmtime_args(wasmtime, ffi, store, exports, args, returned)
        if skip is not None:
            run.calls.append((name, ("skipped", skip), ""))
            continue
        store.set_fuel(fuel)
        if isinstance(smith_fuel, wasmtime.Global):
            smith_fuel.set_value(store, wasmtime.Val.i32(FUEL))
        start = len(log)
        try:
            values, returned[-1] = _wasmtime_call(wasmtime, ffi, store, func, params, run.labels)
            outcome = ("ok", values)
        except (wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            outcome = _wasmtime_outcome(exc)
        run.calls.append((name, outcome, _log_digest(log, start)))
        run.object_calls += objects
        if outcome[0] != "ok" and outcome[0] != "trap":
            return run
    for imp in module.imports:
        item = provided[imp.name]
        _wasmtime_final(wasmtime, ffi, store, run, "imported ", imp.name, item)
    for export in module.exports:
        _wasmtime_final(wasmtime, ffi, store, run, "", export.name, exports[export.name])
    return run


def _wasmtime_final(wasmtime, ffi, store, run: Run, prefix: str, name: str, item) -> None:
    """Record ``item`` (a memory, global or table) in ``run.final`` as ``PREFIXKIND NAME``."""
    key = prefix + "{} " + name.replace("{", "{{").replace("}", "}}")
    if isinstance(item, wasmtime.Memory):
        size = item.data_len(store)
        data = ctypes.string_at(item.data_ptr(store), size) if size else b""
        run.memories[key.format("memory")] = data
        run.final[key.format("memory")] = (size, _digest(data))
    elif isinstance(item, wasmtime.Global):
        raw = ffi.wasmtime_val_t()
        ffi.wasmtime_global_get(store._context(), ctypes.byref(item._global), ctypes.byref(raw))
        run.final[key.format("global")] = _from_raw(wasmtime, ffi, store, raw, run.labels)
    elif isinstance(item, wasmtime.Table):
        size = item.size(store)
        run.final[key.format("table")] = _table_digest(
            size, (_wasmtime_entry(wasmtime, ffi, store, run.labels, item, i) for i in range(size))
        )


def _wasmtime_imports(wasmtime, store, log: list) -> dict:
    def vt(t):
        return getattr(wasmtime.ValType, t)()

    out = {}
    for name, (params, results) in HOST_FUNCS.items():
        ftype = wasmtime.FuncType([vt(p) for p in params], [vt(r) for r in results])
        out[name] = wasmtime.Func(store, ftype, lambda *args, _name=name: host_call(log, _name, args))
    out["g_i32"] = wasmtime.Global(store, wasmtime.GlobalType(vt("i32"), False), wasmtime.Val.i32(G_I32))
    out["g_f64"] = wasmtime.Global(store, wasmtime.GlobalType(vt("f64"), True), wasmtime.Val.f64(G_F64))
    out["mem"] = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, 4)))
    out["tab"] = wasmtime.Table(store, wasmtime.TableType(wasmtime.ValType.funcref(), wasmtime.Limits(4, 8)), None)
    return out


def _wasmtime_key(ffi, store, func) -> int:
    """What identifies a function in wasmtime: its raw funcref pointer (the same for every handle to it)."""
    return ffi.wasmtime_func_to_raw(store._context(), ctypes.byref(func._func)) or 0


def _wasmtime_label(wasmtime, ffi, store, labels: dict, entry) -> str:
    """A table entry from wasmtime-py (None, a Func, or a Val holding either) as :func:`_label` names it."""
    entry = getattr(entry, "value", entry) if not isinstance(entry, wasmtime.Func) else entry
    if entry is None:
        return "null"
    return _label(labels, _wasmtime_key(ffi, store, entry)) if isinstance(entry, wasmtime.Func) else "ref"


def _wasmtime_entry(wasmtime, ffi, store, labels: dict, table, index: int) -> str:
    """Entry ``index`` of a wasmtime table as :func:`_label` names it (read raw: wasmtime-py 50's
    ``Table.get`` cannot read an exnref table)."""
    raw = ffi.wasmtime_val_t()
    ffi.wasmtime_table_get(store._context(), ctypes.byref(table._table), index, ctypes.byref(raw))
    if raw.kind == _WASMTIME_EXNREF:
        return "null" if raw.of.exnref.store_id == 0 else "ref"
    if raw.kind == _WASMTIME_ANYREF:
        return "null" if raw.of.anyref.store_id == 0 else "ref"
    if raw.kind == ffi.WASMTIME_EXTERNREF.value:  # (an externalized GC value: wasmtime-py shows None)
        return "null" if raw.of.externref.store_id == 0 else "ref"
    return _wasmtime_label(wasmtime, ffi, store, labels, wasmtime.Val._from_raw(store, raw))


def _wasmtime_args(wasmtime, ffi, store, exports, args, returned: list) -> tuple[list, str | None, int]:
    """A call's arguments as raw values: (values, why it is skipped or None, 1 if a non-null reference is
    among them); the same decisions as :func:`_hwsim_args`, on wasmtime's values."""
    params, objects = [], 0
    for position, (ty, arg) in enumerate(args):
        if ty in WIDTHS:
            raw = ffi.wasmtime_val_t(kind=getattr(ffi, f"WASMTIME_{ty.upper()}").value)
            ctypes.memmove(ctypes.addressof(raw.of), arg.to_bytes(WIDTHS[ty], "little"), WIDTHS[ty])
        elif arg == "null":
            if ty == "exnref" or ty == "anyref":  # all zero: the null exnref or anyref
                raw = ffi.wasmtime_val_t(kind=_WASMTIME_EXNREF if ty == "exnref" else _WASMTIME_ANYREF)
            else:
                val = wasmtime.Val.funcref(None) if ty == "funcref" else wasmtime.Val.externref(None)
                raw = val._new_raw(store)
        else:

            def read(source):
                item, raw = exports[source[1]], ffi.wasmtime_val_t()
                if source[0] == "global":
                    ffi.wasmtime_global_get(store._context(), ctypes.byref(item._global), ctypes.byref(raw))
                elif source[0] == "table":
                    ffi.wasmtime_table_get(store._context(), ctypes.byref(item._table), source[2], ctypes.byref(raw))
                else:
                    raw = wasmtime.Val.funcref(item)._new_raw(store)
                return raw

            raw, why = resolve_source(position, arg, returned, read, lambda r: _raw_is_null(ffi, r))
            if why is not None:
                return [], why, 0
            objects |= not _raw_is_null(ffi, raw)
        params.append(raw)
    return params, None, objects


def _raw_is_null(ffi, raw) -> bool:
    """Is a raw reference value null (every reference kind has a store id of 0 then)?"""
    field = {
        _WASMTIME_ANYREF: "anyref",
        _WASMTIME_EXNREF: "exnref",
        ffi.WASMTIME_EXTERNREF.value: "externref",
        ffi.WASMTIME_FUNCREF.value: "funcref",
    }[raw.kind]
    return getattr(raw.of, field).store_id == 0


def _wasmtime_call(wasmtime, ffi, store, func, args: list, labels: dict) -> tuple[list, list]:
    """Call ``func`` with raw ``args``: (its results as the fuzzer names them, the raw results)."""
    from wasmtime._func import enter_wasm

    nresults = len(func.type(store).results)
    params = (ffi.wasmtime_val_t * len(args))()
    for i, raw in enumerate(args):
        params[i] = raw
    results = (ffi.wasmtime_val_t * nresults)()
    with enter_wasm(store) as trap:
        error = ffi.wasmtime_func_call(
            store._context(), ctypes.byref(func._func), params, len(args), results, nresults, trap
        )
        if error:
            raise wasmtime.WasmtimeError._from_ptr(error)
    return [_from_raw(wasmtime, ffi, store, results[i], labels) for i in range(nresults)], list(results)


def _from_raw(wasmtime, ffi, store, raw, labels: dict) -> tuple:
    kind = raw.kind
    for ty in WIDTHS:
        if kind == getattr(ffi, f"WASMTIME_{ty.upper()}").value:
            data = ctypes.string_at(ctypes.addressof(raw.of), WIDTHS[ty])
            return (ty, int.from_bytes(data, "little"))
    if kind == _WASMTIME_EXNREF:
        return ("exnref", "null" if raw.of.exnref.store_id == 0 else "ref")
    if kind == _WASMTIME_ANYREF:  # (wasmtime-py 51 cannot read one: through the C API)
        ref = ctypes.byref(raw.of.anyref)
        i31 = None
        if raw.of.anyref.store_id and ffi.wasmtime_anyref_is_i31(store._context(), ref):
            bits = ctypes.c_uint32()
            ffi.wasmtime_anyref_i31_get_u(store._context(), ref, ctypes.byref(bits))
            i31 = bits.value - (1 << 31) if bits.value >> 30 else bits.value
        return ("anyref", _any_label(i31, raw.of.anyref.store_id != 0))
    if kind == ffi.WASMTIME_EXTERNREF.value:  # (an externalized GC value: wasmtime-py shows None)
        return ("externref", "null" if raw.of.externref.store_id == 0 else "ref")
    val = wasmtime.Val._from_raw(store, raw)
    if kind == ffi.WASMTIME_FUNCREF.value:
        return ("funcref", _wasmtime_label(wasmtime, ffi, store, labels, val.value))
    return ("externref", "null" if val.value is None else "ref")


__all__ = ["CallPlan", "Run", "run_hwsim", "run_wasmtime", "wasmtime_engine"]
