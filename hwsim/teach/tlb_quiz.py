"""TLB exercises, generated from a seed, answered by hwsim's TLB model (``hwsim mmu tlb-quiz``).

A small fully associative LRU TLB (:class:`hwsim.mmu.tlb.Tlb`), two address
spaces (ASIDs 1 and 2) sharing a global kernel page, and a sequence of
accesses, ASID switches, ``sfence.vma`` in its four forms, and page-table
changes made without a fence.  The student marks each access hit or miss and
names the entry a miss evicts (or none), and each fence's victims.  The answer replays
the sequence on the TLB model, filling misses with the walker; the tests
replay it on a plain list-based LRU model and the specification's walk.

Options (the default exercise, without them, is unchanged): a set-associative
geometry with a replacement policy and split instruction/data TLBs
(:mod:`hwsim.mmu.tlb_sa`, ``--sets --ways --policy --split``), and a
difficulty (``--difficulty easy|medium|hard``: sequence length, one or two
address spaces, superpages; medium is the default's), and shootdowns on
several harts, each with its own TLB (``--harts N``:
:mod:`hwsim.teach.shootdown_quiz`).
"""

from __future__ import annotations

import random
import textwrap
from dataclasses import dataclass, replace

from ..errors import ConfigError
from ..machine.frames import FrameAllocator
from ..machine.physmem import PhysicalMemory
from ..mmu.aspace import AddressSpace
from ..mmu.bits import PAGE_SIZE, Pte
from ..mmu.report import perms_string, plural
from ..mmu.tlb import GLOBAL, Tlb
from ..mmu.tlb_sa import SetAssocTlb, SplitTlb
from ..mmu.walker import AdPolicy, Translation, walk
from ..riscv.priv import Access, Priv
from . import shootdown_quiz, topics
from .mmu_quiz import check_seed_and_count

RAM_BASE = 0x8000_0000
RAM_SIZE = 32 * PAGE_SIZE  # page tables only; mapped frames may lie anywhere
KERNEL_VA = 0xFFFF_FFC0_0000_0000
SUPER_VA = 0x4000_0000
USER_ASIDS = (1, 2)

TOPICS = topics.TLB


@dataclass(frozen=True)
class QuizMapping:
    asid: int | None  # None: global, in every address space
    va: int
    pa: int
    size: int
    flags: int


@dataclass(frozen=True)
class Op:
    """One step: ``access`` (asid, access, va, priv), ``switch`` (asid), ``sfence`` (va/asid or None for x0),
    ``remap`` (asid, va, new pa) or ``unmap`` (asid, va): the last two change a PTE without a fence."""

    kind: str
    asid: int | None = None
    va: int | None = None
    access: Access | None = None
    priv: Priv | None = None
    pa: int | None = None

    def get_access(self) -> tuple[int, int, Access, Priv]:
        """``(asid, va, access, priv)`` of an ``access`` op."""
        asid, va, access, priv = self.asid, self.va, self.access, self.priv
        assert asid is not None and va is not None and access is not None and priv is not None, self
        return asid, va, access, priv

    def get_page(self) -> tuple[int, int]:
        """``(asid, va)`` of a ``remap`` or ``unmap`` op."""
        asid, va = self.asid, self.va
        assert asid is not None and va is not None, self
        return asid, va


@dataclass(frozen=True)
class Geometry:
    """A set-associative TLB for the exercise: sets x ways, the replacement policy, split I/D TLBs."""

    sets: int
    ways: int
    policy: str = "lru"  # lru, fifo, random
    split: bool = False

    @property
    def capacity(self) -> int:
        return self.sets * self.ways

    def describe(self) -> str:
        what = "an instruction TLB and a data TLB, each" if self.split else "a TLB of"
        return f"{what} {self.sets} set{'s' if self.sets > 1 else ''} x {self.ways} way{'s' if self.ways > 1 else ''}"


DIFFICULTIES = ("easy", "medium", "hard")
_OPS = {None: (10, 14), "easy": (6, 8), "medium": (10, 14), "hard": (16, 20)}


@dataclass(frozen=True)
class Step:
    """What an operation did to the TLB; ``entries`` is the TLB after it, least recently used first."""

    op: Op
    hit: Translation | None = None
    filled: Translation | None = None
    fault: str | None = None
    evicted: tuple = ()  # (asid or GLOBAL, Translation)
    removed: tuple = ()
    walked: Translation | None = None  # for a hit: what a walk would give now (differs when stale)
    entries: tuple = ()
    side: str | None = None  # with split TLBs: "I" or "D", the TLB the access used
    sets: tuple = ()  # with a geometry: per TLB ("", "I" or "D"), its sets' entries after the step


@dataclass(frozen=True)
class TlbExercise:
    seed: int
    number: int
    topic: str
    capacity: int
    mappings: tuple[QuizMapping, ...]
    ops: tuple[Op, ...]
    geometry: Geometry | None = None

    def build(self) -> tuple[PhysicalMemory, dict[int, AddressSpace]]:
        """The page tables of both address spaces, in a fresh RAM."""
        phys = PhysicalMemory()
        frames = FrameAllocator(phys.add_ram(RAM_BASE, RAM_SIZE))
        spaces = {asid: AddressSpace(phys, frames, asid=asid) for asid in USER_ASIDS}
        for m in self.mappings:
            for asid in [m.asid] if m.asid is not None else USER_ASIDS:
                spaces[asid].map(m.va, m.pa, m.size, m.flags, page_size=m.size)
        return phys, spaces

    def solve(self) -> list[Step]:
        if self.geometry is not None:
            return self._solve_geometry(self.geometry)
        phys, spaces = self.build()
        tlb = Tlb(capacity=self.capacity)
        steps = []
        for op in self.ops:
            before = tlb.entries()
            if op.kind == "access":
                asid, va, access, priv = op.get_access()
                now = walk(phys, spaces[asid].root, va, access, priv, ad=AdPolicy.UPDATE)
                tr = tlb.lookup(asid, va)
                if tr is not None:
                    step = Step(op, hit=tr, walked=now.translation)
                elif now.translation is not None:
                    tlb.insert(asid, now.translation)
                    after = tlb.entries()
                    evicted = tuple(e for e in before if e not in after)
                    step = Step(op, filled=now.translation, evicted=evicted)
                else:
                    fault = now.fault
                    assert fault is not None  # a walk without a translation has a fault
                    step = Step(op, fault=f"{fault.kind} (cause {int(fault.cause)}): {fault.message}")
            elif op.kind == "sfence":
                tlb.flush(op.va, op.asid)
                after = tlb.entries()
                step = Step(op, removed=tuple(e for e in before if e not in after))
            elif op.kind == "remap":
                asid, va = op.get_page()
                assert op.pa is not None  # a remap names its new frame
                m = _mapping_at(self.mappings, asid, va)
                spaces[asid].unmap(va, PAGE_SIZE)
                spaces[asid].map(va, op.pa, PAGE_SIZE, m.flags)
                step = Step(op)
            elif op.kind == "unmap":
                asid, va = op.get_page()
                spaces[asid].unmap(va, PAGE_SIZE)
                step = Step(op)
            else:
                step = Step(op)
            steps.append(replace(step, entries=tuple(tlb.entries())))
        return steps

    def _solve_geometry(self, g: Geometry) -> list[Step]:
        """:meth:`solve` on set-associative TLBs (:mod:`hwsim.mmu.tlb_sa`); random replacement draws from
        ``random.Random("hwsim-tlb-quiz-random:SEED:NUMBER")`` (the data TLB from ``...:D``)."""
        phys, spaces = self.build()
        seed = f"hwsim-tlb-quiz-random:{self.seed}:{self.number}"
        if g.split:
            split = SplitTlb(sets=g.sets, ways=g.ways, policy=g.policy)
            split.itlb.rng.seed(seed)
            split.dtlb.rng.seed(seed + ":D")
            tlbs = {"I": split.itlb, "D": split.dtlb}
        else:
            one = SetAssocTlb(sets=g.sets, ways=g.ways, policy=g.policy)
            one.rng.seed(seed)
            tlbs = {"": one}
        steps = []
        for op in self.ops:
            side = None
            if op.kind == "access":
                asid, va, access, priv = op.get_access()
                side = ("I" if access is Access.FETCH else "D") if g.split else ""
                tlb = tlbs[side]
                now = walk(phys, spaces[asid].root, va, access, priv, ad=AdPolicy.UPDATE)
                tr = tlb.lookup(asid, va)
                if tr is not None:
                    step = Step(op, hit=tr, walked=now.translation)
                elif now.translation is not None:
                    evicted = tlb.insert(asid, now.translation)
                    step = Step(op, filled=now.translation, evicted=tuple(evicted))
                else:
                    fault = now.fault
                    assert fault is not None  # a walk without a translation has a fault
                    step = Step(op, fault=f"{fault.kind} (cause {int(fault.cause)}): {fault.message}")
            elif op.kind == "sfence":
                before = {name: t.entries() for name, t in tlbs.items()}
                for t in tlbs.values():
                    t.flush(op.va, op.asid)
                removed = tuple(e for name, t in tlbs.items() for e in before[name] if e not in t.entries())
                step = Step(op, removed=removed)
            elif op.kind in ("remap", "unmap"):
                asid, va = op.get_page()
                m = _mapping_at(self.mappings, asid, va)
                spaces[asid].unmap(va, PAGE_SIZE)
                if op.kind == "remap":
                    assert op.pa is not None  # a remap names its new frame
                    spaces[asid].map(va, op.pa, PAGE_SIZE, m.flags)
                step = Step(op)
            else:
                step = Step(op)
            layout = tuple((name, tuple(tuple(s) for s in t.entries_by_set())) for name, t in tlbs.items())
            entries = tuple(e for t in tlbs.values() for e in t.entries())
            steps.append(replace(step, entries=entries, side=side or None, sets=layout))
        return steps


def _mapping_at(mappings, asid: int, va: int) -> QuizMapping:
    for m in mappings:
        if (m.asid == asid or m.asid is None) and m.va <= va < m.va + m.size:
            return m
    raise KeyError(va)


# -- generation ----------------------------------------------------------------------------------------------


_LRU_ATTEMPTS = 64  # each draw of an lru exercise evicts something about half the time


def make_exercise(
    seed: int,
    number: int,
    topics: list[str] | None = None,
    *,
    geometry: Geometry | None = None,
    difficulty: str | None = None,
) -> TlbExercise:
    """Exercise ``number`` of ``seed``.  An ``lru`` exercise always evicts something (its sequence is drawn
    again, from a stream derived from the seed, until one does); in the others a miss may evict nothing, and
    the question says so."""
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    if difficulty is not None and difficulty not in DIFFICULTIES:
        raise ConfigError(f"unknown difficulty {difficulty!r}; difficulties: {', '.join(DIFFICULTIES)}")
    rng = random.Random(f"hwsim-tlb-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    for attempt in range(_LRU_ATTEMPTS):
        if attempt:
            rng = random.Random(f"hwsim-tlb-quiz:{seed}:{number}:{attempt}")
        ex = _draw(rng, seed, number, topic, difficulty)
        if geometry is not None:
            ex = replace(ex, capacity=geometry.capacity, geometry=geometry)
        if topic != "lru" or any(step.evicted for step in ex.solve()):
            return ex
    if geometry is not None:  # a big TLB may have no room to evict in a short sequence: keep the last draw
        return ex
    raise AssertionError(f"a bug: no lru exercise with an eviction in {_LRU_ATTEMPTS} draws (seed {seed}, {number})")


def _draw(rng: random.Random, seed: int, number: int, topic: str, difficulty: str | None = None) -> TlbExercise:
    """Mappings and a sequence of operations for ``topic``, from ``rng`` (``difficulty`` None or medium: the
    default exercise; easy: shorter, one address space, no superpage; hard: longer, both, always)."""
    capacity = rng.choice([2, 4, 4, 4]) if topic == "lru" else 4
    frame = iter(rng.sample(range(0x80100, 0x8FFFF), 40))
    mappings: list[QuizMapping] = []
    user = Pte.R | Pte.W | Pte.U
    base = rng.randrange(0x10, 0x200) << 12
    pages1 = sorted(rng.sample(range(6), rng.randint(3, 5)))
    for p in pages1:
        mappings.append(
            QuizMapping(
                1, base + p * PAGE_SIZE, next(frame) << 12, PAGE_SIZE, rng.choice([user, Pte.R | Pte.X | Pte.U])
            )
        )
    two_spaces = topic != "lru" or rng.random() < 0.3
    if difficulty == "easy" and topic == "lru":
        two_spaces = False
    elif difficulty == "hard":
        two_spaces = True
    pages2: list[int] = []
    if two_spaces:
        pages2 = sorted(rng.sample(range(6), rng.randint(2, 3)))  # some at the same VAs as ASID 1's: homonyms
        for p in pages2:
            mappings.append(QuizMapping(2, base + p * PAGE_SIZE, next(frame) << 12, PAGE_SIZE, user))
    has_super = rng.random() < 0.6
    if difficulty in ("easy", "hard"):
        has_super = difficulty == "hard"
    if has_super:
        mappings.append(QuizMapping(1, SUPER_VA, rng.randrange(0x80200, 0x8FE00, 0x200) << 12, 2 << 20, user))
    kernel = [KERNEL_VA + k * PAGE_SIZE for k in sorted(rng.sample(range(4), rng.randint(1, 2)))]
    for va in kernel:
        mappings.append(QuizMapping(None, va, next(frame) << 12, PAGE_SIZE, Pte.R | Pte.W | Pte.X | Pte.G))

    def pick(asid: int) -> tuple[int, Priv]:
        """A page to touch: mostly the space's own 4 KiB pages, sometimes the superpage or a kernel page."""
        roll = rng.random()
        if asid == 1 and has_super and roll < 0.15:
            return SUPER_VA + rng.randrange(512) * PAGE_SIZE, Priv.U
        if roll < 0.3:
            return rng.choice(kernel), Priv.S
        if roll < 0.35:
            return unmapped, Priv.U
        return rng.choice([m.va for m in mappings if m.asid == asid and m.size == PAGE_SIZE]), Priv.U

    def access_op(asid: int, va: int, priv: Priv) -> Op:
        m = next((m for m in mappings if m.asid in (asid, None) and m.va <= va < m.va + m.size), None)
        if m is not None and m.flags & Pte.X and not m.flags & Pte.W:
            access = rng.choice([Access.FETCH, Access.LOAD])
        elif m is not None and m.flags & Pte.W:
            access = rng.choice([Access.LOAD, Access.LOAD, Access.STORE])
        else:
            access = Access.LOAD
        return Op(
            "access", asid=asid, va=(va & ~(PAGE_SIZE - 1)) | rng.randrange(0, PAGE_SIZE, 8), access=access, priv=priv
        )

    unmapped = base + rng.choice([p for p in range(8) if p not in pages1]) * PAGE_SIZE
    ops: list[Op] = []
    asid = 1
    recent: list[tuple[int, Priv]] = []
    changed = False
    n = rng.randint(*_OPS[difficulty])
    while len(ops) < n:
        roll = rng.random()
        if topic in ("asid", "sfence", "stale") and roll < 0.12 and two_spaces and ops and ops[-1].kind != "switch":
            asid = 3 - asid
            ops.append(Op("switch", asid=asid))
            continue
        if (topic == "sfence" and roll < 0.3 or topic != "sfence" and 0.12 <= roll < 0.17) and len(ops) > 2:
            kind = rng.choice(["all", "va", "asid", "both"])
            page = rng.choice(recent)[0] if recent else pick(asid)[0]
            fence_va = page | rng.randrange(0, PAGE_SIZE, 8) if kind in ("va", "both") else None
            fence_asid = rng.choice(USER_ASIDS if two_spaces else (1,)) if kind in ("asid", "both") else None
            ops.append(Op("sfence", asid=fence_asid, va=fence_va))
            continue
        if topic == "stale" and not changed and len(ops) >= 2 and roll < 0.4:
            # Touch a page, change its PTE without a fence, touch it again: the TLB still has the old entry.
            m = rng.choice([m for m in mappings if m.asid == asid and m.size == PAGE_SIZE])
            ops.append(access_op(asid, m.va, Priv.U))
            if rng.random() < 0.5:
                ops.append(Op("remap", asid=asid, va=m.va, pa=next(frame) << 12))
            else:
                ops.append(Op("unmap", asid=asid, va=m.va))
            changed = True
            ops.append(access_op(asid, m.va, Priv.U))
            if rng.random() < 0.7:
                ops.append(Op("sfence", va=m.va | rng.randrange(0, PAGE_SIZE, 8), asid=rng.choice([None, asid])))
                ops.append(access_op(asid, m.va, Priv.U))
            continue
        if recent and rng.random() < 0.35:
            va, priv = rng.choice(recent)
        else:
            va, priv = pick(asid)
        if (
            priv is Priv.U
            and va != unmapped
            and not any(m.asid == asid and m.va <= va < m.va + m.size for m in mappings)
        ):
            va, priv = pick(asid)  # a page of the other space: pick again
        recent = (recent + [(va & ~(PAGE_SIZE - 1), priv)])[-3:]
        ops.append(access_op(asid, va, priv))
    return TlbExercise(seed, number, topic, capacity, tuple(mappings), tuple(ops))


def make_quiz(
    seed: int,
    count: int = 3,
    topics: list[str] | None = None,
    *,
    geometry: Geometry | None = None,
    difficulty: str | None = None,
    harts: int | None = None,
) -> list:
    """``harts``: shootdown exercises on that many harts instead (:mod:`hwsim.teach.shootdown_quiz`)."""
    check_seed_and_count(seed, count)
    if harts is not None:
        if geometry is not None or difficulty is not None or topics:
            raise ConfigError(
                "--harts has exercises of its own: no --topic, --sets, --ways, --policy, --split or --difficulty"
            )
        return shootdown_quiz.make_quiz(seed, count, harts)
    return [make_exercise(seed, n, topics, geometry=geometry, difficulty=difficulty) for n in range(1, count + 1)]


def quiz_options(args) -> dict:
    """``make_quiz`` keyword arguments from the command line's options."""
    geometry = None
    if args.sets is not None or args.ways is not None or args.policy is not None or args.split:
        sets = 1 if args.sets is None else args.sets
        if sets <= 0 or sets & (sets - 1):
            raise ConfigError(f"--sets must be a power of two, not {sets}")
        ways = max(1, 4 // sets) if args.ways is None else args.ways
        if not 1 <= ways <= 64 or sets > 64:
            raise ConfigError(f"--ways must be from 1 to 64 and --sets at most 64, not {ways} and {sets}")
        geometry = Geometry(sets, ways, args.policy or "lru", args.split)
    harts = getattr(args, "harts", None)
    if harts is None:
        return {"geometry": geometry, "difficulty": args.difficulty}
    if getattr(args, "html", None):
        raise ConfigError("--html is not available with --harts (the practice page knows one TLB)")
    return {"geometry": geometry, "difficulty": args.difficulty, "harts": harts}


def options_suffix(args) -> str:
    """The options as they were given, for the command line printed above the exercises."""
    out = ""
    for name in ("sets", "ways", "policy", "difficulty"):
        value = getattr(args, name)
        if value is not None:
            out += f" --{name} {value}"
    out += " --split" if args.split else ""
    return out + (f" --harts {args.harts}" if getattr(args, "harts", None) is not None else "")


# -- presentation -----------------------------------------------------------------------------------------------


def entry_name(asid: int, tr: Translation) -> str:
    tag = "G" if asid == GLOBAL else f"A{asid}"
    size = "" if tr.page_size == PAGE_SIZE else f" ({tr.page_size >> 20} MiB)"
    return f"[{tag} {tr.page_va:#x}{size} -> {tr.page_pa:#x}]"


def short_name(asid: int, tr: Translation) -> str:
    tag = "G" if asid == GLOBAL else f"A{asid}"
    return f"{tag}:{tr.page_va:#x}" + ("" if tr.page_size == PAGE_SIZE else f"/{tr.page_size >> 20}M")


def _fence(op: Op) -> str:
    rs1 = "x0" if op.va is None else f"{op.va:#x}"
    rs2 = "x0" if op.asid is None else f"ASID {op.asid}"
    return f"sfence.vma {rs1}, {rs2}"


def describe_op(op: Op) -> str:
    if op.kind == "access":
        asid, va, access, priv = op.get_access()
        return f"ASID {asid}, {priv.name}-mode: {access.value:<5} {va:#x}"
    if op.kind == "switch":
        return f"switch to ASID {op.asid} (csrw satp, no fence)"
    if op.kind == "sfence":
        return _fence(op)
    if op.kind == "remap":
        return f"the kernel moves ASID {op.asid}'s page {op.va:#x} to frame {op.pa:#x} (rewrites the PTE, no fence)"
    return f"the kernel unmaps ASID {op.asid}'s page {op.va:#x} (clears the PTE, no fence)"


def format_exercise(ex: TlbExercise) -> list[str]:
    if isinstance(ex, shootdown_quiz.ShootdownExercise):
        return shootdown_quiz.format_exercise(ex)
    lines = [f"TLB exercise {ex.number} (seed {ex.seed})", ""]
    if ex.geometry is not None:
        lines.extend(textwrap.wrap(_geometry_text(ex.geometry), 78))
    else:
        lines.extend(
            textwrap.wrap(
                f"A TLB of {ex.capacity} entries, fully associative, least-recently-used replacement, empty at the start.  "
                "An entry holds one leaf translation (a 2 MiB superpage takes one entry), tagged with the ASID it was "
                "filled for, or global (G=1) matching every ASID.  A miss walks the page tables and fills an entry; a walk "
                "that faults fills nothing.  sfence.vma rs1, rs2 removes: (x0, x0) every entry; (va, x0) the entries "
                "mapping va, in every ASID; (x0, asid) the non-global entries of asid; (va, asid) the non-global entries "
                "of asid mapping va.",
                78,
            )
        )
    lines.append("")
    lines.append("Mappings (4 KiB pages unless marked, A and D set):")
    for m in ex.mappings:
        who = "global" if m.asid is None else f"ASID {m.asid}"
        size = "" if m.size == PAGE_SIZE else f"-{m.va + m.size - 1:#x} ({m.size >> 20} MiB superpage)"
        lines.append(f"  {who:<7} va {m.va:#x}{size} -> pa {m.pa:#x}  {perms_string(m.flags)}")
    lines.append("")
    lines.append("Sequence:")
    for n, op in enumerate(ex.ops, 1):
        lines.append(f"  {n:2}. {describe_op(op)}")
    lines.append("")
    lines.append('For each access: hit or miss, and the entry a miss evicts ("none" when it fills a')
    lines.append("free entry or fills nothing).  For each sfence.vma: the entries it removes.  Then:")
    lines.append("the TLB's contents at the end.")
    return lines


_VICTIM = {
    "lru": "the least recently used way of set {set}",
    "fifo": "the way of set {set} filled longest ago",
    "random": "a way of set {set} drawn at random",
}


def _geometry_text(g: Geometry) -> str:
    text = (
        f"{g.describe()[0].upper()}{g.describe()[1:]} ({g.capacity} entries{' each' if g.split else ''}), {g.policy.upper()} replacement "
        f"within a set, empty at the start.  An entry goes to set (VPN at its own page size) mod {g.sets}: a "
        f"4 KiB page by va >> 12, a 2 MiB superpage by va >> 21; a lookup checks the set each page size "
        f"selects.  A miss evicts only from its own set, and only when the set is full.  "
    )
    if g.split:
        text += "Instruction fetches use the ITLB, loads and stores the DTLB; sfence.vma flushes both.  "
    if g.policy == "random":
        text += "(Random replacement: the answer names the way drawn; grade hits and misses.)  "
    return text + (
        "An entry holds one leaf translation, tagged with the ASID it was filled for, or global (G=1) matching "
        "every ASID.  A walk that faults fills nothing.  sfence.vma rs1, rs2 removes: (x0, x0) every entry; "
        "(va, x0) the entries mapping va, in every ASID; (x0, asid) the non-global entries of asid; (va, asid) "
        "the non-global entries of asid mapping va."
    )


def describe_step(step: Step, geometry: Geometry | None = None) -> str:
    op = step.op
    if op.kind == "access":
        asid, va, _access, _priv = op.get_access()
        prefix = f"{step.side}TLB " if step.side else ""
        if step.hit is not None:
            text = f"{prefix}hit {entry_name(asid if not step.hit.global_ else GLOBAL, step.hit)} -> pa {step.hit.pa_of(va):#x}"
            if step.walked is None or step.walked.pa_of(va) != step.hit.pa_of(va):
                now = "faults" if step.walked is None else f"gives pa {step.walked.pa_of(va):#x}"
                text += f"  STALE: a walk now {now}"
            return text
        if step.fault is not None:
            return f"{prefix}miss; the walk raises a {step.fault}; fills nothing, evicts none"
        filled = step.filled
        assert filled is not None  # an access that neither hit nor faulted filled an entry
        tag = GLOBAL if filled.global_ else asid
        text = f"miss; walk -> pa {filled.pa:#x}; fill {entry_name(tag, filled)}"
        if geometry is not None:
            where = (filled.va >> (12 + 9 * filled.level)) % geometry.sets  # the VPN at the entry's own level
            text = prefix + text
            text += f" in set {where}"
            if step.evicted:
                victim = _VICTIM[geometry.policy].format(set=where)
                text += "; evicts " + ", ".join(entry_name(a, t) for a, t in step.evicted) + f" ({victim})"
            else:
                text += "; evicts none (a free way)"
            return text
        if step.evicted:
            text += "; evicts " + ", ".join(entry_name(a, t) for a, t in step.evicted) + " (least recently used)"
        else:
            text += "; evicts none (a free entry)"
        return text
    if op.kind == "sfence":
        if not step.removed:
            return "removes nothing"
        return "removes " + ", ".join(entry_name(a, t) for a, t in step.removed)
    if op.kind == "switch":
        return f"from now on ASID {op.asid}; the TLB keeps every entry"
    return "the TLB is not told: its entry for this page (if any) stays"


def format_answer(ex: TlbExercise) -> list[str]:
    if isinstance(ex, shootdown_quiz.ShootdownExercise):
        return shootdown_quiz.format_answer(ex)
    steps = ex.solve()
    lines = [f"Answer {ex.number} ({TOPICS[ex.topic]}):"]
    for n, step in enumerate(steps, 1):
        if ex.geometry is not None:
            lines.append(f"  {n:2}. {describe_step(step, ex.geometry)}")
            order = {"lru": "LRU first", "fifo": "oldest first", "random": "oldest first"}[ex.geometry.policy]
            for name, sets in step.sets:
                contents = " | ".join(
                    f"{i}: " + (" ".join(short_name(a, t) for a, t in entries) or "-") for i, entries in enumerate(sets)
                )
                lines.append(f"      {name}TLB sets ({order}): {contents}")
            continue
        lines.append(f"  {n:2}. {describe_step(step)}")
        contents = "  ".join(short_name(a, t) for a, t in step.entries) or "(empty)"
        lines.append(f"      TLB, LRU first: {contents}")
    accesses = [s for s in steps if s.op.kind == "access"]
    hits = sum(1 for s in accesses if s.hit is not None)
    lines.append(
        f"  {plural(hits, 'hit')}, {plural(len(accesses) - hits, 'miss', 'misses')} in {plural(len(accesses), 'access', 'accesses')}"
    )
    return lines


def exercise_to_json(ex: TlbExercise, *, solve: bool) -> dict:
    if isinstance(ex, shootdown_quiz.ShootdownExercise):
        return shootdown_quiz.exercise_to_json(ex, solve=solve)

    def op_json(op: Op) -> dict:
        out = {"kind": op.kind}
        for key in ("asid", "va", "pa"):
            value = getattr(op, key)
            if value is not None:
                out[key] = value if key == "asid" else hex(value)
        if op.kind == "access":
            _asid, _va, access, priv = op.get_access()
            out["access"], out["priv"] = access.value, priv.name
        return out

    out = {
        "number": ex.number,
        "capacity": ex.capacity,
        "mappings": [
            {"asid": m.asid, "va": hex(m.va), "pa": hex(m.pa), "size": m.size, "perms": perms_string(m.flags)}
            for m in ex.mappings
        ],
        "ops": [op_json(op) for op in ex.ops],
    }
    if ex.geometry is not None:
        g = ex.geometry
        out["geometry"] = {"sets": g.sets, "ways": g.ways, "policy": g.policy, "split": g.split}
    if solve:
        out["topic"] = ex.topic
        out["answers"] = [describe_step(s, ex.geometry) for s in ex.solve()]
    return out
