"""hwsim.riscv.memop: load/store operands decoded from instruction bits, checked against capstone."""

from __future__ import annotations

import random

import capstone

from hwsim.riscv import asm as A
from hwsim.riscv.asm import ABI_NAMES
from hwsim.riscv.memop import MemOp, decode_memop

_SIZES = {"b": 1, "h": 2, "w": 4, "d": 8}
FP_NAMES = (
    [f"ft{i}" for i in range(8)]
    + ["fs0", "fs1"]
    + [f"fa{i}" for i in range(8)]
    + [f"fs{i}" for i in range(2, 12)]
    + [f"ft{i}" for i in range(8, 12)]
)


def _capstone():
    md = capstone.Cs(capstone.CS_ARCH_RISCV, capstone.CS_MODE_RISCV64 | capstone.CS_MODE_RISCVC)
    md.detail = True
    return md


def _reference(md, code: bytes):
    """(store, size, base, disp, length) of a load/store as capstone decodes it, else None."""
    for ins in md.disasm(code, 0x1000, count=1):
        mnem = ins.mnemonic.removeprefix("c.")
        fp = mnem.startswith("f")
        core = mnem.removeprefix("f")
        if core[:1] not in "ls" or core[1:2] not in _SIZES or core.startswith(("sl", "sr", "su", "sext", "ls")):
            return None
        ops = ins.operands
        mems = [op for op in ops if op.type == capstone.riscv.RISCV_OP_MEM]
        if mems:
            base_reg, disp = mems[0].mem.base, mems[0].mem.disp
        else:  # compressed forms: capstone gives (data register, offset, base register)
            assert [op.type for op in ops] == [
                capstone.riscv.RISCV_OP_REG,
                capstone.riscv.RISCV_OP_IMM,
                capstone.riscv.RISCV_OP_REG,
            ], ins.mnemonic
            base_reg, disp = ops[2].reg, ops[1].imm
        base = ABI_NAMES.index(ins.reg_name(base_reg))
        data = (FP_NAMES if fp else ABI_NAMES).index(ins.reg_name(ops[0].reg))
        signed = core[0] == "l" and not fp and not core.endswith("u")
        return (core[0] == "s", _SIZES[core[1]], base, disp, ins.size, fp, data, signed)
    return None


def test_agrees_with_capstone_on_random_loads_and_stores():
    md = _capstone()
    rng = random.Random(7)
    checked = 0
    for _ in range(60_000):
        if rng.random() < 0.5:  # 32-bit: bias towards the load/store opcodes
            word = (rng.getrandbits(32) & ~0x7F) | rng.choice((0x03, 0x23, 0x07, 0x27, 0x13, 0x33))
            code = word.to_bytes(4, "little")
        else:
            half = rng.getrandbits(16)
            if half & 3 == 3:
                half &= ~1
            code = half.to_bytes(2, "little") + b"\x00\x00"
        ref = _reference(md, code)
        op = decode_memop(code)
        if ref is None:
            assert op is None or not any(True for _ in md.disasm(code, 0x1000, count=1)), code.hex()
            continue
        assert op is not None, (code.hex(), ref)
        assert (op.store, op.size, op.base, op.disp, op.length, op.float_reg, op.reg, op.signed) == ref, code.hex()
        checked += 1
    assert checked > 10_000


def test_encoder_round_trip():
    assert decode_memop(A.lw("a0", "a1", -4).to_bytes(4, "little")) == MemOp(False, 4, True, False, 10, 11, -4, 4)
    assert decode_memop(A.lbu("t0", "sp", 7).to_bytes(4, "little")) == MemOp(False, 1, False, False, 5, 2, 7, 4)
    assert decode_memop(A.sd("s1", "a5", 2040).to_bytes(4, "little")) == MemOp(True, 8, False, False, 9, 15, 2040, 4)
    assert decode_memop(A.addi("a0", "a0", 1).to_bytes(4, "little")) is None
    assert decode_memop(b"\x01") is None and decode_memop(b"\x03\x00") is None
