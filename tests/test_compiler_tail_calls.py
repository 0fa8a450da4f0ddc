"""Tail calls across instances run in constant stack (hwsim.compiler.isa.riscv64.masm.RiscvMasm.tail_call_ref).

Two instances bounce a call between them: A's ``ping`` ``return_call_indirect``s
B's ``pong`` through A's table, ``pong`` ``return_call``s its import of ``ping``.
Each instance adds a value of its own global and memory, so a wrong vmctx or
memory base anywhere in the chain changes the result; the caller that started
the chain reads its own global and memory after it, so the instance registers
must be back.  The same program runs in wasmtime (the oracle).
"""

from __future__ import annotations

import pytest
import wasmtime

import hwsim

A = """(module
  (type $t (func (param i64 i64) (result i64)))
  (table (export "t") 2 funcref)
  (memory (export "mem") 1)
  (data (i32.const 8) "\\03\\00\\00\\00\\00\\00\\00\\00")
  (global $g i64 (i64.const 1000))
  (elem (i32.const 0) $ping)
  (func $ping (export "ping") (param $n i64) (param $acc i64) (result i64)
    (if (result i64) (i64.eqz (local.get $n)) (then (local.get $acc))
      (else (return_call_indirect (type $t)
              (i64.sub (local.get $n) (i64.const 1))
              (i64.add (i64.add (local.get $acc) (local.get $n)) (i64.load (i32.const 8)))
              (i32.const 1)))))
  (func $run (export "run") (param $n i64) (result i64)
    (i64.add (i64.add (call $ping (local.get $n) (i64.const 0)) (global.get $g))
             (i64.load (i32.const 8))))
  (func $run_indirect (export "run_indirect") (param $n i64) (result i64)
    (i64.add (call_indirect (type $t) (local.get $n) (i64.const 0) (i32.const 1)) (global.get $g))))
"""

B = """(module
  (type $t (func (param i64 i64) (result i64)))
  (import "a" "ping" (func $ping (type $t)))
  (import "a" "t" (table 2 funcref))
  (memory 1)
  (data (i32.const 8) "\\05\\00\\00\\00\\00\\00\\00\\00")
  (global $g i64 (i64.const 7))
  (elem (i32.const 1) $pong)
  (func $pong (export "pong") (param $n i64) (param $acc i64) (result i64)
    (if (i64.eq (local.get $n) (i64.const 0x100_0000_0000)) (then (unreachable)))
    (return_call $ping (local.get $n)
      (i64.add (i64.add (local.get $acc) (global.get $g)) (i64.load (i32.const 8))))))
"""

N = 100_000


def expected_ping(n: int) -> int:
    """What ``ping n 0`` returns: each ping adds n + 3 (A's memory), each pong 7 + 5 (B's global and memory)."""
    total, k = 0, n
    while k:
        total += k + 3 + 12
        k -= 1
    return total


def instantiate(api):
    engine = api.Engine()
    store = api.Store(engine)
    a = api.Instance(store, api.Module(engine, A), [])
    ae = a.exports(store)
    b_module = api.Module(engine, B)
    api.Instance(store, b_module, [ae["ping"], ae["t"]])
    return store, ae


@pytest.mark.parametrize("api", [hwsim, wasmtime], ids=["hwsim", "wasmtime"])
def test_a_cross_instance_tail_call_chain_runs_in_constant_stack(api):
    store, ae = instantiate(api)
    # 200,000 cross-instance tail calls: as calls they would need far more than the 8 MiB stack
    assert ae["run"](store, N) == expected_ping(N) + 1000 + 3
    assert ae["run_indirect"](store, N) == 12 + expected_ping(N) + 1000  # starts in B, ends in A
    assert ae["ping"](store, 3, 0) == expected_ping(3)  # from the host, straight into the chain
    if api is hwsim:  # 2,000,000 frames of at least 32 bytes: 64 MiB as calls
        assert ae["run"](store, 10 * N) == expected_ping(10 * N) + 1000 + 3


def test_a_trap_after_cross_instance_tail_calls_has_the_callers_frames():
    """A trap in ``pong`` reached through tail calls: the tail-called frames are gone, the frame below the
    chain's start is still walked (through the tail frame), as in wasmtime."""
    for api in (hwsim, wasmtime):
        store, ae = instantiate(api)
        with pytest.raises(api.Trap) as info:
            ae["run"](store, 10 + (1 << 40))  # pong traps at n = 2^40
        names = [f.func_name for f in info.value.frames]
        assert names == ["pong", "run"], (api.__name__, names)


def test_fuel_after_a_cross_instance_tail_call_chain_is_wasmtimes():
    """Metered: the fuel left after the chain (and after running out inside it) is wasmtime's."""
    results = {}
    for api in (hwsim, wasmtime):
        config = api.Config()
        config.consume_fuel = True
        engine = api.Engine(config)
        store = api.Store(engine)
        a = api.Instance(store, api.Module(engine, A), [])
        ae = a.exports(store)
        store.set_fuel(1 << 20)  # instantiation runs code in wasmtime
        api.Instance(store, api.Module(engine, B), [ae["ping"], ae["t"]])
        out = []
        for fuel, n in ((1 << 30, 1000), (5000, 1000)):
            store.set_fuel(fuel)
            try:
                out.append(ae["run"](store, n))
            except api.Trap as exc:
                out.append("out of fuel" if "fuel" in str(exc) else str(exc))
            out.append(store.get_fuel())
        results[api.__name__] = out
    assert results["hwsim"] == results["wasmtime"]
    assert results["hwsim"][2] == "out of fuel"


def test_a_cross_instance_tail_call_into_a_host_function_that_calls_back():
    """return_call of an imported host function (another instance's record): it runs, may call wasm of the
    caller's instance, and its result goes to the chain's caller, whose instance registers are back."""
    wat = """(module
      (import "host" "f" (func $f (param i64) (result i64)))
      (memory 1) (data (i32.const 0) "\\2a")
      (global $g i64 (i64.const 100))
      (func $tail (param i64) (result i64) (return_call $f (local.get 0)))
      (func (export "double") (param i64) (result i64) (i64.mul (local.get 0) (i64.const 2)))
      (func (export "run") (param i64) (result i64)
        (i64.add (i64.add (call $tail (local.get 0)) (global.get $g)) (i64.load8_u (i32.const 0)))))"""
    for api in (hwsim, wasmtime):
        engine = api.Engine()
        store = api.Store(engine)
        box = {}

        def host(caller, x, box=box):
            return box["double"](caller, x) + 1  # calls back into wasm

        func = api.Func(store, api.FuncType([api.ValType.i64()], [api.ValType.i64()]), host, access_caller=True)
        ex = api.Instance(store, api.Module(engine, wat), [func]).exports(store)
        box["double"] = ex["double"]
        assert ex["run"](store, 20) == 41 + 100 + 42, api.__name__
