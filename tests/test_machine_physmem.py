"""hwsim.machine.physmem and frames: the physical map, bus errors, and the frame allocator."""

from __future__ import annotations

import pytest

from hwsim.errors import BusError, ConfigError, OutOfFrames
from hwsim.machine import FrameAllocator, FrameError, PhysicalMemory

RAM = 0x8000_0000


class Dev:
    def __init__(self):
        self.log = []

    def mmio_read(self, off, size):
        self.log.append((off, size))
        return 7

    def mmio_write(self, off, size, value):
        self.log.append((off, size, value))


@pytest.fixture
def phys():
    p = PhysicalMemory()
    p.add_ram(RAM, 1 << 20)
    return p


def test_ram_views_are_zero_copy(phys):
    view = phys.view(RAM + 0x100, 16)
    view[:4] = b"abcd"
    assert phys.read(RAM + 0x100, 4) == b"abcd"
    phys.write_u64(RAM + 8, 0x1122334455667788)
    assert phys.read(RAM + 8, 2) == b"\x88\x77" and phys.read_u32(RAM + 12) == 0x11223344
    phys.fill(RAM, 8, 0xFF)
    assert phys.read_u64(RAM) == 0xFFFF_FFFF_FFFF_FFFF


@pytest.mark.parametrize(
    "pa,size,message",
    [
        (0x1000, 8, "no RAM or device at physical address 0x1000"),
        (
            RAM + (1 << 20) - 4,
            8,
            r"physical access \[0x800ffffc, 0x80100004\) runs past the end of 'ram' at 0x80100000",
        ),
        (0x1000_0010, 4, r"physical access \[0x10000010, 0x10000014\) is in the MMIO window of 'uart', not RAM"),
    ],
)
def test_bus_errors_name_the_problem(phys, pa, size, message):
    phys.add_mmio(0x1000_0000, 0x1000, Dev(), name="uart")
    with pytest.raises(BusError, match=message) as info:
        phys.read(pa, size)
    assert (info.value.address, info.value.size) == (pa, size)


def test_regions_must_not_overlap_and_must_be_aligned(phys):
    with pytest.raises(
        ConfigError, match=r"region 'dev' \[0x800ff000, 0x80100000\) overlaps 'ram' \[0x80000000, 0x80100000\)"
    ):
        phys.add_mmio(RAM + 0xFF000, 0x1000, Dev(), name="dev")
    with pytest.raises(ConfigError, match="base 0x10 and size 0x1000 must be multiples of 0x1000"):
        phys.add_ram(0x10, 0x1000, name="odd")
    with pytest.raises(ConfigError, match="base must be >= 0 and size > 0"):
        phys.add_ram(0x1000, 0, name="empty")
    with pytest.raises(ConfigError, match="has no mmio_read"):
        phys.add_mmio(0x2000, 0x1000, object(), name="nothing")


def test_mmio_dispatch(phys):
    dev = Dev()
    phys.add_mmio(0x1000_0000, 0x1000, dev, name="uart")
    assert phys.mmio_read(0x1000_0004, 4) == 7
    phys.mmio_write(0x1000_0008, 1, 0x41)
    assert dev.log == [(4, 4), (8, 1, 0x41)]
    with pytest.raises(BusError, match="no device register at physical address 0x20000000"):
        phys.mmio_read(0x2000_0000, 4)
    assert [r.name for r in phys.regions] == ["uart", "ram"]


def test_frames_alloc_free_and_accounting(phys):
    frames = FrameAllocator(phys.ram_regions[0])
    assert (frames.nframes, frames.committed) == (256, 0)
    a = frames.alloc()
    b = frames.alloc(4)
    assert a == RAM and b == RAM + 0x1000 and frames.committed == 5
    frames.free(b, 4)
    assert frames.committed == 1 and not frames.is_allocated(b)
    with pytest.raises(FrameError, match="double free: frame 0x80001000 is not allocated"):
        frames.free(b)
    assert frames.peak == 5


def test_frames_are_zeroed_and_aligned(phys):
    frames = FrameAllocator(phys.ram_regions[0])
    frames.alloc()
    phys.fill(RAM + 0x1000, 0x1000, 0xAA)
    pa = frames.alloc(zero=True)
    assert pa == RAM + 0x1000 and phys.read(pa, 0x1000) == bytes(0x1000)
    big = frames.alloc(2, align=0x10000)
    assert big % 0x10000 == 0


def test_out_of_frames_says_how_much_is_left(phys):
    frames = FrameAllocator(phys.ram_regions[0])
    frames.alloc(250)
    with pytest.raises(
        OutOfFrames, match=r"no run of 8 free frame\(s\) aligned to 0x1000 in 'ram' \(6 of 256 frames free\)"
    ):
        frames.alloc(8)
    with pytest.raises(FrameError, match="alignment must be a power of two >= 4096, not 0x3000"):
        frames.alloc(1, align=0x3000)
    with pytest.raises(FrameError, match="frame count must be positive, not 0"):
        frames.alloc(0)


def test_reserve(phys):
    frames = FrameAllocator(phys.ram_regions[0])
    frames.reserve(RAM + 0x1800, 0x1000)  # rounds out to two frames
    assert frames.committed == 2 and frames.alloc() == RAM
    with pytest.raises(FrameError, match="some frames are already in use"):
        frames.reserve(RAM, 0x1000)
    with pytest.raises(FrameError, match="outside RAM region 'ram'"):
        frames.free(0x1000)
