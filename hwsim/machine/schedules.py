"""How the hart scheduler picks the next hart: ``random`` (the default) or ``pct`` (probabilistic concurrency testing).

::

    random        each turn: a runnable hart drawn uniformly, a budget of budget[0]..budget[1]
    pct:D[:K]     PCT (Burckhardt, Kothari, Musuvathi, Nagarakatte, ASPLOS 2010):
                  at the start: distinct random priorities D .. D+n-1, one per hart;
                                D-1 change points k_1 < .. < k_(D-1) drawn from steps 1 .. K
                  each step (a turn):  the runnable hart of highest priority runs;
                                       at step k_i it first drops to priority D-i (below every
                                       initial one), and the highest runnable hart is chosen again
                  after step K:        a runnable hart drawn uniformly (as random), so that a hart
                                       spinning at the top cannot starve the one it waits for
                  budgets:             budget[0]..budget[1] instructions a step, as random

Every draw comes from the scheduler's ``random.Random(seed)``, so a seed replays the same
interleaving under either.  PCT finds a bug of depth ``d`` (``d`` ordering constraints between the
harts) with probability at least ``1 / (n * K**(d-1))`` per run: it spends the randomness on a few
well-placed preemptions instead of a preemption every few instructions.  A race between two harts
(a read-modify-write cut between its load and its store) has depth 2.  ``K`` is the run's length in
steps; without it, ``hwsim run`` measures one run under ``random`` with seed 0
(``driver/explore.py``, ``estimate_steps``) and uses its turn count.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import ConfigError

DEFAULT_PCT_DEPTH = 3


@dataclass(frozen=True, slots=True)
class RandomSchedule:
    """A runnable hart drawn uniformly each turn (the scheduler's default)."""

    name = "random"

    def start(self, rng: random.Random, hartids: list[int]) -> _RandomPicker:
        return _RandomPicker(rng)

    def format(self) -> str:
        return "random"


@dataclass(frozen=True, slots=True)
class PctSchedule:
    """PCT of depth ``depth`` over an estimated ``steps`` turns (None: not estimated yet)."""

    depth: int = DEFAULT_PCT_DEPTH
    steps: int | None = None
    measured: bool = False  # ``steps`` came from a measuring run (estimate_steps), not from the user

    name = "pct"

    def __post_init__(self) -> None:
        if not isinstance(self.depth, int) or isinstance(self.depth, bool) or self.depth < 1:
            raise ConfigError(f"a PCT depth must be an integer >= 1, not {self.depth!r}")
        if self.steps is not None and (not isinstance(self.steps, int) or self.steps < 1):
            raise ConfigError(f"a PCT run length must be an integer >= 1 steps, not {self.steps!r}")

    def start(self, rng: random.Random, hartids: list[int]) -> _PctPicker:
        if self.steps is None:
            raise ConfigError("a PCT schedule needs the run's estimated length in steps (pct:DEPTH:STEPS)")
        return _PctPicker(rng, hartids, self.depth, self.steps)

    def format(self) -> str:
        """The ``--schedule`` value that gives this schedule back (the length when the user gave it)."""
        return f"pct:{self.depth}" if self.measured or self.steps is None else f"pct:{self.depth}:{self.steps}"


Schedule = RandomSchedule | PctSchedule


def parse_schedule(text: str) -> Schedule:
    """``random``, ``pct``, ``pct:DEPTH`` or ``pct:DEPTH:STEPS``."""
    name, _, rest = text.partition(":")
    if name == "random" and not rest:
        return RandomSchedule()
    if name == "pct":
        parts = rest.split(":") if rest else []
        try:
            numbers = [int(p, 0) for p in parts]
        except ValueError:
            numbers = None
        if numbers is not None and len(numbers) <= 2:
            depth = numbers[0] if numbers else DEFAULT_PCT_DEPTH
            return PctSchedule(depth, numbers[1] if len(numbers) == 2 else None)
    raise ConfigError(f"a schedule is random, pct, pct:DEPTH or pct:DEPTH:STEPS, not {text!r}")


class _RandomPicker:
    __slots__ = ("_rng",)

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def pick(self, runnable: list[int], step: int) -> int:
        return self._rng.choice(runnable)


class _PctPicker:
    __slots__ = ("_rng", "_priority", "_changes", "_steps", "_depth")

    def __init__(self, rng: random.Random, hartids: list[int], depth: int, steps: int) -> None:
        self._rng = rng
        self._depth = depth
        self._steps = steps
        self._priority = dict(zip(hartids, rng.sample(range(depth, depth + len(hartids)), len(hartids))))
        count = min(depth - 1, steps)
        # step -> the priority a hart running at that step drops to (D-1 for k_1, D-2 for k_2, ...)
        self._changes = {k: depth - 1 - i for i, k in enumerate(sorted(rng.sample(range(1, steps + 1), count)))}

    def pick(self, runnable: list[int], step: int) -> int:
        if step > self._steps:
            return self._rng.choice(runnable)
        best = max(runnable, key=self._priority.__getitem__)
        low = self._changes.get(step)
        if low is not None:
            self._priority[best] = low
            best = max(runnable, key=self._priority.__getitem__)
        return best
