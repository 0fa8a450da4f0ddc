"""A run's effects on the outside world when it may be replayed (``hwsim run --gdb``): said once, read once.

Reverse execution runs the driver again from its first instruction
(``debug/replay.py``).  Everything the run does to the host would then
happen again, and everything it reads from the host could differ; so every
run of a debugging session goes through one :class:`HostEffects`::

    channel               first time                          in a run that replays it
    -------               ----------                          ------------------------
    serial output         written to the backend              the bytes already written are dropped
    driver log lines      printed                             the lines already printed are dropped
    serial input          read from the live backend, logged  the log, in order; then the live backend
    disk images           writes kept in memory (the file     the same, from the unchanged file; the
    (virtio-blk, NVMe)    is read as it was at the start)     last run's writes reach the file at its end
    trace sinks (--trace) written                             events already written are dropped
    virtio-net tx capture records appended                    the file (which building the board created
                                                              anew) gets the records back; records
                                                              already written are dropped

Effects are matched by their order (the k-th byte, line or read; a trace
event by its virtual time and its order among the events of that time),
which a deterministic run repeats; input that does not match its log (another
method was called) means the run did not repeat itself: :class:`ReplayDiverged`.
A disk image is written once, at the end of the session (:meth:`HostEffects.commit`),
so a session with reverse steps leaves it byte for byte as one without.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..devices.backends import CharBackend
from ..devices.pcap import PcapWriter
from ..errors import HwsimError
from ..trace.sinks import Sink

__all__ = ["HostEffects", "ReplayDiverged", "ReplayedBackend", "ReplayedSink"]


class ReplayDiverged(HwsimError):
    """A replayed run did not repeat the recorded one (its input calls differ)."""


@dataclass
class _Channel:
    """One serial port's record over a session: output bytes let out, input calls and their results."""

    written: int = 0
    inputs: list[tuple[str, object]] = field(default_factory=list)


class ReplayedBackend(CharBackend):
    """A serial port's backend in a replayable session: output already let out is not written again,
    input comes from the record, then from the live backend (the first run's, kept for the session)."""

    def __init__(self, live: CharBackend, channel: _Channel, name: str) -> None:
        self.kind = live.kind
        self._live = live
        self._channel = channel
        self._name = name
        self._written = 0  # bytes this run wrote
        self._calls = 0  # input calls this run made

    def write(self, data: bytes) -> None:
        start = self._written
        self._written += len(data)
        fresh = data[max(0, self._channel.written - start) :]
        if fresh:
            self._live.write(fresh)
            self._channel.written = self._written

    def read(self, n: int) -> bytes:
        data = self._input(f"read({n})", lambda: self._live.read(n))
        assert isinstance(data, bytes)  # what read returned when it was recorded
        return data

    def input_ended(self) -> bool:
        return bool(self._input("input_ended()", self._live.input_ended))

    def wait_input(self, timeout: float) -> None:
        if self._calls >= len(self._channel.inputs):  # past the record: the live backend's wait
            self._live.wait_input(timeout)

    def _input(self, call: str, live: Callable[[], object]) -> object:
        index = self._calls
        self._calls += 1
        inputs = self._channel.inputs
        if index < len(inputs):
            recorded, value = inputs[index]
            if recorded != call:
                raise ReplayDiverged(
                    f"{self._name}: input call {index + 1} of the replay is {call}, the recorded run's was {recorded}"
                )
            return value
        value = live()
        inputs.append((call, value))
        return value


class ReplayedSink(Sink):
    """A trace sink in a replayable session: an event reaches it once.  Events are matched by (virtual
    time, order among the events of that time): a run's time never goes back, and a replay emits the
    same events in the same order."""

    def __init__(self, sink: Sink) -> None:
        self.sink = sink
        self._written = (-1, 0)  # the last event let out
        self._time = -1
        self._order = 0

    def restart(self) -> None:
        """A new run of the session begins."""
        self._time, self._order = -1, 0

    def write(self, spec, t_ns: int, fields: dict, hart: int | None = None) -> None:
        if t_ns == self._time:
            self._order += 1
        else:
            self._time, self._order = t_ns, 0
        if (t_ns, self._order) > self._written:
            self._written = (t_ns, self._order)
            self.sink.write(spec, t_ns, fields, hart)

    def close(self) -> None:
        self.sink.close()


@dataclass
class _Capture:
    """A virtio-net ``tx`` capture's records over a session."""

    path: str
    records: list[tuple[int, bytes]] = field(default_factory=list)

    def restore(self) -> None:
        """Building the board created the file anew: write back what the session had written."""
        writer = PcapWriter(self.path)
        for time_ns, frame in self.records:
            writer.write(time_ns, frame)


class ReplayedCapture(PcapWriter):
    """A virtio-net backend's capture writer in a replayable session: each record is written once."""

    def __init__(self, capture: _Capture) -> None:  # (no header: it appends to the file as the session left it)
        self.path = capture.path
        self._capture = capture
        self._count = 0  # records this run wrote

    def write(self, time_ns: int, frame: bytes) -> None:
        self._count += 1
        if self._count > len(self._capture.records):
            super().write(time_ns, frame)
            self._capture.records.append((time_ns, bytes(frame)))


class HostEffects:
    """The host effects of every run of one debugging session (see the module docstring)."""

    def __init__(self, log: Callable[[str], None]) -> None:
        self._log = log
        self._lines = 0  # log lines let out
        self._channels: dict[str, _Channel] = {}
        self._live: dict[str, CharBackend] = {}
        self._system = None  # the current run's
        self._sinks: list[ReplayedSink] = []
        self._captures: dict[str, _Capture] = {}
        self.runs = 0

    def gate_trace(self, sinks: list[Sink]) -> None:
        """Put the trace's ``sinks`` (the list the trace writes to, changed in place) through the session."""
        for i, sink in enumerate(sinks):
            gated = ReplayedSink(sink)
            self._sinks.append(gated)
            sinks[i] = gated

    def adopt(self, system) -> Callable[[str], None]:
        """Take a newly built ``system`` into the session (before its run starts): its serial ports go
        through the record, its disk images keep writes in memory.  Returns the run's log function."""
        from ..devices.uart import Uart
        from ..devices.virtio import DiskImage
        from ..devices.virtio.net import PcapBackend

        self.runs += 1
        for sink in self._sinks:
            sink.restart()
        if self._system is not None:  # the run it replaces was abandoned: its writes are dropped
            for device in self._system.devices.values():
                disk = getattr(device, "disk", None)
                if isinstance(disk, DiskImage):
                    disk.close()
        self._system = system
        for name, device in system.devices.items():
            if isinstance(device, Uart):
                live = self._live.get(name)
                if live is None:
                    live = self._live[name] = device.backend
                else:
                    device.backend.close()  # this run's own (never used): the first run's is the live one
                device.backend = ReplayedBackend(live, self._channels.setdefault(name, _Channel()), name)
            disk = getattr(device, "disk", None)
            if isinstance(disk, DiskImage):
                disk.defer_writes()
            backend = getattr(device, "backend", None)
            if isinstance(backend, PcapBackend) and backend.writer is not None:
                capture = self._captures.get(name)
                if capture is None:
                    capture = self._captures[name] = _Capture(backend.writer.path)
                else:
                    capture.restore()
                backend.writer = ReplayedCapture(capture)
        lines = 0

        def log(line: str) -> None:
            nonlocal lines
            lines += 1
            if lines > self._lines:
                self._lines = lines
                self._log(line)

        return log

    def commit(self) -> None:
        """The session ends: the last run's disk writes reach their images."""
        from ..devices.virtio import DiskImage

        if self._system is None:
            return
        for device in self._system.devices.values():
            disk = getattr(device, "disk", None)
            if isinstance(disk, DiskImage):
                disk.commit()
