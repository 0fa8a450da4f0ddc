"""An RV64 instruction encoder with labels.

Encoders are plain functions returning a 32-bit instruction word; field
layouts follow the base ISA's R/I/S/B/U/J formats.  :class:`Assembler`
collects words, binds labels and patches branch/jump offsets when the code
is finished.  The compiler's backend builds on these; tests and the demo use
them to write small guest programs.
"""

from __future__ import annotations

import functools
import inspect
import struct
import types

ABI_NAMES = (
    "zero",
    "ra",
    "sp",
    "gp",
    "tp",
    "t0",
    "t1",
    "t2",
    "s0",
    "s1",
    "a0",
    "a1",
    "a2",
    "a3",
    "a4",
    "a5",
    "a6",
    "a7",
    "s2",
    "s3",
    "s4",
    "s5",
    "s6",
    "s7",
    "s8",
    "s9",
    "s10",
    "s11",
    "t3",
    "t4",
    "t5",
    "t6",
)
REG = {name: i for i, name in enumerate(ABI_NAMES)}
REG.update({f"x{i}": i for i in range(32)})
REG["fp"] = 8


class EncodeError(ValueError):
    pass


def reg(r: int | str) -> int:
    if isinstance(r, str):
        try:
            return REG[r]
        except KeyError:
            raise EncodeError(f"unknown register {r!r}") from None
    if not 0 <= r < 32:
        raise EncodeError(f"register number {r} out of range")
    return r


def _signed(value: int, bits: int, what: str) -> int:
    if not -(1 << (bits - 1)) <= value < 1 << (bits - 1):
        raise EncodeError(f"{what} {value} does not fit in {bits} signed bits")
    return value & ((1 << bits) - 1)


# The encoders below are the compiler's innermost loop: each tries a fast path (registers looked up in
# _NUM, immediates range-checked inline) and falls back to reg()/_signed(), which raise the exact error.
_NUM: dict[int | str, int] = {i: i for i in range(32)}
_NUM.update(REG)


def r_type(opcode: int, rd, funct3: int, rs1, rs2, funct7: int) -> int:
    try:
        return (funct7 << 25) | (_NUM[rs2] << 20) | (_NUM[rs1] << 15) | (funct3 << 12) | (_NUM[rd] << 7) | opcode
    except (KeyError, TypeError):
        return (funct7 << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode


def i_type(opcode: int, rd, funct3: int, rs1, imm: int) -> int:
    if -2048 <= imm < 2048:
        try:
            return ((imm & 0xFFF) << 20) | (_NUM[rs1] << 15) | (funct3 << 12) | (_NUM[rd] << 7) | opcode
        except (KeyError, TypeError):
            pass
    return (_signed(imm, 12, "immediate") << 20) | (reg(rs1) << 15) | (funct3 << 12) | (reg(rd) << 7) | opcode


def s_type(opcode: int, funct3: int, rs1, rs2, imm: int) -> int:
    if -2048 <= imm < 2048:
        try:
            bits = imm & 0xFFF
            return (
                ((bits >> 5) << 25)
                | (_NUM[rs2] << 20)
                | (_NUM[rs1] << 15)
                | (funct3 << 12)
                | ((bits & 0x1F) << 7)
                | opcode
            )
        except (KeyError, TypeError):
            pass
    imm = _signed(imm, 12, "store offset")
    return ((imm >> 5) << 25) | (reg(rs2) << 20) | (reg(rs1) << 15) | (funct3 << 12) | ((imm & 0x1F) << 7) | opcode


def b_type(funct3: int, rs1, rs2, offset: int) -> int:
    if offset & 1:
        raise EncodeError(f"branch offset {offset} is odd")
    o = _signed(offset, 13, "branch offset")
    return (
        (((o >> 12) & 1) << 31)
        | (((o >> 5) & 0x3F) << 25)
        | (reg(rs2) << 20)
        | (reg(rs1) << 15)
        | (funct3 << 12)
        | (((o >> 1) & 0xF) << 8)
        | (((o >> 11) & 1) << 7)
        | 0x63
    )


def u_type(opcode: int, rd, imm20: int) -> int:
    try:
        return ((imm20 & 0xFFFFF) << 12) | (_NUM[rd] << 7) | opcode
    except (KeyError, TypeError):
        return ((imm20 & 0xFFFFF) << 12) | (reg(rd) << 7) | opcode


def j_type(rd, offset: int) -> int:
    if offset & 1:
        raise EncodeError(f"jump offset {offset} is odd")
    o = _signed(offset, 21, "jump offset")
    return (
        (((o >> 20) & 1) << 31)
        | (((o >> 1) & 0x3FF) << 21)
        | (((o >> 11) & 1) << 20)
        | (((o >> 12) & 0xFF) << 12)
        | (reg(rd) << 7)
        | 0x6F
    )


# -- RV64I ---------------------------------------------------------------------


def lui(rd, imm20: int) -> int:
    return u_type(0x37, rd, imm20)


def auipc(rd, imm20: int) -> int:
    return u_type(0x17, rd, imm20)


def jal(rd, offset: int) -> int:
    return j_type(rd, offset)


def jalr(rd, rs1, imm: int = 0) -> int:
    return i_type(0x67, rd, 0, rs1, imm)


def beq(rs1, rs2, off: int) -> int:
    return b_type(0, rs1, rs2, off)


def bne(rs1, rs2, off: int) -> int:
    return b_type(1, rs1, rs2, off)


def blt(rs1, rs2, off: int) -> int:
    return b_type(4, rs1, rs2, off)


def bge(rs1, rs2, off: int) -> int:
    return b_type(5, rs1, rs2, off)


def bltu(rs1, rs2, off: int) -> int:
    return b_type(6, rs1, rs2, off)


def bgeu(rs1, rs2, off: int) -> int:
    return b_type(7, rs1, rs2, off)


def lb(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 0, rs1, imm)


def lh(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 1, rs1, imm)


def lw(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 2, rs1, imm)


def ld(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 3, rs1, imm)


def lbu(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 4, rs1, imm)


def lhu(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 5, rs1, imm)


def lwu(rd, rs1, imm: int = 0) -> int:
    return i_type(0x03, rd, 6, rs1, imm)


def sb(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x23, 0, rs1, rs2, imm)


def sh(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x23, 1, rs1, rs2, imm)


def sw(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x23, 2, rs1, rs2, imm)


def sd(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x23, 3, rs1, rs2, imm)


def addi(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 0, rs1, imm)


def slti(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 2, rs1, imm)


def sltiu(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 3, rs1, imm)


def xori(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 4, rs1, imm)


def ori(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 6, rs1, imm)


def andi(rd, rs1, imm: int) -> int:
    return i_type(0x13, rd, 7, rs1, imm)


def _shift_imm(rd, rs1, shamt: int, funct3: int, high: int, bits: int, opcode: int) -> int:
    if not 0 <= shamt < bits:
        raise EncodeError(f"shift amount {shamt} out of range [0, {bits})")
    return (
        (high << 26 if bits == 64 else high << 25)
        | (shamt << 20)
        | (reg(rs1) << 15)
        | (funct3 << 12)
        | (reg(rd) << 7)
        | opcode
    )


def slli(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 1, 0x00, 64, 0x13)


def srli(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 5, 0x00, 64, 0x13)


def srai(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 5, 0x10, 64, 0x13)


def addiw(rd, rs1, imm: int) -> int:
    return i_type(0x1B, rd, 0, rs1, imm)


def slliw(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 1, 0x00, 32, 0x1B)


def srliw(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 5, 0x00, 32, 0x1B)


def sraiw(rd, rs1, sh: int) -> int:
    return _shift_imm(rd, rs1, sh, 5, 0x20, 32, 0x1B)


def add(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 0, rs1, rs2, 0x00)


def sub(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 0, rs1, rs2, 0x20)


def sll(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 1, rs1, rs2, 0x00)


def slt(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 2, rs1, rs2, 0x00)


def sltu(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 3, rs1, rs2, 0x00)


def xor(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 4, rs1, rs2, 0x00)


def srl(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 5, rs1, rs2, 0x00)


def sra(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 5, rs1, rs2, 0x20)


def or_(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 6, rs1, rs2, 0x00)


def and_(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 7, rs1, rs2, 0x00)


def addw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 0, rs1, rs2, 0x00)


def subw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 0, rs1, rs2, 0x20)


# -- M -------------------------------------------------------------------------


def mul(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 0, rs1, rs2, 0x01)


def mulh(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 1, rs1, rs2, 0x01)


def mulhu(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 3, rs1, rs2, 0x01)


def div(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 4, rs1, rs2, 0x01)


def divu(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 5, rs1, rs2, 0x01)


def rem(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 6, rs1, rs2, 0x01)


def remu(rd, rs1, rs2) -> int:
    return r_type(0x33, rd, 7, rs1, rs2, 0x01)


def mulw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 0, rs1, rs2, 0x01)


def sllw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 1, rs1, rs2, 0x00)


def srlw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 5, rs1, rs2, 0x00)


def sraw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 5, rs1, rs2, 0x20)


def divw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 4, rs1, rs2, 0x01)


def divuw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 5, rs1, rs2, 0x01)


def remw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 6, rs1, rs2, 0x01)


def remuw(rd, rs1, rs2) -> int:
    return r_type(0x3B, rd, 7, rs1, rs2, 0x01)


# -- F and D ---------------------------------------------------------------------
# FP registers are numbers 0-31 or names f0-f31 / ft0-ft11, fs0-fs11, fa0-fa7.

FP_ABI_NAMES = (
    "ft0",
    "ft1",
    "ft2",
    "ft3",
    "ft4",
    "ft5",
    "ft6",
    "ft7",
    "fs0",
    "fs1",
    "fa0",
    "fa1",
    "fa2",
    "fa3",
    "fa4",
    "fa5",
    "fa6",
    "fa7",
    "fs2",
    "fs3",
    "fs4",
    "fs5",
    "fs6",
    "fs7",
    "fs8",
    "fs9",
    "fs10",
    "fs11",
    "ft8",
    "ft9",
    "ft10",
    "ft11",
)
FREG = {name: i for i, name in enumerate(FP_ABI_NAMES)}
FREG.update({f"f{i}": i for i in range(32)})

RM_RNE, RM_RTZ, RM_RDN, RM_RUP, RM_RMM, RM_DYN = 0, 1, 2, 3, 4, 7


def freg(r: int | str) -> int:
    if isinstance(r, str):
        try:
            return FREG[r]
        except KeyError:
            raise EncodeError(f"unknown FP register {r!r}") from None
    if not 0 <= r < 32:
        raise EncodeError(f"FP register number {r} out of range")
    return r


def _fp_r(funct7: int, rd: int, rs1: int, rs2: int, funct3: int) -> int:
    return (funct7 << 25) | (rs2 << 20) | (rs1 << 15) | (funct3 << 12) | (rd << 7) | 0x53


def flw(rd, rs1, imm: int = 0) -> int:
    return i_type(0x07, 0, 2, rs1, imm) | (freg(rd) << 7)


def fld(rd, rs1, imm: int = 0) -> int:
    return i_type(0x07, 0, 3, rs1, imm) | (freg(rd) << 7)


def fsw(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x27, 2, rs1, 0, imm) | (freg(rs2) << 20)


def fsd(rs2, rs1, imm: int = 0) -> int:
    return s_type(0x27, 3, rs1, 0, imm) | (freg(rs2) << 20)


def _fop(base7: int, double: bool, rd, rs1, rs2, funct3: int) -> int:
    return _fp_r(base7 | int(double), freg(rd), freg(rs1), freg(rs2), funct3)


def fadd(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x00, double, rd, rs1, rs2, RM_RNE)


def fsub(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x04, double, rd, rs1, rs2, RM_RNE)


def fmul(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x08, double, rd, rs1, rs2, RM_RNE)


def fdiv(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x0C, double, rd, rs1, rs2, RM_RNE)


def fsqrt(rd, rs1, double: bool) -> int:
    return _fp_r(0x2C | int(double), freg(rd), freg(rs1), 0, RM_RNE)


def fsgnj(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x10, double, rd, rs1, rs2, 0)


def fsgnjn(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x10, double, rd, rs1, rs2, 1)


def fsgnjx(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x10, double, rd, rs1, rs2, 2)


def fmin(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x14, double, rd, rs1, rs2, 0)


def fmax(rd, rs1, rs2, double: bool) -> int:
    return _fop(0x14, double, rd, rs1, rs2, 1)


def _fcmp(funct3: int, rd, rs1, rs2, double: bool) -> int:
    return _fp_r(0x50 | int(double), reg(rd), freg(rs1), freg(rs2), funct3)


def feq(rd, rs1, rs2, double: bool) -> int:
    return _fcmp(2, rd, rs1, rs2, double)


def flt(rd, rs1, rs2, double: bool) -> int:
    return _fcmp(1, rd, rs1, rs2, double)


def fle(rd, rs1, rs2, double: bool) -> int:
    return _fcmp(0, rd, rs1, rs2, double)


def fclass(rd, rs1, double: bool) -> int:
    return _fp_r(0x70 | int(double), reg(rd), freg(rs1), 0, 1)


# fcvt between integers and floats.  ``signed``/``wide`` name the integer side
# (W = 32-bit, L = 64-bit).  Float -> int uses ``rm`` (RTZ for wasm truncation).
_INT_KIND = {(True, False): 0, (False, False): 1, (True, True): 2, (False, True): 3}  # W, WU, L, LU


def fcvt_to_int(rd, rs1, *, double: bool, signed: bool, wide: bool, rm: int = RM_RTZ) -> int:
    return _fp_r(0x60 | int(double), reg(rd), freg(rs1), _INT_KIND[(signed, wide)], rm)


def fcvt_from_int(rd, rs1, *, double: bool, signed: bool, wide: bool, rm: int = RM_RNE) -> int:
    return _fp_r(0x68 | int(double), freg(rd), reg(rs1), _INT_KIND[(signed, wide)], rm)


def fcvt_s_d(rd, rs1) -> int:
    return _fp_r(0x20, freg(rd), freg(rs1), 1, RM_RNE)  # f64 -> f32


def fcvt_d_s(rd, rs1) -> int:
    return _fp_r(0x21, freg(rd), freg(rs1), 0, RM_RNE)  # f32 -> f64


def fmv_x_w(rd, rs1) -> int:
    return _fp_r(0x70, reg(rd), freg(rs1), 0, 0)


def fmv_x_d(rd, rs1) -> int:
    return _fp_r(0x71, reg(rd), freg(rs1), 0, 0)


def fmv_w_x(rd, rs1) -> int:
    return _fp_r(0x78, freg(rd), reg(rs1), 0, 0)


def fmv_d_x(rd, rs1) -> int:
    return _fp_r(0x79, freg(rd), reg(rs1), 0, 0)


# -- A extension (atomics) and fences -----------------------------------------------
# Every AMO and LR/SC here sets aq and rl: sequentially consistent, as WebAssembly's atomics are.

_AMO_FUNCT5 = {"add": 0x00, "swap": 0x01, "lr": 0x02, "sc": 0x03, "xor": 0x04, "or": 0x08, "and": 0x0C}


def amo(op: str, rd, rs1, rs2, *, double: bool) -> int:
    """``amo<op>.{w,d}.aqrl rd, rs2, (rs1)``: ``op`` is add, swap, xor, or or and."""
    return r_type(0x2F, rd, 3 if double else 2, rs1, rs2, _AMO_FUNCT5[op] << 2 | 0b11)


def lr(rd, rs1, *, double: bool) -> int:
    """``lr.{w,d}.aqrl rd, (rs1)``: load-reserved."""
    return r_type(0x2F, rd, 3 if double else 2, rs1, 0, _AMO_FUNCT5["lr"] << 2 | 0b11)


def sc(rd, rs1, rs2, *, double: bool) -> int:
    """``sc.{w,d}.aqrl rd, rs2, (rs1)``: store-conditional (rd = 0 on success)."""
    return r_type(0x2F, rd, 3 if double else 2, rs1, rs2, _AMO_FUNCT5["sc"] << 2 | 0b11)


FENCE_R, FENCE_W = 2, 1  # predecessor/successor set bits (i = 8 and o = 4 are device input and output)


def fence(pred: int = FENCE_R | FENCE_W, succ: int = FENCE_R | FENCE_W) -> int:
    """``fence pred, succ`` (default ``fence rw, rw``)."""
    return (pred << 24) | (succ << 20) | 0x0F


# -- system ----------------------------------------------------------------------

ECALL = 0x00000073
EBREAK = 0x00100073
NOP = 0x00000013
WFI = 0x10500073
MRET = 0x30200073
SRET = 0x10200073


def sfence_vma(rs1=0, rs2=0) -> int:
    return r_type(0x73, 0, 0, rs1, rs2, 0x09)


def csrrw(rd, csr: int, rs1) -> int:
    return (csr << 20) | (reg(rs1) << 15) | (1 << 12) | (reg(rd) << 7) | 0x73


def csrrs(rd, csr: int, rs1) -> int:
    return (csr << 20) | (reg(rs1) << 15) | (2 << 12) | (reg(rd) << 7) | 0x73


def csrrc(rd, csr: int, rs1) -> int:
    return (csr << 20) | (reg(rs1) << 15) | (3 << 12) | (reg(rd) << 7) | 0x73


CSR_FFLAGS = 0x001
FFLAG_NV = 0x10  # invalid operation


def li_words(rd, value: int) -> list[int]:
    """Instructions that load the 64-bit constant ``value`` into ``rd`` (at most 8)."""
    value &= (1 << 64) - 1
    if value >= 1 << 63:
        value -= 1 << 64
    if -2048 <= value < 2048:
        return [addi(rd, 0, value)]
    if -(1 << 31) <= value < 1 << 31:
        lo = ((value & 0xFFF) ^ 0x800) - 0x800
        hi = ((value - lo) >> 12) & 0xFFFFF
        out = [lui(rd, hi)]
        if lo:
            out.append(addiw(rd, rd, lo))
        return out
    # Build the upper part recursively, then shift in 12 low bits at a time.
    lo = ((value & 0xFFF) ^ 0x800) - 0x800
    rest = (value - lo) >> 12
    shift = 12
    while rest & 1 == 0 and shift < 52 and not -(1 << 31) <= rest < 1 << 31:
        rest >>= 1
        shift += 1
    out = li_words(rd, rest)
    out.append(slli(rd, rd, shift))
    if lo:
        out.append(addi(rd, rd, lo))
    return out


class Assembler:
    """Words plus labels; ``branch``/``jump`` take a label, patched by :meth:`finish`."""

    def __init__(self, base: int = 0) -> None:
        self.base = base
        self.words: list[int] = []
        self.labels: dict[str, int] = {}
        self._fixups: list[tuple[int, str, str, tuple]] = []

    @property
    def pc(self) -> int:
        return self.base + 4 * len(self.words)

    def emit(self, *words: int) -> Assembler:
        self.words.extend(words)
        return self

    def li(self, rd, value: int) -> Assembler:
        return self.emit(*li_words(rd, value))

    def label(self, name: str) -> Assembler:
        if name in self.labels:
            raise EncodeError(f"label {name!r} defined twice")
        self.labels[name] = self.pc
        return self

    def branch(self, kind: str, rs1, rs2, target: str) -> Assembler:
        self._fixups.append((len(self.words), "b", target, (kind, rs1, rs2)))
        return self.emit(NOP)

    def jump(self, target: str, rd="zero") -> Assembler:
        self._fixups.append((len(self.words), "j", target, (rd,)))
        return self.emit(NOP)

    def finish(self) -> bytes:
        for index, kind, target, args in self._fixups:
            if target not in self.labels:
                raise EncodeError(f"undefined label {target!r}")
            offset = self.labels[target] - (self.base + 4 * index)
            if kind == "b":
                op, rs1, rs2 = args
                self.words[index] = globals()[op](rs1, rs2, offset)
            else:
                self.words[index] = jal(args[0], offset)
        self._fixups.clear()
        return b"".join(struct.pack("<I", w) for w in self.words)


def memoized(maxsize: int = 1 << 14) -> types.SimpleNamespace:
    """This module as a namespace whose instruction encoders (the public functions returning a word) remember
    their last ``maxsize`` encodings each: one C-level cache lookup instead of two or three Python calls.  A
    code generator encodes the same few thousand instructions over and over (the compiler's backend imports
    the encoders this way); errors are raised as by the plain encoders, and never remembered."""
    names = {}
    for name, value in globals().items():
        if name.startswith("_"):
            continue
        if inspect.isfunction(value) and value.__module__ == __name__ and value.__annotations__.get("return") == "int":
            value = functools.lru_cache(maxsize=maxsize)(value)
        names[name] = value
    return types.SimpleNamespace(**names)
