"""What reverse execution costs: the instruction count, and one reverse step (a run from the start).

    python bench/replay.py [--rounds N]

For ``drivers/virtio_blk`` on the default board, side by side, round after round (best of each kept):

- a whole run without a debugger, and with the position counter on (what ``--gdb`` adds to every
  run: a code hook on every instruction, ``DebugPort.count_instructions``): their ratio;
- a loop of 10^5 iterations (a driver computing), plain and counted: the cost per instruction;
- one reverse step from the end of the run: what the server does for ``bs``, a new board and driver
  built, run from the start to the position before the last instruction (debug/replay.py), as a
  ratio to the plain run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hwsim.board import DEFAULT_BOARD, load_board  # noqa: E402
from hwsim.driver import DriverRun, build_driver  # noqa: E402
from hwsim.runtime.api import _wat_to_wasm  # noqa: E402

LOOP = """
(module
  (memory 1)
  (func (export "probe") (result i32) (local $i i32)
    (loop $l
      (br_if $l (i32.ne (local.tee $i (i32.add (local.get $i) (i32.const 1))) (i32.const 100000))))
    (local.get $i)))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    data = build_driver(ROOT / "drivers" / "virtio_blk").read_bytes()
    board = load_board(DEFAULT_BOARD)
    with tempfile.TemporaryDirectory() as tmp:
        image = Path(tmp) / "disk.img"
        image.write_bytes(bytes(64 << 10))
        options = {"blk0": {"image": str(image)}}

        def run(count: bool, stop_at: int | None = None) -> tuple[float, int]:
            start = time.perf_counter()
            system = board.build(options=options)
            driver = DriverRun(system, data, log=lambda text: None)
            debug = system.machine.debug
            stopped: list[int] = []
            detach = debug.attach(lambda stop: stopped.append(debug.icount))
            if count:
                debug.count_instructions()
            if stop_at is not None:
                debug.stop_at(stop_at)
            driver.run("probe")
            seconds = time.perf_counter() - start
            detach()
            assert stop_at is None or stopped == [stop_at], stopped
            return seconds, debug.icount

        run(False)  # compile and cache
        _, total = run(True)
        best = {"plain": 1e9, "counted": 1e9, "reverse step": 1e9}
        for _ in range(args.rounds):
            best["plain"] = min(best["plain"], run(False)[0])
            best["counted"] = min(best["counted"], run(True)[0])
            best["reverse step"] = min(best["reverse step"], run(True, stop_at=total - 1)[0])
    print(f"virtio_blk: {total} instructions retired; best of {args.rounds} rounds")
    for name, seconds in best.items():
        print(f"  {name:<13} {seconds * 1e3:8.1f} ms  {seconds / best['plain']:5.2f}x the plain run")
    loop = _wat_to_wasm(LOOP)
    times = {False: 1e9, True: 1e9}
    insns = 0
    for _ in range(args.rounds):
        for count in (False, True):
            driver = DriverRun(board.build(), loop, log=lambda text: None)
            debug = driver.system.machine.debug
            detach = debug.attach(lambda stop: None)
            if count:
                debug.count_instructions()
            start = time.perf_counter()
            driver.run("probe")
            times[count] = min(times[count], time.perf_counter() - start)
            detach()
            insns = max(insns, debug.icount)
    per = (times[True] - times[False]) / insns * 1e6
    print(
        f"loop: {insns} instructions, plain {times[False] * 1e3:.1f} ms, counted {times[True] * 1e3:.1f} ms "
        f"({times[True] / times[False]:.0f}x; {per:.2f} us per instruction counted)"
    )


if __name__ == "__main__":
    main()
