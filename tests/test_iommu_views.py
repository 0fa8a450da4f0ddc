"""hwsim.iommu.views: a range translated and vouched for once, then read and written field by field; every
invalidation the IOMMU is told of (IOTINVAL.VMA, IODIR.INVAL_DDT, ddtp, reset, invalidate_views) makes it
invalid, and nothing is ever read or written through an invalid view."""

from __future__ import annotations

import io

import pytest
from test_iommu import R_U, RW_U, Env

from hwsim.iommu.views import StaleViewError
from hwsim.trace import tracing

IOVA = 0x4000


@pytest.fixture
def env():
    return Env()


def two_pages(env, flags=RW_U, pscid=1):
    """Device 1 with IOVA 0x4000-0x5fff on two frames that are not adjacent; returns (space, frames)."""
    space = env.attached(pscid=pscid)
    a, _gap, b = env.frames.alloc(), env.frames.alloc(), env.frames.alloc()
    space.map(IOVA, a, 0x1000, flags)
    space.map(IOVA + 0x1000, b, 0x1000, flags)
    return space, (a, b)


def test_a_view_reads_and_writes_the_translated_bytes_across_pages_counting_each_access(env):
    _space, (a, b) = two_pages(env)
    env.phys.write(a + 0xFFC, b"\x01\x02\x03\x04")
    env.phys.write(b, b"\x05\x06\x07\x08")
    reads = env.iommu.open_view(1, IOVA + 0xFF0, 0x20, write=False)
    writes = env.iommu.open_view(1, IOVA + 0xFF0, 0x20, write=True)
    assert reads is not None and writes is not None and env.iommu.stats.views == 2
    requests = env.iommu.stats.requests
    assert reads.read(0xC, 8) == bytes(range(1, 9))  # four bytes from each frame
    writes.write_at(0xE, b"ABCD")
    assert env.phys.read(a + 0xFFE, 2) == b"AB" and env.phys.read(b, 2) == b"CD"
    assert env.iommu.stats.requests == requests + 2 and env.iommu.fault_log == []


def test_a_view_is_refused_without_a_fault_when_a_request_would_fault(env):
    space, _ = two_pages(env, flags=R_U)
    assert env.iommu.open_view(1, IOVA, 0x2000, write=True) is None  # read-only pages
    assert env.iommu.open_view(1, IOVA + 0x1800, 0x1000, write=False) is None  # runs into an unmapped page
    assert env.iommu.open_view(2, IOVA, 0x10, write=False) is None  # a device without a context
    assert env.iommu.fault_log == [] and env.iommu.stats.faults == 0 and env.iommu.stats.views == 0
    assert env.iommu.open_view(1, IOVA, 0x2000, write=False) is not None


def test_bare_and_off_modes_make_no_views(env):
    assert env.iommu.open_view(1, 0x8000_0000, 16, write=False) is None  # Off
    env.iommu.set_mode("bare")
    assert env.iommu.open_view(1, 0x8000_0000, 16, write=False) is None


def test_an_observer_that_cannot_vouch_keeps_devices_on_single_requests(env):
    two_pages(env)
    remove = env.iommu.add_dma_observer(lambda *a: None)
    assert env.iommu.open_view(1, IOVA, 16, write=False) is None
    remove()
    asked = []

    def vouch(*args):
        asked.append(args)
        return args[1] != IOVA + 0x100

    env.iommu.add_dma_observer(lambda *a: None, vouch=vouch)
    assert env.iommu.open_view(1, IOVA + 0x100, 16, write=False) is None
    assert env.iommu.open_view(1, IOVA + 0x200, 16, write=True) is not None
    assert asked == [(1, IOVA + 0x100, 16, False), (1, IOVA + 0x200, 16, True)]


def test_adding_an_observer_invalidates_views_it_did_not_vouch_for(env):
    two_pages(env)
    view = env.iommu.open_view(1, IOVA, 16, write=False)
    env.iommu.add_dma_observer(lambda *a: None, vouch=lambda *a: True)
    assert not view.valid


def test_no_view_while_dma_tracing_is_on(env):
    two_pages(env)
    with tracing("dma", stream=io.StringIO()):
        assert env.iommu.open_view(1, IOVA, 16, write=False) is None
    assert env.iommu.open_view(1, IOVA, 16, write=False) is not None


INVALIDATIONS = {
    "IOTINVAL.VMA of a page of the view": lambda io: io.iotinval_vma(IOVA + 0x1000, pscid=1),
    "IOTINVAL.VMA of its PSCID": lambda io: io.iotinval_vma(pscid=1),
    "IOTINVAL.VMA of everything": lambda io: io.iotinval_vma(),
    "IODIR.INVAL_DDT of its device": lambda io: io.iodir_inval_ddt(1),
    "IODIR.INVAL_DDT of every device": lambda io: io.iodir_inval_ddt(),
    "a ddtp write": lambda io: io.set_ddtp(io.ddtp),
    "a reset": lambda io: io.reset(),
    "invalidate_views of the range": lambda io: io.invalidate_views(1, IOVA + 0x1FFF, 1),
    "detach": lambda io: io.detach(1),
}


@pytest.mark.parametrize("what", sorted(INVALIDATIONS))
def test_every_invalidation_makes_the_view_unusable(env, what):
    """The attack: the mapping behind the view moves, software invalidates; a stale view would still
    reach the old frame.  Using it raises instead, and a new view (or request) sees the new mapping."""
    space, (a, b) = two_pages(env)
    view = env.iommu.open_view(1, IOVA, 0x2000, write=False)
    assert view.read(0x1000, 4) == bytes(4)
    moved = env.frames.alloc()
    env.phys.write(moved, b"new!")
    space.unmap(IOVA + 0x1000, 0x1000)
    space.map(IOVA + 0x1000, moved, 0x1000, RW_U)
    INVALIDATIONS[what](env.iommu)
    assert not view.valid
    with pytest.raises(StaleViewError, match=r"device 1 read through a view of iova 0x4000 invalidated"):
        view.read(0x1000, 4)
    if what in ("a reset", "detach"):
        return  # (the device has no context any more: no new view)
    env.iommu.iotinval_vma(pscid=1)  # the IOTLB may still hold the old page: software flushes it as well
    fresh = env.iommu.open_view(1, IOVA, 0x2000, write=False)
    assert fresh is not None and fresh.read(0x1000, 4) == b"new!"


def test_invalidations_elsewhere_leave_the_view_alone(env):
    two_pages(env)
    other = env.attached(device_id=2, pscid=2)
    other.map(IOVA, env.frames.alloc(), 0x1000, RW_U)
    view = env.iommu.open_view(1, IOVA, 0x2000, write=False)
    env.iommu.iotinval_vma(IOVA + 0x2000, pscid=1)  # a page after the view
    env.iommu.iotinval_vma(IOVA, pscid=2)  # another PSCID
    env.iommu.iodir_inval_ddt(2)  # another device
    env.iommu.invalidate_views(1, IOVA + 0x2000, 0x1000)  # past its end
    env.iommu.invalidate_views(2)
    assert view.valid and view.read(0, 4) == bytes(4)


def test_a_closed_view_is_forgotten_and_unusable(env):
    two_pages(env)
    view = env.iommu.open_view(1, IOVA, 16, write=True)
    view.close()
    assert env.iommu.invalidate_views() == 0
    with pytest.raises(StaleViewError, match="wrote through a view of iova 0x4000 invalidated"):
        view.write_at(0, b"x")


def test_accesses_outside_the_view_or_against_its_direction_are_refused(env):
    two_pages(env)
    reads = env.iommu.open_view(1, IOVA, 16, write=False)
    writes = env.iommu.open_view(1, IOVA, 16, write=True)
    with pytest.raises(StaleViewError, match=r"read \[0xc, \+8\) outside the 16-byte read view"):
        reads.read(12, 8)
    with pytest.raises(StaleViewError, match="of a read view"):
        reads.write_at(0, b"x")
    with pytest.raises(StaleViewError, match="of a write view"):
        writes.read(0, 1)
    with pytest.raises(StaleViewError, match=r"write \[0x10, \+1\) outside"):
        writes.write_at(16, b"x")


def test_an_iotinval_anywhere_in_a_superpage_invalidates_a_view_of_another_part_of_it(env):
    """IOTINVAL.VMA of one address drops the whole superpage's IOTLB entry; a view translated with that
    superpage goes with it, though its own bytes are 1 MiB away."""
    space = env.attached()
    big = env.frames.alloc(512, align=0x20_0000)
    space.map(0x20_0000, big, 0x20_0000, RW_U, page_size=0x20_0000)
    view = env.iommu.open_view(1, 0x20_1000, 64, write=False)
    assert view.pages == ((0x20_0000, 0x20_0000),)
    env.iommu.iotinval_vma(0x30_0000, pscid=1)
    assert not view.valid


# -- DmaPort.read_repeated / write_repeated: a view opened when a range comes again ----------------------


def test_a_range_requested_again_opens_a_view_and_later_requests_use_it_counted_as_requests(env):
    _space, (a, _b) = two_pages(env)
    env.phys.write(a, b"abcd")
    port = env.iommu.port(1)
    assert port.read_repeated(IOVA, 4).data == b"abcd" and env.iommu.stats.views == 0  # a request
    assert port.read_repeated(IOVA, 4).data == b"abcd" and env.iommu.stats.views == 1  # a request, then the view
    env.phys.write(a, b"efgh")  # (the view reaches RAM: nothing of the data is cached)
    assert port.read_repeated(IOVA, 4).data == b"efgh" and env.iommu.stats.views == 1
    for _ in range(3):
        assert port.write_repeated(IOVA + 0x1FFC, b"wxyz").ok
    assert env.iommu.stats.views == 2 and env.phys.read(_b + 0xFFC, 4) == b"wxyz"
    stats = env.iommu.stats
    assert (stats.requests, stats.bytes_read, stats.bytes_written, stats.faults) == (6, 12, 12, 0)
    assert port.read_repeated(IOVA, 8).data == b"efgh" + bytes(4)  # another range: a request again
    assert env.iommu.stats.views == 2 and env.iommu.stats.requests == 7
    port.forget_repeated()
    assert env.iommu.invalidate_views() == 0  # (the write view was closed too)


@pytest.mark.parametrize("what", sorted(INVALIDATIONS))
def test_an_invalidation_between_two_repeated_requests_makes_the_next_one_see_the_new_mapping(env, what):
    """The attack on the device's cached translation: the page behind a range it keeps reading is moved
    (or, for reset and detach, the device loses its context), software invalidates, and the device reads
    the range again.  It must see the new page or fault exactly as an ordinary request does, never the
    old frame."""
    space, (a, b) = two_pages(env)
    env.phys.write(b, b"old!")
    port = env.iommu.port(1)
    for _ in range(3):
        assert port.read_repeated(IOVA + 0x1000, 4).data == b"old!"
    assert env.iommu.stats.views == 1
    moved = env.frames.alloc()
    env.phys.write(moved, b"new!")
    space.unmap(IOVA + 0x1000, 0x1000)
    space.map(IOVA + 0x1000, moved, 0x1000, RW_U)
    INVALIDATIONS[what](env.iommu)
    env.iommu.iotinval_vma(pscid=1)  # (the IOTLB may still hold the old page: software flushes it as well)
    again = port.read_repeated(IOVA + 0x1000, 4)
    plain = port.read(IOVA + 0x1000, 4)
    if what in ("a reset", "detach"):
        assert not again.ok and not plain.ok and again.fault.message == plain.fault.message
        assert env.iommu.fault_log[-2:] == [again.fault, plain.fault]
        return
    assert again.data == plain.data == b"new!"


def test_a_range_unmapped_between_two_repeated_requests_faults_and_is_recorded(env):
    space, _ = two_pages(env)
    port = env.iommu.port(1)
    for _ in range(3):
        assert port.write_repeated(IOVA, b"1234").ok
    space.unmap(IOVA, 0x1000)
    env.iommu.iotinval_vma(IOVA, pscid=1)
    late = port.write_repeated(IOVA, b"5678")
    assert not late.ok and late.fault.iova == IOVA and env.iommu.fault_log == [late.fault]
    assert "DMA write at iova 0x4000" in late.fault.message and env.iommu.stats.faults == 1
    assert not port.write_repeated(IOVA, b"5678").ok and env.iommu.stats.faults == 2  # no view after a fault


def test_repeated_requests_reach_an_observer_that_refuses_to_vouch_and_it_is_asked_once_per_range(env):
    two_pages(env)
    seen, asked = [], []
    env.iommu.add_dma_observer(
        lambda *request: seen.append(request[:4]), vouch=lambda *args: asked.append(args) or args[1] != IOVA
    )
    port = env.iommu.port(1)
    for _ in range(4):
        assert port.read_repeated(IOVA, 16).ok
    assert seen == [(1, IOVA, 16, False)] * 4 and asked == [(1, IOVA, 16, False)]
    for _ in range(3):
        assert port.read_repeated(IOVA + 16, 16).ok
    assert len(seen) == 6 and asked[1:] == [(1, IOVA + 16, 16, False)]  # the second opened a view, the third used it


def test_repeated_requests_are_traced_while_dma_tracing_is_on(env):
    two_pages(env)
    port = env.iommu.port(1)
    for _ in range(3):
        port.read_repeated(IOVA, 4)
    assert env.iommu.stats.views == 1  # (opened before the trace began)
    out = io.StringIO()
    with tracing("dma", stream=out):
        for _ in range(2):
            assert port.read_repeated(IOVA, 4).ok
    assert out.getvalue().count("dma   #1 read 4 bytes at iova 0x4000 -> pa ") == 2


def test_repeated_and_ordinary_requests_agree_on_a_random_run_of_maps_unmaps_and_invalidations():
    """Differential: one IOMMU serves a device's requests with read_repeated/write_repeated, its twin with
    read/write; the same seeded run of requests (a few ranges, often repeated), remaps, unmaps and
    invalidations (and a remap left uninvalidated) gives the same results, faults, statistics and RAM."""
    import random

    from test_iommu import Env

    for seed in range(6):
        rng = random.Random(seed)
        twins = [Env(), Env()]
        spaces = [two_pages(e)[0] for e in twins]
        ports = [e.iommu.port(1) for e in twins]
        ranges = [(IOVA, 16), (IOVA + 0xFF8, 16), (IOVA + 0x1000, 0x1000), (IOVA, 0x2000), (IOVA + 0x1FF0, 32)]
        for _step in range(300):
            op = rng.random()
            if op < 0.8:
                iova, size = rng.choice(ranges[:3]) if rng.random() < 0.7 else rng.choice(ranges)
                write = rng.random() < 0.4
                data = bytes(rng.randrange(256) for _ in range(size)) if write else None
                results = []
                for port, repeated in zip(ports, (True, False)):
                    if write:
                        r = port.write_repeated(iova, data) if repeated else port.write(iova, data)
                    else:
                        r = port.read_repeated(iova, size) if repeated else port.read(iova, size)
                    results.append((r.ok, r.data, r.fault.message if r.fault else None))
                assert results[0] == results[1], (seed, _step)
                continue
            page = IOVA + 0x1000 * rng.randrange(2)
            action = rng.randrange(4)
            frame = twins[0].frames.alloc()
            assert twins[1].frames.alloc() == frame  # (the twins allocate alike)
            for env, space in zip(twins, spaces):
                if action == 0:  # unmap and invalidate
                    if space.lookup(page) is not None:
                        space.unmap(page, 0x1000)
                    env.iommu.iotinval_vma(page, pscid=1)
                elif action == 1:  # remap somewhere else and invalidate
                    if space.lookup(page) is not None:
                        space.unmap(page, 0x1000)
                    space.map(page, frame, 0x1000, RW_U if seed % 2 else R_U)
                    env.iommu.iotinval_vma(page, pscid=1)
                elif action == 2:
                    env.iommu.iotinval_vma(pscid=1)
                else:
                    env.iommu.invalidate_views()
        for attr in ("requests", "bytes_read", "bytes_written", "faults", "page_walks"):
            assert getattr(twins[0].iommu.stats, attr) == getattr(twins[1].iommu.stats, attr), (seed, attr)
        assert [f.message for f in twins[0].iommu.fault_log] == [f.message for f in twins[1].iommu.fault_log]
        assert bytes(twins[0].phys.ram_regions[0].view) == bytes(twins[1].phys.ram_regions[0].view)
    assert twins[0].iommu.stats.views > 0 and twins[1].iommu.stats.views == 0


def test_copy_to_moves_a_read_views_bytes_into_a_write_view_as_a_read_then_a_write():
    """Two requests counted; across pages on frames that are not adjacent; ranges that overlap in RAM end
    as a read into a buffer then a write would leave them (both ways, and into a view of two pieces)."""
    for shift in (8, -8):
        env = Env()
        _space, (a, b) = two_pages(env)
        pattern = bytes(range(256)) * 32
        env.phys.write(a, pattern[:0x1000])
        env.phys.write(b, pattern[0x1000:])
        expected = bytearray(pattern)
        src, dst, n = 0xF00 - min(shift, 0), 0xF00 + max(shift, 0), 0x200  # (crossing into the second page)
        expected[dst : dst + n] = pattern[src : src + n]
        reads = env.iommu.open_view(1, IOVA + src, n, write=False)
        writes = env.iommu.open_view(1, IOVA + dst, n, write=True)
        requests = env.iommu.stats.requests
        reads.copy_to(writes)
        assert env.phys.read(a, 0x1000) + env.phys.read(b, 0x1000) == bytes(expected), shift
        stats = env.iommu.stats
        assert (stats.requests - requests, stats.bytes_read, stats.bytes_written) == (2, n, n)
        for src, dst in ((0xE00, 0xF00), (0x10, 0x18), (0x18, 0x10)):  # one piece into two, one into one
            single = env.iommu.open_view(1, IOVA + src, n, write=False)
            target = env.iommu.open_view(1, IOVA + dst, n, write=True)
            before = bytearray(env.phys.read(a, 0x1000) + env.phys.read(b, 0x1000))
            before[dst : dst + n] = before[src : src + n]
            single.copy_to(target)
            assert env.phys.read(a, 0x1000) + env.phys.read(b, 0x1000) == bytes(before), (src, dst)


def test_copy_to_refuses_an_invalid_view_or_the_wrong_directions(env):
    two_pages(env)
    reads = env.iommu.open_view(1, IOVA, 16, write=False)
    writes = env.iommu.open_view(1, IOVA + 0x100, 16, write=True)
    with pytest.raises(StaleViewError, match="of a write view"):
        writes.copy_to(reads)
    env.iommu.iotinval_vma(IOVA, pscid=1)
    with pytest.raises(StaleViewError, match="device 1 read through a view of iova 0x4000 invalidated"):
        reads.copy_to(writes)


def test_move_repeated_goes_view_to_view_only_while_both_ranges_have_valid_views(env):
    space, (a, _b) = two_pages(env)
    env.phys.write(a, b"0123456789abcdef")
    port = env.iommu.port(1)
    assert not port.move_repeated(IOVA, IOVA + 0x1800, 16)  # no views yet
    for _ in range(2):  # what the DMA engine does when move_repeated declines
        assert port.write_repeated(IOVA + 0x1800, port.read_repeated(IOVA, 16).data).ok
    requests = env.iommu.stats.requests
    env.phys.write(a, b"fedcba9876543210")
    assert port.move_repeated(IOVA, IOVA + 0x1800, 16) and env.iommu.stats.requests == requests + 2
    assert env.phys.read(_b + 0x800, 16) == b"fedcba9876543210"
    assert not port.move_repeated(IOVA, IOVA + 0x1800, 8)  # another size
    assert not port.move_repeated(IOVA + 1, IOVA + 0x1800, 16)  # another source
    space.unmap(IOVA + 0x1000, 0x1000)
    env.iommu.iotinval_vma(IOVA + 0x1000, pscid=1)  # the destination's page goes: its view with it
    assert not port.move_repeated(IOVA, IOVA + 0x1800, 16) and env.iommu.stats.requests == requests + 2
    late = port.write_repeated(IOVA + 0x1800, b"x" * 16)
    assert not late.ok and env.iommu.fault_log == [late.fault]
    with tracing("dma", stream=io.StringIO()):
        assert not port.move_repeated(IOVA, IOVA + 0x1800, 16)
