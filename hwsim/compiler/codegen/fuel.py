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
              loop, if, else, end, br, br_if, br_table, return, unreachable, every call.  So
              nothing is pending at any label, and the count is exact at every call and return
    checked   at function entry and at each loop header (MacroAssembler.fuel_checkpoint): when
              the count is then zero or negative the cold path calls Builtin.checkpoint, where
              the runtime refills it, traps, or does safe-point work; nowhere else in compiled code

Where hwsim and wasmtime can differ (docs/architecture.md, *Metering*): the fuel left after a
trap other than out-of-fuel (wasmtime keeps the count in a register and writes it back only at
calls, returns, ``unreachable`` and its checks, so its stored fuel is older than hwsim's).
"""

from __future__ import annotations

from ...wasm import opcodes as op
from ..builtins import Builtin
from .context import CodeGenContext

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
        op.LOOP,
        op.IF,
        op.BR,
        op.BR_IF,
        op.BR_TABLE_OP,
        op.END,
        op.ELSE,
    }
)
FUNCTION_COST = 1  # every function's count starts at 1 ("even empty functions should consume some fuel")


class FuelCounter:
    """The metering of one function: the pending cost and the checkpoints."""

    def __init__(self, ctx: CodeGenContext) -> None:
        self.masm = ctx.masm
        self.pending = FUNCTION_COST

    def count(self) -> None:
        """Subtract what is pending from the count."""
        if self.pending:
            self.masm.fuel_consume(self.pending)
            self.pending = 0

    def checkpoint(self) -> None:
        """Count what is pending and check the count (function entry, loop header)."""
        self.masm.fuel_checkpoint(self.pending, Builtin.checkpoint)
        self.pending = 0

    def before(self, code: int) -> None:
        """Before each reachable operator: its cost, and the count where straight-line code ends."""
        if code not in FREE:
            self.pending += 1
        if code in COUNT_BEFORE:
            self.count()
