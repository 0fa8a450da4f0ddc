"""Exploration speed: seeded runs per second of a driver, beside one plain run's cost, in one process.

    python bench/explore.py [--runs N]

Each explored seed builds a fresh board (machine, RAM, devices, clock) and instantiates the driver's
module, compiled once for all seeds.  The ceiling printed beside it is the same driver run on a board
built once (the run alone, no rebuild): the ratio is what a fresh machine per seed costs.  Issue 14's
target: at least 20 runs/s for drivers/dma_copy.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.board import DEFAULT_BOARD, load_board  # noqa: E402
from hwsim.driver import DriverRun, build_driver  # noqa: E402
from hwsim.driver.explore import explore  # noqa: E402
from hwsim.runtime import api  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    board = load_board(DEFAULT_BOARD)
    print(f"{'driver':<28} {'explore runs/s':>15} {'run alone /s':>13} {'ratio':>6}")
    for name in ("dma_copy", "examples/timer_irq"):
        wasm = build_driver(ROOT / "drivers" / name).read_bytes()
        engine = api.Engine()
        explored, alone = 0.0, 0.0
        for _ in range(args.repeat):  # interleaved: explore, then runs alone, best of each
            result = explore(board, wasm, range(args.runs), engine=engine)
            explored = max(explored, result.runs_per_second)
            module = api.Module(engine, wasm)
            running = 0.0  # the runs alone: no board build, no instantiation
            for _ in range(args.runs // 4):
                system = board.build(options={"uart0": {"backend": "memory"}})
                run = DriverRun(system, module, engine=engine, log=lambda t: None)
                t = time.perf_counter()
                run.run()
                running += time.perf_counter() - t
            alone = max(alone, (args.runs // 4) / running if running > 0 else 0.0)
        print(f"{name:<28} {explored:15.1f} {alone:13.1f} {explored / alone if alone else 0:6.2f}")


if __name__ == "__main__":
    main()
