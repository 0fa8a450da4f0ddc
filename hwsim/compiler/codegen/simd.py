"""SIMD instructions: v128 values as two 64-bit halves on the operand stack, lane work in helper routines.

A v128 is two operand-stack entries typed ``V128``, the low half below the
high half; each half is an integer value (register, constant, spill slot or
local) like an i64, so spilling, block parameters, calls and returns move it
with no special case.  A v128 local is two locals, a v128 parameter or
result two integer ABI locations (``compiler.abi.lower_types``).

Loads, stores, constants and the bitwise operations on halves are compiled
in place; every other instruction calls its helper routine
(``isa/<name>/simdlib``, emitted once per module) with the platform's
calling convention: a call like any other, so register values are spilled
first and the function is not a leaf (``prepass``).  Handlers here run as
``handler(codegen, immediate, *static)``, as those of ``visitor.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import itemgetter
from typing import TYPE_CHECKING

from ...wasm import opcodes as op
from ...wasm import simd
from ...wasm.types import F64, I32, I64, V128
from ..abi import lower_types
from ..masm import Conversion, IntBinOp, IntCmp, LoadKind, StoreKind
from ..regs import FLOAT, INT, Reg
from . import call
from .context import CONST, REG, SLOT, Operand

if TYPE_CHECKING:
    from .visitor import FuncCodegen

_ALL_ONES = 0xFFFF_FFFF_FFFF_FFFF


def helper_call(cg: FuncCodegen, name: str, extra: tuple[int, ...] = ()) -> None:
    """Call the helper for instruction ``name`` on the operands its signature takes (top of the stack),
    with ``extra`` immediates as i64 arguments; push its results."""
    ctx = cg.ctx
    params, results = simd.SIGNATURES[simd.BY_NAME[name]]
    lowered = lower_types(tuple(I64 if t == simd.ADDRESS else t for t in params))
    for value in extra:
        ctx.push_const(I64, value)
    call.prepare_args(ctx, lowered + (I64,) * len(extra))
    cg.masm.call_helper(name)
    call.push_results(ctx, lower_types(results))


def _helper(cg: FuncCodegen, imm, name: str) -> None:
    helper_call(cg, name)


def _lane_helper(cg: FuncCodegen, imm, name: str) -> None:
    helper_call(cg, name, (imm,))


def _run(cg: FuncCodegen, t: Reg, src: Reg, k0: int, s0: int, n: int) -> None:
    """``t`` = source bytes ``[s0, s0+n)`` of ``src`` at bytes ``[k0, k0+n)``, zeros elsewhere: two shifts
    when the run touches either end of the source or of the output, else three."""
    masm = cg.masm
    if s0 + n == 8 or k0 + n == 8:  # right: the run at byte 0, clean above (or cut off by the left shift)
        masm.int_binary(IntBinOp.SHR_U, True, t, src, 8 * s0) if s0 else masm.mov(t, src)
        if k0:
            masm.int_binary(IntBinOp.SHL, True, t, t, 8 * k0)
    elif s0 == 0:  # left: the run at the top, clean below
        masm.int_binary(IntBinOp.SHL, True, t, src, 8 * (8 - n))
        masm.int_binary(IntBinOp.SHR_U, True, t, t, 8 * (8 - n - k0))
    else:
        masm.int_binary(IntBinOp.SHL, True, t, src, 8 * (8 - s0 - n))
        masm.int_binary(IntBinOp.SHR_U, True, t, t, 8 * (8 - n))
        if k0:
            masm.int_binary(IntBinOp.SHL, True, t, t, 8 * k0)


def _shuffle(cg: FuncCodegen, imm) -> None:
    """i8x16.shuffle in place, also with zero bytes (lane -1, left by :func:`fuse`).  Each output half ORs
    together groups of source bytes that move by the same distance from the same source half: a
    contiguous run by shifts alone (:func:`_run`), any other group by one shift and an AND with a mask
    (taken before or after the shift, whichever is the smaller constant; a mask used by both halves is
    kept when registers allow).  An output half with no source byte is the constant 0.

    The sources stay on the operand stack until the end, and the first output half joins them there when
    done, so that only the group being built holds registers the allocator cannot spill (a leaf function
    has six operand registers)."""
    ctx, masm = cg.ctx, cg.masm
    stack = ctx.stack
    base = len(stack) - 4  # a_lo, a_hi, b_lo, b_hi
    plans: list[list[tuple[int, int, list[int]]]] = []  # per output half: (source half, distance, output bytes)
    for half in range(2):
        groups: dict[tuple[int, int], list[int]] = {}
        for k in range(8):
            index = imm[8 * half + k]
            if index >= 0:
                groups.setdefault((index // 8, k - index % 8), []).append(k)
        plans.append([(src, delta, ks) for (src, delta), ks in groups.items()])
    alias = list(range(4))  # a source that is the same local or constant as an earlier one is read as that one
    for i in range(4):
        v = stack[base + i]
        for j in range(i):
            w = stack[base + j]
            if v.kind is not REG and (v.kind, v.x) == (w.kind, w.x):
                alias[i] = alias[j]
                break
    used = sorted({alias[src] for plan in plans for src, _, _ in plan})
    for src in used:  # read into registers once, while there are registers to spare
        v = stack[base + src]
        if v.kind is not REG and len(ctx.free[INT]) > 4:
            reg, owned = ctx.to_reg(v)
            if owned:
                stack[base + src] = Operand(REG, V128, reg)

    def mask_of(delta: int, ks: list[int]) -> tuple[int, bool]:
        after = sum(0xFF << (8 * k) for k in ks)
        before = after >> (8 * delta) if delta >= 0 else (after << (-8 * delta)) & _ALL_ONES
        return (before, True) if before <= after else (after, False)

    mask_uses: dict[int, int] = {}
    for plan in plans:
        for _, delta, ks in plan:
            if ks[-1] - ks[0] + 1 != len(ks):
                value = mask_of(delta, ks)[0]
                mask_uses[value] = mask_uses.get(value, 0) + 1
    masks: dict[int, Reg] = {}  # kept for the other half too
    for plan in plans:
        dst = None
        mask: tuple[int, Reg] | None = None  # the last mask loaded, not kept: used again by the next group
        loaded: tuple[int, Reg] | None = None  # the source last read from memory, while groups take it
        # groups that share a source, then a mask, one after the other
        plan.sort(key=lambda g: (alias[g[0]], -1 if g[2][-1] - g[2][0] + 1 == len(g[2]) else mask_of(g[1], g[2])[0]))
        for src, delta, ks in plan:
            t = ctx.alloc(INT)
            m = None
            if ks[-1] - ks[0] + 1 != len(ks):
                value, first = mask_of(delta, ks)
                m = masks.get(value)
                if m is None and mask is not None and mask[0] == value:
                    m = mask[1]
                if m is None:
                    if mask is not None:
                        ctx.free_reg(mask[1])
                        mask = None
                    m = ctx.alloc(INT)
                    masm.load_const(m, I64, value)
                    if mask_uses[value] > 1 and len(masks) < 2 and len(ctx.free[INT]) >= 2:
                        masks[value] = m
                    else:
                        mask = (value, m)
            if loaded is not None and loaded[0] != alias[src]:
                ctx.free_reg(loaded[1])
                loaded = None
            v = stack[base + alias[src]]  # after the allocations above: they may have spilled it
            if v.kind is REG:
                reg = v.x
            elif loaded is not None:
                reg = loaded[1]
            else:
                reg, owned = ctx.to_reg(v)
                if owned:
                    loaded = (alias[src], reg)
            if m is None:
                _run(cg, t, reg, ks[0], ks[0] - delta, len(ks))
            else:
                shift, count = (IntBinOp.SHL, 8 * delta) if delta >= 0 else (IntBinOp.SHR_U, -8 * delta)
                if first:
                    masm.int_binary(IntBinOp.AND, True, t, reg, m)
                    if count:
                        masm.int_binary(shift, True, t, t, count)
                else:
                    masm.int_binary(shift, True, t, reg, count)
                    masm.int_binary(IntBinOp.AND, True, t, t, m)
            if dst is None:
                dst = t
            else:
                masm.int_binary(IntBinOp.OR, True, dst, dst, t)
                ctx.free_reg(t)
        for held in (mask, loaded):
            if held is not None:
                ctx.free_reg(held[1])
        if dst is None:
            ctx.push_const(V128, 0)
        else:
            ctx.push_reg(V128, dst)
    for reg in masks.values():
        ctx.free_reg(reg)
    _replace_sources(cg, 4)


FUSED = 0xFDFFF  # an instruction :func:`fuse` folded into the i8x16.shuffle before it: no code of its own
_SHUFFLE = simd.BY_NAME["i8x16.shuffle"]
_opcode = itemgetter(0)  # a decoded instruction's opcode
_OR = simd.BY_NAME["v128.or"]
_WIDEN = {  # unsigned extensions: (source lane bytes, high half)
    simd.BY_NAME[f"{shape}.extend_{part}_{narrow}_u"]: (size, part == "high")
    for shape, narrow, size in (("i16x8", "i8x16", 1), ("i32x4", "i16x8", 2), ("i64x2", "i32x4", 4))
    for part in ("low", "high")
}
_BYTE_SHIFTS = {  # lane shifts that move whole bytes when the count is a multiple of 8: (lane bytes, left)
    simd.BY_NAME[f"{shape}.{shift}"]: (size, shift == "shl")
    for shape, size in (("i16x8", 2), ("i32x4", 4), ("i64x2", 8))
    for shift in ("shl", "shr_u")
}


def fuse(body: list) -> list:
    """The body with each i8x16.shuffle followed by unsigned extensions and lane shifts by whole bytes
    (``i32.const 8k`` then ``shl``/``shr_u``) folded into that shuffle: each of them only moves bytes or
    puts zeros in, so the sequence is one shuffle whose lane -1 is a zero byte (compiled by
    :func:`_shuffle` at the cost of one).  Two such shuffles of a local with itself, OR'ed together right
    away (``local.get x local.get x shuffle ... local.get x local.get x shuffle ... v128.or``, the first pair
    maybe ``local.tee x local.get x``, as a byte swap
    within lanes compiles), that take no output byte both are one shuffle too.  The folded instructions stay
    in the body as :data:`FUSED`, at their offsets.  Not for metered code (fuel counts instructions)."""
    if _SHUFFLE not in map(_opcode, body):  # (a scan in C: every function body passes here)
        return body
    out: list = []
    merge: tuple[int, int, tuple[int, ...]] | None = (
        None  # (index in out, local, lanes): a shuffle of a local with itself
    )
    i, n = 0, len(body)
    while i < n:
        code, imm, offset = body[i]
        i += 1
        if code != _SHUFFLE:
            out.append((code, imm, offset))
            continue
        lanes = list(imm)
        folded = []
        while i < n:
            nxt, arg, off = body[i]
            if nxt in _WIDEN:
                size, high = _WIDEN[nxt]
                src = lanes[8:] if high else lanes[:8]
                lanes = []
                for lane in range(8 // size):
                    lanes += src[lane * size : lane * size + size] + [-1] * size
                folded.append(off)
                i += 1
            elif nxt == op.I32_CONST_OP and i + 1 < n and body[i + 1][0] in _BYTE_SHIFTS:
                size, left = _BYTE_SHIFTS[body[i + 1][0]]
                count = arg & (8 * size - 1)
                if count % 8:
                    break
                k = count // 8
                moved = []
                for lane in range(16 // size):
                    part = lanes[lane * size : lane * size + size]
                    moved += [-1] * k + part[: size - k] if left else part[k:] + [-1] * k
                lanes = moved
                folded += [off, body[i + 1][2]]
                i += 2
            else:
                break
        same = (
            len(out) >= 2
            and out[-1][0] == op.LOCAL_GET
            and out[-2][0] in (op.LOCAL_GET, op.LOCAL_TEE)
            and out[-1][1] == out[-2][1]
        )
        if same:  # a shuffle of a local with itself: lanes 16-31 are lanes 0-15
            lanes = [lane - 16 if lane >= 16 else lane for lane in lanes]
        if (
            same
            and out[-2][0] == op.LOCAL_GET
            and merge is not None
            and merge[1] == out[-1][1]
            and i < n
            and body[i][0] == _OR
            and all(out[j][0] == FUSED for j in range(merge[0] + 1, len(out) - 2))
            and all(x < 0 or y < 0 for x, y in zip(merge[2], lanes))
        ):  # OR'ed with the shuffle of the same local just before, no byte taken twice: one shuffle
            j, local, before = merge
            union = tuple(x if x >= 0 else y for x, y in zip(before, lanes))
            out[j] = (_SHUFFLE, union, out[j][2])
            out[-2:] = [(FUSED, None, out[-2][2]), (FUSED, None, out[-1][2])]
            out.extend((FUSED, None, off) for off in (offset, *folded, body[i][2]))
            merge = (j, local, union)
            i += 1
            continue
        out.append((code, tuple(lanes), offset))
        merge = (len(out) - 1, out[-2][1], tuple(lanes)) if same else None
        out.extend((FUSED, None, off) for off in folded)
    return out


def _fused(cg: FuncCodegen, imm) -> None:
    """An instruction folded into the shuffle before it (:func:`fuse`)."""


def _const(cg: FuncCodegen, imm) -> None:
    cg.ctx.push_const(V128, imm & _ALL_ONES)
    cg.ctx.push_const(V128, imm >> 64)


def _pop_pair(cg: FuncCodegen) -> tuple[Operand, Operand]:
    hi = cg.ctx.pop()
    lo = cg.ctx.pop()
    return lo, hi


def _bitwise(cg: FuncCodegen, imm, kind: IntBinOp, invert_b: bool) -> None:
    """and/or/xor/andnot on each half in place."""
    ctx, masm = cg.ctx, cg.masm
    b_lo, b_hi = _pop_pair(cg)
    a_lo, a_hi = _pop_pair(cg)
    for a, b in ((a_lo, b_lo), (a_hi, b_hi)):
        if invert_b:
            rb = ctx.to_owned_reg(b)
            masm.int_binary(IntBinOp.XOR, True, rb, rb, _ALL_ONES)
            bown = True
        else:
            rb, bown = ctx.to_reg(b)
        ra, aown = ctx.to_reg(a)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        dst = ctx.alloc(INT)
        masm.int_binary(kind, True, dst, ra, rb)
        ctx.push_reg(V128, dst)


def _lane_mask(width: int) -> int:
    """The top bit of every ``width``-bit lane of a 64-bit half."""
    return sum(1 << (width * i + width - 1) for i in range(64 // width))


def _add_sub(cg: FuncCodegen, imm, width: int, sub: bool) -> None:
    """iNxM.add/sub in place on each half, lanes kept apart SWAR-style: the lanes' top bits are taken out
    of the carry (add: ``((a & M) + (b & M)) ^ ((a ^ b) & H)``; sub: ``((a | H) - (b & M)) ^ (~(a ^ b) & H)``,
    H the lanes' top bits, M the rest)."""
    ctx, masm = cg.ctx, cg.masm
    b_lo, b_hi = _pop_pair(cg)
    a_lo, a_hi = _pop_pair(cg)
    op = IntBinOp.SUB if sub else IntBinOp.ADD
    if width == 64:
        for a, b in ((a_lo, b_lo), (a_hi, b_hi)):
            ra, aown = ctx.to_reg(a)
            rb, bown = ctx.to_reg(b)
            ctx.release(ra, aown)
            ctx.release(rb, bown)
            dst = ctx.alloc(INT)
            masm.int_binary(op, True, dst, ra, rb)
            ctx.push_reg(V128, dst)
        return
    # The operands stay on the stack (the allocator may spill them) and the low half's result joins them:
    # only the masks and the half being built hold registers it cannot take (a leaf function has six).
    ctx.stack.extend((a_lo, a_hi, b_lo, b_hi))
    base = len(ctx.stack) - 4
    high = ctx.alloc(INT)
    masm.load_const(high, I64, _lane_mask(width))
    low = ctx.alloc(INT)
    masm.load_const(low, I64, ~_lane_mask(width) & _ALL_ONES)
    for half in range(2):
        t1 = ctx.alloc(INT)
        t2 = ctx.alloc(INT)
        (ra, aown), (rb, bown) = _stack_regs(ctx, (base + half, base + 2 + half))
        masm.int_binary(IntBinOp.OR if sub else IntBinOp.AND, True, t1, ra, high if sub else low)
        masm.int_binary(IntBinOp.AND, True, t2, rb, low)
        masm.int_binary(op, True, t1, t1, t2)
        masm.int_binary(IntBinOp.XOR, True, t2, ra, rb)
        if sub:
            masm.int_binary(IntBinOp.XOR, True, t2, t2, _ALL_ONES)
        masm.int_binary(IntBinOp.AND, True, t2, t2, high)
        masm.int_binary(IntBinOp.XOR, True, t1, t1, t2)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        ctx.free_reg(t2)
        ctx.push_reg(V128, t1)
    ctx.free_reg(high)
    ctx.free_reg(low)
    _replace_sources(cg, 4)


def _bitselect(cg: FuncCodegen, imm) -> None:
    """v128.bitselect (and the relaxed laneselects, which hwsim makes bitselect) in place on each half:
    ``((v1 ^ v2) & c) ^ v2``, the operands left on the stack meanwhile."""
    ctx, masm = cg.ctx, cg.masm
    base = len(ctx.stack) - 6  # v1_lo, v1_hi, v2_lo, v2_hi, c_lo, c_hi
    for half in range(2):
        t = ctx.alloc(INT)
        (r1, own1), (r2, own2), (rc, ownc) = _stack_regs(ctx, (base + half, base + 2 + half, base + 4 + half))
        masm.int_binary(IntBinOp.XOR, True, t, r1, r2)
        masm.int_binary(IntBinOp.AND, True, t, t, rc)
        masm.int_binary(IntBinOp.XOR, True, t, t, r2)
        for reg, own in ((r1, own1), (r2, own2), (rc, ownc)):
            ctx.release(reg, own)
        ctx.push_reg(V128, t)
    _replace_sources(cg, 6)


def _mul_i32(cg: FuncCodegen, imm) -> None:
    """i32x4.mul in place on each half: the lower lane is the product's low 32 bits, the upper one the
    product of the upper halves moved up; the operands left on the stack meanwhile."""
    ctx, masm = cg.ctx, cg.masm
    base = len(ctx.stack) - 4  # a_lo, a_hi, b_lo, b_hi
    for half in range(2):
        dst = ctx.alloc(INT)
        t = ctx.alloc(INT)
        u = ctx.alloc(INT)
        (ra, aown), (rb, bown) = _stack_regs(ctx, (base + half, base + 2 + half))
        masm.int_binary(IntBinOp.MUL, True, dst, ra, rb)
        masm.int_binary(IntBinOp.SHL, True, dst, dst, 32)
        masm.int_binary(IntBinOp.SHR_U, True, dst, dst, 32)
        masm.int_binary(IntBinOp.SHR_U, True, t, ra, 32)
        masm.int_binary(IntBinOp.SHR_U, True, u, rb, 32)
        masm.int_binary(IntBinOp.MUL, True, t, t, u)
        ctx.free_reg(u)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        masm.int_binary(IntBinOp.SHL, True, t, t, 32)
        masm.int_binary(IntBinOp.OR, True, dst, dst, t)
        ctx.free_reg(t)
        ctx.push_reg(V128, dst)
    _replace_sources(cg, 4)


def _eq_ne(cg: FuncCodegen, imm, width: int, ne: bool) -> None:
    """iNxM.eq/ne in place on each half, SWAR: ``x = a ^ b``; a lane's top bit of
    ``(((x & M) + M) | x) & H`` is set when the lane is not zero (H the lanes' top bits, M the rest);
    that bit ``m`` (moved to the lane's bottom) becomes the whole lane as ``(m << width) - m``."""
    ctx, masm = cg.ctx, cg.masm
    base = len(ctx.stack) - 4  # a_lo, a_hi, b_lo, b_hi
    high = ctx.alloc(INT)
    masm.load_const(high, I64, _lane_mask(width))
    low = ctx.alloc(INT)
    masm.load_const(low, I64, ~_lane_mask(width) & _ALL_ONES)
    for half in range(2):
        x = ctx.alloc(INT)
        t = ctx.alloc(INT)
        (ra, aown), (rb, bown) = _stack_regs(ctx, (base + half, base + 2 + half))
        masm.int_binary(IntBinOp.XOR, True, x, ra, rb)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        masm.int_binary(IntBinOp.AND, True, t, x, low)
        masm.int_binary(IntBinOp.ADD, True, t, t, low)
        masm.int_binary(IntBinOp.OR, True, t, t, x)
        masm.int_binary(IntBinOp.AND, True, t, t, high)
        if not ne:
            masm.int_binary(IntBinOp.XOR, True, t, t, high)
        masm.int_binary(IntBinOp.SHR_U, True, t, t, width - 1)
        masm.int_binary(IntBinOp.SHL, True, x, t, width)
        masm.int_binary(IntBinOp.SUB, True, x, x, t)
        ctx.free_reg(t)
        ctx.push_reg(V128, x)
    ctx.free_reg(high)
    ctx.free_reg(low)
    _replace_sources(cg, 4)


def _stack_regs(ctx, indices: tuple[int, ...]) -> list[tuple[Reg, bool]]:
    """Registers holding the operand-stack entries at ``indices``, left on the stack: (register, owned
    temporary).  Entries not in a register are loaded first; those in one are read after every allocation,
    which could have spilled them."""
    got: dict[int, tuple[Reg, bool]] = {}
    while True:
        pending = [i for i in indices if i not in got and ctx.stack[i].kind is not REG]
        if not pending:
            break
        got[pending[0]] = ctx.to_reg(ctx.stack[pending[0]])
    return [got[i] if i in got else (ctx.stack[i].x, False) for i in indices]


def _replace_sources(cg: FuncCodegen, count: int) -> None:
    """The two halves on top of the stack take the place of the ``count`` source entries below them."""
    ctx = cg.ctx
    stack = ctx.stack
    results = [stack.pop(), stack.pop()][::-1]
    for i, r in enumerate(results):
        if r.kind is SLOT:  # spilled above the sources: back into a register before they go
            results[i] = Operand(REG, V128, ctx.to_reg(r)[0])
    for _ in range(count):
        v = stack.pop()
        if v.kind is REG:
            ctx.free_reg(v.x)
    stack.extend(results)


def _splat_i32(cg: FuncCodegen, imm) -> None:
    """i32x4.splat in place: ``x << 32 | zext(x)`` in both halves."""
    ctx, masm = cg.ctx, cg.masm
    v = ctx.pop()
    if v.kind is CONST:
        half = (v.x & 0xFFFF_FFFF) * 0x1_0000_0001
        ctx.push_const(V128, half)
        ctx.push_const(V128, half)
        return
    rx, xown = ctx.to_reg(v)
    lo = ctx.alloc(INT)
    zext = ctx.alloc(INT)
    masm.int_binary(IntBinOp.SHL, True, lo, rx, 32)
    masm.int_binary(IntBinOp.SHR_U, True, zext, lo, 32)
    masm.int_binary(IntBinOp.OR, True, lo, lo, zext)
    ctx.release(rx, xown)
    ctx.push_reg(V128, lo)
    masm.mov(zext, lo)
    ctx.push_reg(V128, zext)


def _lanes_of(width: int, lane_bits: int) -> int:
    """``lane_bits`` repeated in every ``width``-bit lane of a 64-bit half."""
    return sum(lane_bits << (width * i) for i in range(64 // width))


def _shift(cg: FuncCodegen, imm, name: str, width: int, kind: IntBinOp) -> None:
    """A lane shift: by a constant in place (shift each half, then clear what crossed into the next lane);
    by a computed count through the helper."""
    ctx, masm = cg.ctx, cg.masm
    count = ctx.stack[-1]
    if count.kind is not CONST or (kind is IntBinOp.SHR_S and width not in (32, 64)):
        helper_call(cg, name)
        return
    ctx.pop()
    k = count.x & (width - 1)
    lo, hi = _pop_pair(cg)
    lane = (1 << width) - 1
    keep = _lanes_of(width, (lane << k) & lane if kind is IntBinOp.SHL else lane >> k)
    mask = None
    if width != 64 and k and kind is not IntBinOp.SHR_S:
        mask = ctx.alloc(INT)
        masm.load_const(mask, I64, keep)
    upper = None
    if kind is IntBinOp.SHR_S and width == 32:
        upper = ctx.alloc(INT)
        masm.load_const(upper, I64, 0xFFFF_FFFF_0000_0000)
    for half in (lo, hi):
        r, own = ctx.to_reg(half)
        dst = ctx.alloc(INT)
        if upper is not None:  # i32x4.shr_s: the upper lane by srai, the lower one moved up, shifted, moved back
            t = ctx.alloc(INT)
            masm.int_binary(IntBinOp.SHR_S, True, dst, r, k)
            masm.int_binary(IntBinOp.AND, True, dst, dst, upper)
            masm.int_binary(IntBinOp.SHL, True, t, r, 32)
            masm.int_binary(IntBinOp.SHR_S, True, t, t, k)
            masm.int_binary(IntBinOp.SHR_U, True, t, t, 32)
            masm.int_binary(IntBinOp.OR, True, dst, dst, t)
            ctx.free_reg(t)
        else:
            masm.int_binary(kind, True, dst, r, k)
            if mask is not None:
                masm.int_binary(IntBinOp.AND, True, dst, dst, mask)
        ctx.release(r, own)
        ctx.push_reg(V128, dst)
    for reg in (mask, upper):
        if reg is not None:
            ctx.free_reg(reg)


def _extract_i32(cg: FuncCodegen, imm) -> None:
    """i32x4.extract_lane in place: the half's upper or lower 32 bits, sign-extended."""
    ctx, masm = cg.ctx, cg.masm
    lo, hi = _pop_pair(cg)
    half, other = (hi, lo) if imm >= 2 else (lo, hi)
    if other.kind is REG:
        ctx.free_reg(other.x)
    r, own = ctx.to_reg(half)
    ctx.release(r, own)
    dst = ctx.alloc(INT)
    if imm & 1:
        masm.int_binary(IntBinOp.SHR_S, True, dst, r, 32)
    else:
        masm.int_binary(IntBinOp.SHL, True, dst, r, 32)
        masm.int_binary(IntBinOp.SHR_S, True, dst, dst, 32)
    ctx.push_reg(I32, dst)


def _replace_i32(cg: FuncCodegen, imm) -> None:
    """i32x4.replace_lane in place: the other lane of the half kept, the value put in."""
    ctx, masm = cg.ctx, cg.masm
    value = ctx.pop()
    lo, hi = _pop_pair(cg)
    rv, vown = ctx.to_reg(value)
    old = hi if imm >= 2 else lo
    r, own = ctx.to_reg(old)
    t = ctx.alloc(INT)
    dst = ctx.alloc(INT)
    if imm & 1:  # upper lane: keep the lower 32 bits
        masm.int_binary(IntBinOp.SHL, True, dst, r, 32)
        masm.int_binary(IntBinOp.SHR_U, True, dst, dst, 32)
        masm.int_binary(IntBinOp.SHL, True, t, rv, 32)
    else:  # lower lane: keep the upper 32 bits
        masm.int_binary(IntBinOp.SHR_U, True, dst, r, 32)
        masm.int_binary(IntBinOp.SHL, True, dst, dst, 32)
        masm.int_binary(IntBinOp.SHL, True, t, rv, 32)
        masm.int_binary(IntBinOp.SHR_U, True, t, t, 32)
    masm.int_binary(IntBinOp.OR, True, dst, dst, t)
    ctx.free_reg(t)
    ctx.release(rv, vown)
    ctx.release(r, own)
    new = Operand(REG, V128, dst)
    ctx.stack.extend((lo, new) if imm >= 2 else (new, hi))


def _extract_f64(cg: FuncCodegen, imm) -> None:
    """f64x2.extract_lane: the half moved to a float register."""
    ctx = cg.ctx
    _extract_i64(cg, imm)
    r, own = ctx.pop_reg()
    ctx.release(r, own)
    dst = ctx.alloc(FLOAT)
    cg.masm.convert(Conversion.F64_REINTERPRET_I64, dst, r)
    ctx.push_reg(F64, dst)


def _to_int_bits(cg: FuncCodegen) -> None:
    """The f64 on top of the stack as its bits in an integer register (typed i64)."""
    ctx = cg.ctx
    r, own = ctx.pop_reg()
    ctx.release(r, own)
    dst = ctx.alloc(INT)
    cg.masm.convert(Conversion.I64_REINTERPRET_F64, dst, r)
    ctx.push_reg(I64, dst)


def _replace_f64(cg: FuncCodegen, imm) -> None:
    _to_int_bits(cg)
    _replace_i64(cg, imm)


def _splat_f64(cg: FuncCodegen, imm) -> None:
    _to_int_bits(cg)
    _splat_i64(cg, imm)


def _any_true(cg: FuncCodegen, imm) -> None:
    """v128.any_true in place: (lo | hi) != 0."""
    ctx, masm = cg.ctx, cg.masm
    lo, hi = _pop_pair(cg)
    ra, aown = ctx.to_reg(lo)
    rb, bown = ctx.to_reg(hi)
    ctx.release(ra, aown)
    ctx.release(rb, bown)
    dst = ctx.alloc(INT)
    masm.int_binary(IntBinOp.OR, True, dst, ra, rb)
    ctx.push_reg(I64, dst)
    zero = ctx.alloc(INT)
    masm.zero_reg(zero)
    ctx.pop()
    masm.int_compare(IntCmp.NE, dst, dst, zero)
    ctx.free_reg(zero)
    ctx.push_reg(I32, dst)


def _extend(cg: FuncCodegen, imm, width: int, high: bool, signed: bool) -> None:
    """Lane extension in place (unsigned, or signed to i64x2): one source half spread over two: each 32-bit
    part zero-extended, then its lanes moved apart (``x = (x | x << 16) & 0x0000ffff0000ffff``, then by 8)."""
    ctx, masm = cg.ctx, cg.masm
    lo, hi = _pop_pair(cg)
    half, other = (hi, lo) if high else (lo, hi)
    if other.kind is REG:
        ctx.free_reg(other.x)
    r, own = ctx.to_reg(half)
    spread = [(16, 0x0000_FFFF_0000_FFFF)] + ([(8, 0x00FF_00FF_00FF_00FF)] if width == 16 else [])
    masks: list[Reg] = []
    if width != 64:
        for _, bits in spread:
            reg = ctx.alloc(INT)
            masm.load_const(reg, I64, bits)
            masks.append(reg)
    for upper in (False, True):
        dst = ctx.alloc(INT)
        if upper:
            masm.int_binary(IntBinOp.SHR_S if signed else IntBinOp.SHR_U, True, dst, r, 32)
        else:
            masm.int_binary(IntBinOp.SHL, True, dst, r, 32)
            masm.int_binary(IntBinOp.SHR_S if signed else IntBinOp.SHR_U, True, dst, dst, 32)
        if width != 64:
            t = ctx.alloc(INT)
            for (shift, _), mask_reg in zip(spread, masks):
                masm.int_binary(IntBinOp.SHL, True, t, dst, shift)
                masm.int_binary(IntBinOp.OR, True, dst, dst, t)
                masm.int_binary(IntBinOp.AND, True, dst, dst, mask_reg)
            ctx.free_reg(t)
        ctx.push_reg(V128, dst)
    for reg in masks:
        ctx.free_reg(reg)
    ctx.release(r, own)


def _extmul(cg: FuncCodegen, imm, width: int, high: bool, signed: bool) -> None:
    """iNxM.extmul_{low,high} in place: each lane pair of the chosen halves extended by two shifts,
    multiplied, and put in its place in the wider lane (a signed product cut to the lane's width first)."""
    ctx, masm = cg.ctx, cg.masm
    b_lo, b_hi = _pop_pair(cg)
    a_lo, a_hi = _pop_pair(cg)
    (a, a_other), (b, b_other) = ((a_hi, a_lo), (b_hi, b_lo)) if high else ((a_lo, a_hi), (b_lo, b_hi))
    for v in (a_other, b_other):
        if v.kind is REG:
            ctx.free_reg(v.x)
    held = [ctx.to_reg(a)]
    if b.kind is not REG and (a.kind, a.x) == (b.kind, b.x):  # the same local or constant twice
        rb = held[0][0]
    else:
        held.append(ctx.to_reg(b))
        rb = held[1][0]
    ra = held[0][0]
    ext = IntBinOp.SHR_S if signed else IntBinOp.SHR_U
    per, wide = 32 // width, 2 * width  # source lanes per output half, output lane width
    for half in range(2):
        dst = None
        for i in range(per):
            lane = half * per + i
            x = ctx.alloc(INT)
            y = ctx.alloc(INT)
            for t, r in ((x, ra), (y, rb)):
                top = 64 - width * (lane + 1)
                if not signed and lane == 0 and width == 8:
                    masm.int_binary(IntBinOp.AND, True, t, r, 0xFF)
                elif top:
                    masm.int_binary(IntBinOp.SHL, True, t, r, top)
                    masm.int_binary(ext, True, t, t, 64 - width)
                else:
                    masm.int_binary(ext, True, t, r, 64 - width)
            masm.int_binary(IntBinOp.MUL, True, x, x, y)
            ctx.free_reg(y)
            pos = wide * i
            if signed and pos + wide < 64:
                masm.int_binary(IntBinOp.SHL, True, x, x, 64 - wide)
                masm.int_binary(IntBinOp.SHR_U, True, x, x, 64 - wide - pos)
            elif pos:
                masm.int_binary(IntBinOp.SHL, True, x, x, pos)
            if dst is None:
                dst = x
            else:
                masm.int_binary(IntBinOp.OR, True, dst, dst, x)
                ctx.free_reg(x)
        assert dst is not None  # (one lane at least)
        ctx.push_reg(V128, dst)  # spillable while the other half is built
    for reg, owned in held:
        ctx.release(reg, owned)


def _not(cg: FuncCodegen, imm) -> None:
    ctx = cg.ctx
    lo, hi = _pop_pair(cg)
    for half in (lo, hi):
        reg = ctx.to_owned_reg(half)
        cg.masm.int_binary(IntBinOp.XOR, True, reg, reg, _ALL_ONES)
        ctx.push_reg(V128, reg)


def _scalar_load(cg: FuncCodegen, memarg: tuple[int, int, int], kind: LoadKind, size: int) -> Reg:
    """Pop an address, load ``size`` bytes with ``kind`` into a fresh integer register."""
    ctx = cg.ctx
    mem, _align, offset = memarg
    reg, owned = ctx.pop_reg()
    ctx.release(reg, owned)
    dst = ctx.alloc(INT)
    env = cg.env
    base, disp = cg.masm.heap_address(mem, env.layout.memory(mem), env.memory_types[mem], reg, offset, size)
    cg.masm.load(kind, dst, base, disp)
    return dst


def _load(cg: FuncCodegen, imm) -> None:
    ctx, env = cg.ctx, cg.env
    mem, _align, offset = imm
    reg, owned = ctx.pop_reg()
    ctx.release(reg, owned)
    lo = ctx.alloc(INT)
    ctx.push_reg(V128, lo)
    hi = ctx.alloc(INT)
    ctx.push_reg(V128, hi)
    base, disp = cg.masm.heap_address(mem, env.layout.memory(mem), env.memory_types[mem], reg, offset, 16)
    cg.masm.load_v128(lo, hi, base, disp)


def _store(cg: FuncCodegen, imm) -> None:
    ctx, env = cg.ctx, cg.env
    mem, _align, offset = imm
    lo, hi = _pop_pair(cg)
    addr = ctx.pop()
    held = [ctx.to_reg(v) for v in (lo, hi, addr)]
    (rlo, _), (rhi, _), (ra, _) = held
    base, disp = cg.masm.heap_address(mem, env.layout.memory(mem), env.memory_types[mem], ra, offset, 16)
    cg.masm.store_v128(rlo, rhi, base, disp)
    for reg, owned in held:
        ctx.release(reg, owned)


def _load_then(cg: FuncCodegen, imm, kind: LoadKind, size: int, helper: str) -> None:
    """A load of ``size`` bytes, widened or splatted by ``helper``."""
    cg.ctx.push_reg(I64 if size == 8 else I32, _scalar_load(cg, imm, kind, size))
    helper_call(cg, helper)


def _load_zero(cg: FuncCodegen, imm, kind: LoadKind, size: int) -> None:
    cg.ctx.push_reg(V128, _scalar_load(cg, imm, kind, size))
    cg.ctx.push_const(V128, 0)


def _load_lane(cg: FuncCodegen, imm, kind: LoadKind, size: int, helper: str) -> None:
    memarg, lane = imm
    ctx = cg.ctx
    lo, hi = _pop_pair(cg)
    value = _scalar_load(cg, memarg, kind, size)
    ctx.stack.extend((lo, hi))
    ctx.push_reg(I64 if size == 8 else I32, value)
    helper_call(cg, helper, (lane,))


def _store_lane(cg: FuncCodegen, imm, kind: StoreKind, size: int, helper: str) -> None:
    memarg, lane = imm
    helper_call(cg, helper, (lane,))
    cg.visit_store(memarg, kind, size)


def _splat_i64(cg: FuncCodegen, imm) -> None:
    """i64x2.splat: both halves are the operand."""
    ctx = cg.ctx
    v = ctx.pop()
    if v.kind is CONST:
        ctx.push_const(V128, v.x)
        ctx.push_const(V128, v.x)
        return
    reg = ctx.to_owned_reg(v)
    ctx.push_reg(V128, reg)
    copy = ctx.alloc(INT)
    cg.masm.mov(copy, reg)
    ctx.push_reg(V128, copy)


def _extract_i64(cg: FuncCodegen, imm) -> None:
    """i64x2.extract_lane: keep one half."""
    ctx = cg.ctx
    lo, hi = _pop_pair(cg)
    keep, drop = (hi, lo) if imm else (lo, hi)
    for v in (drop,):
        if v.kind is REG:
            ctx.free_reg(v.x)
    if keep.kind is REG:
        ctx.push_reg(I64, keep.x)
    else:
        reg = ctx.to_owned_reg(keep)
        ctx.push_reg(I64, reg)


def _replace_i64(cg: FuncCodegen, imm) -> None:
    """i64x2.replace_lane: one half replaced."""
    ctx = cg.ctx
    value = ctx.pop()
    lo, hi = _pop_pair(cg)
    reg = ctx.to_owned_reg(value)
    old = hi if imm else lo
    if old.kind is REG:
        ctx.free_reg(old.x)
    new = Operand(REG, V128, reg)
    ctx.stack.extend((lo, new) if imm else (new, hi))


def drop(cg: FuncCodegen, v: Operand) -> None:
    """``drop`` of a v128: its low half too (``v`` is the high half, popped already)."""
    lo = cg.ctx.pop()
    if lo.kind is REG:
        cg.ctx.free_reg(lo.x)


def select(cg: FuncCodegen) -> None:
    """``select`` on v128 operands: each half, with the one condition."""
    ctx, masm = cg.ctx, cg.masm
    cond, cown = ctx.pop_reg()
    b_lo, b_hi = _pop_pair(cg)
    a_lo, a_hi = _pop_pair(cg)
    for a, b in ((a_lo, b_lo), (a_hi, b_hi)):
        ra, aown = ctx.to_reg(a)
        rb, bown = ctx.to_reg(b)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        dst = ctx.alloc(INT)  # never cond: it is held until both halves are done
        masm.select(dst, ra, rb, cond)
        ctx.push_reg(V128, dst)
    ctx.release(cond, cown)


def global_get(cg: FuncCodegen, index: int) -> None:
    ctx = cg.ctx
    lo = ctx.alloc(INT)
    ctx.push_reg(V128, lo)
    hi = ctx.alloc(INT)
    ctx.push_reg(V128, hi)
    cg.masm.global_get_v128(lo, hi, cg.env.layout.global_(index))


def global_set(cg: FuncCodegen, index: int) -> None:
    ctx = cg.ctx
    lo, hi = _pop_pair(cg)
    held = [ctx.to_reg(v) for v in (lo, hi)]
    cg.masm.global_set_v128(held[0][0], held[1][0], cg.env.layout.global_(index))
    for reg, owned in held:
        ctx.release(reg, owned)


_LANE_LOADS = {
    8: (LoadKind.I32_LOAD8_U, "i8x16.replace_lane", StoreKind.I32_STORE8, "i8x16.extract_lane_u"),
    16: (LoadKind.I32_LOAD16_U, "i16x8.replace_lane", StoreKind.I32_STORE16, "i16x8.extract_lane_u"),
    32: (LoadKind.I32_LOAD, "i32x4.replace_lane", StoreKind.I32_STORE, "i32x4.extract_lane"),
    64: (LoadKind.I64_LOAD, "i64x2.replace_lane", StoreKind.I64_STORE, "i64x2.extract_lane"),
}


_IN_PLACE = frozenset(
    (
        _const,
        _load,
        _store,
        _load_zero,
        _bitwise,
        _not,
        _splat_i64,
        _splat_i32,
        _extract_i64,
        _replace_i64,
        _add_sub,
        _extract_i32,
        _replace_i32,
        _extract_f64,
        _replace_f64,
        _splat_f64,
        _any_true,
        _extend,
        _shuffle,
        _fused,
        _extmul,
        _bitselect,
        _mul_i32,
        _eq_ne,
    )
)


def in_place() -> frozenset[int]:
    """The 0xfd opcodes compiled without a helper call (the rest make a function non-leaf, see prepass)."""
    return frozenset(code for code, (handler, _) in dispatch().items() if handler in _IN_PLACE)


def in_place_with_constant() -> frozenset[int]:
    """The 0xfd lane shifts compiled in place when their count is a constant (right after an ``i32.const``)."""
    return frozenset(
        simd.BY_NAME[f"{shape}.{shift}"]
        for shape in ("i8x16", "i16x8", "i32x4", "i64x2")
        for shift in ("shl", "shr_u", "shr_s")
        if shift != "shr_s" or shape in ("i32x4", "i64x2")
    )


def dispatch() -> dict[int, tuple[Callable, tuple]]:
    """opcode -> (handler, static operands) for every 0xfd instruction."""
    table: dict[int, tuple[Callable, tuple]] = {}
    for code, name in simd.NAMES.items():
        kind = simd.IMMEDIATE[code]
        table[code] = (_lane_helper if kind == simd.LANE else _helper, (name,))
    by = simd.BY_NAME
    table[by["v128.const"]] = (_const, ())
    table[by["i8x16.shuffle"]] = (_shuffle, ())
    table[FUSED] = (_fused, ())
    table[by["v128.load"]] = (_load, ())
    table[by["v128.store"]] = (_store, ())
    for name in ("8x8_s", "8x8_u", "16x4_s", "16x4_u", "32x2_s", "32x2_u"):
        table[by[f"v128.load{name}"]] = (_load_then, (LoadKind.I64_LOAD, 8, f"v128.load{name}"))
    for size, shape in ((8, "i8x16"), (16, "i16x8"), (32, "i32x4"), (64, "i64x2")):
        load_kind, replace, store_kind, extract = _LANE_LOADS[size]
        table[by[f"v128.load{size}_splat"]] = (_load_then, (load_kind, size // 8, f"{shape}.splat"))
        table[by[f"v128.load{size}_lane"]] = (_load_lane, (load_kind, size // 8, replace))
        table[by[f"v128.store{size}_lane"]] = (_store_lane, (store_kind, size // 8, extract))
    table[by["v128.load32_zero"]] = (_load_zero, (LoadKind.I64_LOAD32_U, 4))
    table[by["v128.load64_zero"]] = (_load_zero, (LoadKind.I64_LOAD, 8))
    table[by["v128.and"]] = (_bitwise, (IntBinOp.AND, False))
    table[by["v128.or"]] = (_bitwise, (IntBinOp.OR, False))
    table[by["v128.xor"]] = (_bitwise, (IntBinOp.XOR, False))
    table[by["v128.andnot"]] = (_bitwise, (IntBinOp.AND, True))
    table[by["v128.not"]] = (_not, ())
    table[by["v128.bitselect"]] = (_bitselect, ())
    for shape in ("i8x16", "i16x8", "i32x4", "i64x2"):
        table[by[f"{shape}.relaxed_laneselect"]] = (_bitselect, ())
    table[by["i32x4.mul"]] = (_mul_i32, ())
    for shape, width in (("i8x16", 8), ("i16x8", 16), ("i32x4", 32)):
        table[by[f"{shape}.eq"]] = (_eq_ne, (width, False))
        table[by[f"{shape}.ne"]] = (_eq_ne, (width, True))
    table[by["i64x2.splat"]] = (_splat_i64, ())
    table[by["i32x4.splat"]] = (_splat_i32, ())
    table[by["i32x4.extract_lane"]] = (_extract_i32, ())
    table[by["i32x4.replace_lane"]] = (_replace_i32, ())
    table[by["f64x2.extract_lane"]] = (_extract_f64, ())
    table[by["f64x2.replace_lane"]] = (_replace_f64, ())
    table[by["f64x2.splat"]] = (_splat_f64, ())
    table[by["v128.any_true"]] = (_any_true, ())
    for shape, width, narrow in (("i16x8", 16, "i8x16"), ("i32x4", 32, "i16x8"), ("i64x2", 64, "i32x4")):
        for part in ("low", "high"):
            for sign in ("s", "u"):
                table[by[f"{shape}.extmul_{part}_{narrow}_{sign}"]] = (
                    _extmul,
                    (width // 2, part == "high", sign == "s"),
                )
            table[by[f"{shape}.extend_{part}_{narrow}_u"]] = (_extend, (width, part == "high", False))
            if width == 64:
                table[by[f"{shape}.extend_{part}_{narrow}_s"]] = (_extend, (width, part == "high", True))
    for shape, width in (("i8x16", 8), ("i16x8", 16), ("i32x4", 32), ("i64x2", 64)):
        for shift, shift_kind in (("shl", IntBinOp.SHL), ("shr_u", IntBinOp.SHR_U), ("shr_s", IntBinOp.SHR_S)):
            table[by[f"{shape}.{shift}"]] = (_shift, (f"{shape}.{shift}", width, shift_kind))
        table[by[f"{shape}.add"]] = (_add_sub, (width, False))
        table[by[f"{shape}.sub"]] = (_add_sub, (width, True))
    table[by["i64x2.extract_lane"]] = (_extract_i64, ())
    table[by["i64x2.replace_lane"]] = (_replace_i64, ())
    return table
