"""The internal interface between the embedding API and the engine, for hwsim's own layers.

``driver/``, ``process/``, ``spectest/`` and ``fuzz/`` are built on the public
API (:mod:`hwsim.runtime.api`, shaped like wasmtime-py) and need a few things
it hides on purpose: the engine object behind a public one, and a public
object for an engine object they made.  They get them here, never through
another object's ``_private`` attributes::

    public (api.py)          engine (the vm layer)
    ---------------          ---------------------
    Store          <-> vm_store      store.Store: machine, address space, invoke, traps
    Module          -> vm_module     wasm.Module: the decoded module (imports, data, sections)
    Instance        -> vm_instance   instance.Instance: memories, globals, tables, eval_const
    Memory         <-> vm_memory     objects.MemoryInstance   (api_memory: the other way)
    Table           -> vm_table      objects.TableInstance
    Global          -> vm_global     objects.GlobalInstance
    Func           <-> vm_func       objects.FuncRecord       (api_func: the other way)

Everything here is hwsim-internal: an embedder uses :mod:`hwsim` only.
"""

from __future__ import annotations

from . import api

__all__ = [
    "api_func",
    "api_memory",
    "vm_func",
    "vm_global",
    "vm_instance",
    "vm_memory",
    "vm_module",
    "vm_store",
    "vm_table",
]


def vm_store(store: api.Store):
    """The engine Store (:class:`hwsim.runtime.store.Store`) behind a public Store."""
    return store._store


def vm_module(module: api.Module):
    """The decoded, validated module (:class:`hwsim.wasm.Module`) of a public Module."""
    return module._module


def vm_instance(instance: api.Instance):
    """The engine instance (:class:`hwsim.runtime.instance.Instance`) of a public Instance."""
    return instance._inner


def vm_memory(memory: api.Memory | api.SharedMemory):
    """The engine memory of a Memory, or of a SharedMemory placed in a Store (None before)."""
    return memory._inner


def vm_table(table: api.Table):
    return table._inner


def vm_global(global_: api.Global):
    return global_._inner


def vm_func(func: api.Func):
    """The function record (code, vmctx, type) a public Func stands for."""
    return func._record


def api_memory(store: api.Store, inner) -> api.Memory:
    """A public Memory for an engine memory of ``store`` (e.g. a device window made by the host)."""
    vm_store(store).check_owned(inner, "the memory")
    return api.Memory(None, _inner=inner)


def api_func(store: api.Store, record) -> api.Func:
    """A public Func for a function record of ``store``."""
    vm_store(store).check_owned(record, "the function")
    return api.Func(None, None, None, _record=record)
