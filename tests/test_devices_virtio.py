"""hwsim.devices.virtio: virtio-mmio v2 registers and negotiation, split-virtqueue MUST rules, virtio-blk
requests through the IOMMU, and an image that no faulting driver or refused DMA can corrupt."""

from __future__ import annotations

import hashlib
import struct
import tracemalloc

import pytest
from board_helpers import RW_U, BoardGuest, virt
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from virtio_helpers import (
    AVAIL_OFF,
    CONFIG,
    CONFIG_GEN,
    DATA_OFF,
    DEV_FEATURES,
    DEV_FEATURES_SEL,
    DEVICE_ID,
    DRV_FEATURES,
    DRV_FEATURES_SEL,
    HDR_OFF,
    INT_ACK,
    INT_STATUS,
    IOVA,
    MAGIC,
    QUEUE_NOTIFY,
    QUEUE_NUM,
    QUEUE_NUM_MAX,
    QUEUE_READY,
    QUEUE_SEL,
    STATUS,
    STATUS_OFF,
    USED_OFF,
    VENDOR,
    VERSION,
    BlkDriver,
)

from hwsim.devices import OptionError, VirtioBlk
from hwsim.devices.virtio.bits import (
    BLK_T_FLUSH,
    BLK_T_GET_ID,
    BLK_T_IN,
    BLK_T_OUT,
    DESC_F_INDIRECT,
    DESC_F_NEXT,
    DESC_F_WRITE,
    F_VERSION_1,
    STATUS_ACKNOWLEDGE,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER,
    STATUS_DRIVER_OK,
    STATUS_FEATURES_OK,
)
from hwsim.riscv import asm as A

OK, IOERR, UNSUPP = 0, 1, 2
READY = STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK | STATUS_DRIVER_OK
SECTORS = 16


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "disk.img"
    path.write_bytes(bytes(range(256)) * (SECTORS * 2))  # 16 sectors
    return path


@pytest.fixture
def drv(image):
    d = BlkDriver(str(image))
    d.init()
    return d


def digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_identification_features_and_config(image):
    d = BlkDriver(str(image))
    assert [d.r(off) for off in (MAGIC, VERSION, DEVICE_ID, VENDOR)] == [0x7472_6976, 2, 2, 0x6D73_7768]
    d.w(DEV_FEATURES_SEL, 0)
    assert d.r(DEV_FEATURES) == 1 << 2 | 1 << 6 | 1 << 9  # SEG_MAX, BLK_SIZE, FLUSH
    d.w(DEV_FEATURES_SEL, 1)
    assert d.r(DEV_FEATURES) == 0b11  # VERSION_1, ACCESS_PLATFORM
    d.w(DEV_FEATURES_SEL, 2)
    assert d.r(DEV_FEATURES) == 0
    assert d.dev.mmio_read(CONFIG, 4) | d.dev.mmio_read(CONFIG + 4, 4) << 32 == SECTORS  # capacity (ld: lo, hi)
    assert d.dev.mmio_read(CONFIG + 12, 4) == 126  # seg_max
    assert d.dev.mmio_read(CONFIG + 20, 4) == 512  # blk_size
    assert d.dev.mmio_read(CONFIG, 1) == SECTORS
    assert d.r(QUEUE_NUM_MAX) == 128 and d.r(CONFIG_GEN) == 0 and d.r(QUEUE_READY) == 0
    assert d.issues == []


def test_read_write_flush_get_id_round_trip(drv, image):
    status, used = drv.request(BLK_T_IN, 1, read_len=1024)
    assert (status, used) == (OK, 1025)
    assert drv.mem_read(IOVA + DATA_OFF, 1024) == image.read_bytes()[512:1536]
    payload = b"hwsim!!!" * 128
    assert drv.request(BLK_T_OUT, 3, data=payload, slot=1) == (OK, 1)
    assert image.read_bytes()[3 * 512 : 4 * 512] == payload[:512]
    assert image.read_bytes()[4 * 512 : 5 * 512] == payload[512:]
    assert drv.request(BLK_T_FLUSH, 0, slot=2) == (OK, 1)
    assert drv.request(BLK_T_GET_ID, 0, read_len=20, slot=3) == (OK, 21)
    assert drv.mem_read(IOVA + DATA_OFF, 20) == b"hwsim-blk" + bytes(11)
    assert drv.request(11, 0, slot=4) == (UNSUPP, 1)  # DISCARD: not offered
    assert drv.issues == []


def test_used_buffer_interrupt_ack_and_suppression(drv):
    plic = drv.s.irqc
    drv.request(BLK_T_IN, 0, read_len=512)
    assert drv.r(INT_STATUS) == 1 and drv.dev.irq.level and plic.is_pending(1)
    drv.w(INT_ACK, 1)
    assert drv.r(INT_STATUS) == 0 and not drv.dev.irq.level
    head = drv.chain([(IOVA + HDR_OFF, 16, False), (IOVA + STATUS_OFF, 1, True)])
    drv.mem_write(IOVA + HDR_OFF, struct.pack("<IIQ", BLK_T_FLUSH, 0, 0))
    drv.offer(head, flags=1)  # VIRTQ_AVAIL_F_NO_INTERRUPT
    assert drv.used() == [(head, 1)] and drv.r(INT_STATUS) == 0


def test_several_chains_in_one_notification(drv, image):
    heads = []
    for slot in range(2):  # 3 descriptors each: two chains fit the 8-entry table
        drv.mem_write(IOVA + HDR_OFF + 16 * slot, struct.pack("<IIQ", BLK_T_IN, slot, slot))
        heads.append(
            drv.chain(
                [
                    (IOVA + HDR_OFF + 16 * slot, 16, False),
                    (IOVA + DATA_OFF + 512 * slot, 512, True),
                    (IOVA + STATUS_OFF + slot, 1, True),
                ]
            )
        )
    drv.offer(*heads)
    assert drv.used() == [(h, 513) for h in heads]
    assert drv.mem_read(IOVA + DATA_OFF, 1024) == image.read_bytes()[:1024]


def read_chain(d: BlkDriver, slot: int, sector: int, sectors: int) -> int:
    """An IN request of ``sectors`` sectors into data slot ``slot`` (4 KiB apart); returns its head."""
    d.mem_write(IOVA + HDR_OFF + 16 * slot, struct.pack("<IIQ", BLK_T_IN, 0, sector))
    d.mem_write(IOVA + STATUS_OFF + slot, b"\xee")
    return d.chain(
        [
            (IOVA + HDR_OFF + 16 * slot, 16, False),
            (IOVA + DATA_OFF + 0x1000 * slot, 512 * sectors, True),
            (IOVA + STATUS_OFF + slot, 1, True),
        ]
    )


def test_requests_complete_on_virtual_time_with_the_used_ring_and_interrupt(drv, image):
    head = read_chain(drv, 0, 2, 1)
    drv.offer(head, settle=False)
    assert drv.dev.busy and drv.used() == [] and drv.r(INT_STATUS) == 0  # nothing yet, not even the data
    assert drv.mem_read(IOVA + DATA_OFF, 4) == bytes(4) and drv.mem_read(IOVA + STATUS_OFF, 1) == b"\xee"
    ticks = drv.dev.ns_to_ticks(50_000 + 512)  # latency_ns + 512 bytes at 1 GB/s
    assert ticks == 506
    drv.s.advance(ticks - 1)
    assert drv.used() == [] and not drv.dev.irq.level
    drv.s.advance(1)
    assert drv.used() == [(head, 513)] and drv.r(INT_STATUS) == 1 and drv.dev.irq.level and not drv.dev.busy
    assert drv.mem_read(IOVA + DATA_OFF, 512) == image.read_bytes()[1024:1536]


def test_several_in_flight_complete_in_the_order_their_latencies_give(drv):
    big, small = read_chain(drv, 0, 0, 8), read_chain(drv, 1, 8, 1)  # 4 KiB, then 512 bytes
    drv.offer(big, small, settle=False)
    assert drv.dev.in_flight == 2
    drv.settle()
    assert [h for h, _ in drv.used()] == [small, big]  # the short one first, at nominal timing too
    same = [read_chain(drv, 0, 0, 1), read_chain(drv, 1, 1, 1)]
    drv.offer(*same)
    assert [h for h, _ in drv.used()] == same  # equal latencies: in order


def test_a_seed_varies_latencies_and_completions_come_back_out_of_order(image):
    def run(seed):
        d = BlkDriver(str(image), system=virt(seed=seed, blk0={"image": str(image)}))
        d.init()
        d.offer(read_chain(d, 0, 0, 1), read_chain(d, 1, 1, 1))
        return [h for h, _ in d.used()], d.s.clock.now, [draw.ticks for draw in d.s.timing.draws]

    runs = [run(seed) for seed in range(12)]
    assert {tuple(order) for order, _, _ in runs} == {(0, 3), (3, 0)}  # two equal requests, either order
    assert len({tuple(ticks) for _, _, ticks in runs}) > 6 and all(ticks != [506, 506] for _, _, ticks in runs)
    assert run(3) == runs[3]  # a seed replays exactly


def test_no_interrupt_flag_is_read_at_completion(drv):
    head = read_chain(drv, 0, 0, 1)
    drv.offer(head, flags=1, settle=False)  # VIRTQ_AVAIL_F_NO_INTERRUPT while in flight...
    drv.mem_write(IOVA + AVAIL_OFF, struct.pack("<H", 0))  # ...and cleared before completion
    drv.settle()
    assert drv.used() == [(head, 513)] and drv.r(INT_STATUS) == 1
    drv.w(INT_ACK, 1)
    head = read_chain(drv, 1, 0, 1)
    drv.offer(head, flags=1)
    assert drv.used() == [(head, 513)] and drv.r(INT_STATUS) == 0


def test_a_reset_abandons_requests_in_flight(drv, image):
    before = digest(image)
    drv.mem_write(IOVA + HDR_OFF, struct.pack("<IIQ", BLK_T_OUT, 0, 0))
    drv.mem_write(IOVA + DATA_OFF, b"Z" * 512)
    head = drv.chain([(IOVA + HDR_OFF, 16, False), (IOVA + DATA_OFF, 512, False), (IOVA + STATUS_OFF, 1, True)])
    drv.offer(head, settle=False)
    requests = drv.s.iommu.stats.requests
    drv.w(STATUS, 0)
    assert not drv.dev.busy and drv.s.clock.next_deadline is None
    drv.s.advance(10_000)
    assert drv.s.iommu.stats.requests == requests  # no DMA after the reset
    assert drv.mem_read(IOVA + USED_OFF + 2, 2) == bytes(2) and digest(image) == before


def test_zero_latency_and_bandwidth_complete_at_the_notification(image):
    d = BlkDriver(str(image), system=virt(blk0={"image": str(image), "latency_ns": 0, "bandwidth": 0}))
    d.init()
    d.offer(read_chain(d, 0, 0, 1), settle=False)
    assert d.used() == [(0, 513)] and d.s.clock.now == 0


# -- injected faults -----------------------------------------------------------------------------------


def test_every_peripheral_with_an_interrupt_offers_lost_and_spurious():
    from hwsim.devices.base import DEVICE_TYPES

    offered = {name: set(cls.FAULTS) for name, cls in DEVICE_TYPES.items() if not name.endswith("-test")}
    assert offered["virtio-blk"] == {"ioerr", "unsupp", "media", "needs_reset", "lost", "spurious"}
    assert offered["virtio-net"] == {"drop", "corrupt", "lost", "spurious"}
    assert offered["ns16550a"] == {"framing", "parity", "lost", "spurious"}
    assert offered["dma"] == {"error", "lost", "spurious"} and offered["goldfish-rtc"] == {"lost", "spurious"}
    assert offered["plic"] == set() and offered["riscv-iommu"] == set()


def test_a_lost_interrupt_waits_for_the_next_one_and_a_spurious_one_ends_by_itself(image):
    d = faulty(image, "blk0.lost@1", "blk0.spurious@2")
    assert d.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    assert d.r(INT_STATUS) == 1 and not d.dev.irq.level  # the rise was lost: nothing pending at the PLIC
    assert not d.s.irqc.is_pending(1)
    assert d.request(BLK_T_IN, 0, read_len=512, slot=1) == (OK, 513)
    assert d.dev.irq.level and d.s.irqc.is_pending(1)  # the next interrupt gets through
    d.w(INT_ACK, 1)  # the 1st fall: an ordinary one
    assert not d.dev.irq.level
    assert d.request(BLK_T_IN, 0, read_len=512, slot=2) == (OK, 513)
    d.w(INT_ACK, 1)  # the 2nd fall: a spurious pulse follows, with nothing pending
    assert d.dev.irq.level and d.r(INT_STATUS) == 0
    d.s.advance(1)
    assert not d.dev.irq.level
    assert [(f.kind, f.occurrence) for f in d.s.faults.fired] == [("lost", 1), ("spurious", 2)]


def faulty(image, *faults, **options) -> BlkDriver:
    d = BlkDriver(str(image), system=virt(faults=list(faults), blk0={"image": str(image), **options}))
    d.init()
    return d


def test_ioerr_and_unsupp_faults_complete_requests_with_that_status(image):
    d = faulty(image, "blk0.ioerr@2", "blk0.unsupp@3")
    payload = b"w" * 512
    before = digest(image)
    assert d.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    assert d.request(BLK_T_OUT, 0, data=payload, slot=1) == (IOERR, 1)  # the 2nd request: the image untouched
    assert digest(image) == before
    assert d.request(BLK_T_IN, 0, read_len=512, slot=2) == (UNSUPP, 1)
    assert d.request(BLK_T_OUT, 0, data=payload, slot=3) == (OK, 1)
    assert [(f.device, f.kind, f.occurrence) for f in d.s.faults.fired] == [("blk0", "ioerr", 2), ("blk0", "unsupp", 3)]
    assert d.issues == []  # a device failure is not the driver's misuse


def test_media_errors_on_the_bad_sectors_option(image):
    d = faulty(image, bad_sectors="3, 10-11")
    assert d.request(BLK_T_IN, 2, read_len=1024) == (IOERR, 1)  # sectors 2..3
    assert d.request(BLK_T_IN, 4, read_len=3072, slot=1) == (OK, 3073)  # 4..9
    assert d.request(BLK_T_OUT, 11, data=b"m" * 512, slot=2) == (IOERR, 1)
    assert d.request(BLK_T_OUT, 12, data=b"m" * 512, slot=3) == (OK, 1)
    assert image.read_bytes()[11 * 512 : 12 * 512] == (bytes(range(256)) * 2)  # not written
    assert [(f.kind, f.occurrence) for f in d.s.faults.fired] == [("media", 1), ("media", 3)]
    with pytest.raises(OptionError, match=r"option 'bad_sectors': '5-2' is not a sector or a range|ends before"):
        VirtioBlk(name="b", bad_sectors="5-2")
    with pytest.raises(OptionError, match="option 'bad_sectors': 'x' is not a sector or a range FIRST-LAST"):
        VirtioBlk(name="b", bad_sectors="1, x")


def test_needs_reset_fault_stops_the_device_until_a_reset(image):
    d = faulty(image, "blk0.needs_reset@2")
    assert d.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    assert d.request(BLK_T_IN, 0, read_len=512, slot=1) == (None, None)  # never completed
    assert d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET and d.r(INT_STATUS) == 1 | 2  # config change
    d.w(STATUS, 0)
    d.next_desc = d.avail_idx = d.used_seen = 0
    d.init()
    assert d.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    assert d.issues == []


def test_feature_negotiation_rules(image):
    d = BlkDriver(str(image))
    assert not d.negotiate(accept=0) & STATUS_FEATURES_OK  # no VERSION_1
    assert not d.negotiate(accept=1 << F_VERSION_1 | 1 << 5) & STATUS_FEATURES_OK  # RO was not offered
    assert d.negotiate() & STATUS_FEATURES_OK
    d.w(DRV_FEATURES_SEL, 0)
    d.w(DRV_FEATURES, 0)  # after FEATURES_OK
    d.w(STATUS, STATUS_ACKNOWLEDGE)  # clears DRIVER and FEATURES_OK
    d.w(STATUS, 0)  # reset
    d.w(STATUS, STATUS_FEATURES_OK)
    d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_DRIVER_OK)
    d.w(STATUS, STATUS_FEATURES_OK | STATUS_DEVICE_NEEDS_RESET | STATUS_ACKNOWLEDGE | STATUS_DRIVER)
    d.w(DRV_FEATURES_SEL, 2)
    d.w(DRV_FEATURES, 1)
    assert d.issues == [
        "Status: FEATURES_OK refused: VIRTIO_F_VERSION_1 was not accepted (hwsim has no legacy interface)",
        "Status: FEATURES_OK refused: the driver accepted features 0x20 the device did not offer",
        "DriverFeatures: written (0x0) after FEATURES_OK was set (ignored)",
        "Status: write of 0x1 clears bits 0xa; the driver MUST NOT clear status bits (write 0 to reset) (ignored)",
        "Status: FEATURES_OK refused: ACKNOWLEDGE and DRIVER must be set first",
        "initialisation: DRIVER set before ACKNOWLEDGE: set ACKNOWLEDGE first, then DRIVER, then negotiate",
        "Status: DRIVER_OK without FEATURES_OK (ignored: negotiate features first)",
        "Status: DEVICE_NEEDS_RESET is set by the device, not the driver (ignored)",
        "Status: FEATURES_OK refused: VIRTIO_F_VERSION_1 was not accepted (hwsim has no legacy interface)",
        "DriverFeatures: word 2 accepts 0x1, but the device offers no such features",
    ]
    assert d.r(STATUS) == STATUS_ACKNOWLEDGE | STATUS_DRIVER


def test_initialisation_sequence_rules(image):
    d = BlkDriver(str(image))
    d.w(STATUS, STATUS_ACKNOWLEDGE)  # no reset first (the device is fresh, but a driver cannot know)
    d.w(DRV_FEATURES, 1)  # before DRIVER
    d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER)
    d.w(DRV_FEATURES_SEL, 1)
    d.w(DRV_FEATURES, 1)  # VERSION_1
    d.w(DRV_FEATURES_SEL, 0)
    d.w(DRV_FEATURES, 0)
    d.w(STATUS, STATUS_ACKNOWLEDGE | STATUS_DRIVER | STATUS_FEATURES_OK)
    d.setup_queue()  # without reading Status back first
    d.w(STATUS, READY)
    d.w(QUEUE_SEL, 0)
    d.w(QUEUE_READY, 0)
    d.w(QUEUE_READY, 1)  # a queue made ready after DRIVER_OK
    assert d.issues == [
        "initialisation: ACKNOWLEDGE set without resetting the device first: the driver MUST write 0 to Status "
        "before initialising it (it may hold another driver's state)",
        "initialisation: DriverFeatures written before DRIVER was set (acknowledge the device first)",
        "initialisation: FEATURES_OK was not read back: the driver MUST re-read Status after setting FEATURES_OK, "
        "and go on only if the device kept it",
        "initialisation: queue 0 made ready after DRIVER_OK: the driver MUST set its queues up before it sets "
        "DRIVER_OK",
    ]
    d.w(STATUS, 0)  # the right way: no issue
    d.init()
    assert len(d.issues) == 4 and d.request(BLK_T_IN, 0, read_len=512) == (OK, 513)


def test_queue_configuration_rules(image):
    d = BlkDriver(str(image))
    d.negotiate()
    d.setup_queue(size=6)
    d.setup_queue(size=256)
    d.setup_queue(desc=IOVA + 8)
    d.setup_queue(used=IOVA + USED_OFF + 2)
    d.setup_queue()
    d.w(QUEUE_NUM, 4)  # while ready
    d.w(QUEUE_SEL, 1)
    d.w(QUEUE_READY, 1)
    assert d.r(QUEUE_NUM_MAX) == 0
    d.w(QUEUE_NOTIFY, 0)  # before DRIVER_OK
    d.w(STATUS, READY)
    d.w(QUEUE_NOTIFY, 3)
    assert d.issues == [
        "QueueReady: queue 0: QueueNum 6 is not a power of 2 in 1..128 (QueueNumMax) (the queue stays not ready)",
        "QueueReady: queue 0: QueueNum 256 is not a power of 2 in 1..128 (QueueNumMax) (the queue stays not ready)",
        "QueueReady: queue 0: descriptor table address 0x40000008 is not 16-byte aligned (the queue stays not ready)",
        "QueueReady: queue 0: used ring address 0x40002002 is not 4-byte aligned (the queue stays not ready)",
        "QueueNum: written while queue 0 is ready (ignored)",
        "QueueReady: QueueSel 1 selects no queue (the device has 1)",
        "notification of queue 0 before DRIVER_OK (ignored: the device MUST NOT consume buffers before DRIVER_OK)",
        "QueueNotify: queue 3 does not exist or is not ready (ignored)",
    ]
    d.w(QUEUE_SEL, 0)
    assert d.r(QUEUE_READY) == 1 and d.dev.queues[0].size == 8


@pytest.mark.parametrize(
    "corrupt, problem",
    [
        (
            lambda d: d.put_desc(0, IOVA + HDR_OFF, 16, DESC_F_NEXT, 0),
            "queue 0: the chain at descriptor 0 is longer than the queue size 8 (a loop?); drivers MUST NOT create such "
            "chains",
        ),
        (
            lambda d: d.put_desc(0, IOVA + HDR_OFF, 16, DESC_F_NEXT, 9),
            "queue 0: descriptor 0 chains to 9, outside the 8-entry table",
        ),
        (
            lambda d: d.mem_write(IOVA + AVAIL_OFF + 4, struct.pack("<H", 12)),
            "queue 0: available ring entry names descriptor 12, outside the 8-entry table",
        ),
        (
            lambda d: (
                d.put_desc(1, IOVA + STATUS_OFF, 1, DESC_F_WRITE | DESC_F_NEXT, 2)
                or d.put_desc(2, IOVA + DATA_OFF, 512, DESC_F_NEXT, 3)
            ),
            "queue 0: descriptor 2 is device-readable after a device-writable one; drivers MUST place device-writable "
            "descriptors last",
        ),
        (
            lambda d: d.put_desc(0, IOVA + HDR_OFF, 16, DESC_F_INDIRECT),
            "queue 0: descriptor 0 has VIRTQ_DESC_F_INDIRECT but VIRTIO_F_INDIRECT_DESC was not negotiated",
        ),
        (
            lambda d: d.mem_write(IOVA + AVAIL_OFF + 2, struct.pack("<H", 40)),
            "queue 0: available idx 40 is 40 entries ahead of the device (0), more than the queue size 8 (a driver MUST "
            "NOT decrement the available idx)",
        ),
        (
            lambda d: d.space.unmap(IOVA + USED_OFF, 0x1000),
            "queue 0: writing the used ring at iova 0x40002004 failed: write page fault (PTE is not valid (V=0))",
        ),
    ],
)
def test_ring_errors_set_device_needs_reset_and_leave_the_image_alone(drv, image, corrupt, problem):
    before = digest(image)
    drv.mem_write(IOVA + HDR_OFF, struct.pack("<IIQ", BLK_T_OUT, 0, 0))
    drv.mem_write(IOVA + DATA_OFF, b"X" * 512)
    head = drv.chain([(IOVA + HDR_OFF, 16, False), (IOVA + DATA_OFF, 512, False), (IOVA + STATUS_OFF, 1, True)])
    drv.mem_write(IOVA + AVAIL_OFF + 4, struct.pack("<H", head))
    drv.mem_write(IOVA + AVAIL_OFF, struct.pack("<HH", 0, 1))
    corrupt(drv)
    drv.w(QUEUE_NOTIFY, 0)
    drv.settle()  # a ring error is found at the fetch; a used-ring write fails at the completion
    assert drv.r(STATUS) & STATUS_DEVICE_NEEDS_RESET
    assert drv.r(INT_STATUS) == 2  # configuration change
    assert drv.issues[-1] == problem + "; device needs reset"
    if "used ring" in problem:  # the request itself was valid: the image got its data, then completion failed
        assert image.read_bytes()[:512] == b"X" * 512
    else:
        assert digest(image) == before
    drv.w(QUEUE_NOTIFY, 0)
    assert drv.issues[-1] == (
        "notification of queue 0 while DEVICE_NEEDS_RESET is set (ignored until the driver resets the device)"
    )
    drv.w(STATUS, 0)  # reset, and the device works again
    assert drv.r(STATUS) == 0 and drv.r(INT_STATUS) == 0
    drv.space.unmap(IOVA + USED_OFF, 0x1000)
    drv.space.map(IOVA + USED_OFF, drv.pa + USED_OFF, 0x1000, RW_U)
    drv.s.iommu.iotinval_vma()
    drv.next_desc = drv.avail_idx = drv.used_seen = 0
    drv.init()
    assert drv.request(BLK_T_IN, 0, read_len=512) == (OK, 513)


def test_request_errors_are_ioerr_and_never_touch_the_image(drv, image):
    before = digest(image)
    cases = [
        dict(kind=BLK_T_OUT, sector=0, data=b"a" * 100),  # not whole sectors
        dict(kind=BLK_T_OUT, sector=SECTORS - 1, data=b"b" * 1024),  # beyond the capacity
        dict(kind=BLK_T_OUT, sector=0, data=b"c" * 512, read_len=512),  # device-writable data in a write
        dict(kind=BLK_T_OUT, sector=0, data=b"d" * 512, data_iova=0x7700_0000),  # data not in the IO page table
        dict(kind=BLK_T_IN, sector=SECTORS, read_len=512),
        dict(kind=BLK_T_IN, sector=0, read_len=512, data_iova=0x7700_0000),
    ]
    for slot, case in enumerate(cases):
        status, used = drv.request(case.pop("kind"), case.pop("sector"), slot=slot, **case)
        assert (status, used) == (IOERR, 1)
    assert digest(image) == before
    assert drv.issues == [
        "request: write of 100 bytes is not a multiple of 512",
        "request: write of sectors 15..16 is beyond the capacity of 16 sectors",
        "request: OUT request with 512 device-writable bytes besides the status byte",
        "request: the IOMMU refused a device-readable buffer (see its fault log)",
        "request: read of sectors 16..16 is beyond the capacity of 16 sectors",
        "request: the IOMMU refused a device-writable data buffer (see its fault log)",
    ]
    faults = drv.s.iommu.fault_log
    assert [(f.device_id, f.iova, f.access.value) for f in faults] == [
        (2, 0x7700_0000, "read"),
        (2, 0x7700_0000, "write"),
    ]


ALIAS = 0x1_0000_0000  # 64 MiB of IOVA, every 2 MiB of it the same 2 MiB of RAM
ALIAS_SIZE = 64 << 20


def aliased_driver(image) -> BlkDriver:
    """A driver whose IO page table maps ALIAS_SIZE bytes onto one 2 MiB frame run: long buffers, little RAM."""
    d = BlkDriver(str(image))
    pa = d.s.machine.frames.alloc(512, align=2 << 20, zero=False)
    for off in range(0, ALIAS_SIZE, 2 << 20):
        d.space.map(ALIAS + off, pa, 2 << 20, RW_U)
    d.init()
    return d


def peak_allocation(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_host_memory_is_bounded_by_checked_lengths_not_by_descriptors(tmp_path):
    """Found by review: every device-readable byte of a chain was read into host memory before the request was
    looked at, and IN requests read the whole length from the image first: a chain claiming up to 4 GiB made the
    host allocate that much.  Now the header is read alone, and data only after its length has been checked."""
    image = tmp_path / "big.img"
    with open(image, "wb") as f:
        f.truncate(128 << 20)  # sparse: 128 MiB of capacity
    before = digest(image)
    d = aliased_driver(image)
    hdr, status = IOVA + HDR_OFF, IOVA + STATUS_OFF

    def request(kind: int, sector: int, segments) -> tuple[int, int]:
        d.mem_write(hdr, struct.pack("<IIQ", kind, 0, sector))
        d.mem_write(status, b"\xee")
        d.offer(d.chain([(hdr, 16, False), *segments, (status, 1, True)]))
        ((_, used),) = d.used()
        return d.mem_read(status, 1)[0], used

    cases = [
        (
            BLK_T_IN,
            0,
            [(ALIAS, ALIAS_SIZE, False)],
            "IN request with 67108864 device-readable data bytes after the header",
        ),
        (
            BLK_T_IN,
            0,
            [(ALIAS, ALIAS_SIZE, True)],
            "read of 67108864 bytes is more than the 4194304 bytes this device transfers in one request",
        ),
        (
            BLK_T_OUT,
            0,
            [(ALIAS, ALIAS_SIZE, False)],
            "write of 67108864 bytes is more than the 4194304 bytes this device transfers in one request",
        ),
        (
            BLK_T_OUT,
            250_000,
            [(ALIAS, ALIAS_SIZE, False)],
            "write of sectors 250000..381071 is beyond the capacity of 262144 sectors",
        ),
        (99, 0, [(ALIAS, ALIAS_SIZE, False)], None),  # unsupported: the payload is never read
    ]
    for kind, sector, segments, issue in cases:
        outcome, seen = [], len(d.issues)
        assert peak_allocation(lambda o=outcome, a=(kind, sector, segments): o.append(request(*a))) < 1 << 20
        assert outcome == [(UNSUPP if kind == 99 else IOERR, 1)]
        assert d.issues[seen:] == ([f"request: {issue}"] if issue else [])
    assert digest(image) == before
    # The largest request still works, and costs about its own size.
    assert peak_allocation(lambda: request(BLK_T_OUT, 8, [(ALIAS, 4 << 20, False)])) < 16 << 20
    assert d.mem_read(status, 1) == b"\0"
    assert request(BLK_T_IN, 8, [(ALIAS + (4 << 20), 4 << 20, True)]) == (OK, (4 << 20) + 1)


def test_unwritable_status_byte_means_the_image_is_not_written(drv, image):
    before = digest(image)
    status, used = drv.request(BLK_T_OUT, 0, data=b"e" * 512, status_iova=0x7800_0000)
    assert used == 0 and digest(image) == before
    assert drv.issues == ["request: the IOMMU refused the status byte; the image was not written"]
    head = drv.chain([(IOVA + HDR_OFF, 16, False)])  # no status byte at all
    drv.offer(head)
    assert drv.used() == [(head, 0)]
    assert (
        drv.issues[-1] == "request: chain at descriptor 3 has no device-writable status byte (not completed "
        "with a status)"
    )


def test_read_only_image(image):
    before = digest(image)
    d = BlkDriver(str(image), readonly=True)
    d.w(DEV_FEATURES_SEL, 0)
    assert d.r(DEV_FEATURES) & 1 << 5  # VIRTIO_BLK_F_RO
    d.init()
    assert d.request(BLK_T_OUT, 0, data=b"f" * 512) == (IOERR, 1)
    assert d.request(BLK_T_IN, 0, read_len=512, slot=1) == (OK, 513)
    assert digest(image) == before
    assert d.issues == ["request: OUT request to a read-only device (VIRTIO_BLK_F_RO)"]


def test_no_medium_and_option_errors(tmp_path):
    d = BlkDriver("")
    d.init()
    assert d.dev.capacity == 0 and d.request(BLK_T_IN, 0, read_len=512) == (IOERR, 1)
    bad = tmp_path / "odd.img"
    bad.write_bytes(b"x" * 1000)
    with pytest.raises(OptionError, match=r"option 'image': '.*odd.img' is 1000 bytes, not a multiple of 512"):
        VirtioBlk(name="b", image=str(bad))
    with pytest.raises(OptionError, match=r"option 'image': cannot open '.*nope.img': No such file or directory"):
        VirtioBlk(name="b", image=str(tmp_path / "nope.img"))
    with pytest.raises(OptionError, match="option 'queue_size': must be a power of 2, not 12"):
        VirtioBlk(name="b", queue_size=12)
    with pytest.raises(OptionError, match="option 'serial': must be at most 20 bytes"):
        VirtioBlk(name="b", serial="x" * 21)


def test_config_space_misuse(drv):
    drv.dev.mmio_write(CONFIG, 4, 1)
    drv.dev.mmio_read(CONFIG + 24, 4)
    drv.dev.mmio_read(CONFIG + 1, 2)
    assert drv.issues == [
        "write of 0x1 to the read-only configuration space at offset 0x100",
        "4-byte read at offset 0x118: the configuration space is 24 bytes at 0x100 (naturally aligned 1, 2 or "
        "4-byte reads)",
        "2-byte read at offset 0x101: the configuration space is 24 bytes at 0x100 (naturally aligned 1, 2 or "
        "4-byte reads)",
    ]


def test_guest_notifies_the_device_through_page_tables(drv, image):
    """End to end: the request is queued in RAM, guest U-mode code writes QueueNotify through its page
    tables and polls InterruptStatus (each poll a device access, so virtual time passes and the request
    completes), then reads the used ring; the device serves it through the IOMMU."""
    payload = b"guest wrote this" * 32
    drv.mem_write(IOVA + HDR_OFF, struct.pack("<IIQ", BLK_T_OUT, 0, 7))
    drv.mem_write(IOVA + DATA_OFF, payload)
    head = drv.chain([(IOVA + HDR_OFF, 16, False), (IOVA + DATA_OFF, 512, False), (IOVA + STATUS_OFF, 1, True)])
    drv.offer(head, notify=False)
    g = BoardGuest(drv.s, {"blk0": 0x6_0000})
    g.space.map(0x8_0000, drv.pa + USED_OFF, 0x1000, RW_U)  # the used ring, for polling

    def program(a):
        a.li("a1", 0x6_0000).emit(A.sw("zero", "a1", QUEUE_NOTIFY))
        a.li("a2", 0x8_0000)
        a.label("poll").emit(A.lw("a3", "a1", INT_STATUS))
        a.branch("beq", "a3", "zero", "poll")
        a.emit(A.lhu("a0", "a2", 2))

    assert g.run(program).ok
    assert (g.m.get_reg("a0"), g.m.get_reg("a3")) == (1, 1)
    assert drv.s.clock.now == 507  # a tick per poll, until the request completed (50 us + 512 bytes at 1 GB/s)
    assert image.read_bytes()[7 * 512 : 8 * 512] == payload
    assert drv.used() == [(head, 1)] and drv.mem_read(IOVA + STATUS_OFF, 1) == b"\0"


# -- the property: a faulting driver cannot corrupt the image --------------------------------------------

BAD = 0x7700_0000  # not in the device's IO page table
segment = st.tuples(
    st.sampled_from([IOVA + DATA_OFF, IOVA + DATA_OFF + 0x1F0, BAD, IOVA + HDR_OFF]),
    st.sampled_from([0, 1, 16, 100, 512, 1024]),
    st.booleans(),
)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)
@given(
    requests=st.lists(
        st.tuples(
            st.sampled_from([BLK_T_IN, BLK_T_OUT, BLK_T_FLUSH, 99]),
            st.integers(0, SECTORS + 2),
            st.lists(segment, max_size=4),
            st.booleans(),
        ),
        min_size=1,
        max_size=5,
    ),
    fill=st.binary(min_size=1, max_size=8),
)
def test_garbage_requests_change_the_image_only_by_valid_whole_sector_writes(tmp_path_factory, requests, fill):
    path = tmp_path_factory.mktemp("img") / "disk.img"
    path.write_bytes(bytes(range(256)) * (SECTORS * 2))
    d = BlkDriver(str(path))
    d.init()
    d.mem_write(IOVA + DATA_OFF, (fill * 2048)[:4096])
    expected = bytearray(path.read_bytes())
    for slot, (kind, sector, middle, with_status) in enumerate(requests):
        d.mem_write(IOVA + HDR_OFF + 16 * slot, struct.pack("<IIQ", kind, 0, sector))
        segs = [(IOVA + HDR_OFF + 16 * slot, 16, False), *middle]
        if with_status:
            segs.append((IOVA + STATUS_OFF + slot, 1, True))
        writable = [(a, n) for a, n, w in segs if w]
        readable = [(a, n) for a, n, w in segs if not w]
        ordered = all(w for _, _, w in segs[[w for _, _, w in segs].index(True) :]) if writable else True
        data_len = sum(n for _, n in readable) - 16
        valid_write = (
            kind == BLK_T_OUT
            and ordered
            and sum(n for _, n in writable) == 1
            and all(a != BAD for a, n in readable if n)
            and all(a != BAD for a, n in writable if n)
            and data_len % 512 == 0
            and sector + data_len // 512 <= SECTORS
        )
        if valid_write:
            data = b"".join(d.mem_read(a, n) for a, n in readable[1:] if n)  # empty segments: no bytes
            expected[sector * 512 : sector * 512 + len(data)] = data
        d.offer(d.chain(segs))
        if d.r(STATUS) & STATUS_DEVICE_NEEDS_RESET:
            break
    assert path.read_bytes() == bytes(expected)


# -- the rings' validated views (hwsim.iommu.views): never used stale -------------------------------------


def _move_used_ring(drv) -> int:
    """Point the used ring's IOVA page at a new frame holding a copy of the old one; returns the frame."""
    frame = drv.s.machine.frames.alloc()
    drv.phys.write(frame, drv.mem_read(IOVA + USED_OFF, 0x1000))
    drv.space.unmap(IOVA + USED_OFF, 0x1000)
    drv.space.map(IOVA + USED_OFF, frame, 0x1000, RW_U)
    return frame


def test_a_used_ring_moved_and_invalidated_is_written_at_its_new_frame(drv):
    """The attack on the ring views: after one request the device holds a view of the used ring; the driver
    moves the ring's page and invalidates the IOTLB.  A stale view would write the next used element into
    the old frame; the device must write it into the new one."""
    assert drv.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    assert drv.s.iommu.stats.views == 3  # descriptor table, available ring, used ring
    frame = _move_used_ring(drv)
    drv.s.iommu.iotinval_vma(IOVA + USED_OFF, pscid=2)
    head = read_chain(drv, 1, 1, 1)
    drv.offer(head)
    assert struct.unpack("<HH", drv.phys.read(frame, 4))[1] == 2  # the new frame's used idx
    assert struct.unpack("<II", drv.phys.read(frame + 4 + 8, 8)) == (head, 513)
    assert struct.unpack("<HH", drv.mem_read(IOVA + USED_OFF, 4))[1] == 1  # the old frame: untouched
    assert drv.s.iommu.stats.views == 4 and drv.dev.issues == []


def test_without_an_invalidation_the_device_keeps_the_old_translation_as_the_iotlb_does(drv):
    assert drv.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    frame = _move_used_ring(drv)
    drv.offer(read_chain(drv, 1, 1, 1))
    assert struct.unpack("<HH", drv.mem_read(IOVA + USED_OFF, 4))[1] == 2  # the old frame, as cached
    assert struct.unpack("<HH", drv.phys.read(frame, 4))[1] == 1


def test_a_used_ring_unmapped_mid_request_faults_and_the_device_needs_reset(drv):
    assert drv.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    drv.offer(read_chain(drv, 1, 1, 1), settle=False)  # in flight: its used element is written at completion
    drv.space.unmap(IOVA + USED_OFF, 0x1000)
    drv.s.iommu.iotinval_vma(IOVA + USED_OFF, pscid=2)
    drv.settle()
    (fault,) = drv.s.iommu.fault_log
    assert (fault.iova, fault.access.name, fault.cause.name) == (IOVA + USED_OFF + 4 + 8, "WRITE", "WRITE_PAGE_FAULT")
    assert drv.r(STATUS) & STATUS_DEVICE_NEEDS_RESET
    assert drv.issues[-1] == (
        f"queue 0: writing the used ring at iova {IOVA + USED_OFF + 12:#x} failed: write page fault "
        f"(PTE is not valid (V=0)); device needs reset"
    )


def test_a_device_reset_or_a_stopped_queue_forgets_the_ring_views(drv):
    assert drv.request(BLK_T_IN, 0, read_len=512) == (OK, 513)
    drv.w(STATUS, 0)
    assert drv.s.iommu.invalidate_views() == 0  # none left to invalidate: the reset closed them
    drv.init()
    assert drv.request(BLK_T_IN, 0, read_len=512, slot=1) == (OK, 513)
    drv.w(QUEUE_SEL, 0)
    drv.w(QUEUE_READY, 0)
    assert drv.s.iommu.invalidate_views() == 0
