"""Exploration: run a driver under many seeded device timings (and faults), stop at the first failure.

::

    for seed in S, S+1, ... S+N-1:
        board.build(seed=seed, faults=plan(seed))   # fresh machine, devices, clock: nothing carries over
        run the driver (its module compiled once, reused by every run)
        failed?  a trap, a DMA or protocol report, device misuse, probe() < 0, a refused
                 device, an interrupt problem, a time limit  -> stop: print the seed, the report,
                 and the command that replays it (``--seed S``)

A seed fixes every timing draw and every injected fault (and, for native
firmware on several harts, the harts' interleaving), and the run is
otherwise deterministic (virtual time, no host clock), so the replay is the
same run bit for bit.  Console input is read once and fed to every run.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from ..devices.backends import MemoryBackend
from ..devices.faults import FaultPlan, FaultSpec
from ..machine.schedules import Schedule
from ..runtime import api
from .firmware import FirmwareRun
from .runner import DriverRun, RunReport


@dataclass
class ExploreResult:
    seeds: list[int] = field(default_factory=list)  # the seeds run, in order
    failed_seed: int | None = None
    report: RunReport | None = None  # the failing run's report (or the last run's when all passed)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.failed_seed is None

    @property
    def runs_per_second(self) -> float:
        return len(self.seeds) / self.seconds if self.seconds else 0.0


def failed(report: RunReport) -> bool:
    """What exploration counts as a failure: anything but a clean run (see RunReport.ok), or a stop."""
    return not report.ok or report.stopped is not None


def explore(
    board,
    wasm: bytes,
    seeds: Iterable[int],
    *,
    options: dict | None = None,
    entry: str = "probe",
    args: tuple = (),
    inject: Iterable[FaultSpec] = (),
    faults: bool = False,
    uart_input: bytes = b"",
    assign: Iterable[str] | None = None,
    time_limit_ns: int = 10 * 1_000_000_000,
    wall_limit_s: float | None = None,
    engine: api.Engine | None = None,
    on_run: Callable[[int, RunReport], None] | None = None,
    schedule: Schedule | None = None,
    irq_hart: int | None = None,
) -> ExploreResult:
    """Run ``entry`` once per seed on a fresh build of ``board``; stop at the first failing seed.

    ``wasm`` may be native firmware (an ELF): each seed then also interleaves the board's harts
    (FirmwareRun's hart seed is the timing seed), so a race between harts shows up under some seed;
    ``schedule`` picks the harts' turns (random, or PCT: see :func:`estimate_steps`), ``irq_hart``
    the hart that runs the interrupt handler."""
    native = wasm[:4] == b"\x7fELF"
    module = None
    if not native:
        engine = engine or api.Engine(metering=board.instructions_per_us > 0)  # as DriverRun's own
        module = api.Module(engine, wasm)  # compiled once; every run instantiates it anew
    specs = tuple(inject)
    result = ExploreResult()
    start = time.perf_counter()
    for seed in seeds:
        plan = FaultPlan(specs, seed=seed, explore=faults)
        system = board.build(options=options, seed=seed, faults=plan)
        for device in system.devices.values():
            if getattr(device, "TYPE", "") == "ns16550a":
                device.backend = MemoryBackend(uart_input if device.name == "uart0" else b"")
        run: DriverRun | FirmwareRun
        if module is None:
            run = FirmwareRun(
                system,
                wasm,
                log=lambda text: None,
                time_limit_ns=time_limit_ns,
                wall_limit_s=wall_limit_s,
                schedule=schedule,
                irq_hart=irq_hart,
            )
        else:
            run = DriverRun(
                system,
                module,
                engine=engine,
                log=lambda text: None,
                assign=assign,
                time_limit_ns=time_limit_ns,
                wall_limit_s=wall_limit_s,
            )
        report = run.run(entry, args)
        report.seed = seed
        result.seeds.append(seed)
        result.report = report
        if on_run is not None:
            on_run(seed, report)
        if failed(report):
            result.failed_seed = seed
            break
    result.seconds = time.perf_counter() - start
    return result


def estimate_steps(
    board,
    elf: bytes,
    *,
    options: dict | None = None,
    entry: str = "probe",
    args: tuple = (),
    time_limit_ns: int = 10 * 1_000_000_000,
    irq_hart: int | None = None,
) -> int:
    """The run length, in scheduler steps (turns), that a PCT schedule spreads its change points over:
    the turns of one run of ``elf`` on a fresh build with timing and hart seed 0 under the random
    schedule.  The same for every seed, so ``--seed S --schedule pct:D`` replays what ``--explore``
    ran."""
    system = board.build(options=options, seed=0)
    for device in system.devices.values():
        if getattr(device, "TYPE", "") == "ns16550a":
            device.backend = MemoryBackend(b"")
    run = FirmwareRun(system, elf, log=lambda text: None, time_limit_ns=time_limit_ns, hart_seed=0, irq_hart=irq_hart)
    report = run.run(entry, args)
    return max(1, sum(s.turns for s in report.harts))


# -- on a Dask cluster -------------------------------------------------------------------------------------


@dataclass
class ClusterExploreResult:
    """Exploration of seeds ``first .. first + count - 1`` on a cluster: the lowest failing seed (the one
    a run on one machine stops at), its report as text, and how many runs the workers made (chunks run
    side by side, so seeds past the failing one may have run too)."""

    first: int
    count: int
    failed_seed: int | None = None
    report: str = ""
    runs: int = 0
    reruns: int = 0  # chunks run again after their worker was lost mid-task
    lost: list = field(default_factory=list)  # [(first seed, last seed, why)]: chunks that never finished
    seconds: float = 0.0
    workers: dict = field(default_factory=dict)  # worker -> runs it made (resumed chunks: their journaled worker)
    resumed: int = 0  # chunks taken from the results file

    @property
    def ok(self) -> bool:
        return self.failed_seed is None and not self.lost


def explore_chunk(shared: dict, chunk: tuple) -> dict:
    """(Runs on a worker.)  :func:`explore` over the chunk's seeds with the campaign's ``shared`` settings."""
    first, n = chunk
    result = explore(shared["board"], shared["wasm"], range(first, first + n), **shared["settings"])
    report = result.report.format() if result.failed_seed is not None and result.report is not None else ""
    return {"runs": len(result.seeds), "failed_seed": result.failed_seed, "report": report}


def explore_on_cluster(
    address: str,
    board,
    wasm: bytes,
    first: int,
    count: int,
    *,
    chunk: int = 50,
    on_chunk: Callable[[ClusterExploreResult, int, int], None] | None = None,
    journal: Path | None = None,
    **settings,
) -> ClusterExploreResult:
    """:func:`explore` of seeds ``first .. first + count - 1`` in chunks of ``chunk`` on the Dask scheduler
    at ``address``; ``settings`` are explore's keyword arguments (no engine: each worker makes its own).
    The answer is the one a run on one machine gives: the lowest failing seed, or none.  ``journal``: a
    results file to resume from and append to; it holds one campaign (this board, driver and settings)."""
    from ..campaign import ChunkDone, run_chunks

    out = ClusterExploreResult(first, count)
    chunks = [(s, min(chunk, first + count - s)) for s in range(first, first + count, chunk)]
    start = time.perf_counter()
    done = 0

    def on_done(outcome: ChunkDone) -> None:
        nonlocal done
        done += 1
        out.reruns += outcome.reruns
        s, n = outcome.chunk
        if outcome.result is None:
            out.lost.append((s, s + n - 1, outcome.lost))
        else:
            out.runs += outcome.result["runs"]
            out.workers[outcome.worker] = out.workers.get(outcome.worker, 0) + outcome.result["runs"]
            out.resumed += outcome.resumed
            seed = outcome.result["failed_seed"]
            if seed is not None and (out.failed_seed is None or seed < out.failed_seed):
                out.failed_seed, out.report = seed, outcome.result["report"]
        out.seconds = time.perf_counter() - start
        if on_chunk is not None:
            on_chunk(out, done, len(chunks))

    shared = {"board": board, "wasm": wasm, "settings": settings}
    made_of = repr((board, hashlib.sha256(wasm).hexdigest(), sorted(settings.items())))
    identity = {"kind": "explore", "campaign": hashlib.sha256(made_of.encode()).hexdigest()[:24]}
    run_chunks(address, explore_chunk, chunks, identity=identity, journal=journal, on_done=on_done, shared=shared)
    out.lost.sort()
    out.seconds = time.perf_counter() - start
    return out
