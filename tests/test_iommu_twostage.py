"""The IOMMU's second stage (iohgatp Sv39x4/Sv48x4, option ``second_stage``): device contexts whose first-stage
tables live at guest-physical addresses, guest-page faults with iotval2, and random table pairs against the
transcription in ``spec_walk_2stage.py``."""

from __future__ import annotations

import struct

import pytest
from spec_walk_2stage import spec_two_stage
from test_mmu_twostage import FRAMES, RAM_BASE, Case

from hwsim.devices import IrqLine, VirtualClock
from hwsim.iommu import DeviceContext, Iommu, IommuCause
from hwsim.iommu.bits import CAP_SV39X4, CAP_SV48X4, TC_V
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu.bits import SV39, SV39X4, SV48, SV48X4, hgatp_fields, make_pte
from hwsim.mmu.walker import AdPolicy
from hwsim.riscv.priv import Access

V, R, W, X, U, A, D = 1, 2, 4, 8, 16, 64, 128
CASE_BYTES = FRAMES * 4096


class Env:
    """An IOMMU with a second stage and a 1-level directory; the tests' RAM (CASE_BYTES at RAM_BASE) and the
    directory's frames (far away, where no test PTE points) are separate regions."""

    def __init__(self, **options) -> None:
        self.phys = PhysicalMemory()
        self.phys.add_ram(RAM_BASE, CASE_BYTES, name="ram")
        self.frames = FrameAllocator(self.phys.add_ram(0xFF00_0000_0000, 1 << 20, name="directory"))
        self.iommu = Iommu(
            name="iommu", phys=self.phys, frames=self.frames, clock=VirtualClock(), irq=IrqLine(), **options
        )
        self.directory = self.iommu.create_directory()

    def set(self, device_id: int, ctx: DeviceContext) -> None:
        self.directory.set_context(device_id, ctx)
        self.iommu.iodir_inval_ddt(device_id)
        self.iommu.iotinval_vma()

    def load(self, ram: bytes) -> None:
        self.phys.write(RAM_BASE, bytes(ram))

    def ram(self) -> bytes:
        return self.phys.read(RAM_BASE, CASE_BYTES)


def _tables(env: Env) -> tuple[int, int]:
    """First stage Sv39 at GPAs 0x1000 (root), 0x2000, 0x3000 -> data GPA 0x4000; second stage Sv39x4 maps
    GPA page n to host RAM_BASE + (0x10 + n) pages.  Returns (iova, g_root)."""
    w = env.phys.write_u64
    g_root, g_l1, g_l0 = RAM_BASE, RAM_BASE + 0x4000, RAM_BASE + 0x5000
    w(g_root, make_pte(g_l1 >> 12, V))
    w(g_l1, make_pte(g_l0 >> 12, V))
    for n in range(5):
        w(g_l0 + n * 8, make_pte((RAM_BASE >> 12) + 0x10 + n, V | R | W | U | A | D))
    iova = (1 << 30) | (1 << 21) | (1 << 12) | 0x230
    host = lambda n: RAM_BASE + (0x10 + n) * 0x1000  # noqa: E731
    w(host(1) + 8, make_pte(2, V))
    w(host(2) + 8, make_pte(3, V))
    w(host(3) + 8, make_pte(4, V | R | W | U | A | D))
    return iova, g_root


def test_capabilities_advertise_the_x4_modes_only_with_the_option():
    caps = Env(second_stage=True).iommu.mmio_read(0, 4)
    assert caps & (CAP_SV39X4 | CAP_SV48X4) == CAP_SV39X4 | CAP_SV48X4
    assert Env().iommu.mmio_read(0, 4) & (CAP_SV39X4 | CAP_SV48X4) == 0


def test_dma_through_both_stages_lands_where_the_nested_walk_says():
    env = Env(second_stage=True)
    iova, g_root = _tables(env)
    env.set(7, DeviceContext.make(root=0x1000, mode=SV39, pscid=3, g_root=g_root, g_mode=SV39X4, gscid=2))
    assert env.iommu.dma(7, iova, 8, write=True, data=b"twostage").ok
    assert env.phys.read(RAM_BASE + 0x14000 + 0x230, 8) == b"twostage"
    r = env.iommu.dma(7, iova, 8, write=False)
    assert r.ok and r.data == b"twostage"
    # First stage Bare: the IOVA is the GPA.
    env.set(8, DeviceContext.make(root=None, mode=None, g_root=g_root, g_mode=SV39X4))
    assert env.iommu.dma(8, 0x4230, 8, write=False).data == b"twostage"


def test_guest_page_faults_carry_iotval2():
    env = Env(second_stage=True)
    iova, g_root = _tables(env)
    env.set(7, DeviceContext.make(root=0x1000, mode=SV39, g_root=g_root, g_mode=SV39X4))
    # The second stage maps the first stage's level-1 table page without U: an implicit read faults.
    env.phys.write_u64(RAM_BASE + 0x5000 + 2 * 8, make_pte((RAM_BASE >> 12) + 0x12, V | R | W | A | D))
    f = env.iommu.dma(7, iova, 4, write=True, data=b"abcd").fault
    assert f.cause is IommuCause.WRITE_GUEST_PAGE_FAULT and f.iotval2 == 0x2008 | 1
    assert f.reason == "second stage: U-mode access to a supervisor page (U=0)"
    assert struct.unpack_from("<4Q", f.to_record())[3] == 0x2008 | 1
    assert "G-stage: gpa 0x2008, for the read of the VS-stage level-1 PTE" in f.format()
    # Read-only second-stage mapping of the leaf table, A clear in the first-stage leaf: an implicit write.
    env.phys.write_u64(RAM_BASE + 0x5000 + 2 * 8, make_pte((RAM_BASE >> 12) + 0x12, V | R | W | U | A | D))
    env.phys.write_u64(RAM_BASE + 0x5000 + 3 * 8, make_pte((RAM_BASE >> 12) + 0x13, V | R | U | A | D))
    env.phys.write_u64(RAM_BASE + 0x13000 + 8, make_pte(4, V | R | W | U))
    env.set(7, DeviceContext.make(root=0x1000, mode=SV39, g_root=g_root, g_mode=SV39X4))
    f = env.iommu.dma(7, iova, 4, write=False).fault
    assert f.cause is IommuCause.READ_GUEST_PAGE_FAULT and f.iotval2 == 0x3008 | 3
    # The final GPA unmapped: not an implicit access.
    env.phys.write_u64(RAM_BASE + 0x13000 + 8, make_pte(5, V | R | W | U | A | D))
    f = env.iommu.dma(7, iova, 4, write=False).fault
    assert f.cause is IommuCause.READ_GUEST_PAGE_FAULT and f.iotval2 == 0x5230
    # A first-stage fault is an ordinary page fault.
    env.phys.write_u64(RAM_BASE + 0x13000 + 8, 0)
    f = env.iommu.dma(7, iova, 4, write=False).fault
    assert f.cause is IommuCause.READ_PAGE_FAULT and f.iotval2 == 0 and f.reason.startswith("first stage: ")


@pytest.mark.parametrize(
    "iohgatp, problem",
    [
        (10 << 60, "iohgatp.MODE=10 is not a supported mode (0 Bare, 8 Sv39x4, 9 Sv48x4)"),
        (8 << 60 | 0x80001, "iohgatp.PPN 0x80001 is not aligned to the 16 KiB root table"),
    ],
)
def test_misconfigured_second_stage(iohgatp, problem):
    env = Env(second_stage=True)
    addr = env.directory.set_context(3, DeviceContext(TC_V, iohgatp=iohgatp))
    f = env.iommu.dma(3, 0, 1, write=False).fault
    assert f.cause is IommuCause.DDT_MISCONFIGURED
    assert f.reason == f"the device context of device 3 at {addr:#x}: {problem}"


def test_gvma_invalidation_is_legal_with_a_second_stage():
    from hwsim.iommu.bits import IOTINVAL_GVMA, Opcode, make_command

    assert Env(second_stage=True).iommu.execute(make_command(Opcode.IOTINVAL, IOTINVAL_GVMA)) == 0
    with pytest.raises(Exception, match="IOTINVAL.GVMA needs second-stage translation"):
        Env().iommu.execute(make_command(Opcode.IOTINVAL, IOTINVAL_GVMA))


def test_random_table_pairs_agree_with_the_transcription():
    env = Env(second_stage=True)
    outcomes: dict[str, int] = {}
    checked = 0
    for seed in range(2500):
        case = Case(seed)
        if case.ad is AdPolicy.REPORT or (case.g_mode is None and case.vs_mode is None):
            continue
        write = case.access is Access.STORE
        env.load(case.ram)
        g_mode = {8: SV39X4, 9: SV48X4}.get(case.hgatp >> 60)
        vs_mode = {8: SV39, 9: SV48}.get(case.vsatp >> 60)
        ctx = DeviceContext.make(
            root=(case.vsatp & ((1 << 44) - 1)) << 12 if vs_mode else None,
            mode=vs_mode,
            pscid=1,
            sade=case.ad is AdPolicy.UPDATE,
            g_root=hgatp_fields(case.hgatp)[2] << 12,
            g_mode=g_mode,
            gade=case.ad is AdPolicy.UPDATE,
        )
        env.set(1, ctx)
        result = env.iommu.dma(1, case.va, 8, write=write, data=b"\x5a" * 8 if write else None)
        ram = bytearray(case.ram)
        want = spec_two_stage(
            ram,
            RAM_BASE,
            case.vsatp,
            case.hgatp,
            case.va,
            "store" if write else "load",
            "U",
            False,
            False,
            False,
            case.ad.value,
        )
        if want["result"] == "ok":
            if not RAM_BASE <= want["pa"] <= RAM_BASE + CASE_BYTES - 8:
                assert result.fault.cause in (IommuCause.READ_ACCESS_FAULT, IommuCause.WRITE_ACCESS_FAULT), seed
                key = "not-ram"
            else:
                assert result.ok, (seed, result.fault and result.fault.format())
                key = "ok"
        else:
            f = result.fault
            assert f is not None and int(f.cause) == want["cause"], (seed, want, f and f.format())
            if want["cause"] in (21, 23):
                assert f.iotval2 & ~3 == want["htval"] << 2, seed
            key = f.cause.name
        after = env.ram()
        if want["result"] == "ok" and key == "ok" and write:  # the DMA's own bytes, where the spec put the pa
            offset = want["pa"] - RAM_BASE
            assert after[offset : offset + 8] == b"\x5a" * 8, seed
            ram[offset : offset + 8] = b"\x5a" * 8
        assert after == bytes(ram), seed  # the same A/D updates in both stages
        outcomes[key] = outcomes.get(key, 0) + 1
        checked += 1
    assert checked > 1500, checked
    assert {"ok", "READ_GUEST_PAGE_FAULT", "WRITE_GUEST_PAGE_FAULT", "READ_PAGE_FAULT", "WRITE_PAGE_FAULT"} <= set(
        outcomes
    ), outcomes
