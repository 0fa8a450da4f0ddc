"""bench/system.py: every path runs and gives a row (shape only: no timing is asserted)."""

from __future__ import annotations

import importlib.util
import math
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


def test_only_picks_paths_by_name_in_the_tables_order():
    assert [p.__name__ for p in bench.select("tlb_miss, wasm_to_host")] == ["wasm_to_host", "tlb_miss"]
    assert bench.select(None) == bench.PATHS


@pytest.mark.parametrize("only", ["tlb_mis", "", ","])
def test_only_refuses_an_unknown_path_and_lists_the_paths(only):
    with pytest.raises(SystemExit, match=r"--only: unknown path .*; the paths: wasm_to_host, host_to_wasm"):
        bench.select(only)


def test_dma_profile_counts_what_one_checked_copy_does():
    """bench/dma_profile.py: per copy, 8 device accesses and 2 IOMMU requests, sandboxed and native; the
    sandboxed engine's requests reach the DMA observers (the checker) only for the first two copies of a run
    (the second opens the views the rest go through), the native run's every time (Bare mode: no views)."""
    spec = importlib.util.spec_from_file_location("bench_dma_profile", BENCH.with_name("dma_profile.py"))
    assert spec is not None and spec.loader is not None
    profile = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = profile
    spec.loader.exec_module(profile)
    runs = profile.make_runs()
    copies = 50
    sandboxed = profile.per_copy(runs["sandboxed"], copies, 4096, rounds=1)
    native = profile.per_copy(runs["native"], copies, 4096, rounds=1)
    assert (sandboxed.mmio_accesses, sandboxed.iommu_requests) == (8, 2) and sandboxed.tlb_fills < 1
    assert sandboxed.observed_requests * copies == 4 and sandboxed.views_opened * copies == 2
    assert (native.mmio_accesses, native.iommu_requests, native.observed_requests, native.views_opened) == (8, 2, 2, 0)
    # (us is a difference of two timings: it may come out negative on a loaded machine; no test asserts a time)
    assert math.isfinite(sandboxed.us) and math.isfinite(native.us) and "mmio_accesses 8.00" in sandboxed.format()
