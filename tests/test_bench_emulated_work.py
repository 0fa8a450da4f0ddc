"""bench/emulated_work.py: counts of emulated work per program on hwsim and natively (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "emulated_work.py"

pytest.importorskip("ziglang", reason="the programs are built with zig cc")


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=300)


def test_both_builds_of_a_program_count_the_same_kinds_of_work():
    out = _run("--only", "ringbuf")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].split() == ["program", "TBs", "memory", "ALU", "FP", "mul/div", "us/unit"]
    rows = {line.split()[0]: [float(x) for x in line.split()[1:]] for line in lines[1:3]}
    assert set(rows) == {"ringbuf/hwsim", "ringbuf/native"}
    for tbs, memory, alu, fp, _muldiv, us in rows.values():
        assert tbs > 0 and memory > 0 and alu > 0 and fp == 0 and us > 0  # an integer program
    assert len(lines) == 3  # two points: too few to fit five costs, so no fit printed


def test_an_unknown_program_is_refused_by_name():
    out = _run("--only", "nosuch")
    assert out.returncode != 0
    assert "no such program: nosuch" in out.stderr
