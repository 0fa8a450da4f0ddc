"""The embedding API for shared memories (threads proposal), in wasmtime-py's shape: MemoryType(shared=True),
SharedMemory(engine, ty), imports through Instance and Linker, exports that come back as SharedMemory.

The same program runs against wasmtime-py's SharedMemory; sizes, results and bytes must agree.
"""

from __future__ import annotations

import random

import pytest
import wasmtime

import hwsim
from hwsim import Engine, Instance, Limits, Linker, Memory, MemoryType, Module, SharedMemory, Store, WasmtimeError
from hwsim.errors import StoreMismatchError

PROGRAM = """(module
  (import "env" "memory" (memory 1 4 shared))
  (export "mem" (memory 0))
  (func (export "bump") (param $p i32) (param $n i32) (result i32)
    (i32.atomic.rmw.add (local.get $p) (local.get $n)))
  (func (export "swap8") (param $p i32) (param $v i32) (result i32)
    (i32.atomic.rmw8.xchg_u (local.get $p) (local.get $v)))
  (func (export "cas64") (param $p i32) (param $e i64) (param $r i64) (result i64)
    (i64.atomic.rmw.cmpxchg (local.get $p) (local.get $e) (local.get $r)))
  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0))))"""


def test_memory_type_shared():
    ty = MemoryType(Limits(1, 2), shared=True)
    assert ty.is_shared and ty != MemoryType(Limits(1, 2))
    assert repr(ty) == "MemoryType(Limits(1, 2), is_64=False, shared=True)"
    with pytest.raises(WasmtimeError, match=r"MemoryType\(shared=True\): a shared memory must have a maximum"):
        MemoryType(Limits(1), shared=True)
    with pytest.raises(hwsim.errors.ArgumentTypeError):
        MemoryType(Limits(1, 2), shared=1)


def test_shared_memory_before_and_after_placement():
    engine = Engine()
    sm = SharedMemory(engine, MemoryType(Limits(1, 4), shared=True))
    assert (sm.size(), sm.data_len()) == (1, 65536)
    assert sm.grow(1) == 1 and sm.size() == 2
    assert sm.type() == MemoryType(Limits(2, 4), shared=True)
    with pytest.raises(WasmtimeError, match="failed to grow memory by 3 pages"):
        sm.grow(3)
    with pytest.raises(WasmtimeError, match="SharedMemory.data_ptr: the memory has no bytes yet"):
        sm.data_ptr()
    store = Store(engine)
    exports = Instance(store, Module(engine, PROGRAM), [sm]).exports(store)
    assert exports["bump"](store, 16, 5) == 0 and exports["bump"](store, 16, 2) == 5
    assert sm.data_ptr()[16] == 7
    sm.data_ptr()[24] = 0xAB
    assert exports["swap8"](store, 24, 1) == 0xAB
    assert exports["grow"](store, 1) == 2 and sm.size() == 3 and sm.data_len() == 3 * 65536
    mem = exports["mem"]
    assert isinstance(mem, SharedMemory) and mem == sm and mem.size() == 3
    with pytest.raises(StoreMismatchError, match="the SharedMemory .placed in the Store that first imported it."):
        Instance(Store(engine), Module(engine, PROGRAM), [sm])


def test_shared_memory_through_a_linker_and_errors():
    engine = Engine()
    store = Store(engine)
    sm = SharedMemory(engine, MemoryType(Limits(1, 4), shared=True))
    linker = Linker(engine)
    linker.define(store, "env", "memory", sm)
    exports = linker.instantiate(store, Module(engine, PROGRAM)).exports(store)
    assert exports["cas64"](store, 0, 0, -2) == 0 and exports["cas64"](store, 0, 1, 3) == -2
    with pytest.raises(WasmtimeError, match=r"SharedMemory\(ty\): the type is not shared"):
        SharedMemory(engine, MemoryType(Limits(1, 4)))
    with pytest.raises(WasmtimeError, match=r"Memory\(ty\): a shared memory type makes a SharedMemory"):
        Memory(store, MemoryType(Limits(1, 4), shared=True))
    unshared = Memory(store, MemoryType(Limits(1, 4)))
    with pytest.raises(WasmtimeError, match="expects a shared memory"):
        Instance(store, Module(engine, PROGRAM), [unshared])
    small = SharedMemory(engine, MemoryType(Limits(1, 8), shared=True))
    with pytest.raises(WasmtimeError, match="incompatible import type"):
        Instance(store, Module(engine, PROGRAM), [small])  # maximum 8 > 4


def test_the_same_program_against_wasmtime_shared_memory():
    config = wasmtime.Config()
    config.shared_memory = True
    wengine = wasmtime.Engine(config)
    wstore = wasmtime.Store(wengine)
    # wasmtime-py 50 cannot pass a SharedMemory as an import (SharedMemory._as_extern builds a pointer of the
    # wrong ctypes type): its instance defines the memory and exports it, which comes back as a SharedMemory
    own = PROGRAM.replace('(import "env" "memory" (memory 1 4 shared))', "(memory 1 4 shared)")
    wx = wasmtime.Instance(wstore, wasmtime.Module(wengine, own), []).exports(wstore)
    wsm = wx["mem"]
    engine = Engine()
    store = Store(engine)
    sm = SharedMemory(engine, MemoryType(Limits(1, 4), shared=True))
    hx = Instance(store, Module(engine, PROGRAM), [sm]).exports(store)
    rng = random.Random(18)
    for _ in range(300):
        p = rng.randrange(0, 256)
        name = rng.choice(["bump", "swap8", "cas64"])
        if name == "cas64":
            p &= ~7
            args = (p, rng.choice([0, rng.getrandbits(63)]), rng.getrandbits(63))
        elif name == "bump":
            p &= ~3
            args = (p, rng.getrandbits(31))
        else:
            args = (p, rng.getrandbits(8))
        assert hx[name](store, *args) == wx[name](wstore, *args), (name, args)
    assert sm.data_ptr()[0:256] == list(wsm.data_ptr()[0:256])
    assert hx["grow"](store, 2) == wx["grow"](wstore, 2) == 1
    # (wasmtime-py 50's SharedMemory.size/type fail the same way: the program's memory.grow 0 tells the size)
    assert sm.size() == hx["grow"](store, 0) == wx["grow"](wstore, 0) == 3
    assert sm.data_len() == 3 * 65536 and sm.type() == MemoryType(Limits(3, 4), shared=True)
    assert isinstance(wx["mem"], wasmtime.SharedMemory) and isinstance(hx["mem"], SharedMemory)
