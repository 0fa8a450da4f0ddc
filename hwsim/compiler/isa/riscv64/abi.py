"""RV64's calling convention for compiled WebAssembly: where a signature's values go (a0-a7, fa0-fa7, the ABI area).

Compiled code (through :class:`~hwsim.compiler.isa.riscv64.masm.RiscvMasm`)
and the runtime (moving arguments and results across a host call) both ask
:func:`abi_locations`, so the two can never disagree.  :data:`FUEL` is the
register metered code keeps the fuel count in (see hwsim/compiler/abi.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from ....riscv import asm
from ...abi import AbiLoc, signature_locations
from ...errors import CompilerBug
from . import regs
from .regs import FLOAT_ARGS, INT_ARGS

FUEL = regs.FUEL  # the fuel count of metered code, moved to and from the Store's fuel cell by the runtime


_LOCATIONS: dict[tuple[int, ...], tuple[AbiLoc, ...]] = {}  # by signature (hashing the register sets is slow)


def abi_locations(types: Iterable[int]) -> tuple[AbiLoc, ...]:
    """Where each value of ``types`` goes, parameters or results: :class:`RegLoc` or :class:`AreaLoc` each."""
    key = tuple(types)
    locations = _LOCATIONS.get(key)
    if locations is None:
        locations = _LOCATIONS[key] = signature_locations(key, INT_ARGS, FLOAT_ARGS)
    return locations


# The prologue RiscvMasm.prologue writes: 4 words that push ra and fp and set fp; when the function opens
# with a guard on its parameters, the guard's branch and an early return (no saves); 3 words that lower sp
# by the frame size, the last of them this ``sub sp, sp, t5``; then one ``sd``/``fsd reg, off(fp)`` per
# callee-saved register that homes a local.
_LOWER_SP = asm.sub(regs.SP.num, regs.SP.num, regs.T5.num)
_PROLOGUE_MAX_WORDS = 32  # far more than the push, a guard and its early return, and the frame lowering
_FIRST_SAVE_SLOT = -24  # fp-relative; then -32, -40, ...
_SAVABLE = frozenset(regs.dwarf_number(reg) for reg in (*regs.INT_LOCALS_UNMETERED, *regs.FLOAT_LOCALS))


def saved_registers(code: bytes, start: int) -> tuple[tuple[int, int], ...]:
    """``(DWARF register, fp offset)`` of each callee-saved register the function at ``start`` of ``code``
    saves in its prologue: what an unwinder (runtime/exceptions.py) puts back when it leaves the frame.
    Read from the code itself, so every compiled function has it (frames.FrameInfo.saved says the same for
    the functions a debugger can describe).  The saves follow the word that lowers sp, wherever a guard's
    early return has put it (nothing before it stores ``sub sp, sp, t5``: the early return restores sp
    from fp)."""
    end = min(len(code), start + 4 * _PROLOGUE_MAX_WORDS)
    pos = start + 16
    while pos + 4 <= end and int.from_bytes(code[pos : pos + 4], "little") != _LOWER_SP:
        pos += 4
    if pos + 4 > end:
        raise CompilerBug(f"no frame set-up in the prologue of the function at code offset {start:#x}")
    pos += 4
    saves: list[tuple[int, int]] = []
    while pos + 4 <= len(code):
        word = int.from_bytes(code[pos : pos + 4], "little")
        opcode, funct3, rs1 = word & 0x7F, (word >> 12) & 7, (word >> 15) & 31
        if opcode not in (0x23, 0x27) or funct3 != 3 or rs1 != regs.FP.num:
            break
        imm = ((word >> 25) << 5) | ((word >> 7) & 31)
        imm -= (imm & 0x800) << 1
        rs2 = (word >> 20) & 31
        reg = rs2 if opcode == 0x23 else 32 + rs2
        # The saves fill the slots below ra and fp in order (RiscvMasm.begin_frame), and only registers that
        # home locals are saved: a store past them is the body's own (a parameter spilled to its slot).
        if imm != _FIRST_SAVE_SLOT - 8 * len(saves) or reg not in _SAVABLE:
            break
        saves.append((reg, imm))
        pos += 4
    return tuple(saves)
