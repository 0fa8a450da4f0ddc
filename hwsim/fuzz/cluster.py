"""A fuzz campaign on a Dask cluster: seed ranges as tasks, each run by ``hwsim fuzz`` in a process of its own.

A task runs its chunk of seeds as the command line would on one machine (``python -m hwsim fuzz --seed
FIRST --count N --json ...``), in a child process of the Dask worker: a crash or hang in native code is
caught there, seed by seed, exactly as in a local campaign (Dask workers are daemon processes and may
not start the local campaign's worker processes themselves).  The task returns the chunk's summary
and the modules it saved; the client merges the summaries and saves the modules under its own --out,
so a divergence found on any machine is replayed on one with ``hwsim fuzz --check``.
"""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ..campaign import ChunkDone, run_chunks
from .campaign import Summary
from .smith import normalise_overrides


def fuzz_chunk(chunk: tuple) -> dict:
    """(Runs on a worker.)  Seeds ``chunk[0] .. chunk[0] + chunk[1] - 1`` with the smith overrides
    ``chunk[2:]``: the summary, and the saved modules (base64, by file name)."""
    first, count, smith = chunk[0], chunk[1], chunk[2:]
    with tempfile.TemporaryDirectory(prefix="hwsim-fuzz-chunk-") as tmp:
        out, summary_file = Path(tmp) / "out", Path(tmp) / "summary.json"
        command = [sys.executable, "-m", "hwsim", "fuzz", "--seed", str(first), "--count", str(count)]
        command += ["--quiet", "--out", str(out), "--json", str(summary_file)]
        for flag in smith:
            command += ["--smith", flag]
        proc = subprocess.run(command, capture_output=True, text=True, stdin=subprocess.DEVNULL)
        if not summary_file.is_file():
            raise RuntimeError(
                f"hwsim fuzz on seeds {first}..{first + count - 1} ended with status {proc.returncode} and no "
                f"summary: {proc.stderr.strip()[-2000:]}"
            )
        summary = json.loads(summary_file.read_text())
        cases = (
            {p.name: base64.b64encode(p.read_bytes()).decode() for p in sorted(out.glob("*"))} if out.is_dir() else {}
        )
    return {"summary": summary, "cases": cases}


def run_cluster_campaign(
    address: str,
    *,
    first_seed: int,
    count: int,
    chunk: int = 100,
    out_dir: Path | None = None,
    smith: tuple[str, ...] = (),
    journal: Path | None = None,
    progress: Callable[[Summary, int, int], None] | None = None,
) -> Summary:
    """Seeds ``first_seed .. first_seed + count - 1`` in chunks of ``chunk`` on the Dask scheduler at
    ``address``.  The summary is the one a local campaign of the same seeds gives (findings in seed
    order), plus ``cluster_reruns`` and the chunks ``lost``.  ``progress(summary, chunks done, chunks)``
    after each chunk.  ``journal``: resume from (and append to) this results file."""
    smith = normalise_overrides(smith)
    summary = Summary(first_seed=first_seed, smith=list(smith))
    chunks = [(s, min(chunk, first_seed + count - s), *smith) for s in range(first_seed, first_seed + count, chunk)]
    start = time.monotonic()
    done = 0

    def on_done(outcome: ChunkDone) -> None:
        nonlocal done
        done += 1
        first, n = outcome.chunk[0], outcome.chunk[1]
        summary.cluster_reruns += outcome.reruns
        if outcome.result is None:
            summary.lost.append({"seeds": [first, first + n - 1], "reason": outcome.lost})
        else:
            files = {}
            for name, data in outcome.result["cases"].items():
                if out_dir is not None:
                    out_dir.mkdir(parents=True, exist_ok=True)
                    (out_dir / name).write_bytes(base64.b64decode(data))
                    files[name] = str(out_dir / name)
            part = outcome.result["summary"]
            for case in part["divergences"] + part["escaped"]:
                case["file"] = files.get(Path(case["file"]).name) if case.get("file") else None
            summary.merge(part)
            worker = outcome.worker or outcome.result.get("worker", "")  # (older results files: in the result)
            summary.cluster_workers[worker] = summary.cluster_workers.get(worker, 0) + n
        summary.seconds = time.monotonic() - start
        if progress is not None:
            progress(summary, done, len(chunks))

    identity = {"kind": "fuzz", "smith": list(smith), "chunk": chunk}
    run_chunks(address, fuzz_chunk, chunks, identity=identity, journal=journal, on_done=on_done)
    summary.last_seed = first_seed + count - 1
    summary.in_seed_order()
    summary.seconds = time.monotonic() - start
    return summary
