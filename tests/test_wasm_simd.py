"""SIMD (0xfd): decoding, validation, compiled code and v128 values across the embedding API."""

from __future__ import annotations

import struct

import pytest
from wasm_conftest_helpers import memory_section, one_func

from hwsim import Engine, Instance, Module, Store, Val, ValType
from hwsim.errors import HwsimError
from hwsim.wasm import Features, decode_module, validate
from hwsim.wasm.errors import InvalidError, MalformedError, UnsupportedFeatureError
from hwsim.wasm.simd import ACCESS_LOG2, BY_NAME, LANES, NAMES, SIGNATURES, SIMD_BASE, TABLE

CONST0 = b"\xfd\x0c" + bytes(16)


def lanes(values, width: int) -> int:
    return sum((v & ((1 << width) - 1)) << (width * i) for i, v in enumerate(values))


def f32x4(*values: float) -> int:
    return lanes([struct.unpack("<I", struct.pack("<f", v))[0] for v in values], 32)


def run(wat: str, name: str, *args):
    store = Store(Engine())
    instance = Instance(store, Module(store.engine, wat), [])
    return instance.exports(store)[name](store, *args)


# -- the opcode table ---------------------------------------------------------------------------------


def test_the_table_has_every_simd_and_relaxed_simd_instruction() -> None:
    assert len(TABLE) == 256 - 20 + 20  # 0x00-0xff minus 20 reserved, plus 0x100-0x113 relaxed
    assert NAMES[SIMD_BASE | 0x0D] == "i8x16.shuffle"
    assert NAMES[SIMD_BASE | 0xFF] == "f64x2.convert_low_i32x4_u"
    assert NAMES[SIMD_BASE | 0x113] == "i32x4.relaxed_dot_i8x16_i7x16_add_s"
    assert ACCESS_LOG2[BY_NAME["v128.load"]] == 4
    assert ACCESS_LOG2[BY_NAME["v128.load16x4_s"]] == 3
    assert ACCESS_LOG2[BY_NAME["v128.store16_lane"]] == 1
    assert LANES[BY_NAME["i8x16.extract_lane_s"]] == 16
    assert LANES[BY_NAME["v128.load64_lane"]] == 2
    assert SIGNATURES[BY_NAME["v128.bitselect"]] == ((0x7B,) * 3, (0x7B,))


# -- decoding and validation --------------------------------------------------------------------------


def test_v128_const_and_shuffle_immediates_are_decoded() -> None:
    shuffle = b"\xfd\x0d" + bytes(range(16))
    m = decode_module(one_func(CONST0 + CONST0 + shuffle + b"\x1a\x0b"))
    body = m.funcs[0].body
    assert body[0][:2] == (BY_NAME["v128.const"], 0)
    assert body[2][:2] == (BY_NAME["i8x16.shuffle"], tuple(range(16)))
    validate(m)


def test_simd_off_names_the_flag() -> None:
    with pytest.raises(UnsupportedFeatureError) as info:
        decode_module(one_func(CONST0 + b"\x1a\x0b"), features=Features(simd=False))
    assert str(info.value) == (
        "unsupported feature: SIMD (opcode 0xfd 0xc; enable it with Features(simd=True)) (at offset 0x17 in function 0)"
    )


def test_relaxed_simd_off_names_the_flag() -> None:
    code = CONST0 + CONST0 + b"\xfd\x80\x02\x1a\x0b"  # i8x16.relaxed_swizzle (0x100)
    with pytest.raises(UnsupportedFeatureError, match=r"relaxed SIMD .*i8x16.relaxed_swizzle.*relaxed_simd=True"):
        decode_module(one_func(code), features=Features(relaxed_simd=False))


def test_an_unknown_simd_opcode_is_malformed() -> None:
    with pytest.raises(MalformedError, match="illegal opcode fd 9a"):
        decode_module(one_func(b"\xfd\x9a\x01\x0b"))


@pytest.mark.parametrize(
    ("code", "reason"),
    [
        (CONST0 + b"\xfd\x15\x10\x1a\x0b", "invalid lane index: 16 (the shape has 16 lanes)"),
        (CONST0 + b"\xfd\x1d\x02\x1a\x0b", "invalid lane index: 2 (the shape has 2 lanes)"),
        (CONST0 + CONST0 + b"\xfd\x0d" + bytes([32] + [0] * 15) + b"\x1a\x0b", "invalid lane index: shuffle lane 32"),
        (b"\x41\x00\xfd\x00\x05\x00\x1a\x0b", "alignment must not be larger than natural: 2**5 > 16 bytes"),
        (
            b"\x41\x00" + CONST0 + b"\xfd\x55\x02\x00\x08\x0b",
            "alignment must not be larger than natural: 2**2 > 2 bytes",
        ),
        (b"\x41\x00\xfd\x60\x1a\x0b", "type mismatch"),
    ],
)
def test_invalid_simd_code_is_named(code: bytes, reason: str) -> None:
    data = one_func(code, extra=(memory_section(b"\x00\x01"),))
    with pytest.raises(InvalidError) as info:
        validate(decode_module(data))
    assert reason in str(info.value)


# -- compiled code and the embedding API --------------------------------------------------------------


def test_v128_values_cross_the_api_as_128_bit_ints() -> None:
    wat = """(module (func (export "add") (param v128 v128) (result v128)
                (i32x4.add (local.get 0) (local.get 1))))"""
    a = lanes([1, 2, 3, 0xFFFF_FFFF], 32)
    b = lanes([10, 20, 30, 1], 32)
    assert run(wat, "add", a, b) == lanes([11, 22, 33, 0], 32)
    assert run(wat, "add", Val.v128(a), Val.v128(b)) == lanes([11, 22, 33, 0], 32)
    assert Val.v128(-1).value == (1 << 128) - 1
    assert ValType.v128() == ValType(0x7B)
    with pytest.raises(TypeError):
        run(wat, "add", 1.5, b)


def test_v128_locals_globals_select_and_memory() -> None:
    wat = """(module
      (memory 1)
      (global $g (mut v128) (v128.const i64x2 5 6))
      (func (export "f") (param $c i32) (result v128) (local $v v128)
        (v128.store offset=2040 (i32.const 0) (global.get $g))
        (local.set $v (v128.load offset=2040 (i32.const 0)))
        (global.set $g (i64x2.splat (i64.const 7)))
        (select (local.get $v) (global.get $g) (local.get $c))))"""
    assert run(wat, "f", 1) == lanes([5, 6], 64)
    assert run(wat, "f", 0) == lanes([7, 7], 64)


def test_float_lanes_follow_wasm_nan_and_zero_rules() -> None:
    wat = """(module
      (func (export "min") (param v128 v128) (result v128) (f32x4.min (local.get 0) (local.get 1)))
      (func (export "nearest") (param v128) (result v128) (f32x4.nearest (local.get 0)))
      (func (export "trunc_sat") (param v128) (result v128) (i32x4.trunc_sat_f32x4_s (local.get 0))))"""
    nan = float("nan")
    assert run(wat, "min", f32x4(0.0, -0.0, nan, 1.0), f32x4(-0.0, 0.0, 1.0, -2.0)) == lanes(
        [0x8000_0000, 0x8000_0000, 0x7FC0_0000, f32x4(-2.0) & 0xFFFF_FFFF], 32
    )
    assert run(wat, "nearest", f32x4(2.5, -0.5, 3.5, 1e30)) == f32x4(2.0, -0.0, 4.0, 1e30)
    assert run(wat, "trunc_sat", f32x4(nan, 3e9, -3e9, -1.9)) == lanes([0, 0x7FFF_FFFF, -0x8000_0000, -1], 32)


def test_a_module_without_simd_carries_no_helper_code() -> None:
    from hwsim.compiler import compile_module
    from hwsim.compiler.isa.riscv64.simdlib import CODE

    plain = decode_module(one_func(b"\x0b"))
    vector = decode_module(one_func(CONST0 + CONST0 + b"\xfd\x0e\x1a\x0b"))  # i8x16.swizzle: a helper
    assert len(compile_module(plain).code) < len(CODE)
    assert compile_module(vector).code.endswith(CODE)


def test_a_bad_simd_module_is_a_clear_error() -> None:
    engine = Engine()
    with pytest.raises(HwsimError, match="invalid lane index"):
        Module(engine, "(module (func (result i32) (i8x16.extract_lane_s 16 (v128.const i64x2 0 0))))")


def test_the_helper_code_is_built_from_its_c_source() -> None:
    """_blob.py is what `python -m hwsim.compiler.isa.riscv64.simdlib` makes from simdlib.c (reproducible)."""
    pytest.importorskip("ziglang", reason="ziglang builds the helper routines")
    from hwsim.compiler.isa.riscv64.simdlib import CODE, SYMBOLS
    from hwsim.compiler.isa.riscv64.simdlib.__main__ import build

    code, symbols = build()
    assert (code, symbols) == (CODE, SYMBOLS)
    calls = {n.replace(".", "_") for n in NAMES.values()} - set(SYMBOLS)
    # Compiled in place (codegen/simd.py), with no routine of their own.
    assert calls == {
        "v128_const",
        "v128_load",
        "v128_store",
        *(f"v128_load{s}_splat" for s in (8, 16, 32, 64)),
        *(f"v128_load{s}_lane" for s in (8, 16, 32, 64)),
        *(f"v128_store{s}_lane" for s in (8, 16, 32, 64)),
        "v128_load32_zero",
        "v128_load64_zero",
    }


def wasmtime_v128(wat: str):
    """wasmtime's exports of ``wat`` and ``call(func, args) -> v128 result`` (v128 arguments as ints), with
    NaN canonicalisation and the deterministic relaxed profile (hwsim's choices)."""
    import ctypes

    import wasmtime
    from wasmtime import _ffi as ffi
    from wasmtime._func import enter_wasm

    config = wasmtime.Config()
    config.wasm_relaxed_simd = True
    config.wasm_relaxed_simd_deterministic = True
    config.cranelift_nan_canonicalization = True
    engine = wasmtime.Engine(config)
    wstore = wasmtime.Store(engine)
    exports = wasmtime.Instance(wstore, wasmtime.Module(engine, wat), []).exports(wstore)

    def call(func, args: list[int]) -> int:
        params = (ffi.wasmtime_val_t * len(args))()
        for i, a in enumerate(args):
            raw = ffi.wasmtime_val_t(kind=ffi.WASMTIME_V128.value)
            ctypes.memmove(ctypes.addressof(raw.of), a.to_bytes(16, "little"), 16)
            params[i] = raw
        res = (ffi.wasmtime_val_t * 1)()
        with enter_wasm(wstore) as trap:
            assert not ffi.wasmtime_func_call(
                wstore._context(), ctypes.byref(func._func), params, len(args), res, 1, trap
            )
        return int.from_bytes(ctypes.string_at(ctypes.addressof(res[0].of), 16), "little")

    return exports, call


def test_every_vector_to_vector_instruction_matches_wasmtime() -> None:
    """Differential: each v128 -> v128 instruction (191 of them, relaxed SIMD included) on edge-biased
    inputs, against wasmtime with NaN canonicalisation and the deterministic relaxed profile (hwsim's choices)."""
    pytest.importorskip("wasmtime")
    import random

    funcs = []
    for name, imm, sig in TABLE.values():
        params, results = sig.split(":")
        if imm == 0 and results == "V" and set(params) == {"V"}:
            args = " ".join(f"(local.get {i})" for i in range(len(params)))
            funcs.append(
                (
                    name,
                    len(params),
                    f'(func (export "{name}") (param {"v128 " * len(params)}) (result v128) ({name} {args}))',
                )
            )
    assert len(funcs) == 191
    wat = "(module " + "\n".join(f for _, _, f in funcs) + ")"
    store = Store(Engine())
    ours = Instance(store, Module(store.engine, wat), []).exports(store)
    theirs, oracle = wasmtime_v128(wat)
    f32 = [0, 1 << 31, 0x3F80_0000, 0xBF80_0000, 0x7F80_0000, 0xFF80_0000, 0x7FC0_0000, 0xFFC0_0001, 0x7F80_0001]
    f32 += [0x4F00_0000, 0xCF00_0000, 1, 0x3F00_0000, 0x4B00_0001, 0x4049_0FDB, 0x3FC0_0000]
    f64 = [0, 1 << 63, 0x3FF0 << 48, 0x7FF0 << 48, 0x7FF8 << 48, (0xFFF8 << 48) | 1, 0x41E0 << 48, 0xC1E0 << 48]
    f64 += [0x3FE0 << 48, (0x4330 << 48) | 1, 0x41EF_FFFF_FFE0_0000]
    rng = random.Random(20)

    def value() -> int:
        r = rng.random()
        if r < 0.3:
            return rng.getrandbits(128)
        if r < 0.65:
            return sum(rng.choice(f32) << (32 * i) for i in range(4))
        return sum(rng.choice(f64) << (64 * i) for i in range(2))

    wrong = []
    for name, arity, _ in funcs:
        for _ in range(40):
            args = [value() for _ in range(arity)]
            if ours[name](store, *args) != oracle(theirs[name], args):
                wrong.append((name, [hex(a) for a in args]))
                break
    assert wrong == []


def test_shuffles_folded_with_extensions_and_byte_shifts_match_wasmtime() -> None:
    """Differential: i8x16.shuffle followed by unsigned extensions and lane shifts by whole bytes (which the
    code generator folds into one shuffle with zero bytes, codegen/simd.py ``fuse``), also of a vector with
    itself and with a shift that ends the fold, against wasmtime."""
    pytest.importorskip("wasmtime")
    import random

    rng = random.Random(7)
    shapes = (("i16x8", "i8x16"), ("i32x4", "i16x8"), ("i64x2", "i32x4"))
    widen = [f"{shape}.extend_{part}_{narrow}_u" for shape, narrow in shapes for part in ("low", "high")]
    funcs = []
    for i in range(60):
        lanes_ = " ".join(str(rng.randrange(32)) for _ in range(16))
        second = "(local.get 0)" if i % 3 == 0 else "(local.get 1)"
        body = f"(i8x16.shuffle {lanes_} (local.get 0) {second})"
        for _ in range(rng.randrange(5)):
            if rng.random() < 0.5:
                body = f"({rng.choice(widen)} {body})"
            else:
                shape = rng.choice(("i16x8", "i32x4", "i64x2"))
                count = rng.choice((0, 8, 16, 24, 32, 40, 56, 5, 72))
                body = f"({shape}.{rng.choice(('shl', 'shr_u'))} {body} (i32.const {count}))"
        funcs.append(f'(func (export "f{i}") (param v128 v128) (result v128) {body})')
    wat = "(module " + "\n".join(funcs) + ")"
    store = Store(Engine())
    ours = Instance(store, Module(store.engine, wat), []).exports(store)
    theirs, oracle = wasmtime_v128(wat)
    wrong = []
    for i in range(len(funcs)):
        for _ in range(4):
            args = [rng.getrandbits(128), rng.getrandbits(128)]
            if ours[f"f{i}"](store, *args) != oracle(theirs[f"f{i}"], args):
                wrong.append((funcs[i], [hex(a) for a in args]))
                break
    assert wrong == []


def test_shuffles_of_a_local_ored_together_match_wasmtime() -> None:
    """Differential: shuffles of one local with itself, each widened and shifted, OR'ed together (a byte
    swap within lanes as LLVM vectorises it, which ``fuse`` compiles as one shuffle when no output byte is
    taken twice), against wasmtime."""
    pytest.importorskip("wasmtime")
    import random

    rng = random.Random(11)
    funcs = []
    for i in range(30):
        order = list(range(4))
        rng.shuffle(order)
        parts = []
        for m, j in enumerate(order):
            lanes_ = [j + 4 * lane for lane in range(4)] + [rng.randrange(32) for _ in range(12)]
            first = "(local.tee 2 (local.get 0)) (local.get 2)" if m == 0 else "(local.get 2) (local.get 2)"
            part = f"(i8x16.shuffle {' '.join(map(str, lanes_))} {first})"
            part = f"(i32x4.extend_low_i16x8_u (i16x8.extend_low_i8x16_u {part}))"
            shift = 8 * (3 - m) if i % 5 else rng.choice((0, 8, 16, 24))  # every fifth: bytes may collide
            parts.append(f"(i32x4.shl {part} (i32.const {shift}))")
        body = parts[0]
        for part in parts[1:]:
            body = f"(v128.or {body} {part})"
        funcs.append(f'(func (export "f{i}") (param v128 v128) (result v128) (local v128) {body})')
    wat = "(module " + "\n".join(funcs) + ")"
    store = Store(Engine())
    ours = Instance(store, Module(store.engine, wat), []).exports(store)
    theirs, oracle = wasmtime_v128(wat)
    wrong = []
    for i in range(len(funcs)):
        for _ in range(4):
            args = [rng.getrandbits(128), rng.getrandbits(128)]
            if ours[f"f{i}"](store, *args) != oracle(theirs[f"f{i}"], args):
                wrong.append((funcs[i], [hex(a) for a in args]))
                break
    assert wrong == []
