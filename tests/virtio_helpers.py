"""A small virtio-blk driver in Python for tests: it writes rings and requests into guest RAM and
programs the virtio-mmio registers exactly as a guest driver would (the guest path to the same
registers is tested end to end separately)."""

from __future__ import annotations

import struct

from board_helpers import virt

from hwsim.devices.virtio.bits import (
    BLK_F_FLUSH,
    DESC_F_NEXT,
    DESC_F_WRITE,
    F_ACCESS_PLATFORM,
    F_VERSION_1,
    STATUS_ACKNOWLEDGE,
    STATUS_DRIVER,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
)
from hwsim.mmu import AddressSpace, Pte

MAGIC, VERSION, DEVICE_ID, VENDOR = 0x000, 0x004, 0x008, 0x00C
DEV_FEATURES, DEV_FEATURES_SEL, DRV_FEATURES, DRV_FEATURES_SEL = 0x010, 0x014, 0x020, 0x024
QUEUE_SEL, QUEUE_NUM_MAX, QUEUE_NUM, QUEUE_READY, QUEUE_NOTIFY = 0x030, 0x034, 0x038, 0x044, 0x050
INT_STATUS, INT_ACK, STATUS = 0x060, 0x064, 0x070
DESC_LO, DESC_HI, DRIVER_LO, DRIVER_HI, DEVICE_LO, DEVICE_HI, CONFIG_GEN = 0x80, 0x84, 0x90, 0x94, 0xA0, 0xA4, 0xFC
CONFIG = 0x100

IOVA = 0x4000_0000
PAGES = 24
DESC_OFF, AVAIL_OFF, USED_OFF, HDR_OFF, STATUS_OFF, DATA_OFF = 0x0, 0x1000, 0x2000, 0x3000, 0x3800, 0x4000
RW_U = Pte.R | Pte.W | Pte.U


def settle(device) -> int:
    """Advance the board's clock event by event until ``device`` has no request in flight."""
    clock = device.clock
    start = clock.now
    while device.busy:
        clock.advance_to(max(clock.next_deadline, clock.now))
    return clock.now - start


class BlkDriver:
    """virtio-blk on the virt board (device ID 2), rings and buffers in one IO-mapped region."""

    def __init__(self, image: str = "", *, readonly: bool = False, queue_size: int = 8, system=None) -> None:
        self.s = system or virt(blk0={"image": image, "readonly": readonly})
        m = self.s.machine
        self.dev = self.s.device("blk0")
        self.phys = m.phys
        self.pa = m.frames.alloc(PAGES)
        iommu = self.s.iommu
        iommu.create_directory()
        self.space = AddressSpace(m.phys, m.frames)
        self.space.map(IOVA, self.pa, PAGES * 0x1000, RW_U)
        iommu.attach(2, self.space, pscid=2)
        self.qsize = queue_size
        self.next_desc = 0
        self.avail_idx = 0
        self.used_seen = 0

    # -- registers and memory ------------------------------------------------------------------------

    def w(self, off: int, value: int) -> None:
        self.dev.mmio_write(off, 4, value)

    def r(self, off: int) -> int:
        return self.dev.mmio_read(off, 4)

    def mem_write(self, iova: int, data: bytes) -> None:
        self.phys.write(self.pa + iova - IOVA, data)

    def mem_read(self, iova: int, size: int) -> bytes:
        return self.phys.read(self.pa + iova - IOVA, size)

    @property
    def issues(self) -> list[str]:
        return [i.message for i in self.dev.issues]

    # -- initialisation (virtio 1.x, 3.1.1) -----------------------------------------------------------

    def negotiate(self, accept: int | None = None) -> int:
        self.w(STATUS, 0)
        self.w(STATUS, STATUS_ACKNOWLEDGE)
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER)
        self.w(DEV_FEATURES_SEL, 0)
        offered = self.r(DEV_FEATURES)
        self.w(DEV_FEATURES_SEL, 1)
        offered |= self.r(DEV_FEATURES) << 32
        if accept is None:
            accept = offered & (1 << F_VERSION_1 | 1 << F_ACCESS_PLATFORM | 1 << BLK_F_FLUSH)
        for sel in (0, 1):
            self.w(DRV_FEATURES_SEL, sel)
            self.w(DRV_FEATURES, accept >> (32 * sel) & 0xFFFF_FFFF)
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)
        return self.r(STATUS)

    def setup_queue(
        self,
        size: int | None = None,
        *,
        desc=IOVA + DESC_OFF,
        avail=IOVA + AVAIL_OFF,
        used=IOVA + USED_OFF,
        ready: bool = True,
    ) -> None:
        self.w(QUEUE_SEL, 0)
        self.w(QUEUE_NUM, size or self.qsize)
        for lo, value in ((DESC_LO, desc), (DRIVER_LO, avail), (DEVICE_LO, used)):
            self.w(lo, value & 0xFFFF_FFFF)
            self.w(lo + 4, value >> 32)
        if ready:
            self.w(QUEUE_READY, 1)

    def init(self) -> None:
        assert self.negotiate() & STATUS_FEATURES_OK
        self.setup_queue()
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK)

    # -- requests -------------------------------------------------------------------------------------

    def put_desc(self, index: int, addr: int, length: int, flags: int, nxt: int = 0) -> None:
        self.mem_write(IOVA + DESC_OFF + 16 * index, struct.pack("<QIHH", addr, length, flags, nxt))

    def chain(self, segments: list[tuple[int, int, bool]]) -> int:
        """Write ``(iova, length, device_writable)`` segments as a chain; returns its head."""
        head = self.next_desc
        for k, (addr, length, writable) in enumerate(segments):
            i = (head + k) % self.qsize
            last = k == len(segments) - 1
            self.put_desc(
                i,
                addr,
                length,
                (DESC_F_WRITE if writable else 0) | (0 if last else DESC_F_NEXT),
                0 if last else (i + 1) % self.qsize,
            )
        self.next_desc = (head + len(segments)) % self.qsize
        return head

    def offer(self, *heads: int, flags: int = 0, notify: bool = True, settle: bool = True) -> None:
        """Make ``heads`` available and notify; with ``settle``, let time pass until they completed."""
        for head in heads:
            self.mem_write(IOVA + AVAIL_OFF + 4 + 2 * (self.avail_idx % self.qsize), struct.pack("<H", head))
            self.avail_idx = (self.avail_idx + 1) & 0xFFFF
        self.mem_write(IOVA + AVAIL_OFF, struct.pack("<HH", flags, self.avail_idx))
        if notify:
            self.w(QUEUE_NOTIFY, 0)
            if settle:
                self.settle()

    def settle(self) -> int:
        """Let virtual time pass until no request is in flight; returns the ticks that passed."""
        return settle(self.dev)

    def used(self) -> list[tuple[int, int]]:
        """New used elements (id, len) since the last call."""
        (idx,) = struct.unpack("<H", self.mem_read(IOVA + USED_OFF + 2, 2))
        out = []
        while self.used_seen != idx:
            slot = self.used_seen % self.qsize
            out.append(struct.unpack("<II", self.mem_read(IOVA + USED_OFF + 4 + 8 * slot, 8)))
            self.used_seen = (self.used_seen + 1) & 0xFFFF
        return out

    def request(
        self,
        kind: int,
        sector: int,
        *,
        data: bytes = b"",
        read_len: int = 0,
        slot: int = 0,
        data_iova: int | None = None,
        status_iova: int | None = None,
    ) -> tuple[int | None, int | None]:
        """One header | data | status request; returns (status byte, used len), or (None, None) if not used."""
        hdr = IOVA + HDR_OFF + 16 * slot
        status = status_iova if status_iova is not None else IOVA + STATUS_OFF + slot
        buf = data_iova if data_iova is not None else IOVA + DATA_OFF
        self.mem_write(hdr, struct.pack("<IIQ", kind, 0, sector))
        if status_iova is None:
            self.mem_write(status, b"\xee")
        segments = [(hdr, 16, False)]
        if data:
            if data_iova is None:
                self.mem_write(buf, data)
            segments.append((buf, len(data), False))
        if read_len:
            segments.append((buf, read_len, True))
        segments.append((status, 1, True))
        head = self.chain(segments)
        self.offer(head)
        used = self.used()
        if not used:
            return None, None
        ((uid, ulen),) = used
        assert uid == head
        return (self.mem_read(status, 1)[0] if status_iova is None else None), ulen
