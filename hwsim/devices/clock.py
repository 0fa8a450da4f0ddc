"""Virtual time: a deterministic clock that moves only when the runner or a device access advances it.

Devices never read the host's clock.  A timer schedules a callback at a
tick; ``advance`` moves time forward and fires every due callback in
deadline order (ties in scheduling order), with ``now`` set to the event's
own tick while it runs, so a callback sees exactly the time it asked for.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable

from ..errors import ConfigError


class ClockEvent:
    """A scheduled callback; ``cancel()`` makes it never fire."""

    __slots__ = ("when", "callback", "cancelled")

    def __init__(self, when: int, callback: Callable[[], None]) -> None:
        self.when = when
        self.callback = callback
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def __repr__(self) -> str:
        return f"ClockEvent(when={self.when}, cancelled={self.cancelled})"


def _no_limit() -> None:
    """The limit callback while no limit is set: the clock may run past tick 2**64 unremarked."""


class VirtualClock:
    """Ticks at ``frequency_hz`` virtual ticks per virtual second, starting at 0."""

    def __init__(self, *, frequency_hz: int = 10_000_000) -> None:
        if not isinstance(frequency_hz, int) or frequency_hz <= 0:
            raise ConfigError(f"clock frequency must be a positive integer, not {frequency_hz!r}")
        self.frequency_hz = frequency_hz
        self.now = 0
        self._events: list[tuple[int, int, ClockEvent]] = []
        self._seq = itertools.count()
        self._limit = 1 << 64  # see set_limit
        self._over_limit: Callable[[], None] = _no_limit

    def set_limit(self, tick: int, callback: Callable[[], None] | None) -> None:
        """Call ``callback()`` each time the clock moves to or past ``tick`` (a run's time limit).

        Unlike an event it is not something that can still happen: :attr:`next_deadline` does not
        see it, so an idle system is still idle.  ``callback`` None removes it."""
        self._limit = tick if callback is not None else 1 << 64
        self._over_limit = callback if callback is not None else _no_limit

    def schedule(self, when: int, callback: Callable[[], None]) -> ClockEvent:
        """Run ``callback()`` when time reaches tick ``when`` (now, if ``when`` is in the past:
        at the next ``advance``, which may be ``advance(0)``)."""
        event = ClockEvent(when, callback)
        heapq.heappush(self._events, (when, next(self._seq), event))
        return event

    def schedule_in(self, ticks: int, callback: Callable[[], None]) -> ClockEvent:
        return self.schedule(self.now + ticks, callback)

    @property
    def next_deadline(self) -> int | None:
        """The tick of the earliest pending event, or None."""
        while self._events and self._events[0][2].cancelled:
            heapq.heappop(self._events)
        return self._events[0][0] if self._events else None

    def advance(self, ticks: int) -> int:
        """Move time forward by ``ticks`` (>= 0); returns how many events fired."""
        if not isinstance(ticks, int) or ticks < 0:
            raise ConfigError(f"the clock only moves forward: ticks must be a non-negative integer, not {ticks!r}")
        return self.advance_to(self.now + ticks)

    def charge(self, ticks: int) -> None:
        """Time taken by the CPU (an MMIO access): ``advance(ticks)``, cheap when nothing falls due."""
        when = self.now + ticks
        events = self._events
        if events and events[0][0] <= when:
            self.advance_to(when)
        else:
            self.now = when
            if when >= self._limit:
                self._over_limit()

    def access_charger(self, ticks: int) -> Callable[[object, int, int, bool, int], None]:
        """A machine MMIO observer (``Machine.add_mmio_observer``) that charges ``ticks`` per device access:
        :meth:`charge`'s work, written out in the observer itself (one call per access, not two)."""

        def charge_access(_region: object, _offset: int, _size: int, _write: bool, _value: int) -> None:
            when = self.now + ticks
            if when < self._limit and not (self._events and self._events[0][0] <= when):
                self.now = when  # (nothing falls due: the common case)
            else:
                self.advance_to(when)  # (events fire in order, then the limit is checked)

        return charge_access

    def advance_to(self, when: int) -> int:
        if when < self.now:
            raise ConfigError(f"the clock only moves forward: cannot go from tick {self.now} back to {when}")
        fired = 0
        events = self._events
        while events and events[0][0] <= when:
            deadline, _, event = heapq.heappop(events)
            if event.cancelled:
                continue
            self.now = max(self.now, deadline)
            event.cancelled = True  # fired: a late cancel() is harmless
            event.callback()
            fired += 1
        self.now = when
        if when >= self._limit:
            self._over_limit()
        return fired

    def ticks_to_ns(self, ticks: int) -> int:
        return ticks * 1_000_000_000 // self.frequency_hz
