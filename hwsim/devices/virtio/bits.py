"""Bit layouts of virtio 1.x: the virtio-mmio (version 2) registers, device status, feature bits,
split-virtqueue structures, virtio-blk requests and the virtio-net header and configuration.
Behaviour lives in mmio.py, queue.py, blk.py and net.py.

Split virtqueue (all little-endian; addresses are bus addresses, i.e. IOVAs through the IOMMU)::

    descriptor table (16-byte aligned)   struct virtq_desc { le64 addr; le32 len; le16 flags; le16 next; }
    available ring   (2-byte aligned)    le16 flags; le16 idx; le16 ring[size]
    used ring        (4-byte aligned)    le16 flags; le16 idx; struct { le32 id; le32 len; } ring[size]
"""

from __future__ import annotations

import struct

from ..regs import Field, RegAccess, Register, RegisterLayout

RO, WO, RW = RegAccess.RO, RegAccess.WO, RegAccess.RW

MAGIC = 0x7472_6976  # "virt"
VERSION = 2
VENDOR_ID = 0x6D73_7768  # "hwsm"
CONFIG_OFFSET = 0x100

# -- device status ------------------------------------------------------------------------------
STATUS_ACKNOWLEDGE = 1
STATUS_DRIVER = 2
STATUS_DRIVER_OK = 4
STATUS_FEATURES_OK = 8
STATUS_DEVICE_NEEDS_RESET = 64
STATUS_FAILED = 128

# -- feature bits -------------------------------------------------------------------------------
F_INDIRECT_DESC = 28
F_EVENT_IDX = 29
F_VERSION_1 = 32
F_ACCESS_PLATFORM = 33

# -- interrupt status ---------------------------------------------------------------------------
INT_USED_BUFFER = 1
INT_CONFIG_CHANGE = 2

# -- split virtqueue ----------------------------------------------------------------------------
DESC_SIZE = 16
DESC_F_NEXT = 1
DESC_F_WRITE = 2
DESC_F_INDIRECT = 4
AVAIL_F_NO_INTERRUPT = 1
DESC_ALIGN, AVAIL_ALIGN, USED_ALIGN = 16, 2, 4
MAX_QUEUE_SIZE = 32768

# -- virtio-blk -----------------------------------------------------------------------------------
DEVICE_ID_BLOCK = 2
SECTOR_SIZE = 512
BLK_F_SIZE_MAX = 1
BLK_F_SEG_MAX = 2
BLK_F_RO = 5
BLK_F_BLK_SIZE = 6
BLK_F_FLUSH = 9
BLK_T_IN = 0
BLK_T_OUT = 1
BLK_T_FLUSH = 4
BLK_T_GET_ID = 8
BLK_S_OK = 0
BLK_S_IOERR = 1
BLK_S_UNSUPP = 2
BLK_REQ_HEADER = 16  # le32 type, le32 reserved, le64 sector
BLK_ID_BYTES = 20

# -- virtio-net -----------------------------------------------------------------------------------
DEVICE_ID_NET = 1
NET_RXQ, NET_TXQ = 0, 1  # receiveq1, transmitq1 (no control queue, no multiqueue)
NET_F_CSUM = 0
NET_F_MTU = 3
NET_F_MAC = 5
NET_F_MRG_RXBUF = 15
NET_F_STATUS = 16
NET_S_LINK_UP = 1
NET_HDR_F_NEEDS_CSUM = 1
NET_HDR_F_DATA_VALID = 2
NET_HDR_F_RSC_INFO = 4
NET_HDR_GSO_NONE = 0
# struct virtio_net_hdr (12 bytes with VIRTIO_F_VERSION_1): u8 flags, u8 gso_type, le16 hdr_len, le16 gso_size,
# le16 csum_start, le16 csum_offset, le16 num_buffers
NET_HDR = struct.Struct("<BBHHHHH")
# struct virtio_net_config up to mtu: u8 mac[6], le16 status, le16 max_virtqueue_pairs, le16 mtu
NET_CONFIG = struct.Struct("<6sHHH")
ETH_HEADER = 14  # destination MAC, source MAC, EtherType
ETH_MTU = 1500
ETH_MAX_FRAME = ETH_HEADER + ETH_MTU  # 1514: without the FCS, as virtio carries frames
NET_RX_BUFFER_MIN = NET_HDR.size + ETH_MAX_FRAME  # 1526: what drivers SHOULD post without MRG_RXBUF

MMIO_LAYOUT = RegisterLayout(
    "virtio-mmio",
    [
        Register("MagicValue", 0x000, 4, RO, reset=MAGIC, doc='0x74726976 ("virt").'),
        Register("Version", 0x004, 4, RO, reset=VERSION, doc="2: the virtio 1.x (non-legacy) interface."),
        Register("DeviceID", 0x008, 4, RO, doc="Device type (1: network, 2: block)."),
        Register("VendorID", 0x00C, 4, RO, reset=VENDOR_ID, doc='0x6d737768 ("hwsm").'),
        Register("DeviceFeatures", 0x010, 4, RO, doc="Feature bits 32*sel .. 32*sel+31 the device offers."),
        Register("DeviceFeaturesSel", 0x014, 4, WO, doc="Selects the DeviceFeatures word."),
        Register("DriverFeatures", 0x020, 4, WO, doc="Feature bits 32*sel .. 32*sel+31 the driver accepts."),
        Register("DriverFeaturesSel", 0x024, 4, WO, doc="Selects the DriverFeatures word."),
        Register("QueueSel", 0x030, 4, WO, doc="Selects the queue the Queue* registers refer to."),
        Register("QueueNumMax", 0x034, 4, RO, doc="Largest queue size the device accepts (0: no such queue)."),
        Register("QueueNum", 0x038, 4, WO, doc="Queue size (a power of 2, at most QueueNumMax)."),
        Register(
            "QueueReady",
            0x044,
            4,
            RW,
            writable=1,
            reserved=0xFFFF_FFFE,
            doc="1: the queue is configured and may be used.",
        ),
        Register("QueueNotify", 0x050, 4, WO, doc="Available-buffer notification: the queue index."),
        Register(
            "InterruptStatus",
            0x060,
            4,
            RO,
            doc="Pending interrupts; the IRQ is high while non-zero.",
            fields=(Field("UsedBuffer", 0), Field("ConfigChange", 1)),
        ),
        Register("InterruptACK", 0x064, 4, WO, reserved=0xFFFF_FFFC, doc="Write 1s to clear InterruptStatus bits."),
        Register(
            "Status",
            0x070,
            4,
            RW,
            writable=0xFF,
            reserved=0xFFFF_FF00,
            doc="Device status; writing 0 resets the device.",
            fields=(
                Field("ACKNOWLEDGE", 0),
                Field("DRIVER", 1),
                Field("DRIVER_OK", 2),
                Field("FEATURES_OK", 3),
                Field("DEVICE_NEEDS_RESET", 6),
                Field("FAILED", 7),
            ),
        ),
        Register("QueueDescLow", 0x080, 4, WO, doc="Descriptor table address, bits 31:0."),
        Register("QueueDescHigh", 0x084, 4, WO, doc="Descriptor table address, bits 63:32."),
        Register("QueueDriverLow", 0x090, 4, WO, doc="Available ring address, bits 31:0."),
        Register("QueueDriverHigh", 0x094, 4, WO, doc="Available ring address, bits 63:32."),
        Register("QueueDeviceLow", 0x0A0, 4, WO, doc="Used ring address, bits 31:0."),
        Register("QueueDeviceHigh", 0x0A4, 4, WO, doc="Used ring address, bits 63:32."),
        Register("ConfigGeneration", 0x0FC, 4, RO, doc="Configuration generation (constant: config never changes)."),
    ],
)
