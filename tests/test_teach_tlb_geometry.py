"""``hwsim mmu tlb-quiz --sets/--ways/--policy/--split/--difficulty``: set-associative TLBs
(hwsim.mmu.tlb_sa) replayed on a plain model written out here, on thousands of exercises; the
default exercise is untouched (tests/test_teach_tlb_quiz.py holds it to its golden transcripts)."""

from __future__ import annotations

import json
import random

import pytest
from spec_walk import spec_translate
from test_teach_tlb_quiz import tag

from hwsim.cli import main
from hwsim.errors import ConfigError
from hwsim.mmu.bits import PAGE_SIZE, SV39, make_satp
from hwsim.mmu.tlb import GLOBAL
from hwsim.mmu.tlb_sa import SetAssocTlb
from hwsim.riscv.priv import Access
from hwsim.teach.tlb_quiz import RAM_BASE, RAM_SIZE, Geometry, format_answer, make_exercise


class PlainSets:
    """Sets of (tag, page va, size, page pa), each in victim order; the set is (page va / size) mod sets."""

    def __init__(self, sets: int, ways: int, policy: str, seed: str) -> None:
        self.sets = [[] for _ in range(sets)]
        self.ways, self.policy = ways, policy
        self.rng = random.Random(seed)

    def lookup(self, asid: int, va: int):
        for size in sorted({e[2] for s in self.sets for e in s}):
            s = self.sets[(va // size) % len(self.sets)]
            for e in s:
                if e[0] in (asid, "G") and e[2] == size and e[1] == va // size * size:
                    if self.policy == "lru":
                        s.remove(e)
                        s.append(e)
                    return e
        return None

    def fill(self, entry) -> list:
        s = self.sets[(entry[1] // entry[2]) % len(self.sets)]
        evicted = []
        if len(s) == self.ways:
            victim = self.rng.randrange(len(s)) if self.policy == "random" else 0
            evicted.append(s.pop(victim))
        s.append(entry)
        return evicted

    def fence(self, va, asid) -> list:
        gone = []
        for s in self.sets:
            for e in list(s):
                if (va is None or e[1] <= va < e[1] + e[2]) and (asid is None or e[0] == asid):
                    s.remove(e)
                    gone.append(e)
        return gone


def replay(ex) -> list[tuple]:
    g = ex.geometry
    phys, spaces = ex.build()
    seed = f"hwsim-tlb-quiz-random:{ex.seed}:{ex.number}"
    tlbs = (
        {"I": PlainSets(g.sets, g.ways, g.policy, seed), "D": PlainSets(g.sets, g.ways, g.policy, seed + ":D")}
        if g.split
        else {"": PlainSets(g.sets, g.ways, g.policy, seed)}
    )
    out = []
    for op in ex.ops:
        if op.kind == "access":
            tlb = tlbs[("I" if op.access is Access.FETCH else "D") if g.split else ""]
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
            out.append(("fence", tuple(sorted((e for t in tlbs.values() for e in t.fence(op.va, op.asid)), key=repr))))
        else:
            if op.kind == "remap":
                flags = next(m.flags for m in ex.mappings if m.asid == op.asid and m.va == op.va)
                spaces[op.asid].unmap(op.va, PAGE_SIZE)
                spaces[op.asid].map(op.va, op.pa, PAGE_SIZE, flags)
            elif op.kind == "unmap":
                spaces[op.asid].unmap(op.va, PAGE_SIZE)
            out.append((op.kind,))
        out[-1] = out[-1] + (tuple(tuple(tuple(s) for s in t.sets) for t in tlbs.values()),)
    return out


def model(steps) -> list[tuple]:
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
            r = ("fence", tuple(sorted((tag(a, t) for a, t in s.removed), key=repr)))
        else:
            r = (s.op.kind,)
        layout = tuple(tuple(tuple(tag(a, t) for a, t in entries) for entries in sets) for _name, sets in s.sets)
        out.append(r + (layout,))
    return out


GEOMETRIES = [
    Geometry(1, 4, "lru"),
    Geometry(2, 2, "lru"),
    Geometry(4, 1, "lru"),
    Geometry(2, 2, "fifo"),
    Geometry(2, 2, "random"),
    Geometry(1, 2, "fifo", split=True),
    Geometry(2, 1, "lru", split=True),
    Geometry(4, 2, "random", split=True),
]


@pytest.mark.parametrize(
    "geometry", GEOMETRIES, ids=lambda g: f"{g.sets}x{g.ways}-{g.policy}{'-split' if g.split else ''}"
)
def test_answers_agree_with_a_plain_set_model(geometry):
    evictions = 0
    for seed in range(400):
        ex = make_exercise(seed, 1, geometry=geometry, difficulty=["easy", "medium", "hard", None][seed % 4])
        steps = ex.solve()
        assert model(steps) == replay(ex), (geometry, seed)
        evictions += sum(1 for s in steps if s.evicted)
        if seed < 40:
            format_answer(ex)  # renders
    assert evictions > 100


def test_geometry_of_one_set_with_lru_is_the_default_tlb():
    """1 set x 4 ways LRU is the default fully associative TLB: the same hits, fills and evictions."""
    for seed in range(200):
        plain = make_exercise(seed, 1, ["lru"])
        if plain.capacity != 4:
            continue
        ex = make_exercise(seed, 1, ["lru"], geometry=Geometry(1, 4))
        if ex.ops != plain.ops:
            continue  # the lru topic redraws until something is evicted; draws may differ
        a = [(s.hit, s.filled, s.evicted, s.removed) for s in plain.solve()]
        b = [(s.hit, s.filled, s.evicted, s.removed) for s in ex.solve()]
        assert a == b, seed


def test_set_of_an_entry_is_its_vpn_at_its_own_level():
    t = SetAssocTlb(sets=4, ways=1)
    assert t.set_of(0, 0x3000) == 3 and t.set_of(1, 0x3000) == 0 and t.set_of(1, 0x600000) == 3


def test_difficulty_changes_length():
    lengths = {
        d: sum(len(make_exercise(s, 1, ["asid"], difficulty=d).ops) for s in range(50)) / 50
        for d in ("easy", "medium", "hard")
    }
    assert lengths["easy"] < lengths["medium"] < lengths["hard"]
    with pytest.raises(ConfigError, match="unknown difficulty 'impossible'"):
        make_exercise(1, 1, difficulty="impossible")


def test_cli_options(capsys):
    args = ["mmu", "tlb-quiz", "--seed", "3", "--count", "1", "--sets", "2", "--ways", "2", "--policy", "fifo"]
    assert main([*args, "--split", "--difficulty", "hard", "--solve"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0] == (
        "hwsim mmu tlb-quiz --seed 3 --count 1 --sets 2 --ways 2 --policy fifo --difficulty hard --split --solve"
    )
    assert "An instruction TLB and a data TLB, each 2 sets x 2 ways" in out and "DTLB sets (oldest first)" in out
    assert main([*args, "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["exercises"][0]["geometry"] == {
        "sets": 2,
        "ways": 2,
        "policy": "fifo",
        "split": False,
    }
    assert main(["mmu", "tlb-quiz", "--seed", "3", "--sets", "3"]) == 2
    assert "--sets must be a power of two, not 3" in capsys.readouterr().err
