"""hwsim.runtime.segments: far pointers (selector:offset) checked inline against the segment table."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.compiler.traps import TrapCode
from hwsim.runtime import api
from hwsim.runtime.segments import SegmentError

FAR = """
  (import "hwsim:far" "load_u8" (func $load_u8 (param i64) (result i32)))
  (import "hwsim:far" "load_u16" (func $load_u16 (param i64) (result i32)))
  (import "hwsim:far" "load_i32" (func $load_i32 (param i64) (result i32)))
  (import "hwsim:far" "load_i64" (func $load_i64 (param i64) (result i64)))
  (import "hwsim:far" "store_u8" (func $store_u8 (param i64 i32)))
  (import "hwsim:far" "store_i32" (func $store_i32 (param i64 i32)))
  (import "hwsim:far" "store_i64" (func $store_i64 (param i64 i64)))
  (import "hwsim:far" "grant" (func $grant (param i32 i32 i32 i32) (result i32)))
  (import "hwsim:far" "revoke" (func $revoke (param i32)))
  (memory $m0 (export "m0") 1)
  (memory $m1 (export "m1") 1)
  (table 1 funcref) (elem (i32.const 0) $load_i32)
  (func (export "grant") (param i32 i32 i32 i32) (result i32)
    (call $grant (local.get 0) (local.get 1) (local.get 2) (local.get 3)))
  (func (export "revoke") (param i32) (call $revoke (local.get 0)))
  (func (export "load_u8") (param i64) (result i32) (call $load_u8 (local.get 0)))
  (func (export "load_u16") (param i64) (result i32) (call $load_u16 (local.get 0)))
  (func (export "load_i32") (param i64) (result i32) (call $load_i32 (local.get 0)))
  (func (export "load_i64") (param i64) (result i64) (call $load_i64 (local.get 0)))
  (func (export "store_u8") (param i64 i32) (call $store_u8 (local.get 0) (local.get 1)))
  (func (export "store_i32") (param i64 i32) (call $store_i32 (local.get 0) (local.get 1)))
  (func (export "store_i64") (param i64 i64) (call $store_i64 (local.get 0) (local.get 1)))
  (func (export "indirect") (param i64) (result i32) (call_indirect (param i64) (result i32) (local.get 0) (i32.const 0)))
"""


def far(selector: int, offset: int) -> int:
    value = selector << 32 | offset
    return value - (1 << 64) if value >> 63 else value


class Far:
    def __init__(self) -> None:
        self.engine = api.Engine()
        self.store = api.Store(self.engine)
        self.instance = api.Linker(self.engine).instantiate(self.store, api.Module(self.engine, f"(module {FAR})"))
        self.ex = self.instance.exports(self.store)

    def __call__(self, name, *args):
        return self.ex[name](self.store, *args)

    def fault(self, name, *args) -> str:
        with pytest.raises(api.Trap) as info:
            self(name, *args)
        assert info.value.code is TrapCode.SEGMENT_FAULT
        return str(info.value)


def test_far_pointers_reach_two_memories_through_their_segments():
    f = Far()
    m0, m1 = f.ex["m0"], f.ex["m1"]
    m0.write(f.store, b"\x11\x22\x33\x44", 0x100)
    m1.write(f.store, b"\xaa\xbb\xcc\xdd\xee\xff\x01\x02", 0x800)
    s0 = f("grant", 0, 0x100, 0x10, 1)  # read-only, memory 0
    s1 = f("grant", 1, 0x800, 0x100, 3)  # read-write, memory 1
    assert (s0, s1) == (1, 2)
    assert f("load_i32", far(s0, 0)) == 0x44332211
    assert f("load_u16", far(s1, 2)) == 0xDDCC
    assert f("load_u8", far(s1, 4)) == 0xEE
    assert f("load_i32", far(s1, 0)) == 0xDDCCBBAA - (1 << 32)  # i32 results are signed
    assert f("load_i64", far(s1, 0)) == 0x0201_FFEE_DDCC_BBAA
    f("store_i32", far(s1, 0x10), 7)
    f("store_i64", far(s1, 0xF8), -1)
    assert m1.read(f.store, 0x810, 0x814) == b"\x07\x00\x00\x00"
    assert m1.read(f.store, 0x8F8, 0x900) == b"\xff" * 8
    assert f("indirect", far(s0, 0)) == 0x44332211  # through a table: the host-side record


@pytest.mark.parametrize(
    "args, reason",
    [
        (("load_i32", far(0, 0)), "selector 0 is not granted (a null far pointer)"),
        (("load_i32", far(300, 0)), "selector 300 is out of range (the table has 256)"),
        (("load_i32", far(7, 0)), "selector 7 is not granted"),
        (
            ("store_u8", far(1, 0), 1),
            "1-byte store at selector 1, offset 0x0: no write right (segment 1 is memory 0 [0x100, +0x10) read-only)",
        ),
        (("load_i32", far(1, 0xD)), "offset + size 0x11 is past the limit 0x10"),
        (("load_i64", far(2, 0xFC)), "offset + size 0x104 is past the limit 0x100"),
        (("load_u8", far(2, 0xFFFF_FFFF)), "past the limit"),
    ],
)
def test_segment_faults_name_selector_offset_and_reason(args, reason):
    f = Far()
    f("grant", 0, 0x100, 0x10, 1)
    f("grant", 1, 0x800, 0x100, 3)
    assert reason in f.fault(*args)


def test_revoked_selectors_fault_and_grants_are_checked():
    f = Far()
    s = f("grant", 0, 0, 64, 3)
    f("store_i32", far(s, 0), 5)
    f("revoke", s)
    assert "is not granted" in f.fault("load_i32", far(s, 0))
    with pytest.raises(api.Trap, match="is not inside memory 0"):
        f("grant", 0, 65536 - 8, 16, 3)
    with pytest.raises(api.Trap, match="memory 2 does not exist"):
        f("grant", 2, 0, 16, 3)
    with pytest.raises(api.Trap, match="rights must be 1"):
        f("grant", 0, 0, 16, 0)
    with pytest.raises(api.Trap, match="selector 9 is not granted"):
        f("revoke", 9)


def test_host_grants():
    f = Far()
    sel = f.instance.grant_segment(f.store, f.ex["m1"], 0x40, 8, rights=1)
    f.ex["m1"].write(f.store, b"\x05\x00\x00\x00", 0x44)
    assert f("load_i32", far(sel, 4)) == 5
    f.instance.revoke_segment(f.store, sel)
    with pytest.raises(SegmentError):
        f.instance.revoke_segment(f.store, sel)


PATTERN = [bytes((i * 7 + k * 13) & 0xFF for i in range(65536)) for k in range(2)]


@pytest.fixture(scope="module")
def property_far():
    f = Far()
    for k, name in enumerate(("m0", "m1")):
        f.ex[name].write(f.store, PATTERN[k], 0)
    grants = {
        f("grant", 0, 0x1000, 0x100, 1): (0, 0x1000, 0x100, 1),
        f("grant", 1, 0x2000, 0x40, 3): (1, 0x2000, 0x40, 3),
        f("grant", 1, 0xFFF0, 0x10, 2): (1, 0xFFF0, 0x10, 2),
    }
    return f, grants


SIZES = {"load_u8": 1, "load_u16": 2, "load_i32": 4, "load_i64": 8}


@settings(max_examples=examples(300), deadline=None)
@given(
    selector=st.one_of(st.integers(0, 5), st.integers(0, (1 << 32) - 1)),
    offset=st.one_of(st.integers(0, 0x110), st.integers(0, (1 << 32) - 1)),
    op=st.sampled_from(sorted(SIZES)),
)
def test_no_far_pointer_reaches_outside_its_granted_segments(property_far, selector, offset, op):
    """Any 64-bit value: either the access is inside a granted segment with the right, and reads
    exactly those bytes, or it is a segment fault.  Memories are never written."""
    f, grants = property_far
    size = SIZES[op]
    g = grants.get(selector)
    ok = g is not None and g[3] & 1 and offset + size <= g[2]
    if ok:
        value = int.from_bytes(PATTERN[g[0]][g[1] + offset : g[1] + offset + size], "little")
        got = f(op, far(selector, offset))
        mask = (1 << (8 * size)) - 1
        assert got & mask == value
    else:
        f.fault(op, far(selector, offset))


@settings(max_examples=examples(150), deadline=None)
@given(selector=st.integers(0, 6), offset=st.one_of(st.integers(0, 0x110), st.integers(0, (1 << 32) - 1)))
def test_far_stores_change_only_granted_writable_bytes(property_far, selector, offset):
    f, grants = property_far
    g = grants.get(selector)
    ok = g is not None and g[3] & 2 and offset + 4 <= g[2]
    before = [f.ex[n].read(f.store, 0, 65536) for n in ("m0", "m1")]
    if ok:
        f("store_i32", far(selector, offset), 0x5A5A5A5A)
    else:
        f.fault("store_i32", far(selector, offset), 0x5A5A5A5A)
    after = [f.ex[n].read(f.store, 0, 65536) for n in ("m0", "m1")]
    changed = [(k, i) for k in range(2) for i in range(65536) if before[k][i] != after[k][i]]
    if ok:
        target = g[1] + offset
        assert all(k == g[0] and target <= i < target + 4 for k, i in changed)
        f.ex[("m0", "m1")[g[0]]].write(f.store, bytes(before[g[0]][target : target + 4]), target)  # restore
    else:
        assert changed == []
