"""Named trace events, enabled by pattern, written as text, JSON Lines, Perfetto JSON or VCD.

::

    from hwsim import trace
    with trace.tracing("dma*,mmio", "run.json"):      # Perfetto/Chrome JSON, by the extension
        ...
    hwsim run boards/virt.toml drivers/dma_copy --trace 'dma*,mmio' --trace-out run.json

The events are the catalogue in :mod:`hwsim.trace.events`.  ``TRACE`` has one
attribute per event: ``None`` while the event is off, an emitter while it is
on; an event site is ``if TRACE.dma is not None: TRACE.dma(device=..., ...)``,
so tracing costs one attribute test when off.  Timestamps are virtual time
(``TRACE.clock``, set by the runners to the board's clock), in nanoseconds.

Patterns: comma-separated globs matched against event names and categories
(``dma*``, ``mmio``, ``irq_claim``, ``*``); a leading ``-`` removes
(``*,-mmio_read``).  A pattern that matches nothing is an error that lists
the events.
"""

from __future__ import annotations

import contextlib
import fnmatch
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, TextIO

from ..errors import HwsimError
from .events import CATEGORIES, EVENTS, EventSpec
from .sinks import FORMATS, JsonlSink, PerfettoSink, RingSink, Sink, TextSink, VcdSink, open_sink


class TraceError(HwsimError):
    """A bad trace pattern or output."""


class Emitter(Protocol):
    """An enabled event: called with the event's fields by keyword."""

    def __call__(self, **fields: object) -> None: ...


class Trace:
    """The switchboard: one attribute per event (None = off)."""

    # One attribute per catalogue event, declared so that an event site is type-checked
    # (tests/test_trace.py checks that these names are exactly the catalogue's).
    mmio_read: Emitter | None
    mmio_write: Emitter | None
    dma: Emitter | None
    dma_bug: Emitter | None
    protocol_bug: Emitter | None
    iommu_fault: Emitter | None
    iommu_inval: Emitter | None
    iommu_ddt_inval: Emitter | None
    page_walk: Emitter | None
    tlb_miss: Emitter | None
    tlb_flush: Emitter | None
    page_fault: Emitter | None
    irq: Emitter | None
    irq_claim: Emitter | None
    irq_complete: Emitter | None
    irq_handler: Emitter | None
    host_call: Emitter | None
    trap: Emitter | None
    fault: Emitter | None
    nvme_complete: Emitter | None
    thread: Emitter | None
    hart: Emitter | None

    def __init__(self) -> None:
        self.sinks: list[Sink] = []
        self.clock: Callable[[], int] = lambda: 0
        self.current_hart: int | None = None  # the hart whose turn runs (machine/harts.py), else None
        self.enabled: tuple[str, ...] = ()
        self._listeners: list[Callable[[], None]] = []
        for name in EVENTS:
            setattr(self, name, None)

    def on_change(self, listener: Callable[[], None]) -> None:
        """``listener()`` runs after every :meth:`enable` and :meth:`disable` (a compiled hook that must
        know whether an event is on, such as the TLB-fill helper's, registers here)."""
        self._listeners.append(listener)

    def _changed(self) -> None:
        for listener in self._listeners:
            listener()

    def select(self, patterns: str | list[str]) -> list[str]:
        """The event names a pattern string selects (in catalogue order)."""
        items = [p.strip() for p in (patterns.split(",") if isinstance(patterns, str) else patterns)]
        chosen: set[str] = set()
        for item in items:
            if not item:
                continue
            negate = item.startswith("-")
            pat = item[1:] if negate else item
            hits = {n for n, e in EVENTS.items() if fnmatch.fnmatchcase(n, pat) or fnmatch.fnmatchcase(e.category, pat)}
            if not hits:
                raise TraceError(
                    f"trace pattern {pat!r} matches no event; events: {', '.join(EVENTS)} "
                    f"(categories: {', '.join(CATEGORIES)})"
                )
            chosen = chosen - hits if negate else chosen | hits
        return [n for n in EVENTS if n in chosen]

    def enable(self, patterns: str | list[str], *sinks: Sink) -> list[str]:
        """Turn on the selected events, writing to ``sinks``; returns the event names."""
        names = self.select(patterns)
        self.sinks.extend(sinks)
        for name in names:
            setattr(self, name, self._emitter(EVENTS[name]))
        self.enabled = tuple(n for n in EVENTS if getattr(self, n) is not None)
        self._changed()
        return names

    def disable(self) -> None:
        """Everything off; the sinks are closed (Perfetto and VCD files are written then)."""
        for name in EVENTS:
            setattr(self, name, None)
        for sink in self.sinks:
            sink.close()
        self.sinks = []
        self.enabled = ()
        self._changed()

    def _emitter(self, spec: EventSpec) -> Emitter:
        sinks = self.sinks

        def emit(**fields: object) -> None:
            t = self.clock()
            hart = self.current_hart
            for sink in sinks:
                if hart is None:
                    sink.write(spec, t, fields)
                else:
                    sink.write(spec, t, fields, hart)

        return emit


TRACE = Trace()


@contextlib.contextmanager
def tracing(
    patterns: str, out: str | Path | None = None, *, format: str | None = None, stream: TextIO | None = None
) -> Iterator[Sink]:
    """Trace the selected events into ``out`` (format from ``format`` or the file's extension:
    .json Perfetto, .jsonl JSON Lines, .vcd VCD, else text; no ``out``: text on ``stream``/stderr)."""
    try:
        sink = open_sink(out, format=format, stream=stream)
    except (OSError, ValueError) as exc:
        raise TraceError(str(exc)) from None
    TRACE.enable(patterns, sink)
    try:
        yield sink
    finally:
        TRACE.disable()


__all__ = [
    "EVENTS",
    "Emitter",
    "FORMATS",
    "JsonlSink",
    "PerfettoSink",
    "RingSink",
    "Sink",
    "TRACE",
    "TextSink",
    "Trace",
    "TraceError",
    "VcdSink",
    "open_sink",
    "tracing",
]
