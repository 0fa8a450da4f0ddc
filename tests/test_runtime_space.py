"""The Store's host access to guest memory (runtime/space.py): the host's translation cache.

A page's translation is cached after its first host access; every change of the Store's address
space (unmap, protect, remap) drops the cache, so that host code never reads or writes a frame
the guest no longer has.  The attacks below write through a stale translation if it survives.
"""

from __future__ import annotations

from hwsim.mmu.bits import PAGE_SIZE, Pte
from hwsim.runtime import api
from hwsim.runtime import layout as L
from hwsim.runtime.internal import vm_memory, vm_store

RW_U = Pte.R | Pte.W | Pte.U

WAT = """
(module
  (memory (export "mem") 1 4)
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1)))
  (func (export "load") (param i32) (result i32) (i32.load (local.get 0))))
"""


def setup():
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    exports = api.Instance(store, api.Module(engine, WAT), []).exports(store)
    vm = vm_store(store)
    mem = vm_memory(exports["mem"])
    return store, exports, vm, mem


class CountingLookups:
    """Counts the Python walks (``AddressSpace.lookup``) host accesses make."""

    def __init__(self, vm) -> None:
        self.calls = 0
        self._lookup = vm.space.lookup
        vm.space.lookup = self

    def __call__(self, va):
        self.calls += 1
        return self._lookup(va)


def test_host_words_in_the_data_region_walk_once_per_page():
    _store, _exports, vm, _mem = setup()
    va = vm.alloc_data(64)
    vm.write_u64(va, 1)  # may walk: the first access to the page
    walks = CountingLookups(vm)
    for i in range(8):
        vm.write_u64(va + 8 * i, i + 100)
    assert [vm.read_u64(va + 8 * i) for i in range(8)] == [i + 100 for i in range(8)]
    assert walks.calls == 0


def test_host_reads_of_linear_memory_walk_once_per_page():
    store, exports, vm, mem = setup()
    exports["mem"].write(store, b"abcd", 16)
    walks = CountingLookups(vm)
    for _ in range(5):
        assert exports["mem"].read(store, 16, 20) == b"abcd"
    assert walks.calls == 0


def test_an_unmapped_page_is_never_cached():
    """A page host code found unmapped (reads as zeros) and the guest then touched: the host sees
    the guest's data (a cached 'not mapped' would hide it)."""
    store, exports, vm, mem = setup()
    assert vm.page_pa(mem.base + PAGE_SIZE) is None
    assert exports["mem"].read(store, PAGE_SIZE, PAGE_SIZE + 4) == bytes(4)
    exports["store"](store, PAGE_SIZE, 0x1234_5678)  # the guest's pager maps the page
    assert exports["mem"].read(store, PAGE_SIZE, PAGE_SIZE + 4) == (0x1234_5678).to_bytes(4, "little")


def test_grown_memory_pages_are_seen_by_the_host():
    store, exports, vm, mem = setup()
    top = 65536  # the first byte past the initial size
    assert vm.page_pa(mem.base + top) is None
    assert exports["grow"](store, 1) == 1
    exports["store"](store, top + 8, 77)
    assert exports["mem"].read(store, top + 8, top + 12) == (77).to_bytes(4, "little")
    exports["mem"].write(store, (78).to_bytes(4, "little"), top + 8)
    assert exports["load"](store, top + 8) == 78


def test_host_write_after_unmap_never_reaches_the_lost_frame():
    """The attack: the guest loses a page (its frame freed and given to someone else); a host write
    through a stale translation would land in the other owner's frame."""
    store, exports, vm, mem = setup()
    va = mem.base
    exports["mem"].write(store, b"secret", 0)
    old = vm.page_pa(va)
    assert old is not None
    vm.space.unmap(va, PAGE_SIZE)  # the frame goes back to the allocator
    other = vm.machine.frames.alloc()  # ... and to another owner (the allocator hands out the lowest free)
    vm.machine.phys.write(old, b"OTHER!")
    exports["mem"].write(store, b"host", 0)  # maps a fresh page for the host write
    assert vm.machine.phys.read(old, 6) == b"OTHER!"
    new = vm.page_pa(va)
    assert new is not None and new != old
    assert vm.space.lookup(va).pa == new
    assert exports["load"](store, 0) == int.from_bytes(b"host", "little")
    vm.machine.frames.free(other)


def test_data_region_word_after_remap_goes_to_the_new_frame():
    """A data-region page remapped to another frame: host words follow the new mapping."""
    _store, _exports, vm, _mem = setup()
    va = vm.alloc_data(16)
    page = va & ~(PAGE_SIZE - 1)
    vm.write_u64(va, 0x1111)
    old = vm.page_pa(va)
    new = vm.machine.frames.alloc()
    vm.space.unmap(page, PAGE_SIZE)
    vm.space.map(page, new, PAGE_SIZE, RW_U)
    vm.write_u64(va, 0x2222)
    assert vm.read_u64(va) == 0x2222
    assert vm.machine.phys.read_u64(new + (va - page)) == 0x2222
    assert vm.machine.phys.read_u64(old + (va - page)) == 0x1111
    assert vm.phys_view(va, 8).tobytes() == (0x2222).to_bytes(8, "little")


def test_protect_drops_the_cache_and_keeps_the_frame():
    store, exports, vm, mem = setup()
    exports["mem"].write(store, b"x", 0)
    pa = vm.page_pa(mem.base)
    vm.space.protect(mem.base, PAGE_SIZE, Pte.R | Pte.U)
    walks = CountingLookups(vm)
    assert exports["mem"].read(store, 0, 1) == b"x"
    assert walks.calls == 1  # the change dropped the cached translation
    assert vm.page_pa(mem.base) == pa


def test_abi_area_values_follow_a_remapped_abi_page():
    """Arguments passed in the ABI area (more than 8 integers) are written through the cache: after
    the ABI page is remapped, a call still gets them right."""
    params = " ".join(["i64"] * 10)
    wat = f'(module (func (export "f") (param {params}) (result i64) (local.get 9)))'
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    f = api.Instance(store, api.Module(engine, wat), []).exports(store)["f"]
    assert f(store, *range(10)) == 9
    vm = vm_store(store)
    new = vm.machine.frames.alloc()
    old = vm.page_pa(L.ABI_AREA)
    vm.space.unmap(L.ABI_AREA, PAGE_SIZE)
    vm.space.map(L.ABI_AREA, new, PAGE_SIZE, RW_U)
    vm.machine.phys.write(old, bytes(PAGE_SIZE))
    assert f(store, *range(100, 110)) == 109
    assert vm.machine.phys.read(old, PAGE_SIZE) == bytes(PAGE_SIZE)


def test_many_function_records_span_data_chunks_intact():
    """Function records are written many at a time (one copy per physically contiguous run): 3,000 of
    them (96 KiB) fill more than one chunk of the data region, whose frames need not follow one another.
    Every record must read back right, and a write that ran past its chunk would corrupt what lies there."""
    count = 3_000
    funcs = "\n".join(f"(func $f{i} (result i32) (i32.const {i}))" for i in range(count))
    names = " ".join(f"$f{i}" for i in range(count))
    wat = f"""(module (table {count} funcref) (elem (i32.const 0) func {names})
      (type $t (func (result i32)))
      {funcs}
      (func (export "call") (param i32) (result i32) (call_indirect (type $t) (local.get 0))))"""
    engine = api.Engine(cache=False)
    store = api.Store(engine)
    instance = api.Instance(store, api.Module(engine, wat), [])
    call = instance.exports(store)["call"]
    vm = vm_store(store)
    records = [r for r in vm.funcrefs.values() if r.instance is not None]
    assert len(records) == count + 1
    chunks = {vm.page_pa(r.va) - (r.va & ~(PAGE_SIZE - 1)) for r in records}  # pa - va: one per chunk
    assert len(chunks) > 1  # the records really cross from one chunk into another
    for r in records:
        code, vmctx, tid = (vm.read_u64(r.va + off) for off in (L.FUNCREF_CODE, L.FUNCREF_VMCTX, L.FUNCREF_TYPE))
        assert (code, vmctx, tid) == (r.code, r.instance.vmctx, vm.type_id(r.type))
    assert [call(store, i) for i in (0, 1, 1_234, count - 1)] == [0, 1, 1_234, count - 1]
