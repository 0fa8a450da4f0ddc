"""Disassembly with capstone (RV64GC), and the memory operand of a load or store."""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .asm import ABI_NAMES
from .memop import decode_memop

if TYPE_CHECKING:
    import capstone


@dataclass(frozen=True, slots=True)
class Insn:
    address: int
    size: int
    mnemonic: str
    op_str: str
    mem_base: str | None = None  # ABI name of the base register of a memory operand
    mem_disp: int = 0

    @property
    def text(self) -> str:
        return f"{self.mnemonic} {self.op_str}".strip()


_RISCV_OP_MEM = 3  # capstone.riscv.RISCV_OP_MEM (checked when capstone is loaded)


@lru_cache(maxsize=1)
def _cs() -> capstone.Cs:
    import capstone  # on first use: most runs never disassemble, and capstone takes a while to load

    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    md.detail = True
    assert capstone.riscv.RISCV_OP_MEM == _RISCV_OP_MEM
    return md


def disassemble_one(code: bytes, address: int) -> Insn | None:
    """The first instruction in ``code`` (2 or 4 bytes), or None if it does not decode."""
    for ins in _cs().disasm(code, address, count=1):
        base, disp = None, 0
        for op in ins.operands:
            if op.type == _RISCV_OP_MEM:
                base, disp = ins.reg_name(op.mem.base), op.mem.disp
        if base is None:  # capstone gives compressed loads/stores as (reg, imm, reg): decode the bits
            memop = decode_memop(bytes(code[: ins.size]))
            if memop is not None:
                base, disp = ABI_NAMES[memop.base], memop.disp
        return Insn(ins.address, ins.size, ins.mnemonic, ins.op_str, base, disp)
    return None


def disassemble(code: bytes, address: int) -> list[Insn]:
    return [Insn(i.address, i.size, i.mnemonic, i.op_str) for i in _cs().disasm(code, address)]
