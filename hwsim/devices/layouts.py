"""Register maps and bit layouts of hwsim's device models, as data (behaviour lives in each model's module).

All registers are at most 32 bits wide: Unicorn's MMIO layer splits an
8-byte guest access into two 4-byte device accesses (low word first), so a
64-bit quantity is a LO/HI pair of 32-bit registers, as virtio-mmio does.
A guest ``sd`` to a LO register therefore writes LO then HI; ``ld`` reads
them in the same order.
"""

from __future__ import annotations

from .regs import Field, RegAccess, Register, RegisterLayout

RO, WO, RW, W1C, RC = RegAccess.RO, RegAccess.WO, RegAccess.RW, RegAccess.W1C, RegAccess.RC

# ---------------------------------------------------------------------------------------------
# 16550A UART (byte-wide registers at consecutive offsets, reg-shift 0 as on QEMU virt)

UART_FIFO_SIZE = 16

IER_ERBFI = 1 << 0  # received data available
IER_ETBEI = 1 << 1  # transmitter holding register empty
IER_ELSI = 1 << 2  # receiver line status
IER_EDSSI = 1 << 3  # modem status

IIR_NO_INT = 0x01
IIR_ID_MASK = 0x0E
IIR_RLS = 0x06  # receiver line status (priority 1, highest)
IIR_RDA = 0x04  # received data available (priority 2)
IIR_CTI = 0x0C  # character timeout (priority 2)
IIR_THRE = 0x02  # transmitter holding register empty (priority 3)
IIR_MSI = 0x00  # modem status (priority 4)
IIR_FIFO_ENABLED = 0xC0

FCR_ENABLE = 1 << 0
FCR_CLEAR_RX = 1 << 1
FCR_CLEAR_TX = 1 << 2
FCR_DMA_MODE = 1 << 3
FCR_TRIGGER_SHIFT = 6
FCR_TRIGGER_LEVELS = (1, 4, 8, 14)

LCR_WLS_MASK = 0x03  # word length: 5 + WLS data bits
LCR_STB = 1 << 2  # 2 stop bits (1.5 with 5-bit words)
LCR_PEN = 1 << 3  # parity enable
LCR_DLAB = 1 << 7

MCR_DTR = 1 << 0
MCR_RTS = 1 << 1
MCR_OUT1 = 1 << 2
MCR_OUT2 = 1 << 3
MCR_LOOP = 1 << 4

LSR_DR = 1 << 0  # data ready
LSR_OE = 1 << 1  # overrun error
LSR_PE = 1 << 2  # parity error
LSR_FE = 1 << 3  # framing error
LSR_BI = 1 << 4  # break interrupt
LSR_THRE = 1 << 5  # transmitter holding register (or TX FIFO) empty
LSR_TEMT = 1 << 6  # transmitter empty
LSR_RXFE = 1 << 7  # error in RX FIFO
LSR_ERRORS = LSR_OE | LSR_PE | LSR_FE | LSR_BI

MSR_DCTS = 1 << 0
MSR_DDSR = 1 << 1
MSR_TERI = 1 << 2
MSR_DDCD = 1 << 3
MSR_CTS = 1 << 4
MSR_DSR = 1 << 5
MSR_RI = 1 << 6
MSR_DCD = 1 << 7
MSR_DELTAS = MSR_DCTS | MSR_DDSR | MSR_TERI | MSR_DDCD

UART_LAYOUT = RegisterLayout(
    "ns16550a",
    [
        Register("RBR", 0, 1, RO, when="!dlab", doc="Receiver buffer: the oldest received byte (pops the RX FIFO)."),
        Register("THR", 0, 1, WO, when="!dlab", doc="Transmitter holding: the byte to send."),
        Register("DLL", 0, 1, RW, when="dlab", doc="Divisor latch, low byte."),
        Register(
            "IER",
            1,
            1,
            RW,
            writable=0x0F,
            reserved=0xF0,
            when="!dlab",
            doc="Interrupt enable.",
            fields=(
                Field("ERBFI", 0, doc="RX data"),
                Field("ETBEI", 1, doc="THR empty"),
                Field("ELSI", 2, doc="line status"),
                Field("EDSSI", 3, doc="modem status"),
            ),
        ),
        Register("DLM", 1, 1, RW, when="dlab", doc="Divisor latch, high byte."),
        Register(
            "IIR",
            2,
            1,
            RO,
            reset=IIR_NO_INT,
            doc="Interrupt identification (reading it clears a THRE interrupt).",
            fields=(
                Field("NOINT", 0, doc="1: none pending"),
                Field("ID", 1, 3, doc="0x3 RLS, 0x2 RDA, 0x6 timeout, 0x1 THRE, 0x0 modem"),
                Field("FIFO", 6, 2, doc="11 when FIFOs are enabled"),
            ),
        ),
        Register(
            "FCR",
            2,
            1,
            WO,
            reserved=0x30,
            doc="FIFO control.",
            fields=(
                Field("ENABLE", 0),
                Field("CLEAR_RX", 1),
                Field("CLEAR_TX", 2),
                Field("DMA", 3),
                Field("TRIGGER", 6, 2, doc="RX trigger 1/4/8/14 bytes"),
            ),
        ),
        Register(
            "LCR",
            3,
            1,
            RW,
            doc="Line control.",
            fields=(
                Field("WLS", 0, 2, doc="word length"),
                Field("STB", 2),
                Field("PEN", 3),
                Field("EPS", 4),
                Field("SP", 5),
                Field("BC", 6),
                Field("DLAB", 7, doc="divisor latch access"),
            ),
        ),
        Register(
            "MCR",
            4,
            1,
            RW,
            writable=0x1F,
            reserved=0xE0,
            doc="Modem control.",
            fields=(
                Field("DTR", 0),
                Field("RTS", 1),
                Field("OUT1", 2),
                Field("OUT2", 3),
                Field("LOOP", 4, doc="loopback"),
            ),
        ),
        Register(
            "LSR",
            5,
            1,
            RO,
            reset=LSR_THRE | LSR_TEMT,
            doc="Line status (reading clears OE/PE/FE/BI).",
            fields=(
                Field("DR", 0),
                Field("OE", 1),
                Field("PE", 2),
                Field("FE", 3),
                Field("BI", 4),
                Field("THRE", 5),
                Field("TEMT", 6),
                Field("RXFE", 7),
            ),
        ),
        Register(
            "MSR",
            6,
            1,
            RO,
            reset=MSR_DCD | MSR_DSR | MSR_CTS,
            doc="Modem status (reading clears the delta bits).",
            fields=(
                Field("DCTS", 0),
                Field("DDSR", 1),
                Field("TERI", 2),
                Field("DDCD", 3),
                Field("CTS", 4),
                Field("DSR", 5),
                Field("RI", 6),
                Field("DCD", 7),
            ),
        ),
        Register("SCR", 7, 1, RW, doc="Scratch."),
    ],
)

# ---------------------------------------------------------------------------------------------
# PLIC (SiFive/QEMU-virt layout): priorities, pending, per-context enables, threshold, claim/complete

PLIC_PRIORITY_BASE = 0x0000  # + 4 * source
PLIC_PENDING_BASE = 0x1000  # + 4 * word (32 sources per word)
PLIC_ENABLE_BASE = 0x2000  # + 0x80 * context + 4 * word
PLIC_ENABLE_STRIDE = 0x80
PLIC_CONTEXT_BASE = 0x20_0000  # + 0x1000 * context: threshold at +0, claim/complete at +4
PLIC_CONTEXT_STRIDE = 0x1000
PLIC_PRIORITY_BITS = 3  # priorities 0 (never) .. 7
PLIC_MAX_PRIORITY = (1 << PLIC_PRIORITY_BITS) - 1


def plic_layout(sources: int, contexts: int) -> RegisterLayout:
    """Source 0 does not exist; sources 1..sources-1 have a priority register each."""
    words = (sources + 31) // 32
    regs = [
        Register(
            f"PRIORITY{s}",
            PLIC_PRIORITY_BASE + 4 * s,
            4,
            RW,
            writable=PLIC_MAX_PRIORITY,
            doc=f"Priority of source {s} (0: never interrupts).",
        )
        for s in range(1, sources)
    ]
    regs += [
        Register(
            f"PENDING{w}", PLIC_PENDING_BASE + 4 * w, 4, RO, doc=f"Pending bits of sources {32 * w}..{32 * w + 31}."
        )
        for w in range(words)
    ]
    for c in range(contexts):
        for w in range(words):
            writable = sum(1 << b for b in range(32) if 0 < 32 * w + b < sources)
            regs.append(
                Register(
                    f"ENABLE{c}_{w}",
                    PLIC_ENABLE_BASE + PLIC_ENABLE_STRIDE * c + 4 * w,
                    4,
                    RW,
                    writable=writable,
                    reserved=0xFFFF_FFFF & ~writable,
                    doc=f"Context {c}: enable bits of sources {32 * w}..{32 * w + 31}.",
                )
            )
        base = PLIC_CONTEXT_BASE + PLIC_CONTEXT_STRIDE * c
        regs.append(
            Register(
                f"THRESHOLD{c}",
                base,
                4,
                RW,
                writable=PLIC_MAX_PRIORITY,
                doc=f"Context {c}: only priorities above this interrupt.",
            )
        )
        regs.append(
            Register(
                f"CLAIM{c}",
                base + 4,
                4,
                RW,
                doc=f"Context {c}: read claims the best pending source (0: none); write the claimed ID to complete.",
            )
        )
    return RegisterLayout("plic", regs)


# ---------------------------------------------------------------------------------------------
# CLINT-like timer: msip, mtimecmp and mtime as 32-bit halves at the CLINT offsets

CLINT_MSIP = 0x0000  # one 32-bit msip register per hart from here
CLINT_HARTS = 8  # msip registers (Machine's MAX_HARTS)
CLINT_MTIMECMP = 0x4000
CLINT_MTIME = 0xBFF8

TIMER_LAYOUT = RegisterLayout(
    "clint",
    [
        Register(
            "MSIP",
            CLINT_MSIP,
            4,
            RW,
            writable=1,
            reserved=0xFFFF_FFFE,
            doc="Hart 0's software interrupt pending (bit 0): its machine software interrupt (an IPI).",
        ),
        *(
            Register(
                f"MSIP{hart}",
                CLINT_MSIP + 4 * hart,
                4,
                RW,
                writable=1,
                reserved=0xFFFF_FFFE,
                doc=f"Hart {hart}'s software interrupt pending (bit 0), as MSIP for hart 0.",
            )
            for hart in range(1, CLINT_HARTS)
        ),
        Register("MTIMECMP_LO", CLINT_MTIMECMP, 4, RW, reset=0xFFFF_FFFF, doc="Compare value, bits 31:0."),
        Register("MTIMECMP_HI", CLINT_MTIMECMP + 4, 4, RW, reset=0xFFFF_FFFF, doc="Compare value, bits 63:32."),
        Register("MTIME_LO", CLINT_MTIME, 4, RW, doc="Virtual time in ticks, bits 31:0."),
        Register("MTIME_HI", CLINT_MTIME + 4, 4, RW, doc="Virtual time in ticks, bits 63:32."),
    ],
)

# ---------------------------------------------------------------------------------------------
# Goldfish RTC (QEMU virt's real-time clock with an alarm; Linux drivers/rtc/rtc-goldfish.c)

RTC_ALARM_STATUS_RUNNING = 1 << 0
RTC_IRQ_ENABLED = 1 << 0

RTC_LAYOUT = RegisterLayout(
    "goldfish-rtc",
    [
        Register("TIME_LOW", 0x00, 4, RW, doc="Time in ns, bits 31:0; reading it latches bits 63:32 into TIME_HIGH."),
        Register("TIME_HIGH", 0x04, 4, RW, doc="Time in ns, bits 63:32, as latched by the last TIME_LOW read."),
        Register("ALARM_LOW", 0x08, 4, RW, doc="Alarm time in ns, bits 31:0; writing it arms the alarm."),
        Register("ALARM_HIGH", 0x0C, 4, RW, doc="Alarm time in ns, bits 63:32 (write before ALARM_LOW)."),
        Register(
            "IRQ_ENABLED",
            0x10,
            4,
            RW,
            writable=1,
            reserved=0xFFFF_FFFE,
            doc="Bit 0: the alarm raises the IRQ.",
            fields=(Field("ENABLED", 0, doc="interrupt enabled"),),
        ),
        Register("CLEAR_ALARM", 0x14, 4, WO, doc="Any write disarms the alarm."),
        Register(
            "ALARM_STATUS",
            0x18,
            4,
            RO,
            doc="Bit 0: the alarm is armed and has not fired.",
            fields=(Field("RUNNING", 0, doc="armed"),),
        ),
        Register("CLEAR_INTERRUPT", 0x1C, 4, WO, doc="Any write clears the pending interrupt (lowers the line)."),
    ],
)

# ---------------------------------------------------------------------------------------------
# Single-buffer DMA engine (in the spirit of QEMU's edu device)

DMA_ID_VALUE = 0x444D_4101  # "DMA" + version 1
DMA_BUFFER_OFFSET = 0x1000
DMA_BUFFER_SIZE = 0x1000

DMA_DIR_MEM_TO_MEM = 0  # src IOVA -> dst IOVA
DMA_DIR_MEM_TO_DEV = 1  # src IOVA -> buffer[dst]
DMA_DIR_DEV_TO_MEM = 2  # buffer[src] -> dst IOVA
DMA_DIR_NAMES = {
    DMA_DIR_MEM_TO_MEM: "memory to memory",
    DMA_DIR_MEM_TO_DEV: "memory to device buffer",
    DMA_DIR_DEV_TO_MEM: "device buffer to memory",
}

DMA_CMD_START = 1 << 0
DMA_CMD_DIR_SHIFT = 1
DMA_CMD_DIR_MASK = 0x3 << DMA_CMD_DIR_SHIFT
DMA_CMD_IRQ = 1 << 3

DMA_STATUS_BUSY = 1 << 0
DMA_STATUS_DONE = 1 << 1
DMA_STATUS_ERROR = 1 << 2


class DmaError:
    """ERROR_CODE values."""

    NONE = 0
    READ_FAULT = 1  # the IOMMU refused a read of the source
    WRITE_FAULT = 2  # the IOMMU refused a write of the destination
    BAD_DIRECTION = 3
    BAD_LENGTH = 4  # zero, or larger than max_transfer
    BUFFER_RANGE = 5  # the device-buffer range lies outside the buffer
    BUSY = 6  # START while a transfer is in flight
    DEVICE = 7  # the engine failed (an injected device error, devices/faults.py)

    NAMES = {
        0: "none",
        1: "IOMMU fault reading the source",
        2: "IOMMU fault writing the destination",
        3: "reserved direction",
        4: "bad length",
        5: "device-buffer range out of bounds",
        6: "started while busy",
        7: "device error",
    }


DMA_LAYOUT = RegisterLayout(
    "dma",
    [
        Register("ID", 0x00, 4, RO, reset=DMA_ID_VALUE, doc="Identification: 0x444d4101."),
        Register("SRC_LO", 0x08, 4, RW, doc="Source IOVA (or buffer offset), bits 31:0."),
        Register("SRC_HI", 0x0C, 4, RW, doc="Source, bits 63:32."),
        Register("DST_LO", 0x10, 4, RW, doc="Destination IOVA (or buffer offset), bits 31:0."),
        Register("DST_HI", 0x14, 4, RW, doc="Destination, bits 63:32."),
        Register("LEN", 0x18, 4, RW, doc="Bytes to transfer."),
        Register(
            "CMD",
            0x1C,
            4,
            RW,
            writable=0xF,
            reserved=0xFFFF_FFF0,
            doc="Command (writing START runs it).",
            fields=(
                Field("START", 0, doc="start the transfer (reads back 0)"),
                Field("DIR", 1, 2, doc="0 mem->mem, 1 mem->buffer, 2 buffer->mem"),
                Field("IRQ", 3, doc="raise the IRQ when done or failed"),
            ),
        ),
        Register(
            "STATUS",
            0x20,
            4,
            W1C,
            writable=DMA_STATUS_DONE | DMA_STATUS_ERROR,
            doc="Status; DONE and ERROR are write-1-to-clear, and the IRQ is high while either is set (with CMD.IRQ).",
            fields=(Field("BUSY", 0), Field("DONE", 1), Field("ERROR", 2)),
        ),
        Register(
            "ERROR_CODE",
            0x24,
            4,
            RO,
            doc="Why the last transfer failed: 0 none, 1 read fault, 2 write fault, "
            "3 bad direction, 4 bad length, 5 buffer range, 6 busy, 7 device error.",
        ),
        Register("ERROR_ADDR_LO", 0x28, 4, RO, doc="The faulting IOVA, bits 31:0."),
        Register("ERROR_ADDR_HI", 0x2C, 4, RO, doc="The faulting IOVA, bits 63:32."),
        Register("DONE_COUNT", 0x30, 4, RO, doc="Transfers completed successfully since reset."),
    ],
)
