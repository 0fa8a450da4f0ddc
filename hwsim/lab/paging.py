"""The page-fault lab's kernel: runs a student's handler (native RISC-V, S-mode) under a U-mode workload.

::

    U-mode workload (hwsim's)            hwsim (this module)                       S-mode handler (student's C)
    -------------------------            -------------------                       ----------------------------
    for each reference: ld the page's    load/store watches on the frames:
    tag word, sd tag+1 on a write  --->  record the reference string, check the
                                         data (tag = page << 32 | version)
    load/store page fault  ------------> trap: save the user's context, S-mode,
                                         call lab_page_fault(lab, va, store) ---> edits Sv39 PTEs in RAM,
                                                                          <---   lab_swap_in/out (ecalls:
                                         count page-ins, write-backs; copy to     counted), sfence.vma
                                         and from the backing store (host)        (trapped with mstatus.TVM
                                         sfence.vma -> Machine.sfence_vma   <---  and carried out on the
                                         on return: check the PTEs (a frame       model TLB)
                                         mapped twice, stale TLB entries, dirty
                                         pages evicted without a write-back),
                                         resume at the faulting instruction
    ecall every LAB_TICK refs -------->  call lab_tick(lab) the same way
    ecall at the end  ---------------->  final data check; counts

The workload's pages are demand-paged through one Sv39 level-0 table: page p is at
``BASE + p * 4 KiB``; every PTE starts at 0.  RAM is identity-mapped for S-mode by a 1 GiB
kernel page, so the handler uses physical addresses as pointers.  hwsim's MMU sets A and D in
the PTEs as hardware does (machine/machine.py); a page whose D is clear is handed to the CPU
without W, so the first store comes back to set D.  Unicorn's own TLB is flushed at every
privilege change, so the model TLB (mmu/tlb.py) is the only cache a forgotten sfence.vma leaves
stale, and the load watch sees which frame the CPU really used.
"""

from __future__ import annotations

import hashlib
import shutil
import struct
from dataclasses import dataclass, field
from pathlib import Path

from .._zig import zig_cc
from ..errors import HwsimError
from ..machine import EcallAction, Machine, StopReason
from ..machine.elf import ElfImage, read_elf
from ..mmu.bits import PAGE_SHIFT, PAGE_SIZE, SV39, Pte, make_pte, make_satp, pte_ppn
from ..riscv import asm as A
from ..riscv.priv import Access, Cause, Priv
from .policies import DEFAULT_TICK, Counts, Policy, Ref, simulate
from .workloads import MAX_PAGES

SOURCES = Path(__file__).resolve().parent / "paging_c"
BASE = 0x4000_0000  # VA of page 0 (root index 1, one level-1 and one level-0 table)
CODE_SLOT = 256  # level-0 index of the workload's code page; its reference string follows
MAX_REFS = 16 * PAGE_SIZE // 4
KERNEL_PAGE = 0x8000_0000  # the identity-mapped 1 GiB kernel page (RAM is inside it)
ASID = 1
HANDLER_TIMEOUT_US = 2_000_000
LOOP_LIMIT = 3  # the same reference faulting this many times in a row is a fault loop
USER_TICK, USER_DONE = 1, 2  # the workload's ecalls (a7)
SVC_SWAP_IN, SVC_SWAP_OUT, SVC_LOG = 1, 2, 3  # the handler's ecalls (a7), lab.h
STACK_PAGES = 16
BUILD_FLAGS = (
    "-target",
    "riscv64-freestanding",
    "-mcpu=baseline_rv64",
    "-mcmodel=medany",
    "-O2",
    "-g",
    "-nostdlib",
    "-ffreestanding",
    "-Wl,-e,lab_page_fault",
)
ENTRY_POINTS = ("lab_init", "lab_page_fault", "lab_tick")


class LabError(HwsimError):
    """The student's handler did something wrong (the message says what, and which page), or the lab could
    not be built or set up."""


@dataclass
class LabRun:
    """What one run of a handler over one workload did."""

    workload: str
    frames: int
    refs: list[Ref] = field(default_factory=list)  # the reference string hwsim recorded from the run
    faults: int = 0  # calls of lab_page_fault
    page_ins: int = 0  # lab_swap_in calls
    write_backs: int = 0  # lab_swap_out calls
    ticks: int = 0
    log: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None


# -- building -----------------------------------------------------------------------------------


def build_handler(lab_dir: str | Path, *, force: bool = False) -> Path:
    """``zig cc`` every ``.c`` file of ``lab_dir`` with lab.h and link.ld into ``lab_dir/build/lab.elf``."""
    lab_dir = Path(lab_dir)
    if not lab_dir.is_dir():
        raise LabError(f"lab directory {str(lab_dir)!r} does not exist (make one: hwsim lab paging init DIR)")
    sources = sorted(lab_dir.glob("*.c"))
    if not sources:
        raise LabError(f"{lab_dir}: no .c files to build (hwsim lab paging init DIR writes handler.c)")
    return build_sources(sources, lab_dir / "build" / "lab.elf", force=force, what=str(lab_dir))


def build_sources(sources: list[Path], out: Path, *, force: bool = False, what: str = "") -> Path:
    header, script = SOURCES / "lab.h", SOURCES / "link.ld"
    # A lab.h beside the sources (init copies it there for reading) is the one #include "lab.h" finds.
    headers = sorted({h for src in sources for h in src.parent.glob("*.h")})
    digest = hashlib.sha256()
    for path in [*sources, *headers, header, script]:
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    digest.update(" ".join(BUILD_FLAGS).encode())
    return zig_cc(
        [*BUILD_FLAGS, f"-Wl,-T,{script}", f"-I{SOURCES}", *map(str, sources)],
        out,
        digest.hexdigest(),
        force=force,
        what=what or str(out),
        error=LabError,
        hint="the lab builds with zig: pip install ziglang (or: pip install 'hwsim[drivers]')",
    )


def write_starter(lab_dir: str | Path) -> list[Path]:
    """``hwsim lab paging init DIR``: handler.c (the skeleton) and lab.h; never overwrites a file."""
    lab_dir = Path(lab_dir)
    lab_dir.mkdir(parents=True, exist_ok=True)
    files = {"starter.c": lab_dir / "handler.c", "lab.h": lab_dir / "lab.h"}
    for path in files.values():
        if path.exists():
            raise LabError(f"{path} exists already: init writes a new lab directory, it never overwrites")
    for name, path in files.items():
        shutil.copyfile(SOURCES / name, path)
    return list(files.values())


SOLUTIONS = {"fifo": Policy.FIFO, "clock": Policy.CLOCK, "second-chance": Policy.CLOCK, "aging": Policy.AGING}


def solution_source(policy: str) -> Path:
    """The reference solution for ``policy`` in C (SOLUTIONS: each one's model; second chance evicts what clock
    does)."""
    if policy not in SOLUTIONS:
        raise LabError(f"no reference solution for {policy!r}: one of {', '.join(SOLUTIONS)}")
    return SOURCES / "solutions" / f"{policy.replace('-', '_')}.c"


# -- the workload: U-mode code that touches pages ------------------------------------------------


def workload_code(base: int) -> bytes:
    """a0 = the reference string (u32: page << 1 | write), a1 = its length, a2 = BASE, a3 = the tick."""
    a = A.Assembler(base)
    a.emit(A.addi("s0", "a3", 0))
    a.label("loop")
    a.branch("beq", "a1", "zero", "done")
    a.branch("bne", "s0", "zero", "go")
    a.li("a7", USER_TICK).emit(0x0000_0073)  # ecall: the timer tick, exact
    a.emit(A.addi("s0", "a3", 0))
    a.label("go")
    a.emit(A.addi("s0", "s0", -1), A.lwu("t0", "a0", 0), A.srli("t1", "t0", 1), A.andi("t2", "t0", 1))
    a.emit(A.slli("t1", "t1", PAGE_SHIFT), A.add("t1", "t1", "a2"), A.ld("t3", "t1", 0))
    a.branch("beq", "t2", "zero", "next")
    a.emit(A.addi("t3", "t3", 1), A.sd("t3", "t1", 0))
    a.label("next")
    a.emit(A.addi("a0", "a0", 4), A.addi("a1", "a1", -1))
    a.jump("loop")
    a.label("done")
    a.li("a7", USER_DONE).emit(0x0000_0073)
    a.jump("done")
    return a.finish()


def tag(page: int, version: int) -> int:
    """The word at the start of a page: which page it is, and how many writes it has seen."""
    return page << 32 | version


def _describe_tag(value: int) -> str:
    return f"{value:#x} (page {value >> 32}, version {value & 0xFFFF_FFFF})"


@dataclass
class _Eviction:
    page: int
    frame: int
    fault: int  # which lab_page_fault call
    ref: int  # during which reference
    dirty: bool
    written_back: bool


# -- the kernel -------------------------------------------------------------------------------------


class PagingLab:
    """One run of a handler ELF over one reference string with ``frames`` frames (a fresh machine)."""

    def __init__(self, elf: bytes, *, frames: int, npages: int, tick: int = DEFAULT_TICK, name: str = "lab.elf"):
        if not 1 <= frames <= 64:
            raise LabError(f"frames must be from 1 to 64, not {frames}")
        if not 1 <= npages <= MAX_PAGES:
            raise LabError(f"the workload must use 1 to {MAX_PAGES} pages, not {npages}")
        if tick <= 0:
            raise LabError(f"the tick must be positive, not {tick}")
        self.frames, self.npages, self.tick, self.name = frames, npages, tick, name
        self.m = m = Machine()
        contents = read_elf(elf, name)
        for seg in contents.segments:
            first = seg.va & ~(PAGE_SIZE - 1)
            try:
                m.frames.reserve(first, seg.va + seg.memsz - first)
            except HwsimError as exc:
                raise LabError(f"{name}: the segment at {seg.va:#x} does not fit the lab's RAM: {exc}") from None
            m.phys.fill(seg.va, seg.memsz)
            m.phys.write(seg.va, seg.data)
        m.code_changed()
        self.image: ElfImage = contents.image()
        missing = [s for s in ENTRY_POINTS if s not in self.image.symbols]
        if missing:
            raise LabError(f"{name}: the handler does not define {', '.join(missing)} (see lab.h)")
        # Page tables: root -> level 1 -> level 0 for the user; a 1 GiB identity page for the kernel.
        self.root, l1, self.l0 = m.frames.alloc(), m.frames.alloc(), m.frames.alloc()
        kernel = int(Pte.V | Pte.R | Pte.W | Pte.X | Pte.G | Pte.A | Pte.D)
        m.phys.write_u64(self.root + 8 * (KERNEL_PAGE >> 30), make_pte(KERNEL_PAGE >> PAGE_SHIFT, kernel))
        m.phys.write_u64(self.root + 8 * (BASE >> 30), make_pte(l1 >> PAGE_SHIFT, int(Pte.V)))
        m.phys.write_u64(l1 + 8 * ((BASE >> 21) & 511), make_pte(self.l0 >> PAGE_SHIFT, int(Pte.V)))
        self.pool = m.frames.alloc(frames)
        self.stack_top = m.frames.alloc(STACK_PAGES) + STACK_PAGES * PAGE_SIZE
        self.exit = m.frames.alloc()  # the handler's return address: reached, never executed
        self.lab_struct = m.frames.alloc()
        self.code_va = BASE + CODE_SLOT * PAGE_SIZE
        code = m.frames.alloc()
        m.phys.write(code, workload_code(self.code_va))
        user_code = int(Pte.V | Pte.R | Pte.X | Pte.U | Pte.A)
        m.phys.write_u64(self.l0 + 8 * CODE_SLOT, make_pte(code >> PAGE_SHIFT, user_code))
        m.phys.write(
            self.lab_struct,
            struct.pack("<6Q", BASE, npages, frames, self.pool, self.l0, tick),
        )
        m.set_reg("satp", make_satp(SV39, self.root >> PAGE_SHIFT, ASID))
        m.set_trap_vm(True)  # the handler's sfence.vma stops the run; _call carries it out on the TLBs
        m.add_ecall_handler(self._ecall)
        m.watch_loads(self.pool, frames * PAGE_SIZE, self._on_load)
        m.watch_stores(self.pool, frames * PAGE_SIZE, self._on_store)
        self.disk = {p: tag(p, 0).to_bytes(8, "little") + bytes(PAGE_SIZE - 8) for p in range(npages)}
        self.versions = [0] * npages
        self.loaded_into: dict[int, int] = {}  # frame -> the page last swapped into it
        self.evictions: list[_Eviction] = []
        self.stale: dict[int, str] = {}  # page -> why its TLB entry is stale (from the handler call that left it)
        self._user = False
        self._refs: list[Ref] = []
        self._recorded: list[Ref] = []
        self._user_exit: int | None = None
        self._swapped_out: set[int] = set()  # pages written back during this handler call
        self.run_info: LabRun | None = None

    # -- addresses ---------------------------------------------------------------------------

    def pte(self, page: int) -> int:
        return self.m.phys.read_u64(self.l0 + 8 * page)

    def frame_of(self, pte: int) -> int | None:
        """The pool frame a PTE points at, or None when it points elsewhere."""
        pa = pte_ppn(pte) << PAGE_SHIFT
        frame = (pa - self.pool) >> PAGE_SHIFT
        return frame if self.pool <= pa and frame < self.frames else None

    def _resident(self) -> dict[int, int]:
        """page -> PTE, for every valid PTE of the paged region."""
        out = {}
        for page in range(self.npages):
            pte = self.pte(page)
            if pte & Pte.V:
                out[page] = pte
        return out

    def _where(self, pc: int) -> str:
        return self.image.symbol_at(pc) or f"{pc:#x}"

    # -- running -----------------------------------------------------------------------------

    def run(self, refs: list[Ref], workload: str = "custom") -> LabRun:
        """Run the workload; problems end the run with ``LabRun.error`` set (never an exception)."""
        info = self.run_info = LabRun(workload, self.frames)
        try:
            self._run(refs, info)
        except LabError as exc:
            info.error = str(exc)
        info.refs = list(self._recorded)
        return info

    def _run(self, refs: list[Ref], info: LabRun) -> None:
        m = self.m
        if not refs:
            raise LabError("the workload has no references")
        if len(refs) > MAX_REFS:
            raise LabError(f"the workload has {len(refs)} references; at most {MAX_REFS}")
        bad = [p for p, _ in refs if not 0 <= p < self.npages]
        if bad:
            raise LabError(f"page {bad[0]} is outside the workload's {self.npages} pages")
        self._refs = refs
        words = b"".join(struct.pack("<I", p << 1 | int(w)) for p, w in refs)
        first = CODE_SLOT + 1
        for k in range(0, len(words), PAGE_SIZE):
            frame = m.frames.alloc()
            m.phys.write(frame, words[k : k + PAGE_SIZE])
            leaf = make_pte(frame >> PAGE_SHIFT, int(Pte.V | Pte.R | Pte.U | Pte.A))
            m.phys.write_u64(self.l0 + 8 * (first + k // PAGE_SIZE), leaf)
        self._call("lab_init")
        self._check_tables("lab_init", fault=0)
        m.set_reg("priv", Priv.U)
        for reg, value in (("a0", BASE + first * PAGE_SIZE), ("a1", len(refs)), ("a2", BASE), ("a3", self.tick)):
            m.set_reg(reg, value)
        pc = self.code_va
        limit = 10 * len(refs) + 100
        repeats, last = 0, (-1, -1)
        while True:
            self._user = True
            try:
                # "until" an address the code never reaches, in its own page (Unicorn probes the page before it)
                result = m.run(pc, until=self.code_va + PAGE_SIZE - 4, timeout_us=30_000_000)
            finally:
                self._user = False
            if result.reason is StopReason.ECALL:
                pc = result.pc
                if self._user_exit == USER_DONE:
                    break
                info.ticks += 1
                self._call("lab_tick")
                self._check_tables("lab_tick", fault=info.faults)
                continue
            fault = result.fault
            if result.reason is not StopReason.FAULT or fault is None:
                raise LabError(f"the workload stopped at {result.pc:#x}: {result.describe()}")
            page = (fault.va - BASE) >> PAGE_SHIFT
            if not (BASE <= fault.va and page < self.npages) or fault.cause not in (
                Cause.LOAD_PAGE_FAULT,
                Cause.STORE_PAGE_FAULT,
            ):
                raise LabError(
                    f"the workload faulted outside its pages (at {fault.va:#x}: {fault.message}): "
                    "did the handler write a PTE it does not own?"
                )
            store = fault.access is Access.STORE
            index = len(self._recorded) - store  # a reference's store comes after its load was recorded
            repeats = repeats + 1 if (index, fault.va) == last else 1
            last = (index, fault.va)
            if repeats > LOOP_LIMIT:
                raise LabError(self._loop_message(index, page, store))
            info.faults += 1
            if info.faults > limit:
                raise LabError(
                    f"fault loop: {info.faults} page faults for {len(refs)} references (at most one a reference "
                    "is needed): the handler keeps evicting the pages the workload needs next"
                )
            before = self._resident()
            self._swapped_out = set()
            self._call("lab_page_fault", fault.va, int(store))
            self._note_evictions(before, info.faults, index)
            self._check_tables("lab_page_fault", fault=info.faults)
            pc = result.pc
        self._final_check()

    def _loop_message(self, index: int, page: int, store: bool) -> str:
        pte = self.pte(page)
        access = "store" if store else "load"
        if not pte & Pte.V:
            why = "its PTE is still invalid (V=0): the handler returned without mapping the page"
        elif not pte & Pte.U:
            why = "its PTE has no U bit: U-mode code may not use the page"
        elif store and not pte & Pte.W:
            why = "its PTE has no W bit, and the access is a store"
        elif not pte & Pte.R:
            why = "its PTE has no R bit"
        else:
            cached = self.m.tlb.probe(ASID, BASE + page * PAGE_SIZE)
            if cached is not None and cached.pte != pte:
                return (
                    f"fault loop: reference {index} ({access} of page {page}) faulted {LOOP_LIMIT + 1} times in a "
                    f"row: its PTE ({pte:#x}) allows the access, but the TLB still holds the old one "
                    f"({cached.pte:#x}), and the CPU faults on that: a PTE the TLB may hold needs sfence.vma after "
                    "any change, adding a permission too"
                )
            why = "the PTE looks right now: is it the last thing the handler writes, after an sfence.vma?"
        return (
            f"fault loop: reference {index} ({access} of page {page}, va {BASE + page * PAGE_SIZE:#x}) faulted "
            f"{LOOP_LIMIT + 1} times in a row; after the handler returned, {why} (PTE {pte:#x})"
        )

    def _call(self, entry: str, *args: int) -> None:
        """Call the handler's ``entry(lab, *args)`` in S-mode, as a trap would, and come back."""
        m = self.m
        context = m.save_context()
        try:
            m.set_reg("priv", Priv.S)
            m.set_reg("sp", self.stack_top)
            m.set_reg("ra", self.exit)
            for i, value in enumerate((self.lab_struct, *args)):
                m.set_reg(f"a{i}", value)
            pc = self.image.symbols[entry]
            while True:
                result = m.run(pc, until=self.exit, timeout_us=HANDLER_TIMEOUT_US)
                if result.reason is StopReason.EXIT:
                    break
                if result.reason is StopReason.EXCEPTION and result.cause is Cause.ILLEGAL_INSN:
                    if m.carry_out_fence(result.pc):  # an sfence.vma, trapped by mstatus.TVM
                        pc = result.pc + 4
                        continue
                    word = int.from_bytes(m.phys.read(result.pc, 4), "little")  # identity-mapped code
                    if word & 0x7F == 0x73 and (word >> 12) & 7 and (word >> 20) == 0x180:
                        raise LabError(f"{entry} accessed satp in {self._where(result.pc)}: use lab->ptes instead")
                if result.reason is StopReason.LIMIT:
                    raise LabError(
                        f"{entry} did not return within {HANDLER_TIMEOUT_US / 1e6:g} s "
                        f"(an endless loop?); it was in {self._where(result.pc)}"
                    )
                raise LabError(f"{entry} crashed in {self._where(result.pc)}: {result.describe()}")
        finally:
            m.restore_context(context)
            m.flush_cpu_tlb()

    def _ecall(self, m: Machine) -> EcallAction:
        n = m.get_reg("a7")
        if m.priv is Priv.U:
            self._user_exit = n
            return EcallAction.STOP
        a0, a1 = m.get_reg("a0"), m.get_reg("a1")
        info = self.run_info
        assert info is not None
        if n in (SVC_SWAP_IN, SVC_SWAP_OUT):
            name = "lab_swap_in" if n == SVC_SWAP_IN else "lab_swap_out"
            if not 0 <= a0 < self.npages or not 0 <= a1 < self.frames:
                raise LabError(
                    f"{name}(page={a0}, frame={a1}): pages are 0..{self.npages - 1}, frames 0..{self.frames - 1}"
                )
            pa = self.pool + a1 * PAGE_SIZE
            if n == SVC_SWAP_IN:
                info.page_ins += 1
                m.phys.write(pa, self.disk[a0])
                self.loaded_into[a1] = a0
            else:
                info.write_backs += 1
                data = m.phys.read(pa, PAGE_SIZE)
                held = int.from_bytes(data[:8], "little") >> 32
                if held != a0:
                    raise LabError(
                        f"lab_swap_out(page={a0}, frame={a1}): frame {a1} holds page {held}, not page {a0}; "
                        "writing it back would overwrite page "
                        f"{a0} on disk with page {held}'s data"
                    )
                self.disk[a0] = data
                self._swapped_out.add(a0)
        elif n == SVC_LOG:
            raw = m.phys.read(a0, 200)
            text = raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
            info.log.append(f"{text} {a1}")
        else:
            raise LabError(f"the handler made an ecall with unknown service a7={n} (lab.h has the services)")
        m.set_reg("a0", 0)
        return EcallAction.RESUME

    # -- what the handler did ----------------------------------------------------------------

    def _note_evictions(self, before: dict[int, int], fault: int, ref: int) -> None:
        after = self._resident()
        for page, pte in before.items():
            new = after.get(page)
            if new is not None and pte_ppn(new) == pte_ppn(pte):
                continue
            frame = self.frame_of(pte)
            dirty = bool(pte & Pte.D)
            self.evictions.append(
                _Eviction(page, frame if frame is not None else -1, fault, ref, dirty, page in self._swapped_out)
            )

    def _check_tables(self, entry: str, *, fault: int) -> None:
        resident = self._resident()
        owners: dict[int, int] = {}
        for page, pte in resident.items():
            frame = self.frame_of(pte)
            if frame is None:
                raise LabError(
                    f"after {entry}: page {page}'s PTE ({pte:#x}) points at {pte_ppn(pte) << PAGE_SHIFT:#x}, "
                    f"which is not one of the lab's {self.frames} frames ({self.pool:#x} + f * 4 KiB)"
                )
            if frame in owners:
                raise LabError(
                    f"after {entry}: frame {frame} is mapped twice, by page {owners[frame]} and page {page}: "
                    f"a write to one would change the other (evict page {owners[frame]} before reusing its frame)"
                )
            owners[frame] = page
        # The model TLB against the tables: what a missing sfence.vma left behind.
        stale: dict[int, str] = {}
        for asid, tr in self.m.tlb.entries():
            page = (tr.va - BASE) >> PAGE_SHIFT
            if tr.level or not (BASE <= tr.va and page < self.npages) or asid != ASID:
                continue
            now = resident.get(page)
            when = f"{entry} (fault #{fault})" if fault else entry
            cached = self.frame_of(tr.pte)
            if now is None or pte_ppn(now) != pte_ppn(tr.pte):
                stale[page] = self.stale.get(page) or (
                    f"{when} changed page {page}'s PTE and executed no sfence.vma for va {tr.va:#x}, so the TLB "
                    f"still maps page {page} to frame {cached}"
                )
            elif tr.pte & Pte.A and not now & Pte.A:
                warn = (
                    f"{when} cleared A of page {page} while the TLB held it, with no sfence.vma: the MMU sets A "
                    f"again only after a TLB miss, so accesses to page {page} are not seen"
                )
                if self.run_info is not None and warn not in self.run_info.warnings:
                    self.run_info.warnings.append(warn)
        self.stale = stale

    def _lost_write(self, page: int) -> _Eviction | None:
        for ev in reversed(self.evictions):
            if ev.page == page and ev.dirty and not ev.written_back:
                return ev
        return None

    def _explain_data(self, page: int, frame: int, got: int, where: str) -> str:
        want = tag(page, self.versions[page])
        text = f"{where}: page {page} reads {_describe_tag(got)}, expected {_describe_tag(want)}"
        if page in self.stale:
            return f"{text}: a stale TLB entry: {self.stale[page]}"
        if got >> 32 != page:
            loaded = self.loaded_into.get(frame)
            if loaded is None:
                return f"{text}: frame {frame} was mapped for page {page} without lab_swap_in(page, frame)"
            if loaded != page:
                return (
                    f"{text}: frame {frame} was mapped for page {page} but lab_swap_in last read page {loaded} into it"
                )
            return f"{text}: frame {frame} holds another page's data"
        ev = self._lost_write(page)
        if ev is not None:
            return (
                f"{text}: page {page} was evicted dirty (D=1) from frame {ev.frame} at fault #{ev.fault} "
                f"(reference {ev.ref}) without lab_swap_out: its last write was lost"
            )
        return f"{text}: the page's data is older than its last write"

    def _on_load(self, pa: int, size: int) -> None:
        if not self._user or pa & (PAGE_SIZE - 1) or size != 8:
            return
        value = self.m.phys.read_u64(pa)
        index = len(self._recorded)
        page, _write = self._refs[index]
        frame = (pa - self.pool) >> PAGE_SHIFT
        pte = self.pte(page)
        mapped = self.frame_of(pte) if pte & Pte.V else None
        if mapped != frame:
            holder = next((p for p, e in self._resident().items() if self.frame_of(e) == frame), None)
            now = "is invalid" if mapped is None else f"points at frame {mapped}"
            why = self.stale.get(page, "the TLB entry is stale (a PTE changed without sfence.vma)")
            raise LabError(
                f"stale TLB entry used: reference {index} reads page {page} through frame {frame}"
                + (f" (which holds page {holder} now)" if holder is not None else "")
                + f", though page {page}'s PTE {now}: {why}"
            )
        if value != tag(page, self.versions[page]):
            raise LabError(self._explain_data(page, frame, value, f"data check at reference {index}"))
        self._recorded.append((page, False))

    def _on_store(self, pa: int, size: int, value: int) -> None:
        if not self._user or pa & (PAGE_SIZE - 1) or size != 8 or not self._recorded:
            return
        page, _ = self._recorded[-1]
        self._recorded[-1] = (page, True)
        self.versions[page] += 1

    def _final_check(self) -> None:
        if self._recorded != self._refs:
            raise LabError("the recorded reference string differs from the workload's (a lab bug)")
        resident = self._resident()
        for page in range(self.npages):
            pte = resident.get(page)
            if pte is not None:
                frame = self.frame_of(pte)
                assert frame is not None
                got = self.m.phys.read_u64(self.pool + frame * PAGE_SIZE)
                where = f"at the end (page {page} in frame {frame})"
            else:
                frame = -1
                got = int.from_bytes(self.disk[page][:8], "little")
                where = f"at the end (page {page} on disk)"
            if got != tag(page, self.versions[page]):
                raise LabError(self._explain_data(page, frame, got, where))


def run_handler(
    elf: bytes,
    refs: list[Ref],
    *,
    frames: int,
    workload: str = "custom",
    tick: int = DEFAULT_TICK,
    name: str = "lab.elf",
) -> LabRun:
    """Run the handler in ``elf`` over ``refs`` with ``frames`` frames, on a fresh machine."""
    npages = max(p for p, _ in refs) + 1 if refs else 1
    return PagingLab(elf, frames=frames, npages=npages, tick=tick, name=name).run(refs, workload)


def compare(run: LabRun, refs: list[Ref], *, tick: int = DEFAULT_TICK) -> dict[str, Counts]:
    """The models' counts over the reference string recorded from ``run`` (the workload's, when the run
    failed before its end), by policy title: FIFO, clock, aging, LRU, OPT."""
    recorded = run.refs if run.error is None else refs
    return {p.title: simulate(p, recorded, run.frames, tick=tick).counts for p in Policy}
