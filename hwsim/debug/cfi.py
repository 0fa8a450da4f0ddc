"""Call-frame information (``.debug_frame``, DWARF 4) for generated code: how GDB finds each caller.

Two CIEs, each FDE naming one::

    CIE 0  return address in ra (x1); CFA = sp + 0 at entry; the psABI's caller-saved registers
           (t0-t6, a0-a7, ft/fa) undefined in the caller: GDB shows them <not saved> in outer frames
           compiled functions: their frame (compiler/frames.py) step by step
                 +4   addi sp, sp, -16       CFA = sp + 16
                 +8   sd ra, 8(sp)           ra at CFA - 8
                 +12  sd fp, 0(sp)           fp at CFA - 16
                 +16  addi fp, sp, 16        CFA = fp + 0
                 [early return]              a guard's epilogue (mv sp, fp; ld fp; ret): CFA = sp + 0
                 prologue_end                each saved register at its slot (CFA + offset)
                 epilogue [start, end)       CFA = sp + 0 (fp is being restored), then as before
           the host-call stub (ecall; ret): a leaf, CFA = sp, ra in ra
    CIE 1  return address in column 64 (no register: the pc alone, so ra can differ from it)
           ``hwsim_host_entry`` (the exit address a call from the host returns to): outermost,
           the pc is undefined
           ``hwsim_nested_entry`` (the exit address of a call the host makes while it serves an
           ecall, such as an interrupt handler run inside ``hwsim_irq_wait``): the record the
           runtime left right above the new stack (runtime/layout.py, NESTED_RECORD) gives the
           interrupted code: fp at sp + 0, ra at sp + 8, sp at sp + 16, pc at sp + 24
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from .dwarf import sleb128, uleb128

RA, SP, FP = 1, 2, 8
# The RISC-V psABI's caller-saved registers: t0-t2, a0-a7, t3-t6, ft0-ft7, fa0-fa7, ft8-ft11 (DWARF numbers).
CALLER_SAVED = (*range(5, 8), *range(10, 18), *range(28, 32), *range(32, 40), *range(42, 50), *range(60, 64))
PC_COLUMN = 64  # CIE 1's return-address column: not a register
DATA_ALIGN = -8
CFA_advance_loc1, CFA_advance_loc2, CFA_advance_loc4 = 0x02, 0x03, 0x04
CFA_offset, CFA_remember_state, CFA_restore_state = 0x80, 0x0A, 0x0B
CFA_def_cfa, CFA_def_cfa_register, CFA_def_cfa_offset = 0x0C, 0x0D, 0x0E
CFA_def_cfa_expression, CFA_expression, CFA_undefined = 0x0F, 0x10, 0x07
OP_breg0, OP_deref = 0x70, 0x06


@dataclass(frozen=True)
class Fde:
    """``[low, high)`` unwound by ``instructions`` under CIE ``cie`` (0 or 1)."""

    low: int
    high: int
    instructions: bytes
    cie: int = 0


class _Rows:
    """CFA instructions at code offsets, in order."""

    def __init__(self) -> None:
        self.out = bytearray()
        self.at = 0

    def advance(self, offset: int, *ops: bytes) -> None:
        delta = offset - self.at
        if delta < 0:
            raise ValueError(f"CFI rows out of order ({offset:#x} after {self.at:#x})")
        if 0 < delta < 64:
            self.out.append(0x40 | delta)
        elif delta:
            for opcode, fmt, limit in ((CFA_advance_loc1, "<B", 1 << 8), (CFA_advance_loc2, "<H", 1 << 16)):
                if delta < limit:
                    self.out += bytes([opcode]) + struct.pack(fmt, delta)
                    break
            else:
                self.out += bytes([CFA_advance_loc4]) + struct.pack("<I", delta)
        self.at = offset
        for op in ops:
            self.out += op


def _saved_at(reg: int, cfa_offset: int) -> bytes:
    """``reg`` saved at CFA + ``cfa_offset`` (a multiple of 8 below the CFA)."""
    return bytes([CFA_offset | reg]) + uleb128(cfa_offset // DATA_ALIGN)


def compiled_function(prologue_end: int, saved: tuple[tuple[int, int], ...], epilogues) -> bytes:
    """The rows of a compiled function with the frame of compiler/frames.py."""
    rows = _Rows()
    rows.advance(4, bytes([CFA_def_cfa_offset]) + uleb128(16))
    rows.advance(8, _saved_at(RA, -8))
    rows.advance(12, _saved_at(FP, -16))
    rows.advance(16, bytes([CFA_def_cfa]) + uleb128(FP) + uleb128(0))
    for start, end in sorted(epilogues):  # a prologue's early return (before any register is saved)
        if 16 <= start < prologue_end:
            rows.advance(start, bytes([CFA_remember_state, CFA_def_cfa_register]) + uleb128(SP))
            rows.advance(end, bytes([CFA_restore_state]))
    rows.advance(max(prologue_end, rows.at, 16), *(_saved_at(reg, off) for reg, off in saved if reg < 64))
    for start, end in sorted(epilogues):
        if start < rows.at:
            continue
        rows.advance(start, bytes([CFA_remember_state, CFA_def_cfa_register]) + uleb128(SP))
        rows.advance(end, bytes([CFA_restore_state]))
    return bytes(rows.out)


def _block(*ops: bytes) -> bytes:
    body = b"".join(ops)
    return uleb128(len(body)) + body


def _breg(reg: int, offset: int) -> bytes:
    return bytes([OP_breg0 + reg]) + sleb128(offset)


def host_entry(*, nested: bool) -> bytes:
    """The host entry's rows (CIE 1): outermost for a call from the host; for a nested call, the code
    the host's ecall interrupted, from the record above the entry's stack (fp, ra, sp, pc)."""
    if not nested:
        return bytes([CFA_undefined]) + uleb128(PC_COLUMN)
    rows = bytes([CFA_def_cfa_expression]) + _block(_breg(SP, 16), bytes([OP_deref]))
    for column, offset in ((FP, 0), (RA, 8), (PC_COLUMN, 24)):
        rows += bytes([CFA_expression]) + uleb128(column) + _block(_breg(SP, offset))
    return rows


def _cie(return_column: int) -> bytes:
    body = struct.pack("<IB", 0xFFFF_FFFF, 3) + b"\0"  # CIE id, version 3, no augmentation
    body += uleb128(1) + sleb128(DATA_ALIGN) + uleb128(return_column)
    body += bytes([CFA_def_cfa]) + uleb128(SP) + uleb128(0)
    if return_column == RA:
        # A call clobbers the caller-saved registers: in a caller's frame they hold nothing of the caller's
        # (a local the compiler kept in a1-a5 was dead at the call), so GDB says <optimized out>, not a
        # value that is the callee's.
        for reg in CALLER_SAVED:
            body += bytes([CFA_undefined]) + uleb128(reg)
    return _padded(body)


def _padded(body: bytes) -> bytes:
    body += bytes(-(len(body) + 4) % 8)  # DW_CFA_nop to a multiple of the address size
    return struct.pack("<I", len(body)) + body


def write_debug_frame(fdes: list[Fde]) -> bytes:
    """The ``.debug_frame`` section: the two CIEs, then one FDE each."""
    out = bytearray()
    cies = []
    for column in (RA, PC_COLUMN):
        cies.append(len(out))
        out += _cie(column)
    for fde in sorted(fdes, key=lambda f: f.low):
        out += _padded(struct.pack("<IQQ", cies[fde.cie], fde.low, fde.high - fde.low) + fde.instructions)
    return bytes(out)


__all__ = ["Fde", "compiled_function", "host_entry", "write_debug_frame"]
