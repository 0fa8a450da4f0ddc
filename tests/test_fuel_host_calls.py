"""The fuel count across host calls, against wasmtime: host functions that call back into wasm (several
levels deep, calls that trap or run out of fuel and are caught), that get and set the fuel in any order,
that raise.  The ecall of metered code puts the count back into its register only when the cell no longer
holds what the register held (checkpoints.fuel_kept_in_register); every scenario here checks the fuel the host sees, the
results and traps, and the fuel left are wasmtime's, exactly."""

from __future__ import annotations

import threading

import pytest
import wasmtime
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

import hwsim
from hwsim.runtime.internal import vm_store

WAT = """(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (func $work (export "work") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "trapper") (param i32) (result i32) (drop (call $work (local.get 0))) unreachable)
  (func (export "outer") (param $n i32) (result i32)
    (i32.add (call $host (local.get $n)) (call $work (i32.const 3))))
  (func (export "twice") (param $n i32) (result i32)
    (i32.add (call $host (local.get $n)) (call $host (i32.add (local.get $n) (i32.const 100)))))
  (table 1 funcref) (elem (i32.const 0) $host) (type $t (func (param i32) (result i32)))
  (func (export "tail") (param $n i32) (result i32) (drop (call $work (i32.const 2))) (return_call $host (local.get $n)))
  (func (export "indirect") (param $n i32) (result i32)
    (i32.add (call_indirect (type $t) (local.get $n) (i32.const 0)) (call $work (i32.const 4))))
  (func (export "tail_indirect") (param $n i32) (result i32)
    (return_call_indirect (type $t) (local.get $n) (i32.const 0))))"""

FUEL = 10_000


class _Raised(Exception):
    """What a host function raises on purpose."""


def _trap_name(exc: BaseException) -> str:
    if isinstance(exc, hwsim.Trap):
        return exc.code.name
    if isinstance(exc, wasmtime.Trap):
        return {"INTERRUPT": "INTERRUPTED", "OUT_OF_FUEL": "OUT_OF_FUEL"}.get(exc.trap_code.name, exc.trap_code.name)
    return type(exc).__name__


def _request_from_another_thread(store) -> None:
    """A request_checkpoint from another thread while the host function runs (wasmtime has none: the
    request must change nothing it can see)."""
    thread = threading.Thread(target=vm_store(store).request_checkpoint)
    thread.start()
    thread.join()


def run(engine: str, scripts: list[list[tuple]], entry: str = "outer", fuel: int = FUEL, epochs: bool = False) -> tuple:
    """Run ``entry`` with a host function that carries out ``scripts[level]`` at nesting level ``level``
    (its argument mod 100); returns (what the host saw, the result or trap, the fuel left).  ``epochs``:
    epoch interruption on too, the deadline far until a script's ``deadline`` action."""
    api = hwsim if engine == "hwsim" else wasmtime
    config = api.Config()
    config.consume_fuel = True
    config.epoch_interruption = epochs
    eng = api.Engine(config, cache=False) if engine == "hwsim" else api.Engine(config)
    store = api.Store(eng)
    module = api.Module(eng, WAT)
    ty = api.FuncType([api.ValType.i32()], [api.ValType.i32()])
    seen: list = []

    def host(caller, n):
        level = n % 100
        at_entry = store.get_fuel()
        seen.append(("entry", level, at_entry))
        out = n
        for action in scripts[level] if level < len(scripts) else ():
            kind = action[0]
            if kind == "get":
                seen.append(("get", store.get_fuel()))
            elif kind == "set":
                store.set_fuel(action[1])
            elif kind == "set_entry":
                store.set_fuel(max(0, at_entry + action[1]))
            elif kind == "request":
                if engine == "hwsim":
                    _request_from_another_thread(store)
            elif kind == "tick":
                eng.increment_epoch()
            elif kind == "deadline":
                store.set_epoch_deadline(action[1])
            elif kind == "raise":
                raise _Raised("from the host")
            else:  # a call back into wasm: its result, or the trap it raised (caught here)
                name = {"work": "work", "trap": "trapper", "nest": "outer"}[kind]
                arg = level + 1 if kind == "nest" else action[1]
                try:
                    value = caller[name](caller, arg)
                    out += value
                    seen.append((kind, value))
                except (hwsim.Trap, wasmtime.Trap) as trap:
                    seen.append((kind, _trap_name(trap)))
        seen.append(("exit", level, store.get_fuel()))
        return out & 0x7FFF_FFFF

    if epochs:
        store.set_epoch_deadline(1000)  # (wasmtime runs no code to instantiate this module, but say so)
    instance = api.Instance(store, module, [api.Func(store, ty, host, access_caller=True)])
    store.set_fuel(fuel)
    if epochs:
        store.set_epoch_deadline(1000)
    try:
        result = instance.exports(store)[entry](store, 0)
    except (hwsim.Trap, wasmtime.Trap, _Raised) as exc:
        result = _trap_name(exc)
    return seen, result, store.get_fuel()


def same(scripts: list[list[tuple]], entry: str = "outer", fuel: int = FUEL, epochs: bool = False) -> tuple:
    hw = run("hwsim", scripts, entry, fuel, epochs)
    wt = run("wasmtime", scripts, entry, fuel, epochs)
    if epochs:
        hw, wt = _until_interrupted(hw), _until_interrupted(wt)
    assert hw == wt
    return hw


def _until_interrupted(outcome: tuple) -> tuple:
    """What may be compared once an epoch deadline interrupted code: wasmtime reports older fuel than
    hwsim's exact count after a trap other than out-of-fuel (docs/embedding.md, *Fuel and epochs*), so
    nothing after the first interruption that shows a count, and not the fuel left."""
    seen, result, left = outcome
    for i, event in enumerate(seen):
        if "INTERRUPTED" in event:
            return [*seen[:i], event], result, None
    return seen, result, None if result == "INTERRUPTED" else left


@pytest.mark.parametrize(
    "scripts",
    [
        [[]],  # nothing: the register keeps the count
        [[("get",), ("get",)]],
        [[("set_entry", 0)]],  # the count set back to what it was: no write needed, none wrong
        [[("set_entry", -1)], [], []],
        [[("set_entry", 1)]],
        [[("set", 0)]],  # used up: the work after the call traps
        [[("set", 1)]],
        [[("work", 5), ("set_entry", 0)]],  # guest code ran, and the count put back as seen on entry
        [[("set_entry", 0), ("work", 5)]],
        [[("work", 5), ("get",), ("work", 7)]],
        [[("nest",)], [("nest",)], [("nest",)], [("get",)]],  # four levels of host calls
        [[("nest",), ("set_entry", 0)], [("work", 9)], []],
        [[("nest",)], [("set_entry", 0)], []],
        [[("nest",)], [("set", 0)], []],  # the inner level leaves nothing: its own work traps
        [[("trap", 4)], []],  # a nested call traps, the host catches it and returns
        [[("trap", 4), ("set_entry", 0)], []],
        [[("nest",)], [("trap", 2), ("get",)], []],
        [[("set", 20), ("work", 100), ("get",)]],  # a nested call runs out of fuel, caught
        [[("set", 20), ("work", 100), ("set", 500)]],  # ... and the host refills
        [[("set", 20), ("work", 100), ("set_entry", 0)]],
        [[("set", 30), ("nest",), ("get",)], [("work", 50)]],
        [[("raise",)]],  # the host raises: the call fails, the fuel is what was used
        [[("work", 3), ("raise",)]],
        [[("nest",)], [("raise",)]],
        [[("nest",), ("get",)], [("set_entry", 0), ("raise",)]],
    ],
)
def test_host_calls_see_and_leave_wasmtimes_fuel(scripts):
    same(scripts)


@pytest.mark.parametrize(
    "scripts",
    [[[]], [[("set_entry", 0)]], [[("work", 4)]], [[("set_entry", -3)]], [[("nest",)], [("set", 40)], []]],
)
def test_two_host_calls_in_a_row_see_wasmtimes_fuel(scripts):
    """``twice``: the second host call starts from what the first (and the code between) left."""
    same(scripts, entry="twice")


@pytest.mark.parametrize("entry", ["tail", "indirect", "tail_indirect"])
@pytest.mark.parametrize(
    "scripts",
    [[[]], [[("set_entry", 0)]], [[("set_entry", 2)]], [[("work", 5), ("set_entry", 0)]], [[("nest",)], [("get",)]]],
)
def test_host_functions_reached_by_tail_and_indirect_calls_see_and_leave_wasmtimes_fuel(entry, scripts):
    same(scripts, entry=entry)


_ACTION = st.one_of(
    st.tuples(st.just("get")),
    st.tuples(st.just("set"), st.integers(0, 400)),
    st.tuples(st.just("set_entry"), st.integers(-5, 5)),
    st.tuples(st.just("work"), st.integers(0, 60)),
    st.tuples(st.just("trap"), st.integers(0, 20)),
    st.tuples(st.just("nest")),
)


@settings(max_examples=examples(40), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(
        st.lists(_ACTION, max_size=5).flatmap(
            lambda acts: st.sampled_from([acts, [*acts, ("raise",)]]) if acts else st.just(acts)
        ),
        min_size=1,
        max_size=4,
    ),
    entry=st.sampled_from(["outer", "twice"]),
    fuel=st.sampled_from([50, 300, FUEL]),
)
def test_random_host_call_scripts_match_wasmtime(scripts, entry, fuel):
    same(scripts, entry, fuel)


@pytest.mark.parametrize(
    "scripts",
    [
        [[("request",)]],  # the count is parked at the return: the slow path puts it back
        [[("request",), ("set_entry", 0)]],
        [[("request",), ("set", 77)]],
        [[("set_entry", 0), ("request",)]],
        [[("request",), ("work", 6), ("get",)]],  # the nested call honours it
        [[("nest",), ("request",)], [("request",), ("set_entry", 0)], []],
        [[("request",), ("trap", 3)], []],
        [[("request",), ("raise",)]],
    ],
)
def test_a_checkpoint_request_during_a_host_call_changes_no_fuel(scripts):
    same(scripts)
    same(scripts, entry="twice")


@pytest.mark.parametrize(
    "scripts",
    [
        [[("tick",)]],  # the deadline far: nothing happens
        [[("deadline", 0)]],  # the deadline reached during the host call: the code after it is interrupted
        [[("deadline", 1)]],
        [[("deadline", 1), ("tick",)]],
        [[("deadline", 0), ("deadline", 5)]],  # ... and moved back before the host returns
        [[("deadline", 0), ("work", 4)], []],  # a nested call is interrupted, the host catches it
        [[("deadline", 0), ("work", 4), ("deadline", 5)], []],
        [[("set_entry", 0), ("deadline", 5)]],
        [[("nest",), ("deadline", 0)], [("deadline", 1), ("tick",), ("deadline", 3)], []],
        [[("request",), ("deadline", 3)]],
    ],
)
def test_epoch_deadlines_set_or_reached_during_a_host_call_are_wasmtimes(scripts):
    same(scripts, epochs=True)
    same(scripts, entry="twice", epochs=True)


_ACTION_MORE = st.one_of(
    _ACTION,
    st.tuples(st.just("request")),
    st.tuples(st.just("tick")),
    st.tuples(st.just("deadline"), st.integers(0, 3)),
)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(st.lists(_ACTION_MORE, max_size=5), min_size=1, max_size=3),
    entry=st.sampled_from(["outer", "twice", "tail", "indirect", "tail_indirect"]),
    fuel=st.sampled_from([50, 300, FUEL]),
    epochs=st.booleans(),
)
def test_random_scripts_with_requests_and_epochs_match_wasmtime(scripts, entry, fuel, epochs):
    if not epochs:
        scripts = [[a for a in level if a[0] not in ("tick", "deadline")] for level in scripts]
    same(scripts, entry, fuel, epochs)


# -- exceptions thrown from host functions (wasmtime-py has none to compare with: the count is conserved) ---

EXN_WAT = """(module
  (import "env" "host" (func $host (param i32) (result i32)))
  (import "env" "tag" (tag $h (param i32)))
  (func $work (export "work") (param $n i32) (result i32) (local $i i32)
    (loop $l (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br_if $l (i32.lt_s (local.get $i) (local.get $n))))
    (local.get $i))
  (func (export "f") (param $n i32) (result i32)
    (block $c (result i32)
      (try_table (result i32) (catch $h $c)
        (call $host (local.get $n)))
      (call $work (i32.const 5))
      (i32.add)
      (return))
    (call $work (i32.const 7))
    (i32.add))
  (func (export "g") (param $n i32) (result i32)
    (i32.add (call $host (local.get $n)) (call $work (i32.const 2)))))"""


def run_exn(scripts: list[list[tuple]], entry: str, keep_sets: bool) -> tuple:
    """``scripts[level]``, as :func:`run`'s, in a Store whose host function may throw a wasm exception
    (``throw``), call ``f`` (which catches it) or ``g`` (which lets it through) one level down, and set
    the fuel (``delta``: what it is plus a delta; ``reset``: what the host saw on entry).  ``keep_sets``
    False: leave the fuel alone instead.  The fuel left is returned less what the sets gave: with or
    without them, the same if the count is conserved."""
    engine = hwsim.Engine(_hw_config(), cache=False)
    store = hwsim.Store(engine)
    tag = hwsim.Tag(store, hwsim.TagType(hwsim.FuncType([hwsim.ValType.i32()], [])))
    seen: list = []
    refunds: list[int] = []  # what each set gave back (or took)

    def host(caller, n):
        level = n % 100
        at_entry = store.get_fuel()
        out = n
        for action in scripts[level] if level < len(scripts) else ():
            kind = action[0]
            if kind == "delta":  # the count as it is now, plus a delta
                if keep_sets:
                    store.set_fuel(store.get_fuel() + action[1])
                    refunds.append(action[1])
            elif kind == "reset":  # the count the host saw on entry (what its register still holds)
                if keep_sets:
                    refunds.append(at_entry - store.get_fuel())
                    store.set_fuel(at_entry)
            elif kind == "throw":
                raise hwsim.WasmException(store, tag, [action[1]])
            elif kind == "work":
                out += caller["work"](caller, action[1])
            else:  # "f" or "g", one level down
                try:
                    value = caller[kind](caller, level + 1)
                    out += value
                    seen.append((kind, value))
                except hwsim.WasmException as exc:
                    seen.append((kind, "exception", exc.values(store)))
        return out & 0x7FFF_FFFF

    ty = hwsim.FuncType([hwsim.ValType.i32()], [hwsim.ValType.i32()])
    linker = hwsim.Linker(engine)
    linker.define(store, "env", "host", hwsim.Func(store, ty, host, access_caller=True))
    linker.define(store, "env", "tag", tag)
    exports = linker.instantiate(store, hwsim.Module(engine, EXN_WAT)).exports(store)
    store.set_fuel(1_000_000)
    try:
        result = exports[entry](store, 0)
    except hwsim.WasmException as exc:
        result = ("exception", exc.values(store))
    return seen, result, store.get_fuel() - sum(refunds)


def _hw_config():
    config = hwsim.Config()
    config.consume_fuel = True
    return config


_EXN_ACTION = st.one_of(
    st.tuples(st.just("delta"), st.integers(-1000, 1000)),
    st.tuples(st.just("reset")),
    st.tuples(st.just("work"), st.integers(0, 30)),
    st.tuples(st.sampled_from(["f", "g"])),
)


@pytest.mark.parametrize(
    "scripts",
    [
        [[("throw", 3)]],
        [[("reset",), ("throw", 3)]],  # the count set back to what it was, then a throw
        [[("delta", 25), ("throw", 3)]],
        [[("work", 9), ("reset",), ("throw", 3)]],  # guest code ran, the count put back, a throw
        [[("g",), ("throw", 1)], [("delta", -40), ("throw", 2)]],  # through g, caught by the host
        [[("f",), ("reset",)], [("work", 3), ("reset",), ("throw", 2)]],  # caught by the inner f
        [[("g",), ("reset",)], [("delta", 0)], []],
        [[("g",), ("delta", 7)], [("work", 4), ("reset",), ("throw", 5)]],
    ],
)
@pytest.mark.parametrize("entry", ["f", "g"])
def test_fuel_across_exceptions_thrown_from_host_functions_is_conserved(scripts, entry):
    """Whatever a host function sets the count to before it throws (or before a nested call throws through
    it), the code after the catch goes on from that count: the fuel left less what the sets gave is the
    fuel left without them, wherever the exception was thrown and caught."""
    assert run_exn(scripts, entry, keep_sets=True) == run_exn(scripts, entry, keep_sets=False)


@settings(max_examples=examples(30), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    scripts=st.lists(
        st.tuples(st.lists(_EXN_ACTION, max_size=4), st.one_of(st.none(), st.integers(0, 9))).map(
            lambda pair: pair[0] + ([("throw", pair[1])] if pair[1] is not None else [])
        ),
        min_size=1,
        max_size=3,
    ),
    entry=st.sampled_from(["f", "g"]),
)
def test_random_host_throws_conserve_fuel(scripts, entry):
    assert run_exn(scripts, entry, keep_sets=True) == run_exn(scripts, entry, keep_sets=False)
