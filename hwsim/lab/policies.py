"""Page-replacement policies as a Python model: FIFO, clock (second chance), aging, LRU and OPT.

The model is what the lab's reference C handlers are held to, count for count
(``tests/test_lab_paging.py``), and what the ``replace`` quiz answers with.
Its rules are the lab's contract, written once here:

* Frames are numbered 0..N-1.  While a frame is free, a fault takes the
  lowest free one (no policy is asked).
* A reference sets the page's R bit (the PTE's A bit, set by the MMU) and a
  write its M bit (D).  A page loaded by a fault is referenced by the access
  that faulted, so it starts with R=1, and M=1 when that access is a write.
* Evicting a page with M=1 writes it back (a write-back); every fault reads
  the page in (a page-in).
* FIFO: a hand over the frames; the victim is the frame under the hand, which
  then moves on.  The oldest page is always under the hand.
* Clock (second chance): the same hand; a frame whose page has R=1 gets R
  cleared and the hand moves on; the first with R=0 is the victim, and the
  hand moves past it.
* Aging: every ``tick`` references (before reference i for each i > 0 that
  is a multiple of ``tick``) each resident page's 8-bit counter becomes
  ``counter >> 1 | R << 7`` and R is cleared.  A page's counter starts at 0
  when it is loaded.  The victim has the smallest ``R << 8 | counter`` (R not
  yet shifted in counts above every past tick); the lowest frame on a tie.
* LRU: the page used least recently (the hardware cannot tell this; the model
  shows what the approximations aim at).
* OPT (Belady): the page whose next use is farthest away (never: farthest of
  all); the lowest frame on a tie.  No policy has fewer faults.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

Ref = tuple[int, bool]  # (page, is a write)

DEFAULT_TICK = 4  # references between two aging ticks


class Policy(enum.Enum):
    """A replacement policy: its value is its name on the command line."""

    FIFO = "fifo"
    CLOCK = "clock"
    AGING = "aging"
    LRU = "lru"
    OPT = "opt"

    @property
    def title(self) -> str:
        return _TITLES[self]


_TITLES = {
    Policy.FIFO: "FIFO",
    Policy.CLOCK: "clock (second chance)",
    Policy.AGING: "aging (8-bit counters)",
    Policy.LRU: "LRU",
    Policy.OPT: "OPT (Belady)",
}


@dataclass(frozen=True, slots=True)
class Step:
    """What one reference did: ``frame`` holds ``page`` afterwards; on a fault, ``victim`` is the page
    evicted (None while a frame was free) and ``written_back`` whether it was dirty."""

    index: int
    page: int
    write: bool
    fault: bool
    frame: int
    victim: int | None = None
    written_back: bool = False
    state: str = ""  # with explain=True: the frames afterwards, as format_state writes them


class Counts(NamedTuple):
    faults: int
    page_ins: int
    write_backs: int

    def to_json(self) -> dict[str, int]:
        return {"faults": self.faults, "page_ins": self.page_ins, "write_backs": self.write_backs}


@dataclass(frozen=True, slots=True)
class Outcome:
    policy: Policy
    frames: int
    steps: tuple[Step, ...]

    @property
    def counts(self) -> Counts:
        faults = sum(s.fault for s in self.steps)
        return Counts(faults, faults, sum(s.written_back for s in self.steps))

    @property
    def faults(self) -> int:
        return sum(s.fault for s in self.steps)


def _next_uses(refs: Sequence[Ref]) -> list[int]:
    """For each position, where its page is used next (len(refs) for never)."""
    following: dict[int, int] = {}
    out = [0] * len(refs)
    for i in range(len(refs) - 1, -1, -1):
        page = refs[i][0]
        out[i] = following.get(page, len(refs))
        following[page] = i
    return out


def format_state(policy: Policy, holder, referenced, modified, counter, hand: int) -> str:
    """``[3* 1*+ -]``: each frame's page, ``*`` for R=1, ``+`` for M=1 (``-``: free); the clock hand, or
    the aging counters."""
    cells = []
    for f, page in enumerate(holder):
        cell = "-" if page is None else f"{page}{'*' if referenced[f] else ''}{'+' if modified[f] else ''}"
        if policy is Policy.AGING and page is not None:
            cell += f"({counter[f]:02x})"
        cells.append(cell)
    text = f"[{' '.join(cells)}]"
    if policy in (Policy.CLOCK, Policy.FIFO):
        text += f" hand {hand}"
    return text


def simulate(
    policy: Policy | str, refs: Sequence[Ref], frames: int, *, tick: int = DEFAULT_TICK, explain: bool = False
) -> Outcome:
    """Run ``refs`` through ``policy`` with ``frames`` frames (``explain``: each step's state too)."""
    policy = Policy(policy)
    if frames <= 0:
        raise ValueError(f"frames must be positive, not {frames}")
    if tick <= 0:
        raise ValueError(f"tick must be positive, not {tick}")
    holder: list[int | None] = [None] * frames  # frame -> page
    where: dict[int, int] = {}  # page -> frame
    referenced = [False] * frames
    modified = [False] * frames
    counter = [0] * frames
    last_use = [0] * frames
    next_use = [0] * frames
    nexts = _next_uses(refs) if policy is Policy.OPT else []
    hand = 0
    steps: list[Step] = []
    for i, (page, write) in enumerate(refs):
        if policy is Policy.AGING and i and i % tick == 0:
            for f in range(frames):
                if holder[f] is not None:
                    counter[f] = counter[f] >> 1 | (0x80 if referenced[f] else 0)
                    referenced[f] = False
        frame = where.get(page)
        if frame is not None:
            referenced[frame] = True
            modified[frame] = modified[frame] or write
            last_use[frame] = i
            if nexts:
                next_use[frame] = nexts[i]
            state = format_state(policy, holder, referenced, modified, counter, hand) if explain else ""
            steps.append(Step(i, page, write, False, frame, state=state))
            continue
        victim: int | None = None
        dirty = False
        if None in holder:
            frame = holder.index(None)
        else:
            if policy is Policy.FIFO:
                frame, hand = hand, (hand + 1) % frames
            elif policy is Policy.CLOCK:
                while referenced[hand]:
                    referenced[hand] = False
                    hand = (hand + 1) % frames
                frame, hand = hand, (hand + 1) % frames
            elif policy is Policy.AGING:
                frame = min(range(frames), key=lambda f: (referenced[f] << 8 | counter[f], f))
            elif policy is Policy.LRU:
                frame = min(range(frames), key=lambda f: last_use[f])
            else:
                frame = min(range(frames), key=lambda f: (-next_use[f], f))
            victim = holder[frame]
            dirty = modified[frame]
            del where[victim]  # type: ignore[arg-type]
        holder[frame] = page
        where[page] = frame
        referenced[frame] = True
        modified[frame] = write
        counter[frame] = 0
        last_use[frame] = i
        if nexts:
            next_use[frame] = nexts[i]
        state = format_state(policy, holder, referenced, modified, counter, hand) if explain else ""
        steps.append(Step(i, page, write, True, frame, victim, dirty, state))
    return Outcome(policy, frames, tuple(steps))


def parse_refs(text: str) -> list[Ref]:
    """``"1 2 3w 1"``: pages separated by spaces or commas, ``w`` after a page for a write."""
    refs: list[Ref] = []
    for word in text.replace(",", " ").split():
        write = word[-1] in "wW"
        number = word[:-1] if write else word
        if not number.isdigit():
            raise ValueError(f"not a page number: {word!r} (write pages as 3, or 3w for a write)")
        refs.append((int(number), write))
    return refs


def format_refs(refs: Sequence[Ref]) -> str:
    return " ".join(f"{page}{'w' if write else ''}" for page, write in refs)
