"""bench/vs_wasm3.py: the programs run on hwsim, natively and on wasm3, agree, and give rows (no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "vs_wasm3.py"

pytest.importorskip("wasm3", reason="pywasm3 (the bench extra) is not installed")
pytest.importorskip("ziglang", reason="the programs are built with zig cc")


@pytest.mark.slow
def test_rows_and_geometric_means_for_the_bulk_memory_and_sha256_programs():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--rounds", "1", "--only", "tarheader", "sha256"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[1].split() == ["program", "hwsim", "us", "native", "us", "wasm3", "us", "hwsim/native", "hwsim/wasm3"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:5]}
    assert set(rows) == {"tarheader", "sha256"}
    assert all(float(x) > 0 for row in rows.values() for x in row)
    assert lines[-1].startswith("geometric mean: hwsim/native ")


def test_an_unknown_program_is_refused_by_name():
    out = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--rounds", "1", "--only", "nosuch"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode != 0
    assert "no such program: nosuch" in out.stderr
