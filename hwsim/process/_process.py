"""A process: position-independent modules sharing one memory 0, one table and one stack in one Store.

::

    Process ── Store (one Sv39 space)
      ├── memory 0 (env.memory)          PageAllocator: null page | module data | stack | mmap | free ...
      ├── table (env.__indirect_function_table)   slot 0 null | module slots | GOT.func slots ...
      ├── __stack_pointer (env.__stack_pointer)   the top of the stack region
      ├── hwsim:process mmap / munmap / mprotect  host functions over the allocator
      └── modules, in load order, and the symbols they define
"""

from __future__ import annotations

import errno as _errno
import os
from collections.abc import Callable
from typing import Any

from ..compiler.traps import TrapCode
from ..mmu.bits import PAGE_SIZE
from ..runtime import api
from ..runtime.internal import vm_func, vm_memory, vm_store, vm_table
from ..runtime.store import Trap
from ._allocator import PROT_READ, PROT_WRITE, WASM_PAGE, PageAllocator
from ._errors import DuplicateSymbolError, LoadError, MemoryRequestError, ProcessError
from ._loader import APPLY_DATA_RELOCS, CALL_CTORS, DATA, ENV, FUNCTION, LoadSet, Symbol

_I32 = api.ValType.i32()


class LoadedModule:
    """A module loaded into a process: where its data and table slots are, and its instance."""

    def __init__(self, process: Process, cand) -> None:
        d = cand.dylink
        self.process = process
        self.name: str = cand.name
        self.path: str | None = cand.path
        self.needed: list[str] = list(d.needed)
        self.memory_base: int = cand.memory_base
        self.memory_size: int = d.memory_size
        self.memory_align: int = 1 << d.memory_align_log2
        self.table_base: int = cand.table_base
        self.table_size: int = d.table_size
        self.instance: api.Instance = cand.instance
        self.symbols: list[str] = sorted(s.name for s in cand.definitions)

    @property
    def exports(self) -> api.Exports:
        return self.instance.exports(self.process.store)

    def __repr__(self) -> str:
        return (
            f"<LoadedModule {self.name}: data [{self.memory_base:#x}, +{self.memory_size:#x}), "
            f"table [{self.table_base}, +{self.table_size})>"
        )


class Process:
    """Several position-independent modules in one address space (see docs/processes.md).

    ``search_path``: directories where libraries named in NEEDED lists are looked for
    (after the needing module's own RUNTIME_PATH, where ``$ORIGIN`` is its directory).
    ``stack_size``/``stack_guard``: the shared stack and the never-mapped pages below it.
    ``max_memory``: the most memory 0 may grow to, in bytes (default: 4 GiB).
    ``trap_on_error``: a refused mmap/munmap/mprotect from a module traps instead of
    returning ``-errno``.  Refusals are also recorded in :attr:`errors`.
    """

    def __init__(
        self,
        engine: api.Engine | None = None,
        *,
        search_path=(),
        stack_size: int = 64 << 10,
        stack_guard: int = 64 << 10,
        max_memory: int | None = None,
        ram_size: int | None = None,
        time_limit: float | None = None,
        trap_on_error: bool = False,
    ) -> None:
        for name, value in (("stack_size", stack_size), ("stack_guard", stack_guard)):
            if not isinstance(value, int) or value <= 0 or value % PAGE_SIZE:
                raise ProcessError(f"{name} must be a positive multiple of {PAGE_SIZE} bytes, not {value!r}")
        if max_memory is not None and (max_memory < WASM_PAGE or max_memory % WASM_PAGE):
            raise ProcessError(f"max_memory must be a positive multiple of {WASM_PAGE} bytes, not {max_memory!r}")
        self.engine = engine or api.Engine()
        self.store = api.Store(self.engine, ram_size=ram_size, time_limit=time_limit)
        self.search_path = [os.fspath(d) for d in search_path]
        self.trap_on_error = trap_on_error
        max_pages = None if max_memory is None else max_memory // WASM_PAGE
        self.memory = api.Memory(self.store, api.MemoryType(api.Limits(1, max_pages)))
        self.allocator = PageAllocator(vm_memory(self.memory))
        self.table = api.Table(self.store, api.TableType(api.ValType.funcref(), api.Limits(1, None)), None)
        guard = self.allocator.allocate(stack_guard, what="the stack guard", mapped=False)
        stack = self.allocator.allocate(stack_size, what="the stack")
        assert stack == guard + stack_guard
        self.stack_top = stack + stack_size
        self.stack_pointer = api.Global(self.store, api.GlobalType(_I32, True), self.stack_top)
        self.modules: dict[str, LoadedModule] = {}
        self.symbols: dict[str, Symbol] = {}
        self.func_slots: dict[str, int] = {}
        self.host: dict[tuple[str, str], Any] = {}
        self.unbound_funcs: dict[str, list] = {}  # weak imports still undefined: name -> [(record, importer)]
        self.unbound_gots: dict[str, list] = {}  # name -> [(GOT global, "GOT.mem" or "GOT.func")]
        self.errors: list[str] = []  # every refused mmap/munmap/mprotect from a module, with its reason
        self.syscalls = self._make_syscalls()
        self.module_of_vmctx: dict[int, str] = {}  # instance vmctx -> module name (whose call is it)

    # -- loading ---------------------------------------------------------------------------------------

    def define(self, module: str, name: str, item) -> None:
        """Provide import ``module.name`` (a Func, Global, ...) to every module loaded from now on.

        A function defined in ``env`` is a symbol like a module's: modules may take its address.
        """
        key = (module, name)
        if key in self.host:
            raise DuplicateSymbolError(f"{module}.{name} is already defined by the host")
        if module == ENV and isinstance(item, api.Func):
            if name in self.symbols:
                raise DuplicateSymbolError(
                    f"symbol `{name}` is defined by both {self.symbols[name].owner} and the host"
                )
            record = vm_func(item)
            self.symbols[name] = Symbol(name, FUNCTION, "the host", ftype=record.type, record=record)
        self.host[key] = item

    def define_func(
        self, module: str, name: str, ty: api.FuncType, func: Callable, access_caller: bool = False
    ) -> None:
        self.define(module, name, api.Func(self.store, ty, func, access_caller))

    def load(self, target: str | os.PathLike, *, wasm: bytes | None = None) -> LoadedModule:
        """Load a module and the libraries it needs, link them, and run their relocations and constructors.

        ``target`` is a path (containing a directory separator or naming an existing file), or a
        library name looked for in the search path; with ``wasm``, it is just the module's name.
        Loading a module already loaded returns it.
        """
        target = os.fspath(target)
        name = os.path.basename(target)
        if name in self.modules:
            return self.modules[name]
        path = None
        if wasm is None and (os.sep in target or os.path.isfile(target)):
            path = target
        loading = LoadSet(self)
        loading.discover(name, path, wasm)
        loading.resolve()
        try:
            loading.allocate()
            loading.instantiate()
        except BaseException:
            loading.rollback()
            raise
        for cand in loading.commit():
            self.modules[cand.name] = LoadedModule(self, cand)
        for hook in (APPLY_DATA_RELOCS, CALL_CTORS):
            for cand in loading.order:
                assert cand.instance is not None  # instantiate() made every module's instance
                func = cand.instance.exports(self.store).get(hook)
                if func is not None:
                    try:
                        self._call(func)
                    except Trap as trap:
                        raise LoadError(
                            f"{cand.name}: {hook} trapped ({cand.name} stays loaded, half initialised): {trap.summary}"
                        ) from trap
        return self.modules[name]

    def grow_table(self, size: int) -> int:
        """Grow the shared table to at least ``size`` slots (new ones null); its size."""
        table = vm_table(self.table)
        if size > table.size and table.grow(size - table.size, 0) < 0:
            raise LoadError(f"the process's table cannot grow to {size} slots")
        return table.size

    # -- symbols and calls ----------------------------------------------------------------------------

    def symbol(self, name: str):
        """A data symbol's linear address (int), or a function symbol as a Func."""
        sym = self.symbols.get(name)
        if sym is None:
            raise KeyError(f"no loaded module defines `{name}`")
        if sym.kind == DATA:
            return sym.address
        assert sym.record is not None  # a loaded function symbol has its record
        return api.Func(None, None, None, _record=sym.record)

    def call(self, name: str, *args):
        """Call function symbol ``name`` with ``args`` (as ``Func.__call__``).

        A trap unwinds the wasm frames but not the C stack they kept in memory 0: the
        ``__stack_pointer`` is put back to where it was before the call, so the process can
        go on (a call made through ``LoadedModule.exports`` does not do this).
        """
        func = self.symbol(name)
        if not isinstance(func, api.Func):
            raise ProcessError(f"`{name}` is data at {func:#x}, not a function")
        return self._call(func, *args)

    def _call(self, func: api.Func, *args):
        sp = self.stack_pointer.value(self.store)
        try:
            return func(self.store, *args)
        except Trap:
            self.stack_pointer.set_value(self.store, sp)
            raise

    def function_pointer(self, name: str) -> int:
        """The table index C code sees as ``&name`` (giving the symbol a slot if it has none yet)."""
        sym = self.symbols.get(name)
        if sym is None or sym.kind != FUNCTION:
            raise KeyError(f"no loaded module defines function `{name}`")
        slot = self.func_slots.get(name)
        if slot is None:
            slot = self.func_slots[name] = self.grow_table(vm_table(self.table).size + 1) - 1
            assert sym.record is not None  # a loaded function symbol has its record
            vm_table(self.table).set(slot, sym.record.va)
        return slot

    # -- memory ------------------------------------------------------------------------------------------

    def mmap(self, length: int, prot: int = PROT_READ | PROT_WRITE) -> int:
        """New zeroed pages (POSIX ``prot`` bits); their address.  Raises MemoryRequestError."""
        return self.allocator.mmap(length, prot)

    def munmap(self, addr: int, length: int) -> None:
        self.allocator.munmap(addr, length)

    def mprotect(self, addr: int, length: int, prot: int) -> None:
        self.allocator.mprotect(addr, length, prot)

    def read(self, addr: int, length: int) -> bytes:
        return bytes(self.memory.read(self.store, addr, addr + length))

    def write(self, addr: int, data: bytes) -> None:
        self.memory.write(self.store, data, addr)

    def describe(self, addr: int) -> str:
        """What is at a linear address (module data, the stack, an mmap region, ...)."""
        return self.allocator.describe(addr)

    # -- the hwsim:process functions ----------------------------------------------------------------------

    def _make_syscalls(self) -> dict[str, api.Func]:
        M = 0xFFFF_FFFF
        calls = {
            "mmap": (2, lambda length, prot: self.allocator.mmap(length & M, prot)),
            "munmap": (2, lambda addr, length: self.allocator.munmap(addr & M, length & M)),
            "mprotect": (3, lambda addr, length, prot: self.allocator.mprotect(addr & M, length & M, prot)),
        }
        out = {}
        for name, (arity, op) in calls.items():
            out[name] = api.Func(self.store, api.FuncType([_I32] * arity, [_I32]), self._syscall(name, op))
        return out

    def _syscall(self, name: str, op) -> Callable:
        def call(*args) -> int:
            try:
                result = op(*args)
            except MemoryRequestError as exc:
                shown = ", ".join(
                    str(a) if i == len(args) - 1 and name != "munmap" else f"{a & 0xFFFF_FFFF:#x}"
                    for i, a in enumerate(args)
                )  # addresses and lengths in hex, prot in decimal
                message = f"{self._caller()}: {name}({shown}) = -{_errno.errorcode[exc.errno]}: {exc.reason}"
                self.errors.append(message)
                if self.trap_on_error:
                    raise vm_store(self.store).host_call_trap(TrapCode.MEMORY_CONTROL, message) from None
                return -exc.errno
            return 0 if result is None else result

        return call

    def _caller(self) -> str:
        return self.module_of_vmctx.get(vm_store(self.store).caller_vmctx, "a module")


__all__ = ["LoadedModule", "Process"]
