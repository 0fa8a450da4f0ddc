"""Store limits: time, memory, tables, instances, code size and RAM, each a clear error or trap that
leaves the Store usable."""

from __future__ import annotations

import pytest

import hwsim
from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api
from hwsim.runtime.objects import ResourceLimitError


def instantiate(store, wat: str):
    engine = store.engine
    return api.Linker(engine).instantiate(store, api.Module(engine, wat)).exports(store)


SPIN = '(module (func (export "spin") (loop (br 0))) (func (export "one") (result i32) (i32.const 1)))'


def test_time_limit_stops_runaway_code_even_inside_host_callbacks():
    store = api.Store(time_limit=0.05)
    engine = store.engine
    linker = api.Linker(engine)
    ex = linker.instantiate(store, api.Module(engine, SPIN)).exports(store)
    linker.define(store, "h", "spin", ex["spin"])
    outer = linker.instantiate(
        store, api.Module(engine, '(module (import "h" "spin" (func $s)) (func (export "go") (call $s)))')
    ).exports(store)
    for func in (ex["spin"], outer["go"]):
        with pytest.raises(api.Trap) as info:
            func(store)
        assert info.value.trap_code is TrapCode.INTERRUPTED
        assert ex["one"](store) == 1  # usable afterwards


def test_table_limit():
    store = api.Store(table_limit=100)
    with pytest.raises(hwsim.HwsimError, match="table of 101 elements exceeds the limit of 100"):
        instantiate(store, "(module (table 101 funcref))")
    ex = instantiate(
        store,
        '(module (table 10 funcref) (func (export "grow") (param i32) (result i32) '
        "(table.grow (ref.null func) (local.get 0))))",
    )
    assert ex["grow"](store, 90) == 10
    assert ex["grow"](store, 1) == -1  # past the limit: table.grow fails, as the spec allows


def test_instance_limit():
    store = api.Store(instance_limit=3)
    module = api.Module(store.engine, "(module)")
    for _ in range(3):
        api.Instance(store, module, [])
    with pytest.raises(hwsim.HwsimError, match="already holds 3 instances, its limit"):
        api.Instance(store, module, [])


def test_code_limit():
    store = api.Store(code_limit=64 * 1024)
    body = "(local.set 0 (i32.mul (local.get 0) (i32.const 3))) " * 300  # a few instructions each
    funcs = " ".join(f'(func (export "f{i}") (param i32) (result i32) {body} (local.get 0))' for i in range(40))
    with pytest.raises(hwsim.HwsimError, match=r"bytes of compiled code exceed the Store's code limit \(65536 bytes"):
        instantiate(store, f"(module {funcs})")
    assert instantiate(store, SPIN)["one"](store) == 1  # a small module still fits


def test_ram_size_beyond_what_the_host_can_map():
    with pytest.raises(
        ResourceLimitError,
        match=r"ram_size: 0x4000000000000 bytes \(.*\) is more than this "
        r"host can map \(mmap: .*; the host has .* of memory\)",
    ):
        api.Store(ram_size=1 << 50)


def test_running_out_of_physical_ram_is_an_error_not_a_crash():
    store = api.Store(ram_size=8 << 20)
    ex = instantiate(
        store,
        '(module (memory (export "m") 256) (func (export "touch") (param i32) '
        "(loop $l (i32.store (local.get 0) (i32.const 1)) "
        "(br_if $l (i32.lt_u (local.tee 0 (i32.add (local.get 0) (i32.const 4096))) "
        "(i32.const 16777216))))))",
    )
    with pytest.raises(hwsim.HwsimError, match="out of physical memory"):
        ex["touch"](store, 0)
    ex["m"].discard(store, 0, 256 * 65536)  # give the frames back
    ex["touch"](store, 16777216 - 4096)  # and the Store works again


def test_after_a_bulk_operation_runs_out_of_ram_a_bounds_trap_is_still_a_bounds_trap():
    """Found by review: the host path left the 'out of frames' flag set, so the next ordinary fault in
    any memory was reported as out of physical memory."""
    store = api.Store(ram_size=16 << 20)
    ex = instantiate(
        store,
        '(module (memory (export "m") 1 65536) '
        '(func (export "fill") (param i32 i32 i32) '
        "(memory.fill (local.get 0) (local.get 1) (local.get 2))) "
        '(func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))) '
        '(func (export "oob") (result i32) (i32.load (i32.const 0x7fffffff))))',
    )
    ex["grow"](store, 1000)
    with pytest.raises(hwsim.HwsimError, match="out of physical memory"):
        ex["fill"](store, 0, 1, 1000 * 65536)
    ex["m"].discard(store, 0, 1001 * 65536)
    with pytest.raises(api.Trap) as info:
        ex["oob"](store)
    assert info.value.code is TrapCode.MEMORY_OUT_OF_BOUNDS
    ex["fill"](store, 0, 1, 65536)  # and the frames came back


def test_out_of_ram_is_a_resource_limit_error_wherever_frames_are_taken():
    """Found by review: the frame allocator's OutOfFrames escaped from Store creation, instantiation,
    new globals and tables, and copy-on-write, where ResourceLimitError is promised."""
    from hwsim.runtime.objects import ResourceLimitError

    with pytest.raises(ResourceLimitError, match=r"^the Store's runtime pages: out of physical memory: "):
        api.Store(ram_size=3 * 4096)
    store = api.Store(ram_size=8 << 20)
    ex = instantiate(
        store,
        '(module (import "hwsim:memory" "handle_new" (func $new (param i32) (result externref))) '
        '(memory (export "m") 1) (func (export "new") (param i32) (result externref) '
        "(call $new (local.get 0))) "
        '(func (export "store") (param i32 i32) (i32.store (local.get 0) (local.get 1))))',
    )
    ex["m"].map_host(store, 0x1000, store.host_buffer(data=b"\1" * 4096), shared=False)  # copy-on-write
    ex["store"](store, 0, 1)
    hogs = []
    for size in (256, 64, 16, 4, 1):  # take every free frame
        while True:
            try:
                hogs.append(ex["new"](store, size))
            except api.Trap:
                break
    assert store.machine.frames.available == 0
    for attempt, message in (
        (lambda: instantiate(store, SPIN), r"bytes of compiled code: out of physical memory: "),
        (
            lambda: [api.Global(store, api.GlobalType(api.ValType.i64(), True), 0) for _ in range(10_000)],
            r"^the Store's data region \(vmctx, tables, globals\): out of physical memory: ",
        ),
        (lambda: ex["store"](store, 0x1000, 2), r"^copy-on-write of page 0x1: out of physical memory"),
        (lambda: ex["m"].write(store, b"x", 0x1000), r"^copy-on-write of page 0x1: out of physical memory"),
    ):
        with pytest.raises(ResourceLimitError, match=message):
            attempt()
    for hog in hogs[-4:]:
        hog.free()  # a few frames back, and the Store goes on: the page is still copy-on-write
    ex["store"](store, 0x1000, 2)
    assert ex["m"].read(store, 0x1000, 0x1008) == b"\2\0\0\0\1\1\1\1"
