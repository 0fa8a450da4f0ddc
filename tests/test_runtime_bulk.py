"""The bulk-memory builtins on the host side (runtime/builtins.py; Store.copy_user and fill_user).

memory.copy goes a page-sized chunk at a time (as memmove, backwards when the destination overlaps the
source from above), so host memory stays bounded whatever the length; untouched pages stay untouched
when only zeros would land on them; and gigabyte-sized operations honour the Store's time limit.
"""

from __future__ import annotations

import time
import tracemalloc

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api

PAGE = 4096
COPY = """(module (memory (export "m") 1 65536)
  (func (export "copy") (param i32 i32 i32) (memory.copy (local.get 0) (local.get 1) (local.get 2)))
  (func (export "fill") (param i32 i32 i32) (memory.fill (local.get 0) (local.get 1) (local.get 2)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))
  (func (export "one") (result i32) (i32.const 1)))"""


def instance(store):
    engine = store.engine
    return api.Linker(engine).instantiate(store, api.Module(engine, COPY)).exports(store)


@pytest.fixture(scope="module")
def world():
    store = api.Store()
    ex = instance(store)
    ex["grow"](store, 7)  # 8 wasm pages = 128 host pages
    return store, ex


SPAN = 6 * PAGE  # the copies stay in the first six host pages, some of them never touched


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    touched=st.lists(st.integers(0, 5), max_size=4, unique=True),
    seed=st.integers(0, 255),
    src=st.integers(0, SPAN),
    dst=st.integers(0, SPAN),
    n=st.integers(0, SPAN),
)
def test_copy_matches_memmove_across_pages_and_untouched_ones(world, touched, seed, src, dst, n):
    store, ex = world
    mem = ex["m"]
    mem.discard(store, 0, SPAN)  # every page untouched again
    model = bytearray(SPAN)
    for page in touched:
        data = bytes((seed + page * 7 + i) & 0xFF for i in range(PAGE))
        mem.write(store, data, page * PAGE)
        model[page * PAGE : (page + 1) * PAGE] = data
    n = min(n, SPAN - src, SPAN - dst)
    ex["copy"](store, dst, src, n)
    model[dst : dst + n] = bytes(model[src : src + n])
    assert mem.read(store, 0, SPAN) == bytes(model)


def test_copying_untouched_pages_onto_untouched_pages_commits_nothing():
    store = api.Store()
    ex = instance(store)
    ex["grow"](store, 1024)  # 64 MiB
    ex["fill"](store, 0, 9, 16)  # one touched page at the start
    tracemalloc.start()
    try:
        ex["copy"](store, 32 << 20, 0, 32 << 20)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1 << 20  # the old copy read all 32 MiB into one bytes object first
    assert ex["m"].committed_bytes(store) == 2 * PAGE  # the touched page, and its copy
    assert ex["m"].read(store, 32 << 20, (32 << 20) + 17) == b"\x09" * 16 + b"\0"


@pytest.mark.parametrize("call, args", [("fill", (0, 1, 0xFFFF_FFFF)), ("copy", (1, 0, 0xFFFF_FFFE))])
def test_gigabyte_bulk_operations_are_interrupted_by_the_time_limit(call, args):
    store = api.Store(time_limit=0.3)
    ex = instance(store)
    ex["grow"](store, 65535)  # 4 GiB
    start = time.monotonic()
    with pytest.raises(api.Trap) as info:
        ex[call](store, *args)
    assert info.value.code is TrapCode.INTERRUPTED
    assert "in a bulk memory operation" in str(info.value)
    assert time.monotonic() - start < 30  # 0.3 s and one megabyte's work; far below the minutes it would take
    assert ex["one"](store) == 1  # the Store goes on


def test_bulk_access_observers_see_guest_bulk_operations_in_order():
    store = api.Store()
    module = api.Module(
        store.engine,
        '(module (memory (export "m") 1) (func (export "fill") '
        "(memory.fill (i32.const 16) (i32.const 7) (i32.const 100))))",
    )
    instance = api.Instance(store, module, [])
    seen = []
    remove = store._store.add_bulk_access_observer(lambda *a: seen.append(("a", *a[1:4])))
    store._store.add_bulk_access_observer(lambda *a: seen.append(("b", *a[1:4])))
    instance.exports(store)["fill"](store)
    remove()
    instance.exports(store)["fill"](store)
    assert seen == [("a", 16, 100, True), ("b", 16, 100, True), ("b", 16, 100, True)]
