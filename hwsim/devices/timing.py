"""How long device work takes, on virtual time: nominal by default, varied by a seed when exploring.

Every device asks its board's :class:`Timing` how many ticks an operation
takes (a DMA transfer, a virtio request, an interrupt's delivery).  Without a
seed the answer is the nominal value the board file sets, so runs are exactly
reproducible and independent of the exploration machinery.  With a seed
(``hwsim run --explore N`` / ``--seed S``) each answer is drawn from a
per-seed stream, biased towards the extremes as PCT does for thread
schedules: most draws stay near nominal, some are very short and some very
long, so completions come back out of order and races between the driver and
a device show within a few hundred seeds::

    draw = nominal * factor,  factor ~  1/8 .. 1/2   (p = 1/6: "early")
                                        1/2 .. 2     (p = 1/2: "near nominal")
                                        2   .. 8     (p = 1/4: "late")
                                        16  .. 64    (p = 1/12: "very late")

The same seed gives the same draws in the same order, so a failing seed
replays bit for bit (the devices ask in virtual-time order, which the run
itself determines).  Each draw is recorded (``draws``) for the report and the
trace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import ConfigError

# (probability weight, lowest factor, highest factor) of each band, as the docstring's table.
_BANDS = ((2, 0.125, 0.5), (6, 0.5, 2.0), (3, 2.0, 8.0), (1, 16.0, 64.0))
_WEIGHTS = tuple(w for w, _, _ in _BANDS)


@dataclass(frozen=True, slots=True)
class Draw:
    """One timing decision: what it was for, the nominal ticks and the ticks chosen."""

    what: str
    nominal: int
    ticks: int


class Timing:
    """The timing source of one board; ``seed`` None: every delay is its nominal value."""

    def __init__(self, seed: int | None = None, *, record_limit: int = 10_000) -> None:
        if seed is not None and (not isinstance(seed, int) or isinstance(seed, bool) or seed < 0):
            raise ConfigError(f"a timing seed is a non-negative integer, not {seed!r}")
        self.seed = seed
        self._rng = random.Random(seed) if seed is not None else None
        self.draws: list[Draw] = []
        self._record_limit = record_limit
        self.draw_count = 0

    @property
    def varied(self) -> bool:
        return self._rng is not None

    def delay(self, nominal: int, what: str) -> int:
        """Ticks an operation takes: ``nominal`` (>= 0), or a seeded variation of it (>= 0)."""
        if self._rng is None or nominal <= 0:
            return nominal
        _, low, high = self._rng.choices(_BANDS, weights=_WEIGHTS)[0]
        ticks = max(0, round(nominal * self._rng.uniform(low, high)))
        self.draw_count += 1
        if len(self.draws) < self._record_limit:
            self.draws.append(Draw(what, nominal, ticks))
        return ticks

    def choice(self, n: int, what: str) -> int:
        """An index in ``range(n)``: 0 without a seed (the nominal, in-order choice), else seeded."""
        if self._rng is None or n <= 1:
            return 0
        self.draw_count += 1
        return self._rng.randrange(n)

    def __repr__(self) -> str:
        return f"Timing(seed={self.seed})" if self.varied else "Timing(nominal)"
