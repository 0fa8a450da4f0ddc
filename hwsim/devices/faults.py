"""Fault injection: device operations that fail as hardware fails, deterministically.

A board's :class:`FaultPlan` says which operations fail.  Devices ask it at
each point where the real hardware could fail, naming the device and the
kind of fault::

    if self.faults.fires(self.name, "ioerr"):     # the Nth request, or a seeded draw
        status = BLK_S_IOERR

Two ways to choose, combinable:

* explicit specs, from the board's ``faults = [...]`` option list or
  ``hwsim run --inject DEV.KIND[@N[,M...]|%P]``: ``blk0.ioerr@3`` fails the
  3rd request (1-based), ``blk0.ioerr@2,5`` the 2nd and the 5th,
  ``net0.drop%10`` drops 10 % of frames (seeded draws), ``dma0.error`` fails
  every transfer;
* with ``explore=True`` and a seed (``--explore N --faults``): every kind a
  device offers fails with a small seeded probability, so exploration covers
  the error paths too.

Every fault that fires is recorded (``fired``: device, kind, occurrence,
virtual time), emitted as a ``fault`` trace event, and listed in the run's
report, so an author sees which error path ran.  The kinds each device
offers are declared by the device type (``Device.FAULTS``); asking for an
undeclared kind is a bug, and a spec naming one is a clear error.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from ..errors import ConfigError
from ..trace import TRACE
from .clock import VirtualClock

EXPLORE_PROBABILITY = 0.02  # per operation, per offered kind, when exploring with faults
_SPEC = re.compile(
    r"(?P<device>[A-Za-z_]\w*)\.(?P<kind>[a-z_]+)(?:@(?P<nth>\d+(?:,\d+)*)|%(?P<percent>\d+(?:\.\d+)?))?\Z"
)


@dataclass(frozen=True, slots=True)
class FaultSpec:
    """One ``DEV.KIND[@N,...|%P]``: every occurrence (neither), the listed ones (1-based), or a percentage."""

    device: str
    kind: str
    occurrences: frozenset[int] = frozenset()
    percent: float | None = None

    @classmethod
    def parse(cls, text: str) -> FaultSpec:
        m = _SPEC.match(text.strip())
        if m is None:
            raise ConfigError(
                f"fault spec {text!r}: expected DEV.KIND, DEV.KIND@N[,M...] (the Nth occurrence, 1-based) or "
                f"DEV.KIND%P (P percent of occurrences), e.g. blk0.ioerr@3"
            )
        nth = frozenset(int(n) for n in m["nth"].split(",")) if m["nth"] else frozenset()
        if 0 in nth:
            raise ConfigError(f"fault spec {text!r}: occurrences count from 1")
        percent = float(m["percent"]) if m["percent"] else None
        if percent is not None and not 0 < percent <= 100:
            raise ConfigError(f"fault spec {text!r}: the percentage must be in (0, 100]")
        return cls(m["device"], m["kind"], nth, percent)

    def __str__(self) -> str:
        if self.occurrences:
            return f"{self.device}.{self.kind}@{','.join(map(str, sorted(self.occurrences)))}"
        if self.percent is not None:
            return f"{self.device}.{self.kind}%{self.percent:g}"
        return f"{self.device}.{self.kind}"


@dataclass(frozen=True, slots=True)
class FiredFault:
    device: str
    kind: str
    occurrence: int  # 1-based count of this (device, kind) point
    time: int  # virtual tick

    def format(self) -> str:
        return f"{self.device}.{self.kind} (occurrence {self.occurrence}, tick {self.time})"


@dataclass
class FaultPlan:
    """Which device operations fail.  Empty: none (the default)."""

    specs: tuple[FaultSpec, ...] = ()
    seed: int | None = None
    explore: bool = False  # with a seed: every offered kind fails now and then
    fired: list[FiredFault] = field(default_factory=list)
    clock: VirtualClock | None = None  # the board's (for the time of each fault)

    def __post_init__(self) -> None:
        self._counts: dict[tuple[str, str], int] = {}
        self._rng = random.Random(f"faults {self.seed}")  # a stream of its own, apart from the timing draws
        self._by_point = {(s.device, s.kind): s for s in self.specs}

    @property
    def active(self) -> bool:
        return bool(self.specs) or (self.explore and self.seed is not None)

    def check(self, offered: dict[str, set[str]]) -> None:
        """Raise a ConfigError for a spec naming a device or a kind the board does not offer."""
        for spec in self.specs:
            if spec.device not in offered:
                raise ConfigError(f"fault spec {spec}: the board has no device {spec.device!r}")
            kinds = offered[spec.device]
            if spec.kind not in kinds:
                raise ConfigError(
                    f"fault spec {spec}: {spec.device} offers no fault {spec.kind!r} "
                    f"(it offers: {', '.join(sorted(kinds)) or 'none'})"
                )

    def _planned(self, spec: FaultSpec | None, n: int) -> bool:
        """Whether the plan makes the ``n``th occurrence of a point (with ``spec``, or none) fail."""
        if spec is not None:
            if spec.occurrences:
                return n in spec.occurrences
            if spec.percent is not None:
                return self._rng.random() * 100 < spec.percent
            return True
        return self.explore and self.seed is not None and self._rng.random() < EXPLORE_PROBABILITY

    def fires(self, device: str, kind: str, *, forced: bool = False) -> bool:
        """Count one occurrence of the failure point ``device.kind``; True when it is to fail.
        ``forced``: it fails whatever the plan says, as the device's configuration wants (e.g. a sector
        the board marks bad), and is recorded and traced like any other."""
        key = (device, kind)
        n = self._counts[key] = self._counts.get(key, 0) + 1  # counted always: occurrence N is the Nth point
        hit = forced or (self.active and self._planned(self._by_point.get(key), n))
        if hit:
            now = self.clock.now if self.clock is not None else 0
            self.fired.append(FiredFault(device, kind, n, now))
            if TRACE.fault is not None:
                TRACE.fault(device=device, kind=kind, occurrence=n)
        return hit
