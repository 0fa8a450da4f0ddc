"""Sv39 translation exercises, generated from a seed, answered by the walker (``hwsim mmu quiz``).

In the spirit of the classic paging homework simulators: each exercise is a
small RAM holding page tables, shown as its non-zero doublewords, a satp, one
access (VA, fetch/load/store, U or S mode, SUM, MXR) and the A/D rule
(hardware updates, or Svade faults).  The student gives the physical address
(and the PTE the hardware rewrites), or the exception: its cause, the level
where the walk stops, and why.

Each exercise is built for one *topic* with an intended outcome; the answer
shown is the walker's own (:func:`hwsim.mmu.walker.walk`), and the tests
check on thousands of seeds that the two agree, and that the specification
transcription in ``tests/spec_walk.py`` agrees on the text a student sees.
Exercise ``n`` of seed ``s`` depends only on ``(s, n)`` and the topics chosen.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from ..errors import BusError, ConfigError
from ..mmu.bits import (
    PAGE_SHIFT,
    PAGE_SIZE,
    PTE_HIGH_RESERVED_MASK,
    PTE_SIZE,
    SV39,
    Pte,
    make_pte,
    make_satp,
    pte_ppn,
    satp_fields,
)
from ..mmu.report import format_walk_explained, walk_to_json
from ..mmu.walker import LEVEL_NAMES, AdPolicy, FaultReason, WalkResult, walk
from ..riscv.priv import Access, Priv
from . import topics

RAM_BASE = 0x8000_0000
RAM_FRAMES = 16
RAM_SIZE = RAM_FRAMES * PAGE_SIZE
MAX_SEED = (1 << 64) - 1
MAX_COUNT = 1000

TOPICS = topics.MMU

_V, _R, _W, _X, _U, _G, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.G, Pte.A, Pte.D))
_PERMS = (_R, _R | _W, _X, _R | _X, _R | _W | _X)  # the legal leaf encodings


class QuizMemory:
    """The exercise's RAM: a dict of non-zero doublewords; outside RAM is a bus error."""

    def __init__(self, words: dict[int, int], base: int = RAM_BASE, size: int = RAM_SIZE) -> None:
        self.words = dict(words)
        self.base, self.size = base, size

    def _check(self, pa: int) -> None:
        if not self.base <= pa <= self.base + self.size - 8:
            raise BusError(f"no RAM at physical address {pa:#x}", address=pa, size=8)

    def read_u64(self, pa: int) -> int:
        self._check(pa)
        return self.words.get(pa, 0)

    def write_u64(self, pa: int, value: int) -> None:
        self._check(pa)
        if value:
            self.words[pa] = value
        else:
            self.words.pop(pa, None)


@dataclass(frozen=True)
class Intended:
    """What the generator built the exercise to do: a PA at a level, or a fault reason at a level."""

    reason: FaultReason | None  # None: the access translates
    level: int | None
    pa: int | None = None


@dataclass(frozen=True)
class MmuExercise:
    seed: int
    number: int
    topic: str
    memory: dict[int, int]  # physical address -> non-zero doubleword, in RAM
    satp: int
    va: int
    access: Access
    priv: Priv
    sum: bool
    mxr: bool
    ad: AdPolicy  # UPDATE (Svadu: hardware sets A/D) or FAULT (Svade)
    intended: Intended

    def solve(self) -> WalkResult:
        """The walker's answer (on a copy of the memory: A/D updates do not change the exercise)."""
        root = satp_fields(self.satp)[2] << PAGE_SHIFT
        return walk(
            QuizMemory(self.memory),
            root,
            self.va,
            self.access,
            self.priv,
            mode=SV39,
            sum=self.sum,
            mxr=self.mxr,
            ad=self.ad,
        )


# -- generation -------------------------------------------------------------------------------------------------


class _Builder:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.free = list(range(RAM_FRAMES))
        rng.shuffle(self.free)
        self.words: dict[int, int] = {}

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * PAGE_SIZE

    def put(self, pa: int, value: int) -> None:
        if value:
            self.words[pa] = value
        else:
            self.words.pop(pa, None)

    def pointer(self, frame: int, extra: int = 0) -> int:
        return make_pte(frame >> PAGE_SHIFT, _V | extra) | (extra & PTE_HIGH_RESERVED_MASK)


def _leaf_ppn(rng: random.Random, level: int) -> int:
    """A frame number for a leaf: any 4 KiB frame, a 2 MiB- or 1 GiB-aligned one for superpages."""
    if level == 0:
        return rng.randrange(0x80010, 0x90000)
    if level == 1:
        return rng.randrange(0x80200, 0x90000, 0x200)
    return rng.choice([0x0, 0x40000, 0x80000, 0xC0000, 0x100000])


def _allowing(rng: random.Random, access: Access, priv: Priv, sum_: bool) -> int:
    """R/W/X/U bits that allow ``access`` from ``priv`` (MXR not relied on)."""
    need = {Access.LOAD: _R, Access.STORE: _R | _W, Access.FETCH: _X}[access]
    perms = rng.choice([p for p in _PERMS if p & need == need])
    if priv is Priv.U:
        return perms | _U
    user_ok = sum_ and access is not Access.FETCH
    return perms | (_U if user_ok and rng.random() < 0.5 else 0)


def _ad_bits(rng: random.Random, access: Access, ad: AdPolicy, *, clean: bool = False) -> int:
    """A/D bits that pass the A/D rule (``clean``: under Svadu, leave some clear for the hardware to set)."""
    if ad is AdPolicy.FAULT:
        return _A | (_D if access is Access.STORE or rng.random() < 0.5 else 0)
    if clean:
        return rng.choice([0, _A, _A | _D if access is not Access.STORE else 0])
    return rng.choice([0, _A, _A | _D])


def _access_priv(rng: random.Random) -> tuple[Access, Priv]:
    return rng.choice(list(Access)), rng.choice([Priv.U, Priv.S])


class _Exercise:
    """Mutable state while one exercise is being built."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.b = _Builder(rng)
        self.access, self.priv = _access_priv(rng)
        self.sum = rng.random() < 0.5
        self.mxr = rng.random() < 0.3
        self.ad = AdPolicy.FAULT if rng.random() < 0.3 else AdPolicy.UPDATE
        vpn = [rng.randrange(512) for _ in range(3)]
        offset = rng.randrange(0, PAGE_SIZE, 4)
        self.va = SV39.canonical(vpn[2] << 30 | vpn[1] << 21 | vpn[0] << 12 | offset)
        self.root = self.b.frame()
        self.asid = rng.choice([0, 0, rng.randrange(1, 64)])

    def path(
        self, stop_level: int, last: int, pointer_extra: dict[int, int] | None = None, outside: int | None = None
    ) -> int:
        """Pointers from the root down to ``stop_level``, whose PTE is ``last``; returns its address.

        ``pointer_extra[level]`` ORs bits into that level's pointer; ``outside`` makes the pointer at that
        level point to a frame outside RAM.
        """
        table = self.root
        for level in (2, 1, 0):
            addr = table + SV39.vpn(self.va, level) * PTE_SIZE
            if level == stop_level:
                self.b.put(addr, last)
                self._distract(table, level, addr)
                return addr
            if outside == level:
                child = self.rng.choice([0x7000_0000, 0x9000_0000, 0x1000_0000, 0x8010_0000])
            else:
                child = self.b.frame()
            extra = (pointer_extra or {}).get(level, 0) | (_G if self.rng.random() < 0.1 else 0)
            self.b.put(addr, self.b.pointer(child, extra))
            self._distract(table, level, addr)
            if outside == level:
                return addr
            table = child
        raise AssertionError("stop_level must be 0, 1 or 2")

    def _distract(self, table: int, level: int, used: int) -> None:
        """One to three other entries in the table: neighbours, the other VPN fields' indices, junk."""
        rng = self.rng
        here = (used - table) // PTE_SIZE
        candidates = {
            (here + 1) % 512,
            (here - 1) % 512,
            SV39.vpn(self.va, (level + 1) % 3),
            SV39.vpn(self.va, (level + 2) % 3),
            rng.randrange(512),
        }
        candidates.discard(here)
        for index in sorted(candidates)[: rng.randint(1, 3)]:
            addr = table + index * PTE_SIZE
            if addr in self.b.words:
                continue
            kind = rng.random()
            if kind < 0.45:
                value = make_pte(
                    _leaf_ppn(rng, level), _V | rng.choice(_PERMS) | rng.choice([0, _U]) | rng.choice([0, _A, _A | _D])
                )
            elif kind < 0.75 and level > 0 and self.b.free:
                value = self.b.pointer(self.b.frame())
            else:
                value = make_pte(rng.randrange(0x80000, 0x90000), rng.randrange(0, 0x100) & ~_V)
            self.b.put(addr, value)

    def leaf(self, level: int, perms: int, ad_bits: int, ppn: int | None = None) -> int:
        ppn = _leaf_ppn(self.rng, level) if ppn is None else ppn
        g = _G if self.rng.random() < 0.15 else 0
        return make_pte(ppn, _V | perms | ad_bits | g)

    def pa_of(self, pte: int, level: int) -> int:
        size = SV39.page_size(level)
        return (pte_ppn(pte) << PAGE_SHIFT) & ~(size - 1) | (self.va & (size - 1))


def _ok(ex: _Exercise, level: int, *, clean: bool = False) -> Intended:
    """A path to a leaf at ``level`` that allows the access."""
    leaf = ex.leaf(
        level, _allowing(ex.rng, ex.access, ex.priv, ex.sum), _ad_bits(ex.rng, ex.access, ex.ad, clean=clean)
    )
    ex.path(level, leaf)
    return Intended(None, level, ex.pa_of(leaf, level))


def _topic_page(ex: _Exercise) -> Intended:
    return _ok(ex, 0)


def _topic_superpage(ex: _Exercise) -> Intended:
    return _ok(ex, ex.rng.choice([1, 1, 2]))


def _topic_misaligned(ex: _Exercise) -> Intended:
    rng = ex.rng
    level = rng.choice([1, 2])
    ppn = _leaf_ppn(rng, level) | rng.randrange(1, 1 << (9 * level))
    ex.path(level, ex.leaf(level, _allowing(rng, ex.access, ex.priv, ex.sum), _ad_bits(rng, ex.access, ex.ad), ppn))
    return Intended(FaultReason.MISALIGNED_SUPERPAGE, level)


def _topic_invalid(ex: _Exercise) -> Intended:
    rng = ex.rng
    level = rng.choice([2, 1, 0, 0])
    # Zero (absent from the dump), or left-over bits that look like a PTE but for V.
    junk = 0 if rng.random() < 0.4 else make_pte(_leaf_ppn(rng, 0), rng.choice(_PERMS) | _U | _A)
    ex.path(level, junk)
    return Intended(FaultReason.INVALID, level)


def _topic_no_leaf(ex: _Exercise) -> Intended:
    ex.path(0, ex.b.pointer(ex.b.frame()))
    return Intended(FaultReason.NO_LEAF, 0)


def _topic_permission(ex: _Exercise) -> Intended:
    rng = ex.rng
    access = ex.access
    if access is Access.LOAD:
        perms, reason = _X, FaultReason.NOT_READABLE
        ex.mxr = False
    elif access is Access.STORE:
        perms, reason = rng.choice([_R, _X, _R | _X]), FaultReason.NOT_WRITABLE
    else:
        perms, reason = rng.choice([_R, _R | _W]), FaultReason.NOT_EXECUTABLE
    user = _U if ex.priv is Priv.U else 0
    level = rng.choice([0, 0, 0, 1, 2])
    ex.path(level, ex.leaf(level, perms | user, _ad_bits(rng, access, ex.ad)))
    return Intended(reason, level)


def _topic_w_without_r(ex: _Exercise) -> Intended:
    rng = ex.rng
    level = rng.choice([2, 1, 0, 0])
    ex.path(level, ex.leaf(level, _W | rng.choice([0, _X]) | rng.choice([0, _U]), rng.choice([0, _A, _A | _D])))
    return Intended(FaultReason.WRITE_NO_READ, level)


def _topic_user(ex: _Exercise) -> Intended:
    rng = ex.rng
    level = rng.choice([0, 0, 1])
    case = rng.choice(["from-u", "sum", "sum-ok", "fetch", "u-ok"])
    need = {Access.LOAD: _R, Access.STORE: _R | _W, Access.FETCH: _X}
    if case in ("sum", "sum-ok"):
        ex.priv, ex.access = Priv.S, rng.choice([Access.LOAD, Access.STORE])
        ex.sum = case == "sum-ok"
    elif case == "fetch":
        ex.priv, ex.access = Priv.S, Access.FETCH
    else:
        ex.priv = Priv.U
    perms = rng.choice([p for p in _PERMS if p & need[ex.access] == need[ex.access]])
    user = 0 if case == "from-u" else _U
    leaf = ex.leaf(level, perms | user, _ad_bits(rng, ex.access, ex.ad))
    ex.path(level, leaf)
    return {
        "from-u": Intended(FaultReason.USER_PAGE_FROM_U, level),
        "sum": Intended(FaultReason.USER_PAGE_SUM, level),
        "fetch": Intended(FaultReason.USER_PAGE_FETCH, level),
    }.get(case) or Intended(None, level, ex.pa_of(leaf, level))


def _topic_mxr(ex: _Exercise) -> Intended:
    rng = ex.rng
    ex.access = Access.STORE if rng.random() < 0.2 else Access.LOAD
    ex.mxr = rng.random() < 0.6
    user = _U if ex.priv is Priv.U or ex.sum and rng.random() < 0.5 else 0
    level = rng.choice([0, 0, 1])
    leaf = ex.leaf(level, _X | user, _ad_bits(rng, ex.access, ex.ad))
    ex.path(level, leaf)
    if ex.access is Access.STORE:
        return Intended(FaultReason.NOT_WRITABLE, level)
    return Intended(None, level, ex.pa_of(leaf, level)) if ex.mxr else Intended(FaultReason.NOT_READABLE, level)


def _topic_accessed_dirty(ex: _Exercise) -> Intended:
    rng = ex.rng
    level = rng.choice([0, 0, 1, 2])
    perms = _allowing(rng, ex.access, ex.priv, ex.sum)
    case = rng.choice(["a", "d", "d-load", "update", "update"])
    if case == "update":
        ex.ad = AdPolicy.UPDATE
        bits = _A if ex.access is Access.STORE and rng.random() < 0.5 else 0
    else:
        ex.ad = AdPolicy.FAULT
        if case == "a":
            bits = rng.choice([0, _D])
        elif case == "d":
            ex.access = Access.STORE
            perms = _allowing(rng, ex.access, ex.priv, ex.sum)
            bits = _A
        else:
            ex.access = rng.choice([Access.LOAD, Access.FETCH])
            perms = _allowing(rng, ex.access, ex.priv, ex.sum)
            bits = _A
    leaf = ex.leaf(level, perms, bits)
    ex.path(level, leaf)
    if case == "a":
        return Intended(FaultReason.ACCESSED_CLEAR, level)
    if case == "d":
        return Intended(FaultReason.DIRTY_CLEAR, level)
    return Intended(None, level, ex.pa_of(leaf, level))


def _topic_canonical(ex: _Exercise) -> Intended:
    rng = ex.rng
    if rng.random() < 0.35:  # an upper-half address, properly sign-extended: it translates
        ex.va = SV39.canonical(ex.va | 1 << 38)
        return _ok(ex, rng.choice([0, 1, 2]))
    _ok(ex, rng.choice([0, 1]))
    ex.va ^= 1 << rng.randrange(39, 64)  # the tables map the low 39 bits, but the address is not canonical
    return Intended(FaultReason.NON_CANONICAL, None)


def _topic_reserved(ex: _Exercise) -> Intended:
    rng = ex.rng
    high = rng.choice([1 << 61, 2 << 61, 1 << 63, 1 << 54, rng.randrange(1, 0x400) << 54])
    case = rng.choice(["leaf", "pointer-high", "pointer-adu"])
    if case == "leaf":
        level = rng.choice([0, 0, 1])
        leaf = ex.leaf(level, _allowing(rng, ex.access, ex.priv, ex.sum), _ad_bits(rng, ex.access, ex.ad)) | high
        ex.path(level, leaf)
        return Intended(FaultReason.RESERVED_BITS, level)
    level = rng.choice([2, 1])
    extra = high if case == "pointer-high" else rng.choice([_A, _D, _U, _A | _D])
    ex.path(
        0,
        ex.leaf(0, _allowing(rng, ex.access, ex.priv, ex.sum), _ad_bits(rng, ex.access, ex.ad)),
        pointer_extra={level: extra},
    )
    return Intended(FaultReason.RESERVED_BITS if case == "pointer-high" else FaultReason.NONLEAF_RESERVED, level)


def _topic_access_fault(ex: _Exercise) -> Intended:
    rng = ex.rng
    if rng.random() < 0.25:  # satp names a root table outside RAM (the tables in RAM are a decoy)
        _ok(ex, rng.choice([0, 1]))
        ex.root = rng.choice([0x8010_0000, 0x7FFF_F000, 0x1000_0000])
        return Intended(FaultReason.PTE_ACCESS, 2)
    level = rng.choice([2, 1])
    ex.path(0, 0, outside=level)
    return Intended(FaultReason.PTE_ACCESS, level - 1)


_BUILDERS = {
    "page": _topic_page,
    "superpage": _topic_superpage,
    "misaligned": _topic_misaligned,
    "invalid": _topic_invalid,
    "no-leaf": _topic_no_leaf,
    "permission": _topic_permission,
    "w-without-r": _topic_w_without_r,
    "user": _topic_user,
    "mxr": _topic_mxr,
    "accessed-dirty": _topic_accessed_dirty,
    "canonical": _topic_canonical,
    "reserved": _topic_reserved,
    "access-fault": _topic_access_fault,
}
assert set(_BUILDERS) == set(TOPICS)


def check_seed_and_count(seed: int, count: int) -> None:
    if not 0 <= seed <= MAX_SEED:
        raise ConfigError(f"--seed must be an integer from 0 to 2^64-1, not {seed}")
    if not 1 <= count <= MAX_COUNT:
        raise ConfigError(f"--count must be from 1 to {MAX_COUNT}, not {count}")


def make_exercise(seed: int, number: int, topics: list[str] | None = None) -> MmuExercise:
    """Exercise ``number`` (from 1) of ``seed``, on a topic drawn from ``topics`` (default: all)."""
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-mmu-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    ex = _Exercise(rng)
    intended = _BUILDERS[topic](ex)
    satp = make_satp(SV39, ex.root >> PAGE_SHIFT, ex.asid)
    return MmuExercise(
        seed,
        number,
        topic,
        dict(sorted(ex.b.words.items())),
        satp,
        ex.va,
        ex.access,
        ex.priv,
        ex.sum,
        ex.mxr,
        ex.ad,
        intended,
    )


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None) -> list[MmuExercise]:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics) for n in range(1, count + 1)]


# -- presentation -------------------------------------------------------------------------------------------------

AD_RULES = {
    AdPolicy.UPDATE: "the hardware sets A (and D on a store) when they are clear (Svadu)",
    AdPolicy.FAULT: "a clear A (or a clear D on a store) raises a page fault (Svade)",
}
ACCESS_WORDS = {Access.FETCH: "an instruction fetch", Access.LOAD: "a load", Access.STORE: "a store"}
READ_WRITE_WORDS = {Access.FETCH: "an instruction fetch", Access.LOAD: "a read", Access.STORE: "a write"}  # x86, Arm


def preamble() -> list[str]:
    return [
        "Reference (RISC-V privileged architecture, Sv39):",
        "  satp: MODE 63:60 (8 = Sv39), ASID 59:44, PPN of the root table 43:0.",
        "  va: bits 63:39 must all equal bit 38; vpn[2] 38:30, vpn[1] 29:21, vpn[0] 20:12, offset 11:0.",
        "  PTE (8 bytes): reserved 63:54 (must be 0), PPN 53:10, RSW 9:8, D 7, A 6, G 5, U 4, X 3, W 2, R 1, V 0.",
        "  R=W=X=0: a pointer to the next table (D, A, U must be 0); W=1 with R=0 is reserved.",
        "  A leaf at level 1 or 2 maps a 2 MiB or 1 GiB superpage; its low PPN fields must be 0.",
        "  U-mode needs U=1; S-mode may load/store U=1 pages only with SUM=1, and never fetch from them.",
        "  MXR=1 lets loads read pages with X=1 even when R=0.",
        "  Causes: 12/13/15 fetch/load/store page fault, 1/5/7 fetch/load/store access fault.",
    ]


def memory_lines(memory: dict, frame_size: int = PAGE_SIZE) -> list[str]:
    """The non-zero doublewords ``{pa: value}`` (in address order), under a heading per frame (4 KiB)."""
    lines, frame = [], None
    for pa, value in memory.items():
        if pa & ~(frame_size - 1) != frame:
            frame = pa & ~(frame_size - 1)
            lines.append(f"  frame {frame:#x}:")
        lines.append(f"    {pa:#x}: {value:#018x}")
    return lines


def format_exercise(ex: MmuExercise) -> list[str]:
    lines = [f"Exercise {ex.number} (seed {ex.seed}), Sv39", ""]
    lines.append(
        f"The page tables live in RAM at {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x} ({RAM_FRAMES} frames of 4 KiB);"
    )
    lines.append("reading a PTE anywhere else is an access fault.  Leaf PTEs may point anywhere.")
    lines.append("The non-zero doublewords of that RAM (all other bytes are zero):")
    lines += memory_lines(ex.memory)
    if not ex.memory:
        lines.append("  (none: the RAM is all zero)")
    lines.append("")
    lines.append(f"satp    = {ex.satp:#018x}")
    lines.append(f"access  = {ACCESS_WORDS[ex.access]} at va {ex.va:#018x}, in {ex.priv.name}-mode")
    lines.append(f"sstatus : SUM={int(ex.sum)} MXR={int(ex.mxr)}")
    lines.append(f"A/D     : {AD_RULES[ex.ad]}")
    lines.append("")
    lines.append("Question: the physical address (and any PTE the hardware rewrites), or the")
    lines.append("exception: its cause code, the level where the walk stops, and why.")
    return lines


def answer_line(result: WalkResult) -> str:
    tr = result.translation
    if tr is not None:
        text = f"pa {tr.pa:#x} ({LEVEL_NAMES[tr.level]})"
        if result.ad_update is not None:
            addr, old, new = result.ad_update
            text += f"; the hardware rewrites the PTE at {addr:#x}: {old:#018x} -> {new:#018x}"
        return text
    f = result.fault
    assert f is not None  # a walk without a translation has a fault
    where = "" if f.level is None else f" at level {f.level}"
    return f"{result.access.value} {f.kind} (cause {int(f.cause)}){where}: {f.message}"


def format_answer(ex: MmuExercise) -> list[str]:
    result = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(result)}", f"Topic: {TOPICS[ex.topic]}", "Worked solution:"]
    lines.extend("  " + line for line in format_walk_explained(result, satp=ex.satp))
    return lines


def exercise_to_json(ex: MmuExercise, *, solve: bool) -> dict:
    out = {
        "number": ex.number,
        "ram": {"base": hex(RAM_BASE), "size": hex(RAM_SIZE)},
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "satp": hex(ex.satp),
        "va": hex(ex.va),
        "access": ex.access.value,
        "priv": ex.priv.name,
        "sum": ex.sum,
        "mxr": ex.mxr,
        "ad": "svadu" if ex.ad is AdPolicy.UPDATE else "svade",
    }
    if solve:
        result = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(result)
        out["walk"] = walk_to_json(result)
    return out
