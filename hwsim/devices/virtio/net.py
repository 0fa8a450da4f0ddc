"""virtio-net over virtio-mmio: receiveq 0 and transmitq 1, Ethernet frames to and from a backend.

::

    transmitq 1: chain (virtio_net_hdr | frame, device-readable) --checked--> backend.transmit(frame)
                                                                               | loopback: receive(frame)
                                                                               | pcap: a record in `tx`
    wire: loopback, or `rx` replayed on virtual time --> receive(frame) --> backlog (FIFO, rx_backlog frames)
    receiveq 0: next device-writable chain <-- virtio_net_hdr (num_buffers 1) | frame --> used ring, IRQ

Deterministic, on virtual time: a transmit chain is fetched at the driver's notification; its frame
is read (through the IOMMU) and the chain returned ``latency_ns`` plus its bytes at ``bandwidth``
later (nominally 5 us + 8 ns a byte), varied per seed by the board's Timing, so several chains in
flight come back in the order their latencies give, as a NIC returns buffers when their DMA is done.
The wire keeps the transmit queue's order: a frame goes out (to the backend) once it and every frame
fetched before it have been read.  A frame that arrives (a loopback of a frame
that went on the wire, or a pcap record whose time has come) goes into the next receive buffer at
once, or waits in the backlog until the driver posts one (the backlog holds ``rx_backlog`` frames;
later arrivals are dropped and counted, as a NIC's FIFO overflows).  Frames that arrive before
DRIVER_OK, or while DEVICE_NEEDS_RESET is set, are dropped; a reset empties the backlog.

Faults (``FAULTS``): ``drop`` loses a frame arriving from the wire (counted in ``rx_dropped``),
``corrupt`` inverts the last byte of one (a corrupted transfer; virtio has no FCS to catch it).

Offered features: VIRTIO_F_VERSION_1 (so the header is 12 bytes), VIRTIO_F_ACCESS_PLATFORM,
VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS (link always up) and VIRTIO_NET_F_MTU (1500).  No control
queue, no offloads, no mergeable receive buffers, no filtering (every frame is delivered).
A malformed transmit chain or receive buffer is a device issue: the frame concerned is dropped and
counted, the chain is returned with used length 0, and the device goes on.
"""

from __future__ import annotations

import re
from collections import deque
from dataclasses import dataclass

from ..base import Option, OptionError, register_device
from ..issues import IssueKind
from ..pcap import PcapError, PcapWriter, read_pcap
from .bits import (
    DEVICE_ID_NET,
    ETH_HEADER,
    ETH_MAX_FRAME,
    ETH_MTU,
    F_ACCESS_PLATFORM,
    F_VERSION_1,
    MAX_QUEUE_SIZE,
    NET_CONFIG,
    NET_F_MAC,
    NET_F_MTU,
    NET_F_STATUS,
    NET_HDR,
    NET_HDR_GSO_NONE,
    NET_RX_BUFFER_MIN,
    NET_RXQ,
    NET_S_LINK_UP,
    STATUS_DEVICE_NEEDS_RESET,
    STATUS_DRIVER_OK,
)
from .mmio import QueueEventKind, VirtioMmio
from .queue import Chain, SplitQueue, VirtqueueError

_MAC = re.compile(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}\Z")


class _WireSlot:
    """A transmitted frame's place in the wire's queue: the frame once read (None: dropped)."""

    __slots__ = ("frame", "read")

    def __init__(self) -> None:
        self.frame: bytes | None = None
        self.read = False


@dataclass
class NetStats:
    """Frame counters (kept across device resets, like issues)."""

    tx_frames: int = 0
    tx_bytes: int = 0
    tx_errors: int = 0  # malformed transmit chains: frame dropped, issue recorded
    rx_frames: int = 0
    rx_bytes: int = 0
    rx_dropped: int = 0  # backlog full, driver not ready (before DRIVER_OK, DEVICE_NEEDS_RESET), or lost in a reset
    rx_errors: int = 0  # unusable receive buffers: frame dropped, buffer returned unused, issue recorded


class NetBackend:
    """The wire: where transmitted frames go and received ones come from."""

    kind = ""

    def attach(self, device: VirtioNet) -> None:
        self.device = device

    def transmit(self, frame: bytes) -> None:
        pass

    def link_up(self) -> None:
        """The driver set DRIVER_OK for the first time."""

    # The runner's idle rule (as character backends): frames arrive only through clock events,
    # which keep a waiting runner going by themselves.
    def input_ended(self) -> bool:
        return True

    def wait_input(self, timeout: float) -> None:
        pass


class LoopbackBackend(NetBackend):
    """Every transmitted frame is received at once."""

    kind = "loopback"

    def transmit(self, frame: bytes) -> None:
        self.device.receive(frame)


class PcapBackend(NetBackend):
    """Transmitted frames become records of the ``tx`` file (virtual time stamps); the records of the
    ``rx`` file arrive on virtual time, the first at the driver's first DRIVER_OK and each later
    one after the interval its timestamps give (in file order)."""

    kind = "pcap"

    def __init__(self, *, tx: str, rx: str) -> None:
        try:
            self.records = read_pcap(rx) if rx else []
        except PcapError as exc:
            raise OptionError("rx", str(exc)) from None
        for index, record in enumerate(self.records):
            if not ETH_HEADER <= len(record.data) <= ETH_MAX_FRAME:
                raise OptionError(
                    "rx",
                    f"{rx!r}: record {index}: a {len(record.data)}-byte frame; Ethernet frames "
                    f"are {ETH_HEADER}..{ETH_MAX_FRAME} bytes (without FCS)",
                )
        try:
            self.writer = PcapWriter(tx) if tx else None
        except PcapError as exc:
            raise OptionError("tx", str(exc)) from None
        self.delivered = 0
        self._start: int | None = None

    def transmit(self, frame: bytes) -> None:
        if self.writer is not None:
            clock = self.device.clock
            try:
                self.writer.write(clock.ticks_to_ns(clock.now), frame)
            except PcapError as exc:
                self.device.report(
                    IssueKind.PROTOCOL, detail=f"host I/O error writing the capture: {exc} (frame not captured)"
                )

    def link_up(self) -> None:
        if self._start is None and self.records:
            self._start = self.device.clock.now
            self._schedule()

    def _schedule(self) -> None:
        clock = self.device.clock
        assert self._start is not None  # set by link_up, which schedules the first arrival
        record = self.records[self.delivered]
        offset_ns = record.time_ns - self.records[0].time_ns
        clock.schedule(self._start + max(0, offset_ns) * clock.frequency_hz // 1_000_000_000, self._arrive)

    def _arrive(self) -> None:
        record = self.records[self.delivered]
        self.delivered += 1
        if self.delivered < len(self.records):
            self._schedule()
        self.device.receive(record.data)


def parse_mac(text: str) -> bytes:
    return bytes(int(part, 16) for part in text.split(":"))


@register_device
class VirtioNet(VirtioMmio):
    TYPE = "virtio-net"
    DESCRIPTION = "virtio-net (virtio-mmio version 2, receiveq and transmitq) on a loopback or pcap backend"
    DEVICE_ID = DEVICE_ID_NET
    NUM_QUEUES = 2
    OPTIONS = {
        "backend": Option(
            str,
            "loopback",
            "loopback (transmitted frames are received) or pcap (files tx and rx)",
            choices=("loopback", "pcap"),
        ),
        "tx": Option(str, "", "pcap backend: transmitted frames are written to this pcap file (created or truncated)"),
        "rx": Option(str, "", "pcap backend: the frames of this pcap file arrive on virtual time from DRIVER_OK"),
        "mac": Option(str, "52:54:00:12:34:56", "the MAC address in the configuration space (unicast)"),
        "queue_size": Option(int, 128, "QueueNumMax of both queues (a power of 2)", minimum=1, maximum=MAX_QUEUE_SIZE),
        "rx_backlog": Option(
            int,
            64,
            "received frames held while no receive buffer is available; further ones are dropped",
            minimum=0,
            maximum=65536,
        ),
        "latency_ns": Option(
            int,
            5_000,
            "virtual ns from a transmit chain's fetch until its frame is on the wire, besides its bytes",
            minimum=0,
            maximum=10**10,
        ),
        "bandwidth": Option(
            int,
            125_000_000,
            "bytes per second on the wire (1 Gbit/s; 0: frames take no time)",
            minimum=0,
            maximum=1 << 40,
        ),
    }
    FAULTS = {
        "drop": "a frame arriving from the wire is lost before it reaches a receive buffer (counted in rx_dropped)",
        "corrupt": "a frame arriving from the wire has its last byte inverted (virtio has no FCS to catch it)",
    }

    def __init__(self, *, name: str, **kw) -> None:
        super().__init__(name=name, **kw)
        self.mac = parse_mac(self.options["mac"])
        self.stats = NetStats()
        self._backlog: deque[bytes] = deque()
        self._wire: deque[_WireSlot] = deque()  # transmit chains in fetch order, until their frame went out
        self._wire_slots: dict[int, _WireSlot] = {}  # id(chain) -> its slot, while its request is in flight
        opts = self.options
        self.backend = LoopbackBackend() if opts["backend"] == "loopback" else PcapBackend(tx=opts["tx"], rx=opts["rx"])
        self.backend.attach(self)

    @classmethod
    def check_options(cls, options) -> None:
        n = options["queue_size"]
        if n & (n - 1):
            raise OptionError("queue_size", f"must be a power of 2, not {n}")
        mac = options["mac"]
        if not _MAC.match(mac):
            raise OptionError("mac", f"must be six hex bytes separated by ':' (e.g. 52:54:00:12:34:56), not {mac!r}")
        if int(mac[:2], 16) & 1:
            raise OptionError("mac", f"{mac} is a multicast address (bit 0 of the first byte is set)")
        if options["backend"] == "pcap":
            if not options["tx"] and not options["rx"]:
                raise OptionError("backend", "'pcap' needs a 'tx' file, an 'rx' file or both")
        else:
            for key in ("tx", "rx"):
                if options[key]:
                    raise OptionError(
                        key, f"is a pcap file, for backend 'pcap' only (backend is {options['backend']!r})"
                    )

    @classmethod
    def config_template(cls) -> bytes:
        return bytes(NET_CONFIG.size)

    def device_features(self) -> int:
        return 1 << F_VERSION_1 | 1 << F_ACCESS_PLATFORM | 1 << NET_F_MAC | 1 << NET_F_STATUS | 1 << NET_F_MTU

    def config_bytes(self) -> bytes:
        return NET_CONFIG.pack(self.mac, NET_S_LINK_UP, 1, ETH_MTU)

    @property
    def backlog(self) -> int:
        """Frames waiting for a receive buffer."""
        return len(self._backlog)

    # -- state --------------------------------------------------------------------------------------

    def _running(self) -> bool:
        status = self.status
        return bool(status & STATUS_DRIVER_OK and not status & STATUS_DEVICE_NEEDS_RESET)

    def _reset(self) -> None:
        super()._reset()
        self.stats.rx_dropped += len(self._backlog)
        self._backlog.clear()

    def _abandon(self, queue: SplitQueue | None = None) -> None:
        super()._abandon(queue)
        if queue is None or queue.index != NET_RXQ:  # frames not on the wire yet are lost
            self._wire.clear()
            self._wire_slots.clear()

    def _write_status(self, new: int, old: int) -> None:
        super()._write_status(new, old)
        if self.status & STATUS_DRIVER_OK and not old & STATUS_DRIVER_OK:
            self.backend.link_up()

    # -- transmission -------------------------------------------------------------------------------

    def process(self, queue: SplitQueue) -> int:
        if queue.index != NET_RXQ:
            return super().process(queue)  # transmitq: handle() each chain
        self._tell(QueueEventKind.NOTIFIED, queue)
        if self.dma_port is None:
            self._needs_reset("the device has no DMA port (no IOMMU)")
            return 0
        return self._fill_rx()  # new receive buffers: the backlog may move on

    def request_ticks(self, queue: SplitQueue, chain: Chain) -> int:
        """A transmit chain: latency_ns + its frame's bytes at bandwidth."""
        frame = min(max(0, chain.readable_len - NET_HDR.size), ETH_MAX_FRAME)
        bandwidth = self.options["bandwidth"]
        return self.ns_to_ticks(self.options["latency_ns"] + (frame * 1_000_000_000 // bandwidth if bandwidth else 0))

    def begin(self, queue: SplitQueue, chain: Chain) -> None:
        """A transmit chain takes its place in the wire's queue."""
        slot = _WireSlot()
        self._wire.append(slot)
        self._wire_slots[id(chain)] = slot

    def handle(self, queue: SplitQueue, chain: Chain) -> int:
        """Read one transmit chain's frame (it goes out in its turn); the used length is 0 (the device
        writes nothing)."""
        slot = self._wire_slots.pop(id(chain))
        slot.frame = self._tx_frame(chain)
        slot.read = True
        while self._wire and self._wire[0].read:  # the wire's order is the transmit queue's
            frame = self._wire.popleft().frame
            if frame is not None:
                self.stats.tx_frames += 1
                self.stats.tx_bytes += len(frame)
                self.backend.transmit(frame)
        return 0

    def _tx_bad(self, chain: Chain, problem: str) -> None:
        self.stats.tx_errors += 1
        self.report(IssueKind.PROTOCOL, detail=f"transmit chain at descriptor {chain.head}: {problem} (frame dropped)")

    def _tx_frame(self, chain: Chain) -> bytes | None:
        if chain.writable:
            self._tx_bad(
                chain, f"has {chain.writable_len} device-writable bytes; transmit buffers MUST be device-readable only"
            )
            return None
        total = chain.readable_len
        if total < NET_HDR.size:
            self._tx_bad(chain, f"is {total} bytes, shorter than the {NET_HDR.size}-byte virtio_net_hdr")
            return None
        length = total - NET_HDR.size
        if length > ETH_MAX_FRAME:
            self._tx_bad(
                chain,
                f"carries a {length}-byte frame, more than {ETH_MAX_FRAME} (MTU {ETH_MTU} + "
                f"Ethernet header; no segmentation offload is offered)",
            )
            return None
        if length < ETH_HEADER:
            self._tx_bad(chain, f"carries a {length}-byte frame, shorter than an Ethernet header ({ETH_HEADER} bytes)")
            return None
        data = bytearray()
        for iova, n in chain.readable:
            if n:
                result = self.dma_port.read(iova, n)
                if not result.ok:
                    self._tx_bad(chain, "the IOMMU refused a transmit buffer (see its fault log)")
                    return None
                data += result.data
        flags, gso_type, _hdr_len, _gso_size, _start, _offset, num_buffers = NET_HDR.unpack_from(data)
        if flags:
            self._tx_bad(
                chain,
                f"header flags {flags:#x}: the driver MUST set flags to 0 without VIRTIO_NET_F_CSUM "
                f"(checksum offload is not offered)",
            )
            return None
        if gso_type != NET_HDR_GSO_NONE:
            self._tx_bad(
                chain,
                f"header gso_type {gso_type:#x}: the driver MUST set VIRTIO_NET_HDR_GSO_NONE (no "
                f"segmentation offload is offered)",
            )
            return None
        if num_buffers:
            self.report(
                IssueKind.PROTOCOL,
                detail=f"transmit chain at descriptor {chain.head}: header num_buffers "
                f"{num_buffers}: the driver MUST set it to 0 (frame sent)",
            )
        return bytes(data[NET_HDR.size :])

    # -- reception ------------------------------------------------------------------------------------

    def receive(self, frame: bytes) -> bool:
        """A frame arrives from the wire now; False when it is dropped at once."""
        drop, corrupt = self.fault("drop"), self.fault("corrupt")  # occurrence N: the Nth frame from the wire
        if not self._running() or drop:
            self.stats.rx_dropped += 1
            return False
        if corrupt:
            frame = bytes(frame[:-1]) + bytes([frame[-1] ^ 0xFF])
        self._backlog.append(bytes(frame))
        self._fill_rx()
        if len(self._backlog) > self.options["rx_backlog"]:
            self._backlog.pop()  # the newest: a full FIFO loses what arrives
            self.stats.rx_dropped += 1
            return False
        return True

    def _fill_rx(self) -> int:
        """Move backlog frames into the receive buffers the driver has made available."""
        queue = self.queues[NET_RXQ]
        port = self.dma_port
        if not self._backlog or not queue.ready or not self._running() or port is None:
            return 0
        used = 0
        try:
            while self._backlog:
                chain = self.fetch(queue)
                if chain is None:
                    break
                self.give_back(queue, chain, self._rx_into(chain, self._backlog.popleft()))
                used += 1
        except VirtqueueError as exc:
            self._needs_reset(str(exc))
        return used

    def _rx_bad(self, chain: Chain, problem: str) -> int:
        self.stats.rx_errors += 1
        self.report(
            IssueKind.PROTOCOL,
            detail=f"receive chain at descriptor {chain.head}: {problem} (returned unused, frame dropped)",
        )
        return 0

    def _rx_into(self, chain: Chain, frame: bytes) -> int:
        """Write header and frame into one receive buffer; returns the used length (0: unusable)."""
        if chain.readable:
            return self._rx_bad(
                chain, f"has {chain.readable_len} device-readable bytes; receive buffers MUST be device-writable"
            )
        data = NET_HDR.pack(0, NET_HDR_GSO_NONE, 0, 0, 0, 0, 1) + frame  # num_buffers 1: no MRG_RXBUF
        if chain.writable_len < len(data):
            return self._rx_bad(
                chain,
                f"{chain.writable_len} bytes are too small for a {len(frame)}-byte frame and "
                f"the {NET_HDR.size}-byte header (drivers SHOULD post at least "
                f"{NET_RX_BUFFER_MIN} bytes)",
            )
        off = 0
        for iova, n in chain.writable:
            n = min(n, len(data) - off)
            if n <= 0:
                break
            if not self.dma_port.write(iova, data[off : off + n]).ok:
                return self._rx_bad(chain, "the IOMMU refused the receive buffer (see its fault log)")
            off += n
        self.stats.rx_frames += 1
        self.stats.rx_bytes += len(frame)
        return len(data)
