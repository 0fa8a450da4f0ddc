"""Where trace events go: text, JSON Lines, Perfetto (Chrome trace event format) JSON, VCD."""

from __future__ import annotations

import json
import sys
from collections import deque
from pathlib import Path
from typing import TextIO

from .events import CATEGORIES, EventSpec

FORMATS = ("text", "jsonl", "perfetto", "vcd")
_EXTENSIONS = {".json": "perfetto", ".jsonl": "jsonl", ".vcd": "vcd"}


def _plain(value: object) -> object:
    """A JSON-friendly field value."""
    if isinstance(value, (bool, int, float, str)) or value is None:
        return value
    if isinstance(value, bytes):
        return value.hex()
    if hasattr(value, "name") and hasattr(value, "value"):  # enums
        return value.name.lower()
    return str(value)


class Sink:
    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        """One event at virtual time ``t_ns``; ``hart``: the hart whose turn emitted it (several harts
        under a scheduler; None otherwise, and then not passed, so a sink may leave it out)."""
        raise NotImplementedError

    def close(self) -> None:
        pass


class TextSink(Sink):
    """``[   1.234567 ms] category  the event's text``, one line each."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self._own = False

    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        where = "" if hart is None else f"hart {hart}: "  # (several harts: the one whose turn it was)
        self.stream.write(f"[{t_ns / 1e6:12.6f} ms] {spec.category:<5} {where}{spec.format(fields)}\n")

    def close(self) -> None:
        if self._own:
            self.stream.close()
        else:
            self.stream.flush()


class RingSink(Sink):
    """The last ``capacity`` events, kept to be shown on demand (GDB's ``monitor trace``)."""

    def __init__(self, capacity: int = 10_000) -> None:
        self.events: deque[tuple[EventSpec, int, dict]] = deque(maxlen=capacity)
        self.count = 0  # events seen, dropped ones included

    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        self.events.append((spec, t_ns, dict(fields)))
        self.count += 1

    def clear(self) -> None:
        """Forget every event (a run started again from its beginning: GDB's reverse execution)."""
        self.events.clear()
        self.count = 0

    def last(self, n: int) -> list[str]:
        """The last ``n`` events as TextSink writes them, oldest first."""
        start = max(0, len(self.events) - n)
        return [
            f"[{t_ns / 1e6:12.6f} ms] {spec.category:<5} {spec.format(fields)}"
            for spec, t_ns, fields in list(self.events)[start:]
        ]


class JsonlSink(TextSink):
    """One JSON object per event: ``{"t_ns", "event", "category", <fields>}``."""

    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        record = {"t_ns": t_ns, "event": spec.name, "category": spec.category}
        if hart is not None:  # (several harts: the one whose turn emitted it)
            record["hart"] = hart
        record.update((k, _plain(v)) for k, v in fields.items())
        self.stream.write(json.dumps(record) + "\n")


HART_CATEGORIES = frozenset({"hart", "mmio", "mmu", "trap", "host"})  # what a hart's own track shows
HART_TID_BASE = 1000  # hart N's track is thread HART_TID_BASE + N


class PerfettoSink(Sink):
    """The Chrome trace event format (JSON object form), which ui.perfetto.dev and chrome://tracing open.

    One track (thread) per category; events are instants, host calls are complete ("X") slices
    covering the virtual time they took.  Timestamps are microseconds of virtual time.  On a machine
    with several harts, each hart has a track of its own ("hart N") for its ``hart`` events and for
    the CPU-side events (:data:`HART_CATEGORIES`) emitted during its turns; the rest (devices, DMA,
    interrupt lines) stay on their category's track.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.events: list[dict] = []
        self.tids = {c: i + 1 for i, c in enumerate(CATEGORIES)}
        self.hart_tids: dict[int, int] = {}  # hart -> its track, for the harts seen
        with open(self.path, "w"):  # fail now, not at the end, when the file cannot be written
            pass

    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        args = {k: _plain(v) for k, v in fields.items()}
        if spec.name == "hart" and isinstance(fields.get("hartid"), int):
            hart = fields["hartid"]  # (a hart event names its hart, in a turn or not: an IPI from the host)
        if hart is not None and spec.category in HART_CATEGORIES:
            tid = self.hart_tids.setdefault(hart, HART_TID_BASE + hart)
        else:
            tid = self.tids[spec.category]
        event = {"name": spec.name, "cat": spec.category, "pid": 1, "tid": tid, "args": args}
        duration = fields.get("duration_ns")
        if isinstance(duration, int) and duration >= 0:
            event.update(ph="X", ts=(t_ns - duration) / 1000, dur=duration / 1000)
        else:
            event.update(ph="i", s="t", ts=t_ns / 1000)
        self.events.append(event)

    def close(self) -> None:
        meta = [{"name": "process_name", "ph": "M", "pid": 1, "tid": 0, "args": {"name": "hwsim (virtual time)"}}]
        meta += [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": cat}}
            for cat, tid in self.tids.items()
        ]
        meta += [
            {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": f"hart {hart}"}}
            for hart, tid in sorted(self.hart_tids.items())
        ]
        data = {
            "traceEvents": meta + self.events,
            "displayTimeUnit": "ns",
            "otherData": {"generator": "hwsim", "clock": "virtual time"},
        }
        self.path.write_text(json.dumps(data))


class VcdSink(Sink):
    """Device registers as a VCD (value change dump) for waveform viewers such as GTKWave.

    Every register a traced MMIO access touches becomes a 32-bit wire in a scope named after
    its device; a write sets it, a read shows the value the device returned.  Timescale 1 ns.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.changes: list[tuple[int, tuple[str, str], int]] = []
        with open(self.path, "w"):
            pass

    def write(self, spec: EventSpec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        if spec.name in ("mmio_read", "mmio_write"):
            self.changes.append((t_ns, (str(fields["device"]), str(fields["reg"])), int(fields["value"])))

    def close(self) -> None:
        wires: dict[tuple[str, str], str] = {}
        for _, key, _ in self.changes:
            if key not in wires:
                wires[key] = _vcd_id(len(wires))
        lines = ["$date hwsim $end", "$version hwsim trace $end", "$timescale 1ns $end"]
        for device in sorted({d for d, _ in wires}):
            lines.append(f"$scope module {device} $end")
            for (d, reg), ident in wires.items():
                if d == device:
                    lines.append(f"$var wire 32 {ident} {reg} $end")
            lines.append("$upscope $end")
        lines.append("$enddefinitions $end")
        last_t = None
        for t, key, value in self.changes:
            if t != last_t:
                lines.append(f"#{t}")
                last_t = t
            lines.append(f"b{value & 0xFFFF_FFFF:b} {wires[key]}")
        self.path.write_text("\n".join(lines) + "\n")


def _vcd_id(n: int) -> str:
    chars = [chr(c) for c in range(33, 127)]
    out = ""
    while True:
        out += chars[n % len(chars)]
        n //= len(chars)
        if not n:
            return out


def open_sink(out: str | Path | None = None, *, format: str | None = None, stream: TextIO | None = None) -> Sink:
    if format is not None and format not in FORMATS:
        raise ValueError(f"unknown trace format {format!r} (formats: {', '.join(FORMATS)})")
    if out is None:
        if format in ("perfetto", "vcd"):
            raise ValueError(f"the {format} format needs an output file")
        return (JsonlSink if format == "jsonl" else TextSink)(stream)
    path = Path(out)
    format = format or _EXTENSIONS.get(path.suffix, "text")
    if format == "perfetto":
        return PerfettoSink(path)
    if format == "vcd":
        return VcdSink(path)
    sink = (JsonlSink if format == "jsonl" else TextSink)(open(path, "w"))
    sink._own = True
    return sink
