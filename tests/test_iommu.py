"""hwsim.iommu: directory, IO page tables through the CPU's walker, IOTLB staleness, faults and the fault queue,
the command queue and the MMIO register interface, and a property: no DMA outside the IO page table."""

from __future__ import annotations

import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.devices import IrqLine, VirtualClock
from hwsim.iommu import (
    DeviceContext,
    DeviceDirectory,
    DmaAccess,
    Iommu,
    IommuCause,
    IommuError,
    IommuMode,
    cmd_iodir_inval_ddt,
    cmd_iofence_c,
    cmd_iotinval_vma,
)
from hwsim.iommu.bits import TC_PDTV, TC_V
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import SV39, AddressSpace, Pte
from hwsim.trace import EVENTS, tracing

RAM = 0x8000_0000
R_U = Pte.R | Pte.U
RW_U = Pte.R | Pte.W | Pte.U


class Env:
    def __init__(self, ram_size=4 << 20, **options):
        self.phys = PhysicalMemory()
        self.frames = FrameAllocator(self.phys.add_ram(RAM, ram_size))
        self.clock = VirtualClock()
        self.irq = IrqLine()
        self.iommu = Iommu(name="iommu", phys=self.phys, frames=self.frames, clock=self.clock, irq=self.irq, **options)

    def space(self):
        return AddressSpace(self.phys, self.frames, mode=SV39)

    def attached(self, device_id=1, pscid=1, levels=1, **kw):
        """A 1-level directory with ``device_id`` on a fresh IO space; returns the space."""
        if self.iommu.directory is None:
            self.iommu.create_directory(levels=levels)
        space = self.space()
        self.iommu.attach(device_id, space, pscid=pscid, **kw)
        return space


@pytest.fixture
def env():
    return Env()


def test_off_mode_disallows_every_transaction(env):
    r = env.iommu.dma(1, 0x1000, 4, write=False)
    assert not r.ok and r.data is None
    f = r.fault
    assert (f.device_id, f.iova, f.access, f.cause, f.time, f.queued) == (
        1,
        0x1000,
        DmaAccess.READ,
        IommuCause.ALL_INBOUND_DISALLOWED,
        0,
        True,
    )
    assert f.message == (
        "device 1: DMA read at iova 0x1000: all inbound transactions disallowed (cause 256): "
        "ddtp.iommu_mode is Off: all inbound transactions are disallowed"
    )
    assert env.iommu.fault_queue.pending() == [f]


def test_bare_mode_passes_addresses_through_but_only_to_ram(env):
    env.iommu.set_mode("bare")
    assert env.iommu.dma(7, RAM + 0x10, 3, write=True, data=b"abc").ok
    assert env.iommu.dma(7, RAM + 0x10, 3, write=False).data == b"abc"
    f = env.iommu.dma(7, 0x1000_0000, 4, write=True, data=b"1234").fault
    assert f.cause is IommuCause.WRITE_ACCESS_FAULT
    assert f.reason == "translated address 0x10000000 is not RAM: no RAM or device at physical address 0x10000000"


def test_translation_through_sv39_io_page_tables(env):
    space = env.attached()
    buf = env.frames.alloc(2)
    space.map(0x10_0000, buf, 0x2000, RW_U)
    assert env.iommu.dma(1, 0x10_0FFE, 4, write=True, data=b"WXYZ").ok  # crosses a page
    assert env.phys.read(buf + 0xFFE, 4) == b"WXYZ"
    assert env.iommu.dma(1, 0x10_0FFE, 4, write=False).data == b"WXYZ"
    assert env.iommu.port(1).read(0x10_0FFF, 1).data == b"X"
    assert env.iommu.port(1).write(0x10_0000, b"!").ok
    stats = env.iommu.iotlb.stats
    assert (stats.misses, stats.fills) == (2, 2) and stats.hits >= 3
    assert env.iommu.stats.page_walks == 2 and env.iommu.stats.directory_walks == 1


def test_device_permission_rule_is_u_mode(env):
    space = env.attached()
    space.map(0x1000, env.frames.alloc(), 0x1000, Pte.R | Pte.W)  # a supervisor page: U=0
    space.map(0x2000, env.frames.alloc(), 0x1000, R_U)
    f = env.iommu.dma(1, 0x1008, 8, write=False).fault
    assert (f.cause, f.reason) == (IommuCause.READ_PAGE_FAULT, "U-mode access to a supervisor page (U=0)")
    f = env.iommu.dma(1, 0x2000, 1, write=True, data=b"x").fault
    assert (f.cause, f.reason) == (IommuCause.WRITE_PAGE_FAULT, "store to a page that is not writable (W=0)")
    assert f.walk.priv.name == "U" and f.walk.steps[-1].decision.endswith("store denied -> page fault")


def test_unmapped_iova_fault_names_device_iova_access_reason_and_walk(env):
    space = env.attached(device_id=5)
    space.map(0x4000, env.frames.alloc(), 0x1000, RW_U)
    env.clock.advance(77)
    f = env.iommu.dma(5, 0x9_0010, 16, write=True, data=bytes(16)).fault
    assert f.message == ("device 5: DMA write at iova 0x90010: write page fault (cause 15): PTE is not valid (V=0)")
    assert f.time == 77 and f.walk.fault.level == 0
    text = f.format().splitlines()
    assert text[0] == "[t=77] " + f.message
    assert text[1].startswith("  directory level 0: @ ") and "device context: first stage Sv39" in text[1]
    assert text[2].startswith("  va 0x0000000000090010 (Sv39)")
    assert text[-1] == "  result: store page fault (cause 15): PTE is not valid (V=0)"
    j = f.to_json()
    assert (j["device_id"], j["iova"], j["access"], j["cause"], j["queued"]) == (5, "0x90010", "write", 15, True)
    assert j["walk"]["fault"]["reason"] == "invalid"
    record = f.to_record()
    assert len(record) == 32
    assert int.from_bytes(record[:8], "little") == 15 | (3 << 34) | (5 << 40)  # cause, TTYP write, DID
    assert int.from_bytes(record[16:24], "little") == 0x9_0010


def test_dma_is_all_or_nothing(env):
    space = env.attached()
    first = env.frames.alloc()
    space.map(0x1000, first, 0x1000, RW_U)  # 0x2000 is not mapped
    f = env.iommu.dma(1, 0x1800, 0x1000, write=True, data=b"\xaa" * 0x1000).fault
    assert f.iova == 0x2000  # the first faulting page, not the request's start
    assert env.phys.read(first + 0x800, 0x800) == bytes(0x800)


def test_superpages_and_contiguous_pieces(env):
    space = env.attached()
    big = env.frames.alloc(512, align=2 << 20)
    space.map(0x20_0000, big, 2 << 20, RW_U)
    assert env.iommu.dma(1, 0x20_1000, 0x3000, write=True, data=b"s" * 0x3000).ok
    ((asid, tr),) = env.iommu.iotlb.entries()
    assert (asid, tr.level, tr.page_size) == (1, 1, 2 << 20)
    assert env.phys.read(big + 0x1000, 0x3000) == b"s" * 0x3000


def test_stale_iotlb_entry_is_used_until_invalidated(env):
    """The IOTLB never snoops memory: an unmapped page keeps working until IOTINVAL.VMA."""
    space = env.attached(pscid=3)
    old = env.frames.alloc()
    env.phys.write(old, b"old data")
    space.map(0x5000, old, 0x1000, RW_U)
    assert env.iommu.dma(1, 0x5000, 8, write=False).data == b"old data"
    space.unmap(0x5000, 0x1000)  # the PTE is gone from RAM
    new = env.frames.alloc()
    env.phys.write(new, b"new data")
    assert env.iommu.dma(1, 0x5000, 8, write=False).data == b"old data"  # stale, as on hardware
    assert env.iommu.dma(1, 0x5000, 3, write=True, data=b"OLD").ok
    assert env.phys.read(old, 8) == b"OLD data"
    assert env.iommu.iotinval_vma(addr=0x6000) == 0  # another page: nothing dropped
    assert env.iommu.iotinval_vma(addr=0x5000, pscid=3) == 1
    f = env.iommu.dma(1, 0x5000, 8, write=False).fault
    assert f.reason == "PTE is not valid (V=0)"
    space.map(0x5000, new, 0x1000, RW_U)
    assert env.iommu.dma(1, 0x5000, 8, write=False).data == b"new data"


def test_invalidation_forms(env):
    a = env.attached(device_id=1, pscid=1)
    b = env.attached(device_id=2, pscid=2)
    for space in (a, b):
        space.map(0x1000, env.frames.alloc(), 0x2000, RW_U)
    for dev in (1, 2):
        env.iommu.dma(dev, 0x1000, 0x2000, write=False)
    assert len(env.iommu.iotlb) == 4
    assert env.iommu.iotinval_vma(pscid=1) == 2
    assert env.iommu.iotinval_vma(addr=0x1000) == 1
    assert env.iommu.iotinval_vma() == 1
    assert len(env.iommu.iotlb) == 0


def test_iotinval_vma_from_the_host_is_the_command_queued_as_bytes(env):
    """The host API carries the invalidation out without encoding it: the same entries go, the same
    command is counted, an address inside a page names that page."""
    a = env.attached(device_id=1, pscid=1)
    a.map(0x1000, env.frames.alloc(), 0x3000, RW_U)
    env.iommu.dma(1, 0x1000, 0x3000, write=False)
    commands = env.iommu.stats.commands
    assert env.iommu.iotinval_vma(addr=0x2FFF, pscid=1) == 1  # the page of 0x2fff
    assert env.iommu.execute(cmd_iotinval_vma(0x3000, 1)) == 1
    assert env.iommu.stats.commands == commands + 2
    assert [tr.va for _, tr in env.iommu.iotlb.entries()] == [0x1000]
    assert env.iommu.iotinval_vma(addr=0x1000, pscid=2) == 0  # another PSCID's page: nothing dropped
    assert [tr.va for _, tr in env.iommu.iotlb.entries()] == [0x1000]


def test_invalidation_traces_name_the_iova_and_what_was_dropped(env):
    """Found by a newcomer: the trace printed ``addr=0x4002000`` for an invalidation of IOVA 0x10008000 (the raw
    doubleword, which holds the page number shifted to bit 10), and called dropped device contexts IOTLB entries."""
    space = env.attached(device_id=1, pscid=5)
    space.map(0x1000_8000, env.frames.alloc(), 0x1000, RW_U)
    env.iommu.dma(1, 0x1000_8000, 4, write=False)
    out = io.StringIO()
    with tracing("iommu_inval,iommu_ddt_inval", format="jsonl", stream=out):
        env.iommu.iotinval_vma(addr=0x1000_8000, pscid=5)
        env.iommu.iotinval_vma()
        env.iommu.iodir_inval_ddt(1)
        env.iommu.iodir_inval_ddt()
        cq = env.frames.alloc()  # the command queue, as a guest driver uses it: traced the same way
        env.phys.write(cq, cmd_iotinval_vma(addr=0x2000_3000))
        w64(env.iommu, CQB, (cq >> 12) << 10 | 3)
        env.iommu.mmio_write(CQCSR, 4, 1)
        env.iommu.mmio_write(CQT, 4, 1)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [{k: v for k, v in r.items() if k not in ("t_ns", "category")} for r in records] == [
        {"event": "iommu_inval", "command": "IOTINVAL.VMA", "address": "0x10008000", "pscid": 5, "dropped": 1},
        {"event": "iommu_inval", "command": "IOTINVAL.VMA", "address": "all", "pscid": "all", "dropped": 0},
        {"event": "iommu_ddt_inval", "device_id": 1, "dropped": 1},
        {"event": "iommu_ddt_inval", "device_id": "all", "dropped": 0},
        {"event": "iommu_inval", "command": "IOTINVAL.VMA", "address": "0x20003000", "pscid": "all", "dropped": 0},
    ]
    assert EVENTS["iommu_inval"].format(records[0]) == "IOTINVAL.VMA addr=0x10008000 pscid=5: 1 IOTLB entries dropped"
    assert EVENTS["iommu_ddt_inval"].format(records[2]) == (
        "IODIR.INVAL_DDT device=1: 1 cached device contexts dropped"
    )


def test_cached_entry_decides_a_permission_fault(env):
    space = env.attached()
    frame = env.frames.alloc()
    space.map(0x3000, frame, 0x1000, R_U)
    assert env.iommu.dma(1, 0x3000, 4, write=False).ok  # caches the read-only leaf
    space.protect(0x3000, 0x1000, RW_U)  # now writable in RAM, but not invalidated
    f = env.iommu.dma(1, 0x3000, 4, write=True, data=b"nope").fault
    assert (f.cause, f.reason) == (IommuCause.WRITE_PAGE_FAULT, "store to a page that is not writable (W=0)")
    assert f.iotlb_pte is not None and not f.iotlb_pte & Pte.W
    assert f.walk.ok  # the tables in RAM would allow it: the cached entry decided
    assert "decided by a cached IOTLB entry" in f.format()
    env.iommu.iotinval_vma(addr=0x3000)
    assert env.iommu.dma(1, 0x3000, 4, write=True, data=b"okay").ok


def test_stale_device_context_until_iodir_inval_ddt(env):
    space = env.attached(device_id=9)
    space.map(0x1000, env.frames.alloc(), 0x1000, RW_U)
    assert env.iommu.dma(9, 0x1000, 4, write=False).ok
    env.iommu.directory.clear_context(9)  # V=0 in RAM, no invalidation
    assert env.iommu.dma(9, 0x1000, 4, write=False).ok
    assert env.iommu.iodir_inval_ddt(9) == 1
    f = env.iommu.dma(9, 0x1000, 4, write=False).fault
    assert f.cause is IommuCause.DDT_NOT_VALID
    assert f.reason.startswith("the device context of device 9 at 0x") and f.reason.endswith("(tc.V=0)")
    assert f.walk is None and f.directory[-1].decision == "tc.V=0 -> DDT entry not valid"
    assert env.iommu.iodir_inval_ddt() == 0


def test_detach_invalidates_context_and_iotlb(env):
    space = env.attached(device_id=4, pscid=8)
    space.map(0x1000, env.frames.alloc(), 0x1000, RW_U)
    env.iommu.dma(4, 0x1000, 4, write=False)
    env.iommu.detach(4)
    assert len(env.iommu.iotlb) == 0
    assert env.iommu.dma(4, 0x1000, 4, write=False).fault.cause is IommuCause.DDT_NOT_VALID


def test_bare_first_stage_context(env):
    env.iommu.create_directory()
    env.iommu.attach(2, None)
    assert env.iommu.dma(2, RAM + 0x100, 2, write=True, data=b"hi").ok
    assert env.phys.read(RAM + 0x100, 2) == b"hi"


def test_directory_levels_and_device_id_width(env):
    env.iommu.create_directory(levels=2)
    space = env.space()
    space.map(0x1000, env.frames.alloc(), 0x1000, RW_U)
    env.iommu.attach(0x1234, space, pscid=5)
    r = env.iommu.dma(0x1234, 0x1000, 1, write=False)
    assert r.ok
    f = env.iommu.dma(0x2234, 0x1000, 1, write=False).fault  # its leaf table does not exist
    assert f.cause is IommuCause.DDT_NOT_VALID and f.reason.startswith("the level-1 DDT entry at 0x")
    f = env.iommu.dma(0x1_0000, 0x1000, 1, write=False).fault
    assert (f.cause, f.reason) == (
        IommuCause.TRANSACTION_TYPE_DISALLOWED,
        "device ID 65536 is wider than a 2LVL device directory allows (0..65535)",
    )
    d3 = DeviceDirectory(env.phys, env.frames, levels=3)
    env.iommu.directory = d3
    env.iommu.set_ddtp(d3.ddtp)
    env.iommu.attach(0xAB_CDEF, space, pscid=6)
    assert env.iommu.dma(0xAB_CDEF, 0x1000, 1, write=False).ok
    assert len(env.iommu.dma(0xAB_CDEF, 0x9000, 1, write=False).fault.directory) == 3
    with pytest.raises(IommuError, match=r"device ID 16777216 does not fit a 3LVL device directory \(0..16777215\)"):
        d3.set_context(1 << 24, DeviceContext(TC_V))
    with pytest.raises(IommuError, match="a device directory has 1, 2 or 3 levels, not 4"):
        DeviceDirectory(env.phys, env.frames, levels=4)


def test_one_level_directory_limits_device_ids(env):
    env.iommu.create_directory()
    f = env.iommu.dma(128, 0, 1, write=False).fault
    assert f.reason == "device ID 128 is wider than a 1LVL device directory allows (0..127)"


@pytest.mark.parametrize(
    "ctx, problem",
    [
        (
            DeviceContext(TC_V | TC_PDTV),
            "tc has reserved or unsupported bits 0x20 set (hwsim supports V, DTF, GADE, "
            "SADE; no ATS, PRI, process directories, big-endian or Sv32)",
        ),
        (DeviceContext(TC_V, iohgatp=8 << 60), "iohgatp.MODE=8: second-stage translation is not supported (only Bare)"),
        (DeviceContext(TC_V, ta=0xFFF), "ta has reserved bits 0xfff set"),
        (DeviceContext(TC_V, fsc=10 << 60), "iosatp.MODE=10 is not a supported mode (0 Bare, 8 Sv39, 9 Sv48)"),
        (DeviceContext(TC_V, fsc=(8 << 60) | (1 << 50)), "iosatp has reserved bits 0x4000000000000 set"),
    ],
)
def test_misconfigured_device_contexts(env, ctx, problem):
    d = env.iommu.create_directory()
    addr = d.set_context(3, ctx)
    f = env.iommu.dma(3, 0, 1, write=False).fault
    assert f.cause is IommuCause.DDT_MISCONFIGURED
    assert f.reason == f"the device context of device 3 at {addr:#x}: {problem}"


def test_directory_outside_ram_and_bad_non_leaf_entries(env):
    env.iommu.set_ddtp((0x1000_0000 >> 12) << 10 | IommuMode.LVL1)
    f = env.iommu.dma(0, 0, 1, write=False).fault
    assert (f.cause, f.reason) == (IommuCause.DDT_LOAD_ACCESS_FAULT, "the device context at 0x10000000 is not in RAM")
    d = env.iommu.create_directory(levels=2)
    env.phys.write_u64(d.root, 1 | (1 << 60))  # V=1 with a reserved bit
    f = env.iommu.dma(0, 0, 1, write=False).fault
    assert f.cause is IommuCause.DDT_MISCONFIGURED
    assert f.reason == f"the level-1 DDT entry at {d.root:#x} has reserved bits 0x1000000000000000 set"
    env.phys.write_u64(d.root, 1 | ((0x1000_0000 >> 12) << 10))
    assert env.iommu.dma(0, 0, 1, write=False).fault.cause is IommuCause.DDT_LOAD_ACCESS_FAULT


def test_a_and_d_bits_with_and_without_sade(env):
    space = env.attached(device_id=1, pscid=1, sade=True)
    space.map(0x1000, env.frames.alloc(), 0x1000, RW_U, accessed=False)
    env.iommu.dma(1, 0x1000, 4, write=False)
    assert space.lookup(0x1000).flags & (Pte.A | Pte.D) == Pte.A
    env.iommu.dma(1, 0x1000, 4, write=True, data=b"abcd")  # cached entry lacks D: walks again
    assert space.lookup(0x1000).flags & (Pte.A | Pte.D) == Pte.A | Pte.D
    other = env.attached(device_id=2, pscid=2, sade=False)
    other.map(0x1000, env.frames.alloc(), 0x1000, RW_U, accessed=False)
    f = env.iommu.dma(2, 0x1000, 4, write=False).fault
    assert (f.cause, f.reason) == (
        IommuCause.READ_PAGE_FAULT,
        "A=0 in the leaf PTE and A/D updates are not done by hardware",
    )


def test_fault_queue_overflow_drops_until_cleared():
    env = Env(fault_queue_entries=4)
    faults = [env.iommu.dma(1, 0x1000 * i, 1, write=False).fault for i in range(5)]
    assert [f.queued for f in faults] == [True, True, True, False, False]
    q = env.iommu.fault_queue
    assert len(q) == 3 and q.overflow and q.dropped == 2 and env.iommu.fault_overflow
    assert [f.iova for f in q.drain()] == [0, 0x1000, 0x2000]
    assert not env.iommu.dma(1, 0x9000, 1, write=False).fault.queued  # still overflowed: dropped
    env.iommu.clear_fault_overflow()
    assert env.iommu.dma(1, 0xA000, 1, write=False).fault.queued
    assert [f.iova for f in env.iommu.fault_log] == [0, 0x1000, 0x2000, 0x3000, 0x4000, 0x9000, 0xA000]
    assert "(not queued: the fault queue was full, off, or the context has DTF=1)" in env.iommu.format_faults()


def test_dtf_suppresses_translation_faults_only(env):
    env.attached(device_id=1, dtf=True)
    f = env.iommu.dma(1, 0x1000, 1, write=False).fault
    assert f.cause is IommuCause.READ_PAGE_FAULT and not f.queued
    assert env.iommu.dma(50, 0x1000, 1, write=False).fault.queued  # no valid context: reported


def test_fault_interrupt_and_ipsr(env):
    assert not env.irq.level
    env.iommu.dma(1, 0, 1, write=False)
    assert env.irq.level and env.iommu.mmio_read(0x54, 4) == 2  # ipsr.fip
    env.iommu.mmio_write(0x54, 4, 2)  # W1C
    assert not env.irq.level
    env.iommu.enable_fault_interrupt(False)
    env.iommu.dma(1, 0, 1, write=False)
    assert not env.irq.level


def test_host_api_errors(env):
    with pytest.raises(IommuError, match="DMA size must be positive, not 0"):
        env.iommu.dma(1, 0, 0, write=False)
    with pytest.raises(IommuError, match="a DMA write of 4 bytes needs exactly 4 bytes of data"):
        env.iommu.dma(1, 0, 4, write=True, data=b"12")
    with pytest.raises(IommuError, match=r"attach needs a device directory: call create_directory\(\) first"):
        env.iommu.attach(1, None)
    with pytest.raises(IommuError, match=r"detach needs a device directory"):
        env.iommu.detach(1)
    with pytest.raises(IommuError, match="set_mode takes 'off' or 'bare'"):
        env.iommu.set_mode("1lvl")
    with pytest.raises(IommuError, match="create_directory needs a frame allocator"):
        Iommu(name="x", phys=env.phys).create_directory()
    env.iommu.create_directory()
    with pytest.raises(IommuError, match=r"PSCID must be in \[0, 2\^20\), not 1048576"):
        env.iommu.attach(1, None, pscid=1 << 20)
    with pytest.raises(IommuError, match=r"illegal IOMMU command 7f00.*: opcode 127 is reserved"):
        env.iommu.execute(bytes([0x7F]) + bytes(15))
    from hwsim.devices import OptionError

    with pytest.raises(OptionError, match="option 'fault_queue_entries': must be a power of two, not 6"):
        Env(fault_queue_entries=6)


# -- the MMIO register interface ---------------------------------------------------------------------

DDTP, CQB, CQH, CQT, FQB, FQH, FQT, CQCSR, FQCSR, IPSR = 0x10, 0x18, 0x20, 0x24, 0x28, 0x30, 0x34, 0x48, 0x4C, 0x54


def w64(iommu, off, value):
    iommu.mmio_write(off, 4, value & 0xFFFF_FFFF)  # Unicorn's order for an 8-byte store: low word first
    iommu.mmio_write(off + 4, 4, value >> 32)


def test_capabilities_and_ddtp_registers(env):
    io = env.iommu
    caps = io.mmio_read(0, 4) | io.mmio_read(4, 4) << 32
    assert caps & 0xFF == 0x10 and caps >> 9 & 3 == 3 and caps >> 24 & 1 and caps >> 32 & 0x3F == 56
    assert io.mmio_read(0x8, 4) == 2  # fctl.WSI
    d = DeviceDirectory(env.phys, env.frames)
    w64(io, DDTP, d.ddtp)
    assert io.mode is IommuMode.LVL1 and io.ddtp == d.ddtp
    io.mmio_write(DDTP, 4, (d.ddtp & 0xFFFF_FFF0) | 7)
    assert io.mode is IommuMode.LVL1
    assert [i.message for i in io.issues] == ["DDTP_LO: iommu_mode 7 is reserved or custom; the mode stays 1LVL"]
    io.mmio_write(0x38, 4, 0)  # pqb: not implemented
    assert io.issues[-1].message == "write of 4 byte(s) at offset 0x38: no register there"


def test_command_queue_in_ram(env):
    io = env.iommu
    space = env.attached(device_id=1, pscid=1)
    space.map(0x1000, env.frames.alloc(), 0x1000, RW_U)
    io.dma(1, 0x1000, 1, write=False)
    cq = env.frames.alloc()
    flag = env.frames.alloc()
    w64(io, CQB, (cq >> 12) << 10 | 3)  # 16 entries
    io.mmio_write(CQCSR, 4, 1)
    assert io.mmio_read(CQCSR, 4) == 1 | 1 << 16  # cqen, cqon
    cmds = [
        cmd_iotinval_vma(),
        cmd_iodir_inval_ddt(1),
        cmd_iofence_c(addr=flag, data=0xC0FFEE),
        bytes([0x7F]) + bytes(15),
        cmd_iofence_c(addr=flag + 4, data=7),
    ]
    for i, c in enumerate(cmds):
        env.phys.write(cq + 16 * i, c)
    io.mmio_write(CQT, 4, 5)
    assert io.mmio_read(CQH, 4) == 3  # stopped at the illegal command
    assert len(io.iotlb) == 0 and env.phys.read_u32(flag) == 0xC0FFEE
    assert io.mmio_read(CQCSR, 4) & 1 << 10  # cmd_ill
    assert io.issues[-1].message.startswith("CQT: command 3 (7f0000")
    assert io.issues[-1].message.endswith(": opcode 127 is reserved")
    env.phys.write(cq + 48, cmd_iofence_c())  # fix it, then clear cmd_ill (W1C): processing resumes
    io.mmio_write(CQCSR, 4, 1 | 1 << 10)
    assert io.mmio_read(CQH, 4) == 5 and env.phys.read_u32(flag + 4) == 7
    io.mmio_write(CQCSR, 4, 0)
    assert io.mmio_read(CQCSR, 4) == 0


def test_command_queue_fence_interrupt_and_memory_fault(env):
    io = env.iommu
    cq = env.frames.alloc()
    w64(io, CQB, (cq >> 12) << 10)  # 2 entries
    io.mmio_write(CQCSR, 4, 0b11)  # cqen, cie
    env.phys.write(cq, cmd_iofence_c(wsi=True))
    io.mmio_write(CQT, 4, 1)
    assert io.mmio_read(CQCSR, 4) & 1 << 11 and io.mmio_read(IPSR, 4) == 1 and env.irq.level
    io.mmio_write(IPSR, 4, 1)
    env.phys.write(cq + 16, cmd_iofence_c(addr=0x1000_0000, data=1))
    io.mmio_write(CQT, 4, 0)
    assert io.mmio_read(CQCSR, 4) & 1 << 8  # cqmf
    assert io.mmio_read(CQH, 4) == 1 and env.irq.level


def test_fault_queue_in_ram_with_overflow_rule(env):
    io = env.iommu
    fq = env.frames.alloc()
    w64(io, FQB, (fq >> 12) << 10 | 1)  # 4 entries: 3 records at most
    io.mmio_write(FQCSR, 4, 0)  # off (hwsim starts it on, host-side) ...
    assert io.mmio_read(FQCSR, 4) == 0
    io.dma(1, 0x1000, 1, write=False)  # queue off: not queued
    io.mmio_write(FQCSR, 4, 0b11)  # ... then on in RAM, with the interrupt
    assert io.mmio_read(FQCSR, 4) == 0b11 | 1 << 16
    for i in range(4):
        io.dma(2, 0x1000 * i, 4, write=bool(i & 1), data=bytes(4) if i & 1 else None)
    assert (io.mmio_read(FQH, 4), io.mmio_read(FQT, 4)) == (0, 3)
    assert io.mmio_read(FQCSR, 4) & 1 << 9  # fqof
    dw0 = env.phys.read_u64(fq + 32)
    assert (dw0 & 0xFFF, dw0 >> 34 & 0x3F, dw0 >> 40) == (256, 3, 2)  # cause, write, device 2
    assert env.phys.read_u64(fq + 32 + 16) == 0x1000
    io.mmio_write(FQH, 4, 3)  # software consumed all three
    assert len(io.fault_queue) == 0
    io.dma(2, 0x7000, 1, write=False)
    assert io.mmio_read(FQT, 4) == 3  # fqof still set: dropped
    io.mmio_write(FQCSR, 4, 0b11 | 1 << 9)  # W1C fqof
    io.dma(2, 0x8000, 1, write=False)
    assert io.mmio_read(FQT, 4) == 0 and env.phys.read_u64(fq + 3 * 32 + 16) == 0x8000


def test_driver_that_assumes_the_spec_reset_state_gets_a_ram_queue(env):
    io = env.iommu
    fq = env.frames.alloc()
    w64(io, FQB, (fq >> 12) << 10 | 2)  # 8 entries
    io.mmio_write(FQCSR, 4, 0b11)  # fqen without clearing it first
    io.dma(4, 0x5000, 1, write=False)
    assert io.mmio_read(FQT, 4) == 1 and env.phys.read_u64(fq + 16) == 0x5000
    io.mmio_write(FQCSR, 4, 0b11)  # already in RAM: no restart
    assert io.mmio_read(FQT, 4) == 1


def test_fault_queue_memory_fault(env):
    io = env.iommu
    w64(io, FQB, (0x1000_0000 >> 12) << 10)
    io.mmio_write(FQCSR, 4, 0)
    io.mmio_write(FQCSR, 4, 1)
    assert not io.dma(1, 0, 1, write=False).fault.queued
    assert io.mmio_read(FQCSR, 4) & 1 << 8  # fqmf


# -- the property -----------------------------------------------------------------------------------------

PAGES = 8
IOVA_BASE = 0x40_0000


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    perms=st.lists(st.sampled_from([None, "r", "rw"]), min_size=PAGES, max_size=PAGES),
    requests=st.lists(
        st.tuples(st.integers(-0x800, PAGES * 0x1000 + 0x800), st.integers(1, 0x2800), st.booleans()),
        min_size=1,
        max_size=6,
    ),
)
def test_a_device_never_dmas_outside_its_io_page_table(perms, requests):
    env = Env(ram_size=1 << 20)
    space = env.attached(device_id=3, pscid=3)
    frames = {}
    for i, p in enumerate(perms):
        if p is not None:
            frames[i] = env.frames.alloc()
            space.map(IOVA_BASE + i * 0x1000, frames[i], 0x1000, R_U | (Pte.W if p == "rw" else 0))
    for offset, size, write in requests:
        iova = IOVA_BASE + offset
        before = env.phys.read(RAM, 1 << 20)
        data = bytes((iova + k) & 0xFF for k in range(size)) if write else None
        result = env.iommu.dma(3, iova, size, write=write, data=data)
        pages = range((iova - IOVA_BASE) >> 12, (iova + size - 1 - IOVA_BASE >> 12) + 1)
        allowed = all(0 <= p < PAGES and perms[p] is not None and (not write or perms[p] == "rw") for p in pages)
        assert result.ok == allowed
        after = env.phys.read(RAM, 1 << 20)
        if not result.ok:
            assert after == before  # a refused request moves nothing
            first_bad = next(
                p for p in pages if not (0 <= p < PAGES and perms[p] is not None and (not write or perms[p] == "rw"))
            )
            assert result.fault.iova == max(iova, IOVA_BASE + first_bad * 0x1000)
            continue
        expected = bytearray(before)
        for k in range(size):
            va = iova + k
            pa = frames[(va - IOVA_BASE) >> 12] + (va & 0xFFF)
            if write:
                expected[pa - RAM] = data[k]
            else:
                assert result.data[k] == before[pa - RAM]
        assert after == bytes(expected)  # nothing else in RAM changed


def test_device_ids_wider_than_24_bits_are_refused(env):
    """A device model bug, not a guest's: a clear error instead of an overflow building the fault record."""
    with pytest.raises(IommuError, match=r"device ID 0x1000000 does not fit the IOMMU's 24-bit device IDs"):
        env.iommu.dma(1 << 24, 0x1000, 4, write=False)
    assert env.iommu.dma((1 << 24) - 1, 0x1000, 4, write=False).fault.to_record()  # the widest one works


def test_dma_observers_see_every_request_in_order_and_can_be_removed(env):
    seen = []
    remove_first = env.iommu.add_dma_observer(lambda *a: seen.append(("first", a[0], a[1], a[4].ok)))
    env.iommu.add_dma_observer(lambda *a: seen.append(("second", a[0], a[1], a[4].ok)))
    env.iommu.dma(1, 0x1000, 4, write=False)
    remove_first()
    env.iommu.dma(2, 0x2000, 4, write=False)
    assert seen == [("first", 1, 0x1000, False), ("second", 1, 0x1000, False), ("second", 2, 0x2000, False)]


def test_iotlb_counts_are_exact_for_one_page_requests(env):
    """Requests within one page take a fast path: it counts a hit, a miss or a refusal exactly once."""
    space = env.attached()
    frame = env.frames.alloc()
    space.map(0x5000, frame, 0x1000, R_U)
    stats = env.iommu.iotlb.stats
    before = (stats.lookups, stats.hits, stats.misses)
    assert env.iommu.dma(1, 0x5010, 8, write=False).ok  # a miss, walked and filled
    assert (stats.lookups, stats.hits, stats.misses) == (before[0] + 1, before[1], before[2] + 1)
    assert env.iommu.dma(1, 0x5020, 8, write=False).ok  # a hit
    assert (stats.lookups, stats.hits, stats.misses) == (before[0] + 2, before[1] + 1, before[2] + 1)
    assert not env.iommu.dma(1, 0x5020, 8, write=True, data=bytes(8)).ok  # the cached entry refuses it
    assert (stats.lookups, stats.hits, stats.misses) == (before[0] + 3, before[1] + 2, before[2] + 1)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    perms=st.lists(st.sampled_from([None, "x", "r", "rw", "rw-clean"]), min_size=4, max_size=4),
    requests=st.lists(
        st.tuples(st.integers(0, 4 * 0x1000 - 1), st.integers(1, 0x1800), st.booleans(), st.booleans()),
        min_size=1,
        max_size=12,
    ),
)
def test_the_one_page_fast_path_answers_as_the_general_path(perms, requests):
    """Requests answered from the IOTLB without the general path's bookkeeping come out as the general
    path would answer them: the same data or fault, the same RAM, the same IOTLB and IOMMU counts.  With a
    DMA trace on every request takes the general path; both runs see the same requests, in which a remap
    without invalidation (``stale``) leaves IOTLB entries the tables no longer agree with."""

    def run(traced: bool):
        env = Env(ram_size=1 << 20)
        space = env.attached(device_id=3, pscid=3, sade=True)
        frames = [env.frames.alloc() for _ in perms]
        for i, p in enumerate(perms):
            if p is not None:
                flags = Pte.U | Pte.X if p == "x" else R_U | (Pte.W if p != "r" else 0)
                space.map(IOVA_BASE + i * 0x1000, frames[i], 0x1000, flags, accessed=p != "rw-clean")
        outcomes = []
        for offset, size, write, stale in requests:
            if stale and perms[0] is not None:  # the tables change under the IOTLB: page 0 read-only, not invalidated
                space.protect(IOVA_BASE, 0x1000, R_U)
            data = bytes((offset + k) & 0xFF for k in range(size)) if write else None
            result = env.iommu.dma(3, IOVA_BASE + offset, size, write=write, data=data)
            outcomes.append((result.ok, result.data, result.fault and result.fault.format()))
        s, t = env.iommu.stats, env.iommu.iotlb.stats
        counts = (s.requests, s.bytes_read, s.bytes_written, s.faults, t.lookups, t.hits, t.misses, t.fills)
        return outcomes, env.phys.read(RAM, 1 << 20), counts

    fast = run(False)
    with tracing("dma", stream=io.StringIO()):
        general = run(True)
    assert fast == general
