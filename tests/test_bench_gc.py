"""bench/gc.py: both engines run the workloads and agree on their results, the collector runs under the
bench's heap limit and its pauses are timed, and the report has its rows (shape only: no timing is asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("wasmtime")

BENCH = Path(__file__).resolve().parents[1] / "bench" / "gc.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(BENCH), *args], capture_output=True, text=True, timeout=600)


def test_the_report_has_throughput_latency_and_pause_rows():
    out = run("--rounds", "1", "--calls", "2", "--heap", str(64 << 10))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0] == "hwsim GC heap limit 65536 bytes; 1 rounds x 2 calls, best round"
    for name in ("trees", "churn"):
        (row,) = [line for line in lines if line.startswith(f"{name} ")]
        assert row.split()[1] == ("2540" if name == "trees" else "2561") and row.endswith("x")
        assert any(line.startswith(f"hwsim {name}") for line in lines)
        assert any(line.startswith(f"wasmtime {name}") for line in lines)
    (pauses,) = [line for line in lines if line.startswith("hwsim collections: ")]
    assert int(pauses.split()[2]) > 0 and "pause median" in pauses


def test_a_heap_that_never_fills_says_so():
    out = run("--rounds", "1", "--calls", "1", "--heap", str(64 << 20))
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "hwsim collections: none (the heap limit was never reached)"


def test_bad_arguments_are_refused():
    out = run("--rounds", "0")
    assert out.returncode == 2
    assert "--rounds, --calls and --heap must be positive" in out.stderr
