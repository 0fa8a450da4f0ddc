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
    has_shuffle: bool = False  # an i8x16.shuffle (simd.fuse may fold the instructions after it)


# What the pre-pass does per opcode (one dict lookup per instruction; most opcodes are none of these).
_LOCAL, _BLOCK, _LOOP, _IF, _TRY, _END, _CALL, _SHUFFLE = range(8)
_KINDS: dict[int, int] = {
    **{code: _CALL for code in _CALLS},
    **{code: _LOCAL for code in _LOCAL_OPS},
    op.BLOCK_OP: _BLOCK,
    op.LOOP: _LOOP,
    op.IF: _IF,
    op.TRY_TABLE_OP: _TRY,
    op.END: _END,
    simd.BY_NAME["i8x16.shuffle"]: _SHUFFLE,
}


def prepass(
    body: list, num_locals: int, block_type: Callable[[int], tuple[tuple[int, ...], tuple[int, ...]]]
) -> FuncInfo:
    """One walk over ``body`` (decoded instructions): local weights, aux slots, calls, shuffles."""
    weights = [0.0] * num_locals
    depth = 0
    weight = 1.0  # 8 ** min(depth, 4)
    aux = 0
    has_calls = has_shuffle = False
    loops: list[bool] = []
    kinds = _KINDS
    i32_const, const_shifts = op.I32_CONST_OP, _CONST_SHIFTS
    previous = None
    for code, imm, _ in body:
        kind = kinds.get(code)
        if kind is not None:
            if kind == _LOCAL:
                weights[imm] += weight
            elif kind == _END:
                if loops and loops.pop():
                    depth -= 1
                    weight = 8.0 ** min(depth, 4)
            elif kind == _CALL:
                if previous != i32_const or code not in const_shifts:
                    has_calls = True
            elif kind == _LOOP:
                loops.append(True)
                depth += 1
                weight = 8.0 ** min(depth, 4)
            elif kind == _SHUFFLE:
                has_shuffle = True
            else:  # block, if, try_table
                loops.append(False)
                if kind == _IF:
                    aux += len(block_type(imm)[0])
                elif kind == _TRY and imm[1]:
                    has_calls = True  # its landing pads take values where a call's results arrive
        previous = code
    return FuncInfo(weights, aux, has_calls, has_shuffle)
