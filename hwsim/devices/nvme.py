"""An NVMe controller (NVM Express Base Specification 1.4 subset) with one namespace on a raw disk image.

::

    driver: AQA, ASQ, ACQ --> CC (IOSQES 6, IOCQES 4, EN=1) --ready_ns--> CSTS.RDY
            SQ entries in memory --> SQyTDBL = tail --fetch (at the write)--> commands in flight
            each command --latency_ns (varied per seed: out of order)--> executed --> CQ entry with the
            phase tag, SQHD --> pin-based interrupt while a CQ holds entries --> CQyHDBL = head
            ... Delete I/O SQ, Delete I/O CQ --> CC.SHN --> CSTS.SHST complete --> CC.EN=0

Admin commands: Identify (CNS 0 namespace, 1 controller, 2 active namespace list), Create and Delete
I/O Submission and Completion Queue, Set and Get Features (Number of Queues).  NVM commands: Read,
Write, Flush.  Data moves through PRP1/PRP2 and PRP lists with the specification's rules (PRP1 may
start anywhere dword aligned, every later entry is page aligned, a list that needs more entries than
its page holds continues at the page its last entry names); SGLs, fused commands, metadata and MSI-X
are not supported.  Every queue and data access is a DMA request through the device's DMA port.

Timing: each command completes ``latency_ns`` after it is fetched, a figure the board's Timing varies
per seed, so with several commands in flight completions come back out of order; CC.EN -> CSTS.RDY
and a shutdown take ``ready_ns``.

The image is protected as virtio-blk's is: a Write is checked completely (namespace, range,
transfer size, read-only, PRPs), all its data is read through the IOMMU, and only then is the
image written, in one ``pwrite``.  Host memory follows validated lengths (MDTS), never what a
command claims.

Driver rules checked at the doorbells (each a device issue naming the doorbell and the value
written): a value beyond the queue's size; a tail moved over more entries than are free (from the
head the controller last reported) or over an all-zero entry; a command identifier reused while
that command is outstanding; a head moved past completions the controller has not posted (an entry
consumed with the wrong phase tag).  A queue whose memory the IOMMU refuses (freed while the
controller uses it) is reported with the queue's name and stops the controller (CSTS.CFS); the DMA
checker reports the same access as a DMA bug.
"""

from __future__ import annotations

import struct
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial

from ..trace import TRACE
from .base import Device, Option, OptionError, register_device
from .clock import ClockEvent
from .issues import IssueKind
from .nvme_bits import (
    ADMIN_NAMES,
    ADMIN_QID,
    AQA_ACQS_MASK,
    AQA_ACQS_SHIFT,
    AQA_ASQS_MASK,
    CC_AMS_MASK,
    CC_CSS_MASK,
    CC_EN,
    CC_IOCQES_MASK,
    CC_IOCQES_SHIFT,
    CC_IOSQES_MASK,
    CC_IOSQES_SHIFT,
    CC_MPS_MASK,
    CC_SHN_MASK,
    CC_SHN_SHIFT,
    CQE,
    CQE_SIZE,
    CQES,
    CREATE_CQ_IEN,
    CREATE_PC,
    CSTS_CFS,
    CSTS_RDY,
    CSTS_SHST_MASK,
    CSTS_SHST_SHIFT,
    FEATURE_NUMBER_OF_QUEUES,
    FIRMWARE,
    FR_BYTES,
    ID_CTRL_CNTLID,
    ID_CTRL_CQES,
    ID_CTRL_FR,
    ID_CTRL_MAXCMD,
    ID_CTRL_MDTS,
    ID_CTRL_MN,
    ID_CTRL_NN,
    ID_CTRL_SN,
    ID_CTRL_SQES,
    ID_CTRL_SSVID,
    ID_CTRL_VER,
    ID_CTRL_VID,
    ID_CTRL_VWC,
    ID_NS_FLBAS,
    ID_NS_LBAF0,
    ID_NS_NCAP,
    ID_NS_NLBAF,
    ID_NS_NSZE,
    ID_NS_NUSE,
    IDENTIFY_SIZE,
    IO_NAMES,
    LAYOUT_DEFAULTS,
    LBA_SIZE,
    LBADS,
    LBAF_LBADS_SHIFT,
    MN_BYTES,
    MODEL,
    NSID_ALL,
    NVME_LAYOUT,
    PAGE_SIZE,
    PRP_ENTRY,
    SHN_ABRUPT,
    SHN_NONE,
    SHST_COMPLETE,
    SHST_NORMAL,
    SHST_OCCURRING,
    SN_BYTES,
    SQE,
    SQE_SIZE,
    SQES,
    VENDOR_ID,
    VERSION_1_4,
    AdminOpcode,
    Cns,
    IoOpcode,
    Status,
    cq_doorbell,
    doorbell_offset,
    nvme_layout,
    sq_doorbell,
)
from .regs import RegisterLayout
from .virtio import DiskImage

_LAYOUTS: dict[tuple[int, ...], RegisterLayout] = {tuple(LAYOUT_DEFAULTS.values()): NVME_LAYOUT}


def _layout(options: dict) -> RegisterLayout:
    """The register map for these options (the doorbells and CAP depend on them)."""
    key = tuple(options[name] for name in LAYOUT_DEFAULTS)
    if key not in _LAYOUTS:
        _LAYOUTS[key] = nvme_layout(**{name: options[name] for name in LAYOUT_DEFAULTS})
    return _LAYOUTS[key]


def _entries(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


@dataclass(eq=False, slots=True)
class Command:
    """One fetched submission entry, as it was when the controller read it."""

    sq: SubmissionQueue
    slot: int
    dw0: int
    nsid: int
    prp1: int
    prp2: int
    cdw: tuple[int, ...]  # CDW10..CDW15
    conflict: bool = False  # its CID was in use by an outstanding command
    unwritten: bool = False  # all zeros: reported at the doorbell, so its failure is not reported again
    event: ClockEvent | None = None
    cause: str = ""  # the doorbell write that submitted it (the driver's C line)

    @property
    def opcode(self) -> int:
        return self.dw0 & 0xFF

    @property
    def cid(self) -> int:
        return self.dw0 >> 16

    @property
    def fuse(self) -> int:
        return self.dw0 >> 8 & 0x3

    @property
    def psdt(self) -> int:
        return self.dw0 >> 14 & 0x3

    @property
    def name(self) -> str:
        names = ADMIN_NAMES if self.sq.qid == ADMIN_QID else IO_NAMES
        op = names.get(self.opcode, f"opcode {self.opcode:#04x}")
        return f"{self.sq.name} entry {self.slot} (CID {self.cid}, {op})"


@dataclass(eq=False)
class SubmissionQueue:
    qid: int
    base: int  # IOVA
    size: int  # entries
    cqid: int
    head: int = 0  # the next entry the controller fetches
    tail: int = 0  # the driver's last tail doorbell
    reported_head: int = 0  # the SQ head the controller last posted (SQHD): what the driver can know
    outstanding: dict[int, Command] = field(default_factory=dict)  # CID -> command fetched, not yet posted
    in_flight: list[Command] = field(default_factory=list)  # fetched, not yet executed

    @property
    def name(self) -> str:
        return "admin SQ" if self.qid == ADMIN_QID else f"I/O SQ {self.qid}"

    @property
    def span(self) -> tuple[int, int]:
        return self.base, self.base + self.size * SQE_SIZE


@dataclass(eq=False, slots=True)
class _Completion:
    command: Command
    status: Status
    dw0: int


@dataclass(eq=False)
class CompletionQueue:
    qid: int
    base: int
    size: int
    interrupts: bool
    tail: int = 0  # the next entry the controller posts
    head: int = 0  # the driver's last head doorbell
    phase: int = 1  # the phase tag of the current pass
    waiting: deque[_Completion] = field(default_factory=deque)  # held while the queue is full
    sqs: set[int] = field(default_factory=set)

    @property
    def name(self) -> str:
        return "admin CQ" if self.qid == ADMIN_QID else f"I/O CQ {self.qid}"

    @property
    def span(self) -> tuple[int, int]:
        return self.base, self.base + self.size * CQE_SIZE

    @property
    def full(self) -> bool:
        return (self.tail + 1) % self.size == self.head

    @property
    def unconsumed(self) -> int:
        """Posted entries the driver has not released with the head doorbell."""
        return (self.tail - self.head) % self.size


@register_device
class NvmeController(Device):
    TYPE = "nvme"
    DESCRIPTION = "NVMe controller (NVMe 1.4 subset: admin and I/O queue pairs, PRPs, one namespace on a raw image)"
    LAYOUT = NVME_LAYOUT
    DOES_DMA = True
    FAULTS = {
        "status": "a command (admin or I/O, counted in execution order) completes with Internal Error "
        "(generic status 0x06) instead of executing",
        "media": "a Read completes with Unrecovered Read Error (media status 0x81); no data is transferred",
        "cfs": "the controller fails when it executes a command: CSTS.CFS is set and it processes nothing "
        "more until a reset (CC.EN 1 -> 0)",
    }
    OPTIONS = {
        "image": Option(str, "", "raw disk-image file (a multiple of 512 bytes): namespace 1; empty: 0 blocks"),
        "readonly": Option(bool, False, "open the image read-only: Writes complete with Namespace is Write Protected"),
        "io_queues": Option(
            int, LAYOUT_DEFAULTS["io_queues"], "I/O queue pairs the controller offers", minimum=1, maximum=64
        ),
        "max_queue_entries": Option(
            int,
            LAYOUT_DEFAULTS["max_queue_entries"],
            "entries of the largest queue (CAP.MQES + 1)",
            minimum=2,
            maximum=4096,
        ),
        "doorbell_stride": Option(
            int,
            LAYOUT_DEFAULTS["doorbell_stride"],
            "CAP.DSTRD: doorbells are 4 << DSTRD bytes apart",
            minimum=0,
            maximum=4,
        ),
        "mdts": Option(
            int, 5, "maximum data transfer size, 2^mdts pages of 4 KiB (Identify MDTS)", minimum=1, maximum=8
        ),
        "latency_ns": Option(
            int, 10_000, "virtual ns from fetching a command to its completion", minimum=0, maximum=10**9
        ),
        "ready_ns": Option(
            int,
            LAYOUT_DEFAULTS["ready_ns"],
            "virtual ns of CC.EN -> CSTS.RDY, of a reset, and of a shutdown",
            minimum=0,
            maximum=10**9,
        ),
        "serial": Option(str, "hwsim-nvme", "the Identify serial number (at most 20 bytes)"),
    }

    def __init__(self, *, name: str, dma=None, **kw) -> None:
        options = self.resolve_options({k: v for k, v in kw.items() if k in self.OPTIONS})
        self.LAYOUT = _layout(options)  # per-instance map
        super().__init__(name=name, **kw)
        self.dma_port = dma  # a hwsim.iommu.DmaPort: every queue and data access goes through the IOMMU
        self.disk = DiskImage(self.options["image"], readonly=self.options["readonly"])
        self.max_transfer = PAGE_SIZE << self.options["mdts"]
        self.sqs: dict[int, SubmissionQueue] = {}
        self.cqs: dict[int, CompletionQueue] = {}
        self._state_event: ClockEvent | None = None  # a pending RDY change or shutdown completion
        self._init_state()
        r = self.regs
        r.on_read("INTMS", self._read_mask)
        r.on_read("INTMC", self._read_mask)
        r.on_write("INTMS", self._write_intms)
        r.on_write("INTMC", self._write_intmc)
        r.on_write("CC", self._write_cc)
        for reg in ("AQA", "ASQ_LO", "ASQ_HI", "ACQ_LO", "ACQ_HI"):
            r.on_write(reg, partial(self._write_admin_attribute, reg))
        for q in range(1 + self.options["io_queues"]):
            r.on_write(sq_doorbell(q), partial(self._write_sq_tail, q))
            r.on_write(cq_doorbell(q), partial(self._write_cq_head, q))

    @classmethod
    def check_options(cls, options) -> None:
        if len(options["serial"].encode()) > SN_BYTES:
            raise OptionError("serial", f"must be at most {SN_BYTES} bytes")

    @classmethod
    def required_size(cls, options) -> int:
        return doorbell_offset(2 * (1 + options["io_queues"]), options["doorbell_stride"])

    # -- state ---------------------------------------------------------------------------------------------

    def _init_state(self) -> None:
        """Power-on state beyond the registers (the register file has just been reset)."""
        o = self.options
        self._mask = 0
        self._enabled = False  # CC.EN accepted (the admin queues exist)
        self._io_created = False  # an I/O queue was created since the last enable (Set Features then fails)
        self._nsq = self._ncq = o["io_queues"]  # I/O queues allocated (Set Features, Number of Queues)
        self._stop_everything()

    def _reset(self) -> None:
        self._init_state()
        self._update_irq()

    def _stop_everything(self) -> None:
        for sq in self.sqs.values():
            for cmd in sq.in_flight:
                if cmd.event is not None:
                    cmd.event.cancel()
        self.sqs.clear()
        self.cqs.clear()
        if self._state_event is not None:
            self._state_event.cancel()
            self._state_event = None

    @property
    def busy(self) -> bool:
        """Work in flight: commands fetched and not yet executed, or a pending RDY change or shutdown."""
        return self._state_event is not None or any(sq.in_flight for sq in self.sqs.values())

    @property
    def blocks(self) -> int:
        """Namespace 1's size in 512-byte blocks."""
        return self.disk.sectors

    @property
    def csts(self) -> int:
        return self.regs["CSTS"]

    @property
    def shutdown_state(self) -> int:
        return (self.csts & CSTS_SHST_MASK) >> CSTS_SHST_SHIFT

    def _set_csts(self, *, set_bits: int = 0, clear_bits: int = 0) -> None:
        self.regs["CSTS"] = self.regs["CSTS"] & ~clear_bits | set_bits

    def _set_shst(self, state: int) -> None:
        self._set_csts(clear_bits=CSTS_SHST_MASK, set_bits=state << CSTS_SHST_SHIFT)

    def _ticks(self, ns: int) -> int:
        return -(-ns * self.clock.frequency_hz // 1_000_000_000)

    def _read_mask(self) -> int:
        return self._mask

    def _write_intms(self, new: int, _old: int) -> None:
        self._mask = (self._mask | new) & 1  # write 1 to set
        self._update_irq()

    def _write_intmc(self, new: int, _old: int) -> None:
        self._mask &= ~new  # write 1 to clear
        self._update_irq()

    def _update_irq(self) -> None:
        """Pin-based: the line is high while a CQ with interrupts enabled holds entries the driver has not
        released, unless vector 0 is masked (INTMS)."""
        self.irq.set(not self._mask and any(cq.interrupts and cq.tail != cq.head for cq in self.cqs.values()))

    # -- controller registers --------------------------------------------------------------------------------

    def _write_admin_attribute(self, reg: str, new: int, old: int) -> None:
        if self.regs["CC"] & CC_EN:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"write of {new:#x} while CC.EN is 1: the admin queue attributes may only change while "
                f"the controller is disabled (ignored)",
            )
            self.regs[reg] = old

    def _write_cc(self, new: int, old: int) -> None:
        fixed = CC_CSS_MASK | CC_MPS_MASK | CC_AMS_MASK
        if old & new & CC_EN and (old ^ new) & fixed:
            self.report(
                IssueKind.BAD_VALUE,
                register="CC",
                detail=f"write of {new:#x} changes CSS, MPS or AMS while CC.EN is 1; they may only change while "
                f"the controller is disabled (ignored)",
            )
            new = new & ~fixed | old & fixed
            self.regs["CC"] = new
        if new & CC_EN and not old & CC_EN:
            self._enable(new)
        elif old & CC_EN and not new & CC_EN:
            self._disable()
        shn = (new & CC_SHN_MASK) >> CC_SHN_SHIFT
        if shn != SHN_NONE and shn != (old & CC_SHN_MASK) >> CC_SHN_SHIFT and new & CC_EN:
            self._shutdown(shn)
        elif shn != SHN_NONE and not new & CC_EN and not old & CC_EN:
            self.report(
                IssueKind.BAD_VALUE,
                register="CC",
                detail=f"write of {new:#x} sets SHN while the controller is disabled (nothing to shut down)",
            )

    def _enable(self, cc: int) -> None:
        if self.csts & CSTS_RDY:
            self.report(
                IssueKind.BAD_VALUE,
                register="CC",
                detail="EN set to 1 while CSTS.RDY is still 1 from before the reset: wait for CSTS.RDY to clear "
                "after clearing CC.EN",
            )
        self._stop_everything()
        self._set_csts(clear_bits=CSTS_RDY | CSTS_CFS | CSTS_SHST_MASK)
        aqa = self.regs["AQA"]
        asqs, acqs = (aqa & AQA_ASQS_MASK) + 1, ((aqa & AQA_ACQS_MASK) >> AQA_ACQS_SHIFT) + 1
        problem = None
        if cc & (CC_CSS_MASK | CC_AMS_MASK):
            problem = "CSS or AMS other than 0 (the NVM command set, round robin)"
        elif cc & CC_MPS_MASK:
            problem = "MPS other than 0 (the controller supports 4 KiB pages only: CAP.MPSMIN = MPSMAX = 0)"
        elif asqs < 2 or acqs < 2:
            problem = f"AQA {aqa:#x}: the admin queues need at least 2 entries each"
        if problem is not None:
            self.report(
                IssueKind.BAD_VALUE,
                register="CC",
                detail=f"EN set with {problem}: the controller fails to start (CSTS.CFS)",
            )
            self._set_csts(set_bits=CSTS_CFS)
            return
        self._enabled = True
        self._io_created = False
        self._nsq = self._ncq = self.options["io_queues"]
        asq = self.regs["ASQ_HI"] << 32 | self.regs["ASQ_LO"]
        acq = self.regs["ACQ_HI"] << 32 | self.regs["ACQ_LO"]
        self.cqs[ADMIN_QID] = CompletionQueue(ADMIN_QID, acq, acqs, interrupts=True)
        self.sqs[ADMIN_QID] = SubmissionQueue(ADMIN_QID, asq, asqs, ADMIN_QID)
        self.cqs[ADMIN_QID].sqs.add(ADMIN_QID)
        self._after(self.options["ready_ns"], "ready", lambda: self._set_csts(set_bits=CSTS_RDY))

    def _disable(self) -> None:
        """CC.EN 1 -> 0: a controller reset.  Queues and commands in flight are dropped at once; CSTS.RDY
        clears after ready_ns."""
        self._stop_everything()
        self._enabled = False
        self._set_csts(clear_bits=CSTS_CFS | CSTS_SHST_MASK)
        self._update_irq()
        if self.csts & CSTS_RDY:
            self._after(self.options["ready_ns"], "reset", lambda: self._set_csts(clear_bits=CSTS_RDY))

    def _after(self, ns: int, what: str, action) -> None:
        ticks = self.timing.delay(self._ticks(ns), f"{self.name} {what}")

        def fire() -> None:
            self._state_event = None
            action()

        if ticks == 0:
            action()
            return
        self._state_event = self.clock.schedule_in(ticks, fire)

    def _shutdown(self, kind: int) -> None:
        if not self._enabled or not self.csts & CSTS_RDY or self.csts & CSTS_CFS:
            self.report(
                IssueKind.BAD_VALUE,
                register="CC",
                detail="SHN set while the controller is not ready (CSTS.RDY 0 or CSTS.CFS 1) (ignored)",
            )
            return
        if self.shutdown_state != SHST_NORMAL:
            return
        self._set_shst(SHST_OCCURRING)
        if kind == SHN_ABRUPT:  # no more completions: commands in flight are dropped
            for sq in self.sqs.values():
                for cmd in sq.in_flight:
                    if cmd.event is not None:
                        cmd.event.cancel()
                sq.in_flight.clear()
            for cq in self.cqs.values():
                cq.waiting.clear()
        self._maybe_finish_shutdown()

    def _maybe_finish_shutdown(self) -> None:
        if self.shutdown_state != SHST_OCCURRING or self._state_event is not None:
            return
        if any(sq.in_flight for sq in self.sqs.values()) or any(cq.waiting for cq in self.cqs.values()):
            return  # a normal shutdown completes the commands in flight first

        def done() -> None:
            try:
                self.disk.flush()
            except OSError as exc:
                self.report(IssueKind.PROTOCOL, detail=f"host I/O error flushing the image at shutdown: {exc}")
            self._set_shst(SHST_COMPLETE)

        self._after(self.options["ready_ns"], "shutdown", done)

    def _controller_fatal(self) -> None:
        """CSTS.CFS: nothing more is processed (commands in flight are dropped) until a reset."""
        self._set_csts(set_bits=CSTS_CFS)
        for sq in self.sqs.values():
            for cmd in sq.in_flight:
                if cmd.event is not None:
                    cmd.event.cancel()
            sq.in_flight.clear()

    # -- doorbells ---------------------------------------------------------------------------------------------

    def _doorbell_refused(self, reg: str, value: int, *, submission: bool) -> bool:
        """True (after reporting why, if it is the driver's doing) when the controller takes no doorbell now."""
        csts = self.csts
        if csts & CSTS_CFS:
            return True  # the controller has failed: the driver learns it from CSTS, not from us
        why = None
        if not self._enabled:
            why = "while the controller is disabled (CC.EN 0)"
        elif not csts & CSTS_RDY:
            why = "before CSTS.RDY: wait for the controller to be ready"
        elif submission and self.shutdown_state != SHST_NORMAL:
            why = "after a shutdown began (CC.SHN): the controller takes no new commands until a reset"
        if why is None:
            return False
        self.report(IssueKind.BAD_VALUE, register=reg, detail=f"write of {value} {why} (ignored)")
        return True

    def _doorbell_queue(self, queues: dict, qid: int, value: int, reg: str, kind: str, pointer: str):
        """The queue a doorbell write names, or None (reported) when it does not exist or ``value`` is
        past its last entry."""
        queue = queues.get(qid)
        if queue is None:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"write of {value}: {kind} queue {qid} does not exist (ignored)",
            )
            return None
        if value >= queue.size:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"write of {value}: beyond the {queue.size}-entry {queue.name} "
                f"(a {pointer} is 0..{queue.size - 1}) (ignored)",
            )
            return None
        return queue

    def _write_sq_tail(self, qid: int, value: int, _old: int = 0) -> None:
        reg = sq_doorbell(qid)
        if self._doorbell_refused(reg, value, submission=True):
            return
        self.started_here()
        sq = self._doorbell_queue(self.sqs, qid, value, reg, "submission", "tail")
        if sq is None:
            return
        added = (value - sq.tail) % sq.size
        free = sq.size - 1 - (sq.tail - sq.reported_head) % sq.size
        if added > free:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"write of {value}: moves the tail of {sq.name} over {_entries(added)}, but only {free} "
                f"{'was' if free == 1 else 'were'} free (the controller last reported head {sq.reported_head}; a "
                f"{sq.size}-entry queue holds at most {sq.size - 1} commands)",
            )
        sq.tail = value
        self._fetch(sq, reg)

    def _fetch(self, sq: SubmissionQueue, reg: str) -> None:
        """Read every entry between the head and the new tail; each becomes a command in flight."""
        port = self.dma_port
        while sq.head != sq.tail:
            slot = sq.head
            iova = sq.base + slot * SQE_SIZE
            if port is None:
                self._queue_memory_failed(f"reading entry {slot} of {sq.name}", iova, None)
                return
            result = port.read(iova, SQE_SIZE)
            if not result.ok:
                self._queue_memory_failed(f"reading entry {slot} of {sq.name}", iova, result.fault)
                return
            sq.head = (slot + 1) % sq.size
            raw = result.data
            unwritten = not any(raw)
            if unwritten:
                self.report(
                    IssueKind.BAD_VALUE,
                    register=reg,
                    detail=f"write of {sq.tail}: the tail moved over entry {slot} of {sq.name}, which is all "
                    f"zeros (never written?)",
                )
            dw0, nsid, _cdw2, _cdw3, _mptr, prp1, prp2, *cdw = SQE.unpack(raw)
            cmd = Command(sq, slot, dw0, nsid, prp1, prp2, tuple(cdw), unwritten=unwritten)
            other = sq.outstanding.get(cmd.cid)
            if other is not None:
                cmd.conflict = True
                self.report(
                    IssueKind.BAD_VALUE,
                    register=reg,
                    detail=f"write of {sq.tail}: entry {slot} of {sq.name} reuses command identifier {cmd.cid} "
                    f"while the command fetched from entry {other.slot} with that identifier is outstanding",
                )
            else:
                sq.outstanding[cmd.cid] = cmd
            sq.in_flight.append(cmd)
            ticks = self.timing.delay(self._ticks(self.options["latency_ns"]), f"{self.name} command")
            cmd.cause = self.work_cause
            cmd.event = self.clock.schedule_in(ticks, partial(self._execute, cmd))

    def _write_cq_head(self, qid: int, value: int, _old: int = 0) -> None:
        reg = cq_doorbell(qid)
        if self._doorbell_refused(reg, value, submission=False):
            return
        cq = self._doorbell_queue(self.cqs, qid, value, reg, "completion", "head")
        if cq is None:
            return
        released = (value - cq.head) % cq.size
        if released > cq.unconsumed:
            self.report(
                IssueKind.BAD_VALUE,
                register=reg,
                detail=f"write of {value}: moves the head of {cq.name} past {_entries(released - cq.unconsumed)} "
                f"the controller has not posted (a completion consumed with the wrong phase tag?) (ignored)",
            )
            return
        cq.head = value
        self._post(cq)
        self._update_irq()
        self._maybe_finish_shutdown()

    def _queue_memory_failed(self, what: str, iova: int, fault) -> None:
        cause = f"{fault.cause.describe} ({fault.reason})" if fault is not None else "the device has no DMA port"
        self.report(
            IssueKind.PROTOCOL,
            detail=f"{what} at iova {iova:#x} failed: {cause}; a queue's memory must stay mapped while the queue "
            f"exists (controller fatal status)",
        )
        self._controller_fatal()

    # -- commands ----------------------------------------------------------------------------------------------

    def _execute(self, cmd: Command) -> None:
        cmd.event = None
        self.work_cause = cmd.cause or self.work_cause
        sq = cmd.sq
        if cmd in sq.in_flight:
            sq.in_flight.remove(cmd)
        if self.fault("cfs"):
            self._controller_fatal()
            return
        if cmd.conflict:
            status, dw0 = Status.CID_CONFLICT, 0
        elif self.fault("status"):
            status, dw0 = Status.INTERNAL_ERROR, 0
        elif cmd.fuse or cmd.psdt:
            what = f"FUSE {cmd.fuse}: fused operations are" if cmd.fuse else f"PSDT {cmd.psdt}: SGLs are"
            status, dw0 = self._bad(cmd, Status.INVALID_FIELD, f"{what} not supported"), 0
        elif sq.qid == ADMIN_QID:
            status, dw0 = self._admin(cmd)
        else:
            status, dw0 = self._io(cmd), 0
        self._complete(cmd, status, dw0)

    def _bad(self, cmd: Command, status: Status, detail: str) -> Status:
        """A command the driver got wrong: an issue (unless it was never written, which the doorbell reported),
        and the status it completes with."""
        if not cmd.unwritten:
            self.report(IssueKind.PROTOCOL, detail=f"{cmd.name}: {detail}: {status.text}")
        return status

    def _complete(self, cmd: Command, status: Status, dw0: int = 0) -> None:
        cq = self.cqs.get(cmd.sq.cqid)
        if cq is None:  # the CQ went away (a reset); nothing to post to
            return
        cq.waiting.append(_Completion(cmd, status, dw0))
        self._post(cq)
        self._update_irq()
        self._maybe_finish_shutdown()

    def _post(self, cq: CompletionQueue) -> None:
        """Write waiting completions while the queue has room (a full queue holds them until the driver
        releases entries)."""
        while cq.waiting and not cq.full and not self.csts & CSTS_CFS:
            entry = cq.waiting.popleft()
            cmd = entry.command
            sq = cmd.sq
            data = CQE.pack(entry.dw0, 0, sq.head, sq.qid, cmd.cid, entry.status.field << 1 | cq.phase)
            iova = cq.base + cq.tail * CQE_SIZE
            result = self.dma_port.write(iova, data) if self.dma_port is not None else None
            if result is None or not result.ok:
                self._queue_memory_failed(
                    f"posting entry {cq.tail} of {cq.name}", iova, result.fault if result is not None else None
                )
                return
            if TRACE.nvme_complete is not None:
                TRACE.nvme_complete(device=self.name, sqid=sq.qid, cid=cmd.cid, status=entry.status.text)
            if sq.outstanding.get(cmd.cid) is cmd:
                del sq.outstanding[cmd.cid]
            sq.reported_head = sq.head
            cq.tail = (cq.tail + 1) % cq.size
            if cq.tail == 0:
                cq.phase ^= 1

    # -- admin commands --------------------------------------------------------------------------------------

    def _admin(self, cmd: Command) -> tuple[Status, int]:
        handler = _ADMIN_COMMANDS.get(cmd.opcode)
        if handler is None:
            return self._bad(cmd, Status.INVALID_OPCODE, "not an admin command this controller implements"), 0
        return handler(self, cmd)

    def _identify(self, cmd: Command) -> tuple[Status, int]:
        cns = cmd.cdw[0] & 0xFF
        if cns == Cns.CONTROLLER:
            data = self._identify_controller()
        elif cns == Cns.NAMESPACE:
            if cmd.nsid != 1:
                return self._bad(cmd, Status.INVALID_NAMESPACE, f"namespace {cmd.nsid} does not exist (NN is 1)"), 0
            data = self._identify_namespace()
        elif cns == Cns.ACTIVE_NAMESPACES:
            if cmd.nsid >= NSID_ALL - 1:
                return self._bad(cmd, Status.INVALID_NAMESPACE, f"NSID {cmd.nsid:#x} cannot start a list"), 0
            data = struct.pack("<I", 1) if cmd.nsid < 1 else b""
        else:
            return self._bad(cmd, Status.INVALID_FIELD, f"CNS {cns:#x} is not supported (0, 1 and 2 are)"), 0
        return self._to_host(cmd, data.ljust(IDENTIFY_SIZE, b"\0")), 0

    def _identify_controller(self) -> bytes:
        o = self.options
        data = bytearray(IDENTIFY_SIZE)
        struct.pack_into("<H", data, ID_CTRL_VID, VENDOR_ID)
        struct.pack_into("<H", data, ID_CTRL_SSVID, VENDOR_ID)
        data[ID_CTRL_SN : ID_CTRL_SN + SN_BYTES] = o["serial"].encode().ljust(SN_BYTES)
        data[ID_CTRL_MN : ID_CTRL_MN + MN_BYTES] = MODEL.encode().ljust(MN_BYTES)
        data[ID_CTRL_FR : ID_CTRL_FR + FR_BYTES] = FIRMWARE.encode().ljust(FR_BYTES)
        data[ID_CTRL_MDTS] = o["mdts"]
        struct.pack_into("<H", data, ID_CTRL_CNTLID, 0)
        struct.pack_into("<I", data, ID_CTRL_VER, VERSION_1_4)
        data[ID_CTRL_SQES] = SQES << 4 | SQES
        data[ID_CTRL_CQES] = CQES << 4 | CQES
        struct.pack_into("<H", data, ID_CTRL_MAXCMD, o["max_queue_entries"])
        struct.pack_into("<I", data, ID_CTRL_NN, 1)  # one namespace
        data[ID_CTRL_VWC] = 1  # a volatile write cache: Flush makes writes durable (fsync)
        return bytes(data)

    def _identify_namespace(self) -> bytes:
        data = bytearray(IDENTIFY_SIZE)
        for offset in (ID_NS_NSZE, ID_NS_NCAP, ID_NS_NUSE):  # size, capacity, utilisation: the whole image
            struct.pack_into("<Q", data, offset, self.blocks)
        data[ID_NS_NLBAF] = 0  # one LBA format (0's based)
        data[ID_NS_FLBAS] = 0
        struct.pack_into("<I", data, ID_NS_LBAF0, LBADS << LBAF_LBADS_SHIFT)
        return bytes(data)

    def _features(self, cmd: Command) -> tuple[Status, int]:
        fid = cmd.cdw[0] & 0xFF
        if fid != FEATURE_NUMBER_OF_QUEUES:
            return self._bad(cmd, Status.INVALID_FIELD, f"feature {fid:#04x} is not supported (Number of Queues is)"), 0
        if cmd.opcode == AdminOpcode.SET_FEATURES:
            nsqr, ncqr = cmd.cdw[1] & 0xFFFF, cmd.cdw[1] >> 16
            if 0xFFFF in (nsqr, ncqr):
                return self._bad(cmd, Status.INVALID_FIELD, "Number of Queues: 65535 (0's based) is not allowed"), 0
            if self._io_created:
                return self._bad(
                    cmd, Status.COMMAND_SEQUENCE_ERROR, "Number of Queues set after I/O queues were created"
                ), 0
            n = self.options["io_queues"]
            self._nsq, self._ncq = min(nsqr + 1, n), min(ncqr + 1, n)
        return Status.SUCCESS, (self._ncq - 1) << 16 | (self._nsq - 1)

    def _check_new_queue(self, cmd: Command, kind: str, qid: int, size: int, limit: int, base: int) -> Status | None:
        """What Create I/O SQ and CQ share: identifier, size, contiguity, page alignment, overlap."""
        existing = self.sqs if kind == "submission" else self.cqs
        if qid == ADMIN_QID or qid > limit:
            return self._bad(cmd, Status.INVALID_QUEUE_IDENTIFIER, f"queue identifier {qid} is not in 1..{limit}")
        if qid in existing:
            return self._bad(cmd, Status.INVALID_QUEUE_IDENTIFIER, f"{kind} queue {qid} already exists")
        most = self.options["max_queue_entries"]
        if not 2 <= size <= most:
            return self._bad(cmd, Status.INVALID_QUEUE_SIZE, f"{size} entries is not in 2..{most} (CAP.MQES + 1)")
        if not cmd.cdw[1] & CREATE_PC:
            return self._bad(cmd, Status.INVALID_FIELD, "PC 0: the controller requires contiguous queues (CAP.CQR)")
        if base & (PAGE_SIZE - 1):
            return self._bad(cmd, Status.INVALID_PRP_OFFSET, f"the queue's base {base:#x} is not page aligned")
        entry = SQE_SIZE if kind == "submission" else CQE_SIZE
        clash = self._queue_memory(base, size * entry)
        if clash is not None:
            return self._bad(cmd, Status.INVALID_FIELD, f"the queue's memory overlaps the memory of {clash}")
        return None

    def _create_cq(self, cmd: Command) -> tuple[Status, int]:
        qid, size = cmd.cdw[0] & 0xFFFF, (cmd.cdw[0] >> 16) + 1
        bad = self._check_new_queue(cmd, "completion", qid, size, self._ncq, cmd.prp1)
        if bad is not None:
            return bad, 0
        vector = cmd.cdw[1] >> 16
        if vector:
            return self._bad(
                cmd, Status.INVALID_INTERRUPT_VECTOR, f"vector {vector}: pin-based interrupts have vector 0"
            ), 0
        iocqes = (self.regs["CC"] & CC_IOCQES_MASK) >> CC_IOCQES_SHIFT
        if iocqes != CQES:
            return self._bad(cmd, Status.INVALID_FIELD, f"CC.IOCQES is {iocqes}, not {CQES} (16-byte entries)"), 0
        self.cqs[qid] = CompletionQueue(qid, cmd.prp1, size, interrupts=bool(cmd.cdw[1] & CREATE_CQ_IEN))
        self._io_created = True
        return Status.SUCCESS, 0

    def _create_sq(self, cmd: Command) -> tuple[Status, int]:
        qid, size = cmd.cdw[0] & 0xFFFF, (cmd.cdw[0] >> 16) + 1
        bad = self._check_new_queue(cmd, "submission", qid, size, self._nsq, cmd.prp1)
        if bad is not None:
            return bad, 0
        cqid = cmd.cdw[1] >> 16
        if cqid == ADMIN_QID or cqid not in self.cqs:
            return self._bad(cmd, Status.COMPLETION_QUEUE_INVALID, f"completion queue {cqid} does not exist"), 0
        iosqes = (self.regs["CC"] & CC_IOSQES_MASK) >> CC_IOSQES_SHIFT
        if iosqes != SQES:
            return self._bad(cmd, Status.INVALID_FIELD, f"CC.IOSQES is {iosqes}, not {SQES} (64-byte entries)"), 0
        self.sqs[qid] = SubmissionQueue(qid, cmd.prp1, size, cqid)
        self.cqs[cqid].sqs.add(qid)
        self._io_created = True
        return Status.SUCCESS, 0

    def _delete_sq(self, cmd: Command) -> tuple[Status, int]:
        qid = cmd.cdw[0] & 0xFFFF
        sq = self.sqs.get(qid)
        if qid == ADMIN_QID or sq is None:
            return self._bad(cmd, Status.INVALID_QUEUE_IDENTIFIER, f"submission queue {qid} does not exist"), 0
        for victim in list(sq.in_flight):  # aborted, and completed before the Delete itself
            if victim.event is not None:
                victim.event.cancel()
            sq.in_flight.remove(victim)
            self._complete(victim, Status.ABORTED_SQ_DELETION)
        self.cqs[sq.cqid].sqs.discard(qid)
        del self.sqs[qid]
        return Status.SUCCESS, 0

    def _delete_cq(self, cmd: Command) -> tuple[Status, int]:
        qid = cmd.cdw[0] & 0xFFFF
        cq = self.cqs.get(qid)
        if qid == ADMIN_QID or cq is None:
            return self._bad(cmd, Status.INVALID_QUEUE_IDENTIFIER, f"completion queue {qid} does not exist"), 0
        if cq.sqs:
            users = ", ".join(str(q) for q in sorted(cq.sqs))
            return self._bad(cmd, Status.INVALID_QUEUE_DELETION, f"I/O SQ {users} still uses it: delete it first"), 0
        del self.cqs[qid]
        self._update_irq()
        return Status.SUCCESS, 0

    # -- NVM commands --------------------------------------------------------------------------------------

    def _io(self, cmd: Command) -> Status:
        op = cmd.opcode
        if op not in (IoOpcode.FLUSH, IoOpcode.WRITE, IoOpcode.READ):
            return self._bad(cmd, Status.INVALID_OPCODE, "not an NVM command this controller implements")
        if op == IoOpcode.FLUSH:
            if cmd.nsid not in (1, NSID_ALL):
                return self._bad(cmd, Status.INVALID_NAMESPACE, f"namespace {cmd.nsid} does not exist (NN is 1)")
            try:
                self.disk.flush()
            except OSError as exc:
                self.report(IssueKind.PROTOCOL, detail=f"host I/O error flushing the image: {exc}")
                return Status.INTERNAL_ERROR
            return Status.SUCCESS
        if cmd.nsid != 1:
            return self._bad(cmd, Status.INVALID_NAMESPACE, f"namespace {cmd.nsid} does not exist (NN is 1)")
        slba = cmd.cdw[0] | cmd.cdw[1] << 32
        nlb = (cmd.cdw[2] & 0xFFFF) + 1
        length = nlb * LBA_SIZE
        if length > self.max_transfer:
            return self._bad(
                cmd, Status.INVALID_FIELD, f"{nlb} blocks ({length} bytes) exceed MDTS ({self.max_transfer} bytes)"
            )
        if slba + nlb > self.blocks:
            return self._bad(
                cmd,
                Status.LBA_OUT_OF_RANGE,
                f"blocks {slba}..{slba + nlb - 1} are beyond the namespace's {self.blocks} blocks",
            )
        if op == IoOpcode.WRITE and self.disk.readonly:
            return self._bad(cmd, Status.WRITE_PROTECTED, "the image is read-only")
        if op == IoOpcode.READ:
            if self.fault("media"):
                return Status.UNRECOVERED_READ_ERROR
            try:
                data = self.disk.read(slba, length)
            except OSError as exc:
                self.report(IssueKind.PROTOCOL, detail=f"host I/O error reading the image: {exc}")
                return Status.INTERNAL_ERROR
            return self._to_host(cmd, data)
        payload = self._from_host(cmd, length)
        if isinstance(payload, Status):
            return payload
        try:
            self.disk.write(slba, payload)
        except OSError as exc:
            self.report(IssueKind.PROTOCOL, detail=f"host I/O error writing the image: {exc}")
            return Status.INTERNAL_ERROR
        return Status.SUCCESS

    # -- data transfer: PRPs -----------------------------------------------------------------------------------

    def _prp_segments(self, cmd: Command, length: int) -> list[tuple[int, int]] | Status:
        """The (iova, length) pieces of a ``length``-byte transfer (already bounded by MDTS), or the status
        of a bad PRP.  PRP1 may have a dword-aligned offset; PRP2 is the second page, or (when more than two
        pages are needed) a PRP list pointer, qword aligned; list entries are page aligned, and a list that
        needs more entries than its page holds continues at the page its last entry names."""
        prp1, prp2 = cmd.prp1, cmd.prp2
        if prp1 & 0x3:
            return self._bad(cmd, Status.INVALID_PRP_OFFSET, f"PRP1 {prp1:#x} is not dword aligned")
        first = min(length, PAGE_SIZE - (prp1 & (PAGE_SIZE - 1)))
        segments = [(prp1, first)]
        rest = length - first
        if rest == 0:
            return self._check_overlap(cmd, segments)
        if rest <= PAGE_SIZE:
            if prp2 & (PAGE_SIZE - 1):
                return self._bad(
                    cmd, Status.INVALID_PRP_OFFSET, f"PRP2 {prp2:#x} (the second page) is not page aligned"
                )
            return self._check_overlap(cmd, [*segments, (prp2, rest)])
        if prp2 & (PRP_ENTRY - 1):
            return self._bad(
                cmd, Status.INVALID_PRP_OFFSET, f"PRP2 {prp2:#x} (a PRP list pointer) is not qword aligned"
            )
        needed = -(-rest // PAGE_SIZE)  # data pages the list names
        pointer = prp2
        while needed:
            room = (PAGE_SIZE - (pointer & (PAGE_SIZE - 1))) // PRP_ENTRY  # entries left in this list page
            count = needed if needed <= room else room  # when the page cannot hold them all, the last is a link
            result = self.dma_port.read(pointer, count * PRP_ENTRY)
            if not result.ok:
                return self._bad(
                    cmd,
                    Status.DATA_TRANSFER_ERROR,
                    f"the IOMMU refused the PRP list at {pointer:#x} (see its fault log)",
                )
            entries = struct.unpack(f"<{count}Q", result.data)
            if needed > room:
                entries, link = entries[:-1], entries[-1]
            else:
                link = None
            for k, entry in enumerate(entries):
                if entry & (PAGE_SIZE - 1):
                    where = pointer + k * PRP_ENTRY
                    return self._bad(
                        cmd, Status.INVALID_PRP_OFFSET, f"PRP list entry {entry:#x} at {where:#x} is not page aligned"
                    )
                segments.append((entry, min(PAGE_SIZE, rest)))
                rest -= PAGE_SIZE
            needed -= len(entries)
            if link is not None:
                if link & (PAGE_SIZE - 1):
                    return self._bad(
                        cmd,
                        Status.INVALID_PRP_OFFSET,
                        f"the PRP list's link to its next page {link:#x} is not page aligned",
                    )
                pointer = link
        return self._check_overlap(cmd, segments)

    def _check_overlap(self, cmd: Command, segments: list[tuple[int, int]]) -> list[tuple[int, int]] | Status:
        for iova, n in segments:
            clash = self._queue_memory(iova, n)
            if clash is not None:
                return self._bad(
                    cmd,
                    Status.DATA_TRANSFER_ERROR,
                    f"its data buffer [{iova:#x}, {iova + n:#x}) lies in the memory of {clash} (queue memory reused "
                    f"while the queue exists)",
                )
        return segments

    def _queue_memory(self, iova: int, length: int) -> str | None:
        """The queue whose memory ``[iova, +length)`` overlaps, or None."""
        queues: list[SubmissionQueue | CompletionQueue] = [*self.sqs.values(), *self.cqs.values()]
        for queue in queues:
            start, end = queue.span
            if iova < end and start < iova + length:
                return queue.name
        return None

    def _to_host(self, cmd: Command, data: bytes) -> Status:
        segments = self._prp_segments(cmd, len(data))
        if isinstance(segments, Status):
            return segments
        offset = 0
        for iova, n in segments:
            if not self.dma_port.write(iova, data[offset : offset + n]).ok:
                return self._bad(
                    cmd,
                    Status.DATA_TRANSFER_ERROR,
                    f"the IOMMU refused the data buffer at {iova:#x} (see its fault log)",
                )
            offset += n
        return Status.SUCCESS

    def _from_host(self, cmd: Command, length: int) -> bytes | Status:
        segments = self._prp_segments(cmd, length)
        if isinstance(segments, Status):
            return segments
        out = bytearray()
        for iova, n in segments:
            result = self.dma_port.read(iova, n)
            if not result.ok:
                return self._bad(
                    cmd,
                    Status.DATA_TRANSFER_ERROR,
                    f"the IOMMU refused the data buffer at {iova:#x} (see its fault log)",
                )
            out += result.data
        return bytes(out)


_ADMIN_COMMANDS: dict[int, Callable[[NvmeController, Command], tuple[Status, int]]] = {
    AdminOpcode.DELETE_IO_SQ: NvmeController._delete_sq,
    AdminOpcode.CREATE_IO_SQ: NvmeController._create_sq,
    AdminOpcode.DELETE_IO_CQ: NvmeController._delete_cq,
    AdminOpcode.CREATE_IO_CQ: NvmeController._create_cq,
    AdminOpcode.IDENTIFY: NvmeController._identify,
    AdminOpcode.SET_FEATURES: NvmeController._features,
    AdminOpcode.GET_FEATURES: NvmeController._features,
}
