"""The memory operand of an RV64 load or store, decoded from its instruction bits.

The machine uses this to carry out, on the host, one guest access that it
stopped precisely (a watched page): :func:`decode_memop` says what the
instruction reads or writes, from which register and to which.  Covered: the
RV64I loads and stores, the F/D ones, and their compressed (C) forms, which
is every load and store the compiler and ``zig cc`` emit.  Atomics are not.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class MemOp:
    store: bool
    size: int  # bytes: 1, 2, 4 or 8
    signed: bool  # loads: sign-extend the value to 64 bits
    float_reg: bool  # the data register is f<reg>, not x<reg>
    reg: int  # rd of a load, rs2 of a store
    base: int  # rs1
    disp: int  # sign-extended offset
    length: int  # instruction bytes: 2 or 4


def _sext(value: int, bits: int) -> int:
    return value - (1 << bits) if value >> (bits - 1) & 1 else value


# funct3 -> (size, signed) for LOAD (opcode 0x03); STORE (0x23) uses size only.
_INT_LOADS = {0: (1, True), 1: (2, True), 2: (4, True), 3: (8, True), 4: (1, False), 5: (2, False), 6: (4, False)}
_INT_STORES = {0: 1, 1: 2, 2: 4, 3: 8}
_FP_SIZES = {2: 4, 3: 8}  # flw/fsw, fld/fsd


def _decode32(w: int) -> MemOp | None:
    opcode = w & 0x7F
    funct3 = (w >> 12) & 7
    rd, rs1, rs2 = (w >> 7) & 31, (w >> 15) & 31, (w >> 20) & 31
    imm_i = _sext(w >> 20, 12)
    imm_s = _sext(((w >> 25) << 5) | ((w >> 7) & 31), 12)
    if opcode == 0x03 and funct3 in _INT_LOADS:
        size, signed = _INT_LOADS[funct3]
        return MemOp(False, size, signed, False, rd, rs1, imm_i, 4)
    if opcode == 0x23 and funct3 in _INT_STORES:
        return MemOp(True, _INT_STORES[funct3], False, False, rs2, rs1, imm_s, 4)
    if opcode == 0x07 and funct3 in _FP_SIZES:
        return MemOp(False, _FP_SIZES[funct3], False, True, rd, rs1, imm_i, 4)
    if opcode == 0x27 and funct3 in _FP_SIZES:
        return MemOp(True, _FP_SIZES[funct3], False, True, rs2, rs1, imm_s, 4)
    return None


def _bits(h: int, *spec: tuple[int, int, int]) -> int:
    """Gather immediate bits: each (instruction bit high, low, destination low bit)."""
    value = 0
    for hi, lo, dest in spec:
        value |= ((h >> lo) & ((1 << (hi - lo + 1)) - 1)) << dest
    return value


def _decode16(h: int) -> MemOp | None:
    quadrant = h & 3
    funct3 = h >> 13
    if quadrant == 0:  # c.fld c.lw c.ld / c.fsd c.sw c.sd: rd'/rs2' = bits 4:2, rs1' = bits 9:7
        r = 8 + ((h >> 2) & 7)
        base = 8 + ((h >> 7) & 7)
        word_off = _bits(h, (12, 10, 3), (6, 6, 2), (5, 5, 6))  # c.lw / c.sw: uimm[5:3|2|6]
        dword_off = _bits(h, (12, 10, 3), (6, 5, 6))  # c.ld / c.fld: uimm[5:3|7:6]
        table = {
            1: (False, 8, True, True, dword_off),
            2: (False, 4, True, False, word_off),
            3: (False, 8, True, False, dword_off),
            5: (True, 8, False, True, dword_off),
            6: (True, 4, False, False, word_off),
            7: (True, 8, False, False, dword_off),
        }
        if funct3 not in table:
            return None
        store, size, signed, fp, off = table[funct3]
        return MemOp(store, size, signed and not store and not fp, fp, r, base, off, 2)
    if quadrant == 2:  # stack-pointer relative
        rd = (h >> 7) & 31
        rs2 = (h >> 2) & 31
        lw_off = _bits(h, (12, 12, 5), (6, 4, 2), (3, 2, 6))
        ld_off = _bits(h, (12, 12, 5), (6, 5, 3), (4, 2, 6))
        sw_off = _bits(h, (12, 9, 2), (8, 7, 6))
        sd_off = _bits(h, (12, 10, 3), (9, 7, 6))
        if funct3 == 1:
            return MemOp(False, 8, False, True, rd, 2, ld_off, 2)  # c.fldsp
        if funct3 == 2 and rd:
            return MemOp(False, 4, True, False, rd, 2, lw_off, 2)  # c.lwsp
        if funct3 == 3 and rd:
            return MemOp(False, 8, True, False, rd, 2, ld_off, 2)  # c.ldsp
        if funct3 == 5:
            return MemOp(True, 8, False, True, rs2, 2, sd_off, 2)  # c.fsdsp
        if funct3 == 6:
            return MemOp(True, 4, False, False, rs2, 2, sw_off, 2)  # c.swsp
        if funct3 == 7:
            return MemOp(True, 8, False, False, rs2, 2, sd_off, 2)  # c.sdsp
    return None


def decode_memop(code: bytes) -> MemOp | None:
    """The load or store at the start of ``code`` (2 or 4 bytes, little-endian), or None."""
    if len(code) < 2:
        return None
    half = int.from_bytes(code[:2], "little")
    if half & 3 != 3:
        return _decode16(half)
    if len(code) < 4:
        return None
    return _decode32(int.from_bytes(code[:4], "little"))


__all__ = ["MemOp", "decode_memop"]
