"""Classic libpcap capture files (LINKTYPE_ETHERNET): read whole, written one record at a time.

::

    global header (24 bytes)  u32 magic, u16 major (2), u16 minor (4), i32 thiszone, u32 sigfigs,
                              u32 snaplen, u32 linktype (1: Ethernet)
    record header (16 bytes)  u32 ts_sec, u32 ts_frac (microseconds, or nanoseconds with the
                              nanosecond magic), u32 incl_len, u32 orig_len; then incl_len bytes

The magic number gives the byte order and the timestamp resolution: 0xa1b2c3d4 (microseconds) or
0xa1b23c4d (nanoseconds), read in either byte order.  hwsim writes little-endian nanosecond files
(timestamps are virtual time).  Any malformation is a :class:`PcapError` naming the file.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

MAGIC_USEC = 0xA1B2_C3D4
MAGIC_NSEC = 0xA1B2_3C4D
VERSION = (2, 4)
LINKTYPE_ETHERNET = 1
SNAPLEN = 65535
GLOBAL_HEADER = {"<": struct.Struct("<IHHiIII"), ">": struct.Struct(">IHHiIII")}  # by the magic's byte order
RECORD_HEADER = {"<": struct.Struct("<IIII"), ">": struct.Struct(">IIII")}
GLOBAL_HEADER_SIZE, RECORD_HEADER_SIZE = 24, 16


class PcapError(ConfigError):
    """A capture file cannot be read or written; the message names the file."""


@dataclass(frozen=True, slots=True)
class PcapRecord:
    """One captured frame and its timestamp in nanoseconds."""

    time_ns: int
    data: bytes


def read_pcap(path: str | Path) -> list[PcapRecord]:
    """Every record of a classic pcap file of Ethernet frames, in file order."""
    name = str(path)
    try:
        raw = Path(path).read_bytes()
    except OSError as exc:
        raise PcapError(f"{name!r}: cannot read: {exc.strerror}") from None
    if len(raw) < GLOBAL_HEADER_SIZE:
        raise PcapError(f"{name!r}: {len(raw)} bytes, shorter than the {GLOBAL_HEADER_SIZE}-byte pcap header")
    for order in "<>":
        magic = struct.unpack_from(order + "I", raw)[0]
        if magic in (MAGIC_USEC, MAGIC_NSEC):
            break
    else:
        raise PcapError(
            f"{name!r}: not a pcap file (magic number {raw[:4].hex()}; expected a1b2c3d4 or a1b23c4d, "
            f"pcapng is not supported)"
        )
    scale = 1000 if magic == MAGIC_USEC else 1
    frac_limit = 1_000_000 if magic == MAGIC_USEC else 1_000_000_000
    _magic, major, minor, _zone, _sigfigs, _snaplen, linktype = GLOBAL_HEADER[order].unpack_from(raw)
    if major != VERSION[0]:
        raise PcapError(f"{name!r}: pcap version {major}.{minor}, expected 2.x")
    if linktype != LINKTYPE_ETHERNET:
        raise PcapError(f"{name!r}: link type {linktype}, expected {LINKTYPE_ETHERNET} (Ethernet)")
    records: list[PcapRecord] = []
    off = GLOBAL_HEADER_SIZE
    record = RECORD_HEADER[order]
    while off < len(raw):
        index = len(records)
        if off + record.size > len(raw):
            raise PcapError(
                f"{name!r}: record {index} at byte {off}: truncated record header "
                f"({len(raw) - off} of {record.size} bytes)"
            )
        sec, frac, incl, orig = record.unpack_from(raw, off)
        if frac >= frac_limit:
            raise PcapError(f"{name!r}: record {index} at byte {off}: timestamp fraction {frac} is out of range")
        if incl > orig:
            raise PcapError(
                f"{name!r}: record {index} at byte {off}: captured length {incl} exceeds the original length {orig}"
            )
        start = off + record.size
        if start + incl > len(raw):
            raise PcapError(
                f"{name!r}: record {index} at byte {off}: truncated frame ({len(raw) - start} of {incl} bytes)"
            )
        if incl < orig:
            raise PcapError(
                f"{name!r}: record {index} at byte {off}: the frame was captured truncated ({incl} of {orig} bytes)"
            )
        records.append(PcapRecord(sec * 1_000_000_000 + frac * scale, raw[start : start + incl]))
        off = start + incl
    return records


def read_frames(path: str | Path) -> list[bytes]:
    """The frames of a pcap file, without timestamps."""
    return [r.data for r in read_pcap(path)]


class PcapWriter:
    """Appends records to a new little-endian nanosecond pcap file (created, or truncated, at once)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        header = GLOBAL_HEADER["<"].pack(MAGIC_NSEC, *VERSION, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)
        self._write(header, "wb")

    def _write(self, data: bytes, mode: str) -> None:
        try:
            with open(self.path, mode) as f:
                f.write(data)
        except OSError as exc:
            raise PcapError(f"{self.path!r}: cannot write: {exc.strerror}") from None

    def write(self, time_ns: int, frame: bytes) -> None:
        sec, frac = divmod(time_ns, 1_000_000_000)
        self._write(RECORD_HEADER["<"].pack(sec, frac, len(frame), len(frame)) + frame, "ab")


def write_pcap(path: str | Path, frames, *, spacing_ns: int = 1_000_000) -> None:
    """A pcap file of ``frames`` (bytes, or ``(time_ns, bytes)`` pairs); plain frames are ``spacing_ns`` apart."""
    writer = PcapWriter(path)
    for i, frame in enumerate(frames):
        time_ns, data = frame if isinstance(frame, tuple) else (i * spacing_ns, frame)
        writer.write(time_ns, bytes(data))
