"""hwsim.wasm.dwarf: source lines from a module's DWARF; unreadable debug info costs the lines, nothing else.

The source map is built when a trap is reported, so whatever a module's ``.debug_*`` sections hold
must neither raise (the error contract) nor hang.  pyelftools raised AssertionError, ZeroDivisionError,
NotImplementedError and TypeError on corrupted sections, and followed a DW_AT_sibling loop forever.
"""

from __future__ import annotations

import dataclasses
import signal
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from property_scale import examples

from hwsim.driver import build_driver
from hwsim.wasm import load_module
from hwsim.wasm.dwarf import SourceMap

REPO = Path(__file__).resolve().parents[1]
DW_AT_SIBLING, DW_FORM_REF4 = 0x01, 0x13


@pytest.fixture(scope="module")
def module():
    return load_module(build_driver(REPO / "drivers" / "uart16550").read_bytes())  # built with -g


def with_section(module, name: str, data: bytes):
    return dataclasses.replace(
        module, customs=[dataclasses.replace(c, data=data) if c.name == name else c for c in module.customs]
    )


def section(module, name: str) -> bytes:
    return next(c.data for c in module.customs if c.name == name)


@contextmanager
def deadline(seconds: int):
    def expired(*_):
        raise TimeoutError(f"still running after {seconds} s")

    old = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)


def uleb(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def sibling_loop(abbrev: bytes) -> bytes:
    """The abbreviation table with a parent's first one-byte ``ref4`` attribute renamed DW_AT_sibling: its
    value, a reference to another DIE, becomes where the parent's next sibling is (a loop when it points back)."""
    pos = 0
    while True:
        code, pos = uleb(abbrev, pos)
        if code == 0:
            raise AssertionError("no abbreviation with children and a ref4 attribute")
        _tag, pos = uleb(abbrev, pos)
        children = abbrev[pos]
        pos += 1
        while True:
            at = pos
            attr, pos = uleb(abbrev, pos)
            form, pos = uleb(abbrev, pos)
            if (attr, form) == (0, 0):
                break
            if children and form == DW_FORM_REF4 and pos - at == 2 and attr != DW_AT_SIBLING:
                return abbrev[:at] + bytes([DW_AT_SIBLING]) + abbrev[at + 1 :]


def test_lines_of_the_real_build(module):
    source = SourceMap(module)
    assert source.available and source.rows
    locations = {source.locate(f.offset + 4) for f in module.funcs}
    assert any(loc is not None and loc.file.endswith("uart16550.c") for loc in locations)


def test_a_sibling_loop_costs_the_lines_and_ends(module):
    """Found by fuzzing: pyelftools walked a DW_AT_sibling that points back forever (the trap report hung)."""
    looping = with_section(module, ".debug_abbrev", sibling_loop(section(module, ".debug_abbrev")))
    with deadline(20):
        source = SourceMap(looping)
    assert not source.available and source.rows == [] and source.locate(module.funcs[0].offset) is None


def test_line_range_zero_costs_the_lines(module):
    """Found by fuzzing: a line program header whose line_range is 0 made pyelftools divide by zero."""
    lines = bytearray(section(module, ".debug_line"))
    version = int.from_bytes(lines[4:6], "little")
    assert version == 4  # unit_length, version, header_length, min_inst_length, max_ops, default_is_stmt, line_base
    lines[4 + 2 + 4 + 1 + 1 + 1 + 1] = 0
    assert not SourceMap(with_section(module, ".debug_line", bytes(lines))).available


DWARF_FUZZ = settings(max_examples=examples(100), deadline=None, suppress_health_check=[HealthCheck.too_slow])


@DWARF_FUZZ
@given(data=st.data())
def test_byte_flips_in_debug_sections_never_raise_or_hang(module, data):
    names = sorted(c.name for c in module.customs if c.name.startswith(".debug_"))
    for _ in range(data.draw(st.integers(1, 4), label="flips")):
        name = data.draw(st.sampled_from(names), label="section")
        blob = bytearray(section(module, name))
        pos = data.draw(st.integers(0, min(len(blob) - 1, 63)) | st.integers(0, len(blob) - 1), label="position")
        blob[pos] = data.draw(st.sampled_from([0x00, 0x01, 0x7F, 0x80, 0xFF]) | st.integers(0, 255), label="byte")
        module = with_section(module, name, bytes(blob))
    with deadline(20):
        source = SourceMap(module)
        for f in module.funcs:
            source.locate(f.offset + 4)
