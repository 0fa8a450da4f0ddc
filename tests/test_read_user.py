"""StoreSpace.read_user, which serves every host read of guest memory (Memory.read, a host call's string):
a read within one page takes a fast path (the cached translation, or zeros for a page never touched).

Each test keeps a model of the memory's bytes and checks, after every operation that changes a mapping
(memory.discard, map/unmap/protect, host buffers shared or copy-on-write, memory.grow), reads of every
shape against it: whole pages, a page's last byte, reads ending exactly at a page end, empty reads, reads
across page boundaries, byte-by-byte reads, and the guest's own loads (which go through the MMU, not the
host's translation cache) where the page is readable."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.runtime import api
from hwsim.runtime.memctl import MemoryControlError

PAGE = 4096
WASM_PAGE = 65536

WAT = """(module
  (import "hwsim:memory" "discard" (func $discard (param i32 i32)))
  (import "hwsim:memory" "map" (func $map (param i32 i32 i32) (result i32)))
  (import "hwsim:memory" "unmap" (func $unmap (param i32 i32)))
  (import "hwsim:memory" "protect" (func $protect (param i32 i32 i32)))
  (memory (export "memory") 1 3)
  (func (export "load8") (param i32) (result i32) (i32.load8_u (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (result i32) (memory.grow (i32.const 1)))
  (func (export "discard") (param i32 i32) (call $discard (local.get 0) (local.get 1)))
  (func (export "map") (param i32 i32 i32) (result i32) (call $map (local.get 0) (local.get 1) (local.get 2)))
  (func (export "unmap") (param i32 i32) (call $unmap (local.get 0) (local.get 1)))
  (func (export "protect") (param i32 i32 i32) (call $protect (local.get 0) (local.get 1) (local.get 2))))"""


class Model:
    """A memory and what its bytes should be."""

    def __init__(self) -> None:
        self.engine = api.Engine()
        self.store = api.Store(self.engine)
        instance = api.Linker(self.engine).instantiate(self.store, api.Module(self.engine, WAT))
        self.exports = instance.exports(self.store)
        self.memory = self.exports["memory"]
        self.bytes = bytearray(WASM_PAGE)
        self.buffers: list = []  # host buffers mapped (kept alive)

    def call(self, name: str, *args) -> bool:
        """Run an export; False when it trapped (then nothing it would have changed has changed)."""
        try:
            self.exports[name](self.store, *args)
        except api.Trap:
            return False
        return True

    def read(self, offset: int, length: int) -> bytes:
        return bytes(self.memory.read(self.store, offset, offset + length))

    def check(self, extra: list[tuple[int, int]] = ()) -> None:
        size = len(self.bytes)
        assert self.memory.data_len(self.store) == size
        for page in range(0, size, PAGE):
            end = page + PAGE
            assert self.read(page, PAGE) == self.bytes[page:end], f"page {page:#x}"
            assert self.read(end - 1, 1) == self.bytes[end - 1 : end]  # the last byte: a read ending at the page end
            assert self.read(end - 5, 5) == self.bytes[end - 5 : end]
            assert self.read(end, 0) == b"" and self.read(page, 0) == b""
            if end < size:
                assert self.read(end - 3, 7) == self.bytes[end - 3 : end + 4]  # across the boundary
        for offset, length in extra:
            offset %= size
            length = min(length, size - offset)
            want = bytes(self.bytes[offset : offset + length])
            assert self.read(offset, length) == want
            assert b"".join(self.read(offset + i, 1) for i in range(length)) == want  # byte by byte
            for i in range(0, length, max(1, length // 8)):  # the guest's own loads, where it may load
                try:
                    value = self.exports["load8"](self.store, offset + i)
                except api.Trap:
                    continue
                assert value == want[i], f"guest load at {offset + i:#x}"

    # -- operations, each updating the model when it succeeds ---------------------------------------------

    def op(self, op: tuple) -> None:
        kind, a, b, c = op
        size = len(self.bytes)
        page = (a % (size // PAGE)) * PAGE
        pages = 1 + b % 3
        span = min(pages * PAGE, size - page)
        if kind == "store":
            offset = (a % (size // 4)) * 4
            if self.call("store", offset, c):
                self.bytes[offset : offset + 4] = c.to_bytes(4, "little")
        elif kind == "fill":
            offset, length = a % size, b % (3 * PAGE)
            length = min(length, size - offset)
            if self.call("fill", offset, c & 0xFF, length):
                self.bytes[offset : offset + length] = bytes([c & 0xFF]) * length
        elif kind == "host_write":
            offset = a % size
            data = bytes([(c + i) & 0xFF for i in range(min(1 + b % 5000, size - offset))])
            try:
                self.memory.write(self.store, data, offset)
            except MemoryControlError:
                return
            self.bytes[offset : offset + len(data)] = data
        elif kind == "discard":
            if self.call("discard", page, span):
                self.bytes[page : page + span] = bytes(span)
        elif kind == "unmap":
            if self.call("unmap", page, span):
                self.bytes[page : page + span] = bytes(span)
        elif kind == "map":
            if self.call("map", page, span, 2):
                self.bytes[page : page + span] = bytes(span)  # (it was unmapped: zeros already)
        elif kind == "protect":
            self.call("protect", page, span, c % 3)  # the data is kept, whatever the protection
        elif kind in ("map_shared", "map_cow"):
            data = bytes([(c * 7 + i) & 0xFF for i in range(span)])
            buf = self.store.host_buffer(data=data, writable=kind == "map_shared")
            try:
                self.memory.map_host(self.store, page, buf, shared=kind == "map_shared")
            except MemoryControlError:
                return
            self.buffers.append(buf)
            self.bytes[page : page + span] = data
        elif kind == "unmap_host":
            try:
                self.memory.unmap_host(self.store, page, span)
            except MemoryControlError:
                return
            self.bytes[page : page + span] = bytes(span)
        elif kind == "grow":
            if self.call("grow") and len(self.bytes) < 3 * WASM_PAGE:
                self.bytes += bytes(WASM_PAGE)


_KINDS = ["store", "fill", "host_write", "discard", "unmap", "map", "protect", "map_shared", "map_cow", "unmap_host"]
_OP = st.tuples(
    st.sampled_from([*_KINDS, "grow"]),
    st.integers(0, 1 << 20),
    st.integers(0, 1 << 16),
    st.integers(0, (1 << 32) - 1),
)
_READ = st.tuples(st.integers(0, 1 << 20), st.integers(0, 3 * PAGE))


def _first_pages(kind: str, a: int, b: int = 0, c: int = 0x5A5A5A5A) -> tuple:
    """An operation on the first pages (a small ``a`` picks the page)."""
    return (kind, a, b, c)


@pytest.mark.parametrize("kind", _KINDS)
def test_reads_after_each_operation_between_cached_reads(kind):
    """Every page is read (its translation cached) before the operation changes it, and read again after."""
    m = Model()
    for offset in range(0, 5 * PAGE, PAGE // 2):  # some pages touched, others never
        if offset % (2 * PAGE) == 0:
            m.op(_first_pages("store", offset // 4, c=offset + 1))
    reads = [(PAGE - 1, 2), (2 * PAGE - 8, 8), (3 * PAGE + 100, 300), (0, 5 * PAGE)]
    m.check(reads)
    for page in range(5):
        m.op(_first_pages(kind, page, b=page, c=page * 0x01010101 + 7))
        m.check(reads)
        m.op(_first_pages("store", (page * PAGE + 8) // 4, c=0xABCDEF01 + page))  # a store after the change
        m.check(reads)
        m.op(_first_pages("host_write", page * PAGE + PAGE - 2, b=3, c=page))  # a host write across the page end
        m.check(reads)


def test_reads_after_a_remap_of_the_same_page_see_the_new_frame():
    """unmap then map (or unmap_host then map_host) of a page whose translation is cached: a fresh page."""
    m = Model()
    m.op(("store", PAGE // 4, 0, 0x11223344))
    m.check([(PAGE, 4)])
    for kind in ("unmap", "map", "store", "map_shared", "unmap_host", "map_cow", "store", "unmap_host", "discard"):
        m.op((kind, 1, 0, 0x55667788))
        m.check([(PAGE, 4), (PAGE + PAGE - 4, 8)])


def test_reads_after_memory_grow():
    m = Model()
    m.op(("store", (WASM_PAGE - 4) // 4, 0, 0xFFEEDDCC))
    m.check([(WASM_PAGE - 4, 4)])
    m.op(("grow", 0, 0, 0))
    m.check([(WASM_PAGE - 4, 8), (WASM_PAGE, PAGE), (WASM_PAGE - 1, 2)])
    m.op(("store", WASM_PAGE // 4, 0, 0x12345678))
    m.check([(WASM_PAGE - 4, 8)])


@settings(max_examples=examples(25), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(ops=st.lists(_OP, min_size=1, max_size=12), reads=st.lists(_READ, max_size=6))
def test_random_operations_and_reads_match_the_model(ops, reads):
    m = Model()
    for op in ops:
        m.op(op)
        m.check(reads)


def _reads_agree(store, memory, offset: int, want: bytes) -> None:
    """Every shape of read of ``[offset, offset+len(want))`` gives ``want``."""
    n = len(want)
    assert bytes(memory.read(store, offset, offset + n)) == want
    assert b"".join(bytes(memory.read(store, offset + i, offset + i + 1)) for i in range(n)) == want
    for start in range(0, n, PAGE):  # page by page, each read ending exactly at a page end
        end = min(n, (offset + start) // PAGE * PAGE + PAGE - offset)
        assert bytes(memory.read(store, offset + start, offset + end)) == want[start:end]


def test_reads_follow_a_memory_handle_moved_between_memories():
    """A MemoryHandle's frames move from one memory to another and back (unmap_host, map_host): reads of
    the place it left are zeros, of the place it went its bytes, with every translation cached before."""
    import hwsim

    store = hwsim.Store()
    a = hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(1)))
    b = hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(1)))
    h = hwsim.MemoryHandle(store, 2)
    h.map(a, 0x3000, writable=True)
    data = bytes((7 * i + 1) & 0xFF for i in range(2 * PAGE))
    a.write(store, data, 0x3000)
    _reads_agree(store, a, 0x2000, bytes(PAGE) + data + bytes(PAGE))
    _reads_agree(store, b, 0x5000, bytes(2 * PAGE))
    h.move(b, 0x5000)
    _reads_agree(store, a, 0x2000, bytes(4 * PAGE))
    _reads_agree(store, b, 0x4000, bytes(PAGE) + data + bytes(PAGE))
    b.write(store, b"moved", 0x5FFE)
    data = data[: PAGE - 2] + b"moved" + data[PAGE + 3 :]
    h.move(a, 0x8000)
    _reads_agree(store, b, 0x4000, bytes(4 * PAGE))
    _reads_agree(store, a, 0x3000, bytes(2 * PAGE))
    _reads_agree(store, a, 0x7000, bytes(PAGE) + data + bytes(PAGE))
    h.unmap(a)
    _reads_agree(store, a, 0x7000, bytes(4 * PAGE))
