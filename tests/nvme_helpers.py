"""A small NVMe driver in Python for tests: it writes queues, commands and PRP lists into guest RAM and
programs the controller's registers exactly as a guest driver would (the guest path to the same
registers is tested end to end with the C driver, drivers/nvme)."""

from __future__ import annotations

import struct
from dataclasses import dataclass

from board_helpers import virt

from hwsim.devices.nvme_bits import CQE, SQE, AdminOpcode, IoOpcode, Status, cq_doorbell, sq_doorbell
from hwsim.mmu import AddressSpace, Pte

IOVA = 0x4000_0000
PAGES = 64
ASQ_OFF, ACQ_OFF = 0x0000, 0x1000
PRP_OFF = 0xA000  # two pages of PRP lists
DATA_OFF = 0x10000  # 32 pages of data buffers
BAD = 0x7700_0000  # not in the device's IO page table
RW_U = Pte.R | Pte.W | Pte.U
DEVICE_ID = 4
CC_READY = 6 << 16 | 4 << 20 | 1  # IOSQES 6, IOCQES 4, EN


def sq_off(qid: int) -> int:
    return 0x2000 + (qid - 1) * 0x2000


def cq_off(qid: int) -> int:
    return 0x3000 + (qid - 1) * 0x2000


@dataclass
class Cqe:
    dw0: int
    sqhd: int
    sqid: int
    cid: int
    phase: int
    status: Status | None  # None: a status code this module does not name
    dnr: bool

    @property
    def ok(self) -> bool:
        return self.status is Status.SUCCESS


class NvmeDriver:
    """The controller ``nvme0`` of the virt board, its queues and buffers in one IO-mapped region."""

    def __init__(self, image: str = "", *, system=None, seed: int | None = None, faults=None, **options) -> None:
        if system is None:
            if faults is not None:
                from hwsim.board import DEFAULT_BOARD, load_board

                system = load_board(DEFAULT_BOARD).build(
                    options={"uart0": {"backend": "memory"}, "nvme0": {"image": image, **options}},
                    seed=seed,
                    faults=faults,
                )
            else:
                system = virt(seed=seed, nvme0={"image": image, **options})
        self.s = system
        m = system.machine
        self.dev = system.device("nvme0")
        self.phys = m.phys
        self.pa = m.frames.alloc(PAGES)
        iommu = system.iommu
        iommu.create_directory()
        self.space = AddressSpace(m.phys, m.frames)
        self.space.map(IOVA, self.pa, PAGES * 0x1000, RW_U)
        iommu.attach(DEVICE_ID, self.space, pscid=DEVICE_ID)
        self.sq: dict[int, list[int]] = {}  # qid -> [base iova, size, tail]
        self.cq: dict[int, list[int]] = {}  # qid -> [base iova, size, head, phase]
        self.sq_cq: dict[int, int] = {0: 0}  # SQ -> its CQ
        self.next_cid = 0

    # -- registers and memory --------------------------------------------------------------------------------

    def w(self, name: str, value: int) -> None:
        self.dev.mmio_write(self.dev.LAYOUT[name].offset, 4, value)

    def r(self, name: str) -> int:
        return self.dev.mmio_read(self.dev.LAYOUT[name].offset, 4)

    def mem_write(self, iova: int, data: bytes) -> None:
        self.phys.write(self.pa + iova - IOVA, data)

    def mem_read(self, iova: int, size: int) -> bytes:
        return self.phys.read(self.pa + iova - IOVA, size)

    @property
    def issues(self) -> list[str]:
        return [i.message for i in self.dev.issues]

    def settle(self, horizon: int = 10**9) -> None:
        """Let virtual time run until nothing is scheduled within ``horizon`` ticks (100 s at 10 MHz)."""
        clock = self.s.clock
        while (deadline := clock.next_deadline) is not None and deadline - clock.now < horizon:
            clock.advance_to(max(deadline, clock.now))

    # -- initialisation --------------------------------------------------------------------------------------

    def enable(self, asq_entries: int = 16, acq_entries: int = 16, *, cc: int = CC_READY, wait: bool = True) -> None:
        self.w("AQA", (acq_entries - 1) << 16 | (asq_entries - 1))
        for reg, off in (("ASQ", ASQ_OFF), ("ACQ", ACQ_OFF)):
            self.w(f"{reg}_LO", (IOVA + off) & 0xFFFF_FFFF)
            self.w(f"{reg}_HI", (IOVA + off) >> 32)
        self.sq[0] = [IOVA + ASQ_OFF, asq_entries, 0]
        self.cq[0] = [IOVA + ACQ_OFF, acq_entries, 0, 1]
        self.w("CC", cc)
        if wait:
            self.settle()

    # -- commands --------------------------------------------------------------------------------------------

    def put(
        self,
        qid: int,
        opcode: int,
        *,
        cid: int | None = None,
        nsid: int = 0,
        prp1: int = 0,
        prp2: int = 0,
        cdw: tuple[int, ...] = (),
        flags: int = 0,
        raw: bytes | None = None,
    ) -> int:
        """Write one submission entry at the queue's tail (not rung); returns its CID."""
        base, size, tail = self.sq[qid]
        if cid is None:
            cid = self.next_cid
            self.next_cid = (self.next_cid + 1) & 0xFFFF
        if raw is None:
            cdws = (tuple(cdw) + (0,) * 6)[:6]
            raw = SQE.pack(opcode | flags << 8 | cid << 16, nsid, 0, 0, 0, prp1, prp2, *cdws)
        self.mem_write(base + 64 * tail, raw)
        self.sq[qid][2] = (tail + 1) % size
        return cid

    def ring(self, qid: int, tail: int | None = None) -> None:
        self.w(sq_doorbell(qid), self.sq[qid][2] if tail is None else tail)

    def completions(self, qid: int, *, release: bool = True) -> list[Cqe]:
        """New completion entries (by phase tag); with ``release`` the head doorbell is written."""
        base, size, head, phase = self.cq[qid]
        out = []
        while True:
            dw0, _, sqhd, sqid, cid, status = CQE.unpack(self.mem_read(base + 16 * head, 16))
            if status & 1 != phase:
                break
            field = status >> 1
            out.append(Cqe(dw0, sqhd, sqid, cid, status & 1, Status.from_field(field), bool(field >> 14 & 1)))
            head = (head + 1) % size
            if head == 0:
                phase ^= 1
        self.cq[qid][2:] = [head, phase]
        if out and release:
            self.w(cq_doorbell(qid), head)
        return out

    def command(self, qid: int, opcode: int, **kw) -> Cqe:
        """One command, run to completion: its completion entry."""
        cid = self.put(qid, opcode, **kw)
        self.ring(qid)
        self.settle()
        done = self.completions(self.cq_of(qid))
        assert [c.cid for c in done] == [cid], done
        return done[0]

    def cq_of(self, qid: int) -> int:
        return self.sq_cq.get(qid, qid)

    def admin(self, opcode: int, **kw) -> Cqe:
        return self.command(0, opcode, **kw)

    def create_cq(
        self, qid: int, size: int, *, ien: bool = True, base: int | None = None, cdw11: int | None = None
    ) -> Cqe:
        base = IOVA + cq_off(qid) if base is None else base
        cqe = self.admin(
            AdminOpcode.CREATE_IO_CQ,
            prp1=base,
            cdw=((size - 1) << 16 | qid, (1 | (2 if ien else 0)) if cdw11 is None else cdw11),
        )
        if cqe.ok:
            self.cq[qid] = [base, size, 0, 1]
        return cqe

    def create_sq(self, qid: int, size: int, cqid: int, *, base: int | None = None, cdw11: int | None = None) -> Cqe:
        base = IOVA + sq_off(qid) if base is None else base
        cqe = self.admin(
            AdminOpcode.CREATE_IO_SQ,
            prp1=base,
            cdw=((size - 1) << 16 | qid, cqid << 16 | 1 if cdw11 is None else cdw11),
        )
        if cqe.ok:
            self.sq[qid] = [base, size, 0]
            self.sq_cq[qid] = cqid
        return cqe

    def io_pair(self, qid: int = 1, size: int = 16) -> None:
        assert self.create_cq(qid, size).ok and self.create_sq(qid, size, qid).ok

    def rw(self, qid: int, opcode: int, slba: int, nlb: int, prp1: int, prp2: int = 0, **kw) -> Cqe:
        return self.command(
            qid, opcode, nsid=1, prp1=prp1, prp2=prp2, cdw=(slba & 0xFFFF_FFFF, slba >> 32, nlb - 1), **kw
        )

    def write(self, qid: int, slba: int, data: bytes, *, at: int = IOVA + DATA_OFF) -> Cqe:
        """Write ``data`` (whole blocks) from page-aligned buffers at ``at``, with a PRP list when needed."""
        self.mem_write(at, data)
        prp1, prp2 = self.prps(at, len(data))
        return self.rw(qid, IoOpcode.WRITE, slba, len(data) // 512, prp1, prp2)

    def read(self, qid: int, slba: int, nlb: int, *, at: int = IOVA + DATA_OFF) -> tuple[Cqe, bytes]:
        prp1, prp2 = self.prps(at, nlb * 512)
        cqe = self.rw(qid, IoOpcode.READ, slba, nlb, prp1, prp2)
        return cqe, self.mem_read(at, nlb * 512)

    def prps(self, at: int, length: int, *, list_at: int = IOVA + PRP_OFF) -> tuple[int, int]:
        """PRP1 and PRP2 for a buffer of ``length`` bytes at ``at`` (contiguous pages); a list at ``list_at``."""
        first = 4096 - (at & 0xFFF)
        if length <= first:
            return at, 0
        pages = [(at & ~0xFFF) + 4096 * (k + 1) for k in range(-(-(length - first) // 4096))]
        if len(pages) == 1:
            return at, pages[0]
        self.mem_write(list_at, struct.pack(f"<{len(pages)}Q", *pages))
        return at, list_at
