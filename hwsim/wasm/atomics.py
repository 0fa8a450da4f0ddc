"""The threads proposal's atomic instructions as data: the ``0xfe`` opcode space.

An atomic opcode is ``0xfe00 | n`` for sub-opcode ``n`` (``i32.atomic.load``
is ``0xfe10``).  Every atomic instruction except ``atomic.fence`` takes a
memarg whose alignment must be exactly the access's natural alignment
(``size_log2``); ``atomic.fence`` takes one reserved zero byte.  Read-modify-write
groups follow one layout, seven widths per operator::

    0xfe1e..0x24 add   0xfe25..0x2b sub   0xfe2c..0x32 and   0xfe33..0x39 or
    0xfe3a..0x40 xor   0xfe41..0x47 xchg  0xfe48..0x4e cmpxchg
    each: i32.rmw, i64.rmw, i32.rmw8_u, i32.rmw16_u, i64.rmw8_u, i64.rmw16_u, i64.rmw32_u

Narrow forms zero-extend the value they read; narrow stores and read-modify-writes
use the low bits of their operands (``cmpxchg`` compares the wrapped expected value).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from .types import I32, I64

PREFIX_FE = 0xFE


class AtomicKind(enum.Enum):
    NOTIFY = "notify"  # [addr i32] -> [i32]
    WAIT = "wait"  # [addr expected timeout:i64] -> [i32]
    FENCE = "fence"  # [] -> []
    LOAD = "load"  # [addr] -> [t]
    STORE = "store"  # [addr t] -> []
    RMW = "rmw"  # [addr t] -> [t]
    CMPXCHG = "cmpxchg"  # [addr t t] -> [t]


class RmwOp(enum.Enum):
    """The operator of a read-modify-write (its text-format spelling)."""

    ADD = "add"
    SUB = "sub"
    AND = "and"
    OR = "or"
    XOR = "xor"
    XCHG = "xchg"


@dataclass(frozen=True, slots=True)
class AtomicOp:
    """One atomic instruction: its name, kind, value type, log2 of its access size, operator (RMW only)."""

    name: str
    kind: AtomicKind
    valtype: int
    size_log2: int
    rmw: RmwOp | None = None

    @property
    def size(self) -> int:
        return 1 << self.size_log2


MEMORY_ATOMIC_NOTIFY = 0xFE00
MEMORY_ATOMIC_WAIT32 = 0xFE01
MEMORY_ATOMIC_WAIT64 = 0xFE02
ATOMIC_FENCE = 0xFE03

# The seven widths of every load, store and read-modify-write group: (value type, log2 size, suffix-style).
_WIDTHS = ((I32, 2, ""), (I64, 3, ""), (I32, 0, "8"), (I32, 1, "16"), (I64, 0, "8"), (I64, 1, "16"), (I64, 2, "32"))


def _build() -> dict[int, AtomicOp]:
    ops = {
        MEMORY_ATOMIC_NOTIFY: AtomicOp("memory.atomic.notify", AtomicKind.NOTIFY, I32, 2),
        MEMORY_ATOMIC_WAIT32: AtomicOp("memory.atomic.wait32", AtomicKind.WAIT, I32, 2),
        MEMORY_ATOMIC_WAIT64: AtomicOp("memory.atomic.wait64", AtomicKind.WAIT, I64, 3),
        ATOMIC_FENCE: AtomicOp("atomic.fence", AtomicKind.FENCE, I32, 0),
    }
    for i, (t, log2, bits) in enumerate(_WIDTHS):
        prefix = "i32" if t == I32 else "i64"
        ops[0xFE10 + i] = AtomicOp(f"{prefix}.atomic.load{bits}{'_u' if bits else ''}", AtomicKind.LOAD, t, log2)
        ops[0xFE17 + i] = AtomicOp(f"{prefix}.atomic.store{bits}", AtomicKind.STORE, t, log2)
    groups = [(rmw, AtomicKind.RMW) for rmw in RmwOp] + [(None, AtomicKind.CMPXCHG)]
    for g, (rmw, kind) in enumerate(groups):
        verb = rmw.value if rmw is not None else "cmpxchg"
        for i, (t, log2, bits) in enumerate(_WIDTHS):
            prefix = "i32" if t == I32 else "i64"
            name = f"{prefix}.atomic.rmw{bits}.{verb}{'_u' if bits else ''}"
            ops[0xFE1E + 7 * g + i] = AtomicOp(name, kind, t, log2, rmw)
    return ops


# opcode -> the instruction, for every opcode of the threads proposal.
ATOMICS: dict[int, AtomicOp] = _build()


def signature(a: AtomicOp, addr: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Operand and result types of ``a`` on a memory whose address type is ``addr``."""
    t = a.valtype
    if a.kind is AtomicKind.NOTIFY:
        return (addr, I32), (I32,)
    if a.kind is AtomicKind.WAIT:
        return (addr, t, I64), (I32,)
    if a.kind is AtomicKind.FENCE:
        return (), ()
    if a.kind is AtomicKind.LOAD:
        return (addr,), (t,)
    if a.kind is AtomicKind.STORE:
        return (addr, t), ()
    if a.kind is AtomicKind.RMW:
        return (addr, t), (t,)
    return (addr, t, t), (t,)
