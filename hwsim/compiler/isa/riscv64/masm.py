"""The RV64 macro-assembler: instruction selection, frames, calls, trap sites, branch fixups.

Frame of a compiled function (fp = s0 = sp at entry; everything addressed from fp)::

    fp -  8   ra
    fp - 16   caller's fp
    fp - 24   callee-saved registers homing locals (one word each)
              saved vmctx and memory-0 base (around calls into another instance)
              aux slots (the params of ``if`` blocks, for their ``else``)
              locals that live in memory
              operand spill slots: slot d at (operand base - 8 d)
    sp        (fp - frame size, 16-aligned)

Branches: a function is first assembled with short conditional branches
(+-4 KiB); if one cannot reach its label, :class:`BranchOutOfRange` makes the
module compiler assemble it again with every conditional branch long (an
inverted short branch over a ``jal``, +-1 MiB).  Calls between functions are
``jal`` (+-1 MiB) resolved when the module is laid out, or ``auipc``+``jalr``
in far-call mode for modules whose code exceeds that range.

Traps: a conditional trap branches to a cold stub at the end of the function;
every stub is one ``ebreak`` whose address is recorded with its trap code and
WebAssembly offset (the trap table).

Metering (metered code only): the fuel count lives in gp (regs.FUEL), so
counting is one instruction and a checkpoint one more, with its slow path in a
cold stub after the trap stubs::

    addi gp, gp, -cost      # counting, where straight-line code ends (fuel_consume)
    ...
    blez gp, stub           # a checkpoint: function entry, loop header (fuel_checkpoint)
  back:
    ...
  stub:                     # in the pc map at the checkpoint's WebAssembly offset
    li   t6, <builtin>
    ecall                   # the runtime: may refill the count, trap, or run wasm (registers kept)
    j    back
"""

from __future__ import annotations

import sys
from array import array

from ....riscv import asm
from ....wasm.atomics import RmwOp
from ....wasm.types import F32, F64, I32, I64, MemoryType
from ... import abi
from ...abi import AbiLoc, RegLoc
from ...errors import CompileError, CompilerBug
from ...frames import FrameInfo
from ...masm import (
    BranchOutOfRange,
    CallOutOfRange,
    Conversion,
    FloatBinOp,
    FloatCmp,
    FloatUnOp,
    IntBinOp,
    IntCmp,
    IntUnOp,
    Label,
    LoadKind,
    StoreKind,
    WideOp,
)
from ...regs import FLOAT, INT, Reg, RegClass
from ...traps import TrapCode
from . import regs as R
from . import simdlib
from .abi import abi_locations

A = asm.memoized()  # the encoders, each remembering its recent words (the compiler's innermost calls)

_LOADS = {
    LoadKind.I32_LOAD: "lw",
    LoadKind.I64_LOAD: "ld",
    LoadKind.F32_LOAD: "flw",
    LoadKind.F64_LOAD: "fld",
    LoadKind.I32_LOAD8_S: "lb",
    LoadKind.I32_LOAD8_U: "lbu",
    LoadKind.I32_LOAD16_S: "lh",
    LoadKind.I32_LOAD16_U: "lhu",
    LoadKind.I64_LOAD8_S: "lb",
    LoadKind.I64_LOAD8_U: "lbu",
    LoadKind.I64_LOAD16_S: "lh",
    LoadKind.I64_LOAD16_U: "lhu",
    LoadKind.I64_LOAD32_S: "lw",
    LoadKind.I64_LOAD32_U: "lwu",
}
_STORES = {
    StoreKind.I32_STORE: "sw",
    StoreKind.I64_STORE: "sd",
    StoreKind.F32_STORE: "fsw",
    StoreKind.F64_STORE: "fsd",
    StoreKind.I32_STORE8: "sb",
    StoreKind.I32_STORE16: "sh",
    StoreKind.I64_STORE8: "sb",
    StoreKind.I64_STORE16: "sh",
    StoreKind.I64_STORE32: "sw",
}
_FAR_LOADS = {1: "lbu", 2: "lhu", 4: "lw", 8: "ld"}  # far loads zero-extend (an i32 load keeps the sign)
_FAR_STORES = {1: "sb", 2: "sh", 4: "sw", 8: "sd"}
_AMO_OPS = {RmwOp.ADD: "add", RmwOp.SUB: "add", RmwOp.AND: "and", RmwOp.OR: "or", RmwOp.XOR: "xor", RmwOp.XCHG: "swap"}
_RMW_WORD_OPS = {RmwOp.ADD: A.add, RmwOp.SUB: A.sub, RmwOp.AND: A.and_, RmwOp.OR: A.or_, RmwOp.XOR: A.xor}
_INVERT = {"beq": "bne", "bne": "beq", "blt": "bge", "bge": "blt", "bltu": "bgeu", "bgeu": "bltu"}
_ROUNDING = {
    FloatUnOp.CEIL: A.RM_RUP,
    FloatUnOp.FLOOR: A.RM_RDN,
    FloatUnOp.TRUNC: A.RM_RTZ,
    FloatUnOp.NEAREST: A.RM_RNE,
}

# Integer operators with one instruction each: (64-bit, 32-bit); and with an immediate form.
_INT_SIMPLE = {
    IntBinOp.ADD: (A.add, A.addw),
    IntBinOp.SUB: (A.sub, A.subw),
    IntBinOp.MUL: (A.mul, A.mulw),
    IntBinOp.AND: (A.and_, A.and_),
    IntBinOp.OR: (A.or_, A.or_),
    IntBinOp.XOR: (A.xor, A.xor),
    IntBinOp.SHL: (A.sll, A.sllw),
    IntBinOp.SHR_S: (A.sra, A.sraw),
    IntBinOp.SHR_U: (A.srl, A.srlw),
}
_INT_DIV = {
    IntBinOp.DIV_S: (A.div, A.divw),
    IntBinOp.DIV_U: (A.divu, A.divuw),
    IntBinOp.REM_S: (A.rem, A.remw),
    IntBinOp.REM_U: (A.remu, A.remuw),
}
_FLOAT_SIMPLE = {FloatBinOp.ADD: A.fadd, FloatBinOp.SUB: A.fsub, FloatBinOp.MUL: A.fmul, FloatBinOp.DIV: A.fdiv}
_INT_LOGIC_IMM = {IntBinOp.AND: A.andi, IntBinOp.OR: A.ori, IntBinOp.XOR: A.xori}
_INT_SHIFT_IMM = {IntBinOp.SHL: (A.slli, A.slliw), IntBinOp.SHR_S: (A.srai, A.sraiw), IntBinOp.SHR_U: (A.srli, A.srliw)}
_SIGNED_CMP = {IntCmp.LT_S, IntCmp.GT_S, IntCmp.LE_S, IntCmp.GE_S}
# A comparison as one branch: (branch taken when it holds, operands swapped).
_COMPARE_BRANCH = {
    IntCmp.EQ: ("beq", False),
    IntCmp.NE: ("bne", False),
    IntCmp.LT_S: ("blt", False),
    IntCmp.LT_U: ("bltu", False),
    IntCmp.GT_S: ("blt", True),
    IntCmp.GT_U: ("bltu", True),
    IntCmp.LE_S: ("bge", True),
    IntCmp.LE_U: ("bgeu", True),
    IntCmp.GE_S: ("bge", False),
    IntCmp.GE_U: ("bgeu", False),
}

# Conversions by shape.  int -> float: (f64 result, signed, i64 source);
# float -> int: (i64 result, f64 source, signed, saturating).
_INT_TO_FLOAT = {
    Conversion.F32_CONVERT_I32_S: (False, True, False),
    Conversion.F32_CONVERT_I32_U: (False, False, False),
    Conversion.F32_CONVERT_I64_S: (False, True, True),
    Conversion.F32_CONVERT_I64_U: (False, False, True),
    Conversion.F64_CONVERT_I32_S: (True, True, False),
    Conversion.F64_CONVERT_I32_U: (True, False, False),
    Conversion.F64_CONVERT_I64_S: (True, True, True),
    Conversion.F64_CONVERT_I64_U: (True, False, True),
}
_FLOAT_TO_INT = {
    Conversion.I32_TRUNC_F32_S: (False, False, True, False),
    Conversion.I32_TRUNC_F32_U: (False, False, False, False),
    Conversion.I32_TRUNC_F64_S: (False, True, True, False),
    Conversion.I32_TRUNC_F64_U: (False, True, False, False),
    Conversion.I64_TRUNC_F32_S: (True, False, True, False),
    Conversion.I64_TRUNC_F32_U: (True, False, False, False),
    Conversion.I64_TRUNC_F64_S: (True, True, True, False),
    Conversion.I64_TRUNC_F64_U: (True, True, False, False),
    Conversion.I32_TRUNC_SAT_F32_S: (False, False, True, True),
    Conversion.I32_TRUNC_SAT_F32_U: (False, False, False, True),
    Conversion.I32_TRUNC_SAT_F64_S: (False, True, True, True),
    Conversion.I32_TRUNC_SAT_F64_U: (False, True, False, True),
    Conversion.I64_TRUNC_SAT_F32_S: (True, False, True, True),
    Conversion.I64_TRUNC_SAT_F32_U: (True, False, False, True),
    Conversion.I64_TRUNC_SAT_F64_S: (True, True, True, True),
    Conversion.I64_TRUNC_SAT_F64_U: (True, True, False, True),
}
_MOVES = {  # conversions that are one instruction on RV64
    Conversion.I32_WRAP_I64: lambda d, a: A.addiw(d, a, 0),
    Conversion.I64_EXTEND_I32_S: lambda d, a: A.addiw(d, a, 0),
    Conversion.F32_DEMOTE_F64: A.fcvt_s_d,
    Conversion.F64_PROMOTE_F32: A.fcvt_d_s,
    Conversion.I32_REINTERPRET_F32: A.fmv_x_w,
    Conversion.I64_REINTERPRET_F64: A.fmv_x_d,
    Conversion.F32_REINTERPRET_I32: A.fmv_w_x,
    Conversion.F64_REINTERPRET_I64: A.fmv_d_x,
}


# Branch fixups (RiscvMasm.fixups: word index, base word, label): a conditional branch's word with offset 0
# (registers and condition, cached), or _JAL_BASE for a jump; finish() adds the offset.
_BRANCH_BASE: dict[tuple[str, int, int], int] = {}
_JAL_BASE = A.jal(0, 0)
_LI: dict[tuple[int, int], tuple[int, ...]] = {}  # (register, value) -> li's words: constants repeat

# Operations whose words depend on their operands alone, remembered across functions (registers are interned,
# so a key hashes in C): (register, type, bits) -> load_const's words; (op, wide, dst, a, b) -> int_binary's
# words (not division's: its trap branches take labels); (op, wide, bits) -> int_imm_ok.
_CONST_WORDS: dict[tuple, tuple[int, ...]] = {}
_INT_BINARY_WORDS: dict[tuple, tuple[int, ...]] = {}
_IMM_OK: dict[tuple, bool] = {}
_REMEMBERED = 1 << 16  # entries per table, at most (a table that fills up starts again)


def _remember(table: dict, key: tuple, value):
    """``table[key] = value`` (a list as a tuple), the table emptied first when full; ``value``."""
    if len(table) >= _REMEMBERED:
        table.clear()
    if isinstance(value, list):
        value = tuple(value)
    table[key] = value
    return value


def _fits12(v: int) -> bool:
    return -2048 <= v < 2048


def _signed(bits: int, width: int) -> int:
    bits &= (1 << width) - 1
    return bits - (1 << width) if bits >> (width - 1) else bits


class RiscvMasm:
    """The RV64 :class:`~hwsim.compiler.masm.MacroAssembler`: one instance assembles one function."""

    int_pool = R.INT_POOL
    float_pool = R.FLOAT_POOL
    int_local_regs = R.INT_LOCALS
    float_local_regs = R.FLOAT_LOCALS
    int_leaf_local_regs = R.INT_LEAF_LOCALS
    int_call_local_regs = R.INT_CALL_LOCALS
    CALL_TARGET = R.T6  # the funcref record of a call through a reference

    def __init__(self, *, long_branches: bool = False, far_calls: bool = False, metering: bool = False) -> None:
        """``metering``: the code counts fuel in gp (codegen/fuel.py), which then homes no local."""
        self.long_branches = long_branches
        self.far_calls = far_calls
        self.int_local_regs = R.INT_LOCALS if metering else R.INT_LOCALS_UNMETERED
        self.words: list[int] = []
        self.fixups: list[tuple[int, int, Label]] = []  # (word index, base word, label): see _BRANCH_BASE
        self.call_fixups: list[tuple[int, int, bool]] = []  # (code offset, func index, far)
        self.helper_fixups: list[tuple[int, int, bool]] = []  # (code offset, SIMD helper offset, far)
        self.trap_sites: list[tuple[int, TrapCode, int]] = []  # (code offset, code, wasm offset)
        self.return_offsets: list[int] = []  # the code offset each call and builtin ecall returns to
        self.stack_maps: list[tuple[int, tuple[int, ...]]] = []  # (return offset, locations): the code generator's
        self.cold: list[tuple[Label, TrapCode, int, tuple]] = []  # (stub, code, wasm offset, words before)
        # (stub, back, builtin id, wasm offset, stack map or None)
        self.checkpoints: list[tuple[Label, Label, int, int, tuple[int, ...] | None]] = []
        # (stub, back, wasm offset, operand registers, static operands, builtin id): bulk memory's host path
        self.bulk_stubs: list[tuple[Label, Label, int, tuple[int, ...], tuple[int, ...], int]] = []
        self.pc_map = array("I")  # flat (code offset, wasm offset) pairs: made by finish() from the marks
        # code offset -> wasm offset of the last mark() there (a dict keeps each key's first place: the code
        # offsets never decrease, so its keys are in order)
        self._marks: dict[int, int] = {}
        self.wasm_offset = 0
        self.max_depth = 0
        self._frame_patch: int | None = None
        self._pad_patches: list[int] = []  # landing pads: sp = fp - frame size, patched in finish()
        self.prologue_end = 0
        self.epilogues: list[list[int]] = []  # [start, end] code offsets where the CFA is sp (frames.py)
        self._restore_words: tuple[int, ...] | None = None  # an epilogue's restores (after begin_frame)

    # -- emission helpers ------------------------------------------------------------------

    def emit(self, *words: int) -> None:
        """Append instruction words (one word is appended directly: ``self.words.append``)."""
        self.words.extend(words)

    def offset(self) -> int:
        return 4 * len(self.words)

    def mark(self, wasm_offset: int) -> None:
        # Where several marks share a code offset (instructions that generated no code), the last one wins.
        self.wasm_offset = wasm_offset
        self._marks[4 * len(self.words)] = wasm_offset

    def new_label(self) -> Label:
        return Label()

    def bind(self, label: Label) -> None:
        if label.pos is not None:
            raise CompilerBug("label bound twice")
        label.pos = len(self.words)

    def li(self, rd, value: int) -> None:
        words = _LI.get((rd, value))
        if words is None:
            if len(_LI) >= 1 << 16:
                _LI.clear()
            words = _LI[rd, value] = tuple(A.li_words(rd, value))
        self.words.extend(words)

    def scratch(self, cls: RegClass) -> Reg:
        return R.T4 if cls == INT else R.FT10

    # -- branches ------------------------------------------------------------------------------

    def _branch(self, kind: str, rs1, rs2, label: Label) -> None:
        if self.long_branches:
            self.words.append(getattr(A, _INVERT[kind])(rs1, rs2, 8))
            self.fixups.append((len(self.words), _JAL_BASE, label))
            self.words.append(A.NOP)
        else:
            base = _BRANCH_BASE.get((kind, rs1, rs2))
            if base is None:
                base = _BRANCH_BASE[kind, rs1, rs2] = getattr(A, kind)(rs1, rs2, 0)
            self.fixups.append((len(self.words), base, label))
            self.words.append(A.NOP)

    def jump(self, label: Label) -> None:
        self.fixups.append((len(self.words), _JAL_BASE, label))
        self.words.append(A.NOP)

    def branch_compare(self, cond: IntCmp, a: Reg, b: Reg | None, label: Label, when: bool) -> None:
        kind, swap = _COMPARE_BRANCH[cond]
        if not when:
            kind = _INVERT[kind]
        r1, r2 = a.num, 0 if b is None else b.num
        if swap:
            self._branch(kind, r2, r1, label)
        else:
            self._branch(kind, r1, r2, label)

    def _trap_branch(self, kind: str, rs1, rs2, code: TrapCode, prefix: tuple = ()) -> None:
        """Branch to a cold ``ebreak`` (trap ``code``); ``prefix`` words run first (to leave the
        trap handler operands in scratch registers)."""
        label = Label()
        self.cold.append((label, code, self.wasm_offset, prefix))
        self._branch(kind, rs1, rs2, label)

    def trap(self, code: TrapCode) -> None:
        self.trap_sites.append((self.offset(), code, self.wasm_offset))
        self.words.append(A.EBREAK)

    def jump_table(self, index: Reg, labels: list[Label], default: Label) -> None:
        t4, t5 = R.T4.num, R.T5.num
        self.words.append(A.and_(t5, index.num, R.MASK32.num))
        self.li(t4, len(labels))
        self._branch("bgeu", t5, t4, default)
        self.emit(A.auipc(t4, 0), A.slli(t5, t5, 2), A.add(t4, t4, t5), A.jalr(0, t4, 16))
        for label in labels:
            self.jump(label)

    # -- frame ---------------------------------------------------------------------------------

    def begin_frame(self, saved: list[Reg], aux_slots: int, local_slots: int) -> None:
        self.saved = list(saved)
        self.saved_offsets = [-24 - 8 * i for i in range(len(saved))]
        after_saved = 16 + 8 * len(saved)
        self.saved_vmctx = -(after_saved + 8)
        self.saved_mem0 = -(after_saved + 16)
        self.aux_base = after_saved + 16
        self.aux_used = 0
        self.aux_count = aux_slots
        self.local_base = self.aux_base + 8 * aux_slots
        self.operand_base = self.local_base + 8 * local_slots

    def alloc_aux_slots(self, n: int) -> int:
        first = self.aux_used
        self.aux_used += n
        if self.aux_used > self.aux_count:
            raise CompilerBug("more aux slots than the pre-pass counted")
        return first

    def aux_offset(self, index: int) -> int:
        return -(self.aux_base + 8 * (index + 1))

    def local_offset(self, index: int) -> int:
        return -(self.local_base + 8 * (index + 1))

    def slot_offset(self, depth: int) -> int:
        if depth + 1 > self.max_depth:
            self.max_depth = depth + 1
        return -(self.operand_base + 8 * (depth + 1))

    def frame_size(self) -> int:
        return (self.operand_base + 8 * self.max_depth + 15) & ~15

    def prologue(self, early_return: tuple[IntCmp, Reg, Reg | None] | None = None) -> None:
        sp, fp, ra = R.SP.num, R.FP.num, R.RA.num
        self.emit(A.addi(sp, sp, -16), A.sd(ra, sp, 8), A.sd(fp, sp, 0), A.addi(fp, sp, 16))
        if early_return is not None:  # ra and fp saved, fp set, nothing else done: pop that and return
            cond, a, b = early_return
            go_on = Label()
            self.branch_compare(cond, a, b, go_on, False)
            self.words.append(A.addi(sp, fp, 0))
            self.epilogues.append([self.offset(), self.offset()])  # sp is the CFA from here ...
            self.emit(A.ld(fp, sp, -16), A.jalr(0, ra, 0))
            self._end_epilogue()
            self.bind(go_on)
        self._frame_patch = len(self.words)
        self.emit(A.NOP, A.NOP, A.sub(sp, sp, R.T5.num))  # lui/addiw t5, frame - 16: patched in finish()
        for reg, off in zip(self.saved, self.saved_offsets):
            self._mem("sd" if reg.cls == INT else "fsd", reg, R.FP, off)
        self.prologue_end = self.offset()

    def _restore_and_pop(self) -> None:
        sp, fp, ra = R.SP.num, R.FP.num, R.RA.num
        words = self._restore_words  # the same at every return of the function: made once
        if words is None:
            start = len(self.words)
            for reg, off in zip(self.saved, self.saved_offsets):
                self._mem("ld" if reg.cls == INT else "fld", reg, R.FP, off)
            self.emit(A.ld(ra, fp, -8), A.addi(sp, fp, 0))
            self._restore_words = tuple(self.words[start:])
        else:
            self.words.extend(words)
        self.epilogues.append([self.offset(), self.offset()])  # sp is the CFA from here ...
        self.words.append(A.ld(fp, sp, -16))

    def _end_epilogue(self) -> None:
        self.epilogues[-1][1] = self.offset()  # ... to here (after the return or tail jump)

    def epilogue_and_return(self) -> None:
        self._restore_and_pop()
        self.words.append(A.jalr(0, R.RA.num, 0))
        self._end_epilogue()

    def landing_pad(self) -> None:
        self._pad_patches.append(len(self.words))
        self.emit(A.NOP, A.NOP, A.sub(R.SP.num, R.FP.num, R.T5.num))  # lui/addiw t5, frame size: patched in finish()

    def frame_info(self, homes: list[tuple[Reg | None, int | None]], body: int) -> FrameInfo:
        """The function's frame for a debugger (compiler/frames.py): ``homes`` (register, slot) per local.
        (List comprehensions made tuples, not generator expressions: this runs once per function.)"""
        dwarf = R.dwarf_number
        return FrameInfo(
            self.prologue_end,
            body,
            tuple([(dwarf(reg), off) for reg, off in zip(self.saved, self.saved_offsets)]),
            tuple([(start, end) for start, end in self.epilogues]),
            tuple([slot if reg is None else dwarf(reg) for reg, slot in homes]),  # type: ignore[misc]
        )

    # -- memory operands -------------------------------------------------------------------------

    def _mem(self, insn: str, reg: Reg, base: Reg, off: int) -> None:
        """``insn reg, off(base)``, through t5 when ``off`` does not fit 12 bits."""
        r = reg.num
        if not _fits12(off):
            self.li(R.T5.num, off)
            self.words.append(A.add(R.T5.num, R.T5.num, base.num))
            base, off = R.T5, 0
        self.words.append(getattr(A, insn)(r, base.num, off))

    def store_slot(self, reg: Reg, off: int, ty: int) -> None:
        if reg.cls == FLOAT:
            self._mem("fsw" if ty == F32 else "fsd", reg, R.FP, off)
        else:
            self._mem("sd", reg, R.FP, off)

    def load_slot(self, reg: Reg, off: int, ty: int) -> None:
        if reg.cls == FLOAT:
            self._mem("flw" if ty == F32 else "fld", reg, R.FP, off)
        else:
            self._mem("ld", reg, R.FP, off)

    def copy_slot(self, dst_off: int, src_off: int, ty: int) -> None:
        self._mem("ld", R.T4, R.FP, src_off)
        self._mem("sd", R.T4, R.FP, dst_off)

    def store_const_to_slot(self, off: int, ty: int, bits: int) -> None:
        if bits == 0:
            self._mem("sd", R.ZERO, R.FP, off)
            return
        self.li(R.T4.num, self._const_value(ty, bits))
        self._mem("sd", R.T4, R.FP, off)

    def _const_value(self, ty: int, bits: int) -> int:
        if ty == I32:
            return _signed(bits, 32)
        if ty == F32:
            return bits & 0xFFFF_FFFF
        return _signed(bits, 64)

    def load_const(self, reg: Reg, ty: int, bits: int) -> None:
        key = (reg, ty, bits)
        words = _CONST_WORDS.get(key)
        if words is None:
            start = len(self.words)
            self._load_const(reg, ty, bits)
            words = _remember(_CONST_WORDS, key, self.words[start:])
        else:
            self.words.extend(words)

    def _load_const(self, reg: Reg, ty: int, bits: int) -> None:
        if reg.cls == INT:
            self.li(reg.num, self._const_value(ty, bits))
            return
        if bits == 0:
            self.words.append(A.fmv_d_x(reg.num, 0) if ty == F64 else A.fmv_w_x(reg.num, 0))
            return
        self.li(R.T4.num, self._const_value(ty, bits))
        self.words.append(A.fmv_d_x(reg.num, R.T4.num) if ty == F64 else A.fmv_w_x(reg.num, R.T4.num))

    def mov(self, dst: Reg, src: Reg) -> None:
        if dst.num == src.num and dst.cls == src.cls:  # (dst == src, without a call)
            return
        if dst.cls == INT:
            self.words.append(A.addi(dst.num, src.num, 0))
        else:
            self.words.append(A.fsgnj(dst.num, src.num, src.num, True))

    def zero_reg(self, reg: Reg) -> None:
        self.words.append(A.addi(reg.num, 0, 0) if reg.cls == INT else A.fmv_d_x(reg.num, 0))

    def zero_slot(self, off: int) -> None:
        self._mem("sd", R.ZERO, R.FP, off)

    def load_vmctx(self, dst: Reg, word: int) -> None:
        self._mem("ld", dst, R.VMCTX, word)

    # -- the calling convention ----------------------------------------------------------------------

    def abi_locations(self, types: tuple[int, ...]) -> tuple[AbiLoc, ...]:
        return abi_locations(types)

    def _abi_mem(self, insn: str, reg: Reg, off: int) -> None:
        base = off & ~0x7FF  # the ABI area is larger than a 12-bit offset reaches
        self.li(R.T5.num, abi.ABI_AREA + base)
        self.words.append(getattr(A, insn)(reg.num, R.T5.num, off - base))

    def _ld_insn(self, ty: int) -> str:
        return {F32: "flw", F64: "fld"}.get(ty, "ld")

    def _st_insn(self, ty: int) -> str:
        return {F32: "fsw", F64: "fsd"}.get(ty, "sd")

    def move_from_abi(self, reg: Reg, loc: AbiLoc, ty: int) -> None:
        if isinstance(loc, RegLoc):
            self.mov(reg, loc.reg)
        else:
            self._abi_mem(self._ld_insn(ty), reg, loc.offset)

    def spill_from_abi(self, off: int, loc: AbiLoc, ty: int) -> None:
        if isinstance(loc, RegLoc):
            self.store_slot(loc.reg, off, ty)
        else:
            self._abi_mem("ld", R.T4, loc.offset)
            self._mem("sd", R.T4, R.FP, off)

    def reg_to_abi(self, loc: AbiLoc, reg: Reg, ty: int) -> None:
        if isinstance(loc, RegLoc):
            self.mov(loc.reg, reg)
        else:
            self._abi_mem(self._st_insn(ty), reg, loc.offset)

    def slot_to_abi(self, loc: AbiLoc, off: int, ty: int) -> None:
        if isinstance(loc, RegLoc):
            self.load_slot(loc.reg, off, ty)
        else:
            self._mem("ld", R.T4, R.FP, off)
            self._abi_mem("sd", R.T4, loc.offset)

    def const_to_abi(self, loc: AbiLoc, ty: int, bits: int) -> None:
        if isinstance(loc, RegLoc):
            self.load_const(loc.reg, ty, bits)
        else:
            self.li(R.T4.num, self._const_value(ty, bits))
            self._abi_mem("sd", R.T4, loc.offset)

    # -- calls ---------------------------------------------------------------------------------------

    def call_direct(self, func_index: int) -> None:
        self.call_fixups.append((self.offset(), func_index, self.far_calls))
        if self.far_calls:
            self.emit(A.auipc(R.RA.num, 0), A.jalr(R.RA.num, R.RA.num, 0))
        else:
            self.words.append(A.jal(R.RA.num, 0))
        self.return_offsets.append(self.offset())

    def tail_call_direct(self, func_index: int) -> None:
        self._restore_and_pop()
        self.call_fixups.append((self.offset(), func_index, self.far_calls))
        if self.far_calls:
            self.emit(A.auipc(R.T5.num, 0), A.jalr(0, R.T5.num, 0))
        else:
            self.words.append(A.jal(0, 0))
        self._end_epilogue()

    def call_ref(self) -> None:
        """Call the funcref record in t6, switching vmctx and memory base if it is another instance's.

        The callee finds its record in t6 and, after a switch, the caller's vmctx in t4.
        """
        t5, t6, s1, s2, ra = R.T5.num, R.T6.num, R.VMCTX.num, R.MEM0.num, R.RA.num
        same, done = Label(), Label()
        self.words.append(A.ld(t5, t6, abi.FUNCREF_VMCTX))
        self._branch("beq", t5, s1, same)
        self._mem("sd", R.VMCTX, R.FP, self.saved_vmctx)
        self._mem("sd", R.MEM0, R.FP, self.saved_mem0)
        # t4 keeps the caller's vmctx for the callee (a host function's Caller reads it).
        self.emit(
            A.addi(R.T4.num, s1, 0),
            A.addi(s1, t5, 0),
            A.ld(s2, s1, 0),
            A.ld(t5, t6, abi.FUNCREF_CODE),
            A.jalr(ra, t5, 0),
        )
        self.return_offsets.append(self.offset())
        self._mem("ld", R.VMCTX, R.FP, self.saved_vmctx)
        self._mem("ld", R.MEM0, R.FP, self.saved_mem0)
        self.jump(done)
        self.bind(same)
        self.emit(A.ld(t5, t6, abi.FUNCREF_CODE), A.jalr(ra, t5, 0))
        self.return_offsets.append(self.offset())
        self.bind(done)

    def tail_call_ref(self) -> None:
        """A tail call through t6, in constant stack also into another instance.

        Within the instance: pop the frame and jump.  Into another instance the
        caller's caller expects this instance's vmctx and memory-0 base back, so
        the frame is popped and replaced by a tail frame (``abi.TAIL_FRAME_BYTES``:
        the return address, the caller's fp, vmctx and memory-0 base) whose return
        address is the runtime's ``abi.TAIL_RETURN_STUB``; the stub restores them
        and returns to the real caller.  When the return address already is the
        stub, the tail frame below is still there and holds the right values: it
        is reused, so a chain of cross-instance tail calls grows no stack.  The
        tail frame is linked like a compiled frame (fp points above it), so
        backtraces walk through it.
        """
        t4, t5, t6 = R.T4.num, R.T5.num, R.T6.num
        s1, s2, sp, fp, ra = R.VMCTX.num, R.MEM0.num, R.SP.num, R.FP.num, R.RA.num
        other, reuse = Label(), Label()
        self.words.append(A.ld(t5, t6, abi.FUNCREF_VMCTX))
        self._branch("bne", t5, s1, other)
        self._restore_and_pop()
        self.emit(A.ld(t5, t6, abi.FUNCREF_CODE), A.jalr(0, t5, 0))
        self._end_epilogue()
        self.bind(other)
        self._restore_and_pop()
        self.li(t4, abi.TAIL_RETURN_STUB)
        self._branch("beq", ra, t4, reuse)
        size = abi.TAIL_FRAME_BYTES
        self.emit(
            A.addi(sp, sp, -size),
            A.sd(ra, sp, size - 8),
            A.sd(fp, sp, size - 16),
            A.sd(s1, sp, 8),
            A.sd(s2, sp, 0),
            A.addi(fp, sp, size),
            A.addi(ra, t4, 0),
        )
        self.bind(reuse)
        # t4 keeps the caller's vmctx for the callee (a host function's Caller reads it), as in call_ref.
        self.emit(
            A.addi(t4, s1, 0),
            A.addi(s1, t5, 0),
            A.ld(s2, s1, 0),
            A.ld(t5, t6, abi.FUNCREF_CODE),
            A.jalr(0, t5, 0),
        )
        self._end_epilogue()  # (inexact while the tail frame is built: the CFA is not sp there)

    def _bulk_call(self, regs: tuple[int, ...], static: tuple[int, ...], builtin_id: int) -> None:
        """Call a builtin from a cold stub: the argument registers it takes are saved below sp and put back
        after it (the builtins of bulk operations return nothing and change no other register)."""
        sp, a0 = R.SP.num, R.INT_ARGS[0].num
        used = len(regs) + len(static)
        frame = (8 * used + 15) & ~15
        self.emit(A.addi(sp, sp, -frame), *(A.sd(a0 + i, sp, 8 * i) for i in range(used)))
        for i, r in enumerate(regs):  # an operand in a saved argument register is read from where it was saved
            if a0 <= r < a0 + used:
                self.words.append(A.ld(a0 + i, sp, 8 * (r - a0)))
            elif r != a0 + i:
                self.words.append(A.addi(a0 + i, r, 0))
        for i, value in enumerate(static):
            self.li(a0 + len(regs) + i, value)
        self.call_builtin(builtin_id)
        self.emit(*(A.ld(a0 + i, sp, 8 * i) for i in range(used)), A.addi(sp, sp, frame))

    def call_builtin(self, builtin_id: int) -> None:
        self.li(R.T6.num, builtin_id)
        self.words.append(A.ECALL)
        self.return_offsets.append(self.offset())

    def register_number(self, reg: Reg) -> int:
        return R.dwarf_number(reg)

    def table_element_for_call(self, index: Reg, table_word: int, index64: bool, type_word: int) -> None:
        """t6 = the funcref at ``index``; traps: past the end, null, wrong signature."""
        t4, t5, t6 = R.T4.num, R.T5.num, R.T6.num
        self._mem("ld", R.T5, R.VMCTX, table_word)
        self.words.append(A.ld(t4, t5, abi.TABLEDESC_SIZE))
        if index64:
            self.words.append(A.addi(t6, index.num, 0))
        else:
            self.words.append(A.and_(t6, index.num, R.MASK32.num))
        self._trap_branch("bgeu", t6, t4, TrapCode.UNDEFINED_ELEMENT)
        self.emit(A.ld(t5, t5, abi.TABLEDESC_BASE), A.slli(t6, t6, 3), A.add(t5, t5, t6), A.ld(t6, t5, 0))
        self._trap_branch("beq", t6, 0, TrapCode.INDIRECT_CALL_TO_NULL)
        self.words.append(A.ld(t4, t6, abi.FUNCREF_TYPE))
        self._mem("ld", R.T5, R.VMCTX, type_word)
        self._trap_branch("bne", t4, t5, TrapCode.BAD_SIGNATURE)

    def funcref_for_call(self, ref: Reg) -> None:
        """t6 = the funcref in ``ref``; traps (null function reference) when it is null."""
        t6 = R.T6.num
        self.words.append(A.addi(t6, ref.num, 0))
        self._trap_branch("beq", t6, 0, TrapCode.NULL_FUNCTION_REFERENCE)

    def trap_if_null(self, ref: Reg, code: TrapCode) -> None:
        self._trap_branch("beq", ref.num, 0, code)

    # -- globals and memories --------------------------------------------------------------------------

    def global_get(self, dst: Reg, word: int, ty: int) -> None:
        self._mem("ld", R.T5, R.VMCTX, word)
        self.words.append(getattr(A, self._ld_insn(ty))(dst.num, R.T5.num, 0))

    def global_set(self, src: Reg, word: int, ty: int) -> None:
        self._mem("ld", R.T5, R.VMCTX, word)
        self.words.append(getattr(A, self._st_insn(ty))(src.num, R.T5.num, 0))

    def memory_size(self, dst: Reg, word: int) -> None:
        t4, t5 = R.T4.num, R.T5.num
        self._mem("ld", R.T5, R.VMCTX, word)
        self.emit(A.ld(dst.num, t5, abi.MEMDESC_SIZE), A.ld(t4, t5, abi.MEMDESC_PAGE_LOG2), A.srl(dst.num, dst.num, t4))

    def heap_address(
        self, mem: int, word: int, memtype: MemoryType, addr: Reg, offset: int, size: int
    ) -> tuple[Reg, int]:
        """Register and displacement addressing linear address ``addr + offset`` of memory ``mem``.

        32-bit memories with 4 KiB-multiple pages rely on the reservation and the
        MMU (the address is zero-extended, the static offset stays below the
        guard); memory64, small custom pages and large offsets check explicitly.
        """
        t4, t5, t6 = R.T4.num, R.T5.num, R.T6.num
        index64 = memtype.index_type == I64
        explicit = index64 or memtype.page_size_log2 < 12 or offset + size > abi.MEMORY_GUARD
        if not explicit:
            self.words.append(A.and_(t5, addr.num, R.MASK32.num))
            if mem == 0:
                self.words.append(A.add(t5, t5, R.MEM0.num))
            else:
                self._mem("ld", R.T4, R.VMCTX, word)
                self.emit(A.ld(t4, t4, abi.MEMDESC_BASE), A.add(t5, t5, t4))
            if _fits12(offset):
                return R.T5, offset
            self.li(t4, offset)
            self.words.append(A.add(t5, t5, t4))
            return R.T5, 0
        if index64:
            self.words.append(A.addi(t5, addr.num, 0))
        else:
            self.words.append(A.and_(t5, addr.num, R.MASK32.num))
        if offset:
            self.li(t4, offset)
            self.words.append(A.add(t5, t5, t4))
            if index64:
                self._trap_branch("bltu", t5, t4, TrapCode.MEMORY_OUT_OF_BOUNDS)  # carry out of 64 bits
        self.words.append(A.addi(t6, t5, size))
        self._trap_branch("bltu", t6, t5, TrapCode.MEMORY_OUT_OF_BOUNDS)
        self._mem("ld", R.T4, R.VMCTX, word)
        self.words.append(A.ld(t4, t4, abi.MEMDESC_SIZE))
        self._trap_branch("bltu", t4, t6, TrapCode.MEMORY_OUT_OF_BOUNDS)
        self._mem("ld", R.T4, R.VMCTX, word)
        self.emit(A.ld(t4, t4, abi.MEMDESC_BASE), A.add(t5, t5, t4))
        return R.T5, 0

    def far_access(self, far: Reg, size: int, write: bool, data: Reg, segments_word: int) -> None:
        """A far load or store: ``data`` <-> the ``size`` bytes at far pointer ``far`` (selector:offset),
        checked against the instance's segment table (see hwsim/runtime/segments.py).

        On a fault the cold stub leaves the far pointer in t4 and ``size | write << 8`` in t5 for
        the trap handler.
        """
        t4, t5, t6, f = R.T4.num, R.T5.num, R.T6.num, far.num
        prefix = (A.addi(t4, f, 0), *A.li_words(t5, size | int(write) << 8))
        self._mem("ld", R.T6, R.VMCTX, segments_word)  # the table
        self.emit(A.srli(t5, f, 32), A.sltiu(t4, t5, abi.SEGMENT_CAPACITY))
        self._trap_branch("beq", t4, 0, TrapCode.SEGMENT_FAULT, prefix)  # selector out of range
        self.emit(A.slli(t5, t5, 5), A.add(t6, t6, t5))  # descriptor - SEGMENT_HEADER (32-byte descriptors)
        h = abi.SEGMENT_HEADER
        self.emit(A.ld(t4, t6, h + 16), A.andi(t4, t4, 2 if write else 1))
        self._trap_branch("beq", t4, 0, TrapCode.SEGMENT_FAULT, prefix)  # no such right (or not granted)
        self.emit(A.and_(t5, f, R.MASK32.num), A.addi(t5, t5, size), A.ld(t4, t6, h + 8))
        self._trap_branch("bltu", t4, t5, TrapCode.SEGMENT_FAULT, prefix)  # past the limit
        self.emit(A.ld(t4, t6, h), A.add(t5, t5, t4))
        insn = (_FAR_STORES if write else _FAR_LOADS)[size]
        self.words.append(getattr(A, insn)(data.num, t5, -size))

    # -- bulk memory ----------------------------------------------------------------------------------

    def _bulk_operand(self, reg: Reg, desc: int, index64: bool, n: Reg) -> None:
        """Turn the linear offset in ``reg`` into an address, after the checks: the descriptor's bulk-host
        flag (to ``slow``), then ``reg + n`` against the memory's size (trap); ``desc`` holds the descriptor."""
        r, t4, t6 = reg.num, R.T4.num, R.T6.num
        if not index64:
            self.words.append(A.and_(r, r, R.MASK32.num))
        self.words.append(A.add(t4, r, n.num))
        if index64:  # a 64-bit offset plus a small n may carry out
            self._trap_branch("bltu", t4, r, TrapCode.MEMORY_OUT_OF_BOUNDS)
        self.words.append(A.ld(t6, desc, abi.MEMDESC_SIZE))
        self._trap_branch("bltu", t6, t4, TrapCode.MEMORY_OUT_OF_BOUNDS)
        self.emit(A.ld(t6, desc, abi.MEMDESC_BASE), A.add(r, r, t6))

    def _bulk_entry(self, words: tuple[int, ...], n: Reg, n64: bool, slow: Label) -> None:
        """The tests that send a bulk operation to the host: the bulk-host flag of a memory (``words``: their
        vmctx words; t5 is left holding the last one's descriptor), or ``n`` above the inline limit.  ``n`` is
        zero-extended first: both paths leave it so (metered code charges it after either)."""
        t4, t5 = R.T4.num, R.T5.num
        if not n64:
            self.words.append(A.and_(n.num, n.num, R.MASK32.num))
        for word in words:
            self._mem("ld", R.T5, R.VMCTX, word)
            self.words.append(A.ld(t4, t5, abi.MEMDESC_BULK_HOST))
            self._branch("bne", t4, 0, slow)
        self.li(t4, abi.BULK_INLINE_MAX)
        self._branch("bltu", t4, n.num, slow)

    def _bulk_slow(self, args: tuple[Reg, ...], builtin_id: int, static: tuple[int, ...]) -> tuple[Label, Label]:
        """A cold stub calling the builtin with ``args`` then ``static`` in the argument registers (those
        registers saved around it, all others kept); (stub label, label to bind where it resumes)."""
        stub, back = Label(), Label()
        self.bulk_stubs.append((stub, back, self.wasm_offset, tuple(r.num for r in args), static, builtin_id))
        return stub, back

    def memory_fill(
        self, dst: Reg, value: Reg, n: Reg, word: int, index64: bool, builtin_id: int, static: tuple[int, ...]
    ) -> None:
        d, v, c, t4, t5, t6 = dst.num, value.num, n.num, R.T4.num, R.T5.num, R.T6.num
        slow, back = self._bulk_slow((dst, value, n), builtin_id, static)
        self._bulk_entry((word,), n, index64, slow)
        self._bulk_operand(dst, t5, index64, n)
        # The byte in all eight bytes of v; t6 = the end, t5 = the end of the whole words.
        self.emit(A.andi(v, v, 0xFF), A.slli(t4, v, 8), A.or_(v, v, t4), A.slli(t4, v, 16), A.or_(v, v, t4))
        self.emit(A.slli(t4, v, 32), A.or_(v, v, t4), A.add(t6, d, c), A.andi(t5, c, -8), A.add(t5, d, t5))
        words, tail, loop = Label(), Label(), Label()
        self._branch("beq", d, t5, tail)
        self.bind(words)
        self.emit(A.sd(v, d, 0), A.addi(d, d, 8))
        self._branch("bne", d, t5, words)
        self.bind(tail)
        self._branch("beq", d, t6, back)
        self.bind(loop)
        self.emit(A.sb(v, d, 0), A.addi(d, d, 1))
        self._branch("bne", d, t6, loop)
        self.bind(back)

    def memory_copy(
        self,
        dst: Reg,
        src: Reg,
        n: Reg,
        words: tuple[int, int],
        index64: tuple[bool, bool],
        builtin_id: int,
        static: tuple[int, ...],
    ) -> None:
        d, s, c, t4, t5, t6 = dst.num, src.num, n.num, R.T4.num, R.T5.num, R.T6.num
        slow, back = self._bulk_slow((dst, src, n), builtin_id, static)
        same = words[0] == words[1]
        # The source's flag, then the destination's (its descriptor stays in t5); the source's reloaded.
        self._bulk_entry((words[0],) if same else (words[1], words[0]), n, all(index64), slow)
        self._bulk_operand(dst, t5, index64[0], n)
        if not same:
            self._mem("ld", R.T5, R.VMCTX, words[1])
        self._bulk_operand(src, t5, index64[1], n)
        # memmove: forwards unless the destination starts inside the source ((d - s) < n, unsigned).
        backward, fwords, ftail, floop, bwords, bloop, btail = (Label() for _ in range(7))
        self.words.append(A.sub(t4, d, s))
        self._branch("bltu", t4, c, backward)
        self.emit(A.andi(t5, c, -8), A.add(t5, d, t5), A.add(t6, d, c))  # t5: end of the words, t6: the end
        self._branch("beq", d, t5, ftail)
        self.bind(fwords)
        self.emit(A.ld(t4, s, 0), A.sd(t4, d, 0), A.addi(s, s, 8), A.addi(d, d, 8))
        self._branch("bne", d, t5, fwords)
        self.bind(ftail)
        self._branch("beq", d, t6, back)
        self.bind(floop)
        self.emit(A.lbu(t4, s, 0), A.sb(t4, d, 0), A.addi(s, s, 1), A.addi(d, d, 1))
        self._branch("bne", d, t6, floop)
        self.jump(back)
        # Backwards, from the ends: the odd bytes first, then whole words down to the start (t6).
        self.bind(backward)
        self.emit(A.add(t6, d, 0), A.add(d, d, c), A.add(s, s, c), A.andi(t5, c, 7), A.sub(t5, d, t5))
        self._branch("beq", d, t5, btail)
        self.bind(bloop)
        self.emit(A.addi(s, s, -1), A.addi(d, d, -1), A.lbu(t4, s, 0), A.sb(t4, d, 0))
        self._branch("bne", d, t5, bloop)
        self.bind(btail)
        self._branch("beq", d, t6, back)
        self.bind(bwords)
        self.emit(A.addi(s, s, -8), A.addi(d, d, -8), A.ld(t4, s, 0), A.sd(t4, d, 0))
        self._branch("bne", d, t6, bwords)
        self.bind(back)

    def load(self, kind: LoadKind, dst: Reg, base: Reg, disp: int) -> None:
        self.words.append(getattr(A, _LOADS[kind])(dst.num, base.num, disp))

    def store(self, kind: StoreKind, src: Reg, base: Reg, disp: int) -> None:
        self.words.append(getattr(A, _STORES[kind])(src.num, base.num, disp))

    # -- atomics (threads proposal) ---------------------------------------------------------------------
    # Sequentially consistent throughout: AMOs and LR/SC with aq and rl; plain loads and stores between
    # fences (the RVWMO mapping for seq_cst: fence rw,rw; load; fence r,rw and fence rw,w; store; fence
    # rw,rw).  8- and 16-bit read-modify-writes work on the aligned word with an LR.W/SC.W loop.

    def atomic_check_align(self, addr: Reg, offset: int, size: int) -> None:
        t4 = R.T4.num
        if size == 1:
            return
        low = offset & (size - 1)
        if low:
            self.emit(A.addi(t4, addr.num, low), A.andi(t4, t4, size - 1))
        else:
            self.words.append(A.andi(t4, addr.num, size - 1))
        self._trap_branch("bne", t4, 0, TrapCode.HEAP_MISALIGNED)

    def _atomic_base(self, base: Reg, disp: int) -> int:
        """The address ``base + disp`` in one register (t5)."""
        t5 = R.T5.num
        if disp or base.num != t5:
            self.words.append(A.addi(t5, base.num, disp))
        return t5

    def fence(self) -> None:
        self.words.append(A.fence())

    def atomic_load(self, kind: LoadKind, dst: Reg, base: Reg, disp: int) -> None:
        self.emit(
            A.fence(), getattr(A, _LOADS[kind])(dst.num, base.num, disp), A.fence(A.FENCE_R, A.FENCE_R | A.FENCE_W)
        )

    def atomic_store(self, kind: StoreKind, src: Reg, base: Reg, disp: int) -> None:
        self.emit(A.fence(A.FENCE_R | A.FENCE_W, A.FENCE_W), getattr(A, _STORES[kind])(src.num, base.num, disp))
        self.words.append(A.fence())

    def _subword_setup(self, a: int, size: int, shift: int, mask: int) -> None:
        """For an 8/16-bit access at ``a``: ``shift`` = its bit position in the aligned word, ``mask`` = its
        bits there, ``a`` = the aligned word's address."""
        self.emit(A.andi(shift, a, 3), A.slli(shift, shift, 3), A.andi(a, a, -4))
        self.li(mask, (1 << 8 * size) - 1)
        self.words.append(A.sll(mask, mask, shift))

    def _field(self, dst: int, size: int) -> None:
        """``dst`` &= the low ``size`` bytes (1 or 2)."""
        if size == 1:
            self.words.append(A.andi(dst, dst, 0xFF))
        else:
            self.emit(A.slli(dst, dst, 48), A.srli(dst, dst, 48))

    def atomic_rmw(
        self, op: RmwOp, size: int, wide: bool, dst: Reg, base: Reg, disp: int, value: Reg, temps: tuple[Reg, ...]
    ) -> None:
        a, d, v = self._atomic_base(base, disp), dst.num, value.num
        t4, t6 = R.T4.num, R.T6.num
        if size >= 4:
            double = size == 8
            if op is RmwOp.SUB:
                self.words.append(A.sub(t6, 0, v))
                v = t6
            self.words.append(A.amo(_AMO_OPS[op], d, a, v, double=double))
            if wide and size == 4:
                self.words.append(A.and_(d, d, R.MASK32.num))
            return
        shift, mask, vs = (t.num for t in temps[:3])
        self._subword_setup(a, size, shift, mask)
        self.emit(A.sll(vs, v, shift), A.and_(vs, vs, mask))
        loop = Label()
        self.bind(loop)
        self.words.append(A.lr(d, a, double=False))
        if op is RmwOp.XCHG:
            self.words.append(A.addi(t6, vs, 0))
        else:
            self.words.append(_RMW_WORD_OPS[op](t6, d, vs))
        self.emit(A.xor(t6, t6, d), A.and_(t6, t6, mask), A.xor(t6, t6, d))  # old outside the field
        self.words.append(A.sc(t4, a, t6, double=False))
        self._branch("bne", t4, 0, loop)
        self.words.append(A.srl(d, d, shift))
        self._field(d, size)

    def atomic_cmpxchg(
        self,
        size: int,
        wide: bool,
        dst: Reg,
        base: Reg,
        disp: int,
        expected: Reg,
        replacement: Reg,
        temps: tuple[Reg, ...],
    ) -> None:
        a, d, e, r = self._atomic_base(base, disp), dst.num, expected.num, replacement.num
        t4, t6 = R.T4.num, R.T6.num
        loop, done = Label(), Label()
        if size >= 4:
            double = size == 8
            if not double:
                self.words.append(A.addiw(t6, e, 0))  # LR.W sign-extends: compare the wrapped expected value so
                e = t6
            self.bind(loop)
            self.words.append(A.lr(d, a, double=double))
            self._branch("bne", d, e, done)
            self.words.append(A.sc(t4, a, r, double=double))
            self._branch("bne", t4, 0, loop)
            self.bind(done)
            if wide and size == 4:
                self.words.append(A.and_(d, d, R.MASK32.num))
            return
        shift, mask, es, rs = (t.num for t in temps[:4])
        self._subword_setup(a, size, shift, mask)
        self.words.append(A.addi(es, e, 0))
        self._field(es, size)
        self.emit(A.sll(es, es, shift), A.sll(rs, r, shift), A.and_(rs, rs, mask))
        self.bind(loop)
        self.emit(A.lr(d, a, double=False), A.and_(t6, d, mask))
        self._branch("bne", t6, es, done)
        self.emit(A.xor(t6, d, rs), A.and_(t6, t6, mask), A.xor(t6, t6, d))
        self.words.append(A.sc(t4, a, t6, double=False))
        self._branch("bne", t4, 0, loop)
        self.bind(done)
        self.words.append(A.srl(d, d, shift))
        self._field(d, size)

    # -- integer arithmetic ------------------------------------------------------------------------------

    def int_imm_ok(self, op: IntBinOp, wide: bool, bits: int) -> bool:
        key = (op, wide, bits)
        ok = _IMM_OK.get(key)
        if ok is None:
            ok = _remember(_IMM_OK, key, self._int_imm_ok(op, wide, bits))
        return ok

    def _int_imm_ok(self, op: IntBinOp, wide: bool, bits: int) -> bool:
        v = _signed(bits, 64 if wide else 32)
        if op is IntBinOp.ADD or op in _INT_LOGIC_IMM:
            return _fits12(v)
        if op is IntBinOp.SUB:
            return _fits12(-v)
        return op in _INT_SHIFT_IMM or op is IntBinOp.ROTL or op is IntBinOp.ROTR

    def int_binary(self, op: IntBinOp, wide: bool, dst: Reg, a: Reg, b: Reg | int) -> None:
        if op in _INT_DIV:  # (trap branches: not a fixed sequence of words)
            self._int_binary(op, wide, dst, a, b)
            return
        key = (op, wide, dst, a, b)
        words = _INT_BINARY_WORDS.get(key)
        if words is None:
            start = len(self.words)
            self._int_binary(op, wide, dst, a, b)
            _remember(_INT_BINARY_WORDS, key, self.words[start:])
        else:
            self.words.extend(words)

    def _int_binary(self, op: IntBinOp, wide: bool, dst: Reg, a: Reg, b: Reg | int) -> None:
        d, ra = dst.num, a.num
        if isinstance(b, int):
            v = _signed(b, 64 if wide else 32)
            if op is IntBinOp.ADD:
                self.words.append(A.addi(d, ra, v) if wide else A.addiw(d, ra, v))
            elif op is IntBinOp.SUB:
                self.words.append(A.addi(d, ra, -v) if wide else A.addiw(d, ra, -v))
            elif op in _INT_LOGIC_IMM:
                self.words.append(_INT_LOGIC_IMM[op](d, ra, v))
            elif op is IntBinOp.ROTL or op is IntBinOp.ROTR:
                self._rotate_imm(d, ra, v, wide, op is IntBinOp.ROTL)
            else:
                sh = v & (63 if wide else 31)
                self.words.append(_INT_SHIFT_IMM[op][0 if wide else 1](d, ra, sh))
            return
        rb = b.num
        if op in _INT_SIMPLE:
            self.words.append(_INT_SIMPLE[op][0 if wide else 1](d, ra, rb))
            return
        t4 = R.T4.num
        if op is IntBinOp.ROTL or op is IntBinOp.ROTR:
            first, second = ("sll", "srl") if op is IntBinOp.ROTL else ("srl", "sll")
            if wide:
                self.emit(
                    getattr(A, first)(t4, ra, rb),
                    A.sub(R.T5.num, 0, rb),
                    getattr(A, second)(d, ra, R.T5.num),
                    A.or_(d, d, t4),
                )
            else:
                self.emit(
                    getattr(A, first + "w")(t4, ra, rb),
                    A.sub(R.T5.num, 0, rb),
                    getattr(A, second + "w")(d, ra, R.T5.num),
                    A.or_(d, d, t4),
                )
            return
        # Division and remainder: trap on zero, and on the one overflowing signed division.
        self._trap_branch("beq", rb, 0, TrapCode.INTEGER_DIVIDE_BY_ZERO)
        if op is IntBinOp.DIV_S:
            ok = Label()
            self.words.append(A.addi(t4, 0, -1))
            self._branch("bne", rb, t4, ok)
            if wide:
                self.emit(A.addi(t4, 0, 1), A.slli(t4, t4, 63))
            else:
                self.words.append(A.lui(t4, 0x80000))
            self._trap_branch("beq", ra, t4, TrapCode.INTEGER_OVERFLOW)
            self.bind(ok)
        self.words.append(_INT_DIV[op][0 if wide else 1](d, ra, rb))

    def _rotate_imm(self, d: int, a: int, amount: int, wide: bool, left: bool) -> None:
        """``d = a`` rotated by a constant: two shifts and an or (RV64 without Zbb has no rotate; Unicorn 2.1.4
        executes no Zbb).  At 32 bits ``slliw`` sign-extends and ``srliw`` leaves bit 31 clear, so the or is
        the sign-extended result."""
        bits = 64 if wide else 32
        k = amount % bits if left else -amount % bits  # as a left rotate
        if k == 0:
            self.words.append(A.addi(d, a, 0))
            return
        t4 = R.T4.num
        if wide:
            self.emit(A.slli(t4, a, k), A.srli(d, a, bits - k), A.or_(d, d, t4))
        else:
            self.emit(A.slliw(t4, a, k), A.srliw(d, a, bits - k), A.or_(d, d, t4))

    def int_eqz(self, dst: Reg, a: Reg) -> None:
        self.words.append(A.sltiu(dst.num, a.num, 1))

    def int_compare(self, cond: IntCmp, dst: Reg, a: Reg, b: Reg) -> None:
        d, ra, rb = dst.num, a.num, b.num
        if cond is IntCmp.EQ or cond is IntCmp.NE:
            self.emit(A.xor(d, ra, rb), A.sltiu(d, d, 1) if cond is IntCmp.EQ else A.sltu(d, 0, d))
            return
        cmp = A.slt if cond in _SIGNED_CMP else A.sltu
        if cond is IntCmp.LT_S or cond is IntCmp.LT_U:
            self.words.append(cmp(d, ra, rb))
        elif cond is IntCmp.GT_S or cond is IntCmp.GT_U:
            self.words.append(cmp(d, rb, ra))
        elif cond is IntCmp.LE_S or cond is IntCmp.LE_U:
            self.emit(cmp(d, rb, ra), A.xori(d, d, 1))
        else:
            self.emit(cmp(d, ra, rb), A.xori(d, d, 1))

    def _clz64(self, d: int, x: int) -> None:
        """d = number of leading zeros of the non-zero value in x (x is clobbered)."""
        t4 = R.T4.num
        self.words.append(A.addi(d, 0, 0))
        for shift in (32, 16, 8, 4, 2, 1):
            skip = Label()
            self.words.append(A.srli(t4, x, 64 - shift))
            self._branch("bne", t4, 0, skip)
            self.emit(A.addi(d, d, shift), A.slli(x, x, shift))
            self.bind(skip)

    def int_wide(self, op: WideOp, lo: Reg, hi: Reg, srcs: tuple[Reg, ...]) -> None:
        """In t4 (low half) and t5 (high half) first, so the sources may be the destinations too: the carry
        of an add is ``lo < a_lo`` (unsigned), the borrow of a subtract ``a_lo < b_lo``; a product's
        high half is ``mulh``/``mulhu``."""
        t4, t5 = R.T4.num, R.T5.num
        if op is WideOp.ADD128 or op is WideOp.SUB128:
            a_lo, a_hi, b_lo, b_hi = (r.num for r in srcs)
            if op is WideOp.ADD128:
                self.emit(A.add(t4, a_lo, b_lo), A.sltu(t5, t4, a_lo), A.add(t5, t5, a_hi), A.add(t5, t5, b_hi))
            else:
                self.emit(A.sltu(t5, a_lo, b_lo), A.sub(t5, a_hi, t5), A.sub(t5, t5, b_hi), A.sub(t4, a_lo, b_lo))
        else:
            a, b = (r.num for r in srcs)
            high = A.mulh if op is WideOp.MUL_WIDE_S else A.mulhu
            self.emit(A.mul(t4, a, b), high(t5, a, b))
        self.emit(A.addi(lo.num, t4, 0), A.addi(hi.num, t5, 0))

    def int_unary(self, op: IntUnOp, wide: bool, dst: Reg, a: Reg) -> None:
        d, ra, t4, t5 = dst.num, a.num, R.T4.num, R.T5.num
        if op is IntUnOp.CLZ:
            zero, done = Label(), Label()
            if wide:
                self.words.append(A.addi(t5, ra, 0))
            else:
                self.words.append(A.slli(t5, ra, 32))
            self._branch("beq", t5, 0, zero)
            self._clz64(d, t5)
            self.jump(done)
            self.bind(zero)
            self.words.append(A.addi(d, 0, 64 if wide else 32))
            self.bind(done)
        elif op is IntUnOp.CTZ:
            zero, done = Label(), Label()
            if wide:
                self.words.append(A.addi(t5, ra, 0))
            else:  # a bit at 32 makes ctz(0) = 32
                self.emit(A.addi(t4, 0, 1), A.slli(t4, t4, 32), A.or_(t5, ra, t4))
            self._branch("beq", t5, 0, zero)
            # isolate the lowest set bit, then ctz = 63 - clz
            self.emit(A.sub(t4, 0, t5), A.and_(t5, t5, t4))
            self._clz64(d, t5)
            self.emit(A.sub(d, 0, d), A.addi(d, d, 63))
            self.jump(done)
            self.bind(zero)
            self.words.append(A.addi(d, 0, 64))
            self.bind(done)
        elif op is IntUnOp.POPCNT:
            loop, done = Label(), Label()
            self.emit(A.addi(t5, ra, 0) if wide else A.and_(t5, ra, R.MASK32.num), A.addi(d, 0, 0))
            self.bind(loop)
            self._branch("beq", t5, 0, done)
            self.emit(A.addi(t4, t5, -1), A.and_(t5, t5, t4), A.addi(d, d, 1))
            self.jump(loop)
            self.bind(done)
        elif op is IntUnOp.EXTEND8_S:
            self.emit(A.slli(d, ra, 56), A.srai(d, d, 56))
        elif op is IntUnOp.EXTEND16_S:
            self.emit(A.slli(d, ra, 48), A.srai(d, d, 48))
        else:  # EXTEND32_S
            self.words.append(A.addiw(d, ra, 0))

    # -- floating point ------------------------------------------------------------------------------------

    def float_binary(self, op: FloatBinOp, double: bool, dst: Reg, a: Reg, b: Reg) -> None:
        d, fa, fb = dst.num, a.num, b.num
        simple = _FLOAT_SIMPLE.get(op)
        if simple is not None:
            self.words.append(simple(d, fa, fb, double))
        elif op is FloatBinOp.COPYSIGN:
            self.words.append(A.fsgnj(d, fa, fb, double))
        else:  # min, max: a NaN operand gives NaN (RISC-V would return the other operand)
            ordered, done = Label(), Label()
            t4, t5 = R.T4.num, R.T5.num
            self.emit(A.feq(t4, fa, fa, double), A.feq(t5, fb, fb, double), A.and_(t4, t4, t5))
            self._branch("bne", t4, 0, ordered)
            self.words.append(A.fadd(d, fa, fb, double))
            self.jump(done)
            self.bind(ordered)
            self.words.append((A.fmin if op is FloatBinOp.MIN else A.fmax)(d, fa, fb, double))
            self.bind(done)

    def float_unary(self, op: FloatUnOp, double: bool, dst: Reg, a: Reg) -> None:
        d, fa = dst.num, a.num
        if op is FloatUnOp.ABS:
            self.words.append(A.fsgnjx(d, fa, fa, double))
        elif op is FloatUnOp.NEG:
            self.words.append(A.fsgnjn(d, fa, fa, double))
        elif op is FloatUnOp.SQRT:
            self.words.append(A.fsqrt(d, fa, double))
        else:  # ceil floor trunc nearest: through an integer when |a| < 2^52 (2^23), else a itself
            rm = _ROUNDING[op]
            t4 = R.T4.num
            ft10, ft11 = R.FT10.num, R.FT11.num
            big, done = Label(), Label()
            limit = 0x4330_0000_0000_0000 if double else 0x4B00_0000  # 2^52, 2^23
            self.words.append(A.fsgnjx(ft10, fa, fa, double))
            self.li(t4, limit)
            self.words.append(A.fmv_d_x(ft11, t4) if double else A.fmv_w_x(ft11, t4))
            self.words.append(A.flt(t4, ft10, ft11, double))
            self._branch("beq", t4, 0, big)
            self.emit(
                A.fcvt_to_int(t4, fa, double=double, signed=True, wide=True, rm=rm),
                A.fcvt_from_int(ft10, t4, double=double, signed=True, wide=True, rm=rm),
                A.fsgnj(d, ft10, fa, double),
            )
            self.jump(done)
            self.bind(big)  # integral already, infinite, or NaN (made canonical)
            self.words.append(A.fmin(d, fa, fa, double))
            self.bind(done)

    def float_compare(self, cond: FloatCmp, double: bool, dst: Reg, a: Reg, b: Reg) -> None:
        d, fa, fb = dst.num, a.num, b.num
        if cond is FloatCmp.EQ:
            self.words.append(A.feq(d, fa, fb, double))
        elif cond is FloatCmp.NE:
            self.emit(A.feq(d, fa, fb, double), A.xori(d, d, 1))
        elif cond is FloatCmp.LT:
            self.words.append(A.flt(d, fa, fb, double))
        elif cond is FloatCmp.GT:
            self.words.append(A.flt(d, fb, fa, double))
        elif cond is FloatCmp.LE:
            self.words.append(A.fle(d, fa, fb, double))
        else:
            self.words.append(A.fle(d, fb, fa, double))

    def convert(self, conv: Conversion, dst: Reg, a: Reg) -> None:
        d, ra, t4 = dst.num, a.num, R.T4.num
        if conv in _MOVES:
            self.words.append(_MOVES[conv](d, ra))
        elif conv is Conversion.I64_EXTEND_I32_U:
            self.words.append(A.and_(d, ra, R.MASK32.num))
        elif conv in _INT_TO_FLOAT:
            double, signed, wide = _INT_TO_FLOAT[conv]
            self.words.append(A.fcvt_from_int(d, ra, double=double, signed=signed, wide=wide))
        else:
            wide, double, signed, saturating = _FLOAT_TO_INT[conv]
            cvt = A.fcvt_to_int(d, ra, double=double, signed=signed, wide=wide, rm=A.RM_RTZ)
            if saturating:  # RISC-V saturates, but turns NaN into the maximum: wasm wants 0
                self.emit(A.feq(t4, ra, ra, double), cvt, A.sub(t4, 0, t4), A.and_(d, d, t4))
            else:
                self.words.append(A.feq(t4, ra, ra, double))
                self._trap_branch("beq", t4, 0, TrapCode.BAD_CONVERSION_TO_INTEGER)
                self.emit(A.csrrw(0, A.CSR_FFLAGS, 0), cvt, A.csrrs(t4, A.CSR_FFLAGS, 0), A.andi(t4, t4, A.FFLAG_NV))
                self._trap_branch("bne", t4, 0, TrapCode.INTEGER_OVERFLOW)

    # -- metering ---------------------------------------------------------------------------------------------

    def fuel_consume(self, cost: int) -> None:
        """``addi gp, gp, -cost`` (through t6 when ``cost`` does not fit 12 bits)."""
        gp = R.FUEL.num
        if _fits12(-cost):
            self.words.append(A.addi(gp, gp, -cost))
        else:
            self.li(R.T6.num, cost)
            self.words.append(A.sub(gp, gp, R.T6.num))

    def fuel_consume_reg(self, units: Reg) -> None:
        self.words.append(A.sub(R.FUEL.num, R.FUEL.num, units.num))

    def fuel_checkpoint(self, cost: int, builtin_id: int, stack_map: tuple[int, ...] | None = None) -> None:
        """``blez gp`` (after the cost, if any) to a cold stub that calls the builtin and comes back."""
        if cost:
            self.fuel_consume(cost)
        stub, back = Label(), Label()
        self.checkpoints.append((stub, back, builtin_id, self.wasm_offset, stack_map))
        self._branch("bge", 0, R.FUEL.num, stub)  # blez gp
        self.bind(back)

    def select(self, dst: Reg, a: Reg, b: Reg, cond: Reg) -> None:
        take_a, done = Label(), Label()
        self._branch("bne", cond.num, 0, take_a)
        self.mov(dst, b)
        self.jump(done)
        self.bind(take_a)
        self.mov(dst, a)
        self.bind(done)

    # -- finishing ------------------------------------------------------------------------------------

    def finish(self) -> bytes:
        """Emit cold trap and checkpoint stubs, resolve branches, patch the frame size; the function's code."""
        # The pc map, flat (code offset, wasm offset) pairs from the marks, a column at a time (no tuple per
        # entry: there is an entry per wasm instruction).
        marks = self._marks
        pc_map = self.pc_map = array("I", bytes(8 * len(marks)))
        pc_map[0::2] = array("I", marks)
        pc_map[1::2] = array("I", marks.values())
        for label, code, wasm_offset, prefix in self.cold:
            self.bind(label)
            self.words.extend(prefix)
            self.trap_sites.append((self.offset(), code, wasm_offset))
            self.words.append(A.EBREAK)
        for stub, back, builtin_id, wasm_offset, stack_map in self.checkpoints:
            self.bind(stub)
            pc_map += array("I", (self.offset(), wasm_offset))  # the slow path reports the checkpoint's offset
            self.call_builtin(builtin_id)
            if stack_map is not None:  # a thread preempted here is at a safepoint (runtime/gcheap.py)
                self.stack_maps.append((self.offset(), stack_map))
            self.jump(back)
        for stub, back, wasm_offset, regs, static, builtin_id in self.bulk_stubs:
            self.bind(stub)
            pc_map += array("I", (self.offset(), wasm_offset))  # the builtin's traps and observers name the operation
            self._bulk_call(regs, static, builtin_id)
            self.jump(back)
        out = self.words
        for index, base, label in self.fixups:
            if label.pos is None:
                raise CompilerBug("branch to an unbound label")
            delta = 4 * (label.pos - index)
            if base == _JAL_BASE:
                if not -(1 << 20) <= delta < 1 << 20:
                    raise CompileError("function too large: a jump exceeds 1 MiB (hwsim compiles no longer jumps)")
                out[index] = A.jal(0, delta)
            else:
                if not -4096 <= delta < 4096:
                    raise BranchOutOfRange()
                # (the offset's fields of a branch with offset 0 are zero: or them in)
                out[index] = (
                    base
                    | (((delta >> 12) & 1) << 31)
                    | (((delta >> 5) & 0x3F) << 25)
                    | (((delta >> 1) & 0xF) << 8)
                    | (((delta >> 11) & 1) << 7)
                )
        if self._frame_patch is not None:
            rest = self.frame_size() - 16
            hi = ((rest + 0x800) >> 12) & 0xFFFFF
            lo = rest - (((rest + 0x800) >> 12) << 12)
            self.words[self._frame_patch] = A.lui(R.T5.num, hi)
            self.words[self._frame_patch + 1] = A.addiw(R.T5.num, R.T5.num, lo)
        for patch in self._pad_patches:
            size = self.frame_size()
            hi = ((size + 0x800) >> 12) & 0xFFFFF
            lo = size - (((size + 0x800) >> 12) << 12)
            self.words[patch] = A.lui(R.T5.num, hi)
            self.words[patch + 1] = A.addiw(R.T5.num, R.T5.num, lo)
        self.trap_sites.sort(key=lambda site: site[0])
        words = array("I", self.words)
        if sys.byteorder == "big":
            words.byteswap()
        return words.tobytes()

    # -- SIMD ---------------------------------------------------------------------------------------------

    def _pair_base(self, base: Reg, disp: int) -> tuple[Reg, int]:
        """``base, disp`` such that ``disp + 8`` fits 12 bits too (``base`` is the heap-address scratch)."""
        if _fits12(disp + 8):
            return base, disp
        self.words.append(A.addi(R.T5.num, base.num, disp))
        return R.T5, 0

    def load_v128(self, lo: Reg, hi: Reg, base: Reg, disp: int) -> None:
        base, disp = self._pair_base(base, disp)
        self.emit(A.ld(lo.num, base.num, disp), A.ld(hi.num, base.num, disp + 8))

    def store_v128(self, lo: Reg, hi: Reg, base: Reg, disp: int) -> None:
        base, disp = self._pair_base(base, disp)
        self.emit(A.sd(lo.num, base.num, disp), A.sd(hi.num, base.num, disp + 8))

    def global_get_v128(self, lo: Reg, hi: Reg, word: int) -> None:
        self._mem("ld", R.T5, R.VMCTX, word)
        self.emit(A.ld(lo.num, R.T5.num, 0), A.ld(hi.num, R.T5.num, 8))

    def global_set_v128(self, lo: Reg, hi: Reg, word: int) -> None:
        self._mem("ld", R.T5, R.VMCTX, word)
        self.emit(A.sd(lo.num, R.T5.num, 0), A.sd(hi.num, R.T5.num, 8))

    def call_helper(self, name: str) -> None:
        self.helper_fixups.append((self.offset(), simdlib.helper_offset(name), self.far_calls))
        if self.far_calls:
            self.emit(A.auipc(R.RA.num, 0), A.jalr(R.RA.num, R.RA.num, 0))
        else:
            self.words.append(A.jal(R.RA.num, 0))

    VENEER_SIZE = 8

    def patch_veneer(self, code: bytearray, site: int, target: int) -> None:
        """``auipc t5, hi; jalr zero, lo(t5)``: t5 is scratch, dead at every call (the far tail call's register)."""
        delta = target - site
        hi = ((delta + 0x800) >> 12) & 0xFFFFF
        lo = delta - (((delta + 0x800) >> 12) << 12)
        code[site : site + 4] = A.auipc(R.T5.num, hi).to_bytes(4, "little")
        code[site + 4 : site + 8] = A.jalr(0, R.T5.num, lo).to_bytes(4, "little")

    def patch_call(self, code: bytearray, site: int, target: int, far: bool) -> None:
        """Point the ``jal`` (or ``auipc``+``jalr``) at ``site`` to ``target``, keeping its registers."""
        delta = target - site
        old = int.from_bytes(code[site : site + 4], "little")
        rd = (old >> 7) & 0x1F
        if far:
            hi = ((delta + 0x800) >> 12) & 0xFFFFF
            lo = delta - (((delta + 0x800) >> 12) << 12)
            jalr_old = int.from_bytes(code[site + 4 : site + 8], "little")
            jrd = (jalr_old >> 7) & 0x1F
            rs1 = (jalr_old >> 15) & 0x1F
            code[site : site + 4] = A.auipc(rd, hi).to_bytes(4, "little")
            code[site + 4 : site + 8] = A.jalr(jrd, rs1, lo).to_bytes(4, "little")
        else:
            if not -(1 << 20) <= delta < 1 << 20:
                raise CallOutOfRange()
            code[site : site + 4] = A.jal(rd, delta).to_bytes(4, "little")
