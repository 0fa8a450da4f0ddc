"""hwsim.runtime.api: every object belongs to one Store, and crossing Stores is refused.

An attacker-style review found that a Memory of another Store passed as an
import landed on this Store's first memory (reading and overwriting another
instance's secret), and that funcrefs and externs of another Store were taken
by tables, globals and calls.  Each attack here uses an object of Store A
with Store B (or the other way round) and expects
:class:`hwsim.StoreMismatchError` naming the object and both Stores, before
anything changes: both Stores' secrets stay as they were and both stay usable.
"""

from __future__ import annotations

import inspect
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

import hwsim
from hwsim import (
    Caller,
    Engine,
    Func,
    FuncType,
    Global,
    GlobalType,
    Instance,
    Limits,
    Linker,
    Memory,
    MemoryType,
    Module,
    Store,
    StoreMismatchError,
    Table,
    TableType,
    Val,
    ValType,
)

I32, FUNCREF, EXTERNREF = ValType.i32(), ValType.funcref(), ValType.externref()
PAGE = 4096

WAT = """(module
  (import "env" "mem" (memory 1))
  (import "env" "tab" (table 2 funcref))
  (import "env" "glob" (global (mut funcref)))
  (import "env" "host" (func $host (param i32) (result i32)))
  (import "hwsim:memory" "handle_new" (func $new (param i32) (result externref)))
  (import "hwsim:memory" "handle_map" (func $hmap (param externref i32 i32)))
  (export "mem" (memory 0))
  (func (export "id") (param i32) (result i32) (local.get 0))
  (func (export "peek") (param i32) (result i32) (i32.load (local.get 0)))
  (func (export "is_null") (param funcref) (result i32) (ref.is_null (local.get 0)))
  (func (export "call_host") (param i32) (result i32) (call $host (local.get 0)))
  (func (export "new") (param i32) (result externref) (call $new (local.get 0)))
  (func (export "hmap") (param externref i32) (call $hmap (local.get 0) (local.get 1) (i32.const 1)))
  (table (export "t") 2 funcref)
  (global (export "g") (mut funcref) (ref.null func)))"""

SECRET = {"A": 0x5EC2_E7A1, "B": 0x0B0B_0B0B}


@pytest.fixture(scope="module")
def engine():
    return Engine()


@pytest.fixture(scope="module")
def module(engine):
    return Module(engine, WAT)


class Side:
    """One Store with an instance whose imported memory holds a secret, and one extern of each kind."""

    def __init__(self, engine: Engine, module: Module, name: str) -> None:
        self.secret = SECRET[name]
        self.store = Store(engine)
        s = self.store
        self.mem = Memory(s, MemoryType(Limits(1)))
        self.mem.write(s, self.secret.to_bytes(4, "little"), 0)
        self.tab = Table(s, TableType(FUNCREF, Limits(2)), None)
        self.glob = Global(s, GlobalType(FUNCREF, True), None)
        self.host = Func(s, FuncType([I32], [I32]), lambda x: x + 1)
        self.imports = [self.mem, self.tab, self.glob, self.host]
        self.instance = Instance(s, module, self.imports + [None, None])  # None: hwsim's intrinsics
        self.ex = self.instance.exports(s)
        self.func = self.ex["id"]
        self.buffer = s.host_buffer(size=PAGE)

    def intact(self) -> bool:
        """The secret is where it was, and the Store still runs wasm."""
        return self.ex["peek"](self.store, 0) == self.secret and self.ex["call_host"](self.store, 1) == 2


@pytest.fixture
def ab(engine, module):
    a, b = Side(engine, module, "A"), Side(engine, module, "B")
    yield a, b
    assert a.intact() and b.intact()


def mismatch(what: str, owner: Side, used: Side) -> str:
    """The exact message of a StoreMismatchError, as a regex."""
    return (
        re.escape(f"object used with the wrong store: {what} belongs to {owner.store.name}, not to {used.store.name}")
        + "$"
    )


def test_stores_have_distinct_names(ab):
    a, b = ab
    assert a.store.name != b.store.name and re.fullmatch(r"Store \d+", a.store.name)
    assert repr(a.store) == f"<hwsim.Store {a.store.name[6:]}>"
    assert issubclass(StoreMismatchError, hwsim.HwsimError) and issubclass(StoreMismatchError, ValueError)


# -- imports: Instance, Linker.define*, Linker.instantiate ---------------------------------------------

IMPORTS = [("mem", 0, "memory"), ("tab", 1, "table"), ("glob", 2, "global"), ("host", 3, "function")]


@pytest.mark.parametrize("name,index,kind", IMPORTS)
def test_instance_refuses_an_import_of_another_store(ab, module, name, index, kind):
    a, b = ab
    imports = list(b.imports) + [None, None]
    imports[index] = a.imports[index]
    with pytest.raises(StoreMismatchError, match=mismatch(f"import 'env' '{name}' (a {kind})", a, b)):
        Instance(b.store, module, imports)


@pytest.mark.parametrize("name,index,kind", IMPORTS)
def test_linker_define_refuses_an_object_of_another_store(ab, engine, name, index, kind):
    a, b = ab
    linker = Linker(engine)
    item = a.imports[index]
    with pytest.raises(StoreMismatchError, match=mismatch(f"`env::{name}` (a {type(item).__name__})", a, b)):
        linker.define(b.store, "env", name, item)


@pytest.mark.parametrize("name,index,kind", IMPORTS)
def test_linker_instantiate_refuses_definitions_of_another_store(ab, engine, module, name, index, kind):
    a, b = ab
    linker = Linker(engine)
    for (n, i, _), item_a, item_b in zip(IMPORTS, a.imports, b.imports):
        if i == index:
            linker.define(a.store, "env", n, item_a)  # defined for A, instantiated in B
        else:
            linker.define(b.store, "env", n, item_b)
    with pytest.raises(StoreMismatchError, match=mismatch(f"import 'env' '{name}' (a {kind})", a, b)):
        linker.instantiate(b.store, module)


def test_linker_define_instance_refuses_an_instance_of_another_store(ab, engine):
    a, b = ab
    with pytest.raises(StoreMismatchError, match=mismatch("the Instance", a, b)):
        Linker(engine).define_instance(b.store, "a", a.instance)


def test_the_memory_import_no_longer_reaches_the_other_secret(ab, module):
    """The original finding: B's instance importing A's memory read and wrote A's secret."""
    a, b = ab
    with pytest.raises(StoreMismatchError):
        Instance(b.store, module, [a.mem, b.tab, b.glob, b.host, None, None])
    assert a.mem.read(a.store, 0, 4) == SECRET["A"].to_bytes(4, "little")


# -- references as values: tables, globals, arguments, host results --------------------------------------

VALUE_ATTACKS = {
    "Table.set": (lambda a, b: a.ex["t"].set(a.store, 0, b.func), "the table element (a Func)"),
    "Table.set Val": (lambda a, b: a.ex["t"].set(a.store, 0, Val.funcref(b.func)), "the table element (a Func)"),
    "Table.grow": (lambda a, b: a.ex["t"].grow(a.store, 1, b.func), "the new elements' value (a Func)"),
    "Table()": (
        lambda a, b: Table(a.store, TableType(FUNCREF, Limits(1)), b.func),
        "the table's initial value (a Func)",
    ),
    "Global()": (lambda a, b: Global(a.store, GlobalType(FUNCREF, True), b.func), "the global's value (a Func)"),
    "Global.set_value": (lambda a, b: a.ex["g"].set_value(a.store, b.func), "the global's value (a Func)"),
    "imported Global.set_value": (
        lambda a, b: a.glob.set_value(a.store, Val.funcref(b.func)),
        "the global's value (a Func)",
    ),
    "funcref argument": (lambda a, b: a.ex["is_null"](a.store, b.func), "argument 0 (a Func)"),
    "funcref Val argument": (
        lambda a, b: a.ex["is_null"].call_vals(a.store, Val.funcref(b.func)),
        "argument 0 (a Func)",
    ),
    "host result": (
        lambda a, b: Func(a.store, FuncType([], [FUNCREF]), lambda: b.func)(a.store),
        "result 0 of the host function (a Func)",
    ),
    "handle argument": (
        lambda a, b: a.ex["hmap"](a.store, b.ex["new"](b.store, 1), 0x1000),
        "argument 0 (a memory handle)",
    ),
}


@pytest.mark.parametrize("attack", VALUE_ATTACKS)
def test_references_of_another_store_are_refused(ab, attack):
    a, b = ab
    fn, what = VALUE_ATTACKS[attack]
    with pytest.raises(StoreMismatchError, match=mismatch(what, b, a)):
        fn(a, b)
    assert a.ex["t"].get(a.store, 0) is None and a.ex["g"].value(a.store) is None


def test_a_host_result_of_another_store_is_refused_inside_a_wasm_call(ab, engine):
    a, b = ab
    leak = Func(a.store, FuncType([], [FUNCREF]), lambda: b.func)
    mod = Module(
        engine,
        '(module (import "" "leak" (func $leak (result funcref))) '
        '(func (export "go") (result i32) (ref.is_null (call $leak))))',
    )
    go = Instance(a.store, mod, [leak]).exports(a.store)["go"]
    with pytest.raises(StoreMismatchError, match=mismatch("result 0 of the host function (a Func)", b, a)):
        go(a.store)


def test_a_foreign_table_entry_no_longer_lands_as_a_bogus_record(ab):
    """Before: the other Store's record address was stored as is, naming whatever lives there here."""
    a, b = ab
    with pytest.raises(StoreMismatchError):
        a.ex["t"].set(a.store, 1, b.func)
    a.ex["t"].set(a.store, 1, a.func)
    assert a.ex["t"].get(a.store, 1)(a.store, 7) == 7


# -- Store-taking methods called with the other Store ---------------------------------------------------

METHODS = {
    "Func.__call__": (lambda s, b: s.func(b.store, 1), "the Func"),
    "Func.call_vals": (lambda s, b: s.func.call_vals(b.store, 1), "the Func"),
    "Func.type": (lambda s, b: s.func.type(b.store), "the Func"),
    "host Func.__call__": (lambda s, b: s.host(b.store, 1), "the Func"),
    "Memory.data_len": (lambda s, b: s.mem.data_len(b.store), "the Memory"),
    "Memory.size": (lambda s, b: s.mem.size(b.store), "the Memory"),
    "Memory.grow": (lambda s, b: s.mem.grow(b.store, 1), "the Memory"),
    "Memory.read": (lambda s, b: s.mem.read(b.store, 0, 4), "the Memory"),
    "Memory.write": (lambda s, b: s.mem.write(b.store, b"pwnd", 0), "the Memory"),
    "Memory.discard": (lambda s, b: s.mem.discard(b.store, 0, PAGE), "the Memory"),
    "Memory.map": (lambda s, b: s.mem.map(b.store, 0, PAGE, 2), "the Memory"),
    "Memory.unmap": (lambda s, b: s.mem.unmap(b.store, 0, PAGE), "the Memory"),
    "Memory.protect": (lambda s, b: s.mem.protect(b.store, 0, PAGE, 0), "the Memory"),
    "Memory.set_static": (lambda s, b: s.mem.set_static(b.store, no_access=PAGE), "the Memory"),
    "Memory.map_host": (lambda s, b: s.mem.map_host(b.store, 0, b.buffer), "the Memory"),
    "Memory.unmap_host": (lambda s, b: s.mem.unmap_host(b.store, 0, PAGE), "the Memory"),
    "Memory.committed_bytes": (lambda s, b: s.mem.committed_bytes(b.store), "the Memory"),
    "Global.value": (lambda s, b: s.glob.value(b.store), "the Global"),
    "Global.set_value": (lambda s, b: s.glob.set_value(b.store, None), "the Global"),
    "Table.size": (lambda s, b: s.tab.size(b.store), "the Table"),
    "Table.get": (lambda s, b: s.tab.get(b.store, 0), "the Table"),
    "Table.set": (lambda s, b: s.tab.set(b.store, 0, None), "the Table"),
    "Table.grow": (lambda s, b: s.tab.grow(b.store, 1, None), "the Table"),
    "Instance.exports": (lambda s, b: s.instance.exports(b.store), "the Instance"),
    "Instance.grant_segment": (lambda s, b: s.instance.grant_segment(b.store, s.mem, 0, 4), "the Instance"),
    "Instance.revoke_segment": (lambda s, b: s.instance.revoke_segment(b.store, 1), "the Instance"),
}


@pytest.mark.parametrize("method", METHODS)
def test_a_method_called_with_another_store_is_refused(ab, method):
    a, b = ab
    fn, what = METHODS[method]
    with pytest.raises(StoreMismatchError, match=mismatch(what, a, b)):
        fn(a, b)
    assert a.mem.size(a.store) == 1 and a.tab.size(a.store) == 2


CROSS = {  # an argument object of the other Store, with the right Store for the receiver
    "Memory.map_host": (lambda a, b: a.mem.map_host(a.store, 0, b.buffer), "the host buffer"),
    "Instance.grant_segment": (lambda a, b: a.instance.grant_segment(a.store, b.mem, 0, 4), "the Memory"),
}


@pytest.mark.parametrize("attack", CROSS)
def test_an_argument_object_of_another_store_is_refused(ab, attack):
    a, b = ab
    fn, what = CROSS[attack]
    with pytest.raises(StoreMismatchError, match=mismatch(what, b, a)):
        fn(a, b)


ARGUMENTS = st.one_of(st.integers(), st.text(max_size=4), st.none(), st.floats(), st.binary(max_size=8))


@settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(method=st.sampled_from(sorted(METHODS)), data=st.data())
def test_the_store_is_checked_before_any_argument(ab, method, data):
    """Whatever the other arguments are, the wrong Store is what is reported (and nothing changes)."""
    a, b = ab
    receiver = {
        "Func": a.func,
        "host": a.host,
        "Memory": a.mem,
        "Global": a.glob,
        "Table": a.tab,
        "Instance": a.instance,
    }[method.split(".")[0].split()[0]]
    bound = getattr(receiver, method.split(".")[1])
    positional = [p for p in inspect.signature(bound).parameters.values()][1:]  # after the store
    required = sum(p.default is p.empty and p.kind is p.POSITIONAL_OR_KEYWORD for p in positional)
    most = (
        3
        if any(p.kind is p.VAR_POSITIONAL for p in positional)
        else sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in positional)
    )
    args = data.draw(st.lists(ARGUMENTS, min_size=required, max_size=most))
    with pytest.raises(StoreMismatchError, match=mismatch(METHODS[method][1], a, b)):
        bound(b.store, *args)


# -- Caller ---------------------------------------------------------------------------------------------


def test_a_caller_is_a_store_during_its_call_and_only_then(ab, engine):
    a, b = ab
    kept = []

    def host(caller: Caller, x: int) -> int:
        kept.append(caller)
        mem = caller.get("mem")
        assert mem.read(caller, 0, 4) == a.secret.to_bytes(4, "little")  # a Caller stands for its Store
        if x:
            b.mem.read(caller, 0, 4)  # ...and is checked like one
        return 0

    mod = Module(
        engine,
        '(module (import "" "h" (func $h (param i32) (result i32))) (memory (export "mem") 1) '
        '(func (export "go") (param i32) (result i32) (call $h (local.get 0))))',
    )
    inst = Instance(a.store, mod, [Func(a.store, FuncType([I32], [I32]), host, access_caller=True)])
    go = inst.exports(a.store)["go"]
    inst.exports(a.store)["mem"].write(a.store, a.secret.to_bytes(4, "little"), 0)
    assert go(a.store, 0) == 0
    with pytest.raises(StoreMismatchError, match=mismatch("the Memory", b, a)):
        go(a.store, 1)
    stale = kept[0]
    assert stale.get("mem") is None  # as wasmtime-py: a Caller is valid only during its host call
    with pytest.raises(StoreMismatchError, match=re.escape("the Caller is no longer valid: its host call returned")):
        a.mem.read(stale, 0, 4)
