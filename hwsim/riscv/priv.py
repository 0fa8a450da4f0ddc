"""Privileged-architecture constants: privilege levels, access types, causes, CSR bits."""

from __future__ import annotations

import enum


class Priv(enum.IntEnum):
    """Privilege levels as encoded in ``mstatus.MPP`` (and Unicorn's PRIV register)."""

    U = 0
    S = 1
    M = 3

    @classmethod
    def parse(cls, text: str) -> Priv:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            raise ValueError(f"privilege must be U, S or M, not {text!r}") from None


class Cause(enum.IntEnum):
    """Synchronous exception codes (``mcause``/``scause`` with interrupt bit clear)."""

    INSN_MISALIGNED = 0
    FETCH_ACCESS = 1
    ILLEGAL_INSN = 2
    BREAKPOINT = 3
    LOAD_MISALIGNED = 4
    LOAD_ACCESS = 5
    STORE_MISALIGNED = 6
    STORE_ACCESS = 7
    ECALL_U = 8
    ECALL_S = 9
    ECALL_M = 11
    FETCH_PAGE_FAULT = 12
    LOAD_PAGE_FAULT = 13
    STORE_PAGE_FAULT = 15
    # Hypervisor extension: a G-stage (guest-physical -> supervisor-physical) translation failed.
    FETCH_GUEST_PAGE_FAULT = 20
    LOAD_GUEST_PAGE_FAULT = 21
    STORE_GUEST_PAGE_FAULT = 23


class Access(enum.Enum):
    """The kind of memory access being translated."""

    FETCH = "fetch"
    LOAD = "load"
    STORE = "store"  # also AMOs

    @property
    def page_fault_cause(self) -> Cause:
        return _PAGE_FAULT[self]

    @property
    def access_fault_cause(self) -> Cause:
        return _ACCESS_FAULT[self]

    @property
    def guest_page_fault_cause(self) -> Cause:
        return _GUEST_PAGE_FAULT[self]

    @classmethod
    def parse(cls, text: str) -> Access:
        try:
            return cls(text.strip().lower())
        except ValueError:
            raise ValueError(f"access must be fetch, load or store, not {text!r}") from None


_PAGE_FAULT = {
    Access.FETCH: Cause.FETCH_PAGE_FAULT,
    Access.LOAD: Cause.LOAD_PAGE_FAULT,
    Access.STORE: Cause.STORE_PAGE_FAULT,
}
_GUEST_PAGE_FAULT = {
    Access.FETCH: Cause.FETCH_GUEST_PAGE_FAULT,
    Access.LOAD: Cause.LOAD_GUEST_PAGE_FAULT,
    Access.STORE: Cause.STORE_GUEST_PAGE_FAULT,
}
_ACCESS_FAULT = {Access.FETCH: Cause.FETCH_ACCESS, Access.LOAD: Cause.LOAD_ACCESS, Access.STORE: Cause.STORE_ACCESS}

# mstatus / sstatus bits that affect address translation.
MSTATUS_FS_DIRTY = 0x3 << 13  # floating-point unit state: Dirty (on)
MSTATUS_MPP_SHIFT = 11
MSTATUS_MPP_MASK = 0x3 << MSTATUS_MPP_SHIFT  # previous privilege (M-mode traps, mret)
MSTATUS_MPRV = 1 << 17  # M-mode loads/stores translated as MPP
MSTATUS_SUM = 1 << 18  # permit Supervisor User Memory access
MSTATUS_MXR = 1 << 19  # Make eXecutable Readable
MSTATUS_TVM = 1 << 20  # Trap Virtual Memory: S-mode sfence.vma and satp accesses raise illegal-instruction

# Interrupts (machine level): mstatus enable bits, mie/mip bit numbers, the mcause of an interrupt.
MSTATUS_SIE = 1 << 1
MSTATUS_MIE = 1 << 3
MSTATUS_SPIE = 1 << 5
MSTATUS_MPIE = 1 << 7
IRQ_S_SOFT = 1  # supervisor software interrupt (mip.SSIP, writable by M-mode and, delegated, by S-mode)
IRQ_M_SOFT = 3  # machine software interrupt (mip.MSIP: the CLINT's msip register of the hart)
MCAUSE_INTERRUPT = 1 << 63

# CSR numbers used by hwsim's own guest code and tests.
CSR_SSTATUS = 0x100
CSR_SATP = 0x180
CSR_MSTATUS = 0x300
CSR_MEPC = 0x341
CSR_MIP = 0x344
CSR_MIE = 0x304
CSR_MIDELEG = 0x303
CSR_MTVEC = 0x305
CSR_MSCRATCH = 0x340
CSR_STVEC = 0x105
CSR_MHARTID = 0xF14
CSR_SIP = 0x144
