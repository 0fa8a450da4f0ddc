"""The per-opcode visitor: one handler per WebAssembly instruction (or family), and the dispatch table.

:class:`FuncCodegen` compiles one function: the pre-pass, the locals' homes
and the prologue, then one walk over the body, calling ``DISPATCH[opcode]``
for each reachable instruction.  ``DISPATCH`` maps every opcode the compiler
implements to ``(handler, static operands)``; a handler runs as
``handler(codegen, immediate, *static)``.
"""

from __future__ import annotations

from collections.abc import Callable

from ...wasm import gcops
from ...wasm import opcodes as op
from ...wasm.module import FuncBody
from ...wasm.types import EXNREF, F32, F64, FUNCREF, I32, I64, V128
from ..abi import RegLoc
from ..builtins import Builtin, BulkFuel
from ..errors import CompileError
from ..frames import NO_FRAME
from ..intrinsics import FAR, FAR_ACCESS, PAGE_SIZE, Intrinsic
from ..masm import (
    Conversion,
    FloatBinOp,
    FloatCmp,
    FloatUnOp,
    IntBinOp,
    IntCmp,
    IntUnOp,
    LoadKind,
    MacroAssembler,
    StoreKind,
    WideOp,
)
from ..regs import FLOAT, INT, Reg, RegClass
from ..traps import TrapCode
from . import call, gc, simd
from .atomics import ATOMIC_DISPATCH
from .context import CONST, LOCAL, REG, SLOT, CodeGenContext, Comparison, Operand, ValKind, reg_class
from .control import ControlFrame, ControlStack, CtrlKind, HandlerRegion
from .env import ModuleEnv
from .fuel import FuelCounter, loop_writes
from .prepass import call_crossing, prepass


class FuncCodegen:
    """Compiles function ``func_index`` (its body ``func``) of ``env``'s module into ``masm``."""

    def __init__(self, env: ModuleEnv, func_index: int, func: FuncBody, masm: MacroAssembler) -> None:
        self.env = env
        self.func = func
        self.masm = masm
        self.type = env.func_types[func_index]  # v128 as two halves (compiler.abi.lower_types)
        self.func_index = func_index

    def compile(self) -> MacroAssembler:
        env, masm, func = self.env, self.masm, self.func
        local_types = list(env.wasm_func_types[self.func_index].params)
        for count, ty in func.locals:
            local_types.extend([ty] * count)
        body = func.body
        lowered = V128 in local_types
        if lowered:
            local_types, body = _lower_locals(local_types, body)
        info = prepass(body, len(local_types), env.block_type)
        if info.has_shuffle and not env.metering:
            body = simd.fuse(body)  # shuffles with the extensions and byte shifts after them as one
            info = prepass(body, len(local_types), env.block_type)  # (what was folded no longer counts)
        if lowered:  # instructions name a v128 local's low half: its high half is used as much
            i = 0
            while i < len(local_types):
                if local_types[i] == V128:
                    info.weights[i + 1] = info.weights[i]
                    i += 1
                i += 1
        self.ctx = ctx = CodeGenContext(masm, local_types)
        # Which locals a call may separate from a read (the others may live in caller-saved registers);
        # not with a try_table (its landing pads) or v128 locals (lowered to two: the walk sees one).
        crossing = None
        if info.has_calls and not info.has_try and not lowered:
            crossing = call_crossing(body, len(local_types), info.call_loops)
        ctx.home_locals(info.weights, info.aux_slots, info.has_calls, crossing)
        masm.mark(func.body_offset)
        masm.prologue(self.early_return(body, local_types))
        # Parameters arrive in argument registers (or the ABI area); declared locals start at zero.
        call.receive_params(ctx, self.type.params)
        ctx.zero_locals(len(self.type.params))
        body_start = masm.offset()
        self.control = control = ControlStack(ctx, tuple(self.type.results))
        fuel = self.fuel = FuelCounter(ctx, len(self.type.params)) if env.metering else None
        if fuel is not None:
            self.loop_writes = loop_writes(body)
            fuel.checkpoint()  # function entry
        self.handlers: list[HandlerRegion] = []  # try_tables with catch clauses, in order of their start
        self.catch_targets: list[tuple[ControlFrame, list[ControlFrame]]] = []  # metered: open try_tables
        self.direct_local: int | None = None  # dst_reg put the value on top of the stack in this local's home
        # The hot loop: one iteration per instruction, so the lookups are hoisted out of it.  Without
        # metering, local.get and the constants (a third of a typical body) only push an operand: they are
        # done here, unmarked (they generate no code: the next instruction's mark takes their place).
        frames, mark, dispatch, stack = control.frames, masm.mark, DISPATCH, ctx.stack
        LOCAL_SET, LOCAL_TEE = op.LOCAL_SET, op.LOCAL_TEE  # noqa: N806  (constants, looked up once)
        pushes_only = {} if fuel is not None else _PUSH_ONLY
        nexts = body[1:]
        nexts.append(_END_OF_BODY)
        for (code, imm, offset), nxt in zip(body, nexts):
            if not frames[-1].reachable:
                self.next = nxt
                self.skip(code, imm)
                continue
            push = pushes_only.get(code)
            if push is not None:
                if push is LOCAL:
                    ty = local_types[imm]
                    if ty != V128:
                        stack.append(Operand(LOCAL, ty, imm))
                        continue
                else:
                    stack.append(Operand(CONST, push, imm))  # type: ignore[arg-type]  # (a type: not LOCAL)
                    continue
            if (code == LOCAL_SET or code == LOCAL_TEE) and self.direct_local is not None and fuel is None:
                # The value is in the local's register already (dst_reg): no code (no mark either: the next
                # instruction starts at the same code offset, and its mark would replace this one's).
                ty = local_types[imm]
                if ty != V128:
                    self.set_local(imm)
                    if code == LOCAL_TEE:
                        stack.append(Operand(LOCAL, ty, imm))
                    continue
            self.next = nxt
            mark(offset)
            if fuel is not None:
                self.offset = offset
                fuel.before(code)
            try:
                handler, static = dispatch[code]
            except KeyError:
                raise CompileError(f"instruction {op.opcode_name(code)} is not supported by the compiler yet") from None
            # (positional arguments, not ``*static``: a call with a star builds a tuple and takes the slow path)
            if not static:
                handler(self, imm)
            elif len(static) == 1:
                handler(self, imm, static[0])
            elif len(static) == 2:
                handler(self, imm, static[0], static[1])
            else:
                handler(self, imm, *static)
        # (v128 locals are renumbered when lowered: their homes would not be the wasm locals')
        self.frame = NO_FRAME if lowered else masm.frame_info([(h.reg, h.slot) for h in ctx.homes], body_start)
        return masm

    def early_return(self, body: list, local_types: list[int]) -> tuple[IntCmp, Reg, Reg | None] | None:
        """The condition of a guard that opens a function without results on its parameters alone
        (``local.get p [local.get q] cmp br_if 0``, ``local.get p eqz br_if 0``, ``local.get p br_if 0``,
        maybe inside a ``block`` that ends where the function does), on the parameters' argument
        registers: the prologue returns at once when it holds, before it saves any register (a
        recursion's base case, as a C compiler's shrink-wrapping does).  The guard is compiled in the
        body as well, where it no longer branches.  Not with metering (the function-entry checkpoint
        comes first)."""
        if self.env.metering or self.type.results or len(body) < 4:
            return None
        exits = {0}  # the labels a br_if at the start may take to return
        if body[0][0] == op.BLOCK_OP and self.env.block_type(body[0][1]) == ((), ()):
            depth, end = 0, -1
            for index, (code, _, _) in enumerate(body):
                if code in (op.BLOCK_OP, op.LOOP, op.IF):
                    depth += 1
                elif code == op.END:
                    depth -= 1
                    if depth == 0:
                        end = index
                        break
            if end != len(body) - 2:  # the block's end is not the function's last instruction but one
                return None
            body, exits = body[1:], {0, 1}
        params = self.type.params
        locs = self.masm.abi_locations(params)

        def param_reg(instr) -> Reg | None:
            code, imm, _ = instr
            if code != op.LOCAL_GET or imm >= len(params) or local_types[imm] not in (I32, I64):
                return None
            loc = locs[imm]
            return loc.reg if isinstance(loc, RegLoc) else None

        def br_if_0(instr) -> bool:
            return instr[0] == op.BR_IF and instr[1] in exits

        a = param_reg(body[0])
        if a is None:
            return None
        if br_if_0(body[1]):
            return IntCmp.NE, a, None
        if body[1][0] in _EQZ and br_if_0(body[2]):
            return IntCmp.EQ, a, None
        b = param_reg(body[1])
        if b is not None and br_if_0(body[3]):
            handler, static = DISPATCH.get(body[2][0], (None, ()))
            if handler is FuncCodegen.visit_int_compare:
                return static[0], a, b
        return None

    def skip(self, code: int, imm) -> None:
        """An instruction in unreachable code: only block nesting matters."""
        if code in (op.BLOCK_OP, op.LOOP, op.IF):
            self.control.skip_block(*self.env.block_type(imm))
        elif code == op.TRY_TABLE_OP:
            self.control.skip_block(*self.env.block_type(imm[0]))
        elif code == op.ELSE:
            if self.fuel is not None and not self.control.frames[-1].dead:
                self.fuel.consts.else_(self.control.frames[-1], False)
            self.control.skip_else()
        elif code == op.END:
            if not self.control.frames[-1].dead:
                self.join(self.control.frames[-1])
            if self.catch_targets and self.catch_targets[-1][0] is self.control.frames[-1]:
                self.catch_targets.pop()
            self.control.skip_end()

    # -- metering: where constants flow (hwsim.compiler.codegen.fuel.ConstLocals) ---------------------

    def carry(self, frame: ControlFrame) -> None:
        """A branch to ``frame``: its end sees the locals' constants as they are here."""
        if self.fuel is not None and frame.kind is not CtrlKind.FUNC:
            self.fuel.consts.branch(frame, frame.kind is CtrlKind.LOOP)

    def join(self, frame: ControlFrame) -> None:
        """``frame`` ends: the constants that reach its end on every path."""
        if self.fuel is not None and frame.kind is not CtrlKind.FUNC:
            self.fuel.consts.end(frame, frame.reachable, frame.kind is CtrlKind.LOOP, frame.kind is CtrlKind.IF)

    def bulk_fuel(self, size: Operand) -> tuple[int, ...]:
        """The static operand metered code gives a bulk operation of ``size`` units (none unmetered)."""
        return () if self.fuel is None else (self.fuel.bulk(size),)

    # -- control ------------------------------------------------------------------------------------

    def visit_nop(self, imm) -> None:
        pass

    def visit_unreachable(self, imm) -> None:
        self.masm.trap(TrapCode.UNREACHABLE)
        self.control.set_unreachable()

    def visit_block(self, imm) -> None:
        params, results = self.env.block_type(imm)
        self.control.block(params, results)

    def visit_loop(self, imm) -> None:
        params, results = self.env.block_type(imm)
        self.control.loop(params, results)
        if self.fuel is not None:
            self.fuel.checkpoint()  # the loop header: every iteration passes here
            self.fuel.consts.enter_loop(self.control.frames[-1], self.loop_writes[self.offset])

    def visit_try_table(self, imm) -> None:
        """``try_table``: a block with landing pads (control.ControlStack.try_table); its region is recorded
        for the runtime's unwinder (``self.handlers``)."""
        bt, clauses = imm
        env = self.env
        tag_types = env.module.get_tag_type_indices()
        lowered = []
        for kind, tag, depth in clauses:
            carried = tuple(env.types[tag_types[tag]].params) if tag is not None else ()
            if kind == op.CATCH_REF or kind == op.CATCH_ALL_REF:
                carried += (EXNREF,)
            lowered.append((kind, -1 if tag is None else tag, depth, carried))
        targets = [self.control.frames[-1 - depth] for _, _, depth in clauses]
        region = self.control.try_table(*env.block_type(bt), lowered)
        if region is not None:
            self.handlers.append(region)
        if self.fuel is not None:  # each call or throw inside may branch to the clauses' labels
            self.catch_targets.append((self.control.frames[-1], targets))

    def may_throw(self) -> None:
        """Before a call or throw: in metered code, the catch labels of the enclosing try_tables see the
        locals' constants as they are here (an exception edge, as Cranelift's)."""
        for _, targets in self.catch_targets:
            for frame in targets:
                self.carry(frame)

    def visit_throw(self, imm) -> None:
        """``throw``: the builtin gets the tag index, then the payload (as a call's arguments); it unwinds."""
        self.may_throw()
        ctx = self.ctx
        params = tuple(self.env.types[self.env.module.get_tag_type_indices()[imm]].params)
        ctx.stack.insert(len(ctx.stack) - len(params), Operand(CONST, I64, imm))
        call.prepare_args(ctx, (I64, *params))
        self.masm.call_builtin(Builtin.throw)
        self.control.set_unreachable()

    def visit_throw_ref(self, imm) -> None:
        self.may_throw()
        call.prepare_args(self.ctx, (EXNREF,))
        self.masm.call_builtin(Builtin.throw_ref)
        self.control.set_unreachable()

    def visit_if(self, imm) -> None:
        params, results = self.env.block_type(imm)
        self.control.if_(params, results)
        if self.fuel is not None:
            self.fuel.consts.enter_if(self.control.frames[-1])

    def visit_else(self, imm) -> None:
        if self.fuel is not None:
            self.fuel.consts.else_(self.control.frames[-1], self.control.reachable)
        self.control.else_()

    def visit_end(self, imm) -> None:
        if self.catch_targets and self.catch_targets[-1][0] is self.control.frames[-1]:
            self.catch_targets.pop()
        if self.fuel is not None:
            self.join(self.control.frames[-1])
        self.control.end()

    def visit_br(self, imm) -> None:
        if self.fuel is not None:
            self.carry(self.control.frames[-1 - imm])
        self.control.br(imm)

    def visit_br_if(self, imm) -> None:
        if self.fuel is not None:
            self.carry(self.control.frames[-1 - imm])
        self.control.br_if(imm)

    def visit_br_table(self, imm) -> None:
        depths, default = imm
        for depth in (*depths, default):
            self.carry(self.control.frames[-1 - depth])
        self.control.br_table(depths, default)

    def visit_return(self, imm) -> None:
        self.control.return_()

    # -- calls -----------------------------------------------------------------------------------------

    def visit_call(self, imm, tail: bool) -> None:
        intrinsic = self.env.intrinsics.get(imm)
        if intrinsic is not None:
            self.call_intrinsic(intrinsic)
            if tail:
                self.control.return_()
            return
        if self.catch_targets and not tail:
            self.may_throw()
        call.emit_call(self.ctx, self.env, imm, tail)
        if tail:
            self.control.set_unreachable()

    def visit_call_indirect(self, imm, tail: bool) -> None:
        type_index, table_index = imm
        if self.catch_targets and not tail:
            self.may_throw()
        if self.env.module.func_subtyping:  # a callee of a subtype is accepted: the runtime checks
            self.builtin(Builtin.call_indirect_sub, [self.ctx.pop()], (I64,), FUNCREF, (table_index, type_index))
            call.emit_call_ref(self.ctx, self.env, type_index, tail)
        else:
            call.emit_call_indirect(self.ctx, self.env, type_index, table_index, tail)
        if tail:
            self.control.set_unreachable()

    def visit_call_ref(self, imm, tail: bool) -> None:
        if self.catch_targets and not tail:
            self.may_throw()
        call.emit_call_ref(self.ctx, self.env, imm, tail)
        if tail:
            self.control.set_unreachable()

    # -- typed function references: null checks and branches ---------------------------------------------

    def own_top_reg(self) -> tuple[Operand, Reg]:
        """Pop the top value into a register of its own (a local's home is copied): (operand, register)."""
        ctx = self.ctx
        v = ctx.pop()
        reg, owned = ctx.to_reg(v)
        if not owned:
            copy = ctx.alloc(INT)
            self.masm.mov(copy, reg)
            reg = copy
        return v, reg

    def visit_ref_as_non_null(self, imm) -> None:
        v, reg = self.own_top_reg()
        self.masm.trap_if_null(reg, TrapCode.NULL_REFERENCE)
        self.ctx.push_reg(v.ty, reg)

    def visit_br_on_null(self, imm) -> None:
        """``br_on_null l``: branch (the reference dropped) when null, else go on with it."""
        v, reg = self.own_top_reg()
        self.carry(self.control.frames[-1 - imm])
        self.ctx.push_comparison(Comparison(IntCmp.EQ, reg, False, None, False))
        self.control.br_if(imm)
        self.ctx.push_reg(v.ty, reg)

    def visit_br_on_non_null(self, imm) -> None:
        """``br_on_non_null l``: branch with the reference when it is not null, else drop it."""
        ctx = self.ctx
        v, reg = self.own_top_reg()
        ctx.push_reg(v.ty, reg)
        self.carry(self.control.frames[-1 - imm])
        ctx.push_comparison(Comparison(IntCmp.NE, reg, False, None, False))
        self.control.br_if(imm)
        dropped = ctx.pop()
        if dropped.kind is REG:
            ctx.free_reg(dropped.x)

    def call_intrinsic(self, intrinsic: Intrinsic) -> None:
        """A call of an intrinsic import, lowered as the instruction it stands for (on memory 0)."""
        if intrinsic.module == FAR:
            if intrinsic.name in FAR_ACCESS:
                self.far_access(*FAR_ACCESS[intrinsic.name])
            else:
                ft = intrinsic.signature(I32)
                assert ft is not None  # intrinsics_of accepted only names that have a signature
                args = [self.ctx.pop() for _ in ft.params][::-1]
                self.builtin(
                    _FAR_BUILTINS[intrinsic.name], args, tuple(ft.params), ft.results[0] if ft.results else None, ()
                )
            return
        if intrinsic.name == "page_size":
            self.ctx.push_const(I32, PAGE_SIZE)
            return
        memory_op = _MEMORY_INTRINSICS.get(intrinsic.name)
        if memory_op is not None:
            memory_op(self, 0)
            return
        # Memory handles: builtins on memory 0.
        at = self.env.memory_types[0].index_type if self.env.memory_types else I32
        ft = intrinsic.signature(at)
        assert ft is not None  # intrinsics_of accepted only names that have a signature
        args = [self.ctx.pop() for _ in ft.params][::-1]
        self.builtin(
            _HANDLE_BUILTINS[intrinsic.name], args, tuple(ft.params), ft.results[0] if ft.results else None, ()
        )

    def far_access(self, size: int, write: bool) -> None:
        ctx = self.ctx
        word = self.env.layout.segments
        if write:
            value = ctx.pop()
            far = ctx.pop()
            vreg, vown = ctx.to_reg(value)
            freg, fown = ctx.to_reg(far)
            self.masm.far_access(freg, size, True, vreg, word)
            ctx.release(vreg, vown)
            ctx.release(freg, fown)
            return
        freg, fown = ctx.pop_reg()
        dst = ctx.alloc(INT)
        self.masm.far_access(freg, size, False, dst, word)
        ctx.release(freg, fown)
        ctx.push_reg(I64 if size == 8 else I32, dst)

    def builtin(
        self,
        builtin: Builtin,
        args: list[Operand],
        arg_types: tuple[int, ...],
        result_type: int | None,
        extra: tuple[int, ...] = (),
    ) -> None:
        call.emit_builtin_call(self.ctx, builtin, args, arg_types, result_type, extra)

    # -- parametric -----------------------------------------------------------------------------------

    def visit_drop(self, imm) -> None:
        v = self.ctx.pop()
        if v.kind is REG:
            self.ctx.free_reg(v.x)
        if v.ty == V128:
            simd.drop(self, v)

    def visit_select(self, imm) -> None:
        ctx = self.ctx
        if ctx.stack[-2].ty == V128:
            simd.select(self)
            return
        cond, cown = ctx.pop_reg()
        b = ctx.pop()
        a = ctx.pop()
        ra, aown = ctx.to_reg(a)
        rb, bown = ctx.to_reg(b)
        ctx.release(cond, cown)
        ctx.release(ra, aown)
        ctx.release(rb, bown)
        dst = ctx.alloc(ra.cls)
        self.masm.select(dst, ra, rb, cond)
        ctx.push_reg(a.ty, dst)

    # -- locals and globals ---------------------------------------------------------------------------

    def visit_local_get(self, imm) -> None:
        if self.fuel is not None:
            self.fuel.consts.use(imm)
        self.ctx.push_local(imm)
        if self.ctx.local_types[imm] == V128:  # the low half's index (_lower_locals); the high half next
            self.ctx.push_local(imm + 1)

    def visit_local_set(self, imm) -> None:
        if self.ctx.local_types[imm] == V128 and self.direct_local is None:
            self.set_local(imm + 1)
        self.set_local(imm)

    def set_local(self, imm) -> None:
        ctx, masm = self.ctx, self.masm
        if self.fuel is not None:
            self.fuel.consts.assign(imm, ctx.stack[-1])
        if self.direct_local is not None:  # the value is already in the local's register (dst_reg)
            assert self.direct_local == imm and ctx.stack[-1].x == ctx.homes[imm].reg
            self.direct_local = None
            ctx.pop()
            return
        stack = ctx.stack
        for v in stack:  # (the check materialize_local makes, without the call when no read is pending)
            if v.kind is LOCAL and v.x == imm:
                ctx.materialize_local(imm)
                break
        v = stack.pop()
        home = ctx.homes[imm]
        if v.kind is LOCAL and v.x == imm:
            return
        source_slot = ctx.homes[v.x].slot if v.kind is LOCAL else None  # a local living in a frame slot
        if home.reg is not None:
            if v.kind is CONST:
                masm.load_const(home.reg, v.ty, v.x)
            elif v.kind is SLOT:
                masm.load_slot(home.reg, masm.slot_offset(v.x), v.ty)
            elif source_slot is not None:
                masm.load_slot(home.reg, source_slot, v.ty)
            else:
                reg, owned = ctx.to_reg(v)
                masm.mov(home.reg, reg)
                ctx.release(reg, owned)
        else:
            if v.kind is CONST:
                masm.store_const_to_slot(home.slot, v.ty, v.x)
            elif v.kind is SLOT:
                masm.copy_slot(home.slot, masm.slot_offset(v.x), v.ty)
            elif source_slot is not None:
                masm.copy_slot(home.slot, source_slot, v.ty)
            else:
                reg, owned = ctx.to_reg(v)
                masm.store_slot(reg, home.slot, v.ty)
                ctx.release(reg, owned)

    def visit_local_tee(self, imm) -> None:
        self.visit_local_set(imm)
        self.ctx.push_local(imm)
        if self.ctx.local_types[imm] == V128:
            self.ctx.push_local(imm + 1)

    def visit_global_get(self, imm) -> None:
        ty = self.env.global_types[imm].valtype
        if ty == V128:
            simd.global_get(self, imm)
            return
        if self.fuel is not None:
            value = self.env.constant_global(imm)
            if value is not None:  # as Cranelift reads it when metering: the bulk-operation rule sees it
                self.ctx.push_const(ty, value)
                return
        dst = self.dst_reg(reg_class(ty))
        self.masm.global_get(dst, self.env.layout.global_(imm), ty)
        self.ctx.push_reg(ty, dst)

    def visit_global_set(self, imm) -> None:
        ty = self.env.global_types[imm].valtype
        if ty == V128:
            simd.global_set(self, imm)
            return
        reg, owned = self.ctx.pop_reg()
        self.masm.global_set(reg, self.env.layout.global_(imm), ty)
        self.ctx.release(reg, owned)

    # -- constants and numeric ------------------------------------------------------------------------

    def visit_const(self, imm, ty: int) -> None:
        self.ctx.push_const(ty, imm)

    def visit_int_binary(self, imm, kind: IntBinOp, wide: bool) -> None:
        ctx = self.ctx
        stack = ctx.stack
        b = stack.pop()
        a = stack.pop()
        # (the common operands, a register value or a local homed in a register, without a call)
        ra = a.x if a.kind is REG else ctx.home_regs[a.x] if a.kind is LOCAL else None
        if ra is None:
            ra, aown = ctx.to_reg(a)
        else:
            aown = a.kind is REG
        bkind = b.kind
        if bkind is CONST and self.masm.int_imm_ok(kind, wide, b.x):
            rb, bown = b.x, False
        elif bkind is REG:
            rb, bown = b.x, True
        elif bkind is LOCAL and ctx.home_regs[b.x] is not None:
            rb, bown = ctx.home_regs[b.x], False
        else:
            rb, bown = ctx.to_reg(b)
        free = ctx.free[INT]
        if aown:
            free.append(ra)
        if bown:
            free.append(rb)
        dst = self.dst_reg(INT)
        self.masm.int_binary(kind, wide, dst, ra, rb)
        stack.append(Operand(REG, I64 if wide else I32, dst))

    def dst_reg(self, cls: RegClass) -> Reg:
        """The register an instruction's result goes to: the home of the local the next instruction sets
        (``local.set``/``local.tee`` to a register home, no read of that local pending on the stack), which
        then has nothing to move; else a free register."""
        ctx, nxt = self.ctx, self.next
        if nxt[0] in _SETS_LOCAL:
            index = nxt[1]
            home = ctx.homes[index].reg
            if home is not None and home.cls == cls:
                for v in ctx.stack:
                    if v.kind is LOCAL and v.x == index:
                        return ctx.alloc(cls)
                self.direct_local = index
                return home
        return ctx.alloc(cls)

    def branch_follows(self) -> bool:
        """Does the next instruction branch on the value this one pushes (``br_if``, ``if``)?  Then a
        comparison stays pending and becomes one compare-and-branch."""
        return self.next[0] in _BRANCHES_ON_VALUE

    def visit_int_eqz(self, imm) -> None:  # also ref.is_null
        ctx = self.ctx
        if self.branch_follows():
            ra, own = ctx.pop_reg()
            ctx.push_comparison(Comparison(_EQ, ra, own, None, False))
            return
        ra = ctx.pop_operand()
        dst = self.dst_reg(INT)
        self.masm.int_eqz(dst, ra)
        ctx.push_reg(I32, dst)

    def visit_int_compare(self, imm, cond: IntCmp) -> None:
        ctx = self.ctx
        if self.branch_follows():
            b = ctx.pop()
            ra, aown = ctx.pop_reg()
            if b.kind is CONST and b.x == 0 and (cond is _EQ or cond is _NE):
                ctx.push_comparison(Comparison(cond, ra, aown, None, False))
            else:
                rb, bown = ctx.to_reg(b)
                ctx.push_comparison(Comparison(cond, ra, aown, rb, bown))
            return
        ra, rb = ctx.pop_operands()
        dst = self.dst_reg(INT)
        self.masm.int_compare(cond, dst, ra, rb)
        ctx.push_reg(I32, dst)

    def visit_int_unary(self, imm, kind: IntUnOp, wide: bool) -> None:
        ra = self.ctx.pop_operand()
        dst = self.dst_reg(INT)
        self.masm.int_unary(kind, wide, dst, ra)
        self.ctx.push_reg(I64 if wide else I32, dst)

    def visit_int_wide(self, imm, kind: WideOp, n: int) -> None:
        """Wide arithmetic: ``n`` i64 operands in, two i64 results (low half, then high) out."""
        ctx = self.ctx
        values = ctx.top(n)
        del ctx.stack[len(ctx.stack) - n :]
        held = [ctx.to_reg(v) for v in values]
        for reg, owned in held:
            ctx.release(reg, owned)
        lo = ctx.alloc(INT)
        hi = ctx.alloc(INT)
        self.masm.int_wide(kind, lo, hi, tuple(reg for reg, _ in held))
        ctx.push_reg(I64, lo)
        ctx.push_reg(I64, hi)

    def visit_float_binary(self, imm, kind: FloatBinOp, double: bool) -> None:
        ra, rb = self.ctx.pop_operands()
        dst = self.dst_reg(FLOAT)
        self.masm.float_binary(kind, double, dst, ra, rb)
        self.ctx.push_reg(F64 if double else F32, dst)

    def visit_float_unary(self, imm, kind: FloatUnOp, double: bool) -> None:
        ra = self.ctx.pop_operand()
        dst = self.dst_reg(FLOAT)
        self.masm.float_unary(kind, double, dst, ra)
        self.ctx.push_reg(F64 if double else F32, dst)

    def visit_float_compare(self, imm, cond: FloatCmp, double: bool) -> None:
        ra, rb = self.ctx.pop_operands()
        dst = self.dst_reg(INT)
        self.masm.float_compare(cond, double, dst, ra, rb)
        self.ctx.push_reg(I32, dst)

    def visit_convert(self, imm, conv: Conversion, result: int) -> None:
        ra = self.ctx.pop_operand()
        dst = self.dst_reg(reg_class(result))
        self.masm.convert(conv, dst, ra)
        self.ctx.push_reg(result, dst)

    # -- memory ---------------------------------------------------------------------------------------

    def visit_load(self, imm, kind: LoadKind, ty: int, size: int) -> None:
        ctx = self.ctx
        mem, _align, offset = imm
        reg, owned = ctx.pop_reg()
        ctx.release(reg, owned)
        dst = self.dst_reg(reg_class(ty))
        base, disp = self.masm.heap_address(
            mem, self.env.layout.memory(mem), self.env.memory_types[mem], reg, offset, size
        )
        self.masm.load(kind, dst, base, disp)
        ctx.push_reg(ty, dst)

    def visit_store(self, imm, kind: StoreKind, size: int) -> None:
        ctx = self.ctx
        mem, _align, offset = imm
        value = ctx.pop()
        addr = ctx.pop()
        vreg, vown = ctx.to_reg(value)
        areg, aown = ctx.to_reg(addr)
        base, disp = self.masm.heap_address(
            mem, self.env.layout.memory(mem), self.env.memory_types[mem], areg, offset, size
        )
        self.masm.store(kind, vreg, base, disp)
        ctx.release(vreg, vown)
        ctx.release(areg, aown)

    def visit_memory_size(self, imm) -> None:
        dst = self.ctx.alloc(INT)
        self.masm.memory_size(dst, self.env.layout.memory(imm))
        self.ctx.push_reg(self.index_type(imm), dst)

    def index_type(self, mem: int) -> int:
        return self.env.memory_types[mem].index_type

    def visit_memory_grow(self, imm) -> None:
        t = self.index_type(imm)
        delta = self.ctx.pop()
        self.builtin(Builtin.memory_grow, [delta], (t,), t, (imm, *self.bulk_fuel(delta)))

    def bulk_operands(self, values: list[Operand]) -> list[Reg]:
        """``values`` in registers this operation owns (it changes them); freed by :meth:`bulk_done`."""
        return [self.ctx.to_owned_reg(v) for v in values]

    def bulk_done(self, regs: list[Reg], fuel: tuple[int, ...]) -> None:
        """After an operation compiled in place: metered code charges a size the compiler could not count
        (on either path: the host path was told the compiled code charges it), then frees the operands."""
        if fuel and fuel[0] == BulkFuel.RUNTIME:
            self.masm.fuel_consume_reg(regs[-1])
            self.masm.fuel_checkpoint(0, Builtin.checkpoint)
        for reg in regs:
            self.ctx.free_reg(reg)

    @staticmethod
    def host_static(fuel: tuple[int, ...]) -> tuple[int, ...]:
        """The fuel operand of an in-place operation's host path: the compiled code counts the size."""
        return (BulkFuel.COMPILED,) if fuel else ()

    def visit_memory_fill(self, imm) -> None:
        t = self.index_type(imm)
        n, val, dst = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        fuel = self.bulk_fuel(n)
        rd, rv, rn = regs = self.bulk_operands([dst, val, n])
        static = (imm, *self.host_static(fuel))
        self.masm.memory_fill(rd, rv, rn, self.env.layout.memory(imm), t == I64, Builtin.memory_fill, static)
        self.bulk_done(regs, fuel)

    def visit_memory_copy(self, imm) -> None:
        dst_mem, src_mem = imm
        td, ts = self.index_type(dst_mem), self.index_type(src_mem)
        n, src, dst = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        fuel = self.bulk_fuel(n)
        rd, rs, rn = regs = self.bulk_operands([dst, src, n])
        words = (self.env.layout.memory(dst_mem), self.env.layout.memory(src_mem))
        static = (dst_mem, src_mem, *self.host_static(fuel))
        self.masm.memory_copy(rd, rs, rn, words, (td == I64, ts == I64), Builtin.memory_copy, static)
        self.bulk_done(regs, fuel)

    def visit_memory_init(self, imm) -> None:
        data, mem = imm
        n, src, dst = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        extra = (mem, data, *self.bulk_fuel(n))
        self.builtin(Builtin.memory_init, [dst, src, n], (self.index_type(mem), I32, I32), None, extra)

    def visit_data_drop(self, imm) -> None:
        self.builtin(Builtin.data_drop, [], (), None, (imm,))

    def visit_memory_discard(self, imm) -> None:
        t = self.index_type(imm)
        n, addr = self.ctx.pop(), self.ctx.pop()
        self.builtin(Builtin.memory_discard, [addr, n], (t, t), None, (imm,))

    def visit_memory_map(self, imm) -> None:
        t = self.index_type(imm)
        prot, n, addr = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        self.builtin(Builtin.memory_map, [addr, n, prot], (t, t, I32), t, (imm,))

    def visit_memory_unmap(self, imm) -> None:
        t = self.index_type(imm)
        n, addr = self.ctx.pop(), self.ctx.pop()
        self.builtin(Builtin.memory_unmap, [addr, n], (t, t), None, (imm,))

    def visit_memory_protect(self, imm) -> None:
        t = self.index_type(imm)
        prot, n, addr = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        self.builtin(Builtin.memory_protect, [addr, n, prot], (t, t, I32), None, (imm,))

    # -- tables and references ------------------------------------------------------------------------

    def table_index_type(self, table: int) -> int:
        return self.env.table_types[table].index_type

    def table_elem_type(self, table: int) -> int:
        return self.env.table_types[table].elem_type

    def visit_table_get(self, imm) -> None:
        self.builtin(
            Builtin.table_get, [self.ctx.pop()], (self.table_index_type(imm),), self.table_elem_type(imm), (imm,)
        )

    def visit_table_set(self, imm) -> None:
        value, index = self.ctx.pop(), self.ctx.pop()
        self.builtin(
            Builtin.table_set, [index, value], (self.table_index_type(imm), self.table_elem_type(imm)), None, (imm,)
        )

    def visit_table_size(self, imm) -> None:
        self.builtin(Builtin.table_size, [], (), self.table_index_type(imm), (imm,))

    def visit_table_grow(self, imm) -> None:
        n, init = self.ctx.pop(), self.ctx.pop()
        t = self.table_index_type(imm)
        self.builtin(Builtin.table_grow, [init, n], (self.table_elem_type(imm), t), t, (imm, *self.bulk_fuel(n)))

    def visit_table_fill(self, imm) -> None:
        n, value, index = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        t = self.table_index_type(imm)
        extra = (imm, *self.bulk_fuel(n))
        self.builtin(Builtin.table_fill, [index, value, n], (t, self.table_elem_type(imm), t), None, extra)

    def visit_table_copy(self, imm) -> None:
        dst_t, src_t = imm
        td, ts = self.table_index_type(dst_t), self.table_index_type(src_t)
        n, src, dst = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        tn = I64 if (td == I64 and ts == I64) else I32
        self.builtin(Builtin.table_copy, [dst, src, n], (td, ts, tn), None, (dst_t, src_t, *self.bulk_fuel(n)))

    def visit_table_init(self, imm) -> None:
        elem, table = imm
        n, src, dst = self.ctx.pop(), self.ctx.pop(), self.ctx.pop()
        extra = (table, elem, *self.bulk_fuel(n))
        self.builtin(Builtin.table_init, [dst, src, n], (self.table_index_type(table), I32, I32), None, extra)

    def visit_elem_drop(self, imm) -> None:
        self.builtin(Builtin.elem_drop, [], (), None, (imm,))

    def visit_ref_null(self, imm) -> None:
        self.ctx.push_const(imm, 0)  # funcref, externref or exnref: null is 0

    def visit_ref_func(self, imm) -> None:
        dst = self.ctx.alloc(INT)
        self.masm.load_vmctx(dst, self.env.layout.func(imm))
        self.ctx.push_reg(FUNCREF, dst)


V = FuncCodegen


def _lower_locals(local_types: list[int], body: list) -> tuple[list[int], list]:
    """Each v128 local as two (its low half's index is the one instructions name), and the body with
    local indices renumbered to match."""
    index: list[int] = []
    lowered: list[int] = []
    for ty in local_types:
        index.append(len(lowered))
        lowered.extend((V128, V128) if ty == V128 else (ty,))
    local_ops = (op.LOCAL_GET, op.LOCAL_SET, op.LOCAL_TEE)
    return lowered, [(c, index[imm], off) if c in local_ops else (c, imm, off) for c, imm, off in body]


# Intrinsic imports lowered as builtins or as the memory-control instructions they stand for (on memory 0).
_FAR_BUILTINS = {"grant": Builtin.far_grant, "revoke": Builtin.far_revoke}
_HANDLE_BUILTINS = {
    "handle_new": Builtin.handle_new,
    "handle_map": Builtin.handle_map,
    "handle_move": Builtin.handle_move,
    "handle_unmap": Builtin.handle_unmap,
    "handle_pages": Builtin.handle_pages,
}
_MEMORY_INTRINSICS: dict[str, Callable] = {
    "discard": V.visit_memory_discard,
    "map": V.visit_memory_map,
    "unmap": V.visit_memory_unmap,
    "protect": V.visit_memory_protect,
}

_EQ, _NE = IntCmp.EQ, IntCmp.NE  # (looked up once: an enum member read off its class is slow)
_END_OF_BODY = (-1, None, -1)  # FuncCodegen.next after the last instruction: no opcode is -1
_SETS_LOCAL = frozenset({op.LOCAL_SET, op.LOCAL_TEE})  # (dst_reg's test, one lookup per instruction)
_BRANCHES_ON_VALUE = frozenset({op.BR_IF, op.IF})  # (branch_follows's)

# What FuncCodegen.compile does itself when not metering: push a local (LOCAL) or a constant of a type.
_PUSH_ONLY: dict[int, ValKind | int] = {
    op.LOCAL_GET: LOCAL,
    op.I32_CONST_OP: I32,
    op.I64_CONST_OP: I64,
    op.F32_CONST_OP: F32,
    op.F64_CONST_OP: F64,
}

# opcode -> (handler, static operands).
DISPATCH: dict[int, tuple[Callable, tuple]] = {
    op.NOP: (V.visit_nop, ()),
    op.UNREACHABLE: (V.visit_unreachable, ()),
    op.BLOCK_OP: (V.visit_block, ()),
    op.LOOP: (V.visit_loop, ()),
    op.IF: (V.visit_if, ()),
    op.TRY_TABLE_OP: (V.visit_try_table, ()),
    op.THROW: (V.visit_throw, ()),
    op.THROW_REF: (V.visit_throw_ref, ()),
    op.ELSE: (V.visit_else, ()),
    op.END: (V.visit_end, ()),
    op.BR: (V.visit_br, ()),
    op.BR_IF: (V.visit_br_if, ()),
    op.BR_TABLE_OP: (V.visit_br_table, ()),
    op.RETURN: (V.visit_return, ()),
    op.CALL: (V.visit_call, (False,)),
    op.RETURN_CALL: (V.visit_call, (True,)),
    op.CALL_INDIRECT_OP: (V.visit_call_indirect, (False,)),
    op.RETURN_CALL_INDIRECT: (V.visit_call_indirect, (True,)),
    op.CALL_REF: (V.visit_call_ref, (False,)),
    op.RETURN_CALL_REF: (V.visit_call_ref, (True,)),
    op.REF_AS_NON_NULL: (V.visit_ref_as_non_null, ()),
    op.BR_ON_NULL: (V.visit_br_on_null, ()),
    op.BR_ON_NON_NULL: (V.visit_br_on_non_null, ()),
    op.DROP: (V.visit_drop, ()),
    op.SELECT: (V.visit_select, ()),
    op.SELECT_TYPED: (V.visit_select, ()),
    op.LOCAL_GET: (V.visit_local_get, ()),
    op.LOCAL_SET: (V.visit_local_set, ()),
    op.LOCAL_TEE: (V.visit_local_tee, ()),
    op.GLOBAL_GET: (V.visit_global_get, ()),
    op.GLOBAL_SET: (V.visit_global_set, ()),
    op.I32_CONST_OP: (V.visit_const, (I32,)),
    op.I64_CONST_OP: (V.visit_const, (I64,)),
    op.F32_CONST_OP: (V.visit_const, (F32,)),
    op.F64_CONST_OP: (V.visit_const, (F64,)),
    op.MEMORY_SIZE: (V.visit_memory_size, ()),
    op.MEMORY_GROW: (V.visit_memory_grow, ()),
    op.MEMORY_FILL: (V.visit_memory_fill, ()),
    op.MEMORY_COPY: (V.visit_memory_copy, ()),
    op.MEMORY_INIT: (V.visit_memory_init, ()),
    op.DATA_DROP: (V.visit_data_drop, ()),
    op.MEMORY_DISCARD: (V.visit_memory_discard, ()),
    op.MEMORY_MAP: (V.visit_memory_map, ()),
    op.MEMORY_UNMAP: (V.visit_memory_unmap, ()),
    op.MEMORY_PROTECT: (V.visit_memory_protect, ()),
    op.TABLE_GET: (V.visit_table_get, ()),
    op.TABLE_SET: (V.visit_table_set, ()),
    op.TABLE_SIZE: (V.visit_table_size, ()),
    op.TABLE_GROW: (V.visit_table_grow, ()),
    op.TABLE_FILL: (V.visit_table_fill, ()),
    op.TABLE_COPY: (V.visit_table_copy, ()),
    op.TABLE_INIT: (V.visit_table_init, ()),
    op.ELEM_DROP: (V.visit_elem_drop, ()),
    op.REF_NULL: (V.visit_ref_null, ()),
    op.REF_IS_NULL: (V.visit_int_eqz, ()),
    op.REF_FUNC: (V.visit_ref_func, ()),
}

# Loads, stores and numeric instructions, by their text-format name (each name is one opcode).
_MEMORY_ACCESS: dict[str, tuple[Callable, tuple]] = {
    **{
        k.value: (V.visit_load, (k, ty, size))
        for k, ty, size in (
            (LoadKind.I32_LOAD, I32, 4),
            (LoadKind.I64_LOAD, I64, 8),
            (LoadKind.F32_LOAD, F32, 4),
            (LoadKind.F64_LOAD, F64, 8),
            (LoadKind.I32_LOAD8_S, I32, 1),
            (LoadKind.I32_LOAD8_U, I32, 1),
            (LoadKind.I32_LOAD16_S, I32, 2),
            (LoadKind.I32_LOAD16_U, I32, 2),
            (LoadKind.I64_LOAD8_S, I64, 1),
            (LoadKind.I64_LOAD8_U, I64, 1),
            (LoadKind.I64_LOAD16_S, I64, 2),
            (LoadKind.I64_LOAD16_U, I64, 2),
            (LoadKind.I64_LOAD32_S, I64, 4),
            (LoadKind.I64_LOAD32_U, I64, 4),
        )
    },
    **{
        k.value: (V.visit_store, (k, size))
        for k, size in (
            (StoreKind.I32_STORE, 4),
            (StoreKind.I64_STORE, 8),
            (StoreKind.F32_STORE, 4),
            (StoreKind.F64_STORE, 8),
            (StoreKind.I32_STORE8, 1),
            (StoreKind.I32_STORE16, 2),
            (StoreKind.I64_STORE8, 1),
            (StoreKind.I64_STORE16, 2),
            (StoreKind.I64_STORE32, 4),
        )
    },
}
_NUMERIC: dict[str, tuple[Callable, tuple]] = {
    "i32.eqz": (V.visit_int_eqz, ()),
    "i64.eqz": (V.visit_int_eqz, ()),
    **{f"i32.{c.value}": (V.visit_int_compare, (c,)) for c in IntCmp},
    **{f"i64.{c.value}": (V.visit_int_compare, (c,)) for c in IntCmp},
    **{f"i32.{k.value}": (V.visit_int_binary, (k, False)) for k in IntBinOp},
    **{f"i64.{k.value}": (V.visit_int_binary, (k, True)) for k in IntBinOp},
    **{f"i32.{k.value}": (V.visit_int_unary, (k, False)) for k in IntUnOp if k is not IntUnOp.EXTEND32_S},
    **{f"i64.{k.value}": (V.visit_int_unary, (k, True)) for k in IntUnOp},
    **{f"i64.{k.value}": (V.visit_int_wide, (k, 4 if k in (WideOp.ADD128, WideOp.SUB128) else 2)) for k in WideOp},
    **{f"f32.{k.value}": (V.visit_float_binary, (k, False)) for k in FloatBinOp},
    **{f"f64.{k.value}": (V.visit_float_binary, (k, True)) for k in FloatBinOp},
    **{f"f32.{k.value}": (V.visit_float_unary, (k, False)) for k in FloatUnOp},
    **{f"f64.{k.value}": (V.visit_float_unary, (k, True)) for k in FloatUnOp},
    **{f"f32.{c.value}": (V.visit_float_compare, (c, False)) for c in FloatCmp},
    **{f"f64.{c.value}": (V.visit_float_compare, (c, True)) for c in FloatCmp},
}
_OPCODE_BY_NAME = {name: code for code, name in op.NAMES.items()}
_EQZ = frozenset({_OPCODE_BY_NAME["i32.eqz"], _OPCODE_BY_NAME["i64.eqz"]})
_NUMERIC.update({c.value: (V.visit_convert, (c, op.SIGNATURES[_OPCODE_BY_NAME[c.value]][1][0])) for c in Conversion})
for _name, _entry in (*_MEMORY_ACCESS.items(), *_NUMERIC.items()):
    DISPATCH[_OPCODE_BY_NAME[_name]] = _entry  # a KeyError here is a misspelt name
del _name, _entry

DISPATCH.update(ATOMIC_DISPATCH)  # the threads proposal (codegen/atomics.py)
DISPATCH.update(simd.dispatch())  # the 0xfd instructions (codegen/simd.py)
DISPATCH.update(gc.dispatch())  # GC's instructions that need no heap (codegen/gc.py)
DISPATCH[gcops.REF_EQ] = (V.visit_int_compare, (IntCmp.EQ,))  # the two words are equal
