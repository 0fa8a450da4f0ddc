"""``hwsim spectest FILE.wast...``: run WebAssembly spec-test scripts through the front end."""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..spectest.runner import FileResult

FEATURE_NAMES = {"custom-page-sizes": "custom_page_sizes", "memory-discard": "memory_discard"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "spectest",
        help="run WebAssembly spec-test scripts (.wast)",
        description="Convert each .wast script with wasm-tools, run every command, and count each one as "
        "passed, failed or skipped.  Modules are decoded and validated by hwsim's front end, "
        "compiled to RISC-V and run on the emulated CPU.  The last line is "
        "'N passed, N failed, N skipped'.",
    )
    p.add_argument("files", nargs="*", metavar="FILE.wast", help="spec-test scripts")
    p.add_argument(
        "--scope",
        metavar="LIST",
        action="append",
        default=[],
        help="a file listing scripts, one per line, relative to its directory or to --suite (e.g. the test "
        "suite's scope.txt); may be given more than once",
    )
    p.add_argument(
        "--suite",
        metavar="DIR",
        help="resolve the scripts of every --scope list against DIR (the test suite) instead of the list's "
        "directory, e.g. for hwsim's tests/data/spectest_scope_more.txt",
    )
    p.add_argument("--markdown", metavar="OUT.md", help="also write the conformance report (docs/conformance.md)")
    p.add_argument(
        "--json",
        action="store_true",
        help='print one JSON object {"files": {NAME: counts}, "passed", "failed", "skipped"}',
    )
    p.add_argument(
        "--verbose",
        "-v",
        action="store_true",
        help="per file: counts by command, every failure, and why commands were skipped",
    )
    p.add_argument(
        "--enable",
        action="append",
        default=[],
        choices=sorted(FEATURE_NAMES),
        metavar="FEATURE",
        help=f"turn a decoder feature on for every script ({', '.join(sorted(FEATURE_NAMES))}); "
        "by default custom-page-sizes is on only under proposals/custom-page-sizes/",
    )
    p.add_argument(
        "--disable",
        action="append",
        default=[],
        choices=sorted(FEATURE_NAMES),
        metavar="FEATURE",
        help="turn a decoder feature off for every script",
    )
    p.add_argument(
        "--engine",
        choices=("hwsim", "validate"),
        default="hwsim",
        help="hwsim: compile to RISC-V and run on the emulated CPU (default); "
        "validate: decode and validate only, skip execution",
    )
    p.add_argument(
        "--cluster",
        metavar="ADDRESS",
        help="run the scripts on a Dask cluster (the scheduler's tcp://HOST:PORT, or the file 'dask scheduler "
        "--scheduler-file' wrote); each script is sent with its text (docs/scaling.md)",
    )
    p.add_argument(
        "--results",
        metavar="FILE",
        type=Path,
        help="with --cluster: append each finished script to this JSON Lines file, and skip the scripts it "
        "already holds unchanged (resume an interrupted run)",
    )
    p.add_argument("--quiet", "-q", action="store_true", help="with --cluster: no progress bar or per-worker line")
    p.add_argument(
        "--cache-dir",
        help="where converted scripts are cached (default: $HWSIM_SPECTEST_CACHE or <tmp>/hwsim-spectest-cache)",
    )
    p.set_defaults(func=run_spectest)


def run_spectest(args: argparse.Namespace) -> int:
    from ..spectest import SpecTestRunner, find_wasm_tools

    find_wasm_tools()  # fail early, with the installation hint, when it is missing
    for scope in args.scope:
        from pathlib import Path

        from ..errors import ConfigError

        try:
            text = Path(scope).read_text()
        except OSError as exc:
            raise ConfigError(f"cannot read --scope {scope!r}: {exc.strerror}") from None
        listed = [line.strip() for line in text.splitlines() if line.strip() and not line.startswith("#")]
        base = Path(args.suite) if args.suite else Path(scope).parent
        args.files = [*args.files, *(str(base / name) for name in listed)]
    if not args.files:
        from ..errors import ConfigError

        raise ConfigError("no scripts: give FILE.wast arguments or --scope LIST")
    features = {FEATURE_NAMES[name]: True for name in args.enable}
    features.update({FEATURE_NAMES[name]: False for name in args.disable})
    engine = None
    if args.engine == "hwsim":
        from ..spectest.hwsim_engine import HwsimEngine

        engine = HwsimEngine()
    runner = SpecTestRunner(engine, features=features, cache_dir=args.cache_dir)
    detail = sys.stderr if args.json else sys.stdout
    files = []
    names = _names(args.files, args.suite)
    done: Iterable[FileResult]
    if args.results and not args.cluster:
        from ..errors import ConfigError

        raise ConfigError("--results resumes a run on a cluster; give --cluster ADDRESS too")
    if args.cluster:
        from ..spectest.cluster import run_on_cluster
        from ._progress import Progress, per_worker

        bar = Progress(len(args.files), "scripts", quiet=args.quiet, label="spectest")
        workers: dict[str, int] = {}

        def on_file(result: FileResult, worker: str) -> None:
            workers[worker] = workers.get(worker, 0) + 1
            bar.update(bar.done + 1, result.name)

        try:
            done = run_on_cluster(
                args.cluster,
                args.files,
                names,
                engine=args.engine,
                features=features,
                on_file=on_file,
                journal=args.results,
            )
        finally:
            bar.close()
        if not args.quiet:
            print(f"spectest: per worker: {per_worker(workers, 'scripts')}", file=sys.stderr)
    else:
        done = (runner.run_file(path, name=name) for path, name in zip(args.files, names))
    for result in done:
        files.append(result)
        line = f"{result.name}: {result.passed} passed, {result.failed} failed, {result.skipped} skipped"
        if not args.json:
            print(line)
        elif args.verbose:
            print(line, file=detail)
        if args.verbose:
            _print_details(result, detail)
    from ..spectest.runner import RunResult

    total = RunResult(files)
    if args.markdown:
        from ..spectest.report import markdown

        suite = f"--suite {args.suite} " if args.suite else ""
        scopes = "".join(f"--scope {scope} " for scope in args.scope)
        command = f"hwsim spectest {suite}{scopes}--markdown {args.markdown}"
        with open(args.markdown, "w") as f:
            f.write(markdown(total, command=command, engine=args.engine))
    if args.json:
        print(json.dumps(total.to_json()))
    else:
        print(f"{total.passed} passed, {total.failed} failed, {total.skipped} skipped")
    return 1 if total.failed else 0


def _names(files: list[str], suite: str | None = None) -> list[str]:
    """Each script's name in the output: its path within ``suite`` when all are in it, else the shortest
    tail that tells it from the others."""
    from pathlib import Path

    from ..spectest.runner import display_names

    if suite:
        base = Path(suite).resolve()
        try:
            return [Path(f).resolve().relative_to(base).as_posix() for f in files]
        except ValueError:
            pass
    return display_names([Path(f) for f in files])


def _print_details(result, out) -> None:
    for command, counts in sorted(result.counts_by_command().items()):
        parts = ", ".join(f"{counts[s]} {s}" for s in ("passed", "failed", "skipped") if counts[s])
        print(f"  {command}: {parts}", file=out)
    for o in result.outcomes:
        if o.status == "failed":
            print(f"  FAILED line {o.line} {o.command}: {o.reason}", file=out)
    notes: dict[str, list[int]] = defaultdict(list)
    for o in result.outcomes:
        if o.status == "passed" and o.reason:
            notes[o.reason].append(o.line)
    for reason, lines in notes.items():
        print(f"  note, {len(lines)} passed: {reason} (lines {_lines(lines)})", file=out)
    skipped: dict[str, list[int]] = defaultdict(list)
    for o in result.outcomes:
        if o.status == "skipped":
            skipped[o.reason].append(o.line)
    for reason, lines in sorted(skipped.items(), key=lambda kv: -len(kv[1])):
        print(f"  skipped {len(lines)}: {reason} (lines {_lines(lines)})", file=out)


def _lines(lines: list[int], limit: int = 8) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f", ... {len(lines) - limit} more" if len(lines) > limit else "")
