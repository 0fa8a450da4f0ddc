"""Compiling a large module's functions in forked worker processes, with the result the serial compile gives.

::

    parent (has the decoded module)           fork: the children share it, copy-on-write
      |-- child 1: functions [k1, k2) --pickle--> pipe --+
      |-- child 2: functions [k2, n)  --pickle--> pipe --+
      +-- itself:  functions [0, k1)                      +--> results in function order

Each run of functions is contiguous and weighted by body length, so the runs take about as long.  A
compiled function is plain data (:class:`~hwsim.compiler.FunctionCode`): the children send theirs back
pickled and exit; linking stays in the parent.  Compiling a function depends on nothing but the module and
the function, so the code is the serial compile's, byte for byte (``tests/test_compiler_parallel.py``).

Failure is never reported from a child: when a child fails (an error compiling one of its functions, a crash,
a broken pipe, no answer within :data:`CHILD_TIMEOUT` after the parent's own run) the parent compiles that
run itself, and an error is raised exactly where the serial compile raises it (the first failing function
in index order).  Only on Linux (``os.fork``); elsewhere, and for modules too small to pay for a fork (a few
milliseconds), the functions are compiled in the calling process.
"""

from __future__ import annotations

import os
import pickle
import select
import signal
import sys
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

T = TypeVar("T")

MIN_RUN = 60_000  # instructions per worker, at least (about 0.1 s of compiling: a fork costs a few ms)
MAX_JOBS = 4  # processes at most, the parent included
CHILD_TIMEOUT = 60.0  # seconds a child may still take after the parent has compiled its own run


def auto_jobs(total_weight: int) -> int:
    """How many processes compile a module of ``total_weight`` instructions when the caller does not say:
    one per :data:`MIN_RUN` instructions, at most :data:`MAX_JOBS`, and only as many more than the caller's
    own as there are idle cores (by the 1-minute load average: on a busy machine a worker only adds the
    fork's cost, its copy-on-write faults and the transfer, about a fifth more CPU time in all)."""
    if sys.platform != "linux" or not hasattr(os, "fork"):
        return 1
    cpus = len(os.sched_getaffinity(0))
    try:
        idle = int(cpus - os.getloadavg()[0] + 0.5)
    except OSError:  # (no /proc/loadavg: count the machine busy)
        return 1
    return max(1, min(cpus, MAX_JOBS, total_weight // MIN_RUN, 1 + idle))


def split(weights: Sequence[int], jobs: int) -> list[range]:
    """``jobs`` contiguous runs of indices covering ``weights`` in order, of about equal total weight (fewer
    when there are fewer items; a run is never empty)."""
    n = len(weights)
    jobs = max(1, min(jobs, n))
    total = sum(weights)
    runs: list[range] = []
    start = acc = 0
    for i, w in enumerate(weights):
        acc += w
        # close the run once it holds its share, leaving at least one item for each run still to come
        if len(runs) < jobs - 1 and acc * jobs >= total * (len(runs) + 1) and n - (i + 1) >= jobs - 1 - len(runs):
            runs.append(range(start, i + 1))
            start = i + 1
    runs.append(range(start, n))
    return [r for r in runs if len(r)]


def compile_all(compile_one: Callable[[int], T], weights: Sequence[int], jobs: int) -> list[T]:
    """``[compile_one(i) for i in range(len(weights))]``, in ``jobs`` processes (the caller's one of them)."""
    runs = split(weights, jobs)
    if len(runs) <= 1 or not hasattr(os, "fork"):
        return [compile_one(i) for i in range(len(weights))]
    children: list[tuple[int, int, range]] = []  # (pid, read end of its pipe, its run)
    try:
        for run in runs[1:]:
            children.append(_fork(compile_one, run))
        started = time.monotonic()
        results = [compile_one(i) for i in runs[0]]  # an error here is the serial compile's first error
        deadline = time.monotonic() + max(CHILD_TIMEOUT, 4 * (time.monotonic() - started))
        for pid, fd, run in children:
            done = _collect(pid, fd, len(run), deadline)
            results += done if done is not None else [compile_one(i) for i in run]
        return results
    finally:
        for pid, fd, _ in children:
            _reap(pid, fd)


def _fork(compile_one: Callable[[int], T], run: range) -> tuple[int, int, range]:
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: compile, send, exit (never returns into the caller's code)
        status = 1
        try:
            os.close(r)
            view = memoryview(pickle.dumps([compile_one(i) for i in run], protocol=pickle.HIGHEST_PROTOCOL))
            while view:
                view = view[os.write(w, view) :]
            status = 0
        except BaseException:  # noqa: BLE001 - the parent compiles this run itself and reports any error
            pass
        finally:
            os._exit(status)
    os.close(w)
    return pid, r, run


def _collect(pid: int, fd: int, count: int, deadline: float) -> list | None:
    """The child's results, or None when it failed or did not answer before ``deadline``."""
    chunks = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            return None
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        chunks.append(chunk)
    _, status = os.waitpid(pid, 0)
    if status != 0:
        return None
    try:
        results = pickle.loads(b"".join(chunks))
    except Exception:  # noqa: BLE001 - a truncated or corrupt answer: compile the run here
        return None
    return results if isinstance(results, list) and len(results) == count else None


def _reap(pid: int, fd: int) -> None:
    """Make sure the child is gone and its pipe closed (after an error, a timeout or a normal exit)."""
    try:
        os.close(fd)
    except OSError:
        pass
    try:
        if os.waitpid(pid, os.WNOHANG) == (0, 0):
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    except ChildProcessError:
        pass  # already reaped by _collect
