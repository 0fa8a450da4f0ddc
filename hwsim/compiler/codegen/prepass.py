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
    call_loops: frozenset[int] = frozenset()  # the bytecode offsets of the loops with a call inside
    has_try: bool = False  # a try_table (its landing pads may be reached from any call inside it)


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
    has_calls = has_shuffle = has_try = False
    loops: list[bool] = []
    open_loops: list[int] = []  # the offsets of the loops the walk is in
    call_loops: set[int] = set()
    kinds = _KINDS
    i32_const, const_shifts = op.I32_CONST_OP, _CONST_SHIFTS
    previous = None
    for code, imm, offset in body:
        kind = kinds.get(code)
        if kind is not None:
            if kind == _LOCAL:
                weights[imm] += weight
            elif kind == _END:
                if loops and loops.pop():
                    depth -= 1
                    weight = 8.0 ** min(depth, 4)
                    loop = open_loops.pop()
                    if loop in call_loops and open_loops:
                        call_loops.add(open_loops[-1])  # (a call in an inner loop is in the outer one too)
            elif kind == _CALL:
                if previous != i32_const or code not in const_shifts:
                    has_calls = True
                    if open_loops:
                        call_loops.add(open_loops[-1])
            elif kind == _LOOP:
                loops.append(True)
                open_loops.append(offset)
                depth += 1
                weight = 8.0 ** min(depth, 4)
            elif kind == _SHUFFLE:
                has_shuffle = True
            else:  # block, if, try_table
                loops.append(False)
                if kind == _IF:
                    aux += len(block_type(imm)[0])
                elif kind == _TRY:
                    has_try = True
                    if imm[1]:
                        has_calls = True  # its landing pads take values where a call's results arrive
        previous = code
    return FuncInfo(weights, aux, has_calls, has_shuffle, frozenset(call_loops), has_try)


# What the call-crossing walk does per opcode (calls are looked up in _CALLS first).
_GET, _SET, _BLK, _LP, _IFK, _ELSE, _ENDK, _BR, _BR_IF, _BR_TABLE, _LEAVE, _BR_CAST = range(12)
_FLOW: dict[int, int] = {
    op.LOCAL_GET: _GET,
    op.LOCAL_SET: _SET,
    op.LOCAL_TEE: _SET,
    op.BLOCK_OP: _BLK,
    op.LOOP: _LP,
    op.IF: _IFK,
    op.ELSE: _ELSE,
    op.END: _ENDK,
    op.BR: _BR,
    op.BR_IF: _BR_IF,
    op.BR_ON_NULL: _BR_IF,
    op.BR_ON_NON_NULL: _BR_IF,
    gcops.BR_ON_CAST: _BR_CAST,
    gcops.BR_ON_CAST_FAIL: _BR_CAST,
    op.BR_TABLE_OP: _BR_TABLE,
    op.RETURN: _LEAVE,
    op.UNREACHABLE: _LEAVE,
    op.RETURN_CALL: _LEAVE,
    op.RETURN_CALL_INDIRECT: _LEAVE,
    op.RETURN_CALL_REF: _LEAVE,
    op.THROW: _LEAVE,
    op.THROW_REF: _LEAVE,
}


def call_crossing(body: list, num_locals: int, call_loops: frozenset[int]) -> int:
    """The locals a call may separate from a read of them: bit ``i`` is set when some path runs from a call
    to a ``local.get i`` without a ``local.set``/``local.tee`` of ``i`` between (local ``i`` is live across
    that call).  Every other local is dead at every call, so it may live in a caller-saved register.

    A forward must-analysis over the structured control flow: ``written`` holds the locals written on
    every path since the last call (all of them at the function's entry, which is no call).  A join (a
    block's or if's end) keeps what every incoming path has; a loop's header keeps what its entry has
    when the loop calls nothing (no back edge can then lose a local), and nothing when it does
    (``call_loops``, from :func:`prepass`; no fixpoint needed).  A function with a ``try_table`` is not
    analysed here: its landing pads are reached from inside calls (the caller says every local crosses).
    """
    everything = (1 << num_locals) - 1
    written = everything
    crossing = 0
    # per open construct: [is loop, the locals written on every branch to its end, written at the if or None]
    frames: list[list] = [[False, everything, None]]  # the function's body
    flow, calls, const_shifts, i32_const = _FLOW, _CALLS, _CONST_SHIFTS, op.I32_CONST_OP
    previous = None
    for code, imm, offset in body:
        if code in calls and (previous != i32_const or code not in const_shifts):
            written = 0
        kind = flow.get(code)
        previous = code
        if kind is None:
            continue
        if kind == _GET:
            if not written >> imm & 1:
                crossing |= 1 << imm
        elif kind == _SET:
            written |= 1 << imm
        elif kind == _BLK:
            frames.append([False, everything, None])
        elif kind == _LP:
            if offset in call_loops:
                written = 0
            frames.append([True, everything, None])
        elif kind == _IFK:
            frames.append([False, everything, written])
        elif kind == _ELSE:
            frame = frames[-1]
            frame[1] &= written  # the then arm reaches the end
            written, frame[2] = frame[2], None
        elif kind == _ENDK:
            is_loop, at_end, at_if = frames.pop()
            if not is_loop:
                written &= at_end
                if at_if is not None:  # an if without else: its false edge reaches the end
                    written &= at_if
        elif kind == _BR_IF or kind == _BR_CAST:
            frame = frames[-1 - (imm[0] if kind == _BR_CAST else imm)]
            frame[1] &= written
        elif kind == _BR:
            frames[-1 - imm][1] &= written
            written = everything  # (unreachable until the next end or else)
        elif kind == _BR_TABLE:
            depths, default = imm
            for depth in (*depths, default):
                frames[-1 - depth][1] &= written
            written = everything
        else:  # return, unreachable, a tail call, throw
            written = everything
    return crossing
