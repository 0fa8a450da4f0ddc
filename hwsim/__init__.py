"""hwsim: a hardware-simulated runtime on an emulated RISC-V 64 CPU with Sv39 page tables.

The public surface is re-exported here; submodules whose names start with an
underscore, and anything not listed in ``__all__``, are private.
"""

from ._version import __version__
from .errors import BusError, ConfigError, HwsimError, MappingError, OutOfBoundsError, OutOfFrames, StoreMismatchError
from .machine import CpuFault, EcallAction, Machine, RunResult, StopReason
from .mmu import SV39, SV48, AddressSpace, AdPolicy, Pte, Tlb, walk
from .riscv.priv import Access, Cause, Priv
from .runtime import (
    Caller,
    Config,
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
    Store,
    Table,
    TableType,
    Trap,
    TrapCode,
    Val,
    ValType,
    WasmtimeError,
)

__all__ = [
    "Access",
    "AddressSpace",
    "AdPolicy",
    "BusError",
    "Caller",
    "Cause",
    "Config",
    "ConfigError",
    "CpuFault",
    "EcallAction",
    "Engine",
    "Func",
    "FuncType",
    "Global",
    "GlobalType",
    "HwsimError",
    "Instance",
    "Limits",
    "Linker",
    "Machine",
    "MappingError",
    "Memory",
    "MemoryType",
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
    "Tlb",
    "Trap",
    "TrapCode",
    "Val",
    "ValType",
    "WasmtimeError",
    "__version__",
    "walk",
]
