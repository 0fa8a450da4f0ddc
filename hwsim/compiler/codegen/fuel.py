"""Metering: what each operator costs, where compiled code counts it, where it checks the count.

A metered module (``compile_module(..., metering=True)``) keeps the Store's fuel count in a
pinned register (hwsim/compiler/abi.py, *Fuel*).  The accounting is wasmtime's
(``crates/cranelift/src/func_environ.rs``: ``fuel_before_op``, ``fuel_check``,
``pre_translate_bulk_op``; behaviour measured against wasmtime 50), so a call consumes exactly
the fuel it consumes in wasmtime::

    cost      1 per operator; 0 for nop, drop, block, loop, unreachable, return, else and end;
              1 more per function (wasmtime starts each function's count at 1)
    counted   costs add up at compile time ("pending") and are subtracted from the count
              (MacroAssembler.fuel_consume) before an operator that leaves straight-line code:
              loop, if, else, end, br, br_if, br_table, return, unreachable, throw, throw_ref, every
              call.  So
              nothing is pending at any label, and the count is exact at every call and return
    checked   at function entry and at each loop header (MacroAssembler.fuel_checkpoint): when
              the count is then zero or negative the cold path calls Builtin.checkpoint, where
              the runtime refills it, traps, or does safe-point work; nowhere else in compiled code
    bulk      memory.fill/copy/init/grow and table.fill/copy/init/grow also cost their size (bytes,
              pages, elements).  A constant size of at most 128 is added to the pending cost (as
              Cranelift folds it); any other size the runtime charges once the operation succeeded,
              followed by the same check (BulkFuel.RUNTIME, the operation's last static operand)

"Constant" is what Cranelift sees as one: an ``i32.const``/``i64.const``, a defined immutable
global with a constant initializer, or a local whose value is such a constant on every path that
reaches the use (:class:`ConstLocals`: Cranelift's SSA construction sees through ``local.set``
and ``local.get``, with rules of its own around loops).

Where hwsim and wasmtime can differ (docs/architecture.md, *Metering*): the fuel left after a
trap other than out-of-fuel (wasmtime keeps the count in a register and writes it back only at
calls, returns, ``unreachable`` and its checks, so its stored fuel is older than hwsim's).
"""

from __future__ import annotations

from ...wasm import opcodes as op
from ...wasm.types import I64
from ..builtins import Builtin, BulkFuel
from .context import CONST, LOCAL, CodeGenContext, Operand

# Operators that cost nothing (wasmtime's default_operator_cost).
FREE = frozenset({op.NOP, op.DROP, op.BLOCK_OP, op.LOOP, op.UNREACHABLE, op.RETURN, op.ELSE, op.END})
# Operators before which the pending cost is subtracted from the count (fuel_before_op's increment points).
COUNT_BEFORE = frozenset(
    {
        op.UNREACHABLE,
        op.RETURN,
        op.CALL,
        op.CALL_INDIRECT_OP,
        op.RETURN_CALL,
        op.RETURN_CALL_INDIRECT,
        op.CALL_REF,
        op.RETURN_CALL_REF,
        op.LOOP,
        op.IF,
        op.BR,
        op.BR_IF,
        op.BR_TABLE_OP,
        op.BR_ON_NULL,
        op.BR_ON_NON_NULL,
        op.END,
        op.ELSE,
        op.THROW,  # exception handling: control leaves the function (as wasmtime counts it)
        op.THROW_REF,
    }
)
FUNCTION_COST = 1  # every function's count starts at 1 ("even empty functions should consume some fuel")
SMALL_BULK = 128  # a constant bulk size up to this is counted at compile time, without a check


class _Loop:
    """A loop while its header is unsealed (``open``): were there back edges, which outer constants were read."""

    __slots__ = ("back_edges", "open", "used")

    def __init__(self) -> None:
        self.open = True
        self.back_edges = False
        self.used: set[int] = set()


class ConstLocals:
    """Which locals hold a constant Cranelift's SSA construction can see, at the current point.

    An entry is ``local -> (bits, definition, loops)``: the value, an id of the ``local.set`` (or
    the zero initialisation) that made it, and the loops it entered.  Measured against wasmtime 50:

    * straight-line code and ``local.tee`` keep it; a join (a block's or if's end) keeps it when
      every incoming path has the same definition (a trivial block parameter is removed);
    * inside a loop it is invisible: the loop header is sealed only at the loop's end, so a read
      in the body finds a block parameter;
    * after the loop it is visible again if the loop has no back edge, or if the loop's body read
      the local (the parameter made then is removed as trivial when the header is sealed); a loop
      with a back edge that never read it leaves a parameter made after sealing, which stays.
    """

    def __init__(self, num_params: int, num_locals: int) -> None:
        self.current: dict[int, tuple] = {i: (0, -1 - i, ()) for i in range(num_params, num_locals)}
        self.next_id = 0
        self.incoming: dict[int, list[dict]] = {}  # id(frame) -> the maps branches carry to its end
        self.at_if: dict[int, dict] = {}  # id(if frame) -> the map at the if (its else arm starts there)
        self.loops: dict[int, _Loop] = {}  # id(loop frame) -> its state, while it is open

    def value(self, operand: Operand) -> int | None:
        """The constant ``operand`` is, if it is one Cranelift sees."""
        if operand.kind is CONST:
            return operand.x
        if operand.kind is LOCAL:
            entry = self.current.get(operand.x)
            if entry is not None and not entry[2]:
                return entry[0]
        return None

    def use(self, local: int) -> None:
        """``local.get``: a read inside open loops makes their headers' parameters (see the class docstring)."""
        entry = self.current.get(local)
        if entry is not None:
            for loop in entry[2]:
                loop.used.add(local)

    def assign(self, local: int, operand: Operand) -> None:
        """``local.set``/``local.tee`` of ``operand`` (before the context materialises reads of ``local``)."""
        if operand.kind is LOCAL:  # one SSA value for both locals: the same definition
            entry = self.current.get(operand.x)
            if entry is not None and not entry[2]:
                self.current[local] = entry
                return
        value = self.value(operand)
        if value is None:
            self.current.pop(local, None)
        else:
            self.next_id += 1
            self.current[local] = (value, self.next_id, ())

    # -- control flow: frames are the ControlStack's ---------------------------------------------------

    def branch(self, frame, is_loop: bool) -> None:
        """A branch (taken or not) to ``frame``: its end sees the current map; a loop gets a back edge."""
        if is_loop:
            self.loops[id(frame)].back_edges = True
        else:
            self.incoming.setdefault(id(frame), []).append(dict(self.current))

    def enter_if(self, frame) -> None:
        self.at_if[id(frame)] = dict(self.current)

    def else_(self, frame, reachable: bool) -> None:
        if reachable:
            self.branch(frame, False)
        self.current = dict(self.at_if.pop(id(frame)))

    def enter_loop(self, frame, writes: frozenset[int]) -> None:
        """Entering loop ``frame``, which assigns ``writes`` somewhere in its body."""
        loop = self.loops[id(frame)] = _Loop()
        self.current = {i: (v, d, (*loops, loop)) for i, (v, d, loops) in self.current.items() if i not in writes}

    def end(self, frame, reachable: bool, is_loop: bool, is_if: bool) -> None:
        """At ``frame``'s end: the join of what reaches it (call before the ControlStack pops it)."""
        maps = self.incoming.pop(id(frame), [])
        if reachable:
            maps.append(self.current)
        if is_if and id(frame) in self.at_if:  # no else arm: the condition's false edge reaches the end
            maps.append(self.at_if.pop(id(frame)))
        if is_loop:
            self.loops.pop(id(frame)).open = False
        maps = [self._settle(path) for path in maps]
        if not maps:
            self.current = {}
            return
        first, *rest = maps
        self.current = {i: e for i, e in first.items() if all(path.get(i, (0, None))[1] == e[1] for path in rest)}

    @staticmethod
    def _settle(path: dict) -> dict:
        """``path`` with the loops that have ended resolved: an entry stays visible or is dropped."""
        out = {}
        for i, (v, d, loops) in path.items():
            if any(not loop.open and loop.back_edges and i not in loop.used for loop in loops):
                continue
            out[i] = (v, d, tuple(loop for loop in loops if loop.open))
        return out


def loop_writes(body: list) -> dict[int, frozenset[int]]:
    """For each ``loop`` of ``body`` (by its bytecode offset): the locals assigned anywhere inside it."""
    out: dict[int, frozenset[int]] = {}
    open_: list[tuple[int | None, set[int]]] = []  # (loop offset or None for block/if, locals assigned)
    for code, imm, offset in body:
        if code in (op.BLOCK_OP, op.IF, op.LOOP):
            open_.append((offset if code == op.LOOP else None, set()))
        elif code in (op.LOCAL_SET, op.LOCAL_TEE):
            for _, writes in open_:
                writes.add(imm)
        elif code == op.END and open_:
            loop, writes = open_.pop()
            if loop is not None:
                out[loop] = frozenset(writes)
    return out


class FuelCounter:
    """The metering of one function: the pending cost, the checkpoints, the bulk-operation rule."""

    def __init__(self, ctx: CodeGenContext, num_params: int) -> None:
        self.ctx = ctx
        self.masm = ctx.masm
        self.pending = FUNCTION_COST
        self.consts = ConstLocals(num_params, len(ctx.homes))

    def count(self) -> None:
        """Subtract what is pending from the count."""
        if self.pending:
            self.masm.fuel_consume(self.pending)
            self.pending = 0

    def checkpoint(self) -> None:
        """Count what is pending and check the count (function entry, loop header).  A safepoint: the
        operand stack is spilled there (a block's entry), so its stack map is exact (a thread preempted at it
        can be walked by the collector: runtime/gcheap.py)."""
        self.masm.fuel_checkpoint(self.pending, Builtin.checkpoint, self.ctx.safepoint_locations())
        self.pending = 0

    def before(self, code: int) -> None:
        """Before each reachable operator: its cost, and the count where straight-line code ends."""
        if code not in FREE:
            self.pending += 1
        if code in COUNT_BEFORE:
            self.count()

    def bulk(self, size: Operand) -> BulkFuel:
        """A bulk operation's size: counted now when a small constant, else by the runtime afterwards."""
        units = self.consts.value(size)
        if units is not None:
            units &= (1 << 64) - 1 if size.ty == I64 else 0xFFFF_FFFF  # Cranelift reads it unsigned
            if units <= SMALL_BULK:
                self.pending += units
                return BulkFuel.COMPILED
        self.count()
        return BulkFuel.RUNTIME
