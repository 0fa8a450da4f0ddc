"""Bit layouts of the NVMe controller (NVM Express Base Specification 1.4 subset): the controller
registers and doorbells, queue entries, status codes, opcodes and the Identify data structures.
Behaviour lives in nvme.py.

Register map (all registers 32 bits; the 64-bit CAP, ASQ and ACQ are LO/HI pairs)::

    0x0000 CAP_LO/HI   0x0008 VS   0x000c INTMS   0x0010 INTMC   0x0014 CC   0x001c CSTS
    0x0024 AQA   0x0028 ASQ_LO/HI   0x0030 ACQ_LO/HI
    0x1000 + (2y)   x (4 << CAP.DSTRD)   SQyTDBL   submission queue y tail doorbell
    0x1000 + (2y+1) x (4 << CAP.DSTRD)   CQyHDBL   completion queue y head doorbell

Queue entries (little-endian; addresses are IOVAs through the IOMMU)::

    submission (64 bytes)   DW0 OPC[7:0] FUSE[9:8] PSDT[15:14] CID[31:16] | DW1 NSID | DW2-3 | MPTR (DW4-5)
                            | PRP1 (DW6-7) | PRP2 (DW8-9) | CDW10..CDW15
    completion (16 bytes)   DW0 command specific | DW1 reserved | DW2 SQHD[15:0] SQID[31:16]
                            | DW3 CID[15:0] P[16] status field[31:17] (SC[24:17] SCT[27:25] M[30] DNR[31])
"""

from __future__ import annotations

import enum
import struct

from .regs import Field, RegAccess, Register, RegisterLayout

RO, WO, RW = RegAccess.RO, RegAccess.WO, RegAccess.RW

VERSION_1_4 = 0x0001_0400  # VS: 1.4.0
PAGE_SIZE = 4096  # the memory page size: CC.MPS 0 is the only one (CAP.MPSMIN = MPSMAX = 0)
LBA_SIZE = 512  # LBA format 0: LBADS 9, no metadata
LBADS = 9
DOORBELL_BASE = 0x1000
SQES, CQES = 6, 4  # log2 of the entry sizes: 64-byte submission and 16-byte completion entries
SQE_SIZE, CQE_SIZE = 1 << SQES, 1 << CQES
IDENTIFY_SIZE = 4096
TIMEOUT_UNIT_NS = 500_000_000  # CAP.TO counts 500 ms

# -- CAP -----------------------------------------------------------------------------------------------
CAP_MQES_MASK = 0xFFFF  # maximum queue entries supported, 0's based
CAP_CQR = 1 << 16  # contiguous queues required
CAP_TO_SHIFT = 24
CAP_HI_DSTRD_MASK = 0xF  # CAP bits 35:32, doorbell stride 4 << DSTRD bytes
CAP_HI_CSS_NVM = 1 << 5  # CAP bit 37: the NVM command set

# -- CC ------------------------------------------------------------------------------------------------
CC_EN = 1 << 0
CC_CSS_SHIFT, CC_CSS_MASK = 4, 0x7 << 4
CC_MPS_SHIFT, CC_MPS_MASK = 7, 0xF << 7
CC_AMS_SHIFT, CC_AMS_MASK = 11, 0x7 << 11
CC_SHN_SHIFT, CC_SHN_MASK = 14, 0x3 << 14
CC_IOSQES_SHIFT, CC_IOSQES_MASK = 16, 0xF << 16
CC_IOCQES_SHIFT, CC_IOCQES_MASK = 20, 0xF << 20
CC_WRITABLE = CC_EN | CC_CSS_MASK | CC_MPS_MASK | CC_AMS_MASK | CC_SHN_MASK | CC_IOSQES_MASK | CC_IOCQES_MASK
SHN_NONE, SHN_NORMAL, SHN_ABRUPT = 0, 1, 2

# -- CSTS ----------------------------------------------------------------------------------------------
CSTS_RDY = 1 << 0
CSTS_CFS = 1 << 1
CSTS_SHST_SHIFT, CSTS_SHST_MASK = 2, 0x3 << 2
SHST_NORMAL, SHST_OCCURRING, SHST_COMPLETE = 0, 1, 2

# -- AQA -----------------------------------------------------------------------------------------------
AQA_ASQS_MASK = 0xFFF
AQA_ACQS_SHIFT = 16
AQA_ACQS_MASK = 0xFFF << 16

# -- queue entries -------------------------------------------------------------------------------------
# DW0, NSID, CDW2, CDW3, MPTR, PRP1, PRP2, CDW10..CDW15
SQE = struct.Struct("<IIIIQQQ6I")
# DW0, DW1, SQHD, SQID, CID, status (phase in bit 0)
CQE = struct.Struct("<IIHHHH")
PRP_ENTRY = 8
CQE_PHASE = 1

ADMIN_QID = 0


class AdminOpcode(enum.IntEnum):
    DELETE_IO_SQ = 0x00
    CREATE_IO_SQ = 0x01
    DELETE_IO_CQ = 0x04
    CREATE_IO_CQ = 0x05
    IDENTIFY = 0x06
    SET_FEATURES = 0x09
    GET_FEATURES = 0x0A


class IoOpcode(enum.IntEnum):
    FLUSH = 0x00
    WRITE = 0x01
    READ = 0x02


ADMIN_NAMES: dict[int, str] = {
    AdminOpcode.DELETE_IO_SQ: "Delete I/O SQ",
    AdminOpcode.CREATE_IO_SQ: "Create I/O SQ",
    AdminOpcode.DELETE_IO_CQ: "Delete I/O CQ",
    AdminOpcode.CREATE_IO_CQ: "Create I/O CQ",
    AdminOpcode.IDENTIFY: "Identify",
    AdminOpcode.SET_FEATURES: "Set Features",
    AdminOpcode.GET_FEATURES: "Get Features",
}
IO_NAMES: dict[int, str] = {IoOpcode.FLUSH: "Flush", IoOpcode.WRITE: "Write", IoOpcode.READ: "Read"}


class Cns(enum.IntEnum):
    """Identify: the Controller or Namespace Structure (CDW10 bits 7:0)."""

    NAMESPACE = 0x00
    CONTROLLER = 0x01
    ACTIVE_NAMESPACES = 0x02


FEATURE_NUMBER_OF_QUEUES = 0x07
NSID_ALL = 0xFFFF_FFFF
CREATE_PC = 1 << 0  # CDW11 of Create I/O SQ/CQ: physically contiguous
CREATE_CQ_IEN = 1 << 1  # CDW11 of Create I/O CQ: interrupts enabled


class Sct(enum.IntEnum):
    """Status code types."""

    GENERIC = 0
    COMMAND_SPECIFIC = 1
    MEDIA = 2


class Status(enum.Enum):
    """Completion status: (status code type, status code, the specification's name).  ``field`` is the
    status field (DW3 bits 31:17) with DNR set for errors a retry cannot fix."""

    SUCCESS = (Sct.GENERIC, 0x00, "Successful Completion")
    INVALID_OPCODE = (Sct.GENERIC, 0x01, "Invalid Command Opcode")
    INVALID_FIELD = (Sct.GENERIC, 0x02, "Invalid Field in Command")
    CID_CONFLICT = (Sct.GENERIC, 0x03, "Command ID Conflict")
    DATA_TRANSFER_ERROR = (Sct.GENERIC, 0x04, "Data Transfer Error")
    INTERNAL_ERROR = (Sct.GENERIC, 0x06, "Internal Error")
    ABORTED_SQ_DELETION = (Sct.GENERIC, 0x08, "Command Aborted due to SQ Deletion")
    INVALID_NAMESPACE = (Sct.GENERIC, 0x0B, "Invalid Namespace or Format")
    COMMAND_SEQUENCE_ERROR = (Sct.GENERIC, 0x0C, "Command Sequence Error")
    INVALID_PRP_OFFSET = (Sct.GENERIC, 0x13, "PRP Offset Invalid")
    WRITE_PROTECTED = (Sct.GENERIC, 0x20, "Namespace is Write Protected")
    LBA_OUT_OF_RANGE = (Sct.GENERIC, 0x80, "LBA Out of Range")
    COMPLETION_QUEUE_INVALID = (Sct.COMMAND_SPECIFIC, 0x00, "Completion Queue Invalid")
    INVALID_QUEUE_IDENTIFIER = (Sct.COMMAND_SPECIFIC, 0x01, "Invalid Queue Identifier")
    INVALID_QUEUE_SIZE = (Sct.COMMAND_SPECIFIC, 0x02, "Invalid Queue Size")
    INVALID_INTERRUPT_VECTOR = (Sct.COMMAND_SPECIFIC, 0x08, "Invalid Interrupt Vector")
    INVALID_QUEUE_DELETION = (Sct.COMMAND_SPECIFIC, 0x0C, "Invalid Queue Deletion")
    UNRECOVERED_READ_ERROR = (Sct.MEDIA, 0x81, "Unrecovered Read Error")

    @property
    def sct(self) -> int:
        return self.value[0]

    @property
    def sc(self) -> int:
        return self.value[1]

    @property
    def text(self) -> str:
        return self.value[2]

    @property
    def dnr(self) -> bool:
        """Do Not Retry: set for every error the command itself caused (the injected ones may be retried)."""
        return self not in (Status.SUCCESS, Status.INTERNAL_ERROR, Status.UNRECOVERED_READ_ERROR)

    @property
    def field(self) -> int:
        """DW3 bits 31:17 as a 15-bit value: SC[7:0], SCT[10:8], DNR[14]."""
        return self.sc | self.sct << 8 | (1 << 14 if self.dnr else 0)

    @classmethod
    def from_field(cls, field: int) -> Status | None:
        """The status a 15-bit status field names (DNR and More ignored), or None."""
        key = (field >> 8 & 0x7, field & 0xFF)
        return _BY_CODE.get(key)


_BY_CODE = {(s.sct, s.sc): s for s in Status}

# -- Identify data (offsets into the 4096-byte structures) ------------------------------------------------
# Controller (CNS 1)
ID_CTRL_VID, ID_CTRL_SSVID, ID_CTRL_SN, ID_CTRL_MN, ID_CTRL_FR = 0, 2, 4, 24, 64
ID_CTRL_MDTS, ID_CTRL_CNTLID, ID_CTRL_VER = 77, 78, 80
ID_CTRL_SQES, ID_CTRL_CQES, ID_CTRL_MAXCMD, ID_CTRL_NN, ID_CTRL_VWC = 512, 513, 514, 516, 525
VENDOR_ID = 0x1B36  # the PCI vendor QEMU's NVMe controller uses (Red Hat)
SN_BYTES, MN_BYTES, FR_BYTES = 20, 40, 8
MODEL = "hwsim NVMe controller"
FIRMWARE = "1.0"
# Namespace (CNS 0)
ID_NS_NSZE, ID_NS_NCAP, ID_NS_NUSE, ID_NS_NLBAF, ID_NS_FLBAS, ID_NS_LBAF0 = 0, 8, 16, 25, 26, 128
LBAF_LBADS_SHIFT = 16


def doorbell_offset(index: int, dstrd: int) -> int:
    """The offset of doorbell ``index`` (2y: SQ y tail, 2y+1: CQ y head) with stride 4 << ``dstrd``."""
    return DOORBELL_BASE + index * (4 << dstrd)


def cap_value(max_queue_entries: int, dstrd: int, ready_ns: int) -> int:
    """CAP for these options: MQES, CQR, TO (ready_ns in 500 ms units, at least 1), DSTRD, the NVM command
    set, 4 KiB pages only."""
    timeout = max(1, min(255, -(-ready_ns // TIMEOUT_UNIT_NS)))
    low = (max_queue_entries - 1) | CAP_CQR | timeout << CAP_TO_SHIFT
    return (dstrd | CAP_HI_CSS_NVM) << 32 | low


def _controller_registers(cap: int) -> list[Register]:
    return [
        Register(
            "CAP_LO",
            0x00,
            4,
            RO,
            reset=cap & 0xFFFF_FFFF,
            doc="Controller capabilities, bits 31:0.",
            fields=(
                Field("MQES", 0, 16, "maximum queue entries, 0's based (the max_queue_entries option - 1)"),
                Field("CQR", 16, doc="contiguous queues required (1)"),
                Field("AMS", 17, 2, "arbitration mechanisms beyond round robin (0)"),
                Field("TO", 24, 8, "worst-case CSTS.RDY transition time, 500 ms units"),
            ),
        ),
        Register(
            "CAP_HI",
            0x04,
            4,
            RO,
            reset=cap >> 32,
            doc="Controller capabilities, bits 63:32.",
            fields=(
                Field("DSTRD", 0, 4, "doorbell stride 4 << DSTRD bytes (the doorbell_stride option)"),
                Field("NSSRS", 4, doc="subsystem reset (0)"),
                Field("CSS", 5, 8, "command sets: bit 0 NVM"),
                Field("MPSMIN", 16, 4, "minimum memory page size 2^(12+MPSMIN) (0: 4 KiB)"),
                Field("MPSMAX", 20, 4, "maximum memory page size (0: 4 KiB)"),
            ),
        ),
        Register(
            "VS",
            0x08,
            4,
            RO,
            reset=VERSION_1_4,
            doc="Version: 1.4.0.",
            fields=(Field("MNR", 8, 8), Field("MJR", 16, 16)),
        ),
        Register(
            "INTMS",
            0x0C,
            4,
            RW,
            writable=1,
            reserved=0xFFFF_FFFE,
            doc="Interrupt mask set: write 1 to mask vector 0 (the one pin-based vector); reads the mask.",
        ),
        Register(
            "INTMC",
            0x10,
            4,
            RW,
            writable=1,
            reserved=0xFFFF_FFFE,
            doc="Interrupt mask clear: write 1 to unmask vector 0; reads the mask.",
        ),
        Register(
            "CC",
            0x14,
            4,
            RW,
            writable=CC_WRITABLE,
            reserved=0xFFFF_FFFF & ~CC_WRITABLE,
            doc="Controller configuration.",
            fields=(
                Field("EN", 0, doc="enable: 0->1 creates the admin queues, 1->0 resets the controller"),
                Field("CSS", 4, 3, "I/O command set (0: NVM)"),
                Field("MPS", 7, 4, "memory page size 2^(12+MPS) (0 only)"),
                Field("AMS", 11, 3, "arbitration (0: round robin)"),
                Field("SHN", 14, 2, "shutdown notification: 1 normal, 2 abrupt"),
                Field("IOSQES", 16, 4, "I/O submission entry size, log2 (6)"),
                Field("IOCQES", 20, 4, "I/O completion entry size, log2 (4)"),
            ),
        ),
        Register(
            "CSTS",
            0x1C,
            4,
            RO,
            doc="Controller status.",
            fields=(
                Field("RDY", 0, doc="ready: follows CC.EN after the ready_ns delay"),
                Field("CFS", 1, doc="controller fatal status (cleared by a reset)"),
                Field("SHST", 2, 2, "shutdown status: 0 normal, 1 occurring, 2 complete"),
            ),
        ),
        Register(
            "AQA",
            0x24,
            4,
            RW,
            writable=AQA_ASQS_MASK | AQA_ACQS_MASK,
            reserved=0xFFFF_FFFF & ~(AQA_ASQS_MASK | AQA_ACQS_MASK),
            doc="Admin queue attributes (0's based sizes, 2..4096 entries).",
            fields=(
                Field("ASQS", 0, 12, "admin submission queue size"),
                Field("ACQS", 16, 12, "admin completion queue size"),
            ),
        ),
        Register(
            "ASQ_LO",
            0x28,
            4,
            RW,
            writable=0xFFFF_F000,
            reserved=0xFFF,
            doc="Admin submission queue base IOVA, bits 31:0 (4 KiB aligned).",
        ),
        Register("ASQ_HI", 0x2C, 4, RW, doc="Admin submission queue base IOVA, bits 63:32."),
        Register(
            "ACQ_LO",
            0x30,
            4,
            RW,
            writable=0xFFFF_F000,
            reserved=0xFFF,
            doc="Admin completion queue base IOVA, bits 31:0 (4 KiB aligned).",
        ),
        Register("ACQ_HI", 0x34, 4, RW, doc="Admin completion queue base IOVA, bits 63:32."),
    ]


def sq_doorbell(qid: int) -> str:
    return f"SQ{qid}TDBL"


def cq_doorbell(qid: int) -> str:
    return f"CQ{qid}HDBL"


def nvme_layout(*, io_queues: int, max_queue_entries: int, doorbell_stride: int, ready_ns: int) -> RegisterLayout:
    """The controller registers (CAP as these options make it) and the doorbells of the admin queue pair
    and ``io_queues`` I/O queue pairs, 4 << ``doorbell_stride`` bytes apart."""
    dstrd = doorbell_stride
    regs = _controller_registers(cap_value(max_queue_entries, dstrd, ready_ns))
    for q in range(1 + io_queues):
        what = "admin" if q == ADMIN_QID else "I/O"
        regs.append(
            Register(
                sq_doorbell(q),
                doorbell_offset(2 * q, dstrd),
                4,
                WO,
                writable=0xFFFF,
                reserved=0xFFFF_0000,
                doc=f"Submission queue {q} ({what}) tail doorbell: the entry after the last one written.",
            )
        )
        regs.append(
            Register(
                cq_doorbell(q),
                doorbell_offset(2 * q + 1, dstrd),
                4,
                WO,
                writable=0xFFFF,
                reserved=0xFFFF_0000,
                doc=f"Completion queue {q} ({what}) head doorbell: the entry after the last one consumed.",
            )
        )
    return RegisterLayout("nvme", regs)


# The options the layout depends on, with their defaults (the device's OPTIONS use these defaults).
LAYOUT_DEFAULTS = {"io_queues": 4, "max_queue_entries": 1024, "doorbell_stride": 0, "ready_ns": 20_000}
NVME_LAYOUT = nvme_layout(**LAYOUT_DEFAULTS)  # the default options' map (docs/devices.md embeds it)
