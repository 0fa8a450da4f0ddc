"""Code generation for GC's instructions that need no heap: i31 references, ref.eq, the any/extern
conversions, and ref.test, ref.cast, br_on_cast and br_on_cast_fail to abstract heap types.

A reference of the any and extern hierarchies is one 64-bit word, the same in both (so converting
between them is no code), with the externref's host handles already in its shape (docs/gc.md)::

    0                 null
    (v << 1) | 1      an i31 (v: its 31 bits)
    4n + 2            a host object (Store handle n, runtime/store.py extern_handle)
    8-aligned         a GC object (not allocated yet: no struct or array type compiles)

A funcref stays the address of its function record.  Without GC objects the abstract casts are tests
of the word: ``any``, ``extern`` and ``func`` accept every non-null value, ``eq`` and ``i31`` the
i31s, ``struct``, ``array`` and the bottoms none.  Casts to concrete types are refused by the lowering
(wasm/typedrefs.py).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from typing import TYPE_CHECKING

from ...wasm import gcops
from ...wasm.types import (
    ANYREF,
    ARRAYREF,
    EQREF,
    EXNREF,
    EXTERNREF,
    FUNCREF,
    I31REF,
    I32,
    NULLEXNREF,
    NULLEXTERNREF,
    NULLFUNCREF,
    NULLREF,
    STRUCTREF,
    is_nullable,
    ref_type_index,
)
from ..errors import CompilerBug
from ..masm import IntBinOp, IntCmp
from ..regs import INT, Reg
from ..traps import TrapCode
from .context import Comparison

if TYPE_CHECKING:
    from .visitor import FuncCodegen


class Accepts(enum.Enum):
    """Which non-null words a cast to an abstract heap type accepts (no GC object exists yet)."""

    ALL = "every non-null reference"
    I31 = "the i31 references"
    NONE = "no non-null reference"


ACCEPTS = {
    ANYREF: Accepts.ALL,
    EXTERNREF: Accepts.ALL,
    FUNCREF: Accepts.ALL,
    EXNREF: Accepts.ALL,
    EQREF: Accepts.I31,
    I31REF: Accepts.I31,
    STRUCTREF: Accepts.NONE,
    ARRAYREF: Accepts.NONE,
    NULLREF: Accepts.NONE,
    NULLFUNCREF: Accepts.NONE,
    NULLEXTERNREF: Accepts.NONE,
    NULLEXNREF: Accepts.NONE,
}


def accepts(rt: int) -> Accepts:
    """What a cast to reference type ``rt`` (an abstract heap type) accepts besides null."""
    if ref_type_index(rt) is not None:
        raise CompilerBug(f"a cast to a concrete type reached the code generator ({rt:#x})")
    return ACCEPTS[rt & 0xFF]


def emit_test(cg: FuncCodegen, ref: Reg, rt: int) -> Reg:
    """A new register holding 1 when the reference in ``ref`` (left unchanged) is of type ``rt``, else 0."""
    masm, ctx = cg.masm, cg.ctx
    what, nullable = accepts(rt), is_nullable(rt)
    t = ctx.alloc(INT)
    if what is Accepts.ALL:
        if nullable:
            masm.load_const(t, I32, 1)
        else:
            masm.int_eqz(t, ref)
            masm.int_binary(IntBinOp.XOR, False, t, t, 1)
    elif what is Accepts.I31:
        masm.int_binary(IntBinOp.AND, True, t, ref, 1)
        if nullable:
            z = ctx.alloc(INT)
            masm.int_eqz(z, ref)
            masm.int_binary(IntBinOp.OR, True, t, t, z)
            ctx.free_reg(z)
    elif nullable:
        masm.int_eqz(t, ref)
    else:
        masm.load_const(t, I32, 0)
    return t


def visit_ref_test(cg: FuncCodegen, imm: int) -> None:
    ctx = cg.ctx
    ref, owned = ctx.pop_reg()
    t = emit_test(cg, ref, imm)
    ctx.release(ref, owned)
    ctx.push_reg(I32, t)


def visit_ref_cast(cg: FuncCodegen, imm: int) -> None:
    v, ref = cg.own_top_reg()
    t = emit_test(cg, ref, imm)
    cg.masm.trap_if_null(t, TrapCode.CAST_FAILURE)
    cg.ctx.free_reg(t)
    cg.ctx.push_reg(v.ty, ref)


def visit_br_on_cast(cg: FuncCodegen, imm, taken_when: bool) -> None:
    """``br_on_cast l rt1 rt2`` (branch when the cast to rt2 succeeds, ``taken_when``) and
    ``br_on_cast_fail`` (when it fails); the reference stays on the stack either way."""
    label, _rt1, rt2 = imm
    ctx = cg.ctx
    v, ref = cg.own_top_reg()
    t = emit_test(cg, ref, rt2)
    ctx.push_reg(v.ty, ref)
    cg.carry(cg.control.frames[-1 - label])
    ctx.push_comparison(Comparison(IntCmp.NE if taken_when else IntCmp.EQ, t, True, None, False))
    cg.control.br_if(label)


def visit_ref_i31(cg: FuncCodegen, imm) -> None:
    """``ref.i31``: the low 31 bits of the i32, shifted left, with bit 0 set."""
    ctx, masm = cg.ctx, cg.masm
    x = ctx.pop_operand()
    dst = cg.dst_reg(INT)
    masm.int_binary(IntBinOp.SHL, True, dst, x, 33)
    masm.int_binary(IntBinOp.SHR_U, True, dst, dst, 32)
    masm.int_binary(IntBinOp.OR, True, dst, dst, 1)
    ctx.push_reg(EXTERNREF, dst)


def visit_i31_get(cg: FuncCodegen, imm, signed: bool) -> None:
    """``i31.get_s``/``i31.get_u``: trap on null, else the 31 bits, sign- or zero-extended."""
    ctx, masm = cg.ctx, cg.masm
    ref, owned = ctx.pop_reg()
    masm.trap_if_null(ref, TrapCode.NULL_I31_REFERENCE)
    ctx.release(ref, owned)
    dst = cg.dst_reg(INT)
    if signed:
        masm.int_binary(IntBinOp.SHL, True, dst, ref, 32)
        masm.int_binary(IntBinOp.SHR_S, True, dst, dst, 33)
    else:
        masm.int_binary(IntBinOp.SHR_U, True, dst, ref, 1)
    ctx.push_reg(I32, dst)


def visit_convert(cg: FuncCodegen, imm) -> None:
    """``any.convert_extern``/``extern.convert_any``: the same word in both hierarchies."""


def dispatch() -> dict[int, tuple[Callable, tuple]]:
    """opcode -> (handler, static operands) for the GC instructions compiled without a heap (ref.eq, an
    integer comparison, is the visitor's)."""
    return {
        gcops.REF_I31: (visit_ref_i31, ()),
        gcops.I31_GET_S: (visit_i31_get, (True,)),
        gcops.I31_GET_U: (visit_i31_get, (False,)),
        gcops.ANY_CONVERT_EXTERN: (visit_convert, ()),
        gcops.EXTERN_CONVERT_ANY: (visit_convert, ()),
        gcops.REF_TEST: (visit_ref_test, ()),
        gcops.REF_TEST_NULL: (visit_ref_test, ()),
        gcops.REF_CAST: (visit_ref_cast, ()),
        gcops.REF_CAST_NULL: (visit_ref_cast, ()),
        gcops.BR_ON_CAST: (visit_br_on_cast, (True,)),
        gcops.BR_ON_CAST_FAIL: (visit_br_on_cast, (False,)),
    }
