"""hwsim.devices.dma: registers, directions, errors and the IRQ; guest code driving it through the IOMMU."""

from __future__ import annotations

import pytest
from board_helpers import BoardGuest, virt

from hwsim.devices import DmaEngine, IssueKind
from hwsim.iommu import IommuCause
from hwsim.mmu import AddressSpace, Pte
from hwsim.riscv import asm as A

ID, SRC, DST, LEN, CMD, STATUS, ERR, ERR_ADDR, DONE_COUNT = 0x0, 0x8, 0x10, 0x18, 0x1C, 0x20, 0x24, 0x28, 0x30
BUF = 0x1000
START, IRQ = 1, 1 << 3
MEM2MEM, MEM2DEV, DEV2MEM = 0 << 1, 1 << 1, 2 << 1
RW_U = Pte.R | Pte.W | Pte.U


class Rig:
    """The virt board's DMA engine (device ID 1) with an IO address space of two 8 KiB buffers."""

    SRC_IOVA = 0x100_0000
    DST_IOVA = 0x200_0000

    def __init__(self):
        self.s = virt()
        m = self.s.machine
        self.dma = self.s.device("dma0")
        self.iommu = self.s.iommu
        self.iommu.create_directory()
        self.space = AddressSpace(m.phys, m.frames)
        self.src = m.frames.alloc(2)
        self.dst = m.frames.alloc(2)
        self.space.map(self.SRC_IOVA, self.src, 0x2000, Pte.R | Pte.U)
        self.space.map(self.DST_IOVA, self.dst, 0x2000, RW_U)
        self.iommu.attach(1, self.space, pscid=1)
        self.phys = m.phys

    def w(self, off, value):
        self.dma.mmio_write(off, 4, value)

    def w64(self, off, value):
        self.w(off, value & 0xFFFF_FFFF)
        self.w(off + 4, value >> 32)

    def r(self, off):
        return self.dma.mmio_read(off, 4)

    def start(self, src, dst, length, cmd, *, wait=True):
        self.w64(SRC, src)
        self.w64(DST, dst)
        self.w(LEN, length)
        self.w(CMD, cmd | START)
        if wait:  # let virtual time pass until the transfer is over
            while self.dma.busy:
                self.s.clock.advance_to(self.s.clock.next_deadline)


@pytest.fixture
def rig():
    return Rig()


def test_id_and_reset_state(rig):
    assert [rig.r(off) for off in (ID, CMD, STATUS, ERR, DONE_COUNT)] == [0x444D_4101, 0, 0, 0, 0]


def test_memory_to_memory_copy_through_the_iommu(rig):
    rig.phys.write(rig.src + 0xFF0, b"0123456789abcdef" * 2)
    rig.start(rig.SRC_IOVA + 0xFF0, rig.DST_IOVA + 0x10, 32, MEM2MEM)
    assert rig.r(STATUS) == 0b010 and rig.r(ERR) == 0 and rig.r(DONE_COUNT) == 1
    assert rig.phys.read(rig.dst + 0x10, 32) == b"0123456789abcdef" * 2
    assert rig.r(CMD) == MEM2MEM  # START reads back 0
    assert rig.iommu.stats.bytes_read == 32 and rig.iommu.stats.bytes_written == 32


def test_device_buffer_directions_and_window(rig):
    rig.phys.write(rig.src, b"payload!")
    rig.start(rig.SRC_IOVA, 0x10, 8, MEM2DEV)
    assert bytes(rig.dma.buffer[0x10:0x18]) == b"payload!"
    assert rig.dma.mmio_read(BUF + 0x10, 4) == int.from_bytes(b"payl", "little")
    assert rig.dma.mmio_read(BUF + 0x14, 2) == int.from_bytes(b"oa", "little")
    rig.dma.mmio_write(BUF + 0x10, 1, ord("P"))
    rig.start(0x10, rig.DST_IOVA, 8, DEV2MEM)
    assert rig.phys.read(rig.dst, 8) == b"Payload!"
    assert rig.r(DONE_COUNT) == 2 and rig.dma.issues == []


def test_iommu_fault_on_the_destination_leaves_it_untouched(rig):
    rig.phys.write(rig.src, b"secret")
    rig.start(rig.SRC_IOVA, rig.SRC_IOVA + 0x100, 6, MEM2MEM | IRQ)  # the source is read-only to the device
    assert rig.r(STATUS) == 0b100 and rig.r(ERR) == 2
    assert rig.r(ERR_ADDR) | rig.r(ERR_ADDR + 4) << 32 == rig.SRC_IOVA + 0x100
    assert rig.phys.read(rig.src + 0x100, 6) == bytes(6)
    f = rig.dma.last_fault
    assert (f.device_id, f.cause, f.reason) == (
        1,
        IommuCause.WRITE_PAGE_FAULT,
        "store to a page that is not writable (W=0)",
    )
    assert rig.iommu.fault_queue.pending() == [f]
    assert rig.dma.irq.level
    rig.w(STATUS, 0b100)  # W1C: the IRQ drops
    assert rig.r(STATUS) == 0 and not rig.dma.irq.level


def test_read_fault_error_code_and_address(rig):
    rig.start(0x900_0000, rig.DST_IOVA, 16, MEM2MEM)
    assert (rig.r(STATUS), rig.r(ERR), rig.r(ERR_ADDR)) == (0b100, 1, 0x900_0000)
    assert rig.dma.last_fault.reason == "PTE is not valid (V=0)"


def test_irq_on_completion_and_w1c(rig):
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 4, MEM2MEM)
    assert not rig.dma.irq.level  # CMD.IRQ not given
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 4, MEM2MEM | IRQ)
    assert rig.dma.irq.level and rig.s.irqc.is_pending(12)
    rig.w(STATUS, 0b010)
    assert not rig.dma.irq.level
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 4, MEM2MEM | IRQ)
    rig.w(CMD, MEM2MEM)  # clearing CMD.IRQ drops the line too
    assert not rig.dma.irq.level and rig.r(STATUS) == 0b010


def test_guest_errors_are_reported(rig):
    rig.start(0, 0, 4, 3 << 1)
    assert rig.r(ERR) == 3
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 0, MEM2MEM)
    assert rig.r(ERR) == 4
    rig.start(rig.SRC_IOVA, 0xFF0, 0x20, MEM2DEV)
    assert rig.r(ERR) == 5
    rig.start(rig.SRC_IOVA, 0, 0x1001, MEM2DEV)
    assert rig.r(ERR) == 4
    rig.w(CMD, 1 << 4)
    rig.w(ID, 5)
    rig.dma.mmio_read(BUF + 1, 2)
    rig.dma.mmio_write(0x2000, 4, 0)
    assert [i.message for i in rig.dma.issues] == [
        "CMD: DIR=3 is reserved",
        "LEN: length 0 is not in 1..1048576",
        "DST: buffer range [0xff0, 0x1010) is outside the 0x1000-byte buffer",
        "LEN: length 4097 is not in 1..4096",
        "write of 0x10 to CMD sets reserved bits 0x10 (ignored)",
        "write of 0x5 to read-only register ID",
        "2-byte read at offset 0x1001 in the device buffer: accesses must be 1, 2 or 4 bytes, naturally aligned",
        "write of 4 byte(s) at offset 0x2000: no register there",
    ]
    assert rig.dma.issues[0].kind is IssueKind.BAD_VALUE


def test_engine_without_a_dma_port():
    dma = DmaEngine(name="lonely")
    dma.mmio_write(LEN, 4, 4)
    dma.mmio_write(CMD, 4, START)
    assert dma.mmio_read(ERR, 4) == 1
    assert [i.message for i in dma.issues] == ["transfer started but the engine has no DMA port (no IOMMU)"]
    dma.reset()
    assert dma.mmio_read(STATUS, 4) == 0 and dma.last_fault is None


def guest_dma(a, base, src, dst, length, cmd):
    a.li("s0", base)
    a.li("t0", src).emit(A.sd("t0", "s0", SRC))  # 8-byte stores: the lo/hi pair in one instruction
    a.li("t0", dst).emit(A.sd("t0", "s0", DST))
    a.li("t0", length).emit(A.sw("t0", "s0", LEN))
    a.li("t0", cmd | START).emit(A.sw("t0", "s0", CMD))
    a.label("poll").emit(A.lw("a0", "s0", STATUS), A.andi("t1", "a0", 0b110))
    a.branch("beq", "t1", "zero", "poll")
    a.emit(A.lw("a1", "s0", ERR), A.ld("a2", "s0", ERR_ADDR))


def test_guest_programs_the_dma_engine_to_copy_between_io_mapped_buffers(rig):
    """End to end: U-mode code on the virt board drives the engine through its MMIO window;
    the engine copies through the IOMMU between two buffers of its IO page table."""
    g = BoardGuest(rig.s, {"dma0": 0x5_0000})
    rig.phys.write(rig.src + 0x800, bytes(range(256)) * 8)  # 2 KiB, crossing into the second page
    r = g.run(lambda a: guest_dma(a, 0x5_0000, rig.SRC_IOVA + 0x800, rig.DST_IOVA + 0x400, 0x800, MEM2MEM))
    assert r.ok
    assert (g.m.get_reg("a0"), g.m.get_reg("a1")) == (0b010, 0)
    assert rig.phys.read(rig.dst + 0x400, 0x800) == bytes(range(256)) * 8
    assert rig.s.issues() == [] and rig.iommu.fault_log == []


def test_guest_stray_dma_produces_a_fault_record():
    """End to end: the guest points the destination at an IOVA its IO page table does not map."""
    rig = Rig()
    g = BoardGuest(rig.s, {"dma0": 0x5_0000})
    rig.s.advance(1234)
    r = g.run(lambda a: guest_dma(a, 0x5_0000, rig.SRC_IOVA, 0x3F0_0000, 64, MEM2MEM | IRQ))
    assert r.ok
    assert (g.m.get_reg("a0"), g.m.get_reg("a1"), g.m.get_reg("a2")) == (0b100, 2, 0x3F0_0000)
    (f,) = rig.iommu.fault_queue.pending()
    assert f.message == ("device 1: DMA write at iova 0x3f00000: write page fault (cause 15): PTE is not valid (V=0)")
    # Each MMIO access takes a tick (the board's mmio_access_ticks): the engine started during the 6th
    # (two split 8-byte stores, LEN, then CMD), after 5 had been charged, and a 64-byte transfer takes
    # 3 ticks (200 ns of setup and 64 ns at 1 GB/s, at 100 ns a tick): the write faulted at its end.
    assert (f.device_id, f.iova, f.access.value, f.time) == (1, 0x3F0_0000, "write", 1234 + 5 + 3)
    assert f.walk.va == 0x3F0_0000 and not f.walk.ok
    assert rig.s.irqc.is_pending(12) and rig.s.irqc.is_pending(14)  # DMA error IRQ and IOMMU fault IRQ


# -- timing ---------------------------------------------------------------------------------------------


def test_a_transfer_takes_virtual_time_and_moves_its_data_at_the_end(rig):
    rig.phys.write(rig.src, b"x" * 4096)
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 4096, MEM2MEM | IRQ, wait=False)
    ticks = rig.dma.transfer_ticks(4096)
    assert ticks == 43  # 200 ns + 4096 ns at 1 GB/s = 4.296 us, 100 ns a tick, rounded up
    assert rig.r(STATUS) == 0b001 and rig.dma.busy and not rig.dma.irq.level
    assert rig.phys.read(rig.dst, 4096) == bytes(4096)  # nothing moved yet
    rig.s.clock.advance(ticks - 1)
    assert rig.dma.busy and rig.phys.read(rig.dst, 1) == b"\0"
    rig.s.clock.advance(1)
    assert rig.r(STATUS) == 0b010 and rig.dma.irq.level and rig.phys.read(rig.dst, 4096) == b"x" * 4096


def test_start_while_busy_is_ignored_and_reported(rig):
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 64, MEM2MEM, wait=False)
    rig.w(CMD, MEM2MEM | START)
    (issue,) = rig.s.issues()
    assert "START written while a transfer is in flight" in issue.format()
    rig.s.clock.advance(100)
    assert rig.r(DONE_COUNT) == 1 and rig.r(STATUS) == 0b010


def test_bandwidth_zero_is_instant_and_a_reset_cancels_the_transfer():
    instant = virt(dma0={"bandwidth": 0}).device("dma0")
    assert instant.transfer_ticks(1 << 20) == 0
    rig = Rig()
    rig.start(rig.SRC_IOVA, rig.DST_IOVA, 64, MEM2MEM, wait=False)
    rig.dma.reset()
    rig.s.clock.advance(100)
    assert not rig.dma.busy and rig.r(DONE_COUNT) == 0 and rig.iommu.stats.requests == 0


def test_a_seed_varies_the_transfer_time_reproducibly():
    def times(seed):
        s = virt(seed=seed)
        d = s.device("dma0")
        return [d.timing.delay(d.transfer_ticks(4096), "t") for _ in range(50)]

    assert times(None) == [43] * 50
    assert times(7) == times(7) and times(7) != times(8)
    spread = times(7) + times(8) + times(9)
    assert min(spread) < 43 // 2 and max(spread) > 43 * 4  # early and very late draws both occur
