"""Page-replacement exercises, generated from a seed, answered by the lab's model (``hwsim lab replace-quiz``).

A reference string over a few pages (``3w``: a write to page 3), a number of frames (empty at the
start) and a policy: FIFO, clock (second chance), LRU, OPT or aging.  The student gives the number
of faults, the page a given fault evicts, the number of write-backs, or FIFO's faults with one frame
more (Belady's anomaly).  The rules are ``hwsim.lab.policies``' (free frames lowest first; the clock
hand and FIFO's queue start at frame 0; aging ticks every 4 references; ties go to the lowest frame),
the same the page-fault lab's reference handlers follow on the emulated CPU; the tests check the
answers against a separate straight-line model.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import ConfigError
from ..lab.policies import DEFAULT_TICK, Outcome, Policy, Ref, format_refs, simulate
from ..mmu.report import plural
from . import topics
from .mmu_quiz import check_seed_and_count

TOPICS = topics.REPLACE
CLASSIC = (1, 2, 3, 4, 1, 2, 5, 1, 2, 3, 4, 5)  # Belady's string: FIFO faults 9 times with 3 frames, 10 with 4


@dataclass(frozen=True)
class ReplaceExercise:
    seed: int
    number: int
    topic: str
    policy: Policy
    frames: int
    refs: tuple[Ref, ...]
    step: int | None = None  # victim: the reference (from 1) whose fault evicts the page asked for

    def solve(self, frames: int | None = None) -> Outcome:
        return simulate(self.policy, self.refs, frames or self.frames, tick=DEFAULT_TICK)

    def answer(self) -> int | tuple[int, int]:
        """faults / write-backs: a count; victim: a page; anomaly: (faults with frames, with frames + 1)."""
        outcome = self.solve()
        if self.topic == "faults":
            return outcome.counts.faults
        if self.topic == "write-backs":
            return outcome.counts.write_backs
        if self.topic == "victim":
            assert self.step is not None
            victim = outcome.steps[self.step - 1].victim
            assert victim is not None
            return victim
        return outcome.counts.faults, self.solve(self.frames + 1).counts.faults


def make_exercise(seed: int, number: int, topics: list[str] | None = None) -> ReplaceExercise:
    """Exercise ``number`` (from 1) of ``seed``, on a topic drawn from ``topics`` (default: all)."""
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-replace-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    if topic == "anomaly":
        if rng.random() < 0.5:  # Belady's own string, pages renamed
            names = rng.sample(range(10), 5)
            refs = tuple((names[p - 1], False) for p in CLASSIC)
            return ReplaceExercise(seed, number, topic, Policy.FIFO, 3, refs)
        frames = rng.choice([2, 3, 3, 4])
        refs = tuple((rng.randrange(frames + 2), False) for _ in range(rng.randint(10, 14)))
        return ReplaceExercise(seed, number, topic, Policy.FIFO, frames, refs)
    policies = [Policy.FIFO, Policy.CLOCK, Policy.LRU, Policy.OPT, Policy.AGING]
    policy = rng.choice(policies if topic != "write-backs" else [Policy.FIFO, Policy.CLOCK, Policy.LRU])
    frames = rng.choice([3, 3, 4])
    npages = frames + rng.choice([1, 2, 3])
    writes = 0.35 if topic == "write-backs" else 0.2
    while True:  # a victim question needs a fault that evicts
        refs = tuple((rng.randrange(npages), rng.random() < writes) for _ in range(rng.randint(10, 14)))
        outcome = simulate(policy, refs, frames)
        evicting = [s.index + 1 for s in outcome.steps if s.victim is not None]
        if topic != "victim":
            return ReplaceExercise(seed, number, topic, policy, frames, refs)
        if evicting:
            return ReplaceExercise(seed, number, topic, policy, frames, refs, rng.choice(evicting))


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None) -> list[ReplaceExercise]:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics) for n in range(1, count + 1)]


# -- presentation -----------------------------------------------------------------------------------------------


def preamble() -> list[str]:
    return [
        "Rules: frames are empty at the start and free frames are taken lowest first.  A reference sets the",
        "page's R bit (A), a write its M bit (D); a page loaded by a fault has R=1 (and M=1 for a write).",
        "FIFO evicts the oldest page.  Clock: a hand starts at frame 0; R=1 -> clear it and move on, R=0 ->",
        "the victim, and the hand moves past it.  LRU: the least recently used page.  OPT: the page used",
        "farthest in the future (or never).  Aging: every 4 references (before references 5, 9, 13, ...)",
        "each counter becomes counter >> 1 | R << 7 and R is cleared; new pages start at 0; the victim has",
        "the smallest R << 8 | counter.  Ties: the lowest frame.  An evicted page with M=1 is written back.",
    ]


def _question(ex: ReplaceExercise) -> str:
    if ex.topic == "faults":
        return "How many page faults?"
    if ex.topic == "write-backs":
        return "How many write-backs (evicted pages with M=1)?"
    if ex.topic == "victim":
        page, write = ex.refs[ex.step - 1] if ex.step else (0, False)
        return f"Reference {ex.step} ({page}{'w' if write else ''}) faults: which page does it evict?"
    return f"How many faults with {ex.frames} frames, and with {ex.frames + 1}?"


def format_exercise(ex: ReplaceExercise) -> list[str]:
    return [
        f"Exercise {ex.number} ({ex.topic}): {ex.frames} frames, {ex.policy.title}",
        f"  references: {format_refs(ex.refs)}",
        f"  {_question(ex)}",
    ]


def _trace(ex: ReplaceExercise, frames: int) -> list[str]:
    outcome = simulate(ex.policy, ex.refs, frames, tick=DEFAULT_TICK, explain=True)
    lines: list[tuple[str, str, str]] = []
    for s in outcome.steps:
        what = "hit"
        if s.fault:
            what = "fault" if s.victim is None else f"fault, evicts {s.victim}"
            if s.written_back:
                what += " (M=1: written back)"
        tick = " (tick first)" if ex.policy is Policy.AGING and s.index and s.index % DEFAULT_TICK == 0 else ""
        lines.append((f"  {s.index + 1:>3}. {s.page}{'w' if s.write else ''}", s.state, f"{what}{tick}"))
    width = max(len(state) for _, state, _ in lines)
    return [f"{ref:<10}{state:<{width}}  {what}" for ref, state, what in lines]


def _legend(ex: ReplaceExercise) -> str:
    extra = {Policy.CLOCK: ", and where the hand points", Policy.FIFO: ", and the oldest frame (the hand)"}
    counters = ", (xx) the aging counter in hex" if ex.policy is Policy.AGING else ""
    return f"Frames after each reference (* R=1, + M=1{counters}{extra.get(ex.policy, '')}):"


def format_answer(ex: ReplaceExercise) -> list[str]:
    answer = ex.answer()
    if ex.topic == "anomaly":
        assert isinstance(answer, tuple)
        few, more = answer
        verdict = (
            "more frames, more faults: Belady's anomaly"
            if more > few
            else "no anomaly here (FIFO is not a stack algorithm, so it can happen on other strings)"
        )
        lines = [f"Answer: {few} faults with {ex.frames} frames, {more} with {ex.frames + 1}: {verdict}."]
        for frames in (ex.frames, ex.frames + 1):
            lines.append(f"With {frames} frames. {_legend(ex)}")
            lines += _trace(ex, frames)
        return lines
    assert isinstance(answer, int)
    if ex.topic == "victim":
        head = f"Answer: page {answer}."
    elif ex.topic == "faults":
        head = f"Answer: {plural(answer, 'fault')}."
    else:
        head = f"Answer: {plural(answer, 'write-back')}."
    return [head, _legend(ex), *_trace(ex, ex.frames)]


def exercise_to_json(ex: ReplaceExercise, *, solve: bool) -> dict:
    out: dict = {
        "number": ex.number,
        "topic": ex.topic,
        "policy": ex.policy.value,
        "frames": ex.frames,
        "references": format_refs(ex.refs),
        "question": _question(ex),
    }
    if ex.step is not None:
        out["step"] = ex.step
    if solve:
        answer = ex.answer()
        out["answer"] = list(answer) if isinstance(answer, tuple) else answer
    return out
