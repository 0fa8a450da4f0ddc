"""wasi-threads: ``wasi::thread-spawn(start_arg) -> tid``, as wasmtime's ``wasmtime-wasi-threads``.

A spawn makes a new instance of the calling module with the calling instance's imports (so the
same shared memory and host functions), and hands the Store's Scheduler (runtime/threads.py) a
thread that calls its export ``wasi_thread_start(tid, start_arg)``; the thread runs when the
scheduler picks it, on the same hart.  The result is the thread id (1 to 0x1FFFFFFF), or -1 when the
thread cannot be made: wasi-threads is off in the Store's WasiConfig, the module has no
``wasi_thread_start`` of type ``(i32, i32) -> ()`` (checked at the spawn, as wasmtime), it imports no
shared memory, the thread limit (``WasiConfig.max_threads``) or the ids are used up, or the Store
cannot hold another instance.  A trap in the new instance's start function ends the process, as
in wasmtime.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compiler.intrinsics import intrinsics_of
from ..runtime.errors import ResourceLimitError
from ..runtime.instance import LinkError, VmInstance
from ..wasm.types import I32, ExternKind

if TYPE_CHECKING:
    from ..runtime.store import VmStore
    from ..runtime.threads import Scheduler

ENTRY_POINT = "wasi_thread_start"
FAILED = -1  # wasmtime's result for every failure (the proposal: any negative value)


def entry_point_problem(instance: VmInstance) -> str | None:
    """Why ``instance``'s module cannot start threads (no entry point, a wrong type), or None."""
    export = instance.exports.get(ENTRY_POINT)
    if export is None or export[0] != ExternKind.FUNC:
        return f"the module exports no function `{ENTRY_POINT}`"
    ft = instance.funcs[export[1]].type
    if tuple(ft.params) != (I32, I32) or tuple(ft.results):
        return f"`{ENTRY_POINT}` has type {ft}, not [i32, i32] -> []"
    return None


def imports_of(instance: VmInstance) -> list:
    """The values ``instance`` was instantiated with, in its module's import order (None for intrinsics)."""
    module = instance.module
    intrinsics = intrinsics_of(module)
    counters = dict.fromkeys(ExternKind, 0)
    pools: dict[ExternKind, list] = {
        ExternKind.FUNC: instance.funcs,
        ExternKind.MEMORY: instance.memories,
        ExternKind.TABLE: instance.tables,
        ExternKind.GLOBAL: instance.globals,
    }
    values: list = []
    for imp in module.imports:
        index = counters[imp.kind]
        counters[imp.kind] += 1
        if imp.kind == ExternKind.FUNC and index in intrinsics:
            values.append(None)
        else:
            values.append(pools[imp.kind][index])
    return values


def spawn(store: VmStore, threads: Scheduler | None, caller: VmInstance | None, start_arg: int) -> tuple[int, str]:
    """Spawn a thread of ``caller``'s module: ``(tid, "")``, or ``(-1, why)``."""
    if threads is None:
        return FAILED, "wasi-threads is off (WasiConfig.threads)"
    if caller is None or not threads.active:
        return FAILED, "thread-spawn called from outside a wasm call"
    problem = entry_point_problem(caller)
    if problem is not None:
        return FAILED, problem
    module = caller.module
    imported_memories = caller.memories[: sum(1 for i in module.imports if i.kind == ExternKind.MEMORY)]
    if not any(m.type.shared for m in imported_memories):
        return FAILED, "the module imports no shared memory for its threads to share"
    if threads.live_spawned() >= threads.max_threads:
        return FAILED, f"{threads.max_threads} threads are running, the limit (WasiConfig.max_threads)"
    tid = threads.allocate_tid()
    if tid is None:
        return FAILED, "thread ids are used up"
    try:
        instance = VmInstance(store, module, caller.compiled, imports_of(caller))
    except (LinkError, ResourceLimitError) as exc:
        return FAILED, str(exc)
    instance.initialize()  # a trap in its start function ends the process, as in wasmtime
    entry = instance.funcs[instance.exports[ENTRY_POINT][1]]
    threads.spawn(tid, entry, [tid, start_arg & 0xFFFF_FFFF])
    return tid, ""
