"""hwsim.devices.virtio.net: virtio-net registers and configuration, transmit and receive through the IOMMU,
the loopback backlog and its drops, malformed chains as issues, the split-ring MUST rules on both
queues, and the pcap backend (replay on virtual time, capture, bad files)."""

from __future__ import annotations

import struct

import pytest
from board_helpers import RW_U, virt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virtio_helpers import (
    CONFIG,
    CONFIG_GEN,
    DESC_HI,
    DESC_LO,
    DEV_FEATURES,
    DEV_FEATURES_SEL,
    DEVICE_HI,
    DEVICE_ID,
    DEVICE_LO,
    DRIVER_HI,
    DRIVER_LO,
    DRV_FEATURES,
    DRV_FEATURES_SEL,
    INT_ACK,
    INT_STATUS,
    MAGIC,
    QUEUE_NOTIFY,
    QUEUE_NUM,
    QUEUE_NUM_MAX,
    QUEUE_READY,
    QUEUE_SEL,
    STATUS,
    VENDOR,
    VERSION,
)
from virtio_helpers import settle as settle_device

from hwsim.devices import OptionError, VirtioNet
from hwsim.devices.pcap import MAGIC_NSEC, read_pcap, write_pcap
from hwsim.devices.virtio.bits import (
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    F_ACCESS_PLATFORM,
    F_VERSION_1,
    NET_F_MAC,
    NET_F_MTU,
    NET_F_STATUS,
    STATUS_ACKNOWLEDGE,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
)
from hwsim.mmu import AddressSpace

IOVA = 0x4000_0000
PAGES = 32
RX, TX = 0, 1
RINGS = {RX: 0x0000, TX: 0x3000}  # desc at +0, avail at +0x1000, used at +0x2000
RX_BUF, TX_BUF, SLOT = 0x8000, 0x1_0000, 0x800
READY = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK
FEATURES = 1 << F_VERSION_1 | 1 << F_ACCESS_PLATFORM | 1 << NET_F_MAC | 1 << NET_F_STATUS | 1 << NET_F_MTU
HDR = struct.Struct("<BBHHHHH")
RX_HDR = HDR.pack(0, 0, 0, 0, 0, 0, 1)  # what the device writes: num_buffers 1
MAC = bytes.fromhex("525400123456")


def frame(n: int, tag: int = 0) -> bytes:
    """An Ethernet frame of ``n`` bytes: to and from the device's MAC, EtherType 0x88b5, a numbered payload."""
    return MAC + MAC + b"\x88\xb5" + bytes((tag + i) & 0xFF for i in range(n - 14))


class Ring:
    def __init__(self, base: int, size: int) -> None:
        self.desc, self.avail, self.used = IOVA + base, IOVA + base + 0x1000, IOVA + base + 0x2000
        self.size = size
        self.next_desc = self.avail_idx = self.used_seen = 0


class NetDriver:
    """virtio-net on the virt board (net0, device ID 1): both rings and all buffers in one IO-mapped region."""

    def __init__(self, *, queue_size: int = 8, seed: int | None = None, faults=None, **options) -> None:
        self.s = virt(seed=seed, faults=faults, **({"net0": options} if options else {}))
        m = self.s.machine
        self.dev: VirtioNet = self.s.device("net0")
        self.phys = m.phys
        self.pa = m.frames.alloc(PAGES)
        iommu = self.s.iommu
        iommu.create_directory()
        self.space = AddressSpace(m.phys, m.frames)
        self.space.map(IOVA, self.pa, PAGES * 0x1000, RW_U)
        iommu.attach(3, self.space, pscid=3)
        self.rings = {q: Ring(base, queue_size) for q, base in RINGS.items()}
        self.rx_buffers: dict[int, int] = {}  # head -> iova
        self.rx_slot = 0

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

    # -- initialisation ---------------------------------------------------------------------------------

    def negotiate(self, accept: int = FEATURES) -> int:
        self.w(STATUS, 0)
        self.w(STATUS, STATUS_ACKNOWLEDGE)
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER)
        for sel in (0, 1):
            self.w(DRV_FEATURES_SEL, sel)
            self.w(DRV_FEATURES, accept >> (32 * sel) & 0xFFFF_FFFF)
        self.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)
        return self.r(STATUS)

    def setup_queue(self, q: int) -> None:
        ring = self.rings[q]
        self.w(QUEUE_SEL, q)
        self.w(QUEUE_NUM, ring.size)
        for lo, hi, value in (
            (DESC_LO, DESC_HI, ring.desc),
            (DRIVER_LO, DRIVER_HI, ring.avail),
            (DEVICE_LO, DEVICE_HI, ring.used),
        ):
            self.w(lo, value & 0xFFFF_FFFF)
            self.w(hi, value >> 32)
        self.w(QUEUE_READY, 1)

    def init(self) -> None:
        assert self.negotiate() & STATUS_FEATURES_OK
        self.setup_queue(RX)
        self.setup_queue(TX)
        self.w(STATUS, READY)

    # -- rings ----------------------------------------------------------------------------------------

    def put_desc(self, q: int, index: int, addr: int, length: int, flags: int, nxt: int = 0) -> None:
        self.mem_write(self.rings[q].desc + 16 * index, struct.pack("<QIHH", addr, length, flags, nxt))

    def chain(self, q: int, segments: list[tuple[int, int, bool]]) -> int:
        """Write ``(iova, length, device_writable)`` segments as a chain; returns its head."""
        ring = self.rings[q]
        head = ring.next_desc
        for k, (addr, length, writable) in enumerate(segments):
            i = (head + k) % ring.size
            last = k == len(segments) - 1
            self.put_desc(
                q,
                i,
                addr,
                length,
                (DESC_F_WRITE if writable else 0) | (0 if last else DESC_F_NEXT),
                0 if last else (i + 1) % ring.size,
            )
        ring.next_desc = (head + len(segments)) % ring.size
        return head

    def offer(self, q: int, *heads: int, flags: int = 0, notify: bool = True, settle: bool = True) -> None:
        """Make ``heads`` available and notify; with ``settle``, let time pass until the device is idle."""
        ring = self.rings[q]
        for head in heads:
            self.mem_write(ring.avail + 4 + 2 * (ring.avail_idx % ring.size), struct.pack("<H", head))
            ring.avail_idx = (ring.avail_idx + 1) & 0xFFFF
        self.mem_write(ring.avail, struct.pack("<HH", flags, ring.avail_idx))
        if notify:
            self.w(QUEUE_NOTIFY, q)
            if settle:
                settle_device(self.dev)

    def used(self, q: int) -> list[tuple[int, int]]:
        """New used elements (id, len) of queue ``q`` since the last call."""
        ring = self.rings[q]
        (idx,) = struct.unpack("<H", self.mem_read(ring.used + 2, 2))
        out = []
        while ring.used_seen != idx:
            slot = ring.used_seen % ring.size
            out.append(struct.unpack("<II", self.mem_read(ring.used + 4 + 8 * slot, 8)))
            ring.used_seen = (ring.used_seen + 1) & 0xFFFF
        return out

    # -- frames ---------------------------------------------------------------------------------------

    def post_rx(self, n: int, size: int = 1526, *, flags: int = 0, notify: bool = True) -> list[int]:
        """Offer ``n`` single-descriptor receive buffers of ``size`` bytes."""
        heads = []
        for _ in range(n):
            iova = IOVA + RX_BUF + SLOT * (self.rx_slot % 8) if size <= SLOT else IOVA + RX_BUF
            self.rx_slot += 1
            self.mem_write(iova, b"\xee" * min(size, SLOT))
            head = self.chain(RX, [(iova, size, True)])
            self.rx_buffers[head] = iova
            heads.append(head)
        self.offer(RX, *heads, flags=flags, notify=notify)
        return heads

    def send(self, data: bytes, *, hdr: bytes = bytes(12), slot: int = 0, flags: int = 0, split: bool = False) -> int:
        """Transmit header + frame from one descriptor (or three: 5 + 7 header bytes, then the frame)."""
        iova = IOVA + TX_BUF + SLOT * slot
        self.mem_write(iova, hdr + data)
        if split:
            segments = [(iova, 5, False), (iova + 5, len(hdr) - 5, False), (iova + len(hdr), len(data), False)]
        else:
            segments = [(iova, len(hdr) + len(data), False)]
        head = self.chain(TX, segments)
        self.offer(TX, head, flags=flags)
        return head

    def received(self) -> list[bytes]:
        """Frames in newly used receive buffers (the header checked); each buffer is forgotten."""
        out = []
        for head, length in self.used(RX):
            iova = self.rx_buffers.pop(head)
            data = self.mem_read(iova, length)
            assert data[:12] == RX_HDR
            out.append(data[12:])
        return out


@pytest.fixture
def drv():
    d = NetDriver()
    d.init()
    return d


def test_identification_features_and_config():
    d = NetDriver()
    assert [d.r(off) for off in (MAGIC, VERSION, DEVICE_ID, VENDOR)] == [0x7472_6976, 2, 1, 0x6D73_7768]
    d.w(DEV_FEATURES_SEL, 0)
    assert d.r(DEV_FEATURES) == 1 << 3 | 1 << 5 | 1 << 16  # MTU, MAC, STATUS
    d.w(DEV_FEATURES_SEL, 1)
    assert d.r(DEV_FEATURES) == 0b11  # VERSION_1, ACCESS_PLATFORM
    assert bytes(d.dev.mmio_read(CONFIG + i, 1) for i in range(6)) == MAC
    assert d.dev.mmio_read(CONFIG + 6, 2) == 1  # status: VIRTIO_NET_S_LINK_UP
    assert d.dev.mmio_read(CONFIG + 8, 2) == 1  # max_virtqueue_pairs
    assert d.dev.mmio_read(CONFIG + 10, 2) == 1500  # mtu
    assert d.dev.mmio_read(CONFIG + 4, 4) == 0x0001_5634  # mac[4..5], status
    for q, expected in ((0, 128), (1, 128), (2, 0)):
        d.w(QUEUE_SEL, q)
        assert d.r(QUEUE_NUM_MAX) == expected
    assert d.r(CONFIG_GEN) == 0 and d.issues == []
    other = NetDriver(mac="02:00:00:aa:bb:cc", queue_size=4)
    assert bytes(other.dev.mmio_read(CONFIG + i, 1) for i in range(6)) == bytes.fromhex("020000aabbcc")


def test_feature_negotiation():
    d = NetDriver()
    assert d.negotiate(accept=1 << F_VERSION_1) & STATUS_FEATURES_OK  # a minimal driver
    assert not d.negotiate(accept=FEATURES | 1 << 0) & STATUS_FEATURES_OK  # VIRTIO_NET_F_CSUM: not offered
    assert not d.negotiate(accept=FEATURES | 1 << 15) & STATUS_FEATURES_OK  # MRG_RXBUF: not offered
    assert not d.negotiate(accept=FEATURES & ~(1 << F_VERSION_1)) & STATUS_FEATURES_OK
    assert d.issues == [
        "Status: FEATURES_OK refused: the driver accepted features 0x1 the device did not offer",
        "Status: FEATURES_OK refused: the driver accepted features 0x8000 the device did not offer",
        "Status: FEATURES_OK refused: VIRTIO_F_VERSION_1 was not accepted (hwsim has no legacy interface)",
    ]
    assert d.negotiate() & STATUS_FEATURES_OK and d.dev.negotiated(NET_F_MAC)


def test_loopback_transmit_then_receive(drv):
    plic = drv.s.irqc
    rx_heads = drv.post_rx(4)
    assert drv.used(RX) == [] and drv.r(INT_STATUS) == 0  # receive buffers wait for frames
    frames = [frame(60, 1), frame(1514, 2), frame(14, 3)]
    tx_heads = [drv.send(f, slot=i) for i, f in enumerate(frames)]
    assert drv.used(TX) == [(h, 0) for h in tx_heads]  # the device writes nothing into a transmit chain
    assert drv.used(RX) == [(h, 12 + len(f)) for h, f in zip(rx_heads, frames)]
    for h, f in zip(rx_heads, frames):
        assert drv.mem_read(drv.rx_buffers[h], 12 + len(f)) == RX_HDR + f
    assert drv.mem_read(drv.rx_buffers[rx_heads[0]] + 72, 4) == b"\xee" * 4  # nothing past the frame
    assert drv.r(INT_STATUS) == 1 and drv.dev.irq.level and plic.is_pending(2)
    drv.w(INT_ACK, 1)
    assert drv.r(INT_STATUS) == 0 and not drv.dev.irq.level
    st_ = drv.dev.stats
    assert (st_.tx_frames, st_.tx_bytes, st_.rx_frames, st_.rx_bytes) == (3, 1588, 3, 1588)
    assert (st_.tx_errors, st_.rx_errors, st_.rx_dropped) == (0, 0, 0) and drv.issues == []


def test_transmission_takes_virtual_time_and_the_wire_keeps_the_queue_order(drv):
    drv.post_rx(4)
    big, small = frame(1514, 1), frame(60, 2)
    drv.mem_write(IOVA + TX_BUF, bytes(12) + big)
    drv.mem_write(IOVA + TX_BUF + SLOT, bytes(12) + small)
    first = drv.chain(TX, [(IOVA + TX_BUF, 12 + len(big), False)])
    second = drv.chain(TX, [(IOVA + TX_BUF + SLOT, 12 + len(small), False)])
    drv.offer(TX, first, second, settle=False)
    assert drv.dev.in_flight == 2 and drv.used(TX) == []
    small_ticks = drv.dev.ns_to_ticks(5_000 + 60 * 8)  # latency_ns + the frame at 1 Gbit/s
    big_ticks = drv.dev.ns_to_ticks(5_000 + 1514 * 8)
    assert (small_ticks, big_ticks) == (55, 172)
    drv.s.advance(small_ticks - 1)
    assert drv.used(TX) == []
    drv.s.advance(1)  # the small frame is read first and its chain returned...
    assert drv.used(TX) == [(second, 0)] and drv.received() == []  # ...but it waits for the big one's turn
    drv.s.advance(big_ticks - small_ticks)
    assert drv.used(TX) == [(first, 0)] and drv.received() == [big, small]  # the wire keeps the queue order
    assert not drv.dev.busy and drv.issues == []


def test_a_seed_returns_transmit_chains_out_of_order():
    orders = set()
    for seed in range(10):
        d = NetDriver(seed=seed)
        d.init()
        d.post_rx(4)
        for i in range(2):
            d.mem_write(IOVA + TX_BUF + SLOT * i, bytes(12) + frame(60, i))
        heads = [d.chain(TX, [(IOVA + TX_BUF + SLOT * i, 72, False)]) for i in range(2)]
        d.offer(TX, *heads)
        orders.add(tuple(h for h, _ in d.used(TX)))
        assert d.received() == [frame(60, 0), frame(60, 1)]  # whatever the returns, the wire's order
    assert orders == {(0, 1), (1, 0)}


def test_drop_and_corrupt_faults_on_frames_from_the_wire():
    d = NetDriver(faults=["net0.drop@2", "net0.corrupt@3"])
    d.init()
    d.post_rx(4)
    sent = [frame(60, i) for i in range(4)]
    for i, f in enumerate(sent):
        d.send(f, slot=i)
    got = d.received()
    assert got == [sent[0], sent[2][:-1] + bytes([sent[2][-1] ^ 0xFF]), sent[3]]
    assert d.dev.stats.rx_dropped == 1 and d.dev.stats.tx_frames == 4 and d.issues == []
    assert [(f.kind, f.occurrence) for f in d.s.faults.fired] == [("drop", 2), ("corrupt", 3)]


def test_header_and_frame_may_be_split_across_descriptors(drv):
    head = drv.chain(RX, [(IOVA + RX_BUF, 12, True), (IOVA + RX_BUF + 12, 50, True), (IOVA + RX_BUF + 62, 1464, True)])
    drv.rx_buffers[head] = IOVA + RX_BUF
    drv.offer(RX, head)
    f = frame(300, 7)
    drv.send(f, split=True)
    assert drv.received() == [f] and drv.issues == []


def test_interrupt_suppression_per_queue(drv):
    drv.post_rx(4, flags=1)  # VIRTQ_AVAIL_F_NO_INTERRUPT on the receive queue
    drv.send(frame(64), flags=1)
    assert len(drv.received()) == 1 and drv.r(INT_STATUS) == 0  # used, without an interrupt
    drv.send(frame(64))
    assert len(drv.received()) == 1 and drv.r(INT_STATUS) == 1  # from the transmit queue
    drv.w(INT_ACK, 1)
    drv.offer(RX, flags=0, notify=False)
    drv.send(frame(64), flags=1)
    assert len(drv.received()) == 1 and drv.r(INT_STATUS) == 1  # from the receive queue
    drv.w(INT_ACK, 1)
    drv.offer(RX, flags=2, notify=False)
    drv.send(frame(64), flags=1)
    assert drv.issues == ["queue 0: available ring flags 0x2: the driver MUST set them to 0 or 1"]


def test_backlog_bound_drops_and_reset():
    d = NetDriver(rx_backlog=2)
    assert d.dev.receive(frame(60)) is False  # before DRIVER_OK: nobody listens
    assert d.dev.stats.rx_dropped == 1
    d.init()
    sent = [frame(60 + i, i) for i in range(5)]
    for i, f in enumerate(sent):
        d.send(f, slot=i)
    assert d.dev.backlog == 2 and d.dev.stats.rx_dropped == 4  # 3 more: the backlog holds 2
    assert d.used(RX) == [] and d.r(INT_STATUS) == 1  # (the transmit queue's interrupt)
    d.w(INT_ACK, 1)
    d.post_rx(3)  # the notification lets the backlog move, in arrival order
    assert d.received() == sent[:2] and d.r(INT_STATUS) == 1 and d.dev.backlog == 0
    d.send(frame(70, 9), slot=5)
    assert d.received() == [frame(70, 9)]
    d.send(frame(71), slot=6)  # no buffer left
    assert d.dev.backlog == 1
    d.w(STATUS, 0)  # a reset empties the backlog
    assert d.dev.backlog == 0 and d.dev.stats.rx_dropped == 5
    assert d.dev.stats.tx_frames == 7 and d.dev.stats.rx_frames == 3 and d.issues == []


def test_no_backlog_delivers_only_into_posted_buffers():
    d = NetDriver(rx_backlog=0)
    d.init()
    d.post_rx(1)
    d.send(frame(60, 1), slot=0)
    d.send(frame(60, 2), slot=1)
    assert d.received() == [frame(60, 1)] and d.dev.stats.rx_dropped == 1


BAD = 0x7700_0000  # not in the device's IO page table


@pytest.mark.parametrize(
    "segments, hdr, problem",
    [
        (
            [(IOVA + TX_BUF, 80, False), (IOVA + RX_BUF, 100, True)],
            bytes(12),
            "has 100 device-writable bytes; transmit buffers MUST be device-readable only",
        ),
        ([(IOVA + TX_BUF, 8, False)], bytes(12), "is 8 bytes, shorter than the 12-byte virtio_net_hdr"),
        (
            [(IOVA + TX_BUF, 12 + 1515, False)],
            bytes(12),
            "carries a 1515-byte frame, more than 1514 (MTU 1500 + Ethernet header; no segmentation offload is offered)",
        ),
        (
            [(IOVA + TX_BUF, 12 + 10, False)],
            bytes(12),
            "carries a 10-byte frame, shorter than an Ethernet header (14 bytes)",
        ),
        (
            [(IOVA + TX_BUF, 12, False), (BAD, 60, False)],
            bytes(12),
            "the IOMMU refused a transmit buffer (see its fault log)",
        ),
        (
            [(IOVA + TX_BUF, 72, False)],
            HDR.pack(1, 0, 0, 0, 34, 16, 0),
            "header flags 0x1: the driver MUST set flags to 0 without VIRTIO_NET_F_CSUM (checksum offload is not offered)",
        ),
        (
            [(IOVA + TX_BUF, 72, False)],
            HDR.pack(0, 1, 54, 1448, 0, 0, 0),
            "header gso_type 0x1: the driver MUST set VIRTIO_NET_HDR_GSO_NONE (no segmentation offload is offered)",
        ),
    ],
)
def test_malformed_transmit_chains_are_dropped_with_an_issue(drv, segments, hdr, problem):
    drv.post_rx(2)
    drv.mem_write(IOVA + TX_BUF, hdr + frame(1600)[: 1600 - 12])
    head = drv.chain(TX, segments)
    drv.offer(TX, head)
    assert drv.used(TX) == [(head, 0)] and drv.received() == []
    assert drv.issues == [f"transmit chain at descriptor {head}: {problem} (frame dropped)"]
    assert drv.dev.stats.tx_errors == 1 and drv.dev.stats.tx_frames == 0
    assert not drv.r(STATUS) & STATUS_DEVICE_NEEDS_RESET
    drv.send(frame(60), slot=3)  # the device goes on
    assert drv.received() == [frame(60)]


def test_nonzero_num_buffers_is_reported_and_the_frame_sent(drv):
    drv.post_rx(1)
    head = drv.send(frame(60), hdr=HDR.pack(0, 0, 0, 0, 0, 0, 3))
    assert drv.received() == [frame(60)]
    assert drv.issues == [
        f"transmit chain at descriptor {head}: header num_buffers 3: the driver MUST set it to 0 (frame sent)"
    ]


@pytest.mark.parametrize(
    "segments, problem",
    [
        ([(IOVA + RX_BUF, 1526, False)], "has 1526 device-readable bytes; receive buffers MUST be device-writable"),
        (
            [(IOVA + RX_BUF, 100, True)],
            "100 bytes are too small for a 200-byte frame and the 12-byte header (drivers SHOULD post at least 1526 bytes)",
        ),
        ([(IOVA + RX_BUF, 12, True), (BAD, 1514, True)], "the IOMMU refused the receive buffer (see its fault log)"),
    ],
)
def test_unusable_receive_buffers_are_returned_unused(drv, segments, problem):
    bad = drv.chain(RX, segments)
    drv.offer(RX, bad)
    (good,) = drv.post_rx(1)
    drv.send(frame(200, 1), slot=0)  # lost with the unusable buffer
    drv.send(frame(200, 2), slot=1)
    assert drv.used(RX) == [(bad, 0), (good, 212)]
    assert drv.mem_read(drv.rx_buffers[good] + 12, 200) == frame(200, 2)
    assert drv.issues == [f"receive chain at descriptor {bad}: {problem} (returned unused, frame dropped)"]
    assert drv.dev.stats.rx_errors == 1 and drv.dev.stats.rx_frames == 1
    assert not drv.r(STATUS) & STATUS_DEVICE_NEEDS_RESET


@pytest.mark.parametrize("q", [RX, TX])
@pytest.mark.parametrize(
    "corrupt, problem",
    [
        (
            lambda d, q: d.put_desc(q, 0, IOVA + RX_BUF, 16, DESC_F_NEXT, 0),
            "the chain at descriptor 0 is longer than the queue size 8 (a loop?); drivers MUST NOT create such chains",
        ),
        (
            lambda d, q: d.put_desc(q, 0, IOVA + RX_BUF, 16, DESC_F_NEXT, 9),
            "descriptor 0 chains to 9, outside the 8-entry table",
        ),
        (
            lambda d, q: d.mem_write(d.rings[q].avail + 4, struct.pack("<H", 12)),
            "available ring entry names descriptor 12, outside the 8-entry table",
        ),
        (
            lambda d, q: d.put_desc(q, 0, IOVA + RX_BUF, 16, DESC_F_INDIRECT),
            "descriptor 0 has VIRTQ_DESC_F_INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated",
        ),
        (
            lambda d, q: d.mem_write(d.rings[q].avail + 2, struct.pack("<H", 40)),
            "available idx 40 is 40 entries ahead of the device (0), more than the queue size 8 (a driver MUST NOT "
            "decrement the available idx)",
        ),
        (
            lambda d, q: d.space.unmap(d.rings[q].used, 0x1000),
            "writing the used ring at iova {used:#x} failed: write page fault (PTE is not valid (V=0))",
        ),
    ],
)
def test_ring_errors_set_device_needs_reset_on_either_queue(drv, q, corrupt, problem):
    if q == RX:
        drv.post_rx(1, notify=False)
    else:
        drv.post_rx(1)
        drv.mem_write(IOVA + TX_BUF, bytes(12) + frame(60))
        drv.offer(TX, drv.chain(TX, [(IOVA + TX_BUF, 72, False)]), notify=False)
    corrupt(drv, q)
    if q == RX:
        drv.send(frame(60))  # the loopback frame finds the broken receive ring
    else:
        drv.w(QUEUE_NOTIFY, TX)
        settle_device(drv.dev)  # a ring error is found at the fetch; a used-ring write fails at the completion
    assert drv.r(STATUS) & STATUS_DEVICE_NEEDS_RESET
    assert drv.r(INT_STATUS) & 2  # configuration change
    assert drv.issues[-1] == f"queue {q}: " + problem.format(used=drv.rings[q].used + 4) + "; device needs reset"
    drv.w(QUEUE_NOTIFY, TX)
    assert drv.issues[-1] == (
        "notification of queue 1 while DEVICE_NEEDS_RESET is set (ignored until the driver resets the device)"
    )
    dropped = drv.dev.stats.rx_dropped
    assert drv.dev.receive(frame(60)) is False and drv.dev.stats.rx_dropped == dropped + 1
    drv.w(STATUS, 0)  # reset, and the device works again
    assert drv.r(STATUS) == 0 and drv.r(INT_STATUS) == 0
    drv.space.unmap(drv.rings[q].used, 0x1000)
    drv.space.map(drv.rings[q].used, drv.pa + drv.rings[q].used - IOVA, 0x1000, RW_U)
    drv.s.iommu.iotinval_vma()
    for ring in drv.rings.values():
        ring.next_desc = ring.avail_idx = ring.used_seen = 0
    drv.rx_buffers.clear()
    drv.init()
    drv.post_rx(1)
    drv.send(frame(61))
    assert drv.received() == [frame(61)]


def test_queue_registers_and_config_space_misuse(drv):
    drv.w(QUEUE_SEL, 2)
    drv.w(QUEUE_READY, 1)
    drv.w(QUEUE_NOTIFY, 2)
    drv.dev.mmio_write(CONFIG, 1, 0x52)
    drv.dev.mmio_read(CONFIG + 12, 4)
    drv.dev.mmio_read(CONFIG + 5, 2)
    assert drv.issues == [
        "QueueReady: QueueSel 2 selects no queue (the device has 2)",
        "QueueNotify: queue 2 does not exist or is not ready (ignored)",
        "write of 0x52 to the read-only configuration space at offset 0x100",
        "4-byte read at offset 0x10c: the configuration space is 12 bytes at 0x100 (naturally aligned 1, 2 or "
        "4-byte reads)",
        "2-byte read at offset 0x105: the configuration space is 12 bytes at 0x100 (naturally aligned 1, 2 or "
        "4-byte reads)",
    ]


def test_options_are_checked(tmp_path):
    cases = [
        (dict(queue_size=12), "option 'queue_size': must be a power of 2, not 12"),
        (
            dict(mac="52:54:00:12:34"),
            "option 'mac': must be six hex bytes separated by ':' (e.g. 52:54:00:12:34:56), not '52:54:00:12:34'",
        ),
        (
            dict(mac="01:00:5e:00:00:01"),
            "option 'mac': 01:00:5e:00:00:01 is a multicast address (bit 0 of the first byte is set)",
        ),
        (dict(backend="pcap"), "option 'backend': 'pcap' needs a 'tx' file, an 'rx' file or both"),
        (dict(tx="out.pcap"), "option 'tx': is a pcap file, for backend 'pcap' only (backend is 'loopback')"),
        (dict(backend="tap"), "option 'backend': must be one of 'loopback', 'pcap', not 'tap'"),
        (dict(rx_backlog=-1), "option 'rx_backlog': must be at least 0, not -1"),
    ]
    for options, message in cases:
        with pytest.raises(OptionError) as info:
            VirtioNet(name="n", **options)
        assert str(info.value) == message


# -- the pcap backend -----------------------------------------------------------------------------------


def test_pcap_replay_on_virtual_time_and_capture(tmp_path):
    rx, tx = tmp_path / "in.pcap", tmp_path / "out.pcap"
    incoming = [frame(60, 1), frame(1514, 2), frame(100, 3)]
    base = 1_700_000_000 * 10**9  # absolute capture times: only the intervals matter
    write_pcap(rx, [(base, incoming[0]), (base + 1_000_000, incoming[1]), (base + 2_500_000, incoming[2])])
    d = NetDriver(backend="pcap", rx=str(rx), tx=str(tx))
    assert read_pcap(tx) == []  # created at once, with its header
    d.s.advance(50_000)
    d.init()  # DRIVER_OK at tick 50000: the replay starts now
    d.post_rx(2)
    assert d.received() == []
    d.s.advance(0)
    assert d.received() == incoming[:1]
    d.s.advance(9_999)  # 1 ms is 10000 ticks at 10 MHz
    assert d.received() == []
    d.s.advance(1)
    assert d.received() == incoming[1:2]
    d.s.advance(15_000)  # no buffer left: the third waits in the backlog
    assert d.dev.backlog == 1 and d.received() == []
    d.post_rx(1)
    assert d.received() == incoming[2:]
    d.send(frame(64, 4), slot=0)
    d.s.advance(1234)
    d.send(frame(65, 5), slot=1)
    assert d.received() == []  # nothing comes back: the frames went to the capture
    records = read_pcap(tx)
    # Stamped when on the wire: 5.6 us after the notification (5 us + 64 or 65 bytes at 1 Gbit/s, in ticks of 100 ns)
    assert [(r.time_ns, r.data) for r in records] == [(7_505_600, frame(64, 4)), (7_634_600, frame(65, 5))]
    raw = tx.read_bytes()
    assert struct.unpack_from("<IHHiIII", raw) == (MAGIC_NSEC, 2, 4, 0, 0, 65535, 1)  # LINKTYPE_ETHERNET
    assert d.issues == [] and d.dev.backend.delivered == 3


def test_a_capture_that_cannot_be_written_is_reported_not_raised(tmp_path):
    tx = tmp_path / "gone" / "out.pcap"
    tx.parent.mkdir()
    d = NetDriver(backend="pcap", tx=str(tx))
    d.init()
    tx.unlink()
    tx.parent.rmdir()
    head = d.send(frame(60))
    assert d.used(TX) == [(head, 0)] and d.dev.stats.tx_frames == 1
    assert d.issues == [
        f"host I/O error writing the capture: {str(tx)!r}: cannot write: No such file or directory (frame not captured)"
    ]


def test_pcap_reads_big_endian_microsecond_files(tmp_path):
    path = tmp_path / "be.pcap"
    frames = [frame(60, 8), frame(61, 9)]
    raw = struct.pack(">IHHiIII", 0xA1B2_C3D4, 2, 4, 0, 0, 262144, 1)
    for i, f in enumerate(frames):
        raw += struct.pack(">IIII", 5, 999_999 if i == 0 else 0, len(f), len(f)) + f
    path.write_bytes(raw)
    assert [(r.time_ns, r.data) for r in read_pcap(path)] == [(5_999_999_000, frames[0]), (5_000_000_000, frames[1])]
    d = NetDriver(backend="pcap", rx=str(path))
    d.init()
    d.post_rx(2)
    d.s.advance(0)  # the second record is stamped earlier: it follows the first at once
    assert d.received() == frames


def _pcap(linktype=1, magic=0xA1B2_C3D4, major=2):
    return struct.pack("<IHHiIII", magic, major, 4, 0, 0, 65535, linktype)


def _record(data, incl=None, orig=None, frac=0):
    n = len(data)
    return struct.pack("<IIII", 0, frac, n if incl is None else incl, n if orig is None else orig) + data


@pytest.mark.parametrize(
    "content, problem",
    [
        (None, "cannot read: No such file or directory"),
        (b"\xd4\xc3\xb2", "3 bytes, shorter than the 24-byte pcap header"),
        (
            b"\x0a\x0d\x0d\x0a" + bytes(28),
            "not a pcap file (magic number 0a0d0d0a; expected a1b2c3d4 or a1b23c4d, pcapng is not supported)",
        ),
        (_pcap(major=3), "pcap version 3.4, expected 2.x"),
        (_pcap(linktype=101), "link type 101, expected 1 (Ethernet)"),
        (_pcap() + b"\0" * 10, "record 0 at byte 24: truncated record header (10 of 16 bytes)"),
        (
            _pcap() + _record(frame(60)) + _record(frame(60))[:50],
            "record 1 at byte 100: truncated frame (34 of 60 bytes)",
        ),
        (
            _pcap() + _record(frame(60), orig=100),
            "record 0 at byte 24: the frame was captured truncated (60 of 100 bytes)",
        ),
        (
            _pcap() + _record(frame(60), orig=50),
            "record 0 at byte 24: captured length 60 exceeds the original length 50",
        ),
        (
            _pcap() + _record(frame(60), frac=1_000_000),
            "record 0 at byte 24: timestamp fraction 1000000 is out of range",
        ),
        (
            _pcap() + _record(frame(60)) + _record(bytes(1515)),
            "record 1: a 1515-byte frame; Ethernet frames are 14..1514 bytes (without FCS)",
        ),
        (_pcap() + _record(bytes(13)), "record 0: a 13-byte frame; Ethernet frames are 14..1514 bytes (without FCS)"),
    ],
)
def test_bad_pcap_files_are_clear_errors_naming_the_file(tmp_path, content, problem):
    path = tmp_path / "in.pcap"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(OptionError) as info:
        VirtioNet(name="n", backend="pcap", rx=str(path))
    assert str(info.value) == f"option 'rx': {str(path)!r}: {problem}"


def test_unwritable_capture_file_is_a_clear_error(tmp_path):
    path = tmp_path / "no" / "such" / "dir" / "out.pcap"
    with pytest.raises(OptionError) as info:
        VirtioNet(name="n", backend="pcap", tx=str(path))
    assert str(info.value) == f"option 'tx': {str(path)!r}: cannot write: No such file or directory"


# -- the property: what comes back is what was sent, in order, minus counted drops -----------------------


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    ops=st.lists(
        st.one_of(st.tuples(st.just("send"), st.integers(14, 1514)), st.tuples(st.just("post"), st.integers(1, 3))),
        min_size=1,
        max_size=25,
    ),
    backlog=st.integers(0, 3),
)
def test_loopback_delivers_in_order_and_counts_every_drop(ops, backlog):
    d = NetDriver(rx_backlog=backlog)
    d.init()
    sent, got, posted = [], [], 0
    for i, (op, arg) in enumerate(ops):
        if op == "send":
            f = frame(arg, i)
            sent.append(f)
            d.send(f, slot=i % 8)
        elif posted - len(got) + arg <= 8:  # never more buffers than the ring holds
            d.post_rx(arg)
            posted += arg
        got += d.received()
    stats = d.dev.stats
    assert stats.tx_frames == len(sent) == stats.rx_frames + stats.rx_dropped + d.dev.backlog
    assert stats.rx_frames == len(got) and d.dev.backlog <= backlog
    it = iter(sent)  # got is a subsequence of sent, in order
    assert all(any(f == s for s in it) for f in got)
    assert d.issues == []


# -- the property: garbage from the driver is an issue or a reset, never an exception -------------------

segment = st.tuples(
    st.sampled_from([IOVA + TX_BUF, IOVA + TX_BUF + 0x7F0, IOVA + RX_BUF, BAD, IOVA + 0x1000]),
    st.sampled_from([0, 1, 5, 12, 60, 1526, 2000, 0xFFFF_FFFF]),
    st.booleans(),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    chains=st.lists(
        st.tuples(st.sampled_from([RX, TX]), st.lists(segment, min_size=1, max_size=4)), min_size=1, max_size=6
    ),
    header=st.binary(min_size=12, max_size=12),
    fill=st.binary(min_size=1, max_size=4),
)
def test_garbage_chains_are_issues_or_a_reset_never_an_exception(chains, header, fill):
    d = NetDriver(rx_backlog=2)
    d.init()
    d.mem_write(IOVA + TX_BUF, header + (fill * 2048)[:4084])
    for q, segments in chains:
        head = d.chain(q, segments)
        d.offer(q, head)
        if d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET:
            assert d.issues[-1].endswith("; device needs reset")
            break
    stats = d.dev.stats
    assert stats.tx_frames + stats.tx_errors <= sum(q == TX for q, _ in chains)
    assert stats.tx_frames == stats.rx_frames + stats.rx_errors + stats.rx_dropped + d.dev.backlog
    assert d.dev.backlog <= 2
    for message in d.issues:
        assert message.startswith(("transmit chain at descriptor", "receive chain at descriptor", "queue ")), message
