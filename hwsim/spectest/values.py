"""WebAssembly values as the spec-test scripts write them, and the assertion comparison.

Values are exact: integers are unsigned bit patterns, floats are IEEE bit
patterns (so NaN payloads and the sign of zero survive every round trip),
references are null or non-null.  ``(ref.extern N)`` is ``Value("externref", N)``;
a non-null ``funcref`` carries whatever handle the engine returned.

Expected results (``assert_return``) are :class:`Value` (exact match) or one
of the patterns: :class:`NanPattern` (``nan:canonical`` / ``nan:arithmetic``),
:class:`RefPattern` (``(ref.func)``: any non-null funcref; ``(ref.null)``: any
null reference) and :class:`Either` (``(either v1 v2 ...)``).

NaN patterns, as the specification defines them: a canonical NaN has only the
most significant mantissa bit set (``0x7fc00000`` / ``0xffc00000`` for f32); an
arithmetic NaN has that bit set and any payload in the others.  Either sign.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import HwsimError

NUM_BITS = {"i32": 32, "i64": 64, "f32": 32, "f64": 64, "v128": 128}
LANE_BITS = {"i8": 8, "i16": 16, "i32": 32, "i64": 64, "f32": 32, "f64": 64}
REF_TYPES = ("funcref", "externref", "exnref", "anyref")
# GC's types of the any hierarchy, as the scripts name them: a null of any of them is an anyref null.
ANY_HIERARCHY = ("anyref", "eqref", "i31ref", "structref", "arrayref", "nullref")
# The bottoms' null references, as the null of their hierarchy.
_NULL_OF = {"nullref": "anyref", "nullfuncref": "funcref", "nullexternref": "externref", "nullexnref": "exnref"}

# Float layouts: (exponent mask, mantissa mask, quiet bit).
FLOAT_LAYOUT = {
    "f32": (0x7F80_0000, 0x007F_FFFF, 0x0040_0000),
    "f64": (0x7FF0_0000_0000_0000, 0x000F_FFFF_FFFF_FFFF, 0x0008_0000_0000_0000),
}


@dataclass(frozen=True, slots=True)
class I31Value:
    """An i31 reference an engine returned: its 31 bits, unsigned."""

    bits: int

    def __str__(self) -> str:
        return f"ref.i31 {self.bits:#x}"


@dataclass(frozen=True, slots=True)
class GcObject:
    """A struct or array object an engine returned: its kind (``struct`` or ``array``) and address."""

    kind: str
    address: int

    def __str__(self) -> str:
        return f"ref.{self.kind} @{self.address:#x}"


@dataclass(frozen=True, slots=True)
class GcPattern:
    """``(ref.any)``, ``(ref.eq)``, ``(ref.i31)``, ``(ref.struct)``, ``(ref.array)``: any non-null reference of
    that abstract heap type (``type`` is anyref, eqref, ...)."""

    type: str

    def __str__(self) -> str:
        return f"{self.type} (any non-null)"

    def accepts(self, actual: Value) -> bool:
        if actual.type != "anyref" or actual.value is None:
            return False
        if self.type == "anyref":
            return True
        value = actual.value
        if self.type == "i31ref":
            return isinstance(value, I31Value)
        if self.type == "eqref":
            return isinstance(value, (I31Value, GcObject))
        return isinstance(value, GcObject) and self.type == f"{value.kind}ref"


class UnsupportedValue(HwsimError):
    """A value or pattern of a type outside hwsim's scope (GC references, ...)."""


@dataclass(frozen=True, slots=True)
class Value:
    """One WebAssembly value: ``type`` is i32, i64, f32, f64, v128, funcref, externref or exnref."""

    type: str
    value: object  # int bit pattern; for references None (null), an int (externref) or an engine handle

    @property
    def is_null(self) -> bool:
        return self.type in REF_TYPES and self.value is None

    def __str__(self) -> str:
        if self.type in ("i32", "i64"):
            return f"{self.type}:{self.value:#x}"
        if self.type == "v128":
            assert isinstance(self.value, int)  # 128 bits
            return f"v128:{self.value:#034x}"
        if self.type in FLOAT_LAYOUT:
            assert isinstance(self.value, int)  # a number's bit pattern
            return f"{self.type}:{self.value:#x} ({describe_float(self.type, self.value)})"
        if self.value is None:
            return f"{self.type}:null"
        if self.type == "externref":
            return f"ref.extern {self.value}"
        if self.type == "anyref":
            return str(self.value) if isinstance(self.value, (I31Value, GcObject)) else f"ref.host {self.value}"
        return f"{self.type}:non-null"


@dataclass(frozen=True, slots=True)
class NanPattern:
    type: str  # f32 or f64
    kind: str  # canonical or arithmetic

    def __str__(self) -> str:
        return f"{self.type}:nan:{self.kind}"


@dataclass(frozen=True, slots=True)
class RefPattern:
    """``(ref.func)`` (type funcref, any non-null) or ``(ref.null)`` (type None, any null reference)."""

    type: str | None

    def __str__(self) -> str:
        return "ref.null (any)" if self.type is None else f"{self.type} (any non-null)"


@dataclass(frozen=True, slots=True)
class LanePattern:
    """A v128 expectation with a NaN pattern in some lane: ``lanes`` holds each lane's bit pattern (int)
    or a :class:`NanPattern`."""

    lane_type: str
    lanes: tuple

    def __str__(self) -> str:
        shown = (str(x) if isinstance(x, NanPattern) else f"{x:#x}" for x in self.lanes)
        return f"v128 {self.lane_type} [" + " ".join(shown) + "]"


@dataclass(frozen=True, slots=True)
class Either:
    alternatives: tuple

    def __str__(self) -> str:
        return "either(" + ", ".join(str(a) for a in self.alternatives) + ")"


def describe_float(t: str, bits: int) -> str:
    import struct

    exp_mask, mant_mask, quiet = FLOAT_LAYOUT[t]
    if bits & exp_mask == exp_mask and bits & mant_mask:
        sign = "-" if bits >> (NUM_BITS[t] - 1) else ""
        return f"{sign}nan:{bits & mant_mask:#x}"
    fmt = "<f" if t == "f32" else "<d"
    raw = bits.to_bytes(NUM_BITS[t] // 8, "little")
    return repr(struct.unpack(fmt, raw)[0])


def is_nan(t: str, bits: int) -> bool:
    exp_mask, mant_mask, _ = FLOAT_LAYOUT[t]
    return bits & exp_mask == exp_mask and bits & mant_mask != 0


def is_canonical_nan(t: str, bits: int) -> bool:
    exp_mask, mant_mask, quiet = FLOAT_LAYOUT[t]
    return bits & exp_mask == exp_mask and bits & mant_mask == quiet


def is_arithmetic_nan(t: str, bits: int) -> bool:
    exp_mask, _, quiet = FLOAT_LAYOUT[t]
    return bits & exp_mask == exp_mask and bits & quiet != 0


def parse_value(obj: dict) -> Value:
    """An argument (or exact expected value) in wasm-tools' JSON form: ``{"type": "i32", "value": "42"}``."""
    t = obj.get("type")
    v = obj.get("value")
    if t in NUM_BITS and t != "v128":
        # Decimal bit patterns; wasm-tools writes some integers signed ("-1").
        n = NUM_BITS[t]
        try:
            if not isinstance(v, str):
                raise TypeError(v)
            number = int(v, 10)
        except (TypeError, ValueError):
            raise UnsupportedValue(f"cannot read {t} value {v!r}") from None
        if not -(1 << (n - 1)) <= number < (1 << n):
            raise UnsupportedValue(f"{t} value {v} does not fit in {n} bits")
        return Value(t, number & ((1 << n) - 1))
    if t == "externref" or t == "anyref":  # (ref.extern N), (ref.host N)
        if v == "null":
            return Value(t, None)
        if isinstance(v, str) and v.isdigit():
            return Value(t, int(v))
        raise UnsupportedValue(f"cannot read {t} value {v!r}")
    if t in ANY_HIERARCHY and v == "null":
        return Value("anyref", None)
    if t in _NULL_OF and v in ("null", None):
        return Value(_NULL_OF[t], None)
    if t in ("funcref", "exnref") and v == "null":
        return Value(t, None)
    if t == "v128":
        lanes = _v128_lanes(obj)
        if any(isinstance(x, NanPattern) for x in lanes):
            raise UnsupportedValue(f"a NaN pattern in v128 value {v!r} (only an expectation may hold one)")
        width = LANE_BITS[obj["lane_type"]]
        return Value(t, sum(x << (width * i) for i, x in enumerate(lanes)))
    raise UnsupportedValue(f"value of type {t} ({v!r}) is outside hwsim's scope")


def _v128_lanes(obj: dict) -> list:
    """The lanes of a v128 in wasm-tools' JSON form: bit patterns, or NaN patterns for float lanes."""
    lane_type, v = obj.get("lane_type"), obj.get("value")
    if lane_type not in LANE_BITS or not isinstance(v, list) or len(v) * LANE_BITS[lane_type] != 128:
        raise UnsupportedValue(f"cannot read v128 value {v!r} with lanes {lane_type!r}")
    width = LANE_BITS[lane_type]
    lanes: list = []
    for text in v:
        if lane_type in FLOAT_LAYOUT and text in ("nan:canonical", "nan:arithmetic"):
            lanes.append(NanPattern(lane_type, text.split(":")[1]))
            continue
        try:
            number = int(text, 10)
        except (TypeError, ValueError):
            raise UnsupportedValue(f"cannot read {lane_type} lane {text!r}") from None
        if not -(1 << (width - 1)) <= number < (1 << width):
            raise UnsupportedValue(f"{lane_type} lane {text} does not fit in {width} bits")
        lanes.append(number & ((1 << width) - 1))
    return lanes


def parse_expected(obj: dict):
    """An ``assert_return`` expectation: a Value or a pattern."""
    t = obj.get("type")
    v = obj.get("value")
    if t == "either":
        return Either(tuple(parse_expected(alt) for alt in obj.get("values", [])))
    if t in FLOAT_LAYOUT and v in ("nan:canonical", "nan:arithmetic"):
        return NanPattern(t, v.split(":")[1])
    if t in ("funcref", "exnref", "externref") and "value" not in obj:
        return RefPattern(t)
    if t in ANY_HIERARCHY and t != "nullref" and "value" not in obj:
        return GcPattern(t)
    if t == "refnull" and "value" not in obj:
        return RefPattern(None)
    if t == "v128":
        lanes = _v128_lanes(obj)
        if any(isinstance(x, NanPattern) for x in lanes):
            return LanePattern(obj["lane_type"], tuple(lanes))
    return parse_value(obj)


def matches(expected, actual: Value) -> bool:
    """Whether ``actual`` satisfies ``expected`` (a Value or pattern), per the spec-test rules."""
    if isinstance(expected, Either):
        return any(matches(alt, actual) for alt in expected.alternatives)
    if isinstance(expected, NanPattern):
        if actual.type != expected.type:
            return False
        assert isinstance(actual.value, int)  # a float's bit pattern
        if expected.kind == "canonical":
            return is_canonical_nan(actual.type, actual.value)
        return is_arithmetic_nan(actual.type, actual.value)
    if isinstance(expected, LanePattern):
        if actual.type != "v128":
            return False
        assert isinstance(actual.value, int)  # 128 bits
        width = LANE_BITS[expected.lane_type]
        for i, lane in enumerate(expected.lanes):
            bits = (actual.value >> (width * i)) & ((1 << width) - 1)
            if isinstance(lane, NanPattern):
                if not matches(lane, Value(lane.type, bits)):
                    return False
            elif lane != bits:
                return False
        return True
    if isinstance(expected, GcPattern):
        return expected.accepts(actual)
    if isinstance(expected, RefPattern):
        if expected.type is None:
            return actual.type in REF_TYPES and actual.value is None
        return actual.type == expected.type and actual.value is not None
    if expected.type != actual.type:
        return False
    if expected.type in NUM_BITS:
        return expected.value == actual.value
    if expected.value is None or actual.value is None:
        return expected.value is None and actual.value is None
    if expected.type == "externref" or expected.type == "anyref":
        return expected.value == actual.value
    return True  # two non-null funcrefs (or exnrefs): the scripts never name a particular one


def results_match(expected: list, actual: list[Value]) -> bool:
    return len(expected) == len(actual) and all(matches(e, a) for e, a in zip(expected, actual))
