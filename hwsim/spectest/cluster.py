"""Spec-test scripts as tasks on a Dask cluster: each script is sent with its text, so workers need hwsim
and wasm-tools but not the test suite's files."""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable
from pathlib import Path

from .runner import FileResult, Outcome, SpecTestRunner


def _to_json(result: FileResult) -> dict:
    return {
        "name": result.name,
        "seconds": result.seconds,
        "outcomes": [[o.line, o.command, o.status, o.reason] for o in result.outcomes],
    }


def _from_json(data: dict, path: str) -> FileResult:
    outcomes = [Outcome(line, command, status, reason) for line, command, status, reason in data["outcomes"]]
    return FileResult(data["name"], Path(path), outcomes, data["seconds"])


def spectest_chunk(shared: dict, chunk: tuple) -> dict:
    """(Runs on a worker.)  One script, written under a temporary directory at its own path (the path
    chooses a script's default features: the threads proposal's, say), run as on one machine; the
    result as JSON (a results file keeps it)."""
    path, name, text = chunk
    with tempfile.TemporaryDirectory(prefix="hwsim-spectest-") as tmp:
        local = Path(tmp, *Path(path).resolve().parts[1:])
        local.parent.mkdir(parents=True, exist_ok=True)
        local.write_bytes(text)
        engine = None
        if shared["engine"] == "hwsim":
            from .hwsim_engine import HwsimEngine

            engine = HwsimEngine()
        result = SpecTestRunner(engine, features=shared["features"]).run_file(local, name=name)
    return _to_json(result)


def run_on_cluster(
    address: str,
    paths: list[str],
    names: list[str],
    *,
    engine: str,
    features: dict[str, bool],
    on_file: Callable[[FileResult, str], None] | None = None,
    journal: Path | None = None,
) -> list[FileResult]:
    """Every script of ``paths`` (shown as ``names``) on the Dask scheduler at ``address``; the results
    in the order of ``paths``, as a run on one machine gives them.  ``on_file(result, worker)`` as each
    one finishes.  ``journal``: a results file to resume from and append to (a script is named in it by
    its path and a digest of its text, so an edited script runs again)."""
    from ..campaign import ChunkDone, run_chunks
    from ..errors import ConfigError

    chunks = []
    for path, name in zip(paths, names):
        try:
            chunks.append((path, name, Path(path).read_bytes()))
        except OSError as exc:
            raise ConfigError(f"cannot read {path!r}: {exc.strerror}") from None
    results: dict[str, FileResult] = {}

    def on_done(outcome: ChunkDone) -> None:
        path, name, _ = outcome.chunk
        if outcome.result is None:
            from .runner import FAILED

            result = FileResult(name, Path(path), [Outcome(0, "script", FAILED, f"not run: {outcome.lost}")])
        else:
            result = _from_json(outcome.result, path)
        results[path] = result
        if on_file is not None:
            on_file(result, "results file" if outcome.resumed else outcome.worker)

    identity = {"kind": "spectest", "engine": engine, "features": features}
    shared = {"engine": engine, "features": features}
    run_chunks(
        address,
        spectest_chunk,
        chunks,
        identity=identity,
        journal=journal,
        on_done=on_done,
        shared=shared,
        key=lambda chunk: (chunk[0], chunk[1], hashlib.sha256(chunk[2]).hexdigest()),
    )
    return [results[p] for p in paths]
