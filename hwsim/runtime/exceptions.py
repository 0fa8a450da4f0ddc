"""Exception handling in the engine: tags, exception objects, exnref handles, and the unwinder.

::

    throw $t (compiled: ecall Builtin.throw, a0 = tag index, payload as call arguments)
      |  builtins.throw -> Exn(tag, payload) -> unwind(store, exn, pc of the ecall, fp)
      v
    unwind: walk the frame-pointer chain ([fp-8] return address, [fp-16] caller's fp) from the call
      at pc; for each frame, the module's try_table regions holding that call, innermost first
      (CompiledModule.handlers_at), and their clauses in order: catch $t matches the frame's
      instance's tag $t by identity, catch_all anything.  A frame left behind gives back the
      callee-saved registers its prologue saved (saved_registers).
      |- found: land(): fp, the callee-saved registers as the handler frame had them, s1/s2/s3 for
      |         its instance, the carried values where a call's results go, pc = the landing pad
      |         (which resets sp and branches to the clause's label); the ecall resumes there
      `- not in this run (a return address outside compiled code: the host's entry):
                raise UncaughtException; a host function that called this run sees it raised by
                its call, and when it lets it go the ecall of that host function unwinds again
                from its own call site in the outer run (calls.py); at the root it reaches the
                embedder as a Trap with code UNCAUGHT_EXCEPTION

Traps are never caught: they are not exceptions, and nothing here sees them.  An ``exnref`` is a
64-bit handle (0 is null) into the Store's table of exception objects, made when a catch_ref or
catch_all_ref hands the exception to wasm; the table keeps such objects until ``Store.gc`` finds no
exnref global or table holding them (``VmStore.collect_exns``).  docs/exceptions.md has the design and its costs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..compiler.abi import TAIL_RETURN_STUB
from ..compiler.isa.riscv64.abi import saved_registers
from ..compiler.traps import TrapCode
from ..wasm.opcodes import CATCH_ALL, CATCH_ALL_REF, CATCH_REF
from ..wasm.types import EXNREF, FuncType
from .errors import Trap

if TYPE_CHECKING:
    from .store import VmStore


class TagInstance:
    """A tag: an identity (two tags match only if they are the same object) and a payload type."""

    __slots__ = ("precise", "store", "type")

    def __init__(self, store: VmStore, ftype: FuncType, precise: FuncType | None = None) -> None:
        self.store = store
        self.type = ftype
        self.precise = precise or ftype  # its canonical type, which import matching compares (wasm/typedrefs.py)


class Exn:
    """An exception object: its tag, its payload as bit patterns (a v128 as one 128-bit int), and its
    exnref handle once wasm holds one (0 before)."""

    __slots__ = ("tag", "payload", "handle")

    def __init__(self, tag: TagInstance, payload: list[int]) -> None:
        self.tag = tag
        self.payload = payload
        self.handle = 0


class UncaughtException(Trap):
    """An exception no handler caught before the host: a Trap (``UNCAUGHT_EXCEPTION``) carrying the
    exception, so that a host function in between, or the embedder, can look at it or let it go on."""

    def __init__(self, exn: Exn, **where) -> None:
        super().__init__(TrapCode.UNCAUGHT_EXCEPTION, **where)
        self.exn = exn


def exnref_of(store: VmStore, exn: Exn) -> int:
    """The exnref handle of ``exn`` (made on first use)."""
    if not exn.handle:
        store.exn_next += 1
        exn.handle = store.exn_next
        store.exns[exn.handle] = exn
    return exn.handle


def exn_of(store: VmStore, handle: int) -> Exn | None:
    return store.exns.get(handle)


def unwind(store: VmStore, exn: Exn, pc: int, fp: int) -> bool:
    """Find the handler of ``exn`` thrown by the call (or ecall) at ``pc`` in the frame ``fp``, in this
    run's wasm frames, and land there (the hart's registers set); False when none catches it."""
    restored: dict[int, int] = {}  # DWARF register -> its value in the frame being looked at
    while True:
        loaded = store.locate(pc)
        if loaded is None:
            return False
        compiled = loaded.compiled
        offset = pc - loaded.base
        if compiled.handlers:
            instance = store.instances[loaded.vmctx]
            for clauses in compiled.handlers_at(offset):
                for kind, tag, pad in clauses:
                    if kind >= CATCH_ALL or instance.tags[tag] is exn.tag:
                        _land(store, instance, exn, kind, loaded.base + pad, fp, restored)
                        return True
        caller = leave_frame(store, loaded, offset, fp, restored)
        if caller is None:
            return False
        pc, fp = caller
        pc -= 4  # the call, not the instruction after it


def leave_frame(store: VmStore, loaded, offset: int, fp: int, restored: dict[int, int]) -> tuple[int, int] | None:
    """Step from the frame ``fp`` of the function whose code holds ``offset`` (of ``loaded``) to its caller:
    the return address and the caller's fp, ``restored`` given the callee-saved registers the function's
    prologue saved (their values in the caller); None when ``offset`` is in no function.  The one step of
    every frame walk that needs registers (this unwinder, the collector's root walk: runtime/gcheap.py)."""
    compiled = loaded.compiled
    func = compiled.func_at(offset)
    if func is None:
        return None
    read = store.read_u64
    key = (loaded.base, func)
    saves = store.exn_prologue_saves.get(key)
    if saves is None:
        start = compiled.func_offsets[func - compiled.num_imported_funcs]
        saves = store.exn_prologue_saves[key] = saved_registers(compiled.code, start)
    for reg, slot in saves:
        restored[reg] = read(fp + slot)
    pc, fp = read(fp - 8), read(fp - 16)
    if pc == TAIL_RETURN_STUB:  # a cross-instance tail call's frame (its s1/s2 are found again by pc)
        pc, fp = read(fp - 8), read(fp - 16)
    return pc, fp


def _land(store: VmStore, instance, exn: Exn, kind: int, pad: int, fp: int, restored: dict[int, int]) -> None:
    m = store.machine
    regs = tuple(restored)
    batch = store.exn_landing_regs.get(regs)
    if batch is None:  # one Unicorn call for them all, as for a call's arguments (crossing.py)
        names = tuple(f"x{reg}" if reg < 32 else f"f{reg - 32}" for reg in regs)
        batch = store.exn_landing_regs[regs] = m.register_batch((*names, "s0", "s1", "s2", "s3"))
    batch.write([*restored.values(), fp, instance.vmctx, store.read_u64(instance.vmctx), 0xFFFF_FFFF])
    types: tuple[int, ...] = ()
    values: list[int] = []
    if kind < CATCH_ALL:
        types, values = tuple(exn.tag.type.params), list(exn.payload)
    if kind == CATCH_REF or kind == CATCH_ALL_REF:
        types += (EXNREF,)
        values.append(exnref_of(store, exn))
    if types:
        store.crossing_for((), types).results_to(store, values)
    # The run stops after the ecall and goes on at the pad (calls.CallBoundary.invoke: a STOPPED run goes
    # on from its pc).  A pc written by the hook alone is not enough after a nested run (a host function
    # that called wasm): Unicorn then ends the outer run there.
    m.set_reg("pc", pad)
    m.stop()


def throw(store: VmStore, exn: Exn, pc: int) -> None:
    """``exn`` thrown by the ecall at ``pc`` (``throw``, ``throw_ref``), the hart's fp being that frame's:
    land on its handler or raise UncaughtException."""
    if not unwind(store, exn, pc, store.machine.get_reg("s0")):
        raise store.located_exception(exn, pc)


def throw_from_host(store: VmStore, exn: Exn) -> None:
    """``exn`` raised by the host function whose ecall is being served: unwind from the call that reached
    it (the host-call stub returns to ``ra``; through a cross-instance tail call's frame, to its caller)."""
    m = store.machine
    ra, fp = m.get_reg("ra"), m.get_reg("s0")
    if ra == TAIL_RETURN_STUB:
        ra, fp = store.read_u64(fp - 8), store.read_u64(fp - 16)
    if not unwind(store, exn, ra - 4, fp):
        raise store.located_exception(exn, ra - 4)
