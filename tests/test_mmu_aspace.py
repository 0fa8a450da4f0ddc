"""hwsim.mmu.aspace: page tables built by map/unmap/protect, checked with the walker."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hwsim.errors import MappingError
from hwsim.machine import Machine
from hwsim.machine.frames import FrameAllocator
from hwsim.machine.physmem import PhysicalMemory
from hwsim.mmu import AddressSpace, Pte, parse_flags, walk
from hwsim.mmu.bits import SV48
from hwsim.riscv.priv import Access, Priv

RAM = 0x8000_0000
RW = Pte.R | Pte.W | Pte.U


@pytest.fixture
def env():
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 16 << 20))
    return phys, frames


@pytest.fixture
def space(env):
    return AddressSpace(*env, asid=3)


def translate(space, va, access=Access.LOAD, priv=Priv.U):
    return walk(space.phys, space.root, va, access, priv, mode=space.mode)


def test_map_4k_and_lookup(space):
    space.map(0x1000, RAM + 0x40_0000, 0x2000, RW)
    m = space.lookup(0x1FFF)
    assert (m.va, m.pa, m.size, m.level) == (0x1000, RAM + 0x40_0000, 4096, 0)
    assert m.flags == Pte.V | Pte.R | Pte.W | Pte.U | Pte.A | Pte.D
    assert translate(space, 0x2ABC).translation.pa == RAM + 0x40_1ABC
    assert space.lookup(0x3000) is None
    assert space.satp == (8 << 60) | (3 << 44) | (space.root >> 12)


def test_accessed_false_leaves_a_and_d_clear(space):
    space.map(0x1000, RAM + 0x40_0000, 0x1000, RW, accessed=False)
    assert space.lookup(0x1000).flags == Pte.V | RW


def test_largest_pages_are_used_when_aligned(space):
    space.map(0x20_0000 - 0x1000, RAM + 0x20_0000 - 0x1000, 0x20_2000, RW)
    sizes = [(m.va, m.size) for m in space.mappings()]
    assert sizes == [(0x1F_F000, 4096), (0x20_0000, 2 << 20), (0x40_0000, 4096)]
    space.map(1 << 30, 0, 1 << 30, Pte.R)
    assert space.lookup((1 << 30) + 12345).size == 1 << 30


def test_forced_page_size(space):
    space.map(0x20_0000, RAM + 0x20_0000, 0x20_0000, RW, page_size=4096)
    assert {m.size for m in space.mappings()} == {4096}
    with pytest.raises(MappingError, match="not aligned to page size 0x200000"):
        space.map(0x80_1000, RAM, 0x20_0000, RW, page_size=0x20_0000)
    with pytest.raises(MappingError, match="page size 0x3000 is not one of 0x1000, 0x200000, 0x40000000"):
        space.map(0x100_0000, RAM, 0x3000, RW, page_size=0x3000)


def test_overlapping_map_is_refused_and_changes_nothing(space, env):
    _phys, frames = env
    space.map(0x5000, RAM + 0x40_0000, 0x1000, RW)
    before = frames.committed
    with pytest.raises(MappingError, match="map: 0x5000 is already mapped"):
        space.map(0x3000, RAM + 0x50_0000, 0x3000, RW)
    assert space.lookup(0x3000) is None and frames.committed == before


def test_a_single_page_map_over_a_page_or_inside_a_superpage_is_refused_and_changes_nothing(space, env):
    """One base page is mapped in one descent (no lookup first): it must fail as cleanly."""
    _phys, frames = env
    space.map(0x5000, RAM + 0x40_0000, 0x1000, RW)
    space.map(0x40_0000, RAM + 0x20_0000, 0x20_0000, RW)  # a 2 MiB superpage
    tables, before = space.table_frames, frames.committed
    with pytest.raises(MappingError, match="map: 0x5000 is already mapped"):
        space.map(0x5000, RAM + 0x50_0000, 0x1000, RW)
    with pytest.raises(MappingError, match="map: 0x401000 lies in an existing superpage"):
        space.map(0x40_1000, RAM + 0x50_0000, 0x1000, RW)
    assert space.table_frames == tables and frames.committed == before
    assert space.lookup(0x5000).pa == RAM + 0x40_0000 and space.lookup(0x40_1000).size == 0x20_0000


@pytest.mark.parametrize(
    "args,message",
    [
        ((0x1001, RAM, 0x1000, RW), "map: va 0x1001 and size 0x1000 must be positive multiples of 4 KiB"),
        ((0x1000, RAM, 0, RW), "must be positive multiples of 4 KiB"),
        ((0x1000, RAM + 1, 0x1000, RW), "physical address 0x80000001 must be 4 KiB aligned"),
        ((1 << 38, RAM, 0x1000, RW), r"\[0x4000000000, 0x4000001000\) is not a canonical Sv39 range"),
        ((0x1000, RAM, 0x1000, Pte.W), "W without R is a reserved encoding"),
        ((0x1000, RAM, 0x1000, Pte.U), "a leaf needs R or X"),
        ((0x1000, RAM, 0x1000, Pte.R | Pte.A), "only R, W, X, U and G may be given"),
    ],
)
def test_map_rejects_bad_arguments(space, args, message):
    with pytest.raises(MappingError, match=message):
        space.map(*args)


def test_flags_validated_once_are_still_checked_for_each_new_combination(space):
    """map validates each flags value once (a DMA mapping maps page by page): good flags mapped before
    let nothing bad through, a bad value is refused every time and leaves the tables untouched."""
    space.map(0x1000, RAM, 0x1000, RW)
    space.map(0x2000, RAM + 0x1000, 0x1000, RW)  # (validated already)
    for _ in range(2):
        with pytest.raises(MappingError, match="W without R is a reserved encoding"):
            space.map(0x3000, RAM + 0x2000, 0x1000, Pte.W | Pte.U)
        with pytest.raises(MappingError, match="only R, W, X, U and G may be given"):
            space.map(0x3000, RAM + 0x2000, 0x1000, int(RW | Pte.D))
    assert space.lookup(0x3000) is None
    assert space.lookup(0x2000).pa == RAM + 0x1000 and space.lookup(0x2000).flags & Pte.W


def test_parse_flags():
    assert parse_flags("rw-u") == Pte.R | Pte.W | Pte.U
    with pytest.raises(MappingError, match="permission letters are r, w, x, u, g; 'q' in 'rq' is not one"):
        parse_flags("rq")


def test_unmap_part_of_a_superpage_splits_it(space):
    space.map(0x4000_0000, RAM, 2 << 20, RW)
    assert space.unmap(0x4010_0000, 0x1000) == 0x1000
    assert space.lookup(0x4010_0000) is None
    assert translate(space, 0x4010_0000).fault is not None
    for va in (0x4000_0000, 0x400F_F000, 0x4010_1000, 0x401F_F000):
        assert translate(space, va + 8).translation.pa == RAM + (va - 0x4000_0000) + 8
        assert space.lookup(va).size == 4096


def test_unmap_of_unmapped_pages_is_allowed(space):
    assert space.unmap(0x1000, 0x10000) == 0


def test_unmap_frees_empty_tables(space, env):
    _phys, frames = env
    baseline = frames.committed
    space.map(0x3F_0000_0000, RAM + 0x40_0000, 0x3000, RW)
    assert frames.committed == baseline + 2  # a level-1 and a level-0 table
    space.unmap(0x3F_0000_0000, 0x3000)
    assert frames.committed == baseline and space.table_frames == 1
    assert list(space.mappings()) == []


def test_map_anonymous_owns_and_frees_its_frames(space, env):
    phys, frames = env
    baseline = frames.committed
    space.map_anonymous(0x10000, 0x3000, RW)
    assert frames.committed == baseline + 3 + 2
    pa = space.lookup(0x11000).pa
    assert phys.read(pa, 16) == bytes(16)  # zeroed
    space.unmap(0x10000, 0x3000)
    assert frames.committed == baseline


def test_protect_changes_permissions_and_needs_mapped_pages(space):
    space.map(0x1000, RAM + 0x40_0000, 0x2000, RW)
    space.protect(0x1000, 0x1000, Pte.R | Pte.U)
    assert translate(space, 0x1000, Access.STORE).fault.reason.name == "NOT_WRITABLE"
    assert translate(space, 0x2000, Access.STORE).ok
    assert space.lookup(0x1000).flags & Pte.D  # A/D survive a protect
    with pytest.raises(MappingError, match="protect: 0x3000 is not mapped"):
        space.protect(0x1000, 0x3000, Pte.R)


def test_listeners_hear_unmap_and_protect_but_not_map(space):
    heard = []
    space.on_change(lambda asid, va, size: heard.append((asid, va, size)))
    space.map(0x1000, RAM, 0x1000, RW)
    assert heard == []
    space.protect(0x1000, 0x1000, Pte.R)
    space.unmap(0x1000, 0x1000)
    space.unmap(0x9000, 0x1000)  # nothing there: nothing to flush
    assert heard == [(3, 0x1000, 0x1000), (3, 0x1000, 0x1000)]


def test_base_pages_under_the_last_leaf_table_map_and_unmap_as_a_descent_would(space, env):
    """Single pages mapped and unmapped one at a time (a DMA checker's streaming mappings) go through the
    leaf table last mapped through: same PTEs, same errors, same listeners, same frames as the full descent."""
    _phys, frames = env
    heard = []
    space.on_change(lambda asid, va, size: heard.append(va))
    for k in range(4):
        space.map(0x20_0000 + k * 0x1000, RAM + 0x40_0000 + k * 0x1000, 0x1000, RW)
    for k in range(4):
        assert translate(space, 0x20_0000 + k * 0x1000 + 8).translation.pa == RAM + 0x40_0008 + k * 0x1000
    with pytest.raises(MappingError, match="map: 0x202000 is already mapped"):
        space.map(0x20_2000, RAM, 0x1000, RW)
    assert space.unmap(0x20_1000, 0x1000, prune=False) == 0x1000
    assert space.unmap(0x20_1000, 0x1000, prune=False) == 0  # nothing there: no listener either
    assert heard == [0x20_1000]
    assert translate(space, 0x20_1000).fault is not None and space.lookup(0x20_2000) is not None
    space.map(0x20_1000, RAM + 0x80_0000, 0x1000, Pte.R | Pte.U)
    assert translate(space, 0x20_1000, Access.STORE).fault.reason.name == "NOT_WRITABLE"
    assert [m.va for m in space.mappings()] == [0x20_0000 + k * 0x1000 for k in range(4)]


def test_a_leaf_table_freed_and_reused_elsewhere_is_not_mapped_through_again(space, env):
    """Pruning frees the leaf table; its frame may come back as another span's table: a later map in the
    first span builds a table of its own, never writes into the other span's."""
    _phys, frames = env
    baseline = frames.committed
    space.map(0x20_0000, RAM + 0x40_0000, 0x1000, RW)
    assert space.unmap(0x20_0000, 0x1000) == 0x1000  # prunes: the leaf table (and the level-1 one) freed
    assert frames.committed == baseline
    space.map_anonymous_page(0x4000_0000, RW)  # another gigabyte: the freed frames come back as its tables
    anon = space.lookup(0x4000_0000).pa
    space.map(0x20_1000, RAM + 0x60_0000, 0x1000, RW)
    assert translate(space, 0x4000_0010).translation.pa == anon + 0x10
    assert translate(space, 0x20_1010).translation.pa == RAM + 0x60_0010
    assert [(m.va, m.pa) for m in space.mappings()] == [(0x20_1000, RAM + 0x60_0000), (0x4000_0000, anon)]
    space.destroy()
    assert frames.committed == baseline - 1  # the root too


def test_a_single_page_unmap_frees_an_owned_frame_and_a_superpage_still_splits(space, env):
    _phys, frames = env
    baseline = frames.committed
    space.map_anonymous(0x1000, 0x2000, RW)
    space.unmap(0x2000, 0x1000, prune=False)
    assert frames.committed == baseline + 1 + 2  # one owned frame left, and the tables
    space.map(0x4000_0000, RAM, 0x20_0000, RW)  # a 2 MiB superpage, no leaf table
    space.map(0x4020_0000, RAM + 0x20_0000, 0x1000, RW)  # (a leaf table in the next span)
    assert space.unmap(0x4000_1000, 0x1000) == 0x1000  # splits the superpage
    assert space.lookup(0x4000_0000).size == 0x1000 and space.lookup(0x4000_1000) is None


def test_destroy_frees_everything(space, env):
    _phys, frames = env
    baseline = frames.committed - 1  # the root
    space.map_anonymous(0x1000, 0x2000, RW)
    space.map(0x40_0000, RAM, 0x1000, RW)
    space.destroy()
    assert frames.committed == baseline


def test_sv48_space(env):
    space = AddressSpace(*env, mode=SV48)
    space.map(0x7FFF_FFFF_F000, RAM, 0x1000, RW)
    assert walk(space.phys, space.root, 0x7FFF_FFFF_F010, Access.LOAD, Priv.U, mode=SV48).translation.pa == RAM + 0x10
    assert space.satp >> 60 == 9


def test_bad_asid(env):
    with pytest.raises(MappingError, match=r"ASID must be in \[0, 65535\], not 70000"):
        AddressSpace(*env, asid=70000)


# -- property: random mappings translate as mapped; everything else faults --------------------

regions = st.lists(
    st.tuples(st.integers(0, 255), st.integers(1, 8), st.sampled_from(["r", "rw", "rx", "rwx"])),
    min_size=1,
    max_size=12,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    regions=regions,
    unmap_some=st.lists(st.integers(0, 255), max_size=10),
    probe=st.lists(st.integers(0, 270 * 4096 - 1), min_size=20, max_size=20),
)
def test_random_mappings_translate_as_mapped(regions, unmap_some, probe):
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 16 << 20))
    space = AddressSpace(phys, frames)
    expected: dict[int, tuple[int, Pte]] = {}  # page number -> (pa, flags)
    base_va = 0x3F_F000_0000  # crosses no special boundary; high in Sv39's lower half
    for start, count, perms in regions:
        pages = range(start, start + count)
        if any(p in expected for p in pages):
            continue
        pa = frames.alloc(count)
        flags = parse_flags(perms + "u")
        space.map(base_va + start * 4096, pa, count * 4096, flags)
        for i, p in enumerate(pages):
            expected[p] = (pa + i * 4096, flags)
    for p in unmap_some:
        space.unmap(base_va + p * 4096, 4096)
        expected.pop(p, None)
    for off in probe:
        page, low = divmod(off, 4096)
        va = base_va + off
        r = walk(phys, space.root, va, Access.LOAD, Priv.U)
        if page in expected:
            assert r.ok and r.translation.pa == expected[page][0] + low
            w = walk(phys, space.root, va, Access.STORE, Priv.U)
            assert w.ok == bool(expected[page][1] & Pte.W)
        else:
            assert r.fault is not None and r.fault.reason.name == "INVALID"
    assert sorted((m.va - base_va) // 4096 for m in space.mappings()) == sorted(expected)


def test_map_anonymous_page_is_map_anonymous_in_one_descent():
    """The pager's one-descent map writes what map_anonymous writes, takes frames in the same order,
    and returns the Translation a walk of the page now returns."""
    spaces = []
    for one in (False, True):
        m = Machine(ram_size=16 << 20)
        space = m.new_address_space(asid=1)
        for va in (0x4000_0000, 0x4000_1000, 0x4020_0000, 0x7FFF_F000):
            if one:
                tr = space.map_anonymous_page(va + 0x123, Pte.R | Pte.W | Pte.U)
                result = walk(m.phys, space.root, va + 0x123, Access.STORE, Priv.U)
                assert tr == result.translation and result.ad_update is None
            else:
                space.map_anonymous(va, 4096, Pte.R | Pte.W | Pte.U)
        spaces.append((m, space))
    (m0, s0), (m1, s1) = spaces
    assert bytes(m0.ram.view) == bytes(m1.ram.view)
    assert list(s0.mappings()) == list(s1.mappings()) and s0.table_frames == s1.table_frames
    with pytest.raises(MappingError, match="map: 0x40000000 is already mapped"):
        s1.map_anonymous_page(0x4000_0000, Pte.R | Pte.U)
    with pytest.raises(MappingError, match="W without R"):
        s1.map_anonymous_page(0x5000_0000, Pte.W | Pte.U)
