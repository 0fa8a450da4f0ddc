"""A fuzz campaign on a local Dask cluster of 1 and 2 workers, beside the same seeds run by one local process.

    python bench/cluster.py [--seeds N] [--chunk N] [--rounds N]

Starts two Dask schedulers on localhost, one with one worker and one with two (each worker one thread),
then runs the same seeds, round after round (interleaved, best of N): ``run_campaign(jobs=1)`` on this
machine, and ``run_cluster_campaign`` on each cluster.  Prints seeds per second, the speed-up of two
workers over one, and the overhead per task (the one-worker cluster's time beyond the local run, per
chunk: a task starts ``python -m hwsim fuzz`` for its chunk, and that start-up is most of it).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hwsim.campaign.cluster import connect  # noqa: E402
from hwsim.fuzz import run_campaign  # noqa: E402
from hwsim.fuzz.cluster import run_cluster_campaign  # noqa: E402


def start_cluster(directory: Path, workers: int) -> tuple[Path, list[subprocess.Popen]]:
    sched = directory / "scheduler.json"
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "distributed.cli.dask_scheduler", "--scheduler-file", str(sched), "--port", "0"]
            + ["--host", "127.0.0.1", "--no-dashboard"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    ]
    while not sched.is_file():
        time.sleep(0.1)
    for i in range(workers):
        procs.append(
            subprocess.Popen(
                [sys.executable, "-m", "distributed.cli.dask_worker", "--scheduler-file", str(sched)]
                + ["--nthreads", "1", "--no-dashboard", "--name", f"w{i}"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
        )
    client = connect(str(sched), timeout=60)
    client.wait_for_workers(workers, timeout=120)
    client.close()
    return sched, procs


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=400)
    ap.add_argument("--chunk", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        procs: list[subprocess.Popen] = []
        clusters = {}
        for workers in (1, 2):
            (Path(tmp) / str(workers)).mkdir()
            clusters[workers], started = start_cluster(Path(tmp) / str(workers), workers)
            procs += started
        try:
            runs = {
                "local process": lambda: run_campaign(first_seed=0, count=args.seeds, jobs=1, out_dir=Path(tmp)),
                **{
                    f"cluster, {w} worker{'s' if w > 1 else ''}": (
                        lambda w=w: run_cluster_campaign(
                            str(clusters[w]), first_seed=0, count=args.seeds, chunk=args.chunk, out_dir=Path(tmp)
                        )
                    )
                    for w in (1, 2)
                },
            }
            best = dict.fromkeys(runs, float("inf"))
            for _ in range(args.rounds):
                for name, run in runs.items():
                    t = time.perf_counter()
                    summary = run()
                    best[name] = min(best[name], time.perf_counter() - t)
                    assert summary.modules + summary.no_module == args.seeds, summary.format()
        finally:
            for proc in procs:
                proc.send_signal(signal.SIGINT)
            for proc in procs:
                proc.wait(timeout=30)
    chunks = -(-args.seeds // args.chunk)
    print(
        f"{time.strftime('%Y-%m-%d')}: {args.seeds} fuzz seeds, chunks of {args.chunk}, best of {args.rounds} "
        f"interleaved rounds"
    )
    for name, seconds in best.items():
        print(f"  {name:20} {seconds:7.2f} s  {args.seeds / seconds:6.1f} seeds/s")
    one, two = best["cluster, 1 worker"], best["cluster, 2 workers"]
    print(f"  speed-up of 2 workers over 1: {one / two:.2f}x")
    print(
        f"  overhead per task (1 worker beyond the local process, per chunk): {(one - best['local process']) / chunks:.2f} s"
    )


if __name__ == "__main__":
    main()
