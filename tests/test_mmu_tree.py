"""hwsim.mmu.tree: the page-table tree read from memory, its collapsing, the problems it flags, its text."""

from __future__ import annotations

import random

import pytest

from hwsim.errors import BusError
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, AdPolicy, Pte, walk
from hwsim.mmu.bits import PAGE_SHIFT, SV39, SV48, make_pte
from hwsim.mmu.snapshot import Region, region_namer
from hwsim.mmu.tree import TreeTooLarge, format_tree, read_tree, tree_to_json
from hwsim.mmu.walker import FaultReason
from hwsim.riscv.priv import Access, Priv

RAM = 0x8000_0000


def new_space(size=8 << 20, mode=SV39):
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, size))
    return phys, frames, AddressSpace(phys, frames, mode=mode, asid=3)


@pytest.fixture
def small():
    """Three 4 KiB user pages in a run, one code page, a 2 MiB superpage and a kernel gigapage."""
    phys, frames, space = new_space()
    data = frames.alloc(3)
    space.map(0x1000, data, 0x3000, Pte.R | Pte.W | Pte.U, accessed=False)
    space.map(0x10000, data, 0x1000, Pte.R | Pte.X | Pte.U)
    space.map(0x4000_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.X)
    # The kernel gigapage, written directly (AddressSpace.map checks each 4 KiB of a 1 GiB range: slow).
    phys.write_u64(space.root + 8 * 511, make_pte(0x4_0000, Pte.V | Pte.R | Pte.W | Pte.G | Pte.A | Pte.D))
    return phys, space


def test_text_tree(small):
    phys, space = small
    lines = format_tree(
        read_tree(phys, space.root, satp=space.satp), region_of=lambda pa: "ram" if phys.is_ram(pa) else None
    )
    assert lines == [
        "satp 0x8000300000080000: Sv39 page tables, root table 0x80000000, ASID 3",
        "flags DAGUXWRV: D dirty, A accessed, G global, U user, X executable, W writable, R readable, V valid; - clear",
        "level-2 table 0x80000000 (3 valid)",
        "├─ [0x000] va 0x0-0x3fffffff  -> level-1 table 0x80004000 (1 valid)",
        "│  └─ [0x000] va 0x0-0x1fffff  -> level-0 table 0x80005000 (4 valid)",
        "│     ├─ [0x001-0x003] va 0x1000-0x3fff  3 x 4 KiB -> pa 0x80001000-0x80003fff [ram]  ---U-WRV",
        "│     └─ [0x010] va 0x10000-0x10fff  4 KiB page -> pa 0x80001000-0x80001fff [ram]  -A-UX-RV",
        "├─ [0x001] va 0x40000000-0x7fffffff  -> level-1 table 0x80006000 (1 valid)",
        "│  └─ [0x000] va 0x40000000-0x401fffff  2 MiB superpage -> pa 0x80200000-0x803fffff [ram]  -A--X-RV",
        "└─ [0x1ff] va 0xffffffffc0000000-0xffffffffffffffff  1 GiB superpage -> pa 0x40000000-0x7fffffff "
        "[no RAM or device]  DAG--WRV",
        "4 tables (1 at level 2, 2 at level 1, 1 at level 0); 1 GiB 2 MiB 16 KiB mapped by 6 leaf PTEs; "
        "0 PTEs a walk faults on",
    ]


def test_a_large_mapping_is_labelled_part_by_part():
    """A gigapage over the end of RAM, and one over device windows and holes: each part named by what it is."""
    phys, frames, space = new_space()  # RAM 0x80000000-0x807fffff
    phys.write_u64(space.root + 8 * 2, make_pte(RAM >> PAGE_SHIFT, Pte.V | Pte.R | Pte.W | Pte.A | Pte.D))
    phys.write_u64(space.root + 8 * 3, make_pte(0, Pte.V | Pte.R | Pte.W | Pte.A | Pte.D))
    regions = [
        Region("ram", "ram", RAM, 8 << 20),
        Region("uart0", "mmio", 0x1000_0000, 0x100),
        Region("plic", "mmio", 0xC00_0000, 0x60_0000),
    ]
    tree = read_tree(phys, space.root, satp=space.satp)
    lines = format_tree(tree, region_of=region_namer(regions))
    assert lines[3] == (
        "├─ [0x002] va 0x80000000-0xbfffffff  1 GiB superpage -> pa 0x80000000-0xbfffffff "
        "[ram 0x80000000-0x807fffff, no RAM or device 0x80800000-0xbfffffff]  DA---WRV"
    )
    assert lines[4] == (
        "└─ [0x003] va 0xc0000000-0xffffffff  1 GiB superpage -> pa 0x0-0x3fffffff "
        "[no RAM or device 0x0-0xbffffff, plic 0xc000000-0xc5fffff, no RAM or device 0xc600000-0xfffffff, "
        "uart0 0x10000000-0x100000ff, no RAM or device 0x10000100-0x3fffffff]  DA---WRV"
    )
    j = tree_to_json(tree, region_of=region_namer(regions))
    giga = j["root"]["entries"][0]
    assert "region" not in giga  # not one region: the parts say what is there
    assert giga["regions"] == [
        {"name": "ram", "pa": "0x80000000", "size": 8 << 20},
        {"name": None, "pa": "0x80800000", "size": (1 << 30) - (8 << 20)},
    ]
    # A mapping inside one region keeps its one name.
    space.map(0x1000, frames.alloc(), 0x1000, Pte.R | Pte.U)
    j = tree_to_json(read_tree(phys, space.root), region_of=region_namer(regions))
    page = j["root"]["entries"][0]["table"]["entries"][0]["table"]["entries"][0]
    assert page["region"] == "ram" and page["regions"] == [{"name": "ram", "pa": page["target"], "size": 0x1000}]


def test_counts_in_the_summary_are_singular_when_one():
    phys, frames, space = new_space()
    phys.write_u64(space.root + 8 * 2, make_pte(RAM >> PAGE_SHIFT, Pte.V | Pte.R | Pte.A))
    phys.write_u64(space.root + 8 * 3, make_pte(RAM >> PAGE_SHIFT, Pte.V | Pte.W))  # W without R: a walk faults
    assert format_tree(read_tree(phys, space.root))[-1] == (
        "1 table (1 at level 2, 0 at level 1, 0 at level 0); 1 GiB mapped by 1 leaf PTE; 1 PTE a walk faults on"
    )
    phys.write_u64(space.root + 8 * 4, make_pte((RAM >> PAGE_SHIFT) + (1 << 18), Pte.V | Pte.R | Pte.A))
    phys.write_u64(space.root + 8 * 5, make_pte(RAM >> PAGE_SHIFT, Pte.V | Pte.W))
    assert format_tree(read_tree(phys, space.root))[-1] == (
        "1 table (1 at level 2, 0 at level 1, 0 at level 0); 2 GiB mapped by 2 leaf PTEs; 2 PTEs a walk faults on"
    )


def test_runs_break_on_flags_frames_and_gaps():
    phys, frames, space = new_space()
    base = frames.alloc(8)
    space.map(0x0, base, 0x2000, Pte.R | Pte.U)  # run of 2
    space.map(0x2000, base + 0x3000, 0x1000, Pte.R | Pte.U)  # frame not consecutive: new entry
    space.map(0x3000, base + 0x4000, 0x1000, Pte.R | Pte.W | Pte.U)  # consecutive frame, other flags
    space.map(0x5000, base + 0x6000, 0x2000, Pte.R | Pte.W | Pte.U)  # gap at 0x4000: new run of 2
    table = read_tree(phys, space.root).root.entries[0].table.entries[0].table
    assert [(e.index, e.count) for e in table.entries] == [(0, 2), (2, 1), (3, 1), (5, 2)]
    assert table.valid == 6


def test_problems_carry_the_walkers_reasons():
    phys, frames, space = new_space()
    space.map(0x1000, frames.alloc(), 0x1000, Pte.R | Pte.U)
    l0 = space.lookup(0x1000).pte_addr & ~0xFFF
    put = phys.write_u64
    put(l0 + 8 * 2, make_pte(0x80010, Pte.V | Pte.W))  # W without R
    put(l0 + 8 * 3, make_pte(0x80011, Pte.V | Pte.R) | 1 << 61)  # PBMT bits: reserved without Svpbmt
    put(l0 + 8 * 4, make_pte(0x80012, Pte.V))  # a pointer at level 0
    put(l0 + 8 * 5, 0x80012 << 10)  # V=0 left-over bits: counted, not shown
    put(space.root + 8 * 1, make_pte(0x80200 + 1, Pte.V | Pte.R | Pte.X))  # misaligned 1 GiB superpage
    put(space.root + 8 * 2, make_pte(0x12345, Pte.V))  # table outside RAM
    put(space.root + 8 * 3, make_pte(0x80400, Pte.V | Pte.A))  # non-leaf with A
    tree = read_tree(phys, space.root)
    found = {(e.level, e.index): e.problem for t in tree.tables() for e in t.entries if e.problem}
    assert found == {
        (0, 2): FaultReason.WRITE_NO_READ,
        (0, 3): FaultReason.RESERVED_BITS,
        (0, 4): FaultReason.NO_LEAF,
        (2, 1): FaultReason.MISALIGNED_SUPERPAGE,
        (2, 2): FaultReason.PTE_ACCESS,
        (2, 3): FaultReason.NONLEAF_RESERVED,
    }
    l0_node = tree.root.entries[0].table.entries[0].table
    assert l0_node.invalid_nonzero == 1
    # Every flagged entry is what the walker says (a table outside RAM faults one level down, reading it).
    for (level, index), reason in found.items():
        r = walk(phys, space.root, index << SV39.level_shift(level), Access.LOAD, Priv.S, ad=AdPolicy.REPORT)
        assert r.fault.reason is reason
        assert r.fault.level == (level - 1 if reason is FaultReason.PTE_ACCESS else level)
    text = "\n".join(format_tree(tree))
    assert (
        "[0x002] va 0x80000000-0xbfffffff  -> level-1 table 0x12345000  !! the PTE's physical address is not "
        "in RAM (access fault)" in text
    )
    assert "!! reserved PTE encoding: W=1 with R=0" in text
    assert "bits63:54=0x80  !! reserved PTE bits 63:54 are set" in text
    assert "6 PTEs a walk faults on" in text


def test_shared_tables_are_shown_once_and_cycles_end():
    phys, frames, space = new_space()
    space.map(0x1000, frames.alloc(), 0x1000, Pte.R)
    # Point root entries 1 and 2 at the root itself: a cycle, and a table reached twice.
    phys.write_u64(space.root + 8, make_pte(space.root >> PAGE_SHIFT, Pte.V))
    phys.write_u64(space.root + 16, make_pte(space.root >> PAGE_SHIFT, Pte.V))
    tree = read_tree(phys, space.root)
    assert len(tree.tables()) == 3
    assert [e.table.shared for e in tree.root.entries[1:]] == [True, True]
    assert "(shown above)" in "\n".join(format_tree(tree))


def test_limits_and_unreadable_root():
    phys, frames, space = new_space()
    for i in range(5):
        space.map(i << 30, frames.alloc(), 0x1000, Pte.R)
    with pytest.raises(TreeTooLarge, match="more than 8 page tables under the root table 0x80000000"):
        read_tree(phys, space.root, max_tables=8)
    with pytest.raises(BusError):
        read_tree(phys, 0x1000)


@pytest.mark.parametrize("mode", [SV39, SV48])
def test_every_leaf_agrees_with_the_walker(mode):
    """Random spaces: the first and last byte of every leaf run translate as the tree says."""
    rng = random.Random(7)
    for _ in range(20):
        phys, frames, space = new_space(16 << 20, mode)
        for _ in range(rng.randint(1, 12)):
            pages = rng.choice([1, 1, 2, 5, 512])
            va = rng.randrange(0, 1 << (mode.va_bits - 1), 1 << 21 if pages == 512 else 4096)
            va = mode.canonical(va | (rng.random() < 0.3) << (mode.va_bits - 1))
            flags = rng.choice([Pte.R, Pte.R | Pte.W, Pte.R | Pte.X, Pte.X]) | rng.choice([Pte.U, Pte(0)])
            try:
                pa = frames.alloc(pages, align=2 << 20 if pages == 512 else 4096)
                space.map(va, pa, pages * 4096, flags)
            except Exception:
                continue
        tree = read_tree(phys, space.root, mode)
        for e in tree.leaves():
            for off in (0, e.size - 1):
                access = Access.LOAD if e.pte & Pte.R else Access.FETCH
                priv = Priv.U if e.pte & Pte.U else Priv.S
                r = walk(phys, space.root, e.va + off, access, priv, mode=mode, ad=AdPolicy.REPORT)
                assert r.ok and r.translation.pa == e.target + off and r.translation.level == e.level
        assert sum(e.size for e in tree.leaves()) == sum(m.size for m in space.mappings())


def test_json_tree(small):
    phys, space = small
    j = tree_to_json(read_tree(phys, space.root, satp=space.satp))
    assert j["mode"] == "Sv39" and j["satp"] == hex(space.satp)
    first = j["root"]["entries"][0]
    assert first["kind"] == "pointer" and first["table"]["level"] == 1
    assert first["page"] is None  # a level-2 pointer is the address of a table, not a 1 GiB gigapage
    assert j["root"]["entries"][2]["page"] == "1 GiB gigapage" and j["root"]["entries"][2]["kind"] == "leaf"
    run = first["table"]["entries"][0]["table"]["entries"][0]
    assert (run["index"], run["count"], run["size"], run["flags"], run["target"]) == (
        1,
        3,
        0x3000,
        "---U-WRV",
        "0x80001000",
    )
