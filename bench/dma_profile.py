"""Where a checked DMA-engine copy's time goes: what one copy does, counted, and a profile of many.

    python bench/dma_profile.py [--length 4096] [--copies 2000] [--profile 25]

drivers/bench's ``dma_copies(n, length)`` (bench/system.py's ``_checked_dma_rows``), sandboxed (wasm, the
IOMMU and the DMA checker) and as native firmware on the same board (instant transfers).  Per copy, from
the difference between a run of ``--copies`` copies and a run of none: the time (best of the rounds), the
device accesses, IOMMU requests, the requests that reached the DMA observers (the checker's calls; none
for a request through a validated view), views opened, TLB fills, and checkpoints of the metered code
(the driver's host calls: none per copy, map and unmap are once per run).  ``--profile N``: the N
functions with the most time of their own in a cProfile of the sandboxed copies.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import sys
import time
from dataclasses import dataclass, fields
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.board import DEFAULT_BOARD  # noqa: E402
from hwsim.driver import DriverRun, build_driver  # noqa: E402
from hwsim.driver.firmware import FirmwareRun  # noqa: E402
from hwsim.testing import make_board  # noqa: E402

DRIVER = Path(__file__).resolve().parents[1] / "drivers" / "bench"


@dataclass
class PerCopy:
    """What one copy costs (a run of n copies less a run of none, divided by n)."""

    us: float = 0.0
    mmio_accesses: float = 0.0
    iommu_requests: float = 0.0
    observed_requests: float = 0.0  # requests the DMA observers saw (the checker's calls)
    views_opened: float = 0.0
    tlb_fills: float = 0.0
    checkpoints: float = 0.0  # slow paths of the metered driver (sandboxed only)

    def format(self) -> str:
        return ", ".join(f"{f.name} {getattr(self, f.name):.2f}" for f in fields(self))


def make_runs() -> dict[str, DriverRun | FirmwareRun]:
    """The sandboxed run and the native one, each on its own default board with instant transfers; a
    counting DMA observer that vouches for everything (so views are made as without it) on each."""
    options = {"dma0": {"bandwidth": 0}}
    runs: dict[str, DriverRun | FirmwareRun] = {
        "sandboxed": DriverRun(
            make_board(DEFAULT_BOARD, options=options)[0], build_driver(DRIVER).read_bytes(), log=lambda t: None
        ),
        "native": FirmwareRun(
            make_board(DEFAULT_BOARD, options=options)[0], build_driver(DRIVER, native=True).read_bytes()
        ),
    }
    for run in runs.values():
        iommu = run.system.iommu
        iommu.observed = 0  # type: ignore[union-attr]

        def count(*_request, iommu=iommu) -> None:
            iommu.observed += 1

        iommu.add_dma_observer(count, vouch=lambda *_range: True)  # type: ignore[union-attr]
    return runs


def _counters(run) -> list[float]:
    machine, iommu = run.system.machine, run.system.iommu
    cpu_time = getattr(run, "cpu_time", None)
    return [
        machine.mmio_accesses,
        iommu.stats.requests,
        iommu.observed,
        iommu.stats.views,
        machine.fills,
        cpu_time.slow_paths if cpu_time is not None else 0,
    ]


def per_copy(run, copies: int, length: int, rounds: int) -> PerCopy:
    """Time (best of ``rounds``) and counts of one copy of ``length`` bytes."""

    def once(n: int) -> tuple[float, list[float]]:
        before = _counters(run)
        t = time.perf_counter()
        report = run.run("dma_copies", (n, length))
        dt = time.perf_counter() - t
        if report.result != 0:
            raise SystemExit(f"dma_copies({n}, {length}) failed: {report.format()}")
        return dt, [a - b for a, b in zip(_counters(run), before)]

    once(1)  # (the first run pays for things made once)
    best, counts = float("inf"), []
    for _ in range(rounds):
        t0, c0 = once(0)
        tn, cn = once(copies)
        if tn - t0 < best:
            best, counts = tn - t0, [(b - a) / copies for a, b in zip(c0, cn)]
    return PerCopy(best / copies * 1e6, *counts)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--length", type=int, default=4096, help="bytes per copy (at most 65536)")
    ap.add_argument("--copies", type=int, default=2000, help="copies per timed run")
    ap.add_argument("--rounds", type=int, default=5, help="timed rounds (best of)")
    ap.add_argument("--profile", type=int, default=0, help="print the N functions with the most own time")
    args = ap.parse_args()
    runs = make_runs()
    for name, run in runs.items():
        print(f"{name:9} per copy: {per_copy(run, args.copies, args.length, args.rounds).format()}", flush=True)
    if args.profile:
        profile = cProfile.Profile()
        profile.enable()
        runs["sandboxed"].run("dma_copies", (args.copies, args.length))
        profile.disable()
        print(f"\nsandboxed, {args.copies} copies under cProfile (its overhead inflates every call):")
        pstats.Stats(profile, stream=sys.stdout).sort_stats("tottime").print_stats(args.profile)


if __name__ == "__main__":
    main()
