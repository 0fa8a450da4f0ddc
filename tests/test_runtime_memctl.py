"""hwsim.runtime.memctl: memory.discard, map/unmap/protect, virtual-mode memories, static regions,
the hwsim:memory intrinsics and the provisional opcodes, each with its traps."""

from __future__ import annotations

import pytest
import wasm_conftest_helpers as B

from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api
from hwsim.runtime.memctl import MemoryControlError, State, record_bytes
from hwsim.wasm.module import Features

PAGE = 4096


def custom(**layout) -> str:
    """A (@custom "hwsim.memory" ...) annotation holding one record."""
    return '(@custom "hwsim.memory" "' + "".join(f"\\{b:02x}" for b in record_bytes(**layout)) + '")'


INTRINSICS = """
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (import "hwsim:memory" "map" (func $map (param i32 i32 i32) (result i32)))
  (import "hwsim:memory" "unmap" (func $unmap (param i32 i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (import "hwsim:memory" "page_size" (func $page_size (result i32)))
"""

ACCESSORS = """
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "discard") (param i32 i32) (call $discard (local.get 0) (local.get 1)))
  (func (export "map") (param i32 i32 i32) (result i32) (call $map (local.get 0) (local.get 1) (local.get 2)))
  (func (export "unmap") (param i32 i32) (call $unmap (local.get 0) (local.get 1)))
  (func (export "protect") (param i32 i32 i32) (call $protect (local.get 0) (local.get 1) (local.get 2)))
  (func (export "page_size") (result i32) (call $page_size))
"""


class Guest:
    def __init__(self, wat: str) -> None:
        self.engine = api.Engine()
        self.store = api.Store(self.engine)
        self.module = api.Module(self.engine, wat)
        self.instance = api.Linker(self.engine).instantiate(self.store, self.module)
        self.exports = self.instance.exports(self.store)
        self.memory = self.exports["memory"]._inner

    def __call__(self, name, *args):
        return self.exports[name](self.store, *args)

    def trap(self, name, *args) -> api.Trap:
        with pytest.raises(api.Trap) as info:
            self(name, *args)
        return info.value


def guest(pages=4, layout="", data="") -> Guest:
    return Guest(f'(module {INTRINSICS} (memory (export "memory") {pages}) {data} {ACCESSORS} {layout})')


# -- memory.discard -------------------------------------------------------------------------------


def test_discard_zeroes_and_releases_frames():
    g = guest()
    for offset in range(0, 8 * PAGE, 1024):
        g("store", offset, 0x1234_5678)
    frames = g.store.machine.frames.committed
    assert g.memory.committed_bytes == 8 * PAGE
    g("discard", PAGE, 4 * PAGE)
    assert g.memory.committed_bytes == 4 * PAGE
    assert g.store.machine.frames.committed == frames - 4
    assert [g("load", off) for off in (0, PAGE, 3 * PAGE + 1024, 5 * PAGE)] == [0x1234_5678, 0, 0, 0x1234_5678]
    g("discard", 0, 0)  # zero length: a no-op
    g("discard", 64 * 1024 * 4, 0)  # ... even at the end


@pytest.mark.parametrize(
    "args, code, detail",
    [
        ((100, PAGE), TrapCode.MEMORY_CONTROL, "not aligned to the 4096-byte page size"),
        ((0, 100), TrapCode.MEMORY_CONTROL, "not aligned"),
        ((3 * 65536, 2 * 65536), TrapCode.MEMORY_OUT_OF_BOUNDS, "outside the memory of 0x40000 bytes"),
    ],
)
def test_discard_traps(args, code, detail):
    g = guest()
    g("store", 0, 7)
    t = g.trap("discard", *args)
    assert t.code is code and detail in str(t)
    assert g("load", 0) == 7  # nothing changed


# -- map / unmap / protect ----------------------------------------------------------------------------


def test_virtual_memory_pages_are_inaccessible_until_mapped():
    g = guest(layout=custom(virtual=True))
    t = g.trap("load", 0x2000)
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED
    assert "page 0x2 (linear address 0x2000) is not mapped" in str(t)
    assert g("map", 0x2010, 10, 2) == 0x2000  # rounds the start down and the size up
    assert g("load", 0x2000) == 0
    g("store", 0x2FFC, 42)
    assert g("load", 0x2FFC) == 42
    assert g.trap("load", 0x3000).code is TrapCode.MEMORY_ACCESS_DENIED  # the next page is not mapped
    assert g.memory.committed_bytes == PAGE


@pytest.mark.parametrize(
    "args, detail",
    [
        ((0x2000, 0, 2), "size must be positive, not 0"),
        ((0x2000, -5, 2), "size must be positive, not -5"),
        ((0x1000, 0x2000, 2), "page 0x2 is already mapped"),
        ((0x40000 - 8, 16, 2), "outside the memory"),
        ((0, 8, 7), "protection must be 0 (none), 1 (read) or 2 (read-write), not 7"),
    ],
)
def test_map_traps(args, detail):
    g = guest(layout=custom(virtual=True))
    g("map", 0x2000, PAGE, 2)
    t = g.trap("map", *args)
    assert detail in str(t)


def test_unmap_releases_and_allows_unmapped_pages():
    g = guest(layout=custom(virtual=True))
    g("map", 0, 4 * PAGE, 2)
    g("store", PAGE, 5)
    g("unmap", 0, 8 * PAGE)  # pages 4..7 were never mapped: allowed
    assert g.memory.committed_bytes == 0
    assert g.trap("load", PAGE).code is TrapCode.MEMORY_ACCESS_DENIED
    assert g("map", PAGE, PAGE, 2) == PAGE
    assert g("load", PAGE) == 0  # a fresh page


def test_protect_read_and_none_keep_the_data():
    g = guest()
    g("store", 0x5000, 99)
    g("protect", 0x5000, PAGE, 1)
    assert g("load", 0x5000) == 99
    t = g.trap("store", 0x5004, 1)
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED and "store: page 0x5 (linear address 0x5004) is read-only" in str(t)
    t = g.trap("fill", 0x4FF0, 0, 32)  # guest bulk operations are checked too
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED and "page 0x5" in str(t)
    g("protect", 0x5000, PAGE, 0)
    assert "has no access" in str(g.trap("load", 0x5000))
    g("protect", 0x5000, PAGE, 2)
    assert g("load", 0x5000) == 99  # the frame was kept all along
    g("store", 0x5000, 100)
    assert g("load", 0x5000) == 100


def test_protect_of_unmapped_pages_traps():
    g = guest(layout=custom(virtual=True))
    g("map", 0, PAGE, 2)
    t = g.trap("protect", 0, 2 * PAGE, 1)
    assert t.code is TrapCode.MEMORY_CONTROL and "page 0x1 is not mapped" in str(t)
    assert g.memory.ctl.state_at(0) is State.READWRITE  # unchanged


def test_protected_pages_that_were_never_touched_map_with_their_protection():
    g = guest()
    g("protect", 0, PAGE, 1)
    assert g("load", 0) == 0
    assert g.trap("store", 0, 1).code is TrapCode.MEMORY_ACCESS_DENIED


def test_memory_grow_of_a_virtual_memory_adds_unmapped_pages():
    g = Guest(
        f'(module {INTRINSICS} (memory (export "memory") 1 4) {ACCESSORS} '
        f'(func (export "grow") (result i32) (memory.grow (i32.const 1))) {custom(virtual=True)})'
    )
    assert g("grow") == 1
    assert g.trap("load", 65536).code is TrapCode.MEMORY_ACCESS_DENIED
    assert g("map", 65536, 8, 2) == 65536 and g("load", 65536) == 0


# -- static regions ----------------------------------------------------------------------------------------


def test_static_no_access_and_read_only_regions():
    g = guest(layout=custom(no_access=PAGE, read_only=2 * PAGE), data='(data (i32.const 0x1000) "\\2a")')
    assert "in the no-access region (trap-on-null)" in str(g.trap("load", 0))
    assert g("load", 0x1000) == 0x2A  # written before the module ran
    assert "is in the read-only region" in str(g.trap("store", 0x1000, 1))
    assert g.trap("fill", 0x2FF0, 0, 0x20).code is TrapCode.MEMORY_ACCESS_DENIED
    g("store", 0x3000, 1)  # past the regions: ordinary memory
    for op, args in (("protect", (0, PAGE, 2)), ("unmap", (PAGE, PAGE)), ("map", (0, PAGE, 2))):
        t = g.trap(op, *args)
        assert t.code is TrapCode.MEMORY_CONTROL and "static region" in str(t)


@pytest.mark.parametrize(
    "layout, message",
    [
        (custom(no_access=100), "must be a multiple of 4096 bytes"),
        ('(@custom "hwsim.memory" "\\01\\00")', "is not a whole number of 32-byte records"),
        (custom(memory=3), "names memory 3; the module has 1"),
    ],
)
def test_bad_layout_sections_are_link_errors(layout, message):
    with pytest.raises(Exception, match=message):
        guest(layout=layout)


def test_data_segment_into_an_unmapped_page_of_a_virtual_memory_is_an_error():
    with pytest.raises(MemoryControlError, match=r"host write refused: page 0x0 \(linear address 0x10\) is not mapped"):
        guest(layout=custom(virtual=True), data='(data (i32.const 16) "x")')


def test_host_writes_ignore_read_only_but_not_unmapped():
    g = guest(layout=custom(virtual=True))
    g("map", 0, PAGE, 1)
    mem = g.exports["memory"]
    mem.write(g.store, b"host", 0)  # the embedder may fill a read-only page
    assert g("load", 0) == int.from_bytes(b"host", "little")
    with pytest.raises(MemoryControlError, match="not mapped"):
        mem.write(g.store, b"x", PAGE)


# -- the intrinsics and the opcodes ------------------------------------------------------------------------


def test_intrinsics_are_lowered_in_place_and_also_work_through_a_table():
    g = Guest(f"""(module {INTRINSICS} (memory (export "memory") 1)
        (table 1 funcref) (elem (i32.const 0) $page_size)
        (func (export "direct") (result i32) (call $page_size))
        (func (export "indirect") (result i32) (call_indirect (result i32) (i32.const 0))))""")
    assert g("direct") == 4096 and g("indirect") == 4096
    assert g.module._module.imports[4].module == "hwsim:memory"


@pytest.mark.parametrize(
    "decl, message",
    [
        ('(import "hwsim:memory" "map" (func (param i32 i32) (result i32)))', r"has type \[i32 i32 i32\] -> \[i32\]"),
        ('(import "hwsim:memory" "mmap" (func))', "hwsim:memory has no function 'mmap'"),
    ],
)
def test_bad_intrinsic_imports_are_clear_errors(decl, message):
    with pytest.raises(Exception, match=message):
        api.Module(api.Engine(), f"(module {decl} (memory 1))")


def test_intrinsics_on_memory64_take_i64():
    wat = """(module (import "hwsim:memory" "discard" (func $d (param i64 i64))) (memory i64 1)
      (func (export "go") (i64.store (i64.const 8) (i64.const 5)) (call $d (i64.const 0) (i64.const 4096))
        ) (func (export "load") (result i64) (i64.load (i64.const 8))))"""
    g = Guest(wat.replace("(memory i64 1)", '(memory (export "memory") i64 1)'))
    g("go")
    assert g("load") == 0


def _opcode_module() -> bytes:
    """memory.discard, and the provisional memory.map/unmap/protect (0xfc 0xe0..0xe2), in binary."""
    t = B.I32
    fc = lambda sub: b"\xfc" + B.uleb(sub) + b"\x00"  # noqa: E731 - opcode + memory index 0
    get = lambda i: b"\x20" + B.uleb(i)  # noqa: E731
    bodies = [
        get(0) + get(1) + get(2) + fc(0xE0) + b"\x0b",  # map(addr, len, prot) -> addr
        get(0) + get(1) + fc(0xE1) + b"\x0b",  # unmap
        get(0) + get(1) + get(2) + fc(0xE2) + b"\x0b",  # protect
        get(0) + get(1) + fc(0x12) + b"\x0b",  # discard
        get(0) + b"\x28\x02\x00\x0b",  # i32.load
    ]
    types = [B.functype((t, t, t), (t,)), B.functype((t, t)), B.functype((t, t, t)), B.functype((t,), (t,))]
    return B.module(
        B.type_section(*types),
        B.func_section(0, 1, 2, 1, 3),
        B.memory_section(b"\x00\x04"),
        B.export_section(
            ("map", 0, 0), ("unmap", 0, 1), ("protect", 0, 2), ("discard", 0, 3), ("load", 0, 4), ("memory", 2, 0)
        ),
        B.code_section(*[B.body(b) for b in bodies]),
        B.custom_section("hwsim.memory", record_bytes(virtual=True)),
    )


def test_provisional_opcodes_need_the_feature_flag_and_then_work():
    data = _opcode_module()
    engine = api.Engine()
    with pytest.raises(Exception, match=r"enable it with Features\(memory_control=True\)"):
        api.Module(engine, data)
    module = api.Module(engine, data, features=Features(memory_control=True))
    store = api.Store(engine)
    ex = api.Instance(store, module, []).exports(store)
    assert ex["map"](store, 0x1234, 1, 2) == 0x1000
    assert ex["load"](store, 0x1234) == 0
    ex["protect"](store, 0x1000, PAGE, 0)
    with pytest.raises(api.Trap, match="has no access"):
        ex["load"](store, 0x1234)
    ex["unmap"](store, 0, 2 * PAGE)
    ex["discard"](store, 0, PAGE)
    with pytest.raises(api.Trap, match="is not mapped"):
        ex["load"](store, 0x1234)
    assert ex["map"](store, 0, PAGE, 2) == 0
    with pytest.raises(api.Trap, match="already mapped"):
        ex["map"](store, 0, PAGE, 2)


def test_the_page_state_array_and_runs():
    from hwsim.runtime.memctl import PageStates

    p = PageStates(State.READWRITE)
    p.set(2, 4, State.READ)
    assert [p.get(i) for i in range(6)] == [State.READWRITE] * 2 + [State.READ] * 2 + [State.READWRITE] * 2
    assert p.find({State.READ}, 0, 10) == 2 and p.find({State.UNMAPPED}, 0, 10) == -1
    assert p.find({State.READWRITE}, 3, 10) == 4


# -- host buffers ---------------------------------------------------------------------------------------


def test_shared_host_buffer_writes_are_visible_both_ways():
    g = guest()
    buf = g.store.host_buffer(size=2 * PAGE)
    mem = g.exports["memory"]
    mem.map_host(g.store, 0x3000, buf)
    buf.view[4:8] = (77).to_bytes(4, "little")
    assert g("load", 0x3004) == 77  # host write, guest read: no copy
    g("store", 0x4008, 99)
    assert int.from_bytes(buf.view[PAGE + 8 : PAGE + 12], "little") == 99
    frames = g.store.machine.frames.committed
    mem.unmap_host(g.store, 0x3000, 2 * PAGE)
    assert g("load", 0x3004) == 0 and g("load", 0x4008) == 0  # zero pages again
    assert int.from_bytes(buf.view[4:8], "little") == 77 and buf.mappings == 0
    assert g.store.machine.frames.committed >= frames  # the buffer's pages were never the Store's frames


def test_copy_on_write_leaves_the_buffer_untouched():
    g = guest()
    source = bytes(range(256)) * 32  # 8 KiB
    buf = g.store.host_buffer(data=source)  # read-only
    mem = g.exports["memory"]
    mem.map_host(g.store, 0x8000, buf, shared=False)
    assert g("load", 0x8000) == int.from_bytes(source[:4], "little")
    assert g.store.machine.write_faults == 0
    g("store", 0x8000, 0xDEAD)  # the first store copies the page
    assert g.store.machine.write_faults == 1 and g.memory.ctl.ops["copy_on_write"] == 1
    assert g("load", 0x8000) == 0xDEAD and g("load", 0x8004) == int.from_bytes(source[4:8], "little")
    g("fill", 0x9000, 1, 16)  # a bulk store on the second page copies it too
    assert bytes(buf.view) == source
    mem.write(g.store, b"host", 0x9100)  # so does a host write
    assert bytes(buf.view) == source
    mem.unmap_host(g.store, 0x8000, 2 * PAGE)
    assert g("load", 0x8000) == 0 and bytes(buf.view) == source


def test_a_bulk_store_that_traps_on_a_read_only_page_leaves_copy_on_write_pages_shared(tmp_path):
    """Found by review: the copy-on-write pages before the read-only one were made private first."""
    g = guest()
    mem = g.exports["memory"]
    cow = g.store.host_buffer(data=b"\x05" * PAGE)
    ro_path = tmp_path / "ro.bin"
    ro_path.write_bytes(b"\x02" * PAGE)
    mem.map_host(g.store, 0x8000, cow, shared=False)
    mem.map_host(g.store, 0x9000, g.store.host_buffer(path=ro_path))  # shared read-only
    t = g.trap("fill", 0x8000, 1, 2 * PAGE)
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED and "read-only mapping of a host buffer" in str(t)
    assert g.memory.ctl.ops["copy_on_write"] == 0 and g.memory.ctl.states.get(8) is State.COW
    g("fill", 0x8000, 1, PAGE)  # the copy happens when a store really lands
    assert g.memory.ctl.ops["copy_on_write"] == 1 and g("load", 0x8000) == 0x01010101
    assert bytes(cow.view) == b"\x05" * PAGE and ro_path.read_bytes() == b"\x02" * PAGE


def test_file_buffer_shared_writes_reach_the_file_and_read_only_files_never_change(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"\x01" * PAGE)
    g = guest()
    mem = g.exports["memory"]
    buf = g.store.host_buffer(path=path, writable=True)
    mem.map_host(g.store, 0, buf)
    g("store", 16, 0x0A0B0C0D)
    buf.flush()
    assert path.read_bytes()[16:20] == b"\x0d\x0c\x0b\x0a"
    ro_path = tmp_path / "ro.bin"
    ro_path.write_bytes(b"\x02" * PAGE)
    ro = g.store.host_buffer(path=ro_path)
    mem.map_host(g.store, PAGE, ro)  # shared, but the buffer is read-only: the guest may only read
    assert g("load", PAGE) == 0x02020202
    t = g.trap("store", PAGE, 5)
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED and "read-only mapping of a host buffer" in str(t)
    mem.map_host(g.store, PAGE, ro, shared=False)  # copy-on-write instead: the guest may write its copy
    g("store", PAGE, 5)
    assert g("load", PAGE) == 5 and ro_path.read_bytes() == b"\x02" * PAGE


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda s, p: s.host_buffer(size=100), "size 100 is not a multiple of 4096"),
        (lambda s, p: s.host_buffer(path=p / "missing"), "cannot open"),
        (
            lambda s, p: (p / "odd").write_bytes(b"x" * 10) and s.host_buffer(path=p / "odd"),
            "a file buffer must be a non-empty multiple of 4096 bytes",
        ),
        (lambda s, p: s.host_buffer(size=PAGE, data=b"x"), "give exactly one of size, data or path"),
    ],
)
def test_host_buffer_errors(tmp_path, make, message):
    from hwsim.runtime.hostmem import HostBufferError

    g = guest()
    with pytest.raises(HostBufferError, match=message):
        make(g.store, tmp_path)


def test_map_host_errors_and_protect_refusal():
    from hwsim.runtime.hostmem import HostBufferError

    g = guest(pages=1, layout=custom(no_access=PAGE))
    mem = g.exports["memory"]
    buf = g.store.host_buffer(size=PAGE)
    with pytest.raises(HostBufferError, match="must be positive multiples of 4096"):
        mem.map_host(g.store, 100, buf)
    with pytest.raises(HostBufferError, match="is outside the memory"):
        mem.map_host(g.store, 65536, buf)
    with pytest.raises(HostBufferError, match="is in a static region"):
        mem.map_host(g.store, 0, buf)
    mem.map_host(g.store, PAGE, buf)
    t = g.trap("protect", PAGE, PAGE, 1)
    assert t.code is TrapCode.MEMORY_CONTROL and "maps a host buffer" in str(t)


def test_host_mappings_refuse_negative_offsets_and_ranges_outside_the_memory():
    """Found by review: a negative buffer offset mapped the physical pages before the buffer (another
    buffer, or the Store's own RAM) into the memory; unmap_host took any range (growing the page-state
    array to it) and lifted static regions; a buffer larger than the host can map escaped as OSError."""
    from hwsim.runtime.hostmem import HostBufferError

    g = guest(pages=1, layout=custom(no_access=PAGE))
    mem, s = g.exports["memory"], g.store
    buf = s.host_buffer(size=2 * PAGE)
    for fn, text in (
        (lambda: mem.map_host(s, -PAGE, buf), "map_host: offset -0x1000 and buffer offset 0x0 must not be negative"),
        (
            lambda: mem.map_host(s, PAGE, buf, buffer_offset=-PAGE, length=PAGE),
            "map_host: offset 0x1000 and buffer offset -0x1000 must not be negative",
        ),
        (
            lambda: mem.unmap_host(s, -PAGE, PAGE),
            "unmap_host: [-0x1000, +0x1000) is outside the memory of 0x10000 bytes",
        ),
        (
            lambda: mem.unmap_host(s, 1 << 40, PAGE),
            "unmap_host: [0x10000000000, +0x1000) is outside the memory of 0x10000 bytes",
        ),
        (lambda: mem.unmap_host(s, 0, PAGE), "unmap_host: page 0x0 is in a static region"),
        (
            lambda: s.host_buffer(size=1 << 60),
            "host buffer 'anonymous': cannot allocate 0x1000000000000000 bytes (Cannot allocate memory)",
        ),
    ):
        with pytest.raises(HostBufferError) as info:
            fn()
        assert str(info.value) == text
    assert g.trap("load", 0).code is TrapCode.MEMORY_ACCESS_DENIED  # the no-access region is still there
    assert len(g.memory.ctl.states.array) <= 16


# -- memory handles ------------------------------------------------------------------------------------

HANDLES = """
  (import "hwsim:memory" "handle_new" (func $new (param i32) (result externref)))
  (import "hwsim:memory" "handle_map" (func $hmap (param externref i32 i32)))
  (import "hwsim:memory" "handle_move" (func $move (param externref i32)))
  (import "hwsim:memory" "handle_unmap" (func $hunmap (param externref)))
  (import "hwsim:memory" "handle_pages" (func $pages (param externref) (result i32)))
  (memory (export "memory") 4)
  (func (export "new") (param i32) (result externref) (call $new (local.get 0)))
  (func (export "map") (param externref i32 i32) (call $hmap (local.get 0) (local.get 1) (local.get 2)))
  (func (export "move") (param externref i32) (call $move (local.get 0) (local.get 1)))
  (func (export "unmap") (param externref) (call $hunmap (local.get 0)))
  (func (export "pages") (param externref) (result i32) (call $pages (local.get 0)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
"""


def _two_instances():
    engine = api.Engine()
    store = api.Store(engine)
    module = api.Module(engine, f"(module {HANDLES})")
    linker = api.Linker(engine)
    a, b, c = (linker.instantiate(store, module).exports(store) for _ in range(3))
    return store, a, b, c


def test_a_handle_moves_between_instances_with_its_data():
    store, a, b, _ = _two_instances()
    h = a["new"](store, 2)
    assert a["pages"](store, h) == 2
    a["map"](store, h, 0x10000, 1)
    a["store"](store, 0x10004, 1234)
    b["move"](store, h, 0x20000)  # linear hand-over: a loses it in the same step
    assert b["load"](store, 0x20004) == 1234
    assert a["load"](store, 0x10004) == 0  # a's range is an ordinary zero page again
    b["store"](store, 0x21000, 5)
    a["move"](store, h, 0x10000)
    assert a["load"](store, 0x11000) == 5 and b["load"](store, 0x21000) == 0


def test_handle_rules_one_writer_or_many_readers():
    store, a, b, c = _two_instances()
    h = a["new"](store, 1)
    a["map"](store, h, 0x10000, 1)
    with pytest.raises(api.Trap, match="cannot be mapped writable: it is mapped in"):
        b["map"](store, h, 0x10000, 1)
    with pytest.raises(api.Trap, match="cannot be shared read-only: .* has it writable"):
        b["map"](store, h, 0x10000, 0)
    a["store"](store, 0x10000, 7)
    a["unmap"](store, h)
    b["map"](store, h, 0x10000, 0)
    c["map"](store, h, 0x30000, 0)  # many readers
    assert b["load"](store, 0x10000) == 7 and c["load"](store, 0x30000) == 7
    t = pytest.raises(api.Trap, b["store"], store, 0x10000, 1).value
    assert t.code is TrapCode.MEMORY_ACCESS_DENIED
    with pytest.raises(api.Trap, match="shared read-only in 2 memories: it cannot move"):
        a["move"](store, h, 0x10000)
    with pytest.raises(api.Trap, match="is not mapped in"):
        a["unmap"](store, h)
    with pytest.raises(api.Trap, match="null memory handle"):
        a["pages"](store, None)


def test_handle_host_api_and_freeing():
    from hwsim.runtime.handles import HandleError, MemoryHandle

    store, a, b, _ = _two_instances()
    ma, mb = a["memory"]._inner, b["memory"]._inner
    frames = store.machine.frames.committed
    h = MemoryHandle(store._store, 3)
    assert store.machine.frames.committed == frames + 3
    h.map(ma, 0, writable=True)
    with pytest.raises(HandleError, match="still mapped"):
        h.free()
    h.move(mb, 0x8000)
    mb.control().unmap(0x8000, 3 * PAGE)  # any unmap of its pages also ends the place
    assert h.places == {}
    h.free()
    assert store.machine.frames.committed == frames
    with pytest.raises(HandleError, match="was freed"):
        h.map(ma, 0, writable=False)


def test_with_layout_gives_a_zig_built_module_trap_on_null(tmp_path):
    """zig's linker cannot emit custom sections: the layout is appended to the built module."""
    import subprocess
    import sys

    from hwsim.runtime.memctl import with_layout

    src = tmp_path / "m.c"
    src.write_text('__attribute__((export_name("peek"))) int peek(int *p) { return *p; }\n')
    out = tmp_path / "m.wasm"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ziglang",
            "cc",
            "-target",
            "wasm32-freestanding",
            "-O2",
            "-nostdlib",
            "-Wl,--no-entry",
            str(src),
            "-o",
            str(out),
        ],
        check=True,
    )
    engine = api.Engine()
    for wasm, protected in (
        (out.read_bytes(), False),
        (with_layout(out.read_bytes(), record_bytes(no_access=PAGE)), True),
    ):
        store = api.Store(engine)
        ex = api.Linker(engine).instantiate(store, api.Module(engine, wasm)).exports(store)
        if protected:
            with pytest.raises(api.Trap, match=r"page 0x0 \(linear address 0x8\) is in the no-access region"):
                ex["peek"](store, 8)
        else:
            assert ex["peek"](store, 8) == 0


def test_static_regions_cannot_cover_host_mappings():
    """Found by review: set_static over a mapped host buffer kept the page's buffer mapping under a
    static state, which a later unmap could not undo."""
    g = guest()
    mem = g.exports["memory"]
    mem.map_host(g.store, PAGE, g.store.host_buffer(size=PAGE))
    with pytest.raises(MemoryControlError) as info:
        mem.set_static(g.store, no_access=PAGE, read_only=PAGE)
    assert str(info.value) == "static regions of 0x2000 bytes: page 0x1 maps a host buffer (unmap it first)"
    mem.unmap_host(g.store, PAGE, PAGE)
    mem.set_static(g.store, no_access=PAGE, read_only=PAGE)
    assert g.memory.ctl.static_end == 2 * PAGE


@pytest.mark.parametrize("prot", [0, 1], ids=["none", "read"])
def test_an_access_past_the_end_is_out_of_bounds_even_when_a_protected_page_faults_first(prot):
    """Found by the isolation property: an 8-byte store at 65529 of a 1-page memory whose last 4 KiB page is
    protected faulted on the protected page first and was reported as 'access denied'; wasm checks bounds
    first."""
    store = api.Store()
    module = api.Module(
        store.engine,
        """(module
      (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
      (memory (export "m") 1)
      (func (export "protect") (call $protect (i32.const 0xF000) (i32.const 0x1000) (i32.const PROT)))
      (func (export "store") (param i32) (i64.store (local.get 0) (i64.const -1)))
      (func (export "load") (param i32) (result i64) (i64.load (local.get 0))))""".replace("PROT", str(prot)),
    )
    ex = api.Linker(store.engine).instantiate(store, module).exports(store)
    ex["protect"](store)
    for name in ("store", "load"):
        with pytest.raises(api.Trap) as info:
            ex[name](store, 65529)
        assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    with pytest.raises(api.Trap) as info:  # inside the memory, the protection decides
        ex["store"](store, 65520)
    assert info.value.code is TrapCode.MEMORY_ACCESS_DENIED
