"""The threads proposal's front end: shared memory types and the 0xfe atomic instructions (hwsim/wasm/atomics.py)."""

from __future__ import annotations

import pytest
from wasm_conftest_helpers import memory_section, module, one_func

from hwsim import wat2wasm
from hwsim.wasm import Features, InvalidError, MalformedError, UnsupportedFeatureError, decode_module, load_module
from hwsim.wasm import opcodes as op
from hwsim.wasm.atomics import ATOMICS, AtomicKind, RmwOp
from hwsim.wasm.types import I32, I64


def test_the_table_covers_the_proposal():
    assert len(ATOMICS) == 67
    assert op.opcode_name(0xFE10) == "i32.atomic.load"
    assert op.opcode_name(0xFE4E) == "i64.atomic.rmw32.cmpxchg_u"
    assert op.opcode_name(0xFE1D) == "i64.atomic.store32"
    assert ATOMICS[0xFE21].name == "i32.atomic.rmw16.add_u" and ATOMICS[0xFE21].rmw is RmwOp.ADD
    assert ATOMICS[0xFE47].name == "i64.atomic.rmw32.xchg_u" and ATOMICS[0xFE47].size == 4
    assert ATOMICS[0xFE02].kind is AtomicKind.WAIT and ATOMICS[0xFE02].valtype == I64
    names = {a.name for a in ATOMICS.values()}
    assert len(names) == 67


@pytest.mark.parametrize(
    "flags, index_type, maximum",
    [(b"\x03\x01\x02", I32, 2), (b"\x02\x01", I32, None), (b"\x07\x01\x02", I64, 2), (b"\x06\x00", I64, None)],
)
def test_shared_limits_flags(flags, index_type, maximum):
    mt = decode_module(module(memory_section(flags))).memories[0]
    assert mt.shared and mt.index_type == index_type and mt.limits.max == maximum


def test_shared_memory_needs_a_maximum():
    with pytest.raises(InvalidError, match=r"^shared memory must have maximum \(threads proposal\)"):
        load_module(module(memory_section(b"\x02\x01")))
    assert str(load_module(module(memory_section(b"\x03\x01\x02"))).memories[0]) == "memory i32 1 2 shared"


def test_a_table_is_never_shared():
    with pytest.raises(MalformedError, match="malformed limits flags 0x03"):
        decode_module(module(b"\x04\x05\x01\x70\x03\x00\x01"))


def test_threads_off_rejects_shared_memories_and_atomics():
    off = Features(threads=False)
    with pytest.raises(UnsupportedFeatureError) as info:
        decode_module(module(memory_section(b"\x03\x01\x02")), features=off)
    assert str(info.value) == (
        "unsupported feature: threads/atomics (shared memory, limits flags 0x03) (at offset 0xb)"
    )
    data = one_func(b"\x41\x00\xfe\x10\x02\x00\x1a\x0b", extra=(memory_section(b"\x00\x01"),))
    with pytest.raises(UnsupportedFeatureError) as info:
        decode_module(data, features=off)
    assert str(info.value) == "unsupported feature: threads/atomics (opcode 0xfe 0x10) (at offset 0x1e in function 0)"
    assert decode_module(data).funcs[0].body[1][0] == 0xFE10  # on by default


def test_every_atomic_decodes_and_validates():
    lines = []
    for a in ATOMICS.values():
        t = "i32" if a.valtype == I32 else "i64"
        if a.kind is AtomicKind.FENCE:
            lines.append("(func atomic.fence)")
        elif a.kind is AtomicKind.NOTIFY:
            lines.append(f"(func (drop ({a.name} (i32.const 0) (i32.const 1))))")
        elif a.kind is AtomicKind.WAIT:
            lines.append(f"(func (drop ({a.name} (i32.const 0) ({t}.const 0) (i64.const 0))))")
        elif a.kind is AtomicKind.LOAD:
            lines.append(f"(func (drop ({a.name} (i32.const 0))))")
        elif a.kind is AtomicKind.STORE:
            lines.append(f"(func ({a.name} (i32.const 0) ({t}.const 0)))")
        elif a.kind is AtomicKind.RMW:
            lines.append(f"(func (drop ({a.name} (i32.const 0) ({t}.const 0))))")
        else:
            lines.append(f"(func (drop ({a.name} (i32.const 0) ({t}.const 0) ({t}.const 0))))")
    m = load_module(wat2wasm("(module (memory 1 1 shared)\n" + "\n".join(lines) + ")"))
    seen = {instr[0] for f in m.funcs for instr in f.body}
    assert set(ATOMICS) <= seen


def _body(code: bytes) -> bytes:
    return one_func(code, extra=(memory_section(b"\x03\x01\x01"),))


def test_atomic_alignment_must_be_exactly_natural():
    with pytest.raises(InvalidError) as info:
        load_module(_body(b"\x41\x00\xfe\x10\x01\x00\x1a\x0b"))  # i32.atomic.load align=2**1
    assert info.value.reason == "atomic alignment must be natural: 2**1 is not 4 bytes (i32.atomic.load, memory 0)"
    assert info.value.instr == "i32.atomic.load"
    with pytest.raises(InvalidError, match="^alignment must not be larger than natural: 2\\*\\*3 > 4 bytes"):
        load_module(_body(b"\x41\x00\xfe\x10\x03\x00\x1a\x0b"))


def test_atomics_type_check_and_need_a_memory():
    with pytest.raises(InvalidError, match="^type mismatch"):
        load_module(_body(b"\x41\x00\x41\x00\xfe\x18\x03\x00\x0b"))  # i64.atomic.store of an i32
    with pytest.raises(InvalidError, match="^unknown memory 0"):
        load_module(one_func(b"\x41\x00\x41\x00\xfe\x00\x02\x00\x1a\x0b"))
    load_module(one_func(b"\xfe\x03\x00\x0b"))  # atomic.fence needs no memory


def test_malformed_atomics():
    with pytest.raises(MalformedError, match="illegal opcode fe 4f"):
        decode_module(_body(b"\xfe\x4f\x02\x00\x0b"))
    with pytest.raises(MalformedError, match="malformed atomic.fence: zero byte expected, got 0x01"):
        decode_module(_body(b"\xfe\x03\x01\x0b"))


# The embedding: the feature switch and linking -------------------------------------------------------

SHARED_EXPORTER = '(module (memory (export "m") 1 2 shared))'
UNSHARED_EXPORTER = '(module (memory (export "m") 1 2))'


def test_config_wasm_threads_switches():
    from hwsim import Config, Engine, Module, WasmtimeError

    config = Config()
    assert config.wasm_threads is True and config.shared_memory is True
    config.wasm_threads = False
    engine = Engine(config)
    with pytest.raises(WasmtimeError, match=r"unsupported feature: threads/atomics \(shared memory"):
        Module(engine, SHARED_EXPORTER)


@pytest.mark.parametrize(
    "exporter, importer, message",
    [
        (
            UNSHARED_EXPORTER,
            '(module (import "a" "m" (memory 1 2 shared)))',
            "expects a shared memory (memory i32 1 2 shared), got an unshared one (memory i32 1 2)",
        ),
        (
            SHARED_EXPORTER,
            '(module (import "a" "m" (memory 1 2)))',
            "expects an unshared memory (memory i32 1 2), got a shared one (memory i32 1 2 shared)",
        ),
    ],
)
def test_sharedness_must_match_on_import(exporter, importer, message):
    from hwsim import Engine, Instance, Module, Store, WasmtimeError

    engine = Engine()
    store = Store(engine)
    mem = Instance(store, Module(engine, exporter), []).exports(store)["m"]
    with pytest.raises(WasmtimeError) as info:
        Instance(store, Module(engine, importer), [mem])
    assert "incompatible import type" in str(info.value) and message in str(info.value)


# Older snapshots: the threads proposal's scripts predate multi-memory, multiple tables and memory64 ------


def test_features_for_pre_multi_memory_scripts():
    from wasm_conftest_helpers import section, vec

    old = Features(multi_memory=False, multi_table=False, memory64=False)
    two_memories = module(memory_section(b"\x00\x00", b"\x00\x00"))
    load_module(two_memories)
    with pytest.raises(InvalidError, match=r"^multiple memories: 2 \(the multi-memory proposal is off\)"):
        load_module(two_memories, features=old)
    two_tables = module(section(4, vec([b"\x70\x00\x00", b"\x70\x00\x00"])))
    load_module(two_tables)
    with pytest.raises(InvalidError, match=r"^multiple tables: 2"):
        load_module(two_tables, features=old)
    with pytest.raises(MalformedError, match="malformed limits flags 0x04"):
        decode_module(module(memory_section(b"\x04\x00")), features=old)
    with pytest.raises(MalformedError, match="integer too large"):
        decode_module(module(memory_section(b"\x00\x80\x80\x80\x80\x10")), features=old)  # 2**32 pages


def test_the_spectest_runner_turns_them_off_for_the_threads_scripts(tmp_path):
    from hwsim.spectest.runner import SpecTestRunner, default_features

    threads = tmp_path / "proposals" / "threads" / "memory.wast"
    assert default_features(threads) == Features(
        custom_page_sizes=False, multi_memory=False, multi_table=False, memory64=False
    )
    assert default_features(tmp_path / "memory.wast") == Features(custom_page_sizes=False)
    runner = SpecTestRunner(features={"memory_discard": True})
    assert runner.features_for(threads).memory_discard and not runner.features_for(threads).multi_memory
