"""hwsim: a hardware-simulated runtime on an emulated RISC-V 64 CPU with Sv39 page tables.

The public surface is re-exported here; submodules whose names start with an
underscore, and anything not listed in ``__all__``, are private.
"""

from typing import TYPE_CHECKING

from ._version import __version__

if TYPE_CHECKING:
    from .errors import (
        BusError,
        ClosedError,
        ConfigError,
        HwsimError,
        MappingError,
        OutOfBoundsError,
        OutOfFrames,
        StoreMismatchError,
    )
    from .machine import CpuFault, EcallAction, Machine, RunResult, StopReason
    from .mmu import SV39, SV48, AddressSpace, AdPolicy, Pte, Tlb, walk
    from .riscv.priv import Access, Cause, Priv
    from .runtime import (
        I31,
        Caller,
        Config,
        Engine,
        ExportType,
        Frame,
        Func,
        FuncType,
        GcObject,
        GcStats,
        Global,
        GlobalType,
        ImportType,
        Instance,
        InstancePre,
        Limits,
        Linker,
        Memory,
        MemoryType,
        Module,
        Store,
        Table,
        TableType,
        Tag,
        TagType,
        Trap,
        TrapCode,
        Val,
        ValType,
        WasmException,
        WasmtimeError,
        wat2wasm,
    )
    from .runtime.handles import MemoryHandle
    from .wasi import DirPerms, ExitTrap, FilePerms, WasiConfig

# Where each public name lives.  They are imported on first use (PEP 562), so that ``import hwsim``
# (and every ``hwsim`` command) loads only what it needs: the CPU, the compiler and the disassembler
# are a good part of a second to import.
_WHERE = {
    "Access": ".riscv.priv",
    "AdPolicy": ".mmu",
    "AddressSpace": ".mmu",
    "BusError": ".errors",
    "Caller": ".runtime",
    "Cause": ".riscv.priv",
    "ClosedError": ".errors",
    "Config": ".runtime",
    "ConfigError": ".errors",
    "CpuFault": ".machine",
    "DirPerms": ".wasi",
    "EcallAction": ".machine",
    "Engine": ".runtime",
    "ExitTrap": ".wasi",
    "ExportType": ".runtime",
    "FilePerms": ".wasi",
    "Frame": ".runtime",
    "Func": ".runtime",
    "FuncType": ".runtime",
    "Global": ".runtime",
    "GlobalType": ".runtime",
    "ImportType": ".runtime",
    "HwsimError": ".errors",
    "Instance": ".runtime",
    "InstancePre": ".runtime",
    "Limits": ".runtime",
    "Linker": ".runtime",
    "Machine": ".machine",
    "MappingError": ".errors",
    "Memory": ".runtime",
    "MemoryHandle": ".runtime.handles",
    "MemoryType": ".runtime",
    "SharedMemory": ".runtime",
    "Module": ".runtime",
    "OutOfBoundsError": ".errors",
    "OutOfFrames": ".errors",
    "Priv": ".riscv.priv",
    "Pte": ".mmu",
    "RunResult": ".machine",
    "SV39": ".mmu",
    "SV48": ".mmu",
    "StopReason": ".machine",
    "Store": ".runtime",
    "StoreMismatchError": ".errors",
    "Table": ".runtime",
    "TableType": ".runtime",
    "Tag": ".runtime",
    "TagType": ".runtime",
    "Tlb": ".mmu",
    "Trap": ".runtime",
    "I31": ".runtime",
    "GcObject": ".runtime",
    "GcStats": ".runtime",
    "TrapCode": ".runtime",
    "Val": ".runtime",
    "ValType": ".runtime",
    "WasiConfig": ".wasi",
    "WasmException": ".runtime",
    "WasmtimeError": ".runtime",
    "walk": ".mmu",
    "wat2wasm": ".runtime",
}


def __getattr__(name: str) -> object:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'hwsim' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)


__all__ = [
    "Access",
    "AddressSpace",
    "AdPolicy",
    "BusError",
    "Caller",
    "Cause",
    "ClosedError",
    "Config",
    "ConfigError",
    "CpuFault",
    "DirPerms",
    "EcallAction",
    "Engine",
    "ExitTrap",
    "ExportType",
    "FilePerms",
    "Frame",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "GcObject",
    "GcStats",
    "I31",
    "HwsimError",
    "ImportType",
    "Instance",
    "InstancePre",
    "Limits",
    "Linker",
    "Machine",
    "MappingError",
    "Memory",
    "MemoryHandle",
    "MemoryType",
    "SharedMemory",
    "Module",
    "OutOfBoundsError",
    "OutOfFrames",
    "Priv",
    "Pte",
    "RunResult",
    "SV39",
    "SV48",
    "StopReason",
    "Store",
    "StoreMismatchError",
    "Table",
    "TableType",
    "Tag",
    "TagType",
    "Tlb",
    "Trap",
    "TrapCode",
    "Val",
    "ValType",
    "WasiConfig",
    "WasmException",
    "WasmtimeError",
    "__version__",
    "walk",
    "wat2wasm",
]
