"""hwsim.teach.tlb_quiz and ``hwsim mmu tlb-quiz``: answers replayed on a plain list-based LRU TLB with the
specification's walk, golden transcripts, errors."""

from __future__ import annotations

import collections
import json

import pytest
from golden import check_golden
from spec_walk import spec_translate

from hwsim.cli import main
from hwsim.mmu.bits import PAGE_SIZE, SV39, make_satp
from hwsim.mmu.tlb import GLOBAL
from hwsim.teach.tlb_quiz import RAM_BASE, RAM_SIZE, TOPICS, format_answer, format_exercise, make_exercise, make_quiz


class ListTlb:
    """The TLB rules written out plainly: a list, least recently used first, of (tag, page va, size, page pa)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.entries: list[tuple] = []

    def lookup(self, asid: int, va: int):
        for e in self.entries:
            if e[0] in (asid, "G") and e[1] <= va < e[1] + e[2]:
                self.entries.remove(e)
                self.entries.append(e)
                return e
        return None

    def fill(self, entry) -> list:
        self.entries.append(entry)
        evicted = []
        while len(self.entries) > self.capacity:
            evicted.append(self.entries.pop(0))
        return evicted

    def fence(self, va, asid) -> list:
        def doomed(e):
            covers = va is None or e[1] <= va < e[1] + e[2]
            return covers and (asid is None or e[0] == asid)

        gone = [e for e in self.entries if doomed(e)]
        self.entries = [e for e in self.entries if not doomed(e)]
        return gone


def tag(asid, tr):
    return ("G" if asid == GLOBAL else asid, tr.page_va, tr.page_size, tr.page_pa)


def replay(ex) -> list[tuple]:
    """Each step's outcome by the plain model, walks by tests/spec_walk.py on the tables as they are then."""
    phys, spaces = ex.build()
    tlb = ListTlb(ex.capacity)
    out = []
    for op in ex.ops:
        if op.kind == "access":
            hit = tlb.lookup(op.asid, op.va)
            if hit is not None:
                out.append(("hit", hit))
            else:
                space = spaces[op.asid]
                spec = spec_translate(
                    phys.read(RAM_BASE, RAM_SIZE),
                    RAM_BASE,
                    make_satp(SV39, space.root >> 12, op.asid),
                    op.va,
                    op.access.value,
                    op.priv.name,
                    False,
                    False,
                )
                if spec[0] == "fault":
                    out.append(("fault", spec[1]))
                else:
                    m = next(m for m in ex.mappings if m.asid in (op.asid, None) and m.va <= op.va < m.va + m.size)
                    entry = ("G" if m.asid is None else op.asid, op.va & ~(m.size - 1), m.size, spec[1] & ~(m.size - 1))
                    out.append(("fill", entry, tuple(tlb.fill(entry))))
        elif op.kind == "sfence":
            out.append(("fence", tuple(tlb.fence(op.va, op.asid))))
        else:
            if op.kind == "remap":
                flags = next(m.flags for m in ex.mappings if m.asid == op.asid and m.va == op.va)
                spaces[op.asid].unmap(op.va, PAGE_SIZE)
                spaces[op.asid].map(op.va, op.pa, PAGE_SIZE, flags)
            elif op.kind == "unmap":
                spaces[op.asid].unmap(op.va, PAGE_SIZE)
            out.append((op.kind,))
        out[-1] = out[-1] + (tuple(tlb.entries),)
    return out


def model(steps) -> list[tuple]:
    """The same outcomes, read from the exercise's answer (hwsim's Tlb and walker)."""
    out = []
    for s in steps:
        if s.op.kind == "access":
            if s.hit is not None:
                r = ("hit", tag(s.op.asid if not s.hit.global_ else GLOBAL, s.hit))
            elif s.fault is not None:
                r = ("fault", int(s.fault.split("(cause ")[1].split(")")[0]))
            else:
                r = (
                    "fill",
                    tag(GLOBAL if s.filled.global_ else s.op.asid, s.filled),
                    tuple(tag(a, t) for a, t in s.evicted),
                )
        elif s.op.kind == "sfence":
            r = ("fence", tuple(tag(a, t) for a, t in s.removed))
        else:
            r = (s.op.kind,)
        out.append(r + (tuple(tag(a, t) for a, t in s.entries),))
    return out


def test_answers_agree_with_a_plain_lru_model_on_thousands_of_exercises():
    seen = collections.Counter()
    exercises = 0
    for topic in TOPICS:
        for seed in range(250):
            ex = make_exercise(seed, 1, [topic])
            steps = ex.solve()
            assert model(steps) == replay(ex), (topic, seed)
            exercises += 1
            for step in steps:
                if step.hit is not None:
                    seen[
                        "stale hit"
                        if step.walked is None or step.walked.pa != step.hit.pa_of(step.op.va)
                        else "global hit"
                        if step.hit.global_
                        else "hit"
                    ] += 1
                seen["eviction"] += bool(step.evicted)
                seen["fault"] += step.fault is not None
                seen["fence removed"] += bool(step.removed)
                seen[f"fence {step.op.va is not None}/{step.op.asid is not None}"] += step.op.kind == "sfence"
                seen["superpage"] += step.filled is not None and step.filled.page_size > PAGE_SIZE
    assert exercises == 1000 and sum(seen[k] for k in ("hit", "global hit", "stale hit")) > 3000
    assert all(
        seen[k] > 20
        for k in (
            "stale hit",
            "global hit",
            "hit",
            "eviction",
            "fault",
            "fence removed",
            "fence True/True",
            "fence True/False",
            "fence False/True",
            "fence False/False",
            "superpage",
        )
    ), seen


def test_lru_exercises_always_evict_and_none_is_an_answer():
    """An lru exercise asks which entry each miss evicts: some miss must evict one.  In any exercise a miss that
    evicts nothing says so ("evicts none"), as the question allows."""
    for seed in range(150):
        ex = make_exercise(seed, 1, ["lru"])
        assert any(step.evicted for step in ex.solve()), seed
    for topic in TOPICS:
        for seed in range(30):
            ex = make_exercise(seed, 2, [topic])
            assert 'the entry a miss evicts ("none" when it fills a' in "\n".join(format_exercise(ex))
            for step, line in zip(ex.solve(), format_answer(ex)[1::2]):
                if step.op.kind == "access" and step.hit is None:
                    assert ("evicts none" in line) == (not step.evicted), line
                    assert line.endswith(" (least recently used)") == bool(step.evicted), line


def test_the_count_line_says_1_hit_not_1_hits():
    ones = 0
    for seed in range(40):
        ex = make_exercise(seed, 1)
        accesses = [s for s in ex.solve() if s.op.kind == "access"]
        hits = sum(1 for s in accesses if s.hit is not None)
        misses = len(accesses) - hits
        assert format_answer(ex)[-1] == (
            f"  {hits} {'hit' if hits == 1 else 'hits'}, {misses} {'miss' if misses == 1 else 'misses'} "
            f"in {len(accesses)} accesses"
        )
        ones += hits == 1 or misses == 1
    assert ones


def test_same_seed_same_exercise():
    assert make_quiz(8, 5)[4] == make_exercise(8, 5)
    assert all(e.topic == "sfence" for e in make_quiz(8, 6, ["sfence"]))


@pytest.mark.parametrize(
    "argv,golden",
    [
        (["--seed", "1", "--solve"], "tlb_quiz_seed1_solve.txt"),
        (["--seed", "2", "--count", "1", "--topic", "stale"], "tlb_quiz_seed2_stale.txt"),
    ],
)
def test_golden_transcripts(argv, golden, capsys):
    assert main(["mmu", "tlb-quiz", *argv]) == 0
    check_golden(golden, capsys.readouterr().out)


def test_json(capsys):
    assert main(["mmu", "tlb-quiz", "--seed", "5", "--count", "1", "--json", "--solve"]) == 0
    j = json.loads(capsys.readouterr().out)
    ex = j["exercises"][0]
    assert j["command"] == "hwsim mmu tlb-quiz --seed 5 --count 1" and ex["capacity"] in (2, 4)
    assert len(ex["answers"]) == len(ex["ops"]) and ex["topic"] in TOPICS


def test_errors(capsys):
    assert main(["mmu", "tlb-quiz", "--seed", "-5"]) == 2
    assert capsys.readouterr().err.strip() == "hwsim: error: --seed must be an integer from 0 to 2^64-1, not -5"
