"""hwsim.wasm.decoder: the binary format, malformed modules, out-of-scope features, custom sections."""

from __future__ import annotations

import struct

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from wasm_conftest_helpers import (
    EXTERNREF,
    F32,
    FUNCREF,
    HEADER,
    I32,
    I64,
    body,
    code_section,
    custom_section,
    export_section,
    func_section,
    functype,
    memory_section,
    module,
    name,
    one_func,
    section,
    sleb,
    type_section,
    uleb,
    vec,
)

from hwsim.errors import HwsimError
from hwsim.wasm import (
    ExternKind,
    Features,
    InvalidError,
    MalformedError,
    UnsupportedFeatureError,
    WasmError,
    decode_module,
    load_module,
    validate,
)
from hwsim.wasm import opcodes as op
from hwsim.wasm.reader import read_sleb, read_uleb
from hwsim.wasm.types import I32 as T_I32
from hwsim.wasm.types import I64 as T_I64
from hwsim.wasm.types import MemoryType, TableType


def malformed(data: bytes, **kw) -> MalformedError:
    with pytest.raises(MalformedError) as info:
        decode_module(data, **kw)
    return info.value


def unsupported(data: bytes, **kw) -> UnsupportedFeatureError:
    with pytest.raises(UnsupportedFeatureError) as info:
        decode_module(data, **kw)
    return info.value


# The error tree ------------------------------------------------------------------


def test_error_classes_derive_from_hwsim_error():
    for cls in (MalformedError, InvalidError, UnsupportedFeatureError):
        assert issubclass(cls, WasmError)
    assert issubclass(WasmError, HwsimError)
    assert not issubclass(MalformedError, InvalidError) and not issubclass(InvalidError, MalformedError)
    assert not issubclass(UnsupportedFeatureError, (MalformedError, InvalidError))


def test_error_message_names_offset_function_and_instruction():
    err = WasmError("type mismatch: x", offset=0x2F, func_index=3, func_name="add", instr="i32.add")
    assert str(err) == 'type mismatch: x (at offset 0x2f in function 3 "add", instruction i32.add)'
    assert err.reason == "type mismatch: x"
    assert str(WasmError("bad")) == "bad"


# Header and sections ------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "unexpected end of section or function (reading the magic header) (at offset 0x0)"),
        (b"\0as", "unexpected end of section or function (reading the magic header) (at offset 0x3)"),
        (b"\0asn\1\0\0\0", "magic header not detected: b'\\x00asn' is not b'\\x00asm' (at offset 0x0)"),
        (b"\0asm\1\0\0", "unexpected end of section or function (reading the version) (at offset 0x7)"),
        (b"\0asm\2\0\0\0", "unknown binary version 0x2 (hwsim reads version 1) (at offset 0x4)"),
        (b"\0asm\x0d\0\x01\0", "unknown binary version 0x1000d (hwsim reads version 1) (at offset 0x4)"),
    ],
)
def test_header_errors(data, message):
    assert str(malformed(data)) == message


def test_empty_module_decodes():
    m = decode_module(HEADER)
    assert m.types == [] and m.funcs == [] and m.start is None and m.size == 8


def test_section_id_out_of_range():
    assert str(malformed(HEADER + b"\x0e\x00")) == "malformed section id 14 (at offset 0x8)"


def test_sections_out_of_order_or_repeated():
    err = malformed(module(type_section(functype()), type_section(functype())))
    assert str(err) == ("unexpected content after last section: type section out of order or repeated (at offset 0xe)")
    err = malformed(module(func_section(), type_section()))
    assert err.reason.startswith("unexpected content after last section: type section")


def test_section_size_mismatch_both_ways():
    assert str(malformed(HEADER + b"\x01\x05\x01\x60\x00\x00")) == (
        "section size mismatch: type section declares 5 bytes but its contents use 4 (at offset 0xa)"
    )
    # Declared too short: the contents are read past it (as the reference interpreter does), then compared.
    assert str(malformed(HEADER + b"\x01\x03\x01\x60\x00\x00")) == (
        "section size mismatch: type section declares 3 bytes but its contents use 4 (at offset 0xa)"
    )


def test_section_length_beyond_module():
    assert str(malformed(HEADER + b"\x01\x7f\x00")) == (
        "length out of bounds: 127 but only 2 bytes remain (at offset 0x9)"
    )


def test_function_and_code_counts_must_agree():
    err = malformed(module(type_section(functype()), func_section(0)))
    assert str(err) == (
        "function and code section have inconsistent lengths: 1 functions declared, 0 bodies (at offset 0x12)"
    )


def test_data_count_must_match_and_is_required_for_memory_init():
    err = malformed(module(section(12, b"\x01")))
    assert err.reason == "data count and data section have inconsistent lengths: data count 1, 0 segments"
    err = malformed(one_func(b"\xfc\x09\x00\x0b"))
    assert err.reason == "data count section required (memory.init or data.drop is used)"


def test_too_many_locals():
    err = malformed(one_func(b"\x0b", locals_=[(0xFFFF_FFFF, I32), (1, I64)]))
    assert err.reason == "too many locals: 4294967296 declared (at most 2**32 - 1)"
    assert err.func_index == 0


# LEB128 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "encoded, bits, value",
    [
        (b"\x00", 32, 0),
        (b"\x7f", 32, 127),
        (b"\x80\x01", 32, 128),
        (b"\xff\xff\xff\xff\x0f", 32, 0xFFFF_FFFF),
        (b"\x80\x80\x80\x80\x00", 32, 0),  # padded, allowed
        (b"\xff" * 9 + b"\x01", 64, 0xFFFF_FFFF_FFFF_FFFF),
    ],
)
def test_uleb(encoded, bits, value):
    assert read_uleb(encoded, 0, bits) == (value, len(encoded))


@pytest.mark.parametrize(
    "encoded, bits, value",
    [
        (b"\x7f", 32, -1),
        (b"\x40", 32, -64),
        (b"\x3f", 32, 63),
        (b"\x80\x7f", 32, -128),
        (b"\xff\xff\xff\xff\x07", 32, 0x7FFF_FFFF),
        (b"\x80\x80\x80\x80\x78", 32, -0x8000_0000),
        (b"\x80\x80\x80\x80\x80\x80\x80\x80\x80\x7f", 64, -(1 << 63)),
    ],
)
def test_sleb(encoded, bits, value):
    assert read_sleb(encoded, 0, bits) == (value, len(encoded))


@pytest.mark.parametrize(
    "code, reason, offset",
    [
        (b"\x41\x80\x80\x80\x80\x10", "integer too large", 0x1C),  # 2**32 as s32: unused bits set
        (b"\x41\xff\xff\xff\xff\x0f", "integer too large", 0x1C),  # sign bits disagree
        (b"\x41\x80\x80\x80\x80\x80\x00", "integer representation too long", 0x1D),  # six bytes
        (b"\x42" + b"\x80" * 10 + b"\x00", "integer representation too long", 0x22),  # eleventh byte
    ],
)
def test_leb_errors_in_instructions(code, reason, offset):
    err = malformed(one_func(code + b"\x1a\x0b"))
    assert (err.reason, err.offset, err.func_index) == (reason, offset, 0)
    assert err.instr == op.NAMES[code[0]]


# Instructions -----------------------------------------------------------------------------


def test_constants_are_bit_patterns():
    nan_payload = 0x7FA0_0001  # a signalling f32 NaN
    code = (
        b"\x41"
        + sleb(-1)
        + b"\x1a"
        + b"\x42"
        + sleb(-2)
        + b"\x1a"
        + b"\x43"
        + struct.pack("<I", nan_payload)
        + b"\x1a"
        + b"\x44"
        + struct.pack("<Q", 0x8000_0000_0000_0000)
        + b"\x1a\x0b"
    )
    m = load_module(one_func(code))
    instrs = [(opc, imm) for opc, imm, _ in m.funcs[0].body]
    assert instrs == [
        (0x41, 0xFFFF_FFFF),
        (0x1A, None),
        (0x42, 0xFFFF_FFFF_FFFF_FFFE),
        (0x1A, None),
        (0x43, nan_payload),
        (0x1A, None),
        (0x44, 0x8000_0000_0000_0000),
        (0x1A, None),
        (0x0B, None),
    ]


def test_immediates_of_each_kind():
    code = (
        b"\x02\x40"  # block
        + b"\x41\x00"
        + b"\x0e\x02\x00\x00\x00"  # br_table 0 0 (default 0)
        + b"\x0b"
        + b"\x41\x00"
        + b"\x28\x42\x01\x08"
        + b"\x1a"  # i32.load memidx 1 align 2 offset 8
        + b"\x41\x00\x41\x00\x41\x00"
        + b"\xfc\x0a\x01\x00"  # memory.copy 1 0
        + b"\x41\x00"
        + b"\x11\x00\x00"
        + b"\x0b"
    )  # call_indirect type 0 table 0
    m = decode_module(
        one_func(code, extra=(section(4, vec([b"\x70\x00\x01"])), memory_section(b"\x00\x01", b"\x00\x01")))
    )
    imms = [(op.opcode_name(o), imm) for o, imm, _ in m.funcs[0].body]
    assert imms == [
        ("block", -0x40),
        ("i32.const", 0),
        ("br_table", ((0, 0), 0)),
        ("end", None),
        ("i32.const", 0),
        ("i32.load", (1, 2, 8)),
        ("drop", None),
        ("i32.const", 0),
        ("i32.const", 0),
        ("i32.const", 0),
        ("memory.copy", (1, 0)),
        ("i32.const", 0),
        ("call_indirect", (0, 0)),
        ("end", None),
    ]


def test_instruction_offsets_are_module_offsets():
    data = one_func(b"\x01\x01\x0b")
    m = decode_module(data)
    offsets = [off for _, _, off in m.funcs[0].body]
    assert [data[o] for o in offsets] == [0x01, 0x01, 0x0B]


def test_else_without_if_and_missing_end():
    err = malformed(one_func(b"\x02\x40\x05\x0b\x0b"))
    assert str(err) == (
        "END opcode expected (else without a matching if) (at offset 0x19 in function 0, instruction else)"
    )
    err = malformed(module(type_section(functype()), func_section(0), section(10, b"\x01\x03\x00\x41\x01")))
    assert err.reason == "unexpected end of section or function"


def test_illegal_opcodes():
    assert str(malformed(one_func(b"\x27\x0b"))) == "illegal opcode 27 (at offset 0x17 in function 0)"
    assert malformed(one_func(b"\xfc\x20\x0b")).reason == "illegal opcode fc 20"
    assert malformed(one_func(b"\x28\x80\x01\x00\x0b")).reason == "malformed memop flags 0x80"


def test_malformed_types():
    assert malformed(module(type_section(b"\x60\x01\x40\x00"))).reason == "malformed value type 0x40"
    assert malformed(module(type_section(b"\x61\x00\x00"))).reason.startswith("malformed definition type 0x61")
    err = malformed(module(section(6, vec([b"\x7f\x02\x41\x00\x0b"]))))
    assert err.reason == "malformed mutability 0x02"
    assert malformed(module(section(2, vec([name("m") + name("f") + b"\x05\x00"])))).reason == (
        "malformed import kind 0x05"
    )


def test_names_must_be_utf8():
    err = malformed(module(section(7, vec([b"\x01\xff\x00\x00"]))))
    assert err.reason.startswith("malformed UTF-8 encoding")


# Types, imports, exports, segments --------------------------------------------------------------


def test_module_structure():
    data = module(
        type_section(functype((I32, I64), (F32,)), functype()),
        section(
            2,
            vec(
                [
                    name("env") + name("f") + b"\x00\x01",
                    name("env") + name("t") + b"\x01\x6f\x01\x01\x02",
                    name("env") + name("g") + b"\x03\x7e\x01",
                ]
            ),
        ),
        func_section(1),
        memory_section(b"\x05\x00\x10"),  # 64-bit memory, min 0 max 16
        section(6, vec([b"\x7f\x00\x41\x07\x0b"])),
        export_section(("run", 0, 1), ("mem", 2, 0)),
        section(8, b"\x01"),
        code_section(body(b"\x0b", [(2, I32)])),
        section(11, vec([b"\x01\x03abc"])),
    )
    m = load_module(data)
    assert str(m.types[0]) == "[i32 i64] -> [f32]"
    assert [(i.module, i.name, i.kind) for i in m.imports] == [
        ("env", "f", ExternKind.FUNC),
        ("env", "t", ExternKind.TABLE),
        ("env", "g", ExternKind.GLOBAL),
    ]
    assert m.imports[1].desc == TableType(elem_type=EXTERNREF, limits=m.imports[1].desc.limits)
    assert (m.imports[1].desc.limits.min, m.imports[1].desc.limits.max) == (1, 2)
    assert m.get_memory_types() == [MemoryType(limits=m.memories[0].limits, index_type=T_I64)]
    assert m.memories[0].limits.max == 16 and data[m.memory_offsets[0]] == 0x05
    assert m.get_func_type_indices() == [1, 1] and m.num_imported_funcs == 1
    assert m.funcs[0].locals == ((2, T_I32),) and m.funcs[0].num_locals == 2
    assert m.start == 1
    assert m.datas[0].mode == "passive" and m.datas[0].data == b"abc"
    assert [(e.name, e.kind, e.index) for e in m.exports] == [
        ("run", ExternKind.FUNC, 1),
        ("mem", ExternKind.MEMORY, 0),
    ]


def test_element_segment_encodings():
    segs = [
        b"\x00\x41\x00\x0b" + vec([b"\x00"]),  # active table 0, func indices
        b"\x01\x00" + vec([b"\x00"]),  # passive, elemkind funcref
        b"\x05\x70" + vec([b"\xd0\x70\x0b", b"\xd2\x00\x0b"]),  # passive, expressions
        b"\x07\x6f" + vec([b"\xd0\x6f\x0b"]),
    ]  # declarative externref
    m = decode_module(
        module(
            type_section(functype()),
            func_section(0),
            section(4, vec([b"\x70\x00\x01"])),
            section(9, vec(segs)),
            code_section(body(b"\x0b")),
        )
    )
    assert [(e.mode, e.elem_type, len(e.items)) for e in m.elems] == [
        ("active", FUNCREF, 1),
        ("passive", FUNCREF, 1),
        ("passive", FUNCREF, 2),
        ("declarative", EXTERNREF, 1),
    ]
    assert [(o, imm) for o, imm, _ in m.elems[0].items[0].instrs] == [(op.REF_FUNC, 0), (op.END, None)]
    assert malformed(module(section(9, vec([b"\x08"])))).reason == "malformed elements segment kind 8"
    assert malformed(module(section(9, vec([b"\x01\x01\x00"])))).reason == "malformed element kind 0x01"
    assert malformed(module(section(9, vec([b"\x05\x7f\x00"])))).reason == "malformed reference type 0x7f"


def test_limits_flags():
    assert str(malformed(module(memory_section(b"\x10\x00")))) == "malformed limits flags 0x10 (at offset 0xb)"
    assert malformed(module(section(4, vec([b"\x70\x08\x00"])))).reason == "malformed limits flags 0x08"
    table64 = decode_module(module(section(4, vec([b"\x70\x04\x00"])))).tables[0].type
    assert table64.index_type == T_I64


def test_custom_page_sizes_feature():
    m = decode_module(module(memory_section(b"\x08\x01\x00")))
    assert m.memories[0].page_size_log2 == 0
    assert str(malformed(module(memory_section(b"\x08\x01\x00")), features=Features(custom_page_sizes=False))) == (
        "malformed limits flags 0x08 (at offset 0xb)"
    )
    assert malformed(module(memory_section(b"\x08\x01\x40"))).reason == "invalid custom page size: 2**64 bytes"


# Custom sections: kept, name and dylink.0 decoded ------------------------------------------------------


def _name_section() -> bytes:
    functions = vec([uleb(0) + name("fac")])
    locals_ = vec([uleb(0) + vec([uleb(0) + name("n"), uleb(1) + name("acc")])])
    return (
        b"\x00"
        + uleb(len(name("demo")))
        + name("demo")
        + b"\x01"
        + uleb(len(functions))
        + functions
        + b"\x02"
        + uleb(len(locals_))
        + locals_
    )


def test_custom_sections_are_kept_with_placement():
    data = module(custom_section("first", b"\x01\x02"), type_section(functype()), custom_section("after-type", b""))
    m = decode_module(data)
    assert [(c.name, c.data, c.after) for c in m.customs] == [("first", b"\x01\x02", 0), ("after-type", b"", 1)]
    assert data[m.customs[0].offset : m.customs[0].offset + 2] == b"\x01\x02"
    assert m.get_custom_sections("first")[0].data == b"\x01\x02"


def test_name_section_gives_function_and_local_names():
    data = one_func(b"\x20\x00\x0b", params=(I32,), results=(I32,), locals_=[(1, I32)])
    m = decode_module(data + custom_section("name", _name_section()))
    assert m.names.module_name == "demo"
    assert m.names.function_names == {0: "fac"}
    assert m.names.get_local_name(0, 1) == "acc"
    assert m.get_func_name(0) == "fac" and m.get_func_name(1) is None


def test_validation_errors_use_the_function_name():
    data = one_func(b"\x20\x00\x0b", params=(I32,), results=(I64,)) + custom_section("name", _name_section())
    with pytest.raises(InvalidError) as info:
        validate(decode_module(data))
    assert str(info.value) == (
        "type mismatch: the end of the function expects [i64] but the stack has [i32] "
        '(at offset 0x1b in function 0 "fac", instruction end)'
    )


def test_malformed_name_section_does_not_make_the_module_malformed():
    m = decode_module(HEADER + custom_section("name", b"\x01\x05\x01"))
    assert m.names is None
    assert m.name_section_error.startswith("name section: ")


def test_dylink_section():
    mem_info = uleb(1024) + uleb(4) + uleb(3) + uleb(0)
    needed = vec([name("libc.so")])
    exports = vec([name("foo") + uleb(0)])
    imports = vec([name("env") + name("bar") + uleb(1)])
    payload = b"".join(
        bytes([kind]) + uleb(len(p)) + p
        for kind, p in ((1, mem_info), (2, needed), (3, exports), (4, imports), (9, b"??"))
    )
    m = decode_module(module(custom_section("dylink.0", payload)))
    d = m.dylink
    assert (d.memory_size, d.memory_align_log2, d.table_size, d.table_align_log2) == (1024, 4, 3, 0)
    assert d.needed == ["libc.so"] and d.export_info == {"foo": 0} and d.import_info == {("env", "bar"): 1}
    assert d.unknown_subsections == {9: b"??"}
    bad = decode_module(module(custom_section("dylink.0", b"\x02\x03\x00\x00\x00")))
    assert bad.dylink is None
    assert bad.dylink_error.startswith("dylink.0 section: subsection 2 size mismatch: declares 3 bytes, uses 1")
    truncated = decode_module(module(custom_section("dylink.0", b"\x01\x01\x00\x00")))
    assert truncated.dylink_error.startswith("unexpected end of section or function (reading the dylink.0 section)")


# Out-of-scope features ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "data, message",
    [
        (
            one_func(b"\x06\x40\x0b\x0b"),
            "unsupported feature: legacy exception handling (opcode 0x06 try) (at offset 0x17 in function 0)",
        ),
        # GC is decoded (tests/test_wasm_gc.py); stack switching is not.
        (
            module(type_section(b"\x5d\x00")),
            "unsupported feature: stack switching (continuation type, type form 0x5d) (at offset 0xb)",
        ),
    ],
)
def test_unsupported_features_are_named(data, message):
    assert str(unsupported(data)) == message


def test_wide_arithmetic_is_on_unless_its_feature_is_off():
    data = one_func(b"\xfc\x13\x0b")
    assert [opc for opc, _, _ in decode_module(data).funcs[0].body][0] == op.I64_ADD128
    assert str(unsupported(data, features=Features(wide_arithmetic=False))) == (
        "unsupported feature: wide arithmetic (opcode 0xfc 0x13 i64.add128; enable it with "
        "Features(wide_arithmetic=True)) (at offset 0x17 in function 0)"
    )


def test_memory_discard_is_behind_a_feature_flag():
    data = one_func(b"\x41\x00\x41\x00\xfc\x12\x00\x0b", extra=(memory_section(b"\x00\x01"),))
    err = unsupported(data)
    assert err.feature == op.MEMORY_CONTROL
    assert "enable it with Features(memory_discard=True)" in str(err)
    m = load_module(data, features=Features(memory_discard=True))
    assert [opc for opc, _, _ in m.funcs[0].body][2] == op.MEMORY_DISCARD


def test_malformed_wins_over_unsupported():
    # A throw_ref (exceptions) inside a global initialiser that never ends: the module is malformed first.
    data = module(section(6, b"\x01\x7f\x00\x41\x00\x0a"))
    assert isinstance(malformed(data), MalformedError)
    # A SIMD function followed by a malformed section.
    data = one_func(b"\xfd\x0c" + bytes(16) + b"\x1a\x0b") + b"\x0e\x00"
    assert malformed(data).reason == "malformed section id 14"


# Robustness: nothing but WasmError, on any input ----------------------------------------------------------

SEEDS = [
    one_func(b"\x20\x00\x20\x01\x6a\x0b", params=(I32, I32), results=(I32,)),
    one_func(b"\x02\x7f\x41\x01\x04\x7f\x41\x02\x05\x41\x03\x0b\x0b\x0b", results=(I32,)),
    module(
        type_section(functype()),
        func_section(0),
        section(4, vec([b"\x70\x00\x02"])),
        memory_section(b"\x01\x01\x02"),
        section(6, vec([b"\x7f\x01\x41\x00\x0b"])),
        export_section(("f", 0, 0)),
        section(9, vec([b"\x00\x41\x00\x0b\x01\x00"])),
        section(12, b"\x01"),
        code_section(body(b"\x41\x00\x41\x00\x41\x00\xfc\x08\x00\x00\x0b")),
        section(11, vec([b"\x01\x02hi"])),
        custom_section("name", _name_section()),
    ),
]


def _decode_any(data: bytes) -> None:
    for features in (Features(), Features(custom_page_sizes=False, memory_discard=True)):
        try:
            validate(decode_module(data, features=features))
        except WasmError as exc:
            assert str(exc)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=300))
def test_random_bytes_raise_only_wasm_errors(data):
    _decode_any(data)
    _decode_any(HEADER + data)


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(SEEDS),
    st.lists(
        st.tuples(st.integers(0, 10_000), st.integers(0, 255), st.sampled_from(["set", "insert", "delete"])), max_size=4
    ),
)
def test_mutated_modules_raise_only_wasm_errors(seed, edits):
    data = bytearray(seed)
    for position, value, kind in edits:
        if not data:
            break
        position %= len(data)
        if kind == "set":
            data[position] = value
        elif kind == "insert":
            data.insert(position, value)
        else:
            del data[position]
    _decode_any(bytes(data))


def test_seeds_are_valid():
    for seed in SEEDS:
        load_module(seed)


def test_drop_bodies_leaves_what_a_bodiless_decode_gives():
    """After compiling, the runtime keeps a module as a code-cache hit decodes it: no bodies, no locals."""
    from hwsim.runtime.api import _wat_to_wasm

    data = _wat_to_wasm(
        '(module (func (param i32) (result i32) (local i64 f32) local.get 0) (func (export "g") nop) (memory 1))'
    )
    module, bodiless = load_module(data), decode_module(data, bodies=False)
    assert module.bodies and module.funcs[0].body and module.funcs[0].num_locals == 2
    module.drop_bodies()
    assert not module.bodies and module.funcs == bodiless.funcs
    assert module.exports == bodiless.exports and module.memories == bodiless.memories
