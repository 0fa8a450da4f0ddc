"""bench/system.py: every path runs and gives a row (shape only: no timing is asserted)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "system.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_system", BENCH)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


bench = load_bench()


@pytest.mark.parametrize("path", bench.PATHS, ids=[p.__name__ for p in bench.PATHS])
def test_each_path_gives_a_row_with_a_target(path):
    made = path(1, True)
    rows = made if isinstance(made, list) else [made]  # (a path sharing its setup gives several rows)
    assert rows
    for row in rows:
        assert isinstance(row, bench.Row) and row.path
        assert row.ceiling_s > 0 and row.hwsim_s > 0
        assert (row.max_ratio is None) != (row.max_s is None)  # one target, a ratio or a time
        assert row.target.startswith("<= ") and row.met in (True, False)


def test_the_table_lists_the_calls_first():
    assert [p.__name__ for p in bench.PATHS[:3]] == ["wasm_to_host", "host_to_wasm", "instantiation"]
