"""The WebAssembly runtime: Stores, instances and the wasmtime-py-shaped embedding API."""

from .api import (Caller, Engine, Func, FuncType, Global, GlobalType, Instance, Limits, Linker, Memory, MemoryType,
                  Module, Store, Table, TableType, Trap, TrapCode, Val, ValType, WasmtimeError)

__all__ = ["Caller", "Engine", "Func", "FuncType", "Global", "GlobalType", "Instance", "Limits", "Linker", "Memory",
           "MemoryType", "Module", "Store", "Table", "TableType", "Trap", "TrapCode", "Val", "ValType", "WasmtimeError"]
