"""Chunks of a campaign as tasks on a Dask ``distributed`` scheduler, with a journal to resume from."""

from __future__ import annotations

import hashlib
import json
import re
import socket
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import HwsimError

CONNECT_TIMEOUT = 15.0  # seconds to reach a scheduler before giving up with a clear error


class CampaignError(HwsimError):
    """The cluster cannot be used (not installed, unreachable) or a journal does not fit the campaign."""


@dataclass(frozen=True)
class ChunkDone:
    """One chunk's outcome: ``result`` is the task's return value (None when ``lost``: the task never
    finished, ``lost`` says why); ``reruns`` counts the times its worker was lost mid-task and the
    scheduler ran it again elsewhere; ``resumed``: taken from the journal, not run now."""

    chunk: tuple
    result: Any
    reruns: int = 0
    resumed: bool = False
    lost: str = ""
    worker: str = ""  # the worker that ran it (its name or address, with the host); resumed: as journaled


def worker_name() -> str:
    """The Dask worker running this task, by its name (``dask worker --name``) or address, with the host."""
    try:
        from distributed import get_worker

        worker = get_worker()
        return f"{worker.name or worker.address} on {socket.gethostname()}"
    except (ImportError, ValueError):  # (not in a worker: a direct call)
        return socket.gethostname()


def _on_worker(task: Callable[..., Any], *args: Any) -> tuple[str, Any]:
    """(Runs on a worker.)  ``task(*args)`` and the name of the worker that ran it."""
    return worker_name(), task(*args)


def connect(address: str, timeout: float = CONNECT_TIMEOUT):
    """A ``distributed.Client`` of the scheduler at ``address`` (``tcp://HOST:PORT``, or the path of a
    scheduler file as ``dask scheduler --scheduler-file`` writes it)."""
    try:
        from distributed import Client
    except ImportError:
        raise CampaignError(
            "--cluster needs Dask distributed (pip install 'hwsim[cluster]'; 'dask scheduler' and "
            "'dask worker' come with it)"
        ) from None
    as_file = Path(address)
    if as_file.is_file():
        kwargs = {"scheduler_file": str(as_file)}
    elif re.fullmatch(r"([a-z]+://)?[^/\s:]+:\d+", address):
        kwargs = {"address": address}
    else:
        raise CampaignError(f"--cluster {address}: neither a scheduler file nor a scheduler address (tcp://HOST:PORT)")
    try:
        return Client(**kwargs, timeout=timeout, set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise CampaignError(f"cannot reach the Dask scheduler at {address}: {exc}") from None


def _read_journal(path: Path, identity: dict) -> dict[tuple, dict]:
    """The completed chunks a journal holds for the campaign ``identity`` (chunk -> line)."""
    done: dict[tuple, dict] = {}
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return done
    except OSError as exc:
        raise CampaignError(f"cannot read the results file {path}: {exc.strerror}") from None
    for number, line in enumerate(lines, 1):
        try:
            entry = json.loads(line)
            chunk = tuple(entry["chunk"])
            campaign = entry["campaign"]
        except (ValueError, KeyError, TypeError):
            if number == len(lines):
                continue  # a last line cut short by an interruption: that chunk runs again
            raise CampaignError(f"{path}:{number}: not a line of a campaign's results file") from None
        if campaign != identity:
            raise CampaignError(
                f"{path}:{number}: the results of another campaign ({json.dumps(campaign)}); this one is "
                f"{json.dumps(identity)}: give another --results file"
            )
        done[chunk] = entry
    return done


def run_chunks(
    address: str,
    task: Callable[..., Any],
    chunks: Iterable[tuple],
    *,
    identity: dict,
    journal: Path | None = None,
    on_done: Callable[[ChunkDone], None],
    shared=None,
    key: Callable[[tuple], tuple] = tuple,
) -> None:
    """Run ``task(chunk)`` for every chunk on the cluster at ``address``; ``on_done`` gets each outcome
    as it comes (resumed chunks first).  ``task`` must be a module-level function (it is pickled to the
    workers) whose result depends on the chunk alone.  ``identity`` names the campaign (its kind and
    settings): a ``journal`` (JSON Lines, appended as chunks complete) resumes only the same campaign,
    and needs results that are JSON.  ``shared``: what every task needs beside its chunk (a driver's
    code, a board), sent to the workers once; the task is then called ``task(shared, chunk)``.  ``key``:
    how the journal names a chunk (JSON values; by default the chunk itself), for chunks that carry data
    (a script's text) the journal should name by a digest."""
    chunks = [tuple(c) for c in chunks]
    resumed = _read_journal(journal, identity) if journal is not None else {}
    for chunk in chunks:
        entry = resumed.get(tuple(key(chunk)))
        if entry is not None:
            on_done(
                ChunkDone(chunk, entry["result"], entry.get("reruns", 0), resumed=True, worker=entry.get("worker", ""))
            )
    todo = [c for c in chunks if tuple(key(c)) not in resumed]
    if not todo:
        return
    from distributed import as_completed

    client = connect(address)
    log = None
    if journal is not None:
        try:
            with journal.open("ab+") as raw:
                size = raw.seek(0, 2)
                if size:
                    raw.seek(size - 1)
                    if raw.read(1) != b"\n":
                        raw.write(b"\n")  # after a line cut short: the next line starts on its own
            log = journal.open("a")
        except OSError as exc:
            raise CampaignError(f"cannot write the results file {journal}: {exc.strerror}") from None
    try:
        tag = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        run = f"{time.time_ns():x}"
        extra = () if shared is None else (client.scatter(shared, broadcast=True),)
        futures = {
            client.submit(_on_worker, task, *extra, chunk, key=f"hwsim-{tag}-{run}-{i}", pure=False): chunk
            for i, chunk in enumerate(todo)
        }

        def suspicious(keys: list[str], dask_scheduler=None) -> dict[str, int]:
            """(Runs on the scheduler, which passes itself; nested, so that it is pickled by value and the
            scheduler needs no hwsim.)  How many times each task's worker was lost while it ran there."""
            tasks = dask_scheduler.tasks
            return {key: tasks[key].suspicious for key in keys if key in tasks}

        with client.as_current():  # as_completed waits with the current client
            for future in as_completed(futures):
                chunk = futures[future]
                reruns = client.run_on_scheduler(suspicious, [future.key]).get(future.key, 0)
                if future.status == "error":
                    error = future.exception()
                    on_done(ChunkDone(chunk, None, reruns, lost=f"{type(error).__name__}: {error}"))
                else:
                    worker, result = future.result()
                    if log is not None:
                        line = {
                            "campaign": identity,
                            "chunk": list(key(chunk)),
                            "worker": worker,
                            "reruns": reruns,
                            "result": result,
                        }
                        log.write(json.dumps(line) + "\n")
                        log.flush()
                    on_done(ChunkDone(chunk, result, reruns, worker=worker))
                future.release()
    finally:
        if log is not None:
            log.close()
        client.close()
