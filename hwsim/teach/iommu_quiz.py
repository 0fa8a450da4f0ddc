"""IOMMU exercises, generated from a seed, answered by hwsim's IOMMU model (``hwsim iommu quiz``).

Each exercise is a RAM holding a device directory (1, 2 or 3 levels, base-format
32-byte device contexts) and Sv39 IO page tables, shown as non-zero
doublewords, a ``ddtp`` value, and one DMA request: a device ID, read or
write, an IOVA and a length.  The student gives the physical address(es) the
DMA reaches, or the fault record the IOMMU queues (CAUSE, TTYP, DID,
iotval) and why: stray DMA to unmapped IOVAs, requests crossing into an
unmapped page, permissions (devices walk as U-mode), A/D bits with SADE=0,
invalid or misconfigured directory entries, device IDs too wide, Bare
passthrough, DMA aimed at a device window or at empty address space, DTF.

The answer is what :class:`hwsim.iommu.Iommu` does with the request on a copy
of that memory: the outcome, the bytes moved (checked at the physical
addresses the worked solution names), the fault record it queues.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import overload

from ..devices.base import Device
from ..devices.regs import RegisterLayout
from ..errors import ConfigError
from ..iommu.bits import (
    DC_SIZE,
    DDI_BITS,
    DDTE_PPN_MASK,
    DDTE_PPN_SHIFT,
    DDTE_RESERVED,
    DDTE_V,
    DDTP_MODE_MASK,
    DDTP_PPN_MASK,
    DDTP_PPN_SHIFT,
    FAULT_CAUSE_MASK,
    FAULT_DID_SHIFT,
    FAULT_TTYP_SHIFT,
    IOHGATP_MODE_SHIFT,
    TC_DTF,
    TC_EN_ATS,
    TC_PDTV,
    TC_SADE,
    TC_V,
    IommuCause,
    IommuMode,
    Ttyp,
    ddi,
)
from ..iommu.directory import DeviceContext
from ..iommu.faults import IommuFault
from ..iommu.iommu import Iommu
from ..machine.physmem import PhysicalMemory
from ..mmu.bits import PAGE_SHIFT, PAGE_SIZE, PTE_SIZE, SV39, Pte, make_pte, pte_ppn
from ..mmu.report import format_walk_explained
from ..mmu.walker import AdPolicy, walk
from ..riscv.priv import Access, Priv
from . import topics
from .mmu_quiz import QuizMemory, check_seed_and_count, memory_lines

RAM_BASE = 0x8000_0000
RAM_SIZE = 8 << 20
TABLE_FRAMES = 24  # page tables and directory tables live in the first frames of RAM
WINDOW = 0x1000_0000  # a device's register window: DMA there is refused (no peer-to-peer)

TOPICS = topics.IOMMU

_V, _R, _W, _X, _U, _A, _D = (int(f) for f in (Pte.V, Pte.R, Pte.W, Pte.X, Pte.U, Pte.A, Pte.D))


class _Window(Device):
    """A bare register window for the exercise's memory map (DMA must not reach it)."""

    TYPE = "quiz-window"
    LAYOUT = RegisterLayout("quiz-window", [])


@dataclass(frozen=True)
class Intended:
    ok: bool
    cause: IommuCause | None = None
    iotval: int | None = None
    queued: bool = True
    pieces: tuple = ()  # ((pa, length), ...) for a successful DMA


def pattern(pa: int, n: int) -> bytes:
    """Non-zero bytes that depend on their physical address."""
    return bytes((((pa + i) * 131) >> 3 | 1) & 0xFF for i in range(n))


@dataclass(frozen=True)
class Solution:
    ok: bool
    pieces: tuple  # ((pa, length), ...) where a successful request's bytes went
    fault: IommuFault | None  # for a refused request
    verified: bool  # the model moved the bytes exactly where ``pieces`` say
    walk_lines: tuple  # the IO page walks, worked out


@dataclass(frozen=True)
class IommuExercise:
    seed: int
    number: int
    topic: str
    memory: dict[int, int]
    ddtp: int
    device_id: int
    write: bool
    iova: int
    size: int
    intended: Intended

    def run(self, pieces: tuple = ()):
        """The request on a fresh copy of the memory: ``(DmaResult, phys, data)``.  ``pieces`` are filled with
        a pattern first, so the bytes a read returns show where they came from."""
        phys = PhysicalMemory()
        phys.add_ram(RAM_BASE, RAM_SIZE)
        phys.add_mmio(WINDOW, PAGE_SIZE, _Window(name="uart0"), name="uart0")
        for pa, value in self.memory.items():
            phys.write_u64(pa, value)
        for pa, n in pieces:
            if phys.is_ram(pa, n):
                phys.write(pa, pattern(pa, n))
        iommu = Iommu(name="iommu", phys=phys)
        iommu.set_ddtp(self.ddtp)
        data = bytes(((self.iova + i) & 0xFF) ^ 0x5A for i in range(self.size)) if self.write else None
        return iommu.dma(self.device_id, self.iova, self.size, write=self.write, data=data), phys, data

    def solve(self) -> Solution:
        """The IOMMU model's outcome, with the worked solution's physical addresses checked against the bytes
        the model actually moved."""
        lines, pieces = _walks(self)
        result, phys, data = self.run(pieces or ())
        verified = False
        if result.ok and pieces:
            if self.write:
                verified = b"".join(phys.read(pa, n) for pa, n in pieces) == data
            else:
                verified = result.data == b"".join(pattern(pa, n) for pa, n in pieces)
        return Solution(result.ok, tuple(pieces or ()) if result.ok else (), result.fault, verified, tuple(lines))

    @property
    def access(self) -> Access:
        return Access.STORE if self.write else Access.LOAD


# -- generation ---------------------------------------------------------------------------------------------------


class _Gen:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.words: dict[int, int] = {}
        self.free = list(range(TABLE_FRAMES))
        rng.shuffle(self.free)
        self.mode = rng.choice([IommuMode.LVL1, IommuMode.LVL1, IommuMode.LVL2, IommuMode.LVL3])
        limit = 1 << sum(DDI_BITS[: self.mode.levels])
        self.device_id = rng.randrange(1, min(limit, 1 << 12))
        self.write = rng.random() < 0.5
        self.size = rng.choice([4, 8, 16, 32, 64])
        self.iova = (rng.randrange(1, 1 << 19) << PAGE_SHIFT) | rng.randrange(0, PAGE_SIZE - 64, 4)
        self.ddt_root = self.frame()
        self.pt_root = self.frame()
        self.ddtp = (self.ddt_root >> PAGE_SHIFT) << DDTP_PPN_SHIFT | int(self.mode)
        self.sade = rng.random() < 0.6
        self.dtf = False
        self.pscid = rng.randrange(1, 64)
        self.ctx_tc_extra = 0
        self.ctx_iohgatp = 0
        self.ctx_fsc_mode = 8
        self.data_frames = iter(rng.sample(range(0x80100, 0x80800), 64))

    def frame(self) -> int:
        return RAM_BASE + self.free.pop() * PAGE_SIZE

    def put(self, pa: int, value: int) -> None:
        if value:
            self.words[pa] = value

    # The device directory, as a driver lays it out.
    @overload
    def directory(self) -> int: ...
    @overload
    def directory(self, *, broken_level: int | None = None, reserved_level: int | None = None) -> int | None: ...
    def directory(self, *, broken_level: int | None = None, reserved_level: int | None = None) -> int | None:
        """Write the directory entries down to the device's context; returns the context's address (None when
        the walk is made to stop at ``broken_level`` (V=0) or ``reserved_level`` (reserved bits set))."""
        table = self.ddt_root
        for level in range(self.mode.levels - 1, 0, -1):
            addr = table + 8 * ddi(self.device_id, level)
            if broken_level == level:
                self.put(addr, self.rng.choice([0, (self.frame() >> PAGE_SHIFT) << DDTE_PPN_SHIFT]))
                return None
            child = self.frame()
            entry = (child >> PAGE_SHIFT) << DDTE_PPN_SHIFT | DDTE_V
            if reserved_level == level:
                entry |= self.rng.choice([1 << 1, 1 << 9, 1 << 60])
            self.put(addr, entry)
            if reserved_level == level:
                return None
            table = child
        return table + DC_SIZE * ddi(self.device_id, 0)

    def context(self, addr: int, *, valid: bool = True) -> None:
        ctx = DeviceContext.make(
            root=self.pt_root,
            mode=SV39 if self.ctx_fsc_mode else None,
            pscid=self.pscid,
            sade=self.sade,
            dtf=self.dtf,
            valid=valid,
        )
        ctx = DeviceContext(ctx.tc | self.ctx_tc_extra, self.ctx_iohgatp, ctx.ta, ctx.fsc)
        for i, value in enumerate((ctx.tc, ctx.iohgatp, ctx.ta, ctx.fsc)):
            self.put(addr + 8 * i, value)
        # A neighbour's context in the same table: a different device, its own PSCID and tables.
        other = addr + DC_SIZE if (addr // DC_SIZE) % 128 != 127 else addr - DC_SIZE
        if self.rng.random() < 0.6 and other not in self.words and self.free:
            root = self.frame()
            for i, value in enumerate((TC_V | TC_SADE, 0, (self.pscid + 1) << 12, 8 << 60 | root >> PAGE_SHIFT)):
                self.put(other + 8 * i, value)

    # IO page tables.
    def page(self, iova: int, leaf: int | None, *, level: int = 0, stop_level: int | None = None) -> None:
        """Pointers from the root to ``level`` where ``leaf`` goes (``stop_level``: a V=0 PTE there instead)."""
        table = self.pt_root
        for lvl in (2, 1, 0):
            addr = table + SV39.vpn(iova, lvl) * PTE_SIZE
            if lvl == stop_level:
                self.words.pop(addr, None)
                if self.rng.random() < 0.5:
                    self.put(addr, make_pte(next(self.data_frames), _R | _W | _U | _A))  # V=0 left-over bits
                return
            if lvl == level:
                assert leaf is not None  # a page without a leaf has a stop_level, met first
                self.put(addr, leaf)
                return
            existing = self.words.get(addr)
            if existing is not None and existing & _V:
                if existing & (_R | _X):
                    return  # a superpage already covers it: leave it alone
                table = pte_ppn(existing) << PAGE_SHIFT
                continue
            child = self.frame()
            self.put(addr, make_pte(child >> PAGE_SHIFT, _V))
            table = child

    def leaf(self, perms: int = _R | _W, *, ppn: int | None = None, ad: int | None = None) -> int:
        if ad is None:
            ad = _A | _D if not self.sade else self.rng.choice([0, _A, _A | _D])
        return make_pte(next(self.data_frames) if ppn is None else ppn, _V | _U | perms | ad)

    def perms_for_access(self) -> int:
        return _R | _W if self.write else self.rng.choice([_R, _R | _W, _R | _X])


def _pieces(g: _Gen, leaves: dict[int, tuple[int, int]]) -> tuple[tuple[int, int], ...]:
    """The physically contiguous ``(pa, length)`` pieces of the request, given ``page -> (leaf PTE, page size)``."""
    out: list[tuple[int, int]] = []
    va, end = g.iova, g.iova + g.size
    while va < end:
        page = va & ~(PAGE_SIZE - 1)
        pte, size = leaves[page]
        base = (pte_ppn(pte) << PAGE_SHIFT) & ~(size - 1)
        pa = base | (va & (size - 1))
        n = min(end, (va | (size - 1)) + 1) - va
        if out and out[-1][0] + out[-1][1] == pa:
            out[-1] = (out[-1][0], out[-1][1] + n)
        else:
            out.append((pa, n))
        va += n
    return tuple(out)


def _fault_cause(g: _Gen, page: bool = True) -> IommuCause:
    if page:
        return IommuCause.WRITE_PAGE_FAULT if g.write else IommuCause.READ_PAGE_FAULT
    return IommuCause.WRITE_ACCESS_FAULT if g.write else IommuCause.READ_ACCESS_FAULT


def _map_request(g: _Gen, *, perms: int | None = None, ad: int | None = None) -> dict[int, tuple[int, int]]:
    """4 KiB leaves for every page the request touches; returns page -> (pte, size)."""
    leaves = {}
    page = g.iova & ~(PAGE_SIZE - 1)
    while page < g.iova + g.size:
        leaf = g.leaf(perms if perms is not None else g.perms_for_access(), ad=ad)
        g.page(page, leaf)
        leaves[page] = (leaf, PAGE_SIZE)
        page += PAGE_SIZE
    return leaves


def _topic_translate(g: _Gen) -> Intended:
    if g.rng.random() < 0.5:  # run across a page boundary, into another (not contiguous) frame
        g.iova = (g.iova | (PAGE_SIZE - 1)) - g.rng.randrange(1, g.size) + 1
    g.context(g.directory())
    leaves = _map_request(g)
    _distract(g)
    return Intended(True, pieces=_pieces(g, leaves))


def _topic_superpage(g: _Gen) -> Intended:
    g.context(g.directory())
    ppn = g.rng.choice([0x80200, 0x80400, 0x80600])
    leaf = g.leaf(g.perms_for_access(), ppn=ppn)
    g.page(g.iova, leaf, level=1)
    _distract(g)
    return Intended(True, pieces=_pieces(g, {g.iova & ~(PAGE_SIZE - 1): (leaf, 2 << 20)}))


def _distract(g: _Gen) -> None:
    """A mapping of a neighbouring IO page, so a wrong index still lands on something."""
    near = (g.iova & ~(PAGE_SIZE - 1)) + g.rng.choice([-2, -1, 2, 3]) * PAGE_SIZE
    if near > 0 and g.rng.random() < 0.7 and len(g.free) > 3:
        g.page(near, g.leaf(g.rng.choice([_R, _R | _W])))


def _topic_stray(g: _Gen) -> Intended:
    g.dtf = g.rng.random() < 0.2
    g.context(g.directory())
    _distract(g)
    g.page(g.iova, None, stop_level=g.rng.choice([2, 1, 0, 0]))
    return Intended(False, _fault_cause(g), g.iova, queued=not g.dtf)


def _topic_crossing(g: _Gen) -> Intended:
    g.size = g.rng.choice([16, 32, 64])
    g.iova = (g.iova | (PAGE_SIZE - 1)) - g.rng.randrange(1, g.size) + 1
    g.context(g.directory())
    first = g.iova & ~(PAGE_SIZE - 1)
    g.page(first, g.leaf(g.perms_for_access()))
    g.page(first + PAGE_SIZE, None, stop_level=0)
    return Intended(False, _fault_cause(g), first + PAGE_SIZE)


def _topic_permission(g: _Gen) -> Intended:
    g.context(g.directory())
    case = g.rng.choice(["supervisor", "read-only", "execute-only"])
    if case == "supervisor":
        leaf = make_pte(next(g.data_frames), _V | g.perms_for_access() | _A | _D)  # U=0
    elif case == "read-only":
        g.write = True
        leaf = g.leaf(g.rng.choice([_R, _R | _X]), ad=_A | _D)
    else:
        g.write = False
        leaf = g.leaf(_X, ad=_A | _D)
    g.page(g.iova, leaf)
    _distract(g)
    return Intended(False, _fault_cause(g), g.iova)


def _topic_accessed_dirty(g: _Gen) -> Intended:
    g.sade = g.rng.random() < 0.5
    g.context(g.directory())
    if g.sade:
        leaves = _map_request(g, ad=g.rng.choice([0, _A]))
        return Intended(True, pieces=_pieces(g, leaves))
    if g.write and g.rng.random() < 0.5:
        ad = _A  # D clear on a write
    else:
        ad = g.rng.choice([0, _D])  # A clear
    g.page(g.iova, g.leaf(g.perms_for_access(), ad=ad))
    return Intended(False, _fault_cause(g), g.iova)


def _topic_directory(g: _Gen) -> Intended:
    rng = g.rng
    cases = ["context-invalid", "misconfigured"] + (["too-wide"] if g.mode.levels < 3 else [])  # IDs are 24 bits
    if g.mode.levels > 1:
        cases += ["non-leaf-invalid", "non-leaf-reserved"]
    case = rng.choice(cases)
    _map_request(g)  # the page tables are fine: the request never gets that far
    if case == "context-invalid":
        g.context(g.directory(), valid=False)
        return Intended(False, IommuCause.DDT_NOT_VALID, g.iova)
    if case == "misconfigured":
        choice = rng.choice(["ats", "pdtv", "iohgatp"])
        if choice == "ats":
            g.ctx_tc_extra = TC_EN_ATS
        elif choice == "pdtv":
            g.ctx_tc_extra = TC_PDTV
        else:
            g.ctx_iohgatp = 8 << 60 | (g.frame() >> PAGE_SHIFT)
        g.context(g.directory())
        return Intended(False, IommuCause.DDT_MISCONFIGURED, g.iova)
    if case == "too-wide":
        limit = 1 << sum(DDI_BITS[: g.mode.levels])
        g.context(g.directory())
        g.device_id += limit  # the context written is for the low bits; the request's ID does not fit
        return Intended(False, IommuCause.TRANSACTION_TYPE_DISALLOWED, g.iova)
    level = rng.randrange(1, g.mode.levels)
    if case == "non-leaf-invalid":
        g.directory(broken_level=level)
        return Intended(False, IommuCause.DDT_NOT_VALID, g.iova)
    g.directory(reserved_level=level)
    return Intended(False, IommuCause.DDT_MISCONFIGURED, g.iova)


def _topic_bare(g: _Gen) -> Intended:
    rng = g.rng
    case = rng.choice(["off", "bare", "context-bare"])
    target = rng.choice([RAM_BASE + rng.randrange(0x100, 0x700) * PAGE_SIZE, WINDOW, 0x4000_0000])
    g.iova = target | rng.randrange(0, PAGE_SIZE - 64, 4)
    if case == "off":
        g.ddtp = g.ddtp & ~DDTP_MODE_MASK | IommuMode.OFF
        g.context(g.directory())
        return Intended(False, IommuCause.ALL_INBOUND_DISALLOWED, g.iova)
    if case == "bare":
        g.ddtp = g.ddtp & ~DDTP_MODE_MASK | IommuMode.BARE
        g.context(g.directory())
    else:
        g.ctx_fsc_mode = 0
        g.context(g.directory())
    if target not in (WINDOW, 0x4000_0000):
        return Intended(True, pieces=((g.iova, g.size),))
    return Intended(False, _fault_cause(g, page=False), g.iova)


def _topic_not_ram(g: _Gen) -> Intended:
    g.context(g.directory())
    g.page(g.iova, g.leaf(g.perms_for_access(), ppn=g.rng.choice([WINDOW, 0x4000_0000, 0x9000_0000]) >> PAGE_SHIFT))
    return Intended(False, _fault_cause(g, page=False), g.iova)


_BUILDERS = {
    "translate": _topic_translate,
    "superpage": _topic_superpage,
    "stray": _topic_stray,
    "crossing": _topic_crossing,
    "permission": _topic_permission,
    "accessed-dirty": _topic_accessed_dirty,
    "directory": _topic_directory,
    "bare": _topic_bare,
    "not-ram": _topic_not_ram,
}
assert set(_BUILDERS) == set(TOPICS)


def make_exercise(seed: int, number: int, topics: list[str] | None = None) -> IommuExercise:
    chosen = list(topics or TOPICS)
    for t in chosen:
        if t not in TOPICS:
            raise ConfigError(f"unknown topic {t!r}; topics: {', '.join(TOPICS)}")
    rng = random.Random(f"hwsim-iommu-quiz:{seed}:{number}")
    topic = rng.choice(chosen)
    g = _Gen(rng)
    intended = _BUILDERS[topic](g)
    return IommuExercise(
        seed, number, topic, dict(sorted(g.words.items())), g.ddtp, g.device_id, g.write, g.iova, g.size, intended
    )


def make_quiz(seed: int, count: int = 3, topics: list[str] | None = None) -> list[IommuExercise]:
    check_seed_and_count(seed, count)
    return [make_exercise(seed, n, topics) for n in range(1, count + 1)]


# -- presentation ---------------------------------------------------------------------------------------------


def preamble() -> list[str]:
    return [
        "Reference (RISC-V IOMMU 1.0, base formats; hwsim has no process directories and no second stage):",
        "  ddtp: iommu_mode in bits 3:0 (0 Off, 1 Bare, 2 1LVL, 3 2LVL, 4 3LVL), PPN of the root in bits 53:10.",
        "  device_id: DDI[0] = bits 6:0, DDI[1] = bits 15:7, DDI[2] = bits 23:16.  Non-leaf directory entries",
        "    (8 bytes): V bit 0, PPN bits 53:10.  Leaf tables hold 32-byte device contexts:",
        "    +0 tc (V 0, EN_ATS 1, EN_PRI 2, T2GPA 3, DTF 4, PDTV 5, PRPR 6, GADE 7, SADE 8), +8 iohgatp",
        "    (MODE 63:60, must be Bare), +16 ta (PSCID 31:12), +24 fsc = iosatp (MODE 63:60: 0 Bare, 8 Sv39; PPN 43:0).",
        "  Device requests carry no PASID: the Sv39 IO page tables are walked as U-mode accesses (a leaf needs",
        "    U=1, R to read, W to write).  SADE=1: the IOMMU sets A/D; SADE=0: a clear A (or D on a write) faults.",
        "  A request is translated page by page before any byte moves; the first failure ends it.",
        "  Fault record: dw0 = CAUSE (11:0) | TTYP (39:34: 2 read, 3 write) | DID (63:40); dw2 = iotval (the IOVA).",
        "  Causes: 5/7 read/write access fault, 13/15 read/write page fault, 256 all inbound disallowed,",
        "    257 DDT entry load access fault, 258 DDT entry not valid, 259 DDT entry misconfigured,",
        "    260 transaction type disallowed (e.g. a device ID too wide for the directory).",
    ]


def format_exercise(ex: IommuExercise) -> list[str]:
    lines = [f"IOMMU exercise {ex.number} (seed {ex.seed})", ""]
    lines.append(
        f"RAM is at {RAM_BASE:#x}-{RAM_BASE + RAM_SIZE - 1:#x}; uart0's register window is at "
        f"{WINDOW:#x}-{WINDOW + PAGE_SIZE - 1:#x};"
    )
    lines.append("nothing else is there.  The non-zero doublewords of RAM (all other bytes are zero):")
    lines += memory_lines(ex.memory)
    lines.append("")
    lines.append(f"ddtp    = {ex.ddtp:#018x}")
    lines.append(
        f"request = device {ex.device_id:#x} {'writes' if ex.write else 'reads'} {ex.size} bytes at IOVA {ex.iova:#x}"
    )
    lines.append("")
    lines.append("Question: the physical address(es) the DMA reaches, or the fault record the IOMMU")
    lines.append("queues (CAUSE, TTYP, DID, iotval) and why.")
    return lines


def fault_record_fields(record: bytes) -> tuple[int, int, int, int]:
    """``(cause, ttyp, did, iotval)`` of a 32-byte fault record."""
    dw0 = int.from_bytes(record[0:8], "little")
    return (
        dw0 & FAULT_CAUSE_MASK,
        (dw0 >> FAULT_TTYP_SHIFT) & 0x3F,
        dw0 >> FAULT_DID_SHIFT,
        int.from_bytes(record[16:24], "little"),
    )


def _ddtp_root(ddtp: int) -> int:
    return (ddtp & DDTP_PPN_MASK) >> DDTP_PPN_SHIFT << PAGE_SHIFT


def _directory_lines(ex: IommuExercise) -> list[str]:
    """The device-directory walk, read from the exercise's memory: what each step reads, decoded."""
    mem = QuizMemory(ex.memory, RAM_BASE, RAM_SIZE)
    mode_bits = ex.ddtp & DDTP_MODE_MASK
    mode = IommuMode(mode_bits) if mode_bits <= IommuMode.LVL3 else None
    root = _ddtp_root(ex.ddtp)
    lines = [f"ddtp {ex.ddtp:#x}: iommu_mode={mode_bits} ({mode.label if mode else 'reserved'}), root table {root:#x}"]
    if mode is None or mode.levels == 0:
        return lines
    did = ex.device_id
    fields = ", ".join(f"DDI[{i}]={ddi(did, i):#x}" for i in reversed(range(mode.levels)))
    lines.append(
        f"device {did:#x}: {fields}"
        + (
            ""
            if did < 1 << sum(DDI_BITS[: mode.levels])
            else f"; it needs more than the {mode.label} directory's {sum(DDI_BITS[: mode.levels])} bits"
        )
    )
    if did >= 1 << sum(DDI_BITS[: mode.levels]):
        return lines
    table = root
    for level in range(mode.levels - 1, 0, -1):
        addr = table + 8 * ddi(did, level)
        entry = mem.read_u64(addr)
        lines.append(
            f"  level {level}: entry @ {table:#x} + DDI[{level}]*8 = {addr:#x}: {entry:#018x} "
            f"(V={entry & DDTE_V}, PPN={(entry & DDTE_PPN_MASK) >> DDTE_PPN_SHIFT:#x})"
        )
        if not entry & DDTE_V or entry & DDTE_RESERVED:
            return lines
        table = (entry & DDTE_PPN_MASK) >> DDTE_PPN_SHIFT << PAGE_SHIFT
    addr = table + DC_SIZE * ddi(did, 0)
    ctx = DeviceContext(*(mem.read_u64(addr + 8 * i) for i in range(4)))
    tc_bits = ", ".join(
        f"{name}={int(bool(ctx.tc & bit))}"
        for name, bit in (("V", TC_V), ("EN_ATS", TC_EN_ATS), ("PDTV", TC_PDTV), ("DTF", TC_DTF), ("SADE", TC_SADE))
    )
    lines.append(f"  context @ {table:#x} + DDI[0]*32 = {addr:#x}:")
    lines.append(f"    tc      {ctx.tc:#018x}  {tc_bits}")
    lines.append(f"    iohgatp {ctx.iohgatp:#018x}  MODE={ctx.iohgatp >> IOHGATP_MODE_SHIFT}")
    lines.append(f"    ta      {ctx.ta:#018x}  PSCID={ctx.pscid:#x}")
    lines.append(
        f"    fsc     {ctx.fsc:#018x}  MODE={ctx.iosatp_mode}"
        + (f" (Sv39), root {ctx.root:#x}" if ctx.iosatp_mode == 8 else " (Bare)" if ctx.iosatp_mode == 0 else "")
    )
    return lines


def _walks(ex: IommuExercise) -> tuple[list[str], tuple | None]:
    """The IO page walks of the pages the request touches, up to the first that fails (the walker's, as the
    IOMMU does them), and where the bytes go if every page translates (None if not)."""
    mem = QuizMemory(ex.memory, RAM_BASE, RAM_SIZE)
    mode = ex.ddtp & DDTP_MODE_MASK
    if mode == IommuMode.BARE:
        return [f"iommu_mode Bare: no translation, pa = iova {ex.iova:#x}"], ((ex.iova, ex.size),)
    if mode not in (IommuMode.LVL1, IommuMode.LVL2, IommuMode.LVL3):
        return [], None
    levels = IommuMode(mode).levels
    if ex.device_id >= 1 << sum(DDI_BITS[:levels]):
        return [], None
    table = _ddtp_root(ex.ddtp)
    for level in range(levels - 1, 0, -1):
        entry = mem.read_u64(table + 8 * ddi(ex.device_id, level))
        if not entry & DDTE_V or entry & DDTE_RESERVED:
            return [], None
        table = (entry & DDTE_PPN_MASK) >> DDTE_PPN_SHIFT << PAGE_SHIFT
    addr = table + DC_SIZE * ddi(ex.device_id, 0)
    ctx = DeviceContext(*(mem.read_u64(addr + 8 * i) for i in range(4)))
    if not ctx.valid or ctx.tc & ~(TC_V | TC_DTF | TC_SADE) or ctx.iohgatp or ctx.iosatp_mode not in (0, 8):
        return [], None
    if ctx.iosatp_mode == 0:
        return [f"first stage Bare: no translation, pa = iova {ex.iova:#x}"], ((ex.iova, ex.size),)
    lines: list[str] = []
    pieces: list[tuple[int, int]] = []
    va, end = ex.iova, ex.iova + ex.size
    policy = AdPolicy.UPDATE if ctx.sade else AdPolicy.FAULT
    while va < end:
        r = walk(mem, ctx.root, va, ex.access, Priv.U, mode=SV39, ad=policy)
        lines.append(
            f"IO page walk for iova {va:#x} ({'write' if ex.write else 'read'}, as U-mode), root {ctx.root:#x}:"
        )
        lines.extend("  " + line for line in format_walk_explained(r)[1:])
        tr = r.translation
        if tr is None:
            return lines, None
        n = min(end, (va | (tr.page_size - 1)) + 1) - va
        pa = tr.pa
        if pieces and pieces[-1][0] + pieces[-1][1] == pa:
            pieces[-1] = (pieces[-1][0], pieces[-1][1] + n)
        else:
            pieces.append((pa, n))
        va += n
    return lines, tuple(pieces)


def answer_line(ex: IommuExercise, sol: Solution) -> str:
    if sol.ok:
        where = ", ".join(f"pa {pa:#x}-{pa + n - 1:#x}" for pa, n in sol.pieces)
        return f"the {'write' if ex.write else 'read'} of {ex.size} bytes reaches {where}"
    f = sol.fault
    assert f is not None  # a refused request has its fault
    cause, ttyp, did, iotval = fault_record_fields(f.to_record())
    text = (
        f"fault: CAUSE={cause} ({f.cause.describe}), TTYP={ttyp} ({Ttyp(ttyp).name.lower().replace('_', ' ')}), "
        f"DID={did:#x}, iotval={iotval:#x}"
    )
    if not f.queued:
        text += "; not queued (the context has DTF=1)"
    return text


def region_of(pa: int) -> str | None:
    """What the exercise's memory map has at ``pa``: ``"ram"``, ``"uart0"`` (its register window), or None."""
    if RAM_BASE <= pa < RAM_BASE + RAM_SIZE:
        return "ram"
    if WINDOW <= pa < WINDOW + PAGE_SIZE:
        return "uart0"
    return None


def topic_line(ex: IommuExercise) -> str:
    """The topic, in words; for ``not-ram``, what the leaf PTE really points at (a device window, or nothing)."""
    pieces = _walks(ex)[1] if ex.topic == "not-ram" else None
    if pieces:
        where = region_of(pieces[0][0])
        if where is None:
            return "DMA translated to empty address space (neither RAM nor a device), not RAM"
        if where != "ram":
            return f"DMA translated to a device window ({where}'s registers), not RAM"
    return TOPICS[ex.topic]


def format_answer(ex: IommuExercise) -> list[str]:
    sol = ex.solve()
    lines = [f"Answer {ex.number}: {answer_line(ex, sol)}"]
    if not sol.ok:
        assert sol.fault is not None  # a refused request has its fault
        lines.append(f"  why: {sol.fault.reason}")
        record = sol.fault.to_record()
        dws = [int.from_bytes(record[i : i + 8], "little") for i in range(0, 32, 8)]
        lines.append("  record (dw0..dw3): " + " ".join(f"{d:#018x}" for d in dws))
        lines.append("  no byte moved: a request is all or nothing")
    lines.append(f"Topic: {topic_line(ex)}")
    lines.append("Worked solution:")
    lines.extend("  " + line for line in _directory_lines(ex) + list(sol.walk_lines))
    return lines


def exercise_to_json(ex: IommuExercise, *, solve: bool) -> dict:
    out = {
        "number": ex.number,
        "ram": {"base": hex(RAM_BASE), "size": hex(RAM_SIZE)},
        "memory": {hex(pa): hex(v) for pa, v in ex.memory.items()},
        "ddtp": hex(ex.ddtp),
        "device_id": ex.device_id,
        "access": "write" if ex.write else "read",
        "iova": hex(ex.iova),
        "size": ex.size,
    }
    if solve:
        sol = ex.solve()
        out["topic"] = ex.topic
        out["answer"] = answer_line(ex, sol)
        if sol.ok:
            out["pieces"] = [{"pa": hex(pa), "size": n} for pa, n in sol.pieces]
        else:
            assert sol.fault is not None  # a refused request has its fault
            out["fault"] = sol.fault.to_json()
            out["record"] = sol.fault.to_record().hex()
    return out
