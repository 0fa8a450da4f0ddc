"""1-byte pages at the 2^32 boundary (custom-page-sizes; hwsim.runtime.objects.MemoryInstance.grow).

The proposal's *growing memories* (Overview.md, since WebAssembly/custom-page-sizes#20):
"If len is larger than or equal to 2**32, then fail" for a 32-bit memory, so
its size stops at 2^32 - 1 one-byte pages; reaching that size succeeds
(``memory.size`` then answers -1 as an i32, and ``memory.grow 0`` there
succeeds with -1, the ambiguity the proposal accepts as tables have it).  A
memory64 memory goes past it.

wasmtime 50 is the oracle below the boundary; at it, it differs on purpose
(bytecodealliance/wasmtime#12884 refuses to reach 2^32 - 1 pages while
WebAssembly/custom-page-sizes#45 is open), so the cases that reach it are held
to the proposal's text alone.
"""

from __future__ import annotations

import pytest
import wasmtime

import hwsim

WAT = """(module (memory {it} {min} (pagesize 1))
 (func (export "grow") (param {t}) (result {t}) (memory.grow (local.get 0)))
 (func (export "size") (result {t}) (memory.size))
 (func (export "st") (param {t} i32) (i32.store8 (local.get 0) (local.get 1)))
 (func (export "ld") (param {t}) (result i32) (i32.load8_u (local.get 0))))"""

TOP = 0xFFFF_FFFF  # the most 1-byte pages a 32-bit memory holds

# name: (index type, initial pages, operations, the proposal's results, whether wasmtime 50 agrees)
CASES = {
    "reaching 2^32 - 1 pages by one": (
        "",
        TOP - 1,
        [("grow", 1), ("size",), ("grow", 1), ("grow", 0), ("size",), ("st", TOP - 1, 7), ("ld", TOP - 1)]
        + [("ld", TOP), ("grow", TOP)],
        [-2, -1, -1, -1, -1, None, 7, "trap", -1],
        False,
    ),
    "reaching 2^32 - 1 pages at once": (
        "",
        1,
        [("grow", TOP), ("size",), ("grow", TOP - 1), ("size",), ("grow", 1), ("size",)],
        [-1, 1, 1, -1, -1, -1],
        False,
    ),
    "from 0 to 2^32 - 1 pages": ("", 0, [("grow", TOP), ("size",), ("grow", 0), ("grow", 1)], [0, -1, -1, -1], False),
    "up to 2^32 - 2 pages": (
        "",
        0,
        [("grow", TOP - 1), ("size",), ("grow", 2), ("size",), ("st", TOP - 2, 5), ("ld", TOP - 2), ("ld", TOP - 1)],
        [0, -2, -1, -2, None, 5, "trap"],
        True,
    ),
    "memory64 past 2^32 pages": (
        "i64",
        0,
        [("grow", TOP + 1), ("size",), ("st", TOP, 3), ("ld", TOP), ("ld", TOP + 1), ("grow", 1)],
        [0, TOP + 1, None, 3, "trap", TOP + 1],
        True,
    ),
}


def run(api, it: str, minimum: int, ops: list) -> list:
    if api is wasmtime:
        config = wasmtime.Config()
        config.wasm_custom_page_sizes = True
        config.memory_reservation = 8 << 30  # growing past its default 4 GiB would copy the memory
        engine = wasmtime.Engine(config)
    else:
        engine = api.Engine()
    store = api.Store(engine)
    wat = WAT.format(it=it, min=minimum, t="i64" if it else "i32")
    x = api.Instance(store, api.Module(engine, wat), []).exports(store)
    out = []
    for name, *args in ops:
        try:
            out.append(x[name](store, *args))
        except api.Trap as exc:
            assert "out of bounds memory access" in str(exc)
            out.append("trap")
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_growing_one_byte_pages_at_the_2_32_boundary(case):
    it, minimum, ops, expected, wasmtime_agrees = CASES[case]
    assert run(hwsim, it, minimum, ops) == expected
    if wasmtime_agrees:
        assert run(wasmtime, it, minimum, ops) == expected


def test_the_largest_32_bit_memory_of_one_byte_pages_is_2_32_minus_1_pages():
    engine = hwsim.Engine()
    store = hwsim.Store(engine)
    memory = hwsim.Memory(store, hwsim.MemoryType(hwsim.Limits(TOP, None), page_size_log2=0))
    assert memory.size(store) == TOP
    with pytest.raises(hwsim.WasmtimeError):
        memory.grow(store, 1)
