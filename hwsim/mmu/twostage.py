"""Two-stage address translation (RISC-V hypervisor extension): the VS-stage nested over the G-stage.

A guest virtual address is translated by the VS-stage (vsatp: Sv39/Sv48) into a
guest-physical address (GPA), and every GPA, including the address of each
VS-stage PTE, is translated by the G-stage (hgatp: Sv39x4/Sv48x4) into a
supervisor-physical address.  Both stages are :func:`hwsim.mmu.walker.walk`;
this module only nests them, following the privileged specification's
"Two-Stage Address Translation"::

    va --VS-stage--> gpa --G-stage--> pa
         |  each VS PTE read at gpa_i:  gpa_i --G-stage (implicit load)--> pa_i, read pa_i
         |  a VS A/D write at gpa_leaf: gpa_leaf --G-stage (implicit store)--> pa, write

Rules (spec section "Two-Stage Address Translation" and hgatp):

* G-stage accesses are user-level: a G-stage leaf needs U=1, SUM does not
  apply, only mstatus.MXR (not vsstatus.MXR) makes executable pages readable.
* Reading a VS-stage PTE is an implicit load at the G-stage, setting a
  VS-stage A/D bit an implicit store (W and D needed there); the exception is
  still reported for the original access type.
* A G-stage failure is a guest-page fault (cause 20/21/23) with htval = the
  faulting GPA >> 2 (the PTE's GPA for an implicit access); a G-stage PTE or
  a VS-stage PTE outside memory is an access fault (1/5/7); a VS-stage
  failure is an ordinary page fault (12/13/15).

Choices where the specification leaves room, taken the straightforward way
(and transcribed the same way in ``tests/spec_walk_2stage.py``): nothing is
cached between the nested walks (each VS PTE read walks the G-stage afresh,
and so does its A/D write), which is what makes Sv39 over Sv39x4 cost up to
15 PTE reads (3 x (3 + 1) + 3), more with A/D writes.

The emulated CPU does not run guests: Unicorn's RISC-V has no hypervisor
extension, so two-stage translation is for walks, explanations and quizzes.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from ..riscv.priv import Access, Cause, Priv
from .bits import PAGE_SHIFT, PTE_PPN_MASK, PTE_PPN_SHIFT, PagingMode
from .walker import AdPolicy, FaultReason, PteMemory, WalkResult, WalkStep, walk


class Stage(enum.Enum):
    """Which stage of a two-stage translation faulted."""

    VS = "VS-stage"
    G = "G-stage"


class GuestReason(enum.Enum):
    """Why a G-stage walk stopped where :class:`FaultReason` has no word for it; the value is the message."""

    GPA_TOO_WIDE = "guest-physical address has bits set above the G-stage's width (they must be zero)"


class Purpose(enum.Enum):
    """Why the G-stage translated a guest-physical address."""

    VS_PTE = "read of the VS-stage PTE"  # an implicit load
    AD_WRITE = "A/D write of the VS-stage PTE"  # an implicit store
    FINAL = "the access itself"


@dataclass(frozen=True, slots=True)
class GStageWalk:
    """One G-stage translation of ``gpa``; ``result`` is None when hgatp is Bare (gpa = pa)."""

    purpose: Purpose
    vs_level: int | None  # the VS level whose PTE this serves (None for the final GPA)
    gpa: int
    access: Access  # the G-stage's access type (load/store for implicit accesses)
    result: WalkResult | None

    @property
    def pa(self) -> int | None:
        if self.result is None:
            return self.gpa
        return None if self.result.translation is None else self.result.translation.pa


@dataclass(frozen=True, slots=True)
class TwoStageFault:
    """A two-stage translation that stopped: which stage, the cause, why, where."""

    stage: Stage
    cause: Cause
    reason: FaultReason | GuestReason
    level: int | None  # the level in the faulting stage's walk (None: the address itself)
    vs_level: int | None = None  # for a G-stage fault on a VS PTE: the VS level being read
    purpose: Purpose | None = None  # for a G-stage fault: what the G-stage was translating
    gpa: int | None = None  # for a G-stage fault: the faulting guest-physical address

    @property
    def kind(self) -> str:
        if self.reason is FaultReason.PTE_ACCESS:
            return "access fault"
        return "guest-page fault" if self.stage is Stage.G else "page fault"

    @property
    def htval(self) -> int:
        """What htval holds: the faulting GPA >> 2 for a guest-page fault, else 0."""
        return self.gpa >> 2 if self.kind == "guest-page fault" and self.gpa is not None else 0

    @property
    def message(self) -> str:
        return str(self.reason.value)


@dataclass(frozen=True, slots=True)
class TwoStageResult:
    """A two-stage walk: every step in order (G-stage walks and VS-stage PTE reads), and the outcome."""

    vs_mode: PagingMode | None  # None: vsatp is Bare (gpa = va)
    vs_root: int  # guest-physical address of the VS root table
    g_mode: PagingMode | None  # None: hgatp is Bare (pa = gpa)
    g_root: int  # supervisor-physical address of the G-stage root table (16 KiB)
    va: int
    access: Access
    priv: Priv  # U = VU-mode, S = VS-mode
    sum: bool  # vsstatus.SUM
    mxr: bool  # mstatus.MXR (both stages)
    vs_mxr: bool  # vsstatus.MXR (VS-stage only)
    events: tuple[GStageWalk | WalkStep, ...]
    vs: WalkResult | None  # the VS-stage walk when it ran to its end (its steps' addresses are GPAs)
    gpa: int | None = None
    pa: int | None = None
    fault: TwoStageFault | None = None

    @property
    def ok(self) -> bool:
        return self.fault is None

    @property
    def g_walks(self) -> tuple[GStageWalk, ...]:
        return tuple(e for e in self.events if isinstance(e, GStageWalk))

    @property
    def vs_steps(self) -> tuple[WalkStep, ...]:
        return tuple(e for e in self.events if isinstance(e, WalkStep))

    @property
    def pte_reads(self) -> int:
        """Page-table reads the walk made, both stages (a read that found no memory counts)."""
        g = sum(len(w.result.steps) for w in self.g_walks if w.result is not None)
        return g + len(self.vs_steps)

    @property
    def g_pte_reads(self) -> int:
        return sum(len(w.result.steps) for w in self.g_walks if w.result is not None)

    @property
    def ad_writes(self) -> list[tuple[str, int, int, int]]:
        """A/D updates in order: ``(stage, pa of the PTE, old, new)``, written or only reported."""
        out: list[tuple[str, int, int, int]] = []
        for e in self.events:
            if not isinstance(e, GStageWalk):
                continue
            if e.result is not None and e.result.ad_update is not None:
                out.append(("G", *e.result.ad_update))
            if e.purpose is Purpose.AD_WRITE and e.pa is not None and self.vs is not None and self.vs.ad_update:
                _, old, new = self.vs.ad_update
                out.append(("VS", e.pa, old, new))
        return out


class _Stop(Exception):
    """A G-stage translation failed inside the VS-stage walk (carries its GStageWalk)."""

    def __init__(self, g: GStageWalk) -> None:
        self.g = g


class _GuestPhysical:
    """Guest-physical memory as the VS-stage walk sees it: every read and write goes through the G-stage."""

    def __init__(self, mem: PteMemory, g_mode: PagingMode | None, g_root: int, mxr: bool, ad: AdPolicy, top: int):
        self.mem, self.g_mode, self.g_root, self.mxr, self.ad = mem, g_mode, g_root, mxr, ad
        self.log: list[GStageWalk | int] = []  # G-stage walks, and the index of each VS read
        self.values: list[tuple[int, int]] = []  # (gpa, pte) of each VS read that returned
        self.level = top + 1

    def translate(self, gpa: int, access: Access, purpose: Purpose, vs_level: int | None) -> int:
        if self.g_mode is None:
            g = GStageWalk(purpose, vs_level, gpa, access, None)
        else:
            r = walk(self.mem, self.g_root, gpa, access, Priv.U, mode=self.g_mode, mxr=self.mxr, ad=self.ad)
            g = GStageWalk(purpose, vs_level, gpa, access, r)
        self.log.append(g)
        if g.pa is None:
            raise _Stop(g)
        return g.pa

    def read_u64(self, gpa: int) -> int:
        self.level -= 1
        pa = self.translate(gpa, Access.LOAD, Purpose.VS_PTE, self.level)
        self.log.append(len(self.values))
        value = self.mem.read_u64(pa)  # a BusError here: the walker's access fault at this level
        self.values.append((gpa, value))
        return value

    def write_u64(self, gpa: int, value: int) -> None:
        pa = self.translate(gpa, Access.STORE, Purpose.AD_WRITE, self.level)
        self.mem.write_u64(pa, value)


def _g_fault(g: GStageWalk, access: Access) -> TwoStageFault:
    assert g.result is not None and g.result.fault is not None  # only a page-table G-stage can fail
    f = g.result.fault
    cause = access.access_fault_cause if f.reason is FaultReason.PTE_ACCESS else access.guest_page_fault_cause
    reason = GuestReason.GPA_TOO_WIDE if f.reason is FaultReason.NON_CANONICAL else f.reason
    return TwoStageFault(Stage.G, cause, reason, f.level, g.vs_level, g.purpose, g.gpa)


def walk_two_stage(
    mem: PteMemory,
    va: int,
    access: Access,
    priv: Priv = Priv.S,
    *,
    vs_mode: PagingMode | None,
    vs_root: int,
    g_mode: PagingMode | None,
    g_root: int,
    sum: bool = False,
    mxr: bool = False,
    vs_mxr: bool = False,
    ad: AdPolicy = AdPolicy.UPDATE,
    g_ad: AdPolicy | None = None,
) -> TwoStageResult:
    """Translate guest virtual ``va`` for a VS-mode (``priv=S``) or VU-mode (``priv=U``) access.

    ``vs_root`` is the GPA of the VS-stage root table (vsatp.PPN << 12), ``g_root`` the physical
    address of the G-stage's 16 KiB root table (hgatp.PPN << 12); a mode of None is Bare.  ``ad``
    applies to both stages unless ``g_ad`` gives the G-stage its own (the IOMMU's GADE beside SADE).
    ``mem`` is supervisor-physical memory.
    """
    if priv is Priv.M:
        raise ValueError("two-stage translation is for VS- and VU-mode accesses; walk with priv U or S")
    if g_mode is not None and (not g_mode.zero_extended or g_root % g_mode.root_table_size):
        raise ValueError(f"the G-stage needs an x4 mode and a 16 KiB-aligned root, not {g_mode.name} at {g_root:#x}")
    gmem = _GuestPhysical(mem, g_mode, g_root, mxr, ad if g_ad is None else g_ad, vs_mode.levels - 1 if vs_mode else 0)
    common = (vs_mode, vs_root, g_mode, g_root, va, access, priv, sum, mxr, vs_mxr)

    def events(vs_steps: tuple[WalkStep, ...]) -> tuple[GStageWalk | WalkStep, ...]:
        return tuple(e if isinstance(e, GStageWalk) else vs_steps[e] for e in gmem.log)

    vs: WalkResult | None = None
    if vs_mode is None:
        gpa = va
    else:
        try:
            vs = walk(gmem, vs_root, va, access, priv, mode=vs_mode, sum=sum, mxr=mxr or vs_mxr, ad=ad)
        except _Stop as stop:
            return TwoStageResult(*common, events(_interrupted(gmem, vs_mode)), None, fault=_g_fault(stop.g, access))
        if vs.fault is not None:
            f = vs.fault
            steps = vs.steps
            if len(steps) < len(gmem.values):
                # the A/D write's physical address took no write: the walker reports it at the leaf
                steps = (*steps, WalkStep(f.level or 0, f.pte_addr or 0, f.pte or 0, "pte_access"))
            return TwoStageResult(*common, events(steps), vs, fault=TwoStageFault(Stage.VS, f.cause, f.reason, f.level))
        assert vs.translation is not None  # a walk without a fault translated
        if ad is AdPolicy.REPORT and vs.ad_update is not None:
            # the walker did not write; the A/D write would still be a G-stage store: translate it
            try:
                gmem.translate(vs.ad_update[0], Access.STORE, Purpose.AD_WRITE, vs.translation.level)
            except _Stop as stop:
                return TwoStageResult(*common, events(vs.steps), vs, fault=_g_fault(stop.g, access))
        gpa = vs.translation.pa
    try:
        pa = gmem.translate(gpa, access, Purpose.FINAL, None)
    except _Stop as stop:
        steps = vs.steps if vs is not None else ()
        return TwoStageResult(*common, events(steps), vs, gpa=gpa, fault=_g_fault(stop.g, access))
    return TwoStageResult(*common, events(vs.steps if vs is not None else ()), vs, gpa=gpa, pa=pa)


def _interrupted(gmem: _GuestPhysical, vs_mode: PagingMode) -> tuple[WalkStep, ...]:
    """The VS steps of a walk a G-stage fault cut short: every PTE it read (pointers, and at most a last leaf)."""
    steps = []
    top = vs_mode.levels - 1
    for i, (gpa, pte) in enumerate(gmem.values):
        level = top - i
        if pte & 0xA:  # R or X: the leaf whose A/D write the G-stage refused
            steps.append(WalkStep(level, gpa, pte, "leaf", "allowed; its A/D write needs a G-stage store"))
        else:
            steps.append(WalkStep(level, gpa, pte, "pointer", ((pte & PTE_PPN_MASK) >> PTE_PPN_SHIFT) << PAGE_SHIFT))
    return tuple(steps)


__all__ = ["GuestReason", "GStageWalk", "Purpose", "Stage", "TwoStageFault", "TwoStageResult", "walk_two_stage"]
