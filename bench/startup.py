"""Start-up: a whole ``hwsim`` command, process start to exit, beside the Python interpreter alone.

    python bench/startup.py [--repeat N]

Each command runs as its own process with warm caches (bytecode written, the driver's wasm and the
compiled code cached by an untimed first run), interleaved with the ceilings, best of N:

* ``python -c pass``: the interpreter's own start-up, the floor no command can go under;
* ``python -c "import unicorn"``: the CPU emulator's library, which every run must load.

Issue 15's target: ``hwsim run virt drivers/uart16550`` in at most 0.3 s.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TARGET_S = 0.3
HWSIM = str(Path(sys.executable).parent / "hwsim")  # the console script, as a user runs it

COMMANDS = {
    "python -c pass": [sys.executable, "-c", "pass"],
    'python -c "import unicorn"': [sys.executable, "-c", "import unicorn"],
    "hwsim --help": [HWSIM, "--help"],
    "hwsim run virt drivers/uart16550": [HWSIM, "run", "virt", "drivers/uart16550"],
    "hwsim mmu quiz --seed 1": [HWSIM, "mmu", "quiz", "--seed", "1"],
}


def timed(argv: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(
        argv,
        cwd=ROOT,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        check=True,
    )
    return time.perf_counter() - t


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    args = parser.parse_args()
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # warm caches: a user's machine keeps its bytecode
    for argv in COMMANDS.values():
        timed(argv, env)  # untimed: write bytecode, build and cache the driver
    best = dict.fromkeys(COMMANDS, float("inf"))
    for _ in range(args.repeat):  # interleaved rounds
        for name, argv in COMMANDS.items():
            best[name] = min(best[name], timed(argv, env))
    floor = best["python -c pass"]
    print(f"{'command':<36} {'best s':>7} {'x python':>9}")
    for name, seconds in best.items():
        print(f"{name:<36} {seconds:7.3f} {seconds / floor:9.1f}")
    run = best["hwsim run virt drivers/uart16550"]
    print(
        f"\nhwsim run virt drivers/uart16550: {run:.3f} s; target <= {TARGET_S} s: {'met' if run <= TARGET_S else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
