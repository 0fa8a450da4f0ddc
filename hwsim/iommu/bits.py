"""Bit layouts of the RISC-V IOMMU (base architecture 1.0): ddtp, device context, commands, fault records,
registers.  Only layouts live here; ``iommu.py`` interprets them.

Device context, base format (32 bytes, four little-endian doublewords)::

    +0  tc       V[0] EN_ATS[1] EN_PRI[2] T2GPA[3] DTF[4] PDTV[5] PRPR[6] GADE[7] SADE[8] DPE[9] SBE[10] SXL[11]
    +8  iohgatp  PPN[43:0] GSCID[59:44] MODE[63:60]        (0 Bare; 8 Sv39x4, 9 Sv48x4 with second_stage=true)
    +16 ta       PSCID[31:12]
    +24 fsc      iosatp: PPN[43:0] MODE[63:60] (0 Bare, 8 Sv39, 9 Sv48)

Device-directory index (base format): DDI[0] = device_id[6:0], DDI[1] = [15:7], DDI[2] = [23:16].
"""

from __future__ import annotations

import enum

from ..devices.regs import Field, RegAccess, Register, RegisterLayout

# -- ddtp ---------------------------------------------------------------------------------------

DDTP_MODE_MASK = 0xF
DDTP_BUSY = 1 << 4
DDTP_PPN_SHIFT = 10
DDTP_PPN_MASK = ((1 << 44) - 1) << DDTP_PPN_SHIFT


class IommuMode(enum.IntEnum):
    OFF = 0
    BARE = 1
    LVL1 = 2
    LVL2 = 3
    LVL3 = 4

    @property
    def levels(self) -> int:
        return {IommuMode.LVL1: 1, IommuMode.LVL2: 2, IommuMode.LVL3: 3}.get(self, 0)

    @property
    def label(self) -> str:
        return {
            IommuMode.OFF: "Off",
            IommuMode.BARE: "Bare",
            IommuMode.LVL1: "1LVL",
            IommuMode.LVL2: "2LVL",
            IommuMode.LVL3: "3LVL",
        }[self]


DDI_BITS = (7, 9, 8)  # base-format DDI[0], DDI[1], DDI[2] widths
DC_SIZE = 32
DDTE_V = 1 << 0
DDTE_PPN_SHIFT = 10
DDTE_PPN_MASK = ((1 << 44) - 1) << DDTE_PPN_SHIFT
DDTE_RESERVED = ~(DDTE_V | DDTE_PPN_MASK) & ((1 << 64) - 1)


def device_id_limit(levels: int) -> int:
    """Device IDs ``0 .. limit-1`` fit a ``levels``-level directory."""
    return 1 << sum(DDI_BITS[:levels])


def ddi(device_id: int, level: int) -> int:
    shift = sum(DDI_BITS[:level])
    return (device_id >> shift) & ((1 << DDI_BITS[level]) - 1)


# -- device context -------------------------------------------------------------------------------

TC_V = 1 << 0
TC_EN_ATS = 1 << 1
TC_EN_PRI = 1 << 2
TC_T2GPA = 1 << 3
TC_DTF = 1 << 4
TC_PDTV = 1 << 5
TC_PRPR = 1 << 6
TC_GADE = 1 << 7
TC_SADE = 1 << 8
TC_DPE = 1 << 9
TC_SBE = 1 << 10
TC_SXL = 1 << 11
TC_CUSTOM = 0xFF << 24
TC_SUPPORTED = TC_V | TC_DTF | TC_GADE | TC_SADE | TC_CUSTOM  # anything else: "DDT entry misconfigured"

IOSATP_PPN_MASK = (1 << 44) - 1
IOSATP_MODE_SHIFT = 60
IOSATP_RESERVED = ((1 << 60) - 1) & ~IOSATP_PPN_MASK
IOHGATP_MODE_SHIFT = 60
IOHGATP_GSCID_SHIFT = 44
IOHGATP_PPN_MASK = (1 << 44) - 1
TA_PSCID_SHIFT = 12
TA_PSCID_MASK = ((1 << 20) - 1) << TA_PSCID_SHIFT
TA_RESERVED = ((1 << 64) - 1) & ~TA_PSCID_MASK  # RCID/MCID need QOSID, which hwsim lacks

# -- commands (16 bytes: two doublewords) ------------------------------------------------------------

CMD_OPCODE_MASK = 0x7F
CMD_FUNC3_SHIFT = 7
CMD_FUNC3_MASK = 0x7 << CMD_FUNC3_SHIFT


class Opcode(enum.IntEnum):
    IOTINVAL = 1
    IOFENCE = 2
    IODIR = 3
    ATS = 4


IOTINVAL_VMA = 0
IOTINVAL_GVMA = 1
IOTINVAL_AV = 1 << 10
IOTINVAL_PSCID_SHIFT = 12
IOTINVAL_PSCID_MASK = ((1 << 20) - 1) << IOTINVAL_PSCID_SHIFT
IOTINVAL_PSCV = 1 << 32
IOTINVAL_GV = 1 << 33
IOTINVAL_RESERVED0 = (1 << 11) | (((1 << 10) - 1) << 34) | (0xF << 60)
IOTINVAL_ADDR_SHIFT = 10  # in doubleword 1: ADDR[63:12] at bits 61:10
IOTINVAL_RESERVED1 = ((1 << 10) - 1) | (0x3 << 62)

IOFENCE_C = 0
IOFENCE_AV = 1 << 10
IOFENCE_WSI = 1 << 11
IOFENCE_PR = 1 << 12
IOFENCE_PW = 1 << 13
IOFENCE_RESERVED0 = ((1 << 18) - 1) << 14
IOFENCE_DATA_SHIFT = 32
IOFENCE_ADDR_MASK = (1 << 62) - 1  # in doubleword 1: ADDR[63:2]

IODIR_INVAL_DDT = 0
IODIR_INVAL_PDT = 1
IODIR_PID_SHIFT = 12
IODIR_DV = 1 << 33
IODIR_DID_SHIFT = 40
IODIR_RESERVED0 = (0x3 << 10) | (1 << 32) | (((1 << 6) - 1) << 34)


def make_command(opcode: int, func3: int = 0, operands0: int = 0, dword1: int = 0) -> bytes:
    """A 16-byte command (``operands0`` holds bits 63:10 of doubleword 0 in place)."""
    dw0 = (opcode & CMD_OPCODE_MASK) | (func3 << CMD_FUNC3_SHIFT) | operands0
    return dw0.to_bytes(8, "little") + dword1.to_bytes(8, "little")


def cmd_iotinval_vma(addr: int | None = None, pscid: int | None = None) -> bytes:
    ops = 0
    dw1 = 0
    if addr is not None:
        ops |= IOTINVAL_AV
        dw1 = (addr >> 12) << IOTINVAL_ADDR_SHIFT
    if pscid is not None:
        ops |= IOTINVAL_PSCV | (pscid << IOTINVAL_PSCID_SHIFT)
    return make_command(Opcode.IOTINVAL, IOTINVAL_VMA, ops, dw1)


def cmd_iodir_inval_ddt(device_id: int | None = None) -> bytes:
    ops = 0 if device_id is None else IODIR_DV | (device_id << IODIR_DID_SHIFT)
    return make_command(Opcode.IODIR, IODIR_INVAL_DDT, ops)


def cmd_iofence_c(*, addr: int | None = None, data: int = 0, wsi: bool = False) -> bytes:
    ops = (IOFENCE_WSI if wsi else 0) | (data << IOFENCE_DATA_SHIFT)
    dw1 = 0
    if addr is not None:
        ops |= IOFENCE_AV
        dw1 = addr >> 2
    return make_command(Opcode.IOFENCE, IOFENCE_C, ops, dw1)


# -- fault records (32 bytes: dw0 CAUSE[11:0] TTYP[39:34] DID[63:40], dw1 PID etc., dw2 iotval, dw3 iotval2) --

FQ_RECORD_SIZE = 32
CQ_ENTRY_SIZE = 16
FAULT_CAUSE_MASK = 0xFFF
FAULT_TTYP_SHIFT = 34
FAULT_DID_SHIFT = 40
IOTVAL2_IMPLICIT = 1 << 0  # a guest-page fault on an implicit access for first-stage translation
IOTVAL2_IMPLICIT_WRITE = 1 << 1  # ... that was a write (a first-stage A/D update)


class Ttyp(enum.IntEnum):
    NONE = 0
    UNTRANSLATED_EXEC = 1
    UNTRANSLATED_READ = 2
    UNTRANSLATED_WRITE = 3


class IommuCause(enum.IntEnum):
    """Fault-record CAUSE codes hwsim reports; ``describe`` is the spec's name."""

    READ_ACCESS_FAULT = 5
    WRITE_ACCESS_FAULT = 7
    READ_PAGE_FAULT = 13
    WRITE_PAGE_FAULT = 15
    READ_GUEST_PAGE_FAULT = 21
    WRITE_GUEST_PAGE_FAULT = 23
    ALL_INBOUND_DISALLOWED = 256
    DDT_LOAD_ACCESS_FAULT = 257
    DDT_NOT_VALID = 258
    DDT_MISCONFIGURED = 259
    TRANSACTION_TYPE_DISALLOWED = 260

    @property
    def describe(self) -> str:
        return _CAUSE_NAMES[self]

    @property
    def reported_with_dtf(self) -> bool:
        """Reported even when the device context's DTF (disable translation faults) is 1."""
        return self in (
            IommuCause.ALL_INBOUND_DISALLOWED,
            IommuCause.DDT_LOAD_ACCESS_FAULT,
            IommuCause.DDT_NOT_VALID,
            IommuCause.DDT_MISCONFIGURED,
        )


_CAUSE_NAMES = {
    IommuCause.READ_ACCESS_FAULT: "read access fault",
    IommuCause.WRITE_ACCESS_FAULT: "write access fault",
    IommuCause.READ_PAGE_FAULT: "read page fault",
    IommuCause.WRITE_PAGE_FAULT: "write page fault",
    IommuCause.READ_GUEST_PAGE_FAULT: "read guest-page fault",
    IommuCause.WRITE_GUEST_PAGE_FAULT: "write/AMO guest-page fault",
    IommuCause.ALL_INBOUND_DISALLOWED: "all inbound transactions disallowed",
    IommuCause.DDT_LOAD_ACCESS_FAULT: "DDT entry load access fault",
    IommuCause.DDT_NOT_VALID: "DDT entry not valid",
    IommuCause.DDT_MISCONFIGURED: "DDT entry misconfigured",
    IommuCause.TRANSACTION_TYPE_DISALLOWED: "transaction type disallowed",
}

# -- registers ------------------------------------------------------------------------------------------

CAP_VERSION_1_0 = 0x10
CAP_SV39 = 1 << 9
CAP_SV48 = 1 << 10
CAP_SV39X4 = 1 << 17  # advertised only with the option second_stage=true
CAP_SV48X4 = 1 << 18
CAP_AMO_HWAD = 1 << 24
CAP_IGS_WSI = 1 << 28
CAP_PAS_SHIFT = 32
CAPABILITIES = CAP_VERSION_1_0 | CAP_SV39 | CAP_SV48 | CAP_AMO_HWAD | CAP_IGS_WSI | (56 << CAP_PAS_SHIFT)

FCTL_WSI = 1 << 1

QB_LOG2SZ_MASK = 0x1F  # cqb/fqb: LOG2SZ-1 in bits 4:0, PPN in 53:10
QB_PPN_SHIFT = 10
QB_PPN_MASK = ((1 << 44) - 1) << QB_PPN_SHIFT

CQCSR_CQEN = 1 << 0
CQCSR_CIE = 1 << 1
CQCSR_CQMF = 1 << 8
CQCSR_CMD_TO = 1 << 9
CQCSR_CMD_ILL = 1 << 10
CQCSR_FENCE_W_IP = 1 << 11
CQCSR_CQON = 1 << 16
CQCSR_BUSY = 1 << 17
CQCSR_ERRORS = CQCSR_CQMF | CQCSR_CMD_TO | CQCSR_CMD_ILL

FQCSR_FQEN = 1 << 0
FQCSR_FIE = 1 << 1
FQCSR_FQMF = 1 << 8
FQCSR_FQOF = 1 << 9
FQCSR_FQON = 1 << 16
FQCSR_BUSY = 1 << 17

IPSR_CIP = 1 << 0
IPSR_FIP = 1 << 1

RO, RW, W1C = RegAccess.RO, RegAccess.RW, RegAccess.W1C

IOMMU_LAYOUT = RegisterLayout(
    "riscv-iommu",
    [
        Register(
            "CAPABILITIES_LO",
            0x00,
            4,
            RO,
            reset=CAPABILITIES & 0xFFFF_FFFF,
            doc="Capabilities: version 1.0, Sv39, Sv48, AMO_HWAD, wired interrupts.",
            fields=(
                Field("version", 0, 8),
                Field("Sv39", 9),
                Field("Sv48", 10),
                Field("AMO_HWAD", 24),
                Field("IGS", 28, 2),
            ),
        ),
        Register("CAPABILITIES_HI", 0x04, 4, RO, reset=CAPABILITIES >> 32, doc="Capabilities, bits 63:32 (PAS = 56)."),
        Register(
            "FCTL",
            0x08,
            4,
            RW,
            reset=FCTL_WSI,
            writable=0,
            reserved=0xFFFF_FFF8 & 0xFFFF,
            doc="Feature control: WSI=1, little-endian, fixed.",
            fields=(Field("BE", 0), Field("WSI", 1), Field("GXL", 2)),
        ),
        Register(
            "DDTP_LO",
            0x10,
            4,
            RW,
            writable=0xFFFF_FC0F,
            reserved=0x3E0,
            doc="Device-directory-table pointer, bits 31:0.",
            fields=(
                Field("iommu_mode", 0, 4, doc="0 Off, 1 Bare, 2 1LVL, 3 2LVL, 4 3LVL"),
                Field("busy", 4),
                Field("PPN", 10, 22),
            ),
        ),
        Register(
            "DDTP_HI", 0x14, 4, RW, writable=0x003F_FFFF, reserved=0xFFC0_0000, doc="ddtp, bits 63:32 (PPN 53:32)."
        ),
        Register(
            "CQB_LO",
            0x18,
            4,
            RW,
            writable=0xFFFF_FC1F,
            reserved=0x3E0,
            doc="Command-queue base, bits 31:0.",
            fields=(Field("LOG2SZ-1", 0, 5), Field("PPN", 10, 22)),
        ),
        Register("CQB_HI", 0x1C, 4, RW, writable=0x003F_FFFF, reserved=0xFFC0_0000, doc="cqb, bits 63:32."),
        Register("CQH", 0x20, 4, RO, doc="Command-queue head (next command the IOMMU reads)."),
        Register("CQT", 0x24, 4, RW, doc="Command-queue tail (software writes it after queueing commands)."),
        Register(
            "FQB_LO",
            0x28,
            4,
            RW,
            writable=0xFFFF_FC1F,
            reserved=0x3E0,
            doc="Fault-queue base, bits 31:0.",
            fields=(Field("LOG2SZ-1", 0, 5), Field("PPN", 10, 22)),
        ),
        Register("FQB_HI", 0x2C, 4, RW, writable=0x003F_FFFF, reserved=0xFFC0_0000, doc="fqb, bits 63:32."),
        Register("FQH", 0x30, 4, RW, doc="Fault-queue head (software advances it after reading records)."),
        Register("FQT", 0x34, 4, RO, doc="Fault-queue tail (next record the IOMMU writes)."),
        Register(
            "CQCSR",
            0x48,
            4,
            RW,
            writable=CQCSR_CQEN | CQCSR_CIE | CQCSR_ERRORS | CQCSR_FENCE_W_IP,
            w1c=CQCSR_ERRORS | CQCSR_FENCE_W_IP,
            reserved=0x0FFC_F0FC,
            doc="Command-queue control and status.",
            fields=(
                Field("cqen", 0),
                Field("cie", 1),
                Field("cqmf", 8, doc="W1C"),
                Field("cmd_to", 9, doc="W1C"),
                Field("cmd_ill", 10, doc="W1C"),
                Field("fence_w_ip", 11, doc="W1C"),
                Field("cqon", 16),
                Field("busy", 17),
            ),
        ),
        Register(
            "FQCSR",
            0x4C,
            4,
            RW,
            reset=FQCSR_FQEN | FQCSR_FIE | FQCSR_FQON,
            writable=FQCSR_FQEN | FQCSR_FIE | FQCSR_FQMF | FQCSR_FQOF,
            w1c=FQCSR_FQMF | FQCSR_FQOF,
            reserved=0x0FFC_FCFC,
            doc="Fault-queue control and status (hwsim resets it on, host-side; fie follows the fault_irq option).",
            fields=(
                Field("fqen", 0),
                Field("fie", 1),
                Field("fqmf", 8, doc="W1C"),
                Field("fqof", 9, doc="W1C"),
                Field("fqon", 16),
                Field("busy", 17),
            ),
        ),
        Register(
            "IPSR",
            0x54,
            4,
            W1C,
            writable=IPSR_CIP | IPSR_FIP,
            reserved=0xFFFF_FFFC,
            doc="Interrupt pending status; the wired IRQ is high while any bit is set.",
            fields=(Field("cip", 0, doc="command queue"), Field("fip", 1, doc="fault queue")),
        ),
    ],
)
