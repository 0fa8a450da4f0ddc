"""The IOMMU: every device DMA goes through :meth:`Iommu.dma`, modelled on the RISC-V IOMMU 1.0.

::

    device --dma(device_id, iova, size, write)--> ddtp.iommu_mode
        Off  -> fault 256                     Bare -> pa = iova
        1/2/3LVL -> directory cache --miss--> DDT walk in RAM -> device context (DC)
                    DC.fsc.MODE Bare -> pa = iova
                    Sv39/Sv48 -> IOTLB (tag PSCID) --miss--> walk: hwsim.mmu.translate.lookup_or_walk,
                                 the CPU's own TLB-and-walk routine and walker
                    DC.iohgatp Sv39x4/Sv48x4 (option second_stage) -> hwsim.mmu.twostage, not cached
        -> every page translated and checked before any byte moves
        -> pa must be RAM (no peer-to-peer DMA into MMIO) -> copy

Rules, and where hwsim decides:

* Device requests carry no ``process_id`` (no PASID), so by the spec they
  never request supervisor privilege: every first-stage check is made as a
  U-mode access (``Priv.U``): the leaf needs ``U=1``, and ``R`` for a read,
  ``W`` for a write.  Process directories (PDTV, ENS, SUM) are not modelled.
* A/D bits: ``capabilities.AMO_HWAD`` is 1.  A context with ``tc.SADE=1``
  gets A (and D on writes) set by the walk (``AdPolicy.UPDATE``); with
  ``SADE=0`` a clear A/D bit is a page fault (``AdPolicy.FAULT``).
* The IOTLB (an :class:`hwsim.mmu.tlb.Tlb` tagged by PSCID) and the
  directory cache change only on fills, capacity eviction, reset and the
  invalidation commands ``IOTINVAL.VMA`` and ``IODIR.INVAL_DDT``: a PTE or
  context rewritten in RAM keeps being used until invalidated, as on real
  hardware.  Changing ``ddtp`` does not flush them either (the spec leaves
  that to software).  Failed lookups are not cached.
* A request is all-or-nothing: all pages are translated first; a fault on
  any page moves no data.  A fault record names the device, IOVA, access,
  cause, reason, virtual time and the walks (directory and page table).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import NamedTuple

from ..devices.base import Device, Option, OptionError, register_device
from ..devices.issues import IssueKind
from ..errors import BusError
from ..mmu.bits import HGATP_MODES, PAGE_SHIFT, PAGE_SIZE, PAGING_MODES, Pte
from ..mmu.tlb import Tlb
from ..mmu.translate import Refusal, lookup_or_walk
from ..mmu.twostage import Purpose, Stage, TwoStageResult, walk_two_stage
from ..mmu.walker import AdPolicy, RamWords, walk
from ..riscv.priv import Access, Priv
from ..trace import TRACE
from .bits import (
    CAP_SV39X4,
    CAP_SV48X4,
    CAPABILITIES,
    CMD_FUNC3_MASK,
    CMD_FUNC3_SHIFT,
    CMD_OPCODE_MASK,
    CQ_ENTRY_SIZE,
    CQCSR_CIE,
    CQCSR_CMD_ILL,
    CQCSR_CQEN,
    CQCSR_CQMF,
    CQCSR_CQON,
    CQCSR_ERRORS,
    CQCSR_FENCE_W_IP,
    DC_SIZE,
    DDTE_PPN_MASK,
    DDTE_PPN_SHIFT,
    DDTE_RESERVED,
    DDTE_V,
    DDTP_MODE_MASK,
    DDTP_PPN_MASK,
    DDTP_PPN_SHIFT,
    FQ_RECORD_SIZE,
    FQCSR_FIE,
    FQCSR_FQEN,
    FQCSR_FQMF,
    FQCSR_FQOF,
    FQCSR_FQON,
    IODIR_DID_SHIFT,
    IODIR_DV,
    IODIR_INVAL_DDT,
    IODIR_INVAL_PDT,
    IODIR_RESERVED0,
    IOFENCE_ADDR_MASK,
    IOFENCE_AV,
    IOFENCE_C,
    IOFENCE_DATA_SHIFT,
    IOFENCE_RESERVED0,
    IOFENCE_WSI,
    IOHGATP_MODE_SHIFT,
    IOHGATP_PPN_MASK,
    IOMMU_LAYOUT,
    IOSATP_RESERVED,
    IOTINVAL_ADDR_SHIFT,
    IOTINVAL_AV,
    IOTINVAL_GV,
    IOTINVAL_PSCID_MASK,
    IOTINVAL_PSCID_SHIFT,
    IOTINVAL_PSCV,
    IOTINVAL_RESERVED0,
    IOTINVAL_RESERVED1,
    IOTINVAL_VMA,
    IOTVAL2_IMPLICIT,
    IOTVAL2_IMPLICIT_WRITE,
    IPSR_CIP,
    IPSR_FIP,
    QB_LOG2SZ_MASK,
    QB_PPN_MASK,
    QB_PPN_SHIFT,
    TA_RESERVED,
    TC_SUPPORTED,
    IommuCause,
    IommuMode,
    Opcode,
    cmd_iodir_inval_ddt,
    cmd_iotinval_vma,
    ddi,
    device_id_limit,
)
from .directory import DeviceContext, DeviceDirectory, IommuError
from .faults import DirectoryStep, DmaAccess, FaultQueue, IommuFault
from .views import DmaView

MAX_FAULT_LOG = 10_000
_PRIV_U = Priv.U  # for the DMA path (``Priv.U`` costs ~50 ns in Python 3.11)
_MODE_OF = {int(m): m for m in IommuMode}  # ddtp.iommu_mode -> IommuMode, without the enum call
_PTE_D = int(Pte.D)
_LVL1 = int(IommuMode.LVL1)  # ddtp.iommu_mode 1LVL and above: a device directory (Off and Bare are below)
# The leaf flags an IOTLB entry needs for a device's read or write (see Iommu._request).
_ALLOW_READ = int(Pte.U | Pte.R)
_ALLOW_WRITE = int(Pte.U | Pte.W | Pte.D)


class DmaResult(NamedTuple):
    """The outcome of one DMA request: ``ok`` and, for a read, ``data``; else the ``fault``.

    (A named tuple: immutable and the cheapest record to make, one per request.)"""

    ok: bool
    data: bytes | None = None
    fault: IommuFault | None = None


_WRITTEN = DmaResult(True)  # (immutable: every successful write may share it)
_new_result = tuple.__new__  # _new_result(DmaResult, (ok, data, fault)): DmaResult(...) without its keyword handling


@dataclass
class IommuStats:
    requests: int = 0
    bytes_read: int = 0
    bytes_written: int = 0
    faults: int = 0
    directory_walks: int = 0
    page_walks: int = 0
    commands: int = 0
    views: int = 0  # validated views opened (their accesses count as requests)


class _RangeCache:
    """One direction of :meth:`DmaPort.read_repeated` / :meth:`DmaPort.write_repeated`: the range of the
    last request, and the view opened for it."""

    __slots__ = ("last", "refused", "view")

    def __init__(self) -> None:
        self.last: tuple[int, int] | None = None  # (iova, size) of the last request, when it went through
        self.refused: tuple[int, int] | None = None  # open_view refused this range: not asked again in a row
        self.view: DmaView | None = None


class DmaPort:
    """A device's only way to memory: the IOMMU, with the device's ID filled in.

    :meth:`read` and :meth:`write` are one request each.  :meth:`read_repeated` and
    :meth:`write_repeated` are the same requests for a device that often moves the same range again (a
    DMA engine's source and destination), with a device's address translation cache: when a request
    goes through for the range the one before it went through for, a validated view of the range is
    opened (views.py: translated from the IOTLB entries the request just used, vouched for by every DMA
    observer), and the requests of that range after it go through the view (one request each, counted,
    no translation, no observer call) until the IOMMU invalidates it (an IOTINVAL or directory
    invalidation that covers it, ``ddtp``, a reset, the DMA checker's sync or unmap, a new observer).
    The next request is then an ordinary one, judged by the IOMMU and every observer: its fault is
    recorded and reported as it would have been without the view.  Only the IOTLB's own statistics and
    LRU order see the difference (a view's accesses do not look it up), and software that changes a
    mapping without the IOTINVAL.VMA the spec requires: a view, like a device's translation cache, keeps
    the old translation after the IOTLB entry it was made from is evicted for capacity, where an
    ordinary request walks the new tables (both are answers the spec allows until the invalidation)."""

    def __init__(self, iommu: Iommu, device_id: int) -> None:
        self.iommu = iommu
        self.device_id = device_id
        self._reads, self._writes = _RangeCache(), _RangeCache()

    def read(self, iova: int, size: int) -> DmaResult:
        return self.iommu.dma(self.device_id, iova, size, write=False)

    def write(self, iova: int, data: bytes) -> DmaResult:
        return self.iommu.dma(self.device_id, iova, len(data), write=True, data=data)

    def read_repeated(self, iova: int, size: int) -> DmaResult:
        """:meth:`read`, through a view once the range repeats (see the class)."""
        cache = self._reads
        view = cache.view
        if view is not None:
            if view.valid and view.iova == iova and view.size == size and TRACE.dma is None:
                return _new_result(DmaResult, (True, view.read(0, size), None))
            self._drop(cache)
        result = self.iommu.dma(self.device_id, iova, size, write=False)
        self._went(cache, iova, size, result.ok, False)
        return result

    def write_repeated(self, iova: int, data: bytes) -> DmaResult:
        """:meth:`write`, through a view once the range repeats (see the class)."""
        cache, size = self._writes, len(data)
        view = cache.view
        if view is not None:
            if view.valid and view.iova == iova and view.size == size and TRACE.dma is None:
                view.write_at(0, data)
                return _WRITTEN
            self._drop(cache)
        result = self.iommu.dma(self.device_id, iova, size, write=True, data=data)
        self._went(cache, iova, size, result.ok, True)
        return result

    def move_repeated(self, src: int, dst: int, size: int) -> bool:
        """:meth:`read_repeated` of ``[src, +size)`` then :meth:`write_repeated` of its bytes at ``dst``, when
        both would go through their views: the bytes move view to view (the same two requests, counted).
        False when either would be an ordinary request: nothing is done (the caller makes the two)."""
        reads, writes = self._reads.view, self._writes.view
        if (
            reads is None
            or writes is None
            or not (reads.valid and writes.valid)
            or TRACE.dma is not None
            or reads.iova != src
            or writes.iova != dst
            or reads.size != size
            or writes.size != size
        ):
            return False
        reads.copy_to(writes)
        return True

    def forget_repeated(self) -> None:
        """Close the views of :meth:`read_repeated` and :meth:`write_repeated` (a device reset)."""
        for cache in (self._reads, self._writes):
            self._drop(cache)
            cache.refused = None

    @staticmethod
    def _drop(cache: _RangeCache) -> None:
        """The view is invalid (or of another range): closed; the range starts over with a request."""
        if cache.view is not None:
            cache.view.close()
        cache.view = cache.last = None

    def _went(self, cache: _RangeCache, iova: int, size: int, ok: bool, write: bool) -> None:
        """After an ordinary request of ``[iova, +size)``: open the view when the one before it was of the
        same range and both went through.  Its pages' IOTLB entries were just used (a range of no more
        pages than the IOTLB holds), so opening it walks nothing: no statistic, A/D bit or fault of a walk
        differs from requests alone."""
        key = (iova, size)
        if not ok:
            cache.last = None
            return
        if cache.last != key:
            cache.last, cache.refused = key, None
            return
        if (
            cache.refused == key
            or ((iova + size - 1) >> PAGE_SHIFT) - (iova >> PAGE_SHIFT) >= self.iommu.iotlb.capacity
        ):
            return
        cache.view = self.iommu.open_view(self.device_id, iova, size, write=write)
        if cache.view is None:
            cache.refused = key

    def open_view(self, iova: int, size: int, *, write: bool = False) -> DmaView | None:
        """A validated view of ``[iova, +size)`` (see :mod:`hwsim.iommu.views`), or None."""
        return self.iommu.open_view(self.device_id, iova, size, write=write)


class _Stop(Exception):
    def __init__(self, cause: IommuCause, reason: str, steps: tuple = ()) -> None:
        self.cause, self.reason, self.steps = cause, reason, steps


@register_device
class Iommu(Device):
    TYPE = "riscv-iommu"
    ROLE = "iommu"
    PLATFORM = "the translation and isolation of every device's DMA"
    DESCRIPTION = "RISC-V IOMMU: device directory, Sv39/Sv48 IO page tables, IOTLB, command and fault queues"
    LAYOUT = IOMMU_LAYOUT
    OPTIONS = {
        "mode": Option(str, "off", "ddtp.iommu_mode at reset", choices=("off", "bare")),
        "fault_queue_entries": Option(
            int,
            64,
            "slots of the host-side fault queue at reset (a power of two; it holds one record less)",
            minimum=2,
            maximum=1 << 20,
        ),
        "iotlb_entries": Option(int, 256, "IOTLB capacity (LRU)", minimum=1, maximum=1 << 20),
        "fault_irq": Option(bool, True, "fqcsr.fie at reset: raise the IRQ when a fault is queued"),
        "second_stage": Option(
            bool,
            False,
            "advertise Sv39x4/Sv48x4 and translate a device context's iohgatp (second stage, not cached)",
        ),
    }

    def __init__(self, *, name: str, phys, frames=None, **kw) -> None:
        self.phys = phys
        self.frames = frames
        super().__init__(name=name, **kw)
        self.iotlb = Tlb(capacity=self.options["iotlb_entries"])
        self.fault_queue = FaultQueue(self.options["fault_queue_entries"])
        self.fault_log: list[IommuFault] = []
        self.stats = IommuStats()
        self._device_names: dict[int, str] = {}
        self._dma_observers: list = []
        self._vouchers: list = []  # per observer, in the same order: its vouch function, or None
        self._views: set[DmaView] = set()  # the views not invalidated or closed
        self._ram_words: dict[int, RamWords | None] = {}  # RAM region base -> its words, for quick walks
        self.directory: DeviceDirectory | None = None
        self._dc_cache: dict[int, tuple[DeviceContext, tuple[DirectoryStep, ...]]] = {}
        self._fast_pscid: dict[int, int] = {}  # device ID -> PSCID, for cached contexts with a first stage only
        self._fq_base: int | None = None  # RAM address of a guest-programmed fault queue; None: host-side only
        r = self.regs
        r.on_write("DDTP_LO", self._write_ddtp)
        r.on_read("CQH", lambda: self._cqh)
        r.on_write("CQT", lambda new, old: self._process_commands())
        r.on_write("CQCSR", self._write_cqcsr)
        r.on_read("FQH", lambda: self.fault_queue.head)
        r.on_write("FQH", lambda new, old: self.fault_queue.set_head(new))
        r.on_read("FQT", lambda: self.fault_queue.tail)
        r.on_write("FQCSR", self._write_fqcsr)
        r.on_write("IPSR", lambda new, old: self._update_irq())
        if self.options["second_stage"]:
            r.on_read("CAPABILITIES_LO", lambda: (CAPABILITIES | CAP_SV39X4 | CAP_SV48X4) & 0xFFFF_FFFF)
        self._cqh = 0
        self._reset()

    @classmethod
    def check_options(cls, options) -> None:
        n = options["fault_queue_entries"]
        if n & (n - 1):
            raise OptionError("fault_queue_entries", f"must be a power of two, not {n}")

    def _reset(self) -> None:
        self.iotlb.flush()
        self._forget_contexts()
        self.invalidate_views()
        self._cqh = 0
        self._fq_base = None
        self.fault_queue.reset(self.options["fault_queue_entries"])
        mode = IommuMode.BARE if self.options["mode"] == "bare" else IommuMode.OFF
        self.regs["DDTP_LO"] = int(mode)
        # Deviation from the spec's reset state (fqen=0): the fault queue starts on, kept host-side, so
        # faults are collected without a driver; a guest that programs fqb and sets fqen moves it to RAM.
        self.regs["FQCSR"] = FQCSR_FQEN | FQCSR_FQON | (FQCSR_FIE if self.options["fault_irq"] else 0)
        self._update_irq()

    # -- host API: mode, directory, contexts ----------------------------------------------------------

    @property
    def mode(self) -> IommuMode:
        bits = self.regs["DDTP_LO"] & DDTP_MODE_MASK
        mode = _MODE_OF.get(bits)
        return mode if mode is not None else IommuMode(bits)

    @property
    def ddtp(self) -> int:
        return self.regs["DDTP_HI"] << 32 | self.regs["DDTP_LO"]

    def set_ddtp(self, value: int) -> None:
        """Program ddtp as a driver would (low half last, so the mode changes with the full PPN)."""
        self.mmio_write(0x14, 4, value >> 32)
        self.mmio_write(0x10, 4, value & 0xFFFF_FFFF)

    def set_mode(self, mode: IommuMode | str) -> None:
        """``"off"`` or ``"bare"`` (or an IommuMode); the root PPN is kept."""
        if isinstance(mode, str):
            try:
                mode = {"off": IommuMode.OFF, "bare": IommuMode.BARE}[mode]
            except KeyError:
                raise IommuError(
                    f"set_mode takes 'off' or 'bare' (use create_directory for 1-3 levels), not {mode!r}"
                ) from None
        self.set_ddtp(self.ddtp & ~DDTP_MODE_MASK | int(mode))

    def create_directory(self, *, levels: int = 1) -> DeviceDirectory:
        """Allocate an empty device directory in RAM and point ddtp at it."""
        if self.frames is None:
            raise IommuError("create_directory needs a frame allocator (Iommu(frames=...))")
        self.directory = DeviceDirectory(self.phys, self.frames, levels=levels)
        self.set_ddtp(self.directory.ddtp)
        return self.directory

    def attach(self, device_id: int, space=None, *, pscid: int = 0, sade: bool = True, dtf: bool = False) -> None:
        """Give device ``device_id`` the IO address space ``space`` (an AddressSpace; None: Bare, no
        translation), then ``IODIR.INVAL_DDT`` for it, as a driver would."""
        if self.directory is None:
            raise IommuError("attach needs a device directory: call create_directory() first")
        if not 0 <= pscid < 1 << 20:
            raise IommuError(f"PSCID must be in [0, 2^20), not {pscid}")
        ctx = DeviceContext.make(
            root=None if space is None else space.root,
            mode=None if space is None else space.mode,
            pscid=pscid,
            sade=sade,
            dtf=dtf,
        )
        self.directory.set_context(device_id, ctx)
        self.iodir_inval_ddt(device_id)

    def detach(self, device_id: int) -> None:
        """Invalidate the device's context in RAM, then ``IODIR.INVAL_DDT`` and ``IOTINVAL.VMA`` for its PSCID."""
        if self.directory is None:
            raise IommuError("detach needs a device directory: call create_directory() first")
        old = self.directory.get_context(device_id)
        self.directory.clear_context(device_id)
        self.iodir_inval_ddt(device_id)
        if old is not None and old.valid:
            self.iotinval_vma(pscid=old.pscid)

    def port(self, device_id: int) -> DmaPort:
        return DmaPort(self, device_id)

    # -- host API: commands (the same decoder as the command queue) ------------------------------------

    def iotinval_vma(self, addr: int | None = None, pscid: int | None = None) -> int:
        """``IOTINVAL.VMA``: addr/pscid None mean AV=0/PSCV=0.  Returns the IOTLB entries dropped."""
        if (addr is None or 0 <= addr < 1 << 64) and (pscid is None or 0 <= pscid < 1 << 20):
            # What the command would say, without encoding it (a DMA unmap's per-page invalidation)
            self.stats.commands += 1
            return self._iotinval_vma(None if addr is None else addr & ~(PAGE_SIZE - 1), pscid)
        return self.execute(cmd_iotinval_vma(addr, pscid))

    def iodir_inval_ddt(self, device_id: int | None = None) -> int:
        """``IODIR.INVAL_DDT``: one device's cached context, or all (None).  Returns contexts dropped."""
        return self.execute(cmd_iodir_inval_ddt(device_id))

    def _iotinval_vma(self, addr: int | None, pscid: int | None) -> int:
        """Carry out a decoded ``IOTINVAL.VMA`` (``addr`` page-aligned, None: AV=0; ``pscid`` None: PSCV=0)."""
        dropped = self.iotlb.flush(addr, pscid)
        self._drop_views(lambda v: (pscid is None or v.pscid == pscid) and (addr is None or v.translated(addr)))
        if TRACE.iommu_inval is not None:  # the decoded IOVA: dw1 holds its page number, ADDR[63:12]
            TRACE.iommu_inval(
                command="IOTINVAL.VMA",
                address="all" if addr is None else hex(addr),
                pscid="all" if pscid is None else pscid,
                dropped=dropped,
            )
        return dropped

    def execute(self, command: bytes) -> int:
        """Run one 16-byte command now; raises IommuError for an illegal one.  Returns entries dropped."""
        dw0 = int.from_bytes(command[:8], "little")
        dw1 = int.from_bytes(command[8:16], "little")
        result = self._execute(dw0, dw1)
        if isinstance(result, str):
            raise IommuError(f"illegal IOMMU command {command.hex()}: {result}")
        return result

    def name_device(self, device_id: int, name: str) -> None:
        """The board's name of the device behind ``device_id`` (for traces)."""
        self._device_names[device_id] = name

    # -- host API: faults ----------------------------------------------------------------------------------

    def enable_fault_interrupt(self, enabled: bool = True) -> None:
        csr = self.regs["FQCSR"]
        self.regs["FQCSR"] = csr | FQCSR_FIE if enabled else csr & ~FQCSR_FIE

    def clear_fault_overflow(self) -> None:
        """What software does by writing 1 to fqcsr.fqof: queueing resumes."""
        self.regs["FQCSR"] = self.regs["FQCSR"] & ~(FQCSR_FQOF | FQCSR_FQMF)
        self.fault_queue.overflow = False

    @property
    def fault_overflow(self) -> bool:
        return bool(self.regs["FQCSR"] & FQCSR_FQOF)

    def format_faults(self) -> str:
        return "\n".join(f.format() for f in self.fault_log)

    # -- the DMA path ---------------------------------------------------------------------------------------

    def add_dma_observer(self, observer, *, vouch=None) -> Callable[[], None]:
        """``observer(device_id, iova, size, write, result)`` after every device request, in the order
        observers were added (a DMA checker, a trace); returns a function that removes it.

        ``vouch(device_id, iova, size, write)``: True when the observer would let every request inside
        that range pass without remark, so that a device may use a :class:`DmaView` of it (whose
        accesses the observer does not see).  Without it, no view is made while the observer is here."""
        self._dma_observers.append(observer)
        self._vouchers.append(vouch)
        self.invalidate_views()  # a view made before did not ask this observer

        def remove() -> None:
            i = self._dma_observers.index(observer)
            del self._dma_observers[i], self._vouchers[i]

        return remove

    # -- validated views (views.py) -----------------------------------------------------------------

    def open_view(self, device_id: int, iova: int, size: int, *, write: bool) -> DmaView | None:
        """A view of ``[iova, +size)`` for device reads (or writes), translated and checked now; None when
        it cannot be made (Off or Bare mode, a second stage, a page that would fault, not RAM, tracing on,
        an observer that does not vouch).  Nothing is recorded for a refusal: the device's requests are
        then judged one by one.  A walk on an IOTLB miss fills the IOTLB (and sets A/D bits) as a request
        would."""
        if TRACE.dma is not None or size <= 0 or None in self._vouchers:
            return None
        if self.mode.levels == 0:
            return None
        try:
            dc, _steps = self._device_context(device_id)
        except _Stop:
            return None
        if not dc.iosatp_mode or dc.iohgatp:
            return None
        walk_access = Access.STORE if write else Access.LOAD
        phys, tlb, pscid, root, mode = self.phys, self.iotlb, dc.pscid, dc.root, PAGING_MODES[dc.iosatp_mode]
        ad = AdPolicy.UPDATE if dc.sade else AdPolicy.FAULT
        spans: list[list[int]] = []  # [offset in the view, pa, length], physically contiguous pages joined
        pages: list[tuple[int, int]] = []  # (IOVA, size) of each page translated (a superpage whole)
        va, end = iova, iova + size
        while va < end:
            tr = lookup_or_walk(
                tlb,
                phys,
                pscid,
                root,
                va,
                walk_access,
                _PRIV_U,
                mode=mode,
                ad=ad,
                on_miss=self._count_walk,
                ram=self._table_words(root),
            )
            if isinstance(tr, Refusal) or (write and not tr.pte & _PTE_D):
                return None
            n = min(end, (va | (tr.page_size - 1)) + 1) - va
            pa = tr.pa_of(va)
            pages.append((va & ~(tr.page_size - 1), tr.page_size))
            if spans and spans[-1][1] + spans[-1][2] == pa:
                spans[-1][2] += n
            else:
                spans.append([va - iova, pa, n])
            va += n
        try:
            pieces = [(offset, phys.view(pa, n)) for offset, pa, n in spans]
        except BusError:
            return None
        if not all(vouch(device_id, iova, size, write) for vouch in self._vouchers):
            return None
        view = DmaView(
            device_id=device_id,
            iova=iova,
            size=size,
            write=write,
            pscid=pscid,
            pages=tuple(pages),
            pieces=pieces,
            stats=self.stats,
            close=self._views.discard,
        )
        self._views.add(view)
        self.stats.views += 1
        return view

    def invalidate_views(self, device_id: int | None = None, iova: int = 0, size: int | None = None) -> int:
        """Mark the views of ``device_id`` (None: every device) that overlap ``[iova, +size)`` (None: all
        of them) invalid; returns how many."""
        return self._drop_views(
            lambda v: (device_id is None or v.device_id == device_id) and (size is None or v.overlaps(iova, size))
        )

    def _drop_views(self, hit: Callable[[DmaView], bool]) -> int:
        if not self._views:
            return 0
        dropped = [v for v in self._views if hit(v)]
        for view in dropped:
            view.valid = False
            self._views.discard(view)
        return len(dropped)

    def dma(self, device_id: int, iova: int, size: int, write: bool, data: bytes | None = None) -> DmaResult:
        """One device request of ``size`` bytes at ``iova``: the only way a device reaches memory."""
        result = self._request(device_id, iova, size, write, data)
        for observer in self._dma_observers:
            observer(device_id, iova, size, write, result)
        return result

    def _request(self, device_id: int, iova: int, size: int, write: bool, data: bytes | None) -> DmaResult:
        # The common request first: a device whose context is cached and translates, within one page, an
        # IOTLB entry that allows the access (a U-mode access without SUM or MXR: U and R, or U, W and D),
        # RAM behind it, nothing traced.  Anything else, or anything odd, takes the general path below,
        # which comes to the same answer and explains faults.
        # ``_fast_pscid`` holds the PSCID of each cached context that translates with a first stage only.
        pscid = self._fast_pscid.get(device_id)
        if (
            pscid is not None
            and size > 0
            and not (iova ^ (iova + size - 1)) >> PAGE_SHIFT
            and TRACE.dma is None
            and self.regs.values["DDTP_LO"] & DDTP_MODE_MASK >= _LVL1
            and (not write or (data is not None and len(data) == size))
        ):
            tr = self.iotlb.hit(pscid, iova, _ALLOW_WRITE if write else _ALLOW_READ)
            if tr is not None:
                try:
                    view = self.phys.view(tr.pa_of(iova), size)
                except BusError:
                    view = None  # (the general path reports it)
                if view is not None:
                    stats = self.stats
                    stats.requests += 1
                    if write:
                        view[:] = data  # (checked above: ``size`` bytes)
                        stats.bytes_written += size
                        return _WRITTEN
                    stats.bytes_read += size
                    return _new_result(DmaResult, (True, bytes(view), None))
        if size <= 0:
            raise IommuError(f"DMA size must be positive, not {size}")
        if not 0 <= device_id < 1 << 24:
            raise IommuError(f"device ID {device_id:#x} does not fit the IOMMU's 24-bit device IDs")
        if write and (data is None or len(data) != size):
            raise IommuError(f"a DMA write of {size} bytes needs exactly {size} bytes of data")
        self.stats.requests += 1
        access = DmaAccess.WRITE if write else DmaAccess.READ
        dc = None
        steps: tuple = ()
        try:
            mode = self.mode
            if mode is IommuMode.OFF:
                raise _Stop(
                    IommuCause.ALL_INBOUND_DISALLOWED, "ddtp.iommu_mode is Off: all inbound transactions are disallowed"
                )
            if mode is IommuMode.BARE:
                pieces = [(iova, size)]
            else:
                dc, steps = self._device_context(device_id)
                if dc.iohgatp_mode:
                    translated = self._translate_two_stage(device_id, dc, steps, iova, size, access)
                    if isinstance(translated, DmaResult):
                        return translated
                    pieces = translated
                elif dc.iosatp_mode == 0:
                    pieces = [(iova, size)]
                else:
                    translated = self._translate(device_id, dc, steps, iova, size, access)
                    if isinstance(translated, DmaResult):
                        return translated
                    pieces = translated
            views = []
            for pa, n in pieces:
                try:
                    views.append(self.phys.view(pa, n))
                except BusError as exc:
                    cause = IommuCause.WRITE_ACCESS_FAULT if write else IommuCause.READ_ACCESS_FAULT
                    raise _Stop(cause, f"translated address {pa:#x} is not RAM: {exc}", steps) from None
        except _Stop as stop:
            return self._fault(device_id, iova, access, stop.cause, stop.reason, directory=stop.steps or steps, dc=dc)
        if TRACE.dma is not None:
            TRACE.dma(
                device=self._device_names.get(device_id, f"#{device_id}"),
                iova=iova,
                pa=pieces[0][0],
                length=size,
                direction=access.name.lower(),
                result="ok",
            )
        if write:
            assert data is not None  # checked on entry: a write has exactly ``size`` bytes
            off = 0
            for view in views:
                view[:] = data[off : off + len(view)]
                off += len(view)
            self.stats.bytes_written += size
            return DmaResult(True)
        self.stats.bytes_read += size
        return DmaResult(True, b"".join(views) if len(views) > 1 else bytes(views[0]))

    def _translate(
        self,
        device_id: int,
        dc: DeviceContext,
        steps: tuple[DirectoryStep, ...],
        iova: int,
        size: int,
        access: DmaAccess,
    ) -> list[tuple[int, int]] | DmaResult:
        """The physically contiguous ``(pa, length)`` pieces of ``[iova, iova+size)``, or the fault's result."""
        # No PASID: every request is a U-mode access, without SUM or MXR (see the module docstring).
        phys, tlb, pscid, root, mode = self.phys, self.iotlb, dc.pscid, dc.root, PAGING_MODES[dc.iosatp_mode]
        walk_access = Access.STORE if access is DmaAccess.WRITE else Access.LOAD
        ad = AdPolicy.UPDATE if dc.sade else AdPolicy.FAULT
        count_walk = self._count_walk
        ram = self._table_words(root)
        end = iova + size
        need = _ALLOW_WRITE if walk_access is Access.STORE else _ALLOW_READ
        if (iova ^ (end - 1)) >> PAGE_SHIFT == 0:  # within one 4 KiB page: an IOTLB hit needs no loop
            cached = tlb.hit(pscid, iova, need)  # (counted and refreshed as lookup_or_walk's lookup would)
            if cached is not None:
                return [(cached.pa_of(iova), size)]
        quick = TRACE.dma is None  # (traced, each page takes lookup_or_walk: tests hold one to the other)
        # the pages with an entry that allows the access first: lookup_or_walk's answers, found quicker
        pieces, va = tlb.hit_pages(pscid, iova, end, need) if quick else ([], iova)
        while va < end:
            # an entry that allows the access is lookup_or_walk's answer, found quicker
            hit = tlb.hit(pscid, va, need) if quick else None
            tr = (
                hit
                if hit is not None
                else lookup_or_walk(
                    tlb, phys, pscid, root, va, walk_access, _PRIV_U, mode=mode, ad=ad, on_miss=count_walk, ram=ram
                )
            )
            if isinstance(tr, Refusal):
                if tr.walk is None:  # the IOTLB's entry refused; explain with the tables as they are now
                    explain = walk(phys, root, va, walk_access, Priv.U, mode=mode, ad=AdPolicy.REPORT)
                    cause = IommuCause(int(walk_access.page_fault_cause))
                    return self._fault(
                        device_id,
                        va,
                        access,
                        cause,
                        tr.reason.value,
                        walk=explain,
                        directory=steps,
                        iotlb_pte=tr.tlb_pte,
                        dc=dc,
                    )
                fault = tr.walk.fault
                assert fault is not None  # a refusal that walked carries the faulting walk
                return self._fault(
                    device_id,
                    va,
                    access,
                    IommuCause(int(fault.cause)),
                    fault.message,
                    walk=tr.walk,
                    directory=steps,
                    dc=dc,
                )
            page_end = (va | (tr.page_size - 1)) + 1
            n = min(end, page_end) - va
            pa = tr.pa_of(va)
            if pieces and pieces[-1][0] + pieces[-1][1] == pa:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + n)  # physically contiguous: one copy
            else:
                pieces.append((pa, n))
            va += n
        return pieces

    def _translate_two_stage(
        self,
        device_id: int,
        dc: DeviceContext,
        steps: tuple[DirectoryStep, ...],
        iova: int,
        size: int,
        access: DmaAccess,
    ) -> list[tuple[int, int]] | DmaResult:
        """``_translate`` for a context with a second stage: each 4 KiB piece through
        :func:`hwsim.mmu.twostage.walk_two_stage` (first stage over iohgatp), never cached in the IOTLB.

        A first-stage PTE's address is guest-physical; reading it is an implicit read through the second
        stage, setting its A/D bits an implicit write.  A second-stage failure is a guest-page fault
        (21 read, 23 write) with iotval2 = the GPA's bits 63:2, bit 0 set for an implicit access and
        bit 1 for an implicit write (RISC-V IOMMU 1.0, the fault record).
        """
        first = PAGING_MODES.get(dc.iosatp_mode)
        g_mode = HGATP_MODES[dc.iohgatp_mode]
        walk_access = Access.STORE if access is DmaAccess.WRITE else Access.LOAD
        pieces: list[tuple[int, int]] = []
        va, end = iova, iova + size
        while va < end:
            self.stats.page_walks += 1
            result = walk_two_stage(
                self.phys,
                va,
                walk_access,
                Priv.U,
                vs_mode=first,
                vs_root=dc.root,
                g_mode=g_mode,
                g_root=dc.g_root,
                ad=AdPolicy.UPDATE if dc.sade else AdPolicy.FAULT,
                g_ad=AdPolicy.UPDATE if dc.gade else AdPolicy.FAULT,
            )
            f = result.fault
            if f is not None:
                iotval2 = 0
                if f.kind == "guest-page fault" and f.gpa is not None:
                    iotval2 = f.gpa & ~3
                    if f.purpose is Purpose.VS_PTE:
                        iotval2 |= IOTVAL2_IMPLICIT
                    elif f.purpose is Purpose.AD_WRITE:
                        iotval2 |= IOTVAL2_IMPLICIT | IOTVAL2_IMPLICIT_WRITE
                stage = "second stage" if f.stage is Stage.G else "first stage"
                return self._fault(
                    device_id,
                    va,
                    access,
                    IommuCause(int(f.cause)),
                    f"{stage}: {f.message}",
                    directory=steps,
                    dc=dc,
                    iotval2=iotval2,
                    two_stage=result,
                )
            assert result.pa is not None  # a two-stage walk without a fault has a pa
            n = min(end, (va | (PAGE_SIZE - 1)) + 1) - va
            if pieces and pieces[-1][0] + pieces[-1][1] == result.pa:
                pieces[-1] = (pieces[-1][0], pieces[-1][1] + n)
            else:
                pieces.append((result.pa, n))
            va += n
        return pieces

    def _count_walk(self, iova: int, pscid: int) -> None:
        self.stats.page_walks += 1

    def _table_words(self, root: int) -> RamWords | None:
        """The RAM region holding the root table, as words, for quick walks (the walker's
        ``walk_quick``: same outcome, no record; a fault is walked again to be recorded); None when the
        root is not in RAM (the full walk reports it)."""
        try:
            region = self.phys.ram_at(root)
        except BusError:
            return None
        words = self._ram_words.get(region.base)
        if words is None:
            words = self._ram_words[region.base] = RamWords.for_region(region.base, region.view)
        return words

    # -- the device directory ----------------------------------------------------------------------------------

    def inspect_device(self, device_id: int) -> tuple[DeviceContext | None, tuple[DirectoryStep, ...], str | None]:
        """The device's context as the IOMMU would find it now, the directory walk, and why it cannot be
        used (None: it can), without side effects (no cache fill, no statistics, no fault)."""
        cached = self._dc_cache.get(device_id)
        if cached is not None:
            return cached[0], cached[1], None
        if self.mode.levels == 0:
            return None, (), f"the IOMMU is in mode {self.mode.name}: no device directory"
        try:
            dc, steps = self._walk_directory(device_id)
        except _Stop as stop:
            return None, stop.steps, stop.reason
        return dc, steps, None

    def _device_context(self, device_id: int) -> tuple[DeviceContext, tuple[DirectoryStep, ...]]:
        cached = self._dc_cache.get(device_id)
        if cached is not None:
            return cached
        self.stats.directory_walks += 1
        entry = self._walk_directory(device_id)
        self._dc_cache[device_id] = entry
        dc = entry[0]
        if dc.iosatp_mode and not dc.iohgatp:
            self._fast_pscid[device_id] = dc.pscid
        return entry

    def _forget_contexts(self, device_id: int | None = None) -> int:
        """Drop the cached context of ``device_id`` (None: all), and the views made with it; returns how
        many contexts were dropped."""
        self.invalidate_views(device_id)
        if device_id is None:
            dropped = len(self._dc_cache)
            self._dc_cache.clear()
            self._fast_pscid.clear()
            return dropped
        self._fast_pscid.pop(device_id, None)
        return 1 if self._dc_cache.pop(device_id, None) is not None else 0

    def _walk_directory(self, device_id: int) -> tuple[DeviceContext, tuple[DirectoryStep, ...]]:
        mode = self.mode
        levels = mode.levels
        limit = device_id_limit(levels)
        if not 0 <= device_id < limit:
            raise _Stop(
                IommuCause.TRANSACTION_TYPE_DISALLOWED,
                f"device ID {device_id} is wider than a {mode.label} device directory allows (0..{limit - 1})",
            )
        steps: list[DirectoryStep] = []
        table = (self.ddtp & DDTP_PPN_MASK) >> DDTP_PPN_SHIFT << PAGE_SHIFT
        for level in range(levels - 1, 0, -1):
            addr = table + 8 * ddi(device_id, level)
            try:
                entry = self.phys.read_u64(addr)
            except BusError:
                steps.append(DirectoryStep(level, addr, 0, "not in RAM -> DDT entry load access fault"))
                raise _Stop(
                    IommuCause.DDT_LOAD_ACCESS_FAULT,
                    f"the level-{level} DDT entry at {addr:#x} is not in RAM",
                    tuple(steps),
                ) from None
            if not entry & DDTE_V:
                steps.append(DirectoryStep(level, addr, entry, "V=0 -> DDT entry not valid"))
                raise _Stop(
                    IommuCause.DDT_NOT_VALID,
                    f"the level-{level} DDT entry at {addr:#x} is not valid (V=0)",
                    tuple(steps),
                )
            if entry & DDTE_RESERVED:
                steps.append(DirectoryStep(level, addr, entry, "reserved bits set -> DDT entry misconfigured"))
                raise _Stop(
                    IommuCause.DDT_MISCONFIGURED,
                    f"the level-{level} DDT entry at {addr:#x} has reserved bits {entry & DDTE_RESERVED:#x} set",
                    tuple(steps),
                )
            table = (entry & DDTE_PPN_MASK) >> DDTE_PPN_SHIFT << PAGE_SHIFT
            steps.append(DirectoryStep(level, addr, entry, f"pointer to the level-{level - 1} table at {table:#x}"))
        addr = table + DC_SIZE * ddi(device_id, 0)
        try:
            dc = DeviceContext.from_bytes(self.phys.read(addr, DC_SIZE))
        except BusError:
            steps.append(DirectoryStep(0, addr, 0, "not in RAM -> DDT entry load access fault"))
            raise _Stop(
                IommuCause.DDT_LOAD_ACCESS_FAULT, f"the device context at {addr:#x} is not in RAM", tuple(steps)
            ) from None
        if not dc.valid:
            steps.append(DirectoryStep(0, addr, dc.tc, "tc.V=0 -> DDT entry not valid"))
            raise _Stop(
                IommuCause.DDT_NOT_VALID,
                f"the device context of device {device_id} at {addr:#x} is not valid (tc.V=0)",
                tuple(steps),
            )
        problem = _misconfiguration(dc, second_stage=self.options["second_stage"])
        if problem is not None:
            steps.append(DirectoryStep(0, addr, dc.tc, "misconfigured -> DDT entry misconfigured"))
            raise _Stop(
                IommuCause.DDT_MISCONFIGURED,
                f"the device context of device {device_id} at {addr:#x}: {problem}",
                tuple(steps),
            )
        first = "Bare" if dc.iosatp_mode == 0 else f"{PAGING_MODES[dc.iosatp_mode].name} root {dc.root:#x}"
        second = (
            f", second stage {HGATP_MODES[dc.iohgatp_mode].name} root {dc.g_root:#x}, GADE={int(dc.gade)}"
            if dc.iohgatp_mode
            else ""
        )
        steps.append(
            DirectoryStep(
                0, addr, dc.tc, f"device context: first stage {first}, PSCID {dc.pscid}, SADE={int(dc.sade)}{second}"
            )
        )
        return dc, tuple(steps)

    # -- faults --------------------------------------------------------------------------------------------------

    def _fault(
        self,
        device_id: int,
        iova: int,
        access: DmaAccess,
        cause: IommuCause,
        reason: str,
        *,
        walk=None,
        directory=(),
        iotlb_pte=None,
        dc: DeviceContext | None = None,
        iotval2: int = 0,
        two_stage: TwoStageResult | None = None,
    ) -> DmaResult:
        record = IommuFault(
            device_id,
            iova,
            access,
            cause,
            reason,
            self.clock.now,
            walk,
            tuple(directory),
            iotlb_pte,
            iotval2=iotval2,
            two_stage=two_stage,
        )
        self.stats.faults += 1
        if TRACE.dma is not None:
            TRACE.dma(
                device=self._device_names.get(device_id, f"#{device_id}"),
                iova=iova,
                pa=0,
                length=0,
                direction=access.name.lower(),
                result=f"fault: {cause.name.lower()}",
            )
        if TRACE.iommu_fault is not None:
            TRACE.iommu_fault(
                device_id=device_id, iova=iova, access=access.name.lower(), cause=cause.name.lower(), reason=reason
            )
        if dc is not None and dc.dtf and not cause.reported_with_dtf:
            record = replace(record, queued=False)
        elif not self._queue(record):
            record = replace(record, queued=False)
        if len(self.fault_log) < MAX_FAULT_LOG:
            self.fault_log.append(record)
        return DmaResult(False, None, record)

    def _queue(self, record: IommuFault) -> bool:
        csr = self.regs["FQCSR"]
        fq = self.fault_queue
        if not csr & FQCSR_FQON or csr & FQCSR_FQMF:
            fq.dropped += 1
            return False
        if fq.overflow or fq.full:
            fq.push(record)  # counts the discarded record and sets the overflow flag
            if not csr & FQCSR_FQOF:
                self.regs["FQCSR"] = csr | FQCSR_FQOF
                self._raise_fault_interrupt()
            return False
        if self._fq_base is not None:
            try:
                self.phys.write(self._fq_base + fq.tail * FQ_RECORD_SIZE, record.to_record())
            except BusError:  # the record is discarded, and so are later ones until fqmf is cleared
                fq.dropped += 1
                self.regs["FQCSR"] = csr | FQCSR_FQMF
                self._raise_fault_interrupt()
                return False
        fq.accept(record)
        self._raise_fault_interrupt()
        return True

    def _raise_fault_interrupt(self) -> None:
        if self.regs["FQCSR"] & FQCSR_FIE:
            self.regs["IPSR"] = self.regs["IPSR"] | IPSR_FIP
            self._update_irq()

    def _update_irq(self) -> None:
        self.irq.set(bool(self.regs["IPSR"] & (IPSR_FIP | IPSR_CIP)))

    # -- registers ---------------------------------------------------------------------------------------------

    def _write_ddtp(self, new: int, old: int) -> None:
        self.invalidate_views()  # the mode or the directory may change what every device reaches
        mode = new & DDTP_MODE_MASK
        if mode > IommuMode.LVL3:
            self.regs["DDTP_LO"] = new & ~DDTP_MODE_MASK | old & DDTP_MODE_MASK  # WARL: keep the old mode
            self.report(
                IssueKind.BAD_VALUE,
                register="DDTP_LO",
                detail=f"iommu_mode {mode} is reserved or custom; the mode stays "
                f"{IommuMode(old & DDTP_MODE_MASK).label}",
            )

    def _write_fqcsr(self, new: int, old: int) -> None:
        fq = self.fault_queue
        fqb = self.regs["FQB_HI"] << 32 | self.regs["FQB_LO"]
        # fqen 0 -> 1 (re)starts the queue on what fqb describes; so does setting fqen while the queue is
        # still the host-side one hwsim starts with, once the guest has programmed fqb (a driver that
        # assumes the spec's reset state, fqen=0, writes fqb and then fqen=1 without clearing it first).
        if new & FQCSR_FQEN and (not old & FQCSR_FQEN or self._fq_base is None and fqb & QB_PPN_MASK):
            fq.reset(2 << (fqb & QB_LOG2SZ_MASK))
            self._fq_base = (fqb & QB_PPN_MASK) >> QB_PPN_SHIFT << PAGE_SHIFT
            new = new & ~(FQCSR_FQOF | FQCSR_FQMF) | FQCSR_FQON
        elif not new & FQCSR_FQEN:
            new &= ~FQCSR_FQON
        else:
            new |= FQCSR_FQON
        fq.overflow = bool(new & FQCSR_FQOF)
        self.regs["FQCSR"] = new

    def _write_cqcsr(self, new: int, old: int) -> None:
        if new & CQCSR_CQEN and not old & CQCSR_CQEN:
            self._cqh = 0
            new = new & ~(CQCSR_ERRORS | CQCSR_FENCE_W_IP) | CQCSR_CQON
        elif not new & CQCSR_CQEN:
            new &= ~CQCSR_CQON
        self.regs["CQCSR"] = new
        self._process_commands()

    @property
    def _cq_entries(self) -> int:
        return 2 << (self.regs["CQB_LO"] & QB_LOG2SZ_MASK)

    def _process_commands(self) -> None:
        """Run queued commands from cqh to cqt while the queue is on and has no error."""
        entries = self._cq_entries
        base = ((self.regs["CQB_HI"] << 32 | self.regs["CQB_LO"]) & QB_PPN_MASK) >> QB_PPN_SHIFT << PAGE_SHIFT
        tail = self.regs["CQT"] % entries
        while self.regs["CQCSR"] & CQCSR_CQON and not self.regs["CQCSR"] & CQCSR_ERRORS and self._cqh != tail:
            try:
                raw = self.phys.read(base + self._cqh * CQ_ENTRY_SIZE, CQ_ENTRY_SIZE)
            except BusError:
                self._command_error(
                    CQCSR_CQMF, f"command {self._cqh} at {base + self._cqh * CQ_ENTRY_SIZE:#x} is not in RAM"
                )
                return
            result = self._execute(int.from_bytes(raw[:8], "little"), int.from_bytes(raw[8:], "little"))
            if isinstance(result, str):
                bit = CQCSR_CQMF if result.startswith("IOFENCE.C completion write") else CQCSR_CMD_ILL
                self._command_error(bit, f"command {self._cqh} ({raw.hex()}): {result}")
                return
            self._cqh = (self._cqh + 1) % entries

    def _command_error(self, bit: int, detail: str) -> None:
        self.regs["CQCSR"] = self.regs["CQCSR"] | bit
        self.report(IssueKind.BAD_VALUE, register="CQT", detail=detail)
        if self.regs["CQCSR"] & CQCSR_CIE:
            self.regs["IPSR"] = self.regs["IPSR"] | IPSR_CIP
            self._update_irq()

    def _execute(self, dw0: int, dw1: int) -> int | str:
        """Decode and run one command; an int (entries invalidated) or the reason it is illegal."""
        self.stats.commands += 1
        opcode = dw0 & CMD_OPCODE_MASK
        func3 = (dw0 & CMD_FUNC3_MASK) >> CMD_FUNC3_SHIFT
        if opcode == Opcode.IOTINVAL:
            if func3 != IOTINVAL_VMA or dw0 & IOTINVAL_GV:
                if not self.options["second_stage"]:
                    what = "IOTINVAL.VMA with GV=1" if func3 == IOTINVAL_VMA else "IOTINVAL.GVMA"
                    return f"{what} needs second-stage translation, which is not supported"
                return 0  # two-stage translations are never cached: nothing to drop
            if dw0 & IOTINVAL_RESERVED0 or dw1 & IOTINVAL_RESERVED1:
                return "IOTINVAL.VMA has reserved bits set"
            addr = (dw1 >> IOTINVAL_ADDR_SHIFT & ((1 << 52) - 1)) << PAGE_SHIFT if dw0 & IOTINVAL_AV else None
            pscid = (dw0 & IOTINVAL_PSCID_MASK) >> IOTINVAL_PSCID_SHIFT if dw0 & IOTINVAL_PSCV else None
            return self._iotinval_vma(addr, pscid)
        if opcode == Opcode.IODIR:
            if dw0 & IODIR_RESERVED0 or dw1:
                return "IODIR has reserved bits set"
            dv = bool(dw0 & IODIR_DV)
            did = dw0 >> IODIR_DID_SHIFT
            if func3 == IODIR_INVAL_DDT:
                if dw0 & (((1 << 20) - 1) << 12):
                    return "IODIR.INVAL_DDT has the reserved PID operand set"
                if not dv:
                    dropped = self._forget_contexts()
                elif self.mode.levels and did >= device_id_limit(self.mode.levels):
                    return f"IODIR.INVAL_DDT device ID {did} is wider than the {self.mode.label} directory allows"
                else:
                    dropped = self._forget_contexts(did)
                if TRACE.iommu_ddt_inval is not None:
                    TRACE.iommu_ddt_inval(device_id=did if dv else "all", dropped=dropped)
                return dropped
            if func3 == IODIR_INVAL_PDT:
                if not dv:
                    return "IODIR.INVAL_PDT needs DV=1"
                return 0  # no process directories: nothing cached
            return f"IODIR function {func3} is reserved"
        if opcode == Opcode.IOFENCE:
            if func3 != IOFENCE_C:
                return f"IOFENCE function {func3} is reserved"
            if dw0 & IOFENCE_RESERVED0 or dw1 >> 62:
                return "IOFENCE.C has reserved bits set"
            if dw0 & IOFENCE_AV:
                addr = (dw1 & IOFENCE_ADDR_MASK) << 2
                try:
                    self.phys.write_u32(addr, dw0 >> IOFENCE_DATA_SHIFT)
                except BusError:
                    return f"IOFENCE.C completion write to {addr:#x} is not RAM"
            if dw0 & IOFENCE_WSI:
                self.regs["CQCSR"] = self.regs["CQCSR"] | CQCSR_FENCE_W_IP
                if self.regs["CQCSR"] & CQCSR_CIE:
                    self.regs["IPSR"] = self.regs["IPSR"] | IPSR_CIP
                    self._update_irq()
            return 0
        if opcode == Opcode.ATS:
            return "ATS commands need capabilities.ATS, which is 0"
        return f"opcode {opcode} is reserved"


def _misconfiguration(dc: DeviceContext, *, second_stage: bool = False) -> str | None:
    """Why a valid base-format context is misconfigured for this IOMMU, or None."""
    bad = dc.tc & ~TC_SUPPORTED
    if bad:
        return (
            f"tc has reserved or unsupported bits {bad:#x} set (hwsim supports V, DTF, GADE, SADE; "
            f"no ATS, PRI, process directories, big-endian or Sv32)"
        )
    if dc.iohgatp_mode and not second_stage:
        return f"iohgatp.MODE={dc.iohgatp >> IOHGATP_MODE_SHIFT}: second-stage translation is not supported (only Bare)"
    if dc.iohgatp_mode and dc.iohgatp_mode not in HGATP_MODES:
        return f"iohgatp.MODE={dc.iohgatp_mode} is not a supported mode (0 Bare, 8 Sv39x4, 9 Sv48x4)"
    if dc.iohgatp_mode and dc.iohgatp & 3:
        return f"iohgatp.PPN {dc.iohgatp & IOHGATP_PPN_MASK:#x} is not aligned to the 16 KiB root table"
    if dc.ta & TA_RESERVED:
        return f"ta has reserved bits {dc.ta & TA_RESERVED:#x} set"
    if dc.iosatp_mode not in (0, *PAGING_MODES):
        return f"iosatp.MODE={dc.iosatp_mode} is not a supported mode (0 Bare, 8 Sv39, 9 Sv48)"
    if dc.fsc & IOSATP_RESERVED:
        return f"iosatp has reserved bits {dc.fsc & IOSATP_RESERVED:#x} set"
    return None
