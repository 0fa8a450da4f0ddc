"""virtio-blk over virtio-mmio, backed by a disk-image file that a faulty driver cannot corrupt.

A request is ``header (16 bytes, device-readable) | data | status (1 byte, device-writable)``.
The image is protected by ordering: a write request is checked completely (framing, a length
that is a multiple of 512, the range within the capacity, the read-only flag), its status byte is
written first (IOERR, so an unwritable status aborts before anything else happens), all its data is
read through the IOMMU (a single refused page fails the request), and only then is the image
written, in one ``pwrite``, followed by the final status.  So a stray pointer, a bad length or a
ring error never changes the image.  Reads go the other way and touch only guest memory.

Host memory is bounded by checked lengths, never by what descriptors claim (a chain may claim up to
4 GiB): the header is read alone, and data is read from the image or through the IOMMU only after
its length has been checked against the request type, the capacity and ``MAX_REQUEST_BYTES``.

Offered features: VIRTIO_F_VERSION_1, VIRTIO_F_ACCESS_PLATFORM (DMA goes through the IOMMU),
VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_BLK_SIZE, VIRTIO_BLK_F_FLUSH, and VIRTIO_BLK_F_RO for a
read-only image.  Requests: IN, OUT, FLUSH, GET_ID; others complete with UNSUPP.

Timing: a request completes ``latency_ns`` plus its data bytes at ``bandwidth`` after the device
fetched it (nominally 50 us + 1 ns a byte: 54.1 us for 4 KiB), varied per seed by the board's Timing;
requests are served concurrently, so they complete in the order their latencies give.  Everything a
request does to memory and to the image happens at its completion.

Faults (``FAULTS``): ``ioerr`` and ``unsupp`` complete a request with that status (nothing moves);
``media`` fails an IN or OUT request with IOERR as a medium error would, and always fails one that
touches a sector of the ``bad_sectors`` option; ``needs_reset`` makes the device fail internally at a
request: DEVICE_NEEDS_RESET, a configuration-change interrupt, nothing completed until a reset.
"""

from __future__ import annotations

import os
import re
import struct

from ..base import Option, OptionError, register_device
from ..issues import IssueKind
from .bits import (
    BLK_F_BLK_SIZE,
    BLK_F_FLUSH,
    BLK_F_RO,
    BLK_F_SEG_MAX,
    BLK_ID_BYTES,
    BLK_REQ_HEADER,
    BLK_S_IOERR,
    BLK_S_OK,
    BLK_S_UNSUPP,
    BLK_T_FLUSH,
    BLK_T_GET_ID,
    BLK_T_IN,
    BLK_T_OUT,
    DEVICE_ID_BLOCK,
    F_ACCESS_PLATFORM,
    F_VERSION_1,
    MAX_QUEUE_SIZE,
    SECTOR_SIZE,
)
from .mmio import VirtioMmio
from .queue import Chain, SplitQueue

_CONFIG = struct.Struct("<QIIHBBI")  # capacity, size_max, seg_max, geometry (cyl, heads, sectors), blk_size
MAX_REQUEST_BYTES = 4 << 20  # data bytes of one IN or OUT request (the device's host buffer); larger: IOERR
_SECTOR_LIST = re.compile(r"\s*(\d+)(?:\s*-\s*(\d+))?\s*\Z")


def parse_sectors(text: str) -> list[tuple[int, int]]:
    """``"7, 100-103"`` -> ``[(7, 7), (100, 103)]``: sectors and inclusive ranges; raises ValueError."""
    ranges = []
    for part in text.split(",") if text.strip() else []:
        m = _SECTOR_LIST.match(part)
        if m is None:
            raise ValueError(f"{part.strip()!r} is not a sector or a range FIRST-LAST")
        first = int(m[1])
        last = int(m[2]) if m[2] is not None else first
        if last < first:
            raise ValueError(f"range {first}-{last} ends before it begins")
        ranges.append((first, last))
    return ranges


class DiskImage:
    """A raw disk image: whole 512-byte sectors, written only by whole validated requests."""

    def __init__(self, path: str, *, readonly: bool) -> None:
        self.path = path
        self.readonly = readonly
        self._fd: int | None = None
        self._deferred: dict[int, bytes] | None = None  # sector -> data written, kept (see defer_writes)
        self.sectors = 0
        if path:
            try:
                self._fd = os.open(path, os.O_RDONLY if readonly else os.O_RDWR)
            except OSError as exc:
                raise OptionError("image", f"cannot open {path!r}: {exc.strerror}") from None
            size = os.fstat(self._fd).st_size
            if size % SECTOR_SIZE:
                os.close(self._fd)
                raise OptionError("image", f"{path!r} is {size} bytes, not a multiple of {SECTOR_SIZE}")
            self.sectors = size // SECTOR_SIZE

    def _image(self) -> int:
        # Without an image the capacity is 0 sectors, so the device refuses every transfer before it gets here.
        if self._fd is None:
            raise OSError("no disk image")
        return self._fd

    def read(self, sector: int, length: int) -> bytes:
        data = os.pread(self._image(), length, sector * SECTOR_SIZE)
        if len(data) != length:
            raise OSError(f"short read: {len(data)} of {length} bytes")
        if self._deferred:
            out = bytearray(data)
            for i in range(length // SECTOR_SIZE):
                kept = self._deferred.get(sector + i)
                if kept is not None:
                    out[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE] = kept
            return bytes(out)
        return data

    def write(self, sector: int, data: bytes) -> None:
        if self._deferred is not None:
            self._image()
            if (sector + len(data) // SECTOR_SIZE) > self.sectors or len(data) % SECTOR_SIZE:
                raise OSError(f"write of {len(data)} bytes at sector {sector} past the image's end")
            for i in range(len(data) // SECTOR_SIZE):
                self._deferred[sector + i] = bytes(data[i * SECTOR_SIZE : (i + 1) * SECTOR_SIZE])
            return
        done = os.pwrite(self._image(), data, sector * SECTOR_SIZE)
        if done != len(data):
            raise OSError(f"short write: {done} of {len(data)} bytes")

    def defer_writes(self) -> None:
        """Keep writes in memory (reads see them) until :meth:`commit`: a run that a debugger may start
        again from its beginning must find the image as it was (driver/replay.py)."""
        if self._deferred is None:
            self._deferred = {}

    def commit(self) -> None:
        """Write what :meth:`defer_writes` kept, sector by sector in order, and sync the file."""
        kept, self._deferred = self._deferred, None
        if kept:
            for sector in sorted(kept):
                self.write(sector, kept[sector])
            self.flush()

    def flush(self) -> None:
        if self._fd is not None and self._deferred is None:
            os.fsync(self._fd)

    def close(self) -> None:
        self._deferred = None  # (writes kept and not committed are dropped)
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None


class _Refused(Exception):
    """A request buffer the IOMMU refused (the fault is in the IOMMU's log)."""


@register_device
class VirtioBlk(VirtioMmio):
    TYPE = "virtio-blk"
    DESCRIPTION = "virtio-blk (virtio-mmio version 2, one split virtqueue) on a raw disk image"
    DEVICE_ID = DEVICE_ID_BLOCK
    OPTIONS = {
        "image": Option(str, "", "raw disk-image file (a multiple of 512 bytes); empty: no medium (capacity 0)"),
        "readonly": Option(bool, False, "open the image read-only and offer VIRTIO_BLK_F_RO"),
        "queue_size": Option(int, 128, "QueueNumMax (a power of 2)", minimum=1, maximum=MAX_QUEUE_SIZE),
        "serial": Option(str, "hwsim-blk", "the GET_ID string (at most 20 bytes)"),
        "latency_ns": Option(
            int,
            50_000,
            "virtual ns from a request's fetch to its completion, besides its data",
            minimum=0,
            maximum=10**10,
        ),
        "bandwidth": Option(
            int,
            1_000_000_000,
            "bytes per second of a request's data (0: data takes no time)",
            minimum=0,
            maximum=1 << 40,
        ),
        "bad_sectors": Option(
            str, "", "sectors with a media error, e.g. '7, 100-103': IN and OUT requests touching them fail"
        ),
    }
    FAULTS = {
        "ioerr": "a request completes with VIRTIO_BLK_S_IOERR; its data does not move (the image is untouched)",
        "unsupp": "a request completes with VIRTIO_BLK_S_UNSUPP; its data does not move",
        "media": "an IN or OUT request fails with IOERR, as a medium error would (always on bad_sectors)",
        "needs_reset": "the device fails at a request: DEVICE_NEEDS_RESET, nothing more completes until a reset",
    }

    def __init__(self, *, name: str, **kw) -> None:
        super().__init__(name=name, **kw)
        self.disk = DiskImage(self.options["image"], readonly=self.options["readonly"])
        self.bad_sectors = parse_sectors(self.options["bad_sectors"])

    @classmethod
    def check_options(cls, options) -> None:
        n = options["queue_size"]
        if n & (n - 1):
            raise OptionError("queue_size", f"must be a power of 2, not {n}")
        if len(options["serial"].encode()) > BLK_ID_BYTES:
            raise OptionError("serial", f"must be at most {BLK_ID_BYTES} bytes")
        try:
            parse_sectors(options["bad_sectors"])
        except ValueError as exc:
            raise OptionError("bad_sectors", f"{exc} (expected sectors and ranges, e.g. '7, 100-103')") from None

    @classmethod
    def config_template(cls) -> bytes:
        return bytes(_CONFIG.size)

    def device_features(self) -> int:
        features = (
            1 << F_VERSION_1 | 1 << F_ACCESS_PLATFORM | 1 << BLK_F_SEG_MAX | 1 << BLK_F_BLK_SIZE | 1 << BLK_F_FLUSH
        )
        return features | (1 << BLK_F_RO if self.disk.readonly else 0)

    def config_bytes(self) -> bytes:
        return _CONFIG.pack(self.disk.sectors, 0, max(1, self.queues[0].max_size - 2), 0, 0, 0, SECTOR_SIZE)

    @property
    def capacity(self) -> int:
        """Capacity in 512-byte sectors."""
        return self.disk.sectors

    # -- requests -------------------------------------------------------------------------------------

    def request_ticks(self, queue: SplitQueue, chain: Chain) -> int:
        """latency_ns + the data bytes at bandwidth: what the chain holds besides header and status, up to
        what one request can move (the device's buffer, the disk's capacity)."""
        data = max(0, chain.readable_len - BLK_REQ_HEADER) + max(0, chain.writable_len - 1)
        data = min(data, self.capacity * SECTOR_SIZE)
        bandwidth = self.options["bandwidth"]
        ns = self.options["latency_ns"] + (
            min(data, MAX_REQUEST_BYTES) * 1_000_000_000 // bandwidth if bandwidth else 0
        )
        return self.ns_to_ticks(ns)

    def _media_error(self, sector: int, length: int) -> bool:
        """A medium error on an IN or OUT request of ``length`` bytes at ``sector`` (an injected fault)."""
        last = sector + max(1, length // SECTOR_SIZE) - 1
        bad = any(first <= last and sector <= end for first, end in self.bad_sectors)
        return self.fault("media", forced=bad)

    def _bad(self, detail: str) -> None:
        self.report(IssueKind.PROTOCOL, detail=f"request: {detail}")

    def _gather(self, segments) -> bytes:
        """The bytes of ``segments`` through the IOMMU; callers have bounded their total length."""
        out = bytearray()
        for iova, length in segments:
            if length:
                result = self.dma_port.read(iova, length)
                if not result.ok:
                    raise _Refused
                out += result.data
        return bytes(out)

    @staticmethod
    def _split(segments, n: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """``segments`` cut after their first ``n`` bytes: (those bytes' segments, the rest)."""
        head, rest = [], []
        for iova, length in segments:
            take = min(length, n)
            if take:
                head.append((iova, take))
                n -= take
            if length > take:
                rest.append((iova + take, length - take))
        return head, rest

    def _scatter(self, segments, data: bytes) -> None:
        off = 0
        for iova, length in segments:
            n = min(length, len(data) - off)
            if n <= 0:
                break
            if not self.dma_port.write(iova, data[off : off + n]).ok:
                raise _Refused
            off += n

    def _status_byte(self, status_at: tuple[int, int], status: int) -> bool:
        return self.dma_port.write(status_at[0] + status_at[1] - 1, bytes([status])).ok

    def handle(self, queue: SplitQueue, chain: Chain) -> int | None:
        """Serve one request; returns the used length (bytes written into device-writable buffers), or
        None when the device failed (the needs_reset fault) and does not complete it."""
        if self.fault("needs_reset"):
            self._set_needs_reset()
            return None
        if not chain.writable or chain.writable_len == 0:
            self._bad(
                f"chain at descriptor {chain.head} has no device-writable status byte (not completed with a status)"
            )
            return 0
        # The status byte is the last byte of the device-writable part; data is everything before it.
        last = max(i for i, (_, n) in enumerate(chain.writable) if n)
        status_at = chain.writable[last]
        data_out = chain.writable[:last] + ([(status_at[0], status_at[1] - 1)] if status_at[1] > 1 else [])
        if chain.readable_len < BLK_REQ_HEADER:
            self._bad(f"header is {chain.readable_len} bytes, not {BLK_REQ_HEADER}")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        failed = [status for kind, status in (("ioerr", BLK_S_IOERR), ("unsupp", BLK_S_UNSUPP)) if self.fault(kind)]
        if failed:  # every point is counted at every request: occurrence N is the Nth request
            return 1 if self._status_byte(status_at, failed[0]) else 0
        # Only the header is read now: data is read once its length has been checked (host memory is
        # bounded by MAX_REQUEST_BYTES, not by the up to 4 GiB a chain's descriptors may claim).
        header, payload = self._split(chain.readable, BLK_REQ_HEADER)
        try:
            kind, _reserved, sector = struct.unpack("<IIQ", self._gather(header))
        except _Refused:
            return self._refused_readable(status_at)
        in_len = chain.writable_len - 1
        if kind == BLK_T_IN:
            return self._read_request(sector, chain.readable_len - BLK_REQ_HEADER, data_out, in_len, status_at)
        if kind == BLK_T_OUT:
            return self._write_request(sector, payload, in_len, status_at)
        if kind == BLK_T_FLUSH and self.negotiated(BLK_F_FLUSH):
            if sector:
                self._bad(f"FLUSH with sector {sector}: the driver MUST set sector to 0")
            try:
                self.disk.flush()
            except OSError as exc:
                self.report(IssueKind.PROTOCOL, detail=f"host I/O error on flush: {exc}")
                return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
            return 1 if self._status_byte(status_at, BLK_S_OK) else 0
        if kind == BLK_T_GET_ID:
            ident = self.options["serial"].encode().ljust(BLK_ID_BYTES, b"\0")[:in_len]
            try:
                self._scatter(data_out, ident)
            except _Refused:
                return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
            return len(ident) + 1 if self._status_byte(status_at, BLK_S_OK) else 0
        return 1 if self._status_byte(status_at, BLK_S_UNSUPP) else 0

    def _refused_readable(self, status_at) -> int:
        self._bad("the IOMMU refused a device-readable buffer (see its fault log)")
        return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0

    def _check_range(self, what: str, sector: int, length: int) -> bool:
        if length % SECTOR_SIZE:
            self._bad(f"{what} of {length} bytes is not a multiple of {SECTOR_SIZE}")
            return False
        if sector + length // SECTOR_SIZE > self.capacity:
            self._bad(
                f"{what} of sectors {sector}..{sector + length // SECTOR_SIZE - 1} is beyond the capacity "
                f"of {self.capacity} sectors"
            )
            return False
        if length > MAX_REQUEST_BYTES:
            self._bad(
                f"{what} of {length} bytes is more than the {MAX_REQUEST_BYTES} bytes this device "
                f"transfers in one request"
            )
            return False
        return True

    def _read_request(self, sector: int, payload_len: int, data_out, in_len: int, status_at) -> int:
        if payload_len:
            self._bad(f"IN request with {payload_len} device-readable data bytes after the header")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        if not self._check_range("read", sector, in_len):
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        if self._media_error(sector, in_len):
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        try:
            data = self.disk.read(sector, in_len) if in_len else b""
        except OSError as exc:
            self.report(IssueKind.PROTOCOL, detail=f"host I/O error reading the image: {exc}")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        try:
            self._scatter(data_out, data)
        except _Refused:
            self._bad("the IOMMU refused a device-writable data buffer (see its fault log)")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        return in_len + 1 if self._status_byte(status_at, BLK_S_OK) else 0

    def _write_request(self, sector: int, payload, in_len: int, status_at) -> int:
        if in_len:
            self._bad(f"OUT request with {in_len} device-writable bytes besides the status byte")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        if self.disk.readonly:
            self._bad("OUT request to a read-only device (VIRTIO_BLK_F_RO)")
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        length = sum(n for _, n in payload)
        if not self._check_range("write", sector, length):
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        if self._media_error(sector, length):
            return 1 if self._status_byte(status_at, BLK_S_IOERR) else 0
        try:
            data = self._gather(payload)
        except _Refused:
            return self._refused_readable(status_at)
        if not self._status_byte(status_at, BLK_S_IOERR):  # provisional: proves the status byte is writable
            self._bad("the IOMMU refused the status byte; the image was not written")
            return 0
        try:
            if data:
                self.disk.write(sector, data)
        except OSError as exc:
            self.report(IssueKind.PROTOCOL, detail=f"host I/O error writing the image: {exc}")
            return 1
        return 1 if self._status_byte(status_at, BLK_S_OK) else 0
