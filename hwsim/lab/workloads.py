"""The page-fault lab's reference workloads: reference strings over a few virtual pages, as data.

Each workload is a list of ``(page, is_write)``; the same name always gives the same string (the
random ones draw from a fixed seed).  ``belady`` is the classic string on which FIFO faults more with
4 frames than with 3.
"""

from __future__ import annotations

import random

from .policies import Ref

MAX_PAGES = 64  # virtual pages of the lab's paged region (one leaf table holds them all)


def _scan() -> list[Ref]:
    """Sequential scan: 12 pages read in order three times, the last pass writing."""
    return [(p, False) for p in range(12)] * 2 + [(p, True) for p in range(12)]


def _loop() -> list[Ref]:
    """A loop over 6 pages, ten times: bigger than memory with fewer than 6 frames (every page written once a
    pass)."""
    refs: list[Ref] = []
    for n in range(10):
        refs += [(p, p == n % 6) for p in range(6)]
    return refs


def _random() -> list[Ref]:
    """300 references drawn uniformly from 12 pages, a third of them writes."""
    rng = random.Random(22)
    return [(rng.randrange(12), rng.random() < 1 / 3) for _ in range(300)]


def _shift() -> list[Ref]:
    """A working set of 3 pages for 100 references, then another 3, then the first again; 15% of the references
    stray to 4 other pages, a quarter are writes: how fast each policy follows the shift."""
    rng = random.Random(7)
    refs: list[Ref] = []
    for pages in ((0, 1, 2), (4, 5, 6), (0, 1, 2)):
        for _ in range(100):
            page = rng.choice(pages) if rng.random() < 0.85 else rng.randrange(8, 12)
            refs.append((page, rng.random() < 0.25))
    return refs


def _belady() -> list[Ref]:
    """1 2 3 4 1 2 5 1 2 3 4 5: FIFO faults 9 times with 3 frames and 10 times with 4."""
    return [(p, False) for p in (1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5)]


WORKLOADS = {
    "scan": _scan,
    "loop": _loop,
    "random": _random,
    "shift": _shift,
    "belady": _belady,
}


def describe(name: str) -> str:
    doc = WORKLOADS[name].__doc__ or ""
    return " ".join(doc.split())


def get_workload(name: str) -> list[Ref]:
    try:
        return WORKLOADS[name]()
    except KeyError:
        raise KeyError(f"unknown workload {name!r}: one of {', '.join(WORKLOADS)}") from None
