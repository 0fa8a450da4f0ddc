"""Exercises on Sv57, Svnapot and Svpbmt, generated from a seed (``hwsim mmu ext-quiz``).

Teaching only: the emulated CPU (Unicorn) and the IOMMU implement none of
them, so these are walks on paper, answered by the walker with its
``svnapot``/``svpbmt`` switches (``hwsim.mmu.walker.walk``) and checked in
the tests against ``tests/spec_walk_ext.py``, computed from the printed text.
Exercise ``n`` of seed ``s`` depends only on ``(s, n)`` and the topics.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import ConfigError
from ..mmu.bits import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_SIZE,
    SV39,
    SV48,
    SV57,
    TEACHING_MODES,
    PagingMode,
    make_pte,
    make_satp,
    satp_fields,
)
from ..mmu.report import format_walk_explained, walk_to_json
from ..mmu.walker import LEVEL_NAMES, NAPOT_NAME, NAPOT_SIZE, AdPolicy, WalkResult, pbmt_name, walk
from ..riscv.priv import Access, Priv
from . import topics
from .mmu_quiz import ACCESS_WORDS, QuizMemory, check_seed_and_count, memory_lines

RAM_BASE = 0x8000_0000
RAM_FRAMES = 16
RAM_SIZE = RAM_FRAMES * PAGE_SIZE
TOPICS = topics.EXT

_V, _R, _W, _X, _U, _A, _D = 1, 2, 4, 8, 16, 64, 128
_N = 1 << 63
_NEED = {Access.LOAD: _R, Access.STORE: _R | _W, Access.FETCH: _X}


@dataclass(frozen=True)
class ExtExercise:
    seed: int
    number: int
    topic: str
    memory: dict[int, int]
    satp: int
    va: int
    access: Access
    priv: Priv
    svnapot: bool
    svpbmt: bool
    intended_ok: bool

    @property
    def mode(self) -> PagingMode:
        return TEACHING_MODES[satp_fields(self.satp)[0]]

    def solve(self) -> WalkResult:
        return walk(
            QuizMemory(self.memory, RAM_BASE, RAM_SIZE),
            satp_fields(self.satp)[2] << PAGE_SHIFT,
            self.va,
            self.access,
            self.priv,
            mode=self.mode,
            ad=AdPolicy.UPDATE,
            svnapot=self.svnapot,
            svpbmt=self.svpbmt,
        )


class _Build:
    def __init__(self, rng: random.Random, mode: PagingMode) -> None:
        self.rng, self.mode = rng, mode
        self.free = list(range(RAM_FRAMES))
        rng.shuffle(self.free)
        self.words: dict[int, int] = {}
        self.access = rng.choice(list(Access))
        self.priv = rng.choice([Priv.U, Priv.S])
        self.va = mode.canonical(rng.randrange(1 << mode.va_bits) & ~7)
        self.root = self.frame()
        self.svnapot = self.svpbmt = False

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * PAGE_SIZE

    def flags(self) -> int:
        perms = self.rng.choice(
            [p for p in (_R, _R | _W, _X, _R | _X, _R | _W | _X) if p & _NEED[self.access] == _NEED[self.access]]
        )
        return _V | perms | (_U if self.priv is Priv.U else 0) | _A | _D

    def path(self, leaf_level: int, leaf: int, pointer_extra: dict[int, int] | None = None) -> None:
        table = self.root
        for level in range(self.mode.levels - 1, -1, -1):
            addr = table + self.mode.vpn(self.va, level) * PTE_SIZE
            if level == leaf_level:
                self.words[addr] = leaf
                return
            child = self.frame()
            self.words[addr] = make_pte(child >> PAGE_SHIFT, _V) | (pointer_extra or {}).get(level, 0)
            table = child

    def leaf_ppn(self, level: int) -> int:
        return self.rng.randrange(0x80000, 0x200000) & ~((1 << (9 * level)) - 1)


def _topic_sv57(b: _Build) -> bool:
    rng = b.rng
    level = rng.randrange(5)
    case = rng.choice(["ok", "ok", "invalid", "misaligned"] if level else ["ok", "ok", "invalid"])
    ppn = b.leaf_ppn(level)
    if case == "misaligned":
        ppn |= 1 << rng.randrange(9 * level)
    b.path(level, 0 if case == "invalid" else make_pte(ppn, b.flags()))
    return case == "ok"


def _topic_napot(b: _Build) -> bool:
    rng = b.rng
    b.svnapot = rng.random() < 0.85
    case = rng.choice(["ok", "ok", "ok", "size", "level"])
    if case == "level":
        b.path(1, make_pte(b.leaf_ppn(1) | 0x8, b.flags()) | _N)
        return False
    low = 0x8 if case == "ok" else rng.choice([0x0, 0x4, 0xC, 0x2])
    b.path(0, make_pte((b.leaf_ppn(0) & ~0xF) | low, b.flags()) | _N)
    return case == "ok" and b.svnapot


def _topic_pbmt(b: _Build) -> bool:
    rng = b.rng
    b.svpbmt = rng.random() < 0.85
    value = rng.choice([0, 1, 2, 2, 3])
    if rng.random() < 0.2:  # PBMT in a pointer
        b.path(0, make_pte(b.leaf_ppn(0), b.flags()), pointer_extra={b.mode.levels - 1: rng.choice([1, 2]) << 61})
        return False
    level = rng.choice([0, 0, 1])
    b.path(level, make_pte(b.leaf_ppn(level), b.flags()) | value << 61)
    return value != 3 and (b.svpbmt or value == 0)


_BUILDERS = {"sv57": _topic_sv57, "napot": _topic_napot, "pbmt": _topic_pbmt}
assert set(_BUILDERS) == set(TOPICS)


def make_exercise(seed: int, number: int, topics: list[str] | None = None) -> ExtExercise:
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-ext-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    mode = SV57 if topic == "sv57" else rng.choice([SV39, SV39, SV48])
    b = _Build(rng, mode)
    ok = _BUILDERS[topic](b)
    satp = make_satp(mode, b.root >> PAGE_SHIFT, rng.choice([0, rng.randrange(1, 64)]))
    return ExtExercise(
        seed, number, topic, dict(sorted(b.words.items())), satp, b.va, b.access, b.priv, b.svnapot, b.svpbmt, ok
    )


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None) -> list[ExtExercise]:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics) for n in range(1, count + 1)]


def preamble() -> list[str]:
    return [
        "Reference (RISC-V privileged architecture: Sv57, Svnapot, Svpbmt; teaching only, hwsim's CPU has none):",
        "  satp MODE 8 = Sv39, 9 = Sv48, 10 = Sv57 (5 levels: vpn[4] 56:48 .. vpn[0] 20:12; bits 63:57 copy bit 56).",
        "  PTE: N 63, PBMT 62:61, reserved 60:54, PPN 53:10, RSW 9:8, DAGUXWRV 7:0.",
        "  Without an extension its bits are reserved; reserved bits or encodings: page fault.",
        "  Svnapot: N=1 only in a level-0 leaf with PPN bits 3:0 = 1000: a 64 KiB page whose",
        "  pa bits 15:12 come from the va (vpn[0] bits 3:0).  Any other N=1 is reserved.",
        "  Svpbmt: PBMT in a leaf: 0 PMA, 1 NC (non-cacheable), 2 IO; 3 is reserved; a pointer needs 0.",
        "  Causes: 12/13/15 fetch/load/store page fault.",
    ]


def format_exercise(ex: ExtExercise) -> list[str]:
    lines = [f"Exercise {ex.number} (seed {ex.seed}), {ex.mode.name}", ""]
    lines.append(f"RAM is {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x}; its non-zero doublewords:")
    lines += memory_lines(ex.memory)
    lines.append("")
    lines.append(f"satp    = {ex.satp:#018x}")
    lines.append(f"access  = {ACCESS_WORDS[ex.access]} at va {ex.va:#018x}, in {ex.priv.name}-mode")
    lines.append(
        f"ext     : Svnapot {'on' if ex.svnapot else 'off'}, Svpbmt {'on' if ex.svpbmt else 'off'}; SUM=0 MXR=0"
    )
    lines.append("")
    lines.append("Question: the physical address and the page size (and the memory type with Svpbmt),")
    lines.append("or the page fault: its cause and the level where the walk stops.")
    return lines


def answer_line(ex: ExtExercise, result: WalkResult) -> str:
    tr = result.translation
    if tr is not None:
        size = NAPOT_NAME if tr.page_size == NAPOT_SIZE else LEVEL_NAMES[tr.level]
        return f"pa {tr.pa:#x} ({size})" + (f", memory type {pbmt_name(tr.pte)}" if ex.svpbmt else "")
    f = result.fault
    assert f is not None
    return f"{result.access.value} {f.kind} (cause {int(f.cause)}) at level {f.level}: {result.steps[-1].decision}"


def format_answer(ex: ExtExercise) -> list[str]:
    result = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(ex, result)}", f"Topic: {TOPICS[ex.topic]}", "Worked solution:"]
    lines.extend("  " + line for line in format_walk_explained(result, satp=ex.satp))
    return lines


def exercise_to_json(ex: ExtExercise, *, solve: bool) -> dict:
    out: dict = {
        "number": ex.number,
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "satp": hex(ex.satp),
        "va": hex(ex.va),
        "access": ex.access.value,
        "priv": ex.priv.name,
        "svnapot": ex.svnapot,
        "svpbmt": ex.svpbmt,
    }
    if solve:
        result = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(ex, result)
        out["walk"] = walk_to_json(result)
    return out
