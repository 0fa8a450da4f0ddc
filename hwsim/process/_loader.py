"""The dynamic loader: position-independent modules (``dylink.0``) loaded into one process and linked.

One ``Process.load`` loads a *load set*: the named module and every library its
NEEDED lists reach that is not loaded yet, dependencies first.  It goes in
phases, and nothing is changed in the process before the first three pass::

    1 discover   read and compile each module; check it is PIC and imports only what a process gives
    2 resolve    the set's symbols (exports) against the process's; every import must find a
                 definition (or be weak): duplicate, missing and mistyped symbols are reported here
    3 allocate   each module's data region (dylink.0 memory size and alignment) from the page
                 allocator, and its slots in the shared table
    4 instantiate  in order, each module with __memory_base/__table_base, GOT.mem/GOT.func globals and
                 its function imports; an import of a module later in the order (a cycle) is a
                 placeholder record bound once its definer exists
    5 commit     the set's symbols join the process's (weak imports left undefined by earlier loads
                 are bound now), then __wasm_apply_data_relocs and __wasm_call_ctors run in order

A failure in phases 1-4 gives back the set's memory and leaves the process as it was.

Symbols follow ELF where the tool conventions are silent: a module's exports are its definitions (an
exported immutable i32 global is a data address relative to its ``__memory_base``); a definition is
weak when ``dylink.0`` says so or when its module imports the name itself (wasm-ld makes a module
import the weak definitions it calls, so another module may interpose them).  A weak definition gives
way to a strong one in the same load set; the first loaded definition wins otherwise; two strong
definitions are an error (ELF would let the first one win silently).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from ..compiler.intrinsics import MODULES as INTRINSIC_MODULES
from ..compiler.traps import TrapCode
from ..errors import HwsimError
from ..runtime import api
from ..runtime import layout as L
from ..runtime.internal import vm_global, vm_instance, vm_memory, vm_module, vm_store, vm_table
from ..runtime.memctl import SECTION as MEMORY_LAYOUT
from ..runtime.objects import FuncRecord
from ..runtime.store import Trap
from ..wasm.dylink import WASM_SYM_BINDING_WEAK, WASM_SYM_TLS
from ..wasm.types import I32, ExternKind
from ._errors import DuplicateSymbolError, LibraryNotFoundError, LoadError, OutOfMemoryError, UndefinedSymbolError

ENV = "env"
GOT_MEM = "GOT.mem"
GOT_FUNC = "GOT.func"
SYSCALLS = "hwsim:process"
MEMORY_IMPORT = "memory"
TABLE_IMPORT = "__indirect_function_table"
PROVIDED_GLOBALS = ("__memory_base", "__table_base", "__stack_pointer")
# Exports that are the module's business with its loader, never symbols.
_LOADER_EXPORTS = frozenset(
    {
        "__post_instantiate",
        "__tls_base",
        "__tls_size",
        "__tls_align",
        "__stack_pointer",
        "__memory_base",
        "__table_base",
        "__heap_base",
        "__data_end",
        "__dso_handle",
    }
)
APPLY_DATA_RELOCS = "__wasm_apply_data_relocs"
CALL_CTORS = "__wasm_call_ctors"

FUNCTION, DATA = "function", "data"


@dataclass(eq=False)
class Symbol:
    """A definition in the process: a function (its record) or data (its linear address)."""

    name: str
    kind: str  # FUNCTION or DATA
    owner: str  # the defining module, or "the host"
    weak: bool = False
    ftype: object = None  # wasm FuncType, for functions
    record: FuncRecord | None = None  # functions, once instantiated
    address: int | None = None  # data, once instantiated
    export: tuple | None = None  # (kind, index) in the owner's module


@dataclass(eq=False)
class _Candidate:
    """A module of the load set being loaded."""

    name: str
    path: str | None
    module: api.Module
    needed_by: _Candidate | None
    definitions: list[Symbol] = field(default_factory=list)
    plans: list = field(default_factory=list)  # per import: how it is satisfied
    memory_base: int = 0
    table_base: int = 0
    instance: api.Instance | None = None

    @property
    def wasm(self):
        return vm_module(self.module)

    @property
    def dylink(self):
        return vm_module(self.module).dylink


def _signature(ftype) -> str:
    names = {0x7F: "i32", 0x7E: "i64", 0x7D: "f32", 0x7C: "f64", 0x70: "funcref", 0x6F: "externref"}
    return (
        "["
        + " ".join(names.get(t, hex(t)) for t in ftype.params)
        + "] -> ["
        + " ".join(names.get(t, hex(t)) for t in ftype.results)
        + "]"
    )


def _same_type(a, b) -> bool:
    return tuple(a.params) == tuple(b.params) and tuple(a.results) == tuple(b.results)


class LoadSet:
    """One ``Process.load``: the phases of the module docstring."""

    def __init__(self, process) -> None:
        self.p = process
        self.order: list[_Candidate] = []
        self.view: dict[str, Symbol] = {}  # the process's symbols, then the set's
        self.pending: dict[str, list[FuncRecord]] = {}  # placeholders waiting for a definer in the set
        self.slots: dict[str, int] = {}  # table slots given to function symbols by this set
        self.weak_funcs: dict[str, list[tuple[FuncRecord, str]]] = {}  # weak imports left undefined
        self.weak_gots: dict[str, list[tuple[api.Global, str]]] = {}
        self.regions: list[int] = []
        self.gots_waiting: dict[str, list[tuple[api.Global, str]]] = {}  # definer -> GOT.mem globals to fill

    # -- 1 discover ------------------------------------------------------------------------------

    def discover(self, name: str, path: str | None, wasm: bytes | None) -> _Candidate:
        visiting: set[str] = set()

        def visit(name, path, wasm, needed_by):
            if name in self.p.modules or name in visiting:
                return  # loaded already, or a cycle of NEEDED (fine: imports are bound late)
            visiting.add(name)
            if wasm is None:
                path = self._find_library(name, needed_by) if path is None else path
                try:
                    wasm = Path(path).read_bytes()
                except OSError as exc:
                    raise LoadError(f"cannot read {path}: {exc.strerror}") from None
            cand = _Candidate(name, path, self._compile(name, wasm), needed_by)
            self._check(cand)
            for dep in cand.dylink.needed:
                visit(dep, None, None, cand)
            self.order.append(cand)
            return cand

        return visit(name, path, wasm, None)

    def _find_library(self, name: str, needed_by: _Candidate | None) -> str:
        dirs = []
        if needed_by is not None:
            origin = os.path.dirname(needed_by.path) if needed_by.path else "."
            dirs += [d.replace("$ORIGIN", origin) for d in needed_by.dylink.runtime_path]
        dirs += [str(d) for d in self.p.search_path]
        for d in dirs:
            candidate = os.path.join(d, name)
            if os.path.isfile(candidate):
                return candidate
        who = f"{needed_by.name} needs {name}" if needed_by else f"cannot find {name}"
        where = "none of: " + ", ".join(dirs) if dirs else "no directory: the process has an empty search path"
        raise LibraryNotFoundError(f"{who}, which is in {where}")

    def _compile(self, name: str, wasm: bytes) -> api.Module:
        try:
            return api.Module(self.p.engine, wasm)
        except HwsimError as exc:
            raise LoadError(f"cannot load {name}: {exc}") from None

    def _check(self, cand: _Candidate) -> None:
        m, name = cand.wasm, cand.name
        if m.dylink is None:
            why = (
                f"malformed dylink.0 section: {m.dylink_error}"
                if m.dylink_error
                else "it has no dylink.0 section (build it with zig cc -fPIC -shared, or -fPIE -pie for a main "
                "module; see docs/processes.md)"
            )
            raise LoadError(f"{name} is not a position-independent module: {why}")
        if m.get_custom_sections(MEMORY_LAYOUT):
            raise LoadError(
                f"{name} declares a memory layout (custom section {MEMORY_LAYOUT!r}); in a process, "
                f"memory 0's layout is the process's (its first page is protected already)"
            )
        if m.memories:
            raise LoadError(
                f"{name} defines its own memory; a process module imports env.memory (link it with -Wl,--import-memory)"
            )
        if m.tables:
            raise LoadError(
                f"{name} defines its own table; a process module imports "
                f"env.__indirect_function_table (link it with -Wl,--import-table)"
            )
        tls = [n for n, flags in m.dylink.export_info.items() if flags & WASM_SYM_TLS]
        if tls:
            raise LoadError(
                f"{name} exports thread-local symbols ({', '.join(sorted(tls))}), which hwsim.process does not support"
            )
        for imp in m.imports:
            where = f"{name} imports {imp.module}.{imp.name}"
            if imp.kind == ExternKind.MEMORY:
                if (imp.module, imp.name) != (ENV, MEMORY_IMPORT):
                    raise LoadError(f"{where} as a memory; the process's memory is env.memory")
                if imp.desc.index_type != I32:
                    raise LoadError(f"{where} as a 64-bit memory; a process's memory 0 is 32-bit")
            elif imp.kind == ExternKind.TABLE and (imp.module, imp.name) != (ENV, TABLE_IMPORT):
                raise LoadError(f"{where} as a table; the process's table is env.{TABLE_IMPORT}")

    # -- 2 resolve -----------------------------------------------------------------------------------

    def resolve(self) -> None:
        self.view = dict(self.p.symbols)
        for cand in self.order:
            for sym in self._definitions(cand):
                self._define(sym)
        for cand in self.order:
            cand.definitions = [s for s in self.view.values() if s.owner == cand.name]
        missing: list[tuple[str, str, str]] = []
        for cand in self.order:
            cand.plans = [self._plan(cand, imp, missing) for imp in cand.wasm.imports]
        if missing:
            lines = [f"{who} needs {what} `{sym}`" for who, sym, what in missing]
            raise UndefinedSymbolError(
                "undefined symbol" + ("s" if len(lines) > 1 else "") + ": " + "; ".join(lines), missing
            )
        for name, records in self.p.unbound_funcs.items():  # earlier loads' weak imports this set defines
            sym = self.view.get(name)
            if sym is not None and sym.owner in self.names and sym.kind == FUNCTION:
                for record, importer in records:
                    self._check_func(sym, record.type, importer)

    @property
    def names(self) -> set[str]:
        return {c.name for c in self.order}

    def _definitions(self, cand: _Candidate):
        m = cand.wasm
        func_types = m.get_func_type_indices()
        global_types = m.get_global_types()
        self_imports = {imp.name for imp in m.imports if imp.module == ENV and imp.kind == ExternKind.FUNC}
        num_imported = {
            ExternKind.FUNC: m.num_imported_funcs,
            ExternKind.GLOBAL: sum(1 for _ in m.iter_imports(ExternKind.GLOBAL)),
        }
        for export in m.exports:
            name = export.name
            if name in _LOADER_EXPORTS or name.startswith("__wasm_"):
                continue
            if export.index < num_imported.get(export.kind, 0):
                continue  # a re-exported import defines nothing
            weak = bool(m.dylink.export_info.get(name, 0) & WASM_SYM_BINDING_WEAK) or name in self_imports
            if export.kind == ExternKind.FUNC:
                yield Symbol(
                    name,
                    FUNCTION,
                    cand.name,
                    weak,
                    ftype=m.types[func_types[export.index]],
                    export=(export.kind, export.index),
                )
            elif export.kind == ExternKind.GLOBAL:
                gt = global_types[export.index]
                if gt.valtype == I32 and not gt.mutable:
                    yield Symbol(name, DATA, cand.name, weak, export=(export.kind, export.index))

    def _define(self, sym: Symbol) -> None:
        old = self.view.get(sym.name)
        if old is None:
            self.view[sym.name] = sym
        elif not old.weak and not sym.weak:
            raise DuplicateSymbolError(f"symbol `{sym.name}` is defined by both {old.owner} and {sym.owner}")
        elif old.weak and not sym.weak and old.owner in self.names:
            self.view[sym.name] = sym  # a strong definition overrides a weak one of the same load set

    def _plan(self, cand: _Candidate, imp, missing: list) -> tuple:
        m = cand.wasm
        key = (imp.module, imp.name)
        weak = bool(m.dylink.import_info.get(key, 0) & WASM_SYM_BINDING_WEAK)
        if imp.kind == ExternKind.MEMORY:
            return ("memory",)
        if imp.kind == ExternKind.TABLE:
            return ("table",)
        if imp.kind == ExternKind.FUNC:
            if imp.module in INTRINSIC_MODULES:
                return ("intrinsic",)
            if imp.module == SYSCALLS:
                if imp.name not in self.p.syscalls:
                    raise LoadError(
                        f"{cand.name} imports {SYSCALLS}.{imp.name}: {SYSCALLS} has no such "
                        f"function (it has: {', '.join(sorted(self.p.syscalls))})"
                    )
                return ("syscall", imp.name)
            if key in self.p.host:
                return ("host", self.p.host[key])
            sym = self.view.get(imp.name) if imp.module == ENV else None
            if sym is not None:
                if sym.kind != FUNCTION:
                    raise LoadError(f"{cand.name} calls `{imp.name}`, which {sym.owner} defines as data")
                self._check_func(sym, m.types[imp.desc], cand.name)
                return ("symbol", sym)
            if weak:
                return ("weak-func", imp.name)
            missing.append((cand.name, imp.name if imp.module == ENV else f"{imp.module}.{imp.name}", FUNCTION))
            return ("missing",)
        # Globals.
        if imp.module == ENV and imp.name in PROVIDED_GLOBALS:
            gt = imp.desc
            want_mutable = imp.name == "__stack_pointer"
            if gt.valtype != I32 or gt.mutable != want_mutable:
                raise LoadError(
                    f"{cand.name} imports env.{imp.name} as a {'mutable ' if gt.mutable else ''}"
                    f"global of type {gt.valtype:#x}; the process gives a "
                    f"{'mutable ' if want_mutable else ''}i32"
                )
            return ("provided", imp.name)
        if imp.module in (GOT_MEM, GOT_FUNC):
            if imp.desc.valtype != I32:
                raise LoadError(f"{cand.name} imports {imp.module}.{imp.name} with a type other than i32")
            kind = DATA if imp.module == GOT_MEM else FUNCTION
            sym = self.view.get(imp.name)
            if sym is not None:
                if sym.kind != kind:
                    raise LoadError(
                        f"{cand.name} takes the {'address' if kind == DATA else 'function pointer'} "
                        f"of `{imp.name}` ({imp.module}), which {sym.owner} defines as a {sym.kind}"
                    )
                return ("got", sym)
            if weak:
                return ("weak-got", imp.name)
            missing.append((cand.name, imp.name, "data address" if kind == DATA else "function address"))
            return ("missing",)
        if key in self.p.host:
            return ("host", self.p.host[key])
        raise LoadError(
            f"{cand.name} imports global {imp.module}.{imp.name}, which a process does not provide "
            f"(it gives env.__memory_base, env.__table_base, env.__stack_pointer, GOT.mem.* and "
            f"GOT.func.*; Process.define adds others)"
        )

    @staticmethod
    def _check_func(sym: Symbol, want, importer: str) -> None:
        if not _same_type(sym.ftype, want):
            raise LoadError(
                f"symbol `{sym.name}`: {importer} imports it as {_signature(want)}, {sym.owner} "
                f"defines it as {_signature(sym.ftype)}"
            )

    # -- 3 allocate ---------------------------------------------------------------------------------

    def allocate(self) -> None:
        p = self.p
        for cand in self.order:
            d = cand.dylink
            if d.memory_size:
                try:
                    cand.memory_base = p.allocator.allocate(
                        d.memory_size, what=f"the data of {cand.name}", align=max(1 << d.memory_align_log2, 1)
                    )
                except OutOfMemoryError as exc:
                    raise OutOfMemoryError(
                        f"cannot load {cand.name} ({d.memory_size:#x} bytes of data): {exc.reason}"
                    ) from None
                self.regions.append(cand.memory_base)
            table = vm_table(p.table)
            align = 1 << d.table_align_log2
            cand.table_base = (table.size + align - 1) & ~(align - 1)
            if d.table_size:
                p.grow_table(cand.table_base + d.table_size)
            for imp in cand.wasm.imports:  # imports' minimum sizes
                if imp.kind == ExternKind.TABLE:
                    p.grow_table(imp.desc.limits.min)
                elif imp.kind == ExternKind.MEMORY:
                    try:
                        p.allocator.grow_to(imp.desc.limits.min * vm_memory(p.memory).page_size)
                    except OutOfMemoryError as exc:
                        raise OutOfMemoryError(
                            f"cannot load {cand.name}: its memory import needs at least "
                            f"{imp.desc.limits.min} pages: {exc.reason}"
                        ) from None

    def rollback(self) -> None:
        for start in self.regions:
            self.p.allocator.release(start)
        self.regions.clear()

    # -- 4 instantiate -------------------------------------------------------------------------------

    def instantiate(self) -> None:
        p = self.p
        for cand in self.order:
            imports = [self._import(cand, imp, plan) for imp, plan in zip(cand.wasm.imports, cand.plans)]
            try:
                cand.instance = api.Instance(p.store, cand.module, imports)
            except api.WasmtimeError as exc:
                raise LoadError(f"{cand.name}: {exc}") from None
            except Trap as trap:
                raise LoadError(f"{cand.name}: instantiation trapped: {trap.summary}") from trap
            inner = vm_instance(cand.instance)
            p.module_of_vmctx[inner.vmctx] = cand.name
            for sym in cand.definitions:
                assert sym.export is not None  # a module's definitions are its exports
                kind, index = sym.export
                if sym.kind == FUNCTION:
                    sym.record = inner.funcs[index]
                    for record in self.pending.pop(sym.name, []):
                        _bind(record, sym.record)
                    if sym.name in self.slots:
                        vm_table(p.table).set(self.slots[sym.name], sym.record.va)
                else:
                    sym.address = (cand.memory_base + inner.globals[index].get_bits()) & 0xFFFF_FFFF
            for g, name in self.gots_waiting.pop(cand.name, []):
                vm_global(g).set_bits(self.view[name].address)

    def _import(self, cand: _Candidate, imp, plan):
        p = self.p
        what = plan[0]
        if what == "memory":
            return p.memory
        if what == "table":
            return p.table
        if what == "intrinsic":
            return None
        if what == "syscall":
            return p.syscalls[plan[1]]
        if what == "host":
            return plan[1]
        if what == "provided":
            if plan[1] == "__stack_pointer":
                return p.stack_pointer
            base = cand.memory_base if plan[1] == "__memory_base" else cand.table_base
            return api.Global(p.store, api.GlobalType(api.ValType.i32(), False), base)
        if what == "symbol":
            sym = plan[1]
            if sym.record is not None:
                return api.Func(None, None, None, _record=sym.record)
            record = self._placeholder(cand.wasm.types[imp.desc], imp.name, cand.name, weak=False)
            self.pending.setdefault(sym.name, []).append(record)
            return api.Func(None, None, None, _record=record)
        if what == "weak-func":
            record = self._placeholder(cand.wasm.types[imp.desc], imp.name, cand.name, weak=True)
            self.weak_funcs.setdefault(imp.name, []).append((record, cand.name))
            return api.Func(None, None, None, _record=record)
        mutable = imp.desc.mutable
        if what == "got":
            sym = plan[1]
            g = api.Global(p.store, api.GlobalType(api.ValType.i32(), mutable), 0)
            if sym.kind == FUNCTION:
                vm_global(g).set_bits(self._slot(sym))
            elif sym.address is not None:
                vm_global(g).set_bits(sym.address)
            elif not mutable:
                raise LoadError(
                    f"{cand.name} imports GOT.mem.{sym.name} as an immutable global, and {sym.owner} "
                    f"is loaded after it: the address is not known yet (GOT.mem imports are mutable)"
                )
            else:
                self.gots_waiting.setdefault(sym.owner, []).append((g, sym.name))
            return g
        if what == "weak-got":
            g = api.Global(p.store, api.GlobalType(api.ValType.i32(), mutable), 0)  # an undefined weak: NULL
            self.weak_gots.setdefault(imp.name, []).append((g, imp.module))
            return g
        raise AssertionError(plan)

    def _slot(self, sym: Symbol) -> int:
        """The table slot of function symbol ``sym`` (one per symbol: function pointers compare equal)."""
        slot = self.p.func_slots.get(sym.name, self.slots.get(sym.name))
        if slot is None:
            slot = self.slots[sym.name] = self.p.grow_table(vm_table(self.p.table).size + 1) - 1
            if sym.record is not None:
                vm_table(self.p.table).set(slot, sym.record.va)
        return slot

    def _placeholder(self, ftype, name: str, importer: str, *, weak: bool) -> FuncRecord:
        """A function record standing for ``name`` until it is bound; calling it before then traps."""
        why = (
            f"call to undefined weak symbol `{name}` (imported by {importer})"
            if weak
            else f"call to `{name}` (imported by {importer}) before its module was instantiated"
        )

        def unbound(args):
            raise Trap(TrapCode.UNREACHABLE, detail=why)

        s = vm_store(self.p.store)
        return FuncRecord(s, ftype, code=L.HOSTCALL_STUB, vmctx=s.host_vmctx, host=unbound)

    # -- 5 commit ------------------------------------------------------------------------------------

    def commit(self) -> list[_Candidate]:
        p = self.p
        assert not self.pending, self.pending
        new = {s.name: s for c in self.order for s in c.definitions}
        p.symbols.update(new)
        for name in [n for n in p.unbound_funcs if n in new and new[n].kind == FUNCTION]:
            defined = new[name].record
            assert defined is not None  # instantiate() gave every function definition its record
            for record, _importer in p.unbound_funcs.pop(name):
                _bind(record, defined)
        for name in [n for n in p.unbound_gots if n in new]:
            sym = new[name]
            for g, module in p.unbound_gots.pop(name):
                if (module == GOT_MEM) != (sym.kind == DATA):
                    continue  # the name is now defined as the other kind: the weak import stays NULL
                if vm_global(g).mutable:
                    vm_global(g).set_bits(sym.address if sym.kind == DATA else self._slot(sym))
        p.func_slots.update(self.slots)
        for name, records in self.weak_funcs.items():
            p.unbound_funcs.setdefault(name, []).extend(records)
        for name, gots in self.weak_gots.items():
            p.unbound_gots.setdefault(name, []).extend(gots)
        return self.order


def _bind(record: FuncRecord, target: FuncRecord) -> None:
    """Make placeholder ``record`` call ``target``: compiled code reads code and vmctx from the record
    at each call, so the importer's calls go straight to the definition from now on."""
    s = record.store
    s.write_u64(record.va + L.FUNCREF_CODE, target.code)
    s.write_u64(record.va + L.FUNCREF_VMCTX, s.read_u64(target.va + L.FUNCREF_VMCTX))
    record.code, record.host, record.instance, record.index = target.code, target.host, target.instance, target.index


__all__ = ["LoadSet", "Symbol"]
