"""Run one memory access at a virtual address on a real CPU model, for differential MMU tests.

Two probes share one physical layout and one M-mode driver program:

* :class:`QemuProbe`: Unicorn in ``UC_TLB_CPU`` mode, so QEMU's own Sv39/Sv48
  walker translates (the reference; it matches the specification except
  that QEMU 5.0 ignores PTE bits 63:54 and reserved non-leaf D/A/U bits);
* :class:`HwsimProbe`: hwsim's :class:`~hwsim.Machine`, every translation
  through hwsim's TLB-fill hook and walker.

Loads and stores run in M-mode with mstatus.MPRV=1 and MPP=priv, so only the
data access is translated.  A fetch is an ``mret`` to the VA; the page the
walker predicts holds an ``ecall``, so a successful fetch shows up as an
environment call.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

from unicorn import Uc, UcError
from unicorn import riscv_const as rv
from unicorn import unicorn_const as uc_const

from hwsim import Machine
from hwsim.riscv import asm as A
from hwsim.riscv.priv import MSTATUS_MPP_SHIFT, MSTATUS_MPRV, MSTATUS_MXR, MSTATUS_SUM, Access, Priv

RAM_BASE = 0x8000_0000
RAM_SIZE = 2 << 20
DATA_SIZE = 1 << 20  # [RAM_BASE, RAM_BASE + DATA_SIZE): each u64 holds its own physical address
TABLE_BASE = RAM_BASE + DATA_SIZE  # page-table frames from here
CODE_PA = RAM_BASE + RAM_SIZE - 0x1000  # the M-mode driver program
STORE_TAG = 0x5A5A_1234_C0DE_F00D


@dataclass(frozen=True)
class Outcome:
    kind: str  # "ok" or "exception"
    cause: int | None  # exception code (8/9 for a fetch that reached the ecall)
    value: int | None  # the loaded value, for loads that succeeded


_DATA = b"".join(struct.pack("<Q", RAM_BASE + off) for off in range(0, DATA_SIZE, 8))


def data_image() -> bytearray:
    return bytearray(_DATA)


def driver_program(access: Access) -> bytes:
    if access is Access.LOAD:
        words = [A.ld("t0", "a0", 0), A.NOP]
    elif access is Access.STORE:
        words = [A.sd("t1", "a0", 0), A.NOP]
    else:
        words = [0x30200073, A.NOP]  # mret
    return struct.pack(f"<{len(words)}I", *words)


def mstatus_for(access: Access, priv: Priv, sum_: bool, mxr: bool) -> int:
    value = (int(priv) << MSTATUS_MPP_SHIFT) | (MSTATUS_SUM if sum_ else 0) | (MSTATUS_MXR if mxr else 0)
    if access is not Access.FETCH:
        value |= MSTATUS_MPRV
    return value


class QemuProbe:
    """QEMU's walker, through Unicorn's architectural (CPU) TLB mode."""

    def __init__(self) -> None:
        self.uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
        self.uc.ctl_set_tlb_mode(uc_const.UC_TLB_CPU)
        self.uc.mem_map(RAM_BASE, RAM_SIZE, uc_const.UC_PROT_ALL)
        self.causes: list[int] = []
        self.uc.hook_add(uc_const.UC_HOOK_INTR, self._intr)

    def _intr(self, uc, intno, _data):
        if intno == 8:  # Unicorn reports every ecall as 8; the architectural cause is 8 + priv
            intno += uc.reg_read(rv.UC_RISCV_REG_PRIV)
        self.causes.append(intno)
        uc.emu_stop()

    def run(
        self, ram: bytes, satp: int, va: int, access: Access, priv: Priv, sum_: bool, mxr: bool
    ) -> tuple[Outcome, bytes]:
        uc = self.uc
        uc.reg_write(rv.UC_RISCV_REG_PRIV, Priv.M)
        uc.mem_write(RAM_BASE, bytes(ram))
        uc.mem_write(CODE_PA, driver_program(access))
        uc.ctl_flush_tb()
        uc.reg_write(rv.UC_RISCV_REG_SATP, satp)
        uc.reg_write(rv.UC_RISCV_REG_MSTATUS, mstatus_for(access, priv, sum_, mxr))
        uc.reg_write(rv.UC_RISCV_REG_MEPC, va)
        uc.reg_write(rv.UC_RISCV_REG_A0, va)
        uc.reg_write(rv.UC_RISCV_REG_T1, STORE_TAG)
        uc.reg_write(rv.UC_RISCV_REG_T0, 0)
        uc.ctl(uc_const.UC_CTL_TLB_FLUSH, uc_const.UC_CTL_IO_WRITE)
        self.causes.clear()
        try:
            uc.emu_start(CODE_PA, 0xDEAD_0000_0000_0001, count=2)  # an exit never reached
        except UcError as exc:
            raise AssertionError(f"QEMU probe stopped with {exc}") from None
        if self.causes:
            outcome = Outcome("exception", self.causes[0], None)
        else:
            outcome = Outcome("ok", None, uc.reg_read(rv.UC_RISCV_REG_T0) if access is Access.LOAD else None)
        uc.reg_write(rv.UC_RISCV_REG_PRIV, Priv.M)
        return outcome, bytes(uc.mem_read(RAM_BASE, RAM_SIZE))


class HwsimProbe:
    """hwsim's Machine: Unicorn in virtual-TLB mode, translations by hwsim."""

    def __init__(self, **machine_args) -> None:
        self.m = Machine(ram_base=RAM_BASE, ram_size=RAM_SIZE, **machine_args)

    def run(
        self, ram: bytes, satp: int, va: int, access: Access, priv: Priv, sum_: bool, mxr: bool
    ) -> tuple[Outcome, bytes]:
        m = self.m
        m.set_reg("priv", Priv.M)
        m.phys.write(RAM_BASE, ram)
        m.phys.write(CODE_PA, driver_program(access))
        m.code_changed()
        m.set_reg("satp", satp)
        m.set_reg("mstatus", mstatus_for(access, priv, sum_, mxr))
        m._csr_access(rv.UC_RISCV_REG_MEPC, va)
        m.set_reg("a0", va)
        m.set_reg("t1", STORE_TAG)
        m.set_reg("t0", 0)
        m.sfence_vma()
        result = m.run(CODE_PA, max_insns=2)
        if result.fault is not None:
            outcome = Outcome("exception", int(result.fault.cause), None)
        elif result.cause is not None:
            outcome = Outcome("exception", int(result.cause), None)
        else:
            outcome = Outcome("ok", None, m.get_reg("t0") if access is Access.LOAD else None)
        m.set_reg("priv", Priv.M)
        return outcome, m.phys.read(RAM_BASE, RAM_SIZE)
