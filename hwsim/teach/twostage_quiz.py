"""Two-stage translation exercises (hypervisor extension), generated from a seed (``hwsim mmu two-stage-quiz``).

Each exercise is a small host RAM holding both stages' page tables, shown as
its non-zero doublewords: a G-stage (hgatp, Sv39x4: a 16 KiB root table) that
maps the guest's RAM, and a guest's VS-stage (vsatp, Sv39) whose tables live
at guest-physical addresses.  One access from VS- or VU-mode; the student
gives the physical address (and the guest-physical one) or the exception: its
cause, the stage that faulted, the level, htval for a guest-page fault, and
in every case the number of page-table reads the nested walk made.

The answer is :func:`hwsim.mmu.twostage.walk_two_stage`'s; the tests check
on thousands of seeds that it is what the exercise was built to show and what
the transcription in ``tests/spec_walk_2stage.py`` computes from the same
text.  Exercise ``n`` of seed ``s`` depends only on ``(s, n)`` and the topics.
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
    SV39X4,
    Pte,
    hgatp_fields,
    make_hgatp,
    make_pte,
    make_satp,
    pte_ppn,
    satp_fields,
)
from ..mmu.report_twostage import answer_line, format_two_stage_explained, two_stage_to_json
from ..mmu.twostage import GuestReason, Stage, TwoStageResult, walk_two_stage
from ..mmu.walker import AdPolicy, FaultReason
from ..riscv.priv import Access, Priv
from . import topics
from .mmu_quiz import ACCESS_WORDS, QuizMemory, check_seed_and_count, memory_lines

RAM_BASE = 0x8000_0000
RAM_FRAMES = 32
RAM_SIZE = RAM_FRAMES * PAGE_SIZE
GUEST_TABLES = 0x8000_0000  # guest-physical 2 MiB region holding the VS-stage tables
GUEST_DATA = 0x8020_0000  # data pages are above it

TOPICS = topics.TWOSTAGE

_V, _R, _W, _X, _U, _G, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.G, Pte.A, Pte.D))
_NEED = {Access.LOAD: _R, Access.STORE: _R | _W, Access.FETCH: _X}
_GUEST_RAM = _V | _R | _W | _X | _U | _A | _D  # how a hypervisor maps guest RAM in the G-stage


@dataclass(frozen=True)
class Intended:
    """What the exercise was built to show: a fault in a stage (for a G-stage fault on a VS PTE read,
    at which VS level), or a translation."""

    stage: Stage | None  # None: it translates
    reason: FaultReason | GuestReason | None = None
    vs_level: int | None = None


@dataclass(frozen=True)
class TwoStageExercise:
    seed: int
    number: int
    topic: str
    memory: dict[int, int]
    vsatp: int
    hgatp: int
    va: int
    access: Access
    priv: Priv  # U = VU-mode, S = VS-mode
    sum: bool  # vsstatus.SUM
    mxr: bool  # mstatus.MXR
    vs_mxr: bool  # vsstatus.MXR
    ad: AdPolicy
    intended: Intended

    def solve(self) -> TwoStageResult:
        """The walker's answer (on a copy of the memory)."""
        vs_bits, _, vs_ppn = satp_fields(self.vsatp)
        g_bits, _, g_ppn = hgatp_fields(self.hgatp)
        return walk_two_stage(
            QuizMemory(self.memory, RAM_BASE, RAM_SIZE),
            self.va,
            self.access,
            self.priv,
            vs_mode=SV39 if vs_bits else None,
            vs_root=vs_ppn << PAGE_SHIFT,
            g_mode=SV39X4 if g_bits else None,
            g_root=g_ppn << PAGE_SHIFT,
            sum=self.sum,
            mxr=self.mxr,
            vs_mxr=self.vs_mxr,
            ad=self.ad,
        )


class _Build:
    """One exercise under construction: host frames, the G-stage's tables, the guest's tables."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        group = rng.randrange(RAM_FRAMES // 4)
        self.g_root = RAM_BASE + group * 4 * PAGE_SIZE
        self.free = [f for f in range(RAM_FRAMES) if f // 4 != group]
        rng.shuffle(self.free)
        self.words: dict[int, int] = {}
        self.g_leaf_of: dict[int, int] = {}  # guest page -> host address of the G-stage leaf PTE mapping it
        self.access = rng.choice(list(Access))
        self.priv = rng.choice([Priv.U, Priv.S])
        self.sum = rng.random() < 0.4
        self.mxr = False
        self.vs_mxr = False
        self.ad = AdPolicy.UPDATE if rng.random() < 0.7 else AdPolicy.FAULT
        self.vs_bare = False
        self.g_bare = False

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * PAGE_SIZE

    def put(self, pa: int, value: int) -> None:
        if value:
            self.words[pa] = value
        else:
            self.words.pop(pa, None)

    def g_map(self, gpa: int, host: int, flags: int, level: int = 0) -> int:
        """A G-stage leaf for ``gpa`` at ``level`` pointing at ``host``; returns the leaf's address."""
        table = self.g_root
        for lv in (2, 1, 0):
            addr = table + SV39X4.vpn(gpa, lv) * PTE_SIZE
            if lv == level:
                self.put(addr, make_pte(host >> PAGE_SHIFT, flags))
                self.g_leaf_of[gpa >> PAGE_SHIFT] = addr
                return addr
            pte = self.words.get(addr, 0)
            if pte:
                table = pte_ppn(pte) << PAGE_SHIFT
            else:
                child = self.frame()
                self.put(addr, make_pte(child >> PAGE_SHIFT, _V))
                table = child
        raise AssertionError("level must be 0, 1 or 2")

    def allowing(self, access: Access) -> int:
        perms = self.rng.choice(
            [p for p in (_R, _R | _W, _X, _R | _X, _R | _W | _X) if p & _NEED[access] == _NEED[access]]
        )
        if self.priv is Priv.U:
            return perms | _U
        return perms | (_U if self.sum and access is not Access.FETCH and self.rng.random() < 0.5 else 0)

    def ad_bits(self, access: Access) -> int:
        if self.ad is AdPolicy.FAULT:
            return _A | (_D if access is Access.STORE or self.rng.random() < 0.5 else 0)
        return (
            self.rng.choice([_A | _D, _A | _D, _A, 0])
            if access is not Access.STORE
            else self.rng.choice([_A | _D, _A | _D, 0])
        )

    def build(self, *, vs_level: int = 0, g_level: int = 0, table_flags: int = _GUEST_RAM) -> None:
        """A working two-stage setup: VS tables in guest pages, the data page, the G-stage mapping them all."""
        rng = self.rng
        vpn = [rng.randrange(512) for _ in range(3)]
        self.va = SV39.canonical(vpn[2] << 30 | vpn[1] << 21 | vpn[0] << 12 | rng.randrange(0, PAGE_SIZE, 8))
        guest_pages = rng.sample(range(512), 3)
        self.vs_tables: list[tuple[int, int]] = []  # (gpa, host) per VS level, root first
        for n in guest_pages:
            host = self.frame()
            gpa = host if self.g_bare else GUEST_TABLES + n * PAGE_SIZE
            self.vs_tables.append((gpa, host))
            if not self.g_bare:
                self.g_map(gpa, host, table_flags)
        self.vs_root = self.vs_tables[0][0]
        self.vs_leaf_addr = 0
        size = SV39.page_size(vs_level)
        if vs_level == 2:
            page_gpa = rng.choice([0xC000_0000, 0x1_0000_0000, 0x1_4000_0000])
        else:
            page_gpa = rng.randrange(GUEST_DATA, GUEST_DATA + 0x0100_0000, size)
        self.gpa = page_gpa | (self.va & (size - 1))
        for level in (2, 1, 0):
            gpa, host = self.vs_tables[2 - level]
            addr = host + SV39.vpn(self.va, level) * PTE_SIZE
            if level == vs_level:
                self.put(
                    addr, make_pte(page_gpa >> PAGE_SHIFT, _V | self.allowing(self.access) | self.ad_bits(self.access))
                )
                self.vs_leaf_addr = addr
                break
            child_gpa = self.vs_tables[3 - level][0]
            self.put(addr, make_pte(child_gpa >> PAGE_SHIFT, _V))
        if self.vs_bare:
            self.gpa = self.va = rng.randrange(GUEST_DATA, GUEST_DATA + 0x0100_0000, 8)
        if not self.g_bare:
            g_size = SV39X4.page_size(g_level)
            host_page = rng.randrange(0x9000_0000, 0xA000_0000, g_size)
            data_flags = _V | _U | rng.choice([_R | _W | _X, _R | _W | _X, _NEED[self.access] | _R]) | self.g_ad_bits()
            self.data_leaf = self.g_map(self.gpa & ~(g_size - 1), host_page, data_flags, g_level)

    def g_ad_bits(self) -> int:
        if self.ad is AdPolicy.FAULT or self.rng.random() < 0.7:
            return _A | _D
        return self.rng.choice([0, _A])


def _topic_translate(b: _Build) -> Intended:
    b.build()
    return Intended(None)


def _topic_superpages(b: _Build) -> Intended:
    b.build(vs_level=b.rng.choice([0, 1, 1, 2]), g_level=b.rng.choice([0, 1, 1]))
    return Intended(None)


def _topic_vs_fault(b: _Build) -> Intended:
    rng = b.rng
    b.build()
    level = rng.choice([2, 1, 0, 0])
    gpa, host = b.vs_tables[2 - level]
    addr = host + SV39.vpn(b.va, level) * PTE_SIZE
    case = rng.choice(["invalid", "permission", "user"])
    if case == "invalid" or level:
        b.put(addr, 0 if rng.random() < 0.5 else b.words.get(addr, 0) & ~_V)
        return Intended(Stage.VS, FaultReason.INVALID)
    pte = b.words[addr]
    if case == "permission":
        bad = {Access.LOAD: _X, Access.STORE: _R | _X, Access.FETCH: _R | _W}[b.access]
        b.put(addr, (pte & ~0xE) | bad)
        return Intended(Stage.VS, None)
    if b.priv is Priv.U:  # a supervisor page, from VU-mode
        b.put(addr, pte & ~_U)
    else:  # a user page, from VS-mode without SUM
        b.put(addr, pte | _U)
        b.sum = False
    return Intended(Stage.VS, None)


def _topic_g_fault_pte(b: _Build) -> Intended:
    """The G-stage refuses the guest-physical address of a VS-stage PTE."""
    rng = b.rng
    b.build()
    level = rng.choice([2, 1, 0])
    gpa = b.vs_tables[2 - level][0]
    addr = b.g_leaf_of[gpa >> PAGE_SHIFT]
    pte = b.words[addr]
    case = rng.choice(["invalid", "user", "exec-only"])
    if case == "invalid":
        b.put(addr, 0 if rng.random() < 0.5 else pte & ~_V)
        return Intended(Stage.G, FaultReason.INVALID, level)
    if case == "user":  # mapped as a supervisor page: the G-stage checks every access as U-mode
        b.put(addr, pte & ~_U)
        return Intended(Stage.G, FaultReason.USER_PAGE_FROM_U, level)
    b.put(addr, (pte & ~(_R | _W)) | _X)  # execute-only: an implicit load may not read it (mstatus.MXR=0)
    return Intended(Stage.G, FaultReason.NOT_READABLE, level)


def _topic_g_fault_final(b: _Build) -> Intended:
    rng = b.rng
    b.build(g_level=rng.choice([0, 0, 1]))
    pte = b.words[b.data_leaf]
    case = rng.choice(["invalid", "user", "permission"])
    if case == "invalid":
        b.put(b.data_leaf, 0)
        return Intended(Stage.G, FaultReason.INVALID)
    if case == "user":
        b.put(b.data_leaf, pte & ~_U)
        return Intended(Stage.G, FaultReason.USER_PAGE_FROM_U)
    bad = {Access.LOAD: _X, Access.STORE: _R | _X, Access.FETCH: _R | _W}[b.access]
    b.put(b.data_leaf, (pte & ~0xE) | bad)
    return Intended(Stage.G, None)


def _topic_ad_write(b: _Build) -> Intended:
    """The VS leaf's A/D bits are clear: setting them is a store through the G-stage."""
    rng = b.rng
    b.ad = AdPolicy.UPDATE
    read_only = rng.random() < 0.5  # hypervisors write-protect guest page tables they shadow
    b.build(table_flags=_V | _R | _U | _A | _D if read_only else _GUEST_RAM)
    pte = b.words[b.vs_leaf_addr]
    b.put(b.vs_leaf_addr, pte & ~(_A | _D) if rng.random() < 0.6 or b.access is not Access.STORE else pte & ~_D)
    if read_only:
        return Intended(Stage.G, FaultReason.NOT_WRITABLE, 0)
    return Intended(None)


def _topic_gpa_width(b: _Build) -> Intended:
    rng = b.rng
    if rng.random() < 0.3:  # vsatp Bare: the virtual address is the guest-physical address
        b.vs_bare = True
        b.build()
        b.va = b.gpa = b.gpa | 1 << rng.randrange(41, 64)
        return Intended(Stage.G, GuestReason.GPA_TOO_WIDE)
    b.build()
    pte = b.words[b.vs_leaf_addr]
    b.put(b.vs_leaf_addr, pte | 1 << rng.randrange(39, 54))  # PPN bits 29..43: the gpa has bits 41..55 set
    return Intended(Stage.G, GuestReason.GPA_TOO_WIDE)


def _topic_bare(b: _Build) -> Intended:
    if b.rng.random() < 0.5:
        b.vs_bare = True
    else:
        b.g_bare = True
    b.build()
    return Intended(None)


_BUILDERS = {
    "translate": _topic_translate,
    "superpages": _topic_superpages,
    "vs-fault": _topic_vs_fault,
    "g-fault-pte": _topic_g_fault_pte,
    "g-fault-final": _topic_g_fault_final,
    "ad-write": _topic_ad_write,
    "gpa-width": _topic_gpa_width,
    "bare": _topic_bare,
}
assert set(_BUILDERS) == set(TOPICS)


def make_exercise(seed: int, number: int, topics: list[str] | None = None) -> TwoStageExercise:
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-two-stage-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    b = _Build(rng)
    intended = _BUILDERS[topic](b)
    vsatp = 0 if b.vs_bare else make_satp(SV39, b.vs_root >> PAGE_SHIFT, rng.choice([0, rng.randrange(1, 64)]))
    hgatp = 0 if b.g_bare else make_hgatp(SV39X4, b.g_root >> PAGE_SHIFT, rng.randrange(1, 16))
    return TwoStageExercise(
        seed,
        number,
        topic,
        dict(sorted(b.words.items())),
        vsatp,
        hgatp,
        b.va,
        b.access,
        b.priv,
        b.sum,
        b.mxr,
        b.vs_mxr,
        b.ad,
        intended,
    )


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None) -> list[TwoStageExercise]:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics) for n in range(1, count + 1)]


# -- presentation -------------------------------------------------------------------------------------------------

_AD_RULES = {
    AdPolicy.UPDATE: "the hardware sets A (and D on a store) when they are clear, in both stages (Svadu)",
    AdPolicy.FAULT: "a clear A (or a clear D on a store) faults, in both stages (Svade)",
}


def preamble() -> list[str]:
    return [
        "Reference (RISC-V privileged architecture, hypervisor extension: two-stage translation):",
        "  va --VS-stage (vsatp, Sv39)--> guest-physical address (gpa) --G-stage (hgatp, Sv39x4)--> pa.",
        "  Every VS-stage PTE address is a gpa: the G-stage translates it (an implicit load) before",
        "  the PTE is read; setting a VS PTE's A/D bits is an implicit store through the G-stage.",
        "  vsatp: MODE 63:60 (8 = Sv39, 0 = Bare), ASID 59:44, PPN 43:0 (a guest-physical page number).",
        "  hgatp: MODE 63:60 (8 = Sv39x4, 0 = Bare), VMID 57:44, PPN 43:0; the root table is 16 KiB.",
        "  Sv39x4: a gpa has 41 bits (63:41 must be zero); vpn[2] is 40:30 (11 bits), vpn[1] 29:21, vpn[0] 20:12.",
        "  PTEs as in Sv39 (DAGUXWRV).  G-stage leaves need U=1: every G-stage access counts as U-mode.",
        "  Causes: 12/13/15 page fault (VS-stage), 20/21/23 fetch/load/store guest-page fault",
        "  (G-stage, reported for the original access type, htval = the faulting gpa >> 2),",
        "  1/5/7 access fault (a PTE outside RAM).",
        "  Count every page-table read, both stages: Sv39 over Sv39x4 takes up to 15 without A/D writes.",
    ]


def format_exercise(ex: TwoStageExercise) -> list[str]:
    vs = "Sv39" if ex.vsatp >> 60 else "Bare"
    g = "Sv39x4" if ex.hgatp >> 60 else "Bare"
    lines = [f"Exercise {ex.number} (seed {ex.seed}), two-stage: {vs} over {g}", ""]
    lines.append(f"Host RAM is {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x} ({RAM_FRAMES} frames of 4 KiB).")
    lines.append("Its non-zero doublewords (all other bytes are zero):")
    lines += memory_lines(ex.memory)
    lines.append("")
    lines.append(f"vsatp   = {ex.vsatp:#018x}")
    lines.append(f"hgatp   = {ex.hgatp:#018x}")
    mode = "VU-mode" if ex.priv is Priv.U else "VS-mode"
    lines.append(f"access  = {ACCESS_WORDS[ex.access]} at va {ex.va:#018x}, in {mode}")
    lines.append(f"status  : vsstatus.SUM={int(ex.sum)} vsstatus.MXR={int(ex.vs_mxr)} mstatus.MXR={int(ex.mxr)}")
    lines.append(f"A/D     : {_AD_RULES[ex.ad]}")
    lines.append("")
    lines.append("Question: the physical address (and the guest-physical one), or the exception:")
    lines.append("its cause, the stage and level where it stops, and htval for a guest-page fault;")
    lines.append("and in either case how many page-table reads the walk made.")
    return lines


def format_answer(ex: TwoStageExercise) -> list[str]:
    result = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(result)}", f"Topic: {TOPICS[ex.topic]}", "Worked solution:"]
    lines.extend("  " + line for line in format_two_stage_explained(result, vsatp=ex.vsatp, hgatp=ex.hgatp))
    return lines


def exercise_to_json(ex: TwoStageExercise, *, solve: bool) -> dict:
    out = {
        "number": ex.number,
        "ram": {"base": hex(RAM_BASE), "size": hex(RAM_SIZE)},
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "vsatp": hex(ex.vsatp),
        "hgatp": hex(ex.hgatp),
        "va": hex(ex.va),
        "access": ex.access.value,
        "priv": "VU" if ex.priv is Priv.U else "VS",
        "vs_sum": ex.sum,
        "vs_mxr": ex.vs_mxr,
        "mxr": ex.mxr,
        "ad": "svadu" if ex.ad is AdPolicy.UPDATE else "svade",
    }
    if solve:
        result = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(result)
        out["walk"] = two_stage_to_json(result)
    return out
