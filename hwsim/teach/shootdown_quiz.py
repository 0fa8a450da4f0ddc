"""TLB shootdown exercises on several harts (``hwsim mmu tlb-quiz --harts 2``), answered by hwsim's TLB model.

::

    hart 0: TLB (4 entries, LRU)      hart 1: TLB (4 entries, LRU)      one page table (ASID 1)
       accesses fill each hart's own TLB from the shared page table
    hart X rewrites or clears a PTE (no fence)
       -> every hart whose TLB holds the page now holds a STALE entry
       -> hart X needs sfence.vma VA; each other hart holding it needs an IPI from X whose handler
          runs sfence.vma VA (a fence reaches only the hart that executes it)
    then accesses, local fences and IPIs, on either hart, in the order drawn

One process (ASID 1) runs on every hart, as threads do, so the harts share one page table but
each caches its own translations.  The student marks each access hit or miss, the physical
address it returns (through a stale entry: the old one) or its fault, each fence's victims, and,
after the PTE change, which harts hold a stale entry and which fences and IPIs are needed; at the
end, which harts still hold one.  :meth:`ShootdownExercise.solve` replays the sequence on one
:class:`hwsim.mmu.tlb.Tlb` per hart, filling misses with the walker; the tests replay it on a
plain list-per-hart model.
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
from ..mmu.tlb import Tlb
from ..mmu.walker import AdPolicy, Translation, walk
from ..riscv.priv import Access, Priv

ASID = 1
RAM_BASE = 0x8000_0000
RAM_SIZE = 32 * PAGE_SIZE
MAX_HARTS = 4

TOPICS = {"shootdown": "a PTE changed on one hart: stale entries on each hart, the fences and IPIs it needs"}


@dataclass(frozen=True)
class Page:
    va: int
    pa: int
    flags: int


@dataclass(frozen=True)
class HartOp:
    """One step on hart ``hart``: ``access`` (access, va), ``remap`` (va, new pa) or ``unmap`` (va): a PTE
    changed without a fence; ``sfence`` (va, None for x0) on that hart; ``ipi`` (target, va): an IPI to
    ``target``, whose handler runs ``sfence.vma va, x0`` (va None: x0)."""

    kind: str
    hart: int
    va: int | None = None
    access: Access | None = None
    pa: int | None = None
    target: int | None = None


@dataclass(frozen=True)
class HartStep:
    """What an op did; ``entries``: each hart's TLB after it, least recently used first; ``stale``: per
    hart, its entries a walk now contradicts (after the step)."""

    op: HartOp
    hit: Translation | None = None
    filled: Translation | None = None
    fault: str | None = None
    evicted: tuple = ()
    removed: tuple = ()
    walked: Translation | None = None
    entries: tuple = ()
    stale: tuple = ()


@dataclass(frozen=True)
class ShootdownExercise:
    seed: int
    number: int
    topic: str
    harts: int
    capacity: int
    pages: tuple[Page, ...]
    ops: tuple[HartOp, ...]

    def build(self) -> tuple[PhysicalMemory, AddressSpace]:
        phys = PhysicalMemory()
        frames = FrameAllocator(phys.add_ram(RAM_BASE, RAM_SIZE))
        space = AddressSpace(phys, frames, asid=ASID)
        for p in self.pages:
            space.map(p.va, p.pa, PAGE_SIZE, p.flags)
        return phys, space

    def solve(self) -> list[HartStep]:
        phys, space = self.build()
        tlbs = [Tlb(capacity=self.capacity) for _ in range(self.harts)]

        def now(va: int, access: Access = Access.LOAD):
            return walk(phys, space.root, va, access, Priv.U, ad=AdPolicy.UPDATE)

        def stale_of(tlb: Tlb) -> tuple:
            out = []
            for asid, tr in tlb.entries():
                current = now(tr.page_va).translation
                if current is None or current.page_pa != tr.page_pa:
                    out.append((asid, tr))
            return tuple(out)

        steps = []
        for op in self.ops:
            tlb = tlbs[op.hart]
            if op.kind == "access":
                assert op.va is not None and op.access is not None, op
                result = now(op.va, op.access)
                tr = tlb.lookup(ASID, op.va)
                if tr is not None:
                    step = HartStep(op, hit=tr, walked=result.translation)
                elif result.translation is not None:
                    before = tlb.entries()
                    tlb.insert(ASID, result.translation)
                    after = tlb.entries()
                    step = HartStep(op, filled=result.translation, evicted=tuple(e for e in before if e not in after))
                else:
                    fault = result.fault
                    assert fault is not None  # a walk without a translation has a fault
                    step = HartStep(op, fault=f"{fault.kind} (cause {int(fault.cause)})")
            elif op.kind in ("sfence", "ipi"):
                target = tlbs[op.target] if op.kind == "ipi" and op.target is not None else tlb
                before = target.entries()
                target.flush(op.va, None)
                after = target.entries()
                step = HartStep(op, removed=tuple(e for e in before if e not in after))
            else:
                assert op.va is not None, op
                page = next(p for p in self.pages if p.va == op.va)
                space.unmap(op.va, PAGE_SIZE)
                if op.kind == "remap":
                    assert op.pa is not None  # a remap names its new frame
                    space.map(op.va, op.pa, PAGE_SIZE, page.flags)
                step = HartStep(op)
            steps.append(
                replace(step, entries=tuple(tuple(t.entries()) for t in tlbs), stale=tuple(stale_of(t) for t in tlbs))
            )
        return steps


# -- generation ----------------------------------------------------------------------------------------------


def make_exercise(seed: int, number: int, harts: int = 2) -> ShootdownExercise:
    """Exercise ``number`` of ``seed`` on ``harts`` harts: accesses that fill the harts' TLBs, one PTE change
    on one hart, then accesses, fences and IPIs (sometimes all the shootdown needs, sometimes not)."""
    if not 2 <= harts <= MAX_HARTS:
        raise ConfigError(f"--harts must be from 2 to {MAX_HARTS}, not {harts}")
    rng = random.Random(f"hwsim-tlb-shootdown-quiz:{seed}:{number}:{harts}")
    frames = iter(rng.sample(range(0x80100, 0x8FFFF), 16))
    base = rng.randrange(0x10, 0x200) << 12
    user = Pte.R | Pte.W | Pte.U
    pages = tuple(
        Page(base + p * PAGE_SIZE, next(frames) << 12, rng.choice([user, user, Pte.R | Pte.X | Pte.U]))
        for p in sorted(rng.sample(range(6), rng.randint(3, 4)))
    )
    capacity = rng.choice([2, 3, 4])

    def access(hart: int, page: Page) -> HartOp:
        kinds = [Access.LOAD, Access.LOAD, Access.STORE] if page.flags & Pte.W else [Access.LOAD, Access.FETCH]
        va = page.va | rng.randrange(0, PAGE_SIZE, 8)
        return HartOp("access", hart, va=va, access=rng.choice(kinds))

    target = rng.choice(pages)
    ops: list[HartOp] = []
    # Warm-up: the page to change touched on most harts, other pages among them (they may evict it).
    warm = [access(hart, target) for hart in range(harts) if rng.random() < 0.85]
    warm += [access(rng.randrange(harts), rng.choice(pages)) for _ in range(rng.randint(1, 1 + harts))]
    rng.shuffle(warm)
    ops.extend(warm)
    initiator = rng.randrange(harts)
    if rng.random() < 0.5:
        ops.append(HartOp("remap", initiator, va=target.va, pa=next(frames) << 12))
    else:
        ops.append(HartOp("unmap", initiator, va=target.va))
    # After it: the fences and IPIs a shootdown sends (each maybe forgotten), with accesses among them.
    actions: list[HartOp] = []
    if rng.random() < 0.75:
        actions.append(HartOp("sfence", initiator, va=target.va if rng.random() < 0.8 else None))
    for other in range(harts):
        if other != initiator and rng.random() < 0.65:
            actions.append(HartOp("ipi", initiator, va=target.va if rng.random() < 0.8 else None, target=other))
    for _ in range(rng.randint(2, 4)):
        hart = rng.randrange(harts)
        actions.insert(rng.randint(0, len(actions)), access(hart, target if rng.random() < 0.7 else rng.choice(pages)))
    ops.extend(actions)
    for hart in rng.sample(range(harts), harts):  # at the end: the page once more on every hart
        ops.append(access(hart, target))
    return ShootdownExercise(seed, number, "shootdown", harts, capacity, pages, tuple(ops))


def make_quiz(seed: int, count: int, harts: int = 2) -> list[ShootdownExercise]:
    return [make_exercise(seed, n, harts) for n in range(1, count + 1)]


# -- presentation -----------------------------------------------------------------------------------------------


def _entry(tr: Translation) -> str:
    return f"[A{ASID} {tr.page_va:#x} -> {tr.page_pa:#x}]"


def _fence(va: int | None) -> str:
    return f"sfence.vma {'x0' if va is None else f'{va:#x}'}, x0"


def describe_op(op: HartOp) -> str:
    who = f"hart {op.hart}: "
    if op.kind == "access":
        assert op.access is not None and op.va is not None, op
        return f"{who}{op.access.value:<5} {op.va:#x}"
    if op.kind == "remap":
        return f"{who}the kernel moves page {op.va:#x} to frame {op.pa:#x} (rewrites the PTE, no fence)"
    if op.kind == "unmap":
        return f"{who}the kernel unmaps page {op.va:#x} (clears the PTE, no fence)"
    if op.kind == "sfence":
        return f"{who}{_fence(op.va)}"
    return f"{who}sends an IPI to hart {op.target}; hart {op.target}'s handler runs {_fence(op.va)}"


def format_exercise(ex: ShootdownExercise) -> list[str]:
    lines = [f"TLB shootdown exercise {ex.number} (seed {ex.seed})", ""]
    lines.extend(
        textwrap.wrap(
            f"{ex.harts} harts run one process (ASID {ASID}): one page table, but each hart has its own TLB of "
            f"{ex.capacity} entries, fully associative, least-recently-used replacement, empty at the start.  An "
            "access that misses walks the page table and fills its own hart's TLB; a walk that faults fills "
            "nothing.  An access that hits uses the entry as it is, even when the PTE has changed since (a stale "
            "entry).  sfence.vma reaches only the hart that executes it: (va, x0) removes its entries mapping va, "
            "(x0, x0) all of them.  An IPI makes the target hart run the handler named.",
            78,
        )
    )
    lines.append("")
    lines.append(f"Pages of ASID {ASID} (4 KiB, A and D set):")
    for p in ex.pages:
        lines.append(f"  va {p.va:#x} -> pa {p.pa:#x}  {perms_string(p.flags)}")
    lines.append("")
    lines.append("Sequence:")
    for n, op in enumerate(ex.ops, 1):
        lines.append(f"  {n:2}. {describe_op(op)}")
    lines.append("")
    lines.extend(
        textwrap.wrap(
            "For each access: hit or miss, the physical address it returns or its fault, and whether it used a "
            "stale entry.  For each sfence.vma or IPI: the entries it removes, and from which hart.  Right "
            "after the PTE change: which harts hold a stale entry, and which fences and IPIs make the change "
            "safe.  At the end: which harts still hold a stale entry.",
            78,
        )
    )
    return lines


def needed(ex: ShootdownExercise, step: HartStep) -> list[str]:
    """After a PTE change: what each hart holding a stale entry for the page needs."""
    op = step.op
    out = []
    for hart, stale in enumerate(step.stale):
        if not any(tr.page_va == op.va for _asid, tr in stale):
            continue
        if hart == op.hart:
            out.append(f"hart {hart} (it changed the PTE): {_fence(op.va)}")
        else:
            out.append(f"hart {hart}: an IPI from hart {op.hart}, whose handler runs {_fence(op.va)}")
    return out


def describe_step(ex: ShootdownExercise, step: HartStep) -> str:
    op = step.op
    if op.kind == "access":
        assert op.va is not None
        if step.hit is not None:
            text = f"hit {_entry(step.hit)} -> pa {step.hit.pa_of(op.va):#x}"
            if step.walked is None or step.walked.pa_of(op.va) != step.hit.pa_of(op.va):
                now = "faults" if step.walked is None else f"gives pa {step.walked.pa_of(op.va):#x}"
                text += f"  STALE: a walk now {now}"
            return text
        if step.fault is not None:
            return f"miss; the walk raises a {step.fault}; fills nothing"
        filled = step.filled
        assert filled is not None  # an access that neither hit nor faulted filled an entry
        text = f"miss; walk -> pa {filled.pa:#x}; fill {_entry(filled)}"
        if step.evicted:
            return text + "; evicts " + ", ".join(_entry(tr) for _a, tr in step.evicted)
        return text
    if op.kind in ("sfence", "ipi"):
        hart = op.target if op.kind == "ipi" else op.hart
        if not step.removed:
            return f"removes nothing from hart {hart}'s TLB"
        return f"removes {', '.join(_entry(tr) for _a, tr in step.removed)} from hart {hart}'s TLB"
    holders = [f"hart {h}" for h, stale in enumerate(step.stale) if any(tr.page_va == op.va for _a, tr in stale)]
    if not holders:
        return "no hart holds the page: no fence or IPI is needed"
    return f"stale now on {', '.join(holders)}; needed: " + "; ".join(needed(ex, step))


def _final(steps: list[HartStep]) -> str:
    last = steps[-1].stale
    holders = [f"hart {h} ({', '.join(_entry(tr) for _a, tr in stale)})" for h, stale in enumerate(last) if stale]
    return "At the end: " + (
        "stale on " + "; ".join(holders) + ": the shootdown was incomplete"
        if holders
        else "no hart holds a stale entry"
    )


def format_answer(ex: ShootdownExercise) -> list[str]:
    steps = ex.solve()
    lines = [f"Answer {ex.number} ({TOPICS[ex.topic]}):"]
    for n, step in enumerate(steps, 1):
        text = textwrap.wrap(describe_step(ex, step), 72)
        lines.append(f"  {n:2}. {text[0]}")
        lines.extend(f"      {more}" for more in text[1:])
        for hart, entries in enumerate(step.entries):
            contents = "  ".join(f"{tr.page_va:#x}" for _a, tr in entries) or "(empty)"
            lines.append(f"      hart {hart} TLB, LRU first: {contents}")
    lines.extend(textwrap.wrap(_final(steps), 76, initial_indent="  ", subsequent_indent="    "))
    accesses = [s for s in steps if s.op.kind == "access"]
    hits = sum(1 for s in accesses if s.hit is not None)
    stale = sum(1 for s in accesses if s.hit is not None and (s.walked is None or s.walked.page_pa != s.hit.page_pa))
    lines.append(
        f"  {plural(hits, 'hit')} ({stale} stale), {plural(len(accesses) - hits, 'miss', 'misses')} in "
        f"{plural(len(accesses), 'access', 'accesses')}"
    )
    return lines


def exercise_to_json(ex: ShootdownExercise, *, solve: bool) -> dict:
    def op_json(op: HartOp) -> dict:
        out: dict = {"kind": op.kind, "hart": op.hart}
        for key in ("va", "pa"):
            value = getattr(op, key)
            if value is not None:
                out[key] = hex(value)
        if op.target is not None:
            out["target"] = op.target
        if op.access is not None:
            out["access"] = op.access.value
        return out

    out = {
        "number": ex.number,
        "harts": ex.harts,
        "capacity": ex.capacity,
        "pages": [{"asid": ASID, "va": hex(p.va), "pa": hex(p.pa), "perms": perms_string(p.flags)} for p in ex.pages],
        "ops": [op_json(op) for op in ex.ops],
    }
    if solve:
        steps = ex.solve()
        out["topic"] = ex.topic
        out["answers"] = [describe_step(ex, s) for s in steps]
        out["stale_at_end"] = [h for h, stale in enumerate(steps[-1].stale) if stale]
    return out
