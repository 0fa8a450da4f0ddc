"""The emulated RISC-V 64 machine: a Unicorn CPU whose every translation goes through hwsim's MMU.

::

      guest code (U/S-mode)                      host (Python)
     +--------------------+  Unicorn TLB miss  +------------------------------+
     |  Unicorn RV64 CPU  | -----------------> | Machine._tlb_fill            |
     |  (UC_TLB_VIRTUAL)  |   (page va, kind)  |  mmu.translate:              |
     |   L0: QEMU softTLB | <----------------- |   Tlb model (hit: reuse)     |
     +--------------------+  pa + R/W/X perms  |   walker (miss: walk tables  |
              |                                |   in RAM; pagers and write-  |
              | physical accesses              |   fault handlers may fix it) |
     +--------v-------------------------------------------+-------------------+
     | PhysicalMemory: RAM (mem_map_ptr) | MMIO -> devices |
     +----------------------------------------------------+  then MMIO observers

Unicorn's own TLB (QEMU's soft TLB) is a cache in front of the model TLB:
whenever the model is flushed, so is Unicorn's, so the CPU never uses a
translation the model no longer holds.  Permissions handed to Unicorn are
those of the current privilege, SUM and MXR; a page whose D bit is clear is
handed over without write permission, so the first store comes back here
and sets D through the walker, as hardware would.  Pagers, write-fault and
ecall handlers and MMIO observers are registered, not assigned: ``hooks.py``
says in which order they are asked.

A machine may have several harts (:meth:`Machine.add_hart`): each its own
Unicorn CPU and model TLB, all over the one PhysicalMemory (the RAM buffer
mapped into every CPU, every MMIO window in every CPU) and the one set of
hooks; ``harts.py`` runs them in turns.
"""

from __future__ import annotations

import ctypes
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from unicorn import Uc, UcError
from unicorn import riscv_const as rv
from unicorn import unicorn_const as uc_const
from unicorn.unicorn_py3.arch.types import uc_hook_h
from unicorn.unicorn_py3.unicorn import uc_tlb_entry

from ..errors import ConfigError, HwsimError
from ..mmu.aspace import AddressSpace
from ..mmu.bits import (
    PAGE_MASK,
    PAGE_SHIFT,
    PAGE_SIZE,
    PAGING_MODES,
    SATP_ASID_MASK,
    SATP_ASID_SHIFT,
    SATP_MODE_SHIFT,
    SATP_PPN_MASK,
    SV39,
    PagingMode,
    Pte,
    make_satp,
    satp_fields,
)
from ..mmu.tlb import Tlb
from ..mmu.translate import Refusal, Resolver, lookup_or_walk
from ..mmu.walker import AdPolicy, FaultReason, RamWords, Translation, WalkResult, walk
from ..riscv.asm import ABI_NAMES
from ..riscv.disasm import Insn, disassemble_one
from ..riscv.memop import MemOp, decode_memop
from ..riscv.priv import (
    CSR_SATP,
    MCAUSE_INTERRUPT,
    MSTATUS_FS_DIRTY,
    MSTATUS_MIE,
    MSTATUS_MPIE,
    MSTATUS_MPP_MASK,
    MSTATUS_MPP_SHIFT,
    MSTATUS_MPRV,
    MSTATUS_MXR,
    MSTATUS_SUM,
    MSTATUS_TVM,
    Access,
    Cause,
    Priv,
)
from ..trace import TRACE
from . import cputlb
from .debug import DebugPort, DebugStop, DebugStopKind
from .fault import CpuFault, RunResult, StopReason, WatchHit
from .frames import FrameAllocator
from .hooks import EcallAction, Hooks
from .native import TRACED, AccessHook, HartState, NativeTlb, library
from .physmem import MmioRegion, PhysicalMemory, RamRegion
from .shootdown import Shootdowns
from .storewatch import StoreWatches

try:  # the C entry points, for the TLB-fill hot path (the binding's reg_read costs 2x more)
    from unicorn.unicorn_py3.unicorn import uclib

    # Own function objects without argtypes for the single-register calls (``uclib[name]`` makes a new one):
    # every caller passes ctypes objects (the handle, a byref) and a small int, which ctypes then passes as
    # they are; converting them through argtypes cost about 0.15 us of a 0.35 us call.
    _uc_reg_read, _uc_reg_write = uclib["uc_reg_read"], uclib["uc_reg_write"]
    # Own function objects for the batches (``uclib[name]`` makes a new one; the binding's keep their argtypes):
    # plain addresses as arguments, which ctypes passes without converting arrays to pointers on every call.
    _uc_reg_read_batch, _uc_reg_write_batch = uclib["uc_reg_read_batch"], uclib["uc_reg_write_batch"]
    for _fn in (_uc_reg_read_batch, _uc_reg_write_batch):
        _fn.argtypes = (ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int)
        _fn.restype = ctypes.c_int
    _uclib: ctypes.CDLL | None = uclib
except ImportError:  # pragma: no cover - older binding layout
    _uclib = None

# The binding's TLB-fill callback type (the compiled hook calls the Python one through it when it defers).
_FILL_CFUNC = ctypes.CFUNCTYPE(
    ctypes.c_bool, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_int, ctypes.POINTER(uc_tlb_entry), ctypes.c_void_p
)
_INTR_CFUNC = ctypes.CFUNCTYPE(None, ctypes.c_void_p, ctypes.c_uint32, ctypes.c_void_p)  # the binding's, raw
# uc_mmio_map's callbacks, raw (the binding's mmio_map adds two wrapper calls to every device access)
_MMIO_READ_CFUNC = ctypes.CFUNCTYPE(ctypes.c_uint64, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint, ctypes.c_void_p)
_MMIO_WRITE_CFUNC = ctypes.CFUNCTYPE(
    None, ctypes.c_void_p, ctypes.c_uint64, ctypes.c_uint, ctypes.c_uint64, ctypes.c_void_p
)

_REG_PC = rv.UC_RISCV_REG_PC

DEFAULT_RAM_BASE = 0x8000_0000
DEFAULT_RAM_SIZE = 128 << 20
HANDED_RECORD = 1024  # pages the compiled helper's record of Unicorn's TLB holds (past it: whole flushes)
CPU_PAGE_FLUSH_MAX = 64  # a flush of more pages of Unicorn's TLB than this is a whole flush
_ECALL_INTNO = int(Cause.ECALL_U)  # what Unicorn reports for every ecall
_ECALL_CAUSES: dict[int, Cause] = {Priv.U: Cause.ECALL_U, Priv.S: Cause.ECALL_S, Priv.M: Cause.ECALL_M}  # by PRIV
_CAUSE_ECALL_U = Cause.ECALL_U
_ECALLS = (Cause.ECALL_U, Cause.ECALL_S, Cause.ECALL_M)
_NEVER = 0xDEAD_0000_0000_0001  # an odd address: never a PC, so "run until" never matches it
_XMASK = 0xFFFF_FFFF_FFFF_FFFF  # a 64-bit register

_UC_ACCESS = {
    uc_const.UC_MEM_READ: Access.LOAD,
    uc_const.UC_MEM_WRITE: Access.STORE,
    uc_const.UC_MEM_FETCH: Access.FETCH,
}
_MEM_SIZES = {"b": 1, "h": 2, "w": 4, "d": 8}

REGISTERS: dict[str, int] = {"pc": rv.UC_RISCV_REG_PC}
for _i, _name in enumerate(ABI_NAMES):
    REGISTERS[_name] = rv.UC_RISCV_REG_X0 + _i
    REGISTERS[f"x{_i}"] = rv.UC_RISCV_REG_X0 + _i
    REGISTERS[f"f{_i}"] = rv.UC_RISCV_REG_F0 + _i
REGISTERS.update(
    fp=rv.UC_RISCV_REG_X8,
    satp=rv.UC_RISCV_REG_SATP,
    mstatus=rv.UC_RISCV_REG_MSTATUS,
    priv=rv.UC_RISCV_REG_PRIV,
    fflags=rv.UC_RISCV_REG_FFLAGS,
    frm=rv.UC_RISCV_REG_FRM,
    fcsr=rv.UC_RISCV_REG_FCSR,
)
_TRAP_CSRS = ("mie", "mip", "mideleg", "medeleg", "mtvec", "mepc", "mcause", "mtval", "mscratch", "mhartid")
_TRAP_CSRS_S = ("sstatus", "sie", "sip", "stvec", "sepc", "scause", "stval", "sscratch")
for _name in (*_TRAP_CSRS, *_TRAP_CSRS_S):
    REGISTERS[_name] = getattr(rv, f"UC_RISCV_REG_{_name.upper()}")
_CSRS = frozenset({"satp", "mstatus", "fflags", "frm", "fcsr", *_TRAP_CSRS, *_TRAP_CSRS_S})


_PRIVS = {0: Priv.U, 1: Priv.S, 3: Priv.M}
# Enum members as globals for the hot paths (``Priv.S`` is a descriptor lookup, ~50 ns in Python 3.11).
_PRIV_U, _PRIV_S, _PRIV_M = Priv.U, Priv.S, Priv.M
_DECLINE, _RESUME, _STOP = EcallAction.DECLINE, EcallAction.RESUME, EcallAction.STOP
_WATCH = StopReason.WATCH
_DEBUG = StopReason.DEBUG
_NOT_RETIRED = frozenset({StopReason.FAULT, StopReason.EXCEPTION, StopReason.BREAKPOINT})
_R, _W, _X, _U, _D = (int(f) for f in (Pte.R, Pte.W, Pte.X, Pte.U, Pte.D))
_UC_R, _UC_W, _UC_X = uc_const.UC_PROT_READ, uc_const.UC_PROT_WRITE, uc_const.UC_PROT_EXEC


def _unicorn_perms(pte: int, priv: Priv, sum_: bool, mxr: bool) -> int:
    """The R/W/X rights Unicorn may cache for this leaf at this privilege (the walker's rule, as bits).

    W only when D is already set, so the first store comes back to set D.
    """
    if pte & _U:
        if priv is _PRIV_S and not sum_:
            return 0
        execute = priv is _PRIV_U  # S-mode never executes user pages
    else:
        if priv is _PRIV_U:
            return 0
        execute = True
    perms = 0
    if pte & _R or (mxr and pte & _X):
        perms = _UC_R
    if pte & _W and pte & _D:
        perms |= _UC_W
    if execute and pte & _X:
        perms |= _UC_X
    return perms


def _register_name(device, offset: int, cache: dict[int, str]) -> str:
    """The name of the register at ``offset`` of ``device`` (for traces), cached per window."""
    name = cache.get(offset)
    if name is None:
        layout = getattr(getattr(device, "regs", None), "layout", None)
        regs = layout.at(offset) if layout is not None else []
        if regs:
            name = regs[0].name
        else:
            inside = layout.containing(offset) if layout is not None else []
            name = f"{inside[0].name}+{offset - inside[0].offset}" if inside else f"+{offset:#x}"
        cache[offset] = name
    return name


@dataclass(frozen=True, slots=True)
class _PendingFault:
    """A translation the fill hook refused, kept until :meth:`Machine.run` explains it."""

    page: int  # the VA Unicorn asked for
    access: Access
    priv: Priv  # the effective privilege, SUM, MXR and satp of the access
    sum: bool
    mxr: bool
    satp: int
    refusal: Refusal  # the cached TLB entry that refused, or the walk the hardware did


@dataclass(frozen=True, slots=True)
class _PendingException:
    """An exception or ecall that stopped the run, and the PC to report."""

    cause: Cause
    pc: int


_DATA_ACCESSES = frozenset((Access.LOAD, Access.STORE))  # what watch_page may watch


@dataclass(frozen=True, slots=True)
class _Watch:
    """What :meth:`Machine.watch_page` watches on one physical page: the union of the kinds of access its
    watchers watch, and each watcher's handler with its own kinds (in the order they began watching)."""

    accesses: frozenset[Access]
    watchers: tuple[tuple[Callable[[WatchHit], None], frozenset[Access]], ...]


@dataclass(frozen=True, slots=True)
class _PendingWatch:
    """A watched access the fill hook stopped on, to be carried out by the host."""

    page: int  # the VA's page
    access: Access
    pa_page: int


class VirtualAccessError(HwsimError):
    """A host-side access through the MMU failed; ``walk`` says why."""

    def __init__(self, message: str, walk: WalkResult | None = None):
        super().__init__(message)
        self.walk = walk


class RegisterBatch:
    """A fixed list of integer/float registers read or written in one call into Unicorn.

    Made once (:meth:`Machine.register_batch`) and reused: the register ids, the value buffer and
    the pointers to it are built here, so :meth:`read` and :meth:`write` cost one C call whatever
    the count (the binding's ``reg_read_batch`` builds them on every call and costs more than
    reading one register at a time).  CSRs are not allowed (they need :meth:`Machine.get_reg`'s
    privilege dance).
    """

    __slots__ = (
        "names",
        "_uc",
        "_handle",
        "_ids",
        "_values",
        "_ptrs",
        "_count",
        "_id_list",
        "_keep",
        "_keep_ptrs",
        "_words",
    )

    def __init__(self, uc: Uc, handle, names: tuple[str, ...]) -> None:
        ids = []
        for name in names:
            reg_id = REGISTERS.get(name)
            if reg_id is None or name in _CSRS or name == "priv":
                raise ConfigError(f"register batch: {name!r} is not an integer or float register (or pc)")
            ids.append(reg_id)
        self.names = names
        self._uc = uc
        self._handle = handle.value  # the uc_engine pointer, as an int
        self._count = len(ids)
        self._id_list = ids
        self._keep = (ctypes.c_int * len(ids))(*ids)
        self._values = (ctypes.c_uint64 * len(ids))()
        base = ctypes.addressof(self._values)
        self._keep_ptrs = (ctypes.c_void_p * len(ids))(*(base + 8 * i for i in range(len(ids))))
        self._ids = ctypes.addressof(self._keep)  # addresses: the arrays above stay alive with the batch
        self._ptrs = ctypes.addressof(self._keep_ptrs)
        self._words = memoryview(self._values).cast("B").cast("Q")  # tolist() is the cheapest copy out

    def read(self) -> list[int]:
        """The registers' values, in the batch's order."""
        if _uclib is None:  # pragma: no cover - older binding layout
            return [self._uc.reg_read(i) for i in self._id_list]
        err = _uc_reg_read_batch(self._handle, self._ids, self._ptrs, self._count)
        if err:
            raise UcError(err)
        return self._words.tolist()

    def write(self, values) -> None:
        """Set the registers to ``values`` (64-bit patterns, in the batch's order)."""
        if _uclib is None:  # pragma: no cover - older binding layout
            for reg_id, value in zip(self._id_list, values):
                self._uc.reg_write(reg_id, value & _XMASK)
            return
        self._values[:] = values
        err = _uc_reg_write_batch(self._handle, self._ids, self._ptrs, self._count)
        if err:
            raise UcError(err)

    def __repr__(self) -> str:
        return f"<RegisterBatch {' '.join(self.names)}>"


MAX_HARTS = 8
# What every hart of a machine shares with hart 0 (add_hart): memory, frames, the hooks and the settings.
_SHARED_BY_HARTS = (
    "mode",
    "ad_policy",
    "harts",
    "_tlb_capacity",
    "phys",
    "ram",
    "frames",
    "_ram_words",
    "_pagers",
    "_write_fault_handlers",
    "_ecall_handlers",
    "_mmio_observers",
    "_access_observers",
    "_shootdowns",
    "_store_watch",
)


def _check_watch_range(what: str, pa: int, length: int) -> None:
    """ConfigError unless ``[pa, pa + length)`` is a non-empty range of 64-bit physical addresses (a Unicorn
    hook whose end wrapped below its start would cover every address)."""
    if length <= 0:
        raise ConfigError(f"{what}: the range at {pa:#x} is empty ({length} bytes)")
    if pa < 0 or pa + length > 1 << 64:
        raise ConfigError(f"{what}: [{pa:#x}, {pa + length:#x}) is outside the 64-bit physical address space")


class Machine:
    """RV64 harts over one physical memory, a frame allocator, and the MMU/TLB model.

    The object is hart 0 and the machine at once (every method acts on hart 0); :meth:`add_hart`
    makes more harts, each a ``Machine`` object of its own that shares the memory and the hooks.
    """

    def __init__(
        self,
        *,
        ram_base: int = DEFAULT_RAM_BASE,
        ram_size: int = DEFAULT_RAM_SIZE,
        mode: PagingMode = SV39,
        tlb_capacity: int = 1024,
        ad_policy: AdPolicy = AdPolicy.UPDATE,
        harts: int = 1,
    ) -> None:
        """``harts``: how many harts (1 .. MAX_HARTS); more may be added with :meth:`add_hart`."""
        if isinstance(harts, bool) or not isinstance(harts, int) or not 1 <= harts <= MAX_HARTS:
            raise ConfigError(f"a machine has 1 to {MAX_HARTS} harts, not {harts!r}")
        if ad_policy is AdPolicy.REPORT:
            raise ConfigError("the CPU's A/D policy must be UPDATE or FAULT (REPORT never writes)")
        self.mode = mode
        self.ad_policy = ad_policy
        self.hartid = 0
        self.harts: list[Machine] = [self]  # hart 0 is this object; add_hart appends (one list, every hart's)
        self._shootdowns = Shootdowns(self.harts)  # which hart runs; mapping changes reach the others (shootdown.py)
        self._tlb_capacity = tlb_capacity
        self.phys = PhysicalMemory()
        # The hooks (hooks.py has the table of their order and outcomes); see the add_* methods.  One set
        # for the machine: every hart asks them (an ecall handler is handed the hart that made the ecall).
        self._pagers = Hooks("pager")
        self._write_fault_handlers = Hooks("write-fault handler")
        self._ecall_handlers = Hooks("ecall handler")
        self._mmio_observers = Hooks("MMIO observer")
        self._access_observers = Hooks("device-access observer")  # run by the device windows' callbacks
        self._init_hart()
        self.ram = self.phys.add_ram(ram_base, ram_size)
        self.frames = FrameAllocator(self.ram)
        self._ram_words = RamWords.for_region(self.ram.base, self.ram.view)  # the page tables' RAM, for quick walks
        self._store_watch = StoreWatches(self)  # every hart's (see watch_stores)
        for _ in range(1, harts):
            self.add_hart()

    def add_hart(self) -> Machine:
        """A new hart over this machine's physical memory: its own Unicorn CPU with the same RAM buffer
        (``mem_map_ptr``) and the same devices behind its MMIO windows, its own registers, privilege,
        CSRs, ``satp``, model TLB and counters; the machine's hooks, frames and address spaces.  Hart
        ``i`` is ``harts[i]``; hart 0 is the machine object itself.  See ``harts.py`` for running
        several in turns."""
        primary = self.harts[0]
        if len(self.harts) >= MAX_HARTS:
            raise ConfigError(f"a machine has at most {MAX_HARTS} harts")
        hart = object.__new__(Machine)
        for name in _SHARED_BY_HARTS:
            setattr(hart, name, getattr(primary, name))
        hart.hartid = len(self.harts)
        hart._init_hart()
        if primary._mmio_pc_hooks is not None:
            hart._track_mmio_pcs_here()
        self._store_watch.attach(hart)
        self.harts.append(hart)
        return hart

    def _init_hart(self) -> None:
        """One hart's state: its Unicorn CPU over the machine's physical memory, TLB, counters, run state."""
        self._uc = Uc(uc_const.UC_ARCH_RISCV, uc_const.UC_MODE_RISCV64)
        # unicorn's __init__ re-exports its Python 2 binding's Uc to mypy, which lacks the ctl_* methods
        self._uc.ctl_set_tlb_mode(uc_const.UC_TLB_VIRTUAL)  # type: ignore[attr-defined]
        self._keep: list = []  # buffers and callbacks Unicorn holds raw pointers to
        self._handle = self._uc._uch
        self._native: HartState | None = None  # the compiled hook's state for this hart (native.py), if used
        self._stop_reason_v: StopReason | None = None
        lib = library() if _uclib is not None else None
        if lib is not None:
            self._hook_native(lib)
        else:
            self._uc.hook_add(uc_const.UC_HOOK_TLB_FILL, self._tlb_fill)
        if _uclib is not None:  # straight to _interrupt: the binding's two wrapper calls cost every host call
            callback = _INTR_CFUNC(self._interrupt)
            self._keep.append(callback)
            self._hook_raw(uc_const.UC_HOOK_INTR, ctypes.cast(callback, ctypes.c_void_p), None)
        else:  # pragma: no cover - older binding layout
            self._uc.hook_add(uc_const.UC_HOOK_INTR, self._interrupt)
        self._mmio_pc_hooks: list | None = None  # Unicorn hooks that make the PC exact at device accesses
        self._access_hook: AccessHook | None = None  # the compiled one's data (see _hook_mmio_pc)
        self.phys.on_region_added(self._attach_region)
        for region in self.phys.regions:  # a hart added later: the regions already there
            self._attach_region(region)
        if self._native is None:
            self.tlb = Tlb(capacity=self._tlb_capacity)
        self.mmio_accesses = 0  # guest loads and stores that reached a device
        self._fills = 0  # TLB-fill requests from Unicorn the Python hook served (see fills)
        self._walks = 0  # of which needed a page-table walk (see walks)
        self.demand_faults = 0  # walks that faulted on an invalid PTE and were resolved by a pager
        self.write_faults = 0  # stores to pages without W that a write-fault handler made writable
        self.guest_fences = 0  # sfence.vma the guest executed and the machine carried out (see trap_guest_fences)
        self.shootdowns = 0  # TLB shootdowns this hart started: mapping changes made while it ran (shootdown.py)
        self.shootdown_ipis = 0  # shootdown IPIs it received, each answered by a fence
        self.shootdown_ns = 0  # host time its shootdown fences took
        self._tvm = ""  # mstatus.TVM set by hwsim: "" no, "stop" (set_trap_vm), "carry out" (trap_guest_fences)
        # What may fix a fault and have the walk retried, asked in this order (see mmu/translate.py).
        self._resolvers = (
            Resolver(FaultReason.INVALID, self._page_in),
            Resolver(FaultReason.NOT_WRITABLE, self._fix_write),
        )
        self._asid_owner: dict[int, AddressSpace] = {}
        self._active_space: AddressSpace | None = None  # see active_space
        self._pending_fault: _PendingFault | None = None
        self._pending_exc: _PendingException | None = None
        self._host_error: BaseException | None = None
        # A stop asked for while the run is between two stretches of emulation (carrying out a watched
        # access in Python): Unicorn's emu_stop would be lost there, so run() checks this too.
        self._stop_pending: StopReason | None = None
        self._raw = ctypes.c_uint64()
        self._raw_ref = ctypes.byref(self._raw)
        # The FPU starts off (mstatus.FS = 0): turn it on, so F/D instructions work in every mode.
        self._uc.reg_write(rv.UC_RISCV_REG_MSTATUS, self._uc.reg_read(rv.UC_RISCV_REG_MSTATUS) | MSTATUS_FS_DIRTY)
        self._u_context: tuple[int, int] | None = None  # (satp, mstatus) while the hart is in U-mode
        self._watched: dict[int, _Watch] = {}  # physical page -> what is watched there (see watch_page)
        self._watched_pages: ctypes.Array | None = None  # its keys, ascending, for the compiled hook
        self._pending_watch: _PendingWatch | None = None
        # The pages handed to Unicorn's TLB since its last whole flush, for the Python hook alone (with the
        # compiled helper, every fill is in its record instead: HartState.handed); see flush_cpu_tlb_range.
        self._handed = cputlb.HandedPages(HANDED_RECORD)
        self._page_flush: Callable[[int], None] | None = None  # drops one page from Unicorn's TLB, if it can
        self._quiet_fills = False  # Unicorn is changing its memory map: its fills are no guest access
        self._load_watches: dict[int, Callable] = {}  # see watch_loads: handle -> the hook (kept alive)
        self._memop_cache: dict[int, MemOp] = {}  # pc -> MemOp of watched accesses (dropped on code_changed)
        self.watch_hits = 0
        self._exit_results: dict[int, RunResult] = {}  # exit address -> its RunResult (see _exit_result)
        self.cpu_tlb_flushes = 0  # whole flushes of Unicorn's TLB (each one costs refills afterwards)
        self.cpu_tlb_page_flushes = 0  # pages dropped from it one by one instead (see flush_cpu_tlb_range)
        self._page_flush_why: str | None = None  # see page_flush_reason
        self._serving_mmio = False  # a device is serving a guest load or store now (see mmio_pc)
        # A stop asked for while a device access is being served (its callbacks included): Unicorn ends
        # the run with the PC still at the load or store, which a restart would repeat; _result finishes
        # the instruction instead (see _finish_stopped_access).
        self._in_access = False
        self._stop_in_access = False
        self._stopped_access: tuple[bool, int, int] | None = None  # (a store?, value read or written, pc)
        # The debugger's port (machine/debug.py): breakpoints, steps, stops served by run().
        self.debug = DebugPort(self._uc, self._stop_for_debugger, self.code_changed, handle=self._handle)
        self._hook_page_flush()  # (after the register writes above: the engine is initialised)

    def _hook_native(self, lib) -> None:
        """Serve this hart's TLB fills with the compiled hook (native.py), over a :class:`NativeTlb`;
        what it does not serve it hands to :meth:`_tlb_fill`."""
        self.tlb = NativeTlb(lib, capacity=self._tlb_capacity)

        def fallback(_uc, va: int, uc_access: int, entry, _data) -> bool:
            return self._tlb_fill(None, va, uc_access, entry.contents, None)

        callback = _FILL_CFUNC(fallback)
        state = HartState(
            uc=self._uc._uch.value,  # type: ignore[union-attr]
            reg_read=ctypes.cast(_uc_reg_read, ctypes.c_void_p).value,
            reg_write=ctypes.cast(_uc_reg_write, ctypes.c_void_p).value,
            fallback=ctypes.cast(callback, ctypes.c_void_p).value,
            tlb=self.tlb.handle,
            traced=ctypes.addressof(TRACED),
            ad_fault=int(self.ad_policy is AdPolicy.FAULT),
            reg_priv=rv.UC_RISCV_REG_PRIV,
            reg_satp=rv.UC_RISCV_REG_SATP,
            reg_mstatus=rv.UC_RISCV_REG_MSTATUS,
        )
        handed = (ctypes.c_uint64 * (3 * HANDED_RECORD))()
        state.handed, state.cap_handed = ctypes.addressof(handed), HANDED_RECORD
        self._hook_raw(uc_const.UC_HOOK_TLB_FILL, ctypes.cast(lib.hwsim_fill, ctypes.c_void_p), ctypes.addressof(state))
        self._keep.append((callback, state, self.tlb, handed))  # Unicorn and the C hook hold raw pointers to these
        self._native = state
        self._native_ref = ctypes.byref(state)
        self._handed_add, self._flush_pa, self._flush_va = lib.hwsim_handed_add, lib.hwsim_flush_pa, lib.hwsim_flush_va

    def _hook_page_flush(self) -> None:
        """Drop single pages from Unicorn's TLB (cputlb.py: QEMU's tlb_flush_page), when that works here:
        from the compiled helper, or the Python hook's record."""
        self._page_flush_why = cputlb.unavailable_reason()
        if self._page_flush_why is None:
            cpu, self._page_flush_why = cputlb.find_cpu(self._uc)
            if cpu is not None:
                self._page_flush = cputlb.PageFlush(cpu).flush
                if self._native is not None:
                    self._native.flush_page, self._native.cpu = cputlb.flush_page_function(), cpu

    @property
    def page_flush_reason(self) -> str | None:
        """Why this hart flushes Unicorn's TLB whole where one page changed (None: it drops the page alone)."""
        return self._page_flush_why

    def _hook_raw(self, kind: int, callback: ctypes.c_void_p, data: int | None, begin: int = 1, end: int = 0) -> int:
        """Add a Unicorn hook of ``kind`` calling the C function ``callback`` with ``data``, over addresses
        ``begin`` to ``end`` inclusive (by default every address); returns its handle."""
        hook = uc_hook_h()
        err = _uclib.uc_hook_add(  # type: ignore[union-attr]
            self._handle,
            ctypes.byref(hook),
            kind,
            callback,
            ctypes.c_void_p(data),
            ctypes.c_uint64(begin),
            ctypes.c_uint64(end),
        )
        if err:
            raise UcError(err)
        return hook.value

    @property
    def native(self) -> bool:
        """Whether this hart's TLB fills are served by the compiled helper (``hwsim.machine.native``)."""
        return self._native is not None

    @property
    def fills(self) -> int:
        """TLB-fill requests from Unicorn (served by the compiled hook or the Python one)."""
        return self._fills + (self._native.fills if self._native is not None else 0)

    @property
    def walks(self) -> int:
        """Fills that needed a page-table walk."""
        return self._walks + (self._native.walks if self._native is not None else 0)

    @property
    def _stop_reason(self) -> StopReason | None:
        return self._stop_reason_v

    @_stop_reason.setter
    def _stop_reason(self, reason: StopReason | None) -> None:
        # While stopping, Unicorn probes the page before the exit address: no guest access, so the
        # compiled hook must leave that to _fill (which refuses it), as it leaves watched pages.
        self._stop_reason_v = reason
        if self._native is not None:
            self._native.defer = int(reason is not None)

    # -- hooks (hooks.py has their order and outcomes in one table) ----------------------------

    def add_pager(self, pager: Callable[[int, Access], bool | Translation]) -> Callable[[], None]:
        """``pager(va, access) -> bool`` is asked when a walk finds an invalid PTE: it may map the page
        (demand paging) and return True to have the walk retried.  Pagers are asked in the order they
        were added until one returns True.  Returns the function that removes this pager.

        A pager may return the :class:`~hwsim.mmu.Translation` of the leaf it wrote for ``va`` instead
        of True (exactly what a walk would now find): when no walk is traced, and the leaf allows the
        access without an A/D update, it stands for the walk after it (one walk per new page)."""
        return self._pagers.add(pager)

    def add_write_fault_handler(self, handler: Callable[[int], bool]) -> Callable[[], None]:
        """``handler(va) -> bool`` is asked when a store finds a valid page without W: it may make the
        page writable (copy-on-write) and return True to have the walk retried.  Handlers are asked in
        the order they were added until one returns True.  Returns the function that removes it."""
        return self._write_fault_handlers.add(handler)

    def add_ecall_handler(self, handler: Callable[[Machine], EcallAction]) -> Callable[[], None]:
        """``handler(machine) -> EcallAction`` runs at each ``ecall``, the PC already past it: RESUME
        (served: the guest goes on), STOP (served: the run stops with ``StopReason.ECALL``) or DECLINE
        (the next handler is asked).  Handlers are asked in the order they were added; when every one
        declines, or there is none, the run stops with ``StopReason.ECALL``.  An exception in a handler
        stops the run and :meth:`run` raises it.  Returns the function that removes the handler."""
        return self._ecall_handlers.add(handler)

    def add_mmio_observer(self, observer: Callable[[MmioRegion, int, int, bool, int], None]) -> Callable[[], None]:
        """``observer(region, offset, size, write, value)`` runs after each guest load or store a device
        served (``value`` is what was read or written), so a board can charge virtual time.  Every
        observer runs, in the order they were added.  Returns the function that removes the observer."""
        return self._mmio_observers.add(observer)

    def add_device_access_observer(self, observer: Callable[[], None]) -> Callable[[], None]:
        """``observer()`` runs just before each guest load or store reaches a device, before the device
        serves it (so a runner can bring virtual time up to date first).  It may read registers but not
        change them (QEMU has them in host registers across the access).  Turns :meth:`track_mmio_pcs`
        on (the PC is exact when they run).  The window's own callback runs them, first thing, in the
        same Python entry as the device.  Returns the function that removes the observer."""
        self.track_mmio_pcs()
        return self._access_observers.add(observer)

    # -- physical memory --------------------------------------------------------------

    def _attach_region(self, region: RamRegion | MmioRegion) -> None:
        if isinstance(region, RamRegion):
            self._uc.mem_map_ptr(region.base, region.size, uc_const.UC_PROT_ALL, region.host_address)
            self._keep.append(region.buffer)
            if self._native is not None and not self._native.ram:  # the first RAM region holds the tables
                self._native.ram, self._native.ram_base, self._native.ram_size = (
                    region.host_address,
                    region.base,
                    region.size,
                )
            return
        device = region.device
        observers = self._mmio_observers
        names: dict[int, str] = {}
        # offset << 4 | size -> the device's bound read or write for that access, resolved once (a miss
        # goes to mmio_read/mmio_write); a device without mmio_handlers is always asked
        handlers = getattr(device, "mmio_handlers", None)
        readers, writers = handlers() if handlers is not None else ({}, {})

        uc = self._uc

        access_observers, observe = self._access_observers, self._observe_access

        def read(_handle, offset, size, _data):
            if access_observers.callbacks:  # (before the device serves it, as track_mmio_pcs says)
                observe()
            self.mmio_accesses += 1
            self._stop_in_access = False
            try:
                self._serving_mmio = self._in_access = True
                try:
                    reader = readers.get(offset << 4 | size)
                    value = (reader() if reader is not None else device.mmio_read(offset, size)) & (
                        (1 << (8 * size)) - 1
                    )
                finally:
                    self._serving_mmio = False
                if TRACE.mmio_read is not None:
                    TRACE.mmio_read(
                        device=region.name,
                        reg=_register_name(device, offset, names),
                        offset=offset,
                        width=size,
                        value=value,
                    )
                for observer in observers.callbacks:
                    observer(region, offset, size, False, value)
                if self._stop_in_access:
                    self._stopped_access = (False, value, uc.reg_read(rv.UC_RISCV_REG_PC))
                return value
            except BaseException as exc:  # a device bug must stop the run, not unwind through C
                self._host_error = exc
                uc.emu_stop()
                return 0
            finally:
                self._in_access = False

        def write(_handle, offset, size, value, _data):
            if access_observers.callbacks:
                observe()
            self.mmio_accesses += 1
            self._stop_in_access = False
            self._in_access = True
            try:
                if TRACE.mmio_write is not None:
                    TRACE.mmio_write(
                        device=region.name,
                        reg=_register_name(device, offset, names),
                        offset=offset,
                        width=size,
                        value=value & ((1 << (8 * size)) - 1),
                    )
                self._serving_mmio = True
                try:
                    writer = writers.get(offset << 4 | size)
                    if writer is not None:
                        writer(value)
                    else:
                        device.mmio_write(offset, size, value)
                finally:
                    self._serving_mmio = False
                for observer in observers.callbacks:
                    observer(region, offset, size, True, value)
                if self._stop_in_access:
                    self._stopped_access = (True, value, uc.reg_read(rv.UC_RISCV_REG_PC))
            except BaseException as exc:
                self._host_error = exc
                uc.emu_stop()
            finally:
                self._in_access = False

        if _uclib is not None:  # straight to read and write, as _interrupt
            callbacks = (_MMIO_READ_CFUNC(read), _MMIO_WRITE_CFUNC(write))
            self._keep.append(callbacks)
            err = _uclib.uc_mmio_map(self._handle, region.base, region.size, callbacks[0], None, callbacks[1], None)
            if err:
                raise UcError(err)
        else:  # pragma: no cover - older binding layout
            self._keep.append((read, write))
            self._uc.mmio_map(region.base, region.size, read, None, write, None)
        if self._mmio_pc_hooks is not None:
            self._mmio_pc_hooks.append(self._hook_mmio_pc(region))

    # -- the PC of device accesses ------------------------------------------------------------

    def track_mmio_pcs(self) -> None:
        """Make :attr:`mmio_pc` exact from now on (idempotent).

        QEMU updates the guest PC only at the end of a translation block, so while a device serves
        an access the PC register names the block, not the load or store.  Unicorn restores the PC
        before it calls a memory hook that matches the access (unicorn 2.1.4's cputlb.c:
        ``cpu_restore_state``); a hook elsewhere, or of another kind, leaves the PC on the block.  A
        ``UC_HOOK_MEM_READ``/``WRITE`` hook would do, but while one exists Unicorn's code generator
        sends every guest load and store through its slow path (``tcg_uc_has_hookmem``).  So each
        window is mapped without rights (``mem_protect``) and covered by a ``UC_HOOK_MEM_READ_PROT |
        UC_HOOK_MEM_WRITE_PROT`` hook that lets every access through: RAM keeps the fast path, and
        device accesses, which always take the slow path, get the PC.  The hook is the compiled
        helper's ``hwsim_mmio_access`` (native.py), which keeps the PC for :attr:`mmio_pc` and never
        enters Python (the device-access observers run in the window's callback); without the helper,
        a Python hook (about 1 us per device access more).  The PC restore is paid per device access, so it is turned on only by those who name
        the code of device accesses (the driver runner)."""
        for hart in self.harts:
            hart._track_mmio_pcs_here()

    def _track_mmio_pcs_here(self) -> None:
        if self._mmio_pc_hooks is None:
            self._mmio_pc_hooks = [self._hook_mmio_pc(region) for region in self.phys.mmio_regions]

    def _hook_mmio_pc(self, region: MmioRegion) -> int:
        """The hook over ``region`` that makes the PC exact at its accesses (see track_mmio_pcs): the
        window loses its rights, and the hook gives every access back (returns True)."""
        self._uc.mem_protect(region.base, region.size, uc_const.UC_PROT_NONE)
        kinds = uc_const.UC_HOOK_MEM_READ_PROT | uc_const.UC_HOOK_MEM_WRITE_PROT
        if self._native is not None:
            if self._access_hook is None:
                self._access_hook = AccessHook(
                    reg_read=ctypes.cast(_uc_reg_read, ctypes.c_void_p).value, reg_pc=rv.UC_RISCV_REG_PC
                )
                self._keep.append(self._access_hook)  # (C holds a raw pointer to it)
            lib = library()
            assert lib is not None  # (self._native is set only when the helper loaded)
            callback = ctypes.cast(lib.hwsim_mmio_access, ctypes.c_void_p)
            return self._hook_raw(kinds, callback, ctypes.addressof(self._access_hook), region.base, region.end - 1)

        def allowed(uc, access, address, size, value, _data) -> bool:  # its being called syncs the PC
            return True  # (the access goes on to the device)

        self._keep.append(allowed)
        return self._uc.hook_add(kinds, allowed, begin=region.base, end=region.end - 1)

    def _observe_access(self) -> None:
        """A guest load or store is about to reach a device: run the device-access observers."""
        try:
            for observer in self._access_observers.callbacks:
                observer()
        except BaseException as exc:  # never let an exception unwind through Unicorn
            self._host_error = exc
            self._uc.emu_stop()

    @property
    def mmio_pc(self) -> int | None:
        """The PC of the guest load or store a device is serving now; None outside a device access, or
        when :meth:`track_mmio_pcs` was not called (the PC register would name its block, not it)."""
        if not self._serving_mmio or self._mmio_pc_hooks is None:
            return None
        if self._access_hook is not None:  # the compiled hook kept it, just before this access
            return self._access_hook.pc
        return self._raw_read(_REG_PC)

    @property
    def serving_mmio_pc(self) -> int | None:
        """:attr:`mmio_pc` of whichever hart is serving a device access now (harts run in turns, so at
        most one is); what a device asks when it names the guest code behind an access."""
        for hart in self.harts:
            pc = hart.mmio_pc
            if pc is not None:
                return pc
        return None

    # -- registers --------------------------------------------------------------------

    def get_reg(self, name: str) -> int:
        try:
            reg_id = REGISTERS[name]
        except KeyError:
            raise ConfigError(f"unknown register {name!r}") from None
        if name in _CSRS:
            return self._csr_access(reg_id)
        return self._raw_read(reg_id)  # (the binding's reg_read costs about 1 us; host calls read several)

    def set_reg(self, name: str, value: int) -> None:
        try:
            reg_id = REGISTERS[name]
        except KeyError:
            raise ConfigError(f"unknown register {name!r}") from None
        value &= _XMASK
        if name in _CSRS:
            self._csr_access(reg_id, value)
        else:
            self._raw_write(reg_id, value)
        if name == "satp":
            self._active_space = None  # whatever it points at now, it is not what activate() chose
        if name in _CSRS or name == "priv":
            self._u_context = None
            self.flush_cpu_tlb()

    def register_batch(self, names) -> RegisterBatch:
        """A :class:`RegisterBatch` of the integer or float registers ``names`` (ABI or ``x``/``f`` names,
        or ``pc``), for code that reads or writes the same registers many times (a call boundary)."""
        return RegisterBatch(self._uc, self._handle, tuple(names))

    def _raw_read(self, reg_id: int) -> int:
        if _uclib is None:
            return self._uc.reg_read(reg_id)
        _uc_reg_read(self._handle, reg_id, self._raw_ref)
        return self._raw.value

    def _raw_write(self, reg_id: int, value: int) -> None:
        if _uclib is None:
            self._uc.reg_write(reg_id, value)
            return
        self._raw.value = value
        _uc_reg_write(self._handle, reg_id, self._raw_ref)

    def _csr_access(self, reg_id: int, value: int | None = None) -> int:
        """Read (or write, then read back) a CSR as M-mode, whatever the hart's privilege."""
        uc = self._uc
        if value is not None:
            self._u_context = None
        priv = uc.reg_read(rv.UC_RISCV_REG_PRIV)
        uc.reg_write(rv.UC_RISCV_REG_PRIV, Priv.M)
        try:
            if value is not None:
                uc.reg_write(reg_id, value)
            return uc.reg_read(reg_id)
        finally:
            uc.reg_write(rv.UC_RISCV_REG_PRIV, priv)

    # -- address spaces and translation state ------------------------------------------------

    def new_address_space(self, *, asid: int = 0, mode: PagingMode | None = None) -> AddressSpace:
        aspace = AddressSpace(self.phys, self.frames, mode=mode or self.mode, asid=asid)
        aspace.on_change(self._mapping_changed)
        return aspace

    def _mapping_changed(self, asid: int, va: int | None, size: int) -> None:
        # A change to a (possibly global) mapping: flush its pages in every ASID; large ranges flush all.
        # Made by the host between runs: every hart's TLBs are flushed before any runs.  Made while a hart
        # runs (its ecall, its pager): a TLB shootdown from that hart (shootdown.py).
        self._shootdowns.change(va, size)

    def activate(
        self, aspace: AddressSpace | None, *, priv: Priv = Priv.U, sum: bool = False, mxr: bool = False
    ) -> None:
        """Point satp at ``aspace`` (None: Bare) and set the privilege, SUM and MXR."""
        if aspace is not None:
            owner = self._asid_owner.get(aspace.asid)
            if owner is not None and owner is not aspace:
                self.tlb.flush(asid=aspace.asid)  # an ASID reused by another space: drop its stale entries
            self._asid_owner[aspace.asid] = aspace
            satp = aspace.satp
        else:
            satp = make_satp(None)
        self._active_space = None
        if self._csr_access(rv.UC_RISCV_REG_SATP, satp) != satp:
            raise ConfigError(f"the CPU refused satp={satp:#x}")
        self._active_space = aspace
        mstatus = self._csr_access(rv.UC_RISCV_REG_MSTATUS) & ~(MSTATUS_SUM | MSTATUS_MXR)
        mstatus |= (MSTATUS_SUM if sum else 0) | (MSTATUS_MXR if mxr else 0)
        self._csr_access(rv.UC_RISCV_REG_MSTATUS, mstatus)
        self._uc.reg_write(rv.UC_RISCV_REG_PRIV, int(priv))
        self._u_context = None
        self.flush_cpu_tlb()

    @property
    def active_space(self) -> AddressSpace | None:
        """The address space the last :meth:`activate` pointed satp at; None when that was Bare, or when
        satp was written since with ``set_reg``.  A pager or an ecall handler that serves one address
        space declines what happens while another is active."""
        return self._active_space

    @property
    def priv(self) -> Priv:
        return Priv(self._uc.reg_read(rv.UC_RISCV_REG_PRIV))

    @property
    def satp(self) -> int:
        return self._csr_access(rv.UC_RISCV_REG_SATP)

    def sfence_vma(self, va: int | None = None, asid: int | None = None) -> int:
        """``sfence.vma`` on the model TLB (None is x0), then a flush of Unicorn's TLB."""
        dropped = self.tlb.flush(va, asid)
        if TRACE.tlb_flush is not None:
            TRACE.tlb_flush(va="all" if va is None else hex(va), asid="all" if asid is None else asid, entries=dropped)
        if va is None:
            self.flush_cpu_tlb()
        else:
            self.flush_cpu_tlb_range(va)
        return dropped

    def set_trap_vm(self, on: bool) -> None:
        """Set (or clear) mstatus.TVM: S-mode ``sfence.vma`` (and satp accesses) then trap as illegal
        instructions, and :meth:`run` stops on them with ``StopReason.EXCEPTION``; a caller that carries
        the fence out (:meth:`carry_out_fence`) and resumes after it keeps the model TLB in step with the
        guest's fences, and may refuse what else trapped (the page-fault lab refuses satp accesses).
        :meth:`trap_guest_fences` is the same trap with the machine carrying both out itself.  Without
        either, a guest ``sfence.vma`` flushes only Unicorn's TLB."""
        self._set_tvm("stop" if on else "")
        self.flush_cpu_tlb()

    def trap_guest_fences(self) -> None:
        """Make the guest's S-mode ``sfence.vma`` reach this hart's model TLB (idempotent).

        Unicorn carries out ``sfence.vma`` on its own TLB only, so the model TLB behind it would keep
        the entries the fence drops, and the next fill would hand them back.  This sets mstatus.TVM:
        S-mode ``sfence.vma`` and ``satp`` accesses then raise an illegal-instruction exception, which
        the machine carries out as the instruction (:meth:`sfence_vma` on the hart; ``satp`` read or
        written as M-mode) and the guest goes on after it, as a hypervisor traps and emulates them.
        ``guest_fences`` counts the fences.  M-mode ``sfence.vma`` cannot be trapped (TVM is for
        S-mode): it still flushes Unicorn's TLB alone.  M-mode code that clears mstatus.TVM ends it."""
        self._set_tvm("carry out")

    def _set_tvm(self, mode: str) -> None:
        mstatus = self._csr_access(rv.UC_RISCV_REG_MSTATUS)
        self._csr_access(rv.UC_RISCV_REG_MSTATUS, mstatus | MSTATUS_TVM if mode else mstatus & ~MSTATUS_TVM)
        self._tvm = mode

    def carry_out_fence(self, pc: int) -> bool:
        """Carry out the S-mode ``sfence.vma`` at ``pc`` that :meth:`set_trap_vm` stopped on, on this hart's
        TLBs, as the instruction does (``guest_fences`` counts it); False when ``pc`` holds something else."""
        return self._emulate_tvm(pc, satp=False)

    def interrupt_enabled(self, irq: int) -> bool:
        """Whether machine-level interrupt ``irq`` would be taken now: its mie bit set, and the hart below
        M-mode or mstatus.MIE set (the privileged spec's rule for interrupts not delegated)."""
        if not self._csr_access(rv.UC_RISCV_REG_MIE) >> irq & 1:
            return False
        return self.priv is not _PRIV_M or bool(self._csr_access(rv.UC_RISCV_REG_MSTATUS) & MSTATUS_MIE)

    def take_interrupt(self, irq: int) -> int:
        """Enter the M-mode trap handler for interrupt ``irq`` between two instructions, as the hart
        does: mepc = pc, mcause = interrupt | irq, mtval = 0, MPIE = MIE, MIE = 0, MPP = the privilege,
        M-mode, pc = mtvec's base (+ 4 * irq when vectored).  For the interrupts Unicorn cannot raise
        itself (mip.MSIP is not writable through its CSR interface); returns the handler's address."""
        pc = self._uc.reg_read(rv.UC_RISCV_REG_PC)
        priv = int(self.priv)
        status = self._csr_access(rv.UC_RISCV_REG_MSTATUS)
        status = status & ~(MSTATUS_MPIE | MSTATUS_MIE | MSTATUS_MPP_MASK)
        if self._csr_access(rv.UC_RISCV_REG_MSTATUS) & MSTATUS_MIE:
            status |= MSTATUS_MPIE
        status |= priv << MSTATUS_MPP_SHIFT
        self._csr_access(rv.UC_RISCV_REG_MEPC, pc)
        self._csr_access(rv.UC_RISCV_REG_MCAUSE, MCAUSE_INTERRUPT | irq)
        self._csr_access(rv.UC_RISCV_REG_MTVAL, 0)
        self._csr_access(rv.UC_RISCV_REG_MSTATUS, status)
        self._uc.reg_write(rv.UC_RISCV_REG_PRIV, int(Priv.M))
        self._u_context = None
        tvec = self._csr_access(rv.UC_RISCV_REG_MTVEC)
        handler = (tvec & ~3) + (4 * irq if tvec & 3 == 1 else 0)
        self._uc.reg_write(rv.UC_RISCV_REG_PC, handler)
        return handler

    def _emulate_tvm(self, pc: int, *, satp: bool = True) -> bool:
        """Carry out the S-mode ``sfence.vma`` or (``satp``) ``csr* satp`` at ``pc`` that TVM trapped; False
        if the instruction is something else (a real illegal instruction)."""
        if self._raw_read(rv.UC_RISCV_REG_PRIV) != 1:
            return False
        code = self._fetch_insn_bytes(pc)
        if code is None or len(code) < 4:
            return False
        word = int.from_bytes(code[:4], "little")
        if word & 0x7F != 0x73:
            return False
        funct3, rd, rs1 = (word >> 12) & 7, (word >> 7) & 0x1F, (word >> 15) & 0x1F
        uc = self._uc
        if funct3 == 0 and word >> 25 == 0x09 and rd == 0:  # sfence.vma rs1, rs2
            rs2 = (word >> 20) & 0x1F
            va = uc.reg_read(rv.UC_RISCV_REG_X0 + rs1) if rs1 else None
            asid = uc.reg_read(rv.UC_RISCV_REG_X0 + rs2) & 0xFFFF if rs2 else None
            self.guest_fences += 1
            self.sfence_vma(va, asid)
            return True
        if not satp or funct3 in (0, 4) or word >> 20 != CSR_SATP:
            return False
        operand = rs1 if funct3 & 4 else uc.reg_read(rv.UC_RISCV_REG_X0 + rs1)  # csrr*i: rs1 is the immediate
        old = self._csr_access(rv.UC_RISCV_REG_SATP)
        op = funct3 & 3
        new = operand if op == 1 else old | operand if op == 2 else old & ~operand
        if op == 1 or rs1:  # csrrs/csrrc with x0 (or 0) do not write
            self._active_space = None
            self._csr_access(rv.UC_RISCV_REG_SATP, new & _XMASK)
            self.flush_cpu_tlb()
        if rd:
            uc.reg_write(rv.UC_RISCV_REG_X0 + rd, old)
        return True

    def code_changed(self) -> None:
        """Drop Unicorn's translated code: call after the host writes instructions into guest RAM
        that already ran (host writes bypass the CPU's self-modifying-code detection)."""
        self._uc.ctl_flush_tb()  # type: ignore[attr-defined]  # unicorn's Python 2 Uc, as mypy sees it
        self._memop_cache.clear()

    def flush_cpu_tlb(self) -> None:
        """Empty Unicorn's internal TLB (the model TLB is untouched)."""
        self._uc.ctl(uc_const.UC_CTL_TLB_FLUSH, uc_const.UC_CTL_IO_WRITE)
        self._handed.clear()
        if self._native is not None:
            self._native.forget_handed()
        self.cpu_tlb_flushes += 1
        if TRACE.tlb_flush is not None:
            TRACE.tlb_flush(va="all", asid="all", entries="cpu")

    def flush_cpu_tlb_range(self, va: int, size: int = PAGE_SIZE) -> None:
        """Drop the pages of ``[va, va + size)`` from Unicorn's internal TLB (and every page it holds from a
        superpage reaching into them); the model TLB is untouched.  One page at a time where
        :attr:`page_flush_reason` is None and the range is at most :data:`CPU_PAGE_FLUSH_MAX` pages, else
        the whole TLB (:meth:`flush_cpu_tlb`)."""
        first = va & ~PAGE_MASK
        pages = (va + max(size, 1) - first + PAGE_MASK) >> PAGE_SHIFT
        if self._native is not None:
            dropped = self._flush_va(self._native_ref, first, pages, CPU_PAGE_FLUSH_MAX)
        else:
            dropped = self._handed.flush_range(first, pages, CPU_PAGE_FLUSH_MAX, self._page_flush)
        if dropped < 0:
            self.flush_cpu_tlb()
            return
        self.cpu_tlb_page_flushes += dropped
        if TRACE.tlb_flush is not None:
            TRACE.tlb_flush(va=hex(first), asid="all", entries=f"cpu: {dropped} pages")

    def _flush_cpu_tlb_frame(self, pa: int) -> None:
        """Drop from Unicorn's TLB every page that may hold physical page ``pa`` (none when it was not handed
        over since the last flush; the whole TLB when the record cannot say which)."""
        if self._native is not None:
            dropped = self._flush_pa(self._native_ref, pa, CPU_PAGE_FLUSH_MAX)
        else:
            dropped = self._handed.flush_frame(pa, CPU_PAGE_FLUSH_MAX, self._page_flush)
        if dropped < 0:
            self.flush_cpu_tlb()
            return
        self.cpu_tlb_page_flushes += dropped
        if dropped and TRACE.tlb_flush is not None:
            TRACE.tlb_flush(va=f"pa {pa:#x}", asid="all", entries=f"cpu: {dropped} pages")

    def _context(self, access: Access = Access.LOAD) -> tuple[Priv, int, bool, bool]:
        """(effective priv, satp, SUM, MXR) for an access of kind ``access`` now.

        M-mode loads and stores with mstatus.MPRV=1 are translated as mstatus.MPP.
        Unicorn applies the CSR privilege rules to host reads too (a U-mode hart
        cannot read satp), so in U-mode the CSRs are read as M-mode for a moment,
        and cached: U-mode code cannot change them, and cannot leave U-mode without
        a trap, which ends the run (the cache is dropped at every run and every
        host write of a CSR or the privilege).
        """
        priv = self._raw_read(rv.UC_RISCV_REG_PRIV)
        if priv == 0:
            cached = self._u_context
            if cached is None:
                self._raw_write(rv.UC_RISCV_REG_PRIV, 3)
                cached = (self._raw_read(rv.UC_RISCV_REG_SATP), self._raw_read(rv.UC_RISCV_REG_MSTATUS))
                self._raw_write(rv.UC_RISCV_REG_PRIV, 0)
                self._u_context = cached
            satp, status = cached
        elif priv == 1:
            # Under mstatus.TVM Unicorn refuses S-mode reads of satp, host reads included: read it as M-mode.
            satp = self._csr_access(rv.UC_RISCV_REG_SATP) if self._tvm else self._raw_read(rv.UC_RISCV_REG_SATP)
            status = self._raw_read(rv.UC_RISCV_REG_SSTATUS)
        else:
            status = self._raw_read(rv.UC_RISCV_REG_MSTATUS)
            if access is Access.FETCH or not status & MSTATUS_MPRV:
                return Priv.M, 0, False, False
            priv = (status & MSTATUS_MPP_MASK) >> MSTATUS_MPP_SHIFT
            if priv == 3:
                return Priv.M, 0, False, False
            satp = self._raw_read(rv.UC_RISCV_REG_SATP)
        return _PRIVS[priv], satp, bool(status & MSTATUS_SUM), bool(status & MSTATUS_MXR)

    # -- the TLB-fill hook ---------------------------------------------------------------------

    def _tlb_fill(self, uc, va: int, uc_access: int, entry, _data) -> bool:
        try:
            return self._fill(va, _UC_ACCESS.get(uc_access, Access.LOAD), entry)
        except BaseException as exc:  # never let an exception unwind through Unicorn
            self._host_error = exc
            return False

    def _fill(self, va: int, access: Access, entry) -> bool:
        if self._quiet_fills:  # Unicorn looks up code while it changes its memory map (_memory_map_change)
            entry.paddr, entry.perms = va & ~PAGE_MASK, _UC_R | _UC_X
            return True
        if self._stop_reason is not None:
            # Stopping: Unicorn probes the page before the exit address; that is no guest access.
            return False
        self._fills += 1
        priv, satp, sum_, mxr = self._context(access)
        mode = PAGING_MODES.get(satp >> SATP_MODE_SHIFT)
        if priv is _PRIV_M or mode is None:  # no translation: the VA is the PA
            entry.paddr = va
            entry.perms = uc_const.UC_PROT_ALL
            if self._watched:
                return self._watch_fill(va, access, va & ~PAGE_MASK, entry, PAGE_SIZE)
            self._hand(va, va & ~PAGE_MASK, PAGE_SIZE)
            return True
        tr = lookup_or_walk(
            self.tlb,
            self.phys,
            (satp & SATP_ASID_MASK) >> SATP_ASID_SHIFT,
            (satp & SATP_PPN_MASK) << PAGE_SHIFT,
            va,
            access,
            priv,
            sum_,
            mxr,
            mode=mode,
            ad=self.ad_policy,
            resolvers=self._resolvers,
            on_miss=self._count_walk,
            on_walk=self._trace_walk if TRACE.page_walk is not None else None,
            ram=self._ram_words,
        )
        if isinstance(tr, Refusal):
            self._pending_fault = _PendingFault(va, access, priv, sum_, mxr, satp, tr)
            return False
        entry.paddr = pa_page = tr.pa_of(va) & ~PAGE_MASK
        entry.perms = _unicorn_perms(tr.pte, priv, sum_, mxr)
        if self._watched:
            return self._watch_fill(va, access, pa_page, entry, tr.page_size)
        self._hand(va, pa_page, tr.page_size)
        return True

    def _hand(self, va: int, pa_page: int, size: int) -> None:
        """Note that Unicorn's TLB now holds page ``va`` as ``pa_page`` (from a leaf of ``size`` bytes)."""
        if self._native is not None:
            self._handed_add(self._native_ref, va, pa_page, size)
        else:
            self._handed.add(va, pa_page, size)

    def _count_walk(self, va: int, asid: int) -> None:
        self._walks += 1
        if TRACE.tlb_miss is not None:
            TRACE.tlb_miss(va=va, asid=asid)

    def _trace_walk(self, result: WalkResult) -> None:
        emit = TRACE.page_walk
        if emit is None:
            return
        tr, fault = result.translation, result.fault
        emit(
            va=result.va,
            access=result.access.value,
            result=fault.reason.name if fault is not None else "ok",
            pa=tr.pa_of(result.va) if tr is not None else 0,
            levels=len(result.steps),
        )

    def _page_in(self, va: int, access: Access) -> bool | Translation:
        """The resolver of invalid PTEs: the first pager that maps the page (demand paging)."""
        for pager in self._pagers.callbacks:
            mapped = pager(va, access)
            if mapped:
                self.demand_faults += 1
                return mapped
        return False

    def _fix_write(self, va: int, access: Access) -> bool:
        """The resolver of stores to pages without W: the first handler that makes the page writable."""
        for handler in self._write_fault_handlers.callbacks:
            if handler(va):
                self.write_faults += 1
                return True
        return False

    def _watch_fill(self, va: int, access: Access, pa_page: int, entry, size: int) -> bool:
        watched = self._watched.get(pa_page)
        if watched is not None:
            if access in watched.accesses:
                # Stop precisely on this instruction; Machine.run carries the access out on the host.
                self._pending_watch = _PendingWatch(va & ~PAGE_MASK, access, pa_page)
                return False
            if Access.STORE in watched.accesses:
                entry.perms &= ~_UC_W  # a later store must come back here
            if Access.LOAD in watched.accesses:
                entry.perms &= ~_UC_R  # and a later load (a store's fill would have handed R too)
        self._hand(va, pa_page, size)
        return True

    # -- exceptions and ecalls -------------------------------------------------------------------

    def _interrupt(self, _handle, intno: int, _data) -> None:
        """An exception the hart raised (Unicorn's UC_HOOK_INTR callback, called straight from C): an
        ecall runs the ecall handlers in order (inline here: every host call passes this way), anything
        else stops the run (:meth:`_exception`).  Nothing may unwind through Unicorn: an exception is
        kept for :meth:`run` to raise."""
        uc = self._uc
        cause: Cause | None = None  # an ecall's: read from the hart's privilege only when needed (below)
        try:
            if intno != _ECALL_INTNO:  # Unicorn reports every ecall as 8; the cause depends on the mode
                try:
                    cause = Cause(intno)
                except ValueError:
                    cause = None
                if cause not in _ECALLS:
                    self._exception(uc, cause)
                    return
            for handler in self._ecall_handlers.callbacks:
                action = handler(self)
                if action is _RESUME:
                    return
                if action is _STOP:
                    break
                if action is not _DECLINE:
                    raise ConfigError(f"ecall handler {handler!r} returned {action!r}, not an EcallAction")
            # Only now (a handler that resumes never needs it): no handler that declines or stops changes
            # the privilege (a nested run restores the context it interrupted), so it is the ecall's.
            if cause is None:
                cause = _ECALL_CAUSES.get(self._raw_read(rv.UC_RISCV_REG_PRIV), _CAUSE_ECALL_U)
        except BaseException as exc:
            self._host_error = exc
            uc.emu_stop()
            return
        try:
            self._pending_exc = _PendingException(cause, uc.reg_read(rv.UC_RISCV_REG_PC))
            self._stop_reason = StopReason.ECALL
        except BaseException as exc:
            self._host_error = exc
        uc.emu_stop()

    def _exception(self, uc, cause: Cause | None) -> None:
        """Any other exception: stop and say so.  Unicorn reports pc + 4 whatever the instruction's
        length (measured with 2- and 4-byte illegal instructions); put the pc back on it."""
        pc = (uc.reg_read(rv.UC_RISCV_REG_PC) - 4) & _XMASK
        if self._tvm == "carry out" and cause is Cause.ILLEGAL_INSN:
            try:
                if self._emulate_tvm(pc):
                    return  # carried out: the guest goes on at pc + 4, where Unicorn stands
            except BaseException as exc:  # never let an exception unwind through Unicorn
                self._host_error = exc
                uc.emu_stop()
                return
        uc.reg_write(rv.UC_RISCV_REG_PC, pc)
        self._pending_exc = _PendingException(cause if cause is not None else Cause.ILLEGAL_INSN, pc)
        self._stop_reason = StopReason.EXCEPTION
        uc.emu_stop()

    def stop(self) -> None:
        """Stop the current run (from a hook or device callback).  Asked for inside a device access, the
        access is finished first (see :meth:`request_stop`)."""
        self._stop_reason = StopReason.STOPPED
        self._stop_pending = StopReason.STOPPED
        self._mark_stop_in_access()
        self._uc.emu_stop()

    def _mark_stop_in_access(self) -> None:
        if self._in_access and self._mmio_pc_hooks is not None:  # (the PC names the access only then)
            self._stop_in_access = True

    def _stop_for_debugger(self) -> None:
        """From a debug hook inside emu_start: end this stretch with StopReason.DEBUG (run() serves it)."""
        self._stop_reason = StopReason.DEBUG
        self._uc.emu_stop()

    def save_context(self):
        """The hart's registers (integer, float, CSRs, pc), for :meth:`restore_context`: a host call that
        runs guest code of its own (an interrupt handler) puts the interrupted code's state back."""
        return self._uc.context_save()

    def restore_context(self, context) -> None:
        self._uc.context_restore(context)

    def context_reg(self, context, name: str) -> int:
        """Integer register ``name`` (``pc``, ``x5``, ``s0``, ...) as :meth:`save_context` saved it."""
        try:
            reg_id = REGISTERS[name]
        except KeyError:
            raise ConfigError(f"unknown register {name!r}") from None
        if name in _CSRS:
            raise ConfigError(f"a CSR ({name}) is not read from a saved context")
        return context.reg_read(reg_id)

    def request_stop(self) -> None:
        """Stop the current run from another thread or a signal handler (the run ends as if its time
        budget ran out; the caller keeps its own record of why).  No effect when nothing runs.

        Asked for while a device serves a guest load or store, Unicorn would end the run with the PC
        still on that instruction, and going on would repeat the access (a register with side effects
        read or written twice); with :meth:`track_mmio_pcs` on, the machine finishes the instruction
        (a load's register) and the run ends after it.  Without it the PC does not name the access,
        and the access is repeated."""
        if self._stop_pending is None:
            self._stop_pending = StopReason.LIMIT
        self._mark_stop_in_access()
        self._uc.emu_stop()

    def _fetch_insn_bytes(self, pc: int) -> bytes | None:
        """The 4 (or, at a page end, 2) bytes at ``pc``, through the model TLB when it has the page."""
        _priv, satp, _sum, _mxr = self._context(Access.FETCH)
        mode_bits, asid, _root = satp_fields(satp)
        tr = self.tlb.lookup(asid, pc) if mode_bits in PAGING_MODES else None
        if tr is not None and (pc & PAGE_MASK) <= PAGE_SIZE - 4:
            return self.phys.read(tr.pa_of(pc), 4)
        for size in (4, 2):
            try:
                return self.read_virt(pc, size, access=Access.FETCH)
            except HwsimError:
                continue
        return None

    # -- running --------------------------------------------------------------------------

    # -- watched pages -------------------------------------------------------------------------

    def watch_page(self, pa: int, handler, accesses=(Access.LOAD, Access.STORE)) -> None:
        """Stop on every guest load/store (as ``accesses`` says) that reaches physical page ``pa``.

        Each such access is stopped precisely (the hart's TLB never caches the page for it),
        shown to ``handler(WatchHit)``, then carried out by the host, and the run goes on, so
        the guest cannot tell.  A watched access costs a stop and a restart of the CPU (tens
        of microseconds): for catching rare events, such as a driver touching a buffer the
        device owns.  Fetches are never watched.  Several handlers may watch one page, each
        for its own kinds of access (an access is shown to every handler watching its kind, in
        the order they began watching); watching again with the same handler replaces that
        handler's kinds.

        For stores alone, seen without a stop, see :meth:`watch_stores`.
        """
        if not (type(accesses) is frozenset and accesses <= _DATA_ACCESSES):  # (a checker's own, as is)
            accesses = frozenset(Access(a) for a in accesses) - {Access.FETCH}
        page = pa & ~PAGE_MASK
        if not accesses:
            self.unwatch_page(page, handler)
            return
        old = self._watched.get(page)
        watchers = tuple(w for w in (old.watchers if old is not None else ()) if w[0] != handler)
        self._set_watch(page, (*watchers, (handler, accesses)), old)

    def unwatch_page(self, pa: int, handler=None) -> None:
        """Stop ``handler`` watching physical page ``pa`` (None: every handler); a no-op if it does not."""
        page = pa & ~PAGE_MASK
        old = self._watched.get(page)
        if old is None:
            return
        self._set_watch(page, tuple(w for w in old.watchers if handler is not None and w[0] != handler), old)

    def _set_watch(self, page: int, watchers: tuple, old: _Watch | None) -> None:
        if watchers:
            accesses = frozenset().union(*(kinds for _, kinds in watchers))
            watch = _Watch(accesses, watchers)
            self._watched[page] = watch
        else:
            watch = None
            self._watched.pop(page, None)
        before = old.accesses if old is not None else frozenset()
        after = watch.accesses if watch is not None else frozenset()
        if self._native is not None and (watch is None) != (old is None):
            # the compiled hook hands every fill of a watched page to _watch_fill (the list it searches)
            pages = sorted(self._watched)
            array = self._watched_pages
            if array is None or len(array) < len(pages):  # (grown by doubling, then reused)
                array = self._watched_pages = (ctypes.c_uint64 * max(16, 2 * len(pages)))()
                self._native.watched = ctypes.addressof(array)
            array[: len(pages)] = pages
            self._native.n_watched = len(pages)
        if after - before:
            self._flush_cpu_tlb_frame(page)  # the hart may hold the page with rights a new watch must take away
        # A watch that ends or narrows needs no flush: the hart holds the page, if at all, with fewer
        # rights than it may have now (see _watch_fill), and the access those lack comes back to a fill.

    def watch_stores(self, pa: int, length: int, handler: Callable[[int, int, int], None]) -> int:
        """Show every guest store, by any hart, that begins in physical bytes ``[pa, pa + length)`` to
        ``handler(pa, size, value)`` from inside the store, before it lands (no stop): the cheapest watch
        there is, for checkers that look at many stores and act on few.  ``value`` is what the store
        writes, ``size`` its width in bytes; :meth:`store_pc` names the store's instruction while the
        handler runs.  The handler must not run the guest or change its registers.  A store the host
        carries out for a stopping watch (:meth:`watch_page`) on the same page is shown too, and so is a
        guest bulk store the host carries out (:meth:`show_bulk_store`).  Returns a handle for
        :meth:`unwatch_stores`.

        Inside the machine's RAM the range's pages are mapped read-only in every hart's Unicorn engine and
        a write-protection hook carries each store to them out (``storewatch.py``): loads and the stores
        to every other page keep Unicorn's fast path, and the pages keep their place in the harts' TLBs.
        Elsewhere, or when :attr:`store_watch_reason` says why not, the watch is a Unicorn MEM_WRITE hook,
        which sends every store of code translated while it exists through Unicorn's slow path.  Unicorn
        names a store by its first byte: a store that begins before ``pa`` and reaches into the range is
        not shown, except that one crossing into a protected page from the page before it is shown as its
        bytes there, one by one.  A guest store to a protected page does not invalidate code Unicorn has
        translated from it: watch data, not code.
        """
        _check_watch_range("watch_stores", pa, length)
        return self._store_watch.add(pa, length, handler)

    def watch_loads(self, pa: int, length: int, handler: Callable[[int, int], None]) -> int:
        """Show every guest load that begins in physical bytes ``[pa, pa + length)`` to
        ``handler(pa, size)`` from inside the load, once it is translated and before it reads (the bytes
        it will read are in memory: ``phys.read``): the twin of :meth:`watch_stores`, with its rules (the
        handler must not run the guest or change its registers).  A load that faults is shown when it is
        retried.  Returns a handle for :meth:`unwatch_stores`."""
        _check_watch_range("watch_loads", pa, length)

        def loading(uc, _access, address, size, _value, _data) -> None:
            try:
                handler(address, size)
            except BaseException as exc:  # never let an exception unwind through Unicorn
                self._host_error = exc
                uc.emu_stop()

        hook = self._uc.hook_add(uc_const.UC_HOOK_MEM_READ, loading, begin=pa, end=pa + length - 1)
        self._load_watches[hook] = loading
        return hook

    def unwatch_stores(self, handle: int) -> None:
        """End the watch :meth:`watch_stores` or :meth:`watch_loads` returned ``handle`` for (a no-op if it
        has ended)."""
        if self._store_watch.remove(handle):
            return
        if self._load_watches.pop(handle, None) is not None:
            self._uc.hook_del(handle)

    def store_pc(self) -> int:
        """The PC of the store a :meth:`watch_stores` handler is being shown, on the hart that made it
        (Unicorn restores the PC before a memory hook, as for device accesses; see track_mmio_pcs)."""
        watches = self._store_watch
        if watches.showing_pc is not None:
            return watches.showing_pc
        hart = watches.showing or self
        return hart._raw_read(rv.UC_RISCV_REG_PC)  # (the raw uc_reg_read: once per ring publish)

    @property
    def stores_watched(self) -> bool:
        """Is any :meth:`watch_stores` watch in place (on any hart)?"""
        return bool(self._store_watch.watches)

    def show_bulk_store(self, pa: int, length: int, read: Callable[[int, int], bytes], pc: int) -> None:
        """A guest bulk store the host carries out for this hart (memory.copy/fill/init) of ``length`` bytes
        at physical ``pa``, within one page, about to land: its bytes in watched ranges are shown to the
        :meth:`watch_stores` watches as aligned stores of at most 8 bytes, in address order (a guest loop
        of stores would show them so); ``read(offset, size)`` gives the bytes that will land at
        ``pa + offset``, and :meth:`store_pc` names ``pc``, the operation's call."""
        self._store_watch.show_bulk_store(self, pa, length, read, pc)

    @property
    def store_watch_reason(self) -> str | None:
        """Why the last store watch that could not protect its pages is a MEM_WRITE hook (None: every one
        so far protects its pages; see watch_stores)."""
        return self._store_watch.fallback_reason

    @property
    def protected_stores(self) -> int:
        """Guest stores, by every hart, that pages protected for store watches sent to their hook."""
        return self._store_watch.protected_stores

    def _show_host_store(self, pa: int, data: bytes) -> None:
        """A store the host carries out for the guest: show it to the store watches it begins in."""
        self._store_watch.show_host_store(self, pa, data)

    def _fail_in_hook(self, exc: BaseException) -> None:
        """A callback Unicorn called raised: stop the run, which raises it (nothing may unwind through C)."""
        self._host_error = exc
        self._uc.emu_stop()

    @contextmanager
    def _memory_map_change(self) -> Iterator[None]:
        """Unicorn changes this hart's memory map inside (storewatch.py): the TLB fills it asks for meanwhile
        (for code it invalidates) are no guest access and get an identity entry, which its flushes drop; its
        TLB is then empty (``tcg_commit``), as the record of handed pages must know."""
        self._quiet_fills = True
        if self._native is not None:
            self._native.defer = 1  # (every fill to _fill)
        try:
            yield
        finally:
            self._quiet_fills = False
            if self._native is not None:
                self._native.defer = int(self._stop_reason is not None)
            self.flush_cpu_tlb()

    @property
    def watched_pages(self) -> frozenset[int]:
        return frozenset(self._watched)

    def _carry_out_watched(self) -> bool:
        """Do the access the fill hook stopped on; False when it cannot be done (it stays a fault)."""
        pending, self._pending_watch = self._pending_watch, None
        assert pending is not None  # _result calls this only with a watch pending
        access = pending.access
        pc = self._uc.reg_read(rv.UC_RISCV_REG_PC)
        priv = self.priv
        op = self._memop_cache.get(pc)
        if op is None:
            code = self._fetch_insn_bytes(pc)
            op = decode_memop(code) if code else None
            if op is not None:
                self._memop_cache[pc] = op
        if op is None or op.store != (access is Access.STORE):
            return False
        va = (self.get_reg(f"x{op.base}") + op.disp) & _XMASK
        mask = (1 << (8 * op.size)) - 1
        reg = f"{'f' if op.float_reg else 'x'}{op.reg}"
        value = (self.get_reg(reg) & mask) if op.store else None
        # The bytes' physical addresses: the access may straddle into another page.
        parts = []
        offset = 0
        while offset < op.size:
            here = va + offset
            chunk = min(op.size - offset, PAGE_SIZE - (here & PAGE_MASK))
            if here & ~PAGE_MASK == pending.page:  # the page the hook filled
                parts.append((pending.pa_page | (here & PAGE_MASK), chunk))
            else:
                result = self.translate(here, access, priv=priv)
                if result is None:  # not translated
                    parts.append((here, chunk))
                elif result.translation is None:
                    return False
                else:
                    parts.append((result.translation.pa, chunk))
            offset += chunk
        first_pa = parts[0][0]
        hit = WatchHit(pc, va, first_pa, op.size, access, priv, value)
        self.watch_hits += 1
        for pa, _chunk in parts:
            watched = self._watched.get(pa & ~PAGE_MASK)
            if watched is not None and access in watched.accesses:
                for handler, kinds in watched.watchers:
                    if access in kinds:
                        handler(hit)
                break
        if op.store:
            assert value is not None  # read from the source register above
            data = value.to_bytes(op.size, "little")
            if self._store_watch.watches:
                self._show_host_store(parts[0][0], data)
            at = 0
            for pa, chunk in parts:
                self.phys.write(pa, data[at : at + chunk])
                at += chunk
        else:
            data = b"".join(self.phys.read(pa, chunk) for pa, chunk in parts)
            loaded = int.from_bytes(data, "little")
            if op.float_reg and op.size == 4:
                loaded |= 0xFFFF_FFFF_0000_0000  # NaN-boxed single
            elif op.signed and loaded >> (8 * op.size - 1):
                loaded |= ~mask & _XMASK
            if op.float_reg or op.reg:
                self.set_reg(reg, loaded)
        self._uc.reg_write(rv.UC_RISCV_REG_PC, pc + op.length)
        return True

    # -- running --------------------------------------------------------------------------

    def run(self, pc: int, *, until: int | None = None, max_insns: int = 0, timeout_us: int = 0) -> RunResult:
        """Run from ``pc`` until the PC reaches ``until``, a fault, an exception or a budget.

        ``max_insns`` and ``timeout_us`` (0: none) bound the run; note that an
        instruction budget makes Unicorn count every instruction, which is slow.
        Accesses to watched pages are carried out on the way (see :meth:`watch_page`);
        ``max_insns`` then counts per stretch between two of them.
        """
        deadline = time.monotonic() + timeout_us / 1e6 if timeout_us else None
        self._stop_pending = None
        debug = self.debug
        while True:
            if debug.requested and debug.attached:  # asked for before this stretch (or stop at start)
                resumed = self._serve_debug(DebugStop(DebugStopKind.REQUESTED, pc))
                if resumed is None:
                    return RunResult(StopReason.LIMIT, pc)
                pc = resumed
            result = self._run_once(pc, until=until, max_insns=max_insns, timeout_us=timeout_us)
            if result.reason is _DEBUG and not debug.attached:
                pc = result.pc  # a debug hook that fired as the debugger detached: go on
                continue
            if debug.attached:
                resume = self._debug_after(result)
                if isinstance(resume, RunResult):
                    return resume
                if resume is not None:
                    pc = resume
                    continue
            if result.reason is not _WATCH:
                self._stop_pending = None
                return result
            pc = result.pc
            if self._stop_pending is not None:  # asked for while the watched access was carried out
                reason, self._stop_pending = self._stop_pending, None
                return RunResult(reason, pc)
            if deadline is not None:
                timeout_us = int((deadline - time.monotonic()) * 1e6)
                if timeout_us <= 0:
                    return RunResult(StopReason.LIMIT, pc)

    def _serve_debug(self, stop: DebugStop) -> int | None:
        def write_pc(pc: int) -> None:
            self._uc.reg_write(rv.UC_RISCV_REG_PC, pc)

        return self.debug.serve(stop, lambda: self._uc.reg_read(rv.UC_RISCV_REG_PC), write_pc)

    def _debug_after(self, result: RunResult) -> int | RunResult | None:
        """Show a stop to the attached debugger: the PC to resume from, a RunResult to end the run with
        (the debugger ended it), or None: go on with ``result``."""
        reason = result.reason
        debug = self.debug
        if reason is StopReason.DEBUG:
            stop = DebugStop(debug.take_hit(), result.pc)
        elif reason is _WATCH:
            hit = debug.take_watch()
            if hit is None:
                return None
            stop = DebugStop(DebugStopKind.WATCH, result.pc, watch=hit)
        elif reason is StopReason.LIMIT and debug.requested:
            stop = DebugStop(DebugStopKind.REQUESTED, result.pc)
        elif reason in (StopReason.FAULT, StopReason.EXCEPTION, StopReason.BREAKPOINT):
            pc = self._serve_debug(DebugStop(DebugStopKind.TRAP, result.pc, result=result))
            return pc if pc is not None and pc != result.pc else None
        else:
            return None
        resumed = self._serve_debug(stop)
        return RunResult(StopReason.LIMIT, result.pc) if resumed is None else resumed

    def _run_once(self, pc: int, *, until: int | None, max_insns: int, timeout_us: int) -> RunResult:
        # A run may start inside a hook of another (a host function calling back into the guest):
        # the outer run's state is kept aside and restored when this one ends.
        outer = (self._pending_fault, self._pending_exc, self._host_error, self._stop_reason)
        shootdowns = self._shootdowns
        outer_hart, shootdowns.running = shootdowns.running, self  # mapping changes from now on are this hart's
        self._pending_fault = None
        self._pending_exc = None
        self._host_error = None
        self._stop_reason = None
        self._u_context = None
        target = _NEVER if until is None else until
        error = None
        try:
            self._uc.emu_start(pc, target, timeout=timeout_us, count=max_insns)
        except UcError as exc:
            error = exc
        except BaseException:  # raised by a hook (a builtin's trap at an ecall): the run is over all the same
            shootdowns.running = outer_hart
            raise
        try:
            result = self._result(error, until)
            if result.reason in _NOT_RETIRED and self.debug.counting:
                self.debug.not_retired(result.pc)  # the instruction stopped on did not retire
            return result
        finally:
            self._pending_fault, self._pending_exc, self._host_error, self._stop_reason = outer
            shootdowns.running = outer_hart
            self._u_context = None

    def _finish_stopped_access(self) -> None:
        """The run stopped inside a device access (see request_stop): the device has served it, so
        finish the instruction as the CPU would (a load's register) and move the PC past it, so that
        going on does not repeat a register access with side effects."""
        stopped, self._stopped_access = self._stopped_access, None
        assert stopped is not None  # _result calls this only with one recorded
        store, value, at = stopped
        pc = self._uc.reg_read(rv.UC_RISCV_REG_PC)
        code = self._fetch_insn_bytes(pc) if pc == at else None
        op = decode_memop(code) if code else None
        if op is None or op.store != store:
            return  # the CPU got past the access after all (nothing to finish)
        if not store:
            mask = (1 << (8 * op.size)) - 1
            loaded = value & mask
            if op.float_reg and op.size == 4:
                loaded |= 0xFFFF_FFFF_0000_0000  # NaN-boxed single
            elif op.signed and loaded >> (8 * op.size - 1):
                loaded |= ~mask & _XMASK
            if op.float_reg or op.reg:
                self.set_reg(f"{'f' if op.float_reg else 'x'}{op.reg}", loaded)
        self._uc.reg_write(rv.UC_RISCV_REG_PC, pc + op.length)

    def _result(self, error: UcError | None, until: int | None) -> RunResult:
        if self._host_error is not None:
            exc, self._host_error = self._host_error, None
            raise exc
        if self._pending_watch is not None:
            watch_ok = self._carry_out_watched()
            pc_now = self._uc.reg_read(rv.UC_RISCV_REG_PC)
            if watch_ok and (until is None or pc_now != until):
                self._pending_fault = None
                return RunResult(StopReason.WATCH, pc_now)
            if watch_ok:
                return RunResult(StopReason.EXIT, pc_now)
        if self._stopped_access is not None:
            self._finish_stopped_access()
        pc_now = self._raw_read(rv.UC_RISCV_REG_PC)
        if self._stop_reason is not None:  # a hook stopped the run; nothing after that counts
            if self._stop_reason is StopReason.EXCEPTION:
                pending = self._pending_exc
                assert pending is not None  # recorded with the EXCEPTION stop reason
                return RunResult(
                    StopReason.EXCEPTION, pending.pc, cause=pending.cause, insn=self._fetch_insn(pending.pc)
                )
            cause = self._pending_exc.cause if self._pending_exc else None
            return RunResult(self._stop_reason, pc_now, cause=cause)
        if until is not None and pc_now == until:
            # Reached the exit.  A fault recorded now is Unicorn probing the page of until - 1 as the
            # run ends (a real fault would have stopped the CPU before the exit).
            self._pending_fault = None
            return self._exit_result(pc_now)
        if self._pending_fault is not None:
            fault = self._explain_fault(pc_now)
            if TRACE.page_fault is not None:
                TRACE.page_fault(
                    pc=fault.pc, va=fault.va, access=fault.access.value, cause=int(fault.cause), reason=fault.message
                )
            return RunResult(StopReason.FAULT, pc_now, fault=fault)
        if error is not None:
            return self._classify_error(error, pc_now)
        if until is not None and pc_now == until:
            return RunResult(StopReason.EXIT, pc_now)
        return RunResult(StopReason.LIMIT, pc_now)

    def _exit_result(self, pc: int) -> RunResult:
        """``RunResult(EXIT, pc)``, one per exit address (it is frozen): a call's return builds nothing."""
        result = self._exit_results.get(pc)
        if result is None:
            if len(self._exit_results) >= 64:
                self._exit_results.clear()
            result = self._exit_results[pc] = RunResult(StopReason.EXIT, pc)
        return result

    def _classify_error(self, error: UcError, pc: int) -> RunResult:
        if error.errno == uc_const.UC_ERR_INSN_INVALID:
            insn = self._fetch_insn(pc)
            if insn is not None and insn.mnemonic in ("ebreak", "c.ebreak"):
                return RunResult(StopReason.BREAKPOINT, pc, cause=Cause.BREAKPOINT, insn=insn)
            return RunResult(StopReason.EXCEPTION, pc, cause=Cause.ILLEGAL_INSN, insn=insn)
        unmapped = {
            uc_const.UC_ERR_READ_UNMAPPED: Access.LOAD,
            uc_const.UC_ERR_WRITE_UNMAPPED: Access.STORE,
            uc_const.UC_ERR_FETCH_UNMAPPED: Access.FETCH,
        }
        if error.errno in unmapped:
            access = unmapped[error.errno]
            priv = self.priv
            insn = self._fetch_insn(pc)
            va = self._exact_va(pc, insn, access, None)
            fault = CpuFault(
                pc,
                va,
                access,
                priv,
                access.access_fault_cause,
                "access fault",
                "the translated physical address has no RAM or device behind it",
                self._explain_walk(va, access),
                insn,
            )
            return RunResult(StopReason.FAULT, pc, fault=fault)
        raise HwsimError(f"the CPU stopped with an unexpected Unicorn error at pc {pc:#x}: {error}")

    # -- fault reports ------------------------------------------------------------------------

    def _fetch_insn(self, pc: int) -> Insn | None:
        try:
            code = self.read_virt(pc, 4, access=Access.FETCH)
        except HwsimError:  # the last 2 bytes of a page may hold a compressed instruction
            try:
                code = self.read_virt(pc, 2, access=Access.FETCH)
            except HwsimError:
                return None
        return disassemble_one(code, pc)

    def _decoded_access(self, pc: int, insn: Insn | None, access: Access) -> tuple[int | None, int | None]:
        """(first byte, width) of the load or store ``insn`` makes now; (None, None) if it is neither."""
        if access is Access.FETCH or insn is None or insn.mem_base is None:
            return None, None
        m = insn.mnemonic.removeprefix("c.").removeprefix("f")
        return (self.get_reg(insn.mem_base) + insn.mem_disp) & _XMASK, _MEM_SIZES.get(
            m[1:2] if m[:1] in "ls" else "", 1
        )

    def _exact_va(self, pc: int, insn: Insn | None, access: Access, page: int | None) -> int:
        """The faulting VA: the load/store's effective address, or the pc for a fetch."""
        if access is Access.FETCH:
            va = pc
        elif insn is not None and insn.mem_base is not None:
            va = (self.get_reg(insn.mem_base) + insn.mem_disp) & _XMASK
        else:
            return page if page is not None else pc
        if page is None or va & ~PAGE_MASK == page:
            return va
        # The access straddles into the faulting page (its first byte there is the page start),
        # or decoding disagrees with the page the hardware reported: trust the hardware.
        return page

    def _explain_walk(
        self,
        va: int,
        access: Access,
        priv: Priv | None = None,
        sum_: bool | None = None,
        mxr: bool | None = None,
        satp: int | None = None,
    ) -> WalkResult | None:
        """A side-effect-free walk (no A/D write, no TLB) with the hart's state, or the values given."""
        if priv is None:
            priv, ctx_satp, ctx_sum, ctx_mxr = self._context(access)
        else:
            ctx_satp = self._csr_access(rv.UC_RISCV_REG_SATP)
            status = self._csr_access(rv.UC_RISCV_REG_MSTATUS)
            ctx_sum, ctx_mxr = bool(status & MSTATUS_SUM), bool(status & MSTATUS_MXR)
        satp = ctx_satp if satp is None else satp
        mode_bits, _asid, root_ppn = satp_fields(satp)
        mode = PAGING_MODES.get(mode_bits)
        if mode is None or priv is Priv.M:
            return None
        return walk(
            self.phys,
            root_ppn << PAGE_SHIFT,
            va,
            access,
            priv,
            mode=mode,
            sum=ctx_sum if sum_ is None else sum_,
            mxr=ctx_mxr if mxr is None else mxr,
            ad=AdPolicy.REPORT,
        )

    def _explain_fault(self, pc: int) -> CpuFault:
        pending, self._pending_fault = self._pending_fault, None
        assert pending is not None  # _result calls this only with a fault pending
        access, priv = pending.access, pending.priv
        insn = self._fetch_insn(pc)
        va = self._exact_va(pc, insn, access, pending.page)
        start, size = self._decoded_access(pc, insn, access)
        # Explain with a fresh, side-effect-free walk of the exact VA.
        result = self._explain_walk(va, access, priv, pending.sum, pending.mxr, pending.satp)
        refusal = pending.refusal
        if refusal.walk is None:  # a cached entry refused (its permissions at the access's privilege)
            return CpuFault(
                pc,
                va,
                access,
                priv,
                access.page_fault_cause,
                "page fault",
                refusal.reason.value,
                result,
                insn,
                tlb_entry_pte=refusal.tlb_pte,
                access_va=start,
                access_size=size,
            )
        hw = refusal.walk  # the walk the hardware did (at the page address)
        if result is None or result.ok:
            result = hw
        fault = result.fault if result.fault is not None else hw.fault
        assert fault is not None  # the hardware's walk faulted
        return CpuFault(
            pc,
            va,
            access,
            priv,
            fault.cause,
            fault.kind,
            fault.message,
            result,
            insn,
            access_va=start,
            access_size=size,
        )

    # -- host access through the MMU -----------------------------------------------------------

    def translate(self, va: int, access: Access = Access.LOAD, *, priv: Priv | None = None) -> WalkResult | None:
        """Walk ``va`` as the CPU would now (or as ``priv``), without touching A/D bits or the TLB.

        Returns None when nothing is translated (M-mode, or satp is Bare).
        """
        return self._explain_walk(va, access, priv)

    def resolve(self, va: int, access: Access = Access.LOAD) -> Translation | Refusal | None:
        """Translate ``va`` as the hart's access of kind ``access`` would now, with its side effects: the
        model TLB, A/D updates, pagers (demand paging) and write-fault handlers (copy-on-write) as for a
        guest access; Unicorn's TLB is not filled.  The page's ``Translation`` (``pa_of(va)``), None when
        nothing is translated (M-mode, satp Bare), or the ``Refusal`` (the access faults).  For a
        debugger's accesses: they take the path the guest's take.

        The lookup is the fill hook's (:meth:`_fill`), less the hand-over to Unicorn and the trace
        callbacks; it is written out twice to keep the hot path one call shorter."""
        priv, satp, sum_, mxr = self._context(access)
        mode = PAGING_MODES.get(satp >> SATP_MODE_SHIFT)
        if priv is _PRIV_M or mode is None:
            return None
        tr = lookup_or_walk(
            self.tlb,
            self.phys,
            (satp & SATP_ASID_MASK) >> SATP_ASID_SHIFT,
            (satp & SATP_PPN_MASK) << PAGE_SHIFT,
            va,
            access,
            priv,
            sum_,
            mxr,
            mode=mode,
            ad=self.ad_policy,
            resolvers=self._resolvers,
            ram=self._ram_words,
        )
        return tr

    def _virt_to_phys(self, va: int, access: Access, priv: Priv | None) -> int:
        result = self.translate(va, access, priv=priv)
        if result is None:
            return va
        if result.fault is not None:
            raise VirtualAccessError(f"{access.value} at va {va:#x}: {result.fault.message}", result)
        assert result.translation is not None  # a walk without a fault translated
        return result.translation.pa

    def read_virt(self, va: int, size: int, *, access: Access = Access.LOAD, priv: Priv | None = None) -> bytes:
        """Read guest virtual memory page by page, checking permissions as ``priv`` (default: current)."""
        out = bytearray()
        while size > 0:
            chunk = min(size, PAGE_SIZE - (va & PAGE_MASK))
            out += self.phys.read(self._virt_to_phys(va, access, priv), chunk)
            va += chunk
            size -= chunk
        return bytes(out)

    def write_virt(self, va: int, data: bytes, *, priv: Priv | None = None) -> None:
        view = memoryview(data)
        while view:
            chunk = min(len(view), PAGE_SIZE - (va & PAGE_MASK))
            self.phys.write(self._virt_to_phys(va, Access.STORE, priv), view[:chunk])
            va += chunk
            view = view[chunk:]
