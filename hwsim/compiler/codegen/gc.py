"""Code generation for GC's instructions: i31 references, ref.eq, the any/extern conversions, casts,
and struct and array objects (allocation, fields and elements).

A reference of the any and extern hierarchies is one 64-bit word, the same in both (so converting
between them is no code), with the externref's host handles already in its shape (docs/gc.md)::

    0                 null
    (v << 1) | 1      an i31 (v: its 31 bits)
    4n + 2            a host object (Store handle n, runtime/store.py extern_handle)
    8-aligned         a GC object (its address: runtime/gcheap.py)

A funcref stays the address of its function record.  Casts to abstract types are tests of the word;
to ``struct``, ``array`` and concrete types they read the type descriptor of the Store type id in the
object's header or the funcref's record (``emit_header_test``).  Objects are allocated inline from the
Store's allocation buffer, the gc_alloc builtin being the slow path (``_new_object``).
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
    F32,
    F64,
    FUNCREF,
    I8,
    I16,
    I31REF,
    I32,
    I64,
    NULLEXNREF,
    NULLEXTERNREF,
    NULLFUNCREF,
    NULLREF,
    STRUCTREF,
    V128,
    StructType,
    is_nullable,
    ref_type_index,
)
from ..abi import (
    FUNCREF_TYPE,
    GC_CURSOR,
    GC_DESC_BYTES,
    GC_DESC_DISPLAY,
    GC_DESC_KIND,
    GC_DESCRIPTOR_COUNT,
    GC_DESCRIPTORS,
    GC_DISPLAY,
    GC_END,
    RegLoc,
)
from ..builtins import Builtin
from ..errors import CompilerBug
from ..masm import Conversion, IntBinOp, IntCmp, LoadKind, StoreKind
from ..objlayout import HEADER_BYTES, array_bytes, storage_size, struct_layout
from ..regs import FLOAT, INT, Reg
from ..traps import TrapCode
from .context import CONST, REG, Comparison, Operand

if TYPE_CHECKING:
    from .visitor import FuncCodegen


_DESC_LOG2 = GC_DESC_BYTES.bit_length() - 1
if 1 << _DESC_LOG2 != GC_DESC_BYTES:
    raise CompilerBug("a type descriptor's size is not a power of two (compiler/abi.py)")


class Accepts(enum.Enum):
    """Which non-null words a cast accepts: tests of the word, or (struct, array and concrete types) of
    the type descriptor of the object's or the function's type id."""

    ALL = "every non-null reference"
    EQ = "the i31 references and the objects (odd or 8-aligned words)"
    I31 = "the i31 references"
    NONE = "no non-null reference"
    HEADER = "objects of a kind or type, functions of a type (their type descriptor)"


ACCEPTS = {
    ANYREF: Accepts.ALL,
    EXTERNREF: Accepts.ALL,
    FUNCREF: Accepts.ALL,
    EXNREF: Accepts.ALL,
    EQREF: Accepts.EQ,
    I31REF: Accepts.I31,
    STRUCTREF: Accepts.HEADER,
    ARRAYREF: Accepts.HEADER,
    NULLREF: Accepts.NONE,
    NULLFUNCREF: Accepts.NONE,
    NULLEXTERNREF: Accepts.NONE,
    NULLEXNREF: Accepts.NONE,
}


def accepts(rt: int) -> Accepts:
    """What a cast to reference type ``rt`` accepts besides null."""
    if ref_type_index(rt) is not None:
        return Accepts.HEADER
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
    elif what is Accepts.EQ:  # odd, or non-zero and 8-aligned (host handles are 4n + 2)
        z = ctx.alloc(INT)
        masm.int_binary(IntBinOp.AND, True, t, ref, 7)
        masm.int_eqz(t, t)
        masm.int_eqz(z, ref)
        masm.int_binary(IntBinOp.XOR, True, z, z, 1)
        masm.int_binary(IntBinOp.AND, True, t, t, z)
        masm.int_binary(IntBinOp.AND, True, z, ref, 1)
        masm.int_binary(IntBinOp.OR, True, t, t, z)
        if nullable:
            masm.int_eqz(z, ref)
            masm.int_binary(IntBinOp.OR, True, t, t, z)
        ctx.free_reg(z)
    elif what is Accepts.HEADER:
        raise CompilerBug("a header cast reached the word test (emit_header_test or gc_test do it)")
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


def _builtin_test(cg: FuncCodegen, word: Operand, rt: int) -> Reg:
    """Call gc_test on ``word`` (popped already); a register holding its 0 or 1, owned by the caller."""
    cg.builtin(Builtin.gc_test, [word], (I64,), I32, (rt,))
    t, _ = cg.ctx.pop_reg()
    return t


def type_depth(cg: FuncCodegen, index: int) -> int:
    """How many declared supertypes type ``index`` has above it (the same in every module that has the
    type: supertypes are part of a canonical type)."""
    supertypes = cg.env.module.supertypes
    depth = 0
    while supertypes is not None and supertypes[index]:
        index = supertypes[index][0]
        depth += 1
    return depth


def inline_header(cg: FuncCodegen, rt: int) -> bool:
    """Does a cast to ``rt`` (Accepts.HEADER) run inline through the type descriptors: ``struct``,
    ``array``, and a concrete type not deeper than the supertype display (else: the gc_test builtin)?"""
    index = ref_type_index(rt)
    return index is None or type_depth(cg, index) < GC_DISPLAY


def emit_header_test(cg: FuncCodegen, ref: Reg, rt: int) -> Reg:
    """A new register holding 1 when ``ref`` (left unchanged) is of type ``rt`` (``struct``, ``array`` or
    a concrete type), else 0, from the type descriptor of the Store type id in the object's header (or
    in the funcref's record; runtime/gcheap.py)::

        null: nullable; not 8-aligned (an i31, a host value): 0
        id = header.type (a funcref: record.type); id >= descriptors: 0      (bounds-safe for any id)
        desc = descriptors + 64 id
        struct, array:  desc.kind == STRUCTREF, ARRAYREF
        concrete:       desc.display[depth] == vmctx[canonical id of the target]

    A display's entries past its type's depth hold no canonical id (0xffffffff), so the depths need no
    compare.  The target's depth is known here (supertypes are part of a canonical type), its canonical
    id is not (per process: the vmctx has it)."""
    ctx, masm, layout = cg.ctx, cg.masm, cg.env.layout
    index = ref_type_index(rt)
    gc_types = cg.env.module.gc_types
    is_func = index is not None and (gc_types is None or gc_types[index] is None)
    t, a, b = ctx.alloc(INT), ctx.alloc(INT), ctx.alloc(INT)
    done, fail = masm.new_label(), masm.new_label()
    masm.load_const(t, I32, 1 if is_nullable(rt) else 0)
    masm.branch_compare(IntCmp.EQ, ref, None, done, True)
    if is_func:
        masm.load(LoadKind.I64_LOAD, a, ref, FUNCREF_TYPE)
    else:
        masm.int_binary(IntBinOp.AND, True, a, ref, 7)
        masm.branch_compare(IntCmp.NE, a, None, fail, True)
        masm.load(LoadKind.I64_LOAD32_U, a, ref, 0)  # the header's Store type id
    masm.load_vmctx(b, layout.gc_record)
    masm.load(LoadKind.I64_LOAD, t, b, GC_DESCRIPTOR_COUNT)
    masm.branch_compare(IntCmp.GE_U, a, t, fail, True)
    masm.load(LoadKind.I64_LOAD, b, b, GC_DESCRIPTORS)
    masm.int_binary(IntBinOp.SHL, True, a, a, _DESC_LOG2)
    masm.int_binary(IntBinOp.ADD, True, a, a, b)
    if index is None:  # struct or array: the kind
        masm.load(LoadKind.I64_LOAD16_U, a, a, GC_DESC_KIND)
        masm.load_const(b, I64, rt & 0xFF)
    else:
        masm.load(LoadKind.I64_LOAD32_U, a, a, GC_DESC_DISPLAY + 4 * type_depth(cg, index))
        masm.load_vmctx(b, layout.canonical_id(index))
    masm.int_compare(IntCmp.EQ, t, a, b)
    masm.jump(done)
    masm.bind(fail)
    masm.load_const(t, I32, 0)
    masm.bind(done)
    ctx.free_reg(a)
    ctx.free_reg(b)
    return t


def _test_keeping(cg: FuncCodegen, rt: int) -> Reg:
    """Test the reference on top of the stack, which stays there; a register with the 0 or 1."""
    ctx = cg.ctx
    v, ref = cg.own_top_reg()
    if accepts(rt) is Accepts.HEADER and not inline_header(cg, rt):
        ctx.push_reg(v.ty, ref)
        copy = ctx.alloc(INT)
        cg.masm.mov(copy, ref)
        return _builtin_test(cg, Operand(REG, I64, copy), rt)
    t = emit_header_test(cg, ref, rt) if accepts(rt) is Accepts.HEADER else emit_test(cg, ref, rt)
    ctx.push_reg(v.ty, ref)
    return t


def visit_ref_test(cg: FuncCodegen, imm: int) -> None:
    ctx = cg.ctx
    if accepts(imm) is Accepts.HEADER and not inline_header(cg, imm):
        ctx.push_reg(I32, _builtin_test(cg, ctx.pop(), imm))
        return
    ref, owned = ctx.pop_reg()
    t = emit_header_test(cg, ref, imm) if accepts(imm) is Accepts.HEADER else emit_test(cg, ref, imm)
    ctx.release(ref, owned)
    ctx.push_reg(I32, t)


def visit_ref_cast(cg: FuncCodegen, imm: int) -> None:
    t = _test_keeping(cg, imm)
    cg.masm.trap_if_null(t, TrapCode.CAST_FAILURE)
    cg.ctx.free_reg(t)


def visit_br_on_cast(cg: FuncCodegen, imm, taken_when: bool) -> None:
    """``br_on_cast l rt1 rt2`` (branch when the cast to rt2 succeeds, ``taken_when``) and
    ``br_on_cast_fail`` (when it fails); the reference stays on the stack either way."""
    label, _rt1, rt2 = imm
    ctx = cg.ctx
    t = _test_keeping(cg, rt2)
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


# Objects (runtime/gcheap.py lays them out) ---------------------------------------------------------

_LOAD = {
    (I8, True): LoadKind.I32_LOAD8_S,
    (I8, False): LoadKind.I32_LOAD8_U,
    (I16, True): LoadKind.I32_LOAD16_S,
    (I16, False): LoadKind.I32_LOAD16_U,
}
_LOAD_BY_TYPE = {I32: LoadKind.I32_LOAD, I64: LoadKind.I64_LOAD, F32: LoadKind.F32_LOAD, F64: LoadKind.F64_LOAD}
_STORE = {
    I8: StoreKind.I32_STORE8,
    I16: StoreKind.I32_STORE16,
    I32: StoreKind.I32_STORE,
    I64: StoreKind.I64_STORE,
    F32: StoreKind.F32_STORE,
    F64: StoreKind.F64_STORE,
}
_LOG2 = {1: 0, 2: 1, 4: 2, 8: 3, 16: 4}


def _load_kind(storage: int, signed: bool) -> LoadKind:
    if storage in (I8, I16):
        return _LOAD[(storage, signed)]
    return _LOAD_BY_TYPE.get(storage, LoadKind.I64_LOAD)  # a reference: its 64-bit word


def _value_type(storage: int) -> int:
    """The operand type a field of this storage is on the stack (references: their lowered type)."""
    return I32 if storage in (I8, I16) else storage


def _gc_types(cg: FuncCodegen) -> list:
    types = cg.env.module.gc_types
    if types is None:
        raise CompilerBug("an object instruction in a module without struct or array types")
    return types


def _address(cg: FuncCodegen, base: Reg, offset: int) -> tuple[Reg, int, Reg | None]:
    """(base register, displacement, a temporary to free) addressing ``base + offset``."""
    if -2048 <= offset < 2048:
        return base, offset, None
    t = cg.ctx.alloc(INT)
    cg.masm.load_const(t, I64, offset)
    cg.masm.int_binary(IntBinOp.ADD, True, t, t, base)
    return t, 0, t


def _v128_at(cg: FuncCodegen, move: Callable[[Reg, Reg, Reg, int], None], lo: Reg, hi: Reg, obj: Reg, offset: int):
    """``move`` (the backend's load_v128 or store_v128) the halves ``lo, hi`` at ``obj + offset``."""
    base, disp, temp = _address(cg, obj, offset)
    move(lo, hi, base, disp)
    if temp is not None:
        cg.ctx.free_reg(temp)


def _store_field(cg: FuncCodegen, obj: Reg, offset: int, storage: int) -> None:
    """Pop a value and store it at ``obj + offset``."""
    ctx = cg.ctx
    if storage == V128:  # two operand-stack halves (codegen/simd.py), the high one on top
        hi, hown = ctx.pop_reg()
        lo, lown = ctx.pop_reg()
        _v128_at(cg, cg.masm.store_v128, lo, hi, obj, offset)
        ctx.release(hi, hown)
        ctx.release(lo, lown)
        return
    reg, owned = ctx.pop_reg()
    base, disp, temp = _address(cg, obj, offset)
    cg.masm.store(_STORE.get(storage, StoreKind.I64_STORE), reg, base, disp)
    if temp is not None:
        ctx.free_reg(temp)
    ctx.release(reg, owned)


def _pop_value(cg: FuncCodegen, storage: int) -> list[Operand]:
    """Pop a field's value: one operand, or a v128's two halves (low, high)."""
    ctx = cg.ctx
    n = 2 if storage == V128 else 1
    value = ctx.stack[len(ctx.stack) - n :]
    del ctx.stack[len(ctx.stack) - n :]
    return value


def _load_field(cg: FuncCodegen, obj: Reg, offset: int, storage: int, signed: bool) -> None:
    """Push the value at ``obj + offset`` (``obj`` is released by the caller)."""
    ctx = cg.ctx
    if storage == V128:  # both halves' registers taken before either is pushed (neither can be spilled early)
        lo, hi = ctx.alloc(INT), ctx.alloc(INT)
        _v128_at(cg, cg.masm.load_v128, lo, hi, obj, offset)
        ctx.push_reg(V128, lo)
        ctx.push_reg(V128, hi)
        return
    ty = _value_type(storage)
    dst = ctx.alloc(FLOAT if ty in (F32, F64) else INT)
    base, disp, temp = _address(cg, obj, offset)
    cg.masm.load(_load_kind(storage, signed), dst, base, disp)
    if temp is not None:
        ctx.free_reg(temp)
    ctx.push_reg(ty, dst)  # (a reference's storage is its lowered type already: gc_types)


def _add_const(cg: FuncCodegen, dst: Reg, a: Reg, value: int) -> None:
    """``dst = a + value`` (64-bit), through a constant register when the immediate does not fit."""
    masm = cg.masm
    if masm.int_imm_ok(IntBinOp.ADD, True, value):
        masm.int_binary(IntBinOp.ADD, True, dst, a, value)
        return
    t = cg.ctx.alloc(INT)
    masm.load_const(t, I64, value)
    masm.int_binary(IntBinOp.ADD, True, dst, a, t)
    cg.ctx.free_reg(t)


def _new_object(cg: FuncCodegen, type_index: int, length: Operand) -> Reg:
    """A zeroed object with its header; its address in a register the caller owns (values below it stay).

    Inline from the Store's allocation buffer (runtime/gcheap.py; the GC record's cursor and end,
    compiler/abi.py), the header's Store type id from the vmctx; when the object does not fit, the
    gc_alloc builtin (a safepoint: it may collect) allocates it and refills the buffer::

        rec = vmctx[gc record]; obj = rec.cursor; next = obj + size (16-aligned)
        if rec.end < next: obj = gc_alloc(length, type)         slow path, out of line
        else: rec.cursor = next; obj.header = vmctx[type id] | length << 32

    Both paths leave the object in the builtin's result register, and every operand spilled (as the call
    needs), so the code after them sees one state."""
    ctx, masm, layout = cg.ctx, cg.masm, cg.env.layout
    ct = _gc_types(cg)[type_index]
    if length.kind is REG:  # into its slot: the fast path reads it there, the call takes it from there
        ctx.stack.append(length)
        ctx.spill_value(len(ctx.stack) - 1)
        length = ctx.pop()
    ctx.spill_regs()
    (loc,) = masm.abi_locations((I64,))
    if not isinstance(loc, RegLoc):
        raise CompilerBug("a builtin's result is not in a register")
    obj = loc.reg
    ctx.take(obj)
    rec, nxt = ctx.alloc(INT), ctx.alloc(INT)
    masm.load_vmctx(rec, layout.gc_record)
    masm.load(LoadKind.I64_LOAD, obj, rec, GC_CURSOR)
    if isinstance(ct, StructType) or length.kind is CONST:
        n = 0 if isinstance(ct, StructType) else length.x & 0xFFFF_FFFF
        size = struct_layout(ct)[1] if isinstance(ct, StructType) else array_bytes(ct, n)
        _add_const(cg, nxt, obj, (size + 15) & ~15)
        header = n << 32
        lreg = None
    else:
        lreg, lown = ctx.to_reg(length)
        shift = _LOG2[storage_size(ct.element.storage)]
        masm.int_binary(IntBinOp.SHL, True, nxt, lreg, 32)  # the u32 length, times the element size
        masm.int_binary(IntBinOp.SHR_U, True, nxt, nxt, 32 - shift)
        masm.int_binary(IntBinOp.ADD, True, nxt, nxt, HEADER_BYTES + 15)
        masm.int_binary(IntBinOp.AND, True, nxt, nxt, -16)
        masm.int_binary(IntBinOp.ADD, True, nxt, nxt, obj)
        header = 0
    end = ctx.alloc(INT)
    masm.load(LoadKind.I64_LOAD, end, rec, GC_END)
    slow, done = masm.new_label(), masm.new_label()
    masm.branch_compare(IntCmp.LT_U, end, nxt, slow, True)
    masm.store(StoreKind.I64_STORE, nxt, rec, GC_CURSOR)
    masm.load_vmctx(nxt, layout.type_id(type_index))
    if lreg is not None:
        masm.int_binary(IntBinOp.SHL, True, end, lreg, 32)
        masm.int_binary(IntBinOp.OR, True, nxt, nxt, end)
        ctx.release(lreg, lown)
    elif header:
        masm.load_const(end, I64, header)
        masm.int_binary(IntBinOp.OR, True, nxt, nxt, end)
    masm.store(StoreKind.I64_STORE, nxt, obj, 0)
    for r in (rec, nxt, end, obj):
        ctx.free_reg(r)
    masm.jump(done)
    masm.bind(slow)
    cg.builtin(Builtin.gc_alloc, [length], (I32,), I64, (type_index,))
    result, _ = ctx.pop_reg()
    if result != obj:
        raise CompilerBug("gc_alloc's result is not where the inline path left the object")
    masm.bind(done)
    return result


def visit_struct_new(cg: FuncCodegen, imm: int, default: bool) -> None:
    st = _gc_types(cg)[imm]
    obj = _new_object(cg, imm, Operand(CONST, I32, 0))
    if not default:
        offsets, _ = struct_layout(st)
        for f, off in reversed(list(zip(st.fields, offsets))):
            _store_field(cg, obj, off, f.storage)
    cg.ctx.push_reg(EXTERNREF, obj)


def visit_struct_get(cg: FuncCodegen, imm, signed: bool) -> None:
    x, y = imm
    st = _gc_types(cg)[x]
    ctx = cg.ctx
    obj, owned = ctx.pop_reg()
    cg.masm.trap_if_null(obj, TrapCode.NULL_STRUCTURE_REFERENCE)
    _load_field(cg, obj, struct_layout(st)[0][y], st.fields[y].storage, signed)
    ctx.release(obj, owned)


def visit_struct_set(cg: FuncCodegen, imm) -> None:
    x, y = imm
    st = _gc_types(cg)[x]
    ctx = cg.ctx
    value = _pop_value(cg, st.fields[y].storage)
    obj, owned = ctx.pop_reg()
    cg.masm.trap_if_null(obj, TrapCode.NULL_STRUCTURE_REFERENCE)
    ctx.stack += value
    _store_field(cg, obj, struct_layout(st)[0][y], st.fields[y].storage)
    ctx.release(obj, owned)


def visit_array_new(cg: FuncCodegen, imm: int) -> None:
    """``array.new``: inline allocation and fill; a v128 element through the gc_array_new builtin."""
    ctx = cg.ctx
    length = ctx.pop()
    if _gc_types(cg)[imm].element.storage == V128:  # the high half last, after the type index (runtime)
        hi = ctx.pop()
        lo = ctx.pop()
        cg.builtin(Builtin.gc_array_new, [lo, length, Operand(CONST, I64, imm), hi], (I64, I32, I64, I64), I64)
        obj, _ = ctx.pop_reg()
        ctx.push_reg(EXTERNREF, obj)
        return
    # Inline: the value stays on the operand stack (spilled by the allocation: a reference is in its stack
    # map, so a collection keeps it), the object is allocated as array.new_default's, then filled unless the
    # value is a constant 0 (a new object is zeroed)::
    #
    #     obj = new(length); p = obj + 8; end = p + (obj.length << log2(size))
    #     while p < end: *p = value; p += size
    value = ctx.stack[-1]
    zero = value.kind is CONST and not value.x
    obj = _new_object(cg, imm, length)
    value = ctx.pop()
    if zero:
        ctx.push_reg(EXTERNREF, obj)
        return
    masm = cg.masm
    storage = _gc_types(cg)[imm].element.storage
    size = storage_size(storage)
    reg, owned = ctx.to_reg(value)
    p, end = ctx.alloc(INT), ctx.alloc(INT)
    masm.load(LoadKind.I32_LOAD, end, obj, 4)  # the length from the header, zero-extended, times the size
    masm.int_binary(IntBinOp.SHL, True, end, end, 32)
    masm.int_binary(IntBinOp.SHR_U, True, end, end, 32 - _LOG2[size])
    masm.int_binary(IntBinOp.ADD, True, p, obj, HEADER_BYTES)
    masm.int_binary(IntBinOp.ADD, True, end, end, p)
    loop, done = masm.new_label(), masm.new_label()
    masm.bind(loop)
    masm.branch_compare(IntCmp.GE_U, p, end, done, True)
    masm.store(_STORE.get(storage, StoreKind.I64_STORE), reg, p, 0)
    masm.int_binary(IntBinOp.ADD, True, p, p, size)
    masm.jump(loop)
    masm.bind(done)
    ctx.free_reg(p)
    ctx.free_reg(end)
    ctx.release(reg, owned)
    ctx.push_reg(EXTERNREF, obj)


def visit_array_new_default(cg: FuncCodegen, imm: int) -> None:
    obj = _new_object(cg, imm, cg.ctx.pop())
    cg.ctx.push_reg(EXTERNREF, obj)


def visit_array_new_fixed(cg: FuncCodegen, imm) -> None:
    x, n = imm
    at = _gc_types(cg)[x]
    obj = _new_object(cg, x, Operand(CONST, I32, n))
    size = storage_size(at.element.storage)
    for i in reversed(range(n)):
        _store_field(cg, obj, HEADER_BYTES + i * size, at.element.storage)
    cg.ctx.push_reg(EXTERNREF, obj)


def _element_address(cg: FuncCodegen, obj: Reg, index: Reg, size: int) -> Reg:
    """Null and bounds checks, then a new register holding the element's address less HEADER_BYTES."""
    ctx, masm = cg.ctx, cg.masm
    masm.trap_if_null(obj, TrapCode.NULL_ARRAY_REFERENCE)
    length = ctx.alloc(INT)
    masm.load(LoadKind.I32_LOAD, length, obj, 4)
    masm.int_compare(IntCmp.LT_U, length, index, length)  # the length fits 31 bits; the index is an i32
    masm.trap_if_null(length, TrapCode.ARRAY_OUT_OF_BOUNDS)
    masm.int_binary(IntBinOp.SHL, True, length, index, _LOG2[size])
    masm.int_binary(IntBinOp.ADD, True, length, length, obj)
    return length


def visit_array_get(cg: FuncCodegen, imm: int, signed: bool) -> None:
    at = _gc_types(cg)[imm]
    ctx = cg.ctx
    index, iown = ctx.pop_reg()
    obj, oown = ctx.pop_reg()
    addr = _element_address(cg, obj, index, storage_size(at.element.storage))
    ctx.release(index, iown)
    ctx.release(obj, oown)
    _load_field(cg, addr, HEADER_BYTES, at.element.storage, signed)
    ctx.free_reg(addr)


def visit_array_set(cg: FuncCodegen, imm: int) -> None:
    at = _gc_types(cg)[imm]
    ctx = cg.ctx
    value = _pop_value(cg, at.element.storage)
    index, iown = ctx.pop_reg()
    obj, oown = ctx.pop_reg()
    addr = _element_address(cg, obj, index, storage_size(at.element.storage))
    ctx.release(index, iown)
    ctx.release(obj, oown)
    ctx.stack += value
    _store_field(cg, addr, HEADER_BYTES, at.element.storage)
    ctx.free_reg(addr)


def visit_array_len(cg: FuncCodegen, imm) -> None:
    ctx, masm = cg.ctx, cg.masm
    obj, owned = ctx.pop_reg()
    masm.trap_if_null(obj, TrapCode.NULL_ARRAY_REFERENCE)
    ctx.release(obj, owned)
    dst = cg.dst_reg(INT)
    masm.load(LoadKind.I32_LOAD, dst, obj, 4)
    ctx.push_reg(I32, dst)


def _bits_operand(cg: FuncCodegen, v: Operand) -> Operand:
    """A value as the integer bits a builtin takes (a float reinterpreted)."""
    if v.ty not in (F32, F64):
        return v
    ctx = cg.ctx
    reg, owned = ctx.to_reg(v)
    bits = ctx.alloc(INT)
    cg.masm.convert(Conversion.I32_REINTERPRET_F32 if v.ty == F32 else Conversion.I64_REINTERPRET_F64, bits, reg)
    ctx.release(reg, owned)
    return Operand(REG, I64, bits)


def visit_array_bulk(cg: FuncCodegen, imm, builtin: Builtin, arity: int, value_at: int | None, result: bool) -> None:
    """An array bulk instruction through its builtin: ``arity`` operands (the one at ``value_at`` a value,
    passed as bits), then the immediates as static operands."""
    ctx = cg.ctx
    extra = imm if isinstance(imm, tuple) else (imm,)
    if value_at is not None and ctx.stack[-1 - (arity - 1 - value_at)].ty == V128:
        # a v128 value is two operands: the low half in the value's place, the high one after the statics
        args = ctx.stack[len(ctx.stack) - arity - 1 :]
        del ctx.stack[len(ctx.stack) - arity - 1 :]
        hi = args.pop(value_at + 1)
        statics = [Operand(CONST, I64, x) for x in extra]
        cg.builtin(builtin, args + statics + [hi], tuple(I64 for _ in range(len(args) + len(statics) + 1)), None)
        return
    args = ctx.stack[len(ctx.stack) - arity :]
    del ctx.stack[len(ctx.stack) - arity :]
    if value_at is not None:
        args[value_at] = _bits_operand(cg, args[value_at])
    cg.builtin(builtin, args, tuple(I64 for _ in args), I64 if result else None, extra)
    if result:
        obj, _ = ctx.pop_reg()
        ctx.push_reg(EXTERNREF, obj)


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
        gcops.STRUCT_NEW: (visit_struct_new, (False,)),
        gcops.STRUCT_NEW_DEFAULT: (visit_struct_new, (True,)),
        gcops.STRUCT_GET: (visit_struct_get, (False,)),
        gcops.STRUCT_GET_S: (visit_struct_get, (True,)),
        gcops.STRUCT_GET_U: (visit_struct_get, (False,)),
        gcops.STRUCT_SET: (visit_struct_set, ()),
        gcops.ARRAY_NEW: (visit_array_new, ()),
        gcops.ARRAY_NEW_DEFAULT: (visit_array_new_default, ()),
        gcops.ARRAY_NEW_FIXED: (visit_array_new_fixed, ()),
        gcops.ARRAY_GET: (visit_array_get, (False,)),
        gcops.ARRAY_GET_S: (visit_array_get, (True,)),
        gcops.ARRAY_GET_U: (visit_array_get, (False,)),
        gcops.ARRAY_SET: (visit_array_set, ()),
        gcops.ARRAY_LEN: (visit_array_len, ()),
        gcops.ARRAY_FILL: (visit_array_bulk, (Builtin.gc_array_fill, 4, 2, False)),
        gcops.ARRAY_COPY: (visit_array_bulk, (Builtin.gc_array_copy, 5, None, False)),
        gcops.ARRAY_INIT_DATA: (visit_array_bulk, (Builtin.gc_array_init_data, 4, None, False)),
        gcops.ARRAY_INIT_ELEM: (visit_array_bulk, (Builtin.gc_array_init_elem, 4, None, False)),
        gcops.ARRAY_NEW_DATA: (visit_array_bulk, (Builtin.gc_array_new_data, 2, None, True)),
        gcops.ARRAY_NEW_ELEM: (visit_array_bulk, (Builtin.gc_array_new_elem, 2, None, True)),
    }
