"""The pre-pass: what code generation needs to know about a function body before its first instruction."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...wasm import gcops, simd
from ...wasm import opcodes as op
from ...wasm.atomics import MEMORY_ATOMIC_NOTIFY, MEMORY_ATOMIC_WAIT32, MEMORY_ATOMIC_WAIT64
from .simd import in_place, in_place_with_constant

# Instructions compiled as a call of a function or of a runtime builtin, which clobbers the caller-saved
# registers (memory.copy/fill are not among them: their host path keeps every register).
_CALLS = frozenset(
    {
        op.CALL,
        op.CALL_INDIRECT_OP,
        op.RETURN_CALL,
        op.RETURN_CALL_INDIRECT,
        op.CALL_REF,
        op.RETURN_CALL_REF,
        op.MEMORY_GROW,
        op.MEMORY_INIT,
        op.DATA_DROP,
        op.MEMORY_DISCARD,
        *op.MEMORY_CONTROL_OPS,
        op.TABLE_GET,
        op.TABLE_SET,
        op.TABLE_SIZE,
        op.TABLE_GROW,
        op.TABLE_FILL,
        op.TABLE_COPY,
        op.TABLE_INIT,
        op.ELEM_DROP,
        MEMORY_ATOMIC_NOTIFY,  # threads proposal: runtime builtins
        MEMORY_ATOMIC_WAIT32,
        MEMORY_ATOMIC_WAIT64,
        op.THROW,  # exception handling: runtime builtins that never return
        op.THROW_REF,
        *(set(simd.NAMES) - in_place()),  # SIMD instructions that call a helper routine (codegen/simd.py)
        *gcops.BUILTIN_CALLS,  # GC: allocation and header casts call runtime builtins (codegen/gc.py)
    }
)
_CONST_SHIFTS = in_place_with_constant()  # SIMD shifts that call no helper when their count is a constant
_LOCAL_OPS = frozenset({op.LOCAL_GET, op.LOCAL_SET, op.LOCAL_TEE})
_BLOCK_OPS = frozenset({op.BLOCK_OP, op.LOOP, op.IF, op.TRY_TABLE_OP})


@dataclass
class FuncInfo:
    """What the pre-pass learns about a function body."""

    weights: list[float]  # per local: its reads and writes, weighted by 8 ** loop depth (capped at 4)
    aux_slots: int  # slots to keep the params of ``if`` blocks for their ``else``
    has_calls: bool  # a call of a function or a builtin (else the function may home locals in caller-saved registers)


def prepass(
    body: list, num_locals: int, block_type: Callable[[int], tuple[tuple[int, ...], tuple[int, ...]]]
) -> FuncInfo:
    """One walk over ``body`` (decoded instructions): local weights, aux slots, calls."""
    weights = [0.0] * num_locals
    depth = 0
    weight = 1.0  # 8 ** min(depth, 4)
    aux = 0
    has_calls = False
    loops: list[bool] = []
    local_ops, block_ops, calls, loop, if_, end = _LOCAL_OPS, _BLOCK_OPS, _CALLS, op.LOOP, op.IF, op.END
    try_table = op.TRY_TABLE_OP
    i32_const, const_shifts = op.I32_CONST_OP, _CONST_SHIFTS
    previous = None
    for code, imm, _ in body:
        if code in local_ops:
            weights[imm] += weight
        elif code in block_ops:
            loops.append(code == loop)
            if code == loop:
                depth += 1
                weight = 8.0 ** min(depth, 4)
            elif code == if_:
                aux += len(block_type(imm)[0])
            elif code == try_table and imm[1]:
                has_calls = True  # its landing pads take values where a call's results arrive
        elif code == end:
            if loops and loops.pop():
                depth -= 1
                weight = 8.0 ** min(depth, 4)
        elif code in calls and (previous != i32_const or code not in const_shifts):
            has_calls = True
        previous = code
    return FuncInfo(weights, aux, has_calls)
