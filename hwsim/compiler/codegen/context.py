"""The value stack and register allocation: where each WebAssembly operand and local is while code is generated.

WebAssembly's operand stack is a list of :class:`Operand` entries, each saying
where its value is (:class:`ValKind`)::

    REG    in a register of the operand pool (owned by that entry)
    CONST  a constant not yet materialised
    LOCAL  a read of local i not yet done (locals live in callee-saved registers or frame slots)
    SLOT   in the spill slot of its stack depth (slot d holds the value at depth d)
    CMP    an i32 comparison not computed yet: the next instruction (br_if, if) branches on it directly

Registers are taken from the backend's pools; when they run out the deepest
register value is spilled.  Locals are homed once per function: the most used
ones (weighted by loop depth, :mod:`.prepass`) in registers, the rest in frame
slots.  A register is caller-saved (no save, no restore) for every local of a
function that calls nothing, and for the integer locals dead at every call
(:func:`.prepass.call_crossing`) of one that calls; callee-saved otherwise.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ...wasm.types import F32, F64, I32
from ..errors import CompilerBug
from ..masm import IntCmp, MacroAssembler
from ..regs import FLOAT, INT, Reg, RegClass
from ..stackmaps import holds_gc_word


class ValKind(enum.Enum):
    """Where an operand-stack value is; ``Operand.x`` is the register, the constant's bits, the local or the depth."""

    REG = "in a register"
    CONST = "a constant"
    LOCAL = "a pending read of a local"
    SLOT = "in its spill slot"
    CMP = "a pending comparison"


REG, CONST, LOCAL, SLOT, CMP = ValKind.REG, ValKind.CONST, ValKind.LOCAL, ValKind.SLOT, ValKind.CMP
_EQ, _NE = IntCmp.EQ, IntCmp.NE  # (looked up once: an enum member read off its class is slow)


@dataclass(slots=True)
class Comparison:
    """``a cond b`` on registers held for it (``owned``: free them once it is used); ``b`` None is zero, with
    ``EQ`` (eqz) or ``NE`` (a value as a branch condition).  Never changed once made (not frozen: a frozen
    dataclass takes four times as long to make, and a comparison is made before most branches)."""

    cond: IntCmp
    a: Reg
    a_owned: bool
    b: Reg | None
    b_owned: bool


def reg_class(ty: int) -> RegClass:
    """The register class that holds a value of WebAssembly type ``ty``."""
    return FLOAT if ty == F32 or ty == F64 else INT


class Operand:
    """One operand-stack entry: a value of type ``ty`` that is ``kind``, with ``x`` saying which."""

    __slots__ = ("kind", "ty", "x")

    def __init__(self, kind: ValKind, ty: int, x) -> None:
        self.kind, self.ty, self.x = kind, ty, x

    def __repr__(self) -> str:
        return f"Operand({self.kind.name}, {self.ty:#x}, {self.x!r})"


@dataclass
class LocalHome:
    """Where a local lives for the whole function: a callee-saved register or a frame slot."""

    ty: int
    reg: Reg | None = None
    slot: int | None = None  # frame offset


class CodeGenContext:
    """The operand stack, the free registers and the locals' homes of the function being compiled."""

    def __init__(self, masm: MacroAssembler, local_types: list[int]) -> None:
        self.masm = masm
        self.local_types = local_types
        self.stack: list[Operand] = []
        self.free = {INT: list(reversed(masm.int_pool)), FLOAT: list(reversed(masm.float_pool))}
        self.homes: list[LocalHome] = [LocalHome(t) for t in local_types]
        self.home_regs: list[Reg | None] = []  # per local: its home register, or None (after home_locals)
        self.caller_saved_locals = False  # some locals live in caller-saved registers: no call may be made
        self.call_clobbered: frozenset[int] = frozenset()  # locals in caller-saved registers of a function that calls
        self._ref_homes: tuple[int, ...] | None = None

    # -- locals ------------------------------------------------------------------------------------

    def home_locals(
        self, weights: list[float], aux_slots: int, has_calls: bool = True, crossing: int | None = None
    ) -> None:
        """Give the heaviest locals the callee-saved registers, the rest frame slots; lay the frame out.

        A function that calls nothing (``has_calls`` False) homes locals in some caller-saved registers
        first (``int_leaf_local_regs``, taken out of the operand pool): they cost no save and restore.  A
        function that calls does so for the integer locals no call separates from a read of them (bit
        ``i`` of ``crossing`` clear, :func:`.prepass.call_crossing`; None: every local may cross a call),
        in ``int_call_local_regs``; never for a reference (a stack map names only callee-saved homes)."""
        masm = self.masm
        homes = self.homes
        order = sorted(range(len(homes)), key=weights.__getitem__, reverse=True)  # (stable: ties keep their order)
        if not has_calls:
            caller, crossing = list(masm.int_leaf_local_regs), 0
            self.caller_saved_locals = bool(caller)
        else:
            caller = list(masm.int_call_local_regs) if crossing is not None else []
        int_regs, float_regs = list(masm.int_local_regs), list(masm.float_local_regs)
        clobbered = []
        for i in order:
            h = homes[i]
            if weights[i] <= 0:
                break  # (heaviest first: no local after this one is used either)
            if reg_class(h.ty) == FLOAT:
                if float_regs:
                    h.reg = float_regs.pop(0)
            elif caller and not (crossing >> i & 1) and (not has_calls or not holds_gc_word(h.ty)):  # type: ignore[operator]
                h.reg = caller.pop(0)
                self.take(h.reg)  # no longer an operand register
                clobbered.append(i)
            elif int_regs:
                h.reg = int_regs.pop(0)
        self.call_clobbered = frozenset(clobbered) if has_calls else frozenset()
        leaf = set(masm.int_leaf_local_regs) | set(masm.int_call_local_regs)
        saved = [h.reg for h in homes if h.reg is not None and h.reg not in leaf]
        slot_locals = [h for h in homes if h.reg is None]
        masm.begin_frame(saved, aux_slots, len(slot_locals))
        for i, h in enumerate(slot_locals):
            h.slot = masm.local_offset(i)
        self.home_regs = [h.reg for h in homes]

    def zero_locals(self, first: int) -> None:
        """Declared locals (from index ``first``) start at zero."""
        for h in self.homes[first:]:
            if h.reg is not None:
                self.masm.zero_reg(h.reg)
            else:
                assert h.slot is not None  # a local without a register has a slot (home_locals)
                self.masm.zero_slot(h.slot)

    def materialize_local(self, index: int) -> None:
        """Before local ``index`` changes, pending reads of it take the current value."""
        for v in self.stack:
            if v.kind is LOCAL and v.x == index:
                reg, _ = self.to_reg(v)
                copy = self.alloc(reg.cls) if self.homes[index].reg is not None else reg
                if copy is not reg:
                    self.masm.mov(copy, reg)
                v.kind, v.x = REG, copy

    # -- registers ---------------------------------------------------------------------------------

    def alloc(self, cls: RegClass) -> Reg:
        """A free register of class ``cls``, spilling the deepest register value when there is none."""
        free = self.free[cls]
        if free:
            return free.pop()
        for depth, v in enumerate(self.stack):
            if v.kind is REG and v.x.cls == cls:
                reg = v.x
                self.masm.store_slot(reg, self.masm.slot_offset(depth), v.ty)
                v.kind, v.x = SLOT, depth
                return reg
        raise CompilerBug("out of registers")  # a value stack holds at most what it holds

    def free_reg(self, reg: Reg) -> None:
        self.free[reg.cls].append(reg)

    def take(self, reg: Reg) -> None:
        """Mark a specific register allocated (it must be free)."""
        self.free[reg.cls].remove(reg)

    def release(self, reg: Reg, owned: bool) -> None:
        if owned:
            self.free_reg(reg)

    # -- the operand stack ---------------------------------------------------------------------------

    def push_reg(self, ty: int, reg: Reg) -> None:
        self.stack.append(Operand(REG, ty, reg))

    def push_const(self, ty: int, bits: int) -> None:
        self.stack.append(Operand(CONST, ty, bits))

    def push_local(self, index: int) -> None:
        self.stack.append(Operand(LOCAL, self.local_types[index], index))

    def push_slot(self, ty: int, depth: int) -> None:
        self.stack.append(Operand(SLOT, ty, depth))

    def pop(self) -> Operand:
        return self.stack.pop()

    def top(self, n: int) -> list[Operand]:
        """The top ``n`` values, deepest first (the stack is unchanged)."""
        return self.stack[len(self.stack) - n :] if n else []

    def truncate(self, height: int) -> None:
        """Drop the values above ``height``, freeing their registers."""
        for v in self.stack[height:]:
            if v.kind is REG:
                self.free_reg(v.x)
        del self.stack[height:]

    def push_comparison(self, comparison: Comparison) -> None:
        self.stack.append(Operand(CMP, I32, comparison))

    def release_comparison(self, c: Comparison) -> None:
        self.release(c.a, c.a_owned)
        if c.b is not None:
            self.release(c.b, c.b_owned)

    def pop_comparison(self) -> Comparison:
        """The branch condition on top of the stack: a pending comparison, or a value tested against zero."""
        v = self.pop()
        if v.kind is CMP:
            return v.x
        reg, owned = self.to_reg(v)
        return Comparison(_NE, reg, owned, None, False)

    def to_reg(self, v: Operand) -> tuple[Reg, bool]:
        """A register holding ``v``; ``owned`` is False for a local's home (read it, never write it)."""
        if v.kind is REG:
            return v.x, True
        if v.kind is CMP:  # computed after all (nothing branches on it): 0 or 1
            c = v.x
            self.release_comparison(c)
            dst = self.alloc(INT)
            if c.b is not None:
                self.masm.int_compare(c.cond, dst, c.a, c.b)
            elif c.cond is _EQ:
                self.masm.int_eqz(dst, c.a)
            else:
                raise CompilerBug("a pending comparison with zero other than eqz")
            return dst, True
        if v.kind is LOCAL:
            home = self.homes[v.x]
            if home.reg is not None:
                return home.reg, False
            reg = self.alloc(reg_class(v.ty))
            self.masm.load_slot(reg, home.slot, v.ty)
            return reg, True
        reg = self.alloc(reg_class(v.ty))
        if v.kind is CONST:
            self.masm.load_const(reg, v.ty, v.x)
        else:
            self.masm.load_slot(reg, self.masm.slot_offset(v.x), v.ty)
        return reg, True

    def to_owned_reg(self, v: Operand) -> Reg:
        """A register holding ``v`` that the caller owns (may change, and frees): a local's home is copied."""
        reg, owned = self.to_reg(v)
        if owned:
            return reg
        copy = self.alloc(reg.cls)
        self.masm.mov(copy, reg)
        return copy

    def pop_reg(self) -> tuple[Reg, bool]:
        return self.to_reg(self.pop())

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

    # -- spilling --------------------------------------------------------------------------------------

    def spill_value(self, depth: int) -> None:
        """Move the value at ``depth`` into its spill slot."""
        v = self.stack[depth]
        if v.kind is CMP:
            reg, _ = self.to_reg(v)
            v.kind, v.x = REG, reg
        if v.kind is SLOT:
            if v.x != depth:
                raise CompilerBug("slot value at the wrong depth")
            return
        off = self.masm.slot_offset(depth)
        self._store_to_slot(v, off)
        if v.kind is REG:
            self.free_reg(v.x)
        v.kind, v.x = SLOT, depth

    def spill_all(self, keep_consts: bool = True) -> None:
        for depth, v in enumerate(self.stack):
            if v.kind is SLOT or (keep_consts and v.kind is CONST):
                continue
            self.spill_value(depth)

    def safepoint_locations(self) -> tuple[int, ...]:
        """The homes of the locals and the frame slots of the (spilled) operand values that may hold a GC
        reference, in the stack maps' encoding (compiler/stackmaps.py)."""
        masm = self.masm
        homes = self._ref_homes
        if homes is None:
            homes = self._ref_homes = tuple(
                masm.register_number(h.reg) if h.reg is not None else h.slot  # type: ignore[misc]
                for h in self.homes
                if holds_gc_word(h.ty)
            )
        return homes + tuple(masm.slot_offset(v.x) for v in self.stack if v.kind is SLOT and holds_gc_word(v.ty))

    def record_safepoint(self, first: int) -> None:
        """The stack map of the call just emitted (returning to ``masm.return_offsets[first:]``)."""
        masm = self.masm
        locs = self.safepoint_locations()
        if locs:
            masm.stack_maps += [(offset, locs) for offset in masm.return_offsets[first:]]

    def spill_regs(self, height: int | None = None) -> None:
        """Spill register values below ``height`` (all: None) before a call clobbers the caller-saved
        pools, and pending reads of the locals that live in caller-saved registers (``call_clobbered``)."""
        clobbered = self.call_clobbered
        for depth, v in enumerate(self.stack[:height]):
            if v.kind is REG or (v.kind is LOCAL and v.x in clobbered):
                self.spill_value(depth)

    def move_to_slots(self, values: list[Operand], base: int) -> None:
        """Store ``values`` into slots base, base+1, ... (they sit at or above those depths); the
        values themselves are unchanged (this may run on a conditional path)."""
        for i, v in enumerate(values):
            depth = base + i
            off = self.masm.slot_offset(depth)
            if v.kind is SLOT:
                if v.x != depth:
                    self.masm.copy_slot(off, self.masm.slot_offset(v.x), v.ty)
            else:
                self._store_to_slot(v, off)

    def _store_to_slot(self, v: Operand, off: int) -> None:
        """Store a REG, CONST or LOCAL value at frame offset ``off``."""
        if v.kind is REG:
            self.masm.store_slot(v.x, off, v.ty)
        elif v.kind is CONST:
            self.masm.store_const_to_slot(off, v.ty, v.x)
        else:
            home = self.homes[v.x]
            if home.reg is not None:
                self.masm.store_slot(home.reg, off, v.ty)
            else:
                self.masm.copy_slot(off, home.slot, v.ty)
