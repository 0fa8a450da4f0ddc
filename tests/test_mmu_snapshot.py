"""hwsim.mmu.snapshot: saving the tables under a satp, walking them later, and refusing bad files clearly."""

from __future__ import annotations

import contextlib
import io
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.cli import main
from hwsim.errors import BusError, ConfigError
from hwsim.machine import FrameAllocator, PhysicalMemory
from hwsim.mmu import AddressSpace, AdPolicy, Pte, walk
from hwsim.mmu.bits import make_pte
from hwsim.mmu.snapshot import Region, load_snapshot, regions_of, save_snapshot, snapshot_dict
from hwsim.mmu.tree import format_tree, read_tree
from hwsim.riscv.priv import Access, Priv

RAM = 0x8000_0000


class Window:
    def mmio_read(self, offset, size):
        return 0

    def mmio_write(self, offset, size, value):
        pass


@pytest.fixture
def space():
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 4 << 20))
    phys.add_mmio(0x1000_0000, 0x1000, Window(), name="uart0")
    s = AddressSpace(phys, frames, asid=7)
    s.map(0x1000, frames.alloc(2), 0x2000, Pte.R | Pte.W | Pte.U, accessed=False)
    s.map(0x20_0000, 0x1000_0000, 0x1000, Pte.R | Pte.W)
    s.map(0x4000_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.X)
    phys.write_u64(s.root + 8 * 3, make_pte(0x12345, Pte.V))  # a pointer to a table outside RAM
    return phys, s


def test_round_trip_walks_and_tree_agree(space, tmp_path):
    phys, s = space
    path = tmp_path / "t.json"
    assert save_snapshot(path, phys, s.satp, regions_of(phys), source="unit test") == 5
    snap = load_snapshot(path)
    assert (snap.satp, snap.asid, snap.root, snap.source) == (s.satp, 7, s.root, "unit test")
    assert [r.name for r in snap.regions] == ["uart0", "ram"]
    assert format_tree(read_tree(snap.memory, snap.root, satp=snap.satp)) == format_tree(
        read_tree(phys, s.root, satp=s.satp)
    )
    for va in (0x1000, 0x2FFF, 0x3000, 0x20_0010, 0x4010_0000, 3 << 30, 0x7F_FFFF_F000):
        for access in Access:
            a = walk(phys, s.root, va, access, Priv.S, sum=True, ad=AdPolicy.REPORT)
            b = walk(snap.memory, snap.root, va, access, Priv.S, sum=True, ad=AdPolicy.REPORT)
            assert (a.translation, a.fault, a.steps) == (b.translation, b.fault, b.steps)
    # The pointer outside RAM is still an access fault, read from the snapshot's memory map.
    assert walk(snap.memory, snap.root, 3 << 30, Access.LOAD, Priv.S).fault.kind == "access fault"
    with pytest.raises(BusError, match="is read-only"):
        snap.memory.write_u64(s.root, 0)


def test_only_tables_are_kept(space):
    phys, s = space
    data = snapshot_dict(phys, s.satp, regions_of(phys))
    assert [t["level"] for t in data["tables"]] == [2, 1, 0, 0, 1]  # depth first
    assert all(int(t["pa"], 16) != s.lookup(0x1000).pa for t in data["tables"])
    root = data["tables"][0]
    assert root["pa"] == hex(s.root) and set(root["ptes"]) == {"0x0", "0x1", "0x3"}


def write(tmp_path, text: str | bytes):
    p = tmp_path / "s.json"
    p.write_bytes(text if isinstance(text, bytes) else text.encode())
    return str(p)


def valid(**changes) -> str:
    d = {
        "format": "hwsim-page-tables",
        "version": 1,
        "satp": hex(8 << 60 | 0x80000),
        "regions": [{"name": "ram", "kind": "ram", "base": "0x80000000", "size": "0x100000"}],
        "tables": [{"pa": "0x80000000", "ptes": {"0x1": "0x1"}}],
    }
    d.update(changes)
    return json.dumps(d)


@pytest.mark.parametrize(
    "content,message",
    [
        (b"\x7fELF\xff\xfe", "is not text (a raw memory image goes with --image)"),
        ("{", "is not JSON: Expecting property name enclosed in double quotes (line 1 column 2)"),
        ("[1]", 'is not an hwsim page-table snapshot (it needs "format": "hwsim-page-tables")'),
        (valid(version=2), "version 2 is not supported (this hwsim reads version 1)"),
        (valid(satp="zz"), "satp is not a hex number: 'zz'"),
        (valid(satp=12), "satp must be a hex string, not 12"),
        (valid(satp="0xa000000000080000"), "satp MODE=10 has no page tables; known modes: 8 (Sv39), 9 (Sv48)"),
        (valid(regions={}), "'regions' must be a list"),
        (
            valid(regions=[{"name": "x", "kind": "rom", "base": "0", "size": "0"}]),
            "regions[0] needs a name, a kind (ram or mmio), a base and a size",
        ),
        (valid(tables=[{"pa": "0x80000010", "ptes": {}}]), "tables[0].pa 0x80000010 is not 4 KiB aligned"),
        (valid(tables=[{"pa": "0x80000000", "ptes": {"0x200": "0x1"}}]), "tables[0].ptes index 0x200 is out of range"),
        (
            valid(tables=[{"pa": "0x80001000", "ptes": {}}]),
            "the root table 0x80000000 named by satp is not in its tables",
        ),
    ],
)
def test_bad_files_are_one_clear_error(tmp_path, content, message):
    path = write(tmp_path, content)
    with pytest.raises(ConfigError) as info:
        load_snapshot(path)
    assert message in str(info.value) and path in str(info.value)


def test_missing_file_and_unsaved_frames(tmp_path):
    with pytest.raises(ConfigError, match="cannot read snapshot '/no/such.json': No such file or directory"):
        load_snapshot("/no/such.json")
    snap = load_snapshot(write(tmp_path, valid()))
    assert snap.memory.read_u64(0x8000_0008) == 1
    with pytest.raises(ConfigError, match="does not hold the frame at 0x80001000 \\(only page tables are saved\\)"):
        snap.memory.read_u64(0x8000_1000)
    with pytest.raises(BusError, match="no RAM at physical address 0x90000000"):
        snap.memory.read_u64(0x9000_0000)
    assert Region("ram", "ram", 0, 0x1000).end == 0x1000


# -- hostile files: only documented errors escape ---------------------------------------------------------------


def sample_snapshot() -> str:
    """A real snapshot: user and supervisor pages, a superpage, a device page and a pointer outside RAM."""
    phys = PhysicalMemory()
    frames = FrameAllocator(phys.add_ram(RAM, 4 << 20))
    phys.add_mmio(0x1000_0000, 0x1000, Window(), name="uart0")
    s = AddressSpace(phys, frames, asid=7)
    s.map(0x1000, frames.alloc(2), 0x2000, Pte.R | Pte.W | Pte.U, accessed=False)
    s.map(0x20_0000, 0x1000_0000, 0x1000, Pte.R | Pte.W)
    s.map(0x4000_0000, RAM + (2 << 20), 2 << 20, Pte.R | Pte.X)
    phys.write_u64(s.root + 8 * 3, make_pte(0x12345, Pte.V))
    return json.dumps(snapshot_dict(phys, s.satp, regions_of(phys), source="fuzz"))


SAMPLE = sample_snapshot()


def exercise(path) -> set[int]:
    """Walk and draw ``path`` as the CLI does; main() turns HwsimErrors into status 2, anything else escapes."""
    p = str(path)
    runs = (
        ["mmu", "walk", "--snapshot", p, "--va", "0x1000", "--access", "load", "--priv", "U", "--explain"],
        ["mmu", "walk", "--snapshot", p, "--va", "0x40100000", "--access", "fetch", "--priv", "S", "--json"],
        ["mmu", "walk", "--snapshot", p, "--va", "0xc0000000", "--access", "store", "--priv", "S"],
        ["mmu", "dump", "--snapshot", p],
        ["mmu", "dump", "--snapshot", p, "--json"],
    )
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return {main(argv) for argv in runs}


def test_the_sample_walks_and_draws(tmp_path):
    path = tmp_path / "s.json"
    path.write_text(SAMPLE)
    assert exercise(path) == {0, 1}


def test_deeply_nested_json_is_one_clear_error(tmp_path):
    """Found by review: ``hwsim mmu walk --snapshot`` on 100,000 nested arrays ended in a RecursionError."""
    for text in ("[" * 100_000 + "]" * 100_000, '{"a":' * 100_000 + "1" + "}" * 100_000):
        path = write(tmp_path, text)
        with pytest.raises(ConfigError) as info:
            load_snapshot(path)
        assert str(info.value) == f"snapshot {path!r} is not a snapshot: JSON nested too deeply"
        assert exercise(path) == {2}
    path = write(tmp_path, "[" + "1" * 5000 + "]")  # more digits than Python converts
    with pytest.raises(ConfigError, match=r"is not a snapshot: Exceeds the limit \(4300 digits\)"):
        load_snapshot(path)


def test_every_truncation_is_a_clear_error(tmp_path):
    path = tmp_path / "t.json"
    for length in range(0, len(SAMPLE), 7):
        path.write_text(SAMPLE[:length])
        with pytest.raises(ConfigError, match=f"snapshot {str(path)!r} is not JSON|{str(path)!r} is not an hwsim"):
            load_snapshot(path)


SNAPSHOT_FUZZ = settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])
JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.text(max_size=8)
    | st.sampled_from(
        [
            "0x0",
            "0x1",
            "0x80000000",
            "0x1ff",
            "0x200",
            "-0x1",
            "0x",
            "1" * 30,
            "0x8000000000080000",
            "0xffffffffffffffffff",
            "ram",
            "mmio",
        ]
    ),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


@SNAPSHOT_FUZZ
@given(data=st.data())
def test_byte_flips_give_only_documented_errors(tmp_path_factory, data):
    blob = bytearray(SAMPLE.encode())
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        pos = data.draw(st.integers(0, len(blob) - 1), label="position")
        blob[pos] = data.draw(st.sampled_from(b'0189afx"{}[],: \\') | st.integers(0, 255), label="byte")
    path = tmp_path_factory.mktemp("flip") / "s.json"
    path.write_bytes(bytes(blob))
    assert exercise(path) <= {0, 1, 2}


@SNAPSHOT_FUZZ
@given(data=st.data())
def test_replaced_fields_give_only_documented_errors(tmp_path_factory, data):
    doc = json.loads(SAMPLE)
    for _ in range(data.draw(st.integers(1, 3), label="replacements")):
        node, key = None, None
        value = doc
        while isinstance(value, (dict, list)) and value and data.draw(st.integers(0, 4), label="deeper"):
            node = value
            key = data.draw(st.sampled_from(sorted(value) if isinstance(value, dict) else range(len(value))))
            value = node[key]
        if node is not None:
            node[key] = data.draw(JSON_VALUES, label="value")
    path = tmp_path_factory.mktemp("field") / "s.json"
    path.write_text(json.dumps(doc))
    assert exercise(path) <= {0, 1, 2}
