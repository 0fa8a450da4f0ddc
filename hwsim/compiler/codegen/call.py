"""Calls and the ABI: parameters in, arguments out, results back, returns (direct, through a reference, builtins).

Where each value goes is the backend's :meth:`~hwsim.compiler.masm.MacroAssembler.abi_locations`
(a :class:`~hwsim.compiler.abi.RegLoc` or an :class:`~hwsim.compiler.abi.AreaLoc`
each); this module moves operand-stack values there and back.  Before a call
every register value is spilled: the operand pools are caller-saved.  A call that may collect (a wasm or
host function, an allocating builtin, a blocking one) records the frame's stack map there (``record_safepoint``).
"""

from __future__ import annotations

from ...wasm.types import I64, FuncType
from ..abi import AbiLoc, RegLoc
from ..builtins import ALLOCATING, BLOCKING
from ..errors import CompilerBug
from ..regs import Reg
from .context import CMP, CONST, LOCAL, REG, SLOT, CodeGenContext, Operand, reg_class
from .env import ModuleEnv


def receive_params(ctx: CodeGenContext, params: tuple[int, ...]) -> None:
    """In the prologue: move the parameters from their ABI locations to their locals' homes.

    Homes may be argument registers (a function that calls nothing), so the stores to slots go first,
    then the register moves as one parallel move, then the loads from the ABI area."""
    masm = ctx.masm
    moves, loads = [], []
    for home, loc in zip(ctx.homes, masm.abi_locations(params)):
        if home.reg is None:
            assert home.slot is not None  # a local without a register has a slot (home_locals)
            masm.spill_from_abi(home.slot, loc, home.ty)
        elif isinstance(loc, RegLoc):
            moves.append((home.reg, loc.reg))
        else:
            loads.append((home.reg, loc, home.ty))
    parallel_move(ctx, moves)
    for reg, loc, ty in loads:
        masm.move_from_abi(reg, loc, ty)


def value_to_abi(ctx: CodeGenContext, v: Operand, loc: AbiLoc, ty: int) -> None:
    """Put ``v`` at ABI location ``loc`` (the value itself stays where it is)."""
    masm = ctx.masm
    if v.kind is CONST:
        masm.const_to_abi(loc, ty, v.x)
    elif v.kind is SLOT:
        masm.slot_to_abi(loc, masm.slot_offset(v.x), ty)
    elif v.kind is LOCAL:
        home = ctx.homes[v.x]
        if home.reg is not None:
            masm.reg_to_abi(loc, home.reg, ty)
        else:
            masm.slot_to_abi(loc, home.slot, ty)
    else:
        masm.reg_to_abi(loc, v.x, ty)


def values_to_abi(ctx: CodeGenContext, values: list[Operand], types: tuple[int, ...]) -> None:
    """Put ``values`` at the ABI locations of ``types`` (the values themselves stay where they are): those
    bound for memory first; then register-to-register moves as one parallel move (an ABI register may
    hold another value, or home a local); then loads from slots and constants."""
    reg_moves, loads = [], []
    for v, loc, ty in zip(values, ctx.masm.abi_locations(types), types):
        home = ctx.homes[v.x].reg if v.kind is LOCAL else None
        if not isinstance(loc, RegLoc):
            value_to_abi(ctx, v, loc, ty)
        elif v.kind is REG:
            reg_moves.append((loc.reg, v.x))
        elif home is not None:
            reg_moves.append((loc.reg, home))
        else:
            loads.append((v, loc, ty))
    parallel_move(ctx, reg_moves)
    for v, loc, ty in loads:
        value_to_abi(ctx, v, loc, ty)


def parallel_move(ctx: CodeGenContext, moves: list[tuple[Reg, Reg]]) -> None:
    """Move each source register into its destination (pairs ``(dst, src)``) as if all moved at once."""
    masm = ctx.masm
    pending = [(d, s) for d, s in moves if d != s]
    if len(pending) == 1:  # the common case (one result): nothing to order
        d, s = pending[0]
        masm.mov(d, s)
        return
    while pending:
        sources = {s for _, s in pending}
        ready = [(d, s) for d, s in pending if d not in sources]
        if ready:
            for d, s in ready:
                masm.mov(d, s)
            pending = [m for m in pending if m not in ready]
            continue
        d, s = pending[0]  # a cycle: park one source in a scratch register
        scratch = masm.scratch(s.cls)
        masm.mov(scratch, s)
        pending = [(dd, scratch if ss == s else ss) for dd, ss in pending]


def emit_return(ctx: CodeGenContext, results: tuple[int, ...]) -> None:
    """Results (top of the stack) into the result registers / ABI area, then the epilogue.

    This may run on a conditional path: it copies values (:func:`values_to_abi`), never changes the
    context's view of them."""
    values_to_abi(ctx, ctx.top(len(results)), results)
    ctx.masm.epilogue_and_return()


def prepare_args(ctx: CodeGenContext, params: tuple[int, ...]) -> None:
    """Spill the values below the arguments, then pop the arguments (top of the stack) into their ABI locations.

    As :func:`emit_return` moves results (:func:`values_to_abi`; an argument register may home a local
    that no call separates from a read: its pending reads below have left it by then).  An argument in a
    register is never spilled to be loaded back."""
    if ctx.caller_saved_locals:
        raise CompilerBug("a call in a function whose locals live in caller-saved registers (see prepass._CALLS)")
    n = len(params)
    height = len(ctx.stack) - n
    ctx.spill_regs(height)
    args = ctx.top(n)
    for v in args:
        if v.kind is CMP:  # (a pending comparison as an argument: computed now)
            v.x, _ = ctx.to_reg(v)
            v.kind = REG
    values_to_abi(ctx, args, params)
    ctx.truncate(height)


def push_results(ctx: CodeGenContext, results: tuple[int, ...]) -> None:
    """After a call: push its results, taking the result registers where they are.  A result register that
    homes a local (dead at the call) is copied out, once every other result register is taken: the local
    may be written while the result is on the stack."""
    locs = ctx.masm.abi_locations(results)
    regs: list[Reg | None] = []
    for loc in locs:
        reg = loc.reg if isinstance(loc, RegLoc) and loc.reg in ctx.free[loc.reg.cls] else None
        if reg is not None:
            ctx.take(reg)
        regs.append(reg)
    for loc, ty, reg in zip(locs, results, regs):
        if reg is None:
            reg = ctx.alloc(reg_class(ty))
            if isinstance(loc, RegLoc):
                ctx.masm.mov(reg, loc.reg)
            else:
                ctx.masm.move_from_abi(reg, loc, ty)
        ctx.push_reg(ty, reg)


def emit_call(ctx: CodeGenContext, env: ModuleEnv, func_index: int, tail: bool) -> None:
    """``call`` / ``return_call`` of function ``func_index`` (an import goes through its funcref record)."""
    masm = ctx.masm
    ft = env.func_types[func_index]
    prepare_args(ctx, ft.params)
    first = len(masm.return_offsets)
    if func_index < env.num_imported_funcs:
        masm.load_vmctx(masm.CALL_TARGET, env.layout.func(func_index))
        if tail:
            masm.tail_call_ref()
        else:
            masm.call_ref()
    elif tail:
        masm.tail_call_direct(func_index)
    else:
        masm.call_direct(func_index)
    if not tail:
        ctx.record_safepoint(first)
        push_results(ctx, ft.results)


def emit_call_indirect(ctx: CodeGenContext, env: ModuleEnv, type_index: int, table_index: int, tail: bool) -> None:
    """``call_indirect`` / ``return_call_indirect``: look the callee up (and check it), then call it."""
    masm = ctx.masm
    ft = env.types[type_index]
    reg, owned = ctx.pop_reg()
    # Look the callee up before the arguments take the argument registers.
    masm.table_element_for_call(
        reg,
        env.layout.table(table_index),
        env.table_types[table_index].index_type == I64,
        env.layout.type_id(type_index),
    )
    ctx.release(reg, owned)
    prepare_args(ctx, ft.params)
    if tail:
        masm.tail_call_ref()
    else:
        first = len(masm.return_offsets)
        masm.call_ref()
        ctx.record_safepoint(first)
        push_results(ctx, ft.results)


def emit_call_ref(ctx: CodeGenContext, env: ModuleEnv, type_index: int, tail: bool) -> None:
    """``call_ref`` / ``return_call_ref``: the funcref (top of the stack) checked for null, then called.

    Validation has checked its type, so no signature check: a funcref's record is called as
    ``call_indirect`` calls the one it found in a table."""
    masm = ctx.masm
    ft = env.types[type_index]
    reg, owned = ctx.pop_reg()
    masm.funcref_for_call(reg)  # before the arguments take the argument registers
    ctx.release(reg, owned)
    prepare_args(ctx, ft.params)
    if tail:
        masm.tail_call_ref()
    else:
        first = len(masm.return_offsets)
        masm.call_ref()
        ctx.record_safepoint(first)
        push_results(ctx, ft.results)


def emit_builtin_call(
    ctx: CodeGenContext,
    builtin_id: int,
    args: list[Operand],
    arg_types: tuple[int, ...],
    result_type: int | None,
    extra: tuple[int, ...] = (),
) -> None:
    """Call a runtime builtin through ``ecall``: ``args`` (popped already), then ``extra`` static operands
    (memory, table, segment indices) as i64 constants; push its result, if any."""
    for v in args:
        ctx.stack.append(v)
    ft = FuncType(tuple(arg_types) + tuple(I64 for _ in extra), (result_type,) if result_type else ())
    for value in extra:
        ctx.push_const(I64, value)
    prepare_args(ctx, ft.params)
    first = len(ctx.masm.return_offsets)
    ctx.masm.call_builtin(builtin_id)
    if builtin_id in ALLOCATING or builtin_id in BLOCKING:
        ctx.record_safepoint(first)
    push_results(ctx, ft.results)
