"""The 0xfd opcode space as data: SIMD and relaxed SIMD instructions, their immediates, signatures and lanes.

An opcode of this space is ``SIMD_BASE | n`` for sub-opcode ``n`` (up to
0x113, so the codes sit above the ``0xfc`` space's ``0xfc00 | n`` and apart
from any other prefix's).  Immediates (decoded by :mod:`hwsim.wasm.decoder`)::

    NONE         None
    MEMARG       (memory index, align exponent, offset), as for scalar loads
    MEMARG_LANE  ((memory index, align exponent, offset), lane index)
    LANE         lane index (one byte)
    V128_BYTES   v128.const: the 128-bit value as an unsigned int (little-endian bytes);
                 i8x16.shuffle: a tuple of 16 lane indices

Signatures use the letters of :mod:`hwsim.wasm.opcodes` plus ``V`` for v128.
``ACCESS_LOG2`` gives the natural alignment of each memory instruction and
``LANES`` the lane count that bounds each lane immediate.
"""

from __future__ import annotations

from .types import F32, F64, I32, I64, V128

SIMD_BASE = 0xFD000

# Immediate kinds (values shared with hwsim.wasm.opcodes).
NONE = 0
MEMARG = 5
LANE = 21
V128_BYTES = 22
MEMARG_LANE = 23

_I, _M, _L, _B, _ML = NONE, MEMARG, LANE, V128_BYTES, MEMARG_LANE

_INT_CMPS = ("eq", "ne", "lt_s", "lt_u", "gt_s", "gt_u", "le_s", "le_u", "ge_s", "ge_u")
_FLOAT_CMPS = ("eq", "ne", "lt", "gt", "le", "ge")


def _table() -> dict[int, tuple[str, int, str]]:
    """sub-opcode -> (name, immediate kind, signature)."""
    t: dict[int, tuple[str, int, str]] = {}
    loads = [
        "v128.load",
        "v128.load8x8_s",
        "v128.load8x8_u",
        "v128.load16x4_s",
        "v128.load16x4_u",
        "v128.load32x2_s",
        "v128.load32x2_u",
        "v128.load8_splat",
        "v128.load16_splat",
        "v128.load32_splat",
        "v128.load64_splat",
    ]
    for n, name in enumerate(loads):
        t[n] = (name, _M, "a:V")  # "a": the memory's address type
    t[0x0B] = ("v128.store", _M, "aV:")
    t[0x0C] = ("v128.const", _B, ":V")
    t[0x0D] = ("i8x16.shuffle", _B, "VV:V")
    t[0x0E] = ("i8x16.swizzle", _I, "VV:V")
    for n, (shape, letter) in enumerate(
        (("i8x16", "i"), ("i16x8", "i"), ("i32x4", "i"), ("i64x2", "I"), ("f32x4", "f"), ("f64x2", "F"))
    ):
        t[0x0F + n] = (f"{shape}.splat", _I, f"{letter}:V")
    lanes = [
        ("i8x16.extract_lane_s", "V:i"),
        ("i8x16.extract_lane_u", "V:i"),
        ("i8x16.replace_lane", "Vi:V"),
        ("i16x8.extract_lane_s", "V:i"),
        ("i16x8.extract_lane_u", "V:i"),
        ("i16x8.replace_lane", "Vi:V"),
        ("i32x4.extract_lane", "V:i"),
        ("i32x4.replace_lane", "Vi:V"),
        ("i64x2.extract_lane", "V:I"),
        ("i64x2.replace_lane", "VI:V"),
        ("f32x4.extract_lane", "V:f"),
        ("f32x4.replace_lane", "Vf:V"),
        ("f64x2.extract_lane", "V:F"),
        ("f64x2.replace_lane", "VF:V"),
    ]
    for n, (name, sig) in enumerate(lanes):
        t[0x15 + n] = (name, _L, sig)
    for base, shape in ((0x23, "i8x16"), (0x2D, "i16x8"), (0x37, "i32x4")):
        for n, c in enumerate(_INT_CMPS):
            t[base + n] = (f"{shape}.{c}", _I, "VV:V")
    for base, shape in ((0x41, "f32x4"), (0x47, "f64x2")):
        for n, c in enumerate(_FLOAT_CMPS):
            t[base + n] = (f"{shape}.{c}", _I, "VV:V")
    t[0x4D] = ("v128.not", _I, "V:V")
    t[0x4E] = ("v128.and", _I, "VV:V")
    t[0x4F] = ("v128.andnot", _I, "VV:V")
    t[0x50] = ("v128.or", _I, "VV:V")
    t[0x51] = ("v128.xor", _I, "VV:V")
    t[0x52] = ("v128.bitselect", _I, "VVV:V")
    t[0x53] = ("v128.any_true", _I, "V:i")
    for n, size in enumerate((8, 16, 32, 64)):
        t[0x54 + n] = (f"v128.load{size}_lane", _ML, "aV:V")
        t[0x58 + n] = (f"v128.store{size}_lane", _ML, "aV:")
    t[0x5C] = ("v128.load32_zero", _M, "a:V")
    t[0x5D] = ("v128.load64_zero", _M, "a:V")
    ops = {
        0x5E: "f32x4.demote_f64x2_zero",
        0x5F: "f64x2.promote_low_f32x4",
        0x60: "i8x16.abs",
        0x61: "i8x16.neg",
        0x62: "i8x16.popcnt",
        0x65: "i8x16.narrow_i16x8_s/2",
        0x66: "i8x16.narrow_i16x8_u/2",
        0x67: "f32x4.ceil",
        0x68: "f32x4.floor",
        0x69: "f32x4.trunc",
        0x6A: "f32x4.nearest",
        0x6E: "i8x16.add/2",
        0x6F: "i8x16.add_sat_s/2",
        0x70: "i8x16.add_sat_u/2",
        0x71: "i8x16.sub/2",
        0x72: "i8x16.sub_sat_s/2",
        0x73: "i8x16.sub_sat_u/2",
        0x74: "f64x2.ceil",
        0x75: "f64x2.floor",
        0x76: "i8x16.min_s/2",
        0x77: "i8x16.min_u/2",
        0x78: "i8x16.max_s/2",
        0x79: "i8x16.max_u/2",
        0x7A: "f64x2.trunc",
        0x7B: "i8x16.avgr_u/2",
        0x7C: "i16x8.extadd_pairwise_i8x16_s",
        0x7D: "i16x8.extadd_pairwise_i8x16_u",
        0x7E: "i32x4.extadd_pairwise_i16x8_s",
        0x7F: "i32x4.extadd_pairwise_i16x8_u",
        0x80: "i16x8.abs",
        0x81: "i16x8.neg",
        0x82: "i16x8.q15mulr_sat_s/2",
        0x85: "i16x8.narrow_i32x4_s/2",
        0x86: "i16x8.narrow_i32x4_u/2",
        0x87: "i16x8.extend_low_i8x16_s",
        0x88: "i16x8.extend_high_i8x16_s",
        0x89: "i16x8.extend_low_i8x16_u",
        0x8A: "i16x8.extend_high_i8x16_u",
        0x8E: "i16x8.add/2",
        0x8F: "i16x8.add_sat_s/2",
        0x90: "i16x8.add_sat_u/2",
        0x91: "i16x8.sub/2",
        0x92: "i16x8.sub_sat_s/2",
        0x93: "i16x8.sub_sat_u/2",
        0x94: "f64x2.nearest",
        0x95: "i16x8.mul/2",
        0x96: "i16x8.min_s/2",
        0x97: "i16x8.min_u/2",
        0x98: "i16x8.max_s/2",
        0x99: "i16x8.max_u/2",
        0x9B: "i16x8.avgr_u/2",
        0x9C: "i16x8.extmul_low_i8x16_s/2",
        0x9D: "i16x8.extmul_high_i8x16_s/2",
        0x9E: "i16x8.extmul_low_i8x16_u/2",
        0x9F: "i16x8.extmul_high_i8x16_u/2",
        0xA0: "i32x4.abs",
        0xA1: "i32x4.neg",
        0xA7: "i32x4.extend_low_i16x8_s",
        0xA8: "i32x4.extend_high_i16x8_s",
        0xA9: "i32x4.extend_low_i16x8_u",
        0xAA: "i32x4.extend_high_i16x8_u",
        0xAE: "i32x4.add/2",
        0xB1: "i32x4.sub/2",
        0xB5: "i32x4.mul/2",
        0xB6: "i32x4.min_s/2",
        0xB7: "i32x4.min_u/2",
        0xB8: "i32x4.max_s/2",
        0xB9: "i32x4.max_u/2",
        0xBA: "i32x4.dot_i16x8_s/2",
        0xBC: "i32x4.extmul_low_i16x8_s/2",
        0xBD: "i32x4.extmul_high_i16x8_s/2",
        0xBE: "i32x4.extmul_low_i16x8_u/2",
        0xBF: "i32x4.extmul_high_i16x8_u/2",
        0xC0: "i64x2.abs",
        0xC1: "i64x2.neg",
        0xC7: "i64x2.extend_low_i32x4_s",
        0xC8: "i64x2.extend_high_i32x4_s",
        0xC9: "i64x2.extend_low_i32x4_u",
        0xCA: "i64x2.extend_high_i32x4_u",
        0xCE: "i64x2.add/2",
        0xD1: "i64x2.sub/2",
        0xD5: "i64x2.mul/2",
        0xD6: "i64x2.eq/2",
        0xD7: "i64x2.ne/2",
        0xD8: "i64x2.lt_s/2",
        0xD9: "i64x2.gt_s/2",
        0xDA: "i64x2.le_s/2",
        0xDB: "i64x2.ge_s/2",
        0xDC: "i64x2.extmul_low_i32x4_s/2",
        0xDD: "i64x2.extmul_high_i32x4_s/2",
        0xDE: "i64x2.extmul_low_i32x4_u/2",
        0xDF: "i64x2.extmul_high_i32x4_u/2",
        0xE0: "f32x4.abs",
        0xE1: "f32x4.neg",
        0xE3: "f32x4.sqrt",
        0xE4: "f32x4.add/2",
        0xE5: "f32x4.sub/2",
        0xE6: "f32x4.mul/2",
        0xE7: "f32x4.div/2",
        0xE8: "f32x4.min/2",
        0xE9: "f32x4.max/2",
        0xEA: "f32x4.pmin/2",
        0xEB: "f32x4.pmax/2",
        0xEC: "f64x2.abs",
        0xED: "f64x2.neg",
        0xEF: "f64x2.sqrt",
        0xF0: "f64x2.add/2",
        0xF1: "f64x2.sub/2",
        0xF2: "f64x2.mul/2",
        0xF3: "f64x2.div/2",
        0xF4: "f64x2.min/2",
        0xF5: "f64x2.max/2",
        0xF6: "f64x2.pmin/2",
        0xF7: "f64x2.pmax/2",
        0xF8: "i32x4.trunc_sat_f32x4_s",
        0xF9: "i32x4.trunc_sat_f32x4_u",
        0xFA: "f32x4.convert_i32x4_s",
        0xFB: "f32x4.convert_i32x4_u",
        0xFC: "i32x4.trunc_sat_f64x2_s_zero",
        0xFD: "i32x4.trunc_sat_f64x2_u_zero",
        0xFE: "f64x2.convert_low_i32x4_s",
        0xFF: "f64x2.convert_low_i32x4_u",
        # relaxed SIMD
        0x100: "i8x16.relaxed_swizzle/2",
        0x101: "i32x4.relaxed_trunc_f32x4_s",
        0x102: "i32x4.relaxed_trunc_f32x4_u",
        0x103: "i32x4.relaxed_trunc_f64x2_s_zero",
        0x104: "i32x4.relaxed_trunc_f64x2_u_zero",
        0x105: "f32x4.relaxed_madd/3",
        0x106: "f32x4.relaxed_nmadd/3",
        0x107: "f64x2.relaxed_madd/3",
        0x108: "f64x2.relaxed_nmadd/3",
        0x109: "i8x16.relaxed_laneselect/3",
        0x10A: "i16x8.relaxed_laneselect/3",
        0x10B: "i32x4.relaxed_laneselect/3",
        0x10C: "i64x2.relaxed_laneselect/3",
        0x10D: "f32x4.relaxed_min/2",
        0x10E: "f32x4.relaxed_max/2",
        0x10F: "f64x2.relaxed_min/2",
        0x110: "f64x2.relaxed_max/2",
        0x111: "i16x8.relaxed_q15mulr_s/2",
        0x112: "i16x8.relaxed_dot_i8x16_i7x16_s/2",
        0x113: "i32x4.relaxed_dot_i8x16_i7x16_add_s/3",
    }
    for n, spec in ops.items():
        name, _, arity = spec.partition("/")
        t[n] = (name, _I, "V" * int(arity or 1) + ":V")
    for base, shape in ((0x63, "i8x16"), (0x83, "i16x8"), (0xA3, "i32x4"), (0xC3, "i64x2")):
        t[base] = (f"{shape}.all_true", _I, "V:i")
        t[base + 1] = (f"{shape}.bitmask", _I, "V:i")
    for base, shape in ((0x6B, "i8x16"), (0x8B, "i16x8"), (0xAB, "i32x4"), (0xCB, "i64x2")):
        for n, s in enumerate(("shl", "shr_s", "shr_u")):
            t[base + n] = (f"{shape}.{s}", _I, "Vi:V")
    return t


TABLE = _table()
RELAXED_FIRST = 0x100  # sub-opcodes from here on are relaxed SIMD

_LETTERS = {"i": I32, "I": I64, "f": F32, "F": F64, "V": V128}
ADDRESS = -1  # the "a" letter: the memory's index type, filled in by the validator

NAMES: dict[int, str] = {SIMD_BASE | n: name for n, (name, _, _) in TABLE.items()}
IMMEDIATE: dict[int, int] = {SIMD_BASE | n: imm for n, (_, imm, _) in TABLE.items()}
SIGNATURES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {}
for _n, (_, _imm, _sig) in TABLE.items():
    _p, _r = _sig.split(":")
    SIGNATURES[SIMD_BASE | _n] = (
        tuple(ADDRESS if c == "a" else _LETTERS[c] for c in _p),
        tuple(_LETTERS[c] for c in _r),
    )
del _n, _imm, _sig, _p, _r

BY_NAME: dict[str, int] = {name: code for code, name in NAMES.items()}


def _size_of(name: str) -> int:
    """The lane/access size in bits named by a load or store (``v128.load16_lane`` -> 16)."""
    rest = name.split(".")[1].removeprefix("load").removeprefix("store")
    return int(rest.split("_")[0].split("x")[0])


ACCESS_LOG2: dict[int, int] = {}
for _code, _name in NAMES.items():
    if IMMEDIATE[_code] in (MEMARG, MEMARG_LANE):
        if _name in ("v128.load", "v128.store"):
            ACCESS_LOG2[_code] = 4
        elif "x" in _name.split(".")[1]:
            ACCESS_LOG2[_code] = 3  # load8x8_s and friends read 8 bytes
        else:
            ACCESS_LOG2[_code] = {8: 0, 16: 1, 32: 2, 64: 3}[_size_of(_name)]
del _code, _name

_SHAPE_LANES = {"i8x16": 16, "i16x8": 8, "i32x4": 4, "i64x2": 2, "f32x4": 4, "f64x2": 2}

# opcode -> lane count, for every instruction with a lane immediate.
LANES: dict[int, int] = {}
for _code, _name in NAMES.items():
    if IMMEDIATE[_code] == LANE:
        LANES[_code] = _SHAPE_LANES[_name.split(".")[0]]
    elif IMMEDIATE[_code] == MEMARG_LANE:
        LANES[_code] = 128 // _size_of(_name)
del _code, _name

V128_LOAD = BY_NAME["v128.load"]
V128_STORE = BY_NAME["v128.store"]
V128_CONST = BY_NAME["v128.const"]
I8X16_SHUFFLE = BY_NAME["i8x16.shuffle"]
