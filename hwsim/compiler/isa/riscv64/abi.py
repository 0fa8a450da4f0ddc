"""RV64's calling convention for compiled WebAssembly: where a signature's values go (a0-a7, fa0-fa7, the ABI area).

Compiled code (through :class:`~hwsim.compiler.isa.riscv64.masm.RiscvMasm`)
and the runtime (moving arguments and results across a host call) both ask
:func:`abi_locations`, so the two can never disagree.  :data:`FUEL` is the
register metered code keeps the fuel count in (see hwsim/compiler/abi.py).
"""

from __future__ import annotations

from collections.abc import Iterable

from ...abi import AbiLoc, signature_locations
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


# The prologue RiscvMasm.prologue writes: 4 words that push ra and fp and set fp, 3 that lower sp by the
# frame size, then one ``sd``/``fsd reg, off(fp)`` per callee-saved register that homes a local.
_PROLOGUE_FIXED_WORDS = 7


def saved_registers(code: bytes, start: int) -> tuple[tuple[int, int], ...]:
    """``(DWARF register, fp offset)`` of each callee-saved register the function at ``start`` of ``code``
    saves in its prologue: what an unwinder (runtime/exceptions.py) puts back when it leaves the frame.
    Read from the code itself, so every compiled function has it (frames.FrameInfo.saved says the same for
    the functions a debugger can describe)."""
    saves = []
    pos = start + 4 * _PROLOGUE_FIXED_WORDS
    while pos + 4 <= len(code):
        word = int.from_bytes(code[pos : pos + 4], "little")
        opcode, funct3, rs1 = word & 0x7F, (word >> 12) & 7, (word >> 15) & 31
        if opcode not in (0x23, 0x27) or funct3 != 3 or rs1 != regs.FP.num:
            break
        imm = ((word >> 25) << 5) | ((word >> 7) & 31)
        imm -= (imm & 0x800) << 1
        rs2 = (word >> 20) & 31
        saves.append((rs2 if opcode == 0x23 else 32 + rs2, imm))
        pos += 4
    return tuple(saves)
