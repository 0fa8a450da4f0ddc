"""Single-pass code generation from a validated WebAssembly function (ISA-neutral).

In the manner of Wasmtime's Winch and V8's Liftoff: one walk over the
function's instructions, with WebAssembly's operand stack kept as a list of
:class:`Val` entries that say where each value is::

    REG    in a register of the operand pool (owned by that entry)
    CONST  a constant not yet materialised
    LOCAL  a read of local i not yet done (locals live in callee-saved registers or frame slots)
    SLOT   in the spill slot of its stack depth (slot d holds the value at depth d)

Registers are taken from the backend's pools; when they run out the deepest
register value is spilled.  Control flow joins meet in a canonical state:
at every block, loop and if entry the operand stack is spilled (constants may
stay), and every branch moves the values its label carries into the slots
just above the label's stack height.  Locals are homed once per function: the
most used ones (weighted by loop depth) in callee-saved registers, the rest
in frame slots.

Code after an unconditional branch is unreachable: it is skipped (only block
nesting is tracked) until the ``else`` or ``end`` that makes code reachable
again.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import HwsimError
from ..wasm import opcodes as op
from ..wasm.types import BLOCK_EMPTY, EXTERNREF, F32, F64, FUNCREF, I32, I64, FuncType, block_valtype
from .abi import RegLoc, VmctxLayout
from .masm import (Conversion, FloatBinOp, FloatCmp, FloatUnOp, IntBinOp, IntCmp, IntUnOp, Label, LoadKind,
                   StoreKind)
from .regs import FLOAT, INT, Reg
from .traps import TrapCode

REG, CONST, LOCAL, SLOT = range(4)
FLOAT_TYPES = (F32, F64)


def reg_class(ty: int) -> int:
    return FLOAT if ty in FLOAT_TYPES else INT


class Val:
    __slots__ = ("kind", "ty", "x")

    def __init__(self, kind: int, ty: int, x) -> None:
        self.kind, self.ty, self.x = kind, ty, x

    def __repr__(self) -> str:
        return f"Val({('REG', 'CONST', 'LOCAL', 'SLOT')[self.kind]}, {self.ty:#x}, {self.x!r})"


@dataclass
class Ctrl:
    kind: str  # "func", "block", "loop", "if"
    label: Label  # branch target: the loop header, or the end
    height: int  # operand-stack height below the block's params
    params: tuple
    results: tuple
    else_label: Label | None = None
    param_save: int | None = None  # first aux slot holding an if's params, for the else branch
    reachable: bool = True  # is the code being generated now reachable
    entered_reachable: bool = True
    label_used: bool = False
    dead: bool = False  # the whole block sits in unreachable code

    @property
    def arity(self) -> tuple:
        return self.params if self.kind == "loop" else self.results


@dataclass
class LocalHome:
    ty: int
    reg: Reg | None = None
    slot: int | None = None  # fp-relative offset


@dataclass
class FuncInfo:
    """What the pre-pass learns about a function body before code generation."""

    weights: list[float]
    aux_slots: int  # slots to keep the params of ``if`` blocks for their ``else``
    has_calls: bool


def prepass(body: list, num_locals: int, module, blocktypes) -> FuncInfo:
    weights = [0.0] * num_locals
    depth = 0
    aux = 0
    has_calls = False
    loops: list[bool] = []
    for code, imm, _ in body:
        if code in (op.LOCAL_GET, op.LOCAL_SET, op.LOCAL_TEE):
            weights[imm] += 8.0 ** min(depth, 4)
        elif code in (op.BLOCK_OP, op.LOOP, op.IF):
            loops.append(code == op.LOOP)
            depth += code == op.LOOP
            if code == op.IF:
                aux += len(blocktypes(imm)[0])
        elif code == op.END and loops:
            depth -= loops.pop()
        elif code in (op.CALL, op.CALL_INDIRECT_OP, op.RETURN_CALL, op.RETURN_CALL_INDIRECT):
            has_calls = True
    return FuncInfo(weights, aux, has_calls)


class CompileError(HwsimError):
    """The compiler cannot compile a valid module: an implementation limit (see compile_module)."""


@dataclass
class ModuleEnv:
    """The module-wide facts a function's code depends on."""

    module: object
    func_types: list[FuncType]  # by function index
    types: list[FuncType]
    num_imported_funcs: int
    memory_types: list
    table_types: list
    global_types: list
    layout: VmctxLayout
    builtins: object  # Builtin ids
    intrinsics: dict = field(default_factory=dict)  # imported function index -> Intrinsic (lowered in place)


class FuncCodegen:
    def __init__(self, env: ModuleEnv, func_index: int, func, masm) -> None:
        self.env = env
        self.func_index = func_index
        self.func = func
        self.m = masm
        self.type = env.func_types[func_index]
        self.stack: list[Val] = []
        self.ctrl: list[Ctrl] = []
        self.free = {INT: list(reversed(masm.int_pool)), FLOAT: list(reversed(masm.float_pool))}
        self.wasm_offset = func.body_offset

    # -- entry point ---------------------------------------------------------------------

    def compile(self):
        env, m, func = self.env, self.m, self.func
        local_types = list(self.type.params)
        for count, ty in func.locals:
            local_types.extend([ty] * count)
        self.local_types = local_types
        info = prepass(func.body, len(local_types), env.module, self.block_type)
        self.info = info
        # Home the locals: the heaviest in callee-saved registers.
        order = sorted(range(len(local_types)), key=lambda i: -info.weights[i])
        int_regs, float_regs = list(m.int_local_regs), list(m.float_local_regs)
        homes: list[LocalHome] = [LocalHome(t) for t in local_types]
        for i in order:
            pool = float_regs if reg_class(local_types[i]) == FLOAT else int_regs
            if pool and info.weights[i] > 0:
                homes[i].reg = pool.pop(0)
        saved = [h.reg for h in homes if h.reg is not None]
        slot_locals = [h for h in homes if h.reg is None]
        m.begin_frame(saved, info.aux_slots, len(slot_locals))
        for i, h in enumerate(slot_locals):
            h.slot = m.local_offset(i)
        self.homes = homes
        m.mark(func.body_offset)
        m.prologue()
        # Parameters arrive in argument registers (or the ABI area); declared locals start at zero.
        for i, loc in enumerate(m.abi_locations(self.type.params)):
            h = homes[i]
            if h.reg is not None:
                m.move_from_abi(h.reg, loc, h.ty)
            else:
                m.spill_from_abi(h.slot, loc, h.ty)
        for i in range(len(self.type.params), len(local_types)):
            h = homes[i]
            if h.reg is not None:
                m.zero_reg(h.reg)
            else:
                m.zero_slot(h.slot)
        self.ctrl.append(Ctrl("func", m.new_label(), 0, (), tuple(self.type.results)))
        for code, imm, offset in func.body:
            self.wasm_offset = offset
            frame = self.ctrl[-1]
            if not frame.reachable:
                self.skip(code, imm)
                continue
            m.mark(offset)
            handler = DISPATCH.get(code)
            if handler is None:
                raise CompileError(f"instruction {op.opcode_name(code)} is not supported by the compiler yet")
            handler(self, code, imm)
        return m

    # -- unreachable code -----------------------------------------------------------------

    def skip(self, code: int, imm) -> None:
        if code in (op.BLOCK_OP, op.LOOP, op.IF):
            params, results = self.block_type(imm)
            self.ctrl.append(Ctrl("block", Label(), len(self.stack), params, results, reachable=False,
                                  entered_reachable=False, dead=True))
        elif code == op.ELSE:
            frame = self.ctrl[-1]
            if not frame.dead:
                self.op_else(code, imm)
        elif code == op.END:
            frame = self.ctrl[-1]
            if frame.dead:
                self.ctrl.pop()
            else:
                self.op_end(code, imm)

    # -- types -----------------------------------------------------------------------------

    def block_type(self, bt: int) -> tuple[tuple, tuple]:
        if bt == BLOCK_EMPTY:
            return (), ()
        if bt < 0:
            return (), (block_valtype(bt),)
        ft = self.env.types[bt]
        return tuple(ft.params), tuple(ft.results)

    # -- registers and values ------------------------------------------------------------

    def alloc(self, cls: int) -> Reg:
        free = self.free[cls]
        if free:
            return free.pop()
        for depth, v in enumerate(self.stack):
            if v.kind == REG and v.x.cls == cls:
                reg = v.x
                self.m.store_slot(reg, self.m.slot_offset(depth), v.ty)
                v.kind, v.x = SLOT, depth
                return reg
        raise CompileError("out of registers")  # unreachable: a value stack holds at most what it holds

    def free_reg(self, reg: Reg) -> None:
        self.free[reg.cls].append(reg)

    def take(self, reg: Reg) -> None:
        """Mark a specific register allocated (it must be free)."""
        self.free[reg.cls].remove(reg)

    def push_reg(self, ty: int, reg: Reg) -> None:
        self.stack.append(Val(REG, ty, reg))

    def push_const(self, ty: int, bits: int) -> None:
        self.stack.append(Val(CONST, ty, bits))

    def pop(self) -> Val:
        return self.stack.pop()

    def to_reg(self, v: Val) -> tuple[Reg, bool]:
        """A register holding ``v``; ``owned`` is False for a local's home (read it, never write it)."""
        if v.kind == REG:
            return v.x, True
        if v.kind == LOCAL:
            home = self.homes[v.x]
            if home.reg is not None:
                return home.reg, False
            reg = self.alloc(reg_class(v.ty))
            self.m.load_slot(reg, home.slot, v.ty)
            return reg, True
        reg = self.alloc(reg_class(v.ty))
        if v.kind == CONST:
            self.m.load_const(reg, v.ty, v.x)
        else:
            self.m.load_slot(reg, self.m.slot_offset(v.x), v.ty)
        return reg, True

    def pop_reg(self) -> tuple[Reg, bool]:
        return self.to_reg(self.pop())

    def release(self, reg: Reg, owned: bool) -> None:
        if owned:
            self.free_reg(reg)

    def to_owned_reg(self, v: Val) -> Reg:
        """A register holding ``v`` that the caller may overwrite."""
        reg, owned = self.to_reg(v)
        if owned:
            return reg
        copy = self.alloc(reg.cls)
        self.m.mov(copy, reg)
        return copy

    def spill_value(self, depth: int) -> None:
        v = self.stack[depth]
        if v.kind == SLOT:
            if v.x != depth:
                raise CompileError("internal: slot value at the wrong depth")
            return
        off = self.m.slot_offset(depth)
        if v.kind == REG:
            self.m.store_slot(v.x, off, v.ty)
            self.free_reg(v.x)
        elif v.kind == CONST:
            self.m.store_const_to_slot(off, v.ty, v.x)
        else:
            home = self.homes[v.x]
            if home.reg is not None:
                self.m.store_slot(home.reg, off, v.ty)
            else:
                self.m.copy_slot(off, home.slot, v.ty)
        v.kind, v.x = SLOT, depth

    def spill_all(self, keep_consts: bool = True) -> None:
        for depth, v in enumerate(self.stack):
            if v.kind == SLOT or (keep_consts and v.kind == CONST):
                continue
            self.spill_value(depth)

    def spill_regs(self) -> None:
        """Spill register values (before a call clobbers the caller-saved pools)."""
        for depth, v in enumerate(self.stack):
            if v.kind == REG:
                self.spill_value(depth)

    def materialize_local(self, index: int) -> None:
        """Before local ``index`` changes, pending reads of it take the current value."""
        for v in self.stack:
            if v.kind == LOCAL and v.x == index:
                reg, _ = self.to_reg(v)
                copy = self.alloc(reg.cls) if self.homes[index].reg is not None else reg
                if copy is not reg:
                    self.m.mov(copy, reg)
                v.kind, v.x = REG, copy

    # -- moving values to where a label wants them ------------------------------------------

    def move_to_slots(self, values: list[Val], base: int) -> None:
        """Store ``values`` into slots base, base+1, ... (they sit at or above those depths)."""
        for i, v in enumerate(values):
            depth = base + i
            off = self.m.slot_offset(depth)
            if v.kind == SLOT:
                if v.x != depth:
                    self.m.copy_slot(off, self.m.slot_offset(v.x), v.ty)
            elif v.kind == REG:
                self.m.store_slot(v.x, off, v.ty)
            elif v.kind == CONST:
                self.m.store_const_to_slot(off, v.ty, v.x)
            else:
                home = self.homes[v.x]
                if home.reg is not None:
                    self.m.store_slot(home.reg, off, v.ty)
                else:
                    self.m.copy_slot(off, home.slot, v.ty)

    def needs_moves(self, frame: Ctrl) -> bool:
        n = len(frame.arity)
        top = self.stack[len(self.stack) - n:] if n else []
        if len(self.stack) - n != frame.height:
            return bool(n)
        return any(v.kind != SLOT or v.x != frame.height + i for i, v in enumerate(top))

    def branch_to(self, frame: Ctrl) -> None:
        """Unconditional branch to ``frame``'s label, its values moved into place."""
        frame.label_used = True
        if frame.kind == "func":
            # Straight from the operand stack into the result registers: storing into the frame's slots
            # first would overwrite values emit_return still reads from those slots.
            self.emit_return()
            return
        n = len(frame.arity)
        top = self.stack[len(self.stack) - n:] if n else []
        self.move_to_slots(top, frame.height)
        self.m.jump(frame.label)

    def set_unreachable(self) -> None:
        frame = self.ctrl[-1]
        for v in self.stack[frame.height:]:
            if v.kind == REG:
                self.free_reg(v.x)
        del self.stack[frame.height:]
        frame.reachable = False

    def push_block_results(self, frame: Ctrl, types: tuple) -> None:
        for v in self.stack[frame.height:]:
            if v.kind == REG:
                self.free_reg(v.x)
        del self.stack[frame.height:]
        for i, ty in enumerate(types):
            self.stack.append(Val(SLOT, ty, frame.height + i))

    # -- control ----------------------------------------------------------------------------

    def op_nop(self, code, imm) -> None:
        pass

    def op_unreachable(self, code, imm) -> None:
        self.m.trap(TrapCode.UNREACHABLE)
        self.set_unreachable()

    def op_block(self, code, imm) -> None:
        params, results = self.block_type(imm)
        self.spill_all()
        height = len(self.stack) - len(params)
        if code == op.LOOP:  # branches back to the header bring new params in their slots
            for depth in range(height, len(self.stack)):
                self.spill_value(depth)
        label = self.m.new_label()
        if code == op.LOOP:
            self.m.bind(label)
            self.ctrl.append(Ctrl("loop", label, height, params, results))
        else:
            self.ctrl.append(Ctrl("block", label, height, params, results))

    def op_if(self, code, imm) -> None:
        params, results = self.block_type(imm)
        cond, owned = self.pop_reg()
        self.spill_all()  # stores only: the popped condition's register stays intact
        height = len(self.stack) - len(params)
        frame = Ctrl("if", self.m.new_label(), height, params, results, else_label=self.m.new_label())
        if params:
            frame.param_save = self.m.alloc_aux_slots(len(params))
            for i, v in enumerate(self.stack[height:]):
                if v.kind == CONST:
                    self.m.store_const_to_slot(self.m.aux_offset(frame.param_save + i), v.ty, v.x)
                else:
                    self.m.copy_slot(self.m.aux_offset(frame.param_save + i), self.m.slot_offset(v.x), v.ty)
        self.m.branch_zero(cond, frame.else_label)
        self.release(cond, owned)
        self.ctrl.append(frame)

    def op_else(self, code, imm) -> None:
        frame = self.ctrl[-1]
        if frame.reachable:
            self.branch_to_end(frame)
        self.m.bind(frame.else_label)
        frame.else_label = None
        self.restore_if_params(frame)

    def restore_if_params(self, frame: Ctrl) -> None:
        """The else arm (written or implicit) starts from the if's entry state: its params, saved at the if."""
        for v in self.stack[frame.height:]:
            if v.kind == REG:
                self.free_reg(v.x)
        del self.stack[frame.height:]
        for i, ty in enumerate(frame.params):
            self.m.copy_slot(self.m.slot_offset(frame.height + i), self.m.aux_offset(frame.param_save + i), ty)
            self.stack.append(Val(SLOT, ty, frame.height + i))
        frame.reachable = frame.entered_reachable

    def branch_to_end(self, frame: Ctrl) -> None:
        n = len(frame.results)
        top = self.stack[len(self.stack) - n:] if n else []
        self.move_to_slots(top, frame.height)
        frame.label_used = True
        self.m.jump(frame.label)

    def op_end(self, code, imm) -> None:
        frame = self.ctrl[-1]
        if frame.kind == "func":
            if frame.reachable:
                self.emit_return()
            self.ctrl.pop()
            self.m.bind(frame.label)
            return
        self.ctrl.pop()
        outer_reachable = True
        if frame.kind == "if" and frame.else_label is not None:
            # No else arm: the params flow through unchanged when the condition is false.
            if frame.reachable:
                self.branch_to_end(frame)
            self.m.bind(frame.else_label)
            self.restore_if_params(frame)
        if frame.kind == "loop":
            # A loop's label is its header: falling out of the end is the only way past it.
            if frame.reachable:
                n = len(frame.results)
                top = self.stack[len(self.stack) - n:] if n else []
                self.move_to_slots(top, frame.height)
            outer_reachable = frame.reachable
        else:
            if frame.reachable:
                n = len(frame.results)
                top = self.stack[len(self.stack) - n:] if n else []
                self.move_to_slots(top, frame.height)
            self.m.bind(frame.label)
            outer_reachable = frame.reachable or frame.label_used
        self.push_block_results(frame, frame.results)
        outer = self.ctrl[-1]
        outer.reachable = outer_reachable
        if not outer_reachable:
            self.set_unreachable()

    def op_br(self, code, imm) -> None:
        frame = self.ctrl[-1 - imm]
        self.branch_to(frame)
        self.set_unreachable()

    def op_br_if(self, code, imm) -> None:
        frame = self.ctrl[-1 - imm]
        cond, owned = self.pop_reg()
        frame.label_used = True
        # Code on the taken path only copies values: the codegen's view of the stack must stay
        # true for the fall-through path.
        if frame.kind == "func" or self.needs_moves(frame):
            skip = self.m.new_label()
            self.m.branch_zero(cond, skip)
            self.release(cond, owned)
            self.branch_to(frame)
            self.m.bind(skip)
        else:
            self.m.branch_nonzero(cond, frame.label)
            self.release(cond, owned)

    def op_br_table(self, code, imm) -> None:
        labels, default = imm
        index, owned = self.pop_reg()
        targets = []
        stubs = []
        for depth in (*labels, default):
            frame = self.ctrl[-1 - depth]
            frame.label_used = True
            if frame.kind != "func" and not self.needs_moves(frame):
                targets.append(frame.label)
            else:
                stub = self.m.new_label()
                targets.append(stub)
                stubs.append((stub, frame))
        self.m.jump_table(index, targets[:-1], targets[-1])
        self.release(index, owned)
        done = set()
        for stub, frame in stubs:
            if id(stub) in done:
                continue
            done.add(id(stub))
            self.m.bind(stub)
            self.branch_to(frame)
        self.set_unreachable()

    def op_return(self, code, imm) -> None:
        self.branch_to(self.ctrl[0])
        self.set_unreachable()

    def emit_return(self) -> None:
        """Results (top of the stack) into the result registers / ABI area, then the epilogue."""
        results = self.type.results
        n = len(results)
        values = self.stack[len(self.stack) - n:] if n else []
        locs = self.m.abi_locations(results)
        # This may run on a conditional path: copy values, never change the codegen's view of them.
        # Results bound for memory first; then register-to-register moves as one parallel move
        # (a result register may hold another result); then loads from slots and constants.
        reg_moves, loads = [], []
        for v, loc, ty in zip(values, locs, results):
            if not isinstance(loc, RegLoc):
                self.value_to_abi(v, loc, ty)
            elif v.kind == REG:
                reg_moves.append((loc.reg, v.x))
            else:
                loads.append((v, loc, ty))
        self.parallel_move(reg_moves)
        for v, loc, ty in loads:
            self.value_to_abi(v, loc, ty)
        self.m.epilogue_and_return()

    def parallel_move(self, moves: list[tuple[Reg, Reg]]) -> None:
        """Move each source register into its destination as if all moved at once."""
        pending = [(d, s) for d, s in moves if d != s]
        while pending:
            sources = {s for _, s in pending}
            ready = [(d, s) for d, s in pending if d not in sources]
            if ready:
                for d, s in ready:
                    self.m.mov(d, s)
                pending = [m for m in pending if m not in ready]
                continue
            d, s = pending[0]  # a cycle: park one source in a scratch register
            scratch = self.m.scratch(s.cls)
            self.m.mov(scratch, s)
            pending = [(dd, scratch if ss == s else ss) for dd, ss in pending]

    def value_to_abi(self, v: Val, loc, ty: int) -> None:
        if v.kind == CONST:
            self.m.const_to_abi(loc, ty, v.x)
        elif v.kind == SLOT:
            self.m.slot_to_abi(loc, self.m.slot_offset(v.x), ty)
        elif v.kind == LOCAL:
            home = self.homes[v.x]
            if home.reg is not None:
                self.m.reg_to_abi(loc, home.reg, ty)
            else:
                self.m.slot_to_abi(loc, home.slot, ty)
        else:
            self.m.reg_to_abi(loc, v.x, ty)

    # -- calls ------------------------------------------------------------------------------

    def prepare_args(self, ft: FuncType) -> None:
        """Spill, then load the arguments (top of the stack) into their ABI locations."""
        self.spill_regs()
        n = len(ft.params)
        args = self.stack[len(self.stack) - n:] if n else []
        for v, loc, ty in zip(args, self.m.abi_locations(ft.params), ft.params):
            self.value_to_abi(v, loc, ty)
        del self.stack[len(self.stack) - n:]

    def push_results(self, ft: FuncType) -> None:
        for loc, ty in zip(self.m.abi_locations(ft.results), ft.results):
            if isinstance(loc, RegLoc):
                reg = loc.reg
                self.take(reg)
            else:
                reg = self.alloc(reg_class(ty))
                self.m.move_from_abi(reg, loc, ty)
            self.push_reg(ty, reg)

    def op_call(self, code, imm) -> None:
        ft = self.env.func_types[imm]
        tail = code == op.RETURN_CALL
        intrinsic = self.env.intrinsics.get(imm)
        if intrinsic is not None:
            self.call_intrinsic(intrinsic)
            if tail:
                self.op_return(op.RETURN, None)
            return
        self.prepare_args(ft)
        if imm < self.env.num_imported_funcs:
            self.m.load_vmctx(self.m.CALL_TARGET, self.env.layout.func(imm))
            if tail:
                self.m.tail_call_ref()
            else:
                self.m.call_ref()
        elif tail:
            self.m.tail_call_direct(imm)
        else:
            self.m.call_direct(imm)
        if tail:
            self.set_unreachable()
        else:
            self.push_results(ft)

    def call_intrinsic(self, intrinsic) -> None:
        """A call of an intrinsic import, lowered as the instruction it stands for (on memory 0)."""
        from .intrinsics import FAR, FAR_ACCESS
        if intrinsic.module == FAR:
            if intrinsic.name in FAR_ACCESS:
                self.far_access(*FAR_ACCESS[intrinsic.name])
            else:
                ft = intrinsic.signature(I32)
                args = [self.pop() for _ in ft.params][::-1]
                self.builtin(f"far_{intrinsic.name}", args, tuple(ft.params),
                             ft.results[0] if ft.results else None, ())
            return
        if intrinsic.name == "page_size":
            from .intrinsics import PAGE_SIZE
            self.stack.append(Val(CONST, I32, PAGE_SIZE))
            return
        handler = {"discard": self.op_memory_discard, "map": self.op_memory_map, "unmap": self.op_memory_unmap,
                   "protect": self.op_memory_protect}.get(intrinsic.name)
        if handler is not None:
            handler(op.CALL, 0)
            return
        # Memory handles: builtins on memory 0.
        at = self.env.memory_types[0].index_type if self.env.memory_types else I32
        ft = intrinsic.signature(at)
        args = [self.pop() for _ in ft.params][::-1]
        self.builtin(intrinsic.name, args, tuple(ft.params), ft.results[0] if ft.results else None, ())

    def far_access(self, size: int, write: bool) -> None:
        word = self.env.layout.segments
        if write:
            value = self.pop()
            far = self.pop()
            vreg, vown = self.to_reg(value)
            freg, fown = self.to_reg(far)
            self.m.far_access(freg, size, True, vreg, word)
            self.release(vreg, vown)
            self.release(freg, fown)
            return
        far = self.pop()
        freg, fown = self.to_reg(far)
        dst = self.alloc(INT)
        self.m.far_access(freg, size, False, dst, word)
        self.release(freg, fown)
        self.push_reg(I64 if size == 8 else I32, dst)

    def op_call_indirect(self, code, imm) -> None:
        type_index, table_index = imm
        ft = self.env.types[type_index]
        tail = code == op.RETURN_CALL_INDIRECT
        index = self.pop()
        reg, owned = self.to_reg(index)
        # Look the callee up before the arguments take the argument registers.
        self.m.table_element_for_call(reg, self.env.layout.table(table_index),
                                      self.env.table_types[table_index].index_type == I64,
                                      self.env.layout.type_id(type_index))
        self.release(reg, owned)
        self.prepare_args(ft)
        if tail:
            self.m.tail_call_ref()
            self.set_unreachable()
        else:
            self.m.call_ref()
            self.push_results(ft)

    def builtin(self, name: str, args: list[Val], arg_types: tuple, result_type: int | None,
                extra: tuple = ()) -> None:
        """Call a runtime builtin (memory.grow, table.*, bulk memory) through ``ecall``."""
        for v in args:
            self.stack.append(v)
        ft = FuncType(tuple(arg_types) + tuple(I64 for _ in extra), (result_type,) if result_type else ())
        for value in extra:
            self.stack.append(Val(CONST, I64, value))
        self.prepare_args(ft)
        self.m.call_builtin(getattr(self.env.builtins, name))
        self.push_results(ft)

    # -- parametric ---------------------------------------------------------------------------

    def op_drop(self, code, imm) -> None:
        v = self.pop()
        if v.kind == REG:
            self.free_reg(v.x)

    def op_select(self, code, imm) -> None:
        cond, cown = self.pop_reg()
        b = self.pop()
        a = self.pop()
        ra, aown = self.to_reg(a)
        rb, bown = self.to_reg(b)
        self.release(cond, cown)
        self.release(ra, aown)
        self.release(rb, bown)
        dst = self.alloc(ra.cls)
        self.m.select(dst, ra, rb, cond)
        self.push_reg(a.ty, dst)

    # -- locals and globals -------------------------------------------------------------------

    def op_local_get(self, code, imm) -> None:
        self.stack.append(Val(LOCAL, self.local_types[imm], imm))

    def op_local_set(self, code, imm) -> None:
        self.materialize_local(imm)
        v = self.pop()
        home = self.homes[imm]
        if v.kind == LOCAL and v.x == imm:
            return
        if home.reg is not None:
            if v.kind == CONST:
                self.m.load_const(home.reg, v.ty, v.x)
            elif v.kind == SLOT:
                self.m.load_slot(home.reg, self.m.slot_offset(v.x), v.ty)
            else:
                reg, owned = self.to_reg(v)
                self.m.mov(home.reg, reg)
                self.release(reg, owned)
        else:
            if v.kind == CONST:
                self.m.store_const_to_slot(home.slot, v.ty, v.x)
            elif v.kind == SLOT:
                self.m.copy_slot(home.slot, self.m.slot_offset(v.x), v.ty)
            else:
                reg, owned = self.to_reg(v)
                self.m.store_slot(reg, home.slot, v.ty)
                self.release(reg, owned)

    def op_local_tee(self, code, imm) -> None:
        self.op_local_set(code, imm)
        self.stack.append(Val(LOCAL, self.local_types[imm], imm))

    def op_global_get(self, code, imm) -> None:
        ty = self.env.global_types[imm].valtype
        dst = self.alloc(reg_class(ty))
        self.m.global_get(dst, self.env.layout.global_(imm), ty)
        self.push_reg(ty, dst)

    def op_global_set(self, code, imm) -> None:
        ty = self.env.global_types[imm].valtype
        reg, owned = self.pop_reg()
        self.m.global_set(reg, self.env.layout.global_(imm), ty)
        self.release(reg, owned)

    # -- constants ------------------------------------------------------------------------------

    def op_const(self, code, imm) -> None:
        ty = {op.I32_CONST_OP: I32, op.I64_CONST_OP: I64, op.F32_CONST_OP: F32, op.F64_CONST_OP: F64}[code]
        self.push_const(ty, imm)

    # -- numeric ----------------------------------------------------------------------------------

    def pop_operands(self) -> tuple[Reg, Reg]:
        """Pop b then a into registers, released at once: the result may take one of them
        (the instruction reads its sources before writing its destination)."""
        b = self.pop()
        a = self.pop()
        ra, aown = self.to_reg(a)
        rb, bown = self.to_reg(b)
        self.release(ra, aown)
        self.release(rb, bown)
        return ra, rb

    def pop_operand(self) -> Reg:
        """Pop one value into a register, released at once (see :meth:`pop_operands`)."""
        ra, own = self.pop_reg()
        self.release(ra, own)
        return ra

    def op_int_binary(self, code, imm) -> None:
        name = op.NAMES[code]
        wide = name[1] == "6"  # i64.*
        what = IntBinOp(name[4:])
        b = self.pop()
        a = self.pop()
        ra, aown = self.to_reg(a)
        if b.kind == CONST and self.m.int_imm_ok(what, wide, b.x):
            rb, bown = b.x, False
        else:
            rb, bown = self.to_reg(b)
        self.release(ra, aown)
        if not isinstance(rb, int):
            self.release(rb, bown)
        dst = self.alloc(INT)
        self.m.int_binary(what, wide, dst, ra, rb)
        self.push_reg(I64 if wide else I32, dst)

    def op_int_compare(self, code, imm) -> None:
        name = op.NAMES[code]
        wide = name[1] == "6"
        what = name[4:]
        if what == "eqz":
            ra = self.pop_operand()
            dst = self.alloc(INT)
            self.m.int_eqz(dst, ra)
            self.push_reg(I32, dst)
            return
        ra, rb = self.pop_operands()
        dst = self.alloc(INT)
        self.m.int_compare(IntCmp(what), dst, ra, rb)
        self.push_reg(I32, dst)

    def op_int_unary(self, code, imm) -> None:
        name = op.NAMES[code]
        ra = self.pop_operand()
        dst = self.alloc(INT)
        self.m.int_unary(IntUnOp(name[4:]), name[1] == "6", dst, ra)
        self.push_reg(op.SIGNATURES[code][1][0], dst)

    def op_float_binary(self, code, imm) -> None:
        name = op.NAMES[code]
        double = name[1] == "6"
        ra, rb = self.pop_operands()
        dst = self.alloc(FLOAT)
        self.m.float_binary(FloatBinOp(name[4:]), double, dst, ra, rb)
        self.push_reg(F64 if double else F32, dst)

    def op_float_unary(self, code, imm) -> None:
        name = op.NAMES[code]
        double = name[1] == "6"
        ra = self.pop_operand()
        dst = self.alloc(FLOAT)
        self.m.float_unary(FloatUnOp(name[4:]), double, dst, ra)
        self.push_reg(F64 if double else F32, dst)

    def op_float_compare(self, code, imm) -> None:
        name = op.NAMES[code]
        double = name[1] == "6"
        ra, rb = self.pop_operands()
        dst = self.alloc(INT)
        self.m.float_compare(FloatCmp(name[4:]), double, dst, ra, rb)
        self.push_reg(I32, dst)

    def op_convert(self, code, imm) -> None:
        name = op.NAMES[code]
        params, results = op.SIGNATURES[code]
        ra = self.pop_operand()
        dst = self.alloc(reg_class(results[0]))
        self.m.convert(Conversion(name), dst, ra)
        self.push_reg(results[0], dst)

    # -- memory -----------------------------------------------------------------------------------

    def op_load(self, code, imm) -> None:
        name, ty, size_log2 = op.LOADS[code]
        mem, _align, offset = imm
        addr = self.pop()
        reg, owned = self.to_reg(addr)
        self.release(reg, owned)
        dst = self.alloc(reg_class(ty))
        base, disp = self.m.heap_address(mem, self.env.layout.memory(mem), self.env.memory_types[mem], reg, offset,
                                         1 << size_log2)
        self.m.load(LoadKind(name), dst, base, disp)
        self.push_reg(ty, dst)

    def op_store(self, code, imm) -> None:
        name, ty, size_log2 = op.STORES[code]
        mem, _align, offset = imm
        value = self.pop()
        addr = self.pop()
        vreg, vown = self.to_reg(value)
        areg, aown = self.to_reg(addr)
        base, disp = self.m.heap_address(mem, self.env.layout.memory(mem), self.env.memory_types[mem], areg, offset,
                                         1 << size_log2)
        self.m.store(StoreKind(name), vreg, base, disp)
        self.release(vreg, vown)
        self.release(areg, aown)

    def op_memory_size(self, code, imm) -> None:
        dst = self.alloc(INT)
        self.m.memory_size(dst, self.env.layout.memory(imm))
        self.push_reg(self.env.memory_types[imm].index_type, dst)

    def index_type(self, mem: int) -> int:
        return self.env.memory_types[mem].index_type

    def op_memory_grow(self, code, imm) -> None:
        t = self.index_type(imm)
        self.builtin("memory_grow", [self.pop()], (t,), t, (imm,))

    def op_memory_fill(self, code, imm) -> None:
        t = self.index_type(imm)
        n, val, dst = self.pop(), self.pop(), self.pop()
        self.builtin("memory_fill", [dst, val, n], (t, I32, t), None, (imm,))

    def op_memory_copy(self, code, imm) -> None:
        dst_mem, src_mem = imm
        td, ts = self.index_type(dst_mem), self.index_type(src_mem)
        n, src, dst = self.pop(), self.pop(), self.pop()
        tn = I64 if (td == I64 and ts == I64) else I32
        self.builtin("memory_copy", [dst, src, n], (td, ts, tn), None, (dst_mem, src_mem))

    def op_memory_init(self, code, imm) -> None:
        data, mem = imm
        n, src, dst = self.pop(), self.pop(), self.pop()
        self.builtin("memory_init", [dst, src, n], (self.index_type(mem), I32, I32), None, (mem, data))

    def op_data_drop(self, code, imm) -> None:
        self.builtin("data_drop", [], (), None, (imm,))

    def op_memory_discard(self, code, imm) -> None:
        t = self.index_type(imm)
        n, addr = self.pop(), self.pop()
        self.builtin("memory_discard", [addr, n], (t, t), None, (imm,))

    def op_memory_map(self, code, imm) -> None:
        t = self.index_type(imm)
        prot, n, addr = self.pop(), self.pop(), self.pop()
        self.builtin("memory_map", [addr, n, prot], (t, t, I32), t, (imm,))

    def op_memory_unmap(self, code, imm) -> None:
        t = self.index_type(imm)
        n, addr = self.pop(), self.pop()
        self.builtin("memory_unmap", [addr, n], (t, t), None, (imm,))

    def op_memory_protect(self, code, imm) -> None:
        t = self.index_type(imm)
        prot, n, addr = self.pop(), self.pop(), self.pop()
        self.builtin("memory_protect", [addr, n, prot], (t, t, I32), None, (imm,))

    # -- tables and references --------------------------------------------------------------------

    def table_index_type(self, table: int) -> int:
        return self.env.table_types[table].index_type

    def table_elem_type(self, table: int) -> int:
        return self.env.table_types[table].elem_type

    def op_table_get(self, code, imm) -> None:
        self.builtin("table_get", [self.pop()], (self.table_index_type(imm),), self.table_elem_type(imm), (imm,))

    def op_table_set(self, code, imm) -> None:
        value, index = self.pop(), self.pop()
        self.builtin("table_set", [index, value], (self.table_index_type(imm), self.table_elem_type(imm)), None,
                     (imm,))

    def op_table_size(self, code, imm) -> None:
        self.builtin("table_size", [], (), self.table_index_type(imm), (imm,))

    def op_table_grow(self, code, imm) -> None:
        n, init = self.pop(), self.pop()
        t = self.table_index_type(imm)
        self.builtin("table_grow", [init, n], (self.table_elem_type(imm), t), t, (imm,))

    def op_table_fill(self, code, imm) -> None:
        n, value, index = self.pop(), self.pop(), self.pop()
        t = self.table_index_type(imm)
        self.builtin("table_fill", [index, value, n], (t, self.table_elem_type(imm), t), None, (imm,))

    def op_table_copy(self, code, imm) -> None:
        dst_t, src_t = imm
        td, ts = self.table_index_type(dst_t), self.table_index_type(src_t)
        n, src, dst = self.pop(), self.pop(), self.pop()
        tn = I64 if (td == I64 and ts == I64) else I32
        self.builtin("table_copy", [dst, src, n], (td, ts, tn), None, (dst_t, src_t))

    def op_table_init(self, code, imm) -> None:
        elem, table = imm
        n, src, dst = self.pop(), self.pop(), self.pop()
        self.builtin("table_init", [dst, src, n], (self.table_index_type(table), I32, I32), None, (table, elem))

    def op_elem_drop(self, code, imm) -> None:
        self.builtin("elem_drop", [], (), None, (imm,))

    def op_ref_null(self, code, imm) -> None:
        self.push_const(FUNCREF if imm == FUNCREF else EXTERNREF, 0)

    def op_ref_is_null(self, code, imm) -> None:
        ra = self.pop_operand()
        dst = self.alloc(INT)
        self.m.int_eqz(dst, ra)
        self.push_reg(I32, dst)

    def op_ref_func(self, code, imm) -> None:
        dst = self.alloc(INT)
        self.m.load_vmctx(dst, self.env.layout.func(imm))
        self.push_reg(FUNCREF, dst)


DISPATCH: dict = {
    op.NOP: FuncCodegen.op_nop, op.UNREACHABLE: FuncCodegen.op_unreachable,
    op.BLOCK_OP: FuncCodegen.op_block, op.LOOP: FuncCodegen.op_block, op.IF: FuncCodegen.op_if,
    op.ELSE: FuncCodegen.op_else, op.END: FuncCodegen.op_end, op.BR: FuncCodegen.op_br,
    op.BR_IF: FuncCodegen.op_br_if, op.BR_TABLE_OP: FuncCodegen.op_br_table, op.RETURN: FuncCodegen.op_return,
    op.CALL: FuncCodegen.op_call, op.RETURN_CALL: FuncCodegen.op_call,
    op.CALL_INDIRECT_OP: FuncCodegen.op_call_indirect, op.RETURN_CALL_INDIRECT: FuncCodegen.op_call_indirect,
    op.DROP: FuncCodegen.op_drop, op.SELECT: FuncCodegen.op_select, op.SELECT_TYPED: FuncCodegen.op_select,
    op.LOCAL_GET: FuncCodegen.op_local_get, op.LOCAL_SET: FuncCodegen.op_local_set,
    op.LOCAL_TEE: FuncCodegen.op_local_tee, op.GLOBAL_GET: FuncCodegen.op_global_get,
    op.GLOBAL_SET: FuncCodegen.op_global_set,
    op.I32_CONST_OP: FuncCodegen.op_const, op.I64_CONST_OP: FuncCodegen.op_const,
    op.F32_CONST_OP: FuncCodegen.op_const, op.F64_CONST_OP: FuncCodegen.op_const,
    op.MEMORY_SIZE: FuncCodegen.op_memory_size, op.MEMORY_GROW: FuncCodegen.op_memory_grow,
    op.MEMORY_FILL: FuncCodegen.op_memory_fill, op.MEMORY_COPY: FuncCodegen.op_memory_copy,
    op.MEMORY_INIT: FuncCodegen.op_memory_init, op.DATA_DROP: FuncCodegen.op_data_drop,
    op.MEMORY_DISCARD: FuncCodegen.op_memory_discard,
    op.MEMORY_MAP: FuncCodegen.op_memory_map,
    op.MEMORY_UNMAP: FuncCodegen.op_memory_unmap,
    op.MEMORY_PROTECT: FuncCodegen.op_memory_protect,
    op.TABLE_GET: FuncCodegen.op_table_get, op.TABLE_SET: FuncCodegen.op_table_set,
    op.TABLE_SIZE: FuncCodegen.op_table_size, op.TABLE_GROW: FuncCodegen.op_table_grow,
    op.TABLE_FILL: FuncCodegen.op_table_fill, op.TABLE_COPY: FuncCodegen.op_table_copy,
    op.TABLE_INIT: FuncCodegen.op_table_init, op.ELEM_DROP: FuncCodegen.op_elem_drop,
    op.REF_NULL: FuncCodegen.op_ref_null, op.REF_IS_NULL: FuncCodegen.op_ref_is_null,
    op.REF_FUNC: FuncCodegen.op_ref_func,
}
for _code in op.LOADS:
    DISPATCH[_code] = FuncCodegen.op_load
for _code in op.STORES:
    DISPATCH[_code] = FuncCodegen.op_store
for _code, _name in op.NAMES.items():
    if _code in DISPATCH or _code not in op.SIGNATURES:
        continue
    _params, _results = op.SIGNATURES[_code]
    _family, _, _what = _name.partition(".")
    if _family in ("i32", "i64") and _what in ("eqz", "eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u",
                                                "le_s", "le_u", "ge_s", "ge_u"):
        DISPATCH[_code] = FuncCodegen.op_int_compare
    elif _family in ("i32", "i64") and len(_params) == 2 and _results == (_params[0],):
        DISPATCH[_code] = FuncCodegen.op_int_binary
    elif _family in ("i32", "i64") and _what in ("clz", "ctz", "popcnt", "extend8_s", "extend16_s", "extend32_s"):
        DISPATCH[_code] = FuncCodegen.op_int_unary
    elif _family in ("f32", "f64") and len(_params) == 2 and _results[0] == _params[0]:
        DISPATCH[_code] = FuncCodegen.op_float_binary
    elif _family in ("f32", "f64") and len(_params) == 2:
        DISPATCH[_code] = FuncCodegen.op_float_compare
    elif _family in ("f32", "f64") and _params == _results:
        DISPATCH[_code] = FuncCodegen.op_float_unary
    elif len(_params) == 1 and len(_results) == 1:
        DISPATCH[_code] = FuncCodegen.op_convert
