"""Spec-test scripts as tasks on a Dask cluster: each script is sent with its text, so workers need hwsim
and wasm-tools but not the test suite's files."""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from .runner import FileResult, SpecTestRunner


def spectest_chunk(shared: dict, chunk: tuple) -> FileResult:
    """(Runs on a worker.)  One script, written under a temporary directory at its own path (the path
    chooses a script's default features: the threads proposal's, say), run as on one machine."""
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
    result.path = Path(path)
    return result


def run_on_cluster(
    address: str,
    paths: list[str],
    names: list[str],
    *,
    engine: str,
    features: dict[str, bool],
    on_file: Callable[[FileResult], None] | None = None,
) -> list[FileResult]:
    """Every script of ``paths`` (shown as ``names``) on the Dask scheduler at ``address``; the results
    in the order of ``paths``, as a run on one machine gives them.  ``on_file`` as each one finishes."""
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
        result = outcome.result
        if result is None:
            from .runner import FAILED, Outcome

            result = FileResult(name, Path(path), [Outcome(0, "script", FAILED, f"not run: {outcome.lost}")])
        results[path] = result
        if on_file is not None:
            on_file(result)

    identity = {"kind": "spectest", "engine": engine, "features": features}
    shared = {"engine": engine, "features": features}
    run_chunks(address, spectest_chunk, chunks, identity=identity, on_done=on_done, shared=shared)
    return [results[p] for p in paths]
