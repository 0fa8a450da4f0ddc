"""WebAssembly opcodes as data: names, immediate kinds, stack signatures, and out-of-scope opcodes.

An opcode is an ``int``: the byte for one-byte opcodes, ``0xfc00 | n`` for the
``0xfc`` prefix with sub-opcode ``n`` (``memory.copy`` is ``0xfc0a``).  The
decoder reads immediates by ``IMMEDIATE[op]``; the validator types every
instruction listed in ``SIGNATURES`` from the table alone.  Which opcodes are
outside hwsim's scope, and which proposal they belong to, is also data here
(``UNSUPPORTED_OPCODES``, ``UNSUPPORTED_PREFIXES``).

Decoded instructions are tuples ``(op, immediate, offset)``; the immediate for
each kind is::

    NONE           None
    BLOCK          block type: int (type index if >= 0, else BLOCK_EMPTY or valtype - 0x80)
    INDEX          int (label, function, local, global, table, memory, data or elem index)
    BR_TABLE       (tuple of label indices, default label)
    CALL_INDIRECT  (type index, table index)
    MEMARG         (memory index, align exponent, offset)
    I32 / I64      int, the unsigned bit pattern
    F32 / F64      int, the IEEE bit pattern (NaN payloads survive)
    SELECT_T       tuple of value types
    HEAPTYPE       FUNCREF or EXTERNREF
    INDEX2         (x, y) in binary order: memory.init (data, mem), memory.copy (dst, src),
                   table.init (elem, table), table.copy (dst, src)
    TRY_TABLE      (block type, ((clause, tag or None, label), ...)): clause CATCH, CATCH_REF,
                   CATCH_ALL or CATCH_ALL_REF (the tag is None for the last two)
"""

from __future__ import annotations

from . import gcops as _gcops
from . import simd as _simd
from .atomics import ATOMICS
from .types import F32, F64, I32, I64

# Immediate kinds.
NONE = 0
BLOCK = 1
INDEX = 2
BR_TABLE = 3
CALL_INDIRECT = 4
MEMARG = 5
I32_CONST = 6
I64_CONST = 7
F32_CONST = 8
F64_CONST = 9
SELECT_T = 10
HEAPTYPE = 11
INDEX2 = 12

PREFIX_FC = 0xFC

# try_table's catch clauses (binary encodings).
CATCH, CATCH_REF, CATCH_ALL, CATCH_ALL_REF = range(4)
CATCH_NAMES = ("catch", "catch_ref", "catch_all", "catch_all_ref")

# Control and parametric.
UNREACHABLE = 0x00
NOP = 0x01
BLOCK_OP = 0x02
LOOP = 0x03
IF = 0x04
ELSE = 0x05
END = 0x0B
BR = 0x0C
BR_IF = 0x0D
BR_TABLE_OP = 0x0E
RETURN = 0x0F
CALL = 0x10
CALL_INDIRECT_OP = 0x11
RETURN_CALL = 0x12
RETURN_CALL_INDIRECT = 0x13
CALL_REF = 0x14  # typed function references: call_ref $t
RETURN_CALL_REF = 0x15
DROP = 0x1A
SELECT = 0x1B
SELECT_TYPED = 0x1C
LOCAL_GET = 0x20
LOCAL_SET = 0x21
LOCAL_TEE = 0x22
GLOBAL_GET = 0x23
GLOBAL_SET = 0x24
TABLE_GET = 0x25
TABLE_SET = 0x26
MEMORY_SIZE = 0x3F
MEMORY_GROW = 0x40
I32_CONST_OP = 0x41
I64_CONST_OP = 0x42
F32_CONST_OP = 0x43
F64_CONST_OP = 0x44
I32_ADD = 0x6A
I32_SUB = 0x6B
I32_MUL = 0x6C
I64_ADD = 0x7C
I64_SUB = 0x7D
I64_MUL = 0x7E
REF_NULL = 0xD0
REF_IS_NULL = 0xD1
REF_FUNC = 0xD2
REF_AS_NON_NULL = 0xD4
BR_ON_NULL = 0xD5
BR_ON_NON_NULL = 0xD6
THROW = 0x08  # exception handling (WebAssembly 3.0)
THROW_REF = 0x0A
TRY_TABLE_OP = 0x1F
MEMORY_INIT = 0xFC08
DATA_DROP = 0xFC09
MEMORY_COPY = 0xFC0A
MEMORY_FILL = 0xFC0B
TABLE_INIT = 0xFC0C
ELEM_DROP = 0xFC0D
TABLE_COPY = 0xFC0E
TABLE_GROW = 0xFC0F
TABLE_SIZE = 0xFC10
TABLE_FILL = 0xFC11
MEMORY_DISCARD = 0xFC12  # memory-control proposal; decoded only with Features(memory_discard=True)
# hwsim's provisional encodings of the memory-control proposal's map/unmap/protect (no standard opcodes
# exist yet; 0xfc 0x13.. are taken by other proposals, so these sit at 0xfc 0xe0.., LEB 0xe0 0x01...).
# Decoded only with Features(memory_control=True).  See docs/memory-control.md.
MEMORY_MAP = 0xFCE0  # memory.map $mem: [addr len:addr prot:i32] -> [addr]
MEMORY_UNMAP = 0xFCE1  # memory.unmap $mem: [addr len:addr] -> []
MEMORY_PROTECT = 0xFCE2  # memory.protect $mem: [addr len:addr prot:i32] -> []
MEMORY_CONTROL_OPS = (MEMORY_MAP, MEMORY_UNMAP, MEMORY_PROTECT)
I64_ADD128 = 0xFC13  # wide-arithmetic proposal: [lo hi lo hi] -> [lo hi]
I64_SUB128 = 0xFC14
I64_MUL_WIDE_S = 0xFC15  # [i64 i64] -> [lo hi]
I64_MUL_WIDE_U = 0xFC16
WIDE_ARITHMETIC_OPS = (I64_ADD128, I64_SUB128, I64_MUL_WIDE_S, I64_MUL_WIDE_U)

# name, immediate kind
_CONTROL = {
    UNREACHABLE: ("unreachable", NONE),
    NOP: ("nop", NONE),
    BLOCK_OP: ("block", BLOCK),
    LOOP: ("loop", BLOCK),
    IF: ("if", BLOCK),
    ELSE: ("else", NONE),
    END: ("end", NONE),
    BR: ("br", INDEX),
    BR_IF: ("br_if", INDEX),
    BR_TABLE_OP: ("br_table", BR_TABLE),
    RETURN: ("return", NONE),
    THROW: ("throw", INDEX),
    THROW_REF: ("throw_ref", NONE),
    TRY_TABLE_OP: ("try_table", 20),  # (TRY_TABLE, defined below)
    CALL: ("call", INDEX),
    CALL_INDIRECT_OP: ("call_indirect", CALL_INDIRECT),
    RETURN_CALL: ("return_call", INDEX),
    RETURN_CALL_INDIRECT: ("return_call_indirect", CALL_INDIRECT),
    CALL_REF: ("call_ref", INDEX),
    RETURN_CALL_REF: ("return_call_ref", INDEX),
    DROP: ("drop", NONE),
    SELECT: ("select", NONE),
    SELECT_TYPED: ("select", SELECT_T),
    LOCAL_GET: ("local.get", INDEX),
    LOCAL_SET: ("local.set", INDEX),
    LOCAL_TEE: ("local.tee", INDEX),
    GLOBAL_GET: ("global.get", INDEX),
    GLOBAL_SET: ("global.set", INDEX),
    TABLE_GET: ("table.get", INDEX),
    TABLE_SET: ("table.set", INDEX),
    MEMORY_SIZE: ("memory.size", INDEX),
    MEMORY_GROW: ("memory.grow", INDEX),
    I32_CONST_OP: ("i32.const", I32_CONST),
    I64_CONST_OP: ("i64.const", I64_CONST),
    F32_CONST_OP: ("f32.const", F32_CONST),
    F64_CONST_OP: ("f64.const", F64_CONST),
    REF_NULL: ("ref.null", HEAPTYPE),
    REF_IS_NULL: ("ref.is_null", NONE),
    REF_FUNC: ("ref.func", INDEX),
    REF_AS_NON_NULL: ("ref.as_non_null", NONE),
    BR_ON_NULL: ("br_on_null", INDEX),
    BR_ON_NON_NULL: ("br_on_non_null", INDEX),
    MEMORY_INIT: ("memory.init", INDEX2),
    DATA_DROP: ("data.drop", INDEX),
    MEMORY_COPY: ("memory.copy", INDEX2),
    MEMORY_FILL: ("memory.fill", INDEX),
    TABLE_INIT: ("table.init", INDEX2),
    ELEM_DROP: ("elem.drop", INDEX),
    TABLE_COPY: ("table.copy", INDEX2),
    TABLE_GROW: ("table.grow", INDEX),
    TABLE_SIZE: ("table.size", INDEX),
    TABLE_FILL: ("table.fill", INDEX),
    MEMORY_DISCARD: ("memory.discard", INDEX),
    MEMORY_MAP: ("memory.map", INDEX),
    MEMORY_UNMAP: ("memory.unmap", INDEX),
    MEMORY_PROTECT: ("memory.protect", INDEX),
}

# Loads and stores: opcode -> (name, value type, log2 of the access size in bytes).
LOADS = {
    0x28: ("i32.load", I32, 2),
    0x29: ("i64.load", I64, 3),
    0x2A: ("f32.load", F32, 2),
    0x2B: ("f64.load", F64, 3),
    0x2C: ("i32.load8_s", I32, 0),
    0x2D: ("i32.load8_u", I32, 0),
    0x2E: ("i32.load16_s", I32, 1),
    0x2F: ("i32.load16_u", I32, 1),
    0x30: ("i64.load8_s", I64, 0),
    0x31: ("i64.load8_u", I64, 0),
    0x32: ("i64.load16_s", I64, 1),
    0x33: ("i64.load16_u", I64, 1),
    0x34: ("i64.load32_s", I64, 2),
    0x35: ("i64.load32_u", I64, 2),
}
STORES = {
    0x36: ("i32.store", I32, 2),
    0x37: ("i64.store", I64, 3),
    0x38: ("f32.store", F32, 2),
    0x39: ("f64.store", F64, 3),
    0x3A: ("i32.store8", I32, 0),
    0x3B: ("i32.store16", I32, 1),
    0x3C: ("i64.store8", I64, 0),
    0x3D: ("i64.store16", I64, 1),
    0x3E: ("i64.store32", I64, 2),
}

# Instructions typed by a fixed signature: opcode -> (name, "params:results"), with
# i = i32, I = i64, f = f32, F = f64.
_SIMPLE_SPEC = {
    0x45: ("i32.eqz", "i:i"),
    0x46: ("i32.eq", "ii:i"),
    0x47: ("i32.ne", "ii:i"),
    0x48: ("i32.lt_s", "ii:i"),
    0x49: ("i32.lt_u", "ii:i"),
    0x4A: ("i32.gt_s", "ii:i"),
    0x4B: ("i32.gt_u", "ii:i"),
    0x4C: ("i32.le_s", "ii:i"),
    0x4D: ("i32.le_u", "ii:i"),
    0x4E: ("i32.ge_s", "ii:i"),
    0x4F: ("i32.ge_u", "ii:i"),
    0x50: ("i64.eqz", "I:i"),
    0x51: ("i64.eq", "II:i"),
    0x52: ("i64.ne", "II:i"),
    0x53: ("i64.lt_s", "II:i"),
    0x54: ("i64.lt_u", "II:i"),
    0x55: ("i64.gt_s", "II:i"),
    0x56: ("i64.gt_u", "II:i"),
    0x57: ("i64.le_s", "II:i"),
    0x58: ("i64.le_u", "II:i"),
    0x59: ("i64.ge_s", "II:i"),
    0x5A: ("i64.ge_u", "II:i"),
    0x5B: ("f32.eq", "ff:i"),
    0x5C: ("f32.ne", "ff:i"),
    0x5D: ("f32.lt", "ff:i"),
    0x5E: ("f32.gt", "ff:i"),
    0x5F: ("f32.le", "ff:i"),
    0x60: ("f32.ge", "ff:i"),
    0x61: ("f64.eq", "FF:i"),
    0x62: ("f64.ne", "FF:i"),
    0x63: ("f64.lt", "FF:i"),
    0x64: ("f64.gt", "FF:i"),
    0x65: ("f64.le", "FF:i"),
    0x66: ("f64.ge", "FF:i"),
    0x67: ("i32.clz", "i:i"),
    0x68: ("i32.ctz", "i:i"),
    0x69: ("i32.popcnt", "i:i"),
    0x6A: ("i32.add", "ii:i"),
    0x6B: ("i32.sub", "ii:i"),
    0x6C: ("i32.mul", "ii:i"),
    0x6D: ("i32.div_s", "ii:i"),
    0x6E: ("i32.div_u", "ii:i"),
    0x6F: ("i32.rem_s", "ii:i"),
    0x70: ("i32.rem_u", "ii:i"),
    0x71: ("i32.and", "ii:i"),
    0x72: ("i32.or", "ii:i"),
    0x73: ("i32.xor", "ii:i"),
    0x74: ("i32.shl", "ii:i"),
    0x75: ("i32.shr_s", "ii:i"),
    0x76: ("i32.shr_u", "ii:i"),
    0x77: ("i32.rotl", "ii:i"),
    0x78: ("i32.rotr", "ii:i"),
    0x79: ("i64.clz", "I:I"),
    0x7A: ("i64.ctz", "I:I"),
    0x7B: ("i64.popcnt", "I:I"),
    0x7C: ("i64.add", "II:I"),
    0x7D: ("i64.sub", "II:I"),
    0x7E: ("i64.mul", "II:I"),
    0x7F: ("i64.div_s", "II:I"),
    0x80: ("i64.div_u", "II:I"),
    0x81: ("i64.rem_s", "II:I"),
    0x82: ("i64.rem_u", "II:I"),
    0x83: ("i64.and", "II:I"),
    0x84: ("i64.or", "II:I"),
    0x85: ("i64.xor", "II:I"),
    0x86: ("i64.shl", "II:I"),
    0x87: ("i64.shr_s", "II:I"),
    0x88: ("i64.shr_u", "II:I"),
    0x89: ("i64.rotl", "II:I"),
    0x8A: ("i64.rotr", "II:I"),
    0x8B: ("f32.abs", "f:f"),
    0x8C: ("f32.neg", "f:f"),
    0x8D: ("f32.ceil", "f:f"),
    0x8E: ("f32.floor", "f:f"),
    0x8F: ("f32.trunc", "f:f"),
    0x90: ("f32.nearest", "f:f"),
    0x91: ("f32.sqrt", "f:f"),
    0x92: ("f32.add", "ff:f"),
    0x93: ("f32.sub", "ff:f"),
    0x94: ("f32.mul", "ff:f"),
    0x95: ("f32.div", "ff:f"),
    0x96: ("f32.min", "ff:f"),
    0x97: ("f32.max", "ff:f"),
    0x98: ("f32.copysign", "ff:f"),
    0x99: ("f64.abs", "F:F"),
    0x9A: ("f64.neg", "F:F"),
    0x9B: ("f64.ceil", "F:F"),
    0x9C: ("f64.floor", "F:F"),
    0x9D: ("f64.trunc", "F:F"),
    0x9E: ("f64.nearest", "F:F"),
    0x9F: ("f64.sqrt", "F:F"),
    0xA0: ("f64.add", "FF:F"),
    0xA1: ("f64.sub", "FF:F"),
    0xA2: ("f64.mul", "FF:F"),
    0xA3: ("f64.div", "FF:F"),
    0xA4: ("f64.min", "FF:F"),
    0xA5: ("f64.max", "FF:F"),
    0xA6: ("f64.copysign", "FF:F"),
    0xA7: ("i32.wrap_i64", "I:i"),
    0xA8: ("i32.trunc_f32_s", "f:i"),
    0xA9: ("i32.trunc_f32_u", "f:i"),
    0xAA: ("i32.trunc_f64_s", "F:i"),
    0xAB: ("i32.trunc_f64_u", "F:i"),
    0xAC: ("i64.extend_i32_s", "i:I"),
    0xAD: ("i64.extend_i32_u", "i:I"),
    0xAE: ("i64.trunc_f32_s", "f:I"),
    0xAF: ("i64.trunc_f32_u", "f:I"),
    0xB0: ("i64.trunc_f64_s", "F:I"),
    0xB1: ("i64.trunc_f64_u", "F:I"),
    0xB2: ("f32.convert_i32_s", "i:f"),
    0xB3: ("f32.convert_i32_u", "i:f"),
    0xB4: ("f32.convert_i64_s", "I:f"),
    0xB5: ("f32.convert_i64_u", "I:f"),
    0xB6: ("f32.demote_f64", "F:f"),
    0xB7: ("f64.convert_i32_s", "i:F"),
    0xB8: ("f64.convert_i32_u", "i:F"),
    0xB9: ("f64.convert_i64_s", "I:F"),
    0xBA: ("f64.convert_i64_u", "I:F"),
    0xBB: ("f64.promote_f32", "f:F"),
    0xBC: ("i32.reinterpret_f32", "f:i"),
    0xBD: ("i64.reinterpret_f64", "F:I"),
    0xBE: ("f32.reinterpret_i32", "i:f"),
    0xBF: ("f64.reinterpret_i64", "I:F"),
    0xC0: ("i32.extend8_s", "i:i"),
    0xC1: ("i32.extend16_s", "i:i"),
    0xC2: ("i64.extend8_s", "I:I"),
    0xC3: ("i64.extend16_s", "I:I"),
    0xC4: ("i64.extend32_s", "I:I"),
    0xFC00: ("i32.trunc_sat_f32_s", "f:i"),
    0xFC01: ("i32.trunc_sat_f32_u", "f:i"),
    0xFC02: ("i32.trunc_sat_f64_s", "F:i"),
    0xFC03: ("i32.trunc_sat_f64_u", "F:i"),
    0xFC04: ("i64.trunc_sat_f32_s", "f:I"),
    0xFC05: ("i64.trunc_sat_f32_u", "f:I"),
    0xFC06: ("i64.trunc_sat_f64_s", "F:I"),
    0xFC07: ("i64.trunc_sat_f64_u", "F:I"),
    # wide arithmetic (proposal): 128-bit values as two i64 halves, low half first
    0xFC13: ("i64.add128", "IIII:II"),
    0xFC14: ("i64.sub128", "IIII:II"),
    0xFC15: ("i64.mul_wide_s", "II:II"),
    0xFC16: ("i64.mul_wide_u", "II:II"),
}

_LETTERS = {"i": I32, "I": I64, "f": F32, "F": F64}


def _sig(spec: str) -> tuple[tuple[int, ...], tuple[int, ...]]:
    params, results = spec.split(":")
    return tuple(_LETTERS[c] for c in params), tuple(_LETTERS[c] for c in results)


# opcode -> (params, results) for every fixed-signature instruction.
SIGNATURES: dict[int, tuple[tuple[int, ...], tuple[int, ...]]] = {op: _sig(s) for op, (_, s) in _SIMPLE_SPEC.items()}
SIGNATURES[I32_CONST_OP] = ((), (I32,))
SIGNATURES[I64_CONST_OP] = ((), (I64,))
SIGNATURES[F32_CONST_OP] = ((), (F32,))
SIGNATURES[F64_CONST_OP] = ((), (F64,))
SIGNATURES[NOP] = ((), ())

# opcode -> name, for every opcode hwsim decodes.
NAMES: dict[int, str] = {op: name for op, (name, _) in _CONTROL.items()}
NAMES.update({op: name for op, (name, _) in _SIMPLE_SPEC.items()})
NAMES.update({op: name for op, (name, _, _) in LOADS.items()})
NAMES.update({op: name for op, (name, _, _) in STORES.items()})
# Threads proposal: the 0xfe opcodes (their immediates and types are in atomics.py).
NAMES.update({op: a.name for op, a in ATOMICS.items()})

# opcode -> immediate kind, for every opcode hwsim decodes.
IMMEDIATE: dict[int, int] = {op: imm for op, (_, imm) in _CONTROL.items()}
IMMEDIATE.update({op: NONE for op in _SIMPLE_SPEC})
IMMEDIATE.update({op: MEMARG for op in LOADS})
IMMEDIATE.update({op: MEMARG for op in STORES})
# SIMD (0xfd prefix): see hwsim/wasm/simd.py.
PREFIX_FD = 0xFD
NAMES.update(_simd.NAMES)
IMMEDIATE.update(_simd.IMMEDIATE)
# GC (0xfb prefix, and ref.eq): see hwsim/wasm/gcops.py; decoded apart (not in IMMEDIATE_BYTE).
PREFIX_FB = 0xFB
NAMES.update(_gcops.NAMES)

# Dense tables for the decoder's inner loop: one-byte opcodes index a list;
# None means "not a one-byte opcode hwsim decodes".
IMMEDIATE_BYTE: list[int | None] = [IMMEDIATE.get(b) if b < 0x100 else None for b in range(256)]
NAME_BYTE: list[str | None] = [NAMES.get(b) for b in range(256)]


def opcode_name(op: int) -> str:
    """The text-format name of ``op``, or its hex encoding when hwsim has no name for it."""
    name = NAMES.get(op)
    if name is not None:
        return name
    if op > 0xFF:
        return f"0x{op >> 8:02x} 0x{op & 0xFF:02x}"
    return f"0x{op:02x}"


# Out of scope ---------------------------------------------------------------

SIMD = "SIMD"
RELAXED_SIMD = "relaxed SIMD"
GC = "GC"
FUNCTION_REFERENCES = "typed function references"
EXCEPTIONS = "exception handling"
LEGACY_EXCEPTIONS = "legacy exception handling"
THREADS = "threads/atomics"
STACK_SWITCHING = "stack switching"
WIDE_ARITHMETIC = "wide arithmetic"
MEMORY_CONTROL = "memory.discard (memory-control proposal)"

# Immediate kinds that occur only in out-of-scope instructions (and try_table's).
TRY_TABLE = 20  # block type, vec(catch clause)
LANE = 21  # one lane-index byte
V128_BYTES = 22  # 16 bytes (v128.const, i8x16.shuffle)
MEMARG_LANE = 23  # memarg, then a lane-index byte
INDEX_INDEX = 25  # two u32 indices
ZERO_BYTE = 27  # one reserved byte (atomic.fence)

# One-byte opcodes hwsim recognises as belonging to a proposal it does not
# implement: opcode -> (proposal, name, immediate kind, block effect), where
# the block effect is +1 when the instruction opens a block (ended by "end")
# and -1 when it closes one.  Knowing the immediates lets the decoder skip the
# instruction and keep looking for malformed bytes; the module is rejected
# with UnsupportedFeatureError once it has been decoded.
UNSUPPORTED_OPCODES: dict[int, tuple[str, str, int | None, int]] = {
    0x06: (LEGACY_EXCEPTIONS, "try", BLOCK, 1),
    0x07: (LEGACY_EXCEPTIONS, "catch", INDEX, 0),
    0x09: (LEGACY_EXCEPTIONS, "rethrow", INDEX, 0),
    0x18: (LEGACY_EXCEPTIONS, "delegate", INDEX, -1),
    0x19: (LEGACY_EXCEPTIONS, "catch_all", NONE, 0),
    0xE0: (STACK_SWITCHING, "cont.new", INDEX, 0),
    0xE1: (STACK_SWITCHING, "cont.bind", INDEX_INDEX, 0),
    0xE2: (STACK_SWITCHING, "suspend", INDEX, 0),
    # Immediates hwsim does not decode (None): the decoder stops here.
    0xE3: (STACK_SWITCHING, "resume", None, 0),
    0xE4: (STACK_SWITCHING, "resume_throw", None, 0),
    0xE5: (STACK_SWITCHING, "switch", None, 0),
}
# Prefix bytes whose whole opcode space is out of scope.
UNSUPPORTED_PREFIXES: dict[int, str] = {0xFE: THREADS}


def _atomic_immediates() -> dict[int, int]:
    imm = {n: MEMARG for n in list(range(0x00, 0x03)) + list(range(0x10, 0x4F))}
    imm[0x03] = ZERO_BYTE
    return imm


# Sub-opcode -> immediate kind under each out-of-scope prefix.
PREFIX_IMMEDIATES: dict[int, dict[int, int]] = {
    0xFE: _atomic_immediates(),
}

# 0xfc sub-opcodes of proposals hwsim does not implement (none has immediates).
UNSUPPORTED_FC: dict[int, tuple[str, str]] = {}

# (ref ht) and (ref null ht) (typed function references) are followed by a heap type.
REF_NON_NULL_PREFIX, REF_NULL_PREFIX = 0x64, 0x63
REF_TYPE_PREFIXES = frozenset((REF_NULL_PREFIX, REF_NON_NULL_PREFIX))
# Value-type and heap-type bytes of proposals hwsim does not implement.
UNSUPPORTED_VALTYPES: dict[int, tuple[str, str]] = {
    0x68: (STACK_SWITCHING, "contref"),
    0x75: (STACK_SWITCHING, "nullcontref"),
}
# Packed storage types of GC struct and array fields.
GC_PACKED_TYPES = frozenset((0x78, 0x77))
# Type-section forms other than func (0x60).
REC, SUB, SUB_FINAL, STRUCT, ARRAY, CONT = 0x4E, 0x50, 0x4F, 0x5F, 0x5E, 0x5D
UNSUPPORTED_TYPE_FORMS: dict[int, tuple[str, str]] = {
    CONT: (STACK_SWITCHING, "continuation type"),
}
