"""memory64 memories past 4 GiB (hwsim.runtime.objects.MemoryInstance, space.reserve_memory/extend_memory).

A memory64 memory is bounds checked in compiled code and needs no guard: it
reserves consecutive 6 GiB slots for its maximum (at most
``layout.MEMORY64_MAX_BYTES``), or, unbounded, for its initial size, growing
into the slots after it while they are free.  Pages are mapped on first touch,
so an 8 GiB memory costs the frames of the pages used.  Results are compared
with wasmtime's.
"""

from __future__ import annotations

import pytest
import wasmtime

import hwsim
from hwsim.runtime import layout as L
from hwsim.runtime.internal import vm_memory

WAT = """(module (memory (export "mem") i64 1 {max})
 (func (export "grow") (param i64) (result i64) (memory.grow (local.get 0)))
 (func (export "size") (result i64) (memory.size))
 (func (export "st") (param i64 i64) (i64.store offset=3 (local.get 0) (local.get 1)))
 (func (export "ld") (param i64) (result i64) (i64.load offset=3 (local.get 0))))"""

GIB = 1 << 30
PAGES_5_GIB = 5 * GIB // 65536


def script(api, wat: str) -> list:
    if api is wasmtime:  # a reservation for the whole test: growing past its default 4 GiB copies the memory
        config = wasmtime.Config()
        config.memory_reservation = 32 * GIB
        engine = wasmtime.Engine(config)
    else:
        engine = api.Engine()
    store = api.Store(engine)
    x = api.Instance(store, api.Module(engine, wat), []).exports(store)
    out = [x["grow"](store, PAGES_5_GIB - 1), x["size"](store)]
    for address in (0x1_2345_6780, 5 * GIB - 11, 4 * GIB - 5):  # across the 4 GiB line too
        x["st"](store, address, address * 0x9E37_79B9 & 0x7FFF_FFFF_FFFF_FFFF)
        out.append(x["ld"](store, address))
    for address in (5 * GIB - 10, 1 << 63):
        with pytest.raises(api.Trap, match="out of bounds memory access"):
            x["ld"](store, address)
    out += [x["grow"](store, 0x1_0000), x["size"](store), x["grow"](store, 1 << 40)]
    return out


@pytest.mark.parametrize("maximum", ["", "0x20000", "0x50000"], ids=["unbounded", "8GiB", "20GiB"])
def test_a_memory64_memory_grows_past_4_gib_as_in_wasmtime(maximum):
    wat = WAT.format(max=maximum)
    assert script(hwsim, wat) == script(wasmtime, wat)


def test_a_large_memory64_memory_is_demand_paged():
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    x = hwsim.Instance(store, hwsim.Module(engine, WAT.format(max="")), []).exports(store)
    assert x["grow"](store, 8 * GIB // 65536) == 1  # 8 GiB + 64 KiB, with 1 GiB of RAM behind the Store
    x["st"](store, 8 * GIB, 42)
    x["st"](store, 7 * GIB, 43)
    assert (x["ld"](store, 8 * GIB), x["ld"](store, 7 * GIB)) == (42, 43)
    memory = vm_memory(x["mem"])
    assert memory.committed_bytes == 2 * 4096
    assert memory.span == 2 * L.MEMORY_RESERVATION  # grew from one slot into the next


def test_the_largest_memory64_memory_and_past_it():
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    x = hwsim.Instance(store, hwsim.Module(engine, WAT.format(max="")), []).exports(store)
    pages = L.MEMORY64_MAX_BYTES // 65536
    assert x["grow"](store, pages) == -1  # one page more than the largest
    assert x["grow"](store, pages - 1) == 1
    x["st"](store, L.MEMORY64_MAX_BYTES - 11, 5)
    assert x["ld"](store, L.MEMORY64_MAX_BYTES - 11) == 5
    with pytest.raises(hwsim.WasmtimeError, match="exceeds the limit"):
        hwsim.Instance(store, hwsim.Module(engine, "(module (memory i64 0x20_0001))"), [])


def test_an_unbounded_memory64_memory_grows_in_place_only_while_the_next_slots_are_free():
    """The documented limit: a memory reserved after it takes the next slot, so it stops at its slots
    (6 GiB for one); memory.grow then fails as the specification allows (-1)."""
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    x = hwsim.Instance(store, hwsim.Module(engine, WAT.format(max="")), []).exports(store)
    hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(1, None)))
    assert x["grow"](store, L.MEMORY_RESERVATION // 65536 - 1) == 1  # exactly its one slot
    assert x["grow"](store, 1) == -1
    x["st"](store, L.MEMORY_RESERVATION - 11, 9)
    assert x["ld"](store, L.MEMORY_RESERVATION - 11) == 9
