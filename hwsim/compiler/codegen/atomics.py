"""Code generation for the threads proposal's atomic instructions (hwsim/wasm/atomics.py).

Loads, stores, read-modify-writes and compare-exchanges are compiled in place
(the macro-assembler's ``atomic_*`` operations: RV64A on RISC-V), after an
alignment check that traps ``unaligned atomic`` before the bounds check, as
wasmtime orders them.  ``memory.atomic.wait32/64`` and ``notify`` call runtime
builtins (hwsim/runtime/builtins.py), which check the address the same way.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ...wasm.atomics import ATOMICS, AtomicKind, AtomicOp
from ...wasm.types import I32, I64
from ..builtins import Builtin
from ..masm import LoadKind, StoreKind
from ..regs import INT

if TYPE_CHECKING:
    from .visitor import FuncCodegen

# (value type, access size) -> the plain load or store an atomic one orders (narrow loads zero-extend).
_LOAD_KIND = {
    (I32, 4): LoadKind.I32_LOAD,
    (I64, 8): LoadKind.I64_LOAD,
    (I32, 1): LoadKind.I32_LOAD8_U,
    (I32, 2): LoadKind.I32_LOAD16_U,
    (I64, 1): LoadKind.I64_LOAD8_U,
    (I64, 2): LoadKind.I64_LOAD16_U,
    (I64, 4): LoadKind.I64_LOAD32_U,
}
_STORE_KIND = {
    (I32, 4): StoreKind.I32_STORE,
    (I64, 8): StoreKind.I64_STORE,
    (I32, 1): StoreKind.I32_STORE8,
    (I32, 2): StoreKind.I32_STORE16,
    (I64, 1): StoreKind.I64_STORE8,
    (I64, 2): StoreKind.I64_STORE16,
    (I64, 4): StoreKind.I64_STORE32,
}
_TEMPS = {AtomicKind.RMW: 3, AtomicKind.CMPXCHG: 4}  # spare registers the 8/16-bit forms need


def visit_atomic(cg: FuncCodegen, imm, a: AtomicOp) -> None:
    """One atomic instruction (``a``) with its memarg ``imm``."""
    kind = a.kind
    if kind is AtomicKind.FENCE:
        cg.masm.fence()
        return
    mem, _align, offset = imm
    if kind is AtomicKind.NOTIFY or kind is AtomicKind.WAIT:
        _wait_notify(cg, mem, offset, a)
        return
    ctx, masm = cg.ctx, cg.masm
    size = a.size
    word, memtype = cg.env.layout.memory(mem), cg.env.memory_types[mem]
    if kind is AtomicKind.LOAD:
        reg, owned = ctx.pop_reg()
        masm.atomic_check_align(reg, offset, size)
        ctx.release(reg, owned)
        dst = ctx.alloc(INT)
        base, disp = masm.heap_address(mem, word, memtype, reg, offset, size)
        masm.atomic_load(_LOAD_KIND[a.valtype, size], dst, base, disp)
        ctx.push_reg(a.valtype, dst)
        return
    operands = [ctx.pop() for _ in range(3 if kind is AtomicKind.CMPXCHG else 2)][::-1]
    regs = [ctx.to_reg(v) for v in operands]
    areg = regs[0][0]
    if kind is AtomicKind.STORE:
        masm.atomic_check_align(areg, offset, size)
        base, disp = masm.heap_address(mem, word, memtype, areg, offset, size)
        masm.atomic_store(_STORE_KIND[a.valtype, size], regs[1][0], base, disp)
        for reg, owned in regs:
            ctx.release(reg, owned)
        return
    temps = tuple(ctx.alloc(INT) for _ in range(_TEMPS[kind] if size < 4 else 0))
    dst = ctx.alloc(INT)
    masm.atomic_check_align(areg, offset, size)
    base, disp = masm.heap_address(mem, word, memtype, areg, offset, size)
    wide = a.valtype == I64
    if kind is AtomicKind.RMW:
        assert a.rmw is not None  # every RMW entry of the table names its operator
        masm.atomic_rmw(a.rmw, size, wide, dst, base, disp, regs[1][0], temps)
    else:
        masm.atomic_cmpxchg(size, wide, dst, base, disp, regs[1][0], regs[2][0], temps)
    for reg, owned in regs:
        ctx.release(reg, owned)
    for reg in temps:
        ctx.free_reg(reg)
    ctx.push_reg(a.valtype, dst)


def _wait_notify(cg: FuncCodegen, mem: int, offset: int, a: AtomicOp) -> None:
    at = cg.env.memory_types[mem].index_type
    ctx = cg.ctx
    if a.kind is AtomicKind.NOTIFY:
        count, addr = ctx.pop(), ctx.pop()
        cg.builtin(Builtin.memory_atomic_notify, [addr, count], (at, I32), I32, (mem, offset))
        return
    timeout, expected, addr = ctx.pop(), ctx.pop(), ctx.pop()
    builtin = Builtin.memory_atomic_wait64 if a.valtype == I64 else Builtin.memory_atomic_wait32
    cg.builtin(builtin, [addr, expected, timeout], (at, a.valtype, I64), I32, (mem, offset))


# opcode -> (handler, static operands), merged into the visitor's DISPATCH.
ATOMIC_DISPATCH = {code: (visit_atomic, (a,)) for code, a in ATOMICS.items()}
